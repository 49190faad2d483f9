// GET /metrics in Prometheus' text format, /health, and the record_update hook.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

#include "server/metrics.h"
#include "test_server.h"

namespace qswap {
namespace {

using nlohmann::json;
using testing::TestServer;

// Samples by series ("name{labels}") after checking the exposition format line by line: every
// sample's metric has HELP and TYPE lines before it, and every value parses as a number.
std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> samples;
  std::set<std::string> typed, helped;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge") << line;
      typed.insert(name);
      continue;
    }
    EXPECT_FALSE(line.empty() || line[0] == '#') << "unexpected line: " << line;
    const size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    if (space == std::string::npos) continue;
    const std::string series = line.substr(0, space);
    const std::string name = series.substr(0, series.find('{'));
    EXPECT_TRUE(typed.count(name) && helped.count(name)) << "no HELP/TYPE before " << line;
    const std::string number = line.substr(space + 1);
    char* end = nullptr;
    const double value = std::strtod(number.c_str(), &end);
    EXPECT_TRUE(!number.empty() && *end == '\0') << "not a number: " << line;
    EXPECT_TRUE(samples.emplace(series, value).second) << "duplicate series " << series;
  }
  return samples;
}

TEST(MetricsTest, CountersFollowRequestsAndTokens) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  testing::HttpReply first = s.get("/metrics");
  ASSERT_EQ(first.status, 200);
  std::map<std::string, double> before = parse_metrics(first.body);
  EXPECT_EQ(before["qswap_weight_version"], 1);
  EXPECT_EQ(before["qswap_generation_tokens_total"], 0);

  json body = testing::greedy(json::array({"3 4 =", "12 12 ="}), 8);  // " 12" and " 144"
  testing::HttpReply r = s.post("/v1/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(s.post("/v1/completions", json{{"prompt", ""}}).status, 400);
  ASSERT_EQ(s.get("/no/such/path").status, 404);

  testing::HttpReply second = s.get("/metrics");
  ASSERT_EQ(second.status, 200);
  EXPECT_NE(second.body.find("# TYPE qswap_http_requests_total counter"), std::string::npos);
  std::map<std::string, double> after = parse_metrics(second.body);
  EXPECT_EQ(after["qswap_http_requests_total{endpoint=\"/v1/completions\",code=\"200\"}"], 1);
  EXPECT_EQ(after["qswap_http_requests_total{endpoint=\"/v1/completions\",code=\"400\"}"], 1);
  EXPECT_EQ(after["qswap_http_requests_total{endpoint=\"other\",code=\"404\"}"], 1);
  EXPECT_EQ(after["qswap_http_requests_total{endpoint=\"/metrics\",code=\"200\"}"], 1);  // the first scrape
  EXPECT_EQ(after["qswap_completion_requests_total"], 1);
  EXPECT_EQ(after["qswap_prompt_tokens_total"], r.json["usage"]["prompt_tokens"].get<double>());
  EXPECT_EQ(after["qswap_generation_tokens_total"], 3 + 4);
  EXPECT_GT(after["qswap_generation_seconds_total"], 0);
  EXPECT_GT(after["qswap_last_request_tokens_per_second"], 0);
  EXPECT_EQ(after["qswap_weight_updates_total"], 0);
}

TEST(MetricsTest, UpdatesAndTheLastErrorAreReported) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  const std::string add = (testing::data_dir() / "arith-add").string();
  testing::HttpReply r = s.post("/update_weights_from_disk", json{{"path", add}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json["weight_version"], 2);
  EXPECT_EQ(r.json["mode"], "transactional");
  EXPECT_EQ(r.json["tensors"], 24);  // Qwen3, 2 layers: 11 per layer + embeddings + final norm

  // An update that fails names what failed, as a label escaped per the text format.
  s.server().record_update(data_loss("shard \"b\\c\"\nmissing"));
  std::map<std::string, double> m = parse_metrics(s.get("/metrics").body);
  EXPECT_EQ(m["qswap_weight_updates_total"], 2);
  EXPECT_EQ(m["qswap_weight_updates_failed_total"], 1);
  EXPECT_EQ(m["qswap_weight_version"], 2);
  EXPECT_GT(m["qswap_weight_update_seconds_total"], 0);
  EXPECT_EQ(m["qswap_weight_update_seconds_last"], r.json["seconds"].get<double>());
  EXPECT_EQ(m.count("qswap_weight_update_peak_staging_bytes"), 1u);
  EXPECT_EQ(m["qswap_weight_update_last_error_info{message=\"data loss: shard \\\"b\\\\c\\\"\\nmissing\"}"], 1)
      << s.server().metrics_text();

  // A failed request: the engine's message comes back, and the metrics count it.
  r = s.post("/update_weights_from_disk", json{{"path", "/nonexistent/model"}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.json["error"]["message"].get<std::string>().find("/nonexistent/model"), std::string::npos) << r.body;
  m = parse_metrics(s.get("/metrics").body);
  EXPECT_EQ(m["qswap_weight_updates_failed_total"], 2);

  // A success clears the last error.
  ASSERT_EQ(s.post("/update_weights_from_disk", json{{"path", add}, {"mode", "in-place"}}).status, 200);
  m = parse_metrics(s.get("/metrics").body);
  for (const auto& [series, value] : m) EXPECT_EQ(series.find("last_error_info"), std::string::npos) << series;
  EXPECT_EQ(m["qswap_weight_version"], 3);
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(server::escape_label_value(R"(a\b"c)" "\n" "d"), R"(a\\b\"c\nd)");
  EXPECT_EQ(server::escape_label_value("plain é"), "plain é");
}

TEST(MetricsTest, HealthAndBadUpdateRequests) {
  TestServer s;
  ASSERT_TRUE(s.ok());
  testing::HttpReply h = s.get("/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.json["status"], "ok");
  EXPECT_EQ(h.json["weight_version"], 1);

  EXPECT_EQ(s.post("/update_weights_from_disk", std::string("nope")).status, 400);
  testing::HttpReply r = s.post("/update_weights_from_disk", json{{"path", 3}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json["error"]["param"], "path");
  r = s.post("/update_weights_from_disk", json{{"path", "x"}, {"mode", "sideways"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json["error"]["param"], "mode");
  EXPECT_NE(r.body.find("sideways"), std::string::npos);
  r = s.post("/update_weights_from_disk", json{{"path", "x"}, {"dry_run", true}});
  EXPECT_EQ(r.json["error"]["param"], "dry_run");
}

}  // namespace
}  // namespace qswap
