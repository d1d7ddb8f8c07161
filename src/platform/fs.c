/* platform/fs.c - see fs.h: the OS-independent half of reading files and listing
 * directories, on top of platform.h's primitives. */
#include "fs.h"
#include "os.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *asset__path_components_refused(const char *path) {
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        const char *why = n ? asset__path_component_refused(p, n) : NULL;
        if (why) return why;
        p += n;
        while (*p == '/') p++;
    }
    return NULL;
}

char *asset__getcwd_dup(bool *oom) {
    *oom = false;
    for (size_t n = 4096; n <= ((size_t)1 << 22); n *= 4) {
        char *cwd = asset_alloc(n);
        if (!cwd) {
            *oom = true;
            return NULL;
        }
        if (asset__getcwd(cwd, n)) return cwd;
        asset_free(cwd);
    }
    return NULL;
}

/* The test hooks of the writes that replace a file (platform.h), each called here once
 * for every OS, over the OS's own call (os.h); an answer other than 0 is the errno. */
int (*asset__rename_over_hook)(const char *from, const char *to) = NULL;
int (*asset__file_sync_hook)(FILE *f) = NULL;
int (*asset__dir_sync_hook)(const char *dir) = NULL;

/* -1 with errno e, or 0 when e is 0 */
static int fail_with(int e) {
    if (!e) return 0;
    errno = e;
    return -1;
}

int asset__rename_over(const char *from, const char *to) {
    int e = asset__rename_over_hook ? asset__rename_over_hook(from, to) : 0;
    return fail_with(e ? e : asset__os_rename_over(from, to));
}

int asset__file_sync(FILE *f) {
    if (fflush(f) != 0) return -1;
    return fail_with(asset__file_sync_hook ? asset__file_sync_hook(f) : asset__os_file_sync(f));
}

int asset__dir_sync_of(const char *path) {
    if (!asset__os_syncs_dirs) return 0;
    const char *slash = strrchr(path, '/');
    char *dir = slash ? asset__strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : asset__strdup(".");
    if (!dir) return fail_with(ENOMEM);
    int e = asset__dir_sync_hook ? asset__dir_sync_hook(dir) : asset__os_dir_sync(dir);
    asset_free(dir);
    return fail_with(e);
}

int (*asset__fs_walk_fault)(const char *step, const char *rel) = NULL;
int (*asset__fs_read_fault)(const char *path) = NULL;

/* The status for an errno from open/opendir/read, and why in words: shared by reads
 * and listings so that both say the same thing about the same failure. Beneath a root
 * (*_open_beneath), EXDEV is the opener refusing a way out (a link the walk does not
 * follow, or one openat2 found leading out). ELOOP is only ever a loop of symlinks (too
 * many levels: openat2 follows links that stay beneath, and a loop of them never ends),
 * beneath a root or not: an I/O error, not an escape (a review). */
static asset_status_t describe_errno(int err, bool beneath, char *why, size_t n) {
    asset_status_t st = ASSET_E_IO;
    switch (err) {
    case ENOENT:
    case ENOTDIR: st = ASSET_E_NOT_FOUND; break;
    case EXDEV:
        if (!beneath) break;
        snprintf(why, n, "path escapes its root (symlink, junction or reparse point?)");
        return ASSET_E_FORBIDDEN;
    case ELOOP:
        /* our words: Windows' C runtime has none for ELOOP, which fs_win32.c also
         * gives a reparse point the system cannot resolve (ERROR_CANT_ACCESS_FILE) */
        snprintf(why, n, "too many levels of symbolic links or reparse points (a loop?)");
        return ASSET_E_IO;
    case EACCES:
    case EPERM: st = ASSET_E_FORBIDDEN; break;
    case ENOMEM: st = ASSET_E_NO_MEMORY; break;
    case EILSEQ: /* Windows: a name that is not UTF-8 has no UTF-16 form: no file has it */
        snprintf(why, n, "no such file: the name is not valid UTF-8 (%s)", strerror(err));
        return ASSET_E_NOT_FOUND;
    case ENXIO: /* a UNIX socket (or a device with nothing behind it) refuses open() */
#ifdef EOPNOTSUPP
    case EOPNOTSUPP:
#endif
        snprintf(why, n, "not a regular file (%s)", strerror(err));
        return ASSET_E_UNSUPPORTED;
    case EMFILE:
    case ENFILE: snprintf(why, n, "too many open files (%s)", strerror(err)); return ASSET_E_IO;
    case EBUSY: /* Windows: a sharing or lock violation, a state that passes
                 * (asset__errno_transient) */
        snprintf(why, n, "in use by another program, without sharing (%s)", strerror(err));
        return ASSET_E_IO;
    default: break;
    }
    snprintf(why, n, "%s", strerror(err));
    return st;
}

