/* fuzz_server.c - the whole server through the public API only: the input is a small
 * program run on a fresh server. Its first bytes pick the config (workers, budgets,
 * json_allow_invalid_utf8, manifest_schemes); then each op byte picks one of: put or
 * remove a mem:// key, load a URI (from a table of good and malformed ones - '#', '%',
 * '..', unknown schemes - optionally with fuzz bytes appended, or raw) with fuzzed
 * options (priority, no_cache, tag, loader, timeout), cancel, release, cancel_tag,
 * flush, budgeted flush, wait, manifest / folder / group batches, batch cancel and
 * release, invalidate, clear caches, hot reload (asset_server_reload, reloaded callbacks
 * that count, reload again, flush or disconnect themselves), callbacks (some of which release their
 * handle, start a load or try to flush from inside the flush), getters and stats, the
 * graph's dependency lists, introspection (jobs, cache entries, loaders; a walk stopped
 * early or not) and the trace hook turned off and on (config 0x20: a recorder, whose
 * events are checked and written as a Chrome trace after the destroy: to a file when
 * config bit 0x40 of the second byte is set, else to /dev/null). At most 64 ops.
 * Then either destroy at once with whatever is in flight, or wait for every handle and batch first;
 * destroy always ends the input.
 *
 * The server is boxed in: file_root is a temp dir with three files, pkg_path is empty
 * (one embedded package, "emb"), http:// and https:// fail at once, and a custom
 * source "fz" serves its path (fz://fail fails, fz://slow writes in 64 pieces and
 * stops on cancel); a custom loader "fzl" (suffix .fz) refuses bytes that start with
 * 'F'; the graph loader "fzg" (.fzg) declares dependencies and labels, pends in its
 * finalize, and waits inside its parse for loads and batches (fzg_wait). Nothing leaves
 * the process and nothing can block.
 *
 * Properties: every wait(-1) returns with the handle or batch done; a FAILED or CANCELLED
 * handle has an error and a message; a LOADED one a value; a done batch's counts add
 * up and its progress is 1; every callback fires at most once, and every connected,
 * not disconnected callback has fired once everything is done and flushed; a
 * callback sees its handle done; a reloaded callback sees its handle LOADED with a
 * value, a version that never goes back, and a message when the reload failed; a
 * flush from inside a callback dispatches nothing; a wait forever inside a parse ends
 * with its handle or batch done, or BUSY (a ring) or SHUTDOWN; a LOADED handle's
 * dependencies are done and a labeled one has none; introspection's records are whole (a known job
 * state, a priority in range); the trace's events name a thread, a URI and a loader,
 * and the Chrome trace is written;
 * ASan/LSan: no memory error, no leak after destroy. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <asset_server.h>

#define CHECK(c)                                                                           \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "fuzz_server: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

enum { MAX_OPS = 64, NH = 16, NB = 4, NCB = 64 };

static char g_root[4096];

/* ---- input ---- */

typedef struct in {
    const uint8_t *p;
    size_t n;
} in_t;

static uint8_t byte(in_t *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}

/* Up to 31 bytes of the input (no NUL) into out. */
static size_t text(in_t *in, char *out, size_t cap) {
    size_t len = byte(in) % 32, k = 0;
    while (k < len && k + 1 < cap && in->n) {
        uint8_t c = byte(in);
        out[k++] = c ? (char)c : '/';
    }
    out[k] = 0;
    return k;
}

static const char *pick(in_t *in, const char *const *table, size_t n) {
    return table[byte(in) % n];
}
#define PICK(in, table) pick(in, table, sizeof table / sizeof *table)

