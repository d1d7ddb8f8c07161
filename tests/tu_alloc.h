/* tu_alloc.h - a counting allocator for a suite's whole process: installed with
 * asset_set_allocator(&tu_alloc_counting) in main, before any server. It counts the
 * library's live blocks and bytes and its calls, and fails allocations of one thread on
 * demand (out of memory where the test says). */
#ifndef TU_ALLOC_H
#define TU_ALLOC_H

#include <stdatomic.h>

#include <asset_server.h>

extern const asset_allocator_t tu_alloc_counting;

/* Blocks and bytes live (allocated and not freed), and asset_alloc/asset_realloc calls
 * (a failed one too), over every thread. */
extern atomic_long tu_alloc_blocks, tu_alloc_bytes, tu_alloc_calls;

/* This thread's next tu_fail_allocs allocations (asset_alloc) fail, after letting
 * tu_alloc_skip through; its next tu_fail_reallocs reallocs (asset_realloc, of NULL too)
 * fail. A test reads them back to know whether the failure was met. */
extern _Thread_local int tu_fail_allocs, tu_alloc_skip, tu_fail_reallocs;

#endif
