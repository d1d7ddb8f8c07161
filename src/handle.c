/* handle.c - handles: their state machine, the completion queue, flush, wait,
 * cancel, callbacks and per-load timeouts. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static bool state_terminal(int st) { return st >= ASSET_STATE_LOADED; }

/* A block of handles made together (a slice of a group's cache hits): one allocation
 * instead of one per handle. The header is HANDLE_ALIGN bytes, so the handles after it
 * keep the block's alignment. */
#define HANDLE_ALIGN ((size_t)16) /* malloc's on 64-bit targets, and enough for a handle */
typedef struct asset__handle_slab {
    union {
        struct {
            atomic_uint live; /* handles not freed yet (a slice's at most): the last one
                                 frees the block */
            size_t size;      /* of the block, header included */
        } u;
        char align[HANDLE_ALIGN];
    };
} asset__handle_slab_t;

/* Under ASan a handle freed inside its block is poisoned until the block goes, so a use
 * after free is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define HANDLE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HANDLE_ASAN 1
#endif
#endif
#ifdef HANDLE_ASAN
#include <sanitizer/asan_interface.h>
#define HANDLE_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define HANDLE_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define HANDLE_POISON(p, n) ((void)(p), (void)(n))
#define HANDLE_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

_Static_assert(sizeof(asset__handle_slab_t) == HANDLE_ALIGN, "the slab header keeps alignment");
#define HANDLE_ROUND(n) (((n) + HANDLE_ALIGN - 1) & ~(size_t)(HANDLE_ALIGN - 1))

/* A handle's place in a slab: the pointer to the slab's header (at the end of SLOT_PRE
 * bytes, which keep the handle aligned), the handle, then its URI and tag. The pointer is
 * found from the handle alone: a free needs no strlen of the URI and the tag. ut: the
 * URI's and the tag's bytes, NULs included. */
#define SLOT_PRE                                                                                  \
    ((sizeof(asset__handle_slab_t *) + _Alignof(asset_handle_t) - 1) / _Alignof(asset_handle_t) * \
     _Alignof(asset_handle_t))
_Static_assert(HANDLE_ALIGN % _Alignof(asset_handle_t) == 0, "a slot keeps a handle aligned");
static size_t slot_size(size_t ut) { return HANDLE_ROUND(SLOT_PRE + sizeof(asset_handle_t) + ut); }
static asset__handle_slab_t **slot_owner(asset_handle_t *h) {
    return (asset__handle_slab_t **)(void *)((char *)h - sizeof(asset__handle_slab_t *));
}

static void handle_init(asset_handle_t *h, asset_server_t *s, const char *uri, size_t ul,
                        const char *tag, size_t tl, const asset_load_options_t *o) {
    asset__zero(h, sizeof *h);
    char *w = (char *)(h + 1);
    memcpy(w, uri, ul);
    if (tl == 1) /* no tag, as most loads: a byte, not a call (30 instructions a handle) */
        w[ul] = 0;
    else
        memcpy(w + ul, tag, tl);
    h->server = s;
    h->refs = 1;
    atomic_init(&h->state, ASSET_STATE_PENDING);
    h->timer_idx = ASSET__NO_TIMER;
    int prio = o ? (int)o->priority : 0;
    h->priority =
        (int8_t)((prio < ASSET_PRIORITY_HIGH || prio > ASSET_PRIORITY_LOW) ? ASSET_PRIORITY_NORMAL
                                                                           : prio);
    h->magic = ASSET__HANDLE_MAGIC;
}

asset_handle_t *asset__handle_new(asset_server_t *s, const char *uri,
                                  const asset_load_options_t *o) {
    /* one block: the handle, then its URI and its tag ("" for none: a load allocates
     * less, and the handle needs no pointers to them) */
    if (!uri) uri = "";
    const char *tag = o && o->tag ? o->tag : "";
    size_t ul = strlen(uri) + 1, tl = strlen(tag) + 1;
    asset_handle_t *h = asset_alloc(sizeof *h + ul + tl);
    if (h) handle_init(h, s, uri, ul, tag, tl, o);
    return h;
}

size_t asset__handle_new_many(asset_server_t *s, const char *const *uris, const size_t *lens,
                              size_t n, const asset_load_options_t *o, asset_handle_t **out) {
    const char *tag = o && o->tag ? o->tag : "";
    size_t tl = strlen(tag) + 1;
    size_t ul[ASSET__LOAD_SLICE];
    asset__handle_slab_t *slab = NULL;
    size_t total = sizeof *slab;
    if (n > 1 && n <= ASSET__LOAD_SLICE) {
        for (size_t i = 0; i < n; i++) {
            ul[i] = lens[i] + 1;
            total += slot_size(ul[i] + tl);
        }
        slab = asset_alloc(total);
    }
    if (!slab) { /* one each */
        for (size_t i = 0; i < n; i++)
            if (!(out[i] = asset__handle_new(s, uris[i], o))) return i;
        return n;
    }
    atomic_init(&slab->u.live, (unsigned)n);
    slab->u.size = total;
    char *w = (char *)(slab + 1);
    for (size_t i = 0; i < n; i++) {
        asset_handle_t *h = out[i] = (asset_handle_t *)(void *)(w + SLOT_PRE);
        handle_init(h, s, uris[i], ul[i], tag, tl, o);
        h->in_slab = true;
        *slot_owner(h) = slab;
        w += slot_size(ul[i] + tl);
    }
    return n;
}

void asset__handle_discard(asset_handle_t *h) {
    if (!h) return;
    h->magic = ASSET__HANDLE_DEAD; /* a later release of it can be recognised (debug) */
    if (!h->in_slab) {
        asset_free(h);
        return;
    }
    asset__handle_slab_t *slab = *slot_owner(h);
#ifdef HANDLE_ASAN
    const char *uri = asset__handle_uri(h), *tag = uri + strlen(uri) + 1;
    size_t ut = (size_t)(tag - uri) + strlen(tag) + 1;
    HANDLE_POISON((char *)h - SLOT_PRE, slot_size(ut));
#endif
    if (atomic_fetch_sub_explicit(&slab->u.live, 1, memory_order_acq_rel) == 1) {
        HANDLE_UNPOISON(slab, slab->u.size); /* as the allocator gave it */
        asset_free(slab);
    }
}

void asset__handle_link(asset_server_t *s, asset_handle_t *h) {
    h->all_next = s->all;
    if (s->all) s->all->all_prev = h;
    s->all = h;
    if (!s->all_tail) s->all_tail = h;
    if (s->uri_index_on) asset__uri_index_add(s, h);
}

/* [lock] Appends h to the completion queue; returns whether the queue was empty. */
static bool queue_append(asset_server_t *s, asset_handle_t *h) {
    h->queue_next = NULL;
    if (s->q_tail)
        s->q_tail->queue_next = h;
    else
        s->q_head = h;
    s->q_tail = h;
    return s->q_len++ == 0;
}

void asset__queue_push(asset_server_t *s, asset_handle_t *h) {
    if (h->queued) return;
    h->queued = true;
    bool first = queue_append(s, h);
    if (first && !s->stopping) atomic_store(&s->wake_pending, true);
    /* a waiter that flushes only once ready() (asset__wait) hears of the first result
     * only: it then delivers what is queued at least every LAZY_FLUSH_NS */
    if (s->waiters > s->lazy_waiters || (first && s->lazy_waiters))
        uv_cond_broadcast(&s->done_cond);
}

/* [lock] h fails or is cancelled: it keeps the dependencies it may have lent out
 * (asset_handle_dependency) for as long as it lives, whatever becomes of d's other
 * holders. Not a dependency itself: those stay one level deep, so no cycle forms. */
static void keep_deps(asset_handle_t *h, asset__deps_t *d) {
    if (!d || h->kept_deps || h->dep != ASSET__DEP_NONE) return;
    d->refs++;
    h->kept_deps = d;
}

void asset__handle_decide(asset_handle_t *h, asset_status_t st, const char *msg, asset__value_t *v,
                          int http_status) {
    asset__handle_decide_told(h, st, msg, v, http_status, NULL);
}

