/* Misuse of the public API: every case must return a status (or a poisoned node) with a
 * precise message, and nothing may abort or leak. Builders record the FIRST error on the
 * graph as "file:line: jg_<op>: reason"; programs keep their last error on the handle. */
#include "support/support.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(errors);

/* ---------------------------------------------------------------- helpers */

/* Asserts a status returned by a program call and the program's message. */
static void assert_program_error(jg_program *p, jg_status got, jg_status want, const char *part)
{
    cr_assert_eq(got, want, "status %s (want %s), message: %s", jg_status_str(got),
                 jg_status_str(want), jg_errmsg(p));
    cr_assert(strstr(jg_errmsg(p), part), "message '%s' lacks '%s'", jg_errmsg(p), part);
}

/* Asserts n is a poisoned node (never NULL) and the graph's error is (st, part). */
static void assert_poisoned(jg_graph *g, jg_node *n, jg_status st, const char *part)
{
    cr_assert_not_null(n, "a builder returned NULL");
    cr_assert(!jg_node_ok(n), "node is not poisoned");
    t_assert_error(g, st, part);
}

/* A graph with f32 input x [2,3] and a program computing exp(x). */
static jg_program *small_program(jg_graph *g)
{
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_node *y = jg_exp(x);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    return p;
}

/* ---------------------------------------------------------------- shape and dtype errors */

Test(errors, add_shape_mismatch)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_input(g, "a", JG_F32, jg_shape(2, 3));
    jg_node *b = jg_input(g, "b", JG_F32, jg_shape(4));
    jg_node *s = jg_add(a, b);
    assert_poisoned(g, s, JG_ERR_SHAPE, "jg_add");
    t_assert_error(g, JG_ERR_SHAPE, "[2,3]");
    t_assert_error(g, JG_ERR_SHAPE, "[4]");
    t_assert_error(g, JG_ERR_SHAPE, "do not broadcast");
    jg_graph_free(g);
}

Test(errors, binary_dtype_mismatch)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_input(g, "a", JG_F32, jg_shape(3));
    jg_node *b = jg_input(g, "b", JG_F64, jg_shape(3));
    assert_poisoned(g, jg_mul(a, b), JG_ERR_DTYPE, "jg_mul: dtypes differ: f32 and f64");
    jg_graph_free(g);
}

Test(errors, i32_into_float_ops)
{
    /* each op on its own graph, since only the first error is kept */
    for (int op = 0; op < 6; op++) {
        jg_graph *g = jg_graph_new();
        jg_node *i = jg_input(g, "i", JG_I32, jg_shape(4));
        jg_node *y = op == 0 ? jg_exp(i) : op == 1 ? jg_log(i) : op == 2 ? jg_sigmoid(i)
                   : op == 3 ? jg_relu(i) : op == 4 ? jg_pow(i, 2) : jg_mean(i, JG_ALL_AXES, false);
        const char *name = op == 0 ? "jg_exp" : op == 1 ? "jg_log" : op == 2 ? "jg_sigmoid"
                         : op == 3 ? "jg_relu" : op == 4 ? "jg_pow" : "jg_mean";
        assert_poisoned(g, y, JG_ERR_DTYPE, name);
        t_assert_error(g, JG_ERR_DTYPE, "got i32 (use jg_cast)");
        jg_graph_free(g);
    }
}

Test(errors, matmul_inner_dimensions_with_caller_location)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(128, 784));
    jg_node *w = jg_param(g, "w", jg_shape(785, 256), jg_zeros());
    int line = __LINE__; jg_node *h = jg_matmul(x, w); /* one line: __LINE__ is the call's */
    assert_poisoned(g, h, JG_ERR_SHAPE, "inner dimensions differ: [128,784] x [785,256]");
    const char *msg = jg_errmsg(g);
    cr_assert_eq(strncmp(msg, "test_errors.c:", 14), 0, "message '%s' does not start with the "
                 "caller's file", msg);
    char want[160];
    snprintf(want, sizeof want,
             "test_errors.c:%d: jg_matmul: inner dimensions differ: [128,784] x [785,256]", line);
    cr_assert_str_eq(msg, want);
    jg_graph_free(g);
}

Test(errors, matmul_needs_2d)
{
    jg_graph *g = jg_graph_new();
    jg_node *v = jg_input(g, "v", JG_F32, jg_shape(3));
    jg_node *m = jg_input(g, "m", JG_F32, jg_shape(3, 2));
    assert_poisoned(g, jg_matmul(v, m), JG_ERR_SHAPE, "at least 2-D: [3] x [3,2]");
    jg_graph_free(g);
}

Test(errors, where_condition_does_not_broadcast)
{
    jg_graph *g = jg_graph_new();
    jg_node *c = jg_input(g, "c", JG_F32, jg_shape(4));
    jg_node *a = jg_input(g, "a", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_where(c, a, a), JG_ERR_SHAPE,
                    "jg_where: condition [4] does not broadcast with operands [2,3]");
    jg_graph_free(g);
}

Test(errors, clamp_bounds_reversed)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3));
    assert_poisoned(g, jg_clamp(x, 1, -1), JG_ERR_ARG, "jg_clamp: lower bound 1 above upper "
                    "bound -1");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(3));
    assert_poisoned(g, jg_clamp(x, NAN, 1), JG_ERR_ARG, "jg_clamp");
    jg_graph_free(g);
}

Test(errors, cast_to_unknown_dtype)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3));
    assert_poisoned(g, jg_cast(x, (jg_dtype)7), JG_ERR_DTYPE, "jg_cast: unknown dtype 7");
    jg_graph_free(g);
}

