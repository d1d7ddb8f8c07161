# AssetServerWeb.cmake - the web build (Emscripten), included by the top CMakeLists.txt
# instead of the desktop build when CMAKE_SYSTEM_NAME is Emscripten:
#
#   cmake --preset web && cmake --build --preset web && ctest --preset web
#
# No libuv and no libcurl: src/web/uv/uv.h stands in for the few libuv calls the core
# makes, http(s):// is src/web/http_fetch.c on JS fetch(). Two libraries:
#   asset_server_web      single-threaded: jobs run inside asset_server_flush()
#   asset_server_web_mt   -pthread: max_workers Web Workers, the I/O thread a worker
# cJSON and cmocka are compiled from ../shared/third_party (ASSET_SERVER_THIRD_PARTY),
# once, into this build directory. Tests run under node (CMAKE_CROSSCOMPILING_EMULATOR,
# set by the Emscripten toolchain file); see tests/web/ and docs/web.md.
include_guard(GLOBAL)

set(ASSET_SERVER_THIRD_PARTY "${PROJECT_SOURCE_DIR}/../shared/third_party"
    CACHE PATH "Directory holding cJSON-1.7.15.tar.gz and cmocka-1.1.5.tar.gz")
set(_web_deps "${PROJECT_BINARY_DIR}/third_party")

function(_asset_web_extract archive dirname)
    if(NOT EXISTS "${_web_deps}/${dirname}")
        if(NOT EXISTS "${ASSET_SERVER_THIRD_PARTY}/${archive}")
            message(FATAL_ERROR "web build: ${ASSET_SERVER_THIRD_PARTY}/${archive} is missing "
                                "(set ASSET_SERVER_THIRD_PARTY)")
        endif()
        file(ARCHIVE_EXTRACT INPUT "${ASSET_SERVER_THIRD_PARTY}/${archive}"
             DESTINATION "${_web_deps}")
    endif()
endfunction()
_asset_web_extract(cJSON-1.7.15.tar.gz cJSON-1.7.15)

# cmocka 1.1.5's header redefines uintptr_t unless told the platform has it
set(ASSET_WEB_CMOCKA_DEFS _UINTPTR_T _UINTPTR_T_DEFINED)

# the library includes <cjson/cJSON.h> as Debian installs it. Built twice: wasm objects
# with and without atomics (-pthread) do not link together.
file(MAKE_DIRECTORY "${_web_deps}/include/cjson")
file(COPY "${_web_deps}/cJSON-1.7.15/cJSON.h" DESTINATION "${_web_deps}/include/cjson")
foreach(_mode st mt)
    add_library(asset_web_cjson_${_mode} STATIC "${_web_deps}/cJSON-1.7.15/cJSON.c")
    target_include_directories(asset_web_cjson_${_mode} PUBLIC "${_web_deps}/include")
    if(_mode STREQUAL "mt")
        target_compile_options(asset_web_cjson_${_mode} PRIVATE -pthread)
    endif()
endforeach()

set(_web_src "${PROJECT_SOURCE_DIR}/src")
file(GLOB _web_core CONFIGURE_DEPENDS
     "${_web_src}/*.c" "${_web_src}/sources/*.c" "${_web_src}/loaders/*.c")
list(REMOVE_ITEM _web_core "${_web_src}/pool.c" "${_web_src}/io_thread.c"
     "${_web_src}/sources/http.c")
# the platform layer: the generic POSIX implementation (O_NOFOLLOW walk, no openat2) on
# the Emscripten file system, as on macOS and the BSDs
list(APPEND _web_core "${_web_src}/platform/fs.c" "${_web_src}/platform/fs_posix.c"
     "${_web_src}/platform/portable.c"
     "${_web_src}/platform/beneath_walk.c" "${_web_src}/platform/lock_posix.c"
     "${_web_src}/platform/random_posix.c")
set_property(SOURCE "${_web_src}/platform/fs_posix.c" APPEND PROPERTY COMPILE_DEFINITIONS
             ASSET_HAVE_ST_MTIM)
set(_web_common "${_web_src}/web/uv_web.c" "${_web_src}/web/io_web.c"
    "${_web_src}/web/http_fetch.c")

