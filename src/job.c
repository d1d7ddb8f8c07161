/* job.c - what a worker does with a job: read through the source, parse through the
 * loader, insert into the cache, and decide every handle that shares the job. */
#include "internal.h"
#include "sha256.h"

#include <stdio.h>
#include <string.h>

/* [lock] What of a job must be let go under the lock, or on the thread that ran it
 * (its request: a source's free_fn), leaving only memory to free. */
static void job_release(asset__job_t *j) {
    if (j->source) j->source->users--; /* [lock] */
    j->source = NULL;
    if (j->g) { /* the graph's part */
        if (j->g->deps) asset__graph_release_deps(j->g->deps->h[0]->server, j);
        asset__value_release(j->g->pvalue);
        asset_free(j->g->dep_message);
        asset_free(j->g);
        j->g = NULL;
    }
    if (j->req) {
        asset__request_dispose(j->req);
        if (!asset__pool_keep_request(j->req)) asset_free(j->req);
        j->req = NULL;
    }
    asset__value_release(j->cached);
    j->cached = NULL;
    asset__task_free(j->task);
    j->task = NULL;
}

/* The memory job_release leaves. Any thread, no lock. */
static void job_free_memory(asset__job_t *j) {
    if (!j->uri_inline) asset_free(j->uri); /* its path too: one block (else the job's) */
    asset_free(j->cached_version);
    asset_free(j->sha256);
    if (j->uri_slab) /* one of a slice's jobs (load.c): its slab goes with the last */
        asset__uri_block_free(j, true);
    else
        asset_free(j);
}

void asset__job_free(asset__job_t *j) {
    job_release(j);
    job_free_memory(j);
}

/* [lock] A finished job's memory goes back to be freed by the next thread that loads
 * or waits (asset__jobs_take_returned), most often the one that made it: a worker
 * that freed it went through the maker's malloc arena lock (glibc keeps 7 blocks of a
 * size per thread), against that thread's own allocations. Linked through the map
 * node, unused once the job is unmapped. */
static void job_return(asset_server_t *s, asset__job_t *j) {
    if (s->returned_n >= ASSET__RETURNED_MAX) {
        asset__job_free(j);
        return;
    }
    job_release(j);
    j->node.link.next = s->returned ? &s->returned->node.link : NULL;
    s->returned = j;
    s->returned_n++;
}

asset__job_t *asset__jobs_take_returned(asset_server_t *s, size_t max) {
    asset__job_t *head = s->returned, *j = head;
    if (!j || !max) return NULL;
    if (s->returned_n <= max) { /* all of them: no walk under the lock */
        s->returned = NULL;
        s->returned_n = 0;
        return head;
    }
    size_t n = 1;
    while (n < max && j->node.link.next) {
        j = (asset__job_t *)j->node.link.next;
        n++;
    }
    s->returned = (asset__job_t *)j->node.link.next;
    j->node.link.next = NULL;
    s->returned_n -= n;
    return head;
}

void asset__jobs_free_returned(asset__job_t *j) {
    while (j) {
        asset__job_t *next = (asset__job_t *)j->node.link.next;
        job_free_memory(j);
        j = next;
    }
}

/* [lock] Removes the job from the coalescing map so no new load joins it. */
static void job_unmap(asset_server_t *s, asset__job_t *j) {
    if (j->mapped) {
        asset__map_remove(&s->inflight, &j->node);
        /* the table of 100,000 loads in flight went back only once none was left: one
         * long load kept it for good. No walk of the map is under way here: its walks
         * (destroy's, a remount's, introspection's, a change's or reload's chain) unmap
         * nothing, and asset__graph_free_all's starts again after each drop */
        asset__map_trim(&s->inflight);
        j->mapped = false;
    }
}

