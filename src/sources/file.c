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

/* file_root's directory, for one load (root_put when done with it): opened at create,
 * else by the first load that can (it was opened only at create: a root made after the
 * server, or one that could not be opened then, out of descriptors, left every load
 * NOT_FOUND for the server's life). Opened again when file_root no longer names it
 * (renamed away or deleted, and made anew: a deploy swapping a release in; it was kept,
 * and its old files read under the root's URIs); the one replaced is closed when its
 * last load is done (kept until destroy, a server whose root each deploy swapped held
 * one more descriptor per swap: a review). */
static void root_put(asset_server_t *s, struct asset__root *rt) {
    if (!rt) return;
    uv_mutex_lock(&s->file_root_mu);
    bool last = --rt->users == 0;
    uv_mutex_unlock(&s->file_root_mu);
    if (!last) return;
    asset__dir_close(rt->dir);
    asset_free(rt);
}

static int root_take(asset_server_t *s, struct asset__root **out) {
    uv_mutex_lock(&s->file_root_mu);
    struct asset__root *rt = s->file_root_dir;
    if (rt) rt->users++;
    uv_mutex_unlock(&s->file_root_mu);
    if (rt && asset__dir_is_at(rt->dir, s->file_root)) {
        *out = rt;
        return 0;
    }
    asset__dir_t *fresh = NULL;
    int err = asset__dir_open(s->file_root, &fresh);
    struct asset__root *nr = err ? NULL : asset_alloc(sizeof *nr);
    if (!nr) {
        asset__dir_close(fresh);
        if (!err && rt) { /* no memory for the new one: the old one serves */
            *out = rt;
            return 0;
        }
        root_put(s, rt);
        return err ? err : -ENOMEM;
    }
    nr->dir = fresh;
    nr->users = 2; /* the server's, and this load's */
    struct asset__root *use = nr;
    uv_mutex_lock(&s->file_root_mu);
    if (s->file_root_dir == rt) {
        s->file_root_dir = nr;
        if (rt) rt->users--; /* the server's use of it ended (this load's has not) */
    } else {                 /* another load replaced it first: that one serves */
        use = s->file_root_dir;
        use->users++;
    }
    uv_mutex_unlock(&s->file_root_mu);
    if (use != nr) {
        asset__dir_close(fresh);
        asset_free(nr);
    }
    root_put(s, rt); /* this load's use of the one it found */
    *out = use;
    return 0;
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
        root_put(s, root); /* the file, open, needs it no more */
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
        root_put(s, root);
    }
    /* as for reads: a symlink out of file_root is FORBIDDEN, like pkg:// */
    if (err) return asset__list_errno(l, -err, s->file_root != NULL, "opendir");
    return asset__fs_list_dir(l, d);
}

const asset_source_t asset__file_source = {
    ASSET_SOURCE_ABI, "file", 0, file_read, file_list, NULL,
};
