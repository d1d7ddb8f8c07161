/* pool.h - the worker pool's interface: the priority queue of jobs (pool_heap.c) and
 * the threads that drain it. Kept small so a web build can swap it (pthreads under Emscripten)
 * without touching handles, caches, loaders or batches. Included by internal.h. */
#ifndef ASSET_POOL_H
#define ASSET_POOL_H

/* [lock] held for the queue functions (still named heap) */
/* Queues j; the caller then asks asset__pool_wake_claim whether to call
 * asset__pool_notify (after its unlock, preferably). */
bool asset__heap_push(asset_server_t *s, asset__job_t *j);
void asset__heap_remove(asset_server_t *s, asset__job_t *j);
/* j->priority changed: j moves to its new priority's queue. False: no memory for that;
 * j stays, and j->priority is its old one again. */
bool asset__heap_update(asset_server_t *s, asset__job_t *j);
asset__job_t *asset__heap_pop(asset_server_t *s);
/* j, just queued again for its parse (asset_request_finish), is listed in s->requeued
 * until it leaves the queue. False: no memory for that (the caller counts it). */
bool asset__heap_list_requeued(asset_server_t *s, asset__job_t *j);
void asset__heap_free(asset_server_t *s); /* destroy: the rings' arrays */
int asset__pool_start(asset_server_t *s);
void asset__pool_join(asset_server_t *s); /* after stopping = true */
/* [lock] A job entered the heap: whether the caller is to call asset__pool_notify.
 * False when no worker sleeps, or when one was signalled and has not woken yet: an
 * awake worker looks at the heap before it sleeps again, and a worker that wakes with
 * more queued wakes the next (pool.c). glibc's pthread_cond_signal waits, in the
 * signaller, for a signalled waiter that has not woken yet: measured 0.17 times per
 * load of serial_latency before this rule (docs/performance.md). */
bool asset__pool_wake_claim(asset_server_t *s);
/* Wakes a worker (pool.c), or asks the host for a flush (web/pool_web.c,
 * single-threaded: the flush runs it), once asset__pool_wake_claim said so. Lock held
 * or not. A load calls it after the unlock: a worker woken while the pusher still holds
 * the lock would only wake to wait for it (on this VM that hand-off cost 2 to 3 us per
 * serial load); an async read's requeue calls it under the lock (see
 * asset_request_finish). */
void asset__pool_notify(asset_server_t *s);
/* Wakes every worker: destroy, once stopping is set (under the lock). Lock held or not. */
void asset__pool_wake_all(asset_server_t *s);
/* Lock held or not, by this thread or another: a worker calls asset__maybe_wake(s)
 * (which needs no lock held) as soon as one is idle. For a release recorded inside
 * another server's value free, whose caller wakes only its own server (handle.c,
 * asset__release_later). No-op on the single-threaded web build (no worker). */
void asset__pool_wake_later(asset_server_t *s);
/* Tests only, NULL otherwise: fn is called by a worker [lock] held, after its last look
 * at the heap and at wake_later and before it sleeps (test_cache's lost-wake test);
 * woken, no lock held, once it has woken from that sleep, before it takes the lock to
 * look at the heap again (test_handle's requeued-parse test). Either may be NULL. */
struct asset__pool_hook {
    void (*fn)(asset_server_t *s);
    void (*woken)(asset_server_t *s);
};
extern _Atomic(const struct asset__pool_hook *) asset__pool_sleep_hook;
/* A spawned task's fn asks asset_task_cancelled(), a loader's parse
 * asset_parse_cancelled(), or a read this thread runs asset_request_cancelled() (no lock
 * held; j is its running job). Threads: nothing (the I/O thread expires deadlines
 * meanwhile). Single-threaded web: the deadlines of j's handles that passed expire here,
 * since the JS event loop that expires them cannot turn while fn, parse or read runs (a
 * task waiting for its timeout ran for ever). */
void asset__pool_job_poll(asset_server_t *s, asset__job_t *j);
/* [lock] Flush calls this first: runs queued jobs on the flush thread within the
 * budget (released around each job) and returns how many ran. 0 when threads run them. */
size_t asset__pool_flush_run(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns);
/* [lock] A wait on the flush thread is about to block: 0 block on done_cond (workers
 * will signal); 1 a job ran in place of blocking, check again; -1 nothing here can make
 * progress until the caller returns to the event loop (single-threaded web): the wait
 * returns ASSET_E_BUSY. *tasks: the wait's own, SIZE_MAX before its first step; the web
 * runs at most as many spawned tasks in one wait as jobs were queued at that step (a
 * task spawning its successor kept the heap from emptying: the wait never returned). */
int asset__pool_wait_step(asset_server_t *s, size_t *tasks);
/* [no lock] asset_request_finish() put an ASYNC read's job back in the queue for its
 * parse. The single-threaded web build calls config.wake (only a flush runs the parse,
 * and the notify under the lock could not: a host that flushes when woken never got
 * the load done); elsewhere a worker takes it, and s is not touched (this may be a
 * user's thread that destroy does not wait for). */
void asset__pool_requeued_async(asset_server_t *s);
/* [lock] Whether destroy would wait forever for a pending ASYNC read: one of another
 * source than the built-in fetch() on the single-threaded web build, which only the JS
 * event loop can finish (destroy refuses then). false elsewhere. */
bool asset__pool_async_read_blocks_destroy(const asset_server_t *s);
/* [lock] Called by job j's last critical section: when j is the job a pool worker of s
 * runs (asset__job_run from its loop), takes the next queued job for that worker to
 * run once it returns; nothing elsewhere. */
void asset__pool_take_next(asset_server_t *s, const asset__job_t *j);
/* Around a job a waiting thread runs itself (run-on-wait): no next job is taken when it
 * finishes, even on a worker (whose own job waits for it). */
void asset__pool_nested(bool enter);
/* The memory of a request a worker let go of, kept for the worker's next job (one per
 * worker thread, freed when the worker ends): NULL when there is none. Any thread. */
struct asset_request *asset__pool_spare_request(void);
/* Keeps r's memory for this worker's next job: false on a thread that is not a worker
 * running a job, or that keeps one already (the caller frees r). Any thread. */
bool asset__pool_keep_request(struct asset_request *r);
/* Whether this thread is one of s's pool workers (a parse, a read or a task runs there):
 * its wait may run any queued job of s, as a worker would. False on the web's
 * single-threaded build. Any thread. */
bool asset__pool_worker_of(const asset_server_t *s);
/* [lock] How many requests s's workers keep so (tests: memory per value). */
size_t asset__pool_spare_count(const asset_server_t *s);
#endif
