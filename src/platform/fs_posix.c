/* platform/fs_posix.c - platform.h on POSIX (Linux, macOS, the BSDs): descriptors,
 * openat() with O_NOFOLLOW, readdir. Opening beneath a root asks the kernel first
 * (asset__open_beneath_fast: openat2 on Linux, see beneath_linux.c) and otherwise
 * walks the path one O_NOFOLLOW component at a time. */
#include "platform.h"
#include "os.h"
#include "posix.h"

#include "../internal.h" /* asset_alloc */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h> /* getenv */
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#if !defined(__EMSCRIPTEN__) && !defined(ASSET_NO_MMAP)
#include <sys/mman.h>
#endif
#include <unistd.h>

/* Sizes and offsets of files past 2 GiB on 32-bit systems: built with
 * _FILE_OFFSET_BITS=64 (CMakeLists.txt), which makes off_t 64 bits and every open
 * large-file capable (without it fstat and open of such a file fail with EOVERFLOW). */
_Static_assert(sizeof(off_t) >= 8, "build with -D_FILE_OFFSET_BITS=64 (a 32-bit off_t)");

#ifndef PATH_MAX /* POSIX lets a system leave it undefined (the Hurd) */
#define PATH_MAX 4096
#endif

/* A descriptor good only for openat() and fstat(): O_PATH where the OS has it. */
#ifdef O_PATH
#define DIR_SEARCH O_PATH
#else
#define DIR_SEARCH O_RDONLY
#endif

struct asset__dir {
    int fd;
    DIR *stream; /* made from fd by the first asset__dir_next; owns fd from then on */
    bool known;  /* dev and ino hold fd's (asset__dir_open: a root, for asset__dir_is_at) */
    dev_t dev;
    ino_t ino;
};
/* An open file is its descriptor, carried in the handle's pointer (descriptor + 1, so
 * never NULL): no allocation per file read. struct asset__file is never defined. */
static asset__file_t *file_of(int fd) { return (asset__file_t *)(uintptr_t)((unsigned)fd + 1u); }
static int fd_of(const asset__file_t *f) { return (int)((uintptr_t)f - 1u); }

static int open_path(const char *path, int flags);

const char asset__path_list_sep = ':';
bool asset__fs_force_walk = false;
bool asset__fs_coarse_times = false;

/* ---- path syntax ---- */

size_t asset__path_root_len(const char *p) { return p[0] == '/' ? 1 : 0; }

bool asset__path_prefix_equal(const char *path, const char *prefix, size_t n) {
    return strncmp(path, prefix, n) == 0;
}

const char *asset__path_prepare(char *p, bool from_uri, asset_status_t *st) {
    (void)from_uri;
    if (strchr(p, '\\')) {
        *st = ASSET_E_FORBIDDEN;
        return "contains a backslash";
    }
    return NULL;
}

const char *asset__path_component_refused(const char *name, size_t n) {
    (void)name;
    (void)n;
    return NULL;
}

const bool asset__path_components_checked = false;

void asset__path_fold_name(char *name) { (void)name; }

char *asset__path_stored_name(const char *path, bool *oom) {
    (void)path;
    *oom = false;
    return NULL; /* a name opens only as it is stored */
}

char *asset__path_drive_full(const char *path, bool *oom) {
    (void)path;
    *oom = false;
    return NULL; /* no drives */
}

bool asset__getcwd(char *buf, size_t n) { return getcwd(buf, n) != NULL; }

FILE *asset__fopen(const char *path, const char *mode) { return fopen(path, mode); }

/* fd (an open for writing, or -1 with errno set) as a "wb" FILE when ok; else NULL with
 * errno set, fd closed and the file made (its path) removed again, made non-NULL */
static FILE *fdopen_wb(int fd, bool ok, const char *made) {
    FILE *f = fd >= 0 && ok ? fdopen(fd, "wb") : NULL;
    if (fd >= 0 && !f) {
        int err = errno;
        close(fd);
        if (made) unlink(made);
        errno = err;
    }
    return f;
}

FILE *asset__fopen_existing(const char *path) {
    return fdopen_wb(open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY), true, NULL);
}

FILE *asset__fopen_new(const char *path, const char *like) {
    struct stat st;
    mode_t mode = !like ? 0666 : stat(like, &st) == 0 ? st.st_mode & 0777 : 0600;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, mode);
    /* the umask took bits off at the open (never added any): like's exactly */
    return fdopen_wb(fd, !like || fd < 0 || fchmod(fd, mode) == 0, path);
}

