/* max_pool2d and its gradient (ops/pool.c, jit/emit_pool.c): the tie policies on known
 * windows, the JIT against the reference executor on odd geometries (every kernel path:
 * the pair layout with and without a tail, gathers, padding, dilation, the scalar gradient),
 * NaN and -inf, gradient checks in double under both policies, and misuse. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(max_pool, .timeout = 120);

/* One 2x2 window of four equal values: `first` gives dy to the top-left one, `split` a
 * quarter to each. */
Test(max_pool, tie_policies_on_one_window)
{
    for (int split = 0; split < 2; split++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_const(g, jg_shape(1, 1, 2, 2), (double[]){ 3, 3, 3, 3 });
        jg_node *wrt = t_param(g, "x", jg_shape(1, 1, 2, 2), 1);
        cr_assert_eq(jg_param_set(g, "x", (double[]){ 3, 3, 3, 3 }, 4 * sizeof(double)), JG_OK);
        (void)x;
        jg_node *y = jg_max_pool2d_ex(wrt, 2, 2, &(jg_pool_opts){
                                          .ties = split ? JG_TIES_SPLIT : JG_TIES_FIRST });
        jg_node *dx;
        cr_assert_eq(jg_grad(g, jg_scale(jg_sum(y, JG_ALL_AXES, false), 8), &wrt, 1, &dx), JG_OK,
                     "%s", jg_errmsg(g));
        double *got = t_eval(dx);
        double want_first[4] = { 8, 0, 0, 0 }, want_split[4] = { 2, 2, 2, 2 };
        t_assert_close(got, split ? want_split : want_first, 4, 0);
        free(got);
        jg_graph_free(g);
    }
}

/* The default is PyTorch's: the first maximum in row-major order, also for jg_max_pool2d. */
Test(max_pool, default_is_the_first_maximum)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(1, 1, 2, 4), 1);
    double v[8] = { 1, 5, 7, 7, 5, 2, 7, 7 }; /* windows: (1 5 / 5 2), (7 7 / 7 7) */
    cr_assert_eq(jg_param_set(g, "x", v, sizeof v), JG_OK);
    jg_node *y = jg_max_pool2d(x, 2, 2, 2, 2, 0, 0), *dx;
    cr_assert_eq(jg_grad(g, jg_sum(y, JG_ALL_AXES, false), &x, 1, &dx), JG_OK);
    t_expect(y, jg_shape(1, 1, 1, 2), (double[]){ 5, 7 });
    t_expect(dx, jg_shape(1, 1, 2, 4), (double[]){ 0, 1, 1, 0, 0, 0, 0, 0 });
    jg_graph_free(g);
}

/* x of shape xs (values with many ties: a few levels, plus a NaN and -inf when asked), dy;
 * y and dx computed by both executors must agree: y exactly (a selection), dx to rounding
 * (shares of overlapping windows add up). */
static void jit_vs_reference_bits(jg_dtype t, jg_shape xs, int kh, int kw,
                                  const jg_pool_opts *o, bool specials, int bits)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", t, xs);
    jg_node *y = jg_max_pool2d_ex(x, kh, kw, o);
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    jg_node *dy = jg_input(g, "dy", t, jg_node_shape(y)), *dx;
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), &x, 1, &dx), JG_OK,
                 "%s", jg_errmsg(g));
    int64_t nx = jg_shape_numel(xs), ny = jg_shape_numel(jg_node_shape(y));
    size_t es = t == JG_F32 ? sizeof(float) : sizeof(double);
    char *xv = malloc((size_t)nx * es), *dv = malloc((size_t)ny * es);
    for (int64_t i = 0; i < nx; i++) {
        double v = (double)((i * 7919) % 5) - 2; /* five levels: ties everywhere */
        if (specials && i == nx / 3)
            v = NAN;
        if (specials && i == nx / 2)
            v = -INFINITY;
        if (t == JG_F32)
            ((float *)xv)[i] = (float)v;
        else
            ((double *)xv)[i] = v;
    }
    for (int64_t i = 0; i < ny; i++) {
        double v = (double)((i * 104729) % 97) / 13.0 - 3;
        if (t == JG_F32)
            ((float *)dv)[i] = (float)v;
        else
            ((double *)dv)[i] = v;
    }
    jg_node *outs[2] = { y, dx };
    double *res[2][2];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, outs, 2, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT, .num_threads = 2,
            .vector_bits = bits });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_set(p, "x", xv, (size_t)nx * es);
        jg_program_set(p, "dy", dv, (size_t)ny * es);
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        for (int k = 0; k < 2; k++) {
            int64_t n = k ? nx : ny;
            char *raw = malloc((size_t)n * es);
            cr_assert_eq(jg_program_get(p, k, raw, (size_t)n * es), JG_OK);
            res[e][k] = malloc((size_t)n * sizeof(double));
            for (int64_t i = 0; i < n; i++)
                res[e][k][i] = t == JG_F32 ? ((float *)raw)[i] : ((double *)raw)[i];
            free(raw);
        }
        jg_program_free(p);
    }
    for (int k = 0; k < 2; k++) {
        int64_t n = k ? nx : ny;
        for (int64_t i = 0; i < n; i++) {
            double a = res[0][k][i], b = res[1][k][i];
            /* overlapping windows add shares: the reference in double, rounded once */
            double tol = k == 0 ? 0 : t == JG_F32 ? 1e-6 : 1e-14;
            cr_assert((isnan(a) && isnan(b)) || a == b || fabs(a - b) <= tol * fabs(b),
                      "%s[%lld]: jit %g, reference %g (x [%lld,%lld,%lld,%lld], kernel %dx%d)",
                      k ? "dx" : "y", (long long)i, a, b, (long long)xs.dim[0],
                      (long long)xs.dim[1], (long long)xs.dim[2], (long long)xs.dim[3], kh, kw);
        }
        free(res[0][k]);
        free(res[1][k]);
    }
    free(xv);
    free(dv);
    jg_graph_free(g);
}

