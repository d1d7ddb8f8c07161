/* web/http_fetch.c - http:// and https:// of the web build, on the JS fetch() API: the
 * same ASYNC source contract, statuses and messages as sources/http.c (libcurl) on
 * desktop. A read (worker, or the flush thread in the single-threaded mode) posts the
 * transfer to the I/O thread (web/io_web.c), which starts fetch() there; promise
 * callbacks stream the body into the request and finish it.
 *
 *   - revalidation: the cached version "etag:<ETag>" / "lm:<Last-Modified>" becomes
 *     If-None-Match / If-Modified-Since (fetch with cache: "no-store", so the browser's
 *     own cache neither answers nor hides the 304); a 304 finishes NOT_MODIFIED. As on
 *     desktop: an answer without a validator, or reached through a redirect (fetch
 *     sends the condition on to the target, another resource), is versioned by a hash
 *     of its bytes; a 304 that came through a redirect, or that names an ETag other
 *     than the cached one, is asked again without the condition, and a 304 nothing
 *     asked for is an HTTP error.
 *   - statuses: a non-2xx, or a 206 (a part; nothing asks for a range), is an HTTP error.
 *   - progress: Content-Length is the total, the body stream's chunks the received. It is
 *     a length when it is digits (asset__http_length_value), else none.
 *   - max_asset_size: a larger Content-Length is refused before the body; a body that
 *     grows past it while streaming is aborted at that chunk. A coded answer's
 *     Content-Length (Content-Encoding, where fetch lets it be seen: same origin, or
 *     exposed by CORS) is the coded size: neither a total nor refused. A coding fetch()
 *     does not decode (compress) comes through coded: ASSET_E_UNSUPPORTED, as natively.
 *   - credentials in the URL ("user:password@"): fetch() refuses such a URL; they are
 *     sent as Basic authentication, to the URL without them, as libcurl does natively.
 *   - cancel: an AbortController per transfer; the I/O thread's kick notices cancelled
 *     requests (as on desktop) and aborts them.
 *   - timeouts: no response within http_connect_timeout_ms, or no data for
 *     http_low_speed_ms (from the request on, the wait for the response too):
 *     ASSET_E_TIMEOUT, as libcurl's guards on desktop. A guard that fires judges once
 *     the answers already in were read (expire): a parse that held the thread past it
 *     is no stall of the network.
 *
 * Threads: everything here runs on the I/O thread, except http_read. Transfers are
 * known to JS only by an id, so a late promise callback for a finished transfer finds
 * nothing and stops. Only the fetches running are looked up by id (g_xfers); the ones
 * waiting for a connection are only in their host's queue, and the kick walks the
 * transfers only when a read was cancelled since its last walk (as sources/http.c):
 * every JS callback (a head, each chunk, an end) and every turn of the I/O thread
 * walked them all, about 5.5 x W x W looks for W loads of one host at one connection. */
#include "../http_validator.h"
#include "../internal.h"

#include <emscripten/emscripten.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef struct xfer {
    struct xfer *prev, *next; /* in g_xfers (this thread's) while fetching, not waiting */
    uint32_t id;
    asset_server_t *server;
    asset_request_t *req;
    char *url;
    char *cond_name, *cond_value; /* the conditional header, or NULL */
    int status;
    bool redirected; /* the answer came through a redirect (Response.redirected) */
    char *reason, *etag, *last_modified;
    char *effective; /* the URL redirected to (Response.url), when redirected */
    double length;   /* Content-Length (asset__http_length_value), -1: none or not a length */
    uint8_t *buf;    /* staging area JS copies strings and chunks into */
    size_t buf_cap;
    struct host *host;          /* its URI's host (NULL: out of memory, not limited) */
    struct xfer *wprev, *wnext; /* in host's queue while waiting */
    bool waiting;               /* queued behind http_max_connections fetches of its host */
} xfer_t;

/* A server's fetches of one host ("host:port", js_host_key): at most http_max_connections at
 * once, and asset__http_max_active() of all hosts (but one for a host with none), as
 * natively; the others wait in order and start round-robin over the hosts
 * (hosts_start). Every fetch started at once: under node each is a connection of its
 * own, and a server that takes fewer at once left the rest without an answer. */
typedef struct host {
    struct host *next; /* in http->hosts */
    unsigned active;
    xfer_t *wait_head, *wait_tail;
    char key[];
} host_t;

struct asset__http {
    asset_server_t *server;
    struct asset__http *next_on_thread; /* in g_https */
    host_t *hosts;
    unsigned browser_cap;  /* a browser's fetches of a host at once (js_browser_cap), 0: none */
    bool stopping;         /* on_stop runs: no waiting fetch starts */
    uint64_t cancels_seen; /* server->async_cancels at on_kick's last walk */
    unsigned active;       /* fetches running, of every host (asset__http_max_active) */
    unsigned nhosts;       /* in hosts */
};

