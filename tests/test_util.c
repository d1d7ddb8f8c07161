/* test_util.c - see test_util.h. */
#include "test_util.h"
#include "internal.h"
#include "platform/platform.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "tu_os.h"

const char *tu_srcdir(void) {
    const char *dir = getenv("ASSET_TEST_SRCDIR");
    return dir != NULL && dir[0] != '\0' ? dir : ".";
}

void tu_only_filter(void) {
    /* cmocka keeps the pointer: a copy, which no later setenv() can move */
    static char pattern[512];
    const char *only = getenv("TU_ONLY");
    if (only == NULL || only[0] == '\0') {
        return;
    }
    if (strlen(only) >= sizeof pattern) {
        fprintf(stderr, "TU_ONLY: longer than %zu characters\n", sizeof pattern - 1);
        exit(2);
    }
    strcpy(pattern, only);
    cmocka_set_test_filter(pattern);
}

char *tu_path(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", dir, rel);
    return p;
}

static void mkparents(char *path) {
    for (char *c = path + 1; *c; c++) {
        if (*c == '/') {
            *c = 0;
            tu_os_mkdir(path);
            *c = '/';
        }
    }
}

char *tu_write_file(const char *dir, const char *rel, const void *data, size_t n) {
    char *p = tu_path(dir, rel);
    mkparents(p);
    FILE *f = tu_os_fopen(p, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(p);
        abort();
    }
    return p;
}

char *tu_write_pattern(const char *dir, const char *rel, size_t n) {
    unsigned char *d = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) d[i] = (unsigned char)(i * 31 + 7);
    char *p = tu_write_file(dir, rel, d, n);
    free(d);
    return p;
}

void tu_expect_pattern(const void *d, size_t n) {
    const unsigned char *b = d;
    for (size_t k = 0; k < n; k++)
        if (b[k] != (unsigned char)(k * 31 + 7)) fail_msg("byte %zu of %zu differs", k, n);
    assert_int_equal(b[n], 0);
}

int tu_map_pattern(const char *dir, const char *rel, size_t n, char **path, void **data,
                   void **token) {
    *path = tu_write_pattern(dir, rel, n);
    *data = *token = NULL;
    asset__file_t *f = NULL;
    assert_int_equal(asset__file_open(*path, &f), 0);
    int rc = asset__file_map(f, n, data, token);
    asset__file_close(f);
    return rc;
}

char *tu_file_uri(const char *path) {
    size_t n = strlen(path) + 9;
    char *u = malloc(n);
    /* "file:///abs" and, for a path with a drive, "file:///C:/abs" */
    snprintf(u, n, "file://%s%s", path[0] == '/' ? "" : "/", path);
    return u;
}

asset_status_t tu_wait(asset_handle_t *h) { return asset_handle_wait(h, 60000); }

static const char *state_name(asset_state_t st) {
    static const char *const names[] = {"PENDING", "LOADING", "LOADED", "FAILED", "CANCELLED"};
    return (unsigned)st < sizeof names / sizeof *names ? names[st] : "?";
}

void tu_expect_end_at(const char *file, int line, asset_handle_t *h, asset_status_t want,
                      asset_state_t state, const char *part) {
    asset_status_t st = tu_wait(h);
    asset_state_t got = asset_handle_state(h);
    const char *m = asset_handle_error_message(h);
    if (st == want && got == state && (!part || (m && strstr(m, part)))) return;
    const char *uri = asset_handle_uri(h);
    print_error("%s:%d: %s ended %s, %s, message \"%s\"; expected %s, %s, message "
                "containing \"%s\"\n",
                file, line, uri ? uri : "(no handle)", asset_err_name(st), state_name(got),
                m ? m : "", asset_err_name(want), state_name(state), part ? part : "");
    _fail(file, line);
}

void tu_spin_failed(const char *file, int line, const char *cond) {
    print_error("%s:%d: still not %s after %d ms\n", file, line, cond, TU_SPIN_MS);
    _fail(file, line);
}

asset_server_t *tu_server(unsigned workers) {
    asset_server_config_t cfg = {0};
    cfg.max_workers = workers;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    return s;
}

void tu_wait_queued(asset_server_t *s, size_t n) {
    uv_mutex_lock(&s->lock);
    while (s->q_len < n) {
        s->waiters++;
        uv_cond_wait(&s->done_cond, &s->lock);
        s->waiters--;
    }
    uv_mutex_unlock(&s->lock);
}

bool tu_stopping(asset_server_t *s) {
    uv_mutex_lock(&s->lock);
    bool v = s->stopping;
    uv_mutex_unlock(&s->lock);
    return v;
}

bool tu_reloads_idle_locked(const asset_server_t *s) {
    return !s->reloads_running && !s->reload_ntodo && !s->reload_claims;
}

