/* test_platform_win32.c - Windows path rules (built for Windows only; CI runs it under
 * wine): every way out of file_root or a package that Windows path syntax offers is
 * refused with FORBIDDEN or INVALID and a message naming the URI and why; drive
 * paths in all three spellings load the same file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <winsock2.h> /* before windows.h */
#include <windows.h>
#include <winioctl.h>

#include "platform/fs.h"       /* asset__fs_read_fault */
#include "platform/platform.h" /* asset__fs_walk_hook */
#include "platform/socket.h"
#include "test_util.h"

typedef struct fx {
    char *dir, *root;
    asset_server_t *s;
} fx_t;

static int setup(void **state) {
    fx_t *f = calloc(1, sizeof *f);
    f->dir = tu_mkdtemp();
    f->root = tu_path(f->dir, "root");
    free(tu_write_file(f->root, "a.txt", "aaa", 3));
    free(tu_write_file(f->root, "game/hero.txt", "hero", 4));
    free(tu_write_file(f->dir, "secret.txt", "secret", 6));
    asset_server_config_t cfg = {0};
    cfg.file_root = f->root;
    cfg.pkg_path = f->root;
    f->s = asset_server_create(&cfg);
    *state = f;
    return f->s ? 0 : -1;
}

static int teardown(void **state) {
    fx_t *f = *state;
    asset_server_destroy(f->s);
    tu_rmrf(f->dir);
    free(f->root);
    free(f->dir);
    free(f);
    return 0;
}

/* uri fails with want, and the message names the URI and contains `why` */
static void refused(fx_t *f, const char *uri, asset_status_t want, const char *why) {
    asset_handle_t *h = tu_load_wait(f->s, uri, want);
    const char *msg = asset_handle_error_message(h);
    if (!msg || !strstr(msg, why)) fail_msg("%s: message '%s' lacks '%s'", uri, msg, why);
    asset_handle_release(h);
}

static void test_dotdot_out_of_the_root_is_forbidden(void **state) {
    refused(*state, "../secret.txt", ASSET_E_FORBIDDEN, "escapes");
    refused(*state, "..\\secret.txt", ASSET_E_FORBIDDEN, "escapes");
    refused(*state, "pkg://game/..\\..\\secret.txt", ASSET_E_FORBIDDEN, "backslash");
}

