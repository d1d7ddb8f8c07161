/* test_embed.c - tests/data/embed compiled in by asset_server_embed() (see
 * tests/CMakeLists.txt): the generated table matches the folder byte for byte, loads
 * through pkg:// with no file I/O, and the asset-embed tool escapes odd file names and
 * refuses bad arguments. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "internal.h"
#include "test_embed_assets.h" /* generated: test_embed_assets_files[], _count */
#include "test_util.h"
#include "tu_os.h"

static const char *const expected_paths[] = {"hello.txt", "sub/data.json", "sub/deeper/bin.dat",
                                             "with space.txt"};
#define NEXPECTED (sizeof expected_paths / sizeof *expected_paths)

/* The file under tests/data/embed, read from the source tree. */
static unsigned char *read_source(const char *rel, size_t *n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/data/embed/%s", tu_srcdir(), rel);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    unsigned char *buf = malloc(1 << 16);
    *n = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void test_generated_table_matches_the_folder(void **state) {
    (void)state;
    assert_int_equal(test_embed_assets_files_count, NEXPECTED);
    for (size_t i = 0; i < NEXPECTED; i++) {
        const asset_embedded_file_t *e = &test_embed_assets_files[i];
        assert_string_equal(e->path, expected_paths[i]); /* sorted, '/'-separated */
        size_t n;
        unsigned char *disk = read_source(e->path, &n);
        assert_int_equal(e->size, n);
        assert_memory_equal(e->data, disk, n);
        assert_int_equal(((const unsigned char *)e->data)[n], 0); /* uncounted trailing 0 */
        free(disk);
    }
    /* a zeroed entry ends the table */
    const asset_embedded_file_t *end = &test_embed_assets_files[NEXPECTED];
    assert_null(end->path);
    assert_null(end->data);
    assert_int_equal(end->size, 0);
}

static void test_embedded_folder_loads_through_pkg(void **state) {
    (void)state;
    asset_server_t *s = asset_server_create(NULL);
    assert_int_equal(asset_server_mount_embedded(s, "embtest", test_embed_assets_files,
                                                 test_embed_assets_files_count),
                     ASSET_OK);
    asset_handle_t *h = asset_server_load(s, "pkg://embtest/sub/data.json", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    const cJSON *j = asset_handle_value(h);
    assert_int_equal(cJSON_GetObjectItem(j, "answer")->valueint, 42);
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "embedded");
    asset_handle_release(h);
    h = asset_server_load(s, "pkg://embtest/with%20space.txt", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_string_equal((const char *)b->data, "with a space\n");
    asset_handle_release(h);
    h = asset_server_load(s, "pkg://embtest/sub/deeper/bin.dat", NULL);
    assert_int_equal(tu_wait(h), ASSET_OK);
    b = asset_handle_value(h);
    assert_int_equal(b->size, 7);
    assert_memory_equal(b->data, "\x00\x01\"\\\xff\x7f\n", 7);
    asset_handle_release(h);
    /* the folder's shape, through the pkg source's listing */
    asset_list_t l;
    memset(&l, 0, sizeof l);
    l.path = "embtest/sub";
    l.recursive = true;
    assert_int_equal(asset__pkg_source.list(s, "pkg://embtest/sub", &l), ASSET_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.paths[0], "data.json");
    assert_string_equal(l.paths[1], "deeper/bin.dat");
    asset__list_dispose(&l);
    asset_server_destroy(s);
}

/* ---- the tool itself ---- */

static const char *tool(void) {
    const char *t = getenv("ASSET_TEST_EMBED_TOOL");
    return t && *t ? t : NULL;
}

/* Runs the tool with up to three arguments (NULL ends them early); its exit status.
 * quiet: its stderr to the null device. */
static int run(bool quiet, const char *a1, const char *a2, const char *a3) {
    const char *args[] = {tool(), a1, a1 ? a2 : NULL, a1 && a2 ? a3 : NULL};
    char cmd[8192] = "";
    for (size_t i = 0; i < 4 && args[i]; i++) {
        char *q = tu_os_quote(args[i]);
        snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i ? " " : "", q);
        free(q);
    }
    if (quiet) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), " 2>%s", tu_os_devnull());
    return tu_os_system(cmd);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static void test_tool_escapes_odd_names_and_writes_every_byte(void **state) {
    (void)state;
    if (!tool()) skip();
    char *dir = tu_mkdtemp();
    char *in = tu_path(dir, "in");
    /* '"' and '?' (escaped by the tool) cannot be in a name on Windows; '\\' is refused
     * (test_tool_refuses_a_name_no_uri_can_give) */
    bool any = tu_os_any_file_name();
    free(tu_write_file(in, any ? "q\"uote?.txt" : "q'uote [back] #1.txt", "ab", 2));
    free(tu_write_file(in, "z/empty", "", 0));
    free(tu_write_file(in, "a\xc3\xa9.txt", "\x00\xff", 2));
    char *out = tu_path(dir, "out.c");
    assert_int_equal(run(false, "odd_table", in, out), 0);
    char *c = slurp(out);
    assert_non_null(c);
    assert_non_null(strstr(c, "const asset_embedded_file_t odd_table_files[] = {"));
    assert_non_null(strstr(c, "const size_t odd_table_files_count = 3u;"));
    /* sorted by bytes: "a\303\251.txt" < "q..." < "z/empty"; names escaped */
    const char *e1 = strstr(c, "{\"a\\303\\251.txt\", odd_table_data_0, 2u}");
    const char *e2 = strstr(c, any ? "{\"q\\\"uote\\?.txt\", odd_table_data_1, 2u}"
                                   : "{\"q'uote [back] #1.txt\", odd_table_data_1, 2u}");
    const char *e3 = strstr(c, "{\"z/empty\", odd_table_data_2, 0u}");
    assert_non_null(e1);
    assert_non_null(e2);
    assert_non_null(e3);
    assert_true(e1 < e2 && e2 < e3);
    assert_non_null(strstr(c, "odd_table_data_0[] = {\n    0x00,0xff,0x00\n};"));
    assert_non_null(strstr(c, "odd_table_data_2[] = {\n    0x00\n};"));
    free(c);
    /* no temporary left next to the output (out.c.<pid>.tmp) */
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (l >= 4 && !strcmp(e->d_name + l - 4, ".tmp")) fail_msg("left: %s", e->d_name);
    }
    closedir(d);
    tu_rmrf(dir);
    free(dir);
    free(in);
    free(out);
}

