/* test_server.c - the server object: create/destroy with and without config, the
 * process-wide instance, source registration (validation, replacement, destroy),
 * ASYNC sources finishing from other threads, and sources that misbehave. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "internal.h"
#include "test_util.h"
#include "tu_os.h"

/* ---- helpers ---- */

/* A trivial source: delivers "<tag>:<path>", counts reads and destroys. */
typedef struct echo {
    const char *tag;
    atomic_int reads;
    atomic_int destroys;
} echo_t;
static asset_status_t echo_read(void *ctx, asset_request_t *r) {
    echo_t *e = ctx;
    atomic_fetch_add(&e->reads, 1);
    char buf[256];
    int n = snprintf(buf, sizeof buf, "%s:%s", e->tag, asset_request_path(r));
    return asset_request_write(r, buf, (size_t)n);
}
static void echo_destroy(void *ctx) { atomic_fetch_add(&((echo_t *)ctx)->destroys, 1); }
static asset_source_t echo_vt(const char *scheme) {
    asset_source_t src = {ASSET_SOURCE_ABI, scheme, 0, echo_read, NULL, echo_destroy};
    return src;
}

/* ---- create / destroy ---- */

static void test_create_with_null_config_uses_defaults(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_non_null(s);
    assert_int_equal(s->cfg.max_workers, 2);
    assert_int_equal(s->nworkers, 2);
    assert_int_equal(s->cfg.cache_budget, 256u * 1024 * 1024);
    assert_int_equal(s->cfg.max_asset_size, 256u * 1024 * 1024);
    assert_int_equal(s->cfg.http_max_connections, 16);
    assert_int_equal(s->cfg.http_connect_timeout_ms, 10000);
    assert_null(s->file_root);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://k", ASSET_OK);
    tu_expect_text(h, "v");
    asset_handle_release(h);
    asset_server_destroy(s);
    asset_server_destroy(NULL); /* ignored */
}

static void test_create_with_config_applies_and_copies_it(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *root = tu_path(dir, "root");
    tu_os_mkdir(root);
    free(tu_write_file(root, "a.txt", "rooted", 6));
    char rootbuf[4096];
    snprintf(rootbuf, sizeof rootbuf, "%s", root);
    asset_server_config_t cfg = {0};
    cfg.max_workers = 3;
    cfg.cache_budget = 12345;
    cfg.max_asset_size = 4;
    cfg.file_root = rootbuf;
    cfg.pkg_path = "/nonexistent/pkgs";
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    memset(rootbuf, 0, sizeof rootbuf); /* strings were copied */
    assert_int_equal(s->nworkers, 3);
    assert_int_equal(s->cfg.cache_budget, 12345);
    assert_string_equal(s->file_root, root);
    assert_ptr_not_equal(s->cfg.pkg_path, cfg.pkg_path);
    assert_string_equal(s->cfg.pkg_path, "/nonexistent/pkgs");
    /* file_root: a bare path resolves under it; max_asset_size 4 < 6 bytes */
    asset_handle_t *h = tu_load_wait(s, "a.txt", ASSET_E_TOO_LARGE);
    assert_non_null(strstr(asset_handle_uri(h), root));
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(root);
    free(dir);
}

static void test_relative_file_root_resolves_against_cwd(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "assets/x.txt", "x!", 2));
    char old[4096];
    assert_int_equal(tu_os_getcwd(old, sizeof old), 0);
    assert_int_equal(tu_os_chdir(dir), 0);
    asset_server_config_t cfg = {0};
    cfg.file_root = "./assets/";
    asset_server_t *s = asset_server_create(&cfg);
    assert_int_equal(tu_os_chdir(old), 0);
    assert_non_null(s);
    char *want = tu_path(dir, "assets");
    assert_string_equal(s->file_root, want);
    asset_handle_t *h = tu_load_wait(s, "x.txt", ASSET_OK);
    tu_expect_text(h, "x!");
    asset_handle_release(h);
    asset_server_destroy(s);
    free(want);
    tu_rmrf(dir);
    free(dir);
}

/* file_root "" is a relative root like any: the working directory itself, and loads
 * may not leave it (it is not "no root": that is NULL). */
static void test_an_empty_file_root_is_the_working_directory(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "assets/x.txt", "x!", 2));
    free(tu_write_file(dir, "y.txt", "y!", 2));
    char *cwd = tu_path(dir, "assets");
    char old[4096];
    assert_int_equal(tu_os_getcwd(old, sizeof old), 0);
    assert_int_equal(tu_os_chdir(cwd), 0);
    asset_server_config_t cfg = {0};
    cfg.file_root = "";
    asset_server_t *s = asset_server_create(&cfg);
    assert_int_equal(tu_os_chdir(old), 0);
    assert_non_null(s);
    assert_string_equal(s->file_root, cwd);
    asset_handle_t *h = tu_load_wait(s, "x.txt", ASSET_OK);
    tu_expect_text(h, "x!");
    asset_handle_release(h);
    asset_handle_release(tu_load_wait(s, "../y.txt", ASSET_E_FORBIDDEN));
    asset_server_destroy(s);
    free(cwd);
    tu_rmrf(dir);
    free(dir);
}

/* A file_root the platform's path rules refuse (POSIX: a backslash; Windows: "C:", a
 * UNC share, in test_platform_win32) fails the create: nothing could load beneath it
 * (it was created, and every load under it was refused). */
static void test_a_file_root_the_path_rules_refuse_fails_create(void **state) {
    (void)state;
    if (tu_os_windows_paths()) skip(); /* a separator there */
    asset_server_config_t cfg = {0};
    cfg.file_root = "/tmp/a\\b";
    asset_server_t *s = asset_server_create(&cfg);
    if (s) asset_server_destroy(s);
    assert_null(s);
}

/* ---- the default instance ---- */

typedef struct inst_rec {
    uv_barrier_t *start;
    asset_server_t *got;
} inst_rec_t;
static void instance_main(void *arg) {
    inst_rec_t *r = arg;
    uv_barrier_wait(r->start);
    r->got = asset_server_instance();
}

