/* test_web_features.c - hot reload on the web build (docs/web.md, "Limits"), which
 * test_reload (file watching) does not reach: config.watch cannot see a file change
 * there, and says so in the log; asset_server_reload() and the replacement of a mem://
 * key (asset_mem_put) reload as on desktop. And a trace, the log and tasks, whose own
 * suites run in the pthreads mode only. Built twice: _st single-threaded with
 * -sASYNCIFY (the I/O "thread" is the JS event loop: the waits below turn it with
 * emscripten_sleep(1)), _mt with pthreads. */
#include "test_util.h"
#include "tu_os.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <emscripten/emscripten.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The WARN lines of the log, joined by newlines (the log may be called on any thread,
 * with the server's lock held). */
static uv_mutex_t g_log_lock;
static char g_warns[4096];

static void log_warns(int level, const char *msg, void *user) {
    (void)user;
    if (level != ASSET_LOG_WARN) return;
    uv_mutex_lock(&g_log_lock);
    size_t n = strlen(g_warns);
    snprintf(g_warns + n, sizeof g_warns - n, "%s\n", msg);
    uv_mutex_unlock(&g_log_lock);
}

static bool warned(const char *part) {
    uv_mutex_lock(&g_log_lock);
    bool yes = strstr(g_warns, part) != NULL;
    uv_mutex_unlock(&g_log_lock);
    return yes;
}

/* Flushes s and lets the event loop turn (single-threaded: the only way the I/O turns
 * run) until cond holds, bounded (TU_SPIN_MS) */
#ifdef __EMSCRIPTEN_PTHREADS__
#define TURN() tu_os_yield()
#else
#define TURN() emscripten_sleep(1)
#endif
#define FLUSH_TURN_UNTIL(s, cond) TU_SPIN_UNTIL((cond) || (asset_server_flush(s), TURN(), (cond)))

static void count_reload(asset_handle_t *h, void *user) {
    (void)h;
    ++*(int *)user;
}

/* A server (config.watch as asked, the log to log_warns) and, in dir, one.txt holding
 * "one", whose file:// URI goes to *uri (free() it) */
static asset_server_t *server_with_one(bool watch, const char *dir, char **uri) {
    char *path = tu_write_file(dir, "one.txt", "one", 3);
    *uri = tu_file_uri(path);
    free(path);
    asset_server_config_t cfg = {.watch = watch, .log = log_warns};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    return s;
}

/* config.watch on the web: no file watching and no polling (uv_fs_event and uv_fs_poll
 * are ENOSYS). The asset loads; the log says that its directory cannot be watched and
 * that the file's changes are not seen (docs/web.md said "without a word"); nothing is
 * counted as watched. */
static void test_watch_on_the_web_says_changes_are_not_seen(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *uri;
    g_warns[0] = 0;
    asset_server_t *s = server_with_one(true, dir, &uri);
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    FLUSH_TURN_UNTIL(s, asset_handle_is_done(h));
    tu_expect_text(h, "one");
    FLUSH_TURN_UNTIL(s, warned("changes of them are not seen"));
    print_message("%s", g_warns);
    assert_true(warned("watch: cannot watch"));
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.watches, 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    free(uri);
    tu_rmrf(dir);
    free(dir);
}

static void set_flag(void *arg) { atomic_store((atomic_bool *)arg, true); }

/* How many WARN lines hold part. */
static int warned_times(const char *part) {
    uv_mutex_lock(&g_log_lock);
    int n = 0;
    for (const char *p = g_warns; (p = strstr(p, part)); p += strlen(part)) n++;
    uv_mutex_unlock(&g_log_lock);
    return n;
}

/* The log on the web does not say a directory's files are polled: one line for the
 * directory says they cannot be polled either, and its files add none. It said
 * "cannot watch <dir> (...): polling its files every 100 ms", then "cannot poll <path>"
 * for each file (and tried each poll again every second). */
