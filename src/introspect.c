/* introspect.c - what the server is doing now: jobs in flight, cache entries and
 * per-loader counters, for debug overlays and tools. Each walk copies a snapshot
 * under the lock, then calls the user without it (the callback may call the server). */
#include "internal.h"

#include <string.h>

static const char *job_state_name(const asset__job_t *j) {
    switch (j->state) {
    case ASSET__JOB_QUEUED: return j->heap_idx != SIZE_MAX ? "queued" : "running";
    case ASSET__JOB_RUNNING: return "running";
    case ASSET__JOB_WAITING_ASYNC: return "waiting_async";
    case ASSET__JOB_WAITING_DEPS: return "waiting_deps";
    case ASSET__JOB_FINALIZING: return "finalizing";
    default: return "?";
    }
}

/* One growable array of records whose strings are copied: freed after the walk. */
typedef struct snap {
    void *v;
    size_t n, cap, size;
    char **strs;
    size_t nstrs, strs_cap;
    bool full; /* no room for a record: the walk stops (a string that cannot be copied
                  reads "" and stops nothing: it stopped the cache walk at the end of
                  its loader, and the entries of the loaders after it were lost) */
} snap_t;

static void *snap_add(snap_t *s) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        void *nv = asset_realloc(s->v, cap * s->size);
        if (!nv) {
            s->full = true;
            return NULL;
        }
        s->v = nv;
        s->cap = cap;
    }
    void *r = (char *)s->v + s->n++ * s->size;
    memset(r, 0, s->size);
    return r;
}

static const char *snap_str(snap_t *s, const char *str) {
    if (!str) return NULL;
    if (s->nstrs == s->strs_cap) {
        size_t cap = s->strs_cap ? s->strs_cap * 2 : 64;
        char **ns = asset_realloc(s->strs, cap * sizeof *ns);
        if (!ns) return "";
        s->strs = ns;
        s->strs_cap = cap;
    }
    char *d = asset__strdup(str);
    if (!d) return "";
    s->strs[s->nstrs++] = d;
    return d;
}

static void snap_free(snap_t *s) {
    for (size_t i = 0; i < s->nstrs; i++) asset_free(s->strs[i]);
    asset_free(s->strs);
    asset_free(s->v);
}

size_t asset_server_foreach_job(asset_server_t *s,
                                bool (*fn)(const asset_job_info_t *i, void *user), void *user) {
    if (!s || !fn) return 0;
    snap_t sn = {.size = sizeof(asset_job_info_t)};
    uint64_t now = asset__now_ns();
    uv_mutex_lock(&s->lock);
    size_t b = 0;
    for (asset__map_node_t *n = NULL; (n = asset__map_next(&s->inflight, n, &b));) {
        const asset__job_t *j = (const asset__job_t *)n;
        asset_job_info_t *i = snap_add(&sn);
        if (!i) break;
        i->id = j->trace_id;
        i->uri = snap_str(&sn, j->uri);
        /* copied too: the callback may destroy the server, and its loaders with it */
        i->loader = j->loader ? snap_str(&sn, j->loader->name) : "";
        i->state = job_state_name(j);
        i->priority = j->priority;
        i->bytes = atomic_load_explicit(&((asset__job_t *)j)->received, memory_order_relaxed);
        i->bytes_total = atomic_load_explicit(&((asset__job_t *)j)->total, memory_order_relaxed);
        i->age_ns = j->queued_ns && now > j->queued_ns ? now - j->queued_ns : 0;
        i->handles = j->live;
        i->dependencies = asset__job_ndeps(j);
    }
    uv_mutex_unlock(&s->lock);
    size_t seen = 0;
    for (size_t k = 0; k < sn.n; k++) {
        seen++;
        if (!fn((asset_job_info_t *)sn.v + k, user)) break;
    }
    snap_free(&sn);
    return seen;
}

size_t asset_server_foreach_cached(asset_server_t *s,
                                   bool (*fn)(const asset_cache_info_t *i, void *user),
                                   void *user) {
    if (!s || !fn) return 0;
    snap_t sn = {.size = sizeof(asset_cache_info_t)};
    uint64_t now = asset__now_ns();
    size_t nl;
    uv_mutex_lock(&s->lock);
    /* under the lock, which a registration publishes its list under: read before it, a
     * loader registered meanwhile, and already caching, was missing from the snapshot */
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    for (size_t l = 0; l < nl && !sn.full; l++) {
        const char *name = NULL; /* copied once per loader (the callback may destroy) */
        for (const asset__cache_entry_t *e = ls[l]->cache.lru_head; e; e = e->lru_next) {
            s->introspect_visits++;
            asset_cache_info_t *i = snap_add(&sn);
            if (!i) break;
            if (!name) name = snap_str(&sn, ls[l]->name);
            i->uri = snap_str(&sn, asset__cache_entry_key(e));
            i->loader = name;
            i->version = snap_str(&sn, asset__cache_entry_version(e));
            i->bytes = asset__value_charge(e->value);
            i->age_ns = asset__cache_entry_age_ns(&ls[l]->cache, e, now);
            unsigned refs = atomic_load_explicit(&e->value->refs, memory_order_relaxed);
            i->handles = refs > 0 ? refs - 1 : 0;
        }
    }
    uv_mutex_unlock(&s->lock);
    size_t seen = 0;
    for (size_t k = 0; k < sn.n; k++) {
        seen++;
        if (!fn((asset_cache_info_t *)sn.v + k, user)) break;
    }
    snap_free(&sn);
    return seen;
}

size_t asset_server_foreach_loader(asset_server_t *s,
                                   bool (*fn)(const asset_loader_info_t *i, void *user),
                                   void *user) {
    if (!s || !fn) return 0;
    snap_t sn = {.size = sizeof(asset_loader_info_t)};
    size_t nl;
    uv_mutex_lock(&s->lock);
    /* under the lock, which a registration publishes its list under: read before it, a
     * loader registered meanwhile, and already caching, was missing from the snapshot */
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    for (size_t l = 0; l < nl; l++) {
        asset_loader_info_t *i = snap_add(&sn);
        if (!i) break;
        const asset__cache_t *c = &ls[l]->cache;
        i->name = snap_str(&sn, ls[l]->name);
        /* the map's count, not a walk of the entries: an overlay calls this each frame,
         * and 200,000 entries took 15 ms under the lock (a review) */
        i->entries = c->map.count;
        i->bytes = c->bytes;
        i->budget = c->budget;
        i->evictions = c->evictions;
        i->parses = ls[l]->parses;
        i->parse_failures = ls[l]->parse_failures;
        i->parse_ns = ls[l]->parse_ns;
    }
    uv_mutex_unlock(&s->lock);
    size_t seen = 0;
    for (size_t k = 0; k < sn.n; k++) {
        seen++;
        if (!fn((asset_loader_info_t *)sn.v + k, user)) break;
    }
    snap_free(&sn);
    return seen;
}
