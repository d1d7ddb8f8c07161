/* batch.c - batch handles: groups, folders and manifests. A batch owns one handle per
 * child; it learns of each child's end through an internal completion callback, so
 * all of its bookkeeping and every batch callback runs on the flush thread. A folder
 * or manifest batch first loads its listing (a LIST job) or its manifest (a json load)
 * through the same machinery, then creates its children in that handle's callback,
 * FOLDER_SLICE children per step, the later steps through the batch queue, so that
 * asset_server_flush_budget() bounds a huge folder's or manifest's work.
 * Fields marked [lock] are guarded by the server lock. */
#include "internal.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch_cb {
    /* filed by its id (ix.id) in the server's index of callbacks while it may still
     * fire, so that a disconnect finds it in O(1): a walk of the batch's list cost n^2 / 2
     * looks for n listeners disconnected newest first (a review). ix.owner is NULL (no
     * handle's); only ix.id is used */
    asset__cb_t ix;
    struct batch_cb *next;
    struct batch_cb **pprev; /* the link that points at it: unlinked in O(1) */
    asset_batch_t *batch;
    void (*item)(asset_batch_t *b, asset_handle_t *h, void *user);
    void (*done)(asset_batch_t *b, void *user);
    void *user;
    bool fired;   /* a done callback that fired; or one disconnected (silenced) while the
                     batch was queued */
    bool is_item; /* in b->item_cbs, not b->cbs */
} batch_cb_t;

#define SIZE_UNKNOWN UINT64_MAX /* an item's expected size, when none was given */

typedef struct item {
    asset__map_node_t node; /* key: the child's normalised URI; link.aux: its index */
    asset_handle_t *h;      /* our reference */
    asset__cb_t cb;         /* child_completed, in h->cbs (no allocation of its own) */
    asset_batch_t *batch;
    uint64_t size; /* expected bytes, or SIZE_UNKNOWN (0 is a size: an empty file) */
    bool done;
    /* [lock] the next in the batch's list of children not known done */
    struct item *undone_next;
} item_t;

/* Items are carved from chunks that grow to ITEM_CHUNK_MAX and live as long as the
 * batch: one allocation per chunk, not per child, and neighbours in memory. */
#define ITEM_CHUNK_MAX 256
typedef struct item_chunk {
    struct item_chunk *next;
    size_t n, used;
    item_t items[];
} item_chunk_t;

enum { KIND_GROUP, KIND_FOLDER, KIND_MANIFEST };

struct asset_batch {
    asset_server_t *server;
    int kind;
    int refs;  /* [lock] user references */
    char *uri; /* folder or manifest URI (normalised when it parsed) */
    /* a manifest reached through a redirect: the URL it came from, which its entries
     * resolve against (asset_batch_value too), or NULL (uri). Set once, [lock] */
    char *base;
    asset_load_options_t opts; /* for children; tag and loader owned */
    asset_handle_t *source;    /* [lock] listing or manifest handle, until it completes */
    item_t **items;            /* [flush thread] */
    size_t count, cap;
    asset__map_t by_uri;   /* [lock] built on the first asset_batch_value (by_uri_built) */
    bool listed;           /* children known */
    bool done;             /* every child done (or the listing failed) */
    atomic_bool cancelled; /* any thread */
    /* [lock] what the cancel that set `cancelled` says, which the children made after it
     * say too ("cancelled", or cancel_tag's "cancelled by tag", as their siblings') */
    const char *cancel_why;
    asset_status_t status; /* of the listing / manifest */
    char *message;
    size_t n_loaded, n_failed, n_cancelled;
    size_t n_decided;          /* [lock] children decided, delivered or not (batch_ready) */
    uint64_t total_bytes;      /* sum of known sizes */
    size_t n_sized;            /* children with a known size */
    float progress_floor;      /* [lock] progress never goes backwards */
    batch_cb_t *cbs;           /* [lock] done callbacks, in connection order */
    bool queued;               /* [lock] in s->batch_queue for late callbacks */
    asset_batch_t *queue_next; /* [lock] */
    asset_batch_t *all_prev, *all_next; /* [lock] */
    bool by_uri_built;    /* [lock] most batches are never asked: no index per child */
    item_chunk_t *chunks; /* newest first; only the thread that adds children takes one */
    /* a folder or manifest still creating its children [flush thread]: its listing (sorted
     * by the LIST job) or manifest, the next entry, and the folder's URI + "/" (the
     * manifest's URI, which its entries are resolved against) */
    asset__value_t *listing;
    size_t next_entry;
    char *dir;
    /* for asset_batch_progress [lock]: the sum of the known sizes of done children, and
     * the children not known done, in the batch's order (a done one leaves the list
     * when asset_batch_progress meets it: each once) */
    uint64_t done_bytes;
    item_t *undone_head, *undone_tail;
    /* [lock] done callbacks that its done callbacks connected wait in the batch queue
     * for the next flush, not this one's drain */
    bool fire_later;
    /* a manifest still creating its children [flush thread]: the next entry (in
     * `listing`, the manifest's value, kept while it expands), or NULL */
    const cJSON *next_manifest_entry;
    batch_cb_t **cbs_end; /* [lock] the last next link of cbs (an append is O(1)); NULL: &cbs */
    /* [lock] item callbacks, in connection order, and the last next link (NULL: &item_cbs):
     * a list of their own, so a child's end walks no done callback (n children and d done
     * callbacks cost n x d looks: a review) */
    batch_cb_t *item_cbs, **item_cbs_end;
};

/* [lock] Takes c out of its list of b's callbacks (not freed). */
static void cb_unlink(asset_batch_t *b, batch_cb_t *c) {
    *c->pprev = c->next;
    if (c->next)
        c->next->pprev = c->pprev;
    else if (c->is_item)
        b->item_cbs_end = c->pprev;
    else
        b->cbs_end = c->pprev;
}

/* [lock] Frees a list of b's callbacks: those that may still fire leave the index. */
static void cbs_free(asset_server_t *s, batch_cb_t *c) {
    for (batch_cb_t *n; c; c = n) {
        n = c->next;
        if (!c->fired) asset__cbix_remove(s, &c->ix); /* a fired one left the index */
        asset_free(c);
    }
}

/* Children a folder creates per step: a budgeted flush does at least one step. */
#define FOLDER_SLICE 256

/* ---- listing values (LIST jobs) ---- */

static void list_value_free(void *ctx, void *value) {
    (void)ctx;
    asset__list_dispose(value);
    asset_free(value);
}

asset__loader_slot_t asset__list_slot = {
    .vt = {ASSET_LOADER_ABI, "listing", NULL, NULL, NULL, list_value_free, NULL, 0, NULL},
    .name = "listing",
};

typedef struct list_ent {
    char *path;
    int64_t size;
} list_ent_t;

static int cmp_ent(const void *a, const void *b) {
    return strcmp(((const list_ent_t *)a)->path, ((const list_ent_t *)b)->path);
}

asset_status_t asset__list_sort(struct asset_list *l) {
    size_t i = 1;
    while (i < l->count && strcmp(l->paths[i - 1], l->paths[i]) <= 0) i++;
    if (i >= l->count) return ASSET_OK; /* already in order (most directory walks) */
    list_ent_t *e = asset__calloc(l->count, sizeof *e);
    if (!e)
        return asset_list_fail(l, ASSET_E_NO_MEMORY, "out of memory sorting %zu entries", l->count);
    for (i = 0; i < l->count; i++) e[i] = (list_ent_t){l->paths[i], l->sizes[i]};
    qsort(e, l->count, sizeof *e, cmp_ent);
    for (i = 0; i < l->count; i++) {
        l->paths[i] = e[i].path;
        l->sizes[i] = e[i].size;
    }
    asset_free(e);
    return ASSET_OK;
}

/* ---- lifetime ---- */

