/* test_stress.c - many loads across every source (file, pkg, mem, http against a real
 * nginx, and a slow custom source) with random options, cancels, tag cancels, releases
 * from callbacks, late callbacks, disconnects, batches, cache invalidation, mem://
 * updates, flush budgets, timeouts, and destroy at a random moment with loads in flight.
 *
 * Invariants checked:
 *   - every connected callback fires at most once, and exactly once for a handle that
 *     became done before destroy (an observer callback on every handle sees its state);
 *     callbacks see a done handle whose state matches its error; none fires in destroy;
 *   - counts add up: the server's completed/failed/cancelled stats equal what the
 *     observers saw, per state; every done batch's counts add up to its total and its
 *     done callback fires exactly once;
 *   - no cache is ever above its budget (checked under the server lock, often);
 *   - no leak: a counting allocator is installed for the process, and after each
 *     round's destroy the allocations alive are those alive before its create;
 *   - no hang: rounds that drain wait for every load with a bound;
 *   - the graph: random documents of the "gr" loader (mem://gr/K.gr) depend on mem://,
 *     slow:// and each other (optional ones, failing ones, cycles of any length), publish
 *     labels (loaded as "uri#a"), and have a finalize step that may answer PENDING once;
 *     they change during the round (mem_put). Every parent that LOADED has every required
 *     dependency LOADED when its callback fires; FREE_ON_FLUSH_THREAD values are freed
 *     on the flush thread only (this thread).
 *
 * Deterministic choices: a fixed seed (ASSET_STRESS_SEED, printed). Size:
 * ASSET_STRESS_LOADS (default 100000, also under ASan and TSan, where it takes seconds;
 * 20000 under valgrind), in rounds of up to ASSET_STRESS_ROUND loads (default 10000),
 * each destroyed at a random moment in its second half. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test_util.h"
#include "tu_alloc.h"
#include "tu_http.h"

#if defined(__SANITIZE_ADDRESS__)
#define S_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define S_ASAN 1
#endif
#endif
#ifndef S_ASAN
#define S_ASAN 0
#endif

/* ---- deterministic random ---- */
static uint64_t g_rng;
static uint64_t rnd(void) { /* xorshift64* */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ull;
}
static unsigned rn(unsigned n) { return (unsigned)(rnd() % n); }
static bool chance(unsigned per_mille) { return rn(1000) < per_mille; }

/* ---- a slow source: works in steps, checking cancel between them ---- */
static asset_status_t slow_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    const char *p = asset_request_path(r);
    unsigned steps = (unsigned)strtoul(p, NULL, 10) % 64 + 1;
    asset_request_set_total(r, steps * 16u);
    for (unsigned i = 0; i < steps; i++) {
        asset_status_t st = asset_request_write(r, "0123456789abcdef", 16);
        if (st != ASSET_OK) return st;
        if (asset_request_cancelled(r)) return ASSET_E_CANCELLED;
    }
    if (strstr(p, "fail")) return asset_request_fail(r, ASSET_E_IO, "slow source told to fail");
    return ASSET_OK;
}

/* ---- fixtures ---- */
static char *g_dir;
static char *g_pkgdir;
static tu_nginx_t g_nginx;
static bool g_have_nginx;
#define NFILES 24
#define NMEM 24
#define NHTTP 8
#define CACHE_BUDGET 6000 /* small: evictions all the time */

/* ---- the graph loader "gr": lines "dep URI", "opt URI", "label NAME", "pend" ---- */
#define NGRAPH 16
/* Graph loads in the rounds: on unless ASSET_STRESS_GRAPH=0. */
static bool g_graph;
static uv_thread_t g_main_thread;
static atomic_int g_gr_off_thread_frees;

static void gr_free(void *ctx, void *value) {
    (void)ctx;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &g_main_thread)) atomic_fetch_add(&g_gr_off_thread_frees, 1);
    asset_free(value);
}

static void dep_observer(asset_handle_t *h, void *user);

/* Dependency handles already delivered when the loader connected their observer: it
 * fires at a later flush, which the round may end before (reset per round). A parse
 * may still run when the round is checked (a job in flight after draining): between
 * its asset_parse_depend and the count below, the check's flush can deliver the new
 * dependency (counted, not yet observed), so g_deps_connecting counts the parses in
 * that window; the check reads it before g_late_deps. */
static atomic_uint_fast64_t g_late_deps, g_deps_connecting;

