#include "qswap/stream/frame.h"

#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>
#include <zlib.h>

#include "qswap/base/untrusted.h"
#include "qswap/io/json_strict.h"

namespace qswap {
namespace {

using nlohmann::json;

void store_le(std::byte* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

bool known_type(uint16_t type) { return type >= 1 && type <= 6; }

static_assert(std::is_same_v<std::variant_alternative_t<0, FrameMessage>, HelloFrame> &&
                  std::is_same_v<std::variant_alternative_t<2, FrameMessage>, TensorFrame> &&
                  std::is_same_v<std::variant_alternative_t<5, FrameMessage>, ReplyFrame>,
              "FrameMessage lists the frame types in wire order (frame_type_of)");

// Compact JSON; invalid UTF-8 in a string (a C++ caller's name, a quoted message) is replaced,
// never thrown.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Reads the known keys of one frame's JSON object; every error names the frame and the key.
class Fields {
 public:
  Fields(const json& object, std::string what) : object_(object), what_(std::move(what)) {}

  const json* find(std::string_view key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }

  Status missing(std::string_view key) const { return data_loss("{}: missing field '{}'", what_, key); }
  Status wrong(std::string_view key, std::string_view expected, const json& v) const {
    return data_loss("{}: field '{}' must be {}, got {} {}", what_, key, expected, json_type_name(v),
                     quote_untrusted(dump(v)));
  }

  // A string of at most kMaxNameBytes bytes; nullopt if absent.
  Result<std::optional<std::string>> string(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::optional<std::string>();
    if (!v->is_string()) return wrong(key, "a string", *v);
    const std::string& s = v->get_ref<const std::string&>();
    if (s.size() > kMaxNameBytes) {
      return data_loss("{}: field '{}' has {} bytes (limit {})", what_, key, s.size(), kMaxNameBytes);
    }
    return std::optional<std::string>(s);
  }

  // A non-negative integer <= max (JSON 2.0 and -0 are not integers here); nullopt if absent.
  Result<std::optional<uint64_t>> uint(std::string_view key, uint64_t max) const {
    const json* v = find(key);
    if (v == nullptr) return std::optional<uint64_t>();
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      return wrong(key, fmt::format("an integer in [0, {}]", max), *v);
    }
    return std::optional<uint64_t>(v->get<uint64_t>());
  }

  const std::string& what() const { return what_; }

 private:
  const json& object_;
  std::string what_;
};

constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

Result<UpdateTag> parse_tag(const Fields& f) {
  const json* v = f.find("tag");
  if (v == nullptr || v->is_null()) return UpdateTag{};
  if (v->is_number_unsigned()) return UpdateTag{v->get<uint64_t>()};
  QSWAP_ASSIGN_OR_RETURN(std::optional<std::string> s, f.string("tag"));
  return UpdateTag{std::move(*s)};
}

void put_tag(json& j, const UpdateTag& tag) {
  if (const auto* s = std::get_if<std::string>(&tag)) j["tag"] = *s;
  if (const auto* n = std::get_if<uint64_t>(&tag)) j["tag"] = *n;
}

Result<FrameMessage> parse_hello(const Fields& f) {
  HelloFrame h;
  QSWAP_ASSIGN_OR_RETURN(h.token, f.string("token"));
  QSWAP_ASSIGN_OR_RETURN(std::optional<std::string> client, f.string("client"));
  h.client = client.value_or("");
  return FrameMessage{std::move(h)};
}

Result<FrameMessage> parse_begin(const Fields& f) {
  BeginFrame b;
  QSWAP_ASSIGN_OR_RETURN(b.tag, parse_tag(f));
  QSWAP_ASSIGN_OR_RETURN(std::optional<std::string> mode, f.string("mode"));
  if (mode) {
    Result<UpdateMode> m = parse_update_mode(*mode);
    if (!m.ok()) return data_loss("{}: field 'mode': {}", f.what(), m.status().message());
    b.mode = *m;
  }
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> tensors, f.uint("tensors", kMaxInt64));
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> bytes, f.uint("bytes", kMaxInt64));
  if (tensors) b.tensors = static_cast<int64_t>(*tensors);
  if (bytes) b.bytes = static_cast<int64_t>(*bytes);
  return FrameMessage{std::move(b)};
}