asset_status_t asset__errno_status(asset_request_t *r, int err, bool beneath, const char *what) {
    char why[128];
    asset_status_t st = describe_errno(err, beneath, why, sizeof why);
    r->transient = asset__errno_transient(err); /* a reload tries it again (reload.c) */
    return asset_request_fail(r, st, "%s: %s", what, why);
}

asset_status_t asset__list_errno(asset_list_t *l, int err, bool beneath, const char *what) {
    char why[128];
    asset_status_t st = describe_errno(err, beneath, why, sizeof why);
    return asset_list_fail(l, st, "%s: %s", what, why);
}

#define READ_CHUNK (1u << 20)

/* 1 when the open file f's time, size or identity moved since st (its stat when its
 * read began: it was written meanwhile), 0 when not, else -errno. The change time is
 * not asked: it moves too when the file is only renamed or deleted, which leaves its
 * bytes. */
static int moved_since(asset__file_t *f, const asset__fstat_t *st) {
    asset__fstat_t now;
    int err = asset__file_stat(f, &now);
    if (err) return err;
    return memcmp(now.vraw, st->vraw, sizeof st->vraw) != 0;
}

/* Room in r's buffer for n more bytes, the last of them for the read() that sees the
 * end of the file (asset__request_reserve); out of memory, the load fails naming the
 * bytes it wanted (the growth for a file longer than its stat said failed with only
 * the generic "out of memory"). */
static asset_status_t reserve(asset_request_t *r, size_t n) {
    asset_status_t rc = asset__request_reserve(r, n);
    if (rc != ASSET_OK)
        rc = asset_request_fail(r, rc, "out of memory for %llu bytes",
                                (unsigned long long)r->size + n - 1);
    return rc;
}

_Static_assert(sizeof(((struct asset_request *)0)->version_buf) >= 96,
               "asset__fstat_version writes up to 96 bytes into a request's version_buf");

