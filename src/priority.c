/* priority.c - asset_handle_set_priority: a queued job runs at the highest priority
 * of its live handles; a raised job raises what it waits for (asset__graph_raise), and
 * a lowered one lowers it (lower_deps), as far as what else waits for it allows. */
#include "internal.h"

void asset__handle_set_prio(asset_handle_t *h, int p) {
    asset__job_t *j = h->job;
    if (j) {
        asset__job_count_prio(j, h->priority, -1);
        asset__job_count_prio(j, p, 1);
    }
    h->priority = (int8_t)p;
}

/* [lock] j was lowered: its handles on its dependencies follow it down (one given its
 * own priority, o->priority or a set_priority of the program's, back to that, as it was
 * declared: a NORMAL parent's LOW dependency, raised with it, stayed NORMAL once it was
 * lowered back, a review; never below that), and each dependency job takes the best
 * priority of what waits for it, transitively. They kept what a raise gave them: a
 * level lowered to LOW had its textures run HIGH, ahead of what the program wanted
 * first (a review). Iterative, the stack threaded through the jobs as raise_deps's; a
 * job is on it once at a time (marked), and lowered at most twice. */
static void lower_deps(asset_server_t *s, asset__job_t *j) {
    uint64_t mark = ++s->graph_epoch;
    asset__job_t *stack = NULL;
    for (asset__job_t *x = j; x;) {
        for (size_t i = 0; i < asset__job_ndeps(x); i++) {
            asset_handle_t *dh = x->g->deps->h[i];
            int want = dh->dep_prio ? dh->dep_prio : x->priority;
            if (want <= dh->priority) continue; /* as low already, or its own is higher */
            asset__handle_set_prio(dh, want);
            asset__job_t *d = dh->job;
            int best = d ? asset__job_best_priority(d) : 0;
            if (!d || best <= d->priority) continue;
            d->priority = (int8_t)best;
            (void)asset__heap_update(s, d); /* no memory: it keeps its place */
            if (asset__job_ndeps(d) && d->g->visit != mark) {
                d->g->visit = mark;
                d->g->raise_next = stack;
                stack = d;
            }
        }
        x = stack;
        if (stack) {
            stack = stack->g->raise_next;
            x->g->visit = 0; /* lowered again later in this walk: pushed again */
        }
    }
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
        lower_deps(s, j);
    }
}

asset_status_t asset_handle_set_priority(asset_handle_t *h, asset_priority_t p) {
    if (!h || p < ASSET_PRIORITY_HIGH || p > ASSET_PRIORITY_LOW) return ASSET_E_INVALID;
    asset_server_t *s = h->server;
    uv_mutex_lock(&s->lock);
    asset__handle_set_prio(h, p);
    /* a dependency's handle the program set: its own from now on, as an o->priority
     * given to asset_parse_depend is (a parent lowered took it down with it, a review) */
    if (h->dep != ASSET__DEP_NONE) h->dep_prio = (uint8_t)p;
    if (h->job)
        asset__job_reprioritize(s, h->job);
    else
        asset__reload_reprioritize(s, h); /* a reload of it queued: follows */
    uv_mutex_unlock(&s->lock);
    return ASSET_OK;
}
