/* http_autoupdate.c - hot-reload a JSON config from a web server.
 *
 *   http_autoupdate <url> [interval_ms] [rounds]
 *
 * Every interval it loads the URL again. The cache holds the last version with its
 * ETag, so the request is a conditional GET: an unchanged file costs one 304 and no
 * parse (same value pointer); a changed one is downloaded, parsed and printed. */
#include <asset_server.h>
#include <cjson/cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <url.json> [interval_ms=2000] [rounds=5]\n", argv[0]);
        return 2;
    }
    const char *url = argv[1];
    long interval = argc > 2 ? atol(argv[2]) : 2000;
    int rounds = argc > 3 ? atoi(argv[3]) : 5;

    asset_server_t *s = asset_server_create(NULL);
    if (!s) return 1;
    const void *shown = NULL;
    asset_handle_t *current = NULL; /* keeps the shown value alive */
    int failures = 0;
    for (int i = 0; i < rounds; i++) {
        asset_load_options_t o = {0};
        o.loader = "json"; /* even if the URL has no .json suffix */
        o.timeout_ms = 10000;
        asset_handle_t *h = asset_server_load(s, url, &o);
        asset_status_t st = asset_handle_wait(h, -1); /* flushes: we are the main thread */
        if (st != ASSET_OK) {
            fprintf(stderr, "round %d: %s\n", i + 1, asset_handle_error_message(h));
            asset_handle_release(h);
            failures++;
        } else if (asset_handle_value(h) == shown) {
            printf("round %d: unchanged (HTTP %d)\n", i + 1, asset_handle_http_status(h));
            asset_handle_release(h);
        } else {
            char *text = cJSON_Print(asset_handle_value(h));
            printf("round %d: new config (HTTP %d):\n%s\n", i + 1, asset_handle_http_status(h),
                   text ? text : "?");
            cJSON_free(text);
            asset_handle_release(current);
            current = h;
            shown = asset_handle_value(h);
        }
        if (i + 1 < rounds) sleep_ms(interval);
    }
    asset_stats_t stats;
    asset_server_stats(s, &stats);
    printf("requests %llu, not modified %llu, parses %llu\n",
           (unsigned long long)stats.http_requests, (unsigned long long)stats.http_not_modified,
           (unsigned long long)stats.parses);
    asset_handle_release(current);
    asset_server_destroy(s);
    return failures ? 1 : 0;
}
