/* test_pkg.c - pkg://name/path: directory mounts, the pkg_path search path (config and
 * $ASSET_SERVER_PKG_PATH), remounts, embedded tables, paths that try to leave their
 * package (URI tricks and symlinks, with openat2 and with the O_NOFOLLOW walk), the
 * no-I/O cache hit of an immutable source, and listings through the source vtable. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "internal.h"
#include "test_util.h"
#include "tu_os.h"

typedef struct fx {
    char *dir;     /* scratch root */
    char *game;    /* dir/game: the package "game" */
    char *outside; /* dir/outside: not part of any package */
    asset_server_t *s;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    f->game = tu_path(f->dir, "game");
    f->outside = tu_path(f->dir, "outside");
    free(tu_write_file(f->game, "hero.txt", "hero", 4));
    free(tu_write_file(f->game, "levels/one.txt", "level one", 9));
    free(tu_write_file(f->game, "levels/deep/two.txt", "level two", 9));
    free(tu_write_file(f->outside, "secret.txt", "secret", 6));
    f->s = asset_server_create(NULL);
    if (!f->s) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    asset_server_destroy(f->s);
    asset__fs_force_walk = false;
    tu_rmrf(f->dir);
    free(f->dir);
    free(f->game);
    free(f->outside);
    free(f);
    return 0;
}

static asset_stats_t stats(asset_server_t *s) {
    asset_stats_t st;
    asset_server_stats(s, &st);
    return st;
}

/* Loads uri with the bytes loader and checks it is `want`. */
static void expect_text(asset_server_t *s, const char *uri, const char *want) {
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h = asset_server_load(s, uri, &o);
    asset_status_t st = tu_wait(h);
    const asset_bytes_t *b = asset_handle_value(h);
    /* decide, release, then assert: a failure leaks nothing */
    bool same = b && b->size == strlen(want) && !memcmp(b->data, want, b->size + 1);
    char got[64];
    snprintf(got, sizeof got, "%.*s", b ? (int)b->size : 0, b ? (const char *)b->data : "");
    char msg[512];
    snprintf(msg, sizeof msg, "%s", asset_handle_error_message(h));
    asset_handle_release(h);
    if (st != ASSET_OK) fail_msg("%s: %s", uri, msg);
    if (!same) fail_msg("%s: want '%s', got '%s'", uri, want, got); /* NUL-terminated too */
}

/* Loads uri and expects it to fail with st; the message must contain `needle`. */
static void expect_fail(asset_server_t *s, const char *uri, asset_status_t st, const char *needle) {
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    asset_status_t got = tu_wait(h);
    if (got != st)
        fail_msg("%s: want %s, got %s (%s)", uri, asset_err_name(st), asset_err_name(got),
                 asset_handle_error_message(h));
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    const char *msg = asset_handle_error_message(h);
    if (needle && !strstr(msg, needle)) fail_msg("'%s' does not contain '%s'", msg, needle);
    asset_handle_release(h);
}

/* ---- mounts ---- */

static void test_mounted_directory_serves_its_files(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    expect_text(f->s, "pkg://game/hero.txt", "hero");
    expect_text(f->s, "pkg://game/levels/deep/two.txt", "level two");
    expect_text(f->s, "pkg://game/levels/./deep//two.txt", "level two"); /* normalised */
    expect_fail(f->s, "pkg://game/missing.txt", ASSET_E_NOT_FOUND, "pkg://game/missing.txt");
    expect_fail(f->s, "pkg://game/levels", ASSET_E_IO, "directory");
}

static void test_mount_refuses_bad_names_and_missing_dirs(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "", f->game), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount(f->s, "a/b", f->game), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount(f->s, "..", f->game), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount(f->s, "sp ace", f->game), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount(f->s, NULL, f->game), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount(f->s, "game", NULL), ASSET_E_INVALID);
    char *nowhere = tu_path(f->dir, "nowhere");
    assert_int_equal(asset_server_mount(f->s, "game", nowhere), ASSET_E_NOT_FOUND);
    free(nowhere);
    char *file = tu_path(f->game, "hero.txt");
    assert_int_equal(asset_server_mount(f->s, "game", file), ASSET_E_NOT_FOUND);
    free(file);
    assert_int_equal(asset_server_mount(f->s, "My-Pack_2.v1", f->game), ASSET_OK);
    expect_text(f->s, "pkg://My-Pack_2.v1/hero.txt", "hero");
    /* 255 characters at most: a longer name could never be found */
    char name[300], uri[400];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = 0;
    name[256] = 0;
    assert_int_equal(asset_server_mount(f->s, name, f->game), ASSET_E_INVALID);
    name[255] = 0;
    assert_int_equal(asset_server_mount(f->s, name, f->game), ASSET_OK);
    snprintf(uri, sizeof uri, "pkg://%s/hero.txt", name);
    expect_text(f->s, uri, "hero");
    /* a URI naming a package one and two characters longer: not mounted, the name
     * never copied past the lookup's buffer (one byte short of it under a mutation) */
    for (size_t n = 256; n <= 257; n++) {
        memset(name, 'n', n);
        name[n] = 0;
        snprintf(uri, sizeof uri, "pkg://%s/hero.txt", name);
        expect_fail(f->s, uri, ASSET_E_NOT_FOUND, "not mounted");
    }
}

static void test_unknown_package_is_not_found(void **state) {
    fx_t *f = *state;
    expect_fail(f->s, "pkg://nopkg/hero.txt", ASSET_E_NOT_FOUND, "'nopkg' is not mounted");
}

static void test_remount_replaces_the_package(void **state) {
    fx_t *f = *state;
    char *v2 = tu_path(f->dir, "game_v2");
    free(tu_write_file(v2, "hero.txt", "hero v2", 7));
    free(tu_write_file(v2, "new.txt", "new", 3));
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    expect_text(f->s, "pkg://game/hero.txt", "hero");
    assert_int_equal(asset_server_mount(f->s, "game", v2), ASSET_OK);
    expect_text(f->s, "pkg://game/new.txt", "new");
    /* never loaded before the remount, so no cache entry stands in the way */
    expect_fail(f->s, "pkg://game/levels/one.txt", ASSET_E_NOT_FOUND, NULL);
    free(v2);
}

/* Remounts while loads read the package: a mount a remount hid is freed once the reads
 * using it are done, not under them (each read holds it: run under ASan and TSan). */
typedef struct remounter {
    asset_server_t *s;
    const char *dir;
    int rc;
} remounter_t;

static void remount_main(void *arg) {
    remounter_t *r = arg;
    for (int i = 0; i < 300 && r->rc == ASSET_OK; i++)
        r->rc = asset_server_mount(r->s, "game", r->dir);
}

static void test_remounts_while_loads_read_the_package(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    remounter_t r = {f->s, f->game, ASSET_OK};
    uv_thread_t t;
    int trc = uv_thread_create(&t, remount_main, &r);
    if (trc == UV_ENOSYS) /* the single-threaded web build: the remounts first, here */
        remount_main(&r);
    else
        assert_int_equal(trc, 0);
    asset_load_options_t o = {.no_cache = true};
    for (int i = 0; i < 300; i++) {
        asset_handle_t *h = asset_server_load(f->s, "pkg://game/hero.txt", &o);
        assert_int_equal(tu_wait(h), ASSET_OK);
        asset_handle_release(h);
        if (i % 50 == 0) { /* and listings */
            asset_batch_t *b = asset_server_load_folder(f->s, "pkg://game", &o);
            assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
            asset_batch_release(b);
        }
    }
    if (trc == 0) uv_thread_join(&t);
    assert_int_equal(r.rc, ASSET_OK);
}

/* A remount freed the mount it hid by walking the list of every mount to it: remounting
 * each of n packages, oldest first (an editor reloading its packages, a game switching
 * each language's tables), cost n each (40,000 embedded packages remounted: 21 s, under
 * the packages' lock every load of a pkg:// URI takes). */
static void test_remounting_many_packages_is_not_quadratic(void **state) {
    fx_t *f = *state;
    enum { N = 3000 };
    static const asset_embedded_file_t one[] = {{"a.txt", "a", 1}}, two[] = {{"a.txt", "b", 1}};
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "p%d", i);
        assert_int_equal(asset_server_mount_embedded(f->s, name, one, 1), ASSET_OK);
    }
    uint64_t v0 = atomic_load(&asset__pkg_unlink_visits);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "p%d", i);
        assert_int_equal(asset_server_mount_embedded(f->s, name, two, 1), ASSET_OK);
    }
    uint64_t v = atomic_load(&asset__pkg_unlink_visits) - v0;
    if (v > 2 * N) fail_msg("%d remounts looked at %llu mounts", N, (unsigned long long)v);
    expect_text(f->s, "pkg://p0/a.txt", "b");
    expect_text(f->s, "pkg://p2999/a.txt", "b");
}

static void test_remount_keeps_cached_values_until_invalidated(void **state) {
    fx_t *f = *state;
    char v2[4096];
    snprintf(v2, sizeof v2, "%s/game_v2", f->dir);
    free(tu_write_file(v2, "hero.txt", "hero v2", 7));
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    expect_text(f->s, "pkg://game/hero.txt", "hero"); /* now cached, immutable */
    assert_int_equal(asset_server_mount(f->s, "game", v2), ASSET_OK);
    /* documented (docs/packages.md): a cached pkg:// value is served without I/O, so
     * it outlives a remount of its package until it is invalidated */
    expect_text(f->s, "pkg://game/hero.txt", "hero");
    asset_server_invalidate(f->s, "pkg://game/hero.txt");
    expect_text(f->s, "pkg://game/hero.txt", "hero v2");
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_server_clear_caches(f->s);
    expect_text(f->s, "pkg://game/hero.txt", "hero");
}

static void nothing_main(void *arg) { (void)arg; }

typedef struct stall {
    uv_mutex_t mu;
    uv_cond_t cond;
    asset_request_t **reqs;
    size_t n;
} stall_t;

