/* uri.c - parse and normalise asset URIs (see uri.h for the rules). */
#include "internal.h"
#include "platform/platform.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

size_t asset__uri_scheme_len(const char *s, bool *lower) {
    bool low = true;
    size_t n = 0;
    for (;; n++) { /* ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), ASCII whatever the locale */
        char c = s[n];
        if (c >= 'A' && c <= 'Z')
            low = false;
        else if (!(c >= 'a' && c <= 'z') &&
                 (n == 0 || !((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.')))
            break;
    }
    if (n && strncmp(s + n, "://", 3) != 0) n = 0;
    if (lower) *lower = n && low;
    return n;
}

uint64_t asset__scheme_bit(const char *scheme, size_t len) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)scheme[i]) * 16777619u;
    return (uint64_t)1 << ((h ^ (h >> 6)) & 63);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in place. Returns false on a malformed escape or a decoded NUL. */
static bool percent_decode(char *s, const char **why) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = hexval((unsigned char)r[1]), lo = hi < 0 ? -1 : hexval((unsigned char)r[2]);
            if (hi < 0 || lo < 0) {
                *why = "malformed percent-escape";
                return false;
            }
            int c = hi * 16 + lo;
            if (c == 0) {
                *why = "contains a NUL byte";
                return false;
            }
            *w++ = (char)c;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
    return true;
}

bool asset__path_normalize(const char *path, char *out) {
    /* a drive ("C:" of "C:/x", Windows) is kept as it is; the rest is '/'-rooted */
    size_t rl = asset__path_root_len(path), pre = rl > 1 ? rl - 1 : 0;
    memcpy(out, path, pre);
    out += pre;
    const char *p = path + pre;
    bool abs = p[0] == '/';
    char *w = out;
    size_t depth = 0;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        size_t n = strcspn(p, "/");
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            if (depth == 0) return false;
            depth--;
            while (w > out && w[-1] != '/') w--;
            if (w > out) w--;
        } else {
            if (w > out || abs) *w++ = '/';
            memcpy(w, p, n);
            w += n;
            depth++;
        }
        p += n;
    }
    if (w == out && abs) *w++ = '/';
    *w = 0;
    return true;
}

/* prefix + path with '%' and '#' percent-encoded: the normalised form, which decodes
 * back to path ('#' would otherwise start a label). */
static char *percent_encode_pct(const char *prefix, const char *path) {
    size_t extra = 0, n = strlen(path);
    for (size_t i = 0; i < n; i++) extra += (path[i] == '%' || path[i] == '#') ? 2 : 0;
    size_t pl = strlen(prefix);
    char *o = asset_alloc(pl + n + extra + 1);
    if (!o) return NULL;
    memcpy(o, prefix, pl);
    char *w = o + pl;
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '%' || path[i] == '#') {
            memcpy(w, path[i] == '%' ? "%25" : "%23", 3);
            w += 3;
        } else {
            *w++ = path[i];
        }
    }
    *w = 0;
    return o;
}

char *asset__uri_from_path(const char *prefix, const char *path) {
    return percent_encode_pct(prefix, path);
}

static bool valid_pkg_name(const char *s, size_t n) {
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static bool has_dotdot_segment(const char *p) {
    while (*p) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return true;
        p += n;
        while (*p == '/') p++;
    }
    return false;
}

/* Why a component of path p cannot be opened safely on this OS, or NULL (Windows:
 * device names, streams; platform.h). */
static const char *component_refused(const char *p) {
    while (*p) {
        size_t n = strcspn(p, "/");
        const char *why = n ? asset__path_component_refused(p, n) : NULL;
        if (why) return why;
        p += n;
        while (*p == '/') p++;
    }
    return NULL;
}

static asset_status_t fail(asset_uri_t *out, asset_status_t st, const char **why, const char *w,
                           char *tmp) {
    asset_free(tmp);
    asset__uri_dispose(out);
    *why = w;
    return st;
}

/* file paths: OS syntax (platform layer), resolve against base_dir, normalise,
 * confine to root. */
