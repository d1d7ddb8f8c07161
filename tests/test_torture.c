/* test_torture.c - allocation-failure torture.
 *
 * Every scenario (load a file, load JSON, load over HTTP, HTTP polls, batches, a manifest, destroy
 * with loads in flight, the asset graph: see sc_graph for what it accepts) runs once through a
 * counting allocator installed with asset_set_allocator() to learn how many allocations it makes
 * (N), then again once per failure point k, in a forked child (in this process on
 * Windows, which cannot fork: T_POSIX), with the k-th allocation
 * (asset_alloc or asset_realloc, counted from the scenario's start, every thread included) answered
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
 *   ASSET_XFAIL_STRICT=0       tolerate scenarios marked with a known core bug (default 1)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

/* Windows (the mingw build under wine) has no fork: each failure point runs in this
 * process instead (the ctest test_torture_points, every point), and there is no
 * backtrace() and no O_PATH descriptor for the walk. T_POSIX says which. */
#ifdef _WIN32
#define T_POSIX 0
#else
#define T_POSIX 1
#include <execinfo.h>
#include <poll.h>
#include <sys/wait.h>
#endif

#include "internal.h"
#include "fs.h"
#include "sha256.h"
#include "test_util.h"
#include "tu_http.h"
#include "tu_os.h"
#include "tu_request.h"

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
static atomic_bool g_fail_on;   /* every call from g_fail_at on fails, not that one alone */

static bool g_backtrace; /* ASSET_TORTURE_BACKTRACE=1: print where the failure hit */

static void print_backtrace(void) {
#if T_POSIX
    void *frames[32];
    int n = backtrace(frames, 32);
    backtrace_symbols_fd(frames, n, 2);
#else
    fputs("  (no backtrace() on this OS)\n", stderr);
#endif
}

/* When set, only allocations made by this thread count (deterministic unit tests). */
static atomic_ulong g_only_tid; /* 0: every thread; else a pthread_t (Linux: an integer),
                                  atomic since workers read it while the test arms it */

static bool inject(void) {
    unsigned long only = atomic_load(&g_only_tid);
    if (only && only != (unsigned long)(uintptr_t)uv_thread_self()) return false;
    unsigned long k = atomic_fetch_add(&g_calls, 1) + 1, at = atomic_load(&g_fail_at);
    if (k != at && !(at && k > at && atomic_load(&g_fail_on))) return false;
    atomic_fetch_add(&g_injected, 1);
    if (g_backtrace) {
        fprintf(stderr, "torture: allocation %lu fails here:\n", k);
        print_backtrace();
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

/* Bugs found in the core and not fixed yet may be tolerated by the scenarios (a
 * scenario's known_bug, skipped) when ASSET_XFAIL_STRICT=0; strict is the default and
 * every bug the graph scenarios found is fixed (docs/reliability.md). */
static bool g_strict = true;

#define FAIL(...)                                                     \
    do {                                                              \
        if (!r->err[0]) snprintf(r->err, sizeof r->err, __VA_ARGS__); \
        goto out;                                                     \
    } while (0)

/* The graph scenarios' set-up steps: false when one failed (a failure not injected is
 * the run's error), so that the scenario goes to its end. */
static bool all_registered(run_t *r, const int *rc, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (rc[i] == ASSET_OK) continue;
        if (!(rc[i] == ASSET_E_NO_MEMORY && injected()) && !r->err[0])
            snprintf(r->err, sizeof r->err, "register %u: %s", (unsigned)i, asset_err_name(rc[i]));
        return false;
    }
    return true;
}

/* Puts docs[i][1] at mem key docs[i][0], each. */
static bool docs_put(run_t *r, asset_server_t *s, const char *const (*docs)[2], size_t n) {
    for (size_t i = 0; i < n; i++) {
        int m = asset_mem_put(s, docs[i][0], docs[i][1], strlen(docs[i][1]));
        if (m == ASSET_OK) continue;
        if (!(m == ASSET_E_NO_MEMORY && injected()) && !r->err[0])
            snprintf(r->err, sizeof r->err, "mem_put %s: %s", docs[i][0], asset_err_name(m));
        return false;
    }
    return true;
}

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
    /* a key some folders deep: each folder filed (mem.c), or none when one cannot be */
    int rc3 = asset_mem_put(s, "cfg/deep/er/x.json", bad, strlen(bad));
    if (rc3 != ASSET_OK && !(rc3 == ASSET_E_NO_MEMORY && injected()))
        FAIL("mem_put: %s", asset_err_name(rc3));
    int rc4 = asset_mem_remove(s, "cfg/deep/er/x.json");
    if (rc4 != (rc3 == ASSET_OK ? ASSET_OK : ASSET_E_NOT_FOUND) &&
        !(rc4 == ASSET_E_NO_MEMORY && injected())) /* the key kept */
        FAIL("mem_remove: %s", asset_err_name(rc4));
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

/* h4 goes out on an easy handle a finished transfer left (its reset, the options set
 * again): reuse is forced on, as libcurl 8.1.0 and later have it (test_http). */
static void sc_http(run_t *r) {
    asset__http_set_easy_reuse(1);
    asset_server_t *s = create(r, NULL);
    if (!s) {
        asset__http_set_easy_reuse(-1);
        return;
    }
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
    asset__http_set_easy_reuse(-1);
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

/* ---- the asset graph: dependencies, labels, finalize, cancel, destroy in flight ----
 *
 * A line-format loader (as in test_graph.c): "dep URI" / "opt URI" (asset_parse_depend,
 * optional), "deps URI URI..." (one list: asset_parse_depend_many), "label NAME" (a sub-asset whose
 * value is "NAME"), "pend N" (finalize returns PENDING N times first), "gpu" (finalize replaces the
 * value with "gpu:", cost 7). The value is a copy of the text. Loader "g" (.g) has a finalize step
 * and FREE_ON_FLUSH_THREAD; loader "n" (.n) is ABI 1, with neither.
 *
 * What is acceptable once an allocation failed: a handle LOADED with the right value;
 * or FAILED with ASSET_E_NO_MEMORY; or FAILED with ASSET_E_DEPENDENCY whose message says
 * "out of memory" (a dependency ran out of memory: the chain's message ends with that
 * dependency's own message). Nothing else: a cancelled shared dependency, a NOT_FOUND
 * label or a cycle message where there is no cycle would be a bug. A parent that fails
 * with a dependency cycle must say "dependency cycle" (or run out of memory). */

typedef struct gtl {
    atomic_int finalizes, pendings, frees_off_flush_thread;
    uv_thread_t flush_thread;
    uv_mutex_t mu; /* pend table: finalize runs on the flush thread only, but keep it simple */
    char pend_uri[8][64];
    int pend_left[8];
    int npend;
} gtl_t;

static void gt_free(void *ctx, void *value) {
    gtl_t *g = ctx;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &g->flush_thread)) {
        atomic_fetch_add(&g->frees_off_flush_thread, 1);
        if (g_backtrace) { /* where: for the report */
            fprintf(stderr, "torture: FREE_ON_FLUSH_THREAD value freed off the flush thread:\n");
            print_backtrace();
        }
    }
    asset_free(value);
}

static void arm_this_thread(unsigned long k);
static uv_sem_t g_block_entered, g_block_release; /* "block": test_graph_race... */
static asset_status_t gt_parse_lines(asset_parse_t *p, const char *text, bool *armed);

/* Regression documents also use "arm K" (fail the K-th allocation of this worker from
 * here until the parse returns), "failrecord" (fail the first allocation after parse
 * returns: the value's record) and "setfail" (set a value, then fail). */
static asset_status_t gt_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    const char *text = (const char *)asset_parse_data(p);
    bool armed = false;
    asset_status_t st = gt_parse_lines(p, text, &armed);
    if (armed) atomic_store(&g_fail_at, 0); /* g_injected still tells whether it hit */
    if (st != ASSET_OK) return st;
    char *v = tu_asset_strndup(text, asset_parse_size(p));
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, v, asset_parse_size(p));
    if (strstr(text, "setfail")) return asset_parse_fail(p, ASSET_E_PARSE, "set, then failed");
    if (strstr(text, "failrecord")) arm_this_thread(1);
    return ASSET_OK;
}

static asset_status_t gt_parse_lines(asset_parse_t *p, const char *text, bool *armed) {
    char line[256];
    for (const char *c = text; tu_next_line(&c, line, sizeof line);) {
        if (!strncmp(line, "dep ", 4) || !strncmp(line, "opt ", 4)) {
            asset_load_options_t o = {.optional = line[0] == 'o'};
            if (!asset_parse_depend(p, line + 4, &o))
                return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory adding %s", line + 4);
        } else if (!strncmp(line, "deps ", 5)) {
            const char *u[8];
            size_t want, n = tu_split_words(line + 5, u, 8, &want);
            if (asset_parse_depend_many(p, u, n, NULL, NULL) != want)
                return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory adding a list");
        } else if (!strncmp(line, "label ", 6)) {
            char *v = tu_asset_strndup(line + 6, strlen(line + 6));
            if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
            asset_status_t st = asset_parse_add_labeled(p, line + 6, v, strlen(v), NULL, NULL);
            if (st != ASSET_OK) {
                asset_free(v);
                return asset_parse_fail(p, st, "label %s: %s", line + 6, asset_strerror(st));
            }
        } else if (!strcmp(line, "block")) { /* the race regression: parse waits */
            uv_sem_post(&g_block_entered);
            uv_sem_wait(&g_block_release);
        } else if (!strncmp(line, "arm ", 4)) {
            arm_this_thread(strtoul(line + 4, NULL, 10));
            *armed = true;
        }
    }
    return ASSET_OK;
}

static asset_status_t gt_finalize(void *ctx, asset_finalize_t *f) {
    gtl_t *g = ctx;
    atomic_fetch_add(&g->finalizes, 1);
    const char *text = asset_finalize_value(f);
    const char *pend = strstr(text, "pend ");
    if (pend) {
        int *left = NULL;
        uv_mutex_lock(&g->mu);
        for (int i = 0; i < g->npend && !left; i++)
            if (!strcmp(g->pend_uri[i], asset_finalize_uri(f))) left = &g->pend_left[i];
        if (!left && g->npend < 8) {
            snprintf(g->pend_uri[g->npend], sizeof g->pend_uri[0], "%s", asset_finalize_uri(f));
            g->pend_left[g->npend] = atoi(pend + 5);
            left = &g->pend_left[g->npend++];
        }
        bool again = left && (*left)-- > 0;
        uv_mutex_unlock(&g->mu);
        if (again) {
            atomic_fetch_add(&g->pendings, 1);
            return ASSET_PENDING;
        }
    }
    if (strstr(text, "gpu")) {
        char *gpu = tu_asset_strndup("gpu:", 4);
        if (!gpu) return asset_finalize_fail(f, ASSET_E_NO_MEMORY, "out of memory");
        asset_finalize_set_value(f, gpu, 7);
    }
    return ASSET_OK;
}

/* A source whose reads block until the gate opens (or the read is cancelled); it
 * delivers the path. */
typedef struct ggate {
    uv_mutex_t mu;
    uv_cond_t cond;
    int entered;
    bool open;
} ggate_t;

static asset_status_t ggate_read(void *ctx, asset_request_t *req) {
    ggate_t *g = ctx;
    uv_mutex_lock(&g->mu);
    g->entered++;
    uv_cond_broadcast(&g->cond);
    while (!g->open && !asset_request_cancelled(req)) /* cancel can only be polled */
        (void)uv_cond_timedwait(&g->cond, &g->mu, 1000000);
    bool open = g->open;
    uv_mutex_unlock(&g->mu);
    if (!open) return ASSET_E_CANCELLED;
    const char *path = asset_request_path(req);
    return asset_request_write(req, path, strlen(path));
}

/* Waits (flushing) until the gate saw n reads, or every handle given is done, or the
 * bound passes (then the scenario goes on: the judges catch a hang). */
static void ggate_wait(asset_server_t *s, ggate_t *g, int n, asset_handle_t *a, asset_handle_t *b) {
    uint64_t end = uv_hrtime() + (uint64_t)g_wait_ms * 1000000u;
    uv_mutex_lock(&g->mu);
    while (g->entered < n && uv_hrtime() < end) {
        uv_mutex_unlock(&g->mu);
        asset_server_flush(s);
        bool live = (a && !asset_handle_is_done(a)) || (b && !asset_handle_is_done(b));
        uv_mutex_lock(&g->mu);
        if (!live) break;
        (void)uv_cond_timedwait(&g->cond, &g->mu, 1000000);
    }
    uv_mutex_unlock(&g->mu);
}

static void ggate_open(ggate_t *g) {
    uv_mutex_lock(&g->mu);
    g->open = true;
    uv_cond_broadcast(&g->cond);
    uv_mutex_unlock(&g->mu);
}

static bool verify_text(const void *value, const void *arg) { return value && !strcmp(value, arg); }

