/* pool_heap.c - the pool's job queue: HIGH first, FIFO within a priority. One ring per
 * priority (there are three), so a push and a pop are O(1) and touch no other job; a
 * job taken out of the middle (cancel, run-on-wait, a priority change) leaves a hole
 * that a pop skips. Shared by the threaded pool (pool.c) and the web's single-threaded
 * one (web/pool_web.c), which differ only in who pops the jobs. [lock] held for all of
 * these. */
#include "internal.h"

#include <string.h>

#define NRINGS (ASSET_PRIORITY_LOW - ASSET_PRIORITY_HIGH + 1)

/* An emptied ring or requeued list keeps an array of up to this many slots for the next
 * jobs; a larger one (a burst's) goes back. */
#define KEEP_EMPTIED_MAX 256

static asset__ring_t *ring_of(asset_server_t *s, int priority) {
    int i = priority - ASSET_PRIORITY_HIGH;
    return &s->rings[i < 0 ? 0 : i >= NRINGS ? NRINGS - 1 : i];
}

/* Packs the live jobs to the front of a new array of cap slots (a power of two, at least
 * r->live), renumbering their positions. False: out of memory (r stays as it was). */
static bool ring_repack(asset__ring_t *r, size_t cap) {
    asset__job_t **slots = asset__calloc(cap, sizeof *slots);
    if (!slots) return false;
    size_t n = 0;
    for (size_t p = r->head; p != r->tail; p++) {
        asset__job_t *j = r->slots[p & (r->cap - 1)];
        if (!j) continue;
        j->heap_idx = n;
        slots[n++] = j;
    }
    asset_free(r->slots);
    r->slots = slots;
    r->cap = cap;
    r->head = 0;
    r->tail = n;
    return true;
}

/* Room for one more at the tail: the live jobs packed into a new array, twice as large
 * unless holes made room. */
static bool ring_reserve(asset__ring_t *r) {
    if (r->tail - r->head < r->cap) return true;
    size_t cap = r->live * 2 > r->cap ? r->cap * 2 : r->cap;
    return ring_repack(r, cap < 64 ? 64 : cap);
}

/* Takes j out of r, leaving a hole; the head moves past holes, so it is never one.
 * Past KEEP_EMPTIED_MAX slots, a ring gives its array back once emptied (its last job
 * popped or taken from the middle: a cancel, run-on-wait), and half of it once an eighth
 * full (packed: a quarter full then, and grown again only once full and over half full;
 * never below 512 slots). So a burst cancelled but for a few jobs (a level left while its
 * loads queued), or a queue a stream of loads never lets empty, keeps no high-water array
 * (a review). Out of memory, it stays. */
static void ring_take(asset__ring_t *r, asset__job_t *j) {
    r->slots[j->heap_idx & (r->cap - 1)] = NULL;
    r->live--;
    while (r->head != r->tail && !r->slots[r->head & (r->cap - 1)]) r->head++;
    if (r->cap <= KEEP_EMPTIED_MAX) return;
    if (!r->live) {
        asset_free(r->slots);
        memset(r, 0, sizeof *r);
    } else if (r->live <= r->cap / 8 && r->cap / 2 > KEEP_EMPTIED_MAX) {
        (void)ring_repack(r, r->cap / 2); /* past 256 still: emptied, it goes */
    }
}

static bool ring_push(asset__ring_t *r, asset__job_t *j) {
    if (!ring_reserve(r)) return false;
    j->heap_idx = r->tail;
    r->slots[r->tail++ & (r->cap - 1)] = j;
    r->live++;
    return true;
}

bool asset__heap_push(asset_server_t *s, asset__job_t *j) {
    asset__ring_t *r = ring_of(s, j->priority);
    if (!ring_push(r, j)) return false;
    j->queue_ring = (int)(r - s->rings);
    s->heap_len++;
    return true;
}

bool asset__heap_list_requeued(asset_server_t *s, asset__job_t *j) {
    asset__job_t **a = asset__grow(s->requeued, &s->cap_requeued, s->n_requeued, sizeof *a, 16);
    if (!a) return false;
    s->requeued = a;
    s->requeued[s->n_requeued++] = j;
    j->req->requeued_slot = s->n_requeued;
    return true;
}

static void free_requeued(asset_server_t *s) {
    asset_free(s->requeued);
    s->requeued = NULL;
    s->n_requeued = s->cap_requeued = 0;
}

/* j leaves s->requeued: the last one takes its slot. Emptied, a burst's array goes back
 * (asset__grow makes one again from nothing), as an emptied ring's: a burst of ASYNC
 * reads ending together kept its size for the server's life (a review); a quarter full,
 * half of it (asset__shrink: each at its slot; never below 512, which an emptied list
 * frees), so that a few left listed keep no high-water array either (a review) */
static void unlist_requeued(asset_server_t *s, asset__job_t *j) {
    asset__job_t *last = s->requeued[--s->n_requeued];
    s->requeued[j->req->requeued_slot - 1] = last;
    last->req->requeued_slot = j->req->requeued_slot;
    j->req->requeued_slot = 0;
    if (s->cap_requeued <= KEEP_EMPTIED_MAX) return;
    if (!s->n_requeued)
        free_requeued(s);
    else
        s->requeued = asset__shrink(s->requeued, &s->cap_requeued, s->n_requeued,
                                    sizeof *s->requeued, 2 * KEEP_EMPTIED_MAX);
}

void asset__heap_remove(asset_server_t *s, asset__job_t *j) {
    if (j->heap_idx == SIZE_MAX) return;
    if (j->req && j->req->requeued_slot) unlist_requeued(s, j);
    ring_take(&s->rings[j->queue_ring], j);
    j->heap_idx = SIZE_MAX;
    s->heap_len--;
}

/* j->priority changed while it may be queued: it moves to the tail of its new ring.
 * Without memory for that it stays where it was (it still runs, at its old rank), and
 * j->priority says so again (false): it said the new one, which introspection showed
 * and which made a later raise to it do nothing (a review). */
bool asset__heap_update(asset_server_t *s, asset__job_t *j) {
    if (j->heap_idx == SIZE_MAX) return true;
    asset__ring_t *from = &s->rings[j->queue_ring], *to = ring_of(s, j->priority);
    if (from == to) return true;
    if (!ring_reserve(to)) {
        j->priority = (int8_t)(ASSET_PRIORITY_HIGH + j->queue_ring);
        return false;
    }
    ring_take(from, j);
    (void)ring_push(to, j); /* cannot fail: reserved */
    j->queue_ring = (int)(to - s->rings);
    return true;
}

asset__job_t *asset__heap_pop(asset_server_t *s) {
    for (int i = 0; i < NRINGS; i++) {
        asset__ring_t *r = &s->rings[i];
        if (!r->live) continue;
        asset__job_t *j = r->slots[r->head & (r->cap - 1)]; /* the head is never a hole */
        asset__heap_remove(s, j);
        return j;
    }
    return NULL;
}

void asset__heap_free(asset_server_t *s) {
    free_requeued(s);
    for (int i = 0; i < NRINGS; i++) {
        asset_free(s->rings[i].slots);
        memset(&s->rings[i], 0, sizeof s->rings[i]);
    }
}
