/* test_file.c - the file:// source against real temporary directories: reading,
 * errors, size cap, file_root confinement (openat2 and the O_NOFOLLOW walk), and
 * version-based revalidation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "fs.h"
#include "internal.h"
#include "test_util.h"
#include "tu_os.h"

/* ---- helpers ---- */

typedef struct fixture {
    char *dir; /* scratch: dir/root is the file_root of the confined tests */
    char *root;
} fixture_t;

static int setup(void **state) {
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    f->root = tu_path(f->dir, "root");
    tu_os_mkdir(f->root);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture_t *f = *state;
    asset__fs_force_walk = false;
    asset__fs_coarse_times = false;
    tu_rmrf(f->dir);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

static asset_server_t *mk_server_watching(const char *root, size_t max_size, bool watch) {
    asset_server_config_t cfg = {0};
    cfg.max_workers = 2;
    cfg.file_root = root;
    cfg.max_asset_size = max_size;
    cfg.watch = watch;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    return s;
}

static asset_server_t *mk_server(const char *root, size_t max_size) {
    return mk_server_watching(root, max_size, false);
}

static void write_text(const char *dir, const char *rel, const char *text) {
    free(tu_write_file(dir, rel, text, strlen(text)));
}

/* A "file" source that wraps the built-in one and records what it answered. */
typedef struct spy {
    asset_server_t *s;
    atomic_int reads, not_modified, ok;
} spy_t;
static asset_status_t spy_read(void *ctx, asset_request_t *r) {
    spy_t *sp = ctx;
    asset_status_t st = asset__file_source.read(sp->s, r);
    atomic_fetch_add(&sp->reads, 1);
    if (st == ASSET_NOT_MODIFIED) atomic_fetch_add(&sp->not_modified, 1);
    if (st == ASSET_OK) atomic_fetch_add(&sp->ok, 1);
    return st;
}
static void spy_install(spy_t *sp, asset_server_t *s) {
    memset(sp, 0, sizeof *sp);
    sp->s = s;
    asset_source_t src = asset__file_source;
    src.read = spy_read;
    src.list = NULL;
    assert_int_equal(asset_server_register_source(s, &src, sp), ASSET_OK);
}

/* ---- plain reads ---- */

static void test_file_loads_bytes(void **state) {
    fixture_t *f = *state;
    char *p = tu_write_file(f->dir, "a/hello.txt", "hello file", 10);
    char *uri = tu_file_uri(p);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, uri, ASSET_OK);
    tu_expect_text(h, "hello file");
    assert_string_equal(asset_handle_uri(h), uri);
    asset_handle_t *bare = tu_load_wait(s, p, ASSET_OK); /* a bare absolute path */
    tu_expect_text(bare, "hello file");
    assert_string_equal(asset_handle_uri(bare), uri);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.bytes_read, 10 + 0); /* the second load revalidated: no bytes */
    asset_handle_release(h);
    asset_handle_release(bare);
    asset_server_destroy(s);
    free(uri);
    free(p);
}

static void test_file_loads_large_file_intact(void **state) {
    fixture_t *f = *state;
    size_t n = 3 * 1024 * 1024 + 17; /* several read chunks */
    char *p = tu_write_pattern(f->dir, "big.bin", n);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, p, ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_int_equal(b->size, n);
    for (size_t i = 0; i < n; i += 4093) assert_int_equal(b->data[i], (uint8_t)(i * 31 + 7));
    assert_int_equal(b->data[n - 1], (uint8_t)((n - 1) * 31 + 7));
    assert_int_equal(b->data[n], 0);
    assert_true(asset_handle_progress(h) == 1.0f);
    asset_handle_release(h);
    asset_server_destroy(s);
    free(p);
}

static void test_missing_file_is_not_found_with_message(void **state) {
    fixture_t *f = *state;
    char *p = tu_path(f->dir, "nope/missing.txt");
    char *uri = tu_file_uri(p);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, uri, ASSET_E_NOT_FOUND);
    const char *msg = asset_handle_error_message(h);
    assert_non_null(strstr(msg, uri));
    assert_non_null(strstr(msg, "open"));
    assert_non_null(strstr(msg, strerror(ENOENT)));
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    asset_handle_release(h);
    asset_server_destroy(s);
    free(uri);
    free(p);
}

static void test_directory_as_file_is_an_error(void **state) {
    fixture_t *f = *state;
    char *d = tu_path(f->dir, "adir");
    tu_os_mkdir(d);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = asset_server_load(s, d, NULL);
    asset_status_t st = tu_wait(h);
    assert_true(st < 0);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    assert_non_null(strstr(asset_handle_error_message(h), "directory"));
    assert_non_null(strstr(asset_handle_error_message(h), d));
    asset_handle_release(h);
    asset_server_destroy(s);
    free(d);
}

static void test_fifo_is_refused_without_blocking(void **state) {
    /* opening a FIFO for reading blocks until a writer appears: the source must
     * not hang a worker (and with it destroy) on one */
    fixture_t *f = *state;
    /* not on the web (NODERAWFS makes a regular file), not on Windows */
    TU_SKIP_UNLESS(tu_os_has_fifos(), "no FIFOs");
    char *p = tu_path(f->dir, "fifo");
    assert_int_equal(tu_os_mkfifo(p), 0);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, p, ASSET_E_UNSUPPORTED);
    assert_non_null(strstr(asset_handle_error_message(h), "regular"));
    asset_handle_release(h);
    asset_server_destroy(s);
    free(p);
}