/* the I/O thread's running fetches (one I/O thread per server; the single-threaded
 * build's servers share the one thread) */
static _Thread_local xfer_t *g_xfers;
static _Thread_local uint32_t g_next_id;
/* the HTTP clients of this thread's servers (the single-threaded build's all share it): the
 * browser's 6 fetches of a host are the thread's, not each server's (js_browser_cap) */
static _Thread_local asset__http_t *g_https;

/* clang-format off */
EM_JS(void, js_fetch_start, (uint32_t id, const char *url, const char *cond_name,
                             const char *cond_value, double connect_ms, double stall_ms), {
    var A = Module.assetFetch || (Module.assetFetch = { live: new Map() });
    var ac = new AbortController();
    /* timer: the connect timeout's; gen: each slot's arming, so that a guard's late
     * judgement (expire) sees whether the fetch moved since it fired */
    var st = { ac: ac, timer: 0, stall: 0, gen: { timer: 0, stall: 0 }, dead: false };
    A.live.set(id, st);
    var headers = {};
    /* a header's value is bytes (a ByteString: a code unit a byte, as fetch() sends it):
     * the validator's, as its answer gave them (field), not read as UTF-8 */
    var latin1 = function(p) {
        var s = "";
        for (; HEAPU8[p]; p++) s += String.fromCharCode(HEAPU8[p]);
        return s;
    };
    if (cond_name) headers[UTF8ToString(cond_name)] = latin1(cond_value);
    var u = UTF8ToString(url);
    /* credentials in the URL: fetch() refuses such a URL, libcurl sends them as Basic
     * authentication: so do we, their percent-decoded bytes, the URL without them */
    var pu = null;
    try { pu = new URL(u); } catch (e) {}
    if (pu && (pu.username || pu.password)) {
        var bytes = function(s) {
            return s.replace(/%([0-9a-fA-F]{2})/g, function(m, h) {
                return String.fromCharCode(parseInt(h, 16));
            });
        };
        headers["Authorization"] = "Basic " + btoa(bytes(pu.username) + ":" + bytes(pu.password));
        pu.username = "";
        pu.password = "";
        u = pu.href;
    }
    function drop() {
        st.dead = true;
        clearTimeout(st.timer);
        clearTimeout(st.stall);
        A.live.delete(id);
        try { ac.abort(); } catch (e) {}
    }
    /* stages s (a string, as UTF-8, or bytes) terminated: its length, -1 when it is not */
    function put(s) {
        var b = typeof s === "string" ? new TextEncoder().encode(s) : s;
        var p = _asset__fetch_buf(id, b.length + 1);
        if (!p) return -1;
        HEAPU8.set(b, p);
        HEAPU8[p + b.length] = 0;
        return b.length;
    }
    /* the reason phrase's bytes (asset__http_reason reads them, as the desktop's): a
     * browser's statusText is one code unit a byte (a ByteString: Latin-1; Chromium 156);
     * node's fetch() (undici) decodes them as UTF-8 (a U+FFFD for each maximal subpart
     * that is none), so there it is encoded back (A.utf8_reasons: a test's choice) */
    function reason_bytes(s) {
        var utf8 = A.utf8_reasons !== undefined ? A.utf8_reasons
                   : typeof process === "object" && typeof process.versions === "object" &&
                     typeof process.versions.node === "string";
        return utf8 ? new TextEncoder().encode(s) : field(s);
    }
    /* a header's value (fetch() gives one code unit a byte, a browser's and node's) as
     * those bytes, as libcurl hands them over on desktop: TextEncoder made two bytes of
     * each past ASCII, so that an ETag of 2,100 such bytes was 4,202, past the 4 KiB
     * sent back (http_validator.h), and never sent back */
    function field(s) {
        var b = new Uint8Array(s.length);
        for (var i = 0; i < s.length; i++) {
            var c = s.charCodeAt(i);
            if (c > 255) return new TextEncoder().encode(s);
            b[i] = c;
        }
        return b;
    }
    function end(kind, msg) {
        if (st.dead) return;
        drop();
        put(msg || "");
        _asset__fetch_on_end(id, kind);
    }
    function disarm(slot) {
        clearTimeout(st[slot]);
        st[slot] = 0;
        st.gen[slot]++;
    }
    /* A guard that fires judges after the answers already in are delivered: after a parse
     * that held the thread past its time (the single-threaded build), the timer ran
     * before them (node runs expired timers before I/O) and failed a fetch whose bytes
     * had come while the page stalled. setImmediate runs after node's poll for I/O;
     * elsewhere (a page) setTimeout(0), after the tasks queued before it where the
     * browser runs them in order (headless Chromium 156 ran the answer before even the
     * expired timer: docs/web.md). */
    function expire(slot, kind) {
        var gen = st.gen[slot];
        var later = typeof setImmediate === "function" ? setImmediate : function(f) {
            setTimeout(f, 0);
        };
        later(function() { if (!st.dead && st.gen[slot] === gen) end(kind, ""); });
    }
    function arm(slot, ms, kind) { /* setTimeout fires a delay past 2^31 - 1 ms at once */
        disarm(slot);
        if (ms > 0x7fffffff)
            st[slot] = setTimeout(function() { arm(slot, ms - 0x7fffffff, kind); }, 0x7fffffff);
        else if (ms > 0)
            st[slot] = setTimeout(function() { expire(slot, kind); }, ms);
    }
    arm("timer", connect_ms, 2);
    /* the low-speed guard runs from the request on, as libcurl's: a server that takes the
     * connection and never answers moves no data (it was armed at the response: such a
     * server held the load for http_connect_timeout_ms, for ever with UINT_MAX) */
    arm("stall", stall_ms, 3);
    fetch(u, { signal: ac.signal, headers: headers, cache: "no-store",
                               redirect: "follow" }).then(function(resp) {
        if (st.dead) return;
        disarm("timer"); /* answered */
        arm("stall", stall_ms, 3);
        _asset__fetch_on_header(id, 0, put(reason_bytes(resp.statusText || "")));
        var et = resp.headers.get("ETag");
        /* an empty validator (fetch trims blanks) is none: Last-Modified, or the hash */
        if (et) _asset__fetch_on_header(id, 1, put(field(et)));
        var lm = resp.headers.get("Last-Modified");
        if (lm) _asset__fetch_on_header(id, 2, put(field(lm)));
        if (resp.redirected) _asset__fetch_on_header(id, 3, put(resp.url));
        /* Content-Length: read in C (asset__http_length_value), as 1*DIGIT; JS Number()
         * took "" for 0, "1e3" for 1000, "0x10" for 16 */
        var cl = resp.headers.get("Content-Length");
        if (cl !== null) _asset__fetch_on_header(id, 4, put(field(cl)));
        /* the codings fetch() decodes (zstd: browsers that ask for it); another comes
         * through still coded */
        var ce = (resp.headers.get("Content-Encoding") || "").toLowerCase().split(",")
            .map(function(c) { return c.trim(); })
            .filter(function(c) { return c !== "" && c !== "identity"; });
        var coded = ce.length > 0;
        var unknown = ce.some(function(c) {
            return ["gzip", "x-gzip", "deflate", "br", "zstd"].indexOf(c) < 0;
        });
        /* a 3xx with a Location fetch() did not follow (300, 305, 306: libcurl follows
         * them); an empty one is none, as on desktop */
        var loc = resp.headers.get("Location") ? 8 : 0;
        if (!_asset__fetch_on_headers(id, resp.status, (resp.redirected ? 1 : 0) |
                                      (coded ? 2 : 0) | (unknown ? 4 : 0) | loc)) {
            drop();
            return;
        }
        if (!resp.body) { end(0, ""); return; }
        var reader = resp.body.getReader();
        function pump() {
            return reader.read().then(function(r) {
                if (st.dead) return;
                if (r.done) { end(0, ""); return; }
                arm("stall", stall_ms, 3);
                var v = r.value;
                for (var off = 0; off < v.length;) {
                    var n = Math.min(v.length - off, 1 << 20);
                    var p = _asset__fetch_buf(id, n);
                    if (!p || !_asset__fetch_on_data(id, (HEAPU8.set(v.subarray(off, off + n), p), n))) {
                        drop();
                        return;
                    }
                    off += n;
                }
                return pump();
            });
        }
        return pump();
    }).catch(function(e) {
        if (st.dead) return;
        var m = e && e.message ? e.message : String(e);
        if (e && e.cause) m += ": " + (e.cause.code || e.cause.message || String(e.cause));
        end(1, m);
    });
});

