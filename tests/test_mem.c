/* test_mem.c - the mem:// store: put/remove, loading, versions (a replaced key is
 * re-parsed even at the same length), thread safety, argument checks. */
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
#include "tu_os.h"

static void test_put_then_load_gives_the_bytes(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    const uint8_t bin[] = {0, 1, 2, 0xff, 0, 7};
    assert_int_equal(asset_mem_put(s, "bin", bin, sizeof bin), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "dir/text.txt", "some text", 9), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "mem://bin", ASSET_OK);
    asset_handle_t *b = tu_load_wait(s, "mem://dir/text.txt", ASSET_OK);
    tu_expect_bytes(a, bin, sizeof bin);
    tu_expect_bytes(b, "some text", 9);
    assert_string_equal(asset_handle_uri(b), "mem://dir/text.txt");
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
}

static void test_put_copies_the_data(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    char buf[16];
    strcpy(buf, "original");
    assert_int_equal(asset_mem_put(s, "k", buf, 8), ASSET_OK);
    memset(buf, 'X', sizeof buf); /* the caller's buffer is not referenced */
    asset_handle_t *h = tu_load_wait(s, "mem://k", ASSET_OK);
    tu_expect_bytes(h, "original", 8);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_empty_value_loads_with_size_zero(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "empty", NULL, 0), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://empty", ASSET_OK);
    tu_expect_bytes(h, "", 0);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_percent_encoded_uri_finds_decoded_key(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "a b", "space", 5), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "50%", "pct", 3), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "mem://a%20b", ASSET_OK);
    asset_handle_t *b = tu_load_wait(s, "mem://50%25", ASSET_OK);
    tu_expect_bytes(a, "space", 5);
    tu_expect_bytes(b, "pct", 3);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
}

static void test_replace_same_length_gives_new_bytes(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "v.cnt", "AAAA", 4), ASSET_OK);
    asset_handle_t *h1 = tu_load_wait(s, "mem://v.cnt", ASSET_OK);
    tu_expect_bytes(h1, "AAAA", 4);
    assert_int_equal(asset_mem_put(s, "v.cnt", "BBBB", 4), ASSET_OK); /* same length */
    asset_handle_t *h2 = tu_load_wait(s, "mem://v.cnt", ASSET_OK);
    tu_expect_bytes(h2, "BBBB", 4);
    tu_expect_bytes(h1, "AAAA", 4); /* the old value lives with its handle */
    assert_int_equal(tu_counter_parses(&cnt), 2);
    /* the same bytes put again still bump the version */
    assert_int_equal(asset_mem_put(s, "v.cnt", "BBBB", 4), ASSET_OK);
    asset_handle_t *h3 = tu_load_wait(s, "mem://v.cnt", ASSET_OK);
    tu_expect_bytes(h3, "BBBB", 4);
    assert_int_equal(tu_counter_parses(&cnt), 3);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_server_destroy(s);
    assert_int_equal(tu_counter_frees(&cnt), 3);
}

static void test_unchanged_key_is_a_cache_hit(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "u.cnt", "same", 4), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "other", "x", 1), ASSET_OK); /* other keys: no effect */
    asset_handle_t *h1 = tu_load_wait(s, "mem://u.cnt", ASSET_OK);
    assert_int_equal(asset_mem_put(s, "other", "y", 1), ASSET_OK);
    asset_handle_t *h2 = tu_load_wait(s, "mem://u.cnt", ASSET_OK);
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    assert_int_equal(tu_counter_parses(&cnt), 1);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.cache_hits, 1);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
}

/* A watched key put again reloads its live handle: the reload sends the version the
 * handle holds ("g1") and the read answers NOT_MODIFIED only when the key's is the same.
 * Taking any cached version as current (the comparison dropped) left every watched key's
 * handle on its first bytes; only test_reload's suites saw it (thirty-third review). */
