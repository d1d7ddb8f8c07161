/* platform.h - everything that differs by operating system, behind one interface.
 *
 * One implementation per OS family, chosen by the build (CMakeLists.txt), never by an
 * #ifdef at a call site:
 *   fs_posix.c + beneath_linux.c   Linux: openat2(RESOLVE_BENEATH) fast path
 *   fs_posix.c + beneath_walk.c    macOS, the BSDs, and Linux with
 *                                  -DASSET_SERVER_GENERIC_POSIX=ON: an O_NOFOLLOW walk
 *   fs_win32.c                     Windows: CreateFileW, UTF-16, reparse points refused
 * fs.c, shared by all of them, reads files into requests and walks directories into
 * listings on top of the primitives below. Locks: lock_posix.c (POSIX and the web
 * build), lock_win32.c. Random bytes: random_posix.c (POSIX and the web build),
 * random_win32.c.
 *
 * Paths. The library's own form of an OS path uses '/' separators everywhere: POSIX
 * "/abs/x", Windows "C:/abs/x" (drive letter upper-cased). Conversions to the OS's form
 * (UTF-16, '\\') happen inside the implementation, right before each OS call.
 *
 * Errors are negative errno values from a small portable set (ENOENT, ENOTDIR, EACCES,
 * EPERM, EXDEV for an escape refused, ELOOP for a loop of links, ENOMEM, EMFILE,
 * ENFILE, EISDIR, EINVAL, EIO...); Win32 errors are mapped to them. Worker threads, no
 * lock held. */
#ifndef ASSET_PLATFORM_H
#define ASSET_PLATFORM_H

#include "asset_server.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- path syntax (any thread, pure) ---- */

/* Separator of the dirs in pkg_path and ASSET_SERVER_PKG_PATH: ':' POSIX, ';' Windows. */
extern const char asset__path_list_sep;
/* Length of the root of a path in the library's form: POSIX "/x" -> 1; Windows
 * "C:/x" -> 3. 0: relative (Windows: also "/x", which has no drive). */
size_t asset__path_root_len(const char *p);
/* Whether the first n bytes of path and prefix name the same directories: POSIX
 * compares bytes; Windows ignores the case of ASCII letters, as its file systems do
 * (another letter's case differing is refused: the safe way). */
bool asset__path_prefix_equal(const char *path, const char *prefix, size_t n);
/* Rewrites a path the user gave (a bare path, or the decoded path of a file:// URI,
 * from_uri) into the library's form, in place: Windows turns '\\' into '/', drops the
 * '/' of "/C:/x" and upper-cases the drive letter. Returns NULL, or why the path is
 * refused with *st set (FORBIDDEN: UNC and "\\\\?\\" paths, alternate data streams,
 * device names; INVALID: drive-relative "C:x"); POSIX refuses backslashes. */
const char *asset__path_prepare(char *p, bool from_uri, asset_status_t *st);
/* Why one path component (name, n bytes) cannot be opened safely on this OS, or NULL:
 * Windows refuses device names (CON, NUL, COM1...), ':' (alternate data streams) and
 * a trailing dot or space (which Windows strips, so "a.txt." would open "a.txt");
 * POSIX accepts every name. Used for pkg:// paths and file:// paths alike. */
const char *asset__path_component_refused(const char *name, size_t n);
/* Whether asset__path_component_refused refuses any name on this OS (false on POSIX):
 * a parse makes no call per component where it never does. */
extern const bool asset__path_components_checked;
/* The same for each '/'-separated component of path: the first reason, or NULL (fs.c). */
const char *asset__path_components_refused(const char *path);
/* Rewrites one file name, in place, into the form under which this OS's file systems
 * find it, so that two spellings of one file compare equal (the watch's events name a
 * file as its directory spells it): Windows folds every letter to upper case ("a.txt"
 * is A.TXT, "\u00e9.txt" is "\u00c9.txt"), or to its capital's small letter where that
 * is shorter ("\u2c6f" and "\u0250" are "\u0250"): never longer; POSIX keeps every
 * byte. */
