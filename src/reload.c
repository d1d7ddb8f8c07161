/* reload.c - hot reload: which handles reload, the reload jobs, publishing at flush,
 * and the I/O thread's side (directory watches, the debounce, HTTP polling).
 *
 * A change (a watch event after the debounce, an HTTP poll, asset_mem_put of a watched
 * key, asset_server_reload) becomes asset__reload_request(uri): for each loader that
 * live handles of uri use, one internal reload handle loads uri through the normal
 * path (its own job: it never joins a stale one; ordinary loads may join it). When it
 * is decided, asset__reload_decided gives every live handle of uri a pending result
 * and queues it; the flush publishes it (value swap, version, reloaded callbacks, then
 * the old value's release). A revalidation that finds nothing changed (NOT_MODIFIED,
 * HTTP 304) yields the value the handles already hold: nothing is published. A
 * successful reload queues the live assets depending on uri for a forced reload at
 * the end of the flush (asset__reload_pump), so a change travels up the graph,
 * dependencies' callbacks first.
 *
 * One reload per asset and loader at a time, counted from the critical section that
 * decides to start it (a claim, until its handle is marked in_reloading): a request
 * meanwhile marks it, and one more reload follows, a revalidation unless a marking
 * request asked for a fresh parse (a dependency's change asks for one only when the
 * running reload's value was not built on the new dependency). So what is published
 * never goes back to an older value, and a change the running reload read already is not
 * published twice. An HTTP poll asks no more while one runs (its answer is the poll's),
 * and marks no load in flight stale unless what it read is a change
 * (asset__reload_poll_read).
 *
 * A reload that finds its file in use (another program holds it without sharing while
 * it saves: a state that passes, asset__errno_transient, and no event says when) is
 * tried again on the I/O thread's debounce timer, quietly, after 50 ms and then as long
 * again as it has been tried (the delays double) for up to RETRY_FOR_MS; then its failure
 * is published as any. A change meanwhile is one reload with the retry.
 *
 * Server-side state is [lock]; struct asset__rio belongs to the I/O thread. */
#include "internal.h"
#include "platform/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h> /* S_IFMT, S_IFDIR: a uv_stat_t's st_mode */

atomic_bool asset__watch_force_poll;
atomic_bool asset__watch_fail_poll;
atomic_uint asset__http_poll_ticks;
_Atomic(asset__watch_hook_fn) asset__watch_failed_hook;

/* ---- which handles ---- */

/* Held by someone and loaded (or decided loaded, about to be published). */
static bool live(const asset_handle_t *h) {
    if (h->reload || h->refs <= 0 || h->job || !h->loader || h->loader == &asset__list_slot ||
        h->loader == &asset__task_slot || /* a task has nothing to read again */
        h->pinned) /* its bytes are the ones its digest names: a change is not them */
        return false;
    int st = atomic_load_explicit(&((asset_handle_t *)h)->state, memory_order_relaxed);
    return st == ASSET_STATE_LOADED || (h->decided && h->status == ASSET_OK && h->value);
}

/* [lock] The reload of uri by ld in flight (a reload handle's URI has no label). */
static asset_handle_t *find_reloading(asset_server_t *s, const char *uri,
                                      const asset__loader_slot_t *ld) {
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, uri, strlen(uri));
    for (asset_handle_t *r; (r = asset__uri_iter_next(&it));)
        if (r->in_reloading && r->loader == ld && !asset__handle_uri(r)[it.bl]) return r;
    return NULL;
}

static void set_pending(asset_handle_t *h, asset_status_t st, asset__value_t *v, char *msg) {
    asset__value_release(h->reload_value);
    asset_free(h->reload_message);
    h->reload_pending = true;
    h->reload_status = (int16_t)st;
    h->reload_value = asset__value_retain(v);
    h->reload_message = msg;
}

/* [lock] A failure replaces h's pending result: h keeps the value it shows, so the
 * version a pending good result gave it (its next revalidation's) is not its value's.
 * Forgotten: the next reload reads afresh. Kept, a no_cache handle's revalidation sent
 * it, heard NOT_MODIFIED and took the old value as current, for good (a review). */
static void fail_pending(asset_handle_t *h, asset_status_t st, char *msg, const char *version) {
    if (h->reload_pending && h->reload_status == ASSET_OK) {
        asset_free(h->nc_version);
        h->nc_version = NULL;
    }
    /* the failure's source version rides behind the message's NUL ("" unknown), for
     * told_already: no field of its own in every handle. Every reload failure's message
     * is made here; out of memory it has none (NULL), and is told again next time */
    char *m = NULL;
    if (msg) {
        size_t ml = strlen(msg), vl = version ? strlen(version) : 0;
        if ((m = asset_alloc(ml + vl + 2))) {
            memcpy(m, msg, ml + 1);
            if (vl) memcpy(m + ml + 1, version, vl);
            m[ml + 1 + vl] = 0;
        }
        asset_free(msg);
    }
    set_pending(h, st, NULL, m);
}

/* [lock] Whether h's pending result is the recovery of a failure it shows (revalidated):
 * the value it holds, again. */
static bool recovering(const asset_handle_t *h) {
    return h->reload_pending && h->reload_status == ASSET_OK && h->reload_value == h->value;
}

/* [lock] Whether h was told this failure already, or has it pending: its last published
 * reload (or the one pending) failed with the same status and message, of the same
 * version of the source (NULL: unknown, as an HTTP error's). A source that stays broken
 * (a poll answered 500 each time, a link polled while its target stays unparseable) was
 * reported at every poll: a callback, a log line each period (a review); and two polls
 * decided between flushes logged the same failure twice. */
static bool told_already(const asset_handle_t *h, asset_status_t st, const char *msg,
                         const char *version) {
    /* a recovery pending (revalidated) is not news: the failure it would clear is what h
     * shows, and what it says again (the caller drops the recovery). Compared with the
     * recovery, the same failure after it fired the callbacks again (a review) */
    bool p = h->reload_pending && !recovering(h);
    /* either way a failed reload's message, made by fail_pending: its version behind */
    const char *m = p ? h->reload_message : h->message;
    if ((p ? h->reload_status : h->reload_error) != st || st == ASSET_OK || !msg || !m ||
        strcmp(m, msg))
        return false;
    return !strcmp(m + strlen(m) + 1, version ? version : "");
}

/* [lock] h's pending result, if any, is not published. */
static void drop_pending(asset_handle_t *h) {
    asset__value_release(h->reload_value);
    asset_free(h->reload_message);
    h->reload_pending = false;
    h->reload_value = NULL;
    h->reload_message = NULL;
}

/* [lock] A revalidation found the value h holds current (NOT_MODIFIED, a 304, a label's
 * unchanged version): nothing to publish, and a failure pending before it is not
 * published either (the later result wins). But a failure h was told already is no longer
 * the last attempt's result: its recovery is published (the same value, reload_error OK,
 * the callbacks fire, no new version). Unpublished, a 304 after a polled 500 left the
 * stale error and message on a fine asset for good (a review). Queued by the caller. */
static void revalidated(asset_handle_t *h) {
    if (h->reload_pending && h->reload_status != ASSET_OK) drop_pending(h);
    if (!h->reload_pending && h->reload_error != ASSET_OK) set_pending(h, ASSET_OK, h->value, NULL);
}

/* [lock] A change that found no memory to be loaded is not lost silently: h keeps its
 * value and hears of it (reloaded callback, asset_handle_reload_error() NO_MEMORY),
 * unless a result is already pending for it, which it will hear instead. */
static void fail_no_memory(asset_server_t *s, asset_handle_t *h) {
    if (h->reload_pending) return;
    fail_pending(h, ASSET_E_NO_MEMORY,
                 asset__asprintf("reload failed: %s: out of memory", asset__handle_uri(h)), NULL);
    asset__queue_push(s, h);
}

/* [lock] The same for every live handle of base (its first bl bytes) and loader ld
 * (NULL: any). */
static void fail_live_no_memory(asset_server_t *s, const char *base, size_t bl,
                                const asset__loader_slot_t *ld) {
    if (s->stopping) return;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, base, bl);
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));)
        if (live(h) && (!ld || h->loader == ld)) fail_no_memory(s, h);
}

typedef asset__reload_claim_t claim_t;

static bool todo_push(asset_server_t *s, const char *uri, const asset__loader_slot_t *ld,
                      bool forced, bool dep);

/* [lock] Marks the reload of uri by ld running or being started, if there is one: a
 * change while it runs makes one more after it (dep: a dependency's change, a fresh
 * parse unless the value it makes is built on what the dependencies show then). A poll
 * (an http_poll_ms tick) marks nothing: the reload running asks the server already. */
static bool mark_running(asset_server_t *s, const char *uri, const asset__loader_slot_t *ld,
                         bool forced, bool dep, bool poll) {
    asset_handle_t *r = find_reloading(s, uri, ld);
    if (r && poll) return true; /* a poll: the one in flight asks the server already */
    if (r) {
        r->reload_again_dep |= dep;
        r->reload_again |= !dep;
        r->reload_again_forced |= forced && !dep;
        return true;
    }
    for (claim_t *c = s->reload_claims; c; c = c->next) {
        if (c->ld == ld && !strcmp(c->uri, uri)) {
            if (poll) return true;
            c->again_dep |= dep;
            c->again |= !dep;
            c->forced |= forced && !dep;
            return true;
        }
    }
    return false;
}

/* [lock] Whether v was built on what its dependencies show now: none of their handles
 * (made by v's parse) has had a reload published since (a version past its first) or has
 * a new value pending. */
static bool value_current(const asset__value_t *v) {
    for (size_t i = 0, n = v ? asset__value_ndeps(v) : 0; i < n; i++) {
        asset_handle_t *d = asset__value_x(v)->deps->h[i];
        if (atomic_load_explicit(&d->version, memory_order_relaxed) > 1 ||
            (d->reload_pending && d->reload_status == ASSET_OK && d->reload_value != d->value))
            return false;
    }
    return v != NULL;
}

static const asset__value_t *shown(const asset_handle_t *h);

/* [lock] Whether h needs no re-parse for a dependency's change: the value it will show
 * was built on the changed dependency already (a parent and its dependency saved
 * together: the parent's own reload loaded the new dependency). A label held alone holds
 * none of its file's dependencies: it re-parses. */
static bool built_current(const asset_handle_t *h) { return !h->label && value_current(shown(h)); }

/* [lock] Queues the reload that follows one marked while it ran (mark_running): a
 * revalidation, which finds nothing to publish when the marked one read the change
 * already, unless a marking request asked for a fresh parse. Out of memory: the live
 * handles of ld hear of it. Not while stopping. */
static void reload_after(asset_server_t *s, const char *uri, size_t bl,
                         const asset__loader_slot_t *ld, bool forced) {
    if (s->stopping) return;
    if (!todo_push(s, uri, ld, forced, false)) fail_live_no_memory(s, uri, bl, ld);
    atomic_store(&s->wake_pending, true); /* the pump, or the failures, at a flush */
}

static void claim_unlink(asset_server_t *s, claim_t *c) {
    for (claim_t **p = &s->reload_claims; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            return;
        }
    }
}

/* [lock] The jobs of uri in flight whose read began before this change (a queued one
 * reads the change): their handles are not live yet, so this reload passes them by;
 * they reload once decided (asset__reload_stale_job). Not a reload's own job: a change
 * during a reload makes one more through its claim. */
static void mark_stale_jobs(asset_server_t *s, const char *uri, bool forced,
                            const asset__job_t *except) {
    for (asset__map_node_t *n = asset__map_get(&s->inflight, uri); n;
         n = asset__map_get_next(&s->inflight, n)) {
        asset__job_t *j = (asset__job_t *)n; /* the node is the job's first member */
        if (j == except || j->state == ASSET__JOB_QUEUED || j->task ||
            (j->handles && j->handles->reload))
            continue;
        if (forced)
            j->stale = ASSET__STALE_FORCED;
        else if (!j->stale)
            j->stale = ASSET__STALE;
    }
}

/* A poll is no change: it asks the server, and its reload is its own job (a reload never
 * joins a load), so the loads in flight keep their read: cached, not reloaded after. It
 * marked them stale at every tick (thirty-ninth review), as a change does: a load of a
 * polled URL in flight across a tick was not cached and reloaded once loaded, a second
 * transfer for nothing. What the poll reads tells: a whole answer of another version is a
 * change, and the loads whose read began before then may have the old bytes. */
void asset__reload_poll_read(asset_server_t *s, const asset__job_t *j) {
    const char *now = j->req ? j->req->version : NULL;
    if (s->stopping || (now && j->cached_version && !strcmp(now, j->cached_version))) return;
    mark_stale_jobs(s, j->uri, false, j);
}

