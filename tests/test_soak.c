/* test_soak.c - a long game session on one server: thousands of cycles that each load
 * and release assets of their own (distinct URIs: a level's, then the next level's)
 * through every path, and the library's memory, every cache cleared, back where it was
 * after the first cycles. Whatever a URI, a tag, a failure or a reload leaves behind for
 * good grows with the cycles: a server a game keeps for hours would grow without bound.
 *
 * Each cycle: mem:// documents of the "d" loader with dependencies (one by a label, one
 * failing: awaited by its parent until it is fixed), a label loaded on its own; a file:// file
 * written, loaded, reloaded and deleted; pkg:// files of a directory package and of an embedded
 * one, and a missing one; a group batch, a folder batch; a task; a load with a timeout;
 * loads with a tag of the cycle's own, half of them cancelled by it; once, a big level
 * (big_level). Watch on (hot reload) for one server, off for another, on with its files
 * polled (as when the OS is out of watches) for a third. A check that fails prints the
 * blocks allocated since its baseline that are still live (dump_since).
 *
 * Then bursts (test_a_burst_...): 20,000 of something in one frame, then released: the
 * table or the array that held them gives its size back, keeping every entry left. And
 * a queue with holes that packs in place, each allocation of the load that packs it
 * failing in turn.
 *
 * The counting allocator here counts bytes as well as blocks: a table or an array that
 * keeps its high-water size is one block either way. It counts its calls too, and fails
 * the next ones of a thread on demand (tl_fail_allocs: out of memory; after tl_alloc_skip). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_util.h"
#include "tu_os.h"

/* ---- an allocator that counts live blocks and bytes (a header before each block) ---- */

typedef struct blk {
    size_t n;
    unsigned long serial; /* when it was allocated (or last reallocated) */
    struct blk *prev, *next;
} blk_t;
typedef union {
    blk_t b;
    max_align_t align;
} hdr_t;
static atomic_long g_blocks, g_bytes;
static atomic_long g_calls;              /* asset_alloc and asset_realloc calls */
static _Thread_local int tl_fail_allocs; /* the next ones on this thread fail (out of memory) */
static _Thread_local int tl_alloc_skip;  /* ... after this many more of them succeed */
/* the live blocks, newest first, for what a failed check prints (dump_since) */
static atomic_flag g_live_lock = ATOMIC_FLAG_INIT;
static blk_t *g_live;
static unsigned long g_serial;

static void live_lock(void) {
    while (atomic_flag_test_and_set_explicit(&g_live_lock, memory_order_acquire)) {
    }
}
static void live_unlock(void) { atomic_flag_clear_explicit(&g_live_lock, memory_order_release); }

/* [live lock] */
static void live_link(blk_t *b) {
    b->serial = ++g_serial;
    b->prev = NULL;
    b->next = g_live;
    if (g_live) g_live->prev = b;
    g_live = b;
}
static void live_unlink(blk_t *b) {
    if (b->prev)
        b->prev->next = b->next;
    else
        g_live = b->next;
    if (b->next) b->next->prev = b->prev;
}

static unsigned long serial_now(void) {
    live_lock();
    unsigned long n = g_serial;
    live_unlock();
    return n;
}

/* Prints the blocks allocated since serial and still live (at most 40): their sizes and
 * their first bytes (a key or a path says whose they are). */
static void dump_since(unsigned long serial) {
    live_lock();
    int shown = 0;
    for (blk_t *b = g_live; b && shown < 40; b = b->next) {
        if (b->serial <= serial) continue;
        char text[49];
        const unsigned char *p = (const unsigned char *)((hdr_t *)b + 1);
        size_t k = 0;
        for (; k < b->n && k < sizeof text - 1; k++)
            text[k] = p[k] >= 32 && p[k] < 127 ? p[k] : '.';
        text[k] = 0;
        print_message("  live: %lu bytes (#%lu) \"%s\"\n", (unsigned long)b->n, b->serial, text);
        shown++;
    }
    live_unlock();
}

static bool fail_now(void) {
    atomic_fetch_add(&g_calls, 1);
    if (tl_fail_allocs <= 0) return false;
    if (tl_alloc_skip > 0) {
        tl_alloc_skip--;
        return false;
    }
    tl_fail_allocs--;
    return true;
}

static void *s_alloc(size_t n, void *u) {
    (void)u;
    if (fail_now()) return NULL;
    hdr_t *h = n <= SIZE_MAX - sizeof *h ? malloc(sizeof *h + n) : NULL;
    if (!h) return NULL;
    h->b.n = n;
    live_lock();
    live_link(&h->b);
    live_unlock();
    atomic_fetch_add(&g_blocks, 1);
    atomic_fetch_add(&g_bytes, (long)n);
    return h + 1;
}
static void s_free(void *p, void *u) {
    (void)u;
    if (!p) return;
    hdr_t *h = (hdr_t *)p - 1;
    live_lock();
    live_unlink(&h->b);
    live_unlock();
    atomic_fetch_sub(&g_blocks, 1);
    atomic_fetch_sub(&g_bytes, (long)h->b.n);
    free(h);
}
static void *s_realloc(void *p, size_t n, void *u) {
    if (!p) return s_alloc(n, u);
    if (fail_now()) return NULL;
    hdr_t *h = (hdr_t *)p - 1;
    size_t was = h->b.n;
    live_lock(); /* held across the move: the list never sees a freed block */
    live_unlink(&h->b);
    hdr_t *g = n <= SIZE_MAX - sizeof *g ? realloc(h, sizeof *g + n) : NULL;
    if (!g) {
        live_link(&h->b);
        live_unlock();
        return NULL;
    }
    g->b.n = n;
    live_link(&g->b);
    live_unlock();
    atomic_fetch_add(&g_bytes, (long)n - (long)was);
    return g + 1;
}

/* ---- the "d" loader: lines "dep URI" (a dependency), "label NAME" (a label) ---- */

static void free_text(void *v, void *user) {
    (void)user;
    asset_free(v);
}

static char *text_copy(const char *t, size_t n) {
    char *v = asset_alloc(n + 1);
    if (v) {
        memcpy(v, t, n);
        v[n] = 0;
    }
    return v;
}

