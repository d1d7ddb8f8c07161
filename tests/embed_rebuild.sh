#!/usr/bin/env bash
# embed_rebuild.sh - asset_server_embed() regenerates its table when the folder changes:
# a file added, edited, removed or renamed (a rename keeps the file's time, so only the
# file list can tell), in a real configure-and-build of a small project, as a user's
# incremental build does it.
#
# usage: embed_rebuild.sh CMAKE EMBED_CMAKE_FILE ASSET_EMBED_TOOL INCLUDE_DIR CC
# Registered by tests/CMakeLists.txt as the CTest test `embed_rebuild`.
set -euo pipefail
if [ $# -ne 5 ]; then
    echo "usage: $0 CMAKE EMBED_CMAKE_FILE ASSET_EMBED_TOOL INCLUDE_DIR CC" >&2
    exit 2
fi
cmake_cmd=$1 embed_cmake=$2 tool=$3 include_dir=$4 cc=$5

tmp=$(mktemp -d "${TMPDIR:-/tmp}/asset_test_embed_rebuild.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
step() { echo "== embed_rebuild: $*"; }

mkdir -p "$tmp/src/assets/sub"
cat >"$tmp/src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(embed_rebuild LANGUAGES C)
include("$embed_cmake")
add_executable(list_table main.c)
target_include_directories(list_table PRIVATE "$include_dir")
asset_server_embed(list_table table "\${CMAKE_CURRENT_SOURCE_DIR}/assets")
CMAKE
# prints the table, one "path=content" line per file, as the program sees it
cat >"$tmp/src/main.c" <<'C'
#include <stdio.h>
#include "table.h"
int main(void) {
    for (size_t i = 0; i < table_files_count; i++)
        printf("%s=%.*s\n", table_files[i].path, (int)table_files[i].size,
               (const char *)table_files[i].data);
    return 0;
}
C

# the table the built program holds must be exactly $1 (lines, sorted)
expect() {
    "$cmake_cmd" --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
    local got
    got=$("$tmp/build/list_table" | LC_ALL=C sort)
    if [ "$got" != "$1" ]; then
        echo "embed_rebuild: after '$2' the table is:" >&2
        echo "$got" >&2
        echo "expected:" >&2
        echo "$1" >&2
        exit 1
    fi
    step "$2: ok"
}

old='200001010000' # an old time: a moved-in file is older than the generated table
printf a >"$tmp/src/assets/a.txt"
printf b >"$tmp/src/assets/sub/b.txt"
"$cmake_cmd" -S "$tmp/src" -B "$tmp/build" -DCMAKE_C_COMPILER="$cc" \
    -DASSET_SERVER_EMBED_EXECUTABLE="$tool" >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log"; exit 1; }
expect $'a.txt=a\nsub/b.txt=b' "first build"

printf A >"$tmp/src/assets/a.txt"
expect $'a.txt=A\nsub/b.txt=b' "a file edited"

printf c >"$tmp/src/assets/c.txt"
printf e >"$tmp/src/assets/@e@.txt"
touch -t "$old" "$tmp/src/assets/c.txt" "$tmp/src/assets/@e@.txt" # '@': no substitution
expect $'@e@.txt=e\na.txt=A\nc.txt=c\nsub/b.txt=b' "old files added"

rm "$tmp/src/assets/sub/b.txt" "$tmp/src/assets/@e@.txt"
expect $'a.txt=A\nc.txt=c' "files removed"

mv "$tmp/src/assets/c.txt" "$tmp/src/assets/sub/d.txt"
expect $'a.txt=A\nsub/d.txt=c' "a file renamed"

rmdir "$tmp/src/assets/sub" 2>/dev/null || rm -rf "$tmp/src/assets/sub"
expect 'a.txt=A' "a folder removed"

"$cmake_cmd" --build "$tmp/build" >"$tmp/build.log" 2>&1
if grep -q 'asset-embed:' "$tmp/build.log"; then
    cat "$tmp/build.log" >&2
    echo "embed_rebuild: a build with nothing changed ran asset-embed again" >&2
    exit 1
fi
step "nothing changed: not regenerated"

# a ';' in a file name: CMake's lists split it, so the configure refuses it by name
printf x >"$tmp/src/assets/x;y.txt"
if "$cmake_cmd" --build "$tmp/build" >"$tmp/build.log" 2>&1; then
    echo "embed_rebuild: a file named x;y.txt built" >&2
    exit 1
fi
if ! grep -q "contains ';'" "$tmp/build.log"; then
    cat "$tmp/build.log" >&2
    echo "embed_rebuild: a file named x;y.txt failed without saying why" >&2
    exit 1
fi
step "a ';' in a file name: refused by name"
rm "$tmp/src/assets/x;y.txt"
expect 'a.txt=A' "that file removed"

# other names no build carries as a dependency ('"' broke CMake's own glob check, '\'
# became '/', '|' split the rule, a newline too; with make ':' and "x(y)", its archive
# syntax): refused by name, where they failed with "No rule to make target" and the like
bad=('q"uote.txt' 'back\slash.txt' 'pi|pe.txt' $'new\nline.txt')
if grep -q '^CMAKE_GENERATOR:INTERNAL=.*Make' "$tmp/build/CMakeCache.txt"; then
    bad+=('co:lon.txt' 'ar(chive)')
fi
for name in "${bad[@]}"; do
    printf x >"$tmp/src/assets/$name"
    if "$cmake_cmd" --build "$tmp/build" >"$tmp/build.log" 2>&1; then
        echo "embed_rebuild: a file named $name built" >&2
        exit 1
    fi
    if ! tr -s ' \n' ' ' <"$tmp/build.log" | grep -q "which the build cannot carry"; then
        cat "$tmp/build.log" >&2
        echo "embed_rebuild: a file named $name failed without saying why" >&2
        exit 1
    fi
    rm "$tmp/src/assets/$name"
    # CMake's glob check (VerifyGlobs.cmake) was written with the name and cannot parse
    # a '"' in it: a configure by hand makes it again
    "$cmake_cmd" -S "$tmp/src" -B "$tmp/build" >"$tmp/configure.log" 2>&1 ||
        { cat "$tmp/configure.log"; exit 1; }
    step "$(printf %q "$name") in a file name: refused by name"
done
# odd names that every build carries are not refused
printf i >"$tmp/src/assets/icon (1).png"
printf d >"$tmp/src/assets/a\$b #c.txt"
expect $'a$b #c.txt=d\na.txt=A\nicon (1).png=i' "names with spaces, '(1)', '\$' and '#'"

# a folder whose own name has glob characters ('[...]', '?'): its files were globbed
# with them as a pattern, matched none, so the table depended on no file and an edit or
# an added file was never embedded
odd="$tmp/src/odd [v2]?"
mkdir -p "$odd"
printf o >"$odd/o.txt"
sed -i 's|/assets")|/odd [v2]?")|' "$tmp/src/CMakeLists.txt"
expect 'o.txt=o' "a folder named 'odd [v2]?'"
printf O >"$odd/o.txt"
printf p >"$odd/p.txt"
touch -t "$old" "$odd/p.txt"
expect $'o.txt=O\np.txt=p' "in that folder, a file edited and an old one added"

# a dangling symlink (an editor's lock file: Emacs makes ".#name" one while a file is
# edited): the tool skips it, but the configure stopped on it, saying the name had a ';'
ln -s 'user@host.1234:1700000000' "$odd/.#o.txt"
expect $'o.txt=O\np.txt=p' "a dangling symlink in the folder (an editor's lock file)"
rm "$odd/.#o.txt"
expect $'o.txt=O\np.txt=p' "that link removed"

# a folder path with "*/" (it ended the generated header's comment: the build failed) and
# "@x@" (file(CONFIGURE) took it for a variable in that comment)
star="$tmp/src/star*/@x@"
mkdir -p "$star"
printf s >"$star/s.txt"
sed -i 's|/odd \[v2\]?")|/star*/@x@")|' "$tmp/src/CMakeLists.txt"
expect 's.txt=s' "a folder named 'star*/@x@'"
if ! grep -qF "star*" "$tmp/build/asset_embed/table/table.h" ||
    ! grep -qF "@x@" "$tmp/build/asset_embed/table/table.h"; then
    cat "$tmp/build/asset_embed/table/table.h" >&2
    echo "embed_rebuild: the header does not name the folder as it is" >&2
    exit 1
fi
step "the header names that folder"
