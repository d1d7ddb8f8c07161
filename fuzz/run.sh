#!/usr/bin/env bash
# Builds and runs every fuzz target for FUZZ_SECONDS seconds each (default 45), starting
# from the seed corpus fuzz/corpus/<target>/ (new inputs go to a scratch directory, not
# into the repository). Fails on any crash, leak, timeout (a hang: -timeout=10) or
# sanitizer report, printing the end of that target's log; crashing inputs are kept as
# <outdir>/crash-<target>-*. Prints the executions of each target and their total.
#   FUZZ_SECONDS=45 FUZZ_OUT=build/fuzz fuzz/run.sh [target...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${FUZZ_OUT:-build/fuzz}
secs=${FUZZ_SECONDS:-45}
fuzz/build.sh "$out"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(uri json manifest pkg server http)
total=0
for t in "${targets[@]}"; do
    work=$(mktemp -d)
    scratch=$(mktemp -d) # the target's TMPDIR: the files it makes at start, removed after
    log="$out/fuzz_$t.log"
    start=$(date +%s)
    if ! TMPDIR="$scratch" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
         UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
         "$out/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
             -print_final_stats=1 -artifact_prefix="$out/crash-$t-" "$work" "fuzz/corpus/$t" \
             >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz_$t: FAILED (log: $log)" >&2
        rm -rf "$work" "$scratch"
        exit 1
    fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*')
    echo "fuzz_$t: ${execs:-0} executions in $(( $(date +%s) - start )) s, coverage ${cov:-?} edges," \
         "$(find "$work" -type f | wc -l) new corpus inputs, no crash"
    total=$(( total + ${execs:-0} ))
    rm -rf "$work" "$scratch"
done
echo "fuzz: $total executions in total, ${#targets[@]} targets, ${secs} s each"