static void test_alternate_data_streams_are_forbidden(void **state) {
    refused(*state, "a.txt:stream", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(*state, "a.txt::$DATA", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(*state, "pkg://game/hero.txt:x", ASSET_E_FORBIDDEN, "alternate data stream");
}

static void test_device_names_are_forbidden(void **state) {
    refused(*state, "CON", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "nul.txt", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "sub/COM1", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "pkg://game/aux.json", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "a.txt.", ASSET_E_FORBIDDEN, "dot or space");
}

/* Windows takes the ISO 8859-1 superscript digits as digits of COM# and LPT#: "COM\u00b9"
 * (UTF-8 C2 B9), "LPT\u00b2" and "com\u00b3.txt" are devices as COM1 is (Microsoft's "Naming
 * Files, Paths, and Namespaces"); another letter after one is a name like any other */
static void test_superscript_com_and_lpt_names_are_device_names(void **state) {
    refused(*state, "COM\xc2\xb9", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "sub/lpt\xc2\xb2.txt", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "file:///C:/x/com%C2%B3.json", ASSET_E_FORBIDDEN, "device name");
    refused(*state, "pkg://game/LPT\xc2\xb3.txt", ASSET_E_FORBIDDEN, "device name");
    asset_handle_release(tu_load_wait(((fx_t *)*state)->s, "COM\xc2\xb9x.txt", ASSET_E_NOT_FOUND));
    asset_handle_release(tu_load_wait(((fx_t *)*state)->s, "COM\xc2\xb4.txt", ASSET_E_NOT_FOUND));
}

static void test_unc_and_device_paths_are_forbidden(void **state) {
    refused(*state, "\\\\server\\share\\x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(*state, "//server/share/x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(*state, "\\\\?\\C:\\x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(*state, "\\\\.\\PhysicalDrive0", ASSET_E_FORBIDDEN, "UNC");
}

static void test_drive_relative_path_is_invalid(void **state) {
    refused(*state, "C:x.txt", ASSET_E_INVALID, "drive-relative");
}

/* C:\dir\x, C:/dir/x and file:///C:/dir/x name one file and one URI. */
static void test_drive_paths_in_every_spelling_load(void **state) {
    fx_t *f = *state;
    char *p = tu_path(f->root, "a.txt"); /* "Z:/tmp/.../root/a.txt" */
    char *back = strdup(p);
    for (char *c = back; *c; c++)
        if (*c == '/') *c = '\\';
    char *uri = tu_file_uri(p);
    asset_handle_t *h1 = tu_load_wait(f->s, p, ASSET_OK);
    asset_handle_t *h2 = tu_load_wait(f->s, back, ASSET_OK);
    asset_handle_t *h3 = tu_load_wait(f->s, uri, ASSET_OK);
    tu_expect_text(h2, "aaa");
    assert_string_equal(asset_handle_uri(h1), asset_handle_uri(h2));
    assert_string_equal(asset_handle_uri(h1), asset_handle_uri(h3));
    assert_memory_equal(asset_handle_uri(h1), "file:///", 8);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    free(uri);
    free(back);
    free(p);
    tu_expect_text(tu_load_wait(f->s, "pkg://game/hero.txt", ASSET_OK), "hero");
}

/* Windows file systems ignore case: a path under file_root spelled in other letters is
 * under it (it was refused as escaping), and names one URI, the root's spelling. */
static void test_file_root_is_compared_without_case(void **state) {
    fx_t *f = *state;
    char *p = tu_path(f->root, "a.txt"), *upper = strdup(p);
    for (char *c = upper; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
    assert_string_not_equal(p, upper);
    asset_handle_t *h1 = tu_load_wait(f->s, p, ASSET_OK);
    asset_handle_t *h2 = tu_load_wait(f->s, upper, ASSET_OK);
    tu_expect_text(h2, "aaa");
    /* the root's part spelled as the root is; the rest as given (A.TXT) */
    const char *u1 = asset_handle_uri(h1), *u2 = asset_handle_uri(h2);
    size_t rl = strlen("file:///") + strlen(f->root);
    assert_memory_equal(u1, u2, rl);
    assert_string_equal(u2 + rl, "/A.TXT");
    asset_handle_release(h1);
    asset_handle_release(h2);
    /* a sibling whose name only starts like the root's stays out */
    char *sibling = tu_path(f->dir, "ROOT2/a.txt");
    refused(f, sibling, ASSET_E_FORBIDDEN, "escapes");
    free(sibling);
    free(upper);
    free(p);
}

/* A file another program holds open without sharing: a state that passes, so an I/O
 * error saying so (it was E_FORBIDDEN "Permission denied"); readable once let go. */
static void test_a_file_in_use_without_sharing_is_an_io_error(void **state) {
    fx_t *f = *state;
    char *p = tu_path(f->root, "a.txt");
    wchar_t w[1024];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, p, -1, w, 1024) > 0);
    HANDLE held = CreateFileW(w, GENERIC_READ, 0, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    assert_true(held != INVALID_HANDLE_VALUE);
    refused(f, p, ASSET_E_IO, "in use by another program");
    CloseHandle(held);
    asset_load_options_t o = {.no_cache = true};
    asset_handle_t *h = asset_server_load(f->s, p, &o);
    assert_int_equal(tu_wait(h), ASSET_OK);
    tu_expect_text(h, "aaa");
    asset_handle_release(h);
    free(p);
}

/* The same escapes spelled as file:// URIs (absolute, below file_root's directory) and
 * as pkg:// URIs, through the public API: refused before any I/O. */
static void test_escapes_spelled_as_file_uris_are_refused(void **state) {
    fx_t *f = *state;
    char *root_uri = tu_file_uri(f->root); /* "file:///Z:/tmp/.../root" */
    static const struct {
        const char *tail;
        asset_status_t want;
        const char *why;
    } cases[] = {
        {"/../secret.txt", ASSET_E_FORBIDDEN, "escapes"},
        {"/%2e%2e/secret.txt", ASSET_E_FORBIDDEN, "escapes"},
        {"/game/..%5c..%5csecret.txt", ASSET_E_FORBIDDEN, "escapes"},
        {"/a.txt:stream", ASSET_E_FORBIDDEN, "alternate data stream"},
        {"/a.txt%3a%3a$DATA", ASSET_E_FORBIDDEN, "alternate data stream"},
        {"/CON", ASSET_E_FORBIDDEN, "device name"},
        {"/game/nul.txt", ASSET_E_FORBIDDEN, "device name"},
        {"/LPT1.json", ASSET_E_FORBIDDEN, "device name"},
        {"/a.txt%20", ASSET_E_FORBIDDEN, "dot or space"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char u[4096];
        snprintf(u, sizeof u, "%s%s", root_uri, cases[i].tail);
        refused(f, u, cases[i].want, cases[i].why);
    }
    refused(f, "file:////server/share/x.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(f, "file:///%5c%5cserver%5cshare%5cx.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(f, "file:///%5c%5c%3f%5cC:%5cx.txt", ASSET_E_FORBIDDEN, "UNC");
    refused(f, "file:///C:x.txt", ASSET_E_INVALID, "drive-relative");
    asset_stats_t st;
    asset_server_stats(f->s, &st);
    assert_int_equal(st.source_reads, 0);
    free(root_uri);
}

static void test_escapes_spelled_as_pkg_uris_are_refused(void **state) {
    fx_t *f = *state;
    refused(f, "pkg://game/../../secret.txt", ASSET_E_FORBIDDEN, "..");
    refused(f, "pkg://game/%2e%2e/%2e%2e/secret.txt", ASSET_E_FORBIDDEN, "..");
    refused(f, "pkg://game/%5c%5cserver%5cshare", ASSET_E_FORBIDDEN, "backslash");
    asset_stats_t st;
    asset_server_stats(f->s, &st);
    assert_int_equal(st.source_reads, 0); /* refused by the URI parser */
    /* names Windows cannot open safely: refused by the directory package, before it
     * opens anything (an embedded package takes them: test_pkg) */
    refused(f, "pkg://game/hero.txt::$DATA", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(f, "pkg://game/CON", ASSET_E_FORBIDDEN, "device name");
    refused(f, "pkg://game/com9.txt", ASSET_E_FORBIDDEN, "device name");
    refused(f, "pkg://game/C:x.txt", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(f, "pkg://game/C:/x.txt", ASSET_E_FORBIDDEN, "alternate data stream");
    refused(f, "pkg://game/aux/x.txt", ASSET_E_FORBIDDEN, "device name");
    refused(f, "pkg://game/x.txt.", ASSET_E_FORBIDDEN, "dot or space");
    /* a folder too; and no package on pkg_path can have such a name */
    asset_batch_t *b = asset_server_load_folder(f->s, "pkg://game/nul", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_FORBIDDEN);
    asset_batch_release(b);
    refused(f, "pkg://con/x.txt", ASSET_E_NOT_FOUND, "not mounted");
}

/* A directory junction (a mount-point reparse point) at `link` pointing to `target`;
 * false where the file system (or wine) will not make one. */
static bool make_junction(const char *link, const char *target) {
    wchar_t wl[MAX_PATH], wt[MAX_PATH];
    if (!MultiByteToWideChar(CP_UTF8, 0, link, -1, wl, MAX_PATH) ||
        !MultiByteToWideChar(CP_UTF8, 0, target, -1, wt, MAX_PATH))
        return false;
    for (wchar_t *c = wt; *c; c++)
        if (*c == L'/') *c = L'\\';
    if (!CreateDirectoryW(wl, NULL)) return false;
    HANDLE h = CreateFileW(wl, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE) return false;
    wchar_t sub[MAX_PATH + 8];
    swprintf(sub, MAX_PATH + 8, L"\\??\\%ls", wt);
    size_t sl = wcslen(sub) * sizeof(wchar_t), pl = wcslen(wt) * sizeof(wchar_t);
    /* REPARSE_DATA_BUFFER's MountPointReparseBuffer, spelled out (ntifs.h is the DDK's) */
    struct {
        DWORD tag;
        WORD len, reserved;
        WORD sub_off, sub_len, print_off, print_len;
        WCHAR buf[2 * MAX_PATH + 16];
    } rb;
    memset(&rb, 0, sizeof rb);
    rb.tag = IO_REPARSE_TAG_MOUNT_POINT;
    rb.sub_off = 0;
    rb.sub_len = (WORD)sl;
    rb.print_off = (WORD)(sl + sizeof(wchar_t));
    rb.print_len = (WORD)pl;
    memcpy(rb.buf, sub, sl);
    memcpy((char *)rb.buf + sl + sizeof(wchar_t), wt, pl);
    rb.len = (WORD)(8 + sl + pl + 2 * sizeof(wchar_t));
    DWORD got;
    BOOL ok = DeviceIoControl(h, FSCTL_SET_REPARSE_POINT, &rb, rb.len + 8u, NULL, 0, &got, NULL);
    CloseHandle(h);
    if (!ok) RemoveDirectoryW(wl);
    return ok;
}

/* A junction (or a symlink) inside the root to a directory outside: refused with
 * FORBIDDEN, through file:// and pkg://, the rest of the root still loads. */
static void test_junction_out_of_the_root_is_forbidden(void **state) {
    fx_t *f = *state;
    char *link = tu_path(f->root, "game/out");
    if (!make_junction(link, f->dir)) {
        print_message("  skipped: this file system (or wine) makes no junctions (error %lu)\n",
                      (unsigned long)GetLastError());
        free(link);
        skip();
    }
    char *via = tu_path(f->root, "game/out/secret.txt");
    char *via_uri = tu_file_uri(via);
    refused(f, via_uri, ASSET_E_FORBIDDEN, "escapes");
    refused(f, "game/out/secret.txt", ASSET_E_FORBIDDEN, "escapes");
    refused(f, "pkg://game/out/secret.txt", ASSET_E_FORBIDDEN, "escapes");
    tu_expect_text(tu_load_wait(f->s, "pkg://game/hero.txt", ASSET_OK), "hero");
    free(via_uri);
    free(via);
    free(link);
}

/* The walk's hook (asset__fs_walk_hook): once the walk has opened and checked root/sub,
 * sub is renamed away and a junction to a directory outside the root takes its name,
 * the race the walk must not lose. Where no junction can be made (wine 8 makes none),
 * the outside directory itself is moved into sub's place: a walk that goes back to
 * the path string reads it just the same. g_swap: 1 junction, 2 moved in, -1 the
 * rename failed. */
static char *g_swap_sub, *g_swap_moved, *g_swap_target;
static int g_swap;

static void swap_sub_for_the_outside(const char *rel, size_t n) {
    if (g_swap || n != 3 || memcmp(rel, "sub", 3) != 0) return;
    wchar_t from[MAX_PATH], to[MAX_PATH], out[MAX_PATH];
    if (!MultiByteToWideChar(CP_UTF8, 0, g_swap_sub, -1, from, MAX_PATH) ||
        !MultiByteToWideChar(CP_UTF8, 0, g_swap_moved, -1, to, MAX_PATH) ||
        !MultiByteToWideChar(CP_UTF8, 0, g_swap_target, -1, out, MAX_PATH) ||
        !MoveFileW(from, to)) {
        g_swap = -1;
        return;
    }
    if (make_junction(g_swap_sub, g_swap_target))
        g_swap = 1;
    else
        g_swap = MoveFileW(out, from) ? 2 : -1;
}

/* root/sub swapped, while the walk is inside it, for a junction out of the root (or
 * for the outside directory itself): the walk goes on in the directory it opened
 * (reads sub's own file, now in sub_moved) or refuses; it never reads the file
 * outside. (The walk went back to the path string for each component, and read it.) */
static void test_a_directory_swapped_mid_walk_is_not_followed_out(void **state) {
    fx_t *f = *state;
    free(tu_write_file(f->root, "sub/secret.txt", "inside", 6));
    free(tu_write_file(f->dir, "outside/secret.txt", "outside", 7));
    g_swap_sub = tu_path(f->root, "sub");
    g_swap_moved = tu_path(f->root, "sub_moved");
    g_swap_target = tu_path(f->dir, "outside");
    g_swap = 0;
    asset__fs_walk_hook = swap_sub_for_the_outside;
    asset_handle_t *h = asset_server_load(f->s, "sub/secret.txt", NULL);
    asset_status_t st = tu_wait(h);
    asset__fs_walk_hook = NULL;
    int swap = g_swap;
    wchar_t w[MAX_PATH];
    if (swap == 1 && MultiByteToWideChar(CP_UTF8, 0, g_swap_sub, -1, w, MAX_PATH))
        RemoveDirectoryW(w); /* the junction, not what it points to */
    free(g_swap_sub);
    free(g_swap_moved);
    free(g_swap_target);
    print_message("  sub swapped for %s; the load: %s\n",
                  swap == 1   ? "a junction"
                  : swap == 2 ? "the outside directory"
                              : "nothing",
                  st == ASSET_OK ? "loaded" : asset_handle_error_message(h));
    assert_true(swap > 0); /* the walk let sub be renamed, and reached the hook */
    if (st == ASSET_OK) {
        const asset_bytes_t *b = asset_handle_value(h);
        assert_non_null(b);
        if (b->size == 7 && !memcmp(b->data, "outside", 7))
            fail_msg("the walk read the file outside the root, through a directory swapped in");
        tu_expect_text(h, "inside");
    } else if (st != ASSET_E_FORBIDDEN && st != ASSET_E_NOT_FOUND) {
        fail_msg("status %d: %s", (int)st, asset_handle_error_message(h));
    }
    asset_handle_release(h);
}

/* A folder holding a name Windows cannot open as named ("d.", made through \\?\\, WSL
 * or an archive) lists it as one child that fails, instead of failing the listing. */
static void test_a_name_windows_refuses_fails_alone_in_a_folder(void **state) {
    fx_t *f = *state;
    char *odd = tu_path(f->root, "game/d.");
    wchar_t w[1024] = L"\\\\?\\";
    size_t n = wcslen(w);
    for (const char *c = odd; *c && n + 1 < sizeof w / sizeof *w; c++)
        w[n++] = *c == '/' ? L'\\' : (wchar_t)(unsigned char)*c;
    w[n] = 0;
    free(odd);
    if (!CreateDirectoryW(w, NULL)) skip(); /* this file system refuses it too */
    /* and "d": "d." opened as named would be this one */
    free(tu_write_file(f->root, "game/d/inside.txt", "in d", 4));
    assert_int_equal(asset_server_mount(f->s, "g", f->root), ASSET_OK);
    asset_batch_t *b = asset_server_load_folder(f->s, "pkg://g/game", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 2); /* hero.txt, d/inside.txt */
    assert_int_equal(asset_batch_failed_count(b), 1);    /* d. */
    RemoveDirectoryW(w);
    asset_batch_release(b);
}

/* The change time (FILE_BASIC_INFO.ChangeTime) of the file at w; 0 if unknown. */
static LONGLONG change_time(const wchar_t *w) {
    HANDLE h =
        CreateFileW(w, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE) return 0;
    FILE_BASIC_INFO bi;
    LONGLONG t =
        GetFileInformationByHandleEx(h, FileBasicInfo, &bi, sizeof bi) ? bi.ChangeTime.QuadPart : 0;
    CloseHandle(h);
    return t;
}

/* Sets the last-write time of the file at w to t. */
static bool set_write_time(const wchar_t *w, const FILETIME *t) {
    HANDLE h = CreateFileW(w, FILE_WRITE_ATTRIBUTES,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (h == INVALID_HANDLE_VALUE) return false;
    BOOL ok = SetFileTime(h, NULL, NULL, t);
    CloseHandle(h);
    return ok;
}

/* Regression: a file's version on Windows was its last-write time, size and file index,
 * all of which stay when a file is overwritten in place with as many bytes and its
 * last-write time set back (CopyFile and robocopy over an existing file, an archive
 * tool, any program restoring times): the next load (and hot reload) found it
 * NOT_MODIFIED and served the old bytes. The change time, which the file system moves
 * on every write, counts too, as ctime does on POSIX. */
static void test_a_same_size_rewrite_with_its_write_time_restored_is_seen(void **state) {
    fx_t *f = *state;
    char *path = tu_write_file(f->root, "v.txt", "AAAA", 4);
    wchar_t w[1024];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, path, -1, w, 1024) > 0);
    FILETIME pinned = {.dwLowDateTime = 0x12345000u, .dwHighDateTime = 0x01d9f000u};
    assert_true(set_write_time(w, &pinned));
    asset_load_options_t o = {.loader = "bytes"};
    asset_handle_t *h1 = asset_server_load(f->s, "v.txt", &o);
    assert_int_equal(tu_wait(h1), ASSET_OK);
    LONGLONG before = change_time(w);
    HANDLE fh = CreateFileW(w, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                            OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL); /* in place */
    assert_true(fh != INVALID_HANDLE_VALUE);
    DWORD put = 0;
    assert_true(WriteFile(fh, "BBBB", 4, &put, NULL) && put == 4);
    CloseHandle(fh);
    /* the write time set back; again until the change time moved on (a coarse clock) */
    int tries = 0;
    do assert_true(set_write_time(w, &pinned));
    while (change_time(w) == before && ++tries < 100000);
    print_message("  change time %s\n", change_time(w) != before ? "moved on" : "stayed");
    asset_handle_t *h2 = asset_server_load(f->s, "v.txt", &o);
    asset_status_t st = tu_wait(h2);
    const asset_bytes_t *b = asset_handle_value(h2);
    bool fresh = st == ASSET_OK && b && b->size == 4 && !memcmp(b->data, "BBBB", 4);
    asset_handle_release(h1);
    asset_handle_release(h2);
    free(path);
    assert_true(fresh);
}

/* Pins what the header's map_file and docs/platforms.md say of Windows: while a file is
 * mapped (a map_file load's value, a directory package's mapped file), Windows refuses
 * to replace it by a rename (MoveFileEx: ERROR_ACCESS_DENIED) and to truncate it (an
 * editor's fopen "wb": ERROR_USER_MAPPED_FILE), for as long as the value lives; both go
 * through once it is unmapped. The header advised "replaced by rename" as the safe way
 * to change such a file, which on Windows fails until the value is let go. */
static void test_a_mapped_file_is_neither_replaced_nor_truncated_until_unmapped(void **state) {
    fx_t *f = *state;
    size_t n = 3 * 4096 + 5; /* not a multiple of the page: mapped, not read */
    char *bytes = malloc(n);
    memset(bytes, 'm', n);
    char *path = tu_write_file(f->root, "mapped.bin", bytes, n);
    char *next = tu_write_file(f->root, "next.bin", "new", 3);
    wchar_t wp[1024], wn[1024];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, path, -1, wp, 1024) > 0);
    assert_true(MultiByteToWideChar(CP_UTF8, 0, next, -1, wn, 1024) > 0);
    asset__file_t *fh = NULL;
    assert_int_equal(asset__file_open(path, &fh), 0);
    void *data = NULL, *token = NULL;
    assert_int_equal(asset__file_map(fh, n, &data, &token), 0);
    asset__file_close(fh); /* the view alone holds the file now */
    assert_memory_equal(data, bytes, n);
    assert_false(MoveFileExW(wn, wp, MOVEFILE_REPLACE_EXISTING));
    assert_int_equal(GetLastError(), ERROR_ACCESS_DENIED);
    HANDLE t =
        CreateFileW(wp, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    TRUNCATE_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD e = GetLastError();
    if (t != INVALID_HANDLE_VALUE) CloseHandle(t);
    assert_true(t == INVALID_HANDLE_VALUE);
    assert_int_equal(e, ERROR_USER_MAPPED_FILE);
    asset__unmap(data, token);
    assert_true(MoveFileExW(wn, wp, MOVEFILE_REPLACE_EXISTING));
    free(bytes);
    free(path);
    free(next);
}

/* The HTTP source's sockets are not inherited by child processes (Windows makes a
 * socket inheritable by default; POSIX's are close-on-exec). */
static void test_sockets_are_not_inherited(void **state) {
    (void)state;
    WSADATA wsa;
    assert_int_equal(WSAStartup(MAKEWORD(2, 2), &wsa), 0);
    int err = -1;
    curl_socket_t s = asset__socket_open(AF_INET, SOCK_STREAM, IPPROTO_TCP, &err);
    assert_int_equal(err, 0);
    assert_true(s != CURL_SOCKET_BAD);
    DWORD flags = 0;
    assert_true(GetHandleInformation((HANDLE)s, &flags));
    assert_int_equal(flags & HANDLE_FLAG_INHERIT, 0);
    assert_int_equal(asset__socket_close(s), 0);
    WSACleanup();
}

/* What a process created at the instant the socket exists would inherit: its
 * HANDLE_FLAG_INHERIT, as the library made it (before anything clears it). */
static DWORD g_made_flags = 0xffffffffu;
static int g_made;
static void socket_made(curl_socket_t s) {
    g_made++;
    if (!GetHandleInformation((HANDLE)s, &g_made_flags)) g_made_flags = 0xffffffffu;
}

/* A socket is not inheritable from the moment it exists (thirty-eighth review): made by
 * socket() and its flag cleared after, one that another thread's CreateProcess (with
 * bInheritHandles, as a host reading a child's output does) met in between was kept
 * open by the child. The hook sees the socket before the function returns. */
static void test_a_socket_is_never_inheritable_even_as_it_is_made(void **state) {
    (void)state;
    WSADATA wsa;
    assert_int_equal(WSAStartup(MAKEWORD(2, 2), &wsa), 0);
    g_made = 0;
    asset__socket_made_hook = socket_made;
    int err = -1;
    curl_socket_t s = asset__socket_open(AF_INET, SOCK_STREAM, IPPROTO_TCP, &err);
    asset__socket_made_hook = NULL;
    assert_int_equal(err, 0);
    assert_true(s != CURL_SOCKET_BAD);
    assert_int_equal(g_made, 1);
    assert_true(g_made_flags != 0xffffffffu);
    if (g_made_flags & HANDLE_FLAG_INHERIT)
        fail_msg("the socket was inheritable when made (flags %lx)", (unsigned long)g_made_flags);
    /* a socket still: it connects to a listener of ours */
    SOCKET l = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    assert_true(l != INVALID_SOCKET);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int n = sizeof a;
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &n), 0);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(asset__socket_local_port(s) != 0, 1);
    closesocket(l);
    assert_int_equal(asset__socket_close(s), 0);
    WSACleanup();
}

/* UTF-8 path -> UTF-16 (malloc'd), '/' as '\\' */
static wchar_t *wpath(const char *p) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, p, -1, NULL, 0);
    assert_true(n > 0);
    wchar_t *w = malloc((size_t)n * sizeof *w);
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, p, -1, w, n);
    for (wchar_t *c = w; *c; c++)
        if (*c == L'/') *c = L'\\';
    return w;
}

