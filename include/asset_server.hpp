/*
 * asset_server.hpp - a C++17 header-only wrapper over asset_server.h.
 *
 * TL;DR
 *
 *     asset::Server server;                                    // defaults
 *     asset::Handle h = server.load("pkg://game/hero.json");
 *     h.on_completed([&](asset::Handle &done) {                // any callable; runs in flush
 *         if (auto *json = done.value<cJSON>()) use(json);
 *         else log(done.error_message());                      // errors are values
 *     });
 *     while (running) { server.flush(); render(); }            // your frame loop
 *
 * Ownership. asset::Server, asset::Handle and asset::Batch share one control block that
 * owns the C server: the C server is destroyed when the last of them goes, so a Handle
 * or Batch may outlive every Server object. Copying a Server shares the same server;
 * copying a Handle or Batch retains it, destroying one releases it; moves transfer.
 * A default-constructed or moved-from object is empty: operator bool is false and it
 * reads as the C API reads a NULL pointer (a Handle is FAILED, "invalid handle").
 *
 * Callbacks. on_completed / on_item_completed / on_reloaded take any callable (lambda with
 * captures, function object, function pointer). The wrapper owns a copy in a heap box and
 * destroys it exactly once: after it fired (handle and batch-completion callbacks), when
 * it is disconnected (handle and batch-completion callbacks: at once; on_reloaded: at the
 * next flush, on the flush thread, as a flush on another thread may be about to call it,
 * or at once from inside a callback of its server), when the batch is
 * done (item callbacks: they cannot fire any more; a disconnected item callback is also
 * kept until then, because a flush on another thread may be inside it), at the first
 * flush after its handle went (on_reloaded), or when the C server is destroyed, whichever
 * comes first. Callables run on the flush thread like the C callbacks and must not throw
 * (the trampolines are noexcept). A callable that captures a Handle, Batch or Server of
 * its own server keeps that server alive until it is destroyed (an item or on_reloaded
 * callable: after it fired, too).
 * An exception out of a loader's parse() or finalize(), a source's read() or list(), or
 * a spawned task fails that load instead (std::bad_alloc: ASSET_E_NO_MEMORY; another:
 * ASSET_E_PARSE from parse, else ASSET_E_IO, the message saying what() it threw). One
 * out of a loader's claims() fails nothing: that loader does not claim the URI (the next
 * loader is asked). free_value() is noexcept. Compile every file of a program that
 * includes this header in one exception mode (docs/cxx.md: mixed, the linker may keep
 * the -fno-exceptions trampolines for a loader that throws).
 *
 * Loaders and sources as classes. Derive from asset::Loader (or asset::TypedLoader<T>
 * whose values are `new T`) or asset::Source, override parse() / read() (and list()),
 * and register a std::shared_ptr with Server::add_loader / add_source. The server keeps a
 * reference until the C library calls the vtable's destroy (server destroy, or a source
 * replaced by a later registration of its scheme).
 *
 * Errors are values: functions return asset_status_t, loads return a Handle that carries
 * its error code and message. With exceptions enabled, Handle::value_or_throw<T>()
 * throws asset::Error; nothing else throws except std::bad_alloc from the standard
 * library.
 *
 * Needs C++17. Strings go in as std::string_view and are copied (NUL-terminated) before
 * the C call. Every function may be called from any thread, as its C counterpart.
 * Connecting a callback holds the wrapper's lock while the C call may invoke
 * config.wake: a wake hook must only signal the flushing thread (as the C header asks),
 * never connect or disconnect callbacks itself.
 */
#ifndef ASSET_SERVER_HPP
#define ASSET_SERVER_HPP

#include <asset_server.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#include <exception>
#include <new>
#include <stdexcept>
#define ASSET_SERVER_HPP_EXCEPTIONS 1
#endif
/* Whether this build can start a thread: not a single-threaded Emscripten build (no
 * -pthread), where std::thread aborts, and where the server has no worker either (its
 * jobs run in the flush). There no server is handed to the Reaper (Core::release). */
#if defined(__EMSCRIPTEN__) && !defined(__EMSCRIPTEN_PTHREADS__)
#define ASSET_SERVER_HPP_THREADS 0
#else
#define ASSET_SERVER_HPP_THREADS 1
#endif
/* Whether a thread made may never start: Emscripten's pthreads, where a thread made past
 * its pool of Web Workers starts only once the main thread returns to its event loop
 * (docs/web.md), which a program that blocks until its end never does. */
#if defined(__EMSCRIPTEN_PTHREADS__)
#define ASSET_SERVER_HPP_LATE_THREADS 1
#else
#define ASSET_SERVER_HPP_LATE_THREADS 0
#endif

namespace asset {

class Server;
class Handle;
class Batch;

namespace detail {

/* A timeout as the C API takes it. milliseconds::rep is a signed type of at least 45
 * bits, int64_t on some platforms and long long on others: converted without a cast,
 * which g++ -Wuseless-cast flags where the two are the same type. Forever (the waits'
 * default, milliseconds::max()) is -1; a negative one is no time left (0), as for
 * std::condition_variable::wait_for: passed on, the C API took it as -1, so a wait for
 * what was left of a deadline already past (a late frame's) waited for ever (a review). */
template <class Rep, class Period>
inline int64_t to_ms(std::chrono::duration<Rep, Period> timeout) {
    /* Any duration (what is left of a steady_clock deadline is nanoseconds: only
     * milliseconds were taken, and that did not compile, a review): a finer one rounded up
     * (wait_for waits at least its time: 1 ns is 1 ms, not "no time"); one past what
     * milliseconds hold (a 64-bit hours::max(), a double's) is for ever, not an overflow. Measured
     * as a double first: NaN and any negative are no time left. */
    const double d = std::chrono::duration<double, std::milli>(timeout).count();
    if (!(d > 0)) return 0;
    if (d >= static_cast<double>(std::chrono::milliseconds::max().count())) return -1;
    const std::chrono::milliseconds ms = std::chrono::ceil<std::chrono::milliseconds>(timeout);
    if (ms == std::chrono::milliseconds::max()) return -1;
    return ms.count();
}

/* A std::string_view as printf's "%.*s" takes it: a default one's data() is NULL, which
 * "%.*s" may not be given even for 0 bytes (C11 7.21.6.1), and a size past INT_MAX does
 * not fit its int (cut there). */
inline int fmt_len(std::string_view s) noexcept {
    return s.size() > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(s.size());
}
inline const char *fmt_data(std::string_view s) noexcept { return s.data() ? s.data() : ""; }

/* One heap box per connected callable; linked into its Core so that the boxes whose
 * callback never fires are deleted when the C server is destroyed. */
struct CallbackBox {
    CallbackBox *prev = nullptr, *next = nullptr;
    struct Core *core = nullptr;
    uint64_t id = 0;      /* the C id the user sees (item callbacks: the item id) */
    uint64_t done_id = 0; /* item callbacks: the internal batch-done callback's id */
    bool item = false;    /* a batch item callback (deleted only on the flush thread) */
    std::atomic<bool> silenced{false}; /* item callbacks: disconnected, do not call */
    asset_batch_t *batch = nullptr;    /* item callbacks: the batch they belong to */
    bool firing = false;               /* [lock] reload callbacks: inside the callable */
    bool gone = false;                 /* [lock] reload callbacks, disconnected: while firing,
                                          the trampoline destroys it once the callable
                                          returned; else a flush does (retire_later) */
    CallbackBox *hnext = nullptr;      /* the next box in its Core::by_id bucket */
    uint64_t key = 0;                  /* the id it is filed under there (0: not filed) */
    bool reloads = false;              /* a reload callback (stays listed while it fires) */
    CallbackBox *later = nullptr;      /* [lock] reload callbacks, gone: the next in the chain
                                          one retire_later frees (Core::stranded) */
    virtual ~CallbackBox() = default;
};

/* Boxes that Core::find() looked at on this thread (tests count them: one per find). */
inline thread_local uint64_t tl_find_looks = 0;

struct Core;
inline void retire_later(asset_handle_t *, void *box) noexcept;
/* The Core whose callable this thread runs inside that server's flush (a callback, a
 * task's argument freed): destroying that server from there is refused by the C library,
 * so its boxes must stay (they may still fire). */
inline thread_local const Core *tl_in_flush = nullptr;

/* The Core whose callable this thread runs for one of its jobs (a task, a source's read()
 * or list(), a loader's parse()): on a worker or I/O thread of that server, or a thread
 * running the job for its wait; or whose loader's free_value() this thread runs (any
 * thread, maybe under that server's lock). Its last share dropped here goes to the Reaper
 * (a destroy is refused on the server's own threads, and would wait for that lock). */
inline thread_local const Core *tl_on_worker = nullptr;

/* Sets one of the markers above for a scope, and puts back the one before. */
struct Mark {
    const Core *&slot;
    const Core *prev;
    Mark(const Core *&marker, const Core *c) noexcept : slot(marker), prev(marker) { slot = c; }
    ~Mark() { slot = prev; }
    Mark(const Mark &) = delete;
    Mark &operator=(const Mark &) = delete;
};

/* The control block: owns the C server; shared by every Server, Handle and Batch. */
struct Core : std::enable_shared_from_this<Core> {
    asset_server_t *s = nullptr;
    std::mutex lock; /* guards the box list. Order: lock, then the C server's lock */
    CallbackBox *boxes = nullptr;
    /* [lock] the boxes by id, chained through hnext (a power of two of buckets, at least
     * twice the boxes filed): disconnect finds one in O(1), not by walking every box of
     * the server (10,000 disconnects of 40,000 callbacks took seconds) */
    std::vector<CallbackBox *> by_id;
    size_t filed = 0;
    /* [lock] disconnected reload callables waiting for a completion callback to free them
     * at a flush (retire_later), chained through later: none could be connected (out of
     * memory). Such a callable stayed until the C server went (a review); the next connect
     * or disconnect on a handle of this server tries again (free_stranded). */
    CallbackBox *stranded = nullptr;

