// UpdateListener: accepts weight-stream connections (docs/protocol.md) on a unix socket or TCP
// port and serves them one at a time on a background thread, each through serve_connection. A
// failed or dropped connection is reported (log, on_update) and the next one is accepted.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "qswap/stream/receiver.h"
#include "qswap/stream/socket.h"

namespace qswap {

struct ListenOptions : ReceiveOptions {
  // "unix:/path/to.sock" or "tcp://HOST:PORT"; port 0 picks a free one (see address()). Loopback by
  // default: a non-loopback TCP address exposes the weights to the network, token or not.
  std::string address = "tcp://127.0.0.1:0";
};

class UpdateListener {
 public:
  // Binds and starts accepting; fails if the address is malformed or in use. on_update runs on
  // the listener's thread, before the sender gets its reply.
  static Result<std::unique_ptr<UpdateListener>> start(Engine& engine, ListenOptions options);
  ~UpdateListener();  // stop()
  UpdateListener(const UpdateListener&) = delete;
  UpdateListener& operator=(const UpdateListener&) = delete;

  // The bound address, e.g. "tcp://127.0.0.1:39412" or "unix:/run/qswap.sock".
  std::string address() const { return address_; }
  // Stops accepting, aborts an update in progress, joins the thread and removes the unix socket
  // file. Idempotent; not from inside on_update (it runs on the thread being joined).
  void stop();

 private:
  UpdateListener(Engine& engine, ListenOptions options, UniqueFd listen_fd, CancelEvent stop_event,
                 std::string address);
  void accept_loop();

  Engine& engine_;
  ListenOptions options_;
  UniqueFd listen_fd_;
  CancelEvent stop_event_;
  std::string address_;
  std::string unix_path_;  // removed on stop() if it is still our socket
  uint64_t unix_inode_ = 0;
  std::thread thread_;
};

}  // namespace qswap
