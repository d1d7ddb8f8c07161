/* platform/fs_win32.c - platform.h on Windows. Paths are UTF-8 in the library's form
 * ("C:/dir/x") and converted to UTF-16 with '\\' right before each Win32 call.
 * Beneath a root, the walk never goes back to a path string: every component is
 * opened by its name alone relative to the directory handle opened before it
 * (NtCreateFile with OBJECT_ATTRIBUTES.RootDirectory), with FILE_OPEN_REPARSE_POINT,
 * so a symlink or junction is seen instead of followed (-EXDEV); a reparse point that
 * is not a link (not a name surrogate: a cloud placeholder, a deduplicated or
 * WOF-compressed file) is opened again through its filter and read. A directory on the
 * way renamed away and replaced by a link meanwhile is not seen: the walk stays in
 * the directories it opened, as openat does on POSIX. A directory is listed through
 * its handle too. Names Windows treats specially (device names, streams, trailing
 * dots) are refused before any call. */
#include "platform.h"
#include "os.h"

#include "../internal.h" /* asset_alloc */

#include <errno.h>
#include <fcntl.h> /* _O_BINARY */
#include <io.h>    /* _get_osfhandle */
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>
#include <winternl.h> /* NtCreateFile, OBJECT_ATTRIBUTES (ntdll, looked up at run time) */

struct asset__dir {
    HANDLE h;     /* what everything beneath is opened relative to, and listed from */
    char *buf;    /* FILE_ID_BOTH_DIR_INFO records of the listing, NULL before it */
    size_t off;   /* the next record in buf */
    bool started; /* the listing was restarted once (its first call) */
    bool have;    /* buf holds records from off on */
    bool done;
    char name[MAX_PATH * 4];
    /* a root's identity (asset__dir_open: from the look at its attributes it makes anyway),
     * for asset__dir_is_at; known false for a directory opened beneath one */
    bool known;
    DWORD volume, index_high, index_low;
};
/* An open file is its HANDLE, carried in the handle's pointer (an open file's HANDLE
 * is never NULL): no allocation per file read. struct asset__file is never defined. */
static asset__file_t *file_of(HANDLE h) { return (asset__file_t *)h; }
static HANDLE handle_of(const asset__file_t *f) { return (HANDLE)f; }

const char asset__path_list_sep = ';';
bool asset__fs_force_walk = false;
bool asset__fs_coarse_times = false;
void (*asset__fs_walk_hook)(const char *rel, size_t n) = NULL;

/* ---- errors ---- */

static int map_error(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
    case ERROR_INVALID_NAME: return ENOENT;
    case ERROR_DIRECTORY: return ENOTDIR;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD: return EACCES;
    case ERROR_SHARING_VIOLATION:            /* open elsewhere without sharing: for now */
    case ERROR_LOCK_VIOLATION: return EBUSY; /* (asset__errno_transient) */
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
    case ERROR_CANT_RESOLVE_FILENAME:
    case ERROR_CANT_ACCESS_FILE: return ELOOP;
    case ERROR_FILENAME_EXCED_RANGE: return ENAMETOOLONG;
    case ERROR_NO_UNICODE_TRANSLATION: return EILSEQ;
    default: return EIO;
    }
}

/* STATUS_DELETE_PENDING: the file was deleted while open elsewhere (with
 * FILE_SHARE_DELETE) and goes once the last handle closes; Win32 reports it as
 * ERROR_ACCESS_DENIED, but it is gone for every new open: ENOENT, not EACCES. */
#define NT_DELETE_PENDING ((NTSTATUS)0xC0000056L)
typedef NTSTATUS(NTAPI *rtl_get_last_nt_status_fn)(void);
static rtl_get_last_nt_status_fn rtl_get_last_nt_status;
static INIT_ONCE nt_once = INIT_ONCE_STATIC_INIT;
static BOOL CALLBACK nt_resolve(PINIT_ONCE once, PVOID param, PVOID *ctx);

/* The errno of the last Win32 error on this thread, told apart from a delete pending. */
static int last_error(void) {
    DWORD e = GetLastError();
    if (e == ERROR_ACCESS_DENIED) {
        InitOnceExecuteOnce(&nt_once, nt_resolve, NULL, NULL);
        if (rtl_get_last_nt_status && rtl_get_last_nt_status() == NT_DELETE_PENDING) return -ENOENT;
    }
    return -map_error(e);
}

/* A sharing or lock violation: another program holds the file (an editor or exporter
 * that opened it without sharing while it saves) and lets go of it. */
bool asset__errno_transient(int err) { return err == EBUSY; }

/* ---- ntdll: NtCreateFile, relative to a handle ---- */

typedef NTSTATUS(NTAPI *nt_create_file_fn)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES,
                                           PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG, ULONG, ULONG,
                                           ULONG, PVOID, ULONG);
typedef ULONG(NTAPI *nt_status_to_dos_fn)(NTSTATUS);
static nt_create_file_fn nt_create_file;
static nt_status_to_dos_fn nt_status_to_dos;

/* ntdll is in every process: looked up, not linked (no import library to add) */
static BOOL CALLBACK nt_resolve(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    (void)once, (void)param, (void)ctx;
    HMODULE m = GetModuleHandleW(L"ntdll.dll");
    if (m) {
        nt_create_file = (nt_create_file_fn)(void (*)(void))GetProcAddress(m, "NtCreateFile");
        nt_status_to_dos =
            (nt_status_to_dos_fn)(void (*)(void))GetProcAddress(m, "RtlNtStatusToDosError");
        rtl_get_last_nt_status =
            (rtl_get_last_nt_status_fn)(void (*)(void))GetProcAddress(m, "RtlGetLastNtStatus");
    }
    return TRUE;
}

/* Opens name (one component, UTF-16, no separator; L"" is dir itself, again) relative
 * to dir, sharing everything, following no reparse point it names unless follow (then
 * its file system filter serves it, as for any open): 0 and *out, or
 * a negative errno (NTSTATUS -> Win32 error -> errno, as for CreateFileW). */