static void test_a_watched_key_put_again_reloads_its_live_handle(void **state) {
    (void)state;
    asset_server_config_t cfg = {.max_workers = 1, .watch = true};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    tu_counter_t cnt = {0};
    assert_int_equal(tu_counting_loader_register(s, "counting", ".cnt", &cnt, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "w.cnt", "AAAA", 4), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://w.cnt", ASSET_OK);
    uint64_t v1 = asset_handle_version(h);
    assert_int_equal(asset_mem_put(s, "w.cnt", "BBBB", 4), ASSET_OK); /* same length */
    TU_FLUSH_UNTIL(s, asset_handle_version(h) != v1);
    tu_expect_bytes(h, "BBBB", 4);
    assert_int_equal(tu_counter_parses(&cnt), 2);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_remove_then_load_is_not_found(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    asset_handle_t *h1 = tu_load_wait(s, "mem://k", ASSET_OK);
    assert_int_equal(asset_mem_remove(s, "k"), ASSET_OK);
    assert_int_equal(asset_mem_remove(s, "k"), ASSET_E_NOT_FOUND);
    assert_int_equal(asset_mem_remove(s, "never"), ASSET_E_NOT_FOUND);
    /* even with a cached value: the key is gone */
    asset_handle_t *h2 = tu_load_wait(s, "mem://k", ASSET_E_NOT_FOUND);
    assert_non_null(strstr(asset_handle_error_message(h2), "mem://k"));
    assert_null(asset_handle_value(h2));
    tu_expect_bytes(h1, "v", 1); /* the loaded value is unaffected */
    /* and it can come back */
    assert_int_equal(asset_mem_put(s, "k", "again", 5), ASSET_OK);
    asset_handle_t *h3 = tu_load_wait(s, "mem://k", ASSET_OK);
    tu_expect_bytes(h3, "again", 5);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_server_destroy(s);
}

static void test_invalid_arguments_are_rejected(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(NULL, "k", "v", 1), ASSET_E_INVALID);
    assert_int_equal(asset_mem_put(s, NULL, "v", 1), ASSET_E_INVALID);
    assert_int_equal(asset_mem_put(s, "", "v", 1), ASSET_E_INVALID);
    assert_int_equal(asset_mem_put(s, "k", NULL, 1), ASSET_E_INVALID);
    assert_int_equal(asset_mem_remove(NULL, "k"), ASSET_E_INVALID);
    assert_int_equal(asset_mem_remove(s, NULL), ASSET_E_INVALID);
    /* nothing was stored by the refused calls */
    asset_handle_t *h = tu_load_wait(s, "mem://k", ASSET_E_NOT_FOUND);
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* A key that no URI can name (over 8192 bytes as mem://key, its '%' and '#' escaped)
 * is refused: stored, every load of it failed "URI too long". The longest that fits
 * loads. */
static void test_a_key_no_uri_can_name_is_refused(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    enum { MAX = 8192 - 6 };
    char *key = malloc(MAX + 2), *uri = malloc(8192 + 16);
    memset(key, 'k', MAX + 1);
    key[MAX + 1] = 0;
    assert_int_equal(asset_mem_put(s, key, "v", 1), ASSET_E_INVALID); /* one byte over */
    key[MAX] = 0;
    assert_int_equal(asset_mem_put(s, key, "v", 1), ASSET_OK); /* exactly fits */
    snprintf(uri, 8192 + 16, "mem://%s", key);
    asset_handle_t *h = tu_load_wait(s, uri, ASSET_OK);
    asset_handle_release(h);
    key[0] = '%'; /* written %25: two bytes more than it is */
    assert_int_equal(asset_mem_put(s, key, "v", 1), ASSET_E_INVALID);
    key[MAX - 2] = 0;
    assert_int_equal(asset_mem_put(s, key, "w", 1), ASSET_OK);
    snprintf(uri, 8192 + 16, "mem://%%25%s", key + 1);
    h = tu_load_wait(s, uri, ASSET_OK);
    assert_memory_equal(((const asset_bytes_t *)asset_handle_value(h))->data, "w", 1);
    asset_handle_release(h);
    free(key);
    free(uri);
    asset_server_destroy(s);
}

static void test_store_is_per_server(void **state) {
    (void)state;
    asset_server_t *a = tu_server(1);
    asset_server_t *b = tu_server(1);
    assert_int_equal(asset_mem_put(a, "k", "in a", 4), ASSET_OK);
    asset_handle_t *ha = tu_load_wait(a, "mem://k", ASSET_OK);
    asset_handle_t *hb = tu_load_wait(b, "mem://k", ASSET_E_NOT_FOUND);
    asset_handle_release(ha);
    asset_handle_release(hb);
    asset_server_destroy(a);
    asset_server_destroy(b);
}

static void test_destroy_frees_stored_values(void **state) {
    /* under LSan: entries (and a value still held by a handle) are freed */
    (void)state;
    asset_server_t *s = tu_server(1);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(asset_mem_put(s, key, key, strlen(key)), ASSET_OK);
    }
    asset_handle_t *h = tu_load_wait(s, "mem://k42", ASSET_OK);
    tu_expect_bytes(h, "k42", 3);
    assert_int_equal(asset_mem_put(s, "k42", "replaced", 8), ASSET_OK);
    tu_expect_bytes(h, "k42", 3); /* the loaded value did not move */
    asset_server_destroy(s);      /* frees h too */
}

/* ---- threads ---- */

#define PUTTERS 4
#define PER_THREAD 200
#define VLEN 48

typedef struct putter {
    asset_server_t *s;
    uv_barrier_t *start;
    int id;
    int failures;
} putter_t;

static void fill(char *v, char c) { memset(v, c, VLEN); }

static void putter_main(void *arg) {
    putter_t *p = arg;
    uv_barrier_wait(p->start);
    char key[32], val[VLEN];
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(key, sizeof key, "t%d/k%d", p->id, i);
        fill(val, (char)('a' + p->id));
        if (asset_mem_put(p->s, key, val, VLEN) != ASSET_OK) p->failures++;
        /* everybody rewrites the shared key, each with its own letter */
        fill(val, (char)('A' + (i + p->id) % 26));
        if (asset_mem_put(p->s, "shared", val, VLEN) != ASSET_OK) p->failures++;
        if (i % 10 == 0) {
            snprintf(key, sizeof key, "t%d/tmp", p->id);
            if (asset_mem_put(p->s, key, val, VLEN) != ASSET_OK) p->failures++;
            if (asset_mem_remove(p->s, key) != ASSET_OK) p->failures++;
        }
    }
}

static void test_concurrent_puts_while_loading(void **state) {
    (void)state;
    asset_server_t *s = tu_server(3);
    char val[VLEN];
    fill(val, 'Z');
    assert_int_equal(asset_mem_put(s, "shared", val, VLEN), ASSET_OK);
    uv_barrier_t start;
    uv_barrier_init(&start, PUTTERS + 1);
    putter_t p[PUTTERS];
    uv_thread_t t[PUTTERS];
    for (int i = 0; i < PUTTERS; i++) {
        p[i] = (putter_t){s, &start, i, 0};
        assert_int_equal(uv_thread_create(&t[i], putter_main, &p[i]), 0);
    }
    uv_barrier_wait(&start);
    /* meanwhile: load the key being rewritten; every value is whole, never torn */
    for (int round = 0; round < 40; round++) {
        asset_handle_t *h[3];
        for (int k = 0; k < 3; k++) {
            asset_load_options_t o = {0};
            o.no_cache = (k == 2);
            h[k] = asset_server_load(s, "mem://shared", &o);
        }
        for (int k = 0; k < 3; k++) {
            assert_int_equal(tu_wait(h[k]), ASSET_OK);
            const asset_bytes_t *b = asset_handle_value(h[k]);
            assert_int_equal(b->size, VLEN);
            for (int i = 1; i < VLEN; i++) assert_int_equal(b->data[i], b->data[0]);
            assert_true((b->data[0] >= 'A' && b->data[0] <= 'Z'));
            asset_handle_release(h[k]);
        }
    }
    for (int i = 0; i < PUTTERS; i++) {
        assert_int_equal(uv_thread_join(&t[i]), 0);
        assert_int_equal(p[i].failures, 0);
    }
    uv_barrier_destroy(&start);
    /* every key of every thread is there, with its thread's letter */
    for (int id = 0; id < PUTTERS; id++) {
        for (int i = 0; i < PER_THREAD; i += 7) {
            char uri[48];
            snprintf(uri, sizeof uri, "mem://t%d/k%d", id, i);
            asset_handle_t *h = tu_load_wait(s, uri, ASSET_OK);
            char want[VLEN];
            fill(want, (char)('a' + id));
            tu_expect_bytes(h, want, VLEN);
            asset_handle_release(h);
        }
        char uri[48];
        snprintf(uri, sizeof uri, "mem://t%d/tmp", id);
        asset_handle_release(tu_load_wait(s, uri, ASSET_E_NOT_FOUND));
    }
    /* the shared key holds the last write of some thread: a full letter */
    asset_handle_t *h = tu_load_wait(s, "mem://shared", ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    for (int i = 1; i < VLEN; i++) assert_int_equal(b->data[i], b->data[0]);
    asset_handle_release(h);
    asset_server_destroy(s);
}

typedef struct remover {
    asset_server_t *s;
    uv_barrier_t *start;
    int rounds;
} remover_t;
static void remover_main(void *arg) {
    remover_t *r = arg;
    uv_barrier_wait(r->start);
    for (int i = 0; i < r->rounds; i++) {
        asset_mem_put(r->s, "flip", "present", 7);
        asset_mem_remove(r->s, "flip");
    }
}

static void test_concurrent_remove_while_loading_is_found_or_not_found(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    uv_barrier_t start;
    uv_barrier_init(&start, 2);
    remover_t r = {s, &start, 2000};
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, remover_main, &r), 0);
    uv_barrier_wait(&start);
    int ok = 0, missing = 0;
    for (int i = 0; i < 100; i++) {
        asset_handle_t *h = asset_server_load(s, "mem://flip", NULL);
        asset_status_t st = tu_wait(h);
        if (st == ASSET_OK) {
            tu_expect_bytes(h, "present", 7);
            ok++;
        } else {
            assert_int_equal(st, ASSET_E_NOT_FOUND);
            missing++;
        }
        asset_handle_release(h);
    }
    assert_int_equal(ok + missing, 100);
    assert_int_equal(uv_thread_join(&t), 0);
    uv_barrier_destroy(&start);
    asset_server_destroy(s);
}