void asset__job_detach(asset__job_t *j, asset_handle_t *h) {
    asset_server_t *s = h->server;
    if (h->job_prev) /* unlinked in O(1): a job may have tens of thousands (coalescing) */
        h->job_prev->job_next = h->job_next;
    else if (j->handles == h)
        j->handles = h->job_next;
    if (h->job_next) h->job_next->job_prev = h->job_prev;
    h->job = NULL;
    h->job_next = h->job_prev = NULL;
    asset__job_count_prio(j, h->priority, -1);
    if (--j->live > 0 && !j->finishing) {
        /* a job runs at the best priority of its live handles: the one leaving
         * (cancelled, timed out) may have been what raised it, also once a worker
         * started it (what its parse declares later followed the raise for nobody) */
        if (h->priority == j->priority) asset__job_reprioritize(s, j);
        return;
    }
    if (j->finishing) return;
    /* nobody wants the result any more */
    job_unmap(s, j);
    if (j->state == ASSET__JOB_QUEUED) {
        /* an ASYNC read finished, queued again for its parse: its read's slice was left
         * open for ever (READ_START, no READ_END: a load a trace never closed) */
        if (j->phase == ASSET__PHASE_PARSE && !j->task)
            asset__trace_job(s, j, ASSET__TR_READ_END, ASSET_E_CANCELLED);
        asset__heap_remove(s, j);
        asset__job_free(j);
    } else if (j->state == ASSET__JOB_WAITING_DEPS || j->state == ASSET__JOB_FINALIZING) {
        asset__graph_abandon(s, j); /* its dependencies nothing else wants stop too */
        asset__graph_drain(s);
    } else {
        atomic_store_explicit(&j->cancelled, true, memory_order_release);
        /* a running task's fn, a parse or a source's read (or list) may sleep in a wait
         * for a load of this server, which ends now (asset__wait): its worker stayed held
         * until that load ended (reviews: a task's, then a parse's and a read's) */
        if (j->state == ASSET__JOB_RUNNING && s->waiters) uv_cond_broadcast(&s->done_cond);
        /* and its parse's dependencies nothing else wants stop now, not once it returns:
         * a wait of that parse for one runs its queued parse on the same thread (run-on-
         * wait), and a wait there (a stalled transfer's) held both for ever */
        if (j->state == ASSET__JOB_RUNNING && j->g) asset__graph_cancel_deps(s, j);
        /* counted before the kick: the I/O thread looks for cancelled reads only when
         * the count moved (sources/http.c) */
        atomic_fetch_add_explicit(&s->async_cancels, 1, memory_order_release);
        /* an async read (HTTP) notices on the I/O thread's next turn; not once destroy
         * began: it aborts every transfer, and stops and frees the thread without the
         * lock (a wait's callback may cancel meanwhile) */
        if (j->state == ASSET__JOB_WAITING_ASYNC && !s->stopping && s->io) asset__io_kick(s->io);
    }
}

void asset__job_drop(asset_server_t *s, asset__job_t *j) {
    job_unmap(s, j);
    asset__job_free(j);
}

void asset__job_finish_locked(asset_server_t *s, asset__job_t *j, asset_status_t st,
                              const char *msg, asset__value_t *v) {
    j->finishing = true;
    /* the worker is done with it in the same critical section that publishes the
     * result, so stats never show a finished job as still loading */
    if (j->state == ASSET__JOB_RUNNING) {
        s->running--;
        j->state = ASSET__JOB_QUEUED; /* counted once even if finished twice */
    }
    job_unmap(s, j);
    int http = j->req ? j->req->http_status : 0;
    /* a handle keeps its value's version itself, for its reloads' revalidation: a
     * no_cache one has no cache entry to hold it, and a cached one's entry may be gone
     * (evicted, cleared, over its budget) when a watch or an http_poll_ms poll reloads
     * it (without them no reload revalidates: a load allocates nothing for it); a
     * reload handle, for the live handles it serves */
    const char *version = j->req && j->req->version ? j->req->version : j->cached_version;
    bool polled = s->cfg.watch || s->cfg.http_poll_ms;
    for (asset_handle_t *h = j->handles; h && st == ASSET_OK; h = h->job_next) {
        if (!h->no_cache && !h->reload && !polled) continue;
        asset_free(h->nc_version);
        h->nc_version = version ? asset__strdup(version) : NULL;
    }
    /* a failed reload: the version of what it read, so that the handles it serves are
     * not told the same failure of the same source again (reload.c told_already) */
    for (asset_handle_t *h = j->handles; h && st != ASSET_OK; h = h->job_next) {
        if (!h->reload) continue;
        asset_free(h->nc_version);
        h->nc_version = version ? asset__strdup(version) : NULL;
    }
    /* a dependency's failure: its fix reloads its parents; so does a label's addition,
     * for a parent that wanted one the file lacks */
    if (st != ASSET_OK)
        asset__reload_watch_failed(s, j, st);
    else
        asset__reload_await_labels(s, j, v);
    /* a file another program holds without sharing: a reload tries it again */
    bool transient = st != ASSET_OK && j->req && j->req->transient;
    const char *told = NULL; /* one failure, one log line: not one per handle */
    /* every handle gets this result before the graph steps the parents it reaches: a
     * parent that failed on the first of them dropped its others (two labels of one
     * atlas, a URI declared twice) as "cancelled: its parent was dropped" (a review) */
    bool draining = s->graph_draining;
    s->graph_draining = true;
    while (j->handles) {
        if (st == ASSET_OK) {
            asset__handle_decide_value(j->handles, v, http);
        } else {
            if (j->handles->reload) j->handles->reload_transient = transient;
            asset__handle_decide_told(j->handles, st, msg, NULL, http, &told);
        }
    }
    s->graph_draining = draining;
    asset__graph_drain(s); /* none when an outer drain runs: that one steps them */
    job_return(s, j);
}

