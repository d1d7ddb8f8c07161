#!/bin/sh
# test_cxx's compile and link rules in mingw builds (tests/CMakeLists.txt) are launched as
#   sh cxx_posix.sh POSIX_GXX COMMAND...
# The toolchain's g++ (win32 thread model: no std::mutex) is replaced by POSIX_GXX, the
# posix model's; the other commands of a rule (cmake -E, ar) run as they are.
posix=$1
shift
case $1 in
*g++ | *g++-win32) shift; exec "$posix" "$@" ;;
*) exec "$@" ;;
esac
