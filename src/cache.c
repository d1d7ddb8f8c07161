/* cache.c - one byte-budget LRU cache per loader, keyed on URI; an entry holds one
 * version and one reference on a shared value. The server lock guards it. */
#include "internal.h"

#include <string.h>

const char asset__version_immutable[] = "immutable";

static bool frees_on_flush_thread(const asset__loader_slot_t *ld) {
    return ld && (ld->vt.flags & ASSET_LOADER_FREE_ON_FLUSH_THREAD);
}

static asset__value_t *value_new(asset_server_t *s, asset__loader_slot_t *ld, bool extra, bool slot,
                                 size_t room) {
    extra = extra || frees_on_flush_thread(ld);
    size_t head = sizeof(asset__value_t) + (extra ? sizeof(asset__value_extra_t) : 0) +
                  (slot ? sizeof(asset_bytes_t) : 0);
    asset__value_t *v;
    if (!room) {
        if (!(v = asset__calloc(1, head))) return NULL;
    } else { /* the room is not zeroed: its entry is written whole (asset__cache_put) */
        if (room > SIZE_MAX - head || !(v = asset_alloc(head + room))) return NULL;
        memset(v, 0, head);
        memcpy((char *)v + head, &room, sizeof room); /* a free room's size */
    }
    atomic_init(&v->refs, 1);
    v->loader = ld;
    v->has_slot = slot;
    v->room = room ? ASSET__ROOM_FREE : ASSET__ROOM_NONE;
    if (extra) {
        v->has_x = true;
        asset__value_x(v)->server = s;
    }
    return v;
}

asset__value_t *asset__value_new(asset_server_t *s, asset__loader_slot_t *ld, bool extra) {
    return value_new(s, ld, extra, false, 0);
}

asset__value_t *asset__value_new_slotted(asset_server_t *s, asset__loader_slot_t *ld, bool extra) {
    return value_new(s, ld, extra, true, 0);
}

asset__value_t *asset__value_new_roomy(asset_server_t *s, asset__loader_slot_t *ld, bool slot,
                                       size_t entry_size) {
    /* a room too small for an entry's fixed part is no room */
    return value_new(s, ld, false, slot,
                     entry_size >= sizeof(asset__cache_entry_t) ? entry_size : 0);
}

/* A free room's size (asset__value_room), which its first bytes hold. */
static size_t room_size(const asset__value_t *v) {
    size_t n;
    memcpy(&n, asset__value_room(v), sizeof n);
    return n;
}

bool asset__value_add_extra(asset_server_t *s, asset__value_t **pv) {
    if ((*pv)->has_x) return true;
    /* nothing shares the record, so its room holds no entry (which could not move) */
    if ((*pv)->room == ASSET__ROOM_USED) return false;
    size_t slot = (*pv)->has_slot ? sizeof(asset_bytes_t) : 0;
    size_t room = (*pv)->room == ASSET__ROOM_FREE ? room_size(*pv) : 0;
    bool in_slot = slot && (*pv)->value == asset__value_slot(*pv);
    asset__value_t *v = asset_realloc(*pv, sizeof *v + sizeof(asset__value_extra_t) + slot + room);
    if (!v) return false;
    /* the slot and the room stay last: after the extra part */
    if (slot + room) memmove((char *)(v + 1) + sizeof(asset__value_extra_t), v + 1, slot + room);
    if (!room) v->room = ASSET__ROOM_NONE; /* a spent one is not kept */
    v->has_x = true;
    asset__value_extra_t *x = asset__value_x(v);
    memset(x, 0, sizeof *x);
    x->server = s;
    if (in_slot) v->value = asset__value_slot(v);
    *pv = v;
    return true;
}

