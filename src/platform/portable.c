/* platform/portable.c - C replacements for POSIX-only helpers the library used
 * (<strings.h> is not on Windows' C library): the same on every OS. */
#include "../internal.h"

#include <string.h>

int asset__strncasecmp(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int ca = asset__ascii_lower((unsigned char)a[i]),
            cb = asset__ascii_lower((unsigned char)b[i]);
        if (ca != cb || !ca) return ca - cb;
    }
    return 0;
}

const void *asset__memmem(const void *hay, size_t hn, const void *needle, size_t nn) {
    const unsigned char *h = hay;
    if (!nn) return hay;
    for (size_t i = 0; i + nn <= hn; i++)
        if (h[i] == *(const unsigned char *)needle && !memcmp(h + i, needle, nn)) return h + i;
    return NULL;
}

int asset__strcasecmp(const char *a, const char *b) { return asset__strncasecmp(a, b, SIZE_MAX); }