static const char *const k_uris[] = {
    "mem://a.json",
    "mem://b",
    "mem://dir/c.json",
    "mem://dir/sub/d.bin",
    "mem://m.json",
    "mem://dir/m2.json",
    "MEM://A.JSON",
    "mem://dir/../a.json",
    "mem://a%2ejson",
    "mem://%zz",
    "mem://%00",
    "mem://",
    "mem://a.json#frag",
    "mem://b?q=1",
    "pkg://emb/x.json",
    "pkg://emb/sub/y.txt",
    "pkg://emb/m.json",
    "pkg://emb/../x.json",
    "pkg://nope/z",
    "pkg://emb",
    "pkg://",
    "x.json",
    "sub/f.json",
    "sub/",
    "../etc/passwd",
    "/etc/passwd",
    "file:///",
    "file://host/x",
    "file://localhost/x.json",
    "file:///%2e%2e/etc",
    "http://127.0.0.1/x.json",
    "https://h/y#frag",
    "http://#x",
    "fz://ok",
    "fz://fail",
    "fz://slow",
    "fz://a.fz",
    "fz://Fbad.fz",
    "bad://x",
    "#",
    "%",
    "..",
    "",
    "a\\b",
    "mem://g1.fzg",
    "mem://g2.fzg",
    "mem://dir/g3.fzg",
    "mem://g1.fzg#a",
    "mem://g1.fzg#b",
    "mem://g1.fzg#nope",
    "mem://dir/g3.fzg#a",
};
static const char *const k_keys[] = {"a.json", "b",           "dir/c.json", "dir/sub/d.bin",
                                     "m.json", "dir/m2.json", "dir/e.fz",   "x",
                                     "g1.fzg", "g2.fzg",      "dir/g3.fzg"};
static const char *const k_contents[] = {
    "{\"k\": [1, 2, {\"x\": null}]}",
    "[\"a.json\", \"b\", \"dir/c.json\"]",
    "{\"assets\": [{\"uri\": \"c.json\", \"priority\": \"high\", \"size\": 9}, \"sub/d.bin\"]}",
    "{\"assets\": [\"fz://slow\", {\"uri\": \"mem://b\", \"loader\": \"bytes\"}, "
    "\"pkg://emb/x.json\", \"file:///x.json\", \"http://127.0.0.1/z\"]}",
    "[{\"uri\": \"b\", \"sha256\": "
    "\"0000000000000000000000000000000000000000000000000000000000000000\"}]",
    "[\"../../x\", \"%\", \"#\", \"\", 5]",
    "\xEF\xBB\xBF[\"\xC3\xA9\"]",
    "[\"\xC0\xAF\"]",
    "Fnot json",
    "",
    /* the graph loader's documents: dependencies (relative, cyclic, optional, labeled,
     * failing), labels, a finalize that pends or fails */
    "dep g2.fzg\nopt dir/g3.fzg\nlabel a\nlabel b",
    "dep g1.fzg\npend",
    "dep ../g1.fzg#a\ndep ../b\nfinfail",
    "dep dir/g3.fzg\ndep g2.fzg\nopt nope.fzg\nlabel a",
    "dep fz://slow\ndep fz://fail\nlabel a\nlabel a",
    "opt %\ndep #\ndep g1.fzg#zz\npend\npend",
    "deps g2.fzg - dir/g3.fzg g2.fzg\nlabel a",    /* a list (asset_parse_depend_many) */
    "deps ../g1.fzg#a % g1.fzg fz://slow #\npend", /* a cycle, bad URIs, a label */
    /* waits inside the parse (fzg_wait): for another graph asset (rings of waits, and of
     * waits and dependencies), itself, a label, a manifest, a folder, a group */
    "wait mem://g2.fzg\nlabel a",
    "wait mem://g1.fzg\ndep dir/g3.fzg\npend",
    "waitm mem://m.json\nwait mem://g1.fzg#a\ndep ../g2.fzg",
    "wait0 mem://a.json\nwaitt fz://slow\nwaitg mem://g1.fzg mem://dir/g3.fzg\nwaitf mem://dir",
    "wait mem://dir/g3.fzg\nwait mem://g1.fzg\nwait pkg://emb/x.json\nlabel a",
};
static const char *const k_tags[] = {NULL, "t1", "t2"};
static const char *const k_loaders[] = {NULL, NULL, "json", "bytes", "fzl", "nope"};
static const char *const k_rules[] = {
    NULL, NULL, "*->*", "", "default mem->file", "bad=>rule", "default, http->pkg"};
static const char *const k_folders[] = {"mem://dir", "mem://", "pkg://emb",  "file:///",
                                        "sub",       "x.json", "http://h/d", "fz://d"};

/* ---- the boxed-in sources and loader ---- */

static asset_status_t no_network(void *ctx, asset_request_t *r) {
    (void)ctx;
    return asset_request_fail(r, ASSET_E_NETWORK, "no network while fuzzing");
}

