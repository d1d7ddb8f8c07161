/* test_fastpath.c - the load path's fast paths, which change speed and not results, so
 * that no other suite would notice them break: a cache hit on an immutable source,
 * loaded by the URI as the cache keys it, allocates the handle and nothing else; a
 * load that misses that path selects its loader (claims()) once and allocates one
 * handle; a file is read up to the size its stat gave and no further read() follows.
 * A counting allocator (asset_set_allocator, counting only the test's own thread)
 * counts blocks; the platform's read hook (asset__fs_read_fault) counts reads. */
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

/* ---- a counting allocator: blocks asked for by this thread while counting ---- */

static _Thread_local bool t_counting;
static _Thread_local size_t t_blocks, t_sized, t_size;

static atomic_size_t g_live; /* bytes in blocks not yet freed, every thread */

/* While set: blocks asked for by every thread but the one that set it (the workers). */
static _Atomic bool g_count_others;
static uv_thread_t g_count_thread;
static atomic_size_t g_other_blocks, g_other_requests;

static void note(size_t n) {
    if (atomic_load(&g_count_others)) {
        uv_thread_t self = uv_thread_self();
        if (!uv_thread_equal(&self, &g_count_thread)) {
            atomic_fetch_add(&g_other_blocks, 1);
            if (n == sizeof(struct asset_request)) atomic_fetch_add(&g_other_requests, 1);
        }
    }
    if (!t_counting) return;
    t_blocks++;
    if (n == t_size) t_sized++;
}
/* Blocks carry their size in a 16-byte header, for c_free's probe. */
static void *c_alloc(size_t n, void *user) {
    (void)user;
    note(n);
    size_t *b = malloc(16 + n);
    if (!b) return NULL;
    b[0] = n;
    atomic_fetch_add(&g_live, n);
    return (char *)b + 16;
}
static void *c_realloc(void *p, size_t n, void *user) {
    if (!p) return c_alloc(n, user);
    note(n);
    size_t old = ((size_t *)((char *)p - 16))[0];
    size_t *b = realloc((char *)p - 16, 16 + n);
    if (!b) return NULL;
    b[0] = n;
    atomic_fetch_add(&g_live, n);
    atomic_fetch_sub(&g_live, old);
    return (char *)b + 16;
}
/* While set: frees of job records (a loaded URI's job is the start of its URI's block,
 * ASSET__JOB_ROOM before it; a group's are blocks of one slab, src/uri.h), and those on
 * another thread than the one that set it. */
static _Atomic bool g_probe;
static uv_thread_t g_probe_thread;
static atomic_int g_job_frees, g_job_frees_elsewhere, g_slab_job_frees;

/* Whether the n bytes at p are a job record's block: its key is its URI, in the same
 * block (ASSET__JOB_ROOM after it). */
static int job_record_at(const void *p, size_t n) {
    const asset__job_t *j = p;
    return n >= sizeof(asset__job_t) && j->node.key && j->node.key == j->uri &&
           j->uri == (const char *)p + ASSET__JOB_ROOM;
}

static void c_free(void *p, void *user) {
    (void)user;
    if (!p) return;
    size_t *b = (size_t *)((char *)p - 16);
    atomic_fetch_sub(&g_live, b[0]);
    if (atomic_load(&g_probe)) {
        /* a slab of a group's jobs (src/uri.h): its first block says so; each job in it */
        const asset__uri_slab_t *sl = p;
        const asset__uri_block_pre_t *pre = (const void *)(sl + 1);
        int jobs = 0;
        if (b[0] >= sizeof *sl + ASSET__URI_BLOCK_PRE && pre->slab == sl) {
            for (size_t at = 0; at < sl->u.used; at += pre->size) {
                pre = (const void *)((const char *)(sl + 1) + at);
                jobs += job_record_at((const char *)pre + ASSET__URI_BLOCK_PRE, pre->size);
            }
            atomic_fetch_add(&g_slab_job_frees, jobs);
        } else {
            jobs = job_record_at(p, b[0]);
        }
        atomic_fetch_add(&g_job_frees, jobs);
        uv_thread_t self = uv_thread_self();
        if (jobs && !uv_thread_equal(&self, &g_probe_thread))
            atomic_fetch_add(&g_job_frees_elsewhere, jobs);
    }
    /* a freed job record's bytes, left in memory malloc hands out again (a small file's
     * value of 7 bytes, say, in a block of a job's size), read as one more job record when
     * that block was freed (test_fastpath_mt, the web's malloc, 1 run of 2) */
    memset(p, 0, b[0]);
    free(b);
}
static const asset_allocator_t g_hook = {c_alloc, c_realloc, c_free, NULL};

/* Starts counting: every block, and those of `size` bytes apart. */
static void count_start(size_t size) {
    t_blocks = t_sized = 0;
    t_size = size;
    t_counting = true;
}
static void count_stop(void) { t_counting = false; }

/* The size of the block asset__handle_new makes for uri (no tag: an empty one). */
static size_t handle_block(const char *uri) {
    return sizeof(struct asset_handle) + strlen(uri) + 2;
}

