/* registry.c - the source and loader registries of a server.
 *
 * Both may change while loads run on other threads (the header promises every function
 * to any thread), so:
 * - Sources are heap slots in an array guarded by s->lock; a load looks its source up
 *   under the lock and the job counts itself as a user of the slot. Replacing a scheme
 *   retires the old slot; its destroy() runs once no job uses it any more, outside the
 *   lock, on the thread that calls asset__sources_reap (register, flush, destroy).
 * - Loaders are never removed, and loader selection calls user code (claims), which
 *   must not run under the lock. The list is copy-on-write: a registration publishes a
 *   new immutable array with an atomic store; readers take a snapshot without a lock.
 *   Old arrays stay until destroy (at most one per registration, so at most 32). */
#include "internal.h"

#include <string.h>

struct asset__loaders {
    size_t n, nuser; /* user loaders first, then json, bytes */
    size_t nclaims;  /* of them with a claims() callback */
    asset__loader_slot_t *v[ASSET__MAX_LOADERS];
    struct asset__loaders *older; /* the array this one replaced */
};

/* ---- sources ---- */

/* [lock] */
asset__source_slot_t *asset__source_find(asset_server_t *s, const char *scheme) {
    /* the first byte before the call: a lookup passes most slots on it */
    for (size_t i = 0; i < s->nsources; i++)
        if (s->sources[i]->scheme[0] == scheme[0] && !strcmp(s->sources[i]->scheme, scheme))
            return s->sources[i];
    return NULL;
}

static void source_slot_free(asset__source_slot_t *slot) {
    if (slot->vt.destroy) slot->vt.destroy(slot->ctx);
    asset_free(slot->scheme);
    asset_free(slot);
}

void asset__sources_reap(asset_server_t *s) {
    asset__source_slot_t *dead = NULL;
    uv_mutex_lock(&s->lock);
    for (asset__source_slot_t **p = &s->retired_sources; *p;) {
        asset__source_slot_t *slot = *p;
        if (slot->users == 0) {
            *p = slot->next_retired;
            slot->next_retired = dead;
            dead = slot;
        } else {
            p = &slot->next_retired;
        }
    }
    uv_mutex_unlock(&s->lock);
    while (dead) {
        asset__source_slot_t *next = dead->next_retired;
        source_slot_free(dead);
        dead = next;
    }
}

/* [lock] A replaced scheme: what its old source read is no answer for the loads after
 * the registration, which "use the new source" (an IMMUTABLE one's entries would be
 * served without asking it). Values held by handles stay. */
static void drop_cached_scheme(asset_server_t *s, const char *scheme) {
    size_t sl = strlen(scheme), nl;
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    for (size_t l = 0; l < nl; l++) {
        asset__cache_t *c = &ls[l]->cache;
        for (asset__cache_entry_t *e = c->lru_head, *next; e; e = next) {
            next = e->lru_next;
            const char *k = asset__cache_entry_key(e);
            if (!strncmp(k, scheme, sl) && !strncmp(k + sl, "://", 3)) asset__cache_remove(c, k);
        }
    }
}

/* The bytes of a source vtable of ABI abi: fields are only ever appended, so a program
 * built against an older header passed a shorter struct, and a copy of the whole current
 * one read past its end (the loader vtable's copy already went by its abi). A new ABI
 * adds its size here; one newer than this library's: the fields this library knows. */
#define SOURCE_ABI1_SIZE (offsetof(asset_source_t, destroy) + sizeof(void (*)(void *)))
_Static_assert(ASSET_SOURCE_ABI == 1 && sizeof(asset_source_t) == SOURCE_ABI1_SIZE,
               "a new source ABI: give source_vt_size its size");
static size_t source_vt_size(uint32_t abi) {
    (void)abi; /* ABI 1 is the only one */
    return SOURCE_ABI1_SIZE;
}

