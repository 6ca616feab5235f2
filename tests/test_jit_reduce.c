/* The JIT against the reference executor: reductions over every loop structure, and argmax.
 * How and to what tolerance: tests/support/jit_compare.h and test_jit_elementwise.c. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_reduce, .timeout = 60);

/* ---------------------------------------------------------------- reductions */


/* One axis set of one shape. */
typedef struct red_case {
    jg_shape s;
    jg_axes ax;
} red_case;

/* The loop structures: innermost reduced or kept, outer dims reduced or kept, all, none of
 * the vector lanes full (1, 15) or some (17, 1023). sum and max on each (keepdims
 * alternating); the ops that decompose (mean, logsumexp) and min on a representative few. */
static const red_case LOOPS[] = {
    { jg_shape(1), JG_ALL_AXES },       { jg_shape(15), jg_axes(-1) },
    { jg_shape(17), jg_axes(0) },       { jg_shape(1023), JG_ALL_AXES },
    { jg_shape(17, 15), jg_axes(0) },   { jg_shape(17, 15), jg_axes(1) },
    { jg_shape(17, 15), JG_ALL_AXES },  { jg_shape(3, 1023), jg_axes(0) },
    { jg_shape(3, 1023), jg_axes(-1) }, { jg_shape(33, 1), jg_axes(0) },
    { jg_shape(33, 1), jg_axes(1) },    { jg_shape(4, 5, 17), jg_axes(0) },
    { jg_shape(4, 5, 17), jg_axes(1) }, { jg_shape(4, 5, 17), jg_axes(2) },
    { jg_shape(4, 5, 17), jg_axes(0, 1) }, { jg_shape(4, 5, 17), jg_axes(2, 0) },
    { jg_shape(4, 5, 17), jg_axes(1, 2) }, { jg_shape(4, 5, 17), JG_ALL_AXES },
    { jg_shape(2, 3, 1023), jg_axes(0) }, { jg_shape(2, 3, 1023), jg_axes(0, 1) },
    { jg_shape(2, 3, 1023), jg_axes(1) },
    /* windows: a short innermost reduced run after a kept dim (2x2 pooling, 3 and 4 wide;
     * outputs 7, 9, 20, 33: under one vector, one and a tail) */
    { jg_shape(2, 5, 2, 7, 2), jg_axes(2, 4) }, { jg_shape(3, 9, 2), jg_axes(2) },
    { jg_shape(4, 20, 3), jg_axes(2) },         { jg_shape(2, 33, 4), jg_axes(0, 2) },
};
#define N_LOOPS ((int)(sizeof LOOPS / sizeof *LOOPS))
/* The cases (indices into LOOPS) that also run the other reductions. */
static const int FEW[] = { 3, 4, 5, 8, 15, 16, 17, 21, 23 };
#define N_FEW ((int)(sizeof FEW / sizeof *FEW))

static void reductions_of(jg_dtype t)
{
    tctx c;
    ctx_init(&c, 31 + (uint64_t)t);
    olist l = { .n = 0 };
    jg_node *x[N_LOOPS], *q[N_LOOPS];
    for (int i = 0; i < N_LOOPS; i++) {
        bool keep = i % 2;
        x[i] = input(&c, t, LOOPS[i].s, SIGNED);
        q[i] = input(&c, t, LOOPS[i].s, TIES);
        push(&l, jg_sum(x[i], LOOPS[i].ax, keep));
        push(&l, jg_max(x[i], LOOPS[i].ax, !keep));
    }
    for (int k = 0; k < N_FEW; k++) {
        int i = FEW[k];
        bool keep = k % 2;
        push(&l, jg_min(x[i], LOOPS[i].ax, keep));
        push(&l, jg_max(q[i], LOOPS[i].ax, keep)); /* ties */
        if (t != JG_I32) {
            push(&l, jg_mean(x[i], LOOPS[i].ax, keep));
            push(&l, jg_logsumexp(x[i], LOOPS[i].ax, !keep));
        }
    }
    char buf[64];
    snprintf(buf, sizeof buf, "reductions %s", jg_dtype_str(t));
    check(&c, l.o, l.n, TOL, buf);
    ctx_fini(&c);
}