/* The key of url's host into out (cap bytes, terminated), as sources/http.c's host_key
 * counts a host's connections natively: "host:port", the host as the URL parser
 * canonicalises it (lowercased, escapes decoded, an IPv4 address dotted, an IPv6 literal
 * short, a host outside ASCII in punycode, user info dropped), the port the scheme's
 * default when none. 0 when url does not parse or the key does not fit. */
EM_JS(int, js_host_key, (const char *url, char *out, int cap), {
    var pu;
    try { pu = new URL(UTF8ToString(url)); } catch (e) { return 0; }
    var b = new TextEncoder().encode(pu.hostname + ":" +
                                     (pu.port || (pu.protocol === "https:" ? "443" : "80")));
    if (b.length >= cap) return 0;
    HEAPU8.set(b, out);
    HEAPU8[out + b.length] = 0;
    return b.length;
});

/* How many fetches of one host a browser runs at once: 6, the per-host connection limit
 * of Chromium and Firefox over HTTP/1.1; a fetch() past it waits in the browser unseen,
 * while its guards (the connect and low-speed timers, armed at the call) run. 0 under
 * node, whose fetch() has no such limit (A.browser: a test's choice). */
EM_JS(int, js_browser_cap, (void), {
    var A = Module.assetFetch;
    if (A && A.browser !== undefined) return A.browser ? 6 : 0;
    return typeof process === "object" && typeof process.versions === "object" &&
           typeof process.versions.node === "string" ? 0 : 6;
});

