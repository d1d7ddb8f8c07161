/* test_zerocopy.c - large immutable files served without a copy (config.map_threshold,
 * load option map_file): pkg:// directory files mapped, embedded files served from
 * their table, file:// mapped only on opt-in, loaders other than bytes reading a
 * mapping in place, cancel and destroy with mappings in flight, cache eviction
 * unmapping, a reload mapping as its load did, empty files. Windows (under wine) reads
 * a file whose size fills its last page (asset__file_map in platform.h). A counting
 * allocator proves that no copy was made (a 4 MiB load allocates under 64 KiB);
 * /proc/self/maps, where the OS has one, proves that a mapping exists while its value
 * lives and is gone after. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"
#include "test_util.h"
#include "tu_os.h"

#define MiB ((size_t)1 << 20)
#define NO_COPY_LIMIT ((size_t)64 * 1024)

/* ---- a counting allocator: bytes asked for since the process began ---- */

static atomic_size_t g_asked;

static void *count_alloc(size_t n, void *user) {
    (void)user;
    atomic_fetch_add(&g_asked, n);
    return malloc(n ? n : 1);
}
static void *count_realloc(void *p, size_t n, void *user) {
    (void)user;
    atomic_fetch_add(&g_asked, n);
    return realloc(p, n ? n : 1);
}
static void count_free(void *p, void *user) {
    (void)user;
    free(p);
}
static const asset_allocator_t g_hook = {count_alloc, count_realloc, count_free, NULL};

/* ---- /proc/self/maps: how many mappings name a file ending in `name` ---- */

static bool on_windows(void) {
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    return pf && !strcmp(pf, "win32");
}

/* -1: this OS has no /proc/self/maps (or it is Windows under wine: not its maps). A
 * mapping listed in pieces counts once: a piece follows the one before in memory and
 * in the file (the last page of a mapping is its own copy, with the 0 after the data:
 * a line of its own). */
static int maps_of(const char *name) {
    if (on_windows()) return -1;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    int n = 0;
    size_t nl = strlen(name);
    unsigned long long prev_end = 0, next_off = 0; /* where a piece of the last one starts */
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == ' ')) line[--l] = 0;
        if (l < nl || strcmp(line + l - nl, name)) continue;
        unsigned long long start = 0, end = 0, off = 0;
        if (sscanf(line, "%llx-%llx %*s %llx", &start, &end, &off) != 3) continue;
        if (start != prev_end || off != next_off) n++; /* not the next piece: another one */
        prev_end = end;
        next_off = off + (end - start);
    }
    fclose(f);
    return n;
}

/* "the file is mapped n times", where the OS can tell */
static void expect_maps(const char *name, int n) {
    int got = maps_of(name);
    if (got < 0) return; /* no way to look: the allocation counts still prove it */
    if (got != n) fail_msg("%s: mapped %d times, expected %d", name, got, n);
}

static void pattern(unsigned char *d, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = (unsigned char)(i * 31 + 7); /* tu_write_pattern */
}

/* The value of h is exactly tu_write_pattern's n bytes, with a 0 after them. */
static void expect_pattern(asset_handle_t *h, size_t n) {
    unsigned char *want = malloc(n ? n : 1);
    pattern(want, n);
    tu_expect_bytes(h, want, n);
    free(want);
}

/* Loads uri with o, waits for ASSET_OK; *asked: bytes allocated meanwhile. */
static asset_handle_t *load_counted(asset_server_t *s, const char *uri,
                                    const asset_load_options_t *o, size_t *asked) {
    size_t before = atomic_load(&g_asked);
    asset_handle_t *h = asset_server_load(s, uri, o);
    assert_non_null(h);
    asset_status_t st = tu_wait(h);
    if (st != ASSET_OK)
        fail_msg("load(%s) = %s (%s)", uri, asset_err_name(st), asset_handle_error_message(h));
    *asked = atomic_load(&g_asked) - before;
    return h;
}

static asset_server_t *server_with(size_t map_threshold) {
    asset_server_config_t cfg = {0};
    cfg.max_workers = 2;
    cfg.map_threshold = map_threshold;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    return s;
}

/* ---- tests ---- */

/* A 4 MiB file of a directory package is mapped, not read: the load allocates a few
 * small records, not 4 MiB; the bytes are right and followed by a 0, both for a size
 * that fills its last page (the 0 comes from a page of its own) and for one that does
 * not. The mapping lives as long as the value and goes with the server. */
