/* Tests of convolution and pooling (src/ops/conv.c): forward values by hand and against a
 * naive loop, conv_transpose2d as the adjoint of conv2d, output shapes (the Fashion-MNIST
 * CNN's layers among them), f64 gradient checks with stride/padding/dilation/groups, the JIT
 * against the reference executor on the same graphs, and misuse (status + message). */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(conv, .timeout = 60);



/* Values of a constant / param built by t_randn with this seed (evaluated). */
static double *values(jg_node *n) { return t_eval(n); }

/* The definition, as loops: conv2d of x [n,c,h,wd] with w [o,c/g,kh,kw]. */
static double *naive_conv(const double *x, const double *w, const double *b, jg_shape xs,
                          jg_shape ws, int sh, int sw, int ph, int pw, int dh, int dw, int g,
                          int64_t *oh_out, int64_t *ow_out)
{
    int64_t n = xs.dim[0], c = xs.dim[1], h = xs.dim[2], wd = xs.dim[3];
    int64_t o = ws.dim[0], cg = ws.dim[1], kh = ws.dim[2], kw = ws.dim[3];
    int64_t oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
    int64_t ow = (wd + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    double *y = calloc((size_t)(n * o * oh * ow), sizeof *y);
    int64_t og = o / g;
    for (int64_t in = 0; in < n; in++)
        for (int64_t io = 0; io < o; io++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double acc = b ? b[io] : 0;
                    for (int64_t ic = 0; ic < cg; ic++)
                        for (int64_t a = 0; a < kh; a++)
                            for (int64_t e = 0; e < kw; e++) {
                                int64_t r = i * sh + a * dh - ph, q = j * sw + e * dw - pw;
                                if (r < 0 || r >= h || q < 0 || q >= wd)
                                    continue;
                                int64_t cc = io / og * cg + ic;
                                acc += x[((in * c + cc) * h + r) * wd + q] *
                                       w[((io * cg + ic) * kh + a) * kw + e];
                            }
                    y[((in * o + io) * oh + i) * ow + j] = acc;
                }
    *oh_out = oh;
    *ow_out = ow;
    return y;
}

/* x = 1..9 as [1,1,3,3]; w = [[1,2],[3,4]] as [1,1,2,2]. */
static jg_node *x33(jg_graph *g)
{
    return t_const(g, jg_shape(1, 1, 3, 3), (double[]){ 1, 2, 3, 4, 5, 6, 7, 8, 9 });
}
static jg_node *w22(jg_graph *g)
{
    return t_const(g, jg_shape(1, 1, 2, 2), (double[]){ 1, 2, 3, 4 });
}

/* ---------------------------------------------------------------- forward values */

Test(conv, forward_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = x33(g), *w = w22(g);
    /* out[i,j] = x[i,j] + 2 x[i,j+1] + 3 x[i+1,j] + 4 x[i+1,j+1] */
    t_expect(jg_conv2d(x, w, NULL, NULL), jg_shape(1, 1, 2, 2), (double[]){ 37, 47, 67, 77 });
    jg_node *b = t_const(g, jg_shape(1), (double[]){ 10 });
    t_expect(jg_conv2d(x, w, b, NULL), jg_shape(1, 1, 2, 2), (double[]){ 47, 57, 77, 87 });
    /* stride 2: only the top-left window fits */
    t_expect(jg_conv2d(x, w, NULL, &(jg_conv_opts){ .stride_h = 2, .stride_w = 2 }),
           jg_shape(1, 1, 1, 1), (double[]){ 37 });
    /* dilation 2: taps x[0,0], x[0,2], x[2,0], x[2,2] = 1 + 6 + 21 + 36 */
    t_expect(jg_conv2d(x, w, NULL, &(jg_conv_opts){ .dilation_h = 2, .dilation_w = 2 }),
           jg_shape(1, 1, 1, 1), (double[]){ 64 });
    /* padding 1: a 4x4 output, the border windows see zeros */
    t_expect(jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 }),
           jg_shape(1, 1, 4, 4),
           (double[]){ 4, 11, 18, 9, 18, 37, 47, 21, 36, 67, 77, 33, 14, 23, 26, 9 });
    /* padding 1, stride 2: every other of those */
    t_expect(jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1, .stride_h = 2,
                                                   .stride_w = 2 }),
           jg_shape(1, 1, 2, 2), (double[]){ 4, 18, 36, 77 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(conv, groups_by_hand)
{
    /* 4 channels, groups 2, 1x1 kernels: output 0 = x0 + 2 x1, output 1 = 3 x2 + 4 x3 */
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(1, 4, 1, 2), (double[]){ 1, 2, 10, 20, 100, 200, 1000, 2000 });
    jg_node *w = t_const(g, jg_shape(2, 2, 1, 1), (double[]){ 1, 2, 3, 4 });
    t_expect(jg_conv2d(x, w, NULL, &(jg_conv_opts){ .groups = 2 }), jg_shape(1, 2, 1, 2),
           (double[]){ 21, 42, 4300, 8600 });
    jg_graph_free(g);
}

