/* The thread pool that runs JIT kernels: one parallel-for over a kernel's outer range.
 * Kernels are short (5-20 µs) and a training step runs ~50 of them, so hot workers spin on
 * an atomic generation counter for a bounded time before sleeping, and the split of a range
 * into chunks is a pure function of its arguments (deterministic results). */
#ifndef JG_JIT_POOL_H
#define JG_JIT_POOL_H

#include "util/hidden.h"

#include <stdint.h>

typedef struct jit_pool jit_pool;

/* Computes fn's part [begin, end) of a run. `thread` is the chunk's index, in
 * [0, jit_pool_threads(p)): calls of one run that may overlap in time get distinct values, so
 * it can index per-thread scratch memory. Chunk 0 always runs on the calling thread. */
typedef void (*jit_pool_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* Creates a pool of n_threads (1..JIT_POOL_MAX_THREADS) threads counting the caller: starts
 * n_threads - 1 workers. NULL on failure (bad count, out of memory, no thread). Idle workers
 * spin for ~100 µs, then sleep; they never burn CPU while the pool is unused. */
#define JIT_POOL_MAX_THREADS 1024
HIDDEN jit_pool *jit_pool_new(int n_threads);
/* Stops and joins the workers, frees the pool. NULL is a no-op. Not during a run. */
HIDDEN void jit_pool_free(jit_pool *p);
/* The pool's thread count, caller included; 1 for NULL. */
HIDDEN int jit_pool_threads(const jit_pool *p);

/* Runs fn over [0, n) split into at most jit_pool_threads(p) contiguous chunks whose
 * boundaries are multiples of align (the last chunk ends at n); returns when every chunk is
 * done. The split is a pure function of (n, align, min_chunk, threads): chunk sizes differ by
 * at most one align block, and chunks smaller than min_chunk (in units of n) are not worth a
 * thread, so fewer chunks are used, down to one, which runs inline with no synchronisation.
 * n <= 0 calls nothing; align and min_chunk below 1 count as 1; p NULL runs inline.
 * One run at a time per pool: not concurrently from several threads, nor from inside fn
 * (distinct pools may run concurrently). */
HIDDEN void jit_pool_run(jit_pool *p, int64_t n, int64_t align, int64_t min_chunk,
                         jit_pool_fn fn, void *ctx);

/* How run splits [0, n) (what run does, exposed for tests and callers sizing scratch):
 * returns the chunk count k >= 1 (0 when n <= 0); chunk c is [jit_pool_chunk_begin(.., c),
 * jit_pool_chunk_begin(.., c + 1)) with chunk_begin(k) = n. */
HIDDEN int jit_pool_split(int64_t n, int64_t align, int64_t min_chunk, int threads);
HIDDEN int64_t jit_pool_chunk_begin(int64_t n, int64_t align, int k, int c);

/* The number of online CPUs (sysconf), at least 1 (and at most JIT_POOL_MAX_THREADS). */
HIDDEN int jit_pool_default_threads(void);

#endif