Test(errors, loss_operands)
{
    jg_graph *g = jg_graph_new();
    jg_node *logits = jg_input(g, "logits", JG_F32, jg_shape(4, 3));
    jg_node *flabels = jg_input(g, "fl", JG_F32, jg_shape(4));
    assert_poisoned(g, jg_cross_entropy(logits, flabels), JG_ERR_DTYPE,
                    "labels must be i32 class indices, got f32");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_node *a = jg_input(g, "a", JG_F32, jg_shape(4, 3));
    jg_node *b = jg_input(g, "b", JG_F32, jg_shape(3, 4));
    assert_poisoned(g, jg_mse_loss(a, b), JG_ERR_SHAPE, "shapes differ: [4,3] and [3,4]");
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- axes, slices, reshapes */

Test(errors, reduction_bad_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_sum(x, jg_axes(2), false), JG_ERR_ARG,
                    "jg_sum: axis 2 out of range for [2,3]");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_mean(x, jg_axes(-3), true), JG_ERR_ARG, "axis -3 out of range");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_max(x, jg_axes(0, -2), false), JG_ERR_ARG, "axis 0 repeated");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_argmax(x, 5), JG_ERR_ARG, "jg_argmax: axis 5 out of range");
    jg_graph_free(g);
}

Test(errors, softmax_bad_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_softmax(x, 2), JG_ERR_ARG, "jg_softmax: axis 2 out of range for [2,3]");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_log_softmax(x, -3), JG_ERR_ARG, "jg_log_softmax: axis -3 out of range");
    jg_graph_free(g);
}

Test(errors, slice_step_zero_and_bad_axis)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 5));
    assert_poisoned(g, jg_slice(x, 1, 0, 3, 0), JG_ERR_ARG, "jg_slice: step is 0");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(4, 5));
    assert_poisoned(g, jg_slice(x, 2, 0, 3, 1), JG_ERR_ARG, "jg_slice: axis 2 out of range");
    jg_graph_free(g);
}

Test(errors, reshape_bad_target)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_reshape(x, jg_shape(4)), JG_ERR_SHAPE,
                    "jg_reshape: cannot reshape [2,3] (6 elements) to [4]");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_reshape(x, jg_shape(-1, -1)), JG_ERR_SHAPE,
                    "at most one dimension may be -1");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    assert_poisoned(g, jg_reshape(x, jg_shape(4, -1)), JG_ERR_SHAPE, "not divisible");
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- leaves */

Test(errors, duplicate_names)
{
    jg_graph *g = jg_graph_new();
    cr_assert(jg_node_ok(jg_input(g, "x", JG_F32, jg_shape(3))));
    assert_poisoned(g, jg_input(g, "x", JG_F32, jg_shape(3)), JG_ERR_ARG,
                    "jg_input: name 'x' is already used by an input");
    jg_graph_free(g);
    g = jg_graph_new();
    cr_assert(jg_node_ok(jg_param(g, "w", jg_shape(3), jg_zeros())));
    /* (matched loosely: leaves.c says "an parameter" today) */
    assert_poisoned(g, jg_param(g, "w", jg_shape(2), jg_zeros()), JG_ERR_ARG,
                    "jg_param: name 'w' is already used by a");
    t_assert_error(g, JG_ERR_ARG, "parameter");
    cr_assert_eq(jg_param_count(g), 1, "the failed parameter was stored");
    jg_graph_free(g);
    /* inputs and parameters share one namespace */
    g = jg_graph_new();
    jg_param(g, "w", jg_shape(3), jg_zeros());
    assert_poisoned(g, jg_input(g, "w", JG_F32, jg_shape(3)), JG_ERR_ARG,
                    "jg_input: name 'w' is already used by a");
    t_assert_error(g, JG_ERR_ARG, "parameter");
    jg_graph_free(g);
}

Test(errors, missing_names)
{
    jg_graph *g = jg_graph_new();
    assert_poisoned(g, jg_input(g, NULL, JG_F32, jg_shape(3)), JG_ERR_ARG,
                    "jg_input: name is NULL or empty");
    jg_graph_free(g);
    g = jg_graph_new();
    assert_poisoned(g, jg_param(g, "", jg_shape(3), jg_zeros()), JG_ERR_ARG,
                    "jg_param: name is NULL or empty");
    jg_graph_free(g);
}

Test(errors, i32_param)
{
    jg_graph *g = jg_graph_new();
    assert_poisoned(g, jg_param_as(g, "k", JG_I32, jg_shape(3), jg_zeros()), JG_ERR_DTYPE,
                    "jg_param: 'k': parameters are f32 or f64, not i32");
    cr_assert_eq(jg_param_count(g), 0);
    cr_assert_null(jg_param_find(g, "k"));
    jg_graph_free(g);
}

Test(errors, unknown_dtype_and_init)
{
    jg_graph *g = jg_graph_new();
    assert_poisoned(g, jg_input(g, "x", (jg_dtype)9, jg_shape(3)), JG_ERR_DTYPE,
                    "jg_input: unknown dtype 9");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_init bad = { .kind = (jg_init_kind)42 };
    assert_poisoned(g, jg_param(g, "w", jg_shape(3), bad), JG_ERR_ARG,
                    "unknown initialiser kind 42");
    jg_graph_free(g);
}