static asset_status_t stall_read(void *ctx, asset_request_t *r) {
    stall_t *st = ctx;
    uv_mutex_lock(&st->mu);
    st->reqs[st->n++] = r;
    uv_cond_broadcast(&st->cond);
    uv_mutex_unlock(&st->mu);
    return ASSET_PENDING;
}

/* Skips the test where no thread can start (the single-threaded web build): what needs
 * a worker there would wait for ever. */
static void skip_without_threads(const char *what) {
    uv_thread_t probe;
    if (uv_thread_create(&probe, nothing_main, NULL) != 0) {
        print_message("  skipped: %s needs a worker thread\n", what);
        skip(); /* leaves the test */
    }
    uv_thread_join(&probe);
}

/* Every mount walked every load in flight, whatever its package, under the server's
 * lock, to mark the loads of its package as read before it: n mounts while m loads
 * were in flight cost n * m (5,000 packages mounted with 50,000 loads in flight: 27 s,
 * 5 ms a mount with the server's lock held: no flush, no load meanwhile). A first mount
 * of a name hides none, so no load in flight read a mount of it: it walks none. (A
 * remount still walks them: test_a_remount_during_a_load_serves_later_loads_the_new_package.) */
static void test_a_mount_costs_nothing_per_load_in_flight(void **state) {
    fx_t *f = *state;
    skip_without_threads("loads in flight");
    enum { LOADS = 2000, MOUNTS = 100 };
    stall_t st = {.reqs = calloc(LOADS, sizeof(asset_request_t *))};
    assert_non_null(st.reqs);
    uv_mutex_init(&st.mu);
    uv_cond_init(&st.cond);
    asset_source_t src = {ASSET_SOURCE_ABI, "stall", ASSET_SOURCE_ASYNC, stall_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(f->s, &src, &st), ASSET_OK);
    asset_handle_t **h = calloc(LOADS, sizeof *h);
    assert_non_null(h);
    char uri[64];
    for (int i = 0; i < LOADS; i++) {
        snprintf(uri, sizeof uri, "stall://x%d", i);
        assert_non_null(h[i] = asset_server_load(f->s, uri, NULL));
    }
    uv_mutex_lock(&st.mu);
    while (st.n < LOADS) assert_int_equal(uv_cond_timedwait(&st.cond, &st.mu, 60000000000ull), 0);
    uv_mutex_unlock(&st.mu);
    static const asset_embedded_file_t one[] = {{"a.txt", "a", 1}};
    uint64_t v0 = atomic_load(&asset__mount_job_visits);
    for (int i = 0; i < MOUNTS; i++) {
        snprintf(uri, sizeof uri, "p%d", i);
        assert_int_equal(asset_server_mount_embedded(f->s, uri, one, 1), ASSET_OK);
    }
    uint64_t v = atomic_load(&asset__mount_job_visits) - v0;
    for (int i = 0; i < LOADS; i++) asset_request_finish(st.reqs[i], ASSET_E_IO);
    for (int i = 0; i < LOADS; i++) asset_handle_release(h[i]);
    free(h);
    expect_text(f->s, "pkg://p99/a.txt", "a");
    asset_server_destroy(f->s); /* before the source's context goes */
    f->s = NULL;
    free(st.reqs);
    uv_cond_destroy(&st.cond);
    uv_mutex_destroy(&st.mu);
    if (v)
        fail_msg("%d first mounts looked at %llu loads in flight", MOUNTS, (unsigned long long)v);
}

/* A package found on pkg_path is no package "not mounted": its lookup marked one, and
 * every mount after it (until the next) looked at every load in flight for a read
 * that may have missed its package (with pkg_path, a walk per first use of a package). */
static void test_a_package_found_on_pkg_path_makes_no_mount_look_at_loads(void **state) {
    fx_t *f = *state;
    skip_without_threads("a load in flight");
    char *root = tu_path(f->dir, "searched");
    free(tu_write_file(root, "dlc/hero.txt", "searched", 8));
    asset_server_config_t cfg = {.pkg_path = root};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    stall_t st = {.reqs = calloc(1, sizeof(asset_request_t *))};
    assert_non_null(st.reqs);
    uv_mutex_init(&st.mu);
    uv_cond_init(&st.cond);
    asset_source_t src = {ASSET_SOURCE_ABI, "stall", ASSET_SOURCE_ASYNC, stall_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, &st), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "stall://x", NULL);
    uv_mutex_lock(&st.mu);
    while (st.n < 1) assert_int_equal(uv_cond_timedwait(&st.cond, &st.mu, 60000000000ull), 0);
    uv_mutex_unlock(&st.mu);
    expect_text(s, "pkg://dlc/hero.txt", "searched");
    static const asset_embedded_file_t one[] = {{"a.txt", "a", 1}};
    uint64_t v0 = atomic_load(&asset__mount_job_visits);
    assert_int_equal(asset_server_mount_embedded(s, "other", one, 1), ASSET_OK);
    uint64_t v = atomic_load(&asset__mount_job_visits) - v0;
    asset_request_finish(st.reqs[0], ASSET_E_IO);
    assert_int_equal(tu_wait(h), ASSET_E_IO);
    asset_handle_release(h);
    asset_server_destroy(s);
    free(st.reqs);
    uv_cond_destroy(&st.cond);
    uv_mutex_destroy(&st.mu);
    free(root);
    if (v) fail_msg("the mount looked at %llu loads in flight", (unsigned long long)v);
}

/* "Mounting a name again ... replaces it for later reads", and a cached value is
 * dropped with asset_server_invalidate() or asset_server_clear_caches() after it: a
 * load made after the remount joined a load whose read had taken the old package's
 * bytes (its parse still running) and got the old value; and that load, once parsed,
 * cached the old bytes after the invalidate, served without I/O from then on. */
static void test_a_remount_during_a_load_serves_later_loads_the_new_package(void **state) {
    fx_t *f = *state;
    skip_without_threads("the gated parse");
    char *v2 = tu_path(f->dir, "game_v2");
    free(tu_write_file(f->game, "x.gated", "old", 3));
    free(tu_write_file(v2, "x.gated", "new", 3));
    tu_parse_gate_t g;
    tu_parse_gate_register(f->s, &g);
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_handle_t *a = asset_server_load(f->s, "pkg://game/x.gated", NULL);
    tu_parse_gate_wait_entered(&g, 1); /* a's read is over: its parse has the old bytes */
    assert_int_equal(asset_server_mount(f->s, "game", v2), ASSET_OK);
    asset_server_invalidate(f->s, "pkg://game/x.gated");
    asset_handle_t *b = asset_server_load(f->s, "pkg://game/x.gated", NULL);
    tu_parse_gate_open(&g);
    assert_int_equal(asset_handle_wait(a, 60000), ASSET_OK);
    asset_status_t st = asset_handle_wait(b, 60000);
    char got_b[16] = "", got_c[16] = "";
    if (st == ASSET_OK) snprintf(got_b, sizeof got_b, "%s", (const char *)asset_handle_value(b));
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_t *c = asset_server_load(f->s, "pkg://game/x.gated", NULL);
    asset_status_t st_c = asset_handle_wait(c, 60000);
    if (st_c == ASSET_OK) snprintf(got_c, sizeof got_c, "%s", (const char *)asset_handle_value(c));
    asset_handle_release(c);
    asset_server_destroy(f->s);
    f->s = asset_server_create(NULL); /* teardown's; the loader's gate goes now */
    tu_parse_gate_destroy(&g);
    free(v2);
    assert_int_equal(st, ASSET_OK);
    if (strcmp(got_b, "new")) fail_msg("a load after the remount got '%s'", got_b);
    assert_int_equal(st_c, ASSET_OK);
    if (strcmp(got_c, "new"))
        fail_msg("a load after the remount and the invalidate got '%s' "
                 "(cached from the old package)",
                 got_c);
}

/* Thirty-eighth review (coverage): a remount of "game" concerns the loads of that package
 * alone: a load of "gamex" (its name begins with "game") in flight is still joined by a
 * later load of it, which gets its value. */
static void test_a_remount_spares_the_loads_of_a_package_whose_name_it_begins(void **state) {
    fx_t *f = *state;
    skip_without_threads("the gated parse");
    char *v2 = tu_path(f->dir, "game_v2");
    char *gx = tu_path(f->dir, "gamex");
    free(tu_write_file(v2, "x.gated", "new", 3));
    free(tu_write_file(gx, "x.gated", "gx", 2));
    tu_parse_gate_t g;
    tu_parse_gate_register(f->s, &g);
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    assert_int_equal(asset_server_mount(f->s, "gamex", gx), ASSET_OK);
    asset_handle_t *a = asset_server_load(f->s, "pkg://gamex/x.gated", NULL);
    tu_parse_gate_wait_entered(&g, 1); /* a's read is over: it parses */
    uint64_t c0 = stats(f->s).coalesced;
    assert_int_equal(asset_server_mount(f->s, "game", v2), ASSET_OK); /* hides the first */
    asset_handle_t *b = asset_server_load(f->s, "pkg://gamex/x.gated", NULL);
    uint64_t joined = stats(f->s).coalesced - c0;
    tu_parse_gate_open(&g);
    assert_int_equal(asset_handle_wait(a, 60000), ASSET_OK);
    assert_int_equal(asset_handle_wait(b, 60000), ASSET_OK);
    bool same = asset_handle_value(a) == asset_handle_value(b);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(f->s);
    f->s = asset_server_create(NULL); /* teardown's; the loader's gate goes now */
    tu_parse_gate_destroy(&g);
    free(v2);
    free(gx);
    assert_int_equal(joined, 1);
    assert_true(same);
}

/* The read hook's gate (asset__fs_read_fault): the first read of a path ending in
 * gone_suffix waits until opened and then finds the file gone (ENOENT); any other read
 * runs. */
static struct {
    uv_mutex_t mu;
    uv_cond_t cond;
    int entered;
    bool open;
} g_gone;
static const char *gone_suffix = "stale.txt";

