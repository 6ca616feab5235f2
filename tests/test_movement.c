/* Tests of reshape, permute/transpose and broadcast_to (src/ops/movement.c): forward values by
 * hand (-1 in reshape, negative axes in perm, size-1 dims and new leading dims in broadcast),
 * no-op calls returning their operand, f64 gradient checks on several shapes, second-order
 * checks through a smooth op, and misuse. */
#include "support/support.h"

#include <stdlib.h>




/* gradient of sum(f(x)) w.r.t. x, asserting it exists */
static jg_node *grad_of(jg_graph *g, jg_node *y, jg_node *x)
{
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, y, &x, 1, &d), JG_OK, "%s", jg_errmsg(g));
    cr_assert(d && jg_node_ok(d), "no gradient");
    return d;
}

TestSuite(movement);

/* ---- reshape */

Test(movement, reshape_values_and_inferred_dim)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    t_expect(jg_reshape(x, jg_shape(3, 2)), jg_shape(3, 2), (double[]){ 0, 1, 2, 3, 4, 5 });
    t_expect(jg_reshape(x, jg_shape(6)), jg_shape(6), (double[]){ 0, 1, 2, 3, 4, 5 });
    t_expect(jg_reshape(x, jg_shape(-1, 2)), jg_shape(3, 2), (double[]){ 0, 1, 2, 3, 4, 5 });
    t_expect(jg_reshape(x, jg_shape(1, -1, 1)), jg_shape(1, 6, 1),
           (double[]){ 0, 1, 2, 3, 4, 5 });
    jg_node *y = t_iota(g, jg_shape(2, 3, 4));
    t_assert_shape(jg_reshape(y, jg_shape(-1, 4)), jg_shape(6, 4));
    t_assert_shape(jg_reshape(y, jg_shape(4, 3, -1)), jg_shape(4, 3, 2));
    /* a one-element tensor to a scalar and back */
    jg_node *one = t_const(g, jg_shape(1, 1), (double[]){ 7 });
    jg_node *s = jg_reshape(one, JG_SCALAR);
    t_expect(s, JG_SCALAR, (double[]){ 7 });
    t_expect(jg_reshape(s, jg_shape(1, 1, 1)), jg_shape(1, 1, 1), (double[]){ 7 });
    t_expect(jg_reshape(s, jg_shape(-1)), jg_shape(1), (double[]){ 7 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(movement, reshape_to_same_shape_adds_no_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    int before = jg_graph_node_count(g);
    cr_assert_eq(jg_reshape(x, jg_shape(2, 3)), x);
    cr_assert_eq(jg_reshape(x, jg_shape(-1, 3)), x);
    cr_assert_eq(jg_reshape(x, jg_shape(2, -1)), x);
    cr_assert_eq(jg_graph_node_count(g), before);
    jg_node *r = jg_reshape(x, jg_shape(3, 2));
    cr_assert_neq(r, x);
    cr_assert_str_eq(jg_node_op_name(r), "reshape");
    jg_graph_free(g);
}

Test(movement, reshape_i32)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_const(g, JG_I32, jg_shape(4), ((int32_t[]){ 1, 2, 3, 4 }));
    jg_node *r = jg_reshape(x, jg_shape(2, 2));
    cr_assert_eq(jg_node_dtype(r), JG_I32);
    t_expect(r, jg_shape(2, 2), (double[]){ 1, 2, 3, 4 });
    jg_graph_free(g);
}

Test(movement, reshape_gradcheck)
{
    jg_shape from[] = { jg_shape(2, 3), jg_shape(2, 3, 4), jg_shape(5), jg_shape(1) };
    jg_shape to[] = { jg_shape(6), jg_shape(4, -1), jg_shape(1, 5, 1), JG_SCALAR };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", from[i], 10 + (uint64_t)i);
        jg_node *y = jg_reshape(x, to[i]);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_graph_free(g);
    }
}

/* ---- permute and transpose */