static void test_tool_refuses_bad_arguments(void **state) {
    (void)state;
    if (!tool()) skip();
    char *dir = tu_mkdtemp();
    char *out = tu_path(dir, "out.c");
    assert_int_equal(run(true, NULL, NULL, NULL), 2); /* usage */
    assert_int_equal(run(true, "9bad", dir, out), 1);
    char *missing = tu_path(dir, "missing");
    assert_int_equal(run(true, "ok", missing, out), 1);
    free(missing);
    assert_null(slurp(out)); /* nothing written on failure */
    /* an empty folder is a valid, empty table */
    char *empty = tu_path(dir, "empty");
    free(tu_write_file(empty, ".keep", "", 0));
    char *keep = tu_path(empty, ".keep");
    remove(keep);
    assert_int_equal(run(false, "none", empty, out), 0);
    char *c = slurp(out);
    assert_non_null(strstr(c, "const size_t none_files_count = 0u;"));
    assert_non_null(strstr(c, "{0, 0, 0}"));
    free(c);
    tu_rmrf(dir);
    free(dir);
    free(out);
    free(empty);
    free(keep);
}

/* A file whose name has a backslash (a POSIX name; Windows has none) fails the tool:
 * no pkg:// URI can name it, and asset_server_mount_embedded() refuses the table that
 * has it, so the game's mount would fail at run time. Nothing written. */
static void test_tool_refuses_a_name_no_uri_can_give(void **state) {
    (void)state;
    if (!tool()) skip();
    TU_SKIP_UNLESS(tu_os_any_file_name(), "no backslash in a file name");
    char *dir = tu_mkdtemp();
    char *in = tu_path(dir, "in");
    free(tu_write_file(in, "ok.txt", "ok", 2));
    free(tu_write_file(in, "sub/back\\slash.txt", "b", 1));
    char *out = tu_path(dir, "out.c");
    assert_int_equal(run(true, "bs", in, out), 1);
    assert_null(slurp(out));
    tu_rmrf(dir);
    free(dir);
    free(in);
    free(out);
}

/* A file whose pkg:// URI would pass 8192 bytes ('%' is three bytes there, "%25") fails
 * the tool: asset_server_mount_embedded() refuses the table that has it, so the game's
 * mount would fail at run time. Nothing written. */
static void test_tool_refuses_a_path_no_uri_can_hold(void **state) {
    (void)state;
    if (!tool()) skip();
    TU_SKIP_UNLESS(tu_os_any_file_name(), "paths of 2,800 bytes (past Windows' MAX_PATH)");
    char *dir = tu_mkdtemp();
    char *in = tu_path(dir, "in");
    free(tu_write_file(in, "ok.txt", "ok", 2));
    char rel[14 * 201 + 8] = "";
    for (int i = 0; i < 14; i++) { /* 14 folders of 200 '%': 8,400 bytes in the URI */
        size_t n = strlen(rel);
        memset(rel + n, '%', 200);
        rel[n + 200] = '/';
        rel[n + 201] = 0;
    }
    strcat(rel, "f");
    free(tu_write_file(in, rel, "b", 1));
    char *out = tu_path(dir, "out.c");
    assert_int_equal(run(true, "long", in, out), 1);
    assert_null(slurp(out));
    tu_rmrf(dir);
    free(dir);
    free(in);
    free(out);
}

