#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs dependencies, then builds and runs the
# whole suite: the C++ tests in Release with warnings as errors, the Python tests (package, trainer
# loop, protocol, OpenAI server) against that build, then the C++ tests again under ASan + UBSan.
#   QSWAP_TEST_ONLY=release|python|asan   run one part (python needs build/ from release)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps

jobs=$(nproc)
command -v ccache >/dev/null && export CMAKE_CXX_COMPILER_LAUNCHER=ccache
PYTHON=${QSWAP_PYTHON:-python3}
run_config() {  # name, build dir, cmake args...
  local name=$1 dir=$2
  shift 2
  echo "=== qswap tests: $name ($dir)"
  cmake -S . -B "$dir" -G Ninja -DQSWAP_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs")
}

only=${QSWAP_TEST_ONLY:-all}
if [[ $only == all || $only == release ]]; then
  run_config release build -DCMAKE_BUILD_TYPE=Release
fi
if [[ $only == all || $only == python ]]; then
  echo "=== qswap tests: python (tests/python)"
  scripts/install_python.sh
  QSWAP_BIN=$PWD/build/cli/qswap "$PYTHON" -m pytest tests/python -q -p no:cacheprovider
fi
if [[ $only == all || $only == asan ]]; then
  # Benchmarks are not built here; the fuzz corpus replay runs as a ctest under the sanitizers.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    run_config "asan+ubsan" build-asan -DCMAKE_BUILD_TYPE=Debug -DQSWAP_SANITIZE=ON -DQSWAP_BUILD_BENCH=OFF
fi
