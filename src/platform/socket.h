/* platform/socket.h - the socket part of the platform layer, for the HTTP source (the
 * I/O thread). Apart from platform.h because it needs libcurl's curl_socket_t (int on
 * POSIX, SOCKET on Windows) and the web build has no libcurl. */
#ifndef ASSET_PLATFORM_SOCKET_H
#define ASSET_PLATFORM_SOCKET_H

#include <curl/curl.h>
#include <stdbool.h>

/* socket() for libcurl's CURLOPT_OPENSOCKETFUNCTION, never inherited by a child
 * process, not even one made by another thread as it returns (close-on-exec on POSIX,
 * in the call where the OS can; on Windows, where socket() makes inheritable sockets,
 * WSA_FLAG_NO_HANDLE_INHERIT); on failure *err is the reason as an errno value
 * (EMFILE...; Windows' WSA errors mapped), else 0. */
curl_socket_t asset__socket_open(int family, int socktype, int protocol, int *err);
#ifdef _WIN32
/* Test hook (Windows): called with each socket asset__socket_open makes, as soon as it
 * exists (what a process created at that instant would inherit). NULL otherwise. */
extern void (*asset__socket_made_hook)(curl_socket_t s);
#endif
/* Closes a socket of asset__socket_open (libcurl's CURLOPT_CLOSESOCKETFUNCTION).
 * Returns 0, or -1. */
int asset__socket_close(curl_socket_t s);
/* Whether bytes are waiting to be read on the connected socket s (a peek: nothing is
 * consumed, and it does not block). False for none, an end of stream or an error. */
bool asset__socket_has_bytes(curl_socket_t s);
/* The local port of the connected socket s (getsockname), 0 when it cannot be read. */
int asset__socket_local_port(curl_socket_t s);
/* Shuts both directions of the connected socket s (it stays open: its owner closes it).
 * The next send on it fails, and a read sees the bytes already waiting, then its end. */
void asset__socket_shutdown(curl_socket_t s);
/* The index of the network interface named name (if_nametoindex: "lo" is 1 on Linux),
 * 0 when there is none: an IPv6 zone id as libcurl reads it (the HTTP source's per-host
 * key). Any thread. */
unsigned asset__if_index(const char *name);

#endif
