/* test_spawn.c - background tasks (asset_server_spawn): the result becomes the
 * handle's value; failures, cancel before and while running, priority, tags,
 * callbacks, timeouts and destroy behave as for loads; the argument is freed once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <cjson/cJSON.h>

#include "internal.h"
#include "test_util.h"
#include "tu_http.h"
#include "tu_os.h"

typedef struct targ {
    int n;             /* input */
    atomic_int runs;   /* fn calls */
    atomic_int frees;  /* free_arg calls */
    atomic_int vfrees; /* value frees */
    atomic_bool saw_cancel;
    uv_sem_t started, go; /* used by the blocking tasks */
    bool block;
    int order_slot; /* where it ran, for the priority test */
} targ_t;

static atomic_int g_order;

static void targ_init(targ_t *a, int n, bool block) {
    memset(a, 0, sizeof *a);
    a->n = n;
    a->block = block;
    uv_sem_init(&a->started, 0);
    uv_sem_init(&a->go, 0);
}

static void targ_dispose(targ_t *a) {
    uv_sem_destroy(&a->started);
    uv_sem_destroy(&a->go);
}

static void free_arg(void *p) { atomic_fetch_add(&((targ_t *)p)->frees, 1); }

static void free_value(void *v, void *user) {
    atomic_fetch_add(&((targ_t *)user)->vfrees, 1);
    asset_free(v);
}

/* Squares n into an int value; blocks on `go` first when asked. */
static asset_status_t square(asset_task_t *t, void *p) {
    targ_t *a = p;
    atomic_fetch_add(&a->runs, 1);
    a->order_slot = atomic_fetch_add(&g_order, 1);
    if (a->block) {
        uv_sem_post(&a->started);
        uv_sem_wait(&a->go);
    }
    if (asset_task_cancelled(t)) atomic_store(&a->saw_cancel, true);
    int *v = asset_alloc(sizeof *v);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "no memory for the result");
    *v = a->n * a->n;
    asset_task_set_value(t, v, sizeof *v, free_value, a);
    return ASSET_OK;
}

static void test_task_result_becomes_the_handle_value(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    targ_t a;
    targ_init(&a, 7, false);
    asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, NULL);
    assert_non_null(h);
    assert_string_equal(asset_handle_uri(h), "task://1");
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(*(const int *)asset_handle_value(h), 49);
    assert_int_equal(asset_handle_size(h), sizeof(int));
    assert_int_equal(atomic_load(&a.runs), 1);
    assert_int_equal(atomic_load(&a.frees), 1);  /* the argument: once, after fn */
    assert_int_equal(atomic_load(&a.vfrees), 0); /* the handle holds the value */
    asset_handle_release(h);
    asset_server_flush(s);
    assert_int_equal(atomic_load(&a.vfrees), 1); /* never cached */
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.completed, 1);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&a.frees), 1);
    targ_dispose(&a);
}

/* Sets its value, then the same value again with its final cost (as
 * asset_parse_set_value and asset_finalize_set_value allow: a value set early, updated). */
static asset_status_t set_twice(asset_task_t *t, void *p) {
    targ_t *a = p;
    int *v = asset_alloc(sizeof *v);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "no memory for the result");
    *v = 5;
    asset_task_set_value(t, v, 1, free_value, a);
    *v = 6;
    asset_task_set_value(t, v, sizeof *v, free_value, a);
    return ASSET_OK;
}

/* Sets one value, then another: the first is freed then (under a mutation, only the
 * first was ever freed when a value was set again: the replaced one leaked). */
static asset_status_t set_two_values(asset_task_t *t, void *p) {
    targ_t *a = p;
    int *v = asset_alloc(sizeof *v), *w = asset_alloc(sizeof *w);
    if (!v || !w) {
        asset_free(v);
        asset_free(w);
        return asset_task_fail(t, ASSET_E_NO_MEMORY, "no memory for the result");
    }
    *v = 5;
    *w = 6;
    asset_task_set_value(t, v, sizeof *v, free_value, a);
    asset_task_set_value(t, w, sizeof *w, free_value, a);
    return ASSET_OK;
}

static void test_a_value_set_again_frees_the_one_it_replaces(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t a;
    targ_init(&a, 0, false);
    asset_handle_t *h = asset_server_spawn(s, set_two_values, &a, NULL, NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(*(const int *)asset_handle_value(h), 6);
    assert_int_equal(atomic_load(&a.vfrees), 1); /* the first */
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&a.vfrees), 2);
    targ_dispose(&a);
}

/* Setting the value a task set already only updates its cost and free: the second call
 * freed it (asset_task_set_value frees a replaced value), so the handle got a freed
 * pointer and the value was freed twice. */
static void test_a_task_setting_the_same_value_twice_keeps_it(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t a;
    targ_init(&a, 0, false);
    asset_handle_t *h = asset_server_spawn(s, set_twice, &a, NULL, NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(atomic_load(&a.vfrees), 0); /* the handle holds it */
    assert_int_equal(*(const int *)asset_handle_value(h), 6);
    assert_int_equal(asset_handle_size(h), sizeof(int));
    asset_handle_release(h);
    asset_server_flush(s);
    assert_int_equal(atomic_load(&a.vfrees), 1);
    asset_server_destroy(s);
    targ_dispose(&a);
}

static asset_status_t failing(asset_task_t *t, void *p) {
    (void)p;
    return asset_task_fail(t, ASSET_E_PARSE, "bad input at %d", 3);
}

/* fails twice: the second message is the handle's (it replaces the first) */
static asset_status_t failing_twice(asset_task_t *t, void *p) {
    (void)p;
    asset_task_fail(t, ASSET_E_PARSE, "first");
    return asset_task_fail(t, ASSET_E_PARSE, "second");
}

static asset_status_t no_value(asset_task_t *t, void *p) {
    (void)t;
    (void)p;
    return ASSET_OK;
}

static asset_status_t odd_status(asset_task_t *t, void *p) {
    (void)t;
    (void)p;
    return (asset_status_t)42;
}

static void test_task_failure_names_the_task_and_why(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_handle_t *h = asset_server_spawn(s, failing, NULL, NULL, NULL);
    tu_expect_end(h, ASSET_E_PARSE, ASSET_STATE_FAILED, "task://1: task: bad input at 3");
    asset_handle_t *n = asset_server_spawn(s, no_value, NULL, NULL, NULL);
    tu_expect_end(n, ASSET_E_INVALID, ASSET_STATE_FAILED, "task://2: task: the task set no value");
    asset_handle_t *o = asset_server_spawn(s, odd_status, NULL, NULL, NULL);
    tu_expect_end(o, ASSET_E_INVALID, ASSET_STATE_FAILED, "unexpected status (42)");
    asset_handle_t *z = asset_server_spawn(s, NULL, NULL, NULL, NULL);
    tu_expect_end(z, ASSET_E_INVALID, ASSET_STATE_FAILED, "no function");
    /* a mutation survivor: the first message kept, as asset_parse_fail keeps it */
    asset_handle_t *t = asset_server_spawn(s, failing_twice, NULL, NULL, NULL);
    tu_expect_end(t, ASSET_E_PARSE, ASSET_STATE_FAILED, "task://5: task: second");
    asset_handle_release(h);
    asset_handle_release(n);
    asset_handle_release(o);
    asset_handle_release(z);
    asset_handle_release(t);
    asset_server_destroy(s);
}

static asset_status_t gives_up(asset_task_t *t, void *p) {
    (void)p;
    return asset_task_fail(t, ASSET_E_CANCELLED, "the device went away");
}

static asset_status_t odd_with_message(asset_task_t *t, void *p) {
    (void)p;
    return asset_task_fail(t, (asset_status_t)42, "no such mode");
}

static asset_status_t aborts(asset_task_t *t, void *p) {
    (void)t;
    (void)p;
    return ASSET_E_CANCELLED;
}

static void count_uncancelled(int level, const char *msg, void *user) {
    if (level == ASSET_LOG_WARN && strstr(msg, "task://")) atomic_fetch_add((atomic_int *)user, 1);
}

/* Twenty-seventh review: a task that returns ASSET_E_CANCELLED with no cancel asked (it
 * waited for a load another thread cancelled, say) failed on its own: FAILED with the
 * task's failure code, ASSET_E_INVALID, and its message or one that says so, logged and
 * counted failed. It read CANCELLED, not logged, in stats.cancelled. */
static void test_a_task_returning_cancelled_unasked_is_a_failure(void **state) {
    (void)state;
    atomic_int warns = 0;
    asset_server_config_t cfg = {.max_workers = 1, .log = count_uncancelled, .user = &warns};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *g = asset_server_spawn(s, gives_up, NULL, NULL, NULL);
    asset_handle_t *a = asset_server_spawn(s, aborts, NULL, NULL, NULL);
    tu_expect_end(g, ASSET_E_INVALID, ASSET_STATE_FAILED, "task://1: task: the device went away");
    tu_expect_end(a, ASSET_E_INVALID, ASSET_STATE_FAILED,
                  "task://2: task: task returned ASSET_E_CANCELLED; nothing cancelled the task");
    /* as a parse's: the task's own message wins over the number of an odd code */
    asset_handle_t *o = asset_server_spawn(s, odd_with_message, NULL, NULL, NULL);
    tu_expect_end(o, ASSET_E_INVALID, ASSET_STATE_FAILED, "task://3: task: no such mode");
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.cancelled, 0);
    assert_int_equal(st.failed, 3);
    assert_int_equal(atomic_load(&warns), 3);
    asset_handle_release(g);
    asset_handle_release(a);
    asset_handle_release(o);
    asset_server_destroy(s);
}

/* One that returns it once it was cancelled (its handle, or destroy) stays a cancel, not
 * logged: spin_until_cancelled returns ASSET_E_CANCELLED once it sees the flag. */
static asset_status_t spin_until_cancelled(asset_task_t *t, void *p);

static void test_a_task_returning_cancelled_after_its_cancel_stays_cancelled(void **state) {
    (void)state;
    for (int by_destroy = 0; by_destroy < 2; by_destroy++) {
        atomic_int warns = 0;
        asset_server_config_t cfg = {.max_workers = 1, .log = count_uncancelled, .user = &warns};
        asset_server_t *s = asset_server_create(&cfg);
        assert_non_null(s);
        targ_t a;
        targ_init(&a, 1, false);
        asset_handle_t *h = asset_server_spawn(s, spin_until_cancelled, &a, free_arg, NULL);
        uv_sem_wait(&a.started);
        if (!by_destroy) {
            asset_handle_cancel(h);
            assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
            asset_handle_release(h);
        }
        asset_server_destroy(s); /* the handle, still the task's, decided by what fn says */
        assert_true(atomic_load(&a.saw_cancel));
        assert_int_equal(atomic_load(&warns), 0);
        targ_dispose(&a);
    }
}