asset_status_t asset__fs_read_file(asset_request_t *r, asset__file_t *f, bool versioned,
                                   size_t map_min) {
    asset__fstat_t st;
    asset_status_t rc = ASSET_OK;
    unsigned reads = 0; /* read() calls that gave bytes */
    int err = asset__file_stat(f, &st);
    if (err) {
        rc = asset__errno_status(r, -err, false, "stat");
        goto out;
    }
    if (st.kind == ASSET__KIND_DIR) {
        rc = asset_request_fail(r, ASSET_E_IO, "is a directory, not a file");
        goto out;
    }
    if (st.kind != ASSET__KIND_FILE) {
        rc = asset_request_fail(r, ASSET_E_UNSUPPORTED, "not a regular file");
        goto out;
    }
    if (versioned) {
        const char *cached = asset_request_cached_version(r);
        char *version = asset__request_version_buf(r); /* written in place: no copy */
        asset__fstat_version(&st, version);
        if (cached && !strcmp(cached, version)) { /* the version stays: the cached one */
            rc = ASSET_NOT_MODIFIED;
            goto out;
        }
        /* a time too coarse and recent to show a rewrite with as many bytes made now
         * (FAT's 2 s): marked so that it matches no later look, which reads the file
         * again (it was served from the cache until the file changed size or time) */
        if (asset__fstat_racy(&st)) strcat(version, "?");
    }
    if (st.size > r->max_size) {
        rc = asset_request_fail(r, ASSET_E_TOO_LARGE,
                                "%llu bytes, larger than max_asset_size (%llu)",
                                (unsigned long long)st.size, (unsigned long long)r->max_size);
        goto out;
    }
    asset_request_set_total(r, st.size);
    if (map_min != SIZE_MAX && st.size && st.size >= map_min && !r->job->sha256) {
        void *data = NULL, *token = NULL;
        if (asset__file_map(f, (size_t)st.size, &data, &token) == 0) {
            rc = asset__request_lend(r, data, (size_t)st.size, asset__unmap, token);
            goto out;
        }
        /* this build or file cannot be mapped, or no address space: read it */
    }
    /* + 1: room for the read() that returns 0 at EOF, so an exact-size buffer does
     * not look like a file that grew since the stat (which reserves 64 KiB more) */
    if ((rc = reserve(r, (size_t)st.size + 1)) != ASSET_OK) goto out;
    for (;;) {
        if (asset_request_cancelled(r)) {
            rc = ASSET_E_CANCELLED;
            goto out;
        }
        /* the file grew since the stat (or the stat said 0: /proc): more room. At
         * exactly max_asset_size too, where only the next read tells the end of the
         * file (0) from a byte too many (failed below): stopping there failed a file
         * of exactly the limit when the buffer happened to be full at it */
        if (r->cap - r->size <= 1 && (rc = reserve(r, 64 * 1024)) != ASSET_OK) goto out;
        size_t room = r->cap - r->size - 1;
        int err = asset__fs_read_fault ? asset__fs_read_fault(asset_request_path(r)) : 0;
        int64_t n =
            err ? -err
                : asset__file_read(f, r->data + r->size, room < READ_CHUNK ? room : READ_CHUNK);
        if (n < 0) {
            rc = asset__errno_status(r, (int)-n, false, "read");
            goto out;
        }
        if (n == 0) { /* the end of the file: where fstat said, unless it shrank since */
            int moved = !st.size || r->size >= st.size ? 0
                        : st.no_storage                ? moved_since(f, &st)
                                                       : 1;
            if (moved < 0) {
                rc = asset__errno_status(r, -moved, false, "stat");
            } else if (moved) {
                r->transient = true; /* a save under way: a reload tries it again */
                rc = asset_request_fail(r, ASSET_E_IO,
                                        "the file shrank while it was read (%llu of %llu "
                                        "bytes): it is being written",
                                        (unsigned long long)r->size, (unsigned long long)st.size);
            }
            /* else a pseudo-file, unmoved: its size was never its length (Linux sysfs
             * says 4096 bytes for every attribute): what it gave is all it holds */
            break;
        }
        reads++;
        r->size += (size_t)n;
        if (r->size > r->max_size) {
            rc = asset_request_fail(r, ASSET_E_TOO_LARGE, "grew past max_asset_size (%llu)",
                                    (unsigned long long)r->max_size);
            goto out;
        }
        atomic_store_explicit(&r->job->received, r->size, memory_order_relaxed);
        /* the size fstat gave is reached: the bytes the file had when it was opened
         * (a file still being written is read again when it changes); no read() just
         * to see 0 */
        if (r->size == st.size && st.size) break;
    }
    /* read in more than one call: the file may have been rewritten in place between
     * them (truncated, then written to as many bytes or more), and its bytes be the old
     * content's start and the new one's rest. One read has no such seam: no second
     * fstat for the small files. */
    int moved = rc == ASSET_OK && reads > 1 && st.size ? moved_since(f, &st) : 0;
    if (moved < 0) {
        rc = asset__errno_status(r, -moved, false, "stat");
    } else if (moved) {
        r->transient = true; /* a state that passes: a reload tries it again */
        rc = asset_request_fail(r, ASSET_E_IO,
                                "the file changed while it was read: it is being written");
    }
out:
    asset__file_close(f);
    return rc;
}

/* ---- listing: a walk that lists every entry or fails saying why ---- */

#define MAX_DEPTH 64

typedef struct dent {
    char *name;
    int kind; /* as the directory listing said: ASSET__KIND_OTHER when it did not */
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
    /* EXDEV: a name the platform refuses (Windows: "d." or "a " cannot be opened as
     * named), or an entry replaced by a link out of the root since it was listed;
     * EBUSY: Windows, an entry held without sharing (pagefile.sys in a drive's root) */
    return err == EACCES || err == EPERM || err == ENOENT || err == ENOTDIR || err == ELOOP ||
           err == EXDEV || err == EBUSY;
}

/* Fails the listing: "<step> <rel>: <why>" (the job prefixes the URI). */
static asset_status_t walk_fail(asset_list_t *l, int err, const char *step, const char *rel) {
    char what[64 + 4096];
    snprintf(what, sizeof what, "%s%s%s", step, *rel ? " " : "", rel);
    return asset__list_errno(l, err, true, what); /* the walk is beneath its folder */
}

