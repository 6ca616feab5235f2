/* GEMM kernel benchmark: JIT'd sgemm (src/jit/gemm.c) at M = N = K = 256 ... 2048 and at the
 * demo MLP's shapes, on 1 and 2 threads, against the FMA peak measured in the same run (a
 * JIT'd loop of 24 independent vector FMA chains) and, when libopenblas.so.0 can be opened,
 * OpenBLAS's cblas_sgemm (loaded with dlopen, so the bench never needs it to build). One JSON
 * line per figure. Each figure is the best of up to 30 samples of >= 5 ms (at most ~2 s in
 * all): the machine is shared, and the best sample is the one nothing else disturbed. The
 * 1-thread figures (and the peak) count the thread's CPU time, so time the scheduler gives
 * to other processes is not charged to the kernel; 2-thread figures are wall-clock. */
#include "bench_peak.h"
#include "jit/gemm.h"
#include "jit/pool.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAMPLES 30
#define SAMPLE_SECONDS 0.005
#define BUDGET_SECONDS 2.0

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Runs fn(ctx) repeatedly; returns the best seconds per call over the samples. */
static double best_time(void (*fn)(void *), void *ctx, clockid_t clock)
{
    fn(ctx); /* warm-up: caches, page faults */
    double start = now_s(CLOCK_MONOTONIC), t0 = now_s(clock);
    fn(ctx);
    double once = now_s(clock) - t0;
    int reps = once > 0 ? (int)(SAMPLE_SECONDS / once) + 1 : 1000;
    double best = 1e30;
    for (int r = 0; r < SAMPLES && (r < 3 || now_s(CLOCK_MONOTONIC) - start < BUDGET_SECONDS);
         r++) {
        t0 = now_s(clock);
        for (int i = 0; i < reps; i++)
            fn(ctx);
        double t = (now_s(clock) - t0) / reps;
        best = t < best ? t : best;
    }
    return best;
}

static void line(const char *bench, double value, const char *ref, double ref_value)
{
    printf("{\"bench\": \"%s\", \"value\": %.1f, \"unit\": \"GFLOP/s\", \"ref\": \"%s\", "
           "\"ref_value\": %.1f, \"ratio\": %.3f}\n",
           bench, value, ref, ref_value, ref_value > 0 ? value / ref_value : 0.0);
    fflush(stdout);
}

static jit_kernel_fn compile(jit_session *s, jit_module *m, LLVMValueRef fn)
{
    char err[512];
    void *addr = NULL;
    jit_compile_info info;
    if (!fn || jit_compile(s, m, fn, false, &addr, &info, err, sizeof err) != JG_OK) {
        fprintf(stderr, "bench_gemm: compile failed: %s\n", fn ? err : "no kernel");
        exit(1);
    }
    return (jit_kernel_fn)addr;
}

/* ---- GEMM ---------------------------------------------------------------------------- */

typedef struct gemm_run {
    jit_kernel_fn k;
    void **bufs;
    int64_t outer, align;
    char *scratch[2];
    size_t scratch_size;
    jit_pool *pool;
} gemm_run;

static void run_1t(void *ctx)
{
    gemm_run *r = ctx;
    r->k(r->bufs, 0, r->outer, r->scratch[0]);
}

static void chunk(void *ctx, int64_t begin, int64_t end, int thread)
{
    gemm_run *r = ctx;
    r->k(r->bufs, begin, end, r->scratch[thread]);
}

static void run_pool(void *ctx)
{
    gemm_run *r = ctx;
    jit_pool_run(r->pool, r->outer, r->align, 1, chunk, r);
}

static float *random_floats(int64_t n, uint64_t seed)
{
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(seed >> 40) / 16777216.0 - 0.5);
    }
    return p;
}

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta, float *c,
                         int ldc);
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };

typedef struct blas_run {
    sgemm_fn sgemm;
    int m, n, k, tb, ta;
    const float *a, *b;
    float *c;
} blas_run;

static void run_blas(void *ctx)
{
    blas_run *r = ctx;
    r->sgemm(CBLAS_ROW_MAJOR, r->ta ? CBLAS_TRANS : CBLAS_NO_TRANS,
             r->tb ? CBLAS_TRANS : CBLAS_NO_TRANS, r->m, r->n, r->k, 1.0f, r->a,
             r->ta ? r->m : r->k, r->b, r->tb ? r->k : r->n, 0.0f, r->c, r->n);
}

typedef struct blas {
    sgemm_fn sgemm;
    void (*set_threads)(int);
} blas;