void asset__path_fold_name(char *name);
/* The last component of path (library form, absolute) spelled as its directory stores
 * it, allocated (asset_free): what a directory watch's events call the file. Windows:
 * the name found in the directory, which opens under other spellings too (its 8.3
 * short name "LONGFI~1.TXT" for "long file.txt"; "\u00c9.txt" for "\u00e9.txt", a case
 * outside ASCII that asset__path_fold_name does not fold); NULL for an ASCII name
 * without '~', which differs only so. POSIX: NULL, names are bytes. NULL also when it cannot be
 * looked up (gone: the caller keeps the name as given), or out of memory (*oom set). */
char *asset__path_stored_name(const char *path, bool *oom);
/* A drive-relative path the user gave ("C:", "C:x": Windows reads it against drive C's
 * working directory, not the process's unless that is on C:) made absolute as the OS
 * resolves it now, in the library's form, allocated (asset_free). NULL when path is not
 * drive-relative (any path on POSIX), cannot be resolved, or out of memory (*oom set). */
char *asset__path_drive_full(const char *path, bool *oom);
/* The current directory in the library's form, or false. */
bool asset__getcwd(char *buf, size_t n);
/* The same, however long, allocated (asset_free it; fs.c): NULL when it is unknown
 * (removed, say), or when out of memory (*oom then set). */
char *asset__getcwd_dup(bool *oom);
/* fopen of a path in the library's form or as the user gave it, UTF-8: Windows opens it
 * by its UTF-16 name (the C library's fopen reads the bytes in the ANSI code page, and
 * made a file of another name), sharing reading, writing and deleting (CreateFileW: the
 * C library's _wfopen shares no deleting, another program could not rename or delete the
 * file while it was open); errno set on failure. mode: "r", "w" or "a", "b", "+". */
FILE *asset__fopen(const char *path, const char *mode);
/* Opens the file at path (UTF-8, as asset__fopen's) for writing ("wb"), cut to 0 bytes,
 * only if it is there: never creates it (ENOENT). POSIX: open() without O_CREAT, which
 * fs.protected_regular checks: in a sticky world-writable directory (/tmp) an O_CREAT
 * open of another user's file fails EACCES even where this user may write it (fopen's
 * "w" asks O_CREAT). Windows: CreateFileW's TRUNCATE_EXISTING, sharing as
 * asset__fopen's. NULL with errno set. */
FILE *asset__fopen_existing(const char *path);
/* Makes the file path (UTF-8, as asset__fopen's) and opens it for writing in binary
 * ("wb": a '\n' is one byte on every OS; Windows' text mode wrote "\r\n"), only if
 * nothing is there (EEXIST; a symlink there is not followed): O_CREAT | O_EXCL. POSIX:
 * made with its permission bits from the start, never wider for a moment: like's
 * (stat's mode & 0777, set whatever the umask by an fchmod of the new file), 0600 when
 * like cannot be looked at, 0666 & ~umask when like is NULL (a new file's). Windows:
 * CreateFileW's CREATE_NEW, sharing as asset__fopen's, like unused (the ACL is
 * inherited). NULL with errno set, nothing left at path. */
FILE *asset__fopen_new(const char *path, const char *like);
/* The writes that replace a file: asset__rename_over, asset__file_sync and
 * asset__dir_sync_of (fs.c) call their test hooks, the same on every OS, over the OS's
 * own call (os.h). */
/* Renames from over to, replacing a file there in one step (POSIX rename(); Windows
 * MoveFileExW with MOVEFILE_REPLACE_EXISTING, which fails while to is open anywhere):
 * 0, or -1 with errno set. Both UTF-8, as asset__fopen's. */
int asset__rename_over(const char *from, const char *to);
/* Test hook, NULL but in tests: when set, asset__rename_over calls it first, and when it
 * answers other than 0 fails with that answer as errno without renaming (a rename the OS
 * refuses: EACCES, EPERM). */
