/* tu_os_win32.c - see tu_os.h; also tu_mkdtemp and tu_rmrf of test_util.h, for the
 * Windows build (run under wine in CI). */
#include "test_util.h"
#include "tu_os.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

/* UTF-8 -> UTF-16, malloc'd; NULL on bad input */
static wchar_t *wide(const char *s) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) return NULL;
    wchar_t *w = malloc((size_t)n * sizeof *w);
    if (w) MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
    return w;
}

int tu_os_mkdir(const char *path) {
    wchar_t *w = wide(path);
    int rc = w && CreateDirectoryW(w, NULL) ? 0 : -1;
    if (rc != 0 && GetLastError() == ERROR_ALREADY_EXISTS) errno = EEXIST;
    free(w);
    return rc;
}

FILE *tu_os_fopen(const char *path, const char *mode) {
    wchar_t *w = wide(path), *m = wide(mode);
    FILE *f = w && m ? _wfopen(w, m) : NULL;
    free(w);
    free(m);
    return f;
}

bool tu_os_any_file_name(void) { return false; }
bool tu_os_windows_paths(void) { return true; }
bool tu_os_under_wine(void) {
    HMODULE ntdll = GetModuleHandleA("ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version");
}

int tu_os_getcwd(char *buf, size_t n) {
    wchar_t w[32768];
    DWORD len = GetCurrentDirectoryW(32768, w);
    if (!len || len >= 32768 || n > INT_MAX) return -1;
    return WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)n, NULL, NULL) > 0 ? 0 : -1;
}

int tu_os_chdir(const char *path) {
    wchar_t *w = wide(path);
    int rc = w && SetCurrentDirectoryW(w) ? 0 : -1;
    free(w);
    return rc;
}

int tu_os_setenv(const char *name, const char *value) { return _putenv_s(name, value) ? -1 : 0; }
/* _putenv_s(name, "") removes the variable */
int tu_os_unsetenv(const char *name) { return _putenv_s(name, "") ? -1 : 0; }
int tu_os_unlink(const char *path) {
    wchar_t *w = wide(path);
    int rc = w && DeleteFileW(w) ? 0 : -1;
    free(w);
    return rc;
}
int tu_os_rename_replace(const char *from, const char *to) {
    wchar_t *wf = wide(from), *wt = wide(to);
    int rc = wf && wt && MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING) ? 0 : -1;
    free(wf);
    free(wt);
    return rc;
}

/* CreateFileW(path) for FILE_WRITE_ATTRIBUTES and more, sharing everything */
static HANDLE open_attributes(const char *path, DWORD access) {
    wchar_t *w = wide(path);
    HANDLE h = w ? CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                               NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL)
                 : INVALID_HANDLE_VALUE;
    free(w);
    return h;
}

int tu_os_shift_mtime(const char *path, long delta_s) {
    HANDLE h = open_attributes(path, FILE_WRITE_ATTRIBUTES | FILE_READ_ATTRIBUTES);
    if (h == INVALID_HANDLE_VALUE) return -1;
    FILETIME mt;
    int rc = -1;
    if (GetFileTime(h, NULL, NULL, &mt)) {
        ULARGE_INTEGER t;
        t.LowPart = mt.dwLowDateTime;
        t.HighPart = mt.dwHighDateTime;
        t.QuadPart += (ULONGLONG)((LONGLONG)delta_s * 10000000LL); /* 100 ns ticks */
        mt.dwLowDateTime = t.LowPart;
        mt.dwHighDateTime = t.HighPart;
        if (SetFileTime(h, NULL, NULL, &mt)) rc = 0;
    }
    CloseHandle(h);
    return rc;
}

int tu_os_touch(const char *path) {
    HANDLE h = open_attributes(path, FILE_WRITE_ATTRIBUTES);
    if (h == INVALID_HANDLE_VALUE) return -1;
    FILETIME now;
    GetSystemTimeAsFileTime(&now);
    int rc = SetFileTime(h, NULL, &now, &now) ? 0 : -1;
    CloseHandle(h);
    return rc;
}

int tu_os_link_tmpfile(const char *dir, const char *path, const char *text) {
    (void)dir;
    (void)path;
    (void)text;
    return -1;
}

/* Symlinks need a privilege (or developer mode) on Windows and wine 8 does not make
 * them; FIFOs and POSIX modes do not exist. The cases that need them are skipped. */
bool tu_os_has_symlinks(void) { return false; }
bool tu_os_has_fifos(void) { return false; }
bool tu_os_has_modes(void) { return false; }
int tu_os_symlink(const char *target, const char *linkpath) {
    (void)target;
    (void)linkpath;
    return -1;
}
int tu_os_mkfifo(const char *path) {
    (void)path;
    return -1;
}
int tu_os_chmod(const char *path, unsigned mode) {
    (void)path;
    (void)mode;
    return -1;
}

int tu_os_system(const char *cmd) {
    /* cmd.exe /c strips the first and last quote of a line that starts with one:
     * wrap the whole line in one more pair */
    size_t n = strlen(cmd) + 3;
    char *line = malloc(n);
    snprintf(line, n, "\"%s\"", cmd);
    fflush(NULL);
    int rc = system(line);
    free(line);
    return rc;
}

char *tu_os_quote(const char *arg) {
    size_t n = strlen(arg) + 3;
    char *q = malloc(n);
    snprintf(q, n, "\"%s\"", arg); /* file names cannot hold '"' on Windows */
    return q;
}

void tu_os_yield(void) { SwitchToThread(); }

static HANDLE g_watchdog;

static VOID CALLBACK watchdog_fired(PVOID arg, BOOLEAN fired) {
    (void)arg;
    (void)fired;
    fprintf(stderr, "tu_os_watchdog: time is up: a hang\n");
    fflush(stderr);
    _exit(124);
}

