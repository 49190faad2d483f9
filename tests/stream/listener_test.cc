// UpdateListener on real sockets: pushes over a unix socket and an ephemeral TCP port change the
// answer; a refused or dropped connection is reported and the next one is served; stop() is prompt.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

#include <sys/un.h>

#include "qswap/stream/listener.h"
#include "stream_test_util.h"

namespace qswap {
namespace {

using nlohmann::json;
using namespace qswap::testing;  // NOLINT

// on_update results, waited for from the test thread.
class Updates {
 public:
  void operator()(const Result<UpdateStats>& r) {
    std::lock_guard<std::mutex> lock(mutex_);
    results_.push_back(r);
    cv_.notify_all();
  }
  // The n-th result (0-based), waiting up to 10 s for it.
  Result<UpdateStats> wait(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_for(lock, std::chrono::seconds(10), [&] { return results_.size() > n; })) {
      return internal_error("on_update was not called {} times", n + 1);
    }
    return results_[n];
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mutex_);
    return results_.size();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Result<UpdateStats>> results_;
};

std::filesystem::path temp_socket(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("qswap_stream_test_{}", ::getpid());
  std::filesystem::create_directories(dir);
  return dir / name;
}

// Connects, sends `bytes` on a thread, returns the replies (until the receiver closes or `n` came).
std::vector<json> push(const std::string& address, const std::string& bytes, size_t n) {
  auto fd = connect_to(address);
  EXPECT_TRUE(fd.ok()) << fd.status().to_string();
  if (!fd.ok()) return {};
  std::thread writer([&] { send_bytes(fd->get(), bytes); });
  std::vector<json> replies;
  while (replies.size() < n) {
    json r = read_reply(fd->get());
    if (r.is_discarded()) break;
    replies.push_back(r);
    if (r["ok"] == false) break;
  }
  ::shutdown(fd->get(), SHUT_RDWR);  // wakes the writer if the receiver stopped reading
  writer.join();
  return replies;
}

class ListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(data_dir() / "arith-mul" / "config.json")) GTEST_SKIP() << "fixtures not generated";
    engine_ = load_arith_base();
    ASSERT_NE(engine_, nullptr);
    mul_ = checkpoint_frames("arith-mul");
    add_ = checkpoint_frames("arith-add");
  }
  std::unique_ptr<UpdateListener> start(const std::string& address, const std::string& token = "") {
    ListenOptions options;
    options.address = address;
    options.token = token;
    options.linger = std::chrono::milliseconds(200);
    options.on_update = [this](const Result<UpdateStats>& r) { updates_(r); };
    auto listener = UpdateListener::start(*engine_, options);
    EXPECT_TRUE(listener.ok()) << listener.status().to_string();
    return listener.ok() ? std::move(listener).value() : nullptr;
  }

  std::unique_ptr<Engine> engine_;
  std::vector<std::string> mul_, add_;
  Updates updates_;
};

TEST_F(ListenerTest, UnixSocketUpdatesOnSuccessiveConnections) {
  const auto path = temp_socket("updates.sock");
  auto listener = start("unix:" + path.string(), "s3cret");
  ASSERT_NE(listener, nullptr);
  EXPECT_EQ(listener->address(), "unix:" + path.string());

  auto replies = push(listener->address(), hello("s3cret") + update(mul_, "mul"), 2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1]["ok"], true) << replies[1].dump();
  EXPECT_EQ(replies[1]["version"], 2);
  ASSERT_TRUE(updates_.wait(0).ok());
  EXPECT_EQ(greedy_answer(*engine_, "3 4 ="), " 12");

  replies = push(listener->address(), hello("s3cret") + update(add_, "add"), 2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1]["version"], 3);
  EXPECT_EQ(greedy_answer(*engine_, "3 4 ="), " 7");

  listener->stop();
  EXPECT_FALSE(std::filesystem::exists(path)) << "stop() removes the socket file";
}

TEST_F(ListenerTest, EphemeralTcpPort) {
  auto listener = start("tcp://127.0.0.1:0");
  ASSERT_NE(listener, nullptr);
  const std::string address = listener->address();
  ASSERT_TRUE(address.starts_with("tcp://127.0.0.1:")) << address;
  EXPECT_NE(address, "tcp://127.0.0.1:0");
  auto replies = push(address, hello() + update(mul_, 1), 2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1]["version"], 2);
  EXPECT_EQ(greedy_answer(*engine_, "3 4 ="), " 12");
}

