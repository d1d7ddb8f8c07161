/* sources/http.c - http:// and https:// as ASYNC sources. A worker builds the curl
 * easy handle and posts it to the I/O thread, which drives one curl multi handle with
 * curl_multi_socket_action over uv_poll_t and uv_timer_t (libcurl's documented libuv
 * integration). Bodies stream into the request (size cap enforced while streaming),
 * then asset_request_finish sends the job back to the pool for parsing.
 *
 * Revalidation: the cached version is "etag:<ETag>" or "lm:<Last-Modified>"; it turns
 * into If-None-Match / If-Modified-Since, and a 304 finishes with ASSET_NOT_MODIFIED.
 *
 * Fairness: transfers wait in a FIFO per host ("scheme://authority" of the URI) and
 * enter the multi round-robin over the hosts, at most http_max_connections per host
 * (2 x for https with HTTP/2) and 8 x in all; libcurl opens at most
 * http_max_connections connections per host and has no cap in all (its cache keeps up
 * to 4 x idle). So a host whose every slot is stalled holds only its own loads.
 *
 * Easy handles: a worker prepares the transfer (its conditional header), the I/O thread
 * gives it an easy handle when it enters the multi: one from a free list of the handles
 * whose transfers ended (at most 2 x http_max_connections kept), else a new one. A
 * reused handle is curl_easy_reset, so nothing of its previous request survives (not
 * even libcurl's retry count); easy_setup sets the options that are the same for every
 * transfer, easy_bind the request's own. A handle whose transfer ran out of memory is
 * not reused.
 *
 * Threads: everything below `http state` is touched only on the I/O thread. */
#include "../http_validator.h"
#include "../internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../platform/platform.h"
#include "../platform/socket.h"

#ifdef ASSET_SERVER_HAVE_ZLIB
#include <zlib.h>
#endif

typedef struct host host_t;

typedef struct xfer {
    struct xfer *prev, *next;   /* in http->xfers: every transfer, started or waiting */
    struct xfer *wprev, *wnext; /* in host->wait_* until it enters the multi */
    host_t *host;               /* NULL until xfer_start files it */
    bool in_multi;
    asset_server_t *server;
    asset_request_t *req;
    CURL *easy;
    struct curl_slist *headers;
    long status; /* of the current response */
    char reason[ASSET__HTTP_REASON_CAP];
    char *etag, *last_modified; /* as versions: "etag:<ETag>", "lm:<Last-Modified>" */
    bool too_large;
    bool error_cut;     /* a non-2xx answer's body passed ERROR_BODY_MAX: the transfer was cut */
    bool in_body;       /* the current response's body began: headers after it are trailers */
    size_t error_bytes; /* of the current non-2xx answer's body, counted and dropped */
    bool cancelled;
    bool oom;                /* the body could not be buffered: out of memory */
    bool spoilt;             /* the multi failed under it (fail_all): no reuse of easy */
    int sock_errno;          /* socket() failed with this (EMFILE...), 0 if not */
    unsigned alloc_failures; /* asset__alloc_failures() on the I/O thread at the start */
    char errbuf[CURL_ERROR_SIZE];
    uint8_t location;  /* a 3xx's Location: LOCATION_NONE, _HTTP or _OTHER (its scheme) */
    bool headers_done; /* the current response's headers ended (their blank line) */
    bool chunked;      /* it has a Transfer-Encoding: its Content-Length is no size */
    bool coded;        /* it has a Content-Encoding other than identity */
    bool has_length;   /* it has a Content-Length: `length` */
    unsigned long long length;
    bool redirect_cut;        /* a followed redirect's body passed ERROR_BODY_MAX: cut */
    bool asked_again;         /* sent again without its condition (xfer_done) */
    bool decodes;             /* gzip and deflate are decoded (http->decodes) */
    bool undecodable;         /* a coded 2xx body this libcurl cannot decode: cut */
    bool in_head;             /* inside a response's headers: its status line came, its blank
                                 line not yet (a line there is a header, whatever it says) */
    uint8_t coding;           /* CODING_*: the current response's Content-Encoding */
    bool unknown_coding;      /* a Content-Encoding none of those: refused, as undecodable */
    bool location_seen;       /* the current response's Location came (libcurl follows the first) */
    struct inflater *inf;     /* decoding the current 2xx body (its coding), or NULL */
    const char *coding_error; /* the coded body is corrupt: zlib's word (static), or NULL */
    unsigned long long coded_bytes; /* of the current 2xx body as it came, coded (x->inf) */
    bool coded_cut;      /* those passed coded_max: the transfer was cut (ASSET_E_TOO_LARGE) */
    size_t header_bytes; /* of the header lines (1xx, final, trailers) since the request */
    bool headers_cut;    /* those passed HEADERS_MAX: the transfer was cut */
    bool te_coded;       /* its Transfer-Encoding names a coding other than chunked (gzip...) */
    bool lengths_differ; /* it has two Content-Lengths that differ */
    bool length_cut;     /* so a final answer without chunked coding was cut: no framing */
    unsigned chunks;     /* the chunked codings its Transfer-Encodings name (one field or more) */
    bool chunked_twice;  /* so a 2xx was cut: libcurl takes one layer off, the body is chunks */
    bool etag_differ;    /* the current response has ETag fields that differ: no ETag */
    bool lm_differ;      /* the same for Last-Modified */
    bool location_304;   /* the current response is a 304 with a (non-empty) Location: the
                            transfer stops at its headers' end (headers_end), for libcurl
                            would follow that Location (any 3xx's); a 304 is the answer */
} xfer_t;

/* The content codings decoded here (libcurl's decoding is off: libcurl 7.88 does not
 * check that a coded stream ended, and loaded a cut one as a whole) */
enum { CODING_NONE, CODING_GZIP, CODING_DEFLATE };
static bool body_write(xfer_t *x, const char *data, size_t n);
static bool inflater_write(xfer_t *x, const char *data, size_t n);
static void inflater_free(xfer_t *x);
static bool inflater_done(const xfer_t *x);

enum { LOCATION_NONE, LOCATION_HTTP, LOCATION_OTHER }; /* xfer_t.location */

/* A non-2xx answer's body is read and dropped, so that its connection can serve the
 * next transfer, but only this much of it: an endless one is cut (ASSET_E_HTTP). The
 * same for the body of a redirect libcurl follows (it reads and drops it itself). */
#define ERROR_BODY_MAX ((size_t)64 << 10)

/* The most bytes of header lines an answer may have, its 1xx and trailers with it (as
 * libcurl 8.3's own cap: 300 KiB); libcurl before 8.3 (the Windows build's 7.88.1) has
 * none, and no version caps trailers: an endless stream of them kept the load for as
 * long as the server sent. */
#define HEADERS_MAX ((size_t)300 << 10)

/* The most bytes of a coded body (as it comes, before decoding): max_size and an eighth
 * more, for the coding's own bytes (an incompressible body gzip-coded is a little
 * larger). Only the decoded bytes were held to max_size, and a coded stream that
 * decodes to nothing (a gzip header whose file name never ends, empty deflate blocks)
 * ran for as long as the server sent it. */
static unsigned long long coded_max(size_t max_size) {
    unsigned long long m = max_size, extra = m / 8 + ERROR_BODY_MAX;
    return m > ULLONG_MAX - extra ? ULLONG_MAX : m + extra;
}

/* The transfers of one "scheme://authority": those in the multi and those waiting. */
struct host {
    host_t *prev, *next;           /* in http->hosts, in round-robin order */
    unsigned active;               /* its transfers in the multi */
    unsigned max;                  /* of them: http_max_connections, 2 x where HTTP/2 may be */
    xfer_t *wait_head, *wait_tail; /* FIFO of its transfers not yet in the multi */
    char key[];
};

/* A socket libcurl asked us to watch. A connected one outlives libcurl's interest in
 * it (CURL_POLL_REMOVE when its transfer ends): it is *parked*, its poll left running,
 * until libcurl watches it again (the next transfer on the kept connection: then
 * nothing has to change, where a new poll costs a socket ioctl and three epoll_ctl
 * calls) or closes it (closesocket_cb). An event on a parked socket (the peer closed the
 * idle connection) stops its poll: libcurl finds out when it next uses it. */
typedef struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct asset__http *http;
    struct sock *prev, *next;
    int events;     /* UV_* last asked for by libcurl; 0: the poll is stopped */
    bool closing;   /* uv_close pending */
    bool parked;    /* CURL_POLL_REMOVE came, the socket is still open */
    bool wrote;     /* libcurl asked to write it (a TCP connect in progress asks that) */
    bool connected; /* then to read it: the connect is done (below) */
    int local_port; /* once connected: its local port (unsolicited_bytes_drop) */
} sock_t;

struct asset__http {
    bool oom;   /* socket_cb could not allocate: fail_all says "out of memory" */
    bool http2; /* libcurl can multiplex: CURLOPT_PIPEWAIT for https (HTTP/2 by ALPN) */
    asset_server_t *server;
    asset__io_t *io;
    CURLM *multi;
    uv_timer_t timer;
    xfer_t *xfers;
    host_t *hosts;       /* with a transfer in the multi or waiting; round-robin order */
    unsigned active;     /* transfers in the multi */
    unsigned max_active; /* asset__http_max_active() */
    unsigned host_max;   /* 2 x http_max_connections: a host's most (HTTP/2), idle's size */
    sock_t *socks;
    CURL **idle;           /* easy handles free for the next transfer (a stack) */
    unsigned n_idle;       /* how many; at most host_max */
    bool decodes;          /* built with zlib: a gzip or deflate Content-Encoding is decoded */
    uint64_t cancels_seen; /* server->async_cancels at http_kick's last walk */
};

/* ---- curl's allocator goes through ours ---- */

/* libcurl's blocks come from asset_alloc, so a host's allocator sees them. But libcurl
 * 7.88 does not survive every allocation failure: when adding a transfer to a socket's
 * hash fails, singlesocket() destroys that hash yet keeps the socket entry, and the next
 * lookup divides by zero (SIGFPE; found by tests/test_torture.c). So when the host's
 * allocator says no, a block for libcurl comes from malloc instead; a header in front
 * of each block says where it came from, and its size (for a realloc that moves it). */
typedef union chdr {
    struct {
        size_t size;
        bool host; /* from asset_alloc, else from malloc */
    } h;
    max_align_t align;
} chdr_t;