/* A read held inside the library (asset__fs_read_fault: the file open, its bytes not
 * read yet), for the file named held_name: entered is set, then it waits for go. */
static HANDLE g_read_entered, g_read_go;
static const char *g_held_name;
static int hold_read(const char *path) {
    const char *slash = strrchr(path, '/');
    if (g_held_name && slash && !strcmp(slash + 1, g_held_name)) {
        SetEvent(g_read_entered);
        WaitForSingleObject(g_read_go, 30000);
    }
    return 0;
}

/* What an editor meets while the library reads a file (brief: does the library hold
 * one open without FILE_SHARE_DELETE?). It opens every file sharing read, write and
 * delete, by a path (no file_root) or beneath a root: during a read another program
 * can rename the file away (a backup save) and put a new one in its place, and the
 * read ends on the bytes it opened. A rename over the file itself is refused
 * (ERROR_ACCESS_DENIED) while it is open anywhere, shared or not: Windows' rule for the
 * target of a rename (docs/platforms.md, "Saving by rename while the library has the
 * file open"), not the library's. */
static void test_a_file_read_by_the_library_can_be_renamed_away_but_not_replaced(void **state) {
    fx_t *f = *state;
    asset_server_config_t cfg = {0};
    asset_server_t *plain = asset_server_create(&cfg); /* asset__file_open, not beneath */
    assert_non_null(plain);
    asset_server_t *servers[2] = {f->s, plain};
    g_read_entered = CreateEventW(NULL, FALSE, FALSE, NULL);
    g_read_go = CreateEventW(NULL, FALSE, FALSE, NULL);
    g_held_name = "held.txt";
    asset__fs_read_fault = hold_read;
    for (int i = 0; i < 2; i++) {
        char *p = tu_write_file(f->root, "game/held.txt", "old", 3);
        char *next = tu_write_file(f->root, "game/next.txt", "new", 3);
        char *bak = tu_path(f->root, "game/held.bak");
        wchar_t *wp = wpath(p), *wn = wpath(next), *wb = wpath(bak);
        asset_load_options_t o = {.no_cache = true};
        asset_handle_t *h = asset_server_load(servers[i], p, &o);
        assert_int_equal(WaitForSingleObject(g_read_entered, 30000), WAIT_OBJECT_0);
        /* over it: refused (wine, NTFS); a Windows that renames with POSIX semantics
         * by default would replace it, and the read goes on as below */
        bool replaced = MoveFileExW(wn, wp, MOVEFILE_REPLACE_EXISTING);
        if (replaced) {
            print_message("  a rename over the file being read went through\n");
        } else {
            assert_int_equal(GetLastError(), ERROR_ACCESS_DENIED);
            assert_true(MoveFileExW(wp, wb, 0)); /* away: FILE_SHARE_DELETE */
            assert_true(MoveFileExW(wn, wp, 0)); /* and the new one in its place */
        }
        SetEvent(g_read_go);
        assert_int_equal(tu_wait(h), ASSET_OK);
        tu_expect_text(h, "old"); /* the bytes of the file it opened */
        asset_handle_release(h);
        if (!replaced) assert_true(DeleteFileW(wb));
        h = asset_server_load(servers[i], p, &o);
        assert_int_equal(WaitForSingleObject(g_read_entered, 30000), WAIT_OBJECT_0);
        assert_true(DeleteFileW(wp)); /* deleted while read: FILE_SHARE_DELETE */
        SetEvent(g_read_go);
        assert_int_equal(tu_wait(h), ASSET_OK);
        tu_expect_text(h, "new");
        asset_handle_release(h);
        free(wp);
        free(wn);
        free(wb);
        free(p);
        free(next);
        free(bak);
    }
    asset__fs_read_fault = NULL;
    g_held_name = NULL;
    CloseHandle(g_read_entered);
    CloseHandle(g_read_go);
    asset_server_destroy(plain);
}