TEST_F(ListenerTest, DroppedSenderKeepsOldWeightsAndTheNextConnectionIsServed) {
  auto listener = start("unix:" + temp_socket("dropped.sock").string());
  ASSERT_NE(listener, nullptr);
  const std::string base_answer = greedy_answer(*engine_, "3 4 =");
  const auto before = kernel_bytes(*engine_);
  {
    // Half an update, then the sender dies (its socket closes).
    auto fd = connect_to(listener->address());
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(send_bytes(fd->get(), hello() + begin({{"tag", "half"}}) + join(mul_, 0, mul_.size() / 2)));
    EXPECT_EQ(read_reply(fd->get())["ok"], true);  // HELLO
  }
  Result<UpdateStats> dropped = updates_.wait(0);
  EXPECT_EQ(dropped.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(dropped.status().message().find("in the middle of update 'half'"), std::string::npos)
      << dropped.status().message();
  EXPECT_TRUE(engine_->check_servable().ok());
  EXPECT_TRUE(kernel_bytes(*engine_) == before) << "the old weights keep serving, untouched";
  EXPECT_EQ(greedy_answer(*engine_, "3 4 ="), base_answer);

  // A refused connection (bad magic), then a good one.
  auto refused = push(listener->address(), raw_frame("GET ", 1, 1, 2, 0, "{}"), 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]["code"], "data loss");
  auto replies = push(listener->address(), hello() + update(mul_, 1), 2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1]["ok"], true);
  EXPECT_EQ(greedy_answer(*engine_, "3 4 ="), " 12");
  EXPECT_EQ(updates_.count(), 3u);
}

TEST_F(ListenerTest, StopIsPromptWithAnIdleOrStalledSender) {
  auto listener = start("tcp://127.0.0.1:0");
  ASSERT_NE(listener, nullptr);
  auto idle = connect_to(listener->address());
  ASSERT_TRUE(idle.ok());
  ASSERT_TRUE(send_bytes(idle->get(), hello()));
  EXPECT_EQ(read_reply(idle->get())["ok"], true);
  const auto t0 = std::chrono::steady_clock::now();
  listener->stop();  // an idle connection between updates: a clean end
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(updates_.count(), 0u);

  // A sender that stalls before COMMIT, with every tensor in: stop() aborts the open update.
  ListenOptions options;
  options.address = "tcp://127.0.0.1:0";
  options.on_update = [this](const Result<UpdateStats>& r) { updates_(r); };
  std::atomic<bool> all_in{false};
  options.progress = [&all_in](int done, int total, int64_t) {
    if (done == total) all_in = true;
  };
  auto started = UpdateListener::start(*engine_, options);
  ASSERT_TRUE(started.ok()) << started.status().to_string();
  listener = std::move(started).value();
  auto stalled = connect_to(listener->address());
  ASSERT_TRUE(stalled.ok());
  ASSERT_TRUE(send_bytes(stalled->get(), hello() + begin() + join(mul_)));
  EXPECT_EQ(read_reply(stalled->get())["ok"], true);
  for (int i = 0; i < 2000 && !all_in; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(all_in);
  listener->stop();
  Result<UpdateStats> r = updates_.wait(0);
  EXPECT_EQ(r.status().code(), StatusCode::kAborted) << r.status().to_string();
  EXPECT_EQ(engine_->weight_version(), 1u);
}

TEST_F(ListenerTest, AddressInUseAndStaleSocketFile) {
  const auto path = temp_socket("busy.sock");
  auto first = start("unix:" + path.string());
  ASSERT_NE(first, nullptr);
  auto engine2 = load_arith_base();
  ListenOptions options;
  options.address = "unix:" + path.string();
  auto second = UpdateListener::start(*engine2, options);
  EXPECT_EQ(second.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(second.status().message().find("in use"), std::string::npos) << second.status().message();
  first.reset();

  // A socket file left by a dead process is replaced.
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    auto sa = sockaddr_un{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof(sa.sun_path) - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  }  // closed without unlink: stale
  ASSERT_TRUE(std::filesystem::exists(path));
  auto third = UpdateListener::start(*engine2, options);
  ASSERT_TRUE(third.ok()) << third.status().to_string();
  auto replies = push((*third)->address(), hello() + update(mul_, 1), 2);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(replies[1]["ok"], true);

  options.address = "unix:" + (std::filesystem::temp_directory_path()).string();  // a directory
  EXPECT_FALSE(UpdateListener::start(*engine2, options).ok());
}

}  // namespace
}  // namespace qswap
