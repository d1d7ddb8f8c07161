/* server.c - the server object: config, registries, load dispatch (cache fast path,
 * coalescing, job creation), stats, invalidation, destroy and the default instance. */
#include "internal.h"
#include "platform/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024u * 1024u)

_Thread_local asset_server_t *asset__thread_owner;

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
    if (!s->io && !s->stopping) {
        s->io = asset__io_start(s);
        if (s->io) asset__reload_io_start(s); /* watches and HTTP polls live there */
    }
    return s->io;
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
    DEF(http_low_speed_ms, 30000);
    DEF(reload_debounce_ms, 50);
    DEF(map_threshold, 1 * (size_t)MiB);
#undef DEF
    if (s->cfg.max_workers > 256) s->cfg.max_workers = 256;
    bool oom = false;
    const char *pkg_path = s->cfg.pkg_path ? s->cfg.pkg_path : getenv("ASSET_SERVER_PKG_PATH");
    s->cfg.pkg_path = dup_config_string(pkg_path, &oom);
    s->cfg.manifest_schemes = dup_config_string(s->cfg.manifest_schemes, &oom);
    s->cfg.file_root = NULL;
    char cwd[4096];
    if (!asset__getcwd(cwd, sizeof cwd)) strcpy(cwd, "/");
    s->base_dir = asset_alloc(strlen(cwd) + 2);
    if (s->base_dir)
        asset__path_normalize(cwd, s->base_dir);
    else
        oom = true;
    if (cfg && cfg->file_root) {
        /* in the library's form ('/', Windows: "C:/x"); a root the OS cannot take
         * as a path stays as given, and no file opens beneath it */
        char *fr = asset__strdup(cfg->file_root);
        asset_status_t pst;
        if (fr && asset__path_prepare(fr, false, &pst)) strcpy(fr, cfg->file_root);
        size_t cl = asset__path_root_len(cwd);
        char *abs = !fr                        ? NULL
                    : asset__path_root_len(fr) ? asset__strdup(fr)
                    : fr[0] == '/' && cl > 1   ? asset__asprintf("%.*s%s", (int)(cl - 1), cwd, fr)
                                               : asset__asprintf("%s/%s", cwd, fr);
        asset_free(fr);
        s->file_root = abs ? asset_alloc(strlen(abs) + 2) : NULL;
        if (s->file_root) {
            if (!asset__path_normalize(abs, s->file_root))
                snprintf(s->file_root, strlen(abs) + 2, "%.*s", (int)asset__path_root_len(abs),
                         abs);
        } else {
            oom = true;
        }
        asset_free(abs);
        s->cfg.file_root = s->file_root;
        if (s->file_root && asset__dir_open(s->file_root, &s->file_root_dir) == -ENOMEM) oom = true;
    }
    uv_mutex_init(&s->lock);
    uv_cond_init(&s->work_cond);
    uv_cond_init(&s->done_cond);
    s->flush_thread = uv_thread_self();
    if (s->cfg.trace && !asset__trace_set(s, s->cfg.trace, s->cfg.trace_user)) oom = true;
    asset__map_init(&s->inflight);
    asset__map_init(&s->watched);
    s->mem = asset__mem_create();
    s->pkg = asset__pkg_create(s->cfg.pkg_path);
    if (oom || !s->mem || !s->pkg) goto fail;
    if (asset__registry_init(s) != ASSET_OK) goto fail;
    if (asset__pool_start(s) != ASSET_OK) goto fail;
    return s;
fail:
    asset_server_destroy(s);
    return NULL;
}

/* [lock] Why destroying s from this thread would hang or free what the caller is
 * running in, or NULL when it is fine. */
static const char *destroy_refused(asset_server_t *s) {
    if (asset__thread_owner == s)
        return "called from one of its own worker or I/O threads (a source or loader "
               "callback); it would wait for itself";
    if (s->in_flush && asset__on_flush_thread(s))
        return "called from inside its own flush (a completion or batch callback); "
               "destroy after asset_server_flush() returns";
    return NULL;
}

