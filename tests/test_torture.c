/* test_torture.c - allocation-failure torture.
 *
 * Every scenario (load a file, load JSON, load over HTTP, batches, a manifest, destroy
 * with loads in flight) runs once through a counting allocator installed with
 * asset_set_allocator() to learn how many allocations it makes (N), then again once per
 * failure point k, in a forked child, with the k-th allocation (asset_alloc or
 * asset_realloc, counted from the scenario's start, every thread included) answered
 * with NULL. libcurl's and cJSON's allocations go through the same hook
 * (curl_global_init_mem, cJSON_InitHooks); libuv's do not (see docs/reliability.md).
 *
 * Each run must end cleanly: every handle or batch either loads with the right value or
 * fails with ASSET_E_NO_MEMORY (or the error the scenario expects for that load); a
 * constructor may return NULL only when an allocation failed; every connected callback
 * fires exactly once and none fires during destroy; the allocations alive after
 * asset_server_destroy() are exactly those alive before asset_server_create() (no
 * leak, counted by the hook); no wait runs out (no hang). A child that crashes, hangs
 * (killed after ASSET_TORTURE_TIMEOUT seconds, default 120) or breaks a rule is reported
 * with its scenario and point.
 *
 * Environment:
 *   ASSET_TORTURE_FULL=1       every point 1..N+margin of every scenario
 *   ASSET_TORTURE_MAX=n        at most n points per scenario (default: 2000; 150 under
 *                              valgrind, where each point takes ~40 ms); with
 *                              more points than that, every point up to the first part
 *                              of the budget, then an even stride over the rest
 *   ASSET_TORTURE_ONLY=name    run only that scenario
 *   ASSET_TORTURE_POINT=k      run only point k, in this process (no fork: for gdb)
 *   ASSET_TORTURE_BACKTRACE=1  print a backtrace where each injected failure hits
 *   ASSET_TORTURE_TIMEOUT=s    seconds a child may take (default 120)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "fs.h"
#include "sha256.h"
#include "test_util.h"
#include "tu_http.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define T_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define T_SANITIZED 1
#endif
#endif
#ifndef T_SANITIZED
#define T_SANITIZED 0
#endif

/* ------------------------------------------------------------------------ */
/* The counting, failing allocator                                          */
/* ------------------------------------------------------------------------ */

static atomic_long g_live;      /* blocks handed out and not freed */
static atomic_ulong g_calls;    /* alloc + realloc calls since the scenario began */
static atomic_ulong g_fail_at;  /* the call that fails; 0: none */
static atomic_ulong g_injected; /* failures injected so far */

static bool g_backtrace; /* ASSET_TORTURE_BACKTRACE=1: print where the failure hit */

/* When set, only allocations made by this thread count (deterministic unit tests). */
static atomic_ulong g_only_tid; /* 0: every thread; else a pthread_t (Linux: an integer),
                                  atomic since workers read it while the test arms it */

static bool inject(void) {
    unsigned long only = atomic_load(&g_only_tid);
    if (only && only != (unsigned long)uv_thread_self()) return false;
    unsigned long k = atomic_fetch_add(&g_calls, 1) + 1;
    if (k != atomic_load(&g_fail_at)) return false;
    atomic_fetch_add(&g_injected, 1);
    if (g_backtrace) {
        void *frames[32];
        int n = backtrace(frames, 32);
        fprintf(stderr, "torture: allocation %lu fails here:\n", k);
        backtrace_symbols_fd(frames, n, 2);
    }
    return true;
}

static void *t_alloc(size_t n, void *u) {
    (void)u;
    if (inject()) return NULL;
    void *p = malloc(n);
    if (p) atomic_fetch_add(&g_live, 1);
    return p;
}

static void *t_realloc(void *p, size_t n, void *u) {
    (void)u;
    if (inject()) return NULL;
    void *q = realloc(p, n);
    if (q && !p) atomic_fetch_add(&g_live, 1);
    return q;
}

static void t_free(void *p, void *u) {
    (void)u;
    if (!p) return;
    atomic_fetch_sub(&g_live, 1);
    free(p);
}

static const asset_allocator_t g_hook = {t_alloc, t_realloc, t_free, NULL};

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */
/* ------------------------------------------------------------------------ */

static char *g_dir;      /* temp tree: files, a folder, a package */
static char *g_pkg_root; /* g_dir/pkgs (holds "game") */
static tu_nginx_t g_nginx;
static bool g_have_nginx;
static unsigned char g_big[20000]; /* pattern: a.bin and big.bin */
static const char *g_json_text = "{\"name\": \"hero\", \"speed\": 42, \"tags\": [\"a\", \"b\"]}";
static char g_json_sha[65];

static char *fixture_uri(const char *rel) {
    char *p = tu_path(g_dir, rel);
    char *u = tu_file_uri(p);
    free(p);
    return u;
}

/* ------------------------------------------------------------------------ */
/* One run                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct run {
    char err[768];
    atomic_int cb_fired; /* terminal callbacks that fired */
    int cb_connected;    /* callbacks connected (on_completed returned an id) */
    atomic_bool destroying;
    atomic_int late_cb; /* callbacks that fired during destroy */
} run_t;

