/* test_pool.c - scheduling: priority order and FIFO within a priority, promotion on
 * coalescing, max_workers, destroy with many loads in flight, flush_budget, the wake
 * callback, and the stats counters. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "test_util.h"

/* ---- helpers ---- */

/* A source that records the order in which reads happen, and delivers the path. */
#define REC_MAX 512
typedef struct rec {
    uv_mutex_t mu;
    char seen[REC_MAX][32];
    int n;
} rec_t;

static asset_status_t rec_read(void *ctx, asset_request_t *r) {
    rec_t *rc = ctx;
    const char *p = asset_request_path(r);
    uv_mutex_lock(&rc->mu);
    if (rc->n < REC_MAX) snprintf(rc->seen[rc->n++], sizeof rc->seen[0], "%s", p);
    uv_mutex_unlock(&rc->mu);
    return asset_request_write(r, p, strlen(p));
}

static void rec_init(rec_t *rc, asset_server_t *s) {
    memset(rc, 0, sizeof *rc);
    uv_mutex_init(&rc->mu);
    asset_source_t src = {ASSET_SOURCE_ABI, "rec", 0, rec_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, rc), ASSET_OK);
}

static void rec_free(rec_t *rc) { uv_mutex_destroy(&rc->mu); }

/* Completion order as seen by callbacks (flush thread only). */
typedef struct done_order {
    char seen[REC_MAX][32];
    int n;
} done_order_t;
typedef struct done_slot {
    done_order_t *o;
    const char *name;
    bool spin; /* burn at least one clock tick, so a 1 ns budget is surely spent */
} done_slot_t;
static void done_cb(asset_handle_t *h, void *user) {
    (void)h;
    done_slot_t *sl = user;
    snprintf(sl->o->seen[sl->o->n++], sizeof sl->o->seen[0], "%s", sl->name);
    if (sl->spin) {
        uint64_t t0 = uv_hrtime();
        while (uv_hrtime() == t0) {
        }
    }
}

static asset_handle_t *load_prio(asset_server_t *s, const char *uri, int prio) {
    asset_load_options_t o = {0};
    o.priority = (asset_priority_t)prio;
    asset_handle_t *h = asset_server_load(s, uri, &o);
    assert_non_null(h);
    return h;
}

/* ---- priority ---- */

/* The queue is a FIFO ring per priority: loads cancelled while queued leave holes that
 * a pop skips and that a push into a full ring packs away (renumbering the survivors:
 * one of them is cancelled after that); the rest still run in arrival order, HIGH
 * first. */
static void test_fifo_order_survives_cancelled_holes_and_ring_growth(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    rec_t *rc = malloc(sizeof *rc);
    assert_non_null(rc);
    rec_init(rc, s);
    asset_handle_t *blocker = asset_server_load(s, "gate://block", NULL);
    tu_gate_wait_entered(g, 1); /* the one worker is busy: everything below queues */
    enum { FIRST = 250, MORE = 100, HIGH = 5 };
    asset_handle_t *n[FIRST + MORE], *hi[HIGH];
    char uri[32];
    for (int i = 0; i < FIRST; i++) {
        snprintf(uri, sizeof uri, "rec://n%03d", i);
        n[i] = load_prio(s, uri, ASSET_PRIORITY_NORMAL);
    }
    for (int i = 0; i < FIRST; i++) /* keep 10 of 250, not the first */
        if (i % 25 != 7) asset_handle_cancel(n[i]);
    for (int i = FIRST, k = 0; i < FIRST + MORE; i++) {
        snprintf(uri, sizeof uri, "rec://n%03d", i);
        n[i] = load_prio(s, uri, ASSET_PRIORITY_NORMAL);
        if (i % 20 == 0 && k < HIGH) {
            snprintf(uri, sizeof uri, "rec://h%03d", k);
            hi[k++] = load_prio(s, uri, ASSET_PRIORITY_HIGH);
        }
    }
    asset_handle_cancel(n[32]); /* a survivor the packing moved */
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.pending, 9 + MORE + HIGH);
    tu_gate_open(g);
    for (int i = 0; i < FIRST + MORE; i++)
        assert_int_equal(tu_wait(n[i]),
                         i < FIRST && (i % 25 != 7 || i == 32) ? ASSET_E_CANCELLED : ASSET_OK);
    for (int k = 0; k < HIGH; k++) assert_int_equal(tu_wait(hi[k]), ASSET_OK);
    assert_int_equal(rc->n, HIGH + 9 + MORE);
    int at = 0;
    for (int k = 0; k < HIGH; k++) {
        snprintf(uri, sizeof uri, "h%03d", k);
        assert_string_equal(rc->seen[at++], uri);
    }
    for (int i = 0; i < FIRST + MORE; i++) {
        if (i < FIRST && (i % 25 != 7 || i == 32)) continue;
        snprintf(uri, sizeof uri, "n%03d", i);
        assert_string_equal(rc->seen[at++], uri);
    }
    for (int i = 0; i < FIRST + MORE; i++) asset_handle_release(n[i]);
    for (int k = 0; k < HIGH; k++) asset_handle_release(hi[k]);
    asset_handle_release(blocker);
    asset_server_destroy(s);
    tu_gate_free(g);
    rec_free(rc);
    free(rc);
}