/* ---- a loader that counts claims() and claims nothing (bytes loads it) ---- */

typedef struct claimer {
    int calls;
    char last[256];
} claimer_t;

static bool claimer_claims(void *ctx, const char *uri) {
    claimer_t *c = ctx;
    c->calls++; /* the thread that calls load: this one */
    snprintf(c->last, sizeof c->last, "%s", uri);
    return false;
}
static asset_status_t claimer_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    return asset_parse_fail(p, ASSET_E_PARSE, "never claims anything");
}

static void claimer_register(asset_server_t *s, claimer_t *c) {
    asset_loader_t ld = {
        ASSET_LOADER_ABI, "claimer", NULL, claimer_claims, claimer_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &ld, c, 0), ASSET_OK);
}

/* ---- fixture: a package "game" with one small file ---- */

typedef struct fx {
    char *dir, *game;
    asset_server_t *s;
    claimer_t claimer;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    f->game = tu_path(f->dir, "game");
    free(tu_write_file(f->game, "hero.txt", "hero", 4));
    f->s = tu_server(2);
    assert_int_equal(asset_server_mount(f->s, "game", f->game), ASSET_OK);
    claimer_register(f->s, &f->claimer);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx_t *f = *state;
    asset_server_destroy(f->s);
    tu_rmrf(f->dir);
    free(f->game);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- the immutable cache hit ---- */

/* Loads uri twice: the second load, a hit by the cache's key, must allocate the handle
 * alone and give the first load's value. */
static void expect_hit_allocates_only_the_handle(fx_t *f, const char *uri) {
    asset_handle_t *first = tu_load_wait(f->s, uri, ASSET_OK);
    count_start(handle_block(uri));
    asset_handle_t *h = asset_server_load(f->s, uri, NULL);
    count_stop();
    assert_non_null(h);
    if (t_blocks != 1 || t_sized != 1)
        fail_msg("a cache hit on %s by its key made %zu blocks (%zu of the handle's size), "
                 "expected the handle alone",
                 uri, t_blocks, t_sized);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_ptr_equal(asset_handle_value(h), asset_handle_value(first));
    asset_handle_release(h);
    asset_handle_release(first);
}

static void test_cache_hit_on_immutable_source_allocates_only_the_handle(void **state) {
    fx_t *f = *state;
    expect_hit_allocates_only_the_handle(f, "pkg://game/hero.txt"); /* normalised: the key */
    asset_stats_t st;
    asset_server_stats(f->s, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.source_reads, 1);
}

/* A source of the user's, registered IMMUTABLE under a new scheme: its hits take the
 * same fast path (the lock-free scheme filter learns of it when it is registered). */
static asset_status_t imm_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    return asset_request_write(r, "imm", 3);
}

static void test_cache_hit_on_a_users_immutable_source_allocates_only_the_handle(void **state) {
    fx_t *f = *state;
    asset_source_t src = {ASSET_SOURCE_ABI, "imm", ASSET_SOURCE_IMMUTABLE, imm_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(f->s, &src, NULL), ASSET_OK);
    expect_hit_allocates_only_the_handle(f, "imm://a/b.txt");
}

/* The filter that lets a file:// or http(s):// load skip the fast path's lock round
 * trip: no built-in source that can change shares a bit with pkg:// or mem://. */
static void test_the_scheme_filter_tells_mutable_builtins_from_immutable_ones(void **state) {
    (void)state;
    const char *imm[] = {"pkg", "mem"}, *mut[] = {"file", "http", "https"};
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < 3; k++)
            if (asset__scheme_bit(imm[i], strlen(imm[i])) ==
                asset__scheme_bit(mut[k], strlen(mut[k])))
                fail_msg("%s:// and %s:// share a filter bit", imm[i], mut[k]);
    /* only the first len bytes count: "pkg" as the prefix of a URI */
    assert_true(asset__scheme_bit("pkg://x", 3) == asset__scheme_bit("pkg", 3));
}

/* A group's hits look each scheme's source up once per run of it: a URI of a mutable
 * source right after a pkg:// hit is not served from the cache as if it were pkg://'s.
 * The mutable scheme is one that shares pkg's filter bit, so that it reaches the fast
 * path's critical section (where the source is found) at all. */
static atomic_int g_mut_reads;
static asset_status_t mut_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    atomic_fetch_add(&g_mut_reads, 1); /* on a worker */
    return asset_request_write(r, "mut", 3);
}