extern int (*asset__rename_over_hook)(const char *from, const char *to);
/* Removes the file path (UTF-8, as asset__fopen's): 0, or -1 with errno set. */
int asset__remove(const char *path);
/* What is at path itself, not following a last symlink (POSIX lstat; Windows: a reparse
 * point naming another file, a symlink, junction or mount point, is LINK, and one that
 * does not, a cloud placeholder, is what it holds; a name GetFileAttributesW does not
 * know as a file, such as "NUL", is not found): ASSET__KIND_*, or -errno (-ENOENT when
 * nothing is there). */
int asset__path_lkind(const char *path);
/* Writes f's buffered bytes (fflush) and has the OS put them on the disk (POSIX fsync;
 * Windows FlushFileBuffers), so that a file renamed over another after it is whole
 * after a power cut: 0, or -1 with errno set. A FIFO, a pipe, a terminal or a device
 * (not a regular file; Windows: not FILE_TYPE_DISK) has nothing to put there: 0 once
 * flushed (fsync would fail EINVAL, and FlushFileBuffers waits for a pipe's reader). */
int asset__file_sync(FILE *f);
/* Test hook, NULL but in tests: when set, asset__file_sync calls it instead of asking
 * the OS, and fails with its answer as errno unless it is 0. */
extern int (*asset__file_sync_hook)(FILE *f);
/* Has the OS put on the disk the directory that holds path (the part before its last
 * '/', "." when it has none), so that a rename into it survives a power cut (POSIX:
 * open the directory and fsync it; a rename's new name is a change of the directory,
 * which the file's own fsync does not cover). Windows: nothing, 0 (asset__rename_over
 * passes MOVEFILE_WRITE_THROUGH, which returns once the rename is on the disk, and
 * Win32 has no way to flush a directory). 0, or -1 with errno set. */
int asset__dir_sync_of(const char *path);
/* The name to hand libuv's uv_fs_event_start, uv_fs_stat or uv_fs_poll_start for dir
 * (a folder or a file, the library's form):
 * NULL to hand it dir itself (POSIX; Windows when dir fits in MAX_PATH), else dir's
 * "\\?\" form in UTF-8 (asset_free it; see asset__path_wide), which libuv converts
 * to UTF-16 and hands to GetFileAttributesW, GetLongPathNameW and CreateFileW as it is:
 * as given, a longer path fails there in a process that is not long-path aware. NULL
 * with *oom set when out of memory. */
char *asset__watch_path(const char *dir, bool *oom);
/* Test hook, NULL but in tests: when set, asset__dir_sync_of calls it with the
 * directory's path instead of asking the OS (POSIX only), and fails with its answer as
 * errno unless it is 0. */
extern int (*asset__dir_sync_hook)(const char *dir);
#ifdef _WIN32
/* (fs_win32.c) path, UTF-8 (the library's form or the user's), in the UTF-16 form the
 * Win32 calls of this layer take: '\\' separators; past MAX_PATH - 12 units, made
 * absolute and normalised (GetFullPathNameW: "." and ".." taken out) and prefixed
 * "\\?\" ("\\?\UNC\" for a share), which the MAX_PATH limit of a process that is not
 * long-path aware does not apply to. Into buf (cap units) when it fits, else allocated
 * (asset_free what is not buf); NULL with *err a negative errno. */
wchar_t *asset__path_wide(const char *path, wchar_t *buf, size_t cap, int *err);
#endif
/* The environment variable name (ASCII), in UTF-8, allocated (asset_free): NULL when it
 * is not set (or empty), or out of memory (*oom then set). Windows reads the UTF-16
 * environment (getenv gives it in the ANSI code page: '?' for a letter outside it). */
char *asset__getenv_dup(const char *name, bool *oom);

/* How many events the OS's queue of file change notifications holds before it drops
 * the later ones with a notice the watcher (libuv) does not pass on: Linux, inotify's
 * max_queued_events (16384 by default); 0 where there is no such queue, or a full one
 * is reported to the watch (Windows: libuv then names no file). The I/O thread. */
