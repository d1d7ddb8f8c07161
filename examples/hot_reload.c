/* hot_reload.c - edit an asset, see it change in the running program.
 *
 *   hot_reload <folder>            watch and print every reload until Ctrl-C
 *   hot_reload <folder> --self-test  rewrite one of its files itself, wait for that
 *                                    reload, print it and exit (used by CI)
 *
 * It loads the folder as a batch with config.watch on, connects a reloaded callback to
 * every child, and runs a frame loop: a save in your editor (in place, through a temp
 * file and rename, delete and recreate...) gives one line with the old and the new
 * version after the debounce; a broken file keeps its old value and says why. */
#include <asset_server.h>

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

static int g_reloads;

static void on_reloaded(asset_handle_t *h, void *user) {
    (void)user;
    g_reloads++;
    uint64_t v = asset_handle_version(h);
    if (asset_handle_reload_error(h) == ASSET_OK)
        printf("reloaded %s: version %llu -> %llu, %zu bytes\n", asset_handle_uri(h),
               (unsigned long long)(v - 1), (unsigned long long)v, asset_handle_size(h));
    else
        printf("reload of %s failed, keeping version %llu: %s\n", asset_handle_uri(h),
               (unsigned long long)v, asset_handle_error_message(h));
    fflush(stdout);
}

/* The file a file:// URI names: in the normal form a file name's own '%' and '#' are
 * written %25 and %23 ("50%.json" is file:///.../50%25.json), so decode them. NULL when
 * it does not fit. */
static const char *file_path(const char *uri, char *out, size_t cap) {
    static const char hex[] = "0123456789abcdef";
    if (strncmp(uri, "file://", 7) != 0) return uri; /* a bare path */
    size_t n = 0;
    for (const char *p = uri + 7; *p; p++) {
        const char *hi = p[0] == '%' && p[1] ? strchr(hex, tolower((unsigned char)p[1])) : NULL;
        const char *lo = hi && p[2] ? strchr(hex, tolower((unsigned char)p[2])) : NULL;
        if (n + 1 >= cap) return NULL;
        if (lo) {
            out[n++] = (char)((hi - hex) * 16 + (lo - hex));
            p += 2;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
    return out;
}

static void frame_sleep(void) { /* stands in for rendering and vsync */
    struct timespec ts = {0, 16 * 1000000L};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s <folder> [--self-test]\n", argv[0]);
        return 2;
    }
    bool self_test = argc > 2 && !strcmp(argv[2], "--self-test");
    asset_server_config_t cfg = {.watch = true, .reload_debounce_ms = 50};
    asset_server_t *s = asset_server_create(&cfg);
    if (!s) return 1;
    asset_batch_t *b = asset_server_load_folder(s, argv[1], NULL);
    if (asset_batch_wait(b, 30000) != ASSET_OK) {
        fprintf(stderr, "%s\n", asset_batch_error_message(b));
        asset_batch_release(b);
        asset_server_destroy(s);
        return 1;
    }
    for (size_t i = 0; i < asset_batch_total(b); i++)
        asset_handle_on_reloaded(asset_batch_handle(b, i), on_reloaded, NULL);
    printf("watching %zu assets in %s%s\n", asset_batch_total(b), argv[1],
           self_test ? "" : " (edit one; Ctrl-C to stop)");
    fflush(stdout);

    const char *victim = NULL;
    if (self_test && asset_batch_total(b)) {
        /* give the I/O thread its first moments to set the watches up, then edit */
        for (int i = 0; i < 10; i++) {
            asset_server_flush(s);
            frame_sleep();
        }
        victim = asset_handle_uri(asset_batch_handle(b, 0));
        char buf[4096];
        const char *path = file_path(victim, buf, sizeof buf);
        /* "r+b": the file itself, never a new one beside it (a path read wrong made one) */
        FILE *f = path ? fopen(path, "r+b") : NULL;
        if (!f || fseek(f, 0, SEEK_END) != 0 || fputs("\n", f) < 0) { /* still valid JSON */
            fprintf(stderr, "cannot edit %s\n", path ? path : victim);
            if (f) fclose(f);
            asset_batch_release(b);
            asset_server_destroy(s);
            return 1;
        }
        fclose(f);
    }
    signal(SIGINT, on_sigint);
    time_t until = time(NULL) + 30;
    while (!g_stop && (!self_test || (g_reloads == 0 && time(NULL) < until))) {
        asset_server_flush(s); /* reloads are published here, callbacks fire here */
        frame_sleep();
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    printf("%llu reloads, %llu failed, %llu watches\n", (unsigned long long)st.reloads,
           (unsigned long long)st.reload_failures, (unsigned long long)st.watches);
    asset_batch_release(b);
    asset_server_destroy(s);
    return self_test && g_reloads == 0 ? 1 : 0;
}
