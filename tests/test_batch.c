/* test_batch.c - batch handles: groups, folders (file, pkg, mem) and manifests (file,
 * pkg, mem, http), counts, callbacks, cancel, progress, values by URI, integrity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "internal.h"
#include "sha256.h"
#include "test_util.h"
#include "tu_http.h"
#include "tu_os.h"

typedef struct counts {
    int items, done;
    asset_batch_t *last;
} counts_t;

static void on_item(asset_batch_t *b, asset_handle_t *h, void *user) {
    counts_t *c = user;
    assert_true(asset_handle_is_done(h));
    c->items++;
    c->last = b;
}

static void on_done(asset_batch_t *b, void *user) {
    counts_t *c = user;
    assert_true(asset_batch_is_done(b));
    c->done++;
}

static void put_mem(asset_server_t *s, const char *key, const char *text) {
    assert_int_equal(asset_mem_put(s, key, text, strlen(text)), ASSET_OK);
}

/* A batch hears of each child with the lock held (a locked callback, batch.c): it must
 * let go of it around the user's callbacks, which may call anything, and leave the
 * child's own callbacks to fire after it. A lock kept would deadlock here. */
typedef struct api_calls {
    asset_server_t *s;
    int items, done, handle_cbs;
    float progress_seen;
} api_calls_t;

static void item_calls_api(asset_batch_t *b, asset_handle_t *h, void *user) {
    api_calls_t *c = user;
    c->items++;
    c->progress_seen = asset_batch_progress(b);
    /* exactly 1 only once done: the last child's item callbacks come before the batch's
     * end, with every child counted (a progress of 1 there said done too early) */
    assert_false(asset_batch_is_done(b));
    assert_true(c->progress_seen < 1.0f);
    assert_int_equal(asset_batch_completed_count(b), (size_t)c->items);
    assert_non_null(asset_handle_value(h));
    asset_handle_t *other = asset_server_load(c->s, "mem://other", NULL); /* takes the lock */
    assert_non_null(other);
    asset_handle_release(other);
}

static void done_calls_api(asset_batch_t *b, void *user) {
    api_calls_t *c = user;
    c->done++;
    assert_int_equal(asset_batch_completed_count(b), 3);
    assert_true(asset_batch_progress(b) == 1.0f);
}

static void child_cb_after_batch(asset_handle_t *h, void *user) {
    api_calls_t *c = user;
    assert_true(asset_handle_is_done(h));
    c->handle_cbs++;
    assert_true(c->items >= c->handle_cbs); /* the batch heard of this child first */
}

static void test_group_callbacks_may_call_the_api_while_children_are_delivered(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "a", "aaa");
    put_mem(s, "b", "bbbb");
    put_mem(s, "c", "ccccc");
    put_mem(s, "other", "o");
    const char *uris[] = {"mem://a", "mem://b", "mem://c"};
    asset_batch_t *b = asset_server_load_group(s, uris, 3, NULL);
    assert_non_null(b);
    api_calls_t c = {.s = s};
    assert_true(asset_batch_on_item_completed(b, item_calls_api, &c) != 0);
    assert_true(asset_batch_on_completed(b, done_calls_api, &c) != 0);
    for (size_t i = 0; i < 3; i++)
        assert_true(asset_handle_on_completed(asset_batch_handle(b, i), child_cb_after_batch, &c) !=
                    0);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    asset_server_flush(s);
    assert_int_equal(c.items, 3);
    assert_int_equal(c.done, 1);
    assert_int_equal(c.handle_cbs, 3);
    assert_true(c.progress_seen > 0.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_group_counts_and_callbacks_fire_once_each(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "a", "aaa");
    put_mem(s, "b", "bbbb");
    const char *uris[] = {"mem://a", "mem://b", "mem://missing", "bad://x"};
    asset_batch_t *b = asset_server_load_group(s, uris, 4, NULL);
    assert_non_null(b);
    counts_t c = {0};
    assert_true(asset_batch_on_item_completed(b, on_item, &c) != 0);
    assert_true(asset_batch_on_completed(b, on_done, &c) != 0);
    assert_int_equal(asset_batch_total(b), 4);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(c.items, 4);
    assert_int_equal(c.done, 1);
    assert_int_equal(asset_batch_completed_count(b), 2);
    assert_int_equal(asset_batch_failed_count(b), 2);
    assert_int_equal(asset_batch_cancelled_count(b), 0);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_server_flush(s);
    asset_server_flush(s);
    assert_int_equal(c.items, 4);
    assert_int_equal(c.done, 1);
    assert_int_equal(asset_handle_error(asset_batch_handle(b, 2)), ASSET_E_NOT_FOUND);
    assert_null(asset_batch_handle(b, 4));
    /* late connect fires at the next flush, once */
    counts_t late = {0};
    asset_batch_on_completed(b, on_done, &late);
    assert_int_equal(late.done, 0);
    asset_server_flush(s);
    assert_int_equal(late.done, 1);
    asset_server_flush(s);
    assert_int_equal(late.done, 1);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A group's children are made a slice at a time (src/load.c: one critical section for
 * a run of cache hits, one for the rest): child i is still uris[i] whatever mix of
 * hits, misses, joins, failures and labels the slices hold, across slice boundaries. */
static void test_group_children_keep_their_order_across_slices_of_hits_and_misses(void **state) {
    (void)state;
    enum { N = 150 };
    asset_server_t *s = asset_server_create(NULL);
    /* an embedded table: pkg:// is immutable, so a cached child is a cache hit */
    static char names[N][16], texts[N][16];
    asset_embedded_file_t files[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        snprintf(texts[i], sizeof texts[i], "value %d", i);
        files[i] =
            (asset_embedded_file_t){names[i], (const unsigned char *)texts[i], strlen(texts[i])};
    }
    assert_int_equal(asset_server_mount_embedded(s, "t", files, N), ASSET_OK);
    /* what kind child i is: 0 a hit (cached by the warm-up), 1 not cached yet (a job),
     * 2 missing, 3 no such scheme, 4 invalid (NULL), 5 a load of the same key as child
     * i - 1 (a hit after a hit; after a job, it joins it, or hits if it is done); the
     * first ASSET__LOAD_SLICE + 8 are hits, a run longer than a slice */
    static const int pattern[] = {0, 1, 5, 2, 0, 5, 3, 4, 1, 1, 5, 0, 0};
    enum { NP = sizeof pattern / sizeof pattern[0] };
    int kind[N];
    char *uris[N];
    const char *warm[N];
    size_t nwarm = 0, hits = 0;
    for (int i = 0; i < N; i++) {
        kind[i] = i < ASSET__LOAD_SLICE + 8 ? 0 : pattern[i % NP];
        int k = kind[i] == 5 ? i - 1 : i;
        uris[i] = malloc(48);
        switch (kind[i]) {
        case 2: snprintf(uris[i], 48, "pkg://t/missing%d", i); break;
        case 3: snprintf(uris[i], 48, "nosuch://x%d", i); break;
        case 4:
            free(uris[i]);
            uris[i] = NULL;
            break;
        default: snprintf(uris[i], 48, "pkg://t/k%d", k); break;
        }
        if (kind[i] == 0) warm[nwarm++] = uris[i];
        if (kind[i] == 0 || (kind[i] == 5 && kind[i - 1] == 0)) hits++;
    }
    asset_batch_t *w = asset_server_load_group(s, warm, nwarm, NULL);
    assert_int_equal(asset_batch_wait(w, 60000), ASSET_OK);
    asset_batch_release(w);
    asset_stats_t before, after;
    asset_server_stats(s, &before);
    asset_batch_t *b = asset_server_load_group(s, (const char *const *)uris, N, NULL);
    assert_non_null(b);
    assert_int_equal(asset_batch_count(b), N);
    asset_batch_wait(b, 60000);
    assert_true(asset_batch_is_done(b));
    asset_server_stats(s, &after);
    /* a join may be a hit instead when the job it follows ended first */
    assert_true(after.cache_hits - before.cache_hits >= hits);
    for (int i = 0; i < N; i++) {
        asset_handle_t *h = asset_batch_handle(b, i);
        assert_non_null(h);
        if (uris[i]) assert_string_equal(asset_handle_uri(h), uris[i]);
        static const asset_status_t want[] = {ASSET_OK,          ASSET_OK,        ASSET_E_NOT_FOUND,
                                              ASSET_E_NO_SOURCE, ASSET_E_INVALID, ASSET_OK};
        assert_int_equal(asset_handle_error(h), want[kind[i]]);
        if (want[kind[i]] != ASSET_OK) continue;
        const char *text = texts[kind[i] == 5 ? i - 1 : i];
        const asset_bytes_t *v = asset_handle_value(h);
        assert_non_null(v);
        assert_int_equal(v->size, strlen(text));
        assert_memory_equal(v->data, text, v->size);
    }
    asset_batch_release(b);
    for (int i = 0; i < N; i++) free(uris[i]);
    asset_server_destroy(s);
}

static void test_empty_group_completes_at_next_flush(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    asset_batch_t *b = asset_server_load_group(s, NULL, 0, NULL);
    counts_t c = {0};
    asset_batch_on_completed(b, on_done, &c);
    assert_int_equal(asset_server_flush(s), 0); /* handles dispatched: none (a batch step
                                                 * is not one; it was counted) */
    assert_int_equal(c.done, 1);
    assert_true(asset_batch_is_done(b));
    assert_int_equal(asset_batch_total(b), 0);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_cancel_batch_midway_counts_add_up(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    put_mem(s, "x", "x");
    put_mem(s, "y", "y");
    const char *uris[] = {"mem://x", "mem://y", "gate://1", "gate://2", "gate://3"};
    asset_batch_t *b = asset_server_load_group(s, uris, 5, NULL);
    assert_int_equal(asset_handle_wait(asset_batch_handle(b, 0), 60000), ASSET_OK);
    assert_int_equal(asset_handle_wait(asset_batch_handle(b, 1), 60000), ASSET_OK);
    tu_gate_wait_entered(g, 2); /* both workers are inside the gate */
    assert_false(asset_batch_is_done(b));
    asset_batch_cancel(b);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    assert_int_equal(asset_batch_cancelled_count(b), 3);
    assert_int_equal(asset_batch_completed_count(b) + asset_batch_failed_count(b) +
                         asset_batch_cancelled_count(b),
                     asset_batch_total(b));
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* A group whose first delivered child's item callback releases the batch's last
 * reference and cancels it: the batch lives until its done callback fired, the other
 * children are CANCELLED (a result decided but not delivered yet included: a cancel
 * still wins it), each callback fires once, and the batch's counts and the server's
 * stats agree, duplicates and failures among the children. (no defect: coverage) */
typedef struct self_release {
    int items, done;
    size_t loaded, failed, cancelled, total;
} self_release_t;

static void release_and_cancel_item(asset_batch_t *b, asset_handle_t *h, void *user) {
    self_release_t *r = user;
    assert_true(asset_handle_is_done(h));
    if (r->items++ == 0) {
        asset_batch_release(b); /* the last reference */
        asset_batch_cancel(b);
    }
}

static void record_done(asset_batch_t *b, void *user) {
    self_release_t *r = user;
    r->done++;
    r->loaded = asset_batch_completed_count(b);
    r->failed = asset_batch_failed_count(b);
    r->cancelled = asset_batch_cancelled_count(b);
    r->total = asset_batch_total(b);
    assert_true(asset_batch_progress(b) == 1.0f);
}

static void test_a_batch_released_and_cancelled_in_its_item_callback_ends_once(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "a", "aaa");
    put_mem(s, "b", "bbbb");
    const char *uris[] = {"mem://a",       "mem://a", "mem://b",
                          "mem://missing", "mem://a", "mem://missing"};
    asset_stats_t st0, st1;
    asset_server_stats(s, &st0);
    asset_batch_t *b = asset_server_load_group(s, uris, 6, NULL);
    self_release_t r = {0};
    assert_true(asset_batch_on_item_completed(b, release_and_cancel_item, &r) != 0);
    assert_true(asset_batch_on_completed(b, record_done, &r) != 0);
    TU_FLUSH_UNTIL(s, r.done == 1); /* b is freed after it: not touched from here on */
    for (int i = 0; i < 2; i++) asset_server_flush(s);
    assert_int_equal(r.done, 1);
    assert_int_equal(r.items, 6);
    assert_int_equal(r.total, 6);
    assert_int_equal(r.loaded + r.failed, 1); /* the first delivered: a or b, or missing */
    assert_int_equal(r.cancelled, 5);
    asset_server_stats(s, &st1);
    assert_int_equal(st1.completed - st0.completed, r.loaded);
    assert_int_equal(st1.failed - st0.failed, r.failed);
    assert_int_equal(st1.cancelled - st0.cancelled, r.cancelled);
    /* a cancelled child's read may still be on its worker: it ends there */
    TU_SPIN_UNTIL((asset_server_stats(s, &st1), st1.pending + st1.loading == 0));
    asset_server_destroy(s); /* ASan: the batch was freed once, nothing leaked */
}

static void test_release_before_done_still_completes_callbacks(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "k", "v");
    const char *uris[] = {"mem://k"};
    asset_batch_t *b = asset_server_load_group(s, uris, 1, NULL);
    counts_t c = {0};
    asset_batch_on_completed(b, on_done, &c);
    asset_handle_t *h = asset_handle_retain(asset_batch_handle(b, 0));
    asset_batch_release(b); /* the batch lives on until done */
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_OK);
    asset_server_flush(s);
    assert_int_equal(c.done, 1);
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* A slice of a group's misses makes its jobs in one block (src/uri.c: a slab), which
 * the last of them frees: a job held while its siblings finish and are freed keeps its
 * URI, one too long for the block (past 512 bytes) is made on its own beside it, a
 * duplicate joins and a missing file fails. Under ASan a sibling's block is poisoned
 * once freed, and an early free of the slab is a use after free.
 * (no defect: coverage) */
static void test_group_misses_share_a_block_that_their_last_job_frees(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char rel[700] = "", seg[201];
    memset(seg, 'd', 200);
    seg[200] = 0;
    for (int i = 0; i < 3; i++) { /* three directories of 200 bytes: a 600-byte path */
        strcat(rel, seg);
        strcat(rel, "/");
    }
    strcat(rel, "long.txt");
    char *a = tu_write_file(dir, "a.txt", "aa", 2), *b = tu_write_file(dir, "b.txt", "bbb", 3);
    char *l = tu_write_file(dir, rel, "long", 4), *missing = tu_path(dir, "missing.txt");
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    const char *uris[] = {"gate://held", a, l, a, missing, b};
    asset_batch_t *batch = asset_server_load_group(s, uris, 6, NULL);
    assert_non_null(batch);
    tu_gate_wait_entered(g, 1);
    /* the files end while the gate's job waits: their jobs are freed (returned, then
     * freed by the thread that flushes) */
    asset_status_t want[] = {ASSET_OK, ASSET_OK, ASSET_OK, ASSET_E_NOT_FOUND, ASSET_OK};
    for (size_t i = 1; i < 6; i++)
        assert_int_equal(asset_handle_wait(asset_batch_handle(batch, i), 60000), want[i - 1]);
    asset_server_flush(s);
    assert_false(asset_batch_is_done(batch));
    tu_gate_open(g);
    assert_int_equal(asset_batch_wait(batch, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(batch), 5);
    assert_int_equal(asset_batch_failed_count(batch), 1);
    assert_string_equal(asset_handle_uri(asset_batch_handle(batch, 0)), "gate://held");
    tu_expect_bytes(asset_batch_handle(batch, 0), "held", 4); /* its path, read last */
    tu_expect_bytes(asset_batch_handle(batch, 1), "aa", 2);
    tu_expect_bytes(asset_batch_handle(batch, 2), "long", 4);
    tu_expect_bytes(asset_batch_handle(batch, 3), "aa", 2);
    tu_expect_bytes(asset_batch_handle(batch, 5), "bbb", 3);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.coalesced, 1); /* the second a.txt joined the first */
    asset_batch_release(batch);
    asset_server_destroy(s);
    tu_gate_free(g);
    tu_rmrf(dir);
    free(a);
    free(b);
    free(l);
    free(missing);
    free(dir);
}

static void make_tree(const char *dir) {
    free(tu_write_file(dir, "b.txt", "bee", 3));
    free(tu_write_file(dir, "a.txt", "a", 1));
    free(tu_write_file(dir, "sub/c.json", "{\"c\": 3}", 8));
    free(tu_write_file(dir, "sub/deeper/d.txt", "dddd", 4));
}