/* conv2d against the loops over a table of settings (2 images, several channels). */
Test(conv, forward_against_loops)
{
    static const struct { int c, o, h, w, kh, kw, sh, sw, ph, pw, dh, dw, g; bool bias; } cases[] = {
        { 3, 2, 5, 6, 3, 3, 1, 1, 0, 0, 1, 1, 1, true },
        { 3, 4, 7, 6, 3, 2, 2, 1, 1, 0, 1, 1, 1, false },
        { 4, 6, 6, 7, 3, 3, 2, 3, 1, 2, 2, 1, 2, true },
        { 4, 4, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 4, true }, /* depthwise */
        { 2, 3, 4, 4, 1, 1, 2, 2, 0, 0, 1, 1, 1, true },  /* 1x1 strided */
        { 2, 2, 8, 5, 2, 3, 3, 2, 2, 1, 3, 2, 2, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jg_graph *g = jg_graph_new();
        jg_shape xs = jg_shape(2, cases[i].c, cases[i].h, cases[i].w);
        jg_shape ws = jg_shape(cases[i].o, cases[i].c / cases[i].g, cases[i].kh, cases[i].kw);
        jg_node *x = t_randn(g, xs, 1 + i), *w = t_randn(g, ws, 100 + i);
        jg_node *b = cases[i].bias ? t_randn(g, jg_shape(cases[i].o), 200 + i) : NULL;
        jg_node *y = jg_conv2d(x, w, b, &(jg_conv_opts){
            .stride_h = cases[i].sh, .stride_w = cases[i].sw, .pad_h = cases[i].ph,
            .pad_w = cases[i].pw, .dilation_h = cases[i].dh, .dilation_w = cases[i].dw,
            .groups = cases[i].g });
        double *xv = values(x), *wv = values(w), *bv = b ? values(b) : NULL;
        int64_t oh, ow;
        double *want = naive_conv(xv, wv, bv, xs, ws, cases[i].sh, cases[i].sw, cases[i].ph,
                                  cases[i].pw, cases[i].dh, cases[i].dw, cases[i].g, &oh, &ow);
        t_assert_shape(y, jg_shape(2, cases[i].o, oh, ow));
        double *got = t_eval(y);
        t_assert_close(got, want, 2 * cases[i].o * oh * ow, 1e-12);
        free(got), free(want), free(xv), free(wv), free(bv);
        jg_graph_free(g);
    }
}

Test(conv, pooling_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = x33(g);
    t_expect(jg_max_pool2d(x, 2, 2, 1, 1, 0, 0), jg_shape(1, 1, 2, 2), (double[]){ 5, 6, 8, 9 });
    t_expect(jg_avg_pool2d(x, 2, 2, 1, 1, 0, 0), jg_shape(1, 1, 2, 2),
           (double[]){ 3, 4, 6, 7 });
    /* stride 2 = kernel: the last row/column do not fit and are dropped */
    t_expect(jg_max_pool2d(x, 2, 2, 2, 2, 0, 0), jg_shape(1, 1, 1, 1), (double[]){ 5 });
    t_expect(jg_avg_pool2d(x, 2, 2, 2, 2, 0, 0), jg_shape(1, 1, 1, 1), (double[]){ 3 });
    /* padding 1, stride 2: max pads with -inf (negative inputs show it), avg counts zeros */
    jg_node *nx = jg_neg(x);
    t_expect(jg_max_pool2d(nx, 2, 2, 2, 2, 1, 1), jg_shape(1, 1, 2, 2),
           (double[]){ -1, -2, -4, -5 });
    t_expect(jg_avg_pool2d(x, 2, 2, 2, 2, 1, 1), jg_shape(1, 1, 2, 2),
           (double[]){ 1 / 4.0, 5 / 4.0, 11 / 4.0, 28 / 4.0 });
    /* 3x3 window, stride 1, padding 1 */
    t_expect(jg_max_pool2d(x, 3, 3, 1, 1, 1, 1), jg_shape(1, 1, 3, 3),
           (double[]){ 5, 6, 6, 8, 9, 9, 8, 9, 9 });
    t_expect(jg_global_avg_pool(x), jg_shape(1, 1), (double[]){ 5 });
    jg_node *x2 = t_const(g, jg_shape(2, 2, 1, 2), (double[]){ 1, 3, 5, 7, -1, 1, 0, 10 });
    t_expect(jg_global_avg_pool(x2), jg_shape(2, 2), (double[]){ 2, 6, 0, 5 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(conv, transpose_by_hand)
{
    /* stride 2, 2x2 kernel of ones: every input pixel spreads over its own 2x2 block */
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(1, 1, 2, 2), (double[]){ 1, 2, 3, 4 });
    jg_node *w = t_const(g, jg_shape(1, 1, 2, 2), (double[]){ 1, 1, 1, 1 });
    t_expect(jg_conv_transpose2d(x, w, NULL, &(jg_conv_opts){ .stride_h = 2, .stride_w = 2 }),
           jg_shape(1, 1, 4, 4),
           (double[]){ 1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4 });
    /* stride 1: a full convolution (sum of overlapping placements of w scaled by x) */
    jg_node *w2 = w22(g);
    t_expect(jg_conv_transpose2d(x, w2, t_const(g, jg_shape(1), (double[]){ 100 }), NULL),
           jg_shape(1, 1, 3, 3),
           (double[]){ 101, 104, 104, 106, 120, 116, 109, 124, 116 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

/* <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for random x, y: both directions at once. */
Test(conv, transpose_is_adjoint)
{
    static const struct { int c, o, h, w, k, s, p, d, g; } cases[] = {
        { 2, 3, 5, 5, 3, 1, 0, 1, 1 },
        { 4, 6, 5, 6, 3, 2, 1, 1, 2 },
        { 3, 2, 7, 8, 2, 3, 1, 2, 1 },
        { 2, 4, 6, 5, 3, 2, 2, 2, 2 },
        { 4, 4, 4, 5, 1, 2, 0, 1, 4 },
        { 2, 3, 6, 6, 3, 2, 3, 1, 1 }, /* pad > dilation*(k-1): the transpose crops */
        { 3, 3, 5, 4, 2, 1, 2, 1, 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jg_graph *g = jg_graph_new();
        jg_conv_opts o = { .stride_h = cases[i].s, .stride_w = cases[i].s, .pad_h = cases[i].p,
                           .pad_w = cases[i].p, .dilation_h = cases[i].d,
                           .dilation_w = cases[i].d, .groups = cases[i].g };
        jg_node *x = t_randn(g, jg_shape(2, cases[i].c, cases[i].h, cases[i].w), 7 + i);
        jg_node *w = t_randn(g, jg_shape(cases[i].o, cases[i].c / cases[i].g, cases[i].k,
                                         cases[i].k), 70 + i);
        jg_node *cx = jg_conv2d(x, w, NULL, &o);
        cr_assert(jg_node_ok(cx), "%s", jg_errmsg(g));
        jg_node *y = t_randn(g, jg_node_shape(cx), 700 + i);
        /* the output padding that gives back x's size (a strided conv2d drops a remainder) */
        jg_shape ys = jg_node_shape(cx);
        o.output_padding_h = (int)(cases[i].h - ((ys.dim[2] - 1) * cases[i].s - 2 * cases[i].p +
                                                 cases[i].d * (cases[i].k - 1) + 1));
        o.output_padding_w = (int)(cases[i].w - ((ys.dim[3] - 1) * cases[i].s - 2 * cases[i].p +
                                                 cases[i].d * (cases[i].k - 1) + 1));
        jg_node *ty = jg_conv_transpose2d(y, w, NULL, &o);
        t_assert_shape(ty, jg_node_shape(x));
        double *lhs = t_eval(jg_sum(jg_mul(cx, y), JG_ALL_AXES, false));
        double *rhs = t_eval(jg_sum(jg_mul(x, ty), JG_ALL_AXES, false));
        cr_assert(fabs(lhs[0] - rhs[0]) <= 1e-10 * fmax(1, fabs(lhs[0])),
                  "case %zu: <conv(x), y> = %.15g, <x, convT(y)> = %.15g", i, lhs[0], rhs[0]);
        free(lhs), free(rhs);
        jg_graph_free(g);
    }
}

/* ---------------------------------------------------------------- shapes */

Test(conv, output_shapes)
{
    jg_graph *g = jg_graph_new();
    /* the Fashion-MNIST CNN: conv 1->32 3x3 pad 1, pool 2, conv 32->64 3x3 pad 1, pool 2 */
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(128, 1, 28, 28));
    jg_node *w1 = jg_param(g, "w1", jg_shape(32, 1, 3, 3), jg_he_normal());
    jg_node *w2 = jg_param(g, "w2", jg_shape(64, 32, 3, 3), jg_he_normal());
    jg_node *b1 = jg_param(g, "b1", jg_shape(32), jg_zeros());
    jg_conv_opts same = { .pad_h = 1, .pad_w = 1 };
    jg_node *h1 = jg_conv2d(x, w1, b1, &same);
    t_assert_shape(h1, jg_shape(128, 32, 28, 28));
    jg_node *p1 = jg_max_pool2d(jg_relu(h1), 2, 2, 2, 2, 0, 0);
    t_assert_shape(p1, jg_shape(128, 32, 14, 14));
    jg_node *h2 = jg_conv2d(p1, w2, NULL, &same);
    t_assert_shape(h2, jg_shape(128, 64, 14, 14));
    t_assert_shape(jg_max_pool2d(h2, 2, 2, 2, 2, 0, 0), jg_shape(128, 64, 7, 7));
    t_assert_shape(jg_avg_pool2d(h2, 3, 3, 2, 2, 1, 1), jg_shape(128, 64, 7, 7));
    t_assert_shape(jg_global_avg_pool(h2), jg_shape(128, 64));
    /* valid 5x5, stride 2, dilation 2, groups */
    jg_node *w5 = jg_param(g, "w5", jg_shape(8, 1, 5, 5), jg_he_normal());
    t_assert_shape(jg_conv2d(x, w5, NULL, NULL), jg_shape(128, 8, 24, 24));
    t_assert_shape(jg_conv2d(x, w5, NULL, &(jg_conv_opts){ .stride_h = 2, .stride_w = 2 }),
                 jg_shape(128, 8, 12, 12));
    t_assert_shape(jg_conv2d(x, w5, NULL, &(jg_conv_opts){ .dilation_h = 2, .dilation_w = 2,
                                                          .pad_h = 4, .pad_w = 4 }),
                 jg_shape(128, 8, 28, 28));
    jg_node *wg = jg_param(g, "wg", jg_shape(64, 8, 3, 3), jg_he_normal());
    t_assert_shape(jg_conv2d(p1, wg, NULL, &(jg_conv_opts){ .groups = 4, .stride_h = 2,
                                                           .stride_w = 3 }),
                 jg_shape(128, 64, 6, 4));
    /* a GAN generator's upsampling: 7x7 -> 14x14 with k 4, stride 2, pad 1 */
    jg_node *z = jg_input(g, "z", JG_F32, jg_shape(16, 64, 7, 7));
    jg_node *wt = jg_param(g, "wt", jg_shape(64, 32, 4, 4), jg_he_normal());
    jg_conv_opts up = { .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1 };
    t_assert_shape(jg_conv_transpose2d(z, wt, NULL, &up), jg_shape(16, 32, 14, 14));
    jg_node *wt3 = jg_param(g, "wt3", jg_shape(64, 1, 3, 3), jg_he_normal());
    t_assert_shape(jg_conv_transpose2d(z, wt3, NULL, &(jg_conv_opts){
                     .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
                     .output_padding_h = 1, .output_padding_w = 1 }),
                 jg_shape(16, 1, 14, 14));
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- gradients (f64) */

Test(conv, gradcheck_conv2d)
{
    static const jg_conv_opts opts[] = {
        { 0 },
        { .stride_h = 2, .stride_w = 1, .pad_h = 1, .pad_w = 2 },
        { .dilation_h = 2, .dilation_w = 1, .pad_h = 1, .groups = 2 },
        { .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .dilation_h = 2,
          .dilation_w = 2, .groups = 2 },
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        jg_graph *g = jg_graph_new();
        int gr = opts[i].groups ? opts[i].groups : 1;
        jg_node *x = t_param(g, "x", jg_shape(2, 4, 5, 5), 11 + i);
        jg_node *w = t_param(g, "w", jg_shape(4, 4 / gr, 3, 2), 22 + i);
        jg_node *b = t_param(g, "b", jg_shape(4), 33 + i);
        jg_node *y = jg_conv2d(x, w, b, &opts[i]);
        t_gradcheck(g, y, (jg_node *[]){ x, w, b }, 3);
        jg_graph_free(g);
    }
}

Test(conv, gradcheck_conv_transpose2d)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 4, 3, 3), 5);
    jg_node *w = t_param(g, "w", jg_shape(4, 3, 3, 3), 6);
    jg_node *b = t_param(g, "b", jg_shape(6), 7);
    jg_node *y = jg_conv_transpose2d(x, w, b, &(jg_conv_opts){
        .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1, .output_padding_h = 1,
        .groups = 2 });
    t_assert_shape(y, jg_shape(2, 6, 6, 5));
    t_gradcheck(g, y, (jg_node *[]){ x, w, b }, 3);
    jg_graph_free(g);
}

Test(conv, gradcheck_pooling)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3, 5, 6), 9);
    t_gradcheck(g, jg_max_pool2d(x, 2, 2, 2, 2, 0, 0), &x, 1);
    t_gradcheck(g, jg_max_pool2d(x, 3, 3, 2, 1, 1, 1), &x, 1);
    t_gradcheck(g, jg_avg_pool2d(x, 2, 2, 2, 2, 0, 0), &x, 1);
    t_gradcheck(g, jg_avg_pool2d(x, 3, 2, 1, 2, 1, 1), &x, 1);
    t_gradcheck(g, jg_global_avg_pool(x), &x, 1);
    jg_graph_free(g);
}

/* Tied maxima in every window: the check moves the point off the ties (the gradient at a
 * tie is split, which no finite difference reproduces). */
Test(conv, gradcheck_max_pool_ties)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(1, 2, 4, 4), 3);
    double v[32];
    for (int i = 0; i < 32; i++)
        v[i] = (double)(i / 4) / 4; /* rows of equal values */
    cr_assert_eq(jg_param_set(g, "x", v, sizeof v), JG_OK, "%s", jg_errmsg(g));
    jg_gradcheck_report rep;
    jg_status st = jg_gradcheck(g, jg_max_pool2d(x, 2, 2, 2, 2, 0, 0), &x, 1, NULL, &rep);
    cr_assert_eq(st, JG_OK, "%s / %s", rep.message, jg_errmsg(g));
    cr_assert(rep.moves > 0, "the point was not moved off the ties");
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- JIT vs reference */

