/* custom_loader.c - a loader of your own: CSV files become a table struct.
 *
 * A loader parses bytes on a worker thread into any value you like, tells the cache
 * what the value costs, and frees it when the last handle and the cache let go. Here
 * "*.csv" URIs get a csv_t with rows and columns; everything else keeps the built-in
 * loaders (json for .json, bytes for the rest). */
#include <asset_server.h>
#include <stdio.h>
#include <string.h>

typedef struct csv {
    size_t rows, cols;
    char **cells; /* rows * cols pointers into text */
    char *text;   /* the file's bytes, taken from the loader without a copy */
} csv_t;

static const char *csv_cell(const csv_t *t, size_t r, size_t c) {
    return t->cells[r * t->cols + c];
}

static void csv_free(void *ctx, void *value) { /* any thread */
    (void)ctx;
    csv_t *t = value;
    asset_free(t->cells);
    asset_free(t->text);
    asset_free(t);
}

/* Worker thread: bytes in, csv_t out. Cells point into the text, cut up in place. */
static asset_status_t csv_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    size_t size = asset_parse_size(p);
    csv_t *t = asset_alloc(sizeof *t);
    if (!t) return ASSET_E_NO_MEMORY;
    *t = (csv_t){0};
    t->text = asset_parse_take_data(p); /* ours now: size + 1 bytes, NUL-terminated */
    if (!t->text) {
        asset_free(t);
        return ASSET_E_NO_MEMORY;
    }
    size_t ncells = 0, cap = 0;
    for (char *line = t->text; line && *line;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = 0;
        line[strcspn(line, "\r")] = 0;
        size_t in_row = 0;
        for (char *cell = *line ? line : NULL; cell; in_row++) { /* blank lines: no cells */
            char *comma = strchr(cell, ',');
            if (comma) *comma++ = 0;
            if (ncells == cap) {
                cap = cap ? 2 * cap : 64;
                char **grown = asset_realloc(t->cells, cap * sizeof *grown);
                if (!grown) {
                    csv_free(NULL, t);
                    return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
                }
                t->cells = grown;
            }
            t->cells[ncells++] = cell;
            cell = comma;
        }
        if (in_row && t->rows == 0) t->cols = in_row;
        if (in_row && in_row != t->cols) {
            size_t row = t->rows + 1, cols = t->cols;
            csv_free(NULL, t);
            return asset_parse_fail(p, ASSET_E_PARSE, "row %zu has %zu cells, header has %zu", row,
                                    in_row, cols);
        }
        if (in_row) t->rows++;
        line = next;
    }
    /* what the cache charges for it */
    asset_parse_set_value(p, t, sizeof *t + cap * sizeof *t->cells + size + 1);
    return ASSET_OK;
}

static const char *const csv_suffixes[] = {".csv", NULL};

static const asset_loader_t csv_loader = {
    .abi = ASSET_LOADER_ABI,
    .name = "csv",
    .suffixes = csv_suffixes, /* or .claims = your own test */
    .parse = csv_parse,
    .free_value = csv_free,
};

int main(void) {
    asset_server_t *s = asset_server_create(NULL);
    if (!s || asset_server_register_loader(s, &csv_loader, NULL, 0) != ASSET_OK) return 1;

    const char *scores = "name,level,score\n"
                         "ada,7,12800\n"
                         "grace,9,20150\n"
                         "linus,3,4200\n";
    asset_mem_put(s, "tables/scores.csv", scores, strlen(scores));
    const char *bad = "a,b\n1,2,3\n";
    asset_mem_put(s, "tables/bad.csv", bad, strlen(bad));

    asset_handle_t *h = asset_server_load(s, "mem://tables/scores.csv", NULL);
    if (asset_handle_wait(h, -1) != ASSET_OK) {
        fprintf(stderr, "%s\n", asset_handle_error_message(h));
        return 1;
    }
    const csv_t *t = asset_handle_value(h);
    printf("%zu rows x %zu columns, %zu bytes in the cache\n", t->rows, t->cols,
           asset_handle_size(h));
    for (size_t r = 0; r < t->rows; r++) {
        for (size_t c = 0; c < t->cols; c++) printf("%-8s", csv_cell(t, r, c));
        printf("\n");
    }
    asset_handle_release(h);

    /* a malformed file fails with a message naming the URI, the loader and the row */
    asset_handle_t *b = asset_server_load(s, "mem://tables/bad.csv", NULL);
    asset_status_t st = asset_handle_wait(b, -1);
    printf("bad.csv: %s (%s)\n", asset_err_name(st), asset_handle_error_message(b));
    asset_handle_release(b);

    asset_server_destroy(s); /* frees the cached table through csv_free */
    return st == ASSET_E_PARSE ? 0 : 1;
}