/* [lock] touch_handles: false only at destroy, which frees every handle itself. */
static void batch_free(asset_batch_t *b, bool touch_handles) {
    asset_server_t *s = b->server;
    if (s->batches_tail == b) s->batches_tail = b->all_prev;
    if (b->all_prev)
        b->all_prev->all_next = b->all_next;
    else
        s->batches = b->all_next;
    if (b->all_next) b->all_next->all_prev = b->all_prev;
    cbs_free(s, b->cbs);
    cbs_free(s, b->item_cbs);
    for (size_t i = 0; i < b->count; i++) {
        item_t *it = b->items[i];
        /* the handle may outlive the batch (a user reference): unlink the callback
         * that lives in the item if it never fired (one that fired left the list) */
        asset__cb_unlink(&it->h->cbs, &it->cb, 0, NULL);
        if (touch_handles) {
            it->h->batch = NULL;
            it->h->refs--;
            asset__handle_maybe_free(it->h);
        }
    }
    for (item_chunk_t *c = b->chunks, *n; c; c = n) {
        n = c->next;
        asset_free(c);
    }
    if (b->source && touch_handles) {
        b->source->refs--;
        asset__handle_maybe_free(b->source);
    }
    asset__map_free(&b->by_uri);
    asset__value_release(b->listing);
    asset_free(b->dir);
    asset_free(b->items);
    asset_free(b->uri);
    asset_free(b->base);
    asset_free(b->message);
    asset_free((char *)b->opts.tag);
    asset_free((char *)b->opts.loader);
    if (touch_handles) {
        asset_free(b);
        return;
    }
    /* destroy: its memory goes last (asset__batch_discard_all), after every value, whose
     * free may still release it (asset_batch_release in a free_value) */
    b->all_next = s->batches_freed;
    s->batches_freed = b;
}

/* [lock] */
static void batch_maybe_free(asset_batch_t *b) {
    if (b->refs == 0 && b->done && !b->queued) batch_free(b, true);
}

void asset__batch_free_all(asset_server_t *s) {
    while (s->batches) batch_free(s->batches, false);
}

void asset__batch_discard_all(asset_server_t *s) {
    while (s->batches_freed) {
        asset_batch_t *b = s->batches_freed;
        s->batches_freed = b->all_next;
        asset_free(b);
    }
}

bool asset__batch_release_locked(asset_batch_t *b) {
    if (b->refs == 0) return false; /* released too often (alive: not done, or queued) */
    b->refs--;
    batch_maybe_free(b);
    return true;
}

static asset_batch_t *batch_new(asset_server_t *s, int kind, const char *uri,
                                const asset_load_options_t *o) {
    asset_batch_t *b = asset__calloc(1, sizeof *b);
    if (!b) return NULL;
    b->server = s;
    b->kind = kind;
    b->refs = 1;
    asset__map_init(&b->by_uri);
    if (o) b->opts = *o;
    /* "" is no tag, as for a load: cancel_tag("") cancelled such a batch (a folder then
     * made none of its children and still reported success) */
    b->opts.tag = o && o->tag && *o->tag ? asset__strdup(o->tag) : NULL;
    b->opts.loader = o && o->loader ? asset__strdup(o->loader) : NULL;
    b->uri = uri ? asset__strdup(uri) : NULL;
    if ((o && o->tag && *o->tag && !b->opts.tag) || (o && o->loader && !b->opts.loader) ||
        (uri && !b->uri)) {
        asset_free((char *)b->opts.tag);
        asset_free((char *)b->opts.loader);
        asset_free(b->uri);
        asset_free(b);
        return NULL;
    }
    uv_mutex_lock(&s->lock);
    b->all_next = s->batches;
    if (s->batches) s->batches->all_prev = b;
    s->batches = b;
    if (!s->batches_tail) s->batches_tail = b;
    uv_mutex_unlock(&s->lock);
    return b;
}

/* [lock] b is done, for good: it goes to the tail of s->batches, behind every batch not
 * done, so asset_server_cancel_tag's walk stops at the first done one (it looked at
 * every live batch, those a program holds done too: 1.8 ms a call for 100,000, a
 * review). */
static void batch_set_done(asset_batch_t *b) {
    asset_server_t *s = b->server;
    b->done = true;
    if (s->batches_tail == b) return;
    if (b->all_prev)
        b->all_prev->all_next = b->all_next;
    else
        s->batches = b->all_next;
    b->all_next->all_prev = b->all_prev; /* not the tail: it has a next */
    b->all_prev = s->batches_tail;
    b->all_next = NULL;
    s->batches_tail->all_next = b;
    s->batches_tail = b;
}

/* ---- completion (flush thread) ---- */

/* [lock] Fires the done callbacks that have not fired, the lock released around each.
 * Held on return: the caller lets go of b->queued in the critical section that found no
 * callback left (a late connect in between found the batch queued, did not queue it,
 * and its callback never fired: found by a review). Only those connected before it
 * began: one that a done callback connects (or another thread, meanwhile) is left for
 * the batch queue, or a done callback connecting another each time never let the flush
 * end (a review). Returns whether such a callback is left. */
static bool fire_done(asset_batch_t *b) {
    asset_server_t *s = b->server;
    uint64_t last = s->next_cb_id;
    bool left = false;
    /* one walk: b->queued is held, so no callback is freed or unlinked by another meanwhile
     * (a disconnect only silences it: `fired`) and the list only grows at its end; looking
     * again from its start after each one cost n^2 / 2 looks for n done callbacks. One
     * that fired (or was silenced) leaves the list here: kept until the batch went, one
     * per use of a long-lived batch piled up (reviews) */
    for (batch_cb_t **p = &b->cbs; *p;) {
        batch_cb_t *c = *p;
        s->cb_visits++;
        if (!c->fired && c->done && c->ix.id <= last) {
            c->fired = true;
            asset__cbix_remove(s, &c->ix); /* a disconnect now finds nothing: it is running */
            void (*cb)(asset_batch_t *, void *) = c->done;
            void *user = c->user;
            uv_mutex_unlock(&s->lock);
            cb(b, user);
            uv_mutex_lock(&s->lock);
        }
        if (!c->fired) { /* connected meanwhile */
            left = true;
            p = &c->next;
            continue;
        }
        cb_unlink(b, c); /* *p is its next now */
        asset_free(c);
    }
    return left;
}

/* All its children are known: from here on the batch can be done. Written under the
 * lock, because a group may be made on any thread while the flush thread delivers its
 * first children (check_done) or another thread asks for its progress. */
static void set_listed(asset_batch_t *b) {
    uv_mutex_lock(&b->server->lock);
    b->listed = true;
    uv_mutex_unlock(&b->server->lock);
}

static void check_done(asset_batch_t *b) {
    asset_server_t *s = b->server;
    uv_mutex_lock(&s->lock); /* listed and count may be written by a group's maker */
    if (b->done || !b->listed || b->n_loaded + b->n_failed + b->n_cancelled < b->count) {
        uv_mutex_unlock(&s->lock);
        return;
    }
    batch_set_done(b);
    /* held while its callbacks run; one in the batch queue stays there (a group listed
     * when its children were decided): the queue's drain lets go of it */
    bool in_queue = b->queued;
    b->queued = true;
    if (s->waiters) uv_cond_broadcast(&s->done_cond);
    /* those its done callbacks connected: the next flush's drain fires them */
    if (fire_done(b)) b->fire_later = true;
    if (!in_queue) {
        b->queued = false;
        if (b->fire_later)
            asset__batch_queue_push(s, b);
        else
            batch_maybe_free(b);
    }
    uv_mutex_unlock(&s->lock);
}

/* [lock] A locked callback (fire_callbacks calls it with the lock held): released
 * only around the item callbacks and the batch's end. */
static void child_completed(asset_handle_t *h, void *user) {
    item_t *it = user;
    asset_batch_t *b = it->batch;
    asset_server_t *s = b->server;
    if (it->done || b->done) return;
    it->done = true;
    if (it->size != SIZE_UNKNOWN) b->done_bytes += it->size; /* for asset_batch_progress */
    /* the state itself, not asset_handle_state's call: h is never NULL here */
    switch (atomic_load_explicit(&h->state, memory_order_acquire)) {
    case ASSET_STATE_LOADED: b->n_loaded++; break;
    case ASSET_STATE_CANCELLED: b->n_cancelled++; break;
    default: b->n_failed++; break;
    }
    /* item callbacks, then maybe the batch's end */
    bool was_queued = b->queued; /* a folder still expanding waits in the batch queue */
    b->queued = true;
    /* only those connected before this child completed: one connected by an item
     * callback here fired for this child too, and one that connected another looped.
     * b->queued is held: nobody else unlinks one meanwhile (a disconnect silences it),
     * so this walk may, the silenced ones (they stayed until the batch went) */
    uint64_t last = s->next_cb_id;
    for (batch_cb_t *c = b->item_cbs, *next; c; c = next) {
        s->cb_visits++;
        if (c->ix.id > last) break; /* ids grow along the list: the rest are later too */
        if (c->item) {
            void (*cb)(asset_batch_t *, asset_handle_t *, void *) = c->item;
            void *cu = c->user;
            uv_mutex_unlock(&s->lock);
            cb(b, h, cu);
            uv_mutex_lock(&s->lock);
        }
        next = c->next;
        if (c->fired) { /* disconnected while a child was delivered */
            cb_unlink(b, c);
            asset_free(c);
        }
    }
    b->queued = was_queued;
    /* decided in this critical section: check_done's own lock only for the last child */
    bool complete = !b->done && b->listed && b->n_loaded + b->n_failed + b->n_cancelled >= b->count;
    if (complete) {
        uv_mutex_unlock(&s->lock);
        check_done(b);
        uv_mutex_lock(&s->lock);
    }
}

