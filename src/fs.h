/* fs.h - filesystem helpers shared by the file and pkg sources: opening a path
 * beneath a root without escaping it, reading a descriptor into a request, and
 * walking a directory into a listing. Worker threads. */
#ifndef ASSET_FS_H
#define ASSET_FS_H

#include "internal.h"

/* Test hook: when true, never use openat2 (exercise the O_NOFOLLOW walk). */
extern bool asset__fs_force_walk;

/* Opens `rel` (relative, normalised, no "..") beneath directory fd `root`; symlinks
 * may not lead out of it. Returns an fd or -errno (-EXDEV/-ELOOP for an escape). */
int asset__open_beneath(int root, const char *rel, int flags);
/* Maps an errno from open/read to a status and records "<what>: <strerror>". */
asset_status_t asset__errno_status(asset_request_t *r, int err, const char *what);
/* Reads regular file `fd` into the request (closes it): version from fstat,
 * NOT_MODIFIED when it matches the cached one, size cap, progress, cancel checks. */
asset_status_t asset__read_fd(asset_request_t *r, int fd, bool versioned);
/* Lists the directory `fd` (closes it) into l, recursing when asked. */
asset_status_t asset__list_dirfd(asset_list_t *l, int fd);

#endif