static asset_status_t d_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    const char *t = (const char *)asset_parse_data(p);
    for (const char *l = t; *l; l += strcspn(l, "\n"), l += *l == '\n') {
        size_t n = strcspn(l, "\n");
        char arg[256];
        if (n > 4 && !strncmp(l, "dep ", 4)) {
            snprintf(arg, sizeof arg, "%.*s", (int)(n - 4), l + 4);
            if (!asset_parse_depend(p, arg, NULL))
                return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        } else if (n > 6 && !strncmp(l, "label ", 6)) {
            snprintf(arg, sizeof arg, "%.*s", (int)(n - 6), l + 6);
            char *v = text_copy(arg, strlen(arg));
            if (!v || asset_parse_add_labeled(p, arg, v, 8, free_text, NULL) != ASSET_OK) {
                asset_free(v);
                return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
            }
        }
    }
    char *v = text_copy(t, asset_parse_size(p));
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, v, asset_parse_size(p));
    return ASSET_OK;
}

static void d_free(void *ctx, void *v) {
    (void)ctx;
    asset_free(v);
}

static asset_status_t task_fn(asset_task_t *t, void *arg) {
    (void)arg;
    char *v = text_copy("task", 4);
    if (!v) return ASSET_E_NO_MEMORY;
    asset_task_set_value(t, v, 4, NULL, NULL);
    return ASSET_OK;
}

/* ---- a session ---- */

#define NPKG 16
static const asset_embedded_file_t g_emb[] = {
    {"e0.txt", "e0", 2}, {"e1.txt", "e1", 2}, {"e2.txt", "e2", 2}, {"e3.txt", "e3", 2}};

typedef struct session {
    asset_server_t *s;
    char *dir;  /* files written and deleted by the cycles */
    char *game; /* the directory package */
    bool watch;
} session_t;

static void put(asset_server_t *s, const char *key, const char *text) {
    assert_int_equal(asset_mem_put(s, key, text, strlen(text)), ASSET_OK);
}

/* A look at the I/O thread from there: it ran what was posted before, how many of its
 * watch handles were still closing and how many changes waited for their quiet time. */
typedef struct io_look {
    asset_server_t *s;
    atomic_bool reached;
    unsigned closing;
    size_t pending;
} io_look_t;

static void io_reached(void *arg) {
    io_look_t *l = arg;
    l->closing = asset__rio_closing(l->s);
    l->pending = asset__rio_pending(l->s);
    atomic_store(&l->reached, true);
}

/* Fills l on s's I/O thread, after what was posted there before (flushing meanwhile).
 * False: s has no I/O thread. */
static bool look_io(asset_server_t *s, io_look_t *l) {
    l->s = s;
    l->closing = 0;
    l->pending = 0;
    atomic_init(&l->reached, false);
    if (!tu_io_post(s, io_reached, l)) return false;
    TU_FLUSH_UNTIL(s, atomic_load(&l->reached));
    return true;
}

/* Flushes until the I/O thread has run what was posted to it (watches, unwatches) and
 * what that posted back, has no watch closing (Windows ends a close once the OS gave
 * back the directory read it cancelled: under wine the cycles' folder watches still
 * closing at one look were 94 to 105 blocks, 27 to 31 KB, "left" by the cycles; +0
 * once waited for), no change waiting for its quiet time (a polled file's watch
 * counts one as it begins: CI once measured 14 blocks, 3,307 bytes, where the cause
 * was one of these) and no reload running, then clears the caches: what the cycles
 * hold is released. */
static void settle(session_t *x) {
    asset_server_t *s = x->s;
    uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
    /* two looks in a row with none closing and none pending */
    for (int looks = 0; looks < 2;) {
        asset_server_flush(s);
        io_look_t l;
        if (!look_io(s, &l)) break; /* no I/O thread (nothing needed one) */
        uv_mutex_lock(&s->lock);    /* and no reload running or to run (test_reload's settle) */
        bool reloading = !tu_reloads_idle_locked(s);
        uv_mutex_unlock(&s->lock);
        looks = l.closing || l.pending || reloading ? 0 : looks + 1;
        if (looks == 0 && uv_hrtime() > deadline)
            fail_msg("%u watch handles still closing, %zu changes pending%s", l.closing, l.pending,
                     reloading ? ", reloads running" : "");
    }
    asset_server_clear_caches(s);
    asset_server_flush(s);
}

