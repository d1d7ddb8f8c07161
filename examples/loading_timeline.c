/* loading_timeline.c - a loading screen's timeline: every phase of every load, with
 * timestamps, as a Chrome trace and as text.
 *
 *     loading_timeline [assets_dir] [trace.json]
 *                      (defaults: examples/assets, loading_trace.json)
 *
 * A trace recorder is the server's trace hook while a folder loads (one worker per
 * core, up to 4); a background task "bakes" a summary on the same pool meanwhile. Then
 * the recorder writes Chrome trace JSON: open it in chrome://tracing or
 * https://ui.perfetto.dev to see one track per asset (queued -> read -> parse ->
 * delivered). The text version below prints, per asset, when each phase started, in
 * milliseconds since the first event. Also lists the loaders' counters
 * (asset_server_foreach_loader). Exit status 0 when everything loaded.
 */
#include <asset_server.h>

#include <stdio.h>
#include <string.h>

#define MAX_ROWS 256

typedef struct row { /* one load: when each phase happened, ms after the start */
    uint64_t id;
    char uri[96];
    double at[ASSET_TRACE_DELIVERED + 1];
} row_t;

static asset_status_t bake_summary(asset_task_t *t, void *arg) {
    const char *dir = arg;
    char *text = asset_alloc(128);
    if (!text) return asset_task_fail(t, ASSET_E_NO_MEMORY, "no memory");
    snprintf(text, 128, "summary of %s", dir);
    asset_task_set_value(t, text, strlen(text) + 1, NULL, NULL);
    return ASSET_OK;
}

static bool print_loader(const asset_loader_info_t *i, void *user) {
    (void)user;
    printf("  %-6s %3llu parses (%llu failed), %.2f ms parsing, %zu cached (%zu bytes)\n", i->name,
           (unsigned long long)i->parses, (unsigned long long)i->parse_failures,
           (double)i->parse_ns / 1e6, i->entries, i->bytes);
    return true;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "examples/assets";
    const char *out = argc > 2 ? argv[2] : "loading_trace.json";
    asset_trace_t *tr = asset_trace_create();
    asset_server_config_t cfg = {.max_workers = 4, .trace = asset_trace_record, .trace_user = tr};
    asset_server_t *s = asset_server_create(&cfg);
    if (!tr || !s) return 1;
    asset_batch_t *b = asset_server_load_folder(s, dir, NULL);
    asset_handle_t *task = asset_server_spawn(s, bake_summary, (void *)dir, NULL, NULL);
    asset_batch_wait(b, 60000); /* flushes while it waits: a real game draws frames here */
    asset_handle_wait(task, 60000);
    asset_server_set_trace(s, NULL, NULL);
    bool ok = asset_batch_is_done(b) && asset_batch_error(b) == ASSET_OK &&
              asset_batch_failed_count(b) == 0 && asset_handle_error(task) == ASSET_OK;
    const char *summary = asset_handle_value(task); /* NULL: the task failed or timed out */
    printf("%zu assets loaded, %zu events traced; task: %s\n", asset_batch_completed_count(b),
           asset_trace_count(tr), summary ? summary : asset_handle_error_message(task));

    /* the text timeline */
    static row_t rows[MAX_ROWS];
    size_t nrows = 0;
    asset_trace_event_t e;
    uint64_t t0 = 0;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++)
        if (!t0 || e.time_ns < t0) t0 = e.time_ns;
    for (size_t i = 0; asset_trace_event(tr, i, &e); i++) {
        if (!e.id) continue;
        size_t r = 0;
        while (r < nrows && rows[r].id != e.id) r++;
        if (r == nrows) {
            if (nrows == MAX_ROWS) continue;
            rows[nrows].id = e.id;
            for (int k = 0; k <= ASSET_TRACE_DELIVERED; k++) rows[nrows].at[k] = -1; /* none */
            const char *slash = strrchr(e.uri, '/');
            snprintf(rows[nrows++].uri, sizeof rows[0].uri, "%s", slash ? slash + 1 : e.uri);
        }
        rows[r].at[e.phase] = (double)(e.time_ns - t0) / 1e6;
    }
    printf("%-22s %8s %8s %8s %8s (ms)\n", "asset", "queued", "read", "parse", "deliver");
    const asset_trace_phase_t cols[] = {ASSET_TRACE_QUEUED, ASSET_TRACE_READ_START,
                                        ASSET_TRACE_PARSE_START, ASSET_TRACE_DELIVERED};
    for (size_t r = 0; r < nrows; r++) {
        printf("%-22.22s", rows[r].uri); /* a folder listing has no read, a task no read */
        for (int c = 0; c < 4; c++)
            if (rows[r].at[cols[c]] < 0)
                printf(" %8s", "-");
            else
                printf(" %8.2f", rows[r].at[cols[c]]);
        putchar('\n');
    }
    printf("loaders:\n");
    asset_server_foreach_loader(s, print_loader, NULL);

    asset_status_t wr = asset_trace_write_chrome_json(tr, out);
    printf("trace: %s %s\n", out,
           wr == ASSET_OK ? "written (open it in ui.perfetto.dev)" : "FAILED");
    asset_handle_release(task);
    asset_batch_release(b);
    asset_server_destroy(s);
    asset_trace_destroy(tr);
    return ok && wr == ASSET_OK ? 0 : 1;
}
