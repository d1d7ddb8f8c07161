/* tu_request.h - a request standing alone, as a worker hands it to a source or a loader,
 * for tests and fuzzers that call a source's read or a loader's parse directly (header
 * only: the fuzzers include it without linking the test helpers). Needs "internal.h". */
#ifndef TU_REQUEST_H
#define TU_REQUEST_H

#include <string.h>

#include "internal.h"

/* Zeroes *job, makes *req its request (a job owns its request while it runs) for `uri`
 * and `path` (the part a source reads, or NULL; both kept by pointer: they must outlive
 * the request), and initialises *req. Dispose of it with asset__request_dispose. */
static inline void tu_request_open(asset__job_t *job, struct asset_request *req, char *uri,
                                   char *path) {
    memset(job, 0, sizeof *job);
    job->req = req;
    job->uri = uri;
    job->path = path;
    asset__request_init(req, job);
}

/* Gives *req a copy of `size` bytes of `data` as a read would leave them: exactly
 * size + 1 bytes allocated (so ASan sees a read past the end), NUL at data[size]. Returns
 * false when no memory was found (req left without data). */
static inline bool tu_request_set_data(struct asset_request *req, const void *data, size_t size) {
    req->data = asset_alloc(size + 1);
    if (!req->data) return false;
    if (size) memcpy(req->data, data, size);
    req->data[size] = 0;
    req->size = size;
    req->cap = size + 1;
    return true;
}

/* Calls `loader`'s parse on *req, as a worker does after the read; *p is zeroed first. */
static inline asset_status_t tu_request_parse(const asset_loader_t *loader,
                                              struct asset_request *req, asset_parse_t *p) {
    memset(p, 0, sizeof *p);
    p->req = req;
    return loader->parse(NULL, p);
}

#endif
