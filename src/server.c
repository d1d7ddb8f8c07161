/* server.c - the server object: config, registries, stats, invalidation, destroy and
 * the default instance (load dispatch is in load.c). */
#include "internal.h"
#include "platform/platform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MiB (1024u * 1024u)

_Thread_local asset_server_t *asset__thread_owner;
_Thread_local asset_server_t *asset__thread_waiting;
_Thread_local asset_server_t *asset__thread_flushing;
_Thread_local unsigned asset__thread_freeing;

/* A line's control bytes (0x01 to 0x1f, 0x7f) written "\xNN": a URI or a message holds
 * what the program, a file name or a server gave it, and a log is read line by line (a
 * "\n" in a file name began a line of its own, an escape sequence drove the terminal;
 * thirty-seventh review). NULL when the line has none (or out of memory: then as it is). */
static bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

static char *escape_controls(const char *line) {
    size_t n = 0, extra = 0;
    for (; line[n]; n++)
        if (is_control((unsigned char)line[n])) extra += 3;
    char *out = extra ? asset_alloc(n + extra + 1) : NULL;
    if (!out) return NULL;
    char *o = out;
    for (const char *p = line; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (is_control(c)) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = "0123456789abcdef"[c >> 4];
            *o++ = "0123456789abcdef"[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o = '\0';
    return out;
}

/* The whole line, however long (a failed load's message ends with its reason, after a
 * URI of up to 8 KiB): on the stack when it fits, else on the heap; out of memory, its
 * first 1,023 bytes. Control bytes escaped (escape_controls). */
void asset__log(asset_server_t *s, int level, const char *fmt, ...) {
    if (!s || !s->cfg.log) return;
    char buf[1024], *line = buf;
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n >= (int)sizeof buf && (line = asset_alloc((size_t)n + 1)) != NULL)
        vsnprintf(line, (size_t)n + 1, fmt, ap2);
    else
        line = buf;
    va_end(ap2);
    va_end(ap);
    char *escaped = escape_controls(line);
    s->cfg.log(level, escaped ? escaped : line, s->cfg.user);
    asset_free(escaped);
    if (line != buf) asset_free(line);
}

/* The count is taken whether or not a log is set: one relaxed add per refused call; the
 * line is formatted only when it is logged. A source that wrote in a loop after its finish
 * ran the log callback, on its own thread, once per call (twenty-third review). */
void asset__log_late_refusal(asset_server_t *s, const char *fmt, ...) {
    if (!s) return;
    uint64_t n = atomic_fetch_add_explicit(&s->late_refusals, 1, memory_order_relaxed) + 1;
    if (!s->cfg.log || (n > ASSET__LATE_LOGGED && (n & (n - 1)) != 0)) return;
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (n <= ASSET__LATE_LOGGED)
        asset__log(s, ASSET_LOG_ERROR, "%s", what);
    else
        asset__log(s, ASSET_LOG_ERROR,
                   "%s (%llu refused request calls on this server so far; past "
                   "the first %d, only each power of two is logged)",
                   what, (unsigned long long)n, ASSET__LATE_LOGGED);
}

void asset__maybe_wake(asset_server_t *s) {
    bool work = atomic_load_explicit(&s->wake_pending, memory_order_relaxed) &&
                atomic_exchange(&s->wake_pending, false);
    /* values queued for the flush thread (asset__value_release): also work for a flush */
    bool dead = atomic_load_explicit(&s->dead_wake, memory_order_relaxed) &&
                atomic_exchange(&s->dead_wake, false);
    if ((work || dead) && s->cfg.wake && !atomic_load_explicit(&s->wake_off, memory_order_acquire))
        s->cfg.wake(s->cfg.user);
}

bool asset__on_flush_thread(asset_server_t *s) {
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &s->flush_thread);
}