EM_JS(void, js_fetch_abort, (uint32_t id), {
    var A = Module.assetFetch;
    var st = A && A.live.get(id);
    if (!st) return;
    st.dead = true;
    clearTimeout(st.timer);
    clearTimeout(st.stall);
    A.live.delete(id);
    try { st.ac.abort(); } catch (e) {}
});
/* clang-format on */

static xfer_t *xfer_find(uint32_t id) {
    uint64_t looks = 0;
    xfer_t *x = g_xfers;
    for (; x && x->id != id; x = x->next) looks++;
    if (x && looks) /* tests count them */
        atomic_fetch_add_explicit(&x->server->http_kick_looks, looks, memory_order_relaxed);
    return x;
}

static void xfer_fetch(xfer_t *x);
static void xfer_run(xfer_t *x);

static void xfer_free(xfer_t *x) {
    atomic_fetch_sub(&x->server->web_fetches, 1);
    asset_free(x->url);
    asset_free(x->cond_name);
    asset_free(x->cond_value);
    asset_free(x->reason);
    asset_free(x->etag);
    asset_free(x->last_modified);
    asset_free(x->effective);
    asset_free(x->buf);
    asset_free(x);
}

/* The fetches of host key running on this thread, every server's (g_xfers), up to cap. */
static unsigned thread_running(const char *key, unsigned cap) {
    unsigned n = 0;
    for (const xfer_t *x = g_xfers; x && n < cap; x = x->next)
        if (x->host && !strcmp(x->host->key, key)) n++;
    return n;
}

/* Whether one more fetch of h may start now. In a browser, the 6 it runs of a host are
 * those of the JS thread that calls fetch(), every server's there: single-threaded, two
 * servers of a page ran 6 each, and the browser held the 7th unseen, its guards running
 * (the pthreads build's servers each have an I/O thread, a Worker, that Chromium gives 6 of
 * its own) */
static bool host_may_start(const asset__http_t *http, const host_t *h) {
    unsigned cap = http->server->cfg.http_max_connections;
    if (http->browser_cap && http->browser_cap < cap) cap = http->browser_cap;
    if (http->browser_cap && thread_running(h->key, http->browser_cap) >= http->browser_cap)
        return false;
    return h->active < cap &&
           (!h->active ||
            http->active < asset__http_max_active(http->server->cfg.http_max_connections));
}

/* Starts waiting fetches while the caps allow, round-robin over the hosts from the one
 * after from (a host's own in order), as natively. */
static void hosts_start(asset__http_t *http, host_t *from) {
    host_t *h = from;
    for (unsigned idle = 0; idle < http->nhosts;) {
        h = h->next ? h->next : http->hosts;
        xfer_t *w = h->wait_head;
        if (!w || !host_may_start(http, h)) {
            idle++;
            continue;
        }
        idle = 0;
        h->wait_head = w->wnext;
        if (h->wait_head)
            h->wait_head->wprev = NULL;
        else
            h->wait_tail = NULL;
        w->waiting = false;
        h->active++;
        http->active++;
        xfer_run(w);
    }
}

/* Takes x out of its host: the fetches waiting for its place start (unless the server
 * stops); a host with none left is freed. */