static void test_large_pkg_file_is_mapped_not_copied(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    const size_t sizes[] = {4 * MiB, 4 * MiB + 123};
    const char *names[] = {"zc-page.bin", "zc-odd.bin"};
    for (int i = 0; i < 2; i++) free(tu_write_pattern(game, names[i], sizes[i]));
    asset_server_t *s = server_with(0); /* default: 1 MiB */
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    for (int i = 0; i < 2; i++) {
        char uri[64], tail[32];
        snprintf(uri, sizeof uri, "pkg://game/%s", names[i]);
        snprintf(tail, sizeof tail, "/%s", names[i]);
        size_t asked = 0;
        asset_handle_t *h = load_counted(s, uri, NULL, &asked);
        if (on_windows() && sizes[i] % 4096 == 0) {
            assert_true(asked >= sizes[i]); /* no 0 byte after a full page: read */
        } else if (asked >= NO_COPY_LIMIT) {
            fail_msg("%s: %zu bytes allocated for a mapped load", uri, asked);
        }
        expect_pattern(h, sizes[i]);
        /* the cache counts a mapped value at its size, like a copied one */
        assert_true(asset_handle_size(h) >= sizes[i]);
        expect_maps(tail, 1);
        asset_handle_release(h); /* the cache still holds it */
        expect_maps(tail, 1);
    }
    asset_server_destroy(s);
    expect_maps("/zc-page.bin", 0);
    expect_maps("/zc-odd.bin", 0);
    tu_rmrf(dir);
    free(game);
    free(dir);
}

/* Mounts game on s, loads its 4 MiB zc-big.bin and checks it was read (allocated, not
 * mapped), then destroys s. */