int asset_server_register_source(asset_server_t *s, const asset_source_t *src, void *ctx) {
    if (!s || !src || src->abi < 1 || !src->scheme || !*src->scheme || !src->read)
        return ASSET_E_INVALID;
    /* a scheme a URI can name: a lowercase letter first (else "3d://x" is a bare path)
     * and no longer than a URI's (else "scheme too long"); a source no load reaches was
     * registered with ASSET_OK */
    size_t sn = strlen(src->scheme);
    bool lower; /* lowercase schemes only: URIs are lowercased */
    if (sn >= sizeof(((asset_uri_t *)0)->scheme) ||
        asset__uri_scheme_chars(src->scheme, sn, &lower) != sn || !lower)
        return ASSET_E_INVALID;
    asset__source_slot_t *slot = asset__calloc(1, sizeof *slot);
    char *scheme = slot ? asset__strdup(src->scheme) : NULL;
    if (!scheme) {
        asset_free(slot);
        return ASSET_E_NO_MEMORY;
    }
    memcpy(&slot->vt, src, source_vt_size(src->abi)); /* the rest stays zero (calloc) */
    slot->vt.scheme = slot->scheme = scheme;
    slot->ctx = ctx;
    int rc = ASSET_OK;
    bool replaced = false;
    uv_mutex_lock(&s->lock);
    size_t i = 0;
    while (i < s->nsources && strcmp(s->sources[i]->scheme, scheme) != 0) i++;
    if (i < s->nsources) { /* replace: the old one dies once no job reads through it */
        asset__source_slot_t *old = s->sources[i];
        old->next_retired = s->retired_sources;
        old->retired = true;
        s->retired_sources = old;
        s->sources[i] = slot;
        replaced = true;
        drop_cached_scheme(s, scheme);
    } else if (s->nsources == ASSET__MAX_SOURCES) {
        rc = ASSET_E_NO_MEMORY;
    } else {
        s->sources[s->nsources++] = slot;
    }
    if (rc == ASSET_OK && (src->flags & ASSET_SOURCE_IMMUTABLE)) /* writers hold the lock */
        atomic_store_explicit(&s->immutable_schemes,
                              atomic_load_explicit(&s->immutable_schemes, memory_order_relaxed) |
                                  asset__scheme_bit(scheme, strlen(scheme)),
                              memory_order_relaxed);
    uv_mutex_unlock(&s->lock);
    if (rc != ASSET_OK) {
        asset_free(scheme);
        asset_free(slot);
    }
    if (replaced) {
        /* a value to free on the flush thread (a dropped entry's): the host flushes, as
         * after invalidate (it was never woken: a review) */
        asset__maybe_wake(s);
        asset__sources_reap(s);
    }
    return rc;
}

/* ---- loaders ---- */

static asset__loaders_t *loaders_now(const asset_server_t *s) {
    return atomic_load_explicit(&((asset_server_t *)s)->loaders, memory_order_acquire);
}

asset__loader_slot_t *const *asset__loaders(const asset_server_t *s, size_t *n) {
    asset__loaders_t *l = loaders_now(s);
    *n = l ? l->n : 0;
    return l ? l->v : NULL;
}

/* The bytes of a loader vtable of ABI abi, as source_vt_size: ABI 1 ends at destroy, 2
 * at finalize; one newer than this library's, the fields this library knows. It copied
 * sizeof for any ABI from 2 on: once the struct grows, a program built against ABI 2
 * would be read past its vtable's end. A new ABI adds its size here. */
#define LOADER_ABI1_SIZE offsetof(asset_loader_t, flags)
#define LOADER_ABI2_SIZE \
    (offsetof(asset_loader_t, finalize) + sizeof(((asset_loader_t *)0)->finalize))
_Static_assert(ASSET_LOADER_ABI == 2 && sizeof(asset_loader_t) == LOADER_ABI2_SIZE,
               "a new loader ABI: give loader_vt_size its size");
static size_t loader_vt_size(uint32_t abi) {
    return abi == 1 ? LOADER_ABI1_SIZE : LOADER_ABI2_SIZE;
}

static asset__loader_slot_t *loader_new(asset_server_t *s, const asset_loader_t *ld, void *ctx,
                                        size_t budget) {
    asset__loader_slot_t *l = asset__calloc(1, sizeof *l);
    if (!l) return NULL;
    l->name = asset__strdup(ld->name);
    if (!l->name) {
        asset_free(l);
        return NULL;
    }
    memcpy(&l->vt, ld, loader_vt_size(ld->abi)); /* the rest stays zero (calloc) */
    l->vt.name = l->name;
    l->ctx = ctx;
    asset__cache_init(&l->cache, budget);
    l->cache.server = s; /* eviction log lines */
    l->cache.name = l->name;
    return l;
}

static void loader_free(asset__loader_slot_t *l) {
    asset__cache_free(&l->cache);
    if (l->vt.destroy) l->vt.destroy(l->ctx);
    asset_free(l->name);
    asset_free(l);
}

asset__loader_slot_t *asset__loader_find(const asset_server_t *s, const char *name) {
    asset__loaders_t *l = loaders_now(s);
    for (size_t i = 0; l && i < l->n; i++) /* the first byte first, as asset__source_find */
        if (l->v[i]->name[0] == name[0] && !strcmp(l->v[i]->name, name)) return l->v[i];
    return NULL;
}

static bool suffix_match(const char *const *suffixes, const char *uri) {
    if (!suffixes) return false;
    size_t ul = asset__uri_name_len(uri); /* "a?.json" is JSON in a file name */
    for (; *suffixes; suffixes++) {
        size_t sl = strlen(*suffixes);
        if (sl <= ul && !asset__strncasecmp(uri + ul - sl, *suffixes, sl)) return true;
    }
    return false;
}

