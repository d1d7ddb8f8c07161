/* tu_http.c - see tu_http.h. Sockets are BSD sockets on POSIX and winsock on Windows
 * (the few differences are the tu_sock_* macros below); nginx is forked here on POSIX,
 * or is the external one of the CTest fixture (tests/nginx_fixture.sh) when
 * $ASSET_TEST_HTTP_FIXTURE or $ASSET_TEST_HTTP_BASE is set: always so on Windows. */
#include "tu_http.h"
#include "test_util.h"
#include "tu_os.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
typedef SOCKET tu_sock_t;
typedef int tu_socklen_t;
#define TU_NO_SOCK INVALID_SOCKET
#define tu_sock_close closesocket
#define tu_poll WSAPoll
#define TU_SOCK_CLOEXEC 0
#define MSG_NOSIGNAL 0
#define tu_accept(fd) accept(fd, NULL, NULL)
static void tu_net_init(void) {
    WSADATA w;
    if (WSAStartup(MAKEWORD(2, 2), &w) != 0) abort(); /* counted: one per start */
}
#else
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
typedef int tu_sock_t;
typedef socklen_t tu_socklen_t;
#define TU_NO_SOCK (-1)
#define tu_sock_close close
#define tu_poll poll
#define TU_SOCK_CLOEXEC SOCK_CLOEXEC
#define tu_accept(fd) accept4(fd, NULL, NULL, SOCK_CLOEXEC)
static void tu_net_init(void) {}
#endif

/* A socket bound to a free port of 127.0.0.1, or of ::1 when v6 (TU_NO_SOCK: none). */
static tu_sock_t bind_loopback_of(int *port_out, bool v6) {
    tu_net_init();
    tu_sock_t fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | TU_SOCK_CLOEXEC, 0);
    if (fd == TU_NO_SOCK) return TU_NO_SOCK;
#ifndef _WIN32 /* on Windows SO_REUSEADDR would let another socket steal the port */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#endif
    struct sockaddr_in a = {0};
    struct sockaddr_in6 a6 = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    struct sockaddr *sa = v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a;
    tu_socklen_t len = v6 ? (tu_socklen_t)sizeof a6 : (tu_socklen_t)sizeof a;
    if (bind(fd, sa, len) != 0 || getsockname(fd, sa, &len) != 0) {
        tu_sock_close(fd);
        return TU_NO_SOCK;
    }
    *port_out = ntohs(v6 ? a6.sin6_port : a.sin_port);
    return fd;
}

static tu_sock_t bind_loopback(int *port_out) { return bind_loopback_of(port_out, false); }

int tu_closed_port(void) {
    int port = 0;
    tu_sock_t fd = bind_loopback(&port);
    if (fd != TU_NO_SOCK) tu_sock_close(fd);
    return port;
}

/* The external nginx of the CTest fixture: $ASSET_TEST_HTTP_BASE and _ROOT, or the
 * files "base", "tls_port" and the directory "root" in $ASSET_TEST_HTTP_FIXTURE. Each
 * tu_nginx_start gets its own fresh subdirectory of the root, "t<n>" (and of the URL
 * space), so suites running in parallel never see each other's files (nor the leftovers
 * of a crashed run). Returns false when not configured or on failure (then says why). */
static bool read_line(const char *dir, const char *name, char *out, size_t cap) {
    char *p = tu_path(dir, name);
    FILE *f = fopen(p, "rb");
    free(p);
    if (!f) return false;
    bool ok = fgets(out, (int)cap, f) != NULL;
    fclose(f);
    out[strcspn(out, "\r\n")] = 0;
    return ok && out[0];
}

static bool external_nginx(tu_nginx_t *n, bool *configured) {
    const char *fixture = getenv("ASSET_TEST_HTTP_FIXTURE");
    const char *env_base = getenv("ASSET_TEST_HTTP_BASE");
    const char *env_root = getenv("ASSET_TEST_HTTP_ROOT");
    char base[64] = "", root[4096] = "", tls[16] = "";
    *configured = true;
    if (env_base && *env_base && env_root && *env_root) {
        snprintf(base, sizeof base, "%s", env_base);
        snprintf(root, sizeof root, "%s", env_root);
    } else if (fixture && *fixture) {
        if (!read_line(fixture, "base", base, sizeof base)) {
            fprintf(stderr, "tu_nginx_start: no %s/base: did the nginx fixture start?\n", fixture);
            return false;
        }
        snprintf(root, sizeof root, "%s/root", fixture);
        read_line(fixture, "tls_port", tls, sizeof tls);
    } else {
        *configured = false;
        return false;
    }
    /* claim the first name nobody has: mkdir is atomic among the processes sharing the
     * root (a process id would not do: every program under node has the same one) */
    char sub[32];
    n->root = NULL;
    for (int i = 0; i < 100000 && !n->root; i++) {
        snprintf(sub, sizeof sub, "t%d", i);
        char *p = tu_path(root, sub);
        if (tu_os_mkdir(p) == 0) {
            n->root = p;
        } else {
            free(p);
            if (errno != EEXIST) break;
        }
    }
    if (!n->root) {
        fprintf(stderr, "tu_nginx_start: cannot create a directory in %s: %s\n", root,
                strerror(errno));
        return false;
    }
    n->dir = NULL;
    n->port = atoi(strrchr(base, ':') ? strrchr(base, ':') + 1 : "0");
    n->tls_port = atoi(tls);
    snprintf(n->base, sizeof n->base, "%s/%s", base, sub);
    n->external = true;
    return true;
}

#ifdef _WIN32
static bool fork_nginx(tu_nginx_t *n) {
    (void)n;
    fprintf(stderr, "tu_nginx_start: a Windows test cannot start nginx; run it under ctest "
                    "(the http_fixture test sets ASSET_TEST_HTTP_FIXTURE)\n");
    return false;
}

