#!/usr/bin/env bash
# install_consumer_wine.sh - the Windows counterpart of install_consumer.sh, for the
# mingw-w64 cross build: installs the build tree into a temporary prefix, cross-builds
# programs outside the tree against it and runs them under wine:
#   - tests/consumer through find_package(asset_server): the DLL (with a folder compiled
#     in by asset_server_embed(), i.e. the installed asset-embed.exe run under wine) and
#     the static library;
#   - tests/consumer_cxx, a C++-only project with asset_server.hpp and asset_server_embed(),
#     built with the posix thread model g++ (the hpp needs std::mutex, which mingw's
#     win32 thread model lacks);
#   - tests/consumer/main.c through pkg-config (x86_64-w64-mingw32-pkg-config, or
#     pkg-config with PKG_CONFIG_LIBDIR = the installed prefix and the dependency prefix,
#     which is what that wrapper does): the DLL, and the static library both through
#     `pkg-config --static asset_server` and through asset_server-static.
# The DLLs are found on WINEPATH: the prefix's bin/ (libasset_server.dll) and the
# compiler's runtime directory (libgcc_s_seh-1.dll, libstdc++-6.dll; see
# ../shared/third_party/README.md: a missing DLL fails silently with exit code 53).
# Every wine run goes through tests/wine_run.sh, the tests' launcher: the programs, and
# asset-embed.exe in the consumers' builds (their emulator). Run straight onto CTest's
# pipe, the first wine program of a wine session left its services holding the pipe,
# and CTest waited for them after the script was done (wine_run.sh says more).
#
# usage: install_consumer_wine.sh CMAKE BUILD_DIR CONSUMER_SRC_DIR TOOLCHAIN_FILE
#                                 MINGW_PREFIX WINE [CONFIG]
# Registered by tests/CMakeLists.txt as the CTest test `install_consumer` in mingw builds.
set -euo pipefail

