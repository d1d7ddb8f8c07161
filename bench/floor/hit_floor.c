/* hit_floor - what a cache hit costs on this machine, at the least.
 *
 * asset_bench's cache_hit loads 10,000 pkg:// files of 4 KiB (cold: the library's
 * cache empty, the page cache warm), then the same group again (10,000 hits), and
 * wants the second at least 100 times faster than the first. This program measures,
 * in the bench's conditions, the cold load and the library's hit, and beside them the
 * least any cache that worker threads fill can do per hit on the loading thread:
 *
 *   lookup         a worker thread makes the entries (key, 64-bit hash, a value with
 *                  a reference count and its 4 KiB of data), in a chained hash table
 *                  of 16,384 buckets, under a mutex, as a library's worker would;
 *                  then the loading thread, for each URI: hashes it, finds its entry
 *                  (the full key compared) and takes a reference. In slices of 64,
 *                  with the three stages of prefetch the library uses (bucket, entry
 *                  and key, value), under one lock. No record is written.
 *   lookup+handle  the same, and a record the size of the library's handle (224 bytes
 *                  now) written per hit, into memory faulted in beforehand (the
 *                  library's slab reuses the memory its cold group freed: no fault
 *                  either).
 *
 * The entries are made fresh for each measurement, so every lookup is a first one,
 * as in the bench. Prints medians; not a test (no goal is checked here). The files go
 * to a directory under $TMPDIR (else /tmp), removed at exit.
 *
 * usage: hit_floor [runs]      (default 5; docs/performance.md, fifteenth round) */
#define _GNU_SOURCE
#define FLOOR_NAME "hit_floor"
#include "asset_server.h"
#include "floor_common.h"
#include "internal.h" /* struct asset_handle's size */

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BUCKETS 16384
#define SLICE 64
#define HANDLE sizeof(struct asset_handle) /* the record a hit writes */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* ---- the library ---- */

static uint64_t group_ns(asset_server_t *s) {
    asset_load_options_t o;
    memset(&o, 0, sizeof o);
    o.loader = "bytes";
    uint64_t t0 = now_ns();
    asset_batch_t *b = asset_server_load_group(s, (const char *const *)g_uris, COUNT, &o);
    if (!b || asset_batch_wait(b, -1) != ASSET_OK || asset_batch_completed_count(b) != COUNT) {
        fprintf(stderr, "hit_floor: the library did not load every file\n");
        exit(1);
    }
    uint64_t t = now_ns() - t0;
    asset_batch_release(b);
    return t;
}

/* As asset_bench's cache_pair: a fresh server, the cold group, then the hits. */
static void library(double *cold, double *hit) {
    malloc_trim(0);
    asset_server_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_workers = 2;
    asset_server_t *s = asset_server_create(&cfg);
    if (!s || asset_server_mount(s, "small", g_dir) != ASSET_OK) die("the library's server");
    *cold = (double)group_ns(s) / COUNT;
    asset_stats_t before, after;
    asset_server_stats(s, &before);
    *hit = (double)group_ns(s) / COUNT;
    asset_server_stats(s, &after);
    if (after.cache_hits - before.cache_hits != COUNT) {
        fprintf(stderr, "hit_floor: the second group was not all hits\n");
        exit(1);
    }
    asset_server_destroy(s);
}

/* ---- the least cache ---- */

typedef struct value {
    atomic_size_t refs;
    size_t size;
    uint8_t *data;
} value_t;

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    value_t *value;
    char key[]; /* as the library's entries carry theirs */
} entry_t;

