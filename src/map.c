/* map.c - the intrusive hash map of map.h: FNV-1a hashing, chains, doubling growth. */
#include "map.h"
#include "internal.h"

#include <string.h>

uint64_t asset__hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

void asset__map_init(asset__map_t *m) { memset(m, 0, sizeof *m); }

void asset__map_free(asset__map_t *m) {
    asset_free(m->buckets);
    memset(m, 0, sizeof *m);
}

asset__map_node_t *asset__map_get(const asset__map_t *m, const char *key) {
    if (m->nbuckets == 0) return NULL;
    uint64_t h = asset__hash(key);
    for (asset__map_node_t *n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next)
        if (n->hash == h && strcmp(n->key, key) == 0) return n;
    return NULL;
}

asset__map_node_t *asset__map_get_next(const asset__map_t *m, const asset__map_node_t *n) {
    (void)m;
    for (asset__map_node_t *o = n->next; o; o = o->next)
        if (o->hash == n->hash && strcmp(o->key, n->key) == 0) return o;
    return NULL;
}

static bool grow(asset__map_t *m) {
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
    asset__map_node_t **b = asset__calloc(nb, sizeof *b);
    if (!b) return false;
    for (size_t i = 0; i < m->nbuckets; i++) {
        asset__map_node_t *n = m->buckets[i];
        while (n) {
            asset__map_node_t *next = n->next;
            size_t j = n->hash & (nb - 1);
            n->next = b[j];
            b[j] = n;
            n = next;
        }
    }
    asset_free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return true;
}

bool asset__map_put(asset__map_t *m, asset__map_node_t *n) {
    if (m->count + 1 > m->nbuckets - m->nbuckets / 4 || m->nbuckets == 0)
        if (!grow(m)) return false;
    n->hash = asset__hash(n->key);
    size_t i = n->hash & (m->nbuckets - 1);
    n->next = m->buckets[i];
    m->buckets[i] = n;
    m->count++;
    return true;
}

void asset__map_remove(asset__map_t *m, asset__map_node_t *n) {
    if (m->nbuckets == 0) return;
    asset__map_node_t **p = &m->buckets[n->hash & (m->nbuckets - 1)];
    for (; *p; p = &(*p)->next) {
        if (*p == n) {
            *p = n->next;
            n->next = NULL;
            /* emptied: give a large table back (the in-flight map of a big batch would
             * keep its high-water table for ever). Iterators stay valid: an emptied
             * map has no buckets to visit. */
            if (--m->count == 0 && m->nbuckets > 64) asset__map_free(m);
            return;
        }
    }
}

asset__map_node_t *asset__map_next(const asset__map_t *m, asset__map_node_t *it, size_t *bucket) {
    if (it && it->next) return it->next;
    size_t i = it ? *bucket + 1 : 0;
    for (; i < m->nbuckets; i++) {
        if (m->buckets[i]) {
            *bucket = i;
            return m->buckets[i];
        }
    }
    return NULL;
}