static void stop_forked_nginx(tu_nginx_t *n) { (void)n; }
#else
static bool can_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void nap_ms(int ms) {
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static bool fork_nginx(tu_nginx_t *n) {
    const char *bin = getenv("ASSET_TEST_NGINX");
    if (!bin || !*bin) bin = "/usr/sbin/nginx";
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "tu_nginx_start: no nginx at %s\n", bin);
        return false;
    }
    n->dir = tu_mkdtemp();
    n->root = tu_path(n->dir, "root");
    mkdir(n->root, 0755);
    /* an ephemeral port: ask the kernel for a free one, then hand it to nginx; retried
     * if someone takes it in between */
    /* a self-signed certificate, for the TLS-verification test (optional) */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             n->dir, n->dir);
    bool tls = system(cmd) == 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        n->port = tu_closed_port();
        n->tls_port = tls ? tu_closed_port() : 0;
        char tls_server[1024] = "";
        if (tls)
            snprintf(tls_server, sizeof tls_server,
                     "  server {\n    listen 127.0.0.1:%d ssl;\n    root %s;\n"
                     "    ssl_certificate %s/cert.pem;\n    ssl_certificate_key %s/key.pem;\n  }\n",
                     n->tls_port, n->root, n->dir, n->dir);
        char k1000[1001]; /* /etag-huge's ETag is 9 of them: past nginx's 8 KiB header line */
        memset(k1000, 'e', 1000);
        k1000[1000] = 0;
        char *conf = tu_path(n->dir, "nginx.conf");
        FILE *f = fopen(conf, "w");
        fprintf(f,
                "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
                "events { worker_connections 512; }\n"
                "http {\n  access_log off;\n"
                "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n"
                "  fastcgi_temp_path %s/fastcgi;\n  uwsgi_temp_path %s/uwsgi;\n"
                "  scgi_temp_path %s/scgi;\n"
                "  keepalive_requests 100000;\n  etag on;\n"
                "  types { application/json json; text/plain txt; }\n"
                "  server {\n    listen 127.0.0.1:%d;\n    root %s;\n"
                "    location ~ /status500$ { return 500; }\n"
                "    location ~ /redirect-file$ { return 302 file:///etc/passwd; }\n"
                "    location ~ ^(.*)/redirect-ok$ { return 302 $1/hello.txt; }\n"
                "    location ~ /etag-huge$ { set $k \"%s\";\n"
                "      add_header ETag \"\\\"$k$k$k$k$k$k$k$k$k\\\"\"; return 200 \"hello\"; }\n"
                "  }\n%s}\n",
                n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->port, n->root, k1000,
                tls_server);
        fclose(f);
        pid_t pid = fork();
        if (pid < 0) { /* never kill(-1) below; no processes at all under node */
            fprintf(stderr, "tu_nginx_start: fork: %s (set ASSET_TEST_HTTP_BASE instead)\n",
                    strerror(errno));
            free(conf);
            break;
        }
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0) {
                dup2(devnull, 1);
                dup2(devnull, 2);
            }
            execl(bin, bin, "-p", n->dir, "-c", conf, (char *)NULL);
            _exit(127);
        }
        free(conf);
        n->pid = pid;
        /* an external process: poll its port, bounded (5 s) */
        for (int i = 0; i < 500; i++) {
            if (can_connect(n->port) && (!n->tls_port || can_connect(n->tls_port))) {
                snprintf(n->base, sizeof n->base, "http://127.0.0.1:%d", n->port);
                return true;
            }
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) break; /* exited: port taken? */
            nap_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        n->pid = 0;
    }
    fprintf(stderr, "tu_nginx_start: nginx did not start\n");
    char *log = tu_path(n->dir, "error.log"); /* printed: the directory goes next */
    FILE *f = fopen(log, "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) fprintf(stderr, "  nginx: %s", line);
        fclose(f);
    }
    free(log);
    return false;
}

static void stop_forked_nginx(tu_nginx_t *n) {
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        waitpid(n->pid, NULL, 0);
    }
}
#endif

bool tu_nginx_start(tu_nginx_t *n) {
    memset(n, 0, sizeof *n);
    bool configured;
    if (external_nginx(n, &configured)) return true;
    if (configured) return false;
    if (fork_nginx(n)) return true;
    tu_nginx_stop(n); /* its directory (made before fork failed, as under node) */
    return false;
}

void tu_nginx_stop(tu_nginx_t *n) {
    if (n->external) {
        tu_rmrf(n->root); /* this process's part of the shared root */
    } else {
        stop_forked_nginx(n);
        tu_rmrf(n->dir);
    }
    free(n->dir);
    free(n->root);
    memset(n, 0, sizeof *n);
}

char *tu_nginx_url(const tu_nginx_t *n, const char *path) {
    size_t len = strlen(n->base) + strlen(path) + 2;
    char *u = malloc(len);
    snprintf(u, len, "%s/%s", n->base, path[0] == '/' ? path + 1 : path);
    return u;
}

char *tu_nginx_tls_url(const tu_nginx_t *n, const char *path) {
    const char *sub = strchr(n->base + strlen("http://"), '/'); /* "/t<n>" or NULL */
    size_t len = strlen(path) + (sub ? strlen(sub) : 0) + 64;
    char *u = malloc(len);
    snprintf(u, len, "https://127.0.0.1:%d%s/%s", n->tls_port, sub ? sub : "",
             path[0] == '/' ? path + 1 : path);
    return u;
}

/* ---- the misbehaving server ---- */

struct tu_bad {
    tu_sock_t listen_fd;
    int port;
    tu_sock_t stop_pipe[2]; /* a pipe on POSIX, a loopback socket pair on Windows */
    uv_thread_t thread;
    uv_mutex_t mu;
    int connections;
    int bare_cr; /* requests with a CR not followed by LF (a header written into them) */
    uv_sem_t stalled, peer_closed;
    tu_sock_t go_pipe[2]; /* "/idle-close": the test says when to close (tu_bad_idle_close) */
    uv_sem_t idle_closed;
    int alias_hits;    /* requests for "/alias" (under mu) */
    int then500_hits;  /* requests for "/then-500" (under mu) */
    int moved_hits;    /* unconditional requests for "/etag-moved" (under mu) */
    int signed_hits;   /* requests for "/signed" (under mu) */
    int two_etag_hits; /* requests for "/two-etags" (under mu) */
    int lm_older_hits; /* unconditional requests for "/lm-older" (under mu) */
    bool answer_first; /* tu_bad_answer_first (under mu) */
    int park_hits;     /* unconditional requests for "/park-change", "/park-same" (mu) */
    tu_sock_t parked;  /* "/park-change"'s parked connection (server thread), or TU_NO_SOCK */
};

void tu_bad_answer_first(tu_bad_t *b) {
    uv_mutex_lock(&b->mu);
    b->answer_first = true;
    uv_mutex_unlock(&b->mu);
}

static bool wake_send(tu_sock_t s);
static bool wake_recv(tu_sock_t s);

