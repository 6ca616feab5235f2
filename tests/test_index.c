/* Tests of the indexing ops (src/ops/index.c): slice (negative indices, clamping, negative
 * steps), pad, concat, take (embedding lookup, 2-D indices on a middle axis, repeated
 * indices), one_hot; the internal adjoints unslice and scatter_add through jg_grad; f64
 * gradient checks, second-order checks, run-time index errors and misuse. */
#include "support/support.h"

#include <stdlib.h>
#include <string.h>




static jg_node *i32_const(jg_graph *g, jg_shape s, const int32_t *values)
{
    return jg_const(g, JG_I32, s, values);
}

static jg_node *grad_of(jg_graph *g, jg_node *y, jg_node *x)
{
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, y, &x, 1, &d), JG_OK, "%s", jg_errmsg(g));
    cr_assert(d && jg_node_ok(d), "no gradient");
    return d;
}

/* Compiles out with input "idx" of the given values, runs it and returns the run's status. */
static jg_status run_with_idx(jg_graph *g, jg_node *out, const int32_t *idx, size_t bytes,
                              char *msg, size_t msg_size)
{
    jg_program *p = jg_compile(g, &out, 1, NULL);
    cr_assert(p, "compile: %s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "idx", idx, bytes), JG_OK, "%s", jg_errmsg(p));
    jg_status st = jg_program_run(p);
    snprintf(msg, msg_size, "%s", jg_errmsg(p));
    jg_program_free(p);
    return st;
}

TestSuite(index);

/* ---- slice */

Test(index, slice_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 5)); /* rows 0..4 and 5..9 */
    t_expect(jg_slice(x, 1, 1, 4, 1), jg_shape(2, 3), (double[]){ 1, 2, 3, 6, 7, 8 });
    t_expect(jg_slice(x, -1, 0, 5, 2), jg_shape(2, 3), (double[]){ 0, 2, 4, 5, 7, 9 });
    t_expect(jg_slice(x, 0, 1, 2, 1), jg_shape(1, 5), (double[]){ 5, 6, 7, 8, 9 });
    t_expect(jg_slice(x, -2, -1, INT64_MAX, 1), jg_shape(1, 5), (double[]){ 5, 6, 7, 8, 9 });
    /* negative indices count from the end */
    t_expect(jg_slice(x, 1, -3, -1, 1), jg_shape(2, 2), (double[]){ 2, 3, 7, 8 });
    /* bounds are clamped */
    t_expect(jg_slice(x, 1, -100, 100, 2), jg_shape(2, 3), (double[]){ 0, 2, 4, 5, 7, 9 });
    t_expect(jg_slice(x, 1, 3, 100, 1), jg_shape(2, 2), (double[]){ 3, 4, 8, 9 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(index, slice_negative_steps)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 5));
    /* reversing an axis: [::-1] */
    t_expect(jg_slice(x, 1, -1, INT64_MIN, -1), jg_shape(2, 5),
           (double[]){ 4, 3, 2, 1, 0, 9, 8, 7, 6, 5 });
    t_expect(jg_slice(x, 1, INT64_MAX, INT64_MIN, -1), jg_shape(2, 5),
           (double[]){ 4, 3, 2, 1, 0, 9, 8, 7, 6, 5 });
    t_expect(jg_slice(x, 0, INT64_MAX, INT64_MIN, -1), jg_shape(2, 5),
           (double[]){ 5, 6, 7, 8, 9, 0, 1, 2, 3, 4 });
    /* [3::-2] takes 3 and 1; [4:1:-2] takes 4 and 2; [-2:-5:-1] takes 3, 2, 1 */
    t_expect(jg_slice(x, 1, 3, INT64_MIN, -2), jg_shape(2, 2), (double[]){ 3, 1, 8, 6 });
    t_expect(jg_slice(x, 1, 4, 1, -2), jg_shape(2, 2), (double[]){ 4, 2, 9, 7 });
    t_expect(jg_slice(x, 1, -2, -5, -1), jg_shape(2, 3), (double[]){ 3, 2, 1, 8, 7, 6 });
    /* clamped from above with a negative step: [100:2:-1] takes 4, 3 */
    t_expect(jg_slice(x, 1, 100, 2, -1), jg_shape(2, 2), (double[]){ 4, 3, 9, 8 });
    /* a huge step takes the first element only */
    t_expect(jg_slice(x, 1, 2, INT64_MIN, INT64_MIN), jg_shape(2, 1), (double[]){ 2, 7 });
    t_expect(jg_slice(x, 1, 1, INT64_MAX, INT64_MAX), jg_shape(2, 1), (double[]){ 1, 6 });
    /* [0::-1] takes the first element */
    t_expect(jg_slice(x, 1, 0, INT64_MIN, -1), jg_shape(2, 1), (double[]){ 0, 5 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(index, slice_of_whole_axis_adds_no_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 5));
    int before = jg_graph_node_count(g);
    cr_assert_eq(jg_slice(x, 1, 0, 5, 1), x);
    cr_assert_eq(jg_slice(x, 0, INT64_MIN, INT64_MAX, 1), x);
    cr_assert_eq(jg_slice(x, 1, -100, 100, 1), x);
    cr_assert_eq(jg_graph_node_count(g), before);
    jg_node *r = jg_slice(x, 1, -1, INT64_MIN, -1); /* reversal is not a no-op */
    cr_assert_neq(r, x);
    cr_assert_str_eq(jg_node_op_name(r), "slice");
    jg_graph_free(g);
}

