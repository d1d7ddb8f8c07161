/* load.c - turning URIs into dispatched handles: the cache-hit fast path, coalescing
 * with a load in flight, job creation. One load (asset__load_hooked) or a slice of a
 * group's (asset__load_many) goes through the same phases: what needs no lock (URI
 * parse, loader choice, the handle) for each, then one critical section for all. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* [lock] Fails h at once (delivered at the next flush) with "<uri>: <what>". */
static void fail_now(asset_handle_t *h, asset_status_t st, const char *fmt, ...) ASSET_PRINTF(3, 4);
static void fail_now(asset_handle_t *h, asset_status_t st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *what = asset__vasprintf(fmt, ap);
    va_end(ap);
    char *msg = what ? asset__asprintf("%s: %s", asset__handle_uri(h), what) : NULL;
    asset__handle_decide(h, st, msg, NULL, 0);
    asset_free(what);
    asset_free(msg);
}

/* [lock] The job in flight that a load of uri with these settings can join: same URI,
 * loader, cache use, listing mode and expected digest. A no_cache load promises a fresh
 * read: it joins only a job whose read has not started yet (a review found one issued
 * after a file changed given the bytes of a read that began before). Folder listings
 * (no_cache too) join as before. */
static asset__job_t *find_inflight(asset_server_t *s, const char *uri, uint32_t h,
                                   asset__loader_slot_t *ld, bool no_cache, bool recursive,
                                   const char *sha256) {
    for (asset__map_node_t *n = (asset__map_node_t *)asset__map_find_hashed(&s->inflight, uri, h);
         n; n = asset__map_get_next(&s->inflight, n)) {
        asset__job_t *j = (asset__job_t *)n;
        if (j->loader == ld && j->no_cache == no_cache && j->recursive == recursive &&
            /* not read before a change the server was told of, a reload asked (it got
             * the old bytes; a review), or a replace of its source */
            asset__job_answer_current(j) &&
            /* a revalidation of a value invalidated, cleared or replaced since: "not
             * modified" hands out that very value, which a later load must not get (it
             * got it, with no parse, after asset_server_invalidate: a review) */
            !(j->cached && j->cached->dropped) &&
            !j->label_base && /* its NOT_MODIFIED has a label's value, not the file's */
            (j->sha256 ? sha256 && !asset__strcasecmp(j->sha256, sha256) : !sha256) &&
            (!no_cache || j->is_list ||
             (j->state == ASSET__JOB_QUEUED && j->phase == ASSET__PHASE_READ)))
            return j;
    }
    return NULL;
}

/* [lock] j's source changed: unless still queued to read (it reads the change), no
 * later load joins it and its value is not cached. */
static void mark_changed(asset__job_t *j) {
    if (!(j->state == ASSET__JOB_QUEUED && j->phase == ASSET__PHASE_READ)) j->changed = 1;
}

/* [lock] The listings in flight of the folder uri names, spelt with or without one
 * trailing '/' (uri is a writable copy with room for it): the direct parent's (first),
 * a recursive one's of a folder further up. */
static void mark_listings(asset_server_t *s, char *uri, size_t n, bool first) {
    for (int slash = 0; slash < 2; slash++) {
        uri[n] = '/';
        uri[n + (size_t)slash] = '\0';
        for (asset__map_node_t *m = asset__map_get(&s->inflight, uri); m;
             m = asset__map_get_next(&s->inflight, m)) {
            asset__job_t *j = (asset__job_t *)m;
            if (j->is_list && (first || j->recursive)) mark_changed(j);
        }
    }
}

/* [lock] uri's entry changed: so did the listings of the folders above it. A folder load
 * made after asset_mem_put("d/x") returned, or after asset_server_invalidate of a file
 * in d, joined a listing in flight that had taken d's names before and missed d/x (a
 * review; the fortieth moved the check from mem:// alone to every change the server is
 * told of). Each folder is the URI up to a '/' after the scheme's "//"; a listing's URI
 * has no trailing '/' (folder_trim) but an http(s) URL's, whose one is looked up too. */
