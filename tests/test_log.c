/* test_log.c - config.log: WARN for every failed load (with its message), INFO for
 * reloads and mounts, DEBUG for evictions, coalesced loads and timeouts; silent for
 * cancellations; nothing without a log. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "test_util.h"

#define MAX_LINES 256

typedef struct logcap {
    uv_mutex_t lock;
    int level[MAX_LINES];
    char line[MAX_LINES][512];
    int n;
} logcap_t;

static void capture(int level, const char *msg, void *user) {
    logcap_t *c = user;
    uv_mutex_lock(&c->lock);
    if (c->n < MAX_LINES) {
        c->level[c->n] = level;
        snprintf(c->line[c->n], sizeof c->line[0], "%s", msg);
        c->n++;
    }
    uv_mutex_unlock(&c->lock);
}

/* How many lines at `level` contain `text`. */
static int count(logcap_t *c, int level, const char *text) {
    int k = 0;
    uv_mutex_lock(&c->lock);
    for (int i = 0; i < c->n; i++)
        if (c->level[i] == level && strstr(c->line[i], text)) k++;
    uv_mutex_unlock(&c->lock);
    return k;
}

static void dump(logcap_t *c) {
    for (int i = 0; i < c->n; i++) fprintf(stderr, "  log[%d] %s\n", c->level[i], c->line[i]);
}

