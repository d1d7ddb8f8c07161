/* platform/sys_win32.c - platform.h's non-file parts on Windows: sockets, interfaces. */
#include "platform.h"
#include "socket.h"

#include <errno.h>
#include <winsock2.h>
#include <ws2tcpip.h> /* sockaddr_in6 */
#include <iphlpapi.h> /* if_nametoindex (after winsock2.h) */

void (*asset__socket_made_hook)(curl_socket_t s) = NULL;

/* Made not inheritable in the call that makes it (WSA_FLAG_NO_HANDLE_INHERIT, Windows 7
 * SP1 and later), as SOCK_CLOEXEC on POSIX: socket() makes an inheritable socket, and a
 * process another thread of the host created before the flag was cleared (CreateProcess
 * with bInheritHandles, as any program that reads a child's output does) kept the
 * connection open until it exited (thirty-eighth review). WSA_FLAG_OVERLAPPED: what
 * socket() gives. A Windows that knows no such flag (WSAEINVAL) gets socket(), and the
 * flag is cleared after in every case. */
curl_socket_t asset__socket_open(int family, int socktype, int protocol, int *err) {
    SOCKET s = WSASocketW(family, socktype, protocol, NULL, 0,
                          WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
    if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL)
        s = socket(family, socktype, protocol);
    *err = 0;
    if (s == INVALID_SOCKET) {
        int e = WSAGetLastError();
        *err = e == WSAEMFILE ? EMFILE : e == WSAENOBUFS ? ENOBUFS : e == WSAEACCES ? EACCES : EIO;
    } else {
        if (asset__socket_made_hook) asset__socket_made_hook(s);
        (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
    }
    return s;
}

int asset__socket_close(curl_socket_t s) { return closesocket(s) == 0 ? 0 : -1; }

/* libcurl's sockets are non-blocking: a peek with nothing waiting fails (WSAEWOULDBLOCK) */
bool asset__socket_has_bytes(curl_socket_t s) {
    char c;
    return recv(s, &c, 1, MSG_PEEK) > 0;
}

int asset__socket_local_port(curl_socket_t s) {
    struct sockaddr_storage a;
    int n = sizeof a;
    if (getsockname(s, (struct sockaddr *)&a, &n) != 0) return 0;
    if (a.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&a)->sin_port);
    if (a.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
    return 0;
}

void asset__socket_shutdown(curl_socket_t s) { (void)shutdown(s, SD_BOTH); }

unsigned asset__if_index(const char *name) { return (unsigned)if_nametoindex(name); }
