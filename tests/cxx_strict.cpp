// cxx_strict.cpp - both public headers compiled under the warnings that game and engine
// builds often turn into errors (tests/CMakeLists.txt: -Wshadow, -Wconversion,
// -Wold-style-cast, -Wuseless-cast, -Wzero-as-null-pointer-constant, clang's
// -Wreserved-identifier, ...): a header that warns there breaks such a build. It also
// instantiates the wrapper's templates that a typical program uses, then runs them.
#include <asset_server.h>
#include <asset_server.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

// the table tests/CMakeLists.txt has asset-embed write from tests/data/embed, compiled
// as C++ under this file's warnings
extern "C" {
extern const asset_embedded_file_t cxx_strict_table_files[];
extern const size_t cxx_strict_table_files_count;
}

namespace {

class Upper : public asset::TypedLoader<std::string> {
  public:
    Upper() : asset::TypedLoader<std::string>("upper", {".up"}, 0, true) {}
    asset_status_t parse(asset::Parse &p) override {
        std::string t(p.text());
        for (char &c : t)
            if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        if (p.add_labeled("lower", std::make_unique<std::string>(p.text()), t.size()) != ASSET_OK)
            return ASSET_E_INVALID;
        p.set_value(std::make_unique<std::string>(t), t.size());
        return ASSET_OK;
    }
    asset_status_t finalize(asset::Finalize &f) override {
        std::string t = *f.value<std::string>();
        f.set_value(std::make_unique<std::string>(t), t.size());
        return ASSET_OK;
    }
};

int run() {
    const std::chrono::milliseconds deadline(60000);
    asset::Server s;
    if (s.add_loader(std::make_shared<Upper>()) != ASSET_OK) return 1;
    if (s.mem_put("a.up", "hi") != ASSET_OK) return 2;
    asset::Handle h = s.load("mem://a.up");
    int fired = 0;
    h.on_completed([&fired](asset::Handle &d) { fired += d.loaded(); });
    if (h.wait(deadline) != ASSET_OK) return 3;
    if (!h.value<std::string>() || *h.value<std::string>() != "HI") return 4;
    s.flush();
    if (h.disconnect(h.on_reloaded([&fired] { fired += 10; })) != true) return 9;
#ifdef ASSET_SERVER_HPP_EXCEPTIONS
    if (h.value_or_throw<std::string>() != "HI") return 10;
#endif
    asset::Batch b = s.load_group({"mem://a.up"});
    if (b.wait(deadline) != ASSET_OK) return 5;
    if (asset_server_mount_embedded(s.get(), "strict", cxx_strict_table_files,
                                    cxx_strict_table_files_count) != ASSET_OK)
        return 7;
    asset::Handle t = s.load("pkg://strict/hello.txt");
    if (t.wait(deadline) != ASSET_OK) return 8;
    asset_trace_t *tr = asset_trace_create();
    asset_trace_event_t e;
    bool none = tr && !asset_trace_event(tr, 0, &e);
    asset_trace_destroy(tr);
    return fired == 1 && none ? 0 : 6;
}

} // namespace

int main() {
    int rc = run();
    std::printf("cxx_strict: %s (%d)\n", rc ? "FAILED" : "ok", rc);
    return rc;
}