/* One cycle: the assets of level i, loaded and released. */
static void cycle(session_t *x, int i) {
    asset_server_t *s = x->s;
    char key[64], text[256], uri[256];
    asset_handle_t *hs[16];
    size_t n = 0;
    /* mem://: a document with a dependency, a label of another, and a failing one */
    snprintf(key, sizeof key, "l%d/leaf.txt", i);
    put(s, key, "leaf");
    snprintf(key, sizeof key, "l%d/q.d", i);
    put(s, key, "label x\n");
    snprintf(key, sizeof key, "l%d/p.d", i);
    snprintf(text, sizeof text, "dep mem://l%d/leaf.txt\ndep mem://l%d/q.d#x\nlabel y\n", i, i);
    put(s, key, text);
    snprintf(key, sizeof key, "l%d/bad.d", i);
    snprintf(text, sizeof text, "dep mem://l%d/none.txt\n", i); /* not there: it fails */
    put(s, key, text);
    snprintf(uri, sizeof uri, "mem://l%d/p.d", i);
    hs[n++] = asset_server_load(s, uri, NULL);
    snprintf(uri, sizeof uri, "mem://l%d/p.d#y", i);
    hs[n++] = asset_server_load(s, uri, NULL);
    snprintf(uri, sizeof uri, "mem://l%d/bad.d", i);
    asset_handle_t *bad = asset_server_load(s, uri, NULL);
    /* file://: written, loaded, reloaded (with watch), deleted after */
    char name[32];
    snprintf(name, sizeof name, "f%d.txt", i);
    char *path = tu_write_file(x->dir, name, "file", 4);
    asset_handle_t *file = tu_load_wait(s, path, ASSET_OK);
    if (x->watch && i % 4 == 0) asset_server_reload(s, path);
    /* pkg://: a directory package's, an embedded one's, a missing one */
    snprintf(uri, sizeof uri, "pkg://game/g%d.txt", i % NPKG);
    hs[n++] = asset_server_load(s, uri, NULL);
    snprintf(uri, sizeof uri, "pkg://emb/e%d.txt", i % 4);
    hs[n++] = asset_server_load(s, uri, NULL);
    snprintf(uri, sizeof uri, "pkg://game/missing%d.txt", i);
    hs[n++] = asset_server_load(s, uri, NULL);
    /* a task, a timeout, tags of the cycle's own */
    asset_load_options_t to = {.timeout_ms = 600000};
    hs[n++] = asset_server_spawn(s, task_fn, NULL, NULL, &to);
    snprintf(uri, sizeof uri, "mem://l%d/leaf.txt", i);
    hs[n++] = asset_server_load(s, uri, &to);
    char tag[32];
    snprintf(tag, sizeof tag, "level%d", i);
    asset_load_options_t tagged = {.tag = tag, .no_cache = true};
    snprintf(uri, sizeof uri, "mem://l%d/q.d", i);
    hs[n++] = asset_server_load(s, uri, &tagged);
    if (i % 2) asset_server_cancel_tag(s, tag, NULL);
    /* batches: a group every cycle, a folder every fourth */
    char g0[64], g1[64];
    snprintf(g0, sizeof g0, "mem://l%d/leaf.txt", i);
    snprintf(g1, sizeof g1, "mem://l%d/q.d#x", i);
    const char *group[] = {g0, g1, "pkg://emb/e0.txt"};
    asset_batch_t *b = asset_server_load_group(s, group, 3, NULL);
    asset_batch_t *folder = NULL;
    if (i % 4 == 0) {
        snprintf(uri, sizeof uri, "mem://l%d", i);
        folder = asset_server_load_folder(s, uri, NULL);
    }
    for (size_t k = 0; k < n; k++) {
        assert_non_null(hs[k]);
        asset_status_t st = tu_wait(hs[k]);
        if (st != ASSET_OK && st != ASSET_E_NOT_FOUND && st != ASSET_E_CANCELLED)
            fail_msg("cycle %d: %s: %s", i, asset_handle_uri(hs[k]),
                     asset_handle_error_message(hs[k]));
    }
    assert_int_equal(tu_wait(bad), ASSET_E_DEPENDENCY);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    if (folder) assert_int_equal(asset_batch_wait(folder, 30000), ASSET_OK); /* bad.d failed */
    /* the level ends: everything released, its mem:// keys and file gone */
    for (size_t k = 0; k < n; k++) asset_handle_release(hs[k]);
    asset_handle_release(bad);
    asset_handle_release(file);
    asset_batch_release(b);
    asset_batch_release(folder);
    snprintf(key, sizeof key, "l%d/none.txt", i); /* fixed: bad.d's awaited list goes */
    put(s, key, "late");
    const char *keys[] = {"leaf.txt", "q.d", "p.d", "bad.d", "none.txt"};
    for (size_t k = 0; k < 5; k++) {
        snprintf(key, sizeof key, "l%d/%s", i, keys[k]);
        assert_int_equal(asset_mem_remove(s, key), ASSET_OK);
    }
    free(path); /* the file stays: a deletion's event is a change, seen a while later */
    asset_server_flush(s);
}

static void session_open(session_t *x, bool watch) {
    memset(x, 0, sizeof *x);
    x->watch = watch;
    x->dir = tu_mkdtemp();
    x->game = tu_path(x->dir, "game");
    char name[32];
    for (int k = 0; k < NPKG; k++) {
        snprintf(name, sizeof name, "g%d.txt", k);
        free(tu_write_file(x->game, name, "g", 1));
    }
    asset_server_config_t cfg = {.max_workers = 2, .watch = watch};
    x->s = asset_server_create(&cfg);
    assert_non_null(x->s);
    static const char *const suffixes[] = {".d", NULL};
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "d",
                         .suffixes = suffixes,
                         .parse = d_parse,
                         .free_value = d_free};
    assert_int_equal(asset_server_register_loader(x->s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_server_mount(x->s, "game", x->game), ASSET_OK);
    assert_int_equal(asset_server_mount_embedded(x->s, "emb", g_emb, 4), ASSET_OK);
}

static void session_close(session_t *x) {
    asset_server_destroy(x->s);
    tu_rmrf(x->dir);
    free(x->dir);
    free(x->game);
}

/* A big level, once: BIG assets at a time, each a document with a dependency that
 * loads and one that fails (awaited, never fixed), a file (watched), all with a
 * timeout; then all released.
 * The tables and arrays it grew give their size back: the small levels after it never
 * need it. */
enum { BIG = 300 };
static void big_level(session_t *x) {
    asset_server_t *s = x->s;
    static asset_handle_t *hs[2 * BIG];
    char key[64], text[256], name[32];
    asset_load_options_t to = {.timeout_ms = 600000};
    for (int k = 0; k < BIG; k++) {
        snprintf(key, sizeof key, "big/leaf%d.txt", k);
        put(s, key, "leaf");
        snprintf(key, sizeof key, "big/doc%d.d", k);
        snprintf(text, sizeof text, "dep mem://big/leaf%d.txt\ndep mem://big/none%d.txt\n", k, k);
        put(s, key, text);
        snprintf(text, sizeof text, "mem://%s", key);
        hs[k] = asset_server_load(s, text, &to);
        snprintf(name, sizeof name, "big%d.txt", k);
        char *path = tu_write_file(x->dir, name, "big", 3);
        hs[BIG + k] = asset_server_load(s, path, &to);
        free(path);
    }
    for (int k = 0; k < BIG; k++) {
        assert_int_equal(tu_wait(hs[k]), ASSET_E_DEPENDENCY);
        assert_int_equal(tu_wait(hs[BIG + k]), ASSET_OK);
    }
    /* released, never fixed: their places in the awaited lists are swept */
    for (int k = 0; k < 2 * BIG; k++) asset_handle_release(hs[k]);
    asset_server_flush(s);
    for (int k = 0; k < BIG; k++) {
        const char *keys[] = {"leaf", "doc"}, *ext[] = {"txt", "d"};
        for (int j = 0; j < 2; j++) {
            snprintf(key, sizeof key, "big/%s%d.%s", keys[j], k, ext[j]);
            assert_int_equal(asset_mem_remove(s, key), ASSET_OK);
        }
    }
    asset_server_flush(s);
}

/* Cycles [from, to) of x. */
static void run(session_t *x, int from, int to) {
    for (int i = from; i < to; i++) cycle(x, i);
}

