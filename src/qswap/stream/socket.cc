#include "qswap/stream/socket.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace qswap {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadBufferBytes = 64 * 1024;

std::string errno_text(int err) { return std::strerror(err); }

// Waits until `fd` is ready for `events`. Fails when a cancel descriptor becomes readable or
// `timeout` passes first; `what` names the wait in the timeout message.
Status wait_ready(int fd, short events, std::optional<milliseconds> timeout, const IoControl& io,
                  std::string_view what) {
  const Clock::time_point deadline = timeout ? Clock::now() + *timeout : Clock::time_point::max();
  for (;;) {
    pollfd fds[3] = {{fd, events, 0}, {io.cancel_fds[0], POLLIN, 0}, {io.cancel_fds[1], POLLIN, 0}};
    int wait_ms = -1;
    if (timeout) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
      wait_ms = static_cast<int>(std::clamp<int64_t>(left, 0, 1'000'000'000));
    }
    const int r = ::poll(fds, 3, wait_ms);
    if (r < 0) {
      if (errno == EINTR) continue;
      return io_error("poll: {}", errno_text(errno));
    }
    if (fds[1].revents != 0 || fds[2].revents != 0) return aborted("the receiver is stopping");
    if (fds[0].revents != 0) return Status();  // ready, or an error/hang-up the next call reports
    if (r == 0 && Clock::now() >= deadline) {
      return io_error("{} for {:g} s (timeout)", what, std::chrono::duration<double>(*timeout).count());
    }
  }
}

Result<int> parse_port(std::string_view text, std::string_view address) {
  unsigned port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port > 65535) {
    return invalid_argument("address '{}': port '{}' is not a number in [0, 65535]", address, text);
  }
  return static_cast<int>(port);
}

struct AddrInfoFree {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

Result<std::unique_ptr<addrinfo, AddrInfoFree>> resolve(const SocketAddress& a, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* list = nullptr;
  const std::string port = std::to_string(a.port);
  const int rc = getaddrinfo(a.host.c_str(), port.c_str(), &hints, &list);
  if (rc != 0) return invalid_argument("cannot resolve host '{}': {}", a.host, gai_strerror(rc));
  return std::unique_ptr<addrinfo, AddrInfoFree>(list);
}

Result<sockaddr_un> unix_sockaddr(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof(sa.sun_path)) {
    return invalid_argument("unix socket path '{}' has {} bytes (limit {})", path, path.size(), sizeof(sa.sun_path) - 1);
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  return sa;
}

void set_nodelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // best effort
}

std::string format_tcp(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
    return fmt::format("tcp://[{}]:{}", host, ntohs(a->sin6_port));
  }
  const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
  return fmt::format("tcp://{}:{}", host, ntohs(a->sin_port));
}

// A unix socket file whose owner died refuses connections: it may be replaced.
Status clear_stale_unix_socket(const std::string& path, const sockaddr_un& sa) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) return Status();  // nothing there
  if (!S_ISSOCK(st.st_mode)) return invalid_argument("unix:{} exists and is not a socket", path);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return io_error("socket: {}", errno_text(errno));
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) == 0) {
    return invalid_argument("unix:{} is in use: another process listens on it", path);
  }
  if (errno != ECONNREFUSED) return io_error("unix:{} exists and cannot be probed: {}", path, errno_text(errno));
  if (::unlink(path.c_str()) != 0) return io_error("cannot remove stale socket unix:{}: {}", path, errno_text(errno));
  return Status();
}

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(std::exchange(other.fd_, -1));
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<SocketAddress> parse_socket_address(std::string_view address) {
  SocketAddress a;
  if (address.starts_with("unix:")) {
    a.kind = SocketAddress::Kind::kUnix;
    a.path = std::string(address.substr(5));
    if (a.path.empty()) return invalid_argument("address '{}' has an empty socket path", address);
    QSWAP_RETURN_IF_ERROR(unix_sockaddr(a.path).status());
    return a;
  }
  if (address.starts_with("tcp://")) {
    std::string_view rest = address.substr(6);
    size_t colon = std::string_view::npos;
    if (rest.starts_with('[')) {
      const size_t close = rest.find(']');
      if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
        return invalid_argument("address '{}': expected tcp://[IPV6]:PORT", address);
      }
      a.host = std::string(rest.substr(1, close - 1));
      colon = close + 1;
    } else {
      colon = rest.rfind(':');
      if (colon == std::string_view::npos) return invalid_argument("address '{}' has no :PORT", address);
      a.host = std::string(rest.substr(0, colon));
    }
    if (a.host.empty()) return invalid_argument("address '{}' has no host (e.g. tcp://127.0.0.1:PORT)", address);
    QSWAP_ASSIGN_OR_RETURN(int port, parse_port(rest.substr(colon + 1), address));
    a.port = static_cast<uint16_t>(port);
    return a;
  }
  return invalid_argument("address '{}' must be unix:/PATH or tcp://HOST:PORT", address);
}