bool tu_io_post(asset_server_t *s, void (*fn)(void *arg), void *arg) {
    uv_mutex_lock(&s->lock);
    asset__io_t *io = s->io;
    uv_mutex_unlock(&s->lock);
    if (!io) return false;
    assert_true(asset__io_post(io, fn, arg));
    return true;
}

asset_handle_t *tu_load_wait(asset_server_t *s, const char *uri, asset_status_t want) {
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    assert_non_null(h);
    asset_status_t st = tu_wait(h);
    if (st != want)
        fail_msg("load(%s) = %s (%s), expected %s", uri, asset_err_name(st),
                 asset_handle_error_message(h), asset_err_name(want));
    return h;
}

void tu_expect_bytes(asset_handle_t *h, const void *data, size_t n) {
    const asset_bytes_t *b = asset_handle_value(h);
    assert_non_null(b);
    assert_int_equal(b->size, n);
    if (n) assert_memory_equal(b->data, data, n);
    assert_int_equal(b->data[n], 0);
}

void tu_expect_text(asset_handle_t *h, const char *text) { tu_expect_bytes(h, text, strlen(text)); }

/* ---- gate source ---- */

struct tu_gate {
    uv_mutex_t mu;
    uv_cond_t cond;
    int entered, cancelled_seen;
    int open;
};

static asset_status_t gate_read(void *ctx, asset_request_t *r) {
    tu_gate_t *g = ctx;
    uv_mutex_lock(&g->mu);
    g->entered++;
    uv_cond_broadcast(&g->cond);
    while (!g->open) {
        if (asset_request_cancelled(r)) {
            g->cancelled_seen++;
            uv_mutex_unlock(&g->mu);
            return ASSET_E_CANCELLED;
        }
        /* the gate is opened by the test; cancel is polled (a source has no other way
         * to hear about it), 1 ms at a time */
        (void)uv_cond_timedwait(&g->cond, &g->mu, 1000000);
    }
    uv_mutex_unlock(&g->mu);
    const char *path = asset_request_path(r);
    if (!strncmp(path, "fail/", 5)) return asset_request_fail(r, ASSET_E_IO, "gate told to fail");
    asset_request_set_total(r, strlen(path));
    return asset_request_write(r, path, strlen(path));
}

tu_gate_t *tu_gate_register(asset_server_t *s, const char *scheme) {
    tu_gate_t *g = calloc(1, sizeof *g);
    uv_mutex_init(&g->mu);
    uv_cond_init(&g->cond);
    asset_source_t src = {ASSET_SOURCE_ABI, scheme, 0, gate_read, NULL, NULL};
    if (asset_server_register_source(s, &src, g) != ASSET_OK) abort();
    return g;
}

void tu_gate_wait_entered(tu_gate_t *g, int n) {
    if (tu_gate_wait_entered_for(g, n, 60000)) return;
    fprintf(stderr, "tu_gate_wait_entered: %d of %d reads entered in 60 s\n", tu_gate_entered(g),
            n);
    abort();
}

bool tu_gate_wait_entered_for(tu_gate_t *g, int n, unsigned ms) {
    uint64_t deadline = uv_hrtime() + (uint64_t)ms * 1000000u;
    uv_mutex_lock(&g->mu);
    for (uint64_t now = uv_hrtime(); g->entered < n && now < deadline; now = uv_hrtime())
        (void)uv_cond_timedwait(&g->cond, &g->mu, deadline - now);
    bool ok = g->entered >= n;
    uv_mutex_unlock(&g->mu);
    return ok;
}

int tu_gate_entered(tu_gate_t *g) {
    uv_mutex_lock(&g->mu);
    int n = g->entered;
    uv_mutex_unlock(&g->mu);
    return n;
}

int tu_gate_cancelled_seen(tu_gate_t *g) {
    uv_mutex_lock(&g->mu);
    int n = g->cancelled_seen;
    uv_mutex_unlock(&g->mu);
    return n;
}

void tu_gate_open(tu_gate_t *g) {
    uv_mutex_lock(&g->mu);
    g->open = 1;
    uv_cond_broadcast(&g->cond);
    uv_mutex_unlock(&g->mu);
}

void tu_gate_free(tu_gate_t *g) {
    if (!g) return;
    uv_cond_destroy(&g->cond);
    uv_mutex_destroy(&g->mu);
    free(g);
}

/* ---- counting loader ---- */

typedef struct counting {
    tu_counter_t *c;
    const char *suffixes[2];
} counting_t;

static asset_status_t count_parse(void *ctx, asset_parse_t *p) {
    tu_counter_t *c = ctx;
    __atomic_fetch_add(&c->parses, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->fail_parse, __ATOMIC_SEQ_CST))
        return asset_parse_fail(p, ASSET_E_PARSE, "counting loader told to fail");
    size_t n = asset_parse_size(p);
    asset_bytes_t *v = asset_alloc(sizeof *v + n + 1);
    if (!v) return ASSET_E_NO_MEMORY;
    uint8_t *d = (uint8_t *)(v + 1);
    memcpy(d, asset_parse_data(p), n + 1);
    v->data = d;
    v->size = n;
    asset_parse_set_value(p, v, n ? n : 1);
    return ASSET_OK;
}

