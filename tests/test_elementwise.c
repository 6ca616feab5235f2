/* Tests of the elementwise ops (src/ops/unary.c, src/ops/binary.c): forward values against
 * hand-computed numbers (broadcasting, scalars, size-1 dims, f32/f64/i32, extreme inputs),
 * f64 gradient checks of every differentiable op on several shapes, second derivatives of
 * the smooth ones, and the documented one-sided derivatives at kinks. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(elementwise);

/* ---------------------------------------------------------------- helpers */

#define COUNT(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

static void assert_shape(jg_node *n, jg_shape want)
{
    jg_shape s = jg_node_shape(n);
    cr_assert_eq(s.ndim, want.ndim, "ndim %d, want %d", s.ndim, want.ndim);
    for (int i = 0; i < s.ndim; i++)
        cr_assert_eq(s.dim[i], want.dim[i], "dim %d is %lld, want %lld", i,
                     (long long)s.dim[i], (long long)want.dim[i]);
}

/* Asserts node n is valid, has `count` elements, and evaluates to want (within tol). */
static void check_values(jg_node *n, const double *want, int64_t count, double tol)
{
    cr_assert(jg_node_ok(n), "node poisoned: %s", jg_errmsg(jg_node_graph(n)));
    cr_assert_eq(jg_shape_numel(jg_node_shape(n)), count, "node has %lld elements, want %lld",
                 (long long)jg_shape_numel(jg_node_shape(n)), (long long)count);
    double *got = t_eval(n);
    t_assert_close(got, want, count, tol);
    free(got);
}

/* CHECK(node, tol, v0, v1, ...): the node's values are v0, v1, ... */
#define CHECK(n, tol, ...)                                                                  \
    do {                                                                                    \
        const double want_[] = { __VA_ARGS__ };                                             \
        check_values((n), want_, COUNT(want_), (tol));                                      \
    } while (0)

static jg_node *f32_const(jg_graph *g, jg_shape s, const float *v)
{
    return jg_const(g, JG_F32, s, v);
}

static jg_node *i32_const(jg_graph *g, jg_shape s, const int32_t *v)
{
    return jg_const(g, JG_I32, s, v);
}

/* An f64 parameter holding exactly these values (for kinks and one-sided derivatives). */
static jg_node *exact_param(jg_graph *g, const char *name, jg_shape s, const double *v)
{
    jg_node *p = t_param(g, name, s, 1);
    size_t bytes = (size_t)jg_shape_numel(s) * sizeof(double);
    cr_assert_eq(jg_param_set(g, name, v, bytes), JG_OK, "%s", jg_errmsg(g));
    return p;
}

/* The gradient of sum(y) with respect to x (asserting jg_grad succeeded). */
static jg_node *grad_of(jg_graph *g, jg_node *y, jg_node *x)
{
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, y, &x, 1, &d), JG_OK, "jg_grad: %s", jg_errmsg(g));
    return d;
}

/* Gradient check of y w.r.t. wrt, then of each first derivative (second order). */
static void check_first_and_second(jg_graph *g, jg_node *y, jg_node *const *wrt, int n)
{
    t_gradcheck(g, y, wrt, n);
    jg_node *d[4] = { 0 };
    cr_assert(n <= 4);
    cr_assert_eq(jg_grad(g, y, wrt, n, d), JG_OK, "jg_grad: %s", jg_errmsg(g));
    for (int i = 0; i < n; i++) {
        cr_assert(d[i], "no gradient for wrt %d", i);
        t_gradcheck(g, d[i], wrt, n);
    }
}

/* Runs jg_gradcheck and returns its report, asserting it ran and passed. */
static jg_gradcheck_report gradcheck_report(jg_graph *g, jg_node *y, jg_node *const *wrt, int n)
{
    jg_gradcheck_report r;
    jg_status st = jg_gradcheck(g, y, wrt, n, NULL, &r);
    cr_assert_eq(st, JG_OK, "gradcheck: %s (graph: %s)", r.message, jg_errmsg(g));
    cr_assert(r.passed && r.n_checked > 0, "%s", r.message);
    return r;
}

/* The three shapes every differentiable op is checked on. */
static const jg_shape shapes[3] = { { 1, { 3 } }, { 2, { 2, 3 } }, { 3, { 2, 1, 4 } } };

/* A value > 0.5 everywhere, for ops defined on positive numbers only. */
static jg_node *positive(jg_node *p) { return jg_shift(jg_square(p), 0.5); }

/* ---------------------------------------------------------------- forward: unary */

