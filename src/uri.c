/* uri.c - parse and normalise asset URIs (see uri.h for the rules). */
#include "internal.h"
#include "platform/platform.h"

#include <string.h>

size_t asset__uri_scheme_chars(const char *s, size_t max, bool *lower) {
    bool low = true;
    size_t n = 0;
    for (; n < max; n++) { /* ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
        unsigned char c = (unsigned char)s[n];
        if (c >= 'A' && c <= 'Z')
            low = false;
        else if (!asset__uri_scheme_byte(c, n == 0))
            break;
    }
    if (lower) *lower = n && low;
    return n;
}

size_t asset__uri_scheme_len(const char *s, bool *lower) {
    bool low;
    size_t n = asset__uri_scheme_chars(s, SIZE_MAX, &low); /* a NUL ends it */
    if (n && strncmp(s + n, "://", 3) != 0) n = 0;
    if (lower) *lower = n && low;
    return n;
}

uint64_t asset__scheme_bit(const char *scheme, size_t len) {
    uint32_t h = ASSET__SCHEME_HASH0;
    for (size_t i = 0; i < len; i++) h = asset__scheme_hash_step(h, (unsigned char)scheme[i]);
    return asset__scheme_hash_bit(h);
}

int asset__hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in place. Returns false on a malformed escape or a decoded NUL. */
static bool percent_decode(char *s, const char **why) {
    char *w = strchr(s, '%'); /* most paths have none: one vector scan, nothing moved */
    if (!w) return true;
    for (const char *r = w; *r; r++) {
        if (*r == '%') {
            int hi = asset__hexval((unsigned char)r[1]),
                lo = hi < 0 ? -1 : asset__hexval((unsigned char)r[2]);
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

/* The first '/' of [p, end), or end: eight bytes a step where the target is little-endian
 * (a byte equal to '/' is a zero byte of x ^ "////////"; the lowest flagged byte is the
 * first one, exactly), then one byte a step. */
static const char *next_slash(const char *p, const char *end) {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while ((size_t)(end - p) >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        x ^= 0x2f2f2f2f2f2f2f2fu;
        uint64_t m = (x - 0x0101010101010101u) & ~x & 0x8080808080808080u;
        if (m) return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < end && *p != '/') p++;
    return p;
}

/* The one pass over a path's components: collapses "//", "." and ".." into out (as
 * asset__path_normalize says), and puts each non-empty component that starts at or after
 * `check` ("." and ".." too, and those a ".." takes back) to the platform's
 * asset__path_component_refused, which is asset__path_components_refused's check in the
 * same pass. check NULL: none checked. Returns the first refusal (out then unfinished);
 * else NULL, with *climbed set (and out unfinished) when a ".." climbs above the start:
 * the components after it are still checked, so a refusal anywhere wins, as when the
 * path was checked whole before it was normalised. len: strlen(path). */
static const char *normalize_pass(const char *path, size_t len, const char *check, char *out,
                                  bool *climbed) {
    /* a drive ("C:" of "C:/x", Windows) is kept as it is; the rest is '/'-rooted */
    size_t rl = asset__path_root_len(path), pre = rl > 1 ? rl - 1 : 0;
    if (pre) memcpy(out, path, pre);
    out += pre;
    const char *p = path + pre, *end = path + len;
    bool abs = p[0] == '/';
    char *w = out;
    /* path's [run, run_end) are out's next bytes, not copied yet: the components kept one
     * after another, each with the one '/' before it, are copied at once */
    const char *run = p, *run_end = p;
    size_t depth = 0;
    *climbed = false;
    for (;;) {
        while (*p == '/') p++;
        if (p == end) break;
        const char *c = p;
        p = next_slash(p, end);
        size_t n = (size_t)(p - c);
        if (check && c >= check) {
            const char *why = asset__path_component_refused(c, n);
            if (why) return why;
        }
        if (*climbed || (n == 1 && c[0] == '.')) continue;
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            if (depth == 0) {
                *climbed = true;
                if (!check) return NULL; /* nothing left to check */
                continue;
            }
            depth--;
            memcpy(w, run, (size_t)(run_end - run));
            w += run_end - run;
            run = run_end;
            while (w > out && w[-1] != '/') w--;
            if (w > out) w--;
            continue;
        }
        /* with the '/' before it (c[-1]: a separator, or the root) when out has anything
         * before it or the path is rooted */
        const char *from = (w > out || run_end > run || abs) ? c - 1 : c;
        if (from != run_end) {
            if (run_end > run) memcpy(w, run, (size_t)(run_end - run));
            w += run_end - run;
            run = from;
        }
        run_end = c + n;
        depth++;
    }
    if (*climbed) return NULL;
    if (run_end > run) memcpy(w, run, (size_t)(run_end - run));
    w += run_end - run;
    if (w == out && abs) *w++ = '/';
    *w = 0;
    return NULL;
}

bool asset__path_normalize(const char *path, char *out) {
    bool climbed;
    normalize_pass(path, strlen(path), NULL, out, &climbed);
    return !climbed;
}

/* How many bytes encoding path's n bytes adds: '%' and '#' percent-encoded, so that the
 * normalised form decodes back to path ('#' would otherwise start a label). */
static size_t pct_extra(const char *path, size_t n) {
    /* most paths have neither: two vector scans instead of a loop over the bytes */
    if (!memchr(path, '%', n) && !memchr(path, '#', n)) return 0;
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) extra += (path[i] == '%' || path[i] == '#') ? 2 : 0;
    return extra;
}

bool asset__uri_path_fits(size_t pl, const char *path) {
    if (pl > ASSET__URI_MAX) return false;
    size_t room = ASSET__URI_MAX - pl, n = strnlen(path, room + 1);
    return n <= room && pct_extra(path, n) <= room - n;
}

/* Writes path's n bytes encoded at w; returns the end. extra: pct_extra(path, n). */
static char *pct_write(char *w, const char *path, size_t n, size_t extra) {
    if (!extra) {
        memcpy(w, path, n);
        return w + n;
    }
    for (size_t i = 0; i < n; i++) {
        if (path[i] == '%' || path[i] == '#') {
            memcpy(w, path[i] == '%' ? "%25" : "%23", 3);
            w += 3;
        } else {
            *w++ = path[i];
        }
    }
    return w;
}

/* prefix + path encoded, NUL-terminated: the normalised form. */
static char *percent_encode_pct(const char *prefix, const char *path) {
    size_t n = strlen(path), pl = strlen(prefix);
    size_t extra = pct_extra(path, n);
    char *o = asset_alloc(pl + n + extra + 1);
    if (!o) return NULL;
    memcpy(o, prefix, pl);
    *pct_write(o + pl, path, n, extra) = 0;
    return o;
}

char *asset__uri_from_path(const char *prefix, const char *path) {
    return percent_encode_pct(prefix, path);
}

static bool valid_pkg_name(const char *s, size_t n) {
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return false;
    for (size_t i = 0; i < n; i++)
        if (!(asset__ascii_alnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '-' || s[i] == '.'))
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

/* Scratch space for one step of a parse: on the stack when it fits (almost always),
 * else on the heap. Not to be copied once got. */
typedef struct scratch {
    char *p;
    char stack[512];
} scratch_t;

static char *scratch_get(scratch_t *s, size_t n) {
    s->p = n <= sizeof s->stack ? s->stack : asset_alloc(n);
    return s->p;
}

static void scratch_put(scratch_t *s) {
    if (s->p && s->p != s->stack) asset_free(s->p);
    s->p = NULL;
}

static asset_status_t fail(const char **why, asset_status_t st, const char *w) {
    *why = w;
    return st;
}

asset_status_t asset__uri_label_decode(const char *raw, char **out, const char **why) {
    *out = NULL;
    if (!*raw) return fail(why, ASSET_E_INVALID, "empty label after '#'");
    char *l = asset__strdup(raw);
    if (!l) return fail(why, ASSET_E_NO_MEMORY, "out of memory");
    if (!percent_decode(l, why)) {
        asset_free(l);
        return ASSET_E_INVALID;
    }
    *out = l;
    return ASSET_OK;
}

char *asset__uri_labeled(const char *uri, const char *label) {
    size_t ul = strlen(uri), n = strlen(label), extra = pct_extra(label, n);
    char *o = asset_alloc(ul + 1 + n + extra + 1);
    if (!o) return NULL;
    memcpy(o, uri, ul);
    o[ul] = '#';
    *pct_write(o + ul + 1, label, n, extra) = 0;
    return o;
}

/* ---- slabs (uri.h) ---- */

/* Under ASan a block given back inside its slab, and the room not carved yet, are
 * poisoned until the slab goes, so a use after free is still reported. */
#if defined(__SANITIZE_ADDRESS__)
#define URI_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define URI_ASAN 1
#endif
#endif
#ifdef URI_ASAN
#include <sanitizer/asan_interface.h>
#define URI_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define URI_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define URI_POISON(p, n) ((void)(p), (void)(n))
#define URI_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define URI_ROUND(n) \
    (((n) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t))
#define BLOCK_PRE ASSET__URI_BLOCK_PRE
_Static_assert(sizeof(asset__uri_slab_t) % _Alignof(max_align_t) == 0,
               "a slab's header keeps alignment");

/* Past this length a URI takes a block of its own (a slice of long ones would make a
 * slab past glibc's mmap threshold) */
#define SLAB_URI_MAX 512

/* the normal form and the decoded path, with a prefix ("file://") and their NULs; a
 * relative bare path gains the base dir in both (extra). '%' and '#' encoded (3 bytes for
 * 1) may go past it: that parse allocates its own */
static size_t estimate_of(size_t len, size_t room, size_t extra) {
    if (len > SLAB_URI_MAX) return 0;
    return BLOCK_PRE + URI_ROUND(room + 2 * (len + 8) + extra);
}

size_t asset__uri_slab_estimate_schemed(size_t len, size_t room) {
    return estimate_of(len, room, 0);
}

size_t asset__uri_slab_estimate(const char *in, size_t room, size_t base_len) {
    size_t len = in ? strnlen(in, SLAB_URI_MAX + 1) : SLAB_URI_MAX + 1;
    if (len > SLAB_URI_MAX) return 0;
    size_t extra = 0, sl = 0;
    if (*in != '/') { /* "scheme://", else a relative bare path: a short scan of its own
                       * (asset__uri_scheme_len's was half the estimate's cost) */
        for (; sl < len && sl < sizeof((asset_uri_t *)0)->scheme; sl++) {
            unsigned char c = (unsigned char)in[sl];
            if (!asset__uri_scheme_byte(c >= 'A' && c <= 'Z' ? c | 0x20 : c, sl == 0)) break;
        }
        if (!sl || in[sl] != ':' || in[sl + 1] != '/' || in[sl + 2] != '/')
            extra = 2 * (base_len + 1);
    }
    return estimate_of(len, room, extra);
}

asset__uri_slab_t *asset__uri_slab_new(size_t cap) {
    asset__uri_slab_t *sl = asset_alloc(sizeof *sl + cap);
    if (!sl) return NULL;
    atomic_init(&sl->u.live, 1);
    sl->u.cap = cap;
    sl->u.used = 0;
    URI_POISON(sl + 1, cap);
    return sl;
}

static void slab_put(asset__uri_slab_t *sl) {
    if (atomic_fetch_sub_explicit(&sl->u.live, 1, memory_order_acq_rel) == 1) {
        URI_UNPOISON(sl, sizeof *sl + sl->u.cap); /* as the allocator gave it */
        asset_free(sl);
    }
}

void asset__uri_slab_drop(asset__uri_slab_t *slab) {
    if (slab) slab_put(slab);
}

/* The block of n bytes for out's result: carved from out->slab when it has the room,
 * else allocated (out->slab cleared). NULL: out of memory. */
static char *block_alloc(asset_uri_t *out, size_t n) {
    asset__uri_slab_t *sl = out->slab;
    size_t need = BLOCK_PRE + URI_ROUND(n);
    if (!sl || sl->u.cap - sl->u.used < need) {
        out->slab = NULL;
        return asset_alloc(n);
    }
    char *p = (char *)(sl + 1) + sl->u.used;
    sl->u.used += need;
    URI_UNPOISON(p, need);
    asset__uri_block_pre_t *pre = (asset__uri_block_pre_t *)(void *)p;
    pre->slab = sl;
    pre->size = need;
    /* the maker's reference keeps it: no other thread can free it meanwhile */
    atomic_fetch_add_explicit(&sl->u.live, 1, memory_order_relaxed);
    return p + BLOCK_PRE;
}

void asset__uri_block_free(void *block, bool carved) {
    if (!carved) {
        asset_free(block);
        return;
    }
    asset__uri_block_pre_t *pre = (asset__uri_block_pre_t *)(void *)((char *)block - BLOCK_PRE);
    asset__uri_slab_t *sl = pre->slab;
    URI_POISON(pre, pre->size);
    slab_put(sl);
}

/* The result, in one block: out->uri (prefix + path, '%' and '#' encoded as in
 * percent_encode_pct), then out->path after its NUL. */
static asset_status_t finish(asset_uri_t *out, const char *prefix, size_t pl, const char *path,
                             size_t n, const char **why) {
    size_t extra = pct_extra(path, n), ul = pl + n + extra;
    /* the normal form is a URI too: one too long to parse again is refused now (a
     * '#' becomes "%23", and a bare path gains its base dir; found by fuzz_uri) */
    if (ul > ASSET__URI_MAX) return fail(why, ASSET_E_INVALID, "URI too long");
    char *o = block_alloc(out, out->room + ul + 1 + n + 1);
    if (!o) return fail(why, ASSET_E_NO_MEMORY, "out of memory");
    o += out->room;
    memcpy(o, prefix, pl);
    char *w = pct_write(o + pl, path, n, extra);
    *w++ = 0;
    memcpy(w, path, n);
    w[n] = 0;
    out->uri = o;
    out->path = w;
    return ASSET_OK;
}

/* file paths: OS syntax (platform layer), resolve against base_dir, normalise,
 * confine to root. rel is scratch, changed in place. */
static asset_status_t parse_file(char *rel, bool from_uri, const char *base_dir, const char *root,
                                 asset_uri_t *out, const char **why) {
    asset_status_t pst = ASSET_E_INVALID;
    const char *refused = asset__path_prepare(rel, from_uri, &pst);
    if (refused) return fail(why, pst, refused);
    size_t root_len = asset__path_root_len(rel);
    const char *base = root ? root : base_dir;
    if (!base && root_len == 0) { /* relative, or rooted without its drive */
        if ((refused = asset__path_components_refused(rel)))
            return fail(why, ASSET_E_FORBIDDEN, refused); /* a refusal comes first */
        return fail(why, ASSET_E_INVALID,
                    "a relative path, and the working directory could not be read when "
                    "the server was made");
    }
    if (!base) base = "";
    /* joined: rel when it has a root; base's drive + rel when it is rooted without a
     * drive (Windows); else base + "/" + rel */
    size_t rl = strlen(rel), bl = 0;
    bool sep = false;
    if (root_len == 0 && rel[0] == '/') {
        size_t dl = asset__path_root_len(base);
        bl = dl > 1 ? dl - 1 : 0;
    } else if (root_len == 0) {
        bl = strlen(base);
        sep = true;
    }
    scratch_t js, ns;
    js.p = NULL;
    char *joined = rel; /* rel alone when it has its root: no copy */
    if (bl + sep) {
        if (!(joined = scratch_get(&js, bl + sep + rl + 1)))
            return fail(why, ASSET_E_NO_MEMORY, "out of memory");
        memcpy(joined, base, bl);
        if (sep) joined[bl] = '/';
        memcpy(joined + bl + sep, rel, rl + 1);
    }
    char *norm = scratch_get(&ns, bl + sep + rl + 2);
    asset_status_t st = ASSET_OK;
    bool climbed = false;
    /* rel's own components are checked (from its root on), not base's; none where the
     * OS refuses no name */
    const char *check = asset__path_components_checked ? joined + bl + sep + root_len : NULL;
    if (!norm) {
        st = fail(why, ASSET_E_NO_MEMORY, "out of memory");
    } else if ((refused = normalize_pass(joined, bl + sep + rl, check, norm, &climbed))) {
        st = fail(why, ASSET_E_FORBIDDEN, refused);
    } else if (climbed) {
        st = fail(why, ASSET_E_FORBIDDEN, "'..' climbs above the root");
    } else if (root) {
        /* a root that is only a root ("/", or a drive's "C:/") takes every path on it,
         * and only those: not another drive's */
        size_t tl = strlen(root);
        bool inside = asset__path_prefix_equal(norm, root, tl) &&
                      (tl == asset__path_root_len(root) || norm[tl] == 0 || norm[tl] == '/');
        if (!inside)
            st = fail(why, ASSET_E_FORBIDDEN, "path escapes file_root");
        else /* spelled as the root is (Windows: "c:/GAME/x" is "C:/Game/x"): one URI */
            memcpy(norm, root, tl);
    }
    if (st == ASSET_OK) {
        /* "file:///abs/x", and "file:///C:/abs/x" for a path with a drive */
        const char *prefix = norm[0] == '/' ? "file://" : "file:///";
        st = finish(out, prefix, strlen(prefix), norm, strlen(norm), why);
        if (st == ASSET_OK) strcpy(out->scheme, "file");
    }
    scratch_put(&ns);
    scratch_put(&js);
    return st;
}

static bool remove_dot_segments(const char *in, char *out, bool strict);

/* http(s): the URL up to its fragment, normalised as RFC 3986 6.2.3 says so that one
 * resource is one URI (one cache entry, one coalesced load): the host lowercased, an
 * empty port or the scheme's default port dropped, an empty path made "/". The path is
 * what follows "scheme://". */
static asset_status_t parse_http_normal(const char *rest, size_t sl, asset_uri_t *out,
                                        const char **why) {
    /* "http://#x" and "http://?x" have no host either (found by fuzz/fuzz_uri.c) */
    if (strcspn(rest, "/?#") == 0) return fail(why, ASSET_E_INVALID, "missing host");
    for (const char *c = rest; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return fail(why, ASSET_E_INVALID, "space or control character in URL");
    const char *frag = strchr(rest, '#');
    size_t rl = frag ? (size_t)(frag - rest) : strlen(rest);
    size_t hl = strcspn(rest, "/?#"); /* the authority: its host lowercased */
    size_t h0 = 0;                    /* where the host starts: after "user:password@" */
    for (size_t i = 0; i < hl; i++)
        if (rest[i] == '@') h0 = i + 1;
    if (h0 == hl) return fail(why, ASSET_E_INVALID, "missing host");
    /* the port: after the first ':' past the host ("[v6]:port"); when it says nothing
     * (empty, or the scheme's default) it goes, and the authority ends at ae */
    size_t ae = hl, c = h0;
    if (rest[h0] == '[')
        while (c < hl && rest[c] != ']') c++;
    while (c < hl && rest[c] != ':') c++;
    if (c > h0 && c < hl) {
        const char *port = rest + c + 1;
        size_t pn = hl - c - 1;
        if (!pn || (sl == 4 && pn == 2 && !memcmp(port, "80", 2)) ||
            (sl == 5 && pn == 3 && !memcmp(port, "443", 3)))
            ae = c;
    }
    size_t slash = rest[hl] == '/' ? 0 : 1; /* "http://h" and "http://h?q": the path "/" */
    /* its dot segments removed (RFC 3986 5.2.4), as libcurl and fetch() do before they
     * send it: "http://h/a/../b" is the request for "/b", one URI with "http://h/b" */
    const char *path = rest + hl;
    size_t pn = slash ? 0 : strcspn(path, "?#"), dn = pn;
    scratch_t ps;
    ps.p = NULL;
    char *dotless = NULL;
    if (pn && asset__memmem(path, pn, "/.", 2)) {
        if (!(dotless = scratch_get(&ps, 2 * (pn + 1))))
            return fail(why, ASSET_E_NO_MEMORY, "out of memory");
        memcpy(dotless + pn + 1, path, pn);
        dotless[pn + 1 + pn] = 0;
        remove_dot_segments(dotless + pn + 1, dotless, false);
        dn = strlen(dotless);
    }
    size_t ol = ae + slash + dn + (rl - hl - pn);
    /* the normal form is a URI too (as in finish): "http://h?q..." gains its '/' */
    if (sl + 3 + ol > ASSET__URI_MAX) {
        scratch_put(&ps);
        return fail(why, ASSET_E_INVALID, "URI too long");
    }
    char *o = block_alloc(out, out->room + sl + 3 + ol + 1 + ol + 1);
    if (!o) {
        scratch_put(&ps);
        return fail(why, ASSET_E_NO_MEMORY, "out of memory");
    }
    o += out->room;
    memcpy(o, out->scheme, sl);
    memcpy(o + sl, "://", 3);
    char *p = o + sl + 3;
    memcpy(p, rest, ae);
    for (size_t i = h0; i < ae; i++) p[i] = (char)asset__ascii_lower((unsigned char)p[i]);
    if (slash) p[ae] = '/';
    memcpy(p + ae + slash, dotless ? dotless : path, dn);
    memcpy(p + ae + slash + dn, path + pn, rl - hl - pn);
    p[ol] = 0;
    scratch_put(&ps);
    memcpy(p + ol + 1, p, ol + 1);
    out->uri = o;
    out->path = p + ol + 1;
    return ASSET_OK;
}

/* Whether the escaped '.' at rest[i] is in a path segment of dots alone, one or two
 * ("%2E", ".%2e"): decoded, it would be a dot segment, which libcurl removes and does
 * not remove as written. hl: where the path starts; q: where it ends (its query or
 * label), found once by the caller (found here, a path of escaped dots cost a walk of
 * the path per escape). */
static bool dot_segment(const char *rest, size_t i, size_t hl, size_t q) {
    if (i < hl || i >= q) return false; /* the authority, or the query */
    /* at most 6 bytes either way: a longer segment is no dot segment (and a long run of
     * escapes costs no quadratic walk) */
    size_t s = i, e = i, dots = 0;
    while (s > hl && rest[s - 1] != '/' && i - s < 7) s--;
    while (e < q && rest[e] != '/' && e - i < 7) e++;
    if ((s > hl && rest[s - 1] != '/') || (e < q && rest[e] != '/')) return false;
    for (size_t k = s; k < e; k++, dots++)
        if (rest[k] == '%' && k + 2 < e && rest[k + 1] == '2' && (rest[k + 2] | 0x20) == 'e')
            k += 2;
        else if (rest[k] != '.')
            return false;
    return dots <= 2;
}

/* RFC 3986 6.2.2.1 and 6.2.2.2 for what precedes the label: an escape's hex digits
 * upper-cased, an escaped unreserved character (ALPHA, DIGIT, "-._~") decoded, so that
 * "%2f" and "%2F", or "%41" and "A", are one URI (one cache entry, one fetch). Done
 * before the rest (parse_http_normal): a decoded host is lowercased. A '%' that starts
 * no escape ("100%", "%zz") is left as written, and so are a hex digit's escape right
 * after it and a segment of escaped dots ("%2E%2E", see dot_segment). */
static asset_status_t parse_http(const char *rest, size_t sl, asset_uri_t *out, const char **why) {
    size_t rl = strcspn(rest, "#"), hl = strcspn(rest, "/?#");
    size_t q = hl + strcspn(rest + hl, "?#"); /* the path's end */
    const char *pct = memchr(rest, '%', rl);
    if (!pct) return parse_http_normal(rest, sl, out, why); /* most URLs: nothing to do */
    size_t len = rl + strlen(rest + rl);
    scratch_t ns;
    char *n = scratch_get(&ns, len + 1);
    if (!n) return fail(why, ASSET_E_NO_MEMORY, "out of memory");
    size_t done = (size_t)(pct - rest);
    memcpy(n, rest, done);
    char *w = n + done;
    for (size_t i = done; i < rl; i++) {
        int hi = rest[i] == '%' && i + 2 < rl ? asset__hexval((unsigned char)rest[i + 1]) : -1;
        int lo = hi < 0 ? -1 : asset__hexval((unsigned char)rest[i + 2]);
        if (lo < 0) {
            *w++ = rest[i];
            continue;
        }
        int c = hi * 16 + lo;
        /* a '%' that starts no escape would start one with a hex digit decoded after it
         * ("%4%41" would be "%4A", which the next parse read as "J"): that stays escaped */
        bool joins =
            asset__hexval(c) >= 0 && ((w - n >= 1 && w[-1] == '%') ||
                                      (w - n >= 2 && w[-2] == '%' && asset__hexval(w[-1]) >= 0));
        if (!joins &&
            ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '_' || c == '~' || (c == '.' && !dot_segment(rest, i, hl, q)))) {
            *w++ = (char)c;
        } else {
            *w++ = '%';
            *w++ = "0123456789ABCDEF"[hi];
            *w++ = "0123456789ABCDEF"[lo];
        }
        i += 2;
    }
    memcpy(w, rest + rl, len - rl + 1); /* the label as written, and the NUL */
    asset_status_t st = parse_http_normal(n, sl, out, why);
    scratch_put(&ns);
    return st;
}

/* pkg://, mem:// and user schemes: dec is the decoded part after "scheme://" (scratch). */
static asset_status_t parse_keyed(char *dec, size_t sl, asset_uri_t *out, const char **why) {
    char prefix[sizeof out->scheme + 3];
    memcpy(prefix, out->scheme, sl);
    memcpy(prefix + sl, "://", 3);
    if (strcmp(out->scheme, "pkg") != 0) /* mem:// and user schemes: the key as decoded */
        return finish(out, prefix, sl + 3, dec, strlen(dec), why);
    if (strchr(dec, '\\')) return fail(why, ASSET_E_FORBIDDEN, "contains a backslash");
    if (dec[0] == '/') return fail(why, ASSET_E_FORBIDDEN, "absolute path in pkg://");
    size_t nl = strcspn(dec, "/");
    if (nl == 2 && dec[0] == '.' && dec[1] == '.')
        return fail(why, ASSET_E_FORBIDDEN, "'..' as a package name");
    if (!valid_pkg_name(dec, nl)) return fail(why, ASSET_E_INVALID, "bad package name");
    if (has_dotdot_segment(dec + nl)) return fail(why, ASSET_E_FORBIDDEN, "'..' in a pkg:// path");
    /* names this OS cannot open safely (Windows: device names, streams) are refused by
     * the pkg source, before it opens anything, for directory packages only: they were
     * refused here, and an embedded table's "aux.json" never loaded on Windows */
    scratch_t ns;
    char *norm = scratch_get(&ns, strlen(dec) + 2);
    if (!norm) return fail(why, ASSET_E_NO_MEMORY, "out of memory");
    asset__path_normalize(dec, norm); /* no "..": cannot fail */
    asset_status_t st = finish(out, prefix, sl + 3, norm, strlen(norm), why);
    scratch_put(&ns);
    return st;
}

/* Whether the lowercased scheme (sl bytes) is name: lengths first, no strcmp. */
static bool scheme_is(const char *scheme, size_t sl, const char *name) {
    return strlen(name) == sl && !memcmp(scheme, name, sl);
}

/* One allocation for the result (out->uri, with out->path in the same block); the
 * steps in between work in scratch space, on the stack unless the URI is long. */
asset_status_t asset__uri_parse(const char *in, const char *base_dir, const char *root,
                                asset_uri_t *out, const char **why) {
    return asset__uri_parse_room(in, base_dir, root, 0, NULL, out, why);
}

static asset_status_t parse_any(const char *in, const char *base_dir, const char *root,
                                asset_uri_t *out, const char **why);

asset_status_t asset__uri_parse_room(const char *in, const char *base_dir, const char *root,
                                     size_t room, asset__uri_slab_t *slab, asset_uri_t *out,
                                     const char **why) {
    memset(out, 0, sizeof *out);
    out->room = room; /* read by finish and parse_http, which allocate the block */
    out->slab = slab; /* ... there (block_alloc), which clears it for a block of its own */
    asset_status_t st = parse_any(in, base_dir, root, out, why);
    if (!out->uri) out->slab = NULL; /* nothing carved */
    return st;
}

static asset_status_t parse_any(const char *in, const char *base_dir, const char *root,
                                asset_uri_t *out, const char **why) {
    if (!in || !*in) return fail(why, ASSET_E_INVALID, "empty URI");
    size_t len = strnlen(in, ASSET__URI_MAX + 1);
    if (len > ASSET__URI_MAX) return fail(why, ASSET_E_INVALID, "URI too long");

    size_t sl = asset__uri_scheme_len(in, NULL);
    scratch_t ds;
    asset_status_t st;
    if (sl == 0) { /* a bare path: taken literally, no percent-decoding */
        char *rel = scratch_get(&ds, len + 1);
        if (!rel) return fail(why, ASSET_E_NO_MEMORY, "out of memory");
        memcpy(rel, in, len + 1);
        st = parse_file(rel, false, base_dir, root, out, why);
        scratch_put(&ds);
        return st;
    }
    if (sl >= sizeof out->scheme) return fail(why, ASSET_E_INVALID, "scheme too long");
    for (size_t i = 0; i < sl; i++) out->scheme[i] = (char)asset__ascii_lower((unsigned char)in[i]);
    out->scheme[sl] = 0;
    const char *rest = in + sl + 3;
    if (scheme_is(out->scheme, sl, "http") || scheme_is(out->scheme, sl, "https"))
        return parse_http(rest, sl, out, why);

    size_t rl = len - sl - 3;
    char *dec = scratch_get(&ds, rl + 1);
    if (!dec) return fail(why, ASSET_E_NO_MEMORY, "out of memory");
    memcpy(dec, rest, rl + 1);
    bool file = scheme_is(out->scheme, sl, "file");
    if (file && !asset__strncasecmp(dec, "localhost", 9) && (dec[9] == '/' || !dec[9]))
        memmove(dec, dec + 9, strlen(dec + 9) + 1); /* "file://localhost" alone: empty path */
    if (file && *dec && *dec != '/') /* file://host/path: a file on another machine */
        st = fail(why, ASSET_E_INVALID,
                  "file:// URI names a host other than localhost (use file:///path)");
    else if (!percent_decode(dec, why))
        st = ASSET_E_INVALID;
    else if (!*dec)
        st = fail(why, ASSET_E_INVALID, "empty path");
    else if (file)
        st = parse_file(dec, true, base_dir, root, out, why);
    else
        st = parse_keyed(dec, sl, out, why);
    scratch_put(&ds);
    return st;
}

void asset__uri_dispose(asset_uri_t *u) {
    /* u->path lives in the same block */
    if (u->uri) asset__uri_block_free(u->uri - u->room, u->slab != NULL);
    u->uri = u->path = NULL;
    u->slab = NULL;
}

size_t asset__uri_name_len(const char *uri) {
    bool named =
        !strncmp(uri, "file://", 7) || !strncmp(uri, "pkg://", 6) || !strncmp(uri, "mem://", 6);
    return strcspn(uri, named ? "#" : "?#");
}

bool asset__uri_key_is_normal(const char *scheme, size_t sl, const char *rest, size_t rl) {
    if (scheme_is(scheme, sl, "file") || scheme_is(scheme, sl, "http") ||
        scheme_is(scheme, sl, "https") || !rl || sl >= sizeof((asset_uri_t *)0)->scheme ||
        sl + 3 + rl > ASSET__URI_MAX)
        return false;
    for (size_t i = 0; i < rl; i++) {
        if (rest[i] == '\\') return false;
        /* a '%' or '#' of the key is written "%25", "%23"; any other escape is decoded */
        if (rest[i] == '%' &&
            (i + 2 >= rl || rest[i + 1] != '2' || (rest[i + 2] != '5' && rest[i + 2] != '3')))
            return false;
    }
    if (!scheme_is(scheme, sl, "pkg")) return true; /* mem:// and user schemes: as decoded */
    const char *p = rest, *end = rest + rl;
    const char *e = memchr(p, '/', rl);
    if (!valid_pkg_name(p, (size_t)((e ? e : end) - p))) return false;
    while (e) { /* each segment after the package's name: not empty, ".", or ".." */
        p = e + 1;
        e = memchr(p, '/', (size_t)(end - p));
        size_t n = (size_t)((e ? e : end) - p);
        if (!n || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
    }
    return true;
}

/* RFC 3986's remove_dot_segments (5.2.4) of a URL's path, or of a mem:// or custom
 * key, into out (room for strlen(in) + 1): "." and ".." segments go; empty segments and
 * a trailing '/' stay (they name other resources, other keys). A ".." above the start
 * is dropped (strict false: a URL's) or makes it return false (strict: a key's, left
 * as written; out is then unfinished). in may be rooted ("/a") or not ("d/a"). */
static bool remove_dot_segments(const char *in, char *out, bool strict) {
    bool rooted = in[0] == '/';
    char *w = out;
    for (const char *p = in + rooted;;) {
        const char *e = p + strcspn(p, "/");
        size_t n = (size_t)(e - p);
        bool dot = n == 1 && p[0] == '.', dotdot = n == 2 && p[0] == '.' && p[1] == '.';
        if (dotdot && w == out && strict) return false;
        if (dotdot) { /* the last segment and the '/' before it */
            while (w > out && w[-1] != '/') w--;
            if (w > out) w--;
        }
        /* a segment; after a last "." or "..", an empty one: "a/b/.." is "a/" */
        if (!(dot || dotdot) || !*e) {
            if (w > out || rooted) *w++ = '/';
            if (!(dot || dotdot)) {
                memcpy(w, p, n);
                w += n;
            }
        }
        if (!*e) break;
        p = e + 1;
    }
    *w = 0;
    return true;
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
        /* a file URI's drive (Windows: "/C:" of "file:///C:/x") is its path's root, as
         * the parse reads it: a ".." never takes it away (that climbs above the root,
         * left for the parse to refuse), and a rooted ref keeps it */
        if (!strncmp(base, "file://", 7) && path[0] == '/' && asset__path_root_len(path + 1) > 1)
            path += asset__path_root_len(path + 1); /* "/C:" */
    }
    if (authority && ref[0] == '/' && ref[1] == '/') { /* "//host/x": the base's scheme only */
        size_t sl = (size_t)(sep - base) + 1, rl = strlen(ref);
        char *res = asset_alloc(sl + rl + 1);
        if (res) {
            memcpy(res, base, sl);
            memcpy(res + sl, ref, rl + 1);
        }
        return res;
    }
    size_t plen = http ? strcspn(path, "?#") : strlen(path);
    /* a reference with no path (a query or a label alone, or empty) names the base
     * itself, with the reference's query (http), else the base's, and the reference's
     * label (RFC 3986, 5.2.2): "?v=2" fetched the base's directory */
    size_t rl = strlen(ref), rp = http ? strcspn(ref, "?#") : strcspn(ref, "#");
    if (rp == 0) {
        size_t keep = http && ref[0] == '?' ? (size_t)(path + plen - base) : strcspn(base, "#");
        char *res = asset_alloc(keep + rl + 1);
        if (res) {
            memcpy(res, base, keep);
            memcpy(res + keep, ref, rl + 1);
        }
        return res;
    }
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
    /* only ref's path is joined and normalised: its "#label" (and an http query) are
     * not path segments, and come after the result unchanged */
    size_t jl = dl + rp;
    char stack[512];
    char *joined = jl < sizeof stack ? stack : asset_alloc(jl + 1);
    if (!joined) return NULL;
    memcpy(joined, dir, dl);
    memcpy(joined + dl, ref, rp);
    joined[jl] = 0;
    size_t pl = (size_t)(path - base); /* "scheme://authority" */
    char *res = asset_alloc(pl + jl + 2 + (rl - rp));
    if (res) {
        memcpy(res, base, pl);
        /* a URL's path and a key keep their empty segments and trailing '/' (they mean
         * something); a file or pkg path is normalised as the parse does */
        bool named = http || (sep && strncmp(base, "file://", 7) && strncmp(base, "pkg://", 6));
        bool ok = named ? remove_dot_segments(joined, res + pl, !http)
                        : asset__path_normalize(joined, res + pl);
        if (!ok) /* climbs out: left for the parse */
            memcpy(res + pl, joined, jl + 1);
        size_t end = pl + strlen(res + pl);
        memcpy(res + end, ref + rp, rl - rp + 1);
    }
    if (joined != stack) asset_free(joined);
    return res;
}

char *asset__uri_resolve_path(const char *base, const char *path) {
    if (!base || !path) return NULL;
    /* appended as listed, not resolved: a mem:// or user source's key may hold "..",
     * "." or empty segments, which resolution took as path steps (a folder's child
     * "../secret" loaded the key "secret", outside the folder: a review found) */
    return percent_encode_pct(base, path);
}