static void *c_malloc(size_t n) {
    if (n > SIZE_MAX - sizeof(chdr_t)) return NULL;
    bool host = true;
    chdr_t *h = asset_alloc(sizeof *h + n);
    if (!h) {
        host = false;
        h = malloc(sizeof *h + n);
    }
    if (!h) return NULL;
    h->h.size = n;
    h->h.host = host;
    return h + 1;
}
static void c_free(void *p) {
    if (!p) return;
    chdr_t *h = (chdr_t *)p - 1;
    if (h->h.host)
        asset_free(h);
    else
        free(h);
}
static void *c_realloc(void *p, size_t n) {
    if (!p) return c_malloc(n);
    if (n > SIZE_MAX - sizeof(chdr_t)) return NULL;
    chdr_t *h = (chdr_t *)p - 1, *q;
    if (!h->h.host || (q = asset_realloc(h, sizeof *q + n)) == NULL) {
        if (!h->h.host) {
            q = realloc(h, sizeof *q + n);
        } else { /* the host said no: move the block to malloc */
            q = malloc(sizeof *q + n);
            if (q) {
                memcpy(q + 1, p, h->h.size < n ? h->h.size : n);
                asset_free(h);
                q->h.host = false;
            }
        }
        if (!q) return NULL;
    }
    q->h.size = n;
    return q + 1;
}
static char *c_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = c_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
static void *c_calloc(size_t n, size_t sz) {
    if (sz && n > SIZE_MAX / sz) return NULL;
    void *p = c_malloc(n * sz);
    if (p) memset(p, 0, n * sz);
    return p;
}

static uv_once_t g_curl_once = UV_ONCE_INIT;
static CURLcode g_curl_init_rc;
/* Whether a finished transfer's easy handle may carry the next one. Not before libcurl
 * 8.1.0: there a reused handle kept a pointer to the last header of its previous
 * transfer, which it frees when the next one starts, and a folded line as the next
 * answer's first header was appended to it (curl #11101, fixed by #11103): a hostile
 * server made libcurl read and reallocate freed memory. Those versions get a fresh
 * handle per transfer (test_http: a folded first header). */
static bool g_reuse_easy;
static atomic_int g_reuse_mode = -1; /* asset__http_set_easy_reuse */
void asset__http_set_easy_reuse(int mode) {
    atomic_store_explicit(&g_reuse_mode, mode < 0 ? -1 : mode > 0, memory_order_relaxed);
}
static bool reuse_easy(void) {
    int mode = atomic_load_explicit(&g_reuse_mode, memory_order_relaxed);
    return mode < 0 ? g_reuse_easy : mode;
}
static void curl_init_once(void) {
    g_curl_init_rc =
        curl_global_init_mem(CURL_GLOBAL_DEFAULT, c_malloc, c_free, c_realloc, c_strdup, c_calloc);
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    g_reuse_easy = v && v->version_num >= 0x080100;
}

/* ---- finishing ---- */

/* The last status line's status is not three digits (RFC 9110): libcurl lets any
 * length through after "HTTP/2 " on an HTTP/1 connection, and the handle keeps 16 bits. */
static bool status_malformed(const xfer_t *x) { return x->status < 100 || x->status > 999; }

/* A non-2xx answer: ASSET_E_HTTP with its status and reason (ASSET_E_NETWORK when
 * that status is malformed). */
static asset_status_t http_error(xfer_t *x, asset_request_t *r) {
    if (status_malformed(x))
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "malformed response: status %ld is not three digits", x->status);
    r->http_status = (int)x->status;
    return asset_request_fail(r, ASSET_E_HTTP, "HTTP %ld%s%s%s", x->status, x->reason[0] ? " " : "",
                              x->reason, asset__http_status_note(x->status));
}

/* hops: the redirects libcurl followed (CURLINFO_REDIRECT_COUNT, read by xfer_done) */
static asset_status_t map_result(xfer_t *x, CURLcode rc, long hops) {
    asset_request_t *r = x->req;
    const char *detail = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    if (x->cancelled || asset_request_cancelled(r)) return ASSET_E_CANCELLED;
    /* the final answer's status, once its headers came, whatever becomes of its body (cut
     * short, reset, stalled, too large): the server answered, which a user may want to
     * tell from no answer at all, as the web build tells it. A 2xx that failed said 0.
     * Not a redirect being followed: what failed was its next hop (fetch() on the web
     * build sees no 3xx; its own failures keep it below) */
    if (x->headers_done && x->status >= 200 && !(x->status / 100 == 3 && x->location_seen) &&
        !status_malformed(x))
        r->http_status = (int)x->status;
    if (x->headers_cut)
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "response headers (with its 1xx and trailers) over %zu KiB: cut",
                                  HEADERS_MAX >> 10);
    if (x->length_cut)
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "malformed response: Content-Length values that differ");
    if (x->chunked_twice)
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "malformed response: chunked applied more than once "
                                  "(Transfer-Encoding)");
    if (x->error_cut) return http_error(x, r); /* an error answer, its endless body cut */
    /* an error answer (4xx, 5xx, a 3xx without Location: libcurl follows none) whose
     * body did not come whole (the server closed or reset the connection, or it
     * stalled): the answer is its status, and its body is dropped anyway (as the web
     * build decides at the headers). It failed ASSET_E_NETWORK: "transfer closed with
     * 996 bytes remaining to read" for a 503 (with no status), and still for a 300 */
    if (rc != CURLE_OK && rc != CURLE_OUT_OF_MEMORY && x->headers_done && x->status >= 300 &&
        !(x->status / 100 == 3 && x->location_seen) && !status_malformed(x))
        return http_error(x, r);
    if (x->undecodable && x->te_coded)
        return asset_request_fail(r, ASSET_E_UNSUPPORTED,
                                  "the body has a transfer coding (Transfer-Encoding) other "
                                  "than chunked, which nothing asked for: not decoded");
    if (x->undecodable)
        return asset_request_fail(r, ASSET_E_UNSUPPORTED,
                                  "the body is coded (Content-Encoding), and this build "
                                  "cannot decode it");
    if (x->coding_error)
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "corrupt body: its Content-Encoding (%s) "
                                  "does not decode: %s",
                                  x->coding == CODING_GZIP ? "gzip" : "deflate", x->coding_error);
    /* a redirect's failures are HTTP ones: the handle keeps its status (the last
     * answer's, a 3xx; it said 0, "not HTTP") */
    if ((x->redirect_cut || rc == CURLE_TOO_MANY_REDIRECTS) && !status_malformed(x))
        r->http_status = (int)x->status;
    if (x->coded_cut)
        return asset_request_fail(r, ASSET_E_TOO_LARGE,
                                  "coded body (Content-Encoding) over %llu bytes: "
                                  "max_asset_size (%zu bytes) and an eighth for the coding",
                                  coded_max(r->max_size), r->max_size);
    if (x->redirect_cut)
        return asset_request_fail(r, ASSET_E_HTTP,
                                  "HTTP %ld redirect whose body passed %zu KiB: cut", x->status,
                                  ERROR_BODY_MAX >> 10);
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        return asset_request_fail(r, ASSET_E_TOO_LARGE,
                                  "body larger than max_asset_size (%zu bytes)", r->max_size);
    switch (rc) {
    case CURLE_OK: break;
    case CURLE_OPERATION_TIMEDOUT:
        /* no CURLOPT_TIMEOUT is set: this is connecting, or the low-speed guard */
        if (strstr(detail, "too slow"))
            return asset_request_fail(r, ASSET_E_TIMEOUT,
                                      "stalled: no data for %u ms (http_low_speed_ms)",
                                      x->server->cfg.http_low_speed_ms);
        /* else connecting (resolving, TCP, TLS) passed http_connect_timeout_ms: named, as
         * the stall guard is and as the web build names it (it said only "HTTP transfer
         * timed out: <curl's reason>", as if timeout_ms had) */
        return asset_request_fail(r, ASSET_E_TIMEOUT,
                                  "HTTP transfer timed out: no connection within %u ms "
                                  "(http_connect_timeout_ms): %s",
                                  x->server->cfg.http_connect_timeout_ms, detail);
    case CURLE_URL_MALFORMAT: /* a libcurl built with http only (the Windows build) cannot
                                 even parse a redirect to file:// */
    case CURLE_UNSUPPORTED_PROTOCOL: {
        char *target = NULL; /* set when the refused protocol came from a redirect */
        if (x->easy) curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &target);
        if (rc == CURLE_URL_MALFORMAT && x->status / 100 == 3 && x->location != LOCATION_OTHER)
            return asset_request_fail(r, ASSET_E_NETWORK, "malformed redirect: %s%s%s", detail,
                                      target ? ": " : "", target ? target : "");
        if (target || x->status / 100 == 3)
            return asset_request_fail(
                r, ASSET_E_FORBIDDEN,
                "redirect to a protocol not allowed (only http and https)%s%s", target ? ": " : "",
                target ? target : "");
        if (rc == CURLE_URL_MALFORMAT) return asset_request_fail(r, ASSET_E_NETWORK, "%s", detail);
        return asset_request_fail(r, ASSET_E_NETWORK, "malformed response: %s", detail);
    }
    case CURLE_TOO_MANY_REDIRECTS:
        return asset_request_fail(r, ASSET_E_HTTP, "too many redirects (at most 5)");
    case CURLE_OUT_OF_MEMORY:
        /* libcurl also says "out of memory" when a response header outgrows its buffer
         * (CURL_MAX_HTTP_HEADER). A result of libcurl's (not one of ours, which come
         * with a message) with no allocation failed on this thread meanwhile: it was the
         * server, not the memory */
        if (x->in_multi && !r->message && asset__alloc_failures() == x->alloc_failures)
            return asset_request_fail(
                r, ASSET_E_NETWORK, "response header too large (> %d KiB)%s%s",
                CURL_MAX_HTTP_HEADER / 1024, x->errbuf[0] ? ": " : "", x->errbuf);
        return asset_request_fail(r, ASSET_E_NO_MEMORY, "%s", detail);
    case CURLE_ABORTED_BY_CALLBACK: return ASSET_E_CANCELLED;
    default:
        if (x->oom) /* write_cb could not buffer the body (the message says so) */
            return asset_request_fail(r, ASSET_E_NO_MEMORY, "out of memory buffering the body");
        if (x->sock_errno) /* "Couldn't connect to server" alone hides "Too many open files" */
            return asset_request_fail(r, ASSET_E_NETWORK, "cannot open a socket: %s (%s)",
                                      strerror(x->sock_errno), detail);
        return asset_request_fail(r, ASSET_E_NETWORK, "%s", detail);
    }
    /* libcurl says OK for a connection closed inside the headers (after the status
     * line): that answer has no body, not an empty one */
    if (!x->headers_done)
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "connection closed inside the response's headers");
    if (status_malformed(x)) return http_error(x, r);
    r->http_status = (int)x->status;
    /* a 304 to a request that asked nothing conditional answers nothing */
    if (x->status == 304 && x->headers) return ASSET_NOT_MODIFIED; /* counted by xfer_done */
    if (x->status < 200 || x->status > 299) return http_error(x, r);
    /* a part of the body (Content-Range) is no asset, and no request of ours asks for a
     * range: a 206 loaded its part as the whole */
    if (x->status == 206) return http_error(x, r);
    /* libcurl sees the bytes the Content-Length (or the chunks) announced: a coded
     * stream cut short is seen by its decoder only */
    if (x->inf && !inflater_done(x))
        return asset_request_fail(r, ASSET_E_NETWORK,
                                  "truncated body: its Content-Encoding (%s) stream ended early "
                                  "(%zu bytes decoded)",
                                  x->coding == CODING_GZIP ? "gzip" : "deflate", r->size);
    /* a validator is a resource's (RFC 9110 8.8.3), and where a URL redirects to may
     * change: an answer reached through a redirect is versioned by its bytes */
    const char *validator = hops ? NULL : x->etag ? x->etag : x->last_modified;
    if (validator) { /* made by header_cb: "etag:<ETag>", "lm:<date>" */
        /* the cached one: a server that ignores the condition answers 200 where it meant
         * 304 (every poll published a reload of unchanged bytes, every revalidating
         * load parsed again). Only a strong ETag says the bytes are the same: a weak one
         * (W/) or a Last-Modified (whole seconds) may name other bytes */
        const char *cached = asset_request_cached_version(r);
        if (cached && !strncmp(validator, "etag:\"", 6) && !strcmp(cached, validator))
            return ASSET_NOT_MODIFIED;
        asset_request_set_version(r, validator);
        return ASSET_OK;
    }
    /* no validator: the bytes' hash is the version (and the URL redirected to's), so that
     * an unchanged answer (a poll, a revalidating load) keeps the cached value instead of
     * being parsed again */
    char digest[48], *from = NULL;
    if (hops && x->easy && curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &from) != CURLE_OK)
        from = NULL;
    asset__http_hash_version(digest, asset__hash_n(r->data ? (const char *)r->data : "", r->size),
                             from != NULL,
                             from ? asset__hash_n(from, asset__http_from_len(from)) : 0);
    const char *cached = asset_request_cached_version(r);
    if (cached && !strcmp(cached, digest)) return ASSET_NOT_MODIFIED;
    asset_request_set_version(r, digest);
    return ASSET_OK;
}