static void test_instance_is_one_lazy_server_until_shutdown(void **state) {
    (void)state;
    uv_barrier_t start;
    uv_barrier_init(&start, 4);
    inst_rec_t r[4];
    uv_thread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (inst_rec_t){&start, NULL};
        assert_int_equal(uv_thread_create(&t[i], instance_main, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) assert_int_equal(uv_thread_join(&t[i]), 0);
    uv_barrier_destroy(&start);
    asset_server_t *s = asset_server_instance();
    assert_non_null(s);
    for (int i = 0; i < 4; i++) assert_ptr_equal(r[i].got, s); /* one, made once */
    assert_ptr_equal(asset_server_instance(), s);
    /* it was created on one of the threads above, which made that thread its flush
     * thread; a flush here makes this thread the one that flushes (and waits) */
    assert_int_equal(asset_server_flush(s), 0);
    assert_int_equal(asset_mem_put(s, "k", "inst", 4), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://k", ASSET_OK);
    tu_expect_text(h, "inst");
    asset_handle_release(h);
    asset_server_shutdown_instance();
    asset_server_shutdown_instance(); /* nothing left: no-op */
    /* a fresh one: the old store is gone */
    asset_server_t *s2 = asset_server_instance();
    assert_non_null(s2);
    asset_handle_t *h2 = tu_load_wait(s2, "mem://k", ASSET_E_NOT_FOUND);
    asset_handle_release(h2);
    asset_server_shutdown_instance();
}

/* ---- source registration ---- */

/* Seventh review: asset_server_shutdown_instance() from the instance's own callback
 * forgot the instance before the refused destroy: that server lived on unreachable
 * (its threads too), and the next asset_server_instance() made a second one. */
static void shutdown_instance_cb(asset_handle_t *h, void *user) {
    (void)h;
    (*(int *)user)++;
    asset_server_shutdown_instance(); /* refused: inside its flush */
}
static void test_shutdown_instance_refused_in_its_callback_keeps_the_instance(void **state) {
    (void)state;
    asset_server_t *s = asset_server_instance();
    assert_non_null(s);
    assert_int_equal(asset_server_flush(s), 0); /* this thread flushes it */
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "mem://k", NULL);
    int fired = 0;
    assert_true(asset_handle_on_completed(h, shutdown_instance_cb, &fired) != 0);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(fired, 1);
    asset_server_t *again = asset_server_instance();
    assert_ptr_equal(again, s); /* still the instance, reachable */
    asset_handle_release(h);
    asset_server_shutdown_instance(); /* outside the flush: it goes */
}

static void test_register_source_validates_the_vtable(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    echo_t e = {"e", 0, 0};
    asset_source_t ok = echo_vt("my-scheme+v1.0");
    asset_source_t v;
    assert_int_equal(asset_server_register_source(NULL, &ok, &e), ASSET_E_INVALID);
    assert_int_equal(asset_server_register_source(s, NULL, &e), ASSET_E_INVALID);
    v = ok;
    v.abi = 0;
    assert_int_equal(asset_server_register_source(s, &v, &e), ASSET_E_INVALID);
    v = ok;
    v.read = NULL;
    assert_int_equal(asset_server_register_source(s, &v, &e), ASSET_E_INVALID);
    v = ok;
    v.scheme = NULL;
    assert_int_equal(asset_server_register_source(s, &v, &e), ASSET_E_INVALID);
    /* and schemes no URI can name: a URI's scheme starts with a letter (RFC 3986), else
     * "3d://x" is a bare path, and is at most 23 bytes, else "scheme too long" */
    const char *bad[] = {"",    "MyScheme", "UPPER",       "has space",
                         "a/b", "a:b",      "caf\xc3\xa9", "3d",
                         "+x",  "-x",       ".x",          "abcdefghijklmnopqrstuvwx"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        v = ok;
        v.scheme = bad[i];
        if (asset_server_register_source(s, &v, &e) != ASSET_E_INVALID)
            fail_msg("scheme \"%s\" was accepted", bad[i]);
    }
    echo_t e23 = {"e", 0, 0};
    v = ok;
    v.scheme = "abcdefghijklmnopqrstuvw"; /* 23 bytes: the longest a URI may have */
    assert_int_equal(asset_server_register_source(s, &v, &e23), ASSET_OK);
    asset_handle_t *l = tu_load_wait(s, "abcdefghijklmnopqrstuvw://long", ASSET_OK);
    tu_expect_text(l, "e:long");
    asset_handle_release(l);
    /* refused registrations left nothing behind: such URIs have no source */
    asset_handle_t *h = tu_load_wait(s, "myscheme://x", ASSET_E_NO_SOURCE);
    asset_handle_release(h);
    assert_int_equal(asset_server_register_source(s, &ok, &e), ASSET_OK);
    /* the URI's scheme is lowercased, so uppercase URIs reach it */
    asset_handle_t *a = tu_load_wait(s, "my-scheme+v1.0://thing", ASSET_OK);
    asset_handle_t *b = tu_load_wait(s, "MY-SCHEME+V1.0://Thing", ASSET_OK);
    tu_expect_text(a, "e:thing");
    tu_expect_text(b, "e:Thing");
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&e.destroys), 1);
    assert_int_equal(atomic_load(&e23.destroys), 1);
}

static void test_register_source_copies_the_vtable_and_scheme(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    echo_t e = {"copied", 0, 0};
    char scheme[16];
    strcpy(scheme, "tmp");
    asset_source_t src = echo_vt(scheme);
    assert_int_equal(asset_server_register_source(s, &src, &e), ASSET_OK);
    strcpy(scheme, "zzz");
    memset(&src, 0, sizeof src);
    asset_handle_t *h = tu_load_wait(s, "tmp://p", ASSET_OK);
    tu_expect_text(h, "copied:p");
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* A source vtable of ABI 1 in memory of exactly ABI 1's size (a program built against
 * that header, once the struct grows): registration reads no byte past it (ASan), and
 * one of a newer ABI than this library's registers with the fields it knows. */
static void test_register_source_reads_only_the_fields_of_its_abi(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    echo_t e = {"old", 0, 0};
    asset_source_t full = echo_vt("old");
    full.abi = 1;
    size_t abi1 = offsetof(asset_source_t, destroy) + sizeof full.destroy;
    void *mem = malloc(abi1);
    assert_non_null(mem);
    memcpy(mem, &full, abi1);
    assert_int_equal(asset_server_register_source(s, mem, &e), ASSET_OK);
    free(mem);
    struct {
        asset_source_t v;
        void *later[4]; /* fields of an ABI this library does not know */
    } newer = {echo_vt("new"), {NULL, NULL, NULL, NULL}};
    newer.v.abi = 99;
    echo_t e2 = {"new", 0, 0};
    assert_int_equal(asset_server_register_source(s, &newer.v, &e2), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "old://p", ASSET_OK);
    tu_expect_text(h, "old:p");
    asset_handle_t *n = tu_load_wait(s, "new://p", ASSET_OK);
    tu_expect_text(n, "new:p");
    asset_handle_release(h);
    asset_handle_release(n);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&e.destroys), 1);
    assert_int_equal(atomic_load(&e2.destroys), 1);
}

static void test_user_source_replaces_a_builtin(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "key", "from the store", 14), ASSET_OK);
    echo_t e = {"mine", 0, 0};
    asset_source_t src = echo_vt("mem");
    assert_int_equal(asset_server_register_source(s, &src, &e), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://key", ASSET_OK);
    tu_expect_text(h, "mine:key");
    assert_int_equal(atomic_load(&e.reads), 1);
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&e.destroys), 1);
}

static void test_replacing_a_user_source_destroys_the_old_one_once(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    echo_t e1 = {"one", 0, 0}, e2 = {"two", 0, 0};
    asset_source_t src = echo_vt("x");
    assert_int_equal(asset_server_register_source(s, &src, &e1), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "x://p", ASSET_OK);
    tu_expect_text(a, "one:p");
    assert_int_equal(asset_server_register_source(s, &src, &e2), ASSET_OK);
    assert_int_equal(atomic_load(&e1.destroys), 1);
    asset_handle_t *b = tu_load_wait(s, "x://q", ASSET_OK);
    tu_expect_text(b, "two:q");
    asset_handle_release(a);
    asset_handle_release(b);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&e1.destroys), 1);
    assert_int_equal(atomic_load(&e2.destroys), 1);
}

static void test_unknown_scheme_and_loader_fail_with_message(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "nope://x", ASSET_E_NO_SOURCE);
    assert_non_null(strstr(asset_handle_error_message(a), "nope://x"));
    assert_non_null(strstr(asset_handle_error_message(a), "'nope'"));
    asset_load_options_t o = {0};
    o.loader = "no-such-loader";
    asset_handle_t *b = asset_server_load(s, "mem://k", &o);
    assert_int_equal(tu_wait(b), ASSET_E_NO_LOADER);
    assert_non_null(strstr(asset_handle_error_message(b), "no-such-loader"));
    assert_non_null(strstr(asset_handle_error_message(b), "mem://k"));
    o.loader = "bytes"; /* a forced built-in */
    asset_handle_t *c = asset_server_load(s, "mem://k", &o);
    assert_int_equal(tu_wait(c), ASSET_OK);
    tu_expect_text(c, "v");
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_server_destroy(s);
}

static asset_status_t dummy_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    return asset_parse_fail(p, ASSET_E_PARSE, "unused");
}

static void test_register_loader_validates(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_loader_t ok = {ASSET_LOADER_ABI, "mine", NULL, NULL, dummy_parse, NULL, NULL, 0, NULL};
    asset_loader_t v = ok;
    assert_int_equal(asset_server_register_loader(NULL, &ok, NULL, 0), ASSET_E_INVALID);
    assert_int_equal(asset_server_register_loader(s, NULL, NULL, 0), ASSET_E_INVALID);
    v.abi = 0;
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_E_INVALID);
    v = ok;
    v.parse = NULL;
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_E_INVALID);
    v = ok;
    v.name = "";
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_E_INVALID);
    v.name = "bytes"; /* taken by a built-in */
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_E_INVALID);
    assert_int_equal(asset_server_register_loader(s, &ok, NULL, 0), ASSET_OK);
    assert_int_equal(asset_server_register_loader(s, &ok, NULL, 0), ASSET_E_INVALID); /* twice */
    asset_server_destroy(s);
}

