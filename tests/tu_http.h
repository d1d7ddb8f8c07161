/* tu_http.h - HTTP fixtures for the tests: a real nginx on 127.0.0.1 with an ephemeral
 * port and a temp root, and a small misbehaving server for faults nginx will not make. */
#ifndef TU_HTTP_H
#define TU_HTTP_H

#include <stdbool.h>

typedef struct tu_nginx {
    int pid;
    int port;
    int tls_port;   /* HTTPS with a self-signed certificate, 0 if openssl is missing */
    char *dir;      /* temp dir holding conf, logs */
    char *root;     /* document root: write files here */
    char base[128]; /* "http://127.0.0.1:PORT", or ".../t<n>" for an external nginx */
    bool external;  /* the CTest fixture's nginx (dir NULL, pid 0): see tu_nginx_start */
} tu_nginx_t;

/* Starts nginx ($ASSET_TEST_NGINX or /usr/sbin/nginx). Returns false (and says why on
 * stderr) when nginx is missing or will not start. With $ASSET_TEST_HTTP_FIXTURE (a
 * directory holding "base", "tls_port" and "root/": tests/nginx_fixture.sh, which CTest
 * runs as the fixture http_fixture in cross builds) or $ASSET_TEST_HTTP_BASE and
 * $ASSET_TEST_HTTP_ROOT, uses that nginx instead: root is a fresh subdirectory of its
 * root and base the matching URL prefix. Windows tests always need it (no fork). */
bool tu_nginx_start(tu_nginx_t *n);
void tu_nginx_stop(tu_nginx_t *n);
/* "http://127.0.0.1:PORT/<path>"; free() it. */
char *tu_nginx_url(const tu_nginx_t *n, const char *path);
/* The same file over HTTPS: "https://127.0.0.1:TLS_PORT/<path>"; free() it. */
char *tu_nginx_tls_url(const tu_nginx_t *n, const char *path);