/* A server whose one worker is held in a gate:// read: every load after it queues. */
static asset_server_t *one_busy_worker(tu_gate_t **g, asset_handle_t **blocker) {
    asset_server_t *s = tu_server(1);
    *g = tu_gate_register(s, "gate");
    *blocker = asset_server_load(s, "gate://block", NULL);
    tu_gate_wait_entered(*g, 1);
    return s;
}

static size_t ring_slots(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    size_t n = 0;
    for (size_t i = 0; i < sizeof s->rings / sizeof s->rings[0]; i++) n += s->rings[i].cap;
    uv_mutex_unlock(&s->lock);
    return n;
}

/* A queue of a thousand jobs emptied by cancels (taken from the middle, not popped)
 * gives its array back, as one emptied by pops does: an idle server keeps no 8 KiB
 * ring from a big batch (cache_overhead counted one, when a waiter's run-on-wait took
 * the last job). */
static void test_ring_emptied_by_cancels_gives_its_array_back(void **state) {
    (void)state;
    tu_gate_t *g;
    asset_handle_t *blocker;
    asset_server_t *s = one_busy_worker(&g, &blocker);
    enum { N = 1000 };
    asset_handle_t *h[N];
    char uri[32];
    for (int i = 0; i < N; i++) {
        snprintf(uri, sizeof uri, "gate://q%04d", i);
        h[i] = load_prio(s, uri, ASSET_PRIORITY_NORMAL);
    }
    assert_true(ring_slots(s) >= N);
    for (int i = N - 1; i >= 0; i--) asset_handle_cancel(h[i]); /* the head last */
    assert_int_equal(ring_slots(s), 0);
    tu_gate_open(g);
    for (int i = 0; i < N; i++) {
        assert_int_equal(tu_wait(h[i]), ASSET_E_CANCELLED);
        asset_handle_release(h[i]);
    }
    assert_int_equal(tu_wait(blocker), ASSET_OK);
    asset_handle_release(blocker);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static size_t returned_jobs(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    size_t n = s->returned_n;
    uv_mutex_unlock(&s->lock);
    return n;
}

/* A finished job's memory waits for the thread that loads or waits (job.c, job_return;
 * test_fastpath checks who frees it). At most ASSET__RETURNED_MAX wait (the worker frees the rest
 * itself); a load frees two for each it makes; a budgeted flush leaves them (freeing can
 * take glibc's heap trims, which no budget foresees); a flush without a budget frees
 * them. */
static void test_returned_jobs_are_bounded_and_freed_by_a_full_flush(void **state) {
    (void)state;
    tu_gate_t *g;
    asset_handle_t *blocker;
    asset_server_t *s = one_busy_worker(&g, &blocker);
    enum { N = ASSET__RETURNED_MAX + 76 };
    asset_handle_t **h = malloc(N * sizeof *h);
    for (int i = 0; i < N; i++) {
        char key[16], uri[32];
        snprintf(key, sizeof key, "k%04d", i);
        assert_int_equal(asset_mem_put(s, key, key, strlen(key)), ASSET_OK);
        snprintf(uri, sizeof uri, "mem://%s", key);
        h[i] = asset_server_load(s, uri, NULL);
    }
    assert_int_equal(returned_jobs(s), 0);
    tu_gate_open(g);
    tu_wait_queued(s, N + 1); /* every job finished; nothing flushed */
    assert_int_equal(returned_jobs(s), ASSET__RETURNED_MAX);
    asset_server_flush_budget(s, 1);
    assert_int_equal(returned_jobs(s), ASSET__RETURNED_MAX);
    /* a load frees two (one that fails at once: no job of its own to finish meanwhile) */
    asset_handle_t *again = asset_server_load(s, "nosuch://x", NULL);
    assert_int_equal(returned_jobs(s), ASSET__RETURNED_MAX - 2);
    assert_int_equal(tu_wait(again), ASSET_E_NO_SOURCE);
    asset_handle_release(again);
    asset_server_flush(s);
    assert_int_equal(returned_jobs(s), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(asset_handle_state(h[i]), ASSET_STATE_LOADED);
        asset_handle_release(h[i]);
    }
    asset_handle_release(blocker);
    free(h);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_priority_high_before_normal_before_low_fifo_within(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    rec_t rc;
    rec_init(&rc, s);
    asset_handle_t *blocker = asset_server_load(s, "gate://block", NULL);
    tu_gate_wait_entered(g, 1); /* the only worker is held: everything below queues */
    static const struct {
        const char *name;
        int prio;
    } plan[] = {
        {"L1", ASSET_PRIORITY_LOW},    {"N1", ASSET_PRIORITY_NORMAL}, {"H1", ASSET_PRIORITY_HIGH},
        {"L2", ASSET_PRIORITY_LOW},    {"N2", 0 /* default */},       {"H2", ASSET_PRIORITY_HIGH},
        {"N3", 99 /* out of range */}, {"L3", ASSET_PRIORITY_LOW},    {"H3", ASSET_PRIORITY_HIGH},
        {"N4", ASSET_PRIORITY_NORMAL},
    };
    enum { N = sizeof plan / sizeof plan[0] };
    asset_handle_t *h[N];
    done_order_t done = {{{0}}, 0};
    done_slot_t slots[N];
    for (int i = 0; i < N; i++) {
        char uri[64];
        snprintf(uri, sizeof uri, "rec://%s", plan[i].name);
        h[i] = load_prio(s, uri, plan[i].prio);
        slots[i] = (done_slot_t){&done, plan[i].name, false};
        asset_handle_on_completed(h[i], done_cb, &slots[i]);
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.pending, N);
    tu_gate_open(g);
    assert_int_equal(tu_wait(blocker), ASSET_OK);
    for (int i = 0; i < N; i++) assert_int_equal(tu_wait(h[i]), ASSET_OK);
    static const char *want[] = {"H1", "H2", "H3", "N1", "N2", "N3", "N4", "L1", "L2", "L3"};
    assert_int_equal(rc.n, N);
    for (int i = 0; i < N; i++) assert_string_equal(rc.seen[i], want[i]);
    /* one worker: completions (and callbacks) come in the same order */
    assert_int_equal(done.n, N);
    for (int i = 0; i < N; i++) assert_string_equal(done.seen[i], want[i]);
    for (int i = 0; i < N; i++) asset_handle_release(h[i]);
    asset_handle_release(blocker);
    asset_server_destroy(s);
    tu_gate_free(g);
    rec_free(&rc);
}

static void test_coalesced_higher_priority_promotes_the_job(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    rec_t rc;
    rec_init(&rc, s);
    asset_handle_t *blocker = asset_server_load(s, "gate://block", NULL);
    tu_gate_wait_entered(g, 1);
    asset_handle_t *a = load_prio(s, "rec://a", ASSET_PRIORITY_NORMAL);
    asset_handle_t *b1 = load_prio(s, "rec://b", ASSET_PRIORITY_LOW);
    asset_handle_t *c = load_prio(s, "rec://c", ASSET_PRIORITY_HIGH);
    asset_handle_t *b2 = load_prio(s, "rec://b", ASSET_PRIORITY_HIGH); /* joins b, promotes */
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.coalesced, 1);
    assert_int_equal(st.pending, 3);
    tu_gate_open(g);
    assert_int_equal(tu_wait(a), ASSET_OK);
    assert_int_equal(tu_wait(b1), ASSET_OK);
    assert_int_equal(tu_wait(b2), ASSET_OK);
    assert_int_equal(tu_wait(c), ASSET_OK);
    assert_int_equal(rc.n, 3); /* b read once for both handles */
    /* b now runs at HIGH, with c, before the NORMAL a (it was LOW: it would have
     * been last). Between b and c either order is FIFO, depending on whether a
     * promoted job keeps its arrival number. */
    assert_true((!strcmp(rc.seen[0], "b") && !strcmp(rc.seen[1], "c")) ||
                (!strcmp(rc.seen[0], "c") && !strcmp(rc.seen[1], "b")));
    assert_string_equal(rc.seen[2], "a");
    assert_ptr_equal(asset_handle_value(b1), asset_handle_value(b2));
    asset_handle_release(a);
    asset_handle_release(b1);
    asset_handle_release(b2);
    asset_handle_release(c);
    asset_handle_release(blocker);
    asset_server_destroy(s);
    tu_gate_free(g);
    rec_free(&rc);
}

static void test_max_workers_bounds_concurrent_reads(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *h[3];
    h[0] = asset_server_load(s, "gate://0", NULL);
    h[1] = asset_server_load(s, "gate://1", NULL);
    h[2] = asset_server_load(s, "gate://2", NULL);
    tu_gate_wait_entered(g, 2);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.loading, 2); /* both workers held ... */
    assert_int_equal(st.pending, 1); /* ... so the third still waits in the queue */
    assert_int_equal(tu_gate_entered(g), 2);
    tu_gate_open(g);
    for (int i = 0; i < 3; i++) assert_int_equal(tu_wait(h[i]), ASSET_OK);
    assert_int_equal(tu_gate_entered(g), 3);
    for (int i = 0; i < 3; i++) asset_handle_release(h[i]);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* [s->lock held] Waits (bounded: going idle signals nothing) until every worker sleeps
 * in work_cond. */
static void wait_all_idle(asset_server_t *s) {
    uint64_t deadline = uv_hrtime() + 10000000000ull;
    while (s->idle_workers < s->nworkers) {
        assert_true(uv_hrtime() < deadline);
        (void)uv_cond_timedwait(&s->done_cond, &s->lock, 1000000);
    }
}

/* A push wakes one sleeping worker (asset__pool_wake_claim: none while a signalled one
 * has not woken); a worker that wakes with more queued wakes the next. So a group
 * reaches every idle worker: with the chain broken only the first would run, and the
 * other three gated reads would never start while it is held. */
static void test_a_group_wakes_every_sleeping_worker(void **state) {
    (void)state;
    asset_server_t *s = tu_server(4);
    tu_gate_t *g = tu_gate_register(s, "gate");
    uv_mutex_lock(&s->lock);
    wait_all_idle(s);
    uv_mutex_unlock(&s->lock);
    const char *uris[4] = {"gate://0", "gate://1", "gate://2", "gate://3"};
    asset_batch_t *b = asset_server_load_group(s, uris, 4, NULL);
    bool all = tu_gate_wait_entered_for(g, 4, 10000);
    tu_gate_open(g);
    assert_true(all);
    assert_int_equal(asset_batch_wait(b, 10000), ASSET_OK);
    asset_batch_release(b);
    /* and once they sleep again, single loads each wake one */
    uv_mutex_lock(&s->lock);
    wait_all_idle(s);
    assert_false(s->wake_inflight);
    uv_mutex_unlock(&s->lock);
    asset_handle_t *h = asset_server_load(s, "gate://4", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* ---- destroy with loads in flight ---- */

typedef struct fired {
    int n; /* flush thread only */
} fired_t;
static void fired_cb(asset_handle_t *h, void *user) {
    (void)h;
    ((fired_t *)user)->n++;
}

typedef struct wake_rec {
    uv_sem_t sem;
    atomic_int n;
    atomic_int on_main;
    uv_thread_t main;
} wake_rec_t;
static void wake_cb(void *user) {
    wake_rec_t *w = user;
    uv_thread_t self = uv_thread_self();
    if (uv_thread_equal(&self, &w->main)) atomic_fetch_add(&w->on_main, 1);
    atomic_fetch_add(&w->n, 1);
    uv_sem_post(&w->sem);
}

static void test_destroy_with_a_thousand_loads_in_flight(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *paths[10];
    for (int i = 0; i < 10; i++) {
        char rel[32];
        snprintf(rel, sizeof rel, "f%d.bin", i);
        paths[i] = tu_write_pattern(dir, rel, 1000 + (size_t)i * 97);
    }
    wake_rec_t wake;
    memset(&wake, 0, sizeof wake);
    uv_sem_init(&wake.sem, 0);
    wake.main = uv_thread_self();
    asset_server_config_t cfg = {0};
    cfg.max_workers = 4;
    cfg.wake = wake_cb;
    cfg.user = &wake;
    asset_server_t *s = asset_server_create(&cfg);
    tu_gate_t *g = tu_gate_register(s, "gate");
    for (int i = 0; i < 50; i++) {
        char key[32], val[64];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "value of %d", i);
        assert_int_equal(asset_mem_put(s, key, val, strlen(val)), ASSET_OK);
    }
    fired_t fired = {0};
    for (int i = 0; i < 1000; i++) {
        char uri[4200];
        switch (i % 3) {
        case 0: snprintf(uri, sizeof uri, "file://%s", paths[i % 10]); break;
        case 1: snprintf(uri, sizeof uri, "mem://k%d", i % 60); break; /* some missing */
        default: snprintf(uri, sizeof uri, "gate://g%d", i); break;
        }
        asset_load_options_t o = {0};
        o.priority = (asset_priority_t)(1 + i % 3);
        o.no_cache = (i % 7) == 0;
        asset_handle_t *h = asset_server_load(s, uri, &o);
        assert_non_null(h);
        asset_handle_on_completed(h, fired_cb, &fired);
        if (i % 11 == 0) asset_handle_cancel(h);
        if (i % 5 == 0) asset_handle_release(h); /* some released, the rest left to destroy */
    }
    tu_gate_wait_entered(g, 1); /* gate reads are under way and never released */
    asset_server_flush(s);      /* deliver some, leave the rest in flight */
    int before = fired.n;
    assert_true(before < 1000);
    asset_server_destroy(s); /* cancels, joins, frees: no callback, no leak */
    assert_int_equal(fired.n, before);
    assert_true(tu_gate_cancelled_seen(g) >= 1); /* blocked reads were told to stop */
    tu_gate_free(g);
    uv_sem_destroy(&wake.sem);
    for (int i = 0; i < 10; i++) free(paths[i]);
    tu_rmrf(dir);
    free(dir);
}

static void test_destroy_with_unflushed_completions_fires_nothing(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    fired_t fired = {0};
    for (int i = 0; i < 8; i++) {
        asset_handle_t *h = asset_server_load(s, i % 2 ? "mem://k" : "mem://nope", NULL);
        asset_handle_on_completed(h, fired_cb, &fired);
    }
    tu_wait_queued(s, 8);
    asset_server_destroy(s);
    assert_int_equal(fired.n, 0);
}

/* ---- flush budget ---- */

static void test_flush_budget_leaves_the_rest_queued_in_order(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    rec_t rc;
    rec_init(&rc, s);
    enum { N = 6 };
    asset_handle_t *h[N];
    done_order_t done = {{{0}}, 0};
    done_slot_t slots[N];
    static const char *names[N] = {"a", "b", "c", "d", "e", "f"};
    for (int i = 0; i < N; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "rec://%s", names[i]);
        h[i] = asset_server_load(s, uri, NULL);
        slots[i] = (done_slot_t){&done, names[i], true};
        asset_handle_on_completed(h[i], done_cb, &slots[i]);
    }
    tu_wait_queued(s, N); /* one worker: queued in load order */
    for (int i = 0; i < N; i++) {
        assert_int_equal(asset_server_flush_budget(s, 1), 1); /* at least one, then stop */
        assert_int_equal(done.n, i + 1);
        assert_string_equal(done.seen[i], names[i]);
        assert_true(asset_handle_is_done(h[i]));
        if (i + 1 < N) assert_false(asset_handle_is_done(h[i + 1]));
    }
    assert_int_equal(asset_server_flush_budget(s, 1), 0);
    for (int i = 0; i < N; i++) asset_handle_release(h[i]);
    asset_server_destroy(s);
    rec_free(&rc);
}

static void test_flush_budget_large_enough_delivers_everything(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    rec_t rc;
    rec_init(&rc, s);
    asset_handle_t *h[4];
    for (int i = 0; i < 4; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "rec://x%d", i);
        h[i] = asset_server_load(s, uri, NULL);
    }
    tu_wait_queued(s, 4);
    assert_int_equal(asset_server_flush_budget(s, UINT64_MAX / 2), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(asset_handle_state(h[i]), ASSET_STATE_LOADED);
        asset_handle_release(h[i]);
    }
    assert_int_equal(asset_server_flush_budget(s, 1000), 0);
    asset_server_destroy(s);
    rec_free(&rc);
}

