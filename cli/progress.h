// A one-line progress bar on stderr, drawn only when stderr is a terminal (CI logs stay clean).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace qswap::cli {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled);
  ~ProgressBar();
  void update(int done, int total, int64_t bytes);
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

std::string format_bytes(double bytes);  // "1.19 GB"

}  // namespace qswap::cli