Test(errors, invalid_shapes)
{
    struct {
        jg_shape s;
        jg_status st;
        const char *part;
    } cases[] = {
        { jg_shape(2, 0), JG_ERR_SHAPE, "invalid shape [2,0]" },
        { jg_shape(-1, 3), JG_ERR_SHAPE, "invalid shape [-1,3]" },
        { { .ndim = 9, .dim = { 1, 1, 1, 1, 1, 1, 1, 1 } }, JG_ERR_SHAPE, "9 dimensions (at most 8)" },
        { { .ndim = -1 }, JG_ERR_SHAPE, "-1 dimensions" },
    };
    for (int i = 0; i < 4; i++) {
        /* input, param, const and fill all validate their shapes */
        for (int leaf = 0; leaf < 4; leaf++) {
            jg_graph *g = jg_graph_new();
            double data[8] = { 0 };
            jg_node *n = leaf == 0   ? jg_input(g, "x", JG_F32, cases[i].s)
                         : leaf == 1 ? jg_param(g, "w", cases[i].s, jg_zeros())
                         : leaf == 2 ? jg_const(g, JG_F64, cases[i].s, data)
                                     : jg_fill(g, JG_F32, cases[i].s, 1.0);
            assert_poisoned(g, n, cases[i].st, cases[i].part);
            jg_graph_free(g);
        }
    }
}

/* Results far larger than any operand (broadcasting, one_hot, pad, matmul) are caught when
 * built, with products computed without int64 overflow: [2^22,2^21,2^21] has 2^64 elements,
 * which would wrap to 0. */
Test(errors, shapes_too_large)
{
    const int64_t M = (int64_t)1 << 20, T = M * M; /* T = 2^40 */
    struct {
        const char *what;
        jg_status st;
        const char *part;
    } cases[] = {
        { "input", JG_ERR_SHAPE,
          "jg_input: shape [1099511627776,16777216] is too large (more than 2^40 elements)" },
        { "mul", JG_ERR_SHAPE,
          "jg_mul: result shape [4194304,2097152,1] is too large (more than 2^40 elements)" },
        { "where", JG_ERR_SHAPE,
          "jg_where: result shape [4194304,2097152,2097152] is too large" },
        { "one_hot", JG_ERR_SHAPE,
          "jg_one_hot: result shape [1048576,2147483647] is too large (more than 2^40" },
        { "pad", JG_ERR_SHAPE, "jg_pad: padded shape [1099511627776,16777216] is too large" },
        { "broadcast_to", JG_ERR_SHAPE,
          "jg_broadcast_to: invalid target shape [1099511627776,16777216]" },
        { "matmul", JG_ERR_SHAPE,
          "jg_matmul: result shape [2097152,2097152] is too large (more than 2^40 elements)" },
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        jg_graph *g = jg_graph_new();
        jg_node *a = jg_input(g, "a", JG_F32, jg_shape(4 * M, 1, 1));
        jg_node *b = jg_input(g, "b", JG_F32, jg_shape(1, 2 * M, 1));
        jg_node *c = jg_input(g, "c", JG_F32, jg_shape(1, 1, 2 * M));
        jg_node *one = jg_input(g, "one", JG_F32, jg_shape(1, 1));
        cr_assert(jg_node_ok(c), "%s", jg_errmsg(g));
        jg_node *n = NULL;
        switch (i) {
        case 0: n = jg_input(g, "x", JG_F32, jg_shape(T, 16 * M)); break;
        case 1: n = jg_mul(a, b); break;
        case 2: n = jg_where(a, b, c); break;
        case 3: n = jg_one_hot(jg_input(g, "i", JG_I32, jg_shape(M)), INT_MAX, JG_F32); break;
        case 4: n = jg_pad(one, jg_shape(T - 1, 0), jg_shape(0, 16 * M - 1), 0); break;
        case 5: n = jg_broadcast_to(one, jg_shape(T, 16 * M)); break;
        case 6:
            n = jg_matmul(jg_input(g, "l", JG_F32, jg_shape(2 * M, 1)),
                          jg_input(g, "r", JG_F32, jg_shape(1, 2 * M)));
            break;
        }
        cr_assert_not_null(n, "%s", cases[i].what);
        cr_assert(!jg_node_ok(n), "%s: not poisoned", cases[i].what);
        t_assert_error(g, cases[i].st, cases[i].part);
        /* the error is sticky: compiling fails with the same message */
        jg_node *s = jg_sum(a, JG_ALL_AXES, false);
        cr_assert_null(jg_compile(g, &s, 1, NULL), "%s", cases[i].what);
        t_assert_error(g, cases[i].st, cases[i].part);
        jg_graph_free(g);
    }
    /* jg_shape_numel saturates instead of overflowing */
    cr_assert_eq(jg_shape_numel(jg_shape(T, 16 * M)), INT64_MAX);
    cr_assert_eq(jg_shape_numel(jg_shape(INT64_MAX, 2)), INT64_MAX);
    cr_assert_eq(jg_shape_numel(jg_shape(4 * M, 2 * M, 2 * M)), INT64_MAX);
    cr_assert_eq(jg_shape_numel(jg_shape(T, 1)), T);
    cr_assert_eq(jg_shape_numel(jg_shape(2, 3)), 6);
    cr_assert_eq(jg_shape_numel(JG_SCALAR), 1);
    /* exactly 2^40 elements is still a valid shape (nothing is allocated at build time) */
    jg_graph *g = jg_graph_new();
    cr_assert(jg_node_ok(jg_input(g, "x", JG_F32, jg_shape(T, 1))), "%s", jg_errmsg(g));
    cr_assert(!jg_node_ok(jg_input(g, "y", JG_F32, jg_shape(T, 2))));
    t_assert_error(g, JG_ERR_SHAPE, "jg_input: shape [1099511627776,2] is too large");
    jg_graph_free(g);
}

