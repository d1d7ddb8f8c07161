/* uv.h (web build only) - the small part of libuv the library uses, for Emscripten,
 * where there is no libuv. This directory comes first on the include path of the web
 * targets, so the core's `#include <uv.h>` lands here and no call site changes.
 *
 *   - locks, conditions, semaphores, threads, once: pthreads. Without -pthread
 *     (the single-threaded mode) Emscripten's pthread functions are stubs: locks are
 *     free, thread creation fails, and a condition wait could only spin forever, so
 *     uv_cond_wait aborts with a message instead (the pool never reaches one there:
 *     src/web/pool_web.c runs jobs where a desktop build would block).
 *   - uv_hrtime: emscripten_get_now().
 *   - loop handles (reload.c's timers and watches), implemented in src/web/uv_web.c:
 *     timers run on the JS event loop of the thread that owns the loop; file watching
 *     returns UV_ENOSYS (the web has no file events: reload falls back to polling).
 */
#ifndef ASSET_WEB_UV_H
#define ASSET_WEB_UV_H

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#define UV_ENOMEM (-ENOMEM)
#define UV_ENOSYS (-ENOSYS)
#define UV_EAGAIN (-EAGAIN)
#define UV_ETIMEDOUT (-ETIMEDOUT)
#define UV_EINVAL (-EINVAL)
#define UV_EMFILE (-EMFILE)
#define UV_ENOSPC (-ENOSPC)
#define UV_EBADF (-EBADF)
#define UV_EBUSY (-EBUSY)
#define UV_ENOENT (-ENOENT)
#define UV_ENOTDIR (-ENOTDIR)
#define UV_ENAMETOOLONG (-ENAMETOOLONG)

typedef pthread_mutex_t uv_mutex_t;
typedef pthread_cond_t uv_cond_t;
typedef pthread_t uv_thread_t;
typedef pthread_once_t uv_once_t;
typedef sem_t uv_sem_t;
#define UV_ONCE_INIT PTHREAD_ONCE_INIT

uint64_t uv_hrtime(void);
void uv_sleep(unsigned int msec); /* nanosleep */
const char *uv_strerror(int err);

static inline int uv_mutex_init(uv_mutex_t *m) { return -pthread_mutex_init(m, NULL); }
static inline void uv_mutex_destroy(uv_mutex_t *m) { pthread_mutex_destroy(m); }
static inline void uv_mutex_lock(uv_mutex_t *m) { pthread_mutex_lock(m); }
static inline void uv_mutex_unlock(uv_mutex_t *m) { pthread_mutex_unlock(m); }
/* 0, or UV_EBUSY when held (by this thread too: a pthread mutex is not recursive) */
static inline int uv_mutex_trylock(uv_mutex_t *m) { return -pthread_mutex_trylock(m); }
/* timed waits on CLOCK_MONOTONIC, as libuv's: on CLOCK_REALTIME (the default) a wall
 * clock set back during a wait made it last as long as the step back (uv_web.c) */
int uv_cond_init(uv_cond_t *c);
static inline void uv_cond_destroy(uv_cond_t *c) { pthread_cond_destroy(c); }
static inline void uv_cond_signal(uv_cond_t *c) { pthread_cond_signal(c); }
static inline void uv_cond_broadcast(uv_cond_t *c) { pthread_cond_broadcast(c); }
void uv_cond_wait(uv_cond_t *c, uv_mutex_t *m);
int uv_cond_timedwait(uv_cond_t *c, uv_mutex_t *m, uint64_t timeout_ns);
static inline int uv_sem_init(uv_sem_t *s, unsigned v) { return sem_init(s, 0, v) ? -errno : 0; }
static inline void uv_sem_destroy(uv_sem_t *s) { sem_destroy(s); }
static inline void uv_sem_post(uv_sem_t *s) { sem_post(s); }
void uv_sem_wait(uv_sem_t *s);
static inline int uv_sem_trywait(uv_sem_t *s) { return sem_trywait(s) ? UV_EAGAIN : 0; }
#ifdef __EMSCRIPTEN_PTHREADS__
typedef pthread_barrier_t uv_barrier_t;
static inline int uv_barrier_init(uv_barrier_t *b, unsigned n) {
    return -pthread_barrier_init(b, NULL, n);
}
static inline void uv_barrier_destroy(uv_barrier_t *b) { pthread_barrier_destroy(b); }
static inline int uv_barrier_wait(uv_barrier_t *b) {
    return pthread_barrier_wait(b) == PTHREAD_BARRIER_SERIAL_THREAD;
}
#endif
static inline void uv_once(uv_once_t *o, void (*fn)(void)) { pthread_once(o, fn); }
typedef void (*uv_thread_cb)(void *arg);
int uv_thread_create(uv_thread_t *t, uv_thread_cb fn, void *arg);
enum { UV_THREAD_NO_FLAGS = 0x00, UV_THREAD_HAS_STACK_SIZE = 0x01 };
typedef struct uv_thread_options_s {
    unsigned int flags;
    size_t stack_size;
} uv_thread_options_t;
int uv_thread_create_ex(uv_thread_t *t, const uv_thread_options_t *o, uv_thread_cb fn, void *arg);
static inline int uv_thread_join(uv_thread_t *t) { return -pthread_join(*t, NULL); }
static inline uv_thread_t uv_thread_self(void) { return pthread_self(); }
static inline int uv_thread_equal(const uv_thread_t *a, const uv_thread_t *b) {
    return pthread_equal(*a, *b);
}