static void test_task_cancelled_before_it_starts_never_runs(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *busy = asset_server_load(s, "gate://busy", NULL);
    tu_gate_wait_entered(g, 1); /* the only worker is taken */
    targ_t a;
    targ_init(&a, 2, false);
    asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, NULL);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    assert_int_equal(atomic_load(&a.frees), 1); /* freed when it left the queue */
    tu_gate_open(g);
    assert_int_equal(tu_wait(busy), ASSET_OK);
    assert_int_equal(atomic_load(&a.runs), 0);
    asset_handle_release(busy);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_gate_free(g);
    assert_int_equal(atomic_load(&a.frees), 1);
    targ_dispose(&a);
}

static void test_task_cancelled_while_running_sees_the_flag_and_its_value_is_freed(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t a;
    targ_init(&a, 3, true);
    asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, NULL);
    uv_sem_wait(&a.started);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_LOADING);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    uv_sem_post(&a.go);
    asset_server_destroy(s); /* joins the worker: fn has returned */
    assert_true(atomic_load(&a.saw_cancel));
    assert_int_equal(atomic_load(&a.vfrees), 1); /* the unwanted result */
    assert_int_equal(atomic_load(&a.frees), 1);
    targ_dispose(&a);
}

/* Ninth review: a task cancelled while it runs is delivered (CANCELLED) at once; when fn
 * returns later, its free_arg waits for the next flush, but nothing told an event-driven
 * host (one that flushes only when config.wake says so) that a flush had work: the
 * argument (a C++ callable and the handles it holds) stayed until an unrelated event. */
static void count_wake(void *user) { atomic_fetch_add((atomic_int *)user, 1); }

static void test_a_task_over_after_its_cancel_was_delivered_wakes_the_host(void **state) {
    (void)state;
    atomic_int wakes = 0;
    asset_server_config_t cfg = {.max_workers = 1, .wake = count_wake, .user = &wakes};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    targ_t a;
    targ_init(&a, 3, true);
    asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, NULL);
    uv_sem_wait(&a.started);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED); /* delivered: nothing else is queued */
    asset_handle_release(h);
    int before = atomic_load(&wakes);
    uv_sem_post(&a.go);
    /* the host sleeps until woken: the task's end must wake it */
    uint64_t deadline = uv_hrtime() + 10 * 1000000000ull;
    while (atomic_load(&wakes) == before && uv_hrtime() < deadline) uv_sleep(1);
    assert_true(atomic_load(&wakes) > before);
    assert_int_equal(atomic_load(&a.frees), 0); /* not yet: at the flush it asked for */
    asset_server_flush(s);
    assert_int_equal(atomic_load(&a.frees), 1);
    assert_int_equal(atomic_load(&a.vfrees), 1); /* the unwanted result too */
    asset_server_destroy(s);
    targ_dispose(&a);
}

static void test_high_priority_task_runs_before_queued_low_ones(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t blocker, low, high;
    targ_init(&blocker, 1, true);
    targ_init(&low, 2, false);
    targ_init(&high, 3, false);
    atomic_store(&g_order, 0);
    asset_handle_t *b = asset_server_spawn(s, square, &blocker, free_arg, NULL);
    uv_sem_wait(&blocker.started);
    asset_load_options_t lo = {.priority = ASSET_PRIORITY_LOW};
    asset_load_options_t hi = {.priority = ASSET_PRIORITY_HIGH};
    asset_handle_t *l = asset_server_spawn(s, square, &low, free_arg, &lo);
    asset_handle_t *h = asset_server_spawn(s, square, &high, free_arg, &hi);
    uv_sem_post(&blocker.go);
    assert_int_equal(tu_wait(l), ASSET_OK);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(tu_wait(b), ASSET_OK);
    assert_true(high.order_slot < low.order_slot);
    asset_handle_release(b);
    asset_handle_release(l);
    asset_handle_release(h);
    asset_server_destroy(s);
    targ_dispose(&blocker);
    targ_dispose(&low);
    targ_dispose(&high);
}

/* asset_task_uri inside fn is the handle's URI, "task://N" with N counting from 1 per
 * server (a second server's first task is task://1 too); NULL reads as "", and as
 * cancelled. */
typedef struct uri_rec {
    char uri[32];
} uri_rec_t;

static asset_status_t record_uri(asset_task_t *t, void *p) {
    snprintf(((uri_rec_t *)p)->uri, sizeof((uri_rec_t *)p)->uri, "%s", asset_task_uri(t));
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 1;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL); /* NULL free_fn: asset_free */
    return ASSET_OK;
}

static void test_a_task_knows_its_uri_numbered_per_server(void **state) {
    (void)state;
    asset_server_t *a = tu_server(1), *b = tu_server(1);
    uri_rec_t r[3];
    memset(r, 0, sizeof r);
    asset_handle_t *h[3] = {asset_server_spawn(a, record_uri, &r[0], NULL, NULL),
                            asset_server_spawn(a, record_uri, &r[1], NULL, NULL),
                            asset_server_spawn(b, record_uri, &r[2], NULL, NULL)};
    const char *want[3] = {"task://1", "task://2", "task://1"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tu_wait(h[i]), ASSET_OK);
        assert_string_equal(r[i].uri, want[i]);
        assert_string_equal(asset_handle_uri(h[i]), want[i]);
        asset_handle_release(h[i]);
    }
    assert_string_equal(asset_task_uri(NULL), "");
    assert_true(asset_task_cancelled(NULL));
    asset_server_destroy(a);
    asset_server_destroy(b);
}

/* The header: o->priority, o->tag and o->timeout_ms apply to a task, the other options
 * are ignored; a priority that is no ASSET_PRIORITY_* is NORMAL, as for a load. A task
 * queued with a loader that does not exist, map_file, optional... runs (as "task", at
 * NORMAL, introspection says) and its value is not cached. */
static bool see_task(const asset_job_info_t *i, void *user) {
    asset_job_info_t *out = user; /* its numbers: the strings live for the call only */
    if (strcmp(i->uri, "task://2") != 0) return true;
    out->priority = i->priority;
    out->id = !strcmp(i->loader, "task") && !strcmp(i->state, "queued"); /* as asked */
    return true;
}
static bool count_entry(const asset_cache_info_t *i, void *user) {
    (void)i;
    (*(int *)user)++;
    return true;
}

static void test_a_task_ignores_load_only_options_and_an_odd_priority(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t blocker, odd;
    targ_init(&blocker, 1, true);
    targ_init(&odd, 5, false);
    asset_handle_t *b = asset_server_spawn(s, square, &blocker, free_arg, NULL);
    uv_sem_wait(&blocker.started);
    asset_load_options_t o = {.priority = (asset_priority_t)99,
                              .loader = "no-such-loader",
                              .map_file = true,
                              .non_recursive = true,
                              .optional = true};
    asset_handle_t *h = asset_server_spawn(s, square, &odd, free_arg, &o);
    assert_string_equal(asset_handle_uri(h), "task://2");
    asset_job_info_t seen = {0};
    asset_server_foreach_job(s, see_task, &seen);
    assert_int_equal(seen.id, 1);
    assert_int_equal(seen.priority, ASSET_PRIORITY_NORMAL);
    assert_int_equal(asset_handle_set_priority(h, ASSET_PRIORITY_HIGH), ASSET_OK);
    memset(&seen, 0, sizeof seen);
    asset_server_foreach_job(s, see_task, &seen);
    assert_int_equal(seen.priority, ASSET_PRIORITY_HIGH);
    uv_sem_post(&blocker.go);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(*(const int *)asset_handle_value(h), 25);
    int entries = 0;
    asset_server_foreach_cached(s, count_entry, &entries);
    assert_int_equal(entries, 0);
    assert_int_equal(tu_wait(b), ASSET_OK);
    asset_handle_release(b);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&odd.frees), 1);
    assert_int_equal(atomic_load(&odd.vfrees), 1);
    targ_dispose(&blocker);
    targ_dispose(&odd);
}

/* A NULL fn: the handle fails ASSET_E_INVALID and free_arg is called once, as for a
 * task that never runs, by the next flush (not on the calling thread). */
static void test_a_task_without_a_function_frees_its_argument_once(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t a;
    targ_init(&a, 1, false);
    asset_handle_t *h = asset_server_spawn(s, NULL, &a, free_arg, NULL);
    assert_non_null(h);
    assert_int_equal(atomic_load(&a.frees), 0);
    tu_expect_end(h, ASSET_E_INVALID, ASSET_STATE_FAILED, "task://1: invalid task: no function");
    asset_server_flush(s);
    assert_int_equal(atomic_load(&a.frees), 1);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&a.frees), 1);
    assert_int_equal(atomic_load(&a.runs), 0);
    targ_dispose(&a);
}

static void on_done(asset_handle_t *h, void *user) {
    (void)h;
    (*(int *)user)++;
}

/* A cancel after the task's result, before a flush delivered it, still wins (the header:
 * a cancel is a no-op only once the handle is done): CANCELLED with no value, its
 * callback once, and the value the task made freed once, by that flush. */
static void post_woken(void *u) { uv_sem_post(u); }

static void test_a_task_cancelled_after_its_result_before_the_flush_is_cancelled(void **state) {
    (void)state;
    uv_sem_t woken;
    uv_sem_init(&woken, 0);
    asset_server_config_t cfg = {.max_workers = 1, .wake = post_woken, .user = &woken};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    targ_t a;
    targ_init(&a, 4, false);
    asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, NULL);
    int fired = 0;
    assert_true(asset_handle_on_completed(h, on_done, &fired) != 0);
    uv_sem_wait(&woken);                          /* its result is in the completion queue */
    assert_true(asset_handle_progress(h) == 1.f); /* decided, not delivered */
    assert_false(asset_handle_is_done(h));
    asset_handle_cancel(h);
    asset_server_flush(s);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_CANCELLED);
    assert_int_equal(asset_handle_error(h), ASSET_E_CANCELLED);
    assert_null(asset_handle_value(h));
    assert_int_equal(fired, 1);
    assert_int_equal(atomic_load(&a.vfrees), 1);
    assert_int_equal(atomic_load(&a.frees), 1);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.cancelled, 1);
    assert_int_equal(st.completed, 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&a.vfrees), 1);
    assert_int_equal(atomic_load(&a.runs), 1);
    targ_dispose(&a);
    uv_sem_destroy(&woken);
}

/* The header (asset_server_foreach_job): a job every handle left is not listed, also
 * while its worker still runs it; stats.loading counts it until fn returns. */
static bool count_job(const asset_job_info_t *i, void *user) {
    (void)i;
    (*(int *)user)++;
    return true;
}

static void test_a_cancelled_running_task_leaves_the_walk_not_the_stats(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t a;
    targ_init(&a, 2, true);
    asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, NULL);
    uv_sem_wait(&a.started);
    int jobs = 0;
    asset_stats_t st;
    assert_int_equal(asset_server_foreach_job(s, count_job, &jobs), 1);
    asset_handle_cancel(h);
    jobs = 0;
    assert_int_equal(asset_server_foreach_job(s, count_job, &jobs), 0);
    asset_server_stats(s, &st);
    assert_int_equal(st.loading, 1); /* its worker is still taken */
    uv_sem_post(&a.go);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&a.runs), 1);
    assert_true(atomic_load(&a.saw_cancel));
    targ_dispose(&a);
}