/* The misbehaving server: one thread on 127.0.0.1, ephemeral port, one connection at a
 * time. Paths: /short (Content-Length 1000, sends 10 bytes, closes), /short-503 (the same
 * for a 503 "busy"), /stall (headers,
 * then nothing until the client goes or the server stops), /huge (Content-Length of
 * 1 TiB), /endless (chunked body until the client goes; bounded to 64 MiB),
 * /redirect-file (302 to file:///etc/passwd), /badstatus (garbage status line),
 * /keepalive (200 "hello" without "Connection: close", then the connection is closed,
 * with a reset, as soon as the client sends its next request on it), /keepalive-302
 * (the same with a 302 to /keepalive), /bigheader (a 300 KB header line), /endless-404
 * (a 404 with a chunked body of 64 MiB that never ends), /huge-404 (a 404 announcing
 * 1 TiB, sending 128 KiB of it, then nothing), /trailer (200 "hello" chunked, then
 * trailers: a Content-Length of 1 TiB and an ETag), /trailer-status (a 404 whose chunked
 * body is empty, then the trailer "HTTP/1.1 200: OK"), /trailer-etag (a 200 whose chunked
 * body is empty, then an ETag trailer "trailer"; a 304 to If-None-Match "trailer"),
 * /header-flood (a 200 whose header lines run 64 MiB, then nothing), /trailer-flood (a
 * chunked "hello" whose trailers run 64 MiB, then nothing), /etag-cr (200
 * "hello" with an ETag holding a bare CR), /badloc (302 to the malformed "http://[zz::1/x"),
 * /cut-headers (closed inside the headers), /redirect-endless (a 302 whose body runs 64 MiB),
 * /redirect-garbage (302 to /badstatus), /clte (Content-Length beside chunked coding),
 * /gzip (a gzip-coded JSON body), /gzip-cut (a gzip-coded body whose stream is cut short,
 * its Content-Length what is sent), /gzip-badcrc (/gzip with a wrong CRC), /gzip-chunked
 * (/gzip's body chunked, no Content-Length), /te-gzip (/gzip's body in the transfer
 * coding gzip, then chunked), /te-gzip-close (the same, not chunked: until the close),
 * /gzip-endless (a gzip body, chunked, whose
 * header's file name runs 64 MiB, then nothing), /gzip-huge (a gzip body announcing
 * 1 TiB, then nothing), /unasked-304 (a 304 to any request), /alias ("one"
 * with ETag "same" the first time, then a 302 to /v2: "two" with the same ETag; both
 * answer 304 to If-None-Match "same"), /status-header (a 404 "not found" holding the
 * header line "HTTP/1.1 200: OK"), /zeros (200 "hello", its Content-Length 5 written
 * with 40 leading zeros), /two-lengths (200 "hello12" with Content-Lengths 5 and 7),
 * /length-list (the same with one Content-Length "5, 7"), /two-same-lengths (200 "hello"
 * with Content-Lengths "5, 05" and "005"), /partial (a 206 with bytes 0-4 of
 * 1000, unasked), /loop (a 302 to itself), /unconditional (200 "hello" with ETag "same", whatever
 * the request's If-None-Match), /compress (200 "hello" with Content-Encoding: compress, a coding
 * libcurl does not decode), /etag-moved ("one" with ETag "v1" the first time, then "two"
 * with "v2"; a 304 naming "v2" to any If-None-Match), /weak-200 (200 "hello" with ETag
 * W/"w"; a 304 naming "w" to If-None-Match W/"w"), /goto?<URL> (a 302 to URL), /folded (a 200 whose
 * first header line is a folded continuation), /etag-empty (200 "hello" with an ETag of
 * blanks and a Last-Modified; a 304 to If-Modified-Since that date), /then-500 (200
 * "hello" the first time, then a 500 each time), /short-300 (a 300 without Location announcing
 * 1000 bytes, sending 7, closing), /empty-location (the same for a 302 with an empty
 * Location), /short-302 (the same for a 302 to /ok), /no-location (a 302 "hello" without
 * Location),
 * /no-reason-404 (a 404 whose status line has no reason phrase), /reason-esc (a 404 whose
 * reason holds ESC and DEL), /reason-utf8 (a 404 "N\xc3\xa3o encontrado"), /reason-bytes (a
 * 404 "Caf\xe9 \xe2\x82x": no UTF-8), /reason-long (a 404 of 62 'a', "\xc3\xa9" and "bc": 66
 * bytes), /http10 (an HTTP/1.0 200
 * "hello", no reason phrase), /http10-close (an HTTP/1.0 200 "hello" ended by the close),
 * /clte-cut (a Content-Length of 5 beside chunked coding, whose chunk is cut short),
 * /two-etags ("one" with the ETags "v1" and "cdn" the first time, then "two" with "v2" and
 * "cdn"; never a 304), /two-dates (200 "hello" with two Last-Modified that differ; a 304
 * to any If-Modified-Since), /trickle (200 "hello" with ETag "t", each byte a TCP segment of its
 * own), /many-headers (200 "hello" after 20,000 header lines), /status-0200 and
 * /status-20x (200 "hello" under a status that is not three digits), /status-999 (a 999
 * "odd!", the largest three digits), /only-103 (a 103
 * and its blank line, then the close), /101 (an unasked 101 Switching Protocols), /no-store (200
 * "hello" with Cache-Control: no-store and ETag "ns"; a 304 to If-None-Match "ns"),
 * /chunked-cut (a chunked 200 closed inside its first chunk), /chunked-no-last (closed
 * after a whole chunk "hello", before the last chunk), /chunked-no-end (closed after the
 * last chunk, before the blank line ending the trailers), /ping and /pong (302s to each
 * other), /hints (a 103 with an ETag "early", a Content-Length, chunked coding and a
 * Location, a 100, then 200 "hello" without validator; a 304 to If-None-Match "early"),
 * /hints-flood (103s for 64 MiB, then nothing), /304-location and /304-location-file (200
 * "one" with ETag "a"; a 304 to If-None-Match "a" carrying a Location: /ok, or
 * file:///etc/passwd), /etag-hold (200 "one" with ETag "h"; a request with If-None-Match
 * "h" is held, tu_bad_wait_stalled returning once it came, until tu_bad_go, then a 304),
 * /lm-older ("new" dated Tuesday the first time, then "old" dated Monday; a 304 naming
 * Monday to any If-Modified-Since), /hold-200 (a 304 at once to If-None-Match "h"; an
 * unconditional request is held, tu_bad_wait_stalled returning once it came, until
 * tu_bad_go, then 200 "one" with ETag "h"), /park-change (200 "one" with ETag "v1" the
 * first time; the second unconditional request gets that answer's headers and is parked,
 * tu_bad_wait_stalled returning, while the server serves other connections, until tu_bad_go
 * sends its body; after, 200 "two" with ETag "v2", a 304 to If-None-Match "v2"; a 304 naming
 * "v1" to any other until the parked request came, then 200 "two"), /park-same (the same
 * parked second request, its ETag W/"v1", and 200 "one" with W/"v1" to any other, whatever
 * its If-None-Match),
 * /ok (200,
 * "hello"). */
typedef struct tu_bad tu_bad_t;
/* NULL on the web build (Emscripten's sockets under node are WebSockets): skip there. */
tu_bad_t *tu_bad_start(void);
/* The same server on [::1] (tu_bad_url still names 127.0.0.1: build its URLs from
 * tu_bad_port); NULL when ::1 cannot be bound here. */
tu_bad_t *tu_bad_start6(void);
int tu_bad_port(const tu_bad_t *b);
char *tu_bad_url(const tu_bad_t *b, const char *path); /* free() it */
int tu_bad_connections(tu_bad_t *b);
int tu_bad_bare_cr_requests(tu_bad_t *b); /* requests holding a CR not followed by LF */
void tu_bad_stop(tu_bad_t *b);
/* Block until a /stall request has had its headers and first bytes sent, and until
 * the client of a /stall request closed its connection. */
void tu_bad_wait_stalled(tu_bad_t *b);
void tu_bad_wait_peer_closed(tu_bad_t *b);
/* "/idle-close" answers with a kept-alive connection, then waits for this call to end
 * it with a FIN (a server's keep-alive timeout); returns once the FIN is sent. */
void tu_bad_idle_close(tu_bad_t *b);
/* "/excess" answers 200 "hello" (Content-Length 5) on a kept-alive connection, then
 * waits for this call to send "12XYZ" after it (a body longer than its Content-Length,
 * the rest late), then serves the next request on that connection; returns once the
 * bytes are sent. */
void tu_bad_go(tu_bad_t *b);

/* From now on every connection gets 200 "early" before its request is read (then the
 * request is read, and the connection closed). */
void tu_bad_answer_first(tu_bad_t *b);

/* A loopback port with nothing listening (bound, then closed). */
int tu_closed_port(void);

#endif
