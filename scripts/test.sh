#!/usr/bin/env bash
# The test command: installs missing dependencies (build and test: cmocka, nginx, clang,
# valgrind, ...), configures, builds and runs every test of the default preset (GCC,
# RelWithDebInfo, -Werror). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh test
cmake --preset default
cmake --build --preset default -j2
ctest --preset default
