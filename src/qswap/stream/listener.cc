#include "qswap/stream/listener.h"

#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "qswap/base/log.h"

namespace qswap {

Result<std::unique_ptr<UpdateListener>> UpdateListener::start(Engine& engine, ListenOptions options) {
  QSWAP_ASSIGN_OR_RETURN(SocketAddress address, parse_socket_address(options.address));
  std::string bound;
  QSWAP_ASSIGN_OR_RETURN(UniqueFd fd, listen_on(address, &bound));
  QSWAP_ASSIGN_OR_RETURN(CancelEvent stop_event, CancelEvent::create());
  std::unique_ptr<UpdateListener> listener(
      new UpdateListener(engine, std::move(options), std::move(fd), std::move(stop_event), bound));
  if (address.kind == SocketAddress::Kind::kUnix) {
    listener->unix_path_ = address.path;
    struct stat st{};
    if (::stat(address.path.c_str(), &st) == 0) listener->unix_inode_ = st.st_ino;
  }
  listener->options_.cancel_fd = listener->stop_event_.fd();
  listener->thread_ = std::thread(&UpdateListener::accept_loop, listener.get());
  QSWAP_LOG_INFO("weight stream: listening on {}", bound);
  return listener;
}

UpdateListener::UpdateListener(Engine& engine, ListenOptions options, UniqueFd listen_fd, CancelEvent stop_event,
                               std::string address)
    : engine_(engine),
      options_(std::move(options)),
      listen_fd_(std::move(listen_fd)),
      stop_event_(std::move(stop_event)),
      address_(std::move(address)) {}

UpdateListener::~UpdateListener() { stop(); }

void UpdateListener::stop() {
  stop_event_.signal();
  if (thread_.joinable()) thread_.join();
  listen_fd_.reset();
  if (!unix_path_.empty()) {
    struct stat st{};
    if (::stat(unix_path_.c_str(), &st) == 0 && st.st_ino == unix_inode_) ::unlink(unix_path_.c_str());
    unix_path_.clear();
  }
}

void UpdateListener::accept_loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_.get(), POLLIN, 0}, {stop_event_.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      QSWAP_LOG_ERROR("weight stream: poll on {}: {}", address_, std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      const int err = errno;
      if (err == EINTR || err == EAGAIN || err == ECONNABORTED) continue;
      // Out of descriptors or memory: wait a little (or for stop) rather than spin.
      QSWAP_LOG_ERROR("weight stream: accept on {}: {}", address_, std::strerror(err));
      pollfd stop{stop_event_.fd(), POLLIN, 0};
      if (::poll(&stop, 1, 100) > 0) return;
      continue;
    }
    if (address_.starts_with("tcp:")) {
      int one = 1;
      (void)setsockopt(conn.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // replies are small
    }
    QSWAP_LOG_INFO("weight stream: connection on {}", address_);
    Status s = serve_connection(engine_, conn.get(), options_);
    if (s.ok()) QSWAP_LOG_INFO("weight stream: connection on {} closed", address_);
    // Errors were logged and reported by serve_connection; keep accepting.
  }
}

}  // namespace qswap
