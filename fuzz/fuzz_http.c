/* fuzz_http.c - the HTTP source against a hostile server: the input is what a server on
 * 127.0.0.1 answers, byte for byte, status line and headers included.
 *
 * Input: one flags byte, then up to four raw responses separated by the four bytes
 * "\0SEP" (the k-th request gets the k-th response, the last one from then on: a
 * redirect to the same server, a retry, a revalidation). The flags pick the loader
 * (bytes or json), a small max_asset_size, no_cache, a second load of the same URI
 * after the first is done (a revalidation with the first one's version: the
 * If-None-Match / If-Modified-Since path and its 304), a release before the flush, and
 * kept-alive connections. The server reads each request's headers and writes its
 * response; then it closes the connection, or, kept alive, waits for the next request
 * on it (bytes past an answer's end are then the start of the next answer, as a
 * server that lies about its Content-Length makes them). Gzip and deflate bodies
 * are decoded by the library (zlib): cut, corrupt, concatenated and oversized streams
 * all come from here.
 *
 * Nothing leaves 127.0.0.1 and nothing can block: the input's redirects may name any
 * host, so the target first moves into a network namespace of its own where only the
 * loopback exists (as root, else in a user namespace; it refuses to run without one),
 * and there a redirect to another host fails at once. The server's reads time out, the
 * loads have a timeout and the config short HTTP timeouts.
 *
 * Properties: every wait(-1) returns with the handle done; a FAILED one has an error
 * and a message, a LOADED one a value and, for the bytes loader, at most
 * max_asset_size bytes (decoded), NUL-terminated; ASan/LSan: no memory error, no leak after
 * destroy. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "asset_server.h"

#define CHECK(c)                                                                             \
    do {                                                                                     \
        if (!(c)) {                                                                          \
            fprintf(stderr, "fuzz_http: %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

#define MAX_RESPONSES 4
#define REQUEST_MAX 16384

static int g_listen = -1;
static int g_port;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* the current input's responses (copies: libFuzzer's buffer is gone after the call) */
static uint8_t *g_resp[MAX_RESPONSES];
static size_t g_resp_len[MAX_RESPONSES], g_nresp;
static unsigned g_answers; /* requests answered for the current input */
static bool g_keep_alive;  /* the connection stays open after an answer */

/* Reads a request's headers: true at their blank line, false at EOF, after wait_ms of
 * silence or REQUEST_MAX bytes. */
static bool read_request(int fd, int wait_ms) {
    char buf[1024];
    size_t got = 0;
    char tail[4] = {0};
    while (got < REQUEST_MAX) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait_ms) <= 0) return false;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        for (ssize_t i = 0; i < n; i++) {
            memmove(tail, tail + 1, 3);
            tail[3] = buf[i];
            if (!memcmp(tail, "\r\n\r\n", 4)) return true;
        }
        got += (size_t)n;
    }
    return false;
}

/* Answers fd's requests: the k-th request of the input gets its k-th response (the
 * last one from then on); one request per connection unless the input keeps them
 * alive. A client sends its first request at once; a next one on a kept-alive
 * connection is waited for briefly: when the answer was cut short, the client waits
 * for the rest of it while the server waits for a request, and only the server's
 * timeout (then a close) ends that. */
