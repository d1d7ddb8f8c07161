/* fs.c - see fs.h. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

bool asset__fs_force_walk = false;

static int open_walk(int root, const char *rel, int flags) {
    /* every component opened with O_NOFOLLOW: any symlink is refused (ELOOP) */
    int cur = root;
    const char *p = rel;
    char comp[256];
    for (;;) {
        size_t n = strcspn(p, "/");
        if (n == 0 || n >= sizeof comp) {
            if (cur != root) close(cur);
            return n ? -ENAMETOOLONG : -ENOENT;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') { /* openat would climb out of the root */
            if (cur != root) close(cur);            /* (found by fuzz/fuzz_pkg.c) */
            return -EXDEV;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        bool last = p[n] == 0;
        int fd = last ? openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC)
                      : openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (fd < 0 && err == ENOTDIR) {
            struct stat st; /* a symlink where a directory should be */
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                err = ELOOP;
        }
        if (cur != root) close(cur);
        if (fd < 0) return -err;
        if (last) return fd;
        cur = fd;
        p += n + 1;
    }
}

int asset__open_beneath(int root, const char *rel, int flags) {
    if (!*rel) { /* the root itself */
        int fd = openat(root, ".", flags | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
    }
#ifdef SYS_openat2
    if (!asset__fs_force_walk) {
        struct open_how how;
        memset(&how, 0, sizeof how);
        how.flags = (uint64_t)(flags | O_CLOEXEC);
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        long fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno != ENOSYS && errno != EPERM && errno != E2BIG) return -errno;
    }
#endif
    return open_walk(root, rel, flags);
}

asset_status_t asset__errno_status(asset_request_t *r, int err, const char *what) {
    asset_status_t st;
    switch (err) {
    case ENOENT:
    case ENOTDIR: st = ASSET_E_NOT_FOUND; break;
    case EXDEV:
    case ELOOP:
        return asset_request_fail(r, ASSET_E_FORBIDDEN, "%s: path escapes its root (symlink?)",
                                  what);
    case EACCES:
    case EPERM: st = ASSET_E_FORBIDDEN; break;
    case ENOMEM: st = ASSET_E_NO_MEMORY; break;
    case EMFILE:
    case ENFILE:
        return asset_request_fail(r, ASSET_E_IO, "%s: too many open files (%s)", what,
                                  strerror(err));
    default: st = ASSET_E_IO; break;
    }
    return asset_request_fail(r, st, "%s: %s", what, strerror(err));
}

#define READ_CHUNK (1u << 20)

asset_status_t asset__read_fd(asset_request_t *r, int fd, bool versioned) {
    struct stat st;
    asset_status_t rc = ASSET_OK;
    if (fstat(fd, &st) != 0) {
        rc = asset__errno_status(r, errno, "stat");
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = asset_request_fail(r, ASSET_E_IO, "is a directory, not a file");
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = asset_request_fail(r, ASSET_E_UNSUPPORTED, "not a regular file");
        goto out;
    }
    if (versioned) {
        char ver[96];
        snprintf(ver, sizeof ver, "%lld.%09ld:%lld:%llu", (long long)st.st_mtim.tv_sec,
                 (long)st.st_mtim.tv_nsec, (long long)st.st_size, (unsigned long long)st.st_ino);
        const char *cached = asset_request_cached_version(r);
        if (cached && !strcmp(cached, ver)) {
            rc = ASSET_NOT_MODIFIED;
            goto out;
        }
        asset_request_set_version(r, ver);
    }
    if ((uint64_t)st.st_size > r->max_size) {
        rc =
            asset_request_fail(r, ASSET_E_TOO_LARGE, "%lld bytes, larger than max_asset_size (%zu)",
                               (long long)st.st_size, r->max_size);
        goto out;
    }
    asset_request_set_total(r, (uint64_t)st.st_size);
    /* + 1: room for the read() that returns 0 at EOF, so an exact-size buffer does
     * not look like a file that grew since fstat (which reserves 64 KiB more) */
    if ((rc = asset__request_reserve(r, (size_t)st.st_size + 1)) != ASSET_OK) {
        rc = asset_request_fail(r, rc, "out of memory for %lld bytes", (long long)st.st_size);
        goto out;
    }
    for (;;) {
        if (asset_request_cancelled(r)) {
            rc = ASSET_E_CANCELLED;
            goto out;
        }
        if (r->cap - r->size <= 1) { /* the file grew since fstat */
            if (r->size >= r->max_size) {
                rc = asset_request_fail(r, ASSET_E_TOO_LARGE, "grew past max_asset_size (%zu)",
                                        r->max_size);
                goto out;
            }
            if ((rc = asset__request_reserve(r, 64 * 1024)) != ASSET_OK) goto out;
        }
        size_t room = r->cap - r->size - 1;
        ssize_t n = read(fd, r->data + r->size, room < READ_CHUNK ? room : READ_CHUNK);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = asset__errno_status(r, errno, "read");
            goto out;
        }
        if (n == 0) break;
        r->size += (size_t)n;
        if (r->size > r->max_size) {
            rc = asset_request_fail(r, ASSET_E_TOO_LARGE, "grew past max_asset_size (%zu)",
                                    r->max_size);
            goto out;
        }
        atomic_store_explicit(&r->job->received, r->size, memory_order_relaxed);
    }
out:
    close(fd);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static asset_status_t walk(asset_list_t *l, int dfd, const char *prefix, int depth) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return asset_list_fail(l, ASSET_E_IO, "opendir: %s", strerror(errno));
    }
    asset_status_t rc = ASSET_OK;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = asset_realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = ASSET_E_NO_MEMORY;
                goto out;
            }
            names = nn;
        }
        if (!(names[n] = asset__strdup(e->d_name))) {
            rc = ASSET_E_NO_MEMORY;
            goto out;
        }
        n++;
    }
    if (n > 1) qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n && rc == ASSET_OK; i++) {
        struct stat st;
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        char *rel = asset__asprintf("%s%s", prefix, names[i]);
        if (!rel) {
            rc = ASSET_E_NO_MEMORY;
            break;
        }
        if (S_ISREG(st.st_mode)) {
            rc = asset_list_add(l, rel, (int64_t)st.st_size);
        } else if (S_ISDIR(st.st_mode) && l->recursive && depth < 64) {
            int sub = openat(dirfd(d), names[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                char *pre = asset__asprintf("%s/", rel);
                rc = pre ? walk(l, sub, pre, depth + 1) : ASSET_E_NO_MEMORY;
                if (!pre) close(sub);
                asset_free(pre);
            }
        }
        asset_free(rel);
    }
out:
    for (size_t i = 0; i < n; i++) asset_free(names[i]);
    asset_free(names);
    closedir(d);
    if (rc == ASSET_E_NO_MEMORY) asset_list_fail(l, rc, "out of memory listing");
    return rc;
}

asset_status_t asset__list_dirfd(asset_list_t *l, int fd) { return walk(l, fd, "", 0); }