static int open_rel_as(HANDLE dir, const wchar_t *name, ACCESS_MASK access, bool follow,
                       HANDLE *out) {
    *out = INVALID_HANDLE_VALUE;
    InitOnceExecuteOnce(&nt_once, nt_resolve, NULL, NULL);
    if (!nt_create_file || !nt_status_to_dos) return -ENOSYS;
    size_t n = wcslen(name) * sizeof(wchar_t);
    if (n > 0xfffe) return -ENAMETOOLONG;
    UNICODE_STRING us;
    us.Length = us.MaximumLength = (USHORT)n;
    us.Buffer = (PWSTR)name;
    OBJECT_ATTRIBUTES oa;
    InitializeObjectAttributes(&oa, &us, OBJ_CASE_INSENSITIVE, dir, NULL);
    IO_STATUS_BLOCK io;
    HANDLE h = NULL;
    NTSTATUS s = nt_create_file(
        &h, access | SYNCHRONIZE, &oa, &io, NULL, 0,
        FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, FILE_OPEN,
        (follow ? 0 : FILE_OPEN_REPARSE_POINT) | FILE_SYNCHRONOUS_IO_NONALERT, NULL, 0);
    if (s == NT_DELETE_PENDING) return -ENOENT;
    if (s < 0) return -map_error(nt_status_to_dos(s));
    *out = h;
    return 0;
}

static int open_rel(HANDLE dir, const wchar_t *name, ACCESS_MASK access, HANDLE *out) {
    return open_rel_as(dir, name, access, false, out);
}

/* ---- path syntax ---- */

static bool has_drive(const char *p) {
    return asset__ascii_alpha((unsigned char)p[0]) && p[1] == ':';
}

size_t asset__path_root_len(const char *p) { return has_drive(p) && p[2] == '/' ? 3 : 0; }

bool asset__path_prefix_equal(const char *path, const char *prefix, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char a = (unsigned char)path[i], b = (unsigned char)prefix[i];
        if (a >= 'A' && a <= 'Z') a = (unsigned char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z') b = (unsigned char)(b - 'A' + 'a');
        if (a != b) return false;
        if (!a) return true;
    }
    return true;
}

const char *asset__path_prepare(char *p, bool from_uri, asset_status_t *st) {
    if (from_uri && p[0] == '/' && has_drive(p + 1)) /* file:///C:/x */
        memmove(p, p + 1, strlen(p));
    for (char *c = p; *c; c++)
        if (*c == '\\') *c = '/';
    if (p[0] == '/' && p[1] == '/') {
        *st = ASSET_E_FORBIDDEN;
        return "UNC and device paths (\\\\server\\share, \\\\?\\, \\\\.\\) are not allowed";
    }
    if (has_drive(p)) {
        if (p[2] != '/') {
            *st = ASSET_E_INVALID;
            return "drive-relative path (C:x): write C:/x";
        }
        p[0] = (char)asset__ascii_upper((unsigned char)p[0]);
    }
    return NULL;
}

/* Bytes of the UTF-8 form of the code point at w (one or two UTF-16 units: *units). */
static int utf8_len_at(const wchar_t *w, int *units) {
    unsigned c = (unsigned)w[0];
    *units = 1;
    if (c >= 0xD800 && c <= 0xDBFF && w[1] >= 0xDC00 && w[1] <= 0xDFFF) {
        *units = 2;
        return 4;
    }
    return c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
}

/* Every letter's case, as NTFS (its upcase table) and wine compare names: a watch of
 * "\u00e9t\u00e9.txt" matches events that name "\u00c9t\u00c9.txt" (a case-only
 * rename; ASCII alone was folded, and a file renamed so was never seen to change
 * again: a review). A letter becomes its capital by the invariant locale, a letter at a
 * time, or that capital's small letter where it is shorter in UTF-8: the capital of
 * "\u0250" (2 bytes) is "\u2c6f" (3), and both fold to "\u0250" (the letter was kept
 * as it was, and the two spellings of one file did not meet: twenty-third review). The
 * name is folded in place: a letter whose form would be longer than itself is kept as
 * it is (none known). A name that is not UTF-8, or longer than a component can be, is
 * folded in ASCII alone. ASCII is folded without a Win32 call. */
void asset__path_fold_name(char *name) {
    bool ascii = true;
    for (char *c = name; *c; c++) {
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
        ascii = ascii && (unsigned char)*c < 0x80;
    }
    if (ascii) return;
    wchar_t w[512], up[512], low[512];
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1, w, 512);
    if (n <= 1 ||
        LCMapStringEx(LOCALE_NAME_INVARIANT, LCMAP_UPPERCASE, w, n, up, 512, NULL, NULL, 0) != n ||
        LCMapStringEx(LOCALE_NAME_INVARIANT, LCMAP_LOWERCASE, up, n, low, 512, NULL, NULL, 0) != n)
        return;
    char *out = name;
    for (int i = 0; i < n - 1;) {
        int wu, uu, lu, wl = utf8_len_at(w + i, &wu), ul = utf8_len_at(up + i, &uu),
                        ll = utf8_len_at(low + i, &lu);
        const wchar_t *from = w + i; /* the letter itself, unless: */
        int len = wl;
        if (uu == wu && lu == uu && ll < ul && ll <= wl) /* the capital's small letter */
            from = low + i, len = ll;
        else if (uu == wu && ul <= wl) /* the capital */
            from = up + i, len = ul;
        out += WideCharToMultiByte(CP_UTF8, 0, from, wu, out, len, NULL, NULL);
        i += wu;
    }
    *out = 0;
}

static bool name_is(const char *name, size_t n, const char *dev) {
    size_t dl = strlen(dev);
    if (n != dl) return false;
    for (size_t i = 0; i < n; i++)
        if (asset__ascii_upper((unsigned char)name[i]) != dev[i]) return false;
    return true;
}

