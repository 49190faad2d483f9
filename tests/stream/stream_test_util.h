// Test-side weight-stream sender: frames are packed here by hand from docs/protocol.md (not with
// the library's encoder), CRCs come from zlib directly, and replies are decoded by hand too.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../engine/fixtures.h"
#include "qswap/engine/engine.h"
#include "qswap/io/safetensors.h"
#include "qswap/stream/socket.h"

namespace qswap::testing {

inline std::filesystem::path stream_test_dir() { return QSWAP_STREAM_TEST_DIR; }

inline void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

// A frame with every header field given explicitly (for malformed ones).
inline std::string raw_frame(std::string_view magic, uint16_t version, uint16_t type, uint32_t json_len,
                             uint64_t payload_len, std::string_view json_text, std::string_view payload = {}) {
  std::string f(magic);
  put_le(f, version, 2);
  put_le(f, type, 2);
  put_le(f, json_len, 4);
  put_le(f, payload_len, 8);
  f += json_text;
  f += payload;
  return f;
}

inline std::string frame(uint16_t type, const nlohmann::json& header, std::string_view payload = {}) {
  const std::string text = header.dump();
  return raw_frame("QSWP", 1, type, static_cast<uint32_t>(text.size()), payload.size(), text, payload);
}

inline uint32_t zlib_crc(std::string_view bytes) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

inline std::string hello(const std::string& token = "") {
  nlohmann::json h = {{"client", "stream_test"}};
  if (!token.empty()) h["token"] = token;
  return frame(1, h);
}
inline std::string begin(const nlohmann::json& header = nlohmann::json::object()) { return frame(2, header); }
inline std::string commit(int64_t tensors) { return frame(4, {{"tensors", tensors}}); }
inline std::string abort_frame(const std::string& reason) { return frame(5, {{"reason", reason}}); }

inline std::string tensor_frame(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
                                std::string_view bytes) {
  nlohmann::json h = {{"name", name}, {"dtype", dtype}, {"shape", shape}, {"nbytes", bytes.size()},
                      {"crc32", zlib_crc(bytes)}};
  return frame(3, h, bytes);
}

// Every tensor of a checkpoint directory as one TENSOR frame each, in file order.
inline std::vector<std::string> checkpoint_frames(const std::string& fixture) {
  auto source = open_safetensors_dir(data_dir() / fixture);
  EXPECT_TRUE(source.ok()) << source.status().to_string();
  std::vector<std::string> frames;
  if (!source.ok()) return frames;
  for (const TensorInfo& t : (*source)->tensors()) {
    auto bytes = (*source)->borrow(t);
    EXPECT_TRUE(bytes.ok());
    const std::string_view view(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    frames.push_back(tensor_frame(t.name, std::string(dtype_info(t.dtype).safetensors), t.shape, view));
  }
  return frames;
}

inline std::string join(const std::vector<std::string>& frames, size_t begin = 0, size_t end = SIZE_MAX) {
  std::string out;
  for (size_t i = begin; i < std::min(end, frames.size()); ++i) out += frames[i];
  return out;
}

// A whole update: BEGIN (tag), the tensors, COMMIT (their count).
inline std::string update(const std::vector<std::string>& tensors, const nlohmann::json& tag) {
  return begin({{"tag", tag}}) + join(tensors) + commit(static_cast<int64_t>(tensors.size()));
}

inline bool send_bytes(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;  // the receiver closed on an error
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

inline bool recv_exact(int fd, char* out, size_t n) {
  while (n > 0) {
    const ssize_t got = ::recv(fd, out, n, 0);
    if (got <= 0) return false;
    out += got;
    n -= static_cast<size_t>(got);
  }
  return true;
}

// Reads one REPLY frame, decoding the header by hand; a discarded JSON value at EOF.
inline nlohmann::json read_reply(int fd) {
  char h[20];
  if (!recv_exact(fd, h, sizeof(h))) return nlohmann::json(nlohmann::json::value_t::discarded);
  EXPECT_EQ(std::string_view(h, 4), "QSWP");
  uint16_t version = 0, type = 0;
  uint32_t json_len = 0;
  uint64_t payload_len = 0;
  std::memcpy(&version, h + 4, 2);  // little-endian host
  std::memcpy(&type, h + 6, 2);
  std::memcpy(&json_len, h + 8, 4);
  std::memcpy(&payload_len, h + 12, 8);
  EXPECT_EQ(version, 1);
  EXPECT_EQ(type, 6) << "a REPLY frame";
  EXPECT_EQ(payload_len, 0u);
  std::string text(json_len, '\0');
  if (!recv_exact(fd, text.data(), text.size())) return nlohmann::json(nlohmann::json::value_t::discarded);
  return nlohmann::json::parse(text);
}

// Every REPLY until the receiver closes.
inline std::vector<nlohmann::json> read_replies(int fd) {
  std::vector<nlohmann::json> replies;
  for (;;) {
    nlohmann::json r = read_reply(fd);
    if (r.is_discarded()) return replies;
    replies.push_back(std::move(r));
  }
}

// A sender on its own thread: writes `bytes`, closes its sending side, collects the replies.
class Sender {
 public:
  Sender(int fd, std::string bytes) : fd_(fd), bytes_(std::move(bytes)) {
    thread_ = std::thread([this] {
      send_bytes(fd_, bytes_);
      ::shutdown(fd_, SHUT_WR);
      replies_ = read_replies(fd_);
    });
  }
  ~Sender() {
    if (thread_.joinable()) thread_.join();
  }
  const std::vector<nlohmann::json>& replies() {
    if (thread_.joinable()) thread_.join();
    return replies_;
  }

 private:
  int fd_;
  std::string bytes_;
  std::vector<nlohmann::json> replies_;
  std::thread thread_;
};

struct SocketPair {
  UniqueFd sender, receiver;
};
inline SocketPair socket_pair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// Every byte of every kernel tensor.
inline std::vector<std::vector<std::byte>> kernel_bytes(const Engine& engine) {
  std::vector<std::vector<std::byte>> out;
  const KernelStore& store = engine.weights();
  for (int p = 0; p < store.num_params(); ++p) {
    for (const TensorView& v : store.views(p)) {
      if (v.data == nullptr) continue;
      out.emplace_back(v.data, v.data + v.nbytes());
    }
  }
  return out;
}

inline std::unique_ptr<Engine> load_arith_base(UpdateMode mode = UpdateMode::kTransactional) {
  EngineOptions options;
  options.quant = "fp8";
  options.threads = 2;
  options.update_mode = mode;
  auto loaded = Engine::load(data_dir() / "arith-base", options);
  EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
  return loaded.ok() ? std::move(loaded).value() : nullptr;
}

}  // namespace qswap::testing