static asset_status_t gr_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    const char *text = (const char *)asset_parse_data(p);
    char line[256];
    for (const char *c = text; tu_next_line(&c, line, sizeof line);) {
        if (!strncmp(line, "dep ", 4) || !strncmp(line, "opt ", 4)) {
            asset_load_options_t o = {.optional = line[0] == 'o'};
            atomic_fetch_add(&g_deps_connecting, 1);
            asset_handle_t *d = asset_parse_depend(p, line + 4, &o);
            /* dependency handles count in the stats: observe them too */
            bool ok = d && asset_handle_on_completed(d, dep_observer, NULL);
            if (ok && asset_handle_is_done(d)) atomic_fetch_add(&g_late_deps, 1);
            atomic_fetch_sub(&g_deps_connecting, 1);
            if (!ok) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        } else if (!strncmp(line, "label ", 6)) {
            char *v = tu_asset_strndup(line + 6, strlen(line + 6));
            if (!v || asset_parse_add_labeled(p, line + 6, v, strlen(v), NULL, NULL) != ASSET_OK) {
                asset_free(v);
                return asset_parse_fail(p, ASSET_E_PARSE, "label %s refused", line + 6);
            }
        }
    }
    char *v = tu_asset_strndup(text, asset_parse_size(p));
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, v, asset_parse_size(p));
    return ASSET_OK;
}

/* "pend" answers PENDING once: the value is replaced by one that says "done". */
static asset_status_t gr_finalize(void *ctx, asset_finalize_t *f) {
    (void)ctx;
    const char *text = asset_finalize_value(f);
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &g_main_thread))
        return asset_finalize_fail(f, ASSET_E_IO, "finalize off the flush thread");
    if (strstr(text, "pend") && !strstr(text, "done")) {
        size_t n = strlen(text);
        char *v = asset_alloc(n + 6);
        if (!v) return asset_finalize_fail(f, ASSET_E_NO_MEMORY, "out of memory");
        memcpy(v, text, n);
        memcpy(v + n, "\ndone", 6);
        asset_finalize_set_value(f, v, n + 5);
        return ASSET_PENDING;
    }
    for (size_t i = 0; i < asset_finalize_dependency_count(f); i++) {
        asset_handle_t *d = asset_finalize_dependency(f, i);
        if (!d || (!d->optional && !(d->decided && d->status == ASSET_OK)))
            return asset_finalize_fail(f, ASSET_E_IO, "finalize before a dependency was done");
    }
    return ASSET_OK;
}

/* A random document for mem://gr/K.gr. */
static int gen_graph_doc(char *buf, size_t n) {
    size_t len = 0;
    unsigned deps = rn(5);
    for (unsigned i = 0; i < deps && len + 64 < n; i++) {
        const char *kind = rn(5) ? "dep" : "opt";
        unsigned k = rn(100);
        if (k < 35)
            len += (size_t)snprintf(buf + len, n - len, "%s %u.gr\n", kind, rn(NGRAPH));
        else if (k < 45)
            len += (size_t)snprintf(buf + len, n - len, "%s %u.gr#a\n", kind, rn(NGRAPH));
        else if (k < 75)
            len += (size_t)snprintf(buf + len, n - len, "%s mem://m/%u\n", kind, rn(NMEM));
        else if (k < 95)
            len += (size_t)snprintf(buf + len, n - len, "%s slow://%u%s\n", kind, rn(1000),
                                    rn(8) ? "" : "/fail");
        else
            len += (size_t)snprintf(buf + len, n - len, "%s mem://m/missing%u\n", kind, rn(4));
    }
    if (rn(2)) len += (size_t)snprintf(buf + len, n - len, "label a\n");
    if (rn(4) == 0) len += (size_t)snprintf(buf + len, n - len, "pend\n");
    len += (size_t)snprintf(buf + len, n - len, "v %u", rn(1000));
    return (int)len;
}

static void put_graph_doc(asset_server_t *s, unsigned k) {
    char key[32], doc[512];
    snprintf(key, sizeof key, "gr/%u.gr", k);
    int n = gen_graph_doc(doc, sizeof doc);
    asset_mem_put(s, key, doc, (size_t)n);
}

/* ---- records: one per handle, owned by the test, touched on the main thread only ---- */
typedef struct rec {
    asset_handle_t *h; /* NULL once released */
    int connected, disconnected, fired, observed;
    asset_state_t state; /* seen by the observer */
    bool release_in_cb;
    bool done_seen;
    uint64_t extra_id; /* an extra callback, maybe disconnected */
} rec_t;

typedef struct brec {
    asset_batch_t *b; /* NULL once released */
    int done_fired, items_fired;
} brec_t;

