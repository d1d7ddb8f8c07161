/* http_validator.h - the version under which an HTTP answer is cached ("etag:<ETag>" or
 * "lm:<Last-Modified>", made by sources/http.c on desktop and web/http_fetch.c on the
 * web) as the conditional request header that revalidates it: one reading of that
 * format for both; and the other rules the two share. */
#ifndef ASSET_HTTP_VALIDATOR_H
#define ASSET_HTTP_VALIDATOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h" /* asset__utf8_len */

/* The longest validator sent back in a conditional header. Servers refuse a request
 * header line past their limit (nginx's large_client_header_buffers: 8 KiB, Apache's
 * LimitRequestFieldSize: 8190 bytes) with a 400: an ETag of 9 KiB went back whole, and
 * every revalidation of its asset failed "HTTP 400 Bad Request". A longer one is not
 * sent: the request is unconditional, and a 200 with the cached strong ETag is still
 * NOT_MODIFIED (no parse). */
#define ASSET__HTTP_VALIDATOR_MAX 4096

/* The conditional header for the cached version `cached` (NULL: none): its name
 * ("If-None-Match" or "If-Modified-Since"), its value in *value (inside cached), or
 * NULL when cached is NULL, not an HTTP validator, or one longer than
 * ASSET__HTTP_VALIDATOR_MAX (then *value is untouched). */
static inline const char *asset__http_condition(const char *cached, const char **value) {
    const char *name = NULL, *v = NULL;
    if (cached && !strncmp(cached, "etag:", 5)) {
        v = cached + 5;
        name = "If-None-Match";
    } else if (cached && !strncmp(cached, "lm:", 3)) {
        v = cached + 3;
        name = "If-Modified-Since";
    }
    if (!name || strnlen(v, ASSET__HTTP_VALIDATOR_MAX + 1) > ASSET__HTTP_VALIDATOR_MAX) return NULL;
    *value = v;
    return name;
}

/* Whether a 304 whose ETag is etag (as the header gives it; NULL: none) names another
 * representation than the cached version `cached`: both are ETags and their opaque
 * tags differ, "W/" aside (nginx's gzip makes a 200's ETag weak, not its 304's). Such a
 * 304 says nothing of the cached bytes (RFC 9111 4.3.4: they must not be freshened by
 * it): the request is made again without the condition. */
static inline bool asset__http_etag_moved(const char *cached, const char *etag) {
    if (!cached || !etag || strncmp(cached, "etag:", 5)) return false;
    cached += 5;
    if (!strncmp(cached, "W/", 2)) cached += 2;
    if (!strncmp(etag, "W/", 2)) etag += 2;
    return strcmp(cached, etag) != 0;
}

/* Whether a 304 whose Last-Modified is lm (as the header gives it; NULL: none) names
 * another representation than the cached version `cached`: it is a Last-Modified too,
 * and the dates differ (as written: a server writes its dates one way). A server that
 * answers If-Modified-Since "not modified since that date" (the file's date not after
 * it: Apache, Go's http.ServeContent) says 304 to a file replaced by an older one (an
 * older version restored, an archive unpacked with its dates), naming the older date:
 * the cached bytes, which it does not name, were kept for good (RFC 9111 4.3.4: a 304
 * whose validators match no stored response updates none). Asked again, as for
 * asset__http_etag_moved. */
static inline bool asset__http_lm_moved(const char *cached, const char *lm) {
    return cached && lm && !strncmp(cached, "lm:", 3) && strcmp(cached + 3, lm) != 0;
}

/* The version of an answer versioned by its bytes (no validator, or reached through a
 * redirect) in out (48 bytes): "hash:<bytes>", and "@<from>" for a redirect's, from the
 * hash of the URL it was redirected to up to its query (asset__http_from_len). The same
 * bytes from another place are another version: their relative references resolve
 * there (a redirect that came to lead elsewhere kept the value parsed against the old
 * place, its dependencies and base). */
static inline void asset__http_hash_version(char *out, uint64_t bytes, bool redirected,
                                            uint64_t from) {
    if (redirected)
        snprintf(out, 48, "hash:%016llx@%016llx", (unsigned long long)bytes,
                 (unsigned long long)from);
    else
        snprintf(out, 48, "hash:%016llx", (unsigned long long)bytes);
}