static int gone_read(const char *path) {
    size_t pl = strlen(path), sl = strlen(gone_suffix);
    if (pl < sl || strcmp(path + pl - sl, gone_suffix)) return 0;
    uv_mutex_lock(&g_gone.mu);
    bool first = g_gone.entered++ == 0;
    uv_cond_broadcast(&g_gone.cond);
    while (first && !g_gone.open)
        if (uv_cond_timedwait(&g_gone.cond, &g_gone.mu, 60000000000ull) != 0) break;
    uv_mutex_unlock(&g_gone.mu);
    return first ? ENOENT : 0;
}

/* Seventeenth review: a read that found its file gone (E_NOT_FOUND) removed the URI's
 * cache entry even when the package was mounted again while it read (the job marked
 * changed): the entry it removed was a later load's, of the new mount, cached meanwhile;
 * the next load read and parsed again what was cached (found by the review, not shown
 * failing then; the read hook makes its timing here). */
static void test_a_stale_not_found_leaves_a_later_loads_cache_entry(void **state) {
    fx_t *f = *state;
    skip_without_threads("the gated read");
    free(tu_write_file(f->game, "stale.txt", "here", 4));
    asset_server_destroy(f->s); /* the hook is set before the server's threads exist */
    uv_mutex_init(&g_gone.mu);
    uv_cond_init(&g_gone.cond);
    g_gone.entered = 0;
    g_gone.open = false;
    asset__fs_read_fault = gone_read;
    asset_server_config_t cfg = {.max_workers = 2};
    f->s = asset_server_create(&cfg);
    assert_non_null(f->s);
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *a = asset_server_load(f->s, "pkg://game/stale.txt", &o);
    uv_mutex_lock(&g_gone.mu); /* a is reading */
    while (g_gone.entered < 1)
        if (uv_cond_timedwait(&g_gone.cond, &g_gone.mu, 60000000000ull) != 0) break;
    uv_mutex_unlock(&g_gone.mu);
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK); /* a: changed */
    asset_handle_t *b = asset_server_load(f->s, "pkg://game/stale.txt", &o);
    asset_status_t st_b = asset_handle_wait(b, 60000); /* read and cached */
    uv_mutex_lock(&g_gone.mu);
    g_gone.open = true;
    uv_cond_broadcast(&g_gone.cond);
    uv_mutex_unlock(&g_gone.mu);
    asset_status_t st_a = asset_handle_wait(a, 60000);
    asset_stats_t before = stats(f->s);
    asset_handle_t *c = asset_server_load(f->s, "pkg://game/stale.txt", &o);
    asset_status_t st_c = asset_handle_wait(c, 60000);
    asset_stats_t after = stats(f->s);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_server_destroy(f->s);
    asset__fs_read_fault = NULL;
    f->s = asset_server_create(NULL); /* teardown's */
    uv_mutex_destroy(&g_gone.mu);
    uv_cond_destroy(&g_gone.cond);
    assert_int_equal(st_b, ASSET_OK);
    assert_int_equal(st_a, ASSET_E_NOT_FOUND); /* true when it read */
    assert_int_equal(st_c, ASSET_OK);
    if (after.source_reads != before.source_reads)
        fail_msg("the load after them read again (%llu reads): the stale not-found removed "
                 "the later load's cache entry",
                 (unsigned long long)(after.source_reads - before.source_reads));
    assert_int_equal(after.cache_hits, before.cache_hits + 1);
}

/* Thirty-eighth review (coverage): a pkg:// URI that is not a key as given is served by
 * the loader its normalised URI selects: "data.json/." is data.json, a JSON document
 * (the loader chosen by the name as given, ending in "/.", read it as bytes). */
static void test_a_pkg_uri_normalised_picks_the_loader_of_its_normal_name(void **state) {
    fx_t *f = *state;
    free(tu_write_file(f->game, "data.json", "not json", 8)); /* json fails, bytes takes it */
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_handle_t *h = asset_server_load(f->s, "pkg://game/data.json/.", NULL);
    asset_status_t st = tu_wait(h);
    assert_string_equal(asset_handle_uri(h), "pkg://game/data.json");
    if (st != ASSET_E_PARSE || !strstr(asset_handle_error_message(h), "JSON"))
        fail_msg("%s: %s (the json loader's parse error expected)", asset_err_name(st),
                 asset_handle_error_message(h));
    asset_handle_release(h);
}

static asset_status_t no_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    return asset_request_fail(r, ASSET_E_NOT_FOUND, "nothing here");
}

/* Thirty-eighth review (coverage): a source registered again for scheme "pk" drops the
 * cached entries of that scheme alone ("pk://..."): pkg:// ones, whose scheme it begins,
 * are still served from the cache without I/O. */
static void test_replacing_a_source_keeps_the_entries_of_a_scheme_it_begins(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_handle_t *a = asset_server_load(f->s, "pkg://game/hero.txt", NULL);
    assert_int_equal(tu_wait(a), ASSET_OK);
    asset_handle_release(a);
    asset_source_t src = {ASSET_SOURCE_ABI, "pk", 0, no_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(f->s, &src, NULL), ASSET_OK);
    assert_int_equal(asset_server_register_source(f->s, &src, NULL), ASSET_OK); /* replaces */
    asset_stats_t before = stats(f->s);
    asset_handle_t *b = asset_server_load(f->s, "pkg://game/hero.txt", NULL);
    assert_int_equal(tu_wait(b), ASSET_OK);
    asset_handle_release(b);
    asset_stats_t after = stats(f->s);
    assert_int_equal(after.source_reads, before.source_reads);
    assert_int_equal(after.cache_hits, before.cache_hits + 1);
}

static void count_reload(asset_handle_t *h, void *user);

/* docs/hot-reload.md: a remount is not a change a watch sees; asset_server_reload() of a
 * live handle's URI after it moves the handle to the new package, whichever kinds the
 * old and new mounts are (an embedded table's version never changes: it must still be
 * read again). */
static void reload_after_remount(asset_server_t *s, const char *uri, bool embedded, const char *dir,
                                 const asset_embedded_file_t *files, const char *want) {
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h = asset_server_load(s, uri, &o);
    assert_int_equal(tu_wait(h), ASSET_OK);
    int reloads = 0;
    asset_handle_on_reloaded(h, count_reload, &reloads);
    if (embedded)
        assert_int_equal(asset_server_mount_embedded(s, "swap", files, 1), ASSET_OK);
    else
        assert_int_equal(asset_server_mount(s, "swap", dir), ASSET_OK);
    asset_server_reload(s, uri);
    uint64_t deadline = uv_hrtime() + 60000000000ull;
    while (!reloads && uv_hrtime() < deadline) {
        asset_server_flush(s);
        asset_handle_wait(h, 10);
    }
    const asset_bytes_t *b = asset_handle_value(h);
    char got[32];
    snprintf(got, sizeof got, "%.*s", b ? (int)b->size : 0, b ? (const char *)b->data : "");
    asset_handle_release(h);
    asset_stats_t st = stats(s);
    if (strcmp(got, want))
        fail_msg("%s after the remount: want '%s', got '%s' (reloads %llu, failed %llu, "
                 "reads %llu, 304s %llu)",
                 uri, want, got, (unsigned long long)st.reloads,
                 (unsigned long long)st.reload_failures, (unsigned long long)st.source_reads,
                 (unsigned long long)st.http_not_modified);
    assert_int_equal(reloads, 1);
}

static void test_a_reload_after_a_remount_moves_a_live_handle_to_the_new_package(void **state) {
    fx_t *f = *state;
    char *d1 = tu_path(f->dir, "swap1"), *d2 = tu_path(f->dir, "swap2");
    free(tu_write_file(d1, "x.txt", "dir one", 7));
    free(tu_write_file(d2, "x.txt", "dir two", 7));
    static const asset_embedded_file_t e1[] = {{"x.txt", "table one", 9}};
    static const asset_embedded_file_t e2[] = {{"x.txt", "table two", 9}};
    asset_server_t *s = f->s;
    assert_int_equal(asset_server_mount(s, "swap", d1), ASSET_OK);
    reload_after_remount(s, "pkg://swap/x.txt", false, d2, NULL, "dir two");
    reload_after_remount(s, "pkg://swap/x.txt", true, NULL, e1, "table one");
    reload_after_remount(s, "pkg://swap/x.txt", true, NULL, e2, "table two");
    reload_after_remount(s, "pkg://swap/x.txt", false, d1, NULL, "dir one");
    free(d1);
    free(d2);
}

static void test_pkg_path_from_config_finds_packages(void **state) {
    fx_t *f = *state;
    char *root = tu_path(f->dir, "root");
    free(tu_write_file(root, "dlc/map.txt", "dlc map", 7));
    char path[4096];
    char sep = tu_os_windows_paths() ? ';' : ':'; /* docs/platforms.md */
    snprintf(path, sizeof path, "%s/nonexistent%c%c%s", f->dir, sep, sep, root);
    asset_server_config_t cfg = {.pkg_path = path};
    asset_server_t *s = asset_server_create(&cfg);
    expect_text(s, "pkg://dlc/map.txt", "dlc map");
    expect_text(s, "pkg://dlc/map.txt", "dlc map");
    expect_fail(s, "pkg://root/dlc/map.txt", ASSET_E_NOT_FOUND, "not mounted");
    /* a mount wins over the search path */
    assert_int_equal(asset_server_mount(s, "dlc", f->game), ASSET_OK);
    expect_text(s, "pkg://dlc/hero.txt", "hero");
    asset_server_destroy(s);
    /* a directory whose entry of the name is a file has no such package: the next one's
     * is found (a mutation survivor: ENOTDIR taken for a package that cannot be opened) */
    char *files = tu_path(f->dir, "files");
    free(tu_write_file(files, "dlc", "a file", 6));
    snprintf(path, sizeof path, "%s%c%s", files, sep, root);
    s = asset_server_create(&cfg);
    expect_text(s, "pkg://dlc/map.txt", "dlc map");
    asset_server_destroy(s);
    free(files);
    free(root);
}

