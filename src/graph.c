/* graph.c - the asset graph: dependencies declared during parse, cycle detection,
 * labeled sub-assets, and values that hold dependency handles.
 *
 * A job whose parse declared dependencies does not block its worker: after parse it
 * waits (ASSET__JOB_WAITING_DEPS) holding one handle per dependency and a count of the
 * undecided ones. Deciding a dependency handle tells its parent (dep_decided); when
 * the count reaches zero, or a required dependency failed, the parent has a step to
 * take. Steps go through one work list drained iteratively (graph_drain), so a chain
 * of 10,000 assets finishing, failing or being abandoned never recurses 10,000 deep.
 *
 * Ownership: the job owns its dependency handles until it completes; then its value
 * takes them (v->deps), so a cached parent keeps its dependencies alive and a cache hit
 * hands them out again. A value holding handles is freed by the flush thread
 * (asset__values_drain), since releasing handles needs the lock that the last
 * releaser of a value may already hold. Everything here runs with s->lock held unless
 * its comment says otherwise. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* ---- labels ---- */

void asset__labels_free(asset__label_t *l, size_t n, asset__label_index_t *ix) {
    for (size_t i = 0; i < n; i++) {
        asset_free(l[i].name);
        asset__value_release(l[i].value);
    }
    asset_free(l);
    if (ix) {
        asset_free(ix->slots);
        ix->slots = NULL;
    }
}

/* Up to this many labels a scan is as quick as the index, and costs no block. */
#define LABEL_SCAN_MAX 16

size_t asset__labels_find(asset_server_t *s, const asset__label_t *l, size_t n,
                          const asset__label_index_t *ix, const char *name) {
    size_t looks = 0, at = n;
    if (ix && ix->slots) {
        for (size_t i = asset__map_hash(name) & ix->mask; ix->slots[i]; i = (i + 1) & ix->mask) {
            looks++;
            if (!strcmp(l[ix->slots[i] - 1].name, name)) {
                at = ix->slots[i] - 1;
                break;
            }
        }
    } else {
        for (size_t i = 0; i < n && at == n; i++) {
            looks++;
            if (!strcmp(l[i].name, name)) at = i;
        }
    }
    if (s) atomic_fetch_add_explicit(&s->label_looks, looks, memory_order_relaxed);
    return at;
}

static void label_index_put(asset__label_index_t *ix, const char *name, size_t k) {
    size_t i = asset__map_hash(name) & ix->mask;
    while (ix->slots[i]) i = (i + 1) & ix->mask;
    ix->slots[i] = (uint32_t)(k + 1);
}

/* An index of l[0..n) with room for n + 1 at most half full. False: no memory (the old
 * index is gone then: lookups scan). */
static bool label_index_build(asset__label_index_t *ix, const asset__label_t *l, size_t n) {
    size_t cap = 64;
    while (cap / 2 < n + 1) cap *= 2;
    asset_free(ix->slots);
    ix->slots = asset__calloc(cap, sizeof *ix->slots);
    if (!ix->slots) return false;
    ix->mask = cap - 1;
    for (size_t k = 0; k < n; k++) label_index_put(ix, l[k].name, k);
    return true;
}

asset_status_t asset_parse_add_labeled(asset_parse_t *p, const char *label, void *value,
                                       size_t cost_bytes, void (*free_fn)(void *value, void *user),
                                       void *user) {
    if (!p || !label || !*label) return ASSET_E_INVALID;
    asset_server_t *s = p->req->server;
    if (asset__labels_find(s, p->labels, p->nlabels, &p->label_ix, label) < p->nlabels)
        return ASSET_E_INVALID;
    if (p->nlabels >= UINT32_MAX - 1) return ASSET_E_NO_MEMORY; /* the index's slots */
    if (p->nlabels == p->labels_cap) { /* doubling: a label at a time copied them all */
        size_t cap = p->labels_cap ? p->labels_cap * 2 : 4;
        if (cap > SIZE_MAX / sizeof *p->labels) return ASSET_E_NO_MEMORY;
        asset__label_t *nl = asset_realloc(p->labels, cap * sizeof *nl);
        if (!nl) return ASSET_E_NO_MEMORY;
        p->labels = nl;
        p->labels_cap = cap;
    }
    asset__value_t *v = asset__value_new(s, p->req->job->loader, true);
    char *name = v ? asset__strdup(label) : NULL;
    if (!name) {
        asset_free(v);
        return ASSET_E_NO_MEMORY;
    }
    v->value = value;
    v->cost = cost_bytes;
    asset__value_extra_t *x = asset__value_x(v);
    x->free_fn = free_fn;
    x->free_user = user;
    asset__label_index_t *ix = &p->label_ix;
    size_t k = p->nlabels;
    p->labels[k].name = name;
    p->labels[k].value = v;
    p->nlabels++;
    /* past a few, an index at most half full; no memory for it: lookups scan */
    if (p->nlabels > LABEL_SCAN_MAX) {
        if (!ix->slots || 2 * p->nlabels > ix->mask + 1)
            label_index_build(ix, p->labels, p->nlabels);
        else
            label_index_put(ix, name, k);
    }
    return ASSET_OK;
}

void asset__handle_decide_value(asset_handle_t *h, asset__value_t *v, int http_status) {
    if (!h->label) {
        asset__handle_decide(h, ASSET_OK, NULL, v, http_status);
        return;
    }
    asset__value_extra_t *x = asset__value_x(v);
    size_t n = asset__value_nlabels(v);
    size_t i = x ? asset__labels_find(h->server, x->labels, n, &x->label_ix, h->label) : n;
    if (i < n) {
        asset__handle_decide(h, ASSET_OK, NULL, x->labels[i].value, http_status);
        return;
    }
    char *msg = asset__asprintf("%s: label '%s' not found (the asset has %zu label%s)",
                                asset__handle_uri(h), h->label, n, n == 1 ? "" : "s");
    asset__handle_decide(h, ASSET_E_NOT_FOUND, msg, NULL, http_status);
    asset_free(msg);
}

/* ---- the work list ---- */

/* The job's graph part, made on first use. NULL: out of memory. */
static asset__job_graph_t *graph_of(asset__job_t *j) {
    if (!j->g) j->g = asset__calloc(1, sizeof *j->g);
    return j->g;
}

/* Only jobs with their graph part are in the work list. */
static void ready_push(asset_server_t *s, asset__job_t *j) {
    if (j->in_graph_ready) return;
    j->in_graph_ready = true;
    j->g->graph_next = NULL;
    if (s->graph_ready_tail)
        s->graph_ready_tail->g->graph_next = j;
    else
        s->graph_ready = j;
    s->graph_ready_tail = j;
}