typedef struct round {
    asset_server_t *s;
    bool destroying;
    rec_t **recs;
    size_t nrecs, caprecs;
    brec_t **brecs;
    size_t nbrecs, capbrecs;
    rec_t **live;   /* records whose handle the test still holds */
    size_t drained; /* records (recs[0..drained)) whose loads a drain waited for */
    size_t nlive;
    uint64_t obs_loaded, obs_failed, obs_cancelled;
    uint64_t reloads_seen;
    uint64_t loads, cancels, tag_cancels, cb_releases, late_connects, disconnects, batches;
    uint64_t dep_done; /* dependency handles done */
    char err[512];
} round_t;

static round_t *g_r;

#define RFAIL(...)                                                          \
    do {                                                                    \
        if (!g_r->err[0]) snprintf(g_r->err, sizeof g_r->err, __VA_ARGS__); \
    } while (0)

static void check_handle_cb(asset_handle_t *h) {
    if (g_r->destroying) RFAIL("a callback fired during destroy");
    if (!asset_handle_is_done(h)) RFAIL("a callback saw a handle that is not done");
    asset_state_t st = asset_handle_state(h);
    asset_status_t e = asset_handle_error(h);
    if ((st == ASSET_STATE_LOADED) != (e == ASSET_OK) ||
        (st == ASSET_STATE_CANCELLED) != (e == ASSET_E_CANCELLED))
        RFAIL("state %d does not match error %s", (int)st, asset_err_name(e));
    if (st == ASSET_STATE_LOADED && !asset_handle_value(h)) RFAIL("LOADED without a value");
    if (st != ASSET_STATE_LOADED && !asset_handle_error_message(h)[0])
        RFAIL("%s: failed without a message", asset_handle_uri(h));
    if (st == ASSET_STATE_LOADED) { /* the graph: a LOADED parent has its required deps */
        for (size_t i = 0, n = asset_handle_dependency_count(h); i < n; i++) {
            asset_handle_t *d = asset_handle_dependency(h, i);
            if (!d)
                RFAIL("%s: dependency %zu of %zu is NULL", asset_handle_uri(h), i, n);
            else if (!d->optional && asset_handle_state(d) != ASSET_STATE_LOADED)
                RFAIL("%s LOADED, its required dependency %s is %d (%s)", asset_handle_uri(h),
                      asset_handle_uri(d), (int)asset_handle_state(d),
                      asset_handle_error_message(d));
        }
    }
}

static void drop_live(rec_t *rc) {
    for (size_t i = 0; i < g_r->nlive; i++) {
        if (g_r->live[i] == rc) {
            g_r->live[i] = g_r->live[--g_r->nlive];
            return;
        }
    }
}

static void one_load(struct round *r);

/* Hot reload (odd rounds watch): a reload callback sees its handle LOADED with a value,
 * never during destroy, and a successful reload has bumped the version. */
static void reload_observer(asset_handle_t *h, void *user) {
    (void)user;
    if (g_r->destroying) RFAIL("a reload callback fired during destroy");
    if (asset_handle_state(h) != ASSET_STATE_LOADED) RFAIL("reload callback: not LOADED");
    if (!asset_handle_value(h)) RFAIL("reload callback: no value");
    if (asset_handle_reload_error(h) == ASSET_OK && asset_handle_version(h) < 2)
        RFAIL("reloaded, version %llu", (unsigned long long)asset_handle_version(h));
    if (asset_handle_reload_error(h) != ASSET_OK && !asset_handle_error_message(h)[0])
        RFAIL("%s: failed reload without a message", asset_handle_uri(h));
    g_r->reloads_seen++;
}

static void observer(asset_handle_t *h, void *user) {
    rec_t *rc = user;
    check_handle_cb(h);
    if (rc->observed++) RFAIL("observer fired twice");
    rc->fired++;
    rc->done_seen = true;
    rc->state = asset_handle_state(h);
    if (rc->state == ASSET_STATE_LOADED)
        g_r->obs_loaded++;
    else if (rc->state == ASSET_STATE_CANCELLED)
        g_r->obs_cancelled++;
    else
        g_r->obs_failed++;
    if (rc->release_in_cb && rc->h) { /* releases from a callback */
        asset_handle_release(rc->h);
        rc->h = NULL;
        drop_live(rc);
        g_r->cb_releases++;
    }
}

