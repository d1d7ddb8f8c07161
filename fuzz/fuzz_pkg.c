/* fuzz_pkg.c - the pkg:// path resolver: asset__uri_parse of "pkg://game/<input>"
 * (what pkg_read gets) and asset__open_beneath (src/fs.c) on a temp tree full of
 * traps: symlinks out of the root (relative, absolute, through a directory), a
 * symlink loop, a symlink that stays inside, a FIFO.
 *
 * Both resolvers are checked: openat2(RESOLVE_BENEATH) and the O_NOFOLLOW walk used
 * where openat2 is missing (asset__fs_force_walk). Also the raw input as the relative
 * path, which breaks open_beneath's precondition (no ".."): even then nothing outside
 * the root may open.
 *
 * Property: any descriptor opened resolves (/proc/self/fd) to the root or below it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "internal.h"
#include "uri.h"

static char g_root[PATH_MAX]; /* realpath of <tmp>/pkgs/game */
static int g_root_fd = -1;

static void mk(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) abort();
    fputs(text, f);
    fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char tmpl[PATH_MAX]; /* under $TMPDIR: fuzz/run.sh gives each target one it removes */
    const char *tmp = getenv("TMPDIR");
    snprintf(tmpl, sizeof tmpl, "%s/asset_fuzz_pkg_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *t = mkdtemp(tmpl);
    if (!t) abort();
    char p[PATH_MAX], q[PATH_MAX];
#define P(...) (snprintf(p, sizeof p, __VA_ARGS__), p)
    mkdir(P("%s/pkgs", t), 0755);
    mkdir(P("%s/pkgs/game", t), 0755);
    mkdir(P("%s/pkgs/game/sub", t), 0755);
    mkdir(P("%s/pkgs/game/sub/deeper", t), 0755);
    mkdir(P("%s/outside", t), 0755);
    mk(P("%s/outside/secret.txt", t), "secret");
    mk(P("%s/pkgs/secret2.txt", t), "secret");
    mk(P("%s/pkgs/game/a.txt", t), "a");
    mk(P("%s/pkgs/game/sub/b.txt", t), "b");
    mk(P("%s/pkgs/game/sub/deeper/c.txt", t), "c");
    snprintf(q, sizeof q, "%s/outside", t);
    if (symlink(q, P("%s/pkgs/game/abs_out", t))) abort();               /* absolute, out */
    if (symlink("../../outside", P("%s/pkgs/game/rel_out", t))) abort(); /* relative, out */
    if (symlink("../secret2.txt", P("%s/pkgs/game/up_file", t))) abort();
    if (symlink("../../../outside/secret.txt", P("%s/pkgs/game/sub/deeper/far", t))) abort();
    if (symlink("sub", P("%s/pkgs/game/in_dir", t))) abort(); /* stays inside */
    if (symlink("a.txt", P("%s/pkgs/game/in_file", t))) abort();
    if (symlink("loop", P("%s/pkgs/game/loop", t))) abort();
    if (symlink("/etc/passwd", P("%s/pkgs/game/passwd", t))) abort();
    if (symlink("/proc/self/root/etc", P("%s/pkgs/game/magic", t))) abort();
    mkfifo(P("%s/pkgs/game/fifo", t), 0644);
    if (!realpath(P("%s/pkgs/game", t), g_root)) abort();
    g_root_fd = open(g_root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (g_root_fd < 0) abort();
    return 0;
}

static void check_fd(int fd, const char *rel, bool walk) {
    if (fd < 0) return;
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    close(fd);
    if (n < 0) return;
    target[n] = 0;
    size_t rl = strlen(g_root);
    if (strncmp(target, g_root, rl) != 0 || (target[rl] != 0 && target[rl] != '/')) {
        fprintf(stderr, "fuzz_pkg: '%s' (%s) opened '%s', outside the root '%s'\n", rel,
                walk ? "walk" : "openat2", target, g_root);
        abort();
    }
}

static void open_both(const char *rel) {
    for (int walk = 0; walk < 2; walk++) {
        asset__fs_force_walk = walk;
        /* O_NONBLOCK: a FIFO must not block the fuzzer */
        check_fd(asset__open_beneath(g_root_fd, rel, O_RDONLY | O_NONBLOCK | O_NOCTTY), rel, walk);
        check_fd(asset__open_beneath(g_root_fd, rel, O_PATH), rel, walk);
        check_fd(asset__open_beneath(g_root_fd, rel, O_RDONLY | O_DIRECTORY), rel, walk);
    }
    asset__fs_force_walk = false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 1024) return 0;
    char *in = malloc(size + 1);
    memcpy(in, data, size);
    in[size] = 0;
    /* as pkg_read sees it */
    char *uri = malloc(size + 16);
    snprintf(uri, size + 16, "pkg://game/%s", in);
    asset_uri_t u;
    const char *why;
    if (asset__uri_parse(uri, "/", NULL, &u, &why) == ASSET_OK) {
        const char *path = u.path;
        size_t nl = strcspn(path, "/");
        if (nl == 4 && !strncmp(path, "game", 4)) open_both(path[nl] ? path + nl + 1 : "");
        asset__uri_dispose(&u);
    }
    /* the raw input, precondition or not */
    if (*in) open_both(in);
    free(uri);
    free(in);
    return 0;
}