static entry_t *g_buckets[BUCKETS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash(const char *s) { /* FNV-1a */
    uint64_t h = 14695981039346656037u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

static void *fill(void *arg) { /* the worker: an entry per file, as each load ends */
    (void)arg;
    for (size_t i = 0; i < COUNT; i++) {
        size_t n = strlen(g_uris[i]) + 1;
        entry_t *e = xmalloc(sizeof *e + n);
        value_t *v = xmalloc(sizeof *v);
        memcpy(e->key, g_uris[i], n);
        e->hash = hash(g_uris[i]);
        atomic_init(&v->refs, 1);
        v->size = SIZE;
        v->data = xmalloc(SIZE);
        memset(v->data, (int)i, SIZE);
        e->value = v;
        pthread_mutex_lock(&g_lock);
        e->next = g_buckets[e->hash % BUCKETS];
        g_buckets[e->hash % BUCKETS] = e;
        pthread_mutex_unlock(&g_lock);
    }
    return NULL;
}

static void drop_all(void) {
    for (size_t b = 0; b < BUCKETS; b++)
        for (entry_t *e = g_buckets[b], *next; e; e = next) {
            next = e->next;
            free(e->value->data);
            free(e->value);
            free(e);
        }
    memset(g_buckets, 0, sizeof g_buckets);
}

/* The hits, ns each; a handle-sized record written per hit into slab (if any). */
static double hits(uint8_t *slab) {
    malloc_trim(0);
    pthread_t t;
    if (pthread_create(&t, NULL, fill, NULL) != 0) die("pthread_create");
    pthread_join(t, NULL);
    uint64_t t0 = now_ns();
    pthread_mutex_lock(&g_lock);
    for (size_t base = 0; base < COUNT; base += SLICE) {
        size_t n = COUNT - base < SLICE ? COUNT - base : SLICE;
        uint64_t h[SLICE];
        for (size_t i = 0; i < n; i++) {
            h[i] = hash(g_uris[base + i]);
            __builtin_prefetch(&g_buckets[h[i] % BUCKETS]);
        }
        for (size_t i = 0; i < n; i++) {
            const entry_t *e = g_buckets[h[i] % BUCKETS];
            if (e) {
                __builtin_prefetch(e);
                __builtin_prefetch(e->key + 31);
            }
        }
        for (size_t i = 0; i < n; i++) {
            const entry_t *e = g_buckets[h[i] % BUCKETS];
            if (e && e->hash == h[i]) __builtin_prefetch(e->value, 1);
        }
        for (size_t i = 0; i < n; i++) {
            entry_t *e = g_buckets[h[i] % BUCKETS];
            while (e && (e->hash != h[i] || strcmp(e->key, g_uris[base + i]) != 0)) e = e->next;
            if (!e) die("a lookup missed");
            atomic_fetch_add_explicit(&e->value->refs, 1, memory_order_relaxed);
            if (slab) {
                uint8_t *rec = slab + (base + i) * HANDLE;
                memset(rec, 0, HANDLE);
                memcpy(rec, &e->value, sizeof e->value);
            }
        }
    }
    pthread_mutex_unlock(&g_lock);
    double ns = (double)(now_ns() - t0) / COUNT;
    drop_all();
    return ns;
}

/* ---- main ---- */

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 100) {
        fprintf(stderr, "usage: hit_floor [runs 1..100]\n");
        return 2;
    }
    atexit(floor_remove_files);
    floor_make_files(NULL);
    uint8_t *slab = xmalloc((size_t)COUNT * HANDLE);
    memset(slab, 1, (size_t)COUNT * HANDLE); /* faulted in once */
    double cold[100], hit[100], look[100], handle[100], c, h;
    library(&c, &h); /* warm: the page cache, the dentries */
    for (int i = 0; i < runs; i++) {
        library(&cold[i], &hit[i]);
        look[i] = hits(NULL);
        handle[i] = hits(slab);
    }
    free(slab);
    double mc = median(cold, runs), mh = median(hit, runs);
    double ml = median(look, runs), mhd = median(handle, runs);
    printf("medians of %d runs, ns per load:\n", runs);
    printf("  library, cold load     %8.1f\n", mc);
    printf("  library, hit           %8.1f   ratio %6.1f\n", mh, mc / mh);
    printf("  floor: lookup          %8.1f   ratio %6.1f\n", ml, mc / ml);
    printf("  floor: lookup+handle   %8.1f   ratio %6.1f\n", mhd, mc / mhd);
    printf("a ratio of 100 needs a hit of %.1f ns or less\n", mc / 100);
    return 0;
}
