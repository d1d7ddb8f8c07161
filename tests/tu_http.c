/* tu_http.c - see tu_http.h. */
#include "tu_http.h"
#include "test_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static int bind_loopback(int *port_out) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port_out = ntohs(a.sin_port);
    return fd;
}

int tu_closed_port(void) {
    int port = 0;
    int fd = bind_loopback(&port);
    if (fd >= 0) close(fd);
    return port;
}

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

/* An nginx started outside the test ($ASSET_TEST_HTTP_BASE, its document root in
 * $ASSET_TEST_HTTP_ROOT; see tu_http.h), used instead of forking one. */
static bool nginx_external(tu_nginx_t *n, const char *base) {
    const char *root = getenv("ASSET_TEST_HTTP_ROOT");
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/') len--;
    if (!root || !*root || len >= sizeof n->base) {
        fprintf(stderr,
                "tu_nginx_start: ASSET_TEST_HTTP_BASE=%s needs ASSET_TEST_HTTP_ROOT "
                "(its document root) and at most %zu characters\n",
                base, sizeof n->base - 1);
        return false;
    }
    memcpy(n->base, base, len);
    n->base[len] = 0;
    const char *colon = strrchr(n->base, ':');
    n->port = colon ? atoi(colon + 1) : 0;
    n->root = strdup(root); /* n->dir stays NULL: tu_nginx_stop removes nothing */
    return true;
}

bool tu_nginx_start(tu_nginx_t *n) {
    memset(n, 0, sizeof *n);
    const char *external = getenv("ASSET_TEST_HTTP_BASE");
    if (external && *external) return nginx_external(n, external);
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
                "    location /status500 { return 500; }\n"
                "    location /redirect-file { return 302 file:///etc/passwd; }\n"
                "    location /redirect-ok { return 302 /hello.txt; }\n"
                "  }\n%s}\n",
                n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->port, n->root,
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
    fprintf(stderr, "tu_nginx_start: nginx did not start (see %s/error.log)\n", n->dir);
    return false;
}

void tu_nginx_stop(tu_nginx_t *n) {
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        waitpid(n->pid, NULL, 0);
    }
    tu_rmrf(n->dir);
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

/* ---- the misbehaving server ---- */

struct tu_bad {
    int listen_fd;
    int port;
    int stop_pipe[2];
    uv_thread_t thread;
    uv_mutex_t mu;
    int connections;
    uv_sem_t stalled, peer_closed;
};

void tu_bad_wait_stalled(tu_bad_t *b) { uv_sem_wait(&b->stalled); }
void tu_bad_wait_peer_closed(tu_bad_t *b) { uv_sem_wait(&b->peer_closed); }

static bool send_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* waits until the client closes or the server stops; returns false on stop */
static bool wait_peer_or_stop(tu_bad_t *b, int fd) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0 && errno != EINTR) return false;
        if (p[1].revents) return false;
        if (p[0].revents) {
            char buf[4096];
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) return true;
        }
    }
}

/* Keep-alive gone wrong: waits until the client sends its next request on this
 * connection (or closes it, or the server stops), then closes without reading it. The
 * unread request makes the kernel answer with a reset, which is what a server that
 * drops idle keep-alive connections looks like to a client reusing one. */
static void close_on_next_request(tu_bad_t *b, int fd) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}};
    while (poll(p, 2, -1) < 0 && errno == EINTR) continue;
}

static void serve(tu_bad_t *b, int fd) {
    char req[4096];
    size_t got = 0;
    while (got < sizeof req - 1) {
        ssize_t r = recv(fd, req + got, sizeof req - 1 - got, 0);
        if (r <= 0) return;
        got += (size_t)r;
        req[got] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char path[256] = "";
    sscanf(req, "GET %255s", path);
    path[strcspn(path, "?")] = 0; /* "/stall?3": distinct URLs, same behaviour */
    if (!strcmp(path, "/short")) {
        const char *h =
            "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n0123456789";
        send_all(fd, h, strlen(h));
    } else if (!strcmp(path, "/stall")) {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc";
        send_all(fd, h, strlen(h));
        uv_sem_post(&b->stalled);
        if (wait_peer_or_stop(b, fd)) uv_sem_post(&b->peer_closed);
    } else if (!strcmp(path, "/huge")) {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n", 51);
        wait_peer_or_stop(b, fd);
    } else if (!strcmp(path, "/endless")) {
        const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (!send_all(fd, h, strlen(h))) return;
        static char chunk[8192 + 16];
        int hl = snprintf(chunk, sizeof chunk, "2000\r\n");
        memset(chunk + hl, 'x', 8192);
        memcpy(chunk + hl + 8192, "\r\n", 2);
        for (int i = 0; i < 64 * 128; i++) /* 64 MiB at most */
            if (!send_all(fd, chunk, (size_t)hl + 8192 + 2)) break;
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
    } else if (!strcmp(path, "/bigheader")) {
        /* one 300 KB header line: more than libcurl buffers for a header (100 KiB) */
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Big: ";
        size_t n = 300 * 1000;
        char *big = malloc(n);
        memset(big, 'a', n);
        if (send_all(fd, h, strlen(h)) && send_all(fd, big, n)) send_all(fd, "\r\n\r\nhello", 9);
        free(big);
    } else if (!strcmp(path, "/badstatus")) {
        const char *h = "HTTZ/9.9 abc what\r\n\r\n";
        send_all(fd, h, strlen(h));
    } else {
        const char *h = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        send_all(fd, h, strlen(h));
    }
}

static void bad_main(void *arg) {
    tu_bad_t *b = arg;
    for (;;) {
        struct pollfd p[2] = {{b->listen_fd, POLLIN, 0}, {b->stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (p[1].revents) return;
        int fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        uv_mutex_lock(&b->mu);
        b->connections++;
        uv_mutex_unlock(&b->mu);
        serve(b, fd);
        close(fd);
    }
}

tu_bad_t *tu_bad_start(void) {
    tu_bad_t *b = calloc(1, sizeof *b);
    b->listen_fd = bind_loopback(&b->port);
    if (b->listen_fd < 0 || listen(b->listen_fd, 64) != 0 || pipe(b->stop_pipe) != 0) abort();
    uv_mutex_init(&b->mu);
    uv_sem_init(&b->stalled, 0);
    uv_sem_init(&b->peer_closed, 0);
    if (uv_thread_create(&b->thread, bad_main, b) != 0) abort();
    return b;
}

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

void tu_bad_stop(tu_bad_t *b) {
    if (write(b->stop_pipe[1], "x", 1) != 1) abort();
    uv_thread_join(&b->thread);
    close(b->listen_fd);
    close(b->stop_pipe[0]);
    close(b->stop_pipe[1]);
    uv_mutex_destroy(&b->mu);
    uv_sem_destroy(&b->stalled);
    uv_sem_destroy(&b->peer_closed);
    free(b);
}