static void step(asset_server_t *s, asset__job_t *j) {
    if (j->state == ASSET__JOB_FINALIZING) return; /* the finalize queue frees or ends it */
    /* a worker is still in its parse: the parse's end queues it again (freeing it now
     * would pull the job from under that worker) */
    if (!j->parsed_done) return;
    if (asset__job_unwanted(j)) {
        asset__job_drop(s, j);
        return;
    }
    asset__job_graph_t *g = j->g;
    if (g->dep_status != ASSET_OK) {
        asset__job_finish_locked(s, j, g->dep_status, g->dep_message, NULL);
        return;
    }
    if (g->deps_pending) return;
    if (j->loader->vt.finalize)
        asset__finalize_push(s, j);
    else
        asset__job_complete(s, j, g->pvalue);
}

void asset__graph_drain(asset_server_t *s) {
    if (s->graph_draining) return; /* the outer drain picks up what this call queued */
    s->graph_draining = true;
    while (s->graph_ready) {
        asset__job_t *j = s->graph_ready;
        s->graph_ready = j->g->graph_next;
        if (!s->graph_ready) s->graph_ready_tail = NULL;
        j->in_graph_ready = false;
        step(s, j);
    }
    s->graph_draining = false;
}

void asset__graph_parsed(asset_server_t *s, asset__job_t *j, asset__value_t *v) {
    j->parsed_done = true;
    if (j->state == ASSET__JOB_RUNNING) s->running--; /* no worker on it any more */
    j->state = ASSET__JOB_WAITING_DEPS;
    if (!j->g && !j->loader->vt.finalize) { /* nothing to wait for: step() at once */
        if (asset__job_unwanted(j)) {
            asset__value_release(v);
            asset__job_drop(s, j);
        } else {
            asset__job_complete(s, j, v);
            asset__value_release(v); /* the parse's reference: the cache and handles hold theirs */
        }
    } else if (!graph_of(j)) { /* a finalize step, and no memory for its part */
        asset__value_release(v);
        asset__job_finish_locked(s, j, ASSET_E_NO_MEMORY, "out of memory", NULL);
    } else {
        j->g->pvalue = v;
        ready_push(s, j);
    }
    asset__graph_drain(s);
}

void asset__graph_abandon(asset_server_t *s, asset__job_t *j) {
    j->abandoned = true;
    ready_push(s, j);
}

/* ---- dependencies ---- */

/* A failure's message names the chain up to its cause, each level prefixing the one
 * below: past this many bytes its middle is left out (" ... "), keeping the levels
 * nearest the parent and the end, where the cause is. Unbounded, a failing chain of N
 * levels held N^2/2 bytes of messages until the flush (800 MB for 8,000 levels). */
#define DEP_MESSAGE_MAX 1024
#define DEP_MESSAGE_HEAD 384

/* Records the first required failure. Its message names the chain; when that message
 * cannot be made, the parent fails with NO_MEMORY, which says why by itself. */
static void dep_failed_why(asset__job_t *j, const char *why) { /* j has its part */
    asset__job_graph_t *g = j->g;
    if (g->dep_status != ASSET_OK) return;
    size_t wl = strlen(why);
    if (wl <= DEP_MESSAGE_MAX) {
        g->dep_message = asset__asprintf("%s: dependency %s", j->uri, why);
    } else { /* cut between UTF-8 sequences, never inside one */
        size_t head = DEP_MESSAGE_HEAD, tail = wl - (DEP_MESSAGE_MAX - DEP_MESSAGE_HEAD);
        while (head && ((unsigned char)why[head] & 0xc0) == 0x80) head--;
        while (tail < wl && ((unsigned char)why[tail] & 0xc0) == 0x80) tail++;
        g->dep_message =
            asset__asprintf("%s: dependency %.*s ... %s", j->uri, (int)head, why, why + tail);
    }
    g->dep_status = g->dep_message ? ASSET_E_DEPENDENCY : ASSET_E_NO_MEMORY;
}

/* A label's handle (atlas.json#hero) gets its whole asset's failure, which names the
 * asset alone ("<uri>: <step>: <why>", shared by every label of it): the parent's message
 * names the label its edge wanted, in its place (it named the atlas only, and a level
 * with two labels of it could not tell which edge failed: a review). */
static void dep_failed(asset__job_t *j, const asset_handle_t *h) {
    const char *why = h->message ? h->message : asset_strerror(h->status);
    const char *uri = asset__handle_uri(h);
    size_t base = strcspn(uri, "#");
    char *named = NULL;
    if (h->label && uri[base] && !strncmp(why, uri, base) && why[base] == ':')
        named = asset__asprintf("%s%s", uri, why + base);
    dep_failed_why(j, named ? named : why); /* out of memory: the asset's name alone */
    asset_free(named);
}

static int value_cycle(asset_server_t *s, const asset__job_t *j, const asset_handle_t *from,
                       char **msg);

/* [lock] j's dependency h, just decided (not published), loaded: an edge that closes a
 * cycle through values (value_cycle) fails j, whatever the dependency's own result; an
 * optional one fails alone, as in flight (dep_linked): h lets its value go and becomes
 * FAILED, so no cycle of references forms, and j goes on without it (j failed whole:
 * a reload of it kept its old value, a review). */
static void dep_cycle_check(asset_server_t *s, asset__job_t *j, asset_handle_t *h) {
    if (h->status != ASSET_OK) return;
    char *cycle = NULL;
    int found = value_cycle(s, j, h, &cycle);
    const char *why = found > 0 ? cycle : "out of memory looking for a dependency cycle";
    if (found && h->optional) {
        h->message = asset__strdup(why);
        h->status = found > 0 && h->message ? ASSET_E_DEPENDENCY : ASSET_E_NO_MEMORY;
        asset__value_release(h->value);
        h->value = NULL;
    } else if (found) {
        dep_failed_why(j, why);
    }
    asset_free(cycle);
}

void asset__graph_dep_decided(asset_server_t *s, asset_handle_t *h) {
    asset__job_t *j = h->dep_parent; /* a parent: it has its part */
    h->dep_parent = NULL;
    h->dep = ASSET__DEP_COUNTED;
    j->g->deps_pending--;
    dep_cycle_check(s, j, h);
    if (h->status != ASSET_OK && !h->optional) dep_failed(j, h);
    if (j->g->dep_status != ASSET_OK || j->g->deps_pending == 0) ready_push(s, j);
}

void asset__deps_unref(asset_server_t *s, asset__deps_t *d) {
    if (!d || --d->refs > 0) return;
    for (size_t i = 0; i < d->n && !s->handles_gone; i++) {
        asset_handle_t *h = d->h[i];
        if (h->refs > 0) h->refs--;
        asset__handle_maybe_free(h);
    }
    asset_free(d);
}

void asset__graph_release_deps(asset_server_t *s, asset__job_t *j) { /* j has its part */
    asset__deps_t *d = j->g->deps;
    j->g->deps = NULL;
    for (size_t i = 0; d && i < d->n && !s->handles_gone; i++) {
        asset_handle_t *h = d->h[i];
        if (h->dep_parent == j) h->dep_parent = NULL;
        /* a dependency nothing else wants stops; a shared one goes on for the others */
        asset__handle_cancel_locked(h, ASSET_E_CANCELLED, "cancelled: its parent was dropped");
    }
    asset__deps_unref(s, d); /* a failed parent's handles may still hold it */
}

