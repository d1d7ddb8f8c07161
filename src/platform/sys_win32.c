/* platform/sys_win32.c - platform.h's non-file parts on Windows: sockets, interfaces. */
#include "platform.h"
#include "socket.h"

#include <errno.h>
#include <winsock2.h>
#include <iphlpapi.h> /* if_nametoindex (after winsock2.h) */

curl_socket_t asset__socket_open(int family, int socktype, int protocol, int *err) {
    SOCKET s = socket(family, socktype, protocol);
    *err = 0;
    if (s == INVALID_SOCKET) {
        int e = WSAGetLastError();
        *err = e == WSAEMFILE ? EMFILE : e == WSAENOBUFS ? ENOBUFS : e == WSAEACCES ? EACCES : EIO;
    } else { /* not inherited by child processes, as close-on-exec on POSIX */
        (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    }
    return s;
}

int asset__socket_close(curl_socket_t s) { return closesocket(s) == 0 ? 0 : -1; }

unsigned asset__if_index(const char *name) { return (unsigned)if_nametoindex(name); }