static void xfer_free(xfer_t *x) {
    inflater_free(x);
    if (x->easy) curl_easy_cleanup(x->easy); /* not handed back to a free list */
    curl_slist_free_all(x->headers);
    asset_free(x->etag);
    asset_free(x->last_modified);
    asset_free(x);
}

/* ---- hosts ---- */

static void host_unlink(asset__http_t *http, host_t *h) {
    if (h->prev)
        h->prev->next = h->next;
    else
        http->hosts = h->next;
    if (h->next) h->next->prev = h->prev;
    h->prev = h->next = NULL;
}

static void host_link_tail(asset__http_t *http, host_t *h) {
    host_t **pp = &http->hosts, *prev = NULL;
    while (*pp) {
        prev = *pp;
        pp = &prev->next;
    }
    h->prev = prev;
    *pp = h;
}

static void host_free(asset__http_t *http, host_t *h) {
    if (http) host_unlink(http, h);
    asset_free(h);
}

/* Whether the host h (hn bytes, its port apart) is an IPv4 address in one of the forms
 * libcurl takes (its ipv4_normalize, 7.88.1: one to four parts, each decimal, octal with
 * a leading 0 or hex with 0x: "127.1", "2130706433", "0x7f.0.0.1"), written dotted in
 * out (16 bytes), which is the name libcurl connects to and counts connections by. */
static bool ipv4_dotted(const char *h, size_t hn, char *out) {
    uint32_t parts[4] = {0};
    int n = 0;
    for (size_t i = 0;;) {
        if (i >= hn || h[i] < '0' || h[i] > '9') return false;
        int base = h[i] != '0' ? 10 : i + 1 < hn && (h[i + 1] == 'x' || h[i + 1] == 'X') ? 16 : 8;
        size_t digits = 0;
        uint64_t v = 0;
        if (base == 16)
            i += 2;
        else if (base == 8)
            digits = 1; /* "0" alone is a zero */
        for (int d; i < hn && (d = asset__hexval((unsigned char)h[i])) >= 0 && d < base;
             i++, digits++)
            if ((v = v * (unsigned)base + (unsigned)d) > UINT32_MAX) return false;
        if (!digits) return false; /* "0x" and nothing: libcurl's strtoul parses "0", then 'x' */
        parts[n] = (uint32_t)v;
        if (i == hn) break;
        if (h[i] != '.' || n == 3) return false;
        n++;
        i++;
    }
    uint32_t a = parts[0], b = parts[1], c = parts[2], d = parts[3];
    switch (n) {
    case 0: d = a & 0xff, c = (a >> 8) & 0xff, b = (a >> 16) & 0xff, a >>= 24; break;
    case 1:
        if (a > 0xff || b > 0xffffff) return false;
        d = b & 0xff, c = (b >> 8) & 0xff, b = (b >> 16) & 0xff;
        break;
    case 2:
        if (a > 0xff || b > 0xff || c > 0xffff) return false;
        d = c & 0xff, c = (c >> 8) & 0xff;
        break;
    default:
        if (a > 0xff || b > 0xff || c > 0xff || d > 0xff) return false;
    }
    snprintf(out, 16, "%u.%u.%u.%u", (unsigned)a, (unsigned)b, (unsigned)c, (unsigned)d);
    return true;
}

/* The 16 bytes of the IPv6 address a (n bytes, its brackets apart) in out, as inet_pton
 * (glibc's, ISC's) reads it: up to 8 groups of up to 4 hex digits, one "::" for at least
 * one zero group, the last 32 bits possibly dotted (no leading zero in a part). */
static bool ipv6_parse(const char *a, size_t n, uint8_t out[16]) {
    size_t k = 0, gap = SIZE_MAX, i = 0, tok = 0;
    unsigned v = 0, digits = 0;
    if (n && a[0] == ':' && (n < 2 || a[1] != ':')) return false;
    if (n && a[0] == ':') i = 1; /* the first of a leading "::" */
    for (; i < n; i++) {
        int d = asset__hexval((unsigned char)a[i]);
        if (d >= 0) {
            if (++digits > 4) return false;
            v = v << 4 | (unsigned)d;
        } else if (a[i] == ':') {
            tok = i + 1;
            if (!digits) {
                if (gap != SIZE_MAX) return false;
                gap = k;
                continue;
            }
            if (i + 1 == n || k + 2 > 16) return false;
            out[k++] = (uint8_t)(v >> 8), out[k++] = (uint8_t)v;
            v = digits = 0;
        } else if (a[i] == '.' && k + 4 <= 16) {
            unsigned part = 0, parts = 0, pd = 0;
            for (size_t j = tok; j <= n; j++) {
                if (j < n && a[j] >= '0' && a[j] <= '9') {
                    if (pd++ && !part) return false; /* a leading zero */
                    if ((part = part * 10 + (unsigned)(a[j] - '0')) > 255) return false;
                } else if ((j == n || a[j] == '.') && pd && parts < 4) {
                    out[k + parts++] = (uint8_t)part;
                    part = pd = 0;
                } else {
                    return false;
                }
            }
            if (parts != 4) return false;
            k += 4;
            digits = 0;
            break;
        } else {
            return false;
        }
    }
    if (digits) {
        if (k + 2 > 16) return false;
        out[k++] = (uint8_t)(v >> 8), out[k++] = (uint8_t)v;
    }
    if (gap != SIZE_MAX) {
        if (k == 16) return false;
        memmove(out + gap + (16 - k), out + gap, k - gap);
        memset(out + gap, 0, 16 - k);
        k = 16;
    }
    return k == 16;
}

/* The 16 bytes of an IPv6 address written as inet_ntop writes them (ISC's, glibc's):
 * lowercase hex without leading zeros, the first longest run of two or more zero groups
 * as "::", "::a.b.c.d" and "::ffff:a.b.c.d" dotted. out: 46 bytes. */
static void ipv6_text(const uint8_t b[16], char *out) {
    unsigned w[8];
    int best = -1, blen = 0, cur = -1, clen = 0;
    for (int i = 0; i < 8; i++) {
        w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
        if (w[i]) {
            cur = -1;
            continue;
        }
        if (cur < 0) cur = i, clen = 0;
        if (++clen > blen) best = cur, blen = clen;
    }
    if (blen < 2) best = -1;
    size_t k = 0;
    for (int i = 0; i < 8; i++) {
        if (best >= 0 && i >= best && i < best + blen) {
            if (i == best) out[k++] = ':';
            continue;
        }
        if (i) out[k++] = ':';
        if (i == 6 && best == 0 && (blen == 6 || (blen == 5 && w[5] == 0xffff))) {
            k += (size_t)sprintf(out + k, "%u.%u.%u.%u", b[12], b[13], b[14], b[15]);
            break;
        }
        k += (size_t)sprintf(out + k, "%x", w[i]);
    }
    if (best >= 0 && best + blen == 8) out[k++] = ':';
    out[k] = 0;
}

/* Whether h (hn bytes, its port apart) is a bracketed IPv6 literal libcurl takes, written
 * in out (72 bytes) as libcurl names the host (its hostname_check, 7.88.1): the address
 * in inet_ntop's form when that is shorter ("[0:0::1]" is "[::1]"), lowercased (its
 * connection cache's key is), and a zone id as the interface index libcurl keys its
 * connections by (its conncache hashkey: "<scope>/<port>/<host>"): "%25" and that
 * number, "[::1%lo]" and "[::1%251]" one host; none for the index 0 (an unknown name,
 * "%250": libcurl's scope 0 is no zone). */
static bool ipv6_bracketed(const char *h, size_t hn, char *out) {
    if (hn < 4 || h[0] != '[' || h[hn - 1] != ']') return false;
    const char *a = h + 1, *end = h + hn - 1;
    size_t an = strspn(a, "0123456789abcdefABCDEF:."), zn = 0;
    const char *z = NULL;
    if (an > (size_t)(end - a)) return false;
    if (a + an != end) { /* a zone id: "%25eth0", "%eth0" */
        if (a[an] != '%') return false;
        z = a + an + 1;
        if (end - z > 2 && z[0] == '2' && z[1] == '5') z += 2;
        zn = (size_t)(end - z);
        if (!zn || zn > 15) return false;
    }
    uint8_t b[16];
    char text[46];
    if (!ipv6_parse(a, an, b)) return false;
    ipv6_text(b, text);
    size_t k = 0;
    out[k++] = '[';
    if (strlen(text) < an) {
        memcpy(out + k, text, strlen(text));
        k += strlen(text);
    } else {
        for (size_t i = 0; i < an; i++) out[k++] = (char)asset__ascii_lower((unsigned char)a[i]);
    }
    if (z) { /* libcurl's zonefrom_url: a number, else an interface's name; 0: none */
        char zone[16], *e;
        memcpy(zone, z, zn);
        zone[zn] = 0;
        unsigned long scope = strtoul(zone, &e, 10);
        if (*e || scope >= UINT_MAX) scope = asset__if_index(zone);
        if (scope) k += (size_t)sprintf(out + k, "%%25%lu", scope);
    }
    out[k++] = ']';
    out[k] = 0;
    return true;
}

/* The name libcurl connects to for uri's host when that has a byte outside ASCII (its
 * escapes decoded): the punycode (UTS 46) libcurl makes of it (Curl_idnconvert_hostname;
 * CURLU_PUNYCODE uses the same conversion, and its libidn2 reads the host in the
 * locale's charset), lowercased, in out (cap bytes, not terminated). Returns its length,
 * 0 when libcurl cannot convert it (its transfer fails) or it does not fit. */