static void test_folder_file_recursive_sorted_and_values_by_uri(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    make_tree(dir);
    asset_server_t *s = asset_server_create(NULL);
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    assert_int_equal(asset_batch_total(b), 0); /* not listed yet */
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 4);
    assert_int_equal(asset_batch_completed_count(b), 4);
    const char *want[] = {"a.txt", "b.txt", "sub/c.json", "sub/deeper/d.txt"};
    for (size_t i = 0; i < 4; i++) {
        char *p = tu_path(dir, want[i]);
        char *u = tu_file_uri(p);
        assert_string_equal(asset_handle_uri(asset_batch_handle(b, i)), u);
        assert_non_null(asset_batch_value(b, u));       /* normalised URI */
        assert_non_null(asset_batch_value(b, p));       /* bare path */
        assert_non_null(asset_batch_value(b, want[i])); /* relative to the folder */
        free(u);
        free(p);
    }
    const asset_bytes_t *bee = asset_batch_value(b, "b.txt");
    assert_int_equal(bee->size, 3);
    assert_null(asset_batch_value(b, "nope.txt"));
    asset_batch_release(b);

    asset_load_options_t o = {0};
    o.non_recursive = true;
    b = asset_server_load_folder(s, dir, &o);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 2);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
}

static void test_folder_empty_completes_and_missing_fails_with_message(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    asset_server_t *s = asset_server_create(NULL);
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    counts_t c = {0};
    asset_batch_on_completed(b, on_done, &c);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 0);
    assert_int_equal(c.done, 1);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);

    char *missing = tu_path(dir, "no/such/dir");
    b = asset_server_load_folder(s, missing, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_NOT_FOUND);
    assert_true(asset_batch_is_done(b));
    assert_int_equal(asset_batch_total(b), 0);
    assert_non_null(strstr(asset_batch_error_message(b), "no/such/dir"));
    asset_batch_release(b);

    b = asset_server_load_folder(s, "http://127.0.0.1:1/dir", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_UNSUPPORTED);
    asset_batch_release(b);
    asset_server_destroy(s);
    free(missing);
    tu_rmrf(dir);
    free(dir);
}

/* A listed file's name is the file's own: its '%' and '#' are not escapes or labels. */
static void expect_child_text(asset_batch_t *b, size_t i, const char *text) {
    asset_handle_t *h = asset_batch_handle(b, i);
    if (asset_handle_state(h) != ASSET_STATE_LOADED)
        fail_msg("child %zu (%s): %s", i, asset_handle_uri(h), asset_handle_error_message(h));
    const asset_bytes_t *v = asset_handle_value(h);
    assert_int_equal(v->size, strlen(text));
    assert_memory_equal(v->data, text, v->size);
}

static void test_folder_names_with_percent_and_hash_load_their_own_files(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "100%.txt", "pct", 3));
    free(tu_write_file(dir, "a%41.txt", "a41", 3));
    free(tu_write_file(dir, "aA.txt", "aA", 2));
    free(tu_write_file(dir, "b#c.txt", "bc", 2));
    asset_server_t *s = asset_server_create(NULL);
    assert_int_equal(asset_server_mount(s, "game", dir), ASSET_OK);
    put_mem(s, "lvl/50%", "half");
    put_mem(s, "lvl/x#y", "xy");
    char *pkg_uri = NULL;
    for (int pass = 0; pass < 2; pass++) { /* file://, then the same files through pkg:// */
        asset_batch_t *b = asset_server_load_folder(s, pass ? "pkg://game" : dir, NULL);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        assert_int_equal(asset_batch_completed_count(b), 4);
        expect_child_text(b, 0, "pct"); /* listed in byte order */
        expect_child_text(b, 1, "a41");
        expect_child_text(b, 2, "aA");
        expect_child_text(b, 3, "bc");
        /* by name: a reference first (a%41 is aA), else the name as listed */
        const asset_bytes_t *v = asset_batch_value(b, "100%.txt");
        assert_non_null(v);
        assert_memory_equal(v->data, "pct", 3);
        assert_non_null(v = asset_batch_value(b, "b#c.txt"));
        assert_memory_equal(v->data, "bc", 2);
        assert_non_null(v = asset_batch_value(b, "a%2541.txt"));
        assert_memory_equal(v->data, "a41", 3);
        if (pass) pkg_uri = strdup(asset_handle_uri(asset_batch_handle(b, 3)));
        asset_batch_release(b);
    }
    assert_string_equal(pkg_uri, "pkg://game/b%23c.txt");
    free(pkg_uri);
    asset_batch_t *b = asset_server_load_folder(s, "mem://lvl", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    expect_child_text(b, 0, "half");
    expect_child_text(b, 1, "xy");
    asset_batch_release(b);
    /* a folder has no label: the '#' of its URI is a character of its name, as %23 */
    put_mem(s, "d#x/a", "in d#x");
    put_mem(s, "d/b", "in d");
    for (int pass = 0; pass < 2; pass++) {
        b = asset_server_load_folder(s, pass ? "mem://d%23x" : "mem://d#x", NULL);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        assert_int_equal(asset_batch_completed_count(b), 1);
        expect_child_text(b, 0, "in d#x");
        asset_batch_release(b);
    }
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
}

static void test_folder_mem_and_pkg(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    make_tree(dir);
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "lvl/one", "1");
    put_mem(s, "lvl/two", "22");
    put_mem(s, "lvl/sub/three", "333");
    put_mem(s, "other", "x");
    asset_batch_t *b = asset_server_load_folder(s, "mem://lvl", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 3);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), "mem://lvl/one");
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 1)), "mem://lvl/sub/three");
    assert_non_null(asset_batch_value(b, "mem://lvl/two"));
    asset_batch_release(b);

    assert_int_equal(asset_server_mount(s, "game", dir), ASSET_OK);
    b = asset_server_load_folder(s, "pkg://game/sub", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 2);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), "pkg://game/sub/c.json");
    assert_non_null(asset_batch_value(b, "pkg://game/sub/deeper/d.txt"));
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
}

/* The URI index is made by the first lookup; children added after it (a folder's
 * listing expands at a later flush) must be found too. */
static void test_value_lookup_before_the_children_exist_finds_them_later(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "late/one", "1");
    put_mem(s, "late/two", "22");
    asset_batch_t *b = asset_server_load_folder(s, "mem://late", NULL);
    /* no flush yet: the listing has not expanded, there is no child to find */
    assert_int_equal(asset_batch_total(b), 0);
    assert_null(asset_batch_value(b, "mem://late/two"));
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 2);
    const asset_bytes_t *two = asset_batch_value(b, "mem://late/two");
    assert_non_null(two);
    assert_memory_equal(two->data, "22", 2);
    assert_non_null(asset_batch_value(b, "one")); /* relative to the folder */
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_manifest_relative_entries_resolve_for_file_and_pkg(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    make_tree(dir);
    const char *m = "{\"assets\": [\"a.txt\", {\"uri\": \"sub/c.json\", \"priority\": \"high\"},"
                    " \"sub/deeper/../deeper/d.txt\"]}";
    free(tu_write_file(dir, "manifest.json", m, strlen(m)));
    asset_server_t *s = asset_server_create(NULL);
    char *mp = tu_path(dir, "manifest.json");
    asset_batch_t *b = asset_server_load_manifest(s, mp, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 3);
    assert_int_equal(asset_batch_completed_count(b), 3);
    char *p = tu_path(dir, "sub/deeper/d.txt");
    char *u = tu_file_uri(p);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 2)), u);
    assert_non_null(asset_batch_value(b, "a.txt")); /* as written in the manifest */
    asset_batch_release(b);

    assert_int_equal(asset_server_mount(s, "pk", dir), ASSET_OK);
    b = asset_server_load_manifest(s, "pkg://pk/manifest.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 3);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 1)), "pkg://pk/sub/c.json");
    asset_batch_release(b);

    /* a bare array, in mem:// */
    put_mem(s, "packs/m.json", "[\"one\", \"../two\"]");
    put_mem(s, "packs/one", "1");
    put_mem(s, "two", "2");
    b = asset_server_load_manifest(s, "mem://packs/m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 1)), "mem://two");
    asset_batch_release(b);
    asset_server_destroy(s);
    free(u);
    free(p);
    free(mp);
    tu_rmrf(dir);
    free(dir);
}

static void test_manifest_over_http_resolves_against_its_url(void **state) {
    (void)state;
    tu_nginx_t n;
    if (!tu_nginx_start(&n)) {
        print_message("nginx unavailable: skipped\n");
        skip();
    }
    /* "/abs.txt" from the server's root: below the URL prefix of a shared nginx */
    const char *sub = strchr(n.base + strlen("http://"), '/');
    char m[256];
    snprintf(m, sizeof m, "{\"assets\": [\"data/x.txt\", \"%s/abs.txt\"]}", sub ? sub : "");
    free(tu_write_file(n.root, "packs/manifest.json", m, strlen(m)));
    free(tu_write_file(n.root, "packs/data/x.txt", "xx", 2));
    free(tu_write_file(n.root, "abs.txt", "abs", 3));
    asset_server_t *s = asset_server_create(NULL);
    char *url = tu_nginx_url(&n, "packs/manifest.json");
    asset_batch_t *b = asset_server_load_manifest(s, url, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    char *x = tu_nginx_url(&n, "packs/data/x.txt");
    char *a = tu_nginx_url(&n, "abs.txt");
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), x);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 1)), a);
    asset_batch_release(b);
    asset_server_destroy(s);
    free(x);
    free(a);
    free(url);
    tu_nginx_stop(&n);
}

static void test_manifest_sha256_verified(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "good", "trusted bytes");
    put_mem(s, "evil", "tampered bytes");
    char good[65], wrong[65];
    asset__sha256_hex("trusted bytes", 13, good);
    asset__sha256_hex("original bytes", 14, wrong);
    char m[512];
    snprintf(m, sizeof m,
             "{\"assets\": [{\"uri\": \"good\", \"sha256\": \"%s\"},"
             " {\"uri\": \"evil\", \"sha256\": \"%s\"}]}",
             good, wrong);
    put_mem(s, "m.json", m);
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 1);
    assert_int_equal(asset_batch_failed_count(b), 1);
    asset_handle_t *evil = asset_batch_handle(b, 1);
    assert_int_equal(asset_handle_error(evil), ASSET_E_INTEGRITY);
    assert_non_null(strstr(asset_handle_error_message(evil), "sha256 mismatch"));
    assert_non_null(strstr(asset_handle_error_message(evil), "mem://evil"));
    /* a cached, unverified copy is not trusted for a load that asks for a digest */
    asset_batch_release(b);
    asset_handle_t *plain = asset_server_load(s, "mem://evil", NULL);
    assert_int_equal(tu_wait(plain), ASSET_OK);
    b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_handle_error(asset_batch_handle(b, 1)), ASSET_E_INTEGRITY);
    asset_batch_release(b);
    asset_handle_release(plain);
    asset_server_destroy(s);
}

/* Thirty-first review (coverage): a digest in upper-case hex, which the manifest check
 * accepts (is_hex64), is compared without regard to case: compared as it was, every such
 * entry failed ASSET_E_INTEGRITY on bytes that match. */
static void test_manifest_sha256_in_upper_case_matches(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    put_mem(s, "good", "trusted bytes");
    char good[65];
    asset__sha256_hex("trusted bytes", 13, good);
    for (char *c = good; *c; c++)
        if (*c >= 'a' && *c <= 'f') *c = (char)(*c - 'a' + 'A');
    char m[256];
    snprintf(m, sizeof m, "[{\"uri\": \"good\", \"sha256\": \"%s\"}]", good);
    put_mem(s, "m.json", m);
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    asset_handle_t *h = asset_batch_handle(b, 0);
    if (asset_handle_state(h) != ASSET_STATE_LOADED)
        fail_msg("%s: %s", good, asset_handle_error_message(h));
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* Thirty-first review (coverage): of two children of one URI (here loaded by two
 * loaders), asset_batch_value answers with the first LOADED one's, as the header says,
 * not the last's. */
static void test_batch_value_of_a_uri_twice_is_the_first_childs(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    put_mem(s, "a.json", "[1]");
    put_mem(s, "m.json",
            "[{\"uri\": \"mem://a.json\"}, {\"uri\": \"mem://a.json\", \"loader\": \"bytes\"}]");
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    const void *first = asset_handle_value(asset_batch_handle(b, 0));
    assert_ptr_not_equal(first, asset_handle_value(asset_batch_handle(b, 1)));
    assert_ptr_equal(asset_batch_value(b, "mem://a.json"), first);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A group of two children, mem://a.gated and mem://b.gated, whose parses wait at g
 * (registered on s here: tu_parse_gate_destroy it after s). */
static asset_batch_t *gated_pair(asset_server_t *s, tu_parse_gate_t *g) {
    tu_parse_gate_register(s, g);
    assert_int_equal(asset_mem_put(s, "a.gated", "abc", 3), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b.gated", "def", 3), ASSET_OK);
    const char *uris[] = {"mem://a.gated", "mem://b.gated"};
    return asset_server_load_group(s, uris, 2, NULL);
}

/* Thirty-first review (coverage): a child in flight counts below 1 in its batch's
 * progress, however many of its bytes were read (two children: under one half while the
 * first parses); and the progress never goes back: that child cancelled (0 until the
 * flush delivers it) leaves it where it was. */
static void test_batch_progress_counts_a_child_in_flight_below_one_and_never_falls(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_parse_gate_t g;
    asset_batch_t *b = gated_pair(s, &g);
    tu_parse_gate_wait_entered(&g, 1); /* one parses, every byte read; the other waits */
    float p = asset_batch_progress(b);
    if (!(p > 0.0f && p < 0.5f)) fail_msg("progress %f: one child parsing, one queued", (double)p);
    for (int i = 0; i < 2; i++) asset_handle_cancel(asset_batch_handle(b, i));
    float q = asset_batch_progress(b); /* no flush yet: nothing delivered */
    if (q < p) fail_msg("progress fell from %f to %f", (double)p, (double)q);
    tu_parse_gate_open(&g);
    asset_batch_wait(b, 60000);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
}

/* Thirty-first review (coverage): every child in flight counts in the progress (the
 * first PROGRESS_WINDOW unfinished ones), not the first alone: two children parsing, every
 * byte of both read, is near 1, not near one half. */
static void test_batch_progress_counts_every_child_in_flight(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    tu_parse_gate_t g;
    asset_batch_t *b = gated_pair(s, &g);
    tu_parse_gate_wait_entered(&g, 2); /* both parse, every byte read */
    float p = asset_batch_progress(b);
    if (!(p > 0.9f && p < 1.0f)) fail_msg("progress %f: both children parsing", (double)p);
    tu_parse_gate_open(&g);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
}

/* A source whose listing says it began (entered) and waits for release, listing nothing. */
typedef struct held_list {
    uv_sem_t entered, release;
} held_list_t;

static asset_status_t held_list(void *ctx, const char *uri, asset_list_t *out) {
    (void)uri;
    (void)out;
    held_list_t *h = ctx;
    uv_sem_post(&h->entered);
    uv_sem_wait(&h->release);
    return ASSET_OK;
}

static asset_status_t held_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    return asset_request_fail(r, ASSET_E_NOT_FOUND, "nothing to read");
}

/* A one-worker server with the "held" source, whose listing h holds (entered, release). */
static asset_server_t *held_server(held_list_t *h) {
    asset_server_t *s = tu_server(1);
    assert_int_equal(uv_sem_init(&h->entered, 0), 0);
    assert_int_equal(uv_sem_init(&h->release, 0), 0);
    asset_source_t src = {ASSET_SOURCE_ABI, "held", 0, held_read, held_list, NULL};
    assert_int_equal(asset_server_register_source(s, &src, h), ASSET_OK);
    return s;
}

static void held_server_destroy(asset_server_t *s, held_list_t *h) {
    asset_server_destroy(s);
    uv_sem_destroy(&h->entered);
    uv_sem_destroy(&h->release);
}

/* Thirty-first review (coverage): asset_batch_cancel cancels a folder's listing in flight
 * too: the batch is done (CANCELLED) at once, while the source still lists. Without it,
 * the batch waited for a listing nobody wanted. */
static void test_cancelling_a_folder_ends_it_while_its_listing_runs(void **state) {
    (void)state;
    held_list_t h;
    asset_server_t *s = held_server(&h);
    asset_batch_t *b = asset_server_load_folder(s, "held://dir", NULL);
    uv_sem_wait(&h.entered);
    asset_batch_cancel(b);
    asset_status_t st = asset_batch_wait(b, 60000);
    uv_sem_post(&h.release);
    assert_int_equal(st, ASSET_E_CANCELLED); /* done, not timed out */
    assert_true(asset_batch_is_done(b));
    asset_batch_release(b);
    held_server_destroy(s, &h);
}

/* Thirty-eighth review (coverage): two loads of one folder while its listing runs share
 * that listing (a folder's load is no_cache, which joins only a job not yet reading, but a
 * listing joins as before): with one worker, a second listing would wait behind the first. */
static void test_two_loads_of_a_folder_share_its_listing_in_flight(void **state) {
    (void)state;
    held_list_t h;
    asset_server_t *s = held_server(&h);
    asset_batch_t *a = asset_server_load_folder(s, "held://dir", NULL);
    uv_sem_wait(&h.entered); /* the listing runs */
    asset_batch_t *b = asset_server_load_folder(s, "held://dir", NULL);
    asset_stats_t st;
    asset_server_stats(s, &st);
    uint64_t coalesced = st.coalesced;
    /* twice: a second listing, if one was made, must not wait for ever */
    uv_sem_post(&h.release);
    uv_sem_post(&h.release);
    assert_int_equal(asset_batch_wait(a, 60000), ASSET_OK);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(coalesced, 1);
    asset_batch_release(a);
    asset_batch_release(b);
    held_server_destroy(s, &h);
}

/* Fortieth review: a file changed under a folder whose listing runs (the server told of
 * it: asset_server_invalidate, as asset_mem_put is) makes that listing one no later
 * folder load joins: it may have taken the names before the change. A listing made
 * after it is joined as before, and one a change does not touch (another folder; a
 * non-recursive listing of a folder two levels up) too. Before, only mem:// puts were
 * seen, by a check of the mem:// source in the core. */
static void test_a_folder_load_after_an_invalidate_never_joins_a_listing_before_it(void **state) {
    (void)state;
    held_list_t h;
    asset_server_t *s = held_server(&h);
    const asset_load_options_t flat = {.non_recursive = true};
    asset_batch_t *b[4];
    for (int flat_pass = 0; flat_pass < 2; flat_pass++) {
        const asset_load_options_t *o = flat_pass ? &flat : NULL;
        asset_stats_t st;
        asset_server_stats(s, &st);
        uint64_t before = st.coalesced;
        b[0] = asset_server_load_folder(s, "held://dir", o);
        uv_sem_wait(&h.entered); /* its listing runs on the one worker */
        asset_server_invalidate(s, "held://other/x");
        asset_server_invalidate(s, "held://dirx/y");
        /* two levels down: in a recursive listing of dir, not in a flat one */
        asset_server_invalidate(s, "held://dir/sub/y");
        b[1] = asset_server_load_folder(s, "held://dir", o);
        asset_server_stats(s, &st);
        assert_int_equal(st.coalesced - before, flat_pass ? 1 : 0);
        asset_server_invalidate(s, "held://dir/y"); /* in either */
        b[2] = asset_server_load_folder(s, "held://dir", o);
        b[3] = asset_server_load_folder(s, "held://dir", o); /* joins b[2], queued */
        asset_server_stats(s, &st);
        /* recursive: b[2] and b[3] joined b[1], still queued; flat: b[3] joined b[2] */
        assert_int_equal(st.coalesced - before, 2);
        uv_sem_post(&h.release);
        uv_sem_wait(&h.entered); /* the second listing, b[1]'s or b[2]'s */
        uv_sem_post(&h.release);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(asset_batch_wait(b[i], 60000), ASSET_OK);
            asset_batch_release(b[i]);
        }
    }
    held_server_destroy(s, &h);
}

/* Forty-first review: a folder spelt with more than one trailing '/' ("src://dir//", a
 * folder every source lists as "src://dir") was a listing of its own, which a change in
 * the folder did not find (the mark looks up the folder and the folder plus one '/'): a
 * later load of that spelling joined a listing begun before the change and missed it.
 * Now a folder load's URI loses its trailing slashes: every spelling is one listing. */
static void test_a_folder_spelt_with_trailing_slashes_is_one_listing_a_change_finds(void **state) {
    (void)state;
    held_list_t h;
    asset_server_t *s = held_server(&h);
    asset_stats_t st;
    asset_batch_t *b[4];
    b[0] = asset_server_load_folder(s, "held://dir//", NULL);
    /* its listing runs on the one worker, held */
    uv_sem_wait(&h.entered);
    b[1] = asset_server_load_folder(s, "held://dir", NULL); /* the same folder: joins it */
    asset_server_stats(s, &st);
    uint64_t joined_spelling = st.coalesced;
    asset_server_invalidate(s, "held://dir/y");
    b[2] = asset_server_load_folder(s, "held://dir//", NULL); /* after the change: lists */
    asset_server_stats(s, &st);
    uint64_t joined_before_change = st.coalesced - joined_spelling;
    b[3] = asset_server_load_folder(s, "held://dir///", NULL); /* joins b[2]'s, queued */
    asset_server_stats(s, &st);
    uint64_t joined_after = st.coalesced - joined_spelling - joined_before_change;
    /* as many as were made (one a listing, and none would wait for ever without the fix) */
    for (int i = 0; i < 4; i++) uv_sem_post(&h.release);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(asset_batch_wait(b[i], 60000), ASSET_OK);
        asset_batch_release(b[i]);
    }
    assert_int_equal(joined_spelling, 1);
    assert_int_equal(joined_before_change, 0);
    assert_int_equal(joined_after, 1);
    held_server_destroy(s, &h);
}