static void jit_vs_reference(jg_dtype t, jg_shape xs, int kh, int kw, const jg_pool_opts *o,
                             bool specials)
{
    jit_vs_reference_bits(t, xs, kh, kw, o, specials, 0);
}

Test(max_pool, jit_matches_reference_pair_layout)
{
    /* 2x2 stride 2 tiling the plane: shuffles, one store per element; 28 and 70 columns:
     * one masked block, and full blocks plus a tail */
    jit_vs_reference(JG_F32, jg_shape(3, 5, 28, 28), 2, 2, NULL, false);
    jit_vs_reference(JG_F32, jg_shape(2, 3, 4, 70), 2, 2, NULL, true);
    jit_vs_reference(JG_F64, jg_shape(2, 3, 6, 34), 2, 2, NULL, false);
    /* odd planes: the last row and column are in no window (no tiling: zeroed, added) */
    jit_vs_reference(JG_F32, jg_shape(2, 3, 7, 7), 2, 2, NULL, true);
    /* rows padded; 3 rows per window */
    jit_vs_reference(JG_F32, jg_shape(1, 2, 9, 12), 3, 2,
                     &(jg_pool_opts){ .stride_h = 2, .stride_w = 2, .pad_h = 1 }, false);
}

Test(max_pool, jit_matches_reference_other_geometries)
{
    jit_vs_reference(JG_F32, jg_shape(2, 3, 9, 9), 3, 3,
                     &(jg_pool_opts){ .stride_h = 1, .stride_w = 1, .pad_h = 1, .pad_w = 1 },
                     true);
    jit_vs_reference(JG_F64, jg_shape(1, 2, 17, 15), 3, 2,
                     &(jg_pool_opts){ .stride_h = 3, .stride_w = 2, .dilation_h = 2,
                                      .dilation_w = 3 }, false);
    jit_vs_reference(JG_F32, jg_shape(2, 1, 1, 1), 1, 1, NULL, false);
    jit_vs_reference(JG_F32, jg_shape(1, 1, 5, 40), 5, 3,
                     &(jg_pool_opts){ .stride_w = 1, .pad_h = 2, .pad_w = 1 }, true);
}

/* One lane per vector (vector_bits 32) takes the scalar kernels; a window whose taps all
 * fall in the padding is -inf and passes no gradient. */
Test(max_pool, jit_matches_reference_scalar_and_empty_windows)
{
    jit_vs_reference_bits(JG_F32, jg_shape(2, 3, 8, 10), 2, 2, NULL, true, 32);
    jit_vs_reference_bits(JG_F64, jg_shape(1, 2, 5, 6), 3, 3,
                          &(jg_pool_opts){ .stride_h = 2, .pad_h = 1, .pad_w = 1,
                                           .ties = JG_TIES_SPLIT }, true, 32);
    jit_vs_reference(JG_F32, jg_shape(1, 2, 1, 3), 2, 1,
                     &(jg_pool_opts){ .stride_h = 1, .pad_h = 1, .dilation_h = 2 }, false);
}

Test(max_pool, jit_matches_reference_split_ties)
{
    jg_pool_opts split = { .ties = JG_TIES_SPLIT };
    jit_vs_reference(JG_F32, jg_shape(3, 5, 28, 28), 2, 2, &split, true);
    jit_vs_reference(JG_F64, jg_shape(2, 2, 7, 9), 3, 3,
                     &(jg_pool_opts){ .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
                                      .ties = JG_TIES_SPLIT }, true);
}

Test(max_pool, gradcheck_both_policies)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 2, 7, 6), 5);
    for (int split = 0; split < 2; split++) {
        jg_ties ties = split ? JG_TIES_SPLIT : JG_TIES_FIRST;
        t_gradcheck(g, jg_max_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .ties = ties }), &x, 1);
        t_gradcheck(g, jg_max_pool2d_ex(x, 3, 2, &(jg_pool_opts){ .stride_h = 2, .pad_h = 1,
                                                                   .pad_w = 1, .dilation_h = 2,
                                                                   .ties = ties }), &x, 1);
    }
    jg_graph_free(g);
}

Test(max_pool, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 4, 4));
    cr_assert_not(jg_node_ok(jg_max_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .ties = 7 })));
    t_assert_error(g, JG_ERR_ARG, "jg_max_pool2d: ties is 7");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 4, 4));
    cr_assert_not(jg_node_ok(jg_max_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .dilation_w = -1 })));
    t_assert_error(g, JG_ERR_ARG, "dilation 1x-1 must be >= 1");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 4, 4));
    cr_assert_not(jg_node_ok(jg_max_pool2d_ex(x, 3, 3, &(jg_pool_opts){ .dilation_h = 2 })));
    t_assert_error(g, JG_ERR_SHAPE, "larger than the padded input");
    jg_graph_free(g);
    /* the gradient's own gradient is not defined: a clear error, not a wrong number */
    g = jg_graph_new();
    jg_node *p = t_param(g, "p", jg_shape(1, 1, 4, 4), 2), *d1, *d2;
    cr_assert_eq(jg_grad(g, jg_sum(jg_max_pool2d(p, 2, 2, 2, 2, 0, 0), JG_ALL_AXES, false), &p,
                         1, &d1), JG_OK);
    cr_assert_neq(jg_grad(g, jg_sum(jg_mul(d1, d1), JG_ALL_AXES, false), &p, 1, &d2), JG_OK);
    t_assert_error(g, JG_ERR_GRAD, "max_pool2d_grad has no gradient rule");
    jg_graph_free(g);
}
