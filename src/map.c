/* map.c - the intrusive hash map of map.h: word-at-a-time hashing, chains, doubling growth. */
#include "map.h"
#include "internal.h"
#include "platform/platform.h"

#include <string.h>

/* Eight bytes a step (a key is a URI: tens of bytes), each step a multiply and a
 * shift, then a final mix, so that the low bits (the bucket) depend on every byte. */
uint64_t asset__hash(const char *s) { return asset__hash_seeded(s, strlen(s), 0); }

uint64_t asset__hash_n(const char *s, size_t n) { return asset__hash_seeded(s, n, 0); }

/* The seed enters the state before the first byte: every later step's multiply and
 * shift carry it into the bucket bits (not a keyed cryptographic hash; enough that a
 * list of colliding URIs found for one seed is not one for another). */
uint64_t asset__hash_seeded(const char *s, size_t n, uint64_t seed) {
    uint64_t h = (0x9e3779b97f4a7c15ull ^ n) + seed, w;
    bool words = n >= 8;
    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    /* the last 0 to 7 bytes: after a word, the eight that end the key, shifted to keep
     * only those (the bytes before them are in the key: one load, about 25 instructions
     * less for a URI; on a little-endian machine the same w as a byte at a time, on a
     * big-endian one those bytes at the top); else a byte at a time, no call to memcpy
     * for a length it cannot know */
    w = 0;
    if (words && n) {
        static const uint16_t one = 1;
        memcpy(&w, s + n - 8, 8);
        w = *(const unsigned char *)&one ? w >> (8 * (8 - n)) : w << (8 * (8 - n));
    } else {
        for (size_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)s[i] << (8 * i);
    }
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

uint64_t asset__map_seed;

static void seed_draw(void) {
    uint64_t v = 0;
    /* no random bytes from the OS (none known to fail): the clock and where this
     * process's stack and code were put, which at least differ between processes */
    if (!asset__os_random(&v, sizeof v) || !v)
        v = asset__now_ns() ^ (uint64_t)(uintptr_t)&v ^
            ((uint64_t)(uintptr_t)&asset__map_seed << 17);
    asset__map_seed = v | 1; /* never 0: 0 reads "not drawn yet" in tests */
}

void asset__map_seed_init(void) {
    static uv_once_t once = UV_ONCE_INIT;
    uv_once(&once, seed_draw);
}

void asset__map_init(asset__map_t *m) { memset(m, 0, sizeof *m); }

void asset__map_init_inline(asset__map_t *m) {
    memset(m, 0, sizeof *m);
    m->inline_keys = true;
}

void asset__map_free(asset__map_t *m) {
    asset_free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

asset__map_link_t *asset__map_find(const asset__map_t *m, const char *key) {
    return asset__map_find_hashed(m, key, asset__map_hash(key));
}

asset__map_link_t *asset__map_find_hashed(const asset__map_t *m, const char *key, uint32_t h) {
    if (m->nbuckets == 0) return NULL;
    for (asset__map_link_t *l = m->buckets[h & (m->nbuckets - 1)]; l; l = l->next)
        if (l->hash == h && strcmp(asset__map_key(m, l), key) == 0) return l;
    return NULL;
}

asset__map_link_t *asset__map_find_n(const asset__map_t *m, const char *key, size_t n) {
    if (m->nbuckets == 0) return NULL;
    uint32_t h = asset__map_hash_n(key, n);
    for (asset__map_link_t *l = m->buckets[h & (m->nbuckets - 1)]; l; l = l->next) {
        const char *k = asset__map_key(m, l);
        if (l->hash == h && !strncmp(k, key, n) && k[n] == 0) return l;
    }
    return NULL;
}

asset__map_node_t *asset__map_get_next(const asset__map_t *m, const asset__map_node_t *n) {
    for (asset__map_link_t *o = n->link.next; o; o = o->next)
        if (o->hash == n->link.hash && strcmp(asset__map_key(m, o), n->key) == 0)
            return (asset__map_node_t *)o;
    return NULL;
}

/* Moves every link into a new table of nb buckets (a power of two); false, the table
 * unchanged, when out of memory for it. */
static bool rehash(asset__map_t *m, size_t nb) {
    asset__map_link_t **b = asset__calloc(nb, sizeof *b);
    if (!b) return false;
    for (size_t i = 0; i < m->nbuckets; i++) {
        asset__map_link_t *l = m->buckets[i];
        while (l) {
            asset__map_link_t *next = l->next;
            size_t j = l->hash & (nb - 1);
            l->next = b[j];
            b[j] = l;
            l = next;
        }
    }
    asset_free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return true;
}

static bool grow(asset__map_t *m) { return rehash(m, m->nbuckets ? m->nbuckets * 2 : 16); }

void asset__map_halve(asset__map_t *m) { rehash(m, m->nbuckets / 2); /* no memory: it stays */ }

bool asset__map_link_put(asset__map_t *m, asset__map_link_t *l) {
    return asset__map_link_put_hashed(m, l, asset__map_hash(asset__map_key(m, l)));
}

bool asset__map_link_put_hashed(asset__map_t *m, asset__map_link_t *l, uint32_t h) {
    /* at most one node per bucket on average; a table that cannot grow (its double is
     * one large block) takes the node in a longer chain: the insert failed, and so did
     * the load or put it was for, though it needed no memory of its own (a review) */
    if (m->count + 1 > m->nbuckets && !grow(m) && m->nbuckets == 0) return false;
    l->hash = h;
    size_t i = l->hash & (m->nbuckets - 1);
    l->next = m->buckets[i];
    m->buckets[i] = l;
    m->count++;
    return true;
}

void asset__map_link_remove(asset__map_t *m, asset__map_link_t *l) {
    if (m->nbuckets == 0) return;
    asset__map_link_t **p = &m->buckets[l->hash & (m->nbuckets - 1)];
    for (; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            l->next = NULL;
            /* emptied: give a large table back (the in-flight map of a big batch would
             * keep its high-water table for ever). Iterators stay valid: an emptied
             * map has no buckets to visit. */
            if (--m->count == 0 && m->nbuckets > 64) asset__map_free(m);
            return;
        }
    }
}

asset__map_node_t *asset__map_next(const asset__map_t *m, asset__map_node_t *it, size_t *bucket) {
    if (it && it->link.next) return (asset__map_node_t *)it->link.next;
    size_t i = it ? *bucket + 1 : 0;
    for (; i < m->nbuckets; i++) {
        if (m->buckets[i]) {
            *bucket = i;
            return (asset__map_node_t *)m->buckets[i];
        }
    }
    return NULL;
}
