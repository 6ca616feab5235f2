/* The JIT against the reference executor: gradients through the JIT and its settings (threads, vector widths, fusion off).
 * How and to what tolerance: tests/support/jit_compare.h and test_jit_elementwise.c. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_settings, .timeout = 60);

/* ---------------------------------------------------------------- gradients through the JIT */

/* The gradients of `loss` w.r.t. wrt[0..n), plus the loss itself, JIT against reference. */
static void check_grads(tctx *c, jg_node *loss, jg_node *const *wrt, int n, const char *what)
{
    jg_node *g[16];
    cr_assert(n < 16);
    cr_assert_eq(jg_grad(c->g, loss, wrt, n, g), JG_OK, "%s: jg_grad: %s", what, jg_errmsg(c->g));
    jg_node *outs[17] = { loss };
    int k = 1;
    for (int i = 0; i < n; i++) {
        cr_assert(g[i], "%s: no gradient for wrt %d", what, i);
        outs[k++] = g[i];
    }
    check(c, outs, k, TOL_GRAD, what);
}

Test(jit_settings, grad_mlp_cross_entropy)
{
    tctx c;
    ctx_init(&c, 151);
    jg_node *x = input(&c, JG_F64, jg_shape(17, 15), SIGNED);
    jg_node *y = input_(&c, JG_I32, jg_shape(17), LABELS, 10);
    jg_node *w1 = t_param(c.g, "w1", jg_shape(15, 33), 1), *b1 = t_param(c.g, "b1", jg_shape(33), 2);
    jg_node *w2 = t_param(c.g, "w2", jg_shape(33, 10), 3), *b2 = t_param(c.g, "b2", jg_shape(10), 4);
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *loss = jg_cross_entropy(jg_add(jg_matmul(h, w2), b2), y);
    check_grads(&c, loss, (jg_node *[]){ w1, b1, w2, b2, x }, 5, "grad: mlp + cross_entropy");
    ctx_fini(&c);
}

Test(jit_settings, grad_softmax_log)
{
    tctx c;
    ctx_init(&c, 152);
    jg_node *x = input(&c, JG_F64, jg_shape(17, 15), SIGNED);
    jg_node *r = input(&c, JG_F64, jg_shape(17, 15), SIGNED);
    jg_node *z = input(&c, JG_F64, jg_shape(3, 1023), SIGNED);
    jg_node *loss = jg_add(jg_sum(jg_mul(jg_log(jg_softmax(x, -1)), r), JG_ALL_AXES, false),
                           jg_mean(jg_mul(jg_log_softmax(z, 0), jg_softmax(z, 1)), JG_ALL_AXES, false));
    check_grads(&c, loss, (jg_node *[]){ x, z }, 2, "grad: softmax + log");
    ctx_fini(&c);
}

Test(jit_settings, grad_reduction_chain)
{
    tctx c;
    ctx_init(&c, 153);
    jg_node *x = input(&c, JG_F64, jg_shape(4, 5, 17), SIGNED);
    jg_node *v = input(&c, JG_F64, jg_shape(17), SIGNED);
    jg_node *a = jg_logsumexp(jg_mul(x, v), jg_axes(1), true);           /* [4,1,17] */
    jg_node *b = jg_sub(x, jg_mean(x, jg_axes(0, 2), true));              /* [4,5,17] */
    jg_node *m = jg_max(jg_add(b, a), jg_axes(-1), false);               /* [4,5] */
    jg_node *s = jg_min(jg_tanh(jg_sum(jg_square(b), jg_axes(2), false)), jg_axes(0), false);
    jg_node *loss = jg_add(jg_sum(jg_mul(m, m), JG_ALL_AXES, false),
                           jg_mean(jg_sqrt(jg_shift(s, 2)), JG_ALL_AXES, false));
    check_grads(&c, loss, (jg_node *[]){ x, v }, 2, "grad: reduction chain");
    ctx_fini(&c);
}

/* Both tie policies of max and min on data full of ties, over axis sets that need the
 * first-extreme gradient's permutation and not. */
