/* loaders/bytes.c - the fallback loader: the value is the bytes themselves, taken
 * from the request without a copy. Data lent to the request (a read-only mapping of a
 * large file, a large file of an embedded table: config.map_threshold) stays where it
 * is: the value points into it and releases it (unmaps) when freed. */
#include "../internal.h"

/* An owned buffer's value is the public struct alone (a cached value's overhead:
 * docs/performance.md); lent data's also carries its release, and frees through its
 * record's own free (asset__parse_set_value_free), so that the loader's free needs no
 * flag to tell the two apart. */
typedef struct lent_value {
    asset_bytes_t pub;                       /* first: the value pointer is the public struct */
    void (*release)(void *data, void *user); /* or NULL */
    void *release_user;
} lent_value_t;

static void lent_free(void *value, void *user) {
    (void)user;
    lent_value_t *l = value;
    if (l->release) l->release((void *)l->pub.data, l->release_user);
    asset_free(l);
}

static asset_status_t bytes_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    size_t n = asset_parse_size(p);
    const uint8_t *data = NULL;
    void (*release)(void *data, void *user) = NULL;
    void *release_user = NULL;
    if (asset__parse_borrow(p, &data, &release, &release_user)) {
        lent_value_t *l = asset__calloc(1, sizeof *l);
        if (!l) { /* lent data stays the request's: it releases it */
            if (release) release((void *)data, release_user);
            return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        }
        l->pub.data = data;
        l->pub.size = n;
        l->release = release;
        l->release_user = release_user;
        /* a mapped value costs its size too: the cache budget bounds what it keeps alive */
        asset__parse_set_value_free(p, l, n + sizeof *l, lent_free, NULL);
        return ASSET_OK;
    }
    /* in the value's record when it has room (asset__value_slot: the record frees the
     * buffer alone then), else a block of its own */
    asset_bytes_t *v = p->slot ? p->slot : asset__calloc(1, sizeof *v);
    if (!v || !(data = asset_parse_take_data(p))) {
        if (v != p->slot) asset_free(v);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    v->data = data;
    v->size = n;
    asset_parse_set_value(p, v, n + sizeof *v);
    return ASSET_OK;
}

/* an owned buffer's in a block of its own: lent data's is lent_free, and one in its value
 * record's slot is freed by the record (asset__value_free_now) */
static void bytes_free(void *ctx, void *value) {
    (void)ctx;
    asset_bytes_t *v = value;
    asset_free((void *)v->data);
    asset_free(v);
}

const asset_loader_t asset__bytes_loader = {
    ASSET_LOADER_ABI, "bytes", NULL, NULL, bytes_parse, bytes_free, NULL, 0, NULL,
};
