/* loaders/bytes.c - the fallback loader: the value is the bytes themselves, taken
 * from the request without a copy. Data lent to the request (a read-only mapping of a
 * large file, a large file of an embedded table: config.map_threshold) stays where it
 * is: the value points into it and releases it (unmaps) when freed. */
#include "../internal.h"

/* An owned buffer needs nothing beyond the public struct and this flag (a cached
 * value's overhead: docs/performance.md); lent data also needs its release. */
typedef struct bytes_value {
    asset_bytes_t pub; /* first: the value pointer is the public struct */
    bool lent;         /* a lent_value_t; else pub.data is owned (asset_free) */
} bytes_value_t;

typedef struct lent_value {
    bytes_value_t b;
    void (*release)(void *data, void *user); /* or NULL */
    void *release_user;
} lent_value_t;

static asset_status_t bytes_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    size_t n = asset_parse_size(p);
    const uint8_t *data = NULL;
    void (*release)(void *data, void *user) = NULL;
    void *release_user = NULL;
    bool lent = asset__parse_borrow(p, &data, &release, &release_user);
    bytes_value_t *v = asset__calloc(1, lent ? sizeof(lent_value_t) : sizeof *v);
    if (!v) { /* lent data stays the request's: it releases it */
        if (lent && release) release((void *)data, release_user);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    if (lent) {
        lent_value_t *l = (lent_value_t *)v;
        l->release = release;
        l->release_user = release_user;
        v->lent = true;
    } else if (!(data = asset_parse_take_data(p))) {
        asset_free(v);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    v->pub.data = data;
    v->pub.size = n;
    /* a mapped value costs its size too: the cache budget bounds what it keeps alive */
    asset_parse_set_value(p, v, n + (lent ? sizeof(lent_value_t) : sizeof *v));
    return ASSET_OK;
}

static void bytes_free(void *ctx, void *value) {
    (void)ctx;
    bytes_value_t *v = value;
    if (!v->lent) {
        asset_free((void *)v->pub.data);
    } else {
        lent_value_t *l = value;
        if (l->release) l->release((void *)v->pub.data, l->release_user);
    }
    asset_free(v);
}

const asset_loader_t asset__bytes_loader = {
    ASSET_LOADER_ABI, "bytes", NULL, NULL, bytes_parse, bytes_free, NULL, 0, NULL,
};
