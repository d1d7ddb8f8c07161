/* floor_common.h - what the floor tools (small_floor, hit_floor) share: dying with a
 * message, allocation, medians, and the 10,000 files of 4 KiB they load. Each tool is
 * one translation unit that defines FLOOR_NAME and includes this once. */
#ifndef ASSET_FLOOR_COMMON_H
#define ASSET_FLOOR_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define COUNT 10000
#define SIZE 4096

static char *g_paths[COUNT], *g_uris[COUNT];
static char *g_dir; /* the files' directory */

static inline void die(const char *what) {
    fprintf(stderr, FLOOR_NAME ": %s: %s\n", what, strerror(errno));
    exit(1);
}

static inline void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) die("malloc");
    return p;
}

static inline int floor_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, floor_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Makes g_dir under $TMPDIR (else /tmp) and its COUNT files of SIZE bytes, f00000.bin
 * on; g_uris[i] is uri_prefix + the path (uri_prefix NULL: "pkg://small/" + the name). */
static inline void floor_make_files(const char *uri_prefix) {
    const char *tmp = getenv("TMPDIR");
    if (asprintf(&g_dir, "%s/asset_floor_XXXXXX", tmp && *tmp ? tmp : "/tmp") < 0) die("asprintf");
    if (!mkdtemp(g_dir)) die("mkdtemp");
    uint8_t buf[SIZE];
    for (size_t i = 0; i < SIZE; i++) buf[i] = (uint8_t)(i * 131u + 7u);
    for (size_t i = 0; i < COUNT; i++) {
        if (asprintf(&g_paths[i], "%s/f%05zu.bin", g_dir, i) < 0 ||
            (uri_prefix ? asprintf(&g_uris[i], "%s%s", uri_prefix, g_paths[i])
                        : asprintf(&g_uris[i], "pkg://small/f%05zu.bin", i)) < 0)
            die("asprintf");
        int fd = open(g_paths[i], O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, SIZE) != SIZE || close(fd) != 0) die(g_paths[i]);
    }
}

/* Removes the files and g_dir: async-signal-safe (unlink and rmdir only). */
static inline void floor_remove_files(void) {
    if (!g_dir) return;
    for (size_t i = 0; i < COUNT; i++)
        if (g_paths[i]) unlink(g_paths[i]);
    rmdir(g_dir);
}

#endif
