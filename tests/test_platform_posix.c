/* test_platform_posix.c - POSIX-only platform rules (built on POSIX systems only):
 * the build's choice of implementation is the one that runs (openat2 on Linux, the
 * O_NOFOLLOW walk with -DASSET_SERVER_GENERIC_POSIX=ON, as on macOS), and a backslash
 * stays a forbidden character rather than a separator. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "internal.h"
#include "platform/platform.h"
#include "platform/posix.h"
#include "platform/socket.h"
#include "test_util.h"
#include "tu_os.h"

/* CI runs the suite twice on Linux; this proves the second run really ran the code
 * macOS and the BSDs run: no kernel fast path, every open a component walk. */
static void test_the_built_implementation_is_the_one_running(void **state) {
    (void)state;
    const char *pf = getenv("ASSET_TEST_PLATFORM");
    if (!pf) skip();
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "sub/a.txt", "a", 1));
    int root = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(root >= 0);
    int fd = asset__open_beneath_fast(root, "sub/a.txt", O_RDONLY);
    if (!strcmp(pf, "generic-posix")) {
        assert_int_equal(fd, -ENOSYS);
    } else {
        assert_string_equal(pf, "linux");
        if (fd == -ENOSYS) { /* a kernel before 5.6, valgrind or TSan: the walk it is */
            close(root);
            tu_rmrf(dir);
            free(dir);
            skip();
            return;
        }
        assert_true(fd >= 0);
        close(fd);
    }
    /* either way, the full call opens the file */
    fd = asset__open_beneath(root, "sub/a.txt", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    close(root);
    tu_rmrf(dir);
    free(dir);
}

static void test_backslash_is_forbidden_not_a_separator(void **state) {
    (void)state;
    asset_server_t *s = tu_server(1);
    asset_handle_t *h = tu_load_wait(s, "dir\\file.txt", ASSET_E_FORBIDDEN);
    assert_non_null(strstr(asset_handle_error_message(h), "backslash"));
    asset_handle_release(h);
    asset_server_destroy(s);
}

/* Regression: the build's check for st_mtim ran without _GNU_SOURCE, failed, and every
 * version lost its nanoseconds: a touch, or two same-size saves within one second,
 * looked unchanged to revalidation (and to hot reload). */
static void test_file_versions_carry_nanoseconds(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_write_file(dir, "v.txt", "v", 1);
    struct timespec ts[2] = {{.tv_sec = 1700000000, .tv_nsec = 123456789},
                             {.tv_sec = 1700000000, .tv_nsec = 123456789}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    asset__file_t *f = NULL;
    assert_int_equal(asset__file_open(path, &f), 0);
    asset__fstat_t st;
    assert_int_equal(asset__file_stat(f, &st), 0);
    asset__file_close(f);
    char version[96];
    asset__fstat_version(&st, version);
    assert_non_null(strstr(version, "1700000000.123456789:"));
    tu_rmrf(dir);
    free(path);
    free(dir);
}

/* The version string is written without printf; it must read as the printf form did
 * (versions stored by an older build compare equal): every field's extremes, and
 * every count of digits. */
static void test_version_string_matches_its_printf_form(void **state) {
    (void)state;
    const int64_t secs[] = {0, 1, -1, 1700000000, INT64_MAX, INT64_MIN};
    const int64_t nsecs[] = {0, 7, 123456789, 999999999};
    const uint64_t sizes[] = {0, 4096, (uint64_t)INT64_MAX};
    const uint64_t inos[] = {0, 42, UINT64_MAX};
    const uint64_t changes[] = {0, 1700000000123456789u, UINT64_MAX};
    for (size_t a = 0; a < sizeof secs / sizeof secs[0]; a++)
        for (size_t b = 0; b < sizeof nsecs / sizeof nsecs[0]; b++)
            for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++)
                for (size_t d = 0; d < sizeof inos / sizeof inos[0]; d++)
                    for (size_t e = 0; e < sizeof changes / sizeof changes[0]; e++) {
                        asset__fstat_t st;
                        memset(&st, 0, sizeof st);
                        st.vraw[0] = (uint64_t)secs[a];
                        st.vraw[1] = (uint64_t)nsecs[b];
                        st.vraw[2] = sizes[c];
                        st.vraw[3] = inos[d];
                        st.vchange = changes[e];
                        char got[96], want[96];
                        asset__fstat_version(&st, got);
                        snprintf(want, sizeof want, "%lld.%09lld:%lld:%llu:%llu",
                                 (long long)secs[a], (long long)nsecs[b], (long long)sizes[c],
                                 (unsigned long long)inos[d], (unsigned long long)changes[e]);
                        assert_string_equal(got, want);
                    }
    /* every count of digits, each field in turn: the digits are written eight at a
     * time, the first group without its leading zeros (10^k - 1, 10^k, 10^k + 1) */
    uint64_t p = 1;
    for (int k = 0; k < 20; k++, p *= 10)
        for (int d = -1; d <= 1; d++)
            for (int field = 0; field < 5; field++) {
                uint64_t v = p + (uint64_t)(int64_t)d;
                uint64_t f[5] = {1700000000, 123456789, 4096, 42, 1700000000123456789u};
                if (field == 1 && v > 999999999) continue; /* nanoseconds */
                if ((field == 0 || field == 2) && v > (uint64_t)INT64_MAX) continue;
                f[field] = v;
                asset__fstat_t st;
                memset(&st, 0, sizeof st);
                memcpy(st.vraw, f, sizeof st.vraw);
                st.vchange = f[4];
                char got[96], want[96];
                asset__fstat_version(&st, got);
                snprintf(want, sizeof want, "%lld.%09lld:%lld:%llu:%llu", (long long)f[0],
                         (long long)f[1], (long long)f[2], (unsigned long long)f[3],
                         (unsigned long long)f[4]);
                assert_string_equal(got, want);
                if (field == 0 || field == 2) { /* and negative */
                    st.vraw[field] = 0 - v;     /* -v as the int64_t it is read as */
                    asset__fstat_version(&st, got);
                    snprintf(want, sizeof want, "%lld.%09lld:%lld:%llu:%llu", (long long)st.vraw[0],
                             (long long)f[1], (long long)st.vraw[2], (unsigned long long)f[3],
                             (unsigned long long)f[4]);
                    assert_string_equal(got, want);
                }
            }
}