static int g_cycles = 2000;

/* polled: the watched files are polled, as when the OS is out of watches */
static void check_session(bool watch, bool polled) {
    enum { WARM = 100 };
    session_t x;
    long blocks0 = atomic_load(&g_blocks), bytes0 = atomic_load(&g_bytes);
    atomic_store(&asset__watch_force_poll, polled);
    session_open(&x, watch);
    run(&x, 0, WARM);
    settle(&x);
    long blocks = atomic_load(&g_blocks), bytes = atomic_load(&g_bytes);
    unsigned long serial = serial_now();
    big_level(&x);
    run(&x, WARM, g_cycles);
    settle(&x);
    long dblocks = atomic_load(&g_blocks) - blocks, dbytes = atomic_load(&g_bytes) - bytes;
    const char *mode = !watch ? "off" : polled ? "on, polled" : "on";
    print_message("watch %s: after %d cycles %ld blocks, %ld bytes; after %d more %+ld blocks, "
                  "%+ld bytes\n",
                  mode, WARM, blocks - blocks0, bytes - bytes0, g_cycles - WARM, dblocks, dbytes);
    /* a few blocks and bytes of slack: the maps the big level grew are trimmed down to
     * 64 buckets, not to the 16 they had (512 bytes instead of 128 each) */
    if (dblocks > 8 || dbytes > 4096) {
        dump_since(serial);
        fail_msg("%d cycles left %ld blocks, %ld bytes more (watch %s)", g_cycles - WARM, dblocks,
                 dbytes, mode);
    }
    session_close(&x);
    atomic_store(&asset__watch_force_poll, false);
    long leaked = atomic_load(&g_blocks) - blocks0;
    if (leaked) fail_msg("%ld blocks leaked", leaked);
}

static void test_a_long_session_returns_to_its_baseline_with_watch(void **state) {
    (void)state;
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    if (pf && !strcmp(pf, "web")) skip(); /* no file watching there */
    check_session(true, false);
}

static void test_a_long_session_returns_to_its_baseline_without_watch(void **state) {
    (void)state;
    check_session(false, false);
}

/* Polled files count a change as their watch begins (reload.c's watch_add): the changes
 * waiting for their quiet time are waited for (settle), and nothing stays. */
static void test_a_long_session_returns_to_its_baseline_polling(void **state) {
    (void)state;
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    if (pf && !strcmp(pf, "web")) skip(); /* no file watching there */
    check_session(true, true);
}

/* ---- a session whose cache stays at its budget ---- */

static long live_blocks(asset_server_t *s, bool bytes);

/* Live blocks and bytes after the held handles were released, the caches cleared and
 * the flush freed what they held, less the workers' spare requests (live_blocks). */
static void cleared_live(asset_server_t *s, asset_handle_t **held, long *blocks, long *bytes) {
    for (int j = 0; j < 2; j++) {
        if (held[j]) asset_handle_release(held[j]);
        held[j] = NULL;
    }
    asset_server_clear_caches(s);
    asset_server_flush(s);
    *blocks = live_blocks(s, false);
    *bytes = live_blocks(s, true);
}

enum { AT_BUDGET_KEYS = 64, AT_BUDGET_SIZE = 100 };

/* One cycle: two keys loaded (their values checked), the previous cycle's handles
 * released only then (values evicted while held); a key of the cycle's own put, loaded
 * and removed; now and then the budget lowered to one value and raised again, or a key
 * invalidated. */
static void at_budget_cycle(asset_server_t *s, int i, asset_handle_t **held) {
    char uri[48], key[32];
    asset_handle_t *now[2];
    unsigned ks[2] = {(unsigned)(i * 7) % AT_BUDGET_KEYS, (unsigned)(i * 13 + 1) % AT_BUDGET_KEYS};
    for (int j = 0; j < 2; j++) {
        snprintf(uri, sizeof uri, "mem://s%02u.bin", ks[j]);
        now[j] = asset_server_load(s, uri, NULL);
        assert_non_null(now[j]);
    }
    for (int j = 0; j < 2; j++) {
        assert_int_equal(tu_wait(now[j]), ASSET_OK);
        const asset_bytes_t *b = asset_handle_value(now[j]);
        assert_int_equal(b->size, AT_BUDGET_SIZE);
        assert_int_equal(b->data[0], 'A' + ks[j] % 26);
        if (held[j]) asset_handle_release(held[j]);
        held[j] = now[j];
    }
    snprintf(key, sizeof key, "c%d.bin", i);
    put(s, key, "cycle");
    snprintf(uri, sizeof uri, "mem://%s", key);
    asset_handle_release(tu_load_wait(s, uri, ASSET_OK));
    assert_int_equal(asset_mem_remove(s, key), ASSET_OK);
    if (i % 50 == 0) {
        assert_int_equal(asset_server_set_cache_budget(s, "bytes", AT_BUDGET_SIZE + 16), ASSET_OK);
        assert_int_equal(asset_server_set_cache_budget(s, "bytes", 5 * (AT_BUDGET_SIZE + 16)),
                         ASSET_OK);
    }
    if (i % 97 == 0) {
        snprintf(uri, sizeof uri, "mem://s%02u.bin", (unsigned)i % AT_BUDGET_KEYS);
        asset_server_invalidate(s, uri);
    }
    asset_server_flush(s);
}

/* A long session whose bytes cache stays full at its budget (five values of 64 keys):
 * thousands of evictions, of values held and not, budget changes and invalidations,
 * leave the library's memory where it was after the first cycles (the caches cleared at
 * both looks, so that the same entries are compared) and keep the cache within budget. */