static bool verify_prefix(const void *value, const void *arg) {
    return value && !strncmp(value, arg, strlen(arg));
}

/* A dependency failure whose reason was lost: "" or ending in "a dependency failed". */
static bool lost_message(const char *msg) {
    size_t n = strlen(msg), k = strlen(asset_strerror(ASSET_E_DEPENDENCY));
    return n == 0 || (n >= k && !strcmp(msg + n - k, asset_strerror(ASSET_E_DEPENDENCY)));
}

/* judge() for graph loads: also accepts ASSET_E_DEPENDENCY saying "out of memory" once
 * an allocation failed, and wants `must` in the message of an expected failure. */
static bool gjudge(run_t *r, asset_handle_t *h, asset_status_t expect, verify_fn verify,
                   const void *arg, const char *must) {
    if (!h) return injected();
    if (asset_handle_wait(h, g_wait_ms) == ASSET_E_TIMEOUT) {
        snprintf(r->err, sizeof r->err, "%s: HANG: not done after %d ms", asset_handle_uri(h),
                 g_wait_ms);
        return false;
    }
    asset_status_t st = asset_handle_error(h);
    const char *msg = asset_handle_error_message(h);
    if (injected() && st == ASSET_E_DEPENDENCY && strstr(msg, "out of memory")) return true;
    /* known bug: the chain's message could not be allocated and the reason is lost */
    if (!g_strict && injected() && st == ASSET_E_DEPENDENCY && lost_message(msg)) return true;
    if (!judge(r, h, expect, verify, arg)) return false;
    if (st == expect && expect != ASSET_OK && must && !strstr(msg, must) &&
        !(injected() && !msg[0])) { /* the message itself may be what failed */
        snprintf(r->err, sizeof r->err, "%s: message \"%s\" lacks \"%s\"", asset_handle_uri(h), msg,
                 must);
        return false;
    }
    return true;
}

typedef struct gcb {
    run_t *r;
    atomic_int fired;
} gcb_t;

/* For loads left in flight at destroy: may fire before (an injected failure can end
 * them), never during destroy, at most once. */
static void inflight_cb(asset_handle_t *h, void *user) {
    gcb_t *c = user;
    (void)h;
    if (atomic_load(&c->r->destroying)) atomic_fetch_add(&c->r->late_cb, 1);
    atomic_fetch_add(&c->fired, 1);
}

static const char *const g_inflight_uris[3] = {"mem://inflight.g", "mem://inflight.g#y",
                                               "mem://fin.g"};

static void sc_graph(run_t *r) {
    gtl_t gl;
    memset(&gl, 0, sizeof gl);
    gl.flush_thread = uv_thread_self();
    uv_mutex_init(&gl.mu);
    ggate_t gate = {0}, hold = {0};
    uv_mutex_init(&gate.mu);
    uv_cond_init(&gate.cond);
    uv_mutex_init(&hold.mu);
    uv_cond_init(&hold.cond);
    gcb_t cbs[3] = {{r, 0}, {r, 0}, {r, 0}};
    asset_handle_t *top = NULL, *lab_before = NULL, *lab_after = NULL, *p1 = NULL, *p2 = NULL,
                   *fl[3] = {0};
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = create(r, &cfg);
    if (!s) goto done;
    static const char *const g_suf[] = {".g", NULL}, *const n_suf[] = {".n", NULL};
    asset_loader_t g = {.abi = ASSET_LOADER_ABI,
                        .name = "g",
                        .suffixes = g_suf,
                        .parse = gt_parse,
                        .free_value = gt_free,
                        .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                        .finalize = gt_finalize};
    asset_loader_t n = {.abi = 1, .name = "n", .suffixes = n_suf, .parse = gt_parse};
    asset_source_t gs = {ASSET_SOURCE_ABI, "gate", 0, ggate_read, NULL, NULL};
    asset_source_t hs = {ASSET_SOURCE_ABI, "hold", 0, ggate_read, NULL, NULL};
    int rc[4] = {
        asset_server_register_loader(s, &g, &gl, 0), asset_server_register_loader(s, &n, &gl, 0),
        asset_server_register_source(s, &gs, &gate), asset_server_register_source(s, &hs, &hold)};
    if (!all_registered(r, rc, 4)) goto out;
    static const char *const docs[][2] = {
        {"top.g", "dep left.n\ndep right.n\nopt nope.n\nlabel hero\npend 1\ngpu"},
        {"left.n", "dep bottom.g"},
        {"right.n", "dep bottom.g"},
        {"bottom.g", "leaf"},
        {"p1.n", "deps gate://shared gate://only1"},
        {"p2.n", "dep gate://shared"},
        {"inflight.g", "dep hold://x\ndep bottom.g\nlabel y\npend 2"},
        {"fin.g", "pend 1000000"},
    };
    if (!docs_put(r, s, docs, sizeof docs / sizeof *docs)) goto out;
    /* 1. a diamond (top -> left, right -> bottom), an optional missing dependency, a
     * label asked for before the parse and after it, a finalize that returns PENDING
     * once and replaces the value; a cycle of two beside it */
    top = load(r, s, "mem://top.g", NULL);
    lab_before = load(r, s, "mem://top.g#hero", NULL);
    if (!gjudge(r, top, ASSET_OK, verify_text, "gpu:", NULL)) goto out;
    if (!gjudge(r, lab_before, ASSET_OK, verify_text, "hero", NULL)) goto out;
    if (top && asset_handle_error(top) == ASSET_OK) {
        if (asset_handle_dependency_count(top) != 3)
            FAIL("top: %zu dependencies, expected 3", asset_handle_dependency_count(top));
        asset_handle_t *l = asset_handle_dependency(top, 0), *rt = asset_handle_dependency(top, 1);
        asset_handle_t *opt = asset_handle_dependency(top, 2);
        if (asset_handle_state(l) != ASSET_STATE_LOADED ||
            asset_handle_state(rt) != ASSET_STATE_LOADED)
            FAIL("top LOADED with a required dependency not LOADED");
        if (!gjudge(r, opt, ASSET_E_NOT_FOUND, NULL, NULL, "nope.n")) goto out;
        asset_handle_t *b1 = asset_handle_dependency(l, 0), *b2 = asset_handle_dependency(rt, 0);
        /* once, unless an allocation failed: a cache entry that could not be made
         * makes the second sharer read and parse again (a correct, fresh value) */
        if (!b1 || !b2 || (asset_handle_value(b1) != asset_handle_value(b2) && !injected()))
            FAIL("the diamond's bottom was not loaded once");
        if (!verify_text(asset_handle_value(b1), "leaf")) FAIL("bottom: wrong value");
        lab_after = load(r, s, "mem://top.g#hero", NULL);
        if (!gjudge(r, lab_after, ASSET_OK, verify_text, "hero", NULL)) goto out;
    }
    /* 2. cancel one parent while it and another wait for a shared dependency */
    p2 = load(r, s, "mem://p2.n", NULL);
    ggate_wait(s, &gate, 1, p2, NULL);
    p1 = load(r, s, "mem://p1.n", NULL);
    ggate_wait(s, &gate, 2, p1, NULL);
    if (!g_strict && p1) { /* known bug (graph.c step(), see test_job_is_not_freed_while_its_
                            * parse_runs): a cancel while p1's parse runs frees the job under
                            * its worker; until it is fixed, cancel once p1 is parsed */
        uint64_t end = uv_hrtime() + (uint64_t)g_wait_ms * 1000000u;
        uv_mutex_lock(&s->lock);
        while (p1->job && !p1->job->parsed_done && !p1->decided && uv_hrtime() < end) {
            s->waiters++;
            (void)uv_cond_timedwait(&s->done_cond, &s->lock, 1000000);
            s->waiters--;
        }
        uv_mutex_unlock(&s->lock);
    }
    asset_handle_cancel(p1);
    ggate_open(&gate);
    if (!gjudge(r, p1, ASSET_E_CANCELLED, NULL, NULL, NULL)) goto out;
    if (!gjudge(r, p2, ASSET_OK, verify_prefix, "dep gate://shared", NULL)) goto out;
    asset_bytes_t shared = {(const uint8_t *)"shared", 6}; /* the bytes loader's */
    if (p2 && asset_handle_error(p2) == ASSET_OK &&
        !verify_bytes(asset_handle_value(asset_handle_dependency(p2, 0)), &shared))
        FAIL("p2's shared dependency has a wrong value");
    /* every load above is done and flushed: each callback fired once */
    asset_server_flush(s);
    if (atomic_load(&r->cb_fired) != r->cb_connected)
        FAIL("%d callbacks fired for %d connected", atomic_load(&r->cb_fired), r->cb_connected);
    /* 3. destroy with a graph in flight: a parent waiting for a held dependency, its
     * label, and a value whose finalize stays PENDING */
    const char *const *fu = g_inflight_uris;
    int pend0 = atomic_load(&gl.pendings);
    for (int i = 0; i < 3; i++) {
        fl[i] = asset_server_load(s, fu[i], NULL);
        if (!fl[i] && !injected()) FAIL("load(%s) returned NULL with no failed allocation", fu[i]);
        if (fl[i]) (void)asset_handle_on_completed(fl[i], inflight_cb, &cbs[i]);
    }
    ggate_wait(s, &hold, 1, fl[0], NULL);
    /* fin.g reaches the finalize queue and answers PENDING at least once (bounded) */
    uint64_t end = uv_hrtime() + (uint64_t)g_wait_ms * 1000000u;
    while (fl[2] && atomic_load(&gl.pendings) == pend0 && !asset_handle_is_done(fl[2]) &&
           uv_hrtime() < end) {
        uv_mutex_lock(&s->lock); /* until the finalize queue has work, then a flush runs it */
        while (!s->fin_head && !s->q_head && uv_hrtime() < end) {
            s->waiters++;
            (void)uv_cond_timedwait(&s->done_cond, &s->lock, 1000000);
            s->waiters--;
        }
        uv_mutex_unlock(&s->lock);
        asset_server_flush(s);
    }
    asset_handle_release(fl[1]); /* released or not, destroy frees it */
    fl[1] = NULL;
out:
    asset_handle_release(top);
    asset_handle_release(lab_before);
    asset_handle_release(lab_after);
    asset_handle_release(p1);
    asset_handle_release(p2);
    ggate_open(&gate); /* a failed run may have left it shut */
    destroy(r, s);
    for (int i = 0; i < 3; i++)
        if (atomic_load(&cbs[i].fired) > 1 && !r->err[0])
            snprintf(r->err, sizeof r->err, "%s: callback fired %d times", g_inflight_uris[i],
                     atomic_load(&cbs[i].fired));
    /* known bug (job.c parse_and_finish): a value whose record cannot be allocated is
     * freed on the worker */
    if (atomic_load(&gl.frees_off_flush_thread) && !r->err[0] && (g_strict || !injected()))
        snprintf(r->err, sizeof r->err, "%d FREE_ON_FLUSH_THREAD value(s) freed on another thread",
                 atomic_load(&gl.frees_off_flush_thread));
done:
    uv_mutex_destroy(&gl.mu);
    uv_cond_destroy(&gate.cond);
    uv_mutex_destroy(&gate.mu);
    uv_cond_destroy(&hold.cond);
    uv_mutex_destroy(&hold.mu);
}

/* A cycle of two (a known bug hangs it: see g_scenarios); an optional edge on a label of
 * the parse's own asset by another spelling of its URI (a cycle: that edge fails alone,
 * never LOADED, which would be a value holding itself), and one dependency declared three
 * times (one load; each edge LOADED with it). */