/* On glibc the server's lock is an adaptive mutex (it spins before it sleeps); the
 * type lives in the mutex itself (glibc's __kind), there is no getter for it. */
static void test_server_lock_is_adaptive_on_glibc(void **state) {
    (void)state;
#if defined(__GLIBC__)
    uv_mutex_t m;
    assert_int_equal(asset__mutex_init_hot(&m), 0);
    assert_int_equal(m.__data.__kind & 0x7f, PTHREAD_MUTEX_ADAPTIVE_NP);
    uv_mutex_destroy(&m);
    asset_server_t *s = asset_server_create(NULL); /* and the server makes its lock so */
    assert_non_null(s);
    assert_int_equal(s->lock.__data.__kind & 0x7f, PTHREAD_MUTEX_ADAPTIVE_NP);
    asset_server_destroy(s);
#else
    skip();
#endif
}

/* The HTTP source's sockets (asset__socket_open) are close-on-exec: a process the host
 * starts does not inherit its connections. */
static void test_sockets_are_close_on_exec(void **state) {
    (void)state;
    int err = -1;
    curl_socket_t fd = asset__socket_open(AF_INET, SOCK_STREAM, 0, &err);
    assert_true(fd != CURL_SOCKET_BAD);
    assert_int_equal(err, 0);
    int flags = fcntl(fd, F_GETFD);
    assert_true(flags >= 0 && (flags & FD_CLOEXEC));
    assert_int_equal(asset__socket_close(fd), 0);
}

/* ---- large mappings: 2 MiB-aligned and advised for huge pages (Linux) ---- */

/* One line of /proc/self/maps. */
typedef struct vma {
    uintptr_t lo, hi;
    char perms[8];
    char path[512]; /* "" for an anonymous mapping */
} vma_t;

/* Calls fn on every mapping of this process until it returns true; false where there is
 * no /proc (or fn never did). */
static bool each_vma(bool (*fn)(const vma_t *v, void *arg), void *arg) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[1024];
    bool hit = false;
    while (!hit && fgets(line, sizeof line, f)) {
        vma_t v = {0};
        unsigned long long lo, hi;
        int at = 0;
        if (sscanf(line, "%llx-%llx %7s %*s %*s %*s%n", &lo, &hi, v.perms, &at) < 3) continue;
        v.lo = (uintptr_t)lo;
        v.hi = (uintptr_t)hi;
        char *pth = line + at;
        while (*pth == ' ') pth++;
        pth[strcspn(pth, "\n")] = 0;
        snprintf(v.path, sizeof v.path, "%s", pth);
        hit = fn(&v, arg);
    }
    fclose(f);
    return hit;
}

typedef struct probe {
    uintptr_t a; /* the address looked for */
    vma_t found; /* the mapping holding it, or that starts or ends there */
    const char *path;
} probe_t;

static bool holds(const vma_t *v, void *arg) {
    probe_t *p = arg;
    if (p->a < v->lo || p->a >= v->hi) return false;
    p->found = *v;
    return true;
}
/* A read-only anonymous mapping that starts at a, or ends there: what a reservation
 * left untrimmed would look like next to the mapping. */