/* A rebuild runs the tool again over its last output: it must replace it (Windows'
 * rename() refuses an existing target). */
static void test_tool_replaces_its_previous_output(void **state) {
    (void)state;
    if (!tool()) skip();
    char *dir = tu_mkdtemp();
    char *in = tu_path(dir, "in");
    char *out = tu_path(dir, "out.c");
    free(tu_write_file(in, "a.txt", "a", 1));
    assert_int_equal(run(false, "again", in, out), 0);
    free(tu_write_file(in, "b.txt", "b", 1));
    assert_int_equal(run(false, "again", in, out), 0);
    char *c = slurp(out);
    assert_non_null(c);
    assert_non_null(strstr(c, "const size_t again_files_count = 2u;"));
    free(c);
    tu_rmrf(dir);
    free(dir);
    free(in);
    free(out);
}

/* Fortieth review: two runs of the tool on one output at once (a game and its tests
 * embedding the same folder under the same name in one directory: a parallel Makefile
 * build runs the table's rule once per target) both wrote <out>.tmp, one truncating the
 * other's half-written file and renaming it away under it: "asset-embed: cannot rename
 * to", or a table cut short, on most such builds (the project's own web build ordered
 * its two targets to dodge it). Each run writes a temporary file of its own: both
 * succeed and the output is whole. */
typedef struct {
    const char *in, *out;
    uv_sem_t *go; /* posted for both at once (the web's uv has no barrier) */
    int rc;
} embed_run_t;

static void embed_run(void *arg) {
    embed_run_t *r = arg;
    uv_sem_wait(r->go);
    r->rc = run(false, "race", r->in, r->out);
}

static char *slurp_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - len, f)) > 0)
        if ((len += got) == cap) buf = realloc(buf, cap *= 2);
    fclose(f);
    *n = len;
    return buf;
}

static void test_tool_runs_at_once_on_one_output_both_succeed(void **state) {
    (void)state;
    if (!tool()) skip();
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    if (pf && (!strcmp(pf, "web") || !strcmp(pf, "win32"))) { /* threads; wine's rename */
        skip();
        return;
    }
    char *dir = tu_mkdtemp();
    char *in = tu_path(dir, "in");
    char *ref = tu_path(dir, "ref.c"), *out = tu_path(dir, "out.c");
    free(tu_write_pattern(in, "big.bin", (size_t)1 << 20)); /* about 6 MB of C */
    free(tu_write_file(in, "a.txt", "a", 1));
    assert_int_equal(run(false, "race", in, ref), 0);
    size_t nref = 0, nout = 0;
    char *want = slurp_all(ref, &nref);
    assert_non_null(want);
    for (int round = 0; round < 3; round++) {
        uv_sem_t go;
        assert_int_equal(uv_sem_init(&go, 0), 0);
        embed_run_t r[2];
        uv_thread_t t[2];
        for (int i = 0; i < 2; i++) {
            r[i] = (embed_run_t){in, out, &go, -1};
            assert_int_equal(uv_thread_create(&t[i], embed_run, &r[i]), 0);
        }
        uv_sem_post(&go);
        uv_sem_post(&go);
        for (int i = 0; i < 2; i++) uv_thread_join(&t[i]);
        uv_sem_destroy(&go);
        assert_int_equal(r[0].rc, 0);
        assert_int_equal(r[1].rc, 0);
        char *got = slurp_all(out, &nout);
        assert_non_null(got);
        assert_int_equal(nout, nref);
        assert_memory_equal(got, want, nref);
        free(got);
    }
    free(want);
    tu_rmrf(dir);
    free(dir);
    free(in);
    free(ref);
    free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_table_matches_the_folder),
        cmocka_unit_test(test_embedded_folder_loads_through_pkg),
        cmocka_unit_test(test_tool_escapes_odd_names_and_writes_every_byte),
        cmocka_unit_test(test_tool_refuses_bad_arguments),
        cmocka_unit_test(test_tool_refuses_a_name_no_uri_can_give),
        cmocka_unit_test(test_tool_refuses_a_path_no_uri_can_hold),
        cmocka_unit_test(test_tool_replaces_its_previous_output),
        cmocka_unit_test(test_tool_runs_at_once_on_one_output_both_succeed),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
