#!/usr/bin/env bash
# Builds the loading_screen example and runs it on examples/assets. Needs only the build
# dependencies (no cmocka, nginx, clang or valgrind): it configures its own build tree,
# build/demo, with the tests and the benchmark off (the default preset's settings
# otherwise), so it never changes build/default, which scripts/test.sh uses.
# Extra arguments go to loading_screen after the assets folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh build
cmake --preset default -B build/demo \
    -DASSET_SERVER_BUILD_TESTS=OFF -DASSET_SERVER_BUILD_BENCH=OFF
cmake --build build/demo -j2 --target loading_screen
exec build/demo/examples/loading_screen "$PWD/examples/assets" "$@"
