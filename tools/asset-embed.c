/* asset-embed - turns a folder into a C table for asset_server_mount_embedded().
 *
 *     asset-embed <name> <dir> <out.c>
 *
 * Walks <dir> recursively and writes <out.c>, which defines
 *
 *     const asset_embedded_file_t <name>_files[];   // sorted by path
 *     const size_t <name>_files_count;
 *
 * Paths are relative to <dir> and '/'-separated ("textures/a.png"). Each file's bytes
 * become a static array with one extra 0 byte that the size does not count, so text
 * assets are C strings too. The table ends with a zeroed entry, also not counted.
 * The output is valid C and C++ (names have C linkage in both), so a C++-only project
 * can compile it (asset_server_embed() names it .cpp there).
 * Regular files only (a symlink to a file counts as the file); directories reached
 * through symlinks are skipped, so a link cycle cannot hang the build. The output is
 * written to <out.c>.<pid>.tmp and renamed, so a failed run never leaves half a file,
 * and two runs at once on one output (two targets of a parallel build embedding the same
 * folder under the same name) each rename a whole file of their own.
 *
 * The CMake function asset_server_embed() (cmake/AssetServerEmbed.cmake) runs this at
 * build time. POSIX (dirent); on Windows mingw-w64's wide-character dirent and stdio; C11. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifndef _WIN32
#include <unistd.h> /* getpid */
#endif

/* Windows' C library has neither symlinks in stat nor lstat: there a link is followed
 * like the file it names (the table holds the same bytes either way). */
#ifndef S_ISLNK
#define S_ISLNK(m) 0
#define lstat stat
#endif

/* The file system calls, with paths in UTF-8 (as pkg:// names are). On Windows the
 * narrow C library calls would use the ANSI code page: the wide ones are used, with
 * UTF-8 <-> UTF-16 here; and rename() there refuses to replace the previous output. */
#ifdef _WIN32
#include <windows.h>

static wchar_t *wide(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof *w) : NULL;
    if (!w || !MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n)) {
        fprintf(stderr, "asset-embed: not UTF-8 (or out of memory): %s\n", s);
        exit(1);
    }
    return w;
}

typedef struct os_dir {
    _WDIR *d;
    char name[4 * 260 + 1]; /* the last entry's name in UTF-8 */
} os_dir_t;

static os_dir_t *os_opendir(const char *path) {
    wchar_t *w = wide(path);
    _WDIR *d = _wopendir(w);
    free(w);
    os_dir_t *o = d ? calloc(1, sizeof *o) : NULL;
    if (o) o->d = d;
    return o;
}
static const char *os_readdir(os_dir_t *o) {
    struct _wdirent *e = _wreaddir(o->d);
    if (!e) return NULL;
    if (!WideCharToMultiByte(CP_UTF8, 0, e->d_name, -1, o->name, sizeof o->name, NULL, NULL)) {
        fprintf(stderr, "asset-embed: a file name that UTF-8 cannot hold\n");
        exit(1);
    }
    return o->name;
}
static void os_closedir(os_dir_t *o) {
    _wclosedir(o->d);
    free(o);
}
static int os_stat(const char *path, struct stat *st) {
    wchar_t *w = wide(path);
    struct _stat64 s64;
    int rc = _wstat64(w, &s64);
    free(w);
    if (rc == 0) {
        memset(st, 0, sizeof *st);
        st->st_mode = s64.st_mode;
    }
    return rc;
}
#define os_lstat os_stat
static FILE *os_fopen(const char *path, const char *mode) {
    wchar_t *w = wide(path), *m = wide(mode);
    FILE *f = _wfopen(w, m);
    free(w);
    free(m);
    return f;
}
static int os_rename(const char *from, const char *to) {
    wchar_t *a = wide(from), *b = wide(to);
    int rc = MoveFileExW(a, b, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
    free(a);
    free(b);
    return rc;
}
static unsigned long os_pid(void) { return (unsigned long)GetCurrentProcessId(); }
#else
typedef DIR os_dir_t;
#define os_opendir opendir
static const char *os_readdir(os_dir_t *d) {
    struct dirent *e = readdir(d);
    return e ? e->d_name : NULL;
}
#define os_closedir closedir
#define os_stat stat
#define os_lstat lstat
#define os_fopen fopen
#define os_rename rename
static unsigned long os_pid(void) { return (unsigned long)getpid(); }
#endif

typedef struct list {
    char **paths; /* relative, '/'-separated */
    size_t n, cap;
} list_t;

static void die(const char *what, const char *arg) {
    fprintf(stderr, "asset-embed: %s%s%s\n", what, arg ? ": " : "", arg ? arg : "");
    exit(1);
}

/* Whether a pkg:// URI can name path under a package of one byte's name: "pkg://p/" and
 * path, its '%' and '#' written "%25" and "%23", at most 8192 bytes (the library's limit:
 * asset_server_mount_embedded() refuses a longer entry, whatever the package's name). */
static int nameable(const char *path) {
    size_t n = sizeof "pkg://p/" - 1;
    for (const char *c = path; *c && n <= 8192; c++) n += *c == '%' || *c == '#' ? 3 : 1;
    return n <= 8192;
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) die("out of memory", NULL);
    memcpy(p, a, na);
    size_t at = na;
    if (na && nb) p[at++] = '/';
    memcpy(p + at, b, nb + 1);
    return p;
}

static void add(list_t *l, char *path) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        char **p = realloc(l->paths, l->cap * sizeof *p);
        if (!p) die("out of memory", NULL);
        l->paths = p;
    }
    l->paths[l->n++] = path;
}