static asset_status_t fz_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    const char *path = asset_request_path(r);
    if (!strcmp(path, "fail")) return asset_request_fail(r, ASSET_E_IO, "failing on purpose");
    if (!strcmp(path, "slow")) {
        asset_request_set_total(r, 64 * 16);
        for (int i = 0; i < 64; i++) {
            if (asset_request_cancelled(r)) return ASSET_E_CANCELLED;
            asset_status_t st = asset_request_write(r, "0123456789abcdef", 16);
            if (st != ASSET_OK) return st;
        }
        return ASSET_OK;
    }
    return asset_request_write(r, path, strlen(path));
}

static asset_status_t fzl_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    size_t n = asset_parse_size(p);
    const uint8_t *d = asset_parse_data(p);
    if (n && d[0] == 'F') return asset_parse_fail(p, ASSET_E_PARSE, "starts with F");
    char *v = asset_alloc(n + 1);
    if (!v) return ASSET_E_NO_MEMORY;
    memcpy(v, d, n + 1);
    asset_parse_set_value(p, v, n + 1);
    return ASSET_OK;
}

static const char *const fzl_suffixes[] = {".fz", NULL};

static void check_done_handle(asset_handle_t *h);
static void check_done_batch(asset_batch_t *b);

/* A wait inside a parse (its ctx is the server): "wait URI" loads URI and waits forever,
 * "wait0 URI" no time, "waitt URI" 3 ms, "waitm URI" / "waitf URI" wait forever for a
 * manifest / folder batch, "waitg URI URI..." for a group. Properties: a wait forever
 * returns with its handle or batch done, or BUSY (a ring: itself, its parents, or
 * another parse that waits for it; for a batch, also a child that joins it while it
 * waits, a folder's or manifest's listed ones, and closes a ring) or SHUTDOWN (destroy
 * began) or CANCELLED (the load this parse runs for was cancelled: asset_parse_cancelled
 * says so then, unless the handle or batch waited for is done, cancelled itself); never a
 * timeout of its own; a done handle or batch is whole (check_done_handle,
 * check_done_batch). */
static void fzg_wait(asset_server_t *s, asset_parse_t *p, const char *line) {
    const char *sp = strchr(line, ' ');
    if (!sp) return;
    char kind = line[4]; /* ' ', '0', 't', 'm', 'f', 'g' */
    int64_t t = kind == '0' ? 0 : kind == 't' ? 3 : -1;
    if (kind == 'm' || kind == 'f' || kind == 'g') {
        char rest[64];
        const char *u[4];
        size_t k = 0;
        snprintf(rest, sizeof rest, "%s", sp + 1);
        for (char *tok = rest; *tok && k < 4;) { /* not strtok: parses run on two workers */
            char *end = tok + strcspn(tok, " ");
            bool last = !*end;
            *end = 0;
            if (*tok) u[k++] = tok;
            tok = last ? end : end + 1;
        }
        if (!k) return;
        asset_batch_t *b = kind == 'm'   ? asset_server_load_manifest(s, u[0], NULL)
                           : kind == 'f' ? asset_server_load_folder(s, u[0], NULL)
                                         : asset_server_load_group(s, u, k, NULL);
        CHECK(b);
        asset_status_t st = asset_batch_wait(b, -1);
        if (st != ASSET_E_BUSY && st != ASSET_E_SHUTDOWN && st != ASSET_E_CANCELLED)
            CHECK(asset_batch_is_done(b));
        if (st == ASSET_E_CANCELLED) CHECK(asset_batch_is_done(b) || asset_parse_cancelled(p));
        if (asset_batch_is_done(b)) check_done_batch(b);
        asset_batch_release(b);
        return;
    }
    asset_handle_t *h = asset_server_load(s, sp + 1, NULL);
    CHECK(h);
    asset_status_t st = asset_handle_wait(h, t);
    if (t < 0 && st != ASSET_E_BUSY && st != ASSET_E_SHUTDOWN && st != ASSET_E_CANCELLED)
        CHECK(asset_handle_is_done(h));
    if (t < 0 && st == ASSET_E_CANCELLED)
        CHECK(asset_handle_is_done(h) || asset_parse_cancelled(p));
    if (asset_handle_is_done(h)) check_done_handle(h);
    asset_handle_release(h);
}

/* "fzg" (.fzg): the asset graph. Lines: "dep URI", "opt URI" (asset_parse_depend),
 * "deps URI URI..." (asset_parse_depend_many; "-" is a NULL), "label NAME", "pend"
 * (finalize returns PENDING once per such line), "finfail", "wait..." (fzg_wait); values
 * are freed on the flush thread and replaced by finalize. */
