/* web/io_web.c - the I/O "thread" of the web build: the owner of the load timeouts,
 * the fetch() transfers and reload's timers, driven by a JS event loop instead of a
 * uv_loop_t.
 *
 *   - single-threaded (no -pthread): the JS event loop of the one thread. Posts and
 *     kicks schedule a turn with setTimeout(0); a turn runs the posts, the hooks'
 *     on_kick, re-arms the timeout timer and runs pending close callbacks.
 *   - pthreads: a pthread that unwinds into its own event loop (a Web Worker) after
 *     starting, so fetch() promises resolve there even while the main thread blocks in
 *     a wait. Posts wake it through a futex word it waits on with Atomics.waitAsync:
 *     Emscripten's own cross-thread calls relay through the main thread's event loop,
 *     which a blocked main thread never turns. Such a worker cannot end while the main
 *     thread blocks either, so a stopped server's I/O worker is parked and the next
 *     server's I/O thread is a parked worker when there is one (io_worker_t).
 * Either way every field below `owner thread only` is touched only by that thread. */
#include "../internal.h"
#include "../io_queue.h"

#include <emscripten/emscripten.h>
#include <emscripten/eventloop.h>
#include <emscripten/threading.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>

#ifdef __EMSCRIPTEN_PTHREADS__
/* A Web Worker serving as I/O thread. Its exit would be completed by the main thread's
 * event loop, which a program blocked in waits never turns, so it never exits: when its
 * server stops it parks in g_parked until a new server takes it. (It used to stay idle
 * for good: every server that had used HTTP or a timeout then held one of the
 * -sPTHREAD_POOL_SIZE workers, and the first server after the last one hung in
 * asset__io_start.) Process-wide because the worker pool is. */
typedef struct io_worker {
    _Atomic int32_t wake;    /* bumped by schedule() and by a hand-over; waited on */
    asset__io_t *_Atomic io; /* the server's I/O state it serves; NULL while parked */
    asset__io_t *current;    /* owner thread only: the io it adopted */
    struct io_worker *next;  /* in g_parked (g_parked_lock) */
} io_worker_t;

static uv_mutex_t g_parked_lock = PTHREAD_MUTEX_INITIALIZER; /* leaf lock (a pthread mutex) */
static io_worker_t *g_parked;
#endif

struct asset__io {
    asset_server_t *server;
    uv_mutex_t lock; /* leaf lock: posts, stopping, turn_pending */
    asset__io_posts_t posts;
    bool stopping;
    bool turn_pending; /* a turn is scheduled and has not started */
#ifdef __EMSCRIPTEN_PTHREADS__
    uv_sem_t ready, stopped;
    io_worker_t *worker; /* set before the worker sees the io, then constant */
#endif
    /* owner thread only */
    uv_loop_t loop;
    long timer_id; /* the timeout timer's setTimeout id, 0 if none */
    long turn_id;  /* single-threaded: the scheduled turn's id */
#ifndef __EMSCRIPTEN_PTHREADS__
    long check_id;     /* the checkpoint's setTimeout(0), 0 if none */
    uint64_t check_ns; /* when the checkpoint running or to come was asked for */
    uint64_t seen_ns;  /* deadlines up to this may expire: answers in by then are in */
#endif
    asset__io_hooks_t hooks;
};

void asset__io_set_hooks(asset__io_t *io, void (*on_kick)(void *), void (*on_stop)(void *),
                         void *arg) {
    asset__io_hooks_add(&io->hooks, on_kick, on_stop, arg);
}

static void turn(void *arg);

#ifndef __EMSCRIPTEN_PTHREADS__
/* Single-threaded, the thread that runs the event loop also parses: one held past a load's
 * deadline (a parse run in an I/O callback, a host that flushes in config.wake) left the
 * answers that came meanwhile in the socket, and the deadline's timer ran before them
 * (node runs expired timers before I/O): an answer in before its deadline (a 404, a 304)
 * failed ASSET_E_TIMEOUT, where the desktop's I/O thread had taken it. So deadlines
 * expire only up to the time a checkpoint was asked for, once it ran: a setTimeout(0)
 * asked for in a timer's callback (every turn is one) runs after node's next poll for
 * I/O, and in a page after the tasks queued before it. */
static void checkpoint(void *arg) {
    asset__io_t *io = arg;
    io->check_id = 0;
    io->seen_ns = io->check_ns;
    turn(io);
}
#endif

static void timer_fire(void *arg) {
    asset__io_t *io = arg;
    io->timer_id = 0;
    turn(io);
}

