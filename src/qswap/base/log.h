// Structured, quiet-by-default logging to stderr. Level from QSWAP_LOG
// (trace|debug|info|warn|error|off; default warn). Nothing below the engine prints to stdout.
#pragma once

#include <spdlog/spdlog.h>

namespace qswap {

spdlog::logger& logger();
void set_log_level(spdlog::level::level_enum level);

}  // namespace qswap

#define QSWAP_LOG_DEBUG(...) ::qswap::logger().debug(__VA_ARGS__)
#define QSWAP_LOG_INFO(...) ::qswap::logger().info(__VA_ARGS__)
#define QSWAP_LOG_WARN(...) ::qswap::logger().warn(__VA_ARGS__)
#define QSWAP_LOG_ERROR(...) ::qswap::logger().error(__VA_ARGS__)