unsigned asset__watch_queue_max(void);

/* ---- files and directories (worker threads) ---- */

typedef struct asset__dir asset__dir_t;   /* an open directory */
typedef struct asset__file asset__file_t; /* an open file */

enum { ASSET__KIND_FILE, ASSET__KIND_DIR, ASSET__KIND_LINK, ASSET__KIND_OTHER };

typedef struct asset__fstat {
    int kind;         /* ASSET__KIND_* (a symlink or reparse point: LINK) */
    uint64_t size;    /* files */
    uint64_t vraw[4]; /* what the version is made of (mtime, size, identity), as numbers */
    uint64_t vchange; /* the change time, which a tool restoring the mtime does not set
                       * back: POSIX ctime in ns; Windows FILE_BASIC_INFO.ChangeTime in
                       * 100 ns ticks; 0 where the file system keeps none (FAT) */
    bool no_storage;  /* a file with a size but no blocks stored for it (POSIX st_blocks
                       * 0): a pseudo-file, whose size may be a guess (Linux sysfs says
                       * 4096 bytes for every attribute), or one all holes. Windows: never */
} asset__fstat_t;

/* The version string of a stat: changes whenever the content may have (mtime, size,
 * identity). Formatted only when asked (most reads never compare versions). */
void asset__fstat_version(const asset__fstat_t *st, char out[96]);
/* Whether st's last-write time is too coarse and too recent to tell the file as read
 * from one rewritten since with as many bytes: whole seconds (FAT's 2 s steps, ext3's
 * and HFS+'s 1 s, a share's) within 3 s of now, or ahead of it. Such a version is not
 * trusted (asset__fs_read_file): git's "racily clean" entries. A clock read, only for a
 * time in whole seconds. */
bool asset__fstat_racy(const asset__fstat_t *st);

/* Test hook: when true, every stat reports its times as FAT keeps them: the last-write
 * time rounded down to 2 s, and that as the change time (Linux's vfat; Windows keeps
 * none there). Lets tests meet a file system this machine cannot mount. Set it before
 * the server's threads exist. */
extern bool asset__fs_coarse_times;

/* Test hook: when true, implementations with a kernel fast path (Linux's openat2)
 * take their portable path instead. Set it before the server's threads exist. */
extern bool asset__fs_force_walk;
/* Test hook (defined by fs_win32.c only), NULL but in tests: called by the walk beneath a root
 * after each directory on the way (not the last component) is opened and checked, with that
 * directory's path beneath the root (rel, its first n bytes); a test swaps the
 * directory for a junction there. Set it while no load runs. */
extern void (*asset__fs_walk_hook)(const char *rel, size_t n);

/* Opens the directory at `path` (library form, absolute), following links: a root. */
int asset__dir_open(const char *path, asset__dir_t **out);
/* Opens `rel` ('/'-separated, normalised, no "..", "" for root itself) beneath root
 * without following any symlink or reparse point on the way (-EXDEV). */
int asset__dir_open_beneath(asset__dir_t *root, const char *rel, asset__dir_t **out);
int asset__file_open_beneath(asset__dir_t *root, const char *rel, asset__file_t **out);
/* Opens the file at `path` (library form, absolute), links followed. Never blocks
 * on a FIFO. */
int asset__file_open(const char *path, asset__file_t **out);
/* Whether `path` (library form, absolute) is itself a symbolic link (Windows: a
 * reparse point), not followed; false when it is not or cannot be looked at. */
bool asset__path_is_link(const char *path);
/* Whether path (symlinks followed) may still name the open directory d (one of
 * asset__dir_open): false when it names something else (d renamed away or deleted, and
 * the path made anew) or nothing (d renamed away and none made: its files were read
 * under the path's URIs); true when the path cannot be looked up (a process sandboxed
 * since, to which the path is closed but d open). watching: the server watches
 * (cfg.watch, development). POSIX compares always (a stat); Windows only when watching
 * (an open of the path and a look at its volume and file index), else says true with no
 * call: an open per load costs too much for a shipped game. Any thread. */