    explicit Core(asset_server_t *server) : s(server) {}
    Core(const Core &) = delete;
    Core &operator=(const Core &) = delete;
    /* The shared_ptr's deleter. Inside its own flush the C server cannot be destroyed:
     * there the Core is left as it is, with its boxes and its server (a leak; the
     * trampolines and a task's frees park the last share instead, park_if_last), and the
     * callbacks later in that flush find it expired and do not run. Freed there, its boxes
     * still fired into it. Inside one of its jobs' callables (a task, a source's read, a
     * loader's parse), on its worker, or a loader's free_value, it goes to the Reaper,
     * which destroys it once that callable returned. */
    static void release(Core *c) noexcept;
    ~Core() {
        asset_server_destroy(s); /* no callback fires during or after it (NULL: done) */
        CallbackBox *b = boxes;
        boxes = nullptr;
        while (b) {
            CallbackBox *next = b->next;
            delete b;
            b = next;
        }
    }
    /* [lock] */
    void link(CallbackBox *b) {
        b->core = this;
        b->prev = nullptr;
        b->next = boxes;
        if (boxes) boxes->prev = b;
        boxes = b;
    }
    /* [lock] */
    void unlink(CallbackBox *b) {
        if (b->prev)
            b->prev->next = b->next;
        else
            boxes = b->next;
        if (b->next) b->next->prev = b->prev;
        b->prev = b->next = nullptr;
        if (b->key) { /* out of by_id too */
            CallbackBox **p = &by_id[bucket(b->key)];
            while (*p != b) p = &(*p)->hnext;
            *p = b->hnext;
            b->hnext = nullptr;
            b->key = 0;
            filed--;
        }
    }
    /* [lock] by_id has room to file one more box; false when out of memory. Called
     * before the C connect, so that filing after it cannot fail. */
    bool make_room() noexcept {
        if (2 * (filed + 1) <= by_id.size()) return true;
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
        try {
#endif
            std::vector<CallbackBox *> old(by_id.size() ? 2 * by_id.size() : 16, nullptr);
            old.swap(by_id);
            for (CallbackBox *b : old)
                while (b) {
                    CallbackBox *next = b->hnext;
                    CallbackBox *&head = by_id[bucket(b->key)];
                    b->hnext = head;
                    head = b;
                    b = next;
                }
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
        } catch (...) { /* no memory: by_id is as it was */
            return false;
        }
#endif
        return true;
    }
    /* [lock] after make_room() */
    void file(CallbackBox *b, uint64_t id) noexcept {
        b->key = id;
        CallbackBox *&head = by_id[bucket(id)];
        b->hnext = head;
        head = b;
        filed++;
    }
    /* [lock] */
    CallbackBox *find(uint64_t id) {
        if (!id || by_id.empty()) return nullptr;
        for (CallbackBox *b = by_id[bucket(id)]; b; b = b->hnext) {
            ++tl_find_looks;
            if (b->key == id) return b;
        }
        return nullptr;
    }
    /* [lock] Frees the stranded callables at a flush: a completion callback on h (any
     * handle of this server; one connected to a done handle fires at the next flush, one
     * to a pending handle when it completes) frees the chain. Safe on any handle: a flush
     * that took one of them to call it (before its disconnect) runs on one thread, calls
     * it (which finds it gone) before it fires anything else, and cannot take it again. */
    void free_stranded(asset_handle_t *h) noexcept {
        if (stranded && asset_handle_on_completed(h, &retire_later, stranded)) stranded = nullptr;
    }
    size_t bucket(uint64_t id) const noexcept {
        return std::hash<uint64_t>{}(id) & (by_id.size() - 1);
    }
    /* A fired or disconnected box: unlink under the lock, destroy the callable outside. */
    void retire(CallbackBox *b) {
        {
            std::lock_guard<std::mutex> g(lock);
            unlink(b);
        }
        delete b;
    }
};

/* A trampoline's share that is the last one, inside its server's own flush, where the C
 * server cannot be destroyed: kept here until this thread ends, so that the callbacks
 * later in that flush still fire into a live Core (Core::release leaves the Core when
 * another thread's share goes at the same moment, or a task's on a worker). */
inline thread_local std::vector<std::shared_ptr<Core>> tl_parked;
inline void park_if_last(std::shared_ptr<Core> &keep) noexcept {
    /* inside one of its tasks (a value replaced there): parked in the worker's tl_parked,
     * it lived as long as the worker, that is for good; dropped, it goes to the Reaper */
    if (!keep || keep.use_count() != 1 || tl_on_worker == keep.get()) return;
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
    try {
        tl_parked.push_back(std::move(keep));
    } catch (...) { /* no memory: Core::release leaves it */
    }
#else
    tl_parked.push_back(std::move(keep)); /* without exceptions no memory ends the process */
#endif
}

/* Destroys a box on the flush thread, where no callback of its server is being called:
 * its callable may hold the last share (parked). */
inline void retire_on_flush_thread(CallbackBox *box) noexcept {
    Core *core = box->core;
    Mark in(tl_in_flush, core);
    std::shared_ptr<Core> keep = core->weak_from_this().lock();
    if (!keep) return; /* its last share went earlier in this flush: left (release) */
    core->retire(box);
    park_if_last(keep);
}
/* A completion callback, connected when a reload callable was disconnected off the flush
 * thread (Core::free_stranded): it fires at a flush, after any call the C side was making,
 * and frees that callable and the ones chained to it (later). */
inline void retire_later(asset_handle_t *, void *box) noexcept {
    for (auto *b = static_cast<CallbackBox *>(box); b;) {
        CallbackBox *next = b->later; /* read before b goes */
        retire_on_flush_thread(b);    /* its Core expired: left, linked, for ~Core */
        b = next;
    }
}

/* Cores whose last share went where the C server refused its destroy though no
 * callable of theirs runs (a C callback of the server, on a handle of it, deleting the
 * last Server during a C flush): each is left, expired, with its callables (a later
 * callback of that flush finds it expired and does not run), and deleted, its server
 * destroyed, when this thread ends (~Orphans). Deleted there, a later callback of the
 * flush fired into a freed callable (a review). */
struct Orphans {
    std::vector<Core *> cores;
    ~Orphans() {
        for (Core *c : cores) delete c;
    }
};
inline thread_local Orphans tl_orphans;

/* Cores whose last share went inside a callable of one of their own jobs, on the worker
 * running it (a task, a source's read() or list(), a loader's parse() dropped a Server it
 * held, or a task's value holding one was replaced there), or in a loader's free_value()
 * (a cached value holding one, evicted under the server's lock): the C server refuses a
 * destroy on its own worker (or waits for that lock), and no share is left to flush or
 * destroy it, so it was left for good, its threads and callables with it (reviews). A
 * thread of the wrapper's own, started on first need, destroys each (Core::release): its
 * destroy waits for that callable to return, as any destroy does. At process end (static
 * destruction) it destroys what is left and is joined: a task that never returns hangs
 * the exit there, as it would hang any destroy. Its state is never freed: a Core may come
 * after that end (a static object made before the Reaper is destroyed after it, and may
 * let a last share go on a worker then); each such one gets a thread of its own, let go
 * (the Reaper's freed state was used there, and the server never destroyed: a review). */
class Reaper {
  public:
    static void take(Core *c) noexcept {
        State &st = state();
        {
            std::lock_guard<std::mutex> g(st.lock);
            if (!st.ended) {
                get(); /* made on first need: its end, at process end, joins the thread */
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
                try {
                    st.cores.push_back(c);
                    if (!st.thread.joinable()) st.thread = std::thread(run, &st);
                } catch (...) { /* no memory or thread: c is left (a leak), or for the end */
                }
#else
                st.cores.push_back(c);    /* without exceptions no memory ends the process */
                if (!st.thread.joinable()) st.thread = std::thread(run, &st);
#endif
                st.cv.notify_one();
                return;
            }
        }
        /* after the Reaper's end (static destruction): a thread for this one, let go */
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
        try {
            std::thread([c] { Core::release(c); }).detach();
        } catch (...) { /* no thread: c is left (a leak) */
        }
#else
        std::thread([c] { Core::release(c); }).detach();
#endif
    }
    /* Joins the thread, which destroys what is left. On the web (pthreads) a thread made
     * past the pool of Web Workers has not started if the main thread never returned to
     * its event loop since, and never will: joined, it hung the program's end. Such a
     * thread is let go and what is left is destroyed here (it may yet start: it finds
     * stop and nothing to do). */
    ~Reaper() {
        State &st = state();
        std::vector<Core *> left;
        bool started = true;
        std::thread t;
        {
            std::lock_guard<std::mutex> g(st.lock);
            st.stop = true;
            st.ended = true; /* later takes start threads of their own */
            if (ASSET_SERVER_HPP_LATE_THREADS && !st.started) {
                started = false;
                left.swap(st.cores);
            }
            t.swap(st.thread);
        }
        st.cv.notify_one();
        if (t.joinable()) {
            if (started)
                t.join();
            else
                t.detach();
        }
        for (Core *c : left) Core::release(c); /* this thread is none of their servers' */
    }

