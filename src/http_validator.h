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

/* The conditional header for the cached version `cached` (NULL: none): its name
 * ("If-None-Match" or "If-Modified-Since"), its value in *value (inside cached), or
 * NULL when cached is NULL or not an HTTP validator (then *value is untouched). */
static inline const char *asset__http_condition(const char *cached, const char **value) {
    if (cached && !strncmp(cached, "etag:", 5)) {
        *value = cached + 5;
        return "If-None-Match";
    }
    if (cached && !strncmp(cached, "lm:", 3)) {
        *value = cached + 3;
        return "If-Modified-Since";
    }
    return NULL;
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

/* The most bytes of a body's buffer made at once at the size its (uncoded)
 * Content-Length announces, before any body byte, instead of grown from the first
 * piece: larger announcements grow as the body comes, so a server that announces more
 * than it sends cannot make us reserve up to max_asset_size (desktop and web). */
#define ASSET__HTTP_PRESIZE_MAX ((unsigned long long)16 << 20)

#endif