/* A mount made while a load looks its package up on pkg_path wins over what that
 * lookup found (mounts come before pkg_path): the hook mounts it at that moment. */
static asset_server_t *g_hook_server;
static const char *g_hook_dir;
static void mount_during_lookup(const char *name) {
    if (strcmp(name, "dlc")) return;
    assert_int_equal(asset_server_mount(g_hook_server, "dlc", g_hook_dir), ASSET_OK);
}

static void test_a_mount_made_during_a_pkg_path_lookup_wins(void **state) {
    fx_t *f = *state;
    char *root = tu_path(f->dir, "root");
    free(tu_write_file(root, "dlc/hero.txt", "searched", 8));
    asset_server_config_t cfg = {.pkg_path = root};
    asset_server_t *s = asset_server_create(&cfg);
    g_hook_server = s;
    g_hook_dir = f->game;
    asset__pkg_found_hook = mount_during_lookup;
    expect_text(s, "pkg://dlc/hero.txt", "hero"); /* the mount, made before it recorded */
    asset__pkg_found_hook = NULL;
    asset_server_clear_caches(s);
    expect_text(s, "pkg://dlc/hero.txt", "hero"); /* and every load after */
    asset_server_destroy(s);
    free(root);
}

static void test_pkg_path_from_environment_unless_configured(void **state) {
    fx_t *f = *state;
    char *envroot = tu_path(f->dir, "envroot");
    char *cfgroot = tu_path(f->dir, "cfgroot");
    free(tu_write_file(envroot, "envpkg/a.txt", "from env", 8));
    free(tu_write_file(cfgroot, "cfgpkg/a.txt", "from cfg", 8));
    assert_int_equal(tu_os_setenv("ASSET_SERVER_PKG_PATH", envroot), 0);
    asset_server_t *s = asset_server_create(NULL);
    asset_server_config_t cfg = {.pkg_path = cfgroot};
    asset_server_t *s2 = asset_server_create(&cfg);
    tu_os_unsetenv("ASSET_SERVER_PKG_PATH"); /* read at create, not later */
    expect_text(s, "pkg://envpkg/a.txt", "from env");
    expect_text(s2, "pkg://cfgpkg/a.txt", "from cfg");
    expect_fail(s2, "pkg://envpkg/a.txt", ASSET_E_NOT_FOUND, NULL);
    asset_server_destroy(s);
    asset_server_destroy(s2);
    free(envroot);
    free(cfgroot);
}

/* ---- escapes ---- */

static void test_paths_leaving_the_package_are_refused(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    expect_fail(f->s, "pkg://game/../outside/secret.txt", ASSET_E_FORBIDDEN, "..");
    expect_fail(f->s, "pkg://game/levels/../../outside/secret.txt", ASSET_E_FORBIDDEN, NULL);
    expect_fail(f->s, "pkg://game/%2e%2e/outside/secret.txt", ASSET_E_FORBIDDEN, NULL);
    expect_fail(f->s, "pkg://game/levels/..", ASSET_E_FORBIDDEN, NULL);
    expect_fail(f->s, "pkg:///etc/passwd", ASSET_E_FORBIDDEN, "absolute");
    expect_fail(f->s, "pkg://game/levels\\..\\..\\outside", ASSET_E_FORBIDDEN, "backslash");
    expect_fail(f->s, "pkg://game/levels%5c..%5csecret", ASSET_E_FORBIDDEN, "backslash");
    expect_fail(f->s, "pkg://game/hero.txt%00.png", ASSET_E_INVALID, "NUL");
    /* ".." where the package name goes: refused (FORBIDDEN or INVALID, both before I/O) */
    asset_handle_t *h = asset_server_load(f->s, "pkg://../outside/secret.txt", NULL);
    asset_status_t st = tu_wait(h);
    assert_true(st == ASSET_E_FORBIDDEN || st == ASSET_E_INVALID);
    assert_non_null(strstr(asset_handle_error_message(h), "package name"));
    asset_handle_release(h);
    expect_fail(f->s, "pkg://game/bad%zzescape", ASSET_E_INVALID, NULL);
    assert_int_equal(stats(f->s).source_reads, 0); /* all refused before any I/O */
}

static void symlink_escapes_are_refused(fx_t *f) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks (test_platform_win32 covers reparse points)");
    char *secret = tu_path(f->outside, "secret.txt");
    char *link = tu_path(f->game, "escape.txt");
    char *dlink = tu_path(f->game, "outdir");
    char *rel = tu_path(f->game, "rel.txt");
    assert_int_equal(tu_os_symlink(secret, link), 0);                 /* absolute target */
    assert_int_equal(tu_os_symlink(f->outside, dlink), 0);            /* a directory */
    assert_int_equal(tu_os_symlink("../outside/secret.txt", rel), 0); /* relative, climbing */
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    expect_fail(f->s, "pkg://game/escape.txt", ASSET_E_FORBIDDEN, "escapes");
    expect_fail(f->s, "pkg://game/outdir/secret.txt", ASSET_E_FORBIDDEN, "escapes");
    expect_fail(f->s, "pkg://game/rel.txt", ASSET_E_FORBIDDEN, "escapes");
    expect_text(f->s, "pkg://game/hero.txt", "hero"); /* the rest still loads */
    /* listing the symlinked directory is refused too */
    asset_list_t l;
    memset(&l, 0, sizeof l);
    l.uri = "pkg://game/outdir";
    l.path = "game/outdir";
    asset_status_t st = asset__pkg_source.list(f->s, l.uri, &l);
    /* refused either way; which code depends on the opener: openat2 says EXDEV
     * (FORBIDDEN), the O_NOFOLLOW walk (force_walk, kernels or sandboxes without
     * openat2, valgrind) says ENOTDIR for a symlink opened as a directory (NOT_FOUND) */
    assert_true(st == ASSET_E_FORBIDDEN || st == ASSET_E_NOT_FOUND);
    assert_int_equal(l.count, 0);
    asset__list_dispose(&l);
    free(secret);
    free(link);
    free(dlink);
    free(rel);
}

static void test_symlink_out_of_package_is_refused(void **state) {
    asset__fs_force_walk = false;
    symlink_escapes_are_refused(*state);
}

static void test_symlink_out_of_package_is_refused_by_nofollow_walk(void **state) {
    asset__fs_force_walk = true;
    symlink_escapes_are_refused(*state);
}

/* A loop of symlinks inside a package (a -> b, b -> a: a bad copy, a half-made link)
 * leads nowhere out of it. Where links that stay inside are followed (openat2) the loop
 * is an I/O error that names a loop, for a load and a folder alike, not "path escapes
 * its root" (FORBIDDEN, as it was: the kernel's ELOOP was read as the walk's refusal);
 * the O_NOFOLLOW walk refuses every link, so there the loop is refused as one. */
static void symlink_loop_in_package(fx_t *f, bool walk) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks (test_platform_win32 covers reparse points)");
    char *a = tu_path(f->game, "loop_a"), *b = tu_path(f->game, "loop_b");
    char *alias = tu_path(f->game, "alias.txt");
    assert_int_equal(tu_os_symlink("loop_b", a), 0);
    assert_int_equal(tu_os_symlink("loop_a", b), 0);
    assert_int_equal(tu_os_symlink("hero.txt", alias), 0);
    asset__fs_force_walk = walk;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    /* whether this opener follows a link that stays inside decides what the loop is */
    asset_handle_t *h = asset_server_load(f->s, "pkg://game/alias.txt", NULL);
    bool follows = tu_wait(h) == ASSET_OK;
    asset_handle_release(h);
    if (walk) assert_false(follows);
    asset_status_t want = follows ? ASSET_E_IO : ASSET_E_FORBIDDEN;
    const char *words = follows ? "a loop" : "escapes its root";
    print_message("  links followed: %s\n", follows ? "yes (openat2)" : "no (the walk)");
    expect_fail(f->s, "pkg://game/loop_a", want, words);
    asset_batch_t *batch = asset_server_load_folder(f->s, "pkg://game/loop_b", NULL);
    assert_non_null(batch);
    assert_int_equal(asset_batch_wait(batch, 60000), want);
    assert_non_null(strstr(asset_batch_error_message(batch), words));
    asset_batch_release(batch);
    free(a);
    free(b);
    free(alias);
}

static void test_symlink_loop_in_package_is_an_io_error_not_an_escape(void **state) {
    symlink_loop_in_package(*state, false);
}

static void test_symlink_loop_in_package_is_refused_by_nofollow_walk(void **state) {
    symlink_loop_in_package(*state, true);
}

/* ---- immutable cache hit ---- */

static void test_cached_pkg_asset_completes_at_next_flush_without_io(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_handle_t *first = asset_server_load(f->s, "pkg://game/hero.txt", NULL);
    assert_int_equal(tu_wait(first), ASSET_OK);
    asset_stats_t before = stats(f->s);
    assert_int_equal(before.source_reads, 1);
    asset_handle_t *h = asset_server_load(f->s, "pkg://game/hero.txt", NULL);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_PENDING); /* only flush publishes */
    assert_true(asset_server_flush(f->s) >= 1);                   /* one flush, no waiting */
    assert_int_equal(asset_handle_state(h), ASSET_STATE_LOADED);
    assert_ptr_equal(asset_handle_value(h), asset_handle_value(first));
    asset_stats_t after = stats(f->s);
    assert_int_equal(after.source_reads, 1);
    assert_int_equal(after.cache_hits, before.cache_hits + 1);
    assert_int_equal(after.bytes_read, before.bytes_read);
    asset_handle_release(first);
    asset_handle_release(h);
}

/* ---- embedded ---- */

static const char emb_hero[] = "embedded hero";
static const unsigned char emb_bin[] = {0, 1, 2, 255, 0};
static const asset_embedded_file_t emb_files[] = {
    {"hero.txt", emb_hero, sizeof emb_hero - 1},
    {"data/blob.bin", emb_bin, 4},
    {"data/sub/empty.txt", "", 0},
};