static size_t idn_host(const char *uri, char *out, size_t cap) {
    size_t n = 0;
#ifdef CURLU_PUNYCODE
    CURLU *u = curl_url();
    char *host = NULL;
    if (u && curl_url_set(u, CURLUPART_URL, uri, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, CURLU_PUNYCODE) == CURLUE_OK &&
        (n = strlen(host)) < cap) {
        for (size_t i = 0; i < n; i++) out[i] = (char)asset__ascii_lower((unsigned char)host[i]);
    } else {
        n = 0;
    }
    curl_free(host);
    curl_url_cleanup(u);
#else
    (void)uri, (void)out, (void)cap;
#endif
    return n;
}

/* The key of uri's host in out (cap bytes, terminated): "host:port" as libcurl counts a
 * host's connections (its conncache key, 7.88.1: "<scope>/<port>/<host>"), whatever the
 * spelling and the scheme: the host lowercased, user info dropped; an IPv4 address
 * dotted (ipv4_dotted), an IPv6 literal in libcurl's form (ipv6_bracketed: "[0:0::1]"
 * is "[::1]"), else the host's %XX escapes decoded (as libcurl's decode_host does:
 * "%6Cocalhost" is localhost) and a host outside ASCII in libcurl's punycode
 * (idn_host); the port's number without leading zeros, the scheme's default when none
 * (an https:// load of a port whose connections http:// loads held waited for them in
 * libcurl). A redirect's Location is as its server wrote it ("http://LOCALHOST:80"),
 * the URIs of loads normalised but for the user info and a port's zeros: each
 * spelling was a host of its own, and a load of the host went past its
 * http_max_connections. Returns the key's length, 0 when it does not fit (a host
 * longer than any DNS name). */
static size_t host_key(const char *uri, char *out, size_t cap) {
    const char *a = strstr(uri, "://");
    size_t sn = a ? (size_t)(a - uri) : 0;
    a = a ? a + 3 : uri;
    const char *end = a + strcspn(a, "/?#"), *h = a;
    for (const char *c = a; c < end; c++)
        if (*c == '@') h = c + 1;
    const char *c = h;
    if (*c == '[')
        while (c < end && *c != ']') c++;
    while (c < end && *c != ':') c++;
    size_t hn = (size_t)(c - h);
    const char *port = c < end ? c + 1 : end;
    while (end - port > 1 && *port == '0') port++;
    size_t pn = (size_t)(end - port);
    if (!pn && sn == 4) port = "80", pn = 2; /* libcurl counts by the port: the default */
    if (!pn && sn == 5) port = "443", pn = 3;
    char v4[72]; /* a dotted IPv4 address or a bracketed IPv6 one, as libcurl writes it */
    bool dotted = *h != '[' ? ipv4_dotted(h, hn, v4) : ipv6_bracketed(h, hn, v4);
    size_t n = (dotted ? strlen(v4) : hn) + (pn ? 1 + pn : 0);
    if (n >= cap) return 0;
    size_t k = 0;
    if (dotted) {
        memcpy(out + k, v4, strlen(v4));
        k += strlen(v4);
    }
    for (size_t i = 0; i < hn && !dotted; i++) {
        int hi, lo;
        unsigned char ch = (unsigned char)h[i];
        /* a control character stays escaped: libcurl refuses it (REJECT_CTRL), and a NUL
         * would end the key */
        if (ch == '%' && h[0] != '[' && i + 2 < hn &&
            (hi = asset__hexval((unsigned char)h[i + 1])) >= 0 &&
            (lo = asset__hexval((unsigned char)h[i + 2])) >= 0 && (hi << 4 | lo) >= 0x20 &&
            (hi << 4 | lo) != 0x7f) {
            ch = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        out[k++] = (char)asset__ascii_lower(ch);
    }
    for (size_t i = 0; i < k && !dotted; i++)
        if ((unsigned char)out[i] >= 0x80) { /* an IDN host: libcurl's punycode of it */
            size_t in = idn_host(uri, out, cap - (pn ? 1 + pn : 0));
            if (in) k = in;
            break;
        }
    if (pn) {
        out[k++] = ':';
        memcpy(out + k, port, pn);
        k += pn;
    }
    n = k;
    out[n] = 0;
    return n;
}

/* The host record for uri's "scheme://authority" (host_key), made on first use; NULL: no
 * memory. */
static host_t *host_get(asset__http_t *http, const char *uri) {
    /* HTTP/1.1 carries one transfer per connection: each transfer beyond the connections
     * sits in libcurl's pending list, and every finished transfer makes libcurl try them
     * again (its whole connect step: URL parse, cache lookup), about two extra tries
     * per transfer (docs/performance.md, fourteenth round). HTTP/2 (https, when libcurl
     * has it) multiplexes: more transfers than connections keep its streams busy. A
     * port's http and https transfers share its connections: the least of the two */
    unsigned max =
        http->http2 && !asset__strncasecmp(uri, "https:", 6) ? http->host_max : http->host_max / 2;
    char buf[320];
    size_t n = host_key(uri, buf, sizeof buf);
    if (n) {
        uri = buf;
    } else { /* too long: as spelled */
        const char *a = strstr(uri, "://");
        a = a ? a + 3 : uri;
        n = (size_t)(a - uri) + strcspn(a, "/?#");
    }
    for (host_t *h = http->hosts; h; h = h->next)
        if (!strncmp(h->key, uri, n) && !h->key[n]) {
            if (max < h->max) h->max = max;
            return h;
        }
    host_t *h = asset__calloc(1, sizeof *h + n + 1);
    if (!h) return NULL;
    memcpy(h->key, uri, n);
    h->max = max;
    host_link_tail(http, h);
    return h;
}

/* ---- easy handles: kept for the next transfer, options set once or per request ---- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *user);
static size_t header_cb(char *line, size_t size, size_t nmemb, void *user);
static curl_socket_t opensocket_cb(void *user, curlsocktype purpose, struct curl_sockaddr *a);
static int closesocket_cb(void *user, curl_socket_t fd);
static int prereq_cb(void *user, char *ip, char *local_ip, int port, int local_port);
static int progress_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow);

/* Sets on a new or reset easy handle every option that is the same for all of this
 * server's transfers. */
static CURLcode easy_setup(CURL *e, asset__http_t *http) {
    const asset_server_t *s = http->server;
    /* the options that copy a string can fail for want of memory */
    CURLcode rc = curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, CURLOPT_USERAGENT, "asset_server/0.1");
    /* no Accept-Encoding means any coding will do (RFC 9110 12.5.3), and some servers
     * send stored gzip whatever is asked: the loaders get the bytes decoded (write_cb),
     * or, without zlib, a refusal (headers_end) rather than gzip. libcurl decodes
     * nothing: it does not check that a coded stream ended */
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING,
                              http->decodes ? "gzip, deflate" : "identity");
    if (rc != CURLE_OK) return rc;
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* long is 32 bits on Windows: 2^31 ms or more went negative, libcurl refused it
     * (unchecked) and its 300 s default applied */
    unsigned long long connect_ms = s->cfg.http_connect_timeout_ms;
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     connect_ms > LONG_MAX ? LONG_MAX : (long)connect_ms);
    if (s->cfg.http_low_speed_ms != UINT_MAX) { /* under 1 byte/s for that long: stalled */
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                         (long)((s->cfg.http_low_speed_ms + 999ull) / 1000));
    }
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, closesocket_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, http); /* kept by the connection */
    return CURLE_OK;
}

/* Gives x an easy handle: a free one, reset (curl_easy_reset: also the state libcurl
 * keeps between transfers, such as its count of retries on dropped connections, which
 * would otherwise run out over a handle's life), else a new one; then the fixed options
 * and the request's own. Else a message on the request and the error, for xfer_done. */
static CURLcode easy_bind(asset__http_t *http, xfer_t *x) {
    asset_request_t *r = x->req;
    const char *uri = asset_request_uri(r);
    CURL *e;
    if (http->n_idle) {
        e = http->idle[--http->n_idle];
        curl_easy_reset(e);
    } else if (!(e = curl_easy_init())) {
        asset_request_fail(r, ASSET_E_NO_MEMORY, "cannot make a curl easy handle: out of memory");
        return CURLE_OUT_OF_MEMORY;
    } else {
        asset__log(http->server, ASSET_LOG_DEBUG, "%s: http: new curl easy handle (none free)",
                   uri);
    }
    x->easy = e;
    CURLcode sc = easy_setup(e, http);
    if (sc == CURLE_OK) sc = curl_easy_setopt(e, CURLOPT_URL, uri);
    if (sc != CURLE_OK) {
        asset_request_fail(r, sc == CURLE_OUT_OF_MEMORY ? ASSET_E_NO_MEMORY : ASSET_E_NETWORK,
                           "curl_easy_setopt: %s", curl_easy_strerror(sc));
        return sc;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    x->decodes = http->decodes;
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, x);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    curl_easy_setopt(e, CURLOPT_XFERINFODATA, x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers); /* NULL: only libcurl's own */
    /* no CURLOPT_MAXFILESIZE: header_cb and write_cb hold a 2xx body to max_size, and
     * libcurl's check also failed a 404 announcing a large body as too large */
    /* waiting for a connection to multiplex on pays only where HTTP/2 can be had: over
     * TLS (CURL_HTTP_VERSION_2TLS). On HTTP/1.1 it holds a transfer back for nothing */
    long pipewait = http->http2 && !asset__strncasecmp(uri, "https:", 6);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, pipewait);
    return CURLE_OK;
}

/* x's transfer is over: its easy handle goes back to the free list, or away (in
 * xfer_free) when the list is full, or libcurl ran out of memory or failed the multi
 * during the transfer: its state may be half made, or this libcurl must not reuse
 * handles (reuse_easy). */
static void easy_unbind(asset__http_t *http, xfer_t *x, CURLcode rc) {
    CURL *e = x->easy;
    if (!e || !http || !reuse_easy() || rc == CURLE_OUT_OF_MEMORY || x->spoilt ||
        http->n_idle >= http->host_max)
        return;
    if (!http->idle) {
        http->idle = asset__calloc(http->host_max, sizeof *http->idle);
        if (!http->idle) return;
    }
    http->idle[http->n_idle++] = e;
    x->easy = NULL;
}

static void xfer_again(asset__http_t *http, xfer_t *x);