static void rearm(asset__io_t *io) {
#ifdef __EMSCRIPTEN_PTHREADS__
    uint64_t next = asset__timers_expire(io->server, asset__now_ns());
#else
    uint64_t next = asset__timers_expire(io->server, io->seen_ns);
#endif
    if (io->timer_id) emscripten_clear_timeout(io->timer_id);
    io->timer_id = 0;
    if (!next) return;
    uint64_t now = asset__now_ns();
#ifndef __EMSCRIPTEN_PTHREADS__
    if (next <= now) { /* past, and no checkpoint since: one first (checkpoint) */
        if (!io->check_id) {
            io->check_ns = now;
            io->check_id = emscripten_set_timeout(checkpoint, 0, io);
        }
        return;
    }
#endif
    double ms = next > now ? (double)(next - now) / 1e6 : 0;
    /* setTimeout fires a delay past 2^31 - 1 ms (24.8 days) at once: a longer one fires
     * early, and the turn arms again for the rest */
    if (ms > 2147483647.0) ms = 2147483647.0;
    io->timer_id = emscripten_set_timeout(timer_fire, ms, io);
}

static void run_posts(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    asset__io_post_t *p = asset__io_posts_take(&io->posts);
    io->turn_pending = false;
    uv_mutex_unlock(&io->lock);
    asset__io_posts_run(p);
}

/* One turn of the loop: what uv_run's async callback does on desktop. */
static void turn(void *arg) {
    asset__io_t *io = arg;
    asset_server_t *owner = asset__thread_owner;
    asset__thread_owner = io->server;
    run_posts(io);
    asset__io_hooks_kick(&io->hooks);
    rearm(io);
    uv__web_run_closing(&io->loop);
    asset__thread_owner = owner;
    /* what the turn finished (fetches, timeouts) may want a flush */
    asset__maybe_wake(io->server);
}

/* The owner thread stops: posts, on_stop hooks (they abort transfers), close callbacks. */
static void stop_turn(asset__io_t *io) {
    asset_server_t *owner = asset__thread_owner;
    asset__thread_owner = io->server;
    run_posts(io);
    asset__io_hooks_stop(&io->hooks);
    if (io->timer_id) emscripten_clear_timeout(io->timer_id);
    io->timer_id = 0;
#ifndef __EMSCRIPTEN_PTHREADS__
    if (io->check_id) emscripten_clear_timeout(io->check_id);
    io->check_id = 0;
#endif
    uv__web_run_closing(&io->loop);
    run_posts(io); /* posted by the hooks while stopping: still run, so they clean up */
    asset__thread_owner = owner;
}

#ifndef __EMSCRIPTEN_PTHREADS__
/* The turn schedule() asked for. Only it clears turn_id: a turn of the timeout timer
 * cleared it too, while the scheduled one was still to come, so destroy did not clear
 * that one, which then ran on the freed state (a review); and the next schedule() armed
 * a second. */
static void scheduled_turn(void *arg) {
    asset__io_t *io = arg;
    io->turn_id = 0;
    turn(io);
}
#endif

/* Schedules a turn on the owner thread unless one is pending. Any thread. */
static void schedule(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    bool go = !io->turn_pending && !io->stopping;
    if (go) io->turn_pending = true;
#ifdef __EMSCRIPTEN_PTHREADS__
    go = true; /* always bump: a stopping thread must wake to stop */
#endif
    uv_mutex_unlock(&io->lock);
    if (!go) return;
#ifdef __EMSCRIPTEN_PTHREADS__
    atomic_fetch_add(&io->worker->wake, 1);
    emscripten_futex_wake((void *)&io->worker->wake, INT_MAX);
#else
    /* one thread: a turn of the timer ran the posts (turn_pending is false), but the
     * scheduled turn is still to come and will run what was posted since */
    if (!io->turn_id) io->turn_id = emscripten_set_timeout(scheduled_turn, 0, io);
#endif
}

#ifdef __EMSCRIPTEN_PTHREADS__
/* clang-format off */
/* The I/O thread's wait: read the word, run a turn, then wait (asynchronously, so the
 * worker's event loop keeps running fetches and timers) until the word changes. A post
 * or a hand-over made after the read bumps the word, so the wait returns at once. The
 * loop never ends: a parked worker waits for its next server the same way. */
EM_JS(void, js_io_wait_loop, (void *w, int32_t *word), {
    var idx = word >> 2;
    function go() {
        var v = Atomics.load(HEAP32, idx);
        try {
            _asset__io_web_turn(w);
        } catch (e) {
            if (e !== "unwind") throw e;
            return;
        }
        var r = Atomics.waitAsync(HEAP32, idx, v);
        if (r.async) r.value.then(go); else setTimeout(go, 0);
    }
    go();
});
/* clang-format on */

/* One turn on an I/O worker: adopts a server's io handed over, runs its turn, or stops
 * it and parks the worker. */