void asset__reload_stale_job(asset_server_t *s, const asset__job_t *j) {
    if (!j->stale || s->stopping) return;
    /* out of memory: its handles keep what it read, as a reload that failed would */
    if (!todo_push(s, j->uri, NULL, j->stale == ASSET__STALE_FORCED, false))
        asset__log(s, ASSET_LOG_ERROR, "%s: reload: out of memory; change not loaded", j->uri);
}

static void drop_cached_dependents(asset_server_t *s, const char *base,
                                   const asset__loader_slot_t *ld);
static void retry_forget(asset_server_t *s, const char *uri, size_t n);

/* *arg: set when parent will reload (a live handle of it) and load the dependency again,
 * or may (its own fix awaited: a failed material between a level and a texture). Its
 * cached value, built without the dependency (an optional one that was not there), and
 * those built on it leave their caches, as for a dependency that changed: the next load
 * of a released parent got it without the dependency, for good (a review). */
static void awaiting_push(asset_server_t *s, const char *parent, void *arg) {
    size_t pl = strlen(parent), nl = 0;
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    bool cached = false;
    for (size_t k = 0; k < nl; k++) cached |= asset__cache_remove(&ls[k]->cache, parent);
    if (cached) drop_cached_dependents(s, parent, NULL);
    if (asset__awaited_has(s, parent, pl)) *(bool *)arg = true;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, parent, pl);
    for (asset_handle_t *h; !*(bool *)arg && (h = asset__uri_iter_next(&it));)
        *(bool *)arg = live(h);
    if (!todo_push(s, parent, NULL, true, false)) fail_live_no_memory(s, parent, pl, NULL);
}

/* [lock] uri changed: the parents its failure failed (or loaded without it, optional)
 * get fresh reloads, after this one (the pump). Its watch was theirs: it stays for
 * their reloads, which load uri again (the watch set up already serves that load: a
 * new one would open the file once more to compare versions, which on Windows makes an
 * editor's next save over it fail), and goes when none of them will reload and no
 * handle names uri. */
static bool reload_awaiting(asset_server_t *s, const char *uri, size_t bl) {
    bool reloads = false;
    if (!asset__awaited_take(s, uri, awaiting_push, &reloads)) return false;
    atomic_store(&s->wake_pending, true); /* the pump, at a flush */
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, uri, bl);
    if (!reloads && !asset__uri_iter_next(&it)) asset__reload_unwatch(s, uri, bl);
    return true;
}

/* ld: the loader whose handles reload, or NULL: every loader's. dep: asked only by
 * dependencies' changes (a fresh parse), not of handles built on them since. poll: an
 * http_poll_ms tick's, no change (asset__reload_poll_read). */
static void reload_request(asset_server_t *s, const char *uri, const asset__loader_slot_t *ld,
                           bool forced, bool dep, bool poll) {
    claim_t claims[ASSET__MAX_LOADERS];
    const asset__loader_slot_t *seen[ASSET__MAX_LOADERS]; /* each loader once: a reload
                                                           * running is looked for once */
    int seen_claim[ASSET__MAX_LOADERS]; /* its claim's index, or -1 (one running) */
    size_t n = 0, nseen = 0, bl = strlen(uri);
    uv_mutex_lock(&s->lock);
    /* a poll is no known change: what its reload reads may be (asset__reload_poll_read) */
    if (!s->stopping && !poll) mark_stale_jobs(s, uri, forced, NULL);
    if (!s->stopping) asset__uri_index_on(s);
    bool awaited = !s->stopping && reload_awaiting(s, uri, bl), any = false;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, uri, bl);
    for (asset_handle_t *h; !s->stopping && (h = asset__uri_iter_next(&it));) {
        any |= live(h);
        if (!live(h) || (ld && h->loader != ld) || (dep && built_current(h))) continue;
        bool known = false;
        for (size_t i = 0; i < nseen && !known; i++) {
            known = seen[i] == h->loader;
            if (!known || seen_claim[i] < 0) continue;
            claim_t *c = &claims[seen_claim[i]];
            if (!h->no_cache) c->no_cache = false;
            if (h->map_file) c->map_file = true;
            if (h->priority < c->priority) c->priority = h->priority;
        }
        if (known || nseen == ASSET__MAX_LOADERS) continue;
        seen_claim[nseen] = -1;
        seen[nseen++] = h->loader;
        if (mark_running(s, uri, h->loader, forced, dep, poll)) continue;
        seen_claim[nseen - 1] = (int)n;
        claims[n] = (claim_t){.next = s->reload_claims,
                              .uri = uri,
                              .ld = h->loader,
                              .no_cache = h->no_cache,
                              .map_file = h->map_file,
                              .priority = h->priority};
        s->reload_claims = &claims[n++];
    }
    /* nothing left to reload: a retry waiting (retry_later) is over, no decision will
     * forget it. Kept while a handle of uri that is not live named it (a failed label
     * held, a load in flight), it outlived the live ones, and a reload of a later load
     * found it in use and failed at once, "tried again for" minutes (thirty-fifth
     * review) */
    if (!any) retry_forget(s, uri, bl);
    uv_mutex_unlock(&s->lock);
    if (awaited) asset__maybe_wake(s); /* the parents' reloads, at the next pump */
    for (size_t i = 0; i < n; i++) {
        claim_t *c = &claims[i];
        /* a no_cache load's value goes in no cache, its reloads' neither (they cached it);
         * it runs at the best priority of what it reloads (it ran NORMAL: a HIGH HUD
         * font's change waited behind a level's NORMAL loads, a review); a file a load
         * mapped (map_file) is mapped again (it was read: a copy on the heap from the
         * first reload on, thirty-sixth review) */
        asset_load_options_t o = {.loader = c->ld->name,
                                  .no_cache = c->no_cache,
                                  .map_file = c->map_file,
                                  .priority = (asset_priority_t)c->priority};
        unsigned flags =
            ASSET__LOAD_RELOAD | (forced ? ASSET__LOAD_FORCED : 0) | (poll ? ASSET__LOAD_POLL : 0);
        asset_handle_t *rh = asset__load_ex(s, uri, &o, NULL, false, false, flags);
        uv_mutex_lock(&s->lock);
        claim_unlink(s, c);
        /* a poll's, unmarked (no change came while it was claimed): no change is lost, the
         * next tick asks again. Its handles were told "reload failed: out of memory" at
         * every tick while memory stayed short (a callback each period, fortieth review) */
        bool quiet = poll && !c->again && !c->again_dep;
        if (!rh) {
            if (!quiet) fail_live_no_memory(s, uri, bl, c->ld); /* what marked it hears it too */
        } else if (!rh->decided) { /* what marked the claim is rh's to run after it */
            rh->in_reloading = true;
            s->reloads_running++;
            rh->reload_again = c->again;
            rh->reload_again_forced = c->forced;
            rh->reload_again_dep = c->again_dep;
        } else if (c->again || c->again_dep) { /* rh was decided already: what marked it
                                                * comes after */
            reload_after(s, uri, bl, c->ld, c->forced || c->again_dep);
        }
        if (rh) {
            rh->refs = 0; /* the flush frees it once decided, like any released handle */
            asset__handle_maybe_free(rh);
        }
        uv_mutex_unlock(&s->lock);
        if (!rh) /* the log is the user's code: outside the lock */
            asset__log(s, quiet ? ASSET_LOG_WARN : ASSET_LOG_ERROR,
                       quiet ? "%s: poll: out of memory; asked again next time"
                             : "%s: reload: out of memory; change not loaded",
                       uri);
        asset__maybe_wake(s);
    }
}

/* [lock] h, a live handle with no job (loaded), had its priority changed: a reload of
 * its asset queued or running takes the best priority of the live handles it reloads
 * now, as it took theirs when it was claimed. It kept that one: a handle raised after
 * the change (a HUD font the player now looks at) had its reload wait behind the loads
 * queued ahead of it (a review). A walk of the URI's handles, only when a reload of it
 * is in flight. */
void asset__reload_reprioritize(asset_server_t *s, asset_handle_t *h) {
    if (!live(h) || s->stopping) return;
    const char *uri = asset__handle_uri(h);
    /* a label's (atlas#hud) reload is its asset's, under the URI without the label, and
     * reloads every handle of it: looked for under the label's, it was never found */
    size_t bl = strcspn(uri, "#");
    int best = 0; /* not computed yet */
    for (asset__map_node_t *n = (asset__map_node_t *)asset__map_find_n(&s->inflight, uri, bl); n;
         n = asset__map_get_next(&s->inflight, n)) {
        asset__job_t *j = (asset__job_t *)n;
        if (j->loader != h->loader) continue;
        for (asset_handle_t *rh = j->handles; rh; rh = rh->job_next) {
            if (!rh->reload) continue;
            if (!best) {
                best = ASSET_PRIORITY_LOW;
                asset__uri_iter_t it;
                asset__uri_iter_init(&it, s, uri, bl);
                for (asset_handle_t *x; (x = asset__uri_iter_next(&it));)
                    if (live(x) && x->loader == h->loader && x->priority < best) best = x->priority;
            }
            if (rh->priority == best) continue;
            asset__handle_set_prio(rh, best);
            asset__job_reprioritize(s, j);
        }
    }
}

void asset__reload_request(asset_server_t *s, const char *uri, bool forced) {
    reload_request(s, uri, NULL, forced, false, false);
}

/* [lock] Queues a reload of uri by ld (NULL: every loader) for the pump (forced: a
 * fresh parse; dep: for a dependency's change; a URI queued twice is forced if either
 * asked, by every loader unless both named the same, and for dependencies only if both
 * were). False: no memory (the caller tells the handles that then keep their value). */
static bool todo_push(asset_server_t *s, const char *uri, const asset__loader_slot_t *ld,
                      bool forced, bool dep) {
    asset__reload_todo_t *t = (asset__reload_todo_t *)asset__map_get(&s->reload_todo_map, uri);
    if (t) {
        t->forced |= forced;
        t->dep &= dep;
        if (t->ld != ld) t->ld = NULL;
        return true;
    }
    asset__reload_todo_t **a =
        asset__grow(s->reload_todo, &s->reload_todo_cap, s->reload_ntodo, sizeof *a, 8);
    if (!a) return false;
    s->reload_todo = a;
    size_t ul = strlen(uri) + 1;
    if (!(t = asset_alloc(sizeof *t + ul))) return false;
    memset(t, 0, sizeof *t);
    memcpy(t->uri, uri, ul);
    t->node.key = t->uri;
    t->forced = forced;
    t->dep = dep;
    t->ld = ld;
    if (!asset__map_put(&s->reload_todo_map, &t->node)) {
        asset_free(t);
        return false;
    }
    s->reload_todo[s->reload_ntodo++] = t;
    return true;
}

/* [lock] Takes the todo list (its count in *n), leaving it empty. */
static asset__reload_todo_t **todo_take(asset_server_t *s, size_t *n) {
    asset__reload_todo_t **todo = s->reload_todo;
    *n = s->reload_ntodo;
    s->reload_todo = NULL;
    s->reload_ntodo = s->reload_todo_cap = 0;
    asset__map_free(&s->reload_todo_map); /* the entries are the caller's now */
    return todo;
}

/* Each request starts a load: a budgeted flush started every one, whatever its budget
 * (a texture shared by thousands of materials: thousands of loads; a review). Within
 * the budget now, at least one; the rest are queued again for the next flush, which
 * the host is woken for (out of memory for that, their handles hear of it). */
void asset__reload_pump(asset_server_t *s, uint64_t start_ns, uint64_t budget_ns) {
    size_t n, i = 0;
    uv_mutex_lock(&s->lock);
    asset__reload_todo_t **todo = todo_take(s, &n);
    uv_mutex_unlock(&s->lock);
    for (; i < n; i++) {
        if (i && budget_ns && asset__now_ns() - start_ns >= budget_ns) break;
        reload_request(s, todo[i]->uri, todo[i]->ld, todo[i]->forced, todo[i]->dep, false);
        asset_free(todo[i]);
    }
    if (i < n) {
        uv_mutex_lock(&s->lock);
        for (; i < n; i++) {
            const char *uri = todo[i]->uri;
            if (!s->stopping && !todo_push(s, uri, todo[i]->ld, todo[i]->forced, todo[i]->dep))
                fail_live_no_memory(s, uri, strlen(uri), NULL);
            asset_free(todo[i]);
        }
        if (!s->stopping) atomic_store(&s->wake_pending, true);
        uv_mutex_unlock(&s->lock);
        asset__maybe_wake(s);
    }
    asset_free(todo);
}

/* Whether v was built on an asset of URI base by ld (NULL: any loader; a dependency of
 * base, or of a label of it, that loaded: as asset__dependents_add lists it). */
