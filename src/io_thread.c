/* io_thread.c - the I/O thread: one private uv_loop_t on its own thread, started on
 * first need. It fires load timeouts from one uv_timer_t over the server's deadline
 * heap, and runs work posted by other threads through a queue and a uv_async_t. */
#include "internal.h"
#include "io_queue.h"

struct asset__io {
    asset_server_t *server;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;
    uv_thread_t thread;
    uv_sem_t ready;
    int init_rc;
    uv_mutex_t lock; /* leaf lock: guards posts and stopping */
    asset__io_posts_t posts;
    bool stopping;
    asset__io_hooks_t hooks; /* HTTP, hot reload: set and run on the I/O thread */
};

void asset__io_set_hooks(asset__io_t *io, void (*on_kick)(void *), void (*on_stop)(void *),
                         void *arg) {
    asset__io_hooks_add(&io->hooks, on_kick, on_stop, arg);
}

void (*asset__io_stop_hook)(asset__io_t *io) = NULL;
void (*asset__io_exit_hook)(void) = NULL;

static void timer_cb(uv_timer_t *t);

static void rearm(asset__io_t *io) {
    uint64_t next = asset__timers_expire(io->server, asset__now_ns());
    if (!next) {
        uv_timer_stop(&io->timer);
        return;
    }
    uint64_t now = asset__now_ns();
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_timer_start(&io->timer, timer_cb, ms, 0);
}

static void timer_cb(uv_timer_t *t) { rearm(t->data); }

static void run_posts(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    asset__io_post_t *p = asset__io_posts_take(&io->posts);
    uv_mutex_unlock(&io->lock);
    asset__io_posts_run(p);
}

static void async_cb(uv_async_t *a) {
    asset__io_t *io = a->data;
    run_posts(io);
    uv_mutex_lock(&io->lock);
    bool stop = io->stopping;
    uv_mutex_unlock(&io->lock);
    if (stop) {
        asset__io_hooks_stop(&io->hooks);
        uv_close((uv_handle_t *)&io->async, NULL);
        uv_close((uv_handle_t *)&io->timer, NULL);
        return;
    }
    asset__io_hooks_kick(&io->hooks);
    rearm(io);
}

static void io_main(void *arg) {
    asset__io_t *io = arg;
    asset__thread_owner = io->server;
    int loop_rc = uv_loop_init(&io->loop);
    int async_rc = loop_rc ? loop_rc : uv_async_init(&io->loop, &io->async, async_cb);
    io->init_rc = async_rc ? async_rc : uv_timer_init(&io->loop, &io->timer);
    io->async.data = io;
    io->timer.data = io;
    uv_sem_post(&io->ready);
    if (io->init_rc != 0) {
        /* give back what did start (the loop's epoll descriptor, the async's eventfd):
         * out of descriptors, every failed start would otherwise leak one more */
        if (loop_rc == 0) {
            if (async_rc == 0) uv_close((uv_handle_t *)&io->async, NULL);
            uv_run(&io->loop, UV_RUN_DEFAULT);
            uv_loop_close(&io->loop);
        }
        return;
    }
    uv_run(&io->loop, UV_RUN_DEFAULT);
    run_posts(io); /* posted after the last turn: still run, so they can clean up */
    uv_loop_close(&io->loop);
    if (asset__io_exit_hook) asset__io_exit_hook();
}

asset__io_t *asset__io_start(asset_server_t *s) {
    asset__io_t *io = asset__calloc(1, sizeof *io);
    if (!io) {
        s->io_error = UV_ENOMEM;
        return NULL;
    }
    io->server = s;
    uv_mutex_init(&io->lock);
    uv_sem_init(&io->ready, 0);
    int rc = uv_thread_create(&io->thread, io_main, io);
    if (rc != 0) {
        s->io_error = rc;
        uv_sem_destroy(&io->ready);
        uv_mutex_destroy(&io->lock);
        asset_free(io);
        return NULL;
    }
    uv_sem_wait(&io->ready);
    if (io->init_rc != 0) {
        s->io_error = io->init_rc;
        uv_thread_join(&io->thread);
        uv_sem_destroy(&io->ready);
        uv_mutex_destroy(&io->lock);
        asset_free(io);
        return NULL;
    }
    return io;
}

/* Every wake-up is written under the lock, and only while the thread is not stopping:
 * the thread reads stopping under that lock, then closes its async handle and loop (the
 * eventfd). A wake-up written after the unlock could come once the thread saw the stop
 * and closed them: libuv's write to the closed descriptor failed and it aborted
 * (found by fuzz/fuzz_server.c in destroy, which stopped the thread as it handled a
 * timed load's wake-up). uv_async_send never blocks; the lock is a leaf lock. */
void asset__io_kick(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    if (!io->stopping) uv_async_send(&io->async);
    uv_mutex_unlock(&io->lock);
}

bool asset__io_post(asset__io_t *io, void (*fn)(void *arg), void *arg) {
    asset__io_post_t *p = asset__io_post_new(fn, arg);
    if (!p) return false;
    uv_mutex_lock(&io->lock);
    bool ok = !io->stopping;
    if (ok) {
        asset__io_posts_push(&io->posts, p);
        uv_async_send(&io->async); /* under the lock: see asset__io_kick */
    }
    uv_mutex_unlock(&io->lock);
    if (!ok) asset__io_post_free(p);
    return ok;
}

uv_loop_t *asset__io_loop(asset__io_t *io) { return &io->loop; }

void asset__io_flush_turn(void) {} /* no thread hands the flush thread work */

bool asset__io_stopping(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    bool stop = io->stopping;
    uv_mutex_unlock(&io->lock);
    return stop;
}

void asset__io_stop(asset__io_t *io) {
    uv_mutex_lock(&io->lock);
    io->stopping = true;
    uv_async_send(&io->async); /* under the lock: see asset__io_kick */
    uv_mutex_unlock(&io->lock);
    if (asset__io_stop_hook) asset__io_stop_hook(io);
    uv_thread_join(&io->thread);
    uv_sem_destroy(&io->ready);
    uv_mutex_destroy(&io->lock);
    asset_free(io);
}