const bool asset__path_components_checked = true;

const char *asset__path_component_refused(const char *name, size_t n) {
    if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.')) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == ':') return "':' in a file name (an NTFS alternate data stream)";
        if (c < 0x20 || strchr("<>\"|?*", c)) return "a character Windows forbids in file names";
    }
    if (n && (name[n - 1] == '.' || name[n - 1] == ' '))
        return "a file name ending in a dot or space (Windows would open another file)";
    /* the device names, alone or with any extension: "nul.txt" is NUL too */
    size_t base = 0;
    while (base < n && name[base] != '.') base++;
    while (base && name[base - 1] == ' ') base--;
    static const char *const devs[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"};
    for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
        if (name_is(name, base, devs[i])) return "a Windows device name (CON, NUL, COM1...)";
    /* COM# and LPT#: # a digit, or a superscript 1, 2 or 3 (U+00B9, U+00B2, U+00B3: UTF-8
     * C2 B9, C2 B2, C2 B3), which Windows takes as the same digits ("COM\u00b9" is COM1) */
    const unsigned char *d = (const unsigned char *)name + 3;
    bool digit = base == 4   ? d[0] >= '0' && d[0] <= '9'
                 : base == 5 ? d[0] == 0xC2 && (d[1] == 0xB9 || d[1] == 0xB2 || d[1] == 0xB3)
                             : false;
    if (digit && (name_is(name, 3, "COM") || name_is(name, 3, "LPT")))
        return "a Windows device name (CON, NUL, COM1...)";
    return NULL;
}

/* UTF-8 (library form) -> UTF-16 with '\\' separators, NULL with *err set: into buf
 * (cap wide characters) when it fits, else a new block (the caller frees what is not
 * buf). */
static wchar_t *to_wide_plain(const char *s, wchar_t *buf, size_t cap, int *err) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) {
        *err = -EILSEQ;
        return NULL;
    }
    wchar_t *w = (size_t)n <= cap ? buf : asset_alloc((size_t)n * sizeof *w);
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
    for (wchar_t *c = w; *c; c++)
        if (*c == L'/') *c = L'\\';
    return w;
}

/* Past this many UTF-16 units a path goes to Win32 in its \\?\ form: a process that is
 * not long-path aware (the default) is held to MAX_PATH by every call that takes a
 * name, and to MAX_PATH - 12 by CreateDirectoryW (room for an 8.3 name). */
#define LONG_PATH (MAX_PATH - 12)

wchar_t *asset__path_wide(const char *path, wchar_t *buf, size_t cap, int *err) {
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (n > 0 && n - 1 <= LONG_PATH) {
        wchar_t *w = to_wide_plain(path, buf, cap, err);
        /* MAX_PATH holds the full path: a relative name (the caller's, a trace's path;
         * the library's own are absolute) is measured as the working directory makes
         * it (twenty-fourth review: it went as it was, however long in full) */
        bool absolute =
            w && ((w[0] == L'\\' && w[1] == L'\\') || (w[0] && w[1] == L':' && w[2] == L'\\'));
        DWORD m = !w || absolute ? 0 : GetFullPathNameW(w, 0, NULL, NULL); /* with its 0 */
        if (!m || m - 1 <= LONG_PATH) return w;
        if (w != buf) asset_free(w);
    }
    wchar_t *w = to_wide_plain(path, NULL, 0, err); /* not valid UTF-8 too */
    if (!w) return NULL;
    if (w[0] == L'\\' && w[1] == L'\\' && (w[2] == L'?' || w[2] == L'.') && w[3] == L'\\')
        return w; /* a device path already: taken as it is */
    /* the \\?\ form is taken as it is, so the path is made what Win32 would have made
     * of it first: absolute, "." and ".." taken out, '/' already '\\' */
    DWORD m = GetFullPathNameW(w, 0, NULL, NULL); /* with its 0 */
    if (!m) {
        *err = last_error();
        asset_free(w);
        return NULL;
    }
    size_t need = (size_t)m + 6; /* "\\?\UNC" before "\\server...", less its first '\\' */
    wchar_t *out = need <= cap ? buf : asset_alloc(need * sizeof *out), *full = NULL;
    DWORD got = out ? GetFullPathNameW(w, m, full = out + 6, NULL) : 0;
    asset_free(w);
    if (!out || !got || got >= m) {
        if (out != buf) asset_free(out);
        *err = out ? -ENAMETOOLONG : -ENOMEM;
        return NULL;
    }
    if (full[0] == L'\\' && full[1] == L'\\') {
        if (full[2] == L'?' || full[2] == L'.') { /* a device path */
            memmove(out, full, ((size_t)got + 1) * sizeof *out);
        } else { /* \\server\share\x: \\?\UNC\server\share\x, its first '\\' the 'C' */
            memcpy(out, L"\\\\?\\UNC", 7 * sizeof *out);
        }
    } else { /* C:\x: \\?\C:\x */
        memmove(out + 4, full, ((size_t)got + 1) * sizeof *out);
        memcpy(out, L"\\\\?\\", 4 * sizeof *out);
    }
    return out;
}

static wchar_t *to_wide_in(const char *s, wchar_t *buf, size_t cap, int *err) {
    return asset__path_wide(s, buf, cap, err);
}

/* the same, always a new block: asset_free it */
static wchar_t *to_wide(const char *s, int *err) { return to_wide_in(s, NULL, 0, err); }

/* UTF-16 -> UTF-8 into buf; false if it does not fit or is not valid. */
static bool to_utf8(const wchar_t *w, char *buf, size_t n) {
    int got = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, buf, (int)n, NULL, NULL);
    return got > 0;
}