/* The gradient of a slice is unslice: zeros with dy at the slice positions. */
Test(index, unslice_values_through_grad)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 5), 1);
    jg_node *s = jg_slice(x, 1, 4, INT64_MIN, -3); /* columns 4, 1 */
    jg_node *w = t_const(g, jg_shape(2, 2), (double[]){ 1, 2, 3, 4 });
    jg_node *d = grad_of(g, jg_mul(s, w), x);
    t_expect(d, jg_shape(2, 5), (double[]){ 0, 2, 0, 0, 1, 0, 4, 0, 0, 3 });
    jg_graph_free(g);
}

Test(index, slice_gradcheck)
{
    struct { jg_shape s; int axis; int64_t start, stop, step; } c[] = {
        { jg_shape(2, 5), 1, 1, 4, 1 },
        { jg_shape(4, 3, 2), 0, -1, INT64_MIN, -1 },
        { jg_shape(3, 7), -1, 6, 0, -2 },
        { jg_shape(6), 0, 1, INT64_MAX, 3 },
    };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", c[i].s, 60 + (uint64_t)i);
        jg_node *y = jg_slice(x, c[i].axis, c[i].start, c[i].stop, c[i].step);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_graph_free(g);
    }
}

/* slice -> unslice -> slice: grad of grad through tanh and square. */
Test(index, slice_second_order)
{
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", jg_shape(3, 4), 70 + (uint64_t)i);
        jg_node *s = i == 0   ? jg_slice(x, 1, 1, 3, 1)
                     : i == 1 ? jg_slice(x, 0, -1, INT64_MIN, -2)
                              : jg_slice(jg_slice(x, 0, 1, 3, 1), 1, 3, 0, -1);
        jg_node *y = jg_square(jg_tanh(s));
        jg_node *d = grad_of(g, y, x);
        t_gradcheck(g, d, &x, 1);
        /* third order: unslice's gradient is a slice again */
        jg_node *d2 = grad_of(g, jg_mul(d, d), x);
        t_gradcheck(g, d2, &x, 1);
        jg_graph_free(g);
    }
}

/* ---- pad */

