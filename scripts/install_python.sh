#!/usr/bin/env bash
# Builds and installs the Python package `qswap` (scikit-build-core + nanobind) into the current
# Python environment. The build tree (build/python) is kept, so a re-install is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${QSWAP_PYTHON:-python3}
command -v ccache >/dev/null && export CMAKE_CXX_COMPILER_LAUNCHER=ccache
"$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-build-isolation --no-deps .
"$PYTHON" -c "import qswap; print('setup: python package qswap', qswap.__version__, 'from', qswap.__file__)"