# asset_web_target_defaults(target threaded)
function(asset_web_target_defaults target threaded)
    asset_server_target_defaults(${target})
    target_include_directories(${target} BEFORE PRIVATE "${_web_src}/web/uv")
    if(threaded)
        target_compile_options(${target} PRIVATE -pthread)
        target_link_options(${target} PRIVATE -pthread)
    endif()
endfunction()

foreach(_mode st mt)
    if(_mode STREQUAL "st")
        set(_lib asset_server_web)
        set(_threaded OFF)
        set(_pool "${_web_src}/web/pool_web.c")
    else()
        set(_lib asset_server_web_mt)
        set(_threaded ON)
        set(_pool "${_web_src}/pool.c")
    endif()
    add_library(${_lib} STATIC ${_web_core} ${_web_common} ${_pool})
    asset_web_target_defaults(${_lib} ${_threaded})
    target_compile_definitions(${_lib} PRIVATE ASSET_SERVER_BUILDING PUBLIC ASSET_SERVER_STATIC)
    target_include_directories(${_lib} PUBLIC "${PROJECT_SOURCE_DIR}/include"
                               PRIVATE "${_web_src}")
    target_link_libraries(${_lib} PUBLIC asset_web_cjson_${_mode})
    if(_threaded)
        # workers made up front: a blocked main thread cannot start a new Web Worker. The
        # heap is fixed (no growth), and without growth Emscripten's malloc aborts the
        # program when the heap is full (ABORTING_MALLOC's default): it returns NULL
        # instead, so that a load too large for the heap fails ASSET_E_NO_MEMORY
        target_link_options(${_lib} INTERFACE -pthread -sPTHREAD_POOL_SIZE=12
                            -sINITIAL_MEMORY=256MB -sABORTING_MALLOC=0)
    else()
        target_link_options(${_lib} INTERFACE -sALLOW_MEMORY_GROWTH=1)
    endif()
endforeach()
# asset-embed is a host tool: compiled here, at configure time, with the host's C
# compiler (not emcc) into build/web/host, and imported as the target asset-embed, so
# that asset_server_embed() works as on desktop (a source edit reconfigures). A prebuilt
# tool can be named with ASSET_WEB_HOST_EMBED.
set(ASSET_WEB_HOST_EMBED "" CACHE FILEPATH "A native asset-embed for the web build (default: compile one)")
set(_host_embed "${ASSET_WEB_HOST_EMBED}")
if(NOT _host_embed)
    find_program(ASSET_WEB_HOST_CC NAMES cc gcc clang NO_CMAKE_FIND_ROOT_PATH)
    if(NOT ASSET_WEB_HOST_CC)
        message(FATAL_ERROR "web build: no host C compiler (cc) for asset-embed; "
                            "install one or set ASSET_WEB_HOST_EMBED")
    endif()
    set(_host_embed "${PROJECT_BINARY_DIR}/host/asset-embed")
    file(MAKE_DIRECTORY "${PROJECT_BINARY_DIR}/host")
    execute_process(
        COMMAND "${ASSET_WEB_HOST_CC}" -std=c11 -O1 -o "${_host_embed}"
                "${PROJECT_SOURCE_DIR}/tools/asset-embed.c"
        RESULT_VARIABLE _rc ERROR_VARIABLE _err)
    if(NOT _rc EQUAL 0)
        message(FATAL_ERROR "web build: the host asset-embed did not compile:\n${_err}")
    endif()
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                 "${PROJECT_SOURCE_DIR}/tools/asset-embed.c")
endif()
add_executable(asset-embed IMPORTED GLOBAL)
set_target_properties(asset-embed PROPERTIES IMPORTED_LOCATION "${_host_embed}")
include("${PROJECT_SOURCE_DIR}/cmake/AssetServerEmbed.cmake")

if(ASSET_SERVER_BUILD_TESTS)
    enable_testing()
    add_subdirectory("${PROJECT_SOURCE_DIR}/tests/web" "${PROJECT_BINARY_DIR}/tests")
endif()
if(ASSET_SERVER_BUILD_EXAMPLES AND EXISTS "${PROJECT_SOURCE_DIR}/examples/web/CMakeLists.txt")
    add_subdirectory("${PROJECT_SOURCE_DIR}/examples/web" "${PROJECT_BINARY_DIR}/examples")
endif()
