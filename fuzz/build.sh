#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c) with clang -fsanitize=fuzzer,address,
# undefined; the library's sources are compiled into them, instrumented the same way.
#   fuzz/build.sh [outdir]        (default: build/fuzz)
# Needs clang and libclang-rt-14-dev (scripts/install-deps.sh installs both).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-build/fuzz}
cc=${FUZZ_CC:-clang}
mkdir -p "$out/obj"
# shellcheck disable=SC2207
deps_cflags=($(pkg-config --cflags libuv libcurl libcjson zlib))
# shellcheck disable=SC2207
deps_libs=($(pkg-config --libs libuv libcurl libcjson zlib) -lpthread)
common=(-g -O1 -std=c11 -D_GNU_SOURCE -fno-omit-frame-pointer -fno-sanitize-recover=all
        -Wall -Wextra -Iinclude -Isrc "${deps_cflags[@]}")
export cc out
export common_flags="${common[*]}"
# the library (its Linux platform layer, as the default build picks it), two files at a
# time; ASSET_HAVE_ST_MTIM as CMake finds it on Linux (file versions with nanoseconds)
common+=(-DASSET_HAVE_ST_MTIM -DASSET_SERVER_HAVE_ZLIB)
export common_flags="${common[*]}"
{
    find src -maxdepth 1 -name '*.c'
    find src/sources src/loaders -name '*.c'
    printf 'src/platform/%s.c\n' fs fs_posix sys_posix lock_posix random_posix portable beneath_linux
} | sort | xargs -P 2 -I{} sh -c '
    o="$out/obj/$(echo "{}" | tr / _ | sed "s/\.c$/.o/")"
    $cc $common_flags -fsanitize=fuzzer-no-link,address,undefined -c "{}" -o "$o"'
for t in fuzz/fuzz_*.c; do
    name=$(basename "$t" .c)
    "$cc" "${common[@]}" -fsanitize=fuzzer,address,undefined "$t" "$out"/obj/*.o \
        "${deps_libs[@]}" -o "$out/$name"
    echo "built $out/$name"
done
