/* The losses' PyTorch options and softplus_ex (src/ops/loss_options.c): values against the
 * formulas PyTorch documents, computed here in plain C; f64 gradient checks of every
 * option; labels equal to ignore_index pass and others out of range fail the run; misuse;
 * the JIT against the reference executor. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(loss_options, .timeout = 60);

enum { N = 5, C = 4 };
static const double LOGITS[N * C] = { 0.5, -1, 2, 0.25, 1, 1, -0.5, 3, -2, 0, 0.75, 1.5,
                                      0.1, 0.2, 0.3, -0.4, 2.5, -1.5, 0, 1 };
static const int32_t CLASSES[N] = { 2, 3, -100, 0, 1 };
static const double WEIGHT[C] = { 0.5, 2, 1, 3 };

/* PyTorch's cross entropy, by hand: per-row losses (0 where ignored) and the weight sum. */
static void ce_by_hand(bool weighted, double *rows, double *wsum)
{
    *wsum = 0;
    for (int i = 0; i < N; i++) {
        if (CLASSES[i] == -100) {
            rows[i] = 0;
            continue;
        }
        double m = -INFINITY, s = 0;
        for (int j = 0; j < C; j++)
            m = fmax(m, LOGITS[i * C + j]);
        for (int j = 0; j < C; j++)
            s += exp(LOGITS[i * C + j] - m);
        double w = weighted ? WEIGHT[CLASSES[i]] : 1;
        rows[i] = w * (m + log(s) - LOGITS[i * C + CLASSES[i]]);
        *wsum += w;
    }
}

Test(loss_options, cross_entropy_values)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(N, C), LOGITS);
    jg_node *y = jg_const(g, JG_I32, jg_shape(N), CLASSES);
    jg_node *w = t_const(g, jg_shape(C), WEIGHT);
    for (int weighted = 0; weighted < 2; weighted++) {
        double rows[N], wsum, total = 0;
        ce_by_hand(weighted, rows, &wsum);
        for (int i = 0; i < N; i++)
            total += rows[i];
        jg_loss_opts o = { .ignore = true, .ignore_index = -100, .weight = weighted ? w : NULL };
        o.reduction = JG_REDUCE_NONE;
        t_expect(jg_cross_entropy_ex(x, y, &o), jg_shape(N), rows);
        o.reduction = JG_REDUCE_SUM;
        t_expect(jg_cross_entropy_ex(x, y, &o), JG_SCALAR, &total);
        o.reduction = JG_REDUCE_MEAN;
        double mean = total / wsum;
        t_expect(jg_cross_entropy_ex(x, y, &o), JG_SCALAR, &mean);
    }
    /* without options: the fused op itself; sum is it times n */
    static const int32_t in_range[N] = { 0, 1, 2, 3, 0 };
    jg_node *ok = jg_const(g, JG_I32, jg_shape(N), in_range);
    cr_assert_str_eq(jg_node_op_name(jg_cross_entropy_ex(x, ok, NULL)), "cross_entropy");
    double *m = t_eval(jg_cross_entropy(x, ok));
    double sum = m[0] * N;
    t_expect(jg_cross_entropy_ex(x, ok, &(jg_loss_opts){ .reduction = JG_REDUCE_SUM }),
             JG_SCALAR, &sum);
    free(m);
    jg_graph_free(g);
}

Test(loss_options, cross_entropy_gradcheck)
{
    for (int k = 0; k < 6; k++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = t_param(g, "x", jg_shape(N, C), 400 + (uint64_t)k);
        jg_node *y = jg_const(g, JG_I32, jg_shape(N), CLASSES);
        jg_loss_opts o = { .reduction = (jg_reduction)(k % 3), .ignore = true,
                           .ignore_index = -100 };
        if (k >= 3)
            o.weight = t_const(g, jg_shape(C), WEIGHT);
        t_gradcheck(g, jg_cross_entropy_ex(x, y, &o), &x, 1);
        jg_graph_free(g);
    }
}

