/* Tests of the nn ops: softmax and log_softmax (values, stability at extreme logits, axes),
 * cross_entropy (hand values, run-time label range errors), bce_with_logits and mse_loss by
 * hand; shape and dtype errors; first- and second-order gradient checks. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static jg_node *labels_const(jg_graph *g, int n, const int32_t *v)
{
    return jg_const(g, JG_I32, jg_shape(n), v);
}

static void assert_finite(const double *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        cr_assert(isfinite(v[i]), "element %lld is %g", (long long)i, v[i]);
}

TestSuite(nn);

/* ---- softmax, log_softmax forward */

Test(nn, softmax_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 5, 5, 5 });
    double *v = t_eval(jg_softmax(x, 1));
    double z = exp(-2) + exp(-1) + 1;
    t_assert_close(v, (double[]){ exp(-2) / z, exp(-1) / z, 1 / z, 1. / 3, 1. / 3, 1. / 3 }, 6,
                   1e-15);
    free(v);
    /* axis 0: columns; pairs (1,5), (2,5), (3,5) */
    v = t_eval(jg_softmax(x, 0));
    double p[3] = { 1 / (1 + exp(4)), 1 / (1 + exp(3)), 1 / (1 + exp(2)) };
    t_assert_close(v, (double[]){ p[0], p[1], p[2], 1 - p[0], 1 - p[1], 1 - p[2] }, 6, 1e-15);
    free(v);
    jg_graph_free(g);
}

Test(nn, softmax_sums_to_one_any_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(3, 4, 5), 7);
    for (int axis = -3; axis < 3; axis++) {
        jg_node *y = jg_softmax(x, axis);
        cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
        jg_node *s = jg_sum(y, jg_axes(axis), false);
        double *v = t_eval(s);
        int64_t n = jg_shape_numel(jg_node_shape(s));
        cr_assert_eq(n, 60 / jg_node_shape(x).dim[(axis + 3) % 3]);
        for (int64_t i = 0; i < n; i++)
            cr_assert_float_eq(v[i], 1.0, 1e-14, "axis %d, sum %lld", axis, (long long)i);
        free(v);
    }
    jg_graph_free(g);
}

Test(nn, softmax_middle_axis_by_hand)
{
    /* [2,2,2] along axis 1: pairs (x[i,0,k], x[i,1,k]) are inner-strided by 2 */
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 2, 2), (double[]){ 0, 1, 0, 3, 2, 0, 2, 0 });
    double *v = t_eval(jg_softmax(x, 1));
    double s1 = 1 / (1 + exp(2)); /* softmax of (1, 3) at 1 */
    t_assert_close(v, (double[]){ 0.5, s1, 0.5, 1 - s1, 0.5, 0.5, 0.5, 0.5 }, 8, 1e-15);
    free(v);
    jg_graph_free(g);
}

Test(nn, log_softmax_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 0, 0, 0 });
    double *v = t_eval(jg_log_softmax(x, -1));
    double lse = log(exp(1) + exp(2) + exp(3));
    t_assert_close(v, (double[]){ 1 - lse, 2 - lse, 3 - lse, -log(3), -log(3), -log(3) }, 6,
                   1e-15);
    free(v);
    jg_graph_free(g);
}

Test(nn, softmax_stable_at_extreme_logits)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1000, -1000, 0, -1000, -1000, -1000 });
    jg_node *y = jg_softmax(x, 1), *ly = jg_log_softmax(x, 1);
    double *v = t_eval(y), *lv = t_eval(ly);
    assert_finite(v, 6);
    assert_finite(lv, 6);
    t_assert_close(v, (double[]){ 1, 0, 0, 1. / 3, 1. / 3, 1. / 3 }, 6, 1e-15);
    t_assert_close(lv, (double[]){ 0, -2000, -1000, -log(3), -log(3), -log(3) }, 6, 1e-15);
    free(v), free(lv);
    /* f32 too: the executor rounds to float, still finite */
    jg_node *xf = jg_const(g, JG_F32, jg_shape(1, 2), ((float[]){ 1000, -1000 }));
    v = t_eval(jg_log_softmax(xf, 0));
    t_assert_close(v, (double[]){ 0, 0 }, 2, 0);
    free(v);
    v = t_eval(jg_softmax(xf, 1));
    t_assert_close(v, (double[]){ 1, 0 }, 2, 0);
    free(v);
    jg_graph_free(g);
}

