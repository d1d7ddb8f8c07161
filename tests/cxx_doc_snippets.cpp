// cxx_doc_snippets.cpp - the C++ code blocks of README.md and docs/cxx.md, as a reader
// copies them, compile (C++17, -Wall -Wextra -Wpedantic, -Werror with the others) and
// run. CMake copies each block into cxx_doc_snippets.inc as the body of a function
// doc_snippet_N() (its #include lines left out: they are here), inside a block that
// declares DOC_SNIPPET_LOCALS (a Server named `server`, the level a task captures). This
// file gives the names the blocks leave to the game (apply_theme, render, decode, ...)
// and runs every block from the source tree, where examples/assets is. A block edited
// so that it no longer compiles fails the build; one that crashes or leaks (asan,
// valgrind), the test cxx_doc_snippets.
#include <asset_server.hpp>
#include <cjson/cJSON.h>

#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <string_view>
#include <vector>

namespace {

int g_applied, g_errors, g_ticks, g_rendered, g_presented, g_decoded, g_navmeshes;

// README.md
void apply(const cJSON *) { g_applied++; }
void render() { g_rendered++; }
void present() { g_presented++; }
struct Frames { // `while (running)`: three frames, each a flush
    int left = 3;
    explicit operator bool() { return left-- > 0; }
} running;

// docs/cxx.md, "A frame loop"
void apply_theme(const cJSON *) { g_applied++; }
void show_error(std::string_view) { g_errors++; }
struct ProgressBar {
    void tick(std::string_view) { g_ticks++; }
} progress_bar;
void render(float) { g_rendered++; }

// "Loaders and sources as classes": Mesh is the block's own
template <class M> bool decode(const void *, size_t, M &) {
    g_decoded++;
    return false;
}

// "The asset graph, finalize and hot reload"
struct Level {
    asset_handle_t *tileset = nullptr; // the C handle p.depend() returns (the parent's)
    int gpu = 0;
};
int upload(const Level *) { return 1; }
void rebuild(const Level *, uint64_t) {}

// "Background tasks and priorities"
struct NavMesh {
    int polygons = 0;
};
NavMesh build_navmesh(const Level &, const std::function<bool()> &cancelled) {
    g_navmeshes++;
    return NavMesh{cancelled() ? 0 : 1};
}

// The locals every block may use, in a block around it: the server, and the level a
// task captures
#define DOC_SNIPPET_LOCALS \
    asset::Server server;  \
    std::shared_ptr<const Level> lvl = std::make_shared<const Level>();

#include "cxx_doc_snippets.inc"

} // namespace

int main() {
    run_doc_snippets();
    std::printf("cxx_doc_snippets: %d blocks ran\n", doc_snippet_count);
    return doc_snippet_count >= 5 ? 0 : 1; // README's one and docs/cxx.md's four
}
