/* awaited.c - failed dependencies that their parents wait for, for hot reload.
 *
 * A change reaches the parents whose values depend on the changed asset (dependents.c).
 * A dependency that failed (its file not there yet, malformed, or its own dependency
 * failing) is in no value: its parent failed (a reload of it kept the old value) or, an
 * optional one, loaded without it. So its fix reached no parent: a level saved before
 * its new texture was exported was never reloaded once the texture was.
 *
 * This keeps, per failed dependency's base URI, the base URIs of the parents it failed
 * (job.c adds them as the dependency's load fails, and has its file watched). A change
 * of it (asset__reload_request) takes them: each parent gets a fresh reload, whose
 * parse loads the dependency anew, and the entry goes. A parent that is not live by
 * then (released, or its first load failed: a failed load is not reloaded) gets none;
 * a parent awaited but fixed otherwise meanwhile gets one more fresh reload.
 *
 * One group per dependency, with a map of its parents: a missing texture that 4,000
 * materials wait for is one lookup per material, and one walk when it appears.
 *
 * A parent released (no handle) and in no cache can use its place no more: its change
 * would reload nothing. Kept until the dependency changed, such places grew for the
 * server's life with each distinct pair (a URL with a cache-busting query string that
 * failed, never watched so never changed; a missing file, watched for good). They are
 * swept once as many places were added since the last sweep as it kept (SWEEP_MIN
 * places at least in the lists): a walk of them all, once per as many adds, on the
 * failure path only; a list left empty goes, and its file's watch with it (the
 * caller's gone). It was once the lists had doubled: a level's 300 missing textures,
 * held at its sweep and released since, stayed for good (and their files' watches) while
 * each later failure was fixed before the next, the lists never doubling again. */
#include "internal.h"

#include <string.h>

typedef struct waiter {
    asset__map_node_t node; /* key: the parent's base URI, in uri[] */
    char uri[];
} waiter_t;

typedef struct group {
    asset__map_node_t node; /* in s->awaited; key: the dependency's base URI, in dep[] */
    asset__map_t parents;   /* waiter_t by URI */
    char dep[];
} group_t;

static group_t *find(const asset_server_t *s, const char *uri, size_t n) {
    return (group_t *)asset__map_find_n(&s->awaited, uri, n);
}

bool asset__awaited_has(const asset_server_t *s, const char *uri, size_t n) {
    return s->awaited.count && find(s, uri, n);
}

bool asset__awaited_add(asset_server_t *s, const char *dep, size_t dl, const char *parent) {
    group_t *g = find(s, dep, dl);
    bool made = !g;
    if (made) {
        if (!(g = asset_alloc(sizeof *g + dl + 1))) return false;
        memset(g, 0, sizeof *g);
        memcpy(g->dep, dep, dl);
        g->dep[dl] = 0;
        g->node.key = g->dep;
        asset__map_init(&g->parents);
        if (!asset__map_put(&s->awaited, &g->node)) {
            asset_free(g);
            return false;
        }
    } else if (asset__map_get(&g->parents, parent)) {
        return true;
    }
    size_t pl = strlen(parent) + 1;
    waiter_t *w = asset_alloc(sizeof *w + pl);
    if (w) {
        memcpy(w->uri, parent, pl);
        memset(&w->node, 0, sizeof w->node);
        w->node.key = w->uri;
    }
    if (!w || !asset__map_put(&g->parents, &w->node)) {
        asset_free(w);
        if (made) {
            asset__map_remove(&s->awaited, &g->node);
            asset_free(g);
        }
        return false;
    }
    s->awaited_waiters++;
    if (s->awaited_sweep_at) s->awaited_sweep_at--; /* one add nearer the next sweep */
    return true;
}

/* Takes g out of s->awaited and frees it and its waiters, calling fn (if any) for each
 * parent first. Returns how many there were. */
static size_t group_free(asset_server_t *s, group_t *g, asset__awaited_fn fn, void *arg) {
    asset__map_remove(&s->awaited, &g->node);
    size_t n = 0, b = 0;
    for (asset__map_node_t *w = asset__map_next(&g->parents, NULL, &b), *next; w; w = next, n++) {
        next = asset__map_next(&g->parents, w, &b); /* before w goes: the map stays whole */
        if (fn) fn(s, w->key, arg);
        asset_free(w);
    }
    asset__map_free(&g->parents);
    asset_free(g);
    s->awaited_waiters -= n;
    return n;
}

size_t asset__awaited_take(asset_server_t *s, const char *uri, asset__awaited_fn fn, void *arg) {
    group_t *g = s->awaited.count ? find(s, uri, strlen(uri)) : NULL;
    if (!g) return 0;
    size_t n = group_free(s, g, fn, arg);
    /* its high-water table back as fixes come: here, not in group_free, which
     * asset__awaited_free calls inside its walk of s->awaited (a trim moves every node
     * to another bucket: the walk would skip some and visit others twice). No walk of
     * s->awaited runs here: fn reloads parents, it neither sweeps nor takes */
    asset__map_trim(&s->awaited);
    return n;
}

enum { SWEEP_MIN = 32 };

bool asset__awaited_due(const asset_server_t *s) {
    return s->awaited_waiters >= SWEEP_MIN && !s->awaited_sweep_at;
}

void asset__awaited_sweep(asset_server_t *s, asset__awaited_keep_fn keep, asset__awaited_fn gone) {
    size_t b = 0;
    for (asset__map_node_t *n = asset__map_next(&s->awaited, NULL, &b), *next; n; n = next) {
        next = asset__map_next(&s->awaited, n, &b); /* before n may leave the map */
        group_t *g = (group_t *)n;
        size_t wb = 0;
        for (asset__map_node_t *w = asset__map_next(&g->parents, NULL, &wb), *wn; w; w = wn) {
            wn = asset__map_next(&g->parents, w, &wb);
            if (keep(s, w->key)) continue;
            asset__map_remove(&g->parents, w);
            asset_free(w);
            s->awaited_waiters--;
        }
        if (g->parents.count) {
            asset__map_trim(&g->parents); /* after its walk: the waiters it lost */
            continue;
        }
        asset__map_remove(&s->awaited, &g->node);
        gone(s, g->dep, NULL); /* out of the lists: its watch may go */
        asset__map_free(&g->parents);
        asset_free(g);
    }
    asset__map_trim(&s->awaited);             /* after the walk, which a trim inside would derail */
    s->awaited_sweep_at = s->awaited_waiters; /* as many adds as it kept: a walk per add */
}

void asset__awaited_free(asset_server_t *s) {
    size_t b = 0;
    for (asset__map_node_t *n = asset__map_next(&s->awaited, NULL, &b), *next; n; n = next) {
        next = asset__map_next(&s->awaited, n, &b); /* before n leaves the map */
        group_free(s, (group_t *)n, NULL, NULL);
    }
    asset__map_free(&s->awaited);
    s->awaited_waiters = s->awaited_sweep_at = 0;
}
