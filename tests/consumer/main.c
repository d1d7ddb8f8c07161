/* main.c - the smallest program using an installed asset_server. Built by CMake with
 * CONSUMER_EMBED and a table from asset_server_embed() (the installed asset-embed tool),
 * and by plain pkg-config command lines without. */
#include <asset_server.h>

#include <stdio.h>
#include <string.h>

#ifdef CONSUMER_EMBED
#include "consumer_assets.h"

static int load_embedded(asset_server_t *s) {
    if (asset_server_mount_embedded(s, "core", consumer_assets_files,
                                    consumer_assets_files_count) != ASSET_OK) {
        fprintf(stderr, "consumer: mount_embedded failed\n");
        return 1;
    }
    asset_handle_t *h = asset_server_load(s, "pkg://core/text/hello.txt", NULL);
    int rc = 1;
    if (asset_handle_wait(h, -1) != ASSET_OK) {
        fprintf(stderr, "consumer: %s\n", asset_handle_error_message(h));
    } else {
        const asset_bytes_t *b = asset_handle_value(h);
        const char *want = "hello from an embedded file\n";
        if (b->size == strlen(want) && memcmp(b->data, want, b->size) == 0)
            rc = 0;
        else
            fprintf(stderr, "consumer: unexpected content '%.*s'\n", (int)b->size,
                    (const char *)b->data);
    }
    asset_handle_release(h);
    return rc;
}
#endif

int main(void) {
    asset_server_t *s = asset_server_create(NULL);
    if (s == NULL) {
        fprintf(stderr, "consumer: asset_server_create failed\n");
        return 1;
    }
#ifdef CONSUMER_EMBED
    if (load_embedded(s) != 0) {
        asset_server_destroy(s);
        return 1;
    }
    printf("consumer: embedded file loaded\n");
#endif
    asset_server_destroy(s);
    printf("consumer: ok (%s)\n", asset_strerror(ASSET_OK));
    return 0;
}
