/* spawn.c - background tasks: a user function run on the worker pool as a job of its
 * own kind, whose result becomes a handle's value. Everything a load has (priority
 * heap, handles, cancel, timeouts, callbacks, destroy) comes from the job machinery;
 * this file only makes the job and runs it (job.c calls asset__spawn_run). */
#include "internal.h"

#include <stdio.h>
#include <string.h>

struct asset__task {
    asset_task_fn fn;
    void *arg;
    void (*free_arg)(void *arg);
    /* inside fn, worker thread only */
    asset__job_t *job;
    void *value;
    size_t cost;
    void (*free_fn)(void *value, void *user);
    void *free_user;
    bool has_value;
    char *message;
    asset_server_t *server;
    struct asset__task *dead_next; /* in server->dead_tasks */
};

/* Tasks' values are freed through their own free_fn; the slot names them "task". They
 * are freed on the flush thread, without the lock (FREE_ON_FLUSH_THREAD): a value may hold
 * handles of its server (a C++ value holding an asset::Handle), as free_arg may. */
asset__loader_slot_t asset__task_slot = {
    .vt = {ASSET_LOADER_ABI, "task", NULL, NULL, NULL, NULL, NULL,
           ASSET_LOADER_FREE_ON_FLUSH_THREAD, NULL},
    .name = "task",
};

static void value_drop(asset__task_t *t) {
    if (!t->has_value) return;
    if (t->free_fn)
        t->free_fn(t->value, t->free_user);
    else
        asset_free(t->value);
    t->has_value = false;
    t->value = NULL;
}

static void task_free_now(asset__task_t *t) {
    value_drop(t);
    if (t->free_arg) t->free_arg(t->arg); /* once: after fn, or instead of it */
    asset_free(t->message);
    asset_free(t);
}

void asset__task_free(asset__task_t *t) {
    if (!t) return;
    /* the caller may hold the lock, and free_arg may release a handle (a C++ callable
     * holding one, say): it runs at the next flush */
    asset_server_t *s = t->server;
    asset__task_t *head = atomic_load_explicit(&s->dead_tasks, memory_order_relaxed);
    do t->dead_next = head;
    while (!atomic_compare_exchange_weak_explicit(&s->dead_tasks, &head, t, memory_order_seq_cst,
                                                  memory_order_relaxed));
    /* a host that flushes only when woken must hear of it (a task cancelled while it
     * ran ends after its handle was delivered: nothing else is queued). The caller wakes
     * it after its unlock; a flush that ends with tasks left wakes it too */
    atomic_store(&s->dead_wake, true);
}

/* Frees the list from t on, a budget stopping it after one task at least (so none
 * starves): the rest is left in s->tasks_left, and true returned. */
static bool tasks_free_list(asset_server_t *s, asset__task_t *t, uint64_t start_ns,
                            uint64_t budget_ns) {
    while (t) {
        asset__task_t *next = t->dead_next;
        task_free_now(t);
        t = next;
        if (t && budget_ns && asset__now_ns() - start_ns >= budget_ns) {
            s->tasks_left = t;
            return true;
        }
    }
    return false;
}

bool asset__tasks_drain_once(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    asset__task_t *left = s->tasks_left;
    s->tasks_left = NULL;
    if (left && (tasks_free_list(s, left, start_ns, budget_ns) ||
                 (budget_ns && asset__now_ns() - start_ns >= budget_ns)))
        return true; /* those that died since: the next flush's too */
    asset__task_t *t = atomic_exchange_explicit(&s->dead_tasks, NULL, memory_order_acquire);
    return tasks_free_list(s, t, start_ns, budget_ns);
}

void asset__tasks_drain(asset_server_t *s) {
    asset__task_t *t = s->tasks_left;
    s->tasks_left = NULL;
    tasks_free_list(s, t, 0, 0);
    while ((t = atomic_exchange_explicit(&s->dead_tasks, NULL, memory_order_acquire)))
        tasks_free_list(s, t, 0, 0);
}

/* The server whose task this thread runs (inside fn), or NULL. */
static _Thread_local asset_server_t *tl_task_server;

bool asset__spawn_in_task_of(const asset_server_t *s) { return s && tl_task_server == s; }

