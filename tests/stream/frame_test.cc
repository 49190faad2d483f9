// The wire format as pure functions: the worked example of docs/protocol.md (bytes written by
// make_example.py with struct/json/zlib) decodes to what the document says and the encoder
// reproduces it; every malformed header or JSON field is a named error.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "qswap/stream/frame.h"
#include "qswap/stream/receiver.h"
#include "qswap/stream/socket.h"
#include "stream_test_util.h"

namespace qswap {
namespace {

using testing::raw_frame;

std::vector<std::byte> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::span<const std::byte, kFrameHeaderBytes> header_of(std::span<const std::byte> bytes) {
  return bytes.first<kFrameHeaderBytes>();
}

std::span<const std::byte> as_bytes(const std::string& s) { return std::as_bytes(std::span<const char>(s)); }

Result<FrameHeader> decode(const std::string& frame, FrameLimits limits = {}) {
  return decode_frame_header(header_of(as_bytes(frame)), limits);
}

// Header then JSON of a frame built by hand.
Result<FrameMessage> parse(const std::string& frame) {
  QSWAP_ASSIGN_OR_RETURN(FrameHeader h, decode(frame));
  return parse_frame_json(h, std::string_view(frame).substr(kFrameHeaderBytes, h.json_bytes));
}

void expect_error(const Status& s, StatusCode code, const std::string& needle) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(needle), std::string::npos) << "'" << needle << "' not in: " << s.message();
}

TEST(FrameTest, WorkedExampleDecodesAsDocumented) {
  const std::vector<std::byte> file = read_file(testing::stream_test_dir() / "example_update.bin");
  ASSERT_EQ(file.size(), 212u);
  std::span<const std::byte> rest(file);
  std::vector<FrameMessage> messages;
  std::vector<std::byte> payload;
  while (!rest.empty()) {
    auto h = decode_frame_header(header_of(rest), FrameLimits{});
    ASSERT_TRUE(h.ok()) << h.status().to_string();
    const std::string_view json(reinterpret_cast<const char*>(rest.data()) + kFrameHeaderBytes, h->json_bytes);
    auto m = parse_frame_json(*h, json);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(frame_type_of(*m), h->type);
    messages.push_back(*m);
    auto p = rest.subspan(kFrameHeaderBytes + h->json_bytes, h->payload_bytes);
    payload.insert(payload.end(), p.begin(), p.end());
    rest = rest.subspan(kFrameHeaderBytes + h->json_bytes + h->payload_bytes);
  }
  ASSERT_EQ(messages.size(), 4u);
  const auto& hello = std::get<HelloFrame>(messages[0]);
  EXPECT_EQ(hello.token, "s3cret");
  EXPECT_EQ(hello.client, "example");
  EXPECT_EQ(std::get<uint64_t>(std::get<BeginFrame>(messages[1]).tag), 7u);
  const auto& t = std::get<TensorFrame>(messages[2]);
  EXPECT_EQ(t.name, "w");
  EXPECT_EQ(t.dtype, DType::kBF16);
  EXPECT_EQ(t.shape, Shape({2}));
  EXPECT_EQ(t.nbytes, 4u);
  EXPECT_EQ(t.crc32, 0x784e093au);  // the document's value, from Python's zlib.crc32
  const std::vector<std::byte> expected_payload = {std::byte{0x80}, std::byte{0x3f}, std::byte{0x00}, std::byte{0xc0}};
  EXPECT_EQ(payload, expected_payload);  // bf16 1.0 and -2.0, little endian
  EXPECT_EQ(crc32_update(0, payload), 0x784e093au);
  EXPECT_EQ(std::get<CommitFrame>(messages[3]).tensors, 1);
}

