/* uri_index.c - the handles of each URI, for hot reload.
 *
 * A reload of a URI concerns the handles that name it, labels included ("uri#label"):
 * finding them by walking every handle made each reload cost the number of handles,
 * and an HTTP poll of n URIs the square of it. Once on, the index keeps, per base URI
 * (a handle's URI up to '#'), the array of the handles naming it; a handle knows its
 * place (uri_slot), so adding and removing one are O(1).
 *
 * It is on from create when the server watches files or polls HTTP, else from the
 * first reload request (asset_server_reload): a server that never reloads pays
 * nothing per load. Out of memory turns it off, freeing it; lookups then walk every
 * handle, as before it was on, and the next reload request builds it again.
 * Everything here is [lock]. */
#include "internal.h"

#include <string.h>

typedef struct group {
    asset__map_node_t node; /* key: the base URI, in key[] */
    uint32_t n, cap;
    asset_handle_t **hs; /* inl while cap is 2 */
    asset_handle_t *inl[2];
    char key[];
} group_t;

static size_t base_len(const asset_handle_t *h) { return strcspn(asset__handle_uri(h), "#"); }

static group_t *group_find(const asset_server_t *s, const char *base, size_t bl) {
    return (group_t *)asset__map_find_n(&s->uri_index, base, bl);
}

static void group_free(group_t *g) {
    if (g->hs != g->inl) asset_free(g->hs);
    asset_free(g);
}

/* Every group freed, the index off. */
static void index_off(asset_server_t *s) {
    size_t b;
    for (asset__map_node_t *n; (b = 0, n = asset__map_next(&s->uri_index, NULL, &b));) {
        asset__map_remove(&s->uri_index, n);
        group_free((group_t *)n);
    }
    asset__map_free(&s->uri_index);
    s->uri_index_on = false;
}

static bool add(asset_server_t *s, asset_handle_t *h) {
    const char *uri = asset__handle_uri(h);
    size_t bl = base_len(h);
    group_t *g = group_find(s, uri, bl);
    if (!g) {
        if (!(g = asset_alloc(sizeof *g + bl + 1))) return false;
        memset(g, 0, sizeof *g);
        memcpy(g->key, uri, bl);
        g->key[bl] = 0;
        g->node.key = g->key;
        g->hs = g->inl;
        g->cap = 2;
        if (!asset__map_put(&s->uri_index, &g->node)) {
            asset_free(g);
            return false;
        }
    }
    if (g->n == g->cap) {
        if (g->cap > UINT32_MAX / 2) return false;
        asset_handle_t **hs = asset_alloc((size_t)g->cap * 2 * sizeof *hs);
        if (!hs) return false;
        memcpy(hs, g->hs, g->n * sizeof *hs);
        if (g->hs != g->inl) asset_free(g->hs);
        g->hs = hs;
        g->cap *= 2;
    }
    h->uri_slot = g->n;
    g->hs[g->n++] = h;
    return true;
}

bool asset__uri_index_on(asset_server_t *s) {
    if (s->uri_index_on) return true;
    s->uri_index_on = true;
    for (asset_handle_t *h = s->all; h; h = h->all_next) {
        if (!add(s, h)) {
            index_off(s);
            return false;
        }
    }
    return true;
}

void asset__uri_index_add(asset_server_t *s, asset_handle_t *h) {
    if (s->uri_index_on && !add(s, h)) index_off(s);
}

bool asset__uri_index_remove(asset_server_t *s, asset_handle_t *h) {
    if (!s->uri_index_on) return false;
    group_t *g = group_find(s, asset__handle_uri(h), base_len(h));
    if (!g || h->uri_slot >= g->n || g->hs[h->uri_slot] != h)
        return false; /* never: every linked handle is in the index while it is on */
    asset_handle_t *last = g->hs[--g->n];
    g->hs[h->uri_slot] = last;
    last->uri_slot = h->uri_slot;
    if (g->n) return false;
    asset__map_remove(&s->uri_index, &g->node);
    group_free(g);
    return true;
}

void asset__uri_index_free(asset_server_t *s) { index_off(s); }

void asset__uri_iter_init(asset__uri_iter_t *it, asset_server_t *s, const char *base, size_t bl) {
    memset(it, 0, sizeof *it);
    it->s = s;
    it->base = base;
    it->bl = bl;
    if (s->uri_index_on)
        it->group = group_find(s, base, bl);
    else
        it->scan = s->all;
    it->scanning = !s->uri_index_on;
}

asset_handle_t *asset__uri_iter_next(asset__uri_iter_t *it) {
    if (!it->scanning) {
        group_t *g = it->group;
        if (!g || it->i >= g->n) return NULL;
        it->s->uri_iter_visits++;
        return g->hs[it->i++];
    }
    while (it->scan) {
        asset_handle_t *h = it->scan;
        it->scan = h->all_next;
        it->s->uri_iter_visits++;
        const char *u = asset__handle_uri(h);
        if (!strncmp(u, it->base, it->bl) && (u[it->bl] == 0 || u[it->bl] == '#')) return h;
    }
    return NULL;
}
