/* request.c - the request, parse and list APIs that sources and loaders call. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void asset__request_init(struct asset_request *r, asset__job_t *job) {
    asset__zero(r, sizeof *r);
    r->job = job;
    r->uri = job->uri;
    r->path = job->path;
    r->cached_version = job->cached_version;
    atomic_init(&r->closed, false);
}

void asset__request_reset_data(struct asset_request *r) {
    if (r->adopted) {
        if (r->adopt_free) r->adopt_free(r->data, r->adopt_user);
    } else {
        asset_free(r->data);
    }
    r->data = NULL;
    r->size = r->cap = 0;
    r->adopted = false;
    r->adopt_free = NULL;
    r->adopt_user = NULL;
    r->adopt_terminated = false;
    r->lent = false;
}

static void version_free(struct asset_request *r) {
    if (r->version != r->version_buf) asset_free(r->version);
    r->version = NULL;
}

void asset__request_dispose(struct asset_request *r) {
    /* kept for the worker's next read, or freed: a finish from now on is refused */
    atomic_store_explicit(&r->closed, true, memory_order_relaxed);
    r->job = NULL;
    asset__request_reset_data(r);
    version_free(r);
    asset_free(r->message);
    r->message = NULL;
    asset_free(r->base);
    r->base = NULL;
}

asset_status_t asset__request_set_base(struct asset_request *r, const char *url, const char **why) {
    asset_free(r->base);
    r->base = NULL;
    if (!url) return ASSET_OK;
    if (asset__strncasecmp(url, "http://", 7) && asset__strncasecmp(url, "https://", 8)) {
        *why = "not an http(s) URL"; /* libcurl and fetch() follow nothing else */
        return ASSET_E_INVALID;
    }
    asset_uri_t u;
    asset_status_t st = asset__uri_parse(url, NULL, NULL, &u, why);
    if (st != ASSET_OK) return st;
    if (strcmp(u.uri, r->uri) && !(r->base = asset__strdup(u.uri))) {
        *why = "out of memory";
        st = ASSET_E_NO_MEMORY;
    }
    asset__uri_dispose(&u);
    return st;
}

const char *asset_request_uri(const asset_request_t *r) { return r->uri; }
const char *asset_request_path(const asset_request_t *r) { return r->path; }
const char *asset_request_cached_version(const asset_request_t *r) { return r->cached_version; }

/* The read is over (its finish came, or its source returned): a source's call that
 * stores into the request from now on is its misuse, refused with a logged error. The
 * worker keeps the request for its next read, whose init zeroes it: a message or a
 * version stored meanwhile leaked, bytes written while the parse ran were reallocated
 * under it (a review). Once another read has the request, nothing tells a late call
 * from that read's own. */
static bool request_closed(asset_request_t *r, const char *fn) {
    if (!atomic_load_explicit(&r->closed, memory_order_relaxed)) return false;
    asset__log_late_refusal(r->server, /* rate-limited: a source may call in a loop */
                            "%s: refused: this request's read is over (finished already, or "
                            "its source returned); a request must not be touched after its "
                            "finish",
                            fn);
    return true;
}

void asset_request_set_version(asset_request_t *r, const char *version) {
    if (request_closed(r, "asset_request_set_version")) return;
    version_free(r);
    size_t n = version ? strlen(version) : 0;
    if (version && n < sizeof r->version_buf)
        r->version = memcpy(r->version_buf, version, n + 1);
    else
        r->version = asset__strdup(version); /* NULL: no memory, unversioned */
}

char *asset__request_version_buf(struct asset_request *r) {
    version_free(r);
    return r->version = r->version_buf;
}

/* No job: the request's read is over (a source's call after its finish): nothing to
 * report to, and cancelled, so that a write is refused (the request went back to its
 * worker, whose next read would have leaked the bytes). */
void asset_request_set_total(asset_request_t *r, uint64_t bytes) {
    if (r->job) atomic_store_explicit(&r->job->total, bytes, memory_order_relaxed);
}

