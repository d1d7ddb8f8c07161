/* test_atomic.c - src/platform/atomic.h: every operation the library uses, on every type
 * it uses them on, with C11 <stdatomic.h> on POSIX and with the Interlocked shim on
 * Windows (forced here on any Windows compiler, so mingw-w64 under wine runs the code
 * MSVC without C11 atomics runs); two threads prove the read-modify-writes are atomic. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <uv.h>

#ifdef _WIN32
#define ASSET_SERVER_ATOMICS_SHIM 1
#endif
#include "platform/atomic.h"
#include "test_util.h"

/* the declarations internal.h makes with these types, one of each form */
typedef struct node {
    struct node *next;
} node_t;
typedef struct objs {
    atomic_bool flag;
    atomic_int state;
    atomic_uint refs;
    atomic_uint_fast64_t bytes;
    _Atomic(uint64_t) received;
    _Atomic(node_t *) head;
} objs_t;

static void test_shim_is_used_where_expected(void **state) {
    (void)state;
#ifdef _WIN32
#ifndef ASSET__ATOMICS_SHIM
    fail_msg("a Windows build of this test must compile the shim");
#endif
#else
#ifdef ASSET__ATOMICS_SHIM
    fail_msg("the shim is for Windows only");
#endif
#endif
    /* the shim's objects are laid out as C11's, so tests built with <stdatomic.h> share
     * structures with a library built with the shim */
    assert_int_equal(sizeof(atomic_bool), sizeof(bool));
    assert_int_equal(sizeof(atomic_int), sizeof(int));
    assert_int_equal(sizeof(atomic_uint), sizeof(unsigned));
    assert_int_equal(sizeof(atomic_uint_fast64_t), 8);
    assert_int_equal(sizeof(_Atomic(uint64_t)), 8);
    assert_int_equal(sizeof(_Atomic(node_t *)), sizeof(void *));
}

static void test_bool_load_store_exchange(void **state) {
    (void)state;
    objs_t o;
    atomic_init(&o.flag, false);
    assert_false(atomic_load(&o.flag));
    atomic_store(&o.flag, true);
    assert_true(atomic_load_explicit(&o.flag, memory_order_relaxed));
    assert_true(atomic_exchange(&o.flag, false)); /* returns the old value */
    assert_false(atomic_exchange(&o.flag, false));
    atomic_store_explicit(&o.flag, true, memory_order_release);
    assert_true(atomic_load_explicit(&o.flag, memory_order_acquire));
}

static void test_int_keeps_sign(void **state) {
    (void)state;
    objs_t o;
    atomic_init(&o.state, -3);
    assert_int_equal(atomic_load(&o.state), -3);
    assert_int_equal(atomic_fetch_add(&o.state, 5), -3);
    assert_int_equal(atomic_fetch_sub(&o.state, 4), 2);
    assert_int_equal(atomic_load(&o.state), -2);
    assert_int_equal(atomic_exchange(&o.state, INT_MIN), -2);
    assert_int_equal(atomic_load(&o.state), INT_MIN);
    atomic_store(&o.state, 7);
    int want = 6;
    assert_false(atomic_compare_exchange_strong(&o.state, &want, 1));
    assert_int_equal(want, 7); /* a failed exchange reports what it found */
    assert_true(atomic_compare_exchange_weak(&o.state, &want, -1));
    assert_int_equal(atomic_load(&o.state), -1);
}

static void test_unsigned_wraps_and_returns_the_old_value(void **state) {
    (void)state;
    objs_t o;
    atomic_init(&o.refs, 1);
    assert_int_equal(atomic_fetch_sub_explicit(&o.refs, 1, memory_order_acq_rel), 1);
    assert_int_equal(atomic_fetch_sub(&o.refs, 1), 0);
    assert_true(atomic_load(&o.refs) == UINT_MAX); /* no sign extension anywhere */
    assert_true(atomic_fetch_add_explicit(&o.refs, 2, memory_order_relaxed) == UINT_MAX);
    assert_int_equal(atomic_load(&o.refs), 1);
    assert_int_equal(atomic_exchange(&o.refs, 0x80000000u), 1);
    assert_true(atomic_load(&o.refs) == 0x80000000u);
}

