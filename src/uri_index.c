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
 * nothing per load. Once on it stays on. A handle that finds no memory for its place
 * is left out of it (uri_slot ASSET__NOT_INDEXED, counted in s->uri_unindexed): while
 * there are such handles, lookups also walk every handle for them. They are given
 * another place at the next reload request and at the next free of a URI's last
 * handle, each a walk of the handles, as the lookup costs anyway; so the walks end
 * once memory is back. A failed allocation never makes the index wrong: whether a URI
 * has a handle left (which ends its file's watch) is still known.
 * The groups of http(s):// URIs are also linked in a list of their own (s->uri_http), in
 * the order they were made: an http_poll_ms tick walks them, not every handle of the
 * server (it walked every handle: 9-17 ms under the lock each period for 10 HTTP assets
 * among 100,000 mem:// handles, docs/hot-reload.md). A group is linked as it is made
 * and unlinked as it goes, so the list needs no memory of its own.
 * Everything here is [lock]. */
#include "internal.h"

#include <string.h>

typedef struct asset__uri_group {
    asset__map_node_t node; /* key: the base URI, in key[] */
    uint32_t n, cap;
    asset_handle_t **hs; /* inl while cap is 2 */
    asset_handle_t *inl[2];
    struct asset__uri_group *http_prev, *http_next; /* in s->uri_http, an http(s):// URI's only */
    char key[];
} group_t;

static bool is_http(const char *uri) {
    return !strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8);
}

static void http_link(asset_server_t *s, group_t *g) {
    g->http_next = NULL;
    g->http_prev = s->uri_http_tail;
    if (g->http_prev)
        g->http_prev->http_next = g;
    else
        s->uri_http = g;
    s->uri_http_tail = g;
}

static void http_unlink(asset_server_t *s, group_t *g) {
    if (g->http_prev)
        g->http_prev->http_next = g->http_next;
    else if (s->uri_http == g)
        s->uri_http = g->http_next;
    else
        return; /* not linked: no http(s) URI */
    if (g->http_next)
        g->http_next->http_prev = g->http_prev;
    else
        s->uri_http_tail = g->http_prev;
    g->http_prev = g->http_next = NULL;
}

static size_t base_len(const asset_handle_t *h) { return strcspn(asset__handle_uri(h), "#"); }

static group_t *group_find(const asset_server_t *s, const char *base, size_t bl) {
    return (group_t *)asset__map_find_n(&s->uri_index, base, bl);
}

static void group_free(group_t *g) {
    if (g->hs != g->inl) asset_free(g->hs);
    asset_free(g);
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
        if (is_http(g->key)) http_link(s, g);
    }
    if (g->n == g->cap) {
        asset_handle_t **hs =
            g->cap <= UINT32_MAX / 4 ? asset_alloc((size_t)g->cap * 2 * sizeof *hs) : NULL;
        if (!hs) return false; /* g has handles: it stays */
        memcpy(hs, g->hs, g->n * sizeof *hs);
        if (g->hs != g->inl) asset_free(g->hs);
        g->hs = hs;
        g->cap *= 2;
    }
    h->uri_slot = g->n;
    g->hs[g->n++] = h;
    return true;
}

static void add_or_leave_out(asset_server_t *s, asset_handle_t *h) {
    if (add(s, h)) return;
    h->uri_slot = ASSET__NOT_INDEXED;
    s->uri_unindexed++;
}

/* Gives the handles left out another try (memory may be back): one walk, which is
 * what a lookup costs while any is left out, and after which none may be. */
static void retry_left_out(asset_server_t *s) {
    for (asset_handle_t *h = s->all; h && s->uri_unindexed; h = h->all_next)
        if (h->uri_slot == ASSET__NOT_INDEXED && add(s, h)) s->uri_unindexed--;
}

void asset__uri_index_on(asset_server_t *s) {
    if (s->uri_index_on) {
        if (s->uri_unindexed) retry_left_out(s);
        return;
    }
    s->uri_index_on = true;
    for (asset_handle_t *h = s->all; h; h = h->all_next) add_or_leave_out(s, h);
}