static void test_empty_file_loads_with_size_zero(void **state) {
    fixture_t *f = *state;
    char *p = tu_write_file(f->dir, "empty.txt", "", 0);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, p, ASSET_OK);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_LOADED);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_non_null(b);
    assert_int_equal(b->size, 0);
    assert_non_null(b->data);
    assert_int_equal(b->data[0], 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    free(p);
}

static void test_oversized_file_is_too_large(void **state) {
    fixture_t *f = *state;
    char *big = tu_write_pattern(f->dir, "101.bin", 101);
    char *fits = tu_write_pattern(f->dir, "100.bin", 100);
    asset_server_t *s = mk_server(NULL, 100);
    asset_handle_t *h = tu_load_wait(s, big, ASSET_E_TOO_LARGE);
    assert_non_null(strstr(asset_handle_error_message(h), "max_asset_size"));
    assert_non_null(strstr(asset_handle_error_message(h), big));
    asset_handle_t *ok = tu_load_wait(s, fits, ASSET_OK);
    assert_int_equal(((const asset_bytes_t *)asset_handle_value(ok))->size, 100);
    asset_handle_release(h);
    asset_handle_release(ok);
    asset_server_destroy(s);
    free(big);
    free(fits);
}

static void test_bare_relative_path_resolves_against_cwd_at_create(void **state) {
    fixture_t *f = *state;
    write_text(f->dir, "rel/r.txt", "relative");
    char old[4096];
    assert_int_equal(tu_os_getcwd(old, sizeof old), 0);
    assert_int_equal(tu_os_chdir(f->dir), 0);
    asset_server_t *s = mk_server(NULL, 0);
    assert_int_equal(tu_os_chdir(old), 0); /* the base was taken at create */
    asset_handle_t *h = tu_load_wait(s, "rel/r.txt", ASSET_OK);
    tu_expect_text(h, "relative");
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* ---- file_root ---- */

static void test_file_root_relative_path_resolves_under_root(void **state) {
    fixture_t *f = *state;
    write_text(f->root, "sub/a.txt", "inside");
    asset_server_t *s = mk_server(f->root, 0);
    asset_handle_t *h = tu_load_wait(s, "sub/a.txt", ASSET_OK);
    tu_expect_text(h, "inside");
    char *want = tu_file_uri(f->root);
    assert_true(strncmp(asset_handle_uri(h), want, strlen(want)) == 0);
    assert_string_equal(asset_handle_uri(h) + strlen(want), "/sub/a.txt");
    /* the same file by absolute URI is inside too */
    char *abs = tu_path(f->root, "sub/a.txt");
    asset_handle_t *h2 = tu_load_wait(s, abs, ASSET_OK);
    tu_expect_text(h2, "inside");
    asset_handle_release(h);
    asset_handle_release(h2);
    asset_server_destroy(s);
    free(abs);
    free(want);
}

static void test_file_root_escaping_path_is_forbidden(void **state) {
    fixture_t *f = *state;
    char *outside = tu_write_file(f->dir, "outside.txt", "secret", 6);
    char *outside_uri = tu_file_uri(outside);
    asset_server_t *s = mk_server(f->root, 0);
    asset_handle_t *a = tu_load_wait(s, "../outside.txt", ASSET_E_FORBIDDEN);
    asset_handle_t *b = tu_load_wait(s, outside_uri, ASSET_E_FORBIDDEN);
    asset_handle_t *c = tu_load_wait(s, "sub/../../outside.txt", ASSET_E_FORBIDDEN);
    assert_null(asset_handle_value(a));
    assert_non_null(strstr(asset_handle_error_message(b), outside_uri));
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.source_reads, 0);
    assert_int_equal(st.bytes_read, 0);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_server_destroy(s);
    free(outside_uri);
    free(outside);
}

static void check_symlinks_out_are_forbidden(fixture_t *f) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks (test_platform_win32 covers reparse points)");
    char *outside = tu_write_file(f->dir, "outside.txt", "secret", 6);
    char *outdir_file = tu_write_file(f->dir, "outdir/f.txt", "secret too", 10);
    char *outdir = tu_path(f->dir, "outdir");
    char *link = tu_path(f->root, "link.txt");
    char *linkdir = tu_path(f->root, "linkdir");
    char *rellink = tu_path(f->root, "rel.txt");
    tu_os_unlink(link);
    tu_os_unlink(linkdir);
    tu_os_unlink(rellink);
    assert_int_equal(tu_os_symlink(outside, link), 0);             /* absolute target */
    assert_int_equal(tu_os_symlink(outdir, linkdir), 0);           /* a directory */
    assert_int_equal(tu_os_symlink("../outside.txt", rellink), 0); /* relative target */
    write_text(f->root, "plain.txt", "fine");

    asset_server_t *s = mk_server(f->root, 0);
    asset_handle_t *a = tu_load_wait(s, "link.txt", ASSET_E_FORBIDDEN);
    asset_handle_t *b = tu_load_wait(s, "linkdir/f.txt", ASSET_E_FORBIDDEN);
    asset_handle_t *c = tu_load_wait(s, "rel.txt", ASSET_E_FORBIDDEN);
    asset_handle_t *d = tu_load_wait(s, "plain.txt", ASSET_OK); /* the root itself works */
    tu_expect_text(d, "fine");
    assert_null(asset_handle_value(a));
    assert_null(asset_handle_value(b));
    assert_non_null(strstr(asset_handle_error_message(a), "link.txt"));
    assert_non_null(strstr(asset_handle_error_message(a), "escapes"));
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.bytes_read, 4); /* nothing of the secrets */
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_handle_release(d);
    asset_server_destroy(s);
    free(outside);
    free(outdir_file);
    free(outdir);
    free(link);
    free(linkdir);
    free(rellink);
}