int asset__os_rename_over(const char *from, const char *to) { return rename(from, to) ? errno : 0; }

int asset__remove(const char *path) { return remove(path) ? -1 : 0; }

/* Emscripten's fsync puts nothing on a disk: no file system of its (MEMFS, NODERAWFS,
 * IDBFS) has a stream fsync, so it returns 0; but a program linked with -sASYNCIFY syncs
 * through an fd_sync that reads the stream's mount, which NODERAWFS's files (node's real
 * ones) lack: a trace written by a single-threaded node program ended it ("TypeError:
 * Cannot read properties of undefined (reading 'type')", Emscripten 3.1.6). So the web
 * build syncs nothing, as it never did without ASYNCIFY (an IDBFS mount is persisted by
 * the program's own FS.syncfs). */
int asset__os_file_sync(FILE *f) {
#ifdef __EMSCRIPTEN__
    (void)f;
    return 0;
#else
    struct stat st;
    if (fstat(fileno(f), &st) != 0) return errno;
    return !S_ISREG(st.st_mode) || fsync(fileno(f)) == 0 ? 0 : errno;
#endif
}

const bool asset__os_syncs_dirs = true;

int asset__os_dir_sync(const char *dir) {
#ifdef __EMSCRIPTEN__
    (void)dir;
    return 0; /* as asset__os_file_sync */
#else
    /* O_RDONLY, not O_PATH: Linux refuses fsync on an O_PATH descriptor (EBADF) */
    int fd = open_path(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -fd;
    int e = fsync(fd) ? errno : 0;
    close(fd);
    return e;
#endif
}

char *asset__watch_path(const char *dir, bool *oom) {
    (void)dir;
    *oom = false;
    return NULL; /* no limit but the kernel's, which libuv's inotify_add_watch meets as is */
}

/* The ASSET__KIND_ of a stat's mode. */
static int kind_of(mode_t m) {
    return S_ISREG(m)   ? ASSET__KIND_FILE
           : S_ISDIR(m) ? ASSET__KIND_DIR
           : S_ISLNK(m) ? ASSET__KIND_LINK
                        : ASSET__KIND_OTHER;
}

int asset__path_lkind(const char *path) {
    struct stat st;
    return lstat(path, &st) ? -errno : kind_of(st.st_mode);
}

char *asset__getenv_dup(const char *name, bool *oom) {
    const char *v = getenv(name);
    char *d = v && *v ? asset__strdup(v) : NULL;
    *oom = v && *v && !d;
    return d;
}

unsigned asset__watch_queue_max(void) {
    unsigned max = 0;
#if defined(__linux__) && !defined(__EMSCRIPTEN__)
    FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "re");
    if (f) {
        if (fscanf(f, "%u", &max) != 1) max = 0;
        fclose(f);
    }
#endif
    return max;
}

/* ---- opening ---- */

