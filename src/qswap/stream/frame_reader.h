// Reads validated frames from a receiver's connection, the first of which must be HELLO (checked
// before anything is allocated). Optionally one frame ahead, on a thread of its own:
// the socket read (and CRC) of the next tensor then overlaps the quantization of the current one,
// at the cost of a second payload buffer.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>

#include "qswap/stream/frame.h"
#include "qswap/stream/socket.h"
#include "qswap/tensor/tensor.h"

namespace qswap {

struct ReadFrame {
  int64_t index = 0;                   // 1-based position in the connection, for messages
  FrameHeader header;
  FrameMessage message;
  std::span<const std::byte> payload;  // TENSOR: its bytes, valid until the next call to next()
};

class FrameReader {
 public:
  // `io`: the cancel descriptor (slot 0) and the timeout for a silent sender. The wait for the
  // first byte of a frame has no timeout between updates, once HELLO has arrived.
  FrameReader(int fd, FrameLimits limits, IoControl io);
  ~FrameReader();
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // The next frame, or nullopt when the sender closed the connection between two frames. After an
  // error or the end, every call returns the same.
  Result<std::optional<ReadFrame>> next();
  // How long the sender may stay silent inside a frame or an update (before start_read_ahead only).
  void set_timeout(std::optional<std::chrono::milliseconds> timeout) { socket_.io().timeout = timeout; }
  // From now on a thread reads the next frame while the caller handles the current one.
  void start_read_ahead();
  // Stops (and joins) the read-ahead thread, waking it if it waits on the socket.
  void stop();
  // The tensor the last error concerns (a TENSOR frame whose header was read), or "".
  const std::string& error_tensor() const { return error_tensor_; }

 private:
  struct Slot {
    int64_t index = 0;
    FrameHeader header;
    std::string json;
    std::optional<FrameMessage> message;
    Buffer payload;                    // grows to the largest tensor so far, never shrinks
    size_t payload_bytes = 0;
    Status status;
    bool end = false;                  // clean end of the connection
    std::string error_tensor;
  };

  void read_into(Slot& slot);
  Status read_frame(Slot& slot);
  void reader_loop();

  SocketReader socket_;
  FrameLimits limits_;
  std::array<Slot, 2> slots_;
  int64_t frames_read_ = 0;
  bool in_update_ = false;             // BEGIN read and no COMMIT/ABORT yet (reading side)

  // Hand-over between the read-ahead thread and next(); slots are used in turn.
  std::mutex mutex_;
  std::condition_variable cv_;
  int free_ = 2, ready_ = 0;
  int write_pos_ = 0, take_pos_ = 0;
  Slot* held_ = nullptr;               // the slot of the frame next() returned last
  bool stop_ = false;
  std::optional<CancelEvent> stop_event_;
  std::thread thread_;

  bool done_ = false;                  // next() returned an error or the end
  Status done_status_;
  std::string error_tensor_;
};

}  // namespace qswap
