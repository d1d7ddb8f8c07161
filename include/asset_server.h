/*
 * asset_server.h - embeddable asynchronous asset loading for game engines and tools.
 *
 * TL;DR
 *
 *     asset_server_t *s = asset_server_create(NULL);          // defaults
 *     asset_handle_t *h = asset_server_load(s, "pkg://game/hero.json", NULL);
 *     while (running) {                                       // your frame loop
 *         asset_server_flush(s);                              // completions fire here
 *         if (asset_handle_is_done(h)) { ... asset_handle_value(h) ... }
 *     }
 *     asset_handle_release(h);
 *     asset_server_destroy(s);
 *
 * Threads. Every function may be called from any thread unless its comment says
 * otherwise. Terminal states (LOADED, FAILED, CANCELLED) and completion callbacks
 * become visible only inside asset_server_flush() (or a wait that flushes), on the
 * thread that calls it: between two flushes the world is stable. Progress may move
 * at any time. Callbacks of sources and loaders run on worker threads.
 *
 * Ownership. Pointers handed to the library are copied before the call returns
 * unless the comment says otherwise. Pointers returned by the library are borrowed
 * and live as long as the object they came from.
 *
 * Lifetime. asset_server_destroy() frees every handle, batch and value of that
 * server: after it returns none of them may be touched, not even released.
 *
 * MIT licensed. See docs/ for the guide.
 */
#ifndef ASSET_SERVER_H
#define ASSET_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(ASSET_SERVER_STATIC)
#define ASSET_API
#elif defined(_WIN32)
#if defined(ASSET_SERVER_BUILDING)
#define ASSET_API __declspec(dllexport)
#else
#define ASSET_API __declspec(dllimport)
#endif
#elif defined(__GNUC__) || defined(__clang__)
#define ASSET_API __attribute__((visibility("default")))
#else
#define ASSET_API
#endif

#if defined(__MINGW32__) && defined(__GNUC__) && !defined(__clang__)
/* the library formats with C99 rules (%zu, %lld) on Windows too, not msvcrt's */
#define ASSET_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#elif defined(__GNUC__) || defined(__clang__)
#define ASSET_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ASSET_PRINTF(fmt, args)
#endif

#define ASSET_SERVER_VERSION_MAJOR 0
#define ASSET_SERVER_VERSION_MINOR 1
#define ASSET_SERVER_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Status codes                                                              */
/* ------------------------------------------------------------------------ */

/* One list generates the enum, asset_strerror() and asset_err_name().
 * Codes are append-only and never renumbered. Errors are negative. */
#define ASSET_STATUS_MAP(X)                                                        \
    X(OK, 0, "success")                                                            \
    X(NOT_MODIFIED, 1, "not modified: the cached version is current")              \
    X(PENDING, 2, "pending: the request finishes later")                           \
    X(E_INVALID, -1, "invalid argument or URI")                                    \
    X(E_NO_SOURCE, -2, "no source handles this URI scheme")                        \
    X(E_NOT_FOUND, -3, "not found")                                                \
    X(E_FORBIDDEN, -4, "forbidden: path escapes its root or protocol not allowed") \
    X(E_IO, -5, "I/O error")                                                       \
    X(E_TOO_LARGE, -6, "asset larger than max_asset_size")                         \
    X(E_PARSE, -7, "parse error")                                                  \
    X(E_HTTP, -8, "HTTP error status")                                             \
    X(E_NETWORK, -9, "network error")                                              \
    X(E_TIMEOUT, -10, "timed out")                                                 \
    X(E_CANCELLED, -11, "cancelled")                                               \
    X(E_NO_MEMORY, -12, "out of memory")                                           \
    X(E_UNSUPPORTED, -13, "operation not supported")                               \
    X(E_INTEGRITY, -14, "integrity check failed")                                  \
    X(E_SHUTDOWN, -15, "server is shutting down")                                  \
    X(E_BUSY, -16, "busy: refused while a flush is running")                       \
    X(E_NO_LOADER, -17, "no loader by that name")                                  \
    X(E_DEPENDENCY, -18, "a dependency failed")

typedef enum asset_status {
#define ASSET_STATUS_ENUM_(name, code, text) ASSET_##name = code,
    ASSET_STATUS_MAP(ASSET_STATUS_ENUM_)
#undef ASSET_STATUS_ENUM_
} asset_status_t;

/* A sentence for a status ("not found"). Never NULL; unknown codes give "unknown status". */
ASSET_API const char *asset_strerror(asset_status_t st);
/* The enum's name without the prefix ("E_NOT_FOUND"). Never NULL. */
ASSET_API const char *asset_err_name(asset_status_t st);

/* ------------------------------------------------------------------------ */
/* Opaque types                                                              */
/* ------------------------------------------------------------------------ */

typedef struct asset_server asset_server_t;
typedef struct asset_handle asset_handle_t;
typedef struct asset_request asset_request_t;
typedef struct asset_parse asset_parse_t;
typedef struct asset_list asset_list_t;
typedef struct asset_batch asset_batch_t;
typedef struct asset_finalize asset_finalize_t;
typedef struct asset_load_options asset_load_options_t; /* defined under Loading */

/* ------------------------------------------------------------------------ */
/* Allocation                                                                */
/* ------------------------------------------------------------------------ */

typedef struct asset_allocator {
    void *(*alloc)(size_t size, void *user);              /* NULL on failure */
    void *(*realloc)(void *ptr, size_t size, void *user); /* ptr may be NULL */
    void (*free)(void *ptr, void *user);                  /* ptr may be NULL */
    void *user;
} asset_allocator_t;

/* Routes every allocation of the library (and of cJSON and libcurl, through their
 * process-wide hooks, which the library sets) through `a`. Call it before any other function of the
 * library, from one thread, or not at all. NULL, or a struct with a NULL slot, restores
 * malloc/realloc/free. Copied. */
ASSET_API void asset_set_allocator(const asset_allocator_t *a);
/* The library's allocator, for loaders that hand out memory the library frees
 * (asset_parse_take_data()) or that build values. Any thread. */
ASSET_API void *asset_alloc(size_t size);
ASSET_API void *asset_realloc(void *ptr, size_t size);
ASSET_API void asset_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Server                                                                    */
/* ------------------------------------------------------------------------ */

/* Traces (docs/introspection.md). A trace hook sees each load's phases as they
 * happen, with a monotonic timestamp: QUEUED (a job was made), READ_START/READ_END
 * (the source's read, on a worker; an ASYNC read ends on the I/O thread),
 * PARSE_START/PARSE_END (the loader's parse, on a worker), FINALIZE_START/FINALIZE_END
 * (the loader's finalize, on the flush thread) and DELIVERED (a handle became
 * LOADED/FAILED/CANCELLED inside flush; one per handle, so coalesced loads and cache
 * hits deliver too). A spawned task reports QUEUED, PARSE_START/PARSE_END around its
 * function, and DELIVERED. Appended values only. */
typedef enum asset_trace_phase {
    ASSET_TRACE_QUEUED,
    ASSET_TRACE_READ_START,
    ASSET_TRACE_READ_END,
    ASSET_TRACE_PARSE_START,
    ASSET_TRACE_PARSE_END,
    ASSET_TRACE_FINALIZE_START,
    ASSET_TRACE_FINALIZE_END,
    ASSET_TRACE_DELIVERED
} asset_trace_phase_t;

typedef struct asset_trace_event {
    asset_trace_phase_t phase;
    uint64_t time_ns;      /* monotonic (uv_hrtime), the same clock for every event */
    uint64_t id;           /* the job's id (never 0; unique in the process, so one hook may
                              hear several servers): pairs a load's events; DELIVERED of a
                              handle served from the cache without a job has id 0, as has
                              one that failed before it had a job (an unknown scheme) */
    const char *uri;       /* the job's normalised URI (a handle's, for DELIVERED; "task://N"
                              for spawned tasks); borrowed for the call */
    const char *loader;    /* loader name ("json", "task", ...); borrowed; "" if none */
    asset_status_t status; /* READ_END, PARSE_END, FINALIZE_END, DELIVERED: the outcome */
    uint32_t thread;       /* small number naming the calling thread (1, 2, ...) */
} asset_trace_event_t;

/* Any thread, possibly with the server's lock held: must be quick and must not call
 * the server. */
typedef void (*asset_trace_fn)(const asset_trace_event_t *e, void *user);

