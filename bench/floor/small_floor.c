/* small_floor - what the small_files CPU goal leaves a library on this machine.
 *
 * asset_bench's small_files_cpu compares the library's CPU per file, loading 10,000
 * files of 4 KiB with two workers, with a single-thread open/fstat/malloc/read/close
 * loop (goal: at most 1.3 times the loop's). This program measures, on the same kind
 * of files, what any library built like this one pays before it runs a line of its own
 * code:
 *
 *   loop          the single-thread loop (the goal's baseline)
 *   pool          two threads reading, the loading thread handing out the paths and
 *                 collecting the results (small_files_pool's hand-written pool)
 *   pool+records  the same pool, and per file the records the library keeps: as many
 *                 bytes as the library held at its peak per file, on the loading thread
 *                 (handle, job, URI block, batch item, map tables) and on the workers
 *                 (value, cache entry), one block each, written once, kept to the end
 *   library       asset_server_load_group + asset_batch_wait, two workers
 *   loop, prefaulted / library, prefaulted
 *                 the loop and the library again, their memory (the loop's buffers; every
 *                 allocation of the library, through asset_set_allocator) carved from
 *                 256 KiB chunks that the kernel populates in one call each
 *                 (MADV_POPULATE_WRITE) instead of a page fault per page: what memory
 *                 costs here when it is not faulted in page by page. Nothing is reused
 *                 within a run (a bump allocator), so these touch more memory, not less.
 *
 * It first measures what a fresh page of memory costs here: written by the process
 * (a page fault), or populated by the kernel in one call and then written.
 *
 * The record sizes are measured next, in this run, with a counting allocator that
 * tells the loading thread's allocations from the others'. pool+records then touches
 * about as much fresh memory as the library: compare their page faults per file.
 *
 * Every run is a fresh process (fork) that first loads the files once with the
 * library, as asset_bench's runs come after other library runs, then calls
 * malloc_trim(0) and measures, so that it faults its memory in as the bench's runs do.
 * A process per run because malloc_trim(0) gives back only the main arena's top, not a
 * thread arena's: in one process, a run after another could reuse memory the one
 * before faulted in. Prints medians; not a test (no goal is checked here). The files
 * go to a directory under $TMPDIR (else /tmp), removed at exit and on Ctrl-C.
 *
 * usage: small_floor [runs]      (default 5; docs/performance.md, twelfth round)
 *        FRESH=1 small_floor     without the library's load first in each process */
#define _GNU_SOURCE
#define FLOOR_NAME "small_floor"
#include "asset_server.h"
#include "floor_common.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pid_t g_parent;
static volatile pid_t g_child; /* the run in progress, stopped first on Ctrl-C */

static double cpu_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec * 1e-3;
}

static long faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

/* ---- the records the library keeps, counted by allocating thread ---- */

typedef struct hdr {
    size_t size;
    size_t main; /* allocated by the loading thread */
} hdr_t;

static _Thread_local bool t_main;
static atomic_size_t g_live[2], g_peak[2]; /* [1]: the loading thread's */

static void count(size_t n, bool m, bool add) {
    if (!add) {
        atomic_fetch_sub(&g_live[m], n);
        return;
    }
    size_t cur = atomic_fetch_add(&g_live[m], n) + n, p = atomic_load(&g_peak[m]);
    while (cur > p && !atomic_compare_exchange_weak(&g_peak[m], &p, cur)) {
    }
}

/* A file's buffer (its size, a NUL and a byte or two the reader reserves) is not a
 * record: the loop allocates it too. Everything else counts: handles, jobs, batch
 * items, map tables. */
static bool is_buffer(size_t n) { return n > SIZE && n <= SIZE + 16; }

static void *c_alloc(size_t n, void *user) {
    (void)user;
    hdr_t *h = malloc(sizeof *h + n);
    if (!h) return NULL;
    h->size = n;
    h->main = t_main;
    if (!is_buffer(n)) count(n, t_main, true);
    return h + 1;
}

static void c_free(void *p, void *user) {
    (void)user;
    if (!p) return;
    hdr_t *h = (hdr_t *)p - 1;
    if (!is_buffer(h->size)) count(h->size, h->main, false);
    free(h);
}