/* I/O thread: the transfer left the multi (or never entered it). */
static void xfer_done(asset__http_t *http, xfer_t *x, CURLcode rc) {
    if (x->prev)
        x->prev->next = x->next;
    else if (http)
        http->xfers = x->next;
    if (x->next) x->next->prev = x->prev;
    host_t *host = x->host;
    if (http && x->in_multi) {
        http->active--;
        host->active--;
        atomic_fetch_sub_explicit(&http->server->http_in_multi, 1, memory_order_relaxed);
    } else if (host) { /* still waiting */
        if (x->wprev)
            x->wprev->wnext = x->wnext;
        else
            host->wait_head = x->wnext;
        if (x->wnext)
            x->wnext->wprev = x->wprev;
        else
            host->wait_tail = x->wprev;
    }
    if (host && !host->active && !host->wait_head) host_free(http, host);
    long conns = 0;
    if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &conns) != CURLE_OK) conns = 0;
    long hops = 0;
    if (x->easy && curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &hops) != CURLE_OK) hops = 0;
    /* such a 304 stopped at its headers' end: the 304, whole (headers_end) */
    if (x->location_304 && x->headers_done && rc == CURLE_WRITE_ERROR) rc = CURLE_OK;
    asset_status_t st = map_result(x, rc, hops);
    /* the URL the bytes came from, after redirects: their relative references resolve
     * against it, as a browser's do ("tex.png" in /a/scene.json redirected to /b/ is
     * /b/tex.png); the cache and reloads keep the URL asked for */
    char *effective = NULL;
    if (st == ASSET_OK && hops && x->easy &&
        curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &effective) == CURLE_OK) {
        const char *why = NULL;
        asset_status_t bs = asset__request_set_base(x->req, effective, &why);
        if (bs != ASSET_OK)
            st = asset_request_fail(x->req, bs, "redirected to %.200s: %s", effective, why);
    }
    easy_unbind(http, x, rc);
    asset_request_t *r = x->req;
    asset_server_t *s = x->server;
    /* a 304 names the representation it finds current (RFC 9110 15.4.5): an ETag other
     * than the cached one (or, for a cached Last-Modified, another date: a file replaced
     * by an older one, asset__http_lm_moved) says nothing of the cached bytes (RFC 9111
     * 4.3.4: they must not be freshened by it; the handle kept them for good). Compared
     * weakly: nginx's gzip makes a 200's ETag weak, not its 304's */
    const char *cached = asset_request_cached_version(r);
    bool moved = asset__http_etag_moved(cached, x->etag ? x->etag + 5 : NULL) ||
                 asset__http_lm_moved(cached, x->last_modified ? x->last_modified + 3 : NULL);
    bool again =
        st == ASSET_NOT_MODIFIED && x->status == 304 && (hops || moved) && http && !x->asked_again;
    uv_mutex_lock(&s->lock);
    s->stats.http_connections += (uint64_t)conns;
    if (st == ASSET_NOT_MODIFIED && x->status == 304 && !again) s->stats.http_not_modified++;
    if (again) s->stats.http_requests++; /* xfer_again starts another transfer */
    uv_mutex_unlock(&s->lock);
    if (again) {
        /* a redirect target judged the condition, a validator of another resource (the
         * URL's, when it did not redirect), or the 304 named another representation: it
         * says nothing. Asked again, whole */
        xfer_again(http, x);
        return;
    }
    if (conns > 1) /* libcurl retried a dropped reused connection, or followed a redirect */
        asset__log(s, ASSET_LOG_DEBUG,
                   "%s: http: %ld connections opened (a dropped connection was retried, or "
                   "redirected)",
                   asset_request_uri(r), conns);
    xfer_free(x);
    asset_request_finish(r, st);
}

static void fail_all(asset__http_t *http, CURLMcode mc);
static void xfer_file(asset__http_t *http, xfer_t *x);

/* [I/O thread] x, out of every list, is sent again without its conditional header. */
static void xfer_again(asset__http_t *http, xfer_t *x) {
    if (x->easy) curl_easy_cleanup(x->easy); /* not taken back by easy_unbind */
    x->easy = NULL;
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    x->asked_again = true;
    x->req->http_status = 0;
    x->in_multi = false;
    x->prev = x->next = x->wprev = x->wnext = NULL;
    x->host = NULL;
    x->errbuf[0] = 0;
    x->status = 0;
    xfer_file(http, x);
}

/* Moves waiting transfers into the multi while fewer than max_active are there, taking
 * one at a time from the next host (round-robin) that has fewer than its max there.
 * With a thousand easy handles in one multi, libcurl spends more CPU walking them than
 * the connections can use (docs/performance.md, http_many); per host, so that a host
 * whose transfers all stall cannot hold the slots of the others. */
static void pump(asset__http_t *http) {
    for (;;) {
        /* past max_active, a host with nothing in the multi still gets one transfer in:
         * hosts whose transfers all stall must not hold every slot */
        bool room = http->active < http->max_active;
        host_t *h = http->hosts;
        while (h && (!h->wait_head || h->active >= h->max || (!room && h->active))) h = h->next;
        if (!h) break;
        xfer_t *x = h->wait_head;
        CURLcode sc = easy_bind(http, x);
        if (sc != CURLE_OK) { /* still first in its host's queue: xfer_done unlinks it */
            xfer_done(http, x, sc);
            continue;
        }
        h->wait_head = x->wnext;
        if (h->wait_head)
            h->wait_head->wprev = NULL;
        else
            h->wait_tail = NULL;
        x->wnext = x->wprev = NULL;
        if (h->next) { /* to the back of the round */
            host_unlink(http, h);
            host_link_tail(http, h);
        }
        x->in_multi = true;
        http->active++;
        h->active++;
        atomic_fetch_add_explicit(&http->server->http_in_multi, 1, memory_order_relaxed);
        CURLMcode mc = curl_multi_add_handle(http->multi, x->easy);
        if (mc != CURLM_OK) {
            asset_request_fail(x->req, ASSET_E_NETWORK, "curl_multi_add_handle: %s",
                               curl_multi_strerror(mc));
            xfer_done(http, x, CURLE_FAILED_INIT);
        }
    }
}

static void check_done(asset__http_t *http) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(http->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        CURL *e = m->easy_handle;
        CURLcode rc = m->data.result;
        xfer_t *x = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(http->multi, e);
        xfer_done(http, x, rc);
    }
    pump(http);
}

/* ---- curl multi <-> libuv ---- */

/* UV_DISCONNECT (libuv 1.9): the peer closed its side; polled with UV_READABLE only */
#if UV_VERSION_HEX >= 0x010900
#define ASSET__UV_DISCONNECT UV_DISCONNECT
#else
#define ASSET__UV_DISCONNECT 0
#endif

static void sock_closed(uv_handle_t *h) { c_free(h->data); }

/* The parked sock_t of fd, or NULL (a list of at most the open connections). */
static sock_t *sock_parked(asset__http_t *http, curl_socket_t fd) {
    for (sock_t *k = http->socks; k; k = k->next)
        if (k->fd == fd && k->parked) return k;
    return NULL;
}

static void sock_close(asset__http_t *http, sock_t *k) {
    if (k->prev)
        k->prev->next = k->next;
    else
        http->socks = k->next;
    if (k->next) k->next->prev = k->prev;
    k->closing = true;
    uv_poll_stop(&k->poll);
    k->poll.data = k;
    uv_close((uv_handle_t *)&k->poll, sock_closed);
}

static void poll_cb(uv_poll_t *p, int status, int events) {
    sock_t *k = p->data;
    asset__http_t *http = k->http;
    if (k->parked) { /* nobody's transfer: libcurl sees the close when it reuses it */
        uv_poll_stop(&k->poll);
        k->events = 0;
        return;
    }
    int flags = 0;
    /* A socket error (libuv says UV_EBADF and stops the poll: a reset) or the peer's
     * close: libcurl must read the socket to see it. CURL_CSELECT_ERR alone makes it
     * fail the transfer unread ("select/poll returned error"), which skips its retry of
     * a request on a reused connection the server dropped; IN|OUT lets it read the reset
     * or the EOF and retry on a fresh connection, as the curl tool does. */
    if (status < 0) flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & (UV_READABLE | ASSET__UV_DISCONNECT)) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    int running;
    CURLMcode mc = curl_multi_socket_action(http->multi, k->fd, flags, &running);
    /* libuv stopped the poll on the error; libcurl, if it keeps the socket, asks for
     * the same events and so calls socket_cb no more: poll again */
    if (status < 0 && !k->closing && k->events) uv_poll_start(&k->poll, k->events, poll_cb);
    check_done(http);
    if (mc != CURLM_OK) fail_all(http, mc);
}

static int socket_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
    (void)e;
    asset__http_t *http = userp;
    sock_t *k = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            curl_multi_assign(http->multi, fd, NULL);
            /* A connected socket is closed through closesocket_cb, after this: park it
             * until then. Others may be closed before this, unannounced (libcurl 7.88:
             * a connect that lost or failed, cf-socket.c; the threaded resolver's
             * socket pair, asyn-thread.c, which libcurl only reads): their fd may be
             * another socket's already. "Connected" is a socket libcurl first asked to
             * write (the connect) and then to read: never the resolver's. One that
             * connected at once, never asked for writing, is closed here: slower only */
            if (k->connected)
                k->parked = true;
            else
                sock_close(http, k);
        }
        return 0;
    }
    if (!k && (k = sock_parked(http, fd)) != NULL) { /* the kept connection's next use */
        k->parked = false;
        curl_multi_assign(http->multi, fd, k);
    } else if (!k) {
        /* from libcurl's allocator: libcurl 7.88 does not survive this callback failing
         * either (it may crash in a later curl_multi_socket_action) */
        k = c_calloc(1, sizeof *k);
        if (!k) {
            http->oom = true;
            return -1; /* libcurl fails the multi call: fail_all() */
        }
        if (uv_poll_init_socket(asset__io_loop(http->io), &k->poll, fd) != 0) {
            c_free(k);
            return -1;
        }
        k->fd = fd;
        k->http = http;
        k->poll.data = k;
        k->next = http->socks;
        if (http->socks) http->socks->prev = k;
        http->socks = k;
        curl_multi_assign(http->multi, fd, k);
    }
    int ev = ((what & CURL_POLL_IN) ? UV_READABLE | ASSET__UV_DISCONNECT : 0) |
             ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    if (what & CURL_POLL_OUT) k->wrote = true;
    if ((what & CURL_POLL_IN) && k->wrote && !k->connected) {
        k->connected = true;
        k->local_port = asset__socket_local_port(fd);
    }
    if (k->events != ev) { /* libuv's poll start removes and re-adds the fd: only on change */
        k->events = ev;
        uv_poll_start(&k->poll, ev, poll_cb);
    }
    return 0;
}

/* libcurl closes a socket of one of its connections (the socket callback has already
 * heard CURL_POLL_REMOVE for it, so its sock_t, if any, is parked): the sock_t goes
 * first, so that no poll outlives the fd. */
static int closesocket_cb(void *user, curl_socket_t fd) {
    asset__http_t *http = user;
    sock_t *k = sock_parked(http, fd);
    if (k) sock_close(http, k);
    return asset__socket_close(fd);
}

static void timeout_cb(uv_timer_t *t) {
    asset__http_t *http = t->data;
    int running;
    CURLMcode mc = curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(http);
    if (mc != CURLM_OK) fail_all(http, mc);
}

/* curl_multi_socket_action failed (out of memory, or our socket callback could not
 * allocate): libcurl's view of the transfers in flight is no longer to be trusted (a
 * socket it could not register, a timer it did not re-arm) and they would wait
 * forever. Fail every one of them; the multi handle works again once it is empty. */