void asset__graph_cancel_deps(asset_server_t *s, asset__job_t *j) { /* j has its part */
    /* the handles stay the job's (its parse may hold them): released as the job ends */
    for (size_t i = 0; i < asset__job_ndeps(j) && !s->handles_gone; i++)
        asset__handle_cancel_locked(j->g->deps->h[i], ASSET_E_CANCELLED,
                                    "cancelled: its parent was dropped");
}

/* A search's stack of records (jobs, values): grown on demand, freed by its user. */
typedef struct ptr_stack {
    void **p;
    size_t len, cap;
} ptr_stack_t;

/* False: out of memory (the stack is as it was). */
static bool stack_push(ptr_stack_t *st, const void *x) {
    if (st->len == st->cap) {
        size_t nc = st->cap ? 2 * st->cap : 16;
        void **np = asset_realloc(st->p, nc * sizeof *np);
        if (!np) return false;
        st->p = np;
        st->cap = nc;
    }
    st->p[st->len++] = (void *)(uintptr_t)x; /* the searches' own records */
    return true;
}

/* One side of find_cycle's search: its stack, its mark, the edges it looked at, and
 * where it is. */
typedef struct cycle_side {
    ptr_stack_t st;
    uint64_t mark;
    uint64_t looks;
    asset__job_t *x;         /* the job whose edges it is looking at, or NULL */
    asset__map_node_t *twin; /* forward from twins: the next job of their URI in flight */
    size_t i;                /* forward: x's next dependency */
    asset_handle_t *h;       /* backward: x's next handle */
} cycle_side_t;

/* [lock] Whether a wait on s->awaits can be entered from another thread: a dependency
 * edge leads into the reads and parses its thread runs, a wait for a task's handle into
 * its tasks (another listed wait's, since a task is never a dependency). The tasks are
 * those of its own frames, each asked of the listed waits: it walked every handle that
 * every other listed wait waits for, and each edge whose search met a handle that two
 * tasks' waits for one batch wait for cost twice the batch (2 N^2 looks for a batch of
 * N whose children declare dependencies, a review). */
static bool await_entered(asset_server_t *s, const asset__await_t *w) {
    if (asset__frames_load(w->frames, s)) return true;
    uint64_t looks = 0;
    bool entered = asset__frames_task_awaited(s, w->frames, w, &looks);
    s->flight_visits += looks;
    return entered;
}

/* [lock] Whether a wait on s->awaits that can be entered waits for h itself. */
static bool handle_awaited(asset_server_t *s, const asset_handle_t *h) {
    if (h->decided) return false;
    for (const asset__await_t *a = s->awaits; a; a = a->next) {
        s->flight_visits++;
        if (a->ops->root(a->arg, h) && await_entered(s, a)) return true;
    }
    return false;
}

/* [lock] Whether j runs on a thread whose wait is on s->awaits: j waits for what it does. */
static bool job_awaits(asset_server_t *s, const asset__job_t *j) {
    for (const asset__await_t *a = s->awaits; a; a = a->next)
        if (asset__job_in_frames(a->frames, j)) return true;
    return false;
}

/* Whether y is a twin of own: a job of its asset and loader in flight beside it (a
 * start of find_cycle's forward search from twins). */
static bool is_twin(const asset__job_t *y, const asset__job_t *own) {
    return y != own && y->mapped && y->loader == own->loader && y->g && !strcmp(y->uri, own->uri);
}

/* Is `parent` reachable from `from` (NULL: from any job of own's asset and loader in
 * flight beside own, its twins) through dependencies still in flight? Returns 1
 * with *msg naming the cycle ("dependency cycle: a -> b -> a"), 0 when not, -1 when
 * out of memory (the caller fails the edge: accepting it could hang on a cycle).
 * Two iterative searches take turns, the one that looked at fewer edges next: forward
 * from `from` through what it waits for, backward from `parent` through the jobs
 * waiting for it; they meet on a cycle, and the first to run out says there is none.
 * Forward alone, each parent declaring a dependency whose own were in flight walked
 * all of them: 10,000 props sharing a pack of 10,000 textures still downloading looked
 * at 200 million edges under the lock (2 s), where a prop nothing waits for is done
 * at once backward (a review). Each job is marked by the side that reached it (visit)
 * and points to where it was reached from (visit_from): toward `from` forward, toward
 * `parent` backward.
 * *awaited (may be NULL; set when it returns 0): whether the side that ran out met a
 * wait inside a job (s->awaits), which this search does not follow: forward, a job whose
 * thread waits (a twin too, with no edge of its own yet); backward, a handle such a wait
 * waits for. Else no way through a wait
 * leads from `from` back to `parent` either: a ring that a wait closes enters its
 * thread's jobs on the forward side and leaves through what it waits for on the other. */