static void read_big_and_destroy(asset_server_t *s, const char *game) {
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    size_t asked = 0;
    asset_handle_t *h = load_counted(s, "pkg://game/zc-big.bin", NULL, &asked);
    assert_true(asked >= 4 * MiB);
    expect_pattern(h, 4 * MiB);
    expect_maps("/zc-big.bin", 0);
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* Below the threshold (or with it at SIZE_MAX) a file is read into memory as before. */
static void test_pkg_file_below_threshold_is_copied(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    free(tu_write_pattern(game, "zc-small.bin", MiB / 2));
    free(tu_write_pattern(game, "zc-big.bin", 4 * MiB));
    asset_server_t *s = server_with(0);
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    size_t asked = 0;
    asset_handle_t *h = load_counted(s, "pkg://game/zc-small.bin", NULL, &asked);
    assert_true(asked >= MiB / 2);
    expect_pattern(h, MiB / 2);
    expect_maps("/zc-small.bin", 0);
    asset_handle_release(h);
    asset_server_destroy(s);

    read_big_and_destroy(server_with(SIZE_MAX), game); /* never map */
    /* watched, a directory package is mutable: read, never mapped (a mutation survivor:
     * mapped at the threshold, a file truncated in place raised SIGBUS) */
    asset_server_config_t wcfg = {.max_workers = 2, .watch = true};
    s = asset_server_create(&wcfg);
    assert_non_null(s);
    read_big_and_destroy(s, game);
    tu_rmrf(dir);
    free(game);
    free(dir);
}

/* An embedded file at the threshold is served from its table: the bytes value's data
 * is the table's pointer. A smaller one is copied (its own pointer). */
static void test_embedded_file_value_points_into_the_table(void **state) {
    (void)state;
    size_t n = 64 * 1024;
    unsigned char *big = malloc(n + 1); /* + the 0 byte asset-embed writes */
    pattern(big, n);
    big[n] = 0;
    static const char small[] = "small file";
    asset_embedded_file_t table[] = {{"big.bin", big, n}, {"small.txt", small, sizeof small - 1}};
    /* the threshold exactly: it is inclusive (a mutation survivor: `>`, which the test
     * at half the file's size let through, copied such a file) */
    asset_server_t *s = server_with(n);
    assert_int_equal(asset_server_mount_embedded(s, "emb", table, 2), ASSET_OK);
    size_t asked = 0;
    asset_handle_t *h = load_counted(s, "pkg://emb/big.bin", NULL, &asked);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_ptr_equal(b->data, big);
    assert_int_equal(b->size, n);
    assert_true(asked < NO_COPY_LIMIT);
    asset_handle_t *h2 = load_counted(s, "pkg://emb/small.txt", NULL, &asked);
    tu_expect_text(h2, small);
    assert_ptr_not_equal(((const asset_bytes_t *)asset_handle_value(h2))->data, small);
    asset_handle_release(h);
    asset_handle_release(h2);
    asset_server_destroy(s);
    free(big);
}

/* file:// is mapped only when the load sets map_file (a file truncated under a
 * mapping raises SIGBUS), and only at the threshold and above. */
static void test_file_uri_is_mapped_only_when_the_load_opts_in(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    const size_t n = 4 * MiB + 123; /* not a whole number of pages: Windows maps it too */
    char *big = tu_write_pattern(dir, "zc-file.bin", n);
    char *small = tu_write_pattern(dir, "zc-file-small.bin", 1000);
    char *ubig = tu_file_uri(big), *usmall = tu_file_uri(small);
    asset_server_t *s = server_with(0);
    size_t asked = 0;
    asset_handle_t *h = load_counted(s, ubig, NULL, &asked);
    assert_true(asked >= n); /* default: read */
    expect_pattern(h, n);
    expect_maps("/zc-file.bin", 0);
    asset_handle_release(h);

    asset_load_options_t o = {0};
    o.map_file = true;
    o.no_cache = true; /* else the cached copy would answer */
    h = load_counted(s, ubig, &o, &asked);
    if (asked >= NO_COPY_LIMIT) fail_msg("%zu bytes allocated for a mapped file:// load", asked);
    expect_pattern(h, n);
    expect_maps("/zc-file.bin", 1);
    asset_handle_release(h); /* no_cache: nobody else holds it */
    expect_maps("/zc-file.bin", 0);

    h = load_counted(s, usmall, &o, &asked); /* below the threshold: read */
    expect_pattern(h, 1000);
    expect_maps("/zc-file-small.bin", 0);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
    free(big);
    free(small);
    free(ubig);
    free(usmall);
}

/* The header's promise for map_file: bytes appended to a mapped file do not show through
 * the value, data[size] stays 0 (a text loader reads it as a C string). The mapping of
 * the file's last page is the file's page: the kernel zero-filled its tail, but bytes
 * appended later fill it too, unless the value has its own copy of that page. A mutation
 * survivor (the 0 never written, fs_posix.c's terminate) passed every suite. Both sizes
 * end inside a page: one mapped as is, one (past 2 MiB) aligned for huge pages. */
static void test_bytes_appended_to_a_mapped_file_do_not_show_after_its_end(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    const size_t sizes[] = {MiB + 123, 4 * MiB + 123};
    asset_server_t *s = server_with(0);
    asset_load_options_t o = {0};
    o.map_file = true;
    o.no_cache = true;
    char tail[4096];
    memset(tail, 'X', sizeof tail);
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "zc-grow%d.bin", i);
        char *path = tu_write_pattern(dir, name, sizes[i]), *uri = tu_file_uri(path);
        size_t asked = 0;
        asset_handle_t *h = load_counted(s, uri, &o, &asked);
        if (asked >= NO_COPY_LIMIT) fail_msg("%s: %zu bytes allocated, not mapped", uri, asked);
        FILE *f = fopen(path, "ab"); /* appended while the value lives */
        assert_non_null(f);
        assert_int_equal(fwrite(tail, 1, sizeof tail, f), sizeof tail);
        assert_int_equal(fclose(f), 0);
        expect_pattern(h, sizes[i]); /* the same bytes, and data[size] still 0 */
        asset_handle_release(h);
        free(uri);
        free(path);
    }
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(dir);
}

/* Thirty-sixth review: a reload of a file:// value loaded with map_file read the file
 * into memory (a reload's load had no map_file): after asset_server_reload (or a watched
 * change), the 4 MiB asset was a copy on the heap, and stayed one, though its load had
 * opted in to mapping it. A reload maps it as the load did, when any live handle it
 * reloads was loaded with map_file. */
static void test_a_reload_maps_a_file_its_load_mapped(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    const size_t n = 4 * MiB + 123; /* not a whole number of pages: Windows maps it too */
    char *big = tu_write_pattern(dir, "zc-reload.bin", n);
    char *ubig = tu_file_uri(big);
    asset_server_t *s = server_with(0);
    asset_load_options_t o = {.map_file = true};
    size_t asked = 0;
    asset_handle_t *h = load_counted(s, ubig, &o, &asked);
    expect_maps("/zc-reload.bin", 1);
    size_t before = atomic_load(&g_asked);
    asset_server_reload(s, ubig); /* a fresh read and parse */
    TU_FLUSH_UNTIL(s, asset_handle_version(h) == 2);
    asked = atomic_load(&g_asked) - before;
    if (asked >= NO_COPY_LIMIT) fail_msg("%zu bytes allocated for a mapped reload", asked);
    expect_pattern(h, n);
    expect_maps("/zc-reload.bin", 1); /* the new value's; the old one is gone */
    asset_handle_release(h);
    asset_server_destroy(s);
    expect_maps("/zc-reload.bin", 0);
    tu_rmrf(dir);
    free(dir);
    free(big);
    free(ubig);
}

