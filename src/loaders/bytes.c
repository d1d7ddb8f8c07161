/* loaders/bytes.c - the fallback loader: the value is the bytes themselves, taken
 * from the request without a copy. */
#include "../internal.h"

typedef struct bytes_value {
    asset_bytes_t pub; /* first: the value pointer is the public struct */
    void *buf;
} bytes_value_t;

static asset_status_t bytes_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    bytes_value_t *v = asset_alloc(sizeof *v);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    size_t n = asset_parse_size(p);
    v->buf = asset_parse_take_data(p);
    if (!v->buf) {
        asset_free(v);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    v->pub.data = v->buf;
    v->pub.size = n;
    asset_parse_set_value(p, v, n + sizeof *v);
    return ASSET_OK;
}

static void bytes_free(void *ctx, void *value) {
    (void)ctx;
    bytes_value_t *v = value;
    asset_free(v->buf);
    asset_free(v);
}

const asset_loader_t asset__bytes_loader = {
    ASSET_LOADER_ABI, "bytes", NULL, NULL, bytes_parse, bytes_free, NULL, 0, NULL,
};