static void test_file_root_symlink_pointing_outside_is_forbidden(void **state) {
    asset__fs_force_walk = false;
    check_symlinks_out_are_forbidden(*state);
}

static void test_file_root_symlink_outside_forbidden_with_walk_fallback(void **state) {
    asset__fs_force_walk = true; /* set before the server's threads exist */
    check_symlinks_out_are_forbidden(*state);
    asset__fs_force_walk = false;
}

static void test_file_root_walk_fallback_reads_nested_files(void **state) {
    fixture_t *f = *state;
    write_text(f->root, "a/b/c/deep.txt", "deep");
    asset__fs_force_walk = true;
    asset_server_t *s = mk_server(f->root, 0);
    asset_handle_t *h = tu_load_wait(s, "a/b/c/deep.txt", ASSET_OK);
    tu_expect_text(h, "deep");
    asset_handle_t *m = tu_load_wait(s, "a/b/missing.txt", ASSET_E_NOT_FOUND);
    asset_handle_t *d = asset_server_load(s, "a/b", NULL);
    assert_true(tu_wait(d) < 0); /* a directory is not an asset */
    asset_handle_release(h);
    asset_handle_release(m);
    asset_handle_release(d);
    asset_server_destroy(s);
    asset__fs_force_walk = false;
}

static int count_open_fds(void) { return tu_os_open_handles(); }

static void test_loading_the_root_itself_leaks_no_descriptor(void **state) {
    fixture_t *f = *state;
    for (int walk = 0; walk < 2; walk++) {
        asset__fs_force_walk = walk;
        int before = count_open_fds();
        TU_SKIP_UNLESS(before != -1, "the OS does not count open handles (wine)");
        assert_true(before > 0);
        asset_server_t *s = mk_server(f->root, 0);
        char *root_uri = tu_file_uri(f->root);
        for (int i = 0; i < 20; i++) {
            asset_load_options_t o = {0};
            o.no_cache = true;
            asset_handle_t *h = asset_server_load(s, i % 2 ? "." : root_uri, &o);
            assert_true(tu_wait(h) < 0); /* a directory, not an asset */
            assert_non_null(strstr(asset_handle_error_message(h), "directory"));
            asset_handle_release(h);
        }
        asset_server_destroy(s);
        free(root_uri);
        assert_int_equal(count_open_fds(), before);
    }
    asset__fs_force_walk = false;
}

static void test_symlink_without_file_root_is_followed(void **state) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks (test_platform_win32 covers reparse points)");
    fixture_t *f = *state;
    char *target = tu_write_file(f->dir, "target.txt", "via link", 8);
    char *link = tu_path(f->dir, "alias.txt");
    assert_int_equal(tu_os_symlink(target, link), 0);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, link, ASSET_OK);
    tu_expect_text(h, "via link");
    asset_handle_release(h);
    asset_server_destroy(s);
    free(target);
    free(link);
}

/* Without file_root there is no root to escape: a loop of symlinks is an I/O error in
 * the OS's words, not "path escapes its root" (FORBIDDEN, as it was). */
static void test_symlink_loop_without_file_root_is_an_io_error(void **state) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks (test_platform_win32 covers reparse points)");
    fixture_t *f = *state;
    char *a = tu_path(f->dir, "loop_a"), *b = tu_path(f->dir, "loop_b");
    assert_int_equal(tu_os_symlink(b, a), 0);
    assert_int_equal(tu_os_symlink(a, b), 0);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, a, ASSET_E_IO);
    const char *msg = asset_handle_error_message(h);
    assert_null(strstr(msg, "escapes"));
    assert_non_null(strstr(msg, "open: "));
    asset_handle_release(h);
    asset_batch_t *batch = asset_server_load_folder(s, a, NULL); /* the same for a listing */
    assert_non_null(batch);
    assert_int_equal(asset_batch_wait(batch, 60000), ASSET_E_IO);
    assert_null(strstr(asset_batch_error_message(batch), "escapes"));
    asset_batch_release(batch);
    asset_server_destroy(s);
    free(a);
    free(b);
}

/* ---- versions and revalidation ---- */

static void test_unchanged_file_revalidates_as_cache_hit(void **state) {
    fixture_t *f = *state;
    char *p = tu_write_file(f->dir, "v.cnt", "one", 3);
    asset_server_t *s = mk_server(NULL, 0);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    spy_t spy;
    spy_install(&spy, s);

    asset_handle_t *h1 = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h1, "one");
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.cache_misses, 1);
    assert_int_equal(st.cache_hits, 0);

    asset_handle_t *h2 = tu_load_wait(s, p, ASSET_OK);
    asset_server_stats(s, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.cache_misses, 1);
    assert_int_equal(atomic_load(&spy.reads), 2);        /* it did ask the source ... */
    assert_int_equal(atomic_load(&spy.not_modified), 1); /* ... which said NOT_MODIFIED */
    assert_int_equal(tu_counter_parses(&cnt), 1);        /* no second parse */
    assert_ptr_equal(asset_handle_value(h2), asset_handle_value(h1)); /* the same value */

    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    assert_int_equal(tu_counter_frees(&cnt), 1);
    free(p);
}