/* ---- losses forward */

Test(nn, cross_entropy_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *logits = t_const(g, jg_shape(3, 3), (double[]){ 1, 2, 3, 0, 0, 0, 5, 1, -1 });
    jg_node *loss = jg_cross_entropy(logits, labels_const(g, 3, (int32_t[]){ 2, 1, 0 }));
    cr_assert(jg_node_ok(loss), "%s", jg_errmsg(g));
    cr_assert_eq(jg_node_shape(loss).ndim, 0);
    cr_assert_eq(jg_node_dtype(loss), JG_F64);
    double *v = t_eval(loss);
    double want = ((log(exp(1) + exp(2) + exp(3)) - 3) + log(3) +
                   (log(exp(5) + exp(1) + exp(-1)) - 5)) / 3;
    t_assert_close(v, &want, 1, 1e-15);
    free(v);
    jg_graph_free(g);
}

Test(nn, cross_entropy_stable_at_extreme_logits)
{
    jg_graph *g = jg_graph_new();
    jg_node *logits = t_const(g, jg_shape(2, 2), (double[]){ 1000, -1000, -1000, 1000 });
    double *v = t_eval(jg_cross_entropy(logits, labels_const(g, 2, (int32_t[]){ 1, 1 })));
    assert_finite(v, 1);
    t_assert_close(v, (double[]){ 1000 }, 1, 1e-15); /* (2000 + 0) / 2 */
    free(v);
    jg_graph_free(g);
}

Test(nn, cross_entropy_label_out_of_range_at_run_time)
{
    jg_graph *g = jg_graph_new();
    jg_node *logits = t_randn(g, jg_shape(5, 10), 3);
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(5));
    jg_node *loss = jg_cross_entropy(logits, y);
    cr_assert(jg_node_ok(loss), "%s", jg_errmsg(g));
    jg_program *p = jg_compile(g, &loss, 1, NULL);
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "y", (int32_t[]){ 0, 9, 4, 12, 1 }, 5 * sizeof(int32_t)),
                 JG_OK);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE, "%s", jg_errmsg(p));
    cr_assert(strstr(jg_errmsg(p), "label 12 out of range [0, 10) at row 3"), "message: %s",
              jg_errmsg(p));
    cr_assert(strstr(jg_errmsg(p), "cross_entropy"), "message: %s", jg_errmsg(p));
    cr_assert_eq(jg_program_set(p, "y", (int32_t[]){ 0, -1, 4, 2, 1 }, 5 * sizeof(int32_t)),
                 JG_OK);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE);
    cr_assert(strstr(jg_errmsg(p), "label -1 out of range [0, 10) at row 1"), "message: %s",
              jg_errmsg(p));
    /* the bound itself is out: c = 10 at the last row */
    cr_assert_eq(jg_program_set(p, "y", (int32_t[]){ 0, 9, 4, 2, 10 }, 5 * sizeof(int32_t)),
                 JG_OK);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE);
    cr_assert(strstr(jg_errmsg(p), "label 10 out of range [0, 10) at row 4"), "message: %s",
              jg_errmsg(p));
    /* valid labels run again */
    cr_assert_eq(jg_program_set(p, "y", (int32_t[]){ 0, 9, 4, 2, 1 }, 5 * sizeof(int32_t)),
                 JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(nn, bce_with_logits_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 2), (double[]){ 0, 2, -3, 1000 });
    jg_node *t = t_const(g, jg_shape(2, 2), (double[]){ 0.5, 1, 0, 0 });
    jg_node *loss = jg_bce_with_logits(x, t);
    cr_assert_eq(jg_node_shape(loss).ndim, 0);
    double *v = t_eval(loss);
    /* -t log s(x) - (1 - t) log(1 - s(x)): at x=0 log 2; x=2,t=1: log(1 + e^-2);
     * x=-3,t=0: log(1 + e^-3); x=1000,t=0: 1000 (no overflow) */
    double want = (log(2) + log1p(exp(-2)) + log1p(exp(-3)) + 1000) / 4;
    assert_finite(v, 1);
    t_assert_close(v, &want, 1, 1e-15);
    free(v);
    jg_graph_free(g);
}