static asset_server_t *log_server(logcap_t *c) {
    memset(c, 0, sizeof *c);
    uv_mutex_init(&c->lock);
    asset_server_config_t cfg = {.log = capture, .user = c, .max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    return s;
}

static void test_every_failed_load_is_a_warning_with_its_message(void **state) {
    (void)state;
    logcap_t c;
    asset_server_t *s = log_server(&c);
    asset_handle_t *a = tu_load_wait(s, "mem://missing", ASSET_E_NOT_FOUND);
    asset_handle_t *b = tu_load_wait(s, "nope://x", ASSET_E_NO_SOURCE);
    char want[600];
    snprintf(want, sizeof want, "load failed: %s", asset_handle_error_message(a));
    if (count(&c, ASSET_LOG_WARN, want) != 1) dump(&c);
    assert_int_equal(count(&c, ASSET_LOG_WARN, want), 1);
    assert_int_equal(count(&c, ASSET_LOG_WARN, "nope://x: no source registered"), 1);
    assert_int_equal(count(&c, ASSET_LOG_WARN, "load failed"), 2);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    uv_mutex_destroy(&c.lock);
}

static void test_cancelled_loads_are_not_warnings(void **state) {
    (void)state;
    logcap_t c;
    asset_server_t *s = log_server(&c);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *h = asset_server_load(s, "gate://slow", NULL);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    assert_int_equal(count(&c, ASSET_LOG_WARN, ""), 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_gate_free(g);
    uv_mutex_destroy(&c.lock);
}

static void test_mounts_are_info(void **state) {
    (void)state;
    logcap_t c;
    asset_server_t *s = log_server(&c);
    char *dir = tu_mkdtemp();
    assert_int_equal(asset_server_mount(s, "game", dir), ASSET_OK);
    static const asset_embedded_file_t files[] = {{"a.txt", "a", 1}, {"b.txt", "b", 1}};
    assert_int_equal(asset_server_mount_embedded(s, "emb", files, 2), ASSET_OK);
    char want[600];
    snprintf(want, sizeof want, "mounted game at %s", dir);
    assert_int_equal(count(&c, ASSET_LOG_INFO, want), 1);
    assert_int_equal(count(&c, ASSET_LOG_INFO, "mounted emb: 2 embedded files"), 1);
    /* a refused mount is not announced */
    assert_int_not_equal(asset_server_mount(s, "bad/name", dir), ASSET_OK);
    assert_int_equal(count(&c, ASSET_LOG_INFO, "mounted bad"), 0);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
    uv_mutex_destroy(&c.lock);
}

static void on_reloaded(asset_handle_t *h, void *user) {
    (void)h;
    (*(int *)user)++;
}

/* Flushes s until *reloads reaches n (blocking until something is queued), then checks
 * it is n. */
static void wait_reloads(asset_server_t *s, int *reloads, int n) {
    uint64_t deadline = uv_hrtime() + 30ull * 1000000000u;
    while (*reloads < n && uv_hrtime() < deadline) { /* flush; block until queued */
        asset_server_flush(s);
        uv_mutex_lock(&s->lock);
        if (!s->q_head && *reloads < n) {
            s->waiters++;
            uv_cond_timedwait(&s->done_cond, &s->lock, 100 * 1000000ull);
            s->waiters--;
        }
        uv_mutex_unlock(&s->lock);
    }
    assert_int_equal(*reloads, n);
}

/* A log_server (capturing into c) with the mem:// key put as text, loaded, and its
 * reloads counted in *reloads. */
static asset_server_t *loaded_counting_reloads(logcap_t *c, const char *key, const char *text,
                                               asset_handle_t **h, int *reloads) {
    asset_server_t *s = log_server(c);
    assert_int_equal(asset_mem_put(s, key, text, strlen(text)), ASSET_OK);
    char uri[64];
    snprintf(uri, sizeof uri, "mem://%s", key);
    *h = tu_load_wait(s, uri, ASSET_OK);
    *reloads = 0;
    assert_true(asset_handle_on_reloaded(*h, on_reloaded, reloads) != 0);
    return s;
}

static void test_reloads_are_info(void **state) {
    (void)state;
    logcap_t c;
    asset_handle_t *h;
    int reloads;
    asset_server_t *s = loaded_counting_reloads(&c, "cfg.txt", "v1", &h, &reloads);
    asset_server_reload(s, "mem://cfg.txt");
    wait_reloads(s, &reloads, 1);
    assert_int_equal(count(&c, ASSET_LOG_INFO, "reloaded mem://cfg.txt"), 1);
    asset_handle_release(h);
    asset_server_destroy(s);
    uv_mutex_destroy(&c.lock);
}

/* A failed reload is INFO too, as guide.md's table says (the handle keeps its value and
 * says why): logged at WARN, as a failed load is, every suite passed (thirty-third
 * review's mutations). */
static void test_a_failed_reload_is_info(void **state) {
    (void)state;
    logcap_t c;
    asset_handle_t *h;
    int reloads;
    asset_server_t *s = loaded_counting_reloads(&c, "cfg.json", "[1]", &h, &reloads);
    assert_int_equal(asset_mem_put(s, "cfg.json", "[1", 2), ASSET_OK);
    asset_server_reload(s, "mem://cfg.json");
    wait_reloads(s, &reloads, 1);
    assert_int_equal(asset_handle_reload_error(h), ASSET_E_PARSE);
    if (count(&c, ASSET_LOG_INFO, "reload failed: mem://cfg.json") != 1 ||
        count(&c, ASSET_LOG_WARN, "mem://cfg.json") != 0) {
        dump(&c);
        fail_msg("the failed reload is not one INFO line");
    }
    asset_handle_release(h);
    asset_server_destroy(s);
    uv_mutex_destroy(&c.lock);
}

static void test_evictions_coalesced_loads_and_timeouts_are_debug(void **state) {
    (void)state;
    logcap_t c;
    asset_server_t *s = log_server(&c);
    tu_gate_t *g = tu_gate_register(s, "gate");
    /* eviction: a budget that holds one of two equal values */
    assert_int_equal(asset_mem_put(s, "one", "11111111", 8), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "two", "22222222", 8), ASSET_OK);
    asset_handle_t *one = tu_load_wait(s, "mem://one", ASSET_OK);
    size_t cost = asset_handle_size(one);
    assert_int_equal(asset_server_set_cache_budget(s, "bytes", cost + cost / 2), ASSET_OK);
    asset_handle_t *two = tu_load_wait(s, "mem://two", ASSET_OK);
    char want[128];
    snprintf(want, sizeof want, "evicted mem://one from the bytes cache (%zu bytes)", cost);
    if (count(&c, ASSET_LOG_DEBUG, want) != 1) dump(&c);
    assert_int_equal(count(&c, ASSET_LOG_DEBUG, want), 1);
    /* coalesced: a second load of a URI in flight */
    asset_handle_t *a = asset_server_load(s, "gate://shared", NULL);
    asset_handle_t *b = asset_server_load(s, "gate://shared", NULL);
    assert_int_equal(count(&c, ASSET_LOG_DEBUG, "gate://shared: joined the load in flight"), 1);
    /* timeout: a third one waits 5 ms for a gate that stays shut */
    asset_load_options_t o = {.timeout_ms = 5};
    asset_handle_t *t = asset_server_load(s, "gate://shared", &o);
    assert_int_equal(tu_wait(t), ASSET_E_TIMEOUT);
    assert_int_equal(count(&c, ASSET_LOG_DEBUG, "gate://shared: timed out after 5 ms"), 1);
    assert_int_equal(count(&c, ASSET_LOG_WARN, "load failed: gate://shared: timed out"), 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(a), ASSET_OK);
    assert_int_equal(tu_wait(b), ASSET_OK);
    asset_handle_t *all[] = {one, two, a, b, t};
    for (size_t i = 0; i < 5; i++) asset_handle_release(all[i]);
    asset_server_destroy(s);
    tu_gate_free(g);
    uv_mutex_destroy(&c.lock);
}

/* The whole message reaches the log, however long: a failed load's line ends with its
 * reason, which a fixed 1 KiB buffer cut off after a long URI. */
typedef struct longcap {
    uv_mutex_t lock;
    char *warn; /* the last WARN line, whole */
} longcap_t;

static void capture_whole(int level, const char *msg, void *user) {
    longcap_t *c = user;
    if (level != ASSET_LOG_WARN) return;
    uv_mutex_lock(&c->lock);
    free(c->warn);
    c->warn = strdup(msg);
    uv_mutex_unlock(&c->lock);
}

/* A server (one worker) whose WARN lines c captures whole; longcap_done destroys both. */
static asset_server_t *longcap_server(longcap_t *c) {
    memset(c, 0, sizeof *c);
    uv_mutex_init(&c->lock);
    asset_server_config_t cfg = {.log = capture_whole, .user = c, .max_workers = 1};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    return s;
}
static void longcap_done(asset_server_t *s, longcap_t *c) {
    asset_server_destroy(s);
    free(c->warn);
    uv_mutex_destroy(&c->lock);
}

static void test_a_long_message_is_logged_whole(void **state) {
    (void)state;
    longcap_t c;
    asset_server_t *s = longcap_server(&c);
    char key[3000];
    memset(key, 'k', 2990);
    strcpy(key + 2990, ".json");
    assert_int_equal(asset_mem_put(s, key, "{bad", 4), ASSET_OK);
    char uri[3100];
    snprintf(uri, sizeof uri, "mem://%s", key);
    asset_handle_t *h = tu_load_wait(s, uri, ASSET_E_PARSE);
    const char *msg = asset_handle_error_message(h);
    assert_non_null(strstr(msg, "invalid JSON")); /* the reason, after the URI */
    char *want = malloc(strlen(msg) + 32);
    sprintf(want, "load failed: %s", msg);
    uv_mutex_lock(&c.lock);
    assert_non_null(c.warn);
    assert_string_equal(c.warn, want);
    uv_mutex_unlock(&c.lock);
    free(want);
    asset_handle_release(h);
    longcap_done(s, &c);
}

/* Twenty-first review: a parse failure's message names the loader ("<uri>: <name>
 * loader: <why>"), and the "<name> loader" part was formatted into 96 bytes: a loader
 * named past 88 characters lost the end of its name and the word "loader" in the
 * handle's message and in the WARN line (a name is any string). */
static asset_status_t failing_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    return asset_parse_fail(p, ASSET_E_PARSE, "bad header");
}

