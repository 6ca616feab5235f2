/* Tests of the reductions (src/ops/reduce.c): forward values computed by hand over several axis
 * sets (negative axes, keepdims, all axes, size-1 dims, i32, ties), f64 gradient checks on
 * random shapes, second-order checks for the smooth ones, and misuse. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>



/* An i32 constant (a function, so compound literals need no extra parentheses). */
static jg_node *i32_const(jg_graph *g, jg_shape s, const int32_t *values)
{
    return jg_const(g, JG_I32, s, values);
}

/* [[1,2,3],[4,5,6]] */
static jg_node *x23(jg_graph *g)
{
    return t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
}

/* [2,3,4] holding 0..23 row-major: x[i][j][k] = 12i + 4j + k. */
static jg_node *iota234(jg_graph *g)
{
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = i;
    return t_const(g, jg_shape(2, 3, 4), v);
}

TestSuite(reduce);

/* ---- forward values */

Test(reduce, sum_2d_axes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = x23(g);
    t_expect(jg_sum(x, jg_axes(0), false), jg_shape(3), (double[]){ 5, 7, 9 });
    t_expect(jg_sum(x, jg_axes(1), false), jg_shape(2), (double[]){ 6, 15 });
    t_expect(jg_sum(x, jg_axes(-1), false), jg_shape(2), (double[]){ 6, 15 });
    t_expect(jg_sum(x, jg_axes(-2), true), jg_shape(1, 3), (double[]){ 5, 7, 9 });
    t_expect(jg_sum(x, jg_axes(1), true), jg_shape(2, 1), (double[]){ 6, 15 });
    t_expect(jg_sum(x, JG_ALL_AXES, false), JG_SCALAR, (double[]){ 21 });
    t_expect(jg_sum(x, JG_ALL_AXES, true), jg_shape(1, 1), (double[]){ 21 });
    t_expect(jg_sum(x, jg_axes(1, 0), false), JG_SCALAR, (double[]){ 21 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(reduce, sum_empty_axes_is_identity)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = x23(g);
    t_expect(jg_sum(x, (jg_axes){ .n = 0 }, false), jg_shape(2, 3),
           (double[]){ 1, 2, 3, 4, 5, 6 });
    t_expect(jg_max(x, (jg_axes){ .n = 0 }, true), jg_shape(2, 3),
           (double[]){ 1, 2, 3, 4, 5, 6 });
    /* JG_NO_AXES names the same thing (jg_axes() does not compile: see jitgrad.h) */
    t_expect(jg_sum(x, JG_NO_AXES, false), jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    t_expect(jg_mean(x, JG_NO_AXES, true), jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *w = t_param(g, "w", jg_shape(2, 3), 7);
    t_gradcheck(g, jg_sum(jg_square(w), JG_NO_AXES, false), &w, 1);
    jg_graph_free(g);
}

Test(reduce, sum_3d_axis_sets)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = iota234(g);
    /* over i and k: sum_i sum_k (12i + 4j + k) = 32j + 60 */
    t_expect(jg_sum(x, jg_axes(0, 2), false), jg_shape(3), (double[]){ 60, 92, 124 });
    t_expect(jg_sum(x, jg_axes(-1, 0), true), jg_shape(1, 3, 1), (double[]){ 60, 92, 124 });
    /* over j: sum_j (12i + 4j + k) = 36i + 12 + 3k */
    t_expect(jg_sum(x, jg_axes(1), false), jg_shape(2, 4),
           (double[]){ 12, 15, 18, 21, 48, 51, 54, 57 });
    /* over j and k: 12 * 12i + sum of 0..11 = 144i + 66 */
    t_expect(jg_sum(x, jg_axes(-2, -1), false), jg_shape(2), (double[]){ 66, 210 });
    /* over i: 12 + 8j + 2k */
    t_expect(jg_sum(x, jg_axes(0), true), jg_shape(1, 3, 4),
           (double[]){ 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34 });
    t_expect(jg_sum(x, JG_ALL_AXES, false), JG_SCALAR, (double[]){ 276 });
    jg_graph_free(g);
}

Test(reduce, size_one_dims_and_scalars)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(3, 1), (double[]){ 1, -2, 5 });
    t_expect(jg_sum(x, jg_axes(1), false), jg_shape(3), (double[]){ 1, -2, 5 });
    t_expect(jg_sum(x, jg_axes(0), true), jg_shape(1, 1), (double[]){ 4 });
    t_expect(jg_max(x, jg_axes(-1), true), jg_shape(3, 1), (double[]){ 1, -2, 5 });
    t_expect(jg_mean(x, jg_axes(0), false), jg_shape(1), (double[]){ 4.0 / 3 });
    jg_node *s = jg_scalar(g, JG_F64, 2.5);
    t_expect(jg_sum(s, JG_ALL_AXES, false), JG_SCALAR, (double[]){ 2.5 });
    t_expect(jg_mean(s, JG_ALL_AXES, true), JG_SCALAR, (double[]){ 2.5 });
    t_expect(jg_logsumexp(s, JG_ALL_AXES, false), JG_SCALAR, (double[]){ 2.5 });
    jg_graph_free(g);
}

Test(reduce, mean_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = x23(g);
    t_expect(jg_mean(x, jg_axes(0), false), jg_shape(3), (double[]){ 2.5, 3.5, 4.5 });
    t_expect(jg_mean(x, jg_axes(-1), true), jg_shape(2, 1), (double[]){ 2, 5 });
    t_expect(jg_mean(x, JG_ALL_AXES, false), JG_SCALAR, (double[]){ 3.5 });
    jg_node *y = iota234(g);
    t_expect(jg_mean(y, jg_axes(0, -1), false), jg_shape(3),
           (double[]){ 60 / 8.0, 92 / 8.0, 124 / 8.0 });
    jg_graph_free(g);
}

Test(reduce, max_min_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1, 5, -3, 4, -2, 6 });
    t_expect(jg_max(x, jg_axes(0), false), jg_shape(3), (double[]){ 4, 5, 6 });
    t_expect(jg_max(x, jg_axes(-1), false), jg_shape(2), (double[]){ 5, 6 });
    t_expect(jg_max(x, JG_ALL_AXES, true), jg_shape(1, 1), (double[]){ 6 });
    t_expect(jg_min(x, jg_axes(0), true), jg_shape(1, 3), (double[]){ 1, -2, -3 });
    t_expect(jg_min(x, jg_axes(1), false), jg_shape(2), (double[]){ -3, -2 });
    t_expect(jg_min(x, JG_ALL_AXES, false), JG_SCALAR, (double[]){ -3 });
    jg_node *y = iota234(g);
    t_expect(jg_max(y, jg_axes(0, 2), false), jg_shape(3), (double[]){ 15, 19, 23 });
    t_expect(jg_min(y, jg_axes(-3, -2), false), jg_shape(4), (double[]){ 0, 1, 2, 3 });
    /* all-negative groups: the maximum is not the 0 an accumulator might start from */
    jg_node *neg = t_const(g, jg_shape(2, 2), (double[]){ -7, -3, -1, -9 });
    t_expect(jg_max(neg, jg_axes(1), false), jg_shape(2), (double[]){ -3, -1 });
    jg_graph_free(g);
}