/* Flushes (a flush takes a manifest's steps: its children are made) until n reads have
 * entered g, for at most a minute; whether they did. */
static bool flush_until_entered(asset_server_t *s, tu_gate_t *g, int n) {
    for (int i = 0; i < 60000; i++) {
        asset_server_flush(s);
        if (tu_gate_wait_entered_for(g, n, 1)) return true;
    }
    return false;
}

/* Thirty-eighth review (coverage): a load pinned to a digest joins a read in flight only
 * when that read checks the same digest: one pinned to another digest (a second manifest
 * of the same URI, made while the first's read runs) fails its own check, and is not
 * handed the bytes the first verified against its digest. */
static void test_a_load_pinned_to_another_digest_joins_no_read_in_flight(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    tu_gate_t *g = tu_gate_register(s, "gate");
    char good[65], wrong[65], m[256];
    asset__sha256_hex("x", 1, good); /* gate://x reads "x" */
    asset__sha256_hex("y", 1, wrong);
    snprintf(m, sizeof m, "[{\"uri\": \"gate://x\", \"sha256\": \"%s\"}]", good);
    put_mem(s, "good.json", m);
    snprintf(m, sizeof m, "[{\"uri\": \"gate://x\", \"sha256\": \"%s\"}]", wrong);
    put_mem(s, "wrong.json", m);
    asset_batch_t *a = asset_server_load_manifest(s, "mem://good.json", NULL);
    bool first = flush_until_entered(s, g, 1); /* its child reads, held at the gate */
    asset_batch_t *b = asset_server_load_manifest(s, "mem://wrong.json", NULL);
    bool second = first && flush_until_entered(s, g, 2); /* the other's reads on its own */
    tu_gate_open(g);
    assert_true(second);
    assert_int_equal(asset_batch_wait(a, 60000), ASSET_OK);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_handle_state(asset_batch_handle(a, 0)), ASSET_STATE_LOADED);
    asset_handle_t *h = asset_batch_handle(b, 0);
    assert_int_equal(asset_handle_error(h), ASSET_E_INTEGRITY);
    assert_non_null(strstr(asset_handle_error_message(h), "sha256 mismatch"));
    asset_batch_release(a);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void expect_bad_manifest(asset_server_t *s, const char *text, asset_status_t st,
                                const char *needle) {
    put_mem(s, "bad.json", text);
    asset_batch_t *b = asset_server_load_manifest(s, "mem://bad.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), st);
    assert_int_equal(asset_batch_total(b), 0);
    const char *msg = asset_batch_error_message(b);
    if (!strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    asset_batch_release(b);
}

static void test_malformed_manifests_fail_with_useful_messages(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    expect_bad_manifest(s, "{\"assets\": [\"a\",", ASSET_E_PARSE, "line 1");
    expect_bad_manifest(s, "{\"assets\": 5}", ASSET_E_PARSE, "expected");
    expect_bad_manifest(s, "{\"files\": []}", ASSET_E_PARSE, "assets");
    expect_bad_manifest(s, "[\"ok\", 42]", ASSET_E_PARSE, "entry 1");
    /* an escaped NUL would cut the entry short: "mem://secret.txt" for this one */
    expect_bad_manifest(s, "[\"mem://secret.txt\\u0000.png\"]", ASSET_E_PARSE, "u0000 at line 1");
    expect_bad_manifest(s, "[{\"size\": 3}]", ASSET_E_PARSE, "entry 0: missing \"uri\"");
    expect_bad_manifest(s, "[{\"uri\": 7}]", ASSET_E_PARSE, "\"uri\" must be a string");
    expect_bad_manifest(s, "[{\"uri\": \"a\", \"size\": \"big\"}]", ASSET_E_PARSE, "\"size\"");
    expect_bad_manifest(s, "[{\"uri\": \"a\", \"priority\": \"urgent\"}]", ASSET_E_PARSE,
                        "\"priority\"");
    expect_bad_manifest(s, "[{\"uri\": \"a\", \"sha256\": \"abc\"}]", ASSET_E_PARSE, "64 hex");
    char m65[128]; /* 65 hex digits: a digest with one too many is no SHA-256 either */
    snprintf(m65, sizeof m65, "[{\"uri\": \"a\", \"sha256\": \"%s0\"}]",
             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    expect_bad_manifest(s, m65, ASSET_E_PARSE, "64 hex");
    expect_bad_manifest(s, "[\"\"]", ASSET_E_PARSE, "empty");
    asset_batch_t *b = asset_server_load_manifest(s, "mem://absent.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_NOT_FOUND);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* An entry's keys outside the known ones were ignored silently: "Sha256" (a capital)
 * turned the integrity check its author asked for off, and the entry loaded whatever
 * bytes came. A key that differs from a known one only by case fails the manifest,
 * naming it; any other unknown key is logged (ASSET_LOG_WARN), naming the key, the entry
 * and the manifest, once per manifest, with how many there were. */
typedef struct warn_log {
    int warns;
    char first[1024];
} warn_log_t;
static void warn_log(int level, const char *msg, void *user) {
    warn_log_t *l = user;
    if (level != ASSET_LOG_WARN || !strstr(msg, "unknown key")) return;
    if (!l->warns++) snprintf(l->first, sizeof l->first, "%s", msg);
}

static void test_an_entrys_unknown_keys_are_not_ignored_silently(void **state) {
    (void)state;
    warn_log_t l = {0};
    asset_server_config_t cfg = {.log = warn_log, .user = &l};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    put_mem(s, "a.txt", "tampered");
    char good[65];
    asset__sha256_hex("original", 8, good);
    char text[512];
    snprintf(text, sizeof text, "[{\"uri\": \"mem://a.txt\", \"Sha256\": \"%s\"}]", good);
    expect_bad_manifest(s, text, ASSET_E_PARSE,
                        "entry 0 (mem://a.txt): unknown key \"Sha256\" (did you mean \"sha256\"?)");
    expect_bad_manifest(s, "[{\"URI\": \"mem://a.txt\"}]", ASSET_E_PARSE,
                        "entry 0: unknown key \"URI\" (did you mean \"uri\"?)");
    assert_int_equal(l.warns, 0);
    /* other keys load, and are said once */
    put_mem(s, "m.json",
            "[\"mem://a.txt\", {\"uri\": \"mem://a.txt\", \"hash\": \"x\", \"note\": 1},"
            " {\"uri\": \"mem://a.txt\", \"note\": 2}]");
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 3);
    asset_batch_release(b);
    assert_int_equal(l.warns, 1);
    const char *want = "mem://m.json: manifest: entry 1 (mem://a.txt): unknown key \"hash\" "
                       "ignored; 3 unknown keys in 2 entries";
    if (!strstr(l.first, want)) fail_msg("log '%s' lacks '%s'", l.first, want);
    asset_server_destroy(s);
}

/* A manifest's "size" past the largest one read (9e15 bytes, exact in a double) failed
 * the manifest with "\"size\" must be a non-negative number", which it was: the message
 * now names the range. */
static void test_a_manifest_size_out_of_range_names_the_range(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    expect_bad_manifest(s, "[{\"uri\": \"a\", \"size\": 1e16}]", ASSET_E_PARSE,
                        "entry 0 (a): \"size\" must be a number of bytes from 0 to 9e15");
    expect_bad_manifest(s, "[{\"uri\": \"a\", \"size\": -1}]", ASSET_E_PARSE, "from 0 to 9e15");
    expect_bad_manifest(s, "[{\"uri\": \"a\", \"size\": null}]", ASSET_E_PARSE, "from 0 to 9e15");
    asset_server_destroy(s);
}

static void expect_manifest(asset_server_t *s, const char *uri, asset_status_t st,
                            const char *needle, const char *needle2);

/* A manifest entry's error was formatted into 512 bytes beside the entry's URI: an
 * entry with a long URI lost the reason, the part a user needs ("entry 0
 * (aaaa...aaa" and nothing more). */
static void test_a_long_entry_uri_keeps_the_reason_of_its_error(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    size_t n = 2000;
    char *long_uri = malloc(n + 1);
    assert_non_null(long_uri);
    memset(long_uri, 'a', n);
    long_uri[n] = '\0';
    char *text = malloc(n + 200);
    assert_non_null(text);
    snprintf(text, n + 200, "[{\"uri\": \"%s\", \"priority\": \"urgent\"}]", long_uri);
    expect_bad_manifest(s, text, ASSET_E_PARSE,
                        "\"priority\" must be \"high\", \"normal\" or \"low\"");
    /* the scheme rule's refusal names the entry twice, its scheme and the config */
    snprintf(text, n + 200, "[\"file:///%s\"]", long_uri);
    put_mem(s, "far.json", text);
    expect_manifest(s, "mem://far.json", ASSET_E_FORBIDDEN, "see config.manifest_schemes", NULL);
    free(text);
    free(long_uri);
    asset_server_destroy(s);
}
/* A loader whose parse of a URI containing "/s" waits until the test opens it. */
typedef struct parse_gate {
    uv_mutex_t mu;
    uv_cond_t cv;
    bool open;
} parse_gate_t;

static asset_status_t gated_parse(void *ctx, asset_parse_t *p) {
    parse_gate_t *g = ctx;
    if (strstr(asset_parse_uri(p), "/s")) {
        uv_mutex_lock(&g->mu);
        while (!g->open) uv_cond_wait(&g->cv, &g->mu);
        uv_mutex_unlock(&g->mu);
    }
    size_t n = asset_parse_size(p);
    void *d = asset_parse_take_data(p);
    if (!d) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, d, n);
    return ASSET_OK;
}

/* A folder's children carry the sizes its listing gave, slice after slice (they are
 * made ASSET__LOAD_SLICE at a time): with one big child loaded and more small ones than
 * a slice held in their parse, progress is by bytes (about 1), not by count (under
 * 0.02). */
static void test_folder_progress_is_byte_weighted_across_slices(void **state) {
    (void)state;
    parse_gate_t g = {.open = false};
    uv_mutex_init(&g.mu);
    uv_cond_init(&g.cv);
    asset_server_t *s = asset_server_create(NULL);
    const asset_loader_t ld = {.abi = ASSET_LOADER_ABI, .name = "gated", .parse = gated_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, &g, 0), ASSET_OK);
    char *big = calloc(1, 1 << 20);
    assert_int_equal(asset_mem_put(s, "pf/a_big", big, 1 << 20), ASSET_OK);
    free(big);
    enum { SMALL = ASSET__LOAD_SLICE + 8 };
    for (int i = 0; i < SMALL; i++) {
        char key[32];
        snprintf(key, sizeof key, "pf/s%02d", i);
        assert_int_equal(asset_mem_put(s, key, "0123456789abcdef", 16), ASSET_OK);
    }
    /* an empty file has a known size, 0: it leaves the weighting by bytes */
    assert_int_equal(asset_mem_put(s, "pf/zero", "", 0), ASSET_OK);
    asset_load_options_t o = {.loader = "gated"};
    asset_batch_t *b = asset_server_load_folder(s, "mem://pf", &o);
    tu_wait_queued(s, 1); /* the listing: flushes expand it */
    for (int i = 0; i < 100 && asset_batch_total(b) < SMALL + 2; i++) asset_server_flush(s);
    assert_int_equal(asset_batch_total(b), SMALL + 2);
    asset_handle_t *h0 = asset_batch_handle(b, 0); /* the listing's order: a_big first */
    assert_string_equal(asset_handle_uri(h0), "mem://pf/a_big");
    assert_int_equal(asset_handle_wait(h0, 60000), ASSET_OK);
    float p = asset_batch_progress(b);
    print_message("  progress with the big child loaded: %.4f\n", (double)p);
    assert_true(p > 0.99f);
    assert_true(p < 1.0f);
    uv_mutex_lock(&g.mu);
    g.open = true;
    uv_cond_broadcast(&g.cv);
    uv_mutex_unlock(&g.mu);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), SMALL + 2);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
    uv_cond_destroy(&g.cv);
    uv_mutex_destroy(&g.mu);
}

