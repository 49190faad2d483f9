// The weight-stream protocol, version 1 (docs/protocol.md): a trainer pushes new weights to the
// engine as a sequence of frames. This file is the wire format only: the fixed frame header, the
// limits, and the JSON header of each frame type, as pure functions (no I/O).
//
// Frame = 20-byte little-endian header | JSON header (UTF-8 object) | payload (TENSOR only):
//   magic "QSWP" | version u16 | type u16 | JSON length u32 | payload length u64
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "qswap/base/status.h"
#include "qswap/engine/engine.h"
#include "qswap/tensor/dtype.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

inline constexpr std::array<char, 4> kFrameMagic = {'Q', 'S', 'W', 'P'};
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderBytes = 20;

inline constexpr uint32_t kDefaultMaxJsonBytes = 64 * 1024;
inline constexpr uint64_t kDefaultMaxPayloadBytes = uint64_t{16} << 30;  // 16 GiB: one tensor
inline constexpr size_t kMaxNdim = 8;
inline constexpr size_t kMaxNameBytes = 1024;  // tensor names, tags, tokens, reasons

// Values are part of the wire format: never renumbered, retired values never reused.
enum class FrameType : uint16_t {
  kHello = 1,   // sender -> receiver: authentication; answered by a REPLY
  kBegin = 2,   // starts an update
  kTensor = 3,  // one checkpoint tensor; the only frame with a payload
  kCommit = 4,  // ends an update; answered by a REPLY
  kAbort = 5,   // abandons an update; answered by a REPLY
  kReply = 6,   // receiver -> sender
};
std::string_view frame_type_name(FrameType type);  // "TENSOR"; "type 9" for unknown values

struct FrameLimits {
  uint32_t max_json_bytes = kDefaultMaxJsonBytes;
  uint64_t max_payload_bytes = kDefaultMaxPayloadBytes;
};

struct FrameHeader {
  uint16_t version = kProtocolVersion;
  FrameType type = FrameType::kHello;
  uint32_t json_bytes = 0;
  uint64_t payload_bytes = 0;
};

using FrameHeaderBytes = std::array<std::byte, kFrameHeaderBytes>;

FrameHeaderBytes encode_frame_header(FrameType type, uint32_t json_bytes, uint64_t payload_bytes);
// Checks the magic, the version, the type, the limits, and that only TENSOR carries a payload.
// An empty JSON header is refused too (every frame's JSON is an object, at least "{}").
Result<FrameHeader> decode_frame_header(std::span<const std::byte, kFrameHeaderBytes> bytes,
                                        const FrameLimits& limits);
// A whole frame in one buffer (replies, tests, small senders).
std::vector<std::byte> encode_frame(FrameType type, std::string_view json,
                                    std::span<const std::byte> payload = {});

// The sender's label for an update (a string or a non-negative integer), echoed in the reply.
using UpdateTag = std::variant<std::monostate, std::string, uint64_t>;

struct HelloFrame {
  std::optional<std::string> token;
  std::string client;  // free text for logs ("qswap.client/1 python/3.11")
};

struct BeginFrame {
  UpdateTag tag;
  std::optional<UpdateMode> mode;      // absent: the receiver's default
  std::optional<int64_t> tensors;      // announced counts, for progress and a final check
  std::optional<int64_t> bytes;
};

struct TensorFrame {
  std::string name;
  DType dtype = DType::kBF16;          // BF16, F16 or F32
  Shape shape;
  uint64_t nbytes = 0;                 // numel(shape) * dtype size == payload length
  std::optional<uint32_t> crc32;       // zlib CRC-32 of the payload
};

struct CommitFrame {
  int64_t tensors = 0;                 // TENSOR frames the sender sent in this update
};

struct AbortFrame {
  std::string reason;
};

struct ReplyFrame {
  bool ok = false;
  uint64_t version = 0;                // the receiver's weight version after this frame
  UpdateTag tag;
  int64_t tensors = 0;                 // tensors applied in this update
  int64_t bytes = 0;                   // their payload bytes
  double seconds = 0;                  // since BEGIN
  std::string error;                   // ok == false: what went wrong, naming the tensor
  std::string code;                    // ok == false: status code name ("data loss")
  std::string tensor;                  // the tensor the error concerns, if any
  std::optional<uint16_t> protocol;    // HELLO replies: the receiver's protocol version
  std::optional<uint64_t> max_payload_bytes;  // HELLO replies: the receiver's limit
};

using FrameMessage = std::variant<HelloFrame, BeginFrame, TensorFrame, CommitFrame, AbortFrame, ReplyFrame>;

// Parses and validates the JSON header of a frame whose fixed header is `header`. Unknown keys are
// ignored (additions within a version); a known key of the wrong type or value is an error.
// TENSOR: the shape, dtype, nbytes and payload length must agree.
Result<FrameMessage> parse_frame_json(const FrameHeader& header, std::string_view json);

// The JSON header of each frame type (compact, keys as in docs/protocol.md).
std::string frame_json(const HelloFrame& frame);
std::string frame_json(const BeginFrame& frame);
std::string frame_json(const TensorFrame& frame);
std::string frame_json(const CommitFrame& frame);
std::string frame_json(const AbortFrame& frame);
std::string frame_json(const ReplyFrame& frame);

FrameType frame_type_of(const FrameMessage& message);
std::string format_tag(const UpdateTag& tag);  // "'step-3'", "7", or "(none)"

// zlib's CRC-32 (Python's zlib.crc32), continued from `crc` (0 to start).
uint32_t crc32_update(uint32_t crc, std::span<const std::byte> bytes);

}  // namespace qswap
