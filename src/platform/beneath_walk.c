/* platform/beneath_walk.c - asset__open_beneath_fast for POSIX systems without a
 * kernel call for it (macOS, the BSDs; Linux with -DASSET_SERVER_GENERIC_POSIX=ON):
 * none, so asset__open_beneath always takes the O_NOFOLLOW component walk. */
#include "posix.h"

#include <errno.h>

int asset__open_beneath_fast(int root, const char *rel, int flags) {
    (void)root;
    (void)rel;
    (void)flags;
    return -ENOSYS;
}
