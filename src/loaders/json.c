/* loaders/json.c - the built-in "json" loader: cJSON_ParseWithLengthOpts, errors with
 * line and column, value cost estimated from the tree. cJSON's own nesting limit
 * (CJSON_NESTING_LIMIT) turns hostile depth into a parse error, not a crash. */
#include "../internal.h"

#include <cjson/cJSON.h>
#include <string.h>

static size_t json_cost(const cJSON *n) {
    size_t c = 0;
    for (; n; n = n->next) {
        c += sizeof *n;
        if (n->string) c += strlen(n->string) + 1;
        if (n->valuestring) c += strlen(n->valuestring) + 1;
        if (n->child) c += json_cost(n->child);
    }
    return c;
}

static asset_status_t json_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    const char *text = (const char *)asset_parse_data(p);
    size_t n = asset_parse_size(p);
    const char *end = NULL;
    /* n + 1: the library guarantees text[n] == 0, which cJSON wants to see when asked
     * to refuse trailing garbage */
    cJSON *root = cJSON_ParseWithLengthOpts(text, n + 1, &end, 1);
    if (!root) {
        if (!end || end < text || end > text + n) end = text + n;
        size_t line = 1, col = 1;
        for (const char *c = text; c < end; c++) {
            if (*c == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        if (n == 0) return asset_parse_fail(p, ASSET_E_PARSE, "empty document, expected JSON");
        return asset_parse_fail(p, ASSET_E_PARSE,
                                "invalid JSON at line %zu, column %zu (or nesting deeper than %d)",
                                line, col, CJSON_NESTING_LIMIT);
    }
    asset_parse_set_value(p, root, json_cost(root));
    return ASSET_OK;
}

static void json_free(void *ctx, void *value) {
    (void)ctx;
    cJSON_Delete(value);
}

static const char *const json_suffixes[] = {".json", NULL};

const asset_loader_t asset__json_loader = {
    ASSET_LOADER_ABI, "json", json_suffixes, NULL, json_parse, json_free, NULL,
};
