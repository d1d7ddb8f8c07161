/* dependents.c - the values that depend on each URI, for hot reload.
 *
 * A reload that changes a value re-parses the values built on it (reload.c), and drops
 * from the caches the ones only cached. Found by a walk of every live handle and every
 * cached value, that cost the number of handles per changed asset: a texture shared by
 * 4,000 materials reloaded the materials, and each material's reload walked the 4,000
 * handles and cached values again (2.8 s under the lock). Counting the dependents of
 * each URI spared the walk to a URI nothing depends on, but not to one with dependents:
 * the same materials used by one level walked as before (6,000 of them: 5.7 s). So
 * this keeps, per base URI (a URI up to '#'), the list of the values whose
 * dependencies name it, each with the URI it was loaded as: a change looks at its
 * dependents only.
 *
 * A value is listed when it takes its job's dependencies (asset__job_complete) and
 * leaves when it is freed (asset__values_drain): the same two places that count
 * s->dep_values (and a label still held when its whole value is freed takes a copy of
 * that value's: asset__dependents_leave). A value that finds no memory for its places is
 * counted in s->dependents_unknown instead; while there is one, any URI may have dependents and
 * the walks run, as they did before this. A failed allocation never hides a dependent.
 * Everything here is [lock]. */
#include "internal.h"

#include <string.h>

typedef struct dgroup dgroup_t;

/* A place of a value in the list of one of its dependencies' base URIs. */
typedef struct dlink {
    struct dlink *prev, *next;
    dgroup_t *g;
    struct asset__dependent *owner;
} dlink_t;

/* A value's places, one per dependency, and the URI it was loaded as (after them). */
typedef struct asset__dependent {
    asset__value_t *v;
    const char *parent;
    size_t n;
    dlink_t links[];
} dependent_t;

struct dgroup {
    asset__map_node_t node; /* key: a base URI, in key[] */
    dlink_t *head;          /* the places naming it */
    char key[];
};

static dgroup_t *find(const asset_server_t *s, const char *uri, size_t bl) {
    return (dgroup_t *)asset__map_find_n(&s->dependents, uri, bl);
}

static void unlink_place(asset_server_t *s, dlink_t *l) {
    dgroup_t *g = l->g;
    if (!g) return; /* a dependency that failed has no place */
    if (l->prev)
        l->prev->next = l->next;
    else
        g->head = l->next;
    if (l->next) l->next->prev = l->prev;
    if (!g->head) {
        asset__map_remove(&s->dependents, &g->node);
        asset_free(g);
        /* its high-water table back as base URIs go (a level's thousands of textures
         * released kept it for good): no walk of s->dependents runs while values go
         * (asset__dependents_free's, at destroy, frees and removes nothing) */
        asset__map_trim(&s->dependents);
    }
}

void asset__dependents_add(asset_server_t *s, asset__deps_t *d, asset__value_t *v,
                           const char *parent) {
    size_t pl = strlen(parent) + 1, i = 0;
    dependent_t *dep = d->n <= (SIZE_MAX - sizeof *dep - pl) / sizeof(dlink_t)
                           ? asset_alloc(sizeof *dep + d->n * sizeof(dlink_t) + pl)
                           : NULL;
    if (dep) {
        dep->v = v;
        dep->n = d->n;
        char *p = (char *)&dep->links[d->n];
        memcpy(p, parent, pl);
        dep->parent = p;
        for (; i < d->n; i++) {
            dlink_t *l = &dep->links[i];
            l->g = NULL;
            /* one that failed (optional) holds no value: v is not built on its asset.
             * Listed, each change of a pair whose optional edge closed a cycle (one
             * FAILED, holding nothing) re-parsed the other, for ever (a review) */
            if (!asset__dep_loaded(d->h[i])) continue;
            const char *uri = asset__handle_uri(d->h[i]);
            size_t bl = strcspn(uri, "#");
            dgroup_t *g = find(s, uri, bl);
            if (!g) {
                if (!(g = asset_alloc(sizeof *g + bl + 1))) break;
                memset(g, 0, sizeof *g);
                memcpy(g->key, uri, bl);
                g->key[bl] = 0;
                g->node.key = g->key;
                if (!asset__map_put(&s->dependents, &g->node)) {
                    asset_free(g);
                    break;
                }
            }
            l->g = g;
            l->owner = dep;
            l->prev = NULL;
            l->next = g->head;
            if (g->head) g->head->prev = l;
            g->head = l;
        }
    }
    if (!dep || i < d->n) { /* out of memory: none of its places, and every URI may have some */
        while (i) unlink_place(s, &dep->links[--i]);
        asset_free(dep);
        d->dependent = NULL;
        d->uncounted = true;
        s->dependents_unknown++;
        return;
    }
    d->dependent = dep; /* set here, read only by remove: a value's deps come through add */
}