Test(loss_options, bce_values_and_gradcheck)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(N, C), 410);
    double tv[N * C], xv[N * C];
    for (int i = 0; i < N * C; i++)
        tv[i] = (i % 3) / 2.0;
    jg_node *t = t_const(g, jg_shape(N, C), tv);
    jg_node *pw = t_const(g, jg_shape(C), (double[]){ 1, 2, 0.5, 4 });
    jg_node *w = t_const(g, jg_shape(N, 1), (double[]){ 1, 0.5, 2, 1, 3 });
    cr_assert_eq(jg_param_get(g, "x", xv, sizeof xv), JG_OK);
    double want[N * C], total = 0;
    for (int i = 0; i < N * C; i++) {
        double p = ((double[]){ 1, 2, 0.5, 4 })[i % C], wi = ((double[]){ 1, .5, 2, 1, 3 })[i / C];
        double s = 1 / (1 + exp(-xv[i]));
        want[i] = -wi * (p * tv[i] * log(s) + (1 - tv[i]) * log(1 - s));
        total += want[i];
    }
    jg_loss_opts o = { .weight = w, .pos_weight = pw, .reduction = JG_REDUCE_NONE };
    jg_node *none = jg_bce_with_logits_ex(x, t, &o);
    t_expect(none, jg_shape(N, C), want);
    o.reduction = JG_REDUCE_MEAN;
    double mean = total / (N * C);
    jg_node *m = jg_bce_with_logits_ex(x, t, &o);
    t_expect(m, JG_SCALAR, &mean);
    t_gradcheck(g, m, &x, 1);
    t_gradcheck(g, none, &x, 1);
    o.reduction = JG_REDUCE_SUM;
    o.weight = NULL;
    t_gradcheck(g, jg_bce_with_logits_ex(x, t, &o), &x, 1);
    jg_graph_free(g);
}

Test(loss_options, bce_is_stable_for_large_logits)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(4), (double[]){ 800, -800, 800, -800 });
    jg_node *t = t_const(g, jg_shape(4), (double[]){ 1, 0, 0, 1 });
    jg_node *pw = t_const(g, jg_shape(1), (double[]){ 3 });
    jg_node *l = jg_bce_with_logits_ex(x, t, &(jg_loss_opts){ .pos_weight = pw,
                                                               .reduction = JG_REDUCE_NONE });
    t_expect(l, jg_shape(4), (double[]){ 0, 0, 800, 2400 });
    jg_graph_free(g);
}

Test(loss_options, mse_reductions)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    jg_node *b = t_const(g, jg_shape(3), (double[]){ 0, 4, 3 });
    t_expect(jg_mse_loss_ex(a, b, &(jg_loss_opts){ .reduction = JG_REDUCE_NONE }), jg_shape(3),
             (double[]){ 1, 4, 0 });
    t_expect(jg_mse_loss_ex(a, b, &(jg_loss_opts){ .reduction = JG_REDUCE_SUM }), JG_SCALAR,
             (double[]){ 5 });
    t_expect(jg_mse_loss_ex(a, b, NULL), JG_SCALAR, (double[]){ 5.0 / 3 });
    jg_graph_free(g);
}

Test(loss_options, softplus_beta_and_threshold)
{
    jg_graph *g = jg_graph_new();
    double xv[5] = { -3, -0.5, 0.4, 4, 12 };
    jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(5), jg_from_data(xv));
    double want[5];
    for (int i = 0; i < 5; i++) /* torch: beta 2, threshold 10 */
        want[i] = 2 * xv[i] > 10 ? xv[i] : log1p(exp(2 * xv[i])) / 2;
    jg_node *y = jg_softplus_ex(x, 2, 10);
    t_expect(y, jg_shape(5), want);
    t_gradcheck(g, y, &x, 1);
    cr_assert_str_eq(jg_node_op_name(jg_softplus_ex(x, 1, INFINITY)), "softplus");
    jg_graph_free(g);
}

Test(loss_options, labels_out_of_range_fail_unless_ignored)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_node *y = jg_input(g, "idx", JG_I32, jg_shape(2));
    jg_node *l = jg_cross_entropy_ex(x, y, &(jg_loss_opts){ .ignore = true, .ignore_index = -1 });
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, &l, 1, &(jg_opts){ .executor = e ? JG_EXEC_JIT
                                                                         : JG_EXEC_REFERENCE });
        cr_assert(p, "%s", jg_errmsg(g));
        float xv[6] = { 0 };
        cr_assert_eq(jg_program_set(p, "x", xv, sizeof xv), JG_OK);
        cr_assert_eq(jg_program_set(p, "idx", (int32_t[]){ -1, 2 }, 8), JG_OK);
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        cr_assert_eq(jg_program_set(p, "idx", (int32_t[]){ 3, 2 }, 8), JG_OK);
        cr_assert_eq(jg_program_run(p), JG_ERR_RANGE);
        cr_assert(strstr(jg_errmsg(p), "out of range"), "%s", jg_errmsg(p));
        jg_program_free(p);
    }
    jg_graph_free(g);
}