char *asset__path_stored_name(const char *path, bool *oom) {
    *oom = false;
    /* FindFirstFileW reads the name as a pattern: one with a wildcard is no file's */
    const char *slash = strrchr(path, '/');
    if (!slash || strpbrk(slash, "*?<>\"")) return NULL;
    /* an ASCII name without '~' (which every generated 8.3 name has) is stored as given
     * but for the case of ASCII letters, which asset__path_fold_name folds: no look */
    bool plain = true;
    for (const char *c = slash + 1; *c && plain; c++) plain = (unsigned char)*c < 0x80 && *c != '~';
    if (plain) return NULL;
    int err = 0;
    wchar_t *w = to_wide(path, &err);
    if (!w) {
        *oom = err == -ENOMEM;
        return NULL;
    }
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW(w, &fd); /* its entry, matched by either of its names */
    asset_free(w);
    if (h == INVALID_HANDLE_VALUE) return NULL;
    FindClose(h);
    char name[MAX_PATH * 4];
    if (!to_utf8(fd.cFileName, name, sizeof name)) return NULL;
    char *out = asset__strdup(name);
    *oom = !out;
    return out;
}

char *asset__path_drive_full(const char *path, bool *oom) {
    *oom = false;
    if (!has_drive(path) || path[2] == '/' || path[2] == '\\') return NULL;
    int err = 0;
    wchar_t *w = to_wide_plain(path, NULL, 0, &err), full[32768]; /* "C:x": not \\?\ */
    if (!w) {
        *oom = err == -ENOMEM;
        return NULL;
    }
    DWORD n = GetFullPathNameW(w, 32768, full, NULL); /* that drive's working directory */
    asset_free(w);
    char *out = n && n < 32768 ? asset_alloc((size_t)n * 4 + 1) : NULL;
    if (!out) {
        *oom = n && n < 32768;
        return NULL;
    }
    asset_status_t st;
    if (!to_utf8(full, out, (size_t)n * 4 + 1) || asset__path_prepare(out, false, &st)) {
        asset_free(out);
        return NULL;
    }
    size_t l = strlen(out); /* "C:/x/" -> "C:/x"; "C:/" stays */
    while (l > 3 && out[l - 1] == '/') out[--l] = 0;
    return out;
}

/* libuv's watcher reports a full ReadDirectoryChangesW buffer as an event naming no
 * file */
unsigned asset__watch_queue_max(void) { return 0; }

bool asset__getcwd(char *buf, size_t n) {
    wchar_t w[32768];
    DWORD len = GetCurrentDirectoryW(32768, w);
    if (!len || len >= 32768 || !to_utf8(w, buf, n)) return false;
    asset_status_t st;
    return asset__path_prepare(buf, false, &st) == NULL;
}

/* Every file the library writes or reads as a FILE (a trace, its file beside it) is
 * opened sharing reading, writing and deleting, as the files it loads are (open_w): the
 * C library's _wfopen and _wopen share no FILE_SHARE_DELETE, so while a trace was being
 * written another program could not rename or delete it (a log rotation, a viewer
 * replacing it) and failed with a sharing violation (thirty-third review).
 * access / disposition: CreateFileW's; crt: the _open_osfhandle flags; mode: _fdopen's.
 * _O_CREAT in crt: a file made here is removed again when the FILE cannot be had.
 * NULL with errno set. */
static FILE *open_shared(const char *path, DWORD access, DWORD disposition, int crt,
                         const char *mode) {
    int err = 0;
    wchar_t *w = to_wide(path, &err);
    if (!w) {
        errno = err ? -err : EINVAL;
        return NULL;
    }
    HANDLE h = CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                           disposition, FILE_ATTRIBUTE_NORMAL, NULL);
    FILE *f = NULL;
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        /* EEXIST as _wopen's _O_EXCL; a sharing violation EACCES as the C library's */
        err = e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS         ? EEXIST
              : e == ERROR_SHARING_VIOLATION || e == ERROR_LOCK_VIOLATION ? EACCES
                                                                          : -last_error();
    } else {
        int fd = _open_osfhandle((intptr_t)h, crt & ~_O_CREAT);
        f = fd >= 0 ? _fdopen(fd, mode) : NULL;
        err = f ? 0 : errno ? errno : EMFILE;
        if (fd >= 0 && !f) _close(fd); /* closes h too */
        if (fd < 0) CloseHandle(h);
        if (!f && (crt & _O_CREAT)) DeleteFileW(w);
    }
    asset_free(w);
    if (!f) errno = err; /* the caller reads it: kept across the close and the free */
    return f;
}

FILE *asset__fopen(const char *path, const char *mode) {
    /* "r", "w" or "a", then "b" and "+" in any order (fopen's modes) */
    bool plus = strchr(mode, '+') != NULL, bin = strchr(mode, 'b') != NULL;
    DWORD access, disposition;
    int crt = bin ? _O_BINARY : _O_TEXT;
    switch (mode[0]) {
    case 'r':
        access = GENERIC_READ | (plus ? GENERIC_WRITE : 0);
        disposition = OPEN_EXISTING;
        crt |= plus ? 0 : _O_RDONLY;
        break;
    case 'w':
        access = GENERIC_WRITE | (plus ? GENERIC_READ : 0);
        disposition = CREATE_ALWAYS;
        break;
    case 'a':
        access = FILE_APPEND_DATA | (plus ? GENERIC_READ : 0);
        disposition = OPEN_ALWAYS;
        crt |= _O_APPEND;
        break;
    default: errno = EINVAL; return NULL;
    }
    return open_shared(path, access, disposition, crt, mode);
}

FILE *asset__fopen_existing(const char *path) {
    return open_shared(path, GENERIC_WRITE, TRUNCATE_EXISTING, _O_BINARY, "wb");
}

FILE *asset__fopen_new(const char *path, const char *like) {
    (void)like; /* no POSIX permission bits: the new file's ACL is inherited */
    return open_shared(path, GENERIC_WRITE, CREATE_NEW, _O_BINARY | _O_CREAT, "wb");
}

/* errno for a failed MoveFileExW / DeleteFileW */
static int errno_of_move(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND: return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION: return EACCES;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL: return ENOSPC;
    default: return EIO;
    }
}

