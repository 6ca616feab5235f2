/* Gradient clipping inserted by the compiler: by value, by global norm, per parameter, each
 * against the formula, and fused: no kernel count explosion. */
#include "support/support.h"

#include <math.h>

TestSuite(clip);

/* loss = sum(a * ca) + sum(b * cb): the gradients are the constants ca, cb. */
static void one_step(const jg_train_opts *o, double *a_out, double *b_out)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(3), jg_zeros());
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(2), jg_zeros());
    jg_node *ca = t_const(g, jg_shape(3), (double[]){ 3, -4, 0.5 });
    jg_node *cb = t_const(g, jg_shape(2), (double[]){ 12, 0 });
    jg_node *loss = jg_add(jg_sum(jg_mul(a, ca), JG_ALL_AXES, false),
                           jg_sum(jg_mul(b, cb), JG_ALL_AXES, false));
    jg_program *p = jg_compile_train(g, loss, o);
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    jg_param_get(g, "a", a_out, 3 * sizeof *a_out);
    jg_param_get(g, "b", b_out, 2 * sizeof *b_out);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(clip, by_value_clamps_each_element)
{
    double a[3], b[2];
    one_step(&(jg_train_opts){ .optimizer = jg_sgd(1, 0), .clip_value = 1 }, a, b);
    t_assert_close(a, (double[]){ -1, 1, -0.5 }, 3, 1e-12);
    t_assert_close(b, (double[]){ -1, 0 }, 2, 1e-12);
}

Test(clip, by_global_norm_scales_every_gradient)
{
    double a[3], b[2];
    /* |g| = sqrt(9 + 16 + 0.25 + 144) = 13.0096...; scale = 1 / |g| */
    one_step(&(jg_train_opts){ .optimizer = jg_sgd(1, 0), .clip_norm = 1 }, a, b);
    double norm = sqrt(9 + 16 + 0.25 + 144);
    t_assert_close(a, (double[]){ -3 / norm, 4 / norm, -0.5 / norm }, 3, 1e-9);
    t_assert_close(b, (double[]){ -12 / norm, 0 }, 2, 1e-9);
    /* a norm under the limit is left alone */
    one_step(&(jg_train_opts){ .optimizer = jg_sgd(1, 0), .clip_norm = 100 }, a, b);
    t_assert_close(a, (double[]){ -3, 4, -0.5 }, 3, 1e-12);
}

Test(clip, per_parameter_norm)
{
    double a[3], b[2];
    one_step(&(jg_train_opts){ .optimizer = jg_sgd(1, 0), .clip_norm = 2, .clip_per_param = true },
             a, b);
    double na = sqrt(9 + 16 + 0.25);
    t_assert_close(a, (double[]){ -3 * 2 / na, 4 * 2 / na, -0.5 * 2 / na }, 3, 1e-9);
    t_assert_close(b, (double[]){ -2, 0 }, 2, 1e-9);
}

Test(clip, invalid_settings)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param(g, "a", jg_shape(2), jg_zeros());
    jg_node *loss = jg_sum(jg_square(a), JG_ALL_AXES, false);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
                                                                 .clip_norm = -1 }));
    t_assert_error(g, JG_ERR_ARG, "clip_norm");
    jg_graph_free(g);
}