Test(loss_options, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(2));
    jg_cross_entropy_ex(x, y, &(jg_loss_opts){ .reduction = (jg_reduction)9 });
    t_assert_error(g, JG_ERR_ARG, "jg_cross_entropy_ex: reduction is 9");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    y = jg_input(g, "y", JG_I32, jg_shape(2));
    jg_cross_entropy_ex(x, y, &(jg_loss_opts){ .weight = jg_fill(g, JG_F32, jg_shape(2), 1) });
    t_assert_error(g, JG_ERR_SHAPE, "jg_cross_entropy_ex: weight is [2], must be [3]");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    y = jg_input(g, "y", JG_I32, jg_shape(2));
    jg_cross_entropy_ex(x, y, &(jg_loss_opts){ .weight = jg_fill(g, JG_F64, jg_shape(3), 1) });
    t_assert_error(g, JG_ERR_DTYPE, "jg_cross_entropy_ex: weight is f64, the logits f32");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_bce_with_logits_ex(x, x, &(jg_loss_opts){ .pos_weight = jg_fill(g, JG_F32, jg_shape(2), 1) });
    t_assert_error(g, JG_ERR_SHAPE, "jg_bce_with_logits_ex: pos_weight is [2], must broadcast");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_bce_with_logits_ex(x, x, &(jg_loss_opts){ .ignore = true });
    t_assert_error(g, JG_ERR_ARG, "ignore_index is for jg_cross_entropy_ex");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_mse_loss_ex(x, x, &(jg_loss_opts){ .weight = x });
    t_assert_error(g, JG_ERR_ARG, "jg_mse_loss_ex: takes a reduction only");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_softplus_ex(jg_input(g, "x", JG_F32, jg_shape(2)), 0, 20);
    t_assert_error(g, JG_ERR_ARG, "jg_softplus_ex: beta 0 must be positive");
    jg_graph_free(g);

    /* the plain loss's own errors come first, under its name */
    g = jg_graph_new();
    jg_cross_entropy_ex(jg_input(g, "x", JG_F32, jg_shape(2, 3)),
                        jg_input(g, "y", JG_F32, jg_shape(2)), NULL);
    t_assert_error(g, JG_ERR_DTYPE, "jg_cross_entropy: labels must be i32");
    jg_graph_free(g);
    cr_assert(!jg_node_ok(jg_cross_entropy_ex(NULL, NULL, NULL)));
}

Test(loss_options, jit_matches_reference)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 420 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(33, 10), SIGNED);
        jg_node *y = input_(&c, JG_I32, jg_shape(33), LABELS, 10);
        jg_node *w = input(&c, t, jg_shape(10), POS);
        jg_node *tg = input(&c, t, jg_shape(33, 10), UNIT);
        jg_node *p = jg_param_as(c.g, "p", t, jg_shape(33, 10), jg_normal(0, 2));
        olist l = { .n = 0 };
        for (int r = 0; r < 3; r++) {
            jg_loss_opts o = { .reduction = (jg_reduction)r, .weight = w, .ignore = true,
                               .ignore_index = 3 };
            push(&l, jg_cross_entropy_ex(x, y, &o));
            jg_loss_opts b = { .reduction = (jg_reduction)r, .pos_weight = w };
            push(&l, jg_bce_with_logits_ex(x, tg, &b));
        }
        jg_node *loss = jg_add(jg_cross_entropy_ex(p, y, &(jg_loss_opts){ .weight = w }),
                               jg_bce_with_logits_ex(p, tg, &(jg_loss_opts){ .pos_weight = w }));
        jg_node *d = NULL;
        cr_assert_eq(jg_grad(c.g, loss, &p, 1, &d), JG_OK, "%s", jg_errmsg(c.g));
        push(&l, d);
        push(&l, jg_softplus_ex(x, 3, 2));
        check(&c, l.o, l.n, TOL_GRAD, t == JG_F32 ? "loss options f32" : "loss options f64");
        ctx_fini(&c);
    }
}