static void host_leave(xfer_t *x) {
    host_t *h = x->host;
    if (!h) return;
    asset__http_t *http = x->server->http;
    if (x->waiting) {
        if (x->wprev)
            x->wprev->wnext = x->wnext;
        else
            h->wait_head = x->wnext;
        if (x->wnext)
            x->wnext->wprev = x->wprev;
        else
            h->wait_tail = x->wprev;
    } else {
        h->active--;
        http->active--;
        if (!http->stopping) hosts_start(http, h);
        /* the browser's slot it held may be another server's of this thread now */
        for (asset__http_t *o = http->browser_cap ? g_https : NULL; o; o = o->next_on_thread) {
            if (o == http || o->stopping) continue;
            host_t *oh = o->hosts;
            while (oh && strcmp(oh->key, h->key)) oh = oh->next;
            if (oh && oh->wait_head) hosts_start(o, oh);
        }
    }
    if (!h->active && !h->wait_head) {
        host_t **pp = &http->hosts;
        while (*pp != h) pp = &(*pp)->next;
        *pp = h->next;
        http->nhosts--;
        asset_free(h);
    }
}

/* Unlinks x, finishes its request with st and frees it. */
static void xfer_finish(xfer_t *x, asset_status_t st) {
    if (!x->waiting) { /* a waiting one is in its host's queue only (host_leave) */
        if (x->prev)
            x->prev->next = x->next;
        else
            g_xfers = x->next;
        if (x->next) x->next->prev = x->prev;
    }
    host_leave(x);
    asset_request_t *r = x->req;
    asset_server_t *s = x->server;
    xfer_free(x);
    /* as s's I/O thread (a promise callback of the single-threaded build ran as no
     * server's thread): a destroy from config.wake here is refused, as natively; it
     * went ahead inside the fetch's end (and aborted: a wait that would block) */
    asset_server_t *owner = asset__thread_owner;
    asset__thread_owner = s;
    asset_request_finish(r, st);
    /* a parse it put back in the heap runs only in a flush on the single-threaded build
     * (asset__pool_notify cannot call config.wake: it runs under the lock) */
    asset__maybe_wake(s);
    asset__thread_owner = owner;
}

static asset_status_t fail_too_large(xfer_t *x) {
    return asset_request_fail(x->req, ASSET_E_TOO_LARGE,
                              "body larger than max_asset_size (%zu bytes)", x->req->max_size);
}

EMSCRIPTEN_KEEPALIVE uint8_t *asset__fetch_buf(uint32_t id, size_t n) {
    xfer_t *x = xfer_find(id);
    if (!x) return NULL;
    if (n > x->buf_cap) {
        uint8_t *b = asset_realloc(x->buf, n);
        if (!b) { /* JS drops the transfer on NULL: its request ends here */
            xfer_finish(x,
                        asset_request_fail(x->req, ASSET_E_NO_MEMORY,
                                           "out of memory staging %zu bytes of the response", n));
            return NULL;
        }
        x->buf = b;
        x->buf_cap = n;
    }
    return x->buf;
}

/* which: 0 the reason phrase's bytes, 1 ETag, 2 Last-Modified, 3 the URL redirected to,
 * 4 Content-Length; the value is in the staging buffer, n bytes and a NUL (n < 0: it
 * could not be staged, and the transfer ended) */
EMSCRIPTEN_KEEPALIVE void asset__fetch_on_header(uint32_t id, int which, int n) {
    xfer_t *x = xfer_find(id);
    if (!x || !x->buf || n < 0) return;
    if (which == 4) {
        x->length = asset__http_length_value((const char *)x->buf);
        return;
    }
    char **slot = which == 0   ? &x->reason
                  : which == 1 ? &x->etag
                  : which == 2 ? &x->last_modified
                               : &x->effective;
    asset_free(*slot);
    if (which) {
        *slot = asset__strdup((const char *)x->buf);
    } else if ((*slot = asset__calloc(1, ASSET__HTTP_REASON_CAP))) { /* as the desktop's */
        asset__http_reason(*slot, (const char *)x->buf, (size_t)n);
    }
}

/* [I/O thread] A 304 from a redirect's target (fetch sent the condition on, and the
 * target judged a validator of another resource: the URL's own, when it did not
 * redirect), or one naming another ETag than the cached one. x is asked again, without the
 * condition (so once), under a new id (JS drops the old one), in its place at its host. */
static void xfer_again(xfer_t *x) {
    uv_mutex_lock(&x->server->lock);
    x->server->stats.http_requests++; /* another request, as xfer_start counts its first */
    uv_mutex_unlock(&x->server->lock);
    asset_free(x->cond_name);
    asset_free(x->cond_value);
    asset_free(x->reason);
    asset_free(x->etag);
    asset_free(x->last_modified);
    asset_free(x->effective);
    x->cond_name = x->cond_value = x->reason = x->etag = x->last_modified = x->effective = NULL;
    x->redirected = false;
    x->length = -1;
    x->status = 0;
    x->req->http_status = 0;
    x->id = ++g_next_id;
    xfer_fetch(x);
}

