/* map.h - an intrusive string-keyed hash map (chained, power-of-two buckets).
 * Not thread-safe: the owner's lock guards it. The key string belongs to the node's
 * owner and must live as long as the node is in the map.
 *
 * Every node starts with a link (asset__map_link_t: the chain, a 32-bit hash and a
 * word for the owner). Where the key is depends on the map:
 *   - asset__map_init: nodes are asset__map_node_t, the link and a key pointer;
 *   - asset__map_init_inline: the key's bytes follow the link itself, so a node whose
 *     key lives in its own block needs no pointer to it (the cache's entries:
 *     docs/performance.md, cache_overhead). Such a map takes links (asset__map_find,
 *     asset__map_link_put, asset__map_link_remove). */
#ifndef ASSET_MAP_H
#define ASSET_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct asset__map_link {
    struct asset__map_link *next;
    uint32_t hash; /* of the key; set by put */
    uint32_t aux;  /* the owner's: the map never reads or writes it */
} asset__map_link_t;

typedef struct asset__map_node {
    asset__map_link_t link; /* first: a link found by the map is cast to its node */
    const char *key;
} asset__map_node_t;

typedef struct asset__map {
    asset__map_link_t **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
    bool inline_keys; /* the key follows the link (asset__map_init_inline) */
} asset__map_t;

/* A 64-bit hash of the string s (map.c: eight bytes a step, then a final mix), with no
 * seed: the same in every process of one build (HTTP's body digests use it). Not stable
 * across versions or builds, never stored. */
uint64_t asset__hash(const char *s);
uint64_t asset__hash_n(const char *s, size_t n); /* the same, n = strlen(s) known */
/* The same hash started from seed. */
uint64_t asset__hash_seeded(const char *s, size_t n, uint64_t seed);
/* The seed of every map's hash (asset__map_hash): drawn once per process, from the OS's
 * random bytes, by asset__map_seed_init (asset_server_create calls it), before any of
 * the process's servers exists; 0 until then. Without it, URIs found once to fall into
 * one bucket (a hostile manifest's) fell into one bucket in every process: each insert
 * walked a chain of all of them, and n of them cost n * n (a review). */
extern uint64_t asset__map_seed;
void asset__map_seed_init(void);
void asset__map_init(asset__map_t *m);
void asset__map_init_inline(asset__map_t *m);
void asset__map_free(asset__map_t *m); /* frees buckets only, not nodes; keeps the kind */
/* The key of a node of m. */
static inline const char *asset__map_key(const asset__map_t *m, const asset__map_link_t *l) {
    return m->inline_keys ? (const char *)(l + 1) : ((const asset__map_node_t *)l)->key;
}

/* The hash a map keeps for key, n = strlen(key) (asset__map_find_hashed: computed
 * before a lock). */
static inline uint32_t asset__map_hash_n(const char *key, size_t n) {
    return (uint32_t)asset__hash_seeded(key, n, asset__map_seed);
}
/* The same, n not known. */
static inline uint32_t asset__map_hash(const char *key) {
    return asset__map_hash_n(key, strlen(key));
}

/* ---- any map, on links ---- */
asset__map_link_t *asset__map_find(const asset__map_t *m, const char *key);
/* The same, with h = asset__map_hash(key). */
asset__map_link_t *asset__map_find_hashed(const asset__map_t *m, const char *key, uint32_t h);
/* The node whose key is the first n bytes of key (not NUL-terminated there). */
asset__map_link_t *asset__map_find_n(const asset__map_t *m, const char *key, size_t n);
/* The bucket a find of hash h starts from (NULL: an empty map): for prefetching. */
static inline asset__map_link_t *const *asset__map_bucket(const asset__map_t *m, uint32_t h) {
    return m->nbuckets ? &m->buckets[h & (m->nbuckets - 1)] : NULL;
}
/* Inserts l (its key in place). Returns false when out of memory for the map's first
 * table (a table that cannot grow takes it in a longer chain). Keys are not checked
 * for duplicates: find first. */
bool asset__map_link_put(asset__map_t *m, asset__map_link_t *l);
/* The same, with h = asset__map_hash of l's key (computed once for several maps). */
bool asset__map_link_put_hashed(asset__map_t *m, asset__map_link_t *l, uint32_t h);
void asset__map_link_remove(asset__map_t *m, asset__map_link_t *l);
/* Halves m's table when it is at most a quarter full (and over 64 buckets), so that a map
 * that emptied down but not out gives its high-water table back (a remove frees it only
 * once empty). It moves every link to another bucket (and turns round the order of a
 * chain's nodes): only for a map no iteration (asset__map_next, asset__map_get_next) is
 * walking, as a cache's (walked by its LRU list), the in-flight map's, the URI index's,
 * the mem:// store's, the dependents' lists', the watched files' (and the I/O thread's
 * files, directories, names and pending changes), the reload retries' and the awaited
 * lists' (after a sweep's walk, not inside it), each called after a remove. Out of
 * memory: the table stays. */
void asset__map_halve(asset__map_t *m); /* the trim's rehash, out of line */
static inline void asset__map_trim(asset__map_t *m) {
    /* halved at a quarter full, grown past full (asset__map_link_put_hashed): between
     * the two, as many inserts or removes as a rehash costs. Inline: at each remove of
     * the in-flight map (a load's end), the call cost more than the test */
    if (m->nbuckets > 64 && m->count < m->nbuckets / 4) asset__map_halve(m);
}

/* ---- maps of asset__map_node_t (asset__map_init) ---- */
static inline asset__map_node_t *asset__map_get(const asset__map_t *m, const char *key) {
    return (asset__map_node_t *)asset__map_find(m, key);
}
/* Inserts n (n->key set by the caller). Returns false as asset__map_link_put does. Keys are
 * not checked for duplicates: get first. */
static inline bool asset__map_put(asset__map_t *m, asset__map_node_t *n) {
    return asset__map_link_put(m, &n->link);
}
/* The same, with h = asset__map_hash(n->key). */
static inline bool asset__map_put_hashed(asset__map_t *m, asset__map_node_t *n, uint32_t h) {
    return asset__map_link_put_hashed(m, &n->link, h);
}
static inline void asset__map_remove(asset__map_t *m, asset__map_node_t *n) {
    asset__map_link_remove(m, &n->link);
}
/* The next node after n with the same key (several may share one), or NULL. */
asset__map_node_t *asset__map_get_next(const asset__map_t *m, const asset__map_node_t *n);
/* Iteration: for (it = NULL; (it = asset__map_next(m, it, &b));) ; safe to remove `it`
 * only after fetching the next one. */
asset__map_node_t *asset__map_next(const asset__map_t *m, asset__map_node_t *it, size_t *bucket);

#endif
