/* tu_os_win32.c - see tu_os.h; also tu_mkdtemp and tu_rmrf of test_util.h, for the
 * Windows build (run under wine in CI). */
#include "test_util.h"
#include "tu_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

void tu_os_mkdir(const char *path) { CreateDirectoryA(path, NULL); }

char *tu_mkdtemp(void) {
    char tmp[MAX_PATH];
    DWORD n = GetTempPathA(sizeof tmp, tmp);
    if (!n || n >= sizeof tmp) abort();
    static LONG counter;
    for (int attempt = 0; attempt < 1000; attempt++) {
        char buf[MAX_PATH + 64];
        snprintf(buf, sizeof buf, "%sasset_test_%lu_%ld", tmp, (unsigned long)GetCurrentProcessId(),
                 (long)InterlockedIncrement(&counter));
        for (char *c = buf; *c; c++)
            if (*c == '\\') *c = '/';
        if (CreateDirectoryA(buf, NULL)) return strdup(buf);
    }
    fprintf(stderr, "tu_mkdtemp: cannot create a directory under %s\n", tmp);
    abort();
}

void tu_rmrf(const char *path) {
    if (!path) return;
    char pattern[MAX_PATH * 2];
    snprintf(pattern, sizeof pattern, "%s/*", path);
    WIN32_FIND_DATAA d;
    HANDLE f = FindFirstFileA(pattern, &d);
    if (f != INVALID_HANDLE_VALUE) {
        do {
            if (!strcmp(d.cFileName, ".") || !strcmp(d.cFileName, "..")) continue;
            char sub[MAX_PATH * 2];
            snprintf(sub, sizeof sub, "%s/%s", path, d.cFileName);
            if ((d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
                !(d.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT))
                tu_rmrf(sub);
            else if (d.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                RemoveDirectoryA(sub); /* a junction or directory link: not what it points to */
            else
                DeleteFileA(sub);
        } while (FindNextFileA(f, &d));
        FindClose(f);
    }
    RemoveDirectoryA(path);
}