void asset__value_free_now(asset__value_t *v) {
    asset__value_extra_t *x = asset__value_x(v);
    asset__loader_slot_t *ld = v->loader;
    if (x) {
        asset__labels_free(x->labels, x->nlabels, &x->label_ix);
        asset_free(x->base);
        /* x->deps: released by asset__values_drain, which a value with any goes through */
    }
    if (v->value && v->value == asset__value_slot(v) && !(x && x->free_fn))
        /* the bytes loader's record, in this one: its buffer alone (bytes_free would
         * free the record under us) */
        asset_free((void *)((asset_bytes_t *)v->value)->data);
    else
        asset__loader_free_value(ld, v->value, x ? x->free_fn : NULL, x ? x->free_user : NULL);
    asset_free(v); /* the extra part and the slot too: one block */
}

void asset__loader_free_value(const asset__loader_slot_t *ld, void *value,
                              void (*free_fn)(void *value, void *user), void *free_user) {
    /* user code, maybe under the server's lock (an eviction, clear_caches, a handle's
     * release): a handle it releases is released by the next flush instead (a value
     * holding handles of its server deadlocked on that lock: a review) */
    if (!value) return; /* a NULL value (a load may set one): nothing to free (a review) */
    asset__thread_freeing++;
    if (free_fn)
        free_fn(value, free_user);
    else if (ld->vt.free_value)
        ld->vt.free_value(ld->ctx, value);
    else
        asset_free(value);
    asset__thread_freeing--;
}

void asset__value_release(asset__value_t *v) {
    if (!v || atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) != 1) return;
    asset__value_extra_t *x = asset__value_x(v);
    /* dependency handles need the lock, which the caller may hold; GPU-like values
     * need the flush thread: both wait in a lock-free list for the next flush (such a
     * value always has its extra part: asset__value_new) */
    if (x && x->server && (x->deps || frees_on_flush_thread(v->loader))) {
        asset_server_t *s = x->server;
        asset__value_t *head = atomic_load_explicit(&s->dead_values, memory_order_relaxed);
        do x->dead_next = head;
        while (!atomic_compare_exchange_weak_explicit(&s->dead_values, &head, v,
                                                      memory_order_release, memory_order_relaxed));
        /* a host that sleeps until woken must hear of it: an eviction by a worker or a
         * budget change on another thread left a GPU value waiting for an unrelated event
         * (a review). The caller wakes it after its unlock (asset__maybe_wake); a flush
         * that frees it first takes the flag back (asset__values_drain) */
        atomic_store(&s->dead_wake, true);
        return;
    }
    asset__value_free_now(v);
}

void asset__cache_init(asset__cache_t *c, size_t budget) {
    memset(c, 0, sizeof *c);
    asset__map_init_inline(&c->map);
    c->budget = budget;
    c->epoch_ns = asset__now_ns();
}