bool asset_request_cancelled(const asset_request_t *r) {
    asset__job_t *j = r->job;
    if (!j) return true;
    /* a read this thread runs (a source's own, the file source's loop; not the I/O
     * thread's nor a fetch's callback, which run no job): on the single-threaded web its
     * own passed deadlines expire here, the one thread being held (asset__pool_job_poll) */
    if (asset__job_runs_this(j)) asset__pool_job_poll(r->server, j);
    return atomic_load_explicit(&j->cancelled, memory_order_acquire);
}

asset_status_t asset__request_reserve(struct asset_request *r, size_t n) {
    if (r->adopted) { /* turn an adopted buffer into an owned one first */
        uint8_t *own = asset_alloc(r->size + n + 1);
        if (!own) return ASSET_E_NO_MEMORY;
        if (r->size) memcpy(own, r->data, r->size);
        size_t sz = r->size;
        asset__request_reset_data(r);
        r->data = own;
        r->size = sz;
        r->cap = sz + n + 1;
        return ASSET_OK;
    }
    if (r->cap - r->size > n) return ASSET_OK; /* keeps one byte for the NUL */
    size_t want = r->size + n + 1;
    /* first reservation exact (a known size: a 4 KiB file must not take 8 KiB), then doubling */
    size_t cap = r->cap ? r->cap : want;
    while (cap < want) cap = cap > SIZE_MAX / 2 ? want : cap * 2;
    uint8_t *d = asset_realloc(r->data, cap);
    if (!d) return ASSET_E_NO_MEMORY;
    r->data = d;
    r->cap = cap;
    return ASSET_OK;
}

asset_status_t asset_request_write(asset_request_t *r, const void *data, size_t n) {
    if (request_closed(r, "asset_request_write")) return ASSET_E_CANCELLED;
    if (asset_request_cancelled(r)) return ASSET_E_CANCELLED;
    if (!data && n) /* a source's bug: the copy read NULL and killed the process */
        return r->refused = asset_request_fail(r, ASSET_E_INVALID,
                                               "asset_request_write: NULL data of %zu bytes", n);
    if (n > r->max_size || r->size > r->max_size - n)
        return r->refused = asset_request_fail(
                   r, ASSET_E_TOO_LARGE, "larger than max_asset_size (%zu bytes)", r->max_size);
    asset_status_t st = asset__request_reserve(r, n);
    if (st != ASSET_OK)
        return r->refused = asset_request_fail(r, st, "out of memory buffering %zu bytes", n);
    if (n) memcpy(r->data + r->size, data, n);
    r->size += n;
    atomic_store_explicit(&r->job->received, r->size, memory_order_relaxed);
    return ASSET_OK;
}

asset_status_t asset_request_adopt(asset_request_t *r, void *data, size_t n,
                                   void (*free_fn)(void *data, void *user), void *user) {
    /* the buffer the request holds already (adopted again with its final size, say): the
     * request frees it, once; the reset below freed it and took the freed pointer back,
     * and a refusal freed it under the request (a review) */
    bool same = data && r->adopted && r->data == data;
    void (*drop)(void *data, void *user) = same ? NULL : free_fn;
    if (request_closed(r, "asset_request_adopt")) {
        if (drop) drop(data, user);
        return ASSET_E_CANCELLED;
    }
    if (asset_request_cancelled(r)) {
        if (drop) drop(data, user);
        return ASSET_E_CANCELLED;
    }
    if (!data && n) { /* as asset_request_write: nothing to read n bytes from */
        if (drop) drop(data, user);
        return r->refused = asset_request_fail(r, ASSET_E_INVALID,
                                               "asset_request_adopt: NULL data of %zu bytes", n);
    }
    if (n > r->max_size) {
        if (drop) drop(data, user);
        return r->refused = asset_request_fail(
                   r, ASSET_E_TOO_LARGE, "larger than max_asset_size (%zu bytes)", r->max_size);
    }
    r->refused = ASSET_OK; /* replaces everything written (or refused) before */
    if (same) {            /* taken out first: the reset frees nothing of it */
        r->adopted = false;
        r->data = NULL;
    }
    asset__request_reset_data(r);
    r->data = data;
    r->size = n;
    r->cap = 0;
    r->adopted = true;
    r->adopt_free = free_fn;
    r->adopt_user = user;
    atomic_store_explicit(&r->job->received, n, memory_order_relaxed);
    return ASSET_OK;
}

