/* sdl_gallery.c - a windowed image gallery with SDL2: a grid of images loaded in the
 * background, textures created on the render thread, a progress bar, and the page's
 * loads cancelled when you turn the page.
 *
 *     sdl_gallery [dir]                 every *.ppm in dir (default: 60 generated images)
 *     sdl_gallery --screenshot out.bmp  test hook: turns to page 2 at once (cancelling
 *                                       page 1), saves the window when page 2 has loaded,
 *                                       exits 0 (1 if it did not load within ~20 s)
 *     keys: Right / Left / PageDown / PageUp turn the page, Escape quits
 *
 * The image loader ("ppm", binary P6) decodes on a worker; its finalize step runs on
 * this thread inside asset_server_flush_budget() and turns the pixels into an
 * SDL_Texture (SDL renderers belong to the thread that made them). The loader sets
 * ASSET_LOADER_FREE_ON_FLUSH_THREAD so textures are destroyed on this thread too. A
 * PNG loader would call stb_image's stbi_load_from_memory() in the same place.
 *
 * Built only when pkg-config finds sdl2 (Debian: libsdl2-dev). CI runs it under Xvfb:
 * `xvfb-run -a sdl_gallery --screenshot shot.bmp` (docs/sdl_gallery.png is one).
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include <asset_server.h>

#include <SDL.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIN_W 640
#define WIN_H 480
#define COLS 4
#define ROWS 3
#define PER_PAGE (COLS * ROWS)
#define CELL 140 /* pixels, image 128 + margin */
#define MAX_IMAGES 512
#define GIVE_UP_FRAMES 1200 /* ~20 s at 60 Hz */

/* ---- the image loader ---- */

typedef struct image { /* CPU pixels after parse; a texture after finalize */
    int w, h;
    uint8_t *rgb;
    SDL_Texture *tex;
} image_t;

static void image_free(void *ctx, void *value) { /* this thread: FREE_ON_FLUSH_THREAD */
    (void)ctx;
    image_t *img = value;
    if (img->tex) SDL_DestroyTexture(img->tex);
    asset_free(img->rgb);
    asset_free(img);
}

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

/* Worker thread: bytes in, RGB pixels out. */
static asset_status_t ppm_parse(void *ctx, asset_parse_t *p) {
    (void)ctx;
    const char *c = (const char *)asset_parse_data(p), *end = c + asset_parse_size(p);
    long w, h, maxval;
    if (end - c < 2 || c[0] != 'P' || c[1] != '6')
        return asset_parse_fail(p, ASSET_E_PARSE, "not a binary PPM: it does not start with P6");
    c += 2;
    if (!ppm_number(&c, end, &w) || !ppm_number(&c, end, &h) || !ppm_number(&c, end, &maxval) ||
        w < 1 || h < 1 || w > 8192 || h > 8192 || maxval != 255)
        return asset_parse_fail(p, ASSET_E_PARSE, "PPM header: want P6 W H 255, W and H 1..8192");
    c++; /* the one whitespace byte after maxval: a file may end before it */
    size_t n = (size_t)w * (size_t)h * 3, have = c < end ? (size_t)(end - c) : 0;
    if (have < n)
        return asset_parse_fail(p, ASSET_E_PARSE, "truncated: %ldx%ld needs %zu bytes", w, h, n);
    image_t *img = asset_alloc(sizeof *img);
    uint8_t *rgb = img ? asset_alloc(n) : NULL;
    if (!rgb) {
        asset_free(img);
        return asset_parse_fail(p, ASSET_E_NO_MEMORY, "out of memory");
    }
    memcpy(rgb, c, n);
    *img = (image_t){.w = (int)w, .h = (int)h, .rgb = rgb};
    asset_parse_set_value(p, img, n + sizeof *img);
    return ASSET_OK;
}

