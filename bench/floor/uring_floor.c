/* uring_floor - whether io_uring could take the small_files loop's place (Linux only).
 *
 * asset_bench's small_files goals compare the library with a loop of open, fstat,
 * malloc, read and close, one file after the other: four system calls per file. An
 * io_uring ring can carry the same work in far fewer system calls. This program
 * measures, on 10,000 files of 4 KiB in the page cache, the CPU per file of:
 *
 *   loop            the small_files baseline (open, fstat, malloc, read, close)
 *   uring, statx    what a loader needs: the size and a version (statx), then the file
 *                   opened into a registered slot, read and closed, three linked
 *                   operations, up to 64 files in flight, one thread
 *   uring, no stat  the same without the statx: the size known beforehand, no version
 *                   (a lower bound, not something a loader can do)
 *   statx, uring    the statx as a plain system call on the submitting thread (io_uring
 *                   hands its statx to a worker thread), then the same chain
 *
 * CPU is the process's, io_uring's own worker threads included. Prints medians; not a
 * test. The files go to a directory under $TMPDIR (else /tmp), removed at exit.
 *
 * usage: uring_floor [runs]      (default 5; docs/performance.md, sixteenth round) */
#define _GNU_SOURCE
#define FLOOR_NAME "uring_floor"
#include "floor_common.h"

#include <liburing.h>
#include <malloc.h>
#include <sys/stat.h>
#include <time.h>

#define INFLIGHT 64

static uint8_t *g_bufs[COUNT];
static unsigned g_slot_of[COUNT];
static unsigned g_free_slots[INFLIGHT], g_nfree; /* registered slots not in use */
static struct statx g_stx[COUNT];
static size_t g_got[COUNT];

static double clock_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void run_loop(void) {
    for (size_t i = 0; i < COUNT; i++) {
        int fd = open(g_paths[i], O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) die(g_paths[i]);
        g_bufs[i] = xmalloc((size_t)st.st_size + 1);
        ssize_t n = read(fd, g_bufs[i], (size_t)st.st_size);
        if (n < 0) die("read");
        g_got[i] = (size_t)n;
        close(fd);
    }
}

enum { OP_STAT, OP_OPEN, OP_READ, OP_CLOSE };

static struct io_uring_sqe *sqe_of(struct io_uring *ring, size_t i, int op) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) {
        errno = EBUSY;
        die("io_uring_get_sqe");
    }
    io_uring_sqe_set_data64(sqe, ((uint64_t)i << 2) | (uint64_t)op);
    return sqe;
}

/* open into a free slot, read size bytes, close: linked (the slot is free again once
 * the close completes; at most INFLIGHT files are in flight) */
static void chain(struct io_uring *ring, size_t i, size_t size) {
    g_bufs[i] = xmalloc(size + 1);
    unsigned slot = g_slot_of[i] = g_free_slots[--g_nfree];
    struct io_uring_sqe *o = sqe_of(ring, i, OP_OPEN);
    io_uring_prep_openat_direct(o, AT_FDCWD, g_paths[i], O_RDONLY, 0, slot);
    o->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe *r = sqe_of(ring, i, OP_READ);
    io_uring_prep_read(r, (int)slot, g_bufs[i], (unsigned)size, 0);
    r->flags |= IOSQE_FIXED_FILE | IOSQE_IO_LINK;
    io_uring_prep_close_direct(sqe_of(ring, i, OP_CLOSE), slot);
}

enum { STAT_NONE, STAT_RING, STAT_SYNC };

static void run_uring(struct io_uring *ring, int stat) {
    size_t next = 0, inflight = 0, done = 0;
    for (g_nfree = 0; g_nfree < INFLIGHT; g_nfree++) g_free_slots[g_nfree] = g_nfree;
    while (done < COUNT) {
        for (; next < COUNT && inflight < INFLIGHT; next++, inflight++) {
            if (stat == STAT_RING) {
                io_uring_prep_statx(sqe_of(ring, next, OP_STAT), AT_FDCWD, g_paths[next], 0,
                                    STATX_SIZE | STATX_MTIME | STATX_INO, &g_stx[next]);
            } else if (stat == STAT_SYNC) {
                if (statx(AT_FDCWD, g_paths[next], 0, STATX_SIZE | STATX_MTIME | STATX_INO,
                          &g_stx[next]) != 0)
                    die(g_paths[next]);
                chain(ring, next, (size_t)g_stx[next].stx_size);
            } else {
                chain(ring, next, SIZE);
            }
        }
        int rc = io_uring_submit_and_wait(ring, 1);
        if (rc < 0) {
            errno = -rc;
            die("io_uring_submit_and_wait");
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(ring, head, cqe) {
            seen++;
            size_t i = (size_t)(cqe->user_data >> 2);
            int op = (int)(cqe->user_data & 3);
            if (cqe->res < 0) {
                errno = -cqe->res;
                die(g_paths[i]);
            }
            if (op == OP_STAT)
                chain(ring, i, (size_t)g_stx[i].stx_size);
            else if (op == OP_READ)
                g_got[i] = (size_t)cqe->res;
            else if (op == OP_CLOSE) {
                g_free_slots[g_nfree++] = g_slot_of[i];
                done++;
                inflight--;
            }
        }
        io_uring_cq_advance(ring, seen);
    }
}

static void on_signal(int sig) {
    floor_remove_files();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 99) runs = 5;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    floor_make_files("file://");
    atexit(floor_remove_files);
    struct io_uring ring;
    int rc = io_uring_queue_init(INFLIGHT * 4, &ring, 0);
    if (rc == 0) rc = io_uring_register_files_sparse(&ring, INFLIGHT);
    if (rc < 0) {
        errno = -rc;
        die("io_uring (disabled here? /proc/sys/kernel/io_uring_disabled)");
    }
    static const char *const names[] = {"loop", "uring, statx", "uring, no stat", "statx, uring"};
    static const int stat_of[] = {0, STAT_RING, STAT_NONE, STAT_SYNC};
    double cpu[4][99], wall[4][99];
    for (int r = 0; r < runs; r++) {
        for (int m = 0; m < 4; m++) {
            malloc_trim(0);
            double c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_ns(CLOCK_MONOTONIC);
            if (m == 0)
                run_loop();
            else
                run_uring(&ring, stat_of[m]);
            cpu[m][r] = (clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / COUNT / 1000;
            wall[m][r] = (clock_ns(CLOCK_MONOTONIC) - w0) / COUNT / 1000;
            for (size_t i = 0; i < COUNT; i++) {
                if (g_got[i] != SIZE) {
                    errno = EIO;
                    die("short read");
                }
                free(g_bufs[i]);
            }
        }
    }
    io_uring_queue_exit(&ring);
    printf("%-16s %12s %10s %12s   (medians of %d runs, one process)\n", "", "CPU per file",
           "x the loop", "wall per file", runs);
    double loop = median(cpu[0], runs);
    for (int m = 0; m < 4; m++) {
        double c = median(cpu[m], runs);
        printf("%-16s %9.2f us %10.2f %9.2f us\n", names[m], c, c / loop, median(wall[m], runs));
    }
    return 0;
}
