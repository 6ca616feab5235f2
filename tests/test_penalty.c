/* Tests of jg_l2_penalty: its value by hand, first- and second-order gradient checks in f64,
 * the JIT (which computes its decomposition) against the reference executor, and misuse. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(penalty);

Test(penalty, value_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(2, 2), jg_constant(0.5));
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(3), jg_constant(-2));
    jg_param_set(g, "a", (double[]){ 1, -2, 3, 0.5 }, 4 * sizeof(double));
    jg_node *p = jg_l2_penalty(0.25, ((jg_node *[]){ a, b }), 2);
    t_assert_shape(p, JG_SCALAR);
    cr_assert_eq(jg_node_dtype(p), JG_F64);
    cr_assert_str_eq(jg_node_op_name(p), "l2_penalty");
    /* 0.25 * ((1 + 4 + 9 + 0.25) + 3 * 4) */
    t_expect(p, JG_SCALAR, (double[]){ 0.25 * (14.25 + 12) });
    /* a parameter named twice counts twice; c = 0 is allowed */
    t_expect(jg_l2_penalty(1, ((jg_node *[]){ b, b }), 2), JG_SCALAR, (double[]){ 24 });
    t_expect(jg_l2_penalty(0, &a, 1), JG_SCALAR, (double[]){ 0 });
    jg_graph_free(g);
}

Test(penalty, f32_params_give_an_f32_scalar)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(4), jg_constant(2));
    jg_node *p = jg_l2_penalty(0.5, &w, 1);
    cr_assert_eq(jg_node_dtype(p), JG_F32);
    t_expect(p, JG_SCALAR, (double[]){ 8 });
    jg_graph_free(g);
}

Test(penalty, gradcheck)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", jg_shape(3, 2), 1), *b = t_param(g, "b", jg_shape(4), 2);
    jg_node *wrt[] = { a, b };
    t_gradcheck(g, jg_l2_penalty(0.3, wrt, 2), wrt, 2);
    /* inside a larger loss, with a parameter penalised twice */
    jg_node *x = t_randn(g, jg_shape(5, 3), 3);
    jg_node *c = jg_sum(jg_tanh(jg_matmul(x, a)), JG_ALL_AXES, false);
    jg_node *loss = jg_add(c, jg_l2_penalty(0.7, ((jg_node *[]){ a, b, a }), 3));
    t_gradcheck(g, loss, wrt, 2);
    jg_graph_free(g);
}

Test(penalty, gradient_is_2cw)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(3), jg_zeros());
    jg_param_set(g, "w", (double[]){ 1, -2, 4 }, 3 * sizeof(double));
    jg_node *d;
    cr_assert_eq(jg_grad(g, jg_l2_penalty(0.5, &w, 1), &w, 1, &d), JG_OK, "%s", jg_errmsg(g));
    t_expect(d, jg_shape(3), (double[]){ 1, -2, 4 });
    jg_graph_free(g);
}

Test(penalty, second_order)
{
    /* the Hessian of c |w|^2 is 2c I: differentiate a projection of the gradient again */
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(2, 3), 4);
    jg_node *d;
    cr_assert_eq(jg_grad(g, jg_l2_penalty(1.5, &w, 1), &w, 1, &d), JG_OK, "%s", jg_errmsg(g));
    t_gradcheck(g, jg_sum(jg_square(d), JG_ALL_AXES, false), &w, 1);
    jg_graph_free(g);
}