static void mark_folders_changed(asset_server_t *s, const char *uri) {
    if (!s->inflight.count) return; /* no load in flight: nothing to look up */
    const char *sep = strstr(uri, "://");
    size_t n = strlen(uri);
    char *buf = sep ? asset_alloc(n + 2) : NULL;
    if (!buf) { /* out of memory: every listing in flight is taken as changed */
        size_t b = 0;
        for (asset__map_node_t *m = NULL; (m = asset__map_next(&s->inflight, m, &b));)
            if (((asset__job_t *)m)->is_list) mark_changed((asset__job_t *)m);
        return;
    }
    memcpy(buf, uri, n + 1);
    size_t top = (size_t)(sep - uri) + 3; /* "mem:///abs" is in "mem:///", the root */
    bool first = true;
    for (size_t i = n; i > top;) /* from the end: each write is past what is left */
        if (buf[--i] == '/') {
            mark_listings(s, buf, i, first);
            first = false;
        }
    asset_free(buf);
}

void asset__jobs_changed(asset_server_t *s, const char *uri) {
    uv_mutex_lock(&s->lock);
    for (asset__map_node_t *n = asset__map_get(&s->inflight, uri); n;
         n = asset__map_get_next(&s->inflight, n))
        mark_changed((asset__job_t *)n); /* the node is the job's first member */
    mark_folders_changed(s, uri);
    /* the old bytes' entries can never be served again (a removed key is gone; a put's
     * version is new): they left no cache, and stayed charged against its budget until
     * the LRU evicted them (a review) */
    size_t n;
    asset__loader_slot_t *const *ls = asset__loaders(s, &n);
    for (size_t i = 0; i < n; i++) asset__cache_remove(&ls[i]->cache, uri);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s); /* a value to free on the flush thread: the host flushes */
}

void asset__jobs_cleared(asset_server_t *s) {
    size_t b = 0;
    for (asset__map_node_t *n = NULL; (n = asset__map_next(&s->inflight, n, &b));)
        mark_changed((asset__job_t *)n);
}

atomic_uint_fast64_t asset__mount_job_visits;

void asset__jobs_remounted(asset_server_t *s, const char *pkg) {
    size_t pl = pkg ? strlen(pkg) : 0;
    uv_mutex_lock(&s->lock);
    size_t b = 0;
    for (asset__map_node_t *n = NULL; (n = asset__map_next(&s->inflight, n, &b));) {
        asset__job_t *j = (asset__job_t *)n;
        atomic_fetch_add_explicit(&asset__mount_job_visits, 1, memory_order_relaxed);
        const char *u = j->uri + 6; /* after "pkg://": the package's name, then '/' or end */
        if (!strncmp(j->uri, "pkg://", 6) &&
            (!pkg || (!strncmp(u, pkg, pl) && (!u[pl] || u[pl] == '/'))))
            mark_changed(j);
    }
    uv_mutex_unlock(&s->lock);
}

/* [lock] The new job, made in the room of parsed's block (ASSET__JOB_ROOM), which it owns
 * from now on; NULL (that block freed) when out of memory for its copy of sha256. */
static asset__job_t *job_new(asset_uri_t *parsed, asset__source_slot_t *src,
                             asset__loader_slot_t *ld, bool no_cache, const char *sha256) {
    asset__job_t *j = (asset__job_t *)(void *)(parsed->uri - parsed->room);
    memset(j, 0, sizeof *j);
    j->uri_inline = true;
    j->uri_slab = parsed->slab != NULL;
    j->uri = parsed->uri;
    j->path = parsed->path;
    memset(parsed, 0, sizeof *parsed);
    j->source = src;
    src->users++; /* [lock] a replaced source lives until its last job is freed */
    j->loader = ld;
    j->no_cache = no_cache;
    j->heap_idx = SIZE_MAX;
    j->state = ASSET__JOB_QUEUED;
    j->node.key = j->uri;
    if (sha256 && !(j->sha256 = asset__strdup(sha256))) {
        asset__job_free(j);
        return NULL;
    }
    return j;
}

static void attach(asset__job_t *j, asset_handle_t *h) { asset__job_attach(j, h); }

/* One load's state across its phases. A new field needs its line in req_init, which
 * sets each one (no memset). */
typedef struct load_req {
    const char *uri;
    const char *sha256;
    bool list, recursive;
    unsigned flags;
    void *hook_arg;
    /* the fast path: its loader choice (claims() is user code) and the handle it made
     * from the URI as given; a miss hands both to the full path, so a miss does neither
     * twice (the handle is never linked before: asset_free alone frees it) */
    bool selected; /* ld is the choice for uri (NULL: none) */
    asset__loader_slot_t *ld;
    asset_handle_t *h;
    char scheme[sizeof(((asset_uri_t *)0)->scheme)];
    uint32_t hash; /* asset__map_hash_n(uri, len), for the cache lookup */
    size_t len;    /* strlen(uri), for the hash and the handle */
    /* the full path */
    asset_uri_t parsed;
    char *label;      /* the decoded label (full_parse to full_finish) */
    char *named;      /* the labelled name, the handle's URI (the same) */
    const char *huri; /* the handle's URI: parsed.uri, named or uri */
    bool want_h;      /* a handle is to be made for huri (full_handles) */
    uint32_t phash; /* asset__map_hash(parsed.uri): the cache's, the coalescing map's, the job's */
    asset_status_t pst;
    const char *why;
    bool pushed; /* a job was queued: a worker is told after the unlock */
} load_req_t;