/* Runs outs on the executor with x bound; returns the values of every output, concatenated
 * (f32 outputs widened to double). */
static double *run(jg_graph *g, jg_node *const *outs, int n, jg_executor ex, const float *x,
                   size_t xbytes, int64_t *total)
{
    jg_program *p = jg_compile(g, outs, n, &(jg_opts){ .executor = ex });
    cr_assert(p, "compile failed: %s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "x", x, xbytes), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += jg_shape_numel(jg_program_output_shape(p, i));
    double *all = malloc((size_t)sum * sizeof *all), *at = all;
    for (int i = 0; i < n; i++) {
        int64_t m = jg_shape_numel(jg_program_output_shape(p, i));
        float *f = malloc((size_t)m * sizeof *f);
        cr_assert_eq(jg_program_get(p, i, f, (size_t)m * sizeof *f), JG_OK, "%s", jg_errmsg(p));
        for (int64_t k = 0; k < m; k++)
            at[k] = f[k];
        free(f);
        at += m;
    }
    jg_program_free(p);
    *total = sum;
    return all;
}

/* Compiles outs (and the gradients of the sum of outs[0] with respect to wrt) for both
 * executors, runs them on the same x and compares (f32: 1e-4 relative). */
static void jit_vs_reference(jg_graph *g, jg_node *y, jg_node *const *wrt, int n, jg_shape xs)
{
    jg_node *outs[8] = { y };
    cr_assert(n < 8);
    cr_assert_eq(jg_grad(g, jg_sum(y, JG_ALL_AXES, false), wrt, n, outs + 1), JG_OK, "%s",
                 jg_errmsg(g));
    int64_t nx = jg_shape_numel(xs), n1, n2;
    float *xv = malloc((size_t)nx * sizeof *xv);
    for (int64_t i = 0; i < nx; i++)
        xv[i] = (float)sin(0.37 * (double)i + 0.1);
    double *ref = run(g, outs, n + 1, JG_EXEC_REFERENCE, xv, (size_t)nx * sizeof *xv, &n1);
    double *jit = run(g, outs, n + 1, JG_EXEC_JIT, xv, (size_t)nx * sizeof *xv, &n2);
    cr_assert_eq(n1, n2);
    t_assert_close(jit, ref, n1, 1e-4);
    free(ref), free(jit), free(xv);
}

/* conv (padding, bias) -> relu -> max pool (non-overlapping) -> grouped, dilated conv */
Test(conv, jit_matches_reference_conv)
{
    jg_graph *g = jg_graph_new();
    jg_shape xs = jg_shape(3, 2, 9, 9);
    jg_node *x = jg_input(g, "x", JG_F32, xs);
    jg_node *w1 = jg_param(g, "w1", jg_shape(4, 2, 3, 3), jg_he_normal());
    jg_node *b1 = jg_param(g, "b1", jg_shape(4), jg_he_normal());
    jg_node *w2 = jg_param(g, "w2", jg_shape(6, 2, 3, 3), jg_he_normal());
    jg_node *h = jg_relu(jg_conv2d(x, w1, b1, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 }));
    h = jg_max_pool2d(h, 2, 2, 2, 2, 0, 0);                                  /* [3,4,4,4] */
    h = jg_conv2d(h, w2, NULL, &(jg_conv_opts){ .groups = 2, .stride_h = 2, .pad_h = 1,
                                                 .pad_w = 1, .dilation_w = 2 });
    jit_vs_reference(g, jg_mul(h, h), (jg_node *[]){ w1, b1, w2, x }, 4, xs);
    jg_graph_free(g);
}

