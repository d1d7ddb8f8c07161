/* io_queue.c - the I/O thread's post queue and hooks (io_queue.h), shared by the
 * desktop and web I/O threads, and the post its users make (asset__io_post_for). */
#include "io_queue.h"

#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

struct asset__io_post {
    asset__io_post_t *next;
    void (*fn)(void *arg);
    void *arg;
};

asset__io_post_t *asset__io_post_new(void (*fn)(void *arg), void *arg) {
    asset__io_post_t *p = asset__calloc(1, sizeof *p);
    if (!p) return NULL;
    p->fn = fn;
    p->arg = arg;
    return p;
}

void asset__io_post_free(asset__io_post_t *p) { asset_free(p); }

void asset__io_posts_push(asset__io_posts_t *q, asset__io_post_t *p) {
    if (q->tail)
        q->tail->next = p;
    else
        q->head = p;
    q->tail = p;
}

asset__io_post_t *asset__io_posts_take(asset__io_posts_t *q) {
    asset__io_post_t *p = q->head;
    q->head = q->tail = NULL;
    return p;
}

void asset__io_posts_run(asset__io_post_t *p) {
    while (p) {
        asset__io_post_t *next = p->next;
        p->fn(p->arg);
        asset_free(p);
        p = next;
    }
}

void asset__io_hooks_add(asset__io_hooks_t *hk, void (*on_kick)(void *), void (*on_stop)(void *),
                         void *arg) {
    if (hk->n == sizeof hk->h / sizeof hk->h[0]) abort(); /* a fixed set of users */
    hk->h[hk->n].on_kick = on_kick;
    hk->h[hk->n].on_stop = on_stop;
    hk->h[hk->n].arg = arg;
    hk->n++;
}

void asset__io_hooks_kick(asset__io_hooks_t *hk) {
    for (unsigned i = 0; i < hk->n; i++)
        if (hk->h[i].on_kick) hk->h[i].on_kick(hk->h[i].arg);
}

void asset__io_hooks_stop(asset__io_hooks_t *hk) {
    for (unsigned i = 0; i < hk->n; i++)
        if (hk->h[i].on_stop) hk->h[i].on_stop(hk->h[i].arg);
    hk->n = 0;
}

asset_status_t asset__io_start_failure(int io_error, char *why, size_t n) {
    snprintf(why, n, "the I/O thread could not start (%s)",
             io_error ? uv_strerror(io_error) : "unknown error");
    return !io_error || io_error == UV_ENOMEM ? ASSET_E_NO_MEMORY : ASSET_E_IO;
}

asset_status_t asset__io_post_for(asset_server_t *s, void (*fn)(void *arg), void *arg, char *why,
                                  size_t n) {
    /* posted under the lock (io->lock is a leaf): a destroy sets stopping under it before
     * it stops and frees the thread, and that no longer waits for this caller when it is
     * no worker (a wait running an HTTP read itself): posted after the lock, it locked the
     * freed record (a review) */
    uv_mutex_lock(&s->lock);
    asset__io_t *io = asset__io_get(s);
    int io_error = s->io_error;
    bool posted = io && asset__io_post(io, fn, arg);
    /* a post fails when the thread stops, or for want of memory */
    bool stopping = io && !posted && asset__io_stopping(io);
    uv_mutex_unlock(&s->lock);
    if (!io) return asset__io_start_failure(io_error, why, n);
    if (posted) return ASSET_PENDING;
    if (stopping) {
        snprintf(why, n, "cannot reach the I/O thread: stopping");
        return ASSET_E_SHUTDOWN;
    }
    snprintf(why, n, "cannot reach the I/O thread: out of memory");
    return ASSET_E_NO_MEMORY;
}