/* ---- wake ---- */

static void test_flush_budget_leftovers_wake_the_host_again(void **state) {
    /* an event-driven host flushes only when woken: work left behind by a budgeted
     * flush must not wait for an unrelated completion */
    (void)state;
    wake_rec_t wake;
    memset(&wake, 0, sizeof wake);
    uv_sem_init(&wake.sem, 0);
    wake.main = uv_thread_self();
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    cfg.wake = wake_cb;
    cfg.user = &wake;
    asset_server_t *s = asset_server_create(&cfg);
    rec_t rc;
    rec_init(&rc, s);
    done_order_t done = {{{0}}, 0};
    done_slot_t slots[3];
    asset_handle_t *h[3];
    static const char *names[3] = {"p", "q", "r"};
    for (int i = 0; i < 3; i++) {
        char uri[32];
        snprintf(uri, sizeof uri, "rec://%s", names[i]);
        h[i] = asset_server_load(s, uri, NULL);
        slots[i] = (done_slot_t){&done, names[i], true};
        asset_handle_on_completed(h[i], done_cb, &slots[i]);
    }
    tu_wait_queued(s, 3);
    uv_sem_wait(&wake.sem); /* the first completion woke us */
    assert_int_equal(atomic_load(&wake.n), 1);
    assert_int_equal(asset_server_flush_budget(s, 1), 1);
    assert_int_equal(uv_sem_trywait(&wake.sem), 0); /* two left: woken again */
    assert_int_equal(asset_server_flush_budget(s, 1), 1);
    assert_int_equal(uv_sem_trywait(&wake.sem), 0); /* one left */
    assert_int_equal(asset_server_flush_budget(s, 1), 1);
    assert_true(uv_sem_trywait(&wake.sem) != 0); /* nothing left: no wake */
    assert_int_equal(done.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(done.seen[i], names[i]);
        asset_handle_release(h[i]);
    }
    asset_server_destroy(s);
    rec_free(&rc);
    uv_sem_destroy(&wake.sem);
}