void asset_server_destroy(asset_server_t *s) {
    if (!s) return;
    uv_mutex_lock(&s->lock);
    const char *refused = destroy_refused(s);
    if (refused) {
        uv_mutex_unlock(&s->lock);
        asset__log(s, ASSET_LOG_ERROR, "asset_server_destroy: refused, %s", refused);
        return;
    }
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
    while (s->running_async || s->caller_runs) uv_cond_wait(&s->done_cond, &s->lock);
    uv_mutex_unlock(&s->lock);
    /* no other thread touches the server from here */
    asset__batch_free_all(s);
    asset__graph_free_all(s); /* jobs waiting for dependencies or finalize */
    asset__handle_free_all(s);
    asset__heap_free(s);
    asset__map_free(&s->inflight);
    asset__registry_free(s);
    asset__reload_free(s);
    asset__trace_free(s);
    asset__mem_destroy(s->mem);
    asset__pkg_destroy(s->pkg);
    uv_cond_destroy(&s->done_cond);
    uv_cond_destroy(&s->work_cond);
    uv_mutex_destroy(&s->lock);
    asset_free((char *)s->cfg.pkg_path);
    asset_free((char *)s->cfg.manifest_schemes);
    asset_free(s->file_root);
    asset__dir_close(s->file_root_dir);
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
            (j->sha256 ? sha256 && !asset__strcasecmp(j->sha256, sha256) : !sha256))
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
    src->users++; /* [lock] a replaced source lives until its last job is freed */
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

/* Whether a cached entry of an immutable source is served without I/O: unless it carries
 * a real version (a watched directory mount), which is revalidated. */
static bool entry_immutable(const asset__cache_entry_t *e) {
    return !e->version || !strcmp(e->version, asset__version_immutable);
}

/* What load_hit_fast leaves the full path on a miss, so that a miss does neither twice:
 * the loader it chose for the URI as given (claims() is user code) and the handle it
 * made from it with the same options (never linked: asset_free alone frees it). */
typedef struct fast_miss {
    bool selected; /* ld is the choice for uri (NULL: none) */
    asset__loader_slot_t *ld;
    asset_handle_t *h; /* or NULL */
} fast_miss_t;

/* A cache hit on an immutable source, found by the URI as given: cache keys are
 * normalised URIs, and normalising one gives it back unchanged, so a URI equal to a key
 * is that key. No parse and no allocation but the handle's. Returns the decided handle,
 * or NULL to take the full path (a miss, or anything this one does not handle), with
 * what it made in *miss. */
static asset_handle_t *load_hit_fast(asset_server_t *s, const char *uri,
                                     const asset_load_options_t *opt, asset__load_hook_fn hook,
                                     void *hook_arg, fast_miss_t *miss) {
    char scheme[sizeof(((asset_uri_t *)0)->scheme)];
    bool lower;
    size_t sl = asset__uri_scheme_len(uri, &lower);
    /* a normalised key: a lowercase scheme, "://", no label */
    if (!lower || sl >= sizeof scheme || strchr(uri + sl, '#')) return NULL;
    /* no IMMUTABLE source was ever registered for this scheme (file://, http://): no
     * hit is possible, and the lock round trip is saved */
    if (!(atomic_load_explicit(&s->immutable_schemes, memory_order_relaxed) &
          asset__scheme_bit(uri, sl)))
        return NULL;
    memcpy(scheme, uri, sl);
    scheme[sl] = 0;
    asset__loader_slot_t *ld =
        opt->loader ? asset__loader_find(s, opt->loader) : asset__loader_select(s, uri);
    miss->selected = true;
    miss->ld = ld;
    if (!ld) return NULL;
    asset_handle_t *h = asset__handle_new(s, uri, opt);
    if (!h) return NULL;
    uv_mutex_lock(&s->lock);
    asset__source_slot_t *src = s->stopping ? NULL : asset__source_find(s, scheme);
    asset__cache_entry_t *e =
        src && (src->vt.flags & ASSET_SOURCE_IMMUTABLE) ? asset__cache_get(&ld->cache, uri) : NULL;
    if (!e || !entry_immutable(e)) {
        uv_mutex_unlock(&s->lock);
        miss->h = h;
        return NULL;
    }
    asset__handle_link(s, h);
    if (hook) hook(s, h, hook_arg, true);
    h->loader = ld;
    h->timeout_ms = opt->timeout_ms;
    h->optional = opt->optional;
    s->stats.cache_hits++;
    asset__handle_decide_value(h, e->value, 0);
    if (hook) hook(s, h, hook_arg, false);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
    return h;
}