Test(errors, const_null_data)
{
    jg_graph *g = jg_graph_new();
    assert_poisoned(g, jg_const(g, JG_F32, jg_shape(3), NULL), JG_ERR_ARG,
                    "jg_const: data is NULL");
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- NULL and foreign operands */

Test(errors, null_graph_to_builders)
{
    float data[3] = { 1, 2, 3 };
    jg_node *leaves[] = {
        jg_input(NULL, "x", JG_F32, jg_shape(3)),
        jg_param(NULL, "w", jg_shape(3), jg_zeros()),
        jg_param_as(NULL, "k", JG_I32, jg_shape(3), jg_zeros()),
        jg_const(NULL, JG_F32, jg_shape(3), data),
        jg_scalar(NULL, JG_F32, 1),
        jg_fill(NULL, JG_F32, jg_shape(3), 1),
    };
    for (int i = 0; i < (int)(sizeof leaves / sizeof leaves[0]); i++) {
        cr_assert_not_null(leaves[i], "leaf builder %d returned NULL", i);
        cr_assert(!jg_node_ok(leaves[i]), "leaf builder %d is not poisoned", i);
        cr_assert_null(jg_node_graph(leaves[i]));
        cr_assert_eq(jg_node_shape(leaves[i]).ndim, 0);
    }
    /* builders on these (or on NULL) keep returning poison, never NULL, never crashing */
    jg_node *p = leaves[0];
    jg_node *ops[] = {
        jg_exp(p), jg_exp(NULL), jg_add(p, NULL), jg_add(NULL, NULL), jg_where(NULL, p, p),
        jg_cast(NULL, JG_F64), jg_scale(NULL, 2), jg_shift(p, 1), jg_scalar_like(p, 3),
        jg_matmul(NULL, p), jg_sum(p, JG_ALL_AXES, false), jg_argmax(NULL, 0),
        jg_softmax(NULL, 0), jg_cross_entropy(p, NULL), jg_mse_loss(NULL, NULL),
        jg_reshape(NULL, jg_shape(3)), jg_transpose(p), jg_slice(NULL, 0, 0, 1, 1),
        jg_concat(NULL, 0, 0), jg_take(p, NULL, 0), jg_one_hot(NULL, 3, JG_F32),
        jg_pad(p, jg_shape(1), jg_shape(1), 0), jg_broadcast_to(NULL, jg_shape(2, 3)),
    };
    for (int i = 0; i < (int)(sizeof ops / sizeof ops[0]); i++) {
        cr_assert_not_null(ops[i], "builder %d returned NULL", i);
        cr_assert(!jg_node_ok(ops[i]), "builder %d is not poisoned", i);
    }
}

/* jg_scalar_like is a real builder: a NULL or poisoned x gives poison, not a valid scalar. */
Test(errors, scalar_like_of_poison_is_poison)
{
    jg_node *orphan = jg_scalar_like(NULL, 1);
    cr_assert_not_null(orphan);
    cr_assert(!jg_node_ok(orphan));
    cr_assert(!jg_node_ok(jg_scalar_like(orphan, 2)));
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(2, 3));
    jg_node *bad = jg_matmul(x, x);
    int nodes = jg_graph_node_count(g);
    assert_poisoned(g, jg_scalar_like(bad, 1), JG_ERR_SHAPE, "jg_matmul: inner dimensions");
    cr_assert_eq(jg_graph_node_count(g), nodes, "no node was added for the poisoned x");
    jg_graph_clear_error(g);
    jg_node *s = jg_scalar_like(x, 2.5);
    cr_assert(jg_node_ok(s), "%s", jg_errmsg(g));
    cr_assert_eq(jg_node_dtype(s), JG_F64);
    cr_assert_eq(jg_node_shape(s).ndim, 0);
    double *v = t_eval(s);
    cr_assert_eq(v[0], 2.5);
    free(v);
    jg_graph_free(g);
}

Test(errors, null_operand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3));
    assert_poisoned(g, jg_add(x, NULL), JG_ERR_ARG, "jg_add: operand 1 is NULL");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(3));
    assert_poisoned(g, jg_where(NULL, x, x), JG_ERR_ARG, "jg_where: operand 0 is NULL");
    jg_graph_free(g);
}

Test(errors, operands_from_two_graphs)
{
    jg_graph *g1 = jg_graph_new(), *g2 = jg_graph_new();
    jg_node *a = jg_input(g1, "a", JG_F32, jg_shape(3));
    jg_node *b = jg_input(g2, "b", JG_F32, jg_shape(3));
    assert_poisoned(g1, jg_add(a, b), JG_ERR_ARG, "jg_add: operand 1 belongs to another graph");
    cr_assert_eq(jg_graph_status(g2), JG_OK, "the other graph was touched: %s", jg_errmsg(g2));
    /* compiling or differentiating a foreign node is refused too */
    jg_graph_clear_error(g1);
    cr_assert_null(jg_compile(g1, &b, 1, NULL));
    t_assert_error(g1, JG_ERR_ARG, "jg_compile: output 0 is from another graph");
    jg_graph_clear_error(g1);
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g1, jg_exp(a), &b, 1, &d), JG_ERR_ARG);
    t_assert_error(g1, JG_ERR_ARG, "jg_grad: wrt 0 belongs to another graph");
    jg_graph_free(g1);
    jg_graph_free(g2);
}

/* ---------------------------------------------------------------- the first error is kept */

