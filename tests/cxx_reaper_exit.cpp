// cxx_reaper_exit.cpp - the wrapper's Reaper (the thread that destroys a server whose last
// share went on one of its own workers) at program exit, with static objects: one
// constructed before the Reaper is destroyed after it, and may let a server's last share go
// on that server's worker from its destructor (a global game object that drops its Server
// while a task holding one ends). The Reaper was gone by then: its take() used its freed
// state (ASan: heap-use-after-free). The server must still be destroyed.
#include <asset_server.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace {

constexpr std::chrono::milliseconds kGenerous(60000); // a deadline, never a duration

struct Gate {
    std::mutex m;
    std::condition_variable cv;
    bool open = false;
    void set() {
        std::lock_guard<std::mutex> g(m);
        open = true;
        cv.notify_all();
    }
    bool wait() {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, kGenerous, [this] { return open; });
    }
};

// Its destruction shows that its server was destroyed.
class Marker : public asset::Loader {
  public:
    explicit Marker(Gate *gone) : asset::Loader("marker", {".marker"}), gone_(gone) {}
    ~Marker() override { gone_->set(); }
    asset_status_t parse(asset::Parse &p) override { return p.fail(ASSET_E_PARSE, "unused"); }

  private:
    Gate *gone_;
};

// A server whose last share goes on its worker, inside a task, once `go` opens. Returns
// whether it was destroyed (its loader) within the deadline.
bool drop_the_last_share_on_a_worker() {
    Gate go, gone;
    {
        asset::Server s;
        if (!s || s.add_loader(std::make_shared<Marker>(&gone)) != ASSET_OK) return false;
        asset::Handle h = s.spawn([srv = s, &go](asset::Task &) mutable {
            go.wait();
            srv = asset::Server(); /* the last share, on the worker: to the Reaper */
            return ASSET_OK;
        });
        if (!h) return false;
    } /* s and h go: the task's Server is the last share */
    go.set();
    return gone.wait();
}

// Constructed before main, so before the Reaper (a function-local static made on first
// need): destroyed after it.
struct Late {
    ~Late() {
        bool ok = drop_the_last_share_on_a_worker();
        std::printf("at exit, after the Reaper's end: server %s\n",
                    ok ? "destroyed" : "NOT destroyed");
        std::fflush(stdout);
        if (!ok) std::_Exit(1);
    }
} late;

} // namespace

int main() {
    /* makes the Reaper (and destroys a first server with it) */
    bool ok = drop_the_last_share_on_a_worker();
    std::printf("in main: server %s\n", ok ? "destroyed" : "NOT destroyed");
    return ok ? 0 : 1;
}
