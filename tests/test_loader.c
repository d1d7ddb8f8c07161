/* test_loader.c - loader selection (forced by name, user loaders in registration
 * order, json, bytes), claims vs suffixes, registration checks, per-loader cache
 * budgets, the json loader's error messages, and the parse API's ownership rules. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "test_util.h"
#include "tu_os.h"
#include "tu_request.h"

/* ---- a loader that says who it is ---- */

typedef struct named {
    const char *name;
    const char *claim; /* claims() says yes when the URI contains this */
    int parses, frees, claims_calls;
    char last_claim_uri[256];
} named_t;

static asset_status_t named_parse(void *ctx, asset_parse_t *p) {
    named_t *n = ctx;
    __atomic_fetch_add(&n->parses, 1, __ATOMIC_SEQ_CST);
    char *v = asset_alloc(strlen(n->name) + 1);
    if (!v) return ASSET_E_NO_MEMORY;
    strcpy(v, n->name);
    asset_parse_set_value(p, v, strlen(v) + 1);
    return ASSET_OK;
}

static void named_free(void *ctx, void *value) {
    named_t *n = ctx;
    __atomic_fetch_add(&n->frees, 1, __ATOMIC_SEQ_CST);
    asset_free(value);
}

static bool named_claims(void *ctx, const char *uri) {
    named_t *n = ctx;
    n->claims_calls++; /* main thread: the thread that calls load */
    snprintf(n->last_claim_uri, sizeof n->last_claim_uri, "%s", uri);
    return strstr(uri, n->claim) != NULL;
}

static int reg_named(asset_server_t *s, named_t *n, const char *const *suffixes, bool use_claims,
                     size_t budget) {
    asset_loader_t ld = {ASSET_LOADER_ABI,
                         n->name,
                         suffixes,
                         use_claims ? named_claims : NULL,
                         named_parse,
                         named_free,
                         NULL,
                         0,
                         NULL};
    return asset_server_register_loader(s, &ld, n, budget);
}

static const char *const dat_suffix[] = {".dat", NULL};
static const char *const txt_mixed_case[] = {".TxT", ".text", NULL};
static const char *const json_suffix[] = {".json", NULL};

/* Loads uri and returns the name of the loader whose value the handle got ("" when it
 * failed). The value's loader slot is internal: fine for a test. */
static const char *loaded_by(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                             asset_handle_t **out) {
    asset_handle_t *h = asset_server_load(s, uri, o);
    assert_non_null(h);
    tu_wait(h);
    const char *name = asset_handle_state(h) == ASSET_STATE_LOADED ? h->value->loader->name : "";
    if (out)
        *out = h;
    else
        asset_handle_release(h);
    return name;
}

static asset_server_t *server_with_mem(void) {
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    const char *keys[] = {"a.json", "a.dat",          "a.bin", "A.TXT",
                          "b.Text", "special/c.json", "d.JSON"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_int_equal(asset_mem_put(s, keys[i], "[1, 2]", 6), ASSET_OK);
    return s;
}

static void test_builtin_selection_json_by_suffix_else_bytes(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    asset_handle_t *h;
    assert_string_equal(loaded_by(s, "mem://a.json", NULL, &h), "json");
    const cJSON *j = asset_handle_value(h);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 2);
    asset_handle_release(h);
    assert_string_equal(loaded_by(s, "mem://d.JSON", NULL, NULL), "json"); /* case-insensitive */
    assert_string_equal(loaded_by(s, "mem://a.bin", NULL, &h), "bytes");
    const asset_bytes_t *b = asset_handle_value(h);
    assert_int_equal(b->size, 6);
    assert_memory_equal(b->data, "[1, 2]", 7); /* and NUL-terminated */
    asset_handle_release(h);
    assert_string_equal(loaded_by(s, "mem://a.dat", NULL, NULL), "bytes");
    asset_server_destroy(s);
}

static void test_forced_loader_by_name_wins_over_every_claim(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    named_t dat = {.name = "dat"};
    assert_int_equal(reg_named(s, &dat, dat_suffix, false, 0), ASSET_OK);
    asset_load_options_t o = {.loader = "bytes"};
    assert_string_equal(loaded_by(s, "mem://a.json", &o, NULL), "bytes");
    assert_string_equal(loaded_by(s, "mem://a.dat", &o, NULL), "bytes");
    o.loader = "dat";
    assert_string_equal(loaded_by(s, "mem://a.json", &o, NULL), "dat");
    o.loader = "json";
    assert_string_equal(loaded_by(s, "mem://a.dat", &o, NULL), "json");
    assert_int_equal(dat.parses, 1);
    asset_server_destroy(s);
    assert_int_equal(dat.frees, 1);
}

static void test_user_loaders_tried_in_registration_order_before_builtins(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    named_t first = {.name = "first"}, second = {.name = "second"}, js = {.name = "myjson"};
    assert_int_equal(reg_named(s, &first, dat_suffix, false, 0), ASSET_OK);
    assert_int_equal(reg_named(s, &second, dat_suffix, false, 0), ASSET_OK);
    assert_int_equal(reg_named(s, &js, json_suffix, false, 0), ASSET_OK);
    assert_string_equal(loaded_by(s, "mem://a.dat", NULL, NULL), "first");
    assert_string_equal(loaded_by(s, "mem://a.json", NULL, NULL), "myjson"); /* before json */
    assert_string_equal(loaded_by(s, "mem://a.bin", NULL, NULL), "bytes");
    assert_int_equal(second.parses, 0);
    /* the forced name still reaches the shadowed ones */
    asset_load_options_t o = {.loader = "second"};
    assert_string_equal(loaded_by(s, "mem://a.dat", &o, NULL), "second");
    o.loader = "json";
    assert_string_equal(loaded_by(s, "mem://a.json", &o, NULL), "json");
    asset_server_destroy(s);
}

static void test_claims_callback_replaces_suffix_match(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    /* suffixes given too, but claims() decides alone */
    named_t cl = {.name = "special", .claim = "/special/"};
    assert_int_equal(reg_named(s, &cl, json_suffix, true, 0), ASSET_OK);
    assert_string_equal(loaded_by(s, "mem://special/c.json", NULL, NULL), "special");
    assert_string_equal(cl.last_claim_uri, "mem://special/c.json"); /* the normalised URI */
    assert_string_equal(loaded_by(s, "mem://a.json", NULL, NULL), "json");
    assert_true(cl.claims_calls >= 2);
    /* a forced loader does not ask claims() */
    int calls = cl.claims_calls;
    asset_load_options_t o = {.loader = "bytes"};
    assert_string_equal(loaded_by(s, "mem://special/c.json", &o, NULL), "bytes");
    assert_int_equal(cl.claims_calls, calls);
    asset_server_destroy(s);
}

static void test_suffix_match_is_case_insensitive(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    named_t txt = {.name = "txt"};
    assert_int_equal(reg_named(s, &txt, txt_mixed_case, false, 0), ASSET_OK);
    assert_string_equal(loaded_by(s, "mem://A.TXT", NULL, NULL), "txt");
    assert_string_equal(loaded_by(s, "mem://b.Text", NULL, NULL), "txt");
    assert_string_equal(loaded_by(s, "mem://a.bin", NULL, NULL), "bytes");
    asset_server_destroy(s);
}

/* In a file name, a package path or a mem:// key '?' is a character of the name, not
 * a query, and the suffix is the name's: "a?.json" was matched as "a" and given to
 * bytes, a value the host then read as a cJSON tree. */
static void test_a_question_mark_in_a_file_pkg_or_mem_name_is_part_of_it(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    assert_int_equal(asset_mem_put(s, "q?.json", "[1, 2]", 6), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "r.json?.bin", "[1, 2]", 6), ASSET_OK);
    assert_string_equal(loaded_by(s, "mem://q?.json", NULL, NULL), "json");
    assert_string_equal(loaded_by(s, "mem://q%3F.json", NULL, NULL), "json");
    assert_string_equal(loaded_by(s, "mem://r.json?.bin", NULL, NULL), "bytes");
    char *dir = tu_mkdtemp(), *path = NULL;
    if (tu_os_any_file_name()) { /* Windows has no file named "what?.json" */
        path = tu_write_file(dir, "what?.json", "{\"a\": 1}", 8);
        asset_handle_t *h;
        assert_string_equal(loaded_by(s, path, NULL, &h), "json");
        assert_true(cJSON_IsObject((const cJSON *)asset_handle_value(h)));
        asset_handle_release(h);
    }
    /* a query is not part of the name (http(s), a custom scheme's) */
    assert_string_equal(asset__loader_select(s, "http://127.0.0.1/a.json?v=2")->name, "json");
    assert_string_equal(asset__loader_select(s, "https://127.0.0.1/a.bin?x=.json")->name, "bytes");
    assert_string_equal(asset__loader_select(s, "cdn://a.json?v=2")->name, "json");
    assert_string_equal(asset__loader_select(s, "file:///a.bin?x=.json")->name, "json");
    assert_string_equal(asset__loader_select(s, "pkg://g/a?.json")->name, "json");
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

static void test_unknown_loader_name_fails_with_no_loader(void **state) {
    (void)state;
    asset_server_t *s = server_with_mem();
    asset_load_options_t o = {.loader = "png"};
    asset_handle_t *h = asset_server_load(s, "mem://a.bin", &o);
    assert_int_equal(tu_wait(h), ASSET_E_NO_LOADER);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    assert_non_null(strstr(asset_handle_error_message(h), "mem://a.bin"));
    assert_non_null(strstr(asset_handle_error_message(h), "'png'"));
    asset_handle_release(h);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.source_reads, 0); /* decided without any I/O */
    asset_server_destroy(s);
}

static asset_status_t nop_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    return asset_parse_fail(p, ASSET_E_PARSE, "never called");
}

static bool count_loader(const asset_loader_info_t *i, void *user) {
    snprintf(user, 16, "%s", i->name); /* the last one's name (the walk's copy goes) */
    return true;
}

/* Thirty-eighth review (coverage): 32 loaders at most, the two built-ins counted (the
 * header's "more than 32 loaders"): the 31st user loader is refused with
 * ASSET_E_NO_MEMORY, and the built-ins stay last (bytes the fallback). */
