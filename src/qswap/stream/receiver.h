// The receiving end of the weight stream (docs/protocol.md): serves one connection from a trainer,
// feeding each TENSOR frame to a WeightUpdate as it arrives — the update is never buffered whole,
// only the tensor in hand (and, with read-ahead, the next one).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "qswap/engine/engine.h"
#include "qswap/stream/frame.h"

namespace qswap {

struct ReceiveOptions {
  std::string token;                      // shared secret HELLO must carry; empty: no authentication
  uint64_t max_payload_bytes = kDefaultMaxPayloadBytes;  // the largest tensor accepted
  uint32_t max_json_bytes = kDefaultMaxJsonBytes;
  // How long the sender may stay silent inside a frame or an update. Between updates a connection
  // may idle without limit.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(120)};
  // How long a new connection may take to send HELLO (a stray connection holds the listener).
  std::chrono::milliseconds hello_timeout{std::chrono::seconds(10)};
  // After an error reply: how long to discard what the sender still sends, so that the reply is not
  // lost to a TCP reset before the sender reads it.
  std::chrono::milliseconds linger{std::chrono::seconds(1)};
  bool read_ahead = true;                 // read the next frame while the current one is quantized
  int max_updates = 0;                    // return after this many updates ended (0: no limit)
  // Called once for every update that ends (its stats, or why it failed or was aborted) and for
  // every error that ends a connection outside an update (a wrong token, a malformed frame). Runs on
  // the serving thread before the reply is sent: a sender holding its reply knows it has run.
  std::function<void(const Result<UpdateStats>&)> on_update;
  ProgressCallback progress;              // passed to each WeightUpdate
  int cancel_fd = -1;                     // once readable: abort what is in progress and return
};

// Serves one connection on a connected stream socket `fd` (which stays open; the caller closes it):
// HELLO, then any number of updates, until the sender closes the connection. Every error is
// answered by an error REPLY and ends the connection; an update in progress is aborted (in
// transactional mode the live weights are untouched). Returns OK when the sender closed the
// connection between updates (or max_updates were served), else the error that ended it.
Status serve_connection(Engine& engine, int fd, const ReceiveOptions& options);

// Serves `fd` until one update ends: its stats, or why it failed. A connection that closes before
// BEGIN is kFailedPrecondition. The connection is done afterwards (frames after the update may have
// been read): close it.
Result<UpdateStats> receive_update(Engine& engine, int fd, const ReceiveOptions& options);

// Compares a presented secret with the expected one in time that depends only on their lengths.
bool token_matches(std::string_view expected, std::string_view presented);

}  // namespace qswap