/* On every dependency handle (connected by the gr loader's parse). */
static void dep_observer(asset_handle_t *h, void *user) {
    (void)user;
    check_handle_cb(h);
    asset_state_t st = asset_handle_state(h);
    if (st == ASSET_STATE_LOADED)
        g_r->obs_loaded++;
    else if (st == ASSET_STATE_CANCELLED)
        g_r->obs_cancelled++;
    else
        g_r->obs_failed++;
    g_r->dep_done++;
}

static void extra(asset_handle_t *h, void *user) {
    rec_t *rc = user;
    check_handle_cb(h);
    rc->fired++;
    /* an API call from a callback: another load */
    if (chance(20)) one_load(g_r);
}

static void batch_item(asset_batch_t *b, asset_handle_t *h, void *user) {
    (void)b;
    brec_t *br = user;
    check_handle_cb(h);
    br->items_fired++;
    asset_state_t st = asset_handle_state(h); /* children count in the stats too */
    if (st == ASSET_STATE_LOADED)
        g_r->obs_loaded++;
    else if (st == ASSET_STATE_CANCELLED)
        g_r->obs_cancelled++;
    else
        g_r->obs_failed++;
}

static void batch_done(asset_batch_t *b, void *user) {
    brec_t *br = user;
    if (g_r->destroying) RFAIL("a batch callback fired during destroy");
    if (br->done_fired++) RFAIL("batch done callback fired twice");
    if (!asset_batch_is_done(b)) RFAIL("batch done callback on a batch not done");
    if (asset_batch_completed_count(b) + asset_batch_failed_count(b) +
            asset_batch_cancelled_count(b) !=
        asset_batch_total(b))
        RFAIL("batch counts %zu+%zu+%zu != total %zu", asset_batch_completed_count(b),
              asset_batch_failed_count(b), asset_batch_cancelled_count(b), asset_batch_total(b));
    if (br->items_fired != (int)asset_batch_total(b) && asset_batch_error(b) == ASSET_OK)
        RFAIL("batch item callbacks %d != total %zu", br->items_fired, asset_batch_total(b));
}

/* ---- what to load ---- */

static char *pick_uri(char *buf, size_t n) {
    if (g_graph && rn(100) < 15) { /* the graph: whole documents, their labels, an unknown label */
        unsigned g = rn(NGRAPH), l = rn(10);
        snprintf(buf, n, "mem://gr/%u.gr%s", g, l < 6 ? "" : l < 9 ? "#a" : "#zz");
        return buf;
    }
    unsigned k = rn(100);
    if (k < 25) {
        snprintf(buf, n, "file://%s/f%u.%s", g_dir, rn(NFILES), rn(3) ? "bin" : "json");
    } else if (k < 45) {
        snprintf(buf, n, "pkg://game/p%u.%s", rn(NFILES), rn(3) ? "txt" : "json");
    } else if (k < 75) {
        snprintf(buf, n, "mem://m/%u%s", rn(NMEM), rn(4) ? "" : ".json");
    } else if (k < 80 && g_have_nginx) {
        snprintf(buf, n, "%s/h%u.%s", g_nginx.base, rn(NHTTP), rn(2) ? "bin" : "json");
    } else if (k < 95) {
        snprintf(buf, n, "slow://%u%s", rn(1000), rn(10) ? "" : "/fail");
    } else if (k < 97) {
        snprintf(buf, n, "file://%s/missing%u", g_dir, rn(4));
    } else if (k < 98) {
        snprintf(buf, n, "pkg://game/../escape");
    } else {
        snprintf(buf, n, "nosuch://x/%u", rn(4));
    }
    return buf;
}

static const char *const g_tags[] = {"level1", "level2", "ui", "audio"};

static void pick_options(asset_load_options_t *o) {
    memset(o, 0, sizeof *o);
    o->priority = (asset_priority_t)(rn(4)); /* 0 = default */
    o->no_cache = chance(50);
    if (chance(400)) o->tag = g_tags[rn(4)];
    if (chance(30))
        o->timeout_ms = 1 + rn(5); /* expires, sometimes */
    else if (chance(30))
        o->timeout_ms = 30000; /* never expires */
    if (chance(30)) o->loader = rn(2) ? "bytes" : "counting";
}

static void check_caches(round_t *r) {
    asset_server_t *s = r->s;
    uv_mutex_lock(&s->lock);
    size_t n;
    asset__loader_slot_t *const *ls = asset__loaders(s, &n);
    for (size_t i = 0; i < n; i++) {
        asset__cache_t *c = &ls[i]->cache;
        if (c->bytes > c->budget)
            RFAIL("cache of %s: %zu bytes over its budget %zu", ls[i]->name, c->bytes, c->budget);
    }
    uv_mutex_unlock(&s->lock);
}