static asset_status_t parse_file(char *rel, bool from_uri, const char *base_dir, const char *root,
                                 asset_uri_t *out, const char **why) {
    asset_status_t pst = ASSET_E_INVALID;
    const char *refused = asset__path_prepare(rel, from_uri, &pst);
    if (refused) return fail(out, pst, why, refused, rel);
    if ((refused = component_refused(rel + asset__path_root_len(rel))))
        return fail(out, ASSET_E_FORBIDDEN, why, refused, rel);
    const char *base = root ? root : base_dir;
    char *joined;
    if (asset__path_root_len(rel)) {
        joined = rel;
        rel = NULL;
    } else if (rel[0] == '/') { /* rooted without a drive (Windows): base's drive */
        size_t bl = base ? asset__path_root_len(base) : 0;
        joined = asset__asprintf("%.*s%s", (int)(bl > 1 ? bl - 1 : 0), base ? base : "", rel);
        asset_free(rel);
        rel = NULL;
        if (!joined) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
    } else {
        joined = asset__asprintf("%s/%s", base ? base : "", rel);
        asset_free(rel);
        rel = NULL;
        if (!joined) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
    }
    char *norm = asset_alloc(strlen(joined) + 2);
    if (!norm) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", joined);
    bool ok = asset__path_normalize(joined, norm);
    asset_free(joined);
    if (!ok) return fail(out, ASSET_E_FORBIDDEN, why, "'..' climbs above the root", norm);
    if (root) {
        size_t rl = strlen(root);
        bool inside = rl == asset__path_root_len(root) ||
                      (strncmp(norm, root, rl) == 0 && (norm[rl] == 0 || norm[rl] == '/'));
        if (!inside) return fail(out, ASSET_E_FORBIDDEN, why, "path escapes file_root", norm);
    }
    out->path = norm;
    /* "file:///abs/x", and "file:///C:/abs/x" for a path with a drive */
    out->uri = percent_encode_pct(norm[0] == '/' ? "file://" : "file:///", norm);
    if (!out->uri) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
    strcpy(out->scheme, "file");
    return ASSET_OK;
}