Test(elementwise, unary_values_f64)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(5), (double[]){ -2, -0.5, 0, 0.5, 2 });
    CHECK(jg_neg(x), 0, 2, 0.5, 0, -0.5, -2);
    CHECK(jg_abs(x), 0, 2, 0.5, 0, 0.5, 2);
    CHECK(jg_square(x), 0, 4, 0.25, 0, 0.25, 4);
    CHECK(jg_relu(x), 0, 0, 0, 0, 0.5, 2);
    CHECK(jg_leaky_relu(x, 0.1), 1e-15, -0.2, -0.05, 0, 0.5, 2);
    CHECK(jg_elu(x, 1.5), 1e-15, -1.296997075145081, -0.5902040104310499, 0, 0.5, 2);
    CHECK(jg_clamp(x, -1, 1), 0, -1, -0.5, 0, 0.5, 1);
    CHECK(jg_clamp(x, -3, 0.25), 0, -2, -0.5, 0, 0.25, 0.25);
    CHECK(jg_exp(x), 1e-15, 0.1353352832366127, 0.6065306597126334, 1, 1.6487212707001282,
          7.38905609893065);
    CHECK(jg_tanh(x), 1e-15, -0.9640275800758169, -0.46211715726000974, 0,
          0.46211715726000974, 0.9640275800758169);
    CHECK(jg_sigmoid(x), 1e-15, 0.11920292202211755, 0.3775406687981454, 0.5,
          0.6224593312018546, 0.8807970779778823);
    CHECK(jg_softplus(x), 1e-15, 0.1269280110429725, 0.4740769841801067, 0.6931471805599453,
          0.9740769841801067, 2.1269280110429727);
    CHECK(jg_pow(x, 3), 1e-15, -8, -0.125, 0, 0.125, 8);
    CHECK(jg_pow(x, 2), 1e-15, 4, 0.25, 0, 0.25, 4);
    CHECK(jg_stop_gradient(x), 0, -2, -0.5, 0, 0.5, 2);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(elementwise, unary_values_positive_domain)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(4), (double[]){ 0.25, 1, 4, 9 });
    CHECK(jg_log(x), 1e-15, -1.3862943611198906, 0, 1.3862943611198906, 2.1972245773362196);
    CHECK(jg_sqrt(x), 1e-15, 0.5, 1, 2, 3);
    CHECK(jg_rsqrt(x), 1e-15, 2, 1, 0.5, 1.0 / 3);
    CHECK(jg_pow(x, 1.5), 1e-15, 0.125, 1, 8, 27);
    CHECK(jg_pow(x, -1), 1e-15, 4, 1, 0.25, 1.0 / 9);
    CHECK(jg_pow(x, 0), 0, 1, 1, 1, 1);
    jg_graph_free(g);
}

Test(elementwise, unary_values_f32)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = f32_const(g, jg_shape(2, 2), (float[]){ -1.5f, 0, 0.5f, 4 });
    jg_node *ops[] = { jg_neg(x), jg_abs(x), jg_relu(x), jg_square(x), jg_exp(x),
                       jg_tanh(x), jg_sigmoid(x), jg_softplus(x), jg_clamp(x, 0, 1) };
    for (int i = 0; i < (int)COUNT(ops); i++) {
        cr_assert_eq(jg_node_dtype(ops[i]), JG_F32, "op %d dtype", i);
        assert_shape(ops[i], jg_shape(2, 2));
    }
    CHECK(ops[0], 0, 1.5, 0, -0.5, -4);
    CHECK(ops[1], 0, 1.5, 0, 0.5, 4);
    CHECK(ops[2], 0, 0, 0, 0.5, 4);
    CHECK(ops[3], 0, 2.25, 0, 0.25, 16);
    CHECK(ops[4], 1e-6, 0.22313016014842982, 1, 1.6487212707001282, 54.598150033144236);
    CHECK(ops[5], 1e-6, -0.9051482536448664, 0, 0.46211715726000974, 0.999329299739067);
    CHECK(ops[6], 1e-6, 0.18242552380635635, 0.5, 0.6224593312018546, 0.9820137900379085);
    CHECK(ops[7], 1e-6, 0.20141327798275246, 0.6931471805599453, 0.9740769841801067,
          4.0181499279178094);
    CHECK(ops[8], 0, 0, 0, 0.5, 1);
    jg_node *p = f32_const(g, jg_shape(3), (float[]){ 0.25f, 4, 16 });
    CHECK(jg_sqrt(p), 1e-7, 0.5, 2, 4);
    CHECK(jg_rsqrt(p), 1e-7, 2, 0.5, 0.25);
    CHECK(jg_log(p), 1e-6, -1.3862943611198906, 1.3862943611198906, 2.772588722239781);
    jg_graph_free(g);
}

Test(elementwise, unary_i32_neg_abs)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = i32_const(g, jg_shape(4), (int32_t[]){ -3, 0, 4, -2147483647 });
    jg_node *n = jg_neg(x), *a = jg_abs(x);
    cr_assert_eq(jg_node_dtype(n), JG_I32);
    cr_assert_eq(jg_node_dtype(a), JG_I32);
    CHECK(n, 0, 3, 0, -4, 2147483647);
    CHECK(a, 0, 3, 0, 4, 2147483647);
    jg_graph_free(g);
}

Test(elementwise, extreme_inputs_stay_finite)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(4), (double[]){ -1000, -40, 40, 1000 });
    jg_node *sig = jg_sigmoid(x), *sp = jg_softplus(x), *th = jg_tanh(x);
    double *s = t_eval(sig), *p = t_eval(sp), *t = t_eval(th);
    for (int i = 0; i < 4; i++) {
        cr_assert(isfinite(s[i]), "sigmoid element %d is %g", i, s[i]);
        cr_assert(isfinite(p[i]), "softplus element %d is %g", i, p[i]);
        cr_assert(isfinite(t[i]), "tanh element %d is %g", i, t[i]);
    }
    cr_assert_eq(s[0], 0.0);
    cr_assert_eq(s[3], 1.0);
    cr_assert(fabs(s[1] - 4.248354255291589e-18) < 1e-30, "sigmoid(-40) = %g", s[1]);
    cr_assert(p[0] >= 0 && p[0] < 1e-300, "softplus(-1000) = %g", p[0]);
    cr_assert(fabs(p[1] - 4.248354255291589e-18) < 1e-30, "softplus(-40) = %g", p[1]);
    cr_assert_eq(p[2], 40.0);
    cr_assert_eq(p[3], 1000.0);
    cr_assert_eq(t[0], -1.0);
    cr_assert_eq(t[3], 1.0);
    free(s), free(p), free(t);

    /* The gradients there are finite too (0 and 1), not NaN from inf/inf. */
    jg_node *ps = t_param(g, "x", jg_shape(2), 1);
    cr_assert_eq(jg_param_set(g, "x", (double[]){ -1000, 1000 }, 2 * sizeof(double)), JG_OK);
    CHECK(grad_of(g, jg_sigmoid(ps), ps), 0, 0, 0);
    CHECK(grad_of(g, jg_softplus(ps), ps), 0, 0, 1);
    CHECK(grad_of(g, jg_tanh(ps), ps), 0, 0, 0);

    /* The same in f32. */
    jg_node *xf = f32_const(g, jg_shape(2), (float[]){ -1000, 1000 });
    CHECK(jg_sigmoid(xf), 0, 0, 1);
    CHECK(jg_softplus(xf), 0, 0, 1000);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- forward: cast */