static bool built_on(const asset__value_t *v, const char *base, size_t bl,
                     const asset__loader_slot_t *ld) {
    for (size_t i = 0; i < asset__value_ndeps(v); i++) {
        const asset_handle_t *d = asset__value_x(v)->deps->h[i];
        if (asset__dep_loaded(d) && (!ld || d->loader == ld) &&
            asset__uri_names(asset__handle_uri(d), base, bl))
            return true;
    }
    return false;
}

/* [lock] The value h will show: a reloaded one decided and not published yet, or the
 * one it shows. Both may be built on a changed asset: a parent whose reload was decided
 * before its dependency's holds the new one only as pending (it was missed, and
 * published on the old dependency for good). */
static const asset__value_t *shown(const asset_handle_t *h) {
    return h->reload_pending && h->reload_status == ASSET_OK && h->reload_value ? h->reload_value
                                                                                : h->value;
}

/* [lock] Whether h shows v, or will (shown), or a label of v: a label held alone
 * (atlas.g#hero) is built on what v is built on, and was not re-parsed when that changed
 * (a review). */
static bool shows(asset_server_t *s, const asset_handle_t *h, const asset__value_t *v) {
    const asset__value_t *hv = shown(h);
    if (h->value == v || hv == v) return true;
    if (!h->label) return false;
    asset__value_extra_t *x = asset__value_x(v); /* it has dependencies: its extra part */
    size_t n = asset__value_nlabels(v);
    size_t i = asset__labels_find(s, x->labels, n, &x->label_ix, h->label);
    return i < n && (x->labels[i].value == h->value || x->labels[i].value == hv);
}

/* [lock] The live handles of v, loaded as parent (or of its labels), re-parse (a reload
 * queued), or hear that memory ran out. */
static void queue_value(asset_server_t *s, const asset__value_t *v, const char *parent) {
    size_t pl = strcspn(parent, "#");
    /* queued already, as a fresh parse by v's loader (its handles', which reload with
     * it): the labels held alone of one value are listed each (asset__dependents_leave),
     * and a walk of the handles of their URI for each cost their number squared */
    const asset__reload_todo_t *t =
        (const asset__reload_todo_t *)asset__map_find_n(&s->reload_todo_map, parent, pl);
    if (t && t->forced && (!t->ld || t->ld == v->loader)) return;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, parent, pl);
    bool queued = false;
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));) {
        s->dependents_visits++;
        if (!live(h) || !shows(s, h, v)) continue;
        if (!queued) {
            char *pb = asset__strndup(parent, pl);
            queued = pb && todo_push(s, pb, h->loader, true, true);
            asset_free(pb);
            if (queued) return; /* its handles reload with it */
        }
        fail_no_memory(s, h); /* it keeps its value */
    }
}

/* Live assets whose value holds a dependency on base through ld (its change): re-parse
 * them, by their own loader. By URI alone, an asset depending on its own file through
 * another loader (a level on its raw bytes) re-parsed itself for ever (a review). */
static void queue_dependents(asset_server_t *s, const char *base, const asset__loader_slot_t *ld) {
    size_t bl = strlen(base);
    s->dependents_walks++;
    if (!s->dependents_unknown) { /* the values depending on base, not every handle */
        const void *it = NULL;
        const char *parent;
        const asset__loader_slot_t *dl;
        for (asset__value_t *v; (v = asset__dependents_next(s, base, &it, &parent, &dl));) {
            s->dependents_visits++;
            if (dl == ld) queue_value(s, v, parent);
        }
        return;
    }
    for (asset_handle_t *p = s->all; p; p = p->all_next) {
        s->dependents_visits++;
        if (!live(p) || !p->value) continue;
        if (!built_on(p->value, base, bl, ld) && !built_on(shown(p), base, bl, ld)) continue;
        size_t pl = strcspn(asset__handle_uri(p), "#");
        char *pb = asset__strndup(asset__handle_uri(p), pl);
        if (!pb || !todo_push(s, pb, p->loader, true, true))
            fail_no_memory(s, p); /* keeps its value */
        asset_free(pb);
    }
    /* a label held alone (atlas.g#hero) holds a value of its own, built on nothing: the
     * whole one, cached, is (it was not reloaded: a review). Before drop_cached_dependents
     * takes it out of its cache */
    size_t nl = 0;
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    for (size_t k = 0; k < nl; k++) {
        for (asset__cache_entry_t *e = ls[k]->cache.lru_head; e; e = e->lru_next) {
            s->dependents_visits++;
            if (asset__value_nlabels(e->value) && built_on(e->value, base, bl, ld))
                queue_value(s, e->value, asset__cache_entry_key(e));
        }
    }
}

/* [lock] Drops uri's entry from c and adds uri to the todo list (its own dependents
 * are looked at next). False: out of memory (what is left stays cached). */
static bool todo_drop(char ***todo, size_t *n, size_t *cap, asset__cache_t *c, const char *uri) {
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        char **t = asset_realloc(*todo, nc * sizeof *t);
        if (!t) return false;
        *todo = t;
        *cap = nc;
    }
    char *key = asset__strdup(uri);
    if (!key) return false;
    (*todo)[(*n)++] = key;
    asset__cache_remove(c, key);
    return true;
}

/* [lock] base changed: the cached values built on it, and on those in turn, leave
 * their caches, so that the next load parses them again (a cache entry is revalidated
 * by its own version, which says nothing of its dependencies': a new load of a released
 * parent got the one built on the old dependency). Live ones re-parse as well
 * (queue_dependents). ld: the loader base changed by (NULL: any); what is built on
 * base through another loader was not (the values dropped after it: any of theirs). */
static void drop_cached_dependents(asset_server_t *s, const char *base,
                                   const asset__loader_slot_t *ld) {
    char **todo = NULL;
    size_t n = 0, cap = 0, nl = 0;
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    char *cur = asset__strdup(base);
    while (cur) {
        size_t bl = strlen(cur);
        /* a value nothing depends on (most of them: a shared texture's materials) needs
         * no walk of its own */
        size_t walk = asset__dependents_any(s, cur) ? nl : 0;
        if (walk) s->dependents_walks++;
        if (walk && !s->dependents_unknown) { /* the values depending on cur: cached? */
            const void *it = NULL;
            const char *parent;
            const asset__loader_slot_t *dl;
            for (asset__value_t *v; (v = asset__dependents_next(s, cur, &it, &parent, &dl));) {
                s->dependents_visits++;
                if (ld && dl != ld) continue;
                asset__cache_t *c = &v->loader->cache;
                asset__map_link_t *l = asset__map_find(&c->map, parent);
                if (!l) continue;
                const asset__cache_entry_t *e =
                    (const asset__cache_entry_t *)((const char *)l -
                                                   offsetof(asset__cache_entry_t, link));
                if (e->value != v) continue; /* another value of it: not built on cur */
                /* v's place stays until it is freed: the iteration goes on */
                if (!todo_drop(&todo, &n, &cap, c, parent)) break;
            }
            walk = 0;
        }
        for (size_t k = 0; k < walk; k++) {
            asset__cache_t *c = &ls[k]->cache;
            for (asset__cache_entry_t *e = c->lru_head, *next; e; e = next) {
                next = e->lru_next;
                s->dependents_visits++;
                if (!built_on(e->value, cur, bl, ld)) continue;
                /* next is another entry: still there */
                if (!todo_drop(&todo, &n, &cap, c, asset__cache_entry_key(e))) break;
            }
        }
        asset_free(cur);
        cur = n ? todo[--n] : NULL;
        ld = NULL;
    }
    while (n) asset_free(todo[--n]);
    asset_free(todo);
}

bool asset__reload_live_base(asset_server_t *s, const char *uri, const asset__loader_slot_t *ld,
                             bool no_cache, asset__value_t **v, const char **version, bool *label) {
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, uri, strlen(uri));
    /* labels held alone (a sprite of an atlas over its budget, no_cache): the version
     * they all hold, sent as the condition; without it each http_poll_ms poll fetched
     * and parsed the file again, only for asset__reload_decided to publish nothing (a
     * review). Only when each holds the same one: a NOT_MODIFIED answers for them all */
    asset_handle_t *lh = NULL;
    bool whole = false, mixed = false;
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));) {
        if (!live(h) || h->loader != ld || h->no_cache != no_cache) continue;
        if (h->label) {
            mixed = mixed || !h->nc_version || (lh && strcmp(h->nc_version, lh->nc_version));
            lh = lh ? lh : h;
            continue;
        }
        whole = true;
        if (!h->nc_version) continue;
        *v = h->reload_pending && h->reload_value ? h->reload_value : h->value;
        *version = h->nc_version;
        *label = false;
        return *v != NULL;
    }
    if (!lh || whole || mixed) return false;
    *v = lh->reload_pending && lh->reload_value ? lh->reload_value : lh->value;
    *version = lh->nc_version;
    *label = true;
    return *v != NULL;
}

/* ---- a file in use: tried again ---- */

/* A reload that found its file in use is tried again RETRY_FIRST_MS after the first
 * failure, then after as long again as it has been tried (50, 50, 100, 200... ms), until
 * RETRY_FOR_MS after the first: then it fails as any reload does. An editor or exporter
 * holds a file for the moments of a save; one that holds it longer is reported. */
#define RETRY_FIRST_MS 50u
#define RETRY_FOR_MS 3000u

/* [lock] a URI whose reload is being tried again */
typedef struct retry {
    asset__map_node_t node; /* in s->reload_retries; key: uri */
    uint64_t since_ns;      /* when its first attempt found the file in use */
    char uri[];
} retry_t;

/* [lock] uri (its first n bytes) is not being tried again any more. */
static void retry_forget(asset_server_t *s, const char *uri, size_t n) {
    if (!s->reload_retries.count) return; /* nearly always: no hash to make */
    asset__map_node_t *node = (asset__map_node_t *)asset__map_find_n(&s->reload_retries, uri, n);
    if (!node) return;
    asset__map_remove(&s->reload_retries, node);
    asset_free(node);
    asset__map_trim(&s->reload_retries); /* never walked but by asset__reload_free */
}

static void rio_init(void *arg);
static void retry_add(void *arg);

/* [lock] The I/O thread's reload state (its debounce timer), set up if it is not yet:
 * with watch or http_poll_ms from the start, else by the first retry. */
static bool rio_start(asset_server_t *s, asset__io_t *io) {
    if (!s->rio_started) s->rio_started = asset__io_post(io, rio_init, s);
    return s->rio_started;
}

/* A reload of uri the I/O thread requests at due (retry_add). */
typedef struct retry_req {
    asset_server_t *s;
    uint64_t due_ns;
    bool forced;
    char uri[];
} retry_req_t;

/* [lock] rh found its file in use: its URI's reload is requested again in a while
 * (true). False, and the failure is published, when it has been tried for RETRY_FOR_MS
 * (*tried_ms: how long), when no live handle is left to reload, or out of memory. */
static bool retry_later(asset_server_t *s, asset_handle_t *rh, uint64_t *tried_ms) {
    const char *base = asset__handle_uri(rh);
    size_t bl = strlen(base);
    retry_t *t = (retry_t *)asset__map_get(&s->reload_retries, base);
    uint64_t now = asset__now_ns(), ms = t ? (now - t->since_ns) / 1000000u : 0;
    bool held = false;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, base, bl);
    for (asset_handle_t *h; !held && (h = asset__uri_iter_next(&it));)
        held = h != rh && live(h) && h->loader == rh->loader;
    *tried_ms = ms;
    if (!held || ms >= RETRY_FOR_MS) {
        retry_forget(s, base, bl);
        return false;
    }
    if (!t) {
        if (!(t = asset_alloc(sizeof *t + bl + 1))) return false;
        memcpy(t->uri, base, bl + 1);
        t->node.key = t->uri;
        t->since_ns = now;
        if (!asset__map_put(&s->reload_retries, &t->node)) {
            asset_free(t);
            return false;
        }
    }
    uint64_t delay = ms < RETRY_FIRST_MS ? RETRY_FIRST_MS : ms;
    if (ms + delay > RETRY_FOR_MS) delay = RETRY_FOR_MS - ms; /* the last: at the limit */
    asset__io_t *io = asset__io_get(s);
    retry_req_t *q = io && rio_start(s, io) ? asset_alloc(sizeof *q + bl + 1) : NULL;
    if (q) {
        q->s = s;
        q->due_ns = now + delay * 1000000u;
        q->forced = rh->reload_forced;
        memcpy(q->uri, base, bl + 1);
    }
    if (!q || !asset__io_post(io, retry_add, q)) {
        asset_free(q);
        retry_forget(s, base, bl);
        return false;
    }
    asset__log(s, ASSET_LOG_INFO, "reload of %s: %s: trying again in %llu ms", base,
               rh->message ? rh->message : asset_strerror(rh->status), (unsigned long long)delay);
    return true;
}