bool asset__spawn_runnable_here(const asset__job_t *j) {
    /* a task waiting for a task it spawned held its worker while the other waited for
     * one: with every worker so held (one, say) it waited for ever. Run it here, as a
     * wait runs a local load; only on a worker (inside a task, or a parse or read a
     * worker runs: a parse that waited for a task it spawned timed out so, a review), so
     * that a task always runs on a worker, never on the flush thread or a user's */
    return j->task &&
           (asset__spawn_in_task_of(j->task->server) || asset__pool_worker_of(j->task->server));
}

void asset__spawn_run(asset_server_t *s, asset__job_t *j) {
    asset__task_t *t = j->task;
    if (atomic_load_explicit(&j->cancelled, memory_order_acquire)) {
        /* frees the job: free_arg, fn never ran */
        asset__job_finish(s, j, ASSET_E_CANCELLED, NULL, NULL);
        return;
    }
    t->job = j;
    asset__trace_job(s, j, ASSET__TR_PARSE_START, ASSET_OK);
    asset_server_t *outer = tl_task_server; /* a task run by a task's wait: nested */
    tl_task_server = s;
    asset_status_t st = t->fn((asset_task_t *)t, t->arg);
    tl_task_server = outer;
    if (st == ASSET_OK && !t->has_value) {
        st = ASSET_E_INVALID;
        if (!t->message) t->message = asset__strdup("the task set no value");
    }
    /* a status that is not an error of ours, or ASSET_E_CANCELLED with no cancel asked
     * (a task that waited for a load another thread cancelled, say): the task's failure,
     * ASSET_E_INVALID, with its message or one that says which */
    char odd[64];
    const char *why = t->message;
    bool cancelled = atomic_load_explicit(&j->cancelled, memory_order_acquire);
    if (st != ASSET_OK)
        st = asset__status_outcome(st, cancelled, "task", ASSET_E_INVALID, odd, &why);
    /* the value's record before the event: without memory for it the handle fails
     * ASSET_E_NO_MEMORY, which PARSE_END says too (it said OK, a review) */
    asset__value_t *v = NULL;
    if (st == ASSET_OK && !cancelled && !(v = asset__value_new(s, &asset__task_slot, true))) {
        st = ASSET_E_NO_MEMORY;
        why = "out of memory";
    }
    /* the outcome, as the handle gets it: OK for a task that set no value, or the odd
     * code itself, said otherwise (a review); CANCELLED for a cancelled one */
    asset__trace_job(s, j, ASSET__TR_PARSE_END, cancelled ? ASSET_E_CANCELLED : st);
    if (cancelled) {
        asset__job_finish(s, j, ASSET_E_CANCELLED, NULL, NULL); /* the value goes with the task */
        return;
    }
    if (st != ASSET_OK) {
        char *msg = asset__asprintf("%s: task: %s", j->uri, why ? why : asset_strerror(st));
        asset__job_finish(s, j, st, msg, NULL);
        asset_free(msg);
        return;
    }
    v->value = t->value;
    v->cost = t->cost;
    /* a NULL free_fn means asset_free: the value's own free wins over the slot's */
    asset__value_x(v)->free_fn = t->free_fn ? t->free_fn : NULL;
    asset__value_x(v)->free_user = t->free_user;
    t->has_value = false; /* the value owns it now */
    uv_mutex_lock(&s->lock);
    asset__job_finish_locked(s, j, ASSET_OK, NULL, v);
    /* in the same critical section: once the handle is published, its release is the
     * last one and frees the value (no worker reference left behind to race it) */
    asset__value_release(v);
    asset__pool_take_next(s, j); /* the worker's next job: no lock round trip of its own */
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
}

