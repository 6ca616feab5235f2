/* BatchNorm + ReLU in training, forward and backward: one JIT program on 2 threads over
 * x [256, 64, 32, 32] f32 (NCHW), against PyTorch's figure from the issue and a STREAM triad
 * measured in the same run.
 *
 *   x, dy: inputs [N, C, H, W] f32;  gamma, beta: the layer's parameters [C]
 *   y  = relu(batchnorm(x))      batch statistics over (N, H, W) per channel (training mode;
 *                                the running statistics are updated too)
 *   dx, dgamma, dbeta = gradients of sum(y * dy) with respect to x, gamma, beta (jg_grad)
 *
 * Bytes counted (the minimum any implementation must move, counted like STREAM counts: each
 * array read or written once per pass, write-allocate traffic not counted; an array is
 * A = N*C*H*W * sizeof(float) = 64 MiB, far larger than the caches):
 *
 *   bytes = 7 * A
 *     pass 1: read x                    the channel statistics (mean, variance)
 *     pass 2: read x, dy; write y       y needs the statistics; the ReLU mask with them, so
 *                                       the backward's reductions sum(dz), sum(dz * x_hat)
 *                                       (dz = dy * [y > 0]) can be taken in the same pass
 *     pass 3: read x, dy; write dx      dx needs those reductions, complete only after pass 2
 *
 * No fewer is possible: no y can be written before all of x has been read once (the
 * statistics), no dx before all of x and dy have been read after that (the reductions need
 * the mask), and x_hat is needed where the mask is 0 too, so dx must read x (or a stored
 * x_hat) again. When the backward runs apart from the forward (dy comes from later layers),
 * the minimum is 8 * A: the reductions read dy and x after y is written. gamma, beta, the
 * statistics and the gradients of the parameters (C floats each) are ignored.
 *
 * Lines (medians of REPEATS runs; the program and the triad alternate):
 *
 *   {"bench": "bn_relu_train_fwd_bwd_2t", "value": ms, "unit": "ms",
 *    "ref": "pytorch_1.13_jemalloc_quoted", "ref_value": 32.5, "ratio": 32.5 / ms,
 *    "target_ms": 10, "bound_ms": 7 * A / triad bandwidth, ...}
 *   {"bench": "bn_relu_train_fwd_bwd_2t_bandwidth", "value": 7 * A / time, "unit": "GB/s",
 *    "ref": "stream_triad_2t", "ref_value": GB/s, "ratio": jitgrad / triad, ...}
 *
 * PyTorch cannot be installed here: 32.5 ms is the figure for this machine. The
 * per-kernel profile of the program (and its fused groups) goes to stderr. */
#include "jitgrad.h"

#include "bench_program.h"
#include "bench_triad.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#define BN 256
#define BC 64
#define BHW (32 * 32)
#define NUMEL ((size_t)BN * BC * BHW)
#define REPEATS 15
#define THREADS 2
#define PYTORCH_MS 32.5
#define TARGET_MS 10.0

/* Checks y, dx, dgamma, dbeta against plain C in double: y and dx within 1e-4 of their
 * scale, the parameter gradients within 1e-4 of the sum of their terms' magnitudes. */
static int check(const float *x, const float *dy, const float *gamma, const float *beta,
                 const float *y, const float *dx, const float *dgamma, const float *dbeta)
{
    double worst = 0;
    for (int c = 0; c < BC; c++) {
        double s = 0, ss = 0, n = (double)BN * BHW;
        for (int i = 0; i < BN; i++)
            for (int k = 0; k < BHW; k++)
                s += x[((size_t)i * BC + c) * BHW + k];
        double mean = s / n;
        for (int i = 0; i < BN; i++)
            for (int k = 0; k < BHW; k++) {
                double d = x[((size_t)i * BC + c) * BHW + k] - mean;
                ss += d * d;
            }
        double rstd = 1 / sqrt(ss / n + 1e-5);
        double sg = 0, sgh = 0, ag = 0, agh = 0; /* sums of dz, dz * hat and magnitudes */
        for (int i = 0; i < BN; i++)
            for (int k = 0; k < BHW; k++) {
                size_t at = ((size_t)i * BC + c) * BHW + k;
                double hat = (x[at] - mean) * rstd, z = hat * gamma[c] + beta[c];
                double dz = z > 0 ? dy[at] : 0;
                worst = fmax(worst, fabs(y[at] - (z > 0 ? z : 0)) / 1e-4);
                sg += dz, sgh += dz * hat, ag += fabs(dz), agh += fabs(dz * hat);
            }
        worst = fmax(worst, fabs(dbeta[c] - sg) / (1e-4 * ag + 1e-6));
        worst = fmax(worst, fabs(dgamma[c] - sgh) / (1e-4 * agh + 1e-6));
        for (int i = 0; i < BN; i += 37)
            for (int k = 0; k < BHW; k++) {
                size_t at = ((size_t)i * BC + c) * BHW + k;
                double hat = (x[at] - mean) * rstd, z = hat * gamma[c] + beta[c];
                double dz = z > 0 ? dy[at] : 0;
                double want = gamma[c] * rstd * (dz - sg / n - hat * sgh / n);
                worst = fmax(worst, fabs(dx[at] - want) / (1e-4 * (1 + fabs(want))));
            }
    }
    if (!(worst <= 1)) {
        fprintf(stderr, "bench_bn_relu: results differ from plain C (%g x tolerance)\n", worst);
        return 1;
    }
    return 0;
}