static void test_rewritten_file_is_seen_on_next_load(void **state) {
    fixture_t *f = *state;
    char *p = tu_write_file(f->dir, "w.cnt", "one", 3);
    asset_server_t *s = mk_server(NULL, 0);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    spy_t spy;
    spy_install(&spy, s);

    asset_handle_t *h1 = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h1, "one");
    /* a different size: a different version whatever the clock granularity */
    free(tu_write_file(f->dir, "w.cnt", "three", 5));
    asset_handle_t *h2 = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h2, "three");
    tu_expect_text(h1, "one"); /* the old value lives on with its handle */
    assert_int_equal(tu_counter_parses(&cnt), 2);
    assert_int_equal(atomic_load(&spy.not_modified), 0);

    /* the same size, a different mtime: also a new version */
    free(tu_write_file(f->dir, "w.cnt", "THREE", 5));
    assert_int_equal(tu_os_shift_mtime(p, 5), 0);
    asset_handle_t *h3 = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h3, "THREE");
    assert_int_equal(tu_counter_parses(&cnt), 3);

    /* and unchanged since: a hit again */
    asset_handle_t *h4 = tu_load_wait(s, p, ASSET_OK);
    assert_ptr_equal(asset_handle_value(h4), asset_handle_value(h3));
    assert_int_equal(atomic_load(&spy.not_modified), 1);
    assert_int_equal(tu_counter_parses(&cnt), 3);

    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(h4);
    asset_server_destroy(s);
    assert_int_equal(tu_counter_frees(&cnt), 3);
    free(p);
}

/* FAT keeps a file's last-write time in 2 s steps and no change time: a file rewritten
 * in place with as many bytes within the same 2 s (an exporter's second pass, a script
 * saving twice) had the version it had before, and a load (or a hot reload) served the
 * cached value, never the new bytes, for as long as the file stayed so. A version whose
 * time is that coarse and that recent is not trusted: the next look reads the file. The
 * file system is emulated (asset__fs_coarse_times): none can be mounted here. */
static void test_a_same_size_rewrite_within_fats_2_s_is_seen(void **state) {
    fixture_t *f = *state;
    asset__fs_coarse_times = true; /* before the server's threads exist */
    char *p = tu_write_file(f->dir, "fat.cnt", "one", 3);
    asset_server_t *s = mk_server(NULL, 0);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    asset_handle_t *h1 = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h1, "one");
    free(tu_write_file(f->dir, "fat.cnt", "two", 3)); /* in place, as many bytes */
    asset_handle_t *h2 = tu_load_wait(s, p, ASSET_OK);
    char got[8] = "";
    const asset_bytes_t *b = asset_handle_value(h2);
    if (b) snprintf(got, sizeof got, "%.*s", (int)b->size, (const char *)b->data);
    /* and one that has kept its bytes for longer than that is a cache hit again */
    assert_int_equal(tu_os_shift_mtime(p, -10), 0);
    asset_handle_t *h3 = tu_load_wait(s, p, ASSET_OK);
    asset_handle_t *h4 = tu_load_wait(s, p, ASSET_OK);
    bool hit = asset_handle_value(h4) == asset_handle_value(h3);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(h4);
    asset_server_destroy(s);
    asset__fs_coarse_times = false;
    free(p);
    assert_string_equal(got, "two");
#ifndef __EMSCRIPTEN__ /* MEMFS keeps one time, the later of atime and mtime: not set back */
    assert_true(hit);
#else
    (void)hit;
#endif
}

static void test_deleted_file_fails_even_when_cached(void **state) {
    fixture_t *f = *state;
    char *p = tu_write_file(f->dir, "gone.txt", "here", 4);
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h1 = tu_load_wait(s, p, ASSET_OK);
    assert_int_equal(tu_os_unlink(p), 0);
    asset_handle_t *h2 = tu_load_wait(s, p, ASSET_E_NOT_FOUND);
    tu_expect_text(h1, "here");
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    free(p);
}

static void test_no_cache_load_reads_and_parses_again(void **state) {
    fixture_t *f = *state;
    char *p = tu_write_file(f->dir, "nc.cnt", "data", 4);
    asset_server_t *s = mk_server(NULL, 0);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    asset_handle_t *h1 = tu_load_wait(s, p, ASSET_OK);
    asset_load_options_t o = {0};
    o.no_cache = true;
    asset_handle_t *h2 = asset_server_load(s, p, &o);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_int_equal(tu_counter_parses(&cnt), 2);
    assert_ptr_not_equal(asset_handle_value(h1), asset_handle_value(h2));
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.cache_hits, 0);
    assert_int_equal(st.bytes_read, 8);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    free(p);
}

/* ---- folders through a symlink out of the root (issue 10, item 10) ---- */