Test(errors, use_after_error_keeps_first)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_input(g, "a", JG_F32, jg_shape(2, 3));
    jg_node *b = jg_input(g, "b", JG_F32, jg_shape(4));
    int line = __LINE__; jg_node *bad = jg_add(a, b);
    char first[512];
    snprintf(first, sizeof first, "%s", jg_errmsg(g));
    char where[64];
    snprintf(where, sizeof where, "test_errors.c:%d: jg_add:", line);
    cr_assert(strstr(first, where), "message '%s' lacks '%s'", first, where);

    /* valid builders on a poisoned node return poison and record nothing new */
    jg_node *e = jg_exp(bad);
    jg_node *m = jg_mul(a, jg_relu(e));
    cr_assert(!jg_node_ok(e) && !jg_node_ok(m));
    /* a second, different mistake does not replace the first message */
    jg_node *c = jg_input(g, "c", JG_F64, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_sub(a, c)));
    cr_assert_str_eq(jg_errmsg(g), first);
    cr_assert_eq(jg_graph_status(g), JG_ERR_SHAPE);
    /* a valid node is still built... */
    jg_node *ok = jg_exp(a);
    cr_assert(jg_node_ok(ok));
    /* ...but compiling, differentiating or checking the graph fails with the first error */
    cr_assert_null(jg_compile(g, &ok, 1, NULL));
    cr_assert_str_eq(jg_errmsg(g), first);
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, ok, &a, 1, &d), JG_ERR_SHAPE);
    jg_gradcheck_report r;
    cr_assert_eq(jg_gradcheck(g, ok, &a, 1, NULL, &r), JG_ERR_SHAPE);
    cr_assert(strstr(r.message, where), "report '%s' lacks '%s'", r.message, where);
    cr_assert_null(jg_compile_train(g, ok, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }));
    cr_assert_str_eq(jg_errmsg(g), first);
    jg_graph_free(g);
}

Test(errors, clear_error)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(3));
    jg_node *bad = jg_add(x, jg_input(g, "y", JG_F64, jg_shape(2)));
    cr_assert_eq(jg_graph_status(g), JG_ERR_SHAPE);
    jg_graph_clear_error(g);
    cr_assert_eq(jg_graph_status(g), JG_OK);
    cr_assert_str_eq(jg_errmsg(g), "");
    /* poisoned nodes stay poisoned; the graph works again */
    cr_assert(!jg_node_ok(bad));
    cr_assert(!jg_node_ok(jg_exp(bad)));
    cr_assert_eq(jg_graph_status(g), JG_OK, "a builder on poison recorded: %s", jg_errmsg(g));
    jg_node *y = jg_scale(x, 2);
    double v[3] = { 1, 2, 3 };
    double *got = t_eval_with(y, &(jg_binding){ "x", v, sizeof v }, 1);
    t_assert_close(got, (double[]){ 2, 4, 6 }, 3, 0);
    free(got);
    /* a poisoned output is refused with its own message */
    cr_assert_null(jg_compile(g, &bad, 1, NULL));
    t_assert_error(g, JG_ERR_STATE, "jg_compile: output 0 is poisoned by an earlier error");
    jg_graph_clear_error(g);
    jg_node *d = NULL;
    cr_assert_eq(jg_grad(g, jg_exp(x), &bad, 1, &d), JG_ERR_STATE);
    t_assert_error(g, JG_ERR_STATE, "jg_grad: wrt 0 is poisoned");
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- programs */

Test(errors, program_set_unknown_input)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = small_program(g);
    float v[6] = { 0 };
    assert_program_error(p, jg_program_set(p, "nope", v, sizeof v), JG_ERR_ARG,
                         "jg_program_set: the graph has no input named 'nope'");
    assert_program_error(p, jg_program_set(p, NULL, v, sizeof v), JG_ERR_ARG, "name is NULL");
    assert_program_error(p, jg_program_set(p, "x", NULL, sizeof v), JG_ERR_ARG, "data is NULL");
    jg_program_free(p);
    jg_graph_free(g);
}

Test(errors, program_set_wrong_size)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = small_program(g);
    double v[6] = { 0 }; /* f64 data for an f32 input: twice the bytes */
    assert_program_error(p, jg_program_set(p, "x", v, sizeof v), JG_ERR_ARG,
                         "input 'x' is f32[2,3] = 24 bytes, given 48");
    /* the failed binding does not count as set */
    assert_program_error(p, jg_program_run(p), JG_ERR_STATE, "input 'x' is not set");
    jg_program_free(p);
    jg_graph_free(g);
}

Test(errors, program_run_with_unset_input)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3));
    jg_node *y = jg_input(g, "y", JG_F32, jg_shape(3));
    jg_node *s = jg_add(x, y);
    jg_program *p = jg_compile(g, &s, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    float v[3] = { 1, 2, 3 };
    cr_assert_eq(jg_program_set(p, "x", v, sizeof v), JG_OK);
    assert_program_error(p, jg_program_run(p), JG_ERR_STATE,
                         "jg_program_run: input 'y' is not set");
    /* binding it makes the run succeed and clears the message */
    cr_assert_eq(jg_program_set(p, "y", v, sizeof v), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_str_eq(jg_errmsg(p), "");
    jg_program_free(p);
    jg_graph_free(g);
}

Test(errors, program_get_before_run)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = small_program(g);
    float out[6];
    assert_program_error(p, jg_program_get(p, 0, out, sizeof out), JG_ERR_STATE,
                         "jg_program_get: the program has not run yet");
    jg_program_free(p);
    jg_graph_free(g);
}