static int open_walk(int root, const char *rel, int flags) {
    /* every component opened with O_NOFOLLOW: any symlink is refused (-EXDEV, a way out
     * refused: the kernel's ELOOP here names the link, not a loop of links) */
    int cur = root;
    const char *p = rel;
    /* a name of any length is the file system's to judge: 255 UTF-16 units or characters
     * (exFAT, VFAT, NTFS, CIFS; HFS+ and APFS on macOS) are up to 765 bytes of UTF-8.
     * Copied into 256 bytes, a longer one was refused here, "File name too long", and
     * never loaded (a review). Up to 255 bytes on the stack, longer ones on the heap */
    char small[256], *comp = small;
    for (;;) {
        size_t n = strcspn(p, "/");
        if (n == 0) {
            if (cur != root) close(cur);
            return -ENOENT;
        }
        if (n == 2 && p[0] == '.' && p[1] == '.') { /* openat would climb out of the root */
            if (cur != root) close(cur);            /* (found by fuzz/fuzz_pkg.c) */
            return -EXDEV;
        }
        if (n >= sizeof small && !(comp = asset_alloc(n + 1))) {
            if (cur != root) close(cur);
            return -ENOMEM;
        }
        memcpy(comp, p, n);
        comp[n] = 0;
        bool last = p[n] == 0;
        int fd = last ? openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC)
                      : openat(cur, comp, DIR_SEARCH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int err = errno;
        if (fd < 0 && (err == ENOTDIR || err == EMLINK)) {
            struct stat st; /* a symlink where a directory should be (BSDs say EMLINK) */
            if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                err = EXDEV;
        }
        if (fd < 0 && err == ELOOP) err = EXDEV;
        if (comp != small) asset_free(comp);
        comp = small;
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
    if (!asset__fs_force_walk) {
        /* ENAMETOOLONG: a path longer than the kernel takes in one call (PATH_MAX),
         * which a listing (one directory at a time) finds; the walk takes it a
         * component at a time, as it does where there is no fast path */
        int fd = asset__open_beneath_fast(root, rel, flags);
        if (fd != -ENOSYS && fd != -ENAMETOOLONG) return fd;
    }
    return open_walk(root, rel, flags);
}

/* open(path), also for a path longer than PATH_MAX (a file a listing found, one
 * directory at a time, deeper than that): the directories of its first PATH_MAX bytes
 * opened, then the rest from there, as open() would resolve it (symlinks followed). */
static int open_path(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != ENAMETOOLONG) return -errno;
    int cur = AT_FDCWD;
    const char *p = path;
    char part[PATH_MAX];
    while (strlen(p) >= sizeof part) {
        size_t cut = sizeof part - 1;
        while (cut > 0 && p[cut] != '/') cut--;
        if (!cut) { /* one component longer than the kernel takes */
            if (cur != AT_FDCWD) close(cur);
            return -ENAMETOOLONG;
        }
        memcpy(part, p, cut);
        part[cut] = 0;
        int next = openat(cur, part, DIR_SEARCH | O_DIRECTORY | O_CLOEXEC);
        int err = errno;
        if (cur != AT_FDCWD) close(cur);
        if (next < 0) return -err;
        cur = next;
        for (p += cut; *p == '/'; p++) continue;
    }
    fd = openat(cur, p, flags | O_CLOEXEC);
    int err = errno;
    if (cur != AT_FDCWD) close(cur);
    return fd < 0 ? -err : fd;
}

static int new_dir(int fd, asset__dir_t **out) {
    asset__dir_t *d = asset_alloc(sizeof *d);
    if (!d) {
        close(fd);
        return -ENOMEM;
    }
    d->fd = fd;
    d->stream = NULL;
    d->known = false;
    *out = d;
    return 0;
}

static int new_file(int fd, asset__file_t **out) {
    *out = file_of(fd);
    return 0;
}

int asset__dir_open(const char *path, asset__dir_t **out) {
    *out = NULL;
    int fd = open_path(path, DIR_SEARCH | O_DIRECTORY);
    int err = fd < 0 ? fd : new_dir(fd, out);
    /* a root's identity, which an open descriptor keeps, taken once: asset__dir_is_at,
     * which every file:// load under file_root asks, then makes one call, not two */
    struct stat st;
    if (!err && fstat(fd, &st) == 0) {
        (*out)->dev = st.st_dev;
        (*out)->ino = st.st_ino;
        (*out)->known = true;
    }
    return err;
}

int asset__dir_open_beneath(asset__dir_t *root, const char *rel, asset__dir_t **out) {
    *out = NULL;
    int fd = asset__open_beneath(root->fd, rel, O_RDONLY | O_DIRECTORY);
    return fd < 0 ? fd : new_dir(fd, out);
}

/* O_NONBLOCK: opening a FIFO for reading would otherwise block the worker until a
 * writer shows up; the read refuses anything but a regular file anyway. O_NOCTTY: a
 * terminal's device opened by a session leader without a terminal (a daemon) would
 * otherwise become its controlling terminal (SIGHUP when it hangs up). */
#define FILE_OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY)

int asset__file_open_beneath(asset__dir_t *root, const char *rel, asset__file_t **out) {
    *out = NULL;
    int fd = asset__open_beneath(root->fd, rel, FILE_OPEN_FLAGS);
    return fd < 0 ? fd : new_file(fd, out);
}

int asset__file_open(const char *path, asset__file_t **out) {
    *out = NULL;
    int fd = open_path(path, FILE_OPEN_FLAGS);
    return fd < 0 ? fd : new_file(fd, out);
}

bool asset__path_is_link(const char *path) { return asset__path_lkind(path) == ASSET__KIND_LINK; }

