#!/usr/bin/env bash
# Installs the Debian packages asset_server needs, only those that are missing.
# Safe to run repeatedly; uses sudo when not root.
#
#   scripts/install-deps.sh build   what building the library and the examples needs
#                                   (scripts/demo.sh)
#   scripts/install-deps.sh test    that, plus what the tests and CI need: cmocka, nginx
#                                   and openssl (HTTP suites), clang and its sanitizer and
#                                   fuzzer runtimes, valgrind (scripts/test.sh, .ci/run);
#                                   SDL2 and Xvfb for examples/sdl_gallery.c, which CI runs
#                                   (the example is built only when SDL2 is found); and the
#                                   web build: emscripten, node (with the acorn module emcc's
#                                   pthread builds use), headless chromium; liburing, only for
#                                   the bench's measuring tool bench/floor/uring_floor.c
#   scripts/install-deps.sh windows the Windows cross build: mingw-w64 (C and C++) and
#                                   wine to run its tests (.ci/run; docs/platforms.md)
#
# With no argument it installs everything (test).
set -euo pipefail
mode=${1:-test}
build_pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libcjson-dev zlib1g-dev)
test_pkgs=(libcmocka-dev nginx-light openssl clang valgrind libclang-rt-14-dev libsdl2-dev xvfb xauth liburing-dev
           emscripten nodejs node-acorn chromium python3)
windows_pkgs=(gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 wine wine64 cmake)
case "$mode" in
  build) pkgs=("${build_pkgs[@]}") ;;
  windows) pkgs=("${windows_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|windows]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps ($mode): installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
