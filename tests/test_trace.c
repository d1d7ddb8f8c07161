/* test_trace.c - the trace hook (each load's phases with timestamps), the recorder and
 * its Chrome trace JSON, and introspection (jobs in flight, cache entries, loaders). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h> /* newlocale, uselocale on older SDKs */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "platform/platform.h" /* asset__file_sync_hook */
#include "test_util.h"
#include "tu_os.h"
#if !defined(_WIN32) && !defined(__EMSCRIPTEN__)
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#endif
#if defined(_WIN32)
#include <windows.h>
#endif

/* The process's allocator: malloc's, except that the next tl_fail_allocs allocations
 * of this thread fail (out of memory on demand). */
static _Thread_local int tl_fail_allocs;
/* When set, called (once) at this thread's next allocation, before it is made */
static _Thread_local void (*tl_on_alloc)(void);
static void *fail_alloc(size_t n, void *u) {
    (void)u;
    void (*on)(void) = tl_on_alloc;
    tl_on_alloc = NULL;
    if (on) on();
    if (tl_fail_allocs > 0) {
        tl_fail_allocs--;
        return NULL;
    }
    return malloc(n);
}
static void *fail_realloc(void *p, size_t n, void *u) {
    (void)u;
    if (tl_fail_allocs > 0) {
        tl_fail_allocs--;
        return NULL;
    }
    return realloc(p, n);
}
static void plain_free(void *p, void *u) {
    (void)u;
    free(p);
}

static int phases_of(asset_trace_t *tr, uint64_t id, asset_trace_phase_t *out, int max) {
    int n = 0;
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++)
        if (e.id == id && n < max) out[n++] = e.phase;
    return n;
}

static uint64_t id_of(asset_trace_t *tr, const char *uri, asset_trace_phase_t phase) {
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++)
        if (e.phase == phase && !strcmp(e.uri, uri)) return e.id;
    return 0;
}

/* The JSON document in the file at path (cJSON_Delete it); fails the test, showing the
 * file's start, when it is not JSON. */
static cJSON *read_json_file(const char *path) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cJSON *root = cJSON_Parse(buf);
    if (!root) fail_msg("not JSON: %.300s", buf);
    return root;
}

/* A recorder's Chrome JSON, written to a file in a new temporary directory and read
 * back (trace_file_free). */
typedef struct trace_file {
    char *dir, *path;
    cJSON *root;
    cJSON *evs; /* root's traceEvents */
} trace_file_t;

/* Stops s's tracing (s NULL: none), writes tr's Chrome JSON (asserting it was written)
 * and reads it. */
static trace_file_t trace_file_write(asset_server_t *s, asset_trace_t *tr) {
    asset_server_set_trace(s, NULL, NULL);
    trace_file_t t = {.dir = tu_mkdtemp()};
    t.path = tu_path(t.dir, "trace.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, t.path), ASSET_OK);
    t.root = read_json_file(t.path);
    t.evs = cJSON_GetObjectItem(t.root, "traceEvents");
    return t;
}

static void trace_file_free(trace_file_t *t) {
    cJSON_Delete(t->root);
    tu_rmrf(t->dir);
    free(t->path);
    free(t->dir);
}

static void test_a_load_reports_each_phase_in_order_with_one_id(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_server_config_t cfg = {.trace = asset_trace_record, .trace_user = tr};
    asset_server_t *s = asset_server_create(&cfg);
    assert_int_equal(asset_mem_put(s, "a.json", "{\"x\":1}", 7), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://a.json", ASSET_OK);
    uint64_t id = id_of(tr, "mem://a.json", ASSET_TRACE_QUEUED);
    assert_true(id != 0);
    asset_trace_phase_t ph[16];
    int n = phases_of(tr, id, ph, 16);
    asset_trace_phase_t want[] = {ASSET_TRACE_QUEUED,    ASSET_TRACE_READ_START,
                                  ASSET_TRACE_READ_END,  ASSET_TRACE_PARSE_START,
                                  ASSET_TRACE_PARSE_END, ASSET_TRACE_DELIVERED};
    assert_int_equal(n, 6);
    for (int i = 0; i < n; i++) assert_int_equal(ph[i], want[i]);
    /* timestamps never go backwards along a load; the loader is named */
    uint64_t last = 0;
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (e.id != id) continue;
        assert_true(e.time_ns >= last);
        last = e.time_ns;
        assert_string_equal(e.loader, "json");
        assert_true(e.thread != 0);
        if (e.phase == ASSET_TRACE_DELIVERED) assert_int_equal(e.status, ASSET_OK);
    }
    asset_handle_release(h);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* A loader with a finalize step that runs on the flush thread. */
static asset_status_t fin_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    asset_parse_set_value(p, asset_parse_take_data(p), asset_parse_size(p));
    return ASSET_OK;
}
static asset_status_t fin_finalize(void *ctx, asset_finalize_t *f) {
    (void)ctx;
    (void)f;
    return ASSET_OK;
}
static const char *const fin_suffixes[] = {".tex", NULL};

static void test_finalize_and_delivery_are_reported_on_the_flush_thread(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(2);
    asset_server_set_trace(s, asset_trace_record, tr);
    asset_loader_t ld = {.abi = ASSET_LOADER_ABI,
                         .name = "tex",
                         .suffixes = fin_suffixes,
                         .parse = fin_parse,
                         .finalize = fin_finalize};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "hero.tex", "pixels", 6), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://hero.tex", ASSET_OK);
    uint64_t id = id_of(tr, "mem://hero.tex", ASSET_TRACE_QUEUED);
    asset_trace_phase_t ph[16];
    int n = phases_of(tr, id, ph, 16);
    assert_int_equal(n, 8);
    assert_int_equal(ph[5], ASSET_TRACE_FINALIZE_START);
    assert_int_equal(ph[6], ASSET_TRACE_FINALIZE_END);
    assert_int_equal(ph[7], ASSET_TRACE_DELIVERED);
    asset_trace_event_t e;
    uint32_t fin = 0, delivered = 0, parse = 0;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (e.id != id) continue;
        if (e.phase == ASSET_TRACE_FINALIZE_START) fin = e.thread;
        if (e.phase == ASSET_TRACE_DELIVERED) delivered = e.thread;
        if (e.phase == ASSET_TRACE_PARSE_START) parse = e.thread;
    }
    assert_int_equal(fin, delivered); /* both on this (the flush) thread */
    assert_int_not_equal(parse, 0);   /* the parse may run here too: run-on-wait */
    /* replaced by NULL: nothing more is recorded */
    asset_server_set_trace(s, NULL, NULL);
    size_t before = asset_trace_count(tr);
    asset_handle_t *h2 = tu_load_wait(s, "mem://other", ASSET_E_NOT_FOUND);
    assert_int_equal(asset_trace_count(tr), before);
    asset_handle_release(h);
    asset_handle_release(h2);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* An event's thread names the thread that reported it: a parse held on a worker (at a
 * gate, so it cannot run on this thread as run-on-wait may) reports another number than
 * the delivery on this, the flush thread, and its START and END the same one. Every
 * event named thread 1 and every suite passed (thirty-third review's mutations). */
static void test_events_of_two_threads_name_two_threads(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    tu_parse_gate_t g;
    tu_parse_gate_register(s, &g);
    asset_server_set_trace(s, asset_trace_record, tr);
    assert_int_equal(asset_mem_put(s, "w.gated", "abc", 3), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "mem://w.gated", NULL);
    tu_parse_gate_wait_entered(&g, 1); /* parsing on the worker */
    tu_parse_gate_open(&g);
    assert_int_equal(tu_wait(h), ASSET_OK);
    asset_server_set_trace(s, NULL, NULL);
    uint64_t id = id_of(tr, "mem://w.gated", ASSET_TRACE_QUEUED);
    uint32_t parse = 0, parse_end = 0, delivered = 0;
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (e.id != id) continue;
        if (e.phase == ASSET_TRACE_PARSE_START) parse = e.thread;
        if (e.phase == ASSET_TRACE_PARSE_END) parse_end = e.thread;
        if (e.phase == ASSET_TRACE_DELIVERED) delivered = e.thread;
    }
    assert_int_not_equal(parse, 0);
    assert_int_not_equal(delivered, 0);
    assert_int_equal(parse_end, parse);
    assert_int_not_equal(parse, delivered);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
    asset_trace_destroy(tr);
}

static void test_coalesced_loads_and_cache_hits_deliver_too(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    asset_server_set_trace(s, asset_trace_record, tr);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *a = asset_server_load(s, "gate://x", NULL);
    asset_handle_t *b = asset_server_load(s, "gate://x", NULL);
    tu_gate_open(g);
    assert_int_equal(tu_wait(a), ASSET_OK);
    assert_int_equal(tu_wait(b), ASSET_OK);
    uint64_t id = id_of(tr, "gate://x", ASSET_TRACE_QUEUED);
    asset_trace_phase_t ph[16];
    int n = phases_of(tr, id, ph, 16);
    assert_int_equal(n, 7); /* one job, two deliveries */
    assert_int_equal(ph[5], ASSET_TRACE_DELIVERED);
    assert_int_equal(ph[6], ASSET_TRACE_DELIVERED);
    /* an embedded package is immutable: a second load is a cache hit with no job */
    static const asset_embedded_file_t files[] = {{"a.txt", "a", 1}};
    assert_int_equal(asset_server_mount_embedded(s, "emb", files, 1), ASSET_OK);
    asset_handle_t *c1 = tu_load_wait(s, "pkg://emb/a.txt", ASSET_OK);
    asset_handle_t *c2 = tu_load_wait(s, "pkg://emb/a.txt", ASSET_OK);
    asset_trace_event_t e;
    int hits = 0;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++)
        if (e.id == 0 && e.phase == ASSET_TRACE_DELIVERED && !strcmp(e.uri, "pkg://emb/a.txt"))
            hits++;
    assert_int_equal(hits, 1);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c1);
    asset_handle_release(c2);
    asset_server_destroy(s);
    tu_gate_free(g);
    asset_trace_destroy(tr);
}

static asset_status_t bake(asset_task_t *t, void *arg) {
    (void)arg;
    int *v = asset_alloc(sizeof *v);
    *v = 1;
    asset_task_set_value(t, v, sizeof *v, NULL, NULL);
    return ASSET_OK;
}

/* Counts async begin/end per (id, name): every slice that begins ends. */
static void test_chrome_json_opens_and_every_slice_is_closed(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(2);
    asset_server_set_trace(s, asset_trace_record, tr);
    assert_int_equal(asset_mem_put(s, "level.json", "[1,2,3]", 7), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "quote\"d.txt", "q", 1), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "mem://level.json", ASSET_OK);
    asset_handle_t *b = tu_load_wait(s, "mem://quote\"d.txt", ASSET_OK);
    asset_handle_t *c = asset_server_spawn(s, bake, NULL, NULL, NULL);
    assert_int_equal(tu_wait(c), ASSET_OK);
    trace_file_t tf = trace_file_write(s, tr);
    assert_true(cJSON_IsArray(tf.evs));
    int open_loads = 0, reads = 0, runs = 0, named = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, tf.evs) {
        const char *ph = cJSON_GetObjectItem(ev, "ph")->valuestring;
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        assert_non_null(cJSON_GetObjectItem(ev, "ts"));
        bool load = !strncmp(name, "load ", 5);
        if (load) open_loads += !strcmp(ph, "b") ? 1 : !strcmp(ph, "e") ? -1 : 0;
        if (!strcmp(name, "read")) reads += !strcmp(ph, "b") ? 1 : -1;
        if (!strcmp(name, "run")) runs++;
        if (!strcmp(name, "load mem://level.json") || !strcmp(name, "load mem://quote\"d.txt"))
            named++;
    }
    assert_int_equal(open_loads, 0);
    assert_int_equal(reads, 0);
    assert_int_equal(runs, 2);  /* the task's function, begin and end */
    assert_int_equal(named, 4); /* begin and end of both loads */
    assert_int_equal(asset_trace_write_chrome_json(tr, "/nonexistent/dir/t.json"), ASSET_E_IO);
    assert_int_equal(asset_trace_write_chrome_json(NULL, tf.path), ASSET_E_INVALID);
    trace_file_free(&tf);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* Seventh review: JSON is UTF-8 (RFC 8259), and a URI may hold any byte (a mem:// key
 * written raw): the recorder wrote such bytes as they were, a file that strict readers
 * (Python's json, the library's own json loader) refuse. */