/* A file deleted while another program holds it open with FILE_SHARE_DELETE is gone
 * for every new open (ERROR_DELETE_PENDING / STATUS_DELETE_PENDING) until the last
 * handle closes: NOT_FOUND, as once it is gone (it read as FORBIDDEN). */
static void test_a_file_pending_deletion_is_not_found(void **state) {
    fx_t *f = *state;
    char *p = tu_write_file(f->root, "game/going.txt", "gone", 4);
    wchar_t *w = wpath(p);
    HANDLE held =
        CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    assert_true(held != INVALID_HANDLE_VALUE);
    assert_true(DeleteFileW(w));
    HANDLE probe =
        CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    DWORD e = GetLastError();
    if (probe != INVALID_HANDLE_VALUE) CloseHandle(probe);
    print_message("  opening it again: error %lu\n", (unsigned long)e);
    asset_load_options_t o = {.no_cache = true};
    asset_handle_t *h1 = asset_server_load(f->s, p, &o);
    asset_handle_t *h2 = asset_server_load(f->s, "game/going.txt", &o);
    asset_handle_t *h3 = asset_server_load(f->s, "pkg://game/going.txt", &o);
    asset_status_t s1 = tu_wait(h1), s2 = tu_wait(h2), s3 = tu_wait(h3);
    print_message("  %s | %s | %s\n", asset_handle_error_message(h1),
                  asset_handle_error_message(h2), asset_handle_error_message(h3));
    CloseHandle(held);
    asset_handle_release(h1);
    asset_handle_release(h2);
    asset_handle_release(h3);
    free(w);
    free(p);
    if (probe != INVALID_HANDLE_VALUE) {
        /* wine keeps the name openable until the last handle closes: still readable */
        print_message("  this platform opens a file pending deletion: pinned as readable\n");
        assert_true(s1 == ASSET_OK || s1 == ASSET_E_NOT_FOUND);
        assert_true(s2 == ASSET_OK || s2 == ASSET_E_NOT_FOUND);
        assert_true(s3 == ASSET_OK || s3 == ASSET_E_NOT_FOUND);
        return;
    }
    assert_int_equal(s1, ASSET_E_NOT_FOUND);
    assert_int_equal(s2, ASSET_E_NOT_FOUND);
    assert_int_equal(s3, ASSET_E_NOT_FOUND);
}