static void test_a_groups_hits_find_each_uris_own_source(void **state) {
    fx_t *f = *state;
    char scheme[16] = "";
    uint64_t pkg = asset__scheme_bit("pkg", 3);
    for (int i = 0; i < 10000 && !scheme[0]; i++) {
        char c[16];
        snprintf(c, sizeof c, "m%d", i);
        if (asset__scheme_bit(c, strlen(c)) == pkg) snprintf(scheme, sizeof scheme, "%s", c);
    }
    assert_true(scheme[0]);
    asset_source_t src = {ASSET_SOURCE_ABI, scheme, 0, mut_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(f->s, &src, NULL), ASSET_OK);
    enum { N = 8 };
    char uris[N][64];
    const char *list[N];
    for (int i = 0; i < N; i++) {
        if (i % 2)
            snprintf(uris[i], sizeof uris[i], "%s://m/%d.txt", scheme, i);
        else
            snprintf(uris[i], sizeof uris[i], "pkg://game/hero.txt");
        list[i] = uris[i];
        asset_handle_release(tu_load_wait(f->s, uris[i], ASSET_OK)); /* all cached */
    }
    int reads = atomic_load(&g_mut_reads);
    asset_stats_t before, after;
    asset_server_stats(f->s, &before);
    asset_batch_t *b = asset_server_load_group(f->s, list, N, NULL);
    assert_non_null(b);
    assert_int_equal(asset_batch_wait(b, -1), ASSET_OK);
    asset_server_stats(f->s, &after);
    for (int i = 0; i < N; i++) {
        const asset_bytes_t *v = asset_handle_value(asset_batch_handle(b, (size_t)i));
        assert_non_null(v);
        assert_memory_equal(v->data, i % 2 ? "mut" : "hero", i % 2 ? 3 : 4);
    }
    asset_batch_release(b);
    assert_int_equal(atomic_load(&g_mut_reads) - reads, N / 2); /* a mutable source is read again */
    assert_int_equal(after.cache_hits - before.cache_hits, N / 2); /* pkg:// hits */
}

/* Waits for b (n loads of "hero"), keeps two of its handles past its release, checks
 * their values and URI (uri), and that nothing is left once they go (live: g_live
 * before the batch). */
static void two_kept_past_the_batch(asset_server_t *s, asset_batch_t *b, size_t n, const char *uri,
                                    size_t live) {
    assert_int_equal(asset_batch_wait(b, -1), ASSET_OK);
    asset_handle_t *kept[2] = {asset_handle_retain(asset_batch_handle(b, 5)),
                               asset_handle_retain(asset_batch_handle(b, n - 2))};
    asset_batch_release(b);
    asset_server_flush(s);
    for (int i = 0; i < 2; i++) {
        const asset_bytes_t *v = asset_handle_value(kept[i]);
        assert_non_null(v);
        assert_memory_equal(v->data, "hero", 4);
        assert_string_equal(asset_handle_uri(kept[i]), uri);
    }
    asset_handle_release(kept[1]);
    asset_handle_release(kept[0]);
    asset_server_flush(s);
    assert_int_equal(atomic_load(&g_live), live);
}

/* A group's slice of hits makes its handles in one block (a slab): no block of a single
 * handle's size, a dozen blocks at most for N children (two slices: the batch, its items,
 * a slab each). Each handle lives on its own: two kept past the batch still give their
 * values, and once every one is released, no byte of the group is left (the block goes
 * with the last of its handles, whichever that is). */
static void test_a_slice_of_hits_makes_its_handles_in_one_block(void **state) {
    fx_t *f = *state;
    const char *uri = "pkg://game/hero.txt";
    asset_handle_release(tu_load_wait(f->s, uri, ASSET_OK)); /* cached */
    enum { N = ASSET__LOAD_SLICE + 8 };
    const char *list[N];
    for (int i = 0; i < N; i++) list[i] = uri;
    size_t live = atomic_load(&g_live);
    count_start(handle_block(uri));
    asset_batch_t *b = asset_server_load_group(f->s, list, N, NULL);
    count_stop();
    assert_non_null(b);
    if (t_sized != 0 || t_blocks > 12)
        fail_msg("a group of %d hits made %zu blocks, %zu of a single handle's size", N, t_blocks,
                 t_sized);
    two_kept_past_the_batch(f->s, b, N, uri, live);
}

/* A slice of misses makes its handles in one block too, once their URIs are parsed
 * ("pkg://game/./hero.txt" is no cache key: the fast path's handle for it is given up,
 * and the full path makes one for "pkg://game/hero.txt"): no block of a single handle's
 * size. Two kept past the batch still give their values, and nothing is left once all
 * are released. */
static void test_a_slice_of_misses_makes_its_handles_in_one_block(void **state) {
    fx_t *f = *state;
    const char *uri = "pkg://game/./hero.txt", *norm = "pkg://game/hero.txt";
    asset_handle_release(tu_load_wait(f->s, norm, ASSET_OK)); /* cached: served by the full path */
    enum { N = ASSET__LOAD_SLICE + 8 };
    const char *list[N];
    for (int i = 0; i < N; i++) list[i] = uri;
    size_t live = atomic_load(&g_live);
    count_start(handle_block(norm));
    asset_batch_t *b = asset_server_load_group(f->s, list, N, NULL);
    count_stop();
    assert_non_null(b);
    if (t_sized != 0)
        fail_msg("a group of %d misses made %zu blocks of a single handle's size", N, t_sized);
    two_kept_past_the_batch(f->s, b, N, norm, live);
}

