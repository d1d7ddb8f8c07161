/* test_rlimit.c - resource exhaustion. With the process out of file descriptors (a
 * low RLIMIT_NOFILE, and every slot below it taken), loads from every source fail with
 * a message a person can act on ("too many open files"), promptly, and the server
 * works again once descriptors are back. A parse that fails, however often, never
 * stalls the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "test_util.h"
#include "tu_http.h"

static char *g_dir;
static tu_nginx_t g_nginx;
static bool g_have_nginx;

/* ---- taking every descriptor ---- */

typedef struct exhaust {
    struct rlimit old;
    int *fds;
    int n;
    bool active;
} exhaust_t;

static int open_fds(void) {
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) n += fcntl(fd, F_GETFD) >= 0;
    return n;
}

/* Lowers the soft RLIMIT_NOFILE to a little above what is open, then fills every free
 * slot below it, so the next open/socket/eventfd fails with EMFILE. */
static void exhaust_fds(exhaust_t *e) {
    memset(e, 0, sizeof *e);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &e->old), 0);
    e->active = true;
    int hi = 0;
    for (int fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0) hi = fd;
    struct rlimit low = e->old;
    low.rlim_cur = (rlim_t)hi + 16;
    if (low.rlim_cur > e->old.rlim_cur) low.rlim_cur = e->old.rlim_cur;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    e->fds = malloc(sizeof(int) * 4096);
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        e->fds[e->n++] = fd;
        assert_true(e->n < 4096);
    }
}

static void restore_fds(exhaust_t *e) {
    if (!e->active) return;
    e->active = false;
    for (int i = 0; i < e->n; i++) close(e->fds[i]);
    free(e->fds);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &e->old), 0);
}

/* One per test; teardown gives the descriptors back even when a test failed midway. */
static exhaust_t e;
static int g_fds0;

static int setup(void **state) {
    (void)state;
    g_fds0 = open_fds();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    restore_fds(&e);
    int now = open_fds();
    if (now != g_fds0) { /* failed starts must give back what they opened */
        print_error("%d descriptors open after the test, %d before\n", now, g_fds0);
        return -1;
    }
    return 0;
}

/* Loads uri; it must end (no hang) FAILED with a message that mentions why. */
static void expect_clear_failure(asset_server_t *s, const char *uri,
                                 const asset_load_options_t *o) {
    asset_handle_t *h = asset_server_load(s, uri, o);
    assert_non_null(h);
    asset_status_t st = asset_handle_wait(h, 30000);
    assert_true(asset_handle_is_done(h)); /* else: a hang */
    const char *msg = asset_handle_error_message(h);
    print_message("  %s -> %s: %s\n", uri, asset_err_name(st), msg);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    if (!strcasestr(msg, "too many open files"))
        fail_msg("%s: message does not say why: '%s'", uri, msg);
    assert_non_null(strstr(msg, asset_handle_uri(h)));
    asset_handle_release(h);
}

static void expect_ok(asset_server_t *s, const char *uri) {
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    asset_status_t st = asset_handle_wait(h, 30000);
    if (st != ASSET_OK)
        fail_msg("%s: %s (%s)", uri, asset_err_name(st), asset_handle_error_message(h));
    asset_handle_release(h);
}

static char *file_uri(const char *rel) {
    char *p = tu_path(g_dir, rel);
    char *u = tu_file_uri(p);
    free(p);
    return u;
}

