/* Memory-bound elementwise benchmark: relu(x * a + b) forward and backward over 16M floats,
 * one JIT program on 2 threads, against a STREAM triad measured in the same run.
 *
 *   x, dy: inputs [4096, 4096] f32;  a, b: parameters [4096] f32 (broadcast along rows)
 *   y  = relu(x * a + b)
 *   dx, da, db = gradients of sum(y * dy) with respect to x, a, b (jg_grad)
 *      dx = dy * a * [x*a+b > 0],  da = sum_rows(dy * x * [..]),  db = sum_rows(dy * [..])
 *
 * Bytes counted (the minimum any implementation must move, counted like STREAM counts: each
 * array read or written once, write-allocate traffic not counted):
 *
 *   bytes = 4 * N * sizeof(float)        N = 4096 * 4096
 *         = read x + read dy + write y + write dx
 *
 * a, b, da, db (4096 floats each, 64 KiB in all) are ignored. da and db need x and dy, but a
 * single pass that reads x and dy once can produce y, dx, da and db together, so they add no
 * minimal traffic; an implementation that computes the reductions in separate kernels reads x
 * and dy again, which shows here as lower GB/s (and in the profile printed to stderr).
 *
 * Reference: STREAM triad over three arrays of N floats on 2 threads (bench_triad.h),
 * bytes = 3 * N * sizeof(float). The two are timed
 * alternately, REPEATS times each, and the medians compared:
 *
 *   {"bench": "elementwise_relu_fwd_bwd_2t", "value": GB/s, "unit": "GB/s",
 *    "ref": "stream_triad_2t", "ref_value": GB/s, "ratio": jitgrad / triad, ...}
 *
 * The per-kernel profile of the program (and its fused groups) goes to stderr. */
#include "jitgrad.h"

#include "bench_program.h"
#include "bench_triad.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 4096
#define COLS 4096
#define N ((size_t)ROWS * COLS)
#define REPEATS 15
#define THREADS 2

/* ---------------------------------------------------------------- the jitgrad program */

/* Checks y and dx on every 509th row and da, db in full against plain C in double: y and dx
 * within 1e-5, the sums within 1e-4 of the sum of their terms' magnitudes. */
static int check(const float *x, const float *dy, const float *a, const float *b,
                 const float *y, const float *dx, const float *da, const float *db)
{
    double *s = calloc(4 * COLS, sizeof *s), worst = 0; /* sum da, |da|, db, |db| */
    if (!s)
        return 1;
    for (size_t i = 0; i < ROWS; i++)
        for (size_t j = 0; j < COLS; j++) {
            size_t k = i * COLS + j;
            double z = (double)x[k] * a[j] + b[j], m = z > 0;
            double ta = dy[k] * (double)x[k] * m, tb = dy[k] * m;
            s[4 * j] += ta, s[4 * j + 1] += fabs(ta), s[4 * j + 2] += tb, s[4 * j + 3] += fabs(tb);
            if (i % 509 == 0) {
                double ey = fabs(y[k] - z * m), edx = fabs(dx[k] - dy[k] * (double)a[j] * m);
                worst = fmax(worst, fmax(ey, edx) / 1e-5);
            }
        }
    for (size_t j = 0; j < COLS; j++) {
        worst = fmax(worst, fabs(da[j] - s[4 * j]) / (1e-4 * s[4 * j + 1] + 1e-6));
        worst = fmax(worst, fabs(db[j] - s[4 * j + 2]) / (1e-4 * s[4 * j + 3] + 1e-6));
    }
    free(s);
    if (!(worst <= 1)) {
        fprintf(stderr, "bench_elementwise: results differ from plain C (%g x tolerance)\n",
                worst);
        return 1;
    }
    return 0;
}

int main(void)
{
    size_t bytes = N * sizeof(float);
    float *x = malloc(bytes), *dy = malloc(bytes), *y = malloc(bytes), *dx = malloc(bytes);
    float a[COLS], b[COLS], da[COLS], db[COLS];
    if (!x || !dy || !y || !dx)
        return 1;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < N; i++) {
        x[i] = bp_uniform(&rng);
        dy[i] = bp_uniform(&rng);
    }
    for (int j = 0; j < COLS; j++) {
        a[j] = bp_uniform(&rng);
        b[j] = 0.5f * bp_uniform(&rng);
    }

    jg_graph *g = jg_graph_new();
    jg_node *xn = jg_input(g, "x", JG_F32, jg_shape(ROWS, COLS));
    jg_node *dyn = jg_input(g, "dy", JG_F32, jg_shape(ROWS, COLS));
    jg_node *an = jg_param(g, "a", jg_shape(COLS), jg_zeros());
    jg_node *bn = jg_param(g, "b", jg_shape(COLS), jg_zeros());
    jg_node *yn = jg_relu(jg_add(jg_mul(xn, an), bn));
    jg_node *wrt[3] = { xn, an, bn }, *grads[3] = { NULL, NULL, NULL };
    jg_grad(g, jg_mul(yn, dyn), wrt, 3, grads); /* gradients of sum(y * dy) */
    jg_node *outs[4] = { yn, grads[0], grads[1], grads[2] };
    jg_program *p = jg_compile(g, outs, 4, &(jg_opts){ .num_threads = THREADS });
    if (!p || jg_param_set(g, "a", a, sizeof a) || jg_param_set(g, "b", b, sizeof b) ||
        jg_program_set(p, "x", x, bytes) || jg_program_set(p, "dy", dy, bytes)) {
        fprintf(stderr, "bench_elementwise: %s\n", p ? jg_errmsg(p) : jg_errmsg(g));
        return 1;
    }
    bp_run(p);
    if (jg_program_get(p, 0, y, bytes) || jg_program_get(p, 1, dx, bytes) ||
        jg_program_get(p, 2, da, sizeof da) || jg_program_get(p, 3, db, sizeof db)) {
        fprintf(stderr, "bench_elementwise: %s\n", jg_errmsg(p));
        return 1;
    }
    if (check(x, dy, a, b, y, dx, da, db))
        return 1;
    free(y);
    free(dx);

    triad t;
    if (triad_init(&t, N, x, dy))
        return 1;
    double sj, st;
    triad_alternate(bp_run, p, &t, REPEATS, &sj, &st);
    double gbs = 4.0 * (double)bytes / sj * 1e-9, triad_gbs = 3.0 * (double)bytes / st * 1e-9;

    jg_program_stats stats;
    jg_program_stats_get(p, &stats);
    bu_line l;
    bu_begin(&l, "elementwise_relu_fwd_bwd_2t", gbs, "GB/s");
    bu_ref(&l, "stream_triad_2t", triad_gbs, gbs / triad_gbs);
    bu_num(&l, "ms", 1e3 * sj);
    bu_num(&l, "ref_ms", 1e3 * st);
    bu_int(&l, "kernels", stats.kernels);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);

    bp_profile(p, "bench_elementwise");

    triad_free(&t);
    free(x);
    free(dy);
    jg_program_free(p);
    jg_graph_free(g);
    return 0;
}