/* Each field set, but not by a memset of the whole record: GCC made that a `rep stos`
 * per load of a slice, about 7 % of a cache hit (docs/performance.md). */
static void req_init(load_req_t *r, const char *uri, const char *sha256, bool list, bool recursive,
                     unsigned flags, void *hook_arg) {
    r->uri = uri;
    r->sha256 = sha256;
    r->list = list;
    r->recursive = recursive;
    r->flags = flags;
    r->hook_arg = hook_arg;
    r->selected = false;
    r->ld = NULL;
    r->h = NULL;
    /* all of it: run() compares two requests' schemes whole, with no call */
    memset(r->scheme, 0, sizeof r->scheme);
    r->hash = 0;
    r->len = 0;
    r->parsed.scheme[0] = 0;
    r->parsed.uri = r->parsed.path = NULL;
    r->parsed.slab = NULL;
    r->label = r->named = NULL;
    r->huri = NULL;
    r->want_h = false;
    r->phash = 0;
    r->pst = ASSET_OK;
    r->why = NULL;
    r->pushed = false;
}

/* The fast path's part without the lock. A cache hit on an immutable source is found
 * by the URI as given: cache keys are normalised URIs, and normalising one gives it
 * back unchanged, so a URI equal to a key is that key. No parse and no allocation but
 * the handle's, which run() makes for the slice's fast ones at once. named:
 * opt->loader's slot (or NULL), looked up by the caller. True: fast_commit may look the
 * URI up. */
static bool fast_prepare(asset_server_t *s, load_req_t *r, const asset_load_options_t *opt,
                         asset__loader_slot_t *named) {
    const char *uri = r->uri;
    if (!uri || r->list || r->sha256 || r->flags || opt->no_cache) return false;
    /* a normalised key: a lowercase scheme (asset__uri_scheme_byte), "://", no label. One
     * pass over the scheme copies it and hashes it as asset__scheme_bit does; it stops at
     * the first other byte (an uppercase letter, a ':', the NUL) or when the scheme is too
     * long to be one */
    size_t sl = 0;
    uint32_t sh = ASSET__SCHEME_HASH0;
    for (; sl < sizeof r->scheme; sl++) {
        unsigned char c = (unsigned char)uri[sl];
        if (!asset__uri_scheme_byte(c, sl == 0)) break;
        r->scheme[sl] = (char)c;
        sh = asset__scheme_hash_step(sh, c);
    }
    if (!sl || sl >= sizeof r->scheme || uri[sl] != ':' || uri[sl + 1] != '/' || uri[sl + 2] != '/')
        return false;
    /* its length and whether it has a label, in one pass (the scheme has no '#') */
    const char *end = asset__strchrnul(uri + sl + 3, '#');
    if (*end) return false;
    size_t len = (size_t)(end - uri);
    /* no IMMUTABLE source was ever registered for this scheme (file://, http://): no
     * hit is possible, and the lock round trip is saved */
    if (!(atomic_load_explicit(&s->immutable_schemes, memory_order_relaxed) &
          asset__scheme_hash_bit(sh)))
        return false;
    r->scheme[sl] = 0;
    /* claims() is asked the normalised URI, once a load: on this one only when it is a
     * key already (it was asked "pkg://p//a.x", then the full path's "pkg://p/a.x", and
     * "pkg://p/d/../a.x", which is refused: a review) */
    if (!opt->loader && asset__loaders_claim(s) &&
        !asset__uri_key_is_normal(r->scheme, sl, uri + sl + 3, len - sl - 3))
        return false;
    r->ld = opt->loader ? named : asset__loader_select(s, uri);
    r->selected = true;
    r->hash = asset__map_hash_n(uri, len);
    r->len = len;
    return r->ld != NULL;
}

/* Whether a cached entry of an IMMUTABLE source is served without I/O: unless it
 * carries a real version of a source whose versions mean a change (the built-in pkg
 * slot's watched directory mounts); a user source's version never makes a hit read. */