asset_handle_t *asset_server_spawn(asset_server_t *s, asset_task_fn fn, void *arg,
                                   void (*free_arg)(void *arg), const asset_load_options_t *o) {
    if (!s) return NULL;
    asset_load_options_t opt = {0};
    if (o) opt = *o;
    /* no lock round trip of its own: the spawn's one critical section is below */
    uint64_t n = atomic_fetch_add_explicit(&s->task_seq, 1, memory_order_relaxed) + 1;
    char name[40];
    snprintf(name, sizeof name, "task://%llu", (unsigned long long)n);
    asset_handle_t *h = asset__handle_new(s, name, &opt);
    if (!h) return NULL;
    h->timeout_ms = opt.timeout_ms;
    h->loader = &asset__task_slot; /* named "task" however it ends */
    asset__task_t *t = asset__calloc(1, sizeof *t);
    asset__job_t *j = t ? asset__calloc(1, sizeof *j) : NULL;
    char *uri = j ? asset__strdup(name) : NULL;
    if (t) {
        t->fn = fn;
        t->arg = arg;
        t->free_arg = free_arg; /* from here on the task owns arg */
        t->server = s;
    }
    if (!t && free_arg) free_arg(arg); /* it will never run: the handle fails below */
    bool pushed = false;               /* a worker is told after the unlock */
    uv_mutex_lock(&s->lock);
    asset__handle_link(s, h);
    if (!fn) {
        asset__task_free(t);
        t = NULL;
        asset_free(j);
        asset_free(uri);
        char *msg = asset__asprintf("%s: invalid task: no function", name);
        asset__handle_decide(h, ASSET_E_INVALID, msg, NULL, 0);
        asset_free(msg);
    } else if (!uri) {
        asset__task_free(t);
        asset_free(j);
        asset__handle_decide(h, ASSET_E_NO_MEMORY, NULL, NULL, 0);
    } else if (s->stopping) {
        asset__task_free(t);
        asset_free(j);
        asset_free(uri);
        asset__handle_decide(h, ASSET_E_SHUTDOWN, NULL, NULL, 0);
    } else {
        j->uri = uri;
        j->loader = &asset__task_slot;
        j->no_cache = true;
        j->heap_idx = SIZE_MAX;
        j->state = ASSET__JOB_QUEUED;
        j->node.key = j->uri;
        j->task = t;
        j->priority = h->priority;
        /* mapped like a load: destroy cancels it, introspection lists it; no load can
         * join it (find_inflight matches the loader, and no load picks "task") */
        bool mapped = asset__map_put(&s->inflight, &j->node);
        if (!mapped || !(pushed = asset__heap_push(s, j))) {
            if (mapped) asset__map_remove(&s->inflight, &j->node);
            asset__job_free(j);
            asset__handle_decide(h, ASSET_E_NO_MEMORY, NULL, NULL, 0);
        } else {
            j->mapped = true;
            asset__job_attach(j, h);
            asset__trace_job_new(s, j);
            if (opt.timeout_ms) asset__timer_arm(s, h);
        }
    }
    pushed = pushed && asset__pool_wake_claim(s);
    uv_mutex_unlock(&s->lock);
    if (pushed) asset__pool_notify(s);
    asset__maybe_wake(s);
    return h;
}

/* ---- the task API (inside fn) ---- */

void asset_task_set_value(asset_task_t *pt, void *value, size_t cost_bytes,
                          void (*free_fn)(void *value, void *user), void *user) {
    asset__task_t *t = (asset__task_t *)pt;
    if (!t) return;
    /* the value set already, again (its final cost, say): kept, as asset_parse_set_value
     * keeps it; it was freed, and the handle got the freed pointer (a review) */
    if (!t->has_value || t->value != value) value_drop(t);
    t->value = value;
    t->cost = cost_bytes;
    t->free_fn = free_fn;
    t->free_user = user;
    t->has_value = true;
}

bool asset_task_cancelled(const asset_task_t *pt) {
    const asset__task_t *t = (const asset__task_t *)pt;
    if (!t || !t->job) return true;
    asset__pool_job_poll(t->server, t->job); /* single-threaded web: its timeouts */
    return atomic_load_explicit(&((asset__job_t *)t->job)->cancelled, memory_order_acquire);
}

const char *asset_task_uri(const asset_task_t *pt) {
    const asset__task_t *t = (const asset__task_t *)pt;
    return t && t->job ? t->job->uri : "";
}

asset_status_t asset_task_fail(asset_task_t *pt, asset_status_t st, const char *fmt, ...) {
    asset__task_t *t = (asset__task_t *)pt;
    if (t && fmt) {
        va_list ap;
        va_start(ap, fmt);
        char *m = asset__vasprintf(fmt, ap);
        va_end(ap);
        if (m) {
            asset_free(t->message);
            t->message = m;
        }
    }
    return st;
}