void tu_os_watchdog(unsigned seconds) {
    if (g_watchdog) DeleteTimerQueueTimer(NULL, g_watchdog, INVALID_HANDLE_VALUE);
    g_watchdog = NULL;
    if (seconds &&
        !CreateTimerQueueTimer(&g_watchdog, NULL, watchdog_fired, NULL, seconds * 1000u, 0, 0))
        abort();
}

int tu_os_open_handles(void) {
    DWORD n = 0;
    return GetProcessHandleCount(GetCurrentProcess(), &n) && n > 0 ? (int)n : -1;
}

const char *tu_os_devnull(void) { return "NUL"; }

/* UTF-16 -> UTF-8, malloc'd; NULL on bad input */
static char *narrow(const wchar_t *w) {
    int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0) return NULL;
    char *s = malloc((size_t)n);
    if (s) WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, s, n, NULL, NULL);
    return s;
}

/* The W APIs throughout: a temporary directory or a name in letters outside the ANSI
 * code page is made and removed as named (the A APIs saw '?' in its place). */
char *tu_mkdtemp(void) {
    wchar_t tmp[MAX_PATH + 1];
    DWORD n = GetTempPathW(MAX_PATH + 1, tmp);
    if (!n || n > MAX_PATH) abort();
    static LONG counter;
    for (int attempt = 0; attempt < 1000; attempt++) {
        wchar_t buf[MAX_PATH + 64];
        swprintf(buf, sizeof buf / sizeof *buf, L"%lsasset_test_%lu_%ld", tmp,
                 (unsigned long)GetCurrentProcessId(), (long)InterlockedIncrement(&counter));
        if (CreateDirectoryW(buf, NULL)) {
            char *s = narrow(buf);
            if (!s) abort();
            for (char *c = s; *c; c++)
                if (*c == '\\') *c = '/';
            return s;
        }
    }
    fprintf(stderr, "tu_mkdtemp: cannot create a directory under %ls\n", tmp);
    abort();
}

static void rmrf_w(const wchar_t *path) {
    size_t n = wcslen(path);
    wchar_t *pattern = malloc((n + 3) * sizeof *pattern);
    if (!pattern) return;
    swprintf(pattern, n + 3, L"%ls\\*", path);
    WIN32_FIND_DATAW d;
    HANDLE f = FindFirstFileW(pattern, &d);
    free(pattern);
    if (f != INVALID_HANDLE_VALUE) {
        do {
            if (!wcscmp(d.cFileName, L".") || !wcscmp(d.cFileName, L"..")) continue;
            size_t m = n + wcslen(d.cFileName) + 2;
            wchar_t *sub = malloc(m * sizeof *sub);
            if (!sub) continue;
            swprintf(sub, m, L"%ls\\%ls", path, d.cFileName);
            if ((d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
                !(d.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT))
                rmrf_w(sub);
            else if (d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                RemoveDirectoryW(sub); /* a junction or directory link: not what it points to */
            else
                DeleteFileW(sub);
            free(sub);
        } while (FindNextFileW(f, &d));
        FindClose(f);
    }
    RemoveDirectoryW(path);
}

void tu_rmrf(const char *path) {
    if (!path) return;
    wchar_t *w = wide(path);
    if (!w) return;
    for (wchar_t *c = w; *c; c++)
        if (*c == L'/') *c = L'\\';
    rmrf_w(w);
    free(w);
}

char *tu_os_short_name(const char *path) {
    wchar_t *w = wide(path), s[32768];
    if (!w) return NULL;
    for (wchar_t *c = w; *c; c++)
        if (*c == L'/') *c = L'\\';
    DWORD n = GetShortPathNameW(w, s, 32768);
    const wchar_t *ls = wcsrchr(s, L'\\'), *lw = wcsrchr(w, L'\\');
    bool same = !n || n >= 32768 || !ls || !lw || !wcscmp(ls, lw);
    free(w);
    if (same) return NULL;
    char name[1024];
    if (WideCharToMultiByte(CP_UTF8, 0, ls + 1, -1, name, (int)sizeof name, NULL, NULL) <= 0)
        return NULL;
    const char *slash = strrchr(path, '/');
    if (!slash) return NULL;
    size_t dl = (size_t)(slash + 1 - path);
    char *out = malloc(dl + strlen(name) + 1);
    if (!out) return NULL;
    memcpy(out, path, dl);
    strcpy(out + dl, name);
    return out;
}

struct tu_os_hold {
    HANDLE h;
};

tu_os_hold_t *tu_os_hold_exclusive(const char *path) {
    wchar_t *w = wide(path);
    HANDLE h = w ? CreateFileW(w, GENERIC_READ | GENERIC_WRITE, 0 /* no sharing */, NULL,
                               OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL)
                 : INVALID_HANDLE_VALUE;
    free(w);
    if (h == INVALID_HANDLE_VALUE) return NULL;
    tu_os_hold_t *x = malloc(sizeof *x);
    if (!x) {
        CloseHandle(h);
        return NULL;
    }
    x->h = h;
    return x;
}

int tu_os_hold_write(tu_os_hold_t *x, const char *text) {
    LARGE_INTEGER zero = {0};
    DWORD n = (DWORD)strlen(text), done = 0;
    if (!SetFilePointerEx(x->h, zero, NULL, FILE_BEGIN) || !WriteFile(x->h, text, n, &done, NULL) ||
        done != n || !SetEndOfFile(x->h))
        return -1;
    return 0;
}

void tu_os_hold_release(tu_os_hold_t *x) {
    if (!x) return;
    CloseHandle(x->h);
    free(x);
}
