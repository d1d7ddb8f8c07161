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

/* A folder: a key's bytes before its last '/' ("a/b" of "a/b/c", "" of "/x"), and every
 * folder that folder is in, up to one without '/'. A listing walked every key of the
 * store (1,000 folders of 100 keys each listed: 9 s under the lock); it walks its
 * folder's keys and subfolders only. A folder lives while it has either. Filed in
 * m->dirs by the folder it is in and its last segment (dir_key), not its whole name:
 * the names of a key's folders add up to its length squared (8 KiB of '/': 16 MiB). */
typedef struct dir {
    asset__map_node_t node; /* key: dir_key's, after the block */
    struct dir *parent;     /* NULL: no '/' in its name */
    struct dir *subs, *snext, *sprev;
    struct entry *files;
} dir_t;

typedef struct entry {
    asset__map_node_t node; /* key: the mem key */
    blob_t *blob;
    uint64_t gen;
    dir_t *dir; /* NULL: no '/' in the key, in no folder */
    struct entry *dnext, *dprev;
} entry_t;

struct asset__mem {
    uv_mutex_t lock;
    asset__map_t map;
    asset__map_t dirs; /* name -> dir_t */
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
    asset__map_init(&m->dirs);
    return m;
}

/* The length of key's first n bytes up to their last '/', or SIZE_MAX: none. */
static size_t last_slash(const char *key, size_t n) {
    while (n--)
        if (key[n] == '/') return n;
    return SIZE_MAX;
}

#define UP_HEX (2 * sizeof(uintptr_t))

/* The key in m->dirs of the folder named seg (sl bytes) in folder up (NULL: in none):
 * up's address in hex, then seg, into buf (UP_HEX + sl + 1 bytes). */
static void dir_key(char *buf, const dir_t *up, const char *seg, size_t sl) {
    uintptr_t a = (uintptr_t)up;
    for (size_t i = UP_HEX; i--; a >>= 4) buf[i] = "0123456789abcdef"[a & 15];
    memcpy(buf + UP_HEX, seg, sl);
    buf[UP_HEX + sl] = 0;
}

/* [lock] Frees d and the folders it is in that are left empty. */
static void dir_prune(asset__mem_t *m, dir_t *d) {
    while (d && !d->files && !d->subs) {
        dir_t *up = d->parent;
        if (up) {
            if (d->sprev)
                d->sprev->snext = d->snext;
            else
                up->subs = d->snext;
            if (d->snext) d->snext->sprev = d->sprev;
        }
        asset__map_remove(&m->dirs, &d->node);
        asset__map_trim(&m->dirs); /* as asset_mem_remove trims m->map */
        asset_free(d);
        d = up;
    }
}

/* [lock] The folder named by key's first n bytes, made (with the folders it is in) when
 * `make`. NULL: none, or out of memory (*oom; nothing made is left). */
static dir_t *dir_find(asset__mem_t *m, const char *key, size_t n, bool make, bool *oom) {
    *oom = false;
    char small[UP_HEX + 64], *buf = n < 64 ? small : asset_alloc(UP_HEX + n + 1);
    if (!buf) {
        *oom = true;
        return NULL;
    }
    dir_t *up = NULL, *made = NULL, *d = NULL;
    for (size_t at = 0;; at++) { /* a segment a step: its folder in up */
        size_t sl = strcspn(key + at, "/");
        if (sl > n - at) sl = n - at;
        dir_key(buf, up, key + at, sl);
        d = (dir_t *)asset__map_find_n(&m->dirs, buf, UP_HEX + sl);
        if (!d && make) {
            if (!(d = asset__calloc(1, sizeof *d + UP_HEX + sl + 1))) break;
            memcpy(d + 1, buf, UP_HEX + sl + 1);
            d->node.key = (const char *)(d + 1);
            if (!asset__map_put(&m->dirs, &d->node)) {
                asset_free(d);
                d = NULL;
                break;
            }
            if ((d->parent = up)) {
                d->snext = up->subs;
                if (up->subs) up->subs->sprev = d;
                up->subs = d;
            }
            made = d;
        }
        at += sl;
        if (!d || at == n) break;
        up = d;
    }
    if (buf != small) asset_free(buf);
    if (!d && make) {
        *oom = true;
        dir_prune(m, made); /* the empty folders made above go */
    }
    return d;
}

