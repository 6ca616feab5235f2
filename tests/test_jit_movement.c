/* The JIT against the reference executor: movement and indexing ops (views, pad, concat, take, one_hot).
 * How and to what tolerance: tests/support/jit_compare.h and test_jit_elementwise.c. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_movement, .timeout = 60);

/* ---------------------------------------------------------------- movement */

static void views_on(tctx *c, olist *l, jg_dtype t)
{
    jg_node *x = input(c, t, jg_shape(3, 17), SIGNED);
    jg_node *z = input(c, t, jg_shape(2, 3, 15), SIGNED);
    jg_node *w = input(c, t, jg_shape(4, 1023), SIGNED);
    jg_node *row = input(c, t, jg_shape(1, 15), SIGNED), *col = input(c, t, jg_shape(17, 1), SIGNED);
    jg_node *s = input(c, t, JG_SCALAR, SIGNED);
    /* reshape */
    push(l, jg_reshape(x, jg_shape(17, 3)));
    push(l, jg_reshape(x, jg_shape(-1)));
    push(l, jg_reshape(z, jg_shape(6, -1)));
    push(l, jg_reshape(z, jg_shape(2, 45, 1)));
    push(l, jg_reshape(s, jg_shape(1, 1)));
    push(l, jg_neg(jg_reshape(w, jg_shape(2, 2, 1023)))); /* reshape feeding a kernel */
    push(l, jg_reshape(jg_neg(z), jg_shape(3, 30)));     /* of a computed value */
    /* permute, transpose */
    push(l, jg_permute(z, jg_axes(2, 0, 1)));
    push(l, jg_permute(z, jg_axes(1, 0, 2)));
    push(l, jg_permute(z, jg_axes(0, 2, 1)));
    push(l, jg_permute(z, jg_axes(0, 1, 2)));
    push(l, jg_transpose(x));
    push(l, jg_transpose(w));
    push(l, jg_transpose(z));
    push(l, jg_add(jg_transpose(jg_transpose(x)), x));
    /* broadcast_to */
    push(l, jg_broadcast_to(row, jg_shape(17, 15)));
    push(l, jg_broadcast_to(col, jg_shape(17, 15)));
    push(l, jg_broadcast_to(col, jg_shape(2, 17, 1023)));
    push(l, jg_broadcast_to(s, jg_shape(3, 4)));
    push(l, jg_broadcast_to(x, jg_shape(2, 3, 17)));
    /* slice, positive and negative steps, clamped bounds */
    push(l, jg_slice(x, 1, 2, 15, 1));
    push(l, jg_slice(x, 1, 0, 17, 2));
    push(l, jg_slice(x, -1, -1, INT64_MIN, -1)); /* reversed */
    push(l, jg_slice(x, 1, 15, 2, -3));
    push(l, jg_slice(x, 0, -1, INT64_MIN, -1));
    push(l, jg_slice(x, 0, 1, 2, 1));
    push(l, jg_slice(x, 1, -100, 100, 4));       /* clamped */
    push(l, jg_slice(w, 1, 1000, 3, -7));
    push(l, jg_slice(z, 2, 3, -3, 2));
    push(l, jg_slice(jg_slice(z, 0, 1, 2, 1), 2, -2, 0, -2));
    push(l, jg_slice(jg_transpose(x), 0, 16, 0, -5));
    push(l, jg_mul(jg_slice(x, 1, 0, 17, 2), jg_slice(x, 1, 16, INT64_MIN, -2)));
}

