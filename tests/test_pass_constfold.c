/* Pass "constfold" (src/compiler/constfold.c): subgraphs of constants become one
 * constant computed at compile time, with the bits the executors would have produced. */
#include "support/pass_check.h"
#include "support/support.h"

#include <stdlib.h>

TestSuite(pass_constfold);

static void check_fold(jg_node *before, jg_node *expected)
{
    t_program_graph got = t_lower(&before, 1, false);
    cr_assert(pass_constfold(&got.c), "constfold reported no change");
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_program_graph want = t_lower(&expected, 1, false);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

Test(pass_constfold, pointwise_ops_of_fills_become_a_fill)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_shape s = jg_shape(512, 512); /* large: a fill stays a fill, nothing is expanded */
    jg_node *x = jg_input(g, "x", JG_F64, s);
    jg_node *c = jg_exp(jg_add(jg_fill(g, JG_F64, s, 1), jg_fill(g, JG_F64, s, 2)));
    jg_node *ex = jg_input(e, "x", JG_F64, s);
    check_fold(jg_mul(x, c), jg_mul(ex, jg_fill(e, JG_F64, s, exp(3.0))));
    jg_graph_free(g), jg_graph_free(e);
}

Test(pass_constfold, small_constant_subgraphs_become_a_constant)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(3));
    jg_node *table = t_const(g, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    jg_node *col = jg_sum(jg_square(table), jg_axes(0), false); /* 17, 29, 45 */
    jg_node *ex = jg_input(e, "x", JG_F64, jg_shape(3));
    jg_node *folded = t_const(e, jg_shape(3), (double[]){ 17, 29, 45 });
    check_fold(jg_add(x, col), jg_add(ex, folded));
    jg_graph_free(g), jg_graph_free(e);
}

Test(pass_constfold, f32_results_are_rounded_like_the_executors_round_them)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4));
    jg_node *third = jg_div(jg_fill(g, JG_F32, jg_shape(4), 1), jg_fill(g, JG_F32, jg_shape(4), 3));
    jg_node *y = jg_mul(jg_mul(x, third), jg_fill(g, JG_F32, jg_shape(4), 3));
    float in[4] = { 1, 2, 3, 7 };
    jg_binding b = { "x", in, sizeof in };
    t_assert_pass_neutral(g, &y, 1, "constfold", &b, 1, 0); /* bit-equal */
    jg_graph_free(g);
}

Test(pass_constfold, leaves_inputs_params_random_and_failing_ops_alone)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(3), 1);
    jg_node *idx = jg_const(g, JG_I32, jg_shape(2), ((int32_t[]){ 0, 7 })); /* 7 out of range */
    jg_node *table = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    jg_node *bad = jg_take(table, idx, 0);
    jg_node *y = jg_add(jg_sum(jg_exp(w), JG_ALL_AXES, false), jg_sum(bad, JG_ALL_AXES, false));
    t_program_graph got = t_lower(&y, 1, false);
    cr_assert_not(pass_constfold(&got.c), "nothing here may fold");
    cr_assert_eq(t_count_op(&got, JG_OP_TAKE), 1, "the failing take stays for run time");
    t_program_graph_free(&got);
    /* and the run reports the range error as it would without the pass */
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(pass_constfold, large_constant_tables_stay_kernels)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(300, 300));
    int32_t *zeros = calloc(300 * 300, sizeof *zeros);
    jg_node *big = jg_cast(jg_reshape(jg_const(g, JG_I32, jg_shape(300 * 300), zeros), jg_shape(300, 300)), JG_F32);
    free(zeros);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_node *y = jg_add(x, big);
    t_program_graph got = t_lower(&y, 1, false);
    pass_constfold(&got.c);
    cr_assert_eq(t_count_op(&got, JG_OP_CAST), 1, "a 90,000-element table is not folded");
    t_program_graph_free(&got);
    jg_graph_free(g);
}