static void entry_free(entry_t *e) {
    blob_release(NULL, e->blob);
    asset_free((char *)e->node.key);
    asset_free(e);
}

size_t asset__mem_buckets(asset__mem_t *m, size_t *dirs) {
    uv_mutex_lock(&m->lock);
    size_t n = m->map.nbuckets;
    if (dirs) *dirs = m->dirs.nbuckets;
    uv_mutex_unlock(&m->lock);
    return n;
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
    b = 0;
    for (n = asset__map_next(&m->dirs, NULL, &b); n;) {
        asset__map_node_t *next = asset__map_next(&m->dirs, n, &b);
        asset_free(n);
        n = next;
    }
    asset__map_free(&m->dirs);
    uv_mutex_destroy(&m->lock);
    asset_free(m);
}

/* [lock] Files e in its key's folder. False: out of memory (e in none). */
static bool entry_file(asset__mem_t *m, entry_t *e) {
    size_t n = last_slash(e->node.key, strlen(e->node.key));
    if (n == SIZE_MAX) return true; /* in no folder */
    bool oom;
    if (!(e->dir = dir_find(m, e->node.key, n, true, &oom))) return false;
    e->dnext = e->dir->files;
    if (e->dnext) e->dnext->dprev = e;
    e->dir->files = e;
    return true;
}

/* [lock] Takes e out of its folder, which goes if that left it empty. */
static void entry_unfile(asset__mem_t *m, entry_t *e) {
    if (!e->dir) return;
    if (e->dprev)
        e->dprev->dnext = e->dnext;
    else
        e->dir->files = e->dnext;
    if (e->dnext) e->dnext->dprev = e->dprev;
    dir_prune(m, e->dir);
    e->dir = NULL;
    e->dnext = e->dprev = NULL;
}

/* A replaced (or removed) key, named by uri (freed here): no later load joins a read of
 * the old bytes (one made after the put got them); watched, its live handles reload at
 * once. The URI is made before the change: made after it, out of memory for it changed
 * the key and answered ASSET_OK, and its handles never reloaded (a review). */
static void reload_key(asset_server_t *s, char *uri) {
    asset__jobs_changed(s, uri);
    if (s->cfg.watch) asset__reload_request(s, uri, false);
    asset_free(uri);
}

/* Whether some URI names key: "mem://" and the key with '%' and '#' escaped fit
 * ASSET__URI_MAX (a longer key was stored, and every load of it failed "URI too long"). */
static bool nameable(const char *key) { return asset__uri_path_fits(sizeof "mem://" - 1, key); }

int asset_mem_put(asset_server_t *s, const char *key, const void *data, size_t size) {
    if (!s || !key || !*key || (!data && size) || !nameable(key)) return ASSET_E_INVALID;
    size_t kl = strlen(key);
    if (key[kl - 1] == '/') {
        /* "d/" was listed under mem://d as a child with an empty name, whose URI
         * "mem://d/" is the folder's own (a review) */
        asset__log(s, ASSET_LOG_ERROR,
                   "asset_mem_put: key '%.*s%s' refused: it ends in '/' (mem://d/ names the "
                   "folder d, never a key)",
                   kl > 200 ? 200 : (int)kl, key, kl > 200 ? "..." : "");
        return ASSET_E_INVALID;
    }
    asset__mem_t *m = s->mem;
    /* the header, the bytes and their 0: a size near SIZE_MAX (a read()'s -1 passed
     * on) wrapped to a few bytes, and the copy overran them */
    if (size > SIZE_MAX - sizeof(blob_t) - 1) return ASSET_E_NO_MEMORY;
    char *uri = asset__uri_from_path("mem://", key);
    blob_t *b = uri ? asset_alloc(sizeof *b + size + 1) : NULL;
    if (!b) {
        asset_free(uri);
        return ASSET_E_NO_MEMORY;
    }
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
               entry_file(m, e) && asset__map_put(&m->map, &e->node)) {
        /* new entry in the map, and in its folder */
    } else {
        if (e) entry_unfile(m, e);
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
    if (rc == ASSET_OK)
        reload_key(s, uri);
    else
        asset_free(uri);
    return rc;
}

