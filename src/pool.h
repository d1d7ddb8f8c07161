/* pool.h - the worker pool's interface: the priority heap of jobs and the threads that
 * drain it. Kept small so a web build can swap it (pthreads under Emscripten) without
 * touching handles, caches, loaders or batches. Included by internal.h. */
#ifndef ASSET_POOL_H
#define ASSET_POOL_H

/* [lock] held for the heap functions */
bool asset__heap_push(asset_server_t *s, asset__job_t *j);
void asset__heap_remove(asset_server_t *s, asset__job_t *j);
void asset__heap_update(asset_server_t *s, asset__job_t *j);
asset__job_t *asset__heap_pop(asset_server_t *s);
int asset__pool_start(asset_server_t *s);
void asset__pool_join(asset_server_t *s); /* after stopping = true */
#endif
