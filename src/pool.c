/* pool.c - the worker pool: max_workers threads on libuv's thread primitives taking
 * jobs from the priority queue (HIGH first, FIFO within a priority). Not uv_queue_work:
 * that pool is process-global, FIFO and sized by an environment variable. The queue
 * itself is pool_heap.c. */
#include "internal.h"

/* The next job a worker runs, taken in the critical section that finished the last
 * one (asset__pool_take_next): one lock round trip per job instead of two. */
static _Thread_local const asset__job_t *tl_current; /* the job this worker runs, or NULL */
static _Thread_local asset__job_t *tl_next;
/* Jobs this thread runs for a wait (run-on-wait) inside the job it runs as a worker: a
 * next job taken when one of them finishes would only run once the outer job is over,
 * and what the wait waits for may be that very job. */
static _Thread_local unsigned tl_nested;
/* This worker's slot in s->spare_reqs: one request's memory (224 bytes), from the job
 * it last finished, so that a small file's read takes no allocation for it. NULL on a
 * thread that is no worker. */
static _Thread_local struct asset_request **tl_spare;
/* The server whose pool worker this thread is, or NULL. */
static _Thread_local const asset_server_t *tl_worker_of;

_Atomic(const struct asset__pool_hook *) asset__pool_sleep_hook;
asset__thread_create_fn asset__pool_thread_create_hook;

bool asset__pool_worker_of(const asset_server_t *s) { return s && tl_worker_of == s; }

/* [lock] */
static asset__job_t *take(asset_server_t *s) {
    asset__job_t *j = asset__heap_pop(s);
    j->state = ASSET__JOB_RUNNING;
    s->running++;
    for (asset_handle_t *h = j->handles; h; h = h->job_next)
        atomic_store(&h->state, ASSET_STATE_LOADING);
    return j;
}

void asset__pool_take_next(asset_server_t *s, const asset__job_t *j) {
    /* only the job worker_main runs: not one finished on this thread for another reason
     * (a request an ASYNC source finishes, inline, from a task or parse of another job,
     * or even of another server) */
    if (j == tl_current && j && !tl_nested && !tl_next && !s->stopping && s->heap_len)
        tl_next = take(s);
}

struct asset_request *asset__pool_spare_request(void) {
    if (!tl_spare) return NULL;
    struct asset_request *r = *tl_spare;
    *tl_spare = NULL;
    return r;
}

bool asset__pool_keep_request(struct asset_request *r) {
    if (!tl_current || !tl_spare || *tl_spare) return false;
    *tl_spare = r;
    return true;
}

size_t asset__pool_spare_count(const asset_server_t *s) {
    size_t n = 0;
    for (unsigned i = 0; s->spare_reqs && i < s->spare_claimed; i++) n += s->spare_reqs[i] != NULL;
    return n;
}

void asset__pool_nested(bool enter) {
    if (enter)
        tl_nested++;
    else
        tl_nested--;
}

static const struct asset__pool_hook *sleep_hook(void) {
    return atomic_load_explicit(&asset__pool_sleep_hook, memory_order_acquire);
}

/* [lock] Sleeps until a wake (asset__pool_notify, _wake_all, _wake_later), released
 * meanwhile. A wake takes only sleep_mu: asset__pool_wake_later cannot wait for the
 * server's lock, and when it waited on work_cond with that lock, a wake_later that could
 * not have the lock signalled a worker that had looked at the flag but was not asleep
 * yet: it slept through it (a review). A wake after this worker let go of the lock
 * finds it either before its look at sleep_seq and the flag (it sees them changed) or
 * asleep (the signal reaches it). */
static void sleep_until_woken(asset_server_t *s) {
    uv_mutex_lock(&s->sleep_mu);
    unsigned seen = s->sleep_seq;
    uv_mutex_unlock(&s->lock);
    while (s->sleep_seq == seen && !atomic_load(&s->wake_later))
        uv_cond_wait(&s->work_cond, &s->sleep_mu);
    uv_mutex_unlock(&s->sleep_mu);
    const struct asset__pool_hook *hook = sleep_hook();
    if (hook && hook->woken) hook->woken(s);
    uv_mutex_lock(&s->lock);
}