static int find_cycle(asset_server_t *s, asset__job_t *parent, asset__job_t *from,
                      const asset__job_t *own, char **msg, bool *awaited) {
    *msg = NULL;
    bool aw = awaited && s->awaits, fw_aw = aw && from && job_awaits(s, from), bw_aw = false;
    if (awaited) *awaited = fw_aw;
    /* the common edge: a leaf (nothing declared yet) reaches nothing, and the search
     * would cost an allocation per dependency */
    if (from && from != parent && asset__job_ndeps(from) == 0) return 0;
    /* from and parent have their parts (dependencies), and so has every job a side
     * marks: forward, one without reaches nothing and is not the parent, so it is
     * skipped; backward, each is a parent waiting for its dependencies */
    cycle_side_t fw = {.mark = ++s->graph_epoch}, bw = {.mark = ++s->graph_epoch};
    asset__job_t *f_end = NULL, *b_start = NULL; /* where the sides met: f_end -> b_start */
    int rc = 0;
    if (from == parent || (!from && is_twin(parent, own))) { /* a job to itself */
        f_end = b_start = parent;
        rc = 1;
    } else {
        parent->g->visit = bw.mark;
        parent->g->visit_from = NULL;
        if (!stack_push(&bw.st, parent)) rc = -1;
        if (from) {
            from->g->visit = fw.mark;
            from->g->visit_from = NULL;
            if (!stack_push(&fw.st, from)) rc = -1;
        } else { /* own's twins, one a turn, as if a job waited for each of them */
            fw.twin = asset__map_get(&s->inflight, own->uri);
        }
    }
    /* an edge a turn: one job's edges at once could be all the work (a pack of 10,000
     * textures, forward, from a prop that nothing waits for, backward) */
    while (rc == 0) {
        bool forward = fw.looks <= bw.looks;
        cycle_side_t *me = forward ? &fw : &bw;
        uint64_t other = forward ? bw.mark : fw.mark;
        asset__job_t *x = me->x, *y = NULL;
        me->looks++;
        if (forward && fw.twin) {                      /* a start of its own (x is NULL) */
            asset__job_t *t = (asset__job_t *)fw.twin; /* the node is the job's first member */
            fw.twin = asset__map_get_next(&s->inflight, fw.twin);
            bool twin = t != own && t->loader == own->loader;
            /* a twin whose thread waits (its parse, with no edge yet): a way out */
            if (twin && aw && !fw_aw) fw_aw = job_awaits(s, t);
            y = twin && t->g ? t : NULL;
        } else if (!x) { /* the next job of this side, or none: nothing closes a cycle */
            if (!me->st.len) {
                if (awaited) *awaited = forward ? fw_aw : bw_aw;
                break;
            }
            me->x = me->st.p[--me->st.len];
            me->i = 0;
            me->h = me->x->handles;
            continue;
        } else if (forward) { /* x waits for y */
            if (me->i == asset__job_ndeps(x)) {
                me->x = NULL;
                continue;
            }
            asset_handle_t *dh = x->g->deps->h[me->i++];
            if (dh->dep_parent != x || !dh->job) continue;
            if (aw && !fw_aw) fw_aw = job_awaits(s, dh->job);
            y = dh->job->g ? dh->job : NULL;
        } else { /* y waits for x */
            if (!me->h) {
                me->x = NULL;
                continue;
            }
            if (aw && !bw_aw) bw_aw = handle_awaited(s, me->h);
            y = me->h->dep_parent;
            me->h = me->h->job_next;
        }
        if (!y || y->g->visit == me->mark) continue;
        if (y->g->visit == other) { /* reached by the other side: they meet */
            f_end = forward ? x : y;
            b_start = forward ? y : x;
            rc = 1;
            break;
        }
        y->g->visit = me->mark;
        y->g->visit_from = x;
        /* backward at a twin forward has not taken up yet: a start of forward's, so they
         * meet. Forward takes the twins up one a turn, and backward running out first
         * ended the search before it reached the one that waits for the parent (a
         * review): the edge closing that cycle was accepted */
        if (!forward && !from && is_twin(y, own)) {
            f_end = NULL;
            b_start = y;
            rc = 1;
            break;
        }
        if (!stack_push(&me->st, y)) rc = -1;
    }
    s->flight_visits += fw.looks + bw.looks;
    asset_free(fw.st.p);
    asset_free(bw.st.p);
    if (rc != 1) return rc;
    /* the cycle: parent -> from -> ... -> f_end -> b_start -> ... -> parent, each side's
     * start pointing nowhere (a job to itself: parent -> parent) */
    if (f_end == parent && b_start == parent) f_end = NULL;
    size_t nf = 0, n = 0, bytes = 32 + strlen(parent->uri);
    for (asset__job_t *x = f_end; x; x = x->g->visit_from) nf++;
    n = nf;
    for (asset__job_t *x = b_start; x; x = x == parent ? NULL : x->g->visit_from) n++;
    char *text = NULL;
    asset__job_t **chain = asset_alloc(n * sizeof *chain);
    if (chain) {
        size_t k = nf;
        for (asset__job_t *x = f_end; x; x = x->g->visit_from) chain[--k] = x; /* from first */
        k = nf;
        for (asset__job_t *x = b_start; x; x = x == parent ? NULL : x->g->visit_from)
            chain[k++] = x;
        for (size_t i = 0; i < n; i++) bytes += strlen(chain[i]->uri) + 4;
        text = asset_alloc(bytes);
    }
    if (!text) {
        asset_free(chain);
        return -1;
    }
    char *w = text;
    w += sprintf(w, "dependency cycle: %s", parent->uri);
    for (size_t i = 0; i < n; i++) w += sprintf(w, " -> %s", chain[i]->uri);
    asset_free(chain);
    *msg = text;
    return 1;
}

static bool deps_push(asset__job_t *j, asset_handle_t *h) {
    asset__job_graph_t *g = graph_of(j);
    if (!g) return false;
    asset__deps_t *d = g->deps;
    size_t n = asset__deps_n(d);
    if (!d || n == d->cap || d->refs > 1) {
        size_t cap = !d ? 4 : n == d->cap ? d->cap * 2 : d->cap;
        size_t bytes = sizeof *d + cap * sizeof d->h[0];
        asset__deps_t *nd;
        if (d && d->refs == 1) { /* the job's alone: grow it */
            if (!(nd = asset_realloc(d, bytes))) return false;
        } else { /* new, or shared with failed parent handles: theirs stays as it is */
            if (!(nd = asset_alloc(bytes))) return false;
            nd->refs = 1;
            nd->n = n;
            nd->uncounted = false;
            for (size_t i = 0; i < n; i++) {
                nd->h[i] = d->h[i];
                nd->h[i]->refs++; /* the copy's own references */
            }
            if (d) d->refs--; /* the job's moves to the copy; the holders keep d */
        }
        nd->cap = cap;
        g->deps = d = nd;
    }
    d->h[d->n++] = h;
    return true;
}

/* Raises the priority of the jobs j waits for, transitively (a raised parent raises
 * its dependencies). Iterative, with the stack threaded through the jobs (no memory to
 * run out of): a chain of 30,000 levels overflowed a 1 MiB stack when it recursed. A
 * job is pushed only as its priority is lowered to prio, so at most once. */
static void raise_deps(asset_server_t *s, asset__job_t *j, int prio) {
    asset__job_t *stack = NULL;
    for (asset__job_t *x = j; x;) {
        for (size_t i = 0; i < asset__job_ndeps(x); i++) {
            asset_handle_t *dh = x->g->deps->h[i];
            asset__job_t *d = dh->job;
            /* the parent's handle on it too: a later set_priority recomputes the job's
             * priority from its handles and must not undo the raise */
            if (dh->priority > prio) asset__handle_set_prio(dh, prio);
            if (d && d->priority > prio) {
                d->priority = prio;
                /* no memory to move it: it keeps its priority, and what it waits for
                 * theirs (pushed only once raised: never twice on the stack) */
                if (asset__heap_update(s, d) && asset__job_ndeps(d)) {
                    d->g->raise_next = stack;
                    stack = d;
                }
            }
        }
        x = stack;
        if (stack) stack = stack->g->raise_next;
    }
}

void asset__graph_raise(asset_server_t *s, asset__job_t *j, int prio) { raise_deps(s, j, prio); }

/* [lock] asset__graph_waits_here's step to y (a job x waits for): true when y runs here;
 * else y is pushed to be walked when it waits for anything: its dependencies (once per
 * mark), or, running, what the waits of its thread wait for (their records are marked
 * instead: a job running elsewhere may have no graph part). */