void asset__reload_decided(asset_server_t *s, asset_handle_t *rh) {
    if (rh->in_reloading) s->reloads_running--;
    rh->in_reloading = false;
    if (s->stopping) return;
    const char *base = asset__handle_uri(rh);
    size_t bl = strlen(base);
    asset__value_t *v = rh->status == ASSET_OK ? rh->value : NULL;
    /* its file was in use, and no event will say when it is free: tried again later,
     * quietly (or at once, when a change came meanwhile); given up, it fails as any */
    uint64_t tried_ms = 0;
    if (!v && rh->reload_transient) {
        if (rh->reload_again || rh->reload_again_dep) {
            reload_after(s, base, bl, rh->loader,
                         rh->reload_again_forced || rh->reload_again_dep || rh->reload_forced);
            return;
        }
        if (retry_later(s, rh, &tried_ms)) return;
    } else {
        retry_forget(s, base, bl);
    }
    bool changed = false, other = false; /* other: a handle the revalidation did not answer */
    size_t told = 0, again = 0;          /* failures told, and told already (not again) */
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, base, bl);
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));) {
        if (h == rh || !live(h) || h->loader != rh->loader) continue;
        asset__value_t *cur = h->reload_pending && h->reload_value ? h->reload_value : h->value;
        if (!v) {
            const char *why = rh->message ? rh->message : asset_strerror(rh->status);
            char *msg = tried_ms ? asset__asprintf("reload failed: %s (tried again for %llu ms)",
                                                   why, (unsigned long long)tried_ms)
                                 : asset__asprintf("reload failed: %s", why);
            /* the same failure of the same source: an attempt, not news (unless asked
             * for: asset_server_reload, a dependency's change) */
            if (!rh->reload_forced && told_already(h, rh->status, msg, rh->nc_version)) {
                if (recovering(h)) drop_pending(h); /* the later result: what h shows */
                asset_free(msg);
                s->stats.reload_failures++;
                again++;
                continue;
            }
            fail_pending(h, rh->status, msg, rh->nc_version);
            told++;
            continue;
        }
        /* the revalidation of the version h holds (a NOT_MODIFIED, or a label's
         * revalidation that read that version again): unchanged */
        bool same = rh->nc_version && h->nc_version && !strcmp(rh->nc_version, h->nc_version);
        /* revalidated against a label's version (asset__reload_live_base): v is that
         * label's value, no whole one, and says only that the version did not change. A
         * handle of another version (loaded since; a whole one) is not answered: a reload
         * follows, which reads it all (its handles differ now) */
        if (rh->reload_unchanged && !same) {
            other = true;
            continue;
        }
        asset__value_t *nv = rh->reload_unchanged ? cur : v;
        if (h->label && !rh->reload_unchanged) {
            asset__value_extra_t *x = asset__value_x(v);
            size_t n = asset__value_nlabels(v);
            size_t i = x ? asset__labels_find(s, x->labels, n, &x->label_ix, h->label) : n;
            nv = i < n ? x->labels[i].value : NULL;
            if (!nv) {
                char *msg = asset__asprintf("reload failed: %s: label '%s' not found",
                                            asset__handle_uri(h), h->label);
                if (!rh->reload_forced && told_already(h, ASSET_E_NOT_FOUND, msg, rh->nc_version)) {
                    if (recovering(h)) drop_pending(h);
                    asset_free(msg);
                    s->stats.reload_failures++;
                    continue;
                }
                fail_pending(h, ASSET_E_NOT_FOUND, msg, rh->nc_version);
                /* logged as any reload failure: its file's reload, which did not fail,
                 * logs nothing of it (the message alone, before its version's NUL) */
                if (h->reload_message) asset__log(s, ASSET_LOG_INFO, "%s", h->reload_message);
                asset__queue_push(s, h);
                continue;
            }
        }
        /* a label's revalidation that read the version its handle holds: unchanged, as
         * a NOT_MODIFIED would have said, had there been a whole value to answer with
         * (asset__reload_live_base can lend none for a label held alone: its handle holds
         * the label's value). Its file's whole value no longer cached (evicted, cleared,
         * over its budget, no_cache), each http_poll_ms poll published a reload of the
         * unchanged bytes to the label (a review) */
        if (h->label && !rh->reload_forced && same) nv = cur;
        if (!same) { /* the version of what it will hold, for its next reload */
            asset_free(h->nc_version);
            h->nc_version = rh->nc_version ? asset__strdup(rh->nc_version) : NULL;
        }
        if (nv == cur) { /* revalidated: unchanged, publishes nothing but a recovery; the
                          * later result wins, so a failure decided before it is not
                          * published either (queued below) */
            revalidated(h);
            continue;
        }
        set_pending(h, ASSET_OK, nv, NULL);
        asset__queue_push(s, h);
        changed = true;
    }
    /* failures were queued above only for labels; queue the others now (one pass
     * decides, a second queues, so a handle is queued once) */
    asset__uri_iter_init(&it, s, base, bl);
    for (asset_handle_t *h; (h = asset__uri_iter_next(&it));)
        if (h->reload_pending && !h->queued) asset__queue_push(s, h);
    if (rh->status != ASSET_OK && (told || !again)) /* not for a failure told already */
        asset__log(s, ASSET_LOG_INFO, "reload failed: %s",
                   rh->message ? rh->message : asset_strerror(rh->status));
    else if (changed)
        asset__log(s, ASSET_LOG_INFO, "reloaded %s", base);
    /* each walks every live handle or cached value: only for a URI values depend on */
    if (changed && s->dep_values && asset__dependents_any(s, base)) {
        queue_dependents(s, base, rh->loader); /* before: it may look in the caches */
        drop_cached_dependents(s, base, rh->loader);
    }
    if (changed) atomic_store(&s->wake_pending, true); /* not stopping: checked above */
    /* a dependency's change while it ran: a re-parse, unless v was built on the changed
     * dependency already (loaded after its change: a parent and its dependency saved
     * together, the parent was published twice). A label's value lent for its version
     * (reload_unchanged) holds none of the dependencies: re-parsed */
    bool dep = rh->reload_again_dep && (!v || rh->reload_unchanged || !value_current(v));
    if (rh->reload_again || other || dep)
        reload_after(s, base, bl, rh->loader, rh->reload_again_forced || dep);
}

/* ---- publishing (flush thread, [lock]) ---- */

bool asset__reload_publish(asset_server_t *s, asset_handle_t *h, asset__value_t **old) {
    *old = NULL;
    if (!h->reload_pending) return false;
    /* cancelled or failed meanwhile; or its last reference released since it was decided:
     * a released handle is not reloaded (its reloaded callbacks fired, with a user its
     * caller may have freed on letting the handle go: a review) */
    if (atomic_load(&h->state) != ASSET_STATE_LOADED || h->refs <= 0) {
        drop_pending(h);
        return false;
    }
    h->reload_pending = false;
    asset_free(h->message);
    h->message = NULL;
    h->reload_error = h->reload_status;
    if (h->reload_status == ASSET_OK && h->reload_value == h->value) {
        /* a failure's recovery (revalidated): the same value, no new version */
        asset__value_release(h->reload_value);
    } else if (h->reload_status == ASSET_OK) {
        /* its new dependencies (decided before it, but queued behind h when h was queued
         * already: a late completion callback, an earlier reload) are published with it:
         * h read LOADED on a dependency not done, past a budgeted flush (a review) */
        const asset__value_t *nv = h->reload_value;
        for (size_t i = 0, n = nv ? asset__value_ndeps(nv) : 0; i < n; i++)
            asset__handle_publish_early(s, asset__value_x(nv)->deps->h[i]);
        *old = h->value; /* released after the callbacks */
        h->value = h->reload_value;
        /* after the value it numbers (the reloaded callbacks read it on this thread) */
        atomic_store_explicit(&h->version,
                              atomic_load_explicit(&h->version, memory_order_relaxed) + 1,
                              memory_order_release);
        s->stats.reloads++;
    } else {
        asset__value_release(h->reload_value);
        h->message = h->reload_message; /* "reload failed: <uri>: <step>: <why>" */
        s->stats.reload_failures++;
    }
    h->reload_value = NULL;
    h->reload_message = NULL;
    return true;
}

void (*asset__reload_fire_hook)(asset_handle_t *h, void *user) = NULL;

void asset__reload_fire(asset_server_t *s, asset_handle_t *h) {
    /* only those connected before: one connected by a callback here waits for the next
     * reload, or one connecting another each time kept the flush going (a review) */
    uint64_t upto = s->next_cb_id;
    /* each once, in order, whatever the callbacks disconnect meanwhile: the cursor is the
     * next one, and a disconnect of it moves it on (restarting from the first after each
     * call, to be safe from that, was quadratic: a review) */
    s->rcb_cursor = h->rcbs ? h->rcbs->next : NULL;
    asset__cb_t *c;
    /* none during destroy, nor once a callback released h's last reference, which ends
     * them as a release before the flush does (asset__reload_publish): the next ones
     * fired, with a user their program may have freed with the handle (thirty-seventh
     * review) */
    while (!s->stopping && h->refs > 0 && (c = s->rcb_cursor) && c->id <= upto) {
        s->cb_visits++;
        s->rcb_cursor = c == h->rcbs ? NULL : c->next;
        asset_handle_cb cb = c->cb;
        void *user = c->user;
        uv_mutex_unlock(&s->lock);
        if (asset__reload_fire_hook) asset__reload_fire_hook(h, user);
        cb(h, user);
        uv_mutex_lock(&s->lock);
    }
    s->rcb_cursor = NULL;
}

/* ---- the public API ---- */

uint64_t asset_handle_on_reloaded(asset_handle_t *h, asset_handle_cb cb, void *user) {
    return asset__cb_connect(h, true, cb, user, NULL);
}

uint64_t asset_handle_on_reloaded_free(asset_handle_t *h, asset_handle_cb cb, void *user,
                                       void (*free_user)(void *user)) {
    return asset__cb_connect(h, true, cb, user, free_user);
}

asset_status_t asset_handle_reload_error(const asset_handle_t *h) {
    return h ? h->reload_error : ASSET_E_INVALID;
}

uint64_t asset_handle_version(const asset_handle_t *h) {
    /* any thread: the flush thread writes it (a plain read raced with the flush's write,
     * also at the first publish) */
    return h ? atomic_load_explicit(&((asset_handle_t *)h)->version, memory_order_acquire) : 0;
}

void asset_server_reload(asset_server_t *s, const char *uri) {
    if (!s || !uri) return;
    size_t n = strcspn(uri, "#");
    char *base = asset__strndup(uri, n);
    asset_uri_t u;
    const char *why;
    asset_status_t st =
        base ? asset__uri_parse(base, s->base_dir, s->file_root, &u, &why) : ASSET_E_NO_MEMORY;
    if (st == ASSET_OK) {
        asset__reload_request(s, u.uri, true);
        asset__uri_dispose(&u);
    } else if (st == ASSET_E_NO_MEMORY) { /* the handles of uri as given hear of it */
        uv_mutex_lock(&s->lock);
        fail_live_no_memory(s, uri, n, NULL);
        uv_mutex_unlock(&s->lock);
    }
    asset_free(base);
}

/* ---- the I/O thread: watches, debounce, HTTP polls ---- */

typedef struct wdir wdir_t;

typedef struct wfile {
    asset__map_node_t node;  /* in rio->files; key: uri */
    asset__map_node_t named; /* in its directory's names; key: name */
    struct wfile *next, *prev;
    char *name; /* in its directory, folded as the OS compares names (asset__path_fold_name) */
    char *uri;
    uv_fs_poll_t *poll; /* when the directory could not be watched */
    struct asset__rio *rio;
    wdir_t *dir;
    bool unpolled; /* its poll could not start, and a warning said so: once */
    bool absent;   /* watched while not there (for a failed load's parents): its poll's
                    * "no such file" is no change */
    /* polled, for a failed load's parents: the version it failed on, until its poll
     * calls back (its first look may have been after a change: dir_check) */
    char *fail_version;
    /* its name as its directory spells it (as loaded, for an ASCII name), which its path
     * (polls, warnings) is made of; name itself where folding changed nothing (POSIX).
     * The folded one named a file polled on Windows "C:/x/NOTES.TXT" for notes.txt, in
     * warnings, and at that path, which a case-sensitive folder does not have. */
    char *spelled;
} wfile_t;

static void wfile_free(wfile_t *f) {
    if (f->name != f->spelled) asset_free(f->name);
    asset_free(f->spelled);
    asset_free(f->fail_version);
    asset_free(f->uri);
    asset_free(f);
}