/* [lock] add_item's hook, once the child is dispatched (none before: a group's cache hit is
 * spared the call): records the new child in the critical section that creates it
 * (asset__load_hooked), so a child costs one lock round trip, and cannot fail: the room
 * in b->items was made before. */
static void item_linked(asset_server_t *s, asset_handle_t *h, void *arg) {
    item_t *it = arg;
    asset_batch_t *b = it->batch;
    it->h = h;
    it->node.key = asset__handle_uri(h);
    it->node.link.aux = (uint32_t)b->count; /* orders children of one URI (find_child) */
    b->items[b->count++] = it;
    it->undone_next = NULL;
    if (b->undone_tail)
        b->undone_tail->undone_next = it;
    else
        b->undone_head = it;
    b->undone_tail = it;
    h->batch = b; /* from now on its decision is counted (batch_ready) */
    if (h->decided) b->n_decided++;
    /* a cancel that came while this child was being made (its preparation, a loader's
     * claims() say, runs without the lock) walked the items before it was one */
    if (b->cancelled) asset__handle_cancel_locked(h, ASSET_E_CANCELLED, b->cancel_why);
    if (b->by_uri_built && !asset__map_put(&b->by_uri, &it->node)) {
        asset__map_free(&b->by_uri); /* out of memory: lookups scan until it is rebuilt */
        b->by_uri_built = false;
    }
    /* a size that would wrap the sum (a manifest's, up to 9e15 each) is not known:
     * the batch's progress then counts children (2,050 of 9e15 wrapped to 3.3e15, and
     * one child made it 0.999: a review) */
    if (it->size != SIZE_UNKNOWN && b->total_bytes + it->size < b->total_bytes)
        it->size = SIZE_UNKNOWN;
    if (it->size != SIZE_UNKNOWN) {
        b->total_bytes += it->size;
        b->n_sized++;
    }
    /* hear of its end: the callback lives in the item (no allocation that could fail);
     * the handle is new, so it is the first one and nothing was delivered yet */
    it->cb.cb = child_completed;
    it->cb.user = it;
    it->cb.embedded = true;
    it->cb.locked = true;
    it->cb.id = ++s->next_cb_id;
    asset__cb_append(&h->cbs, &it->cb);
}
static const asset__load_hook_t item_hook = {NULL, item_linked};

/* Room for up to `want` new children, in b->items and in one chunk (so that the slots
 * handed out are consecutive and the last ones can be given back): how many slots *out
 * has, 0 when out of memory. The slots are taken; give unused ones back with
 * items_unreserve. */
static size_t items_reserve(asset_batch_t *b, size_t want, item_t **out) {
    asset_server_t *s = b->server;
    if (b->cap - b->count < want) { /* room first: item_linked cannot fail */
        uv_mutex_lock(&s->lock);    /* other threads may read the list (cancel, getters) */
        size_t cap = b->cap ? b->cap : 16;
        while (cap - b->count < want) cap *= 2;
        item_t **items = asset_realloc(b->items, cap * sizeof *items);
        if (items) {
            b->items = items;
            b->cap = cap;
        }
        uv_mutex_unlock(&s->lock);
        if (!items) return 0;
    }
    item_chunk_t *c = b->chunks;
    if (!c || c->used == c->n) {
        size_t n = c ? (c->n * 2 < ITEM_CHUNK_MAX ? c->n * 2 : ITEM_CHUNK_MAX) : 8;
        /* not zeroed: each item is, as it is handed out (a 256-item chunk zeroed whole
         * cost about 120 instructions a child under callgrind, rep stosb counted per byte) */
        c = asset_alloc(sizeof *c + n * sizeof c->items[0]);
        if (!c) return 0;
        c->n = n;
        c->used = 0;
        c->next = b->chunks;
        b->chunks = c;
    }
    size_t k = c->n - c->used < want ? c->n - c->used : want;
    *out = &c->items[c->used];
    c->used += k;
    for (size_t i = 0; i < k; i++) (*out)[i] = (item_t){.batch = b};
    return k;
}

/* Gives back the last n slots of the newest chunk (never linked): items_reserve hands
 * them out zeroed again. */
static void items_unreserve(asset_batch_t *b, size_t n) { b->chunks->used -= n; }

/* Adds a child load. Flush thread or the creating thread (groups). */
static bool add_item(asset_batch_t *b, const char *uri, uint64_t size,
                     const asset_load_options_t *o, const char *sha256) {
    item_t *it;
    if (!items_reserve(b, 1, &it)) return false;
    it->size = size;
    asset_handle_t *h =
        asset__load_hooked(b->server, uri, o, sha256, false, false, 0, &item_hook, it);
    if (!h) { /* never linked: give the slot back */
        items_unreserve(b, 1);
        return false;
    }
    return true;
}

/* Adds up to ASSET__LOAD_SLICE children (a group's, or a folder's with the sizes its
 * listing gave, else sizes is NULL), a lock round trip or two for all of them
 * (asset__load_many). Returns how many; fewer than n: out of memory. */
static size_t add_items(asset_batch_t *b, const char *const *uris, const uint64_t *sizes,
                        size_t n) {
    item_t *its;
    size_t k = items_reserve(b, n < ASSET__LOAD_SLICE ? n : ASSET__LOAD_SLICE, &its);
    const char *u[ASSET__LOAD_SLICE];
    void *args[ASSET__LOAD_SLICE];
    for (size_t i = 0; i < k; i++) {
        u[i] = uris[i] ? uris[i] : "";
        its[i].size = sizes ? sizes[i] : SIZE_UNKNOWN;
        args[i] = &its[i];
    }
    size_t made = k ? asset__load_many(b->server, u, k, &b->opts, &item_hook, args, NULL) : 0;
    if (made < k) items_unreserve(b, k - made);
    return made;
}

/* Prefetches uris[from..to) (to <= n): the caller's strings are read first in a
 * slice, wherever they are. Two lines each: string functions read whole vectors,
 * across a line's end. */
static void prefetch_strings(const char *const *uris, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        if (!uris[i]) continue;
        asset__prefetch(uris[i]);
        asset__prefetch((const void *)((uintptr_t)uris[i] + 63)); /* may be past its end */
    }
}

/* Adds every one of uris[0..n) as children, in order, a slice at a time (a chunk's end
 * can cut one short: the rest goes into the next). The next slice's strings are on
 * their way while one is made. False: out of memory. */
static bool add_all(asset_batch_t *b, const char *const *uris, const uint64_t *sizes, size_t n) {
    size_t fetched = n < ASSET__LOAD_SLICE ? n : ASSET__LOAD_SLICE;
    prefetch_strings(uris, 0, fetched);
    for (size_t i = 0, k; i < n; i += k) {
        size_t to = i + 2 * ASSET__LOAD_SLICE < n ? i + 2 * ASSET__LOAD_SLICE : n;
        if (to > fetched) {
            prefetch_strings(uris, fetched, to);
            fetched = to;
        }
        if (!(k = add_items(b, uris + i, sizes ? sizes + i : NULL, n - i))) return false;
    }
    return true;
}

/* The folder's entries [first, first + n) (n <= ASSET__LOAD_SLICE) as children, in
 * the listing's order. False: out of memory (some may have been made). */
static bool add_entries(asset_batch_t *b, const struct asset_list *l, size_t first, size_t n) {
    /* zeroed: GCC at -O3 cannot tell that add_all reads only the k made */
    char *u[ASSET__LOAD_SLICE] = {0};
    uint64_t sizes[ASSET__LOAD_SLICE] = {0};
    size_t k = 0;
    for (; k < n; k++) {
        if (!(u[k] = asset__uri_resolve_path(b->dir, l->paths[first + k]))) break;
        sizes[k] = l->sizes[first + k] >= 0 ? (uint64_t)l->sizes[first + k] : SIZE_UNKNOWN;
    }
    bool ok = k == n && add_all(b, (const char *const *)u, sizes, k);
    for (size_t i = 0; i < k; i++) asset_free(u[i]);
    return ok;
}