static void check_folder_through_symlink_out_is_forbidden(fixture_t *f) {
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks (test_platform_win32 covers reparse points)");
    char *outfile = tu_write_file(f->dir, "outdir/f.txt", "secret", 6);
    char *outdir = tu_path(f->dir, "outdir");
    char *linkdir = tu_path(f->root, "linkdir");
    tu_os_unlink(linkdir);
    assert_int_equal(tu_os_symlink(outdir, linkdir), 0);
    write_text(f->root, "inside/ok.txt", "fine");
    asset_server_t *s = mk_server(f->root, 0);
    assert_int_equal(asset_server_mount(s, "game", f->root), ASSET_OK);
    const char *uris[] = {"linkdir", "pkg://game/linkdir"};
    for (size_t i = 0; i < 2; i++) {
        asset_batch_t *b = asset_server_load_folder(s, uris[i], NULL);
        asset_status_t st = asset_batch_wait(b, 60000);
        const char *msg = asset_batch_error_message(b);
        print_message("  folder %s -> %s: %s\n", uris[i], asset_err_name(st), msg);
        if (st != ASSET_E_FORBIDDEN)
            fail_msg("folder %s: %s (%s), expected E_FORBIDDEN", uris[i], asset_err_name(st), msg);
        assert_non_null(strstr(msg, asset_batch_uri(b)));
        assert_non_null(strstr(msg, "escapes its root"));
        assert_int_equal(asset_batch_total(b), 0);
        asset_batch_release(b);
    }
    /* the same folders inside the root still list */
    asset_batch_t *b = asset_server_load_folder(s, "inside", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 1);
    asset_batch_release(b);
    b = asset_server_load_folder(s, "pkg://game/inside", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 1);
    asset_batch_release(b);
    asset_server_destroy(s);
    free(outfile);
    free(outdir);
    free(linkdir);
}

static void test_folder_through_symlink_out_of_file_root_is_forbidden(void **state) {
    asset__fs_force_walk = false;
    check_folder_through_symlink_out_is_forbidden(*state);
}

static void test_folder_through_symlink_out_is_forbidden_with_walk_fallback(void **state) {
    asset__fs_force_walk = true; /* set before the server's threads exist */
    check_folder_through_symlink_out_is_forbidden(*state);
    asset__fs_force_walk = false;
}

/* ---- faults during a read (asset__fs_read_fault: called before each read()) ---- */

/* At the `at`-th read() of big.bin (1 MiB each), act(dir) runs, on the reading thread. */
static struct {
    const char *dir;
    int reads, at;
    void (*act)(const char *dir);
} g_fault;
static int fault_hook(const char *path) {
    (void)path;
    if (++g_fault.reads == g_fault.at) g_fault.act(g_fault.dir);
    return 0;
}

/* Loads f->dir/big.bin, n bytes of 'a' (its time set back an hour, so that a rewrite
 * shows whatever the clock's tick), with act run at its `at`-th read(); the load must
 * fail `want` with a message containing `says`. */
static void read_with_fault(fixture_t *f, size_t n, int at, void (*act)(const char *dir),
                            asset_status_t want, const char *says) {
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    char *path = tu_write_file(f->dir, "big.bin", big, n);
    free(big);
    assert_int_equal(tu_os_shift_mtime(path, -3600), 0);
    g_fault.dir = f->dir;
    g_fault.reads = 0;
    g_fault.at = at;
    g_fault.act = act;
    asset__fs_read_fault = fault_hook; /* before the server's threads exist */
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = asset_server_load(s, path, NULL);
    asset_status_t st = tu_wait(h);
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", asset_handle_error_message(h));
    asset_handle_release(h);
    asset_server_destroy(s);
    asset__fs_read_fault = NULL;
    free(path);
    if (g_fault.reads < at) fail_msg("%d reads, the fault was at read %d", g_fault.reads, at);
    if (st != want || !strstr(msg, says))
        fail_msg("want %s \"...%s...\", got %s \"%s\"", asset_err_name(want), says,
                 asset_err_name(st), msg);
}

/* big.bin rewritten with n bytes of 'b' */
static void rewrite_with(const char *dir, size_t n) {
    char *b = malloc(n);
    memset(b, 'b', n);
    free(tu_write_file(dir, "big.bin", b, n));
    free(b);
}
static void shrink_to_1_mib_and_10(const char *dir) { rewrite_with(dir, (1 << 20) + 10); }
static void rewrite_as_3_mib(const char *dir) { rewrite_with(dir, (size_t)3 << 20); }

/* A file that shrinks while it is read (rewritten in place: truncated, then written)
 * fails with E_IO: an end of file before the size fstat gave loaded the torn prefix as
 * a success, cached under the version of the whole file (a review found). Rewritten
 * between the first and the second read. */
static void test_a_file_that_shrinks_while_it_is_read_fails(void **state) {
    read_with_fault(*state, (size_t)3 << 20, 2, shrink_to_1_mib_and_10, ASSET_E_IO,
                    "shrank while it was read");
}

/* A file rewritten in place while it is read, to as many bytes or more (truncated,
 * then written: an exporter saving a large texture over the old one) fails with E_IO:
 * the read took its first MiB from the old content and the rest from the new, and
 * loaded that torn mix as a success (only an end of file before the size fstat gave
 * was seen). Rewritten between the first and the second read. */
static void test_a_file_rewritten_while_it_is_read_fails(void **state) {
    read_with_fault(*state, (size_t)3 << 20, 2, rewrite_as_3_mib, ASSET_E_IO,
                    "changed while it was read");
}