/* Loader vtables in memory of exactly their ABI's size (a program built against that
 * header), and one of an ABI newer than this library's: registration reads the fields
 * of its ABI and no further (ASan), and uses what it read (ABI 2's finalize). */
static atomic_int abi_finalizes;
static asset_status_t abi_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    asset_parse_set_value(p,
                          tu_asset_strndup((const char *)asset_parse_data(p), asset_parse_size(p)),
                          asset_parse_size(p) + 1);
    return ASSET_OK;
}
static asset_status_t abi_finalize(void *ctx, asset_finalize_t *f) {
    (void)ctx;
    (void)f;
    atomic_fetch_add(&abi_finalizes, 1);
    return ASSET_OK;
}

static void test_register_loader_reads_only_the_fields_of_its_abi(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    atomic_store(&abi_finalizes, 0);
    static const char *const one_sfx[] = {".one", NULL}, *const two_sfx[] = {".two", NULL},
                             *const new_sfx[] = {".new", NULL};
    asset_loader_t full = {1, "one", one_sfx, NULL, abi_parse, NULL, NULL, 0, NULL};
    size_t abi1 = offsetof(asset_loader_t, destroy) + sizeof full.destroy;
    void *mem = malloc(abi1);
    assert_non_null(mem);
    memcpy(mem, &full, abi1);
    assert_int_equal(asset_server_register_loader(s, mem, NULL, 0), ASSET_OK);
    free(mem);
    full = (asset_loader_t){2, "two", two_sfx, NULL, abi_parse, NULL, NULL, 0, abi_finalize};
    size_t abi2 = offsetof(asset_loader_t, finalize) + sizeof full.finalize;
    mem = malloc(abi2);
    assert_non_null(mem);
    memcpy(mem, &full, abi2);
    assert_int_equal(asset_server_register_loader(s, mem, NULL, 0), ASSET_OK);
    free(mem);
    struct {
        asset_loader_t v;
        void *later[4]; /* fields of an ABI this library does not know */
    } newer = {{99, "new", new_sfx, NULL, abi_parse, NULL, NULL, 0, abi_finalize},
               {NULL, NULL, NULL, NULL}};
    assert_int_equal(asset_server_register_loader(s, &newer.v, NULL, 0), ASSET_OK);
    const char *uris[] = {"mem://a.one", "mem://a.two", "mem://a.new"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(asset_mem_put(s, uris[i] + 6, "text", 4), ASSET_OK);
        asset_handle_t *h = tu_load_wait(s, uris[i], ASSET_OK);
        assert_string_equal(asset_handle_value(h), "text");
        asset_handle_release(h);
    }
    assert_int_equal(atomic_load(&abi_finalizes), 2); /* ABI 2's and the newer one's */
    asset_server_destroy(s);
}

/* Seventh review: "task" and "listing" name the library's own slots (spawned tasks,
 * folder listings) in traces, introspection and messages. A user loader by either name
 * was accepted: its jobs read as tasks or listings ("run" slices in the Chrome JSON),
 * and nothing told them apart. */
static void test_register_loader_refuses_the_librarys_own_names(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_loader_t v = {ASSET_LOADER_ABI, "task", NULL, NULL, dummy_parse, NULL, NULL, 0, NULL};
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_E_INVALID);
    v.name = "listing";
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_E_INVALID);
    v.name = "tasks"; /* only the names themselves */
    assert_int_equal(asset_server_register_loader(s, &v, NULL, 0), ASSET_OK);
    asset_server_destroy(s);
}

/* ---- ASYNC sources ---- */

typedef struct async_src {
    uv_sem_t entered;
    uv_sem_t go;
    asset_request_t *req; /* written by the worker before `entered` */
    int inline_finish;    /* 1: finish inside read, then return PENDING */
    asset_status_t finish_with;
    atomic_int reads;
} async_src_t;

static asset_status_t async_read(void *ctx, asset_request_t *r) {
    async_src_t *a = ctx;
    atomic_fetch_add(&a->reads, 1);
    if (a->inline_finish) {
        asset_request_write(r, "inline", 6);
        asset_request_finish(r, ASSET_OK);
        return ASSET_PENDING; /* the request is already done: must not be lost */
    }
    a->req = r;
    uv_sem_post(&a->entered);
    return ASSET_PENDING;
}

static void async_init(async_src_t *a, asset_server_t *s, const char *scheme) {
    memset(a, 0, sizeof *a);
    uv_sem_init(&a->entered, 0);
    uv_sem_init(&a->go, 0);
    a->finish_with = ASSET_OK;
    asset_source_t src = {ASSET_SOURCE_ABI, scheme, ASSET_SOURCE_ASYNC, async_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, a), ASSET_OK);
}

static void async_free(async_src_t *a) {
    uv_sem_destroy(&a->entered);
    uv_sem_destroy(&a->go);
}

/* The thread that completes the transfer, as an HTTP stack would. */
static void finisher_main(void *arg) {
    async_src_t *a = arg;
    uv_sem_wait(&a->entered);
    uv_sem_wait(&a->go);
    asset_request_t *r = a->req;
    if (a->finish_with == ASSET_OK) {
        asset_request_set_total(r, 10);
        asset_request_write(r, "async", 5);
        asset_request_write(r, " data", 5);
        asset_request_set_version(r, "v1");
    } else {
        asset_request_fail(r, a->finish_with, "the remote end hung up");
    }
    asset_request_finish(r, a->finish_with);
}

static void test_async_source_finishes_from_another_thread(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    async_src_t a;
    async_init(&a, s, "async");
    assert_int_equal(asset_mem_put(s, "after", "x", 1), ASSET_OK);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, finisher_main, &a), 0);
    asset_handle_t *h = asset_server_load(s, "async://remote/thing", NULL);
    /* one worker: once this is done, the async read has returned PENDING */
    tu_gate_t *echo = tu_gate_register(s, "echo"); /* a user source: never run by a waiter */
    tu_gate_open(echo);
    asset_handle_t *m = tu_load_wait(s, "echo://after", ASSET_OK);
    uv_mutex_lock(&s->lock);
    assert_int_equal(s->running_async, 1); /* the read is out, no worker on it */
    uv_mutex_unlock(&s->lock);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.loading, 1);
    assert_int_equal(st.pending, 0);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_LOADING);
    uv_sem_post(&a.go);
    assert_int_equal(tu_wait(h), ASSET_OK);
    tu_expect_text(h, "async data");
    assert_true(asset_handle_progress(h) == 1.0f);
    assert_int_equal(uv_thread_join(&t), 0);
    asset_server_stats(s, &st);
    assert_int_equal(st.loading, 0);
    assert_int_equal(st.bytes_read, 5 + 10); /* "after" from echo, "async data" */
    assert_int_equal(atomic_load(&a.reads), 1);
    asset_handle_release(h);
    asset_handle_release(m);
    asset_server_destroy(s);
    async_free(&a);
    tu_gate_free(echo);
}

static void test_async_source_failure_from_another_thread(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    async_src_t a;
    async_init(&a, s, "async");
    a.finish_with = ASSET_E_NETWORK;
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, finisher_main, &a), 0);
    asset_handle_t *h = asset_server_load(s, "async://x", NULL);
    uv_sem_post(&a.go);
    assert_int_equal(tu_wait(h), ASSET_E_NETWORK);
    assert_non_null(strstr(asset_handle_error_message(h), "async://x"));
    assert_non_null(strstr(asset_handle_error_message(h), "hung up"));
    assert_int_equal(uv_thread_join(&t), 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    async_free(&a);
}

static void test_async_source_finishing_before_returning_pending(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    async_src_t a;
    async_init(&a, s, "async");
    a.inline_finish = 1;
    asset_handle_t *h = tu_load_wait(s, "async://now", ASSET_OK);
    tu_expect_text(h, "inline");
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_int_equal(st.loading, 0);
    assert_int_equal(st.completed, 1);
    asset_handle_release(h);
    asset_server_destroy(s); /* nothing left waiting: returns */
    async_free(&a);
}

