/* test_platform_win32.c - Windows path rules (built for Windows only; CI runs it under
 * wine): every way out of file_root or a package that Windows path syntax offers is
 * refused with FORBIDDEN or INVALID and a message naming the URI and why; drive
 * paths in all three spellings load the same file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

typedef struct fx {
    char *dir, *root;
    asset_server_t *s;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    f->root = tu_path(f->dir, "root");
    free(tu_write_file(f->root, "a.txt", "aaa", 3));
    free(tu_write_file(f->root, "game/hero.txt", "hero", 4));
    free(tu_write_file(f->dir, "secret.txt", "secret", 6));
    asset_server_config_t cfg = {0};
    cfg.file_root = f->root;
    cfg.pkg_path = f->root;
    f->s = asset_server_create(&cfg);
    *state = f;
    return f->s ? 0 : -1;
}

static int teardown(void **state) {
    fx_t *f = *state;
    asset_server_destroy(f->s);
    tu_rmrf(f->dir);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

/* uri fails with want, and the message names the URI and contains `why` */
static void refused(fx_t *f, const char *uri, asset_status_t want, const char *why) {
    asset_handle_t *h = tu_load_wait(f->s, uri, want);
    const char *msg = asset_handle_error_message(h);
    if (!msg || !strstr(msg, why)) fail_msg("%s: message '%s' lacks '%s'", uri, msg, why);
    asset_handle_release(h);
}

static void test_dotdot_out_of_the_root_is_forbidden(void **state) {
    refused(*state, "../secret.txt", ASSET_E_FORBIDDEN, "escapes");
    refused(*state, "..\\secret.txt", ASSET_E_FORBIDDEN, "escapes");
    refused(*state, "pkg://game/..\\..\\secret.txt", ASSET_E_FORBIDDEN, "backslash");
}

static void test_alternate_data_streams_are_forbidden(void **state) {
    refused(*state, "a.txt:stream", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(*state, "a.txt::$DATA", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(*state, "pkg://game/hero.txt:x", ASSET_E_FORBIDDEN, "alternate data stream");
}

static void test_device_names_are_forbidden(void **state) {
    refused(*state, "CON", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "nul.txt", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "sub/COM1", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "pkg://game/aux.json", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "a.txt.", ASSET_E_FORBIDDEN, "dot or space");
}

static void test_unc_and_device_paths_are_forbidden(void **state) {
    refused(*state, "\\\\server\\share\\x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(*state, "//server/share/x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(*state, "\\\\?\\C:\\x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(*state, "\\\\.\\PhysicalDrive0", ASSET_E_FORBIDDEN, "UNC");
}

static void test_drive_relative_path_is_invalid(void **state) {
    refused(*state, "C:x.txt", ASSET_E_INVALID, "drive-relative");
}

/* C:\dir\x, C:/dir/x and file:///C:/dir/x name one file and one URI. */
static void test_drive_paths_in_every_spelling_load(void **state) {
    fx_t *f = *state;
    char *p = tu_path(f->root, "a.txt"); /* "Z:/tmp/.../root/a.txt" */
    char *back = strdup(p);
    for (char *c = back; *c; c++)
        if (*c == '/') *c = '\\';
    char *uri = tu_file_uri(p);
    asset_handle_t *h1 = tu_load_wait(f->s, p, ASSET_OK);
    asset_handle_t *h2 = tu_load_wait(f->s, back, ASSET_OK);
    asset_handle_t *h3 = tu_load_wait(f->s, uri, ASSET_OK);
    tu_expect_text(h2, "aaa");
    assert_string_equal(asset_handle_uri(h1), asset_handle_uri(h2));
    assert_string_equal(asset_handle_uri(h1), asset_handle_uri(h3));
    assert_memory_equal(asset_handle_uri(h1), "file:///", 8);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    free(uri);
    free(back);
    free(p);
    tu_expect_text(tu_load_wait(f->s, "pkg://game/hero.txt", ASSET_OK), "hero");
}

#define FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
int main(void) {
    const struct CMUnitTest tests[] = {
        FX(test_dotdot_out_of_the_root_is_forbidden), FX(test_alternate_data_streams_are_forbidden),
        FX(test_device_names_are_forbidden),          FX(test_unc_and_device_paths_are_forbidden),
        FX(test_drive_relative_path_is_invalid),      FX(test_drive_paths_in_every_spelling_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
