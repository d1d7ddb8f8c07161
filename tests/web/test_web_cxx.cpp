// test_web_cxx.cpp - the C++17 wrapper on the single-threaded web build (no -pthread),
// where there is no worker (jobs run in the flush) and std::thread aborts: loads,
// callbacks and tasks work through the flush, and a task that drops the last share of
// its server inside a flush called through the C API leaves that server to the thread's
// end (the main thread's: process exit) instead of starting the Reaper's thread, which
// aborted the program there; so does a cached value holding that share, evicted there. (test_cxx
// and cxx_noexcept run on the -pthread build.)
#include <asset_server.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

namespace {

int g_failed = 0;
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            g_failed++;                                                                   \
        }                                                                                 \
    } while (0)

/* Flushes s (through the C API) until h is done, at most rounds times. */
bool flush_until_done(asset_server_t *s, const asset::Handle &h, int rounds) {
    for (int i = 0; i < rounds && !h.done(); i++) asset_server_flush(s);
    return h.done();
}

void loads_callbacks_and_tasks_run_in_the_flush() {
    asset::Server s;
    CHECK(s.mem_put("a.txt", "abc") == ASSET_OK);
    int fired = 0;
    asset::Handle h = s.load("mem://a.txt");
    h.on_completed([&fired](asset::Handle &done) { fired += done.loaded(); });
    asset::Handle t = s.spawn([](asset::Task &task) {
        task.set_value(std::make_unique<std::string>("made"), 4);
        return ASSET_OK;
    });
    CHECK(flush_until_done(s.get(), h, 1000) && flush_until_done(s.get(), t, 1000));
    const asset_bytes_t *b = h.value<asset_bytes_t>();
    CHECK(h.loaded() && b && b->size == 3);
    CHECK(fired == 1);
    const std::string *v = t.value<std::string>();
    CHECK(v && *v == "made");
}

void a_task_dropping_the_last_share_in_a_c_flush_does_not_abort() {
    asset_server_t *raw = nullptr;
    bool ran = false;
    {
        asset::Server s;
        raw = s.get();
        s.spawn([keep = s, &ran](asset::Task &) mutable {
            asset::Server last = std::move(keep); /* the last share, inside the flush */
            ran = true;
            return ASSET_OK;
        });
    } /* the callable holds the only share */
    for (int i = 0; i < 1000 && !ran; i++) asset_server_flush(raw); /* std::thread aborted */
    CHECK(ran); /* its server is left until this thread ends, as any share dropped in a
                 * C flush (docs/cxx.md) */
}

/* A value holding a Server of its own server (its loader's parse() copied one). */
struct Holder {
    static int freed;
    std::optional<asset::Server> keep;
    ~Holder() { ++freed; }
};
int Holder::freed = 0;
struct HolderLoader : asset::TypedLoader<Holder> {
    std::optional<asset::Server> *slot;
    explicit HolderLoader(std::optional<asset::Server> *s)
        : TypedLoader<Holder>("holder", {".hold"}), slot(s) {}
    asset_status_t parse(asset::Parse &p) override {
        auto v = std::make_unique<Holder>();
        v->keep = *slot;
        p.set_value(std::move(v), 100);
        return ASSET_OK;
    }
};

/* Evicted by a later insert inside a flush, a cached value that held the last share of
 * its server: the server cannot be destroyed inside its flush, and is left until the
 * thread ends (the -pthread build hands a worker's eviction to the Reaper: test_cxx). */
void a_value_holding_the_last_share_evicted_in_a_flush_does_not_hang() {
    asset_server_t *raw = nullptr;
    {
        std::optional<asset::Server> slot;
        asset::Server s;
        raw = s.get();
        CHECK(s.add_loader(std::make_shared<HolderLoader>(&slot), 150) == ASSET_OK);
        CHECK(s.mem_put("a.hold", "a") == ASSET_OK && s.mem_put("b.hold", "b") == ASSET_OK);
        slot = s;
        asset::Handle a = s.load("mem://a.hold");
        CHECK(flush_until_done(raw, a, 1000) && a.loaded()); /* cached, holding a share */
        slot.reset();
    } /* the cached value holds the only share */
    asset_handle_t *b = asset_server_load(raw, "mem://b.hold", nullptr);
    for (int i = 0; i < 1000 && !asset_handle_is_done(b); i++)
        asset_server_flush(raw); /* b's insert evicts a: its share goes in the flush */
    CHECK(asset_handle_state(b) == ASSET_STATE_LOADED);
    CHECK(Holder::freed == 1); /* a's value: evicted */
    asset_handle_release(b);
}

} // namespace

int main() {
    loads_callbacks_and_tasks_run_in_the_flush();
    a_task_dropping_the_last_share_in_a_c_flush_does_not_abort();
    a_value_holding_the_last_share_evicted_in_a_flush_does_not_hang();
    std::printf("test_web_cxx: %s\n", g_failed ? "FAILED" : "ok");
    return g_failed ? 1 : 0;
}