static void *c_realloc(void *p, size_t n, void *user) {
    if (!p) return c_alloc(n, user);
    hdr_t *h = (hdr_t *)p - 1;
    size_t old = h->size;
    bool m = h->main;
    hdr_t *nh = realloc(h, sizeof *nh + n);
    if (!nh) return NULL;
    if (!is_buffer(old)) count(old, m, false);
    nh->size = n;
    nh->main = t_main;
    if (!is_buffer(n)) count(n, t_main, true);
    return nh + 1;
}

/* ---- memory populated by the kernel, a chunk at a time ---- */

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif
#define CHUNK ((size_t)256 * 1024)

static _Thread_local uint8_t *t_chunk; /* this thread's chunk, and what is left of it */
static _Thread_local size_t t_left;
static bool g_populate_failed;

/* 16-byte aligned, from this thread's chunk; a block that does not fit gets a chunk of
 * its own. Never freed: the process ends with the run. */
static void *pf_alloc(size_t n, void *user) {
    (void)user;
    size_t need = (sizeof(size_t) * 2 + n + 15) & ~(size_t)15;
    if (need > t_left) {
        size_t len = need > CHUNK ? (need + 4095) & ~(size_t)4095 : CHUNK;
        void *c = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (c == MAP_FAILED) return NULL;
        if (madvise(c, len, MADV_POPULATE_WRITE) != 0) g_populate_failed = true;
        if (need > CHUNK) { /* its own chunk; the current one stays */
            *(size_t *)c = n;
            return (uint8_t *)c + sizeof(size_t) * 2;
        }
        t_chunk = c;
        t_left = CHUNK;
    }
    uint8_t *p = t_chunk;
    t_chunk += need;
    t_left -= need;
    *(size_t *)(void *)p = n;
    return p + sizeof(size_t) * 2;
}

static void pf_free(void *p, void *user) {
    (void)p;
    (void)user;
}

static void *pf_realloc(void *p, size_t n, void *user) {
    void *q = pf_alloc(n, user);
    if (q && p) {
        size_t old = *(size_t *)(void *)((uint8_t *)p - sizeof(size_t) * 2);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

/* ---- the runs ---- */

typedef struct result {
    double cpu;                                   /* us per file */
    double faults;                                /* per file */
    double rec_main, rec_worker;                  /* bytes per file (the counting run only) */
    double page_fault, page_populate, page_touch; /* us per page (the pages run only) */
} result_t;

static size_t g_rec_main, g_rec_worker; /* the library's records: bytes per file */
static size_t g_pool_worker;            /* what a pool run's worker makes per file */

static asset_server_t *server(void) {
    asset_server_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_workers = 2;
    asset_server_t *s = asset_server_create(&cfg);
    if (!s) die("asset_server_create");
    return s;
}

static asset_batch_t *load_all(asset_server_t *s) {
    asset_load_options_t o;
    memset(&o, 0, sizeof o);
    o.loader = "bytes";
    asset_batch_t *b = asset_server_load_group(s, (const char *const *)g_uris, COUNT, &o);
    if (!b || asset_batch_wait(b, -1) != ASSET_OK || asset_batch_completed_count(b) != COUNT) {
        fprintf(stderr, "small_floor: the library did not load every file\n");
        exit(1);
    }
    return b;
}

static void run_counting(result_t *r) {
    asset_allocator_t a = {c_alloc, c_realloc, c_free, NULL};
    asset_set_allocator(&a); /* before any other call of the library */
    t_main = true;
    asset_server_t *s = server();
    size_t base[2] = {atomic_load(&g_live[0]), atomic_load(&g_live[1])};
    atomic_store(&g_peak[0], base[0]);
    atomic_store(&g_peak[1], base[1]);
    asset_batch_t *b = load_all(s);
    r->rec_worker = (double)(atomic_load(&g_peak[0]) - base[0]) / COUNT;
    r->rec_main = (double)(atomic_load(&g_peak[1]) - base[1]) / COUNT;
    asset_batch_release(b);
    asset_server_destroy(s);
}

static void run_library(result_t *r) {
    asset_server_t *s = server();
    malloc_trim(0);
    long f0 = faults();
    double c0 = cpu_us();
    asset_batch_t *b = load_all(s);
    r->cpu = (cpu_us() - c0) / COUNT;
    r->faults = (double)(faults() - f0) / COUNT;
    asset_batch_release(b);
    asset_server_destroy(s);
}

typedef struct slot {
    uint8_t *data;
    size_t size;
    void *rec_main, *rec_worker;
} slot_t;

static slot_t g_slots[COUNT];

static void *record(size_t n) {
    if (!n) return NULL;
    void *p = xmalloc(n);
    memset(p, 0, n); /* written once, as a calloc'd record is */
    return p;
}

static bool g_prefaulted; /* read_one's buffers come from pf_alloc */

static void read_one(size_t i) {
    int fd = open(g_paths[i], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) die(g_paths[i]);
    size_t n = (size_t)st.st_size, got = 0;
    uint8_t *buf = g_prefaulted ? pf_alloc(n + 1, NULL) : xmalloc(n + 1);
    if (!buf) die("pf_alloc");
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0) die(g_paths[i]);
        got += (size_t)k;
    }
    close(fd);
    buf[got] = 0;
    g_slots[i].data = buf;
    g_slots[i].size = got;
}

