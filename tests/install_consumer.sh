#!/usr/bin/env bash
# install_consumer.sh - installs a build tree into a temporary prefix and proves that a
# program outside the tree can use it, through find_package() (shared and static
# targets) and through pkg-config (shared, and static with Libs.private/Requires.private).
#
# With a C++ compiler (CXX), it also builds tests/consumer_cxx, a C++-only project
# (`project(x CXX)`) that uses asset_server.hpp and asset_server_embed().
#
# usage: install_consumer.sh CMAKE BUILD_DIR CONSUMER_SRC_DIR CC PKG_CONFIG LIBDIR [CONFIG [CXX]]
# Registered by tests/CMakeLists.txt as the CTest test `install_consumer`.
set -euo pipefail

if [ $# -lt 6 ]; then
    echo "usage: $0 CMAKE BUILD_DIR CONSUMER_SRC_DIR CC PKG_CONFIG LIBDIR [CONFIG]" >&2
    exit 2
fi
cmake_cmd=$1 build_dir=$2 consumer_src=$3 cc=$4 pkg_config=$5 libdir=$6 config=${7:-} cxx=${8:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/asset_server_install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
step() { echo "== install_consumer: $*"; }

config_args=()
[ -n "$config" ] && config_args=(--config "$config")

step "install $build_dir into $prefix"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix" "${config_args[@]}"
for f in "include/asset_server.h" "include/asset_server.hpp" "$libdir/libasset_server.a" "$libdir/pkgconfig/asset_server.pc" \
         "$libdir/cmake/asset_server/asset_serverConfig.cmake"; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done
ls "$prefix/$libdir"/libasset_server.so* >/dev/null
# the documentation goes with the package
for f in share/doc/asset_server/README.md share/doc/asset_server/LICENSE \
         share/doc/asset_server/docs/guide.md share/doc/asset_server/docs/cxx.md; do
    [ -e "$prefix/$f" ] || { echo "missing after install: $f" >&2; exit 1; }
done

export LD_LIBRARY_PATH="$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step "find_package(asset_server) consumer"
"$cmake_cmd" -S "$consumer_src" -B "$tmp/build" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    ${config:+-DCMAKE_BUILD_TYPE="$config"}
"$cmake_cmd" --build "$tmp/build" "${config_args[@]}"
for exe in consumer_shared consumer_static; do
    bin=$(find "$tmp/build" -type f -name "$exe" -perm -u+x | head -n 1)
    [ -n "$bin" ] || { echo "not built: $exe" >&2; exit 1; }
    step "run $exe"
    "$bin"
done

if [ -n "$cxx" ]; then
    step "find_package(asset_server) C++-only consumer: asset_server.hpp, asset_server_embed()"
    "$cmake_cmd" -S "$consumer_src/../consumer_cxx" -B "$tmp/build_cxx" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
        ${config:+-DCMAKE_BUILD_TYPE="$config"}
    "$cmake_cmd" --build "$tmp/build_cxx" "${config_args[@]}"
    bin=$(find "$tmp/build_cxx" -type f -name consumer_cxx -perm -u+x | head -n 1)
    [ -n "$bin" ] || { echo "not built: consumer_cxx" >&2; exit 1; }
    step "run consumer_cxx"
    "$bin"
fi

# pkg-config: PKG_CONFIG_PATH is searched before the system dirs, where libuv, libcurl
# and libcjson (Requires.private) are found.
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
cflags=$("$pkg_config" --cflags asset_server)
libs=$("$pkg_config" --libs asset_server)
libs_static=$("$pkg_config" --static --libs asset_server)
step "pkg-config: cflags: $cflags"
step "pkg-config: libs: $libs"
step "pkg-config: static libs: $libs_static"

step "pkg-config consumer, shared"
# shellcheck disable=SC2086 # pkg-config output is meant to be word-split
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc_shared" \
    "$consumer_src/main.c" $cflags $libs
"$tmp/pc_shared"

step "pkg-config consumer, static"
# Static linking must define ASSET_SERVER_STATIC (no dllimport on Windows): both through
# `pkg-config --static` (Cflags.private) and through the asset_server-static module.
cflags_static=$("$pkg_config" --static --cflags asset_server)
step "pkg-config: static cflags: $cflags_static"
grep -q -- "-DASSET_SERVER_STATIC" <<<"$cflags_static" ||
    { echo "pkg-config --static --cflags asset_server lacks -DASSET_SERVER_STATIC" >&2; exit 1; }
static_module=$("$pkg_config" --cflags --libs asset_server-static) ||
    { echo "no asset_server-static pkg-config module" >&2; exit 1; }
step "pkg-config: asset_server-static: $static_module"
grep -q -- "-DASSET_SERVER_STATIC" <<<"$static_module" ||
    { echo "asset_server-static lacks -DASSET_SERVER_STATIC" >&2; exit 1; }
# A fully static link (`pkg-config --static --libs`) would need the static closure of
# libcurl (nghttp2, ssh2, ldap, ...), which distributions do not ship. So check that
# the static metadata is right, then link our archive with the shared dependencies
# named in Requires.private.
for want in -lasset_server -luv -lcurl -lcjson -pthread; do
    grep -q -- "\(^\| \)$want\( \|$\)" <<<"$libs_static" ||
        { echo "pkg-config --static --libs asset_server lacks $want" >&2; exit 1; }
done
requires_private=$("$pkg_config" --print-requires-private asset_server | awk '{print $1}')
# shellcheck disable=SC2086
dep_libs=$("$pkg_config" --libs $requires_private)
# -l:libasset_server.a picks the archive over the .so that -lasset_server would find.
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc_static" \
    "$consumer_src/main.c" $cflags_static -L"$prefix/$libdir" -l:libasset_server.a $dep_libs -pthread
if command -v readelf >/dev/null && readelf -d "$tmp/pc_static" | grep -q 'libasset_server'; then
    echo "pc_static depends on libasset_server.so" >&2
    exit 1
fi
env -u LD_LIBRARY_PATH "$tmp/pc_static"

step "pkg-config consumer, asset_server-static module"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc_static_module" \
    "$consumer_src/main.c" $static_module
if command -v readelf >/dev/null && readelf -d "$tmp/pc_static_module" | grep -q 'libasset_server'; then
    echo "pc_static_module depends on libasset_server.so" >&2
    exit 1
fi
env -u LD_LIBRARY_PATH "$tmp/pc_static_module"

step "ok"
