/* Inference rewrites benchmark: the evaluation forward of conv2d 3x3 + bias + batchnorm +
 * relu (the Fashion-MNIST CNN's second layer, 32 -> 64 channels on 14x14, batch 128) with
 * every pass on (batchnorm folded into the kernel and bias, the bias and relu in the GEMM's
 * store), with bn_fold off (the whole affine in the GEMM's store, passes "epilogue"), and
 * with both off (the affine and relu a pass of their own over the activations: the program
 * before these passes). Median ms over repeats after a warm-up, one JSON line each, with
 * ratio = the unfolded time / the folded one (> 1: folding pays). */
#include "jitgrad.h"

#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>

#define REPEATS 21

static void run_program(void *ctx)
{
    if (jg_program_run(ctx) != JG_OK) {
        fprintf(stderr, "bench_bn_fold: %s\n", jg_errmsg((jg_program *)ctx));
        exit(1);
    }
}

static float *filled(int64_t n, uint64_t seed, float lo, float hi)
{
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = lo + (hi - lo) * (float)((double)(seed >> 40) / 16777216.0);
    }
    return p;
}

/* ms per forward and kernels of the program with passes_off = off. */
static double time_forward(jg_graph *g, jg_node *y, const float *xv, size_t bytes,
                           const char *off, int *kernels)
{
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .mode = JG_MODE_EVAL, .passes_off = off,
                                                     .num_threads = 2 });
    if (!p) {
        fprintf(stderr, "bench_bn_fold: %s\n", jg_errmsg(g));
        exit(1);
    }
    jg_program_stats st = { 0 };
    jg_program_stats_get(p, &st);
    *kernels = st.kernels;
    jg_program_set(p, "x", xv, bytes);
    double t = bu_time_median(run_program, p, 3, REPEATS);
    jg_program_free(p);
    return t * 1e3;
}

int main(void)
{
    const int n = 128, c = 32, hw = 14, o = 64;
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(n, c, hw, hw));
    jg_node *w = jg_param(g, "w", jg_shape(o, c, 3, 3), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(o), jg_normal(0, 0.1));
    jg_node *y = jg_relu(jg_batchnorm("bn", jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = 1,
                                                                                 .pad_w = 1 }),
                                      0.1, 1e-5));
    /* statistics a trained layer would have, so nothing is an identity */
    const char *part[] = { "bn.gamma", "bn.beta", "bn.running_mean", "bn.running_var" };
    const float lo[] = { 0.5f, -0.5f, -0.5f, 0.5f }, hi[] = { 1.5f, 0.5f, 0.5f, 2 };
    for (int i = 0; i < 4; i++) {
        float *v = filled(o, 10 + (uint64_t)i, lo[i], hi[i]);
        jg_param_set(g, part[i], v, (size_t)o * sizeof *v);
        free(v);
    }
    int64_t nx = (int64_t)n * c * hw * hw;
    float *xv = filled(nx, 1, -1, 1);
    size_t bytes = (size_t)nx * sizeof *xv;

    static const struct {
        const char *name, *off;
    } variants[] = {
        { "conv_bn_relu_eval_folded_2t", NULL },
        { "conv_bn_relu_eval_affine_in_store_2t", "bn_fold" },
        { "conv_bn_relu_eval_unfused_2t", "bn_fold,epilogue" },
    };
    double folded = 0;
    for (int i = 0; i < 3; i++) {
        int kernels;
        double ms = time_forward(g, y, xv, bytes, variants[i].off, &kernels);
        if (i == 0)
            folded = ms;
        bu_line l;
        bu_begin(&l, variants[i].name, ms, "ms");
        if (i > 0)
            bu_ref(&l, variants[0].name, folded, ms / folded);
        bu_int(&l, "kernels", kernels);
        bu_num(&l, "load_avg_1m", bu_loadavg());
        bu_end(&l);
    }
    free(xv);
    jg_graph_free(g);
    return 0;
}
