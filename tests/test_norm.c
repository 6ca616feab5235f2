/* Batchnorm and layer norm: training vs evaluation behaviour, running statistics, gradients
 * in training mode, JIT against the reference. */
#include "support/support.h"
#include "ops/op.h" /* jg_mode_ */

#include <math.h>
#include <stdlib.h>

TestSuite(norm);

Test(norm, batchnorm_normalises_with_batch_statistics_when_training)
{
    jg_graph *g = jg_graph_new();
    double xv[8] = { 1, 10, 3, 20, 5, 30, 7, 40 }; /* [4, 2]: channel 0 = 1 3 5 7 */
    jg_node *x = t_const(g, jg_shape(4, 2), xv);
    jg_node *y = jg_batchnorm("bn", x, 0.1, 1e-5);
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    double out[2][8];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, &y, 1, &(jg_opts){
            .mode = JG_MODE_TRAIN, .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT });
        cr_assert(p, "%s", jg_errmsg(g));
        cr_assert_eq(jg_program_run(p), JG_OK);
        jg_program_get(p, 0, out[e], sizeof out[e]);
        jg_program_free(p);
    }
    double sd0 = sqrt(5.0 + 1e-5); /* channel 0: mean 4, biased variance 5 */
    double want0[4] = { -3 / sd0, -1 / sd0, 1 / sd0, 3 / sd0 };
    for (int i = 0; i < 4; i++) {
        cr_assert_float_eq(out[0][2 * i], want0[i], 1e-9);
        cr_assert_float_eq(out[1][2 * i], want0[i], 1e-9);
    }
    /* two training runs updated the running statistics twice: mean 0 -> 0.4 -> 0.76 */
    double rm[2], rv[2];
    jg_param_get(g, "bn.running_mean", rm, sizeof rm);
    jg_param_get(g, "bn.running_var", rv, sizeof rv);
    cr_assert_float_eq(rm[0], 0.76, 1e-12);
    double unbiased0 = 20.0 / 3;
    double rv1 = 0.9 + 0.1 * unbiased0;
    cr_assert_float_eq(rv[0], 0.9 * rv1 + 0.1 * unbiased0, 1e-12);
    jg_graph_free(g);
}

Test(norm, batchnorm_uses_running_statistics_when_evaluating)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(3, 2, 2, 2));
    jg_node *y = jg_batchnorm("bn", x, 0.1, 1e-5);
    double rm[2] = { 1, -1 }, rv[2] = { 4, 9 }, gm[2] = { 2, 3 }, bt[2] = { 0.5, -0.5 };
    jg_param_set(g, "bn.running_mean", rm, sizeof rm);
    jg_param_set(g, "bn.running_var", rv, sizeof rv);
    jg_param_set(g, "bn.gamma", gm, sizeof gm);
    jg_param_set(g, "bn.beta", bt, sizeof bt);
    double xv[24], out[24];
    for (int i = 0; i < 24; i++)
        xv[i] = i * 0.5 - 3;
    double *v = t_eval_with(y, &(jg_binding){ "x", xv, sizeof xv }, 1);
    for (int i = 0; i < 24; i++) {
        int ch = (i / 4) % 2;
        out[i] = gm[ch] * (xv[i] - rm[ch]) / sqrt(rv[ch] + 1e-5) + bt[ch];
    }
    t_assert_close(v, out, 24, 1e-12);
    free(v);
    double after[2];
    jg_param_get(g, "bn.running_mean", after, sizeof after);
    cr_assert(after[0] == 1 && after[1] == -1, "evaluation leaves the running statistics");
    jg_graph_free(g);
}

Test(norm, gradients_in_training_mode_pass_gradcheck)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3, 2), 1);
    jg_node *y = jg_tanh(jg_batchnorm("bn", x, 0.1, 1e-3));
    jg_node *gamma = jg_param_find(g, "bn.gamma"), *beta = jg_param_find(g, "bn.beta");
    double gv[3] = { 0.5, 1.5, -1 };
    jg_param_set(g, "bn.gamma", gv, sizeof gv);
    jg_node *wrt[3] = { x, gamma, beta };
    t_gradcheck_opts(g, y, wrt, 3, &(jg_gradcheck_opts){ .train = true });
    double rm[3];
    jg_param_get(g, "bn.running_mean", rm, sizeof rm);
    cr_assert(rm[0] == 0 && rm[1] == 0 && rm[2] == 0, "a gradient check updates no state");

    jg_node *z = t_param(g, "z", jg_shape(3, 5), 2);
    jg_node *l = jg_layernorm("ln", z, 1e-5);
    jg_node *wz[3] = { z, jg_param_find(g, "ln.gamma"), jg_param_find(g, "ln.beta") };
    t_gradcheck(g, jg_sigmoid(l), wz, 3);
    jg_graph_free(g);
}

/* Evaluation programs differentiate what they compute: the running statistics, as PyTorch's
 * model.eval() (input gradients and saliency maps of a trained model). Before, every program
 * got the training branch's gradient. The training program does not differentiate the
 * evaluation branch: the gradient it does not take is dropped when it is lowered. */
