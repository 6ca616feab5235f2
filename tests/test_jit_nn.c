/* The JIT against the reference executor: matmul and the nn ops (softmax family, losses).
 * How and to what tolerance: tests/support/jit_compare.h and test_jit_elementwise.c. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_nn, .timeout = 60);

/* ---------------------------------------------------------------- matmul */

/* The matmul cases: all of them (full), or a few (GEMM kernels are slow to compile). */
static void matmul_cases(tctx *c, olist *l, jg_dtype t, bool full)
{
    jg_node *a = input(c, t, jg_shape(17, 15), SIGNED), *b = input(c, t, jg_shape(15, 17), SIGNED);
    jg_node *b2 = input(c, t, jg_shape(15, 1023), SIGNED);
    jg_node *one = input(c, t, jg_shape(1, 1), SIGNED), *one2 = input(c, t, jg_shape(1, 1), SIGNED);
    jg_node *r = input(c, t, jg_shape(1, 15), SIGNED), *cl = input(c, t, jg_shape(15, 1), SIGNED);
    jg_node *big_a = input(c, t, jg_shape(33, 130), SIGNED), *big_b = input(c, t, jg_shape(130, 65), SIGNED);
    jg_node *ba = input(c, t, jg_shape(2, 3, 17, 15), SIGNED);
    jg_node *bb = input(c, t, jg_shape(2, 3, 15, 17), SIGNED);
    jg_node *x3 = input(c, t, jg_shape(3, 17, 15), SIGNED);
    jg_node *p1 = input(c, t, jg_shape(1, 17, 15), SIGNED), *p4 = input(c, t, jg_shape(4, 15, 3), SIGNED);
    jg_node *q = input(c, t, jg_shape(2, 1, 5, 6), SIGNED), *q3 = input(c, t, jg_shape(3, 6, 4), SIGNED);
    jg_node *at = input(c, t, jg_shape(15, 17), SIGNED), *bt = input(c, t, jg_shape(17, 15), SIGNED);
    jg_node *bias = input(c, t, jg_shape(17), SIGNED);
    /* 2-D */
    push(l, jg_matmul(a, b));
    push(l, jg_matmul(big_a, big_b));
    if (full) {
        push(l, jg_matmul(a, b2));
        push(l, jg_matmul(one, one2));
        push(l, jg_matmul(cl, r));
    }
    /* batched, and broadcast batches */
    push(l, jg_matmul(ba, bb));
    push(l, jg_matmul(q, q3));
    if (full) {
        push(l, jg_matmul(x3, b));
        push(l, jg_matmul(p1, p4));
    }
    /* transposed operands (permute views read through strides) */
    push(l, jg_matmul(jg_transpose(at), jg_transpose(bt)));
    if (full) {
        push(l, jg_matmul(a, jg_transpose(x3)));
        push(l, jg_matmul(jg_transpose(bb), jg_transpose(ba)));
    }
    /* operands that are broadcast, permuted across batch dims, sliced, reshaped */
    if (full) {
        jg_node *b3 = input(c, t, jg_shape(3, 15, 17), SIGNED), *y = input(c, t, jg_shape(17, 3, 15), SIGNED);
        push(l, jg_matmul(jg_broadcast_to(a, jg_shape(3, 17, 15)), b3));
        push(l, jg_matmul(jg_permute(y, jg_axes(1, 0, 2)), b));
        push(l, jg_matmul(jg_slice(big_a, 1, 0, 130, 2), jg_slice(big_b, 0, 129, INT64_MIN, -2)));
        push(l, jg_matmul(jg_reshape(ba, jg_shape(102, 15)), b));
    }
    /* epilogues and computed operands */
    push(l, jg_relu(jg_add(jg_matmul(a, b), bias)));
    push(l, jg_linear(a, bt, bias)); /* PyTorch's [out, in] weight, read transposed */
    if (full) {
        jg_node *colbias = input(c, t, jg_shape(17, 1), SIGNED);
        push(l, jg_maximum(jg_add(jg_matmul(a, b), colbias), jg_scale(jg_matmul(a, b), 0.5)));
        push(l, jg_tanh(jg_matmul(jg_exp(jg_scale(a, 0.5)), jg_neg(b))));
        push(l, jg_matmul(jg_matmul(a, b), bt));
    }
}

Test(jit_nn, matmul_f32)
{
    tctx c;
    ctx_init(&c, 111);
    olist l = { .n = 0 };
    matmul_cases(&c, &l, JG_F32, true);
    check(&c, l.o, l.n, TOL, "matmul f32");
    ctx_fini(&c);
}

Test(jit_nn, matmul_f64)
{
    tctx c;
    ctx_init(&c, 112);
    olist l = { .n = 0 };
    matmul_cases(&c, &l, JG_F64, false);
    check(&c, l.o, l.n, TOL, "matmul f64");
    ctx_fini(&c);
}

