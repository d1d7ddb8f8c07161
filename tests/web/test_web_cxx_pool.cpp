/* test_web_cxx_pool.cpp - the C++ wrapper's Reaper thread on the web's pthreads build
 * when Emscripten's pool of Web Workers is used up: a callable dropping its server's last
 * share on the worker running it hands the server to the Reaper, whose thread, made past
 * the pool, starts only once the main thread returns to its event loop. A node program
 * never does: the program's end joined that thread and hung (nineteenth review). The
 * server is destroyed at the program's end instead; the check runs after the wrapper's
 * static objects are destroyed (a global made before them is destroyed after them). */
#include <asset_server.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace {

std::atomic<int> g_destroyed{0};

struct Witness : asset::Loader {
    Witness() : Loader("witness", {".witness"}) {}
    ~Witness() override { ++g_destroyed; }
    asset_status_t parse(asset::Parse &) override { return ASSET_E_PARSE; }
};

/* runs after the Reaper's end: the server it was handed must be destroyed by then */
struct AtTheEnd {
    bool armed = false;
    ~AtTheEnd() {
        if (!armed) return;
        bool ok = g_destroyed.load() == 1;
        std::printf("[%s] the server left to the Reaper past the pool is destroyed at the end\n",
                    ok ? " ok " : "FAIL");
        std::fflush(stdout);
        if (!ok) std::_Exit(1);
    }
} g_at_the_end;

} // namespace

int main() {
    asset_server_config_t c = {};
    c.max_workers = 2;
    /* use up the pool: servers of 2 workers each until one is refused (an even pool),
     * then give 2 back for the server under test */
    std::vector<asset_server_t *> others;
    for (int i = 0; i < 64; i++) {
        asset_server_t *x = asset_server_create(&c);
        if (!x) break;
        others.push_back(x);
    }
    if (others.empty() || others.size() == 64) {
        std::printf("[FAIL] the pool was not used up (%zu servers)\n", others.size());
        return 1;
    }
    asset_server_destroy(others.back());
    others.pop_back();

    std::mutex m;
    std::condition_variable cv;
    bool go = false, dropped = false;
    {
        asset::Server s(c);
        if (s.add_loader(std::make_shared<Witness>()) != ASSET_OK) return 1;
        s.spawn([&, keep = s](asset::Task &) mutable {
            {
                std::unique_lock<std::mutex> g(m);
                cv.wait_for(g, std::chrono::seconds(60), [&] { return go; });
            }
            {
                asset::Server last = std::move(keep);
            } /* the last share, on the worker: handed to the Reaper */
            std::lock_guard<std::mutex> g(m);
            dropped = true;
            cv.notify_all();
            return ASSET_OK;
        });
    } /* the callable holds the only share now */
    {
        std::unique_lock<std::mutex> g(m);
        go = true;
        cv.notify_all();
        if (!cv.wait_for(g, std::chrono::seconds(60), [&] { return dropped; })) {
            std::printf("[FAIL] the task did not run\n");
            return 1;
        }
    }
    for (asset_server_t *x : others) asset_server_destroy(x);
    g_at_the_end.armed = true;
    return 0; /* the Reaper's end: before, it joined a thread that never starts */
}
