#include "qswap/stream/receiver.h"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>

#include "qswap/base/log.h"
#include "qswap/stream/frame_reader.h"
#include "qswap/stream/socket.h"

namespace qswap {
namespace {

using Clock = std::chrono::steady_clock;

// One connection: HELLO, then BEGIN, TENSOR..., COMMIT|ABORT, as often as the sender likes.
class Session {
 public:
  Session(Engine& engine, int fd, const ReceiveOptions& options)
      : engine_(engine),
        fd_(fd),
        options_(options),
        reader_(fd, FrameLimits{options.max_json_bytes, options.max_payload_bytes},
                IoControl{{options.cancel_fd, -1}, options.hello_timeout}) {}

  Status run() {
    Status s = serve();
    return s.ok() ? s : fail(std::move(s));
  }

 private:
  Status serve() {
    QSWAP_ASSIGN_OR_RETURN(std::optional<ReadFrame> first, reader_.next());
    if (!first) {
      QSWAP_LOG_DEBUG("weight stream: a connection closed without a frame");
      return Status();
    }
    QSWAP_RETURN_IF_ERROR(hello(*first));
    reader_.set_timeout(options_.idle_timeout);
    if (options_.read_ahead) reader_.start_read_ahead();
    for (;;) {
      QSWAP_ASSIGN_OR_RETURN(std::optional<ReadFrame> frame, reader_.next());
      if (!frame) {
        if (!in_update_) return Status();
        return data_loss("the sender closed the connection in the middle of {} ({} tensors received, no COMMIT)",
                         update_name(), tensors_);
      }
      QSWAP_RETURN_IF_ERROR(handle(*frame).with_context(fmt::format("frame {}", frame->index)));
      if (options_.max_updates > 0 && updates_ended_ >= options_.max_updates) return Status();
    }
  }

  Status hello(const ReadFrame& frame) {
    const auto* h = std::get_if<HelloFrame>(&frame.message);
    if (h == nullptr) {
      return data_loss("frame 1: a connection starts with HELLO, not {}", frame_type_name(frame.header.type));
    }
    if (!options_.token.empty()) {
      if (!h->token) return invalid_argument("authentication failed: this receiver requires a token and HELLO has none");
      if (!token_matches(options_.token, *h->token)) return invalid_argument("authentication failed: wrong token");
    }
    QSWAP_LOG_INFO("weight stream: HELLO from '{}'", h->client);
    ReplyFrame reply = reply_now(true);
    reply.protocol = kProtocolVersion;
    reply.max_payload_bytes = options_.max_payload_bytes;
    return send(reply);
  }

  Status handle(const ReadFrame& frame) {
    return std::visit(
        [&](const auto& m) -> Status {
          using T = std::decay_t<decltype(m)>;
          if constexpr (std::is_same_v<T, BeginFrame>) return begin(m);
          if constexpr (std::is_same_v<T, TensorFrame>) return tensor(m, frame.payload);
          if constexpr (std::is_same_v<T, CommitFrame>) return commit(m);
          if constexpr (std::is_same_v<T, AbortFrame>) return abort(m);
          if constexpr (std::is_same_v<T, HelloFrame>) return data_loss("HELLO again: one per connection");
          if constexpr (std::is_same_v<T, ReplyFrame>) return data_loss("REPLY frames go from the receiver to the sender");
        },
        frame.message);
  }

  Status begin(const BeginFrame& b) {
    if (in_update_) return data_loss("BEGIN inside {}: COMMIT or ABORT it first", update_name());
    QSWAP_ASSIGN_OR_RETURN(update_, engine_.begin_update(b.mode, options_.progress));
    in_update_ = true;
    begin_ = b;
    tensors_ = 0;
    bytes_ = 0;
    started_ = Clock::now();
    QSWAP_LOG_INFO("weight stream: BEGIN {} mode={}", update_name(),
                   b.mode ? update_mode_name(*b.mode) : "default");
    return Status();
  }

  Status tensor(const TensorFrame& t, std::span<const std::byte> payload) {
    if (!in_update_) return data_loss("TENSOR '{}' before BEGIN", t.name);
    current_tensor_ = t.name;
    QSWAP_RETURN_IF_ERROR(update_->add(IncomingTensor{t.name, t.dtype, t.shape, payload}));
    current_tensor_.clear();
    ++tensors_;
    bytes_ += static_cast<int64_t>(payload.size());
    return Status();
  }

  Status commit(const CommitFrame& c) {
    if (!in_update_) return data_loss("COMMIT without BEGIN");
    if (c.tensors != tensors_) {
      return data_loss("COMMIT says {} tensors were sent in {} but {} arrived", c.tensors,
                       update_name(), tensors_);
    }
    if (begin_.tensors && *begin_.tensors != tensors_) {
      return data_loss("BEGIN announced {} tensors for {} but {} arrived", *begin_.tensors,
                       update_name(), tensors_);
    }
    if (begin_.bytes && *begin_.bytes != bytes_) {
      return data_loss("BEGIN announced {} payload bytes for {} but {} arrived", *begin_.bytes,
                       update_name(), bytes_);
    }
    QSWAP_ASSIGN_OR_RETURN(UpdateStats stats, update_->commit());
    end_update(stats);
    ReplyFrame reply = reply_now(true);
    reply.version = stats.version;
    reply.tensors = stats.tensors;
    reply.bytes = stats.bytes_in;
    reply.seconds = stats.seconds;
    return send(reply);
  }