void asset__handle_decide_told(asset_handle_t *h, asset_status_t st, const char *msg,
                               asset__value_t *v, int http_status, const char **told) {
    asset_server_t *s = h->server;
    if (h->decided) { /* a job never keeps a decided handle: finishing loops must end */
        if (h->job) asset__job_detach(h->job, h);
        return;
    }
    if (h->job) {
        h->bytes = atomic_load_explicit(&h->job->received, memory_order_relaxed);
        h->trace_id = h->job->trace_id;
        if (st != ASSET_OK) keep_deps(h, h->job->g ? h->job->g->deps : NULL);
        asset__job_detach(h->job, h);
    }
    if (h->timer_idx != ASSET__NO_TIMER) asset__timer_remove(s, h);
    h->decided = true;
    if (h->batch) asset__batch_child_decided(s, h);
    if (h->waited && s->lazy_waiters) uv_cond_broadcast(&s->done_cond); /* it is ready */
    h->status = st;
    /* three digits from the sources; anything else is no status (16 bits here) */
    h->http_status = (int16_t)(http_status >= 0 && http_status <= 999 ? http_status : 0);
    if (st != ASSET_OK) {
        h->message = msg ? asset__strdup(msg)
                         : asset__asprintf("%s: %s", asset__handle_uri(h), asset_strerror(st));
        /* a dependency failure without its message would name no reason at all */
        if (!h->message && st == ASSET_E_DEPENDENCY) h->status = ASSET_E_NO_MEMORY;
        /* reload.c logs its own; the handles sharing one failure, once (a review: an
         * atlas that failed logged its message again for each label handle) */
        const char *line = h->message ? h->message : asset__handle_uri(h);
        if (st != ASSET_E_CANCELLED && !h->reload && !(told && *told && !strcmp(*told, line))) {
            asset__log(s, ASSET_LOG_WARN, "load failed: %s", line);
            if (told) *told = line; /* h, and so its message, lives on: it is queued */
        }
    } else {
        h->value = asset__value_retain(v);
    }
    if (h->reload) asset__reload_decided(s, h); /* the live handles get the result */
    asset__queue_push(s, h);
    if (h->dep_parent) asset__graph_dep_decided(s, h); /* after queueing: deps first */
    asset__graph_drain(s);
}

void asset__handle_decide_hit(asset_handle_t *h, asset__value_t *v) {
    /* what asset__handle_decide does for such a handle, without its tests of what it
     * cannot have (about 70 instructions a hit, docs/performance.md) */
    h->decided = true;
    h->status = ASSET_OK;
    h->value = asset__value_retain(v);
    asset__queue_push(h->server, h);
}

/* ---- the callbacks' index by id (s->cb_ix): open addressing, linear probing ---- */

