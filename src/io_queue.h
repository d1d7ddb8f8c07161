/* io_queue.h - what the desktop I/O thread (io_thread.c) and the web one
 * (web/io_web.c) share: the queue of work posted to the thread, and the hooks its
 * users (HTTP, hot reload) set. Neither locks: the posts are guarded by the I/O
 * state's leaf lock, the hooks are set and run on the I/O thread. (io_queue.c also
 * has the thread users' asset__io_post_for, declared in io_thread.h.) */
#ifndef ASSET_IO_QUEUE_H
#define ASSET_IO_QUEUE_H

typedef struct asset__io_post asset__io_post_t;
typedef struct asset__io_posts {
    asset__io_post_t *head, *tail;
} asset__io_posts_t;

/* A post of fn(arg), not queued yet; NULL when out of memory (free it with
 * asset__io_post_free if it is not pushed). */
asset__io_post_t *asset__io_post_new(void (*fn)(void *arg), void *arg);
void asset__io_post_free(asset__io_post_t *p);
/* [lock] Queues p last. */
void asset__io_posts_push(asset__io_posts_t *q, asset__io_post_t *p);
/* [lock] Takes every queued post, in order (run them with asset__io_posts_run). */
asset__io_post_t *asset__io_posts_take(asset__io_posts_t *q);
/* Runs the taken posts in order and frees them (the lock not held). */
void asset__io_posts_run(asset__io_post_t *p);

typedef struct asset__io_hooks {
    struct {
        void (*on_kick)(void *arg);
        void (*on_stop)(void *arg);
        void *arg;
    } h[4];
    unsigned n;
} asset__io_hooks_t;

/* Adds a user's hooks (a fixed set of users: aborts past four). */
void asset__io_hooks_add(asset__io_hooks_t *hk, void (*on_kick)(void *), void (*on_stop)(void *),
                         void *arg);
/* Runs every on_kick. */
void asset__io_hooks_kick(asset__io_hooks_t *hk);
/* Runs every on_stop, then forgets the hooks. */
void asset__io_hooks_stop(asset__io_hooks_t *hk);

#endif
