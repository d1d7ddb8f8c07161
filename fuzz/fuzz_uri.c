/* fuzz_uri.c - URI parsing and normalisation (src/uri.c): asset__uri_parse,
 * asset__uri_resolve and asset__path_normalize on arbitrary input.
 *
 * Input: one flags byte, then text. Flags bit 0: parse with a file_root; bits 1-2:
 * which base the second line resolves against. The text's first line is parsed; the
 * whole text, split at the first newline, is also a (base, reference) pair to resolve.
 *
 * Properties checked (abort on violation, so libFuzzer reports it):
 *   - a parse succeeds with a URI and a path, or fails with INVALID/FORBIDDEN (or
 *     NO_MEMORY) and a reason;
 *   - asset__uri_parse_room (room for a job before the URI, as load.c makes it, in a
 *     slab sized by asset__uri_slab_estimate as a group's are) gives the same status,
 *     URI and path, and its room can be written;
 *   - a normalised file path is absolute and has no empty, "." or ".." segment, and
 *     stays inside file_root when one is set; a pkg path has no "..", no leading '/',
 *     no backslash;
 *   - parsing is idempotent: the normalised URI parses to itself and the same path;
 *   - a URI whose rest asset__uri_key_is_normal calls a normal key parses to itself;
 *   - an http(s) path has no "." or ".." segment (libcurl removes them before sending);
 *   - a label, a mem:// key and a listed name in a mem:// folder, made into a URI as the
 *     library makes them, come back unchanged (label decode, parse);
 *   - normalising writes at most strlen + 2 bytes (ASan sees the exact buffer) and
 *     its result has no "." or ".." segment. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "uri.h"

#define CHECK(c)                                                                        \
    do {                                                                                \
        if (!(c)) {                                                                     \
            fprintf(stderr, "fuzz_uri: property failed: %s (line %d)\n", #c, __LINE__); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static const char *const kBase = "/base/dir";
static const char *const kRoot = "/srv/root";

static void check_segments(const char *p, bool allow_leading_slash) {
    if (*p == '/') {
        CHECK(allow_leading_slash);
        p++;
    }
    if (!*p) return;
    for (;;) {
        size_t n = strcspn(p, "/");
        CHECK(n > 0);                                   /* no "//" and no trailing '/' */
        CHECK(!(n == 1 && p[0] == '.'));                /* no "." */
        CHECK(!(n == 2 && p[0] == '.' && p[1] == '.')); /* no ".." */
        if (!p[n]) break;
        p += n + 1;
    }
}

/* The parse with room for a record before the URI (load.c's jobs) gives what the plain
 * parse gives, and the room is the caller's to write (ASan: no overlap). Its block is
 * carved from a slab sized by the estimate (a group's misses), or its own when the
 * estimate fell short or is 0. */
static void check_room(const char *in, const char *root, asset_status_t st, const asset_uri_t *u) {
    enum { ROOM = 4 * sizeof(max_align_t) };
    asset_uri_t w;
    const char *why = NULL;
    size_t est = asset__uri_slab_estimate(in, ROOM, strlen(kBase));
    asset__uri_slab_t *slab = est ? asset__uri_slab_new(est) : NULL;
    asset_status_t sw = asset__uri_parse_room(in, kBase, root, ROOM, slab, &w, &why);
    CHECK(!w.slab || w.slab == slab);
    if (sw == ASSET_E_NO_MEMORY || st == ASSET_E_NO_MEMORY) goto out;
    CHECK(sw == st);
    if (sw != ASSET_OK) {
        CHECK(why && *why && !w.uri && !w.path && !w.slab);
        goto out;
    }
    CHECK(w.room == ROOM && !strcmp(w.uri, u->uri) && !strcmp(w.path, u->path));
    CHECK(!strcmp(w.scheme, u->scheme));
    memset(w.uri - ROOM, 0xA5, ROOM);
    CHECK(!strcmp(w.uri, u->uri));
out:
    asset__uri_dispose(&w);
    asset__uri_slab_drop(slab);
}