/* The response's head; flags: 1 it came through a redirect, 2 its body is coded
 * (Content-Encoding), 4 in a coding fetch() does not decode, 8 it has a Location.
 * Returns 1 to read the body, 0 when this fetch is over (its request finished here, or
 * asked again). */
EMSCRIPTEN_KEEPALIVE int asset__fetch_on_headers(uint32_t id, int status, int flags) {
    xfer_t *x = xfer_find(id);
    if (!x) return 0;
    double content_length = x->length;
    asset_request_t *r = x->req;
    x->status = status;
    x->redirected = flags & 1;
    r->http_status = status;
    if (asset_request_cancelled(r)) {
        xfer_finish(x, ASSET_E_CANCELLED);
        return 0;
    }
    /* a 304 from a redirect's target, or one naming an ETag (or, for a cached
     * Last-Modified, a date) other than the cached one: it says nothing of the cached
     * bytes (as natively, sources/http.c) */
    if (status == 304 && x->cond_name &&
        (x->redirected || asset__http_etag_moved(asset_request_cached_version(r), x->etag) ||
         asset__http_lm_moved(asset_request_cached_version(r), x->last_modified))) {
        xfer_again(x);
        return 0;
    }
    if (status == 304 && x->cond_name) { /* else nothing was asked: an HTTP error */
        uv_mutex_lock(&x->server->lock);
        x->server->stats.http_not_modified++;
        uv_mutex_unlock(&x->server->lock);
        xfer_finish(x, ASSET_NOT_MODIFIED);
        return 0;
    }
    /* a part of the body (Content-Range) is no asset, and no request of ours asks for a
     * range: a 206 loaded its part as the whole (as natively) */
    if (status < 200 || status > 299 || status == 206) {
        const char *reason = x->reason ? x->reason : "";
        /* a 3xx with a Location here is one fetch() does not follow (the Fetch standard
         * follows 301, 302, 303, 307 and 308; libcurl any 3xx but 304): it said "a
         * redirect without Location" */
        const char *note = (flags & 8) && status / 100 == 3 && status != 304
                               ? " (a redirect fetch() does not follow)"
                               : asset__http_status_note(status);
        asset_status_t st = asset_request_fail(r, ASSET_E_HTTP, "HTTP %d%s%s%s", status,
                                               reason[0] ? " " : "", reason, note);
        xfer_finish(x, st);
        return 0;
    }
    if (flags & 4) { /* its bytes are still coded: as natively, no asset */
        xfer_finish(x, asset_request_fail(r, ASSET_E_UNSUPPORTED,
                                          "the body is coded (Content-Encoding), and fetch() "
                                          "does not decode it"));
        return 0;
    }
    if (content_length >= 0 && !(flags & 2)) {
        if (content_length > (double)r->max_size) {
            xfer_finish(x, fail_too_large(x));
            return 0;
        }
        asset_request_set_total(r, (uint64_t)content_length);
        /* the body's buffer made once, at the size announced, as natively (up to
         * ASSET__HTTP_PRESIZE_MAX, http_validator.h): it was doubled from the first chunk's size, a
         * 3 MiB body copied at each step up to a 4 MiB buffer, the pthreads build's fixed heap
         * holding the old and the new one at once */
        if (!r->size && content_length <= (double)ASSET__HTTP_PRESIZE_MAX &&
            asset__request_reserve(r, (size_t)content_length) != ASSET_OK) {
            xfer_finish(
                x, asset_request_fail(r, ASSET_E_NO_MEMORY, "out of memory buffering the body"));
            return 0;
        }
    }
    return 1;
}

/* n body bytes in the staging buffer. Returns 1 for more, 0 when it is over. */
EMSCRIPTEN_KEEPALIVE int asset__fetch_on_data(uint32_t id, size_t n) {
    xfer_t *x = xfer_find(id);
    if (!x) return 0;
    if (x->req->size + n > x->req->max_size) { /* the message of the desktop source */
        xfer_finish(x, fail_too_large(x));
        return 0;
    }
    asset_status_t st = asset_request_write(x->req, x->buf, n);
    if (st == ASSET_OK) return 1;
    if (st == ASSET_E_TOO_LARGE)
        st = fail_too_large(x);
    else if (st == ASSET_E_NO_MEMORY)
        st = asset_request_fail(x->req, st, "out of memory buffering the body");
    xfer_finish(x, st);
    return 0;
}

/* kind: 0 the body ended, 1 a network error (its message staged), 2 no response within
 * the connect timeout, 3 no data for the low-speed time. */