asset__io_t *asset__io_get(asset_server_t *s) {
    if (s->stopping) return NULL; /* destroy stops and frees it, without the lock */
    if (!s->io) {
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
    asset__map_seed_init(); /* before the server's first map (once per process) */
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
    DEF(json_max_depth, ASSET__JSON_MAX_DEPTH);
#undef DEF
    if (s->cfg.max_workers > 256) s->cfg.max_workers = 256;
    bool oom = false;
    /* the environment's in UTF-8 (Windows: read as UTF-16, not in the ANSI code page) */
    s->cfg.pkg_path = s->cfg.pkg_path ? dup_config_string(s->cfg.pkg_path, &oom)
                                      : asset__getenv_dup("ASSET_SERVER_PKG_PATH", &oom);
    s->cfg.manifest_schemes = dup_config_string(s->cfg.manifest_schemes, &oom);
    s->cfg.file_root = NULL;
    /* the working directory, however long; unknown (removed, say), relative paths fail
     * to load: "/" in its place resolved them against the file system's root */
    bool cwd_oom = false;
    char *cwd = asset__getcwd_dup(&cwd_oom);
    oom = oom || cwd_oom;
    bool refused = false; /* a config value create cannot take (logged): fails it */
    /* cJSON refuses nesting past its own limit, with a message of its own: a limit above
     * it could not be kept (its parse recurses that deep, on whatever stack runs it) */
    if (s->cfg.json_max_depth > ASSET__JSON_DEPTH_CEILING) {
        asset__log(s, ASSET_LOG_ERROR,
                   "asset_server_create: json_max_depth %u is above %d, cJSON's own nesting "
                   "limit (CJSON_NESTING_LIMIT)",
                   s->cfg.json_max_depth, ASSET__JSON_DEPTH_CEILING);
        refused = true;
    }
    if (cwd) {
        s->base_dir = asset_alloc(strlen(cwd) + 2);
        if (s->base_dir)
            asset__path_normalize(cwd, s->base_dir);
        else
            oom = true;
    }
    if (cfg && cfg->file_root && !cwd && !oom && !refused) {
        char *fr = asset__strdup(cfg->file_root);
        asset_status_t pst;
        if (fr) (void)asset__path_prepare(fr, false, &pst); /* '/', Windows: "C:/x" */
        if (fr && !asset__path_root_len(fr)) {
            asset__log(s, ASSET_LOG_ERROR,
                       "asset_server_create: file_root \"%s\" is relative, and the working "
                       "directory cannot be read",
                       cfg->file_root);
            refused = true;
        }
        asset_free(fr);
    }
    if (cfg && cfg->file_root && !oom && !refused) {
        /* a root the OS cannot take as a path (Windows: "C:", which is that drive's
         * current directory; a UNC share) fails the create: nothing would load beneath */
        char *fr = asset__strdup(cfg->file_root);
        asset_status_t pst;
        const char *why = fr ? asset__path_prepare(fr, false, &pst) : NULL;
        if (why) {
            asset__log(s, ASSET_LOG_ERROR, "asset_server_create: file_root \"%s\" refused: %s",
                       cfg->file_root, why);
            refused = true;
        }
        asset_free(fr);
    }
    if (cfg && cfg->file_root && !oom && !refused) {
        /* in the library's form ('/', Windows: "C:/x"). Relative to the
         * working directory, which is known here unless the root is absolute (above) */
        const char *wd = cwd ? cwd : "";
        char *fr = asset__strdup(cfg->file_root);
        asset_status_t pst;
        if (fr && asset__path_prepare(fr, false, &pst)) strcpy(fr, cfg->file_root);
        size_t cl = asset__path_root_len(wd);
        char *abs = !fr                        ? NULL
                    : asset__path_root_len(fr) ? asset__strdup(fr)
                    : fr[0] == '/' && cl > 1   ? asset__asprintf("%.*s%s", (int)(cl - 1), wd, fr)
                                               : asset__asprintf("%s/%s", wd, fr);
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
        asset__dir_t *rd = NULL;
        if (s->file_root && asset__dir_open(s->file_root, &rd) == -ENOMEM) oom = true;
        if (rd && !(s->file_root_dir = asset_alloc(sizeof *s->file_root_dir))) {
            asset__dir_close(rd);
            oom = true;
        } else if (rd) {
            s->file_root_dir->dir = rd;
            s->file_root_dir->users = 1;
        }
    }
    asset_free(cwd);
    /* taken by every thread for short critical sections: spins before it sleeps */
    if (asset__mutex_init_hot(&s->lock) != 0) uv_mutex_init(&s->lock);
    uv_mutex_init(&s->file_root_mu);
    uv_mutex_init(&s->sleep_mu);
    uv_cond_init(&s->work_cond);
    uv_cond_init(&s->done_cond);
    s->flush_thread = uv_thread_self();
    if (s->cfg.trace && !asset__trace_set(s, s->cfg.trace, s->cfg.trace_user)) oom = true;
    asset__map_init(&s->inflight);
    asset__map_init(&s->watched);
    asset__map_init(&s->uri_index);
    asset__map_init(&s->dependents);
    asset__map_init(&s->reload_todo_map);
    asset__map_init(&s->reload_retries);
    asset__map_init(&s->awaited);
    s->uri_index_on = s->cfg.watch || s->cfg.http_poll_ms; /* empty: no handle yet */
    s->mem = asset__mem_create();
    s->pkg = asset__pkg_create(s->cfg.pkg_path, s->base_dir);
    if (oom || refused || !s->mem || !s->pkg) goto fail;
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
    /* a spawned task's free_arg (or a value's free) that destroy runs without the lock:
     * a second destroy under the first freed the server under it (a review) */
    if (s->stopping)
        return "called while it is being destroyed (a free_arg or free function that its "
               "destroy runs)";
    if (asset__thread_owner == s)
        return "called from one of its own worker or I/O threads (a source or loader "
               "callback); it would wait for itself";
    if ((s->in_flush && asset__on_flush_thread(s)) || asset__thread_flushing == s)
        return "called from inside its own flush (a completion or batch callback); "
               "destroy after asset_server_flush() returns";
    if (asset__thread_waiting == s)
        return "called while this thread waits on it (asset_handle_wait or asset_batch_wait: "
               "config.wake, say); it would wait for itself";
    if (asset__pool_async_read_blocks_destroy(s))
        return "a read of an ASYNC source is pending, which only the JS event loop can "
               "finish (asset_request_finish; single-threaded web build); destroy after it "
               "finished";
    return NULL;
}

void asset_server_destroy(asset_server_t *s) { (void)asset_server_try_destroy(s); }

asset_status_t asset_server_try_destroy(asset_server_t *s) {
    if (!s) return ASSET_E_INVALID;
    uv_mutex_lock(&s->lock);
    const char *refused = destroy_refused(s);
    if (refused) {
        uv_mutex_unlock(&s->lock);
        asset__log(s, ASSET_LOG_ERROR, "asset_server_destroy: refused, %s", refused);
        return ASSET_E_BUSY;
    }
    s->stopping = true;
    atomic_store(&s->wake_pending, false);
    atomic_store(&s->wake_off, true); /* no wake during destroy, whoever queues a value */
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
    asset__pool_wake_all(s);
    uv_cond_broadcast(&s->done_cond); /* a task's wait on a worker: ASSET_E_SHUTDOWN */
    uv_mutex_unlock(&s->lock);
    asset__pool_join(s);
    asset__io_t *io = s->io;
    if (io) asset__io_stop(io); /* aborts transfers, which finish their requests */
    s->io = NULL;
    uv_mutex_lock(&s->lock);
    /* and for the waits of other threads, which end with ASSET_E_SHUTDOWN (woken above):
     * one on the flush thread may be inside a flush, its callbacks running; freed under
     * them, they touched the server, the handle and the lock after (found by a review);
     * and for flushes on other threads (the C++ wrapper's Reaper destroys a server that a
     * value freed inside a flush let go: it freed the server under that flush) */
    while (s->running_async || s->caller_runs || s->in_waits || s->flushes) {
        s->waiters++; /* a thread in done_cond, as the waits count themselves */
        uv_cond_wait(&s->done_cond, &s->lock);
        s->waiters--;
    }
    uv_mutex_unlock(&s->lock);
    asset__tasks_drain(s); /* free_arg may still release handles of this server */
    /* no other thread touches the server from here */
    asset__batch_free_all(s);
    asset__graph_free_all(s); /* jobs waiting for dependencies or finalize */
    asset__handle_free_all(s);
    asset__jobs_free_returned(asset__jobs_take_returned(s, SIZE_MAX));
    asset__heap_free(s);
    asset__map_free(&s->inflight);
    /* the values the handles held that only this thread frees (a spawned task's), and
     * what their frees start: a task's value may call the library as its free_arg may,
     * so a spawn or load there gets a handle failed with ASSET_E_SHUTDOWN, and such a
     * task's free_arg runs here (freed after the last drain, it never ran, and it and its
     * handle leaked: a review) */
    do {
        asset__tasks_drain(s); /* the first time: none left, every job was freed above */
        asset__values_drain(s, 0, 0);
        /* groups made meanwhile (a free that loads a group): never done, as no flush
         * delivers here, so their release kept them, and they leaked (a review). Before
         * the handles: a group unlinks its callbacks from its children */
        asset__batch_free_all(s);
        asset__handle_free_all(s); /* those made meanwhile */
    } while (s->all || s->batches || atomic_load(&s->dead_tasks) || atomic_load(&s->dead_values));
    asset__registry_free(s);
    asset__reload_free(s);
    asset__awaited_free(s);
    asset__uri_index_free(s); /* empty by now: every handle was freed */
    asset__dependents_free(s);
    asset__cb_index_free(s);      /* every handle's callbacks left it */
    asset__handle_discard_all(s); /* after every value: their frees may release handles */
    asset__batch_discard_all(s);  /* and batches */
    asset__trace_free(s);
    asset__mem_destroy(s->mem);
    asset__pkg_destroy(s->pkg);
    uv_cond_destroy(&s->done_cond);
    uv_cond_destroy(&s->work_cond);
    uv_mutex_destroy(&s->sleep_mu);
    uv_mutex_destroy(&s->lock);
    asset_free((char *)s->cfg.pkg_path);
    asset_free((char *)s->cfg.manifest_schemes);
    asset_free(s->file_root);
    if (s->file_root_dir) { /* every load ended: the server's use is the last */
        asset__dir_close(s->file_root_dir->dir);
        asset_free(s->file_root_dir);
    }
    uv_mutex_destroy(&s->file_root_mu);
    asset_free(s->base_dir);
    asset_free(s);
    return ASSET_OK;
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
    const char *refused = NULL;
    if (s) { /* a destroy refused here (its own callback) keeps the instance: not lost */
        uv_mutex_lock(&s->lock);
        refused = destroy_refused(s);
        uv_mutex_unlock(&s->lock);
    }
    if (!refused) g_instance = NULL;
    uv_mutex_unlock(&g_instance_lock);
    if (refused)
        asset__log(s, ASSET_LOG_ERROR, "asset_server_shutdown_instance: refused, %s", refused);
    else
        asset_server_destroy(s);
}

/* ---- caches and stats ---- */

void asset_server_invalidate(asset_server_t *s, const char *uri) {
    if (!s || !uri) return;
    /* '#' starts a label, as in a load: "atlas.json#hero" names atlas.json's entry
     * (parsed whole, the '#' became "%23": another key, a name with a '#' in it) */
    char *base = asset__strndup(uri, strcspn(uri, "#"));
    asset_uri_t u;
    const char *why;
    asset_status_t st =
        base ? asset__uri_parse(base, s->base_dir, s->file_root, &u, &why) : ASSET_E_NO_MEMORY;
    asset_free(base);
    if (st != ASSET_OK) return;
    /* what a change of the source does (a mem:// put, a watcher's event): the entries
     * go, and a read in flight that began before (its bytes may be the old ones) is
     * joined by no later load and caches nothing; it was, and then every load was
     * served its bytes from the cache (a review). It wakes the host for the values. */
    asset__jobs_changed(s, u.uri);
    asset__uri_dispose(&u);
}

void asset_server_clear_caches(asset_server_t *s) {
    if (!s) return;
    uv_mutex_lock(&s->lock);
    size_t n;
    asset__loader_slot_t *const *ls = asset__loaders(s, &n);
    for (size_t i = 0; i < n; i++) asset__cache_clear(&ls[i]->cache);
    /* what invalidate does for one URI: a read in flight that began before may hold old
     * bytes (the program clears after changing its sources: a remount, an IMMUTABLE
     * source of its own); no later load joins it and its value is not cached, else every
     * later load got the old bytes from the cache (thirty-sixth review) */
    asset__jobs_cleared(s);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s); /* values to free on the flush thread: the host flushes */
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
    for (size_t i = 0; i < n; i++) { /* saturating: caches of SIZE_MAX bytes wrapped it */
        uint64_t b = ls[i]->cache.bytes;
        out->bytes_cached = b > UINT64_MAX - out->bytes_cached ? UINT64_MAX : out->bytes_cached + b;
        out->cache_evictions += ls[i]->cache.evictions;
    }
    uv_mutex_unlock(&s->lock);
}