static void test_progress_is_byte_weighted_and_monotonic(void **state) {
    (void)state;
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    asset_server_t *s = asset_server_create(&cfg);
    tu_gate_t *g = tu_gate_register(s, "gate");
    char *big = calloc(1, 1 << 20);
    assert_int_equal(asset_mem_put(s, "big", big, 1 << 20), ASSET_OK);
    free(big);
    /* the big child is done while the small one is held at the gate */
    put_mem(s, "m.json",
            "{\"assets\": [{\"uri\": \"mem://big\", \"size\": 1048576, \"priority\": \"high\"},"
            " {\"uri\": \"gate://small\", \"size\": 1024, \"priority\": \"low\"}]}");
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    float last = asset_batch_progress(b);
    assert_true(last == 0.0f);
    while (asset_batch_total(b) == 0 || !asset_handle_is_done(asset_batch_handle(b, 0))) {
        asset_server_flush(s);
        float p = asset_batch_progress(b);
        assert_true(p >= last);
        last = p;
        if (asset_batch_total(b)) asset_handle_wait(asset_batch_handle(b, 0), 60000);
    }
    float p = asset_batch_progress(b);
    assert_true(p > 0.99f); /* by count it would be 0.5 */
    assert_true(p < 1.0f);
    tu_gate_open(g);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* asset_batch_progress() is called every frame: it must not walk every child. It
 * walked them all, under the server's lock (a review: 50,000 children, every frame).
 * Done children are counted where they complete; only a bounded window of the first
 * unfinished ones is looked at for their bytes in flight (the visits are counted). */
/* A manifest's sizes (each up to 9e15) were summed in 64 bits unchecked: 2,050 of
 * 9e15 wrapped to 3.3e15, so one loaded child of 9e15 read as more than the whole and
 * progress stood at 0.999 with 2,049 children still to come. */
static void test_manifest_sizes_past_64_bits_do_not_wrap_progress(void **state) {
    (void)state;
    enum { N = 2050 };
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    put_mem(s, "first0", "1");
    size_t cap = (size_t)N * 48 + 64;
    char *m = malloc(cap);
    assert_non_null(m);
    size_t len = (size_t)snprintf(m, cap, "[");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(m + len, cap - len, "%s{\"uri\": \"%s%d\", \"size\": 9e15}",
                                i ? "," : "", i ? "gate://g" : "mem://first", i);
    snprintf(m + len, cap - len, "]");
    put_mem(s, "sizes.json", m);
    free(m);
    asset_batch_t *b = asset_server_load_manifest(s, "mem://sizes.json", NULL);
    /* every child made, the first one delivered; the others wait in the gate */
    for (uint64_t deadline = uv_hrtime() + 60000000000ull;
         !(asset_batch_total(b) == N && asset_batch_completed_count(b) == 1) &&
         uv_hrtime() < deadline;)
        asset_server_flush(s);
    assert_int_equal(asset_batch_total(b), N);
    assert_int_equal(asset_batch_completed_count(b), 1);
    float p = asset_batch_progress(b);
    print_message("  progress with 1 of %d children loaded: %f\n", N, (double)p);
    assert_true(p < 0.01f);
    tu_gate_open(g);
    assert_int_equal(asset_batch_wait(b, 120000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), N);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_batch_progress_does_not_walk_every_child(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    tu_gate_t *g = tu_gate_register(s, "gate");
    enum { N = 2000 };
    static char keys[N][24];
    static const char *uris[N + 1];
    uris[0] = "gate://stuck"; /* first in the batch's order, held until the end */
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "mem://pw/k%04d", i);
        assert_int_equal(asset_mem_put(s, keys[i] + 6, "x", 1), ASSET_OK);
        uris[i + 1] = keys[i];
    }
    asset_batch_t *b = asset_server_load_group(s, uris, N + 1, NULL);
    assert_non_null(b);
    for (size_t i = 1; i <= N; i++)
        assert_int_equal(asset_handle_wait(asset_batch_handle(b, i), 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), N);
    assert_false(asset_batch_is_done(b));
    float p = asset_batch_progress(b);
    assert_true(p >= (float)N / (float)(N + 1) - 0.001f); /* by count: N of N + 1 */
    assert_true(p < 1.0f);
    uv_mutex_lock(&s->lock);
    s->batch_progress_visits = 0;
    uv_mutex_unlock(&s->lock);
    for (int i = 0; i < 100; i++) assert_true(asset_batch_progress(b) >= p);
    uv_mutex_lock(&s->lock);
    uint64_t visits = s->batch_progress_visits;
    uv_mutex_unlock(&s->lock);
    print_message("  100 calls looked at %llu children\n", (unsigned long long)visits);
    if (visits > 100 * 8) /* one unfinished child: one look per call, not N + 1 */
        fail_msg("100 calls looked at %llu children", (unsigned long long)visits);
    tu_gate_open(g);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_true(asset_batch_progress(b) == 1.0f);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_manifest_with_10000_entries(void **state) {
    (void)state;
    enum { N = 10000 };
    asset_server_t *s = asset_server_create(NULL);
    size_t cap = (size_t)N * 24 + 64;
    char *m = malloc(cap);
    size_t len = (size_t)snprintf(m, cap, "{\"assets\": [");
    for (int i = 0; i < N; i++) {
        char key[32], val[32];
        snprintf(key, sizeof key, "many/%05d", i);
        snprintf(val, sizeof val, "%d", i);
        put_mem(s, key, val);
        len += (size_t)snprintf(m + len, cap - len, "%s\"%05d\"", i ? "," : "", i);
    }
    snprintf(m + len, cap - len, "]}");
    put_mem(s, "many/manifest.json", m);
    free(m);
    counts_t c = {0};
    asset_batch_t *b = asset_server_load_manifest(s, "mem://many/manifest.json", NULL);
    asset_batch_on_item_completed(b, on_item, &c);
    assert_int_equal(asset_batch_wait(b, 120000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), N);
    assert_int_equal(asset_batch_completed_count(b), N);
    assert_int_equal(c.items, N);
    const asset_bytes_t *v = asset_batch_value(b, "mem://many/04242");
    assert_non_null(v);
    assert_string_equal((const char *)v->data, "4242");
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_disconnected_batch_callbacks_do_not_fire(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "p", "1");
    put_mem(s, "q", "2");
    const char *uris[] = {"mem://p", "mem://q"};
    asset_batch_t *b = asset_server_load_group(s, uris, 2, NULL);
    counts_t kept = {0}, gone = {0};
    asset_batch_on_item_completed(b, on_item, &kept);
    uint64_t item_id = asset_batch_on_item_completed(b, on_item, &gone);
    uint64_t done_id = asset_batch_on_completed(b, on_done, &gone);
    asset_batch_on_completed(b, on_done, &kept);
    assert_true(asset_batch_disconnect(b, item_id));
    assert_true(asset_batch_disconnect(b, done_id));
    assert_false(asset_batch_disconnect(b, done_id)); /* once */
    assert_false(asset_batch_disconnect(b, 0));
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(kept.items, 2);
    assert_int_equal(kept.done, 1);
    assert_int_equal(gone.items, 0);
    assert_int_equal(gone.done, 0);
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_destroy_with_batch_in_flight_frees_everything(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    tu_gate_t *g = tu_gate_register(s, "gate");
    const char *uris[] = {"gate://1", "gate://2", "gate://3"};
    asset_batch_t *b = asset_server_load_group(s, uris, 3, NULL);
    counts_t c = {0};
    asset_batch_on_completed(b, on_done, &c);
    tu_gate_wait_entered(g, 1);
    asset_server_destroy(s); /* batch and handles go with it; nothing fires */
    assert_int_equal(c.done, 0);
    tu_gate_free(g);
}

/* ---- folder listings never drop entries silently (issue 10, item 3) ---- */

/* Fault injection into the directory walk: step `g_fault.step` on `g_fault.rel` fails
 * with `g_fault.err`. Armed before the server exists, disarmed after it is gone. */
static struct {
    const char *step, *rel;
    int err;
} g_fault;

static int walk_fault(const char *step, const char *rel) {
    return !strcmp(step, g_fault.step) && !strcmp(rel, g_fault.rel) ? g_fault.err : 0;
}

static void arm_fault(const char *step, const char *rel, int err) {
    g_fault.step = step;
    g_fault.rel = rel;
    g_fault.err = err;
    asset__fs_walk_fault = walk_fault;
}

static void make_locked_tree(const char *dir) {
    free(tu_write_file(dir, "a.txt", "a", 1));
    free(tu_write_file(dir, "locked/x.txt", "x", 1));
    free(tu_write_file(dir, "z.txt", "z", 1));
}

/* The batch's child i has a URI ending in `tail`. */
static void expect_child(asset_batch_t *b, size_t i, const char *tail) {
    const char *u = asset_handle_uri(asset_batch_handle(b, i));
    size_t n = strlen(u), t = strlen(tail);
    if (n < t || strcmp(u + n - t, tail) != 0) fail_msg("child %zu is %s, not *%s", i, u, tail);
}

static void test_folder_subdirectory_that_cannot_be_opened_is_a_failed_child(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    make_locked_tree(dir);
    arm_fault("open", "locked", EACCES); /* as chmod 000 does for a non-root user */
    asset_server_t *s = asset_server_create(NULL);
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    /* listed (not dropped): a.txt, locked, z.txt; its load fails with a message */
    assert_int_equal(asset_batch_total(b), 3);
    assert_int_equal(asset_batch_completed_count(b), 2);
    assert_int_equal(asset_batch_failed_count(b), 1);
    expect_child(b, 1, "/locked");
    asset_handle_t *h = asset_batch_handle(b, 1);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    assert_non_null(strstr(asset_handle_error_message(h), "locked"));
    asset_batch_release(b);
    asset_server_destroy(s);
    asset__fs_walk_fault = NULL;
    tu_rmrf(dir);
    free(dir);
}

static void test_folder_entries_that_cannot_be_stat_ed_are_listed(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    make_locked_tree(dir);
    /* no permission; vanished since readdir; held without sharing (Windows:
     * pagefile.sys in a drive's root) */
    static const int errs[] = {EACCES, ENOENT, EBUSY};
    for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
        arm_fault("stat", "z.txt", errs[k]);
        asset_server_t *s = asset_server_create(NULL);
        asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        assert_int_equal(asset_batch_total(b), 3);
        expect_child(b, 2, "/z.txt");
        asset_batch_release(b);
        asset_server_destroy(s);
        asset__fs_walk_fault = NULL;
    }
    tu_rmrf(dir);
    free(dir);
}

/* A link is never a folder's entry (links, FIFOs... are left out), also when its own
 * stat fails with an error about the entry (vanished since readdir, no permission): the
 * walk keeps such an entry (its load says why) only when readdir did not call it a link.
 * A mutation survivor (the link's exception dropped, fs.c's walk_entry) passed every
 * suite: a dangling link that vanished between readdir and its stat was a failed child. */
static void test_a_link_whose_stat_fails_is_left_out_of_a_folder(void **state) {
    (void)state;
    TU_SKIP_UNLESS(tu_os_has_symlinks(), "no symlinks here");
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.txt", "a", 1));
    free(tu_write_file(dir, "z.txt", "z", 1));
    char *link = tu_path(dir, "link");
    assert_int_equal(tu_os_symlink("missing.txt", link), 0); /* dangling */
    static const int errs[] = {0, ENOENT, EACCES};           /* 0: its stat succeeds */
    for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
        if (errs[k]) arm_fault("stat", "link", errs[k]);
        asset_server_t *s = asset_server_create(NULL);
        asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        if (asset_batch_total(b) != 2)
            fail_msg("stat of the link failing with %s: %zu children, expected a.txt and z.txt",
                     errs[k] ? strerror(errs[k]) : "nothing", asset_batch_total(b));
        expect_child(b, 0, "/a.txt");
        expect_child(b, 1, "/z.txt");
        assert_int_equal(asset_batch_failed_count(b), 0);
        asset_batch_release(b);
        asset_server_destroy(s);
        asset__fs_walk_fault = NULL;
    }
    tu_rmrf(dir);
    free(link);
    free(dir);
}

static void test_folder_walk_errors_fail_the_listing_with_the_reason(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    make_locked_tree(dir);
    static const struct {
        const char *step, *rel;
        int err;
        asset_status_t want;
    } cases[] = {
        {"open", "locked", EMFILE, ASSET_E_IO},
        {"open", "locked", ENFILE, ASSET_E_IO},
        {"open", "locked", ENOMEM, ASSET_E_NO_MEMORY},
        {"readdir", "locked/", EIO, ASSET_E_IO},
        {"readdir", "", EIO, ASSET_E_IO},
        {"stat", "a.txt", EIO, ASSET_E_IO},
        {"stat", "a.txt", ENOMEM, ASSET_E_NO_MEMORY},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        arm_fault(cases[k].step, cases[k].rel, cases[k].err);
        asset_server_t *s = asset_server_create(NULL);
        asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
        asset_status_t st = asset_batch_wait(b, 60000);
        const char *msg = asset_batch_error_message(b);
        print_message("  %s %s (%s) -> %s: %s\n", cases[k].step, cases[k].rel,
                      strerror(cases[k].err), asset_err_name(st), msg);
        if (st != cases[k].want)
            fail_msg("%s '%s' failing with %s: batch %s (%zu children), expected %s", cases[k].step,
                     cases[k].rel, strerror(cases[k].err), asset_err_name(st), asset_batch_total(b),
                     asset_err_name(cases[k].want));
        assert_int_equal(asset_batch_total(b), 0);                     /* no partial listing */
        assert_non_null(strstr(msg, asset_batch_uri(b)));              /* which folder */
        assert_non_null(strstr(msg, strerror(cases[k].err)));          /* why */
        if (*cases[k].rel) assert_non_null(strstr(msg, cases[k].rel)); /* which entry */
        asset_batch_release(b);
        asset_server_destroy(s);
        asset__fs_walk_fault = NULL;
    }
    tu_rmrf(dir);
    free(dir);
}

static void test_folder_with_a_chmod_000_subdirectory_reports_it(void **state) {
    (void)state;
    /* root reads it anyway, Windows has no modes: the fault-injection tests cover this */
    TU_SKIP_UNLESS(tu_os_has_modes(), "permissions are not enforced (Windows, or root)");
    char *dir = tu_mkdtemp();
    make_locked_tree(dir);
    char *locked = tu_path(dir, "locked");
    assert_int_equal(tu_os_chmod(locked, 0), 0);
    asset_server_t *s = asset_server_create(NULL);
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 3);
    assert_int_equal(asset_batch_failed_count(b), 1);
    expect_child(b, 1, "/locked");
    assert_int_equal(asset_handle_error(asset_batch_handle(b, 1)), ASSET_E_FORBIDDEN);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_os_chmod(locked, 0755);
    free(locked);
    tu_rmrf(dir);
    free(dir);
}

static void test_folder_deeper_than_64_levels_fails_instead_of_dropping(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char rel[512] = "";
    for (int lv = 0; lv < 65; lv++) strcat(rel, "d/"); /* 65 levels below the folder */
    strcat(rel, "deep.txt");
    free(tu_write_file(dir, rel, "x", 1));
    free(tu_write_file(dir, "top.txt", "t", 1));
    asset_server_t *s = asset_server_create(NULL);
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_IO);
    assert_int_equal(asset_batch_total(b), 0);
    assert_non_null(strstr(asset_batch_error_message(b), "64 directory levels"));
    asset_batch_release(b);
    /* from dir/d the file is 64 levels down: that still lists */
    char *d = tu_path(dir, "d");
    b = asset_server_load_folder(s, d, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    assert_int_equal(asset_batch_completed_count(b), 1);
    asset_batch_release(b);
    asset_server_destroy(s);
    free(d);
    tu_rmrf(dir);
    free(dir);
}

/* ---- manifest scheme trust (config.manifest_schemes) ---- */

/* A custom scheme whose every read delivers the text ctx points at. */
static asset_status_t box_read(void *ctx, asset_request_t *r) {
    const char *const *text = ctx;
    return asset_request_write(r, *text, strlen(*text));
}

static void register_box(asset_server_t *s, const char **text) {
    asset_source_t src = {ASSET_SOURCE_ABI, "box", 0, box_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, (void *)text), ASSET_OK);
}

/* Loads the manifest uri; expects the batch status st and, when it failed, no child
 * and a message naming the manifest and containing the needles (NULL: none). */