static void test_a_long_session_at_its_cache_budget_returns_to_its_baseline(void **state) {
    (void)state;
    enum { WARM = 200 };
    long blocks0 = atomic_load(&g_blocks);
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    assert_int_equal(asset_server_set_cache_budget(s, "bytes", 5 * (AT_BUDGET_SIZE + 16)),
                     ASSET_OK);
    for (unsigned k = 0; k < AT_BUDGET_KEYS; k++) {
        char key[32], val[AT_BUDGET_SIZE + 1];
        snprintf(key, sizeof key, "s%02u.bin", k);
        memset(val, 'A' + (int)(k % 26), AT_BUDGET_SIZE);
        val[AT_BUDGET_SIZE] = 0;
        put(s, key, val);
    }
    asset_handle_t *held[2] = {NULL, NULL};
    for (int i = 0; i < WARM; i++) at_budget_cycle(s, i, held);
    long blocks, bytes;
    cleared_live(s, held, &blocks, &bytes);
    asset_stats_t st0, st;
    asset_server_stats(s, &st0);
    unsigned long serial = serial_now();
    for (int i = WARM; i < g_cycles; i++) {
        at_budget_cycle(s, i, held);
        if (i % 100 == 0) {
            asset_server_stats(s, &st);
            assert_true(st.bytes_cached <= 5 * (AT_BUDGET_SIZE + 16));
        }
    }
    long dblocks, dbytes;
    cleared_live(s, held, &dblocks, &dbytes);
    dblocks -= blocks;
    dbytes -= bytes;
    asset_server_stats(s, &st);
    print_message("at budget: %d cycles, %llu evictions: %+ld blocks, %+ld bytes\n",
                  g_cycles - WARM, (unsigned long long)(st.cache_evictions - st0.cache_evictions),
                  dblocks, dbytes);
    assert_true(st.cache_evictions - st0.cache_evictions > (uint64_t)(g_cycles - WARM));
    if (dblocks || dbytes) {
        dump_since(serial);
        fail_msg("%d cycles at the cache budget left %ld blocks, %ld bytes more", g_cycles - WARM,
                 dblocks, dbytes);
    }
    asset_server_destroy(s);
    long leaked = atomic_load(&g_blocks) - blocks0;
    if (leaked) fail_msg("%ld blocks leaked", leaked);
}

/* ---- bursts: a table or an array grown for one gives its size back ---- */

enum { BURST = 20000 };

static void count_cb(asset_handle_t *h, void *user) {
    (void)h;
    (*(int *)user)++;
}

/* A server with mem://one.txt loaded, its handle in *h0. watch: the URI index is on. */
static asset_server_t *burst_server(bool watch, asset_handle_t **h0) {
    asset_server_config_t cfg = {.max_workers = 2, .watch = watch};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    put(s, "one.txt", "one");
    *h0 = asset_server_load(s, "mem://one.txt", NULL);
    assert_int_equal(tu_wait(*h0), ASSET_OK);
    return s;
}

/* n loads of mem://one.txt (a cache hit each), each with a completion callback when cb,
 * flushed until every callback fired, released. */
static void load_burst(asset_server_t *s, asset_handle_t **hs, int n, bool cb) {
    int fired = 0;
    for (int i = 0; i < n; i++) {
        hs[i] = asset_server_load(s, "mem://one.txt", NULL);
        assert_non_null(hs[i]);
        if (cb) assert_true(asset_handle_on_completed(hs[i], count_cb, &fired) != 0);
    }
    for (int i = 0; i < n; i++) assert_int_equal(tu_wait(hs[i]), ASSET_OK);
    TU_FLUSH_UNTIL(s, fired == (cb ? n : 0));
    for (int i = 0; i < n; i++) asset_handle_release(hs[i]);
    asset_server_flush(s);
}

static size_t cb_ix_cap(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    size_t c = s->cb_ix_cap;
    uv_mutex_unlock(&s->lock);
    return c;
}

/* A burst of loads with completion callbacks (a level's 20,000 in one frame), fired and
 * released: the index of callbacks by id kept its high-water table (65,536 slots, 512 KB)
 * for the server's life. */
static void test_a_burst_of_callbacks_gives_the_index_back(void **state) {
    (void)state;
    static asset_handle_t *hs[BURST];
    asset_handle_t *h0;
    asset_server_t *s = burst_server(false, &h0);
    load_burst(s, hs, 100, true);
    long bytes = atomic_load(&g_bytes);
    load_burst(s, hs, BURST, true);
    long dbytes = atomic_load(&g_bytes) - bytes;
    print_message("after %d callbacks: %+ld bytes, an index of %lu slots\n", BURST, dbytes,
                  (unsigned long)cb_ix_cap(s));
    if (dbytes > 1024) fail_msg("a burst of %d callbacks left %ld bytes", BURST, dbytes);
    asset_handle_release(h0);
    asset_server_destroy(s);
}

/* Callbacks connected by the thousands, then all but some disconnected: every shrink of
 * the index keeps the others (each found by its id after), one out of memory keeps the
 * index as it was, and a count going up and down by one at either edge of a resize
 * resizes nothing (a shrink at half full would: grow, shrink, at each callback). */
static void test_the_callback_index_shrinks_keeping_every_callback(void **state) {
    (void)state;
    static uint64_t ids[BURST];
    asset_handle_t *h0;
    asset_server_t *s = burst_server(false, &h0);
    int fired = 0;
    for (int i = 0; i < BURST; i++)
        assert_true((ids[i] = asset_handle_on_reloaded(h0, count_cb, &fired)));
    size_t big = cb_ix_cap(s);
    assert_true(big >= 2 * BURST);
    /* out of memory: the disconnects go on, the index stays */
    tl_fail_allocs = 1 << 30;
    for (int i = 0; i < BURST; i++)
        if (i % 500 && i % 1000 != 1) assert_true(asset_handle_disconnect(h0, ids[i]));
    tl_fail_allocs = 0;
    assert_int_equal(cb_ix_cap(s), big);
    /* memory back: each disconnect halves it, down to an eighth full */
    for (int i = 1; i < BURST; i += 1000) assert_true(asset_handle_disconnect(h0, ids[i]));
    size_t small = cb_ix_cap(s);
    assert_true(small < big);
    assert_true(small <= 8 * (BURST / 500) * 2);
    uv_mutex_lock(&s->lock);
    for (int i = 0; i < BURST; i++) {
        asset__cb_t *c = asset__cbix_get(s, ids[i]);
        if (i % 500) {
            assert_null(c);
        } else {
            assert_non_null(c);
            assert_true(c->id == ids[i]);
        }
    }
    uv_mutex_unlock(&s->lock);
    /* the grow edge: connected until it grows, then one more and one less, 100 times */
    uint64_t extra[1024];
    int ne = 0;
    for (size_t c = cb_ix_cap(s); cb_ix_cap(s) == c && ne < 1024; ne++)
        assert_true((extra[ne] = asset_handle_on_reloaded(h0, count_cb, &fired)));
    size_t cap = cb_ix_cap(s);
    long calls = atomic_load(&g_calls);
    for (int k = 0; k < 100; k++) {
        uint64_t id = asset_handle_on_reloaded(h0, count_cb, &fired);
        assert_true(asset_handle_disconnect(h0, id));
    }
    assert_int_equal(cb_ix_cap(s), cap);
    assert_int_equal(atomic_load(&g_calls) - calls, 100); /* the callbacks' own records */
    /* the shrink edge: disconnected until it shrinks, then one more and one less */
    while (cb_ix_cap(s) == cap && ne > 0) assert_true(asset_handle_disconnect(h0, extra[--ne]));
    assert_true(cb_ix_cap(s) < cap);
    cap = cb_ix_cap(s);
    calls = atomic_load(&g_calls);
    for (int k = 0; k < 100; k++) {
        uint64_t id = asset_handle_on_reloaded(h0, count_cb, &fired);
        assert_true(asset_handle_disconnect(h0, id));
    }
    assert_int_equal(cb_ix_cap(s), cap);
    assert_int_equal(atomic_load(&g_calls) - calls, 100);
    while (ne > 0) assert_true(asset_handle_disconnect(h0, extra[--ne]));
    for (int i = 0; i < BURST; i += 500) assert_true(asset_handle_disconnect(h0, ids[i]));
    assert_int_equal(fired, 0);
    asset_handle_release(h0);
    asset_server_destroy(s);
}