static void fail_batch(asset_batch_t *b, asset_status_t st, const char *msg) {
    b->status = st;
    asset_free(b->message);
    b->message = asset__strdup(msg);
    set_listed(b);
    check_done(b);
}

static bool manifest_slice(asset_batch_t *b);

/* A cancel stopped the expansion with entries left (of `entries`): the batch fails
 * ASSET_E_CANCELLED, as when the listing or manifest itself was cancelled. It completed
 * ASSET_OK with the children made so far, none when cancelled before its first step:
 * an empty folder, as far as anyone could tell (a review). */
static void expansion_cancelled(asset_batch_t *b, size_t entries) {
    b->status = ASSET_E_CANCELLED;
    asset_free(b->message);
    b->message = asset__asprintf("%s: cancelled after %zu of %zu entries", b->uri ? b->uri : "",
                                 b->count, entries);
}

/* Creates the folder's next FOLDER_SLICE children (flush thread). Returns true once it
 * is over: every entry has its child, the batch was cancelled, or a child could not be
 * made (the batch's status says so); the listing is then dropped and b->listed set. */
static bool expand_slice(asset_batch_t *b) {
    if (b->kind == KIND_MANIFEST) return manifest_slice(b);
    const struct asset_list *l = b->listing->value;
    size_t end = l->count - b->next_entry > FOLDER_SLICE ? b->next_entry + FOLDER_SLICE : l->count;
    bool ok = true;
    while (ok && b->next_entry < end && !b->cancelled) {
        size_t n =
            end - b->next_entry < ASSET__LOAD_SLICE ? end - b->next_entry : ASSET__LOAD_SLICE;
        ok = add_entries(b, l, b->next_entry, n);
        b->next_entry += n;
    }
    if (ok && b->next_entry < l->count && !b->cancelled) return false;
    if (!ok) {
        b->status = ASSET_E_NO_MEMORY;
        asset_free(b->message);
        b->message = asset__strdup("out of memory creating the folder's loads");
    } else if (b->next_entry < l->count) {
        expansion_cancelled(b, l->count);
    }
    asset__value_release(b->listing);
    b->listing = NULL;
    asset_free(b->dir);
    b->dir = NULL;
    set_listed(b);
    return true;
}

/* One step of a folder's expansion; the next one waits in the batch queue for this
 * flush's turn at it, or the next flush's when the budget is spent. */
static void folder_step(asset_batch_t *b) {
    if (expand_slice(b)) {
        check_done(b);
        return;
    }
    asset_server_t *s = b->server;
    uv_mutex_lock(&s->lock);
    asset__batch_queue_push(s, b);
    uv_mutex_unlock(&s->lock);
}

/* The listing or manifest arrived (its completion, inside a flush): its first step is
 * that flush's batch queue's, as every later one, so a budgeted flush makes one step
 * (the arrival made one and the queue another: 512 children where the header says
 * 256, a review). One without entries is done at once (no step: its done callback in
 * this flush, as before). */
static void first_step(asset_batch_t *b, bool entries) {
    if (!entries) {
        folder_step(b);
        return;
    }
    asset_server_t *s = b->server;
    uv_mutex_lock(&s->lock);
    asset__batch_queue_push(s, b);
    uv_mutex_unlock(&s->lock);
}

/* The directory a folder's children are named in: its URI without trailing slashes
 * (past "://"), then one: a mem:// URI kept them as written ("mem://d/"), and the
 * mem source lists it as d, so its children were made "mem://d//a", keys not there
 * (a review). A folder load's URI has none now but an http(s) URL's (load.c,
 * folder_trim), whose children are named so too. Allocated; NULL when out of memory. */
static char *folder_dir(const char *uri) {
    const char *sep = strstr(uri, "://");
    size_t min = sep ? (size_t)(sep - uri) + 3 : 0, n = strlen(uri);
    while (n > min && uri[n - 1] == '/') n--;
    return asset__asprintf("%.*s/", (int)n, uri);
}

/* The folder listing arrived (flush thread), already sorted by path by the LIST job, so
 * every source lists in the same order and nothing here is worse than linear. */
/* [flush thread] The listing or manifest arrived (its completion callback, h's): the
 * batch lets go of its handle, keeping what it needs (the value, the URI). Kept, a
 * manifest's handle was a live asset for as long as the batch: with watch, each change
 * of the manifest was read and parsed again for nothing, the batch making its children
 * once (a review); and it held the listing or manifest all that time. h itself stays
 * valid until its dispatch ends. */
static void source_release(asset_batch_t *b) {
    asset_server_t *s = b->server;
    uv_mutex_lock(&s->lock);
    asset_handle_t *h = b->source;
    b->source = NULL;
    h->refs--;
    asset__handle_maybe_free(h);
    uv_mutex_unlock(&s->lock);
}

static void listing_completed(asset_handle_t *h, void *user) {
    asset_batch_t *b = user;
    source_release(b);
    if (asset_handle_state(h) != ASSET_STATE_LOADED) {
        fail_batch(b, asset_handle_error(h), asset_handle_error_message(h));
        return;
    }
    b->dir = folder_dir(asset_handle_uri(h));
    if (!b->dir) {
        fail_batch(b, ASSET_E_NO_MEMORY, "out of memory creating the folder's loads");
        return;
    }
    b->listing = asset__value_retain(h->value);
    b->next_entry = 0;
    first_step(b, ((const struct asset_list *)h->value->value)->count != 0);
}

static asset_priority_t parse_priority(const char *p, bool *ok) {
    *ok = true;
    if (!asset__strcasecmp(p, "high")) return ASSET_PRIORITY_HIGH;
    if (!asset__strcasecmp(p, "normal")) return ASSET_PRIORITY_NORMAL;
    if (!asset__strcasecmp(p, "low")) return ASSET_PRIORITY_LOW;
    *ok = false;
    return ASSET_PRIORITY_NORMAL;
}

static bool is_hex64(const char *s) {
    if (strlen(s) != 64) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
    return true;
}

/* An entry's keys, and what the check of them found (manifest_entry). */
static const char *const entry_keys[] = {"uri", "size", "priority", "loader", "sha256"};
typedef struct unknown_keys {
    size_t keys, entries;  /* unknown keys, and the entries that have one */
    size_t first_entry;    /* the first such entry, */
    const char *first_key; /* its first unknown key */
    const char *first_uri; /* and its uri */
} unknown_keys_t;

/* Checks one manifest entry; on error sets *err to a message naming it (allocated,
 * whole: in 512 bytes beside a long URI the reason was cut off; NULL when out of memory)
 * and returns false. */
static bool manifest_entry(const cJSON *e, size_t i, const char **uri, uint64_t *size,
                           asset_load_options_t *o, const char **sha, char **err,
                           unknown_keys_t *unknown) {
    *size = SIZE_UNKNOWN;
    *sha = NULL;
    if (cJSON_IsString(e)) {
        *uri = e->valuestring;
        if (!**uri) goto empty_uri;
        return true;
    }
    if (!cJSON_IsObject(e)) {
        *err = asset__asprintf("entry %zu: expected a string or an object", i);
        return false;
    }
    /* a key outside entry_keys was ignored silently: "Sha256" turned the integrity check
     * its author asked for off (twenty-second review). One that differs from a known key
     * only by case fails the entry; the others are counted for a warning */
    const char *cased = NULL, *cased_as = NULL;
    size_t n_unknown = 0;
    for (const cJSON *k = e->child; k; k = k->next) {
        bool known = false;
        for (size_t j = 0; j < sizeof entry_keys / sizeof *entry_keys && !known; j++) {
            if (!strcmp(k->string, entry_keys[j])) {
                known = true;
            } else if (!asset__strcasecmp(k->string, entry_keys[j])) {
                known = true;
                if (!cased) {
                    cased = k->string;
                    cased_as = entry_keys[j];
                }
            }
        }
        if (!known && unknown && !n_unknown++ && !unknown->entries) {
            unknown->first_entry = i;
            unknown->first_key = k->string;
        }
    }
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(e, "uri");
    if (cased) {
        if (cJSON_IsString(u) && *u->valuestring)
            *err = asset__asprintf("entry %zu (%s): unknown key \"%s\" (did you mean \"%s\"?)", i,
                                   u->valuestring, cased, cased_as);
        else
            *err = asset__asprintf("entry %zu: unknown key \"%s\" (did you mean \"%s\"?)", i, cased,
                                   cased_as);
        return false;
    }
    if (n_unknown) {
        if (!unknown->entries) unknown->first_uri = cJSON_IsString(u) ? u->valuestring : "";
        unknown->entries++;
        unknown->keys += n_unknown;
    }
    if (!u) {
        *err = asset__asprintf("entry %zu: missing \"uri\"", i);
        return false;
    }
    if (!cJSON_IsString(u)) {
        *err = asset__asprintf("entry %zu: \"uri\" must be a string", i);
        return false;
    }
    *uri = u->valuestring;
    if (!**uri) goto empty_uri;
    const cJSON *f;
    if ((f = cJSON_GetObjectItemCaseSensitive(e, "size"))) {
        if (!cJSON_IsNumber(f) || f->valuedouble < 0 || f->valuedouble > 9.0e15) {
            /* 9e15: every size up to it is exact in a double (a review: 1e16 was refused
             * as not "a non-negative number") */
            *err = asset__asprintf(
                "entry %zu (%s): \"size\" must be a number of bytes from 0 to 9e15", i, *uri);
            return false;
        }
        *size = (uint64_t)f->valuedouble;
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(e, "priority"))) {
        bool ok = cJSON_IsString(f);
        if (ok) o->priority = parse_priority(f->valuestring, &ok);
        if (!ok) {
            *err = asset__asprintf(
                "entry %zu (%s): \"priority\" must be \"high\", \"normal\" or \"low\"", i, *uri);
            return false;
        }
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(e, "loader"))) {
        if (!cJSON_IsString(f) || !*f->valuestring) {
            *err = asset__asprintf("entry %zu (%s): \"loader\" must be a loader name", i, *uri);
            return false;
        }
        o->loader = f->valuestring;
    }
    if ((f = cJSON_GetObjectItemCaseSensitive(e, "sha256"))) {
        if (!cJSON_IsString(f) || !is_hex64(f->valuestring)) {
            *err = asset__asprintf("entry %zu (%s): \"sha256\" must be 64 hex digits", i, *uri);
            return false;
        }
        *sha = f->valuestring;
    }
    return true;
