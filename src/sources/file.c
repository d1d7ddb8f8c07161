/* sources/file.c - file:// and bare paths. Version: what the platform layer says
 * (POSIX: mtime in ns, size, inode and ctime; Windows: last-write time, size, file index
 * and change time).
 * With file_root set, every open goes through the platform's *_open_beneath(root). */
#include "../platform/fs.h"

#include <errno.h>
#include <string.h>

/* path relative to file_root (the URI parser confined it there) */
static const char *beneath_root(asset_server_t *s, const char *path) {
    const char *rel = path + strlen(s->file_root);
    while (*rel == '/') rel++;
    return rel;
}

/* file_root's directory: opened at create, else by the first load that can (it was
 * opened only at create: a root made after the server, or one that could not be opened
 * then, out of descriptors, left every load NOT_FOUND for the server's life). Opened
 * again when file_root no longer names it (renamed away or deleted, and made anew: a
 * deploy swapping a release in; it was kept, and its old files read under the root's
 * URIs); the one replaced stays open until destroy, as a load may be in it. */
static int root_dir(asset_server_t *s, asset__dir_t **out) {
    asset__dir_t *d = atomic_load_explicit(&s->file_root_dir, memory_order_acquire);
    if (d && asset__dir_is_at(d, s->file_root)) {
        *out = d;
        return 0;
    }
    asset__dir_t *fresh = NULL;
    int err = asset__dir_open(s->file_root, &fresh);
    if (err) return err;
    struct asset__retired_dir *r = NULL;
    if (d && !(r = asset_alloc(sizeof *r))) { /* no memory to keep the old one: it stays */
        asset__dir_close(fresh);
        *out = d;
        return 0;
    }
    if (!atomic_compare_exchange_strong_explicit(&s->file_root_dir, &d, fresh, memory_order_acq_rel,
                                                 memory_order_acquire)) {
        asset__dir_close(fresh); /* another load's open won */
        asset_free(r);
        *out = d;
        return 0;
    }
    if (r) {
        r->dir = d;
        r->next = atomic_load_explicit(&s->file_root_retired, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&s->file_root_retired, &r->next, r,
                                                      memory_order_release, memory_order_relaxed)) {
        }
    }
    *out = fresh;
    return 0;
}

static asset_status_t file_read(void *ctx, asset_request_t *r) {
    asset_server_t *s = ctx;
    const char *path = asset_request_path(r);
    asset__file_t *f = NULL;
    asset__dir_t *root = NULL;
    int err;
    if (!s->file_root)
        err = asset__file_open(path, &f);
    else if (!(err = root_dir(s, &root)))
        err = asset__file_open_beneath(root, beneath_root(s, path), &f);
    if (err) return asset__errno_status(r, -err, s->file_root != NULL, "open");
    /* mapped only when the load opted in: a file truncated under a mapping raises
     * SIGBUS in whoever touches the value (map_file in the header) */
    return asset__fs_read_file(r, f, true, r->job->map_file ? s->cfg.map_threshold : SIZE_MAX);
}

static asset_status_t file_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)uri;
    asset_server_t *s = ctx;
    asset__dir_t *d = NULL, *tmp = NULL, *root = NULL;
    int err;
    if (!s->file_root) {
        /* opened as a root, then "" beneath it: a directory stream of its own */
        err = asset__dir_open(l->path, &tmp);
        if (!err) err = asset__dir_open_beneath(tmp, "", &d);
        asset__dir_close(tmp);
    } else if (!(err = root_dir(s, &root))) {
        err = asset__dir_open_beneath(root, beneath_root(s, l->path), &d);
    }
    /* as for reads: a symlink out of file_root is FORBIDDEN, like pkg:// */
    if (err) return asset__list_errno(l, -err, s->file_root != NULL, "opendir");
    return asset__fs_list_dir(l, d);
}

const asset_source_t asset__file_source = {
    ASSET_SOURCE_ABI, "file", 0, file_read, file_list, NULL,
};