Test(index, pad_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 2), (double[]){ 1, 2, 3, 4 });
    t_expect(jg_pad(x, jg_shape(1, 0), jg_shape(0, 2), 9), jg_shape(3, 4),
           (double[]){ 9, 9, 9, 9, 1, 2, 9, 9, 3, 4, 9, 9 });
    t_expect(jg_pad(x, jg_shape(0, 1), jg_shape(0, 1), 0), jg_shape(2, 4),
           (double[]){ 0, 1, 2, 0, 0, 3, 4, 0 });
    jg_node *v = t_const(g, jg_shape(2), (double[]){ 5, 6 });
    t_expect(jg_pad(v, jg_shape(2), jg_shape(1), -1.5), jg_shape(5),
           (double[]){ -1.5, -1.5, 5, 6, -1.5 });
    /* nothing to pad: the operand itself */
    cr_assert_eq(jg_pad(x, jg_shape(0, 0), jg_shape(0, 0), 3), x);
    jg_node *i = jg_const(g, JG_I32, jg_shape(1), ((int32_t[]){ 7 }));
    jg_node *pi = jg_pad(i, jg_shape(1), jg_shape(1), 2);
    cr_assert_eq(jg_node_dtype(pi), JG_I32);
    t_expect(pi, jg_shape(3), (double[]){ 2, 7, 2 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(index, pad_gradcheck)
{
    jg_shape s[] = { jg_shape(2, 3), jg_shape(4), jg_shape(2, 1, 3) };
    jg_shape before[] = { jg_shape(1, 0), jg_shape(2), jg_shape(0, 2, 1) };
    jg_shape after[] = { jg_shape(2, 1), jg_shape(0), jg_shape(1, 0, 1) };
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", s[i], 80 + (uint64_t)i);
        jg_node *y = jg_pad(x, before[i], after[i], 0.5);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_node *d = grad_of(g, jg_square(jg_tanh(y)), x);
        t_gradcheck(g, d, &x, 1);
        jg_graph_free(g);
    }
}

/* ---- concat */

Test(index, concat_three_along_middle_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(2, 1, 2), (double[]){ 1, 2, 3, 4 });
    jg_node *b = t_const(g, jg_shape(2, 2, 2), (double[]){ 10, 11, 12, 13, 14, 15, 16, 17 });
    jg_node *c = t_const(g, jg_shape(2, 1, 2), (double[]){ 20, 21, 22, 23 });
    jg_node *xs[] = { a, b, c };
    double want[] = { 1, 2, 10, 11, 12, 13, 20, 21, 3, 4, 14, 15, 16, 17, 22, 23 };
    t_expect(jg_concat(xs, 3, 1), jg_shape(2, 4, 2), want);
    t_expect(jg_concat(xs, 3, -2), jg_shape(2, 4, 2), want);
    jg_node *ac[] = { a, c };
    t_expect(jg_concat(ac, 2, 0), jg_shape(4, 1, 2), (double[]){ 1, 2, 3, 4, 20, 21, 22, 23 });
    t_expect(jg_concat(ac, 2, 2), jg_shape(2, 1, 4), (double[]){ 1, 2, 20, 21, 3, 4, 22, 23 });
    jg_node *one[] = { b };
    t_expect(jg_concat(one, 1, 0), jg_shape(2, 2, 2), (double[]){ 10, 11, 12, 13, 14, 15, 16, 17 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(index, concat_many_operands)
{
    jg_graph *g = jg_graph_new();
    jg_node *xs[6];
    for (int i = 0; i < 6; i++)
        xs[i] = t_const(g, jg_shape(1), (double[]){ i * 10.0 });
    t_expect(jg_concat(xs, 6, 0), jg_shape(6), (double[]){ 0, 10, 20, 30, 40, 50 });
    jg_graph_free(g);
}

Test(index, concat_gradcheck)
{
    jg_shape s[3][3] = {
        { jg_shape(2, 1, 3), jg_shape(2, 2, 3), jg_shape(2, 3, 3) },
        { jg_shape(3), jg_shape(1), jg_shape(2) },
        { jg_shape(2, 2), jg_shape(2, 1), jg_shape(2, 3) },
    };
    int axis[] = { 1, 0, -1 };
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *xs[3];
        for (int k = 0; k < 3; k++) {
            char name[8] = { 'x', (char)('0' + k), 0 };
            xs[k] = t_param(g, name, s[i][k], 90 + 3 * (uint64_t)i + (uint64_t)k);
        }
        jg_node *y = jg_concat(xs, 3, axis[i]);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, xs, 3);
        jg_node *d[3];
        cr_assert_eq(jg_grad(g, jg_tanh(y), xs, 3, d), JG_OK, "%s", jg_errmsg(g));
        t_gradcheck(g, jg_concat(d, 3, axis[i]), xs, 3);
        jg_graph_free(g);
    }
}

/* ---- take and scatter_add */

Test(index, take_embedding_lookup)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_iota(g, jg_shape(4, 3)); /* row r holds 3r, 3r+1, 3r+2 */
    jg_node *ids = i32_const(g, jg_shape(2, 2), (int32_t[]){ 3, 0, 3, 1 });
    t_expect(jg_take(w, ids, 0), jg_shape(2, 2, 3),
           (double[]){ 9, 10, 11, 0, 1, 2, 9, 10, 11, 3, 4, 5 });
    jg_node *one = i32_const(g, JG_SCALAR, (int32_t[]){ 2 });
    t_expect(jg_take(w, one, 0), jg_shape(3), (double[]){ 6, 7, 8 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(index, take_2d_indices_on_axis_1)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 4)); /* rows 0..3 and 4..7 */
    jg_node *idx = i32_const(g, jg_shape(2, 2), (int32_t[]){ 3, 0, 1, 1 });
    /* out[i][a][b] = x[i][idx[a][b]] */
    t_expect(jg_take(x, idx, 1), jg_shape(2, 2, 2), (double[]){ 3, 0, 1, 1, 7, 4, 5, 5 });
    t_expect(jg_take(x, idx, -1), jg_shape(2, 2, 2), (double[]){ 3, 0, 1, 1, 7, 4, 5, 5 });
    /* on a middle axis: [2,3,2] taking axis 1 with [2] -> [2,2,2] */
    jg_node *y = t_iota(g, jg_shape(2, 3, 2));
    jg_node *i2 = i32_const(g, jg_shape(2), (int32_t[]){ 2, 0 });
    t_expect(jg_take(y, i2, 1), jg_shape(2, 2, 2), (double[]){ 4, 5, 0, 1, 10, 11, 6, 7 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

/* scatter_add (take's gradient) sums the contributions of repeated indices. */
Test(index, scatter_add_sums_duplicates)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 2), 1);
    jg_node *idx = i32_const(g, jg_shape(3), (int32_t[]){ 1, 3, 1 });
    jg_node *w = t_const(g, jg_shape(3, 2), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *d = grad_of(g, jg_mul(jg_take(x, idx, 0), w), x);
    cr_assert_str_eq(jg_node_op_name(d), "scatter_add");
    t_expect(d, jg_shape(4, 2), (double[]){ 0, 0, 6, 8, 0, 0, 3, 4 });
    jg_graph_free(g);
}

Test(index, take_gradcheck)
{
    struct { jg_shape xs, is; int32_t idx[6]; int axis; } c[] = {
        { jg_shape(5, 3), jg_shape(2, 3), { 4, 0, 4, 2, 2, 2 }, 0 },
        { jg_shape(2, 4, 3), jg_shape(3), { 3, 1, 3 }, 1 },
        { jg_shape(3, 4), jg_shape(2, 2), { 0, 0, 3, 0 }, -1 },
        { jg_shape(3, 2), JG_SCALAR, { 1 }, 1 },
    };
    for (int i = 0; i < 4; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", c[i].xs, 100 + (uint64_t)i);
        jg_node *y = jg_take(x, i32_const(g, c[i].is, c[i].idx), c[i].axis);
        cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
        t_gradcheck(g, y, &x, 1);
        jg_graph_free(g);
    }
}

/* take -> scatter_add -> take: grad of grad through tanh and square. */
Test(index, take_second_order)
{
    for (int i = 0; i < 3; i++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", jg_shape(4, 4), 110 + (uint64_t)i);
        jg_node *idx = i32_const(g, jg_shape(2, 2), (int32_t[]){ 1, 3, 1, 0 });
        jg_node *t = jg_take(i == 2 ? jg_square(x) : x, idx, i == 1 ? 1 : 0);
        jg_node *y = jg_tanh(t);
        jg_node *d = grad_of(g, y, x);
        t_gradcheck(g, d, &x, 1);
        jg_graph_free(g);
    }
}

/* No gradient flows to the indices. */
Test(index, take_has_no_index_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    jg_node *idx = i32_const(g, jg_shape(2), (int32_t[]){ 0, 2 });
    jg_node *wrt[] = { x, idx }, *d[2];
    cr_assert_eq(jg_grad(g, jg_take(x, idx, 0), wrt, 2, d), JG_OK, "%s", jg_errmsg(g));
    cr_assert(d[0] && jg_node_ok(d[0]));
    cr_assert_null(d[1]);
    jg_graph_free(g);
}

/* ---- one_hot */

Test(index, one_hot_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *idx = i32_const(g, jg_shape(3), (int32_t[]){ 2, 0, 1 });
    jg_node *h = jg_one_hot(idx, 4, JG_F32);
    cr_assert_eq(jg_node_dtype(h), JG_F32);
    t_expect(h, jg_shape(3, 4), (double[]){ 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0 });
    jg_node *idx2 = i32_const(g, jg_shape(2, 1), (int32_t[]){ 1, 0 });
    jg_node *h2 = jg_one_hot(idx2, 2, JG_I32);
    cr_assert_eq(jg_node_dtype(h2), JG_I32);
    t_expect(h2, jg_shape(2, 1, 2), (double[]){ 0, 1, 1, 0 });
    jg_node *s = i32_const(g, JG_SCALAR, (int32_t[]){ 0 });
    t_expect(jg_one_hot(s, 1, JG_F64), jg_shape(1), (double[]){ 1 });
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

/* one_hot is a constant to autodiff: a loss through it differentiates fine w.r.t. x. */
Test(index, one_hot_has_no_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    jg_node *idx = i32_const(g, jg_shape(2), (int32_t[]){ 2, 0 });
    jg_node *h = jg_one_hot(idx, 3, JG_F64);
    jg_node *wrt[] = { x, idx }, *d[2];
    cr_assert_eq(jg_grad(g, jg_mul(h, x), wrt, 2, d), JG_OK, "%s", jg_errmsg(g));
    t_expect(d[0], jg_shape(3), (double[]){ 1, 0, 1 });
    cr_assert_null(d[1]);
    jg_graph_free(g);
}

/* ---- run-time index errors */

Test(index, take_index_out_of_range_at_run_time)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(10));
    jg_node *idx = jg_input(g, "idx", JG_I32, jg_shape(3));
    jg_node *y = jg_take(x, idx, 0);
    char msg[1024];
    cr_assert_eq(run_with_idx(g, y, (int32_t[]){ 1, 9, 0 }, 12, msg, sizeof msg), JG_OK, "%s",
                 msg);
    cr_assert_eq(run_with_idx(g, y, (int32_t[]){ 1, 12, 0 }, 12, msg, sizeof msg),
                 JG_ERR_RANGE);
    cr_assert(strstr(msg, "jg_take") && strstr(msg, "index 12 out of range [0, 10) on axis 0"),
              "%s", msg);
    /* no wraparound for negative indices */
    cr_assert_eq(run_with_idx(g, y, (int32_t[]){ -1, 0, 0 }, 12, msg, sizeof msg),
                 JG_ERR_RANGE);
    cr_assert(strstr(msg, "index -1 out of range [0, 10) on axis 0"), "%s", msg);
    jg_graph_free(g);
}

