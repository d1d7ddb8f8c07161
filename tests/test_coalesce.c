/* test_coalesce.c - loads of the same (URI, loader, cacheability) share one job while
 * it is in flight; a higher priority promotes the shared job; cache revalidation reads
 * again but parses only what changed. The gate source holds jobs in flight. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

static asset_stats_t stats(asset_server_t *s) {
    asset_stats_t st;
    asset_server_stats(s, &st);
    return st;
}

static void expect_bytes(asset_handle_t *h, const char *want) {
    const asset_bytes_t *b = asset_handle_value(h);
    assert_non_null(b);
    assert_int_equal(b->size, strlen(want));
    assert_memory_equal(b->data, want, b->size);
}

static void test_two_loads_in_flight_share_one_read(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *h1 = asset_server_load(s, "gate://x", NULL);
    tu_gate_wait_entered(g, 1); /* the read is running and blocked */
    asset_handle_t *h2 = asset_server_load(s, "gate://x", NULL);
    assert_int_equal(asset_handle_state(h2), ASSET_STATE_LOADING); /* joined a running job */
    assert_int_equal(stats(s).coalesced, 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    expect_bytes(h2, "x");
    assert_int_equal(tu_gate_entered(g), 1);
    asset_stats_t st = stats(s);
    assert_int_equal(st.source_reads, 1);
    assert_int_equal(st.parses, 1);
    assert_int_equal(st.completed, 2);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* One worker, busy with gate://block (*block) until the gate (*g) opens: the next jobs
 * stay queued. */
static asset_server_t *blocked_server(tu_gate_t **g, asset_handle_t **block) {
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    *g = tu_gate_register(s, "gate");
    *block = asset_server_load(s, "gate://block", NULL);
    tu_gate_wait_entered(*g, 1);
    return s;
}

static void test_queued_job_is_shared_too(void **state) {
    (void)state;
    tu_gate_t *g;
    asset_handle_t *block;
    asset_server_t *s = blocked_server(&g, &block);
    asset_handle_t *h[3];
    for (int i = 0; i < 3; i++) h[i] = asset_server_load(s, "gate://q", NULL);
    assert_int_equal(asset_handle_state(h[2]), ASSET_STATE_PENDING);
    asset_stats_t st = stats(s);
    assert_int_equal(st.pending, 1);
    assert_int_equal(st.coalesced, 2);
    tu_gate_open(g);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tu_wait(h[i]), ASSET_OK);
        assert_ptr_equal(asset_handle_value(h[i]), asset_handle_value(h[0]));
    }
    for (int i = 0; i < 3; i++) asset_handle_release(h[i]);
    assert_int_equal(tu_wait(block), ASSET_OK);
    asset_handle_release(block);
    assert_int_equal(tu_gate_entered(g), 2);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* Thirty-eighth review (coverage): asset_server_invalidate spares a job still queued to
 * read: its read is after the change, so a load made after the invalidate joins it (one
 * read for both), as the header says (it joins none "whose read began before"). */