int asset__os_rename_over(const char *from, const char *to) {
    int err = 0;
    wchar_t *wf = to_wide(from, &err), *wt = wf ? to_wide(to, &err) : NULL;
    if (!wf || !wt)
        err = err ? -err : EINVAL;
    else if (!MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        err = errno_of_move(GetLastError());
    asset_free(wf);
    asset_free(wt);
    return err;
}

int asset__remove(const char *path) {
    /* a name that fits converted on the stack: the remove that cleans up after a failed
     * write (out of memory at the rename, say) must not fail for want of memory too */
    int err = 0;
    wchar_t stack[MAX_PATH], *w = to_wide_in(path, stack, MAX_PATH, &err);
    if (!w) {
        errno = err ? -err : EINVAL;
        return -1;
    }
    int rc = DeleteFileW(w) ? 0 : -1;
    if (rc) err = errno_of_move(GetLastError());
    if (w != stack) asset_free(w);
    if (rc) errno = err;
    return rc;
}

int asset__os_file_sync(FILE *f) {
    HANDLE h = (HANDLE)_get_osfhandle(_fileno(f));
    if (h == INVALID_HANDLE_VALUE) return EBADF;
    if (GetFileType(h) != FILE_TYPE_DISK) return 0; /* a pipe's flush waits for its reader */
    return FlushFileBuffers(h) ? 0 : errno_of_move(GetLastError());
}

char *asset__watch_path(const char *dir, bool *oom) {
    *oom = false;
    int err = 0;
    wchar_t *w = asset__path_wide(dir, NULL, 0, &err);
    if (!w) {
        *oom = err == -ENOMEM; /* any other failure: libuv meets it with the path as is */
        return NULL;
    }
    char *out = NULL;
    if (w[0] == L'\\' && w[1] == L'\\' && w[2] == L'?' && w[3] == L'\\') {
        int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, NULL, 0, NULL, NULL);
        out = n > 0 ? asset_alloc((size_t)n) : NULL;
        if (out) WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, -1, out, n, NULL, NULL);
        *oom = n > 0 && !out;
    }
    asset_free(w);
    return out;
}

/* nothing to do: asset__os_rename_over's MOVEFILE_WRITE_THROUGH returns once the rename
 * is on the disk, and Win32 opens no directory for FlushFileBuffers */
const bool asset__os_syncs_dirs = false;

int asset__os_dir_sync(const char *dir) {
    (void)dir;
    return 0;
}

static bool wide_is_link(const wchar_t *w);

int asset__path_lkind(const char *path) {
    int err = 0;
    wchar_t *w = to_wide(path, &err);
    if (!w) return err ? err : -EINVAL;
    DWORD a = GetFileAttributesW(w);
    DWORD e = a == INVALID_FILE_ATTRIBUTES ? GetLastError() : 0;
    /* a reparse point that names no other file (a OneDrive placeholder, a deduplicated
     * file) is the file itself: any was taken as a link, and a trace saved over such a
     * file was written in place, not beside it and renamed over (thirty-fifth review) */
    bool link =
        a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_REPARSE_POINT) && wide_is_link(w);
    asset_free(w);
    if (a == INVALID_FILE_ATTRIBUTES) return -errno_of_move(e);
    return link                             ? ASSET__KIND_LINK
           : (a & FILE_ATTRIBUTE_DIRECTORY) ? ASSET__KIND_DIR
           : (a & FILE_ATTRIBUTE_DEVICE)    ? ASSET__KIND_OTHER
                                            : ASSET__KIND_FILE;
}

char *asset__getenv_dup(const char *name, bool *oom) {
    *oom = false;
    wchar_t wn[64];
    if (!MultiByteToWideChar(CP_UTF8, 0, name, -1, wn, 64)) return NULL;
    DWORD n = GetEnvironmentVariableW(wn, NULL, 0); /* with its 0; 0: not set */
    wchar_t *w = n ? asset_alloc((size_t)n * sizeof *w) : NULL;
    if (!w) {
        *oom = n != 0;
        return NULL;
    }
    DWORD got = GetEnvironmentVariableW(wn, w, n);
    char *out = NULL;
    int len = got && got < n ? WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL) : 0;
    if (len > 1 && !(out = asset_alloc((size_t)len)))
        *oom = true;
    else if (out)
        WideCharToMultiByte(CP_UTF8, 0, w, -1, out, len, NULL, NULL);
    asset_free(w);
    return out;
}

/* ---- opening ---- */

static int new_dir(HANDLE h, asset__dir_t **out) {
    asset__dir_t *d = asset_alloc(sizeof *d);
    if (!d) {
        CloseHandle(h);
        return -ENOMEM;
    }
    memset(d, 0, sizeof *d);
    d->h = h;
    *out = d;
    return 0;
}

static int new_file(HANDLE h, asset__file_t **out) {
    *out = file_of(h);
    return 0;
}

/* Opens w; link: do not follow a final reparse point. */
static HANDLE open_w(const wchar_t *w, bool read, bool link, bool share_delete) {
    DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | (share_delete ? FILE_SHARE_DELETE : 0);
    DWORD flags = FILE_FLAG_BACKUP_SEMANTICS | (link ? FILE_FLAG_OPEN_REPARSE_POINT : 0);
    return CreateFileW(w, read ? GENERIC_READ : FILE_READ_ATTRIBUTES, share, NULL, OPEN_EXISTING,
                       flags, NULL);
}

static DWORD attributes(HANDLE h) {
    BY_HANDLE_FILE_INFORMATION info;
    return GetFileInformationByHandle(h, &info) ? info.dwFileAttributes : INVALID_FILE_ATTRIBUTES;
}

/* A reparse point that names another file (a symlink, a junction, a mount point: a
 * name surrogate, IsReparseTagNameSurrogate) is a link. The others are the file itself
 * stored another way (OneDrive and other cloud placeholders, deduplicated and
 * WOF-compressed files, ...): not links. */