  private:
    struct State {
        std::mutex lock;
        std::condition_variable cv;
        std::vector<Core *> cores;
        std::thread thread;
        bool stop = false;
        bool started = false; /* run() began */
        bool ended = false;   /* ~Reaper ran */
    };
    Reaper() = default;
    static Reaper &get() {
        static Reaper r;
        return r;
    }
    /* Never freed (with exceptions, no memory here ends the process) */
    static State &state() {
        static State *st = new State;
        return *st;
    }
    static void run(State *st) noexcept;
};

inline void Core::release(Core *c) noexcept {
    if (tl_on_worker == c && ASSET_SERVER_HPP_THREADS) {
        /* on its own worker: destroyed once the callable returned. Single-threaded (the
         * web without -pthread), a task runs inside a flush: as any share dropped there */
        Reaper::take(c);
        return;
    }
    if (tl_in_flush == c) return;
    if (c->s && asset_server_try_destroy(c->s) != ASSET_OK) { /* refused (logged) */
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
        try {
            tl_orphans.cores.push_back(c);
        } catch (...) { /* no memory: left for good, as the header says (a leak) */
        }
#else
        tl_orphans.cores.push_back(c); /* without exceptions no memory ends the process */
#endif
        return;
    }
    c->s = nullptr; /* destroyed: ~Core deletes the callables */
    delete c;
}

inline void Reaper::run(State *st) noexcept {
    std::unique_lock<std::mutex> g(st->lock);
    st->started = true;
    for (;;) {
        st->cv.wait(g, [st] { return st->stop || !st->cores.empty(); });
        if (st->cores.empty()) return; /* stopping, nothing left */
        Core *c = st->cores.back();
        st->cores.pop_back();
        g.unlock();
        Core::release(c); /* not a thread of that server: its destroy is not refused */
        g.lock();
    }
}

inline std::string str(std::string_view v) { return std::string(v.data(), v.size()); }

inline std::string_view view(const char *s) { return s ? std::string_view(s) : std::string_view(); }

/* Calls a handle callback as f(Handle &) or f(). */
template <class F, class H> inline void call_handle_cb(F &f, H &h) {
    if constexpr (std::is_invocable_v<F &, H &>)
        f(h);
    else
        f();
}

/* Calls an item callback as f(Batch &, Handle &), f(Handle &) or f(). */
template <class F, class B, class H> inline void call_item_cb(F &f, B &b, H &h) {
    if constexpr (std::is_invocable_v<F &, B &, H &>)
        f(b, h);
    else if constexpr (std::is_invocable_v<F &, H &>)
        f(h);
    else
        f();
}

template <class T> struct is_std_function : std::false_type {};
template <class R, class... A> struct is_std_function<std::function<R(A...)>> : std::true_type {};
/* A callable that cannot be called: a null function pointer or an empty std::function. The
 * C API refuses a NULL callback or task function; boxed, it was called in the flush (SIGSEGV,
 * or std::bad_function_call out of a noexcept trampoline) or on a worker (a review). */
template <class F> inline bool is_null_callable(const F &f) noexcept {
    using D = std::decay_t<F>;
    if constexpr (std::is_pointer_v<D> || is_std_function<D>::value) {
        const D &p = f;
        return !static_cast<bool>(p);
    } else {
        (void)f;
        return false;
    }
}

template <class F> struct HandleCallback;
template <class F> struct ReloadCallback;
template <class F> struct BatchItemCallback;
template <class F> struct BatchDoneCallback;

} // namespace detail

/* ------------------------------------------------------------------------ */
/* Handle                                                                    */
/* ------------------------------------------------------------------------ */

/* One load. Copy = asset_handle_retain, destructor = asset_handle_release (which, as in
 * C, does not cancel: callbacks still fire). */
class Handle {
  public:
    Handle() noexcept = default;
    Handle(const Handle &o) noexcept
        : core_(o.core_), h_(o.h_ ? asset_handle_retain(o.h_) : nullptr) {}
    Handle(Handle &&o) noexcept : core_(std::move(o.core_)), h_(o.h_) { o.h_ = nullptr; }
    Handle &operator=(const Handle &o) noexcept {
        if (this != &o) {
            Handle tmp(o);
            swap(tmp);
        }
        return *this;
    }
    Handle &operator=(Handle &&o) noexcept {
        if (this != &o) {
            Handle tmp(std::move(o));
            swap(tmp);
        }
        return *this;
    }
    ~Handle() { reset(); }

    /* Releases the handle now (the object becomes empty). */
    void reset() noexcept {
        if (h_) asset_handle_release(h_); /* before the core: it may destroy the server */
        h_ = nullptr;
        core_.reset();
    }
    void swap(Handle &o) noexcept {
        std::swap(core_, o.core_);
        std::swap(h_, o.h_);
    }

    explicit operator bool() const noexcept { return h_ != nullptr; }
    asset_state_t state() const { return asset_handle_state(h_); }
    float progress() const { return asset_handle_progress(h_); }
    bool done() const { return asset_handle_is_done(h_); }
    bool loaded() const { return state() == ASSET_STATE_LOADED; }
    asset_status_t error() const { return asset_handle_error(h_); }
    /* Borrowed from the handle: valid while this object holds it, but a LOADED handle's
     * (a failed reload's "reload failed: ...") only until a flush publishes its next reload,
     * which frees it: copy it (std::string) to keep it. uri() lives as long as the handle. */
    std::string_view error_message() const { return detail::view(asset_handle_error_message(h_)); }
    std::string_view uri() const { return detail::view(asset_handle_uri(h_)); }
    /* nullptr unless LOADED. T is the loader's value type (asset_bytes_t, cJSON, yours).
     * Valid while this object holds the handle, until a reload of it succeeds: that flush
     * frees the old value after the on_reloaded callables (read it again there). */
    template <class T> const T *value() const {
        return static_cast<const T *>(asset_handle_value(h_));
    }
    size_t size() const { return asset_handle_size(h_); }
    int http_status() const { return h_ ? asset_handle_http_status(h_) : 0; }
    /* asset_handle_wait: ASSET_OK when loaded, the error, or ASSET_E_TIMEOUT / _BUSY
     * (and _SHUTDOWN, or _CANCELLED inside a cancelled task, as the C API says).
     * The default waits for ever; a timeout of 0 or less (what is left of a deadline that
     * has passed: -1 included, which is not the C API's "forever" here) waits no time:
     * one flush on the flush thread, then the result or ASSET_E_TIMEOUT. Any
     * std::chrono::duration, as wait_for takes (`frame_end - steady_clock::now()`): a
     * finer one rounded up to whole milliseconds, one past what milliseconds hold for ever. */
    template <class Rep = std::chrono::milliseconds::rep, class Period = std::milli>
    asset_status_t
    wait(std::chrono::duration<Rep, Period> timeout = std::chrono::milliseconds::max()) const {
        /* a callback may drop this object, and with it the server and the C handle that
         * the wait goes on reading: hold both */
        std::shared_ptr<detail::Core> keep = core_;
        asset_handle_t *h = h_ ? asset_handle_retain(h_) : nullptr;
        asset_status_t st = asset_handle_wait(h, detail::to_ms(timeout));
        asset_handle_release(h);
        return st;
    }
    void cancel() const { asset_handle_cancel(h_); }

    /* Connects f, called as f(Handle &) or f() once on the flush thread when the handle
     * is done. Returns the id for disconnect(), 0 when empty or out of memory (f is then
     * destroyed at once), or when f is a null function pointer or an empty std::function
     * (as the C API refuses NULL; the same for every connect). */
    template <class F> uint64_t on_completed(F &&f) const;
    /* Disconnects a callback that has not fired and destroys its callable (on_reloaded's:
     * as said there). */
    bool disconnect(uint64_t id) const;

    /* Hot reload (asset_handle_on_reloaded): f, called as f(Handle &) or f() on the flush
     * thread at every reload attempt, until disconnect(id), from any thread: once it
     * returned true, f is not called again (a call already running goes on). The callable
     * is destroyed then: from inside a callback of its server at once (from inside f, once
     * f returned), else at the next flush, on the flush thread (a flush elsewhere may be
     * about to call it; out of memory for that, at a later one: docs/cxx.md); or when the
     * handle goes (its last reference, C or C++: at the next flush, on the flush thread),
     * or when the C server is destroyed.
     * Returns the id, 0 when empty or out of memory. */
    template <class F> uint64_t on_reloaded(F &&f) const;
    uint64_t version() const { return asset_handle_version(h_); }
    asset_status_t reload_error() const { return asset_handle_reload_error(h_); }
    /* asset_handle_set_priority: a queued load moves in the queue. */
    asset_status_t set_priority(asset_priority_t p) const {
        return asset_handle_set_priority(h_, p);
    }
    /* The dependencies its loader declared (asset_parse_depend), each a new reference. */
    size_t dependency_count() const { return asset_handle_dependency_count(h_); }
    Handle dependency(size_t i) const {
        /* retained under the server's lock: a borrowed one, retained after, could be freed
         * between the two by a flush elsewhere publishing a reload (a review) */
        asset_handle_t *d = asset_handle_dependency_retain(h_, i);
        return d ? Handle(core_, d, true) : Handle();
    }
    std::vector<Handle> dependencies() const {
        std::vector<Handle> v;
        for (size_t i = 0, n = dependency_count(); i < n; i++) v.push_back(dependency(i));
        return v;
    }

#ifdef ASSET_SERVER_HPP_EXCEPTIONS
    /* The value, or throws asset::Error (with the handle's message) unless LOADED; a
     * LOADED handle whose value is null throws ASSET_E_INVALID ("<uri>: loaded, but its
     * value is null"). */
    template <class T> const T &value_or_throw() const;
#endif

    asset_handle_t *get() const noexcept { return h_; }
    /* The C server, or nullptr. */
    asset_server_t *server() const noexcept { return core_ ? core_->s : nullptr; }

  private:
    friend class Server;
    friend class Batch;
    template <class F> friend struct detail::HandleCallback;
    template <class F> friend struct detail::ReloadCallback;
    template <class F> friend struct detail::BatchItemCallback;
    /* adopt: take over a reference the caller owns; else retain. */
    Handle(std::shared_ptr<detail::Core> core, asset_handle_t *h, bool adopt) noexcept
        : core_(h ? std::move(core) : nullptr), h_(h) {
        if (h_ && !adopt) asset_handle_retain(h_);
    }
    std::shared_ptr<detail::Core> core_; /* declared first: destroyed after h_ is released */
    asset_handle_t *h_ = nullptr;
};

#ifdef ASSET_SERVER_HPP_EXCEPTIONS
class Error : public std::runtime_error {
  public:
    Error(asset_status_t code, const std::string &what) : std::runtime_error(what), code_(code) {}
    asset_status_t code() const noexcept { return code_; }