static void test_async_source_shared_by_coalesced_handles(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    async_src_t a;
    async_init(&a, s, "async");
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, finisher_main, &a), 0);
    asset_handle_t *h1 = asset_server_load(s, "async://same", NULL);
    asset_handle_t *h2 = asset_server_load(s, "async://same", NULL);
    uv_sem_post(&a.go);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    assert_ptr_equal(asset_handle_value(h1), asset_handle_value(h2));
    assert_int_equal(atomic_load(&a.reads), 1);
    assert_int_equal(uv_thread_join(&t), 0);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    async_free(&a);
}

/* Finishes only once the request is cancelled (as destroy or a cancel does). */
typedef struct canceller {
    async_src_t *a;
    uv_sem_t has_req; /* posted once the read has handed over its request */
    bool saw_cancel;
} canceller_t;
static void cancel_finisher_main(void *arg) {
    canceller_t *c = arg;
    uv_sem_wait(&c->a->entered);
    asset_request_t *r = c->a->req;
    uv_sem_post(&c->has_req);
    uv_mutex_t mu;
    uv_cond_t cond;
    uv_mutex_init(&mu);
    uv_cond_init(&cond);
    uv_mutex_lock(&mu);
    while (!asset_request_cancelled(r)) /* a source can only poll for cancel */
        (void)uv_cond_timedwait(&cond, &mu, 1000000);
    uv_mutex_unlock(&mu);
    uv_cond_destroy(&cond);
    uv_mutex_destroy(&mu);
    c->saw_cancel = true;
    asset_request_finish(r, ASSET_E_CANCELLED);
}

static void count_cb(asset_handle_t *h, void *user) {
    (void)h;
    (*(int *)user)++;
}

static void test_destroy_waits_for_an_unfinished_async_read(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    async_src_t a;
    async_init(&a, s, "async");
    canceller_t c;
    memset(&c, 0, sizeof c);
    c.a = &a;
    uv_sem_init(&c.has_req, 0);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, cancel_finisher_main, &c), 0);
    int fired = 0;
    asset_handle_t *h = asset_server_load(s, "async://forever", NULL);
    asset_handle_on_completed(h, count_cb, &fired);
    uv_sem_wait(&c.has_req); /* the read is out, waiting for its finish */
    asset_server_destroy(s); /* tells the read to stop, waits for its finish */
    assert_true(c.saw_cancel);
    assert_int_equal(fired, 0);
    assert_int_equal(uv_thread_join(&t), 0);
    uv_sem_destroy(&c.has_req);
    async_free(&a);
}

static void test_async_cancel_then_finish_gives_cancelled(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    async_src_t a;
    async_init(&a, s, "async");
    canceller_t c;
    memset(&c, 0, sizeof c);
    c.a = &a;
    uv_sem_init(&c.has_req, 0);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, cancel_finisher_main, &c), 0);
    asset_handle_t *h = asset_server_load(s, "async://slow", NULL);
    uv_sem_wait(&c.has_req);
    asset_handle_cancel(h);
    assert_int_equal(tu_wait(h), ASSET_E_CANCELLED);
    assert_int_equal(uv_thread_join(&t), 0); /* the source heard the cancel */
    assert_true(c.saw_cancel);
    assert_non_null(strstr(asset_handle_error_message(h), "async://slow"));
    /* the finished read goes back to a worker that drops it: the server drains */
    asset_handle_release(h);
    asset_server_destroy(s);
    uv_sem_destroy(&c.has_req);
    async_free(&a);
}

/* ---- misbehaving sources ---- */

static asset_status_t not_modified_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    (void)r;
    return ASSET_NOT_MODIFIED;
}
static asset_status_t pending_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    (void)r;
    return ASSET_PENDING;
}
static asset_status_t weird_read(void *ctx, asset_request_t *r) {
    (void)ctx;
    asset_request_write(r, "ignored", 7);
    return (asset_status_t)42;
}

static void test_not_modified_with_nothing_cached_fails_with_message(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_source_t src = {ASSET_SOURCE_ABI, "nm", 0, not_modified_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, NULL), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "nm://thing", ASSET_E_IO);
    assert_int_equal(asset_handle_state(h), ASSET_STATE_FAILED);
    assert_null(asset_handle_value(h));
    const char *msg = asset_handle_error_message(h);
    assert_non_null(strstr(msg, "nm://thing"));
    assert_non_null(strstr(msg, "NOT_MODIFIED"));
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_pending_from_a_sync_source_fails_with_message(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_source_t src = {ASSET_SOURCE_ABI, "pend", 0, pending_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, NULL), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "pend://x", ASSET_E_IO);
    assert_non_null(strstr(asset_handle_error_message(h), "pend://x"));
    assert_non_null(strstr(asset_handle_error_message(h), "ASYNC"));
    asset_handle_release(h);
    asset_server_destroy(s); /* nothing is left waiting for a finish */
}

static void test_unexpected_status_from_a_source_fails(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_source_t src = {ASSET_SOURCE_ABI, "weird", 0, weird_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &src, NULL), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "weird://x", ASSET_E_IO);
    assert_non_null(strstr(asset_handle_error_message(h), "weird://x"));
    asset_handle_release(h);
    asset_server_destroy(s);
}

static void test_source_error_without_message_still_names_uri(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    tu_gate_t *g = tu_gate_register(s, "gate");
    tu_gate_open(g);
    asset_handle_t *h = tu_load_wait(s, "gate://fail/x", ASSET_E_IO);
    assert_non_null(strstr(asset_handle_error_message(h), "gate://fail/x"));
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* ---- hostile review regressions (issue 10: #6, #7, #9, #11) ---- */

/* #9: replacing a scheme used to destroy the old source while a worker was still
 * inside its read(). The old one must stay alive until its read ends. */
typedef struct blocking_src {
    uv_sem_t entered, release;
    atomic_int destroys, reading;
    atomic_int destroyed_while_reading;
} blocking_src_t;
static asset_status_t blocking_read(void *ctx, asset_request_t *r) {
    blocking_src_t *b = ctx;
    atomic_fetch_add(&b->reading, 1);
    uv_sem_post(&b->entered);
    uv_sem_wait(&b->release);
    asset_status_t st = asset_request_write(r, "old", 3);
    atomic_fetch_sub(&b->reading, 1);
    return st;
}
static void blocking_destroy(void *ctx) {
    blocking_src_t *b = ctx;
    if (atomic_load(&b->reading)) atomic_fetch_add(&b->destroyed_while_reading, 1);
    atomic_fetch_add(&b->destroys, 1);
}

static void test_replaced_source_is_destroyed_only_after_its_read_ends(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    blocking_src_t b = {0};
    uv_sem_init(&b.entered, 0);
    uv_sem_init(&b.release, 0);
    asset_source_t old = {ASSET_SOURCE_ABI, "blk", 0, blocking_read, NULL, blocking_destroy};
    assert_int_equal(asset_server_register_source(s, &old, &b), ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "blk://x", NULL);
    uv_sem_wait(&b.entered); /* a worker is inside the old read() */
    echo_t e = {.tag = "new"};
    asset_source_t nvt = echo_vt("blk");
    assert_int_equal(asset_server_register_source(s, &nvt, &e), ASSET_OK);
    assert_int_equal(atomic_load(&b.destroys), 0); /* not while it reads */
    uv_sem_post(&b.release);
    assert_int_equal(tu_wait(h), ASSET_OK); /* the load that started on the old source */
    tu_expect_text(h, "old");
    asset_handle_release(h);
    asset_server_flush(s); /* the old one's last job is gone: destroyed here */
    assert_int_equal(atomic_load(&b.destroys), 1);
    assert_int_equal(atomic_load(&b.destroyed_while_reading), 0);
    h = tu_load_wait(s, "blk://y", ASSET_OK); /* new loads use the new source */
    tu_expect_text(h, "new:y");
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&b.destroys), 1);
    assert_int_equal(atomic_load(&e.destroys), 1);
    uv_sem_destroy(&b.entered);
    uv_sem_destroy(&b.release);
}

/* Seventh review: loads started after a scheme is replaced use the new source. An
 * IMMUTABLE old source's cache entries were served without asking the new one; a load
 * joined a job of the old source still in flight; and that job, once done, cached the
 * old source's bytes for the loads after it. */