static bool entry_serves(const asset__source_slot_t *src, const asset__cache_entry_t *e) {
    return asset__cache_entry_immutable(e) || !src->versions_revalidate;
}

/* [lock] The fast path's lookup, src the source of r's scheme (or NULL). True: a hit,
 * r->h decided with the cached value and linked (the hook called around it). False:
 * the full path takes r over. */
static bool fast_commit(asset_server_t *s, load_req_t *r, asset__source_slot_t *src,
                        const asset_load_options_t *opt, asset__load_hook_fn before,
                        asset__load_hook_fn after) {
    asset__cache_entry_t *e = src && (src->vt.flags & ASSET_SOURCE_IMMUTABLE)
                                  ? asset__cache_get_hashed(&r->ld->cache, r->uri, r->hash)
                                  : NULL;
    if (!e || !entry_serves(src, e)) return false;
    asset_handle_t *h = r->h;
    asset__handle_link(s, h);
    if (before) before(s, h, r->hook_arg);
    h->loader = r->ld;
    /* h is zeroed as handle_init made it (linked just now; the hook's `before` call sets
     * none of these): only an option that is set is stored, no read-modify-write of a
     * bit-field for a load without it */
    if (opt->timeout_ms) h->timeout_ms = opt->timeout_ms;
    if (opt->optional) h->optional = true;
    if (opt->map_file) h->map_file = true;
    s->stats.cache_hits++;
    asset__handle_decide_hit(h, e->value); /* no label: fast_prepare took no '#' */
    if (after) after(s, h, r->hook_arg);
    return true;
}

/* A folder's normal form: its URI without trailing slashes (one kept where the path is
 * nothing else: "mem:///"), as every source lists it and as its children are named
 * (batch.c, folder_dir). Spelt "mem://d//", a folder was a listing of its own, which a
 * change in d did not find (mark_folders_changed looks up "mem://d" and "mem://d/"): a
 * later load of that spelling joined a listing begun before the change (forty-first
 * review). A URL's trailing '/' is part of its path: http(s) keeps it; a file path is
 * normalised by its parse, a drive's root ("C:/") keeping its '/'. The path (the same
 * bytes, '%' and '#' encoded in the URI) ends with as many as the URI. */
static void folder_trim(asset_uri_t *u) {
    if (!strcmp(u->scheme, "http") || !strcmp(u->scheme, "https") || !strcmp(u->scheme, "file"))
        return;
    size_t ul = strlen(u->uri), pl = strlen(u->path);
    while (pl > 1 && u->path[pl - 1] == '/') {
        u->path[--pl] = 0;
        u->uri[--ul] = 0;
    }
}

/* The full path's parse, without the lock: the URI parsed and hashed, the label
 * decoded, the handle's URI chosen (r->huri), the fast path's handle kept when it names
 * that URI (else discarded: r->want_h when a new one is to be made). False: out of
 * memory, nothing kept (r owns nothing then). */