empty_uri:
    *err = asset__asprintf("entry %zu: empty \"uri\"", i);
    return false;
}

/* ---- manifest scheme trust (config.manifest_schemes, see the header) ---- */

/* What a load from the scheme can reach: file > pkg > mem and custom schemes > http(s). */
static int scheme_rank(const char *scheme, size_t n) {
    if (n == 4 && !asset__strncasecmp(scheme, "file", 4)) return 3;
    if (n == 3 && !asset__strncasecmp(scheme, "pkg", 3)) return 2;
    if ((n == 4 && !asset__strncasecmp(scheme, "http", 4)) ||
        (n == 5 && !asset__strncasecmp(scheme, "https", 5)))
        return 0;
    return 1;
}

/* A rule's side is "*" or a scheme (RFC 3986: a letter, then letters, digits, '+', '-',
 * '.'): one that is neither ("mem://", "a->b->c"'s "b->c") matched no entry, so a rule
 * written so was taken for one that does not allow it (a review). */
static bool rule_side_ok(const char *side, size_t n) {
    return (n == 1 && side[0] == '*') || (n && asset__uri_scheme_chars(side, n, NULL) == n);
}

static bool rule_side_matches(const char *side, size_t n, const char *scheme, size_t sn) {
    return (n == 1 && side[0] == '*') || (n == sn && !asset__strncasecmp(side, scheme, n));
}

/* May a manifest of scheme m name entry (as written; a relative one keeps m's scheme)?
 * ASSET_OK, or ASSET_E_FORBIDDEN / ASSET_E_INVALID with *err saying why (allocated). */
static asset_status_t entry_allowed(const char *rules, const char *m, const char *entry, size_t i,
                                    char **err) {
    size_t mn = asset__uri_scheme_len(m, NULL), en = asset__uri_scheme_len(entry, NULL);
    if (!en || (en == mn && !asset__strncasecmp(entry, m, mn))) return ASSET_OK;
    bool ok = false;
    const char *r = rules ? rules : "default";
    for (;;) {
        r += strspn(r, " \t\n,");
        size_t tn = strcspn(r, " \t\n,");
        if (!tn) break;
        const char *arrow = asset__memmem(r, tn, "->", 2);
        if (tn == 7 && !strncmp(r, "default", 7)) {
            ok = ok || scheme_rank(entry, en) <= scheme_rank(m, mn);
        } else if (arrow && rule_side_ok(r, (size_t)(arrow - r)) &&
                   rule_side_ok(arrow + 2, tn - (size_t)(arrow - r) - 2)) {
            size_t ln = (size_t)(arrow - r), rn = tn - ln - 2;
            ok = ok ||
                 (rule_side_matches(r, ln, m, mn) && rule_side_matches(arrow + 2, rn, entry, en));
        } else {
            *err = asset__asprintf(
                "manifest_schemes: cannot read rule '%.*s' (expected \"default\" or "
                "\"manifest->entry\")",
                (int)tn, r);
            return ASSET_E_INVALID;
        }
        r += tn;
    }
    if (ok) return ASSET_OK;
    if (!rules)
        *err = asset__asprintf(
            "entry %zu (%s): %.*s:// manifests may not name %.*s:// entries, which reach "
            "further (file > pkg > mem > http(s); see config.manifest_schemes)",
            i, entry, (int)mn, m, (int)en, entry);
    else
        *err = asset__asprintf(
            "entry %zu (%s): config.manifest_schemes \"%s\" does not let %.*s:// manifests "
            "name %.*s:// entries",
            i, entry, rules, (int)mn, m, (int)en, entry);
    return ASSET_E_FORBIDDEN;
}

/* The manifest arrived (flush thread). Validates every entry before loading any. */
static void manifest_completed(asset_handle_t *h, void *user) {
    asset_batch_t *b = user;
    source_release(b);
    if (asset_handle_state(h) != ASSET_STATE_LOADED) {
        fail_batch(b, asset_handle_error(h), asset_handle_error_message(h));
        return;
    }
    const cJSON *root = asset_handle_value(h);
    const cJSON *arr = root;
    if (cJSON_IsObject(root)) arr = cJSON_GetObjectItemCaseSensitive(root, "assets");
    if (!cJSON_IsArray(arr)) {
        char *m = asset__asprintf("%s: manifest: expected {\"assets\": [...]} or an array of URIs",
                                  asset_handle_uri(h));
        fail_batch(b, ASSET_E_PARSE, m ? m : "bad manifest");
        asset_free(m);
        return;
    }
    size_t i = 0;
    const cJSON *e;
    unknown_keys_t unknown = {0};
    cJSON_ArrayForEach(e, arr) {
        const char *uri = NULL, *sha = NULL;
        uint64_t size = SIZE_UNKNOWN;
        asset_load_options_t o = b->opts;
        asset_status_t st = ASSET_E_PARSE;
        char *err = NULL;
        if (!manifest_entry(e, i, &uri, &size, &o, &sha, &err, &unknown) ||
            (st = entry_allowed(b->server->cfg.manifest_schemes, asset_handle_uri(h), uri, i,
                                &err)) != ASSET_OK) {
            char *m = err ? asset__asprintf("%s: manifest: %s", asset_handle_uri(h), err) : NULL;
            fail_batch(b, m ? st : ASSET_E_NO_MEMORY,
                       m ? m : "out of memory reading a manifest entry");
            asset_free(m);
            asset_free(err);
            return;
        }
        i++;
    }
    if (unknown.keys)
        asset__log(b->server, ASSET_LOG_WARN,
                   "%s: manifest: entry %zu (%s): unknown key \"%s\" ignored; %zu unknown key%s in "
                   "%zu entr%s (an entry's keys are uri, size, priority, loader, sha256)",
                   asset_handle_uri(h), unknown.first_entry, unknown.first_uri, unknown.first_key,
                   unknown.keys, unknown.keys == 1 ? "" : "s", unknown.entries,
                   unknown.entries == 1 ? "y" : "ies");
    /* the children, FOLDER_SLICE per step as a folder's (a budgeted flush made them all
     * at once: 242 ms for 100,000), from the value validated here: a reload of the
     * manifest meanwhile (a load of the user's) swaps that handle's value, not this one */
    const asset__value_extra_t *x = asset__value_x(h->value);
    char *base = x && x->base ? asset__strdup(x->base) : NULL;
    if (base) { /* set once, [lock]: asset_batch_value reads it on any thread */
        uv_mutex_lock(&b->server->lock);
        b->base = base;
        uv_mutex_unlock(&b->server->lock);
    }
    b->dir = asset__strdup(base ? base : asset_handle_uri(h));
    if (!b->dir || (x && x->base && !base)) {
        fail_batch(b, ASSET_E_NO_MEMORY, "out of memory creating the manifest's loads");
        return;
    }
    b->listing = asset__value_retain(h->value);
    b->next_manifest_entry = arr->child;
    b->next_entry = 0;
    first_step(b, arr->child != NULL);
}