static bool waits_step(asset_server_t *s, ptr_stack_t *st, asset__job_t *y, const asset__job_t *to,
                       uint64_t mark, bool *room) {
    if (!y) return false;
    if (to ? y == to : asset__job_running_here(y)) return true;
    if (asset__job_ndeps(y)) {
        if (y->g->visit == mark) return false; /* walked by this wait: reaches none */
        y->g->visit = mark;
    } else if (!s->awaits || y->state != ASSET__JOB_RUNNING) {
        return false; /* waits for nothing (not yet) */
    }
    *room = stack_push(st, y);
    return false;
}

/* [lock] The walk of asset__graph_waits_here from t: 1 when it reaches `to` (NULL: a job
 * this thread runs), 0 when not, -1 out of memory part way. *looks: the jobs it walked. */
static int waits_reach(asset_server_t *s, asset__job_t *t, const asset__job_t *to, uint64_t *mark,
                       uint64_t *looks) {
    if (!*mark) *mark = ++s->graph_epoch;
    ptr_stack_t st = {0};
    bool room = true, found = waits_step(s, &st, t, to, *mark, &room);
    while (room && st.len && !found) {
        asset__job_t *x = st.p[--st.len];
        ++*looks;
        for (size_t i = 0; i < asset__job_ndeps(x) && !found && room; i++) {
            asset_handle_t *dh = x->g->deps->h[i];
            if (dh->dep_parent == x) found = waits_step(s, &st, dh->job, to, *mark, &room);
        }
        if (x->state != ASSET__JOB_RUNNING) continue;
        for (asset__await_t *a = s->awaits; a && !found && room; a = a->next) {
            if (a->visit == *mark || !asset__job_in_frames(a->frames, x)) continue;
            a->visit = *mark; /* x waits for what a waits for (a job of its frames) */
            asset_handle_t *h;
            for (size_t i = 0; !found && room && a->ops->nth(a->arg, i, &h); i++)
                if (h && !h->decided) found = waits_step(s, &st, h->job, to, *mark, &room);
        }
    }
    asset_free(st.p);
    return found ? 1 : room ? 0 : -1;
}

/* A parse (or a read) that waits for its parent, at any depth, or a label of it: the
 * parent is decided only once that parse returns, so the wait slept until its timeout,
 * for ever with -1, holding the worker (a review). So did two parses on two workers each
 * waiting for the other's asset (a review): forward from t through the edges still
 * pending, as find_cycle's forward side, and from a job running on another thread
 * through what the waits there wait for (s->awaits), each job and wait once per mark. */
int asset__graph_waits_here(asset_server_t *s, asset__job_t *t, uint64_t *mark) {
    if (!t) return 0;
    if (asset__job_running_here(t)) return 1;
    /* this thread runs only tasks: a task polling a big graph's load walked it at each
     * call, and no dependency leads to a task: only a wait for its handle, so it looks
     * only while a listed wait waits for one of its tasks (else it slept until its
     * timeout, closing a ring second: a review) */
    uint64_t looks = 0;
    if (!asset__job_loads_here(s) &&
        !asset__frames_task_awaited(s, asset__job_frames(), NULL, &looks))
        return 0;
    return waits_reach(s, t, NULL, mark, &looks);
}

/* [lock] For an edge parent -> from that find_cycle let through but whose search met a
 * wait inside a job (its *awaited): whether from reaches parent through the edges
 * pending and the waits of s->awaits, as a wait's look does. a's parse waiting for b,
 * then b's parse depending on a: no dependency edge closed that ring, and a's wait slept
 * until its timeout, for ever with -1, holding the worker (a review). 1 with *msg set,
 * 0, -1 out of memory (the edge fails, as find_cycle's). Forward alone: only while such a
 * wait waits, at any depth, for the parent, or a job the dependency reaches waits.
 * from NULL: from own's twins instead (a no_cache edge's new job reaches nothing; twin_cycle
 * met the wait), one search for them all (one mark). b's no_cache edge on a, whose parse
 * waited for b, was let through: a second a was read and parsed, and with a's wait a
 * no_cache load too, each turn made a new job of each (256 parses, a review). */
static int await_cycle(asset_server_t *s, asset__job_t *parent, asset__job_t *from,
                       const asset__job_t *own, char **msg) {
    uint64_t mark = 0, looks = 0;
    int found = 0;
    if (from) {
        found = waits_reach(s, from, parent, &mark, &looks);
    } else { /* the node is the job's first member */
        for (asset__map_node_t *n = asset__map_get(&s->inflight, own->uri); n && !found;
             n = asset__map_get_next(&s->inflight, n)) {
            asset__job_t *t = (asset__job_t *)n;
            looks++;
            if (t != own && t->loader == own->loader)
                found = waits_reach(s, t, parent, &mark, &looks);
        }
    }
    s->flight_visits += looks;
    if (found <= 0) return found;
    *msg = asset__asprintf("dependency cycle: %s -> %s -> ... -> %s (through a wait inside a job)",
                           parent->uri, from ? from->uri : own->uri, parent->uri);
    return *msg ? 1 : -1;
}

/* ---- run-on-wait's walk (asset__walk_t) ---- */

void asset__walk_init(asset_server_t *s, asset__walk_t *w) {
    w->next_root = w->len = 0;
    w->mark = ++s->graph_epoch;
    w->held = false;
    w->st = w->in;
    w->cap = sizeof w->in / sizeof w->in[0];
}

void asset__walk_reset(asset_server_t *s, asset__walk_t *w) {
    while (w->len) {
        asset_handle_t *h = w->st[--w->len].h;
        h->refs--;
        asset__handle_maybe_free(h);
    }
    if (w->st != w->in) asset_free(w->st);
    asset__walk_init(s, w);
}

static bool walk_push(asset__walk_t *w, asset_handle_t *h) {
    if (w->len == w->cap) {
        asset__walk_frame_t *st = asset__grow_from(w->st, w->in, &w->cap, sizeof *st, 0);
        if (!st) return false;
        w->st = st;
    }
    h->refs++; /* a failed parent may let go of it meanwhile */
    w->st[w->len++] = (asset__walk_frame_t){h, 0};
    return true;
}

/* A job to run, or one with dependencies this walk has not gone through. */
static bool walk_wants(const asset__walk_t *w, const asset__job_t *d) {
    return d &&
           (asset__job_runnable_here(d) || (asset__job_ndeps(d) && d->g->wait_mark != w->mark));
}

bool asset__walk_enter(asset_server_t *s, asset__walk_t *w, asset_handle_t *h) {
    s->wait_visits++;
    return !walk_wants(w, h->job) || walk_push(w, h);
}

bool asset__walk_hold(asset_server_t *s, asset__walk_t *w, asset_handle_t *h) {
    s->wait_visits++;
    w->held = true;
    return !h->job || walk_push(w, h);
}