/* padded avg pool -> transposed conv (stride 2, bias) -> padded max pool -> global pool */
Test(conv, jit_matches_reference_pool_transpose)
{
    jg_graph *g = jg_graph_new();
    jg_shape xs = jg_shape(2, 4, 5, 5);
    jg_node *x = jg_input(g, "x", JG_F32, xs);
    jg_node *w = jg_param(g, "w", jg_shape(4, 3, 2, 2), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(3), jg_he_normal());
    jg_node *h = jg_avg_pool2d(x, 3, 3, 1, 1, 1, 1);
    h = jg_conv_transpose2d(h, w, b, &(jg_conv_opts){ .stride_h = 2, .stride_w = 2 });
    jg_node *m = jg_max_pool2d(h, 3, 3, 2, 2, 1, 1);
    jit_vs_reference(g, jg_global_avg_pool(jg_mul(m, m)), (jg_node *[]){ w, b, x }, 3, xs);
    jg_graph_free(g);
}

/* The values of outs on the executor in f64, with x bound; with keep_text, *runs says
 * whether some kernel copies an im2col by its index runs (the global im2col_runs), and
 * *bits is the vector width. */
static double *run64(jg_graph *g, jg_node *const *outs, int n, jg_executor ex, const double *x,
                     size_t xbytes, int64_t *total, bool *runs, int *bits)
{
    jg_program *p = jg_compile(g, outs, n, &(jg_opts){ .executor = ex, .keep_text = runs });
    cr_assert(p, "compile failed: %s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "x", x, xbytes), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    if (bits)
        *bits = st.vector_bits;
    for (int k = 0; runs && k < st.kernels; k++) {
        const char *ir = jg_program_kernel_ir(p, k);
        *runs |= ir && strstr(ir, "im2col_runs");
    }
    int64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += jg_shape_numel(jg_program_output_shape(p, i));
    double *all = malloc((size_t)sum * sizeof *all);
    for (int i = 0, at = 0; i < n; i++) {
        int64_t m = jg_shape_numel(jg_program_output_shape(p, i));
        cr_assert_eq(jg_program_get(p, i, all + at, (size_t)m * sizeof *all), JG_OK);
        at += (int)m;
    }
    jg_program_free(p);
    *total = sum;
    return all;
}

/* Stride-1 convolutions, whose im2col the GEMMs copy by runs of consecutive indices (vector
 * loads, the padding lanes taking the fill), against the reference executor in f64: odd
 * channel counts, 1x1 to 28x28 images, padding 0/1/2, dilation 2, groups 2 and depthwise;
 * the forward, the weight and the input gradient. Strided ones keep the element gather. */
Test(conv, jit_copies_stride_1_im2col_by_runs)
{
    struct {
        int n, c, o, h, w, k, pad, dil, groups, stride;
        bool runs;
    } cs[] = {
        { 2, 1, 4, 28, 28, 3, 1, 1, 1, 1, true },   { 3, 3, 5, 7, 7, 3, 0, 1, 1, 1, true },
        { 2, 15, 17, 7, 7, 3, 2, 1, 1, 1, true },   { 2, 17, 3, 1, 1, 1, 0, 1, 1, 1, false },
        { 2, 4, 6, 9, 11, 3, 1, 2, 2, 1, true },    { 2, 5, 5, 8, 8, 3, 1, 1, 5, 1, true },
        { 2, 3, 4, 13, 13, 5, 2, 1, 1, 1, true },   { 2, 3, 4, 14, 14, 3, 1, 1, 1, 2, false },
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        jg_graph *g = jg_graph_new();
        jg_shape xs = jg_shape(cs[c].n, cs[c].c, cs[c].h, cs[c].w);
        jg_node *x = jg_input(g, "x", JG_F64, xs);
        jg_node *w = jg_param_as(g, "w", JG_F64,
                                 jg_shape(cs[c].o, cs[c].c / cs[c].groups, cs[c].k, cs[c].k),
                                 jg_normal(0, 1));
        jg_node *y = jg_conv2d(x, w, NULL, &(jg_conv_opts){
            .pad_h = cs[c].pad, .pad_w = cs[c].pad, .dilation_h = cs[c].dil,
            .dilation_w = cs[c].dil, .groups = cs[c].groups, .stride_h = cs[c].stride,
            .stride_w = cs[c].stride });
        jg_node *outs[3] = { y };
        cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, y), JG_ALL_AXES, false), (jg_node *[]){ w, x },
                             2, outs + 1), JG_OK, "%s", jg_errmsg(g));
        int64_t nx = jg_shape_numel(xs), n1, n2;
        double *xv = malloc((size_t)nx * sizeof *xv);
        for (int64_t i = 0; i < nx; i++)
            xv[i] = sin(0.37 * (double)i + 0.1);
        bool runs = false;
        int bits = 0;
        double *ref = run64(g, outs, 3, JG_EXEC_REFERENCE, xv, (size_t)nx * sizeof *xv, &n1,
                            NULL, NULL);
        double *jit = run64(g, outs, 3, JG_EXEC_JIT, xv, (size_t)nx * sizeof *xv, &n2, &runs,
                            &bits);
        cr_assert_eq(n1, n2);
        t_assert_close(jit, ref, n1, 1e-11);
        /* which tables qualify depends on the lanes per vector: asserted at 8 doubles */
        if (bits == 512 || !cs[c].runs)
            cr_assert_eq(runs, cs[c].runs, "case %zu: copied by runs %d, expected %d", c, runs,
                         cs[c].runs);
        free(ref), free(jit), free(xv);
        jg_graph_free(g);
    }
}

