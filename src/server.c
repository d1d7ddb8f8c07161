/* server.c - the server object: config, registries, load dispatch (cache fast path,
 * coalescing, job creation), stats, invalidation, destroy and the default instance. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <unistd.h>

#define MiB (1024u * 1024u)

void asset__log(asset_server_t *s, int level, const char *fmt, ...) {
    if (!s || !s->cfg.log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->cfg.log(level, buf, s->cfg.user);
}

void asset__maybe_wake(asset_server_t *s) {
    if (atomic_load_explicit(&s->wake_pending, memory_order_relaxed) &&
        atomic_exchange(&s->wake_pending, false) && s->cfg.wake)
        s->cfg.wake(s->cfg.user);
}

bool asset__on_flush_thread(asset_server_t *s) {
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &s->flush_thread);
}

asset__io_t *asset__io_get(asset_server_t *s) {
    if (!s->io && !s->stopping) s->io = asset__io_start(s);
    return s->io;
}

/* ---- registries ---- */

static asset__source_slot_t *find_source(asset_server_t *s, const char *scheme) {
    for (size_t i = s->nsources; i-- > 0;)
        if (!strcmp(s->sources[i].scheme, scheme)) return &s->sources[i];
    return NULL;
}

int asset_server_register_source(asset_server_t *s, const asset_source_t *src, void *ctx) {
    if (!s || !src || src->abi < 1 || !src->scheme || !*src->scheme || !src->read)
        return ASSET_E_INVALID;
    for (const char *c = src->scheme; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '+' || *c == '-' ||
              *c == '.'))
            return ASSET_E_INVALID; /* lowercase schemes only: URIs are lowercased */
    uv_mutex_lock(&s->lock);
    asset__source_slot_t *slot = find_source(s, src->scheme);
    int rc = ASSET_OK;
    if (slot) { /* replace; the old ctx is the caller's to keep alive */
        if (slot->vt.destroy) slot->vt.destroy(slot->ctx);
        slot->vt = *src;
        slot->ctx = ctx;
    } else if (s->nsources == ASSET__MAX_SOURCES) {
        rc = ASSET_E_NO_MEMORY;
    } else {
        char *scheme = asset__strdup(src->scheme);
        if (!scheme) {
            rc = ASSET_E_NO_MEMORY;
        } else {
            slot = &s->sources[s->nsources++];
            slot->vt = *src;
            slot->scheme = scheme;
            slot->ctx = ctx;
        }
    }
    if (slot) slot->vt.scheme = slot->scheme;
    uv_mutex_unlock(&s->lock);
    return rc;
}

static asset__loader_slot_t *loader_new(const asset_loader_t *ld, void *ctx, size_t budget) {
    asset__loader_slot_t *l = asset__calloc(1, sizeof *l);
    if (!l) return NULL;
    l->name = asset__strdup(ld->name);
    if (!l->name) {
        asset_free(l);
        return NULL;
    }
    l->vt = *ld;
    l->vt.name = l->name;
    l->ctx = ctx;
    asset__cache_init(&l->cache, budget);
    return l;
}

static asset__loader_slot_t *find_loader(asset_server_t *s, const char *name) {
    for (size_t i = 0; i < s->nloaders; i++)
        if (!strcmp(s->loaders[i]->name, name)) return s->loaders[i];
    return NULL;
}

int asset_server_register_loader(asset_server_t *s, const asset_loader_t *ld, void *ctx,
                                 size_t cache_budget) {
    if (!s || !ld || ld->abi < 1 || !ld->name || !*ld->name || !ld->parse) return ASSET_E_INVALID;
    int rc = ASSET_OK;
    uv_mutex_lock(&s->lock);
    if (find_loader(s, ld->name)) {
        rc = ASSET_E_INVALID;
    } else if (s->nloaders == ASSET__MAX_LOADERS) {
        rc = ASSET_E_NO_MEMORY;
    } else {
        asset__loader_slot_t *l =
            loader_new(ld, ctx, cache_budget ? cache_budget : s->cfg.cache_budget);
        if (!l) {
            rc = ASSET_E_NO_MEMORY;
        } else { /* user loaders go before the built-ins */
            memmove(&s->loaders[s->nuser_loaders + 1], &s->loaders[s->nuser_loaders],
                    (s->nloaders - s->nuser_loaders) * sizeof s->loaders[0]);
            s->loaders[s->nuser_loaders++] = l;
            s->nloaders++;
        }
    }
    uv_mutex_unlock(&s->lock);
    return rc;
}

