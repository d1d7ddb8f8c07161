/* platform/sys_posix.c - platform.h's non-file parts on POSIX: sockets. */
#include "platform.h"
#include "socket.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

curl_socket_t asset__socket_open(int family, int socktype, int protocol, int *err) {
    curl_socket_t fd = socket(family, socktype, protocol);
    *err = fd == CURL_SOCKET_BAD ? errno : 0;
    return fd;
}

int asset__socket_close(curl_socket_t s) { return close(s) == 0 ? 0 : -1; }
