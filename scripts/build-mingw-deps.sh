#!/usr/bin/env bash
# build-mingw-deps.sh - builds the Windows (mingw-w64) dependency prefix from the source
# archives in ../shared/third_party and prints its path on stdout.
#
#   prefix=$(scripts/build-mingw-deps.sh)
#
# libuv 1.44.2, cJSON 1.7.15, cmocka 1.1.5 and curl 7.88.1 (Schannel TLS, HTTP only,
# no OpenSSL), all static, built with cmake/mingw-w64-x86_64.cmake. About 4 minutes on
# 2 cores, so the prefix is cached: $ASSET_MINGW_CACHE (default /var/cache/asset_server,
# else ~/.cache/asset_server when that is not writable) / mingw-<hash>, where <hash>
# covers the archives, this script and the toolchain file. A second run with the same
# inputs prints the cached prefix at once; an interrupted run leaves nothing behind
# that looks finished (the prefix is moved into place whole, then marked complete).
#
# Environment: ASSET_THIRD_PARTY (default <repo>/../shared/third_party),
# ASSET_MINGW_CACHE, JOBS (default 2).
set -euo pipefail
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$self")/.." && pwd)
tp=${ASSET_THIRD_PARTY:-$repo/../shared/third_party}
toolchain=$repo/cmake/mingw-w64-x86_64.cmake
jobs=${JOBS:-2}
log() { echo "build-mingw-deps: $*" >&2; }

archives=(libuv-1.44.2.tar.gz cJSON-1.7.15.tar.gz cmocka-1.1.5.tar.gz curl-7.88.1.tar.gz)
for a in "${archives[@]}"; do
    [ -f "$tp/$a" ] || { log "missing $tp/$a"; exit 1; }
done
command -v x86_64-w64-mingw32-gcc >/dev/null ||
    { log "x86_64-w64-mingw32-gcc not found (apt-get install gcc-mingw-w64-x86-64)"; exit 1; }

hash=$( (cd "$tp" && sha256sum "${archives[@]}"; cat "$self" "$toolchain" | sha256sum) |
       sha256sum | cut -c1-16)
cache=${ASSET_MINGW_CACHE:-/var/cache/asset_server}
if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    cache=${XDG_CACHE_HOME:-$HOME/.cache}/asset_server
    mkdir -p "$cache"
fi
prefix=$cache/mingw-$hash
if [ -f "$prefix/.complete" ]; then
    log "cached: $prefix"
    echo "$prefix"
    exit 0
fi

# one builder at a time per cache (two CI runs on one machine)
exec 9>"$cache/.lock"
flock 9
if [ -f "$prefix/.complete" ]; then
    log "cached (built by another run meanwhile): $prefix"
    echo "$prefix"
    exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/asset_mingw_deps.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage # DESTDIR: installed paths are the final ones
t0=$SECONDS

build() { # name archive-dir cmake-args...
    local name=$1 dir=$2
    shift 2
    log "$name: configure"
    cmake -S "$work/src/$dir" -B "$work/build/$name" -G "Unix Makefiles" \
        --toolchain "$toolchain" -DASSET_MINGW_PREFIX="$stage$prefix" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
        -DCMAKE_INSTALL_LIBDIR=lib "$@" >"$work/$name.log" 2>&1 ||
        { cat "$work/$name.log" >&2; exit 1; }
    log "$name: build"
    { cmake --build "$work/build/$name" -j"$jobs" &&
      DESTDIR=$stage cmake --install "$work/build/$name"; } >>"$work/$name.log" 2>&1 ||
        { tail -n 60 "$work/$name.log" >&2; exit 1; }
}

mkdir -p "$work/src"
for a in "${archives[@]}"; do tar -xzf "$tp/$a" -C "$work/src"; done

build libuv libuv-1.44.2 -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
build cjson cJSON-1.7.15 -DBUILD_SHARED_LIBS=OFF -DENABLE_CJSON_TEST=OFF \
    -DENABLE_CJSON_UTILS=OFF -DENABLE_CUSTOM_COMPILER_FLAGS=OFF
build cmocka cmocka-1.1.5 -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF
build curl curl-7.88.1 -DBUILD_SHARED_LIBS=OFF -DCURL_USE_SCHANNEL=ON -DCURL_USE_OPENSSL=OFF \
    -DBUILD_CURL_EXE=OFF -DCURL_USE_LIBSSH2=OFF -DUSE_LIBIDN2=OFF -DCURL_ZLIB=OFF \
    -DBUILD_TESTING=OFF -DHTTP_ONLY=ON -DCURL_USE_LIBPSL=OFF -DENABLE_MANUAL=OFF

rm -rf "$prefix"
mv "$stage$prefix" "$prefix"
touch "$prefix/.complete"
log "built $prefix in $((SECONDS - t0)) s"
echo "$prefix"