static void test_cancel_tag_and_callbacks_work_for_tasks(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t blocker, tagged, other;
    targ_init(&blocker, 1, true);
    targ_init(&tagged, 2, false);
    targ_init(&other, 3, false);
    asset_handle_t *b = asset_server_spawn(s, square, &blocker, free_arg, NULL);
    uv_sem_wait(&blocker.started);
    asset_load_options_t tag = {.tag = "bake"};
    asset_handle_t *t = asset_server_spawn(s, square, &tagged, free_arg, &tag);
    asset_handle_t *o = asset_server_spawn(s, square, &other, free_arg, NULL);
    int fired_t = 0, fired_o = 0;
    assert_true(asset_handle_on_completed(t, on_done, &fired_t) != 0);
    assert_true(asset_handle_on_completed(o, on_done, &fired_o) != 0);
    assert_int_equal(asset_server_cancel_tag(s, "bake", NULL), 1);
    uv_sem_post(&blocker.go);
    assert_int_equal(tu_wait(t), ASSET_E_CANCELLED);
    assert_int_equal(tu_wait(o), ASSET_OK);
    asset_server_flush(s);
    assert_int_equal(fired_t, 1);
    assert_int_equal(fired_o, 1);
    assert_int_equal(atomic_load(&tagged.runs), 0);
    assert_int_equal(tu_wait(b), ASSET_OK);
    asset_handle_release(b);
    asset_handle_release(t);
    asset_handle_release(o);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&tagged.frees), 1);
    targ_dispose(&blocker);
    targ_dispose(&tagged);
    targ_dispose(&other);
}

/* The deadline runs from the spawn, so a slow machine (valgrind) may let it pass before
 * the worker starts the task, which is then dropped unrun. Each attempt checks what
 * happened either way; the deadline grows until one attempt times out a running task. */
static void test_task_timeout_fails_it_and_the_late_result_is_dropped(void **state) {
    (void)state;
    bool ran_late = false;
    for (uint32_t timeout_ms = 20; !ran_late && timeout_ms <= 20000; timeout_ms *= 10) {
        asset_server_t *s = tu_server(1);
        targ_t a;
        targ_init(&a, 4, true);
        asset_load_options_t o = {.timeout_ms = timeout_ms};
        asset_handle_t *h = asset_server_spawn(s, square, &a, free_arg, &o);
        assert_int_equal(tu_wait(h), ASSET_E_TIMEOUT); /* fn, if it started, is blocked */
        assert_non_null(strstr(asset_handle_error_message(h), "task://1: timed out"));
        uv_sem_post(&a.go);
        asset_handle_release(h);
        asset_server_destroy(s);
        ran_late = atomic_load(&a.runs) == 1;
        assert_int_equal(atomic_load(&a.saw_cancel), ran_late);
        assert_int_equal(atomic_load(&a.vfrees), ran_late); /* the late value: freed */
        assert_int_equal(atomic_load(&a.frees), 1);
        targ_dispose(&a);
    }
    assert_true(ran_late);
}

static asset_status_t spin_until_cancelled(asset_task_t *t, void *p) {
    targ_t *a = p;
    atomic_fetch_add(&a->runs, 1);
    uv_sem_post(&a->started);
    /* bounded: destroy sets the flag long before this runs out */
    for (long i = 0; i < 2000000000L && !asset_task_cancelled(t); i++) uv_sleep(0);
    atomic_store(&a->saw_cancel, asset_task_cancelled(t));
    return asset_task_fail(t, ASSET_E_CANCELLED, "stopped");
}

static void test_destroy_cancels_running_tasks_and_frees_queued_ones(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    targ_t run, queued;
    targ_init(&run, 1, false);
    targ_init(&queued, 2, false);
    asset_handle_t *r = asset_server_spawn(s, spin_until_cancelled, &run, free_arg, NULL);
    uv_sem_wait(&run.started);
    asset_handle_t *q = asset_server_spawn(s, square, &queued, free_arg, NULL);
    assert_non_null(r);
    assert_non_null(q);
    asset_server_destroy(s); /* frees the handles too */
    assert_true(atomic_load(&run.saw_cancel));
    assert_int_equal(atomic_load(&run.frees), 1);
    assert_int_equal(atomic_load(&queued.runs), 0);
    assert_int_equal(atomic_load(&queued.frees), 1);
    targ_dispose(&run);
    targ_dispose(&queued);
}

/* Sixteenth review: destroy runs the free_args of the tasks it drops without the lock; one
 * that calls the library on the server being destroyed: a spawn or a load gets a handle
 * that fails with ASSET_E_SHUTDOWN (the spawned task's own free_arg runs once, in that
 * destroy), a wait returns ASSET_E_SHUTDOWN, a flush delivers nothing. A destroy there
 * destroyed the server under the destroy running it (abort, or ASan: use after free):
 * refused now (ASSET_E_BUSY, logged), as in a flush's free_arg. */
typedef struct indestroy {
    asset_server_t *s;
    targ_t late; /* the task the free_arg spawns */
    asset_status_t spawn_waited, load_waited, destroyed;
    size_t flushed;
    atomic_int errors, calls;
} indestroy_t;

static void indestroy_log(int level, const char *msg, void *user) {
    (void)msg;
    if (level == ASSET_LOG_ERROR) atomic_fetch_add(&((indestroy_t *)user)->errors, 1);
}

static void indestroy_free_arg(void *arg) {
    indestroy_t *f = arg;
    atomic_fetch_add(&f->calls, 1);
    asset_handle_t *t = asset_server_spawn(f->s, square, &f->late, free_arg, NULL);
    asset_handle_t *h = asset_server_load(f->s, "mem://late", NULL);
    f->spawn_waited = asset_handle_wait(t, 10000);
    f->load_waited = asset_handle_wait(h, 10000);
    f->flushed = asset_server_flush(f->s);
    asset_handle_release(t);
    asset_handle_release(h);
    f->destroyed = asset_server_try_destroy(f->s);
}

static void test_free_arg_in_destroy_may_call_the_library_but_not_destroy(void **state) {
    (void)state;
    indestroy_t f = {.flushed = 99, .destroyed = ASSET_E_INVALID};
    targ_init(&f.late, 3, false);
    asset_server_config_t cfg = {.log = indestroy_log, .user = &f, .max_workers = 1};
    f.s = asset_server_create(&cfg);
    assert_int_equal(asset_mem_put(f.s, "late", "x", 1), ASSET_OK);
    targ_t run;
    targ_init(&run, 1, false);
    asset_handle_t *r = asset_server_spawn(f.s, spin_until_cancelled, &run, free_arg, NULL);
    uv_sem_wait(&run.started);
    asset_handle_t *q = asset_server_spawn(f.s, square, &f, indestroy_free_arg, NULL);
    assert_non_null(r);
    assert_non_null(q);
    asset_server_destroy(f.s); /* q never ran: its free_arg runs here */
    assert_int_equal(atomic_load(&f.calls), 1);
    assert_int_equal(atomic_load(&f.late.runs), 0);
    assert_int_equal(atomic_load(&f.late.frees), 1);
    assert_int_equal(f.spawn_waited, ASSET_E_SHUTDOWN);
    assert_int_equal(f.load_waited, ASSET_E_SHUTDOWN);
    assert_int_equal(f.flushed, 0);
    assert_int_equal(f.destroyed, ASSET_E_BUSY);
    assert_true(atomic_load(&f.errors) >= 1); /* the destroy, logged */
    targ_dispose(&run);
    targ_dispose(&f.late);
}

/* A task's value whose free spawns a task and loads (the header: it may call the library,
 * as free_arg may). Freed in destroy (its handle still held there), after the last drain of
 * ended tasks: the new task's free_arg was never called, and it and the handles leaked. */
typedef struct spawner {
    asset_server_t *s;
    targ_t inner;
    asset_status_t spawned, loaded; /* the statuses the free saw */
} spawner_t;

static void spawn_in_free(void *v, void *user) {
    spawner_t *sp = user;
    asset_free(v);
    asset_handle_t *h = asset_server_spawn(sp->s, square, &sp->inner, free_arg, NULL);
    sp->spawned = h ? asset_handle_wait(h, 0) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
    h = asset_server_load(sp->s, "mem://x", NULL);
    sp->loaded = h ? asset_handle_wait(h, 0) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
}

static asset_status_t value_spawning_on_free(asset_task_t *t, void *arg) {
    int *v = asset_alloc(sizeof *v);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "no memory for the result");
    *v = 1;
    asset_task_set_value(t, v, sizeof *v, spawn_in_free, arg);
    return ASSET_OK;
}

static void test_a_task_value_freed_in_destroy_may_spawn(void **state) {
    (void)state;
    spawner_t sp = {.s = tu_server(1), .spawned = ASSET_OK, .loaded = ASSET_OK};
    targ_init(&sp.inner, 2, false);
    asset_handle_t *h = asset_server_spawn(sp.s, value_spawning_on_free, &sp, NULL, NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    (void)h; /* still held: destroy frees the value */
    asset_server_destroy(sp.s);
    assert_int_equal(sp.spawned, ASSET_E_SHUTDOWN);
    assert_int_equal(sp.loaded, ASSET_E_SHUTDOWN);
    assert_int_equal(atomic_load(&sp.inner.runs), 0);
    assert_int_equal(atomic_load(&sp.inner.frees), 1); /* exactly once, in that destroy */
    targ_dispose(&sp.inner);
}

/* A loader's parse that spawns a task and waits for it, then loads through a user
 * source and waits (a parse runs on a worker, as a task does): with one worker, each
 * waited for the worker the parse held, and the wait ran out (ASSET_E_TIMEOUT), as a
 * task's wait for a task did before it ran it. */
typedef struct parse_waits {
    asset_server_t *s;
    targ_t a;
    asset_status_t waited;
} parse_waits_t;

/* A user source: a wait on the test's thread does not run its read (and parse), which
 * stay the worker's; mem://'s would run there, and the task on the free worker. */
static asset_status_t plain_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    return asset_request_write(r, "x", 1);
}

static asset_status_t parse_waiting_for_a_task(void *ctx, asset_parse_t *p) {
    parse_waits_t *pw = ctx;
    asset_handle_t *h = asset_server_spawn(pw->s, square, &pw->a, NULL, NULL);
    pw->waited = h ? asset_handle_wait(h, 20000) : ASSET_E_NO_MEMORY;
    int *v = asset_alloc(sizeof *v);
    *v = pw->waited == ASSET_OK ? *(const int *)asset_handle_value(h) : -1;
    asset_handle_release(h);
    /* and a load through a user source, whose read only a worker runs */
    h = asset_server_load(pw->s, "plain://y.bin", NULL);
    asset_status_t loaded = h ? asset_handle_wait(h, 20000) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
    if (pw->waited == ASSET_OK) pw->waited = loaded;
    asset_parse_set_value(p, v, sizeof *v);
    return pw->waited;
}