Test(reduce, max_min_ties)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 2, 2, 1, 0, 0, 0 });
    t_expect(jg_max(x, jg_axes(1), false), jg_shape(2), (double[]){ 2, 0 });
    t_expect(jg_min(x, jg_axes(1), false), jg_shape(2), (double[]){ 1, 0 });
    jg_graph_free(g);
}

Test(reduce, logsumexp_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = x23(g);
    double r0 = log(exp(1) + exp(2) + exp(3)), r1 = log(exp(4) + exp(5) + exp(6));
    t_expect(jg_logsumexp(x, jg_axes(-1), false), jg_shape(2), (double[]){ r0, r1 });
    t_expect(jg_logsumexp(x, jg_axes(0), true), jg_shape(1, 3),
           (double[]){ log(exp(1) + exp(4)), log(exp(2) + exp(5)), log(exp(3) + exp(6)) });
    double all = log(exp(1) + exp(2) + exp(3) + exp(4) + exp(5) + exp(6));
    t_expect(jg_logsumexp(x, JG_ALL_AXES, false), JG_SCALAR, (double[]){ all });
    jg_graph_free(g);
}

Test(reduce, logsumexp_is_stable)
{
    jg_graph *g = jg_graph_new();
    /* exp(1000) overflows and exp(-1000) underflows: only the shifted form gets these */
    jg_node *x = t_const(g, jg_shape(3, 2),
                         (double[]){ 1000, 1000, -1000, -1000, -INFINITY, -INFINITY });
    jg_node *y = jg_logsumexp(x, jg_axes(1), false);
    t_assert_shape(y, jg_shape(3));
    double *v = t_eval(y);
    cr_assert_float_eq(v[0], 1000 + log(2.0), 1e-9);
    cr_assert_float_eq(v[1], -1000 + log(2.0), 1e-9);
    cr_assert(isinf(v[2]) && v[2] < 0, "all -inf group gives %g, want -inf", v[2]);
    free(v);
    jg_graph_free(g);
}