static void test_chrome_json_is_utf8_whatever_the_uris_bytes(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    asset_server_set_trace(s, asset_trace_record, tr);
    /* a stray byte, an overlong '/', a surrogate, a truncated sequence, and a valid é */
    const char *key = "k\xff\xc0\xaf\xed\xa0\x80\xc3\xc3\xa9.bin";
    assert_int_equal(asset_mem_put(s, key, "v", 1), ASSET_OK);
    char uri[64];
    snprintf(uri, sizeof uri, "mem://%s", key);
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    tu_wait(h);
    asset_handle_release(h);
    asset_server_set_trace(s, NULL, NULL);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "trace.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 0 && len < sizeof buf);
    /* the json loader validates UTF-8 strictly: the file must load with it */
    assert_int_equal(asset_mem_put(s, "trace.json", buf, len), ASSET_OK);
    h = asset_server_load(s, "mem://trace.json", NULL);
    if (tu_wait(h) != ASSET_OK) fail_msg("%s", asset_handle_error_message(h));
    const cJSON *evs = cJSON_GetObjectItem(asset_handle_value(h), "traceEvents");
    assert_true(cJSON_GetArraySize(evs) > 0);
    /* the valid sequence is kept as it is */
    assert_non_null(strstr(buf, "\xc3\xa9.bin"));
    asset_handle_release(h);
    tu_rmrf(dir);
    free(path);
    free(dir);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* Ninth review: the timestamps were written with "%.3f", which follows LC_NUMERIC: a host
 * that set a locale whose decimal separator is a comma (setlocale(LC_ALL, "") in a German
 * or French desktop session; Qt and GTK tools do it for you) got "ts":12,345, a file no
 * JSON reader opens. */
/* This thread's LC_NUMERIC becomes one with a decimal comma, if any is installed: per
 * thread where POSIX has it (glibc's setlocale keeps a block for good, which LeakSanitizer
 * reports), else process-wide. */
#ifndef _WIN32
static locale_t comma_locale;
static locale_t comma_prev;
#endif
static bool comma_numeric_set(bool on) {
    const char *names[] = {"de_DE.UTF-8",         "de_DE.utf8",        "de_DE",
                           "fr_FR.UTF-8",         "fr_FR.utf8",        "ru_RU.UTF-8",
                           "German_Germany.1252", "French_France.1252"};
#ifndef _WIN32
    if (!on) {
        uselocale(comma_prev);
        freelocale(comma_locale);
        return true;
    }
    comma_locale = (locale_t)0;
    for (size_t i = 0; i < sizeof names / sizeof *names && !comma_locale; i++)
        comma_locale = newlocale(LC_NUMERIC_MASK, names[i], (locale_t)0);
    if (!comma_locale) return false;
    comma_prev = uselocale(comma_locale);
#else
    if (!on) {
        setlocale(LC_NUMERIC, "C");
        return true;
    }
    const char *got = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !got; i++)
        got = setlocale(LC_NUMERIC, names[i]);
    if (!got) return false;
#endif
    if (strcmp(localeconv()->decimal_point, ",") == 0) return true;
    comma_numeric_set(false);
    return false;
}

/* Every byte of a name that JSON or UTF-8 refuses as it is, escaped as \u00XX (or \" and
 * \\), each byte of an ill-formed sequence on its own, and nothing else: the seventh
 * review's test has no '\\', no control byte but those below 0x1f, no overlong 3-byte
 * form, nothing past U+10FFFF, no bad third byte and no lead byte above 0xf4, and dropping
 * each of those checks passed it (thirty-third review's mutations). The event is recorded
 * directly: the file must hold exactly these strings. */
static void test_chrome_json_escapes_each_byte_json_or_utf8_refuses(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    const char *uri = "q\"\\\x1f\x7f"                 /* quote, backslash, US, DEL (kept) */
                      "\xe0\x80\x80"                  /* an overlong 3-byte form */
                      "\xf4\x90\x80\x80"              /* past U+10FFFF */
                      "\xe2\x82("                     /* a third byte that is no continuation */
                      "\xf5\x80\x80\x80"              /* a lead byte no sequence has */
                      "\xe2\x82\xac\xf4\x8f\xbf\xbf"; /* U+20AC and U+10FFFF: kept */
    asset_trace_event_t e = {.phase = ASSET_TRACE_DELIVERED,
                             .time_ns = 1000,
                             .uri = uri,
                             .loader = "l\\d",
                             .status = ASSET_OK,
                             .thread = 1};
    asset_trace_record(&e, tr);
    trace_file_t tf = trace_file_write(NULL, tr); /* JSON, whatever it holds */
    FILE *f = fopen(tf.path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    const char *want = "\"args\":{\"uri\":\"q\\\"\\\\\\u001f\x7f"
                       "\\u00e0\\u0080\\u0080"
                       "\\u00f4\\u0090\\u0080\\u0080"
                       "\\u00e2\\u0082("
                       "\\u00f5\\u0080\\u0080\\u0080"
                       "\xe2\x82\xac\xf4\x8f\xbf\xbf\",\"loader\":\"l\\\\d\",";
    if (!strstr(buf, want)) fail_msg("the event's args are not escaped as expected: %s", buf);
    trace_file_free(&tf);
    asset_trace_destroy(tr);
}

/* Events recorded directly, with set times: a load's track closes after its last event
 * at the latest time of them (its READ_END after its DELIVERED, as a cancelled load's
 * is), here 4 us after its QUEUED; a delivery of a job is an async instant ("n") on the
 * load's id, one without a job a thread instant ("i", scope "t") with no id. Closed at
 * the time of none of them (`<` for `>`: time 0, a timestamp wrapped past 2^64 ns) and
 * the two kinds of instant swapped passed every suite (thirty-third review's mutations). */
static void test_chrome_json_of_set_events_has_their_times_and_kinds(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    const struct {
        asset_trace_phase_t phase;
        uint64_t t, id;
    } evs[] = {{ASSET_TRACE_QUEUED, 1000, 7},
               {ASSET_TRACE_READ_START, 2000, 7},
               {ASSET_TRACE_DELIVERED, 3000, 7},
               {ASSET_TRACE_READ_END, 5000, 7},
               {ASSET_TRACE_DELIVERED, 4000, 0}};
    for (size_t i = 0; i < sizeof evs / sizeof *evs; i++) {
        asset_trace_event_t e = {.phase = evs[i].phase,
                                 .time_ns = evs[i].t,
                                 .id = evs[i].id,
                                 .uri = "mem://x",
                                 .loader = "l",
                                 .status = ASSET_OK,
                                 .thread = 1};
        asset_trace_record(&e, tr);
    }
    trace_file_t tf = trace_file_write(NULL, tr);
    int closes = 0, n = 0, i = 0;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, tf.evs) {
        const char *ph = cJSON_GetObjectItem(ev, "ph")->valuestring;
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        const cJSON *id = cJSON_GetObjectItem(ev, "id"), *scope = cJSON_GetObjectItem(ev, "s");
        double ts = cJSON_GetObjectItem(ev, "ts")->valuedouble;
        if (!strcmp(ph, "e") && !strcmp(name, "load mem://x")) {
            closes++;
            if (ts != 4.0) fail_msg("the load closed at %.3f us, not 4.000", ts);
        } else if (!strcmp(ph, "n")) {
            n++;
            assert_non_null(id);
            assert_string_equal(id->valuestring, "0x7");
            assert_null(scope);
        } else if (!strcmp(ph, "i")) {
            i++;
            assert_null(id);
            assert_non_null(scope);
            assert_string_equal(scope->valuestring, "t");
        }
    }
    assert_int_equal(closes, 1);
    assert_int_equal(n, 1);
    assert_int_equal(i, 1);
    trace_file_free(&tf);
    asset_trace_destroy(tr);
}

static void test_chrome_json_is_valid_whatever_the_hosts_locale(void **state) {
    (void)state;
    if (!comma_numeric_set(true)) skip(); /* none here (Debian: the locales package) */
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    asset_server_set_trace(s, asset_trace_record, tr);
    assert_int_equal(asset_mem_put(s, "a.bin", "a", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://a.bin", ASSET_OK);
    asset_handle_release(h);
    asset_server_set_trace(s, NULL, NULL);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "trace.json");
    asset_status_t st = asset_trace_write_chrome_json(tr, path);
    comma_numeric_set(false); /* cJSON reads numbers by the locale too: in C, as a JSON
                                 reader elsewhere would */
    assert_int_equal(st, ASSET_OK);
    cJSON *root = read_json_file(path);
    cJSON *evs = cJSON_GetObjectItem(root, "traceEvents");
    assert_true(cJSON_GetArraySize(evs) >= 5);
    cJSON *ev;
    cJSON_ArrayForEach(ev, evs) assert_true(cJSON_IsNumber(cJSON_GetObjectItem(ev, "ts")));
    cJSON_Delete(root);
    tu_rmrf(dir);
    free(path);
    free(dir);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* Ninth review: a handle that failed before it had a job (an unknown scheme, a URI that
 * does not parse) is delivered with id 0, as a cache hit is: the Chrome JSON named its
 * instant "delivered from cache". */
static void test_chrome_json_names_a_load_failed_without_a_job_not_a_cache_hit(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    asset_server_set_trace(s, asset_trace_record, tr);
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "a.bin", "a", 1));
    assert_int_equal(asset_server_mount(s, "p", dir), ASSET_OK); /* immutable: hits need no job */
    asset_handle_t *a = tu_load_wait(s, "pkg://p/a.bin", ASSET_OK);
    asset_handle_t *hit = tu_load_wait(s, "pkg://p/a.bin", ASSET_OK); /* from the cache */
    asset_handle_t *bad = tu_load_wait(s, "nope://x", ASSET_E_NO_SOURCE);
    asset_server_set_trace(s, NULL, NULL);
    char *path = tu_path(dir, "trace.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    cJSON *root = read_json_file(path);
    int hits = 0, failed = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItem(root, "traceEvents")) {
        if (strcmp(cJSON_GetObjectItem(ev, "ph")->valuestring, "i") != 0) continue;
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        const cJSON *args = cJSON_GetObjectItem(ev, "args");
        const char *uri = cJSON_GetObjectItem(args, "uri")->valuestring;
        const char *status = cJSON_GetObjectItem(args, "status")->valuestring;
        if (!strcmp(uri, "pkg://p/a.bin")) {
            assert_string_equal(name, "delivered from cache");
            assert_string_equal(status, "OK");
            hits++;
        } else {
            assert_string_equal(uri, "nope://x");
            assert_string_equal(status, "E_NO_SOURCE");
            assert_string_equal(name, "failed without a job");
            failed++;
        }
    }
    assert_int_equal(hits, 1);
    assert_int_equal(failed, 1);
    cJSON_Delete(root);
    tu_rmrf(dir);
    free(path);
    free(dir);
    asset_handle_release(a);
    asset_handle_release(hit);
    asset_handle_release(bad);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* Seventh review: one recorder may serve several servers (its hook takes only the
 * recorder), but each server counted job ids from 1: two servers' first loads shared
 * id 1, their slices were one track, and only one "load" was ever closed. */
static void test_one_recorder_for_two_servers_keeps_their_loads_apart(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_config_t cfg = {.max_workers = 1, .trace = asset_trace_record, .trace_user = tr};
    asset_server_t *a = asset_server_create(&cfg), *b = asset_server_create(&cfg);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(asset_mem_put(a, "a.bin", "a", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(b, "b.bin", "b", 1), ASSET_OK);
    asset_handle_t *ha = tu_load_wait(a, "mem://a.bin", ASSET_OK);
    asset_handle_t *hb = tu_load_wait(b, "mem://b.bin", ASSET_OK);
    asset_handle_release(ha);
    asset_handle_release(hb);
    asset_server_destroy(a);
    asset_server_destroy(b);
    uint64_t ida = 0, idb = 0;
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (e.phase != ASSET_TRACE_QUEUED) continue;
        if (!strcmp(e.uri, "mem://a.bin")) ida = e.id;
        if (!strcmp(e.uri, "mem://b.bin")) idb = e.id;
    }
    assert_true(ida != 0 && idb != 0);
    assert_true(ida != idb);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "trace.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    cJSON *root = read_json_file(path);
    int open_a = 0, open_b = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItem(root, "traceEvents")) {
        const char *ph = cJSON_GetObjectItem(ev, "ph")->valuestring;
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        int d = !strcmp(ph, "b") ? 1 : !strcmp(ph, "e") ? -1 : 0;
        if (!strcmp(name, "load mem://a.bin")) open_a += d;
        if (!strcmp(name, "load mem://b.bin")) open_b += d;
    }
    assert_int_equal(open_a, 0); /* each load's track is closed */
    assert_int_equal(open_b, 0);
    cJSON_Delete(root);
    tu_rmrf(dir);
    free(path);
    free(dir);
    asset_trace_destroy(tr);
}

