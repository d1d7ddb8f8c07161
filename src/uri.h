/* uri.h - URI parsing and normalisation: scheme detection, percent-decoding, dot
 * segments, and the path rules that keep file:// inside file_root and pkg:// inside
 * its package. Pure functions, any thread. */
#ifndef ASSET_URI_H
#define ASSET_URI_H

#include "asset_server.h"
#include "platform/atomic.h"

#include <stddef.h>

#define ASSET__URI_MAX 8192

/* A block that a slice of a group's parses carve their results from (load.c), so that
 * the jobs their misses make in them (ASSET__JOB_ROOM) are one allocation a slice, not
 * one each. Each block carved counts one reference, and its maker holds one until
 * asset__uri_slab_drop; the last one let go frees it (any thread). A block kept long
 * (a job that never ends) keeps its whole slab. */
typedef struct asset__uri_slab {
    union {
        struct {
            atomic_uint live; /* blocks carved and not freed, and the maker's 1 */
            size_t cap, used; /* bytes after the header; used: the maker's only */
        } u;
        max_align_t align; /* the blocks after the header keep max_align_t's alignment */
    };
} asset__uri_slab_t;
/* What precedes each carved block (ASSET__URI_BLOCK_PRE bytes): its slab, and its size
 * with what precedes it; the blocks follow one another from the header's end. */
