/* cache_budget.c - changing a loader cache's byte budget while the server runs
 * (asset_server_set_cache_budget). The caches themselves live in cache.c. */
#include "internal.h"

int asset_server_set_cache_budget(asset_server_t *s, const char *loader, size_t bytes) {
    if (!s || !loader || !*loader) return ASSET_E_INVALID;
    /* Loaders are never removed, so the slot stays valid; its cache is [lock]. */
    asset__loader_slot_t *ld = asset__loader_find(s, loader);
    if (!ld) {
        asset__log(s, ASSET_LOG_WARN,
                   "asset_server_set_cache_budget: no loader named '%s'; budget unchanged", loader);
        return ASSET_E_NO_LOADER;
    }
    uv_mutex_lock(&s->lock);
    ld->cache.budget = bytes ? bytes : s->cfg.cache_budget;
    asset__cache_evict(&ld->cache);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s); /* evicted values to free on the flush thread: the host flushes */
    return ASSET_OK;
}
