#!/usr/bin/env bash
# Installs everything qswap needs (idempotent): Debian packages, the pinned Python packages of
# requirements.txt, then builds the C++ tree (build/) and installs the Python package `qswap`.
#   scripts/setup.sh            install + build + pip install .
#   scripts/setup.sh --deps     install dependencies only
# Python: uses `python3` as found (an active virtualenv wins); QSWAP_PYTHON overrides it.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libspdlog-dev
  libpcre2-dev libicu-dev libcpp-httplib-dev libssl-dev zlib1g-dev
  clang clang-tidy libclang-rt-14-dev
  python3-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${QSWAP_PYTHON:-python3}
# Exact pins only (torch==2.13.0 is the local CPU build); a no-op when everything is installed.
if ! "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore -r requirements.txt; then
  echo "setup: pip could not install requirements.txt with $PYTHON" >&2
  exit 1
fi
[ "${1:-}" = "--deps" ] && exit 0

command -v ccache >/dev/null && export CMAKE_CXX_COMPILER_LAUNCHER=ccache
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${QSWAP_CMAKE_ARGS:-}
cmake --build build
scripts/install_python.sh
