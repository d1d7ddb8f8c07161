/* atomic.h - C11 atomics for the library, or a shim over the Interlocked intrinsics
 * where the compiler has none (MSVC without /experimental:c11atomics).
 *
 * src/internal.h includes this header instead of <stdatomic.h>; no other library file
 * names <stdatomic.h>. Where C11 atomics exist (GCC, Clang, mingw-w64, MSVC 17.5+ with
 * /experimental:c11atomics) this is just <stdatomic.h>. MSVC without them defines
 * __STDC_NO_ATOMICS__ in /std:c11 mode, and gets the shim below. The CMake option
 * ASSET_SERVER_ATOMICS_SHIM=ON (Windows only) forces the shim on any Windows compiler, so
 * that CI builds it with mingw-w64 and runs tests on it under wine (docs/platforms.md).
 *
 * The shim covers exactly what src/ uses, and nothing else:
 *   types       atomic_bool, atomic_int, atomic_uint, atomic_uint_fast64_t, and
 *               _Atomic(T) for T = uint64_t or an object pointer. Write `_Atomic(T)`, not
 *               `_Atomic T`: the qualifier form cannot be a macro. One declarator per
 *               `_Atomic(T *)` declaration (`T *volatile a, b` makes only `a` volatile).
 *   operations  atomic_init, atomic_load, atomic_store, atomic_exchange,
 *               atomic_compare_exchange_weak/_strong (not on atomic_bool),
 *               atomic_fetch_add/_sub (integers), each also in its _explicit form.
 * An atomic object is the plain type, volatile; every operation but atomic_init is one
 * Interlocked exchange or compare-exchange (a loop of them for fetch_add/_sub), and each
 * of those is a full barrier, so every memory_order is honoured by being exceeded. A load
 * is a compare-exchange of 0 with 0 too (a plain volatile read is not a barrier on ARM64),
 * so atomic objects must not live in read-only memory. A type
 * or operation outside the list fails to compile or to link in a shim build
 * (asset__atomic_unsupported), never silently. The objects have the size and alignment
 * of their C11 counterparts on x86 and x64, so code built with <stdatomic.h> (the tests)
 * shares structures with a library built with the shim.
 */
#ifndef ASSET_PLATFORM_ATOMIC_H
#define ASSET_PLATFORM_ATOMIC_H

#if defined(ASSET_SERVER_ATOMICS_SHIM) && !defined(_WIN32)
#error "ASSET_SERVER_ATOMICS_SHIM: the shim is built on the Windows Interlocked functions"
#endif
#if !defined(ASSET_SERVER_ATOMICS_SHIM) && defined(_MSC_VER) && !defined(__clang__) && \
    (defined(__STDC_NO_ATOMICS__) || !defined(__STDC_VERSION__))
#define ASSET_SERVER_ATOMICS_SHIM 1
#endif

#ifndef ASSET_SERVER_ATOMICS_SHIM
#include <stdatomic.h>
#else
#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#error "asset_server is C11: build with /std:c11 or later (the atomics shim needs _Generic)"
#endif
#define ASSET__ATOMICS_SHIM 1 /* tests check which implementation they got */

#include <intrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum {
    memory_order_relaxed,
    memory_order_consume,
    memory_order_acquire,
    memory_order_release,
    memory_order_acq_rel,
    memory_order_seq_cst
} memory_order;

#define _Atomic(T) T volatile
typedef bool volatile atomic_bool;
typedef int volatile atomic_int;
typedef unsigned volatile atomic_uint;
typedef uint_fast64_t volatile atomic_uint_fast64_t;

/* The three primitives, by width. Windows' long is 32 bits; MSVC's __int64 is long long.
 * mingw-w64's <intrin.h> lacks the 8-bit functions: GCC's builtins stand in there. */
#if defined(_MSC_VER) && !defined(__clang__)
#define ASSET__CAS8(p, n, o) \
    _InterlockedCompareExchange8((char volatile *)(p), (char)(n), (char)(o))
#define ASSET__XCHG8(p, v) _InterlockedExchange8((char volatile *)(p), (char)(v))
#else
#define ASSET__CAS8(p, n, o) __sync_val_compare_and_swap((char volatile *)(p), (char)(o), (char)(n))
#define ASSET__XCHG8(p, v) __atomic_exchange_n((char volatile *)(p), (char)(v), __ATOMIC_SEQ_CST)
#endif
#define ASSET__CAS32(p, n, o) \
    _InterlockedCompareExchange((long volatile *)(p), (long)(n), (long)(o))