static void test_a_parse_waiting_for_a_task_it_spawned_runs_it(void **state) {
    (void)state;
    parse_waits_t pw = {.s = tu_server(1), .waited = ASSET_E_INVALID};
    if (pw.s->nworkers == 0) { /* the single-threaded web build: parses run in the flush */
        asset_server_destroy(pw.s);
        skip();
    }
    targ_init(&pw.a, 9, false);
    static const char *const suf[] = {".wait", NULL};
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "waiter",
                         .suffixes = suf,
                         .parse = parse_waiting_for_a_task};
    assert_int_equal(asset_server_register_loader(pw.s, &ld, &pw, 0), ASSET_OK);
    static const asset_source_t plain = {ASSET_SOURCE_ABI, "plain", 0, plain_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(pw.s, &plain, NULL), ASSET_OK);
    asset_handle_t *h = asset_server_load(pw.s, "plain://x.wait", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK); /* flushes: the task's result reaches the parse */
    assert_int_equal(pw.waited, ASSET_OK);
    assert_int_equal(*(const int *)asset_handle_value(h), 81);
    asset_handle_release(h);
    asset_server_destroy(pw.s);
    targ_dispose(&pw.a);
}

/* ---- a task that finishes an ASYNC source's request ----
 * asset_request_finish may be called from any thread; with the bytes loader it parses
 * right there. On a pool worker busy with a task, that must not hand the worker one of
 * the server's queued jobs to run after the task: of another server (which it would run
 * as its own server's), or of its own (which the task may then wait for). */

typedef struct parked {
    uv_sem_t read; /* the async source's read returned PENDING */
    asset_request_t *r;
} parked_t;

static asset_status_t park_read(void *ctx, asset_request_t *r) {
    parked_t *p = ctx;
    p->r = r;
    uv_sem_post(&p->read);
    return ASSET_PENDING;
}

static void parked_source(asset_server_t *s, parked_t *p) {
    memset(p, 0, sizeof *p);
    assert_int_equal(uv_sem_init(&p->read, 0), 0);
    const asset_source_t src = {
        .abi = ASSET_SOURCE_ABI, .scheme = "async", .flags = ASSET_SOURCE_ASYNC, .read = park_read};
    assert_int_equal(asset_server_register_source(s, &src, p), ASSET_OK);
}

typedef struct finisher {
    parked_t *p;
    uv_sem_t in, go;          /* the task started; the test let it go on */
    asset_handle_t *wait_for; /* then waits for it (NULL: none) */
    asset_status_t waited;
} finisher_t;

static asset_status_t finish_parked(asset_task_t *t, void *arg) {
    finisher_t *f = arg;
    uv_sem_post(&f->in);
    uv_sem_wait(&f->go);
    assert_int_equal(asset_request_write(f->p->r, "async", 5), ASSET_OK);
    asset_request_finish(f->p->r, ASSET_OK); /* parsed here, on this worker */
    if (f->wait_for) f->waited = asset_handle_wait(f->wait_for, 60000); /* run-on-wait */
    asset_task_set_value(t, NULL, 0, NULL, NULL);
    return ASSET_OK;
}

static void test_a_task_finishing_a_request_takes_no_queued_job_of_another_server(void **state) {
    (void)state;
    asset_server_t *a = tu_server(1), *b = tu_server(1);
    parked_t p;
    parked_source(b, &p);
    tu_gate_t *gate = tu_gate_register(b, "gate");
    assert_int_equal(asset_mem_put(b, "z", "zzz", 3), ASSET_OK);
    asset_handle_t *h1 = asset_server_load(b, "async://x", NULL);
    uv_sem_wait(&p.read);
    asset_handle_t *h2 = asset_server_load(b, "gate://y", NULL);
    tu_gate_wait_entered(gate, 1);                              /* b's only worker is busy */
    asset_handle_t *h3 = asset_server_load(b, "mem://z", NULL); /* queued on b */
    finisher_t f = {.p = &p};
    uv_sem_init(&f.in, 0);
    uv_sem_init(&f.go, 0);
    uv_sem_post(&f.go);
    asset_handle_t *t = asset_server_spawn(a, finish_parked, &f, NULL, NULL);
    assert_int_equal(tu_wait(t), ASSET_OK);
    tu_gate_open(gate);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_int_equal(tu_wait(h3), ASSET_OK);
    tu_expect_bytes(h3, "zzz", 3);
    asset_server_flush(a);
    asset_stats_t sa, sb;
    asset_server_stats(a, &sa);
    asset_server_stats(b, &sb);
    assert_int_equal(sa.loading, 0); /* a's worker ran none of b's jobs as a's */
    assert_int_equal(sb.loading, 0);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(t);
    asset_server_destroy(a);
    asset_server_destroy(b); /* ASan: b's jobs all freed by b, once */
    tu_gate_free(gate);
    uv_sem_destroy(&f.in);
    uv_sem_destroy(&f.go);
    uv_sem_destroy(&p.read);
}

static void test_a_task_finishing_a_request_can_then_wait_for_a_queued_load(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    parked_t p;
    parked_source(s, &p);
    assert_int_equal(asset_mem_put(s, "z", "zzz", 3), ASSET_OK);
    asset_handle_t *h1 = asset_server_load(s, "async://x", NULL);
    uv_sem_wait(&p.read);
    finisher_t f = {.p = &p};
    uv_sem_init(&f.in, 0);
    uv_sem_init(&f.go, 0);
    asset_handle_t *t = asset_server_spawn(s, finish_parked, &f, NULL, NULL);
    uv_sem_wait(&f.in);                                 /* the only worker runs the task */
    f.wait_for = asset_server_load(s, "mem://z", NULL); /* queued */
    uv_sem_post(&f.go);
    assert_int_equal(asset_handle_wait(t, 60000), ASSET_OK);
    assert_int_equal(f.waited, ASSET_OK); /* it ran the queued load itself */
    assert_int_equal(tu_wait(h1), ASSET_OK);
    tu_expect_bytes(f.wait_for, "zzz", 3);
    asset_handle_release(f.wait_for);
    asset_handle_release(h1);
    asset_handle_release(t);
    asset_server_destroy(s);
    uv_sem_destroy(&f.in);
    uv_sem_destroy(&f.go);
    uv_sem_destroy(&p.read);
}

/* free_arg may call the library: here it releases a handle of the same server that
 * the task's argument held (a C++ callable capturing a Handle does so). It ran with
 * the server's lock held, on the worker, and deadlocked in asset_handle_release. */
typedef struct holder {
    asset_handle_t *h;
    atomic_int released;
} holder_t;

static void release_held(void *arg) {
    holder_t *k = arg;
    asset_handle_release(k->h);
    atomic_fetch_add(&k->released, 1);
}

static asset_status_t set_one(asset_task_t *t, void *arg) {
    (void)arg;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 1;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    return ASSET_OK;
}

/* free_arg "may call the library ... except destroy this server" (the header): a flush
 * runs it inside its flush, where a flush is refused and a wait for a handle not done is
 * ASSET_E_BUSY, as in a completion callback. */
typedef struct inflush {
    asset_server_t *s;
    size_t flushed;
    asset_status_t waited;
    atomic_int errors, calls;
} inflush_t;

static void inflush_log(int level, const char *msg, void *user) {
    (void)msg;
    if (level == ASSET_LOG_ERROR) atomic_fetch_add(&((inflush_t *)user)->errors, 1);
}

static void inflush_free_arg(void *arg) {
    inflush_t *f = arg;
    atomic_fetch_add(&f->calls, 1);
    asset_handle_t *h = asset_server_load(f->s, "mem://late", NULL);
    f->flushed = asset_server_flush(f->s);
    f->waited = asset_handle_wait(h, 10000);
    asset_handle_release(h);
}

static void test_free_arg_at_a_flush_may_not_flush_or_wait(void **state) {
    (void)state;
    inflush_t f = {.flushed = 99, .waited = ASSET_E_INVALID};
    asset_server_config_t cfg = {.log = inflush_log, .user = &f};
    f.s = asset_server_create(&cfg);
    assert_int_equal(asset_mem_put(f.s, "late", "x", 1), ASSET_OK);
    asset_handle_t *h = asset_server_spawn(f.s, set_one, &f, inflush_free_arg, NULL);
    assert_int_equal(asset_handle_wait(h, -1), ASSET_OK);
    asset_server_flush(f.s); /* free_arg has run by now */
    assert_int_equal(atomic_load(&f.calls), 1);
    assert_int_equal(f.flushed, 0);              /* refused, */
    assert_int_equal(atomic_load(&f.errors), 1); /* logged */
    assert_int_equal(f.waited, ASSET_E_BUSY);
    asset_handle_release(h);
    asset_server_destroy(f.s);
}

static void test_free_arg_may_release_a_handle_of_its_server(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "k", "k", 1), ASSET_OK);
    holder_t ran = {.h = tu_load_wait(s, "mem://k", ASSET_OK)};
    asset_handle_t *t = asset_server_spawn(s, set_one, &ran, release_held, NULL);
    assert_int_equal(tu_wait(t), ASSET_OK); /* hung before */
    asset_server_flush(s);
    assert_int_equal(atomic_load(&ran.released), 1);
    /* and for a task that never runs: cancelled while queued behind a busy worker */
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *busy = asset_server_load(s, "gate://busy", NULL);
    tu_gate_wait_entered(g, 1);
    holder_t never = {.h = tu_load_wait(s, "mem://k", ASSET_OK)};
    asset_handle_t *t2 = asset_server_spawn(s, set_one, &never, release_held, NULL);
    asset_handle_cancel(t2);
    assert_int_equal(tu_wait(t2), ASSET_E_CANCELLED);
    assert_int_equal(atomic_load(&never.released), 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(busy), ASSET_OK);
    /* and one destroy frees unrun */
    tu_gate_t *g2 = tu_gate_register(s, "gate2");
    asset_handle_t *busy2 = asset_server_load(s, "gate2://busy", NULL);
    tu_gate_wait_entered(g2, 1);
    holder_t dropped = {.h = tu_load_wait(s, "mem://k", ASSET_OK)};
    asset_handle_t *t3 = asset_server_spawn(s, set_one, &dropped, release_held, NULL);
    (void)t3;
    asset_handle_release(busy);
    asset_handle_release(t2);
    asset_handle_release(t);
    tu_gate_open(g2);
    (void)busy2;
    asset_server_destroy(s); /* t3 may run or be dropped: its free_arg runs either way */
    assert_int_equal(atomic_load(&dropped.released), 1);
    tu_gate_free(g);
    tu_gate_free(g2);
}

