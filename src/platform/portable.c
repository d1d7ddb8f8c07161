/* platform/portable.c - C replacements for POSIX-only helpers the library used
 * (<strings.h> is not on Windows' C library): the same on every OS. */
#include "../internal.h"

#include <string.h>

/* Each byte ASCII-lowered (locale-independent: 'A'..'Z' only, a byte past 0x7f is itself) */
#define R2(c) (c), (c) + 1
#define R4(c) R2(c), R2((c) + 2)
#define R8(c) R4(c), R4((c) + 4)
#define R16(c) R8(c), R8((c) + 8)
static const unsigned char ascii_lower[256] = {
    R16(0x00), R16(0x10), R16(0x20), R16(0x30), 0x40,      R16('a'),  R8('q'),
    R2('y'),   R4(0x5b),  0x5f,      R16(0x60), R16(0x70), R16(0x80), R16(0x90),
    R16(0xa0), R16(0xb0), R16(0xc0), R16(0xd0), R16(0xe0), R16(0xf0),
};
#undef R2
#undef R4
#undef R8
#undef R16

/* Bytes that are equal (the usual case: a lower-case literal against a lower-case URI,
 * "ETag" against a server's "ETag") cost no fold; only a pair that differs is looked up.
 * It folded both bytes of every pair with two compares each: 96 instructions for 5. */
int asset__strncasecmp(const char *a, const char *b, size_t n) {
    const unsigned char *p = (const unsigned char *)a, *q = (const unsigned char *)b;
    for (size_t i = 0; i < n; i++) {
        int ca = p[i], cb = q[i];
        if (ca == cb) {
            if (!ca) return 0;
            continue;
        }
        ca = ascii_lower[ca];
        cb = ascii_lower[cb];
        if (ca != cb) return ca - cb; /* one of them may be the NUL: it sorts first */
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

const char *asset__strchrnul(const char *s, int c) {
#if defined(ASSET_HAVE_STRCHRNUL)
    return strchrnul(s, c);
#else
    size_t n = strlen(s);
    const char *p = memchr(s, c, n);
    return p ? p : s + n;
#endif
}

int asset__strcasecmp(const char *a, const char *b) { return asset__strncasecmp(a, b, SIZE_MAX); }