typedef struct asset_server_config {  /* zero means default, for every field */
    unsigned max_workers;             /* worker threads: 2; at most 256 (more is 256) */
    size_t cache_budget;              /* bytes per loader cache: 256 MiB, of the costs its
                                         values declare (asset_parse_set_value); the entries'
                                         own bytes are not charged, a cost of 0 takes none
                                         (docs/loaders-and-caches.md, Caches) */
    size_t max_asset_size;            /* 256 MiB; larger => ASSET_E_TOO_LARGE */
    unsigned http_max_connections;    /* 16 connections per host; no cap on them in all, but on
                                         transfers: 8 x (see http_low_speed_ms). In a
                                         browser (web build) at most 6 (docs/web.md) */
    unsigned http_connect_timeout_ms; /* 10000 */
    const char *pkg_path;             /* ':'-separated (';' on Windows) dirs whose subdirs
                                         are pkg:// roots; NULL: $ASSET_SERVER_PKG_PATH.
                                         Copied; relative dirs are taken against the
                                         working directory at create, as bare paths.
                                         The first dir with a subdir of the name is
                                         the package; one it cannot open fails its
                                         loads (ASSET_E_IO, with its path); no
                                         permission (ASSET_E_FORBIDDEN) only if no
                                         later dir has it, as execvp() walks PATH. */
    const char *file_root;            /* if set, file:// and bare paths may not escape it
                                         and bare relative paths resolve against it. Copied.
                                         A relative one is taken against the working
                                         directory at create: "" (as ".") is that
                                         directory itself, not "no root" (NULL is).
                                         Windows: "C:\\x", "C:/x" and "file:///C:/x" all
                                         work; UNC paths, streams, device names and "C:x"
                                         are refused (docs/platforms.md). A file_root
                                         refused so ("C:", a UNC share; POSIX: one with
                                         a backslash) fails asset_server_create, and
                                         the log says why. */
    void (*wake)(void *user);         /* any thread, no lock held: "flush has work".
                                         Called when the completion queue becomes non-empty,
                                         and when a thread other than the flush thread
                                         leaves a value that only a flush may free (an
                                         ASSET_LOADER_FREE_ON_FLUSH_THREAD loader's, or one
                                         holding dependency handles: a release, an eviction,
                                         a budget change, invalidate, clear_caches, a
                                         source registered for its scheme), or a
                                         spawned task's free_arg (the task ended after its
                                         handle was delivered: cancelled while it ran). */
    void (*log)(int level, const char *msg, void *user); /* any thread, several at once
                                                            maybe; level: ASSET_LOG_*; msg
                                                            borrowed for the call: copy it
                                                            to keep it (to queue it) */
    void *user;                                          /* passed to wake and log; not owned */
    unsigned http_low_speed_ms; /* 30000: an HTTP transfer that moves under 1 byte/s for this
                                   long fails with ASSET_E_TIMEOUT ("stalled: no data for N ms
                                   (http_low_speed_ms)"), also with no timeout_ms on the load.
                                   Counted in whole seconds (rounded up). UINT_MAX: never (a
                                   stalled server keeps its transfer until the load is
                                   cancelled). Fairness: transfers wait per host (host and
                                   port, as libcurl counts connections: a port's http and
                                   https transfers are one host's) and start round-robin
                                   over the hosts, at most
                                   http_max_connections per host (2 x for https when libcurl
                                   has HTTP/2) and 8 x in all (but always one for a host with
                                   none), so hosts whose transfers all stall do not hold up
                                   other hosts. A redirect to another host counts against that
                                   host from the redirect on (its first host's slot is free).
                                   The curl easy handles of finished transfers are reset and
                                   reused (up to 2 x http_max_connections kept until destroy)
                                   with libcurl 8.1.0 or later; older ones get a new handle per
                                   transfer (docs/http.md: a libcurl bug on reused handles). */
    /* The json loader refuses a document that is not valid UTF-8 (overlong forms,
       surrogates U+D800..U+DFFF, code points above U+10FFFF, stray or missing
       continuation bytes) with ASSET_E_PARSE, "invalid UTF-8 at byte N (line L,
       column C): why"; N counts from 0 over the bytes as stored, a byte order mark
       included. true: pass such bytes through to cJSON unchecked (legacy Latin-1 data).
       Manifests are read by the json loader, so this applies to them too. The escape
       \u0000 is always refused (ASSET_E_PARSE): a cJSON string would end there. */
    bool json_allow_invalid_utf8;
    /* Which schemes a manifest may name: a manifest is data, often from a server, and
       must not reach further than where it came from. NULL means "default": the
       privilege order file > pkg > mem (custom schemes rank with mem) > http = https,
       and an entry may name its manifest's scheme or a less privileged one. So an
       http(s) manifest names only http(s) entries (relative ones resolve to its own
       scheme and are fine), a mem:// one mem://, custom and http(s) ones, a file:// one
       anything. Otherwise a list of rules separated by spaces or commas, each
       "default" (the order above) or "manifest->entry" with a scheme or "*" on either
       side: "default https->pkg" also lets https manifests name pkg:// entries, "*->*"
       allows everything, "" only entries of the manifest's own scheme. The whole
       manifest is checked before any entry loads: a refused entry fails the batch with
       ASSET_E_FORBIDDEN naming the entry, a rule that cannot be read with
       ASSET_E_INVALID naming the rule. Copied. */
    const char *manifest_schemes;
    /* Hot reload (docs/hot-reload.md). watch: changed file:// assets and files of
       directory-mounted pkg:// packages are reloaded (their directories are watched on
       the I/O thread; when the OS runs out of watches the files are polled, with a
       log line; a directory whose path is longer than PATH_MAX (POSIX) is neither
       watched nor polled, with a warning), and so are mem:// keys that asset_mem_put
       replaces. Directory mounts become mutable: their cache entries carry a version
       and are revalidated.
       Embedded packages never change. A file is watched while a handle names it:
       its watch (its directory's, once none of its files is watched) goes when the
       last one is freed; a dependency that failed (missing, malformed) is watched
       for the parents it failed or, optional, loaded without: its fix reloads them,
       if they are loaded. A reload that finds its file in use (another program holds
       it open without sharing while it saves: a Windows sharing or lock violation) is
       tried again, quietly, after 50 ms and then doubling, for up to 3 s; only then
       does it fail as any reload does (asset_handle_on_reloaded). */
    bool watch;
    uint32_t http_poll_ms;       /* 0: never; else every live http(s) asset is revalidated
                                    this often with a conditional GET (a 304 changes
                                    nothing: no cache hit, the cache's LRU order kept, an
                                    evicted value not cached again) and reloaded when it
                                    changed. A poll is no change: loads of the URL in
                                    flight are cached as usual; a URL whose reload is in
                                    flight is not asked again (docs/hot-reload.md) */
    uint32_t reload_debounce_ms; /* 50: quiet time after the last change of a file; also how
                                    often a polled file is looked at, but from 100 ms to 1 s */
    /* The trace hook (see asset_trace_event_t), or NULL: none (costs one atomic load per
       phase). asset_server_set_trace() replaces it later. trace_user: passed to it; not
       owned. */
    asset_trace_fn trace;
    void *trace_user;
    /* Zero-copy large files (docs/performance.md, "large_file"). A file of at least
       map_threshold bytes is served without a copy: a pkg:// directory package's file
       as a read-only private mapping (mmap; MapViewOfFile on Windows), an embedded
       table's file as a pointer into the table, a file:// file only for a load that
       sets map_file (see there why). The bytes loader's value then points into the
       mapping or the table and holds it (unmapped when the last handle and cache entry
       let the value go); other loaders read asset_parse_data as usual and the mapping
       is released after the parse. data[size] is still 0: an embedded table's file of
       this size must have a readable 0 byte after its data (asset-embed writes one; a
       hand-made table without it needs SIZE_MAX here). A mapped value costs its size in
       the cache, like a copied one. Files that cannot be mapped are read (the web build;
       Windows, when the size is a multiple of the page size). With watch set, directory
       packages are mutable and never mapped. A load pinned to a sha256 (a manifest
       entry's) is read, never mapped: its value stays the bytes checked whatever is
       later written into the file (an embedded table's file is still lent in place).
       0: 1 MiB; SIZE_MAX: never map or borrow. */
    size_t map_threshold;
    /* The json loader's nesting limit (manifests too): a document with more than this
       many arrays and objects open at once fails with ASSET_E_PARSE, "invalid JSON:
       nested deeper than N levels at line L, column C", counted before cJSON runs.
       0: 256; 1 to 1000 (cJSON's own CJSON_NESTING_LIMIT, which it refuses past
       anyway); more fails asset_server_create, and the log says why. cJSON parses
       and frees by recursion, about 100 bytes of native stack a level (256: 25 KiB,
       1000: 100 KiB): every thread that may parse (the workers, and a thread of yours
       whose wait runs a load itself) needs that much; lower it for small stacks. */
    unsigned json_max_depth;
} asset_server_config_t;

/* Log levels of config.log (off when log is NULL; the library formats nothing then).
 * ERROR: misuse (destroy or flush from a callback, a handle released too often; a
 *   relative file_root that create cannot resolve: "asset_server_create: file_root ...";
 *   a json_max_depth above 1000: "asset_server_create: json_max_depth N ..."; an
 *   embedded table refused: "asset_server_mount_embedded <pkg>: entry N (...)"), and
 *   what running out of memory cost beyond one load ("<uri>: reload: out of memory;
 *   change not loaded", "watch: out of memory: hot reload is off", a trace hook left
 *   unchanged, a replaced value kept).
 * WARN: every failed load, with its message ("load failed: <message>"), once per failure:
 *   the handles that shared it (loads of one URI in flight together, an asset's labels)
 *   log one line (timeouts too, each its own; cancellations are not failures and are not
 *   logged; stats.failed counts per handle); an unknown
 *   loader name given to set_cache_budget; a manifest's entries' unknown keys, once per
 *   manifest ("<uri>: manifest: entry N (<entry>): unknown key \"k\" ignored; ...");
 *   a watch that fell back to polling, and a
 *   file that cannot be polled either ("watch: cannot poll <path>": its changes are
 *   not seen; said once, tried again while its directory is polled), a directory none
 *   of whose files can be polled (a path too long; the web, which has no stat: "watch:
 *   cannot watch <dir> (...): its files cannot be polled either"), or watched for
 *   want of memory ("watch: cannot watch <path> (not enough memory)"); a burst of
 *   change events that may have overflowed the system's queue (Linux: "watch: N
 *   change events at once ...": every watched file is looked at again).
 * INFO: reloads ("reloaded <uri>", "reload failed: <message>", and "reload of <uri>:
 *   <why>: trying again in N ms" for a file in use) and mounts ("mounted <pkg> at
 *   <dir>", "mounted <pkg>: N embedded files").
 * DEBUG: cache evictions ("evicted <uri> from the <loader> cache (N bytes)"), coalesced loads
 *   ("<uri>: joined the load in flight"), HTTP retries ("<uri>: http: N connections
 *   opened (a dropped connection was retried, or redirected)") and timeouts ("<uri>:
 *   timed out after N ms").
 *   Also each curl easy handle made ("<uri>: http: new curl easy handle (none free)");
 *   the I/O thread keeps up to 2 x http_max_connections of them for later transfers.
 * A line's control bytes (below 0x20, and 0x7f: a file name's newline, a server's text)
 * are written \xNN; the handle's message keeps them as they were.
 * The log callback may be called with the server's lock held: it must not call the
 * server. */
enum { ASSET_LOG_ERROR = 0, ASSET_LOG_WARN = 1, ASSET_LOG_INFO = 2, ASSET_LOG_DEBUG = 3 };

/* completed, failed and cancelled count the handles the API hands out: loads, tasks, a
 * batch's children, the dependencies a parse declared. The library's own are not counted:
 * a hot reload's, a folder's listing, a manifest's own load (its batch tells how it
 * ended: asset_batch_error). The work they do is (reads, parses, cache hits...). */
typedef struct asset_stats {
    uint64_t pending;           /* jobs waiting for a worker (now) */
    uint64_t loading;           /* jobs being read or parsed (now) */
    uint64_t completed;         /* handles that became LOADED (total) */
    uint64_t failed;            /* handles that became FAILED (total) */
    uint64_t cancelled;         /* handles that became CANCELLED (total) */
    uint64_t cache_hits;        /* loads served from a cache (total): with no I/O, each one;
                                   a revalidation ("not modified") is one, the loads that
                                   joined it count in coalesced, as for cache_misses */
    uint64_t cache_misses;      /* parses that produced a value (total): a failed parse or
                                   read is not one, loads that joined one job are one */
    uint64_t cache_evictions;   /* entries evicted to stay within budget */
    uint64_t bytes_cached;      /* bytes charged to all caches (now; at most UINT64_MAX) */
    uint64_t bytes_read;        /* bytes delivered by sources (total) */
    uint64_t http_requests;     /* HTTP transfers started (total): a redirect's hops are
                                   one; a 304 through a redirect, asked again, is two */
    uint64_t http_not_modified; /* HTTP 304 answers (total) */
    uint64_t coalesced;         /* loads that joined a job already in flight (total) */
    uint64_t source_reads;      /* source read calls (total) */
    uint64_t parses;            /* loader parse calls (total), failed ones too */
    uint64_t http_connections;  /* new HTTP connections opened (total; reuse keeps it low) */
    uint64_t reloads;           /* hot reloads published to handles (total, per handle) */
    uint64_t reload_failures;   /* reload attempts that kept the old value (total, per handle;
                                   repeats of a failure told once included) */
    uint64_t watches;           /* directories (or files, when polling) watched (now) */
} asset_stats_t;

/* Creates a server. NULL cfg: all defaults. Strings in cfg are copied. Returns NULL
 * only when memory or threads cannot be had, when cfg->file_root is relative and the
 * working directory cannot be read (removed, say) or is refused by the path rules (see
 * there), or when cfg->json_max_depth is above 1000 (each logged at ASSET_LOG_ERROR, but
 * for a failed allocation, which is not logged). Worker threads start here; the I/O thread starts
 * on first need (timeouts, HTTP). When only some of max_workers threads can start (a thread limit),
 * the server runs with those and logs at ASSET_LOG_WARN how many; none at all fails the create
 * (ASSET_LOG_ERROR). Any thread. */
