/* finalize.c - the flush side's finalize queue: loaders' main-thread step (a GPU
 * upload) after parse and after every dependency is done, inside
 * asset_server_flush(), within its budget.
 *
 * A job enters the queue only when its dependencies are decided LOADED, which for a
 * dependency with a finalize step already means finalized: dependencies finalize
 * first with no ordering logic here. A job whose every handle left stays in the queue
 * marked abandoned and is freed when the queue reaches it (never while its finalize
 * call runs). [lock] held unless noted. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void asset__finalize_push(asset_server_t *s, asset__job_t *j) {
    j->state = ASSET__JOB_FINALIZING; /* a job with a finalize step has its graph part */
    j->g->fin_next = NULL;
    /* queued while a finalize call runs (by a worker, or by that call): the run leaves
     * it to the next flush, as a flush leaves what is queued while it runs */
    j->g->fin_arrived = s->fin_open ? s->fin_run : 0;
    if (s->fin_tail)
        s->fin_tail->g->fin_next = j;
    else
        s->fin_head = j;
    s->fin_tail = j;
    /* the flush thread has work: like a completion, wake an event-driven host */
    if (!s->stopping) atomic_store(&s->wake_pending, true);
    if (s->waiters) uv_cond_broadcast(&s->done_cond);
}

static asset__job_t *pop(asset_server_t *s) {
    asset__job_t *j = s->fin_head;
    s->fin_head = j->g->fin_next;
    if (!s->fin_head) s->fin_tail = NULL;
    j->g->fin_next = NULL;
    return j;
}

/* [lock] The sum of the published versions of j's dependencies: it grows when one of
 * them reloads (each publish adds one). */
static uint64_t deps_versions(const asset__job_t *j) {
    uint64_t sum = 0;
    for (size_t i = 0; i < asset__job_ndeps(j); i++)
        sum += atomic_load_explicit(&j->g->deps->h[i]->version, memory_order_relaxed);
    return sum;
}

/* [lock] Whether a dependency of j has a reloaded value decided but not published yet:
 * the flush swaps it in after the finalize calls, which read the old one. */
static bool deps_reload_pending(const asset__job_t *j) {
    for (size_t i = 0; i < asset__job_ndeps(j); i++) {
        const asset_handle_t *d = j->g->deps->h[i];
        if (d->reload_pending && d->reload_status == ASSET_OK) return true;
    }
    return false;
}

/* How a finalize call that returned st (neither OK nor PENDING) ends, as the handles
 * get it (asset__status_outcome), with *why the message when the loader gave none: no
 * cancel reaches a running finalize (a job whose every handle cancelled is dropped
 * whatever its finalize returned), so ASSET_E_CANCELLED is the loader's own failure */
static asset_status_t outcome(asset_status_t st, char odd[64], const char **why) {
    return asset__status_outcome(st, false, "loader", ASSET_E_PARSE, odd, why);
}

static void fail(asset_server_t *s, asset__job_t *j, asset_status_t st, const char *why) {
    char odd[64];
    st = outcome(st, odd, &why);
    char *msg = asset__asprintf("%s: finalize: %s", j->uri, why ? why : asset_strerror(st));
    asset__job_finish_locked(s, j, st, msg, NULL);
    asset_free(msg);
}

/* Appends j to the list *head .. *tail. */
static void list_append(asset__job_t **head, asset__job_t **tail, asset__job_t *j) {
    if (*tail)
        (*tail)->g->fin_next = j;
    else
        *head = j;
    *tail = j;
}