void asset__job_complete(asset_server_t *s, asset__job_t *j, asset__value_t *v) {
    asset__value_extra_t *x = asset__value_x(v);
    asset__job_graph_t *g = j->g;
    if (g && g->deps && x && !x->deps) { /* it keeps its dependencies alive from now on */
        x->deps = g->deps;               /* the job's reference */
        g->deps = NULL;
        s->dep_values++;
        asset__dependents_add(s, x->deps, v, j->uri);
    }
    asset__loader_slot_t *ld = j->loader;
    /* a replaced source's, or one read from a package mounted again since, or from a
     * mem:// key put or removed since: stale */
    if (!j->no_cache && asset__job_answer_current(j))
        asset__cache_put_hashed(&ld->cache, j->uri, asset__job_uri_hash(j),
                                j->req ? j->req->version : NULL, j->sha256, v);
    asset__reload_watch_job(s, j);
    asset__reload_stale_job(s, j);
    asset__job_finish_locked(s, j, ASSET_OK, NULL, v);
}

/* The bytes a source handed over (asset_request_adopt) go before the lock that
 * finishes the job: its free_fn may call the server (it deadlocked there). */
static void drop_bytes(asset__job_t *j) {
    if (j->req) asset__request_reset_data(j->req);
}

void asset__job_finish(asset_server_t *s, asset__job_t *j, asset_status_t st, const char *msg,
                       asset__value_t *v) {
    drop_bytes(j);
    uv_mutex_lock(&s->lock);
    asset__job_finish_locked(s, j, st, msg, v);
    asset__pool_take_next(s, j);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
}

static void job_fail(asset_server_t *s, asset__job_t *j, asset_status_t st, const char *step,
                     const char *why) {
    char *msg = asset__asprintf("%s: %s: %s", j->uri, step, why ? why : asset_strerror(st));
    asset__job_finish(s, j, st, msg, NULL);
    asset_free(msg);
}