static void worker_main(void *arg) {
    asset_server_t *s = arg;
    asset__thread_owner = s;
    tl_worker_of = s;
    uv_mutex_lock(&s->lock);
    tl_spare = &s->spare_reqs[s->spare_claimed++]; /* one slot per worker started */
    for (;;) {
        while (!s->stopping && s->heap_len == 0) {
            if (atomic_exchange(&s->wake_later, false)) { /* asset__pool_wake_later */
                uv_mutex_unlock(&s->lock);
                asset__maybe_wake(s);
                uv_mutex_lock(&s->lock);
                continue;
            }
            const struct asset__pool_hook *hook = sleep_hook();
            if (hook && hook->fn) hook->fn(s);
            s->idle_workers++;
            sleep_until_woken(s);
            s->idle_workers--;
            s->wake_inflight = false; /* awake (signalled or not): it sees the heap */
        }
        if (s->stopping) break;
        asset__job_t *j = take(s);
        /* more queued than this worker takes: the next sleeping one, one at a time */
        bool more = s->heap_len && asset__pool_wake_claim(s);
        uv_mutex_unlock(&s->lock);
        if (more) asset__pool_notify(s);
        while (j) {
            tl_current = j;
            asset__job_run(s, j); /* decrements s->running when it lets go of the job */
            j = tl_next;          /* taken while it finished, if there was one */
            tl_next = NULL;
        }
        tl_current = NULL;
        uv_mutex_lock(&s->lock);
    }
    uv_mutex_unlock(&s->lock);
    asset_free(asset__pool_spare_request());
    tl_spare = NULL;
    tl_worker_of = NULL;
}

int asset__pool_start(asset_server_t *s) {
    s->workers = asset__calloc(s->cfg.max_workers, sizeof *s->workers);
    s->spare_reqs = asset__calloc(s->cfg.max_workers, sizeof *s->spare_reqs);
    if (!s->workers || !s->spare_reqs) {
        asset_free(s->workers);
        asset_free(s->spare_reqs);
        s->workers = NULL;
        s->spare_reqs = NULL;
        return ASSET_E_NO_MEMORY;
    }
    int rc = 0;
    for (unsigned i = 0; i < s->cfg.max_workers; i++) {
        asset__thread_create_fn create = asset__pool_thread_create_hook;
        rc = create ? create(&s->workers[i], worker_main, s)
                    : uv_thread_create(&s->workers[i], worker_main, s);
        if (rc != 0) break;
        s->nworkers++;
    }
    /* fewer threads than asked for (a thread limit) went unsaid, and none at all failed
     * the create without a word (a review) */
    if (!s->nworkers) {
        asset__log(s, ASSET_LOG_ERROR,
                   "asset_server_create: cannot start a worker thread (%s); max_workers %u",
                   uv_strerror(rc), s->cfg.max_workers);
        return ASSET_E_NO_MEMORY;
    }
    if (s->nworkers < s->cfg.max_workers)
        asset__log(s, ASSET_LOG_WARN,
                   "asset_server_create: only %u of %u worker threads started (%s); loads "
                   "run on those",
                   s->nworkers, s->cfg.max_workers, uv_strerror(rc));
    return ASSET_OK;
}

void asset__pool_join(asset_server_t *s) {
    for (unsigned i = 0; i < s->nworkers; i++) uv_thread_join(&s->workers[i]);
    asset_free(s->workers);
    asset_free(s->spare_reqs); /* each worker freed its own request */
    s->workers = NULL;
    s->spare_reqs = NULL;
    s->nworkers = s->spare_claimed = 0;
}

/* No job is left queued with every worker asleep: a push whose claim is refused finds
 * either a worker awake, which looks at the heap before it sleeps (under the lock), or
 * a signal on its way to a worker that was in work_cond when it was claimed; a worker
 * that leaves work_cond, woken by it or not, clears wake_inflight, so a signal that
 * found nobody left in work_cond cannot leave it set. */
bool asset__pool_wake_claim(asset_server_t *s) {
    if (!s->idle_workers || s->wake_inflight) return false;
    s->wake_inflight = true;
    return true;
}

static void wake(asset_server_t *s, bool all) {
    uv_mutex_lock(&s->sleep_mu);
    s->sleep_seq++;
    if (all)
        uv_cond_broadcast(&s->work_cond);
    else
        uv_cond_signal(&s->work_cond);
    uv_mutex_unlock(&s->sleep_mu);
}

void asset__pool_notify(asset_server_t *s) { wake(s, false); }

void asset__pool_wake_all(asset_server_t *s) { wake(s, true); }

void asset__pool_wake_later(asset_server_t *s) {
    /* a sleeping worker sees the flag under sleep_mu (sleep_until_woken): this thread
     * may hold this server's lock or another's, and takes only that leaf lock */
    atomic_store(&s->wake_later, true);
    wake(s, false);
}

size_t asset__pool_flush_run(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    (void)s;
    (void)start_ns;
    (void)budget_ns;
    return 0; /* the workers run the jobs */
}

void asset__pool_job_poll(asset_server_t *s, asset__job_t *j) {
    (void)s;
    (void)j; /* the I/O thread expires the deadlines */
}

void asset__pool_requeued_async(asset_server_t *s) {
    (void)s; /* a worker was told under the lock */
}

bool asset__pool_async_read_blocks_destroy(const asset_server_t *s) {
    (void)s;
    return false; /* a thread of the source's finishes it while destroy waits */
}

int asset__pool_wait_step(asset_server_t *s, size_t *tasks) {
    (void)s;
    (void)tasks;
    return 0; /* block: a worker or the I/O thread will signal */
}
