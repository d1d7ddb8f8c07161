/* sources/file.c - file:// and bare paths. Version: mtime (ns), size and inode. With
 * file_root set, every open goes through asset__open_beneath(root). */
#include "../fs.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

/* Opens the request's path, confined to file_root when one is set. */
static int open_path(asset_server_t *s, const char *path, int flags) {
    if (!s->file_root) {
        int fd = open(path, flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
    if (s->file_root_fd < 0) return -ENOENT;
    size_t rl = strlen(s->file_root);
    const char *rel = path + (rl == 1 ? 1 : rl);
    while (*rel == '/') rel++;
    return asset__open_beneath(s->file_root_fd, rel, flags);
}

static asset_status_t file_read(void *ctx, asset_request_t *r) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise block the worker until a
     * writer shows up; asset__read_fd refuses anything but a regular file anyway */
    int fd = open_path(ctx, asset_request_path(r), O_RDONLY | O_NONBLOCK);
    if (fd < 0) return asset__errno_status(r, -fd, "open");
    return asset__read_fd(r, fd, true);
}

static asset_status_t file_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)uri;
    int fd = open_path(ctx, l->path, O_RDONLY | O_DIRECTORY);
    /* as for reads: a symlink out of file_root is FORBIDDEN, like pkg:// */
    if (fd < 0) return asset__list_errno(l, -fd, "opendir");
    return asset__list_dirfd(l, fd);
}

const asset_source_t asset__file_source = {
    ASSET_SOURCE_ABI, "file", 0, file_read, file_list, NULL,
};