static bool anon_ro_starts(const vma_t *v, void *arg) {
    return !v->path[0] && !strcmp(v->perms, "r--p") && v->lo == ((probe_t *)arg)->a;
}
static bool anon_ro_ends(const vma_t *v, void *arg) {
    return !v->path[0] && !strcmp(v->perms, "r--p") && v->hi == ((probe_t *)arg)->a;
}
static bool names(const vma_t *v, void *arg) { return !strcmp(v->path, ((probe_t *)arg)->path); }

/* Whether the mapping holding p is advised for huge pages ("hg" in its VmFlags). */
static bool advised_huge(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return false;
    char line[512];
    bool in = false, hg = false;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi;
        char c;
        if (sscanf(line, "%llx-%llx %c", &lo, &hi, &c) == 3) /* a mapping's first line */
            in = a >= lo && a < hi;
        else if (in && !strncmp(line, "VmFlags:", 8))
            hg = strstr(line, " hg") != NULL;
    }
    fclose(f);
    return hg;
}

/* A mapping of 2 MiB or more starts on a 2 MiB boundary and is advised for huge pages,
 * so that a page cache holding the file in 2 MiB folios maps it with one entry per
 * 2 MiB; it still gives the bytes and a 0 after them; it maps the file's pages (and a
 * zero page after a size that fills its last one) and nothing around them: the
 * reservation made to align it is trimmed at both ends; unmapping leaves none of it. */
static void test_large_mapping_is_aligned_and_advised_huge(void **state) {
    (void)state;
    if (access("/proc/self/maps", R_OK) != 0) skip();
    probe_t pr;
    char *dir = tu_mkdtemp();
    const size_t mib2 = (size_t)2 << 20, page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t sizes[] = {mib2 - 1, mib2, mib2 + 17, 2 * mib2 + 3 * page};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        size_t n = sizes[i];
        char *p;
        void *data, *token;
        assert_int_equal(tu_map_pattern(dir, "big.bin", n, &p, &data, &token), 0);
        uintptr_t a = (uintptr_t)data, file_end = a + (n + page - 1) / page * page;
        uintptr_t end = a + (n / page + 1) * page; /* with the zero page after a full one */
        pr = (probe_t){.a = a};
        assert_true(each_vma(holds, &pr)); /* the file, from its first byte */
        assert_true(pr.found.lo == a && strstr(pr.found.path, "big.bin"));
        pr = (probe_t){.a = file_end - 1};
        assert_true(each_vma(holds, &pr) && pr.found.hi == file_end);
        if (end != file_end) { /* the zero page: one page, anonymous, read-only */
            pr = (probe_t){.a = file_end};
            assert_true(each_vma(holds, &pr) && pr.found.lo == file_end && pr.found.hi == end);
            assert_string_equal(pr.found.path, "");
        }
        pr = (probe_t){.a = a};
        assert_false(each_vma(anon_ro_ends, &pr)); /* no head left of the reservation */
        pr = (probe_t){.a = end};
        assert_false(each_vma(anon_ro_starts, &pr)); /* no tail */
        if (n >= mib2) {
            assert_int_equal(a % mib2, 0);
            /* a kernel without transparent huge pages refuses the hint */
            if (access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0)
                assert_true(advised_huge(data));
        }
        tu_expect_pattern(data, n);
        asset__unmap(data, token);
        pr = (probe_t){.path = p};
        assert_false(each_vma(names, &pr)); /* unmapped */
        pr = (probe_t){.a = a};
        assert_false(each_vma(holds, &pr) && !pr.found.path[0] && !strcmp(pr.found.perms, "r--p"));
        free(p);
    }
    tu_rmrf(dir);
    free(dir);
}

/* A file found shorter than the size asked (it shrank between the fstat that gave the
 * size and the mmap: rewritten in place) is not mapped: -EAGAIN, the caller reads it.
 * Only a size ending inside a page was checked: a size that fills its last page (4 KiB,
 * 1 MiB, every power of two of a page or more) was mapped over the missing pages, and
 * the first touch of them (the parse) killed the process with SIGBUS. */
static void test_a_file_shorter_than_the_size_asked_is_not_mapped(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), mib2 = (size_t)2 << 20;
    const size_t asked[] = {page + 17, 2 * page, 4 * page, mib2, 2 * mib2, mib2 + 17};
    for (size_t i = 0; i < sizeof asked / sizeof *asked; i++) {
        size_t n = asked[i];
        char *p = tu_write_pattern(dir, "short.bin", n / 2); /* half of it is left */
        asset__file_t *f = NULL;
        assert_int_equal(asset__file_open(p, &f), 0);
        void *data = (void *)1, *token = (void *)1;
        int rc = asset__file_map(f, n, &data, &token);
        asset__file_close(f);
        if (rc == 0) {
            asset__unmap(data, token);
            fail_msg("a file of %zu bytes was mapped as %zu bytes", n / 2, n);
        }
        assert_int_equal(rc, -EAGAIN);
        assert_null(data);
        free(p);
    }
    tu_rmrf(dir);
    free(dir);
}