/* The part of a URL redirected to that its answer's version holds: up to its query or
 * fragment. References with a path resolve against its directory whatever its query: a
 * redirect to a signed URL ("?sig=...", another at each request) was a new version, a
 * parse and a published reload at every revalidation of the same bytes. */
static inline size_t asset__http_from_len(const char *url) { return strcspn(url, "?#"); }

/* A Content-Length value as the web build reads it (fetch() gives it trimmed, two fields
 * joined by ", "): its number when it is 1*DIGIT, or a list of one such number repeated
 * (RFC 9110 8.6), else -1: no length, as the Fetch standard's "extract a length" (a
 * browser that ignored a bad value framed the body itself). JS Number() read "" as 0,
 * "1e3" as 1000 and "0x10" as 16. Past 2^53 the number is approximate: past any
 * max_asset_size still. */
static inline double asset__http_length_value(const char *v) {
    double len = -1;
    for (;;) {
        while (*v == ' ' || *v == '\t') v++;
        const char *d = v;
        double n = 0;
        while (*v >= '0' && *v <= '9') n = n * 10 + (*v++ - '0');
        if (v == d || (len >= 0 && n != len)) return -1;
        len = n;
        while (*v == ' ' || *v == '\t') v++;
        if (!*v) return len;
        if (*v++ != ',') return -1;
    }
}

/* The most bytes of a reason phrase an error message keeps (desktop and web), and the
 * size of asset__http_reason's out: each kept byte may become U+FFFD's three. */
#define ASSET__HTTP_REASON_MAX 63
#define ASSET__HTTP_REASON_CAP (3 * ASSET__HTTP_REASON_MAX + 1)

/* A reason phrase's n bytes at raw made fit for an error message, into out
 * (ASSET__HTTP_REASON_CAP bytes, terminated): its first ASSET__HTTP_REASON_MAX bytes (a
 * UTF-8 sequence that cut splits is dropped), UTF-8 as it is; a byte that is no tab,
 * space or visible byte (RFC 9112 4: a control, DEL) becomes '?', and bytes that are no
 * part of well-formed UTF-8 become U+FFFD, one per maximal subpart, as a decoder reads
 * them (asset__utf8_len). libcurl passes any byte: an escape sequence a server wrote there
 * ("\x1b[2J") went into the message whole, and into the log or terminal showing it.
 * RFC 9112's obs-text (bytes 0x80 to 0xFF) has no charset: a browser's fetch() gives
 * them one a code unit (Latin-1), node's as UTF-8, and the desktop passed them raw, so one
 * reason made three messages, invalid UTF-8 on the desktop (desktop and web). */
static inline void asset__http_reason(char *out, const char *raw, size_t n) {
    bool cut = n > ASSET__HTTP_REASON_MAX;
    if (cut) n = ASSET__HTTP_REASON_MAX;
    const unsigned char *p = (const unsigned char *)raw, *end = p + n;
    char *o = out;
    while (p < end) {
        size_t bad, len = asset__utf8_len(p, (size_t)(end - p), &bad);
        if (len == 1) {
            *o++ = (*p < ' ' && *p != '\t') || *p == 0x7f ? '?' : (char)*p;
        } else if (len) {
            memcpy(o, p, len);
            o += len;
        } else if (cut && p + bad == end) {
            break; /* a sequence the cut split */
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
        }
        p += len ? len : bad;
    }
    *o = 0;
}

/* What an error answer's message says after "HTTP <status> <reason>": for a 3xx other than
 * 304 (a redirect without Location: the final answer, not followed), that it was not
 * followed; "" for any other status (desktop and web). */
static inline const char *asset__http_status_note(long status) {
    return status / 100 == 3 && status != 304 ? " (a redirect without Location: not followed)" : "";
}

/* The most bytes of a body's buffer made at once at the size its (uncoded)
 * Content-Length announces, before any body byte, instead of grown from the first
 * piece: larger announcements grow as the body comes, so a server that announces more
 * than it sends cannot make us reserve up to max_asset_size (desktop and web). */
#define ASSET__HTTP_PRESIZE_MAX ((unsigned long long)16 << 20)

#endif