asset_handle_t *asset_server_load(asset_server_t *s, const char *uri,
                                  const asset_load_options_t *o) {
    return asset__load(s, uri, o, NULL, false, false);
}

asset_handle_t *asset__load(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                            const char *sha256, bool list, bool recursive) {
    return asset__load_ex(s, uri, o, sha256, list, recursive, 0);
}

asset_handle_t *asset__load_ex(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                               const char *sha256, bool list, bool recursive, unsigned flags) {
    return asset__load_hooked(s, uri, o, sha256, list, recursive, flags, NULL, NULL);
}

asset_handle_t *asset__load_hooked(asset_server_t *s, const char *uri,
                                   const asset_load_options_t *o, const char *sha256, bool list,
                                   bool recursive, unsigned flags, asset__load_hook_fn hook,
                                   void *hook_arg) {
    if (!s) return NULL;
    asset_load_options_t opt = {0};
    if (o) opt = *o;
    fast_miss_t miss = {0};
    if (uri && !list && !sha256 && !flags && !opt.no_cache) {
        asset_handle_t *hit = load_hit_fast(s, uri, &opt, hook, hook_arg, &miss);
        if (hit) return hit;
    }
    asset_uri_t parsed;
    const char *why = NULL;
    /* "uri#label": the job loads uri (shared with every load of it), the handle wants
     * the sub-asset; '#' always starts the label (a literal one is %23) */
    const char *hash = uri && !list ? strchr(uri, '#') : NULL;
    char *base = hash ? asset__strndup(uri, (size_t)(hash - uri)) : NULL;
    if (hash && !base) {
        asset_free(miss.h);
        return NULL;
    }
    asset_status_t pst =
        asset__uri_parse(base ? base : uri, s->base_dir, s->file_root, &parsed, &why);
    asset_free(base);
    if (pst == ASSET_OK && hash && !hash[1]) {
        asset__uri_dispose(&parsed);
        pst = ASSET_E_INVALID;
        why = "empty label after '#'";
    }
    char *named = pst == ASSET_OK && hash ? asset__asprintf("%s%s", parsed.uri, hash) : NULL;
    const char *huri = pst == ASSET_OK ? (named ? named : parsed.uri) : uri;
    /* the fast path's handle when it names huri (uri was normalised already, or is
     * invalid): made with the same options, so the same handle */
    asset_handle_t *h = miss.h;
    if (h && strcmp(h->uri, huri) != 0) {
        asset_free(h);
        h = NULL;
    }
    if (!h && (pst != ASSET_OK || !hash || named)) h = asset__handle_new(s, huri, &opt);
    asset_free(named);
    if (h && named && !(h->label = asset__strdup(hash + 1))) {
        uv_mutex_lock(&s->lock);
        asset__handle_link(s, h); /* freed the usual way */
        h->refs = 0;
        asset__handle_maybe_free(h);
        uv_mutex_unlock(&s->lock);
        h = NULL;
    }
    if (!h) {
        asset__uri_dispose(&parsed);
        return NULL;
    }
    h->timeout_ms = opt.timeout_ms;
    h->optional = opt.optional;
    h->reload = (flags & ASSET__LOAD_RELOAD) != 0;
    h->reload_forced = (flags & ASSET__LOAD_FORCED) != 0;
    asset__source_slot_t *src = NULL;
    asset__loader_slot_t *ld = NULL;
    /* claims() is user code: never under the lock, and once (the fast path's choice
     * holds when uri was normalised already) */
    if (pst == ASSET_OK)
        ld = list                                        ? &asset__list_slot
             : miss.selected && !strcmp(parsed.uri, uri) ? miss.ld
             : opt.loader                                ? asset__loader_find(s, opt.loader)
                                                         : asset__loader_select(s, parsed.uri);
    if (list) opt.no_cache = true;

    bool pushed = false; /* a worker is told after the unlock (it would wait for it) */
    uv_mutex_lock(&s->lock);
    /* the handle becomes visible to cancel_tag in the same critical section that
     * attaches it: a cancel can never decide it between the two */
    asset__handle_link(s, h);
    if (hook) hook(s, h, hook_arg, true);
    h->loader = ld;
    if (pst == ASSET_OK) src = asset__source_find(s, parsed.scheme);
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
        bool forced = (flags & ASSET__LOAD_FORCED) != 0;
        asset__cache_entry_t *e =
            opt.no_cache || forced ? NULL : asset__cache_get(&ld->cache, parsed.uri);
        if (e && sha256 && (!e->sha256 || asset__strcasecmp(e->sha256, sha256) != 0))
            e = NULL; /* not verified against this digest: read it again */
        asset__job_t *j = NULL;
        /* immutable: no I/O, unless the entry carries a real version (a watched
         * directory mount) or this is a reload */
        bool immutable =
            (src->vt.flags & ASSET_SOURCE_IMMUTABLE) && !h->reload && (!e || entry_immutable(e));
        if (e && immutable) {
            s->stats.cache_hits++; /* no I/O: done at the next flush */
            asset__handle_decide_value(h, e->value, 0);
        } else if (!h->reload &&
                   (j = find_inflight(s, parsed.uri, ld, opt.no_cache, recursive, sha256))) {
            attach(j, h);
            s->stats.coalesced++;
            asset__log(s, ASSET_LOG_DEBUG, "%s: joined the load in flight", h->uri);
            if (h->priority < j->priority) {
                j->priority = h->priority;
                asset__heap_update(s, j);
                asset__graph_raise(s, j, j->priority); /* and what it waits for */
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
            j->map_file = opt.map_file;
            if (e) {
                j->cached_version = e->version ? asset__strdup(e->version) : NULL;
                j->cached = asset__value_retain(e->value);
                if (e->version && !j->cached_version) { /* no memory: read it all again */
                    asset__value_release(j->cached);
                    j->cached = NULL;
                }
            }
            bool mapped = asset__map_put(&s->inflight, &j->node);
            if (!mapped || !(pushed = asset__heap_push(s, j))) {
                if (mapped) asset__map_remove(&s->inflight, &j->node);
                asset__job_free(j);
                fail_now(h, ASSET_E_NO_MEMORY, "out of memory");
            } else {
                j->mapped = true;
                attach(j, h);
                asset__trace_job_new(s, j);
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
    if (hook) hook(s, h, hook_arg, false);
    uv_mutex_unlock(&s->lock);
    if (pushed) asset__pool_notify(s);
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
    size_t n;
    asset__loader_slot_t *const *ls = asset__loaders(s, &n);
    for (size_t i = 0; i < n; i++) asset__cache_remove(&ls[i]->cache, u.uri);
    uv_mutex_unlock(&s->lock);
    asset__uri_dispose(&u);
}

void asset_server_clear_caches(asset_server_t *s) {
    if (!s) return;
    uv_mutex_lock(&s->lock);
    size_t n;
    asset__loader_slot_t *const *ls = asset__loaders(s, &n);
    for (size_t i = 0; i < n; i++) asset__cache_clear(&ls[i]->cache);
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
    out->watches = atomic_load_explicit(&s->watches, memory_order_relaxed);
    out->pending = s->heap_len;
    out->loading = s->running + s->running_async;
    size_t n;
    asset__loader_slot_t *const *ls = asset__loaders(s, &n);
    for (size_t i = 0; i < n; i++) {
        out->bytes_cached += ls[i]->cache.bytes;
        out->cache_evictions += ls[i]->cache.evictions;
    }
    uv_mutex_unlock(&s->lock);
}

/* ---- packages and the mem store ---- */

int asset_server_mount(asset_server_t *s, const char *pkg, const char *dir) {
    if (!s || !pkg || !dir) return ASSET_E_INVALID;
    int rc = asset__pkg_mount(s->pkg, pkg, dir);
    if (rc == ASSET_OK) asset__log(s, ASSET_LOG_INFO, "mounted %s at %s", pkg, dir);
    return rc;
}

int asset_server_mount_embedded(asset_server_t *s, const char *pkg,
                                const asset_embedded_file_t *files, size_t count) {
    if (!s || !pkg || (!files && count)) return ASSET_E_INVALID;
    int rc = asset__pkg_mount_embedded(s->pkg, pkg, files, count);
    if (rc == ASSET_OK)
        asset__log(s, ASSET_LOG_INFO, "mounted %s: %zu embedded file%s", pkg, count,
                   count == 1 ? "" : "s");
    return rc;
}