static void expect_manifest(asset_server_t *s, const char *uri, asset_status_t st,
                            const char *needle, const char *needle2) {
    asset_batch_t *b = asset_server_load_manifest(s, uri, NULL);
    assert_non_null(b);
    asset_status_t got = asset_batch_wait(b, 60000);
    const char *msg = asset_batch_error_message(b);
    if (got != st)
        fail_msg("%s: status %s, want %s (%s)", uri, asset_err_name(got), asset_err_name(st), msg);
    if (st != ASSET_OK) {
        assert_int_equal(asset_batch_total(b), 0);
        assert_non_null(strstr(msg, asset_batch_uri(b)));
        if (needle && !strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
        if (needle2 && !strstr(msg, needle2)) fail_msg("message '%s' lacks '%s'", msg, needle2);
    }
    asset_batch_release(b);
}

static void test_http_manifest_may_not_name_local_schemes(void **state) {
    (void)state;
    tu_nginx_t n;
    if (!tu_nginx_start(&n)) {
        print_message("nginx unavailable: skipped\n");
        skip();
    }
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.txt", "local", 5));
    free(tu_write_file(n.root, "packs/ok.txt", "ok", 2));
    asset_server_t *s = asset_server_create(NULL);
    const char *box = "\"boxed\"";
    register_box(s, &box);
    assert_int_equal(asset_server_mount(s, "game", dir), ASSET_OK);
    put_mem(s, "k", "mem");
    char *local = tu_file_uri(dir);
    char *file_entry = asset__asprintf("%s/a.txt", local);
    const char *refused[] = {
        file_entry, "FILE:///etc/passwd", "pkg://game/a.txt", "mem://k", "Mem://k", "box://x"};
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++) {
        /* a good entry first: the whole manifest is refused before anything loads */
        char *m = asset__asprintf("{\"assets\": [\"ok.txt\", {\"uri\": \"%s\"}]}", refused[i]);
        char path[64];
        snprintf(path, sizeof path, "packs/m%zu.json", i);
        free(tu_write_file(n.root, path, m, strlen(m)));
        asset_free(m);
        char *url = tu_nginx_url(&n, path);
        expect_manifest(s, url, ASSET_E_FORBIDDEN, "entry 1", refused[i]);
        expect_manifest(s, url, ASSET_E_FORBIDDEN, "may not name", "manifest_schemes");
        free(url);
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.source_reads, 2 * (sizeof refused / sizeof *refused)); /* manifests */
    asset_server_destroy(s);

    /* a game that wants its CDN manifest to name packaged assets says so */
    asset_server_config_t cfg = {0};
    cfg.manifest_schemes = "default http->pkg";
    s = asset_server_create(&cfg);
    assert_int_equal(asset_server_mount(s, "game", dir), ASSET_OK);
    const char *m = "[\"ok.txt\", \"pkg://game/a.txt\"]";
    free(tu_write_file(n.root, "packs/pkg.json", m, strlen(m)));
    char *url = tu_nginx_url(&n, "packs/pkg.json");
    asset_batch_t *b = asset_server_load_manifest(s, url, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    asset_batch_release(b);
    free(url);
    url = tu_nginx_url(&n, "packs/m0.json"); /* file:// still refused */
    expect_manifest(s, url, ASSET_E_FORBIDDEN, "\"default http->pkg\"", file_entry);
    free(url);
    asset_server_destroy(s);
    asset_free(file_entry);
    free(local);
    tu_rmrf(dir);
    free(dir);
    tu_nginx_stop(&n);
}

static void test_manifest_scheme_privilege_order_by_default(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.txt", "local", 5));
    char *a = tu_path(dir, "a.txt");
    char *file_a = tu_file_uri(a);
    asset_server_t *s = asset_server_create(NULL);
    const char *box = "[]";
    register_box(s, &box);
    assert_int_equal(asset_server_mount(s, "game", dir), ASSET_OK);
    put_mem(s, "a", "mem");
    char http[64];
    snprintf(http, sizeof http, "http://127.0.0.1:%d/x", tu_closed_port());
    char m[1024];

    /* mem:// (and custom schemes, which rank with it) may not name pkg:// or file:// */
    snprintf(m, sizeof m, "[\"a\", \"%s\"]", file_a);
    put_mem(s, "m1.json", m);
    expect_manifest(s, "mem://m1.json", ASSET_E_FORBIDDEN, "entry 1", "mem:// manifests may not");
    put_mem(s, "m2.json", "[\"pkg://game/a.txt\"]");
    expect_manifest(s, "mem://m2.json", ASSET_E_FORBIDDEN, "entry 0 (pkg://game/a.txt)", "pkg://");
    snprintf(m, sizeof m, "[\"a\", \"mem://a\", \"box://x\", \"%s\"]", http);
    put_mem(s, "m3.json", m); /* same rank and below: fine (http fails later, as a child) */
    expect_manifest(s, "mem://m3.json", ASSET_OK, NULL, NULL);
    box = "[\"mem://a\", \"box://y\"]";
    expect_manifest(s, "box://b1.json", ASSET_OK, NULL, NULL);
    box = "[\"pkg://game/a.txt\"]";
    expect_manifest(s, "box://b2.json", ASSET_E_FORBIDDEN, "box:// manifests may not", "pkg://");

    /* pkg:// may name pkg, mem, custom and http, not file */
    snprintf(m, sizeof m, "[\"a.txt\", \"mem://a\", \"box://z\", \"%s\"]", http);
    free(tu_write_file(dir, "p1.json", m, strlen(m)));
    expect_manifest(s, "pkg://game/p1.json", ASSET_OK, NULL, NULL);
    snprintf(m, sizeof m, "[\"%s\"]", file_a);
    free(tu_write_file(dir, "p2.json", m, strlen(m)));
    expect_manifest(s, "pkg://game/p2.json", ASSET_E_FORBIDDEN, "pkg:// manifests may not", file_a);

    /* file:// may name anything */
    snprintf(m, sizeof m, "[\"a.txt\", \"%s\", \"pkg://game/a.txt\", \"mem://a\", \"box://w\"]",
             file_a);
    free(tu_write_file(dir, "f1.json", m, strlen(m)));
    char *f1 = tu_path(dir, "f1.json");
    asset_batch_t *b = asset_server_load_manifest(s, f1, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 5); /* a.txt twice; box://w as bytes */
    asset_batch_release(b);
    asset_server_destroy(s);
    free(f1);
    free(file_a);
    free(a);
    tu_rmrf(dir);
    free(dir);
}

/* ---- huge folders: sorted on the worker, expanded in slices (issue 10, item 4) ---- */

static void put_many(asset_server_t *s, const char *dir, int n) {
    for (int i = 0; i < n; i++) { /* unpadded: path order is not insertion order */
        char key[48];
        snprintf(key, sizeof key, "%s/%d", dir, (i * 7919) % n);
        assert_int_equal(asset_mem_put(s, key, "v", 1), ASSET_OK);
    }
}

static void test_listing_arrives_sorted_from_the_worker(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_many(s, "lst", 2000);
    /* the LIST job's value as the batch gets it: already in path order */
    asset_handle_t *h = asset__load(s, "mem://lst", NULL, NULL, true, true);
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_OK);
    const struct asset_list *l = asset_handle_value(h);
    assert_int_equal(l->count, 2000);
    for (size_t i = 1; i < l->count; i++)
        if (strcmp(l->paths[i - 1], l->paths[i]) >= 0)
            fail_msg("listing not sorted at %zu: '%s' before '%s'", i, l->paths[i - 1],
                     l->paths[i]);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_folder_of_100000_mem_keys_loads_sorted(void **state) {
    (void)state;
    const size_t N = RUNNING_ON_VALGRIND ? 20000 : 100000; /* memcheck: ~50x slower */
    asset_server_t *s = asset_server_create(NULL);
    put_many(s, "huge", (int)N);
    asset_batch_t *b = asset_server_load_folder(s, "mem://huge", NULL);
    assert_int_equal(asset_batch_wait(b, 600000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), N);
    assert_int_equal(asset_batch_completed_count(b), N);
    for (size_t i = 1; i < N; i++) {
        const char *p = asset_handle_uri(asset_batch_handle(b, i - 1));
        const char *q = asset_handle_uri(asset_batch_handle(b, i));
        if (strcmp(p, q) >= 0) fail_msg("child %zu: '%s' after '%s'", i, q, p);
    }
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_budgeted_flush_expands_a_huge_folder_in_slices(void **state) {
    (void)state;
    enum { N = 20000 };
    asset_server_t *s = asset_server_create(NULL);
    put_many(s, "big", N);
    asset_batch_t *b = asset_server_load_folder(s, "mem://big", NULL);
    tu_wait_queued(s, 1); /* the listing is in */
    /* 0: the listing or manifest delivered is the batch's, no handle of yours */
    assert_int_equal(asset_server_flush_budget(s, 1), 0);
    size_t total = asset_batch_total(b);
    /* cmocka prints with the C library's printf: msvcrt's has no %zu */
    print_message("  after one budgeted flush: %u of %d children\n", (unsigned)total, N);
    /* one step of 256, as the header says: the flush that delivered the listing made a
     * step there and took another from the batch queue, 512 (a review) */
    assert_int_equal(total, 256);
    /* and it goes on at the next budgeted flushes: each dispatches a child's completion
     * or creates the next slice, so this many calls are enough */
    size_t calls = 1, grew = 0;
    for (size_t i = 0; i < 4 * (size_t)N && asset_batch_total(b) < N; i++) {
        size_t before = asset_batch_total(b);
        asset_server_flush_budget(s, 1);
        calls++;
        grew += asset_batch_total(b) > before;
    }
    assert_int_equal(asset_batch_total(b), N);
    print_message("  all %d children after %u budgeted flushes (%u grew the batch)\n", N,
                  (unsigned)calls, (unsigned)grew);
    assert_true(grew >= 2);
    assert_int_equal(asset_batch_wait(b, 600000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), N);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* asset_server_flush() takes every step at once (the header): the flush that delivers a
 * folder's listing makes all its children, a step of 256 after another, the steps a folder
 * queues for itself after the queue's last included (they waited for the next flush). */
static void test_an_unbudgeted_flush_expands_a_whole_folder(void **state) {
    (void)state;
    enum { N = 1000 }; /* four steps */
    asset_server_t *s = asset_server_create(NULL);
    put_many(s, "whole", N);
    asset_batch_t *b = asset_server_load_folder(s, "mem://whole", NULL);
    tu_wait_queued(s, 1); /* the listing is in */
    asset_server_flush(s);
    assert_int_equal(asset_batch_total(b), N);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), N);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A manifest's children were all made by the flush that delivered it, whatever its
 * budget (a 1 ms budgeted flush took 242 ms for 100,000 entries): they are made a
 * slice per step, as a folder's, from the manifest's value (kept: a reload of the
 * manifest meanwhile swaps the handle's value, not the one being expanded). */
static void test_budgeted_flush_expands_a_huge_manifest_in_slices(void **state) {
    (void)state;
    enum { N = 20000 };
    asset_server_t *s = asset_server_create(NULL);
    size_t cap = (size_t)N * 24 + 64;
    char *m = malloc(cap);
    assert_non_null(m);
    size_t len = (size_t)snprintf(m, cap, "[");
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "mf/%05d", i);
        put_mem(s, key, "x");
        len += (size_t)snprintf(m + len, cap - len, "%s\"%05d\"", i ? "," : "", i);
    }
    snprintf(m + len, cap - len, "]");
    put_mem(s, "mf/m.json", m);
    asset_batch_t *b = asset_server_load_manifest(s, "mem://mf/m.json", NULL);
    tu_wait_queued(s, 1); /* the manifest is in */
    /* 0: the listing or manifest delivered is the batch's, no handle of yours */
    assert_int_equal(asset_server_flush_budget(s, 1), 0);
    size_t total = asset_batch_total(b);
    print_message("  after one budgeted flush: %u of %d children\n", (unsigned)total, N);
    assert_int_equal(total, 256); /* one step, as a folder's (it made two) */
    /* the manifest changes while it expands: its handle reloads, the expansion goes on
     * with the entries it validated */
    put_mem(s, "mf/m.json", "[\"00000\"]");
    asset_server_reload(s, "mem://mf/m.json");
    for (size_t i = 0; i < 4 * (size_t)N && asset_batch_total(b) < N; i++)
        asset_server_flush_budget(s, 1);
    assert_int_equal(asset_batch_total(b), N);
    assert_int_equal(asset_batch_wait(b, 600000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), N);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, N - 1)), "mem://mf/19999");
    free(m);
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_cancel_during_expansion_stops_creating_children(void **state) {
    (void)state;
    enum { N = 5000 };
    asset_server_t *s = asset_server_create(NULL);
    put_many(s, "cx", N);
    asset_batch_t *b = asset_server_load_folder(s, "mem://cx", NULL);
    counts_t c = {0};
    asset_batch_on_completed(b, on_done, &c);
    tu_wait_queued(s, 1);
    /* 0: the listing or manifest delivered is the batch's, no handle of yours */
    assert_int_equal(asset_server_flush_budget(s, 1), 0);
    size_t total = asset_batch_total(b);
    assert_true(total < N);
    asset_batch_cancel(b);
    /* cut short: E_CANCELLED, saying how far it got (it said ASSET_OK before) */
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_CANCELLED);
    char want[64];
    snprintf(want, sizeof want, "cancelled after %zu of %d entries", total, N);
    if (!strstr(asset_batch_error_message(b), want))
        fail_msg("message '%s' lacks '%s'", asset_batch_error_message(b), want);
    assert_int_equal(asset_batch_total(b), total);
    assert_int_equal(asset_batch_completed_count(b) + asset_batch_failed_count(b) +
                         asset_batch_cancelled_count(b),
                     total);
    assert_int_equal(c.done, 1);
    asset_batch_release(b);
    /* and a server destroyed while a folder is half expanded frees it all */
    b = asset_server_load_folder(s, "mem://cx", NULL);
    tu_wait_queued(s, 1);
    asset_server_flush_budget(s, 1);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A cancel that stops a folder's or manifest's expansion before every entry has its
 * child fails the batch with ASSET_E_CANCELLED (saying how many were made), as a cancel
 * before the listing or manifest arrived does. Two huge folders under budgeted flushes:
 * the first one's steps take their turns, so the second, its listing delivered, waits
 * for its first step; cancelled then, it completed with ASSET_OK, total 0 and nothing
 * cancelled: an empty folder, as far as anyone could tell. */
static void test_a_cancel_before_the_first_step_is_no_empty_success(void **state) {
    (void)state;
    enum { N = 2000 };
    asset_server_t *s = asset_server_create(NULL);
    put_many(s, "c0", N);
    put_many(s, "c1", N);
    asset_batch_t *b[2] = {asset_server_load_folder(s, "mem://c0", NULL),
                           asset_server_load_folder(s, "mem://c1", NULL)};
    tu_wait_queued(s, 2);
    asset_server_flush_budget(s, 1); /* one listing delivered, and its first step */
    asset_server_flush_budget(s, 1); /* the other listing; the first folder's next step */
    size_t waiting = asset_batch_total(b[0]) ? 1 : 0;
    assert_int_equal(asset_batch_total(b[1 - waiting]), 512);
    assert_int_equal(asset_batch_total(b[waiting]), 0);
    asset_batch_cancel(b[waiting]);
    assert_int_equal(asset_batch_wait(b[waiting], 60000), ASSET_E_CANCELLED);
    assert_int_equal(asset_batch_total(b[waiting]), 0);
    const char *msg = asset_batch_error_message(b[waiting]);
    if (!strstr(msg, "cancelled")) fail_msg("message '%s'", msg);
    assert_true(asset_batch_progress(b[waiting]) == 1.0f);
    assert_int_equal(asset_batch_wait(b[1 - waiting], 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b[1 - waiting]), N);
    asset_batch_release(b[0]);
    asset_batch_release(b[1]);
    /* a manifest cut short says so too, counting its entries */
    char *m = malloc((size_t)N * 12 + 8);
    assert_non_null(m);
    size_t len = (size_t)sprintf(m, "[");
    for (int i = 0; i < N; i++) len += (size_t)sprintf(m + len, "%s\"c0/%d\"", i ? "," : "", i);
    sprintf(m + len, "]");
    put_mem(s, "c.json", m);
    free(m);
    asset_batch_t *mb = asset_server_load_manifest(s, "mem://c.json", NULL);
    tu_wait_queued(s, 1);
    asset_server_flush_budget(s, 1);
    assert_int_equal(asset_batch_total(mb), 256);
    asset_batch_cancel(mb);
    assert_int_equal(asset_batch_wait(mb, 60000), ASSET_E_CANCELLED);
    msg = asset_batch_error_message(mb);
    if (!strstr(msg, "mem://c.json: cancelled after 256 of 2000 entries")) fail_msg("'%s'", msg);
    asset_batch_release(mb);
    asset_server_destroy(s);
}

/* A cancel from another thread while the flush thread makes a manifest's child: the
 * child's preparation (here a loader's claims(), user code) runs without the lock, after
 * the batch last looked at its cancelled flag. The cancel returns before the child is an
 * item; the child must still end cancelled, not load. */
typedef struct claim_gate {
    uv_sem_t entered, release;
    atomic_int calls;
    asset_batch_t *b;
} claim_gate_t;

