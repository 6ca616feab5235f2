/* Pass "simplify" (src/compiler/simplify.c): each rule turns a before-graph into the
 * expected one, nothing else is touched, and programs compute the same with the pass off. */
#include "support/pass_check.h"
#include "support/support.h"

TestSuite(pass_simplify);

/* Runs simplify on `before` and asserts the result is the graph of `expected`. */
static void check_rule(jg_node *before, jg_node *expected)
{
    t_program_graph got = t_lower(&before, 1, false);
    cr_assert(pass_simplify(&got.c), "simplify reported no change");
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_program_graph want = t_lower(&expected, 1, false);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

static void check_untouched(jg_node *n)
{
    t_program_graph got = t_lower(&n, 1, false), want = t_lower(&n, 1, false);
    cr_assert_not(pass_simplify(&got.c), "simplify changed a graph it must leave alone");
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

#define RULE_TEST(rule, build_before, build_expected)                                      \
    Test(pass_simplify, rule)                                                              \
    {                                                                                      \
        jg_graph *g = jg_graph_new(), *e = jg_graph_new();                                 \
        jg_node *x = jg_param(g, "x", jg_shape(4, 6), jg_normal(0, 1));            \
        jg_node *ex = jg_param(e, "x", jg_shape(4, 6), jg_normal(0, 1));           \
        (void)x, (void)ex;                                                                 \
        jg_node *before = (build_before), *expected = (build_expected);                    \
        cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));                          \
        cr_assert_eq(jg_graph_status(e), JG_OK, "%s", jg_errmsg(e));                          \
        check_rule(before, expected);                                                      \
        jg_graph_free(g), jg_graph_free(e);                                                \
    }

#define F(gr, v) jg_fill(gr, JG_F32, jg_shape(4, 6), v)

RULE_TEST(times_one, jg_exp(jg_mul(x, F(g, 1))), jg_exp(ex))
RULE_TEST(one_times, jg_exp(jg_mul(F(g, 1), x)), jg_exp(ex))
RULE_TEST(plus_zero, jg_exp(jg_add(x, F(g, 0))), jg_exp(ex))
RULE_TEST(zero_plus, jg_exp(jg_add(F(g, 0), x)), jg_exp(ex))
RULE_TEST(minus_zero, jg_exp(jg_sub(x, F(g, 0))), jg_exp(ex))
RULE_TEST(double_negation, jg_exp(jg_neg(jg_neg(x))), jg_exp(ex))
RULE_TEST(transpose_of_transpose, jg_exp(jg_transpose(jg_transpose(x))), jg_exp(ex))
RULE_TEST(permute_chain_composes,
          jg_permute(jg_permute(jg_reshape(x, jg_shape(2, 3, 4)), jg_axes(1, 2, 0)), jg_axes(1, 2, 0)),
          jg_permute(jg_reshape(ex, jg_shape(2, 3, 4)), jg_axes(2, 0, 1)))
RULE_TEST(reshape_chain, jg_exp(jg_reshape(jg_reshape(x, jg_shape(24)), jg_shape(2, 12))),
          jg_exp(jg_reshape(ex, jg_shape(2, 12))))
RULE_TEST(reshape_round_trip, jg_exp(jg_reshape(jg_reshape(x, jg_shape(24)), jg_shape(4, 6))),
          jg_exp(ex))
RULE_TEST(moved_constant, jg_mul(x, jg_broadcast_to(jg_fill(g, JG_F32, jg_shape(6), 2), jg_shape(4, 6))),
          jg_mul(ex, jg_fill(e, JG_F32, jg_shape(4, 6), 2)))
RULE_TEST(zero_times_constant, jg_add(x, jg_mul(F(g, 0), F(g, 5))), ex)
/* a batch-1 weight gradient x^T dy: one product per element */
RULE_TEST(outer_product,
          jg_exp(jg_matmul(jg_transpose(jg_slice(x, 0, 0, 1, 1)), jg_slice(x, 0, 1, 2, 1))),
          jg_exp(jg_mul(jg_transpose(jg_slice(ex, 0, 0, 1, 1)), jg_slice(ex, 0, 1, 2, 1))))

Test(pass_simplify, leaves_what_is_not_an_identity)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param(g, "x", jg_shape(4, 6), jg_normal(0, 1));
    /* x - x is NaN for an infinite x; x * 0 likewise; x * 2 is no identity */
    check_untouched(jg_add(jg_sub(x, x), jg_mul(x, F(g, 0))));
    check_untouched(jg_mul(x, F(g, 2)));
    /* a unit of another dtype would change the result's dtype: kept */
    jg_node *i = jg_input(g, "i", JG_I32, jg_shape(4, 6));
    check_untouched(jg_neg(jg_neg(i)));
    /* a product over two terms is a sum: a GEMM */
    check_untouched(jg_matmul(jg_slice(x, 1, 0, 2, 1), jg_slice(x, 0, 0, 2, 1)));
    jg_graph_free(g);
}

Test(pass_simplify, same_values_and_gradients_with_the_pass_off)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(5, 7), 1);
    jg_node *y = jg_transpose(jg_transpose(jg_neg(jg_neg(jg_add(jg_mul(x, jg_fill(g, JG_F64, jg_shape(5, 7), 1)),
                                                                 jg_fill(g, JG_F64, jg_shape(5, 7), 0))))));
    jg_node *loss = jg_sum(jg_tanh(jg_reshape(jg_reshape(y, jg_shape(35)), jg_shape(7, 5))),
                           JG_ALL_AXES, false);
    /* and an outer product, as a batch-1 weight gradient is */
    loss = jg_add(loss, jg_sum(jg_tanh(jg_matmul(jg_transpose(jg_slice(x, 0, 0, 1, 1)),
                                                jg_slice(x, 0, 2, 3, 1))), JG_ALL_AXES, false));
    jg_node *outs[2] = { loss, NULL };
    cr_assert_eq(jg_grad(g, loss, &x, 1, &outs[1]), JG_OK, "%s", jg_errmsg(g));
    t_assert_pass_neutral(g, outs, 2, "simplify", NULL, 0, 1e-12);
    jg_graph_free(g);
}
