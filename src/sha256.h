/* sha256.h - SHA-256 (FIPS 180-4), for manifest integrity checks. */
#ifndef ASSET_SHA256_H
#define ASSET_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* Writes the lowercase hex digest (64 chars + NUL) of data into hex. */
void asset__sha256_hex(const void *data, size_t n, char hex[65]);

#endif
