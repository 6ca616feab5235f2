/* Convolution benchmark: jg_conv2d (src/ops/conv.c: one gather + one batched GEMM) on the
 * Fashion-MNIST CNN's layers at batch 128, forward alone and forward + backward (the
 * gradients a training step needs), compiled by the JIT on 1 thread and on all cores, in
 * GFLOP/s of the convolution's arithmetic (2*N*O*OH*OW*C/groups*KH*KW per pass; backward
 * counts dW, plus dX where the layer's input needs a gradient), against the FMA peak measured
 * in the same run (a JIT'd loop of 24 independent vector FMA chains, as in bench_gemm.c).
 * Each figure is the median wall time over repeats after a warm-up. One JSON line each. */
#include "jitgrad.h"

#include "bench_peak.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define REPEATS 15

/* ---- convolution layers */

typedef struct layer {
    const char *name;
    int n, c, h, w, o, k, pad;
    bool input_grad; /* the layer's input is an activation, so backward computes dX too */
} layer;

static void run_program(void *ctx)
{
    if (jg_program_run(ctx) != JG_OK) {
        fprintf(stderr, "bench_conv: %s\n", jg_errmsg((jg_program *)ctx));
        exit(1);
    }
}

static float *filled(int64_t n, uint64_t seed)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(seed >> 40) / 16777216.0 - 0.5);
    }
    return p;
}

/* Times one layer, forward or forward + backward, on `threads` threads (0: all cores). */
static void bench_layer(const layer *L, bool backward, int threads, double peak)
{
    jg_graph *g = jg_graph_new();
    jg_shape xs = jg_shape(L->n, L->c, L->h, L->w);
    jg_node *x = jg_input(g, "x", JG_F32, xs);
    jg_node *w = jg_param(g, "w", jg_shape(L->o, L->c, L->k, L->k), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(L->o), jg_zeros());
    jg_node *y = jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = L->pad, .pad_w = L->pad });
    jg_shape ys = jg_node_shape(y);
    jg_node *outs[4] = { y };
    int n_out = 1;
    if (backward) {
        /* loss = sum(y * r): dy = r, a dense gradient nothing can fold away */
        jg_node *r = jg_input(g, "r", JG_F32, ys);
        jg_node *wrt[3] = { w, b, x };
        int nw = L->input_grad ? 3 : 2;
        if (jg_grad(g, jg_sum(jg_mul(y, r), JG_ALL_AXES, false), wrt, nw, outs + 1) != JG_OK) {
            fprintf(stderr, "bench_conv: %s\n", jg_errmsg(g));
            exit(1);
        }
        n_out += nw;
    }
    jg_program *p = jg_compile(g, outs, n_out, &(jg_opts){ .num_threads = threads });
    if (!p) {
        fprintf(stderr, "bench_conv: %s\n", jg_errmsg(g));
        exit(1);
    }
    jg_program_stats st = { 0 };
    jg_program_stats_get(p, &st);
    int64_t nx = jg_shape_numel(xs), ny = jg_shape_numel(ys);
    float *xv = filled(nx, 1), *rv = filled(ny, 2);
    jg_program_set(p, "x", xv, (size_t)nx * sizeof *xv);
    if (backward)
        jg_program_set(p, "r", rv, (size_t)ny * sizeof *rv);
    double t = bu_time_median(run_program, p, 3, REPEATS);
    double pass = 2.0 * (double)ny * L->c * L->k * L->k;
    double flop = pass * (backward ? (L->input_grad ? 3 : 2) : 1);
    double gf = flop / t * 1e-9, ref = peak * st.threads;
    char name[96];
    snprintf(name, sizeof name, "conv2d_%s_%s_%dt", L->name, backward ? "fwd_bwd" : "fwd",
             st.threads);
    bu_line l;
    bu_begin(&l, name, gf, "GFLOP/s");
    if (peak > 0) {
        char rn[32];
        snprintf(rn, sizeof rn, "fma_peak_%dt", st.threads);
        bu_ref(&l, rn, ref, gf / ref);
    }
    bu_num(&l, "ms", t * 1e3);
    bu_int(&l, "kernels", st.kernels);
    bu_num(&l, "compile_ms", st.total_ms);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);
    free(xv);
    free(rv);
    jg_program_free(p);
    jg_graph_free(g);
}

int main(void)
{
    double peak = fma_peak();
    if (peak > 0) {
        bu_line l;
        bu_begin(&l, "fma_peak_1t", peak, "GFLOP/s");
        bu_end(&l);
    }
    static const layer layers[] = {
        { "1to32_3x3_28x28_b128", 128, 1, 28, 28, 32, 3, 1, false },
        { "32to64_3x3_14x14_b128", 128, 32, 14, 14, 64, 3, 1, true },
    };
    for (int i = 0; i < 2; i++)
        for (int bwd = 0; bwd < 2; bwd++) {
            bench_layer(&layers[i], bwd, 1, peak);
            bench_layer(&layers[i], bwd, 0, peak);
        }
    return 0;
}