Result<FrameMessage> parse_tensor(const Fields& f, uint64_t payload_bytes) {
  TensorFrame t;
  QSWAP_ASSIGN_OR_RETURN(std::optional<std::string> name, f.string("name"));
  if (!name) return f.missing("name");
  if (name->empty()) return data_loss("{}: field 'name' is empty", f.what());
  t.name = std::move(*name);
  const std::string what = fmt::format("{} {}", f.what(), quote_untrusted(t.name));

  QSWAP_ASSIGN_OR_RETURN(std::optional<std::string> dtype, f.string("dtype"));
  if (!dtype) return data_loss("{}: missing field 'dtype'", what);
  std::optional<DType> dt = dtype_from_safetensors(*dtype);
  if (!dt || (*dt != DType::kBF16 && *dt != DType::kF16 && *dt != DType::kF32)) {
    return data_loss("{}: dtype {} is not one the stream carries (BF16, F16 or F32)", what, quote_untrusted(*dtype));
  }
  t.dtype = *dt;

  const json* shape = f.find("shape");
  if (shape == nullptr) return data_loss("{}: missing field 'shape'", what);
  if (!shape->is_array()) return data_loss("{}: shape is a JSON {}, not an array", what, json_type_name(*shape));
  if (shape->size() > kMaxNdim) {
    return data_loss("{}: shape has {} dimensions (limit {})", what, shape->size(), kMaxNdim);
  }
  for (const json& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > kMaxInt64) {
      return data_loss("{}: shape {} has a dimension that is not a non-negative integer", what, quote_untrusted(dump(*shape)));
    }
    t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }
  std::optional<int64_t> numel = checked_num_elements(t.shape);
  const uint64_t size = dtype_size(t.dtype);
  if (!numel || static_cast<uint64_t>(*numel) > std::numeric_limits<uint64_t>::max() / size) {
    return data_loss("{}: shape {} has too many elements", what, format_shape(t.shape));
  }
  const uint64_t expected = static_cast<uint64_t>(*numel) * size;

  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> nbytes, f.uint("nbytes", std::numeric_limits<uint64_t>::max()));
  if (!nbytes) return data_loss("{}: missing field 'nbytes'", what);
  t.nbytes = *nbytes;
  if (t.nbytes != expected) {
    return data_loss("{}: nbytes is {} but {} {} needs {} bytes", what, t.nbytes, *dtype, format_shape(t.shape),
                     expected);
  }
  if (payload_bytes != t.nbytes) {
    return data_loss("{}: the frame's payload length is {} but nbytes is {}", what, payload_bytes, t.nbytes);
  }
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> crc, f.uint("crc32", 0xFFFFFFFFu));
  if (crc) t.crc32 = static_cast<uint32_t>(*crc);
  return FrameMessage{std::move(t)};
}

Result<FrameMessage> parse_commit(const Fields& f) {
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> tensors, f.uint("tensors", kMaxInt64));
  if (!tensors) return f.missing("tensors");
  return FrameMessage{CommitFrame{static_cast<int64_t>(*tensors)}};
}

Result<FrameMessage> parse_abort(const Fields& f) {
  QSWAP_ASSIGN_OR_RETURN(std::optional<std::string> reason, f.string("reason"));
  return FrameMessage{AbortFrame{reason.value_or("")}};
}