static void count_free(void *ctx, void *value) {
    tu_counter_t *c = ctx;
    __atomic_fetch_add(&c->frees, 1, __ATOMIC_SEQ_CST);
    asset_free(value);
}

int tu_counting_loader_register(asset_server_t *s, const char *name, const char *suffix,
                                tu_counter_t *c, size_t budget) {
    /* the suffix table must outlive the server: keep one per process per name */
    static const char *tables[16][2];
    static int ntables;
    const char *const *suffixes = NULL;
    if (suffix) {
        int i = __atomic_fetch_add(&ntables, 1, __ATOMIC_SEQ_CST) % 16;
        tables[i][0] = suffix;
        tables[i][1] = NULL;
        suffixes = tables[i];
    }
    asset_loader_t ld = {ASSET_LOADER_ABI, name, suffixes, NULL, count_parse,
                         count_free,       NULL, 0,        NULL};
    return asset_server_register_loader(s, &ld, c, budget);
}

int tu_counter_parses(tu_counter_t *c) { return __atomic_load_n(&c->parses, __ATOMIC_SEQ_CST); }
int tu_counter_frees(tu_counter_t *c) { return __atomic_load_n(&c->frees, __ATOMIC_SEQ_CST); }

char *tu_asset_strndup(const char *s, size_t n) {
    char *d = asset_alloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

size_t tu_split_words(char *line, const char **words, size_t max, size_t *nonnull) {
    size_t n = 0;
    *nonnull = 0;
    for (char *t = line; *t && n < max;) {
        char *end = t + strcspn(t, " ");
        bool last = !*end;
        *end = 0;
        words[n] = strcmp(t, "-") ? t : NULL;
        *nonnull += words[n++] != NULL;
        t = last ? end : end + 1;
    }
    return n;
}

bool tu_next_line(const char **cursor, char *line, size_t cap) {
    const char *c = *cursor;
    if (!*c) return false;
    size_t n = strcspn(c, "\n");
    snprintf(line, cap, "%.*s", (int)n, c);
    *cursor = c + n + (c[n] == '\n');
    return true;
}

asset_status_t tu_dep_note_parse(void *ctx, asset_parse_t *p) {
    const char *t = (const char *)asset_parse_data(p);
    if (!strncmp(t, "dep ", 4)) {
        char ref[128];
        snprintf(ref, sizeof ref, "%.*s", (int)strcspn(t + 4, "\n"), t + 4);
        asset_handle_t *d = asset_parse_depend(p, ref, NULL);
        if (!d) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        snprintf((char *)ctx, 512, "%s", asset_handle_uri(d));
    }
    size_t n = asset_parse_size(p);
    char *v = asset_alloc(n + 1);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    memcpy(v, t, n + 1);
    asset_parse_set_value(p, v, n);
    return ASSET_OK;
}

asset_status_t tu_gated_parse(void *ctx, asset_parse_t *p) {
    tu_parse_gate_t *g = ctx;
    uv_mutex_lock(&g->mu);
    g->entered++;
    uv_cond_broadcast(&g->cond);
    while (!g->open) uv_cond_wait(&g->cond, &g->mu);
    uv_mutex_unlock(&g->mu);
    size_t n = asset_parse_size(p);
    char *v = asset_alloc(n + 1);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    memcpy(v, asset_parse_data(p), n + 1);
    asset_parse_set_value(p, v, n);
    return ASSET_OK;
}

void tu_gated_free(void *ctx, void *value) {
    (void)ctx;
    asset_free(value);
}

void tu_parse_gate_register(asset_server_t *s, tu_parse_gate_t *g) {
    *g = (tu_parse_gate_t){.entered = 0, .open = false};
    uv_mutex_init(&g->mu);
    uv_cond_init(&g->cond);
    static const char *const suffixes[] = {".gated", NULL};
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "gated",
                         .suffixes = suffixes,
                         .parse = tu_gated_parse,
                         .free_value = tu_gated_free};
    assert_int_equal(asset_server_register_loader(s, &ld, g, 0), ASSET_OK);
}

void tu_parse_gate_wait_entered(tu_parse_gate_t *g, int n) {
    uv_mutex_lock(&g->mu);
    TU_WAIT_UNTIL(g->entered >= n, &g->cond, &g->mu);
    uv_mutex_unlock(&g->mu);
}

void tu_parse_gate_open(tu_parse_gate_t *g) {
    uv_mutex_lock(&g->mu);
    g->open = true;
    uv_cond_broadcast(&g->cond);
    uv_mutex_unlock(&g->mu);
}

void tu_parse_gate_destroy(tu_parse_gate_t *g) {
    uv_cond_destroy(&g->cond);
    uv_mutex_destroy(&g->mu);
}