ASSET_API asset_server_t *asset_server_create(const asset_server_config_t *cfg);
/* Cancels every load, joins every thread, frees every handle, value and cache of the
 * server; a pending read of an ASYNC source is waited for until the source finishes it
 * (asset_request_finish; on the single-threaded web build, where only the JS event loop
 * can finish it, destroy is refused instead, below). No callback fires during or after
 * destroy. Waits of other threads (asset_handle_wait, asset_batch_wait) end with
 * ASSET_E_SHUTDOWN, and destroy
 * returns once they have (a callback or finalize step that a wait's flush was running when
 * destroy began finishes first; that flush runs no other); so does a flush running on
 * another thread, which destroy waits for to return. Called from inside one of the
 * server's own callbacks (a completion or batch callback during its flush, a free_value or
 * free_arg its flush or its destroy runs, or a source's or loader's callback on its worker
 * or I/O thread), or on a thread that waits on the server (config.wake called by the
 * wait's flush), or, on the single-threaded web build, while a read of an ASYNC source
 * other than http(s) is pending, it is refused: it logs an ASSET_LOG_ERROR and returns
 * without destroying; call it after flush returns (or the read finished). NULL is
 * ignored. */
ASSET_API void asset_server_destroy(asset_server_t *s);
/* asset_server_destroy() that says whether it destroyed: ASSET_OK (s is gone), or
 * ASSET_E_BUSY where destroy is refused (logged the same; s unchanged; try again after
 * the flush, callback or wait returns), ASSET_E_INVALID for NULL. For wrappers that own
 * more than the server (the C++ wrapper's callables: asset_server.hpp). Any thread. */
ASSET_API asset_status_t asset_server_try_destroy(asset_server_t *s);
/* A process-wide server with default config, created on first call (thread-safe). */
ASSET_API asset_server_t *asset_server_instance(void);
/* Destroys the process-wide server, if any; the next asset_server_instance() makes
 * a new one. Where asset_server_destroy() would be refused (inside one of its
 * callbacks) it is refused too, logged, and the instance stays. */
ASSET_API void asset_server_shutdown_instance(void);

/* Delivers every completion queued so far: sets terminal states and fires callbacks,
 * on the calling thread, in completion order. What is queued while it runs (by its
 * callbacks, or other threads) waits for the next flush, so a flush always ends. That thread
 * becomes the server's flush thread. It also frees the records that finished loads left to be freed
 * by a loading or waiting thread (at most 1,024 wait; docs/threads.md). Returns how many handles
 * were dispatched: of yours, and of the dependencies your loads' parses declared
 * (asset_parse_depend), those a result reached (a load's end, a published reload, a
 * callback fired); a hot reload's internal handle, a folder's listing or a manifest's own
 * load (the batch's), or a reload that came to nothing (see
 * asset_handle_on_reloaded), is not counted. Called from inside a callback (a flush
 * already running) it does nothing, logs an error and returns 0; so it does from inside
 * a spawned task's fn, a loader's parse or a source's read of this server, but on the
 * flush thread (a wait there runs them): that worker would become the flush thread. */
ASSET_API size_t asset_server_flush(asset_server_t *s);
/* Like asset_server_flush(), but stops once budget_ns nanoseconds are spent; what is
 * left stays queued, in order, for the next flush. It frees no finished load's record
 * (freeing can take the C library's heap trims, which no budget foresees): loads,
 * waits and asset_server_flush() do. At least one completion is dispatched when any
 * is queued (with the internal handles of hot reloads ahead of it; with none of yours,
 * at most 64 of those past the budget), and at least one batch step is taken when any
 * is queued (late batch callbacks, or a folder creating its next children), so a small
 * budget never starves either. Values that an
 * ASSET_LOADER_FREE_ON_FLUSH_THREAD loader frees here, the free_args of spawned tasks
 * that ended, and the free_users of asset_handle_on_reloaded_free whose handles went, are
 * freed within the budget too, at least one of each per flush; the rest
 * wait for the next flush (config.wake is called). So are the reloads of the dependents
 * of a reloaded asset started (docs/hot-reload.md): at least one per flush. */
ASSET_API size_t asset_server_flush_budget(asset_server_t *s, uint64_t budget_ns);
/* Drops every cached entry of `uri` (all loaders): tells the server uri changed (an
 * IMMUTABLE source of yours, whose entries are served without asking it). Loads in
 * flight keep what they read; a load made after it joins none whose read began before
 * (or that revalidates a dropped value): it reads and parses, and such a read's value is
 * not cached. Nor does a folder load join a listing in flight of uri's folder (or a
 * recursive one of a folder above it) that began before: it lists again.
 * "uri#label" drops uri's entries, its labels' with them ('#' starts a label, as in
 * asset_server_load). */
ASSET_API void asset_server_invalidate(asset_server_t *s, const char *uri);
/* Drops every cached entry, and tells every read in flight that began before it what
 * asset_server_invalidate tells one of its URI: no load made after it joins such a read,
 * whose value is not cached (the loads it serves keep what it read). Values still held
 * by handles stay valid. */
ASSET_API void asset_server_clear_caches(asset_server_t *s);
/* Cancels every unfinished load whose options.tag equals `tag`, except `keep`
 * (may be NULL), and every unfinished batch made with that tag (the children a folder,
 * manifest or group makes later are cancelled as they are made). Each says "<uri>:
 * cancelled by tag". Returns how many handles it cancelled, of those the API hands out (as
 * asset_stats_t counts): a tagged folder's listing or manifest's own load, cancelled
 * too, is not counted (its batch fails ASSET_E_CANCELLED). Costs the handles not done
 * yet, not every one held. */
ASSET_API size_t asset_server_cancel_tag(asset_server_t *s, const char *tag,
                                         const asset_handle_t *keep);
/* Fills *out with a consistent snapshot. */
ASSET_API void asset_server_stats(const asset_server_t *s, asset_stats_t *out);

/* Replaces the trace hook (NULL: none). Calls of the old hook that already started
 * finish before this returns; after it, the old hook is never called again (its user,
 * e.g. a recorder, may be destroyed). It waits for those calls only, not for calls of
 * the new hook, so tracing from several threads without pause does not hold it up;
 * concurrent calls take turns. Not from inside a hook. Any thread. */
ASSET_API void asset_server_set_trace(asset_server_t *s, asset_trace_fn fn, void *user);

/* Introspection (docs/introspection.md). Each function takes a consistent snapshot under
 * the server's lock, then calls fn for every record without the lock (fn may call the
 * server, even destroy it: the records are copies); a record's strings are borrowed for
 * the call. fn returns false to stop. Returns how many records fn saw. Out of memory, the
 * snapshot holds the records it had room for (none when its first block cannot be had)
 * and a string it could not copy reads "": fn sees fewer records. Any thread. */
typedef struct asset_job_info {
    uint64_t id;          /* the trace id of the job */
    const char *uri;      /* normalised ("task://N" for spawned tasks) */
    const char *loader;   /* "json", "bytes", yours, "listing", "task" */
    const char *state;    /* "queued", "running", "waiting_async", "waiting_deps",
                             "finalizing" */
    int priority;         /* ASSET_PRIORITY_* of the job (its highest live handle) */
    uint64_t bytes;       /* received so far */
    uint64_t bytes_total; /* expected, 0: unknown */
    uint64_t age_ns;      /* since the job was made */
    unsigned handles;     /* handles attached */
    size_t dependencies;  /* declared so far */
} asset_job_info_t;
/* One record per job in flight: queued, running, waiting. A job every handle left
 * (cancelled, timed out) is not listed from then on, also while a worker still runs it
 * (a task until its fn returns, a read until its next cancel check); stats.loading still
 * counts it until then. A folder's listing and a manifest's own load are listed too,
 * their handles counting the batch's own (as stats.pending and loading count jobs; the
 * counts of handles leave them out). */
ASSET_API size_t asset_server_foreach_job(asset_server_t *s,
                                          bool (*fn)(const asset_job_info_t *i, void *user),
                                          void *user);

typedef struct asset_cache_info {
    const char *uri;
    const char *loader;
    const char *version; /* NULL: unversioned */
    size_t bytes;        /* the value's cost, its labeled values' included */
    uint64_t age_ns;     /* since it was inserted, to about 17 ms; past 52 days it may
                            read younger, never under 52 days */
    unsigned handles;    /* references besides the cache's own: handles holding the
                            value, loads finishing with it */
} asset_cache_info_t;
/* Cache entries of every loader, most recently used first within a loader. */
ASSET_API size_t asset_server_foreach_cached(asset_server_t *s,
                                             bool (*fn)(const asset_cache_info_t *i, void *user),
                                             void *user);

typedef struct asset_loader_info {
    const char *name;
    size_t entries, bytes, budget; /* its cache now */
    uint64_t evictions;            /* from its cache (total) */
    uint64_t parses;               /* parse calls that returned (total) */
    uint64_t parse_failures;       /* of those, failed (total) */
    uint64_t parse_ns;             /* time spent in parse (total) */
} asset_loader_info_t;
/* Every loader: user loaders in registration order, then json, then bytes. Costs the
 * number of loaders, not of cache entries: an overlay may call it every frame. */
ASSET_API size_t asset_server_foreach_loader(asset_server_t *s,
                                             bool (*fn)(const asset_loader_info_t *i, void *user),
                                             void *user);

/* A trace recorder: keeps every event in memory (thread-safe) and writes the Chrome
 * trace JSON format that chrome://tracing and ui.perfetto.dev open: one async track per
 * load ("load <uri>" from QUEUED to the last DELIVERED, or to a step that a job whose
 * handles were all cancelled ends after it: open, as under way, until that end is
 * recorded) with read, parse and finalize slices nested in it. A load already under
 * way when the recorder was set begins at its first event recorded, and a step it heard
 * end but not start is left out. Use it as the hook:
 *     asset_trace_t *tr = asset_trace_create();
 *     asset_server_set_trace(s, asset_trace_record, tr);
 *     ... load ...
 *     asset_server_set_trace(s, NULL, NULL);
 *     asset_trace_write_chrome_json(tr, "loading.json");
 *     asset_trace_destroy(tr);   // after the hook is replaced, or after destroy
 * An event the recorder has no memory for is dropped and counted (see the writer).
 * NULL when out of memory. */
typedef struct asset_trace asset_trace_t;
ASSET_API asset_trace_t *asset_trace_create(void);
ASSET_API void asset_trace_record(const asset_trace_event_t *e, void *trace); /* the hook */
ASSET_API size_t asset_trace_count(const asset_trace_t *tr);                  /* events so far */
/* Copies event i (0 <= i < count) into *out; its uri and loader stay valid while tr
 * lives. Returns false past the end. */
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
/* in C++ the function's name hides struct asset_trace_event's (g++ -Wshadow says so);
 * the struct is meant by its typedef, asset_trace_event_t */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