static void sc_graph_cycle(run_t *r) {
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = create(r, &cfg);
    if (!s) return;
    asset_handle_t *cyc = NULL, *ok = NULL, *sl = NULL, *dup = NULL;
    static const char *const n_suf[] = {".n", NULL};
    asset_loader_t n = {.abi = 1, .name = "n", .suffixes = n_suf, .parse = gt_parse};
    int rc = asset_server_register_loader(s, &n, NULL, 0);
    if (rc != ASSET_OK) {
        if (!(rc == ASSET_E_NO_MEMORY && injected())) FAIL("register: %s", asset_err_name(rc));
        goto out;
    }
    if (asset_mem_put(s, "ca.n", "dep cb.n", 8) || asset_mem_put(s, "cb.n", "dep ca.n", 8) ||
        asset_mem_put(s, "ok.n", "dep cb.n", 8)) {
        if (injected()) goto out;
        FAIL("mem_put failed with no failed allocation");
    }
    cyc = load(r, s, "mem://ca.n", NULL);
    ok = load(r, s, "mem://ok.n", NULL); /* depends on the cycle from outside */
    if (!gjudge(r, cyc, ASSET_E_DEPENDENCY, NULL, NULL, "dependency cycle")) goto out;
    if (!gjudge(r, ok, ASSET_E_DEPENDENCY, NULL, NULL, "dependency")) goto out;
    static const char sl_text[] = "label z\nopt ./sl.n#z",
                      dup_text[] = "dep lf.n\ndeps lf.n ./lf.n";
    if (asset_mem_put(s, "sl.n", sl_text, sizeof sl_text - 1) ||
        asset_mem_put(s, "dup.n", dup_text, sizeof dup_text - 1) ||
        asset_mem_put(s, "lf.n", "leaf", 4)) {
        if (injected()) goto out;
        FAIL("mem_put failed with no failed allocation");
    }
    sl = load(r, s, "mem://sl.n", NULL);
    dup = load(r, s, "mem://dup.n", NULL);
    if (!gjudge(r, sl, ASSET_OK, verify_text, sl_text, NULL)) goto out;
    if (!gjudge(r, dup, ASSET_OK, verify_text, dup_text, NULL)) goto out;
    if (sl && asset_handle_error(sl) == ASSET_OK) {
        asset_handle_t *z = asset_handle_dependency(sl, 0);
        if (asset_handle_dependency_count(sl) != 1 || asset_handle_state(z) != ASSET_STATE_FAILED)
            FAIL("sl.n: its edge on its own label is not one FAILED dependency");
        const char *m = asset_handle_error_message(z);
        if (!strstr(m, "dependency cycle") &&
            !(injected() && (!m[0] || strstr(m, "out of memory"))))
            FAIL("sl.n#z: \"%s\" names no cycle", m);
    }
    if (dup && asset_handle_error(dup) == ASSET_OK) {
        if (asset_handle_dependency_count(dup) != 3)
            FAIL("dup.n: %zu dependencies, expected 3", asset_handle_dependency_count(dup));
        for (size_t i = 0; i < asset_handle_dependency_count(dup); i++)
            if (!verify_text(asset_handle_value(asset_handle_dependency(dup, i)), "leaf"))
                FAIL("dup.n: dependency %zu is not LOADED with its value", i);
    }
out:
    asset_handle_release(cyc);
    asset_handle_release(ok);
    asset_handle_release(sl);
    asset_handle_release(dup);
    destroy(r, s);
}

/* ---- hot reload (issue 12) ---- */

typedef struct reload_rec {
    run_t *r;
    int fired, bad;
    char why[160];
    bool dep_missing; /* a reload may fail for a dependency not there yet (greload_cb) */
} reload_rec_t;

static void reload_cb(asset_handle_t *h, void *user) {
    reload_rec_t *x = user;
    x->fired++;
    asset_status_t e = asset_handle_reload_error(h);
    const char *why = NULL;
    if (atomic_load(&x->r->destroying))
        why = "a reload callback fired during destroy";
    else if (asset_handle_state(h) != ASSET_STATE_LOADED || !asset_handle_value(h))
        why = "a reloaded handle is not LOADED with a value";
    else if (e != ASSET_OK && e != ASSET_E_NO_MEMORY && e != ASSET_E_NOT_FOUND)
        why = asset_err_name(e);
    else if (e == ASSET_OK && asset_handle_version(h) < 2)
        why = "reloaded without a new version";
    if (why && !x->bad++) snprintf(x->why, sizeof x->why, "%s", why);
}

/* One flush; with nothing left to deliver, a nap of at most 2 ms until a completion
 * wakes it (the loops below wait for reloads and poll ticks so, bounded by their own ends). */
static void flush_or_nap(asset_server_t *s) {
    asset_server_flush(s);
    uv_mutex_lock(&s->lock);
    if (!s->q_head) {
        s->waiters++;
        (void)uv_cond_timedwait(&s->done_cond, &s->lock, 2000000);
        s->waiters--;
    }
    uv_mutex_unlock(&s->lock);
}

/* Flushes until rec fired `n` times; false when it did not within the wait (allowed only
 * once an allocation failed, unless `must`: the request of a mem:// change may have
 * found no memory). A reload that `must` be heard waits the whole g_wait_ms. */
static bool wait_reloads(asset_server_t *s, reload_rec_t *x, int n, bool must) {
    /* once an allocation failed the request may be gone for good: a mem:// reload takes
     * microseconds, so a shorter wait is plenty (a hang without injection still shows).
     * The failure may come during the wait, on another thread (the reload's own job):
     * the shorter wait then starts from there. Seen under valgrind in CI: a forced
     * reload lost to a worker's failed allocation waited out the whole g_wait_ms, and
     * the point was killed as a hang. */
    const uint64_t short_ns = (uint64_t)(RUNNING_ON_VALGRIND ? 5000 : 300) * 1000000u;
    bool was_injected = injected() && !must;
    uint64_t end = uv_hrtime() + (was_injected ? short_ns : (uint64_t)g_wait_ms * 1000000u);
    while (x->fired < n && uv_hrtime() < end) {
        if (!was_injected && !must && injected()) {
            was_injected = true;
            uint64_t soon = uv_hrtime() + short_ns;
            if (soon < end) end = soon;
        }
        flush_or_nap(s);
    }
    return x->fired >= n;
}

/* With watch: a mem:// key replaced (reload), removed (a failed reload that keeps the
 * value), a forced asset_server_reload of a file (its directory gets watched), and
 * destroy with a reload pending. Each reload either switches to the right value or keeps
 * the old one with its reason; callbacks never fire during destroy. */
static void sc_reload(run_t *r) {
    asset_server_config_t cfg = {.watch = true, .reload_debounce_ms = 1};
    asset_server_t *s = create(r, &cfg);
    if (!s) return;
    reload_rec_t x = {.r = r}, xf = {.r = r};
    asset_handle_t *h = NULL, *f = NULL;
    char *a = fixture_uri("a.bin");
    int rc = asset_mem_put(s, "k.txt", "v1", 2);
    if (rc != ASSET_OK) {
        if (!(rc == ASSET_E_NO_MEMORY && injected())) FAIL("mem_put: %s", asset_err_name(rc));
        goto out;
    }
    h = load(r, s, "mem://k.txt", NULL);
    f = load(r, s, a, NULL);
    asset_bytes_t v1 = {(const uint8_t *)"v1", 2}, v2 = {(const uint8_t *)"v2", 2};
    asset_bytes_t big = want_big(sizeof g_big);
    if (!wait_judge(r, h, ASSET_OK, verify_bytes, &v1)) goto out;
    if (!wait_judge(r, f, ASSET_OK, verify_bytes, &big)) goto out;
    if (!h || asset_handle_error(h) != ASSET_OK) goto out; /* out of memory: nothing to reload */
    if (!asset_handle_on_reloaded(h, reload_cb, &x)) {
        if (!injected()) FAIL("on_reloaded returned 0 with no failed allocation");
        goto out;
    }
    bool f_heard = f && asset_handle_error(f) == ASSET_OK; /* reloaded callbacks connected */
    if (f_heard && !asset_handle_on_reloaded(f, reload_cb, &xf)) {
        f_heard = false;
        if (!injected()) FAIL("on_reloaded returned 0 with no failed allocation");
    }
    /* 1. replaced */
    rc = asset_mem_put(s, "k.txt", "v2", 2);
    if (rc == ASSET_OK && !wait_reloads(s, &x, 1, false) && !injected())
        FAIL("no reload after a put");
    const asset_bytes_t *now = asset_handle_value(h);
    bool is_v2 = now && verify_bytes(now, &v2);
    if (!is_v2 && !(now && verify_bytes(now, &v1))) FAIL("reloaded to a wrong value");
    if (!is_v2 && x.fired && asset_handle_reload_error(h) == ASSET_OK)
        FAIL("a reload said OK but kept the old value");
    /* 2. forced, on a watched file: heard even when an allocation fails on the way (the
     * request, the reload's load, a reload queued again): a callback with NO_MEMORY */
    if (f_heard) {
        asset_server_reload(s, a);
        if (!wait_reloads(s, &xf, 1, true)) FAIL("no reloaded callback after asset_server_reload");
        if (!verify_bytes(asset_handle_value(f), &big)) FAIL("a forced reload changed the bytes");
    }
    /* 3. removed: the value stays */
    int before = x.fired;
    if (asset_mem_remove(s, "k.txt") == ASSET_OK && !wait_reloads(s, &x, before + 1, false) &&
        !injected())
        FAIL("no failed reload after a remove");
    if (!asset_handle_value(h)) FAIL("a failed reload lost the value");
    /* 4. destroy with a reload pending */
    asset_mem_put(s, "k.txt", "v3", 2);
    if (x.bad) FAIL("%s", x.why);
    if (xf.bad) FAIL("%s", xf.why);
out:
    asset_handle_release(h);
    asset_handle_release(f);
    destroy(r, s);
    if (x.bad + xf.bad && !r->err[0]) /* after destroy: not FAIL, which jumps back */
        snprintf(r->err, sizeof r->err, "%s", x.bad ? x.why : xf.why);
    free(a);
}

/* A graph's reload callback: a reload either switches to a value (LOADED, a new version)
 * or keeps the old one with its reason: out of memory (NO_MEMORY, or a dependency's
 * failure naming it), or, for a label, NOT_FOUND. */
static void greload_cb(asset_handle_t *h, void *user) {
    reload_rec_t *x = user;
    x->fired++;
    asset_status_t e = asset_handle_reload_error(h);
    const char *why = NULL;
    if (atomic_load(&x->r->destroying))
        why = "a reload callback fired during destroy";
    else if (asset_handle_state(h) != ASSET_STATE_LOADED || !asset_handle_value(h))
        why = "a reloaded handle is not LOADED with a value";
    else if (e == ASSET_E_DEPENDENCY && strstr(asset_handle_error_message(h), "out of memory"))
        why = NULL;
    else if (e == ASSET_E_DEPENDENCY && x->dep_missing)
        why = NULL;
    else if (e != ASSET_OK && e != ASSET_E_NO_MEMORY && e != ASSET_E_NOT_FOUND)
        why = asset_handle_error_message(h);
    else if (e == ASSET_OK && asset_handle_version(h) < 2)
        why = "reloaded without a new version";
    if (why && !x->bad++) snprintf(x->why, sizeof x->why, "%s: %s", asset_handle_uri(h), why);
}

/* The text of h's dependency i ("" when it has none or no value). */
static const char *dep_text(asset_handle_t *h, size_t i) {
    const char *v = asset_handle_value(asset_handle_dependency(h, i));
    return v ? v : "";
}

/* Hot reload along the graph (watch, mem://): a changed dependency re-parses (and
 * re-finalizes) the live parents built on it (src/dependents.c's lists, reload.c's
 * queue_dependents) and drops a released parent built on it from its cache
 * (drop_cached_dependents); a labeled handle reloads with its asset, and fails, keeping
 * its value, when the new version lacks its label; destroy with a dependency's reload
 * in flight. Without a failed allocation every value is checked. */