static void test_64_bit_values_above_32_bits(void **state) {
    (void)state;
    objs_t o;
    const uint64_t big = (UINT64_C(1) << 40) + 5;
    atomic_init(&o.bytes, 0);
    atomic_init(&o.received, 0);
    assert_true(atomic_fetch_add_explicit(&o.bytes, big, memory_order_relaxed) == 0);
    assert_true(atomic_fetch_add(&o.bytes, UINT64_C(0xffffffff)) == big); /* carries */
    assert_true(atomic_load(&o.bytes) == big + UINT64_C(0xffffffff));
    atomic_store_explicit(&o.received, UINT64_MAX, memory_order_relaxed);
    assert_true(atomic_load_explicit(&o.received, memory_order_relaxed) == UINT64_MAX);
    assert_true(atomic_fetch_sub(&o.received, big) == UINT64_MAX);
    uint64_t want = 0;
    assert_false(atomic_compare_exchange_strong(&o.received, &want, 1));
    assert_true(want == UINT64_MAX - big);
}

static void test_pointers(void **state) {
    (void)state;
    objs_t o;
    node_t a = {NULL}, b = {&a};
    atomic_init(&o.head, NULL);
    assert_null(atomic_load(&o.head));
    atomic_store_explicit(&o.head, &a, memory_order_release);
    node_t *h = atomic_load_explicit(&o.head, memory_order_acquire);
    assert_ptr_equal(h, &a);
    assert_ptr_equal(atomic_exchange(&o.head, &b), &a);
    node_t *want = &a;
    assert_false(atomic_compare_exchange_weak_explicit(&o.head, &want, NULL, memory_order_release,
                                                       memory_order_relaxed));
    assert_ptr_equal(want, &b);
    assert_true(atomic_compare_exchange_strong_explicit(&o.head, &want, NULL, memory_order_acq_rel,
                                                        memory_order_acquire));
    assert_null(atomic_exchange_explicit(&o.head, NULL, memory_order_acquire));
}

/* ---- two threads: counters and a lock-free push (cache.c's dead-value list) ---- */
#define RACE_N 20000     /* nodes pushed per thread */
#define RACE_ADDS 500000 /* counter updates per thread */
typedef struct race {
    objs_t *o;
    node_t *nodes; /* RACE_N each */
    uv_barrier_t *go;
} race_t;

static void racer(void *arg) {
    race_t *r = arg;
    uv_barrier_wait(r->go); /* both start together */
    for (int i = 0; i < RACE_ADDS; i++) {
        atomic_fetch_add_explicit(&r->o->refs, 1, memory_order_relaxed);
        atomic_fetch_sub(&r->o->state, 1);
        atomic_fetch_add_explicit(&r->o->bytes, UINT64_C(1) << 33, memory_order_relaxed);
    }
    for (int i = 0; i < RACE_N; i++) {
        node_t *n = &r->nodes[i];
        node_t *head = atomic_load_explicit(&r->o->head, memory_order_relaxed);
        do {
            n->next = head;
        } while (!atomic_compare_exchange_weak_explicit(&r->o->head, &head, n, memory_order_release,
                                                        memory_order_relaxed));
    }
}

static void test_two_threads_lose_no_update(void **state) {
    (void)state;
    static node_t nodes[2][RACE_N];
    objs_t o;
    uv_barrier_t go;
    uv_thread_t t[2];
    race_t r[2];
    atomic_init(&o.refs, 0);
    atomic_init(&o.state, 0);
    atomic_init(&o.bytes, 0);
    atomic_init(&o.head, NULL);
    assert_int_equal(uv_barrier_init(&go, 2), 0);
    for (int i = 0; i < 2; i++) {
        r[i] = (race_t){&o, nodes[i], &go};
        assert_int_equal(uv_thread_create(&t[i], racer, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++) assert_int_equal(uv_thread_join(&t[i]), 0);
    uv_barrier_destroy(&go);

    assert_int_equal(atomic_load(&o.refs), 2 * RACE_ADDS);
    assert_int_equal(atomic_load(&o.state), -2 * RACE_ADDS);
    assert_true(atomic_load(&o.bytes) == (uint64_t)2 * RACE_ADDS * (UINT64_C(1) << 33));
    size_t count = 0;
    for (node_t *n = atomic_load(&o.head); n && count <= 2 * RACE_N; n = n->next) count++;
    assert_int_equal(count, 2 * RACE_N); /* every push is on the list, once */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shim_is_used_where_expected),
        cmocka_unit_test(test_bool_load_store_exchange),
        cmocka_unit_test(test_int_keeps_sign),
        cmocka_unit_test(test_unsigned_wraps_and_returns_the_old_value),
        cmocka_unit_test(test_64_bit_values_above_32_bits),
        cmocka_unit_test(test_pointers),
        cmocka_unit_test(test_two_threads_lose_no_update),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
