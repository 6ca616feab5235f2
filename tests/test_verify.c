/* The graph verifier accepts what builders make and catches corrupted nodes. */
#include "support/support.h"
#include "ops/op.h"

TestSuite(verify);

Test(verify, accepts_graphs_built_through_the_api_including_gradients)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 1), *b = t_param(g, "b", jg_shape(3), 2);
    jg_node *f = jg_sum(jg_tanh(jg_add(jg_matmul(x, jg_transpose(x)), jg_scalar_like(x, 1))),
                        jg_axes(-1), true);
    jg_node *wrt[2] = { x, b }, *d[2];
    jg_grad(g, jg_sum(jg_add(f, jg_sum(b, JG_ALL_AXES, false)), JG_ALL_AXES, false), wrt, 2, d);
    char why[256] = "";
    cr_assert_eq(graph_verify(g, why, sizeof why), JG_OK, "%s", why);
    jg_graph_free(g);
}

Test(verify, catches_a_shape_that_disagrees_with_the_shape_rule)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 1);
    jg_node *y = jg_exp(x);
    y->shape.dim[1] = 5; /* corrupt it as a buggy pass might */
    char why[256] = "";
    cr_assert_eq(graph_verify(g, why, sizeof why), JG_ERR_STATE);
    cr_assert(strstr(why, "exp") && strstr(why, "[4,5]") && strstr(why, "[4,3]"), "%s", why);
    jg_graph_free(g);
}

Test(verify, catches_an_operand_that_is_not_earlier)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2), 1);
    jg_node *y = jg_neg(x), *z = jg_neg(y);
    y->in[0] = z; /* a cycle */
    char why[256] = "";
    cr_assert_eq(graph_verify(g, why, sizeof why), JG_ERR_STATE);
    cr_assert(strstr(why, "not an earlier node"), "%s", why);
    jg_graph_free(g);
}
