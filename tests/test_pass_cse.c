/* Pass "cse" (src/compiler/cse.c): equal subexpressions become one node; leaves with an
 * identity of their own never merge. */
#include "support/pass_check.h"
#include "support/support.h"

TestSuite(pass_cse);

Test(pass_cse, equal_subexpressions_merge_bottom_up)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *x = jg_param(g, "x", jg_shape(6, 5), jg_normal(0, 1));
    jg_node *a = jg_sum(jg_exp(jg_scale(x, 0.5)), jg_axes(1), false);
    jg_node *b = jg_sum(jg_exp(jg_scale(x, 0.5)), jg_axes(1), false); /* written twice */
    jg_node *before = jg_add(a, b);
    jg_node *ex = jg_param(e, "x", jg_shape(6, 5), jg_normal(0, 1));
    jg_node *once = jg_sum(jg_exp(jg_scale(ex, 0.5)), jg_axes(1), false);
    jg_node *expected = jg_add(once, once);

    t_program_graph got = t_lower(&before, 1, false);
    int nodes = got.c.g->n_nodes;
    cr_assert(pass_cse(&got.c));
    cr_assert_geq(got.c.rewrites, 3, "scale's fill and mul, exp, sum: %d", got.c.rewrites);
    cr_assert_lt(got.c.g->n_nodes, nodes);
    t_program_graph want = t_lower(&expected, 1, false);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got), t_program_graph_free(&want);
    jg_graph_free(g), jg_graph_free(e);
}

Test(pass_cse, leaves_with_identity_never_merge)
{
    jg_graph *g = jg_graph_new();
    jg_node *p = jg_param(g, "p", jg_shape(4), jg_zeros());
    jg_node *q = jg_param(g, "q", jg_shape(4), jg_zeros()); /* same shape, same init */
    jg_node *i = jg_input(g, "i", JG_F32, jg_shape(4)), *k = jg_input(g, "k", JG_F32, jg_shape(4));
    jg_node *d1 = jg_dropout(jg_add(p, q), 0.5), *d2 = jg_dropout(jg_add(p, q), 0.5);
    jg_node *y = jg_add(jg_add(jg_exp(p), jg_exp(q)), jg_add(jg_add(i, k), jg_add(d1, d2)));
    t_program_graph got = t_lower(&y, 1, true);
    pass_cse(&got.c);
    cr_assert_eq(t_count_op(&got, JG_OP_PARAM), 2);
    cr_assert_eq(t_count_op(&got, JG_OP_INPUT), 2);
    cr_assert_eq(t_count_op(&got, JG_OP_EXP), 2, "exp(p) and exp(q) differ");
    cr_assert_eq(t_count_op(&got, JG_OP_RANDOM), 2, "two dropouts draw two masks");
    t_program_graph_free(&got);
    jg_graph_free(g);
}

Test(pass_cse, attributes_distinguish_nodes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param(g, "x", jg_shape(3, 4), jg_normal(0, 1));
    jg_node *y = jg_add(jg_sum(x, jg_axes(0), false), jg_sum(jg_transpose(x), jg_axes(1), false));
    jg_node *z = jg_add(jg_sum(jg_scale(x, 2), jg_axes(1), true), jg_sum(jg_scale(x, 3), jg_axes(1), true));
    jg_node *outs[2] = { y, z };
    t_program_graph got = t_lower(outs, 2, false);
    cr_assert_not(pass_cse(&got.c), "nothing is equal here");
    t_program_graph_free(&got);
    jg_graph_free(g);
}

Test(pass_cse, same_values_and_gradients_with_the_pass_off)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(7, 9), 2);
    jg_node *h = jg_add(jg_tanh(jg_matmul(x, jg_transpose(x))), jg_tanh(jg_matmul(x, jg_transpose(x))));
    jg_node *loss = jg_mean(jg_square(h), JG_ALL_AXES, false);
    jg_node *outs[2] = { loss, NULL };
    cr_assert_eq(jg_grad(g, loss, &x, 1, &outs[1]), JG_OK, "%s", jg_errmsg(g));
    t_assert_pass_neutral(g, outs, 2, "cse", NULL, 0, 1e-12);
    jg_graph_free(g);
}