static bool full_parse(asset_server_t *s, load_req_t *r, asset__uri_slab_t *slab) {
    const char *uri = r->uri;
    /* "uri#label": the job loads uri (shared with every load of it), the handle wants
     * the sub-asset; '#' always starts the label (a literal one is %23). A URI the fast
     * path measured (r->len) has none: it scanned to the NUL */
    const char *hash = uri && !r->list && !r->len ? strchr(uri, '#') : NULL;
    /* the limit of a URI counts its label, as written (and in the handle's URI, below):
     * only what precedes the '#' was measured, so a label of any length loaded */
    bool too_long = hash && strnlen(uri, ASSET__URI_MAX + 1) > ASSET__URI_MAX;
    char *base = hash && !too_long ? asset__strndup(uri, (size_t)(hash - uri)) : NULL;
    if (hash && !too_long && !base) {
        asset__handle_discard(r->h);
        r->h = NULL;
        return false;
    }
    if (too_long) {
        r->pst = ASSET_E_INVALID;
        r->why = "URI too long";
    } else {
        r->pst = asset__uri_parse_room(base ? base : uri, s->base_dir, s->file_root,
                                       ASSET__JOB_ROOM, slab, &r->parsed, &r->why);
    }
    asset_free(base);
    if (r->pst == ASSET_OK && r->list) folder_trim(&r->parsed);
    /* the label percent-decoded as a name is ("#Mesh%200" is the label "Mesh 0") */
    char *label = NULL;
    if (r->pst == ASSET_OK && hash) {
        asset_status_t lst = asset__uri_label_decode(hash + 1, &label, &r->why);
        if (lst == ASSET_E_NO_MEMORY) {
            asset__uri_dispose(&r->parsed);
            asset__handle_discard(r->h);
            r->h = NULL;
            return false;
        }
        if (lst != ASSET_OK) {
            asset__uri_dispose(&r->parsed);
            r->pst = lst;
        }
    }
    char *named = label ? asset__uri_labeled(r->parsed.uri, label) : NULL;
    /* the handle's URI (the base's normal form and the label) is a URI too: a bare path's
     * gains "file://" and its base dir */
    if (named && strnlen(named, ASSET__URI_MAX + 1) > ASSET__URI_MAX) {
        asset_free(named);
        asset_free(label);
        named = label = NULL;
        asset__uri_dispose(&r->parsed);
        r->pst = ASSET_E_INVALID;
        r->why = "URI too long";
    }
    /* hashed once, here, without the lock: the cache lookup, the coalescing map's find
     * and put, and the cache's put after the read (asset__job_uri_hash) take it */
    if (r->pst == ASSET_OK) r->phash = asset__map_hash(r->parsed.uri);
    r->label = label;
    r->named = named;
    /* a NULL uri is a bad one, its handle's URI "" (full_handles measures it) */
    r->huri = r->pst == ASSET_OK ? (r->named ? r->named : r->parsed.uri) : uri ? uri : "";
    /* the fast path's handle when it names huri (uri was normalised already, or is
     * invalid): made with the same options, so the same handle */
    if (r->h && strcmp(asset__handle_uri(r->h), r->huri) != 0) {
        asset__handle_discard(r->h);
        r->h = NULL;
    }
    /* none when the labelled name could not be made (out of memory: full_finish fails) */
    r->want_h = !r->h && (r->pst != ASSET_OK || !hash || r->named);
    return true;
}

/* Gives back what full_parse made for r (a load after one that failed). */
static void full_drop(load_req_t *r) {
    asset_free(r->named);
    asset_free(r->label);
    asset__uri_dispose(&r->parsed);
    asset__handle_discard(r->h);
    r->h = NULL;
}

/* The handles r[0..n) want (full_parse: r->want_h), in one block when there are several
 * (asset__handle_new_many), in order; out of memory: the ones after it get none. */
static void full_handles(asset_server_t *s, load_req_t *r, size_t n,
                         const asset_load_options_t *opt) {
    const char *uris[ASSET__LOAD_SLICE];
    size_t lens[ASSET__LOAD_SLICE], at[ASSET__LOAD_SLICE], k = 0;
    asset_handle_t *hs[ASSET__LOAD_SLICE];
    for (size_t i = 0; i < n; i++)
        if (r[i].want_h) {
            uris[k] = r[i].huri;
            lens[k] = strlen(r[i].huri);
            at[k++] = i;
        }
    size_t made = k ? asset__handle_new_many(s, uris, lens, k, opt, hs) : 0;
    for (size_t i = 0; i < made; i++) r[at[i]].h = hs[i];
}

/* The full path's part without the lock after the handles: the label given to the
 * handle, the loader chosen. named_ld: opt->loader's slot (or NULL), looked up once for
 * the slice by the caller. False: out of memory (no handle), nothing kept (r owns
 * nothing then). */
static bool full_finish(asset_server_t *s, load_req_t *r, const asset_load_options_t *opt,
                        asset__loader_slot_t *named_ld) {
    const char *uri = r->uri;
    asset_handle_t *h = r->h;
    char *label = r->label;
    bool named = r->named != NULL;
    asset_free(r->named); /* the handle has its copy */
    if (h && named) {     /* the handle owns it */
        h->label = label;
        label = NULL;
    }
    r->named = r->label = NULL;
    asset_free(label);
    r->huri = NULL;
    if (!h) {
        asset__uri_dispose(&r->parsed);
        return false;
    }
    h->timeout_ms = opt->timeout_ms;
    h->optional = opt->optional;
    h->reload = (r->flags & ASSET__LOAD_RELOAD) != 0;
    h->reload_forced = (r->flags & ASSET__LOAD_FORCED) != 0; /* not linked yet: no lock */
    /* claims() is user code: never under the lock, and once (the fast path's choice
     * holds when uri was normalised already). A reload that failed to parse its URI
     * (no memory) keeps its loader: the live handles of that loader hear of it. */
    r->ld = r->pst != ASSET_OK ? (h->reload && opt->loader ? named_ld : NULL)
            : r->list          ? &asset__list_slot
            : r->selected && !strcmp(r->parsed.uri, uri) ? r->ld
            : opt->loader                                ? named_ld
                                                         : asset__loader_select(s, r->parsed.uri);
    return true;
}