static bool blk_claims(void *ctx, const char *uri) {
    claim_gate_t *g = ctx;
    size_t n = strlen(uri);
    if (n < 4 || strcmp(uri + n - 4, ".blk") != 0) return false;
    if (atomic_fetch_add(&g->calls, 1) == 0) {
        uv_sem_post(&g->entered);
        uv_sem_wait(&g->release);
    }
    return true;
}

static asset_status_t take_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    size_t n = asset_parse_size(p);
    void *d = asset_parse_take_data(p);
    if (!d) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, d, n);
    return ASSET_OK;
}

static void cancel_when_claiming(void *arg) {
    claim_gate_t *g = arg;
    uv_sem_wait(&g->entered);
    asset_batch_cancel(g->b); /* returns before the child exists */
    uv_sem_post(&g->release);
}

static void test_cancel_while_a_manifest_child_is_made_cancels_it(void **state) {
    (void)state;
    claim_gate_t g = {.b = NULL};
    assert_int_equal(uv_sem_init(&g.entered, 0), 0);
    assert_int_equal(uv_sem_init(&g.release, 0), 0);
    asset_server_t *s = asset_server_create(NULL);
    const asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = "blk", .claims = blk_claims, .parse = take_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, &g, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "x.blk", "x", 1), ASSET_OK);
    const char *m = "[\"mem://x.blk\"]";
    assert_int_equal(asset_mem_put(s, "m.json", m, strlen(m)), ASSET_OK);
    g.b = asset_server_load_manifest(s, "mem://m.json", NULL);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, cancel_when_claiming, &g), 0);
    assert_int_equal(asset_batch_wait(g.b, 60000), ASSET_OK);
    assert_int_equal(uv_thread_join(&t), 0);
    assert_int_equal(asset_batch_total(g.b), 1);
    assert_int_equal(asset_batch_completed_count(g.b), 0);
    assert_int_equal(asset_batch_cancelled_count(g.b), 1);
    assert_int_equal(asset_handle_state(asset_batch_handle(g.b, 0)), ASSET_STATE_CANCELLED);
    asset_batch_release(g.b);
    asset_server_destroy(s);
    uv_sem_destroy(&g.entered);
    uv_sem_destroy(&g.release);
}

/* **Decision:** a manifest entry's "loader" is looked up when its child is made, as
 * options.loader is for any load, not checked with the manifest: an unknown one fails
 * that child alone (ASSET_E_NO_LOADER, "no loader named 'x'"), the others load and the
 * batch is ASSET_OK, as for an entry whose file or scheme's source is missing (the check
 * reads the manifest's own text, not what the program registered). Loaders may be
 * registered at any time, also while loads run: one registered after the manifest was
 * checked, before the child naming it was made (256 per step), is that child's. */
static asset_status_t late_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    char *v = asset_alloc(5);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    memcpy(v, "late", 5);
    asset_parse_set_value(p, v, 5);
    return ASSET_OK;
}

static void test_a_manifest_entrys_unknown_loader_fails_that_child_alone(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    enum { N = 300 };
    size_t cap = 64 + N * 16, len = 0;
    char *m = malloc(cap);
    assert_non_null(m);
    len += (size_t)snprintf(m + len, cap - len, "[{\"uri\": \"e/0000\", \"loader\": \"nope\"}");
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "e/%04d", i);
        put_mem(s, key, "x");
        if (i > 0 && i < N - 1) len += (size_t)snprintf(m + len, cap - len, ", \"%s\"", key);
    }
    snprintf(m + len, cap - len, ", {\"uri\": \"e/%04d\", \"loader\": \"late\"}]", N - 1);
    put_mem(s, "m.json", m);
    free(m);
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_non_null(b);
    tu_wait_queued(s, 1); /* the manifest */
    /* budgeted flushes: the manifest is checked, then its first step made */
    for (int i = 0; i < 10000 && asset_batch_total(b) == 0; i++) asset_server_flush_budget(s, 1);
    size_t made = asset_batch_total(b);
    assert_true(made > 0 && made < N);
    const asset_loader_t ld = {.abi = ASSET_LOADER_ABI, .name = "late", .parse = late_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_string_equal(asset_batch_error_message(b), "");
    assert_int_equal(asset_batch_total(b), N);
    assert_int_equal(asset_batch_completed_count(b), N - 1);
    assert_int_equal(asset_batch_failed_count(b), 1);
    tu_expect_end(asset_batch_handle(b, 0), ASSET_E_NO_LOADER, ASSET_STATE_FAILED,
                  "mem://e/0000: no loader named 'nope'");
    assert_int_equal(asset_handle_state(asset_batch_handle(b, 1)), ASSET_STATE_LOADED);
    assert_string_equal(asset_handle_value(asset_batch_handle(b, N - 1)), "late");
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void test_manifest_schemes_config_replaces_the_default(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.txt", "local", 5));
    char *a = tu_path(dir, "a.txt");
    char *file_a = tu_file_uri(a);
    char m[1024];
    snprintf(m, sizeof m, "[\"mem://b\", \"%s\"]", file_a);
    const struct {
        const char *rules;
        const char *manifest; /* mem:// key */
        asset_status_t st;
        const char *needle;
    } cases[] = {
        {"*->*", "file.json", ASSET_OK, NULL},
        {"mem->file", "file.json", ASSET_OK, NULL},
        {"default, mem->*", "file.json", ASSET_OK, NULL},
        {" MEM->File ", "file.json", ASSET_OK, NULL}, /* schemes are case-insensitive */
        {"mem->pkg", "file.json", ASSET_E_FORBIDDEN, "\"mem->pkg\" does not let"},
        {"default", "file.json", ASSET_E_FORBIDDEN, "entry 1"},
        {"", "http.json", ASSET_E_FORBIDDEN, "http://127.0.0.1:1/x"}, /* same scheme only */
        {"", "same.json", ASSET_OK, NULL},
        {"*->http", "http.json", ASSET_OK, NULL},
        {"mem=>file", "file.json", ASSET_E_INVALID, "cannot read rule 'mem=>file'"},
        {"default ->file", "file.json", ASSET_E_INVALID, "'->file'"},
        {"mem->", "same.json", ASSET_OK, NULL}, /* same scheme: no rule is read */
        {"mem->", "http.json", ASSET_E_INVALID, "'mem->'"},
        /* a side that is no scheme nor "*" is a rule that cannot be read: it matched
         * nothing, so the entry was refused as if the rule did not let it (a review) */
        {"mem://->file://", "file.json", ASSET_E_INVALID, "cannot read rule 'mem://->file://'"},
        {"mem->file->pkg", "file.json", ASSET_E_INVALID, "'mem->file->pkg'"},
        {"mem->*.", "file.json", ASSET_E_INVALID, "'mem->*.'"},
        {"1mem->file", "file.json", ASSET_E_INVALID, "'1mem->file'"},
        {"x-y+z.w->file default", "http.json", ASSET_OK, NULL}, /* a scheme's characters */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        asset_server_config_t cfg = {0};
        cfg.manifest_schemes = cases[i].rules;
        asset_server_t *s = asset_server_create(&cfg);
        put_mem(s, "b", "bee");
        put_mem(s, "file.json", m);
        put_mem(s, "http.json", "[\"b\", \"http://127.0.0.1:1/x\"]");
        put_mem(s, "same.json", "[\"b\", \"mem://b\"]");
        char uri[64];
        snprintf(uri, sizeof uri, "mem://%s", cases[i].manifest);
        print_message("manifest_schemes \"%s\", %s\n", cases[i].rules, uri);
        expect_manifest(s, uri, cases[i].st, cases[i].needle, NULL);
        asset_server_destroy(s);
    }
    free(file_a);
    free(a);
    tu_rmrf(dir);
    free(dir);
}

/* Group waits on three threads at once, each running its group's queued loads itself
 * (run-on-wait) over keys the groups share (so children of different groups join one
 * job), while this thread flushes: every group completes with every child. */
#define SHARED_KEYS 40
/* config.wake: the flush thread sleeps until the server (or a waiter that finished)
 * says there is something to flush, as an event-driven host would */
typedef struct kick {
    uv_mutex_t mu;
    uv_cond_t cv;
    bool pending;
} kick_t;

static void kick(void *user) {
    kick_t *k = user;
    uv_mutex_lock(&k->mu);
    k->pending = true;
    uv_cond_signal(&k->cv);
    uv_mutex_unlock(&k->mu);
}

typedef struct group_waiter {
    asset_server_t *s;
    kick_t *k;
    int offset;
    atomic_int done;
    asset_status_t st;
    size_t completed;
} group_waiter_t;

static void group_waiter_main(void *arg) {
    group_waiter_t *w = arg;
    char names[SHARED_KEYS][24];
    const char *uris[SHARED_KEYS];
    for (int i = 0; i < SHARED_KEYS; i++) {
        snprintf(names[i], sizeof names[i], "mem://k%d", (i * 7 + w->offset) % SHARED_KEYS);
        uris[i] = names[i];
    }
    asset_batch_t *b = asset_server_load_group(w->s, uris, SHARED_KEYS, NULL);
    w->st = b ? asset_batch_wait(b, 120000) : ASSET_E_NO_MEMORY;
    w->completed = asset_batch_completed_count(b);
    asset_batch_release(b);
    atomic_store(&w->done, 1);
    kick(w->k);
}

static void test_group_waits_on_several_threads_run_shared_loads(void **state) {
    (void)state;
    kick_t k = {.pending = false};
    uv_mutex_init(&k.mu);
    uv_cond_init(&k.cv);
    asset_server_config_t cfg = {.max_workers = 2, .wake = kick, .user = &k};
    asset_server_t *s = asset_server_create(&cfg);
    for (int i = 0; i < SHARED_KEYS; i++) {
        char key[16], val[16];
        snprintf(key, sizeof key, "k%d", i);
        int n = snprintf(val, sizeof val, "v%d", i);
        assert_int_equal(asset_mem_put(s, key, val, (size_t)n), ASSET_OK);
    }
    group_waiter_t w[3];
    uv_thread_t t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (group_waiter_t){.s = s, .k = &k, .offset = i * 13};
        assert_int_equal(uv_thread_create(&t[i], group_waiter_main, &w[i]), 0);
    }
    /* this thread flushes (the waiters are not the flush thread) whenever woken */
    uint64_t give_up = uv_hrtime() + 120 * (uint64_t)1000000000;
    for (bool all = false; !all && uv_hrtime() < give_up;) {
        uv_mutex_lock(&k.mu);
        if (!k.pending) (void)uv_cond_timedwait(&k.cv, &k.mu, 100000000);
        k.pending = false;
        uv_mutex_unlock(&k.mu);
        asset_server_flush(s);
        all = true;
        for (int i = 0; i < 3; i++) all = all && atomic_load(&w[i].done);
    }
    for (int i = 0; i < 3; i++) {
        uv_thread_join(&t[i]);
        assert_int_equal(w[i].st, ASSET_OK);
        assert_int_equal(w[i].completed, SHARED_KEYS);
    }
    asset_server_destroy(s);
    uv_cond_destroy(&k.cv);
    uv_mutex_destroy(&k.mu);
}

/* An item callback connected by an item callback fires for later children only: it
 * fired for the child being delivered, and one that connected another each time
 * looped for ever inside the flush (found by a review). */
static int g_item_calls;
static void rearming_item(asset_batch_t *b, asset_handle_t *h, void *user) {
    (void)h;
    (void)user;
    if (++g_item_calls < 1000) asset_batch_on_item_completed(b, rearming_item, NULL);
}

static void test_an_item_callback_connected_by_one_waits_for_the_next_child(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_int_equal(asset_mem_put(s, "a.txt", "a", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b.txt", "b", 1), ASSET_OK);
    const char *one[] = {"mem://a.txt"};
    g_item_calls = 0;
    asset_batch_t *b = asset_server_load_group(s, one, 1, NULL);
    assert_true(asset_batch_on_item_completed(b, rearming_item, NULL) != 0);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(g_item_calls, 1);
    asset_batch_release(b);
    /* two children, one at a time: the first child's callback connects a second,
     * which fires for the second child (with the first): 1 + 2 calls */
    const char *two[] = {"mem://a.txt", "mem://b.txt"};
    g_item_calls = 0;
    b = asset_server_load_group(s, two, 2, NULL);
    assert_true(asset_batch_on_item_completed(b, rearming_item, NULL) != 0);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(g_item_calls, 3);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A flush with a budget gives batches a step even when it delivered handles and spent
 * its budget: a folder expanding and a done batch's callback starved for good under a
 * stream of results (found by a review: a folder stuck at 256 children of 1,000). */
static void count_done(asset_batch_t *b, void *user) {
    (void)b;
    (*(int *)user)++;
}

static void test_a_small_budget_under_a_stream_of_results_does_not_starve_batches(void **state) {
    (void)state;
    enum { N = 1000 };
    asset_server_t *s = asset_server_create(NULL);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "dir/f%04d.txt", i);
        assert_int_equal(asset_mem_put(s, key, "x", 1), ASSET_OK);
    }
    asset_batch_t *folder = asset_server_load_folder(s, "mem://dir", NULL);
    asset_batch_t *empty = asset_server_load_group(s, NULL, 0, NULL);
    int done = 0;
    assert_true(asset_batch_on_completed(empty, count_done, &done) != 0);
    /* frames until both are through, for at most 30 s: the folder's listing runs on a
     * worker, which a loaded machine may take long to get to */
    uint64_t deadline = uv_hrtime() + 30000000000ull;
    while (!(done && asset_batch_total(folder) == N) && uv_hrtime() < deadline) {
        /* a result in every frame: a load that fails at once (no such scheme) */
        asset_handle_release(asset_server_load(s, "nosuch://x", NULL));
        asset_server_flush_budget(s, 1);
    }
    assert_int_equal(done, 1);
    assert_int_equal(asset_batch_total(folder), N); /* all made (one handle a frame) */
    assert_int_equal(asset_batch_wait(folder, 30000), ASSET_OK);
    asset_batch_release(folder);
    asset_batch_release(empty);
    asset_server_destroy(s);
}

/* A mem:// key is taken as written: a folder's children are its keys under the folder,
 * "..", "." and empty segments included. The listed names were resolved as paths, so
 * the child for "d/../secret" loaded the key "secret", outside the folder (a review). */
static void test_a_mem_folders_children_are_its_keys_as_written(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_int_equal(asset_mem_put(s, "secret", "outside", 7), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "x", "outside", 7), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "d/../secret", "dotdot", 6), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "d/./x", "dot", 3), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "d//y", "empty", 5), ASSET_OK);
    asset_load_options_t o = {.loader = "bytes"};
    asset_batch_t *b = asset_server_load_folder(s, "mem://d", &o);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(asset_batch_count(b), 3);
    assert_int_equal(asset_batch_completed_count(b), 3);
    const char *want[] = {"dotdot", "dot", "empty"};
    const char *names[] = {"../secret", "./x", "/y"};
    for (int i = 0; i < 3; i++) {
        const asset_bytes_t *v = asset_batch_value(b, names[i]);
        assert_non_null(v);
        assert_int_equal(v->size, strlen(want[i]));
        assert_memory_equal(v->data, want[i], v->size);
    }
    for (size_t i = 0; i < 3; i++) {
        const asset_bytes_t *v = asset_handle_value(asset_batch_handle(b, i));
        assert_false(v->size == 7 && !memcmp(v->data, "outside", 7));
    }
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A mem:// folder named with a trailing slash ("mem://d/"): its listing takes it for d
 * (the mem source drops trailing slashes), but the children were made as the folder's
 * URI + "/" + name, "mem://d//a", a key that is not there: every child failed
 * NOT_FOUND while the batch said ASSET_OK. */
