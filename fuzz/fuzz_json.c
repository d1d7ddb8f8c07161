/* fuzz_json.c - the built-in json loader (src/loaders/json.c) on arbitrary bytes,
 * called the way a worker calls it: a request buffer that is NUL-terminated at
 * data[size] (the library's guarantee), through asset__json_loader.parse.
 *
 * Properties: parse returns OK with a value (then it is freed with the loader's
 * free_value) or ASSET_E_PARSE / ASSET_E_NO_MEMORY with a message; a failure message
 * names a line and column unless the document is empty; a value's cost is non-zero.
 * The place an error names is in the document (a line it has, a column of that line or
 * just past its end: lines and columns count from after a byte order mark) and says what
 * is there: the excerpt after "near" is the bytes there (unprintable ones '?'), a NUL byte
 * is a NUL, a \u0000 is one, a nesting too deep is at a '[' or '{', an unexpected end is
 * the end, trailing characters start with no whitespace, and an invalid UTF-8 byte's
 * offset is that line and column and the byte named. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../tests/tu_request.h"

#define CHECK(c)                                                                         \
    do {                                                                                 \
        if (!(c)) {                                                                      \
            fprintf(stderr, "fuzz_json: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* The offset of line, column (1-based, bytes) in text (n bytes), or SIZE_MAX when there
 * is no such place (past a line's end, or a line it does not have). */
static size_t offset_of(const char *text, size_t n, size_t line, size_t col) {
    size_t off = 0;
    for (size_t l = 1; l < line; l++) {
        const char *nl = memchr(text + off, '\n', n - off);
        if (!nl) return SIZE_MAX;
        off = (size_t)(nl - text) + 1;
    }
    const char *nl = memchr(text + off, '\n', n - off);
    size_t len = (nl ? (size_t)(nl - text) : n) - off;
    return col >= 1 && col <= len + 1 ? off + col - 1 : SIZE_MAX;
}

static bool starts(const char *s, const char *prefix) {
    return !strncmp(s, prefix, strlen(prefix));
}

/* The place a failure message names is in the document and says what is there. */
static void check_position(const char *msg, const uint8_t *data, size_t size) {
    size_t bom = size >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    const char *text = (const char *)data + bom;
    size_t n = size - bom, line = 0, col = 0, at;
    const char *u = msg;
    if (starts(msg, "invalid UTF-8 at byte ")) {
        size_t byte = 0;
        unsigned hex = 0;
        CHECK(sscanf(u, "invalid UTF-8 at byte %zu (line %zu, column %zu)", &byte, &line, &col) ==
              3);
        CHECK(byte < size && byte >= bom);
        CHECK(offset_of(text, n, line, col) == byte - bom);
        const char *h = strstr(msg, "(0x");
        CHECK(h && sscanf(h, "(0x%x)", &hex) == 1 && hex == data[byte]);
        return;
    }
    const char *l = strstr(msg, "at line ");
    if (!l) return; /* empty, or out of memory */
    CHECK(sscanf(l, "at line %zu, column %zu", &line, &col) == 2);
    at = offset_of(text, n, line, col);
    CHECK(at != SIZE_MAX);
    if (starts(msg, "invalid JSON: NUL byte")) CHECK(at < n && text[at] == 0);
    if (starts(msg, "unsupported JSON: \\u0000"))
        CHECK(at + 6 <= n && !memcmp(text + at, "\\u0000", 6));
    if (starts(msg, "invalid JSON: nested deeper"))
        CHECK(at < n && (text[at] == '[' || text[at] == '{'));
    if (starts(msg, "invalid JSON: unexpected end")) CHECK(at == n);
    if (starts(msg, "invalid JSON: trailing characters"))
        CHECK(at < n && (unsigned char)text[at] > 32);
    const char *near = strstr(l, ", near '");
    if (near) {
        near += 8;
        size_t k = 0;
        for (; near[k] && near[k + 1]; k++) { /* the excerpt ends "'" */
            CHECK(at + k < n);
            char c = text[at + k];
            CHECK(near[k] == (c >= 0x20 && c < 0x7f ? c : '?'));
        }
        CHECK(near[k] == '\'');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    asset__job_t job;
    struct asset_request req;
    tu_request_open(&job, &req, "mem://fuzz.json", NULL);
    if (!tu_request_set_data(&req, data, size)) return 0;
    asset_parse_t p;
    asset_status_t st = tu_request_parse(&asset__json_loader, &req, &p);
    if (st == ASSET_OK) {
        CHECK(p.has_value && p.value);
        CHECK(p.cost > 0);
        asset__json_loader.free_value(NULL, p.value);
    } else {
        CHECK(st == ASSET_E_PARSE || st == ASSET_E_NO_MEMORY);
        CHECK(!p.has_value);
        CHECK(p.message && *p.message);
        CHECK(strstr(p.message, "line") || strstr(p.message, "empty") ||
              strstr(p.message, "memory"));
        check_position(p.message, data, size);
    }
    asset_free(p.message);
    asset__request_dispose(&req);
    return 0;
}
