/* platform/lock_posix.c - platform.h's locks on POSIX (Linux, macOS, the BSDs, and the
 * web build's pthreads). */
#include "platform.h"

#include <pthread.h>

int asset__mutex_init_hot(uv_mutex_t *m) {
#if defined(__GLIBC__)
    /* glibc's adaptive mutex: a contended lock spins a short while (while its holder
     * runs on another core) before the futex sleep */
    pthread_mutexattr_t a;
    int rc = pthread_mutexattr_init(&a);
    if (rc) return -rc;
    rc = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    if (!rc) rc = pthread_mutex_init(m, &a);
    pthread_mutexattr_destroy(&a);
    return -rc;
#else
    return uv_mutex_init(m); /* other C libraries: their default mutex */
#endif
}