ASSET_API bool asset_trace_event(const asset_trace_t *tr, size_t i, asset_trace_event_t *out);
#if defined(__cplusplus) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
/* Writes the events to path (UTF-8, as every path here; on Windows too), and how many the
 * recorder dropped for want of memory
 * ("otherData":{"dropped_events":N}, and a global instant saying so when N > 0). The
 * events so far: the hook may go on recording meanwhile (it does not wait for the write).
 * ASSET_OK, ASSET_E_INVALID, ASSET_E_IO (with errno set), ASSET_E_NO_MEMORY; on an error
 * the file at path is left as it was: the trace is written beside it (path.<hex>.tmp,
 * made new, POSIX: with the old file's permission bits from the start, 0600 when they
 * cannot be read by then), in binary (the same bytes on every OS: no "\r\n"), synced to
 * the disk (a failed sync: ASSET_E_IO) and renamed over it once whole, and
 * the rename synced (POSIX: the directory's fsync; its failure is not reported: the
 * trace is whole at path, ASSET_OK, only the rename less sure to outlast a power cut).
 * A rename the OS refuses (Windows: path open in a viewer that does not share deleting;
 * POSIX: another user's file in a sticky directory) copies the trace in place, synced
 * too (a failed copy or sync: ASSET_E_IO, path maybe cut short). A
 * symlink, a device or a FIFO at path, or a directory where no file can be made, is
 * written in place (a failed write may then leave it cut short), and a file so written
 * synced too (a failed sync: ASSET_E_IO; a FIFO or a device has nothing to sync), and
 * when made there, its directory as after a rename (its failure not reported). */
ASSET_API asset_status_t asset_trace_write_chrome_json(const asset_trace_t *tr, const char *path);
/* Frees the recorder and its events (NULL is ignored). Only once no hook call can reach
 * it: after asset_server_set_trace() replaced it, or after the server's destroy. */
ASSET_API void asset_trace_destroy(asset_trace_t *tr);

/* Mounts directory `dir` as package `pkg`, so pkg://pkg/x reads dir/x. The newest mount
 * of a name wins (directory or embedded); mounts win over pkg_path. Packages are
 * immutable: a cached pkg:// value is served without I/O, so remount before loading
 * (or invalidate after). Without `watch`, a file of at least config.map_threshold bytes
 * is read through a mapping (a bytes value keeps it while the value lives): replace a
 * package's files by a rename, never by a write in place (a value would change under
 * its holders; a truncation kills the process with SIGBUS; docs/packages.md). A load of
 * the package in flight whose read began before a remount is joined by no later load,
 * and its value is not cached. With `watch` on, a directory package follows dir's path:
 * replaced there (renamed away, made anew), the new directory is read
 * (docs/hot-reload.md; Windows too, by an open of dir a read).
 * A name is 1 to 255 of A-Z a-z 0-9 _ - . (not "." or ".."). Both strings copied. The
 * mount a remount hides is let go (its directory closed) once no read uses it.
 * Returns ASSET_OK, ASSET_E_INVALID (bad name), ASSET_E_NOT_FOUND (no such directory,
 * or not a directory), ASSET_E_FORBIDDEN (no permission), ASSET_E_IO (another failure
 * to open it: out of descriptors, say) or ASSET_E_NO_MEMORY. Any thread. */
ASSET_API int asset_server_mount(asset_server_t *s, const char *pkg, const char *dir);

typedef struct asset_embedded_file {
    const char *path; /* relative, '/'-separated: "textures/a.png" */
    const void *data; /* must outlive the server (normally static) */
    size_t size;
} asset_embedded_file_t;

/* Mounts a compiled-in table (see tools/asset-embed) as package `pkg`. The table and
 * its data must outlive the server (they are not copied); `pkg` is copied. A file of
 * at least config.map_threshold bytes is served in place (no copy), so its data must be
 * followed by a readable 0 byte, which asset-embed writes. Returns ASSET_OK,
 * ASSET_E_INVALID (a bad name, or an entry without a path, without data for its size,
 * whose path is not one a pkg:// URI gives: relative, '/'-separated, no empty, "." or
 * ".." segment, no backslash, its URI (its '%' and '#' as "%25" and "%23") at most
 * 8192 bytes; whose path another entry has too; or that is a directory of another
 * entry's path too, "a" and "a/b": nothing is mounted, and an ERROR log line names the
 * entry and why) or ASSET_E_NO_MEMORY. Any thread. */
ASSET_API int asset_server_mount_embedded(asset_server_t *s, const char *pkg,
                                          const asset_embedded_file_t *files, size_t count);

/* ------------------------------------------------------------------------ */
/* Sources                                                                   */
/* ------------------------------------------------------------------------ */

#define ASSET_SOURCE_ABI 1u
enum {
    ASSET_SOURCE_IMMUTABLE = 1u << 0, /* content never changes: a cache hit needs no I/O
                                         (also when its reads set a version) */
    ASSET_SOURCE_ASYNC = 1u << 1      /* read may return ASSET_PENDING, then _finish() */
};

typedef struct asset_source {
    uint32_t abi;       /* ASSET_SOURCE_ABI; fields are only ever appended */
    const char *scheme; /* "file", "pkg", "mem", "http", "https", or yours */
    unsigned flags;     /* ASSET_SOURCE_IMMUTABLE | ASSET_SOURCE_ASYNC */
    /* Worker thread. Delivers bytes with asset_request_write/adopt and returns
     * ASSET_OK, ASSET_NOT_MODIFIED, ASSET_PENDING (ASYNC only) or an error. */
    asset_status_t (*read)(void *ctx, asset_request_t *req);
    /* Worker thread. Adds the entries under `uri` with asset_list_add(). NULL:
     * listing unsupported. */
    asset_status_t (*list)(void *ctx, const char *uri, asset_list_t *out);
    /* Called once, when no read of this source runs any more: by asset_server_destroy(),
     * or, for a source replaced by a later registration of its scheme, by that
     * registration (no read in flight) or by the first flush after its last read ended.
     * May be NULL. */
    void (*destroy)(void *ctx);
} asset_source_t;

/* Registers a source for src->scheme (lowercase: a letter, then letters, digits, '+', '-'
 * or '.', at most 23 bytes, as a URI's scheme is; else ASSET_E_INVALID, since no URI could
 * name it: "3d://x" is a bare path); a later registration of a scheme
 * replaces the earlier one (built-ins included): loads started after it use the new
 * source (the scheme's cache entries are dropped, and no load joins a read of the old
 * one; values handles hold stay), reads already running finish on the old one (and
 * are not cached), whose destroy is called once
 * the last of them ended (see destroy above). The vtable is copied; ctx must stay valid
 * until that destroy call (or the server's destroy). Returns ASSET_OK, ASSET_E_INVALID
 * or ASSET_E_NO_MEMORY (also: more than 32 sources). Any thread, also while loads run. */
ASSET_API int asset_server_register_source(asset_server_t *s, const asset_source_t *src, void *ctx);

/* The request API, for sources. Worker thread unless noted. */
ASSET_API const char *asset_request_uri(const asset_request_t *r); /* normalised URI */
/* after "scheme://", percent-decoded (except http/https: as sent) */
ASSET_API const char *asset_request_path(const asset_request_t *r);
ASSET_API const char *asset_request_cached_version(const asset_request_t *r);      /* NULL: none */
ASSET_API void asset_request_set_version(asset_request_t *r, const char *version); /* copied */
ASSET_API void asset_request_set_total(asset_request_t *r, uint64_t bytes); /* for progress */
/* Appends n bytes (copied). Refuses past max_asset_size (ASSET_E_TOO_LARGE), after
 * cancel (ASSET_E_CANCELLED) and NULL data with n > 0 (ASSET_E_INVALID): return that
 * status from read (the load fails with it even if read says OK). Any thread for ASYNC. */
ASSET_API asset_status_t asset_request_write(asset_request_t *r, const void *data, size_t n);
/* Hands a whole buffer to the request; free_fn(data, user) is called when the library
 * is done with it (free_fn may be NULL for static data), on the thread that finished
 * with the bytes and without the server's lock: it may call the library (but not
 * destroy the server). Replaces anything written before; the buffer adopted already,
 * again, is kept (its new size and free_fn count; freed once). Refused as a write is (and
 * free_fn called at once, but not on the buffer adopted already): past max_asset_size,
 * after cancel, NULL data with n > 0.
 * The parse step needs data[size] == 0, so the buffer is copied once before parsing;
 * writing straight into the request avoids that. */
ASSET_API asset_status_t asset_request_adopt(asset_request_t *r, void *data, size_t n,
                                             void (*free_fn)(void *data, void *user), void *user);
/* True once every handle of the load was cancelled (or timed out, or destroy began): a
 * read may stop early, returning ASSET_E_CANCELLED. Any thread. */
ASSET_API bool asset_request_cancelled(const asset_request_t *r);
/* Records a message for the handle ("<uri>: <message>") and returns st. */
ASSET_API asset_status_t asset_request_fail(asset_request_t *r, asset_status_t st, const char *fmt,
                                            ...) ASSET_PRINTF(3, 4);
/* ASYNC sources only, any thread, exactly once per read that returned ASSET_PENDING:
 * the request is done with status st (ASSET_PENDING, which is no result, fails it with
 * ASSET_E_IO). The request must not be touched afterwards: the finish may parse and
 * complete the load on this very thread and free the request before it returns (the
 * built-in bytes loader's parse runs there, but for a load with a sha256), and whatever
 * thread parses it may free it too: a later call is a use after free. While its memory is
 * still kept for a later read (a worker's), a second finish is refused with a logged error
 * unless that is another ASYNC read's; so is a later write, adopt, fail or set_version,
 * which stores nothing, unless the request already serves another read; a server logs the
 * first 8 such refusals, then one line at each power of two of their count, saying it, so
 * a source calling in a loop cannot flood the log. The refusals help find the bug; they
 * make no late call safe.
 * asset_server_destroy() waits for every pending read to be finished (it cancels them
 * first: asset_request_cancelled() turns true), before it calls the source's destroy: a
 * source must finish its pending reads without waiting for its destroy. */
ASSET_API void asset_request_finish(asset_request_t *r, asset_status_t st);

/* The listing API, for sources. Entries are paths relative to the listed URI,
 * '/'-separated ("sub/b.png"); size may be -1 when unknown. Copied. An add that fails
 * (ASSET_E_NO_MEMORY, or ASSET_E_INVALID for a NULL path) fails the listing, even if
 * the source's list returns ASSET_OK. */
ASSET_API asset_status_t asset_list_add(asset_list_t *l, const char *relpath, int64_t size);
ASSET_API bool asset_list_recursive(const asset_list_t *l);
ASSET_API asset_status_t asset_list_fail(asset_list_t *l, asset_status_t st, const char *fmt, ...)
    ASSET_PRINTF(3, 4);

/* ------------------------------------------------------------------------ */
/* Loaders                                                                   */
/* ------------------------------------------------------------------------ */

#define ASSET_LOADER_ABI 2u /* 1: up to destroy; 2: flags and finalize */

/* asset_loader_t.flags */
enum {
    /* free_value runs only on the flush thread: inside asset_server_flush() (a value
     * released on another thread, or by a cache eviction, is freed at the next flush;
     * when another thread let it go, config.wake is called) or inside
     * asset_server_destroy(). For values that only that thread may touch (GPU objects). */
    ASSET_LOADER_FREE_ON_FLUSH_THREAD = 1u << 0
};

