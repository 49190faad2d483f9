// Sockets for the weight stream: addresses ("unix:/path", "tcp://HOST:PORT"), listening and
// connecting, and buffered reads and writes that time out and that a second descriptor can cancel
// (UpdateListener::stop wakes a connection blocked on a silent sender).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "qswap/base/status.h"

namespace qswap {

// Owns one file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

struct SocketAddress {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kTcp;
  std::string path;  // kUnix
  std::string host;  // kTcp: a name or a numeric address (IPv6 without the brackets)
  uint16_t port = 0; // kTcp: 0 = any free port when listening
};

// "unix:/path/to.sock" or "tcp://HOST:PORT" (IPv6 as "tcp://[::1]:PORT").
Result<SocketAddress> parse_socket_address(std::string_view address);

// A listening socket. A unix socket file left by a dead process (nothing accepts on it) is
// replaced; a live one is an error. `bound` gets the actual address (the ephemeral port filled in).
Result<UniqueFd> listen_on(const SocketAddress& address, std::string* bound);
// A connected stream socket (blocking connect; TCP_NODELAY for TCP).
Result<UniqueFd> connect_to(std::string_view address);

// How a read or write may wait: never longer than `timeout` for the peer (nullopt: forever), and
// not at all once a cancel descriptor is readable.
struct IoControl {
  std::array<int, 2> cancel_fds{-1, -1};
  std::optional<std::chrono::milliseconds> timeout;
};

// Reads from a stream socket through a small buffer, so that frame headers and small tensors take
// few system calls; large reads go straight into the caller's memory.
class SocketReader {
 public:
  SocketReader(int fd, IoControl io);

  // Fills `out` completely and returns out.size(), or fewer bytes if the peer closed the connection
  // first. `patient`: no timeout until the first byte arrives (a sender idle between updates).
  Result<size_t> read(std::span<std::byte> out, bool patient = false);
  IoControl& io() { return io_; }

 private:
  // One recv of at most `n` bytes after waiting for data; 0 at EOF.
  Result<size_t> receive_some(std::byte* p, size_t n, std::optional<std::chrono::milliseconds> timeout);

  int fd_;
  IoControl io_;
  std::vector<std::byte> buffer_;
  size_t begin_ = 0, end_ = 0;
};

// Writes all of `data` (no SIGPIPE: a closed peer is an error).
Status write_all(int fd, std::span<const std::byte> data, const IoControl& io);

// Discards input until the peer closes, `within` passes or a cancel descriptor is readable. Used
// after an error reply so that the reply is not lost to a TCP reset.
void drain_input(int fd, std::chrono::milliseconds within, const IoControl& io);

// An eventfd that becomes readable (for good) after signal().
class CancelEvent {
 public:
  static Result<CancelEvent> create();
  int fd() const { return fd_.get(); }
  void signal() const;

 private:
  explicit CancelEvent(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace qswap