static void test_a_load_after_an_invalidate_joins_a_job_not_yet_reading(void **state) {
    (void)state;
    tu_gate_t *g;
    asset_handle_t *block;
    asset_server_t *s = blocked_server(&g, &block);
    asset_handle_t *h1 = asset_server_load(s, "gate://q", NULL);
    assert_int_equal(asset_handle_state(h1), ASSET_STATE_PENDING); /* queued */
    asset_server_invalidate(s, "gate://q");
    asset_handle_t *h2 = asset_server_load(s, "gate://q", NULL);
    assert_int_equal(stats(s).coalesced, 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    assert_int_equal(tu_wait(block), ASSET_OK);
    assert_int_equal(tu_gate_entered(g), 2); /* block's read and q's, once */
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(block);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_cancelling_one_coalesced_handle_leaves_the_other_running(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *h1 = asset_server_load(s, "gate://shared", NULL);
    asset_handle_t *h2 = asset_server_load(s, "gate://shared", NULL);
    tu_gate_wait_entered(g, 1);
    asset_handle_cancel(h1);
    assert_int_equal(tu_wait(h1), ASSET_E_CANCELLED);
    assert_int_equal(asset_handle_state(h1), ASSET_STATE_CANCELLED);
    assert_false(asset_handle_is_done(h2));
    tu_gate_open(g);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    expect_bytes(h2, "shared");
    assert_null(asset_handle_value(h1));
    assert_int_equal(tu_gate_cancelled_seen(g), 0); /* the read was never told to stop */
    asset_stats_t st = stats(s);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.completed, 1);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_cancelling_every_coalesced_handle_stops_the_read(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    tu_gate_t *g = tu_gate_register(s, "gate");
    tu_gate_t *echo = tu_gate_register(s, "echo"); /* a user source: no waiter runs it */
    tu_gate_open(echo);
    asset_handle_t *h1 = asset_server_load(s, "gate://both", NULL);
    asset_handle_t *h2 = asset_server_load(s, "gate://both", NULL);
    tu_gate_wait_entered(g, 1);
    asset_handle_cancel(h1);
    asset_handle_cancel(h2);
    /* the gate stays closed: the next job can only run once the read saw the cancel */
    asset_handle_t *after = asset_server_load(s, "echo://after", NULL);
    assert_int_equal(tu_wait(after), ASSET_OK);
    assert_int_equal(tu_gate_cancelled_seen(g), 1);
    assert_int_equal(tu_wait(h1), ASSET_E_CANCELLED);
    assert_int_equal(tu_wait(h2), ASSET_E_CANCELLED);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(after);
    asset_server_destroy(s);
    tu_gate_free(g);
    tu_gate_free(echo);
}

/* A job's handles are a doubly linked list: a cancel unlinks its handle in O(1), from
 * the head, the tail or the middle (before, a cancel walked the list: 80,000 coalesced
 * handles cancelled oldest first took seconds under the lock). Cancels from every
 * position, then the rest complete with the one value, then the queued case: the last
 * cancel of a queued job takes it out of the queue. */
#define MANY 3000
static void test_cancelling_coalesced_handles_in_any_order_keeps_the_rest(void **state) {
    (void)state;
    tu_gate_t *g;
    asset_handle_t *block;
    asset_server_t *s = blocked_server(&g, &block);
    asset_handle_t **h = calloc(MANY, sizeof *h), **q = calloc(MANY, sizeof *q);
    assert_non_null(h);
    assert_non_null(q);
    for (int i = 0; i < MANY; i++) {
        h[i] = asset_server_load(s, "gate://many", NULL);
        q[i] = asset_server_load(s, "gate://gone", NULL);
    }
    assert_int_equal(stats(s).coalesced, 2 * (MANY - 1));
    bool *cancelled = calloc(MANY, sizeof *cancelled);
    assert_non_null(cancelled);
    /* the newest (the list's head), the oldest (its tail), then every third between */
    int order[MANY], n = 0;
    order[n++] = MANY - 1;
    order[n++] = 0;
    for (int i = 3; i < MANY - 1; i += 3) order[n++] = i;
    for (int k = 0; k < n; k++) {
        asset_handle_cancel(h[order[k]]);
        cancelled[order[k]] = true;
    }
    for (int i = 0; i < MANY; i++) /* oldest first: each from the list's tail */
        asset_handle_cancel(q[i]);
    assert_int_equal(stats(s).pending, 1); /* gate://many; gate://gone left the queue */
    tu_gate_open(g);
    const void *value = NULL;
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(tu_wait(q[i]), ASSET_E_CANCELLED);
        if (cancelled[i]) {
            assert_int_equal(tu_wait(h[i]), ASSET_E_CANCELLED);
            continue;
        }
        assert_int_equal(tu_wait(h[i]), ASSET_OK);
        if (!value) value = asset_handle_value(h[i]);
        assert_ptr_equal(asset_handle_value(h[i]), value);
    }
    expect_bytes(h[1], "many");
    assert_int_equal(stats(s).cancelled, n + MANY);
    assert_int_equal(tu_wait(block), ASSET_OK);
    assert_int_equal(tu_gate_entered(g), 2); /* block and many: gone never ran */
    for (int i = 0; i < MANY; i++) {
        asset_handle_release(h[i]);
        asset_handle_release(q[i]);
    }
    free(h);
    free(q);
    free(cancelled);
    asset_handle_release(block);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* ---- priorities ---- */

typedef struct order {
    char names[8][32];
    int n;
} order_t;

static void record(asset_handle_t *h, void *user) {
    order_t *o = user;
    snprintf(o->names[o->n++], sizeof o->names[0], "%s", asset_handle_uri(h));
}

/* One worker, blocked by gate://block; then LOW "gate://low" and NORMAL "gate://norm"
 * are queued; `promote` adds a HIGH load of gate://low. Returns the completion order. */
static void run_priority_scenario(bool promote, order_t *o) {
    tu_gate_t *g;
    asset_handle_t *block;
    asset_server_t *s = blocked_server(&g, &block);
    asset_load_options_t low = {.priority = ASSET_PRIORITY_LOW},
                         high = {.priority = ASSET_PRIORITY_HIGH};
    asset_handle_t *hl = asset_server_load(s, "gate://low", &low);
    asset_handle_t *hn = asset_server_load(s, "gate://norm", NULL);
    asset_handle_t *hh = promote ? asset_server_load(s, "gate://low", &high) : NULL;
    assert_int_not_equal(asset_handle_on_completed(hl, record, o), 0);
    assert_int_not_equal(asset_handle_on_completed(hn, record, o), 0);
    assert_int_equal(stats(s).coalesced, promote ? 1 : 0);
    tu_gate_open(g);
    assert_int_equal(tu_wait(hl), ASSET_OK);
    assert_int_equal(tu_wait(hn), ASSET_OK);
    if (hh) {
        assert_int_equal(tu_wait(hh), ASSET_OK);
        assert_ptr_equal(asset_handle_value(hh), asset_handle_value(hl));
    }
    assert_int_equal(tu_gate_entered(g), 3);
    asset_handle_release(block);
    asset_handle_release(hl);
    asset_handle_release(hn);
    asset_handle_release(hh);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_low_job_runs_after_normal_without_promotion(void **state) {
    (void)state;
    order_t o = {0};
    run_priority_scenario(false, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.names[0], "gate://norm");
    assert_string_equal(o.names[1], "gate://low");
}

static void test_high_load_joining_queued_low_job_promotes_it(void **state) {
    (void)state;
    order_t o = {0};
    run_priority_scenario(true, &o);
    assert_int_equal(o.n, 2);
    assert_string_equal(o.names[0], "gate://low");
    assert_string_equal(o.names[1], "gate://norm");
}

/* ---- what does not coalesce ---- */

static void test_no_cache_and_other_loaders_do_not_join_cached_loads(void **state) {
    (void)state;
    /* one worker, at the gate with `cached`: fresh1's job stays queued, so fresh2 may
     * join it (a no_cache load joins no job whose read began) */
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    tu_gate_t *g = tu_gate_register(s, "gate");
    tu_counter_t c = {0};
    assert_int_equal(tu_counting_loader_register(s, "count", NULL, &c, 0), ASSET_OK);
    asset_load_options_t nc = {.no_cache = true}, other = {.loader = "count"};
    asset_handle_t *cached = asset_server_load(s, "gate://x", NULL);
    asset_handle_t *fresh1 = asset_server_load(s, "gate://x", &nc);
    asset_handle_t *fresh2 = asset_server_load(s, "gate://x", &nc); /* joins fresh1 */
    asset_handle_t *counted = asset_server_load(s, "gate://x", &other);
    assert_int_equal(stats(s).coalesced, 1);
    tu_gate_open(g);
    asset_handle_t *all[] = {cached, fresh1, fresh2, counted};
    for (int i = 0; i < 4; i++) assert_int_equal(tu_wait(all[i]), ASSET_OK);
    assert_int_equal(tu_gate_entered(g), 3);
    assert_ptr_not_equal(asset_handle_value(cached), asset_handle_value(fresh1));
    assert_ptr_equal(asset_handle_value(fresh1), asset_handle_value(fresh2));
    assert_int_equal(tu_counter_parses(&c), 1);
    /* only the cacheable loads went into caches: bytes' one entry, count's one entry */
    asset_stats_t st = stats(s);
    assert_int_equal(st.bytes_cached, asset_handle_size(cached) + asset_handle_size(counted));
    for (int i = 0; i < 4; i++) asset_handle_release(all[i]);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* no_cache promises a fresh read: a second no_cache load joins the first one's job
 * while it is queued (its read starts after both calls), never once its read began:
 * a file changed in between would give the second load the older bytes (a review). */
static void test_a_no_cache_load_joins_no_job_whose_read_began(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL); /* two workers */
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_load_options_t nc = {.no_cache = true};
    asset_handle_t *h1 = asset_server_load(s, "gate://x", &nc);
    tu_gate_wait_entered(g, 1); /* its read is running */
    asset_handle_t *h2 = asset_server_load(s, "gate://x", &nc);
    assert_int_equal(stats(s).coalesced, 0); /* a job of its own */
    tu_gate_wait_entered(g, 2);              /* a read of its own, on the other worker */
    tu_gate_open(g);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_ptr_not_equal(asset_handle_value(h1), asset_handle_value(h2));
    expect_bytes(h2, "x");
    assert_int_equal(stats(s).source_reads, 2);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    tu_gate_free(g);
    /* queued: joined, one read for both */
    asset_handle_t *block;
    s = blocked_server(&g, &block);
    h1 = asset_server_load(s, "gate://q", &nc);
    h2 = asset_server_load(s, "gate://q", &nc);
    assert_int_equal(stats(s).coalesced, 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    assert_int_equal(tu_gate_entered(g), 2); /* block, then q once */
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(block);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_finished_job_is_not_joined(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    tu_gate_open(g);
    asset_handle_t *h1 = asset_server_load(s, "gate://done", NULL);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    asset_handle_t *h2 = asset_server_load(s, "gate://done", NULL);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_int_equal(stats(s).coalesced, 0);
    assert_int_equal(tu_gate_entered(g), 2); /* not immutable: read again */
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* ---- revalidation ---- */

typedef struct fx {
    char *dir;
    asset_server_t *s;
    tu_counter_t c;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    /* one worker: a job has dropped its own value reference before the next job runs,
     * so free counts are exact */
    asset_server_config_t cfg = {.max_workers = 1};
    f->s = asset_server_create(&cfg);
    if (!f->s || tu_counting_loader_register(f->s, "count", ".dat", &f->c, 0) != ASSET_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    asset_server_destroy(f->s);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static asset_handle_t *load_ok(asset_server_t *s, const char *uri) {
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    if (tu_wait(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    return h;
}

static void test_unchanged_file_is_revalidated_without_parse(void **state) {
    fx_t *f = *state;
    char *p = tu_write_file(f->dir, "same.dat", "hello", 5);
    char *u = tu_file_uri(p);
    asset_handle_t *h1 = load_ok(f->s, u);
    asset_handle_t *h2 = load_ok(f->s, u);
    assert_int_equal(tu_counter_parses(&f->c), 1);
    asset_stats_t st = stats(f->s);
    assert_int_equal(st.source_reads, 2); /* it did ask the file ... */
    assert_int_equal(st.bytes_read, 5);   /* ... which answered NOT_MODIFIED, no bytes */
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.cache_misses, 1);
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    expect_bytes(h2, "hello");
    asset_handle_release(h1);
    asset_handle_release(h2);
    free(p);
    free(u);
}

static void test_changed_file_is_read_and_parsed_again(void **state) {
    fx_t *f = *state;
    char *p = tu_write_file(f->dir, "change.dat", "version one", 11);
    char *u = tu_file_uri(p);
    asset_handle_t *old = load_ok(f->s, u);
    free(tu_write_file(f->dir, "change.dat", "version two!", 12));
    asset_handle_t *now = load_ok(f->s, u);
    assert_int_equal(tu_counter_parses(&f->c), 2);
    expect_bytes(now, "version two!");
    expect_bytes(old, "version one"); /* the old value lives on in its handle */
    asset_handle_release(old);
    assert_int_equal(tu_counter_frees(&f->c), 1); /* replaced in the cache, then released */
    /* and the new version is what the cache revalidates now */
    asset_handle_t *again = load_ok(f->s, u);
    assert_ptr_equal(asset_handle_value(again), asset_handle_value(now));
    assert_int_equal(tu_counter_parses(&f->c), 2);
    asset_handle_release(now);
    asset_handle_release(again);
    free(p);
    free(u);
}

static void test_mem_put_same_length_is_parsed_again(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_mem_put(f->s, "m.dat", "aaaa", 4), ASSET_OK);
    asset_handle_release(load_ok(f->s, "mem://m.dat"));
    asset_handle_release(load_ok(f->s, "mem://m.dat"));
    assert_int_equal(tu_counter_parses(&f->c), 1);
    assert_int_equal(asset_mem_put(f->s, "m.dat", "bbbb", 4), ASSET_OK);
    asset_handle_t *h = load_ok(f->s, "mem://m.dat");
    assert_int_equal(tu_counter_parses(&f->c), 2);
    expect_bytes(h, "bbbb");
    asset_handle_release(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_loads_in_flight_share_one_read),
        cmocka_unit_test(test_queued_job_is_shared_too),
        cmocka_unit_test(test_a_load_after_an_invalidate_joins_a_job_not_yet_reading),
        cmocka_unit_test(test_cancelling_one_coalesced_handle_leaves_the_other_running),
        cmocka_unit_test(test_cancelling_every_coalesced_handle_stops_the_read),
        cmocka_unit_test(test_cancelling_coalesced_handles_in_any_order_keeps_the_rest),
        cmocka_unit_test(test_low_job_runs_after_normal_without_promotion),
        cmocka_unit_test(test_high_load_joining_queued_low_job_promotes_it),
        cmocka_unit_test(test_no_cache_and_other_loaders_do_not_join_cached_loads),
        cmocka_unit_test(test_a_no_cache_load_joins_no_job_whose_read_began),
        cmocka_unit_test(test_finished_job_is_not_joined),
        cmocka_unit_test_setup_teardown(test_unchanged_file_is_revalidated_without_parse, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_changed_file_is_read_and_parsed_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_mem_put_same_length_is_parsed_again, setup, teardown),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
