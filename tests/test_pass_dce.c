/* Pass "dce" (src/compiler/dce.c): what no output or update needs is dropped, and what
 * they need is kept, parameters that updates write included. */
#include "support/pass_check.h"
#include "support/support.h"

TestSuite(pass_dce);

Test(pass_dce, drops_what_a_rewrite_left_behind)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *x = jg_param(g, "x", jg_shape(5), jg_normal(0, 1));
    jg_node *before = jg_exp(jg_mul(x, jg_fill(g, JG_F32, jg_shape(5), 1)));
    t_program_graph got = t_lower(&before, 1, false);
    pass_simplify(&got.c); /* x * 1 -> x: the fill was copied before the mul folded */
    cr_assert_eq(t_count_op(&got, JG_OP_FILL), 0, "unreachable from the root ...");
    int before_dce = got.c.g->n_nodes;
    cr_assert(pass_dce(&got.c), "... but still in the graph until dce");
    cr_assert_eq(got.c.g->n_nodes, before_dce - 1);
    cr_assert_not(pass_dce(&got.c), "a second dce finds nothing");
    jg_node *ex = jg_param(e, "x", jg_shape(5), jg_normal(0, 1));
    jg_node *expected = jg_exp(ex);
    t_program_graph want = t_lower(&expected, 1, false);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got), t_program_graph_free(&want);
    jg_graph_free(g), jg_graph_free(e);
}

Test(pass_dce, drops_nodes_lowering_leaves_unused)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param(g, "x", jg_shape(8, 3), jg_normal(0, 1));
    /* the training branch of batchnorm is lowered away in an evaluation program */
    jg_node *y = jg_batchnorm("bn", x, 0.1, 1e-5);
    lowered low;
    char err[256];
    cr_assert_eq(lower_graph(g, &y, 1, false, &low, err, sizeof err), JG_OK, "%s", err);
    jg_node *root = low.map[y->id];
    pass_ctx c = { .g = low.g, .roots = &root, .n_roots = 1, .map = low.map,
                   .n_map = low.n_src };
    int nodes = c.g->n_nodes;
    cr_assert(pass_dce(&c), "the batch statistics are dead in an evaluation program");
    cr_assert_lt(c.g->n_nodes, nodes);
    low.g = c.g;
    lowered_free(&low);
    jg_graph_free(g);
}

Test(pass_dce, keeps_parameters_updates_write)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(4), jg_constant(1));
    jg_node *v = jg_param(g, "v", jg_shape(4), jg_constant(2));
    /* w <- v * 3: the update's value does not read w, w must survive as the target */
    jg_update u = { w, jg_scale(v, 3) };
    jg_node *out = jg_sum(v, JG_ALL_AXES, false);
    jg_program *p = jg_compile(g, &out, 1, &(jg_opts){ .updates = &u, .n_updates = 1 });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    float got[4];
    cr_assert_eq(jg_param_get(g, "w", got, sizeof got), JG_OK);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(got[i], 6.0f, 0);
    jg_program_free(p);
    jg_graph_free(g);
}