/* Loads a terminal's device (a pty made here) in a new session with no controlling
 * terminal, as a daemon is, by its path or beneath root; 0 when the load failed
 * E_UNSUPPORTED and the session still has no controlling terminal, else the step. */
static int tty_session_child(bool beneath) {
    if (setsid() < 0) return 10;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return 11;
    const char *name = ptsname(master);
    if (!name) return 12;
    char path[256];
    snprintf(path, sizeof path, "%s", name);
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    char root[256];
    snprintf(root, sizeof root, "%s", path);
    char *slash = strrchr(root, '/');
    *slash = 0;
    if (beneath) cfg.file_root = root;
    asset_server_t *s = asset_server_create(&cfg);
    if (!s) return 13;
    asset_handle_t *h = asset_server_load(s, beneath ? slash + 1 : path, NULL);
    asset_status_t st = h ? asset_handle_wait(h, 60000) : ASSET_E_NO_MEMORY;
    asset_handle_release(h);
    asset_server_destroy(s);
    if (st != ASSET_E_UNSUPPORTED) return 14;
    int tty = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
    if (tty >= 0) return 15; /* the load made the pty this session's terminal */
    close(master);
    return 0;
}

/* A terminal device is refused as "not a regular file", and its open must not make it
 * the controlling terminal of a session leader that has none (a daemon, a service):
 * without O_NOCTTY the load's open did, and the process then got SIGHUP (and lost its
 * terminal job control to that pty) when the terminal hung up. */
static void test_loading_a_terminal_never_makes_it_the_controlling_one(void **state) {
    (void)state;
    if (access("/dev/ptmx", R_OK | W_OK) != 0) skip();
    for (int beneath = 0; beneath < 2; beneath++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) _exit(tty_session_child(beneath != 0));
        int status = 0;
        while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) != 0)
            fail_msg("%s: step %d", beneath ? "beneath file_root" : "by path", WEXITSTATUS(status));
    }
}

/* Beneath file_root (and a directory package) Linux opens with openat2(); a seccomp
 * filter that refuses it with EPERM, not ENOSYS (container runtimes whose profiles
 * predate the call: Docker before 20.10), makes the open take the O_NOFOLLOW walk. A
 * mutation survivor (EPERM no longer sent to the walk, beneath_linux.c) passed every
 * suite: in such a container every load beneath a root failed E_FORBIDDEN. Run in a
 * child: the filter is for life. 0 when the load read the file, else the step. */
static int openat2_refused_child(const char *root) {
#if defined(__linux__) && defined(SYS_openat2) && defined(SECCOMP_MODE_FILTER)
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 77;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 77;
    /* ENOSYS: the call never reaches the filter (valgrind, which does not know it, answers
     * so itself; a kernel before 5.6): the library walks anyway, nothing to see here */
    long probe = syscall(SYS_openat2, AT_FDCWD, ".", NULL, 0);
    if (probe == -1 && errno == ENOSYS) return 77;
    if (probe != -1 || errno != EPERM) return 10;
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    cfg.file_root = root;
    asset_server_t *s = asset_server_create(&cfg);
    if (!s) return 11;
    asset_handle_t *h = asset_server_load(s, "d/a.txt", NULL);
    asset_status_t st = h ? asset_handle_wait(h, 60000) : ASSET_E_NO_MEMORY;
    const asset_bytes_t *b = st == ASSET_OK ? asset_handle_value(h) : NULL;
    int rc = !b ? 12 : b->size == 2 && !memcmp(b->data, "hi", 2) ? 0 : 13;
    asset_handle_release(h);
    asset_server_destroy(s);
    return rc;
#else
    (void)root;
    return 77; /* no openat2 here: the walk is the only way */
#endif
}

static void test_a_root_opens_where_a_seccomp_filter_refuses_openat2(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    free(tu_write_file(dir, "d/a.txt", "hi", 2));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(openat2_refused_child(dir));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) assert_int_equal(errno, EINTR);
    tu_rmrf(dir);
    free(dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) skip();
    if (WEXITSTATUS(status) != 0) fail_msg("step %d", WEXITSTATUS(status));
}