  private:
    asset_status_t code_;
};

template <class T> const T &Handle::value_or_throw() const {
    /* done() read once, before the value: read twice, a flush between the two reads threw
     * a failed load's code with "not loaded yet" (a review). A terminal state stays. */
    const bool finished = done();
    if (const T *v = value<T>()) return *v;
    /* LOADED with a null value (a set_value of nullptr, which the C API takes): no
     * reference to return, and no failure to tell; it threw ASSET_OK with the handle's
     * message, empty (or a failed reload's), a review */
    if (finished && state() == ASSET_STATE_LOADED)
        throw Error(ASSET_E_INVALID, detail::str(uri()) + ": loaded, but its value is null");
    std::string msg =
        finished ? detail::str(error_message()) : detail::str(uri()) + ": not loaded yet";
    throw Error(finished ? error() : ASSET_PENDING, msg);
}
#endif

namespace detail {
template <class F> struct HandleCallback final : CallbackBox {
    F f;
    template <class G> explicit HandleCallback(G &&g) : f(std::forward<G>(g)) {}
    static void fire(asset_handle_t *h, void *user) noexcept {
        auto *self = static_cast<HandleCallback *>(user);
        Core *core = self->core;
        Mark in(tl_in_flush, core);
        std::shared_ptr<Core> keep = core->weak_from_this().lock(); /* past the retire */
        if (!keep) return; /* its last share went earlier in this flush: left (release) */
        {
            Handle arg(keep, h, false);
            call_handle_cb(self->f, arg);
        }
        core->retire(self); /* fired exactly once: the callable goes now */
        park_if_last(keep);
    }
};
} // namespace detail

template <class F> uint64_t Handle::on_completed(F &&f) const {
    if (!h_ || detail::is_null_callable(f)) return 0;
    auto *box = new detail::HandleCallback<std::decay_t<F>>(std::forward<F>(f));
    detail::Core *core = core_.get();
    std::unique_lock<std::mutex> g(core->lock); /* the callback may fire on the flush thread
                                                   at once: it retires under this lock */
    if (!core->make_room()) {
        g.unlock();
        delete box;
        return 0;
    }
    core->link(box);
    uint64_t id =
        asset_handle_on_completed(h_, &detail::HandleCallback<std::decay_t<F>>::fire, box);
    if (!id) {
        core->unlink(box);
        g.unlock();
        delete box;
        return 0;
    }
    box->id = id;
    core->file(box, id);
    core->free_stranded(h_);
    return id;
}

namespace detail {
template <class F> struct ReloadCallback final : CallbackBox {
    F f;
    template <class G> explicit ReloadCallback(G &&g) : f(std::forward<G>(g)) { reloads = true; }
    static void fire(asset_handle_t *h, void *user) noexcept {
        auto *self = static_cast<ReloadCallback *>(user);
        Core *core = self->core;
        Mark in(tl_in_flush, core);
        std::shared_ptr<Core> keep = core->weak_from_this().lock();
        if (!keep) return; /* its last share went earlier in this flush: left (release) */
        bool run;
        {
            std::lock_guard<std::mutex> g(core->lock);
            /* gone: disconnected on another thread after the C side took it to call here;
             * retire_later frees it at a flush. Else a disconnect from inside the callable
             * must not free it */
            run = !self->gone;
            self->firing = run;
        }
        if (run) {
            {
                Handle arg(keep, h, false);
                call_handle_cb(self->f, arg); /* fires again at the next reload: kept */
            }
            bool gone;
            {
                std::lock_guard<std::mutex> g(core->lock);
                self->firing = false;
                gone = self->gone;
            }
            if (gone) core->retire(self); /* disconnected while it ran: destroyed now */
        }
        park_if_last(keep);
    }
    /* Its handle went (the C side's free_user, at a flush on the flush thread): the
     * callable goes with it, not with the server. */
    static void drop(void *user) noexcept {
        retire_on_flush_thread(static_cast<ReloadCallback *>(user));
    }
};
} // namespace detail

template <class F> uint64_t Handle::on_reloaded(F &&f) const {
    if (!h_ || detail::is_null_callable(f)) return 0;
    auto *box = new detail::ReloadCallback<std::decay_t<F>>(std::forward<F>(f));
    detail::Core *core = core_.get();
    std::unique_lock<std::mutex> g(core->lock);
    if (!core->make_room()) {
        g.unlock();
        delete box;
        return 0;
    }
    core->link(box);
    uint64_t id =
        asset_handle_on_reloaded_free(h_, &detail::ReloadCallback<std::decay_t<F>>::fire, box,
                                      &detail::ReloadCallback<std::decay_t<F>>::drop);
    if (!id) {
        core->unlink(box);
        g.unlock();
        delete box;
        return 0;
    }
    box->id = id;
    core->file(box, id);
    core->free_stranded(h_);
    return id;
}

inline bool Handle::disconnect(uint64_t id) const {
    if (!h_ || !id) return false;
    detail::Core *core = core_.get();
    detail::CallbackBox *box = nullptr;
    {
        std::lock_guard<std::mutex> g(core->lock);
        box = core->find(id);
        if (!box || box->item || box->gone || !asset_handle_disconnect(h_, id)) return false;
        if (box->firing) { /* a reload callable running (maybe itself): freed once it returns */
            box->gone = true;
            return true;
        }
        /* A reload callable stays in the C side's list while it fires: a flush elsewhere
         * may have taken it to call it at this moment (it then finds it gone, and does not
         * call it). Deleted here, that flush called into the freed box (a review): it is
         * freed at a flush, on the flush thread, by a completion callback of its handle
         * (out of memory for it: of the next handle connected to or disconnected from,
         * Core::free_stranded). Inside a callback of its
         * server, this is the flush thread, and no flush can be calling it. */
        if (box->reloads && detail::tl_in_flush != core) {
            box->gone = true;
            box->later = core->stranded;
            core->stranded = box;
            core->free_stranded(h_); /* out of memory: a later connect or disconnect does */
            return true;
        }
        core->unlink(box); /* not called and never will be: ours to delete */
    }
    delete box;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Batch                                                                     */
/* ------------------------------------------------------------------------ */

class Batch {
  public:
    Batch() noexcept = default;
    Batch(const Batch &o) noexcept
        : core_(o.core_), b_(o.b_ ? asset_batch_retain(o.b_) : nullptr) {}
    Batch(Batch &&o) noexcept : core_(std::move(o.core_)), b_(o.b_) { o.b_ = nullptr; }
    Batch &operator=(const Batch &o) noexcept {
        if (this != &o) {
            Batch tmp(o);
            swap(tmp);
        }
        return *this;
    }
    Batch &operator=(Batch &&o) noexcept {
        if (this != &o) {
            Batch tmp(std::move(o));
            swap(tmp);
        }
        return *this;
    }
    ~Batch() { reset(); }
    void reset() noexcept {
        if (b_) asset_batch_release(b_);
        b_ = nullptr;
        core_.reset();
    }
    void swap(Batch &o) noexcept {
        std::swap(core_, o.core_);
        std::swap(b_, o.b_);
    }

    explicit operator bool() const noexcept { return b_ != nullptr; }
    std::string_view uri() const { return detail::view(asset_batch_uri(b_)); }
    size_t total() const { return asset_batch_total(b_); }
    size_t count() const { return asset_batch_count(b_); }
    size_t completed_count() const { return asset_batch_completed_count(b_); }
    size_t failed_count() const { return asset_batch_failed_count(b_); }
    size_t cancelled_count() const { return asset_batch_cancelled_count(b_); }
    float progress() const { return asset_batch_progress(b_); }
    bool done() const { return asset_batch_is_done(b_); }
    asset_status_t error() const { return asset_batch_error(b_); }
    std::string_view error_message() const {
        return detail::view(b_ ? asset_batch_error_message(b_) : "invalid batch");
    }
    /* Child i, retained (empty when out of range). */
    Handle handle(size_t i) const { return Handle(core_, asset_batch_handle(b_, i), false); }
    template <class T> const T *value(std::string_view uri) const {
        return b_ ? static_cast<const T *>(asset_batch_value(b_, detail::str(uri).c_str()))
                  : nullptr;
    }
    /* asset_batch_wait; the timeout as Handle::wait's (the default: for ever). */
    template <class Rep = std::chrono::milliseconds::rep, class Period = std::milli>
    asset_status_t
    wait(std::chrono::duration<Rep, Period> timeout = std::chrono::milliseconds::max()) const {
        /* as Handle::wait: a callback may drop this object and the C batch with it */
        std::shared_ptr<detail::Core> keep = core_;
        asset_batch_t *b = b_ ? asset_batch_retain(b_) : nullptr;
        asset_status_t st = asset_batch_wait(b, detail::to_ms(timeout));
        asset_batch_release(b);
        return st;
    }
    void cancel() const { asset_batch_cancel(b_); }

    /* f(Batch &, Handle &), f(Handle &) or f(), for each child that completes after the
     * call. Its callable is destroyed when the batch is done (or the server destroyed). */
    template <class F> uint64_t on_item_completed(F &&f) const;
    /* f(Batch &) or f(), once when the batch is done. Both return 0 as on_completed. */
    template <class F> uint64_t on_completed(F &&f) const;
    /* Disconnects either kind. A completion callable is destroyed at once; an item
     * callable stops being called at once and is destroyed when the batch is done. */
    bool disconnect(uint64_t id) const;

    asset_batch_t *get() const noexcept { return b_; }
    asset_server_t *server() const noexcept { return core_ ? core_->s : nullptr; }

  private:
    friend class Server;
    template <class F> friend struct detail::BatchItemCallback;
    template <class F> friend struct detail::BatchDoneCallback;
    Batch(std::shared_ptr<detail::Core> core, asset_batch_t *b, bool adopt) noexcept
        : core_(b ? std::move(core) : nullptr), b_(b) {
        if (b_ && !adopt) asset_batch_retain(b_);
    }
    std::shared_ptr<detail::Core> core_;
    asset_batch_t *b_ = nullptr;
};

namespace detail {
template <class F> struct BatchItemCallback final : CallbackBox {
    F f;
    template <class G> explicit BatchItemCallback(G &&g) : f(std::forward<G>(g)) { item = true; }
    static void fire(asset_batch_t *b, asset_handle_t *h, void *user) noexcept {
        auto *self = static_cast<BatchItemCallback *>(user);
        if (self->silenced.load(std::memory_order_acquire)) return;
        Mark in(tl_in_flush, self->core);
        std::shared_ptr<Core> core = self->core->weak_from_this().lock();
        if (!core) return; /* its last share went earlier in this flush: left (release) */
        {
            Batch ab(core, b, false);
            Handle ah(core, h, false);
            call_item_cb(self->f, ab, ah);
        }
        park_if_last(core);
    }
    /* The batch is done: no item callback can fire any more. Flush thread. */
    static void finish(asset_batch_t *b, void *user) noexcept {
        auto *self = static_cast<BatchItemCallback *>(user);
        Core *core = self->core;
        Mark in(tl_in_flush, core); /* the callable may hold the last share */
        std::shared_ptr<Core> keep = core->weak_from_this().lock(); /* past the retire */
        /* its last share went earlier in this flush: left (release), linked, for ~Core, as
         * the other trampolines leave theirs. (Freeing it here was safe too: the batch is
         * done, so no item call follows; the callable holds no share; and the Core cannot
         * go before this flush returns, a destroy elsewhere waiting for it.) */
        if (!keep) return;
        asset_batch_disconnect(b, self->id);
        core->retire(self);
        park_if_last(keep);
    }
};
} // namespace detail

namespace detail {
template <class F> struct BatchDoneCallback final : CallbackBox {
    F f;
    template <class G> explicit BatchDoneCallback(G &&g) : f(std::forward<G>(g)) {}
    static void fire(asset_batch_t *b, void *user) noexcept {
        auto *self = static_cast<BatchDoneCallback *>(user);
        Core *core = self->core;
        Mark in(tl_in_flush, core);
        std::shared_ptr<Core> keep = core->weak_from_this().lock(); /* past the retire */
        if (!keep) return; /* its last share went earlier in this flush: left (release) */
        {
            Batch arg(keep, b, false);
            if constexpr (std::is_invocable_v<F &, Batch &>)
                self->f(arg);
            else
                self->f();
        }
        core->retire(self);
        park_if_last(keep);
    }
};
} // namespace detail

template <class F> uint64_t Batch::on_item_completed(F &&f) const {
    if (!b_ || detail::is_null_callable(f)) return 0;
    using Box = detail::BatchItemCallback<std::decay_t<F>>;
    auto *box = new Box(std::forward<F>(f));
    detail::Core *core = core_.get();
    std::unique_lock<std::mutex> g(core->lock);
    if (!core->make_room()) {
        g.unlock();
        delete box;
        return 0;
    }
    core->link(box);
    box->batch = b_;
    box->id = asset_batch_on_item_completed(b_, &Box::fire, box);
    if (box->id) box->done_id = asset_batch_on_completed(b_, &Box::finish, box);
    if (!box->id || !box->done_id) {
        /* Out of memory. Without its finisher the box cannot know when it is safe to go
         * (a flush may be calling it): silenced, it goes at a flush, as a reload callable
         * disconnected off the flush thread (Core::stranded; it stayed until the C server
         * went, a review) */
        if (box->id) {
            box->silenced.store(true, std::memory_order_release);
            asset_batch_disconnect(b_, box->id);
            box->id = 0;
            box->later = core->stranded;
            core->stranded = box;
            return 0;
        }
        core->unlink(box);
        g.unlock();
        delete box;
        return 0;
    }
    core->file(box, box->id);
    return box->id;
}

template <class F> uint64_t Batch::on_completed(F &&f) const {
    if (!b_ || detail::is_null_callable(f)) return 0;
    using Box = detail::BatchDoneCallback<std::decay_t<F>>;
    auto *box = new Box(std::forward<F>(f));
    detail::Core *core = core_.get();
    std::unique_lock<std::mutex> g(core->lock);
    if (!core->make_room()) {
        g.unlock();
        delete box;
        return 0;
    }
    core->link(box);
    box->id = asset_batch_on_completed(b_, &Box::fire, box);
    if (!box->id) {
        core->unlink(box);
        g.unlock();
        delete box;
        return 0;
    }
    core->file(box, box->id);
    return box->id;
}

inline bool Batch::disconnect(uint64_t id) const {
    if (!b_ || !id) return false;
    detail::Core *core = core_.get();
    detail::CallbackBox *box = nullptr;
    {
        std::lock_guard<std::mutex> g(core->lock);
        box = core->find(id);
        if (!box) return false;
        if (box->item) { /* the finisher (batch done) or the server's end deletes it */
            if (box->batch != b_) return false; /* another batch's */
            bool was = !box->silenced.exchange(true, std::memory_order_acq_rel);
            asset_batch_disconnect(b_, id);
            return was;
        }
        if (!asset_batch_disconnect(b_, id)) return false; /* firing or fired */
        core->unlink(box);
    }
    delete box;
    return true;
}

/* ------------------------------------------------------------------------ */
/* Loaders and sources as classes                                            */
/* ------------------------------------------------------------------------ */

class Loader;
namespace detail {
struct LoaderHolder;
struct TypedValue;
/* One address per type: the T a TypedLoader<T> deletes, which Parse::set_value<T> and
 * Finalize::set_value<T> check (a static constexpr member is inline: one in a program). */
template <class T> struct TypeTag { static constexpr char id = 0; };
template <class T> constexpr const void *type_tag() noexcept { return &TypeTag<T>::id; }
/* A T * (T const or not) as the C API's void *: values are handed out as const anyway. */
template <class T> void *as_void(T *p) noexcept {
    return const_cast<void *>(static_cast<const void *>(p));
}
} // namespace detail

/* What a loader's parse() gets (asset_parse_t). Worker thread. */
class Parse {
  public:
    /* loader: the loader whose parse() this is (the wrapper passes it), for set_value<T>'s
     * check; nullptr: no check. */
    explicit Parse(asset_parse_t *p, const Loader *loader = nullptr) noexcept
        : p_(p), loader_(loader) {}
    std::string_view uri() const { return detail::view(asset_parse_uri(p_)); }
    const uint8_t *data() const { return asset_parse_data(p_); }
    size_t size() const { return asset_parse_size(p_); }
    /* The bytes as text (data()[size()] is 0 as well). */
    std::string_view text() const {
        return std::string_view(reinterpret_cast<const char *>(data()), size());
    }
    /* Takes the buffer: free it with asset_free(). */
    void *take_data() { return asset_parse_take_data(p_); }
    /* asset_parse_cancelled: the load's value is no longer wanted; stop early. */
    bool cancelled() const { return asset_parse_cancelled(p_); }
    /* The value must be what the loader's free_value() frees (a plain Loader's: asset_free,
     * so a buffer from take_data() or asset_alloc()); cost_bytes is charged to its cache. */
    void set_value(void *value, size_t cost_bytes) { asset_parse_set_value(p_, value, cost_bytes); }
    /* For a TypedLoader<T> (its free_value deletes a T): the value becomes the loader's.
     * Any other loader's free_value would not delete a T (a plain Loader's asset_free()s
     * it, a TypedLoader<U>'s deletes a U): the value is refused, deleted here as a T, and
     * the load fails with ASSET_E_INVALID, "set_value: ... needs a TypedLoader<T>"
     * (it used to be handed over, freed the wrong way later). Use TypedLoader<T> (override
     * its free_value to do more), or set_value(ptr.release(), cost) with a free_value of
     * your own that deletes it. T may be const (an immutable result: handles hand the
     * value out as const anyway): a TypedLoader<T> takes a std::unique_ptr<const T>. */
    template <class T> void set_value(std::unique_ptr<T> value, size_t cost_bytes);
    /* A std::unique_ptr<T[]> does not compile: a value is one T, deleted with delete.
     * Put the elements in a struct or a std::vector. */
    template <class T> void set_value(std::unique_ptr<T[]> value, size_t cost_bytes) = delete;
    /* Records why ("<uri>: <loader>: <why>" on the handle) and returns st. */
    asset_status_t fail(asset_status_t st, std::string_view why) {
        return asset_parse_fail(p_, st, "%.*s", detail::fmt_len(why), detail::fmt_data(why));
    }
    /* asset_parse_depend: a dependency (relative URIs resolve against this asset's);
     * the returned C handle is owned by the parent (borrowed), nullptr when out of
     * memory. */
    asset_handle_t *depend(std::string_view uri, const asset_load_options_t *o = nullptr) {
        return asset_parse_depend(p_, detail::str(uri).c_str(), o);
    }
    /* asset_parse_depend_many: a list of dependencies at once (about one lock round trip
     * per 64 instead of one each); the C handles, borrowed as depend()'s, in the list's
     * order, nullptr where out of memory. */
    std::vector<asset_handle_t *> depend_many(const std::vector<std::string> &uris,
                                              const asset_load_options_t *o = nullptr) {
        std::vector<const char *> c(uris.size());
        for (size_t i = 0; i < uris.size(); i++) c[i] = uris[i].c_str();
        std::vector<asset_handle_t *> out(uris.size());
        asset_parse_depend_many(p_, c.data(), c.size(), o, out.data());
        return out;
    }
    /* asset_parse_add_labeled: a sub-asset "uri#label" loads yield. free_fn(value, user)
     * frees it (nullptr: the loader's free_value), on any thread, maybe with the server's
     * lock held. ASSET_E_INVALID for a label this asset has already, ASSET_E_NO_MEMORY:
     * either way the value stays the caller's. */
    asset_status_t add_labeled(std::string_view label, void *value, size_t cost_bytes,
                               void (*free_fn)(void *value, void *user) = nullptr,
                               void *user = nullptr) {
        return asset_parse_add_labeled(p_, detail::str(label).c_str(), value, cost_bytes, free_fn,
                                       user);
    }
    /* For a TypedLoader<T>: the value becomes the loader's (its free_value deletes it).
     * Refused with ASSET_E_INVALID for another loader (whose free_value would not delete
     * a T), as for a label it has already; on any error the value is deleted here. */
    template <class T>
    asset_status_t add_labeled(std::string_view label, std::unique_ptr<T> value, size_t cost_bytes);
    template <class T>
    asset_status_t add_labeled(std::string_view label, std::unique_ptr<T[]> value,
                               size_t cost_bytes) = delete; /* as set_value's */
    asset_parse_t *get() const noexcept { return p_; }

  private:
    friend struct detail::LoaderHolder;
    asset_parse_t *p_;
    const Loader *loader_;
    bool *refused_ = nullptr; /* the wrapper's: a set_value<T> (of a copy too) refused */
};

/* What a loader's finalize() gets (asset_finalize_t). Flush thread, inside flush. */
class Finalize {
  public:
    /* loader: as Parse's (nullptr: set_value<T> does not check). */
    explicit Finalize(asset_finalize_t *f, const Loader *loader = nullptr) noexcept
        : f_(f), loader_(loader) {}
    std::string_view uri() const { return detail::view(asset_finalize_uri(f_)); }
    void *value() const { return asset_finalize_value(f_); }
    template <class T> T *value() const { return static_cast<T *>(value()); }
    /* Replaces the value (the old one goes to free_value at once unless it is the same). */
    void set_value(void *value, size_t cost_bytes) {
        asset_finalize_set_value(f_, value, cost_bytes);
    }
    /* As Parse::set_value<T>: for a TypedLoader<T>; for another loader the value is
     * refused, deleted here, and the load fails with ASSET_E_INVALID. */
    template <class T> void set_value(std::unique_ptr<T> value, size_t cost_bytes);
    template <class T> /* no std::unique_ptr<T[]>, as Parse::set_value */
    void set_value(std::unique_ptr<T[]> value, size_t cost_bytes) = delete;
    size_t dependency_count() const { return asset_finalize_dependency_count(f_); }
    /* Borrowed: LOADED, or FAILED/CANCELLED when optional. */
    asset_handle_t *dependency(size_t i) const { return asset_finalize_dependency(f_, i); }
    asset_status_t fail(asset_status_t st, std::string_view why) {
        return asset_finalize_fail(f_, st, "%.*s", detail::fmt_len(why), detail::fmt_data(why));
    }
    asset_finalize_t *get() const noexcept { return f_; }

  private:
    friend struct detail::LoaderHolder;
    asset_finalize_t *f_;
    const Loader *loader_;
    bool *refused_ = nullptr;
};

/* A loader. name and suffixes are fixed at construction; register with
 * Server::add_loader(). parse() runs on worker threads (several at once), claims() on the
 * loading thread, free_value() on any thread with the server's lock possibly held (it
 * must not call the server; a value may hold Handles, whose release there the next flush
 * does, and even Servers: one holding the last share of its own server hands it to the
 * wrapper's Reaper thread, which destroys it). */
class Loader {
  public:
    /* flags: ASSET_LOADER_FREE_ON_FLUSH_THREAD. finalizes: finalize() is a step of every
     * value (on the flush thread, after parse and the dependencies); false: never called. */
    explicit Loader(std::string name, std::vector<std::string> suffixes = {}, unsigned flags = 0,
                    bool finalizes = false)
        : name_(std::move(name)), suffixes_(std::move(suffixes)), flags_(flags),
          finalizes_(finalizes) {}
    virtual ~Loader() = default;
    Loader(const Loader &) = delete;
    Loader &operator=(const Loader &) = delete;

    const std::string &name() const noexcept { return name_; }
    const std::vector<std::string> &suffixes() const noexcept { return suffixes_; }
    unsigned flags() const noexcept { return flags_; }
    bool finalizes() const noexcept { return finalizes_; }

    /* Default: the URI (before '#', and before a '?' query but in file://, pkg:// and
       mem:// names, where '?' is part of the name) ends with one of suffixes(), any case.
       An exception out of it is "not claimed": the next loader is asked. */
    virtual bool claims(std::string_view uri) {
        bool named = uri.substr(0, 7) == "file://" || uri.substr(0, 6) == "pkg://" ||
                     uri.substr(0, 6) == "mem://";
        uri = uri.substr(0, uri.find_first_of(named ? "#" : "?#"));
        for (const std::string &s : suffixes_) {
            if (s.size() > uri.size()) continue;
            std::string_view tail = uri.substr(uri.size() - s.size());
            bool eq = true;
            for (size_t i = 0; i < s.size() && eq; i++) eq = lower(tail[i]) == lower(s[i]);
            if (eq) return true;
        }
        return false;
    }
    /* Sets a value with p.set_value() or fails with p.fail(). */
    virtual asset_status_t parse(Parse &p) = 0;
    /* Default: asset_free (values from p.take_data() or asset_alloc). */
    virtual void free_value(void *value) noexcept { asset_free(value); }
    /* Only when finalizes(): ASSET_OK, ASSET_PENDING (again at a later flush) or an error
     * (f.fail()). */
    virtual asset_status_t finalize(Finalize &f) {
        (void)f;
        return ASSET_OK;
    }

  private:
    friend struct detail::TypedValue;
    /* The type whose values free_value() deletes (detail::type_tag<T>() for a
     * TypedLoader<T>), nullptr when unknown: what set_value(std::unique_ptr<T>) checks. */
    virtual const void *value_type() const noexcept { return nullptr; }
    /* Whether value may go to loader's free_value: null, no loader to ask (a Parse made
     * without one), or a TypedLoader<T> (which deletes a const T as well). */
    template <class T> static bool deletes(const Loader *loader, const T *value) noexcept {
        using U = typename std::remove_cv<T>::type;
        return !value || !loader || loader->value_type() == detail::type_tag<U>();
    }
    static char lower(char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    }
    std::string name_;
    std::vector<std::string> suffixes_;
    unsigned flags_ = 0;
    bool finalizes_ = false;
};

/* A loader whose values are T objects made with new (p.set_value(std::make_unique<T>(..),
 * cost)); Handle::value<T>() reads them. */
template <class T> class TypedLoader : public Loader {
  public:
    using Loader::Loader;
    void free_value(void *value) noexcept override { delete static_cast<T *>(value); }

  private:
    const void *value_type() const noexcept override { return detail::type_tag<T>(); }
};

namespace detail {
/* Parse::set_value<T> and Finalize::set_value<T>: the value goes to loader (set(c, ...)),
 * or, when its free_value would not delete a T, it is refused (deleted here, as a T), the
 * wrapper told (*refused), and the load fails (fail(c, ASSET_E_INVALID, ...)). */
struct TypedValue {
    template <class T> static bool accepts(const Loader *loader, const T *value) noexcept {
        return Loader::deletes(loader, value);
    }
    template <class T, class C, class Fail, class Set>
    static void set(C *c, const Loader *loader, bool *refused, std::unique_ptr<T> value,
                    size_t cost_bytes, Fail fail, Set set) {
        if (!Loader::deletes(loader, value.get())) {
            if (refused) *refused = true;
            fail(c, ASSET_E_INVALID, "%s",
                 "set_value: a std::unique_ptr value needs a TypedLoader<T> of its type (this "
                 "loader's free_value would not delete it)");
            return;
        }
        set(c, as_void(value.release()), cost_bytes);
    }
};
} // namespace detail

template <class T> void Parse::set_value(std::unique_ptr<T> value, size_t cost_bytes) {
    detail::TypedValue::set(p_, loader_, refused_, std::move(value), cost_bytes, &asset_parse_fail,
                            &asset_parse_set_value);
}

template <class T>
asset_status_t Parse::add_labeled(std::string_view label, std::unique_ptr<T> value,
                                  size_t cost_bytes) {
    if (!detail::TypedValue::accepts(loader_, value.get())) return ASSET_E_INVALID; /* deleted */
    asset_status_t st = add_labeled(label, detail::as_void(value.get()), cost_bytes);
    if (st == ASSET_OK) value.release(); /* the loader's: its free_value deletes it */
    return st;
}

template <class T> void Finalize::set_value(std::unique_ptr<T> value, size_t cost_bytes) {
    detail::TypedValue::set(f_, loader_, refused_, std::move(value), cost_bytes,
                            &asset_finalize_fail, &asset_finalize_set_value);
}

/* What a source's read() gets (asset_request_t). Copyable: an ASYNC source keeps it and
 * calls finish() later from any thread. */
class Request {
  public:
    explicit Request(asset_request_t *r) noexcept : r_(r) {}
    std::string_view uri() const { return detail::view(asset_request_uri(r_)); }
    std::string_view path() const { return detail::view(asset_request_path(r_)); }
    /* The cached version, if anything is cached. */
    std::optional<std::string_view> cached_version() const {
        const char *v = asset_request_cached_version(r_);
        return v ? std::optional<std::string_view>(v) : std::nullopt;
    }
    void set_version(std::string_view v) { asset_request_set_version(r_, detail::str(v).c_str()); }
    void set_total(uint64_t bytes) { asset_request_set_total(r_, bytes); }
    asset_status_t write(const void *data, size_t n) { return asset_request_write(r_, data, n); }
    asset_status_t write(std::string_view bytes) { return write(bytes.data(), bytes.size()); }
    /* asset_request_adopt: the buffer is handed over whole; free_fn(data, user) frees it
     * once the library is done with it (nullptr: static data), also when it is refused. */
    asset_status_t adopt(void *data, size_t n, void (*free_fn)(void *data, void *user) = nullptr,
                         void *user = nullptr) {
        return asset_request_adopt(r_, data, n, free_fn, user);
    }
    bool cancelled() const { return asset_request_cancelled(r_); }
    asset_status_t fail(asset_status_t st, std::string_view why) {
        return asset_request_fail(r_, st, "%.*s", detail::fmt_len(why), detail::fmt_data(why));
    }
    void finish(asset_status_t st) { asset_request_finish(r_, st); }
    asset_request_t *get() const noexcept { return r_; }

  private:
    asset_request_t *r_;
};

/* What a source's list() gets. */
class List {
  public:
    explicit List(asset_list_t *l) noexcept : l_(l) {}
    asset_status_t add(std::string_view relpath, int64_t size = -1) {
        return asset_list_add(l_, detail::str(relpath).c_str(), size);
    }
    bool recursive() const { return asset_list_recursive(l_); }
    asset_status_t fail(asset_status_t st, std::string_view why) {
        return asset_list_fail(l_, st, "%.*s", detail::fmt_len(why), detail::fmt_data(why));
    }
    asset_list_t *get() const noexcept { return l_; }

  private:
    asset_list_t *l_;
};

/* A source for one URI scheme (lowercase). read() and list() run on worker threads,
 * several at once. flags: ASSET_SOURCE_IMMUTABLE | ASSET_SOURCE_ASYNC. lists: whether
 * list() is implemented (folder loads); when false the C slot is NULL (unsupported). */
class Source {
  public:
    explicit Source(std::string scheme, unsigned flags = 0, bool lists = false)
        : scheme_(std::move(scheme)), flags_(flags), lists_(lists) {}
    virtual ~Source() = default;
    Source(const Source &) = delete;
    Source &operator=(const Source &) = delete;

    const std::string &scheme() const noexcept { return scheme_; }
    unsigned flags() const noexcept { return flags_; }
    bool lists() const noexcept { return lists_; }

    /* Writes the bytes with r.write(); returns ASSET_OK, ASSET_NOT_MODIFIED, ASSET_PENDING
     * (ASYNC: then r.finish() later) or an error (r.fail() says why). */
    virtual asset_status_t read(Request &r) = 0;
    virtual asset_status_t list(std::string_view uri, List &out) {
        (void)uri;
        return out.fail(ASSET_E_UNSUPPORTED, "this source cannot list");
    }

  private:
    std::string scheme_;
    unsigned flags_;
    bool lists_;
};

namespace detail {

/* Runs a user's parse, finalize, read, list or task body: an exception it lets out
 * fails that one load through fail(status, message) instead of ending the process
 * (these run from C, through noexcept trampolines). std::bad_alloc is
 * ASSET_E_NO_MEMORY; any other exception is `other`, with its what(). */
template <class Body, class Fail>
inline asset_status_t guarded(Body &&body, Fail &&fail, asset_status_t other) noexcept {
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return fail(ASSET_E_NO_MEMORY, "out of memory (std::bad_alloc)");
    } catch (const std::exception &e) {
        return fail(other, e.what());
    } catch (...) {
        return fail(other, "an exception that is not a std::exception");
    }
#else
    (void)fail;
    (void)other;
    return body();
#endif
}

struct LoaderHolder {
    std::shared_ptr<Loader> obj;
    std::vector<const char *> suffixes; /* into obj->suffixes(), NULL-terminated */
    const Core *core;                   /* its server's: marks parse()'s thread */

    static bool claims(void *ctx, const char *uri) noexcept {
        bool yes = false; /* an exception: not claimed */
        guarded(
            [&] {
                yes = static_cast<LoaderHolder *>(ctx)->obj->claims(view(uri));
                return ASSET_OK;
            },
            [](asset_status_t st, const char *) { return st; }, ASSET_E_INVALID);
        return yes;
    }
    static asset_status_t parse(void *ctx, asset_parse_t *p) noexcept {
        bool refused = false; /* a set_value<T> refused: the parse fails ASSET_E_INVALID */
        Parse wp(p, static_cast<LoaderHolder *>(ctx)->obj.get());
        wp.refused_ = &refused;
        Mark on(tl_on_worker, static_cast<LoaderHolder *>(ctx)->core); /* may drop the last */
        asset_status_t st =
            guarded([&] { return static_cast<LoaderHolder *>(ctx)->obj->parse(wp); },
                    [p](asset_status_t code, const char *why) {
                        return asset_parse_fail(p, code, "parse threw: %s", why);
                    },
                    ASSET_E_PARSE);
        return refused && st == ASSET_OK ? ASSET_E_INVALID : st;
    }
    static void free_value(void *ctx, void *value) noexcept {
        /* maybe on a worker, under the server's lock (an eviction by its insert): a value
         * holding the last share of its server (an asset::Server in a T) hands it to the
         * Reaper; its destroy here waited for that lock, held by this thread (a review) */
        Mark on(tl_on_worker, static_cast<LoaderHolder *>(ctx)->core);
        static_cast<LoaderHolder *>(ctx)->obj->free_value(value);
    }
    static asset_status_t finalize(void *ctx, asset_finalize_t *f) noexcept {
        bool refused = false;
        Finalize wf(f, static_cast<LoaderHolder *>(ctx)->obj.get());
        wf.refused_ = &refused;
        asset_status_t st =
            guarded([&] { return static_cast<LoaderHolder *>(ctx)->obj->finalize(wf); },
                    [f](asset_status_t code, const char *why) {
                        return asset_finalize_fail(f, code, "finalize threw: %s", why);
                    },
                    ASSET_E_IO);
        /* refused: not OK, nor PENDING (again next flush, refused again) */
        return refused && (st == ASSET_OK || st == ASSET_PENDING) ? ASSET_E_INVALID : st;
    }
    static void destroy(void *ctx) noexcept { delete static_cast<LoaderHolder *>(ctx); }
};

struct SourceHolder {
    std::shared_ptr<Source> obj;
    const Core *core; /* its server's: marks read()'s and list()'s thread */

    static asset_status_t read(void *ctx, asset_request_t *r) noexcept {
        Request wr(r);
        Mark on(tl_on_worker, static_cast<SourceHolder *>(ctx)->core); /* may drop the last */
        return guarded([&] { return static_cast<SourceHolder *>(ctx)->obj->read(wr); },
                       [r](asset_status_t st, const char *why) {
                           return asset_request_fail(r, st, "read threw: %s", why);
                       },
                       ASSET_E_IO);
    }
    static asset_status_t list(void *ctx, const char *uri, asset_list_t *l) noexcept {
        List wl(l);
        Mark on(tl_on_worker, static_cast<SourceHolder *>(ctx)->core); /* may drop the last */
        return guarded([&] { return static_cast<SourceHolder *>(ctx)->obj->list(view(uri), wl); },
                       [l](asset_status_t st, const char *why) {
                           return asset_list_fail(l, st, "list threw: %s", why);
                       },
                       ASSET_E_IO);
    }
    static void destroy(void *ctx) noexcept { delete static_cast<SourceHolder *>(ctx); }
};

} // namespace detail

/* ------------------------------------------------------------------------ */
/* Server                                                                    */
/* ------------------------------------------------------------------------ */

/* Shared ownership of one asset_server_t: copies share it; it is destroyed when the last
 * Server, Handle and Batch of it are gone. Dropping the last one from inside one of its
 * own callbacks is refused by the C library (logged): the server and the wrapper's
 * callables are then destroyed when that thread ends. The wrapper's flush() and wait()
 * hold a reference while they run, so that happens only when a callback is the last
 * owner. */
class Server {
  public:
    /* nullptr: defaults. operator bool is false if the server could not be made. */
    explicit Server(const asset_server_config_t *cfg = nullptr)
        : Server(asset_server_create(cfg), true) {}
    explicit Server(const asset_server_config_t &cfg) : Server(&cfg) {}
    /* Takes ownership of a C server (destroyed with the last owner; also when this throws
     * std::bad_alloc). */
    static Server adopt(asset_server_t *s) { return Server(s, true); }