Test(movement, transpose_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    jg_node *t = jg_transpose(x);
    t_expect(t, jg_shape(3, 2), (double[]){ 0, 3, 1, 4, 2, 5 });
    t_expect(jg_transpose(t), jg_shape(2, 3), (double[]){ 0, 1, 2, 3, 4, 5 });
    /* batched: swaps the last two axes of each [2,2] matrix */
    jg_node *b = t_iota(g, jg_shape(2, 2, 2));
    t_expect(jg_transpose(b), jg_shape(2, 2, 2), (double[]){ 0, 2, 1, 3, 4, 6, 5, 7 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(movement, permute_values)
{
    jg_graph *g = jg_graph_new();
    /* x[i][0][k] = 3i + k; out[k][i][0] = x[i][0][k] */
    jg_node *x = t_iota(g, jg_shape(2, 1, 3));
    t_expect(jg_permute(x, jg_axes(2, 0, 1)), jg_shape(3, 2, 1), (double[]){ 0, 3, 1, 4, 2, 5 });
    t_expect(jg_permute(x, jg_axes(-1, 0, -2)), jg_shape(3, 2, 1),
           (double[]){ 0, 3, 1, 4, 2, 5 });
    /* y[i][j][k] = 12i + 4j + k over [2,3,4]; out[j][k][i] */
    jg_node *y = t_iota(g, jg_shape(2, 3, 4));
    jg_node *p = jg_permute(y, jg_axes(1, 2, 0));
    t_assert_shape(p, jg_shape(3, 4, 2));
    double want[24];
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 2; i++)
                want[(j * 4 + k) * 2 + i] = 12 * i + 4 * j + k;
    t_expect(p, jg_shape(3, 4, 2), want);
    cr_assert_eq(want[1], 12); /* out[0][0][1] = y[1][0][0] */
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(movement, identity_permutation_adds_no_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3, 4));
    int before = jg_graph_node_count(g);
    cr_assert_eq(jg_permute(x, jg_axes(0, 1, 2)), x);
    cr_assert_eq(jg_permute(x, jg_axes(-3, 1, -1)), x);
    cr_assert_eq(jg_graph_node_count(g), before);
    jg_graph_free(g);
}

Test(movement, permute_gradcheck)
{
    jg_shape shapes[] = { jg_shape(2, 3), jg_shape(2, 3, 4), jg_shape(1, 2, 3, 2) };
    jg_axes perms[] = { jg_axes(1, 0), jg_axes(1, 2, 0), jg_axes(3, 1, 0, 2) };
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", shapes[i], 20 + (uint64_t)i);
        jg_node *y = jg_permute(x, perms[i]);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_graph_free(g);
    }
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3, 2, 2), 23);
    t_gradcheck(g, jg_transpose(x), &x, 1);
    jg_graph_free(g);
}

/* ---- broadcast */

Test(movement, broadcast_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *row = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    t_expect(jg_broadcast_to(row, jg_shape(2, 3)), jg_shape(2, 3),
           (double[]){ 1, 2, 3, 1, 2, 3 });
    jg_node *col = t_const(g, jg_shape(2, 1), (double[]){ 1, 2 });
    t_expect(jg_broadcast_to(col, jg_shape(2, 3)), jg_shape(2, 3),
           (double[]){ 1, 1, 1, 2, 2, 2 });
    jg_node *s = t_const(g, JG_SCALAR, (double[]){ 5 });
    t_expect(jg_broadcast_to(s, jg_shape(2, 2)), jg_shape(2, 2), (double[]){ 5, 5, 5, 5 });
    /* a new leading dim and a stretched middle dim: [2,1,2] -> [2,2,3,2] */
    jg_node *m = t_const(g, jg_shape(2, 1, 2), (double[]){ 1, 2, 3, 4 });
    jg_node *b = jg_broadcast_to(m, jg_shape(2, 2, 3, 2));
    double want[24];
    for (int l = 0; l < 2; l++)
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int k = 0; k < 2; k++)
                    want[((l * 2 + i) * 3 + j) * 2 + k] = 1 + 2 * i + k;
    t_expect(b, jg_shape(2, 2, 3, 2), want);
    cr_assert_eq(want[7], 4); /* b[0][1][0][1] = m[1][0][1] */
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(movement, broadcast_to_same_shape_adds_no_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    int before = jg_graph_node_count(g);
    cr_assert_eq(jg_broadcast_to(x, jg_shape(2, 3)), x);
    cr_assert_eq(jg_graph_node_count(g), before);
    jg_graph_free(g);
}

Test(movement, broadcast_gradcheck)
{
    jg_shape from[] = { jg_shape(3), jg_shape(2, 1), jg_shape(1, 3, 1), JG_SCALAR };
    jg_shape to[] = { jg_shape(2, 3), jg_shape(2, 3), jg_shape(2, 1, 3, 4), jg_shape(2, 3) };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", from[i], 30 + (uint64_t)i);
        jg_node *y = jg_broadcast_to(x, to[i]);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_graph_free(g);
    }
}

/* The gradient of a broadcast sums the copies: d/dx sum(broadcast([2,1] -> [2,3])) = 3. */
Test(movement, broadcast_gradient_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 1), 1);
    jg_node *d = grad_of(g, jg_broadcast_to(x, jg_shape(4, 2, 3)), x);
    t_expect(d, jg_shape(2, 1), (double[]){ 12, 12 });
    jg_graph_free(g);
}

/* ---- second order: the gradients are movements again, composed with a smooth op */

