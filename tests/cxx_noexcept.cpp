// cxx_noexcept.cpp - the C++17 wrapper compiled with exceptions off (-fno-exceptions, as
// many game builds are): every template it instantiates must compile without try/catch,
// and a load with a callback, a batch, a task and a loader class must work.
#include <asset_server.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#ifdef ASSET_SERVER_HPP_EXCEPTIONS
#error "cxx_noexcept.cpp must be compiled with exceptions off"
#endif

namespace {

class Upper : public asset::TypedLoader<std::string> {
  public:
    Upper() : asset::TypedLoader<std::string>("upper", {".up"}, 0, true) {}
    asset_status_t parse(asset::Parse &p) override {
        std::string t(p.text());
        for (char &c : t)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        p.set_value(std::make_unique<std::string>(t), t.size());
        return ASSET_OK;
    }
};

class Echo : public asset::Source {
  public:
    Echo() : asset::Source("echo", 0, true) {}
    asset_status_t read(asset::Request &r) override { return r.write(r.path()); }
    asset_status_t list(std::string_view, asset::List &out) override { return out.add("a.up", 4); }
};

int failures;
#define CHECK(c)                                                                       \
    do {                                                                               \
        if (!(c)) {                                                                    \
            std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); \
            failures++;                                                                \
        }                                                                              \
    } while (0)

} // namespace

int main() {
    const std::chrono::milliseconds deadline(60000);
    int fired = 0;
    {
        asset::Server s;
        CHECK(s.add_loader(std::make_shared<Upper>()) == ASSET_OK);
        CHECK(s.add_source(std::make_shared<Echo>()) == ASSET_OK);
        asset::Handle h = s.load("echo://hi.up");
        h.on_completed([&fired](asset::Handle &d) { fired += d.loaded(); });
        h.on_reloaded([] {});
        CHECK(h.wait(deadline) == ASSET_OK);
        CHECK(h.value<std::string>() && *h.value<std::string>() == "HI.UP");
        s.flush();
        CHECK(fired == 1);
        asset::Batch b = s.load_folder("echo://dir");
        b.on_item_completed([&fired](asset::Batch &, asset::Handle &) { fired++; });
        b.on_completed([&fired](asset::Batch &) { fired++; });
        CHECK(b.wait(deadline) == ASSET_OK);
        s.flush();
        asset::Handle t = s.spawn([](asset::Task &task) {
            task.set_value(std::make_unique<int>(7), sizeof(int));
            return ASSET_OK;
        });
        CHECK(t.wait(deadline) == ASSET_OK && t.value<int>() && *t.value<int>() == 7);
    }
    CHECK(fired >= 3);
    std::printf("cxx_noexcept: %s\n", failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