/* ---- introspection ---- */

typedef struct seen {
    int n;
    asset_job_info_t job[8];
    char uri[8][64];
    char state[8][16];
    char loader[8][16]; /* a record's strings are borrowed for the call: copied */
} seen_t;

static bool see_job(const asset_job_info_t *i, void *user) {
    seen_t *s = user;
    if (s->n < 8) {
        s->job[s->n] = *i;
        snprintf(s->uri[s->n], 64, "%s", i->uri);
        snprintf(s->state[s->n], 16, "%s", i->state);
        snprintf(s->loader[s->n], 16, "%s", i->loader);
    }
    s->n++;
    return true;
}

static int find(seen_t *s, const char *uri) {
    for (int i = 0; i < s->n && i < 8; i++)
        if (!strcmp(s->uri[i], uri)) return i;
    return -1;
}

static bool stop_at_first(const asset_job_info_t *i, void *user) {
    (void)i;
    (*(int *)user)++;
    return false;
}

/* Whether mem://p.dep's job waits for its dependencies; *deps: how many it has. */
static bool parent_waits(asset_server_t *s, size_t *deps) {
    seen_t seen = {0};
    asset_server_foreach_job(s, see_job, &seen);
    int p = find(&seen, "mem://p.dep");
    if (p < 0 || strcmp(seen.state[p], "waiting_deps") != 0) return false;
    *deps = seen.job[p].dependencies;
    return true;
}

/* Thirty-eighth review (coverage): a job waiting for its dependencies says how many it
 * has (asset_job_info_t.dependencies): never set, it read 0. */
static void test_a_job_waiting_for_a_dependency_counts_it(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    tu_gate_t *g = tu_gate_register(s, "gate");
    char noted[512] = "";
    const char *sfx[] = {".dep", NULL};
    asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = "depnote", .suffixes = sfx, .parse = tu_dep_note_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, noted, 0), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "p.dep", "dep gate://d", 12), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "mem://p.dep", NULL);
    size_t deps = 0;
    TU_FLUSH_UNTIL(s, parent_waits(s, &deps)); /* gate://d's read is held */
    assert_int_equal(deps, 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(h), ASSET_OK);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static void test_jobs_in_flight_are_listed_with_state_and_handles(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *run = asset_server_load(s, "gate://running", NULL);
    tu_gate_wait_entered(g, 1);
    asset_load_options_t lo = {.priority = ASSET_PRIORITY_LOW};
    asset_handle_t *q1 = asset_server_load(s, "gate://queued", &lo);
    asset_handle_t *q2 = asset_server_load(s, "gate://queued", &lo);
    seen_t seen = {0};
    assert_int_equal(asset_server_foreach_job(s, see_job, &seen), 2);
    int r = find(&seen, "gate://running"), q = find(&seen, "gate://queued");
    assert_true(r >= 0 && q >= 0);
    assert_string_equal(seen.state[r], "running");
    assert_string_equal(seen.state[q], "queued");
    assert_int_equal(seen.job[q].handles, 2);
    assert_int_equal(seen.job[q].priority, ASSET_PRIORITY_LOW);
    assert_int_equal(seen.job[r].handles, 1);
    assert_true(seen.job[r].id != 0 && seen.job[r].id != seen.job[q].id);
    int calls = 0;
    assert_int_equal(asset_server_foreach_job(s, stop_at_first, &calls), 1);
    assert_int_equal(calls, 1);
    tu_gate_open(g);
    assert_int_equal(tu_wait(run), ASSET_OK);
    assert_int_equal(tu_wait(q1), ASSET_OK);
    assert_int_equal(tu_wait(q2), ASSET_OK);
    seen_t after = {0};
    assert_int_equal(asset_server_foreach_job(s, see_job, &after), 0);
    asset_handle_release(run);
    asset_handle_release(q1);
    asset_handle_release(q2);
    asset_server_destroy(s);
    tu_gate_free(g);
}

typedef struct cseen {
    int n;
    char uri[8][64];
    char loader[8][16];
    size_t bytes[8];
    unsigned handles[8];
    bool versioned[8];
    uint64_t age_ns[8];
} cseen_t;

static bool see_cached(const asset_cache_info_t *i, void *user) {
    cseen_t *c = user;
    if (c->n < 8) {
        snprintf(c->uri[c->n], 64, "%s", i->uri);
        snprintf(c->loader[c->n], 16, "%s", i->loader);
        c->bytes[c->n] = i->bytes;
        c->handles[c->n] = i->handles;
        c->versioned[c->n] = i->version && *i->version;
        c->age_ns[c->n] = i->age_ns;
    }
    c->n++;
    return true;
}

typedef struct lseen {
    int n;
    char name[8][16];
    asset_loader_info_t info[8];
} lseen_t;

static bool see_loader(const asset_loader_info_t *i, void *user) {
    lseen_t *l = user;
    if (l->n < 8) {
        snprintf(l->name[l->n], 16, "%s", i->name);
        l->info[l->n] = *i;
    }
    l->n++;
    return true;
}

static void test_cache_entries_and_loader_stats_are_listed(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    uint64_t t0 = uv_hrtime();
    assert_int_equal(asset_mem_put(s, "a.json", "[1]", 3), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b.json", "[", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "c.bin", "cc", 2), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "mem://a.json", ASSET_OK);
    asset_handle_t *b = tu_load_wait(s, "mem://b.json", ASSET_E_PARSE);
    asset_handle_t *c = tu_load_wait(s, "mem://c.bin", ASSET_OK);
    asset_handle_release(c); /* only the cache holds it now */
    asset_server_flush(s);
    cseen_t cs = {0};
    assert_int_equal(asset_server_foreach_cached(s, see_cached, &cs), 2);
    int ia = strcmp(cs.uri[0], "mem://a.json") ? 1 : 0, ic = 1 - ia;
    assert_string_equal(cs.uri[ia], "mem://a.json");
    assert_string_equal(cs.loader[ia], "json");
    assert_int_equal(cs.bytes[ia], asset_handle_size(a));
    assert_int_equal(cs.handles[ia], 1);
    assert_string_equal(cs.uri[ic], "mem://c.bin");
    assert_string_equal(cs.loader[ic], "bytes");
    assert_int_equal(cs.handles[ic], 0);
    /* a mem:// entry carries its key's version; its age counts from the insert, to the
     * cache's tick (ASSET__CE_TICK_NS, about 17 ms) */
    uint64_t took = uv_hrtime() - t0;
    for (int k = 0; k < 2; k++) {
        assert_true(cs.versioned[k]);
        if (cs.age_ns[k] > took + ASSET__CE_TICK_NS)
            fail_msg("entry %d: age %llu ns, after %llu ns", k, (unsigned long long)cs.age_ns[k],
                     (unsigned long long)took);
    }
    lseen_t ls = {0};
    assert_int_equal(asset_server_foreach_loader(s, see_loader, &ls), 2);
    assert_string_equal(ls.name[0], "json");
    assert_string_equal(ls.name[1], "bytes");
    assert_int_equal(ls.info[0].parses, 2);
    assert_int_equal(ls.info[0].parse_failures, 1);
    assert_int_equal(ls.info[0].entries, 1);
    assert_int_equal(ls.info[0].bytes, asset_handle_size(a));
    assert_int_equal(ls.info[1].parses, 1);
    assert_int_equal(ls.info[1].entries, 1);
    assert_true(ls.info[1].budget > 0);
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
}

/* stats.parses is "loader parse calls (total)", and foreach_loader's parses "parse
 * calls that returned": a parse that failed counted in the loader's but not in the
 * server's, so the two disagreed after any bad file (cache_misses counts the parses
 * that produced a value). */
static void test_stats_parses_counts_the_failed_parses_too(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "a.json", "[1]", 3), ASSET_OK);
    assert_int_equal(asset_mem_put(s, "b.json", "[", 1), ASSET_OK);
    asset_handle_release(tu_load_wait(s, "mem://a.json", ASSET_OK));
    asset_handle_release(tu_load_wait(s, "mem://b.json", ASSET_E_PARSE));
    lseen_t ls = {0};
    assert_int_equal(asset_server_foreach_loader(s, see_loader, &ls), 2);
    asset_stats_t st;
    asset_server_stats(s, &st);
    asset_server_destroy(s);
    assert_int_equal(ls.info[0].parses, 2);
    assert_int_equal(ls.info[0].parse_failures, 1);
    assert_int_equal(st.cache_misses, 1); /* the parse that produced a value */
    assert_int_equal(st.parses, 2);
}

/* asset_server_foreach_loader is for a debug overlay, called each frame: its entry
 * counts walked every cache entry under the server's lock (200,000 cached values: 15 ms
 * a call, every load and worker waiting), where the cache's map keeps the count. */
static bool count_entries(const asset_loader_info_t *i, void *user) {
    if (!strcmp(i->name, "bytes")) *(size_t *)user = i->entries;
    return true;
}

static bool no_op_cached(const asset_cache_info_t *i, void *user) {
    (void)i;
    (void)user;
    return true;
}

static void test_loader_entry_counts_walk_no_cache_entries(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    enum { N = 2000 };
    static char names[N][32];
    const char *uris[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "mem://k%d.bin", i);
        assert_int_equal(asset_mem_put(s, names[i] + 6, "x", 1), ASSET_OK);
        uris[i] = names[i];
    }
    asset_batch_t *b = asset_server_load_group(s, uris, N, NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), N);
    asset_batch_release(b);
    asset_server_flush(s);
    uv_mutex_lock(&s->lock);
    uint64_t v0 = s->introspect_visits;
    uv_mutex_unlock(&s->lock);
    size_t entries = 0;
    assert_int_equal(asset_server_foreach_loader(s, count_entries, &entries), 2);
    assert_int_equal(entries, N);
    uv_mutex_lock(&s->lock);
    uint64_t walked = s->introspect_visits - v0;
    uv_mutex_unlock(&s->lock);
    if (walked) fail_msg("foreach_loader looked at %llu cache entries", (unsigned long long)walked);
    /* the listing of the entries looks at each, once */
    assert_int_equal(asset_server_foreach_cached(s, no_op_cached, NULL), N);
    uv_mutex_lock(&s->lock);
    walked = s->introspect_visits - v0;
    uv_mutex_unlock(&s->lock);
    assert_int_equal(walked, N);
    asset_server_destroy(s);
}

static void test_tasks_are_listed_as_jobs_of_the_task_loader(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *busy = asset_server_load(s, "gate://busy", NULL);
    tu_gate_wait_entered(g, 1);
    asset_handle_t *t = asset_server_spawn(s, bake, NULL, NULL, NULL);
    seen_t seen = {0};
    asset_server_foreach_job(s, see_job, &seen);
    int i = find(&seen, "task://1");
    assert_true(i >= 0);
    assert_string_equal(seen.loader[i], "task");
    assert_string_equal(seen.state[i], "queued");
    tu_gate_open(g);
    assert_int_equal(tu_wait(t), ASSET_OK);
    assert_int_equal(tu_wait(busy), ASSET_OK);
    asset_handle_release(t);
    asset_handle_release(busy);
    asset_server_destroy(s);
    tu_gate_free(g);
}

static asset_status_t refuse(asset_task_t *t, void *arg) {
    (void)arg;
    return asset_task_fail(t, ASSET_E_PARSE, "refused");
}

/* Every event of a task names the "task" loader, its DELIVERED too, whether it
 * succeeded or failed (a failed one's DELIVERED named none). */
static void test_every_event_of_a_task_names_the_task_loader(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    asset_server_set_trace(s, asset_trace_record, tr);
    asset_handle_t *ok = asset_server_spawn(s, bake, NULL, NULL, NULL);
    asset_handle_t *bad = asset_server_spawn(s, refuse, NULL, NULL, NULL);
    assert_int_equal(tu_wait(ok), ASSET_OK);
    assert_int_equal(tu_wait(bad), ASSET_E_PARSE);
    asset_server_set_trace(s, NULL, NULL);
    const char *uris[] = {"task://1", "task://2"};
    for (int k = 0; k < 2; k++) {
        uint64_t id = id_of(tr, uris[k], ASSET_TRACE_DELIVERED);
        assert_true(id != 0);
        int n = 0;
        asset_trace_event_t e;
        for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
            if (e.id != id) continue;
            assert_string_equal(e.loader, "task");
            n++;
        }
        assert_true(n >= 4); /* queued, run begin and end, delivered */
    }
    asset_handle_release(ok);
    asset_handle_release(bad);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* A source and a loader that return what they may not, and a source that ignores a
 * refused write (past max_asset_size) and returns OK. */