Test(jit_settings, grad_extremes_with_ties)
{
    tctx c;
    ctx_init(&c, 154);
    jg_node *x = input(&c, JG_F64, jg_shape(4, 5, 17), TIES);
    jg_node *w = input(&c, JG_F64, jg_shape(4, 5, 17), SIGNED);
    jg_node *xw = jg_mul(x, jg_stop_gradient(w)); /* a weighted loss, so every slot matters */
    jg_node *terms[6] = {
        jg_max_ex(xw, jg_axes(-1), false, JG_TIES_FIRST),
        jg_max_ex(xw, jg_axes(0, 2), true, JG_TIES_FIRST),
        jg_min_ex(x, jg_axes(1), false, JG_TIES_FIRST),
        jg_max_ex(x, JG_ALL_AXES, false, JG_TIES_FIRST),
        jg_max_ex(x, jg_axes(1), false, JG_TIES_SPLIT),
        jg_min_ex(xw, jg_axes(0), true, JG_TIES_SPLIT),
    };
    jg_node *loss = NULL;
    for (int i = 0; i < 6; i++) {
        jg_node *t = jg_sum(jg_square(terms[i]), JG_ALL_AXES, false);
        loss = loss ? jg_add(loss, t) : t;
    }
    check_grads(&c, loss, &x, 1, "grad: max/min with ties, both policies");
    ctx_fini(&c);
}

/* Gradients of the movement ops: slice (unslice), pad, concat, take (scatter_add),
 * permute, broadcast. */
Test(jit_settings, grad_movement)
{
    tctx c;
    ctx_init(&c, 154);
    jg_node *x = input(&c, JG_F64, jg_shape(3, 17), SIGNED);
    jg_node *e = input(&c, JG_F64, jg_shape(10, 15), SIGNED);
    jg_node *ids = input_(&c, JG_I32, jg_shape(2, 6), LABELS, 10);
    jg_node *row = input(&c, JG_F64, jg_shape(1, 17), SIGNED);
    jg_node *s1 = jg_slice(x, 1, 16, 0, -3);
    jg_node *s2 = jg_slice(x, 0, 0, 3, 2);
    jg_node *p = jg_pad(x, jg_shape(1, 0), jg_shape(0, 2), 0.5);
    jg_node *cc = jg_concat(((jg_node *[]){ x, jg_square(x), row }), 3, 0);
    jg_node *tk = jg_take(e, ids, 0);                                     /* [2,6,15] */
    jg_node *loss = jg_add(jg_sum(jg_square(s1), JG_ALL_AXES, false),
                           jg_sum(jg_mul(s2, s2), JG_ALL_AXES, false));
    loss = jg_add(loss, jg_sum(jg_tanh(p), JG_ALL_AXES, false));
    loss = jg_add(loss, jg_sum(jg_mul(cc, jg_permute(jg_broadcast_to(row, jg_shape(7, 17)), jg_axes(0, 1))),
                               JG_ALL_AXES, false));
    loss = jg_add(loss, jg_sum(jg_square(tk), JG_ALL_AXES, false));
    check_grads(&c, loss, (jg_node *[]){ x, e, row }, 3, "grad: movement ops");
    ctx_fini(&c);
}