Test(reduce, i32_sum_max_min)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = i32_const(g, jg_shape(2, 3), (int32_t[]){ 1, -5, 3, 4, 2, -6 });
    jg_node *s = jg_sum(x, jg_axes(0), false);
    cr_assert_eq(jg_node_dtype(s), JG_I32);
    t_expect(s, jg_shape(3), (double[]){ 5, -3, -3 });
    t_expect(jg_sum(x, JG_ALL_AXES, false), JG_SCALAR, (double[]){ -1 });
    jg_node *m = jg_max(x, jg_axes(-1), true);
    cr_assert_eq(jg_node_dtype(m), JG_I32);
    t_expect(m, jg_shape(2, 1), (double[]){ 3, 4 });
    t_expect(jg_min(x, jg_axes(1), false), jg_shape(2), (double[]){ -5, -6 });
    jg_graph_free(g);
}

Test(reduce, argmax_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1, 5, 5, 7, 2, 7 });
    jg_node *a = jg_argmax(x, 1);
    cr_assert_eq(jg_node_dtype(a), JG_I32);
    t_expect(a, jg_shape(2), (double[]){ 1, 0 }); /* ties: the first maximum */
    t_expect(jg_argmax(x, -1), jg_shape(2), (double[]){ 1, 0 });
    t_expect(jg_argmax(x, 0), jg_shape(3), (double[]){ 1, 0, 1 });
    t_expect(jg_argmax(x, -2), jg_shape(3), (double[]){ 1, 0, 1 });
    jg_node *y = iota234(g);
    t_expect(jg_argmax(y, 1), jg_shape(2, 4), (double[]){ 2, 2, 2, 2, 2, 2, 2, 2 });
    t_expect(jg_argmax(jg_neg(y), 2), jg_shape(2, 3), (double[]){ 0, 0, 0, 0, 0, 0 });
    jg_node *neg = t_const(g, jg_shape(4), (double[]){ -3, -1, -2, -1 });
    t_expect(jg_argmax(neg, 0), JG_SCALAR, (double[]){ 1 });
    jg_node *one = t_const(g, jg_shape(2, 1), (double[]){ 3, 4 });
    t_expect(jg_argmax(one, 1), jg_shape(2), (double[]){ 0, 0 });
    jg_graph_free(g);
}