static size_t cbix_home(uint64_t id, size_t cap) {
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

/* The index's smallest size, and the size it never shrinks below (cbix_del_at). */
#define CBIX_MIN 16

/* [lock] The index rebuilt with cap slots (a power of two, over twice its entries).
 * False: out of memory (it stays as it was). */
static bool cbix_resize(asset_server_t *s, size_t cap) {
    asset__cb_t **ix = asset__calloc(cap, sizeof *ix);
    if (!ix) return false;
    for (size_t i = 0; i < s->cb_ix_cap; i++) {
        asset__cb_t *c = s->cb_ix[i];
        if (!c) continue;
        size_t j = cbix_home(c->id, cap);
        while (ix[j]) j = (j + 1) & (cap - 1);
        ix[j] = c;
    }
    asset_free(s->cb_ix);
    s->cb_ix = ix;
    s->cb_ix_cap = cap;
    return true;
}

/* [lock] Files c by its id. False: out of memory. */
static bool cbix_add(asset_server_t *s, asset__cb_t *c) {
    if (2 * (s->cb_ix_n + 1) > s->cb_ix_cap &&
        !cbix_resize(s, s->cb_ix_cap ? s->cb_ix_cap * 2 : CBIX_MIN))
        return false;
    size_t j = cbix_home(c->id, s->cb_ix_cap);
    while (s->cb_ix[j]) j = (j + 1) & (s->cb_ix_cap - 1);
    s->cb_ix[j] = c;
    s->cb_ix_n++;
    return true;
}

/* [lock] The slot of the callback numbered id, or SIZE_MAX. */
static size_t cbix_find(asset_server_t *s, uint64_t id) {
    if (!s->cb_ix_n) return SIZE_MAX;
    size_t mask = s->cb_ix_cap - 1;
    for (size_t j = cbix_home(id, s->cb_ix_cap); s->cb_ix[j]; j = (j + 1) & mask) {
        s->cb_visits++;
        if (s->cb_ix[j]->id == id) return j;
    }
    return SIZE_MAX;
}

/* [lock] Empties slot i, moving back what probed past it (no tombstones); the index may
 * be rebuilt smaller after (slots found before are stale). */
static void cbix_del_at(asset_server_t *s, size_t i) {
    size_t mask = s->cb_ix_cap - 1;
    s->cb_ix[i] = NULL;
    s->cb_ix_n--;
    for (size_t j = (i + 1) & mask; s->cb_ix[j]; j = (j + 1) & mask) {
        size_t k = cbix_home(s->cb_ix[j]->id, s->cb_ix_cap);
        /* it stays unless its home is outside the cyclic range (i, j] */
        if (i < j ? (k <= i || k > j) : (k <= i && k > j)) {
            s->cb_ix[i] = s->cb_ix[j];
            s->cb_ix[j] = NULL;
            i = j;
        }
    }
    /* an eighth full: halved (a quarter full then, grown again past half), so that the
     * index of a burst's callbacks (100,000 loads in a frame, fired and gone) keeps no
     * high-water size for good (a review); out of memory, it stays */
    if (s->cb_ix_cap > CBIX_MIN && s->cb_ix_n <= s->cb_ix_cap / 8)
        (void)cbix_resize(s, s->cb_ix_cap / 2);
}

/* [lock] c leaves the index (a batch item's was never in it). */
static void cbix_remove(asset_server_t *s, const asset__cb_t *c) {
    if (c->embedded) return;
    size_t i = cbix_find(s, c->id);
    if (i != SIZE_MAX) cbix_del_at(s, i);
}

bool asset__cbix_add(asset_server_t *s, asset__cb_t *c) { return cbix_add(s, c); }

asset__cb_t *asset__cbix_get(asset_server_t *s, uint64_t id) {
    size_t i = cbix_find(s, id);
    return i != SIZE_MAX ? s->cb_ix[i] : NULL;
}

void asset__cbix_remove(asset_server_t *s, const asset__cb_t *c) { cbix_remove(s, c); }

void asset__cb_index_free(asset_server_t *s) {
    asset_free(s->cb_ix);
    s->cb_ix = NULL;
    s->cb_ix_cap = s->cb_ix_n = 0;
}

/* [lock] Frees the circle of callbacks whose last is `last` (but those that live in their
 * batch's item). */
static void cb_free_all(asset_server_t *s, asset__cb_t *last) {
    for (asset__cb_t *c = last ? last->next : NULL, *n; c; c = n) {
        n = c == last ? NULL : c->next;
        if (c->embedded) continue;
        cbix_remove(s, c);
        if (c->owned) { /* its user goes back at the next flush (flush_impl) */
            c->next = s->dropped_cbs;
            s->dropped_cbs = c;
            atomic_store_explicit(&s->dropped_any, true, memory_order_relaxed);
            atomic_store(&s->dead_wake, true); /* the host flushes: asset__maybe_wake */
            continue;
        }
        asset_free(c);
    }
}

/* A handle's or batch's release made inside a free_value, waiting for the next flush
 * (asset__release_later): in s->later_handles. */
typedef struct asset__later {
    struct asset__later *next;
    asset_handle_t *h;     /* the handle released, or NULL: */
    struct asset_batch *b; /* the batch released */
} asset__later_t;

/* Everything of h but its memory (asset__handle_discard). */
static void handle_clear(asset_handle_t *h) {
    asset_server_t *s = h->server;
    if (s->all_tail == h) s->all_tail = h->all_prev;
    if (h->all_prev)
        h->all_prev->all_next = h->all_next;
    else
        s->all = h->all_next;
    if (h->all_next) h->all_next->all_prev = h->all_prev;
    if (s->uri_index_on && asset__uri_index_remove(s, h)) /* its URI's last handle */
        asset__reload_unwatch(s, asset__handle_uri(h), strcspn(asset__handle_uri(h), "#"));
    /* each tested here: most handles have none of these, and a call apiece was about a
     * twentieth of a cache hit's instructions (docs/performance.md); what a loaded
     * handle seldom has is tested at once first (a branch each was about 25 a hit) */
    if (!((uintptr_t)h->rcbs | (uintptr_t)h->reload_value | (uintptr_t)h->reload_message |
          (uintptr_t)h->nc_version | (uintptr_t)h->kept_deps | (uintptr_t)h->message |
          (uintptr_t)h->label)) {
        if (h->cbs) cb_free_all(s, h->cbs);
        if (h->value) asset__value_release(h->value);
        return;
    }
    if (h->cbs) cb_free_all(s, h->cbs);
    if (h->rcbs) cb_free_all(s, h->rcbs);
    if (h->reload_value) asset__value_release(h->reload_value);
    if (h->reload_message) asset_free(h->reload_message);
    if (h->nc_version) asset_free(h->nc_version);
    if (h->value) asset__value_release(h->value);
    if (h->kept_deps) asset__deps_unref(s, h->kept_deps);
    if (h->message) asset_free(h->message);
    if (h->label) asset_free(h->label); /* uri and tag live in the handle's own block */
}

static void handle_free(asset_handle_t *h) {
    handle_clear(h);
    asset__handle_discard(h);
}

void asset__handle_maybe_free(asset_handle_t *h) {
    if (h->refs == 0 && !h->queued && !h->job && h->timer_idx == ASSET__NO_TIMER) handle_free(h);
}

void asset__handle_free_all(asset_server_t *s) {
    /* cleared now, freed last (asset__handle_discard_all): a value freed with one of them
     * or after them (the caches go later) may release any handle of the server in its
     * free_value, which only counts on the handle (asset_handle_release); freed here, that
     * was a use after free (a review) */
    while (s->all) {
        asset_handle_t *h = s->all;
        h->job = NULL; /* jobs are gone by now */
        h->timer_idx = ASSET__NO_TIMER;
        handle_clear(h);
        h->all_next = s->handles_freed;
        s->handles_freed = h;
    }
    s->q_head = s->q_tail = s->q_published = NULL;
    s->q_len = 0;
    asset_free(s->timers);
    s->timers = NULL;
    s->timers_len = s->timers_cap = 0;
}

void asset__handle_discard_all(asset_server_t *s) {
    /* destroy gives no user back: after it they are the caller's (the header) */
    for (asset__cb_t *c = s->dropped_cbs, *next; c || (c = s->dropped_left); c = next) {
        if (c == s->dropped_left) s->dropped_left = NULL;
        next = c->next;
        asset_free(c);
    }
    s->dropped_cbs = NULL;
    /* every handle goes: nothing to release */
    asset__later_t *l = atomic_exchange(&s->later_handles, NULL);
    while (l) {
        asset__later_t *next = l->next;
        asset_free(l);
        l = next;
    }
    while (s->handles_freed) {
        asset_handle_t *h = s->handles_freed;
        s->handles_freed = h->all_next;
        asset__handle_discard(h);
    }
}

/* ---- flush ---- */

/* [lock] h, done for good, goes to the tail of s->all, behind every handle not done
 * (asset_server_cancel_tag's walk stops at the first done one). */
static void all_to_tail(asset_server_t *s, asset_handle_t *h) {
    if (s->all_tail == h) return;
    if (h->all_prev)
        h->all_prev->all_next = h->all_next;
    else
        s->all = h->all_next;
    h->all_next->all_prev = h->all_prev; /* not the tail: it has a next */
    h->all_prev = s->all_tail;
    h->all_next = NULL;
    s->all_tail->all_next = h;
    s->all_tail = h;
}

void asset__handle_publish(asset_server_t *s, asset_handle_t *h) {
    if (!h->decided || state_terminal(atomic_load(&h->state))) return;
    int state = h->status == ASSET_OK            ? ASSET_STATE_LOADED
                : h->status == ASSET_E_CANCELLED ? ASSET_STATE_CANCELLED
                                                 : ASSET_STATE_FAILED;
    atomic_store_explicit(&h->state, state, memory_order_release);
    all_to_tail(s, h);
    /* after the state: a thread that reads version 1 reads LOADED */
    if (state == ASSET_STATE_LOADED) atomic_store_explicit(&h->version, 1, memory_order_release);
}

/* Delivery (callbacks, stats) keeps the queue's order; states only are published here.
 * The queue's published start ends at s->q_published, so each queued handle is looked at
 * once however many early publications there are (a finalize of each node of a graph). */
void asset__handle_publish_early(asset_server_t *s, asset_handle_t *h) {
    if (!h->decided || state_terminal(atomic_load(&h->state))) return;
    /* decided and not published: in the queue (a delivered one was published first) */
    for (asset_handle_t *x = s->q_published ? s->q_published->queue_next : s->q_head; x;
         x = x->queue_next) {
        asset__handle_publish(s, x);
        s->q_published = x;
        if (x == h) return;
    }
    asset__handle_publish(s, h);
}

/* The stats count a result when the flush delivers it with its callbacks (a handle
 * published early, for its parent's finalize, is counted here, later, once). Whether
 * this delivery was its first. */
static bool count_delivered(asset_server_t *s, asset_handle_t *h) {
    int state = atomic_load(&h->state);
    if (h->counted || !state_terminal(state)) return false;
    h->counted = true;
    /* reload handles too: it closes their job's track (its own test, without the call) */
    if (atomic_load_explicit(&s->tracer, memory_order_relaxed)) asset__trace_delivered(s, h);
    if (asset__handle_internal(h)) return true; /* not the user's load: not in the stats */
    if (state == ASSET_STATE_LOADED)
        s->stats.completed++;
    else if (state == ASSET_STATE_CANCELLED)
        s->stats.cancelled++;
    else
        s->stats.failed++;
    return true;
}

static void cb_unlink(asset__cb_t **list, asset__cb_t *c);

/* Fires every callback of h that has not fired and was connected before its delivery
 * began: one connected by a callback (or another thread) meanwhile waits for the next
 * flush (more_to_deliver), or a callback connecting another each time kept the flush
 * going for ever (a review). A callback leaves the list as it fires (a batch's record,
 * which lives in the batch, is only unlinked): kept until the handle died, one per use
 * of a long-lived handle piled up, and every delivery walked them (a review). So the
 * next one to fire is the list's first, and a callback may disconnect any other, and a
 * batch's free its batch, without leaving this walk on freed memory. Ids grow along the
 * list (each is numbered as it is appended, under the lock): once the first one is
 * later than the delivery, so are the rest. [lock] held; released around calls. */
static size_t fire_callbacks(asset_server_t *s, asset_handle_t *h) {
    uint64_t upto = s->next_cb_id; /* connected later: the next flush's */
    size_t fired = 0;
    asset__cb_t *last, *c;
    while (!s->stopping && (last = h->cbs) && (c = last->next)->id <= upto) {
        s->cb_visits++;
        cb_unlink(&h->cbs, c);
        asset_handle_cb cb = c->cb;
        void *user = c->user;
        bool own = !c->embedded; /* an embedded one is its batch's, which its call may free */
        cbix_remove(s, c);       /* a disconnect now finds nothing: it is running */
        if (c->locked) {         /* a batch's: saves two lock round trips per child */
            cb(h, user);
        } else {
            uv_mutex_unlock(&s->lock);
            cb(h, user);
            uv_mutex_lock(&s->lock);
        }
        if (own) asset_free(c);
        fired++;
    }
    return fired;
}

/* [lock] Whether h, delivered, has more for a flush: a callback connected or a reload
 * decided while its callbacks ran (asset__queue_push could not queue it then). */
static bool more_to_deliver(const asset_handle_t *h) {
    return h->reload_pending || h->cbs; /* fired ones left the list */
}

/* The users of owned callbacks whose handle went, without the lock (a free_user may
 * release handles, whose own go on the list: taken again). Whether any went back; *left:
 * the budget ran out with some still on the list (one goes back at least, as a value:
 * every one went, a budgeted flush after an unload ran thousands of them, a review). */
static bool dropped_cbs_drain(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns,
                              bool *left) {
    bool any = false;
    *left = false;
    /* none pushed (one pushed meanwhile: its release woke the host for the next flush) */
    if (!atomic_load_explicit(&s->dropped_any, memory_order_relaxed)) return false;
    uv_mutex_lock(&s->lock);
    for (asset__cb_t *c;
         (c = s->dropped_left ? s->dropped_left : s->dropped_cbs) && !s->stopping;) {
        if (c == s->dropped_left)
            s->dropped_left = NULL;
        else
            s->dropped_cbs = NULL;
        any = true;
        uv_mutex_unlock(&s->lock);
        for (asset__cb_t *next; c; c = next) {
            next = c->next;
            ((asset__owned_cb_t *)c)->free_user(c->user);
            asset_free(c);
            if (next && budget_ns && asset__now_ns() - start_ns >= budget_ns) {
                uv_mutex_lock(&s->lock); /* the rest, kept apart: no walk to join a list */
                s->dropped_left = next;
                uv_mutex_unlock(&s->lock);
                *left = true;
                return true;
            }
        }
        uv_mutex_lock(&s->lock);
    }
    if (!s->dropped_left && !s->dropped_cbs)
        atomic_store_explicit(&s->dropped_any, false, memory_order_relaxed);
    uv_mutex_unlock(&s->lock);
    return any;
}

static size_t flush_impl(asset_server_t *s, uint64_t budget_ns) {
    if (!s) return 0;
    asset__io_flush_turn(); /* the web: the workers' file system calls (io_thread.h) */
    uv_mutex_lock(&s->lock);
    if (s->in_flush || asset__thread_flushing == s) { /* the latter: its values' frees */
        uv_mutex_unlock(&s->lock);
        asset__log(s, ASSET_LOG_ERROR,
                   "asset_server_flush: refused, a flush is already running "
                   "(called from a completion callback?)");
        return 0;
    }
    /* a task's fn, a parse or a read of this server, on a worker (or a thread whose wait
     * runs it; the flush thread's own waits inside one flush, as before) */
    if (asset__job_of_runs_here(s) && !asset__on_flush_thread(s)) {
        uv_mutex_unlock(&s->lock);
        /* it made this worker the flush thread: the flush thread's wait (for that very
         * task, say) then slept until a flush only it would run (a review) */
        asset__log(s, ASSET_LOG_ERROR,
                   "asset_server_flush: refused, called from inside a task, a parse or a "
                   "read of this server (a worker); flush on the flush thread");
        return 0;
    }
    if (s->stopping) { /* a wait's flush that destroy overtook: no callback from here on */
        uv_mutex_unlock(&s->lock);
        return 0;
    }
    s->flushes++; /* destroy waits for it to return */
    s->flush_thread = uv_thread_self();
    uint64_t start = budget_ns ? asset__now_ns() : 0;
    /* web single-threaded: the jobs run here, before the flush proper, as a worker's run
     * between two flushes: a parse or a task that waits for a load runs it and delivers
     * it by a flush of its own, as when a wait runs it. Inside in_flush its wait took
     * itself for a callback's and returned ASSET_E_BUSY at once (a review). A destroy
     * there is refused as on a worker (asset__thread_owner) */
    asset__pool_flush_run(s, start, budget_ns);
    s->in_flush = true;
    /* to its return: the frees and reaps after in_flush is cleared run user code too,
     * and a destroy there freed the server under this flush (a review) */
    asset_server_t *outer = asset__thread_flushing;
    asset__thread_flushing = s;
    size_t n = 0, popped = 0, internal_past = 0; /* internal_past: handles past the budget */
    bool worked = false; /* a result of the user's, or a batch's listing or manifest, met */
    asset_handle_t *again = NULL, **again_tail = &again; /* for the next flush */
    /* finalize first: what it completes is delivered by the loop below, in order */
    asset__finalize_run(s, start, budget_ns);
    /* what is queued so far, and no more: a callback that loads (a bad URI, a cache
     * hit, decided at once) or other threads loading as fast kept one flush going for
     * ever (a review); the rest waits for the next flush, and the host is woken */
    const asset_handle_t *last = s->q_tail;
    while (s->q_head && !s->stopping) { /* destroy began in a callback: it frees the rest */
        asset_handle_t *h = s->q_head;
        bool end = h == last;
        s->q_head = h->queue_next;
        if (s->q_published == h) s->q_published = NULL; /* the rest of them went before it */
        if (!s->q_head) {
            s->q_tail = NULL;
        } else { /* the next one's lines, while this one is delivered (a group's are cold) */
            for (size_t off = 0; off < sizeof *h; off += 64)
                asset__prefetch((const char *)s->q_head + off);
        }
        s->q_len--;
        asset__handle_publish(s, h);
        bool first = count_delivered(s, h);
        asset__value_t *old = NULL;
        /* most handles have no reload waiting: no call (asset__reload_publish's own test) */
        bool reloaded = h->reload_pending && asset__reload_publish(s, h, &old);
        size_t fired = fire_callbacks(s, h);
        if (reloaded) asset__reload_fire(s, h);
        if (old) asset__value_release(old); /* after the reloaded callbacks re-read it */
        popped++;
        /* the user's handles a result reached: not a reload's own handle (nor a batch's
         * listing or manifest), nor one whose pending reload was dropped (a later
         * unchanged revalidation, a cancel). A listing or manifest is work for the
         * budget though: its delivery runs its batch's callback (a manifest's check of
         * every entry), which 64 more past a spent budget would run too */
        if (!h->reload && (first || reloaded || fired)) {
            worked = true;
            n += !h->batch_source;
        }
        if (more_to_deliver(h)) { /* still queued: the next flush delivers it */
            h->queue_next = NULL;
            *again_tail = h;
            again_tail = &h->queue_next;
        } else {
            h->queued = false;
            asset__handle_maybe_free(h);
        }
        if (end) break;
        /* a budget stops after one of the user's completions at least: a reload's own
         * handle (a poll's revalidation) or one whose reload came to nothing, ahead of a
         * load's result, took the only turn of a small budget (a review). Without one,
         * after a bounded number past the budget: a queue of only those (a poll of many
         * unchanged URIs) was delivered whole, however long (a review) */
        if (budget_ns && asset__now_ns() - start >= budget_ns &&
            (worked || ++internal_past > ASSET__FLUSH_INTERNAL_PAST_BUDGET))
            break;
    }
    for (asset_handle_t *h = again, *next; h; h = next) { /* the queue's tail, as pushes */
        next = h->queue_next;
        queue_append(s, h); /* still marked queued; `more` below wakes the host */
    }
    /* batches get a turn in every flush, at least one step (a huge folder expands
     * there, step by step): under a stream of results and a small budget, skipping
     * them once the budget was spent starved them for good (a review found a folder
     * stuck at 256 children and a done callback that never fired) */
    size_t steps = 0; /* not in the count returned: handles */
    if (!s->stopping) steps = asset__batch_queue_drain(s, start, budget_ns); /* not in destroy */
    bool tasks_left = false;
    if (s->tasks_left || atomic_load_explicit(&s->dead_tasks, memory_order_relaxed)) {
        /* finished tasks' arguments: without the lock, and still inside the flush (a
         * free_arg that destroys the server is refused, as a callback's is); within the
         * budget, as completions: a budgeted flush ran every free_arg (a review) */
        uv_mutex_unlock(&s->lock);
        tasks_left = asset__tasks_drain_once(s, start, budget_ns); /* and those that die
                                                                    * meanwhile: woken below */
        uv_mutex_lock(&s->lock);
    }
    s->in_flush = false;
    if ((popped || steps) && s->waiters) uv_cond_broadcast(&s->done_cond);
    /* the budget ran out with work left: the queue never went empty, so no push will
     * wake an event-driven host; wake it now or the rest waits for an unrelated load */
    bool more = (s->q_head || s->bq_head || s->fin_head) && !s->stopping;
    if (more) atomic_store(&s->wake_pending, true);
    bool reap = s->retired_sources != NULL;
    bool pump = s->reload_ntodo != 0;
    /* finished jobs' memory (job.c, job_return): a budgeted flush leaves it to a load,
     * a wait or a flush without a budget, since freeing can take glibc's heap trims */
    asset__job_t *ret = budget_ns ? NULL : asset__jobs_take_returned(s, SIZE_MAX);
    uv_mutex_unlock(&s->lock);
    asset__jobs_free_returned(ret);
    if (pump) asset__reload_pump(s, start, budget_ns); /* dependents of what reloaded */
    if (more) asset__maybe_wake(s);
    if (reap) asset__sources_reap(s); /* replaced sources whose last read ended */
    asset__handles_release_later(s);  /* what free_values released: they may free values */
    /* values only this thread may free; those a budget leaves wait for the next flush,
     * which the host is told of, as of work a budget left in the queues */
    bool values_left, gave_back, users_left = false;
    do { /* a value's free that released the last handle of a value freed here: that one too
          * (a GPU material holding its textures' handles); and so for a free_user (a C++
          * callable holding a Handle): given back after them, the value it let go waited
          * for a later flush, which a host that flushes when woken never ran (a review) */
        values_left = asset__values_drain(s, start, budget_ns);
        asset__handles_release_later(s); /* those the values just freed released */
        gave_back = dropped_cbs_drain(s, start, budget_ns, &users_left); /* one at least */
    } while (!values_left && !users_left &&
             (gave_back || atomic_load_explicit(&s->dead_values, memory_order_relaxed)));
    if (values_left || users_left) {
        atomic_store(&s->wake_pending, true);
        asset__maybe_wake(s);
    }
    /* a task freed after this flush took the list (during its free_args, or on another
     * thread), whose flag the drain above cleared, or left by the budget: the next flush
     * frees it */
    if (tasks_left || atomic_load(&s->dead_tasks)) {
        atomic_store(&s->dead_wake, true);
        asset__maybe_wake(s);
    }
    uv_mutex_lock(&s->lock);
    if (--s->flushes == 0 && s->stopping) uv_cond_broadcast(&s->done_cond); /* destroy */
    uv_mutex_unlock(&s->lock);
    asset__thread_flushing = outer;
    return n;
}

size_t asset_server_flush(asset_server_t *s) { return flush_impl(s, 0); }
size_t asset_server_flush_budget(asset_server_t *s, uint64_t budget_ns) {
    return flush_impl(s, budget_ns ? budget_ns : 1);
}

/* ---- getters ---- */

asset_state_t asset_handle_state(const asset_handle_t *h) {
    return h ? (asset_state_t)atomic_load_explicit(&((asset_handle_t *)h)->state,
                                                   memory_order_acquire)
             : ASSET_STATE_FAILED;
}

bool asset_handle_is_done(const asset_handle_t *h) { return state_terminal(asset_handle_state(h)); }

float asset_handle_progress(const asset_handle_t *h) {
    if (!h) return 0.f;
    int st = asset_handle_state(h);
    if (st == ASSET_STATE_LOADED) return 1.f;
    asset_server_t *s = h->server;
    float p = 0.f;
    uv_mutex_lock(&s->lock);
    if (h->decided && h->status == ASSET_OK) {
        p = 1.f;
    } else if (h->job) { /* its own bytes and its dependencies' */
        uint64_t got, total;
        asset__handle_progress_bytes(h, &got, &total);
        if (total) p = got >= total ? 0.999f : (float)((double)got / (double)total);
    }
    uv_mutex_unlock(&s->lock);
    return p;
}

asset_status_t asset_handle_error(const asset_handle_t *h) {
    if (!h) return ASSET_E_INVALID;
    return asset_handle_is_done(h) ? h->status : ASSET_OK;
}

const char *asset_handle_error_message(const asset_handle_t *h) {
    if (!h) return "invalid handle";
    return asset_handle_is_done(h) && h->message ? h->message : "";
}

const char *asset_handle_uri(const asset_handle_t *h) { return h ? asset__handle_uri(h) : ""; }

const void *asset_handle_value(const asset_handle_t *h) {
    return asset_handle_state(h) == ASSET_STATE_LOADED && h->value ? h->value->value : NULL;
}

size_t asset_handle_size(const asset_handle_t *h) {
    return asset_handle_state(h) == ASSET_STATE_LOADED && h->value ? h->value->cost : 0;
}

int asset_handle_http_status(const asset_handle_t *h) {
    return h && asset_handle_is_done(h) ? h->http_status : 0;
}

/* ---- refs ---- */

/* Misuse check, as libuv and SQLite do: a handle whose magic word is wrong was freed
 * (released too often, or used after its server's destroy) or was never a handle.
 * Reading it is undefined behaviour already, so this is best effort and only in
 * debug builds; under ASan the read itself is reported. */
static bool handle_alive(const asset_handle_t *h, const char *fn) {
#ifndef NDEBUG
    if (h->magic != ASSET__HANDLE_MAGIC) {
        fprintf(stderr, "asset_server: %s(%p): not a live handle (%s)\n", fn, (const void *)h,
                h->magic == ASSET__HANDLE_DEAD ? "released too often, or already freed"
                                               : "bad pointer");
        return false;
    }
#else
    (void)h;
    (void)fn;
#endif
    return true;
}

asset_handle_t *asset_handle_retain(asset_handle_t *h) {
    if (!h || !handle_alive(h, "asset_handle_retain")) return NULL;
    uv_mutex_lock(&h->server->lock);
    h->refs++;
    uv_mutex_unlock(&h->server->lock);
    return h;
}

/* A release inside a free_value, which may run with this server's lock held (or another
 * server's, whose free_value releases a handle of this one): recorded, done by the next
 * flush. h stays alive meanwhile: the record is a reference it still has. */
void asset__release_later(asset_server_t *s, asset_handle_t *h, struct asset_batch *b) {
    asset__later_t *l = asset_alloc(sizeof *l);
    if (!l) { /* the reference stays: it lives until destroy, which frees it */
        asset__log(s, ASSET_LOG_ERROR,
                   "%s(%s) in a free_value: out of memory, it lives until the server is "
                   "destroyed",
                   h ? "asset_handle_release" : "asset_batch_release",
                   h ? asset__handle_uri(h) : "batch");
        return;
    }
    l->h = h;
    l->b = b;
    l->next = atomic_load_explicit(&s->later_handles, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->later_handles, &l->next, l,
                                                  memory_order_release, memory_order_relaxed))
        ;
    atomic_store(&s->dead_wake, true); /* the host flushes: asset__maybe_wake after unlocks */
    /* that caller wakes its own server only: a value of another server that released a
     * handle of this one (one server's values holding the other's handles) left this
     * host unwoken, its handle and value kept until an unrelated event (a review). This
     * thread may hold the other's lock, and wake is called with none: a worker of this
     * server calls it. Not inside this server's own flush, which does the releases */
    if (asset__thread_flushing != s) asset__pool_wake_later(s);
}

