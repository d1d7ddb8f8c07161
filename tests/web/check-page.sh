#!/usr/bin/env bash
# tests/web/check-page.sh [BUILD_DIR] [SCREENSHOT] - the loading-screen demo as a web
# page: nginx (tests/web/nginx.sh) serves BUILD_DIR/examples (default build/web), headless
# Chromium loads loading_screen.html (tests/web/cdp_page.py), the result must say
# "done: exit 0" with "N assets loaded, 0 failed" (N > 0); a screenshot goes to SCREENSHOT (default
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
# bounded (60 s, real time): a page that never finishes is a failure, not a hang. Driven
# over the DevTools pipe (cdp_page.py) rather than --dump-dom --virtual-time-budget, whose
# virtual time could run out before the first animation frame on a loaded machine.
rc=0
timeout 120 python3 "$here/cdp_page.py" "$chromium" "$url" "$dir/shot.png" "$dir/profile" \
  >"$dir/page.txt" 2>"$dir/cdp.log" || rc=$?
result=$(head -n 1 "$dir/page.txt" | grep -o '<div id="result"[^>]*>[^<]*</div>' || true)
echo "page: $url"
echo "result: ${result:-<none>}"
if [ -s "$dir/shot.png" ]; then
  cp "$dir/shot.png" "$shot"
  echo "screenshot: $shot"
else
  echo "check-page: no screenshot (see the log below)" >&2
fi
if [[ "$result" =~ done:\ exit\ 0\;\ ([0-9]+)\ assets\ loaded,\ 0\ failed ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]; then
  echo "web page check: passed (${BASH_REMATCH[1]} assets loaded, 0 failed)"
  exit 0
fi
echo "web page check: FAILED (cdp_page.py exit $rc)" >&2
tail -n +2 "$dir/page.txt" | head -c 3000 >&2 || true
cat "$dir/cdp.log" >&2
grep -v dbus "$dir/profile.log" | tail -20 >&2 || true
exit 1