struct wdir {
    asset__map_node_t node; /* key: the directory's path */
    uv_fs_event_t *ev;      /* NULL: its files are polled */
    wfile_t *files;
    asset__map_t names; /* its files by folded name: an event finds its file(s) at once */
    struct asset__rio *rio;
    uint64_t dev, ino; /* the directory its watch follows (dir_check), while ev */
    bool lost;         /* it was watched, and could not be watched again (rewatch) */
    /* its path is longer than the system takes, or the system has no stat (the web,
     * rio_t.no_stat): not polled either */
    bool no_poll;
};

/* A change waiting for its quiet time, or a retry of a reload that found its file in
 * use (retry_later) waiting for its delay. A change's deadline is its time plus the same
 * debounce, the latest so far but for the retries': the list, by deadline, takes a
 * change at its end, past those few. */
typedef struct pend {
    asset__map_node_t node; /* key: URI */
    uint64_t deadline;
    struct pend *prev, *next; /* in rio's list, by deadline */
    bool forced;              /* a retry of a fresh parse: so is the reload */
} pend_t;

typedef struct asset__rio {
    asset_server_t *s;
    asset__map_t dirs, pending;
    pend_t *pend_head, *pend_tail; /* the pending changes, by deadline */
    asset__map_t files;            /* every wfile, by URI */
    uv_timer_t debounce, poll;
    uv_timer_t dir_check; /* whether each watched path still names its directory */
    unsigned open;        /* uv handles not closed yet (the four timers included) */
    bool stopping;
    uv_timer_t burst_end; /* after the events one read of the OS's queue gave (0 ms) */
    unsigned burst;       /* events since that read began */
    unsigned burst_max;   /* as many in one read: some may have been dropped (0: never) */
    unsigned closing;     /* close_handle's handles whose close has not ended (tests) */
    /* a stat is not implemented (the web: UV_ENOSYS), so nothing can be polled either (a
     * poll is a stat each period): a directory that cannot be watched said "polling its
     * files every N ms", then each file "cannot poll" (thirty-fifth review) */
    bool no_stat;
    /* where the last http_poll_ms tick that could not list every URL stopped: the number
     * of the URL (counted along a tick's walk, poll_walk_t) the next one begins with. The
     * I/O thread's, as the ticks */
    size_t poll_from;
} rio_t;

static void rio_release(rio_t *r) {
    if (--r->open == 0) asset_free(r);
}

/* close callback of the heap-allocated handles (fs events, fs polls) */
static void close_freed(uv_handle_t *h) {
    rio_t *r = h->data;
    r->closing--;
    asset_free(h);
    rio_release(r);
}

static void close_handle(rio_t *r, uv_handle_t *h) {
    h->data = r;
    r->closing++;
    uv_close(h, close_freed);
}

static void timer_closed(uv_handle_t *h) { rio_release(h->data); }

/* How often a polled file is looked at: reload_debounce_ms, but from 100 ms to 1 s. It
 * was reload_debounce_ms however long: a debounce of a minute left a polled file's change
 * unseen for up to a minute, and its reload a minute after that (a review); the
 * debounce still waits its quiet time after the poll sees the change. */
static unsigned poll_ms(const asset_server_t *s) {
    uint32_t ms = s->cfg.reload_debounce_ms;
    return ms < 100 ? 100 : ms > 1000 ? 1000 : (unsigned)ms;
}

static void debounce_fire(uv_timer_t *t);

static void pend_unlink(rio_t *r, pend_t *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        r->pend_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        r->pend_tail = p->prev;
    p->prev = p->next = NULL;
}

/* p leaves the list and r->pending (the caller frees it). */
static void pend_take(rio_t *r, pend_t *p) {
    pend_unlink(r, p);
    asset__map_remove(&r->pending, &p->node);
    /* 10,000 files changed at once kept their table while one more change waited (a
     * file written again and again); no walk of r->pending but rio_stop's */
    asset__map_trim(&r->pending);
}

static void pend_free(pend_t *p) {
    asset_free((char *)p->node.key);
    asset_free(p);
}

/* p goes in the list by its deadline, looked for from the end: a change's is at the end
 * but for the retries due later than it. */
static void pend_insert(rio_t *r, pend_t *p) {
    pend_t *after = r->pend_tail;
    while (after && after->deadline > p->deadline) after = after->prev;
    p->prev = after;
    p->next = after ? after->next : r->pend_head;
    if (p->next)
        p->next->prev = p;
    else
        r->pend_tail = p;
    if (after)
        after->next = p;
    else
        r->pend_head = p;
}

/* The timer for the first deadline: a look at one change, not at every one (a
 * directory of 10,000 files replaced looked at 50 million) */
static void rearm_debounce(rio_t *r) {
    if (!r->pend_head) {
        uv_timer_stop(&r->debounce);
        return;
    }
    atomic_fetch_add_explicit(&r->s->rio_visits, 1, memory_order_relaxed);
    uint64_t next = r->pend_head->deadline;
    uint64_t now = asset__now_ns();
    uv_timer_start(&r->debounce, debounce_fire, next > now ? (next - now + 999999) / 1000000 : 0,
                   0);
}

/* uri's reload is due at deadline (forced: a fresh parse). A change's moves one pending
 * to it (the quiet time runs from the last change); a retry's leaves one pending as it
 * is: that reload is the retry too. False: no memory (the caller tells the handles). */
static bool pend_at(rio_t *r, const char *uri, uint64_t deadline, bool forced, bool retry) {
    pend_t *p = (pend_t *)asset__map_get(&r->pending, uri);
    if (p && retry) {
        p->forced |= forced;
        return true;
    }
    if (!p) {
        p = asset__calloc(1, sizeof *p);
        char *key = p ? asset__strdup(uri) : NULL;
        if (!key) {
            asset_free(p);
            return false;
        }
        p->node.key = key;
        if (!asset__map_put(&r->pending, &p->node)) {
            pend_free(p);
            return false;
        }
    } else {
        pend_unlink(r, p);
    }
    p->forced |= forced;
    p->deadline = deadline;
    pend_insert(r, p);
    rearm_debounce(r);
    return true;
}

/* A change of uri (or a retry of its reload) found no memory to wait for its reload:
 * its live handles keep their value and hear of it (NO_MEMORY), as for any change that
 * cannot be loaded; it was dropped, and nothing said so (a review). */
static void pend_failed(rio_t *r, const char *uri) {
    asset_server_t *s = r->s;
    asset__log(s, ASSET_LOG_ERROR, "%s: reload: out of memory; change not loaded", uri);
    uv_mutex_lock(&s->lock);
    fail_live_no_memory(s, uri, strlen(uri), NULL);
    uv_mutex_unlock(&s->lock);
    asset__maybe_wake(s);
}

static void changed(rio_t *r, const char *uri) {
    if (r->stopping) return;
    atomic_fetch_add_explicit(&r->s->rio_changes, 1, memory_order_relaxed);
    if (!pend_at(r, uri, asset__now_ns() + (uint64_t)r->s->cfg.reload_debounce_ms * 1000000u, false,
                 false))
        pend_failed(r, uri);
}

/* A reload that found its file in use, due again (retry_later). */
static void retry_add(void *arg) {
    retry_req_t *q = arg;
    rio_t *r = q->s->rio; /* NULL: stopped (or never set up: no memory) */
    if (r && !r->stopping && !pend_at(r, q->uri, q->due_ns, q->forced, true))
        pend_failed(r, q->uri);
    asset_free(q);
}

static void debounce_fire(uv_timer_t *t) {
    rio_t *r = t->data;
    uint64_t now = asset__now_ns();
    for (pend_t *due; (due = r->pend_head) && due->deadline <= now;) {
        atomic_fetch_add_explicit(&r->s->rio_visits, 1, memory_order_relaxed);
        pend_take(r, due);
        asset__reload_request(r->s, due->node.key, due->forced);
        pend_free(due);
    }
    rearm_debounce(r);
}

static void on_dir_event(uv_fs_event_t *ev, const char *filename, int events, int status);
static bool start_poll(rio_t *r, wfile_t *f, const char *path);
static bool file_there(const char *path);

/* The path of f in its directory d, to poll it at (NULL: no memory). */
static char *file_path(const wdir_t *d, const wfile_t *f) {
    const char *dir = d->node.key;
    size_t dl = strlen(dir);
    bool sep = dl && dir[dl - 1] != '/'; /* a root ("/", "C:/") ends in one */
    char *path = asset_alloc(dl + sep + strlen(f->spelled) + 1);
    if (!path) return NULL;
    memcpy(path, dir, dl);
    if (sep) path[dl] = '/';
    strcpy(path + dl + sep, f->spelled);
    return path;
}

/* f of d may have changed, unseen (its directory replaced or watched again, events
 * lost): revalidated. A failed dependency's file still not there has not: taken as
 * changed, each parent awaiting it reloaded (a fresh parse) only to fail again, and
 * was told so again (a review). */
static void revalidate(rio_t *r, wdir_t *d, wfile_t *f) {
    if (f->absent) {
        char *path = file_path(d, f);
        f->absent = path && !file_there(path); /* no memory: looked at, as any */
        asset_free(path);
        if (f->absent) return;
    }
    changed(r, f->uri);
}

/* The identity of the directory at path now: 0, or a libuv error (UV_ENOTDIR:
 * something else is there; UV_ENOMEM: no memory). A symlink is followed, as the watch
 * follows it. */
static int dir_identity(rio_t *r, const char *path, uint64_t *dev, uint64_t *ino) {
    uv_fs_t req;
    bool oom = false;
    char *long_form = asset__watch_path(path, &oom); /* Windows: past MAX_PATH, \\?\ */
    if (oom) return UV_ENOMEM;
    int rc = uv_fs_stat(asset__io_loop(r->s->io), &req, long_form ? long_form : path, NULL);
    asset_free(long_form);
    if (rc == 0 && (req.statbuf.st_mode & S_IFMT) != S_IFDIR) rc = UV_ENOTDIR;
    if (rc == UV_ENOSYS) r->no_stat = true;
    if (rc == 0) {
        *dev = req.statbuf.st_dev;
        *ino = req.statbuf.st_ino;
    }
    uv_fs_req_cleanup(&req);
    return rc;
}

/* Watches dir for d with a new handle (d->ev), and notes what it follows; a libuv error
 * (UV_ENOMEM for want of memory) when it cannot. Only a directory: the OS's watch takes
 * a file as well (inotify; libuv on Windows watches a file through its folder), and a
 * watched folder replaced by a file was "there again: watched", its files' polls
 * stopped (thirty-first review); it is UV_ENOTDIR, as gone. */
static int dir_watch_start(rio_t *r, wdir_t *d, const char *dir) {
    uint64_t dev = 0, ino = 0, dev2 = 0, ino2 = 0;
    int rc = dir_identity(r, dir, &dev, &ino);
    if (rc != 0) return rc;
    /* Windows: a folder past MAX_PATH in its \\?\ form, which libuv passes on as it is
     * (twenty-fourth review: given as it was, the watch failed on Windows) */
    bool oom = false;
    char *long_form = asset__watch_path(dir, &oom);
    if (oom) return UV_ENOMEM;
    uv_fs_event_t *ev = asset__calloc(1, sizeof *ev);
    if (!ev) {
        asset_free(long_form);
        return UV_ENOMEM;
    }
    uv_fs_event_init(asset__io_loop(r->s->io), ev);
    r->open++;
    ev->data = d;
    rc = uv_fs_event_start(ev, on_dir_event, long_form ? long_form : dir, 0);
    asset_free(long_form);
    if (rc != 0) {
        close_handle(r, (uv_handle_t *)ev);
        return rc;
    }
    d->ev = ev;
    /* what it follows now: the directory there before the start, when still there after
     * it (else 0: unknown, and the next directory check watches the path anew) */
    bool same = dir_identity(r, dir, &dev2, &ino2) == 0 && dev2 == dev && ino2 == ino;
    d->dev = same ? dev : 0;
    d->ino = same ? ino : 0;
    return 0;
}

/* The directory itself was renamed, deleted or replaced (a re-export, a branch switch):
 * its watch followed the old one, or died. Watch the path again (the directory now
 * there), or, when there is none yet, poll its files (a poll sees a file appear); and
 * revalidate every file, since each may have changed. The watch is a new handle, the
 * old one closed: libuv on Windows cannot start a uv_fs_event_t again while its last
 * ReadDirectoryChangesW is in flight (stop closes the directory and leaves it; start
 * issues another on the same OVERLAPPED and buffer, and inside the handle's own
 * callback, where this runs for an event, libuv then queues a third: a debug libuv
 * asserts "!handle->req_pending"). */