typedef struct asset_loader {
    uint32_t abi;                /* ASSET_LOADER_ABI; fields are only ever appended */
    const char *name;            /* "bytes", "json", ...; copied at registration */
    const char *const *suffixes; /* NULL-terminated, case-insensitive: {".json", NULL};
                                    matched before a '?' query, except in file://,
                                    pkg:// and mem:// names, where '?' is part of the
                                    name; must outlive the server */
    bool (*claims)(void *ctx, const char *uri);           /* NULL: suffix match. On the thread
                                                             that makes the load: the caller
                                                             of asset_server_load or _group;
                                                             the flush thread for a folder's
                                                             or manifest's children; the
                                                             parsing thread for a dependency.
                                                             Thread-safe, no lock held. */
    asset_status_t (*parse)(void *ctx, asset_parse_t *p); /* worker thread. ASSET_OK with
                                                             a value set, or an error
                                                             (asset_parse_fail).
                                                             ASSET_E_CANCELLED is a cancel
                                                             only once the load was (every
                                                             handle cancelled or timed
                                                             out, or destroy began); else
                                                             the handle FAILS with
                                                             ASSET_E_PARSE, as for a code
                                                             that is no ASSET_E_*, with
                                                             the loader's message or
                                                             "loader returned
                                                             ASSET_E_CANCELLED; nothing
                                                             cancelled the load" */
    void (*free_value)(void *ctx, void *value);           /* any thread, possibly with the
                                                             server's lock held: must not
                                                             call the server, but for
                                                             asset_handle_release and
                                                             asset_batch_release (see
                                                             there). NULL: asset_free */
    void (*destroy)(void *ctx);                           /* at server destroy; may be NULL */
    /* ABI 2 */
    unsigned flags; /* ASSET_LOADER_* */
    /* Flush thread, inside flush, after parse and after every dependency is LOADED and
     * finalized; once per value (cache hits and coalesced loads get the finalized
     * value). Returns ASSET_OK (the value may have been replaced with
     * asset_finalize_set_value), ASSET_PENDING (called again at a later flush: split a
     * big upload over frames) or an error (asset_finalize_fail). ASSET_E_CANCELLED is an
     * error too (no cancel reaches a running finalize: a load whose handles all cancel
     * is dropped whatever it returns): the handle FAILS with ASSET_E_PARSE, as for a
     * code that is no ASSET_E_*, with the loader's message or one that says so. A
     * budgeted flush starts no finalize once its budget is spent. NULL: none. */
    asset_status_t (*finalize)(void *ctx, asset_finalize_t *f);
} asset_loader_t;

/* Registers a loader; user loaders are tried in registration order before the
 * built-ins (json, then bytes). cache_budget 0: the server's. The vtable is copied;
 * ctx must outlive the server. Returns ASSET_OK, ASSET_E_INVALID (bad vtable, a
 * name already registered, or "task" or "listing", which name spawned tasks and folder
 * listings) or ASSET_E_NO_MEMORY (also: more than 32 loaders); on an
 * error the loader's destroy is not called (ctx stays the caller's). Any
 * thread, also while loads run: loads started after it returns see the loader. */
ASSET_API int asset_server_register_loader(asset_server_t *s, const asset_loader_t *ld, void *ctx,
                                           size_t cache_budget);

/* Sets the byte budget of one loader's cache, by loader name ("json", "bytes", or a
 * registered one), and evicts least recently used entries down to it at once (counted
 * in stats.cache_evictions); later inserts keep to it, and a value larger than it is not
 * cached. bytes 0: the server's config.cache_budget. Values held by handles stay valid.
 * Returns ASSET_OK, ASSET_E_INVALID (NULL server, NULL or empty name) or ASSET_E_NO_LOADER (no
 * loader by that name; also logged at ASSET_LOG_WARN). Any thread. */
ASSET_API int asset_server_set_cache_budget(asset_server_t *s, const char *loader, size_t bytes);

/* The parse API, for loaders. Worker thread. */
ASSET_API const char *asset_parse_uri(const asset_parse_t *p);
/* The bytes; data[size] is always 0, so text formats may treat it as a C string.
 * Read-only: it may be a read-only mapping or an embedded table (see map_threshold). */
ASSET_API const uint8_t *asset_parse_data(const asset_parse_t *p);
ASSET_API size_t asset_parse_size(const asset_parse_t *p);
/* Takes the buffer (size + 1 bytes, NUL-terminated): free it with asset_free(). Data
 * served without a copy (a mapping, an embedded table: see map_threshold) is copied
 * here once, and the mapping released; NULL when out of memory, and on a second call
 * (the buffer was taken). After it, asset_parse_data() is the taken buffer (until the
 * loader frees it) and asset_parse_size() its size. */
ASSET_API void *asset_parse_take_data(asset_parse_t *p);
/* Sets the value and what it costs in the cache, in bytes: what the cache budget counts
 * (the entry's own bytes are not charged; a value of cost 0 never makes room for itself,
 * but is evicted in LRU order like any other). The value is freed with
 * the loader's free_value once no cache entry and no handle holds it. A second call
 * replaces the value: the first one is freed as the loader's values are (with
 * free_value; at the next flush for an ASSET_LOADER_FREE_ON_FLUSH_THREAD loader). A NULL
 * value loads (asset_handle_value() NULL, the handle LOADED) and is never passed to
 * free_value (nor a NULL label to its free_fn). */
ASSET_API void asset_parse_set_value(asset_parse_t *p, void *value, size_t cost_bytes);
ASSET_API asset_status_t asset_parse_fail(asset_parse_t *p, asset_status_t st, const char *fmt, ...)
    ASSET_PRINTF(3, 4);
/* True once every handle of the load being parsed was cancelled (or timed out, or the
 * server is being destroyed): its value is not wanted, so a long parse (a big image's
 * decode, a mesh's optimisation) may stop early: return
 * asset_parse_fail(p, ASSET_E_CANCELLED, ...) (what it returns then is thrown away; a
 * value it set is freed). A parse that never asks runs to its end, its result then
 * dropped. A parse a wait runs on the waiting thread (run-on-wait) asks about its own
 * load. Parse thread, inside parse. */
ASSET_API bool asset_parse_cancelled(const asset_parse_t *p);
/* Starts (or joins) a load of uri as a dependency of the asset being parsed; a
 * relative uri resolves against the parent's URI (an http answer's: the URL a redirect
 * led to, docs/http.md). The parent becomes LOADED only once
 * every dependency is done (LOADED and finalized); a required dependency that fails or
 * is cancelled fails the parent with ASSET_E_DEPENDENCY, a message naming the chain
 * ("<uri>: dependency <uri>#<label>: <why>": a label's edge names the label, though the
 * label's handle has its whole asset's message);
 * a dependency cycle fails the edge that closes it ("dependency cycle: a -> b -> a"),
 * also one through a wait inside a job: a's parse waiting for b, then b's parse declaring
 * a ("dependency cycle: b -> a -> ... -> b (through a wait inside a job)").
 * o: as for asset_server_load (o->optional: its failure does not fail the parent);
 * its priority defaults to the parent's. Returns a handle owned by the parent: valid
 * while the parent's value or load lives (asset_handle_retain it to keep it longer);
 * NULL when out of memory. Cancelling the parent cancels the dependencies nothing
 * else wants (at once, also while its parse runs: a wait there for one then returns
 * ASSET_E_CANCELLED; one declared after the cancel is cancelled as it is made); a
 * dependency shared by two parents loads once. */
ASSET_API asset_handle_t *asset_parse_depend(asset_parse_t *p, const char *uri,
                                             const asset_load_options_t *o);
/* Declares n dependencies at once: as n calls of asset_parse_depend(p, uris[i], o) in
 * order (the same edges, order, priorities, cycle checks and failures), but about one
 * lock round trip per 64 of them instead of one each: what a loader with a list of
 * dependencies calls (a level, a scene, a material set). A NULL uris[i] is skipped.
 * out (NULL, or n slots): out[i] the handle of uris[i], owned by the parent as
 * asset_parse_depend's is, or NULL where it was skipped or out of memory. Returns how
 * many handles were made (n, less skipped ones, unless out of memory). Parse thread,
 * inside parse. */
ASSET_API size_t asset_parse_depend_many(asset_parse_t *p, const char *const *uris, size_t n,
                                         const asset_load_options_t *o, asset_handle_t **out);
/* Publishes a sub-asset beside the main value: "uri#label" loads yield it (sharing
 * this parse). Cached with the main value (the entry charges the loader's cache budget
 * cost_bytes for it too) and ref-counted on its own; free_fn(value, user) frees it
 * (NULL: the loader's free_value), where the loader's free_value would run: any
 * thread, possibly with the server's lock held (a cache eviction), so it must not call
 * the server but for asset_handle_release and asset_batch_release; on the flush thread for an
 * ASSET_LOADER_FREE_ON_FLUSH_THREAD loader. Labels are unique per asset (a duplicate gives
 * ASSET_E_INVALID and value stays the caller's); ASSET_E_NO_MEMORY when it cannot be
 * recorded (value stays the caller's). */
ASSET_API asset_status_t asset_parse_add_labeled(asset_parse_t *p, const char *label, void *value,
                                                 size_t cost_bytes,
                                                 void (*free_fn)(void *value, void *user),
                                                 void *user);

/* The finalize API, for loaders with a finalize step. Flush thread, inside flush. */
ASSET_API const char *asset_finalize_uri(const asset_finalize_t *f);
ASSET_API void *asset_finalize_value(const asset_finalize_t *f); /* what parse set */
/* Replaces the value (the old one goes to free_value at once) and its cache cost:
 * e.g. a GPU texture in, the CPU pixels out. The value it holds given again is kept, not
 * freed: its cost alone changes. */
ASSET_API void asset_finalize_set_value(asset_finalize_t *f, void *value, size_t cost_bytes);
ASSET_API size_t asset_finalize_dependency_count(const asset_finalize_t *f);
/* Borrowed; LOADED, or FAILED/CANCELLED when optional. A LOADED one's own dependencies
 * read done too, at any depth. */
ASSET_API asset_handle_t *asset_finalize_dependency(const asset_finalize_t *f, size_t i);
/* Records a message ("<uri>: finalize: <message>") and returns st. A second call keeps
 * the first message. */
ASSET_API asset_status_t asset_finalize_fail(asset_finalize_t *f, asset_status_t st,
                                             const char *fmt, ...) ASSET_PRINTF(3, 4);

/* Value of the built-in "bytes" loader. */
typedef struct asset_bytes {
    const uint8_t *data; /* data[size] is 0. Read-only: it may point into a mapping or
                            an embedded table (config.map_threshold) */
    size_t size;
} asset_bytes_t;
/* Value of the built-in "json" loader: const cJSON * (include <cjson/cJSON.h>). */

/* ------------------------------------------------------------------------ */
/* mem:// store                                                              */
/* ------------------------------------------------------------------------ */

/* Stores a copy of data under key (loadable as mem://key). Replacing a key bumps its
 * version, so the next load re-parses even when the length is the same, and drops the
 * old value's cache entries at once (handles keep their values). Keys are names, not
 * paths: listing mem://dir gives the keys under "dir/" (E_NOT_FOUND when none is); there
 * is no root folder (mem:/// lists the keys that start with '/'; mem:// is E_INVALID).
 * A load (or folder load) made after it returned joins no read (or listing) that may have
 * begun before it: it gets the new bytes (the folder with key in it). Any thread.
 * Returns ASSET_OK, ASSET_E_INVALID (also for a key no URI can name: longer than 8186
 * bytes once each '%' and '#' in it is written %25 or %23; and for a key that ends in '/',
 * logged: mem://d/ names the folder d) or ASSET_E_NO_MEMORY (the store unchanged). */