Result<FrameMessage> parse_reply(const Fields& f) {
  ReplyFrame r;
  const json* ok = f.find("ok");
  if (ok == nullptr) return f.missing("ok");
  if (!ok->is_boolean()) return f.wrong("ok", "a boolean", *ok);
  r.ok = ok->get<bool>();
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> version, f.uint("version", std::numeric_limits<uint64_t>::max()));
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> tensors, f.uint("tensors", kMaxInt64));
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> bytes, f.uint("bytes", kMaxInt64));
  r.version = version.value_or(0);
  r.tensors = static_cast<int64_t>(tensors.value_or(0));
  r.bytes = static_cast<int64_t>(bytes.value_or(0));
  if (const json* s = f.find("seconds"); s != nullptr) {
    if (!s->is_number()) return f.wrong("seconds", "a number", *s);
    r.seconds = s->get<double>();
  }
  QSWAP_ASSIGN_OR_RETURN(r.tag, parse_tag(f));
  // Replies carry the receiver's own messages, which may quote long names: no length limit here.
  for (auto [key, out] : {std::pair{"error", &r.error}, {"code", &r.code}, {"tensor", &r.tensor}}) {
    const json* v = f.find(key);
    if (v == nullptr || v->is_null()) continue;
    if (!v->is_string()) return f.wrong(key, "a string", *v);
    *out = v->get<std::string>();
  }
  QSWAP_ASSIGN_OR_RETURN(std::optional<uint64_t> protocol, f.uint("protocol", 0xFFFF));
  if (protocol) r.protocol = static_cast<uint16_t>(*protocol);
  QSWAP_ASSIGN_OR_RETURN(r.max_payload_bytes, f.uint("max_payload_bytes", std::numeric_limits<uint64_t>::max()));
  return FrameMessage{std::move(r)};
}

}  // namespace

std::string_view frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kBegin: return "BEGIN";
    case FrameType::kTensor: return "TENSOR";
    case FrameType::kCommit: return "COMMIT";
    case FrameType::kAbort: return "ABORT";
    case FrameType::kReply: return "REPLY";
  }
  return "unknown";
}

FrameHeaderBytes encode_frame_header(FrameType type, uint32_t json_bytes, uint64_t payload_bytes) {
  FrameHeaderBytes b{};
  std::memcpy(b.data(), kFrameMagic.data(), 4);
  store_le(b.data() + 4, kProtocolVersion, 2);
  store_le(b.data() + 6, static_cast<uint16_t>(type), 2);
  store_le(b.data() + 8, json_bytes, 4);
  store_le(b.data() + 12, payload_bytes, 8);
  return b;
}

Result<FrameHeader> decode_frame_header(std::span<const std::byte, kFrameHeaderBytes> bytes,
                                        const FrameLimits& limits) {
  if (std::memcmp(bytes.data(), kFrameMagic.data(), 4) != 0) {
    return data_loss("bad frame magic 0x{:08x} (expected \"QSWP\", 0x{:08x}): not a qswap weight stream, or out of "
                     "step with it",
                     load_le(bytes.data(), 4), load_le(reinterpret_cast<const std::byte*>(kFrameMagic.data()), 4));
  }
  FrameHeader h;
  h.version = static_cast<uint16_t>(load_le(bytes.data() + 4, 2));
  const auto type = static_cast<uint16_t>(load_le(bytes.data() + 6, 2));
  h.json_bytes = static_cast<uint32_t>(load_le(bytes.data() + 8, 4));
  h.payload_bytes = load_le(bytes.data() + 12, 8);
  if (h.version != kProtocolVersion) {
    return unimplemented("protocol version {} is not supported (this receiver speaks version {})", h.version,
                         kProtocolVersion);
  }
  if (!known_type(type)) return data_loss("unknown frame type {}", type);
  h.type = static_cast<FrameType>(type);
  if (h.json_bytes == 0) return data_loss("{} frame has an empty JSON header", frame_type_name(h.type));
  if (h.json_bytes > limits.max_json_bytes) {
    return data_loss("{} frame has a {}-byte JSON header (limit {})", frame_type_name(h.type), h.json_bytes,
                     limits.max_json_bytes);
  }
  if (h.type != FrameType::kTensor && h.payload_bytes != 0) {
    return data_loss("{} frame has a {}-byte payload (only TENSOR frames carry one)", frame_type_name(h.type),
                     h.payload_bytes);
  }
  if (h.payload_bytes > limits.max_payload_bytes) {
    return data_loss("TENSOR frame has a {}-byte payload (limit {})", h.payload_bytes, limits.max_payload_bytes);
  }
  return h;
}

