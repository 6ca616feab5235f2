/* Tests of jg_matmul: forward values by hand and against a naive loop (batch broadcasting,
 * 1-row and 1-column edge shapes, dtypes), shape and dtype errors, first- and second-order
 * gradient checks including broadcast batch dimensions. */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>

/* The matmul of a [..., m, k] and b [..., k, n] by the definition: for every output index,
 * the batch index of each operand is the output's, clamped to 0 along size-1 (or missing)
 * dimensions. Deliberately index math, unlike the library's kernel. */
static double *naive_matmul(const double *a, jg_shape sa, const double *b, jg_shape sb,
                            jg_shape so)
{
    int64_t numel = jg_shape_numel(so);
    double *c = calloc((size_t)numel, sizeof *c);
    cr_assert(c);
    int nd = so.ndim;
    int64_t k = sa.dim[sa.ndim - 1];
    for (int64_t flat = 0; flat < numel; flat++) {
        int64_t idx[JG_MAX_DIMS], r = flat;
        for (int d = nd - 1; d >= 0; d--) {
            idx[d] = r % so.dim[d];
            r /= so.dim[d];
        }
        double s = 0;
        for (int64_t p = 0; p < k; p++) {
            int64_t oa = 0, ob = 0;
            for (int d = 0; d < sa.ndim; d++) {
                int od = d + nd - sa.ndim;
                int64_t i = d == sa.ndim - 2 ? idx[nd - 2]
                            : d == sa.ndim - 1 ? p
                            : (sa.dim[d] == 1 ? 0 : idx[od]);
                oa = oa * sa.dim[d] + i;
            }
            for (int d = 0; d < sb.ndim; d++) {
                int od = d + nd - sb.ndim;
                int64_t i = d == sb.ndim - 2 ? p
                            : d == sb.ndim - 1 ? idx[nd - 1]
                            : (sb.dim[d] == 1 ? 0 : idx[od]);
                ob = ob * sb.dim[d] + i;
            }
            s += a[oa] * b[ob];
        }
        c[flat] = s;
    }
    return c;
}

static void assert_shape(jg_node *n, jg_shape want)
{
    jg_shape s = jg_node_shape(n);
    cr_assert(jg_node_ok(n), "node is poisoned: %s", jg_errmsg(jg_node_graph(n)));
    cr_assert_eq(s.ndim, want.ndim, "ndim %d, want %d", s.ndim, want.ndim);
    for (int i = 0; i < s.ndim; i++)
        cr_assert_eq(s.dim[i], want.dim[i], "dim %d: %lld, want %lld", i, (long long)s.dim[i],
                     (long long)want.dim[i]);
}

/* Builds a and b from seeded random values, checks matmul's shape and values against the
 * naive loop. */
static void check_against_naive(jg_shape sa, jg_shape sb, jg_shape so)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_randn(g, sa, 11), *b = t_randn(g, sb, 12);
    jg_node *c = jg_matmul(a, b);
    assert_shape(c, so);
    double *va = t_eval(a), *vb = t_eval(b), *vc = t_eval(c);
    double *want = naive_matmul(va, sa, vb, sb, so);
    t_assert_close(vc, want, jg_shape_numel(so), 1e-12);
    free(va), free(vb), free(vc), free(want);
    jg_graph_free(g);
}

TestSuite(matmul);

Test(matmul, forward_2x3_by_3x2)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *b = t_const(g, jg_shape(3, 2), (double[]){ 7, 8, 9, 10, 11, 12 });
    jg_node *c = jg_matmul(a, b);
    assert_shape(c, jg_shape(2, 2));
    cr_assert_eq(jg_node_dtype(c), JG_F64);
    cr_assert_str_eq(jg_node_op_name(c), "matmul");
    double *v = t_eval(c);
    t_assert_close(v, (double[]){ 58, 64, 139, 154 }, 4, 0);
    free(v);
    jg_graph_free(g);
}