static void fail_all(asset__http_t *http, CURLMcode mc) {
    bool oom = http->oom || mc == CURLM_OUT_OF_MEMORY;
    http->oom = false;
    while (http->xfers) {
        xfer_t *x = http->xfers;
        curl_multi_remove_handle(http->multi, x->easy);
        x->spoilt = true;
        asset_request_fail(x->req, oom ? ASSET_E_NO_MEMORY : ASSET_E_NETWORK,
                           "transfer aborted: %s", oom ? "out of memory" : curl_multi_strerror(mc));
        xfer_done(http, x, oom ? CURLE_OUT_OF_MEMORY : CURLE_SEND_ERROR);
    }
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
    (void)m;
    asset__http_t *http = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&http->timer);
    else /* 0 too: curl must not be re-entered from its own callback */
        uv_timer_start(&http->timer, timeout_cb, (uint64_t)timeout_ms, 0);
    return 0;
}

/* on_kick: abort transfers whose every handle went away. Every wake-up of the thread
 * kicks (each load posted, a timed load's timer), and a walk of every transfer for each
 * cost n x W looks for n loads made one at a time beside W waiting: only when an async
 * read was cancelled since the last walk (s->async_cancels, counted before the kick) */
static void http_kick(void *arg) {
    asset__http_t *http = arg;
    uint64_t cancels = atomic_load_explicit(&http->server->async_cancels, memory_order_acquire);
    if (cancels == http->cancels_seen) {
        pump(http);
        return;
    }
    http->cancels_seen = cancels;
    uint64_t looks = 0;
    for (xfer_t *x = http->xfers, *next; x; x = next) {
        next = x->next;
        looks++;
        if (!asset_request_cancelled(x->req)) continue;
        x->cancelled = true;
        curl_multi_remove_handle(http->multi, x->easy);
        xfer_done(http, x, CURLE_ABORTED_BY_CALLBACK);
    }
    atomic_fetch_add_explicit(&http->server->http_kick_looks, looks, memory_order_relaxed);
    pump(http);
}

static void timer_closed(uv_handle_t *h) { asset_free(h->data); }

static void http_stop(void *arg) {
    asset__http_t *http = arg;
    while (http->xfers) {
        xfer_t *x = http->xfers;
        x->cancelled = true;
        curl_multi_remove_handle(http->multi, x->easy);
        xfer_done(http, x, CURLE_ABORTED_BY_CALLBACK);
    }
    while (http->n_idle) curl_easy_cleanup(http->idle[--http->n_idle]);
    asset_free(http->idle);
    curl_multi_cleanup(http->multi); /* may close sockets through socket_cb */
    while (http->socks) sock_close(http, http->socks);
    http->server->http = NULL;
    http->timer.data = http; /* freed once the loop has closed the timer */
    uv_close((uv_handle_t *)&http->timer, timer_closed);
}

static asset__http_t *http_ensure(asset_server_t *s, asset__io_t *io) {
    if (s->http) return s->http;
    asset__http_t *http = asset__calloc(1, sizeof *http);
    if (!http) return NULL;
    http->server = s;
    http->io = io;
    http->multi = curl_multi_init();
    if (!http->multi || uv_timer_init(asset__io_loop(io), &http->timer) != 0) {
        if (http->multi) curl_multi_cleanup(http->multi);
        asset_free(http);
        return NULL;
    }
    http->timer.data = http;
    /* more than 65536 connections per host is no use, and the products below fit */
    unsigned conns = s->cfg.http_max_connections < 65536 ? s->cfg.http_max_connections : 65536;
    http->host_max = 2 * conns;
    http->max_active = asset__http_max_active(conns);
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    http->http2 = cv && (cv->features & CURL_VERSION_HTTP2);
#ifdef ASSET_SERVER_HAVE_ZLIB
    http->decodes = true;
#endif
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    /* no cap on connections in all: pump() admits transfers (at most max_active, and
     * one more per host with none), and a transfer admitted must not then wait inside
     * libcurl for a connection that stalled hosts hold */
    /* a fixed connection cache: by default libcurl sizes it at 4 x the easy handles in
     * the multi, which falls to a few between bursts (finished transfers leave the
     * multi), closing idle connections the next burst then has to open again */
    curl_multi_setopt(http->multi, CURLMOPT_MAXCONNECTS, 4 * (long)conns);
    curl_multi_setopt(http->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(http->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    asset__io_set_hooks(io, http_kick, http_stop, http);
    s->http = http;
    return http;
}

/* posted to the I/O thread */
static void xfer_start(void *arg) {
    xfer_t *x = arg;
    asset_server_t *s = x->server;
    uv_mutex_lock(&s->lock);
    asset__io_t *io = s->io;
    s->stats.http_requests++;
    uv_mutex_unlock(&s->lock);
    bool stopping = !io || asset__io_stopping(io);
    asset__http_t *http = stopping ? NULL : http_ensure(s, io);
    if (!http) {
        /* stopping: posted just before destroy, which cancelled every job first, so the
         * request ends CANCELLED (map_result); no "out of memory" said for it */
        if (!stopping)
            asset_request_fail(x->req, ASSET_E_NO_MEMORY, "cannot start the HTTP client");
        xfer_done(NULL, x, CURLE_OUT_OF_MEMORY);
        return;
    }
    xfer_file(http, x);
}

/* Files x under its host's waiting transfers and lets the pump start what may start. */
static void xfer_file(asset__http_t *http, xfer_t *x) {
    x->alloc_failures = asset__alloc_failures();
    host_t *h = host_get(http, asset_request_uri(x->req));
    if (!h) {
        asset_request_fail(x->req, ASSET_E_NO_MEMORY, "out of memory");
        xfer_done(NULL, x, CURLE_OUT_OF_MEMORY);
        return;
    }
    x->host = h;
    x->next = http->xfers;
    if (http->xfers) http->xfers->prev = x;
    http->xfers = x;
    x->wprev = h->wait_tail;
    if (h->wait_tail)
        h->wait_tail->wnext = x;
    else
        h->wait_head = x;
    h->wait_tail = x;
    pump(http);
}

/* ---- easy-handle callbacks (I/O thread) ---- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *user) {
    xfer_t *x = user;
    size_t n = size * nmemb;
    x->in_body = true;
    if (x->status < 200 || x->status > 299) { /* error bodies are not kept */
        x->error_bytes += n;
        if (x->error_bytes <= ERROR_BODY_MAX) return n;
        x->error_cut = true;
        return 0;
    }
    if (x->inf) {
        x->coded_bytes += n;
        if (x->coded_bytes > coded_max(x->req->max_size)) {
            x->coded_cut = true;
            return 0;
        }
        return inflater_write(x, data, n) ? n : 0;
    }
    return body_write(x, data, n) ? n : 0;
}

/* Whether line (n bytes, not terminated) is header `name` (nl bytes); its value, blanks
 * and CRLF trimmed, in *v and *vn. */
static bool header_is(const char *line, size_t n, const char *name, size_t nl, const char **v,
                      size_t *vn) {
    if (n <= nl || line[nl] != ':' || asset__strncasecmp(line, name, nl) != 0) return false;
    const char *p = line + nl + 1;
    const char *end = line + n;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    /* optional whitespace is spaces and tabs at either end (RFC 9110 5.6.3): a trailing
     * tab kept went back in If-None-Match, which then matched nothing (a review) */
    while (end > p && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *v = p;
    *vn = (size_t)(end - p);
    return true;
}
#define HEADER_IS(line, n, name, v, vn) header_is(line, n, name, sizeof name - 1, v, vn)

/* "<prefix><value>", the version string of a response (one allocation per header) */
static void versioned(char **slot, const char *prefix, size_t pn, const char *v, size_t vn) {
    char *d = asset_alloc(pn + vn + 1);
    if (d) {
        memcpy(d, prefix, pn);
        memcpy(d + pn, v, vn);
        d[pn + vn] = 0;
    }
    asset_free(*slot);
    *slot = d;
}

/* A validator goes back to the server in the next request's If-None-Match or
 * If-Modified-Since: one with a control character (a bare CR) would let a server write
 * headers into our requests. Such a one is not kept (the answer is unversioned). */
static bool printable(const char *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)v[i] < ' ' && v[i] != '\t') || v[i] == 0x7f) return false;
    return true;
}

/* A validator field of the current response (ETag, Last-Modified; v, vn bytes, trimmed):
 * kept in *slot as a version ("<prefix><value>") unless empty or unprintable. The field
 * is single (RFC 9110 8.8): a second one that differs from the kept one (a proxy's beside
 * the origin's) leaves the answer without it (*differ), as neither says which version
 * the bytes are; the last was kept, and a server ignoring the condition whose answers
 * all carried the proxy's "cdn" last had its new bytes taken as the cached ones. */
static void validator_field(char **slot, bool *differ, const char *prefix, size_t pn, const char *v,
                            size_t vn) {
    if (*differ) return;
    if (*slot) {
        if (strlen(*slot + pn) != vn || memcmp(*slot + pn, v, vn)) {
            asset_free(*slot);
            *slot = NULL;
            *differ = true;
        }
        return;
    }
    if (vn && printable(v, vn)) versioned(slot, prefix, pn, v, vn);
}

static bool coding_is(const char *t, size_t tn, const char *name) {
    return tn == strlen(name) && !asset__strncasecmp(t, name, tn);
}

/* The next item of the comma-separated header value [*v, end), trimmed of spaces and
 * tabs (*n bytes, maybe 0), and *v past it; false once none is left. */
static bool list_item(const char **v, const char *end, const char **item, size_t *n) {
    if (*v >= end) return false;
    const char *comma = memchr(*v, ',', (size_t)(end - *v));
    const char *b = *v, *e = comma ? comma : end;
    while (b < e && (*b == ' ' || *b == '\t')) b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t')) e--;
    *item = b;
    *n = (size_t)(e - b);
    *v = comma ? comma + 1 : end;
    return true;
}

/* Adds the codings of a Content-Encoding value ("gzip", "deflate, br") to x->coding;
 * false for one not decoded here (compress, br, zstd: a coding this build does not
 * support) or a second one (layered codings are not decoded). */
static bool codings_add(xfer_t *x, const char *v, size_t vn) {
    const char *end = v + vn, *t;
    size_t tn;
    while (list_item(&v, end, &t, &tn)) {
        uint8_t c = !tn || coding_is(t, tn, "identity") || coding_is(t, tn, "none") ? CODING_NONE
                    : coding_is(t, tn, "gzip") || coding_is(t, tn, "x-gzip")        ? CODING_GZIP
                    : coding_is(t, tn, "deflate")                                   ? CODING_DEFLATE
                                                                                    : UINT8_MAX;
        if (c == UINT8_MAX || (c != CODING_NONE && x->coding != CODING_NONE)) return false;
        if (c != CODING_NONE) x->coding = c;
    }
    return true;
}

/* Whether a Transfer-Encoding value names only chunked (and identity, RFC 2616's);
 * the chunked ones it names are added to *chunks. */
static bool transfer_codings_plain(const char *v, size_t vn, unsigned *chunks) {
    const char *end = v + vn, *t;
    size_t tn;
    bool plain = true;
    while (list_item(&v, end, &t, &tn)) {
        if (coding_is(t, tn, "chunked"))
            (*chunks)++;
        else if (tn && !coding_is(t, tn, "identity"))
            plain = false;
    }
    return plain;
}

/* ---- decoding a coded body (zlib) ---- */