    explicit operator bool() const noexcept { return core_ != nullptr; }
    asset_server_t *get() const noexcept { return core_ ? core_->s : nullptr; }

    Handle load(std::string_view uri, const asset_load_options_t *o = nullptr) const {
        if (!core_) return Handle();
        return Handle(core_, asset_server_load(core_->s, detail::str(uri).c_str(), o), true);
    }
    Batch load_group(const std::vector<std::string> &uris,
                     const asset_load_options_t *o = nullptr) const {
        if (!core_) return Batch();
        std::vector<const char *> v;
        v.reserve(uris.size());
        for (const std::string &u : uris) v.push_back(u.c_str());
        return Batch(core_, asset_server_load_group(core_->s, v.data(), v.size(), o), true);
    }
    Batch load_folder(std::string_view uri, const asset_load_options_t *o = nullptr) const {
        if (!core_) return Batch();
        return Batch(core_, asset_server_load_folder(core_->s, detail::str(uri).c_str(), o), true);
    }
    Batch load_manifest(std::string_view uri, const asset_load_options_t *o = nullptr) const {
        if (!core_) return Batch();
        return Batch(core_, asset_server_load_manifest(core_->s, detail::str(uri).c_str(), o),
                     true);
    }

    size_t flush() const {
        std::shared_ptr<detail::Core> keep = core_;
        return keep ? asset_server_flush(keep->s) : 0;
    }
    /* asset_server_flush_budget. A budget of 0 or less (what is left of a frame that ran
     * late) is the smallest flush, one of each step; cast, a negative one was unbounded. */
    size_t flush(std::chrono::nanoseconds budget) const {
        std::shared_ptr<detail::Core> keep = core_;
        const uint64_t ns = budget.count() > 0 ? static_cast<uint64_t>(budget.count()) : 0;
        return keep ? asset_server_flush_budget(keep->s, ns) : 0;
    }