static void test_embedded_package_loads_without_file_io(void **state) {
    fx_t *f = *state;
    /* a same-named package on the search path with other content: never read */
    char *root = tu_path(f->dir, "root");
    free(tu_write_file(root, "emb_only/hero.txt", "DISK", 4));
    asset_server_config_t cfg = {.pkg_path = root};
    asset_server_t *s = asset_server_create(&cfg);
    assert_int_equal(asset_server_mount_embedded(s, "emb_only", emb_files, 3), ASSET_OK);
    expect_text(s, "pkg://emb_only/hero.txt", "embedded hero");
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h = asset_server_load(s, "pkg://emb_only/data/blob.bin", &o);
    assert_int_equal(tu_wait(h), ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_int_equal(b->size, 4);
    assert_memory_equal(b->data, emb_bin, 4);
    assert_int_equal(b->data[4], 0);
    asset_handle_release(h);
    expect_text(s, "pkg://emb_only/data/sub/empty.txt", "");
    expect_fail(s, "pkg://emb_only/nothere.txt", ASSET_E_NOT_FOUND, "embedded");
    asset_stats_t st = stats(s);
    assert_int_equal(st.source_reads, 4);
    assert_int_equal(st.bytes_read, 13 + 4);
    asset_server_destroy(s);
    free(root);
}

static void test_embedded_package_without_any_disk_package(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_int_equal(asset_server_mount_embedded(s, "zz_not_on_disk_42", emb_files, 1), ASSET_OK);
    expect_text(s, "pkg://zz_not_on_disk_42/hero.txt", "embedded hero");
    /* only the first entry was mounted */
    expect_fail(s, "pkg://zz_not_on_disk_42/data/blob.bin", ASSET_E_NOT_FOUND, NULL);
    /* an empty table is a valid (empty) package */
    assert_int_equal(asset_server_mount_embedded(s, "empty", NULL, 0), ASSET_OK);
    expect_fail(s, "pkg://empty/x", ASSET_E_NOT_FOUND, "embedded");
    asset_server_destroy(s);
}

/* The same tree answers the same in either kind of package: a directory of a directory
 * package (or its root) is E_IO "is a directory, not a file", but the same directory of
 * an embedded table was E_NOT_FOUND "not in the embedded package", though it lists as a
 * folder, so a game moved from a mount (development) to a table (release) saw another
 * status for the same URI. */
static void test_a_directory_of_an_embedded_package_is_a_directory(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    assert_int_equal(asset_server_mount_embedded(f->s, "emb", emb_files, 3), ASSET_OK);
    expect_fail(f->s, "pkg://game/levels", ASSET_E_IO, "is a directory");
    expect_fail(f->s, "pkg://game", ASSET_E_IO, "is a directory");
    expect_fail(f->s, "pkg://emb/data", ASSET_E_IO, "is a directory");
    expect_fail(f->s, "pkg://emb/data/sub", ASSET_E_IO, "is a directory");
    expect_fail(f->s, "pkg://emb", ASSET_E_IO, "is a directory");
    assert_int_equal(asset_server_mount_embedded(f->s, "none", NULL, 0), ASSET_OK);
    expect_fail(f->s, "pkg://none", ASSET_E_IO, "is a directory"); /* an empty root too */
    /* a prefix of a name is no directory; a path under a file is not found, as on disk */
    expect_fail(f->s, "pkg://emb/dat", ASSET_E_NOT_FOUND, "embedded");
    expect_fail(f->s, "pkg://emb/data/su", ASSET_E_NOT_FOUND, "embedded");
    expect_fail(f->s, "pkg://emb/hero.txt/x", ASSET_E_NOT_FOUND, NULL);
    expect_fail(f->s, "pkg://game/hero.txt/x", ASSET_E_NOT_FOUND, NULL);
}

static void test_mount_embedded_validates_its_table(void **state) {
    fx_t *f = *state;
    asset_embedded_file_t bad[] = {{NULL, "x", 1}};
    asset_embedded_file_t nodata[] = {{"a", NULL, 3}};
    assert_int_equal(asset_server_mount_embedded(f->s, "x", NULL, 2), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount_embedded(f->s, "x", bad, 1), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount_embedded(f->s, "x", nodata, 1), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount_embedded(f->s, "a/b", emb_files, 3), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount_embedded(f->s, NULL, emb_files, 3), ASSET_E_INVALID);
    /* paths a lookup could never give: not relative, or not in normal form */
    /* a backslash too: the URI parser refuses it, so such an entry was listed, and its
     * load failed E_FORBIDDEN "contains a backslash" (a table made from Windows paths) */
    const char *odd[] = {"",       "/a", "a/",   "./a",  "a//b",    "a/./b",
                         "a/../b", "..", "a/..", "a\\b", "\\a.txt", "a/b\\"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        asset_embedded_file_t t[] = {{"ok.txt", "x", 1}, {odd[i], "y", 1}};
        if (asset_server_mount_embedded(f->s, "x", t, 2) != ASSET_E_INVALID)
            fail_msg("an entry named '%s' was mounted", odd[i]);
    }
    /* an empty file needs no data (a mutation survivor: refused as "no data for its size") */
    asset_embedded_file_t fine[] = {{".hidden", "h", 1}, {"a/..b/c.d", "c", 1}, {"e", NULL, 0}};
    assert_int_equal(asset_server_mount_embedded(f->s, "y", fine, 3), ASSET_OK);
    expect_text(f->s, "pkg://y/a/..b/c.d", "c");
    expect_text(f->s, "pkg://y/e", "");
    expect_fail(f->s, "pkg://x/a", ASSET_E_NOT_FOUND, "not mounted");
}

static void last_error(int level, const char *msg, void *user) {
    if (level == ASSET_LOG_ERROR) snprintf(user, 256, "%s", msg);
}

/* An entry whose pkg:// URI would pass the URI limit (8192 bytes, its '%' and '#'
 * encoded as "%25" and "%23") was mounted and listed, and its every load failed "URI
 * too long". Refused at the mount, nothing mounted, and the log names the entry; one
 * that just fits is mounted and loads. */
static void test_mount_embedded_refuses_a_path_no_uri_can_hold(void **state) {
    (void)state;
    char msg[256] = "";
    asset_server_config_t cfg = {.log = last_error, .user = msg};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    enum { MAX = 8192 };
    size_t room = MAX - (sizeof "pkg://big/" - 1); /* the path's bytes, encoded */
    char *fits = malloc(room + 1), *over = malloc(room + 2), *pct = malloc(room / 3 + 2);
    memset(fits, 'a', room);
    fits[room] = 0;
    memset(over, 'a', room + 1);
    over[room + 1] = 0;
    memset(pct, '%', room / 3 + 1); /* short, but three bytes each in the URI */
    pct[room / 3 + 1] = 0;
    const char *odd[] = {over, pct};
    for (size_t i = 0; i < 2; i++) {
        asset_embedded_file_t t[] = {{"ok.txt", "x", 1}, {odd[i], "y", 1}};
        msg[0] = 0;
        if (asset_server_mount_embedded(s, "big", t, 2) != ASSET_E_INVALID)
            fail_msg("an entry of %zu bytes was mounted", strlen(odd[i]));
        assert_non_null(strstr(msg, "asset_server_mount_embedded big: entry 1 (\""));
        assert_non_null(strstr(msg, "...\"): its pkg:// URI would pass 8192 bytes"));
        expect_fail(s, "pkg://big/ok.txt", ASSET_E_NOT_FOUND, "not mounted");
    }
    asset_embedded_file_t t[] = {{"ok.txt", "x", 1}, {fits, "y", 1}};
    assert_int_equal(asset_server_mount_embedded(s, "big", t, 2), ASSET_OK);
    char *uri = malloc(MAX + 1);
    snprintf(uri, MAX + 1, "pkg://big/%s", fits);
    expect_text(s, uri, "y");
    /* the others' refusals name their entry too */
    asset_embedded_file_t twice[] = {{"a", "x", 1}, {"b", "x", 1}, {"a", "x", 1}};
    assert_int_equal(asset_server_mount_embedded(s, "tw", twice, 3), ASSET_E_INVALID);
    assert_string_equal(msg, "asset_server_mount_embedded tw: entry 2 (\"a\"): another entry "
                             "has its path; nothing mounted");
    asset_server_destroy(s);
    free(uri);
    free(fits);
    free(over);
    free(pct);
}

/* A path given twice was mounted: the first entry's data was never served, and a
 * folder listed the path twice (two children, both with the second's data). */
static void test_mount_embedded_refuses_a_path_given_twice(void **state) {
    fx_t *f = *state;
    asset_embedded_file_t twice[] = {{"a.txt", "one", 3}, {"b.txt", "b", 1}, {"a.txt", "two", 3}};
    assert_int_equal(asset_server_mount_embedded(f->s, "e2", twice, 3), ASSET_E_INVALID);
    expect_fail(f->s, "pkg://e2/b.txt", ASSET_E_NOT_FOUND, "not mounted");
}

/* A path that is a file and a directory too ("a" and "a/b", in either order, or deeper:
 * "d/a" and "d/a/b/c") was mounted: "pkg://x/a" loaded the file, its folder listed the
 * entries under it, and the recursive listing of the package gave both, which no disk
 * (and no asset-embed of a folder) can hold. Refused at the mount, nothing mounted. */
static void test_mount_embedded_refuses_a_path_that_is_a_file_and_a_directory(void **state) {
    fx_t *f = *state;
    asset_embedded_file_t file_first[] = {{"a", "x", 1}, {"a/b", "y", 1}};
    asset_embedded_file_t dir_first[] = {{"a/b", "y", 1}, {"a", "x", 1}};
    asset_embedded_file_t deeper[] = {{"d/a/b/c", "y", 1}, {"z", "z", 1}, {"d/a", "x", 1}};
    assert_int_equal(asset_server_mount_embedded(f->s, "fd", file_first, 2), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount_embedded(f->s, "fd", dir_first, 2), ASSET_E_INVALID);
    assert_int_equal(asset_server_mount_embedded(f->s, "fd", deeper, 3), ASSET_E_INVALID);
    expect_fail(f->s, "pkg://fd/z", ASSET_E_NOT_FOUND, "not mounted");
    /* a name that only starts like a directory is none */
    asset_embedded_file_t fine[] = {{"a", "x", 1}, {"ab/c", "y", 1}, {"a.d/e", "z", 1}};
    assert_int_equal(asset_server_mount_embedded(f->s, "fd", fine, 3), ASSET_OK);
    expect_text(f->s, "pkg://fd/a", "x");
    expect_text(f->s, "pkg://fd/ab/c", "y");
}

/* An embedded table opens no file, so names Windows cannot open (device names, a
 * trailing dot, '?', ':') are fine in it, as on the POSIX machine that embedded them:
 * on Windows every pkg:// URI with one was refused (E_FORBIDDEN "a Windows device
 * name"), so a table with an "aux" folder never loaded there. Directory packages still
 * refuse them on Windows (test_platform_win32). */
static void test_embedded_names_windows_cannot_open_load_everywhere(void **state) {
    fx_t *f = *state;
    static const asset_embedded_file_t t[] = {{"aux.txt", "a", 1}, {"con/x.txt", "c", 1},
                                              {"notes.", "n", 1},  {"what?.txt", "w", 1},
                                              {"a:b.txt", "s", 1}, {"lpt1", "l", 1}};
    assert_int_equal(asset_server_mount_embedded(f->s, "aux", t, 6), ASSET_OK);
    expect_text(f->s, "pkg://aux/aux.txt", "a");
    expect_text(f->s, "pkg://aux/con/x.txt", "c");
    expect_text(f->s, "pkg://aux/notes.", "n");
    expect_text(f->s, "pkg://aux/what%3F.txt", "w");
    expect_text(f->s, "pkg://aux/a:b.txt", "s");
    expect_text(f->s, "pkg://aux/lpt1", "l");
    asset_batch_t *b = asset_server_load_folder(f->s, "pkg://aux", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 6);
    assert_int_equal(asset_batch_completed_count(b), 6);
    asset_batch_release(b);
}

static void test_embedded_and_directory_mounts_replace_each_other(void **state) {
    fx_t *f = *state;
    /* the newest mount of a name is the package, whichever kind it is */
    assert_int_equal(asset_server_mount_embedded(f->s, "game", emb_files, 3), ASSET_OK);
    expect_text(f->s, "pkg://game/hero.txt", "embedded hero");
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    expect_text(f->s, "pkg://game/levels/one.txt", "level one");
    expect_fail(f->s, "pkg://game/data/blob.bin", ASSET_E_NOT_FOUND, NULL);
    assert_int_equal(asset_server_mount_embedded(f->s, "game", emb_files, 3), ASSET_OK);
    expect_text(f->s, "pkg://game/data/sub/empty.txt", "");
}

/* ---- listing through the source vtable ---- */

static asset_status_t list(asset_server_t *s, const char *path, bool recursive, asset_list_t *l) {
    memset(l, 0, sizeof *l);
    char uri[256];
    snprintf(uri, sizeof uri, "pkg://%s", path);
    l->uri = uri;
    l->path = path;
    l->recursive = recursive;
    asset_status_t st = asset__pkg_source.list(s, uri, l);
    l->uri = NULL; /* points at the stack */
    return st;
}

static void expect_entries(const asset_list_t *l, const char *const *want, const int64_t *sizes,
                           size_t n) {
    if (l->count != n) {
        for (size_t i = 0; i < l->count; i++) print_message("  got %s\n", l->paths[i]);
        fail_msg("want %zu entries, got %zu", n, l->count);
    }
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l->paths[i], want[i]);
        assert_int_equal(l->sizes[i], sizes[i]);
    }
}

