#!/usr/bin/env bash
# tests/web/check-page.sh [BUILD_DIR] [SCREENSHOT] - the loading-screen demo as a web
# page: nginx (tests/web/nginx.sh) serves BUILD_DIR/examples (default build/web), headless
# Chromium loads loading_screen.html, the DOM dump must say "done: exit 0" with
# "N assets loaded, 0 failed" (N > 0); a screenshot goes to SCREENSHOT (default
# docs/web-loading-screen.png). Exit status 0 when the page passed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build/web}" && pwd)
shot=${2:-$here/../../docs/web-loading-screen.png}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
[ -n "$chromium" ] || { echo "check-page: chromium not found" >&2; exit 1; }
dir=$(mktemp -d)
trap '"$here/nginx.sh" stop "$dir"; rm -rf "$dir"' EXIT
base=$("$here/nginx.sh" start "$dir")
cp "$build"/examples/loading_screen.{html,js,data} "$dir/root/"
url="$base/loading_screen.html"
flags=(--headless --no-sandbox --disable-gpu --no-first-run --disable-dev-shm-usage
       --user-data-dir="$dir/profile" --virtual-time-budget=30000)
# bounded: a page that never finishes is a failure, not a hang
timeout 120 "$chromium" "${flags[@]}" --dump-dom "$url" >"$dir/dom.html" 2>"$dir/chromium.log" || true
result=$(grep -o '<div id="result"[^>]*>[^<]*</div>' "$dir/dom.html" || true)
echo "page: $url"
echo "result: ${result:-<none>}"
timeout 120 "$chromium" "${flags[@]}" --window-size=900,700 --screenshot="$dir/shot.png" "$url" \
  >/dev/null 2>>"$dir/chromium.log" || true
if [ -s "$dir/shot.png" ]; then
  cp "$dir/shot.png" "$shot"
  echo "screenshot: $shot"
else
  echo "check-page: no screenshot (see chromium log below)" >&2
  tail -20 "$dir/chromium.log" >&2
fi
if [[ "$result" =~ done:\ exit\ 0\;\ ([0-9]+)\ assets\ loaded,\ 0\ failed ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
  echo "web page check: passed (${BASH_REMATCH[1]} assets loaded, 0 failed)"
  exit 0
fi
echo "web page check: FAILED" >&2
grep -o '<pre id="output">.*' "$dir/dom.html" | head -c 3000 >&2 || true
tail -20 "$dir/chromium.log" >&2
exit 1