/* The same, for a file read in exactly two read()s (1 MiB, then 512 bytes), rewritten to
 * as many bytes between them: its second fstat is asked for from two reads on, so the
 * torn mix fails too. Asked for only from three reads on (mutation testing, round ten:
 * `reads > 1` made `reads > 2`, fs.c:260), every suite passed. */
static void rewrite_as_1_mib_and_512(const char *dir) { rewrite_with(dir, (1 << 20) + 512); }
static void test_a_file_rewritten_between_its_two_reads_fails(void **state) {
    read_with_fault(*state, (1 << 20) + 512, 2, rewrite_as_1_mib_and_512, ASSET_E_IO,
                    "changed while it was read");
}

/* The allocator of the whole process (main): malloc's, but a realloc on a thread that
 * armed tl_fail_realloc fails, once. */
static _Thread_local bool tl_fail_realloc;
static void *t_alloc(size_t n, void *u) {
    (void)u;
    return malloc(n);
}
static void *t_realloc(void *p, size_t n, void *u) {
    (void)u;
    if (tl_fail_realloc) {
        tl_fail_realloc = false;
        return NULL;
    }
    return realloc(p, n);
}
static void t_free(void *p, void *u) {
    (void)u;
    free(p);
}

/* written since its stat (which said 0, as /proc's files do), and the reading thread's
 * next realloc, the read buffer's growth, fails */
static void grow_and_fail_the_growth(const char *dir) {
    rewrite_with(dir, 200000);
    tl_fail_realloc = true;
}

/* The read buffer's growth (a file longer than its stat said: a pseudo-file, or one
 * written since) out of memory failed ASSET_E_NO_MEMORY with the generic "out of
 * memory", where its first reservation names the bytes it wanted, as everywhere else
 * in the file source. The read hook grows the file and arms the failing realloc. */
static void test_a_read_buffer_growth_out_of_memory_says_so(void **state) {
    read_with_fault(*state, 0, 1, grow_and_fail_the_growth, ASSET_E_NO_MEMORY,
                    "out of memory for ");
}

/* A pseudo-file whose size is not its length (Linux sysfs says 4096 bytes for every
 * attribute: "0-1\n" in /sys/devices/system/cpu/online) loads what it holds: its early
 * end of file was taken for a file that shrank while it was read, and every such load
 * failed E_IO "the file shrank while it was read (4 of 4096 bytes): it is being
 * written", though nothing wrote it. Skipped where no such file is found, and on
 * Windows, which takes no size for a guess (platform.h, no_storage). */
static void test_a_file_whose_size_is_not_its_length_loads_what_it_holds(void **state) {
    (void)state;
    static const char *const candidates[] = {"/sys/devices/system/cpu/online",
                                             "/sys/kernel/mm/transparent_hugepage/enabled",
                                             "/sys/class/net/lo/mtu"};
    if (tu_os_windows_paths()) { /* wine shows the host's /sys, as files of Windows */
        print_message("  skipped: Windows has no pseudo-file whose size is a guess\n");
        skip();
    }
    const char *path = NULL;
    char want[4096];
    size_t wn = 0;
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates && !path; i++) {
        FILE *fp = tu_os_fopen(candidates[i], "rb");
        if (!fp) continue;
        wn = fread(want, 1, sizeof want - 1, fp);
        bool end = feof(fp) != 0;
        long said = fseek(fp, 0, SEEK_END) == 0 ? ftell(fp) : -1;
        fclose(fp);
        if (end && wn > 0 && said > (long)wn) path = candidates[i];
    }
    if (!path) {
        print_message("  skipped: no pseudo-file whose size is more than it holds\n");
        skip();
    }
    asset_server_t *s = mk_server(NULL, 0);
    asset_handle_t *h = tu_load_wait(s, path, ASSET_OK);
    tu_expect_bytes(h, want, wn);
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* Regression: file_root was opened once, when the server was made; a root that did not
 * exist yet (made by the game after the server: a mods or downloads folder), or could
 * not be opened then (out of descriptors), left every file:// load and folder
 * NOT_FOUND for the server's life, with the files right there. */
static void test_a_file_root_made_after_the_server_is_read(void **state) {
    fixture_t *f = *state;
    char *later = tu_path(f->dir, "later");
    asset_server_t *s = mk_server(later, 0);
    asset_handle_t *before = tu_load_wait(s, "a.txt", ASSET_E_NOT_FOUND);
    asset_handle_release(before);
    write_text(later, "a.txt", "made later");
    asset_handle_t *h = tu_load_wait(s, "a.txt", ASSET_OK);
    tu_expect_text(h, "made later");
    asset_handle_release(h);
    write_text(later, "d/b.txt", "b");
    char *d = tu_path(later, "d");
    asset_batch_t *b = asset_server_load_folder(s, d, NULL);
    assert_non_null(b);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(asset_batch_count(b), 1);
    assert_int_equal(asset_batch_failed_count(b), 0);
    asset_batch_release(b);
    asset_server_destroy(s);
    free(d);
    free(later);
}

/* A file empty when its size was taken (a pseudo-file of /proc, which says 0, or one
 * written since it was opened) is read to its end, within max_asset_size. Regression:
 * one of exactly max_asset_size bytes failed E_TOO_LARGE ("grew past max_asset_size")
 * when the limit fell where the read's buffer was full: the read stopped there without
 * looking for the end of the file. The read hook writes the bytes after the stat,
 * before the first read. */