static rec_t *new_rec(round_t *r) {
    if (r->nrecs == r->caprecs) {
        r->caprecs = r->caprecs ? r->caprecs * 2 : 1024;
        r->recs = realloc(r->recs, r->caprecs * sizeof *r->recs);
    }
    rec_t *rc = calloc(1, sizeof *rc);
    r->recs[r->nrecs++] = rc;
    return rc;
}

static void hold(round_t *r, rec_t *rc) {
    r->live = realloc(r->live, (r->nlive + 1) * sizeof *r->live);
    r->live[r->nlive++] = rc;
}

static void release_rec(round_t *r, rec_t *rc) {
    asset_handle_release(rc->h);
    rc->h = NULL;
    drop_live(rc);
    (void)r;
}

static void one_load(struct round *r) {
    char uri[4200];
    asset_load_options_t o;
    pick_uri(uri, sizeof uri);
    pick_options(&o);
    asset_handle_t *h = asset_server_load(r->s, uri, &o);
    if (!h) {
        RFAIL("load returned NULL");
        return;
    }
    r->loads++;
    rec_t *rc = new_rec(r);
    rc->h = h;
    rc->release_in_cb = chance(200);
    if (!asset_handle_on_completed(h, observer, rc)) RFAIL("on_completed returned 0");
    rc->connected++;
    if (chance(300)) {
        rc->extra_id = asset_handle_on_completed(h, extra, rc);
        rc->connected++;
        if (chance(300) && asset_handle_disconnect(h, rc->extra_id)) {
            rc->disconnected++;
            r->disconnects++;
        }
    }
    if (chance(100)) { /* released at once: the load goes on */
        if (rc->release_in_cb) rc->release_in_cb = false;
        asset_handle_release(h);
        rc->h = NULL;
    } else {
        hold(r, rc);
    }
}

static void one_batch(round_t *r) {
    char u[5][4200];
    const char *uris[5];
    unsigned n = 1 + rn(5);
    for (unsigned i = 0; i < n; i++) uris[i] = pick_uri(u[i], sizeof u[i]);
    asset_load_options_t o;
    pick_options(&o);
    o.timeout_ms = 0;
    asset_batch_t *b = asset_server_load_group(r->s, uris, n, &o);
    if (!b) {
        RFAIL("load_group returned NULL");
        return;
    }
    r->batches++;
    r->loads += n;
    if (r->nbrecs == r->capbrecs) {
        r->capbrecs = r->capbrecs ? r->capbrecs * 2 : 256;
        r->brecs = realloc(r->brecs, r->capbrecs * sizeof *r->brecs);
    }
    brec_t *br = calloc(1, sizeof *br);
    r->brecs[r->nbrecs++] = br;
    br->b = b;
    asset_batch_on_item_completed(b, batch_item, br);
    asset_batch_on_completed(b, batch_done, br);
    if (chance(100)) asset_batch_cancel(b);
    if (chance(300)) {
        asset_batch_release(b);
        br->b = NULL;
    }
}

static void random_action(round_t *r) {
    unsigned k = rn(1000);
    if (k < 40 && r->nlive) { /* cancel a random held handle */
        rec_t *rc = r->live[rn((unsigned)r->nlive)];
        asset_handle_cancel(rc->h);
        r->cancels++;
    } else if (k < 44) {
        asset_server_cancel_tag(r->s, g_tags[rn(4)], r->nlive ? r->live[0]->h : NULL);
        r->tag_cancels++;
    } else if (k < 90 && r->nlive) { /* release a random held handle */
        release_rec(r, r->live[rn((unsigned)r->nlive)]);
    } else if (k < 100 && r->nlive) { /* connect late (maybe after done) */
        rec_t *rc = r->live[rn((unsigned)r->nlive)];
        if (asset_handle_on_completed(rc->h, extra, rc)) {
            rc->connected++;
            r->late_connects++;
        }
    } else if (k < 140) {
        char key[32], val[64];
        unsigned m = rn(NMEM);
        snprintf(key, sizeof key, "m/%u%s", m, rn(4) ? "" : ".json");
        int n = snprintf(val, sizeof val, "{\"m\": %u, \"v\": %u}", m, rn(1000));
        asset_mem_put(r->s, key, val, (size_t)n);
    } else if (k < 143) {
        put_graph_doc(r->s, rn(NGRAPH));
    } else if (k < 145) {
        char uri[4200];
        asset_server_invalidate(r->s, pick_uri(uri, sizeof uri));
    } else if (k < 147) {
        asset_server_clear_caches(r->s);
    } else if (k < 150) { /* as if it changed: works without watch too */
        char uri[4200];
        asset_server_reload(r->s, pick_uri(uri, sizeof uri));
    } else if (k < 156 && r->nlive) {
        rec_t *rc = r->live[rn((unsigned)r->nlive)];
        asset_handle_on_reloaded(rc->h, reload_observer, NULL);
    } else if (k < 400) {
        asset_server_flush_budget(r->s, 1000 + rn(50000)); /* 1..51 us */
    } else if (k < 500) {
        asset_server_flush(r->s);
    }
    if (rn(64) == 0) check_caches(r);
}

