/* Thread pool micro-benchmark: the cost of one jit_pool_run with an empty fn (dispatch), with
 * a forced hand-off to the worker (no stealing possible), and with a ~10 µs workload, on 1
 * and 2 threads. One JSON line per figure, the median of 5 repeats of many runs; the share of
 * empty runs whose chunk 1 the caller stole says which kind of dispatch was measured. */
#include "jit/pool.h"

#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define REPEATS 5

/* An (almost) empty fn. It counts how often the caller ran chunk 1 itself: with nothing to
 * do in chunk 0 the caller often steals chunk 1 before the worker claims it, so the dispatch
 * figure is a mix of stolen (no hand-off) and handed-off runs. */
typedef struct steals {
    pthread_t caller;
    long chunk1, stolen; /* written by chunk 1's runner only, one per run */
} steals;

static void empty(void *ctx, int64_t begin, int64_t end, int thread)
{
    steals *s = ctx;
    (void)begin, (void)end;
    if (thread == 1) {
        s->chunk1++;
        s->stolen += pthread_equal(pthread_self(), s->caller) != 0;
    }
}

/* Chunk 0 waits until another thread has started chunk 1, so every run measures a real
 * publish-to-worker hand-off rather than the caller stealing an empty chunk. */
static void handoff(void *ctx, int64_t begin, int64_t end, int thread)
{
    _Atomic int *started = ctx;
    (void)begin, (void)end;
    if (thread != 0) {
        atomic_store_explicit(started, 1, memory_order_release);
        return;
    }
    while (!atomic_exchange_explicit(started, 0, memory_order_acquire))
        ;
}

typedef struct work {
    float *x;
} work;

/* Enough arithmetic per element that the ~10 µs is compute, not memory bandwidth. */
static void saxpy_steps(void *ctx, int64_t begin, int64_t end, int thread)
{
    (void)thread;
    float *x = ((work *)ctx)->x;
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        for (int s = 0; s < 8; s++)
            v = v * 0.999f + 0.001f;
        x[i] = v;
    }
}

/* Median over REPEATS of the mean ns per run over `iters` runs. */
static double time_runs(jit_pool *p, int64_t n, jit_pool_fn fn, void *ctx, int iters)
{
    double per[REPEATS];
    for (int i = 0; i < iters / 10; i++) /* warm up: workers hot, caches filled */
        jit_pool_run(p, n, 1, 1, fn, ctx);
    for (int r = 0; r < REPEATS; r++) {
        int64_t t0 = bu_now_ns();
        for (int i = 0; i < iters; i++)
            jit_pool_run(p, n, 1, 1, fn, ctx);
        per[r] = (double)(bu_now_ns() - t0) / iters;
    }
    return bu_median(per, REPEATS);
}

int main(void)
{
    jit_pool *pools[2] = { jit_pool_new(1), jit_pool_new(2) };
    if (!pools[0] || !pools[1]) {
        fprintf(stderr, "bench_pool: cannot create the pools\n");
        return 1;
    }

    /* Size the workload so one thread takes ~10 µs. */
    int64_t n = 1024;
    work w = { NULL };
    for (;;) {
        free(w.x);
        w.x = calloc((size_t)n, sizeof *w.x);
        if (!w.x)
            return 1;
        if (time_runs(pools[0], n, saxpy_steps, &w, 200) >= 10000 || n >= (1 << 24))
            break;
        n *= 2;
    }
    double t1 = time_runs(pools[0], n, saxpy_steps, &w, 200);
    n = (int64_t)((double)n * 10000 / t1);

    for (int t = 1; t <= 2; t++) {
        char name[64];
        steals s = { pthread_self(), 0, 0 };
        snprintf(name, sizeof name, "pool_dispatch_%dt", t);
        bu_emit(name, time_runs(pools[t - 1], 2, empty, &s, 200000), "ns");
        if (t == 2)
            bu_emit("pool_dispatch_2t_stolen", 100.0 * (double)s.stolen / (double)s.chunk1, "%");
    }
    _Atomic int started = 0;
    bu_emit("pool_handoff_2t", time_runs(pools[1], 2, handoff, &started, 100000), "ns");
    for (int t = 1; t <= 2; t++) {
        char name[64];
        snprintf(name, sizeof name, "pool_work10us_%dt", t);
        bu_emit(name, time_runs(pools[t - 1], n, saxpy_steps, &w, 20000), "ns");
    }

    free(w.x);
    jit_pool_free(pools[0]);
    jit_pool_free(pools[1]);
    return 0;
}
