/* jg_take_along_axis (src/ops/gather.c): values on every axis, idx shorter than x on the
 * other axes, repeated indices accumulating in the gradient, f64 gradient checks, indices out
 * of range failing the run (also those whose flat offset would land inside x), misuse, and
 * the JIT against the reference executor forward and backward. */
#include "support/jit_compare.h"

#include <stdlib.h>
#include <string.h>

TestSuite(gather, .timeout = 60);

static jg_node *i32_const(jg_graph *g, jg_shape s, const int32_t *values)
{
    return jg_const(g, JG_I32, s, values);
}

Test(gather, values_on_each_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3)); /* [[0,1,2],[3,4,5]] */
    jg_node *i1 = i32_const(g, jg_shape(2, 2), (int32_t[]){ 2, 0, 1, 1 });
    t_expect(jg_take_along_axis(x, i1, 1), jg_shape(2, 2), (double[]){ 2, 0, 4, 4 });
    t_expect(jg_take_along_axis(x, i1, -1), jg_shape(2, 2), (double[]){ 2, 0, 4, 4 });
    jg_node *i0 = i32_const(g, jg_shape(1, 3), (int32_t[]){ 1, 0, 1 });
    t_expect(jg_take_along_axis(x, i0, 0), jg_shape(1, 3), (double[]){ 3, 1, 5 });
    /* idx shorter than x on an axis other than `axis` (torch.gather allows it) */
    jg_node *i2 = i32_const(g, jg_shape(1, 1), (int32_t[]){ 2 });
    t_expect(jg_take_along_axis(x, i2, 1), jg_shape(1, 1), (double[]){ 2 });
    /* 3-D, the middle axis: out[a, j, c] = x[a, idx[a, j, c], c] */
    jg_node *y = t_iota(g, jg_shape(2, 3, 2));
    jg_node *i3 = i32_const(g, jg_shape(2, 1, 2), (int32_t[]){ 2, 0, 1, 2 });
    t_expect(jg_take_along_axis(y, i3, 1), jg_shape(2, 1, 2), (double[]){ 4, 1, 8, 11 });
    jg_graph_free(g);
}

Test(gather, gradient_adds_into_the_positions_read)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(2, 3), jg_zeros());
    jg_node *idx = i32_const(g, jg_shape(2, 3), (int32_t[]){ 1, 1, 0, 2, 2, 2 });
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, jg_sum(jg_take_along_axis(x, idx, 1), JG_ALL_AXES, false), &x, 1,
                         &d), JG_OK, "%s", jg_errmsg(g));
    t_expect(d, jg_shape(2, 3), (double[]){ 1, 2, 0, 0, 0, 3 });
    jg_graph_free(g);
}

Test(gather, gradcheck)
{
    struct { jg_shape xs, is; int32_t idx[8]; int axis; } c[] = {
        { jg_shape(3, 4), jg_shape(3, 2), { 3, 0, 1, 1, 2, 0 }, 1 },
        { jg_shape(3, 4), jg_shape(2, 4), { 2, 0, 1, 2, 0, 0, 2, 1 }, 0 },
        { jg_shape(2, 3, 2), jg_shape(2, 2, 2), { 0, 2, 1, 1, 2, 2, 0, 0 }, 1 },
        { jg_shape(5), jg_shape(3), { 4, 4, 0 }, 0 },
    };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", c[i].xs, 200 + (uint64_t)i);
        jg_node *y = jg_take_along_axis(x, i32_const(g, c[i].is, c[i].idx), c[i].axis);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, jg_square(y), &x, 1);
        jg_graph_free(g);
    }
}

