/* fuzz_manifest.c - the manifest parser (src/batch.c), through the public API the way
 * a host uses it: the input is stored as mem://pack/manifest.json and loaded with
 * asset_server_load_manifest on one long-lived server.
 *
 * The server is boxed in: file_root is an empty temp directory, pkg_path is empty,
 * and http:// and https:// are replaced by a source that fails at once, so whatever
 * the manifest names, nothing leaves the process and nothing can block.
 *
 * Properties: the batch always finishes (libFuzzer's -timeout catches a hang); a done
 * batch's counts add up to its total; a failed manifest has a message naming it and
 * loads nothing; every child is done. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include <cjson/cJSON.h>

#define CHECK(c)                                                                             \
    do {                                                                                     \
        if (!(c)) {                                                                          \
            fprintf(stderr, "fuzz_manifest: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static asset_server_t *g_s;

static asset_status_t no_network(void *ctx, asset_request_t *r) {
    (void)ctx;
    return asset_request_fail(r, ASSET_E_NETWORK, "no network while fuzzing");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char tmpl[4096]; /* under $TMPDIR: fuzz/run.sh gives each target one it removes */
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/asset_fuzz_root_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    const char *root = mkdtemp(tmpl);
    if (!root) abort();
    asset_server_config_t cfg = {.max_workers = 1,
                                 .file_root = root,
                                 .pkg_path = "",
                                 .cache_budget = 1 << 20,
                                 .max_asset_size = 1 << 20};
    g_s = asset_server_create(&cfg);
    if (!g_s) abort();
    const char *schemes[] = {"http", "https"};
    for (int i = 0; i < 2; i++) {
        asset_source_t src = {ASSET_SOURCE_ABI, schemes[i], 0, no_network, NULL, NULL};
        if (asset_server_register_source(g_s, &src, NULL) != ASSET_OK) abort();
    }
    /* things a manifest may name */
    asset_mem_put(g_s, "pack/a.json", "{\"a\": 1}", 8);
    asset_mem_put(g_s, "pack/data/b.bin", "bbbb", 4);
    asset_mem_put(g_s, "other/c.txt", "c", 1);
    return 0;
}

/* asset_batch_value() of each entry as written in the manifest answers with the value of a
 * LOADED child of that entry's URI (the header's promise), when the entry's child is
 * LOADED: never NULL, never another entry's value. */
static void check_values_as_written(asset_batch_t *b, const uint8_t *data, size_t size) {
    size_t bom = size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0; /* as the loader */
    cJSON *root = cJSON_ParseWithLength((const char *)data + bom, size - bom);
    const cJSON *arr =
        cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "assets") : root;
    size_t i = 0, n = asset_batch_total(b);
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (i >= n) break; /* the loader may read more than cJSON here (long numbers) */
        const cJSON *u = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "uri") : e;
        asset_handle_t *h = asset_batch_handle(b, i++);
        if (!cJSON_IsString(u) || asset_handle_state(h) != ASSET_STATE_LOADED) continue;
        const void *v = asset_batch_value(b, u->valuestring);
        if (!v)
            fprintf(stderr, "fuzz_manifest: no value for '%s' (%s)\n", u->valuestring,
                    asset_handle_uri(h));
        CHECK(v);
        bool found = false;
        for (size_t j = 0; j < n && !found; j++) {
            asset_handle_t *o = asset_batch_handle(b, j);
            found = asset_handle_value(o) == v && !strcmp(asset_handle_uri(o), asset_handle_uri(h));
        }
        if (!found)
            fprintf(stderr, "fuzz_manifest: '%s' (%s) found another child's value\n",
                    u->valuestring, asset_handle_uri(h));
        CHECK(found);
    }
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    if (asset_mem_put(g_s, "pack/manifest.json", data, size) != ASSET_OK) return 0;
    asset_load_options_t o = {.no_cache = true};
    asset_batch_t *b = asset_server_load_manifest(g_s, "mem://pack/manifest.json", &o);
    CHECK(b);
    asset_status_t st = asset_batch_wait(b, -1);
    CHECK(asset_batch_is_done(b));
    size_t n = asset_batch_total(b);
    CHECK(asset_batch_completed_count(b) + asset_batch_failed_count(b) +
              asset_batch_cancelled_count(b) ==
          n);
    if (st != ASSET_OK) {
        CHECK(strstr(asset_batch_error_message(b), "manifest") != NULL);
        CHECK(n == 0);
    }
    for (size_t i = 0; i < n; i++) {
        asset_handle_t *h = asset_batch_handle(b, i);
        CHECK(h && asset_handle_is_done(h));
        if (asset_handle_state(h) != ASSET_STATE_LOADED) CHECK(asset_handle_error_message(h)[0]);
    }
    CHECK(asset_batch_progress(b) == 1.0f);
    if (st == ASSET_OK) check_values_as_written(b, data, size);
    asset_batch_release(b);
    asset_server_clear_caches(g_s);
    return 0;
}