static bool is_link(DWORD attrs, DWORD tag) {
    return (attrs & FILE_ATTRIBUTE_REPARSE_POINT) && IsReparseTagNameSurrogate(tag);
}

/* h's attributes and, for a reparse point, its tag (a symlink's where the file system
 * does not tell it: taken as a link) */
static DWORD attributes_tag(HANDLE h, DWORD *tag) {
    FILE_ATTRIBUTE_TAG_INFO t;
    if (GetFileInformationByHandleEx(h, FileAttributeTagInfo, &t, sizeof t)) {
        *tag = t.ReparseTag;
        return t.FileAttributes;
    }
    *tag = IO_REPARSE_TAG_SYMLINK;
    return attributes(h);
}

/* a and b are one file (volume and file index) */
static bool same_file(HANDLE a, HANDLE b) {
    BY_HANDLE_FILE_INFORMATION x, y;
    return GetFileInformationByHandle(a, &x) && GetFileInformationByHandle(b, &y) &&
           x.dwVolumeSerialNumber == y.dwVolumeSerialNumber &&
           x.nFileIndexHigh == y.nFileIndexHigh && x.nFileIndexLow == y.nFileIndexLow;
}

/* what a directory handle is opened with: listed, and opened relative to */
#define DIR_ACCESS (FILE_LIST_DIRECTORY | FILE_TRAVERSE | FILE_READ_ATTRIBUTES | SYNCHRONIZE)

/* Opens what path (library form, absolute) names, links followed, with access, sharing
 * everything (a rename or delete of it elsewhere is not refused), into *h; *info: what
 * GetFileInformationByHandle says of it (-ENOTDIR when it says nothing, or names no
 * directory and dir). */
static int open_path_info(const char *path, DWORD access, bool dir, HANDLE *h,
                          BY_HANDLE_FILE_INFORMATION *info) {
    int err = 0;
    wchar_t *w = to_wide(path, &err);
    if (!w) return err;
    wchar_t full[32768];
    DWORD n = GetFullPathNameW(w, 32768, full, NULL);
    asset_free(w);
    if (!n || n >= 32768) return -ENAMETOOLONG;
    while (n > 3 && full[n - 1] == L'\\') full[--n] = 0;
    *h = CreateFileW(full, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                     OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (*h == INVALID_HANDLE_VALUE) return last_error();
    if (!GetFileInformationByHandle(*h, info) ||
        (dir && !(info->dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))) {
        CloseHandle(*h);
        return -ENOTDIR;
    }
    return 0;
}

int asset__dir_open(const char *path, asset__dir_t **out) {
    *out = NULL;
    HANDLE h;
    BY_HANDLE_FILE_INFORMATION info;
    int err = open_path_info(path, DIR_ACCESS, true, &h, &info);
    if (err || (err = new_dir(h, out))) return err;
    (*out)->known = true;
    (*out)->volume = info.dwVolumeSerialNumber;
    (*out)->index_high = info.nFileIndexHigh;
    (*out)->index_low = info.nFileIndexLow;
    return 0;
}

#define MAX_COMPONENTS 128

/* Opens rel beneath root, one component at a time, each relative to the handle of the
 * one before (the root's first), refusing reparse points. want_dir: the last component
 * must be a directory (then *dir_out), else a file read handle. */
static int open_beneath(asset__dir_t *root, const char *rel, bool want_dir, asset__dir_t **dir_out,
                        asset__file_t **file_out) {
    HANDLE held[MAX_COMPONENTS];
    size_t nheld = 0;
    int rc = 0;
    HANDLE parent = root->h;
    const char *p = rel;
    for (;;) {
        size_t n = strcspn(p, "/");
        bool last = p[n] == 0;
        wchar_t comp[1024];
        comp[0] = 0;
        if (!*rel) { /* the root itself: its handle opened again */
            n = 0;
            last = true;
        } else {
            if (n == 0 || n >= sizeof comp / sizeof *comp) {
                rc = n ? -ENAMETOOLONG : -ENOENT;
                break;
            }
            if ((n == 2 && p[0] == '.' && p[1] == '.') || (n == 1 && p[0] == '.') ||
                asset__path_component_refused(p, n)) {
                rc = -EXDEV; /* the URI parser says why; this is the last line */
                break;
            }
            int got = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, p, (int)n, comp,
                                          (int)(sizeof comp / sizeof *comp) - 1);
            if (got <= 0) {
                rc = GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EILSEQ;
                break;
            }
            comp[got] = 0;
        }
        bool file = last && !want_dir;
        ACCESS_MASK access = file   ? GENERIC_READ
                             : last ? DIR_ACCESS
                                    : FILE_TRAVERSE | FILE_READ_ATTRIBUTES;
        HANDLE h;
        rc = open_rel(parent, comp, access, &h);
        if (rc) break;
        DWORD tag = 0, a = attributes_tag(h, &tag);
        if (a == INVALID_FILE_ATTRIBUTES) {
            rc = last_error();
            CloseHandle(h);
            break;
        }
        if (is_link(a, tag) && *rel) { /* symlink, junction, mount point */
            CloseHandle(h);
            rc = -EXDEV;
            break;
        }
        if ((a & FILE_ATTRIBUTE_REPARSE_POINT) && *rel) {
            /* a placeholder, deduplicated or compressed file (or folder): opened again
             * through its filter (opened as the reparse point itself, its data may not
             * read), kept only if it is the same file (not a link swapped in meanwhile) */
            HANDLE again;
            rc = open_rel_as(parent, comp, access, true, &again);
            if (!rc && !same_file(h, again)) {
                CloseHandle(again);
                rc = -EXDEV;
            }
            CloseHandle(h);
            if (rc) break;
            h = again;
        }
        if (!last) {
            if (!(a & FILE_ATTRIBUTE_DIRECTORY)) {
                CloseHandle(h);
                rc = -ENOTDIR;
                break;
            }
            if (nheld == MAX_COMPONENTS) {
                CloseHandle(h);
                rc = -ENAMETOOLONG;
                break;
            }
            held[nheld++] = parent = h;
            if (asset__fs_walk_hook) asset__fs_walk_hook(rel, (size_t)(p + n - rel));
            p += n + 1;
            continue;
        }
        if (want_dir) {
            if (!(a & FILE_ATTRIBUTE_DIRECTORY)) {
                CloseHandle(h);
                rc = -ENOTDIR;
                break;
            }
            rc = new_dir(h, dir_out);
        } else {
            rc = new_file(h, file_out);
        }
        break;
    }
    while (nheld) CloseHandle(held[--nheld]);
    return rc;
}