static asset_status_t liar_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    const char *uri = asset_request_uri(r);
    if (strstr(uri, "huge")) {
        static const char big[64] = {0};
        (void)asset_request_write(r, big, sizeof big);
        return ASSET_OK;
    }
    if (strstr(uri, "odd")) return (asset_status_t)7;
    if (strstr(uri, "pending")) return ASSET_PENDING; /* not an ASYNC source */
    return asset_request_write(r, "x", 1);
}
static asset_status_t odd_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    (void)p;
    return (asset_status_t)7;
}
static asset_status_t one_byte_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    asset_parse_set_value(p, asset_alloc(1), 1);
    return ASSET_OK;
}
static asset_status_t odd_finalize(void *ctx, asset_finalize_t *f) {
    (void)ctx;
    (void)f;
    return (asset_status_t)7;
}
static asset_status_t no_value(asset_task_t *t, void *arg) {
    (void)t;
    (void)arg;
    return ASSET_OK;
}
static asset_status_t odd_task(asset_task_t *t, void *arg) {
    (void)t;
    (void)arg;
    return (asset_status_t)7;
}

/* The status of the END event of the step that decided h's failure. */
static asset_status_t end_status(asset_trace_t *tr, asset_handle_t *h, asset_trace_phase_t end) {
    uint64_t id = id_of(tr, asset_handle_uri(h), ASSET_TRACE_DELIVERED);
    assert_true(id != 0);
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++)
        if (e.id == id && e.phase == end) return e.status;
    fail_msg("%s: no END event", asset_handle_uri(h));
    return ASSET_OK;
}

/* A READ_END or PARSE_END event says how the step ended, as the handle does: not OK
 * for a read whose source ignored a refused write or a task that set no value, nor a
 * status outside the enum for a source, loader, finalize or task that returned one
 * (they said OK, and 7); and a read that returned PENDING from a source that is not
 * ASYNC ends too (no READ_END: an unclosed slice in the Chrome JSON). */
static void test_an_end_event_says_the_outcome_the_handle_gets(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = asset_server_create(&(asset_server_config_t){
        .max_workers = 1, .max_asset_size = 10, .trace = asset_trace_record, .trace_user = tr});
    assert_non_null(s);
    static const asset_source_t liar = {ASSET_SOURCE_ABI, "liar", 0, liar_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &liar, NULL), ASSET_OK);
    static const char *const odd_suf[] = {".lie", NULL};
    asset_loader_t odd = {
        .abi = ASSET_LOADER_ABI, .name = "odd", .suffixes = odd_suf, .parse = odd_parse};
    assert_int_equal(asset_server_register_loader(s, &odd, NULL, 0), ASSET_OK);
    static const char *const fin_suf[] = {".fin", NULL};
    asset_loader_t fin = {.abi = ASSET_LOADER_ABI,
                          .name = "fin",
                          .suffixes = fin_suf,
                          .parse = one_byte_parse,
                          .finalize = odd_finalize};
    assert_int_equal(asset_server_register_loader(s, &fin, NULL, 0), ASSET_OK);
    asset_handle_t *h[7] = {
        asset_server_load(s, "liar://huge", NULL),
        asset_server_load(s, "liar://odd", NULL),
        asset_server_load(s, "liar://x.lie", NULL),
        asset_server_spawn(s, no_value, NULL, NULL, NULL),
        asset_server_spawn(s, odd_task, NULL, NULL, NULL),
        asset_server_load(s, "liar://x.fin", NULL),
        asset_server_load(s, "liar://pending", NULL),
    };
    asset_trace_phase_t end[7] = {ASSET_TRACE_READ_END,  ASSET_TRACE_READ_END,
                                  ASSET_TRACE_PARSE_END, ASSET_TRACE_PARSE_END,
                                  ASSET_TRACE_PARSE_END, ASSET_TRACE_FINALIZE_END,
                                  ASSET_TRACE_READ_END};
    for (int i = 0; i < 7; i++) {
        asset_status_t st = tu_wait(h[i]);
        assert_true(st < 0);
        asset_status_t got = end_status(tr, h[i], end[i]);
        if (got != st)
            fail_msg("%s: the END event says %s, the handle %s", asset_handle_uri(h[i]),
                     asset_err_name(got), asset_err_name(st));
    }
    for (int i = 0; i < 7; i++) asset_handle_release(h[i]);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

/* A task cancelled while it runs that then sets a value and returns OK ends CANCELLED,
 * and its PARSE_END says so (under a mutation it said OK, what the task returned). */
typedef struct held_task {
    uv_sem_t started, go;
} held_task_t;

static asset_status_t held_then_ok(asset_task_t *t, void *arg) {
    held_task_t *ht = arg;
    uv_sem_post(&ht->started);
    uv_sem_wait(&ht->go);
    char *v = asset_alloc(1);
    if (!v) return asset_task_fail(t, ASSET_E_NO_MEMORY, "out of memory");
    *v = 'v';
    asset_task_set_value(t, v, 1, NULL, NULL); /* asset_free'd with the task */
    return ASSET_OK;
}

static void test_a_task_cancelled_while_it_runs_ends_its_parse_cancelled(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = asset_server_create(
        &(asset_server_config_t){.max_workers = 1, .trace = asset_trace_record, .trace_user = tr});
    assert_non_null(s);
    held_task_t ht;
    uv_sem_init(&ht.started, 0);
    uv_sem_init(&ht.go, 0);
    asset_handle_t *h = asset_server_spawn(s, held_then_ok, &ht, NULL, NULL);
    assert_non_null(h);
    uv_sem_wait(&ht.started);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    asset_handle_release(h);
    uv_sem_post(&ht.go);
    asset_server_destroy(s); /* joins the worker: the task has returned */
    uint64_t id = id_of(tr, "task://1", ASSET_TRACE_PARSE_START);
    assert_true(id != 0);
    asset_trace_event_t e;
    bool ended = false;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (e.id != id || e.phase != ASSET_TRACE_PARSE_END) continue;
        assert_int_equal(e.status, ASSET_E_CANCELLED);
        ended = true;
    }
    assert_true(ended);
    asset_trace_destroy(tr);
    uv_sem_destroy(&ht.started);
    uv_sem_destroy(&ht.go);
}

/* An introspection callback may even destroy the server: the records after it are
 * copies, loader names included (they were the loaders' own, freed by destroy). */
typedef struct doomed {
    asset_server_t *s;
    int seen;
    char names[4][32];
} doomed_t;

static bool destroy_on_first_loader(const asset_loader_info_t *i, void *user) {
    doomed_t *d = user;
    if (d->seen < 4) snprintf(d->names[d->seen], sizeof d->names[0], "%s", i->name);
    if (d->seen++ == 0) asset_server_destroy(d->s);
    return true;
}

static bool destroy_on_first_entry(const asset_cache_info_t *i, void *user) {
    doomed_t *d = user;
    if (d->seen < 4) snprintf(d->names[d->seen], sizeof d->names[0], "%s", i->loader);
    if (d->seen++ == 0) asset_server_destroy(d->s);
    return true;
}

static void test_an_introspection_callback_may_destroy_the_server(void **state) {
    (void)state;
    doomed_t d = {.s = tu_server(1)};
    assert_int_equal(asset_server_foreach_loader(d.s, destroy_on_first_loader, &d), 2);
    assert_string_equal(d.names[1], d.names[0][0] == 'j' ? "bytes" : "json"); /* ASan */
    doomed_t c = {.s = tu_server(1)};
    assert_int_equal(asset_mem_put(c.s, "a.json", "1", 1), ASSET_OK);
    assert_int_equal(asset_mem_put(c.s, "b.bin", "2", 1), ASSET_OK);
    asset_handle_release(tu_load_wait(c.s, "mem://a.json", ASSET_OK));
    asset_handle_release(tu_load_wait(c.s, "mem://b.bin", ASSET_OK));
    assert_int_equal(asset_server_foreach_cached(c.s, destroy_on_first_entry, &c), 2);
    assert_true(strcmp(c.names[1], "json") == 0 || strcmp(c.names[1], "bytes") == 0);
}

/* The recorder counted the events it lost to out of memory (no room for the event or
 * its strings) but wrote nothing of it: a trace with holes (a load with no end, a
 * phase missing) read as complete. The written file says how many were dropped, as
 * "otherData" (read by tools) and as a global instant on the timeline (a review). */
static void test_chrome_json_says_how_many_events_were_dropped(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_trace_event_t e = {.phase = ASSET_TRACE_QUEUED,
                             .time_ns = 1000,
                             .id = 7,
                             .uri = "mem://a",
                             .loader = "bytes",
                             .thread = 1};
    asset_trace_record(&e, tr);
    tl_fail_allocs = 1; /* the next event's uri copy */
    e.phase = ASSET_TRACE_READ_START;
    e.time_ns = 2000;
    asset_trace_record(&e, tr);
    assert_int_equal(tl_fail_allocs, 0);
    e.phase = ASSET_TRACE_DELIVERED;
    e.time_ns = 3000;
    asset_trace_record(&e, tr);
    assert_int_equal(asset_trace_count(tr), 2);
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "dropped.json");
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    cJSON *root = read_json_file(path);
    cJSON *other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
    cJSON *dropped = cJSON_GetObjectItemCaseSensitive(other, "dropped_events");
    assert_true(cJSON_IsNumber(dropped));
    assert_int_equal(dropped->valueint, 1);
    bool marked = false;
    cJSON *ev;
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(root, "traceEvents")) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(ev, "name");
        if (cJSON_IsString(name) && strstr(name->valuestring, "1 event dropped")) marked = true;
    }
    assert_true(marked);
    cJSON_Delete(root);
    asset_trace_destroy(tr);
    /* a complete trace says 0 and marks nothing */
    tr = asset_trace_create();
    asset_trace_record(&e, tr);
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    root = read_json_file(path);
    other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(other, "dropped_events")->valueint, 0);
    cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(root, "traceEvents")) {
        cJSON *name = cJSON_GetObjectItemCaseSensitive(ev, "name");
        assert_null(strstr(name->valuestring, "dropped"));
    }
    cJSON_Delete(root);
    asset_trace_destroy(tr);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* The writer held the recorder's lock while it wrote the file: every event of every
 * server thread (the hook is called with the server's lock held, at times) waited for
 * the disk, so writing the trace so far mid-run (a "dump" key) stalled all loads for as
 * long. It copies the record list under the lock and writes without it. Shown with a
 * FIFO whose reader takes the first bytes, then waits for an event recorded meanwhile
 * before it reads the rest: the writer, stuck on the full pipe, held the lock. */
typedef struct dump {
    const char *path;
    asset_trace_t *tr;
    atomic_bool started, recorded, timed_out;
    size_t bytes;
} dump_t;
static void dump_reader(void *arg) {
    dump_t *d = arg;
    FILE *f = fopen(d->path, "rb");
    if (!f) return;
    char buf[4096];
    size_t n = fread(buf, 1, 1, f); /* the writer is inside its write */
    d->bytes = n;
    atomic_store(&d->started, true);
    uint64_t deadline = uv_hrtime() + 10 * 1000000000ull;
    while (!atomic_load(&d->recorded) && uv_hrtime() < deadline) tu_os_yield();
    if (!atomic_load(&d->recorded)) atomic_store(&d->timed_out, true);
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) d->bytes += n;
    fclose(f);
}
static void dump_recorder(void *arg) {
    dump_t *d = arg;
    uint64_t deadline = uv_hrtime() + 60 * 1000000000ull;
    while (!atomic_load(&d->started) && uv_hrtime() < deadline) tu_os_yield();
    asset_trace_event_t e = {.phase = ASSET_TRACE_QUEUED,
                             .time_ns = 1,
                             .id = 1,
                             .uri = "mem://late",
                             .loader = "bytes",
                             .thread = 2};
    asset_trace_record(&e, d->tr);
    atomic_store(&d->recorded, true);
}