/* Whether x's body has been written; false: write_cb stops the transfer. */
static bool body_write(xfer_t *x, const char *data, size_t n) {
    asset_status_t st = asset_request_write(x->req, data, n);
    if (st == ASSET_E_TOO_LARGE) x->too_large = true;
    if (st == ASSET_E_CANCELLED) x->cancelled = true;
    if (st == ASSET_E_NO_MEMORY) x->oom = true;
    return st == ASSET_OK;
}

#ifdef ASSET_SERVER_HAVE_ZLIB
struct inflater {
    z_stream z;
    bool ended;           /* the coded stream's end came (gzip: its last member's, CRC and size
                             checked; a next one resets it) */
    bool raw_tried;       /* "deflate" without its zlib header (raw), as libcurl takes it */
    Bytef lead;           /* the body's first byte: a raw stream starts again from it when it came
                             in a piece of its own (zlib's header check needs two) */
    uint8_t trailer_left; /* raw: bytes after its end still taken unread, up to 4 as libcurl
                             did (a zlib stream stripped of its header only: its Adler-32) */
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
    (void)opaque;
    return asset__calloc(items, size);
}
static void z_free(voidpf opaque, voidpf p) {
    (void)opaque;
    asset_free(p);
}

/* The headers of a coded 2xx ended: its decoder. False: no memory. */
static bool inflater_new(xfer_t *x) {
    struct inflater *d = asset__calloc(1, sizeof *d);
    if (!d) return false;
    d->z.zalloc = z_alloc;
    d->z.zfree = z_free;
    /* gzip: its header (16); deflate: a zlib stream (RFC 9110 8.4.1.2) */
    if (inflateInit2(&d->z, x->coding == CODING_GZIP ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK) {
        asset_free(d);
        return false;
    }
    x->inf = d;
    return true;
}

static void inflater_free(xfer_t *x) {
    if (!x->inf) return;
    inflateEnd(&x->inf->z);
    asset_free(x->inf);
    x->inf = NULL;
}

/* Whether the body is complete: its coded stream ended, or there was none (no bytes). */
static bool inflater_done(const xfer_t *x) { return x->inf->ended || !x->inf->z.total_in; }

/* A piece of the coded body, decoded into the request. False: stop the transfer (a
 * corrupt stream says why in x->coding_error; else the request's write refused). */
static bool inflater_write(xfer_t *x, const char *data, size_t n) {
    struct inflater *d = x->inf;
    z_stream *z = &d->z;
    uLong before = z->total_in; /* of the stream, in earlier pieces */
    if (!before && n) d->lead = (Bytef)data[0];
    unsigned char out[16384];
    z->next_in = (Bytef *)(uintptr_t)data; /* zlib does not write it */
    z->avail_in = (uInt)n;                 /* libcurl's pieces are CURL_MAX_WRITE_SIZE */
    for (bool full = false; z->avail_in || full;) {
        if (d->ended && d->trailer_left) {
            uInt k = z->avail_in < d->trailer_left ? z->avail_in : d->trailer_left;
            d->trailer_left = (uint8_t)(d->trailer_left - k);
            z->next_in += k;
            z->avail_in -= k;
            if (!z->avail_in) break;
        }
        if (d->ended) { /* bytes after the stream's end: gzip's next member (RFC 1952 2.2:
                         * a series of them, as gunzip decodes; the reset's inflate below
                         * takes some of them, so total_in says the body went on) */
            if (x->coding != CODING_GZIP || inflateReset(z) != Z_OK) {
                x->coding_error = "data after the end of the coded stream";
                return false;
            }
            d->ended = false;
        }
        z->next_out = out;
        z->avail_out = sizeof out;
        int zr = inflate(z, Z_NO_FLUSH);
        if (zr == Z_DATA_ERROR && x->coding == CODING_DEFLATE && before <= 1 && !z->total_out &&
            !d->raw_tried && inflateReset2(z, -MAX_WBITS) == Z_OK) {
            /* no zlib header: a raw deflate stream, from its start: this piece, after the
             * first byte when that came alone (a chunk of its own), which alone decodes to
             * nothing */
            d->raw_tried = true;
            d->trailer_left = 4;
            z->next_in = &d->lead;
            z->avail_in = (uInt)before;
            z->next_out = out;
            z->avail_out = sizeof out;
            if (before && (zr = inflate(z, Z_NO_FLUSH)) != Z_OK) {
                x->coding_error = z->msg ? z->msg : "undecodable";
                return false;
            }
            z->next_in = (Bytef *)(uintptr_t)data;
            z->avail_in = (uInt)n;
            continue;
        }
        if (zr == Z_MEM_ERROR) {
            x->oom = true;
            return false;
        }
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            x->coding_error = z->msg ? z->msg : "undecodable";
            return false;
        }
        size_t got = sizeof out - z->avail_out;
        if (got && !body_write(x, (const char *)out, got)) return false;
        if (zr == Z_STREAM_END) d->ended = true;
        full = !z->avail_out && !d->ended;
        if (zr == Z_BUF_ERROR) break; /* no progress possible: it wants more input */
    }
    return true;
}
#else /* no zlib: a coded 2xx body is refused (headers_end), never decoded */
struct inflater {
    int unused;
};
static bool inflater_new(xfer_t *x) {
    (void)x;
    return false;
}
static void inflater_free(xfer_t *x) { (void)x; }
static bool inflater_done(const xfer_t *x) {
    (void)x;
    return true;
}
static bool inflater_write(xfer_t *x, const char *data, size_t n) {
    (void)x;
    (void)data;
    (void)n;
    return false;
}
#endif

/* What is known of the current response goes: a new one begins (its status line, or
 * a request sent again: a redirect followed, a dropped connection retried). */
static void response_reset(xfer_t *x) {
    x->reason[0] = 0;
    asset_free(x->etag);
    asset_free(x->last_modified);
    x->etag = x->last_modified = NULL;
    x->error_bytes = 0;
    x->location = LOCATION_NONE;
    x->headers_done = x->chunked = x->coded = x->has_length = x->unknown_coding = false;
    x->te_coded = x->lengths_differ = x->etag_differ = x->lm_differ = false;
    x->location_304 = false;
    x->chunks = 0;
    x->location_seen = false;
    x->coding = CODING_NONE;
    x->coded_bytes = 0;
    inflater_free(x);
}

/* The request about to go out (prereq_cb, on the connection of local port local_port)
 * reuses a kept connection on which bytes came while it was idle: the rest of the body
 * before, longer than its Content-Length said, come after that transfer had ended
 * (libcurl 7.88 drops such excess only when it comes in the same read as the body's
 * end). An idle HTTP/1.1 connection gets nothing unasked, and libcurl, which takes a
 * readable connection for a live one, read those bytes as the start of the next answer:
 * an unrelated load failed, "Received HTTP/0.9". The connection is shut down instead:
 * the request's send fails, and libcurl sends it again on a new connection (its retry
 * of a dropped reused connection). Not over TLS (https), where an idle connection gets
 * records of its own (a TLS 1.3 session ticket, an HTTP/2 PING). One peek per request on
 * a kept connection. */
static void unsolicited_bytes_drop(xfer_t *x, int local_port) {
    char *scheme = NULL;
    asset__http_t *http = x->server->http;
    if (!http || curl_easy_getinfo(x->easy, CURLINFO_SCHEME, &scheme) != CURLE_OK || !scheme ||
        asset__strncasecmp(scheme, "http", 5) != 0)
        return;
    for (sock_t *k = http->socks; k; k = k->next)
        if (k->parked && k->local_port == local_port && asset__socket_has_bytes(k->fd)) {
            asset__log(x->server, ASSET_LOG_DEBUG,
                       "%s: http: bytes came unasked on the kept connection: a new one",
                       asset_request_uri(x->req));
            asset__socket_shutdown(k->fd);
        }
}

/* A request is about to go out (each hop of a redirect too): the last hop's answer
 * (and a socket that could not be opened before it) says nothing of this one's (a 302 kept as the
 * status of a hop that failed before its status line came made that failure a refused redirect). */
static int prereq_cb(void *user, char *ip, char *local_ip, int port, int local_port) {
    xfer_t *x = user;
    (void)ip;
    (void)local_ip;
    (void)port;
    x->status = 0;
    x->in_head = false;
    x->header_bytes = 0;
    /* a socket that could not be opened before (another address of the host: IPv6 where
     * the OS has none) is not why what follows may fail: "cannot open a socket" was
     * said of a body cut short on the address that connected */
    x->sock_errno = 0;
    response_reset(x);
    unsolicited_bytes_drop(x, local_port);
    return CURL_PREREQFUNC_OK;
}

/* libcurl reads a followed redirect's body and drops it itself, unseen by write_cb and
 * its cap: an endless one kept the load for ever (data kept coming, so no stall).
 * On for every transfer: any answer may redirect (CURLOPT_FOLLOWLOCATION), and it cannot
 * be turned on once one does (curl_easy_setopt is not for libcurl's callbacks, and the
 * hops of a redirect have no hook between them that is not one). libcurl 7.88 calls it
 * at each Curl_pgrsUpdate (about 10 times for a 10 KiB load): a compare that fails. */
static int progress_cb(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    xfer_t *x = user;
    (void)dltotal;
    (void)ultotal;
    (void)ulnow;
    if (x->status / 100 == 3 && !x->in_body && dlnow > (curl_off_t)ERROR_BODY_MAX) {
        x->redirect_cut = true;
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
    }
    return 0;
}

/* The headers ended: a 2xx's Content-Length sets the size, unless a Transfer-Encoding
 * says it is no size (RFC 9112 6.3: a 5-byte chunked body announced as 1 TB failed as
 * too large) or a Content-Encoding that it is the coded one. Returns false to abort. */
static bool headers_end(xfer_t *x, bool decodes) {
    x->headers_done = true;
    /* a 304 says the cached bytes are current (RFC 9110 15.4.5), whatever Location it
     * carries; libcurl follows the Location of any 3xx, and a revalidation loaded the
     * bytes of that other resource as the asset (or failed: a file:// one, FORBIDDEN).
     * Stopped here, the transfer is the 304 (xfer_done), as fetch() has it */
    if (x->location_304) return false;
    /* which one says where the body ends? (RFC 9112 6.3: an invalid Content-Length, an
     * unrecoverable error; libcurl took the last) */
    if (x->lengths_differ && !x->chunked && x->status >= 200) {
        x->length_cut = true;
        return false;
    }
    /* chunked twice (RFC 9112 7: a sender must not): libcurl decodes one layer and
     * passes the other on, so the asset was its chunks */
    if (x->chunks > 1 && x->status >= 200 && x->status <= 299) {
        x->chunked_twice = true;
        return false;
    }
    if ((x->unknown_coding || x->te_coded || (x->coded && !decodes)) && x->status >= 200 &&
        x->status <= 299) {
        x->undecodable = true;
        return false;
    }
    if (x->status < 200 || x->status > 299) return true;
    if (x->coding != CODING_NONE && !inflater_new(x)) { /* chunked or not, sized or not */
        x->oom = true;
        return false;
    }
    if (!x->has_length || x->chunked) return true;
    unsigned long long len = x->length;
    if (!x->coded && len > x->req->max_size) {
        x->too_large = true;
        return false; /* abort before the body */
    }
    if (x->coded && len > coded_max(x->req->max_size)) {
        x->coded_cut = true;
        return false; /* abort before the body */
    }
    if (x->coded) return true; /* decoded, the body has another size */
    asset_request_set_total(x->req, len);
    /* the body's buffer made once, at the size announced, instead of doubled from the
     * first piece (a 256 KiB body took 512 KiB, and four copies); only up to
     * ASSET__HTTP_PRESIZE_MAX (http_validator.h, shared with the web build) */
    if (!x->req->size && len <= ASSET__HTTP_PRESIZE_MAX &&
        asset__request_reserve(x->req, (size_t)len) != ASSET_OK) {
        x->oom = true;
        return false;
    }
    return true;
}