static void parse_and_finish(asset_server_t *s, asset__job_t *j) {
    struct asset_request *r = j->req;
    asset__loader_slot_t *ld = j->loader;
    if (asset__request_seal(r) != ASSET_OK) {
        job_fail(s, j, ASSET_E_NO_MEMORY, "read", "out of memory");
        return;
    }
    /* the value's record first: a value must never be freed on this thread when its
     * loader frees on the flush thread, and without a record it could not be queued. The
     * built-in bytes loader's asset_bytes_t goes in the record's slot, one block less per
     * file (not lent data's: that value is a record of its own, lent_value_t). The record
     * has room for its cache entry too, unless it is loaded no_cache: one block less
     * again (cache.c, asset__cache_put) */
    bool slot = ld->vt.parse == asset__bytes_loader.parse && !(r->adopted && r->lent);
    size_t room = j->no_cache ? 0 : asset__cache_entry_size(j->uri, r->version, j->sha256);
    asset__value_t *v = asset__value_new_roomy(s, ld, slot, room);
    if (!v) {
        job_fail(s, j, ASSET_E_NO_MEMORY, "parse", "out of memory");
        return;
    }
    asset_parse_t p;
    memset(&p, 0, sizeof p);
    p.req = r;
    p.slot = asset__value_slot(v);
    asset__trace_job(s, j, ASSET__TR_PARSE_START, ASSET_OK);
    uint64_t t0 = asset__now_ns();
    asset_status_t st = ld->vt.parse(ld->ctx, &p);
    uint64_t dt = asset__now_ns() - t0;
    if (st == ASSET_OK && !p.has_value)
        st = asset_parse_fail(&p, ASSET_E_PARSE, "loader set no value");
    /* dependencies and labels live in the record's extra part: give it one now, while
     * nothing else holds the record */
    if (st == ASSET_OK && (p.depended || p.nlabels || p.free_fn || r->base)) {
        bool in_slot =
            p.slot && p.has_value && p.value == p.slot; /* the slot moves with the record */
        if (!asset__value_add_extra(s, &v))
            st = asset_parse_fail(&p, ASSET_E_NO_MEMORY, "out of memory");
        else if (in_slot)
            p.value = asset__value_slot(v);
    }
    /* a positive or unknown code from a loader is a parse error, with its number; so is
     * ASSET_E_CANCELLED with no cancel asked (a parse that waited for a load another
     * thread cancelled, say): the event says so, as the handles will (it said the code) */
    char odd[64];
    const char *why = p.message;
    if (st != ASSET_OK)
        st = asset__status_outcome(st, atomic_load_explicit(&j->cancelled, memory_order_acquire),
                                   "loader", ASSET_E_PARSE, odd, &why);
    asset__trace_job(s, j, ASSET__TR_PARSE_END, st);
    asset__value_extra_t *x = asset__value_x(v); /* v may have moved */
    if (p.free_fn && x) {                        /* the value's own free, wherever it ends */
        x->free_fn = p.free_fn;
        x->free_user = p.free_user;
    }
    if (st == ASSET_OK && x && r->base) { /* where a redirect led: a manifest's base */
        x->base = r->base;
        r->base = NULL;
    }
    if (st != ASSET_OK) {
        uv_mutex_lock(&s->lock); /* introspection: per-loader counters */
        ld->parses++;
        ld->parse_failures++;
        ld->parse_ns += dt;
        s->stats.parses++; /* a call too ("loader parse calls"), as the loader's count says */
        uv_mutex_unlock(&s->lock);
        asset__labels_free(p.labels, p.nlabels, &p.label_ix);
        if (p.has_value && p.free_fn && !x) { /* no room for its free */
            p.free_fn(p.value, p.free_user);
            asset_free(v);
        } else if (p.has_value) { /* a loader that set a value and then failed: free it */
            v->value = p.value;
            asset__value_release(v); /* on the flush thread if the loader says so */
        } else {
            asset_free(v);
        }
        /* the whole name, however long (96 bytes cut one past 88 characters, "loader"
         * with it); out of memory, the word alone */
        char *step = asset__asprintf("%s loader", ld->name);
        job_fail(s, j, st, step ? step : "loader", why);
        asset_free(step);
        asset_free(p.message);
        return;
    }
    asset_free(p.message);
    v->value = p.value;
    v->cost = p.cost;
    if (p.nlabels) {
        x->labels = p.labels;
        x->nlabels = p.nlabels;
        x->label_ix = p.label_ix;
    } else {
        asset_free(p.labels); /* grown for a label that then found no memory */
        asset_free(p.label_ix.slots);
    }
    uv_mutex_lock(&s->lock);
    ld->parses++;
    ld->parse_ns += dt;
    s->stats.parses++;
    s->stats.cache_misses++;
    asset__graph_parsed(s, j, v); /* the job holds v now: dependencies, finalize, done */
    asset__pool_take_next(s, j);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
}