/* Adds the files under root/rel (rel "" for root itself). */
static void walk(list_t *l, const char *root, const char *rel, int depth) {
    if (depth > 64) die("directory tree deeper than 64 levels", rel);
    char *dirpath = join(root, rel);
    os_dir_t *d = os_opendir(dirpath);
    if (!d) {
        fprintf(stderr, "asset-embed: %s: %s\n", dirpath, strerror(errno));
        exit(1);
    }
    const char *nm;
    while ((nm = os_readdir(d))) {
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        /* no pkg:// URI names it (the parser refuses a backslash), and
         * asset_server_mount_embedded() refuses a table with one: said at build time */
        if (strchr(nm, '\\')) die("a name with a backslash, which no pkg:// URI can name", nm);
        char *sub = join(rel, nm);
        char *full = join(root, sub);
        struct stat lst, st;
        if (os_lstat(full, &lst) != 0) die("cannot stat", full);
        if (S_ISDIR(lst.st_mode)) {
            walk(l, root, sub, depth + 1);
            free(sub);
        } else if (S_ISREG(lst.st_mode) ||
                   (S_ISLNK(lst.st_mode) && os_stat(full, &st) == 0 && S_ISREG(st.st_mode))) {
            if (!nameable(sub)) die("a path whose pkg:// URI would pass 8192 bytes", sub);
            add(l, sub);
        } else {
            free(sub); /* sockets, fifos, dangling links, links to directories */
        }
        free(full);
    }
    os_closedir(d);
    free(dirpath);
}

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A C string literal for s. Octal escapes are always three digits, so a following
 * digit can never be read as part of one. */
static void put_literal(FILE *o, const char *s) {
    fputc('"', o);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(o, "\\%c", *c);
        else if (*c == '?')
            fputs("\\?", o); /* no trigraphs */
        else if (*c < 0x20 || *c >= 0x7f)
            fprintf(o, "\\%03o", *c);
        else
            fputc(*c, o);
    }
    fputc('"', o);
}

/* Writes one file as `static const unsigned char <name>_data_<i>[]`; returns its size. */
static size_t put_data(FILE *o, const char *name, size_t i, const char *full) {
    FILE *f = os_fopen(full, "rb");
    if (!f) die("cannot open", full);
    fprintf(o, "static const unsigned char %s_data_%zu[] = {", name, i);
    size_t size = 0;
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t k = 0; k < n; k++, size++)
            fprintf(o, "%s0x%02x,", size % 16 ? "" : "\n    ", buf[k]);
    }
    if (ferror(f)) die("cannot read", full);
    fclose(f);
    fprintf(o, "%s0x00\n};\n", size % 16 ? "" : "\n    ");
    return size;
}

static int valid_ident(const char *s) {
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return 0;
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: asset-embed <name> <dir> <out.c>\n"
                        "  writes <name>_files[] and <name>_files_count for "
                        "asset_server_mount_embedded()\n");
        return 2;
    }
    const char *name = argv[1], *dir = argv[2], *out = argv[3];
    if (!valid_ident(name)) die("name must be a C identifier", name);
    list_t l = {0};
    walk(&l, dir, "", 0);
    if (l.n) qsort(l.paths, l.n, sizeof *l.paths, cmp);

    /* a name of this run's own: two runs at once on one output (a parallel build with
     * two targets that embed the same folder under the same name) both wrote <out>.tmp,
     * one truncating the other's file and renaming it away under it ("cannot rename
     * to", or a table cut short) */
    char *tmp = malloc(strlen(out) + 32);
    if (!tmp) die("out of memory", NULL);
    sprintf(tmp, "%s.%lu.tmp", out, os_pid());
    FILE *o = os_fopen(tmp, "wb");
    if (!o) die("cannot write", tmp);
    fprintf(o, "/* Generated by asset-embed (package table \"%s\"): do not edit. */\n", name);
    fprintf(o, "#include <asset_server.h>\n\n");
    /* C++: C linkage, and the extern declarations give the const definitions below
     * external linkage (a namespace-scope const is internal in C++ otherwise). */
    fprintf(o, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(o, "extern const asset_embedded_file_t %s_files[];\n", name);
    fprintf(o, "extern const size_t %s_files_count;\n\n", name);
    size_t *sizes = calloc(l.n ? l.n : 1, sizeof *sizes);
    if (!sizes) die("out of memory", NULL);
    for (size_t i = 0; i < l.n; i++) {
        char *full = join(dir, l.paths[i]);
        sizes[i] = put_data(o, name, i, full);
        free(full);
    }
    fprintf(o, "\nconst asset_embedded_file_t %s_files[] = {\n", name);
    for (size_t i = 0; i < l.n; i++) {
        fputs("    {", o);
        put_literal(o, l.paths[i]);
        fprintf(o, ", %s_data_%zu, %zuu},\n", name, i, sizes[i]);
    }
    /* C++: {} (0 for a pointer warned under -Wzero-as-null-pointer-constant, and a C++
     * project compiles this file with its own flags); C before C23 has no {} */
    fputs("#ifdef __cplusplus\n    {} /* end of table, not counted */\n#else\n"
          "    {0, 0, 0} /* end of table, not counted */\n#endif\n};\n",
          o);
    fprintf(o, "const size_t %s_files_count = %zuu;\n", name, l.n);
    fprintf(o, "\n#ifdef __cplusplus\n}\n#endif\n");
    if (ferror(o) || fclose(o) != 0) die("cannot write", tmp);
    if (os_rename(tmp, out) != 0) die("cannot rename to", out);
    for (size_t i = 0; i < l.n; i++) free(l.paths[i]);
    free(l.paths);
    free(sizes);
    free(tmp);
    return 0;
}