    void invalidate(std::string_view uri) const {
        if (core_) asset_server_invalidate(core_->s, detail::str(uri).c_str());
    }
    void clear_caches() const {
        if (core_) asset_server_clear_caches(core_->s);
    }
    size_t cancel_tag(std::string_view tag, const Handle *keep = nullptr) const {
        return core_ ? asset_server_cancel_tag(core_->s, detail::str(tag).c_str(),
                                               keep ? keep->get() : nullptr)
                     : 0;
    }
    asset_stats_t stats() const {
        asset_stats_t st{};
        if (core_) asset_server_stats(core_->s, &st);
        return st;
    }
    /* asset_server_set_cache_budget: any loader by name; evicts down to it at once. */
    asset_status_t set_cache_budget(std::string_view loader, size_t bytes) const {
        if (!core_) return ASSET_E_INVALID;
        return static_cast<asset_status_t>(
            asset_server_set_cache_budget(core_->s, detail::str(loader).c_str(), bytes));
    }
    asset_status_t mount(std::string_view pkg, std::string_view dir) const {
        if (!core_) return ASSET_E_INVALID;
        return static_cast<asset_status_t>(
            asset_server_mount(core_->s, detail::str(pkg).c_str(), detail::str(dir).c_str()));
    }
    /* files must outlive the server (normally a generated static table). */
    asset_status_t mount_embedded(std::string_view pkg, const asset_embedded_file_t *files,
                                  size_t count) const {
        if (!core_) return ASSET_E_INVALID;
        return static_cast<asset_status_t>(
            asset_server_mount_embedded(core_->s, detail::str(pkg).c_str(), files, count));
    }
    asset_status_t mem_put(std::string_view key, const void *data, size_t size) const {
        if (!core_) return ASSET_E_INVALID;
        return static_cast<asset_status_t>(
            asset_mem_put(core_->s, detail::str(key).c_str(), data, size));
    }
    asset_status_t mem_put(std::string_view key, std::string_view bytes) const {
        return mem_put(key, bytes.data(), bytes.size());
    }
    asset_status_t mem_remove(std::string_view key) const {
        if (!core_) return ASSET_E_INVALID;
        return static_cast<asset_status_t>(asset_mem_remove(core_->s, detail::str(key).c_str()));
    }

