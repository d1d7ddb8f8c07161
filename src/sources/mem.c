/* sources/mem.c - the mem:// store: a thread-safe map of key -> ref-counted blob.
 * Every put bumps a store-wide generation that becomes the entry's version, so a
 * replaced entry is re-parsed even when its length is unchanged. Reads adopt the
 * blob without a copy. Leaf lock: m->lock never calls out. */
#include "../internal.h"

#include <stdio.h>
#include <string.h>

typedef struct blob {
    atomic_uint refs;
    size_t size;
    uint8_t data[]; /* size + 1, NUL-terminated */
} blob_t;

typedef struct entry {
    asset__map_node_t node; /* key: the mem key */
    blob_t *blob;
    uint64_t gen;
} entry_t;

struct asset__mem {
    uv_mutex_t lock;
    asset__map_t map;
    uint64_t gen;
};

static void blob_release(void *data, void *user) {
    (void)data;
    blob_t *b = user;
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) asset_free(b);
}

asset__mem_t *asset__mem_create(void) {
    asset__mem_t *m = asset__calloc(1, sizeof *m);
    if (!m) return NULL;
    uv_mutex_init(&m->lock);
    asset__map_init(&m->map);
    return m;
}

static void entry_free(entry_t *e) {
    blob_release(NULL, e->blob);
    asset_free((char *)e->node.key);
    asset_free(e);
}

void asset__mem_destroy(asset__mem_t *m) {
    if (!m) return;
    size_t b = 0;
    asset__map_node_t *n = asset__map_next(&m->map, NULL, &b);
    while (n) {
        asset__map_node_t *next = asset__map_next(&m->map, n, &b);
        entry_free((entry_t *)n);
        n = next;
    }
    asset__map_free(&m->map);
    uv_mutex_destroy(&m->lock);
    asset_free(m);
}

/* A replaced (or removed) key: no later load joins a read of the old bytes (one made
 * after the put got them); watched, its live handles reload at once. Out of memory for
 * the URI: neither (a load may still join the read in flight). */
static void reload_key(asset_server_t *s, const char *key) {
    char *uri = asset__uri_from_path("mem://", key);
    if (uri) asset__jobs_changed(s, uri);
    if (uri && s->cfg.watch) asset__reload_request(s, uri, false);
    asset_free(uri);
}

/* Whether some URI names key: "mem://" and the key with '%' and '#' escaped fit
 * ASSET__URI_MAX (a longer key was stored, and every load of it failed "URI too long"). */
static bool nameable(const char *key) {
    size_t n = sizeof "mem://" - 1;
    for (const char *c = key; *c && n <= ASSET__URI_MAX; c++) n += *c == '%' || *c == '#' ? 3 : 1;
    return n <= ASSET__URI_MAX;
}

int asset_mem_put(asset_server_t *s, const char *key, const void *data, size_t size) {
    if (!s || !key || !*key || (!data && size) || !nameable(key)) return ASSET_E_INVALID;
    asset__mem_t *m = s->mem;
    /* the header, the bytes and their 0: a size near SIZE_MAX (a read()'s -1 passed
     * on) wrapped to a few bytes, and the copy overran them */
    if (size > SIZE_MAX - sizeof(blob_t) - 1) return ASSET_E_NO_MEMORY;
    blob_t *b = asset_alloc(sizeof *b + size + 1);
    if (!b) return ASSET_E_NO_MEMORY;
    atomic_init(&b->refs, 1);
    b->size = size;
    if (size) memcpy(b->data, data, size);
    b->data[size] = 0;
    uv_mutex_lock(&m->lock);
    entry_t *e = (entry_t *)asset__map_get(&m->map, key);
    int rc = ASSET_OK;
    if (e) {
        blob_release(NULL, e->blob);
    } else if ((e = asset__calloc(1, sizeof *e)) && (e->node.key = asset__strdup(key)) &&
               asset__map_put(&m->map, &e->node)) {
        /* new entry in the map */
    } else {
        if (e) asset_free((char *)e->node.key);
        asset_free(e);
        blob_release(NULL, b);
        rc = ASSET_E_NO_MEMORY;
        e = NULL;
    }
    if (e) {
        e->blob = b;
        e->gen = ++m->gen;
    }
    uv_mutex_unlock(&m->lock);
    if (rc == ASSET_OK) reload_key(s, key);
    return rc;
}

int asset_mem_remove(asset_server_t *s, const char *key) {
    if (!s || !key) return ASSET_E_INVALID;
    asset__mem_t *m = s->mem;
    uv_mutex_lock(&m->lock);
    entry_t *e = (entry_t *)asset__map_get(&m->map, key);
    if (e) asset__map_remove(&m->map, &e->node);
    uv_mutex_unlock(&m->lock);
    if (!e) return ASSET_E_NOT_FOUND;
    entry_free(e);
    reload_key(s, key); /* its live handles learn it is gone (and keep their value) */
    return ASSET_OK;
}

static asset_status_t mem_read(void *ctx, asset_request_t *r) {
    asset__mem_t *m = ((asset_server_t *)ctx)->mem;
    uv_mutex_lock(&m->lock);
    entry_t *e = (entry_t *)asset__map_get(&m->map, asset_request_path(r));
    blob_t *b = NULL;
    uint64_t gen = 0;
    if (e) {
        b = e->blob;
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
        gen = e->gen;
    }
    uv_mutex_unlock(&m->lock);
    if (!b) return asset_request_fail(r, ASSET_E_NOT_FOUND, "no such key in the mem:// store");
    char ver[32];
    snprintf(ver, sizeof ver, "g%llu", (unsigned long long)gen);
    const char *cached = asset_request_cached_version(r);
    if (cached && !strcmp(cached, ver)) {
        blob_release(NULL, b);
        return ASSET_NOT_MODIFIED;
    }
    asset_request_set_version(r, ver);
    asset_request_set_total(r, b->size);
    asset_status_t st = asset_request_adopt(r, b->data, b->size, blob_release, b);
    if (st == ASSET_OK) r->adopt_terminated = true;
    return st;
}

static asset_status_t mem_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)uri;
    asset__mem_t *m = ((asset_server_t *)ctx)->mem;
    const char *dir = l->path;
    size_t dl = strlen(dir);
    while (dl && dir[dl - 1] == '/') dl--;
    asset_status_t rc = ASSET_OK;
    uv_mutex_lock(&m->lock);
    size_t b = 0;
    for (asset__map_node_t *n = NULL; rc == ASSET_OK && (n = asset__map_next(&m->map, n, &b));) {
        const char *k = n->key;
        if (strncmp(k, dir, dl) != 0 || k[dl] != '/') continue;
        const char *rel = k + dl + 1;
        if (!l->recursive && strchr(rel, '/')) continue;
        rc = asset_list_add(l, rel, (int64_t)((entry_t *)n)->blob->size);
    }
    uv_mutex_unlock(&m->lock);
    return rc;
}

const asset_source_t asset__mem_source = {
    ASSET_SOURCE_ABI, "mem", 0, mem_read, mem_list, NULL,
};
