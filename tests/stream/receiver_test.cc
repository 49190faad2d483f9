// serve_connection over a socketpair: the fixture fine-tunes streamed frame by frame change what the
// model answers; every malformed stream is a named error, in the reply too, and leaves the live
// kernel tensors byte-identical (transactional mode).
#include <gtest/gtest.h>

#include <mutex>

#include "qswap/stream/receiver.h"
#include "stream_test_util.h"

namespace qswap {
namespace {

using nlohmann::json;
using namespace qswap::testing;  // NOLINT

bool have_fixtures() { return std::filesystem::exists(data_dir() / "arith-mul" / "config.json"); }

// Runs one connection: `bytes` from a sender thread, serve_connection here. Returns the replies.
struct Served {
  Status status;
  std::vector<json> replies;
  std::vector<Result<UpdateStats>> updates;  // what on_update saw
};

Served serve(Engine& engine, const std::string& bytes, ReceiveOptions options = {},
             const std::function<void(const Result<UpdateStats>&)>& also = {}) {
  SocketPair pair = socket_pair();
  Served out;
  options.on_update = [&](const Result<UpdateStats>& r) {
    out.updates.push_back(r);
    if (also) also(r);
  };
  Sender sender(pair.sender.get(), bytes);
  out.status = serve_connection(engine, pair.receiver.get(), options);
  pair.receiver.reset();  // the sender reads replies until this close
  out.replies = sender.replies();
  return out;
}

class ReceiverTest : public ::testing::TestWithParam<bool> {  // read-ahead on/off
 protected:
  void SetUp() override {
    if (!have_fixtures()) GTEST_SKIP() << "fixtures not generated";
  }
  ReceiveOptions options() const {
    ReceiveOptions o;
    o.read_ahead = GetParam();
    return o;
  }
};

TEST_P(ReceiverTest, StreamedFineTunesChangeTheAnswer) {
  auto engine = load_arith_base();
  ASSERT_NE(engine, nullptr);
  const std::vector<std::string> mul = checkpoint_frames("arith-mul");
  const std::vector<std::string> add = checkpoint_frames("arith-add");
  ASSERT_FALSE(mul.empty());
  const CheckpointTensor* q = engine->weight_map().find("model.layers.0.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  const std::byte* qkv = engine->weights().views(q->param)[0].data;

  // Two updates on one connection; on_update runs before each reply, on the serving thread.
  std::vector<std::string> answers;
  Served s = serve(*engine, hello() + update(mul, "mul") + update(add, 2), options(),
                   [&](const Result<UpdateStats>& r) {
                     if (r.ok()) answers.push_back(greedy_answer(*engine, "3 4 ="));
                   });
  ASSERT_TRUE(s.status.ok()) << s.status.to_string();
  EXPECT_EQ(answers, (std::vector<std::string>{" 12", " 7"}));
  EXPECT_EQ(engine->weight_version(), 3u);
  EXPECT_EQ(engine->weights().views(q->param)[0].data, qkv) << "an update moved a kernel tensor";

  ASSERT_EQ(s.replies.size(), 3u);  // HELLO, COMMIT, COMMIT
  EXPECT_EQ(s.replies[0]["ok"], true);
  EXPECT_EQ(s.replies[0]["version"], 1);
  EXPECT_EQ(s.replies[0]["protocol"], 1);
  auto source = open_safetensors_dir(data_dir() / "arith-mul");
  ASSERT_TRUE(source.ok());
  EXPECT_EQ(s.replies[1]["ok"], true);
  EXPECT_EQ(s.replies[1]["version"], 2);
  EXPECT_EQ(s.replies[1]["tag"], "mul");
  EXPECT_EQ(s.replies[1]["tensors"], (*source)->tensors().size());
  EXPECT_EQ(s.replies[1]["bytes"], (*source)->total_bytes());
  EXPECT_EQ(s.replies[2]["version"], 3);
  EXPECT_EQ(s.replies[2]["tag"], 2);
  ASSERT_EQ(s.updates.size(), 2u);
  EXPECT_EQ(s.updates[1]->version, 3u);
}

TEST_P(ReceiverTest, ReceiveUpdateReturnsTheStats) {
  auto engine = load_arith_base();
  ASSERT_NE(engine, nullptr);
  SocketPair pair = socket_pair();
  const std::vector<std::string> mul = checkpoint_frames("arith-mul");
  Sender sender(pair.sender.get(), hello() + update(mul, "mul"));
  Result<UpdateStats> r = receive_update(*engine, pair.receiver.get(), options());
  pair.receiver.reset();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->version, 2u);
  EXPECT_EQ(r->tensors, static_cast<int64_t>(mul.size()));
  EXPECT_EQ(greedy_answer(*engine, "3 4 ="), " 12");
  EXPECT_EQ(sender.replies().size(), 2u);
}

TEST_P(ReceiverTest, AbortLeavesTheWeightsAndTheConnectionGoesOn) {
  auto engine = load_arith_base();
  ASSERT_NE(engine, nullptr);
  const auto before = kernel_bytes(*engine);
  const std::vector<std::string> mul = checkpoint_frames("arith-mul");
  Served s = serve(*engine, hello() + begin({{"tag", "a"}}) + join(mul, 0, 5) + abort_frame("loss was NaN") +
                                update(mul, "b"),
                   options());
  ASSERT_TRUE(s.status.ok()) << s.status.to_string();
  ASSERT_EQ(s.replies.size(), 3u);
  EXPECT_EQ(s.replies[1]["ok"], true);
  EXPECT_EQ(s.replies[1]["version"], 1);
  EXPECT_EQ(s.replies[2]["version"], 2);
  ASSERT_EQ(s.updates.size(), 2u);
  EXPECT_EQ(s.updates[0].status().code(), StatusCode::kAborted);
  EXPECT_NE(s.updates[0].status().message().find("loss was NaN"), std::string::npos);
  EXPECT_NE(kernel_bytes(*engine), before);
}

TEST_P(ReceiverTest, InPlaceFailureRefusesServingUntilACompleteUpdate) {
  auto engine = load_arith_base(UpdateMode::kInPlace);
  ASSERT_NE(engine, nullptr);
  const std::vector<std::string> mul = checkpoint_frames("arith-mul");
  Served half = serve(*engine, hello() + begin({{"tag", "half"}}) + join(mul, 0, mul.size() / 2), options());
  EXPECT_EQ(half.status.code(), StatusCode::kDataLoss);
  const Status serving = engine->check_servable();
  EXPECT_EQ(serving.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(serving.message().find("in the middle of update 'half'"), std::string::npos) << serving.message();

  Served full = serve(*engine, hello() + update(mul, "full"), options());
  ASSERT_TRUE(full.status.ok()) << full.status.to_string();
  EXPECT_TRUE(engine->check_servable().ok());
  EXPECT_EQ(greedy_answer(*engine, "3 4 ="), " 12");
}

TEST_P(ReceiverTest, SenderChoosesTheModeInBegin) {
  auto engine = load_arith_base(UpdateMode::kTransactional);
  ASSERT_NE(engine, nullptr);
  const std::vector<std::string> mul = checkpoint_frames("arith-mul");
  Served s = serve(*engine, hello() + begin({{"mode", "in-place"}}) + join(mul) + commit(static_cast<int64_t>(mul.size())),
                   options());
  ASSERT_TRUE(s.status.ok()) << s.status.to_string();
  ASSERT_EQ(s.updates.size(), 1u);
  EXPECT_EQ(s.updates[0]->mode, UpdateMode::kInPlace);
}

TEST_P(ReceiverTest, SilenceTimesOutInsideAnUpdateButNotBetweenUpdates) {
  auto engine = load_arith_base();
  ASSERT_NE(engine, nullptr);
  const auto before = kernel_bytes(*engine);
  const std::vector<std::string> mul = checkpoint_frames("arith-mul");
  ReceiveOptions o = options();
  o.idle_timeout = std::chrono::milliseconds(400);
  o.hello_timeout = std::chrono::milliseconds(200);
  o.linger = std::chrono::milliseconds(0);

  // Connected, and not a word: the HELLO timeout.
  {
    SocketPair pair = socket_pair();
    Status s = serve_connection(*engine, pair.receiver.get(), o);
    EXPECT_EQ(s.code(), StatusCode::kIoError);
    EXPECT_NE(s.message().find("frame 1: the sender sent nothing for 0.2 s (timeout)"), std::string::npos)
        << s.message();
  }
  // Silent for longer than the timeout between two updates: fine. Inside the second: not.
  SocketPair pair = socket_pair();
  std::vector<json> replies;
  std::thread sender([&] {
    send_bytes(pair.sender.get(), hello() + update(mul, 1));
    replies.push_back(read_reply(pair.sender.get()));
    replies.push_back(read_reply(pair.sender.get()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // 3 idle timeouts
    send_bytes(pair.sender.get(), begin({{"tag", 2}}) + join(mul, 0, 3));
    replies.push_back(read_reply(pair.sender.get()));  // the timeout's error
  });
  Status s = serve_connection(*engine, pair.receiver.get(), o);
  sender.join();
  EXPECT_EQ(s.code(), StatusCode::kIoError) << s.to_string();
  // HELLO, BEGIN, the tensors, COMMIT, BEGIN, 3 tensors: the next frame is the silent one.
  const std::string silent = fmt::format("frame {}: the sender sent nothing", mul.size() + 8);
  EXPECT_NE(s.message().find(silent), std::string::npos) << s.message();
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(replies[1]["version"], 2);
  EXPECT_EQ(replies[2]["ok"], false);
  EXPECT_EQ(replies[2]["tag"], 2);
  EXPECT_EQ(replies[2]["tensors"], 3);
  EXPECT_EQ(engine->weight_version(), 2u);
  EXPECT_EQ(greedy_answer(*engine, "3 4 ="), " 12");
  EXPECT_NE(kernel_bytes(*engine), before);
}

// One malformed stream: the error it must produce, and whether the reply names a tensor.
struct BadStream {
  std::string name;
  std::function<std::string(const std::vector<std::string>& mul)> bytes;
  StatusCode code;
  std::string message;     // a substring of the error
  std::string tensor = ""; // the reply's "tensor" field
  std::string token = "";  // the receiver's token
  uint64_t max_payload = kDefaultMaxPayloadBytes;
};

void PrintTo(const BadStream& bad, std::ostream* os) { *os << bad.name; }

std::vector<BadStream> bad_streams() {
  auto mid = [](const std::vector<std::string>& mul) { return hello() + begin({{"tag", 5}}) + join(mul, 0, 4); };
  const std::string bf16_pair("\x80\x3f\x00\xc0", 4);
  return {
      {"BadMagicFirst", [](auto&) { return testing::raw_frame("QSWQ", 1, 1, 2, 0, "{}"); }, StatusCode::kDataLoss,
       "frame 1: bad frame magic"},
      {"BadMagicMidUpdate", [=](auto& m) { return mid(m) + testing::raw_frame("HTTP", 1, 3, 2, 0, "{}"); },
       StatusCode::kDataLoss, "frame 7: bad frame magic"},
      {"UnknownVersion", [=](auto& m) { return mid(m) + testing::raw_frame("QSWP", 9, 4, 2, 0, "{}"); },
       StatusCode::kUnimplemented, "protocol version 9 is not supported"},
      {"UnknownType", [=](auto& m) { return mid(m) + testing::raw_frame("QSWP", 1, 99, 2, 0, "{}"); },
       StatusCode::kDataLoss, "unknown frame type 99"},
      {"OversizeHeader", [=](auto& m) { return mid(m) + testing::raw_frame("QSWP", 1, 3, 1u << 30, 0, "{"); },
       StatusCode::kDataLoss, "1073741824-byte JSON header (limit 65536)"},
      {"OversizePayload",
       [=](auto& m) { return mid(m) + tensor_frame("model.norm.weight", "F32", {96 * 1024}, std::string(96 * 4096, '\0')); },
       StatusCode::kDataLoss, "393216-byte payload (limit 300000)", "", "", 300000},
      {"PayloadOnCommit", [=](auto& m) { return mid(m) + testing::raw_frame("QSWP", 1, 4, 13, 1, R"({"tensors":4})", "x"); },
       StatusCode::kDataLoss, "COMMIT frame has a 1-byte payload"},
      {"BadJson", [=](auto& m) { return mid(m) + testing::raw_frame("QSWP", 1, 3, 9, 0, R"({"name":})"); },
       StatusCode::kDataLoss, "frame 7: TENSOR frame: bad JSON header"},
      {"UnknownDtype",
       [=](auto& m) { return mid(m) + frame(3, {{"name", "w"}, {"dtype", "I8"}, {"shape", {4}}, {"nbytes", 4}}, "abcd"); },
       StatusCode::kDataLoss, "TENSOR frame 'w': dtype 'I8' is not one the stream carries"},
      {"ShapeNbytesMismatch",
       [=](auto& m) {
         return mid(m) + frame(3, {{"name", "w"}, {"dtype", "BF16"}, {"shape", {3}}, {"nbytes", 4}}, bf16_pair);
       },
       StatusCode::kDataLoss, "TENSOR frame 'w': nbytes is 4 but BF16 [3] needs 6 bytes"},
      {"CrcMismatch",
       [=](auto& m) {
         return mid(m) + frame(3, {{"name", "w"}, {"dtype", "BF16"}, {"shape", {2}}, {"nbytes", 4}, {"crc32", 12345}},
                               bf16_pair);
       },
       StatusCode::kDataLoss, "TENSOR 'w': the payload's CRC-32 is 0x784e093a but the frame says 0x00003039", "w"},
      {"EofMidHeader", [=](auto& m) { return mid(m) + m[4].substr(0, 7); }, StatusCode::kDataLoss,
       "frame 7: the connection closed after 7 of the 20 bytes of the frame header"},
      {"EofMidPayload",
       [=](auto& m) {
         const std::string norm = tensor_frame("model.norm.weight", "BF16", {96}, std::string(192, '\0'));
         return mid(m) + norm.substr(0, norm.size() - 10);
       },
       StatusCode::kDataLoss, "TENSOR 'model.norm.weight': the connection closed after 182 of the 192 payload bytes",
       "model.norm.weight"},
      {"EofBetweenFrames", [=](auto& m) { return mid(m); }, StatusCode::kDataLoss,
       "the sender closed the connection in the middle of update 5 (4 tensors received, no COMMIT)"},
      {"TensorBeforeBegin", [](auto& m) { return hello() + m[0]; }, StatusCode::kDataLoss, "frame 2: TENSOR '"},
      {"CommitWithoutBegin", [](auto&) { return hello() + commit(0); }, StatusCode::kDataLoss, "COMMIT without BEGIN"},
      {"BeginInsideUpdate", [=](auto& m) { return mid(m) + begin(); }, StatusCode::kDataLoss, "BEGIN inside update 5"},
      {"CommitCountMismatch", [=](auto& m) { return mid(m) + commit(5); }, StatusCode::kDataLoss,
       "COMMIT says 5 tensors were sent in update 5 but 4 arrived"},
      {"AnnouncedCountMismatch",
       [](auto& m) { return hello() + begin({{"tensors", 99}}) + join(m) + commit(static_cast<int64_t>(m.size())); },
       StatusCode::kDataLoss, "BEGIN announced 99 tensors"},
      {"MissingTensors",
       [](auto& m) { return hello() + begin() + join(m, 1) + commit(static_cast<int64_t>(m.size()) - 1); },
       StatusCode::kNotFound, "never arrived"},
      {"WrongShape",
       [=](auto& m) {
         return mid(m) + tensor_frame("model.norm.weight", "BF16", {95}, std::string(190, '\0'));
       },
       StatusCode::kInvalidArgument, "tensor 'model.norm.weight' has wrong shape; expected [96], got [95]",
       "model.norm.weight"},
      {"UnknownTensor",
       [=](auto& m) { return mid(m) + tensor_frame("w", "BF16", {2}, bf16_pair); }, StatusCode::kInvalidArgument,
       "tensor 'w' is not a weight", "w"},
      {"NotHelloFirst", [](auto& m) { return begin() + m[0]; }, StatusCode::kDataLoss,
       "frame 1: a connection starts with HELLO, not BEGIN"},
      {"TensorFirst", [](auto& m) { return m[0]; }, StatusCode::kDataLoss,
       "frame 1: a connection starts with HELLO, not TENSOR"},
      {"SecondHello", [](auto&) { return hello() + hello(); }, StatusCode::kDataLoss, "HELLO again"},
      {"MissingToken", [](auto& m) { return hello() + update(m, 1); }, StatusCode::kInvalidArgument,
       "authentication failed: this receiver requires a token and HELLO has none", "", "s3cret"},
      {"WrongToken", [](auto& m) { return hello("s3creT") + update(m, 1); }, StatusCode::kInvalidArgument,
       "authentication failed: wrong token", "", "s3cret"},
  };
}

class BadStreamTest : public ::testing::TestWithParam<std::tuple<BadStream, bool>> {
 protected:
  static void SetUpTestSuite() {
    if (!have_fixtures()) return;
    engine_ = load_arith_base().release();
    mul_ = new std::vector<std::string>(checkpoint_frames("arith-mul"));
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete mul_;
    engine_ = nullptr;
    mul_ = nullptr;
  }
  void SetUp() override {
    if (!have_fixtures()) GTEST_SKIP() << "fixtures not generated";
  }
  static Engine* engine_;
  static std::vector<std::string>* mul_;
};
Engine* BadStreamTest::engine_ = nullptr;
std::vector<std::string>* BadStreamTest::mul_ = nullptr;

TEST_P(BadStreamTest, IsANamedErrorAndChangesNothing) {
  const auto& [bad, read_ahead] = GetParam();
  ASSERT_NE(engine_, nullptr);
  const auto before = kernel_bytes(*engine_);
  const uint64_t version = engine_->weight_version();
  ReceiveOptions options;
  options.read_ahead = read_ahead;
  options.token = bad.token;
  options.max_payload_bytes = bad.max_payload;
  options.linger = std::chrono::milliseconds(2000);
  Served s = serve(*engine_, bad.bytes(*mul_), options);

  EXPECT_EQ(s.status.code(), bad.code) << s.status.to_string();
  EXPECT_NE(s.status.message().find(bad.message), std::string::npos) << s.status.message();
  ASSERT_FALSE(s.replies.empty());
  const json& last = s.replies.back();
  EXPECT_EQ(last["ok"], false);
  EXPECT_EQ(last["error"], s.status.message());
  EXPECT_EQ(last["code"], std::string(status_code_name(bad.code)));
  EXPECT_EQ(last["version"], version);
  if (!bad.tensor.empty()) {
    EXPECT_EQ(last.value("tensor", ""), bad.tensor);
  }
  ASSERT_EQ(s.updates.size(), 1u) << "on_update sees the failure once";
  EXPECT_EQ(s.updates[0].status().message(), s.status.message());

  EXPECT_EQ(engine_->weight_version(), version);
  EXPECT_TRUE(engine_->check_servable().ok());
  EXPECT_TRUE(kernel_bytes(*engine_) == before) << "a failed transactional update touched the live weights";
}

INSTANTIATE_TEST_SUITE_P(ReadAhead, ReceiverTest, ::testing::Bool(),
                         [](const auto& param_info) { return param_info.param ? "read_ahead" : "sync"; });

INSTANTIATE_TEST_SUITE_P(All, BadStreamTest, ::testing::Combine(::testing::ValuesIn(bad_streams()), ::testing::Bool()),
                         [](const auto& param_info) {
                           return std::get<0>(param_info.param).name +
                                  (std::get<1>(param_info.param) ? "_read_ahead" : "_sync");
                         });

}  // namespace
}  // namespace qswap
