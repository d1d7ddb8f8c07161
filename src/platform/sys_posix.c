/* platform/sys_posix.c - platform.h's non-file parts on POSIX: sockets, interfaces. */
#include "platform.h"
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h> /* if_nametoindex */
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* Close-on-exec, so that a process the host starts does not inherit the connections:
 * in the one call where the OS can (Linux, the BSDs), else right after (macOS). */
curl_socket_t asset__socket_open(int family, int socktype, int protocol, int *err) {
#ifdef SOCK_CLOEXEC
    curl_socket_t fd = socket(family, socktype | SOCK_CLOEXEC, protocol);
#else
    curl_socket_t fd = socket(family, socktype, protocol);
    if (fd != CURL_SOCKET_BAD) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
    *err = fd == CURL_SOCKET_BAD ? errno : 0;
    return fd;
}

int asset__socket_close(curl_socket_t s) { return close(s) == 0 ? 0 : -1; }

bool asset__socket_has_bytes(curl_socket_t s) {
    char c;
    return recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

int asset__socket_local_port(curl_socket_t s) {
    struct sockaddr_storage a;
    socklen_t n = sizeof a;
    if (getsockname(s, (struct sockaddr *)&a, &n) != 0) return 0;
    if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
    if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return 0;
}

void asset__socket_shutdown(curl_socket_t s) { (void)shutdown(s, SHUT_RDWR); }

unsigned asset__if_index(const char *name) { return if_nametoindex(name); }
