/* dependents.c - how many values depend on each URI, for hot reload.
 *
 * A reload that changes a value re-parses the values built on it (reload.c), found by
 * a walk of every live handle and every cached value. Most changed assets have no
 * dependents of their own, but each looked for them: a texture shared by 4,000
 * materials reloaded the materials, and each material's reload then walked the 4,000
 * handles and the 4,000 cached values again (2.8 s under the lock here). This keeps,
 * per base URI (a URI up to '#'), the number of values whose dependencies name it, so
 * a change to a URI that no value depends on walks nothing.
 *
 * Counted when a value takes its job's dependencies (asset__job_complete) and
 * uncounted when the value is freed (asset__values_drain): the same two places that
 * count s->dep_values. A value that finds no memory for its counts is counted in
 * s->dependents_unknown instead; while there is one, any URI may have dependents and
 * the walks run, as they did before this. A failed allocation never hides a dependent.
 * Everything here is [lock]. */
#include "internal.h"

#include <string.h>

typedef struct dcount {
    asset__map_node_t node; /* key: a base URI, in key[] */
    size_t n;               /* the dependencies, of live values, that name it */
    char key[];
} dcount_t;

static dcount_t *find(const asset_server_t *s, const char *uri, size_t bl) {
    return (dcount_t *)asset__map_find_n(&s->dependents, uri, bl);
}

static void uncount(asset_server_t *s, const char *uri) {
    dcount_t *c = find(s, uri, strcspn(uri, "#"));
    if (c && --c->n == 0) {
        asset__map_remove(&s->dependents, &c->node);
        asset_free(c);
    }
}

void asset__dependents_add(asset_server_t *s, asset__deps_t *d) {
    size_t i = 0;
    for (; i < d->n; i++) {
        const char *uri = asset__handle_uri(d->h[i]);
        size_t bl = strcspn(uri, "#");
        dcount_t *c = find(s, uri, bl);
        if (!c) {
            if (!(c = asset_alloc(sizeof *c + bl + 1))) break;
            memset(c, 0, sizeof *c);
            memcpy(c->key, uri, bl);
            c->key[bl] = 0;
            c->node.key = c->key;
            if (!asset__map_put(&s->dependents, &c->node)) {
                asset_free(c);
                break;
            }
        }
        c->n++;
    }
    if (i < d->n) { /* out of memory: none of its counts, and every URI may have some */
        while (i) uncount(s, asset__handle_uri(d->h[--i]));
        d->uncounted = true;
        s->dependents_unknown++;
    }
}

void asset__dependents_remove(asset_server_t *s, const asset__deps_t *d) {
    if (s->handles_gone) return; /* destroy: its handles are freed, the counts go whole */
    if (d->uncounted) {
        s->dependents_unknown--;
        return;
    }
    for (size_t i = 0; i < d->n; i++) uncount(s, asset__handle_uri(d->h[i]));
}

bool asset__dependents_any(const asset_server_t *s, const char *uri) {
    return s->dependents_unknown || find(s, uri, strcspn(uri, "#"));
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