static void rewatch(wdir_t *d) {
    rio_t *r = d->rio;
    const char *dir = d->node.key;
    close_handle(r, (uv_handle_t *)d->ev); /* no event of it is delivered any more */
    d->ev = NULL;
    if (dir_watch_start(r, d, dir) != 0) {
        d->lost = true; /* watched again once a directory is there (dir_check) */
        atomic_fetch_sub(&r->s->watches, 1);
        asset__log(r->s, ASSET_LOG_WARN,
                   "watch: %s was replaced and cannot be watched again: "
                   "polling its files every %u ms",
                   dir, poll_ms(r->s));
        for (wfile_t *f = d->files; f; f = f->next) {
            if (f->poll) continue;
            /* no memory for its path: said, and tried again (dir_check); it was not
             * seen again, and nothing said so (a review) */
            char *path = file_path(d, f);
            start_poll(r, f, path);
            asset_free(path);
        }
    }
    for (wfile_t *f = d->files; f; f = f->next) revalidate(r, d, f);
}

/* Whether filename names the watched directory itself: libuv reports an event on the
 * directory (moved, deleted) with its own base name. */
static bool names_the_dir(const wdir_t *d, const char *filename) {
    const char *slash = strrchr(d->node.key, '/');
    return filename && slash && !strcmp(filename, slash + 1);
}

/* The events of one read of the OS's queue were delivered (libuv reads the whole queue
 * in one callback; this 0 ms timer runs at the loop's next turn). Linux: inotify queues
 * at most max_queued_events events, then one IN_Q_OVERFLOW and drops the rest, and
 * libuv skips that notice (it names no watch): a change made while the queue was full
 * (a checkout of a large folder while the I/O thread was busy) went unseen for good. A
 * read that gave at least half as many events may have lost some: every watched file
 * is taken as changed, as for an event that names no file (revalidated: reloaded only
 * if its version moved). */
static void burst_ended(uv_timer_t *t) {
    rio_t *r = t->data;
    unsigned n = r->burst;
    r->burst = 0;
    if (r->stopping || !r->burst_max || n < r->burst_max) return;
    asset__log(r->s, ASSET_LOG_WARN,
               "watch: %u change events at once (the system queues %u): some may have been "
               "dropped, every watched file is looked at again",
               n, r->burst_max * 2);
    size_t b = 0;
    for (asset__map_node_t *it = NULL; (it = asset__map_next(&r->files, it, &b));)
        revalidate(r, ((wfile_t *)it)->dir, (wfile_t *)it);
}

/* name folded as the OS compares names (asset__path_fold_name), in stack when it fits
 * in cap bytes, else allocated (asset_free when not stack); NULL: no memory. */
static char *folded_copy(const char *name, char *stack, size_t cap) {
    size_t len = strlen(name);
    char *out = len < cap ? stack : asset_alloc(len + 1);
    if (!out) return NULL;
    memcpy(out, name, len + 1);
    asset__path_fold_name(out);
    return out;
}

static void on_dir_event(uv_fs_event_t *ev, const char *filename, int events, int status) {
    wdir_t *d = ev->data;
    if (d->rio->stopping) return;
    if (d->rio->burst_max && d->rio->burst++ == 0)
        uv_timer_start(&d->rio->burst_end, burst_ended, 0, 0);
    /* an error (the directory is gone) or the directory's own rename: watch it anew. A
     * file of the directory's own name is also seen here; watching anew changes
     * nothing for it, and it is revalidated with the others */
    if (status < 0 || ((events & UV_RENAME) && names_the_dir(d, filename))) {
        rewatch(d);
        return;
    }
    if (!filename) { /* which file is not said: any of them */
        for (wfile_t *f = d->files; f; f = f->next) revalidate(d->rio, d, f);
        return;
    }
    /* its file(s) by name, folded as the names were (Windows: an event names a.txt,
     * whichever letters the load used): a walk of the directory's files for each
     * event cost the square of them when all changed (a checkout) */
    char stack[256], *name = folded_copy(filename, stack, sizeof stack);
    if (!name) {
        for (wfile_t *f = d->files; f; f = f->next) revalidate(d->rio, d, f); /* any of them */
        return;
    }
    for (asset__map_node_t *n = asset__map_get(&d->names, name); n;
         n = asset__map_get_next(&d->names, n)) {
        atomic_fetch_add_explicit(&d->rio->s->rio_visits, 1, memory_order_relaxed);
        wfile_t *f = (wfile_t *)((char *)n - offsetof(wfile_t, named));
        /* made anew (a rename or a creation): a link now (`ln -sf`, a file replaced by
         * one) is polled, as one loaded as a link; its target's edits show only in the
         * target's directory (whether it was a link was asked once, when its watch
         * began: a review) */
        if ((events & UV_RENAME) && !f->poll) {
            char *path = file_path(d, f);
            if (path && asset__path_is_link(path)) start_poll(d->rio, f, path);
            asset_free(path);
        } else if ((events & UV_RENAME) && f->poll) {
            /* and a link no more (an editor's save renamed a file over it, or it went):
             * its poll goes, this watch sees the file (it was polled for good); in a
             * watched directory only a link is polled */
            char *path = file_path(d, f);
            if (path && !asset__path_is_link(path)) {
                close_handle(d->rio, (uv_handle_t *)f->poll);
                f->poll = NULL;
                asset_free(f->fail_version); /* watched: its events say */
                f->fail_version = NULL;
                atomic_fetch_sub(&d->rio->s->watches, 1);
            }
            asset_free(path);
        }
        /* one watched while not there (for its parents) and made now is there from
         * then on: it stayed "not there", and its loss with its directory (a rename,
         * a poll's "no such file") was taken as no change, unsaid (a review) */
        revalidate(d->rio, d, f);
    }
    if (name != stack) asset_free(name);
}

static void on_poll(uv_fs_poll_t *p, int status, const uv_stat_t *prev, const uv_stat_t *curr) {
    (void)prev;
    (void)curr;
    wfile_t *f = p->data;
    if (status < 0 && f->absent) return; /* still not there */
    f->absent = false;
    asset_free(f->fail_version); /* it called back: dir_check need not look */
    f->fail_version = NULL;
    changed(f->rio, f->uri);
}

/* Polls f at path (NULL: there was no memory for it). One that cannot be polled (no
 * memory, libuv refused) is not watched at all: a warning says so, once, as for a
 * directory that cannot be watched (it went unsaid, and the file's hot reload was lost
 * silently: a review); a file of a directory that is not watched is tried again at
 * each dir_check. */
static bool start_poll(rio_t *r, wfile_t *f, const char *path) {
    bool oom = false;
    char *long_form = path ? asset__watch_path(path, &oom) : NULL; /* as dir_watch_start */
    uv_fs_poll_t *p = path && !oom ? asset__calloc(1, sizeof *p) : NULL;
    int rc = UV_ENOMEM;
    if (!p) asset_free(long_form);
    if (p) {
        uv_fs_poll_init(asset__io_loop(r->s->io), p);
        r->open++;
        p->data = f;
        rc = atomic_load(&asset__watch_fail_poll)
                 ? UV_ENOMEM
                 : uv_fs_poll_start(p, on_poll, long_form ? long_form : path, poll_ms(r->s));
        asset_free(long_form); /* (libuv keeps a copy) */
        long_form = NULL;
        if (rc == 0) {
            f->poll = p;
            f->unpolled = false;
            atomic_fetch_add(&r->s->watches, 1);
            return true;
        }
        close_handle(r, (uv_handle_t *)p);
    }
    if (!f->unpolled)
        asset__log(r->s, ASSET_LOG_WARN,
                   "watch: cannot poll %s%s%s (%s): changes of it are not seen "
                   "(asset_server_reload reloads it)",
                   path ? path : f->dir->node.key, path ? "" : "/", path ? "" : f->spelled,
                   uv_strerror(rc));
    f->unpolled = true;
    return false;
}

/* A new directory: watch it, or (out of watches, or forced by a test) poll its files. */
static wdir_t *dir_new(rio_t *r, const char *dir) {
    wdir_t *d = asset__calloc(1, sizeof *d);
    char *key = d ? asset__strdup(dir) : NULL;
    if (!key) {
        asset_free(d);
        return NULL;
    }
    d->node.key = key;
    d->rio = r;
    asset__map_init(&d->names);
    if (!asset__map_put(&r->dirs, &d->node)) {
        asset_free(key);
        asset_free(d);
        return NULL;
    }
    int rc = atomic_load(&asset__watch_force_poll) ? UV_ENOSPC : dir_watch_start(r, d, dir);
    if (rc == 0) {
        atomic_fetch_add(&r->s->watches, 1);
        return d;
    }
    if (rc == UV_ENAMETOOLONG || r->no_stat) {
        /* longer than a path the system takes in one call (PATH_MAX; its files load, a
         * directory at a time): a poll's stat of each of its files fails the same way at
         * every look, so nothing was seen, and the warning said they were polled (a
         * review). No stat at all (the web) neither. Said so once, at the watch's
         * start, and not polled */
        d->no_poll = true;
        asset__log(r->s, ASSET_LOG_WARN,
                   "watch: cannot watch %s (%s): its files cannot be polled either; changes "
                   "of them are not seen (asset_server_reload reloads them)",
                   dir, uv_strerror(rc));
        return d;
    }
    asset__log(r->s, ASSET_LOG_WARN, "watch: cannot watch %s (%s): polling its files every %u ms",
               dir, uv_strerror(rc), poll_ms(r->s));
    /* not there yet (a failed dependency's, watched for its parents: a level saved
     * before its new folder of textures was made): watched once it is (dir_check), as
     * one gone and back; its files were polled for good. ENOTDIR too: a folder on its
     * path is a file for now (replaced by a folder later), and it was polled for good */
    d->lost = rc == UV_ENOENT || rc == UV_ENOTDIR;
    return d;
}

/* A directory none of whose files is watched any more: its watch goes. */
static void dir_maybe_drop(rio_t *r, wdir_t *d) {
    if (d->files) return;
    asset__map_remove(&r->dirs, &d->node);
    asset__map_trim(&r->dirs); /* no walk of r->dirs (dir_check's) drops a directory */
    asset__map_free(&d->names);
    if (d->ev) {
        close_handle(r, (uv_handle_t *)d->ev);
        atomic_fetch_sub(&r->s->watches, 1);
    }
    asset_free((char *)d->node.key);
    asset_free(d);
}

/* f's URI has no handle any more: its poll and (when it was the last file of its
 * directory) its directory's watch go. */
static void file_drop(rio_t *r, wfile_t *f) {
    wdir_t *d = f->dir;
    asset__map_remove(&r->files, &f->node);
    asset__map_remove(&d->names, &f->named);
    /* their high-water tables back, as s->watched's: no walk of either (burst_ended's,
     * on_dir_event's) drops a file */
    asset__map_trim(&r->files);
    asset__map_trim(&d->names);
    if (f->prev)
        f->prev->next = f->next;
    else
        d->files = f->next;
    if (f->next) f->next->prev = f->prev;
    if (f->poll) {
        close_handle(r, (uv_handle_t *)f->poll);
        atomic_fetch_sub(&r->s->watches, 1);
    }
    wfile_free(f);
    atomic_fetch_sub(&r->s->watched_files, 1);
    dir_maybe_drop(r, d);
}

typedef struct unwatch_req {
    asset_server_t *s;
    char uri[];
} unwatch_req_t;

static void watch_remove(void *arg) {
    unwatch_req_t *u = arg;
    rio_t *r = u->s->rio;
    wfile_t *f = r && !r->stopping ? (wfile_t *)asset__map_get(&r->files, u->uri) : NULL;
    if (f) file_drop(r, f); /* none: its watch could not be set up */
    /* no handle names it: a change waiting for its quiet time reloads nothing, and goes
     * now. It stayed for the debounce: a session's measure after its last file was
     * released and its caches cleared found it (thirty-fifth review). A load since,
     * whose watch_add comes after this, compares the file with what it read */
    pend_t *p = r && !r->stopping ? (pend_t *)asset__map_get(&r->pending, u->uri) : NULL;
    if (p) {
        pend_take(r, p);
        pend_free(p);
        rearm_debounce(r);
    }
    asset_free(u);
}

void asset__reload_unwatch(asset_server_t *s, const char *uri, size_t n) {
    retry_forget(s, uri, n); /* a retry that waits finds nothing to reload */
    if (!s->cfg.watch || s->stopping || !s->io) return;
    if (asset__awaited_has(s, uri, n)) return; /* watched for its parents */
    asset__map_node_t *node = (asset__map_node_t *)asset__map_find_n(&s->watched, uri, n);
    if (!node) return;
    unwatch_req_t *u = asset_alloc(sizeof *u + n + 1);
    if (!u) return; /* out of memory: the watch stays, and its events find no handle */
    u->s = s;
    memcpy(u->uri, uri, n);
    u->uri[n] = 0;
    if (!asset__io_post(s->io, watch_remove, u)) {
        asset_free(u);
        return;
    }
    asset__map_remove(&s->watched, node); /* a new load watches it again */
    asset_free((char *)node->key);
    asset_free(node);
    /* its high-water table back as files go (never walked but by asset__reload_free,
     * which starts again after each remove) */
    asset__map_trim(&s->watched);
}