static void sc_reload_graph(run_t *r) {
    gtl_t gl;
    memset(&gl, 0, sizeof gl);
    gl.flush_thread = uv_thread_self();
    uv_mutex_init(&gl.mu);
    reload_rec_t xt = {.r = r}, xl = {.r = r}, xa = {.r = r}, xm = {.r = r};
    asset_handle_t *tex = NULL, *lvl = NULL, *lab = NULL, *mat = NULL, *cached = NULL;
    reload_rec_t *xs[4] = {&xt, &xl, &xa, &xm}; /* before the first goto: out reads them */
    asset_server_config_t cfg = {.max_workers = 2, .watch = true, .reload_debounce_ms = 1};
    asset_server_t *s = create(r, &cfg);
    if (!s) goto done;
    static const char *const g_suf[] = {".g", NULL}, *const n_suf[] = {".n", NULL};
    asset_loader_t g = {.abi = ASSET_LOADER_ABI,
                        .name = "g",
                        .suffixes = g_suf,
                        .parse = gt_parse,
                        .free_value = gt_free,
                        .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                        .finalize = gt_finalize};
    asset_loader_t n = {.abi = 1, .name = "n", .suffixes = n_suf, .parse = gt_parse};
    int rc[2] = {asset_server_register_loader(s, &g, &gl, 0),
                 asset_server_register_loader(s, &n, &gl, 0)};
    if (!all_registered(r, rc, 2)) goto out;
    static const char *const docs[][2] = {
        {"tex.g", "t1"},
        {"lvl.n", "dep tex.g\nlabel a"},
        {"mat.g", "dep tex.g\npend 1\ngpu"},
        {"cached.n", "dep tex.g"},
    };
    if (!docs_put(r, s, docs, sizeof docs / sizeof *docs)) goto out;
    tex = load(r, s, "mem://tex.g", NULL);
    lvl = load(r, s, "mem://lvl.n", NULL);
    lab = load(r, s, "mem://lvl.n#a", NULL);
    mat = load(r, s, "mem://mat.g", NULL);
    cached = load(r, s, "mem://cached.n", NULL);
    if (!gjudge(r, tex, ASSET_OK, verify_text, "t1", NULL)) goto out;
    if (!gjudge(r, lvl, ASSET_OK, verify_prefix, "dep tex.g", NULL)) goto out;
    if (!gjudge(r, lab, ASSET_OK, verify_text, "a", NULL)) goto out;
    if (!gjudge(r, mat, ASSET_OK, verify_text, "gpu:", NULL)) goto out;
    if (!gjudge(r, cached, ASSET_OK, verify_text, "dep tex.g", NULL)) goto out;
    asset_handle_release(cached); /* cached, built on tex */
    cached = NULL;
    asset_handle_t *hs[4] = {tex, lvl, lab, mat};
    for (int i = 0; i < 4; i++) {
        if (!hs[i] || asset_handle_error(hs[i]) != ASSET_OK) goto out; /* nothing to reload */
        if (!asset_handle_on_reloaded(hs[i], greload_cb, xs[i])) {
            if (!injected()) FAIL("on_reloaded returned 0 with no failed allocation");
            goto out;
        }
    }
    /* 1. the dependency changes: it reloads, and so do its parents and the label */
    if (asset_mem_put(s, "tex.g", "t2", 2) == ASSET_OK) {
        bool heard = wait_reloads(s, &xt, 1, false) && wait_reloads(s, &xl, 1, false) &&
                     wait_reloads(s, &xa, 1, false) && wait_reloads(s, &xm, 1, false);
        if (!injected()) {
            if (!heard) FAIL("a dependency's change did not reload its parents and label");
            if (!verify_text(asset_handle_value(tex), "t2")) FAIL("tex: not reloaded");
            if (strcmp(dep_text(lvl, 0), "t2") || strcmp(dep_text(mat, 0), "t2"))
                FAIL("a parent reloaded on the old dependency (%s, %s)", dep_text(lvl, 0),
                     dep_text(mat, 0));
            if (!verify_text(asset_handle_value(mat), "gpu:")) FAIL("mat: not finalized again");
        }
    }
    /* 2. the released parent left its cache: loaded again, it is built on the new one */
    cached = load(r, s, "mem://cached.n", NULL);
    if (!gjudge(r, cached, ASSET_OK, verify_text, "dep tex.g", NULL)) goto out;
    if (!injected() && strcmp(dep_text(cached, 0), "t2"))
        FAIL("a cached parent kept the old dependency (%s)", dep_text(cached, 0));
    /* 3. the parent loses its label: the labeled handle keeps its value, NOT_FOUND */
    int fired = xa.fired;
    if (asset_mem_put(s, "lvl.n", "dep tex.g", 9) == ASSET_OK) {
        bool heard = wait_reloads(s, &xa, fired + 1, false);
        if (!injected()) {
            if (!heard) FAIL("a label's asset changed and the label heard nothing");
            if (asset_handle_reload_error(lab) != ASSET_E_NOT_FOUND)
                FAIL("a label gone from the new version: %s",
                     asset_err_name(asset_handle_reload_error(lab)));
        }
        if (!verify_text(asset_handle_value(lab), "a"))
            FAIL("a failed label reload lost its value");
    }
    /* 4. the parent made to depend on a key not there yet: its reload fails and keeps
     * its value; the key's put reloads it (src/awaited.c), built on it */
    xl.dep_missing = xa.dep_missing = true; /* the label reloads with its asset */
    fired = xl.fired;
    if (asset_mem_put(s, "lvl.n", "dep tex.g\ndep new.g", 19) == ASSET_OK) {
        bool heard = wait_reloads(s, &xl, fired + 1, false);
        if (!injected() && !heard) FAIL("a parent's reload on a missing dependency was not heard");
        if (!asset_handle_value(lvl)) FAIL("a failed reload lost the value");
        fired = xl.fired;
        if (asset_mem_put(s, "new.g", "n1", 2) == ASSET_OK) {
            heard = wait_reloads(s, &xl, fired + 1, false);
            if (!injected()) {
                if (!heard) FAIL("a dependency put once missing did not reload its parent");
                if (strcmp(dep_text(lvl, 1), "n1"))
                    FAIL("the parent reloaded without the new dependency (%s)", dep_text(lvl, 1));
            }
        }
    }
    /* 5. destroy with the dependency's reload (and its parents') in flight */
    asset_mem_put(s, "tex.g", "t3", 2);
    for (int i = 0; i < 4; i++)
        if (xs[i]->bad) FAIL("%s", xs[i]->why);
out:
    asset_handle_release(tex);
    asset_handle_release(lvl);
    asset_handle_release(lab);
    asset_handle_release(mat);
    asset_handle_release(cached);
    destroy(r, s);
    for (int i = 0; i < 4 && !r->err[0]; i++) /* after destroy: not FAIL, which jumps back */
        if (xs[i]->bad) snprintf(r->err, sizeof r->err, "%s", xs[i]->why);
    if (atomic_load(&gl.frees_off_flush_thread) && !r->err[0])
        snprintf(r->err, sizeof r->err, "%d FREE_ON_FLUSH_THREAD value(s) freed on another thread",
                 atomic_load(&gl.frees_off_flush_thread));
done:
    uv_mutex_destroy(&gl.mu);
}

/* A label held alone (lvl.g#a) outlives its whole value, which left its cache (a budget
 * of a byte): at that free the label takes a copy of the dependencies (src/dependents.c,
 * asset__dependents_leave), so that their change reloads it; out of memory it shares
 * them, counted unknown. Either way it is heard, nothing leaks, no count goes wrong. */
static void sc_reload_label_alone(run_t *r) {
    gtl_t gl;
    memset(&gl, 0, sizeof gl);
    gl.flush_thread = uv_thread_self();
    uv_mutex_init(&gl.mu);
    reload_rec_t xa = {.r = r, .dep_missing = true};
    asset_handle_t *lab = NULL;
    asset_server_config_t cfg = {.max_workers = 2, .watch = true, .reload_debounce_ms = 1};
    asset_server_t *s = create(r, &cfg);
    if (!s) goto done;
    static const char *const g_suf[] = {".g", NULL};
    asset_loader_t g = {.abi = ASSET_LOADER_ABI,
                        .name = "g",
                        .suffixes = g_suf,
                        .parse = gt_parse,
                        .free_value = gt_free,
                        .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD};
    int rc[1] = {asset_server_register_loader(s, &g, &gl, 0)};
    if (!all_registered(r, rc, 1)) goto out;
    static const char *const docs[][2] = {{"tex.g", "t1"}, {"lvl.g", "dep tex.g\nlabel a"}};
    if (!docs_put(r, s, docs, sizeof docs / sizeof *docs)) goto out;
    lab = load(r, s, "mem://lvl.g#a", NULL);
    if (!gjudge(r, lab, ASSET_OK, verify_text, "a", NULL)) goto out;
    if (!lab || asset_handle_error(lab) != ASSET_OK) goto out;
    if (!asset_handle_on_reloaded(lab, greload_cb, &xa)) {
        if (!injected()) FAIL("on_reloaded returned 0 with no failed allocation");
        goto out;
    }
    asset_server_set_cache_budget(s, "g", 1); /* the whole value goes; the label stays */
    asset_server_set_cache_budget(s, "g", 0);
    asset_server_flush(s);
    if (asset_mem_put(s, "tex.g", "t2", 2) == ASSET_OK) {
        bool heard = wait_reloads(s, &xa, 1, false);
        if (!injected() && !heard) FAIL("a label held alone missed its dependency's change");
        if (!verify_text(asset_handle_value(lab), "a")) FAIL("the label lost its value");
    }
    if (xa.bad) FAIL("%s", xa.why);
out:
    asset_handle_release(lab);
    destroy(r, s);
    if (!r->err[0] && xa.bad) snprintf(r->err, sizeof r->err, "%s", xa.why);
    if (atomic_load(&gl.frees_off_flush_thread) && !r->err[0])
        snprintf(r->err, sizeof r->err, "%d FREE_ON_FLUSH_THREAD value(s) freed on another thread",
                 atomic_load(&gl.frees_off_flush_thread));
done:
    uv_mutex_destroy(&gl.mu);
}

/* Zero-copy (config.map_threshold): files served as mappings, lent to the request and
 * kept by the bytes loader's value, read in place by the json loader; a file:// load
 * that opts in, and an embedded file served from its table. */
static void sc_mapped(run_t *r) {
    asset_server_config_t cfg = {0};
    cfg.map_threshold = 16; /* the fixtures are small: map them all */
    asset_server_t *s = create(r, &cfg);
    if (!s) return;
    asset_handle_t *h1 = NULL, *h2 = NULL, *h3 = NULL, *h4 = NULL, *h5 = NULL;
    char *a = fixture_uri("a.bin");
    static const char ejson[] = "{\"name\": \"hero\", \"speed\": 42, \"tags\": [\"a\", \"b\"]}";
    static const asset_embedded_file_t table[] = {{"e.json", ejson, sizeof ejson - 1}};
    int rc = asset_server_mount(s, "fx", g_dir);
    if (rc != ASSET_OK && !(rc == ASSET_E_NO_MEMORY && injected()))
        FAIL("mount: %s", asset_err_name(rc));
    int rc2 = asset_server_mount_embedded(s, "emb", table, 1);
    if (rc2 != ASSET_OK && !(rc2 == ASSET_E_NO_MEMORY && injected()))
        FAIL("mount_embedded: %s", asset_err_name(rc2));
    asset_load_options_t opt = {.map_file = true, .no_cache = true};
    h1 = load(r, s, "pkg://fx/a.bin", NULL);
    h2 = load(r, s, "pkg://fx/b.json", NULL);
    h3 = load(r, s, a, &opt);
    h4 = load(r, s, "pkg://emb/e.json", NULL);
    asset_load_options_t raw = {.loader = "bytes"};
    h5 = load(r, s, "pkg://emb/e.json", &raw);
    asset_bytes_t want = want_big(sizeof g_big);
    asset_bytes_t want_json = {(const uint8_t *)table[0].data, table[0].size};
    asset_status_t nf = rc == ASSET_OK ? ASSET_OK : ASSET_E_NOT_FOUND;
    asset_status_t nf2 = rc2 == ASSET_OK ? ASSET_OK : ASSET_E_NOT_FOUND;
    if (!wait_judge(r, h1, nf, verify_bytes, &want)) goto out;
    if (!wait_judge(r, h2, nf, verify_json, NULL)) goto out;
    if (!wait_judge(r, h3, ASSET_OK, verify_bytes, &want)) goto out;
    if (!wait_judge(r, h4, nf2, verify_json, NULL)) goto out;
    if (!wait_judge(r, h5, nf2, verify_bytes, &want_json)) goto out;
    /* the cached mapping, again */
    asset_handle_release(h1);
    h1 = load(r, s, "pkg://fx/a.bin", NULL);
    if (!wait_judge(r, h1, nf, verify_bytes, &want)) goto out;
out:
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(h4);
    asset_handle_release(h5);
    destroy(r, s);
    free(a);
}

/* Background tasks, the trace recorder and introspection: tasks that set a value, fail,
 * and hold a handle their free_arg releases; every walk, and the recorder written out.
 * Each task that got a handle has its free_arg called exactly once by destroy's end; one
 * that got none (NULL) never. */
typedef struct spawn_arg {
    atomic_int *freed;
    asset_handle_t *hold; /* released by free_arg */
} spawn_arg_t;

static void spawn_free_arg(void *p) {
    spawn_arg_t *a = p;
    atomic_fetch_add(a->freed, 1);
    asset_handle_release(a->hold);
    a->hold = NULL;
}

static asset_status_t task_ok(asset_task_t *t, void *arg) {
    (void)arg;
    char *v = asset_alloc(6);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "value");
    memcpy(v, "hello", 6);
    asset_task_set_value(t, v, 6, NULL, NULL);
    return ASSET_OK;
}

static asset_status_t task_bad(asset_task_t *t, void *arg) {
    (void)arg;
    return asset_task_fail(t, ASSET_E_NOT_FOUND, "nothing %s", "here");
}

/* spawns task_ok from inside a task and waits for it (run by this worker) */
static asset_status_t task_nested(asset_task_t *t, void *arg) {
    asset_server_t *s = arg;
    asset_handle_t *h = asset_server_spawn(s, task_ok, NULL, NULL, NULL);
    if (!h) return asset_task_fail(t, ASSET_E_NO_MEMORY, "spawn");
    asset_status_t st = asset_handle_wait(h, 15000);
    const char *v = asset_handle_value(h);
    char *copy = v ? asset_alloc(6) : NULL;
    if (copy) memcpy(copy, v, 6);
    asset_handle_release(h);
    if (st != ASSET_OK) return asset_task_fail(t, st, "inner");
    if (!copy) return asset_task_fail(t, ASSET_E_NO_MEMORY, "copy");
    asset_task_set_value(t, copy, 6, NULL, NULL);
    return ASSET_OK;
}

static bool walk_job(const asset_job_info_t *i, void *user) {
    (void)user;
    return i->uri && i->loader && i->state;
}
static bool walk_cached(const asset_cache_info_t *i, void *user) {
    (void)user;
    return i->uri && i->loader;
}
static bool walk_loader(const asset_loader_info_t *i, void *user) {
    (void)user;
    return i->name != NULL;
}

