/* loading_screen.c - the README's demo: a loading screen for a folder of assets.
 *
 *     loading_screen [assets_dir]          (default: examples/assets)
 *
 * One asset_server_load_folder() call lists the folder on a worker and loads every
 * file in it; a 60 Hz frame loop calls asset_server_flush(), where the callbacks fire,
 * and draws "Loading 12/36: levels/level04.json" with a byte-weighted progress bar.
 * *.json files go through the json loader (value: cJSON *), the rest through bytes (value:
 * asset_bytes_t *). When stdout is not a terminal only whole lines are printed.
 * Exit status: 0 when every asset loaded, else 1.
 *
 * The same source is the web demo (examples/web/, docs/web.md): there the browser
 * drives the frame loop (emscripten_set_main_loop) instead of nanosleep, and the folder
 * is examples/assets preloaded into the Emscripten file system at /assets.
 */
#define _POSIX_C_SOURCE 200809L

#include <asset_server.h>
#include <cjson/cJSON.h>

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#ifdef __EMSCRIPTEN__
#include <emscripten/emscripten.h>
#endif

#define BAR_WIDTH 30
#define GIVE_UP_MS 60000 /* a stuck load must not hang CI: cancel what is left */

typedef struct app {
    const char *root; /* the folder's URI, to print short names */
    const char *last; /* the last asset that finished */
    uint64_t bytes;   /* bytes of the loaded values */
    bool tty, bar_drawn;
} app_t;

static const char *short_name(const app_t *app, const char *uri) {
    size_t n = strlen(app->root);
    return strncmp(uri, app->root, n) == 0 && uri[n] == '/' ? uri + n + 1 : uri;
}

static void clear_bar(app_t *app) {
    if (app->bar_drawn) fputs("\r\033[2K", stdout);
    app->bar_drawn = false;
}

static void draw_bar(app_t *app, asset_batch_t *b) {
    if (!app->tty) return;
    float p = asset_batch_progress(b);
    int fill = (int)(p * BAR_WIDTH + 0.5f);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    size_t done = asset_batch_completed_count(b) + asset_batch_failed_count(b) +
                  asset_batch_cancelled_count(b);
    printf("\r\033[2K[%s] Loading %zu/%zu: %s", bar, done, asset_batch_total(b),
           app->last ? app->last : "");
    fflush(stdout);
    app->bar_drawn = true;
}

/* Runs on the flush thread, inside asset_server_flush(), once per finished asset. */
static void on_item(asset_batch_t *b, asset_handle_t *h, void *user) {
    (void)b;
    app_t *app = user;
    const char *name = short_name(app, asset_handle_uri(h));
    app->last = name;
    clear_bar(app);
    if (asset_handle_state(h) != ASSET_STATE_LOADED) {
        printf("  %-9s %-30s %s\n",
               asset_handle_state(h) == ASSET_STATE_CANCELLED ? "cancelled" : "FAILED", name,
               asset_handle_error_message(h));
        return;
    }
    app->bytes += asset_handle_size(h);
    size_t n = strlen(name);
    if (n > 5 && !strcasecmp(name + n - 5, ".json")) {
        const cJSON *json = asset_handle_value(h);
        printf("  loaded    %-30s json, %d top-level entries\n", name, cJSON_GetArraySize(json));
    } else {
        const asset_bytes_t *bytes = asset_handle_value(h);
        printf("  loaded    %-30s %zu bytes\n", name, bytes->size);
    }
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

typedef struct run {
    asset_server_t *s;
    asset_batch_t *b;
    app_t app;
    uint64_t start;
} run_t;

/* The end: the summary line, and the exit status (0 when every asset loaded). */
static int finish(run_t *r) {
    asset_batch_t *b = r->b;
    clear_bar(&r->app);
    asset_stats_t st;
    asset_server_stats(r->s, &st);
    int ok = asset_batch_error(b) == ASSET_OK && asset_batch_failed_count(b) == 0 &&
             asset_batch_cancelled_count(b) == 0;
    if (asset_batch_error(b) != ASSET_OK)
        printf("folder failed: %s\n", asset_batch_error_message(b));
    printf("%zu assets loaded, %zu failed, %zu cancelled; %.1f KiB of values, %llu bytes read, "
           "%llu ms\n",
           asset_batch_completed_count(b), asset_batch_failed_count(b),
           asset_batch_cancelled_count(b), r->app.bytes / 1024.0, (unsigned long long)st.bytes_read,
           (unsigned long long)(now_ms() - r->start));
    fflush(stdout);
    asset_batch_release(b);
    asset_server_destroy(r->s);
    return ok ? 0 : 1;
}

/* One frame of the game's loop; false once the batch is done. */
static bool frame(run_t *r) {
    if (asset_batch_is_done(r->b)) return false;
    asset_server_flush(r->s);
    draw_bar(&r->app, r->b);
    if (now_ms() - r->start > GIVE_UP_MS) asset_batch_cancel(r->b);
    return true;
}

#ifdef __EMSCRIPTEN__
static void web_frame(void *arg) { /* the browser calls it once per animation frame */
    run_t *r = arg;
    if (frame(r)) return;
    emscripten_cancel_main_loop();
    emscripten_force_exit(finish(r));
}
#endif

int main(int argc, char **argv) {
#ifdef __EMSCRIPTEN__
    const char *dir = argc > 1 ? argv[1] : "/assets";
#else
    const char *dir = argc > 1 ? argv[1] : "examples/assets";
#endif
    static run_t r;
    r.s = asset_server_create(NULL);
    if (!r.s) return 1;
#ifdef __EMSCRIPTEN__
    r.app.tty = false; /* the page shows whole lines */
#else
    r.app.tty = isatty(STDOUT_FILENO);
#endif

    r.start = now_ms();
    r.b = asset_server_load_folder(r.s, dir, NULL);
    if (!r.b) return 1;
    r.app.root = asset_batch_uri(r.b); /* "file:///.../examples/assets" */
    asset_batch_on_item_completed(r.b, on_item, &r.app);
    printf("Loading %s\n", dir);
#ifdef __EMSCRIPTEN__
    emscripten_set_main_loop_arg(web_frame, &r, 0, 1); /* does not return */
#endif
    while (frame(&r)) {                                  /* the game's frame loop */
        struct timespec frame_time = {0, 16 * 1000000L}; /* ~60 Hz */
        nanosleep(&frame_time, NULL);
    }
    return finish(&r);
}