/* JIT gradients against central differences of the JIT's own forward program, f64. */
Test(jit_settings, jit_gradient_finite_differences)
{
    tctx c;
    ctx_init(&c, 161);
    jg_node *x = input(&c, JG_F64, jg_shape(6, 5), SIGNED);
    jg_node *w1 = input(&c, JG_F64, jg_shape(5, 7), SIGNED), *b1 = input(&c, JG_F64, jg_shape(7), SIGNED);
    jg_node *w2 = input(&c, JG_F64, jg_shape(7, 3), SIGNED);
    jg_node *tgt = input(&c, JG_F64, jg_shape(6, 3), UNIT);
    jg_node *h = jg_tanh(jg_add(jg_matmul(x, w1), b1));
    jg_node *logits = jg_matmul(h, w2);
    /* soft-target cross entropy plus a little mse: smooth everywhere */
    jg_node *loss = jg_add(jg_neg(jg_mean(jg_sum(jg_mul(jg_log_softmax(logits, -1), tgt), jg_axes(1), false),
                                          JG_ALL_AXES, false)),
                           jg_mean(jg_square(jg_sub(jg_softmax(logits, -1), tgt)), JG_ALL_AXES, false));
    jg_node *wrt[4] = { w1, b1, w2, x }, *g[4];
    cr_assert_eq(jg_grad(c.g, loss, wrt, 4, g), JG_OK, "%s", jg_errmsg(c.g));
    jg_node *outs[5] = { loss, g[0], g[1], g[2], g[3] };
    void **an = run(&c, outs, 5, &(jg_opts){ .executor = JG_EXEC_JIT }, "jit gradients");

    jg_program *fwd = jg_compile(c.g, &loss, 1, &(jg_opts){ .executor = JG_EXEC_JIT });
    cr_assert(fwd, "%s", jg_errmsg(c.g));
    for (int i = 0; i < c.n_in; i++)
        cr_assert_eq(jg_program_set(fwd, c.in[i].name, c.in[i].data, c.in[i].bytes), JG_OK);
    const double eps = 1e-6;
    int checked = 0;
    for (int w = 0; w < 4; w++) {
        t_input *in = input_of(&c, wrt[w]);
        double *d = in->data;
        for (int64_t i = 0; i < in->n; i++) {
            double keep = d[i], lp, lm;
            d[i] = keep + eps;
            jg_program_set(fwd, in->name, in->data, in->bytes);
            cr_assert_eq(jg_program_run(fwd), JG_OK, "%s", jg_errmsg(fwd));
            jg_program_get(fwd, 0, &lp, sizeof lp);
            d[i] = keep - eps;
            jg_program_set(fwd, in->name, in->data, in->bytes);
            cr_assert_eq(jg_program_run(fwd), JG_OK, "%s", jg_errmsg(fwd));
            jg_program_get(fwd, 0, &lm, sizeof lm);
            d[i] = keep;
            jg_program_set(fwd, in->name, in->data, in->bytes);
            double num = (lp - lm) / (2 * eps), a = ((double *)an[1 + w])[i];
            cr_assert(fabs(a - num) <= 1e-6 * fmax(fabs(a), fabs(num)) + 1e-9,
                      "d loss / d %s[%lld]: jit gradient %.12g, finite difference %.12g",
                      jg_node_name(wrt[w]), (long long)i, a, num);
            checked++;
        }
    }
    cr_assert_eq(checked, 30 + 35 + 7 + 21);
    jg_program_free(fwd);
    free_results(an, 5);
    ctx_fini(&c);
}

/* ---------------------------------------------------------------- JIT settings */

/* A reduction-heavy graph with outputs large enough for the pool to split. */
static int reduction_heavy(tctx *c, jg_node **o)
{
    jg_node *x = input(c, JG_F32, jg_shape(8, 32, 1023), SIGNED);
    jg_node *y = input(c, JG_F32, jg_shape(8, 32, 1023), SIGNED);
    jg_node *e = jg_mul(jg_exp(jg_scale(x, 0.5)), y);
    int n = 0;
    o[n++] = jg_sum(e, jg_axes(0), false);
    o[n++] = jg_sum(e, jg_axes(1), true);
    o[n++] = jg_sum(e, jg_axes(2), false);
    o[n++] = jg_mean(e, jg_axes(0, 2), false);
    o[n++] = jg_max(x, jg_axes(0), false);
    o[n++] = jg_logsumexp(x, jg_axes(-1), false);
    o[n++] = jg_sum(x, JG_ALL_AXES, false);
    o[n++] = jg_sub(x, jg_mean(x, jg_axes(0), true));
    return n;
}

/* A f32 MLP forward and backward with a log_softmax loss against one-hot float targets. */
static int mlp_fwd_bwd(tctx *c, jg_node **o)
{
    jg_node *x = input(c, JG_F32, jg_shape(64, 100), SIGNED);
    jg_node *tgt = input(c, JG_F32, jg_shape(64, 10), UNIT);
    jg_node *w1 = jg_param(c->g, "w1", jg_shape(100, 130), jg_seeded(jg_he_normal(), 1));
    jg_node *b1 = jg_param(c->g, "b1", jg_shape(130), jg_seeded(jg_uniform(-0.1, 0.1), 2));
    jg_node *w2 = jg_param(c->g, "w2", jg_shape(130, 10), jg_seeded(jg_xavier_uniform(), 3));
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *logits = jg_matmul(h, w2);
    jg_node *loss = jg_neg(jg_mean(jg_mul(jg_log_softmax(logits, -1), tgt), JG_ALL_AXES, false));
    jg_node *wrt[3] = { w1, b1, w2 }, *g[3];
    cr_assert_eq(jg_grad(c->g, loss, wrt, 3, g), JG_OK, "%s", jg_errmsg(c->g));
    int n = 0;
    o[n++] = loss;
    o[n++] = logits;
    for (int i = 0; i < 3; i++)
        o[n++] = g[i];
    return n;
}