/* Regression: the stored copy's size was sizeof header + size + 1, unchecked: a size
 * near SIZE_MAX (a read()'s -1 passed on as size_t, say) wrapped to a few bytes, and
 * the copy of `size` bytes into them overran the heap (a crash). Such a size cannot be
 * allocated: ASSET_E_NO_MEMORY, and the key is left as it was. */
static void test_a_size_that_cannot_be_allocated_is_no_memory(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    const char buf[32] = "kept";
    assert_int_equal(asset_mem_put(s, "k", buf, 4), ASSET_OK);
    const size_t sizes[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 8}; /* each wraps */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        assert_int_equal(asset_mem_put(s, "k", buf, sizes[i]), ASSET_E_NO_MEMORY);
    asset_handle_t *h = tu_load_wait(s, "mem://k", ASSET_OK);
    tu_expect_bytes(h, "kept", 4);
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* A mem:// folder named with a trailing slash ("mem://lvl/", as a path to a directory
 * is often written) lists the keys under "lvl/", as "mem://lvl" does; its children
 * were made as "mem://lvl//a", a key that does not exist: every child failed
 * E_NOT_FOUND. The root spelled "mem:///" lists the keys that start with '/'. */
static void test_a_folder_with_a_trailing_slash_loads_its_keys(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "lvl/a", "A", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "lvl/sub/b", "BB", 2), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "/abs", "C", 1), ASSET_OK);
    const char *folders[] = {"mem://lvl/", "mem://lvl//", "mem:///"};
    const size_t totals[] = {2, 2, 1};
    const char *first[] = {"mem://lvl/a", "mem://lvl/a", "mem:///abs"};
    for (size_t f = 0; f < 3; f++) {
        asset_batch_t *b = asset_server_load_folder(s, folders[f], NULL);
        assert_non_null(b);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        assert_int_equal(asset_batch_total(b), totals[f]);
        for (size_t i = 0; i < asset_batch_total(b); i++) {
            asset_handle_t *h = asset_batch_handle(b, i);
            if (asset_handle_state(h) != ASSET_STATE_LOADED)
                fail_msg("%s: child %s: %s", folders[f], asset_handle_uri(h),
                         asset_handle_error_message(h));
        }
        assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), first[f]);
        assert_int_equal(asset_batch_failed_count(b), 0);
        asset_batch_release(b);
    }
    asset_server_destroy(s);
}

