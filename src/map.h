/* map.h - an intrusive string-keyed hash map (chained, power-of-two buckets).
 * Not thread-safe: the owner's lock guards it. The key string belongs to the node's
 * owner and must live as long as the node is in the map. */
#ifndef ASSET_MAP_H
#define ASSET_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct asset__map_node {
    struct asset__map_node *next;
    const char *key;
    uint64_t hash;
} asset__map_node_t;

typedef struct asset__map {
    asset__map_node_t **buckets;
    size_t nbuckets; /* 0 or a power of two */
    size_t count;
} asset__map_t;

uint64_t asset__hash(const char *s);
void asset__map_init(asset__map_t *m);
void asset__map_free(asset__map_t *m); /* frees buckets only, not nodes */
asset__map_node_t *asset__map_get(const asset__map_t *m, const char *key);
/* Inserts n (n->key set by the caller). Returns false when out of memory. Keys are
 * not checked for duplicates: get first. */
bool asset__map_put(asset__map_t *m, asset__map_node_t *n);
/* The next node after n with the same key (several may share one), or NULL. */
asset__map_node_t *asset__map_get_next(const asset__map_t *m, const asset__map_node_t *n);
void asset__map_remove(asset__map_t *m, asset__map_node_t *n);
/* Iteration: for (it = NULL; (it = asset__map_next(m, it, &b));) ; safe to remove `it`
 * only after fetching the next one. */
asset__map_node_t *asset__map_next(const asset__map_t *m, asset__map_node_t *it, size_t *bucket);

#endif
