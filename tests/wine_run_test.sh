#!/usr/bin/env bash
# wine_run_test.sh - tests/wine_run.sh, the cross build's test launcher, driven with a
# fake `wine` (a bash script): no wine needed, so it runs in the default suite.
#   - a start failure (no output, a quick non-zero exit), the first time only: run once
#     more, and the test passes;
#   - a test's own failure (it printed something): its exit code, and not run again;
#   - a quick silent failure both times: run twice, and the second exit code; a slow
#     one (the launcher's threshold ASSET_WINE_RUN_QUICK_US set to 0) runs once;
#   - TERM while the program runs: wine_run.sh exits 143 and the fake's own child
#     processes end too (the launcher kills the whole process group of the run);
#   - a program that leaves a process holding its standard streams (wine's services,
#     started by the first program of a wine session): the launcher ends when the
#     program does, with its whole output, not when the holder lets go;
#   - no temporary file is left behind ($TMPDIR, where wine_run.sh keeps the output).
#
# usage: wine_run_test.sh WINE_RUN_SH      (the CTest test `wine_run`)
set -euo pipefail
launcher=${1:?usage: wine_run_test.sh WINE_RUN_SH}

# asset_test_*: the name CI's check for leftover directories knows (.ci/run)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/asset_test_wine_run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/tmpdir" "$tmp/state"
failed=0
fail() {
    echo "wine_run_test: FAIL: $*" >&2
    failed=1
}

# The fake wine: "$1" (the program) names what it does; every run appends a line to
# state/<name>.runs. Its state lives in $tmp/state, so a rerun sees the first run.
fake=$tmp/fake_wine
cat >"$fake" <<'FAKE'
#!/usr/bin/env bash
state=$FAKE_WINE_STATE
echo run >>"$state/$1.runs"
case $1 in
start_fails_once) # wine failing to start it the first time: silent, quick, non-zero
    [ "$(wc -l <"$state/$1.runs")" -gt 1 ] || exit 3
    echo "[==========] 1 test(s) run."
    exit 0 ;;
test_fails) # the test's own failure: it says so
    echo "[  FAILED  ] 1 test(s)"
    exit 4 ;;
silent_fails | silent_slow) # silent, every time
    exit 5 ;;
leaves_a_holder) # wine's services: they keep its stdout and stderr and outlive it
    sleep 1000 &
    echo "$!" >"$state/holder.tmp"
    mv "$state/holder.tmp" "$state/holder"
    for i in $(seq 1 2000); do echo "line $i"; done
    echo "[  PASSED  ] 1 test(s)."
    exit 0 ;;
hangs) # a program with children of its own, that never ends by itself
    sleep 1000 &
    echo "$!" >"$state/child.tmp"
    mv "$state/child.tmp" "$state/child"
    echo "[ RUN      ] waits"
    wait ;;
esac
FAKE
chmod +x "$fake"

# runs the launcher on program $1 (stdout and stderr to $tmp/out.$1); sets rc. Each run
# counts as quick (under 10 min: a bash script's start can pass the launcher's 0.5 s on a
# loaded machine), or as slow with quick_us=0
quick_us=600000000
launch() {
    rc=0
    ASSET_WINE_RUN_QUICK_US=$quick_us FAKE_WINE_STATE=$tmp/state TMPDIR=$tmp/tmpdir \
        bash "$launcher" "$fake" "$1" >"$tmp/out.$1" 2>&1 || rc=$?
}
runs() { wc -l <"$tmp/state/$1.runs"; }
no_temp_left() {
    [ -z "$(ls -A "$tmp/tmpdir")" ] || fail "$1: left in TMPDIR: $(ls -A "$tmp/tmpdir")"
}

launch start_fails_once
[ "$rc" -eq 0 ] || fail "start_fails_once: exit $rc, not 0 (not run again?)"
[ "$(runs start_fails_once)" -eq 2 ] || fail "start_fails_once: $(runs start_fails_once) runs, not 2"
grep -q "running it again" "$tmp/out.start_fails_once" ||
    fail "start_fails_once: the launcher did not say it ran it again"
