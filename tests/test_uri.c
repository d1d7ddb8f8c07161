/* test_uri.c - URI parsing, normalisation and resolution (src/uri.c), and how a bad
 * URI surfaces through the public API (a FAILED handle at the next flush). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_util.h"
#include "tu_os.h"
#include "uri.h"

/* ---- helpers ---- */

static void check_ok_at(const char *in, const char *base, const char *root, const char *scheme,
                        const char *uri, const char *path, int line) {
    asset_uri_t u;
    const char *why = NULL;
    asset_status_t st = asset__uri_parse(in, base, root, &u, &why);
    if (st != ASSET_OK)
        fail_msg("line %d: parse(\"%s\") = %s (%s), expected OK", line, in, asset_err_name(st),
                 why ? why : "?");
    if (strcmp(u.scheme, scheme) || strcmp(u.uri, uri) || strcmp(u.path, path))
        fail_msg("line %d: parse(\"%s\") = {%s, %s, %s}, expected {%s, %s, %s}", line, in, u.scheme,
                 u.uri, u.path, scheme, uri, path);
    asset__uri_dispose(&u);
    assert_null(u.uri);
    assert_null(u.path);
}
#define check_ok(in, base, root, scheme, uri, path) \
    check_ok_at(in, base, root, scheme, uri, path, __LINE__)

static void check_err_at(const char *in, const char *base, const char *root, asset_status_t want,
                         int line) {
    asset_uri_t u;
    const char *why = NULL;
    asset_status_t st = asset__uri_parse(in, base, root, &u, &why);
    if (st != want)
        fail_msg("line %d: parse(\"%s\") = %s (uri %s), expected %s", line, in ? in : "(null)",
                 asset_err_name(st), st == ASSET_OK ? u.uri : "-", asset_err_name(want));
    /* on error: a reason, and out zeroed (nothing to dispose) */
    assert_non_null(why);
    assert_true(strlen(why) > 0);
    assert_null(u.uri);
    assert_null(u.path);
}
#define check_err(in, base, root, want) check_err_at(in, base, root, want, __LINE__)

static void check_resolve_at(const char *base, const char *ref, const char *want, int line) {
    char *got = asset__uri_resolve(base, ref);
    if (!got || strcmp(got, want))
        fail_msg("line %d: resolve(\"%s\", \"%s\") = \"%s\", expected \"%s\"", line, base, ref,
                 got ? got : "(null)", want);
    asset_free(got);
}
#define check_resolve(base, ref, want) check_resolve_at(base, ref, want, __LINE__)

static void check_norm_at(const char *in, const char *want, int line) {
    char *out = malloc(strlen(in) + 2);
    bool ok = asset__path_normalize(in, out);
    if (!want) {
        if (ok) fail_msg("line %d: normalize(\"%s\") = \"%s\", expected failure", line, in, out);
    } else if (!ok || strcmp(out, want)) {
        fail_msg("line %d: normalize(\"%s\") = %s \"%s\", expected \"%s\"", line, in,
                 ok ? "ok" : "FAILED", ok ? out : "", want);
    }
    free(out);
}
#define check_norm(in, want) check_norm_at(in, want, __LINE__)

#define BASE "/base/dir"
#define ROOT "/srv/root"

/* ---- path normalisation ---- */

static void test_normalize_collapses_slashes_dots_and_dotdots(void **state) {
    (void)state;
    check_norm("/a//b/./c/", "/a/b/c");
    check_norm("/a/b/../c", "/a/c");
    check_norm("/a/./../b", "/b");
    check_norm("/a/..", "/");
    check_norm("/", "/");
    check_norm("//", "/");
    check_norm("/./.", "/");
    check_norm("a/b/..", "a");
    check_norm("./a", "a");
    check_norm("a/..", "");
    check_norm("", "");
    check_norm("a//b///c", "a/b/c");
    check_norm("/a/b/c/../../d/./e/..", "/a/d");
    check_norm("/...", "/..."); /* three dots is a name */
    check_norm("/..a/b..", "/..a/b..");
}

static void test_normalize_refuses_to_climb_above_start(void **state) {
    (void)state;
    check_norm("/..", NULL);
    check_norm("..", NULL);
    check_norm("/a/../..", NULL);
    check_norm("a/../../b", NULL);
    check_norm("/a/b/../../../etc", NULL);
    check_norm("./../x", NULL);
}

/* ---- schemes and bare paths ---- */

static void test_scheme_is_lowercased(void **state) {
    (void)state;
    check_ok("FILE:///a/b.png", BASE, NULL, "file", "file:///a/b.png", "/a/b.png");
    check_ok("Mem://Key", BASE, NULL, "mem", "mem://Key", "Key");
    check_ok("PKG://game/A.png", BASE, NULL, "pkg", "pkg://game/A.png", "game/A.png");
    check_ok("My+Scheme.v2-x://Thing", BASE, NULL, "my+scheme.v2-x", "my+scheme.v2-x://Thing",
             "Thing");
}

static void test_scheme_too_long_is_invalid(void **state) {
    (void)state;
    check_err("abcdefghijklmnopqrstuvwxyz://x", BASE, NULL, ASSET_E_INVALID);
    /* the longest that fits (23 bytes and the NUL), and one byte more (a mutation survivor:
     * taken, its NUL written past out->scheme) */
    check_ok("abcdefghijklmnopqrstuvw://x", BASE, NULL, "abcdefghijklmnopqrstuvw",
             "abcdefghijklmnopqrstuvw://x", "x");
    check_err("abcdefghijklmnopqrstuvwx://x", BASE, NULL, ASSET_E_INVALID);
}

static void test_bare_relative_path_becomes_file_uri_under_base(void **state) {
    (void)state;
    check_ok("textures/a.png", BASE, NULL, "file", "file:///base/dir/textures/a.png",
             "/base/dir/textures/a.png");
    check_ok("./a.png", BASE, NULL, "file", "file:///base/dir/a.png", "/base/dir/a.png");
    check_ok("a.png", "/", NULL, "file", "file:///a.png", "/a.png");
    /* a bare path is taken literally: no percent-decoding; a '%' is re-encoded */
    check_ok("100%25.txt", BASE, NULL, "file", "file:///base/dir/100%2525.txt",
             "/base/dir/100%25.txt");
    /* something that looks like a drive letter is not a scheme (on Windows: a drive) */
    if (tu_os_windows_paths())
        check_ok("c:/x", BASE, NULL, "file", "file:///C:/x", "C:/x");
    else
        check_ok("c:/x", BASE, NULL, "file", "file:///base/dir/c:/x", "/base/dir/c:/x");
}

static void test_bare_absolute_path_becomes_file_uri(void **state) {
    (void)state;
    check_ok("/abs/x.json", BASE, NULL, "file", "file:///abs/x.json", "/abs/x.json");
    if (tu_os_windows_paths()) /* "//abs/...": a UNC path there (test_platform_win32) */
        check_err("//abs//./x.json", BASE, NULL, ASSET_E_FORBIDDEN);
    else
        check_ok("//abs//./x.json", BASE, NULL, "file", "file:///abs/x.json", "/abs/x.json");
}

static void test_file_localhost_authority_is_dropped(void **state) {
    (void)state;
    check_ok("file://localhost/etc/a.txt", BASE, NULL, "file", "file:///etc/a.txt", "/etc/a.txt");
    check_ok("file:///etc/a.txt", BASE, NULL, "file", "file:///etc/a.txt", "/etc/a.txt");
}

static void test_file_uri_with_a_remote_host_is_invalid(void **state) {
    /* file://host/path names a file on another machine, not a relative path */
    (void)state;
    check_err("file://server/share/a.txt", BASE, NULL, ASSET_E_INVALID);
    check_err("file://etc/passwd", BASE, ROOT, ASSET_E_INVALID);
    check_err("file://localhostx/a", BASE, NULL, ASSET_E_INVALID);
    check_ok("file://LocalHost/a", BASE, NULL, "file", "file:///a", "/a");
}

/* "file://localhost" with no path has no path; it names no other host */
static void test_file_localhost_alone_is_an_empty_path(void **state) {
    (void)state;
    const char *forms[] = {"file://localhost", "file://LOCALHOST"};
    for (size_t i = 0; i < 2; i++) {
        asset_uri_t u;
        const char *why = NULL;
        assert_int_equal(asset__uri_parse(forms[i], BASE, NULL, &u, &why), ASSET_E_INVALID);
        assert_string_equal(why, "empty path");
    }
}

static void test_file_percent_decoding(void **state) {
    (void)state;
    check_ok("file:///a%20b/c%2Fd.png", BASE, NULL, "file", "file:///a b/c/d.png", "/a b/c/d.png");
    /* a decoded '%' is re-encoded in the normalised URI, so the URI round-trips */
    check_ok("file:///100%25.txt", BASE, NULL, "file", "file:///100%25.txt", "/100%.txt");
    check_ok("file:///%41%62%63", BASE, NULL, "file", "file:///Abc", "/Abc");
}