Test(matmul, forward_batched_by_hand)
{
    /* a batch of two 1x2 rows times one 2x1 column */
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(2, 1, 2), (double[]){ 1, 2, 3, 4 });
    jg_node *b = t_const(g, jg_shape(2, 1), (double[]){ 10, 100 });
    jg_node *c = jg_matmul(a, b);
    assert_shape(c, jg_shape(2, 1, 1));
    double *v = t_eval(c);
    t_assert_close(v, (double[]){ 210, 430 }, 2, 0);
    free(v);
    /* both batched, batch dims broadcast the other way: [1,2,2] x [3,2,1] */
    jg_node *d = t_const(g, jg_shape(1, 2, 2), (double[]){ 1, 0, 0, 2 });
    jg_node *e = t_const(g, jg_shape(3, 2, 1), (double[]){ 1, 1, 2, 3, -1, 5 });
    jg_node *f = jg_matmul(d, e);
    assert_shape(f, jg_shape(3, 2, 1));
    v = t_eval(f);
    t_assert_close(v, (double[]){ 1, 2, 2, 6, -1, 10 }, 6, 0);
    free(v);
    jg_graph_free(g);
}

Test(matmul, forward_broadcast_batch_dims)
{
    check_against_naive(jg_shape(2, 1, 3, 4), jg_shape(5, 4, 2), jg_shape(2, 5, 3, 2));
    check_against_naive(jg_shape(3, 4), jg_shape(2, 4, 5), jg_shape(2, 3, 5));
    check_against_naive(jg_shape(2, 3, 3, 4), jg_shape(4, 2), jg_shape(2, 3, 3, 2));
    check_against_naive(jg_shape(1, 2, 3), jg_shape(4, 1, 3, 2), jg_shape(4, 1, 2, 2));
    check_against_naive(jg_shape(3, 1, 2, 2), jg_shape(1, 4, 2, 3), jg_shape(3, 4, 2, 3));
}

Test(matmul, forward_edge_shapes)
{
    check_against_naive(jg_shape(1, 5), jg_shape(5, 1), jg_shape(1, 1));   /* dot product */
    check_against_naive(jg_shape(4, 1), jg_shape(1, 3), jg_shape(4, 3));   /* outer product */
    check_against_naive(jg_shape(1, 4), jg_shape(4, 7), jg_shape(1, 7));   /* one row */
    check_against_naive(jg_shape(6, 4), jg_shape(4, 1), jg_shape(6, 1));   /* one column */
    check_against_naive(jg_shape(1, 1), jg_shape(1, 1), jg_shape(1, 1));
    check_against_naive(jg_shape(2, 1, 1), jg_shape(1, 1, 3), jg_shape(2, 1, 3));
}

Test(matmul, forward_f32_and_i32)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_const(g, JG_F32, jg_shape(1, 2), ((float[]){ 0.5f, 1.5f }));
    jg_node *b = jg_const(g, JG_F32, jg_shape(2, 2), ((float[]){ 2, 4, 6, 8 }));
    jg_node *c = jg_matmul(a, b);
    cr_assert_eq(jg_node_dtype(c), JG_F32);
    double *v = t_eval(c);
    t_assert_close(v, (double[]){ 10, 14 }, 2, 0);
    free(v);
    jg_node *ia = jg_const(g, JG_I32, jg_shape(2, 2), ((int32_t[]){ 1, -2, 3, 4 }));
    jg_node *ib = jg_const(g, JG_I32, jg_shape(2, 1), ((int32_t[]){ 5, 6 }));
    jg_node *ic = jg_matmul(ia, ib);
    cr_assert_eq(jg_node_dtype(ic), JG_I32);
    v = t_eval(ic);
    t_assert_close(v, (double[]){ -7, 39 }, 2, 0);
    free(v);
    jg_graph_free(g);
}

Test(matmul, mlp_sized_forward)
{
    /* the demo's first layer shape, against the naive loop on a few rows */
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(128, 784), 1), *w = t_randn(g, jg_shape(784, 256), 2);
    jg_node *h = jg_matmul(x, w);
    assert_shape(h, jg_shape(128, 256));
    double *vx = t_eval(x), *vw = t_eval(w), *vh = t_eval(h);
    for (int i = 0; i < 128; i += 37)
        for (int j = 0; j < 256; j += 51) {
            double s = 0;
            for (int p = 0; p < 784; p++)
                s += vx[i * 784 + p] * vw[p * 256 + j];
            cr_assert_float_eq(vh[i * 256 + j], s, 1e-9, "h[%d,%d]", i, j);
        }
    free(vx), free(vw), free(vh);
    jg_graph_free(g);
}