TEST(FrameTest, EncoderReproducesTheWorkedExample) {
  const std::vector<std::byte> file = read_file(testing::stream_test_dir() / "example_update.bin");
  const std::vector<std::byte> payload = {std::byte{0x80}, std::byte{0x3f}, std::byte{0x00}, std::byte{0xc0}};
  std::vector<std::byte> out;
  auto append = [&out](const std::vector<std::byte>& f) { out.insert(out.end(), f.begin(), f.end()); };
  append(encode_frame(FrameType::kHello, frame_json(HelloFrame{"s3cret", "example"})));
  append(encode_frame(FrameType::kBegin, frame_json(BeginFrame{UpdateTag{uint64_t{7}}, {}, {}, {}})));
  append(encode_frame(FrameType::kTensor, frame_json(TensorFrame{"w", DType::kBF16, {2}, 4, 0x784e093au}), payload));
  append(encode_frame(FrameType::kCommit, frame_json(CommitFrame{1})));
  EXPECT_EQ(out, file);
}

TEST(FrameTest, EveryMessageRoundTrips) {
  auto round_trip = [](FrameType type, const std::string& json, uint64_t payload = 0) {
    FrameHeader h{kProtocolVersion, type, static_cast<uint32_t>(json.size()), payload};
    auto m = parse_frame_json(h, json);
    EXPECT_TRUE(m.ok()) << m.status().to_string();
    return m.ok() ? *m : FrameMessage{};
  };
  auto b = std::get<BeginFrame>(round_trip(
      FrameType::kBegin, frame_json(BeginFrame{UpdateTag{std::string("step-3")}, UpdateMode::kInPlace, 28, 4096})));
  EXPECT_EQ(std::get<std::string>(b.tag), "step-3");
  EXPECT_EQ(b.mode, UpdateMode::kInPlace);
  EXPECT_EQ(b.tensors, 28);
  EXPECT_EQ(b.bytes, 4096);
  auto empty = std::get<BeginFrame>(round_trip(FrameType::kBegin, frame_json(BeginFrame{})));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(empty.tag));
  EXPECT_FALSE(empty.mode.has_value());

  const TensorFrame t{"model.layers.0.mlp.up_proj.weight", DType::kF32, {200, 96}, 200 * 96 * 4, std::nullopt};
  auto t2 = std::get<TensorFrame>(round_trip(FrameType::kTensor, frame_json(t), t.nbytes));
  EXPECT_EQ(t2.name, t.name);
  EXPECT_EQ(t2.dtype, DType::kF32);
  EXPECT_EQ(t2.shape, t.shape);
  EXPECT_FALSE(t2.crc32.has_value());
  auto scalar = std::get<TensorFrame>(round_trip(FrameType::kTensor, frame_json(TensorFrame{"s", DType::kF16, {}, 2, 0}), 2));
  EXPECT_TRUE(scalar.shape.empty());

  EXPECT_EQ(std::get<AbortFrame>(round_trip(FrameType::kAbort, frame_json(AbortFrame{"nan loss"}))).reason, "nan loss");
  EXPECT_FALSE(std::get<HelloFrame>(round_trip(FrameType::kHello, frame_json(HelloFrame{}))).token.has_value());

  ReplyFrame r;
  r.ok = false;
  r.version = 12;
  r.tag = UpdateTag{uint64_t{9}};
  r.tensors = 3;
  r.bytes = 100;
  r.seconds = 0.5;
  r.error = "tensor 'x' has wrong shape";
  r.code = "invalid argument";
  r.tensor = "x";
  auto r2 = std::get<ReplyFrame>(round_trip(FrameType::kReply, frame_json(r)));
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.version, 12u);
  EXPECT_EQ(std::get<uint64_t>(r2.tag), 9u);
  EXPECT_EQ(r2.tensors, 3);
  EXPECT_EQ(r2.bytes, 100);
  EXPECT_DOUBLE_EQ(r2.seconds, 0.5);
  EXPECT_EQ(r2.error, r.error);
  EXPECT_EQ(r2.code, r.code);
  EXPECT_EQ(r2.tensor, "x");
}