/* How many counted dependencies may not be observed yet: parses between depend and
 * their count, read first, then the late ones they counted (seq_cst: a parse that left
 * the window before the first read has its count visible to the second). */
static uint64_t late_deps_bound(void) {
    uint64_t connecting = atomic_load(&g_deps_connecting);
    return connecting + atomic_load(&g_late_deps);
}

/* Checks what can be checked while the server lives, after a full flush. */
static void check_round(round_t *r, bool drained) {
    asset_server_flush(r->s); /* may start loads (extra): they are not drained */
    check_caches(r);
    for (size_t i = 0; i < r->nrecs; i++) {
        rec_t *rc = r->recs[i];
        int want = rc->connected - rc->disconnected;
        if (rc->fired > want)
            RFAIL("record %zu: %d callbacks fired for %d connected", i, rc->fired, want);
        if (rc->h && asset_handle_is_done(rc->h) && rc->fired != want)
            RFAIL("record %zu (%s): done, %d callbacks fired for %d connected", i,
                  asset_handle_uri(rc->h), rc->fired, want);
        if (rc->h && !asset_handle_is_done(rc->h) && rc->fired)
            RFAIL("record %zu: a callback fired before the handle was done", i);
        if (drained && i < r->drained && rc->h && !asset_handle_is_done(rc->h))
            RFAIL("record %zu (%s): not done after draining", i, asset_handle_uri(rc->h));
        if (rc->done_seen && rc->fired != want)
            RFAIL("record %zu: observer fired but %d of %d callbacks", i, rc->fired, want);
    }
    asset_stats_t st;
    asset_server_stats(r->s, &st);
    uint64_t stats_all = st.completed + st.failed + st.cancelled;
    uint64_t obs_all = r->obs_loaded + r->obs_failed + r->obs_cancelled;
    if (st.completed < r->obs_loaded || st.failed < r->obs_failed ||
        st.cancelled < r->obs_cancelled || stats_all < obs_all ||
        (drained && stats_all - obs_all > late_deps_bound()))
        /* a round destroyed mid-flight may have results delivered (counted) whose
         * observers would only fire at a later flush: a late-connected dependency
         * observer, a batch item callback left to the next flush by a budget. Destroy
         * fires no callback, so there only "never more observed than counted" holds */
        RFAIL("stats %" PRIu64 "/%" PRIu64 "/%" PRIu64 " (loaded/failed/cancelled) but observers "
              "saw %" PRIu64 "/%" PRIu64 "/%" PRIu64,
              st.completed, st.failed, st.cancelled, r->obs_loaded, r->obs_failed,
              r->obs_cancelled);
    for (size_t i = 0; i < r->nbrecs; i++) {
        brec_t *br = r->brecs[i];
        if (br->b && asset_batch_is_done(br->b) && br->done_fired != 1)
            RFAIL("batch %zu done, its done callback fired %d times", i, br->done_fired);
        if (drained && br->b && !asset_batch_is_done(br->b))
            RFAIL("batch %zu not done after draining", i);
    }
}

static tu_counter_t g_counter;
static uint64_t g_total_loads;

/* Waits for every held handle and batch. Waits flush, and callbacks start loads (extra)
 * and release handles (observer): repeat until a whole pass waited for nothing and
 * started nothing. A handle the test released at once still runs, and its extra callback
 * may start a load at any later flush: check_round exempts the loads started after the
 * drain (round.drained). */