static void run_loop(result_t *r) {
    malloc_trim(0);
    long f0 = faults();
    double c0 = cpu_us();
    for (size_t i = 0; i < COUNT; i++) read_one(i);
    r->cpu = (cpu_us() - c0) / COUNT;
    r->faults = (double)(faults() - f0) / COUNT;
}

/* The loading thread hands out paths as it makes each file's record; two workers read
 * them and make theirs; the loading thread waits for the last. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_work = PTHREAD_COND_INITIALIZER, g_done = PTHREAD_COND_INITIALIZER;
static size_t g_handed, g_taken, g_finished;

static void *worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_lock);
    for (;;) {
        while (g_taken == g_handed && g_taken < COUNT) pthread_cond_wait(&g_work, &g_lock);
        if (g_taken == COUNT) break;
        size_t i = g_taken++;
        pthread_mutex_unlock(&g_lock);
        read_one(i);
        g_slots[i].rec_worker = record(g_pool_worker);
        pthread_mutex_lock(&g_lock);
        if (++g_finished == COUNT) pthread_cond_signal(&g_done);
    }
    pthread_mutex_unlock(&g_lock);
    return NULL;
}

/* rec_main and rec_worker: bytes of records per file on each side (0: none). */
static void run_pool(result_t *r, size_t rec_main, size_t rec_worker) {
    g_pool_worker = rec_worker;
    malloc_trim(0);
    long f0 = faults();
    double c0 = cpu_us();
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        if (pthread_create(&t[k], NULL, worker, NULL) != 0) die("pthread_create");
    for (size_t i = 0; i < COUNT; i++) {
        g_slots[i].rec_main = record(rec_main);
        pthread_mutex_lock(&g_lock);
        g_handed = i + 1;
        pthread_cond_signal(&g_work);
        pthread_mutex_unlock(&g_lock);
    }
    pthread_mutex_lock(&g_lock);
    pthread_cond_broadcast(&g_work); /* all handed out: a worker still waiting leaves */
    while (g_finished < COUNT) pthread_cond_wait(&g_done, &g_lock);
    pthread_mutex_unlock(&g_lock);
    r->cpu = (cpu_us() - c0) / COUNT;
    r->faults = (double)(faults() - f0) / COUNT;
    for (int k = 0; k < 2; k++) pthread_join(t[k], NULL);
}

enum { LOOP, POOL, POOL_RECORDS, LIBRARY, LOOP_PF, LIBRARY_PF, KINDS, COUNTING = KINDS, PAGES };

/* What a fresh page of memory costs: written first by this process (a page fault), or
 * populated by the kernel in one call for all (MADV_POPULATE_WRITE) and then written.
 * COUNT pages, as many as the runs' files. */
static void run_pages(result_t *r) {
    size_t len = (size_t)COUNT * 4096;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) die("mmap");
        double c0 = cpu_us();
        if (pass == 1 && madvise(p, len, MADV_POPULATE_WRITE) != 0) g_populate_failed = true;
        double c1 = cpu_us();
        for (size_t i = 0; i < len; i += 4096) p[i] = 1;
        double c2 = cpu_us();
        if (pass == 0) {
            r->page_fault = (c2 - c1) / COUNT;
        } else {
            r->page_populate = (c1 - c0) / COUNT;
            r->page_touch = (c2 - c1) / COUNT;
        }
        munmap(p, len);
    }
}
static const char *const g_names[] = {"loop",    "pool",        "pool+records",
                                      "library", "loop, pref.", "library, pref."};

