# mingw-w64-x86_64.cmake - cross-compile for 64-bit Windows with Debian's mingw-w64
# (gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64), tests run under wine.
#
#   cmake -S . -B build/mingw --toolchain cmake/mingw-w64-x86_64.cmake \
#         -DASSET_MINGW_PREFIX=/var/cache/asset_server/mingw-<hash>
#
# ASSET_MINGW_PREFIX: where the Windows builds of libuv, libcurl, cJSON and cmocka are
# installed (scripts/build-mingw-deps.sh makes it). It is searched like a sysroot, and
# nothing of the Linux host's /usr is: a Linux libuv must never end up in a .exe.
# Programs (tests, asset-embed at build time) run through wine
# (CMAKE_CROSSCOMPILING_EMULATOR); the CMake preset "mingw" sets all of this.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_asset_triple x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_asset_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_asset_triple}-g++)
set(CMAKE_RC_COMPILER ${_asset_triple}-windres)

if(NOT ASSET_MINGW_PREFIX AND DEFINED ENV{ASSET_MINGW_PREFIX})
    set(ASSET_MINGW_PREFIX "$ENV{ASSET_MINGW_PREFIX}")
endif()
# try_compile() projects read this file again: hand them the prefix too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES ASSET_MINGW_PREFIX)

set(CMAKE_FIND_ROOT_PATH /usr/${_asset_triple})
if(ASSET_MINGW_PREFIX)
    list(APPEND CMAKE_FIND_ROOT_PATH "${ASSET_MINGW_PREFIX}")
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(ASSET_WINE_EXECUTABLE NAMES wine wine64)
if(ASSET_WINE_EXECUTABLE)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${ASSET_WINE_EXECUTABLE}")
endif()
