# AssetServerEmbed.cmake - compile a folder into a program, for pkg:// without files.
#
#   asset_server_embed(<target> <name> <dir>)
#
# At build time, runs asset-embed on <dir> (relative paths resolve against the current
# source dir) and adds the generated <name>.c to <target> (<name>.cpp when the project
# has not enabled C, e.g. `project(x CXX)`: the generated code is valid C and C++, and a
# .c file would be silently left out of such a project); a generated header <name>.h
# on <target>'s include path declares
#
#   extern const asset_embedded_file_t <name>_files[];
#   extern const size_t <name>_files_count;
#
# so the program can call
#
#   #include "<name>.h"
#   asset_server_mount_embedded(s, "game", <name>_files, <name>_files_count);
#
# Adding, removing, renaming or editing a file under <dir> regenerates the table on the
# next build: the file list is a CONFIGURE_DEPENDS glob, and the table depends on every
# file and on the list itself (written to <name>.files only when it changes, so a file
# removed, or one moved in with an old time, rebuilds the table too). <name> must be a C
# identifier.
#
# The tool: ASSET_SERVER_EMBED_EXECUTABLE when set (a path), else the asset-embed target
# when this file is part of the asset_server source tree (add_subdirectory or the
# project itself), else the imported asset_server::asset-embed from
# find_package(asset_server), else asset-embed on PATH.
#
# Cross builds (e.g. mingw-w64 on Linux, cmake/mingw-w64-x86_64.cmake): the tool built
# for the target runs through CMAKE_CROSSCOMPILING_EMULATOR (wine), as CMake runs any
# target-platform program in a custom command; the generated table is the same on every
# platform. Without an emulator, set ASSET_SERVER_EMBED_EXECUTABLE to an asset-embed
# built for the build machine (any platform's tool will do), or put one on PATH.
include_guard(GLOBAL)