ASSET_API int asset_mem_put(asset_server_t *s, const char *key, const void *data, size_t size);
/* Removes key, and its value's cache entries (handles keep their values); a load or folder
 * load made after it returned does not see it, as for asset_mem_put. Returns
 * ASSET_OK, ASSET_E_NOT_FOUND, ASSET_E_INVALID (NULL s or key) or ASSET_E_NO_MEMORY
 * (the key kept). Any thread. */
ASSET_API int asset_mem_remove(asset_server_t *s, const char *key);

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum asset_priority {
    ASSET_PRIORITY_HIGH = 1,
    ASSET_PRIORITY_NORMAL = 2,
    ASSET_PRIORITY_LOW = 3
} asset_priority_t;

struct asset_load_options {    /* NULL or zero: defaults */
    asset_priority_t priority; /* 0: NORMAL */
    bool no_cache;             /* fresh read, no cache lookup or write: it joins another
                                  no_cache load of the URI only while that one's read has
                                  not started (docs/loaders-and-caches.md, Coalescing).
                                  Its hot reloads write no cache either (unless a handle
                                  loaded without it reloads with it); they revalidate
                                  against the handle's own value and version. */
    uint32_t timeout_ms;       /* 0: none; else ASSET_E_TIMEOUT when exceeded */
    const char *tag;           /* for asset_server_cancel_tag; copied ("" is no tag) */
    const char *loader;        /* force a loader by name; copied */
    bool non_recursive;        /* load_folder: only the folder's own files */
    bool optional;             /* asset_parse_depend: failing does not fail the parent */
    /* file:// and bare paths: a file of at least config.map_threshold bytes may be
       mapped instead of read (zero-copy, see map_threshold). Opt-in, because a mapping
       shares the file with every other program: if the file is truncated while the
       value lives, touching the lost pages kills the process with SIGBUS (POSIX; Windows
       refuses to truncate a mapped file), and bytes written into the file in place show
       through the value (bytes appended do not: data[size] stays 0). Set it only for
       files that never change in place (replaced by rename, or not at all). On Windows
       a mapped file cannot change at all while the value lives: a rename over it fails
       (MoveFileEx: access denied) as does a save that truncates it (fopen "wb":
       ERROR_USER_MAPPED_FILE), so an editor cannot save an asset loaded so, hot reload
       or not, until the last handle and cache entry let the value go. The value
       is shared as usual: a load that joins this one in flight, and later cache hits,
       get the mapped value too. A reload (watch, asset_server_reload) of a URI with a
       live handle loaded so maps its new file too. pkg:// packages are immutable and
       mapped without it. */
    bool map_file;
};

/* Starts loading uri ("file:///abs", "rel/path", "pkg://name/path", "mem://key",
 * "http(s)://..."). "uri#label" yields the sub-asset `label` that the loader published
 * with asset_parse_add_labeled (the parse of uri is shared with every other load of
 * it); '#' starts the label in every URI, a literal '#' in a name is written %23. A
 * label is percent-decoded as a name is ("#Mesh%200" and "#Mesh 0" are the label
 * "Mesh 0"; a '%' or '#' in a label is %25 or %23), and the handle's URI writes it so.
 * A URI is at most 8192 bytes as written, its label included, and so is its normal form,
 * the handle's URI (longer: ASSET_E_INVALID, "URI too long").
 * Never fails synchronously: a bad URI gives a handle that is FAILED
 * at the next flush, with a message. Returns NULL only when the handle itself cannot
 * be allocated. The caller owns one reference: asset_handle_release() it. Any thread. */
ASSET_API asset_handle_t *asset_server_load(asset_server_t *s, const char *uri,
                                            const asset_load_options_t *o);

/* Background tasks (docs/guide.md, "Background tasks"). Runs fn(task, arg) on a worker
 * thread, in the same priority queue as loads (o->priority, o->tag, o->timeout_ms apply;
 * the other options are ignored). What fn sets with asset_task_set_value becomes the
 * handle's value when fn returns ASSET_OK; an error status fails the handle with the
 * message of asset_task_fail ("task://N: task: <message>"); a status that is no ASSET_E_*,
 * and ASSET_E_CANCELLED unless the task was cancelled (asset_task_cancelled() true), fail
 * it with ASSET_E_INVALID and that message, or one that says what fn returned (a task
 * waiting for a load another thread cancelled is no cancel). The handle's URI is "task://N"
 * (N counts from 1 per server). Cancel, wait, callbacks, cancel_tag, timeouts,
 * set_priority and destroy work as for loads: a task cancelled before it starts never
 * runs; one cancelled while it runs goes on until fn returns (poll asset_task_cancelled;
 * a wait of fn's for a handle or batch of this server then returns ASSET_E_CANCELLED)
 * and its value is then freed. free_arg(arg), if not NULL, is called exactly once when the
 * task is over (after fn returned, or when it will never run): on the flush thread by the
 * next flush (a budgeted one may leave it to a later one: asset_server_flush_budget), or
 * by destroy, without the server's lock, so it may call the library (release a handle it
 * holds, say), except destroy this server (refused, logged: ASSET_E_BUSY); it runs inside
 * that flush, as a completion callback does: a flush there is refused (logged) and a wait
 * for a handle not done returns ASSET_E_BUSY (in destroy: a wait returns ASSET_E_SHUTDOWN,
 * a flush delivers nothing, and a spawn or load gets a handle failed with
 * ASSET_E_SHUTDOWN, such a task's free_arg run in that destroy); only when the task itself
 * cannot be allocated is it called at once, on the calling thread (the handle then fails
 * with ASSET_E_NO_MEMORY). A NULL fn gives a handle that fails with ASSET_E_INVALID
 * ("invalid task: no function"), free_arg called as for a task that never runs. The
 * value is never cached. Returns NULL only when the handle
 * cannot be allocated (then free_arg is not called: arg stays the caller's); otherwise the
 * caller owns one reference. Any thread. */
typedef struct asset_task asset_task_t;
typedef asset_status_t (*asset_task_fn)(asset_task_t *t, void *arg);
ASSET_API asset_handle_t *asset_server_spawn(asset_server_t *s, asset_task_fn fn, void *arg,
                                             void (*free_arg)(void *arg),
                                             const asset_load_options_t *o);
/* The task API, inside fn (worker thread). Sets the result: value with its byte cost,
 * freed with free_fn(value, user) (NULL: asset_free) once no handle holds it: on the
 * flush thread at the next flush (config.wake says so), without the server's lock, so
 * it may release handles of the server, as free_arg may; in destroy, after every handle
 * was freed (touch none there; a spawn or load there is as in free_arg's destroy). A
 * value a task sets and does not hand over (a second call frees the first, unless it sets
 * that same value again, which only updates its cost and free; a failed or cancelled
 * task's) is freed where free_arg runs, or on the worker. */
ASSET_API void asset_task_set_value(asset_task_t *t, void *value, size_t cost_bytes,
                                    void (*free_fn)(void *value, void *user), void *user);
/* True once every handle of the task was cancelled (or timed out, or the server is
 * being destroyed): return soon, the result is not wanted. Any thread. */
ASSET_API bool asset_task_cancelled(const asset_task_t *t);
ASSET_API const char *asset_task_uri(const asset_task_t *t); /* "task://N" */
/* Records a message for the handle and returns st. */
ASSET_API asset_status_t asset_task_fail(asset_task_t *t, asset_status_t st, const char *fmt, ...)
    ASSET_PRINTF(3, 4);

/* ------------------------------------------------------------------------ */
/* Handles                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum asset_state {
    ASSET_STATE_PENDING,
    ASSET_STATE_LOADING,
    ASSET_STATE_LOADED,
    ASSET_STATE_FAILED,
    ASSET_STATE_CANCELLED
} asset_state_t;

/* Handle getters: any thread. Terminal states, the error and the value change only
 * inside flush (or a wait that flushes), so between two flushes they are stable.
 * PENDING becomes LOADING when a worker takes the job (any time). A flush that publishes
 * a reload replaces a LOADED handle's value, size, message and reload error and frees
 * the old ones after the reloaded callbacks: with hot reload, a thread other than the
 * flush thread reads those only while no flush runs (state and version: any time).
 * A NULL handle (a load that could not allocate its handle) reads as FAILED in every
 * getter: state FAILED, is_done true, error ASSET_E_INVALID, error_message "invalid
 * handle", uri "", value NULL, size 0, progress 0; wait returns
 * ASSET_E_INVALID; cancel, release, on_completed (returns 0) and disconnect do nothing. */
ASSET_API asset_state_t asset_handle_state(const asset_handle_t *h);
/* 0..1; bytes-based when the source told the size (its dependencies' bytes counted in,
 * once its parse declared them); below 1 until its result is decided; 1 once it loaded,
 * which may be before the flush that makes it LOADED (the value is readable only then:
 * wait for the state, not for 1); 0 when it failed or was cancelled. */
ASSET_API float asset_handle_progress(const asset_handle_t *h);
ASSET_API bool asset_handle_is_done(const asset_handle_t *h); /* LOADED, FAILED or CANCELLED */
/* ASSET_OK unless FAILED or CANCELLED (then ASSET_E_CANCELLED). */
ASSET_API asset_status_t asset_handle_error(const asset_handle_t *h);
/* "" unless FAILED or CANCELLED; then names the URI, the step and why. A LOADED handle
 * whose last reload failed (asset_handle_reload_error) says why it kept its value:
 * "reload failed: <uri>: <step>: <why>", until a reload succeeds. Borrowed: a FAILED or
 * CANCELLED h's lives as long as h; a LOADED h's only until a flush publishes its next
 * reload (which frees it, also while h lives): copy it to keep it. */
ASSET_API const char *asset_handle_error_message(const asset_handle_t *h);
ASSET_API const char *asset_handle_uri(const asset_handle_t *h); /* normalised; borrowed */
/* The loader's value (asset_bytes_t *, cJSON *, yours); NULL unless LOADED. Valid while
 * the handle lives, even after the cache evicts it, until a reload of h succeeds: the flush
 * that publishes it releases the old value after the reloaded callbacks (re-read it). */
ASSET_API const void *asset_handle_value(const asset_handle_t *h);
ASSET_API size_t asset_handle_size(const asset_handle_t *h); /* the value's byte cost */
/* HTTP status of the last response (200, 304, 404...), 0 when not HTTP, and 0 until
 * the handle is done (a flush delivered it). A FAILED load has the status of the final
 * answer whose headers came, whatever became of its body: 200 for a 200 whose body was
 * cut short, reset, stalled or too large; 0 when no answer came (refused, reset or timed
 * out before the status line, a malformed status, a redirect whose target did not
 * answer), on desktop and web alike. 0 when
 * CANCELLED, also when the cancel came after the response (before a flush delivered
 * it): the cancel discards the response with its value. */