static void test_a_replaced_sources_cached_and_running_loads_do_not_serve_new_loads(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    echo_t o = {.tag = "old"}, n = {.tag = "new"};
    asset_source_t imm = echo_vt("imm");
    imm.flags = ASSET_SOURCE_IMMUTABLE;
    assert_int_equal(asset_server_register_source(s, &imm, &o), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "imm://x", ASSET_OK);
    tu_expect_text(h, "old:x");
    asset_handle_release(h);
    assert_int_equal(asset_server_register_source(s, &imm, &n), ASSET_OK);
    h = tu_load_wait(s, "imm://x", ASSET_OK); /* cached by the old source */
    tu_expect_text(h, "new:x");
    asset_handle_release(h);

    /* a read of the old source in flight when it is replaced */
    blocking_src_t b = {0};
    uv_sem_init(&b.entered, 0);
    uv_sem_init(&b.release, 0);
    asset_source_t old = {ASSET_SOURCE_ABI, "blk", ASSET_SOURCE_IMMUTABLE,
                          blocking_read,    NULL,  blocking_destroy};
    assert_int_equal(asset_server_register_source(s, &old, &b), ASSET_OK);
    asset_handle_t *h1 = asset_server_load(s, "blk://z", NULL);
    uv_sem_wait(&b.entered);
    echo_t e = {.tag = "new"};
    asset_source_t nvt = echo_vt("blk");
    nvt.flags = ASSET_SOURCE_IMMUTABLE;
    assert_int_equal(asset_server_register_source(s, &nvt, &e), ASSET_OK);
    asset_handle_t *h2 = asset_server_load(s, "blk://z", NULL); /* not the old job */
    assert_int_equal(tu_wait(h2), ASSET_OK);
    tu_expect_text(h2, "new:z");
    uv_sem_post(&b.release);
    assert_int_equal(tu_wait(h1), ASSET_OK); /* it started on the old source */
    tu_expect_text(h1, "old");
    asset_handle_release(h1);
    asset_handle_release(h2);
    h = tu_load_wait(s, "blk://z", ASSET_OK); /* the old job cached nothing */
    tu_expect_text(h, "new:z");
    asset_handle_release(h);
    asset_server_destroy(s);
    assert_int_equal(atomic_load(&b.destroys), 1);
    uv_sem_destroy(&b.entered);
    uv_sem_destroy(&b.release);
}

/* Twenty-first review: a revalidation (a load of a cached value from a mutable source)
 * of the old source in flight when its scheme is replaced, its value evicted
 * meanwhile (a budget change, other inserts): the old source's "not modified" cached
 * the value again, for the loads after the registration, which "use the new source":
 * the new one being IMMUTABLE, they got the old bytes from the cache without asking it.
 * A parsed value of a replaced source is not cached (the seventh review); a revalidated
 * one was. */
typedef struct revalidating_src {
    uv_sem_t entered, release;
    atomic_bool block;
} revalidating_src_t;
static asset_status_t revalidating_read(void *ctx, asset_request_t *r) {
    revalidating_src_t *v = ctx;
    if (atomic_exchange(&v->block, false)) {
        uv_sem_post(&v->entered);
        uv_sem_wait(&v->release);
    }
    const char *had = asset_request_cached_version(r);
    if (had && !strcmp(had, "v1")) return ASSET_NOT_MODIFIED;
    asset_request_set_version(r, "v1");
    return asset_request_write(r, "old", 3);
}

static void test_a_replaced_sources_revalidation_caches_nothing(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    revalidating_src_t v = {0};
    uv_sem_init(&v.entered, 0);
    uv_sem_init(&v.release, 0);
    asset_source_t old = {ASSET_SOURCE_ABI, "rv", 0, revalidating_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &old, &v), ASSET_OK);
    asset_handle_t *a = tu_load_wait(s, "rv://a.bin", ASSET_OK); /* cached, version v1 */
    tu_expect_text(a, "old");
    atomic_store(&v.block, true);
    asset_handle_t *b = asset_server_load(s, "rv://a.bin", NULL); /* revalidates */
    uv_sem_wait(&v.entered);
    assert_int_equal(asset_server_set_cache_budget(s, "bytes", 1), ASSET_OK); /* evicted */
    assert_int_equal(asset_server_set_cache_budget(s, "bytes", 0), ASSET_OK);
    echo_t e = {.tag = "new"};
    asset_source_t nvt = echo_vt("rv");
    nvt.flags = ASSET_SOURCE_IMMUTABLE;
    assert_int_equal(asset_server_register_source(s, &nvt, &e), ASSET_OK);
    uv_sem_post(&v.release);
    assert_int_equal(tu_wait(b), ASSET_OK); /* it started on the old source */
    tu_expect_text(b, "old");
    asset_handle_t *c = tu_load_wait(s, "rv://a.bin", ASSET_OK); /* made after: the new one */
    tu_expect_text(c, "new:a.bin");
    asset_handle_release(a);
    asset_handle_release(b);
    asset_handle_release(c);
    asset_server_destroy(s);
    uv_sem_destroy(&v.entered);
    uv_sem_destroy(&v.release);
}

/* Twenty-first review: a read of the old source in flight when its scheme is replaced
 * that found its file gone (E_NOT_FOUND) removed the URI's cache entry: by then a load
 * made after the registration had cached the new source's value there, and the next
 * load read and parsed it again (the seventeenth review's stale not-found, for a
 * replaced source). */
static asset_status_t gone_read(void *ctx, asset_request_t *r) {
    blocking_src_t *b = ctx;
    uv_sem_post(&b->entered);
    uv_sem_wait(&b->release);
    return asset_request_fail(r, ASSET_E_NOT_FOUND, "gone from the old source");
}

static void test_a_replaced_sources_not_found_leaves_the_new_sources_entry(void **state) {
    (void)state;
    asset_server_t *s = tu_server(2);
    blocking_src_t b = {0};
    uv_sem_init(&b.entered, 0);
    uv_sem_init(&b.release, 0);
    asset_source_t old = {ASSET_SOURCE_ABI, "gn", 0, gone_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &old, &b), ASSET_OK);
    asset_handle_t *h1 = asset_server_load(s, "gn://a.bin", NULL);
    uv_sem_wait(&b.entered);
    echo_t e = {.tag = "new"};
    asset_source_t nvt = echo_vt("gn");
    nvt.flags = ASSET_SOURCE_IMMUTABLE;
    assert_int_equal(asset_server_register_source(s, &nvt, &e), ASSET_OK);
    asset_handle_t *h2 = tu_load_wait(s, "gn://a.bin", ASSET_OK); /* cached, the new one's */
    tu_expect_text(h2, "new:a.bin");
    uv_sem_post(&b.release);
    assert_int_equal(tu_wait(h1), ASSET_E_NOT_FOUND); /* the old source's answer */
    asset_handle_t *h3 = tu_load_wait(s, "gn://a.bin", ASSET_OK);
    tu_expect_text(h3, "new:a.bin");
    if (atomic_load(&e.reads) != 1)
        fail_msg("the load after them read again (%d reads)", atomic_load(&e.reads));
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    asset_server_destroy(s);
    uv_sem_destroy(&b.entered);
    uv_sem_destroy(&b.release);
}

/* #6: registering sources and loaders while other threads load used to memmove the
 * registries under the lock while loads read them without it (TSan: data races). */
