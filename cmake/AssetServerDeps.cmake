# AssetServerDeps.cmake - libuv, libcurl and cJSON without pkg-config: through their
# own CMake packages (vcpkg's ports, or what their CMake builds install), else with
# find_path/find_library. Used by CMakeLists.txt when ASSET_SERVER_USE_PKGCONFIG is
# OFF (the default on Windows) and by the installed asset_serverConfig.cmake, so a
# consumer of the static library finds the same targets.
#
#   asset_server_find_deps(<out-var> [OPTIONAL])
#       sets <out-var> to the three link targets; with OPTIONAL (the installed package
#       config, for its static target), a missing dependency leaves <out-var> empty
#       instead of stopping
include_guard(GLOBAL)

# The first of the named targets that exists, in <out>.
function(_asset_first_target out)
    foreach(_t IN LISTS ARGN)
        if(TARGET ${_t})
            set(${out} ${_t} PARENT_SCOPE)
            return()
        endif()
    endforeach()
    set(${out} "" PARENT_SCOPE)
endfunction()

# An imported target asset_server_dep_<name> from a header and a library found the
# plain way; extra: libraries it needs on this OS.
function(_asset_plain_dep name header)
    cmake_parse_arguments(A "" "" "NAMES;SUFFIXES;EXTRA;DEFINES" ${ARGN})
    string(TOUPPER "${name}" _n)
    find_path(ASSET_${_n}_INCLUDE_DIR ${header} PATH_SUFFIXES ${A_SUFFIXES})
    find_library(ASSET_${_n}_LIBRARY NAMES ${A_NAMES})
    if(NOT ASSET_${_n}_INCLUDE_DIR OR NOT ASSET_${_n}_LIBRARY)
        if(_asset_deps_optional) # set by asset_server_find_deps(... OPTIONAL)
            return()
        endif()
        message(FATAL_ERROR "asset_server: ${name} not found (no CMake package, no ${header} "
                            "or library ${A_NAMES}); set CMAKE_PREFIX_PATH or use vcpkg")
    endif()
    add_library(asset_server_dep_${name} UNKNOWN IMPORTED GLOBAL)
    set_target_properties(asset_server_dep_${name} PROPERTIES
        IMPORTED_LOCATION "${ASSET_${_n}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${ASSET_${_n}_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES "${A_EXTRA}"
        INTERFACE_COMPILE_DEFINITIONS "${A_DEFINES}")
endfunction()

function(asset_server_find_deps out)
    set(_asset_deps_optional FALSE)
    if("OPTIONAL" IN_LIST ARGN)
        set(_asset_deps_optional TRUE)
    endif()
    # libuv: vcpkg names it libuv::uv(_a); libuv's own export (1.44) uv / uv_a
    find_package(libuv CONFIG QUIET)
    _asset_first_target(_uv libuv::uv_a uv_a libuv::uv uv)
    if(NOT _uv)
        set(_extra "")
        if(WIN32)
            set(_extra ws2_32 iphlpapi userenv dbghelp ole32 uuid shell32 psapi user32 advapi32)
        endif()
        _asset_plain_dep(uv uv.h NAMES uv_a uv libuv EXTRA ${_extra})
        set(_uv asset_server_dep_uv)
    endif()
    # libcurl: CURL::libcurl from curl's CMake package (vcpkg's too)
    find_package(CURL CONFIG QUIET)
    _asset_first_target(_curl CURL::libcurl)
    if(NOT _curl)
        find_package(CURL MODULE QUIET)
        _asset_first_target(_curl CURL::libcurl)
    endif()
    if(NOT _curl)
        _asset_plain_dep(curl curl/curl.h NAMES curl libcurl)
        set(_curl asset_server_dep_curl)
    endif()
    # cJSON: the target "cjson" of cJSON's package (vcpkg's too)
    find_package(cJSON CONFIG QUIET)
    _asset_first_target(_cjson cjson cjson-static)
    if(NOT _cjson)
        _asset_plain_dep(cjson cjson/cJSON.h NAMES cjson)
        set(_cjson asset_server_dep_cjson)
    endif()
    foreach(_v _uv _curl _cjson) # a plain dependency not found (OPTIONAL) made no target
        if(${_v} MATCHES "^asset_server_dep_" AND NOT TARGET ${${_v}})
            set(${out} "" PARENT_SCOPE)
            return()
        endif()
    endforeach()
    if(NOT _asset_deps_optional)
        message(STATUS "asset_server: dependencies from CMake packages: ${_uv} ${_curl} ${_cjson}")
    endif()
    set(${out} ${_uv} ${_curl} ${_cjson} PARENT_SCOPE)
endfunction()

# cmocka for the tests: cmocka's package sets CMOCKA_LIBRARY (1.1) or cmocka::cmocka.
function(asset_server_find_cmocka out)
    find_package(cmocka CONFIG QUIET)
    _asset_first_target(_t cmocka::cmocka cmocka-static cmocka)
    if(NOT _t)
        find_path(ASSET_CMOCKA_INCLUDE_DIR cmocka.h)
        find_library(ASSET_CMOCKA_LIBRARY NAMES cmocka-static cmocka)
        if(NOT ASSET_CMOCKA_INCLUDE_DIR OR NOT ASSET_CMOCKA_LIBRARY)
            message(FATAL_ERROR "asset_server: cmocka not found (tests)")
        endif()
        add_library(asset_server_dep_cmocka UNKNOWN IMPORTED GLOBAL)
        set_target_properties(asset_server_dep_cmocka PROPERTIES
            IMPORTED_LOCATION "${ASSET_CMOCKA_LIBRARY}"
            INTERFACE_INCLUDE_DIRECTORIES "${ASSET_CMOCKA_INCLUDE_DIR}")
        set(_t asset_server_dep_cmocka)
    endif()
    set(${out} ${_t} PARENT_SCOPE)
endfunction()
