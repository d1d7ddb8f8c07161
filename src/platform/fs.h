/* fs.h - what the file and pkg sources share on top of the platform layer: reading an
 * open file into a request, walking an open directory into a listing, and the words
 * for an errno. The same on every OS (fs.c). Worker threads. */
#ifndef ASSET_PLATFORM_FS_H
#define ASSET_PLATFORM_FS_H

#include "../internal.h"
#include "platform.h"

/* Test hook (fault injection): when set, the directory walk calls it before each step,
 * "readdir" (rel: the directory, "" for the listed one), "stat" and "open" (rel: the
 * entry), with the path relative to the listed folder; a nonzero return makes that
 * step fail with that errno. Lets tests reach EACCES even as root. Set it before the
 * server's threads exist; NULL otherwise. */
extern int (*asset__fs_walk_fault)(const char *step, const char *rel);
/* Test hook (fault injection), the same for reads: when set, asset__fs_read_file calls
 * it before each read of the file with the request's path; a nonzero return makes that
 * read fail with that errno. Tests count reads with it (none after the size the stat
 * gave). Set it before the server's threads exist; NULL otherwise. */
extern int (*asset__fs_read_fault)(const char *path);

/* Maps an errno from open/read to a status and records "<what>: <why>". beneath: the
 * open went through *_open_beneath, where EXDEV means an escape refused (FORBIDDEN);
 * ELOOP is a loop of symlinks (ASSET_E_IO) everywhere. */
asset_status_t asset__errno_status(asset_request_t *r, int err, bool beneath, const char *what);
/* The same for a listing that cannot open its folder (the same statuses and words). */
asset_status_t asset__list_errno(asset_list_t *l, int err, bool beneath, const char *what);
/* Reads the regular file f into the request (closes it): version from its stat,
 * NOT_MODIFIED when it matches the cached one, size cap, progress, cancel checks.
 * A file of at least map_min bytes (SIZE_MAX: none) is mapped and lent to the request
 * instead (asset__file_map, asset__request_lend), or read if it cannot be mapped; never
 * for a load pinned to a digest (a manifest entry's sha256), whose value must stay the
 * bytes checked (a write into the file in place showed through a mapping: a review). */
asset_status_t asset__fs_read_file(asset_request_t *r, asset__file_t *f, bool versioned,
                                   size_t map_min);
/* Lists the directory d (closes it) into l, recursing when asked: regular files,
 * and any entry that cannot be stat'ed or opened for a reason of its own (EACCES,
 * ENOENT...), size -1, so that its load reports it; links and special files are
 * skipped. Anything that stops the walk (EMFILE, ENOMEM, a readdir error, more than
 * 64 levels) fails the whole listing, naming the entry: never a partial success. */
asset_status_t asset__fs_list_dir(asset_list_t *l, asset__dir_t *d);

#endif