static bool suffix_match(const char *const *suffixes, const char *uri) {
    if (!suffixes) return false;
    size_t ul = strcspn(uri, "?#");
    for (; *suffixes; suffixes++) {
        size_t sl = strlen(*suffixes);
        if (sl <= ul && !strncasecmp(uri + ul - sl, *suffixes, sl)) return true;
    }
    return false;
}

static asset__loader_slot_t *select_loader(asset_server_t *s, const char *uri) {
    for (size_t i = 0; i + 1 < s->nloaders; i++) { /* the last one, bytes, is the fallback */
        asset__loader_slot_t *l = s->loaders[i];
        bool yes = l->vt.claims ? l->vt.claims(l->ctx, uri) : suffix_match(l->vt.suffixes, uri);
        if (yes) return l;
    }
    return s->loaders[s->nloaders - 1];
}

/* ---- create / destroy ---- */

static char *dup_config_string(const char *v, bool *oom) {
    if (!v) return NULL;
    char *d = asset__strdup(v);
    if (!d) *oom = true;
    return d;
}

asset_server_t *asset_server_create(const asset_server_config_t *cfg) {
    asset_server_t *s = asset__calloc(1, sizeof *s);
    if (!s) return NULL;
    asset__json_hooks_install();
    if (cfg) s->cfg = *cfg;
#define DEF(field, value) \
    if (!s->cfg.field) s->cfg.field = (value)
    DEF(max_workers, 2);
    DEF(cache_budget, 256 * (size_t)MiB);
    DEF(max_asset_size, 256 * (size_t)MiB);
    DEF(http_max_connections, 16);
    DEF(http_connect_timeout_ms, 10000);
#undef DEF
    if (s->cfg.max_workers > 256) s->cfg.max_workers = 256;
    bool oom = false;
    const char *pkg_path = s->cfg.pkg_path ? s->cfg.pkg_path : getenv("ASSET_SERVER_PKG_PATH");
    s->cfg.pkg_path = dup_config_string(pkg_path, &oom);
    s->cfg.manifest_schemes = dup_config_string(s->cfg.manifest_schemes, &oom);
    s->cfg.file_root = NULL;
    s->file_root_fd = -1;
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
    s->base_dir = asset_alloc(strlen(cwd) + 2);
    if (s->base_dir)
        asset__path_normalize(cwd, s->base_dir);
    else
        oom = true;
    if (cfg && cfg->file_root) {
        const char *fr = cfg->file_root;
        char *abs = fr[0] == '/' ? asset__strdup(fr) : asset__asprintf("%s/%s", cwd, fr);
        s->file_root = abs ? asset_alloc(strlen(abs) + 2) : NULL;
        if (s->file_root) {
            if (!asset__path_normalize(abs, s->file_root)) strcpy(s->file_root, "/");
        } else {
            oom = true;
        }
        asset_free(abs);
        s->cfg.file_root = s->file_root;
        if (s->file_root) s->file_root_fd = open(s->file_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    }
    uv_mutex_init(&s->lock);
    uv_cond_init(&s->work_cond);
    uv_cond_init(&s->done_cond);
    s->flush_thread = uv_thread_self();
    asset__map_init(&s->inflight);
    s->mem = asset__mem_create();
    s->pkg = asset__pkg_create(s->cfg.pkg_path);
    if (oom || !s->mem || !s->pkg) goto fail;
    asset__source_slot_t *slot;
    const asset_source_t *builtins[] = {&asset__file_source, &asset__mem_source, &asset__pkg_source,
                                        &asset__http_source, &asset__https_source};
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (asset_server_register_source(s, builtins[i], s) != ASSET_OK) goto fail;
    (void)slot;
    asset__loader_slot_t *json = loader_new(&asset__json_loader, s, s->cfg.cache_budget);
    asset__loader_slot_t *bytes = loader_new(&asset__bytes_loader, s, s->cfg.cache_budget);
    if (json) s->loaders[s->nloaders++] = json;
    if (bytes) s->loaders[s->nloaders++] = bytes;
    if (!json || !bytes) goto fail;
    if (asset__pool_start(s) != ASSET_OK) goto fail;
    return s;
fail:
    asset_server_destroy(s);
    return NULL;
}

void asset_server_destroy(asset_server_t *s) {
    if (!s) return;
    uv_mutex_lock(&s->lock);
    s->stopping = true;
    atomic_store(&s->wake_pending, false);
    /* queued jobs: drop them; their handles are freed below */
    while (s->heap_len) {
        asset__job_t *j = asset__heap_pop(s);
        j->finishing = true;
        if (j->mapped) asset__map_remove(&s->inflight, &j->node);
        while (j->handles) asset__job_detach(j, j->handles);
        asset__job_free(j);
    }
    /* running and async jobs: ask them to stop */
    size_t b = 0;
    for (asset__map_node_t *n = NULL; (n = asset__map_next(&s->inflight, n, &b));)
        atomic_store(&((asset__job_t *)n)->cancelled, true);
    uv_cond_broadcast(&s->work_cond);
    uv_mutex_unlock(&s->lock);
    asset__pool_join(s);
    asset__io_t *io = s->io;
    if (io) asset__io_stop(io); /* aborts transfers, which finish their requests */
    s->io = NULL;
    uv_mutex_lock(&s->lock);
    while (s->running_async) uv_cond_wait(&s->done_cond, &s->lock);
    uv_mutex_unlock(&s->lock);
    /* no other thread touches the server from here */
    asset__batch_free_all(s);
    asset__handle_free_all(s);
    asset_free(s->heap);
    asset__map_free(&s->inflight);
    for (size_t i = 0; i < s->nloaders; i++) {
        asset__loader_slot_t *l = s->loaders[i];
        asset__cache_free(&l->cache);
        if (l->vt.destroy) l->vt.destroy(l->ctx);
        asset_free(l->name);
        asset_free(l);
    }
    for (size_t i = 0; i < s->nsources; i++) {
        if (s->sources[i].vt.destroy) s->sources[i].vt.destroy(s->sources[i].ctx);
        asset_free(s->sources[i].scheme);
    }
    asset__mem_destroy(s->mem);
    asset__pkg_destroy(s->pkg);
    uv_cond_destroy(&s->done_cond);
    uv_cond_destroy(&s->work_cond);
    uv_mutex_destroy(&s->lock);
    asset_free((char *)s->cfg.pkg_path);
    asset_free((char *)s->cfg.manifest_schemes);
    asset_free(s->file_root);
    if (s->file_root_fd >= 0) close(s->file_root_fd);
    asset_free(s->base_dir);
    asset_free(s);
}

/* ---- the default instance ---- */

static uv_once_t g_instance_once = UV_ONCE_INIT;
static uv_mutex_t g_instance_lock;
static asset_server_t *g_instance;

static void instance_init(void) { uv_mutex_init(&g_instance_lock); }

asset_server_t *asset_server_instance(void) {
    uv_once(&g_instance_once, instance_init);
    uv_mutex_lock(&g_instance_lock);
    if (!g_instance) g_instance = asset_server_create(NULL);
    asset_server_t *s = g_instance;
    uv_mutex_unlock(&g_instance_lock);
    return s;
}

void asset_server_shutdown_instance(void) {
    uv_once(&g_instance_once, instance_init);
    uv_mutex_lock(&g_instance_lock);
    asset_server_t *s = g_instance;
    g_instance = NULL;
    uv_mutex_unlock(&g_instance_lock);
    asset_server_destroy(s);
}

/* ---- loading ---- */

/* [lock] Fails h at once (delivered at the next flush) with "<uri>: <what>". */
static void fail_now(asset_handle_t *h, asset_status_t st, const char *fmt, ...) ASSET_PRINTF(3, 4);
static void fail_now(asset_handle_t *h, asset_status_t st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *what = asset__vasprintf(fmt, ap);
    va_end(ap);
    char *msg = what ? asset__asprintf("%s: %s", h->uri, what) : NULL;
    asset__handle_decide(h, st, msg, NULL, 0);
    asset_free(what);
    asset_free(msg);
}

/* [lock] The job in flight that a load of uri with these settings can join: same URI,
 * loader, cache use, listing mode and expected digest. */
static asset__job_t *find_inflight(asset_server_t *s, const char *uri, asset__loader_slot_t *ld,
                                   bool no_cache, bool recursive, const char *sha256) {
    for (asset__map_node_t *n = asset__map_get(&s->inflight, uri); n;
         n = asset__map_get_next(&s->inflight, n)) {
        asset__job_t *j = (asset__job_t *)n;
        if (j->loader == ld && j->no_cache == no_cache && j->recursive == recursive &&
            (j->sha256 ? sha256 && !strcasecmp(j->sha256, sha256) : !sha256))
            return j;
    }
    return NULL;
}

static asset__job_t *job_new(asset_uri_t *parsed, asset__source_slot_t *src,
                             asset__loader_slot_t *ld, bool no_cache) {
    asset__job_t *j = asset__calloc(1, sizeof *j);
    if (!j) return NULL;
    j->parsed = *parsed;
    memset(parsed, 0, sizeof *parsed);
    j->uri = j->parsed.uri;
    j->source = src;
    j->loader = ld;
    j->no_cache = no_cache;
    j->heap_idx = SIZE_MAX;
    j->state = ASSET__JOB_QUEUED;
    j->node.key = j->uri;
    return j;
}

static void attach(asset__job_t *j, asset_handle_t *h) {
    h->job = j;
    h->job_next = j->handles;
    j->handles = h;
    j->live++;
}

asset_handle_t *asset_server_load(asset_server_t *s, const char *uri,
                                  const asset_load_options_t *o) {
    return asset__load(s, uri, o, NULL, false, false);
}

asset_handle_t *asset__load(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                            const char *sha256, bool list, bool recursive) {
    if (!s) return NULL;
    asset_load_options_t opt = {0};
    if (o) opt = *o;
    asset_uri_t parsed;
    const char *why = NULL;
    asset_status_t pst = asset__uri_parse(uri, s->base_dir, s->file_root, &parsed, &why);
    asset_handle_t *h = asset__handle_new(s, pst == ASSET_OK ? parsed.uri : uri, &opt);
    if (!h) {
        asset__uri_dispose(&parsed);
        return NULL;
    }
    h->timeout_ms = opt.timeout_ms;
    asset__source_slot_t *src = NULL;
    asset__loader_slot_t *ld = NULL;
    if (pst == ASSET_OK) {
        src = find_source(s, parsed.scheme);
        if (src && list)
            ld = &asset__list_slot;
        else if (src)
            ld = opt.loader ? find_loader(s, opt.loader) : select_loader(s, parsed.uri);
    }
    if (list) opt.no_cache = true;

    uv_mutex_lock(&s->lock);
    if (pst != ASSET_OK) {
        fail_now(h, pst, "%s URI: %s", pst == ASSET_E_FORBIDDEN ? "forbidden" : "invalid", why);
    } else if (!src) {
        fail_now(h, ASSET_E_NO_SOURCE, "no source registered for scheme '%s'", parsed.scheme);
    } else if (list && !src->vt.list) {
        fail_now(h, ASSET_E_UNSUPPORTED, "the '%s' source cannot list folders", parsed.scheme);
    } else if (!ld) {
        fail_now(h, ASSET_E_NO_LOADER, "no loader named '%s'", opt.loader);
    } else if (s->stopping) {
        fail_now(h, ASSET_E_SHUTDOWN, "server is shutting down");
    } else {
        asset__cache_entry_t *e = opt.no_cache ? NULL : asset__cache_get(&ld->cache, parsed.uri);
        if (e && sha256 && (!e->sha256 || strcasecmp(e->sha256, sha256) != 0))
            e = NULL; /* not verified against this digest: read it again */
        asset__job_t *j = NULL;
        if (e && (src->vt.flags & ASSET_SOURCE_IMMUTABLE)) {
            s->stats.cache_hits++; /* no I/O: done at the next flush */
            asset__handle_decide(h, ASSET_OK, NULL, e->value, 0);
        } else if ((j = find_inflight(s, parsed.uri, ld, opt.no_cache, recursive, sha256))) {
            attach(j, h);
            s->stats.coalesced++;
            if (h->priority < j->priority) {
                j->priority = h->priority;
                asset__heap_update(s, j);
            }
            if (j->state != ASSET__JOB_QUEUED) atomic_store(&h->state, ASSET_STATE_LOADING);
        } else if (!(j = job_new(&parsed, src, ld, opt.no_cache))) {
            fail_now(h, ASSET_E_NO_MEMORY, "out of memory");
        } else if (sha256 && !(j->sha256 = asset__strdup(sha256))) {
            asset__job_free(j);
            fail_now(h, ASSET_E_NO_MEMORY, "out of memory");
        } else {
            j->priority = h->priority;
            j->is_list = list;
            j->recursive = recursive;
            if (e) {
                j->cached_version = e->version ? asset__strdup(e->version) : NULL;
                j->cached = asset__value_retain(e->value);
                if (e->version && !j->cached_version) { /* no memory: read it all again */
                    asset__value_release(j->cached);
                    j->cached = NULL;
                }
            }
            bool mapped = asset__map_put(&s->inflight, &j->node);
            if (!mapped || !asset__heap_push(s, j)) {
                if (mapped) asset__map_remove(&s->inflight, &j->node);
                asset__job_free(j);
                fail_now(h, ASSET_E_NO_MEMORY, "out of memory");
            } else {
                j->mapped = true;
                attach(j, h);
            }
        }
        if (!h->decided && opt.timeout_ms) {
            h->deadline_ns = asset__now_ns() + (uint64_t)opt.timeout_ms * 1000000u;
            if (!asset__io_get(s)) { /* say why: "too many open files" is something to act on */
                char why[160];
                snprintf(why, sizeof why,
                         "cannot arm the timeout: the I/O thread could not start (%s)",
                         s->io_error ? uv_strerror(s->io_error) : "unknown error");
                asset__handle_cancel_locked(
                    h, !s->io_error || s->io_error == UV_ENOMEM ? ASSET_E_NO_MEMORY : ASSET_E_IO,
                    why);
            } else if (!asset__timer_add(s, h)) {
                asset__handle_cancel_locked(h, ASSET_E_NO_MEMORY,
                                            "cannot arm the timeout: out of memory");
            } else if (h->timer_idx == 0) {
                asset__io_kick(s->io);
            }
        }
    }
    uv_mutex_unlock(&s->lock);
    asset__uri_dispose(&parsed);
    asset__maybe_wake(s);
    return h;
}

/* ---- caches and stats ---- */

void asset_server_invalidate(asset_server_t *s, const char *uri) {
    if (!s || !uri) return;
    asset_uri_t u;
    const char *why;
    if (asset__uri_parse(uri, s->base_dir, s->file_root, &u, &why) != ASSET_OK) return;
    uv_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nloaders; i++) asset__cache_remove(&s->loaders[i]->cache, u.uri);
    uv_mutex_unlock(&s->lock);
    asset__uri_dispose(&u);
}