/* [lock] The full path's critical section: r->h linked (visible to cancel_tag in the
 * same critical section that attaches it, so a cancel can never decide it between the
 * two), then decided at once, served from the cache, joined to a load in flight, or
 * given a new queued job (r->pushed). */
static void full_commit(asset_server_t *s, load_req_t *r, asset_load_options_t opt,
                        asset__load_hook_fn before, asset__load_hook_fn after) {
    asset_handle_t *h = r->h;
    asset__loader_slot_t *ld = r->ld;
    const char *sha256 = r->sha256;
    if (r->list) opt.no_cache = true;
    asset__handle_link(s, h);
    if (before) before(s, h, r->hook_arg);
    h->loader = ld;
    h->pinned = sha256 != NULL;
    h->no_cache = opt.no_cache;
    h->map_file = opt.map_file;
    asset__source_slot_t *src = r->pst == ASSET_OK ? asset__source_find(s, r->parsed.scheme) : NULL;
    if (r->pst != ASSET_OK) {
        fail_now(h, r->pst, "%s URI: %s", r->pst == ASSET_E_FORBIDDEN ? "forbidden" : "invalid",
                 r->why);
    } else if (!src) {
        fail_now(h, ASSET_E_NO_SOURCE, "no source registered for scheme '%s'", r->parsed.scheme);
    } else if (r->list && !src->vt.list) {
        fail_now(h, ASSET_E_UNSUPPORTED, "the '%s' source cannot list folders", r->parsed.scheme);
    } else if (!ld) {
        fail_now(h, ASSET_E_NO_LOADER, "no loader named '%s'", opt.loader);
    } else if (s->stopping) {
        fail_now(h, ASSET_E_SHUTDOWN, "server is shutting down");
    } else {
        bool forced = (r->flags & ASSET__LOAD_FORCED) != 0;
        /* a reload's look (a poll, a watch's event) is no use: the LRU order stays (a
         * polled asset was never the least recently used, and its polls evicted what the
         * game loaded since: thirty-eighth review) */
        asset__cache_entry_t *e =
            opt.no_cache || forced ? NULL
            : h->reload            ? asset__cache_find_hashed(&ld->cache, r->parsed.uri, r->phash)
                                   : asset__cache_get_hashed(&ld->cache, r->parsed.uri, r->phash);
        const char *had = e && sha256 ? asset__cache_entry_sha256(e) : NULL;
        if (e && sha256 && (!had || asset__strcasecmp(had, sha256) != 0))
            e = NULL; /* not verified against this digest: read it again */
        asset__job_t *j = NULL;
        /* immutable: no I/O, unless the entry carries a real version of a source whose
         * versions mean a change (a watched directory mount) or this is a reload; a user
         * IMMUTABLE source that set a version was read and parsed at every load */
        bool immutable =
            (src->vt.flags & ASSET_SOURCE_IMMUTABLE) && !h->reload && (!e || entry_serves(src, e));
        if (e && immutable) {
            s->stats.cache_hits++; /* no I/O: done at the next flush */
            asset__handle_decide_value(h, e->value, 0);
        } else if (!h->reload && (j = find_inflight(s, r->parsed.uri, r->phash, ld, opt.no_cache,
                                                    r->recursive, sha256))) {
            attach(j, h);
            s->stats.coalesced++;
            asset__log(s, ASSET_LOG_DEBUG, "%s: joined the load in flight", asset__handle_uri(h));
            if (h->priority < j->priority) {
                j->priority = h->priority;
                if (asset__heap_update(s, j)) /* else no memory: it keeps its priority */
                    asset__graph_raise(s, j, j->priority); /* and what it waits for */
            }
            if (j->state != ASSET__JOB_QUEUED) atomic_store(&h->state, ASSET_STATE_LOADING);
        } else if (!(j = job_new(&r->parsed, src, ld, opt.no_cache, sha256))) {
            fail_now(h, ASSET_E_NO_MEMORY, "out of memory");
        } else {
            j->priority = h->priority;
            j->is_list = r->list;
            j->recursive = r->recursive;
            j->map_file = opt.map_file;
            j->polled = (r->flags & ASSET__LOAD_POLL) != 0;
            asset__value_t *base = e ? e->value : NULL;
            const char *version = e ? asset__cache_entry_version(e) : NULL;
            /* a reload that finds no cache entry (a no_cache one; or the entry evicted,
             * cleared, over its budget) revalidates against its live handles' value: an
             * http_poll_ms poll of such a value published a reload of unchanged bytes */
            bool label = false;
            if (!e && h->reload && !forced &&
                !asset__reload_live_base(s, j->uri, ld, opt.no_cache, &base, &version, &label))
                base = NULL;
            if (base) {
                j->cached_version = version ? asset__strdup(version) : NULL;
                j->cached = asset__value_retain(base);
                if (version && !j->cached_version) { /* no memory: read it all again */
                    asset__value_release(j->cached);
                    j->cached = NULL;
                }
                j->label_base = label && j->cached; /* before it is mapped: no load joins */
            }
            bool mapped = asset__map_put_hashed(&s->inflight, &j->node, r->phash);
            if (!mapped || !(r->pushed = asset__heap_push(s, j))) {
                if (mapped) asset__map_remove(&s->inflight, &j->node);
                asset__job_free(j);
                fail_now(h, ASSET_E_NO_MEMORY, "out of memory");
            } else {
                j->mapped = true;
                attach(j, h);
                asset__trace_job_new(s, j);
            }
        }
        if (!h->decided && opt.timeout_ms) asset__timer_arm(s, h);
    }
    if (after) after(s, h, r->hook_arg);
}