static asset_status_t fzg_parse(void *ctx, asset_parse_t *p) {
    const char *text = (const char *)asset_parse_data(p);
    char line[64];
    unsigned pend = 0;
    for (const char *c = text; *c;) {
        size_t n = strcspn(c, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < 63 ? n : 63), c);
        c += n + (c[n] == '\n');
        if (!strncmp(line, "dep ", 4) || !strncmp(line, "opt ", 4)) {
            asset_load_options_t o = {0};
            o.optional = line[0] == 'o';
            if (!asset_parse_depend(p, line + 4, &o))
                return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        } else if (!strncmp(line, "deps ", 5)) {
            const char *u[8];
            size_t k = 0, want = 0;
            for (char *t = line + 5; *t && k < 8;) {
                char *end = t + strcspn(t, " ");
                bool last = !*end;
                *end = 0;
                u[k] = strcmp(t, "-") ? t : NULL;
                want += u[k++] != NULL;
                t = last ? end : end + 1;
            }
            if (asset_parse_depend_many(p, u, k, NULL, NULL) != want)
                return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        } else if (!strncmp(line, "label ", 6)) {
            char *v = asset_alloc(8);
            if (!v) return ASSET_E_NO_MEMORY;
            memcpy(v, "labeled", 8);
            if (asset_parse_add_labeled(p, line + 6, v, 8, NULL, NULL) != ASSET_OK) asset_free(v);
        } else if (!strcmp(line, "pend")) {
            pend++;
        } else if (!strncmp(line, "wait", 4)) {
            fzg_wait(ctx, p, line);
        }
    }
    unsigned *v = asset_alloc(sizeof *v + 8);
    if (!v) return ASSET_E_NO_MEMORY;
    v[0] = pend | (strstr(text, "finfail") ? 0x100u : 0u);
    asset_parse_set_value(p, v, sizeof *v);
    return ASSET_OK;
}

static asset_status_t fzg_finalize(void *ctx, asset_finalize_t *f) {
    (void)ctx;
    unsigned *v = asset_finalize_value(f);
    for (size_t i = 0; i < asset_finalize_dependency_count(f); i++)
        CHECK(asset_handle_is_done(asset_finalize_dependency(f, i)));
    if (v[0] & 0xffu) {
        v[0]--;
        return ASSET_PENDING;
    }
    if (v[0] & 0x100u) return asset_finalize_fail(f, ASSET_E_IO, "upload failed");
    unsigned *gpu = asset_alloc(sizeof *gpu);
    if (!gpu) return ASSET_E_NO_MEMORY;
    *gpu = 0x6770u;
    asset_finalize_set_value(f, gpu, sizeof *gpu);
    return ASSET_OK;
}

static const char *const fzg_suffixes[] = {".fzg", NULL};

static const asset_embedded_file_t k_emb[] = {
    {"x.json", "{\"emb\": true}", 13},
    {"sub/y.txt", "why", 3},
    {"m.json", "[\"x.json\", \"sub/y.txt\", \"mem://b\", \"file:///x.json\"]", 48},
};

static void on_log(int level, const char *msg, void *user) {
    (void)level;
    (void)user;
    CHECK(msg != NULL);
}

/* ---- callbacks ---- */

typedef struct cb_rec {
    uint64_t id;
    int kind; /* 0: count; 1: release the extra reference; 2: load and release; 3: flush */
    int fired;
    bool disconnected;
    bool reloaded;    /* a reloaded callback (kind: 0 count, 1 reload again, 2 flush,
                         3 disconnect itself); it fires any number of times */
    uint64_t version; /* the handle's version when it last fired */
    asset_server_t *s;
    asset_handle_t *h; /* a reference, so the end can wait for it */
} cb_rec_t;

static cb_rec_t g_cbs[NCB];
static size_t g_ncb;

static void on_done(asset_handle_t *h, void *user) {
    cb_rec_t *c = user;
    CHECK(asset_handle_is_done(h));
    CHECK(!c->disconnected);
    c->fired++;
    CHECK(c->fired == 1);
    switch (c->kind) {
    case 1: asset_handle_release(h); break;
    case 2: asset_handle_release(asset_server_load(c->s, "mem://a.json", NULL)); break;
    case 3: CHECK(asset_server_flush(c->s) == 0); break;
    default: break;
    }
}