static int g_log_hits;
static char g_log_last[512];
static void log_capture(int level, const char *msg, void *user) {
    (void)user;
    if (level != ASSET_LOG_ERROR) return;
    g_log_hits++;
    snprintf(g_log_last, sizeof g_log_last, "%s", msg);
}

/* file_root "fr" fails asset_server_create, logging an error that contains why */
static void create_refused(const char *fr, const char *why) {
    asset_server_config_t cfg = {0};
    cfg.file_root = fr;
    cfg.log = log_capture;
    g_log_hits = 0;
    g_log_last[0] = 0;
    asset_server_t *s = asset_server_create(&cfg);
    if (s) {
        asset_server_destroy(s);
        fail_msg("file_root \"%s\": the server was created (nothing would load)", fr);
    }
    if (!g_log_hits || !strstr(g_log_last, why))
        fail_msg("file_root \"%s\": log '%s' lacks '%s'", fr, g_log_last, why);
}

/* A file_root Windows paths cannot name as a root of ours (a bare drive "C:", which
 * is the drive's current directory, or a UNC share) was accepted, made relative to the
 * working directory ("Z:/cwd/C:"), and then nothing loaded: create refuses it, saying
 * why. */
static void test_a_bare_drive_or_unc_file_root_is_refused_at_create(void **state) {
    (void)state;
    create_refused("C:", "drive-relative");
    create_refused("c:", "drive-relative");
    create_refused("C:assets", "drive-relative");
    create_refused("\\\\server\\share", "UNC");
    create_refused("//server/share/assets", "UNC");
    /* "C:\\" (the drive's root) is a root like any other */
    asset_server_config_t cfg = {0};
    cfg.file_root = "C:\\";
    asset_server_t *s = asset_server_create(&cfg);
    assert_non_null(s);
    asset_server_destroy(s);
}

/* A folder holding a name that is not valid UTF-16 (an unpaired surrogate, which NTFS
 * allows) lists the other children: the listing failed as a whole (EILSEQ). */