Test(reduce, argmax_i32)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = i32_const(g, jg_shape(3, 2), (int32_t[]){ 4, 9, -1, -1, 8, 2 });
    t_expect(jg_argmax(x, 0), jg_shape(2), (double[]){ 2, 0 });
    t_expect(jg_argmax(x, 1), jg_shape(3), (double[]){ 1, 0, 0 });
    jg_graph_free(g);
}

/* ---- gradients */

/* The gradient of sum(op(x)) w.r.t. x, evaluated. */
static double *grad_of(jg_graph *g, jg_node *y, jg_node *x)
{
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, y, &x, 1, &d), JG_OK, "%s", jg_errmsg(g));
    cr_assert(d);
    t_assert_shape(d, jg_node_shape(x));
    return t_eval(d);
}

Test(reduce, grad_values_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 1);
    double *d = grad_of(g, jg_sum(x, jg_axes(1), false), x);
    t_assert_close(d, (double[]){ 1, 1, 1, 1, 1, 1 }, 6, 1e-12);
    free(d);
    d = grad_of(g, jg_mean(x, jg_axes(0), true), x);
    t_assert_close(d, (double[]){ .5, .5, .5, .5, .5, .5 }, 6, 1e-12);
    free(d);
    d = grad_of(g, jg_mean(x, JG_ALL_AXES, false), x);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(d[i], 1.0 / 6, 1e-12);
    free(d);
    jg_graph_free(g);
}

Test(reduce, max_min_grad_split_among_ties)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(2, 3), jg_zeros());
    double v[6] = { 1, 3, 3, 2, 0, 2 };
    cr_assert_eq(jg_param_set(g, "x", v, sizeof v), JG_OK);
    double *d = grad_of(g, jg_max(x, jg_axes(1), false), x);
    t_assert_close(d, (double[]){ 0, .5, .5, .5, 0, .5 }, 6, 1e-12);
    free(d);
    d = grad_of(g, jg_min(x, jg_axes(-1), true), x);
    t_assert_close(d, (double[]){ 1, 0, 0, 0, 1, 0 }, 6, 1e-12);
    free(d);
    d = grad_of(g, jg_max(x, JG_ALL_AXES, false), x);
    t_assert_close(d, (double[]){ 0, .5, .5, 0, 0, 0 }, 6, 1e-12);
    free(d);
    jg_graph_free(g);
}

/* JG_TIES_FIRST: the whole gradient to the first extreme in row-major order of its group,
 * over reduced axes that need not be adjacent or last; a NaN takes it as argmax finds it. */