static int count_fds(void) { return tu_os_open_handles(); }

static void test_listing_a_directory_package(void **state) {
    fx_t *f = *state;
    free(tu_write_file(f->game, "b.txt", "bb", 2));
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_list_t l;
    assert_int_equal(list(f->s, "game", false, &l), ASSET_OK);
    const char *top[] = {"b.txt", "hero.txt"};
    const int64_t top_sz[] = {2, 4};
    expect_entries(&l, top, top_sz, 2); /* sorted, files only */
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "game", true, &l), ASSET_OK);
    const char *all[] = {"b.txt", "hero.txt", "levels/deep/two.txt", "levels/one.txt"};
    const int64_t all_sz[] = {2, 4, 9, 9};
    expect_entries(&l, all, all_sz, 4);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "game/levels", false, &l), ASSET_OK);
    const char *lv[] = {"one.txt"};
    const int64_t lv_sz[] = {9};
    expect_entries(&l, lv, lv_sz, 1);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "game/nothere", true, &l), ASSET_E_NOT_FOUND);
    assert_non_null(l.message);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "game/hero.txt", true, &l), ASSET_E_NOT_FOUND);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "nopkg", true, &l), ASSET_E_NOT_FOUND);
    assert_non_null(strstr(l.message, "not mounted"));
    asset__list_dispose(&l);
}

static void test_listing_package_root_does_not_leak_descriptors(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    asset_list_t l;
    assert_int_equal(list(f->s, "game", false, &l), ASSET_OK); /* warm up */
    asset__list_dispose(&l);
    int before = count_fds();
    TU_SKIP_UNLESS(before != -1, "the OS does not count open handles (wine)");
    for (int i = 0; i < 10; i++) {
        assert_int_equal(list(f->s, "game", true, &l), ASSET_OK);
        asset__list_dispose(&l);
        assert_int_equal(list(f->s, "game/levels", true, &l), ASSET_OK);
        asset__list_dispose(&l);
    }
    assert_int_equal(count_fds(), before);
}

/* A FIFO in a directory package or under file_root, opened beneath the root by either
 * opener (openat2, the O_NOFOLLOW walk): each open passes its flags on, O_NONBLOCK
 * among them, so a read of one fails E_UNSUPPORTED at once instead of holding a worker
 * (and destroy) until a writer shows up; a listing skips it, a listing of it is
 * NOT_FOUND (no directory), and so is a mount of it. Only the open by path (no root)
 * was tested (test_file: test_fifo_is_refused_without_blocking). */
static void test_a_fifo_beneath_a_root_is_refused_without_blocking(void **state) {
    fx_t *f = *state;
    TU_SKIP_UNLESS(tu_os_has_fifos(), "no FIFOs");
    char *pipe = tu_path(f->game, "pipe");
    assert_int_equal(tu_os_mkfifo(pipe), 0);
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    assert_int_equal(asset_server_mount(f->s, "fifo", pipe), ASSET_E_NOT_FOUND);
    asset_server_config_t cfg = {.file_root = f->game};
    asset_server_t *rooted = asset_server_create(&cfg);
    assert_non_null(rooted);
    for (int walk = 0; walk < 2; walk++) {
        asset__fs_force_walk = walk; /* the teardown turns it off again */
        expect_fail(f->s, "pkg://game/pipe", ASSET_E_UNSUPPORTED, "not a regular file");
        expect_fail(rooted, "pipe", ASSET_E_UNSUPPORTED, "not a regular file");
        asset_list_t l;
        assert_int_equal(list(f->s, "game/pipe", false, &l), ASSET_E_NOT_FOUND);
        asset__list_dispose(&l);
        assert_int_equal(list(f->s, "game", false, &l), ASSET_OK);
        const char *top[] = {"hero.txt"};
        const int64_t top_sz[] = {4};
        expect_entries(&l, top, top_sz, 1);
        asset__list_dispose(&l);
    }
    asset_server_destroy(rooted);
    free(pipe);
}

static void test_listing_an_embedded_package(void **state) {
    fx_t *f = *state;
    assert_int_equal(asset_server_mount_embedded(f->s, "emb", emb_files, 3), ASSET_OK);
    asset_list_t l;
    assert_int_equal(list(f->s, "emb", false, &l), ASSET_OK);
    const char *top[] = {"hero.txt"};
    const int64_t top_sz[] = {13};
    expect_entries(&l, top, top_sz, 1);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "emb", true, &l), ASSET_OK);
    const char *all[] = {"hero.txt", "data/blob.bin", "data/sub/empty.txt"};
    const int64_t all_sz[] = {13, 4, 0};
    expect_entries(&l, all, all_sz, 3);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "emb/data", false, &l), ASSET_OK);
    const char *data[] = {"blob.bin"};
    const int64_t data_sz[] = {4};
    expect_entries(&l, data, data_sz, 1);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "emb/data", true, &l), ASSET_OK);
    const char *rdata[] = {"blob.bin", "sub/empty.txt"};
    const int64_t rdata_sz[] = {4, 0};
    expect_entries(&l, rdata, rdata_sz, 2);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "emb/dat", true, &l), ASSET_E_NOT_FOUND); /* not a prefix match */
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "emb/hero.txt", true, &l), ASSET_E_NOT_FOUND);
    asset__list_dispose(&l);
    /* an empty table's root is an empty directory, as an empty directory package's is
     * (a mutation survivor: NOT_FOUND "no directory ''") */
    const asset_embedded_file_t none[] = {{"unused", "", 0}};
    assert_int_equal(asset_server_mount_embedded(f->s, "none", none, 0), ASSET_OK);
    assert_int_equal(list(f->s, "none", true, &l), ASSET_OK);
    assert_int_equal(l.count, 0);
    asset__list_dispose(&l);
}

/* A listing of an embedded package walked the whole table, whatever it listed: listing
 * each directory of a table of n files cost n each (200 folders of 100 files in a
 * table of 200,000: 1.4 ms a listing, 6.6 ms at 1,000,000). asset-embed's tables are
 * sorted: a directory's files are one run, found by binary search, and a listing
 * without recursion jumps over each subdirectory's run. */