Test(norm, gradients_in_evaluation_mode_use_the_running_statistics)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3, 2), 3);
    jg_node *b = t_param(g, "b", jg_shape(1, 3, 1), 4); /* a conv bias before the norm */
    jg_node *y = jg_batchnorm("bn", jg_add(x, b), 0.1, 1e-3);
    jg_param_set(g, "bn.running_mean", (double[]){ 0.5, -1, 2 }, 24);
    jg_param_set(g, "bn.running_var", (double[]){ 4, 0.25, 1 }, 24);
    jg_param_set(g, "bn.gamma", (double[]){ 2, 3, -1 }, 24);
    jg_node *loss = jg_sum(jg_square(y), JG_ALL_AXES, false);
    jg_node *wrt[2] = { x, b }, *d[2];
    cr_assert_eq(jg_grad(g, loss, wrt, 2, d), JG_OK, "%s", jg_errmsg(g));
    double *yv = t_eval(y), *dx = t_eval(d[0]), *db = t_eval(d[1]);
    double sum_c[3] = { 0 };
    for (int i = 0; i < 24; i++) {
        int c = (i / 2) % 3;
        double scale = ((double[]){ 2, 3, -1 })[c] / sqrt(((double[]){ 4, 0.25, 1 })[c] + 1e-3);
        cr_assert_float_eq(dx[i], 2 * yv[i] * scale, 1e-12, "element %d", i);
        sum_c[c] += dx[i];
    }
    for (int c = 0; c < 3; c++) /* in training mode the bias's gradient would be 0 */
        cr_assert_float_eq(db[c], sum_c[c], 1e-12);
    cr_assert(fabs(db[0]) > 1e-3);
    free(yv), free(dx), free(db);
    t_gradcheck(g, loss, wrt, 2); /* the evaluation-mode function (gradcheck's default) */
    /* the training program computes no more than when the graph had no evaluation branch */
    jg_graph *h = jg_graph_new();
    jg_node *hx = t_param(h, "x", jg_shape(4, 3, 2), 3);
    jg_node *hy = jg_tanh(jg_add(hx, t_param(h, "b", jg_shape(1, 3, 1), 4)));
    jg_node *dh = NULL, *dg = NULL;
    jg_grad(h, jg_sum(jg_square(hy), JG_ALL_AXES, false), &hx, 1, &dh);
    jg_node *gy = jg_tanh(jg_add(x, b));
    jg_node *gmix = jg_mode_(JG_HERE, gy, jg_scale(gy, 3)); /* a cheap evaluation branch */
    jg_grad(g, jg_sum(jg_square(gmix), JG_ALL_AXES, false), &x, 1, &dg);
    jg_opts train = { .mode = JG_MODE_TRAIN };
    jg_program_stats with = t_stats(g, &dg, 1, &train), without = t_stats(h, &dh, 1, &train);
    cr_assert_eq(with.kernels, without.kernels);
    cr_assert_eq(with.arena_bytes, without.arena_bytes);
    jg_graph_free(h);
    jg_graph_free(g);
}

Test(norm, training_programs_update_only_the_statistics_they_compute)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w", jg_shape(4, 3), jg_he_normal());
    jg_node *h = jg_batchnorm("bn1", jg_matmul(x, w), 0.1, 1e-5);
    jg_node *other = jg_batchnorm("bn2", x, 0.1, 1e-5); /* not part of the loss */
    (void)other;
    jg_node *loss = jg_sum(jg_square(h), JG_ALL_AXES, false);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.01, 0) });
    cr_assert(p, "%s", jg_errmsg(g));
    float xv[32];
    for (int i = 0; i < 32; i++)
        xv[i] = (float)(i % 7);
    jg_program_set(p, "x", xv, sizeof xv);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    float rm1[3], rm2[4];
    jg_param_get(g, "bn1.running_mean", rm1, sizeof rm1);
    jg_param_get(g, "bn2.running_mean", rm2, sizeof rm2);
    cr_assert(rm1[0] != 0 || rm1[1] != 0 || rm1[2] != 0, "bn1's statistics moved");
    cr_assert(rm2[0] == 0 && rm2[3] == 0, "bn2's did not");
    jg_program_free(p);
    jg_graph_free(g);
}

Test(norm, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4));
    cr_assert(!jg_node_ok(jg_batchnorm("bn", x, 0.1, 1e-5)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_batchnorm");
    jg_graph_clear_error(g);
    jg_node *y = jg_input(g, "y", JG_F32, jg_shape(2, 3));
    cr_assert(!jg_node_ok(jg_batchnorm("bn", y, 2.0, 1e-5)));
    t_assert_error(g, JG_ERR_ARG, "momentum");
    jg_graph_clear_error(g);
    cr_assert(jg_node_ok(jg_batchnorm("bn", y, 0.1, 1e-5)));
    cr_assert(!jg_node_ok(jg_batchnorm("bn", jg_input(g, "z", JG_F32, jg_shape(2, 5)), 0.1, 1e-5)));
    t_assert_error(g, JG_ERR_SHAPE, "'bn.gamma' exists as f32[3], needed f32[5]");
    jg_graph_free(g);
}