Test(reduce, max_min_grad_first_takes_ties)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(2, 3), jg_zeros());
    double v[6] = { 1, 3, 3, 2, 0, 2 };
    cr_assert_eq(jg_param_set(g, "x", v, sizeof v), JG_OK);
    double *d = grad_of(g, jg_max_ex(x, jg_axes(1), false, JG_TIES_FIRST), x);
    t_assert_close(d, (double[]){ 0, 1, 0, 1, 0, 0 }, 6, 0);
    free(d);
    d = grad_of(g, jg_min_ex(x, jg_axes(0), true, JG_TIES_FIRST), x);
    t_assert_close(d, (double[]){ 1, 0, 0, 0, 1, 1 }, 6, 0);
    free(d);
    d = grad_of(g, jg_min_ex(jg_neg(x), jg_axes(1), false, JG_TIES_FIRST), x);
    t_assert_close(d, (double[]){ 0, -1, 0, -1, 0, 0 }, 6, 0); /* both rows tie: the first */
    free(d);
    d = grad_of(g, jg_max_ex(x, JG_ALL_AXES, false, JG_TIES_FIRST), x);
    t_assert_close(d, (double[]){ 0, 1, 0, 0, 0, 0 }, 6, 0);
    free(d);
    d = grad_of(g, jg_max_ex(x, jg_axes(1), false, JG_TIES_SPLIT), x);
    t_assert_close(d, (double[]){ 0, .5, .5, .5, 0, .5 }, 6, 1e-12);
    free(d);
    /* [2, 3, 2] over axes 0 and 2 (the group of middle index j is x[:, j, :]) */
    jg_node *y = jg_param_as(g, "y", JG_F64, jg_shape(2, 3, 2), jg_zeros());
    double w[12] = { 5, 1, 0, 7, 2, 2, /**/ 5, 5, 7, 0, 2, NAN };
    cr_assert_eq(jg_param_set(g, "y", w, sizeof w), JG_OK);
    d = grad_of(g, jg_max_ex(y, jg_axes(0, 2), false, JG_TIES_FIRST), y);
    t_assert_close(d, (double[]){ 1, 0, 0, 1, 0, 0, /**/ 0, 0, 0, 0, 0, 1 }, 12, 0);
    free(d);
    /* nothing reduced, at the most dimensions: the identity's gradient */
    jg_node *z = jg_param_as(g, "z", JG_F64, jg_shape(2, 1, 1, 1, 1, 1, 1, 2), jg_constant(1));
    d = grad_of(g, jg_max_ex(z, JG_NO_AXES, false, JG_TIES_FIRST), z);
    t_assert_close(d, (double[]){ 1, 1, 1, 1 }, 4, 0);
    free(d);
    jg_max_ex(x, jg_axes(1), false, (jg_ties)7);
    t_assert_error(g, JG_ERR_ARG, "jg_max: ties is 7: JG_TIES_FIRST or JG_TIES_SPLIT");
    jg_graph_free(g);
}

Test(reduce, logsumexp_grad_is_softmax)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(3), jg_zeros());
    double v[3] = { 0, log(2.0), log(5.0) };
    cr_assert_eq(jg_param_set(g, "x", v, sizeof v), JG_OK);
    double *d = grad_of(g, jg_logsumexp(x, jg_axes(0), false), x);
    t_assert_close(d, (double[]){ 1 / 8.0, 2 / 8.0, 5 / 8.0 }, 3, 1e-12);
    free(d);
    jg_graph_free(g);
}

Test(reduce, i32_gets_no_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 2);
    jg_node *idx = jg_argmax(x, 1);
    jg_node *y = jg_add(jg_sum(x, JG_ALL_AXES, false),
                        jg_cast(jg_sum(idx, JG_ALL_AXES, false), JG_F64));
    double *d = grad_of(g, y, x);
    t_assert_close(d, (double[]){ 1, 1, 1, 1, 1, 1 }, 6, 1e-12);
    free(d);
    jg_graph_free(g);
}

/* Shapes and axis sets for the gradient checks: a 2-D row reduction, a 3-D one over two axes
 * given negative, a full reduction, and one over a size-1 axis. */
typedef struct grad_case {
    jg_shape shape;
    jg_axes axes;
    bool keepdims;
} grad_case;

static const grad_case grad_cases[] = {
    { jg_shape(3, 4), jg_axes(1), false },
    { jg_shape(2, 3, 4), jg_axes(-1, 0), true },
    { jg_shape(5), { .n = -1 }, false },
    { jg_shape(2, 1, 3), jg_axes(-2, 2), false },
    { jg_shape(4, 3), jg_axes(0), true },
};
#define N_CASES ((int)(sizeof grad_cases / sizeof grad_cases[0]))

typedef jg_node *(*reduce_fn)(jg_loc, jg_node *, jg_axes, bool);

static void gradcheck_cases(reduce_fn f, uint64_t seed)
{
    for (int i = 0; i < N_CASES; i++) {
        const grad_case *c = &grad_cases[i];
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", c->shape, seed + (uint64_t)i);
        jg_node *y = f(JG_HERE, x, c->axes, c->keepdims);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_graph_free(g);
    }
}