Test(elementwise, cast_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *f = f32_const(g, jg_shape(8),
                           (float[]){ 2.7f, -2.7f, 0.5f, -0.5f, 3e9f, -3e9f, 1e20f, NAN });
    jg_node *i = jg_cast(f, JG_I32);
    cr_assert_eq(jg_node_dtype(i), JG_I32);
    assert_shape(i, jg_shape(8));
    /* toward zero; saturating at the i32 range; NaN gives 0 rather than undefined behaviour */
    CHECK(i, 0, 2, -2, 0, 0, 2147483647.0, -2147483648.0, 2147483647.0, 0);

    jg_node *n = i32_const(g, jg_shape(3), (int32_t[]){ 3, -4, 2147483647 });
    jg_node *d = jg_cast(n, JG_F64);
    cr_assert_eq(jg_node_dtype(d), JG_F64);
    CHECK(d, 0, 3, -4, 2147483647.0);

    jg_node *x = t_const(g, jg_shape(2), (double[]){ 0.1, -7.9 });
    jg_node *xf = jg_cast(x, JG_F32);
    cr_assert_eq(jg_node_dtype(xf), JG_F32);
    CHECK(xf, 0, (double)0.1f, (double)-7.9f);
    CHECK(jg_cast(x, JG_I32), 0, 0, -7);
    CHECK(jg_cast(jg_cast(n, JG_F32), JG_I32), 0, 3, -4, 2147483647.0);
    cr_assert_eq(jg_node_dtype(jg_cast(x, JG_F64)), JG_F64);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- forward: binary */

Test(elementwise, binary_values_same_shape)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(4), (double[]){ 1, -2, 3, 0.5 });
    jg_node *b = t_const(g, jg_shape(4), (double[]){ 4, 5, -6, 0.5 });
    CHECK(jg_add(a, b), 0, 5, 3, -3, 1);
    CHECK(jg_sub(a, b), 0, -3, -7, 9, 0);
    CHECK(jg_mul(a, b), 0, 4, -10, -18, 0.25);
    CHECK(jg_div(a, b), 1e-15, 0.25, -0.4, -0.5, 1);
    CHECK(jg_maximum(a, b), 0, 4, 5, 3, 0.5);
    CHECK(jg_minimum(a, b), 0, 1, -2, -6, 0.5);
    CHECK(jg_scale(a, 3), 0, 3, -6, 9, 1.5);
    CHECK(jg_shift(a, -1), 0, 0, -3, 2, -0.5);
    /* the conveniences are mul and add with a scalar */
    cr_assert_str_eq(jg_node_op_name(jg_scale(a, 2)), "mul");
    cr_assert_str_eq(jg_node_op_name(jg_shift(a, 2)), "add");
    jg_graph_free(g);
}

Test(elementwise, binary_values_f32)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = f32_const(g, jg_shape(3), (float[]){ 1, -2, 3 });
    jg_node *b = f32_const(g, jg_shape(3), (float[]){ 4, 8, -6 });
    jg_node *q = jg_div(a, b);
    cr_assert_eq(jg_node_dtype(q), JG_F32);
    CHECK(q, 0, 0.25, -0.25, -0.5);
    CHECK(jg_add(a, b), 0, 5, 6, -3);
    CHECK(jg_maximum(a, b), 0, 4, 8, 3);
    CHECK(jg_scale(a, 0.5), 0, 0.5, -1, 1.5);
    cr_assert_eq(jg_node_dtype(jg_scale(a, 0.5)), JG_F32);
    cr_assert_eq(jg_node_dtype(jg_lt(a, b)), JG_F32);
    CHECK(jg_lt(a, b), 0, 1, 1, 0);
    jg_graph_free(g);
}

Test(elementwise, binary_values_i32)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = i32_const(g, jg_shape(5), (int32_t[]){ 7, -7, 7, -7, 5 });
    jg_node *b = i32_const(g, jg_shape(5), (int32_t[]){ 2, 2, -2, -2, 3 });
    jg_node *s = jg_add(a, b), *q = jg_div(a, b);
    cr_assert_eq(jg_node_dtype(s), JG_I32);
    cr_assert_eq(jg_node_dtype(q), JG_I32);
    CHECK(s, 0, 9, -5, 5, -9, 8);
    CHECK(jg_sub(a, b), 0, 5, -9, 9, -5, 2);
    CHECK(jg_mul(a, b), 0, 14, -14, -14, 14, 15);
    /* integer division truncates toward zero, as in C */
    CHECK(q, 0, 3, -3, -3, 3, 1);
    CHECK(jg_maximum(a, b), 0, 7, 2, 7, -2, 5);
    CHECK(jg_minimum(a, b), 0, 2, -7, -2, -7, 3);
    CHECK(jg_shift(a, 3), 0, 10, -4, 10, -4, 8);
    CHECK(jg_scale(a, -2), 0, -14, 14, -14, 14, -10);
    jg_node *c = jg_ge(a, b);
    cr_assert_eq(jg_node_dtype(c), JG_I32);
    CHECK(c, 0, 1, 0, 1, 0, 1);
    /* division by zero gives 0 for i32 (documented in binary.c) rather than trapping */
    jg_node *z = i32_const(g, jg_shape(2), (int32_t[]){ 0, 0 });
    CHECK(jg_div(i32_const(g, jg_shape(2), (int32_t[]){ 5, -5 }), z), 0, 0, 0);
    jg_graph_free(g);
}

