#include "qswap/base/log.h"

#include <cstdlib>
#include <memory>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace qswap {

spdlog::logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto log = std::make_shared<spdlog::logger>("qswap", sink);
    // key=value after the message keeps lines greppable: "[warn] qswap: reload layers_in_flight=3"
    log->set_pattern("[%Y-%m-%dT%H:%M:%S.%e] [%^%l%$] %v");
    spdlog::level::level_enum level = spdlog::level::warn;
    if (const char* env = std::getenv("QSWAP_LOG")) level = spdlog::level::from_str(env);
    log->set_level(level);
    return log;
  }();
  return *instance;
}

void set_log_level(spdlog::level::level_enum level) { logger().set_level(level); }

}  // namespace qswap