/* The store has no root folder: keys are names, not paths. "mem:///" is the folder of
 * the keys that start with '/', and "mem://" is no URI (an empty path), so the keys
 * "lvl/a" and "top" are under no listable folder but their own prefixes'. */
static void test_the_store_root_is_no_folder(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "lvl/a", "A", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "top", "T", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "/abs", "C", 1), ASSET_OK);
    asset_batch_t *b = asset_server_load_folder(s, "mem:///", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), "mem:///abs");
    asset_batch_release(b);
    b = asset_server_load_folder(s, "mem://", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_INVALID);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A folder exists through its keys, as an embedded package's directory does through its
 * files, whose listing is E_NOT_FOUND when it has none: a mem:// folder with no key
 * under it (misspelt, a key named as a folder, its last key removed) completed with no
 * children and ASSET_OK, so a typo loaded nothing and said nothing. */
static void test_a_folder_with_no_key_under_it_is_not_found(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "levels/a.json", "{}", 2), ASSET_OK);
    const char *none[] = {"mem://levles", "mem://levels/a.json", "mem:///"};
    for (size_t i = 0; i < sizeof none / sizeof *none; i++) {
        asset_batch_t *b = asset_server_load_folder(s, none[i], NULL);
        assert_non_null(b);
        asset_status_t st = asset_batch_wait(b, 60000);
        size_t total = asset_batch_total(b);
        bool says =
            asset_batch_error_message(b) && strstr(asset_batch_error_message(b), "no key under");
        asset_batch_release(b);
        if (st != ASSET_E_NOT_FOUND || total || !says)
            fail_msg("%s: %s with %zu children, not E_NOT_FOUND", none[i], asset_err_name(st),
                     total);
    }
    asset_batch_t *b = asset_server_load_folder(s, "mem://levels", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    asset_batch_release(b);
    assert_int_equal(asset_mem_remove(s, "levels/a.json"), ASSET_OK); /* its last key */
    b = asset_server_load_folder(s, "mem://levels", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_NOT_FOUND);
    asset_batch_release(b);
    asset_server_destroy(s);
}

