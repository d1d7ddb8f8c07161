/* fs.h - filesystem helpers shared by the file and pkg sources: opening a path
 * beneath a root without escaping it, reading a descriptor into a request, and
 * walking a directory into a listing. Worker threads. */
#ifndef ASSET_FS_H
#define ASSET_FS_H

#include "internal.h"

/* Test hook: when true, never use openat2 (exercise the O_NOFOLLOW walk). */
extern bool asset__fs_force_walk;
/* Test hook (fault injection): when set, the directory walk calls it before each step,
 * "readdir" (rel: the directory, "" for the listed one), "stat" and "open" (rel: the
 * entry), with the path relative to the listed folder; a nonzero return makes that
 * step fail with that errno. Lets tests reach EACCES even as root. Set it before the
 * server's threads exist; NULL otherwise. */
extern int (*asset__fs_walk_fault)(const char *step, const char *rel);

/* Opens `rel` (relative, normalised, no "..") beneath directory fd `root`; symlinks
 * may not lead out of it. Returns an fd or -errno (-EXDEV/-ELOOP for an escape). */
int asset__open_beneath(int root, const char *rel, int flags);
/* Maps an errno from open/read to a status and records "<what>: <strerror>". */
asset_status_t asset__errno_status(asset_request_t *r, int err, const char *what);
/* Reads regular file `fd` into the request (closes it): version from fstat,
 * NOT_MODIFIED when it matches the cached one, size cap, progress, cancel checks. */
asset_status_t asset__read_fd(asset_request_t *r, int fd, bool versioned);
/* The same for a listing that cannot open its folder (the same statuses and words). */
asset_status_t asset__list_errno(asset_list_t *l, int err, const char *what);
/* Lists the directory `fd` (closes it) into l, recursing when asked: regular files,
 * and any entry that cannot be stat'ed or opened for a reason of its own (EACCES,
 * ENOENT...), size -1, so that its load reports it; symlinks and special files are
 * skipped. Anything that stops the walk (EMFILE, ENOMEM, a readdir error, more than
 * 64 levels) fails the whole listing, naming the entry: never a partial success. */
asset_status_t asset__list_dirfd(asset_list_t *l, int fd);

#endif