/* The read is over (synchronously or through asset_request_finish). */
static void after_read(asset_server_t *s, asset__job_t *j, asset_status_t st) {
    struct asset_request *r = j->req;
    /* a source that ignored a refused write would deliver cut-off bytes as a success */
    if (st == ASSET_OK && r->refused) st = r->refused;
    char why[64]; /* a status no source may return: keep the enum closed */
    bool odd = st != ASSET_OK && st != ASSET_NOT_MODIFIED && asset__status_odd(st, "source", why);
    /* the read's outcome, as the handles get it: the source's OK after a refused write
     * (E_TOO_LARGE) and its odd statuses (E_IO) said otherwise (a review) */
    asset__trace_job(s, j, ASSET__TR_READ_END, odd ? ASSET_E_IO : st);
    atomic_fetch_add_explicit(&s->bytes_read, r->size, memory_order_relaxed);
    if (atomic_load_explicit(&j->cancelled, memory_order_acquire)) {
        asset__job_finish(s, j, ASSET_E_CANCELLED, NULL, NULL);
        return;
    }
    if (st == ASSET_NOT_MODIFIED) {
        if (!j->cached) {
            job_fail(s, j, ASSET_E_IO, "read",
                     "source answered NOT_MODIFIED but nothing is cached");
            return;
        }
        drop_bytes(j);
        uv_mutex_lock(&s->lock);
        /* a load served from the cache; a reload's revalidation (an http_poll_ms poll, a
         * watch's event) is none unless a load joined it: every unchanged poll counted */
        bool loaded = false;
        for (const asset_handle_t *h = j->handles; h && !loaded; h = h->job_next)
            loaded = !h->reload;
        if (loaded) s->stats.cache_hits++;
        /* touch; or, evicted while it revalidated, cached again: the value was just
         * found current, and without an entry the next load read and parsed it afresh
         * (a review). Not when an entry was removed or replaced meanwhile (invalidate,
         * clear_caches, a reload's new value, a dependency's change): that one stays
         * gone. Nor when its source was replaced meanwhile: what the old one answered is
         * no answer for the loads after the registration (as asset__job_complete). Nor
         * for reloads alone (polls, watch events), no use of the asset: "a 304 changes
         * nothing" (each poll of a live asset made it the most recently used, or cached
         * it again once evicted, evicting what the game had loaded: thirty-eighth review) */
        asset__cache_t *c = &j->loader->cache;
        uint32_t h = asset__job_uri_hash(j);
        if (loaded && !j->no_cache && !j->label_base && asset__job_answer_current(j) &&
            !asset__cache_get_hashed(c, j->uri, h) && !j->cached->dropped)
            asset__cache_put_hashed(c, j->uri, h, j->cached_version, j->sha256, j->cached);
        /* a label's value, lent for its version (asset__reload_live_base): the reload
         * handle tells asset__reload_decided that it is no whole value */
        for (asset_handle_t *rh = j->handles; rh && j->label_base; rh = rh->job_next)
            rh->reload_unchanged = rh->reload;
        asset__reload_watch_job(s, j);
        /* a change after its read began: it reloads once loaded, as a parsed one does */
        asset__reload_stale_job(s, j);
        asset__job_finish_locked(s, j, ASSET_OK, NULL, j->cached);
        asset__pool_take_next(s, j);
        uv_mutex_unlock(&s->lock);
        asset__maybe_wake(s);
        return;
    }
    if (odd) {
        job_fail(s, j, ASSET_E_IO, "read", why);
        return;
    }
    if (st == ASSET_E_NOT_FOUND) {
        /* the source says it is gone: its cached value, which no load gets from now on,
         * left the cache (it stayed charged against the budget until evicted). Not when
         * it changed while this read ran (a put, a remount): that change removed the old
         * entry, and the one there now is a later load's, of what is there now (a review);
         * nor when its source was replaced meanwhile: the old one's answer says nothing
         * of the new one's, whose value a later load may have cached there */
        uv_mutex_lock(&s->lock);
        if (asset__job_answer_current(j)) asset__cache_remove(&j->loader->cache, j->uri);
        uv_mutex_unlock(&s->lock);
    }
    if (st < 0) {
        job_fail(s, j, st, "read", r->message);
        return;
    }
    if (j->sha256) {
        char got[65];
        asset__sha256_hex(r->data ? (const void *)r->data : "", r->size, got);
        if (asset__strcasecmp(got, j->sha256) != 0) {
            char *why = asset__asprintf("sha256 mismatch: expected %s, got %s", j->sha256, got);
            job_fail(s, j, ASSET_E_INTEGRITY, "integrity", why);
            asset_free(why);
            return;
        }
    }
    if (j->polled) { /* a poll's whole answer: a change, unless the same version */
        uv_mutex_lock(&s->lock);
        asset__reload_poll_read(s, j);
        uv_mutex_unlock(&s->lock);
    }
    parse_and_finish(s, j);
}

