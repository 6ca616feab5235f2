/* Adam's update of one weight matrix w [2048, 2048] f32 (a one-parameter model: loss =
 * sum(w * x), so the gradient is the input x and the step is the reduction and the update),
 * one JIT training program on 2 threads, against a STREAM triad measured in the same run.
 *
 * With a single parameter, the bias corrections 1 - beta^t are computed inside the update
 * kernel rather than in a kernel of their own: this is the case where one-element
 * subexpressions must be evaluated once per kernel call (emit_ctx.hoisted), not per vector.
 *
 * Bytes counted (the minimum, counted like STREAM: A = w's size, 16.8 MB): the loss reads w
 * and x, the update reads x, m, v, w and writes m, v, w. bytes = 9 * A (the update runs as
 * three kernels, m, v and w, which move 10 * A between them). The triad's arrays are of w's
 * size; the program's five arrays and the machine's last-level cache overlap, so the ratio
 * can exceed 1.
 *
 * Then the same step with gradients of 1e-20 times those, so that v = 0.001 * g^2 is
 * subnormal (the state Adam's moments reach when gradients die away), without and with
 * jg_opts.flush_denormals.
 *
 * Lines (medians of REPEATS runs; the program and the triad alternate):
 *   {"bench": "adam_update_2048x2048_2t", "value": ms, "unit": "ms", ...}
 *   {"bench": "adam_update_2048x2048_2t_bandwidth", "value": GB/s, "ref": "stream_triad_2t",
 *    "ratio": jitgrad / triad, ...}
 *   {"bench": "adam_update_2048x2048_2t_subnormal_v", "value": ms, "ref": "flush_denormals",
 *    "ref_value": ms with it, "ratio": the speed-up it gives}
 * The first step's weights are checked against plain C; the per-kernel profile goes to
 * stderr. */
#include "jitgrad.h"

#include "bench_program.h"
#include "bench_triad.h"
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define ROWS 2048
#define COLS 2048
#define NUMEL ((size_t)ROWS * COLS)
#define REPEATS 30
#define THREADS 2
#define LR 1e-3

/* The first Adam step from m = v = 0 (beta1 0.9, beta2 0.999, eps 1e-8), in double. */
static int check(const float *w0, const float *x, const float *w1)
{
    double c1 = 1 - 0.9, c2 = 1 - 0.999;
    for (size_t i = 0; i < NUMEL; i++) {
        double m = 0.1 * x[i], v = 0.001 * (double)x[i] * x[i];
        double want = w0[i] - LR * (m / c1) / (sqrt(v / c2) + 1e-8);
        if (fabs(w1[i] - want) > 1e-6 * (1 + fabs(want))) {
            fprintf(stderr, "bench_adam: step 1 differs from plain C at %zu: %g vs %g\n", i,
                    (double)w1[i], want);
            return 1;
        }
    }
    return 0;
}

/* The one-parameter model's Adam step in a new graph (*g), reading `x`; exits with the
 * message on failure. */
static jg_program *compile_step(const float *x, bool flush, jg_graph **g)
{
    *g = jg_graph_new();
    jg_node *xn = jg_input(*g, "x", JG_F32, jg_shape(ROWS, COLS));
    jg_node *w = jg_param(*g, "w", jg_shape(ROWS, COLS), jg_he_normal());
    jg_node *loss = jg_sum(jg_mul(w, xn), JG_ALL_AXES, false);
    jg_program *p = jg_compile_train(*g, loss, &(jg_train_opts){
        .optimizer = jg_adam(LR),
        .compile = { .num_threads = THREADS, .flush_denormals = flush,
                     .passes_off = getenv("JG_PASSES_OFF") } });
    if (!p || jg_program_set(p, "x", x, NUMEL * sizeof *x)) {
        fprintf(stderr, "bench_adam: %s\n", p ? jg_errmsg(p) : jg_errmsg(*g));
        exit(1);
    }
    return p;
}

/* The step's median time over `x`, with or without flush_denormals. */
static double step_ms(const float *x, bool flush)
{
    jg_graph *g;
    jg_program *p = compile_step(x, flush, &g);
    double s = bu_time_median(bp_run, p, 3, REPEATS);
    jg_program_free(p);
    jg_graph_free(g);
    return 1e3 * s;
}

int main(void)
{
    size_t bytes = NUMEL * sizeof(float);
    float *x = malloc(bytes), *w0 = malloc(bytes), *w1 = malloc(bytes);
    if (!x || !w0 || !w1)
        return 1;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < NUMEL; i++)
        x[i] = bp_uniform(&rng);

    jg_graph *g;
    jg_program *p = compile_step(x, false, &g);
    if (jg_param_get(g, "w", w0, bytes)) {
        fprintf(stderr, "bench_adam: %s\n", jg_errmsg(g));
        return 1;
    }
    bp_run(p);
    if (jg_param_get(g, "w", w1, bytes) || check(w0, x, w1))
        return 1;
    free(w0);

    if (bp_against_triad(p, "adam_update_2048x2048_2t", 9.0 * (double)bytes, NUMEL, x, w1,
                         REPEATS, NULL))
        return 1;

    bp_profile(p, "bench_adam");

    for (size_t i = 0; i < NUMEL; i++)
        x[i] *= 1e-20f;
    double slow = step_ms(x, false), fast = step_ms(x, true);
    bu_line l;
    bu_begin(&l, "adam_update_2048x2048_2t_subnormal_v", slow, "ms");
    bu_ref(&l, "flush_denormals", fast, slow / fast);
    bu_end(&l);

    free(x);
    free(w1);
    jg_program_free(p);
    jg_graph_free(g);
    return 0;
}
