/* tests/web/page_browser_cap.c - a page for headless Chromium (tests/web/check-browser-cap.sh):
 * the single-threaded library loads 6 slow bodies of one host (tests/web/nginx.sh's /trickle/:
 * the head at once, then 500 bytes over about 4 s) and then a 7th asset of that host that nginx
 * answers at once, with http_connect_timeout_ms 1 s, http_low_speed_ms 3 s and
 * http_max_connections 16. The browser runs 6 fetches of a host at once (HTTP/1.1); the library
 * holds the 7th in its own queue (js_browser_cap, src/web/http_fetch.c), so it starts when a slow
 * body ends and loads. Before the fortieth review its fetch() waited inside the browser with its
 * guards running and failed "no response within 1000 ms (http_connect_timeout_ms)". The page's
 * query "?cap=off" tells the library it is not in a browser (Module.assetFetch.browser), as
 * before that fix: the script checks that the 7th then fails, so that the page shows the
 * browser still queues past 6 (the premise of the test; the single-threaded build only: the
 * pthreads build's fetches run in the I/O thread's Worker, whose Module is another). "?servers=2"
 * loads the 7th with a second server of the page (docs/web.md: the browser's 6 are the thread's).
 * Built twice (tests/web/CMakeLists.txt): page_browser_cap (single-threaded, one file) and
 * page_browser_cap_mt (pthreads).
 * Each load's line goes to stdout (<pre id="output">); at the end <div id="result"> says
 * "done: exit N; loaded L, failed F" (the shell, page_browser_cap.html). */
#include "asset_server.h"

#include <emscripten/emscripten.h>
#include <stdio.h>
#include <stdlib.h>

#define NSLOW 6
#define NLOADS (NSLOW + 1)

static asset_server_t *g_s, *g_s2; /* g_s2: the 7th's with ?servers=2, else g_s */
static asset_handle_t *g_h[NLOADS];
static double g_start;

static void frame(void) {
    asset_server_flush(g_s);
    if (g_s2 != g_s) asset_server_flush(g_s2);
    for (int i = 0; i < NLOADS; i++)
        if (!asset_handle_is_done(g_h[i])) return;
    int loaded = 0, failed = 0;
    for (int i = 0; i < NLOADS; i++) {
        asset_status_t st = asset_handle_error(g_h[i]);
        printf("load %d (%s): %s%s%s\n", i, i < NSLOW ? "slow" : "at once", asset_err_name(st),
               st == ASSET_OK ? "" : ", ",
               st == ASSET_OK ? "" : asset_handle_error_message(g_h[i]));
        if (st == ASSET_OK)
            loaded++;
        else
            failed++;
        asset_handle_release(g_h[i]);
    }
    printf("all done after %.1f s\n", (emscripten_get_now() - g_start) / 1000);
    printf("loaded %d, failed %d\n", loaded, failed);
    if (g_s2 != g_s) asset_server_destroy(g_s2);
    asset_server_destroy(g_s);
    emscripten_cancel_main_loop();
    emscripten_force_exit(failed ? 1 : 0);
}

int main(void) {
    /* js_fetch_start keeps its transfers in live */
    int off = emscripten_run_script_int(
        "/[?&]cap=off(&|$)/.test(location.search) ? "
        "(Module.assetFetch = { live: new Map(), browser: false }, 1) : 0");
    int two = emscripten_run_script_int("/[?&]servers=2(&|$)/.test(location.search) ? 1 : 0");
    char origin[128];
    snprintf(origin, sizeof origin, "%s", emscripten_run_script_string("location.origin"));
    printf("%s, browser cap %s%s\n", origin, off ? "off (as before the fortieth review)" : "on",
           two ? ", the 7th load on a second server" : "");
    asset_server_config_t cfg = {
        .http_max_connections = 16, /* more than the browser's 6: the library's own cap */
        .http_connect_timeout_ms = 1000,
        .http_low_speed_ms = 3000, /* the slow bodies send 50 bytes a second */
    };
    g_s = asset_server_create(&cfg);
    g_s2 = two ? asset_server_create(&cfg) : g_s;
    if (!g_s || !g_s2) {
        printf("asset_server_create failed\n");
        emscripten_force_exit(2);
    }
    g_start = emscripten_get_now();
    for (int i = 0; i < NLOADS; i++) {
        char u[256];
        if (i < NSLOW) /* distinct files: 6 transfers, not one coalesced */
            snprintf(u, sizeof u, "%s/trickle/body%d.txt", origin, i);
        else
            snprintf(u, sizeof u, "%s/fast.txt", origin);
        g_h[i] = asset_server_load(i < NSLOW ? g_s : g_s2, u, NULL);
    }
    emscripten_set_main_loop(frame, 0, 1); /* does not return */
    return 0;
}