/* A task that waits for a load ends its wait with ASSET_E_SHUTDOWN when the server is
 * destroyed: the load will never be delivered, and destroy joins the task's worker
 * (it hung there for good: found by a review). */
typedef struct waiter {
    asset_server_t *s;
    uv_sem_t started;
    asset_status_t rc;
} waiter_t;

static asset_status_t waiting_task(asset_task_t *t, void *p) {
    waiter_t *w = p;
    asset_handle_t *h = asset_server_load(w->s, "gate://never", NULL);
    uv_sem_post(&w->started);
    w->rc = asset_handle_wait(h, -1);
    asset_handle_release(h);
    return asset_task_fail(t, w->rc, "its load ended");
}

static void test_destroy_ends_a_tasks_wait(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 2};
    waiter_t w = {.rc = ASSET_OK};
    w.s = asset_server_create(&cfg);
    tu_gate_t *g = tu_gate_register(w.s, "gate");
    assert_int_equal(uv_sem_init(&w.started, 0), 0);
    asset_handle_t *th = asset_server_spawn(w.s, waiting_task, &w, NULL, NULL);
    assert_non_null(th);
    uv_sem_wait(&w.started);
    tu_gate_wait_entered(g, 1); /* its load is running: only destroy ends it */
    asset_handle_release(th);
    asset_server_destroy(w.s);
    assert_int_equal(w.rc, ASSET_E_SHUTDOWN);
    uv_sem_destroy(&w.started);
    tu_gate_free(g);
}

/* Thirty-eighth review: a task cancelled (asset_handle_cancel, cancel_tag) or timed out
 * while its fn waited (asset_handle_wait, asset_batch_wait) for a load of its server that
 * was still running went on waiting: the task's handle was delivered CANCELLED or
 * E_TIMEOUT, but its worker stayed held until that load ended (for ever with -1, and
 * loads queued behind it waited). Decision: such a wait ends with ASSET_E_CANCELLED once
 * the task is cancelled (asset_task_cancelled() true); the load it waited for goes on. */
typedef struct held {
    asset_server_t *s;
    const char *uri;
    bool batch; /* asset_batch_wait on a group of uri, not asset_handle_wait */
    uv_mutex_t mu;
    uv_cond_t cond;
    int phase; /* 1: about to wait, 2: the wait returned */
    asset_status_t rc;
    bool saw_cancel;
} held_t;

static void held_set(held_t *w, int phase) {
    uv_mutex_lock(&w->mu);
    w->phase = phase;
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->mu);
}

static asset_status_t task_waiting_for_ever(asset_task_t *t, void *p) {
    held_t *w = p;
    asset_status_t rc;
    held_set(w, 1);
    if (w->batch) {
        asset_batch_t *b = asset_server_load_group(w->s, &w->uri, 1, NULL);
        rc = asset_batch_wait(b, -1);
        asset_batch_release(b);
    } else {
        asset_handle_t *h = asset_server_load(w->s, w->uri, NULL);
        rc = asset_handle_wait(h, -1);
        asset_handle_release(h);
    }
    uv_mutex_lock(&w->mu);
    w->rc = rc;
    w->saw_cancel = asset_task_cancelled(t);
    w->phase = 2;
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->mu);
    return rc;
}

/* how = 0: asset_handle_cancel, 1: asset_server_cancel_tag, 2: the task's timeout.
 * Returns whether the task ran (a timeout may drop it unrun on a slow machine). */
static bool held_wait_ends(asset_server_t *s, bool batch, int how, uint32_t timeout_ms) {
    held_t w = {.s = s, .uri = "gate://slow", .batch = batch, .rc = ASSET_OK};
    uv_mutex_init(&w.mu);
    uv_cond_init(&w.cond);
    asset_load_options_t o = {.tag = "bake", .timeout_ms = how == 2 ? timeout_ms : 0};
    asset_handle_t *th = asset_server_spawn(s, task_waiting_for_ever, &w, NULL, &o);
    assert_non_null(th);
    if (how != 2) {
        uv_mutex_lock(&w.mu);
        TU_WAIT_UNTIL(w.phase >= 1, &w.cond, &w.mu);
        uv_mutex_unlock(&w.mu);
        if (how == 0)
            asset_handle_cancel(th);
        else
            assert_int_equal(asset_server_cancel_tag(s, "bake", NULL), 1);
    }
    assert_int_equal(tu_wait(th), how == 2 ? ASSET_E_TIMEOUT : ASSET_E_CANCELLED);
    uv_mutex_lock(&w.mu);
    bool ran = w.phase >= 1;
    if (ran) TU_WAIT_UNTIL(w.phase == 2, &w.cond, &w.mu); /* it hung here */
    uv_mutex_unlock(&w.mu);
    if (ran) {
        assert_int_equal(w.rc, ASSET_E_CANCELLED);
        assert_true(w.saw_cancel);
    }
    /* the worker is free again: a task queued now runs (the other one holds the read) */
    targ_t a;
    targ_init(&a, 3, false);
    asset_handle_t *sq = asset_server_spawn(s, square, &a, free_arg, NULL);
    assert_int_equal(tu_wait(sq), ASSET_OK);
    assert_int_equal(*(const int *)asset_handle_value(sq), 9);
    asset_handle_release(sq);
    asset_handle_release(th);
    asset_server_flush(s); /* the free_arg */
    assert_int_equal(atomic_load(&a.frees), 1);
    targ_dispose(&a);
    uv_cond_destroy(&w.cond);
    uv_mutex_destroy(&w.mu);
    return ran;
}

static void test_a_tasks_wait_ends_when_the_task_is_cancelled_or_times_out(void **state) {
    (void)state;
    for (int batch = 0; batch < 2; batch++) {
        asset_server_t *s = tu_server(2);
        tu_gate_t *g = tu_gate_register(s, "gate");
        /* the load the task waits for, its read held on the other worker (a task's wait
         * would run a queued read itself) */
        asset_handle_t *slow = asset_server_load(s, "gate://slow", NULL);
        tu_gate_wait_entered(g, 1);
        assert_true(held_wait_ends(s, batch, 0, 0));
        assert_true(held_wait_ends(s, batch, 1, 0));
        bool ran = false; /* the deadline runs from the spawn: it may pass before fn runs */
        for (uint32_t ms = 20; !ran && ms <= 20000; ms *= 10) ran = held_wait_ends(s, batch, 2, ms);
        assert_true(ran);
        assert_false(asset_handle_is_done(slow)); /* the load it waited for goes on */
        tu_gate_open(g);
        assert_int_equal(tu_wait(slow), ASSET_OK);
        asset_handle_release(slow);
        asset_server_destroy(s);
        tu_gate_free(g);
    }
}
/* A loader's parse (for a load of its own, or a dependency it declared), a source's
 * read, and an ASYNC source's read that finished its request itself, each waiting with
 * no timeout for a load held elsewhere (a gated read on the other worker, or a stalled
 * HTTP transfer): the cancel of the load they run for (a cancel, its tag's, its timeout)
 * ends the wait with ASSET_E_CANCELLED, as a cancelled task's does. The worker stayed
 * held until the load waited for ended: for ever, for a stalled transfer. The load
 * waited for goes on. */
typedef struct job_wait {
    asset_server_t *s;
    const char *dep;
    uv_mutex_t mu;
    uv_cond_t cond;
    int phase; /* 1: about to wait, 2: the wait returned */
    asset_status_t rc;
} job_wait_t;

/* p: the parse declares the load a dependency (its handle the parent's), else loads it */
static asset_status_t job_wait_block(job_wait_t *w, asset_parse_t *p) {
    uv_mutex_lock(&w->mu);
    w->phase = 1;
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->mu);
    asset_handle_t *h =
        p ? asset_parse_depend(p, w->dep, NULL) : asset_server_load(w->s, w->dep, NULL);
    asset_status_t rc = h ? asset_handle_wait(h, -1) : ASSET_E_NO_MEMORY;
    if (!p) asset_handle_release(h);
    uv_mutex_lock(&w->mu);
    w->rc = rc;
    w->phase = 2;
    uv_cond_broadcast(&w->cond);
    uv_mutex_unlock(&w->mu);
    return rc;
}

static asset_status_t job_wait_parse(void *ctx, asset_parse_t *p) {
    asset_status_t rc = job_wait_block(ctx, strstr(asset_parse_uri(p), ".dep.") ? p : NULL);
    if (rc != ASSET_OK) return rc;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 1;
    asset_parse_set_value(p, v, sizeof *v);
    return ASSET_OK;
}

static asset_status_t job_wait_read(void *ctx, asset_request_t *r) {
    asset_status_t rc = job_wait_block(ctx, NULL);
    return rc != ASSET_OK ? rc : asset_request_write(r, "x", 1);
}

static asset_status_t job_wait_read_finished(void *ctx, asset_request_t *r) {
    asset_status_t rc = asset_request_write(r, "x", 1);
    asset_request_finish(r, rc); /* its job is not freed while this read runs */
    (void)job_wait_block(ctx, NULL);
    return ASSET_PENDING;
}

/* kind 0: the parse waits, 1: the read, 2: the ASYNC read after its finish, 3: the parse
 * waits for a dependency it declared.
 * how 0: asset_handle_cancel, 1: asset_server_cancel_tag, 2: the load's timeout of ms.
 * Returns whether the wait began (a timeout may end the load before). */
static bool job_wait_ends(job_wait_t *w, int kind, int how, uint32_t ms, int n) {
    static const char *const fmt[] = {"mem://w%d.jobwait", "jobwait://w%d", "jobwaita://w%d",
                                      "mem://w%d.dep.jobwait"};
    char uri[64];
    snprintf(uri, sizeof uri, fmt[kind], n);
    if (kind == 0 || kind == 3) assert_int_equal(asset_mem_put(w->s, uri + 6, "x", 1), ASSET_OK);
    uv_mutex_lock(&w->mu);
    w->phase = 0;
    w->rc = ASSET_OK;
    uv_mutex_unlock(&w->mu);
    asset_load_options_t o = {.tag = "outer", .timeout_ms = how == 2 ? ms : 0};
    asset_handle_t *h = asset_server_load(w->s, uri, &o);
    assert_non_null(h);
    if (how != 2) {
        uv_mutex_lock(&w->mu);
        TU_WAIT_UNTIL(w->phase >= 1, &w->cond, &w->mu);
        uv_mutex_unlock(&w->mu);
        if (how == 0)
            asset_handle_cancel(h);
        else
            assert_int_equal(asset_server_cancel_tag(w->s, "outer", NULL), 1);
    }
    assert_int_equal(tu_wait(h), how == 2 ? ASSET_E_TIMEOUT : ASSET_E_CANCELLED);
    asset_handle_release(h);
    uv_mutex_lock(&w->mu);
    bool began = w->phase >= 1;
    if (began) TU_WAIT_UNTIL(w->phase == 2, &w->cond, &w->mu); /* it hung here */
    uv_mutex_unlock(&w->mu);
    if (began) assert_int_equal(w->rc, ASSET_E_CANCELLED);
    return began;
}