static void test_wake_is_called_when_completions_become_available(void **state) {
    (void)state;
    wake_rec_t wake;
    memset(&wake, 0, sizeof wake);
    uv_sem_init(&wake.sem, 0);
    wake.main = uv_thread_self();
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    cfg.wake = wake_cb;
    cfg.user = &wake;
    asset_server_t *s = asset_server_create(&cfg);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    assert_int_equal(atomic_load(&wake.n), 0); /* nothing to flush yet */

    /* a worker completes: the wake comes from a worker thread */
    asset_handle_t *a = asset_server_load(s, "mem://k", NULL);
    uv_sem_wait(&wake.sem); /* no flush until told */
    assert_int_equal(atomic_load(&wake.n), 1);
    assert_int_equal(atomic_load(&wake.on_main), 0);
    assert_int_equal(asset_server_flush(s), 1);
    assert_int_equal(asset_handle_state(a), ASSET_STATE_LOADED);

    /* an immediate failure: the wake comes from the loading thread */
    asset_handle_t *b = asset_server_load(s, "nosuch://x", NULL);
    assert_int_equal(atomic_load(&wake.n), 2);
    assert_int_equal(atomic_load(&wake.on_main), 1);
    uv_sem_wait(&wake.sem);
    assert_int_equal(asset_server_flush(s), 1);
    assert_int_equal(asset_handle_state(b), ASSET_STATE_FAILED);

    /* several completions before a flush: one wake for the empty -> non-empty edge */
    asset_handle_t *c = asset_server_load(s, "mem://k", NULL);
    asset_handle_t *d = asset_server_load(s, "mem://nope", NULL);
    uv_sem_wait(&wake.sem);
    tu_wait_queued(s, 2);
    assert_int_equal(atomic_load(&wake.n), 3);
    assert_int_equal(asset_server_flush(s), 2);

    /* a late callback connection also wakes */
    fired_t fired = {0};
    asset_handle_on_completed(a, fired_cb, &fired);
    uv_sem_wait(&wake.sem);
    assert_int_equal(atomic_load(&wake.n), 4);
    assert_int_equal(asset_server_flush(s), 1);
    assert_int_equal(fired.n, 1);

    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_handle_release(d);
    asset_server_destroy(s);
    uv_sem_destroy(&wake.sem);
}

