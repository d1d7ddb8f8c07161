/* status.c - asset_strerror() and asset_err_name(), generated from ASSET_STATUS_MAP. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

const char *asset_strerror(asset_status_t st) {
    switch (st) {
#define ASSET__STATUS_TEXT(name, code, text) \
    case ASSET_##name: return text;
        ASSET_STATUS_MAP(ASSET__STATUS_TEXT)
#undef ASSET__STATUS_TEXT
    }
    return "unknown status";
}

const char *asset_err_name(asset_status_t st) {
    switch (st) {
#define ASSET__STATUS_NAME(name, code, text) \
    case ASSET_##name: return #name;
        ASSET_STATUS_MAP(ASSET__STATUS_NAME)
#undef ASSET__STATUS_NAME
    }
    return "UNKNOWN";
}

bool asset__status_odd(asset_status_t st, const char *who, char odd[64]) {
    if (st <= 0 && strcmp(asset_err_name(st), "UNKNOWN") != 0) return false;
    snprintf(odd, 64, "%s returned an unexpected status (%d)", who, (int)st);
    return true;
}

asset_status_t asset__status_outcome(asset_status_t st, bool cancelled, const char *who,
                                     asset_status_t failure, char odd[64], const char **why) {
    if (st == ASSET_E_CANCELLED && cancelled) return st;
    if (st == ASSET_E_CANCELLED)
        snprintf(odd, 64, "%s returned ASSET_E_CANCELLED; nothing cancelled the %s", who,
                 strcmp(who, "task") ? "load" : "task");
    else if (!asset__status_odd(st, who, odd))
        return st;
    if (!*why) *why = odd;
    return failure;
}
