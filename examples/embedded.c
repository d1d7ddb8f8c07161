/* embedded.c - assets compiled into the program, loaded through pkg:// with no files.
 *
 * examples/CMakeLists.txt does
 *     asset_server_embed(embedded embedded_assets "${CMAKE_CURRENT_SOURCE_DIR}/embedded_assets")
 * which runs tools/asset-embed at build time and gives this program the generated
 * table and its header, embedded_assets.h. Run it from anywhere: it reads no files. */
#include <asset_server.h>
#include <cjson/cJSON.h>
#include <stdio.h>

#include "embedded_assets.h" /* embedded_assets_files[], embedded_assets_files_count */

int main(void) {
    asset_server_t *s = asset_server_create(NULL);
    if (!s) return 1;
    if (asset_server_mount_embedded(s, "game", embedded_assets_files,
                                    embedded_assets_files_count) != ASSET_OK)
        return 1;

    printf("package 'game' has %zu files:\n", embedded_assets_files_count);
    for (size_t i = 0; i < embedded_assets_files_count; i++)
        printf("  %-16s %zu bytes\n", embedded_assets_files[i].path, embedded_assets_files[i].size);

    /* .json goes to the json loader (a cJSON tree), anything else to bytes */
    asset_handle_t *config = asset_server_load(s, "pkg://game/config.json", NULL);
    asset_handle_t *start = asset_server_load(s, "pkg://game/text/start.txt", NULL);
    int rc = 0;
    if (asset_handle_wait(config, -1) == ASSET_OK && asset_handle_wait(start, -1) == ASSET_OK) {
        const cJSON *cfg = asset_handle_value(config);
        const asset_bytes_t *text = asset_handle_value(start);
        printf("title: %s, lives: %d\n", cJSON_GetObjectItem(cfg, "title")->valuestring,
               cJSON_GetObjectItem(cfg, "lives")->valueint);
        printf("start screen says: %s", (const char *)text->data); /* bytes are NUL-terminated */
    } else {
        fprintf(stderr, "%s%s\n", asset_handle_error_message(config),
                asset_handle_error_message(start));
        rc = 1;
    }

    /* a second load of an immutable pkg:// asset is a cache hit: no read at all */
    asset_handle_t *again = asset_server_load(s, "pkg://game/config.json", NULL);
    asset_server_flush(s);
    asset_stats_t st;
    asset_server_stats(s, &st);
    printf("again: %s, source reads: %llu, cache hits: %llu\n",
           asset_handle_state(again) == ASSET_STATE_LOADED ? "loaded at once" : "not yet",
           (unsigned long long)st.source_reads, (unsigned long long)st.cache_hits);

    asset_handle_release(again);
    asset_handle_release(config);
    asset_handle_release(start);
    asset_server_destroy(s);
    return rc;
}