static void test_a_name_that_is_not_utf16_does_not_fail_the_listing(void **state) {
    fx_t *f = *state;
    char *dir = tu_path(f->root, "game");
    wchar_t *wd = wpath(dir);
    size_t n = wcslen(wd);
    wchar_t *w = malloc((n + 8) * sizeof *w);
    memcpy(w, wd, n * sizeof *w);
    w[n] = L'\\';
    w[n + 1] = L'x';
    w[n + 2] = (wchar_t)0xD800; /* a high surrogate with no low one after it */
    w[n + 3] = L'.';
    w[n + 4] = L't';
    w[n + 5] = 0;
    HANDLE h = CreateFileW(w, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        print_message("  skipped: no such name here (error %lu)\n", (unsigned long)GetLastError());
        free(w), free(wd), free(dir);
        skip();
    }
    CloseHandle(h);
    assert_int_equal(asset_server_mount(f->s, "g", f->root), ASSET_OK);
    asset_batch_t *b = asset_server_load_folder(f->s, "pkg://g/game", NULL);
    asset_status_t st = asset_batch_wait(b, 60000);
    print_message("  the listing: %d, %u loaded, %u failed\n", (int)st,
                  (unsigned)asset_batch_completed_count(b), (unsigned)asset_batch_failed_count(b));
    DeleteFileW(w);
    assert_int_equal(st, ASSET_OK);
    assert_int_equal(asset_batch_completed_count(b), 1); /* hero.txt */
    asset_batch_release(b);
    free(w), free(wd), free(dir);
}

/* A file and a folder named in letters outside any ANSI code page load through a bare
 * UTF-8 path, a %-encoded file:// URI and pkg://: the name reaches Windows as UTF-16
 * (checked with the W API), and the test's own helpers make and remove such names. */
static void test_a_non_ascii_name_loads_as_utf16(void **state) {
    fx_t *f = *state;
    /* game/日本/café-α.txt (a package's name is ASCII: the folder below it is not) */
    const char *rel = "game/\xe6\x97\xa5\xe6\x9c\xac/caf\xc3\xa9-\xce\xb1.txt";
    char *p = tu_write_file(f->root, rel, "kana", 4);
    char *expect = tu_path(f->root, "");
    wchar_t *w = wpath(expect);
    size_t n = wcslen(w);
    const wchar_t *tail = L"game\\\x65e5\x672c\\caf\x00e9-\x03b1.txt";
    wchar_t *full = malloc((n + wcslen(tail) + 2) * sizeof *full);
    wcscpy(full, w);
    if (n && full[n - 1] != L'\\') wcscat(full, L"\\");
    wcscat(full, tail);
    assert_true(GetFileAttributesW(full) != INVALID_FILE_ATTRIBUTES);
    char *uri = tu_file_uri(p);
    char pkg[256];
    snprintf(pkg, sizeof pkg, "pkg://%s", rel);
    const char *uris[] = {p, rel, uri, pkg};
    for (size_t i = 0; i < 4; i++) {
        asset_handle_t *h = tu_load_wait(f->s, uris[i], ASSET_OK);
        tu_expect_text(h, "kana");
        asset_handle_release(h);
    }
    /* tu_rmrf removes what tu_write_file made (it left such names behind) */
    char *top = tu_path(f->root, "game/\xe6\x97\xa5\xe6\x9c\xac");
    tu_rmrf(top);
    full[wcslen(full) - wcslen(L"\\caf\x00e9-\x03b1.txt")] = 0;
    DWORD a = GetFileAttributesW(full);
    free(top), free(uri), free(full), free(w), free(expect), free(p);
    assert_true(a == INVALID_FILE_ATTRIBUTES);
}

/* A name that is not valid UTF-8 (a byte 0xFF, an overlong "/") names no file on
 * Windows, whose names are UTF-16: NOT_FOUND, saying why, as POSIX finds no such file;
 * it was ASSET_E_IO ("Invalid or incomplete multibyte or wide character"), an I/O error
 * for a load that can only miss. */
static void test_a_name_that_is_not_utf8_is_not_found(void **state) {
    fx_t *f = *state;
    char *p = tu_path(f->root, "game/\xff.txt");
    refused(f, p, ASSET_E_NOT_FOUND, "not valid UTF-8");
    refused(f, "game/\xff.txt", ASSET_E_NOT_FOUND, "not valid UTF-8");
    refused(f, "pkg://game/%FF.txt", ASSET_E_NOT_FOUND, "not valid UTF-8");
    refused(f, "pkg://game/%C0%AF", ASSET_E_NOT_FOUND, "not valid UTF-8");
    asset_batch_t *b = asset_server_load_folder(f->s, "pkg://game/%FF", NULL);
    assert_int_equal(asset_batch_wait(b, 60000), ASSET_E_NOT_FOUND);
    asset_batch_release(b);
    free(p);
}

/* asset_trace_write_chrome_json takes a UTF-8 path, as every path of the library: a
 * name outside the ANSI code page is made as named (UTF-16). It was opened with the C
 * library's fopen, which reads the bytes in the ANSI code page: the trace went to a file
 * of another name ("trace-\u00e6\u2014\u00a5..." under wine, "trace-??.json" on a
 * Japanese-less system), and the call said ASSET_OK. */
static void test_a_trace_written_to_a_non_ascii_name_is_made_as_named(void **state) {
    fx_t *f = *state;
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    char *p = tu_path(f->dir, "trace-\xe6\x97\xa5\xe6\x9c\xac.json"); /* trace-日本.json */
    assert_int_equal(asset_trace_write_chrome_json(tr, p), ASSET_OK);
    asset_trace_destroy(tr);
    wchar_t *w = wpath(p);
    DWORD a = GetFileAttributesW(w);
    free(w), free(p);
    assert_true(a != INVALID_FILE_ATTRIBUTES);
}

/* The files the library writes or reads as a FILE (a trace, the file beside it it is
 * written to) are shared for deleting, as the files it loads are: while one is open,
 * another program may rename it (a log rotation) or delete it, and read it (a viewer, a
 * tail). They were opened with the C library's _wfopen / _wopen, which share no
 * FILE_SHARE_DELETE: the rename failed with a sharing violation. */