static void drain_round(round_t *r) {
    for (bool all = false; !all && !r->err[0];) {
        all = true;
        size_t nrecs = r->nrecs;
        for (size_t i = 0; i < r->nlive && !r->err[0]; i++) {
            asset_handle_t *h = r->live[i]->h;
            if (asset_handle_is_done(h)) continue;
            all = false;
            asset_handle_retain(h); /* a callback may release the test's reference */
            if (asset_handle_wait(h, 60000) == ASSET_E_TIMEOUT && !asset_handle_is_done(h))
                RFAIL("HANG: %s not done after 60 s", asset_handle_uri(h));
            asset_handle_release(h);
        }
        for (size_t i = 0; i < r->nbrecs && !r->err[0]; i++) {
            asset_batch_t *b = r->brecs[i]->b;
            if (!b || asset_batch_is_done(b)) continue;
            all = false;
            if (asset_batch_wait(b, 60000) == ASSET_E_TIMEOUT && !asset_batch_is_done(b))
                RFAIL("HANG: batch %zu not done after 60 s", i);
        }
        if (r->nrecs != nrecs) all = false;
    }
    r->drained = r->nrecs;
}

static void run_round(unsigned idx, unsigned nloads, bool drain) {
    round_t *r = calloc(1, sizeof *r);
    g_r = r;
    atomic_store(&g_late_deps, 0);
    long live0 = atomic_load(&tu_alloc_blocks);
    asset_server_config_t cfg = {.max_workers = 1 + idx % 3,
                                 .watch = idx % 2 == 1, /* mem:// puts and pkg files reload */
                                 .reload_debounce_ms = 5,
                                 .cache_budget = CACHE_BUDGET,
                                 .max_asset_size = 1 << 20,
                                 .pkg_path = ""};
    r->s = asset_server_create(&cfg);
    assert_non_null(r->s);
    assert_int_equal(asset_server_mount(r->s, "game", g_pkgdir), ASSET_OK);
    asset_source_t slow = {ASSET_SOURCE_ABI, "slow", 0, slow_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(r->s, &slow, NULL), ASSET_OK);
    assert_int_equal(tu_counting_loader_register(r->s, "counting", ".cnt", &g_counter, 2000),
                     ASSET_OK);
    static const char *const gr_suffixes[] = {".gr", NULL};
    asset_loader_t gr = {.abi = ASSET_LOADER_ABI,
                         .name = "gr",
                         .suffixes = gr_suffixes,
                         .parse = gr_parse,
                         .free_value = gr_free,
                         .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                         .finalize = gr_finalize};
    assert_int_equal(asset_server_register_loader(r->s, &gr, NULL, 0), ASSET_OK);
    for (unsigned k = 0; k < NGRAPH; k++) put_graph_doc(r->s, k);
    for (unsigned m = 0; m < NMEM; m++) {
        char key[32], val[64];
        snprintf(key, sizeof key, "m/%u", m);
        int n = snprintf(val, sizeof val, "mem %u", m);
        asset_mem_put(r->s, key, val, (size_t)n);
        snprintf(key, sizeof key, "m/%u.json", m);
        n = snprintf(val, sizeof val, "{\"m\": %u}", m);
        asset_mem_put(r->s, key, val, (size_t)n);
    }
    /* destroy at a random moment in the second half of the round */
    unsigned stop = nloads < 20 ? nloads : nloads / 2 + rn(nloads / 2 + 1);
    while (r->loads < stop && !r->err[0]) {
        if (chance(20))
            one_batch(r);
        else
            one_load(r);
        random_action(r);
        while (r->nlive > 1500) release_rec(r, r->live[rn((unsigned)r->nlive)]);
    }
    if (drain) drain_round(r);
    check_round(r, drain);
    asset_stats_t st;
    asset_server_stats(r->s, &st);
    print_message("stress round %2u: %6" PRIu64 " loads (%" PRIu64 " batches), %" PRIu64
                  " loaded, %" PRIu64 " failed, %" PRIu64 " cancelled (%" PRIu64
                  " cancels, %" PRIu64 " tag cancels), %" PRIu64 " coalesced, %" PRIu64
                  " evictions, %" PRIu64 " released in callbacks, %" PRIu64
                  " http requests, %" PRIu64 " dependencies done, %" PRIu64 " reloads (%" PRIu64
                  " callbacks), %s (%" PRIu64 " in flight)\n",
                  idx, r->loads, r->batches, st.completed, st.failed, st.cancelled, r->cancels,
                  r->tag_cancels, st.coalesced, st.cache_evictions, r->cb_releases,
                  st.http_requests, r->dep_done, st.reloads + st.reload_failures, r->reloads_seen,
                  drain ? "drained, then destroyed" : "destroyed", st.pending + st.loading);
    g_total_loads += r->loads;
    r->destroying = true;
    asset_server_destroy(r->s);
    long leaked = atomic_load(&tu_alloc_blocks) - live0;
    if (leaked) RFAIL("LEAK: %ld allocation(s) alive after destroy", leaked);
    int off = atomic_exchange(&g_gr_off_thread_frees, 0);
    if (off) RFAIL("%d FREE_ON_FLUSH_THREAD value(s) freed off the flush thread", off);
    char err[512];
    snprintf(err, sizeof err, "%s", r->err);
    for (size_t i = 0; i < r->nrecs; i++) free(r->recs[i]);
    for (size_t i = 0; i < r->nbrecs; i++) free(r->brecs[i]);
    free(r->recs);
    free(r->brecs);
    free(r->live);
    uint64_t loads = r->loads;
    free(r);
    g_r = NULL;
    if (err[0]) fail_msg("stress round %u: %s", idx, err);
    (void)loads;
}