Test(elementwise, comparisons)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    jg_node *b = t_const(g, jg_shape(3), (double[]){ 2, 2, 2 });
    CHECK(jg_lt(a, b), 0, 1, 0, 0);
    CHECK(jg_le(a, b), 0, 1, 1, 0);
    CHECK(jg_gt(a, b), 0, 0, 0, 1);
    CHECK(jg_ge(a, b), 0, 0, 1, 1);
    CHECK(jg_eq(a, b), 0, 0, 1, 0);
    CHECK(jg_ne(a, b), 0, 1, 0, 1);
    cr_assert_eq(jg_node_dtype(jg_eq(a, b)), JG_F64);
    /* broadcast against a scalar and a [2,1] column */
    jg_node *two = jg_scalar(g, JG_F64, 2);
    CHECK(jg_gt(a, two), 0, 0, 0, 1);
    jg_node *col = t_const(g, jg_shape(2, 1), (double[]){ 1.5, 3 });
    jg_node *le = jg_le(a, col);
    assert_shape(le, jg_shape(2, 3));
    CHECK(le, 0, 1, 0, 0, 1, 1, 1);
    /* NaN compares unequal to everything, itself included */
    jg_node *nan = t_const(g, jg_shape(2), (double[]){ NAN, 1 });
    CHECK(jg_eq(nan, nan), 0, 0, 1);
    CHECK(jg_ne(nan, nan), 0, 1, 0);
    CHECK(jg_lt(nan, nan), 0, 0, 0);
    jg_graph_free(g);
}

Test(elementwise, broadcast_row_vector)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *b = t_const(g, jg_shape(3), (double[]){ 10, 20, 30 });
    jg_node *s = jg_add(a, b);
    assert_shape(s, jg_shape(2, 3));
    CHECK(s, 0, 11, 22, 33, 14, 25, 36);
    jg_node *d = jg_sub(b, a); /* the smaller operand first */
    assert_shape(d, jg_shape(2, 3));
    CHECK(d, 0, 9, 18, 27, 6, 15, 24);
    CHECK(jg_div(a, b), 1e-15, 0.1, 0.1, 0.1, 0.4, 0.25, 0.2);
    CHECK(jg_maximum(a, jg_scale(b, 0.2)), 0, 2, 4, 6, 4, 5, 6);
    CHECK(jg_minimum(b, jg_scale(a, 5)), 0, 5, 10, 15, 10, 20, 30);
    jg_graph_free(g);
}

Test(elementwise, broadcast_column_times_row)
{
    jg_graph *g = jg_graph_new();
    jg_node *col = t_const(g, jg_shape(2, 1), (double[]){ 1, 2 });
    jg_node *row = t_const(g, jg_shape(1, 3), (double[]){ 10, 20, 30 });
    jg_node *m = jg_mul(col, row);
    assert_shape(m, jg_shape(2, 3));
    CHECK(m, 0, 10, 20, 30, 20, 40, 60);
    jg_node *s = jg_sub(row, col);
    assert_shape(s, jg_shape(2, 3));
    CHECK(s, 0, 9, 19, 29, 8, 18, 28);
    jg_graph_free(g);
}

Test(elementwise, broadcast_scalars)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 2), (double[]){ 1, 2, 4, 8 });
    jg_node *two = jg_scalar(g, JG_F64, 2);
    CHECK(jg_div(x, two), 0, 0.5, 1, 2, 4);
    CHECK(jg_div(two, x), 0, 2, 1, 0.5, 0.25);
    CHECK(jg_sub(two, x), 0, 1, 0, -2, -6);
    jg_node *ss = jg_mul(two, jg_scalar(g, JG_F64, -3));
    assert_shape(ss, JG_SCALAR);
    CHECK(ss, 0, -6);
    /* a [1] operand broadcasts like a scalar but keeps its dimension */
    jg_node *one = t_const(g, jg_shape(1), (double[]){ 10 });
    jg_node *y = jg_add(one, x);
    assert_shape(y, jg_shape(2, 2));
    CHECK(y, 0, 11, 12, 14, 18);
    jg_node *z = jg_add(one, two);
    assert_shape(z, jg_shape(1));
    CHECK(z, 0, 12);
    jg_graph_free(g);
}