void asset__handles_release_later(asset_server_t *s) {
    asset__later_t *l;
    while ((l = atomic_exchange_explicit(&s->later_handles, NULL, memory_order_acquire))) {
        uv_mutex_lock(&s->lock);
        while (l) {
            asset__later_t *next = l->next;
            asset_handle_t *h = l->h;
            struct asset_batch *b = l->b;
            asset_free(l);
            if (!h) { /* its handles' values may record more */
                if (!asset__batch_release_locked(b))
                    asset__log(s, ASSET_LOG_ERROR,
                               "asset_batch_release(%s) in a free_value: released more often "
                               "than retained; ignored",
                               asset_batch_uri(b)[0] ? asset_batch_uri(b) : "a group");
            } else if (h->refs > 0) {
                h->refs--;
                asset__handle_maybe_free(h); /* its value's free may record more: the loop */
            } else {
                asset__log(s, ASSET_LOG_ERROR,
                           "asset_handle_release(%s) in a free_value: released more often "
                           "than retained; ignored",
                           asset__handle_uri(h));
            }
            l = next;
        }
        uv_mutex_unlock(&s->lock);
    }
}

void asset_handle_release(asset_handle_t *h) {
    if (!h || !handle_alive(h, "asset_handle_release")) return;
    if (asset__thread_freeing) { /* maybe under a server's lock: asset__loader_free_value */
        asset__release_later(h->server, h, NULL);
        return;
    }
    asset_server_t *s = h->server;
    uv_mutex_lock(&s->lock);
    if (h->refs > 0) {
        h->refs--;
        asset__handle_maybe_free(h);
        /* a value freed only on the flush thread may wait for it now: another thread
         * tells the host (the flush thread flushes when it likes) */
        bool off = !asset__on_flush_thread(s); /* [lock]: each flush writes flush_thread */
        uv_mutex_unlock(&s->lock);
        if (off) asset__maybe_wake(s);
        return;
    }
    /* still alive (queued or loading) but every reference is gone: released too often.
     * The next release after it is freed would be a use after free: say so now. */
    char *uri = asset__strdup(asset__handle_uri(h));
    uv_mutex_unlock(&s->lock);
    asset__log(s, ASSET_LOG_ERROR,
               "asset_handle_release(%s): released more often than retained; ignored",
               uri ? uri : "?");
    asset_free(uri);
}

