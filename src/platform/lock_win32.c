/* platform/lock_win32.c - platform.h's locks on Windows. */
#include "platform.h"

#include <windows.h>

int asset__mutex_init_hot(uv_mutex_t *m) {
    /* a uv_mutex_t is a critical section: a contended one spins this many times before
     * it waits on its event (the count the Windows heap uses for its own lock); it
     * cannot fail since Windows Vista */
    InitializeCriticalSectionAndSpinCount(m, 4000);
    return 0;
}
