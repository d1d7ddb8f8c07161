// main.cpp - a C++17 program using an installed asset_server through asset_server.hpp,
// with a folder compiled in by asset_server_embed() in a project without C enabled.
#include <asset_server.hpp>

#include "consumer_assets.h"

#include <cstdio>
#include <string>

int main() {
    asset::Server server;
    if (!server) {
        std::fprintf(stderr, "consumer_cxx: no server\n");
        return 1;
    }
    if (server.mount_embedded("core", consumer_assets_files, consumer_assets_files_count) !=
        ASSET_OK) {
        std::fprintf(stderr, "consumer_cxx: mount_embedded failed\n");
        return 1;
    }
    asset::Handle h = server.load("pkg://core/text/hello.txt");
    if (h.wait() != ASSET_OK) {
        std::fprintf(stderr, "consumer_cxx: %.*s\n", static_cast<int>(h.error_message().size()),
                     h.error_message().data());
        return 1;
    }
    const asset_bytes_t *b = h.value<asset_bytes_t>();
    std::string text(reinterpret_cast<const char *>(b->data), b->size);
    if (text != "hello from an embedded file\n") {
        std::fprintf(stderr, "consumer_cxx: unexpected content '%s'\n", text.c_str());
        return 1;
    }
    std::printf("consumer_cxx: ok (%zu embedded file)\n",
                static_cast<size_t>(consumer_assets_files_count));
    return 0;
}