void asset__dependents_remove(asset_server_t *s, asset__deps_t *d) {
    dependent_t *dep = d->dependent;
    d->dependent = NULL;
    if (s->handles_gone) { /* destroy: the lists go whole (asset__dependents_free) */
        asset_free(dep);
        return;
    }
    if (d->uncounted) {
        s->dependents_unknown--;
        return;
    }
    if (!dep) return;
    for (size_t i = 0; i < dep->n; i++) unlink_place(s, &dep->links[i]);
    asset_free(dep);
}

/* A label's copy of its whole value's dependencies: the same handles, a reference each.
 * NULL: out of memory. */
static asset__deps_t *deps_copy(const asset__deps_t *d) {
    asset__deps_t *nd = asset_alloc(sizeof *nd + d->n * sizeof nd->h[0]);
    if (!nd) return NULL;
    nd->refs = 1;
    nd->n = nd->cap = d->n;
    nd->uncounted = false;
    nd->dependent = NULL;
    for (size_t i = 0; i < d->n; i++) {
        nd->h[i] = d->h[i];
        nd->h[i]->refs++;
    }
    return nd;
}

void asset__dependents_leave(asset_server_t *s, asset__value_extra_t *x) {
    asset__deps_t *d = x->deps;
    if (s->handles_gone || !x->nlabels) {
        asset__dependents_remove(s, d);
        return;
    }
    /* a label held alone outlives its whole value, which alone held the dependencies
     * and their places here: its own value, built on them, was found by no change of
     * them, and kept what the old ones made (a review). Such a label takes a copy, as a
     * value takes its job's (asset__job_complete): found, reloaded with its URI, freed
     * through asset__values_drain. Only at this free, so the labels of a live value cost
     * nothing; only those held elsewhere than here (one reference: this value's) */
    const char *parent = d->dependent ? d->dependent->parent : NULL;
    size_t shared = 0;
    for (size_t k = 0; k < x->nlabels; k++) {
        asset__value_t *lv = x->labels[k].value;
        asset__value_extra_t *lx = asset__value_x(lv); /* a label's has its extra part */
        if (!lx || lx->deps || atomic_load_explicit(&lv->refs, memory_order_acquire) < 2) continue;
        s->dep_values++;
        asset__deps_t *nd = parent ? deps_copy(d) : NULL;
        if (nd) {
            lx->deps = nd;
            asset__dependents_add(s, nd, lv, parent); /* out of memory: counted unknown */
        } else { /* none, or its URI unknown: d itself, and every URI may have dependents */
            lx->deps = d;
            d->refs++;
            shared++;
        }
    }
    asset__dependents_remove(s, d);
    if (shared) { /* each sharer's remove counts one down (d is no value's place now) */
        d->uncounted = true;
        s->dependents_unknown += shared;
    }
}

bool asset__dependents_any(const asset_server_t *s, const char *uri) {
    return s->dependents_unknown || find(s, uri, strcspn(uri, "#"));
}

asset__value_t *asset__dependents_next(const asset_server_t *s, const char *base, const void **it,
                                       const char **parent, const asset__loader_slot_t **dep_ld) {
    const dlink_t *l;
    if (!*it) {
        const dgroup_t *g = find(s, base, strlen(base));
        l = g ? g->head : NULL;
    } else {
        l = ((const dlink_t *)*it)->next;
    }
    *it = l;
    if (!l) return NULL;
    *parent = l->owner->parent;
    /* a place's index is its dependency's in the value's list */
    *dep_ld = asset__value_x(l->owner->v)->deps->h[l - l->owner->links]->loader;
    return l->owner->v;
}

void asset__dependents_free(asset_server_t *s) {
    size_t b = 0;
    for (asset__map_node_t *n = asset__map_next(&s->dependents, NULL, &b), *next; n; n = next) {
        next = asset__map_next(&s->dependents, n, &b); /* before n goes */
        asset_free(n);
    }
    asset__map_free(&s->dependents);
    s->dependents_unknown = 0;
}
