#!/usr/bin/env bash
# Builds the loading_screen example (default preset) and runs it on examples/assets.
# Extra arguments go to loading_screen after the assets folder.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake --preset default
cmake --build --preset default -j2 --target loading_screen
exec build/default/examples/loading_screen "$PWD/examples/assets" "$@"