/* Creates the manifest's next FOLDER_SLICE children (flush thread), as expand_slice. */
static bool manifest_slice(asset_batch_t *b) {
    bool ok = true;
    for (size_t k = 0; ok && b->next_manifest_entry && k < FOLDER_SLICE && !b->cancelled; k++) {
        const cJSON *e = b->next_manifest_entry;
        const char *uri = NULL, *sha = NULL;
        uint64_t size = SIZE_UNKNOWN;
        asset_load_options_t o = b->opts;
        char *err = NULL; /* none: validated when the manifest arrived */
        manifest_entry(e, b->next_entry++, &uri, &size, &o, &sha, &err, NULL);
        asset_free(err);
        char *full = asset__uri_resolve(b->dir, uri);
        ok = full && add_item(b, full, size, &o, sha);
        asset_free(full);
        b->next_manifest_entry = e->next;
    }
    if (ok && b->next_manifest_entry && !b->cancelled) return false;
    if (!ok) {
        b->status = ASSET_E_NO_MEMORY;
        asset_free(b->message);
        b->message = asset__strdup("out of memory creating the manifest's loads");
    } else if (b->next_manifest_entry) {
        size_t left = 0;
        for (const cJSON *e = b->next_manifest_entry; e; e = e->next) left++;
        expansion_cancelled(b, b->next_entry + left);
    }
    b->next_manifest_entry = NULL;
    asset__value_release(b->listing);
    b->listing = NULL;
    asset_free(b->dir);
    b->dir = NULL;
    set_listed(b);
    return true;
}

/* ---- public: creating batches ---- */

asset_batch_t *asset_server_load_group(asset_server_t *s, const char *const *uris, size_t n,
                                       const asset_load_options_t *o) {
    if (!s || (n && !uris)) return NULL;
    asset_batch_t *b = batch_new(s, KIND_GROUP, NULL, o);
    if (!b) return NULL;
    bool oom = !add_all(b, uris, NULL, n);
    char *msg = oom ? asset__strdup("out of memory creating the group's loads") : NULL;
    /* this may be any thread, while the flush thread delivers the first children */
    uv_mutex_lock(&s->lock);
    if (oom) {
        b->status = ASSET_E_NO_MEMORY;
        b->message = msg;
    }
    b->listed = true;
    bool empty = b->count == 0, decided = b->n_decided >= b->count;
    if (empty) /* an empty group is done at once */
        batch_set_done(b);
    /* Every child is decided, and the flush thread may have delivered them all before
     * the group was listed (their check_done returned early): the next flush looks at it
     * again (asset__batch_queue_drain). */
    if (empty || decided) asset__batch_queue_push(s, b);
    uv_mutex_unlock(&s->lock);
    if (empty || decided) asset__maybe_wake(s);
    return b;
}

/* [lock] load_with_source's hook: the listing or manifest load is the library's, marked
 * so in the critical section that links it, before a cancel_tag can find it (it counted
 * in the stats, in asset_server_flush's return and in cancel_tag's: a user who loaded a
 * manifest of 3 entries saw 4 handles completed; a review). */
static void source_linked(asset_server_t *s, asset_handle_t *h, void *arg) {
    (void)s;
    (void)arg;
    h->batch_source = true;
}
static const asset__load_hook_t source_hook = {source_linked, NULL};

static asset_batch_t *load_with_source(asset_server_t *s, int kind, const char *uri,
                                       const asset_load_options_t *o) {
    if (!s) return NULL;
    asset_batch_t *b = batch_new(s, kind, uri, o);
    if (!b) return NULL;
    asset_load_options_t lo = {0};
    if (o) {
        lo.priority = o->priority;
        lo.timeout_ms = o->timeout_ms;
        lo.tag = o->tag;
        lo.no_cache = o->no_cache;
    }
    bool folder = kind == KIND_FOLDER;
    if (!folder) lo.loader = "json";
    asset_handle_t *h = asset__load_hooked(
        s, uri, &lo, NULL, folder, folder && !(o && o->non_recursive), 0, &source_hook, NULL);
    if (!h) {
        uv_mutex_lock(&s->lock);
        batch_set_done(b);
        b->refs = 0;
        batch_maybe_free(b);
        uv_mutex_unlock(&s->lock);
        return NULL;
    }
    b->source = h;
    asset_free(b->uri);
    b->uri = asset__strdup(asset__handle_uri(h));
    if (!asset_handle_on_completed(h, kind == KIND_FOLDER ? listing_completed : manifest_completed,
                                   b)) {
        asset_handle_cancel(h);
        b->status = ASSET_E_NO_MEMORY;
        b->message = asset__strdup("out of memory");
        uv_mutex_lock(&s->lock);
        b->listed = true;
        batch_set_done(b);
        asset__batch_queue_push(s, b);
        uv_mutex_unlock(&s->lock);
    }
    return b;
}

asset_batch_t *asset_server_load_folder(asset_server_t *s, const char *uri,
                                        const asset_load_options_t *o) {
    return load_with_source(s, KIND_FOLDER, uri, o);
}

asset_batch_t *asset_server_load_manifest(asset_server_t *s, const char *uri,
                                          const asset_load_options_t *o) {
    return load_with_source(s, KIND_MANIFEST, uri, o);
}

/* ---- late callbacks: the batch queue, drained by flush ---- */

/* [lock] b is cancelled: it makes no more children, and those made meanwhile (whose
 * preparation runs without the lock) are cancelled as they are made, saying `why`. The
 * first cancel's: a child made after cancel_tag said "cancelled", its siblings "cancelled
 * by tag" (a review). */
static void batch_cancelled(asset_batch_t *b, const char *why) {
    if (!b->cancelled) b->cancel_why = why;
    b->cancelled = true;
}

void asset__batches_cancel_tag(asset_server_t *s, const char *tag) {
    /* a folder's or manifest's source load carries the tag: the handles' walk cancelled
     * it (b->source itself may still be being written by the thread making b) */
    for (asset_batch_t *b = s->batches; b && !b->done; b = b->all_next) { /* done: the rest */
        s->tag_visits++;
        if (b->opts.tag && !strcmp(b->opts.tag, tag))
            batch_cancelled(b, ASSET__CANCELLED_BY_TAG); /* and the children it makes later */
    }
}

void asset__batch_queue_push(asset_server_t *s, asset_batch_t *b) {
    if (b->queued) return;
    b->queued = true;
    b->queue_next = NULL;
    if (s->bq_tail)
        s->bq_tail->queue_next = b;
    else
        s->bq_head = b;
    s->bq_tail = b;
    if (!s->stopping) atomic_store(&s->wake_pending, true);
    if (s->waiters) uv_cond_broadcast(&s->done_cond);
}

/* Appends b to the list (*head .. *last) a drain leaves for the next flush. */
static void later_push(asset_batch_t **head, asset_batch_t **last, asset_batch_t *b) {
    b->queue_next = NULL;
    if (*last)
        (*last)->queue_next = b;
    else
        *head = b;
    *last = b;
}

/* [lock] held on entry and exit. */
size_t asset__batch_queue_drain(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    size_t n = 0;
    asset_batch_t *later = NULL, *later_last = NULL; /* for the next flush */
    /* what is queued so far, and a folder's own next steps (asset_server_flush takes
     * every step at once), no more: a done callback making an empty group (done at once)
     * or connecting to another done batch queued a batch this drain took, whose callback
     * did the same, so a chain of them kept one flush going for ever (a review). Those
     * queued after `last` wait for the next flush, in order */
    const asset_batch_t *last = s->bq_tail;
    bool past = !last;
    while (s->bq_head) {
        if (n && budget_ns && asset__now_ns() - start_ns >= budget_ns) break;
        asset_batch_t *b = s->bq_head;
        s->bq_head = b->queue_next;
        if (!s->bq_head) s->bq_tail = NULL;
        if (past && !b->listing) { /* still queued: the next flush's */
            later_push(&later, &later_last, b);
            continue;
        }
        if (b == last) past = true;
        n++;
        if (b->listing) { /* a folder creating its children: the next step (it is not done,
                             so nothing frees it meanwhile) */
            b->queued = false;
            uv_mutex_unlock(&s->lock);
            folder_step(b); /* requeues it at the tail, or finishes (and may free) it */
            uv_mutex_lock(&s->lock);
            continue;
        }
        if (!b->done) { /* a group listed after its children were delivered (see
                           asset_server_load_group); not done, so nothing frees it */
            b->queued = false;
            uv_mutex_unlock(&s->lock);
            check_done(b); /* done now, unless some delivery is still to come */
            uv_mutex_lock(&s->lock);
            continue;
        }
        if (b->fire_later || fire_done(b)) { /* connected by its own: the next flush */
            b->fire_later = false;
            later_push(&later, &later_last, b);
            continue;
        }
        b->queued = false;
        if (s->waiters) uv_cond_broadcast(&s->done_cond);
        batch_maybe_free(b);
    }
    if (later) { /* the queue's tail, as pushes (the flush wakes the host: bq_head) */
        if (s->bq_tail)
            s->bq_tail->queue_next = later;
        else
            s->bq_head = later;
        s->bq_tail = later_last;
    }
    return n;
}