/* This thread, inside flush: the texture. */
static asset_status_t ppm_finalize(void *ctx, asset_finalize_t *f) {
    SDL_Renderer *r = ctx;
    image_t *img = asset_finalize_value(f);
    img->tex =
        SDL_CreateTexture(r, SDL_PIXELFORMAT_RGB24, SDL_TEXTUREACCESS_STATIC, img->w, img->h);
    if (!img->tex) return asset_finalize_fail(f, ASSET_E_NO_MEMORY, "SDL: %s", SDL_GetError());
    SDL_UpdateTexture(img->tex, NULL, img->rgb, img->w * 3);
    asset_free(img->rgb); /* the GPU has them now */
    img->rgb = NULL;
    asset_finalize_set_value(f, img, (size_t)img->w * (size_t)img->h * 4);
    return ASSET_OK;
}

static const char *const ppm_suffixes[] = {".ppm", NULL};

/* ---- images: a folder of *.ppm, or generated ones in mem:// ---- */

static char *g_uris[MAX_IMAGES];
static size_t g_count;

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends s to w, its '%' and '#' written %25 and %23; returns the end. */
static char *put_escaped(char *w, const char *s) {
    for (; *s; s++)
        if (*s == '%' || *s == '#')
            w += sprintf(w, "%%%02X", (unsigned char)*s);
        else
            *w++ = *s;
    *w = 0;
    return w;
}

/* Each *.ppm of dir as a file:// URI: a bare path "dir/a#1.ppm" would be the file
 * "dir/a" with the label "1.ppm", so the path is absolute, '%' and '#' escaped. */
static void list_dir(const char *dir) {
    char *abs = realpath(dir, NULL);
    DIR *d = abs ? opendir(abs) : NULL;
    if (!d) {
        free(abs);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) && g_count < MAX_IMAGES) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".ppm")) continue;
        char *uri = malloc(7 + 3 * (strlen(abs) + 1 + n) + 1); /* each byte may take 3 */
        if (!uri) break;
        char *w = put_escaped(uri + 7, abs);
        *w++ = '/';
        put_escaped(w, e->d_name);
        memcpy(uri, "file://", 7);
        g_uris[g_count++] = uri;
    }
    closedir(d);
    free(abs);
    qsort(g_uris, g_count, sizeof *g_uris, by_name);
}

/* 60 images of 128x128: rings and stripes in a colour of their own. */
static void generate(asset_server_t *s) {
    enum { W = 128, H = 128 };
    static uint8_t buf[32 + W * H * 3];
    for (int i = 0; i < 60; i++) {
        int hdr = snprintf((char *)buf, 32, "P6\n%d %d\n255\n", W, H);
        uint8_t *px = buf + hdr;
        int r0 = 60 + (i * 37) % 190, g0 = 60 + (i * 71) % 190, b0 = 60 + (i * 113) % 190;
        for (int y = 0; y < H; y++) {
            for (int x = 0; x < W; x++) {
                int dx = x - W / 2, dy = y - H / 2, d = 0;
                while ((d + 1) * (d + 1) <= dx * dx + dy * dy) d++; /* integer sqrt */
                int ring = (d / (6 + 2 * (i % 5))) % 2, stripe = ((x + y + i * 3) / 16) % 2;
                uint8_t *o = px + (y * W + x) * 3;
                o[0] = (uint8_t)(ring ? r0 : r0 / 3 + stripe * 40);
                o[1] = (uint8_t)(ring ? g0 : g0 / 3 + stripe * 40);
                o[2] = (uint8_t)(ring ? b0 : b0 / 3 + stripe * 40);
            }
        }
        char key[32];
        snprintf(key, sizeof key, "gallery/%02d.ppm", i);
        asset_mem_put(s, key, buf, (size_t)hdr + W * H * 3);
        size_t len = strlen(key) + 7;
        g_uris[g_count] = malloc(len);
        snprintf(g_uris[g_count++], len, "mem://%s", key);
    }
}

/* ---- pages ---- */