/* Asserts results ra and rb of outs are the same bytes. */
static void same_bits(jg_node *const *o, int n, void **ra, void **rb, const char *what)
{
    for (int i = 0; i < n; i++) {
        size_t es = jg_dtype_size(jg_node_dtype(o[i]));
        int64_t numel = jg_shape_numel(jg_node_shape(o[i])), e = 0;
        if (memcmp(ra[i], rb[i], (size_t)numel * es) == 0)
            continue;
        while (e < numel && memcmp((char *)ra[i] + e * es, (char *)rb[i] + e * es, es) == 0)
            e++;
        cr_assert_fail("%s: output %d (%s) differs at element %lld: %.17g vs %.17g", what, i,
                       jg_node_op_name(o[i]), (long long)e, get(ra[i], jg_node_dtype(o[i]), e),
                       get(rb[i], jg_node_dtype(o[i]), e));
    }
}

/* The reference once, the JIT with 1 and with 2 threads: the two JIT runs bit for bit, the
 * 2-thread one against the reference at tl. */
static void threads_check(tctx *c, jg_node *const *o, int n, tol tl, const char *what)
{
    void **ref = run(c, o, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, what);
    void **one = run(c, o, n, &(jg_opts){ .executor = JG_EXEC_JIT, .num_threads = 1 }, what);
    void **two = run(c, o, n, &(jg_opts){ .executor = JG_EXEC_JIT, .num_threads = 2 }, what);
    char buf[160];
    snprintf(buf, sizeof buf, "%s, 1 vs 2 threads", what);
    same_bits(o, n, one, two, buf);
    snprintf(buf, sizeof buf, "%s, 2 threads vs reference", what);
    compare(o, n, two, ref, tl, buf, "jit threads=2", "reference");
    free_results(ref, n);
    free_results(one, n);
    free_results(two, n);
}

Test(jit_settings, threads_bit_identical)
{
    tctx c;
    ctx_init(&c, 171);
    jg_node *o[16];
    int n = reduction_heavy(&c, o);
    /* sums of 1023 f32 terms up to ~5 in size: f32 accumulation differs from the reference's
     * double by ~1e-5 absolute, hence 1e-4 here */
    threads_check(&c, o, n, (tol){ 1e-4, 1e-12 }, "reductions");
    ctx_fini(&c);

    ctx_init(&c, 172);
    n = mlp_fwd_bwd(&c, o);
    threads_check(&c, o, n, TOL, "mlp forward+backward");
    ctx_fini(&c);
}

/* The opaque kernels on outputs large enough for the pool to split them, and the gradient
 * of take (scatter_add) and of slice (unslice). */
Test(jit_settings, threads_opaque_ops)
{
    tctx c;
    ctx_init(&c, 175);
    jg_node *emb = input(&c, JG_F32, jg_shape(1000, 64), SIGNED);
    jg_node *ids = input_(&c, JG_I32, jg_shape(16, 40), LABELS, 1000);
    jg_node *x = input(&c, JG_F32, jg_shape(300, 100), SIGNED);
    jg_node *lab = input_(&c, JG_I32, jg_shape(300), LABELS, 100);
    jg_node *big = input_(&c, JG_I32, jg_shape(200), LABELS, 100);
    jg_node *tk = jg_take(emb, ids, 0);
    jg_node *sl = jg_slice(x, 1, 99, INT64_MIN, -3);
    jg_node *loss = jg_add(jg_sum(jg_square(tk), JG_ALL_AXES, false),
                           jg_sum(jg_tanh(sl), JG_ALL_AXES, false));
    jg_node *wrt[2] = { emb, x }, *g[2];
    cr_assert_eq(jg_grad(c.g, loss, wrt, 2, g), JG_OK, "%s", jg_errmsg(c.g));
    jg_node *o[] = { tk,
                     jg_pad(x, jg_shape(3, 1), jg_shape(2, 30), 0.25),
                     jg_concat(((jg_node *[]){ x, jg_neg(x), x }), 3, 1),
                     jg_concat(((jg_node *[]){ x, x }), 2, 0),
                     jg_one_hot(big, 100, JG_F32),
                     jg_argmax(x, 1),
                     jg_argmax(x, 0),
                     jg_cross_entropy(x, lab),
                     g[0],
                     g[1] };
    threads_check(&c, o, (int)(sizeof o / sizeof *o), TOL, "opaque ops");
    ctx_fini(&c);
}

