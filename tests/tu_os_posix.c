/* tu_os_posix.c - see tu_os.h; also tu_mkdtemp and tu_rmrf of test_util.h. */
#include "test_util.h"
#include "tu_os.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int tu_os_mkdir(const char *path) { return mkdir(path, 0755) == 0 ? 0 : -1; }

FILE *tu_os_fopen(const char *path, const char *mode) { return fopen(path, mode); }
bool tu_os_any_file_name(void) { return true; }
bool tu_os_windows_paths(void) { return false; }
bool tu_os_under_wine(void) { return false; }

int tu_os_getcwd(char *buf, size_t n) { return getcwd(buf, n) ? 0 : -1; }
int tu_os_chdir(const char *path) { return chdir(path); }

int tu_os_setenv(const char *name, const char *value) { return setenv(name, value, 1); }
int tu_os_unsetenv(const char *name) { return unsetenv(name); }
int tu_os_unlink(const char *path) { return unlink(path); }
int tu_os_rename_replace(const char *from, const char *to) { return rename(from, to); }

int tu_os_shift_mtime(const char *path, long delta_s) {
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    struct timespec ts[2] = {sb.st_atim, sb.st_mtim};
    ts[1].tv_sec += delta_s;
    return utimensat(AT_FDCWD, path, ts, 0);
}

int tu_os_touch(const char *path) {
    struct timespec ts[2] = {{.tv_nsec = UTIME_NOW}, {.tv_nsec = UTIME_NOW}};
    return utimensat(AT_FDCWD, path, ts, 0);
}

char *tu_os_short_name(const char *path) {
    (void)path;
    return NULL;
}

int tu_os_link_tmpfile(const char *dir, const char *path, const char *text) {
#ifdef O_TMPFILE
    int fd = open(dir, O_TMPFILE | O_WRONLY, 0644);
    if (fd < 0) return -1;
    size_t n = strlen(text);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int rc = write(fd, text, n) == (ssize_t)n && unlink(path) == 0 &&
                     linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0
                 ? 0
                 : -2;
    close(fd);
    return rc;
#else
    (void)dir;
    (void)path;
    (void)text;
    return -1;
#endif
}

bool tu_os_has_symlinks(void) { return true; }
bool tu_os_has_fifos(void) {
#ifdef __EMSCRIPTEN__
    return false; /* web build under node (NODERAWFS): mkfifo makes a regular file */
#else
    return true;
#endif
}
bool tu_os_has_modes(void) { return geteuid() != 0; } /* root reads anything */
int tu_os_symlink(const char *target, const char *linkpath) { return symlink(target, linkpath); }
int tu_os_mkfifo(const char *path) { return mkfifo(path, 0644); }
int tu_os_chmod(const char *path, unsigned mode) { return chmod(path, (mode_t)mode); }

int tu_os_system(const char *cmd) {
    int rc = system(cmd);
    return rc >= 0 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

char *tu_os_quote(const char *arg) {
    size_t n = 3;
    for (const char *c = arg; *c; c++) n += *c == '\'' ? 4 : 1;
    char *q = malloc(n), *o = q;
    *o++ = '\'';
    for (const char *c = arg; *c; c++) {
        if (*c == '\'') {
            memcpy(o, "'\\''", 4);
            o += 4;
        } else {
            *o++ = *c;
        }
    }
    *o++ = '\'';
    *o = 0;
    return q;
}

void tu_os_yield(void) { sched_yield(); }
void tu_os_watchdog(unsigned seconds) { alarm(seconds); }

int tu_os_open_handles(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

const char *tu_os_devnull(void) { return "/dev/null"; }

char *tu_mkdtemp(void) {
    const char *t = getenv("TMPDIR");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/asset_test_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        abort();
    }
    return strdup(buf);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

/* musl's nftw (Emscripten's) does not descend deeper than its descriptor limit, where
 * glibc's reopens: 128 covers the deepest tree a test makes (66 levels, test_batch). */
void tu_rmrf(const char *path) {
    if (path) nftw(path, rm_one, 128, FTW_DEPTH | FTW_PHYS);
}

tu_os_hold_t *tu_os_hold_exclusive(const char *path) {
    (void)path;
    errno = ENOSYS; /* POSIX opens do not exclude each other */
    return NULL;
}
int tu_os_hold_write(tu_os_hold_t *h, const char *text) {
    (void)h;
    (void)text;
    return -1;
}
void tu_os_hold_release(tu_os_hold_t *h) { (void)h; }