asset__job_t *asset__walk_next(asset_server_t *s, asset__walk_t *w) {
    asset__job_t *found = NULL;
    uint64_t looks = 0; /* the tests' count (s->wait_visits), added once: no store a step */
    while (w->len && !found) {
        asset__walk_frame_t *f = &w->st[w->len - 1];
        asset__job_t *x = f->h->job;
        looks++;
        if (asset__job_runnable_here(x)) {
            found = x;
        } else if (x && f->i < asset__job_ndeps(x)) {
            x->g->wait_mark = w->mark; /* walked by this one: not entered again */
            asset_handle_t *dh = x->g->deps->h[f->i++];
            if (walk_wants(w, dh->job)) (void)walk_push(w, dh); /* no memory: not below */
        } else if (w->len == 1 && w->held && x) {
            break;
        } else {
            asset_handle_t *h = w->st[--w->len].h;
            h->refs--;
            asset__handle_maybe_free(h);
        }
    }
    s->wait_visits += looks;
    return found;
}

bool asset__walk_owns(asset_server_t *s, const asset__walk_t *w, asset__job_t *q,
                      bool (*root)(void *arg, const asset_handle_t *o), void *arg) {
    uint64_t up = 0, looks = 0; /* looks: as asset__walk_next's */
    bool owns = false;
    asset__job_t *stack = NULL; /* threaded through owns_next */
    for (asset__job_t *x = q; x && !owns;) {
        for (const asset_handle_t *o = x->handles; o && !owns; o = o->job_next) {
            looks++;
            asset__job_t *p = o->dep_parent; /* a parent: it has its part */
            owns = root(arg, o) || (p && p->g->wait_mark == w->mark);
            /* marked by another walk since this one's, perhaps: above it, this one's */
            if (owns || !p || !p->g->wait_mark) continue;
            if (!up) up = ++s->graph_epoch;
            if (p->g->owns_mark == up) continue;
            p->g->owns_mark = up;
            p->g->owns_next = stack;
            stack = p;
        }
        x = stack;
        if (stack) stack = stack->g->owns_next;
    }
    s->wait_visits += looks;
    return owns;
}

/* What asset_parse_depend's hook needs: the parent's job, whether the dependency takes
 * its priority, and whether the edge could not be recorded (the handle is gone). */
typedef struct dep_edge {
    asset__job_t *parent;
    bool inherit, dropped;
    bool no_cache; /* the dependency's load: it joins no job of its asset whose read began */
} dep_edge_t;

/* [lock] Whether the edge j -> from, from decided already with its value (a cache hit),
 * closes a cycle of values: from's value, or one it depends on through values, names
 * j's URI. A reload of one asset of a pair made such a pair hold each other, so that
 * neither was ever freed before destroy (a review); only jobs in flight were searched.
 * 1 with *msg set, 0, or -1 when out of memory (the edge fails: accepting it could
 * leak). Iterative; each value once per parent (j has its part): what a search from
 * another of j's dependencies walked whole reaches nothing named j's URI (a search that
 * found one, or ran out of memory, drops the marks), and
 * is not walked again (200 prefabs on one palette of 200 textures walked the palette
 * once each: 40,200 looks under the lock for one reload of their level). */
/* [lock] Whether w's label named as dh's is dh's value. */
static bool label_of(asset_server_t *s, const asset__value_t *w, const asset_handle_t *dh) {
    asset__value_extra_t *x = asset__value_x(w);
    size_t n = asset__value_nlabels(w);
    if (!x || !n) return false;
    size_t i = asset__labels_find(s, x->labels, n, &x->label_ix, dh->label);
    return i < n && x->labels[i].value == dh->value;
}

/* [lock] The whole value of the label dh holds, alive (cached, or a whole handle's), or
 * NULL: a label's own value holds no dependencies while its whole value lives (that
 * one does; asset__dependents_leave gives it a copy when it goes). *memo: the last
 * base looked for among the handles (a label handle), and *memo_w what it found: the
 * labels of one atlas are looked for once, not each among all of its handles. */
static const asset__value_t *label_whole(asset_server_t *s, const asset_handle_t *dh,
                                         const asset_handle_t **memo,
                                         const asset__value_t **memo_w) {
    const char *uri = asset__handle_uri(dh);
    size_t bl = strcspn(uri, "#");
    const asset__value_t *w = asset__cache_peek_n(&dh->loader->cache, uri, bl);
    if (w && label_of(s, w, dh)) return w;
    if (*memo && (*memo)->loader == dh->loader && !strncmp(asset__handle_uri(*memo), uri, bl + 1))
        return *memo_w && label_of(s, *memo_w, dh) ? *memo_w : NULL;
    *memo = dh;
    *memo_w = NULL;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, uri, bl);
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));) {
        if (h->label || h->loader != dh->loader || h->refs <= 0) continue;
        if (h->value && label_of(s, h->value, dh)) return *memo_w = h->value;
        if (h->reload_pending && h->reload_value && label_of(s, h->reload_value, dh))
            return *memo_w = h->reload_value;
    }
    return NULL;
}

static int value_cycle(asset_server_t *s, const asset__job_t *j, const asset_handle_t *from,
                       char **msg) {
    *msg = NULL;
    size_t bl = strlen(j->uri);
    /* j's asset is its URI through its loader: its own file through another loader (a
     * level's raw bytes) is another asset, and no cycle (a review) */
    const char *hit =
        from->loader == j->loader && asset__uri_names(asset__handle_uri(from), j->uri, bl)
            ? asset__handle_uri(from)
            : NULL;
    /* the common edges: a dependency without any of its own, and a parent that no value
     * depends on (a first load: no value can name it, so none is walked) */
    const asset_handle_t *memo = NULL;
    const asset__value_t *memo_w = NULL, *fv = from->value;
    /* a label's value (p.g#a) holds no dependencies while its whole value lives, which
     * does: the search stopped there, and a cycle through it was found late, at the
     * next parse of the other side, or never (each reloaded the other, a review) */
    if (!hit && fv && from->label && !asset__value_ndeps(fv))
        fv = label_whole(s, from, &memo, &memo_w);
    if (!hit && (!fv || !asset__value_ndeps(fv) || !asset__dependents_any(s, j->uri))) return 0;
    if (!j->g->cycle_mark) j->g->cycle_mark = ++s->graph_epoch;
    uint64_t mark = j->g->cycle_mark;
    if (!hit && asset__value_x(fv)->visit == mark) return 0;
    ptr_stack_t st = {0};
    if (!hit && !stack_push(&st, fv)) return -1;
    while (st.len && !hit) {
        const asset__value_t *v = st.p[--st.len];
        asset__value_extra_t *x = asset__value_x(v);
        if (x->visit == mark) continue;
        x->visit = mark;
        for (size_t i = 0; i < asset__value_ndeps(v) && !hit; i++) {
            const asset_handle_t *dh = x->deps->h[i];
            s->cycle_visits++;
            /* one that failed (optional) holds no value: no cycle of references runs
             * through it, whatever it names (it named j's URI when it was the edge that
             * closed a cycle in flight, and failed for it: j failed too, a review) */
            if (!asset__dep_loaded(dh)) continue;
            if (dh->loader == j->loader && asset__uri_names(asset__handle_uri(dh), j->uri, bl)) {
                hit = asset__handle_uri(dh);
                break;
            }
            const asset__value_t *dv = dh->value;
            if (dh->label && !asset__value_ndeps(dv) && !(dv = label_whole(s, dh, &memo, &memo_w)))
                continue;
            if (!asset__value_ndeps(dv)) continue;
            if (!stack_push(&st, dv)) {
                asset_free(st.p);
                j->g->cycle_mark = 0; /* as below: what it marked was not all walked */
                return -1;
            }
        }
    }
    asset_free(st.p);
    if (!hit) return 0;
    /* a search that stopped at the cycle left values marked that it did not walk whole
     * (the one it found the cycle through, too): an optional edge fails alone and j goes
     * on, and the next edge's search, skipping them, missed a cycle through that same
     * value (a review): the next search of j starts afresh */
    j->g->cycle_mark = 0;
    *msg = asset__asprintf("dependency cycle: %s -> %s%s%s", j->uri, asset__handle_uri(from),
                           hit == asset__handle_uri(from) ? "" : " -> ... -> ",
                           hit == asset__handle_uri(from) ? "" : hit);
    return 1;
}