static void test_a_mem_folder_with_a_trailing_slash_loads_its_keys(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "d/a", "A");
    put_mem(s, "d/sub/b", "BB");
    put_mem(s, "d//c", "CCC");
    put_mem(s, "/e", "EEEE");
    const char *folders[] = {"mem://d/", "mem://d//", "mem://d"};
    for (int f = 0; f < 3; f++) {
        asset_batch_t *b = asset_server_load_folder(s, folders[f], NULL);
        assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
        assert_int_equal(asset_batch_total(b), 3);
        for (size_t i = 0; i < 3; i++)
            if (asset_handle_state(asset_batch_handle(b, i)) != ASSET_STATE_LOADED)
                fail_msg("%s: child %s: %s", folders[f], asset_handle_uri(asset_batch_handle(b, i)),
                         asset_handle_error_message(asset_batch_handle(b, i)));
        assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), "mem://d//c");
        assert_string_equal(asset_handle_uri(asset_batch_handle(b, 1)), "mem://d/a");
        assert_non_null(asset_batch_value(b, "a")); /* relative to the folder, as listed */
        assert_non_null(asset_batch_value(b, "sub/b"));
        assert_non_null(asset_batch_value(b, "/c"));
        asset_batch_release(b);
    }
    /* the root's keys that start with '/' (mem:/// names the key "/") */
    asset_batch_t *b = asset_server_load_folder(s, "mem:///", NULL);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), "mem:///e");
    assert_int_equal(asset_handle_state(asset_batch_handle(b, 0)), ASSET_STATE_LOADED);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A done callback connected on another thread to a batch that is done ("it fires at the
 * next flush") while a flush fires that batch's end: connected just after the flush had
 * looked for callbacks left, and before it let go of the batch, it found the batch still
 * queued, did not queue it again, and never fired (found by a review: about 1 in 300
 * rounds; the loop stops at the first one lost). A round has 16 batches, which its flush
 * ends while the connects come one after another: they cross somewhere along them, and
 * the two threads' handshake (spins, costly on a loaded machine) is once per 16. With the
 * fix undone (the lock let go between the walk and b->queued), a round lost one within
 * 456 to 9,483 rounds here, and within 4 to 164 under TSan (whose locks are slower: the
 * window is wider); 200,000 rounds of one batch took past ctest's 300 s under TSan. */
#define LATE_BATCHES 16
typedef struct late_done {
    asset_batch_t *b[LATE_BATCHES]; /* written before `round` is */
    atomic_int round, ack, fired;
    atomic_bool stop;
} late_done_t;

static void late_done_cb(asset_batch_t *b, void *user) {
    (void)b;
    atomic_fetch_add(&((late_done_t *)user)->fired, 1);
}

static void late_connector_main(void *arg) {
    late_done_t *l = arg;
    int last = 0;
    while (!atomic_load(&l->stop)) {
        int r = atomic_load(&l->round);
        if (r == last) continue; /* spins: a yield here makes the race rare */
        last = r;
        for (int k = 0; k < LATE_BATCHES; k++) /* 0: lost too */
            (void)asset_batch_on_completed(l->b[k], late_done_cb, l);
        atomic_store(&l->ack, r);
    }
}

static void test_done_callback_connected_while_a_flush_ends_the_batch_fires(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    late_done_t l;
    atomic_init(&l.round, 0);
    atomic_init(&l.ack, 0);
    atomic_init(&l.fired, 0);
    atomic_init(&l.stop, false);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, late_connector_main, &l), 0);
    int lost = 0, rounds = RUNNING_ON_VALGRIND ? 200 : TU_TSAN ? 1000 : 20000;
    for (int i = 1; i <= rounds && !lost; i++) {
        for (int k = 0; k < LATE_BATCHES; k++) {
            l.b[k] = asset_server_load_group(s, NULL, 0, NULL); /* done at once */
            assert_non_null(l.b[k]);
        }
        int fired0 = atomic_load(&l.fired);
        atomic_store(&l.round, i);
        asset_server_flush(s); /* fires the batches' ends while the other thread connects */
        while (atomic_load(&l.ack) != i) continue;
        asset_server_flush(s);
        asset_server_flush(s);
        if (atomic_load(&l.fired) != fired0 + LATE_BATCHES) lost = i;
        for (int k = 0; k < LATE_BATCHES; k++) asset_batch_release(l.b[k]);
    }
    atomic_store(&l.stop, true);
    uv_thread_join(&t);
    asset_server_destroy(s);
    if (lost) fail_msg("round %d: a done callback connected to a done batch never fired", lost);
}

/* A done callback that connects another (which the header says fires at the next flush,
 * the batch being done) was fired again by the same flush: one that did so each time (a
 * "next frame" poll) never let the flush end. Capped at 1,000 here, so that the unfixed
 * code fails instead of hanging. */
static int g_done_rearms;
static void rearming_done(asset_batch_t *b, void *user) {
    (void)user;
    if (++g_done_rearms < 1000) assert_true(asset_batch_on_completed(b, rearming_done, NULL) != 0);
}

static void test_a_done_callback_connecting_another_each_time_lets_the_flush_end(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    put_mem(s, "a", "aaa");
    const char *one[] = {"mem://a"};
    asset_batch_t *batches[2] = {asset_server_load_group(s, NULL, 0, NULL), /* done at once */
                                 asset_server_load_group(s, one, 1, NULL)};
    for (int i = 0; i < 2; i++) {
        asset_batch_t *b = batches[i];
        g_done_rearms = 0;
        assert_true(asset_batch_on_completed(b, rearming_done, NULL) != 0);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        TU_FLUSH_UNTIL(s, g_done_rearms);   /* the empty group's end */
        assert_int_equal(g_done_rearms, 1); /* the one it connected: the next flush */
        asset_server_flush(s);
        assert_int_equal(g_done_rearms, 2);
        TU_FLUSH_UNTIL(s, g_done_rearms >= 1000);
        asset_server_flush(s);
        assert_int_equal(g_done_rearms, 1000);
        asset_batch_release(b);
    }
    asset_server_destroy(s);
}

/* The same across batches: a done callback that makes an empty group (done at once) and
 * connects itself to it, or connects itself to another batch that is done, had that one
 * fired by the same flush, whose batch queue took what was queued while it ran: a chain
 * of them (a "next frame" poll on a fresh empty group, two batches taking turns) never
 * let the flush end. A flush takes the batches queued when its turn at them began (and
 * a folder's own next steps); the rest is the next flush's. Capped at 1,000 here. */
static int g_chain_dones;
static asset_batch_t *g_chain_other[2];
static void chain_empty_group(asset_batch_t *b, void *user) {
    (void)b;
    asset_server_t *s = user;
    if (++g_chain_dones >= 1000) return;
    asset_batch_t *n = asset_server_load_group(s, NULL, 0, NULL);
    assert_non_null(n);
    assert_true(asset_batch_on_completed(n, chain_empty_group, s) != 0);
    asset_batch_release(n);
}
static void chain_turns(asset_batch_t *b, void *user) {
    (void)user;
    if (++g_chain_dones >= 1000) return;
    asset_batch_t *o = b == g_chain_other[0] ? g_chain_other[1] : g_chain_other[0];
    assert_true(asset_batch_on_completed(o, chain_turns, NULL) != 0);
}

static void test_done_callbacks_chained_across_batches_let_the_flush_end(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    g_chain_dones = 0;
    asset_batch_t *first = asset_server_load_group(s, NULL, 0, NULL);
    assert_true(asset_batch_on_completed(first, chain_empty_group, s) != 0);
    asset_batch_release(first);
    asset_server_flush(s);
    assert_int_equal(g_chain_dones, 1); /* was 1,000: the whole chain in one flush */
    asset_server_flush(s);
    assert_int_equal(g_chain_dones, 2);
    TU_FLUSH_UNTIL(s, g_chain_dones >= 1000);
    /* two done batches, each callback connecting the next to the other one */
    g_chain_dones = 0;
    for (int i = 0; i < 2; i++) {
        g_chain_other[i] = asset_server_load_group(s, NULL, 0, NULL);
        assert_int_equal(asset_batch_wait(g_chain_other[i], 60000), ASSET_OK);
    }
    asset_server_flush(s); /* their ends: neither is queued from here on */
    assert_true(asset_batch_on_completed(g_chain_other[0], chain_turns, NULL) != 0);
    asset_server_flush(s);
    assert_int_equal(g_chain_dones, 1);
    TU_FLUSH_UNTIL(s, g_chain_dones >= 1000);
    asset_server_flush(s);
    assert_int_equal(g_chain_dones, 1000);
    for (int i = 0; i < 2; i++) asset_batch_release(g_chain_other[i]);
    asset_server_destroy(s);
}

/* With watch on, a manifest batch kept its manifest's handle for as long as the batch
 * lived: every change to the manifest was read and parsed again (a reload), for nothing,
 * since a batch makes its children once. Its handle goes once the children are made; a
 * load of the manifest of the user's own still reloads (a review). */
typedef struct parses {
    const char *uri;
    atomic_int n;
} parses_t;
static void count_parses(const asset_trace_event_t *e, void *user) {
    parses_t *p = user;
    if (e->phase == ASSET_TRACE_PARSE_START && !strcmp(e->uri, p->uri)) atomic_fetch_add(&p->n, 1);
}

static void flush_until_version(asset_server_t *s, asset_handle_t *h, uint64_t v) {
    uint64_t deadline = uv_hrtime() + 60 * 1000000000ull;
    while (asset_handle_version(h) < v && uv_hrtime() < deadline) {
        asset_server_flush(s);
        tu_os_yield();
    }
    assert_true(asset_handle_version(h) >= v);
}