static const char *const race_suffixes[] = {".race", NULL};
static asset_status_t race_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    asset_parse_set_value(p, NULL, 0);
    return ASSET_OK;
}
typedef struct reg_race {
    asset_server_t *s;
    atomic_int stop;
    int loaded, failed;
} reg_race_t;
static void reg_race_loader(void *arg) {
    reg_race_t *r = arg;
    static const char *const uris[] = {"mem://k.race", "mem://k", "rr0://a", "mem://k.json"};
    for (int i = 0; !atomic_load(&r->stop) && i < 100000; i++) {
        asset_handle_t *h = asset_server_load(r->s, uris[i % 4], NULL);
        assert_non_null(h);
        asset_handle_release(h);
    }
}
static void test_registering_while_other_threads_load_is_safe(void **state) {
    (void)state;
    reg_race_t r = {.s = tu_server(2)};
    assert_int_equal(asset_mem_put(r.s, "k.race", "x", 1), ASSET_OK);
    uv_thread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(uv_thread_create(&t[i], reg_race_loader, &r), 0);
    static echo_t echoes[24];
    char name[32];
    for (int i = 0; i < 24; i++) { /* fills the loader registry to its limit */
        snprintf(name, sizeof name, "race%d", i);
        asset_loader_t ld = {
            ASSET_LOADER_ABI, name, race_suffixes, NULL, race_parse, NULL, NULL, 0, NULL};
        assert_int_equal(asset_server_register_loader(r.s, &ld, NULL, 0), ASSET_OK);
        snprintf(name, sizeof name, "rr%d", i % 4); /* and replaces sources over and over */
        echoes[i].tag = "rr";
        asset_source_t src = echo_vt(name);
        assert_int_equal(asset_server_register_source(r.s, &src, &echoes[i]), ASSET_OK);
        asset_server_flush(r.s);
    }
    atomic_store(&r.stop, 1);
    for (int i = 0; i < 2; i++) uv_thread_join(&t[i]);
    /* the first registered user loader claims .race */
    asset_handle_t *h = tu_load_wait(r.s, "mem://k.race", ASSET_OK);
    asset_handle_release(h);
    asset_server_destroy(r.s);
    int destroys = 0;
    for (int i = 0; i < 24; i++) destroys += atomic_load(&echoes[i].destroys);
    assert_int_equal(destroys, 24); /* every replaced and every final source, once */
}

/* #7: destroy from inside one of its own callbacks used to abort (or free the server
 * under the flush that was running). It is refused with a logged error. */
typedef struct destroy_in_cb {
    asset_server_t *s;
    int errors;
    char last[512];
} destroy_in_cb_t;
static void log_capture(int level, const char *msg, void *user) {
    destroy_in_cb_t *d = user;
    if (level == ASSET_LOG_ERROR) {
        d->errors++;
        snprintf(d->last, sizeof d->last, "%s", msg);
    }
}
static void destroy_from_cb(asset_handle_t *h, void *user) {
    (void)h;
    destroy_in_cb_t *d = user;
    asset_server_destroy(d->s);
}
static void destroy_from_batch_cb(asset_batch_t *b, void *user) {
    (void)b;
    destroy_in_cb_t *d = user;
    asset_server_destroy(d->s);
}
static void test_destroy_inside_its_own_callback_is_refused(void **state) {
    (void)state;
    destroy_in_cb_t d = {0};
    asset_server_config_t cfg = {.log = log_capture, .user = &d};
    d.s = asset_server_create(&cfg);
    assert_int_equal(asset_mem_put(d.s, "k", "v", 1), ASSET_OK);
    asset_handle_t *h = asset_server_load(d.s, "mem://k", NULL);
    asset_handle_on_completed(h, destroy_from_cb, &d);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.last, "asset_server_destroy: refused"));
    assert_non_null(strstr(d.last, "callback"));
    /* the server still works, also for a batch callback */
    const char *uris[] = {"mem://k"};
    asset_batch_t *b = asset_server_load_group(d.s, uris, 1, NULL);
    asset_batch_on_completed(b, destroy_from_batch_cb, &d);
    assert_int_equal(asset_batch_wait(b, 30000), ASSET_OK);
    assert_int_equal(d.errors, 2);
    asset_batch_release(b);
    asset_handle_release(h);
    asset_server_destroy(d.s); /* outside flush: destroys */
}

/* asset_server_try_destroy says what destroy did: ASSET_E_BUSY where it is refused (the
 * same log line, the server intact), ASSET_OK once it destroyed (the C++ wrapper keeps
 * its callables when it was refused). */
typedef struct try_in_cb {
    asset_server_t *s;
    asset_status_t got;
} try_in_cb_t;
static void try_destroy_from_cb(asset_handle_t *h, void *user) {
    (void)h;
    try_in_cb_t *t = user;
    t->got = asset_server_try_destroy(t->s);
}
static void test_try_destroy_says_whether_it_destroyed(void **state) {
    (void)state;
    destroy_in_cb_t d = {0};
    asset_server_config_t cfg = {.log = log_capture, .user = &d};
    try_in_cb_t t = {asset_server_create(&cfg), ASSET_OK};
    assert_int_equal(asset_mem_put(t.s, "k", "v", 1), ASSET_OK);
    asset_handle_t *h = asset_server_load(t.s, "mem://k", NULL);
    asset_handle_on_completed(h, try_destroy_from_cb, &t);
    assert_int_equal(tu_wait(h), ASSET_OK);
    assert_int_equal(t.got, ASSET_E_BUSY);
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.last, "asset_server_destroy: refused"));
    asset_handle_release(h);
    assert_int_equal(asset_server_try_destroy(NULL), ASSET_E_INVALID);
    assert_int_equal(asset_server_try_destroy(t.s), ASSET_OK); /* outside flush: gone */
}

/* ... and from a worker thread (inside a source's read) it would join itself. */
typedef struct destroy_in_read {
    asset_server_t *s;
    destroy_in_cb_t log;
} destroy_in_read_t;
static asset_status_t destroying_read(void *ctx, asset_request_t *r) {
    destroy_in_read_t *d = ctx;
    asset_server_destroy(d->s);
    return asset_request_write(r, "ok", 2);
}
static void test_destroy_from_a_worker_thread_is_refused(void **state) {
    (void)state;
    destroy_in_read_t d = {0};
    asset_server_config_t cfg = {.log = log_capture, .user = &d.log};
    d.s = asset_server_create(&cfg);
    asset_source_t src = {ASSET_SOURCE_ABI, "kill", 0, destroying_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(d.s, &src, &d), ASSET_OK);
    asset_handle_t *h = tu_load_wait(d.s, "kill://me", ASSET_OK);
    assert_int_equal(d.log.errors, 1);
    assert_non_null(strstr(d.log.last, "worker"));
    asset_handle_release(h);
    asset_server_destroy(d.s);
}

/* asset_server_destroy() from another thread while the flush thread waits: the wait ends
 * with ASSET_E_SHUTDOWN, and destroy returns only once it has. Destroy did not wait for
 * it: with the wait inside its flush (a completion callback running), destroy freed the
 * server, its handles and its lock under it, and the flush went on in freed memory
 * (found by a review). */
typedef struct destroy_during_wait {
    asset_server_t *s;
    uv_sem_t go;
    atomic_bool destroyed;
} destroy_during_wait_t;

static void destroyer_main(void *arg) {
    destroy_during_wait_t *d = arg;
    uv_sem_wait(&d->go);
    asset_server_destroy(d->s);
    atomic_store(&d->destroyed, true);
}

/* Runs inside the wait's flush; returns once destroy is blocked for the wait (a thread
 * in done_cond: with one worker and no task, only destroy can be), fails the test if
 * destroy returned meanwhile. */
static void callback_outlasting_destroy(asset_handle_t *h, void *user) {
    (void)h;
    destroy_during_wait_t *d = user;
    uv_sem_post(&d->go);
    uint64_t deadline = uv_hrtime() + 30 * (uint64_t)1000000000;
    while (uv_hrtime() < deadline) {
        if (atomic_load(&d->destroyed))
            fail_msg("asset_server_destroy returned while a wait's flush still ran a callback");
        uv_mutex_lock(&d->s->lock);
        bool blocked = d->s->stopping && d->s->waiters > 0;
        uv_mutex_unlock(&d->s->lock);
        if (blocked) return;
        tu_os_yield();
    }
    fail_msg("asset_server_destroy neither returned nor waited for the wait");
}

static void test_destroy_from_another_thread_waits_for_the_flush_threads_wait(void **state) {
    (void)state;
    destroy_during_wait_t d = {.s = tu_server(1)};
    atomic_init(&d.destroyed, false);
    assert_int_equal(uv_sem_init(&d.go, 0), 0);
    tu_gate_t *g = tu_gate_register(d.s, "gate");
    assert_int_equal(asset_mem_put(d.s, "k", "v", 1), ASSET_OK);
    asset_handle_t *m = asset_server_load(d.s, "mem://k", NULL);
    assert_true(asset_handle_on_completed(m, callback_outlasting_destroy, &d) != 0);
    asset_handle_release(m);
    tu_wait_queued(d.s, 1); /* m's result, for the wait's flush */
    asset_handle_t *never = asset_server_load(d.s, "gate://never", NULL);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, destroyer_main, &d), 0);
    /* the flush thread's wait delivers m: its callback lets destroy begin */
    assert_int_equal(asset_handle_wait(never, -1), ASSET_E_SHUTDOWN);
    uv_thread_join(&t);
    assert_true(atomic_load(&d.destroyed));
    /* `never` went with the server */
    uv_sem_destroy(&d.go);
    tu_gate_free(g);
}

