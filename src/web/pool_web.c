/* web/pool_web.c - the pool of the single-threaded web build (no -pthread): there are
 * no workers. Jobs wait in the heap (pool_heap.c) and run on the flush thread, inside
 * asset_server_flush() within its budget, and inside waits on the flush thread in
 * place of blocking. Reads that need the JS event loop (fetch) finish there, from a
 * promise callback, which puts the job back in the heap for its parse; so a wait for
 * such a load cannot finish before the caller returns to the event loop, and returns
 * ASSET_E_BUSY instead of spinning (asset__pool_wait_step). */
#include "../internal.h"

int asset__pool_start(asset_server_t *s) {
    s->nworkers = 0;
    return ASSET_OK;
}

void asset__pool_join(asset_server_t *s) { (void)s; }

void asset__pool_take_next(asset_server_t *s, const asset__job_t *j) { /* run_one takes them */
    (void)s;
    (void)j;
}

void asset__pool_nested(bool enter) { (void)enter; }

/* no worker threads: every request is allocated and freed */
struct asset_request *asset__pool_spare_request(void) {
    return NULL;
}
bool asset__pool_keep_request(struct asset_request *r) {
    (void)r;
    return false;
}
bool asset__pool_worker_of(const asset_server_t *s) { /* no workers: jobs run in the flush */
    (void)s;
    return false;
}
size_t asset__pool_spare_count(const asset_server_t *s) {
    (void)s;
    return 0;
}

bool asset__pool_wake_claim(asset_server_t *s) {
    (void)s;
    return true; /* no worker to wake: every push asks for a flush */
}

void asset__pool_notify(asset_server_t *s) {
    /* the next flush runs it: an event-driven host is told through cfg.wake */
    if (!s->stopping) atomic_store(&s->wake_pending, true);
}

void asset__pool_wake_all(asset_server_t *s) { (void)s; /* no worker */ }

/* pool.h's test hook: no worker sleeps here, so it is never called */
_Atomic(const struct asset__pool_hook *) asset__pool_sleep_hook;

void asset__pool_wake_later(asset_server_t *s) {
    (void)s; /* no worker: one thread, whose next flush does the releases */
}

/* [lock] Runs one queued job on this thread, lock released around it. Whether it was
 * a spawned task. */
static bool run_one(asset_server_t *s) {
    asset__job_t *j = asset__heap_pop(s);
    bool task = j->task != NULL;
    j->state = ASSET__JOB_RUNNING;
    s->running++;
    for (asset_handle_t *h = j->handles; h; h = h->job_next)
        atomic_store(&h->state, ASSET_STATE_LOADING);
    asset_server_t *owner = asset__thread_owner;
    asset__thread_owner = s; /* as on a worker: the job's callbacks see a pool thread */
    uv_mutex_unlock(&s->lock);
    asset__job_run(s, j); /* decrements s->running when it lets go of the job */
    uv_mutex_lock(&s->lock);
    asset__thread_owner = owner;
    return task;
}

size_t asset__pool_flush_run(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    size_t n = 0;
    /* at least one job per flush, so a tiny budget still makes progress; and as many as
     * were queued when it began, no more: what those jobs queue (a task spawning the
     * next step of its work, a parse's loads and dependencies) is the next flush's. It
     * ran them too, so a task that spawned its successor kept one flush going for as
     * long as the chain did, for ever for one without an end (a review) */
    size_t queued = s->heap_len;
    /* a flush inside a job this thread runs (the flush of a parse's or a task's wait,
     * delivering what it waited for) runs none: that wait runs what it needs, the outer
     * run the rest. Run there, each queued parse that waited ran nested inside the one
     * before, 32 deep (ASSET__WAIT_RUN_DEPTH), and the waits of the rest got ASSET_E_BUSY */
    if (asset__job_runs_here()) queued = 0;
    while (n < queued && s->heap_len && !s->stopping) {
        run_one(s);
        n++;
        if (budget_ns && asset__now_ns() - start_ns >= budget_ns) break;
    }
    if (s->heap_len && !s->stopping) atomic_store(&s->wake_pending, true);
    return n;
}

/* A task's fn polls asset_task_cancelled() (a parse asset_parse_cancelled(), a read
 * asset_request_cancelled()) on the one thread, inside the flush or a wait: the I/O turn that
 * expires deadlines (io_web.c) cannot run until it returns, so a task that works until its
 * timeout_ms cancels it never ended (a review). The deadlines of its own handles expire here; no
 * other's: a fetch's answer may wait in the socket (io_web.c's checkpoint). One handle a pass, each
 * pass taking one out of the timers: the decide may change the job's list. */
void asset__pool_job_poll(asset_server_t *s, asset__job_t *j) {
    uint64_t now = asset__now_ns();
    bool expired = false;
    uv_mutex_lock(&s->lock);
    for (;;) {
        asset_handle_t *h = j->handles;
        while (h && (h->timer_idx == ASSET__NO_TIMER || h->deadline_ns > now)) h = h->job_next;
        if (!h) break;
        asset__timer_expire(s, h);
        expired = true;
    }
    uv_mutex_unlock(&s->lock);
    if (expired) asset__maybe_wake(s);
}

/* A read of the program's own ASYNC source finished (from a JS callback) and its parse
 * waits in the queue: the notify, under the lock, could only mark it; a host that
 * flushes when woken was never told (the fetch's end wakes it itself: a review). One
 * thread: nothing can destroy the server between the unlock and this. */
void asset__pool_requeued_async(asset_server_t *s) { asset__maybe_wake(s); }

/* Destroy stops the I/O "thread" first, which ends the fetches (they finish their
 * reads); any other ASYNC read (a source of the program's, finished from a JS callback)
 * can only end after the caller returns to the event loop: destroy waiting for it on
 * done_cond aborted the program ("a condition wait would block forever"). */
bool asset__pool_async_read_blocks_destroy(const asset_server_t *s) {
    return s->running_async > atomic_load(&((asset_server_t *)s)->web_fetches);
}

/* The wait runs queued jobs until none is left, but at most as many spawned tasks as
 * jobs were queued when it first got here: a task that spawns the next step of its
 * work (for ever, a background job) kept the heap from emptying, and a wait for a fetch
 * beside it ran the chain instead of returning ASSET_E_BUSY (for ever with no timeout:
 * a review). Loads are not counted: a document's dependencies, and theirs, are queued
 * by the parses this wait runs, and a wait for a local one still finishes. */
int asset__pool_wait_step(asset_server_t *s, size_t *tasks) {
    if (!s->heap_len || s->stopping) return -1;
    if (*tasks == SIZE_MAX) *tasks = s->heap_len;
    if (!*tasks) return -1;
    if (run_one(s)) --*tasks;
    return 1;
}