/* Runs y with input "idx" on both executors; returns the JIT's status, checks they agree. */
static jg_status run_idx(jg_graph *g, jg_node *y, const int32_t *idx, size_t bytes, char *msg,
                         size_t size)
{
    jg_status st[2];
    for (int e = 0; e < 2; e++) {
        jg_opts o = { .executor = e ? JG_EXEC_JIT : JG_EXEC_REFERENCE };
        jg_program *p = jg_compile(g, &y, 1, &o);
        cr_assert(p, "%s", jg_errmsg(g));
        cr_assert_eq(jg_program_set(p, "idx", idx, bytes), JG_OK);
        st[e] = jg_program_run(p);
        snprintf(msg, size, "%s", jg_errmsg(p));
        jg_program_free(p);
    }
    cr_assert_eq(st[0], st[1], "the executors disagree: %s", msg);
    return st[1];
}

Test(gather, index_out_of_range_fails_the_run)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    jg_node *idx = jg_input(g, "idx", JG_I32, jg_shape(2, 1));
    jg_node *y = jg_take_along_axis(x, idx, 1);
    char msg[1024];
    cr_assert_eq(run_idx(g, y, (int32_t[]){ 2, 0 }, 8, msg, sizeof msg), JG_OK, "%s", msg);
    /* 3 in row 0 is offset 3, inside x (x[1, 0]): still an error */
    cr_assert_eq(run_idx(g, y, (int32_t[]){ 3, 0 }, 8, msg, sizeof msg), JG_ERR_RANGE);
    cr_assert(strstr(msg, "out of range") && strstr(msg, "test_gather.c:"), "%s", msg);
    cr_assert_eq(run_idx(g, y, (int32_t[]){ 0, -1 }, 8, msg, sizeof msg), JG_ERR_RANGE);
    cr_assert_eq(run_idx(g, y, (int32_t[]){ 0, INT32_MAX }, 8, msg, sizeof msg), JG_ERR_RANGE);
    jg_graph_free(g);
}

Test(gather, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_take_along_axis(x, jg_input(g, "i", JG_F32, jg_shape(2, 3)), 1);
    t_assert_error(g, JG_ERR_DTYPE, "jg_take_along_axis: idx must be i32, got f32");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_take_along_axis(x, jg_input(g, "i", JG_I32, jg_shape(3, 3)), 1);
    t_assert_error(g, JG_ERR_SHAPE, "jg_take_along_axis: idx [3,3] against x [2,3]");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_take_along_axis(x, jg_input(g, "i", JG_I32, jg_shape(6)), 0);
    t_assert_error(g, JG_ERR_SHAPE, "same rank");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_take_along_axis(x, jg_input(g, "i", JG_I32, jg_shape(2, 3)), 2);
    t_assert_error(g, JG_ERR_ARG, "jg_take_along_axis: axis 2 out of range for [2,3]");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_take_along_axis(jg_input(g, "x", JG_F32, jg_shape(2)), NULL, 0);
    t_assert_error(g, JG_ERR_ARG, "jg_take_along_axis: idx is NULL");
    jg_graph_free(g);
    cr_assert(!jg_node_ok(jg_take_along_axis(NULL, NULL, 0)));
}

Test(gather, jit_matches_reference_forward_and_backward)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 300 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED);
        jg_node *i1 = input_(&c, JG_I32, jg_shape(17, 40), LABELS, 15);
        jg_node *i0 = input_(&c, JG_I32, jg_shape(33, 15), LABELS, 17);
        jg_node *w = jg_param_as(c.g, "w", t, jg_shape(4, 9, 5), jg_normal(0, 1));
        jg_node *i2 = input_(&c, JG_I32, jg_shape(4, 3, 5), LABELS, 9);
        jg_node *y = jg_take_along_axis(w, i2, 1);
        jg_node *d = NULL;
        cr_assert_eq(jg_grad(c.g, jg_sum(jg_square(y), JG_ALL_AXES, false), &w, 1, &d), JG_OK);
        olist l = { .n = 0 };
        push(&l, jg_take_along_axis(x, i1, 1));
        push(&l, jg_take_along_axis(x, i0, 0));
        push(&l, jg_exp(jg_take_along_axis(x, i1, -1)));
        push(&l, y);
        push(&l, d);
        check(&c, l.o, l.n, TOL, t == JG_F32 ? "take_along_axis f32" : "take_along_axis f64");
        ctx_fini(&c);
    }
}