/* Writes a JSON document of exactly n bytes: {"n": 42, "pad": "xxx..."} */
static char *write_json(const char *dir, const char *rel, size_t n) {
    char *d = malloc(n + 1);
    const char *head = "{\"n\": 42, \"pad\": \"";
    size_t hl = strlen(head);
    memcpy(d, head, hl);
    memset(d + hl, 'x', n - hl - 2);
    memcpy(d + n - 2, "\"}", 2);
    d[n] = 0;
    char *p = tu_write_file(dir, rel, d, n);
    free(d);
    return p;
}

/* The json loader reads a mapped file in place (a size that fills its last page too)
 * and the mapping is released once the parse is over: its value does not hold it. */
static void test_json_loader_reads_a_mapped_file(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    const size_t sizes[] = {8192, 5000};
    const char *names[] = {"zc-page.json", "zc-odd.json"};
    for (int i = 0; i < 2; i++) free(write_json(game, names[i], sizes[i]));
    asset_server_t *s = server_with(4096);
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    for (int i = 0; i < 2; i++) {
        char uri[64], tail[32];
        snprintf(uri, sizeof uri, "pkg://game/%s", names[i]);
        snprintf(tail, sizeof tail, "/%s", names[i]);
        asset_handle_t *h = tu_load_wait(s, uri, ASSET_OK);
        const cJSON *j = asset_handle_value(h);
        const cJSON *num = cJSON_GetObjectItemCaseSensitive(j, "n");
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(j, "pad");
        assert_true(cJSON_IsNumber(num) && num->valueint == 42);
        assert_true(cJSON_IsString(pad));
        assert_int_equal(strlen(pad->valuestring), sizes[i] - 20);
        expect_maps(tail, 0);
        asset_handle_release(h);
    }
    /* the same file through the bytes loader keeps its mapping */
    asset_load_options_t o = {0};
    o.loader = "bytes";
    asset_handle_t *h = tu_load_wait(s, "pkg://game/zc-page.json", ASSET_OK);
    asset_handle_release(h);
    h = asset_server_load(s, "pkg://game/zc-page.json", &o);
    assert_int_equal(tu_wait(h), ASSET_OK);
    const asset_bytes_t *b = asset_handle_value(h);
    assert_int_equal(b->size, 8192);
    assert_int_equal(b->data[8192], 0);
    assert_memory_equal(b->data, "{\"n\": 42", 8);
    expect_maps("/zc-page.json", 1);
    asset_handle_release(h);
    asset_server_destroy(s);
    expect_maps("/zc-page.json", 0);
    tu_rmrf(dir);
    free(game);
    free(dir);
}

/* Cancel some loads of mapped files, let the others finish, then destroy the server
 * with a second round still in flight: every mapping is released (no leak, no unmap of
 * a value still held), and the values handed out stay readable until released. */
static void test_cancel_and_destroy_with_mapped_values_in_flight(void **state) {
    (void)state;
    enum { N = 8 };
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    char names[N][32], uris[N][64];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "zc-fly-%d.bin", i);
        snprintf(uris[i], sizeof uris[i], "pkg://game/%s", names[i]);
        free(tu_write_pattern(game, names[i], 2 * MiB + (size_t)i));
    }
    asset_server_t *s = server_with(0);
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    asset_load_options_t o = {0};
    o.no_cache = true;
    asset_handle_t *h[N];
    for (int i = 0; i < N; i++) assert_non_null(h[i] = asset_server_load(s, uris[i], &o));
    for (int i = 0; i < N; i += 2) asset_handle_cancel(h[i]);
    for (int i = 0; i < N; i++) {
        asset_status_t st = tu_wait(h[i]);
        if (i % 2) {
            assert_int_equal(st, ASSET_OK);
            expect_pattern(h[i], 2 * MiB + (size_t)i);
        } else { /* cancelled, unless it had finished first */
            assert_true(st == ASSET_E_CANCELLED || st == ASSET_OK);
        }
    }
    for (int i = 0; i < N; i++) asset_handle_release(h[i]);
    for (int i = 0; i < N; i++) {
        char tail[40];
        snprintf(tail, sizeof tail, "/zc-fly-%d.bin", i);
        expect_maps(tail, 0); /* no_cache: nothing holds them */
    }
    /* a second round, destroyed in flight (handles released after: destroy freed them) */
    for (int i = 0; i < N; i++) assert_non_null(h[i] = asset_server_load(s, uris[i], NULL));
    asset_server_destroy(s);
    for (int i = 0; i < N; i++) {
        char tail[40];
        snprintf(tail, sizeof tail, "/zc-fly-%d.bin", i);
        expect_maps(tail, 0);
    }
    tu_rmrf(dir);
    free(game);
    free(dir);
}