if [ $# -lt 6 ]; then
    echo "usage: $0 CMAKE BUILD_DIR CONSUMER_SRC_DIR TOOLCHAIN_FILE MINGW_PREFIX WINE [CONFIG]" >&2
    exit 2
fi
cmake_cmd=$1 build_dir=$2 consumer_src=$3 toolchain=$4 deps=$5 wine=$6 config=${7:-}
triple=x86_64-w64-mingw32

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
launcher=("${BASH:-bash}" "$here/wine_run.sh" "$wine") # wine, its output through a file

tmp=$(mktemp -d "${TMPDIR:-/tmp}/asset_server_install_wine.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
step() { echo "== install_consumer_wine: $*"; }
fail() { echo "install_consumer_wine: $*" >&2; exit 1; }

config_args=()
[ -n "$config" ] && config_args=(--config "$config")

step "install $build_dir into $prefix"
"$cmake_cmd" --install "$build_dir" --prefix "$prefix" "${config_args[@]}"
for f in include/asset_server.h include/asset_server.hpp bin/libasset_server.dll \
         bin/asset-embed.exe lib/libasset_server.dll.a lib/libasset_server_static.a \
         lib/pkgconfig/asset_server.pc lib/pkgconfig/asset_server-static.pc \
         lib/cmake/asset_server/asset_serverConfig.cmake \
         lib/cmake/asset_server/AssetServerEmbed.cmake share/doc/asset_server/README.md; do
    [ -e "$prefix/$f" ] || fail "missing after install: $f"
done

# the compiler runtimes of both thread models: C programs need neither (libgcc is
# linked statically), the C++ one needs libstdc++ and libgcc_s of the posix model
rt_win32=$(dirname "$("$triple-gcc-win32" -print-libgcc-file-name)")
rt_posix=$(dirname "$("$triple-gcc-posix" -print-libgcc-file-name)")
winpthread=$(dirname "$("$triple-gcc-posix" -print-file-name=libwinpthread-1.dll)")
winpath() { # Z:<dir>;Z:<dir>... for WINEPATH
    local out="" d
    for d in "$@"; do out+="${out:+;}Z:$d"; done
    printf '%s' "$out"
}
run() { # run EXE WINEPATH-DIRS...: the program under wine, its output shown
    local exe=$1
    shift
    step "run $(basename "$exe") under wine"
    local rc=0
    WINEPATH=$(winpath "$@") "${launcher[@]}" "$exe" || rc=$?
    # 53: wine could not load a DLL (../shared/third_party/README.md)
    [ "$rc" = 0 ] || fail "$(basename "$exe") exited with $rc"
}
# imports EXE: the DLLs it imports, one a line (read whole: `objdump | grep -q` under
# pipefail fails when grep stops reading early)
imports() {
    local dump
    dump=$("$triple-objdump" -p "$1") || fail "objdump -p $1 failed"
    awk '/DLL Name:/ {print $3}' <<<"$dump"
}
not_importing_dll() { # not_importing_dll EXE: fails if EXE imports libasset_server.dll
    local list
    list=$(imports "$1")
    if grep -qi '^libasset_server' <<<"$list"; then
        fail "$(basename "$1") imports libasset_server.dll"
    fi
}
find_exe() { # find_exe DIR NAME
    local bin
    bin=$(find "$1" -type f -name "$2.exe" | head -n 1)
    [ -n "$bin" ] || fail "not built: $2.exe"
    printf '%s' "$bin"
}

# The toolchain file, wrapped (the file itself is part of the dependency prefix's cache
# key and stays as it is): its emulator is the launcher, for asset-embed.exe in
# asset_server_embed(). wrap_toolchain OUT [LINE...]: the wrapper, with LINEs after
wrap_toolchain() {
    local out=$1
    shift
    printf '%s\n' "include(\"$toolchain\")" \
        "set(CMAKE_CROSSCOMPILING_EMULATOR $(printf '"%s" ' "${launcher[@]}"))" "$@" >"$out"
}
wrap_toolchain "$tmp/toolchain.cmake"

# Package searches are re-rooted under CMAKE_FIND_ROOT_PATH in a cross build: name the
# package directory directly. The static target's dependencies come from the same
# dependency prefix as the library's (ASSET_MINGW_PREFIX, searched by the toolchain).
cmake_consumer() { # cmake_consumer SRC BUILD [cmake args...]
    local src=$1 bld=$2
    shift 2
    "$cmake_cmd" -S "$src" -B "$bld" --toolchain "$tmp/toolchain.cmake" \
        -DASSET_MINGW_PREFIX="$deps" \
        -Dasset_server_DIR="$prefix/lib/cmake/asset_server" \
        ${config:+-DCMAKE_BUILD_TYPE="$config"} "$@"
    "$cmake_cmd" --build "$bld" "${config_args[@]}"
}

# pkg-config for the target: the cross wrapper where installed, else the same thing by
# hand (PKG_CONFIG_LIBDIR replaces the build machine's .pc directories)
pc=$(command -v "$triple-pkg-config" || command -v pkg-config) || fail "no pkg-config"
export PKG_CONFIG_LIBDIR="$prefix/lib/pkgconfig:$deps/lib/pkgconfig"
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

step "find_package(asset_server) consumer: DLL with asset_server_embed(), static library"
cmake_consumer "$consumer_src" "$tmp/build"
run "$(find_exe "$tmp/build" consumer_shared)" "$prefix/bin" "$rt_win32"
static_exe=$(find_exe "$tmp/build" consumer_static)
not_importing_dll "$static_exe"
run "$static_exe" "$rt_win32" # no prefix/bin: the static program must not need the DLL

step "find_package(asset_server) C++-only consumer: asset_server.hpp, asset_server_embed()"
# the toolchain file with the posix-model g++
toolchain_cxx=$tmp/toolchain-cxx-posix.cmake
wrap_toolchain "$toolchain_cxx" "set(CMAKE_CXX_COMPILER $triple-g++-posix)"
"$cmake_cmd" -S "$consumer_src/../consumer_cxx" -B "$tmp/build_cxx" --toolchain "$toolchain_cxx" \
    -DASSET_MINGW_PREFIX="$deps" -Dasset_server_DIR="$prefix/lib/cmake/asset_server" \
    ${config:+-DCMAKE_BUILD_TYPE="$config"}
"$cmake_cmd" --build "$tmp/build_cxx" "${config_args[@]}"
run "$(find_exe "$tmp/build_cxx" consumer_cxx)" "$prefix/bin" "$rt_posix" "$winpthread"

cc=$triple-gcc
cflags=$("$pc" --cflags asset_server)
libs=$("$pc" --libs asset_server)
cflags_static=$("$pc" --static --cflags asset_server)
libs_static=$("$pc" --static --libs asset_server)
static_module=$("$pc" --cflags --libs asset_server-static) || fail "no asset_server-static module"
step "pkg-config ($pc): cflags: $cflags"
step "pkg-config: libs: $libs"
step "pkg-config: static cflags: $cflags_static"
step "pkg-config: static libs: $libs_static"
step "pkg-config: asset_server-static: $static_module"
for flags in "$cflags_static" "$static_module"; do
    grep -q -- "-DASSET_SERVER_STATIC" <<<"$flags" || fail "no -DASSET_SERVER_STATIC in: $flags"
done

step "pkg-config consumer, DLL"
# shellcheck disable=SC2086 # pkg-config output is meant to be word-split
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc_shared.exe" \
    "$consumer_src/main.c" $cflags $libs
pc_shared_imports=$(imports "$tmp/pc_shared.exe")
grep -qix 'libasset_server.dll' <<<"$pc_shared_imports" ||
    fail "pc_shared.exe does not import libasset_server.dll"
run "$tmp/pc_shared.exe" "$prefix/bin" "$rt_win32"

step "pkg-config consumer, static (pkg-config --static asset_server)"
# -l:libasset_server_static.a: the archive, where -lasset_server finds the import library;
# then the static libraries of the modules in Requires.private
requires_private=$("$pc" --print-requires-private asset_server | awk '{print $1}')
# shellcheck disable=SC2086
dep_libs=$("$pc" --static --libs $requires_private)
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc_static.exe" \
    "$consumer_src/main.c" $cflags_static -L"$prefix/lib" -l:libasset_server_static.a $dep_libs
not_importing_dll "$tmp/pc_static.exe"
run "$tmp/pc_static.exe" "$rt_win32"

step "pkg-config consumer, asset_server-static module"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -o "$tmp/pc_static_module.exe" \
    "$consumer_src/main.c" $static_module
not_importing_dll "$tmp/pc_static_module.exe"
run "$tmp/pc_static_module.exe" "$rt_win32"

step "ok"
