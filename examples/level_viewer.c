/* level_viewer.c - the asset graph: levels that depend on images and on sprites of
 * atlases, uploaded to a (simulated) GPU on the main thread within a frame budget.
 *
 *     level_viewer [level_assets_dir]        (default: examples/level_assets)
 *
 * Three loaders, each a few dozen lines:
 *   ppm    *.ppm         binary PPM (P6) -> CPU pixels, on a worker. Its finalize step
 *                        uploads them to the GPU pool on the main thread, one 32 KiB
 *                        slice per call, returning ASSET_PENDING until the last slice
 *                        (a big texture is spread over frames); then it replaces the
 *                        value with the GPU texture, which frees the CPU pixels.
 *   atlas  *.atlas.json  depends on its image and publishes each sprite as a labeled
 *                        sub-asset: "hero.atlas.json#idle" is one sprite. Its finalize
 *                        step, which runs after the image's, points the sprites at the
 *                        uploaded texture.
 *   level  *.level.json  depends on its tileset, background and sprites (required) and
 *                        on decals (optional: a missing decal does not fail the level).
 * The GPU pool, like a GL context, may be touched only by the main thread: the ppm and
 * atlas loaders set ASSET_LOADER_FREE_ON_FLUSH_THREAD so their values (textures,
 * sprites holding texture references) are freed inside flush or destroy on this
 * thread, and every pool call checks which thread it is on.
 *
 * The frame loop calls asset_server_flush_budget(s, 2 ms) once per frame and prints
 * what the frame did: finalize calls, bytes uploaded, each level's progress, the GPU
 * pool. Uploads cost simulated time (UPLOAD_BYTES_PER_MS, a busy wait standing in for
 * the driver's copy), so that the budget shows: once 2 ms are spent no new finalize
 * starts and the rest waits for the next frame. Then a summary, a cache hit (no
 * finalize again), an unknown label, and the release: clearing the caches frees every
 * texture at the next flush. Exit status 0 when every level and sprite resolved and
 * the pool ends empty with no call from a wrong thread.
 *
 * Images are PPM so that the example needs no new dependency; a PNG loader would call
 * stb_image's stbi_load_from_memory() in the same place (see docs/graph.md).
 */
#define _XOPEN_SOURCE 700

#include <asset_server.h>
#include <cjson/cJSON.h>

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef LEVEL_VIEWER_ASSETS /* the build sets it to the source tree's folder */
#define LEVEL_VIEWER_ASSETS "examples/level_assets"
#endif

#define FRAME_BUDGET_NS 2000000ull /* 2 ms of each frame for completions and uploads */
#define UPLOAD_SLICE 32768         /* bytes of RGB per finalize call */
#define UPLOAD_BYTES_PER_MS 65536  /* simulated upload speed: 64 MiB/s */
#define GIVE_UP_FRAMES 3000        /* ~50 s at 60 Hz: a stuck load must not hang CI */
#define GPU_MAX_TEXTURES 64
#define ATLAS_MAX_SPRITES 32
#define LEVEL_MAX_DEPS 32

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------------ */
/* A simulated GPU: a pool of RGBA textures that only the main thread touches */
/* ------------------------------------------------------------------------ */

typedef struct gpu_texture {
    uint8_t *rgba; /* "video memory" */
    int w, h, refs;
} gpu_texture_t;

typedef struct gpu_pool {
    pthread_t owner; /* the main thread */
    gpu_texture_t tex[GPU_MAX_TEXTURES];
    size_t bytes, peak_bytes;
    unsigned live, wrong_thread;
} gpu_pool_t;

static bool gpu_on_owner(gpu_pool_t *g, const char *what) {
    if (pthread_equal(pthread_self(), g->owner)) return true;
    g->wrong_thread++; /* what a real driver would punish with a crash */
    fprintf(stderr, "level_viewer: %s called off the main thread\n", what);
    return false;
}

/* A new texture with one reference; its id (1..), or 0 when the pool is full. */
static uint32_t gpu_create(gpu_pool_t *g, int w, int h) {
    if (!gpu_on_owner(g, "gpu_create")) return 0;
    for (uint32_t i = 0; i < GPU_MAX_TEXTURES; i++) {
        gpu_texture_t *t = &g->tex[i];
        if (t->refs) continue;
        size_t n = (size_t)w * (size_t)h * 4;
        if (!(t->rgba = calloc(1, n))) return 0;
        t->w = w;
        t->h = h;
        t->refs = 1;
        g->bytes += n;
        if (g->bytes > g->peak_bytes) g->peak_bytes = g->bytes;
        g->live++;
        return i + 1;
    }
    return 0;
}