static bool verify_hello(const void *value, const void *arg) {
    (void)arg;
    return value && !strcmp(value, "hello");
}

static void sc_spawn(run_t *r) {
    asset_trace_t *tr = asset_trace_create();
    if (!tr && !injected()) {
        snprintf(r->err, sizeof r->err, "trace_create returned NULL with no failed allocation");
        return;
    }
    asset_server_config_t cfg = {.trace = tr ? asset_trace_record : NULL, .trace_user = tr};
    asset_server_t *s = create(r, &cfg);
    atomic_int freed = 0;
    int spawned = 0;
    spawn_arg_t args[3] = {{&freed, NULL}, {&freed, NULL}, {&freed, NULL}};
    asset_handle_t *hs[6] = {0};
    char *path = NULL;
    if (!s) goto done;
    int put = asset_mem_put(s, "m.json", g_json_text, strlen(g_json_text));
    hs[3] = load(r, s, "mem://m.json", NULL);
    args[2].hold = hs[3] ? asset_handle_retain(hs[3]) : NULL;
    asset_task_fn fns[3] = {task_ok, task_bad, task_ok};
    for (int i = 0; i < 3; i++) {
        hs[i] = asset_server_spawn(s, fns[i], &args[i], spawn_free_arg, NULL);
        if (!hs[i]) {
            if (!injected()) FAIL("spawn returned NULL with no failed allocation");
            if (i == 2) asset_handle_release(args[2].hold); /* still ours */
            args[i].hold = NULL;
            continue;
        }
        spawned++;
        if (asset_handle_on_completed(hs[i], count_cb, r))
            r->cb_connected++;
        else if (!injected())
            FAIL("on_completed(task) returned 0 with no failed allocation");
    }
    (void)asset_server_foreach_job(s, walk_job, NULL);
    asset_load_options_t lo = {.priority = ASSET_PRIORITY_LOW, .timeout_ms = 60000, .tag = "x"};
    hs[4] = asset_server_spawn(s, task_nested, s, NULL, &lo);
    hs[5] = asset_server_spawn(s, task_ok, NULL, NULL, &lo);
    if ((!hs[4] || !hs[5]) && !injected()) FAIL("spawn returned NULL with no failed allocation");
    asset_handle_cancel(hs[5]);
    if (!wait_judge(r, hs[4], ASSET_OK, verify_hello, NULL)) goto out;
    if (hs[5]) {
        asset_status_t c = asset_handle_wait(hs[5], g_wait_ms);
        if (c != ASSET_E_CANCELLED && c != ASSET_OK && !(c == ASSET_E_NO_MEMORY && injected()))
            FAIL("cancelled task: %s", asset_err_name(c));
    }
    if (!wait_judge(r, hs[0], ASSET_OK, verify_hello, NULL)) goto out;
    if (!wait_judge(r, hs[1], ASSET_E_NOT_FOUND, NULL, NULL)) goto out;
    if (!wait_judge(r, hs[2], ASSET_OK, verify_hello, NULL)) goto out;
    if (!wait_judge(r, hs[3], put == ASSET_OK ? ASSET_OK : ASSET_E_NOT_FOUND, verify_json, NULL))
        goto out;
    (void)asset_server_foreach_job(s, walk_job, NULL);
    (void)asset_server_foreach_cached(s, walk_cached, NULL);
    (void)asset_server_foreach_loader(s, walk_loader, NULL);
    asset_server_set_trace(s, NULL, NULL);
    path = tu_path(g_dir, "trace_out.json");
    asset_status_t w = tr ? asset_trace_write_chrome_json(tr, path) : ASSET_OK;
    if (w != ASSET_OK && !(w == ASSET_E_NO_MEMORY && injected()))
        FAIL("trace_write_chrome_json: %s", asset_err_name(w));
out:
    for (int i = 0; i < 6; i++) asset_handle_release(hs[i]);
    destroy(r, s);
    if (!r->err[0] && atomic_load(&freed) != spawned)
        snprintf(r->err, sizeof r->err, "%d free_arg calls for %d tasks spawned",
                 atomic_load(&freed), spawned);
done:
    asset_trace_destroy(tr);
    free(path);
}

/* A ring of waits and bursts that shrink: mem://wa.wr's parse loads mem://wb.wr and waits
 * for it while wb's parse, on the other worker (or run by that wait), waits for wa: the
 * wait that closes the ring looks through s->awaits (its stack may be what fails) and
 * is refused (BUSY, or NO_MEMORY out of memory: either side may be the one), the other
 * gets its result; both load (their values "a" and "b") unless memory ran out; wb's parse
 * starts its wait once wa's is listed or wa's parse is over (never a sleep of its own).
 * Then 24 loads of one URI with callbacks on a watching server (the URI index is on):
 * the callback index and the URI's array of handles grow, and shrink as they fire and
 * go, all but one; that one still loads. */
typedef struct wring {
    asset_server_t *s;
    atomic_bool a_over;    /* wa's parse returned, or its load is done */
    atomic_bool b_started; /* wb's parse runs (on a worker: wa is loaded after) */
    atomic_int hang;       /* a wait in a parse that ran out (HANG) */
} wring_t;

static bool wr_listed(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    bool listed = s->awaits != NULL;
    uv_mutex_unlock(&s->lock);
    return listed;
}

static asset_status_t wr_parse(void *ctx, asset_parse_t *p) {
    wring_t *w = ctx;
    bool b = asset_parse_data(p)[0] == 'b';
    if (b) atomic_store(&w->b_started, true);
    if (b) /* bounded: wa's parse lists itself or returns; its load ends either way */
        TU_SPIN_UNTIL(atomic_load(&w->a_over) || wr_listed(w->s));
    asset_handle_t *h = asset_server_load(w->s, b ? "mem://wa.wr" : "mem://wb.wr", NULL);
    asset_status_t rc = h ? asset_handle_wait(h, g_wait_ms) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
    if (!b) atomic_store(&w->a_over, true);
    if (rc == ASSET_E_TIMEOUT) atomic_fetch_add(&w->hang, 1);
    if (rc == ASSET_E_NO_MEMORY) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    if (rc != ASSET_E_BUSY && rc != ASSET_OK) /* BUSY: its wait closed the ring */
        return asset_parse_fail(p, ASSET_E_PARSE, "waited: %s", asset_err_name(rc));
    char *v = tu_asset_strndup(b ? "b" : "a", 1);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

static void wr_free(void *ctx, void *value) {
    (void)ctx;
    asset_free(value);
}

static bool verify_wr(const void *value, const void *arg) { return value && !strcmp(value, arg); }

static void sc_waitring(run_t *r) {
    asset_server_config_t cfg = {.max_workers = 2, .watch = true};
    asset_server_t *s = create(r, &cfg);
    wring_t w = {.s = s};
    enum { BURST = 24 };
    asset_handle_t *ha = NULL, *hb = NULL, *hs[BURST] = {0};
    if (!s) return;
    static const char *const suf[] = {".wr", NULL};
    asset_loader_t wr = {.abi = ASSET_LOADER_ABI,
                         .name = "wr",
                         .suffixes = suf,
                         .parse = wr_parse,
                         .free_value = wr_free};
    if (asset_server_register_loader(s, &wr, &w, 0) != ASSET_OK ||
        asset_mem_put(s, "wa.wr", "a", 1) != ASSET_OK ||
        asset_mem_put(s, "wb.wr", "b", 1) != ASSET_OK ||
        asset_mem_put(s, "m.json", g_json_text, strlen(g_json_text)) != ASSET_OK) {
        if (!injected()) FAIL("setup failed with no failed allocation");
        goto out;
    }
    hb = load(r, s, "mem://wb.wr", NULL);
    /* wb's parse on a worker first, or wa's wait would run it on its own thread */
    TU_FLUSH_UNTIL(s, !hb || atomic_load(&w.b_started) || asset_handle_is_done(hb));
    ha = load(r, s, "mem://wa.wr", NULL);
    if (!ha) atomic_store(&w.a_over, true);
    if (ha && asset_handle_wait(ha, g_wait_ms) == ASSET_E_TIMEOUT) FAIL("wa: HANG");
    atomic_store(&w.a_over, true); /* its parse may never have run (its read failed) */
    if (!wait_judge(r, ha, ASSET_OK, verify_wr, "a")) goto out;
    if (!wait_judge(r, hb, ASSET_OK, verify_wr, "b")) goto out;
    if (atomic_load(&w.hang)) FAIL("a wait inside a parse ran out (HANG)");
    for (int i = 0; i < BURST; i++) hs[i] = load(r, s, "mem://m.json", NULL);
    for (int i = 0; i < BURST; i++)
        if (!wait_judge(r, hs[i], ASSET_OK, verify_json, NULL)) goto out;
    for (int i = 1; i < BURST; i++) {
        asset_handle_release(hs[i]);
        hs[i] = NULL;
    }
    asset_server_flush(s);
    if (!judge(r, hs[0], ASSET_OK, verify_json, NULL)) goto out;
out:
    for (int i = 0; i < BURST; i++) asset_handle_release(hs[i]);
    asset_handle_release(ha);
    asset_handle_release(hb);
    destroy(r, s);
}

/* [s->lock] What is wrong with the index's list of http(s) URIs (uri_index.c), which
 * http_poll_ms ticks walk, or NULL: each entry an http(s) URI, once, with handles that
 * all name it; each http(s) handle in the index is in its URI's entry. */
static const char *poll_list_wrong(asset_server_t *s) {
    for (const asset__uri_group_t *g = asset__uri_http_next(s, NULL); g;
         g = asset__uri_http_next(s, g)) {
        const char *key = asset__uri_group_key(g);
        if (strncmp(key, "http://", 7) && strncmp(key, "https://", 8))
            return "a URI of another scheme in the list";
        if (!asset__uri_group_handle(g, 0)) return "a URI without handles in the list";
        asset_handle_t *h;
        for (uint32_t i = 0; (h = asset__uri_group_handle(g, i)); i++)
            if (!asset__uri_names(asset_handle_uri(h), key, strlen(key)))
                return "a handle of another URI in a URI's entry";
        for (const asset__uri_group_t *o = asset__uri_http_next(s, g); o;
             o = asset__uri_http_next(s, o))
            if (!strcmp(asset__uri_group_key(o), key)) return "a URI twice in the list";
    }
    for (asset_handle_t *h = s->all; h; h = h->all_next) {
        const char *u = asset_handle_uri(h);
        if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) ||
            h->uri_slot == ASSET__NOT_INDEXED)
            continue;
        bool found = false;
        for (const asset__uri_group_t *g = asset__uri_http_next(s, NULL); g && !found;
             g = asset__uri_http_next(s, g))
            for (uint32_t i = 0; asset__uri_group_handle(g, i) && !found; i++)
                found = asset__uri_group_handle(g, i) == h;
        if (!found) return "an http handle in the index but not in the list";
    }
    return NULL;
}

/* http_poll_ms ticks (every 2 ms), while URLs' handles come and go: the list of http(s)
 * URIs the ticks walk is made of the index's entries (no memory of its own), so each
 * failure of an index allocation leaves a handle out of it (found by a walk), and each
 * failure of a tick's list or of a poll's reload drops that poll; the values stay right,
 * the list stays right, nothing leaks, destroy ends the ticks. */
static void sc_poll(run_t *r) {
    asset_server_config_t cfg = {.http_poll_ms = 2};
    asset_server_t *s = create(r, &cfg);
    if (!s) return;
    char *j = tu_nginx_url(&g_nginx, "h.json"), *big = tu_nginx_url(&g_nginx, "big.bin");
    asset_handle_t *h1 = load(r, s, j, NULL), *h2 = load(r, s, big, NULL);
    asset_handle_t *h3 = load(r, s, j, NULL), *m = NULL;
    asset_bytes_t want = want_big(sizeof g_big);
    int rc = asset_mem_put(s, "p.json", g_json_text, strlen(g_json_text));
    if (rc != ASSET_OK && !(rc == ASSET_E_NO_MEMORY && injected()))
        FAIL("mem_put: %s", asset_err_name(rc));
    if (rc == ASSET_OK) m = load(r, s, "mem://p.json", NULL);
    if (!wait_judge(r, h1, ASSET_OK, verify_json, NULL)) goto out;
    if (!wait_judge(r, h2, ASSET_OK, verify_bytes, &want)) goto out;
    if (!wait_judge(r, h3, ASSET_OK, verify_json, NULL)) goto out;
    if (!wait_judge(r, m, ASSET_OK, verify_json, NULL)) goto out;
    asset_handle_release(h3); /* one of a URL's two handles */
    h3 = NULL;
    asset_handle_release(h2); /* a URL's last handle */
    h2 = NULL;
    /* two ticks; none after a failed allocation may be right: the I/O thread's part of
     * hot reload found no memory ("hot reload is off"), and is waited for a short while */
    const uint64_t short_ns = (uint64_t)(RUNNING_ON_VALGRIND ? 5000 : 300) * 1000000u;
    unsigned t0 = atomic_load(&asset__http_poll_ticks);
    uint64_t end = uv_hrtime() + (injected() ? short_ns : (uint64_t)g_wait_ms * 1000000u);
    while (atomic_load(&asset__http_poll_ticks) < t0 + 2) {
        if (uv_hrtime() > end) {
            if (injected()) break;
            FAIL("HANG: no poll tick in %d ms", g_wait_ms);
        }
        flush_or_nap(s);
    }
    asset_server_flush(s);
    uv_mutex_lock(&s->lock);
    const char *wrong = poll_list_wrong(s);
    uv_mutex_unlock(&s->lock);
    if (wrong) FAIL("%s", wrong);
    if (!judge(r, h1, ASSET_OK, verify_json, NULL)) goto out; /* polls kept its value */
out:
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_handle_release(m);
    destroy(r, s); /* ticks still running */
    free(j);
    free(big);
}

