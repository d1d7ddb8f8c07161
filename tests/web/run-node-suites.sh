#!/usr/bin/env bash
# tests/web/run-node-suites.sh [BUILD_DIR] - runs the web build's suites under node:
# starts nginx on 127.0.0.1 (tests/web/nginx.sh), hands its URL and document root to
# the programs (ASSET_TEST_HTTP_BASE, ASSET_TEST_HTTP_ROOT, ASSET_TEST_HTTP_PORTS), runs
# ctest in BUILD_DIR (default build/web) and prints "N passed, M failed". Exit status: 0 when none failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build/web}
dir=$(mktemp -d)
trap '"$here/nginx.sh" stop "$dir"; rm -rf "$dir"' EXIT
ASSET_TEST_HTTP_BASE=$("$here/nginx.sh" start "$dir")
ASSET_TEST_HTTP_PORTS=$(cat "$dir/ports") # nine more ports of it, space-separated
export ASSET_TEST_HTTP_BASE ASSET_TEST_HTTP_ROOT="$dir/root" ASSET_TEST_HTTP_PORTS
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
log="$dir/ctest.log"
rc=0
ctest --test-dir "$build" --output-on-failure -j2 --timeout 300 >"$log" 2>&1 || rc=$?
cat "$log"
passed=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log" || true)
failed=$(grep -cE 'Test +#[0-9]+: .*(\*\*\*|Failed|Not Run|Exception)' "$log" || true)
skipped=$(grep -cE 'Test +#[0-9]+: .* Skipped' "$log" || true)
echo "web node suites: $passed passed, $failed failed${skipped:+, $skipped skipped}"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
