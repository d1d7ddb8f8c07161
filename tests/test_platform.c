/* test_platform.c - the platform layer (src/platform/) as every OS must behave, through
 * the public API where it can: the pkg_path separator of the OS, opening beneath a
 * root, the version hint changing with the content, listings with sizes, and path
 * syntax (what an absolute path is here). Runs on Linux (openat2 and the generic POSIX
 * code) and under wine for Windows. OS-specific rules: test_platform_posix.c and
 * test_platform_win32.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/platform.h"
#include "test_util.h"
#include "tu_os.h"

/* pkg_path is split on the OS's separator (';' on Windows, where ':' is part of
 * "C:/dir"); a package found in the second directory loads. */
static void test_pkg_path_splits_on_the_platform_separator(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *a = tu_path(dir, "a"), *b = tu_path(dir, "b");
    free(tu_write_file(a, "other/x.txt", "x", 1));
    free(tu_write_file(b, "game/hero.txt", "hero", 4));
    size_t n = strlen(a) + strlen(b) + 2;
    char *search = malloc(n);
    snprintf(search, n, "%s%c%s", a, asset__path_list_sep, b);
    asset_server_config_t cfg = {0};
    cfg.pkg_path = search;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *h = tu_load_wait(s, "pkg://game/hero.txt", ASSET_OK);
    tu_expect_text(h, "hero");
    asset_handle_release(h);
    asset_server_destroy(s);
    free(search);
    free(a);
    free(b);
    tu_rmrf(dir);
    free(dir);
}

/* What tu_mkdtemp() gives is an absolute path in the library's form, and a file URI
 * made from it names the same file as the bare path. */
static void test_temp_paths_are_absolute_and_load_both_ways(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    assert_true(asset__path_root_len(dir) > 0);
    char *p = tu_write_file(dir, "sub/a.txt", "abc", 3);
    char *uri = tu_file_uri(p);
    asset_server_t *s = tu_server(1);
    asset_handle_t *h1 = tu_load_wait(s, p, ASSET_OK);
    asset_handle_t *h2 = tu_load_wait(s, uri, ASSET_OK);
    tu_expect_text(h1, "abc");
    assert_string_equal(asset_handle_uri(h1), asset_handle_uri(h2));
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    free(uri);
    free(p);
    tu_rmrf(dir);
    free(dir);
}

/* The version hint changes when the file's content does (size here), so a reload
 * after a rewrite reads the new bytes instead of answering "not modified". */
static void test_version_hint_follows_the_content(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *p = tu_write_file(dir, "v.txt", "one", 3);
    asset_server_t *s = tu_server(1);
    asset_handle_t *h = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h, "one");
    asset_handle_release(h);
    free(tu_write_file(dir, "v.txt", "two two", 7));
    h = tu_load_wait(s, p, ASSET_OK);
    tu_expect_text(h, "two two");
    asset_handle_release(h);
    asset_server_destroy(s);
    free(p);
    tu_rmrf(dir);
    free(dir);
}

/* Beneath file_root: ".." cannot leave it, a listing has every file with its size. */
static void test_file_root_confines_and_lists(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *root = tu_path(dir, "root");
    free(tu_write_file(root, "a.txt", "aa", 2));
    free(tu_write_file(root, "d/b.txt", "bbb", 3));
    free(tu_write_file(dir, "secret.txt", "s", 1));
    asset_server_config_t cfg = {0};
    cfg.file_root = root;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *h = tu_load_wait(s, "../secret.txt", ASSET_E_FORBIDDEN);
    assert_non_null(strstr(asset_handle_error_message(h), "../secret.txt"));
    asset_handle_release(h);
    h = tu_load_wait(s, "d/b.txt", ASSET_OK);
    tu_expect_text(h, "bbb");
    asset_handle_release(h);
    asset_server_destroy(s);
    free(root);
    tu_rmrf(dir);
    free(dir);
}

/* asset__file_map: the bytes of the file, then a readable 0 (what the parse step
 * promises), for sizes that end inside a page and sizes that fill their last page
 * (and a large one, mapped on a 2 MiB boundary); the mapping outlives the file's
 * handle, and the 0 stays when the file grows (it showed the appended bytes). Windows
 * may refuse a size that fills its last page (-ENOSYS: the caller reads instead); the
 * web build refuses every file. */