/* ---- public: reading batches ---- */

const char *asset_batch_uri(const asset_batch_t *b) { return b && b->uri ? b->uri : ""; }
/* The getters lock: a folder's or manifest's children arrive on the flush thread. */
static size_t read_size(const asset_batch_t *b, const size_t *field) {
    if (!b) return 0;
    uv_mutex_lock(&b->server->lock);
    size_t v = *field;
    uv_mutex_unlock(&b->server->lock);
    return v;
}

size_t asset_batch_total(const asset_batch_t *b) { return b ? read_size(b, &b->count) : 0; }
size_t asset_batch_count(const asset_batch_t *b) { return asset_batch_total(b); }
size_t asset_batch_completed_count(const asset_batch_t *b) {
    return b ? read_size(b, &b->n_loaded) : 0;
}
size_t asset_batch_failed_count(const asset_batch_t *b) {
    return b ? read_size(b, &b->n_failed) : 0;
}
size_t asset_batch_cancelled_count(const asset_batch_t *b) {
    return b ? read_size(b, &b->n_cancelled) : 0;
}
/* A NULL batch (one that could not be made: out of memory) reads as a failed batch that
 * is done, as a NULL handle reads as FAILED: a loop waiting for it to be done ends. */
bool asset_batch_is_done(const asset_batch_t *b) {
    if (!b) return true;
    uv_mutex_lock(&b->server->lock);
    bool done = b->done;
    uv_mutex_unlock(&b->server->lock);
    return done;
}
asset_status_t asset_batch_error(const asset_batch_t *b) {
    if (!b) return ASSET_E_INVALID;
    return asset_batch_is_done(b) ? b->status : ASSET_OK;
}
const char *asset_batch_error_message(const asset_batch_t *b) {
    if (!b) return "invalid batch";
    return asset_batch_is_done(b) && b->message ? b->message : "";
}

asset_handle_t *asset_batch_handle(const asset_batch_t *b, size_t i) {
    if (!b) return NULL;
    uv_mutex_lock(&b->server->lock);
    asset_handle_t *h = i < b->count ? b->items[i]->h : NULL;
    uv_mutex_unlock(&b->server->lock);
    return h;
}

static float item_progress(const item_t *it) {
    if (it->done) return 1.f;
    const asset_handle_t *h = it->h;
    if (h->decided) return h->status == ASSET_OK ? 1.f : 0.f;
    if (!h->job) return 0.f;
    uint64_t got, total; /* its dependencies' bytes too */
    asset__handle_progress_bytes(h, &got, &total);
    if (!total) return 0.f;
    return got >= total ? 0.999f : (float)((double)got / (double)total);
}

/* Children whose bytes in flight asset_batch_progress looks at: the first unfinished
 * ones in the batch's order (loads start in that order, priorities aside). The others
 * count only once done, so a call costs the same for 50 children or 50,000. */
#define PROGRESS_WINDOW 64

float asset_batch_progress(const asset_batch_t *cb) {
    if (!cb) return 1.f; /* done (a NULL batch), and 1 once done */
    asset_batch_t *b = (asset_batch_t *)cb;
    asset_server_t *s = b->server;
    uv_mutex_lock(&s->lock); /* done is set under it, on the flush thread */
    if (b->done) {
        uv_mutex_unlock(&s->lock);
        return 1.f;
    }
    double p = 0;
    if (b->listed && b->count) {
        bool by_bytes = b->n_sized == b->count && b->total_bytes > 0;
        /* done children, counted where they completed (child_completed) */
        double sum =
            by_bytes ? (double)b->done_bytes : (double)(b->n_loaded + b->n_failed + b->n_cancelled);
        /* and the bytes in flight of the first unfinished ones; a done child met on the
         * way leaves the list, so each is passed over once in the batch's life */
        item_t **link = &b->undone_head, *prev = NULL;
        for (size_t seen = 0; *link && seen < PROGRESS_WINDOW;) {
            item_t *it = *link;
            s->batch_progress_visits++;
            if (it->done) {
                *link = it->undone_next;
                if (b->undone_tail == it) b->undone_tail = prev;
                continue;
            }
            double w = by_bytes ? (double)it->size : 1.0;
            sum += w * item_progress(it);
            seen++;
            prev = it;
            link = &it->undone_next;
        }
        p = sum / (by_bytes ? (double)b->total_bytes : (double)b->count);
        if (p >= 1.0) p = 0.999; /* exactly 1.0 only once done */
    }
    if ((float)p < b->progress_floor) p = b->progress_floor;
    b->progress_floor = (float)p;
    uv_mutex_unlock(&s->lock);
    return (float)p;
}

/* Whether child a is the one to answer for its URI rather than b (NULL): LOADED before
 * not, then the first in the batch's order. */
static bool child_better(const item_t *a, const item_t *b) {
    if (!b) return true;
    bool la = asset_handle_state(a->h) == ASSET_STATE_LOADED;
    bool lb = asset_handle_state(b->h) == ASSET_STATE_LOADED;
    return la != lb ? la : a->node.link.aux < b->node.link.aux;
}

/* [lock] The child loaded from uri (as normalised); of several (the same URI twice),
 * the first LOADED one, else the first. The index of every child is made on the first
 * lookup and kept up to date from then on; without memory for it, a scan. */
static item_t *find_child(asset_batch_t *b, const char *uri) {
    if (!b->by_uri_built) {
        bool ok = true;
        for (size_t i = 0; i < b->count && ok; i++)
            ok = asset__map_put(&b->by_uri, &b->items[i]->node);
        if (!ok) asset__map_free(&b->by_uri);
        b->by_uri_built = ok;
    }
    item_t *best = NULL;
    if (b->by_uri_built) {
        for (asset__map_node_t *n = asset__map_get(&b->by_uri, uri); n;
             n = asset__map_get_next(&b->by_uri, n))
            if (child_better((item_t *)n, best)) best = (item_t *)n;
        return best;
    }
    for (size_t i = 0; i < b->count; i++)
        if (!strcmp(b->items[i]->node.key, uri) && child_better(b->items[i], best))
            best = b->items[i];
    return best;
}

static item_t *find_child_locked(asset_batch_t *b, const char *uri) {
    uv_mutex_lock(&b->server->lock);
    item_t *it = find_child(b, uri);
    uv_mutex_unlock(&b->server->lock);
    return it;
}

const void *asset_batch_value(const asset_batch_t *cb, const char *uri) {
    if (!cb || !uri) return NULL;
    asset_batch_t *b = (asset_batch_t *)cb; /* its index is made on demand */
    asset_server_t *s = b->server;
    item_t *n = find_child_locked(b, uri);
    asset_uri_t u;
    const char *why;
    /* as written: resolved against the folder's or manifest's URI first, as its entries
     * were ("a.txt" in levels/m.json is levels/a.txt; as a bare path, first, it named
     * the manifest's "../a.txt" when file_root or the working directory was its
     * parent: a review), else normalised as a load of it would be (a group's) */
    if (!n && !b->uri && asset__uri_parse(uri, s->base_dir, s->file_root, &u, &why) == ASSET_OK) {
        n = find_child_locked(b, u.uri);
        asset__uri_dispose(&u);
    }
    if (!n && b->uri) { /* a folder's children resolve against it as a directory */
        char *dir = b->kind == KIND_FOLDER ? folder_dir(b->uri) : NULL;
        uv_mutex_lock(&s->lock); /* set once, then freed only with the batch */
        const char *mbase = b->base;
        uv_mutex_unlock(&s->lock);
        const char *base = b->kind == KIND_FOLDER ? dir : mbase ? mbase : b->uri;
        char *r = base ? asset__uri_resolve(base, uri) : NULL;
        if (r) n = find_child_locked(b, r);
        /* normalised as the child's URI was ("%61.txt" is "a.txt"): as resolved, a
         * reference with escapes named no child (a review) */
        if (!n && r && asset__uri_parse(r, s->base_dir, s->file_root, &u, &why) == ASSET_OK) {
            n = find_child_locked(b, u.uri);
            asset__uri_dispose(&u);
        }
        asset_free(r);
        if (!n && dir) { /* a file's name as listed: its '%' and '#' its own */
            r = asset__uri_resolve_path(dir, uri);
            if (r) n = find_child_locked(b, r);
            asset_free(r);
        }
        asset_free(dir);
        /* a path with its root, which is no reference (Windows: "C:/x"); a relative one
         * is not looked up as a bare path: that names another entry, or none */
        if (!n && asset__path_root_len(uri) &&
            asset__uri_parse(uri, s->base_dir, s->file_root, &u, &why) == ASSET_OK) {
            n = find_child_locked(b, u.uri);
            asset__uri_dispose(&u);
        }
    }
    return n ? asset_handle_value(n->h) : NULL;
}

