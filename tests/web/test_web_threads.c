/* test_web_threads.c - the pthreads web build past its pool of Web Workers
 * (-sPTHREAD_POOL_SIZE). A thread the pool cannot give would start only once the main
 * thread returned to its event loop; a main thread blocked in the I/O thread's start or
 * in destroy's join never does. Such a thread is refused instead: a server gets fewer
 * workers, or is not made; a load that needs the I/O thread fails with a message. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <emscripten/emscripten.h>
#include <string.h>
#include <uv.h>

#include "test_util.h"

#define MAX_SERVERS 40 /* far past the pool: the loop is bounded */

static asset_server_t *one_worker(void) {
    asset_server_config_t cfg = {.max_workers = 1};
    return asset_server_create(&cfg);
}

/* A load with a timeout: its deadline is armed on the I/O thread. */
static asset_handle_t *timed_load(asset_server_t *s) {
    static const char data[] = "data";
    assert_int_equal(asset_mem_put(s, "k", data, sizeof data - 1), 0);
    asset_load_options_t o = {.timeout_ms = 60000};
    asset_handle_t *h = asset_server_load(s, "mem://k", &o);
    assert_non_null(h);
    return h;
}

static void test_a_thread_past_the_pool_is_refused_not_waited_for(void **state) {
    (void)state;
    asset_server_t *s[MAX_SERVERS];
    int n = 0;
    /* every server takes one worker of the pool, until one cannot be made */
    while (n < MAX_SERVERS && (s[n] = one_worker()) != NULL) {
        asset_handle_t *h = tu_load_wait(s[n], "mem://missing", ASSET_E_NOT_FOUND);
        asset_handle_release(h);
        n++;
    }
    assert_true(n > 0);
    assert_true(n < MAX_SERVERS); /* refused: not made with a worker that never starts */
    /* one worker back to the pool, and a server takes it: none left for its I/O thread.
     * An HTTP read starts the I/O thread from the server's worker (a thread whose
     * creation Emscripten proxies to the main thread, blocked here in the wait) */
    asset_server_destroy(s[--n]);
    assert_non_null(s[n] = one_worker());
    asset_handle_t *h = asset_server_load(s[n], "http://127.0.0.1:9/x", NULL);
    assert_non_null(h);
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_E_IO);
    assert_non_null(strstr(asset_handle_error_message(h), "the I/O thread could not start"));
    asset_handle_release(h);
    /* a load that needs no I/O thread still works there */
    asset_handle_release(tu_load_wait(s[n], "mem://missing", ASSET_E_NOT_FOUND));
    /* the same again for a timeout, whose I/O thread the main thread starts */
    asset_server_destroy(s[n]);
    assert_non_null(s[n] = one_worker());
    h = timed_load(s[n]);
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_E_IO);
    assert_non_null(strstr(asset_handle_error_message(h), "the I/O thread could not start"));
    asset_handle_release(h);
    n++;
    for (int i = 0; i < n; i++) asset_server_destroy(s[i]);
    /* the pool is whole again: a server and its I/O thread start */
    asset_server_t *again = one_worker();
    assert_non_null(again);
    h = timed_load(again);
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_OK);
    asset_handle_release(h);
    asset_server_destroy(again);
}

/* A source whose read blocks its worker until the test lets it go. */
static uv_sem_t g_gate;

static asset_status_t gated_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    uv_sem_wait(&g_gate);
    return asset_request_write(r, "x", 1);
}

/* From now on this thread's wall clock (Date.now(): CLOCK_REALTIME) reads a day earlier
 * than it did at its first reading; js_clock_restore() undoes it. */
/* clang-format off */
EM_JS(void, js_clock_back_after_one_reading, (void), {
    var real = Date.now, n = 0;
    Module.realDateNow = real;
    Date.now = function() { return n++ ? real() - 86400000 : real(); };
});
EM_JS(void, js_clock_restore, (void), {
    if (Module.realDateNow) Date.now = Module.realDateNow;
});
/* clang-format on */

/* A wait with a timeout counts on a clock that only goes forward, as libuv's on desktop
 * (CLOCK_MONOTONIC). The web's condition variables waited on CLOCK_REALTIME: a wall clock
 * set back during a wait of 100 ms (NTP stepping it, the user, a resumed virtual machine)
 * made it last as long as the step back, here a day (the test hung). */
static void test_a_timed_wait_does_not_follow_the_wall_clock_back(void **state) {
    (void)state;
    assert_int_equal(uv_sem_init(&g_gate, 0), 0);
    asset_server_t *s = one_worker();
    assert_non_null(s);
    static const asset_source_t gated = {ASSET_SOURCE_ABI, "gated", 0, gated_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &gated, NULL), 0);
    asset_handle_t *h = asset_server_load(s, "gated://a", NULL);
    assert_non_null(h);
    js_clock_back_after_one_reading();
    asset_status_t st = asset_handle_wait(h, 100);
    js_clock_restore();
    assert_int_equal(st, ASSET_E_TIMEOUT);
    uv_sem_post(&g_gate);
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_OK);
    asset_handle_release(h);
    asset_server_destroy(s);
    uv_sem_destroy(&g_gate);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_thread_past_the_pool_is_refused_not_waited_for),
        cmocka_unit_test(test_a_timed_wait_does_not_follow_the_wall_clock_back),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