EMSCRIPTEN_KEEPALIVE void asset__fetch_on_end(uint32_t id, int kind) {
    xfer_t *x = xfer_find(id);
    if (!x) return;
    asset_request_t *r = x->req;
    const asset_server_config_t *cfg = &x->server->cfg;
    asset_status_t st = ASSET_OK;
    if (asset_request_cancelled(r))
        st = ASSET_E_CANCELLED;
    else if (kind == 1)
        st = asset_request_fail(r, ASSET_E_NETWORK, "%s",
                                x->buf && x->buf[0] ? (const char *)x->buf : "fetch failed");
    else if (kind == 2)
        st = asset_request_fail(r, ASSET_E_TIMEOUT,
                                "HTTP transfer timed out: no response within %u ms "
                                "(http_connect_timeout_ms)",
                                cfg->http_connect_timeout_ms);
    else if (kind == 3)
        st =
            asset_request_fail(r, ASSET_E_TIMEOUT, "stalled: no data for %u ms (http_low_speed_ms)",
                               cfg->http_low_speed_ms);
    else if (!x->redirected && (x->etag || x->last_modified)) {
        char *v = x->etag ? asset__asprintf("etag:%s", x->etag)
                          : asset__asprintf("lm:%s", x->last_modified);
        /* a 200 with the cached strong ETag (a server that ignores If-None-Match) is the
         * same bytes: NOT_MODIFIED, as natively (sources/http.c). A weak one, or a
         * Last-Modified (whole seconds), may name other bytes */
        const char *cached = asset_request_cached_version(r);
        if (v && cached && x->etag && x->etag[0] == '"' && !strcmp(cached, v))
            st = ASSET_NOT_MODIFIED;
        else if (v)
            asset_request_set_version(r, v);
        asset_free(v);
    } else {
        /* no validator, or one of a redirect's target (where the URL redirects may
         * change): the bytes' hash (and the URL redirected to's), so that an unchanged
         * answer keeps the cached value */
        char digest[48];
        bool from = x->redirected && x->effective;
        asset__http_hash_version(
            digest, asset__hash_n(r->data ? (const char *)r->data : "", r->size), from,
            from ? asset__hash_n(x->effective, asset__http_from_len(x->effective)) : 0);
        const char *cached = asset_request_cached_version(r);
        if (cached && !strcmp(cached, digest))
            st = ASSET_NOT_MODIFIED;
        else
            asset_request_set_version(r, digest);
    }
    /* the URL the bytes came from, after redirects: their relative references resolve
     * against it, as natively (sources/http.c); the cache and reloads keep the URL asked */
    const char *why = NULL;
    asset_status_t bs;
    if (st == ASSET_OK && x->redirected && x->effective &&
        (bs = asset__request_set_base(r, x->effective, &why)) != ASSET_OK)
        st = asset_request_fail(r, bs, "redirected to %.200s: %s", x->effective, why);
    xfer_finish(x, st);
}

/* ---- the I/O thread's side ---- */

/* Finishes http's server's transfers (those cancelled when !all) as ASSET_E_CANCELLED,
 * aborting the running ones; those waiting first, so that no cancelled one starts in a
 * running one's place. Returns the transfers it looked at. */
static uint64_t cancel_xfers(asset__http_t *http, bool all) {
    uint64_t looks = 0;
    for (host_t *h = http->hosts, *hn; h; h = hn) {
        hn = h->next; /* h goes with its last waiting one when none runs */
        for (xfer_t *w = h->wait_head, *wn; w; w = wn) {
            wn = w->wnext;
            looks++;
            if (all || asset_request_cancelled(w->req)) xfer_finish(w, ASSET_E_CANCELLED);
        }
    }
    for (xfer_t *x = g_xfers, *next; x; x = next) { /* every server's of this thread */
        next = x->next;
        if (x->server != http->server) continue;
        looks++;
        if (!all && !asset_request_cancelled(x->req)) continue;
        js_fetch_abort(x->id);
        xfer_finish(x, ASSET_E_CANCELLED);
    }
    return looks;
}

/* Every turn of the I/O thread kicks (each load posted, each cancel): it looks for
 * cancelled transfers only when an async read was cancelled since its last look
 * (s->async_cancels, counted before the kick), as sources/http.c does */
static void on_kick(void *arg) {
    asset__http_t *http = arg;
    asset_server_t *s = http->server;
    uint64_t cancels = atomic_load_explicit(&s->async_cancels, memory_order_acquire);
    if (cancels == http->cancels_seen) return;
    http->cancels_seen = cancels;
    atomic_fetch_add_explicit(&s->http_kick_looks, cancel_xfers(http, false), memory_order_relaxed);
}

