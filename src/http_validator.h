/* http_validator.h - the version under which an HTTP answer is cached ("etag:<ETag>" or
 * "lm:<Last-Modified>", made by sources/http.c on desktop and web/http_fetch.c on the
 * web) as the conditional request header that revalidates it: one reading of that
 * format for both. */
#ifndef ASSET_HTTP_VALIDATOR_H
#define ASSET_HTTP_VALIDATOR_H

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

#endif