/* Outputs that alias: the same node twice, an input, reshapes of an input and of a result;
 * and leaves as outputs and operands: constants, fills, scalars, parameters. */
Test(jit_settings, aliased_outputs_and_leaves)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 177 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(3, 17), SIGNED);
        jg_node *y = jg_exp(x);
        double cv[51];
        for (int i = 0; i < 51; i++)
            cv[i] = 0.1 * i - 2.5;
        jg_node *cst = jg_const(c.g, t, jg_shape(3, 17), cv);
        jg_node *fill = jg_fill(c.g, t, jg_shape(3, 17), 2.5);
        jg_node *w = jg_param_as(c.g, "w", t, jg_shape(17), jg_seeded(jg_normal(0, 1), 3));
        jg_node *o[] = { y, y, x, jg_reshape(x, jg_shape(17, 3)), jg_reshape(y, jg_shape(-1)),
                         jg_stop_gradient(x), jg_add(y, jg_reshape(jg_reshape(y, jg_shape(51)), jg_shape(3, 17))),
                         cst, fill, w, jg_scalar(c.g, t, -1.25),
                         jg_add(jg_mul(x, cst), jg_sub(fill, w)),
                         jg_sum(jg_mul(cst, jg_scalar(c.g, t, 3)), jg_axes(0), false) };
        check(&c, o, (int)(sizeof o / sizeof *o), TOL, k ? "aliased outputs, leaves f64" : "aliased outputs, leaves f32");
        ctx_fini(&c);
    }
}

/* A mixed graph for the settings below: all loop shapes, a GEMM, a softmax. */
static int mixed(tctx *c, jg_node **o, jg_dtype t)
{
    jg_node *v = input(c, t, jg_shape(1023), SIGNED), *w = input(c, t, jg_shape(17), POS);
    jg_node *col = input(c, t, jg_shape(17, 1), SIGNED), *row = input(c, t, jg_shape(1, 15), SIGNED);
    jg_node *z = input(c, t, jg_shape(4, 5, 17), SIGNED);
    jg_node *a = input(c, t, jg_shape(17, 15), SIGNED), *b = input(c, t, jg_shape(15, 33), SIGNED);
    int n = 0;
    o[n++] = jg_tanh(jg_mul(v, jg_exp(jg_neg(jg_abs(v)))));
    o[n++] = jg_log(jg_add(w, jg_sqrt(w)));
    o[n++] = jg_where(jg_gt(col, row), jg_sub(col, row), jg_sigmoid(jg_mul(col, row)));
    o[n++] = jg_sum(z, jg_axes(2), false);
    o[n++] = jg_sum(z, jg_axes(0), true);
    o[n++] = jg_max(z, jg_axes(0, 1), false);
    o[n++] = jg_logsumexp(z, JG_ALL_AXES, false);
    o[n++] = jg_sum(v, JG_ALL_AXES, false);
    o[n++] = jg_relu(jg_matmul(a, b));
    o[n++] = jg_softmax(jg_slice(jg_permute(z, jg_axes(2, 1, 0)), 0, -1, INT64_MIN, -2), 1);
    o[n++] = jg_mean(jg_square(jg_sub(z, jg_mean(z, jg_axes(-1), true))), jg_axes(-1), false);
    return n;
}