Test(nn, mse_loss_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    jg_node *b = t_const(g, jg_shape(3), (double[]){ 0, 4, 3 });
    double *v = t_eval(jg_mse_loss(a, b));
    t_assert_close(v, (double[]){ 5.0 / 3 }, 1, 1e-15);
    free(v);
    /* scalars: one element */
    v = t_eval(jg_mse_loss(jg_scalar(g, JG_F64, 2), jg_scalar(g, JG_F64, -1)));
    t_assert_close(v, (double[]){ 9 }, 1, 0);
    free(v);
    jg_graph_free(g);
}

/* ---- errors */

Test(nn, error_softmax_axis_and_dtype)
{
    jg_graph *g = jg_graph_new();
    cr_assert_not(jg_node_ok(jg_softmax(t_randn(g, jg_shape(2, 3), 1), 2)));
    t_assert_error(g, JG_ERR_ARG, "jg_softmax: axis 2 out of range for [2,3]");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_log_softmax(t_randn(g, jg_shape(2, 3), 1), -3);
    t_assert_error(g, JG_ERR_ARG, "jg_log_softmax: axis -3 out of range for [2,3]");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_softmax(jg_const(g, JG_I32, jg_shape(2), ((int32_t[]){ 1, 2 })), 0);
    t_assert_error(g, JG_ERR_DTYPE, "float");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_softmax(jg_scalar(g, JG_F64, 1), 0);
    t_assert_error(g, JG_ERR_ARG, "axis 0 out of range for []");
    jg_graph_free(g);
}