/* The handles of mem://one.txt the URI index finds (it->i: its walk of the array). */
static int uri_handles(asset_server_t *s, asset_handle_t *const *want, int nwant) {
    int n = 0, found = 0;
    uv_mutex_lock(&s->lock);
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, "mem://one.txt", strlen("mem://one.txt"));
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));) {
        n++;
        for (int k = 0; k < nwant; k++) found += h == want[k];
    }
    uv_mutex_unlock(&s->lock);
    assert_int_equal(found, nwant);
    return n;
}

/* 20,000 loads of one URI (a texture every material names), all released but the one a
 * HUD keeps: the URI index's array of its handles kept its high-water size (32,768
 * slots, 256 KB) for as long as that one lived. */
static void test_a_burst_on_one_uri_gives_its_array_back(void **state) {
    (void)state;
    static asset_handle_t *hs[BURST];
    asset_handle_t *h0;
    asset_server_t *s = burst_server(true, &h0);
    load_burst(s, hs, 100, false);
    long bytes = atomic_load(&g_bytes);
    load_burst(s, hs, BURST, false);
    long dbytes = atomic_load(&g_bytes) - bytes;
    print_message("after %d loads of one URI: %+ld bytes\n", BURST, dbytes);
    if (dbytes > 1024) fail_msg("a burst of %d loads of one URI left %ld bytes", BURST, dbytes);
    asset_handle_release(h0);
    asset_server_destroy(s);
}

/* The same array shrinking: the handles left are every one the index finds, and out of
 * memory it stays as it was. */
static void test_a_uris_array_shrinks_keeping_every_handle(void **state) {
    (void)state;
    static asset_handle_t *hs[BURST];
    asset_handle_t *keep[BURST / 1000 + 1];
    int nk = 0;
    asset_handle_t *h0;
    asset_server_t *s = burst_server(true, &h0);
    keep[nk++] = h0;
    long base = atomic_load(&g_bytes);
    for (int i = 0; i < BURST; i++)
        assert_non_null(hs[i] = asset_server_load(s, "mem://one.txt", NULL));
    for (int i = 0; i < BURST; i++) assert_int_equal(tu_wait(hs[i]), ASSET_OK);
    asset_server_flush(s);
    tl_fail_allocs = 1 << 30; /* out of memory: released all the same, the array stays */
    for (int i = 0; i < BURST / 2; i++)
        if (i % 1000) asset_handle_release(hs[i]);
    tl_fail_allocs = 0;
    assert_int_equal(uri_handles(s, keep, nk), 1 + BURST / 2 + BURST / 2 / 1000);
    long mid = atomic_load(&g_bytes);
    for (int i = BURST / 2; i < BURST; i++)
        if (i % 1000) asset_handle_release(hs[i]);
    for (int i = 0; i < BURST; i += 1000) keep[nk++] = hs[i];
    assert_int_equal(uri_handles(s, keep, nk), nk);
    long left = atomic_load(&g_bytes) - base;
    print_message("half released, out of memory: %+ld bytes; all but %d: %+ld\n", mid - base, nk,
                  left);
    /* the array went back: the 32,768 slots were 256 KB, the handles left a few KB */
    if (left > 64 * 1024) fail_msg("%d handles of one URI left hold %ld bytes", nk, left);
    for (int i = 1; i < nk; i++) asset_handle_release(keep[i]);
    asset_server_flush(s);
    assert_int_equal(uri_handles(s, keep, 1), 1);
    asset_handle_release(h0);
    asset_server_destroy(s);
}

/* The slots of the pool's queues (its rings, one per priority). */
static size_t rings_cap(asset_server_t *s) {
    size_t c = 0;
    uv_mutex_lock(&s->lock);
    for (size_t i = 0; i < sizeof s->rings / sizeof s->rings[0]; i++) c += s->rings[i].cap;
    uv_mutex_unlock(&s->lock);
    return c;
}

/* 20,000 loads queued behind two reads that block (a level's), all released but some (the
 * level left: cancelled): the pool's queue kept its high-water array (32,768 slots, 256 KB) for as
 * long as one job stayed queued, and a stream of loads that never lets it empty kept it
 * for good. Its shrinks keep every job queued (each runs after), out of memory it stays,
 * and a count going up and down by one at the edge of a shrink resizes nothing. */
/* A load cancelled and released (a release alone lets it go on). */
static void drop(asset_handle_t *h) {
    asset_handle_cancel(h);
    asset_handle_release(h);
}