/* ---- errors */

Test(matmul, error_inner_dimensions)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_input(g, "x", JG_F32, jg_shape(128, 784));
    jg_node *b = jg_input(g, "w", JG_F32, jg_shape(785, 256));
    jg_node *c = jg_matmul(a, b);
    cr_assert_not(jg_node_ok(c));
    t_assert_error(g, JG_ERR_SHAPE, "jg_matmul: inner dimensions differ: [128,784] x [785,256]");
    t_assert_error(g, JG_ERR_SHAPE, "test_matmul.c:");
    jg_graph_free(g);
}

Test(matmul, error_batch_broadcast)
{
    jg_graph *g = jg_graph_new();
    jg_node *c = jg_matmul(t_randn(g, jg_shape(2, 3, 4), 1), t_randn(g, jg_shape(5, 4, 6), 2));
    cr_assert_not(jg_node_ok(c));
    t_assert_error(g, JG_ERR_SHAPE, "batch dimensions do not broadcast: [2,3,4] x [5,4,6]");
    jg_graph_free(g);
}

Test(matmul, error_one_dimensional_operand)
{
    jg_graph *g = jg_graph_new();
    jg_matmul(t_randn(g, jg_shape(3), 1), t_randn(g, jg_shape(3, 4), 2));
    t_assert_error(g, JG_ERR_SHAPE, "operands must be at least 2-D: [3] x [3,4]");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_matmul(t_randn(g, jg_shape(2, 3), 1), jg_scalar(g, JG_F64, 2));
    t_assert_error(g, JG_ERR_SHAPE, "operands must be at least 2-D: [2,3] x []");
    jg_graph_free(g);
}

Test(matmul, error_dtype_mismatch)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_input(g, "a", JG_F32, jg_shape(2, 3));
    jg_node *b = jg_input(g, "b", JG_F64, jg_shape(3, 2));
    jg_matmul(a, b);
    t_assert_error(g, JG_ERR_DTYPE, "dtypes differ: f32 and f64");
    jg_graph_free(g);
}

Test(matmul, error_null_and_poisoned_operands)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_randn(g, jg_shape(2, 2), 1);
    jg_node *c = jg_matmul(a, NULL);
    cr_assert_not(jg_node_ok(c));
    t_assert_error(g, JG_ERR_ARG, "operand 1 is NULL");
    /* a poisoned operand poisons the result without a second error */
    jg_node *d = jg_matmul(c, a);
    cr_assert_not(jg_node_ok(d));
    t_assert_error(g, JG_ERR_ARG, "operand 1 is NULL");
    cr_assert_not(jg_node_ok(jg_matmul(NULL, NULL)));
    jg_graph_free(g);
}

/* ---- gradients */

static void gradcheck_shapes(jg_shape sa, jg_shape sb)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", sa, 1), *b = t_param(g, "b", sb, 2);
    jg_node *c = jg_matmul(a, b);
    cr_assert(jg_node_ok(c), "%s", jg_errmsg(g));
    t_gradcheck(g, c, (jg_node *[]){ a, b }, 2);
    jg_graph_free(g);
}

Test(matmul, gradcheck_2d)
{
    gradcheck_shapes(jg_shape(3, 4), jg_shape(4, 2));
    gradcheck_shapes(jg_shape(1, 5), jg_shape(5, 1));
    gradcheck_shapes(jg_shape(4, 1), jg_shape(1, 3));
}

Test(matmul, gradcheck_batched_broadcast)
{
    gradcheck_shapes(jg_shape(2, 1, 3, 4), jg_shape(5, 4, 2));
    gradcheck_shapes(jg_shape(3, 2), jg_shape(4, 2, 3));
    gradcheck_shapes(jg_shape(2, 2, 3), jg_shape(2, 3, 2));
    gradcheck_shapes(jg_shape(1, 3, 2, 2), jg_shape(2, 1, 2, 3));
}