asset_status_t asset__request_seal(struct asset_request *r) {
    if (r->adopted && r->adopt_terminated) return ASSET_OK;
    asset_status_t st = asset__request_reserve(r, 0);
    if (st != ASSET_OK) return st;
    r->data[r->size] = 0;
    return ASSET_OK;
}

asset_status_t asset_request_fail(asset_request_t *r, asset_status_t st, const char *fmt, ...) {
    if (!r->message && !request_closed(r, "asset_request_fail")) {
        va_list ap;
        va_start(ap, fmt);
        r->message = asset__vasprintf(fmt, ap);
        va_end(ap);
    }
    return st;
}

asset_status_t asset__request_fail(struct asset_request *r, asset_status_t st, const char *fmt,
                                   ...) {
    if (!r->message) {
        va_list ap;
        va_start(ap, fmt);
        r->message = asset__vasprintf(fmt, ap);
        va_end(ap);
    }
    return st;
}

asset_status_t asset__request_lend(struct asset_request *r, void *data, size_t n,
                                   void (*release)(void *data, void *user), void *user) {
    asset_status_t st = asset_request_adopt(r, data, n, release, user);
    if (st == ASSET_OK) r->adopt_terminated = r->lent = true;
    return st;
}

/* ---- parse ---- */
const char *asset_parse_uri(const asset_parse_t *p) { return p->req->uri; }
const uint8_t *asset_parse_data(const asset_parse_t *p) {
    /* after a take, the bytes taken: the size still counts them */
    return p->req->data ? p->req->data : p->taken ? p->taken : (const uint8_t *)"";
}
size_t asset_parse_size(const asset_parse_t *p) { return p->req->size; }

bool asset_parse_cancelled(const asset_parse_t *p) {
    if (!p || !p->req->job) return true;
    asset__pool_job_poll(p->req->server, p->req->job); /* single-threaded web: timeouts */
    return atomic_load_explicit(&p->req->job->cancelled, memory_order_acquire);
}

void *asset_parse_take_data(asset_parse_t *p) {
    struct asset_request *r = p->req;
    if (p->taken) return NULL; /* the loader has them already */
    if (r->adopted) {          /* a foreign buffer: hand out an owned copy */
        if (asset__request_reserve(r, 0) != ASSET_OK) return NULL;
        r->data[r->size] = 0;
    }
    void *d = r->data;
    if (!d) d = asset__calloc(1, 1);
    r->data = NULL;
    r->cap = 0; /* size stays readable */
    p->taken = d;
    return d;
}

bool asset__parse_borrow(asset_parse_t *p, const uint8_t **data,
                         void (**release)(void *data, void *user), void **user) {
    struct asset_request *r = p->req;
    if (!r->adopted || !r->lent) return false;
    *data = r->data;
    *release = r->adopt_free;
    *user = r->adopt_user;
    p->taken = r->data;
    r->data = NULL; /* the value owns it now; size stays readable, as after take_data */
    r->cap = 0;
    r->adopted = r->lent = r->adopt_terminated = false;
    r->adopt_free = NULL;
    r->adopt_user = NULL;
    return true;
}

/* The value a second asset_parse_set_value replaced goes where its loader's values go
 * (it leaked: a review): through a record of its own, which frees it now or, for a
 * loader that frees on the flush thread, queues it for the next flush. */