grep -q "1 test(s) run" "$tmp/out.start_fails_once" ||
    fail "start_fails_once: the second run's output is not passed on"
no_temp_left start_fails_once

launch test_fails
[ "$rc" -eq 4 ] || fail "test_fails: exit $rc, not the test's 4"
[ "$(runs test_fails)" -eq 1 ] || fail "test_fails: $(runs test_fails) runs, not 1"
grep -q "FAILED" "$tmp/out.test_fails" || fail "test_fails: its output is not passed on"
no_temp_left test_fails

launch silent_fails
[ "$rc" -eq 5 ] || fail "silent_fails: exit $rc, not 5"
[ "$(runs silent_fails)" -eq 2 ] || fail "silent_fails: $(runs silent_fails) runs, not 2"
no_temp_left silent_fails

# the same silent failure, slow: the test's own, not run again
quick_us=0
launch silent_slow
[ "$rc" -eq 5 ] || fail "silent_slow: exit $rc, not 5"
[ "$(runs silent_slow)" -eq 1 ] || fail "silent_slow: $(runs silent_slow) runs, not 1"
no_temp_left silent_slow

# a holder of the program's streams left behind: the launcher ends without waiting for
# it (it waited for the holder: a test that had passed held to CTest's timeout)
FAKE_WINE_STATE=$tmp/state TMPDIR=$tmp/tmpdir \
    bash "$launcher" "$fake" leaves_a_holder >"$tmp/out.leaves_a_holder" 2>&1 &
launcher_pid=$!
for _ in $(seq 1 600); do # up to 60 s for the launcher to end
    kill -0 "$launcher_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -e "$tmp/state/holder" ]; then
    fail "leaves_a_holder: the fake never started its holder"
    kill -KILL "$launcher_pid" 2>/dev/null || true
elif kill -0 "$launcher_pid" 2>/dev/null; then
    fail "leaves_a_holder: the launcher waits for the holder of the program's output"
    kill -KILL "$(cat "$tmp/state/holder")" 2>/dev/null || true
    wait "$launcher_pid" || true
else
    rc=0
    wait "$launcher_pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "leaves_a_holder: exit $rc, not 0"
    if ! grep -q "line 2000" "$tmp/out.leaves_a_holder" ||
        ! grep -q "PASSED" "$tmp/out.leaves_a_holder"; then
        fail "leaves_a_holder: the output is not passed on whole"
    fi
    kill -KILL "$(cat "$tmp/state/holder")" 2>/dev/null || true
    no_temp_left leaves_a_holder
fi

# TERM while the program runs (its child is up: the fake wrote its pid)
FAKE_WINE_STATE=$tmp/state TMPDIR=$tmp/tmpdir \
    bash "$launcher" "$fake" hangs >"$tmp/out.hangs" 2>&1 &
launcher_pid=$!
for _ in $(seq 1 600); do # up to 60 s for the fake to start its child
    [ -e "$tmp/state/child" ] && break
    sleep 0.1
done
if [ ! -e "$tmp/state/child" ]; then
    kill -KILL "$launcher_pid" 2>/dev/null || true
    fail "hangs: the fake never started its child"
else
    child=$(cat "$tmp/state/child")
    kill -TERM "$launcher_pid"
    rc=0
    wait "$launcher_pid" || rc=$?
    [ "$rc" -eq 143 ] || fail "hangs: exit $rc after TERM, not 143"
    for _ in $(seq 1 300); do # up to 30 s for the child to be gone
        kill -0 "$child" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$child" 2>/dev/null; then
        fail "hangs: the fake's child $child still runs after the launcher's TERM"
        kill -KILL "$child" 2>/dev/null || true
    fi
    no_temp_left hangs
fi

[ "$failed" -eq 0 ] && echo "wine_run_test: all cases pass"
exit "$failed"
