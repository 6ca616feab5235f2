/* Convolution benchmark: jg_conv2d on the Fashion-MNIST CNN's two layers at batch 128
 * (1 -> 64 on 28x28 and 64 -> 128 on 14x14, 3x3, padding 1), each direction of a training
 * step as a program of its own: the forward (y from x, w), the input gradient (dx from dy, w;
 * the second layer only: the first layer's input is the images) and the weight gradient (dw
 * from x, dy), plus all of them in one program (fwd_bwd). Compiled by the JIT on 1 thread
 * and on all cores; GFLOP/s of the convolution's arithmetic (2*N*O*OH*OW*C/groups*KH*KW per
 * direction) against the FMA peak measured in the same run (a JIT'd loop of 24 independent
 * vector FMA chains, as in bench_gemm.c). Each figure is the median wall time over repeats
 * after a warm-up. One JSON line each, with the bound of the direction on this machine:
 * bound "compute" (time at the FMA peak) or "memory" (its minimal bytes, every operand read
 * once and the result written once, at the 2-thread STREAM triad measured in the same run),
 * whichever is longer, as bound_ms; the targets of the convolution issue for the second
 * layer (>= 0.70 of the peak on 1 thread, >= 0.65 on 2) as target_ratio and met. */
#include "jitgrad.h"

#include "bench_peak.h"
#include "bench_triad.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define REPEATS 15

/* ---- convolution layers */

typedef struct layer {
    const char *name;
    int n, c, h, w, o, k, pad;
    bool input_grad;     /* the layer's input is an activation: dX is part of a step */
    double target_ratio; /* 0: none */
} layer;

typedef enum direction { FWD, DGRAD, WGRAD, FWD_BWD } direction;
static const char *const direction_names[] = { "fwd", "dgrad", "wgrad", "fwd_bwd" };

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

/* The machine's two limits, measured once. */
typedef struct machine {
    double peak_1t;  /* GFLOP/s, one core */
    double triad_gbs; /* GB/s, 2 threads */
} machine;

static double triad_bandwidth(void)
{
    size_t n = (size_t)1 << 24; /* 3 arrays of 64 MiB: out of every cache */
    float *b = filled((int64_t)n, 3), *c = filled((int64_t)n, 4);
    triad t;
    double gbs = 0;
    if (b && c && triad_init(&t, n, b, c) == 0) {
        double s = bu_time_median(triad_run, &t, 2, 7);
        gbs = 3.0 * (double)n * sizeof(float) / s * 1e-9;
        triad_free(&t);
    }
    free(b);
    free(c);
    return gbs;
}