static void test_a_queue_left_with_a_few_jobs_gives_its_array_back(void **state) {
    (void)state;
    static asset_handle_t *hs[BURST];
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *block[2] = {asset_server_load(s, "gate://block/0.txt", NULL),
                                asset_server_load(s, "gate://block/1.txt", NULL)};
    tu_gate_wait_entered(g, 2); /* both workers held: what follows stays queued */
    long base = atomic_load(&g_bytes);
    char uri[64];
    for (int i = 0; i < BURST; i++) {
        snprintf(uri, sizeof uri, "gate://q/%d.txt", i);
        assert_non_null(hs[i] = asset_server_load(s, uri, NULL));
    }
    size_t big = rings_cap(s);
    assert_true(big >= BURST);
    /* out of memory: released all the same, the queue stays */
    tl_fail_allocs = 1 << 30;
    for (int i = 0; i < BURST; i++)
        if (i % 1000 > 1) drop(hs[i]);
    tl_fail_allocs = 0;
    assert_int_equal(rings_cap(s), big);
    for (int i = 1; i < BURST; i += 1000) drop(hs[i]);
    asset_server_flush(s); /* the cancelled handles go */
    size_t small = rings_cap(s);
    long left = atomic_load(&g_bytes) - base;
    print_message("a queue of %lu slots, %lu with %d jobs left: %+ld bytes\n", (unsigned long)big,
                  (unsigned long)small, BURST / 1000, left);
    if (left > 64 * 1024) fail_msg("%d jobs left queued hold %ld bytes", BURST / 1000, left);
    /* grown again (to 1,024 slots), then shrunk (to 512 at 128 jobs): at that edge three
     * more queued and three less, 1,000 times, resize nothing (shrunk at a quarter full,
     * it would: grown at 258 once holes fill the span, shrunk at 256) */
    static asset_handle_t *more[600];
    for (int i = 0; i < 600; i++) {
        snprintf(uri, sizeof uri, "gate://more/%d.txt", i);
        assert_non_null(more[i] = asset_server_load(s, uri, NULL));
    }
    size_t cap = rings_cap(s);
    assert_true(cap > small);
    int nm = 600;
    while (rings_cap(s) == cap && nm > 0) drop(more[--nm]);
    cap = rings_cap(s);
    for (int i = 0; i < 1000; i++) {
        asset_handle_t *three[3];
        for (int k = 0; k < 3; k++) {
            snprintf(uri, sizeof uri, "gate://edge/%d-%d.txt", i, k);
            assert_non_null(three[k] = asset_server_load(s, uri, NULL));
        }
        assert_int_equal(rings_cap(s), cap);
        for (int k = 3; k-- > 0;) drop(three[k]);
        assert_int_equal(rings_cap(s), cap);
    }
    while (nm > 0) drop(more[--nm]);
    /* every job left runs */
    tu_gate_open(g);
    for (int i = 0; i < BURST; i += 1000) {
        assert_int_equal(tu_wait(hs[i]), ASSET_OK);
        asset_handle_release(hs[i]);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tu_wait(block[i]), ASSET_OK);
        asset_handle_release(block[i]);
    }
    assert_int_equal(rings_cap(s), 0); /* emptied, it went: no shrink kept 256 */
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* An ASYNC source whose reads wait for the test: each request parked in g_parked. */
static asset_request_t *g_parked[BURST];
static atomic_int g_nparked;
static asset_status_t park_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    g_parked[atomic_fetch_add(&g_nparked, 1)] = r;
    return ASSET_PENDING;
}

static size_t requeued_cap(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    size_t c = s->cap_requeued;
    uv_mutex_unlock(&s->lock);
    return c;
}

/* 20,000 ASYNC reads finished together while both workers parse (their parses queued
 * again, listed in s->requeued: a parse gated), then all cancelled but 20: the list kept its
 * high-water array (32,768 slots, 256 KB) while one stayed. Its shrinks keep every job listed (each
 * parses after), and out of memory it stays. */
static void test_a_requeued_list_left_with_a_few_jobs_gives_its_array_back(void **state) {
    (void)state;
    static asset_handle_t *hs[BURST];
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_source_t src = {ASSET_SOURCE_ABI, "park", ASSET_SOURCE_ASYNC, park_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, NULL), ASSET_OK);
    tu_parse_gate_t gate;
    tu_parse_gate_register(s, &gate);
    atomic_store(&g_nparked, 0);
    char uri[64];
    for (int i = 0; i < BURST; i++) {
        snprintf(uri, sizeof uri, "park://q/%d.gated", i);
        assert_non_null(hs[i] = asset_server_load(s, uri, NULL));
    }
    TU_FLUSH_UNTIL(s, atomic_load(&g_nparked) == BURST);
    for (int i = 0; i < BURST; i++) {
        assert_int_equal(asset_request_write(g_parked[i], "p", 1), ASSET_OK);
        asset_request_finish(g_parked[i], ASSET_OK);
    }
    /* the first two parses hold both workers in the gate: the others stay queued */
    tu_parse_gate_wait_entered(&gate, 2);
    size_t big = requeued_cap(s);
    assert_true(big >= BURST);
    tl_fail_allocs = 1 << 30; /* out of memory: cancelled all the same, the list stays */
    for (int i = 0; i < BURST; i++)
        if (i % 1000 > 1) drop(hs[i]);
    tl_fail_allocs = 0;
    assert_int_equal(requeued_cap(s), big);
    for (int i = 1; i < BURST; i += 1000) drop(hs[i]);
    size_t small = requeued_cap(s);
    print_message("a list of %lu slots, %lu with %d jobs left\n", (unsigned long)big,
                  (unsigned long)small, BURST / 1000);
    if (small > 512) fail_msg("%d jobs left listed kept %zu slots", BURST / 1000, small);
    tu_parse_gate_open(&gate); /* every job left parses */
    for (int i = 0; i < BURST; i += 1000) {
        assert_int_equal(tu_wait(hs[i]), ASSET_OK);
        asset_handle_release(hs[i]);
    }
    assert_int_equal(requeued_cap(s), 0); /* emptied, it went: no shrink kept 256 */
    asset_server_destroy(s);
    tu_parse_gate_destroy(&gate);
}

/* A queue with holes packs in place: 64 loads queued behind the one worker, 40 of the
 * middle dropped, so that the next push finds the ring's span full and packs the live
 * jobs into a new array of the same 64 slots (not 128). That pack, the pool's ring
 * growth, and its failure were reached by no torture scenario (bursts past 64 jobs; the
 * thirty-third review's leftover): here the next load runs with each of its allocations
 * failing in turn (the pack's among them): each fails ASSET_E_NO_MEMORY alone or loads,
 * the ring never doubles, and every job queued runs once the worker is free. */
