/* fs.h - kept for the tests and fuzzers that include it: the platform layer's file
 * helpers (platform/fs.h) and, for POSIX-only ones, asset__open_beneath on
 * descriptors (platform/posix.h). Library code includes platform/fs.h. */
#ifndef ASSET_FS_H
#define ASSET_FS_H
#include "platform/fs.h"
#include "platform/posix.h"
#endif