EMSCRIPTEN_KEEPALIVE void asset__io_web_turn(io_worker_t *w) {
    asset__io_t *io = atomic_load(&w->io);
    if (!io) return; /* parked */
    if (io != w->current) {
        w->current = io;
        asset__thread_owner = io->server;
        uv_sem_post(&io->ready);
    }
    if (!asset__io_stopping(io)) {
        turn(io);
        return;
    }
    stop_turn(io);
    /* parked before stopped is posted: the io is freed after that post, and a server
     * created next may take this worker at once (its hand-over bumps the word, so the
     * JS loop turns again) */
    w->current = NULL;
    atomic_store(&w->io, NULL);
    asset__thread_owner = NULL;
    uv_mutex_lock(&g_parked_lock);
    w->next = g_parked;
    g_parked = w;
    uv_mutex_unlock(&g_parked_lock);
    uv_sem_post(&io->stopped);
}

static void io_main(void *arg) {
    io_worker_t *w = arg;
    js_io_wait_loop(w, (int32_t *)&w->wake);
    /* keep the worker alive: its event loop runs the turns and the fetch promises */
    emscripten_exit_with_live_runtime();
}

/* Hands io to a parked worker, or to a new one. 0 or a UV error. */
static int io_worker_take(asset__io_t *io) {
    uv_mutex_lock(&g_parked_lock);
    io_worker_t *w = g_parked;
    if (w) g_parked = w->next;
    uv_mutex_unlock(&g_parked_lock);
    if (w) {
        io->worker = w;
        atomic_store(&w->io, io);
        atomic_fetch_add(&w->wake, 1);
        emscripten_futex_wake((void *)&w->wake, INT_MAX);
        return 0;
    }
    /* the C library's calloc, not the allocation hook: a worker outlives the server that
     * made it (never freed, like the worker itself) */
    w = calloc(1, sizeof *w);
    if (!w) return UV_ENOMEM;
    io->worker = w;
    atomic_store(&w->io, io);
    uv_thread_t t;
    int rc = uv_thread_create(&t, io_main, w);
    if (rc != 0) {
        free(w);
        return rc;
    }
    pthread_detach(t);
    return 0;
}
#endif

asset__io_t *asset__io_start(asset_server_t *s) {
    asset__io_t *io = asset__calloc(1, sizeof *io);
    if (!io) {
        s->io_error = UV_ENOMEM;
        return NULL;
    }
    io->server = s;
    uv_mutex_init(&io->lock);
#ifdef __EMSCRIPTEN_PTHREADS__
    uv_sem_init(&io->ready, 0);
    uv_sem_init(&io->stopped, 0);
    int rc = io_worker_take(io);
    if (rc != 0) {
        s->io_error = rc;
        uv_sem_destroy(&io->ready);
        uv_sem_destroy(&io->stopped);
        uv_mutex_destroy(&io->lock);
        asset_free(io);
        return NULL;
    }
    uv_sem_wait(&io->ready);
#endif
    return io;
}

void asset__io_stop(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    io->stopping = true;
    uv_mutex_unlock(&io->lock);
#ifdef __EMSCRIPTEN_PTHREADS__
    schedule(io);
    uv_sem_wait(&io->stopped);
    uv_sem_destroy(&io->ready);
    uv_sem_destroy(&io->stopped);
#else
    if (io->turn_id) emscripten_clear_timeout(io->turn_id);
    stop_turn(io);
#endif
    uv_mutex_destroy(&io->lock);
    asset_free(io);
}

void asset__io_kick(asset__io_t *io) { schedule(io); }

bool asset__io_post(asset__io_t *io, void (*fn)(void *arg), void *arg) {
    asset__io_post_t *p = asset__io_post_new(fn, arg);
    if (!p) return false;
    uv_mutex_lock(&io->lock);
    bool ok = !io->stopping;
    if (ok) asset__io_posts_push(&io->posts, p);
    uv_mutex_unlock(&io->lock);
    if (!ok) {
        asset__io_post_free(p);
        return false;
    }
    schedule(io);
    return true;
}

uv_loop_t *asset__io_loop(asset__io_t *io) { return &io->loop; }

/* A timer of the loop (reload's: debounce, http_poll_ms) fires from the JS event loop:
 * as the server's I/O thread, as on desktop, so that a destroy from a config.wake it
 * calls is refused (single-threaded, it ran as no server's thread: the destroy went
 * ahead inside the callback, which went on with the freed server) */
void *uv__web_loop_enter(uv_loop_t *loop) {
    asset__io_t *io = (asset__io_t *)((char *)loop - offsetof(asset__io_t, loop));
    asset_server_t *prev = asset__thread_owner;
    asset__thread_owner = io->server;
    return prev;
}

void uv__web_loop_leave(void *prev) { asset__thread_owner = prev; }

/* A no-op without pthreads (Emscripten's stub): nothing is proxied there. */
void asset__io_flush_turn(void) { emscripten_current_thread_process_queued_calls(); }

bool asset__io_stopping(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    bool stop = io->stopping;
    uv_mutex_unlock(&io->lock);
    return stop;
}