asset_handle_t *asset_server_load(asset_server_t *s, const char *uri,
                                  const asset_load_options_t *o) {
    return asset__load(s, uri, o, NULL, false, false);
}

asset_handle_t *asset__load(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                            const char *sha256, bool list, bool recursive) {
    return asset__load_ex(s, uri, o, sha256, list, recursive, 0);
}

asset_handle_t *asset__load_ex(asset_server_t *s, const char *uri, const asset_load_options_t *o,
                               const char *sha256, bool list, bool recursive, unsigned flags) {
    return asset__load_hooked(s, uri, o, sha256, list, recursive, flags, NULL, NULL);
}

/* The slab that r[0..n)'s parses carve their blocks from (uri.h): their jobs are one
 * allocation, not one each (a miss's block malloc'd and freed was about 400 of a small
 * file's 6,300 instructions: docs/performance.md). NULL (each its own block) when none
 * of them would fit, or out of memory. */
static asset__uri_slab_t *slice_slab(asset_server_t *s, const load_req_t *r, size_t n) {
    size_t base_len = s->base_dir ? strlen(s->base_dir) : 0, cap = 0, fit = 0;
    for (size_t i = 0; i < n; i++) {
        /* a URI the fast path measured (r->len: a scheme, "://", no label) is not
         * scanned again (about 100 instructions a pkg:// miss) */
        size_t e = r[i].len ? asset__uri_slab_estimate_schemed(r[i].len, ASSET__JOB_ROOM)
                            : asset__uri_slab_estimate(r[i].uri, ASSET__JOB_ROOM, base_len);
        cap += e;
        fit += e != 0;
    }
    return fit > 1 ? asset__uri_slab_new(cap) : NULL;
}

/* Runs the phases for r[0..n) (n <= ASSET__LOAD_SLICE), linking them in order. Hits
 * first: the longest run of them at the start is decided in one critical section (the
 * run stops at a miss, so the order holds); the rest go through the full path in one
 * more. An allocation that fails ends it there (what the fast path made after it is
 * freed unlinked). Returns how many were made; their handles are r[i].h. */