static void on_stop(void *arg) {
    asset__http_t *http = arg;
    asset_server_t *s = http->server;
    http->stopping = true;
    (void)cancel_xfers(http, true);
    asset__http_t **pp = &g_https;
    while (*pp && *pp != http) pp = &(*pp)->next_on_thread;
    if (*pp) *pp = http->next_on_thread;
    s->http = NULL;
    asset_free(http);
}

static void xfer_start(void *arg) {
    xfer_t *x = arg;
    asset_server_t *s = x->server;
    uv_mutex_lock(&s->lock);
    s->stats.http_requests++;
    uv_mutex_unlock(&s->lock);
    if (!s->http) {
        s->http = asset__calloc(1, sizeof *s->http);
        if (!s->http) {
            asset_request_t *r = x->req;
            xfer_free(x);
            asset_request_finish(
                r, asset_request_fail(r, ASSET_E_NO_MEMORY, "cannot start the HTTP client"));
            return;
        }
        s->http->server = s;
        /* a browser runs 6 fetches of a host at once (HTTP/1.1): the others waited in it
         * with their guards running, and a load of a healthy server queued behind 6 slow
         * bodies failed "no response within http_connect_timeout_ms". They wait here
         * instead, where no guard is armed, as natively where libcurl's connections are
         * the cap. Asked once a server: the page's environment does not change */
        s->http->browser_cap = (unsigned)js_browser_cap();
        s->http->next_on_thread = g_https;
        g_https = s->http;
        asset__io_set_hooks(s->io, on_kick, on_stop, s->http);
    }
    /* its host: "host:port" as natively (js_host_key), else (a URL fetch() will refuse,
     * a key past 320 bytes) scheme://authority as spelled. Keyed by the URL's text, each
     * spelling of a host (127.1, 127.0.0.1; HOST, host; :80 or no port) was a host of
     * its own, and loads of the host went past http_max_connections */
    char kb[320];
    const char *key = kb;
    size_t kn = (size_t)js_host_key(x->url, kb, (int)sizeof kb);
    if (!kn) {
        const char *a = strstr(x->url, "://");
        key = x->url;
        kn = a ? (size_t)(a + 3 - x->url) + strcspn(a + 3, "/?#") : strlen(x->url);
    }
    host_t *h = s->http->hosts;
    while (h && (strncmp(h->key, key, kn) || h->key[kn])) h = h->next;
    if (!h && (h = asset__calloc(1, sizeof *h + kn + 1))) {
        memcpy(h->key, key, kn);
        h->next = s->http->hosts;
        s->http->hosts = h;
        s->http->nhosts++;
    }
    x->host = h; /* NULL (out of memory): fetched at once, not counted */
    if (h && (h->wait_head || !host_may_start(s->http, h))) {
        x->waiting = true;
        x->wprev = h->wait_tail;
        if (h->wait_tail)
            h->wait_tail->wnext = x;
        else
            h->wait_head = x;
        h->wait_tail = x;
        return;
    }
    if (h) {
        h->active++;
        s->http->active++;
    }
    xfer_run(x);
}

/* x leaves its host's queue (or has none): among the fetches running, under a new id */
static void xfer_run(xfer_t *x) {
    x->prev = NULL;
    x->next = g_xfers;
    if (g_xfers) g_xfers->prev = x;
    g_xfers = x;
    x->id = ++g_next_id;
    xfer_fetch(x);
}

/* starts x's fetch, under x->id */
static void xfer_fetch(xfer_t *x) {
    const asset_server_config_t *cfg = &x->server->cfg;
    double stall = cfg->http_low_speed_ms == UINT_MAX ? 0 : (double)cfg->http_low_speed_ms;
    js_fetch_start(x->id, x->url, x->cond_name, x->cond_value, (double)cfg->http_connect_timeout_ms,
                   stall);
}

static asset_status_t http_read(void *ctx, asset_request_t *r) {
    asset_server_t *s = ctx;
    xfer_t *x = asset__calloc(1, sizeof *x);
    if (!x) return asset_request_fail(r, ASSET_E_NO_MEMORY, "out of memory");
    x->server = s;
    x->length = -1;
    atomic_fetch_add(&s->web_fetches, 1); /* until xfer_free (destroy_refused) */
    x->req = r;
    x->url = asset__strdup(asset_request_uri(r));
    const char *cond_value = NULL;
    const char *cond_name = asset__http_condition(asset_request_cached_version(r), &cond_value);
    if (cond_name) {
        x->cond_name = asset__strdup(cond_name);
        x->cond_value = asset__strdup(cond_value);
    }
    if (!x->url || (cond_name && (!x->cond_name || !x->cond_value))) {
        xfer_free(x);
        return asset_request_fail(r, ASSET_E_NO_MEMORY, "out of memory");
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