/* ---- stats ---- */

static void test_stats_count_what_happened(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    assert_int_equal(asset_mem_put(s, "a", "12345", 5), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b", "1234567", 7), ASSET_OK);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.pending + st.loading + st.completed + st.failed + st.cancelled, 0);
    assert_int_equal(st.source_reads + st.bytes_read, 0);

    asset_handle_t *gh = asset_server_load(s, "gate://gatepath", NULL); /* 8 bytes */
    tu_gate_wait_entered(g, 1);
    asset_handle_t *a = asset_server_load(s, "mem://a", NULL);
    asset_handle_t *b = asset_server_load(s, "mem://b", NULL);
    asset_handle_t *m = asset_server_load(s, "mem://missing", NULL);
    asset_server_stats(s, &st);
    assert_int_equal(st.loading, 1);
    assert_int_equal(st.pending, 3);
    asset_handle_cancel(b);
    asset_server_stats(s, &st);
    assert_int_equal(st.pending, 2);
    tu_gate_open(g);
    assert_int_equal(tu_wait(gh), ASSET_OK);
    assert_int_equal(tu_wait(a), ASSET_OK);
    assert_int_equal(tu_wait(b), ASSET_E_CANCELLED);
    assert_int_equal(tu_wait(m), ASSET_E_NOT_FOUND);
    asset_server_stats(s, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.loading, 0);
    assert_int_equal(st.completed, 2);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.source_reads, 3); /* gate, a, missing; b never read */
    assert_int_equal(st.bytes_read, 8 + 5);
    assert_int_equal(st.parses, 2);
    assert_int_equal(st.cache_misses, 2);
    assert_int_equal(st.cache_hits, 0);
    assert_true(st.bytes_cached > 0);
    assert_int_equal(st.coalesced, 0);
    assert_int_equal(st.http_requests, 0);

    /* again: the mem source revalidates (NOT_MODIFIED), a hit without a parse */
    asset_handle_t *a2 = asset_server_load(s, "mem://a", NULL);
    assert_int_equal(tu_wait(a2), ASSET_OK);
    asset_server_stats(s, &st);
    assert_int_equal(st.completed, 3);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.parses, 2);
    assert_int_equal(st.source_reads, 4);
    assert_int_equal(st.bytes_read, 8 + 5); /* NOT_MODIFIED delivers no bytes */
    assert_ptr_equal(asset_handle_value(a2), asset_handle_value(a));

    asset_server_clear_caches(s);
    asset_server_stats(s, &st);
    assert_int_equal(st.bytes_cached, 0);

    asset_handle_release(gh);
    asset_handle_release(a);
    asset_handle_release(a2);
    asset_handle_release(b);
    asset_handle_release(m);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* A chain of loads whose parses each wait for the next one: a wait runs the next one's
 * job itself (run-on-wait, a mem:// load), whose parse waits and runs the next, and so
 * on, one stack frame set per link, as deep as the chain was long. On a thread with a
 * small stack (a host's, or the web build's only one) it overflowed the stack (SIGSEGV).
 * The nesting is bounded (ASSET__WAIT_RUN_DEPTH): deeper, a wait whose job it would
 * have to run itself returns ASSET_E_BUSY. The one worker is held, so the chain runs on
 * the waiting thread alone. */
enum { CHAIN_LINKS = 4000 };
typedef struct chain {
    asset_server_t *s;
    atomic_int parses;
    atomic_int busy_at; /* the link whose wait returned BUSY, or -1 */
    asset_status_t top; /* the first link's result, on the small thread */
    atomic_bool over;   /* the small thread's wait returned */
} chain_t;

static asset_status_t chain_parse(void *ctx, asset_parse_t *p) {
    chain_t *c = ctx;
    atomic_fetch_add(&c->parses, 1);
    char num[16] = {0};
    memcpy(num, asset_parse_data(p), asset_parse_size(p) < 15 ? asset_parse_size(p) : 15);
    int i = atoi(num);
    if (i + 1 < CHAIN_LINKS) {
        char uri[32];
        snprintf(uri, sizeof uri, "mem://c%d.chain", i + 1);
        asset_handle_t *h = asset_server_load(c->s, uri, NULL);
        asset_status_t st = asset_handle_wait(h, -1);
        asset_handle_release(h);
        if (st == ASSET_E_BUSY) {
            int none = -1;
            atomic_compare_exchange_strong(&c->busy_at, &none, i);
        }
        if (st != ASSET_OK) return asset_parse_fail(p, st, "link %d: %s", i, asset_err_name(st));
    }
    char *v = asset_alloc(1);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

static void chain_top(void *arg) {
    chain_t *c = arg;
    asset_handle_t *h = asset_server_load(c->s, "mem://c0.chain", NULL);
    c->top = asset_handle_wait(h, -1);
    asset_handle_release(h);
    atomic_store(&c->over, true);
}

static void test_nested_run_on_wait_is_bounded_on_a_small_stack(void **state) {
    (void)state;
    tu_gate_t *g;
    asset_handle_t *blocker;
    asset_server_t *s = one_busy_worker(&g, &blocker);
    chain_t c = {.s = s, .busy_at = -1};
    static const char *const suffixes[] = {".chain", NULL};
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "chain",
                         .suffixes = suffixes,
                         .parse = chain_parse,
                         .free_value = tu_gated_free};
    assert_int_equal(asset_server_register_loader(s, &ld, &c, 0), ASSET_OK);
    for (int i = 0; i < CHAIN_LINKS; i++) {
        char key[32], body[16];
        snprintf(key, sizeof key, "c%d.chain", i);
        int n = snprintf(body, sizeof body, "%d", i);
        assert_int_equal(asset_mem_put(s, key, body, (size_t)n), ASSET_OK);
    }
    uv_thread_t t;
    uv_thread_options_t opt = {.flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = 1 << 20};
    assert_int_equal(uv_thread_create_ex(&t, &opt, chain_top, &c), 0);
    while (!atomic_load(&c.over)) { /* the flush thread: the links' results are published */
        asset_server_flush(s);
        uv_mutex_lock(&s->lock);
        if (!s->q_head && !atomic_load(&c.over)) {
            s->waiters++;
            (void)uv_cond_timedwait(&s->done_cond, &s->lock, 10000000);
            s->waiters--;
        }
        uv_mutex_unlock(&s->lock);
    }
    assert_int_equal(uv_thread_join(&t), 0);
    assert_int_not_equal(c.top, ASSET_OK); /* the deepest link's failure, passed up */
    assert_int_equal(atomic_load(&c.busy_at), ASSET__WAIT_RUN_DEPTH - 1);
    assert_int_equal(atomic_load(&c.parses), ASSET__WAIT_RUN_DEPTH);
    tu_gate_open(g);
    assert_int_equal(asset_handle_wait(blocker, -1), ASSET_OK);
    asset_handle_release(blocker);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_stats_null_arguments(void **state) {
    (void)state;
    asset_stats_t st;
    memset(&st, 0xab, sizeof st);
    asset_server_stats(NULL, &st);
    assert_int_equal(st.completed, 0);
    assert_int_equal(st.pending, 0);
    asset_server_t *s = tu_server(1);
    asset_server_stats(s, NULL); /* no crash */
    asset_server_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_high_before_normal_before_low_fifo_within),
        cmocka_unit_test(test_fifo_order_survives_cancelled_holes_and_ring_growth),
        cmocka_unit_test(test_ring_emptied_by_cancels_gives_its_array_back),
        cmocka_unit_test(test_returned_jobs_are_bounded_and_freed_by_a_full_flush),
        cmocka_unit_test(test_coalesced_higher_priority_promotes_the_job),
        cmocka_unit_test(test_max_workers_bounds_concurrent_reads),
        cmocka_unit_test(test_a_group_wakes_every_sleeping_worker),
        cmocka_unit_test(test_destroy_with_a_thousand_loads_in_flight),
        cmocka_unit_test(test_destroy_with_unflushed_completions_fires_nothing),
        cmocka_unit_test(test_flush_budget_leaves_the_rest_queued_in_order),
        cmocka_unit_test(test_flush_budget_large_enough_delivers_everything),
        cmocka_unit_test(test_wake_is_called_when_completions_become_available),
        cmocka_unit_test(test_flush_budget_leftovers_wake_the_host_again),
        cmocka_unit_test(test_stats_count_what_happened),
        cmocka_unit_test(test_stats_null_arguments),
        cmocka_unit_test(test_nested_run_on_wait_is_bounded_on_a_small_stack),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
