/* test_util.h - helpers shared by the test suites: temp dirs, files, a gated source
 * whose reads block until the test opens the gate, and a counting loader. */
#ifndef ASSET_TEST_UTIL_H
#define ASSET_TEST_UTIL_H

#include <asset_server.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tu_valgrind.h" /* RUNNING_ON_VALGRIND */

/* TU_TSAN: 1 in a ThreadSanitizer build, for tests that scale their loops down there. */
#if defined(__SANITIZE_THREAD__)
#define TU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TU_TSAN 1
#endif
#endif
#ifndef TU_TSAN
#define TU_TSAN 0
#endif

/* cmocka_run_group_tests(group, setup, teardown) for a suite's main: when the environment
 * variable TU_ONLY is set, only the tests whose names match it run (cmocka's glob, `*` and
 * `?`: TU_ONLY='*rename*'). tu_only_filter() applies it (main thread, before the run). */
#define TU_RUN_GROUP_TESTS(group, setup, teardown) \
    (tu_only_filter(), cmocka_run_group_tests(group, setup, teardown))
void tu_only_filter(void);

/* The source tree ($ASSET_TEST_SRCDIR, set by CTest), or "." when run by hand. */
const char *tu_srcdir(void);

/* A new empty directory under $TMPDIR (or /tmp); free() the result, tu_rmrf() it. */
char *tu_mkdtemp(void);
void tu_rmrf(const char *path);
/* dir + "/" + rel; free() it. */
char *tu_path(const char *dir, const char *rel);
/* Writes a file (parents created). Returns its full path; free() it. */
char *tu_write_file(const char *dir, const char *rel, const void *data, size_t n);
/* Writes n bytes of a repeating pattern. */
char *tu_write_pattern(const char *dir, const char *rel, size_t n);
/* Fails the test unless d holds tu_write_pattern's n bytes, then a 0 byte (a mapping's
 * or a read buffer's promise to loaders). */
void tu_expect_pattern(const void *d, size_t n);
/* Writes tu_write_pattern's n bytes to dir/rel, maps them (asset__file_map, the file
 * opened and closed around it) and returns the map's result; *path is the file's
 * (free() it), *data and *token what asset__unmap takes. */
int tu_map_pattern(const char *dir, const char *rel, size_t n, char **path, void **data,
                   void **token);
/* "file://" + path; free() it. */
char *tu_file_uri(const char *path);
/* A server with max_workers = workers, other settings default; asserts it was made. */
asset_server_t *tu_server(unsigned workers);
/* Blocks until at least n completions sit in the server's queue, without flushing them
 * (reads the server's internals under its lock). */
void tu_wait_queued(asset_server_t *s, size_t n);
/* Whether asset_server_destroy(s) has begun (on another thread; s is alive until it
 * returns): reads the server's internals under its lock. Any thread. */
bool tu_stopping(asset_server_t *s);
/* [s->lock held] Whether no reload runs, waits to be requested or is claimed (hot
 * reload's internals): a test settles on it before it counts or measures. */
bool tu_reloads_idle_locked(const asset_server_t *s);
/* Posts fn(arg) to s's I/O thread (asset__io_post; fn runs there). False: s has no I/O
 * thread (nothing needed one yet), nothing posted. Fails the test if the post fails. */
bool tu_io_post(asset_server_t *s, void (*fn)(void *arg), void *arg);

/* Loads uri and waits (flushing); fails the running cmocka test, naming the URI and
 * the message, unless the load ends with `want`. Returns the handle: release it. */
asset_handle_t *tu_load_wait(asset_server_t *s, const char *uri, asset_status_t want);
/* Asserts h's asset_bytes_t value is exactly the n bytes at data, NUL-terminated. */
void tu_expect_bytes(asset_handle_t *h, const void *data, size_t n);
/* The same for a C string. */
void tu_expect_text(asset_handle_t *h, const char *text);

/* Flushes until h is done (asset_handle_wait with a generous bound); returns status. */
asset_status_t tu_wait(asset_handle_t *h);
/* Waits for h (tu_wait) and fails the running cmocka test, naming the caller's file and
 * line, h's URI and what it ended as, unless the wait returned `want`, h is in `state`
 * and its message contains `part` (NULL: any message). */
#define tu_expect_end(h, want, state, part) \
    tu_expect_end_at(__FILE__, __LINE__, (h), (want), (state), (part))
void tu_expect_end_at(const char *file, int line, asset_handle_t *h, asset_status_t want,
                      asset_state_t state, const char *part);

/* Spins (yielding the CPU) until cond holds, for a state another thread reaches with no
 * API to wait on; fails the running cmocka test at the caller's line, naming cond, if it
 * does not hold within a generous deadline (TU_SPIN_MS) instead of spinning for ever. */