/* A file deeper than PATH_MAX: its path is longer than one open() or openat2() takes
 * (ENAMETOOLONG), though no component is too long. A recursive folder listing (one
 * directory descriptor at a time) found it; its load then failed E_IO "File name too
 * long" by path and beneath file_root with openat2, while the O_NOFOLLOW walk (macOS,
 * the BSDs) loaded it: the two implementations of an open beneath a root disagreed,
 * and a listed file could not be loaded. */
enum { DEEP_LEVELS = 24 };
static int deep_fds[DEEP_LEVELS + 1];
static const char *deep_name(void) {
    static char comp[201];
    memset(comp, 'd', 200);
    return comp;
}
static void deep_make(const char *dir) {
    deep_fds[0] = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(deep_fds[0] >= 0);
    for (int i = 0; i < DEEP_LEVELS; i++) {
        assert_int_equal(mkdirat(deep_fds[i], deep_name(), 0755), 0);
        deep_fds[i + 1] = openat(deep_fds[i], deep_name(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(deep_fds[i + 1] >= 0);
    }
    int f = openat(deep_fds[DEEP_LEVELS], "deep.txt", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(f >= 0);
    assert_int_equal(write(f, "deep", 4), 4);
    close(f);
}
static void deep_remove(void) {
    assert_int_equal(unlinkat(deep_fds[DEEP_LEVELS], "deep.txt", 0), 0);
    for (int i = DEEP_LEVELS; i > 0; i--) {
        close(deep_fds[i]);
        assert_int_equal(unlinkat(deep_fds[i - 1], deep_name(), AT_REMOVEDIR), 0);
    }
    close(deep_fds[0]);
}

static void check_deep_folder(const char *root, const char *folder, bool walk) {
    asset__fs_force_walk = walk; /* before the server's threads exist */
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    cfg.file_root = root;
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_batch_t *b = asset_server_load_folder(s, folder, NULL);
    assert_non_null(b);
    asset_status_t st = asset_batch_wait(b, 60000);
    size_t total = asset_batch_total(b), ok = asset_batch_completed_count(b);
    char msg[256] = "";
    if (total && ok != total) {
        const char *m = asset_handle_error_message(asset_batch_handle(b, 0));
        size_t n = strlen(m);
        snprintf(msg, sizeof msg, "%s", n > 120 ? m + n - 120 : m);
    }
    asset_batch_release(b);
    asset_server_destroy(s);
    asset__fs_force_walk = false;
    assert_int_equal(st, ASSET_OK);
    assert_int_equal(total, 1);
    if (ok != 1)
        fail_msg("%s, %s: %s", root ? "beneath file_root" : "by path", walk ? "walk" : "fast", msg);
}

static void test_a_file_deeper_than_path_max_loads_as_it_lists(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    deep_make(dir);
    char *uri = tu_file_uri(dir);
    check_deep_folder(NULL, uri, false);
    check_deep_folder(dir, ".", false);
    check_deep_folder(dir, ".", true);
    free(uri);
    deep_remove();
    tu_rmrf(dir);
    free(dir);
}

/* A name longer than 255 bytes is the file system's to judge: exFAT, VFAT, NTFS and
 * CIFS on Linux, and HFS+ and APFS on macOS, hold names of 255 UTF-16 units or
 * characters (100 CJK characters are 300 bytes of UTF-8), which a listing lists. The
 * O_NOFOLLOW walk (macOS's and the BSDs' every open beneath a root) copied each
 * component into 256 bytes and refused a longer one itself, "File name too long"
 * (E_IO), without asking: such a file never loaded from file_root or a package.
 * No file system here holds such a name; /proc answers for one (ENOENT), as the
 * kernel's openat2 says: both openers must give its answer. */
static void test_the_walk_asks_the_file_system_about_a_long_name(void **state) {
    (void)state;
    char name[301];
    memset(name, 'x', 300);
    name[300] = 0;
    char probe[320];
    snprintf(probe, sizeof probe, "/proc/%s", name);
    struct stat st;
    TU_SKIP_UNLESS(stat(probe, &st) != 0 && errno == ENOENT,
                   "no /proc that answers ENOENT for a name of 300 bytes");
    asset_server_config_t cfg = {.file_root = "/proc"};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    assert_int_equal(asset_server_mount(s, "proc", "/proc"), ASSET_OK);
    char pkg[340], deeper[340];
    snprintf(pkg, sizeof pkg, "pkg://proc/%s", name);
    snprintf(deeper, sizeof deeper, "%s/x", name); /* a directory's name, under file_root */
    const char *uris[] = {pkg, name, deeper};
    char bad[256] = ""; /* the first wrong answer: said once the walk is off again */
    for (int walk = 0; walk < 2; walk++) {
        asset__fs_force_walk = walk;
        for (size_t i = 0; i < sizeof uris / sizeof *uris && !*bad; i++) {
            asset_handle_t *h = asset_server_load(s, uris[i], NULL);
            asset_status_t got = tu_wait(h);
            const char *m = asset_handle_error_message(h);
            size_t ml = strlen(m); /* its end: the URI is long */
            if (got != ASSET_E_NOT_FOUND)
                snprintf(bad, sizeof bad, "%s, uri %zu: %s (%s)", walk ? "walk" : "fast", i,
                         asset_err_name(got), ml > 100 ? m + ml - 100 : m);
            asset_handle_release(h);
        }
    }
    asset__fs_force_walk = false;
    asset_server_destroy(s);
    if (*bad) fail_msg("%s", bad);
}

/* A watched file deeper than PATH_MAX (it loads, a directory at a time): its directory
 * cannot be watched (the watch's path is too long), and a poll's stat of the file fails
 * the same way at every look. The warning said its files were polled, and the first
 * failed look reloaded it (unchanged); its edits were never seen, silently. The
 * warning at the watch's start now says that changes of it are not seen, no poll runs,
 * and asset_server_reload still reloads it. */
static void deep_log(int level, const char *msg, void *user) {
    if (level == ASSET_LOG_WARN && strstr(msg, "cannot be polled either"))
        atomic_store((atomic_int *)user, 1);
}

static void test_a_file_deeper_than_path_max_says_its_changes_are_not_seen(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    deep_make(dir);
    char *uri = tu_file_uri(dir);
    size_t n = strlen(uri);
    for (int i = 0; i < DEEP_LEVELS; i++) n += 1 + strlen(deep_name());
    char *deep = malloc(n + sizeof "/deep.txt");
    assert_non_null(deep);
    strcpy(deep, uri);
    for (int i = 0; i < DEEP_LEVELS; i++) strcat(strcat(deep, "/"), deep_name());
    strcat(deep, "/deep.txt");
    atomic_int said = 0;
    asset_server_config_t cfg = {.watch = true, .log = deep_log, .user = &said};
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_handle_t *h = tu_load_wait(s, deep, ASSET_OK);
    /* said on the I/O thread, as the watch starts (no API waits for it; the tree is
     * removed before any assertion), and the watch's setup over (the file counted last,
     * after its poll would start): the count of watches was read as soon as the warning
     * was said, and a poll started anyway (too_long left unset) passed the test whenever
     * this thread read it first (thirty-third review's mutations) */
    uint64_t end = uv_hrtime() + (uint64_t)TU_SPIN_MS * 1000000u;
    while ((!atomic_load(&said) || atomic_load(&s->watched_files) < 1) && uv_hrtime() < end)
        tu_os_yield();
    asset_stats_t st;
    asset_server_stats(s, &st);
    /* and asset_server_reload reloads it */
    int f = openat(deep_fds[DEEP_LEVELS], "deep.txt", O_WRONLY | O_TRUNC | O_CLOEXEC);
    assert_true(f >= 0);
    assert_int_equal(write(f, "deeper", 6), 6);
    close(f);
    asset_server_reload(s, deep);
    uint64_t version = asset_handle_version(h);
    while (asset_handle_version(h) == version && uv_hrtime() < end) {
        asset_server_flush(s);
        tu_os_yield();
    }
    const asset_bytes_t *b = asset_handle_value(h);
    bool reloaded = b && b->size == 6 && !memcmp(b->data, "deeper", 6);
    asset_handle_release(h);
    asset_server_destroy(s);
    free(deep);
    free(uri);
    deep_remove();
    tu_rmrf(dir);
    free(dir);
    assert_true(atomic_load(&said));
    assert_int_equal(st.watches, 0); /* no poll that can only fail */
    assert_true(reloaded);
}

/* A UNIX socket is not a regular file: E_UNSUPPORTED, as a FIFO is (its open fails
 * with ENXIO before any fstat could say so: it was E_IO, found by a review). */
static void test_a_unix_socket_is_not_a_regular_file(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "sock");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) { /* a long $TMPDIR: no room for the name */
        close(fd);
        tu_rmrf(dir);
        free(path);
        free(dir);
        skip();
    }
    strcpy(a.sun_path, path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    asset_server_t *s = asset_server_create(NULL);
    asset_handle_t *h = asset_server_load(s, path, NULL);
    asset_status_t st = tu_wait(h);
    const char *msg = asset_handle_error_message(h);
    bool said = msg && strstr(msg, "not a regular file");
    asset_handle_release(h);
    asset_server_destroy(s);
    close(fd);
    tu_rmrf(dir);
    free(path);
    free(dir);
    assert_int_equal(st, ASSET_E_UNSUPPORTED);
    assert_true(said);
}

/* Relative paths resolve against the working directory however long it is (such a
 * path may then be too long to open: its error says so), and fail when it cannot be
 * read (removed): "/" took its place, so a relative path loaded a file of the file
 * system's root (a review). */
static void root_log(int level, const char *msg, void *user) {
    if (level == ASSET_LOG_ERROR && strstr(msg, "file_root \"assets\" is relative")) ++*(int *)user;
}

static void test_relative_paths_need_the_working_directory(void **state) {
    (void)state;
    char *here = getcwd(NULL, 0);
    assert_non_null(here);
    char *dir = tu_mkdtemp();
    assert_int_equal(chdir(dir), 0);
    char name[201];
    memset(name, 'd', 200);
    name[200] = 0;
    for (int i = 0; i < 22; i++) { /* about 4,500 bytes: more than PATH_MAX */
        assert_int_equal(mkdir(name, 0700), 0);
        assert_int_equal(chdir(name), 0);
    }
    FILE *f = fopen("a.txt", "wb");
    assert_non_null(f);
    fputs("deep", f);
    fclose(f);
    asset_server_t *s = asset_server_create(NULL);
    asset_handle_t *h = asset_server_load(s, "a.txt", NULL);
    (void)tu_wait(h); /* longer than open() takes, here: only its URI is checked */
    size_t deep = strlen(asset_handle_uri(h)); /* was file:///a.txt */
    asset_handle_release(h);
    asset_server_destroy(s);
    /* a removed working directory */
    int deepest = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* to come back */
    assert_true(deepest >= 0);
    assert_int_equal(mkdir("gone", 0700), 0);
    assert_int_equal(chdir("gone"), 0);
    assert_int_equal(rmdir("../gone"), 0);
    s = asset_server_create(NULL);
    h = asset_server_load(s, "a.txt", NULL);
    asset_status_t gone = tu_wait(h);
    asset_handle_release(h);
    asset_server_destroy(s);
    /* relative, against nothing: the create fails, and says why (an ERROR line) */
    int said_root = 0;
    asset_server_config_t cfg = {.file_root = "assets", .log = root_log, .user = &said_root};
    asset_server_t *confined = asset_server_create(&cfg);
    /* removed from the inside: the tree's paths are longer than a path may be */
    assert_int_equal(fchdir(deepest), 0);
    close(deepest);
    assert_int_equal(unlink("a.txt"), 0);
    for (int i = 0; i < 22; i++) {
        assert_int_equal(chdir(".."), 0);
        assert_int_equal(rmdir(name), 0);
    }
    assert_int_equal(chdir(here), 0);
    tu_rmrf(dir);
    free(dir);
    free(here);
    assert_true(deep > 4400);
    assert_int_equal(gone, ASSET_E_INVALID);
    assert_null(confined);
    assert_int_equal(said_root, 1);
}

/* A renamer for the test below: renames one file back and forth until told to stop. */
typedef struct renamer {
    char a[4096], b[4096];
    atomic_bool stop;
    atomic_uint renames; /* done so far: the opens go on until many ran beside them */
} renamer_t;

static void rename_loop(void *arg) {
    renamer_t *r = arg;
    while (!atomic_load(&r->stop)) {
        if (rename(r->a, r->b) == 0 && rename(r->b, r->a) == 0) atomic_fetch_add(&r->renames, 1);
    }
}

/* Regression: openat2(RESOLVE_BENEATH) says EAGAIN when a ".." on the way (a relative
 * symlink inside the root, which the docs say is followed) met a rename or mount
 * anywhere in the system during the lookup; that went out as the open's error, so a
 * pkg:// or file_root load through such a link failed E_IO "Resource temporarily
 * unavailable" whenever another program renamed a file (about 1 open in 140 here). */
static void test_an_open_through_a_dotdot_link_survives_renames_elsewhere(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char root_path[4096];
    snprintf(root_path, sizeof root_path, "%s/pk", dir);
    free(tu_write_file(dir, "pk/f.txt", "f", 1));
    free(tu_write_file(dir, "pk/d/keep.txt", "k", 1));
    free(tu_write_file(dir, "other/x", "x", 1));
    char link[4096];
    snprintf(link, sizeof link, "%s/pk/d/link", dir);
    assert_int_equal(symlink("../f.txt", link), 0);
    int root = open(root_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(root >= 0);
    int fd = asset__open_beneath_fast(root, "d/link", O_RDONLY);
    if (fd == -ENOSYS) { /* no openat2 (an old kernel, TSan): the walk refuses links */
        close(root);
        tu_rmrf(dir);
        free(dir);
        skip();
        return;
    }
    assert_true(fd >= 0);
    close(fd);
    renamer_t *r = calloc(1, sizeof *r);
    assert_non_null(r);
    snprintf(r->a, sizeof r->a, "%s/other/x", dir);
    snprintf(r->b, sizeof r->b, "%s/other/y", dir);
    atomic_init(&r->stop, false);
    atomic_init(&r->renames, 0);
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, rename_loop, r), 0);
    int failed = 0, first = 0;
    /* at least 200,000 opens, and on until 20,000 renames ran beside them (a busy
     * machine may hold the renamer back), at most 4,000,000 */
    for (int i = 0; i < 4000000 && (i < 200000 || atomic_load(&r->renames) < 20000); i++) {
        fd = asset__open_beneath(root, "d/link", O_RDONLY);
        if (fd >= 0) {
            close(fd);
        } else if (!failed++) {
            first = fd;
        }
    }
    atomic_store(&r->stop, true);
    uv_thread_join(&t);
    close(root);
    tu_rmrf(dir);
    free(dir);
    free(r);
    if (failed) print_message("%d opens failed, the first with %d\n", failed, first);
    assert_int_equal(failed, 0);
}

static long long ctime_ns(const struct stat *st) {
#if defined(__APPLE__)
    return (long long)st->st_ctimespec.tv_sec * 1000000000LL + st->st_ctimespec.tv_nsec;
#else
    return (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
#endif
}

/* Regression: a file's version was its mtime, size and inode, all three of which stay
 * when a file is rewritten in place with bytes of the same size and its mtime set back
 * (cp -p, install -p, rsync -t --inplace, touch -r, a build that pins mtimes with
 * SOURCE_DATE_EPOCH): the next load (and hot reload) found it NOT_MODIFIED and served
 * the old bytes. The change time, which no program can set, now counts too. */
static void test_a_same_size_rewrite_with_its_mtime_restored_is_seen(void **state) {
    (void)state;
    char *dir = tu_mkdtemp();
    char *path = tu_write_file(dir, "v.txt", "AAAA", 4);
    const struct timespec ts[2] = {{.tv_sec = 1700000000, .tv_nsec = 0},
                                   {.tv_sec = 1700000000, .tv_nsec = 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
    asset_server_t *s = tu_server(1);
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h1 = asset_server_load(s, path, &o);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);
    FILE *fp = fopen(path, "r+b"); /* in place: the same inode */
    assert_non_null(fp);
    assert_int_equal(fwrite("BBBB", 1, 4, fp), 4);
    assert_int_equal(fclose(fp), 0);
    /* the mtime set back; again until the change time moved on (a coarse clock) */
    int tries = 0;
    do {
        assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
        assert_int_equal(stat(path, &after), 0);
    } while (ctime_ns(&after) == ctime_ns(&before) && ++tries < 10000000);
    assert_int_equal(after.st_ino, before.st_ino);
    assert_int_equal(after.st_size, before.st_size);
    asset_handle_t *h2 = asset_server_load(s, path, &o);
    asset_status_t st = tu_wait(h2);
    const asset_bytes_t *b = asset_handle_value(h2);
    bool fresh = st == ASSET_OK && b && b->size == 4 && !memcmp(b->data, "BBBB", 4);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_server_destroy(s);
    tu_rmrf(dir);
    free(path);
    free(dir);
    assert_true(fresh);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_built_implementation_is_the_one_running),
        cmocka_unit_test(test_server_lock_is_adaptive_on_glibc),
        cmocka_unit_test(test_backslash_is_forbidden_not_a_separator),
        cmocka_unit_test(test_file_versions_carry_nanoseconds),
        cmocka_unit_test(test_version_string_matches_its_printf_form),
        cmocka_unit_test(test_large_mapping_is_aligned_and_advised_huge),
        cmocka_unit_test(test_a_file_shorter_than_the_size_asked_is_not_mapped),
        cmocka_unit_test(test_sockets_are_close_on_exec),
        cmocka_unit_test(test_a_unix_socket_is_not_a_regular_file),
        cmocka_unit_test(test_a_file_deeper_than_path_max_loads_as_it_lists),
        cmocka_unit_test(test_a_file_deeper_than_path_max_says_its_changes_are_not_seen),
        cmocka_unit_test(test_the_walk_asks_the_file_system_about_a_long_name),
        cmocka_unit_test(test_loading_a_terminal_never_makes_it_the_controlling_one),
        cmocka_unit_test(test_relative_paths_need_the_working_directory),
        cmocka_unit_test(test_an_open_through_a_dotdot_link_survives_renames_elsewhere),
        cmocka_unit_test(test_a_same_size_rewrite_with_its_mtime_restored_is_seen),
        cmocka_unit_test(test_a_root_opens_where_a_seccomp_filter_refuses_openat2),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