static void test_listing_a_sorted_embedded_table_walks_only_the_directory(void **state) {
    fx_t *f = *state;
    enum { DIRS = 200, FILES = 100, N = DIRS * FILES + 3 };
    asset_embedded_file_t *t = calloc(N, sizeof *t);
    char(*paths)[32] = calloc(N, sizeof *paths);
    assert_non_null(t);
    assert_non_null(paths);
    size_t n = 0;
    snprintf(paths[n++], 32, "a.txt"); /* sorted as asset-embed sorts: by bytes */
    for (int d = 0; d < DIRS; d++) {
        for (int i = 0; i < FILES; i++) snprintf(paths[n++], 32, "d%03d/f%03d.bin", d, i);
        if (d == 100) snprintf(paths[n++], 32, "d100/sub/x.bin");
        if (d == 100) snprintf(paths[n++], 32, "d100x.bin");
    }
    assert_int_equal(n, N);
    for (size_t i = 0; i < n; i++) t[i] = (asset_embedded_file_t){paths[i], "x", 1};
    assert_int_equal(asset_server_mount_embedded(f->s, "big", t, n), ASSET_OK);
    asset_list_t l;
    uint64_t v0 = atomic_load(&asset__pkg_list_visits);
    assert_int_equal(list(f->s, "big/d100", false, &l), ASSET_OK);
    assert_int_equal(l.count, FILES);
    assert_string_equal(l.paths[0], "f000.bin");
    assert_string_equal(l.paths[FILES - 1], "f099.bin");
    asset__list_dispose(&l);
    uint64_t v1 = atomic_load(&asset__pkg_list_visits);
    if (v1 - v0 > 4 * FILES)
        fail_msg("listing 100 files looked at %llu entries", (unsigned long long)(v1 - v0));
    assert_int_equal(list(f->s, "big/d100", true, &l), ASSET_OK);
    assert_int_equal(l.count, FILES + 1);
    assert_string_equal(l.paths[FILES], "sub/x.bin");
    asset__list_dispose(&l);
    /* the root without recursion: one file, every directory jumped over */
    v0 = atomic_load(&asset__pkg_list_visits);
    assert_int_equal(list(f->s, "big", false, &l), ASSET_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.paths[0], "a.txt");
    assert_string_equal(l.paths[1], "d100x.bin");
    asset__list_dispose(&l);
    v1 = atomic_load(&asset__pkg_list_visits);
    if (v1 - v0 > (uint64_t)DIRS * 40)
        fail_msg("listing the root looked at %llu entries", (unsigned long long)(v1 - v0));
    assert_int_equal(list(f->s, "big", true, &l), ASSET_OK);
    assert_int_equal(l.count, N);
    asset__list_dispose(&l);
    /* a prefix of a directory's name is none; a file is none */
    assert_int_equal(list(f->s, "big/d10", false, &l), ASSET_E_NOT_FOUND);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "big/a.txt", false, &l), ASSET_E_NOT_FOUND);
    asset__list_dispose(&l);
    assert_int_equal(list(f->s, "big/d199", false, &l), ASSET_OK);
    assert_int_equal(l.count, FILES);
    asset__list_dispose(&l);
    /* through a folder load, as a game does */
    asset_batch_t *b = asset_server_load_folder(f->s, "pkg://big/d007", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), FILES);
    assert_int_equal(asset_batch_failed_count(b), 0);
    asset_batch_release(b);
    /* the table must outlive the server: the teardown destroys it */
    asset_server_destroy(f->s);
    f->s = NULL;
    free(t);
    free(paths);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

/* Regression: a package on pkg_path was opened beneath its search directory, so one
 * that is a symlink to its directory elsewhere (packs/dlc -> /opt/dlc, as a distribution
 * installs data) was "not mounted" (E_NOT_FOUND), though asset_server_mount() of the
 * same path follows the link. The package's own paths stay confined. */
static void test_a_pkg_path_package_may_be_a_symlink_to_its_directory(void **state) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks");
    fx_t *f = *state;
    char *root = tu_path(f->dir, "packs");
    tu_os_mkdir(root);
    char *link = tu_path(root, "dlc");
    assert_int_equal(tu_os_symlink(f->game, link), 0);
    asset_server_config_t cfg = {.pkg_path = root};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    expect_text(s, "pkg://dlc/levels/one.txt", "level one");
    char *secret = tu_path(f->outside, "secret.txt");
    char *esc = tu_path(f->game, "esc.txt");
    assert_int_equal(tu_os_symlink(secret, esc), 0);
    expect_fail(s, "pkg://dlc/esc.txt", ASSET_E_FORBIDDEN, "escapes its root");
    asset_server_destroy(s);
    free(esc);
    free(secret);
    free(link);
    free(root);
}

/* A package on pkg_path that cannot be looked at fails saying why and where: a search
 * directory without permission to enter (chmod 000: ASSET_E_FORBIDDEN unless a later
 * directory has the package, as execvp() walks PATH; root enters it, so that case is
 * skipped there), or a package that is a loop of symlinks (ASSET_E_IO, the first
 * directory that has the package is it; as root too). Both were "package 'x' is not
 * mounted" (E_NOT_FOUND), and the loop served a later directory's package instead. */
static asset_status_t load_unopenable(const char *pkg_path, const char *where) {
    asset_server_config_t cfg = {.pkg_path = pkg_path};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *h = asset_server_load(s, "pkg://game/hero.txt", NULL);
    asset_status_t st = tu_wait(h);
    char msg[4096];
    snprintf(msg, sizeof msg, "%s", asset_handle_error_message(h));
    asset_handle_release(h);
    asset_list_t l;
    asset_status_t lst = list(s, "game", true, &l);
    bool listed = lst == st && (st == ASSET_OK || strstr(l.message, where));
    if (!listed) print_message("listing: %s (%s)\n", asset_err_name(lst), l.message);
    asset__list_dispose(&l);
    asset_server_destroy(s);
    if (st != ASSET_OK && !strstr(msg, where)) fail_msg("'%s' does not contain '%s'", msg, where);
    assert_true(listed);
    return st;
}

static void test_a_pkg_path_package_that_cannot_be_opened_says_why(void **state) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks");
    fx_t *f = *state;
    char sep = tu_os_windows_paths() ? ';' : ':'; /* docs/platforms.md */
    char *root = tu_path(f->dir, "packs");
    tu_os_mkdir(root);
    char *loop = tu_path(root, "game");
    assert_int_equal(tu_os_symlink(loop, loop), 0); /* packs/game -> itself */
    char path[4096], where[4096];
    snprintf(path, sizeof path, "%s%c%s", root, sep, f->dir); /* f->dir has "game" too */
    snprintf(where, sizeof where, "package 'game' at %s/game: ", root);
    assert_int_equal(load_unopenable(path, where), ASSET_E_IO);
    remove(loop);
    if (tu_os_has_modes()) {
        free(tu_write_file(loop, "hero.txt", "locked", 6));
        assert_int_equal(tu_os_chmod(root, 0), 0);
        snprintf(where, sizeof where, "package 'game' at %s/game: Permission denied", root);
        assert_int_equal(load_unopenable(root, where), ASSET_E_FORBIDDEN);
        assert_int_equal(load_unopenable(path, where), ASSET_OK); /* f->dir's "game" */
        tu_os_chmod(root, 0755);
    } else {
        print_message("  permissions are not enforced (Windows, or root): chmod 000 skipped\n");
    }
    free(loop);
    free(root);
}

/* Regression: pkg_path is read once, at create, and bare relative paths resolve against
 * the working directory of that moment, but a relative pkg_path directory was opened
 * against the working directory of each lookup: after the host changed directory its
 * packages were "not mounted" (or others of the same name were found). It is made
 * absolute at create, against the same directory as bare paths. */
static void test_a_relative_pkg_path_is_taken_at_create(void **state) {
    fx_t *f = *state;
    free(tu_write_file(f->dir, "packs/dlc/map.txt", "dlc map", 7));
    char *elsewhere = tu_path(f->dir, "elsewhere");
    tu_os_mkdir(elsewhere);
    char old[4096];
    assert_int_equal(tu_os_getcwd(old, sizeof old), 0);
    assert_int_equal(tu_os_chdir(f->dir), 0);
    asset_server_config_t cfg = {.pkg_path = "packs"};
    asset_server_t *s = asset_server_create(&cfg);
    int moved = tu_os_chdir(elsewhere);
    asset_handle_t *h = asset_server_load(s, "pkg://dlc/map.txt", NULL);
    asset_status_t st = tu_wait(h);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", asset_handle_error_message(h));
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(tu_os_chdir(old), 0);
    free(elsewhere);
    assert_int_equal(moved, 0);
    if (st != ASSET_OK) fail_msg("pkg://dlc/map.txt: %s", msg);
}

/* Empty entries of pkg_path ("a::b", a separator at either end) name no directory: not
 * the working directory, as PATH's do (a mutation survivor: taken, each was the working
 * directory at create, and its subdirectories were packages). */
static void test_empty_pkg_path_entries_are_skipped(void **state) {
    fx_t *f = *state;
    free(tu_write_file(f->dir, "packs/dlc/map.txt", "dlc map", 7));
    char old[4096], path[8];
    char sep = tu_os_windows_paths() ? ';' : ':'; /* docs/platforms.md */
    snprintf(path, sizeof path, "%c%c", sep, sep);
    assert_int_equal(tu_os_getcwd(old, sizeof old), 0);
    assert_int_equal(tu_os_chdir(f->dir), 0);
    asset_server_config_t cfg = {.pkg_path = path};
    asset_server_t *s = asset_server_create(&cfg);
    assert_int_equal(tu_os_chdir(old), 0);
    assert_non_null(s);
    expect_fail(s, "pkg://packs/dlc/map.txt", ASSET_E_NOT_FOUND, "not mounted");
    asset_server_destroy(s);
}

/* Blocks until a result is queued or 10 ms pass (a watch's setup signals nothing). */
static void wait_news(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    s->waiters++;
    uv_cond_timedwait(&s->done_cond, &s->lock, 10 * 1000000ull);
    s->waiters--;
    uv_mutex_unlock(&s->lock);
}