/* #11: releasing a handle more often than it was retained used to saturate the count
 * at zero silently (and became a use after free once the handle was freed). */
static void test_releasing_a_handle_too_often_is_reported(void **state) {
    (void)state;
    destroy_in_cb_t d = {0};
    asset_server_config_t cfg = {.log = log_capture, .user = &d};
    asset_server_t *s = asset_server_create(&cfg);
    tu_gate_t *g = tu_gate_register(s, "gate");
    asset_handle_t *h = asset_server_load(s, "gate://x", NULL);
    asset_handle_release(h); /* fine: the job keeps it alive until it ends */
    assert_int_equal(d.errors, 0);
    asset_handle_release(h); /* one too many */
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.last, "released more often than retained"));
    assert_non_null(strstr(d.last, "gate://x"));
    tu_gate_open(g);
    asset_server_destroy(s);
    tu_gate_free(g);
}

/* A second asset_request_finish on a request already finished: requests are kept for
 * the worker's next read, so the stale pointer was by then another job's request, and
 * the call acted on that job (here: dropped the bytes its read had adopted, which
 * then loaded as empty). It is refused with a logged error and touches nothing. */
typedef struct stale_sync {
    uv_sem_t entered, go;
    asset_request_t *req;
    atomic_int frees;
} stale_sync_t;
static void stale_sync_free(void *data, void *user) {
    (void)data;
    atomic_fetch_add(&((stale_sync_t *)user)->frees, 1);
}
static asset_status_t stale_sync_read(void *ctx, asset_request_t *r) {
    stale_sync_t *y = ctx;
    asset_status_t st = asset_request_adopt(r, (void *)"two", 3, stale_sync_free, y);
    y->req = r;
    uv_sem_post(&y->entered);
    uv_sem_wait(&y->go);
    return st;
}
/* A server of one worker logging into *d, whose ASYNC read of async://one.json (*h1)
 * has finished (its request *r1): JSON, parsed by the worker, which keeps the request
 * for its next read. */
static asset_server_t *one_async_read_finished(destroy_in_cb_t *d, async_src_t *a,
                                               asset_handle_t **h1, asset_request_t **r1) {
    asset_server_config_t cfg = {.max_workers = 1, .log = log_capture, .user = d};
    asset_server_t *s = asset_server_create(&cfg);
    async_init(a, s, "async");
    *h1 = asset_server_load(s, "async://one.json", NULL);
    uv_sem_wait(&a->entered);
    *r1 = a->req;
    assert_int_equal(asset_request_write(*r1, "[1]", 3), ASSET_OK);
    asset_request_finish(*r1, ASSET_OK);
    /* the worker's parse, not this thread's: a wait runs a parse left queued here */
    tu_wait_queued(s, 1);
    assert_int_equal(tu_wait(*h1), ASSET_OK);
    assert_int_equal(d->errors, 0);
    return s;
}

static void test_a_second_finish_of_a_request_never_acts_on_another_job(void **state) {
    (void)state;
    destroy_in_cb_t d = {0};
    async_src_t a;
    asset_handle_t *h1;
    asset_request_t *r1;
    asset_server_t *s = one_async_read_finished(&d, &a, &h1, &r1);
    stale_sync_t y = {0};
    uv_sem_init(&y.entered, 0);
    uv_sem_init(&y.go, 0);
    asset_source_t sy = {ASSET_SOURCE_ABI, "sy", 0, stale_sync_read, NULL, NULL};
    assert_int_equal(asset_server_register_source(s, &sy, &y), ASSET_OK);
    /* (no stale call here: the worker may still be letting job 1 go) */
    asset_handle_t *h2 = asset_server_load(s, "sy://two", NULL);
    uv_sem_wait(&y.entered);
    if (y.req != r1) { /* the worker's kept request went to this read: nothing to test */
        uv_sem_post(&y.go);
        asset_handle_release(h2);
        asset_handle_release(h1);
        asset_server_destroy(s);
        skip();
    }
    asset_request_finish(r1, ASSET_E_IO); /* stale: now the request of job 2 */
    assert_int_equal(d.errors, 1);
    assert_non_null(strstr(d.last, "asset_request_finish"));
    assert_int_equal(atomic_load(&y.frees), 0); /* its adopted bytes stay */
    uv_sem_post(&y.go);
    assert_int_equal(tu_wait(h2), ASSET_OK);
    tu_expect_text(h2, "two");
    assert_int_equal(d.errors, 1);
    assert_int_equal(atomic_load(&y.frees), 1); /* once, by the library */
    asset_handle_release(h2);
    asset_handle_release(h1);
    asset_server_destroy(s);
    async_free(&a);
    uv_sem_destroy(&y.entered);
    uv_sem_destroy(&y.go);
}

/* A second asset_request_finish right after the first, on the same thread (a source's
 * error path that finishes, then its common path again): the request's job went to a
 * worker, which parses it and lets the request go (its job pointer cleared, the request
 * kept or freed) while the second call read that pointer to decide whether to refuse: a
 * data race (TSan), and a use of the job after its free if a flush freed it meanwhile.
 * The second call is refused on the closed mark it set itself, before any other look. */
static void test_a_finish_right_after_a_finish_is_refused_without_a_race(void **state) {
    (void)state;
    destroy_in_cb_t d = {0};
    asset_server_config_t cfg = {.max_workers = 1, .log = log_capture, .user = &d};
    asset_server_t *s = asset_server_create(&cfg);
    async_src_t a;
    async_init(&a, s, "async");
    /* as many as are logged each (the rest: one line per power of two) */
    for (int i = 0; i < ASSET__LATE_LOGGED; i++) {
        char uri[64];
        snprintf(uri, sizeof uri, "async://f%d.json", i);
        asset_handle_t *h = asset_server_load(s, uri, NULL);
        uv_sem_wait(&a.entered);
        asset_request_t *r = a.req;
        assert_int_equal(asset_request_write(r, "[1]", 3), ASSET_OK);
        asset_request_finish(r, ASSET_OK);
        asset_request_finish(r, ASSET_OK); /* refused, whatever the worker does meanwhile */
        assert_int_equal(tu_wait(h), ASSET_OK);
        assert_int_equal(d.errors, i + 1);
        assert_non_null(strstr(d.last, "asset_request_finish"));
        /* each whole, the last of them too: no count yet (thirty-third review) */
        assert_null(strstr(d.last, "refused request calls"));
        asset_handle_release(h);
    }
    asset_server_destroy(s);
    async_free(&a);
}

/* A source's call that stores into its request after its finish (asset_request_fail,
 * _set_version, _write, _adopt): the worker keeps the request for its next read, whose
 * init zeroed it, so a message or a version stored into the idle request leaked (into
 * another job's request, it became that job's); during the parse, a write reallocated
 * the bytes the parse read. Refused with a logged error once the read is over. */
typedef struct idle_task {
    uv_sem_t entered, go;
    asset_request_t *spare;
} idle_task_t;
static asset_status_t idle_task_fn(asset_task_t *t, void *arg) {
    (void)t;
    idle_task_t *k = arg;
    k->spare = asset__pool_spare_request(); /* a look at this worker's kept request */
    asset__pool_keep_request(k->spare);
    uv_sem_post(&k->entered);
    uv_sem_wait(&k->go);
    return ASSET_OK;
}
/* Starts the task above on s's worker and waits until it runs (k->spare set). */
static asset_handle_t *idle_task_start(asset_server_t *s, idle_task_t *k) {
    memset(k, 0, sizeof *k);
    uv_sem_init(&k->entered, 0);
    uv_sem_init(&k->go, 0);
    asset_handle_t *ht = asset_server_spawn(s, idle_task_fn, k, NULL, NULL);
    uv_sem_wait(&k->entered);
    return ht;
}