/* A cache eviction frees a mapped value: the file is unmapped at once. */
static void test_cache_eviction_unmaps_the_value(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    free(tu_write_pattern(game, "zc-evict-a.bin", 4 * MiB));
    free(tu_write_pattern(game, "zc-evict-b.bin", 4 * MiB));
    asset_server_t *s = server_with(0);
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    assert_int_equal(asset_server_set_cache_budget(s, "bytes", 6 * MiB), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "pkg://game/zc-evict-a.bin", ASSET_OK);
    asset_handle_release(h);
    expect_maps("/zc-evict-a.bin", 1); /* cached */
    h = tu_load_wait(s, "pkg://game/zc-evict-b.bin", ASSET_OK);
    asset_stats_t st;
    asset_server_stats(s, &st);
    assert_true(st.cache_evictions >= 1);
    expect_maps("/zc-evict-a.bin", 0);
    expect_maps("/zc-evict-b.bin", 1);
    expect_pattern(h, 4 * MiB);
    asset_handle_release(h);
    asset_server_destroy(s);
    expect_maps("/zc-evict-b.bin", 0);
    tu_rmrf(dir);
    free(game);
    free(dir);
}

/* An empty file loads as 0 bytes followed by a 0, whatever the threshold (nothing to
 * map); a 1-byte file at threshold 1 is mapped. */
static void test_zero_length_file_loads_empty(void **state) {
    (void)state;
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    char *empty = tu_write_file(game, "zc-empty.bin", "", 0);
    free(tu_write_file(game, "zc-one.bin", "x", 1));
    char *uempty = tu_file_uri(empty);
    asset_server_t *s = server_with(1);
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    asset_handle_t *h = tu_load_wait(s, "pkg://game/zc-empty.bin", ASSET_OK);
    tu_expect_bytes(h, "", 0);
    asset_handle_release(h);
    asset_load_options_t o = {0};
    o.map_file = true;
    h = asset_server_load(s, uempty, &o);
    assert_int_equal(tu_wait(h), ASSET_OK);
    tu_expect_bytes(h, "", 0);
    asset_handle_release(h);
    h = tu_load_wait(s, "pkg://game/zc-one.bin", ASSET_OK);
    tu_expect_text(h, "x");
    expect_maps("/zc-one.bin", 1);
    asset_handle_release(h);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(empty);
    free(uempty);
    free(game);
    free(dir);
}

/* Fortieth review: a manifest entry pinned to a sha256 "holds the bytes its digest
 * names" (docs/hot-reload.md), but a pinned pkg:// file at the threshold (or a file://
 * entry of a manifest loaded with map_file) was mapped: its digest was checked on the
 * mapping once, and a later write into the file in place (a mod tool, a patcher, a
 * corrupted disk's rewrite) changed the verified value under the game with no
 * ASSET_E_INTEGRITY (a truncation raised SIGBUS). A pinned load is read into its own
 * buffer; the same file loaded without a digest is still mapped, and an embedded
 * table's pinned file is still lent in place. */
static void rewrite_head(const char *path) {
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    static const char evil[] = "TAMPERED";
    assert_int_equal(fwrite(evil, 1, sizeof evil - 1, f), sizeof evil - 1);
    assert_int_equal(fclose(f), 0);
}

