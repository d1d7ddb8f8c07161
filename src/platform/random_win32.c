/* platform/random_win32.c - platform.h's random bytes on Windows: rand_s() (the C
 * library's, on RtlGenRandom: no link to bcrypt or advapi32 for it). */
#define _CRT_RAND_S /* before any header: declares rand_s */
#include <stdlib.h>
#include <string.h>

#include "platform.h"

bool asset__os_random(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n) {
        unsigned int v;
        if (rand_s(&v) != 0) return false;
        size_t k = n < sizeof v ? n : sizeof v;
        memcpy(p, &v, k);
        p += k;
        n -= k;
    }
    return true;
}