static void test_a_long_loader_name_is_logged_whole(void **state) {
    (void)state;
    longcap_t c;
    asset_server_t *s = longcap_server(&c);
    char name[201];
    memset(name, 'n', 199);
    name[199] = 'N'; /* the end of the name */
    name[200] = 0;
    static const char *const suffixes[] = {".bad", NULL};
    asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = name, .suffixes = suffixes, .parse = failing_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "x.bad", "x", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://x.bad", ASSET_E_PARSE);
    char want[300];
    snprintf(want, sizeof want, "mem://x.bad: %s loader: bad header", name);
    assert_string_equal(asset_handle_error_message(h), want);
    char line[320];
    snprintf(line, sizeof line, "load failed: %s", want);
    uv_mutex_lock(&c.lock);
    assert_non_null(c.warn);
    assert_string_equal(c.warn, line);
    uv_mutex_unlock(&c.lock);
    asset_handle_release(h);
    longcap_done(s, &c);
}

/* Lines of 1,023 to 1,025 bytes, about the 1 KiB stack buffer a line is formatted in
 * (1,023 bytes and its NUL): each whole. One of exactly 1,024 bytes is the first the
 * buffer cannot hold; taken as fitting (`>` for `>=`), it lost its last byte, and the
 * long-message test (3,000 bytes) passed anyway (thirty-third review's mutations). */