/* ---- a miss: one claims(), one handle ---- */

/* Loads uri (a miss of the fast path) and checks that the loaders were asked once and
 * one handle block was made; returns the handle, done. */
static asset_handle_t *load_counting_claims(fx_t *f, const char *uri, asset_status_t want) {
    int calls = f->claimer.calls;
    count_start(handle_block(uri));
    asset_handle_t *h = asset_server_load(f->s, uri, NULL);
    count_stop();
    assert_non_null(h);
    if (f->claimer.calls - calls != 1)
        fail_msg("%s: claims() called %d times by one load", uri, f->claimer.calls - calls);
    if (t_sized != 1) fail_msg("%s: %zu handle blocks made by one load", uri, t_sized);
    assert_string_equal(f->claimer.last, uri);
    assert_int_equal(tu_wait(h), want);
    return h;
}

static void test_miss_selects_the_loader_once_and_makes_one_handle(void **state) {
    fx_t *f = *state;
    /* an immutable source not cached yet, and a source that is not immutable */
    asset_handle_release(load_counting_claims(f, "pkg://game/hero.txt", ASSET_OK));
    assert_int_equal(asset_mem_put(f->s, "k.txt", "mem", 3), ASSET_OK);
    asset_handle_t *h = load_counting_claims(f, "mem://k.txt", ASSET_OK);
    tu_expect_text(h, "mem");
    asset_handle_release(h);
    h = load_counting_claims(f, "mem://k.txt", ASSET_OK); /* a mem:// cache hit */
    tu_expect_text(h, "mem");
    asset_handle_release(h);
    h = load_counting_claims(f, "pkg://game/none.txt", ASSET_E_NOT_FOUND);
    assert_non_null(strstr(asset_handle_error_message(h), "pkg://game/none.txt"));
    asset_handle_release(h);
}