  Status abort(const AbortFrame& a) {
    if (!in_update_) return data_loss("ABORT without BEGIN");
    Status why = aborted("the sender aborted {}{}{}", update_name(), a.reason.empty() ? "" : ": ",
                         a.reason);
    update_->abort(why);
    ReplyFrame reply = reply_now(true);
    end_update(why);
    return send(reply);
  }

  // "update 7", "update 'step-7'", or "the update" when BEGIN had no tag.
  std::string update_name() const {
    if (std::holds_alternative<std::monostate>(begin_.tag)) return "the update";
    return "update " + format_tag(begin_.tag);
  }

  void end_update(const Result<UpdateStats>& result) {
    update_.reset();
    in_update_ = false;
    ++updates_ended_;
    if (options_.on_update) options_.on_update(result);
  }

  // The reply's fields as of now; for a committed update the caller overwrites them with its stats.
  ReplyFrame reply_now(bool ok) const {
    ReplyFrame r;
    r.ok = ok;
    r.version = engine_.weight_version();
    r.tag = begin_.tag;
    r.tensors = tensors_;
    r.bytes = bytes_;
    if (in_update_) r.seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    return r;
  }

  // Replies are written whatever the cancel state; a sender that does not read gets `linger`.
  Status send(const ReplyFrame& reply) const {
    const std::string json = frame_json(reply);
    const std::vector<std::byte> bytes = encode_frame(FrameType::kReply, json);
    return write_all(fd_, bytes, IoControl{{-1, -1}, std::max(options_.linger, std::chrono::milliseconds(100))});
  }

  bool cancel_requested() const {
    if (options_.cancel_fd < 0) return false;
    pollfd p{options_.cancel_fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  // Ends the connection on `error`: aborts the update in progress, tells on_update and the sender.
  Status fail(Status error) {
    reader_.stop();  // from here on nothing else reads the socket
    const bool stopping = cancel_requested();
    const bool had_update = in_update_;
    if (stopping && !had_update) return Status();  // stop() between updates is a clean end
    ReplyFrame reply = reply_now(false);
    reply.error = error.message();
    reply.code = std::string(status_code_name(error.code()));
    reply.tensor = !current_tensor_.empty() ? current_tensor_ : reader_.error_tensor();
    if (had_update) {
      update_->abort(error);  // a no-op when add() or commit() already aborted it
      update_.reset();
      in_update_ = false;
    }
    QSWAP_LOG_WARN("weight stream: connection ended: {}", error.to_string());
    if (options_.on_update) options_.on_update(error);
    (void)send(reply);  // best effort: the sender may be gone
    ::shutdown(fd_, SHUT_WR);
    if (!stopping) drain_input(fd_, options_.linger, IoControl{{options_.cancel_fd, -1}, std::nullopt});
    return error;
  }

  Engine& engine_;
  int fd_;
  const ReceiveOptions& options_;
  FrameReader reader_;

  // The update in progress.
  std::unique_ptr<WeightUpdate> update_;
  bool in_update_ = false;
  BeginFrame begin_;
  int64_t tensors_ = 0;
  int64_t bytes_ = 0;
  Clock::time_point started_;
  std::string current_tensor_;  // being added to the update
  int updates_ended_ = 0;
};

}  // namespace

bool token_matches(std::string_view expected, std::string_view presented) {
  if (expected.empty()) return presented.empty();
  // Every byte of the presented token is compared, whatever matched before.
  volatile unsigned diff = expected.size() != presented.size() ? 1u : 0u;
  for (size_t i = 0; i < presented.size(); ++i) {
    diff = diff | static_cast<unsigned>(static_cast<uint8_t>(expected[i % expected.size()]) ^
                                        static_cast<uint8_t>(presented[i]));
  }
  return diff == 0;
}

Status serve_connection(Engine& engine, int fd, const ReceiveOptions& options) {
  Session session(engine, fd, options);
  return session.run();
}

Result<UpdateStats> receive_update(Engine& engine, int fd, const ReceiveOptions& options) {
  ReceiveOptions once = options;
  once.max_updates = 1;
  std::optional<Result<UpdateStats>> result;
  once.on_update = [&](const Result<UpdateStats>& r) {
    if (!result) result = r;
    if (options.on_update) options.on_update(r);
  };
  Status s = serve_connection(engine, fd, once);
  if (result) return *result;
  if (!s.ok()) return s;
  return failed_precondition("the sender closed the connection before sending an update");
}

}  // namespace qswap