/* [lock] A URI in s->watched, with the path its watch was asked for (a package's
 * file: another one once the package is remounted). */
typedef struct watched {
    asset__map_node_t node; /* key: the URI */
    char path[];
} watched_t;

typedef struct watch_req {
    asset_server_t *s;
    char *path, *uri;
    char *version; /* of the bytes the load read, or NULL (unknown) */
    /* a failed load's, for its parents (asset__reload_watch_failed): it found no file
     * there (WATCH_ABSENT), or one it failed on (WATCH_FAILED) */
    int failed;
} watch_req_t;

enum { WATCH_LOADED, WATCH_ABSENT, WATCH_FAILED };

/* Whether the file at path still has this version (asset__fstat_version): it cannot
 * have changed since the load read it. */
static bool same_version(const char *path, const char *version) {
    asset__file_t *f = NULL;
    if (asset__file_open(path, &f) != 0) return false;
    asset__fstat_t st;
    bool same = false;
    if (asset__file_stat(f, &st) == 0) {
        char now[96];
        asset__fstat_version(&st, now);
        same = !strcmp(now, version);
    }
    asset__file_close(f);
    return same;
}

/* Whether a file is at path now (a file that was not there when its load failed). */
static bool file_there(const char *path) {
    asset__file_t *f = NULL;
    if (asset__file_open(path, &f) != 0) return false;
    asset__file_close(f);
    return true;
}

static void watch_add(void *arg) {
    watch_req_t *w = arg;
    rio_t *r = w->s->rio; /* rio_init was posted first */
    /* in the library's form (Windows: a package mounted as "C:\\pk\\" gave
     * "C:\\pk\\/x"): libuv's Windows watcher joins its directory and an event's name
     * with a '\\' and cuts after the directory less a final '\\', so the events of
     * "C:\\pk\\" named "\\x", no watched file (a review). Windows turns every '\\'
     * into '/' (a UNC path's too, then refused: watched so); POSIX keeps every byte. */
    asset_status_t pst;
    (void)asset__path_prepare(w->path, false, &pst);
    char *slash = strrchr(w->path, '/');
    if (!r || r->stopping || !slash || !slash[1]) goto out;
    /* watched at another path (a package remounted since): that watch goes */
    wfile_t *old = (wfile_t *)asset__map_get(&r->files, w->uri);
    if (old) file_drop(r, old);
    /* the directory: the path up to its last '/', or its root when that is the root's
     * own ("/" of "/x"; Windows "C:/" of "C:/x": "C:" alone is drive C's working
     * directory) */
    size_t rl = asset__path_root_len(w->path), dl = (size_t)(slash - w->path);
    while (dl > rl && dl > 1 && w->path[dl - 1] == '/') dl--; /* "pk//x": "pk" */
    if (dl < rl) dl = rl;
    char cut = w->path[dl];
    w->path[dl] = 0;
    wdir_t *d = (wdir_t *)asset__map_get(&r->dirs, w->path);
    if (!d) d = dir_new(r, w->path);
    w->path[dl] = cut;
    if (!d) goto nomem;
    wfile_t *f = asset__calloc(1, sizeof *f);
    /* named as the directory stores it, which the events say (Windows: "LONGFI~1.TXT"
     * or "\u00c9.txt" loaded, "long file.txt" or "\u00e9.txt" in the events) */
    bool oom = false;
    char *stored = f ? asset__path_stored_name(w->path, &oom) : NULL;
    if (f && !oom) f->spelled = stored ? stored : asset__strdup(slash + 1);
    /* Windows: "A.TXT" loaded, "a.txt" in the events; the spelled name itself where
     * folding changes nothing (always on POSIX: no copy kept) */
    char stack[256],
        *folded = f && f->spelled ? folded_copy(f->spelled, stack, sizeof stack) : NULL;
    if (folded && !strcmp(folded, f->spelled)) {
        f->name = f->spelled;
        if (folded != stack) asset_free(folded);
    } else if (folded) {
        f->name = folded == stack ? asset__strdup(stack) : folded; /* NULL: no memory */
    }
    if (f && f->name) f->named.key = f->name;
    if (!f || !f->name || !asset__map_put(&d->names, &f->named)) {
        if (f) wfile_free(f); /* its uri not yet w's */
        dir_maybe_drop(r, d);
        goto nomem;
    }
    f->node.key = f->uri = w->uri;
    if (!asset__map_put(&r->files, &f->node)) {
        asset__map_remove(&d->names, &f->named);
        f->uri = NULL; /* still w's */
        wfile_free(f);
        dir_maybe_drop(r, d);
        goto nomem;
    }
    w->uri = NULL;
    f->rio = r;
    f->dir = d;
    f->next = d->files;
    if (d->files) d->files->prev = f;
    d->files = f;
    /* a link's target changes in its own directory, which the watch of the link's does
     * not see: poll it (a stat follows the link), as a directory that cannot be watched
     * (started below, after a failed load's look) */
    bool polled = d->ev ? asset__path_is_link(w->path) : !d->no_poll;
    /* a change between the read and this watch would go unseen: one is treated as a
     * change (debounced like any). Only a real one: a revalidation of a load that was
     * not cached (no_cache, or evicted) reads afresh and publishes a reload even when
     * nothing changed. A polled file (a link, a directory that cannot be watched) is
     * revalidated anyway: its poll takes its first stat later, on its own, and a change
     * before that stat would be its starting point, never seen. A failed load's: a file
     * there now where there was none, or another version than the one it failed on (a
     * spurious change would reload its parents only to fail them again) */
    bool change = false;
    if (w->failed == WATCH_ABSENT)
        f->absent = !(change = file_there(w->path));
    else if (w->failed == WATCH_FAILED)
        change = w->version && !same_version(w->path, w->version);
    asset__watch_hook_fn hook = atomic_load(&asset__watch_failed_hook);
    if (w->failed != WATCH_LOADED && !change && hook) hook(w->path);
    if (polled) start_poll(r, f, w->path);
    if (f->poll && w->failed == WATCH_FAILED && !change) { /* looked at by dir_check */
        f->fail_version = w->version;
        w->version = NULL;
    }
    if (w->failed == WATCH_LOADED)
        change = f->poll || !w->version || !same_version(w->path, w->version);
    if (change) changed(r, f->uri);
    atomic_fetch_add(&w->s->watched_files, 1);
    goto out;
nomem: /* not watched: said, as a file that cannot be polled (it went unsaid: a review) */
    asset__log(w->s, ASSET_LOG_WARN,
               "watch: cannot watch %s (%s): changes of it are not seen "
               "(asset_server_reload reloads it)",
               w->path, uv_strerror(UV_ENOMEM));
out:
    asset_free(w->path);
    asset_free(w->uri);
    asset_free(w->version);
    asset_free(w);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool http_live(const asset_handle_t *h) {
    return live(h) && (!strncmp(asset__handle_uri(h), "http://", 7) ||
                       !strncmp(asset__handle_uri(h), "https://", 8));
}

/* [lock] A tick's walk of the URLs to poll: the index's http(s) URIs that have a live
 * handle (uri_index.c keeps them in a list of their own), then the live http(s) handles
 * left out of the index (no memory for their place), which only a walk of every handle
 * finds, while there are such handles. A tick walked every handle of the server: 5-17 ms
 * under the lock each period for 10 HTTP assets among 100,000 mem:// handles (forty-first
 * review; docs/hot-reload.md). */
typedef struct poll_walk {
    const asset__uri_group_t *g; /* the last URI's group given, or NULL */
    bool groups_done;
    asset_handle_t *scan; /* the next of s->all to look at, once the groups are done */
} poll_walk_t;

/* [lock] The next URL to poll (a base URI: *len its bytes), or NULL. */
static const char *poll_next(asset_server_t *s, poll_walk_t *w, size_t *len) {
    while (!w->groups_done) {
        if (!(w->g = asset__uri_http_next(s, w->g))) {
            w->groups_done = true;
            w->scan = s->uri_unindexed || !s->uri_index_on ? s->all : NULL;
            break;
        }
        s->http_poll_visits++;
        asset_handle_t *h;
        for (uint32_t i = 0; (h = asset__uri_group_handle(w->g, i)); i++) {
            s->http_poll_visits++;
            if (live(h)) {
                *len = strlen(asset__uri_group_key(w->g));
                return asset__uri_group_key(w->g);
            }
        }
    }
    while (w->scan) {
        asset_handle_t *h = w->scan;
        w->scan = h->all_next;
        s->http_poll_visits++;
        if ((!s->uri_index_on || h->uri_slot == ASSET__NOT_INDEXED) && http_live(h)) {
            *len = strcspn(asset__handle_uri(h), "#");
            return asset__handle_uri(h);
        }
    }
    return NULL;
}

/* Every live http(s) URI, once each (labels share their URI's request): a walk of the
 * polled URIs, then a sort (a URI of a handle left out of the index may be listed twice),
 * so a poll costs n log n, not the square of the live URIs. The walk begins after the
 * URL where the last tick's list ran out of memory and wraps around: out of memory, the
 * ticks reach every URL in turn (each began from the first handle again, and the same
 * first URLs were polled at every tick, the rest never: fortieth review). */
static void http_poll(uv_timer_t *t) {
    rio_t *r = t->data;
    asset_server_t *s = r->s;
    char **uris = NULL;
    size_t n = 0, cap = 0, from = r->poll_from, k = 0;
    bool full = false;
    uv_mutex_lock(&s->lock);
    /* the URLs from the one numbered `from` on, then (a second pass) those before it */
    for (int pass = 0; pass < (from ? 2 : 1) && !full; pass++) {
        poll_walk_t w = {0};
        const char *uri;
        size_t len = 0;
        k = 0;
        while (!full && (uri = poll_next(s, &w, &len))) {
            if ((k++ < from) != (pass == 1)) {
                if (pass == 1) break; /* the second pass is past the first's start */
                continue;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                char **u = asset_realloc(uris, nc * sizeof *u);
                if (!u) { /* out of memory: these are polled, the rest next time */
                    full = true;
                    r->poll_from = k - 1; /* this one's number: the next tick's first */
                    break;
                }
                uris = u;
                cap = nc;
            }
            if ((uris[n] = asset__strndup(uri, len))) n++;
        }
    }
    /* every URL listed: the next tick walks once, from the first (it kept the old number,
     * and every tick after one short of memory walked the URLs twice) */
    if (!full) r->poll_from = 0;
    uv_mutex_unlock(&s->lock);
    if (n) qsort(uris, n, sizeof *uris, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (!i || strcmp(uris[i], uris[i - 1]))
            reload_request(s, uris[i], NULL, false, false, true); /* conditional GET */
    }
    for (size_t i = 0; i < n; i++) asset_free(uris[i]);
    asset_free(uris);
    atomic_fetch_add(&asset__http_poll_ticks, 1);
}

/* A watch follows its directory, and only the directory's own rename or deletion is
 * reported: one whose parent is replaced (a tree re-exported: renamed away, a new one
 * made in its place) reports nothing, and the edits at its path were never seen again.
 * Each watched path is looked at (a stat per directory) every DIR_CHECK_MS: one that
 * names another directory now, or none, is watched anew (rewatch). */
static void dir_check(uv_timer_t *t) {
    rio_t *r = t->data;
    if (r->stopping) return;
    size_t b = 0;
    for (asset__map_node_t *n = asset__map_next(&r->dirs, NULL, &b); n;
         n = asset__map_next(&r->dirs, n, &b)) {
        wdir_t *d = (wdir_t *)n;
        if (d->no_poll) continue; /* neither watched nor polled, for good (dir_new) */
        /* a directory gone (its files polled meanwhile) and there again: watched again,
         * its files' polls stop (but a link's), and each file is revalidated (a change
         * between the two). It was polled for good: a stat of each file each period */
        if (!d->ev && d->lost && dir_watch_start(r, d, d->node.key) == 0) {
            d->lost = false;
            atomic_fetch_add(&r->s->watches, 1);
            asset__log(r->s, ASSET_LOG_INFO, "watch: %s is there again: watched", d->node.key);
            for (wfile_t *f = d->files; f; f = f->next) {
                char *path = f->poll ? file_path(d, f) : NULL;
                if (path && !asset__path_is_link(path)) {
                    close_handle(r, (uv_handle_t *)f->poll);
                    f->poll = NULL;
                    asset_free(f->fail_version); /* watched: its events say */
                    f->fail_version = NULL;
                    atomic_fetch_sub(&r->s->watches, 1);
                }
                asset_free(path);
                revalidate(r, d, f);
            }
            continue;
        }
        if (!d->ev) { /* its files are polled at their paths: those that could not be
                       * (no memory) are tried again, and revalidated once they are */
            for (wfile_t *f = d->files; f; f = f->next) {
                if (f->poll && !f->absent && !f->fail_version) continue;
                char *path = file_path(d, f);
                if (f->poll) {
                    /* a failed dependency's file not there when its poll started, or
                     * there at the version it failed on, and made or changed before the
                     * poll's first look: libuv took that look as the starting point,
                     * and calls back only on a difference from it. The change was never
                     * seen (a review): looked at here, until the poll calls back */
                    if (path &&
                        (f->absent ? file_there(path) : !same_version(path, f->fail_version))) {
                        f->absent = false;
                        asset_free(f->fail_version);
                        f->fail_version = NULL;
                        changed(r, f->uri);
                    }
                } else if (start_poll(r, f, path)) {
                    revalidate(r, d, f); /* NULL: quietly */
                }
                asset_free(path);
            }
            continue;
        }
        uint64_t dev = 0, ino = 0;
        if (dir_identity(r, d->node.key, &dev, &ino) != 0 || dev != d->dev || ino != d->ino)
            rewatch(d); /* keeps d in r->dirs */
    }
}

/* Every second, whatever reload_debounce_ms (a stat per watched directory: 1,000 of them
 * cost about 6 ms a second, docs/hot-reload.md). It was the debounce when that was
 * longer: with 60 s, a directory back, made later or under a replaced parent was watched
 * again up to a minute late, and a polled file's appearance before its poll's first
 * look went unseen as long (a review, as poll_ms's). */
#define DIR_CHECK_MS 1000u

static void rio_stop(void *arg) {
    rio_t *r = arg;
    r->stopping = true;
    size_t b;
    for (asset__map_node_t *n; (b = 0, n = asset__map_next(&r->dirs, NULL, &b));) {
        wdir_t *d = (wdir_t *)n;
        asset__map_remove(&r->dirs, n);
        while (d->files) {
            wfile_t *f = d->files;
            d->files = f->next;
            if (f->poll) close_handle(r, (uv_handle_t *)f->poll);
            wfile_free(f);
        }
        if (d->ev) close_handle(r, (uv_handle_t *)d->ev);
        asset__map_free(&d->names); /* its nodes were the files freed above */
        asset_free((char *)d->node.key);
        asset_free(d);
    }
    asset__map_free(&r->dirs);
    asset__map_free(&r->files); /* its nodes were the files freed above */
    for (asset__map_node_t *n; (b = 0, n = asset__map_next(&r->pending, NULL, &b));) {
        asset__map_remove(&r->pending, n);
        pend_free((pend_t *)n);
    }
    asset__map_free(&r->pending);
    r->pend_head = r->pend_tail = NULL;
    atomic_store(&r->s->watches, 0);
    r->s->rio = NULL;
    uv_close((uv_handle_t *)&r->debounce, timer_closed);
    uv_close((uv_handle_t *)&r->poll, timer_closed);
    uv_close((uv_handle_t *)&r->dir_check, timer_closed);
    uv_close((uv_handle_t *)&r->burst_end, timer_closed);
}

static void rio_init(void *arg) {
    asset_server_t *s = arg;
    rio_t *r = asset__calloc(1, sizeof *r);
    if (!r) {
        asset__log(s, ASSET_LOG_ERROR, "watch: out of memory: hot reload is off");
        return;
    }
    r->s = s;
    asset__map_init(&r->dirs);
    asset__map_init(&r->pending);
    asset__map_init(&r->files);
    uv_loop_t *loop = asset__io_loop(s->io);
    uv_timer_init(loop, &r->debounce);
    uv_timer_init(loop, &r->poll);
    uv_timer_init(loop, &r->dir_check);
    uv_timer_init(loop, &r->burst_end);
    r->open = 4;
    r->debounce.data = r->poll.data = r->dir_check.data = r->burst_end.data = r;
    r->burst_max = asset__watch_queue_max() / 2;
    if (s->cfg.http_poll_ms)
        uv_timer_start(&r->poll, http_poll, s->cfg.http_poll_ms, s->cfg.http_poll_ms);
    if (s->cfg.watch) uv_timer_start(&r->dir_check, dir_check, DIR_CHECK_MS, DIR_CHECK_MS);
    asset__io_set_hooks(s->io, NULL, rio_stop, r);
    s->rio = r; /* I/O thread only */
}

void asset__rio_buckets(asset_server_t *s, size_t *files, size_t *dirs, size_t *names,
                        size_t *pending) {
    rio_t *r = s->rio;
    *pending = r ? r->pending.nbuckets : 0;
    *files = r ? r->files.nbuckets : 0;
    *dirs = r ? r->dirs.nbuckets : 0;
    *names = 0;
    size_t b = 0;
    for (asset__map_node_t *n = r ? asset__map_next(&r->dirs, NULL, &b) : NULL; n;
         n = asset__map_next(&r->dirs, n, &b))
        if (((wdir_t *)n)->names.nbuckets > *names) *names = ((wdir_t *)n)->names.nbuckets;
}

unsigned asset__rio_closing(asset_server_t *s) { return s->rio ? s->rio->closing : 0; }

size_t asset__rio_pending(asset_server_t *s) { return s->rio ? s->rio->pending.count : 0; }

void asset__reload_io_start(asset_server_t *s) {
    if (s->cfg.watch || s->cfg.http_poll_ms) rio_start(s, s->io);
}

#define NOT_WATCHED \
    "watch: cannot watch %s (not enough memory, or no I/O thread): changes of it are not seen"

/* failed: WATCH_LOADED, or j failed (a dependency's, watched for its parents). */
static void watch_job(asset_server_t *s, asset__job_t *j, int failed) {
    /* no handle left: none names the file, and none would end its watch */
    if (!s->cfg.watch || j->is_list || !j->source || !j->handles) return;
    watched_t *was = (watched_t *)asset__map_get(&s->watched, j->uri);
    bool pkg = j->source->vt.read == asset__pkg_source.read;
    if (was && !pkg) return; /* a file:// URI names one path for good */
    char *path = NULL;
    bool nomem = false;
    if (j->source->vt.read == asset__file_source.read)
        nomem = !(path = asset__strdup(j->path));
    else if (pkg)
        path = asset__pkg_real_path(s->pkg, j->path, &nomem); /* NULL: embedded, or nomem */
    /* watched: a package remounted since reads from another directory now, which the
     * watch follows from this read on (it followed the old one's file: a review) */
    if (was && (!path || !strcmp(was->path, path))) {
        asset_free(path);
        return;
    }
    if (!path) {
        if (nomem) asset__log(s, ASSET_LOG_WARN, NOT_WATCHED, j->path);
        return;
    }
    size_t pl = strlen(path) + 1;
    watched_t *node = asset_alloc(sizeof *node + pl);
    char *key = node ? asset__strdup(j->uri) : NULL;
    watch_req_t *w = key ? asset__calloc(1, sizeof *w) : NULL;
    char *uri = w ? asset__strdup(j->uri) : NULL;
    asset__io_t *io = uri ? asset__io_get(s) : NULL;
    if (!io || !s->rio_started) goto fail;
    memset(&node->node, 0, sizeof node->node);
    node->node.key = key;
    memcpy(node->path, path, pl);
    if (!asset__map_put(&s->watched, &node->node)) goto fail;
    w->s = s;
    w->path = path;
    w->uri = uri;
    /* the version it read (a NOT_MODIFIED read kept the cached one); NULL: unknown */
    const char *v = j->req && j->req->version ? j->req->version : j->cached_version;
    w->version = v ? asset__strdup(v) : NULL;
    w->failed = failed;
    if (!asset__io_post(io, watch_add, w)) {
        asset__map_remove(&s->watched, &node->node); /* was stays: its watch too */
        goto fail;
    }
    if (was) { /* watch_add drops the URI's watch of the old path */
        asset__map_remove(&s->watched, &was->node);
        asset_free((char *)was->node.key);
        asset_free(was);
    }
    return;
fail:
    /* no memory (or no I/O thread): said, or its edits go unseen without a word (a
     * review); destroy, which takes the I/O thread away, is not worth a line */
    if (!s->stopping) asset__log(s, ASSET_LOG_WARN, NOT_WATCHED, path);
    asset_free(path);
    asset_free(uri);
    if (w) asset_free(w->version);
    asset_free(w);
    asset_free(key);
    asset_free(node);
}

void asset__reload_watch_job(asset_server_t *s, asset__job_t *j) { watch_job(s, j, WATCH_LOADED); }

/* [lock] Whether parent's place in an awaited list can still be used by a change of
 * its dependency: parent has a handle (live, loading, or held failed: reloaded or
 * loaded anew), a cached value (that leaves its cache), or awaits a dependency itself
 * (a chain: its own parents may use it). */
static bool awaiter_useful(asset_server_t *s, const char *parent) {
    size_t pl = strlen(parent), nl = 0;
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, parent, pl);
    if (asset__uri_iter_next(&it) || asset__awaited_has(s, parent, pl)) return true;
    asset__loader_slot_t *const *ls = asset__loaders(s, &nl);
    for (size_t k = 0; k < nl; k++)
        if (asset__cache_has(&ls[k]->cache, parent)) return true;
    return false;
}

