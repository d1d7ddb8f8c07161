#!/usr/bin/env bash
# doc_refs.sh - the documentation refers only to files that are in the repository:
# every repository path in README.md and docs/*.md (src/..., include/..., tests/...,
# examples/..., tools/..., scripts/..., cmake/..., bench/..., fuzz/..., docs/..., and
# bare *.md names, which docs/ pages use for each other) must exist.
#
# usage: doc_refs.sh SOURCE_DIR     (the CTest test `doc_refs`)
set -euo pipefail
root=${1:?usage: doc_refs.sh SOURCE_DIR}
cd "$root"
missing=0
for doc in README.md docs/*.md; do
    dir=$(dirname "$doc")
    # paths as they appear in backticks or in markdown links
    refs=$(grep -oE '(\(|`)[A-Za-z0-9_./-]+\.(c|h|cpp|hpp|md|sh|cmake|txt|json|py|in)(\)|`|#)' "$doc" |
           sed -E 's/^[(`]//; s/[)`#]$//' | sort -u || true)
    for ref in $refs; do
        case "$ref" in
            src/* | include/* | tests/* | examples/* | tools/* | scripts/* | cmake/* | bench/* | fuzz/* | docs/*)
                [ -e "$ref" ] || [ -e "$dir/$ref" ] || { echo "$doc: no such file: $ref"; missing=1; } ;;
            ../*)
                [ -e "$dir/$ref" ] || { echo "$doc: no such file: $ref"; missing=1; } ;;
            *.md)
                [ -e "$dir/$ref" ] || [ -e "$ref" ] || { echo "$doc: no such file: $ref"; missing=1; } ;;
        esac
    done
done
[ $missing -eq 0 ] && echo "doc_refs: every referenced file exists"
exit $missing