void tu_bad_wait_stalled(tu_bad_t *b) { uv_sem_wait(&b->stalled); }
void tu_bad_wait_peer_closed(tu_bad_t *b) { uv_sem_wait(&b->peer_closed); }
void tu_bad_go(tu_bad_t *b) {
    if (!wake_send(b->go_pipe[1])) abort();
    uv_sem_wait(&b->idle_closed);
}
void tu_bad_idle_close(tu_bad_t *b) { tu_bad_go(b); }

static bool send_all(tu_sock_t fd, const char *s, size_t n) {
    while (n) {
        int chunk = n > 1 << 20 ? 1 << 20 : (int)n;
        long w = (long)send(fd, s, chunk, MSG_NOSIGNAL);
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* Keeps fd open (bad_main sends its body "one" at tu_bad_go) unless one is parked
 * already, and tells tu_bad_wait_stalled. The server thread's. */
static void park(tu_bad_t *b, tu_sock_t fd) {
    if (b->parked != TU_NO_SOCK) return;
    b->parked = fd;
    uv_sem_post(&b->stalled);
}

/* 64 MiB of a chunked body, 8 KiB chunks (the client goes first, mostly): whether it
 * was all sent */
static bool send_chunks(tu_sock_t fd) {
    static char chunk[8192 + 16];
    int hl = snprintf(chunk, sizeof chunk, "2000\r\n");
    memset(chunk + hl, 'x', 8192);
    memcpy(chunk + hl + 8192, "\r\n", 2);
    bool sent = true;
    for (int i = 0; i < 64 * 128 && sent; i++) sent = send_all(fd, chunk, (size_t)hl + 8192 + 2);
    return sent;
}

/* 64 MiB of line (header lines, or whole 1xx answers) again and again, the client goes
 * first, mostly: whether they were all sent */
static bool send_header_lines(tu_sock_t fd, const char *line) {
    static char blk[32 << 10];
    size_t ll = strlen(line), n = sizeof blk / ll * ll;
    for (size_t i = 0; i < n; i += ll) memcpy(blk + i, line, ll);
    bool sent = true;
    for (size_t total = 0; total < ((size_t)64 << 20) && sent; total += n)
        sent = send_all(fd, blk, n);
    return sent;
}

/* waits until the client closes or the server stops; returns false on stop */
static bool wait_peer_or_stop(tu_bad_t *b, tu_sock_t fd) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        if (tu_poll(p, 2, -1) < 0 && errno != EINTR) return false;
        if (p[1].revents) return false;
        if (p[0].revents) {
            char buf[4096];
            long r = (long)recv(fd, buf, sizeof buf, 0);
            if (r <= 0) return true;
        }
    }
}

/* waits until the test says go (tu_bad_go, tu_bad_idle_close) or the server stops;
 * returns false on stop */
static bool wait_go(tu_bad_t *b) {
    struct pollfd p[2] = {{b->go_pipe[0], POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}};
    while (tu_poll(p, 2, -1) < 0 && errno == EINTR) continue;
    return !p[1].revents && wake_recv(b->go_pipe[0]);
}

/* Keep-alive gone wrong: waits until the client sends its next request on this
 * connection (or closes it, or the server stops), then closes without reading it. The
 * unread request makes the kernel answer with a reset, which is what a server that
 * drops idle keep-alive connections looks like to a client reusing one. */
static void close_on_next_request(tu_bad_t *b, tu_sock_t fd) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}};
    while (tu_poll(p, 2, -1) < 0 && errno == EINTR) continue;
}