static void test_writing_a_trace_does_not_stall_its_recording(void **state) {
    (void)state;
    if (!tu_os_has_fifos()) skip();
    dump_t d = {0};
    d.tr = asset_trace_create();
    assert_non_null(d.tr);
    for (uint64_t i = 1; i <= 4000; i++) { /* far more than a pipe holds once written */
        asset_trace_event_t e = {.phase = ASSET_TRACE_QUEUED,
                                 .time_ns = i,
                                 .id = i,
                                 .uri = "mem://some/asset/with/a/longish/name.json",
                                 .loader = "json",
                                 .thread = 1};
        asset_trace_record(&e, d.tr);
    }
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "fifo");
    assert_int_equal(tu_os_mkfifo(path), 0);
    d.path = path;
    uv_thread_t reader, recorder;
    assert_int_equal(uv_thread_create(&reader, dump_reader, &d), 0);
    assert_int_equal(uv_thread_create(&recorder, dump_recorder, &d), 0);
    assert_int_equal(asset_trace_write_chrome_json(d.tr, path), ASSET_OK);
    uv_thread_join(&reader);
    uv_thread_join(&recorder);
    assert_false(atomic_load(&d.timed_out)); /* the event waited for the write before */
    assert_true(d.bytes > 4000 * 100);
    assert_int_equal(asset_trace_count(d.tr), 4001);
    asset_trace_destroy(d.tr);
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* asset_server_set_trace waits for the calls of the OLD hook only. It counted every
 * call in flight, of any hook, and waited for none to be: under tracing from several
 * threads whose calls overlap, it never returned. Shown with two calls: one of the old
 * hook that the setter must wait for, and one of the new hook, started after the swap,
 * that lasts until the setter returns (or a deadline: before, the setter waited for it). */
typedef struct starve {
    asset_server_t *s;
    uv_sem_t old_entered, new_entered, release_old;
    atomic_bool set_returned, new_timed_out;
    int old_user, new_user;
} starve_t;
static starve_t g_starve;
static void starve_hook(const asset_trace_event_t *e, void *user) {
    (void)e;
    starve_t *st = &g_starve;
    if (user == &st->old_user) {
        uv_sem_post(&st->old_entered);
        uv_sem_wait(&st->release_old);
        return;
    }
    uv_sem_post(&st->new_entered);
    uint64_t deadline = uv_hrtime() + 5 * 1000000000ull;
    while (!atomic_load(&st->set_returned) && uv_hrtime() < deadline) tu_os_yield();
    if (!atomic_load(&st->set_returned)) atomic_store(&st->new_timed_out, true);
}
static void starve_trace_point(void *arg) {
    char uri[] = "task://starve";
    asset__job_t j = {0};
    j.trace_id = (uint64_t)(uintptr_t)arg;
    j.uri = uri;
    asset__trace_job(g_starve.s, &j, ASSET__TR_PARSE_START, ASSET_OK);
}
static void starve_setter(void *arg) {
    (void)arg;
    asset_server_set_trace(g_starve.s, starve_hook, &g_starve.new_user);
    atomic_store(&g_starve.set_returned, true);
}

static void test_set_trace_waits_only_for_calls_of_the_old_hook(void **state) {
    (void)state;
    starve_t *st = &g_starve;
    memset(st, 0, sizeof *st);
    uv_sem_init(&st->old_entered, 0);
    uv_sem_init(&st->new_entered, 0);
    uv_sem_init(&st->release_old, 0);
    asset_server_config_t cfg = {.trace = starve_hook, .trace_user = &st->old_user};
    st->s = asset_server_create(&cfg);
    assert_non_null(st->s);
    asset__tracer_t *old = atomic_load(&st->s->tracer);
    uv_thread_t t_old, t_set, t_new;
    assert_int_equal(uv_thread_create(&t_old, starve_trace_point, (void *)1), 0);
    uv_sem_wait(&st->old_entered); /* a call of the old hook is in flight */
    assert_int_equal(uv_thread_create(&t_set, starve_setter, NULL), 0);
    /* the swap is done when the setter has published the new hook for new calls */
    uint64_t deadline = uv_hrtime() + 60 * 1000000000ull;
    while (atomic_load(&st->s->tracer) == old && uv_hrtime() < deadline) tu_os_yield();
    assert_ptr_not_equal(atomic_load(&st->s->tracer), old);
    assert_int_equal(uv_thread_create(&t_new, starve_trace_point, (void *)2), 0);
    uv_sem_wait(&st->new_entered);                /* a call of the new hook is in flight */
    assert_false(atomic_load(&st->set_returned)); /* the old hook's call has not ended */
    uv_sem_post(&st->release_old);
    uv_thread_join(&t_old);
    uv_thread_join(&t_set);
    uv_thread_join(&t_new);
    assert_false(atomic_load(&st->new_timed_out)); /* the setter waited for the new hook */
    asset_server_destroy(st->s);
    uv_sem_destroy(&st->old_entered);
    uv_sem_destroy(&st->new_entered);
    uv_sem_destroy(&st->release_old);
}

/* Hooks replaced while three threads trace without pause: once asset_server_set_trace
 * returns, the replaced recorder gets no event (it is destroyed then; asan would see a
 * late one), and the new one gets events. */
typedef struct churn {
    asset_server_t *s;
    atomic_bool stop;
} churn_t;
static void churn_tracer(void *arg) {
    churn_t *c = arg;
    char uri[] = "task://churn";
    asset__job_t j = {0};
    j.trace_id = 7;
    j.uri = uri;
    while (!atomic_load(&c->stop)) asset__trace_job(c->s, &j, ASSET__TR_PARSE_START, ASSET_OK);
}

/* A hook that counts its calls (a recorder would grow without bound under churn_tracer:
 * the web build's fixed memory ran out). Each is freed as soon as its replacement's
 * set returned: a late call of it is a use after free (ASan). */
typedef struct counter {
    atomic_size_t n;
} counter_t;
static void count_event(const asset_trace_event_t *e, void *user) {
    (void)e;
    atomic_fetch_add(&((counter_t *)user)->n, 1);
}
static counter_t *counter_new(void) {
    counter_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    return c;
}

static void test_a_replaced_hook_is_not_called_once_set_trace_returned(void **state) {
    (void)state;
    churn_t c = {0};
    counter_t *cur = counter_new();
    asset_server_config_t cfg = {.trace = count_event, .trace_user = cur};
    c.s = asset_server_create(&cfg);
    assert_non_null(c.s);
    uv_thread_t t[3];
    for (int i = 0; i < 3; i++) assert_int_equal(uv_thread_create(&t[i], churn_tracer, &c), 0);
    uint64_t deadline = uv_hrtime() + 60 * 1000000000ull;
    for (int round = 0; round < 50; round++) {
        counter_t *next = counter_new();
        asset_server_set_trace(c.s, count_event, next);
        size_t n = atomic_load(&cur->n);
        while (atomic_load(&next->n) < 3 && uv_hrtime() < deadline) tu_os_yield();
        assert_true(atomic_load(&next->n) >= 3);
        assert_int_equal(atomic_load(&cur->n), n); /* none after the set returned */
        free(cur);
        cur = next;
    }
    atomic_store(&c.stop, true);
    for (int i = 0; i < 3; i++) uv_thread_join(&t[i]);
    asset_server_set_trace(c.s, NULL, NULL);
    asset_server_destroy(c.s);
    free(cur);
}

/* Twenty-first review: the writer closed a load's track at its last DELIVERED, but a
 * job whose handles were all cancelled while its parse ran reports its PARSE_END after
 * that DELIVERED: the "parse" slice ended after its "load" had, a slice not nested in
 * its track (Perfetto and chrome://tracing pair an async end with the innermost open
 * slice: the load's end closed the parse, and the parse's end a load already over). */
typedef struct parse_end_seen {
    asset_trace_t *tr;
    uv_sem_t sem;
} parse_end_seen_t;
static void record_and_post_parse_end(const asset_trace_event_t *e, void *user) {
    parse_end_seen_t *p = user;
    asset_trace_record(e, p->tr);
    if (e->phase == ASSET_TRACE_PARSE_END) uv_sem_post(&p->sem);
}

static void test_chrome_json_closes_a_cancelled_load_after_its_last_slice(void **state) {
    (void)state;
    parse_end_seen_t seen = {.tr = asset_trace_create()};
    assert_non_null(seen.tr);
    assert_int_equal(uv_sem_init(&seen.sem, 0), 0);
    asset_server_t *s = tu_server(1);
    tu_parse_gate_t g;
    tu_parse_gate_register(s, &g);
    asset_server_set_trace(s, record_and_post_parse_end, &seen);
    assert_int_equal(asset_mem_put(s, "k.gated", "abc", 3), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "mem://k.gated", NULL);
    tu_parse_gate_wait_entered(&g, 1); /* its parse runs */
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED); /* DELIVERED, the parse still running */
    tu_parse_gate_open(&g);
    uv_sem_wait(&seen.sem); /* PARSE_END recorded */
    trace_file_t tf = trace_file_write(s, seen.tr);
    /* in file order, with their times: the parse opens and closes inside the load */
    double load_b = -1, load_e = -1, parse_b = -1, parse_e = -1;
    int order = 0, load_e_at = 0, parse_e_at = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, tf.evs) {
        order++;
        const char *ph = cJSON_GetObjectItem(ev, "ph")->valuestring;
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        double ts = cJSON_GetObjectItem(ev, "ts")->valuedouble;
        if (!strcmp(name, "load mem://k.gated")) {
            if (!strcmp(ph, "b")) load_b = ts;
            if (!strcmp(ph, "e")) {
                assert_true(load_e < 0); /* closed once */
                load_e = ts;
                load_e_at = order;
            }
        } else if (!strcmp(name, "parse")) {
            if (!strcmp(ph, "b")) parse_b = ts;
            if (!strcmp(ph, "e")) {
                parse_e = ts;
                parse_e_at = order;
            }
        }
    }
    assert_true(load_b >= 0 && load_e >= 0 && parse_b >= 0 && parse_e >= 0);
    assert_true(load_b <= parse_b && parse_b <= parse_e);
    if (parse_e > load_e || parse_e_at > load_e_at)
        fail_msg("the load closed at %.3f (event %d), its parse at %.3f (event %d)", load_e,
                 load_e_at, parse_e, parse_e_at);
    trace_file_free(&tf);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
    uv_sem_destroy(&seen.sem);
    asset_trace_destroy(seen.tr);
}

/* mem://key loaded on s through a gated parse (tests/test_util.h), returned once that
 * parse runs, held at the gate. */
static asset_handle_t *load_held_in_parse(asset_server_t *s, tu_parse_gate_t *g, const char *key) {
    tu_parse_gate_register(s, g);
    assert_int_equal(asset_mem_put(s, key, "abc", 3), ASSET_OK);
    char uri[64];
    snprintf(uri, sizeof uri, "mem://%s", key);
    asset_handle_t *h = asset_server_load(s, uri, NULL);
    tu_parse_gate_wait_entered(g, 1);
    return h;
}

/* How many of evs are ph events named name. */
static int count_ph(cJSON *evs, const char *name, const char *ph) {
    int n = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, evs) {
        n += !strcmp(cJSON_GetObjectItem(ev, "name")->valuestring, name) &&
             !strcmp(cJSON_GetObjectItem(ev, "ph")->valuestring, ph);
    }
    return n;
}

/* Thirty-sixth review: a trace written while a cancelled load's parse still ran (its
 * DELIVERED recorded, its PARSE_END not yet) closed the load's track at the DELIVERED
 * with the "parse" slice still open in it: a viewer pairs that end with the innermost
 * open slice, the parse, and the load stayed open; a slice not nested in its track, as
 * the test above, for a trace written a moment earlier. A load with a step under way is
 * under way: written open, its step open in it. */
static void test_chrome_json_leaves_a_cancelled_load_open_while_its_parse_runs(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_server_t *s = tu_server(1);
    tu_parse_gate_t g;
    asset_server_set_trace(s, asset_trace_record, tr);
    asset_handle_t *h = load_held_in_parse(s, &g, "k.gated");
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED); /* DELIVERED, the parse still running */
    trace_file_t tf = trace_file_write(s, tr);       /* the parse's end, after: not heard */
    int load_b = count_ph(tf.evs, "load mem://k.gated", "b");
    int load_e = count_ph(tf.evs, "load mem://k.gated", "e");
    int parse_b = count_ph(tf.evs, "parse", "b"), parse_e = count_ph(tf.evs, "parse", "e");
    trace_file_free(&tf);
    tu_parse_gate_open(&g); /* before the checks: a failure leaves no worker held */
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
    asset_trace_destroy(tr);
    assert_int_equal(load_b, 1);
    assert_int_equal(parse_b, 1);
    assert_int_equal(parse_e, 0); /* not recorded yet */
    if (load_e) fail_msg("the load's track was closed with its parse still open in it");
}

/* Twenty-first review: a load's track was closed under the URI of the event it closed
 * after, a handle's for a DELIVERED: a load of "uri#label" alone (its job loads uri)
 * began as "load mem://atlas.lab" and ended as "load mem://atlas.lab#hero", two names,
 * so no viewer paired them (an end with no begin, a begin never closed). */