/* The JIT lowers the penalty to its sum of squares: same value as the reference executor. */
static void jit_matches_reference(jg_dtype t, double tol)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", t, jg_shape(37, 5), jg_seeded(jg_normal(0, 1), 1));
    jg_node *b = jg_param_as(g, "b", t, jg_shape(19), jg_seeded(jg_normal(0, 1), 2));
    jg_node *p = jg_l2_penalty(0.01, ((jg_node *[]){ a, b }), 2);
    double v[2];
    jg_executor ex[2] = { JG_EXEC_REFERENCE, JG_EXEC_JIT };
    for (int k = 0; k < 2; k++) {
        jg_program *prog = jg_compile(g, &p, 1, &(jg_opts){ .executor = ex[k] });
        cr_assert(prog, "%s", jg_errmsg(g));
        cr_assert_eq(jg_program_run(prog), JG_OK, "%s", jg_errmsg(prog));
        if (t == JG_F32) {
            float f;
            jg_program_get(prog, 0, &f, sizeof f);
            v[k] = f;
        } else {
            jg_program_get(prog, 0, &v[k], sizeof v[k]);
        }
        jg_program_free(prog);
    }
    cr_assert(v[0] > 0);
    cr_assert(fabs(v[0] - v[1]) <= tol * fabs(v[0]), "reference %.17g, JIT %.17g", v[0], v[1]);
    jg_graph_free(g);
}

Test(penalty, jit_matches_reference)
{
    jit_matches_reference(JG_F64, 1e-12);
    jit_matches_reference(JG_F32, 1e-5);
}

/* ---- misuse: each recorded on the graph, naming jg_l2_penalty and the reason */

static void expect_error(double c, int which, jg_status st, const char *part)
{
    jg_graph *g = jg_graph_new();
    jg_graph *h = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2), jg_zeros());
    jg_node *w64 = jg_param_as(g, "w64", JG_F64, jg_shape(2), jg_zeros());
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2));
    jg_node *other = jg_param(h, "o", jg_shape(2), jg_zeros());
    jg_node *second[] = { w, x, w64, NULL, other, w };
    jg_node *p = jg_l2_penalty(c, ((jg_node *[]){ w, second[which] }), 2);
    cr_assert_not(jg_node_ok(p));
    t_assert_error(g, st, "jg_l2_penalty: ");
    t_assert_error(g, st, part);
    jg_graph_free(g);
    jg_graph_free(h);
}

Test(penalty, errors)
{
    expect_error(-0.1, 5, JG_ERR_ARG, "coefficient -0.1 must be >= 0 and finite");
    expect_error(NAN, 5, JG_ERR_ARG, "must be >= 0 and finite");
    expect_error(INFINITY, 5, JG_ERR_ARG, "must be >= 0 and finite");
    expect_error(0.1, 1, JG_ERR_ARG, "operand 1 is not a parameter (op input)");
    expect_error(0.1, 2, JG_ERR_DTYPE, "dtypes differ: operand 0 is f32, operand 1 is f64");
    expect_error(0.1, 3, JG_ERR_ARG, "operand 1 is NULL");
    expect_error(0.1, 4, JG_ERR_ARG, "operand 1 belongs to another graph");
}

Test(penalty, a_computed_node_is_not_a_parameter)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2), jg_zeros());
    jg_node *p = jg_l2_penalty(1, ((jg_node *[]){ jg_scale(w, 2) }), 1);
    cr_assert_not(jg_node_ok(p));
    t_assert_error(g, JG_ERR_ARG, "jg_l2_penalty: operand 0 is not a parameter (op mul)");
    jg_graph_free(g);
}

Test(penalty, no_operands_give_a_poisoned_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2), jg_zeros());
    cr_assert_not(jg_node_ok(jg_l2_penalty(1, NULL, 1)));
    cr_assert_not(jg_node_ok(jg_l2_penalty(1, &w, 0)));
    cr_assert_not(jg_node_ok(jg_l2_penalty(1, &w, -3)));
    /* nothing to record on: the graph stays usable */
    cr_assert_eq(jg_graph_status(g), JG_OK);
    jg_graph_free(g);
}

Test(penalty, poisoned_operand_passes_poison_on)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2), jg_zeros());
    jg_node *bad = jg_matmul(w, w); /* 1-D: an error */
    jg_node *p = jg_l2_penalty(1, ((jg_node *[]){ w, bad }), 2);
    cr_assert_not(jg_node_ok(p));
    t_assert_error(g, JG_ERR_SHAPE, "jg_matmul");
    jg_graph_free(g);
}