int main(void)
{
    size_t bytes = NUMEL * sizeof(float);
    float *x = malloc(bytes), *dy = malloc(bytes), *y = malloc(bytes), *dx = malloc(bytes);
    float gamma[BC], beta[BC], dgamma[BC], dbeta[BC];
    if (!x || !dy || !y || !dx)
        return 1;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < NUMEL; i++) { /* channels off centre: the statistics must cope */
        x[i] = 3.0f + 0.25f * (float)(i / BHW % BC % 5) + bp_uniform(&rng);
        dy[i] = bp_uniform(&rng);
    }
    for (int c = 0; c < BC; c++) {
        gamma[c] = 1.0f + 0.5f * bp_uniform(&rng);
        beta[c] = 0.5f * bp_uniform(&rng);
    }

    jg_graph *g = jg_graph_new();
    jg_node *xn = jg_input(g, "x", JG_F32, jg_shape(BN, BC, 32, 32));
    jg_node *dyn = jg_input(g, "dy", JG_F32, jg_shape(BN, BC, 32, 32));
    jg_node *yn = jg_relu(jg_batchnorm("bn", xn, 0.1, 1e-5));
    jg_node *wrt[3] = { xn, jg_param_find(g, "bn.gamma"), jg_param_find(g, "bn.beta") };
    jg_node *grads[3] = { NULL, NULL, NULL };
    jg_grad(g, jg_mul(yn, dyn), wrt, 3, grads); /* gradients of sum(y * dy) */
    jg_node *outs[4] = { yn, grads[0], grads[1], grads[2] };
    jg_program *p = jg_compile(g, outs, 4, &(jg_opts){ .num_threads = THREADS,
                                                       .mode = JG_MODE_TRAIN,
                                                       .passes_off = getenv("JG_PASSES_OFF") });
    if (!p || jg_param_set(g, "bn.gamma", gamma, sizeof gamma) ||
        jg_param_set(g, "bn.beta", beta, sizeof beta) || jg_program_set(p, "x", x, bytes) ||
        jg_program_set(p, "dy", dy, bytes)) {
        fprintf(stderr, "bench_bn_relu: %s\n", p ? jg_errmsg(p) : jg_errmsg(g));
        return 1;
    }
    bp_run(p);
    if (jg_program_get(p, 0, y, bytes) || jg_program_get(p, 1, dx, bytes) ||
        jg_program_get(p, 2, dgamma, sizeof dgamma) || jg_program_get(p, 3, dbeta, sizeof dbeta)) {
        fprintf(stderr, "bench_bn_relu: %s\n", jg_errmsg(p));
        return 1;
    }
    if (check(x, dy, gamma, beta, y, dx, dgamma, dbeta))
        return 1;
    free(y);
    free(dx);

    bp_quoted torch = { "pytorch_1.13_jemalloc_quoted", PYTORCH_MS, TARGET_MS };
    if (bp_against_triad(p, "bn_relu_train_fwd_bwd_2t", 7.0 * (double)bytes, NUMEL, x, dy,
                         REPEATS, &torch))
        return 1;

    bp_profile(p, "bench_bn_relu");

    free(x);
    free(dy);
    jg_program_free(p);
    jg_graph_free(g);
    return 0;
}
