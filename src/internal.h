/* internal.h - types shared by the library's modules. Never installed.
 *
 * Locking. One mutex per server, `s->lock`, guards the scheduling state: the job
 * heap, the in-flight map, the completion queue, every handle's fields marked
 * [lock], the caches and the stats. The mem:// store and the pkg:// mounts have
 * their own locks, never held while taking s->lock (lock order: s->lock first, then
 * at most one leaf lock; leaf locks never call out).
 */
#ifndef ASSET_INTERNAL_H
#define ASSET_INTERNAL_H

#include "asset_server.h"

#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include "platform/atomic.h" /* <stdatomic.h>, or the shim where there is none */
#include <uv.h>

#include "map.h"
#include "uri.h"

#define ASSET__MAX_SOURCES 32
#define ASSET__MAX_LOADERS 32
/* a budgeted flush with none of the user's completions to stop after delivers at most
 * this many internal handles (revalidations' own) past its spent budget (handle.c) */
#define ASSET__FLUSH_INTERNAL_PAST_BUDGET 64
/* how deep jobs run by waits (run-on-wait) may nest on one thread: a job a wait runs
 * waits, and runs the next... (handle.c) */
#define ASSET__WAIT_RUN_DEPTH 32

/* ---- allocation (alloc.c) ---- */
void *asset__calloc(size_t n, size_t size);
/* memset(p, 0, n), called where the compiler cannot see n: GCC (its generic tuning)
 * expands a memset of a known size above 128 bytes into `rep stos`, whose start costs
 * more than the C library's vector stores; a handle's (224 bytes) was 8 % of a cache
 * hit (docs/performance.md). For records that hot paths clear. */
void asset__zero(void *p, size_t n);
/* The array a of *cap elements of size bytes, n of them used, with room for one more: a
 * itself while n < *cap, else a grown (asset_realloc) to twice *cap elements (first_cap
 * when *cap is 0) and *cap set. NULL, a and *cap as they were, when out of memory or
 * when the new size would pass SIZE_MAX. */
void *asset__grow_full(void *a, size_t *cap, size_t size, size_t first_cap);
/* asset__grow_full for an array whose first *cap elements may live in the caller's own
 * buffer in (not the allocator's: a struct's, or the stack's): while a is in, the grown
 * array is a new one with those elements copied, and in is left as it was; otherwise
 * as asset__grow_full. in may be NULL. */
void *asset__grow_from(void *a, const void *in, size_t *cap, size_t size, size_t first_cap);
static inline void *asset__grow(void *a, size_t *cap, size_t n, size_t size, size_t first_cap) {
    return n < *cap ? a : asset__grow_full(a, cap, size, first_cap); /* inline: hot paths */
}
/* The array a of *cap elements of size bytes, n of them used, given back as it empties:
 * halved (asset_realloc) once n is at most a quarter of *cap and *cap is over min_cap, so
 * that an array asset__grow doubled for a burst keeps no high-water size for good (half
 * full after, as many adds or removes as a copy costs before it grows or halves again).
 * Returns the array to use: a, *cap as it was, when it stays, or out of memory. */
void *asset__shrink_full(void *a, size_t *cap, size_t size);
static inline void *asset__shrink(void *a, size_t *cap, size_t n, size_t size, size_t min_cap) {
    return *cap > min_cap && n <= *cap / 4 ? asset__shrink_full(a, cap, size) : a;
}
char *asset__strdup(const char *s);

/* The length of the well-formed UTF-8 sequence at p, inside its n bytes (SIZE_MAX: a
 * NUL-terminated string, whose NUL ends a sequence as any byte that does not continue
 * it), 1 to 4; or 0: a stray or missing continuation byte, an overlong form, a surrogate,
 * past U+10FFFF, a sequence cut by the end. On 0, *bad (when bad is not NULL) is the
 * length of its maximal subpart (1 to 3): what a decoder replaces with one U+FFFD
 * (Unicode 3.9, the WHATWG Encoding standard: browsers and node). Any thread. */
static inline size_t asset__utf8_len(const unsigned char *p, size_t n, size_t *bad) {
    unsigned c = p[0];
    if (bad) *bad = 1;
    if (c < 0x80) return 1;
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c == 0xe0) lo = 0xa0;      /* overlong */
    if (c == 0xed) hi = 0x9f;      /* surrogates */
    if (c == 0xf0) lo = 0x90;      /* overlong */
    if (c == 0xf4) hi = 0x8f;      /* past U+10FFFF */
    for (size_t i = 1; i < len; i++, lo = 0x80, hi = 0xbf) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            if (bad) *bad = i;
            return 0;
        }
    }
    return len;
}
char *asset__strndup(const char *s, size_t n);
char *asset__vasprintf(const char *fmt, va_list ap);
char *asset__asprintf(const char *fmt, ...) ASSET_PRINTF(1, 2);
void asset__json_hooks_install(void);
/* How many asset_alloc/asset_realloc calls failed on this thread so far. */
unsigned asset__alloc_failures(void);

/* ---- time ---- */
static inline uint64_t asset__now_ns(void) { return uv_hrtime(); }

/* Hints to start reading p's cache line, or to take it for writing (no-ops where the
 * compiler has no prefetch: ASSET__HAS_PREFETCH 0, and then work done only to compute
 * an address to prefetch can be skipped). */
#if defined(__GNUC__) || defined(__clang__)
#define ASSET__HAS_PREFETCH 1
static inline void asset__prefetch(const void *p) { __builtin_prefetch(p); }
static inline void asset__prefetch_w(const void *p) { __builtin_prefetch(p, 1); }
#else
#define ASSET__HAS_PREFETCH 0
static inline void asset__prefetch(const void *p) { (void)p; }
static inline void asset__prefetch_w(const void *p) { (void)p; }
#endif

/* ---- dependency arrays (graph.c) ---- */
/* The handles a parent declared, in order, one reference each: its job's while it
 * loads, then its value's; a parent handle that failed or was cancelled holds the array
 * too, so that what asset_handle_dependency() lent stays valid while that handle lives.
 * Frozen once shared (refs > 1): the job copies it before it adds more. [lock] */
typedef struct asset__deps {
    unsigned refs;
    size_t n, cap;
    bool uncounted; /* [lock] its value found no memory for its counts (dependents.c) */
    struct asset__dependent *dependent; /* [lock] its value's places there (dependents.c:
                                           set by asset__dependents_add, else unset) */
    struct asset_handle *h[];
} asset__deps_t;
static inline size_t asset__deps_n(const asset__deps_t *d) { return d ? d->n : 0; }
/* [lock] Drops one reference; the last releases every handle (only frees the array
 * once destroy frees all handles: s->handles_gone). */
void asset__deps_unref(asset_server_t *s, asset__deps_t *d);

/* ---- values: ref-counted loader results shared by the cache and handles ---- */
typedef struct asset__loader_slot asset__loader_slot_t;
typedef struct asset__label asset__label_t;
/* Labels by name (graph.c), so that an atlas of 40,000 sprites neither checks each new
 * label against every earlier one nor makes each "uri#label" handle scan them under the
 * lock: open addressing, each slot a label's index + 1 (0: free), at most half full.
 * Empty (slots NULL) while there are few labels, or when memory ran out: then a scan. */
typedef struct asset__label_index {
    uint32_t *slots;
    size_t mask; /* slots - 1, a power of two less one */
} asset__label_index_t;
/* What only some values carry (graph.c), in the record's own block when there: a value
 * with dependencies or labels, its own free (labels, tasks), or a loader that frees on
 * the flush thread. A plain cached value has none, so the common record stays small. */
typedef struct asset__value_extra {
    asset_server_t *server;
    asset__deps_t *deps;    /* dependency handles (one reference), or NULL */
    asset__label_t *labels; /* sub-assets, each its own value */
    size_t nlabels;
    void (*free_fn)(void *value, void *user); /* a labeled value's own free, or NULL */
    void *free_user;
    struct asset__value *dead_next; /* in s->dead_values until the flush thread frees it */
    uint64_t visit;                 /* [lock] a cycle search's mark (graph.c, value_cycle) */
    asset__label_index_t label_ix;  /* labels by name, when there are many (graph.c) */
    /* the URL its bytes came from after redirects, when not its URI (the request's base,
     * asset__request_set_base): what a manifest's entries resolve against, or NULL */
    char *base;
} asset__value_extra_t;
typedef struct asset__value {
    atomic_uint refs;
    bool has_x; /* its extra part follows the record (asset__value_new): asset__value_x */
    /* [lock] its cache entry was removed or replaced on purpose (invalidate, clear, a
     * newer value, a dependency's change), not evicted: a revalidation that finds it
     * current does not cache it again (job.c, NOT_MODIFIED). In the padding after has_x */
    bool dropped;
    /* the record ends with room for the built-in bytes loader's asset_bytes_t (after the
     * extra part, if any): its value is then inside the record, one block per value less
     * (asset__value_new_slotted, asset__value_slot). In the padding too */
    bool has_slot;
    /* the record's room for its cache entry (ASSET__ROOM_*, after the slot, if any): a
     * fresh value's first entry goes there, one block per cached value less
     * (asset__value_new_roomy, asset__cache_put). [lock] once the record is shared. In
     * the padding too */
    uint8_t room;
    void *value;
    size_t cost;
    asset__loader_slot_t *loader;
} asset__value_t;
static inline asset__value_extra_t *asset__value_x(const asset__value_t *v) {
    return v->has_x ? (asset__value_extra_t *)(void *)(v + 1) : NULL;
}
_Static_assert(sizeof(asset__value_extra_t) % _Alignof(asset_bytes_t) == 0,
               "the slot after a record's extra part is aligned for an asset_bytes_t");
/* The record's room for an asset_bytes_t, or NULL. It moves with the record
 * (asset__value_add_extra); the value is in it when v->value points at it. */
static inline void *asset__value_slot(const asset__value_t *v) {
    return v->has_slot ? (char *)(void *)(v + 1) + (v->has_x ? sizeof(asset__value_extra_t) : 0)
                       : NULL;
}
/* A record's room for its cache entry: none; free (its first size_t says how many bytes
 * it has); holding the record's entry (whose reference keeps the block alive); spent (its
 * entry left the cache: a later entry of the record is a block of its own) */
enum { ASSET__ROOM_NONE, ASSET__ROOM_FREE, ASSET__ROOM_USED, ASSET__ROOM_SPENT };
_Static_assert(sizeof(asset__value_t) % _Alignof(void *) == 0 &&
                   sizeof(asset__value_extra_t) % _Alignof(void *) == 0 &&
                   sizeof(asset_bytes_t) % _Alignof(void *) == 0,
               "a record's room for its cache entry is aligned for one");
/* The record's room for its cache entry, or NULL: last in the block, after the extra
 * part and the slot. It moves with the record (asset__value_add_extra) while free. */
static inline void *asset__value_room(const asset__value_t *v) {
    return v->room ? (char *)(void *)(v + 1) + (v->has_x ? sizeof(asset__value_extra_t) : 0) +
                         (v->has_slot ? sizeof(asset_bytes_t) : 0)
                   : NULL;
}
struct asset__label {
    char *name;
    asset__value_t *value; /* one reference */
};
/* One more reference on v (NULL: none). Inline: a cache hit takes one, and the call was
 * a tenth of its decision (docs/performance.md, fortieth round). Any thread. */
static inline asset__value_t *asset__value_retain(asset__value_t *v) {
    if (v) atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
    return v;
}
/* The last release frees the value, or queues it for the flush thread (values holding
 * dependency handles, and those of FREE_ON_FLUSH_THREAD loaders). Any thread, lock
 * held or not. */
void asset__value_release(asset__value_t *v);
void asset__value_free_now(asset__value_t *v); /* labels, deps array, the loader's free */
/* Frees a loader's value as its loader says: free_fn if any (asset_parse_set_value_fn),
 * else the loader's free_value, else asset_free. The caller decides the thread. */
void asset__loader_free_value(const asset__loader_slot_t *ld, void *value,
                              void (*free_fn)(void *value, void *user), void *free_user);
/* A record with one reference and no value yet; with `extra` (or a loader that frees
 * on the flush thread), its extra part too, server set. NULL: out of memory. */
asset__value_t *asset__value_new(asset_server_t *s, asset__loader_slot_t *ld, bool extra);
/* The same, with the room of asset__value_slot: for the built-in bytes loader's parse,
 * which puts its asset_bytes_t there (asset_parse_t's slot). */
asset__value_t *asset__value_new_slotted(asset_server_t *s, asset__loader_slot_t *ld, bool extra);
/* A parsed value's record (asset__value_new, no extra part), with the slot if `slot`, and
 * room for a cache entry of `entry_size` bytes (asset__cache_entry_size; 0: none). */
asset__value_t *asset__value_new_roomy(asset_server_t *s, asset__loader_slot_t *ld, bool slot,
                                       size_t entry_size);
/* Gives a record that nothing shares yet its extra part (it may move). False: out of
 * memory, *v unchanged. */
bool asset__value_add_extra(asset_server_t *s, asset__value_t **v);
/* The graph parts, empty for a value without them. */
static inline size_t asset__value_ndeps(const asset__value_t *v) {
    return v->has_x ? asset__deps_n(asset__value_x(v)->deps) : 0;
}
static inline size_t asset__value_nlabels(const asset__value_t *v) {
    return v->has_x ? asset__value_x(v)->nlabels : 0;
}
/* What a cache entry of v charges its cache: v's cost and its labeled values' (which
 * it holds, and which have no entry of their own). */