Test(movement, second_order)
{
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", jg_shape(2, 3), 40 + (uint64_t)i);
        jg_node *y = i == 0   ? jg_reshape(x, jg_shape(3, 2))
                     : i == 1 ? jg_transpose(x)
                              : jg_broadcast_to(jg_reshape(x, jg_shape(2, 1, 3)),
                                                jg_shape(2, 2, 3));
        jg_node *w = t_randn(g, jg_node_shape(y), 50 + (uint64_t)i);
        jg_node *f = jg_mul(jg_tanh(y), w);
        jg_node *d = grad_of(g, f, x);
        t_gradcheck(g, d, &x, 1);
        jg_graph_free(g);
    }
}

/* ---- misuse */

Test(movement, reshape_bad_numel)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    jg_node *r = jg_reshape(x, jg_shape(4, 2));
    cr_assert(!jg_node_ok(r));
    t_assert_error(g, JG_ERR_SHAPE, "jg_reshape: cannot reshape [2,3] (6 elements) to [4,2]");
    t_assert_error(g, JG_ERR_SHAPE, "test_movement.c:");
    jg_graph_free(g);
}

Test(movement, reshape_two_inferred_dims)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_reshape(x, jg_shape(-1, -1))));
    t_assert_error(g, JG_ERR_SHAPE, "at most one dimension may be -1");
    jg_graph_free(g);
}

Test(movement, reshape_not_divisible_and_bad_dims)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_reshape(x, jg_shape(4, -1))));
    t_assert_error(g, JG_ERR_SHAPE, "not divisible");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_reshape(x, jg_shape(6, 0))));
    t_assert_error(g, JG_ERR_SHAPE, "invalid target [6,0]");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_reshape(x, jg_shape(-2, -3))));
    t_assert_error(g, JG_ERR_SHAPE, "invalid target");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_reshape(x, ((jg_shape){ .ndim = 9 }))));
    t_assert_error(g, JG_ERR_SHAPE, "9 dimensions");
    jg_graph_free(g);
}

Test(movement, bad_permutations)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_permute(x, jg_axes(0, 0))));
    t_assert_error(g, JG_ERR_ARG, "jg_permute: not a permutation of the axes of [2,3]: axis 0 "
                                  "repeats");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_permute(x, jg_axes(0, 2))));
    t_assert_error(g, JG_ERR_ARG, "axis 2 is out of range");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_permute(x, jg_axes(1, -2, 0))));
    t_assert_error(g, JG_ERR_ARG, "permutation has 3 axes, operand [2,3] has 2");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_permute(x, JG_ALL_AXES)));
    t_assert_error(g, JG_ERR_ARG, "permutation has -1 axes");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_permute(x, jg_axes(1, -3))));
    t_assert_error(g, JG_ERR_ARG, "axis -3 is out of range");
    jg_graph_free(g);
}

Test(movement, transpose_needs_two_dims)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(3));
    cr_assert(!jg_node_ok(jg_transpose(x)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_transpose: needs at least 2 dimensions, operand is [3]");
    t_assert_error(g, JG_ERR_SHAPE, "test_movement.c:");
    jg_graph_free(g);
}

Test(movement, not_broadcastable)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_broadcast_to(x, jg_shape(3, 3))));
    t_assert_error(g, JG_ERR_SHAPE, "jg_broadcast_to: cannot broadcast [2,3] to [3,3]");
    jg_graph_clear_error(g);
    /* the target may not drop dimensions */
    cr_assert(!jg_node_ok(jg_broadcast_to(x, jg_shape(3))));
    t_assert_error(g, JG_ERR_SHAPE, "cannot broadcast [2,3] to [3]");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_broadcast_to(x, jg_shape(0, 3))));
    t_assert_error(g, JG_ERR_SHAPE, "invalid target shape [0,3]");
    jg_graph_free(g);
}

Test(movement, null_and_poisoned_operands)
{
    jg_graph *g = jg_graph_new();
    /* NULL alone: no graph to record on, but never NULL and never a crash */
    cr_assert(!jg_node_ok(jg_reshape(NULL, jg_shape(2))));
    cr_assert(!jg_node_ok(jg_permute(NULL, jg_axes(0))));
    cr_assert(!jg_node_ok(jg_transpose(NULL)));
    cr_assert(!jg_node_ok(jg_broadcast_to(NULL, jg_shape(2))));
    cr_assert_eq(jg_graph_status(g), JG_OK);
    /* a poisoned operand propagates without a new error */
    jg_node *x = t_iota(g, jg_shape(2, 3));
    jg_node *bad = jg_reshape(x, jg_shape(5));
    t_assert_error(g, JG_ERR_SHAPE, "to [5]");
    cr_assert(!jg_node_ok(jg_reshape(bad, jg_shape(1))));
    cr_assert(!jg_node_ok(jg_transpose(bad)));
    cr_assert(!jg_node_ok(jg_permute(bad, jg_axes(0))));
    cr_assert(!jg_node_ok(jg_broadcast_to(bad, jg_shape(2))));
    t_assert_error(g, JG_ERR_SHAPE, "to [5]");
    jg_graph_free(g);
}