Test(errors, program_get_wrong_size_or_index)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = small_program(g);
    float in[6] = { 0 }, out[6];
    cr_assert_eq(jg_program_set(p, "x", in, sizeof in), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    assert_program_error(p, jg_program_get(p, 0, out, 5 * sizeof(float)), JG_ERR_ARG,
                         "output 0 is f32[2,3] = 24 bytes, given 20");
    assert_program_error(p, jg_program_get(p, 0, NULL, sizeof out), JG_ERR_ARG,
                         "NULL buffer");
    assert_program_error(p, jg_program_get(p, 1, out, sizeof out), JG_ERR_ARG,
                         "output 1 out of range (the program has 1)");
    assert_program_error(p, jg_program_get(p, -1, out, sizeof out), JG_ERR_ARG,
                         "output -1 out of range");
    /* the queries are total too */
    cr_assert_eq(jg_program_output_shape(p, 7).ndim, 0);
    cr_assert_eq(jg_program_output_dtype(p, -2), JG_F32);
    cr_assert_eq(jg_program_output_count(NULL), 0);
    /* and a correct get still works after the mistakes */
    cr_assert_eq(jg_program_get(p, 0, out, sizeof out), JG_OK, "%s", jg_errmsg(p));
    cr_assert_float_eq(out[0], 1.0f, 0);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(errors, compile_with_no_outputs)
{
    jg_graph *g = jg_graph_new();
    jg_input(g, "x", JG_F32, jg_shape(3));
    cr_assert_null(jg_compile(g, NULL, 0, NULL));
    t_assert_error(g, JG_ERR_ARG, "jg_compile: no outputs");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3));
    cr_assert_null(jg_compile(g, &x, -1, NULL));
    t_assert_error(g, JG_ERR_ARG, "jg_compile: no outputs");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(3));
    cr_assert_null(jg_compile(g, &x, 1, &(jg_opts){ .executor = (jg_executor)9 }));
    t_assert_error(g, JG_ERR_ARG, "jg_compile: unknown executor 9");
    jg_graph_free(g);
    g = jg_graph_new();
    jg_node *outs[2] = { jg_input(g, "x", JG_F32, jg_shape(3)), NULL };
    cr_assert_null(jg_compile(g, outs, 2, NULL));
    t_assert_error(g, JG_ERR_ARG, "jg_compile: output 1 is NULL");
    jg_graph_free(g);
}

Test(errors, update_targets)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_node *w = jg_param(g, "w", jg_shape(2, 3), jg_zeros());
    jg_node *y = jg_add(x, w);
    jg_update to_input = { x, y };
    cr_assert_null(jg_compile(g, &y, 1, &(jg_opts){ .updates = &to_input, .n_updates = 1 }));
    t_assert_error(g, JG_ERR_ARG, "jg_compile: update 0 targets");
    t_assert_error(g, JG_ERR_ARG, "op input, not a parameter");
    jg_graph_clear_error(g);
    jg_update wrong_shape = { w, jg_sum(y, jg_axes(0), false) };
    cr_assert_null(jg_compile(g, &y, 1, &(jg_opts){ .updates = &wrong_shape, .n_updates = 1 }));
    t_assert_error(g, JG_ERR_SHAPE, "parameter 'w' is f32[2,3], value is f32[3]");
    jg_graph_clear_error(g);
    jg_update wrong_dtype = { w, jg_cast(y, JG_F64) };
    cr_assert_null(jg_compile(g, &y, 1, &(jg_opts){ .updates = &wrong_dtype, .n_updates = 1 }));
    t_assert_error(g, JG_ERR_SHAPE, "value is f64[2,3]");
    jg_graph_clear_error(g);
    cr_assert_null(jg_compile(g, &y, 1, &(jg_opts){ .updates = NULL, .n_updates = 2 }));
    t_assert_error(g, JG_ERR_ARG, "updates is NULL");
    jg_graph_free(g);
}

