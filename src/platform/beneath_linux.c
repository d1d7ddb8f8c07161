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

int asset__open_beneath_fast(int root, const char *rel, int flags) {
#ifdef SYS_openat2
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, root, rel, &how, sizeof how);
    if (fd >= 0) return (int)fd;
    if (errno != ENOSYS && errno != EPERM && errno != E2BIG) return -errno;
#else
    (void)root;
    (void)rel;
    (void)flags;
#endif
    return -ENOSYS;
}