Test(index, take_index_error_on_axis_1_and_in_the_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 1);
    jg_node *idx = jg_input(g, "idx", JG_I32, jg_shape(2));
    jg_node *y = jg_take(x, idx, 1);
    char msg[1024];
    cr_assert_eq(run_with_idx(g, y, (int32_t[]){ 0, 3 }, 8, msg, sizeof msg), JG_ERR_RANGE);
    cr_assert(strstr(msg, "index 3 out of range [0, 3) on axis 1"), "%s", msg);
    /* the gradient alone (scatter_add) checks its indices too */
    jg_node *d = grad_of(g, y, x);
    cr_assert_eq(run_with_idx(g, d, (int32_t[]){ 2, 0 }, 8, msg, sizeof msg), JG_OK, "%s", msg);
    cr_assert_eq(run_with_idx(g, d, (int32_t[]){ 5, 0 }, 8, msg, sizeof msg), JG_ERR_RANGE);
    cr_assert(strstr(msg, "index 5 out of range [0, 3) on axis 1"), "%s", msg);
    jg_graph_free(g);
}

Test(index, one_hot_index_out_of_range_at_run_time)
{
    jg_graph *g = jg_graph_new();
    jg_node *idx = jg_input(g, "idx", JG_I32, jg_shape(2));
    jg_node *h = jg_one_hot(idx, 3, JG_F32);
    char msg[1024];
    cr_assert_eq(run_with_idx(g, h, (int32_t[]){ 2, 0 }, 8, msg, sizeof msg), JG_OK, "%s", msg);
    cr_assert_eq(run_with_idx(g, h, (int32_t[]){ 0, 3 }, 8, msg, sizeof msg), JG_ERR_RANGE);
    cr_assert(strstr(msg, "jg_one_hot") && strstr(msg, "index 3 out of range [0, 3)"), "%s",
              msg);
    cr_assert_eq(run_with_idx(g, h, (int32_t[]){ -2, 0 }, 8, msg, sizeof msg), JG_ERR_RANGE);
    cr_assert(strstr(msg, "index -2 out of range"), "%s", msg);
    jg_graph_free(g);
}