int asset__dir_open_beneath(asset__dir_t *root, const char *rel, asset__dir_t **out) {
    *out = NULL;
    return open_beneath(root, rel, true, out, NULL);
}

int asset__file_open_beneath(asset__dir_t *root, const char *rel, asset__file_t **out) {
    *out = NULL;
    return open_beneath(root, rel, false, NULL, out);
}

int asset__file_open(const char *path, asset__file_t **out) {
    *out = NULL;
    int err = 0;
    wchar_t stack[MAX_PATH], *w = to_wide_in(path, stack, MAX_PATH, &err);
    if (!w) return err;
    HANDLE h = open_w(w, true, false, true);
    err = h == INVALID_HANDLE_VALUE ? last_error() : 0; /* before asset_free */
    if (w != stack) asset_free(w);
    return err ? err : new_file(h, out);
}

bool asset__dir_is_at(asset__dir_t *d, const char *path, bool watching) {
    /* not watching, not compared: an open of the path per load costs too much here */
    if (!watching || !d->known) return true;
    HANDLE h;
    BY_HANDLE_FILE_INFORMATION info;
    /* whatever is there: a file made at the path is another thing, as POSIX's stat says;
     * nothing there (renamed away or deleted, none made anew) is not d either, as POSIX's
     * (a delete pending is ENOENT); not looked up otherwise: d */
    int e = open_path_info(path, FILE_READ_ATTRIBUTES, false, &h, &info);
    if (e) return e != -ENOENT && e != -ENOTDIR;
    CloseHandle(h);
    return info.dwVolumeSerialNumber == d->volume && info.nFileIndexHigh == d->index_high &&
           info.nFileIndexLow == d->index_low;
}

/* whether w itself (not followed) is a link: a reparse point naming another file */
static bool wide_is_link(const wchar_t *w) {
    HANDLE h = open_w(w, false, true, true);
    DWORD tag = IO_REPARSE_TAG_SYMLINK, a; /* not opened: any reparse point is a link */
    if (h == INVALID_HANDLE_VALUE) {
        a = GetFileAttributesW(w);
    } else {
        a = attributes_tag(h, &tag);
        CloseHandle(h);
    }
    return a != INVALID_FILE_ATTRIBUTES && is_link(a, tag);
}

bool asset__path_is_link(const char *path) {
    int err = 0;
    wchar_t *w = to_wide(path, &err);
    if (!w) return false;
    bool link = wide_is_link(w);
    asset_free(w);
    return link;
}

/* ---- files ---- */

static void fill_stat(const BY_HANDLE_FILE_INFORMATION *i, DWORD type, DWORD tag,
                      asset__fstat_t *st) {
    DWORD a = i->dwFileAttributes;
    st->kind = is_link(a, tag)                  ? ASSET__KIND_LINK
               : (a & FILE_ATTRIBUTE_DIRECTORY) ? ASSET__KIND_DIR
               : type == FILE_TYPE_DISK         ? ASSET__KIND_FILE
                                                : ASSET__KIND_OTHER;
    st->size = ((uint64_t)i->nFileSizeHigh << 32) | i->nFileSizeLow;
    uint64_t t =
        ((uint64_t)i->ftLastWriteTime.dwHighDateTime << 32) | i->ftLastWriteTime.dwLowDateTime;
    if (asset__fs_coarse_times) t -= t % 20000000u; /* FAT's 2 s steps (test hook) */
    /* last-write time (100 ns ticks), size, and the file's identity on its volume */
    st->vraw[0] = t;
    st->vraw[1] = st->size;
    st->vraw[2] = i->dwVolumeSerialNumber;
    st->vraw[3] = ((uint64_t)i->nFileIndexHigh << 32) | i->nFileIndexLow;
    st->no_storage = false; /* no pseudo-files whose size is a guess */
}

/* What h is (fill_stat), and its change time: the last-write time, size and file index
 * all stay when a file is overwritten in place with as many bytes and its last-write
 * time set back (CopyFile or robocopy over it, an archive tool restoring times); the
 * change time (FILE_BASIC_INFO, 100 ns ticks) moves on with every write and every
 * change of the file's times, as ctime does on POSIX. 0 where the file system keeps
 * none (FAT). */
static int stat_handle(HANDLE h, asset__fstat_t *st) {
    BY_HANDLE_FILE_INFORMATION info;
    if (!GetFileInformationByHandle(h, &info)) return last_error();
    DWORD tag = 0;
    (void)attributes_tag(h, &tag);
    fill_stat(&info, GetFileType(h), tag, st);
    FILE_BASIC_INFO basic;
    st->vchange = !asset__fs_coarse_times &&
                          GetFileInformationByHandleEx(h, FileBasicInfo, &basic, sizeof basic)
                      ? (uint64_t)basic.ChangeTime.QuadPart
                      : 0;
    return 0;
}

void asset__fstat_version(const asset__fstat_t *st, char out[96]) {
    snprintf(out, 96, "%llu:%llu:%08lx%08lx%08lx:%llu", (unsigned long long)st->vraw[0],
             (unsigned long long)st->vraw[1], (unsigned long)st->vraw[2],
             (unsigned long)(st->vraw[3] >> 32), (unsigned long)(st->vraw[3] & 0xffffffffu),
             (unsigned long long)st->vchange);
}