static void parse_one(const char *in, const char *root) {
    /* a key asset__uri_key_is_normal calls normal (load.c's fast path takes it as a
     * cache key, unparsed) parses to itself */
    bool lower;
    size_t ksl = asset__uri_scheme_len(in, &lower);
    bool key_normal = ksl && lower && !strchr(in, '#') &&
                      asset__uri_key_is_normal(in, ksl, in + ksl + 3, strlen(in + ksl + 3));
    asset_uri_t u;
    const char *why = NULL;
    asset_status_t st = asset__uri_parse(in, kBase, root, &u, &why);
    check_room(in, root, st, &u);
    CHECK(!key_normal || st == ASSET_E_NO_MEMORY || (st == ASSET_OK && !strcmp(u.uri, in)));
    if (st != ASSET_OK) {
        CHECK(st == ASSET_E_INVALID || st == ASSET_E_FORBIDDEN || st == ASSET_E_NO_MEMORY);
        CHECK(why && *why);
        CHECK(!u.uri && !u.path);
        return;
    }
    CHECK(u.uri && u.path && u.scheme[0]);
    size_t sl = strlen(u.scheme);
    CHECK(!strncmp(u.uri, u.scheme, sl) && !strncmp(u.uri + sl, "://", 3));
    for (const char *c = u.scheme; *c; c++) CHECK(!(*c >= 'A' && *c <= 'Z'));
    if (!strcmp(u.scheme, "file")) {
        CHECK(u.path[0] == '/');
        check_segments(u.path, true);
        if (root) {
            size_t rl = strlen(root);
            CHECK(!strncmp(u.path, root, rl) && (u.path[rl] == 0 || u.path[rl] == '/'));
        }
    } else if (!strcmp(u.scheme, "http") || !strcmp(u.scheme, "https")) {
        /* no "." or ".." segment in the path (libcurl and fetch() remove them) */
        const char *p = strchr(u.path, '/');
        CHECK(p);
        size_t pn = strcspn(p, "?");
        for (const char *c = p; c < p + pn; c++) {
            if (*c != '/') continue;
            size_t n = strcspn(c + 1, "/?");
            CHECK(!(n == 1 && c[1] == '.') && !(n == 2 && c[1] == '.' && c[2] == '.'));
        }
    } else if (!strcmp(u.scheme, "pkg")) {
        CHECK(u.path[0] != '/');
        CHECK(!strchr(u.path, '\\'));
        check_segments(u.path, false);
    }
    /* idempotent: the normalised URI is its own normal form */
    asset_uri_t v;
    const char *why2 = NULL;
    asset_status_t st2 = asset__uri_parse(u.uri, kBase, root, &v, &why2);
    if (st2 != ASSET_E_NO_MEMORY) {
        if (st2 != ASSET_OK)
            fprintf(stderr, "fuzz_uri: '%s' -> '%s' does not parse again: %s\n", in, u.uri, why2);
        CHECK(st2 == ASSET_OK);
        if (strcmp(v.uri, u.uri) || strcmp(v.path, u.path))
            fprintf(stderr, "fuzz_uri: '%s' -> '%s' -> '%s'\n", in, u.uri, v.uri);
        CHECK(!strcmp(v.uri, u.uri));
        CHECK(!strcmp(v.path, u.path));
        asset__uri_dispose(&v);
    }
    asset__uri_dispose(&u);
}

/* The names the parser does not see whole: a label ("uri#label", its '%' and '#' encoded
 * by asset__uri_labeled) decodes back to itself and the URI's first '#' is its start;
 * a mem:// key (asset__uri_from_path, what asset_mem_put stores) and a listed name in a
 * mem:// folder (asset__uri_resolve_path) parse back to exactly that key. */
static void check_names(const char *name) {
    if (!*name) return;
    const char *why = NULL;
    char *l = asset__uri_labeled("mem://a.json", name);
    if (l) {
        CHECK(strchr(l, '#') == l + strlen("mem://a.json"));
        char *back = NULL;
        asset_status_t st = asset__uri_label_decode(strchr(l, '#') + 1, &back, &why);
        CHECK(st == ASSET_OK || st == ASSET_E_NO_MEMORY);
        if (back) CHECK(!strcmp(back, name));
        asset_free(back);
        asset_free(l);
    }
    char *k = asset__uri_from_path("mem://", name);
    char *c = asset__uri_resolve_path("mem://d/", name);
    const char *keys[] = {k, c};
    for (int i = 0; i < 2; i++) {
        if (!keys[i] || strlen(keys[i]) > ASSET__URI_MAX) continue;
        asset_uri_t u;
        asset_status_t st = asset__uri_parse(keys[i], kBase, NULL, &u, &why);
        if (st == ASSET_E_NO_MEMORY) continue;
        CHECK(st == ASSET_OK);
        CHECK(!strcmp(u.uri, keys[i]));
        CHECK(!strncmp(u.path, i ? "d/" : "", i ? 2 : 0) && !strcmp(u.path + 2 * i, name));
        asset__uri_dispose(&u);
    }
    asset_free(k);
    asset_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 8192) return 0;
    unsigned flags = data[0];
    size_t n = size - 1;
    char *text = malloc(n + 1);
    memcpy(text, data + 1, n);
    text[n] = 0;
    size_t len = strlen(text); /* up to the first NUL */

    /* parse the first line */
    char *line = strndup(text, strcspn(text, "\n"));
    parse_one(line, (flags & 1) ? kRoot : NULL);

    check_names(line);

    /* normalise it as a path, into an exact-size buffer */
    char *out = malloc(strlen(line) + 2);
    if (asset__path_normalize(line, out)) {
        check_segments(out, true);
        CHECK(strlen(out) <= strlen(line) + 1);
    }
    free(out);

    /* resolve: base = first line (or a fixed one), reference = the rest */
    static const char *const bases[] = {NULL, "pkg://game/maps/level1.json",
                                        "http://cdn.example.com/a/b/manifest.json",
                                        "mem://pack/manifest.json"};
    const char *ref = strchr(text, '\n');
    ref = ref ? ref + 1 : text;
    const char *base = bases[(flags >> 1) & 3] ? bases[(flags >> 1) & 3] : line;
    char *r = asset__uri_resolve(base, ref);
    if (r) {
        parse_one(r, NULL); /* whatever it resolved to must parse or fail cleanly */
        asset_free(r);
    }
    (void)len;
    free(line);
    free(text);
    return 0;
}