Test(nn, error_cross_entropy_operands)
{
    jg_graph *g = jg_graph_new();
    jg_cross_entropy(t_randn(g, jg_shape(4, 3), 1), t_randn(g, jg_shape(4), 2));
    t_assert_error(g, JG_ERR_DTYPE, "labels must be i32 class indices, got f64");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_cross_entropy(t_randn(g, jg_shape(4, 3), 1), jg_input(g, "y", JG_I32, jg_shape(3)));
    t_assert_error(g, JG_ERR_SHAPE, "labels must have shape [4] to match logits [4,3], got [3]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_cross_entropy(t_randn(g, jg_shape(4, 3), 1), jg_input(g, "y", JG_I32, jg_shape(4, 1)));
    t_assert_error(g, JG_ERR_SHAPE, "got [4,1]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_cross_entropy(t_randn(g, jg_shape(2, 4, 3), 1), jg_input(g, "y", JG_I32, jg_shape(2)));
    t_assert_error(g, JG_ERR_SHAPE, "logits must be 2-D [n, c], got [2,4,3]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_cross_entropy(jg_input(g, "x", JG_I32, jg_shape(2, 3)),
                     jg_input(g, "y", JG_I32, jg_shape(2)));
    t_assert_error(g, JG_ERR_DTYPE, "logits must be float");
    jg_graph_free(g);
}

Test(nn, error_pair_losses)
{
    jg_graph *g = jg_graph_new();
    jg_bce_with_logits(t_randn(g, jg_shape(2, 3), 1), t_randn(g, jg_shape(3, 2), 2));
    t_assert_error(g, JG_ERR_SHAPE, "jg_bce_with_logits: shapes differ: [2,3] and [3,2]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_mse_loss(t_randn(g, jg_shape(2, 3), 1), t_randn(g, jg_shape(3), 2));
    t_assert_error(g, JG_ERR_SHAPE, "jg_mse_loss: shapes differ: [2,3] and [3]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_mse_loss(jg_input(g, "a", JG_F32, jg_shape(2)), t_randn(g, jg_shape(2), 2));
    t_assert_error(g, JG_ERR_DTYPE, "dtypes differ: f32 and f64");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_mse_loss(jg_input(g, "a", JG_I32, jg_shape(2)), jg_input(g, "b", JG_I32, jg_shape(2)));
    t_assert_error(g, JG_ERR_DTYPE, "needs float operands");
    jg_graph_free(g);
}

/* ---- gradients */

Test(nn, gradcheck_softmax)
{
    struct { jg_shape s; int axis; } cases[] = {
        { jg_shape(2, 5), 1 }, { jg_shape(4, 3), 0 }, { jg_shape(2, 3, 4), 1 },
        { jg_shape(3, 2, 2), -1 }, { jg_shape(6), 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", cases[i].s, 10 + i);
        t_gradcheck(g, jg_softmax(x, cases[i].axis), &x, 1);
        jg_graph_free(g);
    }
}

Test(nn, gradcheck_log_softmax)
{
    struct { jg_shape s; int axis; } cases[] = {
        { jg_shape(2, 5), 1 }, { jg_shape(4, 3), 0 }, { jg_shape(2, 3, 4), 1 },
        { jg_shape(3, 2, 2), -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", cases[i].s, 20 + i);
        t_gradcheck(g, jg_log_softmax(x, cases[i].axis), &x, 1);
        jg_graph_free(g);
    }
}

/* Labels 0, 1, ..., wrapping at c, so every class and row varies. */
static jg_node *cycling_labels(jg_graph *g, int n, int c)
{
    int32_t v[64];
    cr_assert(n <= 64);
    for (int i = 0; i < n; i++)
        v[i] = (int32_t)((i * 7 + 3) % c);
    return labels_const(g, n, v);
}

Test(nn, gradcheck_cross_entropy)
{
    int shapes[][2] = { { 1, 2 }, { 4, 3 }, { 8, 10 }, { 5, 1 } };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        int n = shapes[i][0], c = shapes[i][1];
        jg_node *x = t_param(g, "x", jg_shape(n, c), 30 + i);
        jg_node *loss = jg_cross_entropy(x, cycling_labels(g, n, c));
        t_gradcheck(g, loss, &x, 1);
        jg_graph_free(g);
    }
}

Test(nn, cross_entropy_no_gradient_to_labels)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3, 4), 1);
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(3));
    jg_node *wrt[2] = { x, y }, *d[2];
    cr_assert_eq(jg_grad(g, jg_cross_entropy(x, y), wrt, 2, d), JG_OK, "%s", jg_errmsg(g));
    cr_assert(d[0] && jg_node_ok(d[0]));
    cr_assert_null(d[1]);
    /* softmax - one_hot, over n: rows sum to 0, the label's entry is p - 1 */
    double *p = t_eval_with(jg_softmax(x, 1), NULL, 0);
    double *v = t_eval_with(d[0], &(jg_binding){ "y", (int32_t[]){ 3, 0, 1 }, 12 }, 1);
    int32_t lab[3] = { 3, 0, 1 };
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 4; j++)
            cr_assert_float_eq(v[r * 4 + j], (p[r * 4 + j] - (j == lab[r])) / 3, 1e-14,
                               "[%d,%d]", r, j);
    free(p), free(v);
    jg_graph_free(g);
}

Test(nn, gradcheck_bce_with_logits)
{
    jg_shape shapes[] = { jg_shape(5), jg_shape(2, 3), jg_shape(2, 2, 3) };
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", shapes[i], 40 + i);
        jg_node *t = jg_param_as(g, "t", JG_F64, shapes[i], jg_seeded(jg_uniform(0, 1), 50 + i));
        t_gradcheck(g, jg_bce_with_logits(x, t), (jg_node *[]){ x, t }, 2);
        jg_graph_free(g);
    }
}