static void test_normalised_uri_round_trips(void **state) {
    (void)state;
    const char *inputs[] = {"file:///x/100%25/%2525.txt", "mem://a%25b", "pkg://game/%25/x"};
    for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
        asset_uri_t a, b;
        const char *why;
        assert_int_equal(asset__uri_parse(inputs[i], BASE, NULL, &a, &why), ASSET_OK);
        assert_int_equal(asset__uri_parse(a.uri, BASE, NULL, &b, &why), ASSET_OK);
        assert_string_equal(a.uri, b.uri);
        assert_string_equal(a.path, b.path);
        asset__uri_dispose(&a);
        asset__uri_dispose(&b);
    }
}

static void test_plain_dotdot_climbs_within_the_path(void **state) {
    (void)state;
    check_ok("file:///a/b/../c.png", BASE, NULL, "file", "file:///a/c.png", "/a/c.png");
    check_ok("../up.png", BASE, NULL, "file", "file:///base/up.png", "/base/up.png");
    check_ok("../../top.png", BASE, NULL, "file", "file:///top.png", "/top.png");
    check_ok("file:///a/./b/./c", BASE, NULL, "file", "file:///a/b/c", "/a/b/c");
}

static void test_dotdot_above_filesystem_root_is_forbidden(void **state) {
    (void)state;
    check_err("../../../x", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("file:///../etc/passwd", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("/a/../../etc/passwd", BASE, NULL, ASSET_E_FORBIDDEN);
}

/* The reason given for a path both climbing out and holding a name the OS refuses: the
 * name, wherever it is (after the climb too), as when every component was checked
 * before the path was normalised; a base's own components are not checked. */
static void check_why_at(const char *in, const char *base, const char *want, int line) {
    asset_uri_t u;
    const char *why = NULL;
    asset_status_t st = asset__uri_parse(in, base, NULL, &u, &why);
    if (st != ASSET_E_FORBIDDEN || !why || strcmp(why, want))
        fail_msg("line %d: parse(\"%s\") = %s (%s), expected FORBIDDEN (%s)", line, in,
                 asset_err_name(st), why ? why : "?", want);
}

static void test_a_refused_name_is_the_reason_before_a_climb(void **state) {
    (void)state;
    const char *climb = "'..' climbs above the root";
    check_why_at("file:///../etc/passwd", BASE, climb, __LINE__);
    check_why_at("a/../../../../x", BASE, climb, __LINE__);
    if (tu_os_windows_paths()) { /* POSIX refuses no name */
        const char *stream = "':' in a file name (an NTFS alternate data stream)";
        check_why_at("file:///../a:b", BASE, stream, __LINE__);
        check_why_at("file:///x/../../y/a:b", BASE, stream, __LINE__);
        check_why_at("../../../../a:b", BASE, stream, __LINE__);
        check_why_at("C:/a:b/../..", BASE, stream, __LINE__);
        /* base's components are the server's, not the URI's: only climbing counts */
        check_why_at("../../../x", "C:/con/a:b", climb, __LINE__);
    }
}

static void test_percent_encoded_dotdot_above_root_is_forbidden(void **state) {
    (void)state;
    check_err("file:///%2e%2e/etc/passwd", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("file:///a/%2E%2E/%2e%2e/etc/passwd", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("file:///a/.%2e/..%2F..%2fetc", BASE, NULL, ASSET_E_FORBIDDEN);
    /* decoded "..": still just a dot segment when it stays inside */
    check_ok("file:///a/b/%2e%2e/c", BASE, NULL, "file", "file:///a/c", "/a/c");
}

/* ---- file_root confinement ---- */

static void test_file_root_relative_paths_resolve_under_root(void **state) {
    (void)state;
    check_ok("a/b.png", BASE, ROOT, "file", "file:///srv/root/a/b.png", "/srv/root/a/b.png");
    check_ok("a/../b.png", BASE, ROOT, "file", "file:///srv/root/b.png", "/srv/root/b.png");
    check_ok("file:///srv/root/x/y", BASE, ROOT, "file", "file:///srv/root/x/y", "/srv/root/x/y");
    check_ok("/srv/root", BASE, ROOT, "file", "file:///srv/root", "/srv/root");
    /* climbing out and back in lands inside: allowed */
    check_ok("../root/c.png", BASE, ROOT, "file", "file:///srv/root/c.png", "/srv/root/c.png");
    /* root "/" confines nothing (on Windows, a drive's root: the server makes file_root
     * absolute with a drive) */
    if (tu_os_windows_paths()) {
        check_ok("C:/etc/hosts", BASE, "C:/", "file", "file:///C:/etc/hosts", "C:/etc/hosts");
        /* only that drive: another drive's path was read from C: (file.c strips the
         * root's length) */
        check_err("Z:/etc/hosts", BASE, "C:/", ASSET_E_FORBIDDEN);
        check_err("file:///D:/x", BASE, "C:/", ASSET_E_FORBIDDEN);
    } else
        check_ok("/etc/hosts", BASE, "/", "file", "file:///etc/hosts", "/etc/hosts");
}

static void test_file_root_absolute_path_outside_is_forbidden(void **state) {
    (void)state;
    check_err("file:///etc/passwd", BASE, ROOT, ASSET_E_FORBIDDEN);
    check_err("/etc/passwd", BASE, ROOT, ASSET_E_FORBIDDEN);
    check_err("file:///srv", BASE, ROOT, ASSET_E_FORBIDDEN);
    /* a sibling that shares the root's prefix is outside */
    check_err("file:///srv/rootkit/x", BASE, ROOT, ASSET_E_FORBIDDEN);
    check_err("/srv/root2", BASE, ROOT, ASSET_E_FORBIDDEN);
}

static void test_file_root_relative_climbing_out_is_forbidden(void **state) {
    (void)state;
    check_err("../x", BASE, ROOT, ASSET_E_FORBIDDEN);
    check_err("a/../../x", BASE, ROOT, ASSET_E_FORBIDDEN);
    /* a bare path is literal: "%2e%2e" is a file name, not a dot segment */
    check_ok("%2e%2e/x", BASE, ROOT, "file", "file:///srv/root/%252e%252e/x", "/srv/root/%2e%2e/x");
}

static void test_file_root_percent_encoded_escape_is_forbidden(void **state) {
    (void)state;
    check_err("file:///srv/root/%2e%2e/%2e%2e/etc/passwd", BASE, ROOT, ASSET_E_FORBIDDEN);
    check_err("file:///srv/root/a/%2E%2E/%2E%2E/x", BASE, ROOT, ASSET_E_FORBIDDEN);
}

/* ---- malformed input ---- */

static void test_nul_escape_is_invalid(void **state) {
    (void)state;
    check_err("file:///a%00b", BASE, NULL, ASSET_E_INVALID);
    check_err("mem://key%00", BASE, NULL, ASSET_E_INVALID);
    check_err("pkg://game/a%00.png", BASE, NULL, ASSET_E_INVALID);
}

static void test_backslash_is_forbidden(void **state) {
    (void)state;
    if (tu_os_windows_paths()) { /* a separator in file paths there, like '/' */
        check_ok("file:///a\\..\\b", BASE, NULL, "file", "file:///b", "/b");
        check_ok("a\\b.png", BASE, NULL, "file", "file:///base/dir/a/b.png", "/base/dir/a/b.png");
        check_ok("file:///a%5c..%5cb", BASE, NULL, "file", "file:///b", "/b");
    } else {
        check_err("file:///a\\..\\b", BASE, NULL, ASSET_E_FORBIDDEN);
        check_err("a\\b.png", BASE, NULL, ASSET_E_FORBIDDEN);
        check_err("file:///a%5c..%5cb", BASE, NULL, ASSET_E_FORBIDDEN);
    }
    check_err("pkg://game/a\\b.png", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("pkg://game/..%5C..%5Cx", BASE, NULL, ASSET_E_FORBIDDEN);
}

static void test_malformed_percent_escapes_are_invalid(void **state) {
    (void)state;
    check_err("file:///a%", BASE, NULL, ASSET_E_INVALID);
    check_err("file:///a%4", BASE, NULL, ASSET_E_INVALID);
    check_err("file:///a%zz", BASE, NULL, ASSET_E_INVALID);
    check_err("file:///a%g0", BASE, NULL, ASSET_E_INVALID);
    check_err("mem://%", BASE, NULL, ASSET_E_INVALID);
    check_err("pkg://game/%x1", BASE, NULL, ASSET_E_INVALID);
}

static void test_empty_uri_and_empty_paths_are_invalid(void **state) {
    (void)state;
    check_err("", BASE, NULL, ASSET_E_INVALID);
    check_err(NULL, BASE, NULL, ASSET_E_INVALID);
    check_err("file://", BASE, NULL, ASSET_E_INVALID);
    check_err("mem://", BASE, NULL, ASSET_E_INVALID);
    check_err("pkg://", BASE, NULL, ASSET_E_INVALID);
    check_err("http://", BASE, NULL, ASSET_E_INVALID);
}

static void test_too_long_uri_is_invalid(void **state) {
    (void)state;
    char *in = malloc(ASSET__URI_MAX + 2);
    memcpy(in, "mem://", 6);
    memset(in + 6, 'k', ASSET__URI_MAX - 6);
    in[ASSET__URI_MAX] = 0; /* exactly the limit: fine */
    asset_uri_t u;
    const char *why;
    assert_int_equal(asset__uri_parse(in, BASE, NULL, &u, &why), ASSET_OK);
    assert_int_equal(strlen(u.path), ASSET__URI_MAX - 6);
    asset__uri_dispose(&u);
    in[ASSET__URI_MAX] = 'k';
    in[ASSET__URI_MAX + 1] = 0; /* one more */
    check_err(in, BASE, NULL, ASSET_E_INVALID);
    /* short enough, but its normal form is not: each '#' is written "%23" (the normal
     * form would not parse again) */
    memset(in + 6, '#', ASSET__URI_MAX / 3);
    in[6 + ASSET__URI_MAX / 3] = 0;
    check_err(in, BASE, NULL, ASSET_E_INVALID);
    /* a bare path: its normal form gains "file://" and the base dir */
    memset(in, 'p', ASSET__URI_MAX - 4);
    in[ASSET__URI_MAX - 4] = 0;
    check_err(in, BASE, NULL, ASSET_E_INVALID);
    /* a normal form of exactly the limit parses, and parses again to itself */
    size_t n = (ASSET__URI_MAX - 6) / 3;
    memcpy(in, "mem://", 6);
    memset(in + 6, '#', n);
    memset(in + 6 + n, 'k', ASSET__URI_MAX - 6 - 3 * n);
    in[6 + n + ASSET__URI_MAX - 6 - 3 * n] = 0;
    assert_int_equal(asset__uri_parse(in, BASE, NULL, &u, &why), ASSET_OK);
    assert_int_equal(strlen(u.uri), ASSET__URI_MAX);
    asset_uri_t v;
    assert_int_equal(asset__uri_parse(u.uri, BASE, NULL, &v, &why), ASSET_OK);
    assert_string_equal(v.uri, u.uri);
    asset__uri_dispose(&v);
    asset__uri_dispose(&u);
    free(in);
}

/* "A URI is at most 8192 bytes as written" (the header): only what precedes a label's
 * '#' was measured, so "mem://k#" and a label of any length loaded, and the handle's URI
 * passed the limit; and so did a label that fits as written where the handle's URI (the
 * normal form: a bare path's gains "file://" and the base dir) does not. */
static void test_a_label_counts_in_the_length_of_a_uri(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    char *in = malloc(ASSET__URI_MAX + 2);
    struct {
        const char *head;
        char fill;
        size_t len;
        asset_status_t want;
    } cases[] = {
        {"mem://k#", 'L', ASSET__URI_MAX, ASSET_E_NOT_FOUND}, /* the limit: no such label */
        {"mem://k#", 'L', ASSET__URI_MAX + 1, ASSET_E_INVALID},
        {"mem://k#", '%', ASSET__URI_MAX + 1, ASSET_E_INVALID}, /* "%41%41...": short decoded */
        {"k#", 'L', ASSET__URI_MAX, ASSET_E_INVALID},           /* its normal form is longer */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t hl = strlen(cases[i].head);
        memcpy(in, cases[i].head, hl);
        for (size_t k = hl; k < cases[i].len; k++)
            in[k] = cases[i].fill != '%' ? cases[i].fill : "%41"[(k - hl) % 3];
        in[cases[i].len] = 0;
        asset_handle_t *h = asset_server_load(s, in, NULL);
        asset_status_t st = tu_wait(h);
        bool says = strstr(asset_handle_error_message(h), "URI too long") != NULL;
        asset_handle_release(h);
        if (st != cases[i].want || says != (cases[i].want == ASSET_E_INVALID))
            fail_msg("case %zu (%zu bytes): %s%s", i, cases[i].len, asset_err_name(st),
                     says ? ", URI too long" : "");
    }
    free(in);
    asset_server_destroy(s);
}

/* The same for an http URL: one of exactly the limit with no path ("http://h?q...") gains
 * its '/', and its normal form, one byte past the limit, did not parse again ("URI too
 * long": a handle's own URI that a reload or an invalidate could not name). */
static void test_http_url_whose_normal_form_is_too_long_is_invalid(void **state) {
    (void)state;
    char *in = malloc(ASSET__URI_MAX + 1);
    memcpy(in, "http://h?", 9);
    memset(in + 9, 'q', ASSET__URI_MAX - 9);
    in[ASSET__URI_MAX] = 0;
    asset_uri_t u;
    const char *why = NULL;
    asset_status_t st = asset__uri_parse(in, BASE, NULL, &u, &why);
    if (st == ASSET_OK) {
        asset_uri_t v;
        asset_status_t again = asset__uri_parse(u.uri, BASE, NULL, &v, &why);
        size_t ul = strlen(u.uri);
        asset__uri_dispose(&u);
        if (again != ASSET_OK)
            fail_msg("normal form of %zu bytes does not parse again: %s", ul, why);
        asset__uri_dispose(&v);
    } else {
        assert_int_equal(st, ASSET_E_INVALID);
    }
    /* one byte shorter: the normal form is exactly the limit, and parses to itself */
    in[ASSET__URI_MAX - 1] = 0;
    assert_int_equal(asset__uri_parse(in, BASE, NULL, &u, &why), ASSET_OK);
    assert_int_equal(strlen(u.uri), ASSET__URI_MAX);
    asset_uri_t v;
    assert_int_equal(asset__uri_parse(u.uri, BASE, NULL, &v, &why), ASSET_OK);
    assert_string_equal(v.uri, u.uri);
    asset__uri_dispose(&v);
    asset__uri_dispose(&u);
    free(in);
}

/* Past the parse's stack scratch (512 bytes a step): the same results from the heap. */
static void test_long_uris_and_base_dirs_normalise_as_short_ones(void **state) {
    (void)state;
    enum { N = 1500 };
    char seg[N + 1], base[N + 16], in[3 * N], uri[3 * N], path[3 * N];
    memset(seg, 's', N);
    seg[N] = 0;
    /* a long pkg:// path with "." and "//" to remove */
    snprintf(in, sizeof in, "pkg://game/./%s//%%23/./f.txt", seg);
    snprintf(uri, sizeof uri, "pkg://game/%s/%%23/f.txt", seg);
    snprintf(path, sizeof path, "game/%s/#/f.txt", seg);
    check_ok(in, BASE, NULL, "pkg", uri, path);
    /* a long base dir joined to a short relative path, and a long relative one */
    snprintf(base, sizeof base, "/b/%s", seg);
    snprintf(uri, sizeof uri, "file:///b/%s/r.txt", seg);
    snprintf(path, sizeof path, "/b/%s/r.txt", seg);
    check_ok("x/../r.txt", base, NULL, "file", uri, path);
    snprintf(in, sizeof in, "%s/./r.txt", seg);
    snprintf(uri, sizeof uri, "file:///base/dir/%s/r.txt", seg);
    snprintf(path, sizeof path, "/base/dir/%s/r.txt", seg);
    check_ok(in, BASE, NULL, "file", uri, path);
    /* a long file:// URI, and its climb out of a root refused */
    snprintf(in, sizeof in, "file:///srv/root/%s/../a%%25.txt", seg);
    check_ok(in, BASE, ROOT, "file", "file:///srv/root/a%25.txt", "/srv/root/a%.txt");
    snprintf(in, sizeof in, "file:///srv/root/%s/../../../a.txt", seg);
    check_err(in, BASE, ROOT, ASSET_E_FORBIDDEN);
    /* a long http:// URL */
    snprintf(in, sizeof in, "http://H/%s#frag", seg);
    snprintf(uri, sizeof uri, "http://h/%s", seg);
    snprintf(path, sizeof path, "h/%s", seg);
    check_ok(in, BASE, NULL, "http", uri, path);
}

/* ---- pkg:// ---- */

static void test_pkg_names_and_paths(void **state) {
    (void)state;
    check_ok("pkg://game/ui/menu.json", BASE, NULL, "pkg", "pkg://game/ui/menu.json",
             "game/ui/menu.json");
    check_ok("pkg://My_Pkg-2.0/a", BASE, NULL, "pkg", "pkg://My_Pkg-2.0/a", "My_Pkg-2.0/a");
    check_ok("pkg://game//a/./b", BASE, NULL, "pkg", "pkg://game/a/b", "game/a/b");
    check_ok("pkg://game", BASE, NULL, "pkg", "pkg://game", "game");
    check_ok("pkg://game/a%20b.png", BASE, NULL, "pkg", "pkg://game/a b.png", "game/a b.png");
}

static void test_pkg_bad_names_are_rejected(void **state) {
    (void)state;
    check_err("pkg://ga me/a", BASE, NULL, ASSET_E_INVALID);
    check_err("pkg://ga*me/a", BASE, NULL, ASSET_E_INVALID);
    check_err("pkg://./a", BASE, NULL, ASSET_E_INVALID);
    check_err("pkg:///a", BASE, NULL, ASSET_E_FORBIDDEN); /* absolute */
    check_err("pkg://game:1/a", BASE, NULL, ASSET_E_INVALID);
}

static void test_pkg_dotdot_is_forbidden(void **state) {
    (void)state;
    check_err("pkg://game/../other/a", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("pkg://game/a/../b", BASE, NULL, ASSET_E_FORBIDDEN); /* even if it stays inside */
    check_err("pkg://game/a/..", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("pkg://game/%2e%2e/x", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("pkg://game/a/%2E%2E", BASE, NULL, ASSET_E_FORBIDDEN);
    /* ".." as the package name climbs out of the package space too */
    check_err("pkg://../etc/passwd", BASE, NULL, ASSET_E_FORBIDDEN);
    check_err("pkg://%2e%2e/etc/passwd", BASE, NULL, ASSET_E_FORBIDDEN);
    /* names that merely contain dots are fine (at the end too: on Windows a directory
     * package refuses that name when it reads, an embedded one serves it) */
    check_ok("pkg://game/..a/b..", BASE, NULL, "pkg", "pkg://game/..a/b..", "game/..a/b..");
}

/* ---- http ---- */

static void test_http_host_is_lowercased_path_kept(void **state) {
    (void)state;
    check_ok("HTTP://Example.COM/Path/A.PNG", BASE, NULL, "http", "http://example.com/Path/A.PNG",
             "example.com/Path/A.PNG");
    check_ok("https://CDN.Example.com:8443/x?Q=AbC", BASE, NULL, "https",
             "https://cdn.example.com:8443/x?Q=AbC", "cdn.example.com:8443/x?Q=AbC");
    check_ok("http://Host.Example?Q=Up", BASE, NULL, "http", "http://host.example/?Q=Up",
             "host.example/?Q=Up");
    /* a reserved or other byte's escape stays an escape */
    check_ok("http://h/a%20b", BASE, NULL, "http", "http://h/a%20b", "h/a%20b");
    /* credentials are case-sensitive: only the host after them is lowercased */
    check_ok("http://User:PaSS@Host.Example:81/P", BASE, NULL, "http",
             "http://User:PaSS@host.example:81/P", "User:PaSS@host.example:81/P");
    check_ok("http://A@b@C.Example/", BASE, NULL, "http", "http://A@b@c.example/",
             "A@b@c.example/");
    check_ok("http://Host/A@B", BASE, NULL, "http", "http://host/A@B", "host/A@B");
    check_err("http://user:pw@/x", BASE, NULL, ASSET_E_INVALID); /* credentials, no host */
    check_err("https://user@", BASE, NULL, ASSET_E_INVALID);
}

/* RFC 3986 6.2.2.1 and 6.2.2.2: an escape's hex digits are upper-cased, and an escaped
 * unreserved character (ALPHA, DIGIT, '-', '.', '_', '~') is decoded, so that "%2f" and
 * "%2F", or "%41" and "A", are one URI (they were two: two cache entries, two fetches) */
static void test_http_percent_escapes_are_normalised(void **state) {
    (void)state;
    check_ok("http://h/a%2fb", BASE, NULL, "http", "http://h/a%2Fb", "h/a%2Fb");
    check_ok("http://h/%41%7e%2D%2e%5F%30?q=%61%3d", BASE, NULL, "http", "http://h/A~-._0?q=a%3D",
             "h/A~-._0?q=a%3D");
    /* in the authority too: credentials and host (lowercased once decoded) */
    check_ok("http://%55ser:p%40ss@%48ost/x", BASE, NULL, "http", "http://User:p%40ss@host/x",
             "User:p%40ss@host/x");
    /* but a segment of escaped dots stays escaped: libcurl sends "%2E%2E" as written, and
     * would remove ".." (test_http_dot_segments_are_removed_as_libcurl_does) */
    check_ok("http://h/a/%2E%2e/%2e/.%2E/b", BASE, NULL, "http", "http://h/a/%2E%2E/%2E/.%2E/b",
             "h/a/%2E%2E/%2E/.%2E/b");
    check_ok("http://h/a%2E/%2E%2E%2E/?%2E", BASE, NULL, "http", "http://h/a./.../?.",
             "h/a./.../?.");
    /* an escape that is no escape is left as written; the label is not the URL's */
    check_ok("http://h/100%/%zz%4", BASE, NULL, "http", "http://h/100%/%zz%4", "h/100%/%zz%4");
    /* and so is a hex digit's escape right after it: decoded, "%4%41" would be "%4A",
     * which the next parse read as "J" (found by fuzz/fuzz_uri.c) */
    check_ok("http://h/%4%41%2f%7e/%%34%31", BASE, NULL, "http", "http://h/%4%41%2F~/%%341",
             "h/%4%41%2F~/%%341");
    check_ok("http://h/%7e#%41", BASE, NULL, "http", "http://h/~", "h/~");
}

/* RFC 3986 6.2.3: "http://h", "http://h/", "http://h:/" and "http://h:80/" are one
 * resource, so one URI: one cache entry, one coalesced load (they were cached apart) */
static void test_http_empty_path_and_default_port_are_normalised(void **state) {
    (void)state;
    const char *same[] = {"http://h.example",    "http://h.example/",    "http://h.example:/",
                          "http://h.example:80", "http://H.Example:80/", "http://h.example#f"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        check_ok(same[i], BASE, NULL, "http", "http://h.example/", "h.example/");
    check_ok("https://h:443?q", BASE, NULL, "https", "https://h/?q", "h/?q");
    check_ok("http://u:80@h:80/x", BASE, NULL, "http", "http://u:80@h/x", "u:80@h/x");
    check_ok("http://[::1]:80/x", BASE, NULL, "http", "http://[::1]/x", "[::1]/x");
    /* a port that is not the scheme's default stays, and so does an IPv6 literal */
    check_ok("http://h:443/x", BASE, NULL, "http", "http://h:443/x", "h:443/x");
    check_ok("https://h:80/x", BASE, NULL, "https", "https://h:80/x", "h:80/x");
    check_ok("http://h:8080", BASE, NULL, "http", "http://h:8080/", "h:8080/");
    check_ok("http://h:080/", BASE, NULL, "http", "http://h:080/", "h:080/");
    check_ok("http://[::1]", BASE, NULL, "http", "http://[::1]/", "[::1]/");
    check_ok("http://[::80]/", BASE, NULL, "http", "http://[::80]/", "[::80]/");
    /* only the port after the host: normalising twice changes nothing */
    check_ok("http://h:80:80/", BASE, NULL, "http", "http://h:80:80/", "h:80:80/");
    check_ok("http://h::/", BASE, NULL, "http", "http://h::/", "h::/");
}

/* Through the API: both spellings name one URI, the key of the cache and of coalescing */
static void test_http_spellings_of_one_url_coalesce(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset_handle_t *a = asset_server_load(s, "http://127.0.0.1:9", NULL);
    asset_handle_t *b = asset_server_load(s, "HTTP://127.0.0.1:9/", NULL);
    assert_string_equal(asset_handle_uri(a), "http://127.0.0.1:9/");
    assert_string_equal(asset_handle_uri(b), "http://127.0.0.1:9/");
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
}

/* libcurl (and fetch() on the web) removes a URL's dot segments before it sends it
 * (RFC 3986 5.2.4): "http://h/a/./b/../c" is the request "GET /a/c", the resource
 * "http://h/a/c" names, which a reference "../c" resolves to; they were two URIs (two
 * cache entries, two loads that did not coalesce). Empty segments, the query and
 * escapes ("%2E%2E", which libcurl sends as written) are kept. */
static void test_http_dot_segments_are_removed_as_libcurl_does(void **state) {
    (void)state;
    const char *same[] = {"http://h/a/c",          "http://h/a/./c",  "http://h/a/b/../c",
                          "http://h/./a/b/./../c", "http://h/../a/c", "http://H:80/x/../a/c"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++)
        check_ok(same[i], BASE, NULL, "http", "http://h/a/c", "h/a/c");
    check_ok("http://h/a/b/..", BASE, NULL, "http", "http://h/a/", "h/a/");
    check_ok("http://h/a/.?q=/./x/../y", BASE, NULL, "http", "http://h/a/?q=/./x/../y",
             "h/a/?q=/./x/../y");
    check_ok("https://h/..", BASE, NULL, "https", "https://h/", "h/");
    check_ok("http://h/a//./b/", BASE, NULL, "http", "http://h/a//b/", "h/a//b/");
    check_ok("http://h/a/%2E%2E/b", BASE, NULL, "http", "http://h/a/%2E%2E/b", "h/a/%2E%2E/b");
    check_ok("http://h/a/..b/.c", BASE, NULL, "http", "http://h/a/..b/.c", "h/a/..b/.c");
    /* the reference and the URL it resolves to are one URI */
    char *r = asset__uri_resolve("http://h/a/b/m.json", "../c");
    assert_string_equal(r, "http://h/a/c");
    asset_free(r);
}

#if defined(__GLIBC__)
#include <locale.h>
/* Compiles glibc's locale `name` ("tr_TR.UTF-8") into dir with localedef; false when
 * this machine cannot (no localedef, no locale sources). */
static bool compile_locale(const char *dir, const char *input, const char *charset) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "localedef -i %s -f %s '%s/%s.%s' >/dev/null 2>&1", input, charset,
             dir, input, charset);
    return system(cmd) == 0;
}
#endif

/* A program that calls setlocale(LC_ALL, "") takes the user's locale for <ctype.h>: in
 * tr_TR.UTF-8 tolower('I') is 'I' ("FILE://" became the scheme "fIle", a host's 'I' stayed
 * upper, and "LAST-MODIFIED" did not match "last-modified"); in ISO-8859-9 isalnum(0xE9)
 * is true (a package name "caf\xe9" was valid). The rules are ASCII whatever the locale. */
static char *locale_dir; /* the compiled locales; the teardown removes them, failed or not */

static void test_uri_rules_ignore_the_c_locale(void **state) {
    (void)state;
#if !defined(__GLIBC__)
    skip(); /* compiling a locale needs glibc's localedef */
#else
    locale_dir = tu_mkdtemp();
    if (!compile_locale(locale_dir, "tr_TR", "UTF-8") ||
        !compile_locale(locale_dir, "tr_TR", "ISO-8859-9")) {
        printf("  skipped: localedef cannot compile tr_TR here\n");
        skip();
    }
    setenv("LOCPATH", locale_dir, 1);
    assert_non_null(setlocale(LC_ALL, "tr_TR.UTF-8"));
    check_ok("FILE:///a", BASE, NULL, "file", "file:///a", "/a");
    check_ok("HTTP://MIXI.EXAMPLE/I", BASE, NULL, "http", "http://mixi.example/I",
             "mixi.example/I");
    assert_int_equal(asset__strcasecmp("LAST-MODIFIED", "last-modified"), 0);
    assert_int_equal(asset__strncasecmp("IDENTITY", "identity", 8), 0);
    assert_non_null(setlocale(LC_ALL, "tr_TR.ISO-8859-9"));
    check_err("pkg://caf\xe9/a", BASE, NULL, ASSET_E_INVALID);
    check_ok("http://\xc0.example/x", BASE, NULL, "http", "http://\xc0.example/x",
             "\xc0.example/x");
#endif
}

static int locale_teardown(void **state) {
    (void)state;
#if defined(__GLIBC__)
    setlocale(LC_ALL, "C");
    unsetenv("LOCPATH");
#endif
    if (locale_dir) tu_rmrf(locale_dir);
    free(locale_dir);
    locale_dir = NULL;
    return 0;
}

static void test_http_fragment_is_dropped(void **state) {
    (void)state;
    check_ok("http://h.example/a.json#frag", BASE, NULL, "http", "http://h.example/a.json",
             "h.example/a.json");
}

static void test_http_malformed_is_invalid(void **state) {
    (void)state;
    check_err("http:///path", BASE, NULL, ASSET_E_INVALID);
    check_err("https://", BASE, NULL, ASSET_E_INVALID);
    check_err("http://h/a b", BASE, NULL, ASSET_E_INVALID);
    check_err("http://h/a\tb", BASE, NULL, ASSET_E_INVALID);
    check_err("http://h/a\x7f", BASE, NULL, ASSET_E_INVALID);
}

/* ---- mem:// ---- */

static void test_mem_keys_are_decoded_and_kept_verbatim(void **state) {
    (void)state;
    check_ok("mem://textures/a.png", BASE, NULL, "mem", "mem://textures/a.png", "textures/a.png");
    check_ok("mem://a%20b", BASE, NULL, "mem", "mem://a b", "a b");
    check_ok("mem://50%25", BASE, NULL, "mem", "mem://50%25", "50%");
    check_ok("mem://CaseKept", BASE, NULL, "mem", "mem://CaseKept", "CaseKept");
    /* keys are opaque: no dot-segment processing, no file_root confinement */
    check_ok("mem://a/../b", BASE, ROOT, "mem", "mem://a/../b", "a/../b");
    check_ok("mem://a//b/", BASE, NULL, "mem", "mem://a//b/", "a//b/");
}

/* asset__uri_key_is_normal lets a load of an IMMUTABLE source skip the parse (and a
 * loader's claims() see the URI as written): it must say true only for a URI that parses
 * to itself. No test asked it directly; every key of up to 5 bytes over an alphabet of
 * the bytes its rules turn on, for pkg://, mem:// and a custom scheme, is checked
 * against the parse, and so are the keys it must refuse, one rule each. */
static void test_a_key_said_normal_parses_to_itself(void **state) {
    (void)state;
    static const char al[] = "a/.%25\\3";
    const char *schemes[] = {"pkg", "mem", "x"};
    size_t an = sizeof al - 1, normal = 0;
    for (size_t si = 0; si < 3; si++)
        for (size_t len = 1, tot = an; len <= 5; len++, tot *= an)
            for (size_t c = 0; c < tot; c++) {
                char rest[8], in[16];
                for (size_t i = 0, v = c; i < len; i++, v /= an) rest[i] = al[v % an];
                rest[len] = 0;
                const char *sc = schemes[si];
                if (!asset__uri_key_is_normal(sc, strlen(sc), rest, len)) continue;
                normal++;
                snprintf(in, sizeof in, "%s://%s", sc, rest);
                asset_uri_t u;
                const char *why = NULL;
                asset_status_t st = asset__uri_parse(in, BASE, NULL, &u, &why);
                bool same = st == ASSET_OK && !strcmp(u.uri, in);
                if (st == ASSET_OK) asset__uri_dispose(&u);
                if (!same) fail_msg("'%s' said normal, parses %s", in, why ? why : "otherwise");
            }
    assert_true(normal > 1000); /* not vacuous */
    struct {
        const char *scheme, *rest;
        bool normal;
    } cases[] = {
        {"pkg", "game/a%25b%23.png", true},
        {"mem", "a//b/../c/", true},
        {"x", "a b", true},
        {"pkg", "game", true},
        {"pkg", "game/", false},
        {"pkg", "game//a", false},
        {"pkg", "game/./a", false},
        {"pkg", "game/a/..", false},
        {"pkg", "ga%6De/a", false},
        {"pkg", "../a", false},
        {"mem", "%41", false},
        {"mem", "a%2", false},
        {"mem", "a%", false},
        {"mem", "a\\b", false},
        {"file", "/a", false},
        {"http", "h/a", false},
        {"https", "h/a", false},
        {"mem", "", false},
        {"abcdefghijklmnopqrstuvwx", "k", false}, /* 24 bytes: "scheme too long" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *sc = cases[i].scheme, *r = cases[i].rest;
        if (asset__uri_key_is_normal(sc, strlen(sc), r, strlen(r)) != cases[i].normal)
            fail_msg("%s://%s: want %s", sc, r, cases[i].normal ? "normal" : "not normal");
    }
}

/* ---- resolve ---- */

static void test_resolve_against_file_base(void **state) {
    (void)state;
    check_resolve("file:///a/b/c.json", "d.png", "file:///a/b/d.png");
    check_resolve("file:///a/b/c.json", "sub/d.png", "file:///a/b/sub/d.png");
    check_resolve("file:///a/b/c.json", "../d.png", "file:///a/d.png");
    check_resolve("file:///a/b/c.json", "./x/../d.png", "file:///a/b/d.png");
    check_resolve("file:///a/b/c.json", "/abs/d.png", "file:///abs/d.png");
    check_resolve("file:///a/b/", "c", "file:///a/b/c");
}

/* Windows: a file URI's drive ("/D:" of "file:///D:/a/x") is its path's root, as the
 * parse reads it. A ".." took it away as if it were a directory ("../../y" from
 * D:/a/x.json gave "file:///y", the drive of the working directory or of file_root:
 * another drive's file loaded, where POSIX refuses the climb above the root), and a
 * rooted reference lost it too. POSIX: "D:" is a directory name like any. */
static void test_resolve_keeps_a_file_uris_drive(void **state) {
    (void)state;
    TU_SKIP_UNLESS(tu_os_windows_paths(), "no drive letters");
    check_resolve("file:///D:/a/x.json", "../y.png", "file:///D:/y.png");
    check_resolve("file:///D:/a/x.json", "/y.png", "file:///D:/y.png");
    check_resolve("file:///D:/x.json", "sub/../y.png", "file:///D:/y.png");
    /* climbing above the drive's root: left for the parse, which refuses it */
    check_resolve("file:///D:/a/x.json", "../../y.png", "file:///D:/a/../../y.png");
    char *r = asset__uri_resolve("file:///D:/a/x.json", "../../y.png");
    assert_non_null(r);
    check_err(r, BASE, NULL, ASSET_E_FORBIDDEN);
    asset_free(r);
}

static void test_resolve_against_pkg_base(void **state) {
    (void)state;
    check_resolve("pkg://game/ui/menu.json", "icons/a.png", "pkg://game/ui/icons/a.png");
    check_resolve("pkg://game/ui/menu.json", "../a.png", "pkg://game/a.png");
    check_resolve("pkg://game/ui/menu.json", "/root.png", "pkg://game/root.png");
    check_resolve("pkg://game/menu.json", "a.png", "pkg://game/a.png");
    check_resolve("pkg://game", "a.png", "pkg://game/a.png");
}

static void test_resolve_climbing_out_of_pkg_stays_forbidden(void **state) {
    (void)state;
    char *r = asset__uri_resolve("pkg://game/ui/menu.json", "../../../other/x");
    assert_non_null(r);
    /* whatever the resolver gives back must not parse into another package */
    check_err(r, BASE, NULL, ASSET_E_FORBIDDEN);
    asset_free(r);
}

static void test_resolve_against_http_base(void **state) {
    (void)state;
    check_resolve("http://h.example/a/b.json", "c.png", "http://h.example/a/c.png");
    check_resolve("http://h.example/a/b.json?v=1/2", "c.png", "http://h.example/a/c.png");
    check_resolve("https://h.example/a/b/c.json", "../d.png", "https://h.example/a/d.png");
    check_resolve("https://h.example/a/b/c.json", "/d.png", "https://h.example/d.png");
    check_resolve("http://h.example", "a.png", "http://h.example/a.png");
    check_resolve("http://h.example/", "a.png", "http://h.example/a.png");
    check_resolve("http://h.example:8080?x=1", "a.png", "http://h.example:8080/a.png");
    /* a network-path reference keeps only the scheme (RFC 3986, 5.2.2) */
    check_resolve("http://h.example/a/b.json", "//cdn.example/x.bin", "http://cdn.example/x.bin");
    check_resolve("https://h.example/a/b.json", "//cdn.example:8443/x?y",
                  "https://cdn.example:8443/x?y");
    check_resolve("pkg://game/ui/menu.json", "//other/x.png", "pkg://other/x.png");
    /* where there is no authority, "//x" is a rooted path, as before */
    check_resolve("file:///a/b.json", "//x/y", "file:///x/y");
}

/* A reference's "#label" and, for http, its query are not path: resolving normalises
 * only the path before them ("//" and ".." inside them stay as written). */
static void test_resolve_leaves_the_label_and_the_query_alone(void **state) {
    (void)state;
    check_resolve("pkg://game/m.json", "atlas.json#sprites/../hero",
                  "pkg://game/atlas.json#sprites/../hero");
    check_resolve("mem://dir/m.json", "data.json#a/../b", "mem://dir/data.json#a/../b");
    check_resolve("mem://dir/m.json", "../x/./y.json#l//m", "mem://x/y.json#l//m");
    check_resolve("file:///a/b.json", "c?d/../e", "file:///a/e"); /* '?' is path here */
    check_resolve("http://127.0.0.1/packs/m.json", "img?src=http://cdn/x.png",
                  "http://127.0.0.1/packs/img?src=http://cdn/x.png");
    check_resolve("http://127.0.0.1/packs/m.json", "a/get?path=/lvl/../secret",
                  "http://127.0.0.1/packs/a/get?path=/lvl/../secret");
    check_resolve("http://127.0.0.1/packs/m.json", "../x?a=/../../b",
                  "http://127.0.0.1/x?a=/../../b");
    check_resolve("https://h/a/m.json", "b/../c#frag/../x", "https://h/a/c#frag/../x");
}

/* A reference with no path (a query or a label alone, or an empty one) names the base
 * itself (RFC 3986, 5.2.2), which the guide promises for manifest entries: resolved as
 * a path, "?v=2" against an http base fetched the base's directory with the query, and
 * "#x" named a label of the directory. */
static void test_resolve_a_reference_without_a_path_is_the_base_itself(void **state) {
    (void)state;
    check_resolve("http://a/b/c/d;p?q", "?y", "http://a/b/c/d;p?y");
    check_resolve("http://a/b/c/d;p?q", "#s", "http://a/b/c/d;p?q#s");
    check_resolve("http://a/b/c/d;p?q", "", "http://a/b/c/d;p?q");
    check_resolve("http://api.example/asset?id=1", "?id=2", "http://api.example/asset?id=2");
    check_resolve("https://h", "?x", "https://h?x");
    check_resolve("file:///a/m.json", "#x", "file:///a/m.json#x");
    check_resolve("file:///a/m.json", "", "file:///a/m.json");
    check_resolve("pkg://game/d/m.json", "#Mesh%200", "pkg://game/d/m.json#Mesh%200");
    check_resolve("mem://d/m.json", "#x", "mem://d/m.json#x");
    /* '?' is a character of a file, pkg or mem name: "?q" is a relative name there */
    check_resolve("pkg://game/d/m.json", "?q", "pkg://game/d/?q");
}

/* An http(s) path is resolved as RFC 3986 says (5.2.4, the examples of 5.4), not as a
 * file path: a trailing '/' and an empty segment name another resource there (a
 * directory's index, an object key with "//"), and a ".." above the root is dropped.
 * Normalised as a file path, "g/" lost its '/', "g//h" became "g/h", and "../../../g"
 * was kept as written: the URL libcurl asks for ("/g") was another handle URI, which
 * coalesced and cached apart from a load of "http://a/g". */
static void test_resolve_http_paths_as_rfc_3986_does(void **state) {
    (void)state;
    const char *b = "http://a/b/c/d;p?q";
    check_resolve(b, "g", "http://a/b/c/g");
    check_resolve(b, "g/", "http://a/b/c/g/");
    check_resolve(b, ".", "http://a/b/c/");
    check_resolve(b, "./", "http://a/b/c/");
    check_resolve(b, "..", "http://a/b/");
    check_resolve(b, "../", "http://a/b/");
    check_resolve(b, "../g", "http://a/b/g");
    check_resolve(b, "../..", "http://a/");
    check_resolve(b, "../../g", "http://a/g");
    check_resolve(b, "../../../g", "http://a/g");
    check_resolve(b, "../../../../g", "http://a/g");
    check_resolve(b, "/./g", "http://a/g");
    check_resolve(b, "/../g", "http://a/g");
    check_resolve(b, "g.", "http://a/b/c/g.");
    check_resolve(b, "..g", "http://a/b/c/..g");
    check_resolve(b, "./g/.", "http://a/b/c/g/");
    check_resolve(b, "g/../h", "http://a/b/c/h");
    check_resolve(b, "g;x=1/../y", "http://a/b/c/y");
    check_resolve(b, "g?y/./x", "http://a/b/c/g?y/./x");
    check_resolve(b, "g#s/../x", "http://a/b/c/g#s/../x");
    check_resolve(b, "g//h", "http://a/b/c/g//h");
    check_resolve("https://s3.example/bucket/a//b/m.json", "t.png",
                  "https://s3.example/bucket/a//b/t.png");
    check_resolve("http://h", "../x", "http://h/x");
}

/* mem:// keys and custom schemes' paths are names, kept as written (no normalisation):
 * resolving against one keeps its empty segments and a trailing '/', as a URL's, and
 * leaves a ".." above its start as written. As a file path, "x" from the key
 * "a//b/m.json" was the key "a/b/x", another key. */
static void test_resolve_keeps_the_empty_segments_of_a_key(void **state) {
    (void)state;
    check_resolve("mem://a//b/m.json", "x", "mem://a//b/x");
    check_resolve("mem://d/m.json", "x/", "mem://d/x/");
    check_resolve("mem://d/m.json", "x//y", "mem://d/x//y");
    check_resolve("myfs://pack//lvl/m.json", "../t.png", "myfs://pack//t.png");
    check_resolve("mem:///abs/m.json", "x", "mem:///abs/x");
    check_resolve("mem://d/e/m.json", "./../x", "mem://d/x");
    /* as before: a ".." above the key's start is left as written */
    check_resolve("mem://d/m.json", "../../x", "mem://d/../../x");
    check_resolve("mem://m.json", "../x", "mem://../x");
}

static void test_resolve_against_mem_base(void **state) {
    (void)state;
    /* a reference longer than the resolver's stack buffer */
    char ref[1200], want[1300];
    memset(ref, 'x', sizeof ref - 1);
    ref[sizeof ref - 1] = 0;
    memcpy(ref, "../", 3);
    snprintf(want, sizeof want, "mem://levels/%s", ref + 3);
    check_resolve("mem://levels/deep/one.json", ref, want);
    check_resolve("mem://levels/one.json", "two.json", "mem://levels/two.json");
    check_resolve("mem://levels/one.json", "../top.json", "mem://top.json");
    check_resolve("mem://one.json", "two.json", "mem://two.json");
}

static void test_resolve_absolute_ref_stands_alone(void **state) {
    (void)state;
    check_resolve("pkg://game/a.json", "https://cdn.example/x.bin", "https://cdn.example/x.bin");
    check_resolve("file:///a/b.json", "mem://k", "mem://k");
    check_resolve("http://h/a.json", "pkg://game/x", "pkg://game/x");
    assert_null(asset__uri_resolve(NULL, "a"));
    assert_null(asset__uri_resolve("file:///a", NULL));
}

/* ---- through the public API ---- */

static void test_bad_uri_gives_failed_handle_at_next_flush(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    const char *bad[] = {"file:///a%zz", "pkg://game/../x", "", "file:///a%00"};
    const asset_status_t want[] = {ASSET_E_INVALID, ASSET_E_FORBIDDEN, ASSET_E_INVALID,
                                   ASSET_E_INVALID};
    asset_handle_t *h[4];
    for (int i = 0; i < 4; i++) {
        h[i] = asset_server_load(s, bad[i], NULL);
        assert_non_null(h[i]); /* never fails synchronously */
        /* not visible before the flush */
        assert_int_equal(asset_handle_state(h[i]), ASSET_STATE_PENDING);
        assert_false(asset_handle_is_done(h[i]));
        assert_int_equal(asset_handle_error(h[i]), ASSET_OK);
        assert_string_equal(asset_handle_error_message(h[i]), "");
    }
    assert_int_equal(asset_server_flush(s), 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(asset_handle_state(h[i]), ASSET_STATE_FAILED);
        assert_int_equal(asset_handle_error(h[i]), want[i]);
        assert_null(asset_handle_value(h[i]));
        const char *msg = asset_handle_error_message(h[i]);
        assert_non_null(msg);
        assert_true(strlen(msg) > strlen(bad[i]));
        /* names the URI as given */
        assert_non_null(strstr(msg, bad[i]));
        assert_string_equal(asset_handle_uri(h[i]), bad[i]);
        asset_handle_release(h[i]);
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.failed, 4);
    assert_int_equal(st.source_reads, 0);
    asset_server_destroy(s);
}

/* A source that serves its path as the bytes, and remembers the last one it read. */
static asset_status_t echo_read(void *ctx, asset_request_t *r) {
    snprintf(ctx, 64, "%s", asset_request_path(r));
    if (strcmp(asset_request_path(r), "a.n?x=1") != 0)
        return asset_request_fail(r, ASSET_E_NOT_FOUND, "no such name");
    return asset_request_write(r, "Q", 1);
}

typedef struct entries {
    const char *uri;
    int same, escaped; /* entries of uri; entries with a "%3F" */
} entries_t;

static bool count_entry(const asset_cache_info_t *i, void *user) {
    entries_t *e = user;
    e->same += !strcmp(i->uri, e->uri);
    e->escaped += strstr(i->uri, "%3F") != NULL;
    return true;
}

/* Loads each spelling of one name: each gives the bytes "Q" under the URI want, and the
 * caches hold that URI once (one name, one key). */
static void expect_one_name(asset_server_t *s, const char *const *spellings, size_t n,
                            const char *want) {
    for (size_t i = 0; i < n; i++) {
        asset_handle_t *h = asset_server_load(s, spellings[i], NULL);
        if (tu_wait(h) != ASSET_OK) fail_msg("%s: %s", spellings[i], asset_handle_error_message(h));
        if (strcmp(asset_handle_uri(h), want))
            fail_msg("%s is %s, want %s", spellings[i], asset_handle_uri(h), want);
        tu_expect_bytes(h, "Q", 1); /* the name's own bytes, never "P" (the name before '?') */
        asset_handle_release(h);
    }
    entries_t e = {want, 0, 0};
    asset_server_foreach_cached(s, count_entry, &e);
    assert_int_equal(e.same, 1);
    assert_int_equal(e.escaped, 0);
}

/* Forty-first review (no defect: coverage; the decision docs/sources.md states): '?'
 * starts a query in http(s) URLs only. In file://, pkg://, mem:// and a custom scheme it
 * is a character of the name, as in a bare path: "a.n?x=1" is the file, package entry or
 * key of that name, never "a.n" with a query dropped (a missing one is NOT_FOUND, not
 * "a.n"), and "%3F" spells the same name: one URI, one cache entry. A custom source
 * reads it in asset_request_path. */
static void test_a_question_mark_names_a_character_of_the_name_but_in_http(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "a.n?x=1", "Q", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "a.n", "P", 1), ASSET_OK);
    expect_one_name(s, (const char *[]){"mem://a.n?x=1", "mem://a.n%3Fx=1", "MEM://a.n%3fx=1"}, 3,
                    "mem://a.n?x=1");
    static const asset_embedded_file_t files[] = {{"a.n?x=1", "Q", 1}, {"a.n", "P", 1}};
    assert_int_equal(asset_server_mount_embedded(s, "e", files, 2), ASSET_OK);
    expect_one_name(s, (const char *[]){"pkg://e/a.n?x=1", "pkg://e/./a.n%3Fx=1"}, 2,
                    "pkg://e/a.n?x=1");
    char seen[64] = "";
    asset_source_t echo = {ASSET_SOURCE_ABI, "echo", 0, echo_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &echo, seen), ASSET_OK);
    expect_one_name(s, (const char *[]){"echo://a.n?x=1", "echo://a.n%3Fx=1"}, 2, "echo://a.n?x=1");
    assert_string_equal(seen, "a.n?x=1");
    char *dir = tu_mkdtemp();
    if (tu_os_any_file_name()) { /* Windows refuses a '?' in a file name */
        free(tu_write_file(dir, "a.n?x=1", "Q", 1));
        free(tu_write_file(dir, "a.n", "P", 1));
        char *bare = tu_path(dir, "a.n?x=1"), *uri = tu_file_uri(bare);
        size_t ul = strlen(uri);
        char *escaped = malloc(ul + 3);
        snprintf(escaped, ul + 3, "%.*s%%3Fx=1", (int)(ul - 4), uri); /* "...a.n%3Fx=1" */
        expect_one_name(s, (const char *[]){uri, escaped, bare}, 3, uri);
        assert_int_equal(asset_server_mount(s, "d", dir), ASSET_OK);
        expect_one_name(s, (const char *[]){"pkg://d/a.n?x=1", "pkg://d/a.n%3Fx=1"}, 2,
                        "pkg://d/a.n?x=1");
        free(escaped);
        free(uri);
        free(bare);
    }
    /* no name "a.n?v=2" anywhere: NOT_FOUND, not the bytes of "a.n" */
    char *b = tu_path(dir, "a.n?v=2"), *missing = tu_file_uri(b);
    const char *none[] = {"mem://a.n?v=2", "pkg://e/a.n?v=2", "echo://a.n?v=2", missing};
    for (int i = 0; i < 4; i++) {
        asset_handle_t *h = asset_server_load(s, none[i], NULL);
        asset_status_t st = tu_wait(h);
        /* Windows: a name it cannot have, FORBIDDEN */
        if (st != ASSET_E_NOT_FOUND && !(i == 3 && st == ASSET_E_FORBIDDEN))
            fail_msg("%s: %s", none[i], asset_handle_error_message(h));
        asset_handle_release(h);
    }
    /* an http(s) URL's query is no part of its path: "%3F" is another resource */
    check_ok("http://h/a.n?x=1", BASE, NULL, "http", "http://h/a.n?x=1", "h/a.n?x=1");
    check_ok("http://h/a.n%3fx=1", BASE, NULL, "http", "http://h/a.n%3Fx=1", "h/a.n%3Fx=1");
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(missing);
    free(b);
    free(dir);
}

static void test_bad_uri_message_says_why(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset_handle_t *h = asset_server_load(s, "file:///x/%2e%2e/%2e%2e/%2e%2e/etc/passwd", NULL);
    asset_handle_t *g = asset_server_load(s, "nosuch://thing", NULL);
    assert_int_equal(tu_wait(h), ASSET_E_FORBIDDEN);
    assert_int_equal(tu_wait(g), ASSET_E_NO_SOURCE);
    assert_non_null(strstr(asset_handle_error_message(h), "forbidden"));
    assert_non_null(strstr(asset_handle_error_message(h), "%2e%2e"));
    assert_non_null(strstr(asset_handle_error_message(g), "nosuch://thing"));
    assert_non_null(strstr(asset_handle_error_message(g), "nosuch"));
    asset_handle_release(h);
    asset_handle_release(g);
    asset_server_destroy(s);
}

static void test_file_root_escape_through_api_is_forbidden(void **state) {
    (void)state;
    char *root = tu_mkdtemp();
    asset_server_config_t cfg = {0};
    cfg.file_root = root;
    asset_server_t *s = asset_server_create(&cfg);
    asset_handle_t *a = asset_server_load(s, "../outside.txt", NULL);
    asset_handle_t *b = asset_server_load(s, "file:///etc/hostname", NULL);
    assert_int_equal(tu_wait(a), ASSET_E_FORBIDDEN);
    assert_int_equal(tu_wait(b), ASSET_E_FORBIDDEN);
    assert_non_null(strstr(asset_handle_error_message(a), "../outside.txt"));
    assert_non_null(strstr(asset_handle_error_message(b), "file:///etc/hostname"));
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.source_reads, 0); /* refused before any I/O */
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    tu_rmrf(root);
    free(root);
}

/* asset__strncasecmp and asset__strcasecmp (URI schemes, HTTP header names): every pair
 * of bytes orders as their ASCII-lowered values do (only 'A'..'Z' fold: '@' is not '`',
 * '[' not '{', a byte past 0x7f only itself), a NUL ends the compare, n bounds it. */
static void test_ascii_case_compare_folds_ascii_letters_only(void **state) {
    (void)state;
    for (int i = 0; i < 256; i++)
        for (int j = 0; j < 256; j++) {
            char a[3] = {(char)i, 'x', 0}, b[3] = {(char)j, 'y', 0};
            int want = asset__ascii_lower(i) - asset__ascii_lower(j);
            int got = asset__strncasecmp(a, b, 1);
            if ((want > 0) != (got > 0) || (want < 0) != (got < 0))
                fail_msg("0x%02x against 0x%02x: %d, expected the sign of %d", i, j, got, want);
            if (want == 0 && i && asset__strncasecmp(a, b, 2) >= 0) fail_msg("0x%02x: n", i);
        }
    assert_int_equal(asset__strncasecmp("Content-Length: 5", "content-length", 14), 0);
    assert_true(asset__strncasecmp("http", "https", 5) < 0); /* the NUL sorts first */
    assert_true(asset__strncasecmp("HTTPS", "http", 5) > 0);
    assert_int_equal(asset__strncasecmp("ab\0x", "AB\0y", 5), 0); /* stops at the NUL */
    assert_int_equal(asset__strncasecmp("abc", "xyz", 0), 0);
    assert_int_equal(asset__strcasecmp("Last-Modified", "LAST-MODIFIED"), 0);
    assert_true(asset__strcasecmp("etag", "ETags") < 0);
    assert_true(asset__strcasecmp("\xc9", "\xe9") < 0); /* not Latin-1's case */
}

/* asset__strchrnul (the fast path's one pass over a URI for its length and a label):
 * the first c, else the NUL, on the C library's strchrnul or the build's fallback. */
static void test_strchrnul_finds_the_first_byte_or_the_end(void **state) {
    (void)state;
    const char *u = "pkg://p/a.gltf#Mesh0#x";
    assert_ptr_equal(asset__strchrnul(u, '#'), u + 14); /* the first of two */
    const char *k = "pkg://p/a.gltf";
    assert_ptr_equal(asset__strchrnul(k, '#'), k + strlen(k)); /* none: the NUL */
    assert_int_equal(*asset__strchrnul(k, '#'), 0);
    const char *e = "";
    assert_ptr_equal(asset__strchrnul(e, '#'), e);
    const char *h = "#a";
    assert_ptr_equal(asset__strchrnul(h, '#'), h);
    /* every length past a word or two, the byte at every place */
    char buf[80];
    for (size_t n = 0; n < sizeof buf - 1; n++) {
        memset(buf, 'a', n);
        buf[n] = 0;
        assert_ptr_equal(asset__strchrnul(buf, '#'), buf + n);
        for (size_t i = 0; i < n; i++) {
            buf[i] = '#';
            assert_ptr_equal(asset__strchrnul(buf, '#'), buf + i);
            buf[i] = 'a';
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_collapses_slashes_dots_and_dotdots),
        cmocka_unit_test(test_normalize_refuses_to_climb_above_start),
        cmocka_unit_test(test_scheme_is_lowercased),
        cmocka_unit_test(test_ascii_case_compare_folds_ascii_letters_only),
        cmocka_unit_test(test_strchrnul_finds_the_first_byte_or_the_end),
        cmocka_unit_test(test_scheme_too_long_is_invalid),
        cmocka_unit_test(test_bare_relative_path_becomes_file_uri_under_base),
        cmocka_unit_test(test_bare_absolute_path_becomes_file_uri),
        cmocka_unit_test(test_file_localhost_authority_is_dropped),
        cmocka_unit_test(test_file_localhost_alone_is_an_empty_path),
        cmocka_unit_test(test_file_uri_with_a_remote_host_is_invalid),
        cmocka_unit_test(test_file_percent_decoding),
        cmocka_unit_test(test_normalised_uri_round_trips),
        cmocka_unit_test(test_plain_dotdot_climbs_within_the_path),
        cmocka_unit_test(test_dotdot_above_filesystem_root_is_forbidden),
        cmocka_unit_test(test_a_refused_name_is_the_reason_before_a_climb),
        cmocka_unit_test(test_percent_encoded_dotdot_above_root_is_forbidden),
        cmocka_unit_test(test_file_root_relative_paths_resolve_under_root),
        cmocka_unit_test(test_file_root_absolute_path_outside_is_forbidden),
        cmocka_unit_test(test_file_root_relative_climbing_out_is_forbidden),
        cmocka_unit_test(test_file_root_percent_encoded_escape_is_forbidden),
        cmocka_unit_test(test_nul_escape_is_invalid),
        cmocka_unit_test(test_backslash_is_forbidden),
        cmocka_unit_test(test_malformed_percent_escapes_are_invalid),
        cmocka_unit_test(test_empty_uri_and_empty_paths_are_invalid),
        cmocka_unit_test(test_too_long_uri_is_invalid),
        cmocka_unit_test(test_a_label_counts_in_the_length_of_a_uri),
        cmocka_unit_test(test_http_url_whose_normal_form_is_too_long_is_invalid),
        cmocka_unit_test(test_long_uris_and_base_dirs_normalise_as_short_ones),
        cmocka_unit_test(test_pkg_names_and_paths),
        cmocka_unit_test(test_pkg_bad_names_are_rejected),
        cmocka_unit_test(test_pkg_dotdot_is_forbidden),
        cmocka_unit_test(test_http_host_is_lowercased_path_kept),
        cmocka_unit_test(test_http_percent_escapes_are_normalised),
        cmocka_unit_test(test_http_empty_path_and_default_port_are_normalised),
        cmocka_unit_test(test_http_spellings_of_one_url_coalesce),
        cmocka_unit_test(test_http_dot_segments_are_removed_as_libcurl_does),
        cmocka_unit_test_teardown(test_uri_rules_ignore_the_c_locale, locale_teardown),
        cmocka_unit_test(test_http_fragment_is_dropped),
        cmocka_unit_test(test_http_malformed_is_invalid),
        cmocka_unit_test(test_mem_keys_are_decoded_and_kept_verbatim),
        cmocka_unit_test(test_a_key_said_normal_parses_to_itself),
        cmocka_unit_test(test_resolve_against_file_base),
        cmocka_unit_test(test_resolve_keeps_a_file_uris_drive),
        cmocka_unit_test(test_resolve_against_pkg_base),
        cmocka_unit_test(test_resolve_climbing_out_of_pkg_stays_forbidden),
        cmocka_unit_test(test_resolve_against_http_base),
        cmocka_unit_test(test_resolve_leaves_the_label_and_the_query_alone),
        cmocka_unit_test(test_resolve_a_reference_without_a_path_is_the_base_itself),
        cmocka_unit_test(test_resolve_http_paths_as_rfc_3986_does),
        cmocka_unit_test(test_resolve_keeps_the_empty_segments_of_a_key),
        cmocka_unit_test(test_resolve_against_mem_base),
        cmocka_unit_test(test_resolve_absolute_ref_stands_alone),
        cmocka_unit_test(test_bad_uri_gives_failed_handle_at_next_flush),
        cmocka_unit_test(test_a_question_mark_names_a_character_of_the_name_but_in_http),
        cmocka_unit_test(test_bad_uri_message_says_why),
        cmocka_unit_test(test_file_root_escape_through_api_is_forbidden),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