size_t asset__value_charge(const asset__value_t *v);

/* ---- caches (cache.c): byte-budget LRU keyed on URI, each entry one version ---- */
/* The version of what never changes (every pkg:// file): such an entry is served
 * without I/O, and all of them share this one string. */
extern const char asset__version_immutable[];
/* One block: the entry, then its key, its version unless it has none or is the shared
 * immutable one, and the digest it was verified against if any:
 *   [asset__cache_entry_t][key \0][version \0][sha256 \0]
 * A fresh value's first entry is in its record's block (asset__value_room), which lives
 * as long as the value (the entry holds a reference); any other has a block of its own.
 * link.aux holds the rest: the version's kind (ASSET__CV_*), whether a digest follows
 * (ASSET__CE_SHA256) and when the entry was added, in ASSET__CE_TICK_NS units since the
 * cache's epoch (introspection's age). 2^29 ticks (about 104 days) fit: past them a
 * put moves the epoch (cache.c epoch_move), and an entry older than 52 days may read
 * younger, never under 52 days.
 * A cached value costs what docs/performance.md (cache_overhead) counts. */
enum { ASSET__CV_NONE = 0, ASSET__CV_IMMUTABLE = 1, ASSET__CV_INLINE = 2, ASSET__CV_MASK = 3 };
enum { ASSET__CE_SHA256 = 4, ASSET__CE_TIME_SHIFT = 3, ASSET__CE_TICK_SHIFT = 24 };
#define ASSET__CE_TICK_NS ((uint64_t)1 << ASSET__CE_TICK_SHIFT) /* about 16.8 ms */
typedef struct asset__cache_entry {
    asset__value_t *value;                          /* the cache's reference */
    struct asset__cache_entry *lru_prev, *lru_next; /* head: most recent */
    asset__map_link_t link; /* last: the key follows it (an inline-keyed map) */
} asset__cache_entry_t;
static inline const char *asset__cache_entry_key(const asset__cache_entry_t *e) {
    return (const char *)(e + 1);
}
/* Whether an entry of an immutable source is served without I/O: unless it carries a
 * real version (a watched directory mount), which is revalidated. */
static inline bool asset__cache_entry_immutable(const asset__cache_entry_t *e) {
    return (e->link.aux & ASSET__CV_MASK) != ASSET__CV_INLINE;
}
/* The bytes of the one block of a cache entry of uri with that version and digest: what
 * a value's record makes room for (asset__value_new_roomy) */
size_t asset__cache_entry_size(const char *uri, const char *version, const char *sha256);
const char *asset__cache_entry_version(const asset__cache_entry_t *e); /* or NULL */
const char *asset__cache_entry_sha256(const asset__cache_entry_t *e);  /* or NULL */

typedef struct asset__cache {
    asset__map_t map;
    asset__cache_entry_t *lru_head, *lru_tail;
    size_t budget, bytes;
    uint64_t hits, misses, evictions;
    struct asset_server *server; /* for the eviction log line; NULL: silent */
    const char *name;            /* its loader's name, for the same */
    uint64_t epoch_ns;           /* entries' times count from it (made; moved: epoch_move) */
} asset__cache_t;

void asset__cache_init(asset__cache_t *c, size_t budget);
void asset__cache_free(asset__cache_t *c);
/* Borrowed entry or NULL; touches it in the LRU. */
asset__cache_entry_t *asset__cache_get(asset__cache_t *c, const char *uri);
/* The value cached for uri's first n bytes, or NULL; its place in the LRU unchanged (a
 * search's look is no use). */
asset__value_t *asset__cache_peek_n(const asset__cache_t *c, const char *uri, size_t n);
/* The same, with h = asset__map_hash(uri) (computed before the lock). */
asset__cache_entry_t *asset__cache_get_hashed(asset__cache_t *c, const char *uri, uint32_t h);
/* The same, its place in the LRU unchanged: a reload's look (an http_poll_ms poll, a
 * watch's event) is no use of the asset. */
asset__cache_entry_t *asset__cache_find_hashed(asset__cache_t *c, const char *uri, uint32_t h);
/* [lock] Hints for coming gets of hashes h[0..n) in caches c[0..n) (n <= ASSET__LOAD_SLICE):
 * stage 0 fetches each one's bucket, stage 1 (once those arrived) each bucket's first
 * entry and key, stage 2 what a hit on that entry writes (its value record's reference
 * count, its LRU neighbours). Each stage runs for all of them before the next, so that
 * their cache misses overlap (load.c, the group's hits). Changes nothing. One call for
 * the slice: a call per URI and stage was about 70 instructions a hit. */
void asset__cache_prefetch_many(const asset__cache_t *const *c, const uint32_t *h, size_t n);
/* Inserts (replacing any entry for uri) and evicts to the budget. Takes a new reference
 * on v. version (or NULL: unversioned) and sha256 (the digest the bytes were verified
 * against, or NULL) are copied. A value larger than the budget is not cached. Returns
 * false if not cached. */
bool asset__cache_put(asset__cache_t *c, const char *uri, const char *version, const char *sha256,
                      asset__value_t *v);
/* The same, with h = asset__map_hash(uri) (a job's: asset__job_uri_hash). */
bool asset__cache_put_hashed(asset__cache_t *c, const char *uri, uint32_t h, const char *version,
                             const char *sha256, asset__value_t *v);
/* Nanoseconds since e was added, to ASSET__CE_TICK_NS. */
uint64_t asset__cache_entry_age_ns(const asset__cache_t *c, const asset__cache_entry_t *e,
                                   uint64_t now_ns);
bool asset__cache_remove(asset__cache_t *c, const char *uri);
/* Whether uri has an entry (the LRU order untouched). */
bool asset__cache_has(const asset__cache_t *c, const char *uri);
/* Evicts least recently used entries until bytes <= budget; returns how many. */
size_t asset__cache_evict(asset__cache_t *c);
void asset__cache_clear(asset__cache_t *c);

/* ---- registries ---- */
typedef struct asset__source_slot {
    asset_source_t vt; /* immutable once registered */
    char *scheme;
    void *ctx;
    unsigned users;                          /* [lock] jobs that read through this slot */
    struct asset__source_slot *next_retired; /* [lock] replaced: destroyed at users == 0 */
    bool retired; /* [lock] replaced: no load joins its jobs, nothing it read is cached */
    /* IMMUTABLE, but an entry it gave a version of its own (not asset__version_immutable)
     * is revalidated: the built-in pkg source, whose watched directory mounts are
     * mutable. Set once, at create. Any other IMMUTABLE source's hits need no I/O. */
    bool versions_revalidate;
} asset__source_slot_t;
typedef struct asset__loaders asset__loaders_t;

struct asset__loader_slot {
    asset_loader_t vt;
    char *name;
    void *ctx;
    asset__cache_t cache;                      /* [lock] */
    uint64_t parses, parse_failures, parse_ns; /* [lock] introspection (introspect.c) */
};

/* ---- requests (request.c): what a source writes into ---- */
struct asset_request {
    struct asset__job *job;
    asset_server_t *server;
    const char *uri;            /* job's normalised URI */
    const char *path;           /* after scheme:// */
    const char *cached_version; /* job's, or NULL */
    char *version;              /* set by the source */
    uint8_t *data;              /* size + 1 bytes, NUL-terminated once finished */
    size_t size, cap;
    void (*adopt_free)(void *data, void *user); /* non-NULL-or-adopted: see adopted */
    void *adopt_user;
    bool adopted;
    bool adopt_terminated; /* adopted data has data[size] == 0 already */
    char *message;         /* from asset_request_fail */
    int http_status;
    size_t max_size;
    asset_status_t refused; /* a write or adopt refused (TOO_LARGE, NO_MEMORY): the
                               read fails with it even if the source says OK */
    bool lent;              /* adopted data lent without a copy (asset__request_lend) */
    char version_buf[96];   /* version lives here when it fits (a file's always does) */
    /* it failed for a state that passes (asset__errno_transient: a file another program
     * holds without sharing): a reload of it is tried again (reload.c) */
    bool transient;
    /* the read is over (its source returned, or asset_request_finish was called): a
     * later asset_request_finish is a source's misuse, refused (the worker keeps the
     * request for its next read, so it acted on another job: a review) */
    atomic_bool closed;
    /* what the bytes' relative references resolve against, when it is not uri: the URL
     * an http answer came from after redirects (asset__request_set_base), or NULL */
    char *base;
    /* [lock] 1 + its job's index in s->requeued while the job is listed there, queued
     * again for its parse (pool_heap.c), or 0: here, not in the job, which every load
     * pays for and only an ASYNC read's ever lists (the job's request lives until the
     * job is freed, after it left the queue) */
    size_t requeued_slot;
};
void asset__request_init(struct asset_request *r, struct asset__job *job);
void asset__request_reset_data(struct asset_request *r);
void asset__request_dispose(struct asset_request *r);
/* asset_request_fail for the library itself, also once the read is over (in
 * asset_request_finish), where a source's call is refused. */
asset_status_t asset__request_fail(struct asset_request *r, asset_status_t st, const char *fmt, ...)
    ASSET_PRINTF(3, 4);
/* The URL r's answer came from after redirects (url, as libcurl or fetch() says it, is
 * normalised here), what the references of its bytes resolve against (asset_parse_depend)
 * instead of r->uri, which stays the URI of the cache and of reloads; NULL: r->uri again.
 * ASSET_E_NO_MEMORY, or ASSET_E_INVALID for a URL that is no URI here (too long), with
 * *why set and r->uri kept. */
asset_status_t asset__request_set_base(struct asset_request *r, const char *url, const char **why);
/* The URI the references of r's bytes resolve against: r->base, else r->uri. */
static inline const char *asset__request_base(const struct asset_request *r) {
    return r->base ? r->base : r->uri;
}
/* The request's version is its version_buf from now on (the one it had let go): for a
 * version written there in place, not copied in by asset_request_set_version. */
char *asset__request_version_buf(struct asset_request *r);
/* Make room for n more bytes (for sources that know the size up front). */
asset_status_t asset__request_reserve(struct asset_request *r, size_t n);
/* Pointer to the NUL-terminated, owned buffer (copies an adopted one that has no
 * room for the terminator). */
asset_status_t asset__request_seal(struct asset_request *r);

struct asset_parse {
    struct asset_request *req;
    void *value;
    size_t cost;
    bool has_value;
    char *message;
    asset__label_t *labels; /* asset_parse_add_labeled, moved into the value */
    size_t nlabels;
    bool depended; /* asset_parse_depend was called: the value needs its extra part */
    void (*free_fn)(void *value, void *user); /* asset__parse_set_value_free, or NULL */
    void *free_user;
    size_t labels_cap;             /* labels allocated (grown by doubling) */
    asset__label_index_t label_ix; /* labels by name, moved into the value with them */
    const uint8_t *taken;          /* the bytes take_data (or borrow) handed over, or NULL: still
                                    * asset_parse_data's, and a second take has none to give */
    void *slot; /* the value record's room for the bytes loader's asset_bytes_t, or NULL */
};

struct asset_finalize {
    struct asset__job *job;
    asset__value_t *v;
    char *message;
};

struct asset_list {
    bool recursive;
    char **paths;
    int64_t *sizes;
    size_t count, cap;
    char *message;
    const char *uri;
    const char *path; /* decoded path of uri */
    /* an asset_list_add that failed (its entry dropped): the listing fails with it, even
     * when the source returns ASSET_OK (a listing is complete or fails) */
    asset_status_t add_failed;
    /* the LIST job's flag (run_list): a long walk (fs.c) stops at a cancel or destroy */
    atomic_bool *cancelled; /* not const: the Windows shim loads by a compare-exchange */
};
void asset__list_dispose(struct asset_list *l);
/* true once the listing's job is cancelled (every handle left, or destroy) */
bool asset__list_cancelled(const struct asset_list *l);

/* ---- jobs: one unit of work, shared by every handle that coalesced onto it ---- */
enum { ASSET__PHASE_READ, ASSET__PHASE_PARSE };
enum {
    ASSET__JOB_QUEUED,
    ASSET__JOB_RUNNING,
    ASSET__JOB_WAITING_ASYNC,
    ASSET__JOB_WAITING_DEPS, /* parsed; dependencies unfinished (no thread on it) */
    ASSET__JOB_FINALIZING    /* in the flush side's finalize queue */
};

/* What only a job with dependencies or a finalize step needs (graph.c, finalize.c),
 * made by its first dependency or when its parse ends: a plain load has none, so the
 * record of a pending load stays small (asset_bench's scale). All [lock]. */
typedef struct asset__job_graph {
    asset__deps_t *deps; /* dependency handles (one reference) until the value takes
                            them, or NULL */
    size_t deps_pending; /* dependencies not decided yet */
    char *dep_message;
    asset__value_t *pvalue;        /* the value waiting for dependencies or finalize */
    struct asset__job *graph_next; /* in s->graph_ready */
    struct asset__job *fin_next;   /* in the finalize queue */
    uint64_t visit;                /* cycle search mark */
    struct asset__job *visit_from;
    asset_status_t dep_status;     /* first required dependency failure, or OK */
    struct asset__job *raise_next; /* on the stack of a priority raise (graph.c) */
    /* the sum of its dependencies' published versions at its first finalize call: a
     * finalize that spans flushes (PENDING) builds on what it read then; a dependency
     * reloaded meanwhile makes it reload once done (finalize.c) */
    uint64_t fin_versions;
    /* the finalize run (s->fin_run) during whose callback it was queued, or 0: it waits
     * for the next flush (finalize.c) */
    uint64_t fin_arrived;
    bool fin_started;
    uint8_t progress_depth; /* the depth a progress walk marked (visit) reached it at */
    uint64_t cycle_mark;    /* the mark of values its value cycle searches walked (graph.c) */
    uint64_t wait_mark;     /* the mark of the last run-on-wait walk through it (asset__walk_t) */
    /* asset__walk_owns's search upward, its own (not the cycle search's visit nor a
     * raise's raise_next): its mark, and the next job on its stack */
    uint64_t owns_mark;
    struct asset__job *owns_next;
} asset__job_graph_t;