/* A LIST job: the source lists the folder; the value is the struct asset_list. */
static void run_list(asset_server_t *s, asset__job_t *j) {
    struct asset_list *l = asset__calloc(1, sizeof *l);
    asset__value_t *v = l ? asset__value_new(s, &asset__list_slot, false) : NULL;
    if (!v) {
        asset_free(l);
        job_fail(s, j, ASSET_E_NO_MEMORY, "list", "out of memory");
        return;
    }
    l->recursive = j->recursive;
    l->uri = j->uri;
    l->path = j->path;
    l->cancelled = &j->cancelled;
    asset__source_slot_t *src = j->source;
    asset_status_t st = src->vt.list(src->ctx, j->uri, l);
    if (st == ASSET_OK && l->add_failed) st = l->add_failed; /* an entry was dropped */
    if (st == ASSET_OK) st = asset__list_sort(l);            /* here, not on the flush thread */
    l->uri = l->path = NULL;                                 /* borrowed from the job */
    l->cancelled = NULL;
    if (st != ASSET_OK || atomic_load(&j->cancelled)) {
        if (atomic_load(&j->cancelled)) st = ASSET_E_CANCELLED;
        /* a status no source may return, as after a read: E_IO with its number (an
         * unknown negative one reached the batch as is, a review) */
        char why[64];
        bool odd = st != ASSET_OK && asset__status_odd(st, "source", why);
        job_fail(s, j, odd ? ASSET_E_IO : st, "list", odd && !l->message ? why : l->message);
        asset__list_dispose(l);
        asset_free(l);
        asset_free(v);
        return;
    }
    v->value = l;
    v->cost = l->count * 64;
    asset__job_finish(s, j, ASSET_OK, NULL, v);
    asset__value_release(v);
}

void (*asset__job_pending_hook)(asset__job_t *j) = NULL;

/* The jobs this thread is inside asset__job_run of, innermost first (a wait inside a
 * read, a parse or a task runs queued jobs on its own thread), on their stack frames. */
struct job_frame {
    const asset__job_t *job;
    uint64_t id; /* its trace_id: another thread matches it only while it is this job */
    const asset_server_t *server;
    const struct job_frame *outer;
    unsigned depth; /* how many frames, this one included */
    bool loads;     /* a read or a parse, not a task's fn: other loads may wait for it */
};
static _Thread_local const struct job_frame *tl_frames;

bool asset__job_runs_here(void) { return tl_frames != NULL; }

bool asset__job_runs_this(const asset__job_t *j) { return tl_frames && tl_frames->job == j; }

unsigned asset__job_depth(void) { return tl_frames ? tl_frames->depth : 0; }

bool asset__job_of_runs_here(const asset_server_t *s) {
    for (const struct job_frame *f = tl_frames; f; f = f->outer)
        if (f->server == s) return true;
    return false;
}

bool asset__job_cancelled_here(const asset_server_t *s) {
    /* the innermost only: a job that a cancelled job's wait runs is not cancelled. Its
     * job lives while this thread is inside its fn (RUNNING: only this thread ends it,
     * once fn returned; a read that finished its request itself is not requeued while
     * its read runs, asset_request_finish) */
    const struct job_frame *f = tl_frames;
    return f && f->server == s &&
           atomic_load_explicit(&((asset__job_t *)f->job)->cancelled, memory_order_acquire);
}

bool asset__job_loads_here(const asset_server_t *s) {
    for (const struct job_frame *f = tl_frames; f; f = f->outer)
        if (f->server == s && f->loads) return true;
    return false;
}

bool asset__job_running_here(const asset__job_t *j) { return asset__job_in_frames(tl_frames, j); }

const void *asset__job_frames(void) { return tl_frames; }

bool asset__frames_load(const void *frames, const asset_server_t *s) {
    for (const struct job_frame *f = frames; f; f = f->outer)
        if (f->server == s && f->loads) return true;
    return false;
}

bool asset__frames_task_awaited(asset_server_t *s, const void *frames, const asset__await_t *skip,
                                uint64_t *looks) {
    /* a task's job lives while its fn runs (spawn.c finishes it after), and a thread is
     * inside each of its frames' fns: read, unlike a read's (its job may be gone) */
    for (const struct job_frame *f = frames; f && s->awaits; f = f->outer) {
        if (f->server != s || f->loads) continue;
        for (const asset_handle_t *h = f->job->handles; h; h = h->job_next)
            for (const asset__await_t *a = s->awaits; a && !h->decided; a = a->next) {
                ++*looks;
                if (a != skip && a->ops->root(a->arg, h)) return true;
            }
    }
    return false;
}

bool asset__job_in_frames(const void *frames, const asset__job_t *j) {
    /* RUNNING: a job finished early (a read that called asset_request_finish itself)
     * may be freed meanwhile, and its address be a new job's (running too, perhaps:
     * its trace_id tells) */
    if (!j || j->state != ASSET__JOB_RUNNING) return false;
    for (const struct job_frame *f = frames; f; f = f->outer)
        if (f->job == j && f->id == j->trace_id) return true;
    return false;
}