bool asset__fstat_racy(const asset__fstat_t *st) {
    if (st->vraw[0] % 10000000u) return false; /* a time finer than seconds */
    FILETIME ft;
    GetSystemTimeAsFileTime(&ft);
    uint64_t now = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
    return now < st->vraw[0] + 30000000u;
}

int asset__file_stat(asset__file_t *f, asset__fstat_t *st) { return stat_handle(handle_of(f), st); }

int64_t asset__file_read(asset__file_t *f, void *buf, size_t n) {
    DWORD got = 0;
    if (!ReadFile(handle_of(f), buf, n > (1u << 30) ? (1u << 30) : (DWORD)n, &got, NULL)) {
        DWORD e = GetLastError();
        return e == ERROR_HANDLE_EOF ? 0 : -map_error(e);
    }
    return (int64_t)got;
}

/* A view of the whole file; the rest of its last page reads as zeros, which is the 0
 * byte after the data, unless the data fills that page: then -ENOSYS and the caller
 * reads (a view cannot be followed by a page of our own without placeholder APIs).
 * While the view lives, Windows refuses to truncate the file, so no SIGBUS case. */
int asset__file_map(asset__file_t *f, size_t size, void **data, void **token) {
    *data = *token = NULL;
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    size_t page = si.dwPageSize ? si.dwPageSize : 4096;
    if (!size) return -EINVAL;
    if (size % page == 0) return -ENOSYS;
    /* A copy-on-write view: the 0 after the data is written into the view's own copy
     * of its last page, so bytes appended to the file (since its size was taken, or
     * later) never show there; the other pages stay the file's. Then read-only. */
    HANDLE m = CreateFileMappingW(handle_of(f), NULL, PAGE_WRITECOPY, 0, 0, NULL);
    if (!m) return last_error();
    char *v = MapViewOfFile(m, FILE_MAP_COPY, 0, 0, size);
    int err = v ? 0 : last_error();
    CloseHandle(m); /* the view keeps the mapping object alive */
    if (err) return err;
    DWORD old;
    LARGE_INTEGER now;
    if (!GetFileSizeEx(handle_of(f), &now) || (uint64_t)now.QuadPart < (uint64_t)size) {
        UnmapViewOfFile(v); /* shorter by now: read it (the write would fault) */
        return -EAGAIN;
    }
    v[size] = 0;
    if (!VirtualProtect(v, size, PAGE_READONLY, &old)) {
        err = last_error();
        UnmapViewOfFile(v);
        return err;
    }
    *data = v;
    return 0;
}

void asset__unmap(void *data, void *token) {
    (void)token;
    if (data) UnmapViewOfFile(data);
}

void asset__file_close(asset__file_t *f) {
    if (f) CloseHandle(handle_of(f));
}

/* ---- directories ---- */

void asset__dir_close(asset__dir_t *d) {
    if (!d) return;
    CloseHandle(d->h);
    asset_free(d->buf);
    asset_free(d);
}

#define LIST_BUF 16384

int asset__dir_next(asset__dir_t *d, const char **name, int *kind) {
    for (;;) {
        if (d->done) return 0;
        if (!d->have) {
            if (!d->buf && !(d->buf = asset_alloc(LIST_BUF))) return -ENOMEM;
            FILE_INFO_BY_HANDLE_CLASS c =
                d->started ? FileIdBothDirectoryInfo : FileIdBothDirectoryRestartInfo;
            if (!GetFileInformationByHandleEx(d->h, c, d->buf, LIST_BUF)) {
                DWORD e = GetLastError();
                d->done = true;
                return e == ERROR_FILE_NOT_FOUND || e == ERROR_NO_MORE_FILES ? 0 : -map_error(e);
            }
            d->started = d->have = true;
            d->off = 0;
        }
        const FILE_ID_BOTH_DIR_INFO *e = (const FILE_ID_BOTH_DIR_INFO *)(d->buf + d->off);
        if (e->NextEntryOffset)
            d->off += e->NextEntryOffset;
        else
            d->have = false;
        int nw = (int)(e->FileNameLength / sizeof(WCHAR));
        const WCHAR *w = e->FileName;
        if (!nw || (nw == 1 && w[0] == L'.') || (nw == 2 && w[0] == L'.' && w[1] == L'.')) continue;
        int got = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, w, nw, d->name,
                                      (int)sizeof d->name - 1, NULL, NULL);
        if (got <= 0) continue; /* not valid UTF-16 (an unpaired surrogate): no URI names it */
        d->name[got] = 0;
        DWORD a = e->FileAttributes;
        *name = d->name;
        /* a reparse point's EaSize is its tag (MS-FSCC, FileIdBothDirectoryInformation);
         * a hint only: the entry's stat (FileAttributeTagInfo) decides */
        *kind = is_link(a, e->EaSize)            ? ASSET__KIND_LINK
                : (a & FILE_ATTRIBUTE_DIRECTORY) ? ASSET__KIND_DIR
                                                 : ASSET__KIND_FILE;
        return 1;
    }
}

int asset__dir_stat_entry(asset__dir_t *d, const char *name, asset__fstat_t *st) {
    /* "d." would be opened as "d" (Windows drops the trailing dot): another entry */
    if (asset__path_component_refused(name, strlen(name))) return -EXDEV;
    if (strchr(name, '/') || strchr(name, '\\')) return -EXDEV;
    int err = 0;
    wchar_t *w = to_wide_plain(name, NULL, 0, &err); /* a name, not a path */
    if (!w) return err;
    HANDLE h;
    err = open_rel(d->h, w, FILE_READ_ATTRIBUTES, &h);
    asset_free(w);
    if (err) return err;
    int rc = stat_handle(h, st);
    CloseHandle(h);
    return rc;
}

int asset__dir_open_entry(asset__dir_t *d, const char *name, asset__dir_t **out) {
    *out = NULL;
    return open_beneath(d, name, true, out, NULL);
}