static void test_lines_about_the_stack_buffers_size_are_logged_whole(void **state) {
    (void)state;
    longcap_t c;
    asset_server_t *s = longcap_server(&c);
    static const char *const suffixes[] = {".bad", NULL};
    asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = "b", .suffixes = suffixes, .parse = failing_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    const char *head = "load failed: mem://", *tail = ": b loader: bad header";
    for (size_t len = 1023; len <= 1025; len++) {
        char key[1100], uri[1200], line[1200];
        size_t kl = len - strlen(head) - strlen(tail); /* the key's length, ".bad" in it */
        memset(key, 'k', kl - 4);
        strcpy(key + kl - 4, ".bad");
        assert_int_equal(asset_mem_put(s, key, "x", 1), ASSET_OK);
        snprintf(uri, sizeof uri, "mem://%s", key);
        snprintf(line, sizeof line, "%s%s%s", head, key, tail);
        assert_int_equal(strlen(line), len);
        asset_handle_t *h = tu_load_wait(s, uri, ASSET_E_PARSE);
        uv_mutex_lock(&c.lock);
        assert_non_null(c.warn);
        if (strcmp(c.warn, line))
            fail_msg("a line of %zu bytes logged as %zu bytes", len, strlen(c.warn));
        uv_mutex_unlock(&c.lock);
        asset_handle_release(h);
    }
    longcap_done(s, &c);
}

/* Thirty-seventh review: a URI or message's control bytes went raw into the line: a file
 * named "a\nWARN ..." logged a line of its own to a line-reading log, an ESC sequence
 * drove the terminal. They are written "\xNN" in the line (the handle's message keeps
 * them: it is the program's data); the short line on the stack and the long one on the
 * heap alike. */
static bool has_control(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

static void test_control_bytes_are_escaped_in_the_line(void **state) {
    (void)state;
    longcap_t c;
    asset_server_t *s = longcap_server(&c);
    char long_uri[2100];
    snprintf(long_uri, sizeof long_uri, "mem://%01500d\r\nforged\t.json", 7);
    const char *all[] = {"mem://evil\nforged line\x1b[2J\x7f.json", long_uri};
    for (int i = 0; i < 2; i++) {
        asset_handle_t *h = tu_load_wait(s, all[i], ASSET_E_NOT_FOUND);
        assert_non_null(strstr(asset_handle_error_message(h), i ? "\r\nforged\t" : "\nforged"));
        uv_mutex_lock(&c.lock);
        assert_non_null(c.warn);
        if (has_control(c.warn)) fail_msg("a control byte in the line: %s", c.warn);
        assert_non_null(strstr(c.warn, i ? "\\x0d\\x0aforged\\x09.json"
                                         : "evil\\x0aforged line\\x1b[2J\\x7f.json"));
        uv_mutex_unlock(&c.lock);
        asset_handle_release(h);
    }
    longcap_done(s, &c);
}

static void test_levels_are_the_documented_numbers(void **state) {
    (void)state;
    /* a log callback filters by number: the values are part of the API */
    assert_int_equal(ASSET_LOG_ERROR, 0);
    assert_int_equal(ASSET_LOG_WARN, 1);
    assert_int_equal(ASSET_LOG_INFO, 2);
    assert_int_equal(ASSET_LOG_DEBUG, 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_failed_load_is_a_warning_with_its_message),
        cmocka_unit_test(test_cancelled_loads_are_not_warnings),
        cmocka_unit_test(test_mounts_are_info),
        cmocka_unit_test(test_reloads_are_info),
        cmocka_unit_test(test_a_failed_reload_is_info),
        cmocka_unit_test(test_evictions_coalesced_loads_and_timeouts_are_debug),
        cmocka_unit_test(test_levels_are_the_documented_numbers),
        cmocka_unit_test(test_a_long_message_is_logged_whole),
        cmocka_unit_test(test_a_long_loader_name_is_logged_whole),
        cmocka_unit_test(test_lines_about_the_stack_buffers_size_are_logged_whole),
        cmocka_unit_test(test_control_bytes_are_escaped_in_the_line),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
