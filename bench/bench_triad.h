/* The STREAM triad a[i] = b[i] + s * c[i] on 2 threads, measured in the same run as a
 * memory-bound benchmark to give its bandwidth a reference: plain C at -O2 (GCC's optimize
 * attribute; baseline x86-64, i.e. at most SSE2 vectors), one pthread doing one half and the
 * calling thread the other, bytes = 3 * n * sizeof(float). Usage:
 *
 *     triad t;
 *     if (triad_init(&t, n, b_data, c_data)) ...   // copies b, c (touches every page)
 *     triad_run(&t);                               // one triad over n floats
 *     triad_free(&t);
 *
 * Header-only (static), shared by the benchmarks that report a fraction of the triad. */
#ifndef JG_BENCH_TRIAD_H
#define JG_BENCH_TRIAD_H

#include "bench_util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct triad {
    float *a, *b, *c;
    float s;
    size_t n;
    pthread_t worker;
    pthread_barrier_t start, done;
    bool quit;
} triad;

/* Plain C at -O2, whatever the bench itself is compiled with (CMake's Release is -O3); clang
 * has no optimize attribute and compiles it with the bench's flags. */
#if defined(__GNUC__) && !defined(__clang__)
#define PLAIN_O2 __attribute__((optimize("O2"), noinline))
#else
#define PLAIN_O2 __attribute__((noinline))
#endif

PLAIN_O2 static void triad_part(float *restrict a, const float *restrict b,
                                const float *restrict c, float s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        a[i] = b[i] + s * c[i];
}

static void triad_half(triad *t, int half)
{
    size_t lo = half ? t->n / 2 : 0, n = half ? t->n - t->n / 2 : t->n / 2;
    triad_part(t->a + lo, t->b + lo, t->c + lo, t->s, n);
}

static void *triad_worker(void *arg)
{
    triad *t = arg;
    for (;;) {
        pthread_barrier_wait(&t->start);
        if (t->quit)
            return NULL;
        triad_half(t, 1);
        pthread_barrier_wait(&t->done);
    }
}

/* One triad over the n floats (a void * argument, for bu_time_median). */
static void triad_run(void *arg)
{
    triad *t = arg;
    pthread_barrier_wait(&t->start);
    triad_half(t, 0);
    pthread_barrier_wait(&t->done);
}

/* Three arrays of n floats, b and c copied from the given data (every page touched before
 * timing), and the worker thread. Returns 0, or -1 (nothing left allocated). */
static int triad_init(triad *t, size_t n, const float *b, const float *c)
{
    *t = (triad){ .a = malloc(n * sizeof(float)), .b = malloc(n * sizeof(float)),
                  .c = malloc(n * sizeof(float)), .s = 3.0f, .n = n };
    if (!t->a || !t->b || !t->c) {
        free(t->a), free(t->b), free(t->c);
        return -1;
    }
    memset(t->a, 0, n * sizeof(float));
    memcpy(t->b, b, n * sizeof(float));
    memcpy(t->c, c, n * sizeof(float));
    pthread_barrier_init(&t->start, NULL, 2);
    pthread_barrier_init(&t->done, NULL, 2);
    if (pthread_create(&t->worker, NULL, triad_worker, t)) {
        pthread_barrier_destroy(&t->start);
        pthread_barrier_destroy(&t->done);
        free(t->a), free(t->b), free(t->c);
        return -1;
    }
    return 0;
}

static void triad_free(triad *t)
{
    t->quit = true;
    pthread_barrier_wait(&t->start);
    pthread_join(t->worker, NULL);
    pthread_barrier_destroy(&t->start);
    pthread_barrier_destroy(&t->done);
    free(t->a);
    free(t->b);
    free(t->c);
}

/* Times fn(arg) and the triad alternately, repeats times each after one warm-up of both, so
 * a change in machine load hits both alike; their median seconds go to *fn_s, *triad_s
 * (at most 64 repeats). */
static inline void triad_alternate(void (*fn)(void *), void *arg, triad *t, int repeats,
                            double *fn_s, double *triad_s)
{
    double tf[64], tt[64];
    repeats = repeats < 1 ? 1 : repeats > 64 ? 64 : repeats;
    fn(arg);
    triad_run(t);
    for (int r = 0; r < repeats; r++) {
        tf[r] = bu_time_median(fn, arg, 0, 1);
        tt[r] = bu_time_median(triad_run, t, 0, 1);
    }
    *fn_s = bu_median(tf, repeats);
    *triad_s = bu_median(tt, repeats);
}

#endif /* JG_BENCH_TRIAD_H */