static void test_a_parse_or_reads_wait_ends_when_its_load_is_cancelled(void **state) {
    (void)state;
    tu_bad_t *bad = tu_bad_start(); /* NULL on the web: the stalled transfer's case left out */
    char *stall = bad ? tu_bad_url(bad, "/stall") : NULL;
    for (int http = 0; http < (bad ? 2 : 1); http++) {
        job_wait_t w = {.s = tu_server(2), .dep = http ? stall : "gate://held"};
        if (w.s->nworkers == 0) { /* the wait must sleep while the read is held */
            asset_server_destroy(w.s);
            free(stall);
            if (bad) tu_bad_stop(bad);
            skip();
            return;
        }
        uv_mutex_init(&w.mu);
        uv_cond_init(&w.cond);
        static const char *const suf[] = {".jobwait", NULL};
        asset_loader_t ld = {
            .abi = ASSET_LOADER_ABI, .name = "jobwait", .suffixes = suf, .parse = job_wait_parse};
        assert_int_equal(asset_server_register_loader(w.s, &ld, &w, 0), ASSET_OK);
        asset_source_t src = {ASSET_SOURCE_ABI, "jobwait", 0, job_wait_read, NULL, NULL};
        assert_int_equal(asset_server_register_source(w.s, &src, &w), ASSET_OK);
        asset_source_t asrc = {ASSET_SOURCE_ABI,       "jobwaita", ASSET_SOURCE_ASYNC,
                               job_wait_read_finished, NULL,       NULL};
        assert_int_equal(asset_server_register_source(w.s, &asrc, &w), ASSET_OK);
        tu_gate_t *g = tu_gate_register(w.s, "gate");
        /* the load waited for, its read held on the other worker (a wait inside a job
         * would run a queued read itself) */
        asset_handle_t *held = asset_server_load(w.s, "gate://held", NULL);
        tu_gate_wait_entered(g, 1);
        int n = 0;
        for (int kind = 0; kind < 4; kind++) {
            for (int how = 0; how < 2; how++) assert_true(job_wait_ends(&w, kind, how, 0, n++));
            bool began = false;
            for (uint32_t ms = 20; !began && ms <= 20000; ms *= 10)
                began = job_wait_ends(&w, kind, 2, ms, n++);
            assert_true(began);
        }
        assert_false(asset_handle_is_done(held)); /* the load waited for goes on */
        tu_gate_open(g);
        assert_int_equal(tu_wait(held), ASSET_OK);
        asset_handle_release(held);
        asset_server_destroy(w.s);
        tu_gate_free(g);
        uv_cond_destroy(&w.cond);
        uv_mutex_destroy(&w.mu);
    }
    free(stall);
    if (bad) tu_bad_stop(bad);
}
/* A task that spawns a task and waits for it, on the server's only worker: the wait
 * runs the queued task itself, as it runs a queued local load (it waited for a worker
 * that it held: for ever, with no timeout). Two levels deep. */
typedef struct nest {
    asset_server_t *s;
    int depth;
    asset_status_t rc;
    uv_thread_t main;
    atomic_int on_main; /* tasks run on the test's thread: never */
} nest_t;

static asset_status_t nested_task(asset_task_t *t, void *arg) {
    nest_t *n = arg;
    uv_thread_t self = uv_thread_self();
    if (uv_thread_equal(&self, &n->main)) atomic_fetch_add(&n->on_main, 1);
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 0;
    if (n->depth < 2) {
        n->depth++;
        asset_handle_t *in = asset_server_spawn(n->s, nested_task, n, NULL, NULL);
        n->rc = asset_handle_wait(in, 10000);
        if (n->rc == ASSET_OK) *v = *(const int *)asset_handle_value(in) + 1;
        asset_handle_release(in);
    }
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    return ASSET_OK;
}

static void test_a_task_waiting_for_a_task_it_spawned_runs_it(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1};
    nest_t n = {.s = asset_server_create(&cfg), .rc = ASSET_E_INVALID};
    assert_non_null(n.s);
    n.main = uv_thread_self();
    asset_handle_t *h = asset_server_spawn(n.s, nested_task, &n, NULL, NULL);
    assert_int_equal(asset_handle_wait(h, -1), ASSET_OK);
    assert_int_equal(n.rc, ASSET_OK); /* E_TIMEOUT before, after 10 s */
    assert_int_equal(*(const int *)asset_handle_value(h), 2);
    assert_int_equal(atomic_load(&n.on_main), 0);
    asset_handle_release(h);
    asset_server_destroy(n.s);
}

/* A task (or a parse, or a read) that flushed its server made its worker the flush
 * thread: the flush thread's wait for that task then took itself for another thread,
 * slept until a flush that only it would run, and returned at its timeout (for ever with
 * none). Such a flush is refused, as one from a callback is, and logged. */
typedef struct flusher {
    asset_server_t *s;
    size_t flushed;
} flusher_t;

static asset_status_t flushing_task(asset_task_t *t, void *arg) {
    flusher_t *f = arg;
    f->flushed = asset_server_flush(f->s);
    int *v = asset_alloc(sizeof *v);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "no memory for the result");
    *v = 3;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    return ASSET_OK;
}

static void test_a_flush_inside_a_task_is_refused(void **state) {
    (void)state;
    flusher_t f = {.s = tu_server(1), .flushed = 99};
    asset_server_flush(f.s); /* this thread is the flush thread */
    asset_handle_t *a = asset_server_load(f.s, "mem://nothing", NULL); /* queued results */
    asset_handle_t *h = asset_server_spawn(f.s, flushing_task, &f, NULL, NULL);
    assert_non_null(h);
    assert_int_equal(asset_handle_wait(h, 30000), ASSET_OK); /* generous: it never came */
    assert_int_equal(f.flushed, 0);
    assert_int_equal(*(const int *)asset_handle_value(h), 3);
    assert_int_equal(asset_handle_wait(a, 30000), ASSET_E_NOT_FOUND);
    asset_handle_release(a);
    asset_handle_release(h);
    asset_server_destroy(f.s);
}

/* A task that waits for its own handle (handed to it through its argument) waits for
 * itself: its handle is decided only once fn returns. It slept until its timeout ran out,
 * for ever with none (destroy alone ended it). Like a wait inside a callback, it is
 * refused: ASSET_E_BUSY at once; so is the wait of a task it runs itself (run-on-wait),
 * on the outer task's handle. */
typedef struct selfwait {
    asset_server_t *s;
    asset_handle_t *self; /* the outer task's handle */
    uv_sem_t ready;       /* self is set */
    asset_status_t rc, inner_rc;
    int depth;
} selfwait_t;

static asset_status_t selfwait_task(asset_task_t *t, void *arg) {
    selfwait_t *w = arg;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 7;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    if (w->depth++ == 0) {
        uv_sem_wait(&w->ready);
        w->rc = asset_handle_wait(w->self, 5000);
        /* one it spawns, run by its wait here, waits for the outer one */
        asset_handle_t *in = asset_server_spawn(w->s, selfwait_task, w, NULL, NULL);
        if (asset_handle_wait(in, 10000) != ASSET_OK) w->inner_rc = ASSET_E_IO;
        asset_handle_release(in);
    } else {
        w->inner_rc = asset_handle_wait(w->self, 5000);
    }
    return ASSET_OK;
}

static void test_a_task_waiting_for_its_own_handle_is_refused(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1};
    selfwait_t w = {.rc = ASSET_E_INVALID, .inner_rc = ASSET_E_INVALID};
    w.s = asset_server_create(&cfg);
    assert_non_null(w.s);
    assert_int_equal(uv_sem_init(&w.ready, 0), 0);
    w.self = asset_server_spawn(w.s, selfwait_task, &w, NULL, NULL);
    assert_non_null(w.self);
    uv_sem_post(&w.ready);
    assert_int_equal(asset_handle_wait(w.self, -1), ASSET_OK);
    assert_int_equal(w.rc, ASSET_E_BUSY);       /* E_TIMEOUT before, after 5 s */
    assert_int_equal(w.inner_rc, ASSET_E_BUSY); /* the same */
    assert_int_equal(*(const int *)asset_handle_value(w.self), 7);
    asset_handle_release(w.self);
    asset_server_destroy(w.s);
    uv_sem_destroy(&w.ready);
}

/* A parse, or a user source's read, that loads its own URI and waits for it: the load
 * joins the job this very thread runs, which ends only once the wait returns. Refused
 * at once, as a task's wait for its own handle (it slept until its timeout: for ever
 * with none). Also a batch with such a child. */
typedef struct own_wait {
    asset_server_t *s;
    asset_status_t parse_rc, parse_batch_rc, read_rc;
} own_wait_t;

static asset_status_t own_wait_parse(void *ctx, asset_parse_t *p) {
    own_wait_t *w = ctx;
    const char *uri = asset_parse_uri(p);
    asset_handle_t *h = asset_server_load(w->s, uri, NULL);
    w->parse_rc = h ? asset_handle_wait(h, 3000) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
    asset_batch_t *b = asset_server_load_group(w->s, &uri, 1, NULL);
    w->parse_batch_rc = b ? asset_batch_wait(b, 3000) : ASSET_E_NO_MEMORY;
    asset_batch_release(b);
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 5;
    asset_parse_set_value(p, v, sizeof *v);
    return ASSET_OK;
}

static asset_status_t own_wait_read(void *ctx, asset_request_t *r) {
    own_wait_t *w = ctx;
    asset_handle_t *h = asset_server_load(w->s, asset_request_uri(r), NULL);
    w->read_rc = h ? asset_handle_wait(h, 3000) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
    return asset_request_write(r, "x", 1);
}