static void test_a_changed_manifest_is_parsed_again_only_for_a_load_of_its_own(void **state) {
    (void)state;
    parses_t p = {.uri = "mem://m.json"};
    asset_server_config_t cfg = {
        .watch = true, .max_workers = 1, .trace = count_parses, .trace_user = &p};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    put_mem(s, "a", "A");
    put_mem(s, "m.json", "[\"a\"]");
    put_mem(s, "sentinel", "1");
    asset_batch_t *b = asset_server_load_manifest(s, "mem://m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    assert_int_equal(atomic_load(&p.n), 1);
    asset_handle_t *sentinel = asset_server_load(s, "mem://sentinel", NULL);
    assert_int_equal(tu_wait(sentinel), ASSET_OK);
    /* a change of the manifest, then of the sentinel: one worker, reloads in order, so
     * once the sentinel's is published the manifest's parse would have run */
    put_mem(s, "m.json", "[\"a\", \"b\"]");
    put_mem(s, "sentinel", "2");
    flush_until_version(s, sentinel, 2);
    assert_int_equal(atomic_load(&p.n), 1); /* 2 before: parsed again for nothing */
    assert_int_equal(asset_batch_total(b), 1);
    /* a load of the manifest of the user's own is a live asset as any */
    asset_handle_t *m = asset_server_load(s, "mem://m.json", NULL);
    assert_int_equal(tu_wait(m), ASSET_OK);
    int before = atomic_load(&p.n);
    put_mem(s, "m.json", "[\"a\", \"b\", \"c\"]");
    flush_until_version(s, m, 2);
    assert_int_equal(atomic_load(&p.n), before + 1);
    asset_handle_release(m);
    asset_handle_release(sentinel);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* Many done callbacks on one batch (each system of a level waiting for its load): the
 * batch's end looked for the next one to fire from the list's start after each one, and
 * each connect walked the list to append: 20,000 cost 200 million looks each way (a
 * review). Each fires once, in order; one connected meanwhile waits for the next flush. */
#define MANY_DONE 20000
static int g_done_order[MANY_DONE], g_done_n, g_done_late;
static void late_done(asset_batch_t *b, void *user) {
    (void)b;
    (void)user;
    g_done_late++;
}
static void ordered_done(asset_batch_t *b, void *user) {
    int i = (int)(intptr_t)user;
    g_done_order[g_done_n++] = i;
    if (i == MANY_DONE / 2) assert_true(asset_batch_on_completed(b, late_done, NULL) != 0);
}

static void test_many_done_callbacks_on_one_batch_fire_in_linear_time(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    put_mem(s, "a", "A");
    const char *uris[] = {"mem://a"};
    asset_batch_t *b = asset_server_load_group(s, uris, 1, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    g_done_n = g_done_late = 0;
    uv_mutex_lock(&s->lock);
    s->cb_visits = 0;
    uv_mutex_unlock(&s->lock);
    for (int i = 0; i < MANY_DONE; i++)
        assert_true(asset_batch_on_completed(b, ordered_done, (void *)(intptr_t)i) != 0);
    asset_server_flush(s);
    uv_mutex_lock(&s->lock);
    uint64_t visits = s->cb_visits;
    uv_mutex_unlock(&s->lock);
    assert_int_equal(g_done_n, MANY_DONE);
    for (int i = 0; i < MANY_DONE; i++) assert_int_equal(g_done_order[i], i);
    assert_int_equal(g_done_late, 0);
    asset_server_flush(s);
    assert_int_equal(g_done_late, 1);
    assert_int_equal(g_done_n, MANY_DONE); /* none twice */
    assert_true(visits <= 4ull * MANY_DONE);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A fired done callback stayed in its batch's list until the batch was freed, and every
 * end walked the fired ones: a long-lived batch (a level's manifest) given a done
 * callback at each use grew by one record per use, and its n-th late connect cost n
 * looks (a review). A done callback leaves the list once it fired. */
#define BATCH_REUSES 3000
static void test_done_callbacks_of_a_long_lived_batch_leave_it_as_they_fire(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    put_mem(s, "a", "A");
    const char *uris[] = {"mem://a"};
    asset_batch_t *b = asset_server_load_group(s, uris, 1, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    uv_mutex_lock(&s->lock);
    s->cb_visits = 0;
    uv_mutex_unlock(&s->lock);
    counts_t c = {0};
    for (int i = 0; i < BATCH_REUSES; i++) {
        uint64_t id = asset_batch_on_completed(b, on_done, &c);
        assert_true(id != 0);
        asset_server_flush(s);
        assert_int_equal(c.done, i + 1);
        assert_false(asset_batch_disconnect(b, id)); /* fired: nothing to disconnect */
    }
    uv_mutex_lock(&s->lock);
    uint64_t visits = s->cb_visits;
    uv_mutex_unlock(&s->lock);
    assert_true(visits <= 4ull * BATCH_REUSES); /* about BATCH_REUSES^2 before */
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* The same URI twice in one batch: asset_batch_value() returned the first child's value
 * (NULL when that one was cancelled or failed) even when a later child of that URI had
 * loaded. It returns the first LOADED one's, with its URI index made before the
 * children were done (a group) or after (a manifest). */
static void test_batch_value_of_a_duplicate_uri_is_a_loaded_childs(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    tu_gate_t *g = tu_gate_register(s, "gate");
    const char *uris[] = {"gate://dup", "gate://dup", "gate://dup"};
    asset_batch_t *b = asset_server_load_group(s, uris, 3, NULL);
    assert_int_equal(asset_batch_total(b), 3);
    asset_handle_cancel(asset_batch_handle(b, 0));   /* the others share its job: it goes on */
    assert_null(asset_batch_value(b, "gate://dup")); /* none loaded yet; makes the index */
    tu_gate_open(g);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_handle_state(asset_batch_handle(b, 0)), ASSET_STATE_CANCELLED);
    assert_int_equal(asset_batch_completed_count(b), 2);
    assert_non_null(asset_batch_value(b, "gate://dup"));
    assert_ptr_equal(asset_batch_value(b, "gate://dup"),
                     asset_handle_value(asset_batch_handle(b, 1)));
    asset_batch_release(b);

    /* a manifest: the first entry fails its sha256, the second loads */
    put_mem(s, "d.txt", "dup");
    put_mem(s, "dups.json",
            "[{\"uri\": \"mem://d.txt\", \"sha256\": "
            "\"0000000000000000000000000000000000000000000000000000000000000000\"},"
            " \"mem://d.txt\"]");
    b = asset_server_load_manifest(s, "mem://dups.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 2);
    assert_int_equal(asset_handle_error(asset_batch_handle(b, 0)), ASSET_E_INTEGRITY);
    assert_int_equal(asset_handle_state(asset_batch_handle(b, 1)), ASSET_STATE_LOADED);
    const asset_bytes_t *v = asset_batch_value(b, "mem://d.txt");
    assert_non_null(v);
    assert_string_equal((const char *)v->data, "dup");
    assert_ptr_equal(asset_batch_value(b, "d.txt"), v); /* as written: resolved */
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* A key given twice in one manifest object: cJSON keeps both, and the manifest reads
 * the first (cJSON_GetObjectItemCaseSensitive); the later one is neither used nor
 * checked (docs/loaders-and-caches.md). Pins what the header says. */
static void test_a_manifest_key_given_twice_reads_the_first(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    put_mem(s, "a.txt", "a");
    put_mem(s, "b.txt", "b");
    put_mem(s, "twice.json",
            "{\"assets\": [{\"uri\": \"mem://a.txt\", \"uri\": \"mem://b.txt\","
            " \"priority\": \"low\", \"priority\": 7}],"
            " \"assets\": [\"mem://nope\"]}");
    asset_batch_t *b = asset_server_load_manifest(s, "mem://twice.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_total(b), 1);
    assert_int_equal(asset_batch_completed_count(b), 1);
    assert_string_equal(asset_handle_uri(asset_batch_handle(b, 0)), "mem://a.txt");
    assert_null(asset_batch_value(b, "mem://b.txt"));
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* asset_batch_value() of a child named with escapes, as written in the manifest
 * ("%61.txt", "caf%C3%A9.txt") or as a reference in a folder ("a%20b.txt"): the
 * reference was resolved against the batch's URI but not normalised, so it named the
 * child in another spelling than the child's normalised URI and found nothing. */
static void test_batch_value_of_an_escaped_reference_finds_its_child(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.txt", "aa", 2));
    free(tu_write_file(dir, "a b.txt", "sp", 2));
    free(tu_write_file(dir, "caf\xc3\xa9.txt", "ca", 2));
    const char *m = "[\"%61.txt\", \"a%20b.txt\", \"caf%C3%A9.txt\"]";
    free(tu_write_file(dir, "m.json", m, strlen(m)));
    asset_server_t *s = asset_server_create(NULL);
    char *mp = tu_path(dir, "m.json");
    asset_batch_t *b = asset_server_load_manifest(s, mp, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 3);
    const asset_bytes_t *v;
    const char *written[] = {"%61.txt", "a%20b.txt", "caf%C3%A9.txt", "caf%c3%a9.txt"};
    const char *want[] = {"aa", "sp", "ca", "ca"};
    for (size_t i = 0; i < 4; i++) { /* as written in the manifest */
        assert_non_null(v = asset_batch_value(b, written[i]));
        assert_memory_equal(v->data, want[i], 2);
    }
    asset_batch_release(b);
    b = asset_server_load_folder(s, dir, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    for (size_t i = 0; i < 4; i++) { /* references relative to the folder */
        assert_non_null(v = asset_batch_value(b, written[i]));
        assert_memory_equal(v->data, want[i], 2);
    }
    asset_batch_release(b);
    asset_server_destroy(s);
    free(mp);
    tu_rmrf(dir);
    free(dir);
}

/* A relative reference "as written in the manifest" names the entry the manifest
 * loaded from it, resolved against the manifest: looked up first as a bare path (against
 * file_root or the working directory), "a.txt" in levels/m.json answered with the value
 * of <root>/a.txt, the manifest's other entry "../a.txt", not levels/a.txt. */
static void test_batch_value_of_a_relative_entry_is_its_own_childs(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.txt", "root", 4));
    free(tu_write_file(dir, "levels/a.txt", "levl", 4));
    const char *m = "[\"../a.txt\", \"a.txt\"]";
    free(tu_write_file(dir, "levels/m.json", m, strlen(m)));
    asset_server_config_t cfg = {.file_root = dir};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_batch_t *b = asset_server_load_manifest(s, "levels/m.json", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2);
    const asset_bytes_t *v;
    assert_non_null(v = asset_batch_value(b, "a.txt"));
    assert_memory_equal(v->data, "levl", 4);
    assert_non_null(v = asset_batch_value(b, "../a.txt"));
    assert_memory_equal(v->data, "root", 4);
    asset_batch_release(b);
    /* the same for a folder: a reference relative to it */
    b = asset_server_load_folder(s, "levels", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_null(asset_batch_value(b, "../a.txt")); /* not a child */
    assert_non_null(v = asset_batch_value(b, "a.txt"));
    assert_memory_equal(v->data, "levl", 4);
    asset_batch_release(b);
    /* a group's children are loads of their own: a bare path is what it named */
    const char *g[] = {"a.txt", "levels/a.txt"};
    b = asset_server_load_group(s, g, 2, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_non_null(v = asset_batch_value(b, "a.txt"));
    assert_memory_equal(v->data, "root", 4);
    asset_batch_release(b);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
}

/* asset_batch_disconnect() looked for the id by walking the batch's list of callbacks
 * under the server's lock: item callbacks stay there until disconnected (and done ones
 * until the batch ends), so the n listeners of one batch (a loading screen's widgets
 * each following a level's manifest) disconnected newest first, as a screen torn down
 * in reverse does, cost n^2 / 2 looks, as asset_handle_disconnect did before the
 * nineteenth review. A disconnect finds its callback by id, and unlinks it, in O(1). */
#define MANY_LISTENERS 4000
static void count_handle_cb(asset_handle_t *h, void *user) {
    (void)h;
    ++*(int *)user;
}

static void test_disconnecting_many_batch_callbacks_newest_first_is_linear(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    put_mem(s, "a", "A");
    const char *uris[] = {"mem://a"};
    asset_batch_t *b = asset_server_load_group(s, uris, 1, NULL); /* not done: no flush yet */
    asset_batch_t *other = asset_server_load_group(s, uris, 1, NULL);
    asset_handle_t *h = asset_server_load(s, "mem://a", NULL);
    counts_t kept = {0}, gone = {0};
    static uint64_t ids[2 * MANY_LISTENERS];
    uint64_t keep_item = asset_batch_on_item_completed(b, on_item, &kept);
    for (int i = 0; i < MANY_LISTENERS; i++) {
        ids[2 * i] = asset_batch_on_item_completed(b, on_item, &gone);
        ids[2 * i + 1] = asset_batch_on_completed(b, on_done, &gone);
        assert_true(ids[2 * i] && ids[2 * i + 1]);
    }
    uint64_t keep_done = asset_batch_on_completed(b, on_done, &kept);
    uint64_t other_id = asset_batch_on_completed(other, on_done, &gone);
    int handle_fired = 0;
    uint64_t handle_id = asset_handle_on_completed(h, count_handle_cb, &handle_fired);
    assert_true(keep_item && keep_done && other_id && handle_id);
    uv_mutex_lock(&s->lock);
    s->cb_visits = 0;
    uv_mutex_unlock(&s->lock);
    for (int i = 2 * MANY_LISTENERS - 1; i >= 0; i--)
        assert_true(asset_batch_disconnect(b, ids[i]));
    uv_mutex_lock(&s->lock);
    uint64_t visits = s->cb_visits;
    uv_mutex_unlock(&s->lock);
    assert_true(visits <= 4ull * 2 * MANY_LISTENERS); /* 32 million looks before */
    /* gone once: a second disconnect, another batch's id or a handle's finds nothing */
    assert_false(asset_batch_disconnect(b, ids[0]));
    assert_false(asset_batch_disconnect(b, other_id));
    assert_false(asset_batch_disconnect(b, handle_id));
    assert_false(asset_handle_disconnect(h, keep_item));
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_wait(other, 60000), ASSET_OK);
    assert_int_equal(kept.items, 1); /* the two kept fire, once each */
    assert_int_equal(kept.done, 1);
    assert_int_equal(gone.items, 0);
    assert_int_equal(gone.done, 1); /* the other batch's */
    assert_int_equal(asset_handle_wait(h, 60000), ASSET_OK);
    assert_int_equal(handle_fired, 1);
    asset_server_flush(s);
    assert_false(asset_batch_disconnect(b, keep_done)); /* fired */
    assert_true(asset_batch_disconnect(b, keep_item));  /* an item callback stays until then */
    asset_handle_release(h);
    asset_batch_release(other);
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A child's end walked every callback of its batch, its done callbacks too (and item
 * callbacks disconnected while a child was delivered, only silenced): a batch of n
 * children with d done callbacks (the systems waiting for a level) cost n x d looks
 * inside flush, under the server's lock: 100,000 children with 1,000 done callbacks took
 * 0.45 s where one took 5 ms. A child's end walks the item callbacks only. */
#define WALK_CHILDREN 2000
#define WALK_DONE 2000
static uint64_t g_to_silence;
static void item_disconnects_once(asset_batch_t *b, asset_handle_t *h, void *user) {
    on_item(b, h, user);
    if (g_to_silence) assert_true(asset_batch_disconnect(b, g_to_silence));
    g_to_silence = 0;
}
static void test_a_childs_end_does_not_walk_the_batchs_done_callbacks(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    static char keys[WALK_CHILDREN][24];
    static const char *uris[WALK_CHILDREN];
    for (int i = 0; i < WALK_CHILDREN; i++) {
        snprintf(keys[i], sizeof keys[i], "w/%d", i);
        put_mem(s, keys[i], "x");
        snprintf(keys[i], sizeof keys[i], "mem://w/%d", i);
        uris[i] = keys[i];
    }
    asset_batch_t *b = asset_server_load_group(s, uris, WALK_CHILDREN, NULL);
    counts_t c = {0}, gone = {0};
    assert_true(asset_batch_on_item_completed(b, item_disconnects_once, &c) != 0);
    for (int i = 0; i < WALK_DONE; i++) assert_true(asset_batch_on_completed(b, on_done, &c) != 0);
    /* disconnected by the first item callback while a child is delivered: only silenced */
    uint64_t silenced = g_to_silence = asset_batch_on_item_completed(b, on_item, &gone);
    assert_true(silenced != 0);
    uv_mutex_lock(&s->lock);
    s->cb_visits = 0;
    uv_mutex_unlock(&s->lock);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    asset_server_flush(s);
    uv_mutex_lock(&s->lock);
    uint64_t visits = s->cb_visits;
    uv_mutex_unlock(&s->lock);
    assert_int_equal(c.items, WALK_CHILDREN);
    assert_int_equal(c.done, WALK_DONE);
    assert_int_equal(gone.items, 0);
    assert_false(asset_batch_disconnect(b, silenced));
    assert_true(visits <= 4ull * (WALK_CHILDREN + WALK_DONE)); /* 4 million before */
    asset_batch_release(b);
    asset_server_destroy(s);
}

/* A batch released more often than it was retained: its count stayed at zero silently,
 * where the header says references are "as for handles", whose extra release is logged
 * (issue 11), and the batch, freed once done, made the next one a use after free with no
 * word. It is ignored and logged (ASSET_LOG_ERROR), naming the folder or manifest. */
typedef struct over_log {
    int errors;
    char last[512];
} over_log_t;
static void over_log(int level, const char *msg, void *user) {
    over_log_t *l = user;
    if (level != ASSET_LOG_ERROR) return;
    l->errors++;
    snprintf(l->last, sizeof l->last, "%s", msg);
}

static void test_releasing_a_batch_too_often_is_reported(void **state) {
    (void)state;
    over_log_t l = {0};
    asset_server_config_t cfg = {.log = over_log, .user = &l};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    tu_gate_t *g = tu_gate_register(s, "gate");
    const char *uris[] = {"gate://x"};
    asset_batch_t *group = asset_server_load_group(s, uris, 1, NULL);
    asset_batch_t *man = asset_server_load_manifest(s, "gate://m.json", NULL);
    asset_batch_release(group); /* fine: not done, it lives on */
    asset_batch_release(man);
    assert_int_equal(l.errors, 0);
    asset_batch_release(group); /* one too many */
    assert_int_equal(l.errors, 1);
    assert_non_null(strstr(l.last, "asset_batch_release"));
    assert_non_null(strstr(l.last, "released more often than retained"));
    asset_batch_release(man);
    assert_int_equal(l.errors, 2);
    assert_non_null(strstr(l.last, "gate://m.json"));
    tu_gate_open(g);
    asset_server_destroy(s);
    tu_gate_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_value_of_a_relative_entry_is_its_own_childs),
        cmocka_unit_test(test_batch_value_of_an_escaped_reference_finds_its_child),
        cmocka_unit_test(test_batch_value_of_a_duplicate_uri_is_a_loaded_childs),
        cmocka_unit_test(test_a_manifest_key_given_twice_reads_the_first),
        cmocka_unit_test(test_group_waits_on_several_threads_run_shared_loads),
        cmocka_unit_test(test_group_counts_and_callbacks_fire_once_each),
        cmocka_unit_test(test_group_callbacks_may_call_the_api_while_children_are_delivered),
        cmocka_unit_test(test_group_children_keep_their_order_across_slices_of_hits_and_misses),
        cmocka_unit_test(test_empty_group_completes_at_next_flush),
        cmocka_unit_test(test_done_callbacks_chained_across_batches_let_the_flush_end),
        cmocka_unit_test(test_done_callback_connected_while_a_flush_ends_the_batch_fires),
        cmocka_unit_test(test_a_done_callback_connecting_another_each_time_lets_the_flush_end),
        cmocka_unit_test(test_cancel_batch_midway_counts_add_up),
        cmocka_unit_test(test_release_before_done_still_completes_callbacks),
        cmocka_unit_test(test_a_batch_released_and_cancelled_in_its_item_callback_ends_once),
        cmocka_unit_test(test_folder_file_recursive_sorted_and_values_by_uri),
        cmocka_unit_test(test_folder_empty_completes_and_missing_fails_with_message),
        cmocka_unit_test(test_folder_names_with_percent_and_hash_load_their_own_files),
        cmocka_unit_test(test_folder_mem_and_pkg),
        cmocka_unit_test(test_value_lookup_before_the_children_exist_finds_them_later),
        cmocka_unit_test(test_manifest_relative_entries_resolve_for_file_and_pkg),
        cmocka_unit_test(test_manifest_over_http_resolves_against_its_url),
        cmocka_unit_test(test_manifest_sha256_verified),
        cmocka_unit_test(test_manifest_sha256_in_upper_case_matches),
        cmocka_unit_test(test_batch_value_of_a_uri_twice_is_the_first_childs),
        cmocka_unit_test(test_batch_progress_counts_every_child_in_flight),
        cmocka_unit_test(test_cancelling_a_folder_ends_it_while_its_listing_runs),
        cmocka_unit_test(test_two_loads_of_a_folder_share_its_listing_in_flight),
        cmocka_unit_test(test_a_folder_load_after_an_invalidate_never_joins_a_listing_before_it),
        cmocka_unit_test(test_a_folder_spelt_with_trailing_slashes_is_one_listing_a_change_finds),
        cmocka_unit_test(test_a_load_pinned_to_another_digest_joins_no_read_in_flight),
        cmocka_unit_test(test_batch_progress_counts_a_child_in_flight_below_one_and_never_falls),
        cmocka_unit_test(test_a_long_entry_uri_keeps_the_reason_of_its_error),
        cmocka_unit_test(test_an_entrys_unknown_keys_are_not_ignored_silently),
        cmocka_unit_test(test_malformed_manifests_fail_with_useful_messages),
        cmocka_unit_test(test_a_manifest_size_out_of_range_names_the_range),
        cmocka_unit_test(test_progress_is_byte_weighted_and_monotonic),
        cmocka_unit_test(test_batch_progress_does_not_walk_every_child),
        cmocka_unit_test(test_manifest_sizes_past_64_bits_do_not_wrap_progress),
        cmocka_unit_test(test_folder_progress_is_byte_weighted_across_slices),
        cmocka_unit_test(test_manifest_with_10000_entries),
        cmocka_unit_test(test_disconnected_batch_callbacks_do_not_fire),
        cmocka_unit_test(test_destroy_with_batch_in_flight_frees_everything),
        cmocka_unit_test(test_folder_subdirectory_that_cannot_be_opened_is_a_failed_child),
        cmocka_unit_test(test_folder_entries_that_cannot_be_stat_ed_are_listed),
        cmocka_unit_test(test_folder_walk_errors_fail_the_listing_with_the_reason),
        cmocka_unit_test(test_folder_with_a_chmod_000_subdirectory_reports_it),
        cmocka_unit_test(test_a_link_whose_stat_fails_is_left_out_of_a_folder),
        cmocka_unit_test(test_folder_deeper_than_64_levels_fails_instead_of_dropping),
        cmocka_unit_test(test_listing_arrives_sorted_from_the_worker),
        cmocka_unit_test(test_folder_of_100000_mem_keys_loads_sorted),
        cmocka_unit_test(test_budgeted_flush_expands_a_huge_folder_in_slices),
        cmocka_unit_test(test_an_unbudgeted_flush_expands_a_whole_folder),
        cmocka_unit_test(test_budgeted_flush_expands_a_huge_manifest_in_slices),
        cmocka_unit_test(test_cancel_during_expansion_stops_creating_children),
        cmocka_unit_test(test_a_cancel_before_the_first_step_is_no_empty_success),
        cmocka_unit_test(test_cancel_while_a_manifest_child_is_made_cancels_it),
        cmocka_unit_test(test_http_manifest_may_not_name_local_schemes),
        cmocka_unit_test(test_manifest_scheme_privilege_order_by_default),
        cmocka_unit_test(test_a_manifest_entrys_unknown_loader_fails_that_child_alone),
        cmocka_unit_test(test_manifest_schemes_config_replaces_the_default),
        cmocka_unit_test(test_an_item_callback_connected_by_one_waits_for_the_next_child),
        cmocka_unit_test(test_a_mem_folders_children_are_its_keys_as_written),
        cmocka_unit_test(test_a_mem_folder_with_a_trailing_slash_loads_its_keys),
        cmocka_unit_test(test_a_small_budget_under_a_stream_of_results_does_not_starve_batches),
        cmocka_unit_test(test_a_changed_manifest_is_parsed_again_only_for_a_load_of_its_own),
        cmocka_unit_test(test_many_done_callbacks_on_one_batch_fire_in_linear_time),
        cmocka_unit_test(test_done_callbacks_of_a_long_lived_batch_leave_it_as_they_fire),
        cmocka_unit_test(test_disconnecting_many_batch_callbacks_newest_first_is_linear),
        cmocka_unit_test(test_a_childs_end_does_not_walk_the_batchs_done_callbacks),
        cmocka_unit_test(test_releasing_a_batch_too_often_is_reported),
        cmocka_unit_test(test_group_misses_share_a_block_that_their_last_job_frees),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