size_t asset__finalize_run(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    size_t n = 0;
    asset__job_t *later = NULL, *later_tail = NULL; /* PENDING: again at the next flush */
    asset__job_t *next = NULL, *next_tail = NULL;   /* queued during this run's calls */
    uint64_t run = ++s->fin_run;
    /* what is queued so far, and what this run's own completions queue (parents whose
     * dependencies it finalized: a graph has an end), no more: workers queueing
     * finalize steps as fast as this thread ran them kept one flush going for ever;
     * none once destroy began (in a finalize of a wait's flush): it frees the rest.
     * What was queued during a call is set aside, not a stop: a parent that this run
     * completed, queued behind it, waited for the next flush (a review) */
    while (s->fin_head && !s->stopping) {
        if (s->fin_head->g->fin_arrived == run) {
            list_append(&next, &next_tail, pop(s));
            continue;
        }
        if (n && budget_ns && asset__now_ns() - start_ns >= budget_ns) break;
        asset__job_t *j = pop(s);
        if (asset__job_unwanted(j)) {
            asset__job_drop(s, j);
            continue;
        }
        asset__loader_slot_t *ld = j->loader;
        asset_finalize_t f = {.job = j, .v = j->g->pvalue};
        /* dependencies decided in this flush are published before their parent's
         * finalize reads them, with theirs (their callbacks still fire in queue order,
         * first): a dependency alone read LOADED with its own not done (a review) */
        for (size_t i = 0; i < asset__job_ndeps(j); i++)
            asset__handle_publish_early(s, j->g->deps->h[i]);
        if (!j->g->fin_started) {
            j->g->fin_started = true;
            j->g->fin_versions = deps_versions(j);
        }
        s->fin_open = true;
        uv_mutex_unlock(&s->lock);
        asset__trace_job(s, j, ASSET__TR_FINALIZE_START, ASSET_OK);
        asset_status_t st = ld->vt.finalize(ld->ctx, &f);
        /* the outcome, as fail() decides it */
        char odd[64];
        const char *why = f.message;
        asset__trace_job(s, j, ASSET__TR_FINALIZE_END,
                         st == ASSET_OK || st == ASSET_PENDING ? st : outcome(st, odd, &why));
        uv_mutex_lock(&s->lock);
        s->fin_open = false;
        n++;
        if (asset__job_unwanted(j)) {
            asset__job_drop(s, j);
        } else if (st == ASSET_PENDING) {
            list_append(&later, &later_tail, j);
        } else if (st == ASSET_OK) {
            /* a dependency reloaded while this finalize spanned flushes, or reloaded and
             * not published yet (the finalize read its old value): its value was built
             * on the old one (reviews found it LOADED on it for good); it reloads, with a
             * fresh parse, once done */
            if (deps_versions(j) != j->g->fin_versions || deps_reload_pending(j))
                j->stale = ASSET__STALE_FORCED;
            asset__job_complete(s, j, j->g->pvalue);
        } else {
            fail(s, j, st, f.message);
        }
        asset_free(f.message);
    }
    if (next) { /* where they were: ahead of what a budget left, which came after them */
        next_tail->g->fin_next = s->fin_head;
        if (!s->fin_head) s->fin_tail = next_tail;
        s->fin_head = next;
    }
    if (later) { /* behind what is queued: every job gets its turn */
        if (s->fin_tail)
            s->fin_tail->g->fin_next = later;
        else
            s->fin_head = later;
        s->fin_tail = later_tail;
    }
    return n;
}

/* ---- the finalize API (flush thread, inside finalize; lock not held) ---- */

const char *asset_finalize_uri(const asset_finalize_t *f) { return f ? f->job->uri : ""; }

void *asset_finalize_value(const asset_finalize_t *f) { return f ? f->v->value : NULL; }

void asset_finalize_set_value(asset_finalize_t *f, void *value, size_t cost_bytes) {
    if (!f) return;
    asset__value_t *v = f->v;
    asset__loader_slot_t *ld = v->loader;
    if (v->value != value) asset__loader_free_value(ld, v->value, NULL, NULL);
    v->value = value;
    v->cost = cost_bytes;
}

/* The job's dependency array is stable during finalize: nothing adds to it after
 * parse and an abandoned job is not freed while its finalize runs. */
size_t asset_finalize_dependency_count(const asset_finalize_t *f) {
    return f ? asset__job_ndeps(f->job) : 0;
}

asset_handle_t *asset_finalize_dependency(const asset_finalize_t *f, size_t i) {
    return f && i < asset__job_ndeps(f->job) ? f->job->g->deps->h[i] : NULL;
}

asset_status_t asset_finalize_fail(asset_finalize_t *f, asset_status_t st, const char *fmt, ...) {
    if (f && !f->message) {
        va_list ap;
        va_start(ap, fmt);
        f->message = asset__vasprintf(fmt, ap);
        va_end(ap);
    }
    return st;
}