static void test_register_refuses_a_loader_past_32(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset_loader_t l = {ASSET_LOADER_ABI, NULL, NULL, NULL, nop_parse, NULL, NULL, 0, NULL};
    char name[16];
    int ok = 0, rc = ASSET_OK;
    for (int i = 0; i < 40 && rc == ASSET_OK; i++) {
        snprintf(name, sizeof name, "l%d", i);
        l.name = name;
        rc = asset_server_register_loader(s, &l, NULL, 0);
        if (rc == ASSET_OK) ok++;
    }
    assert_int_equal(rc, ASSET_E_NO_MEMORY);
    assert_int_equal(ok, 30);
    char last[16] = "";
    assert_int_equal(asset_server_foreach_loader(s, count_loader, last), 32);
    assert_string_equal(last, "bytes");
    asset_server_destroy(s);
}

static void test_register_refuses_bad_vtables_and_duplicate_names(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset_loader_t ok = {ASSET_LOADER_ABI, "mine", NULL, NULL, nop_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &ok, NULL, 0), ASSET_OK);
    assert_int_equal(asset_server_register_loader(s, &ok, NULL, 0), ASSET_E_INVALID);
    asset_loader_t l = ok;
    l.name = "json"; /* the built-ins' names are taken too */
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_E_INVALID);
    l.name = "bytes";
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_E_INVALID);
    l = ok;
    l.name = "abi0";
    l.abi = 0;
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_E_INVALID);
    l = ok;
    l.name = "noparse";
    l.parse = NULL;
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_E_INVALID);
    l = ok;
    l.name = NULL;
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_E_INVALID);
    l.name = "";
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_E_INVALID);
    assert_int_equal(asset_server_register_loader(s, NULL, NULL, 0), ASSET_E_INVALID);
    assert_int_equal(asset_server_register_loader(NULL, &ok, NULL, 0), ASSET_E_INVALID);
    /* a refused registration left nothing behind: the names stay free */
    l = ok;
    l.name = "abi0";
    assert_int_equal(asset_server_register_loader(s, &l, NULL, 0), ASSET_OK);
    asset_server_destroy(s);
}

static void test_each_loader_has_its_own_cache_budget(void **state) {
    (void)state;
    /* one worker: each job has fully let go of its value before the next one runs */
    asset_server_config_t cfg = {.cache_budget = 1000, .max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    tu_counter_t small = {0}, big = {0};
    assert_int_equal(tu_counting_loader_register(s, "small", ".sml", &small, 100), ASSET_OK);
    assert_int_equal(tu_counting_loader_register(s, "big", ".big", &big, 0), ASSET_OK);
    char blob[60];
    memset(blob, 'x', sizeof blob);
    const char *keys[] = {"1.sml", "2.sml", "1.big", "2.big"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(asset_mem_put(s, keys[i], blob, sizeof blob), ASSET_OK);
        char uri[32];
        snprintf(uri, sizeof uri, "mem://%s", keys[i]);
        asset_handle_t *h = asset_server_load(s, uri, NULL);
        assert_int_equal(tu_wait(h), ASSET_OK);
        asset_handle_release(h);
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.cache_evictions, 1); /* 120 > 100 in "small"; "big" has 1000 */
    assert_int_equal(st.bytes_cached, 60 + 120);
    assert_int_equal(tu_counter_frees(&small), 1);
    assert_int_equal(tu_counter_frees(&big), 0);
    /* the server's budget bounds the built-ins: 2000 bytes is not cached by "bytes" */
    char *large = calloc(1, 2000);
    assert_int_equal(asset_mem_put(s, "large.bin", large, 2000), ASSET_OK);
    free(large);
    for (int i = 0; i < 2; i++) {
        asset_handle_t *h = asset_server_load(s, "mem://large.bin", NULL);
        assert_int_equal(tu_wait(h), ASSET_OK);
        asset_handle_release(h);
    }
    asset_server_stats(s, &st);
    assert_int_equal(st.bytes_cached, 60 + 120);
    assert_int_equal(st.parses, 4 + 2);
    asset_server_destroy(s);
}

/* ---- json errors ---- */

static asset_handle_t *load_text(asset_server_t *s, const char *key, const char *text, size_t n) {
    assert_int_equal(asset_mem_put(s, key, text, n), ASSET_OK);
    char uri[256];
    snprintf(uri, sizeof uri, "mem://%s", key);
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    tu_wait(h);
    return h;
}

static void expect_parse_error(asset_server_t *s, const char *key, const char *text, size_t n,
                               const char *needle) {
    asset_handle_t *h = load_text(s, key, text, n);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    assert_int_equal(asset_handle_error(h), ASSET_E_PARSE);
    const char *msg = asset_handle_error_message(h);
    if (!strstr(msg, needle)) fail_msg("'%s' does not contain '%s'", msg, needle);
    char uri[256];
    snprintf(uri, sizeof uri, "mem://%s", key);
    assert_non_null(strstr(msg, uri));
    assert_non_null(strstr(msg, "json loader"));
    asset_handle_release(h);
}

static void test_json_error_reports_line_and_column(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    const char *doc = "{\n  \"a\": 1,\n  \"b\": ]\n}\n";
    expect_parse_error(s, "bad.json", doc, strlen(doc), "line 3, column 8");
    const char *one = "[1, 2, oops]";
    expect_parse_error(s, "one.json", one, strlen(one), "line 1, column 8");
    expect_parse_error(s, "near.json", one, strlen(one), "near 'oops]'");
    const char *cut = "{\"a\": [1, 2";
    expect_parse_error(s, "cut.json", cut, strlen(cut), "unexpected end of document");
    expect_parse_error(s, "empty.json", "", 0, "empty document");
    expect_parse_error(s, "blank.json", " \n\t ", 4, "empty document");
    /* a CR is white space too, and a byte order mark alone is no document either: both
     * "empty document", not "unexpected end" or "near '???'" (mutation survivors) */
    expect_parse_error(s, "crlf.json", "\r\n", 2, "empty document");
    expect_parse_error(s, "bom.json", "\xEF\xBB\xBF", 3, "empty document");
    /* the excerpt after "near" is 24 characters at most */
    const char *longer = "[1 abcdefghijklmnopqrstuvwxyz]";
    expect_parse_error(s, "excerpt.json", longer, strlen(longer),
                       "column 4, near 'abcdefghijklmnopqrstuvwx'");
    asset_server_destroy(s);
}

/* A key that is not a string is placed at its first byte: cJSON's own position is one
 * past it (column 3 for "{x}"), and a trailing comma in an object was "unexpected end
 * of document" (json.c, error_at). */
static void test_json_bad_key_is_placed_at_its_first_byte(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    expect_parse_error(s, "x.json", "{x}", 3, "line 1, column 2, near 'x}'");
    expect_parse_error(s, "num.json", "{1:2}", 5, "line 1, column 2, near '1:2}'");
    expect_parse_error(s, "empty.json", "{,}", 3, "line 1, column 2, near ',}'");
    const char *comma = "{\n  \"a\": 1,\n}\n";
    expect_parse_error(s, "comma.json", comma, strlen(comma), "invalid JSON at line 3, column 1");
    expect_parse_error(s, "comma1.json", "{\"a\":1,}", 8, "line 1, column 8, near '}'");
    /* inside an array in an object, and after a string holding brackets and a comma */
    const char *deep = "{\"a\": [1, {\"b\": \"{,[\"}],\n 'c': 3}";
    expect_parse_error(s, "deep.json", deep, strlen(deep), "line 2, column 2, near ''c': 3}'");
    /* not a key: an array's bad value was placed right, and stays so */
    expect_parse_error(s, "arr.json", "[1,,2]", 6, "line 1, column 4, near ',2]'");
    expect_parse_error(s, "arr2.json", "{\"a\":[1,x]}", 11, "line 1, column 9, near 'x]}'");
    expect_parse_error(s, "ff.json", "{\f x}", 5, "line 1, column 4, near 'x}'");
    expect_parse_error(s, "colon.json", "{\"a\" 1}", 7, "line 1, column 6, near '1}'");
    asset_server_destroy(s);
}

static void test_json_trailing_garbage_is_rejected(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    expect_parse_error(s, "t1.json", "{} x", 4,
                       "trailing characters after the value at line 1, column 4");
    expect_parse_error(s, "t2.json", "[1]\n[2]", 7, "line 2, column 1");
    /* a NUL byte ends a C string but not the document: refused, not truncated */
    expect_parse_error(s, "t3.json", "[1]\0garbage", 11, "NUL byte at line 1, column 4");
    /* so is the escape of one: cJSON would end the string there ("x\u0000.png" is "x") */
    const char *esc = "[\"ok\", \"x\\u0000.png\"]";
    expect_parse_error(s, "t4.json", esc, strlen(esc), "\\u0000 at line 1, column 10");
    /* an escaped backslash then "u0000" is text, not a NUL */
    const char *text = "[\"a\\\\u0000\"]";
    asset_handle_t *t = load_text(s, "t5.json", text, strlen(text));
    assert_int_equal(asset_handle_error(t), ASSET_OK);
    assert_string_equal(cJSON_GetArrayItem(asset_handle_value(t), 0)->valuestring, "a\\u0000");
    asset_handle_release(t);
    /* trailing whitespace is fine, and so is a UTF-8 byte order mark */
    const char *ws = "\xEF\xBB\xBF {\"k\": true}  \r\n";
    asset_handle_t *h = load_text(s, "ws.json", ws, strlen(ws));
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(asset_handle_value(h), "k")));
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_json_deep_nesting_fails_cleanly(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    char *deep = malloc(5000);
    memset(deep, '[', 5000);
    expect_parse_error(s, "deep.json", deep, 5000, "nested deeper than");
    /* balanced but too deep too, so no truncated tree gets through */
    char *bal = malloc(10000);
    memset(bal, '[', 5000);
    memset(bal + 5000, ']', 5000);
    expect_parse_error(s, "bal.json", bal, 10000, "nested deeper than");
    /* at the limit: loads; one more level: fails there */
    memset(bal, '[', ASSET__JSON_MAX_DEPTH);
    memset(bal + ASSET__JSON_MAX_DEPTH, ']', ASSET__JSON_MAX_DEPTH);
    char want[64];
    snprintf(want, sizeof want, "nested deeper than %d levels at line 1, column %d",
             ASSET__JSON_MAX_DEPTH, ASSET__JSON_MAX_DEPTH + 1);
    char *over = malloc(2 * ASSET__JSON_MAX_DEPTH + 2);
    memset(over, '[', ASSET__JSON_MAX_DEPTH + 1);
    memset(over + ASSET__JSON_MAX_DEPTH + 1, ']', ASSET__JSON_MAX_DEPTH + 1);
    expect_parse_error(s, "over.json", over, 2 * ASSET__JSON_MAX_DEPTH + 2, want);
    free(over);
    /* brackets inside strings are no nesting */
    char *strs = malloc(4000);
    memset(strs, '[', 4000);
    strs[0] = '"';
    strs[3999] = '"';
    asset_handle_t *sh = load_text(s, "strs.json", strs, 4000);
    assert_int_equal(asset_handle_error(sh), ASSET_OK);
    asset_handle_release(sh);
    /* nor after an escaped quote, which does not end its string ("\"[[[...": a string) */
    memcpy(strs, "[\"\\\"", 4);
    memcpy(strs + 3996, "\"]", 2);
    sh = load_text(s, "esc.json", strs, 3998);
    if (asset_handle_error(sh) != ASSET_OK) fail_msg("%s", asset_handle_error_message(sh));
    asset_handle_release(sh);
    free(strs);
    asset_handle_t *h = load_text(s, "ok.json", bal, 2 * ASSET__JSON_MAX_DEPTH);
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    assert_true(cJSON_IsArray(asset_handle_value(h)));
    asset_handle_release(h);
    free(deep);
    free(bal);
    asset_server_destroy(s);
}