void asset_batch_cancel(asset_batch_t *b) {
    if (!b) return;
    asset_server_t *s = b->server;
    uv_mutex_lock(&s->lock);
    batch_cancelled(b, "cancelled"); /* a listing that still arrives creates no children */
    if (b->source) asset__handle_cancel_locked(b->source, ASSET_E_CANCELLED, "cancelled");
    for (size_t i = 0; i < b->count; i++)
        asset__handle_cancel_locked(b->items[i]->h, ASSET_E_CANCELLED, "cancelled");
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
}

asset_batch_t *asset_batch_retain(asset_batch_t *b) {
    if (!b) return NULL;
    uv_mutex_lock(&b->server->lock);
    b->refs++;
    uv_mutex_unlock(&b->server->lock);
    return b;
}

void asset_batch_release(asset_batch_t *b) {
    if (!b) return;
    asset_server_t *s = b->server;
    if (asset__thread_freeing) { /* maybe under a server's lock: as asset_handle_release */
        asset__release_later(s, NULL, b);
        return;
    }
    uv_mutex_lock(&s->lock);
    if (asset__batch_release_locked(b)) {
        /* as asset_handle_release: the handles it freed may have left work for the flush
         * thread (a value it frees, an asset_handle_on_reloaded_free user): another
         * thread tells the host, which slept on until an unrelated event (a review) */
        bool off = !asset__on_flush_thread(s); /* [lock]: each flush writes flush_thread */
        uv_mutex_unlock(&s->lock);
        if (off) asset__maybe_wake(s);
        return;
    }
    /* still alive but every reference is gone: released too often, which saturated at
     * zero silently (a review; handles say so since issue 11). The next release after it
     * is freed would be a use after free: say so now */
    char *what = asset__strdup(b->uri ? b->uri : "a group");
    uv_mutex_unlock(&s->lock);
    asset__log(s, ASSET_LOG_ERROR,
               "asset_batch_release(%s): released more often than retained; ignored",
               what ? what : "?");
    asset_free(what);
}

static uint64_t add_cb(asset_batch_t *b, batch_cb_t *c) {
    asset_server_t *s = b->server;
    c->batch = b;
    uv_mutex_lock(&s->lock);
    c->ix.id = ++s->next_cb_id;
    if (!asset__cbix_add(s, &c->ix)) { /* out of memory: not connected */
        uv_mutex_unlock(&s->lock);
        asset_free(c);
        return 0;
    }
    /* connect order (a walk to the end was O(n): a review) */
    batch_cb_t ***endp = c->is_item ? &b->item_cbs_end : &b->cbs_end;
    batch_cb_t **end = *endp ? *endp : c->is_item ? &b->item_cbs : &b->cbs;
    *end = c;
    c->pprev = end;
    *endp = &c->next;
    if (c->done && b->done) asset__batch_queue_push(s, b); /* late connect */
    uint64_t id = c->ix.id;
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
    return id;
}

uint64_t asset_batch_on_item_completed(asset_batch_t *b,
                                       void (*cb)(asset_batch_t *b, asset_handle_t *h, void *user),
                                       void *user) {
    if (!b || !cb) return 0;
    batch_cb_t *c = asset__calloc(1, sizeof *c);
    if (!c) return 0;
    c->item = cb;
    c->user = user;
    c->is_item = true;
    return add_cb(b, c);
}

uint64_t asset_batch_on_completed(asset_batch_t *b, void (*cb)(asset_batch_t *b, void *user),
                                  void *user) {
    if (!b || !cb) return 0;
    batch_cb_t *c = asset__calloc(1, sizeof *c);
    if (!c) return 0;
    c->done = cb;
    c->user = user;
    return add_cb(b, c);
}

bool asset_batch_disconnect(asset_batch_t *b, uint64_t id) {
    if (!b || !id) return false;
    asset_server_t *s = b->server;
    bool found = false;
    uv_mutex_lock(&s->lock);
    /* by its id in the server's index, which holds those that may still fire (a fired
     * or silenced one left it): a handle's (owner set) or another batch's is not b's */
    asset__cb_t *x = asset__cbix_get(s, id);
    batch_cb_t *c = x && !x->owner ? (batch_cb_t *)(void *)x : NULL;
    if (c && c->batch == b) {
        found = true;
        asset__cbix_remove(s, &c->ix);
        if (!b->queued) {
            cb_unlink(b, c);
            asset_free(c);
        } else {
            c->fired = true; /* a dispatch may be walking the list: just silence it */
            c->item = NULL;
        }
    }
    uv_mutex_unlock(&s->lock);
    return found;
}

static bool batch_done(void *b) { return ((asset_batch_t *)b)->done; }

/* [lock] Whether a flush would move the batch on: a group whose children are all known
 * waits until every one is decided and is then delivered in one flush, instead of
 * waking its waiter once per child (a folder or manifest needs flushes to expand). */
static bool batch_ready(void *arg) {
    asset_batch_t *b = arg;
    return b->kind != KIND_GROUP || b->n_decided >= b->count; /* a group is listed at birth */
}

void asset__batch_child_decided(asset_server_t *s, asset_handle_t *h) {
    asset_batch_t *b = h->batch;
    if (++b->n_decided == b->count && b->kind == KIND_GROUP && s->lazy_waiters)
        uv_cond_broadcast(&s->done_cond);
}

/* [lock] Run-on-wait for a batch (asset__wait): its children's jobs that are still
 * queued, in the batch's order, and what their parses declared, at any depth
 * (asset__walk_next). */
static asset__job_t *batch_help(void *arg, asset__walk_t *w) {
    asset_batch_t *b = arg;
    /* first the folder's listing or the manifest, still to come: the children need it.
     * It was no child, so it waited for a worker: a task waiting for a folder on the
     * only worker (or with every worker so held) waited until its timeout (a review).
     * It declares no dependencies: its job alone */
    if (b->source && asset__job_runnable_here(b->source->job)) return b->source->job;
    for (;;) {
        asset__job_t *j = asset__walk_next(b->server, w);
        if (j || w->next_root >= b->count) return j;
        asset_handle_t *h = b->items[w->next_root++]->h;
        if (h) (void)asset__walk_enter(b->server, w, h); /* no memory: a worker's */
    }
}

/* [lock] The wait's own reference: a callback its flush fires may release the batch. */
static void batch_hold(void *arg, bool on) {
    asset_batch_t *b = arg;
    if (on) {
        b->refs++;
        return;
    }
    b->refs--;
    batch_maybe_free(b);
}

static asset_status_t batch_result(void *arg) { return ((asset_batch_t *)arg)->status; }

/* [lock] Whether o is a root of batch_help's walk: a child. */
static bool batch_root(void *arg, const asset_handle_t *o) { return o->batch == arg; }

/* [lock] What the wait waits for: the children known so far. */
static bool batch_nth(void *arg, size_t i, asset_handle_t **h) {
    asset_batch_t *b = arg;
    *h = i < b->count ? b->items[i]->h : NULL;
    return i < b->count;
}

asset_status_t asset_batch_wait(asset_batch_t *b, int64_t timeout_ms) {
    if (!b) return ASSET_E_INVALID;
    static const asset__wait_ops_t ops = {batch_done,   batch_ready, batch_help, batch_hold,
                                          batch_result, batch_root,  batch_nth};
    return asset__wait(b->server, &ops, b, timeout_ms, NULL);
}