#define TU_SPIN_MS 60000
#define TU_SPIN_UNTIL(cond)                                                            \
    do {                                                                               \
        uint64_t tu_spin_end_ = uv_hrtime() + (uint64_t)TU_SPIN_MS * 1000000u;         \
        while (!(cond)) {                                                              \
            if (uv_hrtime() > tu_spin_end_) tu_spin_failed(__FILE__, __LINE__, #cond); \
            tu_os_yield();                                                             \
        }                                                                              \
    } while (0)
void tu_spin_failed(const char *file, int line, const char *cond);
/* Flushes s (on the calling thread, the server's main thread) until cond holds, with
 * TU_SPIN_UNTIL's deadline (no flush once it holds): for a chain of callbacks that each
 * flush moves one step. */
#define TU_FLUSH_UNTIL(s, cond) TU_SPIN_UNTIL((cond) || (asset_server_flush(s), (cond)))
/* Waits on the condition variable cv (its mutex mu held by the caller) until cond
 * holds; fails the running test as TU_SPIN_UNTIL does after TU_SPIN_MS. */
#define TU_WAIT_UNTIL(cond, cv, mu)                                                     \
    do {                                                                                \
        uint64_t tu_wait_end_ = uv_hrtime() + (uint64_t)TU_SPIN_MS * 1000000u;          \
        while (!(cond)) {                                                               \
            uint64_t tu_wait_now_ = uv_hrtime();                                        \
            if (tu_wait_now_ > tu_wait_end_) tu_spin_failed(__FILE__, __LINE__, #cond); \
            (void)uv_cond_timedwait((cv), (mu), tu_wait_end_ - tu_wait_now_);           \
        }                                                                               \
    } while (0)

/* A source (scheme given) whose reads block until the gate opens, or until the
 * request is cancelled. Each read delivers the request path as bytes, and "fail/..."
 * paths fail with ASSET_E_IO. */
/* A loader's parse that waits until the test opens its gate (the read is over then):
 * register a loader with .parse = tu_gated_parse, .free_value = tu_gated_free and the
 * gate as its ctx (mu and cond initialised by the test). Each parse counts itself in
 * `entered` (broadcast on cond), waits for `open`, and makes a NUL-terminated copy of
 * the bytes its value. */
typedef struct tu_parse_gate {
    uv_mutex_t mu;
    uv_cond_t cond;
    int entered;
    bool open;
} tu_parse_gate_t;
asset_status_t tu_gated_parse(void *ctx, asset_parse_t *p);
void tu_gated_free(void *ctx, void *value);
/* Initialises g (closed, nothing entered) and registers on s the loader "gated" for
 * ".gated" with g as its ctx (tu_gated_parse, tu_gated_free). The test destroys g
 * (tu_parse_gate_destroy) after the server. */
void tu_parse_gate_register(asset_server_t *s, tu_parse_gate_t *g);
/* Test thread: blocks until at least n parses have entered g (the read of each is over);
 * fails the running test after TU_SPIN_MS. */
void tu_parse_gate_wait_entered(tu_parse_gate_t *g, int n);
/* Any thread: opens g, releasing the parses in it and letting later ones through. */
void tu_parse_gate_open(tu_parse_gate_t *g);
/* Destroys g's mu and cond, after the server that used it. */
void tu_parse_gate_destroy(tu_parse_gate_t *g);

/* A loader's parse whose value is a NUL-terminated copy of its text (asset_alloc: the
 * default free_value), and which declares a first line "dep X" as a dependency, noting
 * that handle's URI in ctx (a char[512]). */
asset_status_t tu_dep_note_parse(void *ctx, asset_parse_t *p);

typedef struct tu_gate tu_gate_t;
tu_gate_t *tu_gate_register(asset_server_t *s, const char *scheme);
/* Blocks until at least n reads have entered the source (in total); aborts the test
 * program after 60 s. */
void tu_gate_wait_entered(tu_gate_t *g, int n);
/* The same, for at most ms milliseconds; true when n entered. */
bool tu_gate_wait_entered_for(tu_gate_t *g, int n, unsigned ms);
int tu_gate_entered(tu_gate_t *g);
int tu_gate_cancelled_seen(tu_gate_t *g); /* reads that returned because of cancel */
void tu_gate_open(tu_gate_t *g);
/* Free after the server is destroyed. */
void tu_gate_free(tu_gate_t *g);

/* A loader that counts parse and free_value calls; its value is a heap copy of the
 * bytes (asset_alloc), its cost the size. claims URIs ending in `suffix`. */
typedef struct tu_counter {
    int parses; /* atomically updated */
    int frees;
    int fail_parse; /* when set, parse fails with ASSET_E_PARSE */
} tu_counter_t;
int tu_counting_loader_register(asset_server_t *s, const char *name, const char *suffix,
                                tu_counter_t *c, size_t budget);
int tu_counter_parses(tu_counter_t *c);
int tu_counter_frees(tu_counter_t *c);

/* A copy of n bytes of s, NUL-terminated, from asset_alloc (values loaders hand out). */
char *tu_asset_strndup(const char *s, size_t n);
/* Copies the line at *cursor (without its '\n', cut to cap - 1) into line and moves the
 * cursor past it. Returns false at the end of the text. For test loaders' line formats. */
bool tu_next_line(const char **cursor, char *line, size_t cap);
/* Splits line in place at single spaces into at most max words (no strtok: loaders run
 * on several threads); a word "-" becomes NULL. Returns how many; *nonnull: how many
 * of them are not NULL. For test loaders' "deps URI URI..." lines. */
size_t tu_split_words(char *line, const char **words, size_t max, size_t *nonnull);

#endif /* ASSET_TEST_UTIL_H */
