/* The gradient checker itself: it passes correct gradients, fails a wrong one and says where,
 * works in direction mode, checks f32 graphs in double, and moves away from kinks. */
#include "support/support.h"

#include <string.h>

TestSuite(gradcheck);

Test(gradcheck, passes_a_smooth_function_in_both_modes)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(3, 4), 1);
    jg_node *f = jg_tanh(jg_mul(w, jg_sigmoid(w)));
    t_gradcheck(g, f, &w, 1);
    t_gradcheck_opts(g, f, &w, 1, &(jg_gradcheck_opts){ .mode = JG_CHECK_DIRECTIONS,
                                                         .n_directions = 5 });
    jg_graph_free(g);
}

/* x * (x > 0.3) jumps at 0.3: finite differences across the jump disagree with the (correct
 * almost everywhere) analytic gradient, so the checker must fail and point at element 1. */
Test(gradcheck, fails_and_names_the_worst_element)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3), 1);
    double xv[3] = { 1.0, 0.3, 2.0 };
    jg_param_set(g, "x", xv, sizeof xv);
    jg_node *f = jg_sum(jg_mul(x, jg_gt(x, jg_scalar_like(x, 0.3))), JG_ALL_AXES, false);
    jg_gradcheck_report r;
    cr_assert_eq(jg_gradcheck(g, f, &x, 1, NULL, &r), JG_ERR_GRAD);
    cr_assert(!r.passed);
    cr_assert_eq(r.n_checked, 3);
    cr_assert_eq(r.n_failed, 1);
    cr_assert_eq(r.worst_wrt, 0);
    cr_assert_eq(r.worst_index, 1);
    cr_assert_float_eq(r.analytic, 0.0, 1e-12); /* 0.3 > 0.3 is false */
    cr_assert_gt(r.numeric, 1e4);
    cr_assert(strstr(r.message, "FAILED") && strstr(r.message, "'x'") &&
                  strstr(r.message, "element 1"), "%s", r.message);
    jg_graph_free(g);
}

Test(gradcheck, checks_f32_graphs_in_double)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(4, 3), jg_seeded(jg_normal(0, 1), 3));
    jg_node *f = jg_sum(jg_exp(jg_tanh(w)), JG_ALL_AXES, false);
    /* at 1e-9 relative: impossible with float finite differences */
    t_gradcheck_opts(g, f, &w, 1, &(jg_gradcheck_opts){ .rtol = 1e-8, .atol = 1e-9 });
    float before[12], after[12];
    jg_param_get(g, "w", before, sizeof before);
    t_gradcheck(g, f, &w, 1);
    jg_param_get(g, "w", after, sizeof after);
    cr_assert(memcmp(before, after, sizeof before) == 0, "the store is left untouched");
    jg_graph_free(g);
}

Test(gradcheck, moves_away_from_a_relu_kink)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4), 1);
    double xv[4] = { -1, 0, 0.5, 2 }; /* relu's kink exactly at element 1 */
    jg_param_set(g, "x", xv, sizeof xv);
    jg_node *f = jg_relu(x);
    jg_gradcheck_report r;
    cr_assert_eq(jg_gradcheck(g, f, &x, 1, NULL, &r), JG_OK, "%s", r.message);
    cr_assert_gt(r.moves, 0);
    cr_assert(strstr(r.message, "moved"), "%s", r.message);
    jg_graph_free(g);
}

Test(gradcheck, gives_unbound_float_inputs_random_values_and_uses_bound_ones)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(2, 3));
    jg_node *y = jg_input(g, "y", JG_F64, jg_shape(3));
    jg_node *f = jg_mul(jg_tanh(x), jg_square(y));
    double yv[3] = { 1, -2, 0.5 };
    jg_binding bind = { "y", yv, sizeof yv };
    jg_node *wrt[2] = { x, y };
    t_gradcheck_opts(g, f, wrt, 2, &(jg_gradcheck_opts){ .inputs = &bind, .n_inputs = 1 });
    jg_graph_free(g);
}

Test(gradcheck, needs_values_for_integer_inputs)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3), 1);
    jg_node *k = jg_input(g, "k", JG_I32, jg_shape(2, 3));
    jg_node *f = jg_mul(x, jg_cast(k, JG_F64));
    jg_gradcheck_report r;
    cr_assert_eq(jg_gradcheck(g, f, &x, 1, NULL, &r), JG_ERR_ARG);
    t_assert_error(g, JG_ERR_ARG, "input 'k' is i32");
    jg_graph_free(g);
}

/* Misuse is caught before anything is built: bindings that cannot be read, a wrt node given
 * twice (its perturbations would count twice). */
Test(gradcheck, rejects_bad_bindings_and_repeated_wrt)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(64));
    jg_node *w = t_param(g, "w", jg_shape(64), 1);
    jg_node *v = t_param(g, "v", jg_shape(64), 2);
    jg_node *y = jg_sum(jg_mul(jg_mul(x, w), v), JG_ALL_AXES, false);
    int nodes = jg_graph_node_count(g);
    double small[2] = { 1, 1 };
    jg_binding short_x = { "x", small, sizeof small };
    jg_binding null_x = { "x", NULL, 64 * sizeof(double) };
    jg_node *twice[3] = { w, v, w };
    struct {
        jg_node *const *wrt;
        int n;
        jg_gradcheck_opts opts;
        const char *part;
    } cases[] = {
        { &w, 1, { .n_inputs = 1 }, "jg_gradcheck: opts.n_inputs is 1 but opts.inputs is NULL" },
        { &w, 1, { .inputs = &short_x, .n_inputs = -1 }, "opts.n_inputs is -1 (negative)" },
        { &x, 1, { .inputs = &short_x, .n_inputs = 1 },
          "jg_gradcheck: opts.inputs[0] for wrt input 'x' holds 16 bytes, the input needs 512" },
        { &x, 1, { .inputs = &null_x, .n_inputs = 1 }, "holds 512 bytes at NULL" },
        { twice, 3, { 0 }, "jg_gradcheck: wrt 0 and 2 are the same node ('w')" },
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        jg_gradcheck_report r;
        cr_assert_eq(jg_gradcheck(g, y, cases[i].wrt, cases[i].n, &cases[i].opts, &r),
                     JG_ERR_ARG, "case %d: %s", i, r.message);
        t_assert_error(g, JG_ERR_ARG, cases[i].part);
        cr_assert(!r.passed);
        cr_assert(strstr(r.message, cases[i].part), "report: %s", r.message);
        cr_assert_eq(jg_graph_node_count(g), nodes, "case %d built nodes", i);
        jg_graph_clear_error(g);
    }
    /* a well-sized binding of a wrt input is used as the starting point */
    double xv[64];
    for (int i = 0; i < 64; i++)
        xv[i] = 0.1 * i;
    jg_binding good_x = { "x", xv, sizeof xv };
    jg_node *wrt[2] = { x, w };
    t_gradcheck_opts(g, y, wrt, 2, &(jg_gradcheck_opts){ .inputs = &good_x, .n_inputs = 1 });
    jg_graph_free(g);
}
