/* pool_heap.c - the pool's job heap: HIGH first, FIFO within a priority. Shared by the
 * threaded pool (pool.c) and the web's single-threaded one (web/pool_web.c), which
 * differ only in who pops the jobs. [lock] held for all of these. */
#include "internal.h"

static bool job_before(const asset__job_t *a, const asset__job_t *b) {
    return a->priority != b->priority ? a->priority < b->priority : a->seq < b->seq;
}

static void heap_swap(asset_server_t *s, size_t a, size_t b) {
    asset__job_t *t = s->heap[a];
    s->heap[a] = s->heap[b];
    s->heap[b] = t;
    s->heap[a]->heap_idx = a;
    s->heap[b]->heap_idx = b;
}

static void heap_up(asset_server_t *s, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!job_before(s->heap[i], s->heap[p])) break;
        heap_swap(s, i, p);
        i = p;
    }
}

static void heap_down(asset_server_t *s, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->heap_len && job_before(s->heap[l], s->heap[m])) m = l;
        if (r < s->heap_len && job_before(s->heap[r], s->heap[m])) m = r;
        if (m == i) return;
        heap_swap(s, i, m);
        i = m;
    }
}

bool asset__heap_push(asset_server_t *s, asset__job_t *j) {
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
        asset__job_t **h = asset_realloc(s->heap, cap * sizeof *h);
        if (!h) return false;
        s->heap = h;
        s->heap_cap = cap;
    }
    j->seq = s->seq++;
    j->heap_idx = s->heap_len;
    s->heap[s->heap_len++] = j;
    heap_up(s, j->heap_idx);
    asset__pool_notify(s);
    return true;
}

void asset__heap_remove(asset_server_t *s, asset__job_t *j) {
    size_t i = j->heap_idx;
    if (i == SIZE_MAX) return;
    j->heap_idx = SIZE_MAX;
    s->heap_len--;
    if (i != s->heap_len) {
        s->heap[i] = s->heap[s->heap_len];
        s->heap[i]->heap_idx = i;
        heap_up(s, i);
        heap_down(s, s->heap[i]->heap_idx);
    }
}

void asset__heap_update(asset_server_t *s, asset__job_t *j) {
    if (j->heap_idx != SIZE_MAX) heap_up(s, j->heap_idx);
}

asset__job_t *asset__heap_pop(asset_server_t *s) {
    if (!s->heap_len) return NULL;
    asset__job_t *j = s->heap[0];
    asset__heap_remove(s, j);
    /* emptied by a pop (never by a remove: a push right after a remove must not
     * allocate, asset_handle_set_priority): give a big batch's array back */
    if (s->heap_len == 0 && s->heap_cap > 256) {
        asset_free(s->heap);
        s->heap = NULL;
        s->heap_cap = 0;
    }
    return j;
}