Test(jit_movement, views)
{
    for (int k = 0; k < 3; k++) {
        tctx c;
        ctx_init(&c, 61 + (uint64_t)k);
        olist l = { .n = 0 };
        views_on(&c, &l, ALL_DTYPES[k]);
        char buf[64];
        snprintf(buf, sizeof buf, "views %s", jg_dtype_str(ALL_DTYPES[k]));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_movement, pad)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 71 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(3, 17), SIGNED), *v = input(&c, t, jg_shape(1023), SIGNED);
        jg_node *z = input(&c, t, jg_shape(2, 3, 15), SIGNED), *one = input(&c, t, jg_shape(1), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_pad(x, jg_shape(1, 2), jg_shape(0, 3), 0.5));
        push(&l, jg_pad(x, jg_shape(0, 0), jg_shape(0, 0), 0));
        push(&l, jg_pad(x, jg_shape(2, 0), jg_shape(1, 0), -1));
        push(&l, jg_pad(v, jg_shape(1), jg_shape(16), 2));
        push(&l, jg_pad(one, jg_shape(14), jg_shape(0), 0));
        push(&l, jg_pad(z, jg_shape(1, 0, 1), jg_shape(0, 2, 1), 3));
        push(&l, jg_pad(jg_neg(x), jg_shape(0, 1), jg_shape(0, 1), 0)); /* of a computed value */
        push(&l, jg_add(jg_pad(x, jg_shape(0, 1), jg_shape(0, 0), 0),
                        jg_pad(x, jg_shape(0, 0), jg_shape(0, 1), 0))); /* feeding a kernel */
        char buf[64];
        snprintf(buf, sizeof buf, "pad %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_movement, concat)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 81 + (uint64_t)k);
        jg_node *a = input(&c, t, jg_shape(3, 17), SIGNED), *b = input(&c, t, jg_shape(3, 15), SIGNED);
        jg_node *d = input(&c, t, jg_shape(1, 17), SIGNED), *e = input(&c, t, jg_shape(3, 1), SIGNED);
        jg_node *v = input(&c, t, jg_shape(1023), SIGNED), *w = input(&c, t, jg_shape(1), SIGNED);
        jg_node *z = input(&c, t, jg_shape(2, 3, 15), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_concat(((jg_node *[]){ a, b, e }), 3, 1));
        push(&l, jg_concat(((jg_node *[]){ a, b, e }), 3, -1));
        push(&l, jg_concat(((jg_node *[]){ a, d, a }), 3, 0));
        push(&l, jg_concat(((jg_node *[]){ v, w, v }), 3, 0));
        push(&l, jg_concat(((jg_node *[]){ a }), 1, 0));
        push(&l, jg_concat(((jg_node *[]){ z, z }), 2, 1));
        push(&l, jg_concat(((jg_node *[]){ z, jg_neg(z) }), 2, 0));
        push(&l, jg_concat(((jg_node *[]){ jg_transpose(z), jg_transpose(z) }), 2, 2));
        push(&l, jg_neg(jg_concat(((jg_node *[]){ a, b }), 2, 1)));
        char buf[64];
        snprintf(buf, sizeof buf, "concat %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

/* A concat of a few pieces read by one pointwise op is computed inline in that op's kernel
 * (fuse.c, emit_expr.c): lanes masked per piece, widths that split vectors (17, 3, 20), the
 * first axis (one piece per row), i32, a GEMM's epilogue (with the epilogue's prefetch of
 * 128 KiB pieces) and a reduction reading it. */
Test(jit_movement, concat_read_inline)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 91 + (uint64_t)k);
        jg_node *a = input(&c, t, jg_shape(5, 17), SIGNED);
        jg_node *b = input(&c, t, jg_shape(5, 3), SIGNED);
        jg_node *d = input(&c, t, jg_shape(5, 20), SIGNED);
        jg_node *e = input(&c, t, jg_shape(2, 40), SIGNED);
        jg_node *x = jg_neg(a), *y = jg_abs(b), *z = jg_scale(d, 2); /* pieces with kernels */
        olist l = { .n = 0 };
        jg_node *three[3] = { x, y, z };
        push(&l, jg_add(jg_concat(three, 3, 1), jg_concat(three, 3, 1)));
        jg_node *rows[2] = { jg_concat(three, 3, 1), e };
        push(&l, jg_mul(jg_concat(rows, 2, 0), jg_concat(rows, 2, 0)));
        if (t != JG_I32) {
            jg_node *m = input(&c, t, jg_shape(128, 64), SIGNED);
            jg_node *w = input(&c, t, jg_shape(64, 512), SIGNED);
            jg_node *p = jg_exp(input(&c, t, jg_shape(128, 256), SIGNED));
            jg_node *q = jg_tanh(input(&c, t, jg_shape(128, 256), SIGNED));
            jg_node *pq[2] = { p, q };
            push(&l, jg_add(jg_matmul(m, w), jg_concat(pq, 2, 1)));
            push(&l, jg_sum(jg_scale(jg_concat(three, 3, 1), 3), jg_axes(1), false));
        }
        char buf[64];
        snprintf(buf, sizeof buf, "inline concat %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        jg_node *alone[2] = { jg_sigmoid(jg_concat(three, 3, 1)), jg_concat(three, 3, 1) };
        if (t != JG_I32)
            cr_assert_eq(t_stats(c.g, alone, 1, NULL).kernels + 1,
                         t_stats(c.g, alone, 2, NULL).kernels,
                         "the concat has no kernel of its own unless it is an output");
        ctx_fini(&c);
    }
}

