/* fs.c - see fs.h. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#ifndef ASSET_FS_NO_OPENAT2 /* set by the web build until the platform layer lands */
#include <linux/openat2.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

bool asset__fs_force_walk = false;
int (*asset__fs_walk_fault)(const char *step, const char *rel) = NULL;

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
#if defined(SYS_openat2) && !defined(ASSET_FS_NO_OPENAT2)
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

/* The status for an errno from open/opendir/read, and why in words: shared by reads
 * and listings so that both say the same thing about the same failure. */
static asset_status_t describe_errno(int err, char *why, size_t n) {
    asset_status_t st = ASSET_E_IO;
    switch (err) {
    case ENOENT:
    case ENOTDIR: st = ASSET_E_NOT_FOUND; break;
    case EXDEV:
    case ELOOP: snprintf(why, n, "path escapes its root (symlink?)"); return ASSET_E_FORBIDDEN;
    case EACCES:
    case EPERM: st = ASSET_E_FORBIDDEN; break;
    case ENOMEM: st = ASSET_E_NO_MEMORY; break;
    case EMFILE:
    case ENFILE: snprintf(why, n, "too many open files (%s)", strerror(err)); return ASSET_E_IO;
    default: break;
    }
    snprintf(why, n, "%s", strerror(err));
    return st;
}

asset_status_t asset__errno_status(asset_request_t *r, int err, const char *what) {
    char why[128];
    asset_status_t st = describe_errno(err, why, sizeof why);
    return asset_request_fail(r, st, "%s: %s", what, why);
}

asset_status_t asset__list_errno(asset_list_t *l, int err, const char *what) {
    char why[128];
    asset_status_t st = describe_errno(err, why, sizeof why);
    return asset_list_fail(l, st, "%s: %s", what, why);
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

/* ---- listing: a walk that lists every entry or fails saying why ---- */

#define MAX_DEPTH 64

typedef struct dent {
    char *name;
    unsigned char type; /* d_type: DT_UNKNOWN when the filesystem does not say */
} dent_t;

static int cmp_dent(const void *a, const void *b) {
    return strcmp(((const dent_t *)a)->name, ((const dent_t *)b)->name);
}

/* errno for the walk's step on rel: the injected fault, else 0 (the step runs). */
static int fault(const char *step, const char *rel) {
    return asset__fs_walk_fault ? asset__fs_walk_fault(step, rel) : 0;
}

/* An error about one entry (no permission, vanished or replaced since readdir): the
 * entry stays in the listing and its own load reports it. Anything else (EMFILE,
 * ENFILE, ENOMEM, EIO...) means the walk cannot see the whole folder: it fails. */
static bool entry_error(int err) {
    return err == EACCES || err == EPERM || err == ENOENT || err == ENOTDIR || err == ELOOP;
}

/* Fails the listing: "<step> <rel>: <why>" (the job prefixes the URI). */
static asset_status_t walk_fail(asset_list_t *l, int err, const char *step, const char *rel) {
    char what[64 + 4096];
    snprintf(what, sizeof what, "%s%s%s", step, *rel ? " " : "", rel);
    return asset__list_errno(l, err, what);
}

/* Reads every name of the directory d (prefix: its path in the listing) into *out. */
static asset_status_t read_names(asset_list_t *l, DIR *d, const char *prefix, dent_t **out,
                                 size_t *count) {
    dent_t *v = NULL;
    size_t n = 0, cap = 0;
    asset_status_t rc = ASSET_OK;
    for (;;) {
        int err = fault("readdir", prefix);
        struct dirent *e = NULL;
        if (!err) {
            errno = 0;
            e = readdir(d);
            err = e ? 0 : errno;
        }
        if (err) {
            rc = walk_fail(l, err, "readdir", prefix);
            break;
        }
        if (!e) break;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            dent_t *nv = asset_realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = ASSET_E_NO_MEMORY;
                break;
            }
            v = nv;
        }
        if (!(v[n].name = asset__strdup(e->d_name))) {
            rc = ASSET_E_NO_MEMORY;
            break;
        }
        v[n++].type = e->d_type;
    }
    *out = v;
    *count = n;
    return rc;
}

static asset_status_t walk(asset_list_t *l, int dfd, const char *prefix, int depth);

/* Lists one entry `rel` (name in directory d). */
static asset_status_t walk_entry(asset_list_t *l, DIR *d, const dent_t *e, const char *rel,
                                 int depth) {
    struct stat st;
    int err = fault("stat", rel);
    if (!err && fstatat(dirfd(d), e->name, &st, AT_SYMLINK_NOFOLLOW) != 0) err = errno;
    if (err) {
        if (!entry_error(err)) return walk_fail(l, err, "stat", rel);
        /* kept, size unknown, unless readdir said it is what a listing skips */
        if (e->type == DT_LNK || (e->type == DT_DIR && !l->recursive)) return ASSET_OK;
        return asset_list_add(l, rel, -1);
    }
    if (S_ISREG(st.st_mode)) return asset_list_add(l, rel, (int64_t)st.st_size);
    if (!S_ISDIR(st.st_mode) || !l->recursive) return ASSET_OK; /* symlinks, FIFOs... */
    if (depth >= MAX_DEPTH)
        return asset_list_fail(l, ASSET_E_IO, "%s: more than %d directory levels deep", rel,
                               MAX_DEPTH);
    int sub = -1;
    if (!(err = fault("open", rel))) {
        sub = openat(dirfd(d), e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) err = errno;
    }
    if (err) {
        if (!entry_error(err)) return walk_fail(l, err, "open", rel);
        return asset_list_add(l, rel, -1); /* unreadable: its load says why */
    }
    char *pre = asset__asprintf("%s/", rel);
    if (!pre) {
        close(sub);
        return ASSET_E_NO_MEMORY;
    }
    asset_status_t rc = walk(l, sub, pre, depth + 1);
    asset_free(pre);
    return rc;
}

/* Lists directory dfd (closes it) under `prefix` ("" or "sub/"). */
static asset_status_t walk(asset_list_t *l, int dfd, const char *prefix, int depth) {
    DIR *d = fdopendir(dfd);
    if (!d) {
        int err = errno;
        close(dfd);
        return walk_fail(l, err, "opendir", prefix);
    }
    dent_t *names = NULL;
    size_t n = 0;
    asset_status_t rc = read_names(l, d, prefix, &names, &n);
    if (rc == ASSET_OK && n > 1) qsort(names, n, sizeof *names, cmp_dent);
    for (size_t i = 0; i < n && rc == ASSET_OK; i++) {
        char *rel = asset__asprintf("%s%s", prefix, names[i].name);
        rc = rel ? walk_entry(l, d, &names[i], rel, depth) : ASSET_E_NO_MEMORY;
        asset_free(rel);
    }
    for (size_t i = 0; i < n; i++) asset_free(names[i].name);
    asset_free(names);
    closedir(d);
    if (rc == ASSET_E_NO_MEMORY) asset_list_fail(l, rc, "out of memory listing");
    return rc;
}

asset_status_t asset__list_dirfd(asset_list_t *l, int fd) { return walk(l, fd, "", 0); }