ASSET_API int asset_handle_http_status(const asset_handle_t *h);
/* Waits until the handle is done. On the flush thread it flushes while it waits, so
 * it cannot deadlock; from another thread it blocks until a flush makes it done.
 * On the flush thread it sleeps until the handle has its result (or a finalize or
 * batch step needs a flush), then flushes once: other results that arrive meanwhile,
 * its dependencies' say, are delivered by that flush, in order, not one by one (and at
 * least every 2 ms while it waits, so their callbacks never wait for this handle).
 * timeout_ms -1: forever; 0, or any other negative value (what is left of a deadline
 * already past), no time: it returns at once (after one flush on the flush thread, and
 * running nothing) with the result, or ASSET_E_TIMEOUT. Returns the handle's error
 * (ASSET_OK when LOADED), or ASSET_E_TIMEOUT if the wait ran out first (the load goes
 * on), or ASSET_E_BUSY when called from a callback or a loader's finalize step (inside
 * a flush) before the handle is done, or inside a spawned task's fn on that task's own
 * handle (decided only once fn returns: it would wait for itself; also from a task that
 * fn's wait runs), or inside a loader's parse or a source's read on a load that joined
 * that very job (its own URI, with the same loader: the same), or on one that waits for
 * it through its dependencies (the asset that declared it, at any depth, or a label of
 * that: a required dependency only fails it, it never loads first), or through the waits
 * of parses and reads on other threads (two parses on two workers each waiting for the
 * other's asset, or a ring of more, through labels and batches too: the wait that would
 * close the ring is refused, the others go on; of two begun at once, one is; a task's
 * own wait looks only while a wait inside a job waits for that task, then as a parse's
 * does; a dependency that closes such a ring fails instead, asset_parse_depend;
 * ASSET_E_NO_MEMORY when memory for that search runs out before it can tell), or
 * ASSET_E_SHUTDOWN when asset_server_destroy begins first (a task's wait: destroy
 * joins the worker it runs on; a wait on another thread: destroy returns only after the
 * wait has, a callback its flush runs included, and h went with the server, so do not
 * release it then), or ASSET_E_CANCELLED inside a spawned task's fn once that task is
 * cancelled (asset_task_cancelled() true: a cancel, its tag's, its timeout; also when it
 * was before the wait began) and h, of the task's server, is not done: the load goes on,
 * the worker is given back (a wait for another server's handle is not ended so: wait
 * there with a timeout and poll asset_task_cancelled). The same inside a
 * loader's parse or a source's read or list once the load it runs for is cancelled
 * (each of its handles cancelled or timed out; a read's asset_request_cancelled() true),
 * as nobody wants its result any more: return that status. The wait holds a reference of its
 * own: a callback that its flushes fire may release the caller's.
 * Run-on-wait (timeout_ms != 0): while the load is still queued and reads from a
 * built-in source (file://, pkg://, mem://, http(s)://: its read only starts the
 * transfer, on the I/O thread), the waiting thread runs it itself
 * instead of sleeping until a worker has; once it parsed (or while its parse runs), the
 * same for the dependencies it declared that are still queued, and for theirs at any
 * depth (a dependency's parse the waiter ran declared them: with every worker held,
 * nothing else would), one at a time, depth first, each job and edge of the graph
 * looked at once (a dependency's parse running elsewhere: what it declares after the
 * walk passed it is left to the workers). They may
 * so run ahead of loads queued before them, and a wait with a timeout may return late
 * by one read and parse. Never a user source's read (it may wait for this very
 * thread), but on one of the server's workers (a wait inside a task, a parse or a
 * read): there any queued job of it, a spawned task's too. A load whose read is over
 * (a user ASYNC source's, HTTP's) has its parse left: any waiting thread runs it. Jobs so
 * run nest (a wait inside one runs the next...) at most 32 deep on a thread: deeper, a
 * wait that would have to run its job returns ASSET_E_BUSY (a stack's bound); one for
 * an HTTP read or a parse left, which a worker may run, sleeps until a worker has.
 * Web, single-threaded build (no -pthread, docs/web.md): the wait runs queued jobs
 * itself (also inside a parse or a task that a flush runs: the flush runs them before
 * it delivers anything); when what is left can only finish after the caller returns to
 * the JS event loop (a fetch, a timeout), it returns ASSET_E_BUSY at once instead of
 * spinning. */
ASSET_API asset_status_t asset_handle_wait(asset_handle_t *h, int64_t timeout_ms);
/* Cancels the load for this handle: it becomes CANCELLED at the next flush. The job
 * stops only when every handle sharing it has cancelled: a queued job leaves the
 * queue, a running read stops at its next progress check. No-op once done, and for a
 * dependency (asset_handle_dependency) once its parent has counted its result, even
 * before a flush delivers it: the parent's value may be built on it. */
ASSET_API void asset_handle_cancel(asset_handle_t *h);
/* Changes the priority of h's load. A queued job runs at the highest priority of its
 * live handles (coalesced loads share a job), so raising one handle raises the job and,
 * transitively, the queued dependencies it waits for; lowering one lowers the job only
 * as far as its other handles allow, and its dependencies as far as what else waits
 * for them allows (one declared with an o->priority of its own, or whose handle
 * (asset_handle_dependency) the program set, back to that, never below it). A loaded
 * handle's change applies to a reload of its asset in flight, which runs at the best
 * priority of the handles it reloads. A job a worker has started runs on where it is, but the
 * dependencies it declared (still queued) and those it declares from then on follow the
 * change. A queued job that finds no memory to move keeps its old priority
 * (asset_server_foreach_job says which; a later call tries again). Returns ASSET_OK,
 * or ASSET_E_INVALID (NULL handle, or p not HIGH, NORMAL or LOW). Any thread. */
ASSET_API asset_status_t asset_handle_set_priority(asset_handle_t *h, asset_priority_t p);
/* Adds a reference (release each one). Returns h; NULL for NULL. Any thread, callbacks too. */
ASSET_API asset_handle_t *asset_handle_retain(asset_handle_t *h);
/* Drops a reference. The load is not cancelled by a release: connected callbacks
 * still fire and the value still reaches the cache. Allowed inside callbacks.
 * Releasing more often than retained is a bug: while the handle still lives it is
 * ignored and logged (ASSET_LOG_ERROR); debug builds (NDEBUG unset) also recognise a
 * freed handle by its poisoned magic word and say so on stderr instead of touching it.
 * Inside a value's free (a loader's free_value, a label's free_fn: a value that holds
 * handles it loaded), which may run with the server's lock held, the release is only
 * counted, and done by the handle's server's next flush (its value freed there if it
 * was the last reference; config.wake is called), or dropped by its destroy, which frees
 * every handle anyway. It is the one call into the server a free_value may make. */
ASSET_API void asset_handle_release(asset_handle_t *h);

typedef void (*asset_handle_cb)(asset_handle_t *h, void *user);
/* Connects a callback that fires exactly once, on the flush thread, when the handle
 * is done; connected after done, it fires at the next flush. Returns an id (never 0),
 * or 0 when out of memory or cb is NULL (nothing is connected). */
ASSET_API uint64_t asset_handle_on_completed(asset_handle_t *h, asset_handle_cb cb, void *user);
/* Disconnects a callback that has not fired yet (a reloaded callback: that fires no
 * more). Returns whether it was connected. Called from another thread than the flush
 * thread, the callback may be running at that moment (callbacks run without the lock):
 * free what its user data points to on the flush thread, or after the next flush. */
ASSET_API bool asset_handle_disconnect(asset_handle_t *h, uint64_t id);
/* Hot reload. Connects a callback that fires at every reload attempt of this handle
 * that reaches a flush (on the flush thread; a failure told already does not: below),
 * until disconnected with asset_handle_disconnect() or the handle's last reference is
 * released (a reload decided before that and not yet published is dropped: no callback;
 * released by one of its reloaded callbacks, the ones after it do not fire; released on
 * another thread, one may be running, as for a disconnect). Only live
 * LOADED handles reload, never one loaded with a sha256 (a manifest entry's: its bytes
 * are pinned). A reload re-reads and re-parses in the background; at a flush the value
 * switches, the version bumps, the callbacks fire, and only then is the old value
 * released (re-read value pointers in the callback). A failed reload (parse error,
 * deleted file, HTTP error) keeps the old value and the LOADED state, sets
 * asset_handle_reload_error(), and fires the callbacks too, once: the same failure
 * again (same error and message, same version of the source: a polled URL that stays a
 * 500) fires nothing and logs nothing until the source or the error changes, or
 * asset_server_reload() asks. A file found in use (held open elsewhere without sharing)
 * is no failure yet: the reload is tried again for up to 3 s (50 ms, then doubling; a
 * change meanwhile joins it), and fails (ASSET_E_IO, "... in use ... (tried again for N
 * ms)") only if the file stays in use (the same for EAGAIN, also from Linux's openat2
 * when renames elsewhere outlast its tries: docs/hot-reload.md). A reloaded dependency
 * reloads the live assets that depend on it (dependencies' callbacks fire first), but
 * for one whose own reload loaded the new dependency already (the two changed
 * together): that one is published once. An asset reloads one reload at a time: a
 * change during one makes one more after it, which publishes nothing when the first had
 * read the change already. Of two results decided between two flushes the later is
 * published; an unchanged one (a 304, an unchanged file) publishes nothing, also after
 * a failed one, which is then not published either; after a failure already published,
 * it publishes the recovery: the callbacks fire with asset_handle_reload_error() OK and
 * the message cleared, the value and the version unchanged. Returns an id (never 0), 0
 * when out of memory or cb is NULL. Any thread. */
ASSET_API uint64_t asset_handle_on_reloaded(asset_handle_t *h, asset_handle_cb cb, void *user);
/* asset_handle_on_reloaded, and free_user(user) (not NULL) once the callback goes without
 * a disconnect: its handle freed (its last reference released), on the flush thread at
 * the server's next flush (config.wake is called; a budgeted one may leave some to the
 * next, asset_server_flush_budget); free_user may release handles. Not
 * after asset_handle_disconnect (the caller has user back then), nor in
 * asset_server_destroy (none is called there: what it drops is the caller's). So a
 * binding (the C++ wrapper) frees what it gave with the handle, not with the server. */
ASSET_API uint64_t asset_handle_on_reloaded_free(asset_handle_t *h, asset_handle_cb cb, void *user,
                                                 void (*free_user)(void *user));
/* The last reload attempt: ASSET_OK, or why the old value was kept (then
 * asset_handle_error_message() says more, while the state stays LOADED). A revalidation
 * that finds the held value current (a 304) after a failure makes it ASSET_OK again. */
ASSET_API asset_status_t asset_handle_reload_error(const asset_handle_t *h);
/* 0 until LOADED, then 1, +1 per published reload. Any thread, also while the flush
 * thread publishes (a thread may poll it to see reloads): it is written after the state
 * and value it numbers, so once it reads 1 the handle reads LOADED. */
ASSET_API uint64_t asset_handle_version(const asset_handle_t *h);
/* Reloads uri's live handles as if it had changed (a fresh read and parse, even when
 * the source says it is unchanged); works without config.watch (the first call then
 * starts an index of the handles of each URI, kept from then on: docs/hot-reload.md,
 * "What a reload costs"). Every live handle of
 * uri hears of it at a flush: its reloaded callbacks fire, with the new value or with
 * asset_handle_reload_error() saying why it kept the old one (ASSET_E_NO_MEMORY when
 * memory ran out on the way; then uri is matched as given, unnormalised, if it could
 * not even be normalised). Called while uri's reload runs, it makes one more fresh
 * reload after that one. A load of uri in flight whose read began before keeps what it
 * read (its handles reload once it has loaded), caches nothing, and no load made after
 * the call joins it. Any thread. */