Test(errors, runtime_range_error)
{
    jg_graph *g = jg_graph_new();
    jg_node *logits = jg_input(g, "logits", JG_F32, jg_shape(2, 3));
    jg_node *labels = jg_input(g, "labels", JG_I32, jg_shape(2));
    jg_node *loss = jg_cross_entropy(logits, labels);
    jg_program *p = jg_compile(g, &loss, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    float l[6] = { 0 };
    int32_t y[2] = { 1, 5 };
    cr_assert_eq(jg_program_set(p, "logits", l, sizeof l), JG_OK);
    cr_assert_eq(jg_program_set(p, "labels", y, sizeof y), JG_OK);
    assert_program_error(p, jg_program_run(p), JG_ERR_RANGE, "label 5 out of range [0, 3)");
    /* the failed run leaves nothing to read */
    float out;
    assert_program_error(p, jg_program_get(p, 0, &out, sizeof out), JG_ERR_STATE,
                         "has not run");
    jg_program_free(p);

    jg_node *w = jg_input(g, "w", JG_F32, jg_shape(4, 2));
    jg_node *ids = jg_input(g, "ids", JG_I32, jg_shape(3));
    jg_node *e = jg_take(w, ids, 0);
    p = jg_compile(g, &e, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    float wv[8] = { 0 };
    int32_t iv[3] = { 0, -1, 2 };
    cr_assert_eq(jg_program_set(p, "w", wv, sizeof wv), JG_OK);
    cr_assert_eq(jg_program_set(p, "ids", iv, sizeof iv), JG_OK);
    assert_program_error(p, jg_program_run(p), JG_ERR_RANGE, "index -1 out of range [0, 4)");
    jg_program_free(p);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- parameter store */

/* Store accessors report misuse by status and jg_errmsg, without poisoning the graph. */
static void assert_note(jg_graph *g, jg_status got, const char *part)
{
    cr_assert_eq(got, JG_ERR_ARG, "status %s", jg_status_str(got));
    cr_assert_eq(jg_graph_status(g), JG_OK, "the graph was poisoned: %s", jg_errmsg(g));
    cr_assert(strstr(jg_errmsg(g), part), "message '%s' lacks '%s'", jg_errmsg(g), part);
}

Test(errors, param_get_set_misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2, 3), jg_zeros());
    float buf[6] = { 0 };
    assert_note(g, jg_param_get(g, "nope", buf, sizeof buf),
                "jg_param_get: no parameter named 'nope'");
    assert_note(g, jg_param_set(g, "w", buf, 2 * sizeof buf),
                "jg_param_set: parameter 'w' holds 24 bytes, given 48");
    assert_note(g, jg_param_get(g, "w", buf, 4), "holds 24 bytes, given 4");
    assert_note(g, jg_param_set(g, "nope", buf, sizeof buf),
                "jg_param_set: no parameter named 'nope'");
    assert_note(g, jg_param_get(g, NULL, buf, sizeof buf), "jg_param_get: name is NULL");
    assert_note(g, jg_param_get(g, "w", NULL, sizeof buf),
                "jg_param_get: buffer for parameter 'w' is NULL");
    assert_note(g, jg_param_set(g, "w", NULL, sizeof buf), "jg_param_set: buffer");
    assert_note(g, jg_param_freeze(jg_input(g, "x", JG_F32, jg_shape(1)), true),
                "jg_param_freeze: node %1 (op input) is not a parameter");
    /* NULL graph or node: a status, and no graph to write to */
    cr_assert_eq(jg_param_get(NULL, "w", buf, sizeof buf), JG_ERR_ARG);
    cr_assert_eq(jg_param_set(NULL, "w", buf, sizeof buf), JG_ERR_ARG);
    cr_assert_eq(jg_param_freeze(NULL, true), JG_ERR_ARG);
    cr_assert_null(jg_param_find(g, "nope"));
    cr_assert_null(jg_param_find(g, NULL));
    cr_assert_null(jg_param_at(g, 5));
    cr_assert_null(jg_param_at(g, -1));
    /* after all that, the graph still compiles and the store still works */
    jg_node *y = jg_sum(w, JG_ALL_AXES, false);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_param_set(g, "w", buf, sizeof buf), JG_OK);
    /* a sticky error takes precedence over the last message; clearing forgets both */
    jg_matmul(w, w);
    cr_assert_eq(jg_param_get(g, "nope", buf, sizeof buf), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_SHAPE, "jg_matmul: inner dimensions");
    jg_graph_clear_error(g);
    cr_assert_str_eq(jg_errmsg(g), "");
    jg_program_free(p);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- autodiff and checking */

Test(errors, grad_null_or_integer_output)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    jg_node *d = x;
    cr_assert_eq(jg_grad(g, NULL, &x, 1, &d), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "jg_grad: output 0 is NULL");
    jg_graph_clear_error(g);
    jg_node *i = jg_cast(x, JG_I32);
    cr_assert_eq(jg_grad(g, i, &x, 1, &d), JG_ERR_DTYPE);
    t_assert_error(g, JG_ERR_DTYPE, "jg_grad: output is i32");
    cr_assert_null(d, "grads_out was not cleared");
    jg_graph_clear_error(g);
    cr_assert_eq(jg_grad(g, jg_exp(x), NULL, 1, &d), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "wrt or grads_out is NULL");
    jg_graph_clear_error(g);
    jg_node *wrt[1] = { NULL };
    cr_assert_eq(jg_grad(g, jg_exp(x), wrt, 1, &d), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "jg_grad: wrt 0 is NULL");
    cr_assert_eq(jg_grad(NULL, x, &x, 1, &d), JG_ERR_ARG);
    jg_graph_free(g);
}

Test(errors, gradcheck_non_leaf_wrt)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    jg_node *e = jg_exp(x);
    jg_node *y = jg_square(e);
    jg_gradcheck_report r;
    cr_assert_eq(jg_gradcheck(g, y, &e, 1, NULL, &r), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "jg_gradcheck: wrt 0 is");
    t_assert_error(g, JG_ERR_ARG, "op exp; only inputs and parameters can be perturbed");
    cr_assert(!r.passed);
    cr_assert(strstr(r.message, "only inputs and parameters"), "report: %s", r.message);
    jg_graph_clear_error(g);
    cr_assert_eq(jg_gradcheck(g, y, &x, 0, NULL, &r), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "jg_gradcheck: no wrt nodes");
    jg_graph_clear_error(g);
    cr_assert_eq(jg_gradcheck(g, jg_cast(y, JG_I32), &x, 1, NULL, &r), JG_ERR_DTYPE);
    t_assert_error(g, JG_ERR_DTYPE, "is i32");
    cr_assert_eq(jg_gradcheck(NULL, y, &x, 1, NULL, &r), JG_ERR_ARG);
    cr_assert(strstr(r.message, "graph is NULL"), "report: %s", r.message);
    jg_graph_free(g);
}

Test(errors, gradcheck_unbound_i32_input)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(4, 3), 1);
    jg_node *ids = jg_input(g, "ids", JG_I32, jg_shape(2));
    jg_node *y = jg_mul(jg_take(w, ids, 0), jg_scalar(g, JG_F64, 2));
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    jg_gradcheck_report r;
    cr_assert_eq(jg_gradcheck(g, y, &w, 1, NULL, &r), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "input 'ids' is i32 and needs a value in opts.inputs");
    /* with the binding it runs and passes */
    jg_graph_clear_error(g);
    int32_t iv[2] = { 3, 0 };
    jg_binding b = { "ids", iv, sizeof iv };
    t_gradcheck_opts(g, y, &w, 1, &(jg_gradcheck_opts){ .inputs = &b, .n_inputs = 1 });
    jg_graph_free(g);
}