Test(jit_reduce, reductions_f32) { reductions_of(JG_F32); }
Test(jit_reduce, reductions_f64) { reductions_of(JG_F64); }
Test(jit_reduce, reductions_i32) { reductions_of(JG_I32); }

/* Reductions of fused expressions, of broadcasts, of all-negative data, and chains. */
Test(jit_reduce, reductions_of_expressions)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 41 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *y = input(&c, t, jg_shape(17, 15), SIGNED);
        jg_node *col = input(&c, t, jg_shape(17, 1), SIGNED), *row = input(&c, t, jg_shape(1, 15), SIGNED);
        jg_node *z = input(&c, t, jg_shape(4, 5, 17), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_sum(jg_mul(jg_exp(x), y), jg_axes(1), false));
        push(&l, jg_sum(jg_mul(jg_exp(x), y), jg_axes(0), true));
        push(&l, jg_sum(jg_add(col, row), jg_axes(0), false));
        push(&l, jg_max(jg_mul(col, row), jg_axes(1), true));
        push(&l, jg_sum(jg_broadcast_to(row, jg_shape(17, 15)), JG_ALL_AXES, false));
        push(&l, jg_max(jg_neg(jg_abs(x)), jg_axes(1), false)); /* all negative */
        push(&l, jg_min(jg_shift(jg_abs(x), 1), jg_axes(0), false)); /* all positive */
        push(&l, jg_mean(jg_sub(x, jg_mean(x, jg_axes(1), true)), jg_axes(1), false));
        push(&l, jg_sum(jg_square(jg_sub(z, jg_mean(z, jg_axes(0, 2), true))), jg_axes(0, 2), false));
        push(&l, jg_logsumexp(jg_scale(z, 30), jg_axes(1), false));
        push(&l, jg_sum(jg_permute(z, jg_axes(2, 0, 1)), jg_axes(0), false));
        push(&l, jg_sum(jg_slice(x, 1, -1, INT64_MIN, -2), jg_axes(1), false));
        push(&l, jg_max(jg_sum(z, jg_axes(1), false), jg_axes(-1), false));
        push(&l, jg_sum(jg_sum(jg_sum(z, jg_axes(2), false), jg_axes(1), false), JG_ALL_AXES, false));
        char buf[64];
        snprintf(buf, sizeof buf, "reductions of expressions %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_reduce, argmax)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 51 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *q = input(&c, t, jg_shape(17, 15), TIES);
        jg_node *v = input(&c, t, jg_shape(1023), SIGNED), *one = input(&c, t, jg_shape(1), SIGNED);
        jg_node *z = input(&c, t, jg_shape(4, 5, 17), TIES);
        olist l = { .n = 0 };
        push(&l, jg_argmax(x, 0));
        push(&l, jg_argmax(x, 1));
        push(&l, jg_argmax(x, -1));
        push(&l, jg_argmax(q, 0)); /* ties: the first maximum */
        push(&l, jg_argmax(q, 1));
        push(&l, jg_argmax(v, 0));
        push(&l, jg_argmax(one, 0));
        push(&l, jg_argmax(z, 0));
        push(&l, jg_argmax(z, 1));
        push(&l, jg_argmax(z, 2));
        if (t != JG_I32)
            push(&l, jg_argmax(jg_exp(x), 1)); /* of a computed value */
        char buf[64];
        snprintf(buf, sizeof buf, "argmax %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
    /* NaN: the first NaN wins */
    tctx c;
    ctx_init(&c, 59);
    jg_node *x = input_values(&c, JG_F32, jg_shape(2, 4), (double[]){ 1, NAN, 3, NAN, 5, 2, 5, -1 });
    jg_node *o[2] = { jg_argmax(x, 1), jg_argmax(x, 0) };
    check(&c, o, 2, TOL, "argmax with NaN");
    ctx_fini(&c);
}