#define ASSET__CAS64(p, n, o) \
    _InterlockedCompareExchange64((long long volatile *)(p), (long long)(n), (long long)(o))

/* Declared, never defined: a type or operation the shim does not cover. */
void asset__atomic_unsupported(const volatile void *p, ...);

/* _Bool: load, store, exchange */
static inline bool asset__atomic_load_b(const volatile void *p) {
    return ASSET__CAS8((volatile void *)p, 0, 0) != 0;
}
static inline bool asset__atomic_exchange_b(volatile void *p, bool v) {
    return ASSET__XCHG8(p, v) != 0;
}
static inline void asset__atomic_store_b(volatile void *p, bool v) { (void)ASSET__XCHG8(p, v); }

/* One set of functions per integer type T over a CAS of width W; SUF names them. */
#define ASSET__ATOMIC_INT(SUF, T, W)                                                          \
    static inline T asset__atomic_load_##SUF(const volatile void *p) {                        \
        return (T)ASSET__CAS##W((volatile void *)p, 0, 0);                                    \
    }                                                                                         \
    static inline bool asset__atomic_cas_##SUF(volatile void *p, void *expected, T desired) { \
        T want = *(T *)expected;                                                              \
        T got = (T)ASSET__CAS##W(p, desired, want);                                           \
        if (got == want) return true;                                                         \
        *(T *)expected = got;                                                                 \
        return false;                                                                         \
    }                                                                                         \
    static inline T asset__atomic_exchange_##SUF(volatile void *p, T v) {                     \
        T old = asset__atomic_load_##SUF(p);                                                  \
        while (!asset__atomic_cas_##SUF(p, &old, v)) {                                        \
        }                                                                                     \
        return old;                                                                           \
    }                                                                                         \
    static inline void asset__atomic_store_##SUF(volatile void *p, T v) {                     \
        (void)asset__atomic_exchange_##SUF(p, v);                                             \
    }                                                                                         \
    static inline T asset__atomic_fetch_add_##SUF(volatile void *p, T v) {                    \
        T old = asset__atomic_load_##SUF(p);                                                  \
        while (!asset__atomic_cas_##SUF(p, &old, (T)(old + v))) {                             \
        }                                                                                     \
        return old;                                                                           \
    }                                                                                         \
    static inline T asset__atomic_fetch_sub_##SUF(volatile void *p, T v) {                    \
        T old = asset__atomic_load_##SUF(p);                                                  \
        while (!asset__atomic_cas_##SUF(p, &old, (T)(old - v))) {                             \
        }                                                                                     \
        return old;                                                                           \
    }
/* int's arithmetic is done unsigned: wrapping is defined there, as C11 defines it for
 * atomic signed types */
ASSET__ATOMIC_INT(u32, unsigned, 32)
ASSET__ATOMIC_INT(u64, unsigned long long, 64)
static inline int asset__atomic_load_i32(const volatile void *p) {
    return (int)asset__atomic_load_u32(p);
}
static inline bool asset__atomic_cas_i32(volatile void *p, void *expected, int desired) {
    return asset__atomic_cas_u32(p, expected, (unsigned)desired);
}
static inline int asset__atomic_exchange_i32(volatile void *p, int v) {
    return (int)asset__atomic_exchange_u32(p, (unsigned)v);
}
static inline void asset__atomic_store_i32(volatile void *p, int v) {
    asset__atomic_store_u32(p, (unsigned)v);
}
static inline int asset__atomic_fetch_add_i32(volatile void *p, int v) {
    return (int)asset__atomic_fetch_add_u32(p, (unsigned)v);
}
static inline int asset__atomic_fetch_sub_i32(volatile void *p, int v) {
    return (int)asset__atomic_fetch_sub_u32(p, (unsigned)v);
}

/* object pointers, through a compare-exchange of their width; `expected` points to a
 * pointer object, so it is read and written with memcpy, not through an integer type */