static unsigned long env_ulong(const char *name, unsigned long def) {
    const char *v = getenv(name);
    return v && *v ? strtoul(v, NULL, 10) : def;
}

static void test_stress(void **state) {
    (void)state;
    unsigned long seed = env_ulong("ASSET_STRESS_SEED", 20240611);
    unsigned long total = env_ulong("ASSET_STRESS_LOADS", RUNNING_ON_VALGRIND ? 20000 : 100000);
    unsigned long per = env_ulong("ASSET_STRESS_ROUND", 10000);
    if (per > total) per = total;
    if (per < 10) per = 10;
    g_rng = seed * 2654435761u + 1;
    print_message("stress: seed %lu, %lu loads in rounds of %lu%s%s\n", seed, total, per,
                  g_have_nginx ? "" : " (no nginx: http skipped)",
                  g_graph ? ", with graphs" : " (graphs off: ASSET_STRESS_GRAPH=0)");
    uint64_t t0 = uv_hrtime();
    for (unsigned idx = 0; g_total_loads < total; idx++) {
        unsigned long left = total - g_total_loads;
        run_round(idx, (unsigned)(left < per ? left : per), idx % 2 == 0);
    }
    print_message("stress: %" PRIu64 " loads in %.1f s\n", g_total_loads,
                  (double)(uv_hrtime() - t0) / 1e9);
}

static int group_setup(void **state) {
    (void)state;
    asset_set_allocator(&tu_alloc_counting);
    g_main_thread = uv_thread_self();
    g_graph = env_ulong("ASSET_STRESS_GRAPH", 1) != 0;
    g_dir = tu_mkdtemp();
    g_pkgdir = tu_path(g_dir, "pkg");
    for (unsigned i = 0; i < NFILES; i++) {
        char name[64], text[512];
        int n = snprintf(text, sizeof text, "{\"file\": %u, \"pad\": \"%0*u\"}", i,
                         (int)(i * 7 % 200), i);
        snprintf(name, sizeof name, "f%u.json", i);
        free(tu_write_file(g_dir, name, text, (size_t)n));
        snprintf(name, sizeof name, "f%u.bin", i);
        free(tu_write_pattern(g_dir, name, 100 + i * 37));
        snprintf(name, sizeof name, "pkg/p%u.txt", i);
        free(tu_write_pattern(g_dir, name, 50 + i * 11));
        snprintf(name, sizeof name, "pkg/p%u.json", i);
        free(tu_write_file(g_dir, name, text, (size_t)n));
    }
    g_have_nginx = tu_nginx_start(&g_nginx);
    if (g_have_nginx) {
        for (unsigned i = 0; i < NHTTP; i++) {
            char name[64], text[64];
            snprintf(name, sizeof name, "h%u.bin", i);
            free(tu_write_pattern(g_nginx.root, name, 200 + i * 500));
            snprintf(name, sizeof name, "h%u.json", i);
            int n = snprintf(text, sizeof text, "{\"h\": %u}", i);
            free(tu_write_file(g_nginx.root, name, text, (size_t)n));
        }
        /* libcurl's global init keeps what it allocates for the process: do it first */
        asset_server_t *s = asset_server_create(NULL);
        char *u = tu_nginx_url(&g_nginx, "h0.json");
        asset_handle_t *h = asset_server_load(s, u, NULL);
        asset_handle_wait(h, 60000);
        asset_handle_release(h);
        asset_server_destroy(s);
        free(u);
    }
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (g_have_nginx) tu_nginx_stop(&g_nginx);
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_pkgdir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stress)};
    return TU_RUN_GROUP_TESTS(tests, group_setup, group_teardown);
}
