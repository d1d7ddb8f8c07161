/* tu_web_stubs.c - what Emscripten's libc declares but does not define, for the desktop
 * test helpers compiled into the node programs unchanged. tests/tu_http.c calls prctl()
 * only in a forked child, and fork() fails under node (it then uses the nginx of
 * run-node-suites.sh, ASSET_TEST_HTTP_BASE), so this is never reached in practice. */
#include <errno.h>
#include <sys/prctl.h>

int prctl(int option, ...) {
    (void)option;
    errno = ENOSYS;
    return -1;
}