asset__loader_slot_t *asset__loader_select(const asset_server_t *s, const char *uri) {
    asset__loaders_t *l = loaders_now(s);
    if (!l || !l->n) return NULL;
    for (size_t i = 0; i + 1 < l->n; i++) { /* the last one, bytes, is the fallback */
        asset__loader_slot_t *ld = l->v[i];
        bool yes = ld->vt.claims ? ld->vt.claims(ld->ctx, uri) : suffix_match(ld->vt.suffixes, uri);
        if (yes) return ld;
    }
    return l->v[l->n - 1];
}

bool asset__loaders_claim(const asset_server_t *s) {
    asset__loaders_t *l = loaders_now(s);
    return l && l->nclaims;
}

/* [lock] Publishes a copy of the current array with slot inserted at index at. */
static bool loaders_insert(asset_server_t *s, asset__loader_slot_t *slot, size_t at, bool user) {
    asset__loaders_t *old = loaders_now(s);
    asset__loaders_t *nl = asset__calloc(1, sizeof *nl);
    if (!nl) return false;
    if (old) *nl = *old;
    nl->older = old;
    memmove(&nl->v[at + 1], &nl->v[at], (nl->n - at) * sizeof nl->v[0]);
    nl->v[at] = slot;
    nl->n++;
    if (user) nl->nuser++;
    if (slot->vt.claims) nl->nclaims++;
    atomic_store_explicit(&s->loaders, nl, memory_order_release);
    return true;
}

int asset_server_register_loader(asset_server_t *s, const asset_loader_t *ld, void *ctx,
                                 size_t cache_budget) {
    if (!s || !ld || ld->abi < 1 || !ld->name || !*ld->name || !ld->parse) return ASSET_E_INVALID;
    /* the names of the library's own slots (asset__task_slot, asset__list_slot): a loader
     * by one would read as tasks or listings in traces and introspection */
    if (!strcmp(ld->name, "task") || !strcmp(ld->name, "listing")) return ASSET_E_INVALID;
    int rc = ASSET_OK;
    uv_mutex_lock(&s->lock);
    asset__loaders_t *cur = loaders_now(s);
    if (asset__loader_find(s, ld->name)) {
        rc = ASSET_E_INVALID;
    } else if (cur && cur->n == ASSET__MAX_LOADERS) {
        rc = ASSET_E_NO_MEMORY;
    } else {
        asset__loader_slot_t *l =
            loader_new(s, ld, ctx, cache_budget ? cache_budget : s->cfg.cache_budget);
        if (!l || !loaders_insert(s, l, cur ? cur->nuser : 0, true)) { /* before built-ins */
            if (l) {
                l->vt.destroy = NULL; /* not registered: ctx stays the caller's */
                loader_free(l);
            }
            rc = ASSET_E_NO_MEMORY;
        }
    }
    uv_mutex_unlock(&s->lock);
    return rc;
}

/* ---- the built-ins, and the end ---- */

static const asset_source_t *const builtin_sources[] = {
    &asset__file_source, &asset__mem_source,   &asset__pkg_source,
    &asset__http_source, &asset__https_source,
};

asset_status_t asset__registry_init(asset_server_t *s) {
    for (size_t i = 0; i < sizeof builtin_sources / sizeof *builtin_sources; i++)
        if (asset_server_register_source(s, builtin_sources[i], s) != ASSET_OK)
            return ASSET_E_NO_MEMORY;
    /* the pkg source versions the files of watched directory mounts, which change */
    uv_mutex_lock(&s->lock);
    asset__source_find(s, asset__pkg_source.scheme)->versions_revalidate = true;
    uv_mutex_unlock(&s->lock);
    const asset_loader_t *builtin_loaders[] = {&asset__json_loader, &asset__bytes_loader};
    for (size_t i = 0; i < 2; i++) {
        asset__loader_slot_t *l = loader_new(s, builtin_loaders[i], s, s->cfg.cache_budget);
        asset__loaders_t *cur = loaders_now(s);
        if (!l || !loaders_insert(s, l, cur ? cur->n : 0, false)) {
            if (l) loader_free(l);
            return ASSET_E_NO_MEMORY;
        }
    }
    return ASSET_OK;
}

void asset__registry_free(asset_server_t *s) {
    asset__loaders_t *l = loaders_now(s);
    /* every value first (some wait for the flush thread: this one, now), then the
     * loaders their free_value belongs to */
    for (size_t i = 0; l && i < l->n; i++) asset__cache_free(&l->v[i]->cache);
    asset__values_drain(s, 0, 0);
    for (size_t i = 0; l && i < l->n; i++) loader_free(l->v[i]);
    while (l) {
        asset__loaders_t *older = l->older;
        asset_free(l);
        l = older;
    }
    atomic_store(&s->loaders, NULL);
    asset__sources_reap(s); /* every job is gone: no retired source has users */
    for (size_t i = 0; i < s->nsources; i++) source_slot_free(s->sources[i]);
    s->nsources = 0;
}