static void test_a_file_the_library_writes_can_be_renamed_or_deleted_while_open(void **st) {
    fx_t *f = *st;
    char *p = tu_path(f->dir, "trace.json"), *q = tu_path(f->dir, "trace.1.json");
    wchar_t *wp = wpath(p), *wq = wpath(q);
    for (int i = 0; i < 4; i++) {
        FILE *out = i == 0   ? asset__fopen_new(p, NULL)
                    : i == 1 ? asset__fopen_existing(p)
                    : i == 2 ? asset__fopen(p, "wb")
                             : asset__fopen(p, "rb");
        if (!out) fail_msg("open %d: errno %d", i, errno);
        if (i < 3) assert_true(fputs("{}", out) >= 0 && fflush(out) == 0);
        HANDLE r =
            CreateFileW(wp, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                        NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
        assert_true(r != INVALID_HANDLE_VALUE); /* read beside the library: a tail */
        CloseHandle(r);
        if (!MoveFileExW(wp, wq, MOVEFILE_REPLACE_EXISTING))
            fail_msg("open %d: rename of the open file: error %lu", i, GetLastError());
        if (i == 1) assert_true(DeleteFileW(wq)); /* deleted while open */
        assert_int_equal(fclose(out), 0);
        if (i != 1)
            assert_true(MoveFileExW(wq, wp, 0)); /* back, for the next open */
        else
            free(tu_write_file(f->dir, "trace.json", "{}", 2));
    }
    assert_true(DeleteFileW(wp));
    free(wp), free(wq), free(p), free(q);
}

/* $ASSET_SERVER_PKG_PATH naming a folder in letters outside the ANSI code page finds
 * the packages in it, as pkg_path does: the environment is UTF-16 on Windows, and the
 * C library's getenv gives it in the ANSI code page ('?' for each such letter), which
 * the library then read as UTF-8: no package was found ("not mounted"). */
static void test_a_non_ascii_pkg_path_from_the_environment_finds_its_packages(void **state) {
    fx_t *f = *state;
    char *dir = tu_path(f->dir, "\xe6\x97\xa5\xe6\x9c\xac"); /* 日本 */
    free(tu_write_file(dir, "jp/x.txt", "nihon", 5));
    wchar_t *w = wpath(dir);
    assert_int_equal(_wputenv_s(L"ASSET_SERVER_PKG_PATH", w), 0);
    asset_server_config_t cfg = {0};
    asset_server_t *s = asset_server_create(&cfg); /* pkg_path NULL: the environment's */
    _wputenv_s(L"ASSET_SERVER_PKG_PATH", L"");     /* read at create, not later */
    assert_non_null(s);
    asset_handle_t *h = tu_load_wait(s, "pkg://jp/x.txt", ASSET_OK);
    tu_expect_text(h, "nihon");
    asset_handle_release(h);
    asset_server_destroy(s);
    free(w), free(dir);
}

/* Twenty-third review: a path longer than MAX_PATH went to CreateFileW, MoveFileExW,
 * DeleteFileW, GetFileAttributesW and _wfopen as it was: on Windows, in a process that
 * is not long-path aware (the default), each fails ERROR_PATH_NOT_FOUND (wine opens it
 * anyway, so a load cannot show it here). Past MAX_PATH - 12 units the path is given in
 * its \\?\ form, made absolute and normalised first ('/' to '\\', "." and ".." taken
 * out: the \\?\ form takes every character as it is). asset__path_wide is the
 * conversion each of those calls uses. */
static void test_a_path_past_max_path_is_given_to_windows_in_its_long_form(void **state) {
    (void)state;
    char longrel[400] = "";
    for (int i = 0; i < 30; i++) strcat(longrel, "abcdefghi/"); /* 300 bytes */
    strcat(longrel, "x.txt");
    wchar_t wrel[400];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, longrel, -1, wrel, 400) > 0);
    for (wchar_t *c = wrel; *c; c++)
        if (*c == L'/') *c = L'\\';
    char p[600];
    wchar_t want[600], buf[64];
    int err = 0;
    /* short: as it is, in buf */
    wchar_t *w = asset__path_wide("C:/dir/x.txt", buf, 64, &err);
    assert_true(w == buf);
    assert_true(wcscmp(w, L"C:\\dir\\x.txt") == 0);
    /* long: \\?\, its separators '\\' */
    snprintf(p, sizeof p, "C:/%s", longrel);
    swprintf(want, 600, L"\\\\?\\C:\\%ls", wrel);
    w = asset__path_wide(p, buf, 64, &err);
    assert_non_null(w);
    if (wcscmp(w, want) != 0) fail_msg("got %ls", w);
    if (w != buf) asset_free(w);
    /* long, with "." and "..": normalised before the prefix */
    snprintf(p, sizeof p, "C:/up/./down/../../%s", longrel);
    w = asset__path_wide(p, buf, 64, &err);
    assert_non_null(w);
    if (wcscmp(w, want) != 0) fail_msg("got %ls", w);
    if (w != buf) asset_free(w);
    /* a share: \\?\UNC\server\share */
    snprintf(p, sizeof p, "//server/share/%s", longrel);
    swprintf(want, 600, L"\\\\?\\UNC\\server\\share\\%ls", wrel);
    w = asset__path_wide(p, buf, 64, &err);
    assert_non_null(w);
    if (wcscmp(w, want) != 0) fail_msg("got %ls", w);
    if (w != buf) asset_free(w);
}

/* Twenty-fourth review: the MAX_PATH limit holds the full path a name resolves to, but
 * asset__path_wide measured the name as given: a relative name (a trace's path as the
 * caller gave it) short enough itself, under a working directory that makes it longer
 * than MAX_PATH - 12 units in full, went to Win32 as it was and failed there (wine
 * resolves it anyway: the conversion is what can be seen). Such a name is measured in
 * full, and given in its \\?\ form when that is long. */
static void test_a_short_relative_path_long_in_full_is_given_in_its_long_form(void **state) {
    (void)state;
    wchar_t old[MAX_PATH], cwd[MAX_PATH], want[1024], buf[64];
    assert_true(GetCurrentDirectoryW(MAX_PATH, old) > 0);
    char *base = tu_mkdtemp();
    wchar_t wdir[MAX_PATH];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, base, -1, wdir, MAX_PATH) > 0);
    for (wchar_t *c = wdir; *c; c++)
        if (*c == L'/') *c = L'\\';
    while (wcslen(wdir) < 200) { /* a working directory of 200 to 230 units */
        wcscat(wdir, L"\\abcdefghijklmnopqrstuvwxyz");
        assert_true(CreateDirectoryW(wdir, NULL));
    }
    assert_true(SetCurrentDirectoryW(wdir));
    DWORD n = GetCurrentDirectoryW(MAX_PATH, cwd);
    assert_true(n > 0 && n < MAX_PATH);
    const char *rel = "a-relative-name-of-some-sixty-units/trace.json.0123456789.tmp";
    assert_true(strlen(rel) <= 248); /* short itself */
    swprintf(want, 1024,
             L"\\\\?\\%ls\\a-relative-name-of-some-sixty-units\\"
             L"trace.json.0123456789.tmp",
             cwd);
    int err = 0;
    wchar_t *w = asset__path_wide(rel, buf, 64, &err);
    assert_true(SetCurrentDirectoryW(old));
    assert_non_null(w);
    if (wcscmp(w, want) != 0) fail_msg("got %ls", w); /* was the name as it is */
    if (w != buf) asset_free(w);
    /* short in full too: as it is */
    w = asset__path_wide("x/y.txt", buf, 64, &err);
    assert_true(w == buf && wcscmp(w, L"x\\y.txt") == 0);
    tu_rmrf(base);
    free(base);
}

/* Twenty-fourth review: a watched folder past MAX_PATH went to libuv's
 * uv_fs_event_start as it was, whose GetFileAttributesW and CreateFileW fail on Windows
 * for such a path (wine opens it anyway: a watch cannot show it here). libuv 1.44.2
 * converts the name to UTF-16 and passes it on as it is, so the platform hands it the
 * \\?\ form, in UTF-8: asset__watch_path, which src/reload.c's watch start uses. */