static void test_file_and_pkg_loads_fail_clearly_without_descriptors(void **state) {
    (void)state;
    char *pkgs = tu_path(g_dir, "pkgs");
    asset_server_config_t cfg = {.pkg_path = pkgs, .max_workers = 2};
    asset_server_t *s = asset_server_create(&cfg);
    char *mounted = tu_path(g_dir, "pkgs/game");
    assert_int_equal(asset_server_mount(s, "mounted", mounted), ASSET_OK);
    char *a = file_uri("a.txt"), *dir = file_uri("dir");
    exhaust_fds(&e);
    expect_clear_failure(s, a, NULL);
    expect_clear_failure(s, "pkg://mounted/c.txt", NULL);
    expect_clear_failure(s, "pkg://game/c.txt", NULL); /* found on pkg_path: needs an open */
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    assert_int_not_equal(asset_batch_wait(b, 30000), ASSET_E_TIMEOUT);
    assert_true(asset_batch_is_done(b));
    print_message("  folder %s -> %s: %s\n", dir, asset_err_name(asset_batch_error(b)),
                  asset_batch_error_message(b));
    assert_int_not_equal(asset_batch_error(b), ASSET_OK);
    assert_non_null(strcasestr(asset_batch_error_message(b), "too many open files"));
    asset_batch_release(b);
    restore_fds(&e);
    /* and everything works again */
    expect_ok(s, a);
    expect_ok(s, "pkg://mounted/c.txt");
    expect_ok(s, "pkg://game/c.txt");
    b = asset_server_load_folder(s, dir, NULL);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    asset_batch_release(b);
    asset_server_destroy(s);
    free(a);
    free(dir);
    free(pkgs);
    free(mounted);
}

/* A remount frees the mount it hides once no read uses it: each kept its directory
 * open until destroy, and an editor remounting ran out of descriptors, which a mount
 * then reported as "not found" (a review). Out of descriptors, a mount says E_IO. */
static void test_remounts_give_their_descriptors_back(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    char *game = tu_path(g_dir, "pkgs/game");
    int before = open_fds();
    for (int i = 0; i < 200; i++) assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    int after = open_fds();
    expect_ok(s, "pkg://game/c.txt");
    exhaust_fds(&e);
    int rc = asset_server_mount(s, "other", game);
    restore_fds(&e);
    asset_server_destroy(s);
    free(game);
    assert_true(after <= before + 1); /* the newest mount's only */
    assert_int_equal(rc, ASSET_E_IO);
}

static asset_status_t never_run(asset_task_t *t, void *arg) {
    (void)arg;
    asset_task_set_value(t, NULL, 0, NULL, NULL);
    return ASSET_OK;
}

/* A spawned task with a timeout needs the I/O thread as a timed load does: it said
 * only "the I/O thread could not start", never why, and ASSET_E_IO even for want of
 * memory, where a load says "too many open files" (the rlimit row of reliability.md). */
static void test_a_timed_task_whose_io_thread_cannot_start_says_why(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    exhaust_fds(&e);
    asset_load_options_t o = {.timeout_ms = 10000};
    asset_handle_t *h = asset_server_spawn(s, never_run, NULL, NULL, &o);
    assert_non_null(h);
    asset_status_t st = asset_handle_wait(h, 30000);
    const char *msg = asset_handle_error_message(h);
    print_message("  task -> %s: %s\n", asset_err_name(st), msg);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    assert_int_equal(st, ASSET_E_IO);
    if (!strcasestr(msg, "too many open files")) fail_msg("message does not say why: '%s'", msg);
    assert_non_null(strstr(msg, asset_handle_uri(h)));
    asset_handle_release(h);
    restore_fds(&e);
    asset_server_destroy(s);
}

static void test_io_thread_that_cannot_start_fails_loads_clearly(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    exhaust_fds(&e);
    /* a timeout needs the I/O thread (its loop needs descriptors); each failed start
     * must give back what it opened, or the next one has even fewer */
    asset_load_options_t o = {.timeout_ms = 10000};
    for (int i = 0; i < 5; i++) expect_clear_failure(s, "mem://k", &o);
    if (g_have_nginx) {
        char *u = tu_nginx_url(&g_nginx, "h.txt");
        expect_clear_failure(s, u, NULL);
        free(u);
    }
    restore_fds(&e);
    asset_handle_t *h = asset_server_load(s, "mem://k", &o);
    assert_int_equal(asset_handle_wait(h, 30000), ASSET_OK);
    asset_handle_release(h);
    if (g_have_nginx) {
        char *u = tu_nginx_url(&g_nginx, "h.txt");
        expect_ok(s, u);
        free(u);
    }
    asset_server_destroy(s);
}