    /* asset_server_reload: reloads uri's live handles (a fresh read and parse). */
    void reload(std::string_view uri) const {
        if (core_) asset_server_reload(core_->s, detail::str(uri).c_str());
    }

    /* asset_server_spawn: f(Task &) -> asset_status_t runs on a worker; what it sets with
     * Task::set_value becomes the handle's value. The callable is destroyed once the task
     * is over (ran, cancelled before it ran, or the server destroyed), at the flush after
     * that: a callable that holds a Handle, Batch or Server of its own server keeps the
     * server alive until then, so flush it again before dropping its last Server. A
     * callable that drops the last share inside f (a Server it held, or a value holding
     * one that a second set_value replaced), on the worker, where the server cannot be
     * destroyed: a thread of the wrapper's own destroys it once f returned (Reaper). A null
     * function pointer or an empty std::function is the C API's NULL fn: the handle fails
     * with ASSET_E_INVALID. */
    template <class F> Handle spawn(F &&f, const asset_load_options_t *o = nullptr) const;

    /* Registers a loader object; the server holds a reference until it is destroyed.
     * cache_budget 0: the server's. Returns as asset_server_register_loader. A loader or
     * source holding a Server, Handle or Batch of this server is a cycle: the server is
     * never destroyed. Hold get() (the C server outlives every call into them) instead. */
    asset_status_t add_loader(std::shared_ptr<Loader> loader, size_t cache_budget = 0) const {
        if (!core_ || !loader) return ASSET_E_INVALID;
        /* owned here until registered: the suffix list may throw std::bad_alloc */
        std::unique_ptr<detail::LoaderHolder> owned(
            new detail::LoaderHolder{std::move(loader), {}, core_.get()});
        for (const std::string &s : owned->obj->suffixes()) owned->suffixes.push_back(s.c_str());
        owned->suffixes.push_back(nullptr);
        detail::LoaderHolder *holder = owned.get();
        asset_loader_t vt{};
        vt.abi = ASSET_LOADER_ABI;
        vt.name = holder->obj->name().c_str();
        vt.suffixes = holder->suffixes.data();
        vt.claims = &detail::LoaderHolder::claims;
        vt.parse = &detail::LoaderHolder::parse;
        vt.free_value = &detail::LoaderHolder::free_value;
        vt.destroy = &detail::LoaderHolder::destroy;
        vt.flags = holder->obj->flags();
        vt.finalize = holder->obj->finalizes() ? &detail::LoaderHolder::finalize : nullptr;
        int rc = asset_server_register_loader(core_->s, &vt, holder, cache_budget);
        if (rc == ASSET_OK) owned.release(); /* the server's: its destroy deletes it */
        return static_cast<asset_status_t>(rc);
    }
    /* Registers a source object (replacing any source of its scheme); the server holds
     * a reference until the source is destroyed. Returns as asset_server_register_source. */
    asset_status_t add_source(std::shared_ptr<Source> source) const {
        if (!core_ || !source) return ASSET_E_INVALID;
        auto *holder = new detail::SourceHolder{std::move(source), core_.get()};
        asset_source_t vt{};
        vt.abi = ASSET_SOURCE_ABI;
        vt.scheme = holder->obj->scheme().c_str();
        vt.flags = holder->obj->flags();
        vt.read = &detail::SourceHolder::read;
        vt.list = holder->obj->lists() ? &detail::SourceHolder::list : nullptr;
        vt.destroy = &detail::SourceHolder::destroy;
        int rc = asset_server_register_source(core_->s, &vt, holder);
        if (rc != ASSET_OK) delete holder;
        return static_cast<asset_status_t>(rc);
    }