static void test_watch_on_the_web_does_not_say_it_polls(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *uri;
    g_warns[0] = 0;
    asset_server_t *s = server_with_one(true, dir, &uri);
    char *two = tu_write_file(dir, "two.txt", "two", 3);
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    asset_handle_t *h2 = asset_server_load(s, two, NULL);
    FLUSH_TURN_UNTIL(s, asset_handle_is_done(h) && asset_handle_is_done(h2));
    tu_expect_text(h2, "two");
    FLUSH_TURN_UNTIL(s, warned("changes of them are not seen"));
    /* the I/O thread ran both files' watches (posted before this) */
    atomic_bool reached = false;
    assert_true(tu_io_post(s, set_flag, &reached));
    FLUSH_TURN_UNTIL(s, atomic_load(&reached));
    print_message("%s", g_warns);
    assert_true(warned("its files cannot be polled either"));
    assert_false(warned("polling its files"));
    assert_int_equal(warned_times("watch: "), 1);
    asset_handle_release(h);
    asset_handle_release(h2);
    asset_server_destroy(s);
    free(two);
    free(uri);
    tu_rmrf(dir);
    free(dir);
}

/* asset_server_reload() needs no file watching: a changed file reloads, its callback
 * fires and the handle reads the new bytes (with config.watch off and on). */
static void test_asset_server_reload_reloads_a_file_on_the_web(void **state) {
    (void)state;
    for (int watch = 0; watch < 2; watch++) {
        char *dir = tu_mkdtemp(), *uri;
        asset_server_t *s = server_with_one(watch, dir, &uri);
        asset_handle_t *h = asset_server_load(s, uri, NULL);
        FLUSH_TURN_UNTIL(s, asset_handle_is_done(h));
        tu_expect_text(h, "one");
        int reloads = 0;
        asset_handle_on_reloaded(h, count_reload, &reloads);
        free(tu_write_file(dir, "one.txt", "two!", 4));
        asset_server_reload(s, uri);
        FLUSH_TURN_UNTIL(s, reloads == 1);
        assert_int_equal(asset_handle_reload_error(h), ASSET_OK);
        tu_expect_text(h, "two!");
        assert_int_equal(asset_handle_version(h), 2);
        asset_handle_release(h);
        asset_server_destroy(s);
        free(uri);
        tu_rmrf(dir);
        free(dir);
    }
}

/* A mem:// key that asset_mem_put replaces reloads its live handles (config.watch). */
static void test_a_replaced_mem_key_reloads_on_the_web(void **state) {
    (void)state;
    asset_server_config_t cfg = {.watch = true};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    assert_int_equal(asset_mem_put(s, "k.txt", "one", 3), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "mem://k.txt", NULL);
    FLUSH_TURN_UNTIL(s, asset_handle_is_done(h));
    tu_expect_text(h, "one");
    int reloads = 0;
    asset_handle_on_reloaded(h, count_reload, &reloads);
    assert_int_equal(asset_mem_put(s, "k.txt", "two!", 4), ASSET_OK);
    FLUSH_TURN_UNTIL(s, reloads == 1);
    tu_expect_text(h, "two!");
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void free_value(void *value, void *user) {
    (void)user;
    free(value);
}

static asset_status_t task_value(asset_task_t *t, void *arg) {
    (void)arg;
    char *v = malloc(6);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "out of memory");
    memcpy(v, "tasks", 6);
    asset_task_set_value(t, v, 6, free_value, NULL);
    return ASSET_OK;
}

/* A trace hook, the log and a task, as on desktop: the task's value, a failed load's WARN
 * line, and both in the trace written to a file. */