static void test_a_parse_or_read_waiting_for_its_own_uri_is_refused(void **state) {
    (void)state;
    own_wait_t w = {.s = tu_server(2),
                    .parse_rc = ASSET_E_INVALID,
                    .parse_batch_rc = ASSET_E_INVALID,
                    .read_rc = ASSET_E_INVALID};
    static const char *const suf[] = {".self", NULL};
    asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = "selfwait", .suffixes = suf, .parse = own_wait_parse};
    assert_int_equal(asset_server_register_loader(w.s, &ld, &w, 0), ASSET_OK);
    static const asset_source_t own = {ASSET_SOURCE_ABI, "own", 0, own_wait_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(w.s, &own, &w), ASSET_OK);
    assert_int_equal(asset_mem_put(w.s, "a.self", "x", 1), ASSET_OK);
    asset_handle_t *h = asset_server_load(w.s, "mem://a.self", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(w.parse_rc, ASSET_E_BUSY);       /* E_TIMEOUT before, after 3 s */
    assert_int_equal(w.parse_batch_rc, ASSET_E_BUSY); /* the same */
    assert_int_equal(*(const int *)asset_handle_value(h), 5);
    asset_handle_release(h);
    h = asset_server_load(w.s, "own://b.bin", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(w.read_rc, ASSET_E_BUSY); /* E_TIMEOUT before */
    asset_handle_release(h);
    asset_server_destroy(w.s);
}

/* A task that loads through a user source and waits, on the server's only worker: the
 * wait runs the read itself, on this worker, as the worker it holds would have (it
 * waited for that worker: E_TIMEOUT here, for ever with no timeout). */
typedef struct usrc_wait {
    asset_server_t *s;
    asset_status_t rc;
    size_t size;
    uv_thread_t main;
    atomic_int reads, reads_on_main;
} usrc_wait_t;

static asset_status_t usrc_read(void *ctx, asset_request_t *r) {
    usrc_wait_t *w = ctx;
    uv_thread_t self = uv_thread_self();
    atomic_fetch_add(&w->reads, 1);
    if (uv_thread_equal(&self, &w->main)) atomic_fetch_add(&w->reads_on_main, 1);
    return asset_request_write(r, "[1, 2, 3]", 9);
}

static asset_status_t usrc_task(asset_task_t *t, void *arg) {
    usrc_wait_t *w = arg;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 1;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    asset_handle_t *h = asset_server_load(w->s, "usrc://list.json", NULL);
    w->rc = asset_handle_wait(h, 10000);
    if (w->rc == ASSET_OK) w->size = asset_handle_size(h);
    asset_handle_release(h);
    return ASSET_OK;
}

static void test_a_task_waiting_for_a_user_source_load_runs_its_read(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1};
    usrc_wait_t w = {.s = asset_server_create(&cfg), .rc = ASSET_E_INVALID};
    assert_non_null(w.s);
    w.main = uv_thread_self();
    asset_source_t src = {ASSET_SOURCE_ABI, "usrc", 0, usrc_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(w.s, &src, &w), ASSET_OK);
    asset_handle_t *h = asset_server_spawn(w.s, usrc_task, &w, NULL, NULL);
    assert_int_equal(asset_handle_wait(h, -1), ASSET_OK);
    assert_int_equal(w.rc, ASSET_OK); /* E_TIMEOUT before, after 10 s */
    assert_true(w.size > 0);
    assert_int_equal(atomic_load(&w.reads), 1);
    assert_int_equal(atomic_load(&w.reads_on_main), 0); /* user code: never this thread */
    asset_handle_release(h);
    asset_server_destroy(w.s);
}

/* A task that loads a folder and a manifest and waits for each, on the server's only
 * worker: the listing and the manifest are no children of their batches, and the wait
 * ran only children, so each waited for the worker the task holds (E_TIMEOUT, for ever
 * with no timeout). The wait runs them too; the flush thread (this test's wait) makes
 * the children, which the task's wait then runs. */
typedef struct batch_wait {
    asset_server_t *s;
    asset_status_t folder_rc, manifest_rc;
    size_t folder_loaded, manifest_loaded;
} batch_wait_t;

static asset_status_t batch_wait_task(asset_task_t *t, void *arg) {
    batch_wait_t *w = arg;
    asset_task_set_value(t, NULL, 0, NULL, NULL);
    asset_batch_t *b = asset_server_load_folder(w->s, "mem://dir", NULL);
    w->folder_rc = b ? asset_batch_wait(b, 10000) : ASSET_E_NO_MEMORY;
    w->folder_loaded = asset_batch_completed_count(b);
    asset_batch_release(b);
    b = asset_server_load_manifest(w->s, "mem://m.json", NULL);
    w->manifest_rc = b ? asset_batch_wait(b, 10000) : ASSET_E_NO_MEMORY;
    w->manifest_loaded = asset_batch_completed_count(b);
    asset_batch_release(b);
    return ASSET_OK;
}

static void test_a_task_waiting_for_a_folder_or_manifest_runs_its_listing(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1};
    batch_wait_t w = {.s = asset_server_create(&cfg),
                      .folder_rc = ASSET_E_INVALID,
                      .manifest_rc = ASSET_E_INVALID};
    assert_non_null(w.s);
    assert_int_equal(asset_mem_put(w.s, "dir/a", "1", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(w.s, "dir/b", "2", 1), ASSET_OK);
    const char *m = "[\"dir/a\", \"dir/b\"]";
    assert_int_equal(asset_mem_put(w.s, "m.json", m, strlen(m)), ASSET_OK);
    asset_handle_t *h = asset_server_spawn(w.s, batch_wait_task, &w, NULL, NULL);
    asset_status_t rc = asset_handle_wait(h, -1);
    if (rc != ASSET_OK) fail_msg("the task: %s", asset_handle_error_message(h));
    assert_int_equal(w.folder_rc, ASSET_OK); /* E_TIMEOUT before, after 10 s */
    assert_int_equal(w.folder_loaded, 2);
    assert_int_equal(w.manifest_rc, ASSET_OK); /* the same */
    assert_int_equal(w.manifest_loaded, 2);
    asset_handle_release(h);
    asset_server_destroy(w.s);
}

/* The same over HTTP with the json loader, on the only worker: the task's wait starts
 * the read (a worker's part), the I/O thread transfers, and the parse comes back to be
 * run: by the waiting task, which must hear of it (nothing else would wake it). */
typedef struct http_wait {
    asset_server_t *s;
    char *url;
    asset_status_t rc;
    int count;
} http_wait_t;

static asset_status_t http_task(asset_task_t *t, void *arg) {
    http_wait_t *w = arg;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 1;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    asset_load_options_t o = {0};
    o.loader = "json";
    asset_handle_t *h = asset_server_load(w->s, w->url, &o);
    w->rc = asset_handle_wait(h, 10000);
    if (w->rc == ASSET_OK) w->count = cJSON_GetArraySize(asset_handle_value(h));
    asset_handle_release(h);
    return ASSET_OK;
}

static void test_a_task_waiting_for_an_http_load_runs_its_start_and_parse(void **state) {
    (void)state;
    tu_nginx_t ng;
    if (!tu_nginx_start(&ng)) {
        skip();
        return;
    }
    free(tu_write_file(ng.root, "list.json", "[1, 2, 3, 4]", 12));
    asset_server_config_t cfg = {.max_workers = 1};
    http_wait_t w = {.s = asset_server_create(&cfg), .rc = ASSET_E_INVALID};
    assert_non_null(w.s);
    w.url = tu_nginx_url(&ng, "list.json");
    asset_handle_t *h = asset_server_spawn(w.s, http_task, &w, NULL, NULL);
    assert_int_equal(asset_handle_wait(h, -1), ASSET_OK);
    assert_int_equal(w.rc, ASSET_OK); /* E_TIMEOUT before, after 10 s */
    assert_int_equal(w.count, 4);
    asset_handle_release(h);
    asset_server_destroy(w.s);
    free(w.url);
    tu_nginx_stop(&ng);
}

/* A budgeted flush called the free_arg of every task ended since the last flush, however
 * long they took (a C++ callable and what it captured, each): all 8 here, in a flush of
 * a 1 ns budget. Like the values only this thread frees, they stop once the budget is
 * spent (one at least, so none starves); the rest wait for the next flush, and the host
 * is woken for them (a review). */
#define BUDGET_TASKS 8
static atomic_int g_budget_frees;
static void budget_free_arg(void *p) {
    (void)p;
    atomic_fetch_add(&g_budget_frees, 1);
}
static asset_status_t no_value_task(asset_task_t *t, void *p) {
    (void)t;
    (void)p;
    return ASSET_E_INVALID; /* its free_arg is what counts */
}

/* Spawns n tasks that end at once (their free_arg counted) into h, and waits until each
 * ended: its handle decided, in the critical section that queues its free_arg. */
static void spawn_ended(asset_server_t *s, asset_handle_t **h, int n) {
    for (int i = 0; i < n; i++) {
        h[i] = asset_server_spawn(s, no_value_task, NULL, budget_free_arg, NULL);
        assert_non_null(h[i]);
    }
    uint64_t deadline = uv_hrtime() + 60 * 1000000000ull;
    for (int i = 0; i < n; i++) {
        for (;;) {
            uv_mutex_lock(&s->lock);
            bool decided = h[i]->decided;
            uv_mutex_unlock(&s->lock);
            if (decided || uv_hrtime() > deadline) break;
            tu_os_yield();
        }
    }
}

static void test_a_budgeted_flush_runs_free_args_within_its_budget(void **state) {
    (void)state;
    atomic_int wakes = 0;
    asset_server_config_t cfg = {.max_workers = 1, .wake = count_wake, .user = &wakes};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    atomic_store(&g_budget_frees, 0);
    asset_handle_t *h[2 * BUDGET_TASKS];
    spawn_ended(s, h, BUDGET_TASKS); /* none flushed yet */
    assert_int_equal(atomic_load(&g_budget_frees), 0);
    int before = atomic_load(&wakes);
    asset_server_flush_budget(s, 1); /* spent at once: one free_arg, not all */
    assert_int_equal(atomic_load(&g_budget_frees), 1);
    assert_true(atomic_load(&wakes) > before); /* the host hears of the rest */
    /* more end while those wait: one a flush still, the last left one's too (under a
     * mutation, the flush that ran it ran one of these as well, past its budget) */
    spawn_ended(s, h + BUDGET_TASKS, BUDGET_TASKS);
    for (int i = 1; i < 2 * BUDGET_TASKS; i++) {
        asset_server_flush_budget(s, 1);
        assert_int_equal(atomic_load(&g_budget_frees), i + 1); /* one each, none lost */
    }
    for (int i = 0; i < 2 * BUDGET_TASKS; i++) asset_handle_release(h[i]);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&g_budget_frees), 2 * BUDGET_TASKS); /* none twice */
}

/* Destroy runs the free_args a budgeted flush left for a later one (under a mutation,
 * it ran only those that ended since: the argument of each left task was never freed). */
static void test_destroy_runs_the_free_args_a_budgeted_flush_left(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    atomic_store(&g_budget_frees, 0);
    asset_handle_t *h[BUDGET_TASKS];
    spawn_ended(s, h, BUDGET_TASKS);
    asset_server_flush_budget(s, 1);
    assert_int_equal(atomic_load(&g_budget_frees), 1);
    for (int i = 0; i < BUDGET_TASKS; i++) asset_handle_release(h[i]);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&g_budget_frees), BUDGET_TASKS);
}

/* A task that recorded a message (asset_task_fail) and returned ASSET_OK with no value
 * fails with that message (under a mutation, "the task set no value" replaced it, and
 * it leaked). */
static asset_status_t said_then_ok(asset_task_t *t, void *p) {
    (void)p;
    (void)asset_task_fail(t, ASSET_E_PARSE, "no input given");
    return ASSET_OK;
}