static asset_status_t mem_list(asset_server_t *s, const char *path, bool recursive,
                               asset_list_t *l) {
    memset(l, 0, sizeof *l);
    char uri[256];
    snprintf(uri, sizeof uri, "mem://%s", path);
    l->uri = uri;
    l->path = path;
    l->recursive = recursive;
    asset_status_t st = asset__mem_source.list(s, uri, l);
    l->uri = NULL; /* points at the stack */
    return st;
}

/* Lists path and checks its entries are the n of want (in any order, each once). */
static void expect_keys(asset_server_t *s, const char *path, bool recursive,
                        const char *const *want, size_t n) {
    asset_list_t l;
    assert_int_equal(mem_list(s, path, recursive, &l), ASSET_OK);
    bool ok = l.count == n;
    for (size_t i = 0; ok && i < n; i++) {
        size_t hits = 0;
        for (size_t j = 0; j < l.count; j++) hits += !strcmp(l.paths[j], want[i]);
        ok = hits == 1;
    }
    if (!ok)
        for (size_t j = 0; j < l.count; j++) print_message("  got %s\n", l.paths[j]);
    asset__list_dispose(&l);
    if (!ok) fail_msg("%s%s: want %zu entries", path, recursive ? " (recursive)" : "", n);
}

/* Lists path and checks it is no folder: E_NOT_FOUND, saying so. */
static void expect_no_folder(asset_server_t *s, const char *path) {
    asset_list_t l;
    asset_status_t st = mem_list(s, path, true, &l);
    bool says = l.message && strstr(l.message, "no key under");
    size_t n = l.count;
    asset__list_dispose(&l);
    if (st != ASSET_E_NOT_FOUND || !says || n)
        fail_msg("%s: %s with %zu entries, not E_NOT_FOUND", path, asset_err_name(st), n);
}

/* A listing walked every key of the store, whatever folder it listed, under the store's
 * lock (every mem:// read and put waits on it): listing each of 1,000 folders of 100
 * keys took 9 s (9 ms a listing), 2,000 of them 49 s. Keys are filed by the folder
 * they are in: a listing looks at its folder's keys and its subfolders' only. */