/* ---- misuse */

Test(index, slice_step_zero)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(5));
    cr_assert(!jg_node_ok(jg_slice(x, 0, 0, 5, 0)));
    t_assert_error(g, JG_ERR_ARG, "jg_slice: step is 0");
    t_assert_error(g, JG_ERR_ARG, "test_index.c:");
    jg_graph_free(g);
}

Test(index, slice_empty)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(10, 2));
    cr_assert(!jg_node_ok(jg_slice(x, 0, 5, 2, 1)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_slice: slice of axis 0 [5:2:1] is empty");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_slice(x, 1, 2, INT64_MAX, 1)));
    t_assert_error(g, JG_ERR_SHAPE, "slice of axis 1 [2::1] is empty");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_slice(x, -1, 0, 1, -1)));
    t_assert_error(g, JG_ERR_SHAPE, "slice of axis 1 [0:1:-1] is empty");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_slice(x, 0, -100, -11, 1)));
    t_assert_error(g, JG_ERR_SHAPE, "slice of axis 0 [-100:-11:1] is empty");
    jg_graph_free(g);
}

Test(index, slice_bad_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_slice(x, 2, 0, 1, 1)));
    t_assert_error(g, JG_ERR_ARG, "jg_slice: axis 2 out of range for [2,3]");
    jg_graph_clear_error(g);
    jg_node *s = t_const(g, JG_SCALAR, (double[]){ 1 });
    cr_assert(!jg_node_ok(jg_slice(s, 0, 0, 1, 1)));
    t_assert_error(g, JG_ERR_ARG, "axis 0 out of range for []");
    jg_graph_free(g);
}