Result<UniqueFd> listen_on(const SocketAddress& address, std::string* bound) {
  constexpr int kBacklog = 8;
  if (address.kind == SocketAddress::Kind::kUnix) {
    QSWAP_ASSIGN_OR_RETURN(sockaddr_un sa, unix_sockaddr(address.path));
    QSWAP_RETURN_IF_ERROR(clear_stale_unix_socket(address.path, sa));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return io_error("socket: {}", errno_text(errno));
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      return io_error("cannot bind unix:{}: {}", address.path, errno_text(errno));
    }
    if (::listen(fd.get(), kBacklog) != 0) return io_error("listen on unix:{}: {}", address.path, errno_text(errno));
    if (bound != nullptr) *bound = "unix:" + address.path;
    return fd;
  }
  QSWAP_ASSIGN_OR_RETURN(auto list, resolve(address, /*passive=*/true));
  std::string last_error = "no address";
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) {
      last_error = errno_text(errno);
      continue;
    }
    int one = 1;
    (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), kBacklog) != 0) {
      last_error = errno_text(errno);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      return io_error("getsockname: {}", errno_text(errno));
    }
    if (bound != nullptr) *bound = format_tcp(ss);
    return fd;
  }
  return io_error("cannot listen on tcp://{}:{}: {}", address.host, address.port, last_error);
}

Result<UniqueFd> connect_to(std::string_view address) {
  QSWAP_ASSIGN_OR_RETURN(SocketAddress a, parse_socket_address(address));
  if (a.kind == SocketAddress::Kind::kUnix) {
    QSWAP_ASSIGN_OR_RETURN(sockaddr_un sa, unix_sockaddr(a.path));
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return io_error("socket: {}", errno_text(errno));
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0) {
      return io_error("cannot connect to {}: {}", address, errno_text(errno));
    }
    return fd;
  }
  QSWAP_ASSIGN_OR_RETURN(auto list, resolve(a, /*passive=*/false));
  std::string last_error = "no address";
  for (addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.valid() && ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) {
      set_nodelay(fd.get());
      return fd;
    }
    last_error = errno_text(errno);
  }
  return io_error("cannot connect to {}: {}", address, last_error);
}

SocketReader::SocketReader(int fd, IoControl io) : fd_(fd), io_(io), buffer_(kReadBufferBytes) {}

Result<size_t> SocketReader::receive_some(std::byte* p, size_t n, std::optional<milliseconds> timeout) {
  for (;;) {
    QSWAP_RETURN_IF_ERROR(wait_ready(fd_, POLLIN, timeout, io_, "the sender sent nothing"));
    const ssize_t got = ::recv(fd_, p, n, MSG_DONTWAIT);
    if (got >= 0) return static_cast<size_t>(got);
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    return io_error("reading the connection: {}", errno_text(errno));
  }
}

Result<size_t> SocketReader::read(std::span<std::byte> out, bool patient) {
  size_t got = 0;
  while (got < out.size()) {
    if (begin_ < end_) {
      const size_t n = std::min(end_ - begin_, out.size() - got);
      std::memcpy(out.data() + got, buffer_.data() + begin_, n);
      begin_ += n;
      got += n;
      continue;
    }
    const std::optional<milliseconds> timeout = patient && got == 0 ? std::nullopt : io_.timeout;
    const size_t want = out.size() - got;
    size_t n = 0;
    if (want >= buffer_.size()) {  // large: straight into the caller's memory
      QSWAP_ASSIGN_OR_RETURN(n, receive_some(out.data() + got, want, timeout));
      got += n;
    } else {
      QSWAP_ASSIGN_OR_RETURN(n, receive_some(buffer_.data(), buffer_.size(), timeout));
      begin_ = 0;
      end_ = n;
    }
    if (n == 0) break;  // EOF
  }
  return got;
}

Status write_all(int fd, std::span<const std::byte> data, const IoControl& io) {
  size_t done = 0;
  while (done < data.size()) {
    QSWAP_RETURN_IF_ERROR(wait_ready(fd, POLLOUT, io.timeout, io, "the peer accepted no data"));
    const ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
    return io_error("writing the connection: {}", errno_text(errno));
  }
  return Status();
}

void drain_input(int fd, milliseconds within, const IoControl& io) {
  const Clock::time_point deadline = Clock::now() + within;
  std::vector<std::byte> scratch(kReadBufferBytes);
  for (;;) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    if (!wait_ready(fd, POLLIN, left, io, "drain").ok()) return;
    const ssize_t n = ::recv(fd, scratch.data(), scratch.size(), MSG_DONTWAIT);
    if (n == 0) return;
    if (n < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return;
  }
}

Result<CancelEvent> CancelEvent::create() {
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!fd.valid()) return io_error("eventfd: {}", errno_text(errno));
  return CancelEvent(std::move(fd));
}

void CancelEvent::signal() const {
  const uint64_t one = 1;
  (void)!::write(fd_.get(), &one, sizeof(one));  // cannot fail short of a counter overflow
}

}  // namespace qswap
