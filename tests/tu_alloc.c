/* tu_alloc.c - the counting allocator of tu_alloc.h: a header before each block holds
 * its size, for the bytes' count. */
#include "tu_alloc.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef union {
    size_t n;
    max_align_t align;
} hdr_t;

atomic_long tu_alloc_blocks, tu_alloc_bytes, tu_alloc_calls;
_Thread_local int tu_fail_allocs, tu_alloc_skip, tu_fail_reallocs;

static void *c_alloc(size_t n, void *u) {
    (void)u;
    atomic_fetch_add(&tu_alloc_calls, 1);
    if (tu_fail_allocs > 0 && tu_alloc_skip-- <= 0) {
        tu_fail_allocs--;
        return NULL;
    }
    hdr_t *h = n <= SIZE_MAX - sizeof *h ? malloc(sizeof *h + n) : NULL;
    if (!h) return NULL;
    h->n = n;
    atomic_fetch_add(&tu_alloc_blocks, 1);
    atomic_fetch_add(&tu_alloc_bytes, (long)n);
    return h + 1;
}

static void *c_realloc(void *p, size_t n, void *u) {
    (void)u;
    atomic_fetch_add(&tu_alloc_calls, 1);
    if (tu_fail_reallocs > 0) {
        tu_fail_reallocs--;
        return NULL;
    }
    hdr_t *h = p ? (hdr_t *)p - 1 : NULL;
    size_t was = h ? h->n : 0;
    hdr_t *g = n <= SIZE_MAX - sizeof *g ? realloc(h, sizeof *g + n) : NULL;
    if (!g) return NULL;
    g->n = n;
    if (!h) atomic_fetch_add(&tu_alloc_blocks, 1);
    atomic_fetch_add(&tu_alloc_bytes, (long)n - (long)was);
    return g + 1;
}

static void c_free(void *p, void *u) {
    (void)u;
    if (!p) return;
    hdr_t *h = (hdr_t *)p - 1;
    atomic_fetch_sub(&tu_alloc_blocks, 1);
    atomic_fetch_sub(&tu_alloc_bytes, (long)h->n);
    free(h);
}

const asset_allocator_t tu_alloc_counting = {c_alloc, c_realloc, c_free, NULL};