static asset_status_t two_labels_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    for (int i = 0; i < 2; i++) {
        char *l = asset_alloc(1);
        if (!l) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        asset_status_t st = asset_parse_add_labeled(p, i ? "villain" : "hero", l, 1, NULL, NULL);
        if (st != ASSET_OK) {
            asset_free(l);
            return st;
        }
    }
    char *v = asset_alloc(1);
    if (!v) return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    asset_parse_set_value(p, v, 1);
    return ASSET_OK;
}

/* Forty-first review: an ASYNC read finished (asset_request_finish) is queued again for
 * its parse; a cancel while it waited there for a worker freed the job with its read's
 * slice open: READ_START recorded, never READ_END, and the Chrome JSON left the load
 * open for ever ("every begin has an end", on cancel too); the same when there was no
 * memory to queue it (the load failed ASSET_E_NO_MEMORY). The read ends as the handle
 * does, CANCELLED or NO_MEMORY, and the load's track closes. */
static asset_request_t *g_parked_req;
static asset_status_t park_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    g_parked_req = r; /* read by the test once the worker went on to another job */
    return ASSET_PENDING;
}

static void finished_async_read_ends(bool oom) {
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_server_t *s = tu_server(1);
    if (s->nworkers == 0) { /* the worker is held in a parse below: no worker to hold */
        asset_server_destroy(s);
        asset_trace_destroy(tr);
        skip();
        return;
    }
    static const asset_source_t park = {ASSET_SOURCE_ABI, "park", ASSET_SOURCE_ASYNC,
                                        park_read,        NULL,   NULL};
    assert_int_equal(asset_server_register_source(s, &park, NULL), ASSET_OK);
    tu_parse_gate_t g;
    asset_server_set_trace(s, asset_trace_record, tr);
    asset_handle_t *h = asset_server_load(s, "park://x.json", NULL);
    /* the one worker parses this only after x's read returned PENDING */
    asset_handle_t *held = load_held_in_parse(s, &g, "held.gated");
    assert_non_null(g_parked_req);
    assert_int_equal(asset_request_write(g_parked_req, "{}", 2), ASSET_OK);
    /* queued for its parse (the worker is held), or out of memory for that */
    if (oom) /* a ring no job used yet: its first push allocates */
        assert_int_equal(asset_handle_set_priority(h, ASSET_PRIORITY_LOW), ASSET_OK);
    tl_fail_allocs = oom ? 1 : 0;
    asset_request_finish(g_parked_req, ASSET_OK);
    tl_fail_allocs = 0;
    if (!oom) asset_handle_cancel(h);
    asset_status_t want = oom ? ASSET_E_NO_MEMORY : ASSET_E_CANCELLED;
    assert_int_equal(tu_wait(h), want);
    tu_parse_gate_open(&g);
    assert_int_equal(tu_wait(held), ASSET_OK);
    uint64_t id = id_of(tr, "park://x.json", ASSET_TRACE_READ_START);
    assert_true(id != 0);
    asset_trace_phase_t ph[8];
    int n = phases_of(tr, id, ph, 8);
    int starts = 0, ends = 0;
    asset_status_t end_st = ASSET_OK;
    asset_trace_event_t e;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (e.id != id) continue;
        starts += e.phase == ASSET_TRACE_READ_START;
        if (e.phase == ASSET_TRACE_READ_END) {
            ends++;
            end_st = e.status;
        }
    }
    if (starts != 1 || ends != 1)
        fail_msg("park://x.json: %d READ_START, %d READ_END (%d events)", starts, ends, n);
    assert_int_equal(end_st, want);
    assert_int_equal(ph[n - 1], ASSET_TRACE_DELIVERED); /* the read ended before it */
    trace_file_t tf = trace_file_write(s, tr);
    assert_int_equal(count_ph(tf.evs, "load park://x.json", "b"), 1);
    assert_int_equal(count_ph(tf.evs, "load park://x.json", "e"), 1);
    assert_int_equal(count_ph(tf.evs, "read", "b"), count_ph(tf.evs, "read", "e"));
    trace_file_free(&tf);
    asset_handle_release(h);
    asset_handle_release(held);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
    asset_trace_destroy(tr);
}

static void test_a_finished_async_read_cancelled_before_its_parse_ends_its_read(void **state) {
    (void)state;
    finished_async_read_ends(false);
}

static void test_a_finished_async_read_not_requeued_for_want_of_memory_ends_it(void **state) {
    (void)state;
    finished_async_read_ends(true);
}

static void test_chrome_json_ends_a_labeled_load_under_the_name_it_began(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    asset_server_t *s = tu_server(1);
    static const char *const suffixes[] = {".lab", NULL};
    asset_loader_t ld = {
        .abi = ASSET_LOADER_ABI, .name = "lab", .suffixes = suffixes, .parse = two_labels_parse};
    assert_int_equal(asset_server_register_loader(s, &ld, NULL, 0), ASSET_OK);
    asset_server_set_trace(s, asset_trace_record, tr);
    assert_int_equal(asset_mem_put(s, "atlas.lab", "x", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://atlas.lab#hero", ASSET_OK);
    trace_file_t tf = trace_file_write(s, tr);
    int begins = 0, ends = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, tf.evs) {
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        if (strncmp(name, "load ", 5) != 0) continue;
        const char *ph = cJSON_GetObjectItem(ev, "ph")->valuestring;
        if (!strcmp(ph, "b")) {
            assert_string_equal(name, "load mem://atlas.lab");
            begins++;
        } else if (!strcmp(ph, "e")) {
            if (strcmp(name, "load mem://atlas.lab") != 0)
                fail_msg("the load began as \"load mem://atlas.lab\", ended as \"%s\"", name);
            ends++;
        }
    }
    assert_int_equal(begins, 1);
    assert_int_equal(ends, 1);
    trace_file_free(&tf);
    asset_handle_release(h);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
}

#ifndef __EMSCRIPTEN__
/* The bytes of the file at path (free them), *n their count. */
static char *read_whole_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf) buf[*n] = 0;
    return buf;
}
#endif

#ifndef __EMSCRIPTEN__ /* (the tests that use it skip there) */
/* n loads of mem://a (ids 1..n), each queued and delivered, recorded into tr. */
static void record_loads(asset_trace_t *tr, uint64_t n) {
    asset_trace_event_t e = {.time_ns = 1000, .uri = "mem://a", .loader = "bytes", .thread = 1};
    for (uint64_t i = 0; i < n; i++) {
        e.id = i + 1;
        e.phase = ASSET_TRACE_QUEUED;
        asset_trace_record(&e, tr);
        e.phase = ASSET_TRACE_DELIVERED;
        asset_trace_record(&e, tr);
    }
}
#endif

#ifndef __EMSCRIPTEN__ /* (the tests that use it skip there) */
/* The entries of dir (. and .. not counted), or a negative libuv error. */
static int dir_entries(const char *dir) {
    uv_fs_t req;
    int n = uv_fs_scandir(NULL, &req, dir, 0, NULL);
    uv_fs_req_cleanup(&req);
    return n;
}
#endif

/* Thirtieth review: a recorder set while a load was in flight (a key that starts
 * tracing mid-load, the loading screen already running) heard its PARSE_END and
 * DELIVERED, not its QUEUED nor its PARSE_START: the writer ended a "load <uri>" track
 * and a "parse" slice that it never began, which viewers refuse ("unmatched end") or
 * drop, so the load vanished from the timeline. Every end the file holds has its begin
 * before it. */
static void test_chrome_json_begins_a_load_the_recorder_joined_midway(void **state) {
    (void)state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    asset_server_t *s = tu_server(1);
    tu_parse_gate_t g;
    /* its parse runs: QUEUED, READ_*, PARSE_START are over */
    asset_handle_t *h = load_held_in_parse(s, &g, "mid.gated");
    asset_server_set_trace(s, asset_trace_record, tr);
    tu_parse_gate_open(&g);
    assert_int_equal(tu_wait(h), ASSET_OK);
    trace_file_t tf = trace_file_write(s, tr);
    int load_open = 0, parse_open = 0, loads = 0, delivered = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, tf.evs) {
        const char *ph = cJSON_GetObjectItem(ev, "ph")->valuestring;
        const char *name = cJSON_GetObjectItem(ev, "name")->valuestring;
        int *open = !strcmp(name, "load mem://mid.gated") ? &load_open
                    : !strcmp(name, "parse")              ? &parse_open
                                                          : NULL;
        if (!strcmp(name, "delivered")) {
            assert_int_equal(load_open, 1); /* on the load's track, inside it */
            delivered++;
        }
        if (!open) continue;
        if (!strcmp(ph, "b")) {
            (*open)++;
            loads += open == &load_open;
        } else if (!strcmp(ph, "e")) {
            if (*open == 0) fail_msg("\"%s\" ends without a begin before it", name);
            (*open)--;
        }
    }
    assert_int_equal(loads, 1);
    assert_int_equal(delivered, 1);
    assert_int_equal(load_open, 0);
    assert_int_equal(parse_open, 0);
    trace_file_free(&tf);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_parse_gate_destroy(&g);
    asset_trace_destroy(tr);
}

/* Twenty-second review: the trace file was opened "w" (truncated) and written in place,
 * so a write that failed midway (a full disk, a file size limit) returned ASSET_E_IO
 * and left the good trace written before it cut short, a file no viewer opens. With
 * RLIMIT_FSIZE under the new trace's size (SIGXFSZ ignored: the write fails EFBIG), the
 * old file is whole afterwards, and no temporary file is left beside it. */
static void test_a_failed_trace_write_leaves_the_previous_file_whole(void **state) {
    (void)state;
#if defined(_WIN32) || defined(__EMSCRIPTEN__)
    skip(); /* no RLIMIT_FSIZE */
#else
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "trace.json");
    asset_trace_t *small = asset_trace_create(), *big = asset_trace_create();
    assert_non_null(small);
    assert_non_null(big);
    record_loads(small, 1);
    record_loads(big, 400); /* about 40 KB of JSON */
    assert_int_equal(asset_trace_write_chrome_json(small, path), ASSET_OK);
    size_t good_n = 0;
    char *good = read_whole_file(path, &good_n);
    assert_non_null(good);
    assert_true(good_n > 0 && good_n < 4096);

    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    low = old;
    low.rlim_cur = 8192;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    asset_status_t st = asset_trace_write_chrome_json(big, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(st, ASSET_E_IO);

    size_t now_n = 0;
    char *now = read_whole_file(path, &now_n);
    assert_non_null(now);
    if (now_n != good_n || memcmp(now, good, good_n) != 0)
        fail_msg("the old trace (%zu bytes) is now %zu bytes: \"%.40s...\"", good_n, now_n, now);
    assert_int_equal(dir_entries(dir), 1); /* trace.json, and no temporary file */
    free(now);
    free(good);
    asset_trace_destroy(small);
    asset_trace_destroy(big);
    tu_rmrf(dir);
    free(path);
    free(dir);
#endif
}

/* Twenty-second review: the trace is written beside its path and renamed over it, so a
 * trace that replaced one got a new file's mode (0666 & ~umask) instead of the old
 * file's: a trace kept 0600 (it names every asset and path loaded) became readable to
 * every user at the next write. The replacement keeps the old file's permissions. */
static void test_a_rewritten_trace_keeps_the_old_files_permissions(void **state) {
    (void)state;
#if defined(_WIN32) || defined(__EMSCRIPTEN__)
    skip(); /* POSIX permissions */
#else
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "trace.json");
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    mode_t um = umask(022);
    assert_int_equal(asset_trace_write_chrome_json(tr, path), ASSET_OK);
    assert_int_equal(chmod(path, 0600), 0);
    asset_status_t st = asset_trace_write_chrome_json(tr, path);
    umask(um);
    assert_int_equal(st, ASSET_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    if ((sb.st_mode & 07777) != 0600)
        fail_msg("the 0600 trace is now %04o", (unsigned)(sb.st_mode & 07777));
    asset_trace_destroy(tr);
    tu_rmrf(dir);
    free(path);
    free(dir);
#endif
}

/* Twenty-second review: on Windows a rename over a file fails while another program
 * holds it open without FILE_SHARE_DELETE (a trace viewer, an editor), where writing in
 * place succeeds when it shares writing: since the trace was written beside its path
 * and renamed over it, such a write returned ASSET_E_IO and the trace was not updated.
 * It is written in place then, and no temporary file is left beside it. */