bool asset__dir_is_at(asset__dir_t *d, const char *path, bool watching) {
    (void)watching; /* a stat is cheap enough for every load */
    struct stat a, b;
    if (d->known) {
        a.st_dev = d->dev;
        a.st_ino = d->ino;
    } else if (fstat(d->fd, &a) != 0) {
        return true; /* nothing else seen */
    }
    /* nothing there: d was renamed away (its files still readable there) or deleted,
     * and none made anew, so the path names no directory; not looked up (EACCES...): d */
    if (stat(path, &b) != 0) return errno != ENOENT && errno != ENOTDIR;
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* ---- files ---- */

static void fill_stat(const struct stat *s, asset__fstat_t *st) {
    st->kind = kind_of(s->st_mode);
    st->size = s->st_size > 0 ? (uint64_t)s->st_size : 0;
#if defined(ASSET_HAVE_ST_MTIM)
    long long sec = (long long)s->st_mtim.tv_sec, nsec = (long long)s->st_mtim.tv_nsec;
    long long csec = (long long)s->st_ctim.tv_sec, cnsec = (long long)s->st_ctim.tv_nsec;
#elif defined(ASSET_HAVE_ST_MTIMESPEC) /* macOS */
    long long sec = (long long)s->st_mtimespec.tv_sec, nsec = (long long)s->st_mtimespec.tv_nsec;
    long long csec = (long long)s->st_ctimespec.tv_sec, cnsec = (long long)s->st_ctimespec.tv_nsec;
#else
    long long sec = (long long)s->st_mtime, nsec = 0;
    long long csec = (long long)s->st_ctime, cnsec = 0;
#endif
    if (asset__fs_coarse_times) { /* FAT: 2 s steps, and no change time of its own */
        sec -= sec & 1;
        nsec = 0;
        csec = sec;
        cnsec = 0;
    }
    st->vraw[0] = (uint64_t)sec;
    st->vraw[1] = (uint64_t)nsec;
    st->vraw[2] = (uint64_t)s->st_size;
    st->vraw[3] = (uint64_t)s->st_ino;
    /* mtime, size and inode all stay when a file is rewritten in place with as many
     * bytes and its mtime set back (cp -p, rsync -t --inplace, touch -r, mtimes pinned
     * by SOURCE_DATE_EPOCH): the change time moves on whatever is done to the file */
    st->vchange = (uint64_t)csec * 1000000000u + (uint64_t)cnsec;
    st->no_storage = s->st_size > 0 && s->st_blocks == 0;
}

/* v (< 10^8) as eight ASCII digits, zero-padded, the first digit in the lowest byte:
 * all eight at once in the lanes of one 64-bit word (two halves of four digits, each
 * split into two pairs, each pair into two digits; every lane's product stays inside
 * its lane), no loop and no table. */
static uint64_t digits8(uint32_t v) {
    uint64_t m = (uint64_t)(v / 10000) | (uint64_t)(v % 10000) << 32;
    uint64_t hi = ((m * 10486u) >> 20) & 0x0000007f0000007fu;     /* each half / 100 */
    uint64_t pairs = ((m - 100 * hi) << 16) + hi;                 /* 16-bit lanes */
    uint64_t tens = ((pairs * 103u) >> 10) & 0x000f000f000f000fu; /* each pair / 10 */
    tens += (pairs - 10 * tens) << 8;                             /* byte lanes */
    return tens + 0x3030303030303030u;
}

/* Stores the last n (1 to 8) of d's eight digits at w; where the target is little-endian
 * as one 8-byte store, whose 8 - n bytes after them are scratch (the caller's buffer has
 * room for them). Returns w + n. */
static char *put8(char *w, uint64_t d, int n) {
    d >>= 8 * (8 - n); /* the first digits are the low bytes */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(w, &d, 8);
#else
    for (int i = 0; i < n; i++) w[i] = (char)(d >> 8 * i);
#endif
    return w + n;
}

/* v (< 10^8) in decimal, without leading zeros (a 0 is "0"): the count of leading '0'
 * digits from the lowest nonzero byte of the digits less '0' (the last digit's byte
 * flagged, which a 0 leaves as the only one). Returns the end; see put8's scratch. */
static char *put_head(char *w, uint32_t v) {
    uint64_t d = digits8(v);
    int zeros = __builtin_ctzll((d ^ 0x3030303030303030u) | (uint64_t)1 << 56) >> 3;
    return put8(w, d, 8 - zeros);
}

/* v in decimal, eight digits at a time: the first up to eight, then whole groups. */
static char *put_u(char *w, uint64_t v) {
    if (v < 100000000u) return put_head(w, (uint32_t)v);
    uint64_t rest = v / 100000000u;
    uint32_t lo = (uint32_t)(v - rest * 100000000u);
    if (rest < 100000000u) {
        w = put_head(w, (uint32_t)rest);
    } else {
        uint64_t top = rest / 100000000u; /* at most 1844 */
        w = put_head(w, (uint32_t)top);
        w = put8(w, digits8((uint32_t)(rest - top * 100000000u)), 8);
    }
    return put8(w, digits8(lo), 8);
}

static char *put_signed(char *w, uint64_t raw) {
    long long v = (long long)raw;
    if (v < 0) *w++ = '-';
    return put_u(w, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
}

/* "sec.nsec:size:ino:change", as snprintf's "%lld.%09lld:%lld:%llu:%llu" would write
 * it, without the format parser: every file read makes one (at most 93 bytes). Written
 * in a buffer with room for put8's scratch bytes, then copied out whole. */
void asset__fstat_version(const asset__fstat_t *st, char out[96]) {
    char b[96 + 8];
    char *w = put_signed(b, st->vraw[0]);
    *w++ = '.';
    uint64_t ns = st->vraw[1]; /* nanoseconds: 0 to 999,999,999, nine digits */
    if (ns < 1000000000u) {
        *w++ = (char)('0' + ns / 100000000u);
        w = put8(w, digits8((uint32_t)(ns % 100000000u)), 8);
    } else { /* no clock gives these; printed whole, as %09lld does */
        w = put_u(w, ns);
    }
    *w++ = ':';
    w = put_signed(w, st->vraw[2]);
    *w++ = ':';
    w = put_u(w, st->vraw[3]);
    *w++ = ':';
    w = put_u(w, st->vchange);
    *w = 0;
    memcpy(out, b, (size_t)(w - b) + 1);
}

bool asset__fstat_racy(const asset__fstat_t *st) {
#ifdef __EMSCRIPTEN__
    /* its file systems keep milliseconds: a whole second there is chance (1 in 1000) */
    if (!asset__fs_coarse_times) return false;
#endif
    if (st->vraw[1] != 0) return false; /* a time finer than seconds */
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return true;
    return (long long)now.tv_sec < (long long)st->vraw[0] + 3;
}

/* EAGAIN / EWOULDBLOCK: an O_NONBLOCK open (asset__file_open) that meets a conflicting
 * lease (Linux: F_SETLEASE, which Samba takes for oplocks; the lease is broken and let go
 * of) or a mandatory lock; EBUSY: a file system that says the file is in use. ETXTBSY
 * is met only by an open for writing, which no read makes. */
bool asset__errno_transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EBUSY; }

int asset__file_stat(asset__file_t *f, asset__fstat_t *st) {
    struct stat s;
    if (fstat(fd_of(f), &s) != 0) return -errno;
    fill_stat(&s, st);
    return 0;
}

int64_t asset__file_read(asset__file_t *f, void *buf, size_t n) {
    for (;;) {
        ssize_t got = read(fd_of(f), buf, n);
        if (got >= 0) return (int64_t)got;
        if (errno != EINTR) return -errno;
    }
}

void asset__file_close(asset__file_t *f) {
    if (f) close(fd_of(f));
}

/* ---- mappings ---- */

#if defined(__EMSCRIPTEN__) || defined(ASSET_NO_MMAP)
/* the web build: Emscripten's mmap copies the file anyway; the caller reads it */
int asset__file_map(asset__file_t *f, size_t size, void **data, void **token) {
    (void)f;
    (void)size;
    *data = *token = NULL;
    return -ENOSYS;
}
void asset__unmap(void *data, void *token) {
    (void)data;
    (void)token;
}
#else
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* A mapping of at least this many bytes starts on a boundary of this size and is
 * advised for huge pages (where the OS has MADV_HUGEPAGE): when the page cache holds
 * the file in folios of that size (a file read from disk, not one just written), each
 * 2 MiB is one page-table entry, so touching the data takes 1/512 of the faults and
 * TLB entries (docs/performance.md, large_file). */
#define HUGE_MAP ((size_t)2 << 20)

/* The 0 after the data, where the data ends inside a page: the kernel zero-filled the
 * rest of that page, but it is the file's page, and bytes appended to the file since
 * its size was taken (or later) would show there. Writing the 0 gives the mapping its
 * own copy of that one page (MAP_PRIVATE): the 0 stays whatever happens to the file.
 * A file found shorter than size by now is not mapped (-EAGAIN: the caller reads it;
 * the write would fault), whatever the size: one that fills its last page was mapped
 * over the pages the file had lost, which the first touch of them turned into SIGBUS. */
static int terminate(asset__file_t *f, char *base, size_t size, size_t page) {
    struct stat st;
    if (fstat(fd_of(f), &st) != 0) return -errno;
    if ((uint64_t)st.st_size < (uint64_t)size) return -EAGAIN;
    if (size % page == 0) return 0; /* an anonymous zero page follows */
    char *last = base + size / page * page;
    if (mprotect(last, page, PROT_READ | PROT_WRITE) != 0) return -errno;
    last[size % page] = 0;
    (void)mprotect(last, page, PROT_READ);
    return 0;
}

int asset__file_map(asset__file_t *f, size_t size, void **data, void **token) {
    *data = *token = NULL;
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    if (!size || size > SIZE_MAX - page - HUGE_MAP) return -EINVAL;
    /* the 0 byte after the data: in the file's last page (terminate), unless the data
     * fills the page; then an anonymous (zero) page follows.
     * An anonymous reservation is made first (with room to align a large mapping) and
     * the file mapped over its front; what is left of it at either end is unmapped */
    size_t len = (size / page + 1) * page; /* the file's pages, or those and a zero page */
    size_t align = 0;
#ifdef MADV_HUGEPAGE
    if (size >= HUGE_MAP) align = HUGE_MAP;
#endif
    if (size % page && !align) {
        void *base = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd_of(f), 0);
        if (base == MAP_FAILED) return -errno;
        int err = terminate(f, base, size, page);
        if (err) {
            munmap(base, len);
            return err;
        }
        *data = base;
        *token = (void *)(uintptr_t)len;
        return 0;
    }
    size_t span = len + align;
    char *res = mmap(NULL, span, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (res == MAP_FAILED) return -errno;
    char *base = align ? (char *)(((uintptr_t)res + align - 1) & ~(uintptr_t)(align - 1)) : res;
    if (mmap(base, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd_of(f), 0) == MAP_FAILED) {
        int err = errno;
        munmap(res, span);
        return -err;
    }
    size_t head = (size_t)(base - res), tail = span - head - len;
    if (head) munmap(res, head);
    if (tail) munmap(base + len, tail);
    int err = terminate(f, base, size, page);
    if (err) {
        munmap(base, len);
        return err;
    }
#ifdef MADV_HUGEPAGE
    if (align) (void)madvise(base, size, MADV_HUGEPAGE); /* a hint only; the whole file part */
#endif
    *data = base;
    *token = (void *)(uintptr_t)len;
    return 0;
}

void asset__unmap(void *data, void *token) {
    if (data) munmap(data, (size_t)(uintptr_t)token);
}
#endif

/* ---- directories ---- */

void asset__dir_close(asset__dir_t *d) {
    if (!d) return;
    if (d->stream)
        closedir(d->stream);
    else
        close(d->fd);
    asset_free(d);
}

int asset__dir_next(asset__dir_t *d, const char **name, int *kind) {
    if (!d->stream && !(d->stream = fdopendir(d->fd))) return -errno;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d->stream);
        if (!e) return errno ? -errno : 0;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        *name = e->d_name;
        *kind = ASSET__KIND_OTHER;
#ifdef DT_LNK /* d_type is an extension: Linux, macOS and the BSDs have it */
        if (e->d_type == DT_REG) *kind = ASSET__KIND_FILE;
        if (e->d_type == DT_DIR) *kind = ASSET__KIND_DIR;
        if (e->d_type == DT_LNK) *kind = ASSET__KIND_LINK;
#endif
        return 1;
    }
}

int asset__dir_stat_entry(asset__dir_t *d, const char *name, asset__fstat_t *st) {
    struct stat s;
    if (fstatat(d->fd, name, &s, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    fill_stat(&s, st);
    return 0;
}

int asset__dir_open_entry(asset__dir_t *d, const char *name, asset__dir_t **out) {
    *out = NULL;
    int fd = openat(d->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ELOOP ? -EXDEV : -errno; /* a link, refused (not a loop) */
    return new_dir(fd, out);
}