typedef struct asset__job {
    /* first (a map node is cast to its job), then ordered by size so that no field pads
     * another */
    asset__map_node_t
        node;   /* in s->inflight, key: uri (shared by jobs of other loaders: find_inflight) */
    char *uri;  /* normalised; owns the block of uri and path (asset__uri_parse), unless
                 * that block is the job's own (uri_inline) */
    char *path; /* decoded part after "scheme://", in uri's block; a task's is NULL */
    asset__source_slot_t *source;
    asset__loader_slot_t *loader;
    size_t heap_idx; /* [lock] its position in its ring (queue_ring), SIZE_MAX if none */
    char *sha256;    /* expected digest of the bytes, or NULL */
    struct asset_handle *handles;      /* [lock] attached handles */
    char *cached_version;              /* the cache's version when the job started */
    asset__value_t *cached;            /* ref held for NOT_MODIFIED */
    _Atomic(uint64_t) received, total; /* progress, any thread */
    struct asset_request *req;         /* made when a worker starts the read */
    struct asset__job_graph *g;        /* [lock] the graph's part, or NULL (below) */
    struct asset__task *task;          /* a spawned task (spawn.c) instead of a read and parse */
    uint64_t trace_id;                 /* introspection and traces (trace.c): serial, never 0 */
    uint64_t queued_ns;                /* when the job was created */
    unsigned live;                     /* [lock] handles attached */
    asset_status_t read_status;        /* ASYNC: set by asset_request_finish */
    /* [lock] of the attached handles, those HIGH and those NORMAL (the rest are LOW): its
     * best priority without a walk of them (each priority change and cancel walked every
     * coalesced handle) */
    uint32_t nprio[2];
    /* small numbers, then flags */
    int8_t priority;       /* [lock] an asset_priority_t */
    int8_t queue_ring;     /* [lock] the ring it is queued in (pool_heap.c) */
    int8_t phase;          /* [lock] ASSET__PHASE_* */
    int8_t state;          /* [lock] ASSET__JOB_* */
    atomic_bool cancelled; /* every handle left: stop at the next check */
    /* set as it is made, then only read (any thread): one byte of their own */
    uint8_t no_cache : 1;
    uint8_t is_list : 1;    /* a LIST job: source->list, value is a struct asset_list */
    uint8_t recursive : 1;  /* LIST jobs */
    uint8_t map_file : 1;   /* the load opted in to mapping a file:// file */
    uint8_t uri_inline : 1; /* uri's block is the job's own (load.c): freed with it */
    uint8_t label_base : 1; /* a reload's revalidation whose cached is a label's value, lent
                             * for its version only (asset__reload_live_base): a
                             * NOT_MODIFIED caches nothing, and no load joins it */
    uint8_t polled : 1;     /* an http_poll_ms poll's reload: it marks the loads in flight
                             * stale only once it read a change (asset__reload_poll_read) */
    uint8_t uri_slab : 1;   /* its block (uri_inline) was carved from a slab (uri.h) */
    uint8_t : 0;
    /* [lock], every access: one byte (bit-fields share it) */
    uint8_t mapped : 1;         /* in s->inflight */
    uint8_t finishing : 1;      /* deciding its handles: detaching does not cancel */
    uint8_t async_done : 1;     /* asset_request_finish was called */
    uint8_t parsed_done : 1;    /* parse returned: no dependency is added any more */
    uint8_t abandoned : 1;      /* every handle left while waiting: free at the next step */
    uint8_t in_graph_ready : 1; /* in the graph's ready list */
    uint8_t stale : 2;          /* ASSET__STALE_*: its URI changed after its read began */
    uint8_t changed : 1;        /* [lock] its mem:// key was put or removed, its package
                                 * mounted again, or its URI invalidated or every cache
                                 * cleared, after its read began: a later load does
                                 * not join it and its value is not cached (the old bytes;
                                 * a pkg:// entry is served without I/O) (asset__jobs_changed,
                                 * asset__jobs_remounted, asset__jobs_cleared) */
} asset__job_t;
/* The room a parse leaves before a URI for the job a miss makes there (load.c,
 * asset__uri_parse_room): a job and its URI are one block, the job first. */