static void test_a_trace_held_open_by_a_viewer_is_still_rewritten(void **state) {
    (void)state;
#if !defined(_WIN32)
    skip(); /* Windows sharing modes */
#else
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "trace.json");
    asset_trace_t *small = asset_trace_create(), *big = asset_trace_create();
    assert_non_null(small);
    assert_non_null(big);
    record_loads(big, 1);
    assert_int_equal(asset_trace_write_chrome_json(small, path), ASSET_OK);
    HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    assert_true(h != INVALID_HANDLE_VALUE);
    DWORD small_n = GetFileSize(h, NULL);
    asset_status_t st = asset_trace_write_chrome_json(big, path);
    DWORD big_n = GetFileSize(h, NULL);
    CloseHandle(h);
    assert_int_equal(st, ASSET_OK);
    assert_true(big_n > small_n); /* the viewer's file holds the new trace */
    char *pat = tu_path(dir, "*");
    WIN32_FIND_DATAA fd;
    HANDLE fh = FindFirstFileA(pat, &fd);
    assert_true(fh != INVALID_HANDLE_VALUE);
    int entries = 0;
    do entries += strcmp(fd.cFileName, ".") && strcmp(fd.cFileName, "..");
    while (FindNextFileA(fh, &fd));
    FindClose(fh);
    assert_int_equal(entries, 1); /* trace.json, and no temporary file */
    asset_trace_destroy(small);
    asset_trace_destroy(big);
    tu_rmrf(dir);
    free(pat);
    free(path);
    free(dir);
#endif
}

/* Twenty-third review: the trace that replaces one was renamed over it with its bytes
 * still in the OS's cache (no fsync, no FlushFileBuffers): a power cut soon after could
 * leave an empty or partial trace where a whole one had been. The new file is synced
 * before the rename (asset__file_sync), and a failed sync fails the write (ASSET_E_IO),
 * the old trace whole and no temporary file beside it. Durability itself no test can
 * see: the hook stands for the sync, sees the old trace still at the path when it runs
 * (before the rename), and fails it on demand. */
#ifndef __EMSCRIPTEN__ /* (the test skips there: no record_loads) */
static int g_sync_calls, g_sync_fail;
static long g_sync_saw; /* the size of the file at the path when the sync ran */
static const char *g_sync_path;

static int sync_hook(FILE *f) {
    (void)f;
    g_sync_calls++;
    size_t n = 0;
    char *now = read_whole_file(g_sync_path, &n);
    g_sync_saw = now ? (long)n : -1;
    free(now);
    return g_sync_fail;
}

#endif

#ifndef __EMSCRIPTEN__
/* A temporary directory whose trace.json a trace of 1 load (small) wrote (bytes, n of
 * them); big, a trace of 3 loads, not written. The sync hooks look at path. */
typedef struct {
    char *dir, *path, *bytes;
    size_t n;
    asset_trace_t *small, *big;
} traces_t;

static void traces_open(traces_t *t) {
    t->dir = tu_mkdtemp();
    t->path = tu_path(t->dir, "trace.json");
    t->small = asset_trace_create();
    t->big = asset_trace_create();
    assert_non_null(t->small);
    assert_non_null(t->big);
    record_loads(t->small, 1);
    record_loads(t->big, 3);
    assert_int_equal(asset_trace_write_chrome_json(t->small, t->path), ASSET_OK);
    t->bytes = read_whole_file(t->path, &t->n);
    assert_non_null(t->bytes);
    g_sync_path = t->path;
}

/* path holds small's trace, whole, and the directory nothing else (no temporary file) */
static void traces_small_at_path(const traces_t *t) {
    size_t now_n = 0;
    char *now = read_whole_file(t->path, &now_n);
    assert_non_null(now);
    assert_true(now_n == t->n && memcmp(now, t->bytes, t->n) == 0);
    assert_int_equal(dir_entries(t->dir), 1);
    free(now);
}

/* Writes big's trace at path (ASSET_OK) and returns the size of the file there: big's,
 * longer than small's */
static size_t traces_big_written(const traces_t *t) {
    assert_int_equal(asset_trace_write_chrome_json(t->big, t->path), ASSET_OK);
    size_t n = 0;
    char *b = read_whole_file(t->path, &n);
    assert_non_null(b);
    assert_true(n > t->n);
    free(b);
    return n;
}

/* asset__dir_sync_hook: counts, notes the directory, what is at g_sync_path and how many
 * entries the directory has, and fails with g_dsync_fail */
static int g_dsync_calls, g_dsync_fail, g_dsync_entries;
static long g_dsync_saw;
static char g_dsync_dir[4096];

static int dir_sync_hook(const char *d) {
    g_dsync_calls++;
    snprintf(g_dsync_dir, sizeof g_dsync_dir, "%s", d);
    size_t n = 0;
    char *now = read_whole_file(g_sync_path, &n);
    g_dsync_saw = now ? (long)n : -1;
    free(now);
    g_dsync_entries = dir_entries(d);
    return g_dsync_fail;
}

/* traces_open, then the sync hooks' counts and failures at 0 and the hooks given set
 * (NULL: none); traces_close unsets them */
static void traces_open_hooked(traces_t *t, int (*file_sync)(FILE *), int (*dir_sync)(const char *),
                               int (*rename_over)(const char *, const char *)) {
    traces_open(t);
    g_sync_calls = g_sync_fail = 0;
    g_dsync_calls = g_dsync_fail = 0;
    asset__file_sync_hook = file_sync;
    asset__dir_sync_hook = dir_sync;
    asset__rename_over_hook = rename_over;
}

static void traces_close(traces_t *t) {
    asset__file_sync_hook = NULL;
    asset__dir_sync_hook = NULL;
    asset__rename_over_hook = NULL;
    free(t->bytes);
    asset_trace_destroy(t->small);
    asset_trace_destroy(t->big);
    tu_rmrf(t->dir);
    free(t->path);
    free(t->dir);
}
#endif

static void test_a_replacing_trace_is_synced_before_its_rename(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    traces_t t;
    traces_open_hooked(&t, sync_hook, NULL, NULL);
    asset_status_t st = asset_trace_write_chrome_json(t.small, t.path);
    assert_int_equal(st, ASSET_OK);
    assert_int_equal(g_sync_calls, 1);       /* was 0: never synced */
    assert_int_equal(g_sync_saw, (long)t.n); /* before the rename */
    g_sync_fail = EIO;
    st = asset_trace_write_chrome_json(t.big, t.path);
    asset__file_sync_hook = NULL;
    assert_int_equal(g_sync_calls, 2);
    assert_int_equal(st, ASSET_E_IO);
    traces_small_at_path(&t); /* trace.json, and no temporary file */
    traces_close(&t);
#endif
}

/* Twenty-fourth review: the trace renamed over the old one had its bytes synced, but on
 * POSIX not the directory the rename changed: a power cut soon after could bring the old
 * trace back. The directory is synced after the rename (asset__dir_sync_of); its failure
 * is not the write's (ASSET_OK: the new trace is whole at the path). Windows has nothing
 * to sync (MOVEFILE_WRITE_THROUGH): the hook is never called there. */
static void test_a_replacing_trace_syncs_its_directory_after_the_rename(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    traces_t t;
    traces_open_hooked(&t, NULL, dir_sync_hook, NULL);
    size_t big_n = traces_big_written(&t);
#ifdef _WIN32
    (void)big_n;
    assert_int_equal(g_dsync_calls, 0); /* nothing to sync there */
#else
    assert_int_equal(g_dsync_calls, 1);         /* was 0: never synced */
    assert_string_equal(g_dsync_dir, t.dir);    /* the trace's own directory */
    assert_int_equal(g_dsync_saw, (long)big_n); /* after the rename */
    assert_int_equal(g_dsync_entries, 1);       /* and the temporary file gone */
    g_dsync_fail = EIO;                         /* a failure: the trace is written */
    assert_int_equal(asset_trace_write_chrome_json(t.small, t.path), ASSET_OK);
    assert_int_equal(g_dsync_calls, 2);
    traces_small_at_path(&t);
#endif
    asset__dir_sync_hook = NULL;
    /* and without the hook, the OS's own fsync of the directory goes through */
    assert_int_equal(asset_trace_write_chrome_json(t.big, t.path), ASSET_OK);
    assert_int_equal(asset__dir_sync_of(t.path), 0);
    assert_int_equal(asset__dir_sync_of("trace.json"), 0); /* "." */
    traces_close(&t);
#endif
}

/* Twenty-fifth review: a rename the OS refuses (a viewer holding the trace open on
 * Windows, a sticky directory on POSIX) has the trace copied in place, and that copy was
 * closed with its bytes still in the OS's cache, where the renamed file is synced: a
 * power cut soon after could leave the trace empty or cut short. The copy is synced
 * (asset__file_sync) once whole, and a failed sync fails the write (ASSET_E_IO). The
 * rename hook stands for the OS's refusal; the sync hook sees the file at the path. */
#ifndef __EMSCRIPTEN__
static int refuse_rename(const char *from, const char *to) {
    (void)from, (void)to;
    return EACCES;
}

/* sync_hook, failing the second sync of a write: the copy's */
static int copy_sync_fails(FILE *f) {
    int e = sync_hook(f);
    return g_sync_calls == 2 ? EIO : e;
}
#endif

static void test_a_trace_copied_in_place_is_synced(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    traces_t t;
    traces_open_hooked(&t, sync_hook, NULL, refuse_rename);
    size_t big_n = traces_big_written(&t);     /* copied in place */
    assert_int_equal(g_sync_calls, 2);         /* was 1: the temporary file only */
    assert_int_equal(g_sync_saw, (long)big_n); /* the copy, whole at the path */
    assert_int_equal(dir_entries(t.dir), 1);   /* and no temporary file */
    g_sync_calls = 0;
    asset__file_sync_hook = copy_sync_fails; /* the copy's sync fails: the write does */
    assert_int_equal(asset_trace_write_chrome_json(t.small, t.path), ASSET_E_IO);
    assert_int_equal(g_sync_calls, 2);
    assert_int_equal(dir_entries(t.dir), 1);
    asset__file_sync_hook = NULL;
    assert_int_equal(asset_trace_write_chrome_json(t.small, t.path), ASSET_OK); /* by the OS */
    asset__rename_over_hook = NULL;
    traces_small_at_path(&t);
    traces_close(&t);
#endif
}

/* Twenty-sixth review: a trace written in place (path a symlink, or no file can be made
 * beside it) was closed with its bytes still in the OS's cache, where a renamed or
 * copied trace is synced: a power cut soon after the ASSET_OK could leave it empty. It
 * is synced too (asset__file_sync), and a failed sync fails the write (ASSET_E_IO); a
 * FIFO, which has nothing to sync, is still written (the stall test above). The sync
 * hook sees the link's file whole at the link. */
static void test_a_trace_written_in_place_is_synced(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    if (!tu_os_has_symlinks()) skip();
    traces_t t;
    traces_open_hooked(&t, sync_hook, NULL, NULL);
    char *link = tu_path(t.dir, "link.json");
    assert_int_equal(tu_os_symlink(t.path, link), 0);
    g_sync_path = link;
    assert_int_equal(asset_trace_write_chrome_json(t.big, link), ASSET_OK);
    assert_int_equal(g_sync_calls, 1); /* was 0: never synced */
    size_t big_n = 0;
    free(read_whole_file(t.path, &big_n));
    assert_true(big_n > t.n);
    assert_int_equal(g_sync_saw, (long)big_n); /* the link's file, whole */
    g_sync_fail = EIO;
    assert_int_equal(asset_trace_write_chrome_json(t.small, link), ASSET_E_IO);
    asset__file_sync_hook = NULL;
    assert_int_equal(g_sync_calls, 2);
    assert_int_equal(dir_entries(t.dir), 2); /* trace.json and the link: no temporary */
    assert_int_equal(asset_trace_write_chrome_json(t.small, link), ASSET_OK); /* by the OS */
    size_t now_n = 0;
    char *now = read_whole_file(t.path, &now_n); /* through the link, kept a link */
    assert_true(now && now_n == t.n && memcmp(now, t.bytes, t.n) == 0);
    assert_int_equal(asset__path_lkind(link), ASSET__KIND_LINK);
    free(now);
    free(link);
    traces_close(&t);
#endif
}

/* Twenty-sixth review: the copy in place of a refused rename opened path with fopen's
 * "wb", O_CREAT: in a sticky world-writable directory (/tmp) with fs.protected_regular
 * (systemd's default), an O_CREAT open of another user's file fails EACCES even where
 * this user may write it, the very case (another user's trace in /tmp) the copy is for:
 * ASSET_E_IO. It opens path without O_CREAT (asset__fopen_existing). The kernel's
 * refusal needs that sysctl and two users (not this machine's root: the sysctl is off
 * here); what the test sees is the missing O_CREAT: a path gone after the refused
 * rename is not made again (it was: ASSET_OK and a new file), and a path there is cut
 * and written. */