TEST(FrameTest, MalformedHeadersAreNamedErrors) {
  const std::string ok_json = R"({"tensors":1})";
  expect_error(decode(raw_frame("QSWQ", 1, 4, 13, 0, ok_json)).status(), StatusCode::kDataLoss, "bad frame magic");
  expect_error(decode(raw_frame("QSWP", 2, 4, 13, 0, ok_json)).status(), StatusCode::kUnimplemented,
               "protocol version 2 is not supported");
  expect_error(decode(raw_frame("QSWP", 1, 0, 13, 0, ok_json)).status(), StatusCode::kDataLoss, "unknown frame type 0");
  expect_error(decode(raw_frame("QSWP", 1, 7, 13, 0, ok_json)).status(), StatusCode::kDataLoss, "unknown frame type 7");
  expect_error(decode(raw_frame("QSWP", 1, 4, 0, 0, "")).status(), StatusCode::kDataLoss, "empty JSON header");
  expect_error(decode(raw_frame("QSWP", 1, 3, 70000, 0, "")).status(), StatusCode::kDataLoss,
               "70000-byte JSON header (limit 65536)");
  expect_error(decode(raw_frame("QSWP", 1, 4, 13, 4, ok_json)).status(), StatusCode::kDataLoss,
               "COMMIT frame has a 4-byte payload (only TENSOR frames carry one)");
  expect_error(decode(raw_frame("QSWP", 1, 3, 13, 2048, ok_json), FrameLimits{1024, 1024}).status(),
               StatusCode::kDataLoss, "2048-byte payload (limit 1024)");
  expect_error(decode(raw_frame("QSWP", 1, 3, 13, UINT64_MAX, ok_json)).status(), StatusCode::kDataLoss, "limit");
  auto h = decode(raw_frame("QSWP", 1, 3, 13, 1024, ok_json), FrameLimits{1024, 1024});
  ASSERT_TRUE(h.ok()) << h.status().to_string();  // exactly at the limits
}

