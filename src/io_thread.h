/* io_thread.h - the I/O thread's interface: one private uv_loop_t on its own thread
 * (timeouts, HTTP). Kept small so a web build can swap it (emscripten_fetch) without
 * touching handles, caches, loaders or batches. Included by internal.h. */
#ifndef ASSET_IO_THREAD_H
#define ASSET_IO_THREAD_H

typedef struct asset__io asset__io_t;
asset__io_t *asset__io_start(asset_server_t *s);
void asset__io_stop(asset__io_t *io);
/* Wakes the I/O thread so it re-reads the timer heap. Any thread; nothing once the
 * thread is stopping. */
void asset__io_kick(asset__io_t *io);
/* Runs fn(arg) on the I/O thread. Returns false when the thread is stopping. */
bool asset__io_post(asset__io_t *io, void (*fn)(void *arg), void *arg);
uv_loop_t *asset__io_loop(asset__io_t *io);
bool asset__io_stopping(asset__io_t *io);
/* I/O thread only, adds one set of hooks (HTTP, hot reload; at most 4): on_kick runs on
 * every wake-up (e.g. to notice cancelled transfers),
 * on_stop once when the thread stops, before the loop closes. */
void asset__io_set_hooks(asset__io_t *io, void (*on_kick)(void *), void (*on_stop)(void *),
                         void *arg);
/* The flush thread's turn at I/O other threads handed to it, at each flush before it
 * takes the lock. Desktop: nothing. The web's pthreads build: the file system calls Web
 * Workers proxy to the main thread, which run only while it blocks or returns to the
 * browser: a host that loops on asset_server_flush() (a loading screen, a test) without
 * either starved every read, and a reload's waited until the loop ended. */
void asset__io_flush_turn(void);
/* [lock] The I/O thread, started if needed; NULL when it cannot start, and once destroy
 * began (it stops and frees the thread without the lock, while threads it still waits
 * for, a wait's callback or run-on-wait job, may get here). */
asset__io_t *asset__io_get(asset_server_t *s);
/* The status and message (into why, n bytes) of an I/O thread that could not start,
 * from s->io_error (io_error): ASSET_E_NO_MEMORY for want of memory, else ASSET_E_IO. */
asset_status_t asset__io_start_failure(int io_error, char *why, size_t n);
/* Posts fn(arg) to s's I/O thread, started on first need ([lock] not held):
 * ASSET_PENDING, or why it could not (the message into why, n bytes; arg is the
 * caller's still): ASSET_E_SHUTDOWN when the thread stops, ASSET_E_NO_MEMORY, or
 * asset__io_start_failure's. */
asset_status_t asset__io_post_for(asset_server_t *s, void (*fn)(void *arg), void *arg, char *why,
                                  size_t n);

/* Tests: when set, asset__io_stop calls asset__io_stop_hook once the stop is asked for,
 * before it waits for the thread, and a started I/O thread calls asset__io_exit_hook as
 * it ends, its loop closed. Set before the stop (asset_server_destroy), NULL again once it
 * returned. */
extern void (*asset__io_stop_hook)(asset__io_t *io);
extern void (*asset__io_exit_hook)(void);

#endif
