/* pool.c - the worker pool: max_workers threads on libuv's thread primitives taking
 * jobs from a priority heap (HIGH first, FIFO within a priority). Not uv_queue_work:
 * that pool is process-global, FIFO and sized by an environment variable. */
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
    uv_cond_signal(&s->work_cond);
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
    return j;
}

static void worker_main(void *arg) {
    asset_server_t *s = arg;
    asset__thread_owner = s;
    uv_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stopping && s->heap_len == 0) uv_cond_wait(&s->work_cond, &s->lock);
        if (s->stopping) break;
        asset__job_t *j = asset__heap_pop(s);
        j->state = ASSET__JOB_RUNNING;
        s->running++;
        for (asset_handle_t *h = j->handles; h; h = h->job_next)
            atomic_store(&h->state, ASSET_STATE_LOADING);
        uv_mutex_unlock(&s->lock);
        asset__job_run(s, j); /* decrements s->running when it lets go of the job */
        uv_mutex_lock(&s->lock);
    }
    uv_mutex_unlock(&s->lock);
}

int asset__pool_start(asset_server_t *s) {
    s->workers = asset__calloc(s->cfg.max_workers, sizeof *s->workers);
    if (!s->workers) return ASSET_E_NO_MEMORY;
    for (unsigned i = 0; i < s->cfg.max_workers; i++) {
        if (uv_thread_create(&s->workers[i], worker_main, s) != 0) break;
        s->nworkers++;
    }
    return s->nworkers ? ASSET_OK : ASSET_E_NO_MEMORY;
}

void asset__pool_join(asset_server_t *s) {
    for (unsigned i = 0; i < s->nworkers; i++) uv_thread_join(&s->workers[i]);
    asset_free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
}