/* Twenty-third review: the nesting limit was the build's constant 256; a program that
 * loads deeper generated data could not raise it, one whose parsing threads have small
 * stacks could not lower it. config.json_max_depth sets it (0: 256), up to cJSON's own
 * limit (1000); a value above that fails the create, and the log says why. */
typedef struct depth_log {
    int errors;
    char last[512];
} depth_log_t;

static void depth_log_cb(int level, const char *msg, void *user) {
    depth_log_t *l = user;
    if (level != ASSET_LOG_ERROR) return;
    l->errors++;
    snprintf(l->last, sizeof l->last, "%s", msg);
}

static char *brackets(size_t d, size_t *n) {
    char *doc = malloc(2 * d + 1);
    assert_non_null(doc);
    memset(doc, '[', d);
    memset(doc + d, ']', d);
    doc[2 * d] = 0;
    *n = 2 * d;
    return doc;
}

static void test_json_max_depth_is_a_config_field(void **state) {
    (void)state;
    const unsigned deep = 600; /* above the default, below cJSON's 1000 */
    size_t n;
    char *doc = brackets(deep, &n);
    char want[96];
    /* at the limit it loads; one level under it, it fails where the limit is passed */
    asset_server_config_t cfg = {.json_max_depth = deep};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *h = load_text(s, "d.json", doc, n);
    if (asset_handle_error(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    asset_handle_release(h);
    asset_server_destroy(s);
    cfg.json_max_depth = deep - 1;
    s = asset_server_create(&cfg);
    assert_non_null(s);
    snprintf(want, sizeof want, "nested deeper than %u levels at line 1, column %u", deep - 1,
             deep);
    expect_parse_error(s, "d.json", doc, n, want);
    /* a small limit, for threads with little stack */
    cfg.json_max_depth = 1;
    asset_server_destroy(s);
    s = asset_server_create(&cfg);
    assert_non_null(s);
    h = load_text(s, "one.json", "[1]", 3);
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    asset_handle_release(h);
    expect_parse_error(s, "two.json", "[[1]]", 5,
                       "nested deeper than 1 levels at line 1, column 2");
    asset_server_destroy(s);
    free(doc);
    /* 0 stays 256 */
    cfg.json_max_depth = 0;
    s = asset_server_create(&cfg);
    doc = brackets(257, &n);
    expect_parse_error(s, "d.json", doc, n, "nested deeper than 256 levels at line 1, column 257");
    free(doc);
    doc = brackets(256, &n);
    h = load_text(s, "e.json", doc, n);
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    asset_handle_release(h);
    free(doc);
    asset_server_destroy(s);
    /* cJSON's own limit is the most: it is taken; above it, the create fails, saying why */
    depth_log_t log = {0};
    cfg = (asset_server_config_t){.json_max_depth = ASSET__JSON_DEPTH_CEILING};
    s = asset_server_create(&cfg);
    assert_non_null(s);
    doc = brackets(ASSET__JSON_DEPTH_CEILING, &n);
    h = load_text(s, "max.json", doc, n);
    if (asset_handle_error(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    asset_handle_release(h);
    free(doc);
    asset_server_destroy(s);
    const unsigned bad[] = {ASSET__JSON_DEPTH_CEILING + 1, UINT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg = (asset_server_config_t){.json_max_depth = bad[i], .log = depth_log_cb, .user = &log};
        log.errors = 0;
        assert_null(asset_server_create(&cfg));
        assert_int_equal(log.errors, 1);
        snprintf(want, sizeof want, "json_max_depth %u", bad[i]);
        if (!strstr(log.last, "asset_server_create") || !strstr(log.last, want))
            fail_msg("'%s' lacks '%s'", log.last, want);
    }
}

/* The deepest document the loader takes (ASSET__JSON_MAX_DEPTH levels, objects and arrays)
 * loads, and its value is freed, on whatever thread parses: the parse, the cost walk
 * and the free recurse once per level, on a worker's stack (or, single-threaded on the
 * web, the flush's). */
static void test_json_deepest_document_loads_on_any_stack(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    size_t d = ASSET__JSON_MAX_DEPTH, n = 0;
    char *doc = malloc(d * 7 + 2);
    assert_non_null(doc);
    for (size_t i = 0; i < d; i++) {
        memcpy(doc + n, i % 2 ? "[" : "{\"a\":", i % 2 ? 1 : 5);
        n += i % 2 ? 1 : 5;
    }
    doc[n++] = '1';
    for (size_t i = d; i-- > 0;) doc[n++] = i % 2 ? ']' : '}';
    asset_handle_t *h = load_text(s, "deepest.json", doc, n);
    if (asset_handle_error(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    assert_true(cJSON_IsObject(asset_handle_value(h)));
    asset_handle_release(h);
    asset_server_clear_caches(s);
    asset_server_flush(s);
    free(doc);
    asset_server_destroy(s);
}

/* Twenty-second review: cJSON parses by recursive descent, about 100 bytes of native
 * stack per level, so its own limit (1000 levels) needed about 100 KiB: a thread with a
 * small stack (64 KiB: a user's thread, a web worker) that ran a parse (a wait runs a
 * queued local load itself) overflowed it on a document cJSON accepts (SIGSEGV). The
 * loader refuses nesting deeper than ASSET__JSON_MAX_DEPTH before cJSON runs: on a
 * 64 KiB thread the deepest document it takes loads, and a deeper one fails cleanly. */
#if !defined(__EMSCRIPTEN__)
typedef struct small_stack_run {
    asset_server_t *s;
    const char *key;
    const char *doc;
    size_t n;
    asset_status_t st;
    char msg[256];
} small_stack_run_t;

static void small_stack_load(void *arg) {
    small_stack_run_t *r = arg;
    asset_server_flush(r->s); /* the flush thread now: its wait delivers, and frees */
    asset_mem_put(r->s, r->key, r->doc, r->n);
    char uri[64];
    snprintf(uri, sizeof uri, "mem://%s", r->key);
    asset_handle_t *h = asset_server_load(r->s, uri, NULL);
    r->st = asset_handle_wait(h, 60000); /* the only worker is held: this thread parses */
    snprintf(r->msg, sizeof r->msg, "%s", asset_handle_error_message(h));
    asset_handle_release(h);
    asset_server_clear_caches(r->s);
    asset_server_flush(r->s); /* the value freed here */
}

/* A document of depth d, objects and arrays alternating, as cJSON's deepest; free it. */
static char *nested_doc(size_t d, size_t *n) {
    char *doc = malloc(d * 7 + 2);
    assert_non_null(doc);
    *n = 0;
    for (size_t i = 0; i < d; i++) {
        memcpy(doc + *n, i % 2 ? "[" : "{\"a\":", i % 2 ? 1 : 5);
        *n += i % 2 ? 1 : 5;
    }
    doc[(*n)++] = '1';
    for (size_t i = d; i-- > 0;) doc[(*n)++] = i % 2 ? ']' : '}';
    return doc;
}
#endif

static void test_json_nesting_fails_before_a_64_kib_stack_runs_out(void **state) {
    (void)state;
#if defined(__EMSCRIPTEN__)
    skip(); /* a worker's stack is the build's STACK_SIZE, not a thread option */
#else
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    tu_parse_gate_t g;
    tu_parse_gate_register(s, &g);
    assert_int_equal(asset_mem_put(s, "hold.gated", "x", 1), ASSET_OK);
    asset_handle_t *hold = asset_server_load(s, "mem://hold.gated", NULL);
    tu_parse_gate_wait_entered(&g, 1); /* the only worker is in it */

    size_t n_ok, n_deep;
    char *ok = nested_doc(ASSET__JSON_MAX_DEPTH, &n_ok);
    char *deep = nested_doc(1000, &n_deep); /* cJSON's own limit: it takes this one */
    small_stack_run_t runs[2] = {{s, "ok.json", ok, n_ok, ASSET_PENDING, ""},
                                 {s, "deep.json", deep, n_deep, ASSET_PENDING, ""}};
    for (int i = 0; i < 2; i++) {
        uv_thread_options_t o = {UV_THREAD_HAS_STACK_SIZE, 64 * 1024};
        uv_thread_t t;
        assert_int_equal(uv_thread_create_ex(&t, &o, small_stack_load, &runs[i]), 0);
        assert_int_equal(uv_thread_join(&t), 0);
    }
    if (runs[0].st != ASSET_OK)
        fail_msg("%d levels: %s %s", ASSET__JSON_MAX_DEPTH, asset_err_name(runs[0].st),
                 runs[0].msg);
    assert_int_equal(runs[1].st, ASSET_E_PARSE);
    char want[64];
    snprintf(want, sizeof want, "nested deeper than %d levels", ASSET__JSON_MAX_DEPTH);
    if (!strstr(runs[1].msg, want)) fail_msg("'%s' lacks '%s'", runs[1].msg, want);

    tu_parse_gate_open(&g);
    asset_server_flush(s); /* this thread flushes again */
    assert_int_equal(tu_wait(hold), ASSET_OK);
    asset_handle_release(hold);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
    free(ok);
    free(deep);
#endif
}

/* JSON numbers of 64 characters or more: cJSON 1.7.15, which the Windows and web builds
 * compile, reads a number through a 64-byte buffer and failed such a valid document
 * ("invalid JSON at line 1, column 66, near '...'"); Debian's patched cJSON reads it. */
static void test_json_numbers_longer_than_63_characters_load(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    char big[256] = "{\"n\": ", frac[256] = "[-0.", expo[256] = "[1.5e";
    for (int i = 0; i < 100; i++) strcat(big, i ? "0" : "2"); /* 2e99, 100 digits */
    strcat(big, ", \"s\": \"1111111111111111111111111111111111111111111111111111111111111111\"}");
    for (int i = 0; i < 80; i++) strcat(frac, "0"); /* -0.000...0125 = -1.25e-81 */
    strcat(frac, "125, 7]");
    for (int i = 0; i < 70; i++) strcat(expo, "0"); /* 1.5e0000...0003 */
    strcat(expo, "3]");
    asset_handle_t *h = load_text(s, "big.json", big, strlen(big));
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    const cJSON *n = cJSON_GetObjectItem(asset_handle_value(h), "n");
    assert_true(cJSON_IsNumber(n));
    assert_true(fabs(n->valuedouble / 2e99 - 1) < 1e-15); /* wine's strtod: an ulp off */
    /* a string of digits is no number: left as it is */
    assert_int_equal(strlen(cJSON_GetObjectItem(asset_handle_value(h), "s")->valuestring), 64);
    asset_handle_release(h);
    h = load_text(s, "frac.json", frac, strlen(frac));
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    assert_true(fabs(cJSON_GetArrayItem(asset_handle_value(h), 0)->valuedouble / -1.25e-81 - 1) <
                1e-15);
    assert_true(cJSON_GetArrayItem(asset_handle_value(h), 1)->valuedouble == 7);
    asset_handle_release(h);
    h = load_text(s, "expo.json", expo, strlen(expo));
    assert_int_equal(asset_handle_error(h), ASSET_OK);
    assert_true(cJSON_GetArrayItem(asset_handle_value(h), 0)->valuedouble == 1500);
    asset_handle_release(h);
    /* an error after such a number is still reported where it is, in the document */
    char bad[300], expect[64];
    snprintf(bad, sizeof bad, "%.*s,\n x]", (int)strlen(frac) - 1, frac);
    expect_parse_error(s, "bad.json", bad, strlen(bad), "at line 2, column 2, near 'x]'");
    /* and one right after it, at the byte where the shortened number ends in the copy */
    snprintf(bad, sizeof bad, "%.*sx]", (int)strlen(frac) - 4, frac);
    snprintf(expect, sizeof expect, "at line 1, column %zu, near 'x]'", strlen(frac) - 3);
    expect_parse_error(s, "next.json", bad, strlen(bad), expect);
    asset_server_destroy(s);
}

/* What cJSON lets through that JSON (RFC 8259) does not: the page said the loader is
 * strict, with no word of these (pinned: loaders-and-caches.md lists them). */
static void test_json_leniencies_of_cjson_are_the_documented_ones(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    static const struct {
        const char *key, *text;
    } lenient[] = {
        {"tab.json", "[\"a\tb\"]"}, /* a raw control character in a string */
        {"nl.json", "[\"a\nb\"]"},  /* a raw line break in a string */
        {"ctl.json", "[\"a\x01"
                     "b\"]"},                         /* any other control character too */
        {"zero.json", "[012]"},                       /* a leading zero: 12 */
        {"dot.json", "[1.]"},                         /* a point without digits: 1 */
        {"minus.json", "[-.5]"},                      /* a minus before the point: -0.5 */
        {"ff.json", "\f[1]\v"},                       /* any byte below 0x21 as white space */
        {"bom2.json", "\xEF\xBB\xBF\xEF\xBB\xBF[1]"}, /* a second byte order mark */
    };
    for (size_t i = 0; i < sizeof lenient / sizeof *lenient; i++) {
        asset_handle_t *h = load_text(s, lenient[i].key, lenient[i].text, strlen(lenient[i].text));
        if (asset_handle_error(h) != ASSET_OK)
            fail_msg("%s: %s", lenient[i].key, asset_handle_error_message(h));
        asset_handle_release(h);
    }
    asset_handle_t *h = load_text(s, "z.json", "[012]", 5);
    assert_true(cJSON_GetArrayItem(asset_handle_value(h), 0)->valuedouble == 12);
    asset_handle_release(h);
    h = load_text(s, "m.json", "[-.5]", 5);
    assert_true(cJSON_GetArrayItem(asset_handle_value(h), 0)->valuedouble == -0.5);
    asset_handle_release(h);
    /* and what it refuses, as JSON does */
    expect_parse_error(s, "plus.json", "[+1]", 4, "line 1, column 2");
    expect_parse_error(s, "half.json", "[.5]", 4, "line 1, column 2");
    expect_parse_error(s, "hex.json", "[0x1]", 5, "line 1, column 3");
    expect_parse_error(s, "sq.json", "['a']", 5, "line 1, column 2");
    expect_parse_error(s, "comma.json", "[1,]", 4, "line 1, column 4");
    expect_parse_error(s, "nan.json", "[NaN]", 5, "line 1, column 2");
    asset_server_destroy(s);
}

/* Numbers past a double's range load as infinity, those below it as 0
 * (loaders-and-caches.md says so; it said only "numbers of any length load"), on the
 * shortened path of cJSON 1.7.15 too (a number of more than 63 characters). */
static void test_json_numbers_out_of_a_doubles_range_are_infinity_or_zero(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    char text[256] = "[1e999, -1e400, 1e-999, -1";
    for (int i = 0; i < 70; i++) strcat(text, "0"); /* -1e70 ... */
    strcat(text, "e999]");                          /* ... e999: 75 characters */
    asset_handle_t *h = load_text(s, "range.json", text, strlen(text));
    if (asset_handle_error(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    const cJSON *a = asset_handle_value(h);
    assert_int_equal(cJSON_GetArraySize(a), 4);
    const cJSON *big = cJSON_GetArrayItem(a, 0), *neg = cJSON_GetArrayItem(a, 1);
    assert_true(isinf(big->valuedouble) && big->valuedouble > 0);
    assert_int_equal(big->valueint, INT_MAX);
    assert_true(isinf(neg->valuedouble) && neg->valuedouble < 0);
    assert_int_equal(neg->valueint, INT_MIN);
    assert_true(cJSON_GetArrayItem(a, 2)->valuedouble == 0);
    const cJSON *longer = cJSON_GetArrayItem(a, 3);
    assert_true(isinf(longer->valuedouble) && longer->valuedouble < 0);
    char *printed = cJSON_PrintUnformatted(a);
    assert_non_null(printed);
    assert_string_equal(printed, "[null,null,0,null]");
    cJSON_free(printed);
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* ---- failing loaders ---- */

/* ---- the request API against max_asset_size ---- */

/* A write of exactly what is left fits and one byte more is TOO_LARGE; one write larger
 * than the whole limit is TOO_LARGE too, and so is an adoption past it; an adoption that
 * fits replaces a refused write; a version fits in place up to 95 bytes. Mutation
 * survivors: each limit was tested only through sources that check sizes themselves. */
static void test_request_writes_and_adoptions_fit_max_asset_size_exactly(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset__job_t job;
    struct asset_request req;
    char uri[] = "mem://limit", path[] = "limit";
    tu_request_open(&job, &req, uri, path);
    req.server = s;
    req.max_size = 4;
    assert_int_equal(asset_request_write(&req, "12345678", 8), ASSET_E_TOO_LARGE);
    asset__request_dispose(&req);
    tu_request_open(&job, &req, uri, path);
    req.server = s;
    req.max_size = 4;
    assert_int_equal(asset_request_write(&req, "12", 2), ASSET_OK);
    assert_int_equal(asset_request_write(&req, "34", 2), ASSET_OK);
    assert_int_equal(req.size, 4);
    assert_int_equal(asset_request_write(&req, "5", 1), ASSET_E_TOO_LARGE);
    assert_int_equal(req.refused, ASSET_E_TOO_LARGE);
    assert_int_equal(asset_request_adopt(&req, (void *)"abcd", 4, NULL, NULL), ASSET_OK);
    assert_int_equal(req.refused, ASSET_OK);
    assert_int_equal(asset_request_adopt(&req, (void *)"abcde", 5, NULL, NULL), ASSET_E_TOO_LARGE);
    char version[sizeof req.version_buf + 1];
    memset(version, 'v', sizeof version);
    version[sizeof req.version_buf - 1] = 0; /* 95 bytes and the NUL: in place */
    asset_request_set_version(&req, version);
    assert_ptr_equal(req.version, req.version_buf);
    assert_string_equal(req.version, version);
    version[sizeof req.version_buf - 1] = 'v'; /* 96: its NUL would not fit */
    version[sizeof req.version_buf] = 0;
    asset_request_set_version(&req, version);
    assert_ptr_not_equal(req.version, req.version_buf);
    assert_string_equal(req.version, version);
    asset__request_dispose(&req);
    asset_server_destroy(s);
}

static void test_failing_loader_message_names_loader_and_uri(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    tu_counter_t c = {.fail_parse = 1};
    assert_int_equal(tu_counting_loader_register(s, "grumpy", ".gr", &c, 0), ASSET_OK);
    asset_handle_t *h = load_text(s, "x.gr", "abc", 3);
    assert_int_equal(asset_handle_error(h), ASSET_E_PARSE);
    const char *msg = asset_handle_error_message(h);
    assert_non_null(strstr(msg, "mem://x.gr"));
    assert_non_null(strstr(msg, "grumpy loader"));
    assert_non_null(strstr(msg, "counting loader told to fail"));
    asset_handle_release(h);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.bytes_cached, 0);
    asset_server_destroy(s);
    assert_int_equal(tu_counter_frees(&c), 0);
}

/* A source whose read delivers "abc", says so (entered), waits for release and returns
 * OK, never looking at the cancel. */
typedef struct deaf_source {
    uv_sem_t entered, release;
} deaf_source_t;

static asset_status_t deaf_read(void *ctx, asset_request_t *r) {
    deaf_source_t *d = ctx;
    asset_status_t st = asset_request_write(r, "abc", 3);
    uv_sem_post(&d->entered);
    uv_sem_wait(&d->release);
    return st;
}

/* Thirty-first review (coverage): a load cancelled while its read runs is not parsed once
 * the read returns, even a read that delivered every byte before the cancel (the loader's work, for
 * nobody: the parse count said so). */
static void test_a_load_cancelled_during_its_read_is_not_parsed(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    if (s->nworkers == 0) { /* the single-threaded web build: no worker to hold in a read */
        asset_server_destroy(s);
        skip();
    }
    deaf_source_t d;
    assert_int_equal(uv_sem_init(&d.entered, 0), 0);
    assert_int_equal(uv_sem_init(&d.release, 0), 0);
    asset_source_t src = {ASSET_SOURCE_ABI, "deaf", 0, deaf_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, &d), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "deaf://x.bin", NULL);
    uv_sem_wait(&d.entered);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    uv_sem_post(&d.release);
    asset_stats_t st;
    TU_SPIN_UNTIL((asset_server_stats(s, &st), st.loading == 0 && st.pending == 0));
    assert_int_equal(st.source_reads, 1);
    assert_int_equal(st.parses, 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    uv_sem_destroy(&d.entered);
    uv_sem_destroy(&d.release);
}

typedef struct odd {
    int frees;
    int mode; /* 0: value then failure; 1: OK without a value; 2: positive status */
} odd_t;

static asset_status_t odd_parse(void *ctx, asset_parse_t *p) {
    odd_t *o = ctx;
    if (o->mode == 1) return ASSET_OK;
    if (o->mode == 2) return ASSET_NOT_MODIFIED;
    asset_parse_set_value(p, asset_alloc(16), 16);
    return asset_parse_fail(p, ASSET_E_UNSUPPORTED, "changed my mind");
}

static void odd_free(void *ctx, void *v) {
    ((odd_t *)ctx)->frees++;
    asset_free(v);
}

static void test_misbehaving_loaders_fail_without_leaking(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    odd_t o = {0};
    static const char *const odd_suffix[] = {".odd", NULL};
    asset_loader_t ld = {ASSET_LOADER_ABI, "odd", odd_suffix, NULL, odd_parse,
                         odd_free,         NULL,  0,          NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, &o, 0), ASSET_OK);
    asset_load_options_t nc = {.no_cache = true};

    asset_handle_t *h = load_text(s, "a.odd", "x", 1);
    assert_int_equal(asset_handle_error(h), ASSET_E_UNSUPPORTED); /* the loader's status kept */
    assert_non_null(strstr(asset_handle_error_message(h), "changed my mind"));
    assert_int_equal(o.frees, 1); /* the value it set before failing */
    asset_handle_release(h);

    o.mode = 1;
    h = asset_server_load(s, "mem://a.odd", &nc);
    assert_int_equal(tu_wait(h), ASSET_E_PARSE);
    assert_non_null(strstr(asset_handle_error_message(h), "odd loader"));
    assert_non_null(strstr(asset_handle_error_message(h), "no value"));
    asset_handle_release(h);

    o.mode = 2;
    h = asset_server_load(s, "mem://a.odd", &nc);
    assert_int_equal(tu_wait(h), ASSET_E_PARSE);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(o.frees, 1);
}

/* ---- parse API ownership ---- */

typedef struct taken {
    char *buf; /* taken from the request */
    size_t n;
} taken_t;

static asset_status_t take_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    size_t n = asset_parse_size(p);
    char *buf = asset_parse_take_data(p);
    if (!buf) return ASSET_E_NO_MEMORY;
    if (buf[n] != 0) return asset_parse_fail(p, ASSET_E_PARSE, "not NUL-terminated");
    /* the size stays readable after the take, and the data with it: the taken bytes
     * (it was "" with the old size: data[size] read past the end) */
    if (asset_parse_size(p) != n) return asset_parse_fail(p, ASSET_E_PARSE, "size changed");
    const uint8_t *d = asset_parse_data(p);
    if (memcmp(d, buf, n) != 0 || d[n] != 0) {
        asset_status_t st = asset_parse_fail(
            p, ASSET_E_PARSE, "asset_parse_data after the take: '%s'", (const char *)d);
        asset_free(buf);
        return st;
    }
    /* a second take has nothing to give (it gave a 1-byte buffer for n bytes) */
    void *again = asset_parse_take_data(p);
    if (again) {
        asset_free(again);
        asset_free(buf);
        return asset_parse_fail(p, ASSET_E_PARSE, "a second take gave a buffer");
    }
    for (size_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
    taken_t *t = asset_alloc(sizeof *t);
    if (!t) {
        asset_free(buf);
        return ASSET_E_NO_MEMORY;
    }
    t->buf = buf;
    t->n = n;
    asset_parse_set_value(p, t, n + sizeof *t);
    return ASSET_OK;
}

static void take_free(void *ctx, void *v) {
    (void)ctx;
    taken_t *t = v;
    asset_free(t->buf); /* the buffer is the loader's: asset_free() it */
    asset_free(t);
}

static const char emb_text[] = "static text";
static const asset_embedded_file_t emb_files[] = {{"t.txt", emb_text, sizeof emb_text - 1}};

/* lent: every file of at least 1 byte is mapped or pointed to (map_threshold 1) */
static void take_data_from_each_source(bool lent) {
    char *dir = tu_mkdtemp();
    asset_server_config_t cfg = {.map_threshold = lent ? 1 : 0};
    asset_server_t *s = asset_server_create(&cfg);
    asset_loader_t ld = {ASSET_LOADER_ABI, "take", NULL, NULL, take_parse,
                         take_free,        NULL,   0,    NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "m.txt", "mem text", 8), ASSET_OK);
    assert_int_equal(asset_server_mount_embedded(s, "emb", emb_files, 1), ASSET_OK);
    char *path = tu_write_file(dir, "f.txt", "file text", 9);
    char *furi = tu_file_uri(path);
    assert_int_equal(asset_server_mount(s, "dir", dir), ASSET_OK);
    const char *uris[] = {"mem://m.txt", "pkg://emb/t.txt", furi, "pkg://dir/f.txt"};
    const char *want[] = {"MEM TEXT", "STATIC TEXT", "FILE TEXT", "FILE TEXT"};
    asset_load_options_t take = {.loader = "take"}, bytes = {.loader = "bytes"};
    for (int i = 0; i < 4; i++) {
        asset_handle_t *h = asset_server_load(s, uris[i], &take);
        assert_int_equal(tu_wait(h), ASSET_OK);
        const taken_t *t = asset_handle_value(h);
        assert_int_equal(t->n, strlen(want[i]));
        assert_string_equal(t->buf, want[i]);
        asset_handle_release(h);
        /* the source's own bytes (mem blob, static table, file) are untouched */
        h = asset_server_load(s, uris[i], &bytes);
        assert_int_equal(tu_wait(h), ASSET_OK);
        const asset_bytes_t *b = asset_handle_value(h);
        assert_false(isupper(b->data[1]));
        asset_handle_release(h);
    }
    assert_string_equal(emb_text, "static text");
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
    free(path);
    free(furi);
}

static void test_parse_take_data_hands_over_a_buffer_the_loader_owns(void **state) {
    (void)state;
    take_data_from_each_source(false);
    take_data_from_each_source(true);
}

static asset_status_t uri_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    char *v = asset_alloc(strlen(asset_parse_uri(p)) + 1);
    strcpy(v, asset_parse_uri(p));
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

static void test_parse_sees_the_normalised_uri(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset_loader_t ld = {ASSET_LOADER_ABI, "uri", NULL, NULL, uri_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "dir/x y", "1", 1), ASSET_OK);
    asset_load_options_t o = {.loader = "uri"};
    asset_handle_t *h = asset_server_load(s, "MEM://dir/x%20y", &o);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_string_equal(asset_handle_value(h), "mem://dir/x y");
    assert_string_equal(asset_handle_uri(h), "mem://dir/x y");
    asset_handle_release(h);
    asset_server_destroy(s); /* free_value NULL: asset_free */
}

/* ---- json: UTF-8 validation ---- */

/* Expects the document to fail as invalid UTF-8 at byte `at`, for the reason `why`. */
static void expect_bad_utf8(asset_server_t *s, const char *key, const char *text, size_t n,
                            size_t at, const char *why) {
    char needle[64];
    snprintf(needle, sizeof needle, "invalid UTF-8 at byte %zu ", at);
    expect_parse_error(s, key, text, n, needle);
    expect_parse_error(s, key, text, n, why);
}
#define BAD_UTF8(s, key, lit, at, why) expect_bad_utf8(s, key, lit, sizeof lit - 1, at, why)

static void test_json_rejects_invalid_utf8_naming_the_byte(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    /* a continuation byte with no lead, and bytes that never occur in UTF-8 */
    BAD_UTF8(s, "c1.json", "[\"a\x80\"]", 3, "continuation byte without a lead byte (0x80)");
    BAD_UTF8(s, "c2.json", "[\"\xBF\"]", 2, "without a lead byte");
    BAD_UTF8(s, "ff.json", "[\"\xFF\"]", 2, "byte never occurs in UTF-8 (0xFF)");
    BAD_UTF8(s, "fe.json", "[\"\xFE\"]", 2, "never occurs");
    /* overlong encodings of '/' (2, 3 and 4 bytes) and of U+07FF, U+FFFF in too many bytes */
    BAD_UTF8(s, "o2.json", "[\"\xC0\xAF\"]", 2, "overlong");
    BAD_UTF8(s, "o2b.json", "[\"\xC1\xBF\"]", 2, "overlong");
    BAD_UTF8(s, "o3.json", "[\"\xE0\x80\xAF\"]", 2, "overlong");
    BAD_UTF8(s, "o3b.json", "[\"\xE0\x9F\xBF\"]", 2, "overlong");
    BAD_UTF8(s, "o4.json", "[\"\xF0\x80\x80\xAF\"]", 2, "overlong");
    BAD_UTF8(s, "o4b.json", "[\"\xF0\x8F\xBF\xBF\"]", 2, "overlong");
    /* UTF-16 surrogates U+D800 and U+DFFF encoded in UTF-8 (CESU-8 style) */
    BAD_UTF8(s, "s1.json", "[\"\xED\xA0\x80\"]", 2, "surrogate");
    BAD_UTF8(s, "s2.json", "[\"\xED\xBF\xBF\"]", 2, "surrogate");
    BAD_UTF8(s, "s3.json", "[\"\xED\xA0\xBD\xED\xB8\x80\"]", 2, "surrogate");
    /* beyond U+10FFFF */
    BAD_UTF8(s, "b1.json", "[\"\xF4\x90\x80\x80\"]", 2, "above U+10FFFF");
    BAD_UTF8(s, "b2.json", "[\"\xF5\x80\x80\x80\"]", 2, "above U+10FFFF");
    BAD_UTF8(s, "b3.json", "[\"\xF7\xBF\xBF\xBF\"]", 2, "above U+10FFFF");
    /* truncated: cut by an ASCII byte, by another lead byte, by the end of the document */
    BAD_UTF8(s, "t1.json", "[\"\xE2\x82\"]", 2, "truncated");
    BAD_UTF8(s, "t2.json", "[\"\xC3\xC3\xA9\"]", 2, "truncated");
    BAD_UTF8(s, "t3.json", "[\"\xF0\x9F\x98", 2, "truncated");
    BAD_UTF8(s, "t4.json", "[1] \xE2", 4, "truncated");
    /* after valid multi-byte characters the offset is still in bytes; line and column too */
    BAD_UTF8(s, "m1.json", "[\"\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\xC3\"]", 11, "truncated");
    BAD_UTF8(s, "m2.json", "{\n  \"k\": \"\xC3\xA9\",\n  \"v\": \"x\xC0\x80\"\n}", 24,
             "(line 3, column 10)");
    /* the byte order mark counts: offsets are into the bytes as stored */
    BAD_UTF8(s, "bom.json", "\xEF\xBB\xBF[\"\xFF\"]", 5, "never occurs");
    /* past the ASCII fast path: long runs of ASCII, then the bad byte */
    char doc[1100];
    memset(doc, ' ', sizeof doc);
    memcpy(doc, "[\"", 2);
    memset(doc + 2, 'a', 1000);
    doc[1002] = '\xE0';
    doc[1003] = '\x80';
    doc[1004] = '\x80';
    memcpy(doc + 1005, "\"]", 2);
    expect_bad_utf8(s, "long.json", doc, sizeof doc, 1002, "overlong");
    for (size_t k = 0; k < 16; k++) { /* every alignment of the word loop */
        char d[40] = "[\"abcdefghijklmnopqrstuvwxyz\"]";
        d[2 + k] = '\x80';
        char key[32];
        snprintf(key, sizeof key, "align%zu.json", k);
        expect_bad_utf8(s, key, d, strlen(d), 2 + k, "continuation");
    }
    asset_server_destroy(s);
}

static void test_json_valid_multibyte_document_loads(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    /* 2, 3 and 4 bytes, and the edges of each range: U+0080, U+07FF, U+0800, U+D7FF,
     * U+E000, U+FFFF, U+10000, U+10FFFF */
    const char *doc =
        "\xEF\xBB\xBF{\"de\": \"Gr\xC3\xBC\xC3\x9F"
        "e\", \"zh\": \"\xE4\xBD\xA0\xE5\xA5\xBD\","
        " \"emoji\": \"\xF0\x9F\x98\x80\","
        " \"edges\": \"\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xEF\xBF\xBF"
        "\xF0\x90\x80\x80\xF4\x8F\xBF\xBF\"}";
    asset_handle_t *h = load_text(s, "ok.json", doc, strlen(doc));
    if (asset_handle_error(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    const cJSON *j = asset_handle_value(h);
    assert_string_equal(cJSON_GetObjectItem(j, "de")->valuestring, "Gr\xC3\xBC\xC3\x9F"
                                                                   "e");
    assert_string_equal(cJSON_GetObjectItem(j, "zh")->valuestring, "\xE4\xBD\xA0\xE5\xA5\xBD");
    assert_string_equal(cJSON_GetObjectItem(j, "emoji")->valuestring, "\xF0\x9F\x98\x80");
    assert_int_equal(strlen(cJSON_GetObjectItem(j, "edges")->valuestring), 2 + 2 + 3 * 4 + 4 * 2);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_json_allow_invalid_utf8_passes_the_bytes_through(void **state) {
    (void)state;
    asset_server_config_t cfg = {0};
    cfg.json_allow_invalid_utf8 = true;
    asset_server_t *s = asset_server_create(&cfg);
    const char doc[] = "[\"\xC0\xAF\xED\xA0\x80\xFF\"]";
    asset_handle_t *h = load_text(s, "latin.json", doc, sizeof doc - 1);
    if (asset_handle_error(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    assert_string_equal(cJSON_GetArrayItem(asset_handle_value(h), 0)->valuestring,
                        "\xC0\xAF\xED\xA0\x80\xFF");
    asset_handle_release(h);
    /* the other checks stay on */
    expect_parse_error(s, "tail.json", "[\"\xFF\"] x", 7, "trailing characters");
    asset_server_destroy(s);
}

/* ---- a value set twice ---- */

typedef struct twice {
    atomic_int frees;
    atomic_int frees_off_main; /* free_value calls on another thread than the test's */
    uv_thread_t main;
} twice_t;

static asset_status_t twice_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    char *first = asset_alloc(8), *second = asset_alloc(8);
    if (!first || !second) {
        asset_free(first);
        asset_free(second);
        return ASSET_E_NO_MEMORY;
    }
    strcpy(first, "first");
    strcpy(second, "second");
    asset_parse_set_value(p, first, 8); /* e.g. so that a failure below frees it */
    asset_parse_set_value(p, second, 8);
    return ASSET_OK;
}

static void twice_free(void *ctx, void *value) {
    twice_t *t = ctx;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &t->main)) atomic_fetch_add(&t->frees_off_main, 1);
    atomic_fetch_add(&t->frees, 1);
    asset_free(value);
}

/* A loader that set a value and then another: the first one was never freed (its
 * free_value never saw it; ASan: a leak per load). It goes where the loader's values
 * go now, on the flush thread for a loader that frees there. */
static void test_a_value_set_twice_frees_the_first(void **state) {
    (void)state;
    for (int on_flush = 0; on_flush < 2; on_flush++) {
        asset_server_t *s = tu_server(1);
        twice_t t = {.main = uv_thread_self()};
        static const char *const twice_suffix[] = {".twice", NULL};
        asset_loader_t ld = {ASSET_LOADER_ABI,
                             "twice",
                             twice_suffix,
                             NULL,
                             twice_parse,
                             twice_free,
                             NULL,
                             on_flush ? ASSET_LOADER_FREE_ON_FLUSH_THREAD : 0u,
                             NULL};
        assert_int_equal(asset_server_register_loader(s, &ld, &t, 0), ASSET_OK);
        assert_int_equal(asset_mem_put(s, "a.twice", "x", 1), ASSET_OK);
        asset_handle_t *h = tu_load_wait(s, "mem://a.twice", ASSET_OK);
        assert_string_equal(asset_handle_value(h), "second");
        asset_server_flush(s); /* the first value, queued for this thread */
        assert_int_equal(atomic_load(&t.frees), 1);
        asset_handle_release(h);
        asset_server_destroy(s);
        assert_int_equal(atomic_load(&t.frees), 2);
        if (on_flush) assert_int_equal(atomic_load(&t.frees_off_main), 0);
    }
}

/* A free_value run by a flush (ASSET_LOADER_FREE_ON_FLUSH_THREAD) is inside that flush:
 * a destroy from there is refused, as a callback's is. The flush freed such values after
 * it had cleared its in-flush mark, so the destroy went through and freed the server
 * under the flush still running (ASan: heap-use-after-free in flush_impl). */
typedef struct selfkill {
    asset_server_t *s;
    int errors, frees;
} selfkill_t;

static void selfkill_log(int level, const char *msg, void *user) {
    selfkill_t *k = user;
    if (level == ASSET_LOG_ERROR && strstr(msg, "asset_server_destroy: refused")) k->errors++;
}

static asset_status_t selfkill_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    char *v = asset_alloc(1);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

static void selfkill_free(void *ctx, void *value) {
    selfkill_t *k = ctx;
    k->frees++;
    asset_free(value);
    asset_server_destroy(k->s); /* refused: inside the flush */
}

static void test_a_flush_thread_free_that_destroys_the_server_is_refused(void **state) {
    (void)state;
    selfkill_t k = {0};
    asset_server_config_t cfg = {.max_workers = 1, .log = selfkill_log, .user = &k};
    k.s = asset_server_create(&cfg);
    assert_non_null(k.s);
    static const char *const suffix[] = {".kill", NULL};
    asset_loader_t ld = {ASSET_LOADER_ABI,
                         "selfkill",
                         suffix,
                         NULL,
                         selfkill_parse,
                         selfkill_free,
                         NULL,
                         ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                         NULL};
    assert_int_equal(asset_server_register_loader(k.s, &ld, &k, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(k.s, "a.kill", "x", 1), ASSET_OK);
    asset_handle_release(tu_load_wait(k.s, "mem://a.kill", ASSET_OK));
    asset_server_invalidate(k.s, "mem://a.kill"); /* its last reference: freed at a flush */
    asset_server_flush(k.s);
    assert_int_equal(k.frees, 1);
    assert_int_equal(k.errors, 1);
    asset_handle_release(tu_load_wait(k.s, "mem://a.kill", ASSET_OK)); /* it still works */
    asset_server_t *s = k.s;
    k.s = NULL; /* the value the destroy below frees destroys nothing */
    asset_server_destroy(s);
    assert_int_equal(k.frees, 2);
}

/* ---- many labels ---- */

enum { ATLAS_LABELS = 4000 };

static void atlas_label_free(void *value, void *user) {
    (void)user;
    asset_free(value);
}

/* An atlas: ATLAS_LABELS sprites "s<i>", each an int i; then "s0" again, refused. */
static asset_status_t atlas_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    char name[32];
    for (int i = 0; i < ATLAS_LABELS; i++) {
        snprintf(name, sizeof name, "s%d", i);
        int *v = asset_alloc(sizeof *v);
        if (!v) return ASSET_E_NO_MEMORY;
        *v = i;
        asset_status_t st = asset_parse_add_labeled(p, name, v, sizeof *v, atlas_label_free, NULL);
        if (st != ASSET_OK) {
            asset_free(v);
            return asset_parse_fail(p, ASSET_E_PARSE, "label %s: %s", name, asset_err_name(st));
        }
    }
    if (asset_parse_add_labeled(p, "s0", NULL, 0, NULL, NULL) != ASSET_E_INVALID)
        return asset_parse_fail(p, ASSET_E_PARSE, "a duplicate label was accepted");
    if (asset_parse_add_labeled(p, "s17", NULL, 0, NULL, NULL) != ASSET_E_INVALID)
        return asset_parse_fail(p, ASSET_E_PARSE, "a duplicate label was accepted");
    char *v = asset_alloc(1);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

/* Each label was checked against every earlier one, and each "uri#label" load scanned
 * the labels under the server's lock: an atlas of 40,000 sprites took 7 s to parse and
 * 8.5 s more for its sprites' loads. The names compared now grow with the labels, not
 * with their square (4,000 labels: 16 million compares before). */
static void test_an_atlas_of_thousands_of_labels_costs_linear_compares(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    static const char *const atlas_suffix[] = {".atlas", NULL};
    asset_loader_t ld = {
        ASSET_LOADER_ABI, "atlas", atlas_suffix, NULL, atlas_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "a.atlas", "x", 1), ASSET_OK);
    uint64_t looks0 = atomic_load(&s->label_looks);
    asset_handle_t *atlas = tu_load_wait(s, "mem://a.atlas", ASSET_OK);
    static asset_handle_t *hs[ATLAS_LABELS];
    char uri[64];
    for (int i = 0; i < ATLAS_LABELS; i++) {
        snprintf(uri, sizeof uri, "mem://a.atlas#s%d", ATLAS_LABELS - 1 - i);
        hs[i] = asset_server_load(s, uri, NULL);
        assert_non_null(hs[i]);
    }
    asset_handle_t *missing = asset_server_load(s, "mem://a.atlas#nope", NULL);
    for (int i = 0; i < ATLAS_LABELS; i++) {
        assert_int_equal(tu_wait(hs[i]), ASSET_OK);
        assert_int_equal(*(const int *)asset_handle_value(hs[i]), ATLAS_LABELS - 1 - i);
    }
    assert_int_equal(tu_wait(missing), ASSET_E_NOT_FOUND);
    assert_non_null(strstr(asset_handle_error_message(missing), "label 'nope' not found"));
    uint64_t looks = atomic_load(&s->label_looks) - looks0;
    /* adds, their duplicate checks and the lookups: a few compares each */
    assert_true(looks < 8u * 2 * ATLAS_LABELS);
    for (int i = 0; i < ATLAS_LABELS; i++) asset_handle_release(hs[i]);
    asset_handle_release(missing);
    asset_handle_release(atlas);
    asset_server_destroy(s);
}

/* ---- waits inside a parse and a task that a flush runs ---- */

/* What the parses or a task saw of the local assets they loaded and waited for: how
 * many waits got ASSET_OK and their value, and the first other status. */
typedef struct inner_wait {
    asset_server_t *s;
    atomic_int ok;
    _Atomic asset_status_t other;
} inner_wait_t;

/* Loads "<uri>.dep" (holding "dep") and waits for it. */
static void inner_load_wait(inner_wait_t *w, const char *uri) {
    char dep[128];
    snprintf(dep, sizeof dep, "%s.dep", uri);
    asset_handle_t *h = asset_server_load(w->s, dep, NULL);
    asset_status_t st = asset_handle_wait(h, 60000);
    const asset_bytes_t *b = asset_handle_value(h);
    if (st == ASSET_OK && b && b->size == 3 && !memcmp(b->data, "dep", 3))
        atomic_fetch_add(&w->ok, 1);
    else if (atomic_load(&w->other) == ASSET_OK)
        atomic_store(&w->other, st == ASSET_OK ? ASSET_E_PARSE : st);
    asset_handle_release(h);
}

static asset_status_t inner_wait_parse(void *ctx, asset_parse_t *p) {
    inner_load_wait(ctx, asset_parse_uri(p));
    char *v = asset_alloc(1);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

static asset_status_t inner_wait_task(asset_task_t *t, void *arg) {
    inner_load_wait(arg, "mem://inner/task");
    char *v = asset_alloc(1);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_task_set_value(t, v, 1, NULL, NULL);
    return ASSET_OK;
}

enum { INNER_WAITS = 3 * ASSET__WAIT_RUN_DEPTH };

static bool inner_all_done(asset_handle_t *const *hs, asset_handle_t *t) {
    for (int i = 0; i < INNER_WAITS; i++)
        if (!asset_handle_is_done(hs[i])) return false;
    return asset_handle_is_done(t);
}

/* Loaders' parses and a spawned task that load a local asset and wait for it, on a
 * server driven only by asset_server_flush (the web's frame loop, docs/web.md): each
 * gets its asset, as a worker's wait does. The single-threaded web build runs the jobs
 * inside the flush: there the wait took itself for a callback's (inside a flush) and
 * returned ASSET_E_BUSY at once, running nothing (the same parse run by an
 * asset_handle_wait got its asset); and when the flush of such a wait ran the queued
 * jobs too, each parse ran nested inside the one before, and past 32 deep
 * (ASSET__WAIT_RUN_DEPTH) the waits of the rest got ASSET_E_BUSY. */
static void test_parses_and_a_task_run_by_a_flush_may_wait_for_local_loads(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    inner_wait_t pw = {s, 0, ASSET_OK}, tw = {s, 0, ASSET_OK};
    static const char *const sfx[] = {".waits", NULL};
    asset_loader_t ld = {
        ASSET_LOADER_ABI, "waits", sfx, NULL, inner_wait_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, &pw, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "inner/task.dep", "dep", 3), ASSET_OK);
    asset_handle_t *hs[INNER_WAITS];
    for (int i = 0; i < INNER_WAITS; i++) {
        char key[64], uri[80];
        snprintf(key, sizeof key, "inner/%d.waits.dep", i);
        assert_int_equal(asset_mem_put(s, key, "dep", 3), ASSET_OK);
        snprintf(key, sizeof key, "inner/%d.waits", i);
        assert_int_equal(asset_mem_put(s, key, "x", 1), ASSET_OK);
        snprintf(uri, sizeof uri, "mem://%s", key);
        hs[i] = asset_server_load(s, uri, NULL);
    }
    asset_handle_t *t = asset_server_spawn(s, inner_wait_task, &tw, NULL, NULL);
    TU_FLUSH_UNTIL(s, inner_all_done(hs, t));
    if (atomic_load(&pw.ok) != INNER_WAITS || atomic_load(&tw.ok) != 1)
        fail_msg("the parses' waits: %d of %d, else %s; the task's: %s", atomic_load(&pw.ok),
                 INNER_WAITS, asset_err_name(atomic_load(&pw.other)),
                 asset_err_name(atomic_load(&tw.other)));
    for (int i = 0; i < INNER_WAITS; i++) {
        assert_int_equal(asset_handle_error(hs[i]), ASSET_OK);
        asset_handle_release(hs[i]);
    }
    assert_int_equal(asset_handle_error(t), ASSET_OK);
    asset_handle_release(t);
    asset_server_destroy(s);
}

/* ---- claims() sees normalised URIs only, once per load ---- */

typedef struct claim_log {
    int calls;
    char seen[16][128];
} claim_log_t;

static bool log_claims(void *ctx, const char *uri) {
    claim_log_t *c = ctx; /* the test thread: the caller of asset_server_load */
    if (c->calls < 16) snprintf(c->seen[c->calls], sizeof c->seen[0], "%s", uri);
    c->calls++;
    size_t n = strlen(uri);
    return n >= 3 && !strcmp(uri + n - 3, ".sp");
}

static asset_status_t sp_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    char *v = asset_alloc(3);
    if (!v) return ASSET_E_NO_MEMORY;
    memcpy(v, "sp", 3);
    asset_parse_set_value(p, v, 3);
    return ASSET_OK;
}

/* Loads uri and checks what claims() was asked meanwhile: exactly once, want (NULL: not
 * at all, the URI being refused). */
static void expect_claimed(asset_server_t *s, claim_log_t *c, const char *uri, const char *want,
                           asset_status_t st) {
    int before = c->calls;
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    assert_non_null(h);
    assert_int_equal(tu_wait(h), st);
    if (st == ASSET_OK) assert_string_equal(asset_handle_value(h), "sp");
    asset_handle_release(h);
    if (c->calls != before + (want ? 1 : 0))
        fail_msg("%s: claims() called %d times (want %d); first with '%s'", uri, c->calls - before,
                 want ? 1 : 0, c->calls > before ? c->seen[before] : "");
    if (want) assert_string_equal(c->seen[before], want);
}

/* An IMMUTABLE source's URI (pkg://) may be served by the fast path, which chose the
 * loader on the URI as given: claims() was asked "pkg://emb//t.sp" and then, as the
 * URI was not normalised, "pkg://emb/t.sp" too (twice a load), and it was asked of
 * "pkg://emb/d/../t.sp", which is refused (FORBIDDEN) and reaches no loader. */
static void test_claims_sees_only_normalised_uris_once_per_load_on_the_fast_path(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    static const asset_embedded_file_t files[] = {{"t.sp", "t", 1}, {"d/u.sp", "u", 1}};
    assert_int_equal(asset_server_mount_embedded(s, "emb", files, 2), ASSET_OK);
    claim_log_t c = {0};
    asset_loader_t ld = {ASSET_LOADER_ABI, "sp", NULL, log_claims, sp_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, &c, 0), ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/t.sp", "pkg://emb/t.sp", ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/t.sp", "pkg://emb/t.sp", ASSET_OK); /* a fast hit */
    expect_claimed(s, &c, "pkg://emb//t.sp", "pkg://emb/t.sp", ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/./t.sp", "pkg://emb/t.sp", ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/t%2Esp", "pkg://emb/t.sp", ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/d/u.sp/", "pkg://emb/d/u.sp", ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/d/./u.sp", "pkg://emb/d/u.sp", ASSET_OK);
    expect_claimed(s, &c, "pkg://emb/d/../t.sp", NULL, ASSET_E_FORBIDDEN);
    expect_claimed(s, &c, "pkg://emb/d\\u.sp", NULL, ASSET_E_FORBIDDEN);
    expect_claimed(s, &c, "pkg://e%mb/t.sp", NULL, ASSET_E_INVALID);
    asset_server_destroy(s);
}

/* ---- a NULL value ---- */

typedef struct nullv {
    atomic_int parses, frees, finalizes;
    int mode; /* 0: parse sets NULL; 1: parse sets a value, finalize replaces it with NULL */
} nullv_t;

static asset_status_t nullv_parse(void *ctx, asset_parse_t *p) {
    nullv_t *n = ctx;
    atomic_fetch_add(&n->parses, 1);
    if (n->mode == 0) {
        asset_parse_set_value(p, NULL, 0); /* a marker asset: nothing to keep */
        return ASSET_OK;
    }
    char *v = asset_alloc(4);
    if (!v) return ASSET_E_NO_MEMORY;
    memcpy(v, "cpu", 4);
    asset_parse_set_value(p, v, 4);
    return ASSET_OK;
}

static asset_status_t nullv_finalize(void *ctx, asset_finalize_t *f) {
    nullv_t *n = ctx;
    atomic_fetch_add(&n->finalizes, 1);
    if (n->mode == 1) asset_finalize_set_value(f, NULL, 0); /* the CPU copy dropped */
    return ASSET_OK;
}

static void nullv_free(void *ctx, void *value) {
    nullv_t *n = ctx;
    if (!value) abort(); /* what a texture_destroy(NULL) does */
    atomic_fetch_add(&n->frees, 1);
    asset_free(value);
}

/* **Decision:** a NULL value (the header lets a parse or a finalize set one) is never
 * passed to free_value: it was, when the last handle and the cache entry let it go, and
 * a free_value written for the loader's own objects (texture_destroy) crashed on it. */
static void test_a_null_value_loads_and_is_never_freed(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    nullv_t n = {0};
    static const char *const sfx[] = {".nv", NULL};
    asset_loader_t ld = {ASSET_LOADER_ABI, "nv", sfx, NULL,          nullv_parse,
                         nullv_free,       NULL, 0,   nullv_finalize};
    assert_int_equal(asset_server_register_loader(s, &ld, &n, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "a.nv", "x", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b.nv", "x", 1), ASSET_OK);
    const char *uris[] = {"mem://a.nv", "mem://b.nv"};
    for (int mode = 0; mode < 2; mode++) {
        n.mode = mode;
        asset_handle_t *h = asset_server_load(s, uris[mode], NULL);
        tu_expect_end(h, ASSET_OK, ASSET_STATE_LOADED, NULL);
        assert_null(asset_handle_value(h));
        asset_handle_release(h);
        asset_server_flush(s);
    }
    /* the cache lets b.nv go now, a.nv at destroy */
    asset_server_invalidate(s, "mem://b.nv");
    asset_server_flush(s);
    assert_int_equal(atomic_load(&n.parses), 2);
    assert_int_equal(atomic_load(&n.finalizes), 2);
    assert_int_equal(atomic_load(&n.frees), 1); /* "cpu", which finalize replaced */
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&n.frees), 1);
}

/* A loader whose parse works until asset_parse_cancelled() says its value is no longer
 * wanted, or the test says go (bounded: TU_SPIN_MS); counts what it saw. A parse that saw
 * the cancel sets a value first (dropped with the failure) and returns ASSET_E_CANCELLED */
typedef struct {
    atomic_int entered, saw_cancel, saw_live, go, frees;
} until_cancel_t;

static asset_status_t parse_until_cancelled(void *ctx, asset_parse_t *p) {
    until_cancel_t *u = ctx;
    atomic_fetch_add(&u->entered, 1);
    uint64_t end = uv_hrtime() + (uint64_t)TU_SPIN_MS * 1000000u;
    while (!asset_parse_cancelled(p) && !atomic_load(&u->go) && uv_hrtime() < end) tu_os_yield();
    char *v = tu_asset_strndup("spun", 4);
    asset_parse_set_value(p, v, 4);
    if (!asset_parse_cancelled(p)) {
        atomic_fetch_add(&u->saw_live, 1);
        return ASSET_OK;
    }
    atomic_fetch_add(&u->saw_cancel, 1);
    return asset_parse_fail(p, ASSET_E_CANCELLED, "stopped early: cancelled");
}
/* A source whose read works until asset_request_cancelled() (bounded: TU_SPIN_MS) */
static asset_status_t read_until_cancelled(void *ctx, asset_request_t *r) {
    until_cancel_t *u = ctx;
    uint64_t end = uv_hrtime() + (uint64_t)TU_SPIN_MS * 1000000u;
    while (!asset_request_cancelled(r) && uv_hrtime() < end) tu_os_yield();
    if (!asset_request_cancelled(r)) return asset_request_fail(r, ASSET_E_IO, "never cancelled");
    atomic_fetch_add(&u->saw_cancel, 1);
    return ASSET_E_CANCELLED;
}
static void until_cancel_free(void *ctx, void *value) {
    atomic_fetch_add(&((until_cancel_t *)ctx)->frees, 1);
    asset_free(value);
}

/* asset_parse_cancelled: false while a handle still wants the load (one of two
 * cancelled), true once its every handle was cancelled (by handle, by tag) or timed out;
 * a parse that stops then frees what it set, and the handles say CANCELLED or
 * E_TIMEOUT. The timeout case runs on the single-threaded web build too, where the parse
 * holds the one thread and the deadline is seen only through the call */
static void test_a_parse_or_read_sees_its_load_cancelled_and_may_stop_early(void **state) {
    (void)state;
    static const char *const sfx[] = {".spin", NULL};
    asset_server_t *s = tu_server(2);
    static until_cancel_t u;
    memset(&u, 0, sizeof u);
    asset_loader_t ld = {ASSET_LOADER_ABI,  "spin", sfx, NULL, parse_until_cancelled,
                         until_cancel_free, NULL,   0,   NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, &u, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "t.spin", "x", 1), ASSET_OK);
    /* its timeout: the parse sees it, ASSET_E_TIMEOUT */
    asset_load_options_t o = {0};
    o.timeout_ms = 50;
    o.no_cache = true;
    asset_handle_t *h = asset_server_load(s, "mem://t.spin", &o);
    assert_int_equal(tu_wait(h), ASSET_E_TIMEOUT);
    TU_FLUSH_UNTIL(s, atomic_load(&u.saw_cancel) == 1 && atomic_load(&u.frees) == 1);
    asset_handle_release(h);
    /* a source's read that works until asset_request_cancelled(): its timeout too (on the
     * single-threaded web, seen only through that call: it ran for ever) */
    static until_cancel_t r;
    memset(&r, 0, sizeof r);
    asset_source_t src = {ASSET_SOURCE_ABI, "spinning", 0, read_until_cancelled, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, &r), ASSET_OK);
    h = asset_server_load(s, "spinning://t.bin", &o);
    assert_int_equal(tu_wait(h), ASSET_E_TIMEOUT);
    TU_FLUSH_UNTIL(s, atomic_load(&r.saw_cancel) == 1);
    asset_handle_release(h);
    if (s->nworkers == 0) { /* the single-threaded web build: no thread to cancel from */
        asset_server_destroy(s);
        skip();
        return;
    }
    /* one of two handles cancelled: still wanted; then the other, by its tag (cached
     * loads: the second joins the first's job while its parse runs) */
    o.timeout_ms = 0;
    o.no_cache = false;
    asset_handle_t *a = asset_server_load(s, "mem://t.spin", &o);
    o.tag = "level";
    asset_handle_t *b = asset_server_load(s, "mem://t.spin", &o);
    TU_SPIN_UNTIL(atomic_load(&u.entered) == 2);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.coalesced, 1); /* b joined a's job */
    asset_handle_cancel(a);
    asset_server_flush(s);
    assert_int_equal(atomic_load(&u.saw_cancel), 1); /* b still wants it */
    assert_int_equal(asset_server_cancel_tag(s, "level", NULL), 1);
    TU_SPIN_UNTIL(atomic_load(&u.saw_cancel) == 2);
    assert_int_equal(tu_wait(a), ASSET_E_CANCELLED);
    assert_int_equal(tu_wait(b), ASSET_E_CANCELLED);
    TU_FLUSH_UNTIL(s, atomic_load(&u.frees) == 2);
    asset_handle_release(a);
    asset_handle_release(b);
    /* one of two cancelled, the other kept: the parse sees no cancel and loads */
    o.tag = NULL;
    a = asset_server_load(s, "mem://t.spin", &o);
    b = asset_server_load(s, "mem://t.spin", &o);
    TU_SPIN_UNTIL(atomic_load(&u.entered) == 3);
    asset_handle_cancel(a);
    atomic_store(&u.go, 1);
    assert_int_equal(tu_wait(b), ASSET_OK);
    assert_string_equal(asset_handle_value(b), "spun");
    assert_int_equal(atomic_load(&u.saw_live), 1);
    assert_int_equal(atomic_load(&u.saw_cancel), 2);
    assert_int_equal(tu_wait(a), ASSET_E_CANCELLED);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&u.frees), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_selection_json_by_suffix_else_bytes),
        cmocka_unit_test(test_register_refuses_a_loader_past_32),
        cmocka_unit_test(test_forced_loader_by_name_wins_over_every_claim),
        cmocka_unit_test(test_user_loaders_tried_in_registration_order_before_builtins),
        cmocka_unit_test(test_claims_callback_replaces_suffix_match),
        cmocka_unit_test(test_suffix_match_is_case_insensitive),
        cmocka_unit_test(test_a_question_mark_in_a_file_pkg_or_mem_name_is_part_of_it),
        cmocka_unit_test(test_unknown_loader_name_fails_with_no_loader),
        cmocka_unit_test(test_register_refuses_bad_vtables_and_duplicate_names),
        cmocka_unit_test(test_each_loader_has_its_own_cache_budget),
        cmocka_unit_test(test_json_error_reports_line_and_column),
        cmocka_unit_test(test_json_bad_key_is_placed_at_its_first_byte),
        cmocka_unit_test(test_json_trailing_garbage_is_rejected),
        cmocka_unit_test(test_json_deep_nesting_fails_cleanly),
        cmocka_unit_test(test_json_max_depth_is_a_config_field),
        cmocka_unit_test(test_json_deepest_document_loads_on_any_stack),
        cmocka_unit_test(test_json_nesting_fails_before_a_64_kib_stack_runs_out),
        cmocka_unit_test(test_json_numbers_longer_than_63_characters_load),
        cmocka_unit_test(test_json_leniencies_of_cjson_are_the_documented_ones),
        cmocka_unit_test(test_json_numbers_out_of_a_doubles_range_are_infinity_or_zero),
        cmocka_unit_test(test_request_writes_and_adoptions_fit_max_asset_size_exactly),
        cmocka_unit_test(test_failing_loader_message_names_loader_and_uri),
        cmocka_unit_test(test_a_load_cancelled_during_its_read_is_not_parsed),
        cmocka_unit_test(test_misbehaving_loaders_fail_without_leaking),
        cmocka_unit_test(test_parse_take_data_hands_over_a_buffer_the_loader_owns),
        cmocka_unit_test(test_parse_sees_the_normalised_uri),
        cmocka_unit_test(test_json_rejects_invalid_utf8_naming_the_byte),
        cmocka_unit_test(test_json_valid_multibyte_document_loads),
        cmocka_unit_test(test_json_allow_invalid_utf8_passes_the_bytes_through),
        cmocka_unit_test(test_a_value_set_twice_frees_the_first),
        cmocka_unit_test(test_a_flush_thread_free_that_destroys_the_server_is_refused),
        cmocka_unit_test(test_an_atlas_of_thousands_of_labels_costs_linear_compares),
        cmocka_unit_test(test_parses_and_a_task_run_by_a_flush_may_wait_for_local_loads),
        cmocka_unit_test(test_claims_sees_only_normalised_uris_once_per_load_on_the_fast_path),
        cmocka_unit_test(test_a_null_value_loads_and_is_never_freed),
        cmocka_unit_test(test_a_parse_or_read_sees_its_load_cancelled_and_may_stop_early),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