#if UINTPTR_MAX > 0xffffffffu
#define ASSET__CASPTR(p, n, o) ASSET__CAS64(p, n, o)
#else
#define ASSET__CASPTR(p, n, o) ASSET__CAS32(p, n, o)
#endif
static inline void *asset__atomic_load_ptr(const volatile void *p) {
    return (void *)(uintptr_t)ASSET__CASPTR((volatile void *)p, 0, 0);
}
static inline bool asset__atomic_cas_ptr(volatile void *p, void *expected, void *desired) {
    void *want, *got;
    memcpy(&want, expected, sizeof want);
    got = (void *)(uintptr_t)ASSET__CASPTR(p, (uintptr_t)desired, (uintptr_t)want);
    if (got == want) return true;
    memcpy(expected, &got, sizeof got);
    return false;
}
static inline void *asset__atomic_exchange_ptr(volatile void *p, void *v) {
    void *old = asset__atomic_load_ptr(p);
    while (!asset__atomic_cas_ptr(p, &old, v)) {
    }
    return old;
}
static inline void asset__atomic_store_ptr(volatile void *p, void *v) {
    (void)asset__atomic_exchange_ptr(p, v);
}

/* The function for the object *p points to (after lvalue conversion: unqualified); b and
 * ptr: the one for bool and for pointers, which not every operation has. */
#define ASSET__ATOMIC_FN(p, op, b, ptr)                     \
    _Generic(*(p), bool                                     \
             : b, int                                       \
             : asset__atomic_##op##_i32, unsigned           \
             : asset__atomic_##op##_u32, unsigned long long \
             : asset__atomic_##op##_u64, char               \
             : asset__atomic_unsupported, signed char       \
             : asset__atomic_unsupported, unsigned char     \
             : asset__atomic_unsupported, short             \
             : asset__atomic_unsupported, unsigned short    \
             : asset__atomic_unsupported, long              \
             : asset__atomic_unsupported, unsigned long     \
             : asset__atomic_unsupported, long long         \
             : asset__atomic_unsupported, float             \
             : asset__atomic_unsupported, double            \
             : asset__atomic_unsupported, default           \
             : ptr)

#define atomic_init(p, v) ((void)(*(p) = (v)))
#define ASSET__NO asset__atomic_unsupported
#define atomic_load(p) ASSET__ATOMIC_FN(p, load, asset__atomic_load_b, asset__atomic_load_ptr)(p)
#define atomic_store(p, v) \
    ASSET__ATOMIC_FN(p, store, asset__atomic_store_b, asset__atomic_store_ptr)(p, v)
#define atomic_exchange(p, v) \
    ASSET__ATOMIC_FN(p, exchange, asset__atomic_exchange_b, asset__atomic_exchange_ptr)(p, v)
#define atomic_compare_exchange_strong(p, e, v) \
    ASSET__ATOMIC_FN(p, cas, ASSET__NO, asset__atomic_cas_ptr)(p, e, v)
#define atomic_compare_exchange_weak(p, e, v) atomic_compare_exchange_strong(p, e, v)
#define atomic_fetch_add(p, v) ASSET__ATOMIC_FN(p, fetch_add, ASSET__NO, ASSET__NO)(p, v)
#define atomic_fetch_sub(p, v) ASSET__ATOMIC_FN(p, fetch_sub, ASSET__NO, ASSET__NO)(p, v)

#define atomic_load_explicit(p, mo) ((void)(mo), atomic_load(p))
#define atomic_store_explicit(p, v, mo) ((void)(mo), atomic_store(p, v))
#define atomic_exchange_explicit(p, v, mo) ((void)(mo), atomic_exchange(p, v))
#define atomic_compare_exchange_strong_explicit(p, e, v, ok, fail) \
    ((void)(ok), (void)(fail), atomic_compare_exchange_strong(p, e, v))
#define atomic_compare_exchange_weak_explicit(p, e, v, ok, fail) \
    ((void)(ok), (void)(fail), atomic_compare_exchange_strong(p, e, v))
#define atomic_fetch_add_explicit(p, v, mo) ((void)(mo), atomic_fetch_add(p, v))
#define atomic_fetch_sub_explicit(p, v, mo) ((void)(mo), atomic_fetch_sub(p, v))
#endif /* ASSET_SERVER_ATOMICS_SHIM */

#endif /* ASSET_PLATFORM_ATOMIC_H */