static gpu_texture_t *gpu_get(gpu_pool_t *g, uint32_t id) {
    return id >= 1 && id <= GPU_MAX_TEXTURES && g->tex[id - 1].refs ? &g->tex[id - 1] : NULL;
}

static void gpu_retain(gpu_pool_t *g, uint32_t id) {
    gpu_texture_t *t = gpu_get(g, id);
    if (t && gpu_on_owner(g, "gpu_retain")) t->refs++;
}

static void gpu_release(gpu_pool_t *g, uint32_t id) {
    gpu_texture_t *t = gpu_get(g, id);
    if (!t || !gpu_on_owner(g, "gpu_release") || --t->refs > 0) return;
    g->bytes -= (size_t)t->w * (size_t)t->h * 4;
    g->live--;
    free(t->rgba);
    t->rgba = NULL;
}

/* Copies `pixels` RGB pixels into the texture from pixel `first` on, as RGBA; the
 * busy wait stands for the time a driver takes to move the bytes. */
static void gpu_upload_rgb(gpu_pool_t *g, uint32_t id, size_t first, const uint8_t *rgb,
                           size_t pixels) {
    gpu_texture_t *t = gpu_get(g, id);
    if (!t || !gpu_on_owner(g, "gpu_upload")) return;
    uint64_t until = now_ns() + (uint64_t)pixels * 3 * 1000000u / UPLOAD_BYTES_PER_MS;
    uint8_t *dst = t->rgba + first * 4;
    for (size_t i = 0; i < pixels; i++, dst += 4, rgb += 3) {
        dst[0] = rgb[0];
        dst[1] = rgb[1];
        dst[2] = rgb[2];
        dst[3] = 255;
    }
    while (now_ns() < until) {
    }
}

/* ------------------------------------------------------------------------ */
/* The application: what the loaders share (their ctx)                       */
/* ------------------------------------------------------------------------ */

typedef struct app {
    gpu_pool_t gpu;           /* main thread */
    atomic_size_t cpu_pixels; /* bytes of decoded CPU pixels alive (workers and main) */
    unsigned finalize_calls;  /* main thread */
    size_t uploaded;          /* bytes uploaded so far, main thread */
} app_t;

/* ------------------------------------------------------------------------ */
/* ppm: images                                                               */
/* ------------------------------------------------------------------------ */

enum { VALUE_CPU_IMAGE = 1, VALUE_GPU_IMAGE, VALUE_SPRITE };

typedef struct image { /* what parse makes */
    int kind;          /* VALUE_CPU_IMAGE */
    int w, h;
    uint8_t *file;      /* the file's bytes, taken from the loader without a copy */
    const uint8_t *rgb; /* into file: w * h * 3 bytes */
    size_t uploaded;    /* bytes of rgb uploaded so far (finalize, main thread) */
    uint32_t tex;       /* the texture being filled, 0 before the first slice */
} image_t;

typedef struct texture { /* what finalize makes of it */
    int kind;            /* VALUE_GPU_IMAGE */
    int w, h;
    uint32_t tex; /* one reference in the GPU pool */
} texture_t;

static void ppm_free(void *ctx, void *value) { /* the main thread: FREE_ON_FLUSH_THREAD */
    app_t *app = ctx;
    int kind = *(int *)value;
    if (kind == VALUE_CPU_IMAGE) { /* never finalized, or not to the end */
        image_t *img = value;
        if (img->tex) gpu_release(&app->gpu, img->tex);
        atomic_fetch_sub(&app->cpu_pixels, (size_t)img->w * (size_t)img->h * 3);
        asset_free(img->file);
    } else {
        gpu_release(&app->gpu, ((texture_t *)value)->tex);
    }
    asset_free(value);
}

/* Reads one header number of a PPM: whitespace and # comments first. */
static bool ppm_number(const char **c, const char *end, long *out) {
    for (;;) {
        while (*c < end && (**c == ' ' || **c == '\t' || **c == '\r' || **c == '\n')) (*c)++;
        if (*c < end && **c == '#')
            while (*c < end && **c != '\n') (*c)++;
        else
            break;
    }
    if (*c >= end || **c < '0' || **c > '9') return false;
    long v = 0;
    while (*c < end && **c >= '0' && **c <= '9' && v < 100000) v = v * 10 + (*(*c)++ - '0');
    *out = v;
    return true;
}