Test(matmul, gradcheck_second_order)
{
    /* L = sum((a b)^2): dL/da = 2 (a b) b^T depends on both operands through matmul nodes,
     * so checking it differentiates matmul's gradient rule again. */
    jg_shape shapes[][2] = {
        { jg_shape(3, 4), jg_shape(4, 2) },
        { jg_shape(2, 1, 2, 3), jg_shape(3, 3, 2) },
    };
    for (int s = 0; s < 2; s++) {
        jg_graph *g = jg_graph_new();
        jg_node *a = t_param(g, "a", shapes[s][0], 3), *b = t_param(g, "b", shapes[s][1], 4);
        jg_node *loss = jg_sum(jg_square(jg_matmul(a, b)), JG_ALL_AXES, false);
        jg_node *wrt[2] = { a, b }, *d[2];
        cr_assert_eq(jg_grad(g, loss, wrt, 2, d), JG_OK, "%s", jg_errmsg(g));
        t_gradcheck(g, d[0], wrt, 2);
        t_gradcheck(g, d[1], wrt, 2);
        jg_graph_free(g);
    }
}

Test(matmul, grad_shapes_and_values)
{
    /* d sum(a b) / da = 1 b^T: each row of da is the row sums of b */
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", jg_shape(2, 3), 1);
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(3, 2), jg_constant(0));
    cr_assert_eq(jg_param_set(g, "b", (double[]){ 1, 2, 3, 4, 5, 6 }, 6 * sizeof(double)),
                 JG_OK);
    jg_node *d;
    cr_assert_eq(jg_grad(g, jg_matmul(a, b), &a, 1, &d), JG_OK, "%s", jg_errmsg(g));
    assert_shape(d, jg_shape(2, 3));
    double *v = t_eval(d);
    t_assert_close(v, (double[]){ 3, 7, 11, 3, 7, 11 }, 6, 1e-12);
    free(v);
    jg_graph_free(g);
}

/* ---- linear: PyTorch's [out, in] weights */

Test(matmul, linear_is_x_times_w_transposed_plus_b)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *w = t_const(g, jg_shape(2, 3), (double[]){ 1, 0, -1, 2, 1, 0 }); /* [out, in] */
    jg_node *b = t_const(g, jg_shape(2), (double[]){ 10, 20 });
    t_expect(jg_linear(x, w, b), jg_shape(2, 2), (double[]){ 8, 24, 8, 33 });
    t_expect(jg_linear(x, w, NULL), jg_shape(2, 2), (double[]){ -2, 4, -2, 13 });
    /* a 1-D input gives a 1-D output, batches stay */
    jg_node *v = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    t_expect(jg_linear(v, w, b), jg_shape(2), (double[]){ 8, 24 });
    t_assert_shape(jg_linear(jg_reshape(x, jg_shape(2, 1, 3)), w, b), jg_shape(2, 1, 2));
    jg_graph_free(g);
}

Test(matmul, linear_gradcheck)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 4, 3), 1), *w = t_param(g, "w", jg_shape(5, 3), 2);
    jg_node *b = t_param(g, "b", jg_shape(5), 3);
    t_gradcheck(g, jg_linear(x, w, b), (jg_node *[]){ x, w, b }, 3);
    jg_graph_free(g);
}

Test(matmul, linear_errors_name_the_layer)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 3));
    jg_linear(x, jg_input(g, "w", JG_F32, jg_shape(3, 5)), NULL);
    t_assert_error(g, JG_ERR_SHAPE, "jg_linear: x [4,3] and w [3,5]: w must be [out, in]");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(4, 3));
    jg_linear(x, jg_input(g, "w", JG_F32, jg_shape(5, 3)), jg_input(g, "b", JG_F32, jg_shape(3)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_linear: b is [3], must be [5] (w's out)");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_linear(jg_input(g, "x", JG_F32, jg_shape(4, 3)), NULL, NULL);
    t_assert_error(g, JG_ERR_ARG, "jg_linear: w is NULL");
    jg_graph_free(g);
    cr_assert(!jg_node_ok(jg_linear(NULL, NULL, NULL)));
}
