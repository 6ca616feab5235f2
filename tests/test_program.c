/* Programs: several outputs, shapes and dtypes of outputs, inputs by name, f32 rounding vs
 * exact mode, and programs that outlive their graph handle. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(program);

Test(program, several_outputs_with_their_shapes_and_dtypes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_node *outs[3] = { jg_scale(x, 2), jg_cast(x, JG_I32), jg_cast(x, JG_F64) };
    jg_program *p = jg_compile(g, outs, 3, NULL);
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_output_count(p), 3);
    cr_assert_eq(jg_program_output_dtype(p, 1), JG_I32);
    cr_assert_eq(jg_program_output_shape(p, 2).dim[1], 3);
    float xv[6] = { 1.5f, -2.5f, 3, 4, 5, 6 };
    cr_assert_eq(jg_program_set(p, "x", xv, sizeof xv), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK);
    float a[6];
    int32_t b[6];
    double c[6];
    cr_assert_eq(jg_program_get(p, 0, a, sizeof a), JG_OK);
    cr_assert_eq(jg_program_get(p, 1, b, sizeof b), JG_OK);
    cr_assert_eq(jg_program_get(p, 2, c, sizeof c), JG_OK);
    cr_assert(a[1] == -5.0f && b[0] == 1 && b[1] == -2 && c[0] == 1.5);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(program, f32_results_are_rounded_after_each_op_unless_exact)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_fill(g, JG_F32, jg_shape(1), 1.0);
    /* (1 + 1e-8) - 1 is 0 in float arithmetic, 1e-8 in double */
    jg_node *y = jg_shift(jg_shift(x, 1e-8), -1.0);
    jg_program *rounded = jg_compile(g, &y, 1, NULL);
    jg_program *exact = jg_compile(g, &y, 1, &(jg_opts){ .exact = true });
    float r, e;
    jg_program_run(rounded);
    jg_program_run(exact);
    jg_program_get(rounded, 0, &r, sizeof r);
    jg_program_get(exact, 0, &e, sizeof e);
    cr_assert(r == 0.0f, "rounded: %g", r);
    cr_assert(fabsf(e - 1e-8f) < 1e-12f, "exact: %g", e);
    jg_program_free(rounded);
    jg_program_free(exact);
    jg_graph_free(g);
}

Test(program, inputs_of_the_graph_the_program_does_not_read_are_accepted)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2));
    jg_input(g, "labels", JG_I32, jg_shape(2));
    jg_node *y = jg_neg(x);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    int32_t lab[2] = { 0, 1 };
    cr_assert_eq(jg_program_set(p, "labels", lab, sizeof lab), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_ERR_STATE, "x is still unset");
    cr_assert(strstr(jg_errmsg(p), "'x' is not set"), "%s", jg_errmsg(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(program, a_bound_input_stays_bound_across_runs)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(1));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(1), jg_constant(0));
    jg_update up = { w, jg_add(w, x) };
    jg_program *p = jg_compile(g, &w, 1, &(jg_opts){ .updates = &up, .n_updates = 1 });
    double one = 1, got;
    jg_program_set(p, "x", &one, sizeof one);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(jg_program_run(p), JG_OK);
    jg_param_get(g, "w", &got, sizeof got);
    cr_assert_eq(got, 5.0);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(program, dump_lists_every_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_relu(jg_scale(x, 2));
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    jg_graph_dump(g, f);
    fclose(f);
    cr_assert(strstr(buf, "input \"x\"") && strstr(buf, "relu") && strstr(buf, "f32[2,3]"),
              "%s", buf);
    free(buf);
    jg_graph_free(g);
}