/* ---- loop handles (uv_web.c) ---- */
typedef struct uv_loop_s uv_loop_t;
typedef struct uv_handle_s uv_handle_t;
typedef void (*uv_close_cb)(uv_handle_t *h);

#define UV__HANDLE_FIELDS    \
    void *data;              \
    uv_loop_t *loop;         \
    int type; /* 1: timer */ \
    uv_close_cb close_cb;    \
    uv_handle_t *close_next; \
    int closing;

struct uv_handle_s {
    UV__HANDLE_FIELDS
};

struct uv_loop_s {
    void *data;
    uv_handle_t *closing; /* closed handles whose callbacks have not run yet */
};
/* The owner of the loop (src/web/io_web.c) calls this at the end of every turn and
 * when it stops: runs the pending close callbacks, like the end of a uv_run turn. */
void uv__web_run_closing(uv_loop_t *loop);
/* Around a timer's callback (web/io_web.c): it runs as the loop's server's I/O thread.
 * Returns what leave restores. */
void *uv__web_loop_enter(uv_loop_t *loop);
void uv__web_loop_leave(void *prev);

typedef struct uv_timer_s uv_timer_t;
typedef void (*uv_timer_cb)(uv_timer_t *t);
struct uv_timer_s {
    UV__HANDLE_FIELDS
    uv_timer_cb cb;
    uint64_t repeat;
    long js_id;    /* emscripten_set_timeout id, 0 when not armed */
    uint64_t left; /* ms still to wait when js_id fires (setTimeout's delays end at 2^31 - 1) */
};

typedef struct {
    int64_t tv_sec, tv_nsec;
} uv_timespec_t;
typedef struct {
    uint64_t st_dev, st_ino;
    uint64_t st_size;
    uint64_t st_mode;
    uv_timespec_t st_mtim;
} uv_stat_t;
/* a synchronous stat only (cb NULL), for reload.c's watched directories: there are
 * none on the web (it fails UV_ENOSYS, and so does uv_fs_event_start) */
typedef struct {
    uv_stat_t statbuf;
} uv_fs_t;
typedef void (*uv_fs_cb)(uv_fs_t *req);

typedef struct uv_fs_event_s uv_fs_event_t;
typedef void (*uv_fs_event_cb)(uv_fs_event_t *h, const char *filename, int events, int status);
struct uv_fs_event_s {
    UV__HANDLE_FIELDS
};
typedef struct uv_fs_poll_s uv_fs_poll_t;
typedef void (*uv_fs_poll_cb)(uv_fs_poll_t *h, int status, const uv_stat_t *prev,
                              const uv_stat_t *curr);
struct uv_fs_poll_s {
    UV__HANDLE_FIELDS
};
enum { UV_RENAME = 1, UV_CHANGE = 2 };

int uv_timer_init(uv_loop_t *loop, uv_timer_t *t);
int uv_timer_start(uv_timer_t *t, uv_timer_cb cb, uint64_t timeout_ms, uint64_t repeat_ms);
int uv_timer_stop(uv_timer_t *t);
int uv_fs_event_init(uv_loop_t *loop, uv_fs_event_t *h);
int uv_fs_event_start(uv_fs_event_t *h, uv_fs_event_cb cb, const char *path, unsigned flags);
int uv_fs_event_stop(uv_fs_event_t *h);
int uv_fs_poll_init(uv_loop_t *loop, uv_fs_poll_t *h);
int uv_fs_poll_start(uv_fs_poll_t *h, uv_fs_poll_cb cb, const char *path, unsigned interval_ms);
int uv_fs_stat(uv_loop_t *loop, uv_fs_t *req, const char *path, uv_fs_cb cb);
void uv_fs_req_cleanup(uv_fs_t *req);
/* The close callback runs at the end of the loop's turn (uv__web_run_closing). */
void uv_close(uv_handle_t *h, uv_close_cb cb);

#endif
