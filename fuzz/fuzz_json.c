/* fuzz_json.c - the built-in json loader (src/loaders/json.c) on arbitrary bytes,
 * called the way a worker calls it: a request buffer that is NUL-terminated at
 * data[size] (the library's guarantee), through asset__json_loader.parse.
 *
 * Properties: parse returns OK with a value (then it is freed with the loader's
 * free_value) or ASSET_E_PARSE / ASSET_E_NO_MEMORY with a message; a failure message
 * names a line and column unless the document is empty; a value's cost is non-zero. */
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
    }
    asset_free(p.message);
    asset__request_dispose(&req);
    return 0;
}