static void job_run(asset_server_t *s, asset__job_t *j);

void asset__job_run(asset_server_t *s, asset__job_t *j) {
    struct job_frame self = {
        j, j->trace_id, s, tl_frames, tl_frames ? tl_frames->depth + 1 : 1, !j->task};
    tl_frames = &self;
    job_run(s, j);
    tl_frames = self.outer;
}

static void job_run(asset_server_t *s, asset__job_t *j) {
    if (j->task) { /* a spawned task (spawn.c) */
        asset__spawn_run(s, j);
        return;
    }
    if (j->phase == ASSET__PHASE_PARSE) {
        after_read(s, j, j->read_status);
        return;
    }
    if (atomic_load_explicit(&j->cancelled, memory_order_acquire)) {
        asset__job_finish(s, j, ASSET_E_CANCELLED, NULL, NULL);
        return;
    }
    if (j->is_list) {
        run_list(s, j);
        return;
    }
    /* the request exists only while the job runs: a queued load stays small */
    struct asset_request *r = asset__pool_spare_request();
    if (!r) r = asset_alloc(sizeof *r);
    j->req = r;
    if (!r) {
        job_fail(s, j, ASSET_E_NO_MEMORY, "read", "out of memory");
        return;
    }
    asset__request_init(r, j);
    r->server = s;
    r->max_size = s->cfg.max_asset_size;
    asset__source_slot_t *src = j->source;
    asset__trace_job(s, j, ASSET__TR_READ_START, ASSET_OK);
    asset_status_t st = src->vt.read(src->ctx, r);
    atomic_fetch_add_explicit(&s->source_reads, 1, memory_order_relaxed);
    if (st != ASSET_PENDING || !(src->vt.flags & ASSET_SOURCE_ASYNC)) /* no finish to come */
        atomic_store_explicit(&r->closed, true, memory_order_relaxed);
    if (st == ASSET_PENDING && (src->vt.flags & ASSET_SOURCE_ASYNC)) {
        if (asset__job_pending_hook) asset__job_pending_hook(j);
        uv_mutex_lock(&s->lock);
        if (!j->async_done) { /* asset_request_finish will requeue it */
            j->state = ASSET__JOB_WAITING_ASYNC;
            s->running--; /* no worker on it any more: counted in running_async */
            s->running_async++;
            /* every handle left while the read was being started: the cancel only set
             * the flag (RUNNING), and the I/O thread may have looked before it was */
            if (atomic_load_explicit(&j->cancelled, memory_order_acquire) && s->io) {
                /* the I/O thread may have taken the count of the cancel before the
                 * read was filed: moved again, so that it looks */
                atomic_fetch_add_explicit(&s->async_cancels, 1, memory_order_release);
                asset__io_kick(s->io);
            }
            uv_mutex_unlock(&s->lock);
            return;
        }
        st = j->read_status; /* finished before read() returned */
        uv_mutex_unlock(&s->lock);
    }
    if (st == ASSET_PENDING) {
        asset__trace_job(s, j, ASSET__TR_READ_END, ASSET_E_IO); /* its slice ends too */
        job_fail(s, j, ASSET_E_IO, "read", "source returned PENDING but is not ASYNC");
        return;
    }
    after_read(s, j, st);
}

/* [lock] Whether the parse that follows an ASYNC read may run right here, on the thread
 * that finished the read (the I/O thread for HTTP), instead of going back through the
 * heap to a worker: only the built-in bytes loader, whose parse takes the buffer and
 * calls no user code, and no digest to compute (hashing a big body would stall I/O). */
static bool parse_inline(const asset__job_t *j) {
    return !j->task && !j->sha256 && j->loader->vt.parse == asset__bytes_loader.parse;
}

