/* RUNNING_ON_VALGRIND: nonzero under valgrind (its header where installed, else 0), for
 * tests that scale their loops down there. C and C++ (test_util.h, test_cxx.cpp). */
#ifndef TU_VALGRIND_H
#define TU_VALGRIND_H
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif
#endif