static asset_batch_t *load_page(asset_server_t *s, int page) {
    size_t first = (size_t)page * PER_PAGE;
    size_t n = first < g_count ? g_count - first : 0;
    if (n > PER_PAGE) n = PER_PAGE;
    asset_load_options_t o = {.tag = "page"};
    return asset_server_load_group(s, (const char *const *)g_uris + first, n, &o);
}

static void draw(SDL_Renderer *r, asset_batch_t *b, int page, int pages) {
    SDL_SetRenderDrawColor(r, 24, 26, 32, 255);
    SDL_RenderClear(r);
    size_t n = asset_batch_total(b);
    for (size_t i = 0; i < n; i++) {
        asset_handle_t *h = asset_batch_handle(b, i);
        SDL_Rect cell = {(WIN_W - COLS * CELL) / 2 + (int)(i % COLS) * CELL + (CELL - 128) / 2,
                         10 + (int)(i / COLS) * CELL, 128, 128};
        const image_t *img = asset_handle_value(h);
        if (img && img->tex) {
            SDL_RenderCopy(r, img->tex, NULL, &cell);
        } else {
            bool failed = asset_handle_state(h) == ASSET_STATE_FAILED;
            SDL_SetRenderDrawColor(r, failed ? 140 : 60, 60, 64, 255);
            SDL_RenderFillRect(r, &cell);
        }
    }
    /* the progress bar, and a dot per page (the current one bright) */
    SDL_Rect bar = {20, WIN_H - 22, WIN_W - 40, 10};
    SDL_SetRenderDrawColor(r, 60, 60, 64, 255);
    SDL_RenderFillRect(r, &bar);
    bar.w = (int)((float)bar.w * asset_batch_progress(b));
    SDL_SetRenderDrawColor(r, 90, 200, 120, 255);
    SDL_RenderFillRect(r, &bar);
    for (int p = 0; p < pages; p++) {
        SDL_Rect dot = {WIN_W / 2 - pages * 8 + p * 16, WIN_H - 40, 8, 8};
        SDL_SetRenderDrawColor(r, p == page ? 230 : 90, p == page ? 230 : 90, 90, 255);
        SDL_RenderFillRect(r, &dot);
    }
}

static bool screenshot(SDL_Renderer *r, const char *path) {
    SDL_Surface *shot = SDL_CreateRGBSurfaceWithFormat(0, WIN_W, WIN_H, 24, SDL_PIXELFORMAT_BGR24);
    if (!shot) return false;
    bool ok =
        SDL_RenderReadPixels(r, NULL, SDL_PIXELFORMAT_BGR24, shot->pixels, shot->pitch) == 0 &&
        SDL_SaveBMP(shot, path) == 0;
    SDL_FreeSurface(shot);
    return ok;
}