static void test_a_watched_folder_past_max_path_goes_to_libuv_in_its_long_form(void **state) {
    (void)state;
    char longrel[400] = "", p[600], want[600];
    for (int i = 0; i < 30; i++) strcat(longrel, "abcdefghi/");
    strcat(longrel, "dir");
    bool oom = true;
    assert_null(asset__watch_path("C:/short/dir", &oom)); /* as it is */
    assert_false(oom);
    snprintf(p, sizeof p, "C:/up/../%s", longrel);
    snprintf(want, sizeof want, "\\\\?\\C:\\%s", longrel);
    for (char *c = want; *c; c++)
        if (*c == '/') *c = '\\';
    char *got = asset__watch_path(p, &oom);
    assert_false(oom);
    assert_non_null(got);
    assert_string_equal(got, want);
    asset_free(got);
    snprintf(p, sizeof p, "//server/share/%s", longrel);
    snprintf(want, sizeof want, "\\\\?\\UNC\\server\\share\\%s", longrel);
    for (char *c = want; *c; c++)
        if (*c == '/') *c = '\\';
    got = asset__watch_path(p, &oom);
    assert_non_null(got);
    assert_string_equal(got, want);
    asset_free(got);
}

/* The same long path, end to end: a trace written there (beside it, renamed over it),
 * seen by asset__path_lkind, removed by asset__remove, and loaded through file_root. */
static void test_a_file_past_max_path_is_written_found_and_removed(void **state) {
    fx_t *f = *state;
    char rel[400] = "";
    for (int i = 0; i < 30; i++) strcat(rel, "abcdefghi/");
    strcat(rel, "seed.txt");
    free(tu_write_file(f->root, rel, "seed", 4));
    char *seed = tu_path(f->root, rel);
    asset_handle_t *h = tu_load_wait(f->s, seed, ASSET_OK);
    tu_expect_text(h, "seed");
    asset_handle_release(h);
    strcpy(strrchr(seed, '/') + 1, "trace.json");
    asset_trace_t *tr = asset_trace_create();
    assert_non_null(tr);
    assert_int_equal(asset_trace_write_chrome_json(tr, seed), ASSET_OK);
    assert_int_equal(asset_trace_write_chrome_json(tr, seed), ASSET_OK); /* over it */
    asset_trace_destroy(tr);
    assert_int_equal(asset__path_lkind(seed), ASSET__KIND_FILE);
    assert_int_equal(asset__remove(seed), 0);
    assert_int_equal(asset__path_lkind(seed), -ENOENT);
    free(seed);
}

/* A reparse point that names no other file (a OneDrive placeholder, a deduplicated
 * file: not a name surrogate) is the file itself to asset__path_lkind, as to the loads:
 * any reparse point was LINK, and a trace written over such a file was written in place
 * (a failed write left it cut short), not beside it and renamed over. Made here with a
 * third-party tag of its own; skipped where the file system (or wine) makes none. */
static void test_a_reparse_point_naming_no_file_is_not_a_link(void **state) {
    fx_t *f = *state;
    char *p = tu_write_file(f->root, "placeholder.json", "{}", 2);
    wchar_t w[MAX_PATH];
    assert_true(MultiByteToWideChar(CP_UTF8, 0, p, -1, w, MAX_PATH) > 0);
    HANDLE h = CreateFileW(w, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    assert_true(h != INVALID_HANDLE_VALUE);
    /* REPARSE_GUID_DATA_BUFFER, spelled out: a tag neither Microsoft's nor a surrogate */
    struct {
        DWORD tag;
        WORD len, reserved;
        GUID guid;
        BYTE data[4];
    } rb = {0x00000123, 4, 0, {0x6a1e3f5c, 0x1d2b, 0x4c3a, {1, 2, 3, 4, 5, 6, 7, 8}}, "abc"};
    DWORD got;
    BOOL ok = DeviceIoControl(h, FSCTL_SET_REPARSE_POINT, &rb, sizeof rb, NULL, 0, &got, NULL);
    DWORD e = GetLastError();
    CloseHandle(h);
    if (!ok || !(GetFileAttributesW(w) & FILE_ATTRIBUTE_REPARSE_POINT)) {
        print_message("  skipped: this file system (or wine) makes no such reparse point "
                      "(error %lu)\n",
                      (unsigned long)e);
        free(p);
        skip();
    }
    assert_int_equal(asset__path_lkind(p), ASSET__KIND_FILE);
    assert_false(asset__path_is_link(p));
    free(p);
}

#define FX(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
int main(void) {
    const struct CMUnitTest tests[] = {
        FX(test_dotdot_out_of_the_root_is_forbidden),
        FX(test_alternate_data_streams_are_forbidden),
        FX(test_device_names_are_forbidden),
        FX(test_superscript_com_and_lpt_names_are_device_names),
        FX(test_unc_and_device_paths_are_forbidden),
        FX(test_drive_relative_path_is_invalid),
        FX(test_drive_paths_in_every_spelling_load),
        FX(test_file_root_is_compared_without_case),
        FX(test_a_file_in_use_without_sharing_is_an_io_error),
        FX(test_escapes_spelled_as_file_uris_are_refused),
        FX(test_escapes_spelled_as_pkg_uris_are_refused),
        FX(test_junction_out_of_the_root_is_forbidden),
        FX(test_a_directory_swapped_mid_walk_is_not_followed_out),
        FX(test_a_name_windows_refuses_fails_alone_in_a_folder),
        FX(test_a_same_size_rewrite_with_its_write_time_restored_is_seen),
        FX(test_a_mapped_file_is_neither_replaced_nor_truncated_until_unmapped),
        FX(test_a_file_read_by_the_library_can_be_renamed_away_but_not_replaced),
        cmocka_unit_test(test_sockets_are_not_inherited),
        cmocka_unit_test(test_a_socket_is_never_inheritable_even_as_it_is_made),
        FX(test_a_file_pending_deletion_is_not_found),
        cmocka_unit_test(test_a_bare_drive_or_unc_file_root_is_refused_at_create),
        FX(test_a_name_that_is_not_utf16_does_not_fail_the_listing),
        FX(test_a_non_ascii_name_loads_as_utf16),
        FX(test_a_name_that_is_not_utf8_is_not_found),
        FX(test_a_trace_written_to_a_non_ascii_name_is_made_as_named),
        FX(test_a_file_the_library_writes_can_be_renamed_or_deleted_while_open),
        FX(test_a_non_ascii_pkg_path_from_the_environment_finds_its_packages),
        cmocka_unit_test(test_a_path_past_max_path_is_given_to_windows_in_its_long_form),
        cmocka_unit_test(test_a_watched_folder_past_max_path_goes_to_libuv_in_its_long_form),
        cmocka_unit_test(test_a_short_relative_path_long_in_full_is_given_in_its_long_form),
        FX(test_a_file_past_max_path_is_written_found_and_removed),
        FX(test_a_reparse_point_naming_no_file_is_not_a_link),
    };
    return TU_RUN_GROUP_TESTS(tests, NULL, NULL);
}