typedef struct scenario {
    const char *name;
    void (*fn)(run_t *r);
    bool http;
    const char *known_bug; /* skipped unless ASSET_XFAIL_STRICT=1 or named by ONLY */
} scenario_t;

static const scenario_t g_scenarios[] = {
    {"file", sc_file, false, NULL},
    {"json", sc_json, false, NULL},
    {"http", sc_http, true, NULL},
    {"batch", sc_batch, false, NULL},
    {"manifest", sc_manifest, false, NULL},
    {"destroy", sc_destroy, false, NULL},
    {"graph", sc_graph, false, NULL},
    /* was a known bug: find_cycle() out of memory accepted the edge and a cycle hung */
    {"graphcycle", sc_graph_cycle, false, NULL},
    {"reload", sc_reload, false, NULL},
    {"mapped", sc_mapped, false, NULL},
    {"reloadgraph", sc_reload_graph, false, NULL},
    {"spawn", sc_spawn, false, NULL},
    {"reloadlabel", sc_reload_label_alone, false, NULL},
    {"waitring", sc_waitring, false, NULL},
    {"poll", sc_poll, true, NULL},
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
#if T_POSIX
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
#else
/* No fork: point k runs in this process. A crash ends the whole test (run it again with
 * ASSET_TORTURE_ONLY and _POINT to find the point), and a hang is a wait that runs out
 * (g_wait_ms), or the ctest timeout where destroy itself hangs. */
static int run_point_forked(const scenario_t *sc, unsigned long k, int timeout_s, char *msg,
                            size_t msgn) {
    (void)timeout_s;
    run_t *r = calloc(1, sizeof *r);
    bool ok = run_point(sc, k, r, NULL);
    if (!ok) snprintf(msg, msgn, "in process: %.900s", r->err);
    free(r);
    return ok ? 0 : 1;
}
#endif

static unsigned long env_ulong(const char *name, unsigned long def) {
    const char *v = getenv(name);
    return v && *v ? strtoul(v, NULL, 10) : def;
}

/* Totals over the run, printed at the end (docs/reliability.md quotes them). */
static unsigned long g_total_points, g_total_counted;

static void run_scenario(const scenario_t *sc) {
    const char *only = getenv("ASSET_TORTURE_ONLY");
    if (only && *only && strcmp(only, sc->name) != 0) return;
    if (sc->known_bug && !g_strict && !(only && *only)) {
        print_message("torture %-8s XFAIL, skipped (known bug: %s; ASSET_XFAIL_STRICT=1 runs "
                      "it)\n",
                      sc->name, sc->known_bug);
        skip();
        return;
    }
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

typedef struct prio_seen {
    const char *uri;
    int priority;
} prio_seen_t;

static bool prio_of(const asset_job_info_t *i, void *user) {
    prio_seen_t *p = user;
    if (!strcmp(i->uri, p->uri)) p->priority = i->priority;
    return true;
}

static int job_priority(asset_server_t *s, const char *uri) {
    prio_seen_t p = {uri, -1};
    asset_server_foreach_job(s, prio_of, &p);
    return p.priority;
}

static void record_order(asset_handle_t *h, void *user) {
    char *order = user;
    strcat(order, strrchr(asset_handle_uri(h), '/') + 1);
}

/* Bug (pool_heap.c asset__heap_update, priority.c): a queued job raised when its new
 * priority's queue had no memory to grow stayed in its old queue, but j->priority said
 * the new one: introspection showed HIGH for a job that ran at LOW, and raising it again
 * once memory was back did nothing (the job "was" HIGH already), so it ran after the
 * jobs queued ahead of it at LOW. Now the job keeps its old priority when it cannot
 * move, and a later call moves it. */
static void test_a_priority_change_without_memory_keeps_the_old_priority(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_load_options_t low = {.priority = ASSET_PRIORITY_LOW};
    asset_handle_t *block = asset_server_load(s, "gate://block", NULL);
    tu_gate_wait_entered(g, 1); /* the only worker is busy: what follows stays queued */
    asset_handle_t *a = asset_server_load(s, "gate://a", &low);
    asset_handle_t *b = asset_server_load(s, "gate://b", &low);
    char order[16] = "";
    assert_true(asset_handle_on_completed(a, record_order, order) != 0);
    assert_true(asset_handle_on_completed(b, record_order, order) != 0);
    assert_int_equal(job_priority(s, "gate://b"), ASSET_PRIORITY_LOW);
    arm_this_thread(1); /* the HIGH queue's first array */
    assert_int_equal(asset_handle_set_priority(b, ASSET_PRIORITY_HIGH), ASSET_OK);
    bool hit = atomic_load(&g_injected) > 0;
    arm_this_thread(0);
    assert_true(hit);
    assert_int_equal(job_priority(s, "gate://b"), ASSET_PRIORITY_LOW); /* where it runs */
    assert_int_equal(asset_handle_set_priority(b, ASSET_PRIORITY_HIGH), ASSET_OK);
    assert_int_equal(job_priority(s, "gate://b"), ASSET_PRIORITY_HIGH);
    tu_gate_open(g);
    assert_int_equal(tu_wait(a), ASSET_OK);
    assert_int_equal(tu_wait(b), ASSET_OK);
    assert_string_equal(order, "ba"); /* b was moved ahead of a */
    asset_handle_release(block);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    tu_gate_free(g);
}

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
#if !T_POSIX
    print_message("  skipped on this OS: the O_NOFOLLOW walk is POSIX's (test_platform_win32 "
                  "covers Windows' confinement)\n");
    skip();
#else
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
#endif
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
SCENARIO_TEST(graph, 6)
SCENARIO_TEST(graphcycle, 7)
SCENARIO_TEST(reload, 8)
SCENARIO_TEST(mapped, 9)
SCENARIO_TEST(reloadgraph, 10)
SCENARIO_TEST(spawn, 11)
SCENARIO_TEST(reloadlabel, 12)
SCENARIO_TEST(waitring, 13)
SCENARIO_TEST(poll, 14)

/* ------------------------------------------------------------------------ */
/* Deterministic regressions for what the torture found                      */
/* ------------------------------------------------------------------------ */

/* Fails the k-th allocation made by this thread (0: none) from now on. */
static void arm_this_thread(unsigned long k) {
    atomic_store(&g_only_tid, k ? (unsigned long)(uintptr_t)uv_thread_self() : 0ul);
    atomic_store(&g_calls, 0);
    atomic_store(&g_injected, 0);
    atomic_store(&g_fail_at, k);
}

/* The same, every allocation from the K-th on failing (memory that stays short) */
static void arm_this_thread_from(unsigned long k) {
    arm_this_thread(0);
    atomic_store(&g_fail_on, k != 0);
    arm_this_thread(k);
}

/* A cache put into a value's room (the record a parse made, job.c) whose map cannot grow
 * gives the room back, its size written again: a later put takes it. Every allocation of
 * 64 such puts fails in turn (they are the map's, the entries being in the rooms); each
 * failed put leaves its value uncached and whole, nothing leaks. The record's own block
 * failing is the scenarios' (file: the parse's record, room and all). */
static void test_a_put_into_a_values_room_that_fails_gives_the_room_back(void **state) {
    (void)state;
    static asset__loader_slot_t room_slot = {.vt = {.abi = ASSET_LOADER_ABI, .name = "room"},
                                             .name = "room"}; /* no value: nothing to free */
    enum { N = 64 };
    unsigned failed = 0;
    for (unsigned long k = 1; k < 40; k++) {
        long live0 = atomic_load(&g_live);
        asset__cache_t c;
        asset__cache_init(&c, SIZE_MAX);
        asset__value_t *v[N];
        char uri[N][32];
        bool put[N];
        for (int i = 0; i < N; i++) {
            snprintf(uri[i], sizeof uri[i], "mem://room/%d", i);
            v[i] = asset__value_new_roomy(NULL, &room_slot, false,
                                          asset__cache_entry_size(uri[i], "v", NULL));
            assert_non_null(v[i]);
        }
        arm_this_thread(k);
        for (int i = 0; i < N; i++) put[i] = asset__cache_put(&c, uri[i], "v", NULL, v[i]);
        bool hit = atomic_load(&g_injected) > 0;
        arm_this_thread(0);
        for (int i = 0; i < N; i++) {
            if (!put[i]) {
                failed++;
                assert_int_equal(v[i]->room, ASSET__ROOM_FREE);
                assert_int_equal(atomic_load(&v[i]->refs), 1);
                assert_true(asset__cache_put(&c, uri[i], "v", NULL, v[i]));
            }
            asset__cache_entry_t *e = asset__cache_get(&c, uri[i]);
            assert_ptr_equal(e, asset__value_room(v[i]));
            assert_int_equal(v[i]->room, ASSET__ROOM_USED);
            assert_string_equal(asset__cache_entry_key(e), uri[i]);
            assert_string_equal(asset__cache_entry_version(e), "v");
            asset__value_release(v[i]); /* the cache holds it alone */
        }
        asset__cache_free(&c);
        assert_int_equal(atomic_load(&g_live), live0);
        if (!hit) break; /* past the puts' last allocation */
    }
    assert_true(failed > 0);
}

/* The json loader's parse of text with the k-th allocation on this thread failing (0:
 * none): its status, *value (free it) and *msg (the message; asset_free it); whether an
 * allocation failed. */
static bool json_parse_failing(const char *text, unsigned long k, asset_status_t *st, void **value,
                               char **msg) {
    asset__job_t job;
    struct asset_request req;
    tu_request_open(&job, &req, "mem://x.json", NULL);
    assert_true(tu_request_set_data(&req, text, strlen(text)));
    asset_parse_t p;
    arm_this_thread(k);
    *st = tu_request_parse(&asset__json_loader, &req, &p);
    bool hit = atomic_load(&g_injected) > 0;
    arm_this_thread(0);
    assert_true(*st != ASSET_OK || p.has_value);
    *value = *st == ASSET_OK ? p.value : NULL;
    *msg = p.message;
    asset__request_dispose(&req);
    return hit;
}

/* Bug: cJSON answers NULL when an allocation fails, and the json loader reported that
 * as ASSET_E_PARSE ("trailing characters after the value"). Now: ASSET_E_NO_MEMORY. */
static void test_json_loader_reports_no_memory_not_a_parse_error(void **state) {
    (void)state;
    int oom = 0;
    for (unsigned long k = 1; k < 200; k++) {
        asset_status_t st;
        void *value;
        char *msg;
        bool hit = json_parse_failing(g_json_text, k, &st, &value, &msg);
        if (st == ASSET_OK) {
            assert_true(verify_json(value, NULL));
            asset__json_loader.free_value(NULL, value);
        } else {
            assert_true(hit);
            assert_int_equal(st, ASSET_E_NO_MEMORY);
            oom++;
        }
        asset_free(msg);
        if (!hit) break; /* past the last allocation of a parse */
    }
    assert_true(oom > 5);
}

/* A document with trailing characters is parsed a third time, without the end check, to
 * word its message: out of memory there, it was "invalid JSON at line 1, column 14",
 * ASSET_E_PARSE, a permanent failure for a document the lack of memory left unread.
 * Each allocation failing in turn: the trailing characters named, or NO_MEMORY. */
static void test_json_trailing_characters_out_of_memory_is_no_memory(void **state) {
    (void)state;
    static const char text[] = "{\"a\": [1, 2, {\"b\": \"c\"}]} x";
    int oom = 0, worded = 0;
    for (unsigned long k = 1; k < 200; k++) {
        asset_status_t st;
        void *value;
        char *msg;
        bool hit = json_parse_failing(text, k, &st, &value, &msg);
        if (st == ASSET_E_PARSE) { /* no message: its own allocation was the one failed */
            if (msg ? !strstr(msg, "trailing characters after the value") : !hit)
                fail_msg("allocation %lu failing: \"%s\"", k, msg ? msg : "");
            worded += msg != NULL;
        } else {
            assert_int_equal(st, ASSET_E_NO_MEMORY);
            assert_true(hit);
            oom++;
        }
        asset_free(msg);
        if (!hit) break; /* past the last allocation of a parse */
    }
    assert_true(oom > 5);
    assert_int_equal(worded, 1); /* the last round: nothing failed */
}

/* A URI parse makes one block, and works on the heap only past its stack scratch (512
 * bytes a step): every allocation of a long URI's parse fails in turn, and each gives
 * ASSET_E_NO_MEMORY with nothing made and nothing leaked, or the right result. */
static void test_long_uri_parse_under_failed_allocations(void **state) {
    (void)state;
    enum { N = 1200 };
    char seg[N + 1], base[N + 8], ins[5][N + 64], want[5][N + 64];
    memset(seg, 's', N);
    seg[N] = 0;
    snprintf(base, sizeof base, "/b/%s", seg);
    const char *bases[5] = {"/b", base, "/b", "/b", "/b"};
    snprintf(ins[0], sizeof ins[0], "pkg://game/./%s//f.txt", seg);
    snprintf(want[0], sizeof want[0], "pkg://game/%s/f.txt", seg);
    snprintf(ins[1], sizeof ins[1], "x/../r.txt"); /* joined to the long base */
    snprintf(want[1], sizeof want[1], "file:///b/%s/r.txt", seg);
    snprintf(ins[2], sizeof ins[2], "file:///a/%s/./r%%25.txt", seg);
    snprintf(want[2], sizeof want[2], "file:///a/%s/r%%25.txt", seg);
    snprintf(ins[3], sizeof ins[3], "mem://%s", seg);
    snprintf(want[3], sizeof want[3], "mem://%s", seg);
    snprintf(ins[4], sizeof ins[4], "http://H/%s#f", seg);
    snprintf(want[4], sizeof want[4], "http://h/%s", seg);
    for (int i = 0; i < 5; i++) {
        int oom = 0;
        for (unsigned long k = 1; k < 10; k++) {
            long live0 = atomic_load(&g_live);
            asset_uri_t u;
            const char *why = NULL;
            arm_this_thread(k);
            asset_status_t st = asset__uri_parse(ins[i], bases[i], NULL, &u, &why);
            bool hit = atomic_load(&g_injected) > 0;
            arm_this_thread(0);
            if (st == ASSET_OK) {
                assert_string_equal(u.uri, want[i]);
                asset__uri_dispose(&u);
            } else {
                assert_true(hit);
                assert_int_equal(st, ASSET_E_NO_MEMORY);
                assert_null(u.uri);
                assert_null(u.path);
                oom++;
            }
            assert_int_equal(atomic_load(&g_live), live0);
            if (!hit) break; /* past the parse's last allocation */
        }
        assert_true(oom >= 1);
    }
}

/* Bug: a package found on pkg_path whose mount record could not be allocated was
 * reported as "package 'game' is not mounted" (ASSET_E_NOT_FOUND). */
static void test_pkg_lookup_out_of_memory_is_not_not_found(void **state) {
    (void)state;
    asset_server_config_t cfg = {.pkg_path = g_pkg_root};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset__job_t job;
    struct asset_request req;
    tu_request_open(&job, &req, "pkg://game/c.txt", "game/c.txt");
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

/* A group's children are made a slice at a time (src/load.c: asset__load_many), a run
 * of cache hits in one critical section and the rest in another. Every allocation of
 * load_group on the calling thread is failed in turn, over more children than a slice
 * that mix hits, jobs and missing files: the children made are always the
 * first ones, in order (child i is uris[i]), the group finishes, and one it could not
 * finish making says so. */
static void test_group_slices_under_failed_allocations_keep_order_and_finish(void **state) {
    (void)state;
    enum { N = ASSET__LOAD_SLICE + 8 };
    static char names[N][16], texts[N][16], uris[N][32];
    asset_embedded_file_t files[N];
    const char *u[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        snprintf(texts[i], sizeof texts[i], "value %d", i);
        files[i] =
            (asset_embedded_file_t){names[i], (const unsigned char *)texts[i], strlen(texts[i])};
        snprintf(uris[i], sizeof uris[i], i % 4 == 3 ? "pkg://t/missing%d" : "pkg://t/k%d", i);
        u[i] = uris[i];
    }
    unsigned long k;
    int short_groups = 0;
    for (k = 1; k < 400; k++) {
        asset_server_t *s = asset_server_create(NULL);
        assert_non_null(s);
        assert_int_equal(asset_server_mount_embedded(s, "t", files, N), ASSET_OK);
        asset_batch_t *warm = asset_server_load_group(s, u, N / 2, NULL); /* hits after */
        assert_non_null(warm);
        asset_batch_wait(warm, 60000);
        asset_batch_release(warm);
        arm_this_thread(k);
        asset_batch_t *b = asset_server_load_group(s, u, N, NULL);
        bool hit = atomic_load(&g_injected) > 0;
        arm_this_thread(0);
        if (b) {
            asset_status_t w = asset_batch_wait(b, 10000);
            assert_int_not_equal(w, ASSET_E_TIMEOUT);
            assert_true(asset_batch_is_done(b));
            size_t n = asset_batch_count(b);
            for (size_t i = 0; i < n; i++) {
                asset_handle_t *h = asset_batch_handle(b, i);
                assert_true(asset_handle_is_done(h));
                assert_string_equal(asset_handle_uri(h), uris[i]);
            }
            assert_int_equal(asset_batch_completed_count(b) + asset_batch_failed_count(b) +
                                 asset_batch_cancelled_count(b),
                             n);
            if (n < N) {
                short_groups++;
                assert_int_equal(asset_batch_error(b), ASSET_E_NO_MEMORY);
            }
            asset_batch_release(b);
        }
        asset_server_destroy(s);
        if (!hit) break;
    }
    /* it went through the slices' allocations (15 here: a slice's misses make their jobs
     * in one slab, src/uri.h, which fails in turn as well) */
    assert_true(k > 10);
    assert_true(short_groups); /* and some of them ended a group early */
}

/* ---- the graph: bugs found in the core (src/graph.c, src/job.c), not fixed here ---- */

typedef struct cycle_oom {
    bool done;
    unsigned long points;
    int hangs, lost;
    char hang_at[128], lost_at[256];
} cycle_oom_t;

/* Fails, in turn, every allocation the worker makes while the closing edge of a cycle
 * of two is declared (mem://cb.n's parse: asset_parse_depend(ca.n), find_cycle...). */
static const cycle_oom_t *cycle_oom(void) {
    static cycle_oom_t res;
    if (res.done) return &res;
    res.done = true;
    for (unsigned long k = 1; k < 80; k++) {
        asset_server_config_t cfg = {.max_workers = 1};
        asset_server_t *s = asset_server_create(&cfg);
        assert_non_null(s);
        static const char *const n_suf[] = {".n", NULL};
        asset_loader_t n = {.abi = 1, .name = "n", .suffixes = n_suf, .parse = gt_parse};
        assert_int_equal(asset_server_register_loader(s, &n, NULL, 0), ASSET_OK);
        char cb[64];
        int len = snprintf(cb, sizeof cb, "arm %lu\ndep ca.n", k);
        assert_int_equal(asset_mem_put(s, "ca.n", "dep cb.n", 8), ASSET_OK);
        assert_int_equal(asset_mem_put(s, "cb.n", cb, (size_t)len), ASSET_OK);
        atomic_store(&g_injected, 0);
        asset_handle_t *h = asset_server_load(s, "mem://ca.n", NULL);
        assert_non_null(h);
        /* a cycle of two fails in microseconds: 5 s is a hang */
        asset_status_t w = asset_handle_wait(h, 5000);
        bool hit = atomic_load(&g_injected) > 0;
        arm_this_thread(0);
        const char *msg = asset_handle_error_message(h);
        size_t used;
        if (w == ASSET_E_TIMEOUT) {
            res.hangs++;
            used = strlen(res.hang_at);
            snprintf(res.hang_at + used, sizeof res.hang_at - used, " %lu", k);
        } else if (w == ASSET_E_DEPENDENCY && lost_message(msg)) {
            res.lost++;
            used = strlen(res.lost_at);
            snprintf(res.lost_at + used, sizeof res.lost_at - used, " %lu (\"%s\")", k, msg);
        } else if (w != ASSET_E_NO_MEMORY) {
            assert_int_equal(w, ASSET_E_DEPENDENCY);
            if (!strstr(msg, "dependency cycle") && !strstr(msg, "out of memory"))
                fail_msg("point %lu: %s", k, msg);
        }
        asset_handle_release(h);
        asset_server_destroy(s); /* also with the cycle hanging: no leak, no crash */
        res.points = k;
        if (!hit) break; /* past the last allocation of that parse */
    }
    assert_true(res.points > 5);
    return &res;
}

/* Bug (graph.c find_cycle): when an allocation of the cycle search fails (its stack,
 * the message, the chain), find_cycle returns NULL, "cannot tell", and the edge is
 * accepted: a real cycle is never detected and both loads wait for each other forever.
 * It should fail the edge (ASSET_E_NO_MEMORY) rather than accept it. */
static void test_cycle_search_out_of_memory_does_not_hang(void **state) {
    (void)state;
    const cycle_oom_t *c = cycle_oom();
    if (c->hangs) fail_msg("a cycle of two hung at points:%s", c->hang_at);
}

/* Bug (graph.c asset__graph_dep_decided / asset_parse_depend, handle.c decide): when
 * the message of a failed dependency ("dependency cycle: ...", or the chain "x:
 * dependency y: ...") cannot be allocated, the parent fails with ASSET_E_DEPENDENCY
 * and "<uri>: a dependency failed" (or "<uri>: dependency <dep>: a dependency failed"):
 * neither the cycle nor "out of memory" is named. */
static void test_dependency_failure_keeps_its_reason_when_its_message_cannot_be_made(void **state) {
    (void)state;
    const cycle_oom_t *c = cycle_oom();
    if (c->lost) fail_msg("the reason was lost at points:%s", c->lost_at);
}

/* Bug (job.c parse_and_finish): a FREE_ON_FLUSH_THREAD loader's value is freed on the
 * worker when its value record cannot be allocated after a successful parse, and when
 * the loader set a value and then failed. free_value must run on the flush thread. */
static void test_free_on_flush_thread_value_is_never_freed_on_a_worker(void **state) {
    (void)state;
    gtl_t gl;
    memset(&gl, 0, sizeof gl);
    gl.flush_thread = uv_thread_self();
    uv_mutex_init(&gl.mu);
    asset_server_config_t cfg = {.max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    static const char *const g_suf[] = {".g", NULL};
    asset_loader_t g = {.abi = ASSET_LOADER_ABI,
                        .name = "g",
                        .suffixes = g_suf,
                        .parse = gt_parse,
                        .free_value = gt_free,
                        .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                        .finalize = gt_finalize};
    assert_int_equal(asset_server_register_loader(s, &g, &gl, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "a.g", "failrecord", 10), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b.g", "setfail", 7), ASSET_OK);
    asset_handle_t *a = asset_server_load(s, "mem://a.g", NULL);
    /* the record is made before the parse now: the armed failure hits something later
     * or nothing; either way the value must not be freed here */
    asset_status_t aw = asset_handle_wait(a, 10000);
    assert_true(aw == ASSET_OK || aw == ASSET_E_NO_MEMORY);
    arm_this_thread(0);
    asset_handle_t *b = asset_server_load(s, "mem://b.g", NULL);
    assert_int_equal(asset_handle_wait(b, 10000), ASSET_E_PARSE);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    uv_mutex_destroy(&gl.mu);
    int off = atomic_load(&gl.frees_off_flush_thread);
    if (off) fail_msg("%d value(s) freed on a worker", off);
}

/* Bug (graph.c asset__graph_waits_here): a wait inside a parse that would close a ring
 * of waits (b's parse waits for a, whose parse on the other worker waits for b) looks
 * for the ring through s->awaits with a stack; when that stack could not be allocated,
 * the search said "no ring" and the wait slept until its timeout (for ever with -1),
 * holding both workers. Out of memory it must not sleep: ASSET_E_NO_MEMORY. */
static uv_sem_t g_ring_entered, g_ring_go;
static atomic_int g_ring_b_rc;

static asset_status_t ring_parse(void *ctx, asset_parse_t *p) {
    asset_server_t *s = ctx;
    bool b = asset_parse_data(p)[0] == 'b';
    if (b) {
        uv_sem_post(&g_ring_entered);
        uv_sem_wait(&g_ring_go);
    }
    asset_handle_t *h = asset_server_load(s, b ? "mem://ra.ring" : "mem://rb.ring", NULL);
    if (!h) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    if (b) arm_this_thread(1); /* the search's stack, the wait's first allocation */
    asset_status_t rc = asset_handle_wait(h, b ? 3000 : 60000);
    if (b) {
        arm_this_thread(0);
        atomic_store(&g_ring_b_rc, (int)rc);
    }
    asset_handle_release(h);
    return asset_parse_fail(p, ASSET_E_PARSE, "waited: %s", asset_err_name(rc));
}

static void test_a_wait_ring_search_out_of_memory_does_not_sleep(void **state) {
    (void)state;
    uv_sem_init(&g_ring_entered, 0);
    uv_sem_init(&g_ring_go, 0);
    asset_server_config_t cfg = {.max_workers = 2};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    static const char *const suf[] = {".ring", NULL};
    asset_loader_t ring = {
        .abi = ASSET_LOADER_ABI, .name = "ring", .suffixes = suf, .parse = ring_parse};
    assert_int_equal(asset_server_register_loader(s, &ring, s, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "ra.ring", "a", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "rb.ring", "b", 1), ASSET_OK);
    asset_handle_t *hb = asset_server_load(s, "mem://rb.ring", NULL);
    assert_non_null(hb);
    uv_sem_wait(&g_ring_entered); /* b's parse runs on a worker */
    asset_handle_t *ha = asset_server_load(s, "mem://ra.ring", NULL);
    assert_non_null(ha);
    TU_SPIN_UNTIL(wr_listed(s)); /* a's parse waits for b, listed on s->awaits */
    uv_sem_post(&g_ring_go);
    assert_int_equal(asset_handle_wait(hb, 60000), ASSET_E_PARSE);
    assert_int_equal(asset_handle_wait(ha, 60000), ASSET_E_PARSE);
    asset_status_t rc = (asset_status_t)atomic_load(&g_ring_b_rc);
    if (rc != ASSET_E_NO_MEMORY)
        fail_msg("b's wait, its ring search out of memory, returned %s", asset_err_name(rc));
    asset_handle_release(ha);
    asset_handle_release(hb);
    asset_server_destroy(s);
    uv_sem_destroy(&g_ring_entered);
    uv_sem_destroy(&g_ring_go);
}

/* The header: each walk "calls fn for every record"; out of memory its snapshot holds
 * the records it had room for (none when its first block fails), and a string it could
 * not copy reads "". It never crashes and never hands out NULL. */
static bool count_loader(const asset_loader_info_t *i, void *user) {
    assert_non_null(i->name);
    ++*(int *)user;
    return true;
}

static void test_a_walk_out_of_memory_lists_what_it_had_room_for(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    int all = 0;
    assert_int_equal(asset_server_foreach_loader(s, count_loader, &all), 2); /* json, bytes */
    int seen = 0;
    arm_this_thread(1); /* the snapshot's first block */
    size_t n = asset_server_foreach_loader(s, count_loader, &seen);
    bool hit = atomic_load(&g_injected) > 0;
    arm_this_thread(0);
    assert_true(hit);
    assert_int_equal(n, (size_t)seen);
    assert_int_equal(n, 0); /* not every record: none */
    asset_server_destroy(s);
}

/* Bug (trace.c asset_trace_write_chrome_json): the file was opened ("w": truncated)
 * before the copies the write needs were allocated, so a write that ran out of memory
 * (ASSET_E_NO_MEMORY) left an empty file where a good trace had been. */
static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* A recorder holding one load of mem://a, queued and delivered. */
static asset_trace_t *one_load_trace(void) {
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_trace_event_t e = {
        .phase = ASSET_TRACE_QUEUED, .id = 1, .uri = "mem://a", .loader = "bytes"};
    asset_trace_record(&e, tr);
    e.phase = ASSET_TRACE_DELIVERED;
    asset_trace_record(&e, tr);
    return tr;
}

static void test_a_trace_write_out_of_memory_keeps_the_file_it_would_replace(void **state) {
    (void)state;
    asset_trace_t *tr = one_load_trace();
    char *path = tu_path(g_dir, "kept_trace.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    long good = file_size(path);
    assert_true(good > 0);
    int oom = 0;
    for (unsigned long k = 1; k <= 3; k++) { /* each of the write's copies */
        arm_this_thread(k);
        asset_status_t st = asset_trace_write_chrome_json(tr, path);
        bool hit = atomic_load(&g_injected) > 0;
        arm_this_thread(0);
        if (!hit) continue;
        assert_int_equal(st, ASSET_E_NO_MEMORY);
        oom++;
        assert_int_equal(file_size(path), good); /* was 0 */
    }
    assert_int_equal(oom, 3);
    asset_trace_destroy(tr);
    free(path);
}

/* Twenty-second review: every allocation of a trace write, each failing in turn, since
 * the trace is written beside its path and renamed over it. On Windows the rename
 * converts both names to UTF-16 (allocations): out of memory there returned ASSET_E_IO,
 * a disk's error, where every other allocation of the write says ASSET_E_NO_MEMORY.
 * Whatever fails, the old trace is whole and no temporary file is left beside it. */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));)
        n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    closedir(d);
    return n;
}

/* A trace rewritten over a good one (in dir `sub`) with memory failing as arm(k) has
 * it, for k from 1 until nothing fails: each failure says ASSET_E_NO_MEMORY and leaves
 * the good file whole, and no temporary file beside it. */
static void trace_write_failing_allocations(const char *sub, void (*arm)(unsigned long)) {
    asset_trace_t *tr = one_load_trace();
    char *dir = tu_path(g_dir, sub);
    assert_int_equal(tu_os_mkdir(dir), 0);
    char *path = tu_path(dir, "t.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    long good = file_size(path);
    assert_true(good > 0);
    int hits = 0;
    for (unsigned long k = 1; k <= 32; k++) {
        arm(k);
        asset_status_t st = asset_trace_write_chrome_json(tr, path);
        bool hit = atomic_load(&g_injected) > 0;
        arm(0);
        if (!hit) {
            assert_int_equal(st, ASSET_OK);
            break;
        }
        hits++;
        if (st != ASSET_OK && st != ASSET_E_NO_MEMORY)
            fail_msg("%s: allocation %lu failed: %s, not ASSET_E_NO_MEMORY", sub, k,
                     asset_err_name(st));
        assert_int_equal(file_size(path), good);
        if (dir_entries(dir) != 1) fail_msg("%s: allocation %lu failed: a file left", sub, k);
    }
    assert_true(hits >= 4); /* the copies, and the temporary file's name */
    asset_trace_destroy(tr);
    free(path);
    free(dir);
}

static void test_every_failed_allocation_of_a_trace_write_says_no_memory(void **state) {
    (void)state;
    trace_write_failing_allocations("trace_oom", arm_this_thread); /* the k-th alone */
}

/* Bug (fs_win32.c asset__remove): removing the temporary trace file converted its name
 * to UTF-16 in a new block: with memory short from the rename on (whose own names are
 * allocations), the remove failed too and the temporary file was left beside the
 * trace. Every allocation from the K-th on fails here; POSIX's remove allocates none. */
static void test_a_trace_write_short_of_memory_to_the_end_leaves_no_temporary_file(void **state) {
    (void)state;
    trace_write_failing_allocations("trace_oom_on", arm_this_thread_from); /* k-th on */
}

/* Bug (graph.c step): a job is freed while its parse still runs. The parse of p.n
 * declared a dependency (x) and still runs; p's only handle is cancelled (the job is
 * RUNNING: detach only sets `cancelled`, live = 0); then x is decided: dep_decided
 * queues p, and step() drops it since live == 0, before looking at parsed_done. The
 * worker goes on with the freed job (asset_parse_depend, parse_and_finish,
 * asset__graph_parsed: heap-use-after-free, seen by ASan; in the stress test also a
 * double free). Runs in a child; reproduced when the child dies or ASan reports. */
static void test_job_is_not_freed_while_its_parse_runs(void **state) {
    (void)state;
#if !T_POSIX
    print_message("  skipped on this OS: the case runs in a forked child (no fork)\n");
    skip();
#else
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
        for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) signal(sigs[i], SIG_DFL);
        uv_sem_init(&g_block_entered, 0);
        uv_sem_init(&g_block_release, 0);
        asset_server_config_t cfg = {.max_workers = 2};
        asset_server_t *s = asset_server_create(&cfg);
        static const char *const n_suf[] = {".n", NULL};
        asset_loader_t n = {.abi = 1, .name = "n", .suffixes = n_suf, .parse = gt_parse};
        ggate_t gate = {0};
        uv_mutex_init(&gate.mu);
        uv_cond_init(&gate.cond);
        asset_source_t gs = {ASSET_SOURCE_ABI, "gate", 0, ggate_read, NULL, NULL};
        if (!s || asset_server_register_loader(s, &n, NULL, 0) ||
            asset_server_register_source(s, &gs, &gate) ||
            asset_mem_put(s, "p.n", "dep gate://x\nblock", 18))
            _exit(3);
        asset_handle_t *h = asset_server_load(s, "mem://p.n", NULL);
        uv_sem_wait(&g_block_entered); /* p's parse declared x and waits */
        asset_handle_cancel(h);        /* p's job: RUNNING, live 0 */
        ggate_open(&gate);             /* x loads: its decision reaches p */
        uv_mutex_lock(&s->lock);
        while (s->q_len < 2) { /* h (cancelled) and x (loaded) are queued */
            s->waiters++;
            uv_cond_wait(&s->done_cond, &s->lock);
            s->waiters--;
        }
        uv_mutex_unlock(&s->lock);
        uv_sem_post(&g_block_release); /* p's parse goes on */
        if (asset_handle_wait(h, 10000) != ASSET_E_CANCELLED) _exit(4);
        asset_handle_release(h);
        asset_server_destroy(s);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    bool died = !WIFEXITED(status) || WEXITSTATUS(status) == 1; /* 1: ASan's exit code */
    if (WIFEXITED(status) && WEXITSTATUS(status) > 1)
        fail_msg("the child could not set up (exit %d)", WEXITSTATUS(status));
    /* without ASan a use after free need not crash: the asan preset is the real check */
    if (died) fail_msg("a job was freed while its parse ran (use after free)");
#endif
}

/* ------------------------------------------------------------------------ */
/* Group setup                                                               */
/* ------------------------------------------------------------------------ */

static int group_setup(void **state) {
    (void)state;
    /* before any server: the hook must see every allocation of the library */
    asset_set_allocator(&g_hook);
    if (RUNNING_ON_VALGRIND) g_wait_ms = 120000;
    if (getenv("ASSET_XFAIL_STRICT")) g_strict = atoi(getenv("ASSET_XFAIL_STRICT")) != 0;
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
        cmocka_unit_test(test_json_trailing_characters_out_of_memory_is_no_memory),
        cmocka_unit_test(test_a_put_into_a_values_room_that_fails_gives_the_room_back),
        cmocka_unit_test(test_long_uri_parse_under_failed_allocations),
        cmocka_unit_test(test_pkg_lookup_out_of_memory_is_not_not_found),
        cmocka_unit_test(test_group_whose_child_cannot_be_watched_still_finishes),
        cmocka_unit_test(test_group_slices_under_failed_allocations_keep_order_and_finish),
        cmocka_unit_test(test_cycle_search_out_of_memory_does_not_hang),
        cmocka_unit_test(test_dependency_failure_keeps_its_reason_when_its_message_cannot_be_made),
        cmocka_unit_test(test_free_on_flush_thread_value_is_never_freed_on_a_worker),
        cmocka_unit_test(test_a_wait_ring_search_out_of_memory_does_not_sleep),
        cmocka_unit_test(test_job_is_not_freed_while_its_parse_runs),
        cmocka_unit_test(test_a_trace_write_out_of_memory_keeps_the_file_it_would_replace),
        cmocka_unit_test(test_every_failed_allocation_of_a_trace_write_says_no_memory),
        cmocka_unit_test(test_a_trace_write_short_of_memory_to_the_end_leaves_no_temporary_file),
        cmocka_unit_test(test_a_walk_out_of_memory_lists_what_it_had_room_for),
        cmocka_unit_test(test_a_priority_change_without_memory_keeps_the_old_priority),
        cmocka_unit_test(test_fuzz_regression_http_uri_without_host_is_invalid),
        cmocka_unit_test(test_fuzz_regression_walk_refuses_dotdot),
        cmocka_unit_test(test_torture_file),
        cmocka_unit_test(test_torture_json),
        cmocka_unit_test(test_torture_http),
        cmocka_unit_test(test_torture_batch),
        cmocka_unit_test(test_torture_manifest),
        cmocka_unit_test(test_torture_destroy),
        cmocka_unit_test(test_torture_graph),
        cmocka_unit_test(test_torture_graphcycle),
        cmocka_unit_test(test_torture_reload),
        cmocka_unit_test(test_torture_mapped),
        cmocka_unit_test(test_torture_reloadgraph),
        cmocka_unit_test(test_torture_spawn),
        cmocka_unit_test(test_torture_reloadlabel),
        cmocka_unit_test(test_torture_waitring),
        cmocka_unit_test(test_torture_poll),
    };
    return TU_RUN_GROUP_TESTS(tests, group_setup, group_teardown);
}
