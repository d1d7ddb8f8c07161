/* alloc.c - the one allocation hook every allocation of the library goes through. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *def_alloc(size_t n, void *u) {
    (void)u;
    return malloc(n);
}
static void *def_realloc(void *p, size_t n, void *u) {
    (void)u;
    return realloc(p, n);
}
static void def_free(void *p, void *u) {
    (void)u;
    free(p);
}

/* Written once before any other call (documented), read by every thread after. */
static asset_allocator_t g_alloc = {def_alloc, def_realloc, def_free, NULL};

static void *json_malloc(size_t n) { return asset_alloc(n); }
static void json_free(void *p) { asset_free(p); }

void asset__json_hooks_install(void) {
    cJSON_Hooks hooks = {json_malloc, json_free};
    cJSON_InitHooks(&hooks);
}

void asset_set_allocator(const asset_allocator_t *a) {
    if (a && a->alloc && a->realloc && a->free)
        g_alloc = *a;
    else
        g_alloc = (asset_allocator_t){def_alloc, def_realloc, def_free, NULL};
    asset__json_hooks_install();
}

/* Allocation failures seen by this thread, so code that calls a library which reports
 * every failure alike (cJSON's parser returns NULL for bad text and for no memory) can
 * tell an out-of-memory from a real error. */
static _Thread_local unsigned t_alloc_failures;
unsigned asset__alloc_failures(void) { return t_alloc_failures; }

void *asset_alloc(size_t size) {
    void *p = g_alloc.alloc(size ? size : 1, g_alloc.user);
    if (!p) t_alloc_failures++;
    return p;
}
void *asset_realloc(void *p, size_t size) {
    void *q = g_alloc.realloc(p, size ? size : 1, g_alloc.user);
    if (!q) t_alloc_failures++;
    return q;
}
void asset_free(void *p) {
    if (p) g_alloc.free(p, g_alloc.user);
}

void asset__zero(void *p, size_t n) { memset(p, 0, n); }

void *asset__calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = asset_alloc(n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

char *asset__strndup(const char *s, size_t n) {
    char *d = asset_alloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *asset__strdup(const char *s) { return s ? asset__strndup(s, strlen(s)) : NULL; }

void *asset__grow_from(void *a, const void *in, size_t *cap, size_t size, size_t first_cap) {
    size_t c = !*cap ? first_cap : *cap <= SIZE_MAX / 2 ? *cap * 2 : 0;
    if (!c || !size || c > SIZE_MAX / size) return NULL;
    bool moved = in && a == in; /* the caller's own buffer: realloc cannot move it */
    void *g = moved ? asset_alloc(c * size) : asset_realloc(a, c * size);
    if (!g) return NULL;
    if (moved) memcpy(g, in, *cap * size);
    *cap = c;
    return g;
}

void *asset__grow_full(void *a, size_t *cap, size_t size, size_t first_cap) {
    return asset__grow_from(a, NULL, cap, size, first_cap);
}

void *asset__shrink_full(void *a, size_t *cap, size_t size) {
    void *g = asset_realloc(a, *cap / 2 * size); /* below a size grow gave: no overflow */
    if (!g) return a;                            /* out of memory: it stays as it was */
    *cap /= 2;
    return g;
}

char *asset__vasprintf(const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) return NULL;
    char *d = asset_alloc((size_t)n + 1);
    if (d) vsnprintf(d, (size_t)n + 1, fmt, ap);
    return d;
}

char *asset__asprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *d = asset__vasprintf(fmt, ap);
    va_end(ap);
    return d;
}