/* f32 products over k = 1023: the JIT sums in f32, the reference in double */
Test(jit_nn, matmul_long_inner)
{
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, 121 + (uint64_t)k);
        jg_node *a = input(&c, FLOATS[k], jg_shape(4, 1023), UNIT);
        jg_node *b = input(&c, FLOATS[k], jg_shape(1023, 17), UNIT);
        jg_node *o[2] = { jg_matmul(a, b), jg_matmul(jg_transpose(b), jg_transpose(a)) };
        check(&c, o, 2, TOL, FLOATS[k] == JG_F32 ? "matmul k=1023 f32" : "matmul k=1023 f64");
        ctx_fini(&c);
    }
}

/* ---------------------------------------------------------------- nn */

Test(jit_nn, softmax_family)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 131 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *w = input(&c, t, jg_shape(4, 1023), SIGNED);
        jg_node *z = input(&c, t, jg_shape(2, 3, 17), SIGNED), *one = input(&c, t, jg_shape(3, 1), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_softmax(x, -1));
        push(&l, jg_softmax(x, 0));
        push(&l, jg_softmax(w, 1));
        push(&l, jg_softmax(z, 1));
        push(&l, jg_softmax(one, 1));
        push(&l, jg_softmax(jg_scale(x, 50), 1)); /* large logits */
        push(&l, jg_log_softmax(x, -1));
        push(&l, jg_log_softmax(x, 0));
        push(&l, jg_log_softmax(w, -1));
        push(&l, jg_log_softmax(z, 0));
        push(&l, jg_log_softmax(jg_scale(w, 50), -1));
        char buf[64];
        snprintf(buf, sizeof buf, "softmax family %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_nn, bce_and_mse_losses)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 137 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *v = input(&c, t, jg_shape(1023), SIGNED);
        jg_node *u = input(&c, t, jg_shape(3, 17), UNIT), *lg = input(&c, t, jg_shape(3, 17), SIGNED);
        jg_node *uv = input(&c, t, jg_shape(1023), UNIT), *one = input(&c, t, jg_shape(1), SIGNED);
        jg_node *m = input(&c, t, jg_shape(2, 3, 15), SIGNED), *m2 = input(&c, t, jg_shape(2, 3, 15), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_bce_with_logits(lg, u));
        push(&l, jg_bce_with_logits(v, uv));
        push(&l, jg_bce_with_logits(jg_scale(lg, 30), u)); /* large logits */
        push(&l, jg_bce_with_logits(one, jg_sigmoid(one)));
        push(&l, jg_mse_loss(m, m2));
        push(&l, jg_mse_loss(v, uv));
        push(&l, jg_mse_loss(x, jg_softmax(x, 1)));
        char buf[64];
        snprintf(buf, sizeof buf, "bce/mse losses %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_nn, cross_entropy)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 141 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *y = input_(&c, JG_I32, jg_shape(17), LABELS, 15);
        jg_node *w = input(&c, t, jg_shape(4, 1023), SIGNED), *yw = input_(&c, JG_I32, jg_shape(4), LABELS, 1023);
        jg_node *o = input(&c, t, jg_shape(1, 1), SIGNED), *yo = input_(&c, JG_I32, jg_shape(1), LABELS, 1);
        olist l = { .n = 0 };
        push(&l, jg_cross_entropy(x, y));
        push(&l, jg_cross_entropy(w, yw));
        push(&l, jg_cross_entropy(o, yo));
        push(&l, jg_cross_entropy(jg_scale(x, 40), y)); /* large logits */
        push(&l, jg_cross_entropy(jg_transpose(jg_exp(jg_transpose(x))), y));
        char buf[64];
        snprintf(buf, sizeof buf, "cross_entropy %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_nn, cross_entropy_label_out_of_range)
{
    tctx c;
    ctx_init(&c, 149);
    jg_node *x = input(&c, JG_F32, jg_shape(3, 4), SIGNED);
    jg_node *y = input_values(&c, JG_I32, jg_shape(3), (double[]){ 0, 3, 4 });
    jg_node *o = jg_cross_entropy(x, y);
    jg_program *p = jg_compile(c.g, &o, 1, &(jg_opts){ .executor = JG_EXEC_JIT });
    cr_assert(p, "%s", jg_errmsg(c.g));
    for (int i = 0; i < c.n_in; i++)
        jg_program_set(p, c.in[i].name, c.in[i].data, c.in[i].bytes);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE, "label 4 of 4 classes: %s", jg_errmsg(p));
    cr_assert(strstr(jg_errmsg(p), "row 2"), "message: %s", jg_errmsg(p));
    jg_program_free(p);
    ctx_fini(&c);
}