/* ---- cancel ---- */

/* [lock] Cancels h unless it is done. Returns whether it did. */
bool asset__handle_cancel_locked(asset_handle_t *h, asset_status_t st, const char *why) {
    if (state_terminal(atomic_load(&h->state))) return false;
    if (h->decided) { /* finished but not flushed yet: the cancel still wins, unless
                       * a parent already counted it (its value may be built on this) */
        if (h->status == st || h->dep == ASSET__DEP_COUNTED) return false;
        if (h->value && h->value->has_x) keep_deps(h, asset__value_x(h->value)->deps);
        asset__value_release(h->value);
        h->value = NULL;
        asset_free(h->message);
        h->status = st;
        h->http_status = 0; /* the answer is discarded with its value, as before it came */
        h->message = asset__asprintf("%s: %s", asset__handle_uri(h), why);
        if (!h->message && st == ASSET_E_DEPENDENCY) h->status = ASSET_E_NO_MEMORY;
        return true;
    }
    char *msg = asset__asprintf("%s: %s", asset__handle_uri(h), why);
    if (!msg && st == ASSET_E_DEPENDENCY) st = ASSET_E_NO_MEMORY; /* keep a reason */
    asset__handle_decide(h, st, msg, NULL, 0);
    asset_free(msg);
    return true;
}

void asset_handle_cancel(asset_handle_t *h) {
    if (!h) return;
    asset_server_t *s = h->server;
    uv_mutex_lock(&s->lock);
    asset__handle_cancel_locked(h, ASSET_E_CANCELLED, "cancelled");
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
}