int main(int argc, char **argv) {
    const char *shot = NULL, *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--screenshot") && i + 1 < argc)
            shot = argv[++i];
        else
            dir = argv[i];
    }
    if (SDL_Init(SDL_INIT_VIDEO) != 0) {
        fprintf(stderr, "sdl_gallery: SDL_Init: %s\n", SDL_GetError());
        return 1;
    }
    SDL_Window *win = SDL_CreateWindow("asset_server gallery", SDL_WINDOWPOS_CENTERED,
                                       SDL_WINDOWPOS_CENTERED, WIN_W, WIN_H, 0);
    SDL_Renderer *ren = win ? SDL_CreateRenderer(win, -1, SDL_RENDERER_PRESENTVSYNC) : NULL;
    if (!ren && win) ren = SDL_CreateRenderer(win, -1, SDL_RENDERER_SOFTWARE);
    if (!ren) {
        fprintf(stderr, "sdl_gallery: window or renderer: %s\n", SDL_GetError());
        SDL_Quit();
        return 1;
    }
    SDL_RendererInfo info;
    bool vsync = SDL_GetRendererInfo(ren, &info) == 0 && (info.flags & SDL_RENDERER_PRESENTVSYNC);
    asset_server_t *s = asset_server_create(NULL);
    if (!s) { /* out of memory, or no thread could start */
        fprintf(stderr, "sdl_gallery: asset_server_create failed\n");
        SDL_DestroyRenderer(ren);
        SDL_DestroyWindow(win);
        SDL_Quit();
        return 1;
    }
    asset_loader_t ppm = {.abi = ASSET_LOADER_ABI,
                          .name = "ppm",
                          .suffixes = ppm_suffixes,
                          .parse = ppm_parse,
                          .free_value = image_free,
                          .flags = ASSET_LOADER_FREE_ON_FLUSH_THREAD,
                          .finalize = ppm_finalize};
    /* without it, .ppm files would go to the bytes loader and draw() would take bytes for
     * images: a failed registration (out of memory) ends the program */
    int rc = asset_server_register_loader(s, &ppm, ren, 0);
    if (rc != ASSET_OK) {
        fprintf(stderr, "sdl_gallery: register the ppm loader: %s\n", asset_err_name(rc));
        asset_server_destroy(s);
        SDL_DestroyRenderer(ren);
        SDL_DestroyWindow(win);
        SDL_Quit();
        return 1;
    }
    if (dir)
        list_dir(dir);
    else
        generate(s);
    int pages = (int)((g_count + PER_PAGE - 1) / PER_PAGE), page = 0;
    if (!pages) {
        fprintf(stderr, "sdl_gallery: no *.ppm in %s\n", dir ? dir : "(generated)");
        asset_server_destroy(s);
        SDL_Quit();
        return 1;
    }
    asset_batch_t *b = load_page(s, page);
    int status = -1, frames = 0;
    while (status < 0) {
        int turn = 0;
        SDL_Event e;
        while (SDL_PollEvent(&e)) {
            if (e.type == SDL_QUIT) status = 0;
            if (e.type != SDL_KEYDOWN) continue;
            SDL_Keycode k = e.key.keysym.sym;
            if (k == SDLK_ESCAPE) status = 0;
            if (k == SDLK_RIGHT || k == SDLK_PAGEDOWN) turn = 1;
            if (k == SDLK_LEFT || k == SDLK_PAGEUP) turn = -1;
        }
        if (shot && frames == 1 && pages > 1) turn = 1; /* the test hook turns at once */
        if (turn && page + turn >= 0 && page + turn < pages) {
            /* the old page's unfinished loads stop: queued ones never run */
            asset_server_cancel_tag(s, "page", NULL);
            asset_batch_release(b);
            page += turn;
            b = load_page(s, page);
        }
        asset_server_flush_budget(s, 4000000); /* 4 ms: completions and texture uploads */
        draw(ren, b, page, pages);
        if (shot && page == (pages > 1) && asset_batch_is_done(b)) {
            status = screenshot(ren, shot) ? 0 : 1;
            printf("sdl_gallery: page %d of %d loaded (%zu images, %zu failed) in %d frames; "
                   "screenshot %s%s\n",
                   page + 1, pages, asset_batch_completed_count(b), asset_batch_failed_count(b),
                   frames, shot, status ? " FAILED" : "");
            if (asset_batch_failed_count(b)) status = 1;
        }
        SDL_RenderPresent(ren);
        if (!vsync) SDL_Delay(16); /* no vsync (Xvfb, software): pace the loop ourselves */
        if (++frames > GIVE_UP_FRAMES && shot && status < 0) {
            fprintf(stderr, "sdl_gallery: page did not load in %d frames\n", GIVE_UP_FRAMES);
            status = 1;
        }
    }
    asset_batch_release(b);
    asset_server_destroy(s); /* destroys the textures, on this thread, before the renderer */
    for (size_t i = 0; i < g_count; i++) free(g_uris[i]);
    SDL_DestroyRenderer(ren);
    SDL_DestroyWindow(win);
    SDL_Quit();
    return status;
}