ASSET_API void asset_server_reload(asset_server_t *s, const char *uri);

/* The dependencies the loader declared (asset_parse_depend), in its order: known once
 * the parse ran (while LOADING they may still grow), also on a cache hit. 0 for a
 * labeled load. Borrowed handles, valid while h lives (a reload's flush replaces them
 * with the value); retain one to keep it longer. A FAILED or CANCELLED h keeps the ones
 * it had (those not done are cancelled): which one failed can be looked up. Borrowed
 * through a dependency handle (its own dependencies), they are valid while it is
 * LOADING or LOADED. A LOADED h's dependencies read done (LOADED, or FAILED/CANCELLED
 * when optional), at any depth: also those a reloaded value brings, from the flush that
 * publishes it (their own callbacks may fire later in that flush, or the next). */
ASSET_API size_t asset_handle_dependency_count(const asset_handle_t *h);
ASSET_API asset_handle_t *asset_handle_dependency(const asset_handle_t *h, size_t i);
/* asset_handle_dependency(h, i) retained in the same critical section: a new reference
 * (release it), or NULL when i is out of range. On a thread other than the flush thread,
 * a flush publishing a reload of h may free the borrowed handle between
 * asset_handle_dependency() returning it and an asset_handle_retain() of it (a use after
 * free); this has no such gap. Any thread. */
ASSET_API asset_handle_t *asset_handle_dependency_retain(const asset_handle_t *h, size_t i);

/* ------------------------------------------------------------------------ */
/* Batches                                                                   */
/* ------------------------------------------------------------------------ */

/* A batch is a group of loads with counts, combined progress and callbacks. All batch
 * callbacks run on the flush thread. The caller owns one reference: release it. Like
 * handles, releasing a batch does not cancel it. Counts and children change only
 * inside flush (or a wait that flushes). The functions that make one return NULL only
 * when it cannot be allocated (or s is NULL); a NULL batch reads as a failed batch that
 * is done, as a NULL handle reads as FAILED: is_done true, error ASSET_E_INVALID,
 * error_message "invalid batch", progress 1, counts 0; wait returns ASSET_E_INVALID,
 * connects return 0, cancel and release do nothing. */

/* Loads every URI of the array (copied) as one batch; total is n at once. Child i is
 * uris[i]. Cheaper per child than n asset_server_load() calls: the children are made
 * 64 at a time, with about one lock round trip per 64. Any thread. */
ASSET_API asset_batch_t *asset_server_load_group(asset_server_t *s, const char *const *uris,
                                                 size_t n, const asset_load_options_t *o);
/* Lists the folder `uri` (file://, bare path, pkg://, mem://; recursive unless
 * o->non_recursive) on a worker, then loads every file in path order. The folder's URI
 * loses its trailing slashes (not an http(s) URL's): "mem://d/" is "mem://d", one listing
 * in flight, and the source's list() gets that. A folder has no label: a '#' in its URI
 * is a character of its name ("mem://d#x" lists d#x, as "mem://d%23x" does). total is 0
 * until the listing arrives; a failed listing fails the batch; an empty folder completes
 * with total 0.
 * The listing is sorted on the worker. Children are created 256 per step inside
 * flush, from the flush that delivers the listing on: asset_server_flush() takes every
 * step at once, asset_server_flush_budget() as many as its budget allows (at least
 * one: 256 children when the budget is spent), and the rest at the next flushes, so
 * total grows until every child exists.
 * A listing is complete or fails: a walk that cannot go on (out of descriptors or
 * memory, a readdir or stat I/O error, more than 64 directory levels) fails the
 * batch (E_IO or E_NO_MEMORY) with a message naming the entry and why. An entry that
 * cannot be stat'ed or a subdirectory that cannot be opened for a reason of its own
 * (permission denied, removed meanwhile) is still listed: its load fails and it
 * counts as a failed child. A folder reached through a symlink out of file_root or
 * out of its package is E_FORBIDDEN ("path escapes its root"). Windows: a name that is
 * not valid UTF-16 (an unpaired surrogate), which no URI can name, is left out. */
ASSET_API asset_batch_t *asset_server_load_folder(asset_server_t *s, const char *uri,
                                                  const asset_load_options_t *o);
/* Loads the JSON manifest `uri` ({"assets": [...]} or a bare array; entries are URI
 * strings or objects with "uri", "size" (bytes, 0 to 9e15: weights the progress, is
 * not checked against what loads; a fraction is cut), "priority", "loader",
 * "sha256"; of a key given twice in one object the first counts, the later is neither
 * used nor checked; a key that differs from one of these only by case ("Sha256") is
 * malformed, any other is ignored and logged, ASSET_LOG_WARN, once per manifest), then
 * every entry, relative ones resolved against the manifest's URI (over http, the URL a
 * redirect led to; asset_batch_value's too). A malformed manifest
 * fails the batch with a message naming the entry and loads nothing; a sha256
 * mismatch fails that entry with ASSET_E_INTEGRITY. The whole manifest is checked
 * when it arrives; its children are then created 256 per step inside flush, as a
 * folder's (total grows until every child exists). That check reads the manifest, not
 * what is registered: an entry's "loader" is looked up as its child is made (a loader
 * registered by then is used), and one no loader has fails that child alone
 * (ASSET_E_NO_LOADER, "<uri>: no loader named 'x'"), as a missing file or source would.
 * The batch keeps no handle of the manifest once it arrived: with watch, a later change
 * of it is not reloaded (nothing would use it: load the manifest again for its new
 * entries); a load of it of your own reloads as usual. */
ASSET_API asset_batch_t *asset_server_load_manifest(asset_server_t *s, const char *uri,
                                                    const asset_load_options_t *o);

/* The folder's or manifest's normalised URI ("" for groups). Borrowed. */
ASSET_API const char *asset_batch_uri(const asset_batch_t *b);
/* Counts: any thread; they change only inside flush. */
ASSET_API size_t asset_batch_total(const asset_batch_t *b);           /* children known so far */
ASSET_API size_t asset_batch_count(const asset_batch_t *b);           /* same as total */
ASSET_API size_t asset_batch_completed_count(const asset_batch_t *b); /* LOADED children */
ASSET_API size_t asset_batch_failed_count(const asset_batch_t *b);
ASSET_API size_t asset_batch_cancelled_count(const asset_batch_t *b);
/* 0..1, weighted by bytes when every child's size is known (listing or manifest
 * sizes), else by count; never goes backwards; exactly 1 once done. A child counts
 * in full once a flush delivered it; of the others, the first 64 in the batch's order
 * (where loads start, priorities aside) count their bytes in flight, the rest 0, so a
 * call costs the same for 50 children or 50,000 (call it every frame). */
ASSET_API float asset_batch_progress(const asset_batch_t *b);
/* Child i (0 <= i < count), borrowed: valid while the batch lives. */
ASSET_API asset_handle_t *asset_batch_handle(const asset_batch_t *b, size_t i);
/* True once the listing/manifest is in and every child is done (or the listing failed). */
ASSET_API bool asset_batch_is_done(const asset_batch_t *b);
/* Status of the listing or manifest: ASSET_OK even when children failed.
 * ASSET_E_CANCELLED when a cancel came before every entry had its child ("<uri>:
 * cancelled after N of M entries"; total is N), as when it came before the listing. */
ASSET_API asset_status_t asset_batch_error(const asset_batch_t *b);
ASSET_API const char *asset_batch_error_message(const asset_batch_t *b); /* "" unless failed */
/* Like asset_handle_wait: flushes on the flush thread; timeout_ms as its (-1: forever;
 * another negative value: no time, as 0). Returns asset_batch_error(),
 * or ASSET_E_TIMEOUT / ASSET_E_BUSY / ASSET_E_SHUTDOWN / ASSET_E_CANCELLED (inside a
 * cancelled task, or a parse or read of a cancelled load) as asset_handle_wait does
 * (BUSY also inside a parse, a read or a task whose own job a child joined, or waits for
 * through its dependencies or other threads' waits; also once a child made while it
 * waits is one of those, as a folder's and a manifest's are made, by flushes after the wait began:
 * a parse waiting for its own folder is refused once the folder's steps made its child).
 * It runs a folder's listing or the manifest while it is queued, then its children's
 * loads that are still queued from a built-in local source itself, in the batch's order,
 * and the dependencies their parses declared,
 * at any depth, as asset_handle_wait runs its handle's (run-on-wait); then a group's wait
 * sleeps until every child has a result and delivers them in one flush (item callbacks
 * fire then, in order), instead of waking per child. Other results queued meanwhile are
 * delivered at least every 2 ms, also while it runs loads. */
ASSET_API asset_status_t asset_batch_wait(asset_batch_t *b, int64_t timeout_ms);
/* The value of the child loaded from uri (as normalised, as written in the manifest,
 * or relative to the folder: a URI reference, else a file's name as listed, whose '%'
 * and '#' are its own); NULL unless that child is LOADED. Of several children of one
 * URI (the same URI twice in a group or manifest), the first LOADED one's. */
ASSET_API const void *asset_batch_value(const asset_batch_t *b, const char *uri);
/* Cancels the listing/manifest and every unfinished child; a folder or manifest not
 * done making its children makes no more (ASSET_E_CANCELLED: asset_batch_error). */
ASSET_API void asset_batch_cancel(asset_batch_t *b);
/* References, as for handles: the batch (and the handles it holds) lives until it is
 * done and released, or until asset_server_destroy(). Any thread. A release inside a
 * value's free (a free_value) is counted and done by the next flush, as a handle's
 * (asset_handle_release). Releasing more often than retained is a bug: while the batch
 * still lives it is ignored and logged (ASSET_LOG_ERROR), as for handles. */
ASSET_API asset_batch_t *asset_batch_retain(asset_batch_t *b);
ASSET_API void asset_batch_release(asset_batch_t *b);
/* Fires on the flush thread for each child that completes after the call. Returns an
 * id (0 when out of memory, or b or cb is NULL). */
ASSET_API uint64_t asset_batch_on_item_completed(
    asset_batch_t *b, void (*cb)(asset_batch_t *b, asset_handle_t *h, void *user), void *user);
/* Fires once on the flush thread when the batch is done; connected after done, it fires
 * at the next flush. Returns an id (0 when out of memory, or b or cb is NULL). */
ASSET_API uint64_t asset_batch_on_completed(asset_batch_t *b,
                                            void (*cb)(asset_batch_t *b, void *user), void *user);
/* Disconnects a batch callback that has not fired (done) or stops an item callback.
 * Returns whether it was connected. Any thread; called from another thread than the
 * flush thread, the callback may be running at that moment (callbacks run without the
 * lock): free what its user data points to on the flush thread, or after the next
 * flush. */
ASSET_API bool asset_batch_disconnect(asset_batch_t *b, uint64_t id);

#ifdef __cplusplus
}
#endif
#endif /* ASSET_SERVER_H */