/* [lock] dep is awaited by no parent any more: with no handle naming it, its watch goes. */
static void awaited_gone(asset_server_t *s, const char *dep, void *arg) {
    (void)arg;
    size_t dl = strlen(dep);
    asset__uri_iter_t it;
    asset__uri_iter_init(&it, s, dep, dl);
    if (!asset__uri_iter_next(&it)) asset__reload_unwatch(s, dep, dl);
}

/* [lock] The awaited lists' places nothing can use any more go, once as many were added
 * since the last sweep as it kept (awaited.c): not on the load or hit path. */
static void awaited_maybe_sweep(asset_server_t *s) {
    if (!asset__awaited_due(s)) return;
    asset__uri_index_on(s); /* each parent's handles: a lookup, not a walk of them all */
    asset__awaited_sweep(s, awaiter_useful, awaited_gone);
}

void asset__reload_watch_failed(asset_server_t *s, asset__job_t *j, asset_status_t st) {
    /* a cancel or no memory says nothing of the file: its fix is not awaited */
    if (!s->cfg.watch || s->stopping || j->is_list || st == ASSET_E_CANCELLED ||
        st == ASSET_E_NO_MEMORY)
        return;
    size_t dl = strcspn(j->uri, "#");
    bool awaited = false;
    for (asset_handle_t *h = j->handles; h; h = h->job_next) {
        if (!h->dep_parent) continue;
        if (asset__awaited_add(s, j->uri, dl, h->dep_parent->uri))
            awaited = true;
        else /* its fix reloads nothing: said */
            asset__log(s, ASSET_LOG_WARN,
                       "%s: out of memory: once %s is fixed, reload it (asset_server_reload)",
                       h->dep_parent->uri, j->uri);
    }
    awaited_maybe_sweep(s);
    if (awaited) watch_job(s, j, st == ASSET_E_NOT_FOUND ? WATCH_ABSENT : WATCH_FAILED);
}

void asset__reload_await_labels(asset_server_t *s, asset__job_t *j, asset__value_t *v) {
    if (!s->cfg.watch || s->stopping || j->is_list) return;
    asset__value_extra_t *x = v ? asset__value_x(v) : NULL;
    size_t n = v ? asset__value_nlabels(v) : 0;
    for (asset_handle_t *h = j->handles; h; h = h->job_next) {
        if (!h->dep_parent || !h->label) continue;
        if (x && asset__labels_find(s, x->labels, n, &x->label_ix, h->label) < n) continue;
        if (asset__awaited_add(s, j->uri, strlen(j->uri), h->dep_parent->uri))
            awaited_maybe_sweep(s); /* keeps j's list: h names its parent */
        else
            asset__log(s, ASSET_LOG_WARN,
                       "%s: out of memory: once %s has label '%s', reload it "
                       "(asset_server_reload)",
                       h->dep_parent->uri, j->uri, h->label);
    }
}

void asset__reload_free(asset_server_t *s) {
    size_t b = 0;
    for (asset__map_node_t *n; (b = 0, n = asset__map_next(&s->watched, NULL, &b));) {
        asset__map_remove(&s->watched, n);
        asset_free((char *)n->key);
        asset_free(n);
    }
    asset__map_free(&s->watched);
    for (asset__map_node_t *n; (b = 0, n = asset__map_next(&s->reload_retries, NULL, &b));) {
        asset__map_remove(&s->reload_retries, n);
        asset_free(n);
    }
    asset__map_free(&s->reload_retries);
    size_t n;
    asset__reload_todo_t **todo = todo_take(s, &n);
    for (size_t i = 0; i < n; i++) asset_free(todo[i]);
    asset_free(todo);
}