/* Times one direction of a layer on `threads` threads (0: all cores). */
static void bench_layer(const layer *L, direction d, int threads, const machine *mc)
{
    jg_graph *g = jg_graph_new();
    jg_shape xs = jg_shape(L->n, L->c, L->h, L->w), ws = jg_shape(L->o, L->c, L->k, L->k);
    jg_node *x = jg_input(g, "x", JG_F32, xs);
    jg_node *w = jg_param(g, "w", ws, jg_he_normal());
    jg_node *y = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = L->pad, .pad_w = L->pad });
    jg_shape ys = jg_node_shape(y);
    jg_node *outs[3] = { y };
    int n_out = 1;
    if (d != FWD) {
        /* loss = sum(y * dy): dy an input, a dense gradient nothing can fold away */
        jg_node *dy = jg_input(g, "dy", JG_F32, ys);
        jg_node *wrt[2] = { w, x }, *grads[2];
        int nw = d == FWD_BWD && L->input_grad ? 2 : 1;
        if (d == DGRAD)
            wrt[0] = x;
        if (jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), wrt, nw, grads) != JG_OK) {
            fprintf(stderr, "bench_conv: %s\n", jg_errmsg(g));
            exit(1);
        }
        if (d == FWD_BWD) {
            outs[1] = grads[0];
            outs[2] = grads[1];
            n_out = 1 + nw;
        } else {
            outs[0] = grads[0];
        }
    }
    jg_program *p = jg_compile(g, outs, n_out, &(jg_opts){ .num_threads = threads });
    if (!p) {
        fprintf(stderr, "bench_conv: %s\n", jg_errmsg(g));
        exit(1);
    }
    jg_program_stats st = { 0 };
    jg_program_stats_get(p, &st);
    int64_t nx = jg_shape_numel(xs), ny = jg_shape_numel(ys), nwt = jg_shape_numel(ws);
    float *xv = filled(nx, 1), *dv = filled(ny, 2);
    jg_program_set(p, "x", xv, (size_t)nx * sizeof *xv); /* ignored where x is not read */
    if (d != FWD)
        jg_program_set(p, "dy", dv, (size_t)ny * sizeof *dv);
    double t = bu_time_median(run_program, p, 3, REPEATS);
    double pass = 2.0 * (double)ny * L->c * L->k * L->k;
    int passes = d == FWD_BWD ? (L->input_grad ? 3 : 2) : 1;
    double flop = pass * passes, gf = flop / t * 1e-9, ref = mc->peak_1t * st.threads;
    /* minimal bytes: fwd x, w -> y; dgrad dy, w -> dx; wgrad x, dy -> dw; all of them */
    double elems = d == FWD ? nx + nwt + ny : d == DGRAD ? ny + nwt + nx : d == WGRAD
                 ? nx + ny + nwt : nx + ny + 2.0 * nwt + ny + (L->input_grad ? nx : 0);
    double bytes = 4.0 * elems;
    double compute_ms = flop / (ref * 1e9) * 1e3;
    double memory_ms = mc->triad_gbs > 0 ? bytes / (mc->triad_gbs * 1e9) * 1e3 : 0;
    char name[96];
    snprintf(name, sizeof name, "conv2d_%s_%s_%dt", L->name, direction_names[d], st.threads);
    bu_line l;
    bu_begin(&l, name, gf, "GFLOP/s");
    if (mc->peak_1t > 0) {
        char rn[32];
        snprintf(rn, sizeof rn, "fma_peak_%dt", st.threads);
        bu_ref(&l, rn, ref, gf / ref);
    }
    bu_num(&l, "ms", t * 1e3);
    bu_str(&l, "bound", compute_ms >= memory_ms ? "compute" : "memory");
    bu_num(&l, "bound_ms", compute_ms >= memory_ms ? compute_ms : memory_ms);
    if (L->target_ratio > 0 && d != FWD_BWD && mc->peak_1t > 0) {
        double target = st.threads == 1 ? L->target_ratio : L->target_ratio - 0.05;
        bu_num(&l, "target_ratio", target);
        bu_str(&l, "met", gf / ref >= target ? "yes" : "no");
    }
    bu_int(&l, "kernels", st.kernels);
    bu_num(&l, "compile_ms", st.total_ms);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);
    free(xv);
    free(dv);
    jg_program_free(p);
    jg_graph_free(g);
}

int main(void)
{
    machine mc = { .peak_1t = fma_peak(), .triad_gbs = triad_bandwidth() };
    bu_line l;
    if (mc.peak_1t > 0) {
        bu_begin(&l, "fma_peak_1t", mc.peak_1t, "GFLOP/s");
        bu_end(&l);
    }
    bu_begin(&l, "stream_triad_2t", mc.triad_gbs, "GB/s");
    bu_end(&l);
    static const layer layers[] = {
        { "1to64_3x3_28x28_b128", 128, 1, 28, 28, 64, 3, 1, false, 0 },
        { "64to128_3x3_14x14_b128", 128, 64, 14, 14, 128, 3, 1, true, 0.70 },
    };
    for (int i = 0; i < 2; i++)
        for (direction d = FWD; d <= FWD_BWD; d++) {
            if (d == DGRAD && !layers[i].input_grad)
                continue;
            bench_layer(&layers[i], d, 1, &mc);
            bench_layer(&layers[i], d, 0, &mc);
        }
    return 0;
}