static void test_listing_a_folder_looks_only_at_its_keys(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    enum { DIRS = 200, FILES = 100 };
    char k[64];
    for (int d = 0; d < DIRS; d++)
        for (int i = 0; i < FILES; i++) {
            snprintf(k, sizeof k, "lvl%03d/f%03d", d, i);
            assert_int_equal(asset_mem_put(s, k, "x", 1), ASSET_OK);
        }
    const char *more[] = {"lvl100/sub/x", "lvl100/sub/deep/y", "lvl100//z", "lvl100x",
                          "/abs",         "/abs/in",           "top",       "a/b/c/d"};
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
        assert_int_equal(asset_mem_put(s, more[i], "yy", 2), ASSET_OK);
    asset_list_t l;
    uint64_t v0 = atomic_load(&asset__mem_list_visits);
    assert_int_equal(mem_list(s, "lvl100", false, &l), ASSET_OK);
    uint64_t v = atomic_load(&asset__mem_list_visits) - v0;
    assert_int_equal(l.count, FILES);
    assert_int_equal(l.sizes[0], 1);
    asset__list_dispose(&l);
    if (v > 4 * FILES) fail_msg("listing %d keys looked at %llu", FILES, (unsigned long long)v);
    /* what a listing gives is unchanged: the folder's keys, its subfolders' when
     * recursive, a trailing '/' dropped, an empty segment a folder of its own */
    const char *sub[] = {"sub/x", "sub/deep/y", "/z"};
    const char *rec[FILES + 3];
    char names[FILES][8];
    for (int i = 0; i < FILES; i++) {
        snprintf(names[i], sizeof names[i], "f%03d", i);
        rec[i] = names[i];
    }
    for (int i = 0; i < 3; i++) rec[FILES + i] = sub[i];
    expect_keys(s, "lvl100", false, rec, FILES);
    expect_keys(s, "lvl100/", false, rec, FILES);
    expect_keys(s, "lvl100//", true, rec, FILES + 3);
    expect_keys(s, "lvl100/sub", false, (const char *[]){"x"}, 1);
    expect_keys(s, "lvl100/sub", true, (const char *[]){"x", "deep/y"}, 2);
    expect_keys(s, "/", false, (const char *[]){"abs"}, 1);
    expect_keys(s, "/", true, (const char *[]){"abs", "abs/in"}, 2);
    expect_keys(s, "a", true, (const char *[]){"b/c/d"}, 1);
    expect_keys(s, "a/b", false, NULL, 0);
    expect_no_folder(s, "lvl1");
    expect_no_folder(s, "top");
    /* removed keys leave their folders; a folder left with no key is no folder, and
     * lists again once filled */
    assert_int_equal(asset_mem_remove(s, "lvl100/sub/deep/y"), ASSET_OK);
    assert_int_equal(asset_mem_remove(s, "lvl100/sub/x"), ASSET_OK);
    assert_int_equal(asset_mem_remove(s, "a/b/c/d"), ASSET_OK);
    rec[FILES] = "/z";
    expect_keys(s, "lvl100", true, rec, FILES + 1);
    expect_no_folder(s, "lvl100/sub");
    expect_no_folder(s, "a");
    assert_int_equal(asset_mem_put(s, "a/b/c/e", "e", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "a/b/c/e", "ee", 2), ASSET_OK);
    expect_keys(s, "a", true, (const char *[]){"b/c/e"}, 1);
    expect_keys(s, "a/b/c", false, (const char *[]){"e"}, 1);
    asset_server_destroy(s);
}

/* "Replacing a key bumps its version, so the next load re-parses": a load made after
 * asset_mem_put() returned joined a load of the key whose read had taken the old bytes
 * (its parse still running) and got the old value; after asset_mem_remove() too, where
 * it must fail E_NOT_FOUND. */
static void test_a_load_after_a_put_never_joins_a_read_of_the_old_bytes(void **state) {
    (void)state;
    for (int remove = 0; remove < 2; remove++) {
        asset_server_t *s = tu_server(2);
        tu_parse_gate_t g;
        tu_parse_gate_register(s, &g);
        assert_int_equal(asset_mem_put(s, "k.gated", "old", 3), ASSET_OK);
        asset_handle_t *a = asset_server_load(s, "mem://k.gated", NULL);
        tu_parse_gate_wait_entered(&g, 1); /* a's read is over: its parse has the old bytes */
        if (remove)
            assert_int_equal(asset_mem_remove(s, "k.gated"), ASSET_OK);
        else
            assert_int_equal(asset_mem_put(s, "k.gated", "new", 3), ASSET_OK);
        asset_handle_t *b = asset_server_load(s, "mem://k.gated", NULL);
        tu_parse_gate_open(&g);
        assert_int_equal(asset_handle_wait(a, 60000), ASSET_OK);
        asset_status_t st = asset_handle_wait(b, 60000);
        char got[16] = "";
        if (st == ASSET_OK) snprintf(got, sizeof got, "%s", (const char *)asset_handle_value(b));
        asset_stats_t stats;
        asset_server_stats(s, &stats);
        asset_handle_release(a);
        asset_handle_release(b);
        asset_server_destroy(s);
        tu_parse_gate_destroy(&g);
        if (remove) {
            if (st != ASSET_E_NOT_FOUND)
                fail_msg("a load after the remove: %s '%s'", asset_err_name(st), got);
        } else {
            assert_int_equal(st, ASSET_OK);
            if (strcmp(got, "new")) fail_msg("a load after the put got '%s'", got);
        }
        assert_int_equal(stats.coalesced, 0);
        /* nor does the read of the removed bytes leave its value cached (it did, charged
         * against the budget until the LRU evicted it) */
        if (remove && stats.bytes_cached != 0)
            fail_msg("the removed key's value cached: %llu bytes",
                     (unsigned long long)stats.bytes_cached);
    }
}