size_t asset_server_cancel_tag(asset_server_t *s, const char *tag, const asset_handle_t *keep) {
    if (!s || !tag) return 0;
    size_t n = 0;
    uv_mutex_lock(&s->lock);
    /* the handles not done, which come first: a walk of every live one, the loaded ones
     * a program holds too, took 7 ms per call for 100,000 (a review) */
    for (asset_handle_t *h = s->all; h && !state_terminal(atomic_load(&h->state));
         h = h->all_next) {
        s->tag_visits++;
        const char *ht = asset__handle_tag(h);
        if (h == keep || !ht || strcmp(ht, tag) != 0) continue;
        /* a tagged folder's listing or manifest is cancelled, not counted: the user has
         * no such handle (its batch fails ASSET_E_CANCELLED) */
        if (asset__handle_cancel_locked(h, ASSET_E_CANCELLED, ASSET__CANCELLED_BY_TAG) &&
            !asset__handle_internal(h))
            n++;
    }
    asset__batches_cancel_tag(s, tag);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
    return n;
}

/* ---- callbacks ---- */

uint64_t asset__cb_connect(asset_handle_t *h, bool reloaded, asset_handle_cb cb, void *user,
                           void (*free_user)(void *user)) {
    if (!h || !cb) return 0;
    asset__cb_t *c = asset__calloc(1, free_user ? sizeof(asset__owned_cb_t) : sizeof *c);
    if (!c) return 0;
    if (free_user) {
        c->owned = true;
        ((asset__owned_cb_t *)c)->free_user = free_user;
    }
    asset_server_t *s = h->server;
    c->cb = cb;
    c->user = user;
    uv_mutex_lock(&s->lock);
    c->id = ++s->next_cb_id;
    c->owner = h;
    c->reloaded = reloaded;
    if (!cbix_add(s, c)) { /* out of memory: not connected */
        uv_mutex_unlock(&s->lock);
        asset_free(c);
        return 0;
    }
    asset__cb_append(reloaded ? &h->rcbs : &h->cbs, c); /* they fire in connection order */
    /* late connect: a completion callback of a done handle fires at the next flush */
    if (!reloaded && state_terminal(atomic_load(&h->state))) asset__queue_push(s, h);
    uint64_t id = c->id;
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
    return id;
}

void asset__cb_append(asset__cb_t **list, asset__cb_t *c) {
    asset__cb_t *last = *list;
    if (last) {
        c->next = last->next;
        c->prev = last;
        last->next->prev = c;
        last->next = c;
    } else {
        c->next = c->prev = c;
    }
    *list = c;
}

/* [lock] Takes c out of the circle *list, which holds it. */
static void cb_unlink(asset__cb_t **list, asset__cb_t *c) {
    if (c->next == c) { /* the only one */
        *list = NULL;
    } else {
        c->prev->next = c->next;
        c->next->prev = c->prev;
        if (*list == c) *list = c->prev;
    }
    c->next = c->prev = NULL;
}

asset__cb_t *asset__cb_unlink(asset__cb_t **list, const asset__cb_t *which, uint64_t id,
                              asset__cb_t **cursor) {
    asset__cb_t *last = *list, *c = NULL;
    if (!last) return NULL;
    if (which) { /* linked (next set) only in *list */
        if (!which->next) return NULL;
        c = (asset__cb_t *)which;
    } else {
        for (asset__cb_t *x = last->next;; x = x->next) {
            if (id && x->id == id) {
                c = x;
                break;
            }
            if (x == last) return NULL;
        }
    }
    if (cursor && *cursor == c) *cursor = c == last ? NULL : c->next;
    cb_unlink(list, c);
    return c;
}

uint64_t asset_handle_on_completed(asset_handle_t *h, asset_handle_cb cb, void *user) {
    return asset__cb_connect(h, false, cb, user, NULL);
}

bool asset_handle_disconnect(asset_handle_t *h, uint64_t id) {
    if (!h || !id) return false;
    asset_server_t *s = h->server;
    bool found = false;
    uv_mutex_lock(&s->lock);
    /* a completion callback not fired yet (one leaves the index as it fires), or a
     * reloaded one (they stay): one the reload's delivery was to call next moves it on
     * (reload.c). Found by its id: a walk of the handle's list cost n^2 / 2 looks to
     * disconnect n callbacks newest first (a review) */
    size_t at = cbix_find(s, id);
    asset__cb_t *c = at != SIZE_MAX ? s->cb_ix[at] : NULL;
    if (c && c->owner == h) {
        cbix_del_at(s, at);
        asset__cb_unlink(c->reloaded ? &h->rcbs : &h->cbs, c, 0,
                         c->reloaded ? &s->rcb_cursor : NULL);
        asset_free(c);
        found = true;
    }
    uv_mutex_unlock(&s->lock);
    return found;
}

/* ---- wait ---- */

/* A lazy waiter on the flush thread wakes at least this often and delivers what is
 * queued: a result it is not waiting for may have a callback that the awaited load
 * needs (a user source finished from a completion callback), and a reload may wait for
 * the pump that runs at the end of a flush; so it never sleeps long on a missed cue. */
#define LAZY_FLUSH_NS 2000000u

/* Runs a job asset__job_take_here took, on this thread ([lock] not held). */
static void run_here(asset_server_t *s, asset__job_t *j) {
    asset_server_t *owner = asset__thread_owner; /* as on a worker: destroy refuses here */
    asset__thread_owner = s;
    asset__pool_nested(true);
    asset__job_run(s, j);
    asset__pool_nested(false);
    asset__thread_owner = owner;
    uv_mutex_lock(&s->lock);
    if (--s->caller_runs == 0 && s->stopping) uv_cond_broadcast(&s->done_cond);
    uv_mutex_unlock(&s->lock);
}

/* [lock] Frees up to max finished jobs (job.c, job_return), the lock released around
 * it. Returns whether there were any. */
static bool free_returned(asset_server_t *s, size_t max) {
    asset__job_t *ret = asset__jobs_take_returned(s, max);
    if (!ret) return false;
    uv_mutex_unlock(&s->lock);
    asset__jobs_free_returned(ret);
    uv_mutex_lock(&s->lock);
    return true;
}

/* [lock] Inside a job: whether what the wait waits for, from its handle *from on (nth),
 * waits for a job this thread runs (asset__graph_waits_here): 1, 0, -1 out of memory.
 * *from moves past the handles looked at, so that each is looked at once. */
static int ring_from(asset_server_t *s, const asset__wait_ops_t *ops, void *arg, size_t *from) {
    uint64_t mark = 0; /* one for every handle: a graph they share is walked once */
    int self = 0;
    asset_handle_t *h;
    for (; !self && !ops->done(arg) && ops->nth(arg, *from, &h); ++*from)
        self = h && !h->decided ? asset__graph_waits_here(s, h->job, &mark) : 0;
    return self;
}