Test(elementwise, broadcast_size_one_dims)
{
    jg_graph *g = jg_graph_new();
    double av[6], bv[4], want[24];
    for (int i = 0; i < 6; i++)
        av[i] = i; /* a[i,0,k] = 3i + k */
    for (int j = 0; j < 4; j++)
        bv[j] = 10 * j; /* b[0,j,0] = 10j */
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++)
                want[(i * 4 + j) * 3 + k] = 3 * i + k + 10 * j;
    jg_node *a = t_const(g, jg_shape(2, 1, 3), av);
    jg_node *b = t_const(g, jg_shape(1, 4, 1), bv);
    jg_node *s = jg_add(a, b);
    assert_shape(s, jg_shape(2, 4, 3));
    check_values(s, want, 24, 0);
    /* a [4,1] operand against [2,1,3]: rank promotion and size-1 dims at once */
    jg_node *c = t_const(g, jg_shape(4, 1), bv);
    jg_node *s2 = jg_add(c, a);
    assert_shape(s2, jg_shape(2, 4, 3));
    check_values(s2, want, 24, 0);
    jg_graph_free(g);
}

Test(elementwise, where_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *c = t_const(g, jg_shape(4), (double[]){ 1, 0, -2, 0 });
    jg_node *a = t_const(g, jg_shape(4), (double[]){ 1, 2, 3, 4 });
    jg_node *b = t_const(g, jg_shape(4), (double[]){ -1, -2, -3, -4 });
    CHECK(jg_where(c, a, b), 0, 1, -2, 3, -4);

    /* three operands broadcasting together: [2,1] x [1,3] x [] */
    jg_node *cc = i32_const(g, jg_shape(2, 1), (int32_t[]){ 1, 0 });
    jg_node *row = t_const(g, jg_shape(1, 3), (double[]){ 1, 2, 3 });
    jg_node *w = jg_where(cc, row, jg_scalar(g, JG_F64, -1));
    assert_shape(w, jg_shape(2, 3));
    cr_assert_eq(jg_node_dtype(w), JG_F64); /* a's dtype, not the condition's */
    CHECK(w, 0, 1, 2, 3, -1, -1, -1);

    /* condition [3] against operands [2,1] and [2,3] */
    jg_node *c3 = t_const(g, jg_shape(3), (double[]){ 0, 1, 0 });
    jg_node *a21 = t_const(g, jg_shape(2, 1), (double[]){ 7, 8 });
    jg_node *b23 = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *w2 = jg_where(c3, a21, b23);
    assert_shape(w2, jg_shape(2, 3));
    CHECK(w2, 0, 1, 7, 3, 4, 8, 6);

    /* a condition that is wider than the operands decides the shape */
    jg_node *c23 = t_const(g, jg_shape(2, 3), (double[]){ 1, 0, 1, 0, 1, 0 });
    jg_node *w3 = jg_where(c23, jg_scalar(g, JG_F64, 5), jg_scalar(g, JG_F64, 6));
    assert_shape(w3, jg_shape(2, 3));
    CHECK(w3, 0, 5, 6, 5, 6, 5, 6);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- gradient checks: unary */

#define GRADCHECK_UNARY(name, expr)                                                         \
    Test(elementwise, grad_##name)                                                          \
    {                                                                                       \
        for (int s = 0; s < 3; s++) {                                                       \
            jg_graph *g = jg_graph_new();                                                   \
            jg_node *x = t_param(g, "x", shapes[s], 100 + (uint64_t)s);                     \
            jg_node *y = (expr);                                                            \
            assert_shape(y, shapes[s]);                                                     \
            t_gradcheck(g, y, &x, 1);                                                       \
            jg_graph_free(g);                                                               \
        }                                                                                   \
    }

GRADCHECK_UNARY(neg, jg_neg(x))
GRADCHECK_UNARY(abs, jg_abs(x))
GRADCHECK_UNARY(exp, jg_exp(x))
GRADCHECK_UNARY(log, jg_log(positive(x)))
GRADCHECK_UNARY(sqrt, jg_sqrt(positive(x)))
GRADCHECK_UNARY(rsqrt, jg_rsqrt(positive(x)))
GRADCHECK_UNARY(square, jg_square(x))
GRADCHECK_UNARY(tanh, jg_tanh(x))
GRADCHECK_UNARY(sigmoid, jg_sigmoid(x))
GRADCHECK_UNARY(relu, jg_relu(x))
GRADCHECK_UNARY(softplus, jg_softplus(x))
GRADCHECK_UNARY(pow_int, jg_pow(x, 3))
GRADCHECK_UNARY(pow_frac, jg_pow(positive(x), 2.5))
GRADCHECK_UNARY(pow_neg, jg_pow(jg_exp(x), -1.5))
GRADCHECK_UNARY(pow_zero, jg_pow(x, 0))

/* x^0 is constant 1, so its gradient is 0 everywhere, at x = 0 too (not 0 * 0^-1 = NaN), and
 * so is the second derivative. */
Test(elementwise, pow_zero_gradient_is_zero_at_zero)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = exact_param(g, "x", jg_shape(3), (double[]){ 0, -2, 1.5 });
    jg_node *d = grad_of(g, jg_sum(jg_pow(x, 0), JG_ALL_AXES, false), x);
    cr_assert(jg_node_ok(d), "%s", jg_errmsg(g));
    double *v = t_eval(d);
    t_assert_close(v, (double[]){ 0, 0, 0 }, 3, 0);
    free(v);
    jg_node *d2 = grad_of(g, jg_sum(jg_square(d), JG_ALL_AXES, false), x);
    if (d2) { /* NULL is fine too: nothing flows back through a zero */
        v = t_eval(d2);
        t_assert_close(v, (double[]){ 0, 0, 0 }, 3, 0);
        free(v);
    }
    jg_graph_free(g);
}
GRADCHECK_UNARY(leaky_relu, jg_leaky_relu(x, 0.1))
GRADCHECK_UNARY(elu, jg_elu(x, 0.7))
GRADCHECK_UNARY(clamp, jg_clamp(x, -0.5, 0.5))
GRADCHECK_UNARY(cast_f32_roundtrip, jg_cast(jg_exp(jg_cast(x, JG_F32)), JG_F64))
GRADCHECK_UNARY(scale, jg_scale(x, -2.5))
GRADCHECK_UNARY(shift, jg_mul(jg_shift(x, 1.5), x))

/* An f32 parameter is checked in double (exact mode), and its gradient is f32. */
Test(elementwise, grad_f32_param)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2, 3), jg_seeded(jg_normal(0, 1), 5));
    jg_node *y = jg_tanh(jg_mul(w, jg_sigmoid(w)));
    cr_assert_eq(jg_node_dtype(grad_of(g, y, w)), JG_F32);
    t_gradcheck(g, y, &w, 1);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- gradient checks: binary */