#define ASSET__JOB_ROOM                                                           \
    ((sizeof(asset__job_t) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * \
     _Alignof(max_align_t))
enum {
    ASSET__STALE_NONE,
    ASSET__STALE,       /* once decided, its handles revalidate (reload.c) */
    ASSET__STALE_FORCED /* ... reload with a fresh parse (asset_server_reload) */
};
/* asset__map_hash(j->uri), hashed once: every job is put in s->inflight as it is made
 * (load.c, spawn.c), which sets its node's hash, and keeps it after it leaves. */
static inline uint32_t asset__job_uri_hash(const asset__job_t *j) { return j->node.link.hash; }
/* [lock] The best (lowest) priority of j's attached handles; LOW when it has none. */
static inline int asset__job_best_priority(const asset__job_t *j) {
    return j->nprio[0]   ? ASSET_PRIORITY_HIGH
           : j->nprio[1] ? ASSET_PRIORITY_NORMAL
                         : ASSET_PRIORITY_LOW;
}
/* [lock] Counts a handle of priority p on j (by +1) or off it (by -1). */
static inline void asset__job_count_prio(asset__job_t *j, int p, int by) {
    if (p < ASSET_PRIORITY_LOW) j->nprio[p - ASSET_PRIORITY_HIGH] += (uint32_t)by;
}
/* Every handle left it (or, waiting, it was marked abandoned): free it at its next
 * step. [lock] */
static inline bool asset__job_unwanted(const asset__job_t *j) {
    return j->abandoned || j->live == 0;
}
/* The job's dependencies so far (none without its graph part). [lock] */
static inline size_t asset__job_ndeps(const asset__job_t *j) {
    return j->g ? asset__deps_n(j->g->deps) : 0;
}
static inline struct asset_handle *const *asset__job_deps(const asset__job_t *j) {
    return j->g && j->g->deps ? j->g->deps->h : NULL;
}

/* A FIFO of queued jobs of one priority (pool_heap.c): positions head..tail, slot
 * pos & (cap - 1), NULL where a job was taken out of the middle. */
typedef struct asset__ring {
    asset__job_t **slots;
    size_t cap, head, tail, live;
} asset__ring_t;

/* A reload the next flush's end requests (reload.c): a dependency's parent, or a URI
 * that changed again while its reload ran. forced: a fresh parse; otherwise a
 * revalidation, which publishes nothing when the source is unchanged. */
typedef struct asset__reload_todo {
    asset__map_node_t node; /* in s->reload_todo_map; key: uri */
    bool forced;
    /* the loader whose handles of uri reload (a parent's re-parse: its file through
     * another loader, a level's raw bytes, did not change), or NULL: every loader */
    const asset__loader_slot_t *ld;
    bool dep; /* queued only by its dependencies' changes: not for a value built since on
               * what they show now (reload.c built_current) */
    char uri[];
} asset__reload_todo_t;

/* A reload of uri by ld that asset__reload_request (reload.c) is starting: from the
 * moment it decides to start one until the reload handle is marked in_reloading, a request
 * for the same reload marks the claim instead of starting a second one. Two reloads of
 * one asset at once could publish in the wrong order (a revalidation that began before
 * a fresh parse ended would put the older value back). On the requester's stack. */
typedef struct asset__reload_claim {
    struct asset__reload_claim *next;
    const char *uri;
    const asset__loader_slot_t *ld;
    bool again, forced, again_dep; /* as the reload_again bits of a running reload */
    bool no_cache;                 /* every live handle it reloads was loaded no_cache: so is it */
    bool map_file;                 /* some live handle it reloads was loaded map_file: so is it */
    int8_t priority;               /* the best of the live handles it reloads: its job's */
} asset__reload_claim_t;

/* ---- handles ---- */
typedef struct asset__cb {
    struct asset__cb *next;
    struct asset__cb *prev; /* the circle both ways: a disconnect unlinks in O(1) */
    uint64_t id;
    asset_handle_cb cb;
    void *user;
    struct asset_handle *owner; /* the handle whose list holds it (asset__cb_connect's) */
    bool reloaded;              /* in owner->rcbs, not owner->cbs */
    bool embedded; /* part of its owner's struct (a batch item): never freed on its own */
    bool locked;   /* internal: called with s->lock held (a batch item's), which it may
                      release and take again */
    bool owned;    /* an asset__owned_cb_t (asset_handle_on_reloaded_free) */
} asset__cb_t;

/* A reloaded callback whose user the caller wants back when it is dropped without a
 * disconnect: its handle freed, it waits in s->dropped_cbs for the next flush, which calls
 * free_user (destroy frees it without the call). */
typedef struct asset__owned_cb {
    asset__cb_t c; /* first: freed as an asset__cb_t */
    void (*free_user)(void *user);
} asset__owned_cb_t;

#define ASSET__HANDLE_MAGIC 0x48414e44u /* "HAND" */
#define ASSET__HANDLE_DEAD 0xdeadbeefu

struct asset_handle {
    /* ordered by size, so that no field pads another: every handle pays for it */
    uint32_t magic; /* ASSET__HANDLE_MAGIC while alive; poisoned when freed */
    int refs;       /* [lock] user references */
    asset_server_t *server;
    atomic_int state; /* written [lock]; terminal ones only by flush */
    /* result: decided [lock] before queueing, published by flush */
    asset_status_t status; /* [lock] */
    char *message;         /* [lock] */
    asset__value_t *value; /* [lock] */
    int16_t http_status;   /* [lock] three digits, or 0 (asset__handle_decide) */
    int8_t priority;       /* an asset_priority_t */
    bool pinned;           /* loaded with a sha256 (a manifest's): never reloaded */
    bool in_slab;          /* its block is shared (asset__handle_new_many): set once, made */
    uint8_t dep : 2;       /* [lock] ASSET__DEP_*: whether it is a dependency */
    uint8_t dep_prio : 2;  /* [lock] a dependency's own priority (o->priority, or what
                            * asset_handle_set_priority set on it), or 0: its parent's,
                            * which it follows down (priority.c) */
    bool optional;         /* as a dependency: failing does not fail the parent */
    bool reload;           /* an internal reload handle, never the user's */
    /* links */
    asset__job_t *job;                        /* [lock] */
    struct asset_handle *job_next, *job_prev; /* [lock] in j->handles: a detach is O(1) */
    struct asset_handle *queue_next;          /* [lock] */
    struct asset_handle *all_prev, *all_next; /* [lock] every live handle */
    uint64_t deadline_ns;                     /* [lock] */
    asset__cb_t *cbs; /* [lock] the LAST completion callback, whose next is the first (a
                       * circle: an append and taking the first are O(1)), or NULL */
    /* the graph */
    char *label;                   /* "uri#label": the sub-asset wanted, or NULL */
    struct asset__job *dep_parent; /* [lock] the job waiting for this handle, until decided */
    asset__deps_t *kept_deps;      /* [lock] decided failed or cancelled (not a dependency
                                    * itself): its job's dependencies, one array reference */
    uint64_t bytes;                /* [lock] bytes its load read, recorded when decided */
    /* hot reload (reload.c) */
    asset__loader_slot_t *loader; /* the loader its value came from, or NULL */
    /* published: 1 once LOADED, +1 per reload. Written [lock] by flush, after the state
     * and value it numbers (release); asset_handle_version() reads it on any thread */
    _Atomic(uint64_t) version;
    asset__cb_t *rcbs;            /* [lock] reloaded callbacks: the last, as cbs */
    asset__value_t *reload_value; /* [lock] pending value (OK) */
    char *reload_message;         /* [lock] pending message (failed) */
    uint64_t trace_id;            /* [lock] its job's trace id, once decided (trace.c) */
    struct asset_batch *batch;    /* [lock] the group it is a child of (batch.c), or NULL */
    uint32_t timeout_ms;
    uint32_t timer_idx;    /* [lock] index in s->timers, ASSET__NO_TIMER if none */
    uint32_t uri_slot;     /* [lock] its place in its URI's group (uri_index.c), while on,
                            * or ASSET__NOT_INDEXED */
    int16_t reload_error;  /* published: the last attempt's asset_status_t */
    int16_t reload_status; /* [lock] pending result (an asset_status_t) */
    uint16_t waited;       /* [lock] lazy waiters in asset_handle_wait (handle.c): nested
                            * waits on the flush thread, bounded by its stack */
    /* flags */
    bool decided; /* [lock] a result is waiting for flush */
    bool queued;  /* [lock] in the completion queue or being dispatched */
    bool counted; /* [lock] its result is in the stats */
    /* hot reload's, and batch_source, two bytes: every access holds the lock (bit-fields
     * share them) */
    bool reload_again : 1;        /* [lock] (reload handle) a change came while it ran */
    bool reload_again_forced : 1; /* [lock] (reload handle) one of those changes asked for a
                                   * fresh parse (asset_server_reload, a missing dependency's
                                   * appearance): the reload after it parses again; else it
                                   * revalidates */
    bool reload_pending : 1;      /* [lock] a reload result waits for flush */
    bool in_reloading : 1;        /* [lock] (reload handle) started, not decided yet */
    bool no_cache : 1;            /* [lock] loaded with options.no_cache: so are its reloads */
    bool map_file : 1;            /* [lock] loaded with options.map_file: its reloads map too */
    bool reload_forced : 1;       /* (reload handle) a fresh parse, not a revalidation: so is
                                   * a retry of it (set as it is made) */
    bool reload_transient : 1;    /* [lock] (reload handle) failed for a state that passes (its
                                   * request's transient): tried again (reload.c) */
    bool reload_unchanged : 1;    /* [lock] (reload handle) its revalidation against a label's
                                   * value (a label_base job) heard NOT_MODIFIED: its value is
                                   * that label's, not its file's whole one (reload.c) */
    bool reload_again_dep : 1;    /* [lock] (reload handle) a dependency's change came while it
                                   * ran: a fresh parse after it, unless its value was built on
                                   * what the dependencies show now (reload.c built_current) */
    bool batch_source : 1;        /* [lock] a folder's listing or a manifest's own load, made
                                   * by its batch (batch.c): internal, as a reload handle, in
                                   * no count of the user's handles (asset__handle_internal) */
    /* [lock] the source's version of the value it holds or has pending (a reload
     * handle's: of the value it read), for its reloads' revalidation when there is no
     * cache entry to hold it (no_cache, or the entry evicted, cleared, over its
     * budget), or NULL. A cached handle's only with watch or http_poll_ms (job.c) */
    char *nc_version; /* (a failed reload handle's: of what it read, reload.c told_already) */
};

/* [lock] Whether h is the library's own, never the user's: a hot reload's handle, a
 * folder's listing, a manifest's load. The stats, asset_server_cancel_tag's return and
 * asset_server_flush's count only the user's handles (those the API hands out: loads,
 * a batch's children, the dependencies a parse declared). */
static inline bool asset__handle_internal(const asset_handle_t *h) {
    return h->reload || h->batch_source;
}
/* [lock] Whether a dependency handle in a value loaded: one that failed (an optional
 * one) holds no value, so nothing is built on its asset through it, and no cycle of
 * references runs through it. */
static inline bool asset__dep_loaded(const asset_handle_t *h) {
    return h->status == ASSET_OK && h->value;
}
/* [lock] h joins j's handles (at their head), counted at its priority. */
static inline void asset__job_attach(asset__job_t *j, asset_handle_t *h) {
    h->job = j;
    h->job_next = j->handles;
    h->job_prev = NULL;
    if (j->handles) j->handles->job_prev = h;
    j->handles = h;
    j->live++;
    asset__job_count_prio(j, h->priority, 1);
}
/* [lock] h's priority becomes p; its job's counts follow (priority.c). */
void asset__handle_set_prio(asset_handle_t *h, int p);
/* [lock] j takes the best priority of its live handles (their counts): raised, it raises
 * the queued loads it waits for; lowered, a queued one goes to the tail of its new
 * priority's FIFO, and a started one declares its dependencies at it (priority.c). */
void asset__job_reprioritize(asset_server_t *s, asset__job_t *j);
#define ASSET__NO_TIMER UINT32_MAX    /* asset_handle.timer_idx: not in s->timers */
#define ASSET__NOT_INDEXED UINT32_MAX /* asset_handle.uri_slot: left out (uri_index.c) */
enum {
    ASSET__DEP_NONE,   /* a load of the user's (or a batch's, a reload's) */
    ASSET__DEP_EDGE,   /* made by asset_parse_depend: when it fails, it keeps no
                        * dependencies of its own (kept_deps: no cycle of references) */
    ASSET__DEP_COUNTED /* and its parent counted its result, which the parent's value is
                        * built on: a cancel leaves it be */
};

/* A handle's URI (normalised, or as given when invalid) and tag (NULL: none) follow it
 * in its own block (asset__handle_new). */
static inline const char *asset__handle_uri(const struct asset_handle *h) {
    return (const char *)(h + 1);
}
/* Whether uri names base (its first bl bytes): base itself, or base#label. */
static inline bool asset__uri_names(const char *uri, const char *base, size_t bl) {
    return !strncmp(uri, base, bl) && (uri[bl] == 0 || uri[bl] == '#');
}
static inline const char *asset__handle_tag(const struct asset_handle *h) {
    const char *u = asset__handle_uri(h), *t = u + strlen(u) + 1;
    return *t ? t : NULL;
}

#include "io_thread.h"

/* ---- mem store (sources/mem.c) and pkg (sources/pkg.c) ---- */
typedef struct asset__mem asset__mem_t;
asset__mem_t *asset__mem_create(void);
void asset__mem_destroy(asset__mem_t *m);
/* The buckets of m's table of keys, and in *dirs (unless NULL) of its folders' (tests). */
size_t asset__mem_buckets(asset__mem_t *m, size_t *dirs);
extern const asset_source_t asset__mem_source;
extern const asset_source_t asset__file_source;
extern const asset_source_t asset__pkg_source;
extern const asset_source_t asset__http_source;
extern const asset_source_t asset__https_source;
typedef struct asset__http asset__http_t;
/* Transfers of a server in flight at once, of every host: 8 x http_max_connections
 * (more only cost CPU), but a host with none always gets one (both HTTP sources). */
static inline unsigned asset__http_max_active(unsigned conns) {
    return conns > UINT_MAX / 8 ? UINT_MAX : 8 * conns;
}
/* Tests only: whether a finished transfer's easy handle carries the next one, whatever
 * libcurl's version says (1: reuse, 0: never; -1, the default: reuse from libcurl 8.1.0
 * on). The reuse path is the one most users run; a test sets it on an older libcurl. */
void asset__http_set_easy_reuse(int mode);
typedef struct asset__pkg asset__pkg_t;
/* search_path: pkg_path; its relative directories are taken against base_dir (the
 * server's, the working directory at create), or kept as they are when it is NULL. */
asset__pkg_t *asset__pkg_create(const char *search_path, const char *base_dir);
void asset__pkg_destroy(asset__pkg_t *p);
/* *hid: ASSET__PKG_HID when the mount hides one of the same name (a remount), whose
 * files loads in flight may have read (asset__jobs_remounted of its name);
 * ASSET__PKG_MISSED when a read found some package not mounted since the last mount
 * (it may be in flight, and be this one's: asset__jobs_remounted of every package), or
 * while another mount told that has not looked yet (asset__pkg_walked);
 * 0 otherwise (a first mount, no miss: no load in flight read anything of it). */
enum { ASSET__PKG_HID = 1, ASSET__PKG_MISSED = 2 };
/* A mount told ASSET__PKG_MISSED has looked at the loads in flight (each such mount
 * calls it once). */
void asset__pkg_walked(asset__pkg_t *p);
int asset__pkg_mount(asset__pkg_t *p, const char *name, const char *dir, int *hid);
/* The file behind "name/rel" of a directory package (NULL: embedded or unknown; or no
 * memory, and *nomem says so). */
char *asset__pkg_real_path(asset__pkg_t *p, const char *path, bool *nomem);
/* ASSET_E_INVALID for a refused entry sets *why (static text) and *bad (its index);
 * *why is NULL otherwise. */
int asset__pkg_mount_embedded(asset__pkg_t *p, const char *name, const asset_embedded_file_t *files,
                              size_t count, int *hid, size_t *bad, const char **why);
extern const asset_loader_t asset__bytes_loader;
extern const asset_loader_t asset__json_loader;
/* The deepest nesting of arrays and objects the json loader takes. cJSON parses (and
 * frees) by recursion, about 100 bytes of native stack a level: its own limit (1000)
 * overflowed a 64 KiB thread's stack (a user's thread running a parse in a wait, a web
 * worker); 256 levels take about 25 KiB. */
#define ASSET__JSON_MAX_DEPTH 256 /* config.json_max_depth's default */
/* The most config.json_max_depth may be: cJSON's own CJSON_NESTING_LIMIT, past which it
 * refuses a document itself (with a message of its own); more fails the create. */
#define ASSET__JSON_DEPTH_CEILING 1000

/* ---- the server ---- */
struct asset_server {
    asset_server_config_t cfg; /* defaults applied; strings owned */
    char *file_root;           /* normalised absolute, or NULL */
    /* file_root opened (platform/platform.h), or NULL: not yet (it did not exist or
     * could not be opened at create); the first load that can open it sets it, and one
     * that finds the path naming another directory replaces it (file.c) [file_root_mu] */
    struct asset__root *file_root_dir;
    char *base_dir; /* where bare relative paths resolve: cwd at create */
    uv_mutex_t lock;
    uv_cond_t work_cond; /* workers: the heap has work or stopping (waited on with sleep_mu) */
    uv_cond_t done_cond; /* waiters: something became done / queued */
    uv_thread_t *workers;
    unsigned nworkers;
    /* per worker, the request memory it keeps for its next job (pool.c): each slot
     * written by its worker alone; read under the lock by tests */
    struct asset_request **spare_reqs;
    unsigned spare_claimed; /* [lock] slots the workers took so far */
    bool stopping;          /* [lock] */
    /* queued jobs [lock]: a FIFO ring per priority (pool_heap.c) */
    asset__ring_t rings[3];
    size_t heap_len;        /* jobs in the rings */
    asset__map_t inflight;  /* [lock] coalescing */
    unsigned running_async; /* [lock] ASYNC reads not finished yet */
    /* completion queue [lock] */
    asset_handle_t *q_head, *q_tail;
    size_t q_len;
    atomic_bool wake_pending;
    /* flush */
    uv_thread_t flush_thread; /* [lock] the last flushing thread */
    bool in_flush;            /* [lock] */
    unsigned waiters;         /* [lock] threads in done_cond */
    unsigned running;         /* [lock] jobs a worker (or a waiting caller) is on */
    unsigned caller_runs;     /* [lock] jobs run by asset_handle_wait on its own thread */
    /* every live handle [lock]: those not done first (made at its head), the done ones
     * after (asset__handle_publish moves a handle to the tail as it makes it LOADED,
     * FAILED or CANCELLED, for good), so asset_server_cancel_tag stops at the first
     * done one; all_tail is the last */
    asset_handle_t *all, *all_tail;
    /* batches [lock]: every live one, the unfinished first (a batch moves to the tail
     * when it is done: asset_server_cancel_tag's walk stops at the first done one), and
     * those with late callbacks to fire */
    asset_batch_t *batches, *batches_tail;
    asset_batch_t *bq_head, *bq_tail;
    uint64_t next_cb_id; /* [lock] */
    /* timeouts [lock]: min-heap on deadline_ns */
    asset_handle_t **timers;
    size_t timers_len, timers_cap;
    asset__io_t *io;     /* [lock] started on first need */
    int io_error;        /* [lock] why the I/O thread last failed to start (UV_E*) */
    asset__http_t *http; /* I/O thread only: curl multi state, made on first transfer */
    /* registries (registry.c): sources [lock]; loaders copy-on-write, read lock-free */
    asset__source_slot_t *sources[ASSET__MAX_SOURCES];
    size_t nsources;
    asset__source_slot_t *retired_sources;
    _Atomic(asset__loaders_t *) loaders;
    asset__mem_t *mem;
    asset__pkg_t *pkg;
    /* stats [lock], except these two, counted by workers without the lock */
    asset_stats_t stats;
    atomic_uint_fast64_t source_reads, bytes_read;
    /* refused late request calls (asset__log_late_refusal), without the lock */
    atomic_uint_fast64_t late_refusals;
    /* the graph [lock] */
    asset__job_t *graph_ready, *graph_ready_tail; /* jobs with a step to take */
    bool graph_draining;
    uint64_t graph_epoch;
    asset__job_t *fin_head, *fin_tail;     /* finalize queue (flush thread runs it) */
    uint64_t fin_run;                      /* finalize runs so far (finalize.c) */
    bool fin_open;                         /* a finalize call of the run is running */
    bool handles_gone;                     /* destroy freed every handle */
    _Atomic(asset__value_t *) dead_values; /* values the flush thread frees (lock-free push) */
    /* releases made inside a free_value (lock-free push): the next flush does them
     * (asset__handles_release_later); destroy drops the list */
    _Atomic(struct asset__later *) later_handles;
    asset__cb_t *dropped_cbs;          /* [lock] owned callbacks of freed handles, through next */
    asset_handle_t *handles_freed;     /* destroy: handles cleared, their memory freed last */
    struct asset_batch *batches_freed; /* destroy: batches cleared, their memory freed last */
    atomic_bool dead_wake;  /* a value was queued in dead_values (or a task in dead_tasks): the
                               host must flush (a wake) */
    atomic_bool wake_off;   /* destroy began: config.wake is never called again */
    atomic_bool wake_later; /* a worker is to call asset__maybe_wake (asset__pool_wake_later) */
    _Atomic(struct asset__task *) dead_tasks; /* tasks whose free_arg the flush thread
                                                 calls, without the lock (spawn.c) */
    asset__job_t *returned; /* [lock] finished jobs a loading or waiting thread frees */
    size_t returned_n;      /* [lock] */
    /* hot reload (reload.c) [lock] */
    asset__reload_todo_t **reload_todo;   /* reloads to request at the next pump */
    asset__reload_claim_t *reload_claims; /* reloads being started */
    size_t reload_ntodo, reload_todo_cap;
    asset__map_t watched;   /* URIs whose files the I/O thread watches */
    bool rio_started;       /* the I/O thread's reload state was set up */
    struct asset__rio *rio; /* I/O thread only */
    atomic_uint watches;
    atomic_uint watched_files; /* files whose watch is set up, for tests to wait on */
    /* I/O thread, for tests: changes seen (before the debounce), and what they looked
     * at (pending changes, files of a directory) */
    atomic_uint_fast64_t rio_changes, rio_visits;
    /* spawn, traces, introspection (spawn.c, trace.c, introspect.c) */
    atomic_uint_fast64_t task_seq; /* task://N names: taken without the lock */
    /* the trace hook, or NULL: read lock-free, only to skip a trace point when NULL (the
     * hook called is the one in the calls' slot below) */
    _Atomic(struct asset__tracer *) tracer;
    /* two slots, the current one trace_epoch's parity: its hook and the threads inside
     * a call of it (trace.c) */
    struct asset__trace_slot {
        _Atomic(struct asset__tracer *) hook;
        atomic_uint busy;
    } trace_slot[2];
    atomic_uint trace_epoch;
    atomic_bool trace_setting; /* a setter is inside asset__trace_set (one at a time) */
    unsigned lazy_waiters;     /* [lock] waiters (of the waiters) that flush only once ready() */
    /* asset__scheme_bit of every scheme an IMMUTABLE source was ever registered for:
     * read without the lock by the cache-hit fast path, which skips its lock round trip
     * for a scheme whose bit is clear. Bits are never cleared (a stale one costs only
     * that lock round trip). */
    atomic_uint_fast64_t immutable_schemes;
    /* the pool's wake-ups (pool.c, asset__pool_wake_claim) [lock] */
    unsigned idle_workers; /* workers in work_cond */
    bool wake_inflight;    /* a worker was signalled and has not woken yet */
    /* the handles of each URI (uri_index.c) [lock] */
    asset__map_t uri_index;
    bool uri_index_on;
    size_t uri_unindexed;         /* handles left out of it (no memory for their place) */
    asset__map_t reload_todo_map; /* [lock] reload_todo's entries by URI (reload.c) */
    size_t reloads_running;       /* [lock] reload handles marked in_reloading */
    uint64_t uri_iter_visits;     /* [lock] handles asset__uri_iter_next looked at (tests) */
    size_t dep_values;            /* [lock] values holding dependencies: none, and a change has no
                                   * dependents to look for (reload.c) */
    /* [lock] children asset_batch_progress looked at (tests) */
    uint64_t batch_progress_visits;
    /* per base URI, the dependencies of values that name it (dependents.c) [lock] */
    asset__map_t dependents;
    size_t dependents_unknown;  /* values that found no memory for their counts */
    uint64_t dependents_walks;  /* [lock] walks for a change's dependents (reload.c; tests) */
    uint64_t dependents_visits; /* [lock] values, handles and cache entries they looked at */
    /* [lock] threads inside asset__wait (handle.c), any thread's: destroy waits until
     * they have left, so that none touches the server, its handles or its batches after */
    unsigned in_waits;
    /* [lock] flushes running (flush_impl, from its start to its return), any thread's:
     * destroy on another thread waits for them too (the C++ wrapper's Reaper destroys a
     * server whose last share a value freed inside a flush let go: a review) */
    unsigned flushes;
    /* label names compared by asset__labels_find (adds and lookups; tests) */
    atomic_uint_fast64_t label_looks;
    uint64_t progress_visits; /* [lock] jobs a handle's progress looked at (graph.c; tests) */
    uint64_t cycle_visits;    /* [lock] dependencies value cycle searches looked at (tests) */
    /* [lock] edges in-flight cycle searches looked at, and jobs their looks through the
     * waits inside jobs walked (graph.c, await_cycle) (tests) */
    uint64_t flight_visits;
    uint64_t cb_visits;         /* [lock] callbacks connects and deliveries looked at (tests) */
    uint64_t introspect_visits; /* [lock] cache entries introspection looked at (tests) */
    uint64_t tag_visits; /* [lock] handles and batches asset_server_cancel_tag looked at (tests) */
    /* [in a flush, or destroy] tasks a budgeted flush took from dead_tasks and left, linked
     * by dead_next: the next flush frees them first (spawn.c) */
    struct asset__task *tasks_left;
    /* [flush thread, lock] the reloaded callback asset__reload_fire calls next, or NULL: a
     * disconnect of that one moves it on */
    struct asset__cb *rcb_cursor;
    /* [lock] the callbacks asset__cb_connect made (not a batch item's), by id, for
     * asset_handle_disconnect, and a batch's that may still fire (owner NULL), for
     * asset_batch_disconnect: open addressing, at most half full (handle.c). A walk of
     * the handle's (or batch's) list cost n^2 / 2 looks to disconnect n callbacks newest
     * first */
    struct asset__cb **cb_ix;
    size_t cb_ix_cap, cb_ix_n;
    /* values asset__values_drain looked at: freed, or walked (tests) */
    _Atomic(uint64_t) drain_visits;
    /* values a budgeted flush took from dead_values and left, linked by dead_next: the
     * next drain frees them first (graph.c). Atomic: a flush drains after it let go of
     * in_flush, so a second thread's flush may drain at the same time */
    _Atomic(struct asset__value *) values_left;
    /* [lock] the URIs whose reload found the file in use (a state that passes) and is
     * tried again, with when the first attempt failed (reload.c) */
    asset__map_t reload_retries;
    /* [lock] the last of the completion queue's first handles that are all published
     * (asset__handle_publish_early), or NULL: none known */
    asset_handle_t *q_published;
    /* the web build's fetches of this server, from their read to their end (posted,
     * waiting or running: web/http_fetch.c); 0 elsewhere */
    atomic_uint web_fetches;
    /* [lock] the failed dependencies whose change reloads the parents they failed
     * (awaited.c) */
    asset__map_t awaited;
    /* guards file_root_dir and its use counts (file.c): taken twice per file_root load */
    uv_mutex_t file_root_mu;
    /* async reads cancelled (a job nobody wants, while its read runs or waits): the
     * I/O thread looks for cancelled transfers only when this moved (sources/http.c) */
    atomic_uint_fast64_t async_cancels;
    /* transfers the I/O thread's looks for cancelled ones walked (sources/http.c; tests) */
    atomic_uint_fast64_t http_kick_looks;
    /* transfers in the I/O thread's libcurl multi now (sources/http.c; tests) */
    atomic_uint_fast64_t http_in_multi;
    /* the workers' sleep (pool.c): work_cond waits on this leaf lock (nothing is taken
     * while it is held), so that a wake needs no server lock (asset__pool_wake_later) */
    uv_mutex_t sleep_mu;
    unsigned sleep_seq; /* [sleep_mu] bumped by each wake: a worker sleeps while unchanged */
    /* [lock] the parents in s->awaited's lists, and how many more adds to them before
     * the next sweep of those nothing can use (awaited.c) */
    size_t awaited_waiters, awaited_sweep_at;
    /* [lock] of dropped_cbs, what a flush's budget left: given back first by the next */
    asset__cb_t *dropped_left;
    /* dropped_cbs or dropped_left may hold users (set under lock, cleared by the drain
     * under lock): a flush with none takes no lock for them */
    atomic_bool dropped_any;
    /* [lock] parses asset_request_finish queued again (an ASYNC read over): a wait's
     * run-on-wait looks among those still queued (requeued) when this moved, or walks
     * what it waits for once more from the start when one could not be listed there
     * (requeues_unlisted moved: out of memory) (handle.c, asset__wait) */
    uint64_t parse_requeues;
    /* [lock] the parses so queued again that are still queued, in no order (each job's
     * request's requeued_slot; pool_heap.c): a wait finds its own among them, where a walk from
     * the start for each cost the square of a batch's ASYNC children (a review) */
    asset__job_t **requeued;
    size_t n_requeued, cap_requeued;
    uint64_t requeues_unlisted;
    /* [lock] jobs run-on-wait's walks and looks looked at (tests: that they stay linear),
     * added once a call (asset__walk_next, asset__walk_owns), not at each step */
    uint64_t wait_visits;
    /* [lock] the waits inside jobs going on (asset__wait): what the jobs of their threads
     * wait for, which a wait's cycle search follows (asset__graph_waits_here) */
    struct asset__await *awaits;
    /* [lock] the index's groups of http(s):// URIs, first and last, linked in the order
     * they were made (uri_index.c): what an http_poll_ms tick walks */
    struct asset__uri_group *uri_http, *uri_http_tail;
    /* [lock] URIs and handles http_poll_ms ticks looked at (reload.c; tests) */
    uint64_t http_poll_visits;
};
/* A directory opened by its path (file_root; a watched directory package), and its
 * users: the reads and listings in it, and 1 while it is its holder's (file_root_dir, a
 * mount); closed when they are all gone (sources/dir_root.c). */
struct asset__root {
    struct asset__dir *dir;
    unsigned users; /* [the holder's mutex: file_root_mu, the packages' lock] */
};
/* Any thread; mu is the holder's, not held by the caller; *slot's under mu. watching:
 * the server's cfg.watch (asset__dir_is_at: Windows compares only then). */
int asset__root_take(uv_mutex_t *mu, struct asset__root **slot, const char *path, bool watching,
                     struct asset__root **out);
void asset__root_put(uv_mutex_t *mu, struct asset__root *rt);

/* dependents.c [lock]: the values whose dependencies name a base URI, so that a change
 * to one looks only at those (and nothing for one nothing depends on). */
/* value v, loaded as the URI parent (no label), took d */
void asset__dependents_add(asset_server_t *s, asset__deps_t *d, asset__value_t *v,
                           const char *parent);
void asset__dependents_remove(asset_server_t *s, asset__deps_t *d); /* it lets go */
/* The value of x, freed, lets go of its dependencies x->deps; a label of it still held
 * (a handle of "uri#label" alone) takes a copy of them first, listed as the value was:
 * it is built on them, and must reload when they change (and keep them alive). */
void asset__dependents_leave(asset_server_t *s, asset__value_extra_t *x);
bool asset__dependents_any(const asset_server_t *s, const char *uri); /* uri up to '#' */
void asset__dependents_free(asset_server_t *s);                       /* destroy */
/* The values whose dependencies name base (a base URI), one a call: *it NULL first;
 * NULL at the end. *parent: the URI the value was loaded as. Valid while the lock is
 * held (a value leaves at the flush that frees it). Only while none is unknown
 * (s->dependents_unknown 0): else any value may depend on any URI. *dep_ld: the loader
 * of the value's dependency naming base (a value is built on an asset: a URI through a
 * loader). */
asset__value_t *asset__dependents_next(const asset_server_t *s, const char *base, const void **it,
                                       const char **parent, const asset__loader_slot_t **dep_ld);

/* uri_index.c [lock]: the handles naming a base URI (a handle's URI up to '#'), for
 * hot reload. On at create when watching or polling HTTP, else from the first reload
 * request; once on, it stays on. A handle that finds no memory for its place is left
 * out (ASSET__NOT_INDEXED) and found by a walk while any such handle lives. */
void asset__uri_index_on(asset_server_t *s); /* builds it if off */
/* While on (the callers check uri_index_on: every load links and frees a handle) */
void asset__uri_index_add(asset_server_t *s, asset_handle_t *h); /* h linked */
/* h unlinked; returns whether it was the last handle of its URI */
bool asset__uri_index_remove(asset_server_t *s, asset_handle_t *h);
void asset__uri_index_free(asset_server_t *s); /* destroy: off, emptied */
/* The groups of the http(s):// base URIs that have handles in the index, each once (a
 * label is its base URI's), in the order they were made: g NULL gives the first, the
 * last one returned the next; NULL after the last. An http_poll_ms tick walks them
 * (reload.c http_poll), not every handle; the caller links and frees no handle meanwhile. */
typedef struct asset__uri_group asset__uri_group_t;
const asset__uri_group_t *asset__uri_http_next(const asset_server_t *s,
                                               const asset__uri_group_t *g);
const char *asset__uri_group_key(const asset__uri_group_t *g); /* its base URI */
/* g's handles, live or not: i from 0; NULL past the last */
asset_handle_t *asset__uri_group_handle(const asset__uri_group_t *g, uint32_t i);
/* The handles whose URI is base (its first bl bytes), or base#label: every handle of
 * it, live or not. The caller links and frees no handle while it iterates. */
typedef struct asset__uri_iter {
    asset_server_t *s;
    const char *base;
    size_t bl;
    void *group;          /* the index's, when on */
    uint32_t i;           /* the next in group */
    asset_handle_t *scan; /* the next in s->all to look at: the index is off, or handles
                           * were left out of it */
} asset__uri_iter_t;
void asset__uri_iter_init(asset__uri_iter_t *it, asset_server_t *s, const char *base, size_t bl);
asset_handle_t *asset__uri_iter_next(asset__uri_iter_t *it);

/* registry.c */
asset_status_t asset__registry_init(asset_server_t *s); /* the built-ins */
void asset__registry_free(asset_server_t *s);           /* destroy: no job left */
asset__source_slot_t *asset__source_find(asset_server_t *s, const char *scheme); /* [lock] */
/* Destroys replaced sources that no job reads through any more. Lock not held. */
void asset__sources_reap(asset_server_t *s);
/* Lock-free snapshot, any thread: user loaders, then json, then bytes. */
asset__loader_slot_t *const *asset__loaders(const asset_server_t *s, size_t *n);
asset__loader_slot_t *asset__loader_find(const asset_server_t *s, const char *name);
/* Calls loaders' claims(): never with the lock held. */
asset__loader_slot_t *asset__loader_select(const asset_server_t *s, const char *uri);
/* Whether a registered loader has a claims() callback (a selection may call user code). */
bool asset__loaders_claim(const asset_server_t *s);

/* server.c */
/* The server whose worker or I/O thread this is, NULL on other threads. */
extern _Thread_local asset_server_t *asset__thread_owner;
/* The server this thread waits on (asset__wait, the innermost), NULL when none: its
 * destroy from here (config.wake, called by the wait's flush) would wait for itself. */
extern _Thread_local asset_server_t *asset__thread_waiting;
/* The server whose flush this thread is inside (the innermost), from the flush's start
 * to its return, NULL when none: also while it runs user code after its in_flush mark
 * is cleared (a FREE_ON_FLUSH_THREAD free_value, a replaced source's destroy), where a
 * destroy or a flush of that server must be refused as in a callback. */
extern _Thread_local asset_server_t *asset__thread_flushing;
/* Nonzero while this thread runs a value's free (asset__loader_free_value): any server's
 * lock may be held, so asset_handle_release only counts the release for the next flush
 * of the handle's server. */
extern _Thread_local unsigned asset__thread_freeing;
void asset__log(asset_server_t *s, int level, const char *fmt, ...) ASSET_PRINTF(3, 4);
/* A refused call on a request whose read is over (a source's misuse, which may loop): the
 * first ASSET__LATE_LOGGED of a server are logged (ERROR) whole, then only the one that
 * makes their count a power of two, which says how many there were. fmt: the line, as
 * for asset__log (formatted only when logged). Any thread, no lock. */
#define ASSET__LATE_LOGGED 8
void asset__log_late_refusal(asset_server_t *s, const char *fmt, ...) ASSET_PRINTF(2, 3);
void asset__maybe_wake(asset_server_t *s);
bool asset__on_flush_thread(asset_server_t *s); /* [lock] */

/* load.c: the one way loads are made. sha256: expected digest (hex) or NULL;
 * list: a LIST job (the value is a struct asset_list) instead of a load. */
asset_handle_t *asset__load(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                            const char *sha256, bool list, bool recursive);
enum { ASSET__LOAD_RELOAD = 1, ASSET__LOAD_FORCED = 2, ASSET__LOAD_POLL = 4 };
/* asset__load with flags: RELOAD makes an internal reload handle (its own job, no
 * immutable fast path); FORCED reads afresh instead of revalidating. */
asset_handle_t *asset__load_ex(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                               const char *sha256, bool list, bool recursive, unsigned flags);
/* asset__load_ex with a hook called [lock] held, in the critical section that links and
 * dispatches the new handle: `before` right after it is linked (nothing decided or
 * attached yet: h->priority may still be changed), then `after` once it is dispatched
 * (decided or not, never published yet). A batch records its child there, a parse its
 * dependency edge, without a lock round trip of their own. Either may be NULL (no call:
 * a group's child wants no `before`, about 16 instructions a cache hit). Neither may
 * unlock; `after` may decide h (then it must not touch h once it dropped its reference). */
typedef void (*asset__load_hook_fn)(asset_server_t *s, asset_handle_t *h, void *arg);
typedef struct asset__load_hook {
    asset__load_hook_fn before, after;
} asset__load_hook_t;
asset_handle_t *asset__load_hooked(asset_server_t *s, const char *uri,
                                   const asset_load_options_t *o, const char *sha256, bool list,
                                   bool recursive, unsigned flags, const asset__load_hook_t *hook,
                                   void *hook_arg);
/* A group's children, a slice at a time: the first n (at most ASSET__LOAD_SLICE) of
 * uris loaded as asset__load_hooked(s, uris[i], o, NULL, false, false, 0, hook,
 * hook_args[i]) would, one after another, but in one critical section for the run of
 * cache hits at the start and one for the rest, with the workers told after. Returns
 * how many were made: the first ones, in order; fewer than n only when out of memory
 * (none of the others was made). out (may be NULL): their handles, as
 * asset__load_hooked returns them (read only what the hook has not given away). */
#define ASSET__LOAD_SLICE 64
size_t asset__load_many(asset_server_t *s, const char *const *uris, size_t n,
                        const asset_load_options_t *o, const asset__load_hook_t *hook,
                        void *const *hook_args, asset_handle_t **out);
/* batch.c */
extern asset__loader_slot_t asset__list_slot;
void asset__batch_queue_push(asset_server_t *s, asset_batch_t *b); /* [lock] */
/* [lock] budget_ns 0: drains it all; else stops once budget_ns since start_ns is spent
 * (after at least one step). */
size_t asset__batch_queue_drain(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns);
/* What asset_server_cancel_tag's cancel says ("<uri>: cancelled by tag"), of the loads it
 * finds and of the children its batches make later. */
#define ASSET__CANCELLED_BY_TAG "cancelled by tag"
/* [lock] asset_server_cancel_tag's part for batches made with that tag: cancelled, so
 * that the children a folder, manifest or group makes later are cancelled too. */
void asset__batches_cancel_tag(asset_server_t *s, const char *tag);
void asset__batch_free_all(asset_server_t *s);
/* destroy, last: frees the memory of the batches asset__batch_free_all cleared */
void asset__batch_discard_all(asset_server_t *s);
/* [lock] asset_batch_release's: false when b had no reference left (released too often:
 * nothing done, the caller logs it) */
bool asset__batch_release_locked(struct asset_batch *b);
/* [lock] h, a child of h->batch, was decided: counts it, and wakes a waiter of the
 * batch once every child is. */
void asset__batch_child_decided(asset_server_t *s, asset_handle_t *h);
/* Sorts a listing by path in O(n log n); worker thread (the LIST job). */
asset_status_t asset__list_sort(struct asset_list *l);

/* handle.c: [lock] held for all of these */
/* Lock not held: the handle is private until asset__handle_link puts it in s->all. */
asset_handle_t *asset__handle_new(asset_server_t *s, const char *uri,
                                  const asset_load_options_t *o);
/* Lock not held: handles for uris[0..n), out[i] for uris[i], with the same options;
 * lens[i] is strlen(uris[i]) (the fast path measured them). n > 1: one block (a slab)
 * for all, freed when the last of them is; out of memory for it, one block each.
 * Returns how many were made (the first ones). */
size_t asset__handle_new_many(asset_server_t *s, const char *const *uris, const size_t *lens,
                              size_t n, const asset_load_options_t *o, asset_handle_t **out);
/* Frees a handle that is not linked (never was, or handle_free unlinked it): its block,
 * or its place in a slab, which goes with its last handle. Lock held or not. */
void asset__handle_discard(asset_handle_t *h);
/* Does the releases that free_values made (asset_handle_release inside one): flush,
 * lock not held. */
void asset__handles_release_later(asset_server_t *s);
/* Records a release of h, or of b (h NULL), made inside a free_value, for the next flush
 * of s (asset_handle_release, asset_batch_release). */
void asset__release_later(asset_server_t *s, asset_handle_t *h, struct asset_batch *b);
/* destroy, last: frees the memory of the handles asset__handle_free_all cleared (a value
 * freed after them may still release one of them: asset__thread_freeing) */
void asset__handle_discard_all(asset_server_t *s);
void asset__handle_link(asset_server_t *s, asset_handle_t *h);
/* Lock not held: appends a completion (or, reloaded, a reload) callback; its id or 0. */
uint64_t asset__cb_connect(asset_handle_t *h, bool reloaded, asset_handle_cb cb, void *user,
                           void (*free_user)(void *user));
/* [lock] A handle's callbacks (h->cbs, h->rcbs) are a circle: the list points at the
 * last one, whose next is the first, so that an append and taking the first are O(1)
 * with one pointer. c becomes the last of *list (they fire in connection order). */
void asset__cb_append(asset__cb_t **list, asset__cb_t *c);
/* [lock] Takes the callback `which`, or the one numbered `id` (0: none), out of *list,
 * not freed: the callback, or NULL if it is not there. A *cursor (or NULL) that was at
 * it moves on to the one after it (NULL: it was the last). */
asset__cb_t *asset__cb_unlink(asset__cb_t **list, const asset__cb_t *which, uint64_t id,
                              asset__cb_t **cursor);
/* Destroy: the index of callbacks by id (every handle and batch is freed by then). */
void asset__cb_index_free(asset_server_t *s);
/* [lock] The index of callbacks by id (s->cb_ix) for a batch's callbacks (batch.c), which
 * file an asset__cb_t of theirs with owner NULL (no handle's: asset_handle_disconnect
 * leaves it): add (false: out of memory), the one numbered id or NULL, remove. */
bool asset__cbix_add(asset_server_t *s, asset__cb_t *c);
asset__cb_t *asset__cbix_get(asset_server_t *s, uint64_t id);
void asset__cbix_remove(asset_server_t *s, const asset__cb_t *c);
/* Decides h's result and queues it for flush; detaches it from its job. */
void asset__handle_decide(asset_handle_t *h, asset_status_t st, const char *msg, asset__value_t *v,
                          int http_status);
/* The same, for the handles of one failure in turn (a job's, job.c): *told (NULL at
 * first) is the message logged last; a handle whose message is that one logs nothing,
 * so a load shared by N handles (coalesced, the labels of one asset) logs once. */
void asset__handle_decide_told(asset_handle_t *h, asset_status_t st, const char *msg,
                               asset__value_t *v, int http_status, const char **told);
/* [lock] A cache hit's decision, OK with v, for a handle the fast path made and linked
 * in this critical section (load.c fast_commit): no job, timer, batch, label, reload,
 * dependency parent or waiter yet, its http_status 0, so asset__handle_decide would
 * only set the result and queue it. */
void asset__handle_decide_hit(asset_handle_t *h, asset__value_t *v);
void asset__handle_maybe_free(asset_handle_t *h);
/* Flush thread: makes a decided result visible (its state); the flush counts it in the
 * stats and fires its callbacks when it delivers it. */
void asset__handle_publish(asset_server_t *s, asset_handle_t *h);
/* Flush thread, [lock]: publishes h ahead of its delivery, for a step that reads it
 * before the flush delivers it (a finalize reads its dependencies; a reload's value
 * brings new ones, whose parent may be queued ahead of them), with every handle queued
 * before it: a handle is queued when decided, after what it was built on, so that is
 * published too, at any depth. */
void asset__handle_publish_early(asset_server_t *s, asset_handle_t *h);
void asset__handle_free_all(asset_server_t *s);
void asset__queue_push(asset_server_t *s, asset_handle_t *h);
/* [lock] Arms h's timeout (h->timeout_ms from now) for a load or a task: its deadline
 * on the timer heap, the I/O thread started if needed. When it cannot, h is failed at
 * once: "cannot arm the timeout: <why>" (the I/O thread's start failure, or
 * ASSET_E_NO_MEMORY when the heap cannot grow). */
void asset__timer_arm(asset_server_t *s, asset_handle_t *h);
/* Run-on-wait's walk (graph.c), [lock]: depth first through the dependency graph under
 * what a wait waits for, from its roots (the handle; a batch's children), each edge
 * looked at once, each job with dependencies walked once (its g->wait_mark is the walk's
 * mark), past what this thread cannot run (asset__job_runnable_here). Its frames hold a
 * reference on their handles; the first frames are the walk's own (in), deeper ones
 * grow on demand (out of memory, the walk does not go deeper there). */
typedef struct asset__walk_frame {
    struct asset_handle *h;
    size_t i; /* the next of its job's dependencies to look at */
} asset__walk_frame_t;
typedef struct asset__walk {
    size_t next_root; /* batch_help's own: the next child to enter */
    uint64_t mark;    /* this walk's, unique (s->graph_epoch) */
    bool held;        /* asset__walk_hold was called: its root (if it had a job) is the
                       * first frame */
    size_t len, cap;
    asset__walk_frame_t *st, in[8];
} asset__walk_t;
void asset__walk_init(asset_server_t *s, asset__walk_t *w);
void asset__walk_reset(asset_server_t *s, asset__walk_t *w); /* leaves its frames */
/* Enters h's job, one of the walk's roots (a batch's child), if it is one to run or to
 * walk; false: out of memory. */
bool asset__walk_enter(asset_server_t *s, asset__walk_t *w, struct asset_handle *h);
/* The walk's only root (a handle's wait), entered once: h's job, if it has one, is the
 * first frame, which stays while h has a job (its parse elsewhere may declare more: a
 * worker's), walked again each time what is under it is through. Sets w->held; false:
 * out of memory. */
bool asset__walk_hold(asset_server_t *s, asset__walk_t *w, struct asset_handle *h);
/* The next queued job under the walk's frames this thread may run, or NULL: none left
 * (the roots not entered yet are the caller's). The job's frame stays: once it ran, what
 * its parse declared is walked next. */
asset__job_t *asset__walk_next(asset_server_t *s, asset__walk_t *w);
/* Whether q (a parse queued again: s->requeued) is under the walk: a root's (root(arg, o)
 * for one of its handles), or a dependency of a job the walk went through, found upward
 * from q (only through jobs another walk marked since, which may have been this one's). */
bool asset__walk_owns(asset_server_t *s, const asset__walk_t *w, asset__job_t *q,
                      bool (*root)(void *arg, const struct asset_handle *o), void *arg);
/* asset__wait's help (may be NULL), [lock]: a job of what is waited for that this
 * thread may run instead of sleeping (taken with asset__job_take_here), or NULL; w is
 * its walk (asset__walk_next), kept between calls. root(arg, o) says whether handle o
 * is one of the roots (asset__walk_owns). Run-on-wait: the waiter runs such jobs one at
 * a time, and so may return late by one job's read and parse. */
typedef asset__job_t *(*asset__help_fn)(void *arg, asset__walk_t *w);
/* What asset__wait waits for; every function is called with the lock held. */
typedef struct asset__wait_ops {
    bool (*done)(void *arg);
    bool (*ready)(void *arg);            /* may be NULL */
    asset__help_fn help;                 /* may be NULL; not used for a timeout of 0 */
    void (*hold)(void *arg, bool on);    /* a reference for the wait's length; off may free */
    asset_status_t (*result)(void *arg); /* once done, before the hold goes */
    /* o is a root of help's walk: a handle the wait waits for (nth lists them) */
    bool (*root)(void *arg, const struct asset_handle *o);
    /* the i-th handle waited for in *h (may be NULL), false past the last */
    bool (*nth)(void *arg, size_t i, struct asset_handle **h);
} asset__wait_ops_t;
/* [lock] A wait inside a job (a read, a parse, a task's fn) with time to sleep, on
 * s->awaits while it goes on: every job its thread runs (its frames, job.c) waits for
 * what it waits for. Two parses each waiting for the other's asset, on two workers, slept
 * until their timeouts: no dependency edge links them (a review). On the wait's stack. */
typedef struct asset__await {
    const void *frames; /* asset__job_frames() as the wait began: live while it waits */
    const asset__wait_ops_t *ops;
    void *arg;
    uint64_t visit; /* the mark of the last cycle search that went through it */
    struct asset__await *next;
} asset__await_t;
/* Waits (lock not held) until done(arg) is true: flushes meanwhile on the flush
 * thread, whenever results are queued, or, with ready given, only once ready(arg) says
 * a flush would help: such a waiter sleeps through single results (asset__queue_push
 * does not wake it) and is woken when ready() may have become true; *waited (lock
 * held, may be NULL) counts it meanwhile, so that what makes ready() true knows to
 * wake it; with waited given, the wait is lazy only on the flush thread. Before it
 * sleeps it runs what help gives it. result(arg), or ASSET_E_TIMEOUT, ASSET_E_BUSY, or
 * ASSET_E_SHUTDOWN once destroy has begun (a task waiting on a worker). */
asset_status_t asset__wait(asset_server_t *s, const asset__wait_ops_t *ops, void *arg,
                           int64_t timeout_ms, uint16_t *waited);
/* [lock] Whether j is a queued load this (waiting) thread may run itself: from a
 * built-in local source (file, pkg, mem), whose reads wait for nothing (a user source
 * may block until this very thread does something; HTTP needs the I/O thread). */
bool asset__job_runnable_here(const asset__job_t *j);
/* [lock] Takes a job asset__job_runnable_here allowed out of the queue for this thread. */
void asset__job_take_here(asset_server_t *s, asset__job_t *j);
bool asset__handle_cancel_locked(asset_handle_t *h, asset_status_t st, const char *why);
void asset__timer_remove(asset_server_t *s, asset_handle_t *h);
/* Called on the I/O thread: fails handles whose deadline passed; returns the next
 * deadline (0: none). Takes the lock itself. */
/* [lock] Fails h ASSET_E_TIMEOUT (unless decided) and takes it out of the timers: its
 * deadline passed (asset__timers_expire; the single-threaded web's running task,
 * asset__pool_job_poll). h may be freed. */
void asset__timer_expire(asset_server_t *s, asset_handle_t *h);
uint64_t asset__timers_expire(asset_server_t *s, uint64_t now_ns);

#include "pool.h"

/* graph.c: dependencies, labels, values with a life of their own. [lock] unless noted */
/* A handle's result from value v: its label's value, or NOT_FOUND naming the label. */
void asset__handle_decide_value(asset_handle_t *h, asset__value_t *v, int http_status);
/* h was decided: tell the job waiting for it. */
void asset__graph_dep_decided(asset_server_t *s, asset_handle_t *h);
/* The parse of j returned OK with v: wait for dependencies, finalize, or finish. */
void asset__graph_parsed(asset_server_t *s, asset__job_t *j, asset__value_t *v);
/* Every handle left j while it waited: cancel its dependencies, free it. */
void asset__graph_abandon(asset_server_t *s, asset__job_t *j);
/* Runs the steps queued by the above until none is left (iterative: deep chains). */
void asset__graph_drain(asset_server_t *s);
/* Drops j's dependency handles (cancelling the undecided ones); j has its graph part. */
void asset__graph_release_deps(asset_server_t *s, asset__job_t *j);
/* A parent's priority was raised: raise the loads it waits for. */
void asset__graph_raise(asset_server_t *s, asset__job_t *j, int prio);
/* [lock] Whether t is a job this thread runs (asset__job_running_here: a parse, a read, a
 * task) or waits for one, at any depth, through dependencies still pending and the waits
 * of jobs running elsewhere (s->awaits): a wait for t here would wait for itself. *mark:
 * 0 for a new search (set to its mark), or one that an earlier search of the same wait
 * set (a batch's children): what it walked is not walked again. 1: it does, 0: it does
 * not, -1: out of memory before it could tell (its stack: "does not" let a wait closing a
 * ring sleep until its timeout, a review). Inside tasks only: 0 at once (a task polling a
 * big graph's load walked it at each call; no dependency leads to a task, only a wait),
 * unless a wait on s->awaits waits for one of them (asset__frames_task_awaited). */
int asset__graph_waits_here(asset_server_t *s, asset__job_t *t, uint64_t *mark);
/* Bytes received and expected by h's load and its dependencies. */
void asset__handle_progress_bytes(const asset_handle_t *h, uint64_t *got, uint64_t *total);
/* Lock not held: frees the values queued for the flush thread; with a budget (ns since
 * start_ns), at least one and then as many as it allows. Returns whether some are left
 * queued. */
bool asset__values_drain(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns);
/* Frees the labels and their index (ix may be NULL). Any thread. */
void asset__labels_free(asset__label_t *l, size_t n, asset__label_index_t *ix);
/* Where name is in l[0..n) (ix: their index, possibly empty): its place, or n. Counts
 * the names it compared in s->label_looks (s may be NULL). Any thread. */
size_t asset__labels_find(asset_server_t *s, const asset__label_t *l, size_t n,
                          const asset__label_index_t *ix, const char *name);
/* Destroy, after every thread stopped: frees jobs left waiting for dependencies or
 * finalize. */
void asset__graph_free_all(asset_server_t *s);

/* awaited.c ([lock]) */
/* Parent (a base URI) failed, or loaded without it, because its dependency dep (its
 * first dl bytes: a base URI) failed: a change of dep reloads parent. False: no memory. */
bool asset__awaited_add(asset_server_t *s, const char *dep, size_t dl, const char *parent);
/* Whether a parent waits for uri (its first n bytes). */
bool asset__awaited_has(const asset_server_t *s, const char *uri, size_t n);
/* Takes the parents waiting for uri: fn(s, parent, arg) for each. Returns how many. */
typedef void (*asset__awaited_fn)(asset_server_t *s, const char *parent, void *arg);
size_t asset__awaited_take(asset_server_t *s, const char *uri, asset__awaited_fn fn, void *arg);
void asset__awaited_free(asset_server_t *s); /* destroy */
/* Whether as many places were added since the last sweep (asset__awaited_sweep) as it
 * kept, SWEEP_MIN places at least in the lists. */
bool asset__awaited_due(const asset_server_t *s);
/* Drops each parent for which keep(s, parent) is false, and each list left empty,
 * calling gone(s, dep) once it is out of the lists. */
typedef bool (*asset__awaited_keep_fn)(asset_server_t *s, const char *parent);
void asset__awaited_sweep(asset_server_t *s, asset__awaited_keep_fn keep, asset__awaited_fn gone);

/* reload.c */
/* [lock] j completed from a watchable source: have the I/O thread watch its file. */
void asset__reload_watch_job(asset_server_t *s, asset__job_t *j);
/* [lock] j, a dependency, failed with st: its parents await it (asset__awaited_add), and
 * its file is watched for them, if the server watches. */
void asset__reload_watch_failed(asset_server_t *s, asset__job_t *j, asset_status_t st);
/* [lock] j loaded v: the parents of its handles whose labels v lacks await it (as a
 * failed dependency's), its file watched already (asset__reload_watch_job). */
void asset__reload_await_labels(asset_server_t *s, asset__job_t *j, asset__value_t *v);
/* [lock] No handle names uri (its first n bytes: normalised, no label) any more: the
 * I/O thread stops watching its file (a new load watches it again). */
void asset__reload_unwatch(asset_server_t *s, const char *uri, size_t n);
/* [lock] An internal reload handle was decided: hand the result to the live handles. */
void asset__reload_decided(asset_server_t *s, asset_handle_t *rh);
/* [lock] For a reload of uri by ld that finds no cache entry (a no_cache one, or its
 * entry evicted, cleared or over its budget): the value a live handle of uri (no label,
 * no_cache as the reload) holds or has pending, and the source's version of it
 * (nc_version), to revalidate against. Without one, when every such live handle is a
 * label's of the same version, one of their values (*label set): a NOT_MODIFIED then
 * says only that the version did not change. False: none. */
bool asset__reload_live_base(asset_server_t *s, const char *uri, const asset__loader_slot_t *ld,
                             bool no_cache, asset__value_t **v, const char **version, bool *label);
/* Lock not held: starts reloads of uri (normalised, no label) for its live handles.
 * forced: fresh read; else a revalidation that changes nothing when unchanged. */
void asset__reload_request(asset_server_t *s, const char *uri, bool forced);
/* [lock] h (live, no job: loaded) had its priority changed: a reload of its asset in
 * flight takes the best priority of the live handles it reloads (reload.c). */
void asset__reload_reprioritize(asset_server_t *s, asset_handle_t *h);
/* The data of uri changed (a mem:// put or remove, asset_server_invalidate): its jobs in
 * flight whose read began are joined by no later load, which would get the old bytes,
 * and their values are not cached; so are the listings in flight of the folders above
 * it (the direct parent's, and recursive ones further up), which may have missed it;
 * uri's entries leave every cache (load.c). Any thread. */
void asset__jobs_changed(asset_server_t *s, const char *uri);
/* [lock] Every cache was cleared (asset_server_clear_caches): as asset__jobs_changed
 * for every job in flight whose read began, but for the caches (load.c). */
void asset__jobs_cleared(asset_server_t *s);
/* Package pkg was mounted: its pkg:// jobs in flight whose read began read the mount it
 * replaced (or found none); no later load joins them and their values are not cached
 * (load.c). pkg NULL: every pkg:// job. Any thread. */
void asset__jobs_remounted(asset_server_t *s, const char *pkg);
/* Lock not held: starts the queued reloads (dependents, reloads after one that ran),
 * within a flush's budget (0: all), at least one; the rest wait for the next flush. */
void asset__reload_pump(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns);
/* [lock] j completes: when its URI changed after its read began (ASSET__STALE_*), its
 * handles, decided with what it read, are reloaded after the flush that delivers them
 * (the reload skipped them: not live while their job ran). */
void asset__reload_stale_job(asset_server_t *s, const asset__job_t *j);
/* [lock] j, an http_poll_ms poll's reload (j->polled), read a whole answer: unless it is
 * the version it revalidated (a server that ignores the condition), that is a change, and
 * the loads of its URI whose read began before it now are stale, as a watch's change
 * makes them at once (a poll itself is no change: it only asks the server). */
void asset__reload_poll_read(asset_server_t *s, const asset__job_t *j);
/* Tests: http_poll_ms ticks done (each one's reload requests made), every server. */
extern atomic_uint asset__http_poll_ticks;
/* [lock] Flush: publishes h's pending reload; returns the old value to release after
 * the reloaded callbacks (fire them with asset__reload_fire), or NULL. */
bool asset__reload_publish(asset_server_t *s, asset_handle_t *h, asset__value_t **old);
void asset__reload_fire(asset_server_t *s, asset_handle_t *h); /* [lock], released around */
/* Tests: when set, asset__reload_fire calls it on the flush thread, no lock held, with
 * each reloaded callback's user, after it took that callback and right before it calls
 * it (a disconnect from another thread there: the C++ wrapper's callable must stay
 * alive). Set it while no flush runs; NULL otherwise. */
extern void (*asset__reload_fire_hook)(asset_handle_t *h, void *user);
void asset__reload_io_start(asset_server_t *s); /* [lock] the I/O thread just started */
/* Tests, I/O thread: the buckets of its tables of watched files and of their
 * directories, the most of one directory's table of names, and its pending changes'. */
void asset__rio_buckets(asset_server_t *s, size_t *files, size_t *dirs, size_t *names,
                        size_t *pending);
/* Tests, I/O thread: its watch and poll handles closed whose close has not ended (on
 * Windows one ends once the OS gave back the directory read it cancelled). */
unsigned asset__rio_closing(asset_server_t *s);
/* Tests, I/O thread: its changes waiting for their quiet time (or a retry's delay). */
size_t asset__rio_pending(asset_server_t *s);
void asset__reload_free(asset_server_t *s); /* destroy */
/* Test hook: watch files by polling, as when the OS is out of watches. */
extern atomic_bool asset__watch_force_poll;
/* Test hook: a file's poll cannot be started (as libuv's uv_fs_poll_start out of memory). */
extern atomic_bool asset__watch_fail_poll;
/* Test hook (NULL in production): called on the I/O thread with the path of a failed
 * dependency's file whose watch's look found no change (not there, or the version it
 * failed on), as its watch is set up, before its poll starts. (A typedef: the atomics
 * shim's _Atomic(T), "T volatile", cannot take a function pointer type spelled out.) */
typedef void (*asset__watch_hook_fn)(const char *path);
extern _Atomic(asset__watch_hook_fn) asset__watch_failed_hook;

/* finalize.c, [lock] */
void asset__finalize_push(asset_server_t *s, asset__job_t *j);
/* Runs queued finalize steps (lock released around each call) until the queue is
 * empty or, after the first, the budget is spent. Returns how many ran. */
size_t asset__finalize_run(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns);
/* Completes j with v: cache insert, every handle decided. */
void asset__job_complete(asset_server_t *s, asset__job_t *j, asset__value_t *v);

/* job.c */
void asset__job_detach(asset__job_t *j, asset_handle_t *h); /* [lock] */
/* [lock] Unmaps and frees a job no handle wants any more. */
void asset__job_drop(asset_server_t *s, asset__job_t *j);
/* [lock] Decides every attached handle and frees the job. msg may be NULL. */
void asset__job_finish_locked(asset_server_t *s, asset__job_t *j, asset_status_t st,
                              const char *msg, asset__value_t *v);
/* The same from the worker that ran j ([lock] not held): the lock taken for it, and the
 * worker's next job popped in that critical section (asset__pool_take_next); a source's
 * handed-over bytes dropped before it. */
void asset__job_finish(asset_server_t *s, asset__job_t *j, asset_status_t st, const char *msg,
                       asset__value_t *v);
void asset__job_free(asset__job_t *j);
/* [lock] Whether what j read still answers for the loads after it (a load may join it,
 * its value may be cached): its key did not change while it ran (a put, a remount, a
 * reload's change), nor was its source replaced meanwhile (what the old one answered is
 * no answer for the loads after the registration), nor was it told stale (a reload asked
 * after its read began, or a finalize on a dependency's old value): a reload's newer
 * value may be in the cache already, and it replaced that one (an IMMUTABLE source's
 * later loads got the old bytes from it, with no read: a review). */
static inline bool asset__job_answer_current(const asset__job_t *j) {
    return !j->changed && !j->stale && !(j->source && j->source->retired);
}
/* At most this many finished jobs wait to be freed by a loading or waiting thread; past
 * it, the thread that finishes one frees it (docs/threads.md). */
#define ASSET__RETURNED_MAX 1024
/* [lock] Takes up to max of the finished jobs waiting to be freed (job.c says why),
 * for asset__jobs_free_returned once the lock is released. SIZE_MAX: all. */
asset__job_t *asset__jobs_take_returned(asset_server_t *s, size_t max);
void asset__jobs_free_returned(asset__job_t *j);         /* no lock */
void asset__job_run(asset_server_t *s, asset__job_t *j); /* worker, no lock */
/* [lock] Whether this thread is inside asset__job_run of job j, still running (a read, a
 * parse or a task's fn, or one that a wait of theirs runs): a wait for j's handle here
 * would wait for itself. */
bool asset__job_running_here(const asset__job_t *j);
/* This thread's job frames (innermost first), NULL outside jobs: a record for
 * asset__job_in_frames, valid while the innermost of them runs. */
const void *asset__job_frames(void);
/* [lock] Whether j is running in one of frames (asset__job_frames of any thread, which is
 * inside them): matched by address and trace_id, a job freed there (an ASYNC read that
 * finished its request itself, its parse done elsewhere) being no new job at its address. */
bool asset__job_in_frames(const void *frames, const asset__job_t *j);
/* [lock] Whether frames (asset__job_frames of any thread) hold a read or a parse of s: a
 * dependency edge may lead into them (only a wait for its handle leads to a task). Reads
 * the frames only, never their jobs. */
bool asset__frames_load(const void *frames, const asset_server_t *s);
/* [lock] Whether a wait on s->awaits other than skip (may be NULL) waits for the handle
 * of a task of s that frames (asset__job_frames of a thread inside them) run (a wait's
 * root, asset__wait_ops_t): a wait there may then close a ring through it. *looks: the
 * waits asked, added. Reads only the tasks' jobs, alive while their fns run. */
bool asset__frames_task_awaited(asset_server_t *s, const void *frames, const asset__await_t *skip,
                                uint64_t *looks);
/* Whether this thread is inside a read or a parse of s (not only tasks' fns, which no
 * load waits for through a dependency). */
bool asset__job_loads_here(const asset_server_t *s);
/* Whether this thread is inside asset__job_run of any job (cheap: no lock). */
bool asset__job_runs_here(void);
/* How many asset__job_run this thread is inside of, one in another (a wait's run-on-wait
 * nests them): 0 outside any. */
unsigned asset__job_depth(void);
/* Whether the innermost job this thread runs is j (its read or parse, a task's fn). */
bool asset__job_runs_this(const asset__job_t *j);
/* Whether this thread is inside a job of s (a task's fn, a read, a parse). */
bool asset__job_of_runs_here(const asset_server_t *s);
/* Whether the innermost job this thread runs (a task's fn, a read, a list, a parse) is
 * one of s that was cancelled (its handles cancelled or timed out, or destroy): a wait
 * inside it for a load of s ends (asset__wait). Reads that job, alive while it runs. */
bool asset__job_cancelled_here(const asset_server_t *s);
/* [lock] j, cancelled while its parse runs: cancels the dependencies it declared that
 * are not done (each stops unless something else wants it), keeping the handles. */
void asset__graph_cancel_deps(asset_server_t *s, asset__job_t *j);
/* Test hook: when set, asset__job_run calls it, no lock held, right after an ASYNC
 * source's read returned PENDING and before the job is marked waiting for it (a cancel
 * there must still reach the I/O thread). Set it before the server's threads exist;
 * NULL otherwise. */
extern void (*asset__job_pending_hook)(asset__job_t *j);
/* Tests: when set, asset__pool_start creates each worker thread with it instead of
 * uv_thread_create (a failure as a thread limit would give: UV_EAGAIN). Set it before
 * asset_server_create; NULL otherwise. */
typedef int (*asset__thread_create_fn)(uv_thread_t *t, uv_thread_cb fn, void *arg);
extern asset__thread_create_fn asset__pool_thread_create_hook;
/* Tests: called by a pkg:// lookup that found its package on pkg_path, before it
 * records it (sources/pkg.c). */
extern void (*asset__pkg_found_hook)(const char *name);
/* Tests: called by asset_server_mount once the mount is made, before it looks at the
 * loads in flight. */
extern void (*asset__pkg_mounted_hook)(const char *name);
/* Tests: when set, the HTTP source (sources/http.c, desktop) calls it before each socket
 * libcurl opens; a nonzero errno value fails that socket with it. Set it before the
 * loads; NULL otherwise. */
extern int (*asset__http_socket_hook)(int family);
/* Tests: the table entries embedded listings have looked at (sources/pkg.c). */
extern atomic_uint_fast64_t asset__pkg_list_visits;
/* Tests: called by a mem:// listing with its folder's path once it has taken the keys,
 * no lock held (sources/mem.c). Set it before the server's threads exist; NULL
 * otherwise. */
extern void (*asset__mem_listed_hook)(const char *path);
/* Tests: the mem:// keys listings have looked at (sources/mem.c). */
extern atomic_uint_fast64_t asset__mem_list_visits;
/* Tests: the loads in flight remounts have looked at (load.c; a first mount: none). */
extern atomic_uint_fast64_t asset__mount_job_visits;
/* Tests: the mounts a remount's unlinking of the mount it hid has looked at. */
extern atomic_uint_fast64_t asset__pkg_unlink_visits;

/* ASCII classes, whatever the C locale: a program's setlocale(LC_ALL, "") makes <ctype.h>
 * follow the user's locale (in tr_TR.UTF-8 tolower('I') is 'I'; in ISO-8859-1 isalnum(0xE9)
 * is true), and URIs, schemes and HTTP header names are ASCII. */
static inline int asset__ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }
static inline int asset__ascii_upper(int c) { return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c; }
static inline bool asset__ascii_alpha(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline bool asset__ascii_alnum(int c) {
    return asset__ascii_alpha(c) || (c >= '0' && c <= '9');
}
/* status.c: whether st, from a loader, source or task, is no status of ours (positive,
 * or negative and no ASSET_E_*); then odd says "<who> returned an unexpected status (st)" */
bool asset__status_odd(asset_status_t st, const char *who, char odd[64]);
/* status.c: how a loader's parse or finalize, or a task, that returned st (neither OK
 * nor PENDING) ends its handles: st itself, or `failure` (the step's own error: PARSE for
 * a loader, INVALID for a task) for a status that is no error of ours and for
 * ASSET_E_CANCELLED while nothing cancelled the load (cancelled: every handle left, or
 * destroy began; never for a finalize, which no cancel reaches). A CANCELLED handle
 * nobody cancelled, neither logged nor counted failed, hid the step's failure (reviews).
 * *why, the step's message, stays; without one it is odd, which says what was returned */
asset_status_t asset__status_outcome(asset_status_t st, bool cancelled, const char *who,
                                     asset_status_t failure, char odd[64], const char **why);
/* platform/portable.c: ASCII case-insensitive compares (no <strings.h> on Windows) */
int asset__strcasecmp(const char *a, const char *b);
int asset__strncasecmp(const char *a, const char *b, size_t n);
/* memmem (a GNU and BSD extension) */
const void *asset__memmem(const void *hay, size_t hn, const void *needle, size_t nn);
/* The first c in s, else s's NUL (strchrnul, a GNU extension, where the C library has it;
 * else strlen and memchr): any thread. c is not 0. */
const char *asset__strchrnul(const char *s, int c);
/* spawn.c */
typedef struct asset__task asset__task_t;
void asset__spawn_run(asset_server_t *s, asset__job_t *j); /* worker, no lock */
/* [lock] Whether task job j (queued) may run on this thread, a waiter's: inside a task
 * of the same server, whose worker would otherwise wait for a worker (run-on-wait). */
bool asset__spawn_runnable_here(const asset__job_t *j);
/* Whether this thread runs a task of s (inside its fn): a worker of s. */
bool asset__spawn_in_task_of(const asset_server_t *s);
/* Any lock state: the task goes to s->dead_tasks, whose drain calls its free_arg
 * (user code that may call the library) without the lock. */
void asset__task_free(asset__task_t *t);
/* Frees the tasks asset__task_free queued: free_arg, their unused value. The flush
 * thread (every flush) and destroy; no lock held. */
void asset__tasks_drain(asset_server_t *s);
/* The flush's: the tasks dead when it begins, no more (a free_arg that spawns a task, or
 * other threads' tasks ending as fast, kept a flush going), and those a budget (from
 * start_ns; 0: none) left in s->tasks_left first. Whether a budget left some: the flush
 * wakes the host for those, as for those that died meanwhile. */
bool asset__tasks_drain_once(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns);
/* The loader slot that names tasks ("task"): their jobs', values' and handles' (so a
 * failed task's DELIVERED trace event names it too); never reloaded (reload.c). */
extern asset__loader_slot_t asset__task_slot;

/* trace.c: the trace hook. Cheap when none is set: one atomic load. */
enum {
    ASSET__TR_QUEUED,
    ASSET__TR_READ_START,
    ASSET__TR_READ_END,
    ASSET__TR_PARSE_START,
    ASSET__TR_PARSE_END,
    ASSET__TR_FINALIZE_START,
    ASSET__TR_FINALIZE_END,
    ASSET__TR_DELIVERED
};
typedef struct asset__tracer asset__tracer_t;
/* [lock] A new job: gives it its trace id and time, reports QUEUED. */
void asset__trace_job_new(asset_server_t *s, asset__job_t *j);
/* Any lock state: reports a phase of j (status: for *_END, else ASSET_OK). */
void asset__trace_job(asset_server_t *s, const asset__job_t *j, int phase, asset_status_t st);
/* [lock] Flush: h was published. */
void asset__trace_delivered(asset_server_t *s, const asset_handle_t *h);
void asset__trace_free(asset_server_t *s);                               /* destroy */
bool asset__trace_set(asset_server_t *s, asset_trace_fn fn, void *user); /* false: no memory */

/* ---- zero-copy data (request.c; docs/performance.md, "large_file") ---- */
/* A source lends data instead of copying it: a read-only mapping or a pointer into an
 * embedded table, with data[n] == 0 readable. release(data, user) (NULL: nothing to
 * release) runs when the request is done with it, or at once if refused (cancelled,
 * too large). Loaders read it in place; asset_parse_take_data copies it. */
asset_status_t asset__request_lend(struct asset_request *r, void *data, size_t n,
                                   void (*release)(void *data, void *user), void *user);
/* The bytes loader's zero-copy path: takes lent data with its release (the value calls
 * it when freed). False, with nothing taken, when the data is not lent. */
bool asset__parse_borrow(asset_parse_t *p, const uint8_t **data,
                         void (**release)(void *data, void *user), void **user);
/* asset_parse_set_value with the value's own free instead of the loader's: the value's
 * record gets its extra part to hold it (the bytes loader's lent data, whose value is
 * larger than an owned one's). */
void asset__parse_set_value_free(asset_parse_t *p, void *value, size_t cost_bytes,
                                 void (*free_fn)(void *value, void *user), void *user);

#endif