asset_status_t asset__wait(asset_server_t *s, const asset__wait_ops_t *ops, void *arg,
                           int64_t timeout_ms, uint16_t *waited) {
    bool (*done)(void *arg) = ops->done, (*ready)(void *arg) = ops->ready;
    /* -1 waits for ever; any other negative timeout is no time left, as 0: what was left
     * of a deadline already past (deadline - now) waited for ever (a review) */
    if (timeout_ms < -1) timeout_ms = 0;
    asset__help_fn help = timeout_ms ? ops->help : NULL;
    /* jobs run by waits, whose own waits run more, one inside another: as deep as the
     * queue was long, past the stack of a small thread (the web build's only one). Past
     * ASSET__WAIT_RUN_DEPTH a wait runs none: one it would have to run (none else may,
     * every worker perhaps held so) is refused with ASSET_E_BUSY (a review) */
    bool deep = asset__job_depth() >= ASSET__WAIT_RUN_DEPTH;
    /* -1, or a timeout so large (> ~34 years) that ms -> ns would wrap into the past: forever */
    uint64_t deadline = timeout_ms < 0 || (uint64_t)timeout_ms > ((uint64_t)1 << 40)
                            ? UINT64_MAX
                            : asset__now_ns() + (uint64_t)timeout_ms * 1000000u;
    asset_status_t rc = ASSET_OK;
    bool stale = false;      /* results waited in the queue for LAZY_FLUSH_NS */
    bool paced = false;      /* a flush delivered nothing while a finalize stayed pending */
    bool flushed = false;    /* this wait has flushed: a 0 timeout still flushes once */
    uint64_t helped_ns = 0;  /* since when this waiter has been running jobs, or 0 */
    size_t tasks = SIZE_MAX; /* asset__pool_wait_step's */
    asset__walk_t walk;      /* help's */
    asset__await_t me = {.ops = ops, .arg = arg}; /* on s->awaits while it waits */
    size_t looked = 0; /* inside a job: the handles ring_from looked at */
    uv_mutex_lock(&s->lock);
    if (asset__job_runs_here()) {
        /* inside a task's fn, waiting for that task's own handle, or inside a read or a
         * parse, for a load of its own URI (which joined it), or of an asset that depends
         * on it (its parent, at any depth), or of one whose parse, on another thread,
         * waits for it (at any depth, through dependencies and such waits): decided only
         * once this returns, so the wait slept until its timeout (for ever with none).
         * Refused, as a wait inside a callback is (reviews). The search and the record
         * in one critical section: of two waits closing a cycle at once, the second
         * sees the first's record. Out of memory (-1): it cannot tell, and must not
         * sleep (a review) */
        int self = ring_from(s, ops, arg, &looked);
        if (self) {
            uv_mutex_unlock(&s->lock);
            return self > 0 ? ASSET_E_BUSY : ASSET_E_NO_MEMORY;
        }
        /* with no time to sleep it holds nobody up */
        if (timeout_ms) {
            me.frames = asset__job_frames();
            me.next = s->awaits;
            s->awaits = &me;
        }
    }
    asset__walk_init(s, &walk);
    s->in_waits++;                            /* destroy waits for it to leave */
    uint64_t requeues = s->parse_requeues;    /* looked at since */
    uint64_t unlisted = s->requeues_unlisted; /* when help's walk began */
    asset_server_t *outer = asset__thread_waiting;
    asset__thread_waiting = s;
    if (waited && !asset__on_flush_thread(s)) { /* [lock]: each flush writes flush_thread */
        ready = NULL;
        waited = NULL;
    }
    if (waited) ++*waited;
    ops->hold(arg, true); /* a callback of the flushes below may release the caller's */
    while (!done(arg)) {
        /* destroy: what it waits for will never be delivered; a task waiting on one of
         * the server's workers must let destroy join it (it hung there) */
        if (s->stopping) {
            rc = ASSET_E_SHUTDOWN;
            break;
        }
        /* inside a task's fn, a loader's parse or a source's read (or list), its job
         * cancelled (a cancel, its tag's, its timeout, also before the wait began): its
         * result is not wanted, and the wait held its worker until the load it waited for
         * ended, for ever with -1 (reviews: a task's, then a parse's). What it waits for
         * goes on */
        if (asset__job_cancelled_here(s)) {
            rc = ASSET_E_CANCELLED;
            break;
        }
        /* inside a job: a folder's or manifest's children are made by flushes after
         * the wait began (with none as it began, when the parse made the batch), and a
         * child may join a load whose parse, begun before, waits for this thread's job
         * (its own URI, say): a ring the look as it began could not see, and the wait
         * slept for ever (fuzz_server, a review). Each child made is looked at once */
        if (me.frames) {
            int self = ring_from(s, ops, arg, &looked);
            if (self) {
                rc = self > 0 ? ASSET_E_BUSY : ASSET_E_NO_MEMORY;
                break;
            }
        }
        /* checked before flushing too: a flush always has work while a finalize is
         * pending, and the wait ran past its timeout (and spun) as long as it was */
        if (flushed && asset__now_ns() >= deadline) {
            rc = ASSET_E_TIMEOUT;
            break;
        }
        if (asset__on_flush_thread(s)) {
            /* inside a callback (or a free the flush runs): flushing is refused, waiting
             * would hang */
            if (s->in_flush || asset__thread_flushing == s) {
                rc = ASSET_E_BUSY;
                break;
            }
            /* a finalize or a batch step is work only a flush does: always worth it; but
             * a finalize that stays PENDING (a GPU fence, say) is asked again only every
             * LAZY_FLUSH_NS, as a frame loop would, not in a tight loop */
            if (s->bq_head || (s->fin_head && !paced) || (stale && s->reload_ntodo) ||
                (s->q_head && (!ready || stale || ready(arg)))) {
                stale = false;
                uv_mutex_unlock(&s->lock);
                size_t n = asset_server_flush(s);
                uv_mutex_lock(&s->lock);
                flushed = true;
                paced = n == 0 && s->fin_head && !s->bq_head && !s->q_head;
                continue;
            }
        }
        uint64_t now = asset__now_ns();
        if (now >= deadline) {
            rc = ASSET_E_TIMEOUT;
            break;
        }
        /* run-on-wait: a queued job of what it waits for, run here rather than waiting
         * for a worker to take it and hand the result back; a lazy waiter still
         * delivers other results at least every LAZY_FLUSH_NS meanwhile */
        /* help's walk passes for good what it cannot run, a read in flight among
         * them; a parse queued again since (an ASYNC read over: a file://, mem:// or
         * pkg:// load never moves the count) may be one of those. Only a worker ran it:
         * with each held (by a parse waiting for this wait's caller, say) the wait hung
         * (a review). Such parses are listed while queued (s->requeued): this wait's
         * own are found there, until none is left. A walk again from the start found
         * them too, but cost a batch of n ASYNC children n^2 looks (a review): only
         * when one could not be listed (out of memory) */
        if (unlisted != s->requeues_unlisted) {
            unlisted = s->requeues_unlisted;
            asset__walk_reset(s, &walk);
        }
        asset__job_t *j = NULL;
        if (help && !s->stopping && requeues != s->parse_requeues) {
            size_t i = 0;
            for (; i < s->n_requeued && !j; i++) {
                asset__job_t *q = s->requeued[i];
                if (asset__job_runnable_here(q) && asset__walk_owns(s, &walk, q, ops->root, arg))
                    j = q;
            }
            s->wait_visits += i;                  /* the tests' count, once */
            if (!j) requeues = s->parse_requeues; /* none of its own is left */
        }
        if (!j && help && !s->stopping) j = help(arg, &walk);
        if (j && deep) {
            rc = ASSET_E_BUSY;
            break;
        }
        if (j) {
            asset__job_take_here(s, j);
            uv_mutex_unlock(&s->lock);
            run_here(s, j);
            now = asset__now_ns();
            if (!helped_ns) helped_ns = now;
            if (now - helped_ns >= LAZY_FLUSH_NS) {
                stale = true;
                helped_ns = now;
            }
            uv_mutex_lock(&s->lock);
            free_returned(s, 64);
            continue;
        }
        helped_ns = 0;
        if (free_returned(s, SIZE_MAX)) continue; /* time it would sleep anyway */
        size_t none = 0; /* deep: no job at all (the web's BUSY; elsewhere, it blocks) */
        int step = asset__pool_wait_step(s, deep ? &none : &tasks); /* web: a job, or BUSY */
        if (step) {
            if (step > 0) continue;
            rc = ASSET_E_BUSY;
            break;
        }
        /* lazy: results that are not enough yet (ready() false) need not wake it; it
         * becomes ready only by what wakes lazy waiters too */
        bool lazy = ready && !ready(arg);
        uint64_t wait_ns = deadline == UINT64_MAX ? UINT64_MAX : deadline - now;
        bool capped = (lazy || paced) && asset__on_flush_thread(s) && wait_ns > LAZY_FLUSH_NS;
        if (capped) wait_ns = LAZY_FLUSH_NS;
        paced = false; /* the pending finalize is asked again after this wait */
        s->waiters++;
        s->lazy_waiters += lazy;
        if (wait_ns == UINT64_MAX)
            uv_cond_wait(&s->done_cond, &s->lock);
        else if (uv_cond_timedwait(&s->done_cond, &s->lock, wait_ns) == UV_ETIMEDOUT && capped)
            stale = true;
        s->waiters--;
        s->lazy_waiters -= lazy;
    }
    if (waited) --*waited;
    if (rc == ASSET_OK) rc = ops->result(arg);
    asset__walk_reset(s, &walk); /* its references, before the wait's own */
    if (me.frames) {             /* off s->awaits, before arg may go */
        asset__await_t **p = &s->awaits;
        while (*p != &me) p = &(*p)->next;
        *p = me.next;
    }
    ops->hold(arg, false); /* may free it */
    asset__thread_waiting = outer;
    /* the hold was the last reference (a completion callback released the caller's): what
     * the free left for the flush thread (an on_reloaded_free user, a value freed only
     * there) is told to the host from another thread, as asset_handle_release does; and
     * before in_waits lets a destroy go on (a review) */
    if (!asset__on_flush_thread(s) &&
        (atomic_load_explicit(&s->dead_wake, memory_order_relaxed) ||
         atomic_load_explicit(&s->wake_pending, memory_order_relaxed))) {
        uv_mutex_unlock(&s->lock);
        asset__maybe_wake(s);
        uv_mutex_lock(&s->lock);
    }
    if (--s->in_waits == 0 && s->stopping) uv_cond_broadcast(&s->done_cond); /* destroy */
    uv_mutex_unlock(&s->lock);
    return rc;
}

static bool handle_done(void *h) {
    return state_terminal(atomic_load(&((asset_handle_t *)h)->state));
}