Test(index, pad_negative_or_wrong_rank)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_pad(x, jg_shape(0, -1), jg_shape(0, 0), 0)));
    t_assert_error(g, JG_ERR_ARG, "jg_pad: padding of axis 1 is -1 before, 0 after: must be >= 0");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_pad(x, jg_shape(0, 0), jg_shape(-2, 0), 0)));
    t_assert_error(g, JG_ERR_ARG, "axis 0 is 0 before, -2 after");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_pad(x, jg_shape(1), jg_shape(1, 1), 0)));
    t_assert_error(g, JG_ERR_ARG, "before and after need 2 entries (operand [2,3]), got 1 and 2");
    jg_graph_free(g);
}

Test(index, concat_mismatches)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_iota(g, jg_shape(2, 3));
    jg_node *b = t_iota(g, jg_shape(3, 3));
    jg_node *ab[] = { a, b };
    cr_assert(jg_node_ok(jg_concat(ab, 2, 0)));
    cr_assert(!jg_node_ok(jg_concat(ab, 2, 1)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_concat: operand 1 is [3,3], operand 0 is [2,3]: only axis "
                                    "1 may differ");
    jg_graph_clear_error(g);
    jg_node *c = t_iota(g, jg_shape(2, 3, 1));
    jg_node *ac[] = { a, c };
    cr_assert(!jg_node_ok(jg_concat(ac, 2, 0)));
    t_assert_error(g, JG_ERR_SHAPE, "operand 1 is [2,3,1]");
    jg_graph_clear_error(g);
    jg_node *f = jg_cast(a, JG_F32);
    jg_node *af[] = { a, f };
    cr_assert(!jg_node_ok(jg_concat(af, 2, 0)));
    t_assert_error(g, JG_ERR_DTYPE, "dtypes differ: operand 0 is f64, operand 1 is f32");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_concat(ab, 2, 2)));
    t_assert_error(g, JG_ERR_ARG, "axis 2 out of range for [2,3]");
    jg_graph_clear_error(g);
    jg_node *an[] = { a, NULL };
    cr_assert(!jg_node_ok(jg_concat(an, 2, 0)));
    t_assert_error(g, JG_ERR_ARG, "jg_concat: operand 1 is NULL");
    /* nothing to concatenate: no graph to record on, but no crash and no NULL */
    cr_assert(!jg_node_ok(jg_concat(ab, 0, 0)));
    cr_assert(!jg_node_ok(jg_concat(NULL, 2, 0)));
    jg_graph_free(g);
}