/* Reads every name of the directory d (prefix: its path in the listing) into *out. */
static asset_status_t read_names(asset_list_t *l, asset__dir_t *d, const char *prefix, dent_t **out,
                                 size_t *count) {
    dent_t *v = NULL;
    size_t n = 0, cap = 0;
    asset_status_t rc = ASSET_OK;
    for (;;) {
        if (asset__list_cancelled(l)) { /* a huge folder: its whole walk for nothing */
            rc = ASSET_E_CANCELLED;
            break;
        }
        int err = fault("readdir", prefix);
        const char *name = NULL;
        int kind = ASSET__KIND_OTHER, got = 0;
        if (!err) {
            got = asset__dir_next(d, &name, &kind);
            if (got < 0) err = -got;
        }
        if (err) {
            rc = walk_fail(l, err, "readdir", prefix);
            break;
        }
        if (!got) break;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            dent_t *nv = asset_realloc(v, cap * sizeof *nv);
            if (!nv) {
                rc = ASSET_E_NO_MEMORY;
                break;
            }
            v = nv;
        }
        if (!(v[n].name = asset__strdup(name))) {
            rc = ASSET_E_NO_MEMORY;
            break;
        }
        v[n++].kind = kind;
    }
    *out = v;
    *count = n;
    return rc;
}

static asset_status_t walk(asset_list_t *l, asset__dir_t *d, const char *prefix, int depth);

/* Lists one entry `rel` (name in directory d). */
static asset_status_t walk_entry(asset_list_t *l, asset__dir_t *d, const dent_t *e, const char *rel,
                                 int depth) {
    asset__fstat_t st;
    int err = fault("stat", rel);
    if (!err) err = -asset__dir_stat_entry(d, e->name, &st);
    if (err) {
        if (!entry_error(err)) return walk_fail(l, err, "stat", rel);
        /* kept, size unknown, unless the listing said it is what a listing skips */
        if (e->kind == ASSET__KIND_LINK || (e->kind == ASSET__KIND_DIR && !l->recursive))
            return ASSET_OK;
        return asset_list_add(l, rel, -1);
    }
    if (st.kind == ASSET__KIND_FILE) return asset_list_add(l, rel, (int64_t)st.size);
    if (st.kind != ASSET__KIND_DIR || !l->recursive) return ASSET_OK; /* links, FIFOs... */
    if (depth >= MAX_DEPTH)
        return asset_list_fail(l, ASSET_E_IO, "%s: more than %d directory levels deep", rel,
                               MAX_DEPTH);
    asset__dir_t *sub = NULL;
    if (!(err = fault("open", rel))) err = -asset__dir_open_entry(d, e->name, &sub);
    if (err) {
        if (!entry_error(err)) return walk_fail(l, err, "open", rel);
        return asset_list_add(l, rel, -1); /* unreadable: its load says why */
    }
    char *pre = asset__asprintf("%s/", rel);
    if (!pre) {
        asset__dir_close(sub);
        return ASSET_E_NO_MEMORY;
    }
    asset_status_t rc = walk(l, sub, pre, depth + 1);
    asset_free(pre);
    return rc;
}

/* Lists directory d (closes it) under `prefix` ("" or "sub/"). */
static asset_status_t walk(asset_list_t *l, asset__dir_t *d, const char *prefix, int depth) {
    dent_t *names = NULL;
    size_t n = 0;
    asset_status_t rc = read_names(l, d, prefix, &names, &n);
    if (rc == ASSET_OK && n > 1) qsort(names, n, sizeof *names, cmp_dent);
    for (size_t i = 0; i < n && rc == ASSET_OK; i++) {
        if (asset__list_cancelled(l)) {
            rc = ASSET_E_CANCELLED;
            break;
        }
        char *rel = asset__asprintf("%s%s", prefix, names[i].name);
        rc = rel ? walk_entry(l, d, &names[i], rel, depth) : ASSET_E_NO_MEMORY;
        asset_free(rel);
    }
    for (size_t i = 0; i < n; i++) asset_free(names[i].name);
    asset_free(names);
    asset__dir_close(d);
    if (rc == ASSET_E_NO_MEMORY) asset_list_fail(l, rc, "out of memory listing");
    return rc;
}

asset_status_t asset__fs_list_dir(asset_list_t *l, asset__dir_t *d) { return walk(l, d, "", 0); }