/* Lets it end, and releases it. */
static void idle_task_end(idle_task_t *k, asset_handle_t *ht) {
    uv_sem_post(&k->go);
    tu_wait(ht); /* its status does not matter */
    asset_handle_release(ht);
    uv_sem_destroy(&k->entered);
    uv_sem_destroy(&k->go);
}

/* Runs late(d, r1) on the request r1 of a finished ASYNC read while the single worker
 * keeps r1 idle (it runs a task meanwhile), d capturing the log; skips when the worker
 * did not keep r1 (nothing to test). */
static void with_an_idle_request(void (*late)(destroy_in_cb_t *d, asset_request_t *r1)) {
    destroy_in_cb_t d = {0};
    async_src_t a;
    asset_handle_t *h1;
    asset_request_t *r1;
    asset_server_t *s = one_async_read_finished(&d, &a, &h1, &r1);
    /* the single worker runs the task once it let job 1 go: r1 is idle, kept by it */
    idle_task_t k;
    asset_handle_t *ht = idle_task_start(s, &k);
    bool idle = k.spare == r1;
    if (idle) late(&d, r1);
    idle_task_end(&k, ht);
    asset_handle_release(h1);
    asset_server_destroy(s); /* frees the kept request: what it held leaked */
    async_free(&a);
    if (!idle) skip(); /* the worker did not keep the request: nothing to test */
}

static void late_calls_store_nothing(destroy_in_cb_t *d, asset_request_t *r1) {
    char longv[200]; /* longer than the request's inline buffer: allocated */
    memset(longv, 'v', sizeof longv - 1);
    longv[sizeof longv - 1] = 0;
    assert_int_equal(asset_request_fail(r1, ASSET_E_IO, "late %d", 1), ASSET_E_IO);
    assert_int_equal(d->errors, 1);
    assert_non_null(strstr(d->last, "asset_request_fail"));
    asset_request_set_version(r1, longv);
    assert_int_equal(d->errors, 2);
    assert_non_null(strstr(d->last, "asset_request_set_version"));
    assert_int_equal(asset_request_write(r1, "x", 1), ASSET_E_CANCELLED);
    assert_int_equal(d->errors, 3);
    stale_sync_t y = {0};
    assert_int_equal(asset_request_adopt(r1, (void *)"y", 1, stale_sync_free, &y),
                     ASSET_E_CANCELLED);
    assert_int_equal(atomic_load(&y.frees), 1); /* given back at once */
    assert_int_equal(d->errors, 4);
    assert_null(r1->message);
    assert_null(r1->version);
    assert_null(r1->data);
}

static void test_a_request_call_after_its_finish_stores_nothing(void **state) {
    (void)state;
    with_an_idle_request(late_calls_store_nothing);
}

/* Twenty-third review: each refused late call logged a line, unbounded: a source that
 * wrote in a loop after its finish ran the log callback (on its own thread) once per call.
 * The first few refusals are logged, then one line at each power of two saying how
 * many there were; the calls are still refused. */
static void late_writes_in_a_loop(destroy_in_cb_t *d, asset_request_t *r1) {
    for (int i = 0; i < 10000; i++)
        assert_int_equal(asset_request_write(r1, "x", 1), ASSET_E_CANCELLED);
    assert_null(r1->data);
    if (d->errors < 1 || d->errors > 32) fail_msg("%d lines for 10,000 late writes", d->errors);
    /* the last line counts them: 8,192 is the last power of two */
    if (!strstr(d->last, "asset_request_write") || !strstr(d->last, "8192"))
        fail_msg("last line: '%s'", d->last);
    int before = d->errors;
    asset_request_finish(r1, ASSET_OK); /* another kind of late call: counted with them */
    assert_true(d->errors <= before + 1);
}

static void test_late_request_calls_in_a_loop_log_a_bounded_number_of_lines(void **state) {
    (void)state;
    with_an_idle_request(late_writes_in_a_loop);
}

#ifndef NDEBUG
/* The freed case is undefined behaviour to test for real (ASan reports the read itself),
 * so check the poison word that debug builds rely on on a handle we keep alive. */
static void test_debug_builds_poison_freed_handles(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    assert_int_equal(asset_mem_put(s, "k", "v", 1), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "mem://k", ASSET_OK);
    assert_int_equal(h->magic, ASSET__HANDLE_MAGIC);
    uint32_t saved = h->magic;
    h->magic = ASSET__HANDLE_DEAD; /* what handle_free leaves behind */
    asset_handle_release(h);       /* refused: says so on stderr, touches nothing */
    assert_null(asset_handle_retain(h));
    h->magic = saved;
    assert_int_equal(h->refs, 1);
    asset_handle_release(h);
    asset_server_destroy(s);
}
#endif

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_with_null_config_uses_defaults),
        cmocka_unit_test(test_create_with_config_applies_and_copies_it),
        cmocka_unit_test(test_relative_file_root_resolves_against_cwd),
        cmocka_unit_test(test_an_empty_file_root_is_the_working_directory),
        cmocka_unit_test(test_a_file_root_the_path_rules_refuse_fails_create),
        cmocka_unit_test(test_instance_is_one_lazy_server_until_shutdown),
        cmocka_unit_test(test_shutdown_instance_refused_in_its_callback_keeps_the_instance),
        cmocka_unit_test(test_register_source_validates_the_vtable),
        cmocka_unit_test(test_register_source_copies_the_vtable_and_scheme),
        cmocka_unit_test(test_register_source_reads_only_the_fields_of_its_abi),
        cmocka_unit_test(test_user_source_replaces_a_builtin),
        cmocka_unit_test(test_replacing_a_user_source_destroys_the_old_one_once),
        cmocka_unit_test(test_unknown_scheme_and_loader_fail_with_message),
        cmocka_unit_test(test_register_loader_validates),
        cmocka_unit_test(test_register_loader_reads_only_the_fields_of_its_abi),
        cmocka_unit_test(test_register_loader_refuses_the_librarys_own_names),
        cmocka_unit_test(test_async_source_finishes_from_another_thread),
        cmocka_unit_test(test_async_source_failure_from_another_thread),
        cmocka_unit_test(test_async_source_finishing_before_returning_pending),
        cmocka_unit_test(test_async_source_shared_by_coalesced_handles),
        cmocka_unit_test(test_destroy_waits_for_an_unfinished_async_read),
        cmocka_unit_test(test_async_cancel_then_finish_gives_cancelled),
        cmocka_unit_test(test_not_modified_with_nothing_cached_fails_with_message),
        cmocka_unit_test(test_pending_from_a_sync_source_fails_with_message),
        cmocka_unit_test(test_unexpected_status_from_a_source_fails),
        cmocka_unit_test(test_source_error_without_message_still_names_uri),
        cmocka_unit_test(test_replaced_source_is_destroyed_only_after_its_read_ends),
        cmocka_unit_test(test_a_replaced_sources_cached_and_running_loads_do_not_serve_new_loads),
        cmocka_unit_test(test_a_replaced_sources_revalidation_caches_nothing),
        cmocka_unit_test(test_a_replaced_sources_not_found_leaves_the_new_sources_entry),
        cmocka_unit_test(test_registering_while_other_threads_load_is_safe),
        cmocka_unit_test(test_destroy_inside_its_own_callback_is_refused),
        cmocka_unit_test(test_try_destroy_says_whether_it_destroyed),
        cmocka_unit_test(test_destroy_from_a_worker_thread_is_refused),
        cmocka_unit_test(test_destroy_from_another_thread_waits_for_the_flush_threads_wait),
        cmocka_unit_test(test_releasing_a_handle_too_often_is_reported),
        cmocka_unit_test(test_a_second_finish_of_a_request_never_acts_on_another_job),
        cmocka_unit_test(test_a_finish_right_after_a_finish_is_refused_without_a_race),
        cmocka_unit_test(test_a_request_call_after_its_finish_stores_nothing),
        cmocka_unit_test(test_late_request_calls_in_a_loop_log_a_bounded_number_of_lines),
#ifndef NDEBUG
        cmocka_unit_test(test_debug_builds_poison_freed_handles),
#endif
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