TEST(FrameTest, MalformedJsonIsANamedError) {
  using nlohmann::json;
  auto tensor = [](const std::string& text, uint64_t payload = 4) {
    return parse(raw_frame("QSWP", 1, 3, static_cast<uint32_t>(text.size()), payload, text));
  };
  auto t = [&](json j, uint64_t payload = 4) { return tensor(j.dump(), payload); };
  const json good = {{"name", "w"}, {"dtype", "BF16"}, {"shape", {2}}, {"nbytes", 4}};
  ASSERT_TRUE(t(good).ok());

  expect_error(tensor("{\"name\":").status(), StatusCode::kDataLoss, "TENSOR frame: bad JSON header");
  expect_error(tensor("[1, 2]").status(), StatusCode::kDataLoss, "not an object");
  expect_error(tensor(R"({"name":"w","name":"v","dtype":"BF16","shape":[2],"nbytes":4})").status(),
               StatusCode::kDataLoss, "bad JSON header");
  expect_error(tensor("{\"name\":\"\xff\"}").status(), StatusCode::kDataLoss, "bad JSON header");

  json j = good;
  j.erase("name");
  expect_error(t(j).status(), StatusCode::kDataLoss, "missing field 'name'");
  j = good;
  j["name"] = "";
  expect_error(t(j).status(), StatusCode::kDataLoss, "field 'name' is empty");
  j["name"] = std::string(1025, 'a');
  expect_error(t(j).status(), StatusCode::kDataLoss, "1025 bytes (limit 1024)");
  j = good;
  j["name"] = 3;
  expect_error(t(j).status(), StatusCode::kDataLoss, "field 'name' must be a string");
  for (const char* dtype : {"I8", "F8_E4M3", "bf16", "F64", "Q4"}) {
    j = good;
    j["dtype"] = dtype;
    expect_error(t(j).status(), StatusCode::kDataLoss, fmt::format("TENSOR frame 'w': dtype '{}' is not one", dtype));
  }
  j = good;
  j["shape"] = "2";
  expect_error(t(j).status(), StatusCode::kDataLoss, "shape is a JSON string");
  for (json bad_dim : {json(-2), json(2.0), json("2"), json(nullptr)}) {
    j = good;
    j["shape"] = {bad_dim};
    expect_error(t(j).status(), StatusCode::kDataLoss, "not a non-negative integer");
  }
  j = good;
  j["shape"] = std::vector<int64_t>(9, 1);
  expect_error(t(j).status(), StatusCode::kDataLoss, "9 dimensions (limit 8)");
  j = good;
  j["shape"] = {int64_t{1} << 40, int64_t{1} << 40};
  expect_error(t(j).status(), StatusCode::kDataLoss, "too many elements");
  j = good;
  j["nbytes"] = 6;
  expect_error(t(j).status(), StatusCode::kDataLoss, "nbytes is 6 but BF16 [2] needs 4 bytes");
  expect_error(t(good, 2).status(), StatusCode::kDataLoss, "payload length is 2 but nbytes is 4");
  j = good;
  j.erase("nbytes");
  expect_error(t(j).status(), StatusCode::kDataLoss, "missing field 'nbytes'");
  j = good;
  j["crc32"] = int64_t{1} << 32;
  expect_error(t(j).status(), StatusCode::kDataLoss, "field 'crc32' must be an integer in [0, 4294967295]");
  j = good;
  j["future_field"] = {{"x", 1}};
  EXPECT_TRUE(t(j).ok()) << "unknown keys are ignored";

  auto other = [](uint16_t type, const std::string& text) {
    return parse(raw_frame("QSWP", 1, type, static_cast<uint32_t>(text.size()), 0, text)).status();
  };
  expect_error(other(4, "{}"), StatusCode::kDataLoss, "COMMIT frame: missing field 'tensors'");
  expect_error(other(4, R"({"tensors":-1})"), StatusCode::kDataLoss, "field 'tensors' must be an integer");
  expect_error(other(2, R"({"mode":"sideways"})"), StatusCode::kDataLoss, "unknown update mode 'sideways'");
  expect_error(other(2, R"({"tag":[1]})"), StatusCode::kDataLoss, "field 'tag' must be a string");
  expect_error(other(1, R"({"token":12345})"), StatusCode::kDataLoss, "HELLO frame: field 'token' must be a string");
  expect_error(other(6, R"({"version":1})"), StatusCode::kDataLoss, "REPLY frame: missing field 'ok'");
}

TEST(FrameTest, TokensCompareByValue) {
  EXPECT_TRUE(token_matches("s3cret", "s3cret"));
  EXPECT_FALSE(token_matches("s3cret", "s3creT"));
  EXPECT_FALSE(token_matches("s3cret", "s3cre"));
  EXPECT_FALSE(token_matches("s3cret", "s3crets3cret"));
  EXPECT_FALSE(token_matches("s3cret", ""));
  EXPECT_TRUE(token_matches("", ""));
  EXPECT_FALSE(token_matches("", "x"));
}

TEST(FrameTest, SocketAddressesParse) {
  auto unix_addr = parse_socket_address("unix:/tmp/q.sock");
  ASSERT_TRUE(unix_addr.ok());
  EXPECT_EQ(unix_addr->kind, SocketAddress::Kind::kUnix);
  EXPECT_EQ(unix_addr->path, "/tmp/q.sock");
  auto tcp = parse_socket_address("tcp://127.0.0.1:5000");
  ASSERT_TRUE(tcp.ok());
  EXPECT_EQ(tcp->host, "127.0.0.1");
  EXPECT_EQ(tcp->port, 5000);
  auto v6 = parse_socket_address("tcp://[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"", "/tmp/q.sock", "unix:", "tcp://127.0.0.1", "tcp://:5000", "tcp://h:65536", "tcp://h:x",
                          "tcp://[::1]5000", "http://h:1"}) {
    EXPECT_EQ(parse_socket_address(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(parse_socket_address("unix:/" + std::string(200, 'a')).status().message().find("limit 107"),
            std::string::npos);
}

}  // namespace
}  // namespace qswap