static size_t run(asset_server_t *s, load_req_t *r, size_t n, asset_load_options_t opt,
                  const asset__load_hook_t *hook) {
    /* read once: a hook's call is one test when it is not set */
    asset__load_hook_fn before = hook ? hook->before : NULL, after = hook ? hook->after : NULL;
    size_t fast = 0, done = 0;
    /* finished jobs this thread most likely made, taken in the last critical section
     * and freed after it: their memory goes to the records this call makes (job.c,
     * job_return) */
    asset__job_t *ret = NULL;
    /* a named loader is looked up once for the slice (a scan of the registry) */
    asset__loader_slot_t *named = opt.loader ? asset__loader_find(s, opt.loader) : NULL;
    while (fast < n && fast_prepare(s, &r[fast], &opt, named)) fast++;
    if (fast) { /* their handles in one block: a slice of hits allocates once */
        const char *uris[ASSET__LOAD_SLICE];
        size_t lens[ASSET__LOAD_SLICE];
        asset_handle_t *hs[ASSET__LOAD_SLICE];
        for (size_t i = 0; i < fast; i++) {
            uris[i] = r[i].uri;
            lens[i] = r[i].len;
        }
        fast = asset__handle_new_many(s, uris, lens, fast, &opt, hs);
        for (size_t i = 0; i < fast; i++) r[i].h = hs[i];
    }
    if (fast) {
        /* the lookups' cache misses overlapped: each stage for all, then the next */
        const asset__cache_t *caches[ASSET__LOAD_SLICE];
        uint32_t hashes[ASSET__LOAD_SLICE];
        for (size_t i = 0; fast > 1 && i < fast; i++) {
            caches[i] = &r[i].ld->cache;
            hashes[i] = r[i].hash;
        }
        uv_mutex_lock(&s->lock);
        if (fast > 1) asset__cache_prefetch_many(caches, hashes, fast);
        asset__source_slot_t *src = NULL;
        for (; done < fast; done++) { /* one source lookup per run of a scheme */
            if (!done || memcmp(r[done].scheme, r[done - 1].scheme, sizeof r->scheme) != 0)
                src = s->stopping ? NULL : asset__source_find(s, r[done].scheme);
            if (!fast_commit(s, &r[done], src, &opt, before, after)) break;
        }
        if (done == n) ret = asset__jobs_take_returned(s, 2 * n); /* no second section */
        uv_mutex_unlock(&s->lock);
    }
    /* the rest: parsed, then their new handles in one block (a slice of misses
     * allocates them once, as a slice of hits does), then each finished in order; one
     * that fails (out of memory) ends the slice there, and what the ones after it hold
     * is given back */
    size_t made = done;
    if (done < n) { /* none when the slice was all hits */
        size_t parsed = done;
        asset__uri_slab_t *slab = n - done > 1 ? slice_slab(s, r + done, n - done) : NULL;
        while (parsed < n && full_parse(s, &r[parsed], slab)) parsed++;
        for (size_t i = parsed + 1; i < n; i++) asset__handle_discard(r[i].h);
        if (parsed > done) full_handles(s, r + done, parsed - done, &opt);
        while (made < parsed && full_finish(s, &r[made], &opt, named)) made++;
        for (size_t i = made + 1; i < parsed; i++) full_drop(&r[i]);
        size_t pushed = 0;
        if (made > done) {
            uv_mutex_lock(&s->lock);
            for (size_t i = done; i < made; i++) {
                full_commit(s, &r[i], opt, before, after);
                pushed += r[i].pushed;
            }
            pushed = pushed && asset__pool_wake_claim(s); /* one wakes the next (pool.c) */
            ret = asset__jobs_take_returned(s, 2 * n);
            uv_mutex_unlock(&s->lock);
        }
        if (pushed) asset__pool_notify(s);
        for (size_t i = done; i < made; i++) asset__uri_dispose(&r[i].parsed);
        if (slab) asset__uri_slab_drop(slab); /* it goes with the last of its jobs */
    }
    asset__jobs_free_returned(ret);
    if (made) asset__maybe_wake(s);
    return made;
}

asset_handle_t *asset__load_hooked(asset_server_t *s, const char *uri,
                                   const asset_load_options_t *o, const char *sha256, bool list,
                                   bool recursive, unsigned flags, const asset__load_hook_t *hook,
                                   void *hook_arg) {
    if (!s) return NULL;
    asset_load_options_t opt = {0};
    if (o) opt = *o;
    load_req_t r;
    req_init(&r, uri, sha256, list, recursive, flags, hook_arg);
    return run(s, &r, 1, opt, hook) ? r.h : NULL;
}

size_t asset__load_many(asset_server_t *s, const char *const *uris, size_t n,
                        const asset_load_options_t *o, const asset__load_hook_t *hook,
                        void *const *hook_args, asset_handle_t **out) {
    if (!s) return 0;
    if (n > ASSET__LOAD_SLICE) n = ASSET__LOAD_SLICE;
    asset_load_options_t opt = {0};
    if (o) opt = *o;
    load_req_t r[ASSET__LOAD_SLICE];
    for (size_t i = 0; i < n; i++)
        req_init(&r[i], uris[i], NULL, false, false, 0, hook_args ? hook_args[i] : NULL);
    size_t made = run(s, r, n, opt, hook);
    if (out)
        for (size_t i = 0; i < made; i++) out[i] = r[i].h;
    return made;
}