Test(index, take_misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_iota(g, jg_shape(4, 3));
    jg_node *fidx = t_const(g, jg_shape(2), (double[]){ 0, 1 });
    cr_assert(!jg_node_ok(jg_take(x, fidx, 0)));
    t_assert_error(g, JG_ERR_DTYPE, "jg_take: indices must be i32, got f64");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_take(x, NULL, 0)));
    t_assert_error(g, JG_ERR_ARG, "jg_take: operand 1 is NULL");
    jg_graph_clear_error(g);
    jg_node *idx = i32_const(g, jg_shape(2), (int32_t[]){ 0, 1 });
    cr_assert(!jg_node_ok(jg_take(NULL, idx, 0)));
    t_assert_error(g, JG_ERR_ARG, "jg_take: operand 0 is NULL");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_take(x, idx, 2)));
    t_assert_error(g, JG_ERR_ARG, "axis 2 out of range for [4,3]");
    jg_graph_clear_error(g);
    /* too many dimensions in the result: 7 - 1 + 3 > 8 */
    jg_node *big = t_iota(g, jg_shape(1, 1, 1, 1, 1, 1, 2));
    jg_node *i3 = i32_const(g, jg_shape(1, 1, 1), (int32_t[]){ 0 });
    cr_assert(!jg_node_ok(jg_take(big, i3, 0)));
    t_assert_error(g, JG_ERR_SHAPE, "9 dimensions");
    jg_graph_clear_error(g);
    jg_graph *h = jg_graph_new();
    jg_node *other = i32_const(h, jg_shape(1), (int32_t[]){ 0 });
    cr_assert(!jg_node_ok(jg_take(x, other, 0)));
    t_assert_error(g, JG_ERR_ARG, "operand 1 belongs to another graph");
    jg_graph_free(h);
    jg_graph_free(g);
}

Test(index, one_hot_misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *idx = i32_const(g, jg_shape(2), (int32_t[]){ 0, 1 });
    cr_assert(!jg_node_ok(jg_one_hot(idx, 0, JG_F32)));
    t_assert_error(g, JG_ERR_ARG, "jg_one_hot: depth 0 is not >= 1");
    jg_graph_clear_error(g);
    jg_node *f = t_const(g, jg_shape(2), (double[]){ 0, 1 });
    cr_assert(!jg_node_ok(jg_one_hot(f, 3, JG_F32)));
    t_assert_error(g, JG_ERR_DTYPE, "indices must be i32, got f64");
    jg_graph_clear_error(g);
    cr_assert(!jg_node_ok(jg_one_hot(idx, 3, (jg_dtype)7)));
    t_assert_error(g, JG_ERR_DTYPE, "unknown dtype 7");
    jg_graph_clear_error(g);
    jg_node *big = i32_const(g, jg_shape(1, 1, 1, 1, 1, 1, 1, 1), (int32_t[]){ 0 });
    cr_assert(!jg_node_ok(jg_one_hot(big, 2, JG_F32)));
    t_assert_error(g, JG_ERR_SHAPE, "9 dimensions");
    jg_graph_free(g);
}

Test(index, null_and_poisoned_operands)
{
    jg_graph *g = jg_graph_new();
    cr_assert(!jg_node_ok(jg_slice(NULL, 0, 0, 1, 1)));
    cr_assert(!jg_node_ok(jg_pad(NULL, jg_shape(1), jg_shape(1), 0)));
    cr_assert(!jg_node_ok(jg_one_hot(NULL, 3, JG_F32)));
    cr_assert_eq(jg_graph_status(g), JG_OK);
    jg_node *x = t_iota(g, jg_shape(4));
    jg_node *bad = jg_slice(x, 0, 0, 4, 0);
    t_assert_error(g, JG_ERR_ARG, "step is 0");
    cr_assert(!jg_node_ok(jg_slice(bad, 0, 0, 1, 1)));
    cr_assert(!jg_node_ok(jg_pad(bad, JG_SCALAR, JG_SCALAR, 0)));
    jg_node *xs[] = { x, bad };
    cr_assert(!jg_node_ok(jg_concat(xs, 2, 0)));
    t_assert_error(g, JG_ERR_ARG, "step is 0");
    jg_graph_free(g);
}