static void count_reload(asset_handle_t *h, void *user) {
    (void)h;
    ++*(int *)user;
}

/* A directory mounted by a relative path is opened against the working directory of
 * the mount, but the path kept for hot reload stayed relative: a file loaded after the
 * host changed directory was watched at that path under the new directory (missing, or
 * another tree), and its edits were never reloaded. */
static void test_a_relative_mount_is_watched_where_it_was_mounted(void **state) {
    fx_t *f = *state;
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    if (pf && !strcmp(pf, "web")) { /* the web build watches no files (docs/web.md) */
        print_message("  skipped: no file watching in the web build\n");
        skip();
    }
    char *elsewhere = tu_path(f->dir, "elsewhere");
    tu_os_mkdir(elsewhere);
    char old[4096];
    assert_int_equal(tu_os_getcwd(old, sizeof old), 0);
    asset_server_config_t cfg = {.watch = true, .reload_debounce_ms = 20};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    assert_int_equal(tu_os_chdir(f->dir), 0);
    int mounted = asset_server_mount(s, "rel", "game");
    int moved = tu_os_chdir(elsewhere);
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h = asset_server_load(s, "pkg://rel/hero.txt", &o);
    asset_status_t st = tu_wait(h);
    int reloads = 0;
    asset_handle_on_reloaded(h, count_reload, &reloads);
    /* its watch is set up on the I/O thread (which compares the version once): wait */
    uint64_t deadline = uv_hrtime() + 10ull * 1000000000u;
    while (st == ASSET_OK && atomic_load(&s->watched_files) < 1 && uv_hrtime() < deadline) {
        wait_news(s);
    }
    /* two edits: the first may be seen by luck (the first look at a path that is not
     * there reloads once, and the read, through the mount, finds the edit) */
    static const char *const edits[] = {"hero, second edition", "hero, third"};
    bool edited = true;
    for (int e = 0; e < 2 && st == ASSET_OK && edited; e++) {
        free(tu_write_file(f->game, "hero.txt", edits[e], strlen(edits[e])));
        deadline = uv_hrtime() + 10ull * 1000000000u;
        while (reloads <= e && uv_hrtime() < deadline) {
            asset_server_flush(s);
            wait_news(s);
        }
        const asset_bytes_t *b = asset_handle_value(h);
        edited =
            reloads > e && b && b->size == strlen(edits[e]) && !memcmp(b->data, edits[e], b->size);
    }
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(tu_os_chdir(old), 0);
    free(elsewhere);
    assert_int_equal(mounted, ASSET_OK);
    assert_int_equal(moved, 0);
    assert_int_equal(st, ASSET_OK);
    if (!edited) fail_msg("edit %d of a relative mount's file was not reloaded", reloads + 1);
}

/* The allocator armed by test_a_load_after_a_first_mount_joins_no_read_that_found_none:
 * the message of a read that found the package not mounted (a size no other allocation
 * has: a long name) mounts it and loads the file again, from the reading worker, between
 * the read's lookup and its job's end. */
static struct {
    atomic_bool armed;
    size_t size;
    asset_server_t *s;
    const char *name, *dir;
    char uri[256];
    asset_handle_t *late;
    bool between; /* the mount of `name` is made inside another mount (mount_between) */
} g_late;

/* test_two_mounts_at_once_leave_no_load_joining_a_read_that_found_none's: called by the
 * mount of "other" once it is made, before it looks at the loads in flight: the mount
 * of the package and the load then, as another thread mounting at that moment would */
static void mount_between(const char *name) {
    if (strcmp(name, "other")) return;
    asset__pkg_mounted_hook = NULL;
    assert_int_equal(asset_server_mount(g_late.s, g_late.name, g_late.dir), ASSET_OK);
    asset_load_options_t o = {.loader = "bytes"};
    g_late.late = asset_server_load(g_late.s, g_late.uri, &o);
}

static void *late_alloc(size_t n, void *user) {
    (void)user;
    if (n == g_late.size && atomic_exchange(&g_late.armed, false)) {
        if (g_late.between) {
            asset__pkg_mounted_hook = mount_between;
            assert_int_equal(asset_server_mount(g_late.s, "other", g_late.dir), ASSET_OK);
        } else {
            assert_int_equal(asset_server_mount(g_late.s, g_late.name, g_late.dir), ASSET_OK);
            asset_load_options_t o = {.loader = "bytes"};
            g_late.late = asset_server_load(g_late.s, g_late.uri, &o);
        }
    }
    return malloc(n);
}
static void *late_realloc(void *p, size_t n, void *user) {
    (void)user;
    return realloc(p, n);
}
static void late_free(void *p, void *user) {
    (void)user;
    free(p);
}

/* A load made after a first mount of its package joined a read in flight that had
 * found the package not mounted (before the mount) and failed with ASSET_E_NOT_FOUND:
 * a first mount hides no mount, so it marked no load in flight as read before it, and a
 * later load coalesces with any unmarked one. The late load reads the mount. */
static void late_mount_run(fx_t *f, bool between) {
    char name[80];
    memset(name, 'q', 70);
    name[70] = 0;
    g_late.s = f->s;
    g_late.name = name;
    g_late.dir = f->game;
    g_late.late = NULL;
    g_late.between = between;
    snprintf(g_late.uri, sizeof g_late.uri, "pkg://%s/hero.txt", name);
    g_late.size = (size_t)snprintf(NULL, 0, "package '%s' is not mounted", name) + 1;
    atomic_store(&g_late.armed, true);
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h = asset_server_load(f->s, g_late.uri, &o);
    assert_int_equal(tu_wait(h), ASSET_E_NOT_FOUND); /* it read before the mount */
    assert_false(atomic_load(&g_late.armed));
    assert_non_null(g_late.late);
    asset_status_t st = tu_wait(g_late.late);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", asset_handle_error_message(g_late.late));
    asset_handle_release(g_late.late);
    asset_handle_release(h);
    if (st != ASSET_OK) fail_msg("the load after the mount: %s", msg);
}

static void test_a_load_after_a_first_mount_joins_no_read_that_found_none(void **state) {
    skip_without_threads("a read on a worker");
    late_mount_run(*state, false);
}

/* The same with two mounts at once: the first (of another package) took the "a read
 * found none" mark and had not looked at the loads in flight yet when the second, of
 * the package the read missed, was made. That one saw no mark and looked at none: a
 * load after it joined the read, which failed with ASSET_E_NOT_FOUND. */
static void test_two_mounts_at_once_leave_no_load_joining_a_read_that_found_none(void **state) {
    skip_without_threads("a read on a worker");
    late_mount_run(*state, true);
}

int main(void) {
    /* test_a_load_after_a_first_mount_joins_no_read_that_found_none's hook */
    asset_set_allocator(&(asset_allocator_t){late_alloc, late_realloc, late_free, NULL});
    const struct CMUnitTest tests[] = {
        FX(test_a_load_after_a_first_mount_joins_no_read_that_found_none),
        FX(test_two_mounts_at_once_leave_no_load_joining_a_read_that_found_none),
        FX(test_mounted_directory_serves_its_files),
        FX(test_a_pkg_uri_normalised_picks_the_loader_of_its_normal_name),
        FX(test_replacing_a_source_keeps_the_entries_of_a_scheme_it_begins),
        FX(test_mount_refuses_bad_names_and_missing_dirs),
        FX(test_unknown_package_is_not_found),
        FX(test_remount_replaces_the_package),
        FX(test_remounts_while_loads_read_the_package),
        FX(test_remounting_many_packages_is_not_quadratic),
        FX(test_remount_keeps_cached_values_until_invalidated),
        FX(test_a_remount_during_a_load_serves_later_loads_the_new_package),
        FX(test_a_remount_spares_the_loads_of_a_package_whose_name_it_begins),
        FX(test_a_mount_costs_nothing_per_load_in_flight),
        FX(test_a_stale_not_found_leaves_a_later_loads_cache_entry),
        FX(test_a_reload_after_a_remount_moves_a_live_handle_to_the_new_package),
        FX(test_pkg_path_from_config_finds_packages),
        FX(test_a_package_found_on_pkg_path_makes_no_mount_look_at_loads),
        FX(test_a_mount_made_during_a_pkg_path_lookup_wins),
        FX(test_pkg_path_from_environment_unless_configured),
        FX(test_a_pkg_path_package_may_be_a_symlink_to_its_directory),
        FX(test_a_pkg_path_package_that_cannot_be_opened_says_why),
        FX(test_a_relative_pkg_path_is_taken_at_create),
        FX(test_empty_pkg_path_entries_are_skipped),
        FX(test_a_relative_mount_is_watched_where_it_was_mounted),
        FX(test_paths_leaving_the_package_are_refused),
        FX(test_symlink_out_of_package_is_refused),
        FX(test_symlink_out_of_package_is_refused_by_nofollow_walk),
        FX(test_symlink_loop_in_package_is_an_io_error_not_an_escape),
        FX(test_symlink_loop_in_package_is_refused_by_nofollow_walk),
        FX(test_a_fifo_beneath_a_root_is_refused_without_blocking),
        FX(test_cached_pkg_asset_completes_at_next_flush_without_io),
        FX(test_embedded_package_loads_without_file_io),
        cmocka_unit_test(test_embedded_package_without_any_disk_package),
        FX(test_a_directory_of_an_embedded_package_is_a_directory),
        FX(test_mount_embedded_validates_its_table),
        cmocka_unit_test(test_mount_embedded_refuses_a_path_no_uri_can_hold),
        FX(test_mount_embedded_refuses_a_path_given_twice),
        FX(test_mount_embedded_refuses_a_path_that_is_a_file_and_a_directory),
        FX(test_embedded_names_windows_cannot_open_load_everywhere),
        FX(test_embedded_and_directory_mounts_replace_each_other),
        FX(test_listing_a_directory_package),
        FX(test_listing_package_root_does_not_leak_descriptors),
        FX(test_listing_an_embedded_package),
        FX(test_listing_a_sorted_embedded_table_walks_only_the_directory),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
