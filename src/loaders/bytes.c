/* loaders/bytes.c - the fallback loader: the value is the bytes themselves, taken
 * from the request without a copy. Data lent to the request (a read-only mapping of a
 * large file, a large file of an embedded table: config.map_threshold) stays where it
 * is: the value points into it and releases it (unmaps) when freed. */
#include "../internal.h"

typedef struct bytes_value {
    asset_bytes_t pub; /* first: the value pointer is the public struct */
    void *buf;         /* owned (asset_free), or lent: see release */
    bool lent;
    void (*release)(void *data, void *user); /* lent data's release, or NULL */
    void *release_user;
} bytes_value_t;

static asset_status_t bytes_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    bytes_value_t *v = asset__calloc(1, sizeof *v);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    size_t n = asset_parse_size(p);
    const uint8_t *lent = NULL;
    if (asset__parse_borrow(p, &lent, &v->release, &v->release_user)) {
        v->buf = (void *)lent;
        v->lent = true;
    } else if (!(v->buf = asset_parse_take_data(p))) {
        asset_free(v);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    v->pub.data = v->buf;
    v->pub.size = n;
    /* a mapped value costs its size too: the cache budget bounds what it keeps alive */
    asset_parse_set_value(p, v, n + sizeof *v);
    return ASSET_OK;
}

static void bytes_free(void *ctx, void *value) {
    (void)ctx;
    bytes_value_t *v = value;
    if (!v->lent)
        asset_free(v->buf);
    else if (v->release)
        v->release(v->buf, v->release_user);
    asset_free(v);
}

const asset_loader_t asset__bytes_loader = {
    ASSET_LOADER_ABI, "bytes", NULL, NULL, bytes_parse, bytes_free, NULL, 0, NULL,
};
