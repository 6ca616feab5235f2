/* Training programs: one step of each optimiser against the formula, the learning rate as a
 * store entry, frozen parameters, and a toy regression that converges. */
#include "support/support.h"

#include <math.h>

TestSuite(train);

/* loss = sum((w - t)^2) / 2 has gradient w - t. */
static jg_node *quadratic(jg_graph *g, jg_node **w)
{
    *w = jg_param_as(g, "w", JG_F64, jg_shape(2), jg_constant(1));
    jg_node *t = t_const(g, jg_shape(2), (double[]){ 3, -1 });
    return jg_scale(jg_sum(jg_square(jg_sub(*w, t)), JG_ALL_AXES, false), 0.5);
}

Test(train, sgd_with_momentum_follows_the_formula)
{
    jg_graph *g = jg_graph_new();
    jg_node *w;
    jg_node *loss = quadratic(g, &w);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.9) });
    cr_assert(p, "%s", jg_errmsg(g));
    double wv[2] = { 1, 1 }, v[2] = { 0, 0 }, t[2] = { 3, -1 }, got[2];
    for (int step = 0; step < 3; step++) {
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        for (int i = 0; i < 2; i++) {
            v[i] = 0.9 * v[i] + (wv[i] - t[i]);
            wv[i] -= 0.1 * v[i];
        }
    }
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, wv, 2, 1e-12);
    jg_param_get(g, "w.m", got, sizeof got);
    t_assert_close(got, v, 2, 1e-12);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, adam_follows_the_formula)
{
    jg_graph *g = jg_graph_new();
    jg_node *w;
    jg_node *loss = quadratic(g, &w);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(0.01) });
    cr_assert(p, "%s", jg_errmsg(g));
    double wv[2] = { 1, 1 }, m[2] = { 0 }, v[2] = { 0 }, t[2] = { 3, -1 }, got[2];
    for (int step = 1; step <= 3; step++) {
        cr_assert_eq(jg_program_run(p), JG_OK);
        for (int i = 0; i < 2; i++) {
            double gr = wv[i] - t[i];
            m[i] = 0.9 * m[i] + 0.1 * gr;
            v[i] = 0.999 * v[i] + 0.001 * gr * gr;
            double mh = m[i] / (1 - pow(0.9, step)), vh = v[i] / (1 - pow(0.999, step));
            wv[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
        }
    }
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, wv, 2, 1e-12);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, learning_rate_changes_without_recompiling)
{
    jg_graph *g = jg_graph_new();
    jg_node *w;
    jg_program *p = jg_compile_train(g, quadratic(g, &w), &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0) });
    double lr = 0.5, got[2];
    cr_assert_eq(jg_param_set(g, "opt.lr", &lr, sizeof lr), JG_OK, "%s", jg_errmsg(g));
    jg_program_run(p);
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, (double[]){ 1 - 0.5 * (1 - 3), 1 - 0.5 * (1 + 1) }, 2, 1e-12);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, frozen_parameters_are_not_updated)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(2), jg_constant(1));
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(2), jg_constant(2));
    jg_param_freeze(b, true);
    jg_node *loss = jg_sum(jg_mul(a, b), JG_ALL_AXES, false);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_run(p);
    double av[2], bv[2];
    jg_param_get(g, "a", av, sizeof av);
    jg_param_get(g, "b", bv, sizeof bv);
    t_assert_close(av, (double[]){ 0.8, 0.8 }, 2, 1e-12);
    t_assert_close(bv, (double[]){ 2, 2 }, 2, 0);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, linear_regression_converges)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(32, 3), 5);
    jg_node *w_true = t_const(g, jg_shape(3, 1), (double[]){ 1.5, -2, 0.5 });
    jg_node *y = jg_matmul(x, w_true);
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(3, 1), jg_zeros());
    jg_node *loss = jg_mse_loss(jg_matmul(x, w), y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.5) });
    cr_assert(p, "%s", jg_errmsg(g));
    double l = 0;
    for (int i = 0; i < 200; i++) {
        jg_program_run(p);
        jg_program_get(p, 0, &l, sizeof l);
    }
    cr_assert_lt(l, 1e-10, "loss %g", l);
    double got[3];
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, (double[]){ 1.5, -2, 0.5 }, 3, 1e-5);
    jg_program_free(p);
    jg_graph_free(g);
}