static void test_a_queue_with_holes_packs_in_place_and_out_of_memory_fails_one_load(void **state) {
    (void)state;
    enum { N = 64, MORE = 32 };
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *hold = asset_server_load(s, "gate://hold.txt", NULL);
    tu_gate_wait_entered(g, 1); /* the worker held: what follows stays queued */
    asset_handle_t *hs[N], *more[MORE];
    char uri[64];
    for (int i = 0; i < N; i++) {
        snprintf(uri, sizeof uri, "gate://q/%d.txt", i);
        assert_non_null(hs[i] = asset_server_load(s, uri, NULL));
    }
    assert_int_equal(rings_cap(s), N);
    for (int i = 10; i < 50; i++) { /* holes in the middle: the head stays */
        drop(hs[i]);
        hs[i] = NULL;
    }
    bool whole = false; /* a load that no failure reached */
    int nm = 0;
    for (int k = 0; k < MORE && !whole; k++) {
        snprintf(uri, sizeof uri, "gate://more/%d.txt", k);
        tl_alloc_skip = k;
        tl_fail_allocs = 1;
        asset_handle_t *h = asset_server_load(s, uri, NULL);
        whole = tl_fail_allocs == 1;
        tl_fail_allocs = tl_alloc_skip = 0;
        assert_int_equal(rings_cap(s), N); /* packed in place, or (failed) as it was */
        if (h) more[nm++] = h;             /* else: the handle's own blocks */
    }
    assert_true(whole);
    tu_gate_open(g);
    for (int i = 0; i < N; i++)
        if (hs[i]) {
            assert_int_equal(tu_wait(hs[i]), ASSET_OK);
            asset_handle_release(hs[i]);
        }
    for (int i = 0; i < nm; i++) {
        asset_status_t st = tu_wait(more[i]);
        if (st != ASSET_OK) assert_int_equal(st, ASSET_E_NO_MEMORY);
        if (i == nm - 1) assert_int_equal(st, ASSET_OK); /* the whole one */
        asset_handle_release(more[i]);
    }
    assert_int_equal(tu_wait(hold), ASSET_OK);
    asset_handle_release(hold);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* ---- a released file's state on the I/O thread ---- */

/* Live blocks (bytes, as bytes) less the requests the workers keep for their next jobs
 * (pool.c): a worker's first job makes its own, for good. */
static long live_blocks(asset_server_t *s, bool bytes) {
    uv_mutex_lock(&s->lock);
    long spares = (long)asset__pool_spare_count(s);
    uv_mutex_unlock(&s->lock);
    return bytes ? atomic_load(&g_bytes) - spares * (long)sizeof(struct asset_request)
                 : atomic_load(&g_blocks) - spares;
}

/* A watched file changed, then released before its quiet time (a minute) ended, the
 * caches cleared: nothing of it is left (files 2 to 4, measured from after the first
 * two). Its change waited the minute (pend_t and its key: 2 blocks a file), for a
 * reload of nothing. */
static void test_a_released_files_pending_change_goes_with_its_watch(void **state) {
    (void)state;
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    if (pf && !strcmp(pf, "web")) skip(); /* no file watching there */
    session_t x = {.dir = tu_mkdtemp(), .watch = true};
    asset_server_config_t cfg = {.max_workers = 2, .watch = true, .reload_debounce_ms = 60000};
    x.s = asset_server_create(&cfg);
    assert_non_null(x.s);
    long blocks = 0, bytes = 0;
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "p%d.txt", i);
        char *path = tu_write_file(x.dir, name, "one", 3);
        asset_handle_t *h = tu_load_wait(x.s, path, ASSET_OK);
        settle(&x); /* its watch is set up */
        uint64_t seen = atomic_load(&x.s->rio_changes);
        free(tu_write_file(x.dir, name, "two!", 4));
        TU_FLUSH_UNTIL(x.s, atomic_load(&x.s->rio_changes) > seen); /* waiting: a minute */
        asset_handle_release(h);
        /* its unwatch was posted as it was released, before this look: its change went
         * with it (before, it stayed its minute; settle would wait that long for it) */
        asset_server_flush(x.s);
        io_look_t l;
        assert_true(look_io(x.s, &l));
        if (l.pending) fail_msg("a released file's change still waits for its quiet time");
        settle(&x);
        free(path);
        if (i == 1) {
            blocks = live_blocks(x.s, false);
            bytes = live_blocks(x.s, true);
        }
    }
    long dblocks = live_blocks(x.s, false) - blocks, dbytes = live_blocks(x.s, true) - bytes;
    if (dblocks || dbytes)
        fail_msg("3 released files left %ld blocks, %ld bytes (their pending changes)", dblocks,
                 dbytes);
    asset_server_destroy(x.s);
    tu_rmrf(x.dir);
    free(x.dir);
}

int main(void) {
    static const asset_allocator_t a = {s_alloc, s_realloc, s_free, NULL};
    asset_set_allocator(&a);
    const char *c = getenv("ASSET_SOAK_CYCLES");
    if (c && atoi(c) > 100) g_cycles = atoi(c);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_long_session_returns_to_its_baseline_with_watch),
        cmocka_unit_test(test_a_long_session_returns_to_its_baseline_without_watch),
        cmocka_unit_test(test_a_long_session_returns_to_its_baseline_polling),
        cmocka_unit_test(test_a_long_session_at_its_cache_budget_returns_to_its_baseline),
        cmocka_unit_test(test_a_burst_of_callbacks_gives_the_index_back),
        cmocka_unit_test(test_the_callback_index_shrinks_keeping_every_callback),
        cmocka_unit_test(test_a_burst_on_one_uri_gives_its_array_back),
        cmocka_unit_test(test_a_uris_array_shrinks_keeping_every_handle),
        cmocka_unit_test(test_a_queue_left_with_a_few_jobs_gives_its_array_back),
        cmocka_unit_test(test_a_requeued_list_left_with_a_few_jobs_gives_its_array_back),
        cmocka_unit_test(test_a_queue_with_holes_packs_in_place_and_out_of_memory_fails_one_load),
        cmocka_unit_test(test_a_released_files_pending_change_goes_with_its_watch),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
