/* Reverse-mode autodiff: gradients w.r.t. parameters and inputs, accumulation over several
 * uses, stop_gradient, frozen parameters, second order (Hessian-vector products). */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(autodiff);

Test(autodiff, gradient_of_a_polynomial_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    double xv[3] = { -1.5, 0.25, 2.0 };
    jg_param_set(g, "x", xv, sizeof xv);
    /* f = sum(x^3 + 2x): x is used three times, so contributions must accumulate */
    jg_node *f = jg_sum(jg_add(jg_mul(jg_mul(x, x), x), jg_scale(x, 2)), JG_ALL_AXES, false);
    jg_node *dx;
    cr_assert_eq(jg_grad(g, f, &x, 1, &dx), JG_OK, "%s", jg_errmsg(g));
    double *v = t_eval(dx);
    double want[3];
    for (int i = 0; i < 3; i++)
        want[i] = 3 * xv[i] * xv[i] + 2;
    t_assert_close(v, want, 3, 1e-12);
    free(v);
    jg_graph_free(g);
}

Test(autodiff, gradient_with_respect_to_inputs_and_unrelated_nodes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(2));
    jg_node *unused = t_param(g, "unused", jg_shape(2), 3);
    jg_node *f = jg_sum(jg_square(x), JG_ALL_AXES, false);
    jg_node *wrt[2] = { x, unused }, *d[2];
    cr_assert_eq(jg_grad(g, f, wrt, 2, d), JG_OK);
    cr_assert_not_null(d[0]);
    cr_assert_null(d[1], "no gradient flows into a node the output does not depend on");
    double xv[2] = { 3, -4 };
    double *v = t_eval_with(d[0], &(jg_binding){ "x", xv, sizeof xv }, 1);
    t_assert_close(v, (double[]){ 6, -8 }, 2, 1e-12);
    free(v);
    jg_graph_free(g);
}

Test(autodiff, stop_gradient_and_frozen_parameters_block_the_flow)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", jg_shape(2), 1), *b = t_param(g, "b", jg_shape(2), 2);
    jg_node *c = t_param(g, "c", jg_shape(2), 3);
    cr_assert_eq(jg_param_freeze(c, true), JG_OK);
    jg_node *f = jg_sum(jg_add(jg_mul(jg_stop_gradient(a), b), jg_mul(a, c)), JG_ALL_AXES, false);
    jg_node *wrt[3] = { a, b, c }, *d[3];
    cr_assert_eq(jg_grad(g, f, wrt, 3, d), JG_OK);
    cr_assert_null(d[2], "a frozen parameter receives no gradient");
    double cv[2], bv[2];
    jg_param_get(g, "c", cv, sizeof cv);
    jg_param_get(g, "a", bv, sizeof bv);
    double *da = t_eval(d[0]), *db = t_eval(d[1]);
    t_assert_close(da, cv, 2, 1e-12); /* only through a * c */
    t_assert_close(db, bv, 2, 1e-12); /* d/db (sg(a) * b) = a */
    free(da);
    free(db);
    jg_graph_free(g);
}

Test(autodiff, broadcast_operand_gradient_is_summed_to_its_shape)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 1), *b = t_param(g, "b", jg_shape(3), 2);
    jg_node *f = jg_sum(jg_add(x, b), JG_ALL_AXES, false);
    jg_node *db;
    cr_assert_eq(jg_grad(g, f, &b, 1, &db), JG_OK);
    cr_assert_eq(jg_node_shape(db).ndim, 1);
    double *v = t_eval(db);
    t_assert_close(v, (double[]){ 4, 4, 4 }, 3, 1e-12);
    free(v);
    jg_graph_free(g);
}

/* A small tanh MLP: f(w) = sum(tanh(tanh(x w1) w2)). H v by differentiating g . v, where
 * g = df/dw, checked against central differences of the gradient. */
Test(autodiff, hessian_vector_product_of_a_tanh_mlp)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(5, 4), 7);
    jg_node *w1 = t_param(g, "w1", jg_shape(4, 3), 1), *w2 = t_param(g, "w2", jg_shape(3, 2), 2);
    jg_node *f = jg_sum(jg_tanh(jg_matmul(jg_tanh(jg_matmul(x, w1)), w2)), JG_ALL_AXES, false);
    jg_node *gw1;
    cr_assert_eq(jg_grad(g, f, &w1, 1, &gw1), JG_OK, "%s", jg_errmsg(g));
    jg_node *v = t_randn(g, jg_shape(4, 3), 9);
    jg_node *gv = jg_sum(jg_mul(gw1, v), JG_ALL_AXES, false);
    jg_node *hv;
    cr_assert_eq(jg_grad(g, gv, &w1, 1, &hv), JG_OK, "%s", jg_errmsg(g));
    double *hv_val = t_eval(hv), *vv = t_eval(v);

    /* Numerical: (g(w + h v) - g(w - h v)) / 2h */
    double w0[12], wp[12], h = 1e-5;
    jg_param_get(g, "w1", w0, sizeof w0);
    double *gp, *gm;
    for (int i = 0; i < 12; i++)
        wp[i] = w0[i] + h * vv[i];
    jg_param_set(g, "w1", wp, sizeof wp);
    gp = t_eval(gw1);
    for (int i = 0; i < 12; i++)
        wp[i] = w0[i] - h * vv[i];
    jg_param_set(g, "w1", wp, sizeof wp);
    gm = t_eval(gw1);
    double num[12];
    for (int i = 0; i < 12; i++)
        num[i] = (gp[i] - gm[i]) / (2 * h);
    t_assert_close(hv_val, num, 12, 1e-7);
    free(hv_val);
    free(vv);
    free(gp);
    free(gm);
    jg_graph_free(g);
}

Test(autodiff, gradient_of_a_gradient_passes_gradcheck)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 4);
    jg_node *f = jg_sum(jg_mul(jg_sigmoid(x), jg_tanh(x)), JG_ALL_AXES, false);
    jg_node *dx;
    cr_assert_eq(jg_grad(g, f, &x, 1, &dx), JG_OK);
    t_gradcheck(g, dx, &x, 1); /* second derivatives */
    jg_graph_free(g);
}

Test(autodiff, integer_outputs_have_no_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    jg_node *i = jg_cast(x, JG_I32);
    jg_node *d;
    cr_assert_eq(jg_grad(g, i, &x, 1, &d), JG_ERR_DTYPE);
    t_assert_error(g, JG_ERR_DTYPE, "i32");
    jg_graph_free(g);
}

Test(autodiff, gradient_nodes_are_ordinary_nodes_of_the_graph)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    int before = jg_graph_node_count(g);
    jg_node *f = jg_sum(jg_exp(x), JG_ALL_AXES, false), *d;
    jg_grad(g, f, &x, 1, &d);
    cr_assert_gt(jg_graph_node_count(g), before + 2);
    cr_assert_eq(jg_node_graph(d), g);
    cr_assert(jg_node_id(d) > jg_node_id(f));
    jg_graph_free(g);
}