  private:
    Server(asset_server_t *s, bool) : core_(s ? own(s) : nullptr) {}
    /* The control block of s. Out of memory for it (std::bad_alloc), s is destroyed before
     * the exception goes on, as std::shared_ptr deletes what it could not own: it was left,
     * its threads running (a review). */
    static std::shared_ptr<detail::Core> own(asset_server_t *s) {
        std::unique_ptr<asset_server_t, void (*)(asset_server_t *)> guard(s, &asset_server_destroy);
        detail::Core *c = new detail::Core(guard.get());
        guard.release(); /* the Core's: Core::release destroys it, also when the shared_ptr
                            cannot be made (it calls its deleter then) */
        return std::shared_ptr<detail::Core>(c, &detail::Core::release);
    }
    std::shared_ptr<detail::Core> core_;
};

/* What a spawned task's function gets (asset_task_t). Worker thread. */
class Task {
  public:
    explicit Task(asset_task_t *t, detail::Core *core = nullptr) noexcept : t_(t), core_(core) {}
    bool cancelled() const { return asset_task_cancelled(t_); }
    std::string_view uri() const { return detail::view(asset_task_uri(t_)); }
    /* The value: a T made with new, deleted once no handle holds it (at the next flush,
     * on the flush thread, without the server's lock: T may hold Handles of the server).
     * T may be const (handles hand the value out as const anyway). */
    template <class T> void set_value(std::unique_ptr<T> value, size_t cost_bytes) {
        asset_task_set_value(t_, detail::as_void(value.release()), cost_bytes, &del<T>, core_);
    }
    template <class T> /* no std::unique_ptr<T[]>, as Parse::set_value */
    void set_value(std::unique_ptr<T[]> value, size_t cost_bytes) = delete;
    /* asset_task_set_value: value freed with free_fn(value, user), or asset_free (NULL):
     * a void * from asset_alloc, say. */
    void set_value(void *value, size_t cost_bytes, void (*free_fn)(void *, void *) = nullptr,
                   void *user = nullptr) {
        asset_task_set_value(t_, value, cost_bytes, free_fn, user);
    }
    /* A typed pointer with no free_fn (or a nullptr one) does not compile: a `new T`
     * would be asset_free()d (no destructor, a new/free mismatch). Pass std::unique_ptr<T>,
     * a free_fn, or the pointer as void * when asset_alloc made it. */
    template <class T> void set_value(T *value, size_t cost_bytes) = delete;
    template <class T, class = typename std::enable_if<!std::is_void<T>::value>::type>
    void set_value(T *value, size_t cost_bytes, std::nullptr_t, void *user = nullptr) = delete;
    asset_status_t fail(asset_status_t st, std::string_view why) {
        return asset_task_fail(t_, st, "%.*s", detail::fmt_len(why), detail::fmt_data(why));
    }
    asset_task_t *get() const noexcept { return t_; }

  private:
    /* At a flush, after its callbacks: a T holding the last share of its server (every
     * Server and Handle dropped, the flush called through the C API) destroyed the server
     * under that flush; the share is parked instead, as a trampoline's is. */
    template <class T> static void del(void *v, void *core) noexcept {
        std::shared_ptr<detail::Core> keep;
        if (core) keep = static_cast<detail::Core *>(core)->weak_from_this().lock();
        delete static_cast<T *>(v);
        detail::park_if_last(keep);
    }
    asset_task_t *t_;
    detail::Core *core_; /* its server's, for del */
};

namespace detail {
template <class F> struct TaskBox {
    F f;
    Core *core; /* freed inside its flush: the callable may hold the last share */
    static asset_status_t run(asset_task_t *t, void *arg) noexcept {
        /* on a worker, where a destroy is refused: the callable may drop the last share,
         * which goes to the Reaper */
        Mark in(tl_on_worker, static_cast<TaskBox *>(arg)->core);
        Task task(t, static_cast<TaskBox *>(arg)->core);
        return guarded([&] { return static_cast<TaskBox *>(arg)->f(task); },
                       [t](asset_status_t st, const char *why) {
                           return asset_task_fail(t, st, "threw: %s", why);
                       },
                       ASSET_E_IO);
    }
    /* At a flush (or destroy). The callable may hold the last share: inside a flush
     * called through the C API it is parked, as a trampoline's is (left in Core::release,
     * the server stayed for good) */
    static void free(void *arg) noexcept {
        auto *box = static_cast<TaskBox *>(arg);
        Core *core = box->core;
        Mark in(tl_in_flush, core);
        std::shared_ptr<Core> keep = core->weak_from_this().lock(); /* none in destroy */
        delete box;
        park_if_last(keep);
    }
};
} // namespace detail

template <class F> Handle Server::spawn(F &&f, const asset_load_options_t *o) const {
    if (!core_) return Handle();
    if (detail::is_null_callable(f)) /* as the C API's NULL fn: failed ASSET_E_INVALID */
        return Handle(core_, asset_server_spawn(core_->s, nullptr, nullptr, nullptr, o), true);
    using Box = detail::TaskBox<std::decay_t<F>>;
    auto *box = new Box{std::forward<F>(f), core_.get()};
    asset_handle_t *h = asset_server_spawn(core_->s, &Box::run, box, &Box::free, o);
    if (!h) delete box; /* not spawned: free is not called */
    return Handle(core_, h, true);
}

} // namespace asset

#endif /* ASSET_SERVER_HPP */