/* Answers sent whole, then the connection closed (tu_http.h names them) */
static const struct {
    const char *path, *answer;
} canned[] = {
    {"/short-300", "HTTP/1.1 300 Multiple Choices\r\nContent-Length: 1000\r\n\r\nchoices"},
    {"/short-302", "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 1000\r\n\r\nmoved"},
    {"/reason-esc",
     "HTTP/1.1 404 Not\x1b[2JFound\x7f\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"},
    {"/empty-location", "HTTP/1.1 302 Found\r\nLocation: \r\nContent-Length: 1000\r\n\r\nmoved"},
    {"/status-0200", "HTTP/1.1 0200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"},
    {"/status-20x", "HTTP/1.1 20x OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"},
    {"/status-999", "HTTP/1.1 999 Odd\r\nContent-Length: 4\r\nConnection: close\r\n\r\nodd!"},
    {"/only-103", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"},
    {"/101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\nxyz"},
    {"/no-location", "HTTP/1.1 302 Found\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"},
    {"/no-reason-404", "HTTP/1.1 404\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone"},
    {"/reason-utf8", "HTTP/1.1 404 N\xc3\xa3o encontrado\r\nContent-Length: 0\r\n\r\n"},
    {"/reason-bytes", "HTTP/1.1 404 Caf\xe9 \xe2\x82x\r\nContent-Length: 0\r\n\r\n"},
    {"/reason-long", "HTTP/1.1 404 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "\xc3\xa9"
                     "bc\r\nContent-Length: 0\r\n\r\n"},
    {"/http10", "HTTP/1.0 200\r\nContent-Length: 5\r\n\r\nhello"},
    {"/http10-close", "HTTP/1.0 200 OK\r\n\r\nhello"},
    {"/clte-cut", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n5\r\nhel"},
    {"/chunked-cut",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhel"},
    {"/chunked-no-last",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n"},
    {"/chunked-no-end", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                        "\r\n5\r\nhello\r\n0\r\n"},
    {"/ping", "HTTP/1.1 302 Found\r\nLocation: /pong\r\nContent-Length: 0\r\n\r\n"},
    {"/pong", "HTTP/1.1 302 Found\r\nLocation: /ping\r\nContent-Length: 0\r\n\r\n"},
};

static void serve(tu_bad_t *b, tu_sock_t fd) {
    char req[4096];
    size_t got = 0;
    uv_mutex_lock(&b->mu);
    bool early = b->answer_first;
    uv_mutex_unlock(&b->mu);
    static const char early_answer[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly";
    if (early) send_all(fd, early_answer, sizeof early_answer - 1);
    while (got < sizeof req - 1) {
        long r = (long)recv(fd, req + got, (int)(sizeof req - 1 - got), 0);
        if (r <= 0) return;
        got += (size_t)r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    if (early) return; /* answered already */
    for (const char *c = req; (c = strchr(c, '\r')); c++)
        if (c[1] != '\n') {
            uv_mutex_lock(&b->mu);
            b->bare_cr++;
            uv_mutex_unlock(&b->mu);
            break;
        }
    char path[256] = "";
    sscanf(req, "GET %255s", path);
    path[strcspn(path, "?")] = 0; /* "/stall?3": distinct URLs, same behaviour */
    for (size_t i = 0; i < sizeof canned / sizeof canned[0]; i++)
        if (!strcmp(path, canned[i].path)) {
            send_all(fd, canned[i].answer, strlen(canned[i].answer));
            return;
        }
    if (!strcmp(path, "/trickle")) {
        /* every byte a TCP segment of its own */
        const char *h = "HTTP/1.1 200 OK\r\nETag: \"t\"\r\nContent-Length: 5\r\n"
                        "Connection: close\r\n\r\nhello";
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof one);
        for (size_t i = 0; h[i] && send_all(fd, h + i, 1); i++) continue;
    } else if (!strcmp(path, "/many-headers")) {
        /* 20,000 short header lines (160 KiB: under the 300 KiB cap), then "hello" */
        static char blk[20000 * 8 + 128];
        size_t n = (size_t)snprintf(blk, sizeof blk, "HTTP/1.1 200 OK\r\n");
        for (int i = 0; i < 20000; i++, n += 8) memcpy(blk + n, "X-N: v\r\n", 8);
        n += (size_t)snprintf(blk + n, sizeof blk - n,
                              "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
        send_all(fd, blk, n);
    } else if (!strcmp(path, "/short") || !strcmp(path, "/short-503")) {
        const char *h =
            !strcmp(path, "/short")
                ? "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n0123456789"
                : "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1000\r\n\r\nbusy";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/stall")) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc";
        send_all(fd, h, strlen(h));
        uv_sem_post(&b->stalled);
        if (wait_peer_or_stop(b, fd)) uv_sem_post(&b->peer_closed);
    } else if (!strcmp(path, "/huge")) {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n", 51);
        wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/huge-404")) {
        const char *h = "HTTP/1.1 404 Not Found\r\nContent-Length: 1099511627776\r\n\r\n";
        static char body[128 << 10]; /* then 128 KiB of it, then nothing */
        memset(body, 'x', sizeof body);
        if (send_all(fd, h, strlen(h)) && send_all(fd, body, sizeof body)) wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/trailer")) {
        /* trailers after the body that, taken as headers, would fail it or version it */
        const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
                        "Trailer: Content-Length, ETag\r\n\r\n5\r\nhello\r\n0\r\n"
                        "Content-Length: 1099511627776\r\nETag: \"trailer\"\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/trailer-status")) {
        /* a 404 whose chunked body is empty, then a trailer that reads like a status line */
        const char *h = "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n"
                        "Connection: close\r\n\r\n0\r\nHTTP/1.1 200: OK\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/trailer-etag")) {
        /* a 200 whose chunked body is empty, then an ETag trailer; a 304 to a request
         * asking If-None-Match with that ETag */
        const char *h = strstr(req, "If-None-Match: \"trailer\"")
                            ? "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
                            : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                              "Connection: close\r\n\r\n0\r\nETag: \"trailer\"\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/header-flood") || !strcmp(path, "/trailer-flood")) {
        /* header lines that do not end (64 MiB of them, then nothing): in the headers, or
         * as trailers after a chunked body "hello" */
        const char *h = !strcmp(path, "/header-flood")
                            ? "HTTP/1.1 200 OK\r\n"
                            : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "5\r\nhello\r\n0\r\n";
        if (send_all(fd, h, strlen(h)) &&
            send_header_lines(fd, "X-Flood: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"))
            wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/hints-flood")) {
        /* 103 Early Hints, each whole, for 64 MiB, then nothing: no final answer */
        if (send_header_lines(fd, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"))
            wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/hints")) {
        /* a 103 with an ETag, Content-Length, chunked coding and a Location, a 100, then
         * the 200 "hello" (no validator); a 304 to If-None-Match "early" */
        const char *h =
            strstr(req, "If-None-Match: \"early\"")
                ? "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nETag: \"early\"\r\n"
                  "Content-Length: 1000\r\nTransfer-Encoding: chunked\r\nLocation: /ok\r\n\r\n"
                  "HTTP/1.1 100 Continue\r\n\r\n"
                  "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/etag-cr")) {
        /* a validator with a bare CR: sent back as is, it would write a header into the
         * next request */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n"
                        "ETag: \"a\rX-Injected: 1\"\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/endless") || !strcmp(path, "/endless-404")) {
        const char *h = !strcmp(path, "/endless")
                            ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            : "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (send_all(fd, h, strlen(h)) && send_chunks(fd) && strcmp(path, "/endless"))
            wait_peer_or_stop(b, fd); /* never ends */
    } else if (!strcmp(path, "/badloc")) {
        const char *h = "HTTP/1.1 302 Found\r\nLocation: http://[zz::1/x\r\nContent-Length: "
                        "0\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/redirect-file")) {
        const char *h =
            "HTTP/1.1 302 Found\r\nLocation: file:///etc/passwd\r\nContent-Length: 0\r\n\r\n";
        send_all(fd, h, strlen(h));
        wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/keepalive") || !strcmp(path, "/keepalive-302")) {
        /* no "Connection: close": the client may keep the connection for its next load */
        const char *h = !strcmp(path, "/keepalive")
                            ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                            : "HTTP/1.1 302 Found\r\nLocation: /keepalive\r\n"
                              "Content-Length: 0\r\n\r\n";
        if (send_all(fd, h, strlen(h))) close_on_next_request(b, fd);
    } else if (!strcmp(path, "/idle-close")) {
        /* keep-alive, then, once the test says so (the client is done with the
         * response), a FIN on the idle connection: a server's keep-alive timeout */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        if (!send_all(fd, h, strlen(h))) return;
        if (!wait_go(b)) return;
        shutdown(fd, 1); /* SHUT_WR, SD_SEND */
        uv_sem_post(&b->idle_closed);
    } else if (!strcmp(path, "/excess")) {
        /* keep-alive, then, once the test says so (the client is done with the response),
         * bytes past its Content-Length on the idle connection; then the next request on
         * it is served as any (a client that reads it gets those bytes first) */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        if (!send_all(fd, h, strlen(h))) return;
        if (!wait_go(b)) return;
        bool sent = send_all(fd, "12XYZ", 5);
        uv_sem_post(&b->idle_closed);
        if (sent) serve(b, fd);
    } else if (!strcmp(path, "/etag-hold")) {
        /* 200 "one" with ETag "h"; a conditional request is held (tu_bad_wait_stalled
         * returns once it came) until the test says go (tu_bad_go), then a 304 */
        if (!strstr(req, "If-None-Match: \"h\"")) {
            const char *h = "HTTP/1.1 200 OK\r\nETag: \"h\"\r\nContent-Length: 3\r\n"
                            "Connection: close\r\n\r\none";
            send_all(fd, h, strlen(h));
            return;
        }
        uv_sem_post(&b->stalled);
        if (!wait_go(b)) return;
        const char *h = "HTTP/1.1 304 Not Modified\r\nETag: \"h\"\r\nConnection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
        uv_sem_post(&b->idle_closed);
    } else if (!strcmp(path, "/hold-200")) {
        /* a conditional request (If-None-Match "h") gets a 304 at once; an unconditional
         * one is held (tu_bad_wait_stalled returns once it came) until the test says go
         * (tu_bad_go), then 200 "one" with ETag "h" */
        if (strstr(req, "If-None-Match: \"h\"")) {
            const char *h = "HTTP/1.1 304 Not Modified\r\nETag: \"h\"\r\n"
                            "Connection: close\r\n\r\n";
            send_all(fd, h, strlen(h));
            return;
        }
        uv_sem_post(&b->stalled);
        if (!wait_go(b)) return;
        const char *h = "HTTP/1.1 200 OK\r\nETag: \"h\"\r\nContent-Length: 3\r\n"
                        "Connection: close\r\n\r\none";
        send_all(fd, h, strlen(h));
        uv_sem_post(&b->idle_closed);
    } else if (!strcmp(path, "/lm-older")) {
        /* "new" dated Tuesday the first time, then "old" dated Monday (an older version
         * put back with its date); If-Modified-Since gets a 304 naming Monday (the file
         * is not newer than any date asked about: Apache's and Go's reading) */
        bool cond = strstr(req, "If-Modified-Since:") != NULL;
        uv_mutex_lock(&b->mu);
        int hit = cond ? -1 : b->lm_older_hits++;
        uv_mutex_unlock(&b->mu);
        const char *h =
            cond ? "HTTP/1.1 304 Not Modified\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                   "Connection: close\r\n\r\n"
            : hit == 0 ? "HTTP/1.1 200 OK\r\nLast-Modified: Tue, 02 Jan 2024 00:00:00 GMT\r\n"
                         "Content-Length: 3\r\nConnection: close\r\n\r\nnew"
                       : "HTTP/1.1 200 OK\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                         "Content-Length: 3\r\nConnection: close\r\n\r\nold";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/bigheader")) {
        /* one 300 KB header line: more than libcurl buffers for a header (100 KiB) */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Big: ";
        size_t n = 300 * 1000;
        char *big = malloc(n);
        memset(big, 'a', n);
        if (send_all(fd, h, strlen(h)) && send_all(fd, big, n)) send_all(fd, "\r\n\r\nhello", 9);
        free(big);
    } else if (!strcmp(path, "/cut-headers")) {
        /* the connection closes inside the headers, after the status line and an ETag */
        const char *h = "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Le";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/redirect-endless")) {
        /* a 302 whose chunked body does not end (64 MiB at most), then /ok */
        const char *h = "HTTP/1.1 302 Found\r\nLocation: /ok\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (send_all(fd, h, strlen(h)) && send_chunks(fd)) send_all(fd, "0\r\n\r\n", 5);
    } else if (!strcmp(path, "/redirect-garbage")) {
        const char *h = "HTTP/1.1 302 Found\r\nLocation: /badstatus\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/clte")) {
        /* a Content-Length beside chunked coding: the chunks say the size (RFC 9112 6.3) */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                        "5\r\nhello\r\n0\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/gzip")) {
        /* {"level": 1}, gzip-coded, whatever the request asked (a stored object) */
        static const char h[] =
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 32\r\n"
            "Connection: close\r\n\r\n"
            "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x49\x2d\x4b"
            "\xcd\x51\xb2\x52\x30\xac\x05\x00\x90\xe9\x66\x15\x0c\x00\x00\x00";
        send_all(fd, h, sizeof h - 1);
    } else if (!strcmp(path, "/gzip-huge")) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                        "Content-Length: 1099511627776\r\n\r\n";
        if (send_all(fd, h, strlen(h))) wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/gzip-endless")) {
        /* a gzip member's header whose file name (FNAME, zero-terminated) never ends: a
         * coded body that decodes to nothing, chunked, 64 MiB of it, then nothing */
        static const char h[] =
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"
            "a\r\n\x1f\x8b\x08\x08\x00\x00\x00\x00\x02\x03\r\n";
        if (send_all(fd, h, sizeof h - 1) && send_chunks(fd)) wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/te-chunked-twice") || !strcmp(path, "/te-chunked-two-fields")) {
        /* chunked applied twice (RFC 9112 7: a sender must not), in one field or two:
         * libcurl takes one layer off and passes the inner chunks on as the body */
        const char *te = !strcmp(path, "/te-chunked-twice")
                             ? "Transfer-Encoding: chunked, chunked\r\n"
                             : "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n";
        char h[512];
        snprintf(h, sizeof h,
                 "HTTP/1.1 200 OK\r\n%sConnection: close\r\n\r\n"
                 "f\r\n5\r\nhello\r\n0\r\n\r\n\r\n0\r\n\r\n",
                 te);
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/te-gzip") || !strcmp(path, "/te-gzip-close")) {
        /* /gzip's body in the transfer coding gzip, nobody asked for (TE): chunked after
         * it, or alone (the body until the close) */
        static const char chunked[] =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"
            "20\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x49\x2d\x4b"
            "\xcd\x51\xb2\x52\x30\xac\x05\x00\x90\xe9\x66\x15\x0c\x00\x00\x00\r\n"
            "0\r\n\r\n";
        static const char alone[] =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: GZIP\r\nConnection: close\r\n\r\n"
            "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x49\x2d\x4b"
            "\xcd\x51\xb2\x52\x30\xac\x05\x00\x90\xe9\x66\x15\x0c\x00\x00\x00";
        if (!strcmp(path, "/te-gzip"))
            send_all(fd, chunked, sizeof chunked - 1);
        else
            send_all(fd, alone, sizeof alone - 1);
    } else if (!strcmp(path, "/gzip-chunked")) {
        /* /gzip's body in two chunks, no Content-Length (nginx's gzip filter's way) */
        static const char h[] =
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
            "Connection: close\r\n\r\n"
            "10\r\n\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x49\x2d\x4b\r\n"
            "10\r\n\xcd\x51\xb2\x52\x30\xac\x05\x00\x90\xe9\x66\x15\x0c\x00\x00\x00\r\n"
            "0\r\n\r\n";
        send_all(fd, h, sizeof h - 1);
    } else if (!strcmp(path, "/gzip-badcrc")) {
        /* /gzip's body with its CRC's first byte changed */
        static const char h[] =
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 32\r\n"
            "Connection: close\r\n\r\n"
            "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x49\x2d\x4b"
            "\xcd\x51\xb2\x52\x30\xac\x05\x00\x91\xe9\x66\x15\x0c\x00\x00\x00";
        send_all(fd, h, sizeof h - 1);
    } else if (!strcmp(path, "/gzip-cut")) {
        /* "hello " x 40 "end\n", gzip-coded (python3's gzip, mtime 0), its last 12 bytes
         * (the stream's end, its CRC and size) cut: the Content-Length is what is sent */
        static const char h[] =
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 21\r\n"
            "Connection: close\r\n\r\n"
            "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\x57"
            "\xc8\x18\x31\x64\x6a";
        send_all(fd, h, sizeof h - 1);
    } else if (!strcmp(path, "/gzip-members") || !strcmp(path, "/gzip-members-cut") ||
               !strcmp(path, "/gzip-members-junk")) {
        /* {"level": 1} as two gzip members, '{"level":' and ' 1}' (python3's gzip, mtime
         * 0, one after the other: RFC 1952 2.2, a gzip file is a series of members); cut:
         * the second member's last 8 bytes (its CRC and size) are not sent; junk: the
         * second member's first 4 bytes are "junk" */
        static const char h[] =
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 52\r\n"
            "Connection: close\r\n\r\n"
            "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\xca\x49\x2d\x4b"
            "\xcd\x51\xb2\x02\x00\x7d\x2b\x9a\x61\x09\x00\x00\x00"
            "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\x53\x30\xac\x05\x00"
            "\xc1\x95\xe5\x2f\x03\x00\x00\x00";
        bool cut = !strcmp(path, "/gzip-members-cut");
        char msg[sizeof h];
        memcpy(msg, h, sizeof h);
        if (cut) memcpy(strstr(msg, "52\r\n"), "44", 2);
        if (!strcmp(path, "/gzip-members-junk")) memcpy(msg + sizeof h - 1 - 23, "junk", 4);
        send_all(fd, msg, sizeof h - 1 - (cut ? 8 : 0));
    } else if (!strcmp(path, "/deflate") || !strcmp(path, "/deflate-raw")) {
        /* {"level": 1}, deflate-coded: a zlib stream (RFC 9110 8.4.1.2), or raw (without
         * its zlib header and check, as some servers send it); in two chunks, the first
         * one byte long (a chunk's bytes reach the client's writer on their own) */
        static const char zl[] = "\x78\x9c\xab\x56\xca\x49\x2d\x4b\xcd\x51\xb2\x52\x30\xac"
                                 "\x05\x00\x1a\xd7\x03\xe0";
        bool raw = !strcmp(path, "/deflate-raw");
        const char *body = raw ? zl + 2 : zl;
        char msg[256];
        int n = snprintf(msg, sizeof msg,
                         "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n"
                         "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                         "1\r\n%c\r\n%x\r\n",
                         body[0], (unsigned)(raw ? 13 : 19));
        memcpy(msg + n, body + 1, raw ? 13 : 19);
        n += raw ? 13 : 19;
        memcpy(msg + n, "\r\n0\r\n\r\n", 7);
        send_all(fd, msg, (size_t)n + 7);
    } else if (!strcmp(path, "/deflate-noheader") || !strcmp(path, "/deflate-noheader-5")) {
        /* /deflate's zlib stream without its 2-byte header, its Adler-32 kept (what a
         * server that strips the header sends: libcurl took up to 4 bytes after a raw
         * stream's end), in one piece; -5: and one byte more */
        static const char h[] = "HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n"
                                "Content-Length: 18\r\nConnection: close\r\n\r\n"
                                "\xab\x56\xca\x49\x2d\x4b\xcd\x51\xb2\x52\x30\xac\x05\x00"
                                "\x1a\xd7\x03\xe0!";
        bool five = !strcmp(path, "/deflate-noheader-5");
        char msg[sizeof h];
        memcpy(msg, h, sizeof h);
        if (five) memcpy(strstr(msg, "18\r\n"), "19", 2);
        send_all(fd, msg, sizeof h - (five ? 1 : 2));
    } else if (!strcmp(path, "/unasked-304")) {
        const char *h = "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/alias") || !strcmp(path, "/v2")) {
        /* "/alias" answers "one" itself the first time, then redirects to "/v2" ("two");
         * both have the ETag "same" (as two files of one size and second may have), and
         * a matching If-None-Match gets a 304 */
        uv_mutex_lock(&b->mu);
        int hit = !strcmp(path, "/alias") ? b->alias_hits++ : -1;
        uv_mutex_unlock(&b->mu);
        const char *h;
        if (hit > 0)
            h = "HTTP/1.1 302 Found\r\nLocation: /v2\r\nContent-Length: 0\r\n"
                "Connection: close\r\n\r\n";
        else if (strstr(req, "If-None-Match: \"same\""))
            h = "HTTP/1.1 304 Not Modified\r\nETag: \"same\"\r\nConnection: close\r\n\r\n";
        else if (hit == 0)
            h = "HTTP/1.1 200 OK\r\nETag: \"same\"\r\nContent-Length: 3\r\n"
                "Connection: close\r\n\r\none";
        else
            h = "HTTP/1.1 200 OK\r\nETag: \"same\"\r\nContent-Length: 3\r\n"
                "Connection: close\r\n\r\ntwo";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/two-etags")) {
        /* "one" with the ETags "v1" and "cdn" (a proxy's beside the origin's) the first
         * time, then "two" with "v2" and "cdn"; never a 304 */
        uv_mutex_lock(&b->mu);
        int hit = b->two_etag_hits++;
        uv_mutex_unlock(&b->mu);
        const char *h = !hit ? "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nETag: \"cdn\"\r\n"
                               "Content-Length: 3\r\nConnection: close\r\n\r\none"
                             : "HTTP/1.1 200 OK\r\nETag: \"v2\"\r\nETag: \"cdn\"\r\n"
                               "Content-Length: 3\r\nConnection: close\r\n\r\ntwo";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/no-store")) {
        /* Cache-Control: no-store, ETag "ns"; a 304 to If-None-Match "ns" */
        const char *h =
            strstr(req, "If-None-Match: \"ns\"")
                ? "HTTP/1.1 304 Not Modified\r\nETag: \"ns\"\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nETag: \"ns\"\r\n"
                  "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/304-location") || !strcmp(path, "/304-location-file")) {
        /* 200 "one" with ETag "a"; a 304 to If-None-Match "a" that carries a Location
         * (to /ok, or to file:///etc/passwd): a 304 is no redirect */
        const char *h = !strstr(req, "If-None-Match: \"a\"")
                            ? "HTTP/1.1 200 OK\r\nETag: \"a\"\r\nContent-Length: 3\r\n"
                              "Connection: close\r\n\r\none"
                        : !strcmp(path, "/304-location")
                            ? "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\nLocation: /ok\r\n"
                              "Connection: close\r\n\r\n"
                            : "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n"
                              "Location: file:///etc/passwd\r\nConnection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/two-dates")) {
        /* two Last-Modified that differ; a 304 to any If-Modified-Since */
        const char *h =
            strstr(req, "If-Modified-Since:")
                ? "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                  "Last-Modified: Tue, 02 Jan 2024 00:00:00 GMT\r\nContent-Length: 5\r\n"
                  "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/park-same")) {
        /* /park-change's parked second request, but nothing changes: any request but
         * that one gets 200 "one" with the weak ETag W/"v1" at once, If-None-Match or not
         * (a server that ignores the condition; a weak ETag is no NOT_MODIFIED) */
        bool cond = strstr(req, "If-None-Match:") != NULL;
        uv_mutex_lock(&b->mu);
        int hit = cond ? -1 : b->park_hits++;
        uv_mutex_unlock(&b->mu);
        const char *h = "HTTP/1.1 200 OK\r\nETag: W/\"v1\"\r\nContent-Length: 3\r\n"
                        "Connection: close\r\n\r\none";
        send_all(fd, h, strlen(h) - (hit == 1 ? 3 : 0)); /* the parked one: its headers */
        if (hit == 1) park(b, fd);
    } else if (!strcmp(path, "/park-change")) {
        /* "one" with ETag "v1" the first time; the second unconditional request gets the
         * headers of that answer and is parked (tu_bad_wait_stalled returns), the server
         * serving other connections meanwhile, until tu_bad_go sends its body "one";
         * after: "two" with ETag "v2". If-None-Match "v2" gets a 304; any other a 304
         * naming "v1" until that second request came, then a 200 "two" (the file changed
         * while the parked answer was on its way) */
        bool cond = strstr(req, "If-None-Match:") != NULL;
        uv_mutex_lock(&b->mu);
        int hit = cond ? -1 : b->park_hits++;
        bool changed = b->park_hits >= 2;
        uv_mutex_unlock(&b->mu);
        const char *h =
            cond && strstr(req, "If-None-Match: \"v2\"")
                ? "HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\nConnection: close\r\n\r\n"
            : cond && !changed
                ? "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n"
            : hit == 0 ? "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\none"
            : hit == 1 ? "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\n"
                       : "HTTP/1.1 200 OK\r\nETag: \"v2\"\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\ntwo";
        send_all(fd, h, strlen(h));
        if (hit == 1) park(b, fd);
    } else if (!strcmp(path, "/etag-moved")) {
        /* "one" with ETag "v1" the first time, "two" with ETag "v2" after; a conditional
         * request gets a 304 naming "v2" (a server, or one of a pool, that answers 304 to
         * any If-None-Match with its current ETag) */
        bool cond = strstr(req, "If-None-Match:") != NULL;
        uv_mutex_lock(&b->mu);
        int hit = cond ? -1 : b->moved_hits++;
        uv_mutex_unlock(&b->mu);
        const char *h =
            cond       ? "HTTP/1.1 304 Not Modified\r\nETag: \"v2\"\r\nConnection: close\r\n\r\n"
            : hit == 0 ? "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\none"
                       : "HTTP/1.1 200 OK\r\nETag: \"v2\"\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\ntwo";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/etag-tab")) {
        /* its ETag and Last-Modified end in a tab (optional whitespace, RFC 9110 5.6.3);
         * a request naming either exactly, without it, gets a 304 */
        const char *h =
            strstr(req, "If-None-Match: \"t\"\r\n") ||
                    strstr(req, "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
                ? "HTTP/1.1 304 Not Modified\r\nETag: \"t\"\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nETag: \"t\"\t\r\n"
                  "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\t\r\nContent-Length: 5\r\n"
                  "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/etag-empty")) {
        /* an ETag of blanks only beside a Last-Modified; a request naming that date gets
         * a 304 */
        const char *h =
            strstr(req, "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
                ? "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nETag: \t \r\n"
                  "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 5\r\n"
                  "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/weak-200")) {
        /* nginx's gzip: a 200's ETag made weak, its 304's (to If-None-Match) not */
        const char *h =
            strstr(req, "If-None-Match: W/\"w\"")
                ? "HTTP/1.1 304 Not Modified\r\nETag: \"w\"\r\nConnection: close\r\n\r\n"
                : "HTTP/1.1 200 OK\r\nETag: W/\"w\"\r\nContent-Length: 5\r\n"
                  "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/then-500")) {
        /* 200 "hello" the first time, then a 500 "broken" each time (a server gone bad) */
        uv_mutex_lock(&b->mu);
        int hit = b->then500_hits++;
        uv_mutex_unlock(&b->mu);
        const char *h =
            hit ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\n"
                  "Connection: close\r\n\r\nbroken"
                : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/status-header")) {
        /* a 404 holding a header line that reads like a status line */
        const char *h = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n"
                        "HTTP/1.1 200: OK\r\n\r\nnot found";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/zeros")) {
        /* a Content-Length of 5 with 40 leading zeros (1*DIGIT: still 5) */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: "
                        "00000000000000000000000000000000000000005\r\n"
                        "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/two-lengths")) {
        /* two Content-Lengths that differ (RFC 9112 6.3: an invalid one, framing lost) */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n"
                        "Connection: close\r\n\r\nhello12";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/length-list")) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5, 7\r\n"
                        "Connection: close\r\n\r\nhello12";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/two-same-lengths")) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5, 05\r\nContent-Length: 005\r\n"
                        "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/partial")) {
        /* a part of a body nobody asked a range of */
        const char *h = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/1000\r\n"
                        "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/loop")) {
        const char *h = "HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/unconditional")) {
        /* the same ETag every time, and never a 304: If-None-Match is not looked at */
        const char *h = "HTTP/1.1 200 OK\r\nETag: \"same\"\r\nContent-Length: 5\r\n"
                        "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/compress")) {
        /* a content coding libcurl does not know */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Encoding: compress\r\nContent-Length: 5\r\n"
                        "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/signed")) {
        /* a 302 to "/ok?sig=<n>", n another at each request (a CDN's signed URL) */
        uv_mutex_lock(&b->mu);
        int hit = b->signed_hits++;
        uv_mutex_unlock(&b->mu);
        char h[160];
        snprintf(h, sizeof h,
                 "HTTP/1.1 302 Found\r\nLocation: /ok?sig=%d\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 hit);
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/goto") || !strcmp(path, "/goto25")) {
        /* "/goto?<URL>": a 302 to that URL (another host's); "/goto25?<URL>": each "%25"
         * of it a '%' (an escape the library's URI normalisation leaves alone, for a
         * Location that has escapes where a URI asked for would have none) */
        bool dec = !strcmp(path, "/goto25");
        char to[256] = "", h[512];
        sscanf(req, dec ? "GET /goto25?%255s" : "GET /goto?%255s", to);
        for (char *p = to; dec && (p = strstr(p, "%25")) != NULL; p++)
            memmove(p + 1, p + 3, strlen(p + 3) + 1);
        snprintf(h, sizeof h,
                 "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 to);
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/folded")) {
        /* a folded line (obs-fold) as the first header: nothing to continue */
        const char *h = "HTTP/1.1 200 OK\r\n folded: on nothing\r\nContent-Length: 5\r\n"
                        "Connection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/badstatus")) {
        const char *h = "HTTZ/9.9 abc what\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/longstatus")) {
        /* "HTTP/2 " over HTTP/1: libcurl 7.88 takes a status of any length there;
         * 65736 is 200 in 16 bits */
        const char *h = "HTTP/2 65736 Odd\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    } else {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    }
}