/* A redirect to another host ("<scheme>://<authority>", sn and an bytes): from now on x
 * counts against that host, not its first one, whose slot it held while it waited for
 * a connection to a busy host (holding that host's next loads back). The pump, after
 * this libcurl call, lets the first host's next load in. No memory: it stays put. */
static void xfer_move(xfer_t *x, const char *scheme, size_t sn, const char *auth, size_t an) {
    asset__http_t *http = x->server->http;
    char *key = asset_alloc(sn + 3 + an + 1);
    if (!key) return;
    for (size_t i = 0; i < sn; i++) /* a scheme is case-insensitive; the URIs' are lower */
        key[i] = (char)(scheme[i] >= 'A' && scheme[i] <= 'Z' ? scheme[i] - 'A' + 'a' : scheme[i]);
    memcpy(key + sn, "://", 3);
    memcpy(key + sn + 3, auth, an);
    key[sn + 3 + an] = 0;
    host_t *h = host_get(http, key);
    asset_free(key);
    if (!h || h == x->host) return;
    host_t *from = x->host;
    from->active--;
    if (!from->active && !from->wait_head) host_free(http, from);
    h->active++; /* past its max, maybe: its next waits the longer, as libcurl would */
    x->host = h;
}

/* A Content-Length value (vn bytes, trimmed): its number, ULLONG_MAX when longer than any. */
static unsigned long long length_value(const char *v, size_t vn) {
    char num[32]; /* strtoull wants a terminated string; a longer value is nonsense */
    /* but for its leading zeros (1*DIGIT, RFC 9110 8.6: "000...0005" is 5, as libcurl
     * reads it; it failed a 5-byte body as too large) */
    while (vn > 1 && v[0] == '0') {
        v++;
        vn--;
    }
    if (vn >= sizeof num) return ULLONG_MAX;
    memcpy(num, v, vn);
    num[vn] = 0;
    return strtoull(num, NULL, 10);
}

static size_t header_cb(char *line, size_t size, size_t nmemb, void *user) {
    xfer_t *x = user;
    size_t n = size * nmemb;
    x->header_bytes += n;
    if (x->header_bytes > HEADERS_MAX) {
        x->headers_cut = true;
        return 0;
    }
    /* a chunked body's trailers: the response's headers are settled (a trailer that
     * looked like a status line would even make an error answer look like a 200).
     * Only a response with a body gets here: a redirect's libcurl skips, and libcurl
     * retries a request only when nothing of its answer came. An empty chunked body
     * never reaches write_cb: a final answer's headers that ended end its headers (a
     * 1xx's do not; a redirect's next hop starts again in prereq_cb) */
    if (x->in_body || (x->headers_done && x->status >= 200)) return n;
    if ((n == 2 && line[0] == '\r' && line[1] == '\n') || (n == 1 && line[0] == '\n')) {
        x->in_head = false;
        return headers_end(x, x->decodes) ? n : 0; /* the blank line that ends them */
    }
    /* a new response (redirects, 100) begins with its status line; inside the headers
     * a line "HTTP/1.1 200: OK" is a header (libcurl passes it on), not a status: a 404
     * holding one loaded its error page as a 200 */
    if (!x->in_head && n > 5 && !strncmp(line, "HTTP/", 5)) {
        x->in_head = true;
        const char *sp = memchr(line, ' ', n);
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0; /* checked by status_malformed */
        x->reason[0] = 0;
        const char *rs = sp ? memchr(sp + 1, ' ', (size_t)(line + n - sp - 1)) : NULL;
        if (rs) {
            size_t rl = (size_t)(line + n - rs - 1), end = 0;
            while (end < rl && rs[1 + end] != '\r' && rs[1 + end] != '\n') end++; /* the EOL */
            asset__http_reason(x->reason, rs + 1, end);
        }
        char reason[sizeof x->reason];
        memcpy(reason, x->reason, sizeof reason);
        response_reset(x);
        memcpy(x->reason, reason, sizeof reason);
        return n;
    }
    const char *v;
    size_t vn;
    if (HEADER_IS(line, n, "ETag", &v, &vn)) {
        /* an empty one (blanks only) is no validator: kept, it went back as a blank
         * If-None-Match (dropped by libcurl), so every revalidation was a 200 and a new
         * parse where the Last-Modified beside it would have had a 304 */
        validator_field(&x->etag, &x->etag_differ, "etag:", 5, v, vn);
    } else if (x->status == 304 && HEADER_IS(line, n, "Location", &v, &vn)) {
        if (vn) x->location_304 = true; /* not followed, nor counted against its host */
    } else if (x->status / 100 == 3 && !x->location_seen &&
               HEADER_IS(line, n, "Location", &v, &vn) && vn) {
        /* its scheme, to tell a refused protocol from a malformed URL (map_result); the
         * first one, which libcurl follows (not an empty one, which libcurl skips: the
         * 3xx is the answer, and was taken for a redirect whose next hop failed) */
        x->location_seen = true;
        size_t sl = strcspn(v, ":/?#");
        bool scheme = sl < vn && v[sl] == ':' && sl > 0;
        x->location = !scheme ? LOCATION_NONE
                      : (sl == 4 && !asset__strncasecmp(v, "http", 4)) ||
                              (sl == 5 && !asset__strncasecmp(v, "https", 5))
                          ? LOCATION_HTTP
                          : LOCATION_OTHER;
        /* another host's: "http://host..." or "//host..." (a relative one stays) */
        const char *sch = v, *auth = NULL;
        char *answered = NULL;
        size_t schn = sl;
        if (x->location == LOCATION_HTTP && vn > sl + 3 && !strncmp(v + sl, "://", 3)) {
            auth = v + sl + 3;
        } else if (!scheme && vn > 2 && v[0] == '/' && v[1] == '/' &&
                   curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &answered) == CURLE_OK &&
                   answered && strstr(answered, "://")) { /* the scheme of the URL that answered */
            auth = v + 2;
            sch = answered;
            schn = (size_t)(strstr(sch, "://") - sch);
        }
        if (auth) {
            size_t an = 0, left = vn - (size_t)(auth - v);
            while (an < left && !strchr("/?#", auth[an])) an++;
            xfer_move(x, sch, schn, auth, an);
        }
    } else if (HEADER_IS(line, n, "Last-Modified", &v, &vn)) {
        validator_field(&x->last_modified, &x->lm_differ, "lm:", 3, v, vn);
    } else if (HEADER_IS(line, n, "Content-Length", &v, &vn)) {
        /* a list ("5, 5": a field an upstream duplicated) is one length if its values
         * are one (RFC 9110 8.6), else invalid as two fields that differ */
        const char *end = v + vn, *t;
        size_t tn;
        unsigned long long len = list_item(&v, end, &t, &tn) ? length_value(t, tn) : 0;
        while (list_item(&v, end, &t, &tn))
            if (length_value(t, tn) != len) x->lengths_differ = true;
        if (x->has_length && x->length != len) x->lengths_differ = true;
        x->has_length = true; /* acted on at the headers' end (headers_end) */
        x->length = len;
    } else if (HEADER_IS(line, n, "Transfer-Encoding", &v, &vn)) {
        x->chunked = true;
        /* libcurl takes chunked and passes any other coding on undecoded (no
         * CURLOPT_TRANSFER_ENCODING, no TE header asking for one): gzip bytes loaded */
        if (!transfer_codings_plain(v, vn, &x->chunks)) x->te_coded = true;
    } else if (HEADER_IS(line, n, "Content-Encoding", &v, &vn)) {
        if (!(vn == 8 && !asset__strncasecmp(v, "identity", 8))) x->coded = true;
        if (!codings_add(x, v, vn)) x->unknown_coding = true;
    }
    return n;
}

int (*asset__http_socket_hook)(int family) = NULL;

/* libcurl's own socket(), so a failure keeps its errno for the message (until a request
 * goes out: prereq_cb) */
static curl_socket_t opensocket_cb(void *user, curlsocktype purpose, struct curl_sockaddr *a) {
    xfer_t *x = user;
    (void)purpose;
    int err = asset__http_socket_hook ? asset__http_socket_hook(a->family) : 0;
    curl_socket_t fd =
        err ? CURL_SOCKET_BAD : asset__socket_open(a->family, a->socktype, a->protocol, &err);
    if (fd == CURL_SOCKET_BAD) x->sock_errno = err;
    return fd;
}

/* ---- the source ---- */

static asset_status_t http_read(void *ctx, asset_request_t *r) {
    asset_server_t *s = ctx;
    uv_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK)
        return asset_request_fail(r, ASSET_E_NETWORK, "curl_global_init: %s",
                                  curl_easy_strerror(g_curl_init_rc));
    xfer_t *x = asset__calloc(1, sizeof *x);
    if (!x) return asset_request_fail(r, ASSET_E_NO_MEMORY, "out of memory");
    x->server = s;
    x->req = r;
    /* the easy handle is the I/O thread's (easy_bind): only the request's header here */
    const char *cond_value = NULL;
    const char *cond_name = asset__http_condition(asset_request_cached_version(r), &cond_value);
    char *cond = cond_name ? asset__asprintf("%s: %s", cond_name, cond_value) : NULL;
    if (cond) {
        struct curl_slist *l = curl_slist_append(NULL, cond);
        asset_free(cond);
        if (!l) {
            xfer_free(x);
            return asset_request_fail(r, ASSET_E_NO_MEMORY, "out of memory");
        }
        x->headers = l;
    }

    char why[160];
    asset_status_t st = asset__io_post_for(s, xfer_start, x, why, sizeof why);
    if (st != ASSET_PENDING) {
        xfer_free(x);
        return asset_request_fail(r, st, "%s", why);
    }
    return ASSET_PENDING;
}

static asset_status_t http_list(void *ctx, const char *uri, asset_list_t *l) {
    (void)ctx;
    (void)uri;
    return asset_list_fail(l, ASSET_E_UNSUPPORTED, "HTTP has no directory listing; use a manifest");
}

const asset_source_t asset__http_source = {
    ASSET_SOURCE_ABI, "http", ASSET_SOURCE_ASYNC, http_read, http_list, NULL,
};
const asset_source_t asset__https_source = {
    ASSET_SOURCE_ABI, "https", ASSET_SOURCE_ASYNC, http_read, http_list, NULL,
};