/* ---------------------------------------------------------------- misuse */

Test(conv, misuse)
{
    static const struct { int which; jg_status st; const char *part; } cases[] = {
        { 0, JG_ERR_SHAPE, "jg_conv2d: channel mismatch" },
        { 1, JG_ERR_SHAPE, "groups 3 must divide" },
        { 2, JG_ERR_SHAPE, "larger than the padded input" },
        { 3, JG_ERR_ARG, "stride_h is -1, must be >= 1" },
        { 4, JG_ERR_SHAPE, "x must be 4-D [N,C,H,W], got [4,28,28]" },
        { 5, JG_ERR_SHAPE, "w must be 4-D" },
        { 6, JG_ERR_DTYPE, "x must be f32 or f64, got i32" },
        { 7, JG_ERR_DTYPE, "w is f64 but x is f32" },
        { 8, JG_ERR_SHAPE, "bias must be [8]" },
        { 9, JG_ERR_ARG, "jg_max_pool2d: kernel 2x2 and stride 0x2 must be >= 1" },
        { 10, JG_ERR_SHAPE, "jg_avg_pool2d: kernel 5x5 is larger than the padded input 3x3" },
        { 11, JG_ERR_ARG, "jg_max_pool2d: padding 2x0 is more than half the kernel" },
        { 12, JG_ERR_DTYPE, "jg_global_avg_pool: x must be f32 or f64, got i32" },
        { 13, JG_ERR_SHAPE, "jg_conv_transpose2d: channel mismatch" },
        { 14, JG_ERR_ARG, "output_padding 2x0 must be smaller" },
        { 15, JG_ERR_ARG, "jg_conv2d: w is NULL" },
        { 16, JG_ERR_ARG, "output_padding is for jg_conv_transpose2d only" },
        { 17, JG_ERR_SHAPE, "x must be 4-D [N,C,H,W], got [2,1,3,3,1]" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 4, 6, 6));
        jg_node *w = jg_param(g, "w", jg_shape(8, 4, 3, 3), jg_he_normal());
        jg_node *r = NULL;
        switch (cases[i].which) {
        case 0: r = jg_conv2d(x, jg_param(g, "w3", jg_shape(8, 3, 3, 3), jg_zeros()), NULL, NULL); break;
        case 1: r = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .groups = 3 }); break;
        case 2: r = jg_conv2d(x, jg_param(g, "w7", jg_shape(8, 4, 7, 7), jg_zeros()), NULL, NULL); break;
        case 3: r = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .stride_h = -1 }); break;
        case 4: r = jg_conv2d(jg_input(g, "x3", JG_F32, jg_shape(4, 28, 28)), w, NULL, NULL); break;
        case 5: r = jg_conv2d(x, jg_param(g, "w2", jg_shape(8, 36), jg_zeros()), NULL, NULL); break;
        case 6: r = jg_conv2d(jg_input(g, "xi", JG_I32, jg_shape(2, 4, 6, 6)), w, NULL, NULL); break;
        case 7: r = jg_conv2d(x, jg_param_as(g, "wd", JG_F64, jg_shape(8, 4, 3, 3), jg_zeros()), NULL, NULL); break;
        case 8: r = jg_conv2d(x, w, jg_param(g, "b", jg_shape(4), jg_zeros()), NULL); break;
        case 9: r = jg_max_pool2d(x, 2, 2, 0, 2, 0, 0); break;
        case 10: r = jg_avg_pool2d(jg_input(g, "x3", JG_F32, jg_shape(1, 1, 3, 3)), 5, 5, 1, 1, 0, 0); break;
        case 11: r = jg_max_pool2d(x, 3, 3, 1, 1, 2, 0); break;
        case 12: r = jg_global_avg_pool(jg_input(g, "xi", JG_I32, jg_shape(2, 4, 6, 6))); break;
        case 13: r = jg_conv_transpose2d(x, w, NULL, NULL); break;
        case 14: r = jg_conv_transpose2d(x, jg_param(g, "wt", jg_shape(4, 2, 3, 3), jg_zeros()), NULL,
                                         &(jg_conv_opts){ .stride_h = 2, .output_padding_h = 2 }); break;
        case 15: r = jg_conv2d(x, NULL, NULL, NULL); break;
        case 16: r = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .output_padding_w = 1 }); break;
        case 17: r = jg_max_pool2d(jg_input(g, "x5", JG_F32, jg_shape(2, 1, 3, 3, 1)), 2, 2, 1, 1, 0, 0); break;
        }
        cr_assert_not(jg_node_ok(r), "case %zu: not poisoned", i);
        t_assert_error(g, cases[i].st, cases[i].part);
        cr_assert(strstr(jg_errmsg(g), "test_conv.c:"), "case %zu: no location in '%s'", i,
                  jg_errmsg(g));
        jg_graph_free(g);
    }
    /* a poisoned operand passes its error through; all-NULL operands give a poison */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 4, 6, 6));
    jg_node *bad = jg_reshape(x, jg_shape(5));
    cr_assert_not(jg_node_ok(jg_conv2d(bad, x, NULL, NULL)));
    cr_assert_not(jg_node_ok(jg_max_pool2d(bad, 2, 2, 2, 2, 0, 0)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_reshape");
    cr_assert_not(jg_node_ok(jg_conv2d(NULL, NULL, NULL, NULL)));
    cr_assert_not(jg_node_ok(jg_global_avg_pool(NULL)));
    jg_graph_free(g);
}