/* A mem:// listing held after it took its keys (asset__mem_listed_hook): the first of
 * folder "held"'s only, once armed. */
static struct {
    uv_mutex_t mu;
    uv_cond_t cond;
    bool armed, entered, open;
} held;

static void hold_listing(const char *path) {
    if (strcmp(path, "held")) return;
    uv_mutex_lock(&held.mu);
    if (held.armed) {
        held.armed = false;
        held.entered = true;
        uv_cond_broadcast(&held.cond);
        while (!held.open)
            if (uv_cond_timedwait(&held.cond, &held.mu, 60000000000ull)) break;
    }
    uv_mutex_unlock(&held.mu);
}

/* Whether the keys the batch of a folder load listed are the n of want, all loaded. */
static void expect_children(asset_batch_t *b, const char *const *want, size_t n, const char *what) {
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    bool ok = asset_batch_total(b) == n && asset_batch_failed_count(b) == 0;
    for (size_t i = 0; ok && i < n; i++)
        ok = !strcmp(asset_handle_uri(asset_batch_handle(b, i)), want[i]);
    if (!ok) {
        for (size_t i = 0; i < asset_batch_total(b); i++)
            print_message("  got %s\n", asset_handle_uri(asset_batch_handle(b, i)));
        fail_msg("%s: want %zu children", what, n);
    }
}

/* "A load made after the put or remove returned never joins a load ... whose read took
 * the old bytes" held for a key, not for its folder: a folder load made after
 * asset_mem_put("held/x") returned joined a listing of "held" that had taken its keys
 * before the put, and its batch had no "held/x" (after a remove, a child that failed
 * E_NOT_FOUND). A put or remove marked the loads of its own key only. A listing not
 * begun is still joined: it lists after the put. */
static void test_a_folder_load_after_a_put_never_joins_a_listing_before_it(void **state) {
    (void)state;
    for (int remove = 0; remove < 2; remove++) {
        uv_mutex_init(&held.mu);
        uv_cond_init(&held.cond);
        held.armed = true;
        held.entered = held.open = false;
        asset__mem_listed_hook = hold_listing;
        asset_server_t *s = tu_server(1);
        if (s->nworkers == 0) { /* the single-threaded web build: no worker to hold */
            asset_server_destroy(s);
            asset__mem_listed_hook = NULL;
            skip();
            return;
        }
        assert_int_equal(asset_mem_put(s, "held/a", "A", 1), ASSET_OK);
        if (remove) assert_int_equal(asset_mem_put(s, "held/x", "X", 1), ASSET_OK);
        asset_batch_t *a = asset_server_load_folder(s, "mem://held", NULL);
        uv_mutex_lock(&held.mu);
        while (!held.entered)
            assert_int_equal(uv_cond_timedwait(&held.cond, &held.mu, 60000000000ull), 0);
        uv_mutex_unlock(&held.mu);
        if (remove)
            assert_int_equal(asset_mem_remove(s, "held/x"), ASSET_OK);
        else
            assert_int_equal(asset_mem_put(s, "held/x", "X", 1), ASSET_OK);
        asset_batch_t *b = asset_server_load_folder(s, "mem://held", NULL);
        /* b's listing waits for the one worker: a load made now joins it, as it lists
         * after the put */
        asset_batch_t *c = asset_server_load_folder(s, "mem://held", NULL);
        asset_stats_t st;
        asset_server_stats(s, &st);
        assert_int_equal(st.coalesced, 1);
        uv_mutex_lock(&held.mu);
        held.open = true;
        uv_cond_broadcast(&held.cond);
        uv_mutex_unlock(&held.mu);
        const char *both[] = {"mem://held/a", "mem://held/x"};
        if (remove) {
            asset_batch_wait(a, 60000); /* listed both; its held/x failed or not */
            expect_children(b, both, 1, "a folder load after the remove");
            expect_children(c, both, 1, "one that joined it");
        } else {
            expect_children(a, both, 1, "the folder load before the put");
            expect_children(b, both, 2, "a folder load after the put");
            expect_children(c, both, 2, "one that joined it");
        }
        asset_batch_release(c);
        asset_batch_release(a);
        asset_batch_release(b);
        asset_server_destroy(s);
        asset__mem_listed_hook = NULL;
        uv_cond_destroy(&held.cond);
        uv_mutex_destroy(&held.mu);
    }
}