void asset__uri_index_add(asset_server_t *s, asset_handle_t *h) { add_or_leave_out(s, h); }

/* Whether a handle left out of the index names base (h, being freed, is unlinked). */
static bool unindexed_names(const asset_server_t *s, const char *base, size_t bl) {
    if (!s->uri_unindexed) return false;
    for (const asset_handle_t *o = s->all; o; o = o->all_next)
        if (o->uri_slot == ASSET__NOT_INDEXED && asset__uri_names(asset__handle_uri(o), base, bl))
            return true;
    return false;
}

bool asset__uri_index_remove(asset_server_t *s, asset_handle_t *h) {
    const char *base = asset__handle_uri(h);
    size_t bl = base_len(h);
    group_t *g = group_find(s, base, bl);
    if (h->uri_slot == ASSET__NOT_INDEXED) {
        s->uri_unindexed--;
        retry_left_out(s); /* h is unlinked: the others */
        g = group_find(s, base, bl);
    } else if (g && h->uri_slot < g->n && g->hs[h->uri_slot] == h) {
        asset_handle_t *last = g->hs[--g->n];
        g->hs[h->uri_slot] = last;
        last->uri_slot = h->uri_slot;
        if (g->n) {
            /* 100,000 loads of one URI released but one: its array went back only with
             * the last (a review). Over 8 and a quarter full: halved (asset__shrink), its
             * handles at their places (an iterator's index stays good) */
            size_t cap = g->cap;
            g->hs = asset__shrink(g->hs, &cap, g->n, sizeof *g->hs, 8); /* over 8: not inl */
            g->cap = (uint32_t)cap;
        } else {
            asset__map_remove(&s->uri_index, &g->node);
            http_unlink(s, g);
            /* 100,000 URIs loaded once, then released: their table went back only with
             * the last. Only asset__uri_index_free walks the map; an iterator holds a
             * group, which a trim does not move */
            asset__map_trim(&s->uri_index);
            group_free(g);
            g = NULL;
        }
        if (!g && s->uri_unindexed) { /* the others may have a place now */
            retry_left_out(s);
            g = group_find(s, base, bl);
        }
    }
    return !g && !unindexed_names(s, base, bl);
}

void asset__uri_index_free(asset_server_t *s) {
    size_t b = 0;
    for (asset__map_node_t *n = asset__map_next(&s->uri_index, NULL, &b), *next; n; n = next) {
        next = asset__map_next(&s->uri_index, n, &b); /* before n goes */
        group_free((group_t *)n);
    }
    asset__map_free(&s->uri_index); /* its nodes are gone: the buckets only */
    s->uri_http = s->uri_http_tail = NULL;
    s->uri_index_on = false;
    s->uri_unindexed = 0;
}

void asset__uri_iter_init(asset__uri_iter_t *it, asset_server_t *s, const char *base, size_t bl) {
    memset(it, 0, sizeof *it);
    it->s = s;
    it->base = base;
    it->bl = bl;
    it->group = s->uri_index_on ? group_find(s, base, bl) : NULL;
    /* off: every handle; on, with handles left out of it: those */
    it->scan = !s->uri_index_on || s->uri_unindexed ? s->all : NULL;
}

asset_handle_t *asset__uri_iter_next(asset__uri_iter_t *it) {
    group_t *g = it->group;
    if (g && it->i < g->n) {
        it->s->uri_iter_visits++;
        return g->hs[it->i++];
    }
    bool all = !it->s->uri_index_on;
    while (it->scan) {
        asset_handle_t *h = it->scan;
        it->scan = h->all_next;
        it->s->uri_iter_visits++;
        if ((all || h->uri_slot == ASSET__NOT_INDEXED) &&
            asset__uri_names(asset__handle_uri(h), it->base, it->bl))
            return h;
    }
    return NULL;
}

const group_t *asset__uri_http_next(const asset_server_t *s, const group_t *g) {
    return g ? g->http_next : s->uri_http;
}

const char *asset__uri_group_key(const group_t *g) { return g->key; }

asset_handle_t *asset__uri_group_handle(const group_t *g, uint32_t i) {
    return i < g->n ? g->hs[i] : NULL;
}