Test(reduce, gradcheck_sum) { gradcheck_cases(jg_sum_, 10); }
Test(reduce, gradcheck_mean) { gradcheck_cases(jg_mean_, 20); }
Test(reduce, gradcheck_max) { gradcheck_cases(jg_max_, 30); }
Test(reduce, gradcheck_min) { gradcheck_cases(jg_min_, 40); }
Test(reduce, gradcheck_logsumexp) { gradcheck_cases(jg_logsumexp_, 50); }

static jg_node *max_first(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return jg_max_ex_(at, x, axes, keepdims, JG_TIES_FIRST);
}

static jg_node *min_first(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return jg_min_ex_(at, x, axes, keepdims, JG_TIES_FIRST);
}

Test(reduce, gradcheck_max_first) { gradcheck_cases(max_first, 80); }
Test(reduce, gradcheck_min_first) { gradcheck_cases(min_first, 90); }

/* At a three-way tie central differences give 1/2 where the split gives 1/3: the check only
 * passes because the kinks make the checker move the point off the tie. */
Test(reduce, gradcheck_moves_off_ties)
{
    for (int is_min = 0; is_min < 2; is_min++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(2, 4), jg_zeros());
        double v[8] = { 1, 1, 1, 0, -2, -2, -2, 3 };
        if (is_min)
            for (int i = 0; i < 8; i++)
                v[i] = -v[i];
        cr_assert_eq(jg_param_set(g, "x", v, sizeof v), JG_OK);
        for (int ties = 0; ties < 2; ties++) {
            jg_node *y = is_min ? jg_min_ex(x, jg_axes(1), false, (jg_ties)ties)
                                : jg_max_ex(x, jg_axes(-1), false, (jg_ties)ties);
            jg_gradcheck_report r;
            jg_status st = jg_gradcheck(g, y, &x, 1, NULL, &r);
            cr_assert_eq(st, JG_OK, "%s ties %d: %s %s", is_min ? "min" : "max", ties,
                         r.message, jg_errmsg(g));
            cr_assert_gt(r.moves, 0, "the point was not moved off the ties");
        }
        jg_graph_free(g);
    }
}

/* Second order: checks the gradient of sum(h(r(x))) for a nonlinear h, whose gradient depends on
 * x through r's gradient rule, so that rule gets differentiated. */
static void second_order_cases(reduce_fn f, uint64_t seed)
{
    for (int i = 0; i < N_CASES; i++) {
        const grad_case *c = &grad_cases[i];
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", c->shape, seed + (uint64_t)i);
        jg_node *y = jg_tanh(f(JG_HERE, jg_square(x), c->axes, c->keepdims));
        jg_node *d = NULL;
        cr_assert_eq(jg_grad(g, y, &x, 1, &d), JG_OK, "case %d: %s", i, jg_errmsg(g));
        cr_assert(d, "case %d: no gradient", i);
        t_gradcheck(g, d, &x, 1);
        jg_graph_free(g);
    }
}

Test(reduce, second_order_sum) { second_order_cases(jg_sum_, 60); }
Test(reduce, second_order_mean) { second_order_cases(jg_mean_, 70); }
Test(reduce, second_order_max_first) { second_order_cases(max_first, 100); }

Test(reduce, second_order_logsumexp)
{
    for (int i = 0; i < N_CASES; i++) {
        const grad_case *c = &grad_cases[i];
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", c->shape, 80 + (uint64_t)i);
        /* the Hessian of logsumexp itself (softmax's Jacobian) */
        jg_node *y = jg_logsumexp(x, c->axes, c->keepdims);
        jg_node *d = NULL;
        cr_assert_eq(jg_grad(g, y, &x, 1, &d), JG_OK, "case %d: %s", i, jg_errmsg(g));
        cr_assert(d, "case %d: no gradient", i);
        t_gradcheck(g, d, &x, 1);
        jg_graph_free(g);
    }
}

/* ---- misuse */