static void last_error(int level, const char *msg, void *user) {
    if (level == ASSET_LOG_ERROR) snprintf(user, 256, "%s", msg);
}

/* A key that ends in '/' ("d/") was stored, and listed under "mem://d" as a child with
 * an empty name, whose URI "mem://d/" is also the folder's own spelling (a folder load
 * of it lists d). Such a key is refused, E_INVALID, and the log says why; the store and
 * its folders are unchanged. */
static void test_a_key_ending_in_a_slash_is_refused(void **state) {
    (void)state;
    char msg[256] = "";
    asset_server_config_t cfg = {.log = last_error, .user = msg};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    assert_int_equal(asset_mem_put(s, "d/a", "A", 1), ASSET_OK);
    const char *bad[] = {"d/", "d/sub/", "/", "d//", "x/"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        msg[0] = 0;
        int rc = asset_mem_put(s, bad[i], "B", 1);
        if (rc != ASSET_E_INVALID || !strstr(msg, "ends in '/'") || !strstr(msg, bad[i]))
            fail_msg("key '%s': %s, log '%s'", bad[i], asset_err_name(rc), msg);
        assert_int_equal(asset_mem_remove(s, bad[i]), ASSET_E_NOT_FOUND);
    }
    for (int recursive = 0; recursive < 2; recursive++) {
        asset_load_options_t o = {0};
        o.non_recursive = !recursive;
        asset_batch_t *b = asset_server_load_folder(s, "mem://d", &o);
        expect_children(b, (const char *[]){"mem://d/a"}, 1, "the folder of refused keys");
        asset_batch_release(b);
    }
    asset_batch_t *b = asset_server_load_folder(s, "mem://x", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_NOT_FOUND);
    asset_batch_release(b);
    asset_server_destroy(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_then_load_gives_the_bytes),
        cmocka_unit_test(test_put_copies_the_data),
        cmocka_unit_test(test_empty_value_loads_with_size_zero),
        cmocka_unit_test(test_percent_encoded_uri_finds_decoded_key),
        cmocka_unit_test(test_replace_same_length_gives_new_bytes),
        cmocka_unit_test(test_unchanged_key_is_a_cache_hit),
        cmocka_unit_test(test_a_watched_key_put_again_reloads_its_live_handle),
        cmocka_unit_test(test_remove_then_load_is_not_found),
        cmocka_unit_test(test_invalid_arguments_are_rejected),
        cmocka_unit_test(test_a_key_no_uri_can_name_is_refused),
        cmocka_unit_test(test_store_is_per_server),
        cmocka_unit_test(test_destroy_frees_stored_values),
        cmocka_unit_test(test_concurrent_puts_while_loading),
        cmocka_unit_test(test_concurrent_remove_while_loading_is_found_or_not_found),
        cmocka_unit_test(test_a_size_that_cannot_be_allocated_is_no_memory),
        cmocka_unit_test(test_a_folder_with_a_trailing_slash_loads_its_keys),
        cmocka_unit_test(test_the_store_root_is_no_folder),
        cmocka_unit_test(test_a_folder_with_no_key_under_it_is_not_found),
        cmocka_unit_test(test_listing_a_folder_looks_only_at_its_keys),
        cmocka_unit_test(test_a_load_after_a_put_never_joins_a_read_of_the_old_bytes),
        cmocka_unit_test(test_a_folder_load_after_a_put_never_joins_a_listing_before_it),
        cmocka_unit_test(test_a_key_ending_in_a_slash_is_refused),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