/* How long a wait may take before it counts as a hang: loopback HTTP and local files
 * finish in milliseconds; valgrind makes everything ~50 times slower. */
static int g_wait_ms = 15000;

static bool injected(void) { return atomic_load(&g_injected) > 0; }

#define FAIL(...)                                                     \
    do {                                                              \
        if (!r->err[0]) snprintf(r->err, sizeof r->err, __VA_ARGS__); \
        goto out;                                                     \
    } while (0)

static void count_cb(asset_handle_t *h, void *user) {
    run_t *r = user;
    (void)h;
    if (atomic_load(&r->destroying)) atomic_fetch_add(&r->late_cb, 1);
    atomic_fetch_add(&r->cb_fired, 1);
}

/* Loads uri (NULL result allowed only after an injected failure) with a counted callback. */
static asset_handle_t *load(run_t *r, asset_server_t *s, const char *uri,
                            const asset_load_options_t *o) {
    asset_handle_t *h = asset_server_load(s, uri, o);
    if (!h) {
        if (!injected() && !r->err[0])
            snprintf(r->err, sizeof r->err, "load(%s) returned NULL with no failed allocation",
                     uri);
        return NULL;
    }
    if (asset_handle_on_completed(h, count_cb, r))
        r->cb_connected++;
    else if (!injected() && !r->err[0])
        snprintf(r->err, sizeof r->err, "on_completed(%s) returned 0 with no failed allocation",
                 uri);
    return h;
}

typedef bool (*verify_fn)(const void *value, const void *arg);

static bool verify_bytes(const void *value, const void *arg) {
    const asset_bytes_t *b = value;
    const asset_bytes_t *want = arg;
    return b && b->size == want->size && !memcmp(b->data, want->data, want->size) &&
           b->data[b->size] == 0;
}

static bool verify_json(const void *value, const void *arg) {
    (void)arg;
    const cJSON *j = value;
    const cJSON *speed = cJSON_GetObjectItemCaseSensitive(j, "speed");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(j, "name");
    return cJSON_IsNumber(speed) && speed->valueint == 42 && cJSON_IsString(name) &&
           !strcmp(name->valuestring, "hero") &&
           cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "tags")) == 2;
}

/* Judges a handle once it is done: LOADED with a value that passes verify (when
 * expect == ASSET_OK), else FAILED with `expect`; ASSET_E_NO_MEMORY is always allowed
 * once an allocation has failed. Returns false and fills r->err otherwise. */
static bool judge(run_t *r, asset_handle_t *h, asset_status_t expect, verify_fn verify,
                  const void *arg) {
    if (!h) return injected();
    const char *uri = asset_handle_uri(h);
    if (!asset_handle_is_done(h)) {
        snprintf(r->err, sizeof r->err, "%s: not done", uri);
        return false;
    }
    asset_status_t st = asset_handle_error(h);
    if (st == ASSET_E_NO_MEMORY && injected()) return true;
    if (st != expect) {
        snprintf(r->err, sizeof r->err, "%s: status %s (%s), expected %s", uri, asset_err_name(st),
                 asset_handle_error_message(h), asset_err_name(expect));
        return false;
    }
    if (expect == ASSET_OK) {
        if (verify && !verify(asset_handle_value(h), arg)) {
            snprintf(r->err, sizeof r->err, "%s: LOADED with a wrong value", uri);
            return false;
        }
    } else if (!injected() && !asset_handle_error_message(h)[0]) {
        snprintf(r->err, sizeof r->err, "%s: failed without a message", uri);
        return false;
    }
    return true;
}

static bool wait_judge(run_t *r, asset_handle_t *h, asset_status_t expect, verify_fn verify,
                       const void *arg) {
    if (!h) return injected();
    asset_status_t w = asset_handle_wait(h, g_wait_ms);
    if (w == ASSET_E_TIMEOUT) {
        snprintf(r->err, sizeof r->err, "%s: HANG: not done after %d ms", asset_handle_uri(h),
                 g_wait_ms);
        return false;
    }
    return judge(r, h, expect, verify, arg);
}

/* A batch: done, status OK (or NO_MEMORY after a failure), each child judged by fn. */
static bool judge_batch(run_t *r, asset_batch_t *b, size_t want_total,
                        bool (*child)(run_t *r, asset_handle_t *h)) {
    if (!b) {
        if (!injected()) snprintf(r->err, sizeof r->err, "batch constructor returned NULL");
        return injected();
    }
    asset_status_t w = asset_batch_wait(b, g_wait_ms);
    if (w == ASSET_E_TIMEOUT) {
        snprintf(r->err, sizeof r->err, "batch: HANG: not done after %d ms (%zu of %zu children)",
                 g_wait_ms,
                 asset_batch_completed_count(b) + asset_batch_failed_count(b) +
                     asset_batch_cancelled_count(b),
                 asset_batch_total(b));
        return false;
    }
    if (!asset_batch_is_done(b)) {
        snprintf(r->err, sizeof r->err, "batch: wait returned %s but not done", asset_err_name(w));
        return false;
    }
    asset_status_t st = asset_batch_error(b);
    if (st != ASSET_OK) {
        if (st == ASSET_E_NO_MEMORY && injected()) return true;
        snprintf(r->err, sizeof r->err, "batch: status %s (%s)", asset_err_name(st),
                 asset_batch_error_message(b));
        return false;
    }
    size_t n = asset_batch_total(b);
    if (n != want_total) {
        snprintf(r->err, sizeof r->err, "batch: %zu children, expected %zu", n, want_total);
        return false;
    }
    if (asset_batch_completed_count(b) + asset_batch_failed_count(b) +
            asset_batch_cancelled_count(b) !=
        n) {
        snprintf(r->err, sizeof r->err, "batch: counts %zu+%zu+%zu do not add up to %zu",
                 asset_batch_completed_count(b), asset_batch_failed_count(b),
                 asset_batch_cancelled_count(b), n);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        asset_handle_t *h = asset_batch_handle(b, i);
        if (!h || !child(r, h)) {
            if (!r->err[0]) snprintf(r->err, sizeof r->err, "batch: child %zu missing", i);
            return false;
        }
    }
    return true;
}

