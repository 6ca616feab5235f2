/* 2x2 max-pooling in training, forward and backward: one JIT program on 2 threads over
 * x [128, 32, 28, 28] f32 (the Fashion-MNIST CNN's first block), against a STREAM triad
 * measured in the same run.
 *
 *   y  = max_pool2d(x, 2x2, stride 2)           [128, 32, 14, 14]
 *   dx = gradient of sum(y * dy) for x          dy: an input of y's shape
 *
 * Bytes counted (the minimum, counted like STREAM: A = x's size, 12.8 MB):
 *   forward: read x, write y (A + A/4); backward: read x, dy, write dx (2A + A/4), the
 *   window's maximum found again from x rather than read from y. bytes = 3.5 * A.
 *
 * Lines (medians of REPEATS runs; the program and the triad alternate):
 *   {"bench": "max_pool_train_fwd_bwd_2t", "value": ms, "unit": "ms", ...}
 *   {"bench": "max_pool_train_fwd_bwd_2t_bandwidth", "value": GB/s, "ref": "stream_triad_2t",
 *    "ratio": jitgrad / triad, ...}
 * The per-kernel profile goes to stderr. */
#include "jitgrad.h"

#include "bench_program.h"
#include "bench_triad.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#define PN 128
#define PC 32
#define PH 28
#define NUMEL ((size_t)PN * PC * PH * PH)
#define REPEATS 25
#define THREADS 2

/* y and dx against plain C: exact (no arithmetic but the choice of the maximum; the first
 * maximum in the window takes dy, as jg_max_pool2d's JG_TIES_FIRST). */
static int check(const float *x, const float *dy, const float *y, const float *dx)
{
    const int oh = PH / 2;
    for (size_t nc = 0; nc < (size_t)PN * PC; nc++)
        for (int i = 0; i < oh; i++)
            for (int j = 0; j < oh; j++) {
                const float *w = x + nc * PH * PH + (size_t)(2 * i) * PH + 2 * j;
                float m = w[0];
                int first = 0;
                for (int t = 1; t < 4; t++)
                    if (w[t / 2 * PH + t % 2] > m)
                        m = w[t / 2 * PH + t % 2], first = t;
                size_t o = nc * oh * oh + (size_t)i * oh + j;
                for (int t = 0; t < 4; t++) {
                    size_t at = (size_t)(w - x) + (size_t)(t / 2 * PH + t % 2);
                    float want = t == first ? dy[o] : 0.0f;
                    if (dx[at] != want || y[o] != m) {
                        fprintf(stderr, "bench_max_pool: results differ from plain C at %zu "
                                "(dx %g, want %g; y %g, want %g)\n", at, dx[at], want, y[o], m);
                        return 1;
                    }
                }
            }
    return 0;
}

int main(void)
{
    size_t bytes = NUMEL * sizeof(float), ybytes = bytes / 4;
    float *x = malloc(bytes), *dy = malloc(ybytes), *y = malloc(ybytes), *dx = malloc(bytes);
    if (!x || !dy || !y || !dx)
        return 1;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < NUMEL; i++)
        x[i] = bp_uniform(&rng);
    for (size_t i = 0; i < NUMEL / 4; i++)
        dy[i] = bp_uniform(&rng);

    jg_graph *g = jg_graph_new();
    jg_node *xn = jg_input(g, "x", JG_F32, jg_shape(PN, PC, PH, PH));
    jg_node *dyn = jg_input(g, "dy", JG_F32, jg_shape(PN, PC, PH / 2, PH / 2));
    jg_node *yn = jg_max_pool2d(xn, 2, 2, 2, 2, 0, 0);
    jg_node *dxn = NULL;
    jg_grad(g, jg_mul(yn, dyn), &xn, 1, &dxn);
    jg_node *outs[2] = { yn, dxn };
    jg_program *p = jg_compile(g, outs, 2, &(jg_opts){ .num_threads = THREADS,
                                                       .mode = JG_MODE_TRAIN,
                                                       .passes_off = getenv("JG_PASSES_OFF") });
    if (!p || jg_program_set(p, "x", x, bytes) || jg_program_set(p, "dy", dy, ybytes)) {
        fprintf(stderr, "bench_max_pool: %s\n", p ? jg_errmsg(p) : jg_errmsg(g));
        return 1;
    }
    bp_run(p);
    if (jg_program_get(p, 0, y, ybytes) || jg_program_get(p, 1, dx, bytes)) {
        fprintf(stderr, "bench_max_pool: %s\n", jg_errmsg(p));
        return 1;
    }
    if (check(x, dy, y, dx))
        return 1;
    free(y);

    if (bp_against_triad(p, "max_pool_train_fwd_bwd_2t", 3.5 * (double)bytes, NUMEL, x, dx,
                         REPEATS, NULL))
        return 1;

    bp_profile(p, "bench_max_pool");

    free(x);
    free(dy);
    free(dx);
    jg_program_free(p);
    jg_graph_free(g);
    return 0;
}
