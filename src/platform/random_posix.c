/* platform/random_posix.c - platform.h's random bytes on POSIX and the web build:
 * getentropy() (glibc 2.25, musl, macOS 10.12, the BSDs; Emscripten's asks the
 * browser's or node's crypto). */
#include "platform.h"

#include <unistd.h>
#ifdef __APPLE__
#include <sys/random.h> /* getentropy: macOS declares it here, not in unistd.h */
#endif

bool asset__os_random(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n) { /* getentropy gives at most 256 bytes a call */
        size_t k = n < 256 ? n : 256;
        if (getentropy(p, k) != 0) return false;
        p += k;
        n -= k;
    }
    return true;
}