Test(reduce, bad_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *y = jg_sum(x23(g), jg_axes(3), false);
    cr_assert_not(jg_node_ok(y));
    t_assert_error(g, JG_ERR_ARG, "jg_sum: axis 3 out of range for [2,3]");
    t_assert_error(g, JG_ERR_ARG, "test_reduce.c:");
    jg_graph_free(g);

    g = jg_graph_new();
    cr_assert_not(jg_node_ok(jg_max(x23(g), jg_axes(0, -3), true)));
    t_assert_error(g, JG_ERR_ARG, "jg_max: axis -3 out of range for [2,3]");
    jg_graph_free(g);

    g = jg_graph_new();
    cr_assert_not(jg_node_ok(jg_sum(jg_scalar(g, JG_F64, 1), jg_axes(0), false)));
    t_assert_error(g, JG_ERR_ARG, "axis 0 out of range for []");
    jg_graph_free(g);

    g = jg_graph_new();
    cr_assert_not(jg_node_ok(jg_argmax(x23(g), 2)));
    t_assert_error(g, JG_ERR_ARG, "jg_argmax: axis 2 out of range for [2,3]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_axes many = { .n = 9 };
    cr_assert_not(jg_node_ok(jg_mean(x23(g), many, false)));
    t_assert_error(g, JG_ERR_ARG, "9 axes given");
    jg_graph_free(g);
}

Test(reduce, repeated_axis)
{
    jg_graph *g = jg_graph_new();
    cr_assert_not(jg_node_ok(jg_sum(x23(g), jg_axes(1, 1), false)));
    t_assert_error(g, JG_ERR_ARG, "jg_sum: axis 1 repeated");
    jg_graph_free(g);

    /* -1 and 1 name the same axis of a 2-D operand */
    g = jg_graph_new();
    cr_assert_not(jg_node_ok(jg_logsumexp(x23(g), jg_axes(-1, 1), false)));
    t_assert_error(g, JG_ERR_ARG, "axis 1 repeated");
    jg_graph_free(g);
}

Test(reduce, float_only_ops_reject_i32)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = i32_const(g, jg_shape(2), (int32_t[]){ 1, 2 });
    cr_assert_not(jg_node_ok(jg_mean(x, JG_ALL_AXES, false)));
    t_assert_error(g, JG_ERR_DTYPE, "jg_mean: needs a float operand, got i32");
    jg_graph_free(g);

    g = jg_graph_new();
    x = i32_const(g, jg_shape(2), (int32_t[]){ 1, 2 });
    cr_assert_not(jg_node_ok(jg_logsumexp(x, jg_axes(0), true)));
    t_assert_error(g, JG_ERR_DTYPE, "jg_logsumexp: needs a float operand");
    jg_graph_free(g);
}

Test(reduce, null_and_poisoned_operands)
{
    /* NULL: no graph to record on, but a poisoned node and no crash */
    cr_assert_not(jg_node_ok(jg_sum(NULL, JG_ALL_AXES, false)));
    cr_assert_not(jg_node_ok(jg_mean(NULL, jg_axes(0), true)));
    cr_assert_not(jg_node_ok(jg_max(NULL, jg_axes(0), false)));
    cr_assert_not(jg_node_ok(jg_min(NULL, jg_axes(0), false)));
    cr_assert_not(jg_node_ok(jg_logsumexp(NULL, jg_axes(0), false)));
    cr_assert_not(jg_node_ok(jg_argmax(NULL, 0)));

    /* a poisoned operand propagates and the first error stays */
    jg_graph *g = jg_graph_new();
    jg_node *bad = jg_sum(x23(g), jg_axes(5), false);
    jg_node *y = jg_max(jg_mean(bad, JG_ALL_AXES, false), (jg_axes){ .n = 0 }, false);
    cr_assert_not(jg_node_ok(y));
    cr_assert_not(jg_node_ok(jg_argmax(bad, 0)));
    t_assert_error(g, JG_ERR_ARG, "jg_sum: axis 5 out of range");
    jg_graph_free(g);
}