static void test_a_task_with_no_value_keeps_its_own_message(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_handle_t *h = asset_server_spawn(s, said_then_ok, NULL, NULL, NULL);
    tu_expect_end(h, ASSET_E_INVALID, ASSET_STATE_FAILED, "task://1: task: no input given");
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* (no defect: coverage) a task that releases its own handle (the only reference) inside
 * fn, and 2,000 queued tasks of which half are cancelled by tag and a quarter raised and
 * released while queued: each free_arg runs once, each value set is freed once, the
 * cancelled never run. */
typedef struct selfarg {
    asset_handle_t *self;
    atomic_int runs, frees, vfrees;
    uv_sem_t go;
} selfarg_t;
static void self_free_arg(void *p) { atomic_fetch_add(&((selfarg_t *)p)->frees, 1); }
static void self_free_value(void *v, void *user) {
    atomic_fetch_add(&((selfarg_t *)user)->vfrees, 1);
    asset_free(v);
}
static asset_status_t releases_itself(asset_task_t *t, void *p) {
    selfarg_t *a = p;
    atomic_fetch_add(&a->runs, 1);
    uv_sem_wait(&a->go);
    asset_handle_release(a->self);
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_task_set_value(t, v, sizeof *v, self_free_value, a);
    return ASSET_OK;
}
static asset_status_t small_task(asset_task_t *t, void *p) {
    selfarg_t *a = p;
    atomic_fetch_add(&a->runs, 1);
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_task_set_value(t, v, sizeof *v, self_free_value, a);
    return ASSET_OK;
}
static void test_tasks_releasing_and_cancelled_by_thousands_free_once(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    selfarg_t a;
    memset(&a, 0, sizeof a);
    uv_sem_init(&a.go, 0);
    a.self = asset_server_spawn(s, releases_itself, &a, self_free_arg, NULL);
    enum { N = 2000 };
    static asset_handle_t *hs[N];
    for (int i = 0; i < N; i++) {
        asset_load_options_t o = {0};
        o.tag = i % 2 ? "odd" : "even";
        o.priority = ASSET_PRIORITY_LOW;
        hs[i] = asset_server_spawn(s, small_task, &a, self_free_arg, &o);
        assert_non_null(hs[i]);
    }
    /* the released ones raised: they run before those waited for below (one worker) */
    for (int i = 2; i < N; i += 4) asset_handle_set_priority(hs[i], ASSET_PRIORITY_HIGH);
    assert_int_equal(asset_server_cancel_tag(s, "odd", NULL), N / 2);
    for (int i = 2; i < N; i += 4) {
        asset_handle_release(hs[i]);
        hs[i] = NULL;
    }
    uv_sem_post(&a.go);
    for (int i = 0; i < N; i++)
        if (hs[i]) {
            asset_status_t st = tu_wait(hs[i]);
            assert_int_equal(st, i % 2 ? ASSET_E_CANCELLED : ASSET_OK);
            asset_handle_release(hs[i]);
        }
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&a.runs), N / 2 + 1);
    assert_int_equal(atomic_load(&a.frees), N + 1);
    assert_int_equal(atomic_load(&a.vfrees), N / 2 + 1);
    uv_sem_destroy(&a.go);
}

/* A parse that waits for a dependency it declared runs that dependency's queued parse on
 * its own thread (run-on-wait); that parse waits for a stalled transfer. The cancel of
 * the outer load now cancels the dependencies its parse declared (nothing else wants
 * them): the inner wait ends, then the outer one. Both stayed held for ever (the inner
 * job was not cancelled: the outer parse's handle on it was let go only once that parse
 * returned). late: the parse declares its dependency only after its load was cancelled,
 * which then never starts. */
typedef struct casc {
    asset_server_t *s;
    const char *stall;
    bool late;
    uv_mutex_t mu;
    uv_cond_t cond;
    int entered, left;
    bool go;
    asset_status_t rc[2]; /* the inner and the outer wait's */
} casc_t;

static asset_status_t casc_parse(void *ctx, asset_parse_t *p) {
    casc_t *c = ctx;
    bool top = strstr(asset_parse_uri(p), "p.casc") != NULL;
    uv_mutex_lock(&c->mu);
    c->entered++;
    uv_cond_broadcast(&c->cond);
    if (top && c->late) TU_WAIT_UNTIL(c->go, &c->cond, &c->mu);
    uv_mutex_unlock(&c->mu);
    asset_handle_t *h =
        top ? asset_parse_depend(p, "mem://d.casc", NULL) : asset_server_load(c->s, c->stall, NULL);
    asset_status_t rc = h ? asset_handle_wait(h, -1) : ASSET_E_NO_MEMORY;
    if (!top) asset_handle_release(h);
    uv_mutex_lock(&c->mu);
    c->rc[top] = rc;
    c->left++;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->mu);
    if (rc != ASSET_OK) return rc;
    int *v = asset_alloc(sizeof *v);
    if (!v) return ASSET_E_NO_MEMORY;
    *v = 1;
    asset_parse_set_value(p, v, sizeof *v);
    return ASSET_OK;
}

static void test_a_cancelled_parse_stops_the_dependency_its_wait_runs(void **state) {
    (void)state;
    tu_bad_t *bad = tu_bad_start();
    if (!bad) { /* the web build: no misbehaving server to stall the transfer */
        skip();
        return;
    }
    char *stall = tu_bad_url(bad, "/stall");
    for (int late = 0; late < 2; late++) {
        casc_t c = {.s = tu_server(2), .stall = stall, .late = late};
        if (c.s->nworkers == 0) { /* the parses wait for a transfer on other threads */
            asset_server_destroy(c.s);
            free(stall);
            tu_bad_stop(bad);
            skip();
            return;
        }
        uv_mutex_init(&c.mu);
        uv_cond_init(&c.cond);
        static const char *const suf[] = {".casc", NULL};
        asset_loader_t ld = {
            .abi = ASSET_LOADER_ABI, .name = "casc", .suffixes = suf, .parse = casc_parse};
        assert_int_equal(asset_server_register_loader(c.s, &ld, &c, 0), ASSET_OK);
        assert_int_equal(asset_mem_put(c.s, "p.casc", "x", 1), ASSET_OK);
        assert_int_equal(asset_mem_put(c.s, "d.casc", "x", 1), ASSET_OK);
        asset_handle_t *h = asset_server_load(c.s, "mem://p.casc", NULL);
        assert_non_null(h);
        uv_mutex_lock(&c.mu);
        TU_WAIT_UNTIL(c.entered == (late ? 1 : 2), &c.cond, &c.mu);
        uv_mutex_unlock(&c.mu);
        if (!late) tu_bad_wait_stalled(bad); /* the inner wait's transfer: no body comes */
        asset_handle_cancel(h);
        assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
        uv_mutex_lock(&c.mu);
        c.go = true;
        uv_cond_broadcast(&c.cond);
        TU_WAIT_UNTIL(c.left == c.entered, &c.cond, &c.mu); /* it hung here */
        uv_mutex_unlock(&c.mu);
        assert_int_equal(c.entered, late ? 1 : 2); /* late: the dependency never parsed */
        assert_int_equal(c.rc[1], ASSET_E_CANCELLED);
        if (!late) assert_int_equal(c.rc[0], ASSET_E_CANCELLED);
        asset_handle_release(h);
        asset_server_destroy(c.s);
        uv_cond_destroy(&c.cond);
        uv_mutex_destroy(&c.mu);
    }
    free(stall);
    tu_bad_stop(bad);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_task_result_becomes_the_handle_value),
        cmocka_unit_test(test_a_task_setting_the_same_value_twice_keeps_it),
        cmocka_unit_test(test_task_failure_names_the_task_and_why),
        cmocka_unit_test(test_a_task_returning_cancelled_unasked_is_a_failure),
        cmocka_unit_test(test_a_task_returning_cancelled_after_its_cancel_stays_cancelled),
        cmocka_unit_test(test_task_cancelled_before_it_starts_never_runs),
        cmocka_unit_test(test_task_cancelled_while_running_sees_the_flag_and_its_value_is_freed),
        cmocka_unit_test(test_a_task_over_after_its_cancel_was_delivered_wakes_the_host),
        cmocka_unit_test(test_a_value_set_again_frees_the_one_it_replaces),
        cmocka_unit_test(test_a_budgeted_flush_runs_free_args_within_its_budget),
        cmocka_unit_test(test_destroy_runs_the_free_args_a_budgeted_flush_left),
        cmocka_unit_test(test_a_task_with_no_value_keeps_its_own_message),
        cmocka_unit_test(test_tasks_releasing_and_cancelled_by_thousands_free_once),
        cmocka_unit_test(test_a_task_knows_its_uri_numbered_per_server),
        cmocka_unit_test(test_a_task_ignores_load_only_options_and_an_odd_priority),
        cmocka_unit_test(test_a_task_without_a_function_frees_its_argument_once),
        cmocka_unit_test(test_a_task_cancelled_after_its_result_before_the_flush_is_cancelled),
        cmocka_unit_test(test_a_cancelled_running_task_leaves_the_walk_not_the_stats),
        cmocka_unit_test(test_high_priority_task_runs_before_queued_low_ones),
        cmocka_unit_test(test_cancel_tag_and_callbacks_work_for_tasks),
        cmocka_unit_test(test_task_timeout_fails_it_and_the_late_result_is_dropped),
        cmocka_unit_test(test_destroy_cancels_running_tasks_and_frees_queued_ones),
        cmocka_unit_test(test_free_arg_in_destroy_may_call_the_library_but_not_destroy),
        cmocka_unit_test(test_a_task_value_freed_in_destroy_may_spawn),
        cmocka_unit_test(test_a_parse_waiting_for_a_task_it_spawned_runs_it),
        cmocka_unit_test(test_a_task_finishing_a_request_takes_no_queued_job_of_another_server),
        cmocka_unit_test(test_a_task_finishing_a_request_can_then_wait_for_a_queued_load),
        cmocka_unit_test(test_free_arg_may_release_a_handle_of_its_server),
        cmocka_unit_test(test_free_arg_at_a_flush_may_not_flush_or_wait),
        cmocka_unit_test(test_destroy_ends_a_tasks_wait),
        cmocka_unit_test(test_a_tasks_wait_ends_when_the_task_is_cancelled_or_times_out),
        cmocka_unit_test(test_a_parse_or_reads_wait_ends_when_its_load_is_cancelled),
        cmocka_unit_test(test_a_cancelled_parse_stops_the_dependency_its_wait_runs),
        cmocka_unit_test(test_a_task_waiting_for_a_task_it_spawned_runs_it),
        cmocka_unit_test(test_a_task_waiting_for_its_own_handle_is_refused),
        cmocka_unit_test(test_a_flush_inside_a_task_is_refused),
        cmocka_unit_test(test_a_parse_or_read_waiting_for_its_own_uri_is_refused),
        cmocka_unit_test(test_a_task_waiting_for_a_user_source_load_runs_its_read),
        cmocka_unit_test(test_a_task_waiting_for_a_folder_or_manifest_runs_its_listing),
        cmocka_unit_test(test_a_task_waiting_for_an_http_load_runs_its_start_and_parse),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