/* A reloaded callback: its handle stays LOADED with a value, its version never goes
 * back, and a failed reload says why. */
static void on_reloaded(asset_handle_t *h, void *user) {
    cb_rec_t *c = user;
    CHECK(!c->disconnected);
    CHECK(asset_handle_state(h) == ASSET_STATE_LOADED);
    CHECK(asset_handle_value(h) != NULL);
    uint64_t v = asset_handle_version(h);
    CHECK(v >= 1 && v >= c->version);
    c->version = v;
    if (asset_handle_reload_error(h) != ASSET_OK) CHECK(asset_handle_error_message(h)[0]);
    c->fired++;
    switch (c->kind) {
    case 1:
        if (c->fired < 3) asset_server_reload(c->s, asset_handle_uri(h)); /* bounded */
        break;
    case 2: CHECK(asset_server_flush(c->s) == 0); break;
    case 3: c->disconnected = asset_handle_disconnect(h, c->id); break;
    default: break;
    }
}

static uint64_t reload_count(asset_server_t *s) {
    asset_stats_t st;
    asset_server_stats(s, &st);
    return st.reloads + st.reload_failures;
}

/* Reloads h's URI; wait: when h is LOADED, flushes until its reload (or another) is
 * published: a reload of a live LOADED handle reaches a flush. */