int asset_mem_remove(asset_server_t *s, const char *key) {
    if (!s || !key) return ASSET_E_INVALID;
    asset__mem_t *m = s->mem;
    char *uri = asset__uri_from_path("mem://", key);
    if (!uri) return ASSET_E_NO_MEMORY; /* the key kept */
    uv_mutex_lock(&m->lock);
    entry_t *e = (entry_t *)asset__map_get(&m->map, key);
    if (e) {
        asset__map_remove(&m->map, &e->node);
        /* 100,000 keys put, then removed but a few: their table stayed (an emptied
         * map gives it back, not one left with a key). Only destroy walks the map */
        asset__map_trim(&m->map);
        entry_unfile(m, e);
    }
    uv_mutex_unlock(&m->lock);
    if (!e) {
        asset_free(uri);
        return ASSET_E_NOT_FOUND;
    }
    entry_free(e);
    reload_key(s, uri); /* its live handles learn it is gone (and keep their value) */
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

atomic_uint_fast64_t asset__mem_list_visits;

/* [lock] Adds the keys of folder d (of dl bytes), and with recursion its subfolders'. */
static asset_status_t list_dir(asset_list_t *l, const dir_t *top, size_t dl) {
    uint64_t visits = 0;
    asset_status_t rc = ASSET_OK;
    for (const dir_t *d = top; d && rc == ASSET_OK;) {
        for (const entry_t *e = d->files; e && rc == ASSET_OK; e = e->dnext, visits++)
            rc = asset_list_add(l, e->node.key + dl + 1, (int64_t)e->blob->size);
        /* the next folder, depth first without a stack: down, else along, else up */
        if (l->recursive && d->subs) {
            d = d->subs;
            continue;
        }
        while (d != top && !d->snext) d = d->parent;
        d = d == top ? NULL : d->snext;
    }
    atomic_fetch_add_explicit(&asset__mem_list_visits, visits, memory_order_relaxed);
    return rc;
}

void (*asset__mem_listed_hook)(const char *path) = NULL;

static asset_status_t mem_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)uri;
    asset__mem_t *m = ((asset_server_t *)ctx)->mem;
    const char *dir = l->path;
    size_t dl = strlen(dir);
    while (dl && dir[dl - 1] == '/') dl--;
    asset_status_t rc = ASSET_OK;
    uv_mutex_lock(&m->lock);
    bool oom;
    const dir_t *d = dir_find(m, dir, dl, false, &oom);
    if (d) rc = list_dir(l, d, dl);
    uv_mutex_unlock(&m->lock);
    if (asset__mem_listed_hook) asset__mem_listed_hook(dir);
    if (oom) return asset_list_fail(l, ASSET_E_NO_MEMORY, "out of memory listing");
    /* a folder exists through its keys, as an embedded package's directory does through
     * its files, and one with none is NOT_FOUND as that is: a misspelt folder
     * ("mem://levles") or a key listed as one completed with no children, silently */
    if (!d)
        return asset_list_fail(l, ASSET_E_NOT_FOUND, "no key under '%.*s/' in the mem:// store",
                               (int)dl, dir);
    return rc;
}

const asset_source_t asset__mem_source = {
    ASSET_SOURCE_ABI, "mem", 0, mem_read, mem_list, NULL,
};