/* ---- packages and the mem store ---- */

void (*asset__pkg_mounted_hook)(const char *name) = NULL;

int asset_server_mount(asset_server_t *s, const char *pkg, const char *dir) {
    if (!s || !pkg || !dir) return ASSET_E_INVALID;
    int hid = 0;
    int rc = asset__pkg_mount(s->pkg, pkg, dir, &hid);
    if (rc != ASSET_OK) return rc;
    if (asset__pkg_mounted_hook) asset__pkg_mounted_hook(pkg);
    /* later loads read this mount, not the one it hid. A first mount hid none, and no
     * load in flight read a mount of its name: no walk of them (every mount walked
     * every load in flight under the lock: 5,000 packages mounted while 50,000 loads
     * were in flight, 27 s; a review), unless a read found a package not mounted since
     * the last mount: it may be this one's, and a later load joined it (a review) */
    if (hid) asset__jobs_remounted(s, hid == ASSET__PKG_MISSED ? NULL : pkg);
    if (hid == ASSET__PKG_MISSED) asset__pkg_walked(s->pkg);
    asset__log(s, ASSET_LOG_INFO, "mounted %s at %s", pkg, dir);
    return rc;
}

int asset_server_mount_embedded(asset_server_t *s, const char *pkg,
                                const asset_embedded_file_t *files, size_t count) {
    if (!s || !pkg || (!files && count)) return ASSET_E_INVALID;
    int hid = 0;
    size_t bad = 0;
    const char *why;
    int rc = asset__pkg_mount_embedded(s->pkg, pkg, files, count, &hid, &bad, &why);
    if (why) { /* which entry, and why: a table of thousands refused says no more */
        const char *path = files[bad].path ? files[bad].path : "";
        asset__log(s, ASSET_LOG_ERROR,
                   "asset_server_mount_embedded %s: entry %zu (\"%.80s%s\"): %s; nothing mounted",
                   pkg, bad, path, strlen(path) > 80 ? "..." : "", why);
    }
    if (rc != ASSET_OK) return rc;
    if (hid) asset__jobs_remounted(s, hid == ASSET__PKG_MISSED ? NULL : pkg); /* as above */
    if (hid == ASSET__PKG_MISSED) asset__pkg_walked(s->pkg);
    asset__log(s, ASSET_LOG_INFO, "mounted %s: %zu embedded file%s", pkg, count,
               count == 1 ? "" : "s");
    return rc;
}