Test(nn, gradcheck_mse_loss)
{
    jg_shape shapes[] = { jg_shape(5), jg_shape(2, 3), jg_shape(2, 2, 3), JG_SCALAR };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *a = t_param(g, "a", shapes[i], 60 + i), *b = t_param(g, "b", shapes[i], 70 + i);
        t_gradcheck(g, jg_mse_loss(a, b), (jg_node *[]){ a, b }, 2);
        jg_graph_free(g);
    }
}

/* Second order: the gradient of a scalar function of the op, checked again. Non-scalar
 * gradients are projected by the checker. */
static void second_order(jg_graph *g, jg_node *out, jg_node *const *wrt, int n)
{
    jg_node *d[2];
    cr_assert(n <= 2);
    cr_assert_eq(jg_grad(g, out, wrt, n, d), JG_OK, "%s", jg_errmsg(g));
    for (int i = 0; i < n; i++) {
        cr_assert(d[i], "no gradient for wrt %d", i);
        t_gradcheck(g, d[i], wrt, n);
    }
}

Test(nn, second_order_softmax)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3, 4), 1), *w = t_randn(g, jg_shape(3, 4), 2);
    /* a weighted sum, so the first gradient is not identically zero */
    jg_node *out = jg_sum(jg_mul(jg_softmax(x, 1), w), JG_ALL_AXES, false);
    second_order(g, out, &x, 1);
    jg_node *y = t_param(g, "y", jg_shape(2, 3, 2), 3), *u = t_randn(g, jg_shape(2, 3, 2), 4);
    second_order(g, jg_sum(jg_mul(jg_softmax(y, 1), u), JG_ALL_AXES, false), &y, 1);
    jg_graph_free(g);
}

Test(nn, second_order_log_softmax)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3, 4), 5), *w = t_randn(g, jg_shape(3, 4), 6);
    second_order(g, jg_sum(jg_mul(jg_log_softmax(x, 1), w), JG_ALL_AXES, false), &x, 1);
    jg_node *y = t_param(g, "y", jg_shape(4, 2), 7), *u = t_randn(g, jg_shape(4, 2), 8);
    second_order(g, jg_sum(jg_mul(jg_log_softmax(y, 0), u), JG_ALL_AXES, false), &y, 1);
    jg_graph_free(g);
}

Test(nn, second_order_cross_entropy)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 9);
    second_order(g, jg_cross_entropy(x, cycling_labels(g, 4, 3)), &x, 1);
    jg_graph_free(g);
}

Test(nn, second_order_bce_with_logits)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 11);
    jg_node *t = jg_param_as(g, "t", JG_F64, jg_shape(2, 3), jg_seeded(jg_uniform(0, 1), 12));
    second_order(g, jg_bce_with_logits(x, t), (jg_node *[]){ x, t }, 2);
    jg_graph_free(g);
}

Test(nn, second_order_mse_loss)
{
    /* mse is quadratic: its Hessian is constant, so check through a nonlinearity too */
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", jg_shape(2, 3), 13), *b = t_param(g, "b", jg_shape(2, 3), 14);
    second_order(g, jg_mse_loss(a, b), (jg_node *[]){ a, b }, 2);
    second_order(g, jg_mse_loss(jg_tanh(a), b), (jg_node *[]){ a, b }, 2);
    jg_graph_free(g);
}

Test(nn, mlp_loss_gradcheck)
{
    /* the demo's structure in miniature: matmul, bias, relu, matmul, cross entropy */
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(4, 5), 1);
    jg_node *w1 = t_param(g, "w1", jg_shape(5, 3), 2), *b1 = t_param(g, "b1", jg_shape(3), 3);
    jg_node *w2 = t_param(g, "w2", jg_shape(3, 2), 4);
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *loss = jg_cross_entropy(jg_matmul(h, w2), cycling_labels(g, 4, 2));
    t_gradcheck(g, loss, (jg_node *[]){ w1, b1, w2 }, 3);
    jg_graph_free(g);
}
