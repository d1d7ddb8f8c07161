/* platform/beneath_linux.c - Linux's help for asset__open_beneath: openat2() with
 * RESOLVE_BENEATH, which resolves the whole path in the kernel and refuses any
 * escape (symlinks are followed only while they stay beneath the root). Kernels
 * before 5.6, or seccomp filters that refuse it, get -ENOSYS: the caller walks. */
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ThreadSanitizer sees file descriptors only through the libc calls it intercepts,
 * never a raw syscall(): a descriptor openat2 returned is unknown to it, so closing it
 * "races" with whatever another thread did with that number before (a curl socket's
 * epoll_ctl, seen in the stress test). Under TSan the walk (plain openat) runs. */
#if defined(__SANITIZE_THREAD__)
#define ASSET_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASSET_UNDER_TSAN 1
#endif
#endif

int asset__open_beneath_fast(int root, const char *rel, int flags) {
#if defined(SYS_openat2) && !defined(ASSET_UNDER_TSAN)
    struct open_how how;
    memset(&how, 0, sizeof how);
    /* the raw syscall gets no O_LARGEFILE from libc (as open() does with
     * _FILE_OFFSET_BITS=64): a 32-bit build's open of a file past 2 GiB failed EOVERFLOW */
    how.flags = (uint64_t)(flags | O_CLOEXEC | O_LARGEFILE);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    /* EAGAIN: a ".." on the way (a symlink inside the root, "d/x -> ../y") met a
     * rename or mount anywhere in the system since the lookup began, and the kernel
     * cannot vouch that it stayed beneath: asked again, as openat2(2) says. A load
     * through such a link failed E_IO "Resource temporarily unavailable" whenever
     * another program renamed a file (editors save so). Bounded: a storm of renames
     * that outlasts every try fails with EAGAIN, which asset__errno_transient counts
     * as passing: a reload is then tried again later (reload.c), a load fails. */
    long fd = -1;
    for (int tries = 0; tries < 64; tries++) {
        fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
        if (fd >= 0 || errno != EAGAIN) break;
    }
    if (fd >= 0) return (int)fd;
    if (errno != ENOSYS && errno != EPERM && errno != E2BIG) return -errno;
#else
    (void)root;
    (void)rel;
    (void)flags;
#endif
    return -ENOSYS;
}
