// POST /update_weights_from_disk while clients keep asking: no request fails, and every answer
// comes from the weights its weight_version names (arith-mul says " 12" to "3 4 =", arith-add " 7").
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "qswap/io/safetensors.h"
#include "test_server.h"

namespace qswap {
namespace {

using nlohmann::json;
using testing::TestServer;

// Version 1 is the initial load of arith-mul; updates alternate add, mul, add, ...
std::string expected_answer(uint64_t version) { return version % 2 == 1 ? " 12" : " 7"; }

// Text and version of a streamed completion; every chunk must name the same version.
bool read_stream(const std::string& body, std::string* text, uint64_t* version, std::string* error) {
  size_t pos = 0;
  bool done = false;
  *version = 0;
  while ((pos = body.find("data: ", pos)) != std::string::npos) {
    const size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) break;
    const std::string data = body.substr(pos + 6, end - pos - 6);
    pos = end + 2;
    if (data == "[DONE]") {
      done = true;
      break;
    }
    json chunk = json::parse(data, nullptr, false);
    if (chunk.is_discarded() || chunk.contains("error")) {
      *error = data;
      return false;
    }
    const uint64_t v = chunk["weight_version"];
    if (*version != 0 && v != *version) {
      *error = "weight_version changed within one choice: " + body;
      return false;
    }
    *version = v;
    *text += chunk["choices"][0]["text"].get<std::string>();
  }
  if (!done) *error = "no [DONE]: " + body;
  return done;
}

void run_clients_during_updates(const std::string& mode) {
  server::ServerOptions options;
  options.http_threads = 6;
  TestServer s("arith-mul", options);
  ASSERT_TRUE(s.ok());
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::mutex mutex;
  std::vector<std::string> failures;
  std::set<uint64_t> versions_seen;
  auto fail = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mutex);
    failures.push_back(std::move(what));
  };

  std::vector<std::thread> clients;
  for (int c = 0; c < 3; ++c) {
    clients.emplace_back([&, c] {
      const bool stream = c == 2;
      json body = testing::greedy("3 4 =", 4);
      if (stream) body["stream"] = true;
      while (!stop) {
        testing::HttpReply r = s.post("/v1/completions", body);
        if (r.status != 200) {
          fail("status " + std::to_string(r.status) + ": " + r.body);
          continue;
        }
        std::string text, error;
        uint64_t version = 0;
        if (stream) {
          if (!read_stream(r.body, &text, &version, &error)) {
            fail(error);
            continue;
          }
        } else {
          text = r.json["choices"][0]["text"];
          version = r.json["choices"][0]["weight_version"];
          if (r.json["weight_version"] != version) fail("top-level and choice weight_version differ: " + r.body);
        }
        if (text != expected_answer(version)) {
          fail("version " + std::to_string(version) + " answered '" + text + "'");
        }
        {
          std::lock_guard<std::mutex> lock(mutex);
          versions_seen.insert(version);
        }
        ++answered;
      }
    });
  }

  const std::string mul = (testing::data_dir() / "arith-mul").string();
  const std::string add = (testing::data_dir() / "arith-add").string();
  constexpr int kUpdates = 6;
  for (int i = 0; i < kUpdates; ++i) {
    // Let some requests in between updates, so that they overlap both ways.
    const int seen = answered.load();
    for (int wait = 0; wait < 2000 && answered.load() < seen + 2; ++wait) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    json body = {{"path", i % 2 == 0 ? add : mul}, {"mode", mode}};
    testing::HttpReply r = s.post("/update_weights_from_disk", body);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json["weight_version"], i + 2) << r.body;
    EXPECT_EQ(r.json["mode"], mode);
  }
  const int seen = answered.load();
  for (int wait = 0; wait < 2000 && answered.load() < seen + 3; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  stop = true;
  for (std::thread& t : clients) t.join();

  for (const std::string& f : failures) ADD_FAILURE() << f;
  EXPECT_GT(answered.load(), kUpdates);
  EXPECT_GE(versions_seen.size(), 2u) << "answers came from more than one weight version";
  EXPECT_TRUE(versions_seen.count(kUpdates + 1)) << "the last update's weights were served";
}

TEST(UpdateTest, TransactionalUpdatesNeverFailRequests) { run_clients_during_updates("transactional"); }

TEST(UpdateTest, InPlaceUpdatesMakeRequestsWait) { run_clients_during_updates("in-place"); }

TEST(UpdateTest, AConcurrentUpdateIs409AndRequestsKeepTheOldWeights) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  // An update held open (as a weight stream would), transactional: the old weights stay served.
  auto held = s.engine().begin_update(UpdateMode::kTransactional);
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  testing::HttpReply r =
      s.post("/update_weights_from_disk", json{{"path", (testing::data_dir() / "arith-add").string()}});
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.json["error"]["type"], "conflict_error");
  EXPECT_NE(r.json["error"]["message"].get<std::string>().find("in progress"), std::string::npos) << r.body;

  r = s.post("/v1/completions", testing::greedy("3 4 ="));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["choices"][0]["text"], " 12");
  EXPECT_EQ(r.json["weight_version"], 1);
  held->reset();  // abandons the update

  testing::HttpReply m = s.get("/metrics");
  EXPECT_NE(m.body.find("qswap_weight_updates_failed_total 0"), std::string::npos)
      << "a refused update is not a failed one\n" << m.body;
  r = s.post("/update_weights_from_disk", json{{"path", (testing::data_dir() / "arith-add").string()}});
  EXPECT_EQ(r.status, 200) << r.body;
}

// An in-place update made outside the server (as a weight stream does): a request that arrives
// meanwhile waits for it instead of failing, then answers from the new weights.
TEST(UpdateTest, RequestsWaitOutAnInPlaceUpdateOfTheEngine) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  auto source = open_safetensors_dir(testing::data_dir() / "arith-add");
  ASSERT_TRUE(source.ok()) << source.status().to_string();
  auto update = s.engine().begin_update(UpdateMode::kInPlace);
  ASSERT_TRUE(update.ok()) << update.status().to_string();
  EXPECT_EQ(s.get("/health").status, 503) << "nothing servable while the live weights are written";

  std::atomic<bool> answered{false};
  testing::HttpReply reply;
  std::thread client([&] {
    reply = s.post("/v1/completions", testing::greedy("3 4 ="));
    answered = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the request is in, and waits
  EXPECT_FALSE(answered.load()) << "answered during an in-place update: " << reply.body;
  for (const TensorInfo& info : (*source)->tensors()) {
    auto bytes = (*source)->borrow(info);
    ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
    ASSERT_TRUE((*update)->add(IncomingTensor{info.name, info.dtype, info.shape, *bytes}).ok()) << info.name;
  }
  auto stats = (*update)->commit();
  ASSERT_TRUE(stats.ok()) << stats.status().to_string();
  s.server().record_update(stats);
  client.join();
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.json["choices"][0]["text"], " 7");
  EXPECT_EQ(reply.json["weight_version"], 2);
  EXPECT_NE(s.get("/metrics").body.find("qswap_weight_updates_total 1"), std::string::npos);
}

}  // namespace
}  // namespace qswap