/* [lock] For a no_cache dependency, which joins no job of its asset whose read began:
 * whether a job of the same asset and loader in flight beside its own (twin) reaches j,
 * as find_cycle. Its own job is new, so the search from it finds nothing, and its parse
 * would declare the same edges again: a cycle through no_cache dependencies made a new
 * job at each turn, for ever (a review: 57,000 parses in 10 s, memory growing). One
 * search from all of them: a search from each cost the square of the twins, which stay
 * in flight while what they depend on does (a review). */
static int twin_cycle(asset_server_t *s, asset__job_t *j, const asset__job_t *own, char **msg,
                      bool *awaited) {
    return find_cycle(s, j, NULL, own, msg, awaited);
}

/* [lock] asset_parse_depend's load hook: the edge is made in the critical section that
 * makes the dependency's handle, so a dependency costs one lock round trip. Before the
 * handle is dispatched it takes the parent's priority (read here, under the lock: it
 * may be raised while the parse runs; nothing decided or attached yet) ... */
static void dep_before(asset_server_t *s, asset_handle_t *h, void *arg) {
    (void)s;
    dep_edge_t *d = arg;
    h->dep = ASSET__DEP_EDGE;
    h->dep_prio = d->inherit ? 0 : (uint8_t)h->priority;
    if (d->inherit) asset__handle_set_prio(h, d->parent->priority); /* not attached yet */
}

/* ... once dispatched it becomes the edge. */
static void dep_linked(asset_server_t *s, asset_handle_t *h, void *arg) {
    dep_edge_t *d = arg;
    asset__job_t *j = d->parent;
    if (!deps_push(j, h)) {
        asset__handle_cancel_locked(h, ASSET_E_NO_MEMORY, "out of memory");
        h->refs--;
        asset__handle_maybe_free(h);
        d->dropped = true;
    } else if (!h->decided) {
        h->dep_parent = j;
        j->g->deps_pending++;
        char *cycle = NULL;
        bool awaited = false, twins_awaited = false;
        int found = h->job ? find_cycle(s, j, h->job, NULL, &cycle, &awaited) : 0;
        if (!found && h->job && d->no_cache)
            found = twin_cycle(s, j, h->job, &cycle, &twins_awaited);
        if (!found && awaited) found = await_cycle(s, j, h->job, NULL, &cycle);
        if (!found && twins_awaited) found = await_cycle(s, j, NULL, h->job, &cycle);
        if (found > 0) /* fails this edge; the failure travels up the chain */
            asset__handle_cancel_locked(h, ASSET_E_DEPENDENCY, cycle);
        else if (found < 0)
            asset__handle_cancel_locked(h, ASSET_E_NO_MEMORY,
                                        "out of memory looking for a dependency cycle");
        /* declared by a parse whose load was cancelled: it stops at once, as the ones
         * declared before did (asset__graph_cancel_deps), unless something else wants it */
        else if (atomic_load_explicit(&j->cancelled, memory_order_acquire))
            asset__handle_cancel_locked(h, ASSET_E_CANCELLED, "cancelled: its parent was dropped");
        asset_free(cycle);
        /* a thread waiting for j's handle runs its queued dependencies (run-on-wait,
         * handle.c): told, as a requeued parse tells it. Asleep since its walk found
         * nothing to run, it slept on while the only worker was held (a review) */
        if (s->waiters && h->job && h->job->state == ASSET__JOB_QUEUED)
            uv_cond_broadcast(&s->done_cond);
    } else { /* decided already (a cache hit, a bad URI): counted now */
        h->dep = ASSET__DEP_COUNTED;
        dep_cycle_check(s, j, h);
        if (h->status != ASSET_OK && !h->optional) dep_failed(j, h);
    }
    asset__graph_drain(s);
}
static const asset__load_hook_t dep_hook = {dep_before, dep_linked};

asset_handle_t *asset_parse_depend(asset_parse_t *p, const char *uri,
                                   const asset_load_options_t *o) {
    if (!p || !uri) return NULL;
    asset__job_t *j = p->req->job;
    asset_server_t *s = p->req->server;
    char *abs = asset__uri_resolve(asset__request_base(p->req), uri);
    if (!abs) return NULL;
    dep_edge_t d = {.parent = j, .inherit = !o || !o->priority, .no_cache = o && o->no_cache};
    asset_handle_t *h = asset__load_hooked(s, abs, o, NULL, false, false, 0, &dep_hook, &d);
    asset_free(abs);
    p->depended = true; /* even when h is NULL: j may hold other dependencies */
    return d.dropped ? NULL : h;
}

size_t asset_parse_depend_many(asset_parse_t *p, const char *const *uris, size_t n,
                               const asset_load_options_t *o, asset_handle_t **out) {
    if (out)
        for (size_t i = 0; i < n; i++) out[i] = NULL;
    if (!p || (n && !uris)) return 0;
    asset__job_t *j = p->req->job;
    asset_server_t *s = p->req->server;
    p->depended = true; /* even when nothing is made: j may hold other dependencies */
    size_t got = 0;
    for (size_t i = 0; i < n;) {
        /* a slice: the next ASSET__LOAD_SLICE URIs resolved (a NULL one is skipped, and
         * one that cannot be resolved for want of memory is left NULL) */
        char *abs[ASSET__LOAD_SLICE];
        size_t idx[ASSET__LOAD_SLICE];
        dep_edge_t d[ASSET__LOAD_SLICE];
        void *args[ASSET__LOAD_SLICE];
        size_t k = 0;
        for (; i < n && k < ASSET__LOAD_SLICE; i++) {
            if (!uris[i] || !(abs[k] = asset__uri_resolve(asset__request_base(p->req), uris[i])))
                continue;
            idx[k] = i;
            d[k] = (dep_edge_t){
                .parent = j, .inherit = !o || !o->priority, .no_cache = o && o->no_cache};
            args[k] = &d[k];
            k++;
        }
        /* out of memory part way: the rest of the slice is tried again at once; a call
         * that makes none gives the rest of the slice up (left NULL), as n single calls
         * would each fail on their own */
        asset_handle_t *h[ASSET__LOAD_SLICE];
        size_t made = 0;
        while (made < k) {
            size_t m = asset__load_many(s, (const char *const *)abs + made, k - made, o, &dep_hook,
                                        args + made, h + made);
            if (!m) break;
            made += m;
        }
        for (size_t m = 0; m < k; m++) asset_free(abs[m]);
        for (size_t m = 0; m < made; m++)
            if (!d[m].dropped) { /* else its edge could not be recorded: the handle is gone */
                got++;
                if (out) out[idx[m]] = h[m];
            }
    }
    return got;
}

