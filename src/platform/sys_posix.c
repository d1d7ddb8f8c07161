/* platform/sys_posix.c - platform.h's non-file parts on POSIX: sockets, interfaces. */
#include "platform.h"
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h> /* if_nametoindex */
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

unsigned asset__if_index(const char *name) { return if_nametoindex(name); }