function(asset_server_embed target name dir)
    if(NOT TARGET ${target})
        message(FATAL_ERROR "asset_server_embed: no target named '${target}'")
    endif()
    if(NOT name MATCHES "^[A-Za-z_][A-Za-z0-9_]*$")
        message(FATAL_ERROR "asset_server_embed: '${name}' is not a C identifier")
    endif()
    get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    if(NOT IS_DIRECTORY "${dir}")
        message(FATAL_ERROR "asset_server_embed: '${dir}' is not a directory")
    endif()

    # a cross build can run the target's tool only through an emulator
    set(_runnable TRUE)
    if(CMAKE_CROSSCOMPILING AND NOT CMAKE_CROSSCOMPILING_EMULATOR)
        set(_runnable FALSE)
    endif()
    if(ASSET_SERVER_EMBED_EXECUTABLE)
        set(_tool "${ASSET_SERVER_EMBED_EXECUTABLE}")
    elseif(_runnable AND EXISTS "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../tools/asset-embed.c")
        set(_tool asset-embed) # a target of this tree: resolved at generate time
    elseif(_runnable AND TARGET asset_server::asset-embed)
        set(_tool asset_server::asset-embed)
        if(CMAKE_CROSSCOMPILING)
            # CMake prepends the emulator to the targets the project builds, not to
            # imported ones: name it here
            set(_tool ${CMAKE_CROSSCOMPILING_EMULATOR} $<TARGET_FILE:asset_server::asset-embed>)
            set(_tool_dep asset_server::asset-embed)
        endif()
    else()
        if(_runnable)
            set(_hints HINTS "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../../../bin")
        else()
            set(_hints "") # the installed tool is the target's: look on the build machine
        endif()
        find_program(ASSET_SERVER_EMBED_EXECUTABLE asset-embed ${_hints}
            DOC "asset-embed for asset_server_embed(); in a cross build without an emulator: "
                "one built for the build machine")
        if(NOT ASSET_SERVER_EMBED_EXECUTABLE)
            if(_runnable)
                message(FATAL_ERROR "asset_server_embed: the asset-embed tool was not found")
            endif()
            message(FATAL_ERROR "asset_server_embed: cross-compiling without "
                "CMAKE_CROSSCOMPILING_EMULATOR, the target's asset-embed cannot run here: set "
                "ASSET_SERVER_EMBED_EXECUTABLE to an asset-embed built for this machine")
        endif()
        set(_tool "${ASSET_SERVER_EMBED_EXECUTABLE}")
    endif()

    # The folder's own '[', '*' and '?' are not the glob's: bracketed, they match only
    # themselves (a folder "assets [v2]" matched no file, so the table depended on none
    # and an edit or an added file was never embedded)
    string(REGEX REPLACE "([[*?])" "[\\1]" _glob_dir "${dir}")
    file(GLOB_RECURSE _files CONFIGURE_DEPENDS LIST_DIRECTORIES false "${_glob_dir}/*")
    # A ';' in a file name splits it into two list elements that name no file (the
    # second one is not even absolute), and the build would then fail on a missing
    # dependency: say why instead
    # Other names no build can carry as a dependency fail later with a message that names
    # no cause ("No rule to make target", "target pattern contains no '%'", a parse error
    # in CMake's own glob check): '"' (CMake's VerifyGlobs), '\\' (taken for '/'), '|'
    # (Ninja and Make split there), control characters such as a newline; and with a
    # Makefile generator ':' (a rule's separator) and a name ending in "(...)" (make's
    # archive member syntax). Refused by name too.
    string(ASCII 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
        30 31 127 _ctl)
    set(_kept "")
    foreach(_f IN LISTS _files)
        if(IS_ABSOLUTE "${_f}" AND IS_SYMLINK "${_f}" AND NOT EXISTS "${_f}")
            # a dangling link (an editor's lock file: Emacs' ".#name"): the tool skips
            # it, and no build can depend on it (the configure stopped, saying ';')
            continue()
        endif()
        if(NOT IS_ABSOLUTE "${_f}" OR NOT EXISTS "${_f}")
            message(FATAL_ERROR "asset_server_embed: a file name under ${dir} contains ';' "
                "(near \"${_f}\"), which a CMake list cannot hold: rename the file")
        endif()
        string(LENGTH "${dir}/" _dl) # not file(RELATIVE_PATH): it turns '\\' into '/'
        string(SUBSTRING "${_f}" ${_dl} -1 _rel)
        set(_why "")
        if(_rel MATCHES "\"")
            set(_why "'\"'")
        elseif(_rel MATCHES "[\\]")
            set(_why "'\\'")
        elseif(_rel MATCHES "[|]")
            set(_why "'|'")
        elseif(_rel MATCHES "[${_ctl}]")
            set(_why "a control character")
        elseif(CMAKE_GENERATOR MATCHES "Make" AND _rel MATCHES ":")
            set(_why "':' (with the ${CMAKE_GENERATOR} generator)")
        elseif(CMAKE_GENERATOR MATCHES "Make" AND _rel MATCHES "\\(.*\\)$")
            set(_why "\"(...)\" at its end (make's archive syntax, with the ${CMAKE_GENERATOR} "
                "generator)")
        endif()
        if(_why)
            message(FATAL_ERROR "asset_server_embed: the file name \"${_rel}\" under ${dir} "
                "contains ${_why}, which the build cannot carry as a dependency: rename the "
                "file (then configure again: CMake's glob check may have kept the name)")
        endif()
        list(APPEND _kept "${_f}")
    endforeach()
    set(_files ${_kept})
    list(SORT _files)
    set(_out "${CMAKE_CURRENT_BINARY_DIR}/asset_embed/${name}")
    # The list of files, rewritten only when it changes: the table depends on it,
    # because a file removed changes no file the table depends on, and a file renamed
    # or moved in keeps its old time. (Compared by hand: file(CONFIGURE) would expand
    # an @name@ in a file name.)
    set(_list "${_out}/${name}.files")
    string(REPLACE ";" "\n" _lines "${_files}\n")
    set(_had "")
    if(EXISTS "${_list}")
        file(READ "${_list}" _had)
    endif()
    if(NOT _had STREQUAL _lines)
        file(WRITE "${_list}" "${_lines}")
    endif()
    # The table is compiled as C when the project enabled C, else as C++ (the tool's
    # output is both). enable_language() cannot be called from a function, so a
    # C++-only project gets a .cpp file rather than a .c file it would not compile.
    get_property(_langs GLOBAL PROPERTY ENABLED_LANGUAGES)
    if("C" IN_LIST _langs)
        set(_c "${_out}/${name}.c")
    elseif("CXX" IN_LIST _langs)
        set(_c "${_out}/${name}.cpp")
    else()
        message(FATAL_ERROR "asset_server_embed: enable C or CXX in the project first")
    endif()
    set(_h "${_out}/${name}.h")
    string(TOUPPER "${name}" _guard)
    # the folder as a C comment can hold it: a "*/" in it ended the comment (the build
    # failed), and file(CONFIGURE) took "@x@" in it for a variable (@ONLY: "${x}" stays)
    string(REPLACE "*/" "*\\/" _dir_comment "${dir}")
    set(_at "@")
    string(REPLACE "@" "@_at@" _dir_comment "${_dir_comment}")
    file(CONFIGURE OUTPUT "${_h}" @ONLY CONTENT "\
/* Generated by asset_server_embed(): the compiled-in table of ${_dir_comment}. */
#ifndef ${_guard}_EMBED_H
#define ${_guard}_EMBED_H
#include <asset_server.h>
#ifdef __cplusplus
extern \"C\" {
#endif
extern const asset_embedded_file_t ${name}_files[];
extern const size_t ${name}_files_count;
#ifdef __cplusplus
}
#endif
#endif
")
    if(NOT DEFINED _tool_dep)
        set(_tool_dep ${_tool})
    endif()
    add_custom_command(
        OUTPUT "${_c}"
        COMMAND ${_tool} ${name} "${dir}" "${_c}"
        DEPENDS ${_files} "${_list}" ${_tool_dep}
        COMMENT "asset-embed: ${dir} -> ${name}_files"
        VERBATIM)
    target_sources(${target} PRIVATE "${_c}" "${_h}")
    target_include_directories(${target} PRIVATE "${_out}")
endfunction()