/* Runs one kind in a fresh process; its result through a pipe. */
static result_t in_child(int kind) {
    int fd[2];
    if (pipe(fd) != 0) die("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(fd[0]);
        result_t r;
        memset(&r, 0, sizeof r);
        if (kind == LIBRARY_PF) { /* before any other call of the library */
            asset_allocator_t a = {pf_alloc, pf_realloc, pf_free, NULL};
            asset_set_allocator(&a);
        }
        if (kind != COUNTING && getenv("FRESH") == NULL) run_library(&r); /* the bench's history */
        switch (kind) {
        case LOOP: run_loop(&r); break;
        case POOL: run_pool(&r, 0, 0); break;
        case POOL_RECORDS: run_pool(&r, g_rec_main, g_rec_worker); break;
        case LIBRARY: run_library(&r); break;
        case LOOP_PF:
            g_prefaulted = true;
            run_loop(&r);
            break;
        case LIBRARY_PF: run_library(&r); break;
        case PAGES: run_pages(&r); break;
        default: run_counting(&r); break;
        }
        if (g_populate_failed) {
            fprintf(stderr, "small_floor: madvise(MADV_POPULATE_WRITE): %s\n", strerror(errno));
            _exit(1);
        }
        _exit(write(fd[1], &r, sizeof r) == (ssize_t)sizeof r ? 0 : 1);
    }
    g_child = pid;
    close(fd[1]);
    result_t r;
    ssize_t n = read(fd[0], &r, sizeof r);
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    g_child = 0;
    if (n != (ssize_t)sizeof r || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "small_floor: the %s run failed\n", kind < KINDS ? g_names[kind] : "?");
        exit(1);
    }
    return r;
}

static void cleanup(void) { /* async-signal-safe: unlink and rmdir only */
    if (getpid() == g_parent) floor_remove_files();
}

static void on_signal(int sig) {
    if (g_child > 0 && getpid() == g_parent) {
        kill(g_child, SIGKILL);
        waitpid(g_child, NULL, 0);
    }
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > 100) {
        fprintf(stderr, "usage: small_floor [runs 1..100]\n");
        return 2;
    }
    g_parent = getpid();
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    floor_make_files("file://");
    result_t c = in_child(COUNTING);
    g_rec_main = (size_t)(c.rec_main + 0.5);
    g_rec_worker = (size_t)(c.rec_worker + 0.5);
    printf("the library's records at their peak, per file: %zu B on the loading thread, "
           "%zu B on the workers (the file's buffer not counted)\n",
           g_rec_main, g_rec_worker);
    in_child(LOOP); /* warm: the page cache, the dentries */
    in_child(LIBRARY);
    double pg[3][100];
    for (int i = 0; i < runs; i++) {
        result_t r = in_child(PAGES);
        pg[0][i] = r.page_fault;
        pg[1][i] = r.page_populate;
        pg[2][i] = r.page_touch;
    }
    printf("a fresh page, written: %.2f us (a page fault); populated by the kernel: %.2f us, "
           "then written: %.2f us\n",
           median(pg[0], runs), median(pg[1], runs), median(pg[2], runs));
    double cpu[KINDS][100], flt[KINDS][100], med[KINDS];
    for (int i = 0; i < runs; i++)
        for (int k = 0; k < KINDS; k++) {
            int kind = (k + i) % KINDS; /* a different one first each round */
            result_t r = in_child(kind);
            cpu[kind][i] = r.cpu;
            flt[kind][i] = r.faults;
        }
    printf("%-15s %14s %14s %12s   (medians of %d fresh processes each)\n", "", "CPU per file",
           "x the loop", "faults/file", runs);
    for (int k = 0; k < KINDS; k++) {
        med[k] = median(cpu[k], runs);
        printf("%-15s %11.2f us %14.2f %12.3f\n", g_names[k], med[k], med[k] / med[LOOP],
               median(flt[k], runs));
    }
    printf("prefaulted: the library at %.2f x the loop; memory populated by the kernel saves "
           "the loop %.2f us per file, the library %.2f\n",
           med[LIBRARY_PF] / med[LOOP_PF], med[LOOP] - med[LOOP_PF],
           med[LIBRARY] - med[LIBRARY_PF]);
    return 0;
}