static void lru_unlink(asset__cache_t *c, asset__cache_entry_t *e) {
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push_front(asset__cache_t *c, asset__cache_entry_t *e) {
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    else
        c->lru_tail = e;
    c->lru_head = e;
}

size_t asset__value_charge(const asset__value_t *v) {
    size_t sum = v->cost;
    const asset__value_extra_t *x = asset__value_x(v);
    for (size_t i = 0; x && i < x->nlabels; i++) { /* set by the parse, fixed since */
        size_t c = x->labels[i].value->cost;
        sum = c > SIZE_MAX - sum ? SIZE_MAX : sum + c;
    }
    return sum;
}

static void entry_drop(asset__cache_t *c, asset__cache_entry_t *e) {
    asset__value_t *v = e->value;
    asset__map_link_remove(&c->map, &e->link);
    /* a budget lowered, entries invalidated: the table a larger count grew goes back as
     * the count falls (only an emptied one was given back: a cache kept a table of its
     * high-water count, 8 MiB after a million entries, for good). No walk of the map
     * is under way: the cache's walks follow its LRU list */
    asset__map_trim(&c->map);
    lru_unlink(c, e);
    c->bytes -= asset__value_charge(v);
    if (v->room == ASSET__ROOM_USED && (void *)e == asset__value_room(v))
        v->room = ASSET__ROOM_SPENT; /* its size is gone: the next entry has a block */
    else
        asset_free(e);       /* key, version and digest: one block */
    asset__value_release(v); /* last: it may free the record, and the room with it */
}

/* the map finds the key right after the link, where asset__cache_entry_key puts it */
_Static_assert(offsetof(asset__cache_entry_t, link) + sizeof(asset__map_link_t) ==
                   sizeof(asset__cache_entry_t),
               "a cache entry's link is its last field, unpadded");

static asset__cache_entry_t *entry_of(asset__map_link_t *l) {
    return l ? (asset__cache_entry_t *)((char *)l - offsetof(asset__cache_entry_t, link)) : NULL;
}

/* The version's kind, as an entry stores it (ASSET__CV_*); the first byte tested before
 * the strcmp (a file's version starts with a digit or a '-'). */
static uint32_t version_kind(const char *version) {
    return !version ? ASSET__CV_NONE
           : version[0] == asset__version_immutable[0] && !strcmp(version, asset__version_immutable)
               ? ASSET__CV_IMMUTABLE
               : ASSET__CV_INLINE;
}

size_t asset__cache_entry_size(const char *uri, const char *version, const char *sha256) {
    return sizeof(asset__cache_entry_t) + strlen(uri) + 1 +
           (version_kind(version) == ASSET__CV_INLINE ? strlen(version) + 1 : 0) +
           (sha256 ? strlen(sha256) + 1 : 0);
}

/* The strings after the key, in the order they were written (asset__cache_put). */
const char *asset__cache_entry_version(const asset__cache_entry_t *e) {
    switch (e->link.aux & ASSET__CV_MASK) {
    case ASSET__CV_IMMUTABLE: return asset__version_immutable;
    case ASSET__CV_INLINE: {
        const char *k = asset__cache_entry_key(e);
        return k + strlen(k) + 1;
    }
    default: return NULL;
    }
}

const char *asset__cache_entry_sha256(const asset__cache_entry_t *e) {
    if (!(e->link.aux & ASSET__CE_SHA256)) return NULL;
    const char *p = asset__cache_entry_key(e);
    p += strlen(p) + 1;
    if ((e->link.aux & ASSET__CV_MASK) == ASSET__CV_INLINE) p += strlen(p) + 1;
    return p;
}

/* Ticks since the cache's epoch: not truncated, so an entry's age is right however old
 * it is (its 29 bits, masked, wrapped after 2^29 ticks: one 105 days old read 1 day) */
static uint64_t ticks(const asset__cache_t *c, uint64_t now_ns) {
    return (now_ns - c->epoch_ns) >> ASSET__CE_TICK_SHIFT;
}

#define CE_TIME_MAX (UINT32_MAX >> ASSET__CE_TIME_SHIFT) /* the last tick an entry holds */

/* The epoch moves so that now is CE_TIME_MAX / 2 ticks after it (about 52 days: the next
 * move is as far): each entry's time moves back as much, one added before the new epoch
 * reads as added at it (older than 52 days, it may read younger, never less than that).
 * Once in 52 days of a cache's life, a walk of its entries. */
static void epoch_move(asset__cache_t *c, uint64_t now_ns) {
    uint64_t d = ticks(c, now_ns) - CE_TIME_MAX / 2;
    c->epoch_ns += d << ASSET__CE_TICK_SHIFT;
    for (asset__cache_entry_t *e = c->lru_head; e; e = e->lru_next) {
        uint32_t added = e->link.aux >> ASSET__CE_TIME_SHIFT;
        added = added > d ? (uint32_t)(added - d) : 0;
        e->link.aux =
            (e->link.aux & ((1u << ASSET__CE_TIME_SHIFT) - 1)) | (added << ASSET__CE_TIME_SHIFT);
    }
}

uint64_t asset__cache_entry_age_ns(const asset__cache_t *c, const asset__cache_entry_t *e,
                                   uint64_t now_ns) {
    /* a time before the epoch (read before the cache was made, or before the epoch
     * moved): before the entry was put too; taken as ticks it wrapped (centuries) */
    uint64_t added = e->link.aux >> ASSET__CE_TIME_SHIFT;
    uint64_t t = (int64_t)(now_ns - c->epoch_ns) > 0 ? ticks(c, now_ns) : 0; /* modulo 2^64 */
    return t > added ? (t - added) << ASSET__CE_TICK_SHIFT : 0;
}

asset__cache_entry_t *asset__cache_get(asset__cache_t *c, const char *uri) {
    return asset__cache_get_hashed(c, uri, asset__map_hash(uri));
}

asset__value_t *asset__cache_peek_n(const asset__cache_t *c, const char *uri, size_t n) {
    const asset__cache_entry_t *e = entry_of(asset__map_find_n(&c->map, uri, n));
    return e ? e->value : NULL;
}

bool asset__cache_has(const asset__cache_t *c, const char *uri) {
    return asset__map_find_hashed(&c->map, uri, asset__map_hash(uri)) != NULL;
}

/* Out of line on purpose: inlined into load.c's loop over stages and URIs, GCC 12 at
 * -O3 made a cache hit 248 ns instead of 156 (docs/performance.md, ninth round). The
 * stages are three loops, not a loop over stages: nothing for the compiler to
 * interchange. */
void asset__cache_prefetch_many(const asset__cache_t *const *c, const uint32_t *h, size_t n) {
    if (!ASSET__HAS_PREFETCH || n > ASSET__LOAD_SLICE) return;
    asset__map_link_t *const *b[ASSET__LOAD_SLICE];
    for (size_t i = 0; i < n; i++) /* the buckets */
        if ((b[i] = asset__map_bucket(&c[i]->map, h[i]))) asset__prefetch(b[i]);
    for (size_t i = 0; i < n; i++) { /* the entries and their keys: two lines at most */
        const asset__cache_entry_t *e = b[i] ? entry_of(*b[i]) : NULL;
        if (!e) continue;
        asset__prefetch(e);
        asset__prefetch((const char *)(e + 1) + 31);
    }
    for (size_t i = 0; i < n; i++) { /* what a hit writes: the reference count, the LRU */
        const asset__cache_entry_t *e = b[i] ? entry_of(*b[i]) : NULL;
        if (!e || e->link.hash != h[i]) continue;
        asset__prefetch_w(e->value);
        if (e->lru_prev) asset__prefetch_w(e->lru_prev);
        if (e->lru_next) asset__prefetch_w(e->lru_next);
    }
}

asset__cache_entry_t *asset__cache_find_hashed(asset__cache_t *c, const char *uri, uint32_t h) {
    return entry_of(asset__map_find_hashed(&c->map, uri, h));
}

/* asset__map_find_hashed for the cache's map, in line: its keys are inline (the key
 * follows the link, which ends the entry), so no test of the map's kind and no call
 * but strcmp's on a hit's path (docs/performance.md, forty-second round) */
static asset__cache_entry_t *find_entry(const asset__cache_t *c, const char *uri, uint32_t h) {
    asset__map_link_t *const *b = asset__map_bucket(&c->map, h);
    for (asset__map_link_t *l = b ? *b : NULL; l; l = l->next)
        if (l->hash == h && strcmp((const char *)(l + 1), uri) == 0) return entry_of(l);
    return NULL;
}

asset__cache_entry_t *asset__cache_get_hashed(asset__cache_t *c, const char *uri, uint32_t h) {
    asset__cache_entry_t *e = find_entry(c, uri, h);
    if (!e) return NULL;
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push_front(c, e);
    }
    return e;
}