/* [lock] A flush helps a handle's waiter once the handle has its result: until then
 * the results of others (its dependencies, say) need not wake it one by one; they are
 * delivered by the same flush, dependencies first (and at least every LAZY_FLUSH_NS). */
static bool handle_ready(void *h) { return ((asset_handle_t *)h)->decided; }

bool asset__job_runnable_here(const asset__job_t *j) {
    if (!j || j->state != ASSET__JOB_QUEUED || j->heap_idx == SIZE_MAX) return false;
    if (j->task) return asset__spawn_runnable_here(j); /* on a worker of its server */
    /* inside a task of its server, or a parse or read one of its workers runs, this
     * thread is a worker: it runs any job as a worker would (a user source's read, an
     * HTTP read's start or its parse). A task (or a parse) waiting for such a load held
     * the worker the read needed: with one, for ever */
    if (j->handles &&
        (asset__spawn_in_task_of(j->handles->server) || asset__pool_worker_of(j->handles->server)))
        return true;
    /* Elsewhere (a user's thread, the flush thread): a file://, mem:// or pkg:// read;
     * an HTTP read (it only posts its transfer to the I/O thread); the parse left once
     * an ASYNC source's or HTTP's read is over (ASSET__PHASE_PARSE), which the thread
     * that finished the read may run too (parse_inline). An HTTP read and a parse left
     * were refused once: the flush thread, inside a job it ran for a wait that a parse
     * on the only worker waited for, waited for that worker, each for the other (a
     * review). Past ASSET__WAIT_RUN_DEPTH, where asset__wait refuses a job it would
     * run (ASSET_E_BUSY), those two are not the waiter's: its wait sleeps until a
     * worker takes them, as it did before they were run here (a review); a file://,
     * mem:// or pkg:// read is still its own there, and refused. */
    bool deep = asset__job_depth() >= ASSET__WAIT_RUN_DEPTH;
    if (j->phase == ASSET__PHASE_PARSE && !deep) return true;
    return j->source && (j->source->vt.read == asset__file_source.read ||
                         (!deep && (j->source->vt.read == asset__http_source.read ||
                                    j->source->vt.read == asset__https_source.read)) ||
                         j->source->vt.read == asset__mem_source.read ||
                         j->source->vt.read == asset__pkg_source.read);
}

void asset__job_take_here(asset_server_t *s, asset__job_t *j) {
    asset__heap_remove(s, j);
    j->state = ASSET__JOB_RUNNING;
    s->running++;
    s->caller_runs++; /* destroy waits for it: this may be a user's thread */
    for (asset_handle_t *o = j->handles; o; o = o->job_next)
        atomic_store(&o->state, ASSET_STATE_LOADING);
}

/* [lock] Run-on-wait for a handle: the waiter would only sleep until a worker takes
 * the job and hands the result back (two thread hand-offs, each a futex wake-up), so
 * it runs the handle's job itself while that is still queued; once the job parsed
 * (or while its parse runs), the dependencies it declared that are still queued, and
 * theirs, at any depth (asset__walk_next): the waiter's own run of a dependency's parse
 * declared them, and with every worker held nobody else runs them (a review). */
static asset__job_t *handle_help(void *arg, asset__walk_t *w) {
    asset_handle_t *h = arg;
    /* the root frame, once per walk: its job, then what that declares */
    if (!w->held && !asset__walk_hold(h->server, w, h)) return NULL;
    return asset__walk_next(h->server, w);
}
/* [lock] The wait's own reference: a completion callback that its flush fires may
 * release the caller's last one (the handle was freed under the wait). */
static void handle_hold(void *arg, bool on) {
    asset_handle_t *h = arg;
    if (on) {
        h->refs++;
        return;
    }
    h->refs--;
    asset__handle_maybe_free(h);
}

static asset_status_t handle_result(void *arg) { return ((asset_handle_t *)arg)->status; }

/* [lock] Whether o is the root of handle_help's walk. */
static bool handle_root(void *arg, const asset_handle_t *o) { return o == arg; }

/* [lock] What the wait waits for: the handle alone. */
static bool handle_nth(void *arg, size_t i, asset_handle_t **h) {
    *h = arg;
    return i == 0;
}

asset_status_t asset_handle_wait(asset_handle_t *h, int64_t timeout_ms) {
    if (!h) return ASSET_E_INVALID;
    /* lazy only where it flushes (asset__wait decides under the lock): another thread
     * just sleeps until the flush thread has delivered the result. h->waited: its
     * decision wakes lazy waiters (asset__handle_decide) */
    static const asset__wait_ops_t ops = {handle_done,   handle_ready, handle_help, handle_hold,
                                          handle_result, handle_root,  handle_nth};
    return asset__wait(h->server, &ops, h, timeout_ms, &h->waited);
}

/* ---- timeouts: a min-heap of handles on deadline_ns, [lock] ---- */

static void timer_swap(asset_server_t *s, size_t a, size_t b) {
    asset_handle_t *t = s->timers[a];
    s->timers[a] = s->timers[b];
    s->timers[b] = t;
    s->timers[a]->timer_idx = (uint32_t)a;
    s->timers[b]->timer_idx = (uint32_t)b;
}

static void timer_up(asset_server_t *s, size_t i) {
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (s->timers[p]->deadline_ns <= s->timers[i]->deadline_ns) break;
        timer_swap(s, i, p);
        i = p;
    }
}

static void timer_down(asset_server_t *s, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->timers_len && s->timers[l]->deadline_ns < s->timers[m]->deadline_ns) m = l;
        if (r < s->timers_len && s->timers[r]->deadline_ns < s->timers[m]->deadline_ns) m = r;
        if (m == i) return;
        timer_swap(s, i, m);
        i = m;
    }
}

static bool timer_add(asset_server_t *s, asset_handle_t *h) {
    if (s->timers_len >= ASSET__NO_TIMER) return false; /* 2^32 handles: never */
    asset_handle_t **t = asset__grow(s->timers, &s->timers_cap, s->timers_len, sizeof *t, 64);
    if (!t) return false;
    s->timers = t;
    h->timer_idx = (uint32_t)s->timers_len;
    s->timers[s->timers_len++] = h;
    timer_up(s, h->timer_idx);
    return true;
}

void asset__timer_arm(asset_server_t *s, asset_handle_t *h) {
    h->deadline_ns = asset__now_ns() + (uint64_t)h->timeout_ms * 1000000u;
    if (!asset__io_get(s)) { /* say why: "too many open files" is something to act on */
        char why[160], msg[192];
        asset_status_t st = asset__io_start_failure(s->io_error, why, sizeof why);
        snprintf(msg, sizeof msg, "cannot arm the timeout: %s", why);
        asset__handle_cancel_locked(h, st, msg);
    } else if (!timer_add(s, h)) {
        asset__handle_cancel_locked(h, ASSET_E_NO_MEMORY, "cannot arm the timeout: out of memory");
    } else if (h->timer_idx == 0) { /* the earliest deadline now: the I/O thread re-reads */
        asset__io_kick(s->io);
    }
}

void asset__timer_remove(asset_server_t *s, asset_handle_t *h) {
    size_t i = h->timer_idx;
    h->timer_idx = ASSET__NO_TIMER;
    if (i == ASSET__NO_TIMER) return;
    s->timers_len--;
    if (i != s->timers_len) {
        s->timers[i] = s->timers[s->timers_len];
        s->timers[i]->timer_idx = (uint32_t)i;
        timer_up(s, i);
        timer_down(s, s->timers[i]->timer_idx);
    }
    /* the array back as it empties down: a burst of 100,000 loads with timeouts kept
     * an array of their pointers (1 MiB) for the server's life */
    s->timers = asset__shrink(s->timers, &s->timers_cap, s->timers_len, sizeof *s->timers, 64);
}

void asset__timer_expire(asset_server_t *s, asset_handle_t *h) {
    asset__timer_remove(s, h);
    if (!h->decided) {
        asset__log(s, ASSET_LOG_DEBUG, "%s: timed out after %lu ms", asset__handle_uri(h),
                   (unsigned long)h->timeout_ms);
        char *msg = asset__asprintf("%s: timed out (timeout_ms %llu)", asset__handle_uri(h),
                                    (unsigned long long)h->timeout_ms);
        asset__handle_decide(h, ASSET_E_TIMEOUT, msg, NULL, 0);
        asset_free(msg);
    }
    asset__handle_maybe_free(h);
}

uint64_t asset__timers_expire(asset_server_t *s, uint64_t now_ns) {
    uv_mutex_lock(&s->lock);
    while (s->timers_len && s->timers[0]->deadline_ns <= now_ns)
        asset__timer_expire(s, s->timers[0]);
    uint64_t next = s->timers_len ? s->timers[0]->deadline_ns : 0;
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
    return next;
}