static void test_a_load_pinned_to_a_digest_is_not_mapped(void **state) {
    (void)state;
    const size_t n = 4 * MiB; /* whole pages: no page of the mapping is its own copy */
    char *dir = tu_mkdtemp(), *game = tu_path(dir, "game");
    char *big = tu_write_pattern(game, "zc-pinned.bin", n);
    char *fbig = tu_write_pattern(dir, "zc-pinned-file.bin", n);
    unsigned char *want = malloc(n);
    pattern(want, n);
    char hex[65], m[512];
    asset__sha256_hex(want, n, hex);
    free(want);
    snprintf(m, sizeof m, "[{\"uri\": \"zc-pinned.bin\", \"sha256\": \"%s\"}]", hex);
    free(tu_write_file(game, "m.json", m, strlen(m)));
    snprintf(m, sizeof m, "[{\"uri\": \"zc-pinned-file.bin\", \"sha256\": \"%s\"}]", hex);
    char *fm = tu_write_file(dir, "m.json", m, strlen(m));
    char *ufm = tu_file_uri(fm);
    asset_server_t *s = server_with(0);
    assert_int_equal(asset_server_mount(s, "game", game), ASSET_OK);
    asset_load_options_t o = {.map_file = true}; /* the file:// children inherit it */
    asset_batch_t *b[2] = {asset_server_load_manifest(s, "pkg://game/m.json", NULL),
                           asset_server_load_manifest(s, ufm, &o)};
    const char *files[2] = {big, fbig};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(asset_batch_wait(b[i], 60000), ASSET_OK);
        assert_int_equal(asset_batch_completed_count(b[i]), 1);
        asset_handle_t *h = asset_batch_handle(b[i], 0);
        rewrite_head(files[i]); /* after the check */
        expect_pattern(h, n);   /* the bytes its digest names */
    }
    expect_maps("/zc-pinned.bin", 0);
    expect_maps("/zc-pinned-file.bin", 0);
    /* an embedded table's file pinned the same way is still lent: the program's own
     * constant bytes, which no write into a file reaches */
    const size_t en = 64 * 1024;
    unsigned char *eb = malloc(en + 1); /* + the 0 byte asset-embed writes */
    pattern(eb, en);
    eb[en] = 0;
    char ehex[65], em[256];
    asset__sha256_hex(eb, en, ehex);
    snprintf(em, sizeof em, "[{\"uri\": \"e.bin\", \"sha256\": \"%s\"}]", ehex);
    asset_embedded_file_t table[] = {{"e.bin", eb, en}, {"m.json", em, strlen(em)}};
    asset_server_config_t ecfg = {.max_workers = 2, .map_threshold = en};
    asset_server_t *es = asset_server_create(&ecfg);
    assert_non_null(es);
    assert_int_equal(asset_server_mount_embedded(es, "emb", table, 2), ASSET_OK);
    asset_batch_t *eb_b = asset_server_load_manifest(es, "pkg://emb/m.json", NULL);
    assert_int_equal(asset_batch_wait(eb_b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(eb_b), 1);
    const asset_bytes_t *ev = asset_handle_value(asset_batch_handle(eb_b, 0));
    assert_ptr_equal(ev->data, eb);
    asset_batch_release(eb_b);
    asset_server_destroy(es);
    free(eb);
    /* without a digest the same file is mapped, as before (no_cache: the cache would
     * answer with the pinned load's copy) */
    asset_load_options_t fresh = {.no_cache = true};
    asset_handle_t *h = asset_server_load(s, "pkg://game/zc-pinned.bin", &fresh);
    assert_int_equal(tu_wait(h), ASSET_OK);
    expect_maps("/zc-pinned.bin", 1);
    asset_handle_release(h);
    for (int i = 0; i < 2; i++) asset_batch_release(b[i]);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(big);
    free(fbig);
    free(fm);
    free(ufm);
    free(game);
    free(dir);
}

int main(void) {
    asset_set_allocator(&g_hook); /* before any server */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_pkg_file_is_mapped_not_copied),
        cmocka_unit_test(test_pkg_file_below_threshold_is_copied),
        cmocka_unit_test(test_embedded_file_value_points_into_the_table),
        cmocka_unit_test(test_file_uri_is_mapped_only_when_the_load_opts_in),
        cmocka_unit_test(test_bytes_appended_to_a_mapped_file_do_not_show_after_its_end),
        cmocka_unit_test(test_a_reload_maps_a_file_its_load_mapped),
        cmocka_unit_test(test_json_loader_reads_a_mapped_file),
        cmocka_unit_test(test_cancel_and_destroy_with_mapped_values_in_flight),
        cmocka_unit_test(test_cache_eviction_unmaps_the_value),
        cmocka_unit_test(test_zero_length_file_loads_empty),
        cmocka_unit_test(test_a_load_pinned_to_a_digest_is_not_mapped),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
