#!/usr/bin/env bash
# tests/web/check-browser-cap.sh [BUILD_DIR] - the browser's 6 fetches of a host, in a real
# page: nginx (tests/web/nginx.sh) serves BUILD_DIR/tests/page_browser_cap.html (default
# build/web), six 500-byte bodies under /trickle/ (nginx sends the head at once, then 50
# bytes a second: about 4 s each, bounded by their size) and /fast.txt (at once). Headless Chromium
# (tests/web/cdp_page.py) loads the page, whose 6 slow loads and 7th fast one run with
# http_connect_timeout_ms 1 s (tests/web/page_browser_cap.c):
#   - as shipped, the 7th waits in the library's queue and loads: "loaded 7, failed 0",
#     single-threaded and with pthreads (page_browser_cap_mt.html: the I/O thread's fetches);
#   - with "?cap=off" (the library told it is not in a browser, as before the fortieth
#     review) its fetch() waits in the browser while its connect timer runs: the 7th must
#     fail "no response within", or the page no longer tests what it claims;
#   - with "?servers=2" (the 7th on a second server of the page) it loads too: the
#     browser's 6 are the thread's, every server's there (until the forty-first review each
#     server counted its own 6, and that 7th failed "no response within").
# Exit status 0 when all four came out so. About 40 to 60 s (four Chromium runs, ~4 s of
# slow bodies each; 46 s for three while a build shared the 2 cores).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build/web}" && pwd)
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "check-browser-cap: chromium not found" >&2; exit 1; }
dir=$(mktemp -d)
trap '"$here/nginx.sh" stop "$dir"; rm -rf "$dir"' EXIT
base=$("$here/nginx.sh" start "$dir")
cp "$build"/tests/page_browser_cap.html \
  "$build"/tests/page_browser_cap_mt.{html,js,wasm,worker.js} "$dir/root/"
mkdir "$dir/root/trickle"
for i in 0 1 2 3 4 5; do head -c 500 /dev/zero | tr '\0' s >"$dir/root/trickle/body$i.txt"; done
printf 'at once' >"$dir/root/fast.txt"

# run_page QUERY NAME [PAGE]: the page's result line into $result, its output into $dir/NAME.txt
run_page() {
  local rc=0
  # bounded (cdp_page.py: 60 s of real time; timeout: 120 s in all)
  timeout 120 python3 "$here/cdp_page.py" "$chromium" "$base/${3:-page_browser_cap}.html$1" \
    "$dir/$2.png" "$dir/profile-$2" >"$dir/$2.txt" 2>"$dir/$2.cdp.log" || rc=$?
  result=$(head -n 1 "$dir/$2.txt" | grep -o '<div id="result"[^>]*>[^<]*</div>' || true)
  echo "page ${3:-page_browser_cap}$1: ${result:-<none>} (cdp_page.py exit $rc)"
}
fail() {
  echo "browser cap check: FAILED: $1" >&2
  tail -n +2 "$dir/$2.txt" | head -c 3000 >&2 || true
  cat "$dir/$2.cdp.log" >&2
  grep -v dbus "$dir/profile-$2.log" | tail -20 >&2 || true
  exit 1
}

t0=$SECONDS
run_page "" cap
[[ "$result" == *"done: exit 0; loaded 7, failed 0"* ]] ||
  fail "the 7th load of a host behind 6 slow bodies did not load" cap
tail -n +2 "$dir/cap.txt" | grep -E '^load|^all done'

# the pthreads build: the fetches run on the I/O thread, a Web Worker, which asks for the cap
run_page "" mt page_browser_cap_mt
[[ "$result" == *"done: exit 0; loaded 7, failed 0"* ]] ||
  fail "pthreads: the 7th load of a host behind 6 slow bodies did not load" mt

run_page "?cap=off" nocap
[[ "$result" == *"done: exit 1; loaded 6, failed 1"* ]] &&
  grep -q '^load 6 (at once): E_TIMEOUT, .*no response within 1000 ms' "$dir/nocap.txt" ||
  fail "without the library's cap the 7th load did not time out in the browser's queue" nocap
grep '^load 6' "$dir/nocap.txt"

# the 7th on a second server of the page (single-threaded: the servers share the thread,
# whose fetches the browser holds to 6): it waits in the library too and loads
run_page "?servers=2" second
[[ "$result" == *"done: exit 0; loaded 7, failed 0"* ]] ||
  fail "the 7th load on a second server of the page did not load" second
echo "browser cap check: passed ($((SECONDS - t0)) s)"