#define GROW_MAX ((size_t)131071) /* where the read's buffer (doubled from 2) is full */
static char *g_grow_dir;
static atomic_int g_grown;
static int grow_before_first_read(const char *path) {
    const char *name = strrchr(path, '/');
    if (name && !strcmp(name, "/grow_fits.bin") && !(atomic_fetch_or(&g_grown, 1) & 1))
        free(tu_write_pattern(g_grow_dir, "grow_fits.bin", GROW_MAX));
    if (name && !strcmp(name, "/grow_big.bin") && !(atomic_fetch_or(&g_grown, 2) & 2))
        free(tu_write_pattern(g_grow_dir, "grow_big.bin", GROW_MAX + 1));
    return 0;
}

static void test_a_file_empty_at_its_stat_may_reach_max_asset_size_exactly(void **state) {
    fixture_t *f = *state;
    char *fits = tu_write_file(f->dir, "grow_fits.bin", "", 0);
    char *big = tu_write_file(f->dir, "grow_big.bin", "", 0);
    g_grow_dir = f->dir;
    atomic_store(&g_grown, 0);
    asset__fs_read_fault = grow_before_first_read; /* before the server's threads exist */
    asset_server_t *s = mk_server(NULL, GROW_MAX);
    asset_handle_t *ok = asset_server_load(s, fits, NULL);
    asset_status_t st_ok = tu_wait(ok);
    const asset_bytes_t *b = asset_handle_value(ok);
    size_t got = b ? b->size : 0;
    bool same = false;
    if (b && got == GROW_MAX) {
        same = true;
        for (size_t k = 0; k < GROW_MAX; k++) same = same && b->data[k] == (uint8_t)(k * 31 + 7);
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", asset_handle_error_message(ok));
    asset_handle_t *h = asset_server_load(s, big, NULL);
    asset_status_t st_big = tu_wait(h);
    asset_handle_release(ok);
    asset_handle_release(h);
    asset_server_destroy(s);
    asset__fs_read_fault = NULL;
    free(fits);
    free(big);
    if (st_ok != ASSET_OK) fail_msg("exactly max_asset_size: %d (%s)", st_ok, msg);
    assert_true(same);
    assert_int_equal(st_big, ASSET_E_TOO_LARGE);
}

/* A folder's walk stops at a cancel: a recursive listing of a large tree (a game's
 * whole asset folder, a network drive) went on to its last entry after its batch was
 * cancelled, and asset_server_destroy(), which waits for requests in flight, waited
 * for all of it. The walk's hook holds the first stat until the batch is cancelled,
 * then counts the steps the walk still takes. */
enum { CANCEL_DIRS = 4, CANCEL_FILES = 50 };
static uv_sem_t g_walk_entered, g_walk_go;
static atomic_int g_walk_steps;
static int walk_until_cancelled(const char *step, const char *rel) {
    (void)rel;
    if (atomic_fetch_add(&g_walk_steps, 1) == 0) {
        (void)step;
        uv_sem_post(&g_walk_entered);
        uv_sem_wait(&g_walk_go);
    }
    return 0;
}

static void test_a_cancelled_folder_stops_walking(void **state) {
    fixture_t *f = *state;
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
    skip(); /* the walk runs on this thread: its hook cannot wait for the cancel */
#endif
    char rel[64];
    for (int d = 0; d < CANCEL_DIRS; d++)
        for (int i = 0; i < CANCEL_FILES; i++) {
            snprintf(rel, sizeof rel, "big/d%d/f%03d.txt", d, i);
            write_text(f->dir, rel, "x");
        }
    char *big = tu_path(f->dir, "big");
    assert_int_equal(uv_sem_init(&g_walk_entered, 0), 0);
    assert_int_equal(uv_sem_init(&g_walk_go, 0), 0);
    atomic_store(&g_walk_steps, 0);
    asset__fs_walk_fault = walk_until_cancelled; /* before the server's threads exist */
    asset_server_t *s = mk_server(NULL, 0);
    asset_batch_t *b = asset_server_load_folder(s, big, NULL);
    assert_non_null(b);
    uv_sem_wait(&g_walk_entered);
    int before = atomic_load(&g_walk_steps);
    asset_batch_cancel(b);
    uv_sem_post(&g_walk_go);
    asset_status_t st = asset_batch_wait(b, 60000);
    int after = atomic_load(&g_walk_steps) - before;
    asset_batch_release(b);
    asset_server_destroy(s);
    asset__fs_walk_fault = NULL;
    uv_sem_destroy(&g_walk_entered);
    uv_sem_destroy(&g_walk_go);
    free(big);
    assert_int_equal(st, ASSET_E_CANCELLED);
    if (after > 2)
        fail_msg("the walk took %d more steps after its folder was cancelled (of %d entries)",
                 after, CANCEL_DIRS * (CANCEL_FILES + 1));
}

/* A file_root replaced (renamed away and made anew: a deploy that swaps a release in, a
 * launcher resetting a mods folder; or deleted) is read where its path now leads, as a
 * server without file_root reads the same URI: the root's directory was opened once
 * and kept, so every later load read the old directory's files under the root's URIs
 * (or failed NOT_FOUND in a deleted one) for the server's life. */
static asset_status_t load_fresh(asset_server_t *s, const char *uri, const char *want) {
    asset_load_options_t o = {0};
    o.no_cache = true;
    asset_handle_t *h = asset_server_load(s, uri, &o);
    asset_status_t st = tu_wait(h);
    if (st == ASSET_OK && want) tu_expect_text(h, want);
    asset_handle_release(h);
    return st;
}

/* Windows compares the root with its path only while watching (an open of the path a
 * load: asset__dir_is_at), so there each case runs watched alone; POSIX runs both. */
static bool root_followed_unwatched(void) { return !tu_os_windows_paths(); }

static void replaced_root_is_read_where_its_path_leads(fixture_t *f, bool watch) {
    write_text(f->root, "a.txt", "v1");
    char *old = tu_path(f->dir, "root.old");
    tu_rmrf(old);
    asset_server_t *s = mk_server_watching(f->root, 0, watch);
    assert_int_equal(load_fresh(s, "a.txt", "v1"), ASSET_OK);
    assert_int_equal(tu_os_rename_replace(f->root, old), 0);
    write_text(f->root, "a.txt", "v2"); /* makes the root anew */
    assert_int_equal(load_fresh(s, "a.txt", "v2"), ASSET_OK);
    asset_batch_t *b = asset_server_load_folder(s, ".", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    tu_expect_text(asset_batch_handle(b, 0), "v2");
    asset_batch_release(b);
    /* renamed away, none made anew: NOT_FOUND, not the old directory's file (it served
     * when its path could not be opened, under a mutation) */
    tu_rmrf(old);
    assert_int_equal(tu_os_rename_replace(f->root, old), 0);
    assert_int_equal(load_fresh(s, "a.txt", NULL), ASSET_E_NOT_FOUND);
    write_text(f->root, "a.txt", "v3");
    assert_int_equal(load_fresh(s, "a.txt", "v3"), ASSET_OK);
    tu_rmrf(f->root); /* deleted: NOT_FOUND, until it is back */
    assert_int_equal(load_fresh(s, "a.txt", NULL), ASSET_E_NOT_FOUND);
    write_text(f->root, "a.txt", "v4");
    assert_int_equal(load_fresh(s, "a.txt", "v4"), ASSET_OK);
    asset_server_destroy(s);
    tu_rmrf(old);
    free(old);
}

static void test_a_replaced_file_root_is_read_where_its_path_leads(void **state) {
    fixture_t *f = *state;
    if (root_followed_unwatched()) replaced_root_is_read_where_its_path_leads(f, false);
    replaced_root_is_read_where_its_path_leads(f, true);
}

/* Each replaced root's directory stayed open until destroy (a load might have been in
 * it): a server whose root a deploy swaps again and again held one more descriptor per
 * swap. A replaced one is closed once no load uses it. Not watching (the watch's own
 * handles come and go as it likes), so not on Windows, which then does not compare. */
static void test_a_replaced_file_root_is_closed_once_unused(void **state) {
    fixture_t *f = *state;
    TU_SKIP_UNLESS(root_followed_unwatched(), "a root not watched is not compared with its path");
    write_text(f->root, "a.txt", "v0");
    char *old = tu_path(f->dir, "root.old");
    asset_server_t *s = mk_server(f->root, 0);
    assert_int_equal(load_fresh(s, "a.txt", "v0"), ASSET_OK);
    int before = count_open_fds();
    TU_SKIP_UNLESS(before != -1, "the OS does not count open handles");
    for (int i = 1; i <= 20; i++) {
        char want[8];
        snprintf(want, sizeof want, "v%d", i);
        tu_rmrf(old);
        assert_int_equal(tu_os_rename_replace(f->root, old), 0);
        write_text(f->root, "a.txt", want); /* a deploy: the root made anew */
        assert_int_equal(load_fresh(s, "a.txt", want), ASSET_OK);
    }
    int after = count_open_fds();
    asset_server_destroy(s);
    tu_rmrf(old);
    free(old);
    if (after != before) fail_msg("%d descriptors before 20 root swaps, %d after", before, after);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_loads_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_loads_large_file_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_is_not_found_with_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_directory_as_file_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_is_refused_without_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_file_loads_with_size_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_file_is_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_relative_path_resolves_against_cwd_at_create,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_root_relative_path_resolves_under_root, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_root_escaping_path_is_forbidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_root_symlink_pointing_outside_is_forbidden, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_root_symlink_outside_forbidden_with_walk_fallback,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_root_walk_fallback_reads_nested_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loading_the_root_itself_leaks_no_descriptor, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlink_loop_without_file_root_is_an_io_error, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_symlink_without_file_root_is_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_file_revalidates_as_cache_hit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rewritten_file_is_seen_on_next_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_same_size_rewrite_within_fats_2_s_is_seen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deleted_file_fails_even_when_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_cache_load_reads_and_parses_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_that_shrinks_while_it_is_read_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_rewritten_while_it_is_read_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_file_rewritten_between_its_two_reads_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_read_buffer_growth_out_of_memory_says_so, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_file_whose_size_is_not_its_length_loads_what_it_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_folder_through_symlink_out_of_file_root_is_forbidden,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_folder_through_symlink_out_is_forbidden_with_walk_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_root_made_after_the_server_is_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_file_empty_at_its_stat_may_reach_max_asset_size_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_cancelled_folder_stops_walking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_replaced_file_root_is_read_where_its_path_leads,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_replaced_file_root_is_closed_once_unused, setup,
                                        teardown),
    };
    asset_set_allocator(&(asset_allocator_t){t_alloc, t_realloc, t_free, NULL});
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