static void serve(int fd) {
    for (int wait_ms = 1000; read_request(fd, wait_ms); wait_ms = 30) {
        pthread_mutex_lock(&g_lock);
        size_t k = g_nresp ? (g_answers < g_nresp ? g_answers : g_nresp - 1) : 0;
        g_answers++;
        bool keep = g_keep_alive;
        uint8_t *copy = NULL;
        size_t len = g_nresp ? g_resp_len[k] : 0;
        if (len && (copy = malloc(len))) memcpy(copy, g_resp[k], len);
        pthread_mutex_unlock(&g_lock);
        for (size_t off = 0; copy && off < len;) { /* the peer may have gone: no SIGPIPE */
            ssize_t n = send(fd, copy + off, len - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += (size_t)n;
        }
        free(copy);
        if (!keep) return;
    }
}

static void *server_main(void *arg) {
    (void)arg;
    for (;;) {
        int fd = accept(g_listen, NULL, NULL);
        if (fd < 0) continue;
        serve(fd);
        close(fd);
    }
    return NULL;
}

static bool write_text(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    return close(fd) == 0 && ok;
}

/* Moves the process into a network namespace of its own, where only the loopback
 * exists, and brings the loopback up: before any thread that connects is started, so
 * that every later one is in it (a namespace is a thread's, and inherited). */
static void loopback_only(void) {
    if (unshare(CLONE_NEWNET) != 0) { /* not root: a user namespace that maps us */
        char map[64];
        unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
        CHECK(unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0 &&
              "fuzz_http needs a network namespace: root or user namespaces");
        snprintf(map, sizeof map, "%u %u 1", uid, uid);
        CHECK(write_text("/proc/self/uid_map", map));
        CHECK(write_text("/proc/self/setgroups", "deny"));
        snprintf(map, sizeof map, "%u %u 1", gid, gid);
        CHECK(write_text("/proc/self/gid_map", map));
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, sizeof r.ifr_name, "lo");
    CHECK(ioctl(fd, SIOCGIFFLAGS, &r) == 0);
    r.ifr_flags |= IFF_UP;
    CHECK(ioctl(fd, SIOCSIFFLAGS, &r) == 0);
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    loopback_only();
    g_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(g_listen >= 0);
    int one = 1;
    setsockopt(g_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* only 127.0.0.1, an ephemeral port */
    CHECK(bind(g_listen, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(g_listen, 64) == 0);
    socklen_t al = sizeof a;
    CHECK(getsockname(g_listen, (struct sockaddr *)&a, &al) == 0);
    g_port = ntohs(a.sin_port);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, server_main, NULL) == 0);
    pthread_detach(t);
    return 0;
}

/* Frees the current input's responses (the server then answers nothing). [g_lock] */
static void drop_responses(void) {
    for (size_t i = 0; i < g_nresp; i++) free(g_resp[i]);
    g_nresp = 0;
    g_answers = 0;
}

static void set_responses(const uint8_t *data, size_t size, bool keep_alive) {
    pthread_mutex_lock(&g_lock);
    drop_responses();
    g_keep_alive = keep_alive;
    while (g_nresp < MAX_RESPONSES) {
        const uint8_t *sep = g_nresp + 1 < MAX_RESPONSES ? memmem(data, size, "\0SEP", 4) : NULL;
        size_t len = sep ? (size_t)(sep - data) : size;
        g_resp[g_nresp] = malloc(len ? len : 1);
        CHECK(g_resp[g_nresp]);
        memcpy(g_resp[g_nresp], data, len);
        g_resp_len[g_nresp++] = len;
        if (!sep) break;
        data = sep + 4;
        size -= len + 4;
    }
    pthread_mutex_unlock(&g_lock);
}

static void check_done(asset_handle_t *h, size_t max_size, bool bytes) {
    asset_status_t w = asset_handle_wait(h, -1);
    CHECK(w == asset_handle_error(h));
    asset_state_t st = asset_handle_state(h);
    if (getenv("FUZZ_HTTP_VERBOSE")) /* to see what a seed does */
        fprintf(stderr, "fuzz_http: %s: state %d, %s%s, %zu bytes\n", asset_handle_uri(h), (int)st,
                asset_strerror(asset_handle_error(h)), asset_handle_error_message(h),
                asset_handle_size(h));
    CHECK(st == ASSET_STATE_LOADED || st == ASSET_STATE_FAILED);
    if (st == ASSET_STATE_FAILED) {
        CHECK(asset_handle_error(h) != ASSET_OK);
        const char *m = asset_handle_error_message(h);
        CHECK(m && *m);
    } else {
        CHECK(asset_handle_value(h) != NULL);
        const asset_bytes_t *b = asset_handle_value(h);
        if (bytes) CHECK(b->size <= max_size && b->data && b->data[b->size] == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t f = data[0];
    set_responses(data + 1, size - 1, f & 0x20);
    static unsigned counter;
    asset_server_config_t cfg = {0};
    cfg.max_workers = 1;
    cfg.max_asset_size = (f & 0x01) ? 64 : 1 << 20;
    cfg.http_connect_timeout_ms = 2000;
    cfg.http_low_speed_ms = 2000;
    cfg.http_max_connections = 1 + (f >> 6);
    asset_server_t *s = asset_server_create(&cfg);
    CHECK(s);
    bool json = f & 0x02;
    asset_load_options_t o = {0};
    o.loader = json ? "json" : "bytes";
    o.no_cache = f & 0x04;
    o.timeout_ms = 5000;
    char uri[96];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/f%u", g_port, counter++);
    asset_handle_t *h = asset_server_load(s, uri, &o);
    CHECK(h);
    check_done(h, cfg.max_asset_size, !json);
    if (f & 0x08) { /* again: a revalidation with the first answer's version, if any */
        asset_handle_t *h2 = asset_server_load(s, uri, &o);
        CHECK(h2);
        check_done(h2, cfg.max_asset_size, !json);
        asset_handle_release(h2);
    }
    if (f & 0x10) { /* released before the flush that delivers: nothing leaks */
        asset_handle_release(h);
        asset_server_flush(s);
    } else {
        asset_server_flush(s);
        asset_handle_release(h);
    }
    asset_server_destroy(s);
    pthread_mutex_lock(&g_lock); /* freed within the input: libFuzzer's leak check */
    drop_responses();
    pthread_mutex_unlock(&g_lock);
    return 0;
}