static void test_miss_by_a_uri_that_normalises_otherwise_gets_the_normalised_handle(void **state) {
    fx_t *f = *state;
    asset_handle_t *first = tu_load_wait(f->s, "pkg://game/hero.txt", ASSET_OK);
    int calls = f->claimer.calls;
    asset_handle_t *h = asset_server_load(f->s, "pkg://game/./hero.txt", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_string_equal(asset_handle_uri(h), "pkg://game/hero.txt");
    assert_ptr_equal(asset_handle_value(h), asset_handle_value(first)); /* the cached one */
    /* the loader is chosen for the normalised URI, not for the one given */
    assert_string_equal(f->claimer.last, "pkg://game/hero.txt");
    assert_true(f->claimer.calls - calls <= 2); /* at most once more for the URI as given */
    asset_handle_release(h);
    /* with a label: the handle names the normalised URI and the label */
    h = asset_server_load(f->s, "pkg://game/./hero.txt#part", NULL);
    assert_int_equal(tu_wait(h), ASSET_E_NOT_FOUND);
    assert_string_equal(asset_handle_uri(h), "pkg://game/hero.txt#part");
    asset_handle_release(h);
    asset_handle_release(first);
}

static void test_bad_uri_past_the_prefix_check_fails_naming_uri_and_reason(void **state) {
    fx_t *f = *state;
    int calls = f->claimer.calls;
    asset_handle_t *h = asset_server_load(f->s, "pkg://../game/hero.txt", NULL);
    assert_int_equal(tu_wait(h), ASSET_E_FORBIDDEN);
    assert_string_equal(asset_handle_uri(h), "pkg://../game/hero.txt");
    const char *msg = asset_handle_error_message(h);
    assert_non_null(strstr(msg, "pkg://../game/hero.txt"));
    assert_non_null(strstr(msg, "'..'"));
    assert_true(f->claimer.calls - calls <= 1);
    asset_handle_release(h);
}

/* ---- a finished job's memory goes back to the thread that loads or waits ---- */

/* A worker that finishes a job leaves its memory to the next thread that loads, waits
 * or flushes without a budget (the one that made it, most often): freeing it on the
 * worker went through that thread's malloc arena lock. Twenty loads waited for one by
 * one and a group of twenty, waited for: every job record freed, all on this thread. */
static void test_finished_jobs_are_freed_by_the_loading_thread(void **state) {
    fx_t *f = *state;
    enum { N = 20 };
    char *uris[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%02d.txt", i);
        free(tu_write_file(f->game, name, name, strlen(name)));
        uris[i] = malloc(48);
        snprintf(uris[i], 48, "pkg://game/%s", name);
    }
    g_probe_thread = uv_thread_self();
    atomic_store(&g_job_frees, 0);
    atomic_store(&g_job_frees_elsewhere, 0);
    atomic_store(&g_probe, true);
    for (int i = 0; i < N; i++) asset_handle_release(tu_load_wait(f->s, uris[i], ASSET_OK));
    asset_batch_t *b = asset_server_load_group(f->s, (const char *const *)uris + N, N, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    asset_batch_release(b);
    asset_server_flush(f->s);
    atomic_store(&g_probe, false);
    print_message("  %d job records freed, %d on another thread\n", atomic_load(&g_job_frees),
                  atomic_load(&g_job_frees_elsewhere));
    assert_int_equal(atomic_load(&g_job_frees), 2 * N);
    assert_int_equal(atomic_load(&g_job_frees_elsewhere), 0);
    for (int i = 0; i < 2 * N; i++) free(uris[i]);
}

/* A group's pkg:// misses size their slab from the fast path's measure of each URI
 * (asset__uri_slab_estimate_schemed: no second scan), as the scan would have: every
 * length to past the limit (512 bytes: a block of its own) gives the scan's bytes; and a
 * group of 20 misses, one of them 600 bytes long, makes the other 19 jobs in one slab,
 * each freed with it, the long one on its own. (no defect: coverage) */
static void test_group_pkg_misses_size_their_slab_from_the_fast_paths_length(void **state) {
    fx_t *f = *state;
    char uri[600];
    memcpy(uri, "pkg://game/", 11);
    for (size_t len = 11; len < sizeof uri; len++) {
        memset(uri + 11, 'a', len - 11);
        uri[len] = 0;
        size_t want = asset__uri_slab_estimate(uri, ASSET__JOB_ROOM, 7);
        if (asset__uri_slab_estimate_schemed(len, ASSET__JOB_ROOM) != want)
            fail_msg("a %zu-byte pkg:// URI: %zu bytes from its length, %zu from its scan", len,
                     asset__uri_slab_estimate_schemed(len, ASSET__JOB_ROOM), want);
        assert_true((want == 0) == (len > 512));
    }
    enum { N = 20 };
    char *uris[N];
    char seg[201];
    memset(seg, 's', 200);
    seg[200] = 0;
    for (int i = 0; i < N; i++) {
        char name[700];
        if (i == 7) /* three directories of 200 bytes: past the slab's limit */
            snprintf(name, sizeof name, "%s/%s/%s/g%02d.txt", seg, seg, seg, i);
        else
            snprintf(name, sizeof name, "g%02d.txt", i);
        free(tu_write_file(f->game, name, name, strlen(name)));
        size_t n = strlen(name) + 12;
        uris[i] = malloc(n);
        snprintf(uris[i], n, "pkg://game/%s", name);
    }
    g_probe_thread = uv_thread_self();
    atomic_store(&g_job_frees, 0);
    atomic_store(&g_slab_job_frees, 0);
    atomic_store(&g_probe, true);
    asset_batch_t *b = asset_server_load_group(f->s, (const char *const *)uris, N, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    for (int i = 0; i < N; i++) {
        const char *name = strrchr(uris[i], '/') + 1;
        if (i == 7) name = uris[i] + 11;
        tu_expect_bytes(asset_batch_handle(b, (size_t)i), name, strlen(name));
    }
    asset_batch_release(b);
    asset_server_flush(f->s);
    atomic_store(&g_probe, false);
    assert_int_equal(atomic_load(&g_job_frees), N);
    assert_int_equal(atomic_load(&g_slab_job_frees), N - 1);
    for (int i = 0; i < N; i++) free(uris[i]);
}

/* ---- URI normalisation: one block for the URI and its path ---- */

/* Parses in: OK, with uri and path as given, in one allocation of exactly their two
 * strings (the steps between work on the stack). */
static void expect_one_block(const char *in, const char *base, const char *uri, const char *path) {
    asset_uri_t u;
    const char *why = NULL;
    count_start(strlen(uri) + 1 + strlen(path) + 1);
    asset_status_t st = asset__uri_parse(in, base, NULL, &u, &why);
    count_stop();
    if (st != ASSET_OK) fail_msg("%s: %s (%s)", in, asset_err_name(st), why ? why : "?");
    assert_string_equal(u.uri, uri);
    assert_string_equal(u.path, path);
    if (t_blocks != 1 || t_sized != 1)
        fail_msg("%s: %zu blocks (%zu of the size of uri and path), expected one", in, t_blocks,
                 t_sized);
    asset__uri_dispose(&u);
}

static void test_uri_normalisation_allocates_one_block(void **state) {
    (void)state;
    expect_one_block("pkg://game/./ui//hero%23.txt", "/b", "pkg://game/ui/hero%23.txt",
                     "game/ui/hero#.txt");
    expect_one_block("file:///a//b/../c%25.txt", "/b", "file:///a/c%25.txt", "/a/c%.txt");
    expect_one_block("file://localhost/x.txt", "/b", "file:///x.txt", "/x.txt");
    expect_one_block("rel/./x.txt", "/base/dir", "file:///base/dir/rel/x.txt",
                     "/base/dir/rel/x.txt");
    expect_one_block("mem://k%20y", "/b", "mem://k y", "k y");
    expect_one_block("HTTP://Host.Example:8080/a/b?q#frag", "/b", "http://host.example:8080/a/b?q",
                     "host.example:8080/a/b?q");
    expect_one_block("http://H:80?q", "/b", "http://h/?q", "h/?q"); /* port out, '/' in */
    /* a refused URI allocates nothing */
    asset_uri_t u;
    const char *why = NULL;
    count_start(0);
    assert_int_equal(asset__uri_parse("pkg://game/../../x", "/b", NULL, &u, &why),
                     ASSET_E_FORBIDDEN);
    assert_int_equal(asset__uri_parse("file:///a/%zz", "/b", NULL, &u, &why), ASSET_E_INVALID);
    count_stop();
    assert_int_equal(t_blocks, 0);
    assert_null(u.uri);
}

/* ---- records: every pending load pays for a handle and a job ---- */

/* Their fields are ordered by size so that none pads another (288 and 320 bytes before,
 * on 64-bit targets): a field added in the wrong place, or a new one, shows here first
 * and in the bench's scale line. Raise a bound only for a field that pays its way. */
static void test_handle_and_job_records_stay_packed(void **state) {
    (void)state;
    if (sizeof(void *) != 8) skip();
    /* no pointers to its URI and tag; kept_deps (a failed parent keeps what it lent) */
    assert_true(sizeof(struct asset_handle) <= 232);
    assert_true(sizeof(asset__job_t) <= 176); /* the graph's fields in their part */
}

/* What a cached value costs beyond its bytes (asset_bench's cache_overhead, goal
 * 128 B): its record (no extra part), the bytes loader's {data, size} and the cache
 * entry with its key in one block; no version string for a pkg:// file, no pointer to
 * the key. Counted over 400 values of a second group, every handle released, the map's
 * bucket table apart (its share depends on the count: 13 B per value in the bench).
 * Before the cache entry lost its pointers (version, digest, key) and the time beside
 * the hash, this read 136 B plus the key. */
static void test_a_cached_value_costs_its_records_and_key_and_nothing_more(void **state) {
    (void)state;
    enum { N = 400, SIZE = 256 };
    asset_server_t *s = tu_server(2);
    char *dir = tu_mkdtemp();
    const char *uris[2][N];
    char *names[2][N];
    for (int g = 0; g < 2; g++) {
        for (int i = 0; i < N; i++) {
            char rel[32], uri[64];
            snprintf(rel, sizeof rel, "g%d-%04d.bin", g, i);
            free(tu_write_pattern(dir, rel, SIZE));
            snprintf(uri, sizeof uri, "pkg://m/%s", rel);
            uris[g][i] = names[g][i] = strdup(uri);
        }
    }
    assert_int_equal(asset_server_mount(s, "m", dir), ASSET_OK);
    asset_load_options_t o = {0};
    o.loader = "bytes";
    const asset__cache_t *c = &asset__loader_find(s, "bytes")->cache;
    size_t live[2], nb[2];
    for (int g = 0; g < 2; g++) {
        asset_batch_t *b = asset_server_load_group(s, uris[g], N, &o);
        assert_non_null(b);
        assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
        asset_batch_release(b);
        asset_server_flush(s); /* every queued completion and every returned job freed */
        live[g] = atomic_load(&g_live);
        nb[g] = c->map.nbuckets;
        uv_mutex_lock(&s->lock);
        for (size_t r = 0; r < sizeof s->rings / sizeof s->rings[0]; r++)
            live[g] -= s->rings[r].cap * sizeof(asset__job_t *); /* kept up to 256 slots */
        live[g] -= s->inflight.nbuckets * sizeof(void *);        /* kept up to 64 buckets */
        /* a request a worker keeps for its next job (pool.c), if it ran one */
        live[g] -= asset__pool_spare_count(s) * sizeof(struct asset_request);
        uv_mutex_unlock(&s->lock);
    }
    assert_int_equal(c->map.count, 2 * N);
    double per =
        ((double)live[1] - (double)live[0] - (double)(nb[1] - nb[0]) * sizeof(void *)) / N - SIZE -
        2; /* the read's buffer: a byte to see the file grow, and the NUL */
    size_t key = strlen(uris[1][0]) + 1;
    size_t records = sizeof(asset__value_t) + sizeof(asset_bytes_t) + sizeof(asset__cache_entry_t);
    print_message("  %.1f B per cached value beyond its bytes: records %u, key %u\n", per,
                  (unsigned)records, (unsigned)key);
    assert_true(per >= (double)(records + key) - 0.5);
    assert_true(per <= (double)(records + key) + 0.5);
    if (sizeof(void *) == 8) {
        assert_int_equal(sizeof(asset__value_t), 32);
        assert_int_equal(sizeof(asset__cache_entry_t), 40);
    }
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
    for (int g = 0; g < 2; g++)
        for (int i = 0; i < N; i++) free(names[g][i]);
}

/* ---- reads: none after the size the stat gave ---- */

static atomic_int g_reads;
static atomic_int g_read_errno; /* injected into every read while nonzero */

static int count_reads(const char *path) {
    (void)path;
    atomic_fetch_add(&g_reads, 1);
    return atomic_load(&g_read_errno);
}

/* Loads uri (a file of n bytes) and returns how many reads it made. */
static int reads_of(asset_server_t *s, const char *uri, size_t n) {
    atomic_store(&g_reads, 0);
    asset_handle_t *h = tu_load_wait(s, uri, ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_int_equal(b->size, n);
    asset_handle_release(h);
    return atomic_load(&g_reads);
}

static void test_file_is_read_up_to_its_stat_size_and_no_further(void **state) {
    (void)state;
    asset__fs_read_fault = count_reads; /* before the server's threads exist */
    asset_server_t *s = tu_server(1);
    char *dir = tu_mkdtemp();
    char *small = tu_write_file(dir, "small.txt", "small file", 10);
    char *empty = tu_write_file(dir, "empty.txt", "", 0);
    /* two chunks of fs.c's READ_CHUNK (1 MiB): two reads, not three */
    char *big = tu_write_pattern(dir, "big.bin", (size_t)2 << 20);
    char *usmall = tu_file_uri(small), *uempty = tu_file_uri(empty), *ubig = tu_file_uri(big);
    assert_int_equal(reads_of(s, usmall, 10), 1);
    assert_int_equal(reads_of(s, ubig, (size_t)2 << 20), 2);
    assert_int_equal(reads_of(s, uempty, 0), 1); /* size 0: the one read that says EOF */
    assert_int_equal(asset_server_mount(s, "dir", dir), ASSET_OK);
    assert_int_equal(reads_of(s, "pkg://dir/small.txt", 10), 1);
    asset_server_destroy(s);
    asset__fs_read_fault = NULL;
    tu_rmrf(dir);
    free(usmall);
    free(uempty);
    free(ubig);
    free(small);
    free(empty);
    free(big);
    free(dir);
}

/* ---- a worker's read of a small file: the value's blocks and nothing else ---- */

typedef struct woken {
    uv_mutex_t m;
    uv_cond_t c;
    int n;
} woken_t;
static void on_wake(void *user) {
    woken_t *w = user;
    uv_mutex_lock(&w->m);
    w->n++;
    uv_cond_signal(&w->c);
    uv_mutex_unlock(&w->m);
}
/* Blocks until the server's wake hook ran since the last call (10 s at most). */
static void wait_woken(woken_t *w) {
    uv_mutex_lock(&w->m);
    while (!w->n) assert_int_equal(uv_cond_timedwait(&w->c, &w->m, 10u * 1000000000u), 0);
    w->n = 0;
    uv_mutex_unlock(&w->m);
}

/* Loads uri with a worker, this thread never running the job (no wait: the server's
 * wake hook says when to flush), and returns its state. */
static asset_state_t load_on_the_worker(asset_server_t *s, woken_t *woken, const char *uri) {
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    assert_non_null(h);
    for (int i = 0; i < 1000 && asset_handle_state(h) <= ASSET_STATE_LOADING; i++) {
        wait_woken(woken);
        asset_server_flush(s);
    }
    asset_state_t st = asset_handle_state(h);
    asset_handle_release(h);
    return st;
}

/* A worker reads a small file into the blocks its value keeps (the buffer, the value's
 * record with the bytes loader's value and its cache entry in it) and no other: its request
 * is the one its last job let go of, and an open file is its descriptor (no box). */
static void test_a_workers_small_file_read_allocates_only_what_the_value_keeps(void **state) {
    (void)state;
    woken_t woken = {0};
    assert_int_equal(uv_mutex_init(&woken.m), 0);
    assert_int_equal(uv_cond_init(&woken.c), 0);
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    cfg.wake = on_wake;
    cfg.user = &woken;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    if (s->nworkers == 0) { /* the single-threaded web build: jobs run in flush */
        asset_server_destroy(s);
        uv_cond_destroy(&woken.c);
        uv_mutex_destroy(&woken.m);
        skip();
    }
    char *dir = tu_mkdtemp();
    char *a = tu_write_file(dir, "a.bin", "first", 5),
         *b = tu_write_file(dir, "b.bin", "second", 6);
    char *ua = tu_file_uri(a), *ub = tu_file_uri(b);
    assert_int_equal(load_on_the_worker(s, &woken, ua), ASSET_STATE_LOADED); /* the first job */
    g_count_thread = uv_thread_self();
    atomic_store(&g_other_blocks, 0);
    atomic_store(&g_other_requests, 0);
    atomic_store(&g_count_others, true);
    assert_int_equal(load_on_the_worker(s, &woken, ub), ASSET_STATE_LOADED);
    atomic_store(&g_count_others, false);
    print_message("  the second file: %u blocks on the worker, %u of a request's size\n",
                  (unsigned)atomic_load(&g_other_blocks), (unsigned)atomic_load(&g_other_requests));
    assert_int_equal(atomic_load(&g_other_requests), 0);
    assert_int_equal(atomic_load(&g_other_blocks), 2);
    asset_server_destroy(s);
    uv_cond_destroy(&woken.c);
    uv_mutex_destroy(&woken.m);
    tu_rmrf(dir);
    free(ua);
    free(ub);
    free(a);
    free(b);
    free(dir);
}

/* The bytes loader's value in its record's slot moves with the record when the record
 * gets its extra part after the parse (a redirect's base), and the record's last release
 * frees the buffer and the record, once each (ASan, valgrind). */
static void test_a_value_in_its_records_slot_moves_with_the_record(void **state) {
    (void)state;
    asset__value_t *v = asset__value_new_slotted(NULL, NULL, false);
    assert_non_null(v);
    asset_bytes_t *b = asset__value_slot(v);
    assert_non_null(b);
    uint8_t *data = asset_alloc(4);
    assert_non_null(data);
    memcpy(data, "abc", 4);
    b->data = data;
    b->size = 3;
    v->value = b;
    assert_true(asset__value_add_extra(NULL, &v));
    asset_bytes_t *moved = v->value;
    assert_ptr_equal(moved, asset__value_slot(v));
    assert_ptr_equal(moved->data, data);
    assert_int_equal(moved->size, 3);
    assert_non_null(asset__value_x(v));
    asset__value_release(v);
    /* a record without the slot has none */
    v = asset__value_new(NULL, NULL, false);
    assert_non_null(v);
    assert_null(asset__value_slot(v));
    asset_free(v); /* no value, no loader: the record alone */
}

/* The same through a load: a source that says where its bytes came from (an http
 * redirect's base) gives the record its extra part after the parse, which moves the
 * bytes loader's value with it; the handle sees the moved one. */
static asset_status_t based_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    const char *why = NULL;
    assert_int_equal(asset__request_set_base(r, "http://127.0.0.1/elsewhere.bin", &why), ASSET_OK);
    return asset_request_write(r, "moved", 5);
}

static void test_a_bytes_value_moves_with_its_record_given_a_base(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_source_t src = {ASSET_SOURCE_ABI, "based", 0, based_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, NULL), ASSET_OK);
    asset_load_options_t o = {0};
    o.loader = "bytes";
    asset_handle_t *h = asset_server_load(s, "based://a/b.bin", &o);
    assert_non_null(h);
    assert_int_equal(tu_wait(h), ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_non_null(b);
    assert_int_equal(b->size, 5);
    assert_memory_equal(b->data, "moved", 6);
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_read_error_names_the_uri_and_the_step(void **state) {
    (void)state;
    asset__fs_read_fault = count_reads;
    atomic_store(&g_read_errno, EIO);
    asset_server_t *s = tu_server(1);
    char *dir = tu_mkdtemp();
    char *path = tu_write_file(dir, "a.txt", "a", 1);
    char *uri = tu_file_uri(path);
    asset_handle_t *h = tu_load_wait(s, uri, ASSET_E_IO);
    const char *msg = asset_handle_error_message(h);
    assert_non_null(strstr(msg, uri));
    assert_non_null(strstr(msg, "read: "));
    asset_handle_release(h);
    asset_server_destroy(s);
    atomic_store(&g_read_errno, 0);
    asset__fs_read_fault = NULL;
    tu_rmrf(dir);
    free(uri);
    free(path);
    free(dir);
}

int main(void) {
    asset_set_allocator(&g_hook); /* before any server */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cache_hit_on_immutable_source_allocates_only_the_handle, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cache_hit_on_a_users_immutable_source_allocates_only_the_handle, setup, teardown),
        cmocka_unit_test(test_the_scheme_filter_tells_mutable_builtins_from_immutable_ones),
        cmocka_unit_test_setup_teardown(test_a_slice_of_hits_makes_its_handles_in_one_block, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_slice_of_misses_makes_its_handles_in_one_block,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_groups_hits_find_each_uris_own_source, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_miss_selects_the_loader_once_and_makes_one_handle,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_miss_by_a_uri_that_normalises_otherwise_gets_the_normalised_handle, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_uri_past_the_prefix_check_fails_naming_uri_and_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finished_jobs_are_freed_by_the_loading_thread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_group_pkg_misses_size_their_slab_from_the_fast_paths_length, setup, teardown),
        cmocka_unit_test(test_uri_normalisation_allocates_one_block),
        cmocka_unit_test(test_handle_and_job_records_stay_packed),
        cmocka_unit_test(test_a_cached_value_costs_its_records_and_key_and_nothing_more),
        cmocka_unit_test(test_file_is_read_up_to_its_stat_size_and_no_further),
        cmocka_unit_test(test_read_error_names_the_uri_and_the_step),
        cmocka_unit_test(test_a_workers_small_file_read_allocates_only_what_the_value_keeps),
        cmocka_unit_test(test_a_value_in_its_records_slot_moves_with_the_record),
        cmocka_unit_test(test_a_bytes_value_moves_with_its_record_given_a_base),
    };
    int rc = TU_RUN_GROUP_TESTS(tests, NULL, NULL);
    asset_set_allocator(NULL); /* the default again */
    return rc;
}
