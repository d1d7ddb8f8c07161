/* tu_os.h - the OS-specific half of the test helpers: tu_os_posix.c or tu_os_win32.c,
 * chosen by tests/CMakeLists.txt. Paths are in the library's form ('/', and on
 * Windows a drive: "Z:/tmp/asset_test_1234"). Functions that return int return 0 on
 * success and -1 on failure (with errno set where the OS gives one). */
#ifndef TU_OS_H
#define TU_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Creates one directory (its parent exists); an existing one is fine. Returns 0 when
 * this call created it, -1 otherwise (already there: errno EEXIST), so a caller can
 * claim a fresh name among processes sharing a parent. */
int tu_os_mkdir(const char *path);

/* fopen() of a UTF-8 path (the library's form: _wfopen on Windows). */
FILE *tu_os_fopen(const char *path, const char *mode);
/* Whether a file name may hold any byte but '/' and NUL ('"', '\\', '?'...): not on
 * Windows. */
bool tu_os_any_file_name(void);

/* Whether paths follow Windows syntax (drive letters, '\\' a separator in file paths,
 * "//server" a UNC path, no names ending in '.'): the library's rules on Windows. */
bool tu_os_windows_paths(void);

/* Whether this Windows program runs under wine (ntdll exports wine_get_version). */
bool tu_os_under_wine(void);

/* getcwd(buf, n) (UTF-8) / chdir(path). */
int tu_os_getcwd(char *buf, size_t n);
int tu_os_chdir(const char *path);

/* setenv(name, value, 1) / unsetenv(name). */
int tu_os_setenv(const char *name, const char *value);
int tu_os_unsetenv(const char *name);

/* Removes a file. */
int tu_os_unlink(const char *path);
/* Renames from over to (replacing it if it exists, atomically where the OS can). */
int tu_os_rename_replace(const char *from, const char *to);
/* Moves the file's last-write time by delta_s seconds (atime untouched where the OS can). */
int tu_os_shift_mtime(const char *path, long delta_s);
/* Sets the file's access and last-write times to now (touch(1) without creating). */
int tu_os_touch(const char *path);

/* Replaces path by a file that never had a name: an O_TMPFILE in dir holding text,
 * then path removed and the file linked in its place (linkat through /proc). -1 (path
 * untouched) where the OS or file system has no O_TMPFILE: Windows, some file systems. */
int tu_os_link_tmpfile(const char *dir, const char *path, const char *text);

/* The path with its last component spelled as its 8.3 short name (Windows:
 * GetShortPathNameW, "Z:/tmp/x/LONGFI~1.TXT"), malloc'd; NULL where the OS or the file
 * system has none for it, or it is the name itself. */
char *tu_os_short_name(const char *path);

/* A file held open for writing without sharing, as some editors and exporters save
 * (Windows: CreateFileW with share mode 0): every other open of it fails with a sharing
 * violation until tu_os_hold_release. NULL where the OS has no such open (POSIX: opens
 * do not exclude each other), or on failure. */
typedef struct tu_os_hold tu_os_hold_t;
tu_os_hold_t *tu_os_hold_exclusive(const char *path);
/* Replaces the held file's content by text, through the hold. 0 or -1. */
int tu_os_hold_write(tu_os_hold_t *h, const char *text);
/* Closes the hold (NULL: nothing): the file can be opened again. */
void tu_os_hold_release(tu_os_hold_t *h);

/* Whether the OS (as the tests run) has what the POSIX-only cases need. On Windows:
 * false for all; the case is skipped with the reason printed (tu_os_skip). */
bool tu_os_has_symlinks(void); /* symlink(2) */
bool tu_os_has_fifos(void);    /* mkfifo(3) */
bool tu_os_has_modes(void);    /* chmod(2) enforced for us: not as root */
/* symlink(target, linkpath), mkfifo(path, 0644), chmod(path, mode): -1 where missing. */
int tu_os_symlink(const char *target, const char *linkpath);
int tu_os_mkfifo(const char *path);
int tu_os_chmod(const char *path, unsigned mode);

/* Runs a command line through the shell; its exit status, or -1 if it did not run. The
 * caller quotes with tu_os_quote. */
int tu_os_system(const char *cmd);
/* A shell-quoted copy of one argument ('...' on POSIX, "..." for cmd.exe); free() it. */
char *tu_os_quote(const char *arg);

/* sched_yield(): lets another thread run (mingw's sched_yield needs winpthreads). */
void tu_os_yield(void);

/* alarm(2): after `seconds`, ends the process with a failure (a hang becomes a
 * failure); 0 disarms it. */
void tu_os_watchdog(unsigned seconds);

/* How many descriptors (POSIX: entries of /proc/self/fd) or handles (Windows) the
 * process has open; -1 where the OS will not say. For leak checks: equal before/after. */
int tu_os_open_handles(void);

/* The null device's name, for the shell (">/dev/null" or ">NUL"). */
const char *tu_os_devnull(void);

/* Inside a cmocka test (cmocka.h included): skips the case, printing why, unless cond. */
#define TU_SKIP_UNLESS(cond, why)                             \
    do {                                                      \
        if (!(cond)) {                                        \
            print_message("  skipped on this OS: %s\n", why); \
            skip();                                           \
        }                                                     \
    } while (0)

#endif