static void test_http_without_descriptors_fails_clearly(void **state) {
    (void)state;
    if (!g_have_nginx) {
        print_message("nginx unavailable: skipped\n");
        skip();
    }
    asset_server_t *s = asset_server_create(NULL);
    char *u = tu_nginx_url(&g_nginx, "h.txt");
    expect_ok(s, u); /* the I/O thread runs, and a connection is open and kept */
    char *u2 = tu_nginx_url(&g_nginx, "h2.txt");
    /* a second server whose I/O thread runs (a load with a timeout started it) but that
     * has no connection yet: it will need a new socket */
    asset_server_t *s2 = asset_server_create(NULL);
    assert_int_equal(asset_mem_put(s2, "k", "v", 1), ASSET_OK);
    asset_load_options_t o = {.timeout_ms = 10000};
    asset_handle_t *t = asset_server_load(s2, "mem://k", &o);
    assert_int_equal(asset_handle_wait(t, 30000), ASSET_OK);
    asset_handle_release(t);
    exhaust_fds(&e);
    /* the kept connection may serve this one */
    asset_handle_t *h = asset_server_load(s, u2, NULL);
    asset_status_t st = asset_handle_wait(h, 30000);
    assert_true(asset_handle_is_done(h));
    print_message("  reused connection -> %s\n", asset_err_name(st));
    asset_handle_release(h);
    expect_clear_failure(s2, u, NULL);
    restore_fds(&e);
    expect_ok(s2, u);
    asset_server_destroy(s2);
    asset_server_destroy(s);
    free(u);
    free(u2);
}

/* ---- parse failures never stall the pool ---- */

static void test_failing_parses_never_stall_the_pool(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    tu_counter_t c = {0};
    c.fail_parse = 1;
    assert_int_equal(tu_counting_loader_register(s, "failing", ".fail", &c, 0), ASSET_OK);
    static const char *bad[] = {"{", "[1,2", "{\"a\":}", "nul", "\"unterminated", "{}}", ""};
    enum { N = 300 };
    asset_handle_t *hs[N];
    for (int i = 0; i < N; i++) {
        char key[32];
        if (i % 2) {
            snprintf(key, sizeof key, "bad%d.json", i);
            const char *t = bad[i % 7];
            assert_int_equal(asset_mem_put(s, key, t, strlen(t)), ASSET_OK);
        } else {
            snprintf(key, sizeof key, "x%d.fail", i);
            assert_int_equal(asset_mem_put(s, key, "data", 4), ASSET_OK);
        }
        char uri[64];
        snprintf(uri, sizeof uri, "mem://%s", key);
        hs[i] = asset_server_load(s, uri, NULL);
    }
    assert_int_equal(asset_mem_put(s, "good.json", "{\"ok\": true}", 12), ASSET_OK);
    asset_handle_t *good = asset_server_load(s, "mem://good.json", NULL);
    assert_int_equal(asset_handle_wait(good, 30000), ASSET_OK); /* behind 300 failures */
    for (int i = 0; i < N; i++) {
        assert_int_equal(asset_handle_wait(hs[i], 30000), ASSET_E_PARSE);
        assert_true(asset_handle_error_message(hs[i])[0] != 0);
        asset_handle_release(hs[i]);
    }
    assert_int_equal(tu_counter_parses(&c), N / 2);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.failed, N);
    assert_int_equal(st.pending + st.loading, 0);
    asset_handle_release(good);
    asset_server_destroy(s);
}

/* ---- folder listings out of descriptors: all or a failure (issue 10, item 3) ---- */

enum { NEST_LEVELS = 10, NEST_FILES = 100 }; /* 1,000 files, 10 directories deep */

