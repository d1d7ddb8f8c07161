/* web/uv_web.c - the libuv stand-ins of src/web/uv/uv.h that are not inline: time,
 * error strings, waits, threads and the loop handles reload.c uses (timers on the JS
 * event loop of the owning thread; file watching is not available on the web). */
#include <uv.h>

#include <emscripten/emscripten.h>
#include <emscripten/eventloop.h>
#include <emscripten/threading.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t uv_hrtime(void) { return (uint64_t)(emscripten_get_now() * 1e6); }

void uv_sleep(unsigned int msec) {
    struct timespec ts = {(time_t)(msec / 1000), (long)(msec % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *uv_strerror(int err) { return strerror(err < 0 ? -err : err); }

int uv_cond_init(uv_cond_t *c) {
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc) return -rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

#ifdef __EMSCRIPTEN_PTHREADS__
void uv_cond_wait(uv_cond_t *c, uv_mutex_t *m) { pthread_cond_wait(c, m); }

/* the deadline on CLOCK_MONOTONIC, the conditions' clock (uv_cond_init) */
int uv_cond_timedwait(uv_cond_t *c, uv_mutex_t *m, uint64_t timeout_ns) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + timeout_ns % 1000000000u;
    ts.tv_sec += (time_t)(timeout_ns / 1000000000u + ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return pthread_cond_timedwait(c, m, &ts) == ETIMEDOUT ? UV_ETIMEDOUT : 0;
}

void uv_sem_wait(uv_sem_t *s) {
    while (sem_wait(s) != 0 && errno == EINTR) {
    }
}

typedef struct {
    uv_thread_cb fn;
    void *arg;
} tstart_t;

static void *thread_start(void *p) {
    tstart_t t = *(tstart_t *)p;
    free(p);
    t.fn(t.arg);
    return NULL;
}

/* The Web Workers of Emscripten's pool (-sPTHREAD_POOL_SIZE) not running a thread:
 * main thread only (the pool lives there). */
EM_JS(int, js_unused_workers, (void), { return PThread.unusedWorkers.length; });

/* With the pool empty, Emscripten makes a new Worker, and the thread starts only once
 * the main thread returns to its event loop. A program blocked in a wait never does:
 * the I/O thread's start waits for its thread with the server's lock held (asked for
 * by the main thread, or by a worker starting an HTTP read), destroy joins the workers.
 * So a thread the pool cannot give is refused (EAGAIN), as -sPTHREAD_POOL_SIZE_STRICT=2
 * would do. On the main thread, the count and the creation are one step; another
 * thread asks the main thread to take both (as pthread_create itself would be
 * proxied), so two threads cannot both take the last Worker. */
static int create_checked(pthread_t *t, const pthread_attr_t *a, void *arg) {
    if (js_unused_workers() == 0) return EAGAIN;
    return pthread_create(t, a, thread_start, arg);
}

/* its arguments travel as the proxy's 32-bit ints */
_Static_assert(sizeof(void *) == sizeof(int), "wasm32: a pointer fits a proxied int argument");
static int create_on_main(int t, int a, int arg) {
    return create_checked((pthread_t *)(intptr_t)t, (const pthread_attr_t *)(intptr_t)a,
                          (void *)(intptr_t)arg);
}

int uv_thread_create_ex(uv_thread_t *t, const uv_thread_options_t *o, uv_thread_cb fn, void *arg) {
    tstart_t *p = malloc(sizeof *p);
    if (!p) return UV_ENOMEM;
    p->fn = fn;
    p->arg = arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (o && (o->flags & UV_THREAD_HAS_STACK_SIZE) && o->stack_size)
        pthread_attr_setstacksize(&attr, o->stack_size);
    int rc = emscripten_is_main_runtime_thread()
                 ? create_checked(t, &attr, p)
                 : (int)emscripten_sync_run_in_main_runtime_thread(
                       EM_FUNC_SIG_IIII, create_on_main, (int)(intptr_t)t, (int)(intptr_t)&attr,
                       (int)(intptr_t)p);
    pthread_attr_destroy(&attr);
    if (rc) free(p);
    return -rc;
}

int uv_thread_create(uv_thread_t *t, uv_thread_cb fn, void *arg) {
    return uv_thread_create_ex(t, NULL, fn, arg);
}
#else
/* One thread: nobody else can signal. Reaching a wait is a bug of the caller. */
void uv_cond_wait(uv_cond_t *c, uv_mutex_t *m) {
    (void)c;
    (void)m;
    fprintf(stderr, "asset_server (web, single-threaded): a condition wait would block "
                    "forever; nothing else can run while it waits\n");
    abort();
}

int uv_cond_timedwait(uv_cond_t *c, uv_mutex_t *m, uint64_t timeout_ns) {
    (void)c;
    (void)m;
    (void)timeout_ns;
    return UV_ETIMEDOUT;
}

void uv_sem_wait(uv_sem_t *s) {
    if (sem_trywait(s) != 0) uv_cond_wait(NULL, NULL);
}

int uv_thread_create(uv_thread_t *t, uv_thread_cb fn, void *arg) {
    (void)t;
    (void)fn;
    (void)arg;
    return UV_ENOSYS;
}

int uv_thread_create_ex(uv_thread_t *t, const uv_thread_options_t *o, uv_thread_cb fn, void *arg) {
    (void)o;
    return uv_thread_create(t, fn, arg);
}
#endif

/* ---- timers ---- */

/* setTimeout fires a delay past 2^31 - 1 ms (24.8 days) at once: a longer one waits in
 * steps (an http_poll_ms of UINT32_MAX polled every millisecond) */
#define JS_DELAY_MAX 2147483647u

static void timer_fire(void *p);

static void timer_arm(uv_timer_t *t, uint64_t ms) {
    t->left = ms > JS_DELAY_MAX ? ms - JS_DELAY_MAX : 0;
    t->js_id =
        emscripten_set_timeout(timer_fire, (double)(ms > JS_DELAY_MAX ? JS_DELAY_MAX : ms), t);
}

static void timer_fire(void *p) {
    uv_timer_t *t = p;
    t->js_id = 0;
    if (t->left) {
        timer_arm(t, t->left);
        return;
    }
    if (t->repeat) timer_arm(t, t->repeat);
    void *prev = uv__web_loop_enter(t->loop);
    t->cb(t);
    uv__web_loop_leave(prev);
}

int uv_timer_init(uv_loop_t *loop, uv_timer_t *t) {
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->type = 1;
    return 0;
}

int uv_timer_stop(uv_timer_t *t) {
    if (t->js_id) emscripten_clear_timeout(t->js_id);
    t->js_id = 0;
    return 0;
}

int uv_timer_start(uv_timer_t *t, uv_timer_cb cb, uint64_t timeout_ms, uint64_t repeat_ms) {
    if (t->closing) return UV_EINVAL;
    uv_timer_stop(t);
    t->cb = cb;
    t->repeat = repeat_ms;
    timer_arm(t, timeout_ms);
    return 0;
}

/* ---- file watching: none on the web ---- */

int uv_fs_event_init(uv_loop_t *loop, uv_fs_event_t *h) {
    memset(h, 0, sizeof *h);
    h->loop = loop;
    return 0;
}

int uv_fs_event_start(uv_fs_event_t *h, uv_fs_event_cb cb, const char *path, unsigned flags) {
    (void)h;
    (void)cb;
    (void)path;
    (void)flags;
    return UV_ENOSYS;
}

int uv_fs_event_stop(uv_fs_event_t *h) {
    (void)h;
    return 0;
}

int uv_fs_poll_init(uv_loop_t *loop, uv_fs_poll_t *h) {
    memset(h, 0, sizeof *h);
    h->loop = loop;
    return 0;
}

int uv_fs_poll_start(uv_fs_poll_t *h, uv_fs_poll_cb cb, const char *path, unsigned interval_ms) {
    (void)h;
    (void)cb;
    (void)path;
    (void)interval_ms;
    return UV_ENOSYS;
}

int uv_fs_stat(uv_loop_t *loop, uv_fs_t *req, const char *path, uv_fs_cb cb) {
    (void)loop;
    (void)path;
    (void)cb;
    memset(req, 0, sizeof *req);
    return UV_ENOSYS;
}

void uv_fs_req_cleanup(uv_fs_t *req) { (void)req; }

/* ---- close: the callback at the end of the turn, as libuv does ---- */

void uv_close(uv_handle_t *h, uv_close_cb cb) {
    if (h->type == 1) uv_timer_stop((uv_timer_t *)h);
    h->closing = 1;
    h->close_cb = cb;
    h->close_next = h->loop->closing;
    h->loop->closing = h;
}

void uv__web_run_closing(uv_loop_t *loop) {
    while (loop->closing) {
        uv_handle_t *h = loop->closing;
        loop->closing = h->close_next;
        if (h->close_cb) h->close_cb(h);
    }
}