/* Evicts least recently used entries until the cache holds at most limit bytes. */
static size_t evict_to(asset__cache_t *c, size_t limit) {
    size_t n = 0;
    while (c->bytes > limit && c->lru_tail) {
        if (c->server) /* formats nothing unless a log is set */
            asset__log(c->server, ASSET_LOG_DEBUG, "evicted %s from the %s cache (%zu bytes)",
                       asset__cache_entry_key(c->lru_tail), c->name ? c->name : "?",
                       asset__value_charge(c->lru_tail->value));
        entry_drop(c, c->lru_tail);
        c->evictions++;
        n++;
    }
    return n;
}

size_t asset__cache_evict(asset__cache_t *c) { return evict_to(c, c->budget); }

bool asset__cache_put(asset__cache_t *c, const char *uri, const char *version, const char *sha256,
                      asset__value_t *v) {
    return asset__cache_put_hashed(c, uri, asset__map_hash(uri), version, sha256, v);
}

bool asset__cache_put_hashed(asset__cache_t *c, const char *uri, uint32_t h, const char *version,
                             const char *sha256, asset__value_t *v) {
    asset__cache_entry_t *old = entry_of(asset__map_find_hashed(&c->map, uri, h));
    if (old) {
        if (old->value != v) old->value->dropped = true;
        entry_drop(c, old);
    }
    size_t charge = asset__value_charge(v);
    if (charge > c->budget) return false;
    /* one block: the entry, its key, its version (but the one every pkg:// file has),
     * its digest; in the value's record when it has room for it (a fresh value's first
     * entry: the block lives as long as the value, which the entry holds) */
    uint32_t kind = version_kind(version);
    size_t kl = strlen(uri) + 1, vl = kind == ASSET__CV_INLINE ? strlen(version) + 1 : 0;
    size_t dl = sha256 ? strlen(sha256) + 1 : 0;
    size_t need = sizeof(asset__cache_entry_t) + kl + vl + dl;
    size_t room = v->room == ASSET__ROOM_FREE ? room_size(v) : 0;
    asset__cache_entry_t *e;
    if (room >= need) {
        e = asset__value_room(v);
        v->room = ASSET__ROOM_USED;
    } else {
        room = 0;
        if (!(e = asset_alloc(need))) return false;
    }
    memset(e, 0, sizeof *e);
    char *key = (char *)(e + 1);
    memcpy(key, uri, kl);
    if (vl) memcpy(key + kl, version, vl);
    if (dl) memcpy(key + kl + vl, sha256, dl);
    uint64_t now = asset__now_ns();
    if (ticks(c, now) > CE_TIME_MAX) epoch_move(c, now); /* its time fits its bits */
    e->link.aux =
        kind | (sha256 ? ASSET__CE_SHA256 : 0) | (uint32_t)(ticks(c, now) << ASSET__CE_TIME_SHIFT);
    if (!asset__map_link_put_hashed(&c->map, &e->link, h)) {
        if (room) { /* the room is free again, with its size */
            memcpy(e, &room, sizeof room);
            v->room = ASSET__ROOM_FREE;
        } else {
            asset_free(e);
        }
        return false;
    }
    e->value = asset__value_retain(v);
    /* room first, then the charge: bytes + charge never exceeds the budget, so never
     * SIZE_MAX (added first, costs near SIZE_MAX under a budget of SIZE_MAX wrapped the
     * count to a few bytes and nothing was evicted: a review). e is in no LRU yet. */
    evict_to(c, c->budget - charge);
    lru_push_front(c, e);
    c->bytes += charge;
    return true;
}

bool asset__cache_remove(asset__cache_t *c, const char *uri) {
    asset__cache_entry_t *e = entry_of(asset__map_find(&c->map, uri));
    if (!e) return false;
    e->value->dropped = true;
    entry_drop(c, e);
    return true;
}

void asset__cache_clear(asset__cache_t *c) {
    while (c->lru_head) {
        c->lru_head->value->dropped = true;
        entry_drop(c, c->lru_head);
    }
}

void asset__cache_free(asset__cache_t *c) {
    asset__cache_clear(c);
    asset__map_free(&c->map);
}
