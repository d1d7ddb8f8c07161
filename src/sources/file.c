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

/* file_root's directory, for one load (asset__root_put when done with it): opened again
 * when file_root names another directory (dir_root.c) */
static int root_take(asset_server_t *s, struct asset__root **out) {
    return asset__root_take(&s->file_root_mu, &s->file_root_dir, s->file_root, s->cfg.watch, out);
}

static asset_status_t file_read(void *ctx, asset_request_t *r) {
    asset_server_t *s = ctx;
    const char *path = asset_request_path(r);
    asset__file_t *f = NULL;
    struct asset__root *root = NULL;
    int err;
    if (!s->file_root) {
        err = asset__file_open(path, &f);
    } else if (!(err = root_take(s, &root))) {
        err = asset__file_open_beneath(root->dir, beneath_root(s, path), &f);
        asset__root_put(&s->file_root_mu, root); /* the file, open, needs it no more */
    }
    if (err) return asset__errno_status(r, -err, s->file_root != NULL, "open");
    /* mapped only when the load opted in: a file truncated under a mapping raises
     * SIGBUS in whoever touches the value (map_file in the header) */
    return asset__fs_read_file(r, f, true, r->job->map_file ? s->cfg.map_threshold : SIZE_MAX);
}

static asset_status_t file_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)uri;
    asset_server_t *s = ctx;
    asset__dir_t *d = NULL, *tmp = NULL;
    struct asset__root *root = NULL;
    int err;
    if (!s->file_root) {
        /* opened as a root, then "" beneath it: a directory stream of its own */
        err = asset__dir_open(l->path, &tmp);
        if (!err) err = asset__dir_open_beneath(tmp, "", &d);
        asset__dir_close(tmp);
    } else if (!(err = root_take(s, &root))) {
        err = asset__dir_open_beneath(root->dir, beneath_root(s, l->path), &d);
        asset__root_put(&s->file_root_mu, root);
    }
    /* as for reads: a symlink out of file_root is FORBIDDEN, like pkg:// */
    if (err) return asset__list_errno(l, -err, s->file_root != NULL, "opendir");
    return asset__fs_list_dir(l, d);
}

const asset_source_t asset__file_source = {
    ASSET_SOURCE_ABI, "file", 0, file_read, file_list, NULL,
};