/* Operand shape pairs: equal, row broadcast, column x row, rank promotion with size-1 dims,
 * scalar. */
static const jg_shape pair_a[4] = { { 2, { 2, 3 } }, { 2, { 2, 3 } }, { 2, { 2, 1 } },
                                    { 3, { 2, 1, 4 } } };
static const jg_shape pair_b[4] = { { 2, { 2, 3 } }, { 1, { 3 } }, { 2, { 1, 3 } },
                                    { 2, { 3, 1 } } };

#define GRADCHECK_BINARY(name, expr)                                                        \
    Test(elementwise, grad_##name)                                                          \
    {                                                                                       \
        for (int s = 0; s < 5; s++) {                                                       \
            jg_graph *g = jg_graph_new();                                                   \
            jg_shape sa = s < 4 ? pair_a[s] : jg_shape(3);                                  \
            jg_shape sb = s < 4 ? pair_b[s] : JG_SCALAR;                                    \
            jg_node *a = t_param(g, "a", sa, 200 + (uint64_t)s);                            \
            jg_node *b = t_param(g, "b", sb, 300 + (uint64_t)s);                            \
            jg_node *y = (expr);                                                            \
            cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));                                   \
            t_gradcheck(g, y, (jg_node *[]){ a, b }, 2);                                    \
            jg_graph_free(g);                                                               \
        }                                                                                   \
    }

GRADCHECK_BINARY(add, jg_add(a, b))
GRADCHECK_BINARY(add_swapped, jg_add(b, a))
GRADCHECK_BINARY(sub, jg_sub(a, b))
GRADCHECK_BINARY(sub_swapped, jg_sub(b, a))
GRADCHECK_BINARY(mul, jg_mul(a, b))
GRADCHECK_BINARY(div, jg_div(a, positive(b)))
GRADCHECK_BINARY(div_swapped, jg_div(b, positive(a)))
GRADCHECK_BINARY(maximum, jg_maximum(a, b))
GRADCHECK_BINARY(minimum, jg_minimum(b, a))
GRADCHECK_BINARY(where_const_cond, jg_where(jg_gt(jg_stop_gradient(a), jg_scalar_like(a, 0)),
                                            a, b))

/* The gradient of a broadcast operand has the operand's shape and sums over the broadcast
 * dimensions. */