/* ---- handles ---- */

/* [lock] Adds j's bytes and its dependencies', eight levels deep. Each job with
 * dependencies is walked once per call (mark), again only when reached at a shallower
 * depth (at most 8 times), and its own bytes counted once: walked once per path, levels
 * sharing their dependencies (8 levels of 5, each depending on all 5 below) cost 5^8
 * looks per call under the lock. */
static void job_bytes(asset_server_t *s, const asset__job_t *j, unsigned depth, uint64_t mark,
                      uint64_t *got, uint64_t *total) {
    s->progress_visits++;
    asset__job_graph_t *g = j->g;
    bool seen = g && g->visit == mark;
    if (seen && g->progress_depth <= depth) return;
    if (g) {
        g->visit = mark;
        g->progress_depth = (uint8_t)depth;
    }
    if (!seen) {
        *total += atomic_load_explicit(&((asset__job_t *)j)->total, memory_order_relaxed);
        *got += atomic_load_explicit(&((asset__job_t *)j)->received, memory_order_relaxed);
    }
    if (depth >= 8) return;
    for (size_t i = 0; i < asset__job_ndeps(j); i++) {
        const asset_handle_t *d = g->deps->h[i];
        if (d->job)
            job_bytes(s, d->job, depth + 1, mark, got, total);
        else if (d->decided && !seen) {
            *got += d->bytes;
            *total += d->bytes;
        }
    }
}

void asset__handle_progress_bytes(const asset_handle_t *h, uint64_t *got, uint64_t *total) {
    *got = *total = 0;
    asset_server_t *s = h->server;
    if (h->job) job_bytes(s, h->job, 0, ++s->graph_epoch, got, total);
}

static asset_handle_t *const *handle_deps(const asset_handle_t *h, size_t *n) {
    const asset__deps_t *d = NULL;
    if (h->label)
        d = NULL;
    else if (h->decided && h->value)
        d = h->value->has_x ? asset__value_x(h->value)->deps : NULL;
    else if (h->kept_deps) /* failed or cancelled: what it had */
        d = h->kept_deps;
    else if (h->job && h->job->g)
        d = h->job->g->deps;
    *n = asset__deps_n(d);
    return *n ? d->h : NULL;
}

size_t asset_handle_dependency_count(const asset_handle_t *h) {
    if (!h) return 0;
    asset_server_t *s = h->server;
    size_t n;
    uv_mutex_lock(&s->lock);
    handle_deps(h, &n);
    uv_mutex_unlock(&s->lock);
    return n;
}

/* h's dependency i (NULL: out of range), read under the lock, and with retain a new
 * reference taken in that critical section: a reload's flush may free it next */
static asset_handle_t *dependency_at(const asset_handle_t *h, size_t i, bool retain) {
    if (!h) return NULL;
    asset_server_t *s = h->server;
    size_t n;
    uv_mutex_lock(&s->lock);
    asset_handle_t *const *d = handle_deps(h, &n);
    asset_handle_t *r = i < n ? d[i] : NULL;
    if (r && retain) r->refs++;
    uv_mutex_unlock(&s->lock);
    return r;
}

asset_handle_t *asset_handle_dependency(const asset_handle_t *h, size_t i) {
    return dependency_at(h, i, false);
}

asset_handle_t *asset_handle_dependency_retain(const asset_handle_t *h, size_t i) {
    return dependency_at(h, i, true);
}

/* ---- values freed by the flush thread ---- */

bool asset__values_drain(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    /* what is queued from here on is freed here or wakes the host: a wake for values
     * this flush frees would be an empty flush */
    atomic_exchange(&s->dead_wake, false); /* ordered before the list is taken */
    /* what a budget left last time first: it was pushed back on dead_values, whose end
     * the push walked to, n^2/2 looks for n values freed one a flush (a review) */
    asset__value_t *v = atomic_exchange_explicit(&s->values_left, NULL, memory_order_acquire);
    while (v || (v = atomic_exchange_explicit(&s->dead_values, NULL, memory_order_acquire))) {
        while (v) {
            asset__value_extra_t *x = asset__value_x(v); /* queued values have the extra part */
            asset__value_t *next = x->dead_next;
            if (x->deps) {
                if (!s->handles_gone) uv_mutex_lock(&s->lock);
                s->dep_values--;
                asset__dependents_leave(s, x); /* its labels held alone take a copy */
                asset__deps_unref(s, x->deps);
                if (!s->handles_gone) uv_mutex_unlock(&s->lock);
                x->deps = NULL;
            }
            atomic_fetch_add_explicit(&s->drain_visits, 1, memory_order_relaxed);
            asset__value_free_now(v); /* may queue labeled values: the outer loop */
            v = next;
            /* a budget stops it after one value at least (so values never starve):
             * a cleared cache of GPU objects can take longer than a frame to free */
            if (!budget_ns || asset__now_ns() - start_ns < budget_ns) continue;
            /* spent: the rest is the next flush's, unless another thread's flush left its
             * own rest there meanwhile (two threads flushing): then this one frees on. A
             * plain pointer lost one rest, whose values were never freed (a review) */
            asset__value_t *none = NULL;
            if (v && !atomic_compare_exchange_strong_explicit(
                         &s->values_left, &none, v, memory_order_release, memory_order_relaxed))
                continue;
            if (v || atomic_load_explicit(&s->dead_values, memory_order_relaxed)) return true;
        }
    }
    return false;
}

void asset__graph_free_all(asset_server_t *s) {
    s->handles_gone = true; /* destroy frees every handle next: touch none */
    while (s->fin_head) {
        asset__job_t *j = s->fin_head;
        s->fin_head = j->g->fin_next;
        asset__job_drop(s, j);
    }
    s->fin_tail = NULL;
    for (;;) {
        size_t b = 0;
        asset__map_node_t *n = asset__map_next(&s->inflight, NULL, &b);
        if (!n) break;
        asset__job_drop(s, (asset__job_t *)n);
    }
}