Test(jit_settings, vector_widths)
{
    static const int bits[3] = { 512, 256, 32 };
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, 181 + (uint64_t)k);
        jg_node *o[16];
        int n = mixed(&c, o, FLOATS[k]);
        void **ref = run(&c, o, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, "vector_bits");
        for (int b = 0; b < 3; b++) {
            char buf[64], desc[32];
            snprintf(buf, sizeof buf, "vector_bits %d %s", bits[b], jg_dtype_str(FLOATS[k]));
            snprintf(desc, sizeof desc, "jit vector_bits=%d", bits[b]);
            void **jit = run(&c, o, n, &(jg_opts){ .executor = JG_EXEC_JIT, .vector_bits = bits[b] }, buf);
            compare(o, n, jit, ref, TOL, buf, desc, "reference");
            free_results(jit, n);
        }
        free_results(ref, n);
        ctx_fini(&c);
    }
}

Test(jit_settings, no_fusion)
{
    const jg_opts fused = { .executor = JG_EXEC_JIT }, unfused = { .executor = JG_EXEC_JIT, .no_fusion = true };
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, 191 + (uint64_t)k);
        jg_node *o[24];
        int n = k == 0 ? mixed(&c, o, JG_F32) : mlp_fwd_bwd(&c, o);
        const char *what = k == 0 ? "no_fusion, mixed f32" : "no_fusion, mlp forward+backward";
        void **ref = run(&c, o, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, what);
        void **f = run(&c, o, n, &fused, what), **u = run(&c, o, n, &unfused, what);
        compare(o, n, u, ref, TOL, what, "unfused", "reference");
        compare(o, n, f, ref, TOL, what, "fused", "reference");
        /* against each other, tighter than against the reference */
        compare(o, n, u, f, (tol){ 1e-6, 1e-13 }, what, "unfused", "fused");
        free_results(ref, n);
        free_results(f, n);
        free_results(u, n);
        ctx_fini(&c);
    }
}


/* ---- options out of range are errors naming the option (they were clamped or ignored:
 * vector_bits 7, opt_level 99, num_threads -1 became 1, passes_off "bogus" did nothing) */

static void compile_fails(const jg_opts *o, const char *part)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8));
    jg_node *y = jg_scale(x, 2);
    cr_assert_null(jg_compile(g, &y, 1, o), "compiled with bad options ('%s' expected)", part);
    cr_assert_eq(jg_graph_status(g), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), part), "'%s' is not in: %s", part, jg_errmsg(g));
    jg_graph_free(g);
}

Test(jit_settings, options_out_of_range_are_errors)
{
    compile_fails(&(jg_opts){ .vector_bits = 7 }, "opts.vector_bits 7");
    compile_fails(&(jg_opts){ .opt_level = 99 }, "opts.opt_level 99");
    compile_fails(&(jg_opts){ .opt_level = -99 }, "opts.opt_level -99");
    compile_fails(&(jg_opts){ .num_threads = -1 }, "opts.num_threads -1");
    compile_fails(&(jg_opts){ .num_threads = 100000 }, "opts.num_threads 100000");
    compile_fails(&(jg_opts){ .passes_off = "cse,bogus" }, "unknown pass 'bogus'");
    compile_fails(&(jg_opts){ .cpu = "Not A CPU" }, "opts.cpu 'Not A CPU'");
    compile_fails(&(jg_opts){ .cpu_features = "avx2" }, "opts.cpu_features 'avx2'");
    compile_fails(&(jg_opts){ .cpu_features = "+avx2,-" }, "opts.cpu_features");
    /* well-formed names LLVM does not know (it used to print and carry on) */
    compile_fails(&(jg_opts){ .cpu = "notacpu" },
                  "opts.cpu: LLVM: 'notacpu' is not a recognized processor");
    compile_fails(&(jg_opts){ .cpu_features = "+avx2,+nosuchfeature" },
                  "opts.cpu_features: LLVM: '+nosuchfeature' is not a recognized feature");
    /* and what is in range still compiles */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8));
    jg_node *y = jg_scale(x, 2);
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .passes_off = " cse , siblings",
                                                     .opt_level = -1, .num_threads = 3,
                                                     .cpu = "haswell",
                                                     .cpu_features = "-avx512f,+fma" });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_free(p);
    jg_graph_free(g);
}