/* Worker thread: bytes in, CPU pixels out. */
static asset_status_t ppm_parse(void *ctx, asset_parse_t *p) {
    app_t *app = ctx;
    const char *c = (const char *)asset_parse_data(p), *end = c + asset_parse_size(p);
    long w, h, maxval;
    if (end - c < 2 || c[0] != 'P' || c[1] != '6')
        return asset_parse_fail(p, ASSET_E_PARSE, "not a binary PPM: it does not start with P6");
    c += 2;
    if (!ppm_number(&c, end, &w) || !ppm_number(&c, end, &h) || !ppm_number(&c, end, &maxval))
        return asset_parse_fail(p, ASSET_E_PARSE, "PPM header: width, height or maxval missing");
    if (w < 1 || h < 1 || w > 16384 || h > 16384 || maxval != 255)
        return asset_parse_fail(p, ASSET_E_PARSE,
                                "PPM header: %ldx%ld, maxval %ld (want 1..16384, maxval 255)", w, h,
                                maxval);
    c++; /* the one whitespace byte after maxval */
    size_t want = (size_t)w * (size_t)h * 3, have = c < end ? (size_t)(end - c) : 0;
    if (have < want)
        return asset_parse_fail(p, ASSET_E_PARSE,
                                "truncated: %zu bytes of pixels, %ldx%ld needs %zu", have, w, h,
                                want);
    size_t offset = (size_t)(c - (const char *)asset_parse_data(p));
    image_t *img = asset_alloc(sizeof *img);
    uint8_t *file = img ? asset_parse_take_data(p) : NULL; /* ours now, no copy */
    if (!file) {
        asset_free(img);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    *img = (image_t){
        .kind = VALUE_CPU_IMAGE, .w = (int)w, .h = (int)h, .file = file, .rgb = file + offset};
    atomic_fetch_add(&app->cpu_pixels, want);
    asset_parse_set_value(p, img, asset_parse_size(p) + sizeof *img);
    return ASSET_OK;
}

/* Main thread, inside flush: one slice per call; the last one swaps CPU for GPU. */
static asset_status_t ppm_finalize(void *ctx, asset_finalize_t *f) {
    app_t *app = ctx;
    image_t *img = asset_finalize_value(f);
    app->finalize_calls++;
    if (!img->tex && !(img->tex = gpu_create(&app->gpu, img->w, img->h)))
        return asset_finalize_fail(
            f, ASSET_E_NO_MEMORY, "GPU pool full (%d textures) or out of memory", GPU_MAX_TEXTURES);
    size_t total = (size_t)img->w * (size_t)img->h * 3;
    size_t n = total - img->uploaded < UPLOAD_SLICE ? total - img->uploaded : UPLOAD_SLICE / 3 * 3;
    gpu_upload_rgb(&app->gpu, img->tex, img->uploaded / 3, img->rgb + img->uploaded, n / 3);
    img->uploaded += n;
    app->uploaded += n;
    if (img->uploaded < total) return ASSET_PENDING; /* the rest at the next flushes */
    texture_t *t = asset_alloc(sizeof *t);
    if (!t) return asset_finalize_fail(f, ASSET_E_NO_MEMORY, "out of memory");
    *t = (texture_t){.kind = VALUE_GPU_IMAGE, .w = img->w, .h = img->h, .tex = img->tex};
    img->tex = 0; /* the texture's reference moves to t */
    /* frees img (the CPU pixels) through ppm_free now; the cache charges video memory */
    asset_finalize_set_value(f, t, (size_t)t->w * (size_t)t->h * 4);
    return ASSET_OK;
}

static const char *const ppm_suffixes[] = {".ppm", NULL};

/* ------------------------------------------------------------------------ */
/* atlas: sprites as labeled sub-assets                                      */
/* ------------------------------------------------------------------------ */

typedef struct sprite {
    int kind; /* VALUE_SPRITE */
    char name[32];
    int x, y, w, h; /* in the atlas image */
    uint32_t tex;   /* the atlas texture, one reference; 0 until the atlas finalizes */
} sprite_t;

typedef struct atlas {
    size_t n;
    sprite_t *sprites[ATLAS_MAX_SPRITES]; /* owned by their labeled values */
} atlas_t;

static void sprite_free(void *value, void *user) { /* main thread: FREE_ON_FLUSH_THREAD */
    app_t *app = user;
    sprite_t *sp = value;
    if (sp->tex) gpu_release(&app->gpu, sp->tex);
    asset_free(sp);
}

static void atlas_free(void *ctx, void *value) {
    (void)ctx;
    asset_free(value); /* the sprites are labeled values, freed on their own */
}

/* Worker thread: {"image": "hero.ppm", "sprites": {"idle": [x, y, w, h], ...}} */
static asset_status_t atlas_parse(void *ctx, asset_parse_t *p) {
    app_t *app = ctx;
    cJSON *doc = cJSON_Parse((const char *)asset_parse_data(p));
    if (!doc) return asset_parse_fail(p, ASSET_E_PARSE, "invalid JSON");
    asset_status_t st = ASSET_OK;
    atlas_t *a = asset_alloc(sizeof *a);
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(doc, "image");
    const cJSON *sprites = cJSON_GetObjectItemCaseSensitive(doc, "sprites");
    const cJSON *it;
    if (!a) {
        st = asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        goto out;
    }
    a->n = 0;
    if (!cJSON_IsString(image) || !cJSON_IsObject(sprites)) {
        st = asset_parse_fail(p, ASSET_E_PARSE,
                              "want \"image\" (a string) and \"sprites\" (an object)");
        goto out;
    }
    /* dependency 0: the image, relative to the atlas; finalize runs after its own */
    if (!asset_parse_depend(p, image->valuestring, NULL)) {
        st = asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        goto out;
    }
    cJSON_ArrayForEach(it, sprites) {
        const cJSON *r[4];
        for (int k = 0; k < 4; k++) r[k] = cJSON_GetArrayItem(it, k);
        if (cJSON_GetArraySize(it) != 4 || !cJSON_IsNumber(r[0]) || !cJSON_IsNumber(r[1]) ||
            !cJSON_IsNumber(r[2]) || !cJSON_IsNumber(r[3]) || strlen(it->string) >= 32) {
            st = asset_parse_fail(p, ASSET_E_PARSE, "sprite \"%s\": want [x, y, w, h]", it->string);
            goto out;
        }
        if (a->n == ATLAS_MAX_SPRITES) {
            st = asset_parse_fail(p, ASSET_E_PARSE, "more than %d sprites", ATLAS_MAX_SPRITES);
            goto out;
        }
        sprite_t *sp = asset_alloc(sizeof *sp);
        if (!sp) {
            st = asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
            goto out;
        }
        *sp = (sprite_t){.kind = VALUE_SPRITE,
                         .x = r[0]->valueint,
                         .y = r[1]->valueint,
                         .w = r[2]->valueint,
                         .h = r[3]->valueint};
        snprintf(sp->name, sizeof sp->name, "%s", it->string);
        /* "atlas.json#<name>" loads yield this sprite; it is freed by sprite_free */
        asset_status_t ls = asset_parse_add_labeled(p, sp->name, sp, sizeof *sp, sprite_free, app);
        if (ls != ASSET_OK) {
            asset_free(sp); /* still ours when add_labeled fails */
            st = asset_parse_fail(p, ls, "sprite \"%s\": %s", it->string, asset_strerror(ls));
            goto out;
        }
        a->sprites[a->n++] = sp; /* borrowed: the atlas's labels outlive the atlas value */
    }
    asset_parse_set_value(p, a, sizeof *a);
    a = NULL;
out:
    asset_free(a);
    cJSON_Delete(doc);
    return st;
}

/* Main thread, inside flush, after the image finalized: the sprites get its texture. */
static asset_status_t atlas_finalize(void *ctx, asset_finalize_t *f) {
    app_t *app = ctx;
    atlas_t *a = asset_finalize_value(f);
    app->finalize_calls++;
    asset_handle_t *image = asset_finalize_dependency(f, 0);
    /* finalized and published before this call, even when it was in this same flush */
    const texture_t *t = asset_handle_value(image);
    if (!t)
        return asset_finalize_fail(f, ASSET_E_PARSE, "%s has no value", asset_handle_uri(image));
    for (size_t i = 0; i < a->n; i++) {
        sprite_t *sp = a->sprites[i];
        if (sp->x < 0 || sp->y < 0 || sp->x + sp->w > t->w || sp->y + sp->h > t->h)
            return asset_finalize_fail(f, ASSET_E_PARSE, "sprite \"%s\" lies outside %s (%dx%d)",
                                       sp->name, asset_handle_uri(image), t->w, t->h);
    }
    for (size_t i = 0; i < a->n; i++) { /* each sprite keeps the texture alive */
        a->sprites[i]->tex = t->tex;
        gpu_retain(&app->gpu, t->tex);
    }
    return ASSET_OK;
}

static const char *const atlas_suffixes[] = {".atlas.json", NULL};

/* ------------------------------------------------------------------------ */
/* level: the root of the graph                                              */
/* ------------------------------------------------------------------------ */

typedef struct level {
    char name[64];
    int w, h;
    size_t ndeps;
    char role[LEVEL_MAX_DEPS][40]; /* per dependency, in order: "tileset", "sprite player" */
} level_t;

/* One dependency of the level, by role; a NULL return is out of memory. */
static bool level_depend(asset_parse_t *p, level_t *lv, const char *role, const char *name,
                         const char *uri, bool optional) {
    asset_load_options_t o = {.optional = optional};
    if (!asset_parse_depend(p, uri, &o)) return false;
    snprintf(lv->role[lv->ndeps++], sizeof lv->role[0], "%s%s%s", role, name ? " " : "",
             name ? name : "");
    return true;
}

/* Worker thread: {"name", "size": [w, h], "tileset", "background", "sprites": {role:
 * uri}, "decals": [uri]}; every uri relative to the level. */
static asset_status_t level_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    cJSON *doc = cJSON_Parse((const char *)asset_parse_data(p));
    if (!doc) return asset_parse_fail(p, ASSET_E_PARSE, "invalid JSON");
    asset_status_t st = ASSET_OK;
    level_t *lv = asset_alloc(sizeof *lv);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(doc, "size");
    const cJSON *sprites = cJSON_GetObjectItemCaseSensitive(doc, "sprites");
    const cJSON *decals = cJSON_GetObjectItemCaseSensitive(doc, "decals");
    const char *fields[] = {"tileset", "background"};
    const cJSON *it;
    if (!lv) {
        st = asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
        goto out;
    }
    memset(lv, 0, sizeof *lv);
    if (!cJSON_IsString(name) || cJSON_GetArraySize(size) != 2 || !cJSON_IsObject(sprites)) {
        st =
            asset_parse_fail(p, ASSET_E_PARSE, "want \"name\", \"size\" [w, h] and \"sprites\" {}");
        goto out;
    }
    snprintf(lv->name, sizeof lv->name, "%s", name->valuestring);
    lv->w = cJSON_GetArrayItem(size, 0)->valueint;
    lv->h = cJSON_GetArrayItem(size, 1)->valueint;
    size_t want = 2 + (size_t)cJSON_GetArraySize(sprites) + (size_t)cJSON_GetArraySize(decals);
    if (want > LEVEL_MAX_DEPS) {
        st = asset_parse_fail(p, ASSET_E_PARSE, "%zu dependencies, at most %d", want,
                              LEVEL_MAX_DEPS);
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(doc, fields[k]);
        if (!cJSON_IsString(u)) {
            st = asset_parse_fail(p, ASSET_E_PARSE, "\"%s\": want a URI string", fields[k]);
            goto out;
        }
        if (!level_depend(p, lv, fields[k], NULL, u->valuestring, false)) goto oom;
    }
    cJSON_ArrayForEach(it, sprites) { /* "../atlas/hero.atlas.json#idle": one sprite */
        if (!cJSON_IsString(it)) {
            st = asset_parse_fail(p, ASSET_E_PARSE, "sprites.%s: want a URI string", it->string);
            goto out;
        }
        if (!level_depend(p, lv, "sprite", it->string, it->valuestring, false)) goto oom;
    }
    cJSON_ArrayForEach(it, decals) { /* nice to have: optional */
        if (cJSON_IsString(it) && !level_depend(p, lv, "decal", NULL, it->valuestring, true))
            goto oom;
    }
    asset_parse_set_value(p, lv, sizeof *lv);
    lv = NULL;
    goto out;
oom:
    st = asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
out:
    asset_free(lv);
    cJSON_Delete(doc);
    return st;
}