/* One shape: C[m, n] = A x B with A stored transposed when ta (A^T is k x m row-major), B
 * when tb. Prints the 1-thread figure (and 2-thread with a pool) against the peak, and
 * against OpenBLAS when it is there. */
static void bench_shape(jit_session *s, int width, jit_pool *pool, const blas *ob,
                        const char *name, int64_t m, int64_t n, int64_t k, bool ta, bool tb,
                        double peak)
{
    jit_module mod;
    jit_module_new(s, &mod, "sgemm");
    emit_ctx e = { .width = width };
    gemm_desc d = { .dtype = JG_F32, .m = m, .n = n, .k = k,
                    .a = { .slot = 0, .rs = ta ? 1 : k, .cs = ta ? m : 1 },
                    .b = { .slot = 1, .rs = tb ? 1 : n, .cs = tb ? k : 1 },
                    .out_slot = 2 };
    gemm_run r = { 0 };
    LLVMValueRef fn = gemm_emit(&e, &mod, &d, &r.outer, &r.align, &r.scratch_size);
    r.k = compile(s, &mod, fn);
    float *a = random_floats(m * k, 1), *b = random_floats(k * n, 2), *c = random_floats(m * n, 3);
    void *bufs[3] = { a, b, c };
    r.bufs = bufs;
    r.scratch[0] = aligned_alloc(64, (r.scratch_size + 63) / 64 * 64);
    r.scratch[1] = aligned_alloc(64, (r.scratch_size + 63) / 64 * 64);
    double flop = 2.0 * (double)m * (double)n * (double)k;
    char bench[96];
    snprintf(bench, sizeof bench, "sgemm_1t_%s", name);
    double g1 = flop / best_time(run_1t, &r, CLOCK_THREAD_CPUTIME_ID) * 1e-9;
    line(bench, g1, "fma_peak", peak);
    blas_run br = { ob->sgemm, (int)m, (int)n, (int)k, tb, ta, a, b, c };
    if (ob->sgemm) {
        ob->set_threads(1);
        double t = best_time(run_blas, &br, CLOCK_THREAD_CPUTIME_ID);
        line(bench, g1, "openblas", flop / t * 1e-9);
    }
    if (pool) {
        r.pool = pool;
        snprintf(bench, sizeof bench, "sgemm_2t_%s", name);
        double g2 = flop / best_time(run_pool, &r, CLOCK_MONOTONIC) * 1e-9;
        line(bench, g2, "fma_peak_2t", 2 * peak);
        if (ob->sgemm) {
            ob->set_threads(2);
            line(bench, g2, "openblas", flop / best_time(run_blas, &br, CLOCK_MONOTONIC) * 1e-9);
        }
    }
    free(r.scratch[0]);
    free(r.scratch[1]);
    free(a);
    free(b);
    free(c);
}

int main(void)
{
    char err[512];
    jit_session *s = jit_session_new(&(jit_target){ 0 }, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_gemm: %s\n", err);
        return 1;
    }
    int width = jit_vector_bits(s) / 32;
    width = width < 1 ? 1 : width;

    double peak = fma_peak();
    line("fma_peak_1t", peak, "fma_peak", peak);

    /* OpenBLAS with its own CPU detection (the environment may pin a core type). */
    blas ob = { 0 };
    unsetenv("OPENBLAS_CORETYPE");
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        *(void **)&ob.sgemm = dlsym(lib, "cblas_sgemm");
        *(void **)&ob.set_threads = dlsym(lib, "openblas_set_num_threads");
        if (!ob.sgemm || !ob.set_threads)
            ob.sgemm = NULL;
    }
    int threads = jit_pool_default_threads() >= 2 ? 2 : 1;
    jit_pool *pool = threads == 2 ? jit_pool_new(2) : NULL;

    static const int sizes[] = { 256, 512, 1024, 2048 };
    for (int i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof name, "%d", sizes[i]);
        bench_shape(s, width, pool, &ob, name, sizes[i], sizes[i], sizes[i], false, false, peak);
    }
    /* The demo MLP's layer (784 -> 256, batch 128): forward, then the two backward GEMMs. */
    bench_shape(s, width, pool, &ob, "fwd_128x784x256", 128, 256, 784, false, false, peak);
    bench_shape(s, width, pool, &ob, "dx_128x256xT784", 128, 784, 256, false, true, peak);
    bench_shape(s, width, pool, &ob, "dw_T784x128x256", 784, 256, 128, true, false, peak);

    jit_pool_free(pool);
    if (lib)
        dlclose(lib);
    jit_session_free(s);
    return 0;
}