static asset_server_t *create(run_t *r, const asset_server_config_t *cfg) {
    asset_server_t *s = asset_server_create(cfg);
    if (!s && !injected())
        snprintf(r->err, sizeof r->err, "create returned NULL with no failed allocation");
    return s;
}

static void destroy(run_t *r, asset_server_t *s) {
    atomic_store(&r->destroying, true);
    asset_server_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Scenarios                                                                 */
/* ------------------------------------------------------------------------ */

static asset_bytes_t want_big(size_t n) { return (asset_bytes_t){g_big, n}; }

static void sc_file(run_t *r) {
    asset_server_t *s = create(r, NULL);
    if (!s) return;
    char *a = fixture_uri("a.bin"), *missing = fixture_uri("nope.bin");
    asset_handle_t *h1 = load(r, s, a, NULL);
    asset_handle_t *h2 = load(r, s, a, NULL); /* coalesced or cached */
    asset_handle_t *h3 = load(r, s, missing, NULL);
    asset_bytes_t want = want_big(sizeof g_big);
    if (!wait_judge(r, h1, ASSET_OK, verify_bytes, &want)) goto out;
    if (!wait_judge(r, h2, ASSET_OK, verify_bytes, &want)) goto out;
    if (!wait_judge(r, h3, ASSET_E_NOT_FOUND, NULL, NULL)) goto out;
    /* again, from the cache (revalidated: same version) */
    asset_handle_release(h2);
    h2 = load(r, s, a, NULL);
    if (!wait_judge(r, h2, ASSET_OK, verify_bytes, &want)) goto out;
out:
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    destroy(r, s);
    free(a);
    free(missing);
}

static void sc_json(run_t *r) {
    asset_server_t *s = create(r, NULL);
    if (!s) return;
    asset_handle_t *h1 = NULL, *h2 = NULL, *h3 = NULL, *h4 = NULL;
    int rc = asset_mem_put(s, "cfg/hero.json", g_json_text, strlen(g_json_text));
    if (rc != ASSET_OK && !(rc == ASSET_E_NO_MEMORY && injected()))
        FAIL("mem_put: %s", asset_err_name(rc));
    static const char bad[] = "{\"a\": [1, 2,, 3]}";
    int rc2 = asset_mem_put(s, "cfg/bad.json", bad, strlen(bad));
    if (rc2 != ASSET_OK && !(rc2 == ASSET_E_NO_MEMORY && injected()))
        FAIL("mem_put: %s", asset_err_name(rc2));
    char *f = fixture_uri("b.json");
    h1 = load(r, s, "mem://cfg/hero.json", NULL);
    h2 = load(r, s, f, NULL);
    h3 = load(r, s, "mem://cfg/bad.json", NULL);
    asset_load_options_t raw = {.loader = "bytes", .no_cache = true};
    h4 = load(r, s, "mem://cfg/hero.json", &raw);
    free(f);
    asset_bytes_t want = {(const uint8_t *)g_json_text, strlen(g_json_text)};
    if (!wait_judge(r, h1, rc == ASSET_OK ? ASSET_OK : ASSET_E_NOT_FOUND, verify_json, NULL))
        goto out;
    if (!wait_judge(r, h2, ASSET_OK, verify_json, NULL)) goto out;
    if (!wait_judge(r, h3, rc2 == ASSET_OK ? ASSET_E_PARSE : ASSET_E_NOT_FOUND, NULL, NULL))
        goto out;
    if (!wait_judge(r, h4, rc == ASSET_OK ? ASSET_OK : ASSET_E_NOT_FOUND, verify_bytes, &want))
        goto out;
out:
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(h4);
    destroy(r, s);
}

static void sc_http(run_t *r) {
    asset_server_t *s = create(r, NULL);
    if (!s) return;
    char *j = tu_nginx_url(&g_nginx, "h.json"), *big = tu_nginx_url(&g_nginx, "big.bin"),
         *missing = tu_nginx_url(&g_nginx, "missing.txt");
    asset_handle_t *h1 = load(r, s, j, NULL);
    asset_handle_t *h2 = load(r, s, big, NULL);
    asset_handle_t *h3 = load(r, s, missing, NULL);
    asset_handle_t *h4 = NULL;
    asset_bytes_t want = want_big(sizeof g_big);
    if (!wait_judge(r, h1, ASSET_OK, verify_json, NULL)) goto out;
    if (!wait_judge(r, h2, ASSET_OK, verify_bytes, &want)) goto out;
    if (!wait_judge(r, h3, ASSET_E_HTTP, NULL, NULL)) goto out;
    /* revalidation: a conditional GET answered 304 */
    h4 = load(r, s, j, NULL);
    if (!wait_judge(r, h4, ASSET_OK, verify_json, NULL)) goto out;
out:
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(h4);
    destroy(r, s);
    free(j);
    free(big);
    free(missing);
}

/* children of the group: a.bin, mem x.json, pkg game/c.txt, a forbidden URI */
static bool group_child(run_t *r, asset_handle_t *h) {
    const char *u = asset_handle_uri(h);
    asset_bytes_t want = want_big(sizeof g_big);
    asset_bytes_t c = {(const uint8_t *)"pkg data", 8};
    if (strstr(u, "a.bin")) return judge(r, h, ASSET_OK, verify_bytes, &want);
    if (strstr(u, "x.json")) return judge(r, h, ASSET_OK, verify_json, NULL);
    if (strstr(u, "c.txt")) return judge(r, h, ASSET_OK, verify_bytes, &c);
    return judge(r, h, ASSET_E_FORBIDDEN, NULL, NULL);
}

/* children of the folder dir/: one.txt, two.txt, sub/three.txt, each "<name>" */
static bool folder_child(run_t *r, asset_handle_t *h) {
    const char *u = asset_handle_uri(h);
    const char *slash = strrchr(u, '/');
    asset_bytes_t want = {(const uint8_t *)(slash + 1), strlen(slash + 1)};
    return judge(r, h, ASSET_OK, verify_bytes, &want);
}

static void sc_batch(run_t *r) {
    asset_server_config_t cfg = {.pkg_path = g_pkg_root};
    asset_server_t *s = create(r, &cfg);
    if (!s) return;
    asset_batch_t *g = NULL, *f = NULL;
    int rc = asset_mem_put(s, "x.json", g_json_text, strlen(g_json_text));
    if (rc != ASSET_OK) {
        if (rc == ASSET_E_NO_MEMORY && injected()) goto out;
        FAIL("mem_put: %s", asset_err_name(rc));
    }
    char *a = fixture_uri("a.bin"), *dir = fixture_uri("dir");
    const char *uris[] = {a, "mem://x.json", "pkg://game/c.txt", "pkg://game/../../etc/passwd"};
    g = asset_server_load_group(s, uris, 4, NULL);
    asset_load_options_t o = {.tag = "folder"};
    f = asset_server_load_folder(s, dir, &o);
    free(a);
    free(dir);
    if (!judge_batch(r, g, 4, group_child)) goto out;
    if (!judge_batch(r, f, 3, folder_child)) goto out;
out:
    asset_batch_release(g);
    asset_batch_release(f);
    destroy(r, s);
}

static bool manifest_child(run_t *r, asset_handle_t *h) {
    const char *u = asset_handle_uri(h);
    asset_bytes_t want = want_big(sizeof g_big);
    if (strstr(u, "a.bin")) return judge(r, h, ASSET_OK, verify_bytes, &want);
    if (strstr(u, "hero.json")) return judge(r, h, ASSET_OK, verify_json, NULL);
    if (strstr(u, "tampered")) return judge(r, h, ASSET_E_INTEGRITY, NULL, NULL);
    return judge(r, h, ASSET_E_NOT_FOUND, NULL, NULL);
}

static void sc_manifest(run_t *r) {
    /* the mem:// manifest names a file:// entry, which the default trust order refuses */
    asset_server_config_t cfg = {.manifest_schemes = "default mem->file"};
    asset_server_t *s = create(r, &cfg);
    if (!s) return;
    asset_batch_t *b = NULL;
    char *a = fixture_uri("a.bin");
    char *m = asset__asprintf(
        "{\"assets\": [\"data/hero.json\", "
        "{\"uri\": \"data/tampered.json\", \"sha256\": \"%s\", \"size\": %zu, \"priority\": "
        "\"low\"}, "
        "{\"uri\": \"%s\", \"loader\": \"bytes\", \"size\": %zu, \"priority\": \"high\"}, "
        "\"data/missing.bin\"]}",
        g_json_sha, strlen(g_json_text), a, sizeof g_big);
    free(a);
    if (!m) {
        if (injected()) goto out;
        FAIL("asprintf");
    }
    int rc1 = asset_mem_put(s, "pack/manifest.json", m, strlen(m));
    asset_free(m);
    int rc2 = asset_mem_put(s, "pack/data/hero.json", g_json_text, strlen(g_json_text));
    int rc3 = asset_mem_put(s, "pack/data/tampered.json", "{\"x\": 1}", 8);
    if (rc1 || rc2 || rc3) {
        if (injected()) goto out;
        FAIL("mem_put failed with no failed allocation");
    }
    b = asset_server_load_manifest(s, "mem://pack/manifest.json", NULL);
    if (!judge_batch(r, b, 4, manifest_child)) goto out;
    /* value lookup by the URI as written */
    if (asset_handle_error(asset_batch_handle(b, 0)) == ASSET_OK &&
        !asset_batch_value(b, "data/hero.json") && !injected())
        FAIL("asset_batch_value(data/hero.json) is NULL");
out:
    asset_batch_release(b);
    destroy(r, s);
}

/* ---- destroy with loads in flight: a source that blocks until cancelled ---- */

typedef struct stall {
    uv_mutex_t mu;
    uv_cond_t cond;
    int entered;
} stall_t;

static asset_status_t stall_read(void *ctx, asset_request_t *req) {
    stall_t *st = ctx;
    uv_mutex_lock(&st->mu);
    st->entered++;
    uv_cond_broadcast(&st->cond);
    while (!asset_request_cancelled(req)) /* a source can only poll for cancel */
        (void)uv_cond_timedwait(&st->cond, &st->mu, 1000000);
    uv_mutex_unlock(&st->mu);
    return ASSET_E_CANCELLED;
}

static void sc_destroy(run_t *r) {
    stall_t st = {0};
    uv_mutex_init(&st.mu);
    uv_cond_init(&st.cond);
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = create(r, &cfg);
    asset_handle_t *hs[8] = {0};
    asset_batch_t *b = NULL;
    if (!s) goto done;
    asset_source_t src = {ASSET_SOURCE_ABI, "stall", 0, stall_read, NULL, NULL};
    int rc = asset_server_register_source(s, &src, &st);
    if (rc != ASSET_OK) {
        if (!(rc == ASSET_E_NO_MEMORY && injected()))
            FAIL("register_source: %s", asset_err_name(rc));
        goto out;
    }
    (void)asset_mem_put(s, "m.json", g_json_text, strlen(g_json_text));
    char *big = g_have_nginx ? tu_nginx_url(&g_nginx, "big.bin") : NULL;
    char *a = fixture_uri("a.bin");
    asset_load_options_t slow = {.timeout_ms = 600000, .tag = "t"};
    hs[0] = load(r, s, "stall://one", &slow);
    hs[1] = load(r, s, "stall://two", NULL);
    hs[2] = load(r, s, "mem://m.json", NULL);
    hs[3] = load(r, s, a, &slow);
    hs[4] = big ? load(r, s, big, NULL) : NULL;
    hs[5] = load(r, s, "stall://three", &slow); /* queued behind the two stalled workers */
    const char *group[] = {"stall://g1", "mem://m.json"};
    b = asset_server_load_group(s, group, 2, NULL);
    free(big);
    free(a);
    /* let both workers enter the stalling source (or the loads fail trying) */
    uv_mutex_lock(&st.mu);
    for (int spins = 0; st.entered < 2 && spins < 60000; spins++) {
        bool any_live = false;
        for (int i = 0; i < 2; i++)
            any_live |= hs[i] && asset_handle_state(hs[i]) < ASSET_STATE_LOADED;
        uv_mutex_unlock(&st.mu);
        asset_server_flush(s);
        uv_mutex_lock(&st.mu);
        if (!any_live) break;
        (void)uv_cond_timedwait(&st.cond, &st.mu, 1000000);
    }
    uv_mutex_unlock(&st.mu);
    asset_server_flush(s);
    /* hs[2] may be done by now; the rest are in flight */
out:
    /* releasing some, keeping others: destroy frees both kinds */
    asset_handle_release(hs[1]);
    asset_batch_release(b);
    destroy(r, s);
done:
    uv_cond_destroy(&st.cond);
    uv_mutex_destroy(&st.mu);
}

typedef struct scenario {
    const char *name;
    void (*fn)(run_t *r);
    bool http;
} scenario_t;

static const scenario_t g_scenarios[] = {
    {"file", sc_file, false},   {"json", sc_json, false},         {"http", sc_http, true},
    {"batch", sc_batch, false}, {"manifest", sc_manifest, false}, {"destroy", sc_destroy, false},
};

/* Runs a scenario with failure point k (0: none). Returns true when every rule held;
 * r->err says what broke otherwise. */
static bool run_point(const scenario_t *sc, unsigned long k, run_t *r, unsigned long *calls) {
    memset(r, 0, sizeof *r);
    long live0 = atomic_load(&g_live);
    atomic_store(&g_injected, 0);
    atomic_store(&g_calls, 0);
    atomic_store(&g_fail_at, k);
    sc->fn(r);
    atomic_store(&g_fail_at, 0);
    if (calls) *calls = atomic_load(&g_calls);
    long leaked = atomic_load(&g_live) - live0;
    if (!r->err[0] && leaked != 0)
        snprintf(r->err, sizeof r->err, "LEAK: %ld allocation(s) alive after destroy", leaked);
    if (!r->err[0] && atomic_load(&r->late_cb))
        snprintf(r->err, sizeof r->err, "%d callback(s) fired during destroy",
                 atomic_load(&r->late_cb));
    if (!r->err[0] && atomic_load(&r->cb_fired) > r->cb_connected)
        snprintf(r->err, sizeof r->err, "%d callbacks fired for %d connected",
                 atomic_load(&r->cb_fired), r->cb_connected);
    if (!r->err[0] && strcmp(sc->name, "destroy") != 0 &&
        atomic_load(&r->cb_fired) != r->cb_connected)
        snprintf(r->err, sizeof r->err, "%d callbacks fired for %d connected",
                 atomic_load(&r->cb_fired), r->cb_connected);
    return r->err[0] == 0;
}

/* Forks a child for point k. Returns 0 on pass, else writes a report into msg. */
static int run_point_forked(const scenario_t *sc, unsigned long k, int timeout_s, char *msg,
                            size_t msgn) {
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(msg, msgn, "pipe: %s", strerror(errno));
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, msgn, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        /* cmocka catches these to report a test; here a crash must look like one */
        int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
        run_t *r = malloc(sizeof *r);
        bool ok = run_point(sc, k, r, NULL);
        char out[1024];
        int n = snprintf(out, sizeof out, "%s|%lu", ok ? "" : r->err,
                         (unsigned long)atomic_load(&g_injected));
        if (write(fds[1], out, (size_t)n) < 0) _exit(3);
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    char buf[1024];
    size_t got = 0;
    bool hung = false;
    for (;;) {
        struct pollfd p = {fds[0], POLLIN, 0};
        int pr = poll(&p, 1, timeout_s * 1000);
        if (pr < 0 && errno == EINTR) continue;
        if (pr == 0) {
            hung = true;
            break;
        }
        ssize_t n = read(fds[0], buf + got, sizeof buf - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        if (got == sizeof buf - 1) break;
    }
    buf[got] = 0;
    close(fds[0]);
    if (hung) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (hung) {
        snprintf(msg, msgn, "HANG: no result after %d s (killed)", timeout_s);
        return 1;
    }
    if (WIFSIGNALED(status)) {
        snprintf(msg, msgn, "CRASH: killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *bar = strrchr(buf, '|');
        if (bar) *bar = 0;
        snprintf(msg, msgn, "exit %d: %.900s", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 buf[0] ? buf : "(no report)");
        return 1;
    }
    return 0;
}

static unsigned long env_ulong(const char *name, unsigned long def) {
    const char *v = getenv(name);
    return v && *v ? strtoul(v, NULL, 10) : def;
}

/* Totals over the run, printed at the end (docs/reliability.md quotes them). */
static unsigned long g_total_points, g_total_counted;

static void run_scenario(const scenario_t *sc) {
    const char *only = getenv("ASSET_TORTURE_ONLY");
    if (only && *only && strcmp(only, sc->name) != 0) return;
    if (sc->http && !g_have_nginx) {
        print_message("torture %-8s skipped: nginx unavailable\n", sc->name);
        return;
    }
    run_t *r = calloc(1, sizeof *r);
    unsigned long single = env_ulong("ASSET_TORTURE_POINT", 0);
    if (single) { /* in this process, for a debugger */
        bool ok = run_point(sc, single, r, NULL);
        if (!ok) fail_msg("torture %s point %lu: %s", sc->name, single, r->err);
        free(r);
        return;
    }
    unsigned long n = 0;
    bool ok = run_point(sc, 0, r, &n);
    if (!ok) fail_msg("torture %s, counting run (no failure): %s", sc->name, r->err);
    free(r);
    /* thread timing moves the count a little: go some way past it */
    unsigned long last = n + n / 10 + 10;
    bool full = env_ulong("ASSET_TORTURE_FULL", 0) != 0;
    unsigned long max = env_ulong("ASSET_TORTURE_MAX", RUNNING_ON_VALGRIND ? 150 : 2000);
    if (max == 0) max = 1;
    /* every point while the budget lasts; past it, the first 3/4 of the budget dense and
     * an even stride over the rest */
    unsigned long dense = full || last <= max ? last : max * 3 / 4;
    unsigned long stride = 1;
    if (!full && last > max) stride = (last - dense) / (max - dense) + 1;
    int timeout_s = (int)env_ulong("ASSET_TORTURE_TIMEOUT", 120);
    unsigned long points = 0, failures = 0;
    uint64_t t0 = uv_hrtime();
    for (unsigned long k = 1; k <= last; k = k < dense ? k + 1 : k + stride) {
        char msg[1024];
        points++;
        if (run_point_forked(sc, k, timeout_s, msg, sizeof msg) != 0) {
            failures++;
            print_error("torture %s point %lu of %lu: %s\n", sc->name, k, last, msg);
            if (failures >= 20) break;
        }
    }
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    print_message("torture %-8s %5lu allocations counted, %5lu failure points run%s, %lu failed, "
                  "%.1f s\n",
                  sc->name, n, points, stride > 1 ? " (sampled)" : "", failures, secs);
    g_total_points += points;
    g_total_counted += n;
    if (failures)
        fail_msg("torture %s: %lu of %lu failure points broke a rule", sc->name, failures, points);
}

/* ---- regressions for what the fuzzers (fuzz/) found; the crashing inputs are also in
 * their seed corpora ---- */

/* fuzz_uri: "http://#frag" normalised to "http://", a URI with no host, accepted. */
static void test_fuzz_regression_http_uri_without_host_is_invalid(void **state) {
    (void)state;
    const char *bad[] = {"HTTP://#8=rfag", "http://?x=1", "https://#", "http://", "http:///a"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        asset_uri_t u;
        const char *why = NULL;
        assert_int_equal(asset__uri_parse(bad[i], "/", NULL, &u, &why), ASSET_E_INVALID);
        assert_string_equal(why, "missing host");
    }
}

/* fuzz_pkg: the O_NOFOLLOW walk (used where openat2 is missing) followed ".." out of
 * the root: open_beneath(root, "sub/../../x") opened a file beside the root. */
static void test_fuzz_regression_walk_refuses_dotdot(void **state) {
    (void)state;
    char *t = tu_mkdtemp();
    free(tu_write_file(t, "secret.txt", "s", 1));
    free(tu_write_file(t, "root/sub/a.txt", "a", 1));
    char *root = tu_path(t, "root");
    int rfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    assert_true(rfd >= 0);
    for (int walk = 0; walk < 2; walk++) {
        asset__fs_force_walk = walk;
        int fd = asset__open_beneath(rfd, "sub/../../secret.txt", O_RDONLY);
        if (fd >= 0) close(fd);
        assert_true(fd < 0);
        fd = asset__open_beneath(rfd, "../secret.txt", O_RDONLY);
        if (fd >= 0) close(fd);
        assert_true(fd < 0);
        fd = asset__open_beneath(rfd, "sub/a.txt", O_RDONLY);
        assert_true(fd >= 0);
        close(fd);
    }
    asset__fs_force_walk = false;
    close(rfd);
    tu_rmrf(t);
    free(t);
    free(root);
}

#define SCENARIO_TEST(name, i)                      \
    static void test_torture_##name(void **state) { \
        (void)state;                                \
        run_scenario(&g_scenarios[i]);              \
    }
SCENARIO_TEST(file, 0)
SCENARIO_TEST(json, 1)
SCENARIO_TEST(http, 2)
SCENARIO_TEST(batch, 3)
SCENARIO_TEST(manifest, 4)
SCENARIO_TEST(destroy, 5)

/* ------------------------------------------------------------------------ */
/* Deterministic regressions for what the torture found                      */
/* ------------------------------------------------------------------------ */

/* Fails the k-th allocation made by this thread (0: none) from now on. */
static void arm_this_thread(unsigned long k) {
    atomic_store(&g_only_tid, k ? (unsigned long)uv_thread_self() : 0ul);
    atomic_store(&g_calls, 0);
    atomic_store(&g_injected, 0);
    atomic_store(&g_fail_at, k);
}

/* Bug: cJSON answers NULL when an allocation fails, and the json loader reported that
 * as ASSET_E_PARSE ("trailing characters after the value"). Now: ASSET_E_NO_MEMORY. */
static void test_json_loader_reports_no_memory_not_a_parse_error(void **state) {
    (void)state;
    int oom = 0;
    for (unsigned long k = 1; k < 200; k++) {
        asset__job_t job;
        memset(&job, 0, sizeof job);
        struct asset_request req; /* a job owns its request while it runs */
        job.req = &req;
        job.uri = "mem://x.json";
        asset__request_init(&req, &job);
        req.data = (uint8_t *)asset__strdup(g_json_text);
        req.size = strlen(g_json_text);
        req.cap = req.size + 1;
        asset_parse_t p;
        memset(&p, 0, sizeof p);
        p.req = &req;
        arm_this_thread(k);
        asset_status_t st = asset__json_loader.parse(NULL, &p);
        bool hit = atomic_load(&g_injected) > 0;
        arm_this_thread(0);
        if (st == ASSET_OK) {
            assert_true(p.has_value);
            assert_true(verify_json(p.value, NULL));
            asset__json_loader.free_value(NULL, p.value);
        } else {
            assert_true(hit);
            assert_int_equal(st, ASSET_E_NO_MEMORY);
            oom++;
        }
        asset_free(p.message);
        asset__request_dispose(&req);
        if (!hit) break; /* past the last allocation of a parse */
    }
    assert_true(oom > 5);
}

/* Bug: a package found on pkg_path whose mount record could not be allocated was
 * reported as "package 'game' is not mounted" (ASSET_E_NOT_FOUND). */
static void test_pkg_lookup_out_of_memory_is_not_not_found(void **state) {
    (void)state;
    asset_server_config_t cfg = {.pkg_path = g_pkg_root};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset__job_t job;
    memset(&job, 0, sizeof job);
    struct asset_request req; /* a job owns its request while it runs */
    job.req = &req;
    job.uri = "pkg://game/c.txt";
    job.parsed.path = "game/c.txt";
    asset__request_init(&req, &job);
    req.server = s;
    req.max_size = 1 << 20;
    arm_this_thread(1); /* the mount record of "game", found on pkg_path */
    asset_status_t st = asset__pkg_source.read(s, &req);
    arm_this_thread(0);
    assert_int_equal(st, ASSET_E_NO_MEMORY);
    assert_non_null(req.message);
    asset__request_dispose(&req);
    /* and the next read finds it */
    asset__request_init(&req, &job);
    req.server = s;
    req.max_size = 1 << 20;
    assert_int_equal(asset__pkg_source.read(s, &req), ASSET_OK);
    assert_int_equal(req.size, 8);
    asset__request_dispose(&req);
    asset_server_destroy(s);
}

/* Bug: when a batch could not connect its callback to a child (no memory), it counted
 * the child failed at once: the batch could finish while that child still loaded, and
 * a group whose every child was counted so never finished at all (a hang). Every
 * allocation of load_group on the calling thread is failed in turn. */
static void test_group_whose_child_cannot_be_watched_still_finishes(void **state) {
    (void)state;
    unsigned long k;
    for (k = 1; k < 100; k++) {
        asset_server_t *s = asset_server_create(NULL);
        assert_non_null(s);
        assert_int_equal(asset_mem_put(s, "one", "1", 1), ASSET_OK);
        const char *uris[] = {"mem://one"};
        arm_this_thread(k);
        asset_batch_t *b = asset_server_load_group(s, uris, 1, NULL);
        bool hit = atomic_load(&g_injected) > 0;
        arm_this_thread(0);
        if (b) {
            asset_status_t w = asset_batch_wait(b, 10000);
            assert_int_not_equal(w, ASSET_E_TIMEOUT); /* the hang */
            assert_true(asset_batch_is_done(b));
            for (size_t i = 0; i < asset_batch_count(b); i++)
                assert_true(asset_handle_is_done(asset_batch_handle(b, i)));
            assert_int_equal(asset_batch_completed_count(b) + asset_batch_failed_count(b) +
                                 asset_batch_cancelled_count(b),
                             asset_batch_count(b));
            if (asset_batch_count(b) == 0)
                assert_int_equal(asset_batch_error(b), ASSET_E_NO_MEMORY);
            asset_batch_release(b);
        }
        asset_server_destroy(s);
        if (!hit) break;
    }
    assert_true(k > 5);
}

/* ------------------------------------------------------------------------ */
/* Group setup                                                               */
/* ------------------------------------------------------------------------ */

static int group_setup(void **state) {
    (void)state;
    /* before any server: the hook must see every allocation of the library */
    asset_set_allocator(&g_hook);
    if (RUNNING_ON_VALGRIND) g_wait_ms = 120000;
    g_backtrace = getenv("ASSET_TORTURE_BACKTRACE") && atoi(getenv("ASSET_TORTURE_BACKTRACE"));
    for (size_t i = 0; i < sizeof g_big; i++) g_big[i] = (unsigned char)(i * 131 + 17);
    g_dir = tu_mkdtemp();
    free(tu_write_file(g_dir, "a.bin", g_big, sizeof g_big));
    free(tu_write_file(g_dir, "b.json", g_json_text, strlen(g_json_text)));
    free(tu_write_file(g_dir, "dir/one.txt", "one.txt", 7));
    free(tu_write_file(g_dir, "dir/two.txt", "two.txt", 7));
    free(tu_write_file(g_dir, "dir/sub/three.txt", "three.txt", 9));
    free(tu_write_file(g_dir, "pkgs/game/c.txt", "pkg data", 8));
    g_pkg_root = tu_path(g_dir, "pkgs");
    asset__sha256_hex(g_json_text, strlen(g_json_text), g_json_sha);
    g_have_nginx = tu_nginx_start(&g_nginx);
    if (g_have_nginx) {
        free(tu_write_file(g_nginx.root, "h.json", g_json_text, strlen(g_json_text)));
        free(tu_write_file(g_nginx.root, "big.bin", g_big, sizeof g_big));
        /* warm-up: libcurl's global init allocates through the hook once per process
         * and keeps it; do it before any count so it is neither a leak nor a point */
        asset_server_t *s = asset_server_create(NULL);
        char *u = tu_nginx_url(&g_nginx, "h.json");
        asset_handle_t *h = asset_server_load(s, u, NULL);
        asset_handle_wait(h, 60000);
        asset_handle_release(h);
        asset_server_destroy(s);
        free(u);
    }
    print_message("torture: mode %s%s\n", getenv("ASSET_TORTURE_FULL") ? "full" : "bounded",
                  RUNNING_ON_VALGRIND ? " (valgrind)"
                  : T_SANITIZED       ? " (sanitizer)"
                                      : "");
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    if (g_have_nginx) tu_nginx_stop(&g_nginx);
    tu_rmrf(g_dir);
    free(g_dir);
    free(g_pkg_root);
    print_message("torture: %lu allocations counted, %lu failure points run in total\n",
                  g_total_counted, g_total_points);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_loader_reports_no_memory_not_a_parse_error),
        cmocka_unit_test(test_pkg_lookup_out_of_memory_is_not_not_found),
        cmocka_unit_test(test_group_whose_child_cannot_be_watched_still_finishes),
        cmocka_unit_test(test_fuzz_regression_http_uri_without_host_is_invalid),
        cmocka_unit_test(test_fuzz_regression_walk_refuses_dotdot),
        cmocka_unit_test(test_torture_file),
        cmocka_unit_test(test_torture_json),
        cmocka_unit_test(test_torture_http),
        cmocka_unit_test(test_torture_batch),
        cmocka_unit_test(test_torture_manifest),
        cmocka_unit_test(test_torture_destroy),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