bool asset__dir_is_at(asset__dir_t *d, const char *path, bool watching);
int asset__file_stat(asset__file_t *f, asset__fstat_t *st);
/* Whether err (an errno value from opening or reading a file) is a state that passes by
 * itself, another program's hold on the file, so that the same open a moment later may
 * succeed: Windows, a sharing or lock violation (EBUSY: the file is open elsewhere
 * without sharing, or its range locked); POSIX, EAGAIN / EWOULDBLOCK (the O_NONBLOCK
 * open meets a conflicting lease, as Samba takes for its oplocks, or a mandatory lock)
 * and EBUSY (a file system that says so); never ETXTBSY (met only by an open for
 * writing). EAGAIN also comes from Linux's openat2() (beneath_linux.c) when renames
 * elsewhere outlast its tries: transient too, so such a reload is tried again as well.
 * A reload that fails so is tried again (reload.c); a load fails at once. */
bool asset__errno_transient(int err);
/* Reads up to n bytes: the count, 0 at the end, or a negative errno. */
int64_t asset__file_read(asset__file_t *f, void *buf, size_t n);
void asset__file_close(asset__file_t *f);
void asset__dir_close(asset__dir_t *d);

/* Directory entries, for a walk: */
/* The next entry's name (valid until the next call), without "." and "..", and
 * *kind as the directory listing says (ASSET__KIND_OTHER when it does not say).
 * Returns 1 for an entry, 0 at the end, or a negative errno. */
int asset__dir_next(asset__dir_t *d, const char **name, int *kind);
/* What the entry `name` of d is, without following it. */
int asset__dir_stat_entry(asset__dir_t *d, const char *name, asset__fstat_t *st);
/* Opens the subdirectory `name` of d, refusing a link (-EXDEV). */
int asset__dir_open_entry(asset__dir_t *d, const char *name, asset__dir_t **out);

/* Read-only mappings (zero-copy values of large immutable files). Worker threads map;
 * any thread unmaps. */
/* Maps the first `size` bytes (size > 0: the size fstat gave) of f read-only and
 * private, with one readable 0 byte right after them (data[size] == 0, which the parse
 * step promises loaders; POSIX puts an anonymous page after a size that fills its last
 * page). *data: the bytes; *token: what asset__unmap needs. The mapping outlives f
 * (close f at once). A file truncated under a mapping makes a later read of the lost
 * pages raise SIGBUS on POSIX (Windows refuses the truncation instead): map only files
 * that are immutable, or whose user opted in. Returns 0, or a negative errno: -ENOSYS
 * where this build or file cannot be mapped (the web build; Windows, when size is a
 * multiple of the page size, so no 0 byte would follow): the caller reads instead. */
int asset__file_map(asset__file_t *f, size_t size, void **data, void **token);
/* Releases a mapping of asset__file_map (the signature of asset_request_adopt's
 * free_fn). Any thread. */
void asset__unmap(void *data, void *token);

/* ---- locks (any thread) ---- */

/* Initialises m for a lock that many threads take for short critical sections (the
 * server's): on contention it spins a short while before it sleeps, where the OS
 * offers that (glibc's adaptive mutex; a critical section's spin count on Windows;
 * elsewhere a plain uv_mutex_init), so that a thread waiting out a critical section
 * of a microsecond is not put to sleep and woken, a context switch each way. Returns
 * 0 or a negative error; uv_mutex_destroy releases it. */
int asset__mutex_init_hot(uv_mutex_t *m);

/* ---- random bytes (any thread) ---- */

/* Fills buf with n bytes from the OS's source of random bytes (random_posix.c:
 * getentropy; random_win32.c: rand_s). false: it gave none (buf's bytes are then
 * unspecified). For seeds (map.c's hash), not for keys that must stay secret long. */
bool asset__os_random(void *buf, size_t n);

/* sockets: platform/socket.h (needs libcurl's types; the web build has no libcurl) */

#endif