Test(elementwise, broadcast_gradient_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = exact_param(g, "a", jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *b = exact_param(g, "b", jg_shape(3), (double[]){ 10, 20, 30 });
    jg_node *c = exact_param(g, "c", jg_shape(2, 1), (double[]){ -1, 2 });
    jg_node *s = exact_param(g, "s", JG_SCALAR, (double[]){ 0.5 });
    jg_node *db = grad_of(g, jg_add(a, b), b);
    assert_shape(db, jg_shape(3));
    CHECK(db, 0, 2, 2, 2);
    jg_node *dbm = grad_of(g, jg_mul(a, b), b);
    CHECK(dbm, 0, 5, 7, 9);
    jg_node *dc = grad_of(g, jg_mul(a, c), c);
    assert_shape(dc, jg_shape(2, 1));
    CHECK(dc, 0, 6, 15);
    jg_node *ds = grad_of(g, jg_sub(a, s), s);
    assert_shape(ds, JG_SCALAR);
    CHECK(ds, 0, -6);
    jg_node *da = grad_of(g, jg_mul(a, s), a);
    assert_shape(da, jg_shape(2, 3));
    CHECK(da, 0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5);
    jg_graph_free(g);
}

/* where: condition [2,1], a [1,3], b scalar; gradients w.r.t. a and b. */
Test(elementwise, grad_where_three_way_broadcast)
{
    for (int s = 0; s < 3; s++) {
        jg_graph *g = jg_graph_new();
        jg_shape sc = s == 0 ? jg_shape(2, 1) : s == 1 ? jg_shape(3) : jg_shape(2, 3);
        jg_shape sa = s == 0 ? jg_shape(1, 3) : s == 1 ? jg_shape(2, 1) : JG_SCALAR;
        jg_shape sb = s == 0 ? JG_SCALAR : s == 1 ? jg_shape(2, 3) : jg_shape(3);
        double cv[6] = { 1, 0, 0, 1, 1, 0 };
        jg_node *c = t_const(g, sc, cv);
        jg_node *a = t_param(g, "a", sa, 11 + (uint64_t)s);
        jg_node *b = t_param(g, "b", sb, 21 + (uint64_t)s);
        jg_node *y = jg_where(c, a, b);
        assert_shape(y, jg_shape(2, 3));
        t_gradcheck(g, y, (jg_node *[]){ a, b }, 2);
        jg_graph_free(g);
    }
    /* and the values: a receives dy where the condition holds, b elsewhere */
    jg_graph *g = jg_graph_new();
    jg_node *c = t_const(g, jg_shape(2, 1), (double[]){ 1, 0 });
    jg_node *a = t_param(g, "a", jg_shape(1, 3), 1);
    jg_node *b = t_param(g, "b", JG_SCALAR, 2);
    jg_node *y = jg_where(c, a, b);
    jg_node *d[2];
    cr_assert_eq(jg_grad(g, y, (jg_node *[]){ a, b }, 2, d), JG_OK, "%s", jg_errmsg(g));
    assert_shape(d[0], jg_shape(1, 3));
    assert_shape(d[1], JG_SCALAR);
    CHECK(d[0], 0, 1, 1, 1);
    CHECK(d[1], 0, 3);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- second order */

#define SECOND_ORDER_UNARY(name, expr)                                                      \
    Test(elementwise, second_order_##name)                                                  \
    {                                                                                       \
        for (int s = 0; s < 3; s++) {                                                       \
            jg_graph *g = jg_graph_new();                                                   \
            jg_node *x = t_param(g, "x", shapes[s], 400 + (uint64_t)s);                     \
            check_first_and_second(g, (expr), &x, 1);                                       \
            jg_graph_free(g);                                                               \
        }                                                                                   \
    }

SECOND_ORDER_UNARY(exp, jg_exp(x))
SECOND_ORDER_UNARY(log, jg_log(positive(x)))
SECOND_ORDER_UNARY(sqrt, jg_sqrt(positive(x)))
SECOND_ORDER_UNARY(rsqrt, jg_rsqrt(positive(x)))
SECOND_ORDER_UNARY(square, jg_square(x))
SECOND_ORDER_UNARY(tanh, jg_tanh(x))
SECOND_ORDER_UNARY(sigmoid, jg_sigmoid(x))
SECOND_ORDER_UNARY(softplus, jg_softplus(x))
SECOND_ORDER_UNARY(pow, jg_pow(positive(x), 2.5))
SECOND_ORDER_UNARY(pow_int, jg_pow(x, 3))
SECOND_ORDER_UNARY(neg_cast, jg_neg(jg_cast(jg_square(jg_cast(x, JG_F32)), JG_F64)))

#define SECOND_ORDER_BINARY(name, expr)                                                     \
    Test(elementwise, second_order_##name)                                                  \
    {                                                                                       \
        for (int s = 0; s < 4; s++) {                                                       \
            jg_graph *g = jg_graph_new();                                                   \
            jg_node *a = t_param(g, "a", pair_a[s], 500 + (uint64_t)s);                     \
            jg_node *b = t_param(g, "b", pair_b[s], 600 + (uint64_t)s);                     \
            check_first_and_second(g, (expr), (jg_node *[]){ a, b }, 2);                    \
            jg_graph_free(g);                                                               \
        }                                                                                   \
    }

SECOND_ORDER_BINARY(mul, jg_mul(a, b))
SECOND_ORDER_BINARY(div, jg_div(a, positive(b)))
SECOND_ORDER_BINARY(add, jg_add(a, b))
SECOND_ORDER_BINARY(sub, jg_sub(b, a))
/* add and sub inside a product, so their gradients carry non-constant second derivatives */
SECOND_ORDER_BINARY(add_sub_product, jg_mul(jg_add(a, b), jg_sub(a, b)))
SECOND_ORDER_BINARY(mul_tanh, jg_tanh(jg_mul(a, b)))

/* Hessian-vector product of a scalar: d/dx [ (d/dx sum(x^3)) . v ] = 6 x v. */
Test(elementwise, hessian_vector_product_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = exact_param(g, "x", jg_shape(3), (double[]){ 1, -2, 0.5 });
    jg_node *v = t_const(g, jg_shape(3), (double[]){ 2, 1, -4 });
    jg_node *d = grad_of(g, jg_pow(x, 3), x);
    CHECK(d, 1e-14, 3, 12, 0.75);
    jg_node *hv = grad_of(g, jg_mul(d, v), x);
    CHECK(hv, 1e-14, 12, -12, -12);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- kinks */

/* Each op sits exactly on a kink at the starting point; the checker must move the point and
 * then pass. */
Test(elementwise, gradcheck_moves_off_kinks)
{
    const double at_zero[3] = { 0, 1.5, -2 };
    for (int op = 0; op < 8; op++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = exact_param(g, "x", jg_shape(3), at_zero);
        jg_node *y = NULL;
        switch (op) {
        case 0: y = jg_relu(x); break;
        case 1: y = jg_abs(x); break;
        case 2: y = jg_leaky_relu(x, 0.2); break;
        case 3: y = jg_elu(x, 0.7); break;
        case 4: y = jg_clamp(x, 0, 1.5); break; /* both bounds hit exactly */
        case 5: y = jg_maximum(x, t_const(g, jg_shape(3), at_zero)); break; /* ties */
        case 6: y = jg_minimum(t_const(g, jg_shape(3), at_zero), x); break;
        case 7: {
            /* the kink comes from a constant operand: x + c is exactly 0 everywhere */
            jg_node *c = t_const(g, jg_shape(3), (double[]){ -0.0, -1.5, 2 });
            y = jg_relu(jg_add(x, c));
            break;
        }
        }
        jg_gradcheck_report r = gradcheck_report(g, y, &x, 1);
        cr_assert_gt(r.moves, 0, "op case %d: the point was not moved (%s)", op, r.message);
        jg_graph_free(g);
    }
}

/* The documented one-sided derivatives, evaluated exactly at the kinks. */
Test(elementwise, one_sided_derivatives)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = exact_param(g, "x", jg_shape(3), (double[]){ -1, 0, 2 });
    CHECK(grad_of(g, jg_relu(x), x), 0, 0, 0, 1);                /* relu'(0) = 0 */
    CHECK(grad_of(g, jg_abs(x), x), 0, -1, 0, 1);                /* abs'(0) = 0 */
    /* consistent with relu: the left slope at 0 */
    CHECK(grad_of(g, jg_leaky_relu(x, 0.25), x), 0, 0.25, 0.25, 1);
    CHECK(grad_of(g, jg_elu(x, 0.5), x), 1e-15, 0.5 * exp(-1), 0.5, 1);

    /* clamp' = 1 at both bounds, 0 outside */
    jg_node *c = exact_param(g, "c", jg_shape(5), (double[]){ -1, 1, -2, 2, 0.5 });
    CHECK(grad_of(g, jg_clamp(c, -1, 1), c), 0, 1, 1, 0, 0, 1);

    /* maximum and minimum: a tie gives the gradient to the first operand */
    jg_node *a = exact_param(g, "a", jg_shape(3), (double[]){ 1, 2, 5 });
    jg_node *b = exact_param(g, "b", jg_shape(3), (double[]){ 1, 3, 4 });
    jg_node *d[2];
    cr_assert_eq(jg_grad(g, jg_maximum(a, b), (jg_node *[]){ a, b }, 2, d), JG_OK);
    CHECK(d[0], 0, 1, 0, 1);
    CHECK(d[1], 0, 0, 1, 0);
    cr_assert_eq(jg_grad(g, jg_maximum(b, a), (jg_node *[]){ a, b }, 2, d), JG_OK);
    CHECK(d[0], 0, 0, 0, 1);
    CHECK(d[1], 0, 1, 1, 0);
    cr_assert_eq(jg_grad(g, jg_minimum(a, b), (jg_node *[]){ a, b }, 2, d), JG_OK);
    CHECK(d[0], 0, 1, 1, 0);
    CHECK(d[1], 0, 0, 0, 1);
    /* maximum(x, x): the whole gradient goes to the first operand, 1 in total */
    CHECK(grad_of(g, jg_maximum(a, a), a), 0, 1, 1, 1);
    /* a broadcast tie: [2,1] against [3], the first operand collects its row's ties */
    jg_node *col = exact_param(g, "col", jg_shape(2, 1), (double[]){ 1, 3 });
    jg_node *row = exact_param(g, "row", jg_shape(3), (double[]){ 1, 2, 3 });
    cr_assert_eq(jg_grad(g, jg_maximum(col, row), (jg_node *[]){ col, row }, 2, d), JG_OK);
    CHECK(d[0], 0, 1, 3);
    CHECK(d[1], 0, 0, 1, 1);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- ops without gradient */

Test(elementwise, comparisons_have_no_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 1);
    jg_node *y = t_param(g, "y", jg_shape(3), 2);
    jg_node *cmp[6] = { jg_lt(x, y), jg_le(x, y), jg_gt(x, y),
                        jg_ge(x, y), jg_eq(x, y), jg_ne(x, y) };
    for (int i = 0; i < 6; i++) {
        jg_node *d[2] = { x, y }; /* must be overwritten with NULL */
        jg_node *out = jg_sum(cmp[i], JG_ALL_AXES, false);
        cr_assert_eq(jg_grad(g, out, (jg_node *[]){ x, y }, 2, d), JG_OK, "%s", jg_errmsg(g));
        cr_assert_null(d[0], "comparison %d gave a gradient for x", i);
        cr_assert_null(d[1], "comparison %d gave a gradient for y", i);
    }
    /* a comparison used as a mask is a constant: d/dx sum(x * (x > y)) = (x > y) */
    jg_node *mask = jg_gt(x, y);
    jg_node *dx = grad_of(g, jg_mul(x, mask), x);
    double *m = t_eval(mask), *got = t_eval(dx);
    t_assert_close(got, m, 6, 0);
    free(m), free(got);
    jg_graph_free(g);
}

Test(elementwise, stop_gradient_blocks)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = exact_param(g, "x", jg_shape(3), (double[]){ 1, -2, 3 });
    jg_node *d = x;
    cr_assert_eq(jg_grad(g, jg_stop_gradient(x), &x, 1, &d), JG_OK);
    cr_assert_null(d);
    /* d/dx sum(x * sg(x)) = sg(x) = x, not 2x */
    CHECK(grad_of(g, jg_mul(x, jg_stop_gradient(x)), x), 0, 1, -2, 3);
    jg_graph_free(g);
}

Test(elementwise, cast_gradients)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = exact_param(g, "x", jg_shape(3), (double[]){ 1.5, -2.5, 3 });
    /* float to float: the gradient comes back in the operand's dtype */
    jg_node *d = grad_of(g, jg_scale(jg_cast(x, JG_F32), 2), x);
    cr_assert_eq(jg_node_dtype(d), JG_F64);
    CHECK(d, 0, 2, 2, 2);
    /* through i32 nothing flows */
    jg_node *through_int = jg_cast(jg_cast(x, JG_I32), JG_F64);
    CHECK(through_int, 0, 1, -2, 3);
    jg_node *none = x;
    cr_assert_eq(jg_grad(g, through_int, &x, 1, &none), JG_OK, "%s", jg_errmsg(g));
    cr_assert_null(none);
    jg_graph_free(g);
}