void asset_request_finish(asset_request_t *r, asset_status_t st) {
    asset_server_t *s = r->server;
    /* Once per read that returned (or will return) PENDING. A request finished already
     * is kept for the worker's next read: a second finish acted on that read's job (its
     * adopted bytes dropped, its result replaced: a review). Refused while the request
     * is idle, or another job's whose read is not an ASYNC one in progress. The closed
     * mark first: a second finish right after the first read the job pointer that the
     * worker parsing the first one's answer clears (a data race; the job perhaps freed
     * by then: a review) */
    bool closed = atomic_load_explicit(&r->closed, memory_order_acquire);
    asset__job_t *j = closed ? NULL : r->job;
    const asset__source_slot_t *src = j ? j->source : NULL;
    if (!src || !(src->vt.flags & ASSET_SOURCE_ASYNC) ||
        atomic_exchange_explicit(&r->closed, true, memory_order_acq_rel)) {
        asset__log_late_refusal(s, /* rate-limited: a source may call in a loop */
                                "asset_request_finish(%s): refused: this request's read is "
                                "over (finished already, or not an ASYNC source's read); a "
                                "request must not be touched after its finish",
                                asset_err_name(st));
        return;
    }
    /* PENDING is no result: inside read it read as "not ASYNC", from another thread as
     * "an unexpected status (1)" (a review) */
    if (st == ASSET_PENDING)
        st = asset__request_fail(r, ASSET_E_IO, "asset_request_finish with ASSET_PENDING");
    /* adopted bytes go here, without the lock, or become the request's own copy (which
     * the parse makes anyway): their free_fn may call the server, and a cancel or a
     * destroy frees the job requeued below under the lock (it deadlocked there) */
    if (r->adopted && !r->lent) {
        bool keep = st == ASSET_OK && !atomic_load_explicit(&j->cancelled, memory_order_acquire);
        if (keep && asset__request_seal(r) != ASSET_OK) {
            r->refused = asset__request_fail(r, ASSET_E_NO_MEMORY,
                                             "out of memory copying %zu bytes", r->size);
            keep = false;
        }
        if (!keep) asset__request_reset_data(r);
    }
    bool requeued = false;
    uv_mutex_lock(&s->lock);
    j->read_status = st;
    j->async_done = true;
    if (j->state == ASSET__JOB_WAITING_ASYNC && s->stopping) {
        /* the bytes go without the lock (drop_bytes), while destroy still waits for
         * this read (running_async): nothing else frees the job meanwhile */
        uv_mutex_unlock(&s->lock);
        drop_bytes(j);
        uv_mutex_lock(&s->lock);
    }
    if (j->state == ASSET__JOB_WAITING_ASYNC) {
        s->running_async--;
        j->phase = ASSET__PHASE_PARSE;
        if (s->stopping) { /* nobody will parse: let destroy see it gone */
            j->finishing = true;
            job_unmap(s, j);
            while (j->handles) asset__job_detach(j, j->handles);
            asset__job_free(j);
            uv_cond_broadcast(&s->done_cond);
        } else if (parse_inline(j)) {
            /* one thread hand-off less per load; counted like a waiter's run-on-wait, so
             * destroy waits for it (this may be a user's thread) */
            j->state = ASSET__JOB_RUNNING;
            s->running++;
            s->caller_runs++;
            uv_mutex_unlock(&s->lock);
            after_read(s, j, st);
            uv_mutex_lock(&s->lock);
            if (--s->caller_runs == 0 && s->stopping) uv_cond_broadcast(&s->done_cond);
        } else {
            j->state = ASSET__JOB_QUEUED;
            if (!asset__heap_push(s, j)) { /* failed in this critical section: a cancel
                                            * between two would free the job (QUEUED) */
                asset__trace_job(s, j, ASSET__TR_READ_END, ASSET_E_NO_MEMORY); /* ends too */
                char *msg = asset__asprintf("%s: read: out of memory requeueing the job", j->uri);
                asset__job_finish_locked(s, j, ASSET_E_NO_MEMORY, msg, NULL);
                uv_mutex_unlock(&s->lock);
                asset_free(msg);
                asset__maybe_wake(s);
                return;
            }
            /* told under the lock, unlike a load: this may be a user's thread that
             * destroy does not wait for once the lock is released */
            s->parse_requeues++;
            if (!asset__heap_list_requeued(s, j)) s->requeues_unlisted++; /* a walk finds it */
            if (asset__pool_wake_claim(s)) asset__pool_notify(s);
            /* and any waiter, which may run the parse (run-on-wait), a worker told or
             * not: the one woken may take a job of higher priority queued before it has
             * the lock, and the load's waiter slept until that job was over (a review).
             * Only ASYNC reads come here (never a file://, mem:// or pkg:// load) */
            if (s->waiters) uv_cond_broadcast(&s->done_cond);
            requeued = true;
        }
    }
    uv_mutex_unlock(&s->lock);
    if (requeued) asset__pool_requeued_async(s); /* the web's one thread: config.wake */
}