typedef struct asset__uri_block_pre {
    asset__uri_slab_t *slab;
    size_t size;
} asset__uri_block_pre_t;
#define ASSET__URI_BLOCK_PRE                                                                \
    ((sizeof(asset__uri_block_pre_t) + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * \
     _Alignof(max_align_t))

typedef struct asset_uri {
    char scheme[24];         /* lowercase: "file", "pkg", "mem", "http", ... */
    char *uri;               /* normalised, e.g. "file:///abs/a.png", "pkg://game/a.png" */
    char *path;              /* decoded part after "scheme://": "/abs/a.png", "game/a.png" */
    size_t room;             /* bytes of the block before uri (asset__uri_parse_room) */
    asset__uri_slab_t *slab; /* the slab the block was carved from, or NULL: its own */
} asset_uri_t;               /* uri and path are one block: asset__uri_dispose frees both */

/* Parses `in`. `base_dir` (absolute, normalised, no trailing '/') is where bare
 * relative paths resolve; `root` (same form, or NULL) confines file paths. On error
 * returns ASSET_E_INVALID, ASSET_E_FORBIDDEN (or ASSET_E_NO_MEMORY) with *why set to a
 * static reason; out->uri and out->path are then NULL. One allocation on success (the
 * block of uri and path), none on failure: the steps between work on the stack unless
 * the URI or base_dir is long. */
asset_status_t asset__uri_parse(const char *in, const char *base_dir, const char *root,
                                asset_uri_t *out, const char **why);
/* The same, with `room` bytes (a multiple of alignof(max_align_t)) at the start of the
 * block, before out->uri, for a record the caller makes there (load.c: a new job, so
 * that a job and its URI are one allocation); out->room says how many. slab (or NULL):
 * the block is carved from it when it has room left (out->slab says so), else
 * allocated on its own. slab is the calling thread's until it hands the block on. */
asset_status_t asset__uri_parse_room(const char *in, const char *base_dir, const char *root,
                                     size_t room, asset__uri_slab_t *slab, asset_uri_t *out,
                                     const char **why);
void asset__uri_dispose(asset_uri_t *u);
/* Frees a parse's block (u->uri - u->room) that outlived its asset_uri_t (a job made in
 * it): carved is whether u->slab was set. Any thread, no lock. */
void asset__uri_block_free(void *block, bool carved);
/* The bytes a slab needs for the block of a parse of in with `room` (base_len: the
 * length of the base dir a relative bare path joins), or 0 when in is long enough to
 * take a block of its own (or NULL). An estimate: a parse that finds too little room
 * left allocates its block on its own. */
size_t asset__uri_slab_estimate(const char *in, size_t room, size_t base_len);
/* The same for a URI known to be len bytes with a scheme and "://" (the fast path's
 * measure, load.c): no scan. Any thread. */
size_t asset__uri_slab_estimate_schemed(size_t len, size_t room);
/* A slab of cap bytes for blocks, its maker's reference held; NULL when out of memory
 * (the parses then allocate their own). */
asset__uri_slab_t *asset__uri_slab_new(size_t cap);
/* Lets go of the maker's reference (NULL: nothing): the slab goes now if no block
 * carved from it is left, else with the last one. */
void asset__uri_slab_drop(asset__uri_slab_t *slab);
/* Whether c is a scheme's character other than an uppercase letter (RFC 3986: an ASCII
 * letter first, then letters, digits, '+', '-', '.'; ASCII whatever the locale), at its
 * start when `first`: the one test of asset__uri_scheme_chars and of a load's fast path,
 * which reads a normalised (lowercase) scheme (load.c, fast_prepare). */
static inline bool asset__uri_scheme_byte(unsigned char c, bool first) {
    return (c >= 'a' && c <= 'z') ||
           (!first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'));
}
/* The length of the scheme of a "scheme://" prefix of s (RFC 3986: an ASCII letter, then
 * letters, digits, '+', '-', '.'), or 0 when s has none. *lower (may be NULL): whether
 * that scheme is lowercase already, as a normalised URI's is. */
size_t asset__uri_scheme_len(const char *s, bool *lower);
/* The length of the run of scheme characters at the start of s[0..max) (as above, with
 * no "://" after it: 0 unless s starts with an ASCII letter); *lower (may be NULL): true
 * when that run is not empty and has no uppercase letter. A NUL ends it. */
size_t asset__uri_scheme_chars(const char *s, size_t max, bool *lower);
/* The length of uri's name, for matching its suffix: up to a '#' label, and up to a '?'
 * query except in the library's own file://, pkg:// and mem:// names, where '?' is a
 * character of the name (a file "a?.json"). */
size_t asset__uri_name_len(const char *uri);
/* Whether rest (rl bytes, what follows "scheme://" of the lowercase scheme, sl bytes; no
 * '#' in it) is certainly a key as asset__uri_parse writes it, so that parsing
 * "scheme://rest" would succeed and give it back unchanged. Conservative, no allocation:
 * false for file://, http:// and https:// (their parse does more), for a scheme too long
 * for asset_uri_t's (the parse refuses it), and for anything a
 * keyed parse would change or refuse ('%' but "%25" and "%23", a backslash; in pkg://
 * a bad package name, an empty, "." or ".." segment, a trailing '/'). */
bool asset__uri_key_is_normal(const char *scheme, size_t sl, const char *rest, size_t rl);
/* The value of the hex digit c (0-9, a-f, A-F), or -1 when c is none. */
int asset__hexval(int c);
/* One of 64 bits for the scheme's first len bytes (a hash: schemes may share one). */
uint64_t asset__scheme_bit(const char *scheme, size_t len);
/* asset__scheme_bit a byte at a time, for a caller that scans the scheme anyway: h starts
 * at ASSET__SCHEME_HASH0, takes each byte with asset__scheme_hash_step, and
 * asset__scheme_hash_bit(h) is asset__scheme_bit of those bytes. */
#define ASSET__SCHEME_HASH0 2166136261u /* FNV-1a */
static inline uint32_t asset__scheme_hash_step(uint32_t h, unsigned char c) {
    return (h ^ c) * 16777619u;
}
static inline uint64_t asset__scheme_hash_bit(uint32_t h) {
    return (uint64_t)1 << ((h ^ (h >> 6)) & 63);
}
/* Whether a prefix of pl bytes ("mem://", "pkg://name/") and path, its '%' and '#'
 * encoded, fit ASSET__URI_MAX: whether some URI names path. Reads at most that many
 * bytes of path. */
bool asset__uri_path_fits(size_t pl, const char *path);
/* The normalised URI of a decoded path: prefix ("mem://") + path, '%' and '#' encoded. */
char *asset__uri_from_path(const char *prefix, const char *path);
/* The label of "uri#label" (raw: what follows the '#'), percent-decoded as a name is,
 * into *out (new string): ASSET_OK, ASSET_E_INVALID (*why: empty, a malformed escape or
 * a NUL) or ASSET_E_NO_MEMORY. */
asset_status_t asset__uri_label_decode(const char *raw, char **out, const char **why);
/* The normal form of a labeled URI: uri + '#' + label with its '%' and '#' encoded (so
 * that it decodes back to label). New string or NULL. */
char *asset__uri_labeled(const char *uri, const char *label);
/* Normalises an absolute or relative '/'-path: collapses "//", ".", "..". Writes into
 * out (capacity >= strlen(path) + 2). Returns false if ".." climbs above the start. */
bool asset__path_normalize(const char *path, char *out);
/* Resolves `ref` against the URI `base` (RFC 3986 style for the path part): a
 * reference with a scheme is returned as is; against a base with an authority (http,
 * https, pkg), "//authority/path" takes only the base's scheme (a network-path
 * reference); elsewhere it is a rooted path. A reference with no path (a query or a
 * label alone, or "") names the base itself (RFC 3986, 5.2.2): base up to its label, or
 * for http up to its query when ref has one, then ref. An http(s) path is resolved as
 * a URL's (RFC 3986, 5.2.4: empty segments and a trailing '/' kept, a ".." above the
 * root dropped), a mem:// or custom key the same but for a ".." above its start (left
 * as written); a file or pkg path as a path (asset__path_normalize). A file
 * URI's drive (Windows: "/C:" of "file:///C:/x") is its root: a ".." never takes it
 * away (a climb above it is left for the parse, which refuses it) and a rooted ref
 * keeps it. Returns a new string or NULL. */
char *asset__uri_resolve(const char *base, const char *ref);
/* The URI of a decoded relative path (a name from a folder's listing, whose '%' and
 * '#' are the file's own) in the folder base ("<folder URI>/"): base + the path,
 * encoded, with no dot-segment resolution (a mem:// key "d/../x" is a key of its own,
 * in d). New string or NULL. */
char *asset__uri_resolve_path(const char *base, const char *path);

#endif