static const char *const level_suffixes[] = {".level.json", NULL};

/* ------------------------------------------------------------------------ */
/* main                                                                      */
/* ------------------------------------------------------------------------ */

/* "5/8": how many of the dependencies the level declared so far are done. */
static const char *deps_done(char *buf, size_t cap, asset_handle_t *h) {
    size_t n = asset_handle_dependency_count(h), done = 0;
    for (size_t i = 0; i < n; i++) done += asset_handle_is_done(asset_handle_dependency(h, i));
    snprintf(buf, cap, "%zu/%zu", done, n);
    return buf;
}

/* Prints a level's dependencies; returns how many of its sprites resolved to a texture
 * of the pool (every sprite dependency when all is well). */
static size_t print_level(app_t *app, asset_handle_t *h, size_t *nsprites) {
    const level_t *lv = asset_handle_value(h);
    size_t n = asset_handle_dependency_count(h), resolved = 0;
    *nsprites = 0;
    if (!lv) {
        printf("  %s\n", asset_handle_error_message(h)); /* names the URI and the chain */
        return 0;
    }
    printf("  %s (%dx%d): %zu dependencies\n", lv->name, lv->w, lv->h, n);
    for (size_t i = 0; i < n && i < lv->ndeps; i++) {
        asset_handle_t *d = asset_handle_dependency(h, i);
        const char *uri = strstr(asset_handle_uri(d), "://");
        uri = uri ? strchr(uri + 3, '/') : asset_handle_uri(d); /* pkg://demo/x -> /x */
        const void *v = asset_handle_value(d);
        if (!v) {
            printf("    %-18s %-30s %s (%s)\n", lv->role[i], uri,
                   asset_err_name(asset_handle_error(d)), asset_handle_error_message(d));
        } else if (*(const int *)v == VALUE_SPRITE) {
            const sprite_t *sp = v;
            const gpu_texture_t *t = gpu_get(&app->gpu, sp->tex);
            (*nsprites)++;
            resolved += t != NULL;
            printf("    %-18s %-30s %dx%d at (%d,%d) of texture %u%s\n", lv->role[i], uri, sp->w,
                   sp->h, sp->x, sp->y, (unsigned)sp->tex, t ? "" : " (UNRESOLVED)");
        } else {
            const texture_t *t = v;
            printf("    %-18s %-30s texture %u, %dx%d\n", lv->role[i], uri, (unsigned)t->tex, t->w,
                   t->h);
        }
    }
    return resolved;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : LEVEL_VIEWER_ASSETS;
    const char *root = dir; /* a mount takes a relative directory too (from the cwd) */
    static app_t app;       /* big (the pool); its address is the loaders' ctx */
    app.gpu.owner = pthread_self();
    atomic_init(&app.cpu_pixels, 0);

    asset_server_t *s = asset_server_create(NULL);
    const asset_loader_t ppm = {.abi = ASSET_LOADER_ABI,
                                .name = "ppm",
                                .suffixes = ppm_suffixes,
                                .parse = ppm_parse,
                                .free_value = ppm_free,
                                .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                                .finalize = ppm_finalize};
    const asset_loader_t atlas = {.abi = ASSET_LOADER_ABI,
                                  .name = "atlas",
                                  .suffixes = atlas_suffixes,
                                  .parse = atlas_parse,
                                  .free_value = atlas_free,
                                  .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD, /* its sprites */
                                  .finalize = atlas_finalize};
    const asset_loader_t level = {
        .abi = ASSET_LOADER_ABI, .name = "level", .suffixes = level_suffixes, .parse = level_parse};
    if (!s || asset_server_register_loader(s, &ppm, &app, 0) != ASSET_OK ||
        asset_server_register_loader(s, &atlas, &app, 0) != ASSET_OK ||
        asset_server_register_loader(s, &level, &app, 0) != ASSET_OK ||
        asset_server_mount(s, "demo", root) != ASSET_OK) {
        fprintf(stderr, "level_viewer: cannot set up the server\n");
        return 1;
    }

    const char *uris[] = {"pkg://demo/levels/forest.level.json",
                          "pkg://demo/levels/cave.level.json"};
    asset_handle_t *lv[2];
    for (int i = 0; i < 2; i++) lv[i] = asset_server_load(s, uris[i], NULL);
    printf("Loading %s and %s from %s\n", uris[0], uris[1], root);

    /* the game's frame loop: one budgeted flush per frame */
    unsigned frames = 0, max_calls = 0, per_frame[GIVE_UP_FRAMES];
    while (!asset_handle_is_done(lv[0]) || !asset_handle_is_done(lv[1])) {
        if (frames == GIVE_UP_FRAMES) {
            printf("giving up after %u frames\n", frames);
            for (int i = 0; i < 2; i++) asset_handle_cancel(lv[i]);
            asset_server_flush(s);
            break;
        }
        unsigned calls = app.finalize_calls;
        size_t up = app.uploaded;
        uint64_t t0 = now_ns();
        size_t dispatched = asset_server_flush_budget(s, FRAME_BUDGET_NS);
        double ms = (double)(now_ns() - t0) / 1e6;
        calls = app.finalize_calls - calls;
        per_frame[frames++] = calls;
        if (calls > max_calls) max_calls = calls;
        char d0[32], d1[32];
        printf("frame %3u: %u finalize call%s, %3zu KiB uploaded, %2zu completion%s in %.2f ms; "
               "dependencies done: forest %s, cave %s; GPU pool %zu KiB in %u textures\n",
               frames, calls, calls == 1 ? "" : "s", (app.uploaded - up) / 1024, dispatched,
               dispatched == 1 ? "" : "s", ms, deps_done(d0, sizeof d0, lv[0]),
               deps_done(d1, sizeof d1, lv[1]), app.gpu.bytes / 1024, app.gpu.live);
        /* update(); render(); present(); -- present() waits for vsync: ~60 Hz */
        struct timespec frame = {0, 16 * 1000000L};
        nanosleep(&frame, NULL);
    }

    printf("\nLoaded in %u frames; finalize calls per frame:", frames);
    for (unsigned i = 0; i < frames; i++) printf(" %u", per_frame[i]);
    printf(" (at most %u in one frame, %u in all)\n", max_calls, app.finalize_calls);
    size_t sprites = 0, resolved = 0, n;
    for (int i = 0; i < 2; i++) {
        resolved += print_level(&app, lv[i], &n);
        sprites += n;
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    size_t cpu_left = atomic_load(&app.cpu_pixels);
    printf("GPU pool: %zu KiB in %u textures (peak %zu KiB); CPU pixels left: %zu bytes\n",
           app.gpu.bytes / 1024, app.gpu.live, app.gpu.peak_bytes / 1024, cpu_left);
    printf("sprites resolved: %zu of %zu; %llu parses for %llu handles (shared dependencies load "
           "once, %llu joined a load in flight)\n",
           resolved, sprites, (unsigned long long)st.parses,
           (unsigned long long)(st.completed + st.failed), (unsigned long long)st.coalesced);
    bool ok = asset_handle_state(lv[0]) == ASSET_STATE_LOADED &&
              asset_handle_state(lv[1]) == ASSET_STATE_LOADED && sprites > 0 &&
              resolved == sprites && cpu_left == 0;

    /* a cache hit: the whole graph comes back at the next flush, finalized once only */
    unsigned calls = app.finalize_calls;
    asset_handle_t *again = asset_server_load(s, uris[0], NULL);
    asset_status_t rc = asset_handle_wait(again, 5000);
    printf("forest again: %s, %zu dependencies, %u finalize calls\n", asset_err_name(rc),
           asset_handle_dependency_count(again), app.finalize_calls - calls);
    ok = ok && rc == ASSET_OK && app.finalize_calls == calls;
    asset_handle_release(again);

    /* a sprite the atlas does not have */
    asset_handle_t *swim = asset_server_load(s, "pkg://demo/atlas/hero.atlas.json#swim", NULL);
    rc = asset_handle_wait(swim, 5000);
    printf("hero.atlas.json#swim: %s (%s)\n", asset_err_name(rc), asset_handle_error_message(swim));
    ok = ok && rc == ASSET_E_NOT_FOUND;
    asset_handle_release(swim);

    /* let go: the caches hold the graph until cleared; the textures are freed on this
     * thread at the next flush (FREE_ON_FLUSH_THREAD) */
    for (int i = 0; i < 2; i++) asset_handle_release(lv[i]);
    asset_server_clear_caches(s);
    printf("released and caches cleared: GPU pool %zu KiB in %u textures before the flush, ",
           app.gpu.bytes / 1024, app.gpu.live);
    asset_server_flush(s);
    printf("%zu KiB in %u after it\n", app.gpu.bytes / 1024, app.gpu.live);
    asset_server_destroy(s);
    ok = ok && app.gpu.live == 0 && app.gpu.bytes == 0 && app.gpu.wrong_thread == 0;
    printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
