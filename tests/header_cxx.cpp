// header_cxx.cpp - the public header compiles as C++11 (-Wall -Wextra -Wpedantic) and
// its functions link from C++ against the shared library (extern "C", visibility).
#include <asset_server.h>

#include <cstdio>
#include <cstring>

static_assert(ASSET_OK == 0, "ASSET_OK is 0");
static_assert(ASSET_E_NOT_FOUND < 0, "errors are negative");
static_assert(sizeof(asset_bytes_t) >= sizeof(size_t), "asset_bytes_t is complete");

int main() {
    const char *text = asset_strerror(ASSET_E_NOT_FOUND);
    const char *name = asset_err_name(ASSET_E_NOT_FOUND);
    if (text == nullptr || name == nullptr || std::strcmp(name, "E_NOT_FOUND") != 0) {
        std::fprintf(stderr, "header_cxx: unexpected asset_err_name(ASSET_E_NOT_FOUND)\n");
        return 1;
    }

    asset_server_config_t cfg = {};
    cfg.max_workers = 1;
    asset_server_t *s = asset_server_create(&cfg);
    if (s == nullptr) {
        std::fprintf(stderr, "header_cxx: asset_server_create failed\n");
        return 1;
    }
    asset_stats_t st;
    asset_server_stats(s, &st);
    asset_server_destroy(s);
    std::printf("header_cxx: ok (%s)\n", text);
    return 0;
}
