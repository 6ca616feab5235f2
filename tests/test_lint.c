/* The lint: it warns about a ReLU straight into a sigmoid and about constant-initialised
 * weights, naming where they were built, and stays quiet about sound models. */
#include "support/support.h"

TestSuite(lint);

Test(lint, relu_then_sigmoid_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w", jg_shape(4, 1), jg_he_normal());
    jg_node *r = jg_relu(jg_matmul(x, w)); int line = __LINE__;
    jg_node *y = jg_sigmoid(r);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert(p, "%s", jg_errmsg(g));
    char want[64];
    snprintf(want, sizeof want, "jg_relu (test_lint.c:%d", line);
    cr_assert(strstr(jg_program_warnings(p), "jg_sigmoid") &&
                  strstr(jg_program_warnings(p), want) &&
                  strstr(jg_program_warnings(p), "predicts one class"),
              "%s", jg_program_warnings(p));
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    cr_assert_eq(st.warnings, 1);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(lint, constant_initialised_weights_are_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w1", jg_shape(4, 16), jg_constant(0.1));
    jg_node *b = jg_param(g, "b1", jg_shape(16), jg_zeros()); /* a bias: fine */
    jg_node *y = jg_tanh(jg_add(jg_matmul(x, w), b));
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert(strstr(jg_program_warnings(p), "parameter 'w1'") &&
                  !strstr(jg_program_warnings(p), "'b1'"),
              "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(lint, a_sound_model_has_no_warnings)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(8));
    jg_node *w1 = jg_param(g, "w1", jg_shape(4, 16), jg_he_normal());
    jg_node *w2 = jg_param(g, "w2", jg_shape(16, 3), jg_xavier_uniform());
    jg_node *loss = jg_cross_entropy(jg_matmul(jg_relu(jg_matmul(x, w1)), w2), y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.9) });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_str_eq(jg_program_warnings(p), "");
    jg_program_free(p);
    jg_graph_free(g);
}