static void test_file_map_gives_the_bytes_and_a_zero_after_them(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    const size_t sizes[] = {1, 4095, 4096, 8192, 65536 + 17, (2u << 20) + 17};
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    bool win = pf && !strcmp(pf, "win32");
    bool web = pf && !strcmp(pf, "web");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        char *p;
        void *data, *token;
        int rc = tu_map_pattern(dir, "m.bin", n, &p, &data, &token);
        if (web || (rc == -ENOSYS && win && n % 4096 == 0)) {
            assert_int_equal(rc, -ENOSYS);
            assert_null(data);
            free(p);
            continue;
        }
        if (rc != 0) fail_msg("map of %zu bytes: %d", n, rc);
        tu_expect_pattern(data, n);
        assert_int_equal(((const char *)data)[n], 0);
        FILE *grow = fopen(p, "ab"); /* a writer appends to the mapped file */
        assert_non_null(grow);
        assert_int_equal(fwrite("appended", 1, 8, grow), 8);
        assert_int_equal(fclose(grow), 0);
        assert_int_equal(((const volatile char *)data)[n], 0);
        tu_expect_pattern(data, n);
        asset__unmap(data, token);
        free(p);
    }
    tu_rmrf(dir);
    free(dir);
}

/* ---- the server's lock (asset__mutex_init_hot) ---- */

typedef struct counted {
    uv_mutex_t mu;
    uint64_t n; /* guarded by mu */
} counted_t;

enum { LOCK_THREADS = 4, LOCK_ROUNDS = 100000 };

static void bump_many(void *arg) {
    counted_t *c = arg;
    for (int i = 0; i < LOCK_ROUNDS; i++) {
        uv_mutex_lock(&c->mu);
        c->n++;
        uv_mutex_unlock(&c->mu);
    }
}

/* However the OS makes it spin, it excludes: four threads, no increment lost (the
 * web's single-threaded build has no threads: the rounds run here instead). */
/* asset__path_is_link: a link itself (not followed), never a file, a directory or
 * nothing (hot reload polls a loaded path that is one). */
static void test_path_is_link_tells_a_link_from_a_file(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *file = tu_write_file(dir, "f.txt", "x", 1);
    char *link = tu_path(dir, "l.txt"), *none = tu_path(dir, "none.txt");
    assert_false(asset__path_is_link(file));
    assert_false(asset__path_is_link(dir));
    assert_false(asset__path_is_link(none));
    if (tu_os_has_symlinks()) {
        assert_int_equal(tu_os_symlink(file, link), 0);
        assert_true(asset__path_is_link(link));
        assert_false(asset__path_is_link(file));
    }
    tu_rmrf(dir);
    free(none);
    free(link);
    free(file);
    free(dir);
}

static void test_hot_mutex_excludes_under_contention(void **state) {
    (void)state;
    counted_t c = {.n = 0};
    assert_int_equal(asset__mutex_init_hot(&c.mu), 0);
    uv_thread_t t[LOCK_THREADS];
    bool made[LOCK_THREADS];
    for (int i = 0; i < LOCK_THREADS; i++) made[i] = uv_thread_create(&t[i], bump_many, &c) == 0;
    for (int i = 0; i < LOCK_THREADS; i++) {
        if (made[i])
            uv_thread_join(&t[i]);
        else
            bump_many(&c);
    }
    uv_mutex_lock(&c.mu);
    assert_true(c.n == (uint64_t)LOCK_THREADS * LOCK_ROUNDS);
    uv_mutex_unlock(&c.mu);
    uv_mutex_destroy(&c.mu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pkg_path_splits_on_the_platform_separator),
        cmocka_unit_test(test_hot_mutex_excludes_under_contention),
        cmocka_unit_test(test_temp_paths_are_absolute_and_load_both_ways),
        cmocka_unit_test(test_version_hint_follows_the_content),
        cmocka_unit_test(test_file_root_confines_and_lists),
        cmocka_unit_test(test_file_map_gives_the_bytes_and_a_zero_after_them),
        cmocka_unit_test(test_path_is_link_tells_a_link_from_a_file),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