Test(errors, compile_train_misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(3), jg_constant(1));
    jg_node *loss = jg_sum(jg_square(w), JG_ALL_AXES, false);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0, 0) }));
    t_assert_error(g, JG_ERR_ARG, "jg_compile_train: invalid optimiser");
    t_assert_error(g, JG_ERR_ARG, "lr 0");
    jg_graph_clear_error(g);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(-1e-3) }));
    t_assert_error(g, JG_ERR_ARG, "invalid optimiser");
    jg_graph_clear_error(g);
    jg_node *vec = jg_square(w);
    cr_assert_null(jg_compile_train(g, vec, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }));
    t_assert_error(g, JG_ERR_ARG, "loss must be a scalar");
    jg_graph_clear_error(g);
    cr_assert_null(jg_compile_train(g, loss, NULL));
    t_assert_error(g, JG_ERR_ARG, "opts is NULL");
    jg_graph_clear_error(g);
    cr_assert_null(jg_compile_train(g, NULL, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }));
    t_assert_error(g, JG_ERR_ARG, "loss must be a scalar");
    jg_graph_clear_error(g);
    jg_param_freeze(w, true);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }));
    t_assert_error(g, JG_ERR_ARG, "no trainable parameters");
    cr_assert_null(jg_compile_train(NULL, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }));
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- files */

Test(errors, idx_read_missing_file)
{
    const char *path = "/nonexistent/jitgrad-test/train-images-idx3-ubyte.gz";
    jg_array a = { 0 };
    char err[512] = "unchanged";
    cr_assert_eq(jg_idx_read(path, JG_F32, &a, err, sizeof err), JG_ERR_IO);
    cr_assert(strstr(err, path), "message '%s' does not name the file", err);
    cr_assert(strstr(err, "cannot open"), "message '%s'", err);
    cr_assert_null(a.data);
    jg_array_free(&a);
    /* no error buffer is fine; a tiny one is truncated, not overrun */
    cr_assert_eq(jg_idx_read(path, JG_I32, &a, NULL, 0), JG_ERR_IO);
    char tiny[8];
    cr_assert_eq(jg_idx_read(path, JG_I32, &a, tiny, sizeof tiny), JG_ERR_IO);
    cr_assert_eq(strlen(tiny), sizeof tiny - 1);
    cr_assert_eq(jg_idx_read(NULL, JG_F32, &a, err, sizeof err), JG_ERR_ARG);
    cr_assert_eq(jg_idx_read(path, JG_F32, NULL, err, sizeof err), JG_ERR_ARG);
}

/* ---------------------------------------------------------------- handles */

Test(errors, free_null_is_a_noop)
{
    jg_graph_free(NULL);
    jg_program_free(NULL);
    jg_array_free(NULL);
    jg_array a = { 0 };
    jg_array_free(&a);
    jg_array_free(&a);
    /* a graph freed before its program: the program keeps it alive */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2));
    jg_node *y = jg_scale(x, 3);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    jg_graph_free(g);
    jg_graph_free(g); /* a second free of the user's handle is ignored */
    float v[2] = { 1, -2 }, out[2];
    cr_assert_eq(jg_program_set(p, "x", v, sizeof v), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_get(p, 0, out, sizeof out), JG_OK);
    cr_assert_float_eq(out[1], -6.0f, 0);
    jg_program_free(p);
}

Test(errors, null_handles)
{
    cr_assert_not_null(jg_graph_errmsg(NULL));
    cr_assert_not_null(jg_program_errmsg(NULL));
    cr_assert_not_null(jg_errmsg((jg_graph *)NULL));
    cr_assert_not_null(jg_errmsg((jg_program *)NULL));
    cr_assert_not_null(jg_errmsg((const jg_graph *)NULL));
    cr_assert_eq(jg_graph_status(NULL), JG_ERR_ARG);
    cr_assert_eq(jg_program_set(NULL, "x", "", 1), JG_ERR_ARG);
    cr_assert_eq(jg_program_run(NULL), JG_ERR_ARG);
    float out;
    cr_assert_eq(jg_program_get(NULL, 0, &out, sizeof out), JG_ERR_ARG);
    cr_assert_null(jg_compile(NULL, NULL, 0, NULL));
    cr_assert_eq(jg_graph_node_count(NULL), 0);
    cr_assert_eq(jg_param_count(NULL), 0);
    jg_graph_clear_error(NULL);
    jg_graph_set_seed(NULL, 3);
    jg_graph_dump(NULL, stderr);
    cr_assert_str_eq(jg_node_op_name(NULL), "(null)");
    cr_assert_null(jg_node_name(NULL));
    cr_assert_eq(jg_node_id(NULL), -1);
    cr_assert(!jg_node_ok(NULL));
    for (int s = JG_OK; s <= JG_ERR_GRAD + 1; s++)
        cr_assert_not_null(jg_status_str((jg_status)s));
    cr_assert_not_null(jg_dtype_str((jg_dtype)17));
    /* a fresh graph and a fresh program have empty messages */
    jg_graph *g = jg_graph_new();
    cr_assert_str_eq(jg_errmsg(g), "");
    jg_program *p = small_program(g);
    cr_assert_str_eq(jg_errmsg(p), "");
    jg_program_free(p);
    jg_graph_free(g);
}
