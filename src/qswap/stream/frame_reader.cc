#include "qswap/stream/frame_reader.h"

#include <algorithm>

#include "qswap/base/log.h"

namespace qswap {
namespace {

// Payloads are read and checksummed in pieces that still sit in cache when the CRC reads them.
constexpr size_t kPayloadChunkBytes = size_t{1} << 20;

}  // namespace

FrameReader::FrameReader(int fd, FrameLimits limits, IoControl io) : socket_(fd, io), limits_(limits) {}

FrameReader::~FrameReader() { stop(); }

Status FrameReader::read_frame(Slot& slot) {
  std::array<std::byte, kFrameHeaderBytes> header_bytes{};
  // Between updates a sender may stay silent for as long as it likes (the next optimizer step).
  const bool patient = slot.index > 1 && !in_update_;
  QSWAP_ASSIGN_OR_RETURN(size_t got, socket_.read(header_bytes, patient));
  if (got == 0) {
    slot.end = true;
    return Status();
  }
  if (got < kFrameHeaderBytes) {
    return data_loss("the connection closed after {} of the {} bytes of the frame header", got, kFrameHeaderBytes);
  }
  QSWAP_ASSIGN_OR_RETURN(slot.header, decode_frame_header(header_bytes, limits_));
  const FrameHeader& h = slot.header;
  // Checked here, before any payload is allocated for a sender that has not authenticated.
  if (slot.index == 1 && h.type != FrameType::kHello) {
    return data_loss("a connection starts with HELLO, not {}", frame_type_name(h.type));
  }

  slot.json.resize(h.json_bytes);
  QSWAP_ASSIGN_OR_RETURN(got, socket_.read(std::as_writable_bytes(std::span<char>(slot.json))));
  if (got < h.json_bytes) {
    return data_loss("{} frame: the connection closed after {} of the {} bytes of the JSON header",
                     frame_type_name(h.type), got, h.json_bytes);
  }
  QSWAP_ASSIGN_OR_RETURN(FrameMessage message, parse_frame_json(h, slot.json));

  if (const auto* t = std::get_if<TensorFrame>(&message)) {
    slot.error_tensor = t->name;
    const size_t n = t->nbytes;
    if (slot.payload.size() < n) {
      slot.payload = Buffer();  // free the old one first: a tensor's bytes are the peak here
      slot.payload = Buffer::uninitialized(n);
    }
    uint32_t crc = 0;
    for (size_t done = 0; done < n;) {
      const size_t piece = std::min(kPayloadChunkBytes, n - done);
      std::span<std::byte> dst(slot.payload.data() + done, piece);
      QSWAP_ASSIGN_OR_RETURN(got, socket_.read(dst));
      if (got < piece) {
        return data_loss("TENSOR '{}': the connection closed after {} of the {} payload bytes", t->name, done + got, n);
      }
      if (t->crc32) crc = crc32_update(crc, dst);
      done += piece;
    }
    if (t->crc32 && crc != *t->crc32) {
      return data_loss("TENSOR '{}': the payload's CRC-32 is 0x{:08x} but the frame says 0x{:08x}", t->name, crc,
                       *t->crc32);
    }
    slot.payload_bytes = n;
    slot.error_tensor.clear();
  }
  if (h.type == FrameType::kBegin) in_update_ = true;
  if (h.type == FrameType::kCommit || h.type == FrameType::kAbort) in_update_ = false;
  slot.message = std::move(message);
  return Status();
}

void FrameReader::read_into(Slot& slot) {
  slot.index = ++frames_read_;
  slot.message.reset();
  slot.payload_bytes = 0;
  slot.end = false;
  slot.error_tensor.clear();
  slot.status = read_frame(slot).with_context(fmt::format("frame {}", slot.index));
}

void FrameReader::reader_loop() {
  for (;;) {
    Slot* slot = nullptr;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || free_ > 0; });
      if (stop_) return;
      --free_;
      slot = &slots_[static_cast<size_t>(write_pos_)];
      write_pos_ ^= 1;
    }
    read_into(*slot);
    const bool last = !slot->status.ok() || slot->end;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++ready_;
    }
    cv_.notify_all();
    if (last) return;
  }
}

void FrameReader::start_read_ahead() {
  if (thread_.joinable() || done_ || stop_) return;
  Result<CancelEvent> event = CancelEvent::create();
  if (!event.ok()) {  // still correct, only without the overlap
    QSWAP_LOG_WARN("weight stream: no read-ahead thread: {}", event.status().message());
    return;
  }
  stop_event_ = std::move(event).value();
  socket_.io().cancel_fds[1] = stop_event_->fd();
  free_ = held_ != nullptr ? 1 : 2;
  ready_ = 0;
  take_pos_ = write_pos_;
  thread_ = std::thread(&FrameReader::reader_loop, this);
}

void FrameReader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (stop_event_) stop_event_->signal();
  if (thread_.joinable()) thread_.join();
}

Result<std::optional<ReadFrame>> FrameReader::next() {
  if (done_) {
    if (!done_status_.ok()) return done_status_;
    return std::optional<ReadFrame>();
  }
  Slot* slot = nullptr;
  if (thread_.joinable()) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (held_ != nullptr) {
      held_ = nullptr;
      ++free_;
      cv_.notify_all();
    }
    cv_.wait(lock, [this] { return stop_ || ready_ > 0; });
    if (ready_ > 0) {
      slot = &slots_[static_cast<size_t>(take_pos_)];
      take_pos_ ^= 1;
      --ready_;
    }
  } else if (!stop_) {
    slot = &slots_[static_cast<size_t>(write_pos_)];
    write_pos_ ^= 1;
    read_into(*slot);
  }
  held_ = slot;
  done_ = slot == nullptr || !slot->status.ok() || slot->end;
  if (slot == nullptr) {
    done_status_ = aborted("the frame reader was stopped");
    return done_status_;
  }
  if (!slot->status.ok()) {
    done_status_ = slot->status;
    error_tensor_ = slot->error_tensor;
    return done_status_;
  }
  if (slot->end) return std::optional<ReadFrame>();
  ReadFrame frame{slot->index, slot->header, std::move(*slot->message),
                  std::span<const std::byte>(slot->payload.data(), slot->payload_bytes)};
  return std::optional<ReadFrame>(std::move(frame));
}

}  // namespace qswap