std::vector<std::byte> encode_frame(FrameType type, std::string_view json_text, std::span<const std::byte> payload) {
  std::vector<std::byte> out(kFrameHeaderBytes + json_text.size() + payload.size());
  const FrameHeaderBytes h = encode_frame_header(type, static_cast<uint32_t>(json_text.size()), payload.size());
  std::memcpy(out.data(), h.data(), h.size());
  std::memcpy(out.data() + kFrameHeaderBytes, json_text.data(), json_text.size());
  if (!payload.empty()) std::memcpy(out.data() + kFrameHeaderBytes + json_text.size(), payload.data(), payload.size());
  return out;
}

Result<FrameMessage> parse_frame_json(const FrameHeader& header, std::string_view text) {
  const std::string what = fmt::format("{} frame", frame_type_name(header.type));
  Result<json> parsed = parse_json_strict(text);
  if (!parsed.ok()) return data_loss("{}: bad JSON header: {}", what, parsed.status().message());
  if (!parsed->is_object()) return data_loss("{}: JSON header is a {}, not an object", what, json_type_name(*parsed));
  Fields f(*parsed, what);
  switch (header.type) {
    case FrameType::kHello: return parse_hello(f);
    case FrameType::kBegin: return parse_begin(f);
    case FrameType::kTensor: return parse_tensor(f, header.payload_bytes);
    case FrameType::kCommit: return parse_commit(f);
    case FrameType::kAbort: return parse_abort(f);
    case FrameType::kReply: return parse_reply(f);
  }
  return data_loss("unknown frame type {}", static_cast<uint16_t>(header.type));
}

std::string frame_json(const HelloFrame& frame) {
  json j = json::object();
  if (frame.token) j["token"] = *frame.token;
  if (!frame.client.empty()) j["client"] = frame.client;
  return dump(j);
}

std::string frame_json(const BeginFrame& frame) {
  json j = json::object();
  put_tag(j, frame.tag);
  if (frame.mode) j["mode"] = std::string(update_mode_name(*frame.mode));
  if (frame.tensors) j["tensors"] = *frame.tensors;
  if (frame.bytes) j["bytes"] = *frame.bytes;
  return dump(j);
}

std::string frame_json(const TensorFrame& frame) {
  json j = {{"name", frame.name},
            {"dtype", std::string(dtype_info(frame.dtype).safetensors)},
            {"shape", frame.shape},
            {"nbytes", frame.nbytes}};
  if (frame.crc32) j["crc32"] = *frame.crc32;
  return dump(j);
}

std::string frame_json(const CommitFrame& frame) { return dump(json{{"tensors", frame.tensors}}); }

std::string frame_json(const AbortFrame& frame) {
  json j = json::object();
  if (!frame.reason.empty()) j["reason"] = frame.reason;
  return dump(j);
}

std::string frame_json(const ReplyFrame& frame) {
  json j = {{"ok", frame.ok},           {"version", frame.version}, {"tensors", frame.tensors},
            {"bytes", frame.bytes},     {"seconds", frame.seconds}};
  put_tag(j, frame.tag);
  if (!frame.ok) {
    j["error"] = frame.error;
    j["code"] = frame.code;
    if (!frame.tensor.empty()) j["tensor"] = frame.tensor;
  }
  if (frame.protocol) j["protocol"] = *frame.protocol;
  if (frame.max_payload_bytes) j["max_payload_bytes"] = *frame.max_payload_bytes;
  return dump(j);
}

FrameType frame_type_of(const FrameMessage& message) {
  return static_cast<FrameType>(message.index() + 1);  // the variant lists the types in wire order
}

std::string format_tag(const UpdateTag& tag) {
  if (const auto* s = std::get_if<std::string>(&tag)) return quote_untrusted(*s);
  if (const auto* n = std::get_if<uint64_t>(&tag)) return std::to_string(*n);
  return "(none)";
}

uint32_t crc32_update(uint32_t crc, std::span<const std::byte> bytes) {
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  size_t n = bytes.size();
  uLong c = crc;
  while (n > 0) {  // zlib's length is a uInt
    const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
    c = ::crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(c);
}

}  // namespace qswap