static void test_a_trace_the_log_and_a_task_work_on_the_web(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *missing = tu_path(dir, "missing.txt");
    char *uri = tu_file_uri(missing);
    g_warns[0] = 0;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_server_config_t cfg = {.log = log_warns, .trace = asset_trace_record, .trace_user = tr};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *t = asset_server_spawn(s, task_value, NULL, NULL, NULL);
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    FLUSH_TURN_UNTIL(s, asset_handle_is_done(t) && asset_handle_is_done(h));
    assert_int_equal(asset_handle_error(t), ASSET_OK);
    assert_string_equal(asset_handle_value(t), "tasks");
    assert_int_equal(asset_handle_error(h), ASSET_E_NOT_FOUND);
    assert_true(warned("load failed: "));
    assert_true(warned("missing.txt"));
    asset_handle_release(t);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_true(asset_trace_count(tr) > 0);
    char *json = tu_path(dir, "trace.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, json), ASSET_OK);
    asset_trace_destroy(tr);
    FILE *f = fopen(json, "rb");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    assert_non_null(strstr(text, "task://1"));
    assert_non_null(strstr(text, "missing.txt"));
    free(json);
    free(uri);
    free(missing);
    tu_rmrf(dir);
    free(dir);
}

/* How many of h[0..n) are done. */
static int done_count(asset_handle_t *const *h, int n) {
    int done = 0;
    for (int i = 0; i < n; i++) done += asset_handle_is_done(h[i]);
    return done;
}

static atomic_int g_woken;

static void wake_flag(void *user) {
    (void)user;
    atomic_store(&g_woken, 1);
}

/* A host that flushes only when config.wake says so, with a small budget
 * (asset_server_flush_budget): single-threaded, the flush runs the queued jobs, at least
 * one; those the budget leaves must wake the host for the next flush, as the header says
 * of the work a budget leaves ("config.wake is called"), or they wait for an unrelated
 * event. Here six local loads, a budget of 1 ns; and the same with tasks, whose end
 * woke the host anyway (their free_args are work of the flush thread). */
static void budgeted_host_gets_every_job(bool tasks) {
    char *dir = tu_mkdtemp();
    asset_server_config_t cfg = {.wake = wake_flag};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    atomic_store(&g_woken, 0);
    asset_handle_t *h[6];
    char name[16], text[16];
    for (int i = 0; i < 6; i++) {
        if (tasks) {
            h[i] = asset_server_spawn(s, task_value, NULL, NULL, NULL);
            continue;
        }
        snprintf(name, sizeof name, "f%d.txt", i);
        snprintf(text, sizeof text, "file %d", i);
        char *path = tu_write_file(dir, name, text, strlen(text));
        char *uri = tu_file_uri(path);
        h[i] = asset_server_load(s, uri, NULL);
        free(uri);
        free(path);
    }
    /* the host's loop: a flush of 1 ns when woken, else back to the event loop (10 s) */
    double end = emscripten_get_now() + 10000;
    while (done_count(h, 6) < 6 && emscripten_get_now() < end) {
        if (atomic_exchange(&g_woken, 0)) asset_server_flush_budget(s, 1);
        TURN();
    }
    assert_int_equal(done_count(h, 6), 6);
    for (int i = 0; i < 6; i++) {
        snprintf(text, sizeof text, "file %d", i);
        if (tasks)
            assert_string_equal(asset_handle_value(h[i]), "tasks");
        else
            tu_expect_text(h[i], text);
        asset_handle_release(h[i]);
    }
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
}

static void test_a_budgeted_flush_that_leaves_jobs_wakes_the_host(void **state) {
    (void)state;
    budgeted_host_gets_every_job(false);
    budgeted_host_gets_every_job(true);
}

/* A task that works until asset_task_cancelled() says its result is no longer wanted,
 * bounded (10 s): whether it saw the cancel */
static asset_status_t task_until_cancelled(asset_task_t *t, void *arg) {
    atomic_int *saw = arg;
    double end = emscripten_get_now() + 10000;
    while (!asset_task_cancelled(t) && emscripten_get_now() < end) {
    }
    atomic_store(saw, asset_task_cancelled(t));
    return ASSET_OK;
}

/* The header: asset_task_cancelled() is true once every handle of the task timed out. A
 * task with a timeout_ms of 100 that works until it is cancelled: its timeout ends it,
 * ASSET_E_TIMEOUT. Single-threaded, the task runs on the one thread, inside the flush,
 * and the timeout's timer is the JS event loop's, which cannot run while it does. */
static void test_a_tasks_timeout_is_seen_while_it_runs(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    static atomic_int saw;
    atomic_store(&saw, -1);
    asset_load_options_t o = {0};
    o.timeout_ms = 100;
    asset_handle_t *h = asset_server_spawn(s, task_until_cancelled, &saw, NULL, &o);
    FLUSH_TURN_UNTIL(s, asset_handle_is_done(h) && atomic_load(&saw) != -1);
    assert_int_equal(atomic_load(&saw), 1);
    assert_int_equal(asset_handle_error(h), ASSET_E_TIMEOUT);
    asset_handle_release(h);
    asset_server_destroy(s);
}

int main(void) {
    uv_mutex_init(&g_log_lock);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_on_the_web_says_changes_are_not_seen),
        cmocka_unit_test(test_watch_on_the_web_does_not_say_it_polls),
        cmocka_unit_test(test_asset_server_reload_reloads_a_file_on_the_web),
        cmocka_unit_test(test_a_replaced_mem_key_reloads_on_the_web),
        cmocka_unit_test(test_a_trace_the_log_and_a_task_work_on_the_web),
        cmocka_unit_test(test_a_budgeted_flush_that_leaves_jobs_wakes_the_host),
        cmocka_unit_test(test_a_tasks_timeout_is_seen_while_it_runs),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