void asset_server_clear_caches(asset_server_t *s) {
    if (!s) return;
    uv_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nloaders; i++) asset__cache_clear(&s->loaders[i]->cache);
    uv_mutex_unlock(&s->lock);
}

void asset_server_stats(const asset_server_t *cs, asset_stats_t *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!cs) return;
    asset_server_t *s = (asset_server_t *)cs;
    uv_mutex_lock(&s->lock);
    *out = s->stats;
    out->source_reads = atomic_load_explicit(&s->source_reads, memory_order_relaxed);
    out->bytes_read = atomic_load_explicit(&s->bytes_read, memory_order_relaxed);
    out->pending = s->heap_len;
    out->loading = s->running + s->running_async;
    for (size_t i = 0; i < s->nloaders; i++) {
        out->bytes_cached += s->loaders[i]->cache.bytes;
        out->cache_evictions += s->loaders[i]->cache.evictions;
    }
    uv_mutex_unlock(&s->lock);
}

/* ---- packages and the mem store ---- */

int asset_server_mount(asset_server_t *s, const char *pkg, const char *dir) {
    if (!s || !pkg || !dir) return ASSET_E_INVALID;
    return asset__pkg_mount(s->pkg, pkg, dir);
}

int asset_server_mount_embedded(asset_server_t *s, const char *pkg,
                                const asset_embedded_file_t *files, size_t count) {
    if (!s || !pkg || (!files && count)) return ASSET_E_INVALID;
    return asset__pkg_mount_embedded(s->pkg, pkg, files, count);
}