static void parse_drop_value(asset_parse_t *p) {
    struct asset_request *r = p->req;
    asset__loader_slot_t *ld = r->job->loader;
    asset__value_t *old = asset__value_new(r->server, ld, p->free_fn != NULL);
    if (old) {
        old->value = p->value;
        asset__value_extra_t *x = asset__value_x(old);
        if (x && p->free_fn) {
            x->free_fn = p->free_fn;
            x->free_user = p->free_user;
        }
        asset__value_release(old);
    } else if (!(ld->vt.flags & ASSET_LOADER_FREE_ON_FLUSH_THREAD)) { /* any thread may */
        asset__loader_free_value(ld, p->value, p->free_fn, p->free_user);
    } else { /* never on this thread; and without a record it cannot reach the flush */
        asset__log(r->server, ASSET_LOG_ERROR,
                   "%s: out of memory: the value replaced by a second asset_parse_set_value "
                   "cannot be freed on the flush thread and is kept",
                   r->uri);
    }
}

void asset_parse_set_value(asset_parse_t *p, void *value, size_t cost_bytes) {
    if (p->has_value && p->value != value) parse_drop_value(p);
    p->value = value;
    p->cost = cost_bytes;
    p->has_value = true;
    p->free_fn = NULL;
    p->free_user = NULL;
}

void asset__parse_set_value_free(asset_parse_t *p, void *value, size_t cost_bytes,
                                 void (*free_fn)(void *value, void *user), void *user) {
    asset_parse_set_value(p, value, cost_bytes);
    p->free_fn = free_fn;
    p->free_user = user;
}

asset_status_t asset_parse_fail(asset_parse_t *p, asset_status_t st, const char *fmt, ...) {
    if (!p->message) {
        va_list ap;
        va_start(ap, fmt);
        p->message = asset__vasprintf(fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ---- list ---- */
/* A failed add drops its entry: remembered, so that the listing fails with it even
 * when the source ignores the status and returns ASSET_OK (run_list). */
static asset_status_t list_add_failed(asset_list_t *l, asset_status_t st, const char *relpath) {
    if (!l->add_failed) l->add_failed = st;
    return asset_list_fail(l, st, "%s adding '%s' to the listing",
                           st == ASSET_E_NO_MEMORY ? "out of memory" : "no path",
                           relpath ? relpath : "(null)");
}

asset_status_t asset_list_add(asset_list_t *l, const char *relpath, int64_t size) {
    if (!relpath) return list_add_failed(l, ASSET_E_INVALID, relpath);
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **p = asset_realloc(l->paths, cap * sizeof *p);
        if (!p) return list_add_failed(l, ASSET_E_NO_MEMORY, relpath);
        l->paths = p;
        int64_t *s = asset_realloc(l->sizes, cap * sizeof *s);
        if (!s) return list_add_failed(l, ASSET_E_NO_MEMORY, relpath);
        l->sizes = s;
        l->cap = cap;
    }
    char *d = asset__strdup(relpath);
    if (!d) return list_add_failed(l, ASSET_E_NO_MEMORY, relpath);
    l->paths[l->count] = d;
    l->sizes[l->count++] = size;
    return ASSET_OK;
}

bool asset_list_recursive(const asset_list_t *l) { return l->recursive; }

bool asset__list_cancelled(const struct asset_list *l) {
    return l->cancelled && atomic_load_explicit(l->cancelled, memory_order_relaxed);
}

asset_status_t asset_list_fail(asset_list_t *l, asset_status_t st, const char *fmt, ...) {
    if (!l->message) {
        va_list ap;
        va_start(ap, fmt);
        l->message = asset__vasprintf(fmt, ap);
        va_end(ap);
    }
    return st;
}

void asset__list_dispose(struct asset_list *l) {
    for (size_t i = 0; i < l->count; i++) asset_free(l->paths[i]);
    asset_free(l->paths);
    asset_free(l->sizes);
    asset_free(l->message);
    memset(l, 0, sizeof *l);
}