Test(jit_movement, take)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 91 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *z = input(&c, t, jg_shape(2, 3, 1023), SIGNED);
        jg_node *v = input(&c, t, jg_shape(1023), SIGNED);
        jg_node *i17 = input_(&c, JG_I32, jg_shape(4), LABELS, 17);
        jg_node *i15 = input_(&c, JG_I32, jg_shape(2, 3), LABELS, 15);
        jg_node *i3 = input_(&c, JG_I32, jg_shape(5), LABELS, 3);
        jg_node *i1023 = input_(&c, JG_I32, jg_shape(33), LABELS, 1023);
        jg_node *i2 = input_(&c, JG_I32, JG_SCALAR, LABELS, 2);
        olist l = { .n = 0 };
        push(&l, jg_take(x, i17, 0));
        push(&l, jg_take(x, i15, 1));
        push(&l, jg_take(x, i15, -1));
        push(&l, jg_take(z, i3, 1));
        push(&l, jg_take(z, i1023, 2));
        push(&l, jg_take(z, i2, 0));
        push(&l, jg_take(v, i1023, 0));
        push(&l, jg_take(jg_neg(x), i17, 0));            /* of a computed value */
        push(&l, jg_neg(jg_take(x, i15, 0)));            /* feeding a kernel */
        char buf[64];
        snprintf(buf, sizeof buf, "take %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_movement, take_out_of_range)
{
    tctx c;
    ctx_init(&c, 97);
    jg_node *x = input(&c, JG_F32, jg_shape(5, 3), SIGNED);
    jg_node *idx = input_values(&c, JG_I32, jg_shape(3), (double[]){ 1, 5, 0 });
    jg_node *o = jg_take(x, idx, 0);
    jg_program *p = jg_compile(c.g, &o, 1, &(jg_opts){ .executor = JG_EXEC_JIT });
    cr_assert(p, "%s", jg_errmsg(c.g));
    t_input *xi = input_of(&c, x), *ii = input_of(&c, idx);
    jg_program_set(p, xi->name, xi->data, xi->bytes);
    jg_program_set(p, ii->name, ii->data, ii->bytes);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE, "jit take with index 5 of 5: %s", jg_errmsg(p));
    jg_program_free(p);
    ctx_fini(&c);
}

Test(jit_movement, one_hot)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 101 + (uint64_t)k);
        jg_node *a = input_(&c, JG_I32, jg_shape(17), LABELS, 15);
        jg_node *b = input_(&c, JG_I32, jg_shape(3, 5), LABELS, 1023);
        jg_node *s = input_(&c, JG_I32, JG_SCALAR, LABELS, 17);
        jg_node *one = input_(&c, JG_I32, jg_shape(1), LABELS, 1);
        olist l = { .n = 0 };
        push(&l, jg_one_hot(a, 15, t));
        push(&l, jg_one_hot(a, 17, t));
        push(&l, jg_one_hot(b, 1023, t));
        push(&l, jg_one_hot(s, 17, t));
        push(&l, jg_one_hot(one, 1, t));
        push(&l, jg_sum(jg_one_hot(b, 1023, t), jg_axes(0), false));
        char buf[64];
        snprintf(buf, sizeof buf, "one_hot %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