static void make_nested(void) {
    char rel[512] = "nested";
    for (int lv = 0; lv < NEST_LEVELS; lv++) {
        size_t n = strlen(rel);
        snprintf(rel + n, sizeof rel - n, "/l%d", lv);
        for (int i = 0; i < NEST_FILES; i++) {
            char f[600];
            snprintf(f, sizeof f, "%s/f%03d.txt", rel, i);
            free(tu_write_file(g_dir, f, "x", 1));
        }
    }
}

static void test_folder_listing_out_of_descriptors_lists_all_or_fails(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    char *dir = file_uri("nested");
    int failures = 0, successes = 0;
    /* the walk holds one descriptor per level: with `spare` free ones it runs out
     * somewhere inside the tree, at the top, or not at all */
    for (int spare = 0; spare <= NEST_LEVELS + 4; spare++) {
        exhaust_fds(&e);
        for (int i = 0; i < spare && e.n > 0; i++) close(e.fds[--e.n]);
        asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
        asset_status_t st = asset_batch_wait(b, 60000);
        assert_true(asset_batch_is_done(b)); /* else: a hang */
        size_t total = asset_batch_total(b);
        print_message("  %d spare descriptors -> %s, %zu children: %s\n", spare, asset_err_name(st),
                      total, asset_batch_error_message(b));
        if (st == ASSET_OK) {
            if (total != NEST_LEVELS * NEST_FILES)
                fail_msg("%d spare descriptors: the listing succeeded with %zu of %d files", spare,
                         total, NEST_LEVELS * NEST_FILES);
            successes++;
        } else {
            assert_int_equal(total, 0);
            if (!strcasestr(asset_batch_error_message(b), "too many open files"))
                fail_msg("message does not say why: '%s'", asset_batch_error_message(b));
            assert_non_null(strstr(asset_batch_error_message(b), asset_batch_uri(b)));
            failures++;
        }
        asset_batch_release(b);
        restore_fds(&e);
    }
    assert_true(failures > 0);  /* it did run out */
    assert_true(successes > 0); /* and with enough descriptors it lists everything */
    asset_server_destroy(s);
    free(dir);
}

static int group_setup(void **state) {
    (void)state;
    /* libuv opens a pipe once per process on its first loop, and libcurl initialises
     * once: both before any descriptor count */
    asset_server_t *s = asset_server_create(NULL);
    asset_mem_put(s, "k", "v", 1);
    asset_load_options_t o = {.timeout_ms = 10000};
    asset_handle_t *h = asset_server_load(s, "mem://k", &o);
    asset_handle_wait(h, 30000);
    asset_handle_release(h);
    asset_server_destroy(s);
    g_dir = tu_mkdtemp();
    free(tu_write_file(g_dir, "a.txt", "alpha", 5));
    free(tu_write_file(g_dir, "dir/one.txt", "1", 1));
    free(tu_write_file(g_dir, "dir/two.txt", "2", 1));
    free(tu_write_file(g_dir, "pkgs/game/c.txt", "pkg", 3));
    make_nested();
    g_have_nginx = tu_nginx_start(&g_nginx);
    if (g_have_nginx) {
        free(tu_write_file(g_nginx.root, "h.txt", "hello", 5));
        free(tu_write_file(g_nginx.root, "h2.txt", "hello2", 6));
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (g_have_nginx) tu_nginx_stop(&g_nginx);
    tu_rmrf(g_dir);
    free(g_dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_and_pkg_loads_fail_clearly_without_descriptors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_remounts_give_their_descriptors_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_io_thread_that_cannot_start_fails_loads_clearly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_timed_task_whose_io_thread_cannot_start_says_why,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_without_descriptors_fails_clearly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failing_parses_never_stall_the_pool, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_listing_out_of_descriptors_lists_all_or_fails,
                                        setup, teardown),
    };
    return TU_RUN_GROUP_TESTS(tests, group_setup, group_teardown);
}
