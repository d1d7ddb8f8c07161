/* posix.h - the POSIX implementation's descriptor-level entry point, for POSIX-only
 * tests and fuzzers (tests/test_torture.c, fuzz/fuzz_pkg.c). Not part of the
 * portable interface (platform.h): library code never calls it. */
#ifndef ASSET_PLATFORM_POSIX_H
#define ASSET_PLATFORM_POSIX_H

/* Opens `rel` (relative, normalised, no "..") beneath directory fd `root`; symlinks
 * may not lead out of it. Returns an fd or -errno (-EXDEV for an escape refused,
 * -ELOOP for a loop of symlinks that stay beneath). */
int asset__open_beneath(int root, const char *rel, int flags);
/* The kernel's help with the above, or -ENOSYS: beneath_linux.c (openat2) or
 * beneath_walk.c (none). */
int asset__open_beneath_fast(int root, const char *rel, int flags);

#endif
