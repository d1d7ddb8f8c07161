/* priority.c - asset_handle_set_priority: a queued job runs at the highest priority
 * of its live handles; a raised job raises what it waits for (asset__graph_raise). */
#include "internal.h"

void asset__handle_set_prio(asset_handle_t *h, int p) {
    asset__job_t *j = h->job;
    if (j) {
        asset__job_count_prio(j, h->priority, -1);
        asset__job_count_prio(j, p, 1);
    }
    h->priority = (int8_t)p;
}

void asset__job_reprioritize(asset_server_t *s, asset__job_t *j) {
    int best = asset__job_best_priority(j); /* counted: no walk of its handles */
    if (best < j->priority) {
        j->priority = (int8_t)best;
        /* no memory to move it: it keeps its priority (a later call tries again) */
        if (asset__heap_update(s, j)) asset__graph_raise(s, j, best); /* and what it waits for */
    } else if (best > j->priority) {
        /* lower: a queued job to the tail of its new priority's FIFO; a started one,
         * what it declares from now on (and an ASYNC read's requeued parse) follows */
        j->priority = (int8_t)best;
        (void)asset__heap_update(s, j); /* no memory: it keeps the higher one */
    }
}

asset_status_t asset_handle_set_priority(asset_handle_t *h, asset_priority_t p) {
    if (!h || p < ASSET_PRIORITY_HIGH || p > ASSET_PRIORITY_LOW) return ASSET_E_INVALID;
    asset_server_t *s = h->server;
    uv_mutex_lock(&s->lock);
    asset__handle_set_prio(h, p);
    if (h->job) asset__job_reprioritize(s, h->job);
    uv_mutex_unlock(&s->lock);
    return ASSET_OK;
}