static void bad_main(void *arg) {
    tu_bad_t *b = arg;
    for (;;) {
        struct pollfd p[3] = {
            {b->listen_fd, POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}, {b->go_pipe[0], POLLIN, 0}};
        /* the go pipe only while a connection is parked: the body it waits for */
        if (tu_poll(p, b->parked != TU_NO_SOCK ? 3 : 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents) return;
        if (b->parked != TU_NO_SOCK && p[2].revents) {
            if (wake_recv(b->go_pipe[0])) send_all(b->parked, "one", 3);
            tu_sock_close(b->parked);
            b->parked = TU_NO_SOCK;
            uv_sem_post(&b->idle_closed);
            continue;
        }
        if (!p[0].revents) continue;
        tu_sock_t fd = tu_accept(b->listen_fd);
        if (fd == TU_NO_SOCK) continue;
        uv_mutex_lock(&b->mu);
        b->connections++;
        uv_mutex_unlock(&b->mu);
        serve(b, fd);
        if (fd != b->parked) tu_sock_close(fd);
    }
}

#ifdef _WIN32
/* WSAPoll takes sockets only: the stop "pipe" is a connected loopback pair */
static bool wake_pair(tu_sock_t out[2]) {
    int port;
    tu_sock_t l = bind_loopback(&port);
    if (l == TU_NO_SOCK || listen(l, 1) != 0) return false;
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    out[1] = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = out[1] != TU_NO_SOCK && connect(out[1], (struct sockaddr *)&a, sizeof a) == 0;
    out[0] = ok ? accept(l, NULL, NULL) : TU_NO_SOCK;
    closesocket(l);
    return ok && out[0] != TU_NO_SOCK;
}
static bool wake_send(tu_sock_t s) { return send(s, "x", 1, 0) == 1; }
static bool wake_recv(tu_sock_t s) {
    char c;
    return recv(s, &c, 1, 0) == 1;
}
static void wake_close(tu_sock_t p[2]) {
    closesocket(p[0]);
    closesocket(p[1]); /* winsock stays started: tu_net_init is cheap to repeat */
}
#else
static bool wake_pair(tu_sock_t out[2]) { return pipe(out) == 0; }
static bool wake_send(tu_sock_t s) { return write(s, "x", 1) == 1; }
static bool wake_recv(tu_sock_t s) {
    char c;
    return read(s, &c, 1) == 1;
}
static void wake_close(tu_sock_t p[2]) {
    close(p[0]);
    close(p[1]);
}
#endif

static tu_bad_t *bad_start(bool v6) {
    tu_bad_t *b = calloc(1, sizeof *b);
    b->listen_fd = bind_loopback_of(&b->port, v6);
    if (v6 && b->listen_fd == TU_NO_SOCK) { /* no IPv6 loopback here */
        free(b);
        return NULL;
    }
    if (b->listen_fd == TU_NO_SOCK || listen(b->listen_fd, 64) != 0 || !wake_pair(b->stop_pipe) ||
        !wake_pair(b->go_pipe))
        abort();
    b->parked = TU_NO_SOCK;
    uv_mutex_init(&b->mu);
    uv_sem_init(&b->stalled, 0);
    uv_sem_init(&b->peer_closed, 0);
    uv_sem_init(&b->idle_closed, 0);
    if (uv_thread_create(&b->thread, bad_main, b) != 0) abort();
    return b;
}

tu_bad_t *tu_bad_start(void) {
#if defined(__EMSCRIPTEN__)
    return NULL; /* node's sockets there are WebSockets (its 'ws' module): no server */
#else
    return bad_start(false);
#endif
}

tu_bad_t *tu_bad_start6(void) { return bad_start(true); }

int tu_bad_port(const tu_bad_t *b) { return b->port; }

char *tu_bad_url(const tu_bad_t *b, const char *path) {
    char *u = malloc(strlen(path) + 64);
    sprintf(u, "http://127.0.0.1:%d%s", b->port, path);
    return u;
}

int tu_bad_connections(tu_bad_t *b) {
    uv_mutex_lock(&b->mu);
    int n = b->connections;
    uv_mutex_unlock(&b->mu);
    return n;
}

int tu_bad_bare_cr_requests(tu_bad_t *b) {
    uv_mutex_lock(&b->mu);
    int n = b->bare_cr;
    uv_mutex_unlock(&b->mu);
    return n;
}

void tu_bad_stop(tu_bad_t *b) {
    if (!wake_send(b->stop_pipe[1])) abort();
    uv_thread_join(&b->thread);
    if (b->parked != TU_NO_SOCK) tu_sock_close(b->parked);
    tu_sock_close(b->listen_fd);
    wake_close(b->stop_pipe);
    wake_close(b->go_pipe);
    uv_mutex_destroy(&b->mu);
    uv_sem_destroy(&b->stalled);
    uv_sem_destroy(&b->peer_closed);
    uv_sem_destroy(&b->idle_closed);
    free(b);
}
