/* platform/portable.c - C replacements for POSIX-only helpers the library used
 * (<strings.h> is not on Windows' C library): the same on every OS. */
#include "../internal.h"

#include <ctype.h>

int asset__strncasecmp(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int ca = tolower((unsigned char)a[i]), cb = tolower((unsigned char)b[i]);
        if (ca != cb || !ca) return ca - cb;
    }
    return 0;
}

int asset__strcasecmp(const char *a, const char *b) { return asset__strncasecmp(a, b, SIZE_MAX); }
