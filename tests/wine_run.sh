#!/usr/bin/env bash
# usage: wine_run.sh <wine> <program.exe> [args...]
#
# The launcher of the cross build's tests (tests/CMakeLists.txt), and of every wine run
# of install_consumer_wine.sh (its programs, and the emulator of its consumers' builds):
# runs the program under wine, and runs it once more only when wine itself failed to
# start it: a non-zero exit in under half a second with no output at all. A Windows
# program cannot even begin under wine that fast (a warm wine server takes about 0.1 s to
# run the smallest test, and every test prints cmocka's header first), and CI once saw
# exactly that: `test_graph` "Failed 0.02 sec" with no output, when the same binary
# passes in 37 s. Any other failure (output, or a run that took longer) is the test's
# own and is never run again.
#
# ASSET_WINE_RUN_QUICK_US: the half second, in microseconds (tests/wine_run_test.sh sets
# it, so that its fake wine's runs count as quick or slow whatever the machine's load).
set -u
quick_us=${ASSET_WINE_RUN_QUICK_US:-500000}
wine=$1
shift
out=$(mktemp "${TMPDIR:-/tmp}/asset_wine_run.XXXXXX") || exit 125
child=0
tailer=0
# TERM (CTest's timeout) ends the whole run: its process group, wine's own children too
# (a test's child processes, which a TERM to wine alone left running)
trap 'if [ "$child" -ne 0 ]; then kill -TERM -- "-$child"; fi 2>/dev/null
if [ "$tailer" -ne 0 ]; then kill -TERM "$tailer"; fi 2>/dev/null
rm -f "$out"; exit 143' TERM INT
# wine writes to $out, a file, never to a pipe: the first wine program of a wine session
# starts its services (services.exe, winedevice.exe, plugplay.exe, rpcss.exe...), which
# inherit its standard streams and live until the session ends, after every other test
# run beside it. Through a pipe (wine | tee), the read waited for them, not for the test:
# a test that passed and exited was held until CTest's timeout (test_faults, thirty-third
# review). The output streams to CTest as it comes (a hung test's last words are kept)
# through GNU tail, which ends once wine has exited and its last bytes are out. The run
# is a job of its own process group (set -m), whose id is $child
run() {
    : >"$out"
    set -m
    "$wine" "$@" >"$out" 2>&1 &
    child=$!
    set +m
    tail -s 0.1 -c +1 -f --pid="$child" "$out" &
    tailer=$!
    wait "$child"
    rc=$?
    child=0 # reaped: tail sees it gone, reads the rest and ends
    wait "$tailer"
    tailer=0
}
t0=${EPOCHREALTIME/./}
run "$@"
elapsed_us=$((${EPOCHREALTIME/./} - t0))
if [ "$rc" -ne 0 ] && [ ! -s "$out" ] && [ "$elapsed_us" -lt "$quick_us" ]; then
    echo "wine_run.sh: wine exited $rc after $((elapsed_us / 1000)) ms with no output" \
        "(wine failed to start ${1:-it}); running it again" >&2
    run "$@"
fi
rm -f "$out"
exit "$rc"