static void reload_handle(asset_server_t *s, asset_handle_t *h, bool wait) {
    wait = wait && asset_handle_state(h) == ASSET_STATE_LOADED;
    uint64_t before = wait ? reload_count(s) : 0;
    asset_server_reload(s, asset_handle_uri(h));
    struct timespec t0, now, pause = {0, 20000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (wait) {
        asset_server_flush(s);
        if (reload_count(s) > before) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        CHECK(now.tv_sec - t0.tv_sec < 5); /* lost, or a livelock */
        nanosleep(&pause, NULL);
    }
}

/* ---- introspection, dependencies, traces ---- */

static bool on_job(const asset_job_info_t *i, void *user) {
    CHECK(i->uri && i->loader && i->state);
    static const char *const states[] = {"queued", "running", "waiting_async", "waiting_deps",
                                         "finalizing"};
    bool known = false;
    for (size_t k = 0; k < sizeof states / sizeof *states; k++)
        known |= !strcmp(i->state, states[k]);
    CHECK(known);
    CHECK(i->priority >= ASSET_PRIORITY_HIGH && i->priority <= ASSET_PRIORITY_LOW);
    return *(const uint8_t *)user & 1; /* false: the walk stops */
}

static bool on_cached(const asset_cache_info_t *i, void *user) {
    CHECK(i->uri && i->loader);
    return *(const uint8_t *)user & 2;
}

static bool on_loader(const asset_loader_info_t *i, void *user) {
    CHECK(i->name && i->parse_failures <= i->parses);
    return *(const uint8_t *)user & 4;
}

/* h's dependencies as the graph lends them: a labeled handle has none; a LOADED parent's
 * are all done (LOADED, or failed when optional); past the end of a done h's is NULL
 * (a LOADING h's may still grow: a worker's parse declares them meanwhile). The state is
 * read first: done before the count, the count is final until the next flush (this
 * thread's). */
static void check_dependencies(asset_handle_t *h) {
    bool done = asset_handle_is_done(h);
    bool loaded = done && asset_handle_state(h) == ASSET_STATE_LOADED;
    size_t n = asset_handle_dependency_count(h);
    if (loaded && strchr(asset_handle_uri(h), '#')) CHECK(n == 0);
    for (size_t i = 0; i < n; i++) {
        asset_handle_t *d = asset_handle_dependency(h, i);
        CHECK(d && asset_handle_uri(d));
        if (loaded) CHECK(asset_handle_is_done(d));
        (void)asset_handle_dependency_count(d); /* its own, lent while it lives */
    }
    if (done) CHECK(asset_handle_dependency(h, n) == NULL);
}

/* The recorder's events: each from a thread, with its URI and loader. */
static void check_trace(asset_trace_t *tr) {
    size_t n = asset_trace_count(tr);
    for (size_t i = 0; i < n; i++) {
        asset_trace_event_t e;
        CHECK(asset_trace_event(tr, i, &e));
        CHECK(e.uri && e.loader && e.thread);
        CHECK(e.phase >= ASSET_TRACE_QUEUED && e.phase <= ASSET_TRACE_DELIVERED);
    }
    asset_trace_event_t e;
    CHECK(!asset_trace_event(tr, n, &e));
}

static void check_done_handle(asset_handle_t *h) {
    CHECK(asset_handle_is_done(h));
    asset_state_t st = asset_handle_state(h);
    if (st == ASSET_STATE_LOADED) {
        CHECK(asset_handle_error(h) == ASSET_OK);
        CHECK(asset_handle_value(h) != NULL);
        CHECK(asset_handle_progress(h) == 1.0f);
    } else {
        CHECK(st == ASSET_STATE_FAILED || st == ASSET_STATE_CANCELLED);
        CHECK(asset_handle_error(h) != ASSET_OK);
        CHECK(asset_handle_error_message(h)[0]);
        CHECK(asset_handle_value(h) == NULL);
    }
}

static void check_done_batch(asset_batch_t *b) {
    CHECK(asset_batch_is_done(b));
    size_t n = asset_batch_total(b);
    CHECK(asset_batch_completed_count(b) + asset_batch_failed_count(b) +
              asset_batch_cancelled_count(b) ==
          n);
    CHECK(asset_batch_progress(b) == 1.0f);
    if (asset_batch_error(b) != ASSET_OK) CHECK(asset_batch_error_message(b)[0]);
    for (size_t i = 0; i < n; i++) check_done_handle(asset_batch_handle(b, i));
}

/* ---- one input ---- */

static void load_options(in_t *in, asset_load_options_t *o) {
    uint8_t f = byte(in);
    memset(o, 0, sizeof *o);
    o->priority = (asset_priority_t)(f % 5);
    o->no_cache = f & 0x08;
    o->non_recursive = f & 0x10;
    o->tag = PICK(in, k_tags);
    o->loader = PICK(in, k_loaders);
    if (f & 0x20) o->timeout_ms = 1 + byte(in) % 32;
}

static void uri_from(in_t *in, char *out, size_t cap) {
    uint8_t how = byte(in) % 4;
    char tail[40];
    if (how == 3) { /* raw bytes */
        text(in, out, cap);
        return;
    }
    snprintf(out, cap, "%s", PICK(in, k_uris));
    if (how == 2) {
        text(in, tail, sizeof tail);
        strncat(out, tail, cap - strlen(out) - 1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR"); /* fuzz/run.sh gives each target one it removes */
    snprintf(g_root, sizeof g_root, "%s/asset_fuzz_server_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_root)) abort();
    char path[4200];
    snprintf(path, sizeof path, "%s/sub", g_root);
    if (mkdir(path, 0755) != 0) abort();
    const char *files[][2] = {{"x.json", "{\"file\": 1}"},
                              {"sub/f.json", "[\"../x.json\", \"g.bin\", \"mem://b\"]"},
                              {"sub/g.bin", "\x01\x02\x03"}};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", g_root, files[i][0]);
        FILE *f = fopen(path, "w");
        if (!f || fputs(files[i][1], f) < 0 || fclose(f) != 0) abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    in_t in = {data, size};
    uint8_t c0 = byte(&in), c1 = byte(&in);
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1 + c0 % 2;
    cfg.cache_budget = (c0 & 0x02) ? 64 : 0; /* tiny: evictions */
    cfg.max_asset_size = (c0 & 0x04) ? 24 : 1 << 16;
    cfg.json_allow_invalid_utf8 = c0 & 0x08;
    cfg.file_root = g_root;
    cfg.pkg_path = "";
    cfg.log = on_log;
    cfg.manifest_schemes = k_rules[c1 % (sizeof k_rules / sizeof *k_rules)];
    asset_trace_t *tr = (c0 & 0x20) ? asset_trace_create() : NULL;
    if (tr) {
        cfg.trace = asset_trace_record;
        cfg.trace_user = tr;
    }
    asset_server_t *s = asset_server_create(&cfg);
    CHECK(s);
    const char *schemes[] = {"http", "https"};
    for (int i = 0; i < 2; i++) {
        asset_source_t src = {ASSET_SOURCE_ABI, schemes[i], 0, no_network, NULL, NULL};
        CHECK(asset_server_register_source(s, &src, NULL) == ASSET_OK);
    }
    asset_source_t fz = {ASSET_SOURCE_ABI, "fz", (c0 & 0x10) ? ASSET_SOURCE_IMMUTABLE : 0u,
                         fz_read,          NULL, NULL};
    CHECK(asset_server_register_source(s, &fz, NULL) == ASSET_OK);
    asset_loader_t fzl = {1, "fzl", fzl_suffixes, NULL, fzl_parse, NULL, NULL, 0, NULL};
    CHECK(asset_server_register_loader(s, &fzl, NULL, 0) == ASSET_OK);
    asset_loader_t fzg = {ASSET_LOADER_ABI, "fzg", fzg_suffixes, NULL,
                          fzg_parse,        NULL,  NULL,         ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                          fzg_finalize};
    CHECK(asset_server_register_loader(s, &fzg, s, 0) == ASSET_OK);
    CHECK(asset_server_mount_embedded(s, "emb", k_emb, sizeof k_emb / sizeof *k_emb) == ASSET_OK);

    asset_handle_t *hs[NH] = {0};
    asset_batch_t *bs[NB] = {0};
    g_ncb = 0;
    char uri[96], buf[40];
    for (int op = 0; op < MAX_OPS && in.n; op++) {
        uint8_t code = byte(&in);
        size_t slot = byte(&in) % NH;
        asset_handle_t *h = hs[slot];
        asset_load_options_t o;
        switch (code % 16) {
        case 0: { /* put */
            const char *key = PICK(&in, k_keys);
            if (byte(&in) & 1) {
                size_t n = text(&in, buf, sizeof buf);
                CHECK(asset_mem_put(s, key, buf, n) == ASSET_OK);
            } else {
                const char *c = PICK(&in, k_contents);
                CHECK(asset_mem_put(s, key, c, strlen(c)) == ASSET_OK);
            }
            break;
        }
        case 1: asset_mem_remove(s, PICK(&in, k_keys)); break;
        case 2: /* load */
            uri_from(&in, uri, sizeof uri);
            load_options(&in, &o);
            asset_handle_release(h);
            hs[slot] = asset_server_load(s, uri, &o);
            CHECK(hs[slot]);
            break;
        case 3: asset_handle_cancel(h); break;
        case 4:
            asset_handle_release(h);
            hs[slot] = NULL;
            break;
        case 5: asset_server_cancel_tag(s, (byte(&in) & 1) ? "t1" : "t2", h); break;
        case 6: asset_server_flush(s); break;
        case 7: asset_server_flush_budget(s, byte(&in)); break;
        case 8:
            if (h) {
                bool forever = byte(&in) & 1;
                (void)asset_handle_wait(h, forever ? -1 : 0);
                if (forever || asset_handle_is_done(h)) check_done_handle(h);
                check_dependencies(h);
            }
            break;
        case 9:
        case 10: { /* manifest, folder */
            size_t b = slot % NB;
            load_options(&in, &o);
            if (code % 16 == 9) {
                uri_from(&in, uri, sizeof uri);
                if (byte(&in) & 1) snprintf(uri, sizeof uri, "mem://m.json");
            } else {
                snprintf(uri, sizeof uri, "%s", PICK(&in, k_folders));
            }
            asset_batch_release(bs[b]);
            bs[b] = code % 16 == 9 ? asset_server_load_manifest(s, uri, &o)
                                   : asset_server_load_folder(s, uri, &o);
            CHECK(bs[b]);
            break;
        }
        case 11: { /* group */
            size_t b = slot % NB, n = byte(&in) % 4;
            char u[3][96];
            const char *us[3];
            for (size_t i = 0; i < n; i++) {
                uri_from(&in, u[i], sizeof u[i]);
                us[i] = u[i];
            }
            load_options(&in, &o);
            asset_batch_release(bs[b]);
            bs[b] = asset_server_load_group(s, n ? us : NULL, n, &o);
            CHECK(bs[b]);
            break;
        }
        case 12: {
            size_t b = slot % NB;
            if (byte(&in) & 1) {
                asset_batch_cancel(bs[b]);
            } else {
                asset_batch_release(bs[b]);
                bs[b] = NULL;
            }
            break;
        }
        case 13: { /* invalidate, clear, hot reload */
            uint8_t how = byte(&in) % 4;
            if (how == 0 || how == 2) {
                uri_from(&in, uri, sizeof uri);
                uint8_t f = byte(&in);
                if (how == 0)
                    asset_server_invalidate(s, uri);
                else if (!(f & 1) || !h)
                    asset_server_reload(s, uri);
                else
                    reload_handle(s, h, f & 2);
            } else if (how == 1) {
                asset_server_clear_caches(s);
            } else if (h && g_ncb < NCB) { /* a reloaded callback */
                cb_rec_t *c = &g_cbs[g_ncb++];
                memset(c, 0, sizeof *c);
                c->reloaded = true;
                c->kind = byte(&in) % 4;
                c->s = s;
                c->h = asset_handle_retain(h);
                c->id = asset_handle_on_reloaded(h, on_reloaded, c);
                CHECK(c->id);
            }
            break;
        }
        case 14: /* callbacks */
            if (h && g_ncb < NCB) {
                cb_rec_t *c = &g_cbs[g_ncb];
                memset(c, 0, sizeof *c);
                c->kind = byte(&in) % 4;
                c->s = s;
                c->h = asset_handle_retain(h);
                if (c->kind == 1) asset_handle_retain(h); /* the callback releases it */
                c->id = asset_handle_on_completed(h, on_done, c);
                CHECK(c->id);
                g_ncb++;
                if (byte(&in) % 4 == 0 && asset_handle_disconnect(h, c->id)) {
                    c->disconnected = true;
                    if (c->kind == 1) asset_handle_release(h);
                }
            }
            break;
        default: /* getters */
            if (h) {
                asset_handle_release(asset_handle_retain(h));
                (void)asset_handle_state(h);
                float p = asset_handle_progress(h);
                CHECK(p >= 0.0f && p <= 1.0f);
                CHECK(asset_handle_uri(h));
                CHECK(asset_handle_error_message(h));
                (void)asset_handle_size(h);
                (void)asset_handle_http_status(h);
                check_dependencies(h);
            }
            uint8_t walk = code >> 4; /* no byte of its own: the seeds read as before */
            asset_server_foreach_job(s, on_job, &walk);
            asset_server_foreach_cached(s, on_cached, &walk);
            asset_server_foreach_loader(s, on_loader, &walk);
            if (tr && (walk & 8)) /* the hook off and on again while loads run */
                asset_server_set_trace(s, (walk & 1) ? asset_trace_record : NULL, tr);
            if (bs[slot % NB]) {
                float p = asset_batch_progress(bs[slot % NB]);
                CHECK(p >= 0.0f && p <= 1.0f);
                (void)asset_batch_value(bs[slot % NB], "a.json");
            }
            asset_stats_t st;
            asset_server_stats(s, &st);
            break;
        }
    }
    if (!(c1 & 0x80)) { /* else: destroy with everything in flight */
        for (size_t b = 0; b < NB; b++) {
            if (!bs[b]) continue;
            (void)asset_batch_wait(bs[b], -1); /* E_TIMEOUT here is the load's, not the wait's */
            check_done_batch(bs[b]);
        }
        for (size_t i = 0; i < NH; i++) {
            if (!hs[i]) continue;
            (void)asset_handle_wait(hs[i], -1);
            check_done_handle(hs[i]);
        }
        for (size_t i = 0; i < g_ncb; i++) {
            (void)asset_handle_wait(g_cbs[i].h, -1);
            CHECK(asset_handle_is_done(g_cbs[i].h));
        }
        asset_server_flush(s); /* callbacks connected after done fire here */
        for (size_t i = 0; i < g_ncb; i++)
            if (!g_cbs[i].disconnected && !g_cbs[i].reloaded) CHECK(g_cbs[i].fired == 1);
    }
    for (size_t i = 0; i < g_ncb; i++) asset_handle_release(g_cbs[i].h);
    for (size_t i = 0; i < NH; i++) asset_handle_release(hs[i]);
    for (size_t b = 0; b < NB; b++) asset_batch_release(bs[b]);
    asset_server_destroy(s);
    for (size_t i = 0; i < g_ncb; i++) CHECK(g_cbs[i].reloaded || g_cbs[i].fired <= 1);
    if (tr) { /* after the destroy: the hook is never called again */
        check_trace(tr);
        char path[4200]; /* a file (written beside, synced, renamed) or a device, in place */
        snprintf(path, sizeof path, "%s/trace.json", g_root);
        CHECK(asset_trace_write_chrome_json(tr, (c1 & 0x40) ? path : "/dev/null") == ASSET_OK);
        asset_trace_destroy(tr);
    }
    return 0;
}