asset_status_t asset__uri_parse(const char *in, const char *base_dir, const char *root,
                                asset_uri_t *out, const char **why) {
    memset(out, 0, sizeof *out);
    if (!in || !*in) return fail(out, ASSET_E_INVALID, why, "empty URI", NULL);
    size_t len = strnlen(in, ASSET__URI_MAX + 1);
    if (len > ASSET__URI_MAX) return fail(out, ASSET_E_INVALID, why, "URI too long", NULL);

    size_t sl = asset__uri_scheme_len(in, NULL);
    if (sl == 0) { /* a bare path: taken literally, no percent-decoding */
        char *rel = asset__strdup(in);
        if (!rel) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
        return parse_file(rel, false, base_dir, root, out, why);
    }
    if (sl >= sizeof out->scheme) return fail(out, ASSET_E_INVALID, why, "scheme too long", NULL);
    for (size_t i = 0; i < sl; i++) out->scheme[i] = (char)tolower((unsigned char)in[i]);
    out->scheme[sl] = 0;
    const char *rest = in + sl + 3;

    if (!strcmp(out->scheme, "http") || !strcmp(out->scheme, "https")) {
        /* "http://#x" and "http://?x" have no host either (found by fuzz/fuzz_uri.c) */
        if (strcspn(rest, "/?#") == 0) return fail(out, ASSET_E_INVALID, why, "missing host", NULL);
        for (const char *c = rest; *c; c++)
            if ((unsigned char)*c <= ' ' || *c == 0x7f)
                return fail(out, ASSET_E_INVALID, why, "space or control character in URL", NULL);
        const char *frag = strchr(rest, '#');
        size_t rl = frag ? (size_t)(frag - rest) : strlen(rest);
        /* lowercase the host */
        size_t hl = strcspn(rest, "/?#");
        out->uri = asset__asprintf("%s://%.*s", out->scheme, (int)rl, rest);
        if (!out->uri) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
        for (size_t i = 0; i < hl && i < rl; i++) {
            char *c = out->uri + sl + 3 + i;
            *c = (char)tolower((unsigned char)*c);
        }
        out->path = asset__strdup(out->uri + sl + 3);
        if (!out->path) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
        return ASSET_OK;
    }

    char *dec = asset__strdup(rest);
    if (!dec) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
    if (!strcmp(out->scheme, "file")) {
        if (!asset__strncasecmp(dec, "localhost/", 10))
            memmove(dec, dec + 9, strlen(dec + 9) + 1);
        else if (*dec && *dec != '/') /* file://host/path: a file on another machine */
            return fail(out, ASSET_E_INVALID, why,
                        "file:// URI names a host other than localhost (use file:///path)", dec);
        if (!percent_decode(dec, why)) return fail(out, ASSET_E_INVALID, why, *why, dec);
        if (!*dec) return fail(out, ASSET_E_INVALID, why, "empty path", dec);
        return parse_file(dec, true, base_dir, root, out, why);
    }
    if (!percent_decode(dec, why)) return fail(out, ASSET_E_INVALID, why, *why, dec);
    if (!*dec) return fail(out, ASSET_E_INVALID, why, "empty path", dec);

    if (!strcmp(out->scheme, "pkg")) {
        if (strchr(dec, '\\'))
            return fail(out, ASSET_E_FORBIDDEN, why, "contains a backslash", dec);
        if (dec[0] == '/') return fail(out, ASSET_E_FORBIDDEN, why, "absolute path in pkg://", dec);
        size_t nl = strcspn(dec, "/");
        if (nl == 2 && dec[0] == '.' && dec[1] == '.')
            return fail(out, ASSET_E_FORBIDDEN, why, "'..' as a package name", dec);
        if (!valid_pkg_name(dec, nl))
            return fail(out, ASSET_E_INVALID, why, "bad package name", dec);
        if (has_dotdot_segment(dec + nl))
            return fail(out, ASSET_E_FORBIDDEN, why, "'..' in a pkg:// path", dec);
        const char *refused = component_refused(dec);
        if (refused) return fail(out, ASSET_E_FORBIDDEN, why, refused, dec);
        char *norm = asset_alloc(strlen(dec) + 2);
        if (!norm) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", dec);
        asset__path_normalize(dec, norm); /* no "..": cannot fail */
        asset_free(dec);
        out->path = norm;
    } else {
        out->path = dec; /* mem:// and user schemes: the key as decoded */
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s://", out->scheme);
    out->uri = percent_encode_pct(prefix, out->path);
    if (!out->uri) return fail(out, ASSET_E_NO_MEMORY, why, "out of memory", NULL);
    return ASSET_OK;
}

void asset__uri_dispose(asset_uri_t *u) {
    asset_free(u->uri);
    asset_free(u->path);
    u->uri = u->path = NULL;
}

char *asset__uri_resolve(const char *base, const char *ref) {
    if (!base || !ref) return NULL;
    if (asset__uri_scheme_len(ref, NULL)) return asset__strdup(ref); /* stands alone */
    /* split base into prefix ("scheme://authority") and path */
    const char *sep = strstr(base, "://");
    const char *path = base;
    bool http = false, authority = false;
    if (sep) {
        path = sep + 3;
        http = !strncmp(base, "http://", 7) || !strncmp(base, "https://", 8);
        authority = http || !strncmp(base, "pkg://", 6);
        if (authority) path += strcspn(path, "/?#");
    }
    size_t plen = http ? strcspn(path, "?#") : strlen(path);
    const char *slash = NULL;
    for (const char *c = path; c < path + plen; c++)
        if (*c == '/') slash = c;
    /* the path to normalise: the base's directory (nothing for a rooted ref, "/" for a
     * bare authority) then ref; on the stack unless long. A dependency is resolved
     * once per declaration, so this is one allocation, not three. */
    size_t dl = ref[0] == '/'         ? 0
                : authority && !slash ? 1
                : slash               ? (size_t)(slash + 1 - path)
                                      : 0;
    const char *dir = authority && !slash ? "/" : path;
    size_t rl = strlen(ref), jl = dl + rl;
    char stack[512];
    char *joined = jl < sizeof stack ? stack : asset_alloc(jl + 1);
    if (!joined) return NULL;
    memcpy(joined, dir, dl);
    memcpy(joined + dl, ref, rl + 1);
    size_t pl = (size_t)(path - base); /* "scheme://authority" */
    char *res = asset_alloc(pl + jl + 2);
    if (res) {
        memcpy(res, base, pl);
        if (!asset__path_normalize(joined, res + pl)) /* climbs out: left for the parse */
            memcpy(res + pl, joined, jl + 1);
    }
    if (joined != stack) asset_free(joined);
    return res;
}