#ifndef __EMSCRIPTEN__
static int refuse_rename_and_remove(const char *from, const char *to) {
    (void)from;
    assert_int_equal(remove(to), 0);
    return EPERM;
}
#endif

static void test_a_trace_copied_in_place_opens_its_path_without_creating_it(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    traces_t t;
    traces_open_hooked(&t, NULL, NULL, refuse_rename_and_remove);
    errno = 0;
    asset_status_t st = asset_trace_write_chrome_json(t.big, t.path);
    int err = errno;
    asset__rename_over_hook = NULL;
    assert_int_equal(st, ASSET_E_IO);
    assert_int_equal(err, ENOENT);
    assert_int_equal(dir_entries(t.dir), 0); /* no file made, no temporary left */
    FILE *f = asset__fopen_existing(t.path);
    assert_null(f);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(dir_entries(t.dir), 0);
    /* a path there: cut to nothing and written */
    assert_int_equal(asset_trace_write_chrome_json(t.big, t.path), ASSET_OK);
    asset__rename_over_hook = refuse_rename;
    assert_int_equal(asset_trace_write_chrome_json(t.small, t.path), ASSET_OK);
    asset__rename_over_hook = NULL;
    traces_small_at_path(&t);
    traces_close(&t);
#endif
}

/* Twenty-seventh review: the file that replaces a trace was made 0666 & ~umask and only
 * then given the old file's mode (fchmod): a trace kept 0600 (it names every asset and
 * path loaded) was readable by every user for a moment, and for good when the old
 * file's mode could not be read by then (the file removed after the writer saw it: the
 * temporary file was dropped and the trace made in place 0666 & ~umask). It is made
 * with its mode (asset__fopen_new: like's, or 0600 when like cannot be read), O_EXCL.
 * No hook runs between an open and a chmod: the test sees the new file's mode at once
 * after the open, and the old file removed at the writer's first allocation (the
 * temporary file's name, after it looked at path: an empty recorder allocates nothing
 * before), which left a 0644 trace. */
#if !defined(_WIN32) && !defined(__EMSCRIPTEN__)
static const char *g_remove_path;
static void remove_path(void) { assert_int_equal(remove(g_remove_path), 0); }
#endif

static void test_a_replacing_trace_is_made_with_the_old_files_mode(void **state) {
    (void)state;
#if defined(_WIN32) || defined(__EMSCRIPTEN__)
    skip(); /* POSIX permissions */
#else
    traces_t t;
    traces_open(&t);
    char *tmp = tu_path(t.dir, "made.tmp");
    mode_t um = umask(077);
    assert_int_equal(chmod(t.path, 0644), 0);
    FILE *f = asset__fopen_new(tmp, t.path);
    assert_non_null(f);
    struct stat sb;
    assert_int_equal(fstat(fileno(f), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644); /* like's, whatever the umask */
    fclose(f);
    errno = 0;
    assert_null(asset__fopen_new(tmp, t.path)); /* O_EXCL: never an existing file */
    assert_int_equal(errno, EEXIST);
    assert_int_equal(remove(tmp), 0);
    umask(022);
    assert_int_equal(chmod(t.path, 0600), 0);
    f = asset__fopen_new(tmp, t.path);
    assert_non_null(f);
    assert_int_equal(fstat(fileno(f), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600); /* 0600 from the start */
    fclose(f);
    assert_int_equal(remove(tmp), 0);
    f = asset__fopen_new(tmp, NULL); /* no old file: a new file's mode */
    assert_non_null(f);
    assert_int_equal(fstat(fileno(f), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    fclose(f);
    assert_int_equal(remove(tmp), 0);

    /* the 0600 trace removed after the writer saw it: its successor is not wider */
    asset_trace_t *empty = asset_trace_create();
    assert_non_null(empty);
    g_remove_path = t.path;
    tl_on_alloc = remove_path;
    asset_status_t st = asset_trace_write_chrome_json(empty, t.path);
    tl_on_alloc = NULL;
    umask(um);
    assert_int_equal(st, ASSET_OK);
    assert_int_equal(stat(t.path, &sb), 0);
    if ((sb.st_mode & 0777) != 0600)
        fail_msg("the trace that replaced a 0600 one is %04o", (unsigned)(sb.st_mode & 0777));
    assert_int_equal(dir_entries(t.dir), 1); /* no temporary file */
    asset_trace_destroy(empty);
    free(tmp);
    traces_close(&t);
#endif
}

#ifndef __EMSCRIPTEN__
/* The path in t's directory of a name of 255 bytes, the most one may have: the
 * temporary file beside it (name.<hex>.tmp) cannot be made, so a trace is made there
 * in place. Remove it with asset__remove (Windows: past MAX_PATH) */
static char *traces_long_path(const traces_t *t) {
    char name[256];
    memset(name, 'a', 250);
    memcpy(name + 250, ".json", 6);
    return tu_path(t->dir, name);
}

/* The number of '\n' in the file at path (read through asset__fopen: a long path on
 * Windows too); fails the test on a '\r' */
static int newlines_without_cr(const char *path) {
    FILE *f = asset__fopen(path, "rb");
    if (!f) fail_msg("%s cannot be read back: %s", path, strerror(errno));
    int n = 0, c;
    long at = 0;
    while ((c = fgetc(f)) != EOF) {
        if (c == '\r') {
            fclose(f);
            fail_msg("a '\\r' at byte %ld of the trace", at);
        }
        n += c == '\n';
        at++;
    }
    fclose(f);
    return n;
}
#endif

/* Twenty-seventh review: on Windows the trace was written in text mode ("w"), each '\n'
 * as "\r\n": a file not byte for byte the one other OSes write (its size, its hash).
 * Every open is binary. Each way a trace is written: renamed over path (new or not),
 * copied in place (a refused rename), made in place (no file beside path). */
static void test_a_trace_has_no_cr_before_its_newlines(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    traces_t t;
    traces_open(&t); /* a new path, renamed */
    assert_true(newlines_without_cr(t.path) >= 3);
    (void)traces_big_written(&t); /* renamed over the old one */
    assert_true(newlines_without_cr(t.path) >= 5);
    asset__rename_over_hook = refuse_rename; /* copied in place */
    assert_int_equal(asset_trace_write_chrome_json(t.small, t.path), ASSET_OK);
    asset__rename_over_hook = NULL;
    assert_true(newlines_without_cr(t.path) >= 3);
    char *lp = traces_long_path(&t); /* made in place */
    assert_int_equal(asset_trace_write_chrome_json(t.big, lp), ASSET_OK);
    assert_true(newlines_without_cr(lp) >= 5);
    assert_int_equal(dir_entries(t.dir), 2); /* trace.json and lp: no temporary file */
    assert_int_equal(asset__remove(lp), 0);
    free(lp);
    traces_close(&t);
#endif
}

/* Twenty-seventh review: a trace made in place (no temporary file can be made beside
 * path, here its name too long for one more suffix) is a new name in its directory,
 * which was not synced, where a rename's is: a power cut soon after the ASSET_OK could
 * leave no trace at all. The directory is synced once the file is (its failure not the
 * write's, as after a rename). Windows has no directory to sync (the hook is never
 * called there). */
static void test_a_trace_made_in_place_syncs_its_directory(void **state) {
    (void)state;
#ifdef __EMSCRIPTEN__
    skip();
#else
    traces_t t;
    traces_open_hooked(&t, NULL, dir_sync_hook, NULL);
    char *lp = traces_long_path(&t);
    g_sync_path = lp;
    assert_int_equal(asset_trace_write_chrome_json(t.big, lp), ASSET_OK);
#ifdef _WIN32
    assert_int_equal(g_dsync_calls, 0); /* nothing to sync there */
#else
    assert_int_equal(g_dsync_calls, 1);      /* was 0: never synced */
    assert_string_equal(g_dsync_dir, t.dir); /* the trace's own directory */
    assert_true(g_dsync_saw > (long)t.n);    /* once the file is whole */
    assert_int_equal(g_dsync_entries, 2);    /* trace.json and lp: made in place */
    assert_int_equal(asset__remove(lp), 0);
    g_dsync_fail = EIO; /* a failure: the trace is written */
    assert_int_equal(asset_trace_write_chrome_json(t.small, lp), ASSET_OK);
    assert_int_equal(g_dsync_calls, 2);
#endif
    asset__dir_sync_hook = NULL;
    assert_int_equal(asset__remove(lp), 0);
    free(lp);
    traces_close(&t);
#endif
}

int main(void) {
    static const asset_allocator_t hook = {fail_alloc, fail_realloc, plain_free, NULL};
    asset_set_allocator(&hook); /* before anything: failures on demand (tl_fail_allocs) */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_load_reports_each_phase_in_order_with_one_id),
        cmocka_unit_test(test_finalize_and_delivery_are_reported_on_the_flush_thread),
        cmocka_unit_test(test_events_of_two_threads_name_two_threads),
        cmocka_unit_test(test_coalesced_loads_and_cache_hits_deliver_too),
        cmocka_unit_test(test_chrome_json_opens_and_every_slice_is_closed),
        cmocka_unit_test(test_a_failed_trace_write_leaves_the_previous_file_whole),
        cmocka_unit_test(test_a_rewritten_trace_keeps_the_old_files_permissions),
        cmocka_unit_test(test_a_trace_held_open_by_a_viewer_is_still_rewritten),
        cmocka_unit_test(test_a_replacing_trace_is_synced_before_its_rename),
        cmocka_unit_test(test_a_replacing_trace_syncs_its_directory_after_the_rename),
        cmocka_unit_test(test_a_trace_copied_in_place_is_synced),
        cmocka_unit_test(test_a_trace_written_in_place_is_synced),
        cmocka_unit_test(test_a_trace_copied_in_place_opens_its_path_without_creating_it),
        cmocka_unit_test(test_a_replacing_trace_is_made_with_the_old_files_mode),
        cmocka_unit_test(test_a_trace_has_no_cr_before_its_newlines),
        cmocka_unit_test(test_a_trace_made_in_place_syncs_its_directory),
        cmocka_unit_test(test_chrome_json_is_utf8_whatever_the_uris_bytes),
        cmocka_unit_test(test_chrome_json_escapes_each_byte_json_or_utf8_refuses),
        cmocka_unit_test(test_chrome_json_of_set_events_has_their_times_and_kinds),
        cmocka_unit_test(test_chrome_json_is_valid_whatever_the_hosts_locale),
        cmocka_unit_test(test_chrome_json_names_a_load_failed_without_a_job_not_a_cache_hit),
        cmocka_unit_test(test_one_recorder_for_two_servers_keeps_their_loads_apart),
        cmocka_unit_test(test_jobs_in_flight_are_listed_with_state_and_handles),
        cmocka_unit_test(test_a_job_waiting_for_a_dependency_counts_it),
        cmocka_unit_test(test_cache_entries_and_loader_stats_are_listed),
        cmocka_unit_test(test_stats_parses_counts_the_failed_parses_too),
        cmocka_unit_test(test_loader_entry_counts_walk_no_cache_entries),
        cmocka_unit_test(test_tasks_are_listed_as_jobs_of_the_task_loader),
        cmocka_unit_test(test_every_event_of_a_task_names_the_task_loader),
        cmocka_unit_test(test_an_end_event_says_the_outcome_the_handle_gets),
        cmocka_unit_test(test_a_task_cancelled_while_it_runs_ends_its_parse_cancelled),
        cmocka_unit_test(test_an_introspection_callback_may_destroy_the_server),
        cmocka_unit_test(test_chrome_json_says_how_many_events_were_dropped),
        cmocka_unit_test(test_writing_a_trace_does_not_stall_its_recording),
        cmocka_unit_test(test_set_trace_waits_only_for_calls_of_the_old_hook),
        cmocka_unit_test(test_a_replaced_hook_is_not_called_once_set_trace_returned),
        cmocka_unit_test(test_chrome_json_closes_a_cancelled_load_after_its_last_slice),
        cmocka_unit_test(test_chrome_json_leaves_a_cancelled_load_open_while_its_parse_runs),
        cmocka_unit_test(test_chrome_json_ends_a_labeled_load_under_the_name_it_began),
        cmocka_unit_test(test_a_finished_async_read_cancelled_before_its_parse_ends_its_read),
        cmocka_unit_test(test_a_finished_async_read_not_requeued_for_want_of_memory_ends_it),
        cmocka_unit_test(test_chrome_json_begins_a_load_the_recorder_joined_midway),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
