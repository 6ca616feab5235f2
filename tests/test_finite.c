/* check_finite: a run that produces inf or NaN fails and names the first op that did. */
#include "support/support.h"

TestSuite(finite);

Test(finite, the_first_op_producing_inf_or_nan_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 20));
    jg_node *e = jg_exp(jg_scale(x, 100.0)); int line = __LINE__;  /* overflows for x >= 1 */
    jg_node *y = jg_log(jg_sub(e, e));                              /* log(0) = -inf, inf - inf = NaN */
    float xv[80] = { 0 };
    xv[33] = 2;
    char want[64];
    snprintf(want, sizeof want, "jg_exp (built at test_finite.c:%d), element 33", line);
    for (int k = 0; k < 2; k++) {
        jg_program *p = jg_compile(g, &y, 1, &(jg_opts){
            .check_finite = true, .no_fusion = true,
            .executor = k ? JG_EXEC_REFERENCE : JG_EXEC_JIT });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_set(p, "x", xv, sizeof xv);
        cr_assert_eq(jg_program_run(p), JG_ERR_NONFINITE);
        cr_assert(strstr(jg_errmsg(p), "non-finite value (inf)") && strstr(jg_errmsg(p), want),
                  "%s", jg_errmsg(p));
        jg_program_free(p);
    }
    /* without the check the run succeeds and the NaN flows on */
    jg_program *p = jg_compile(g, &y, 1, NULL);
    jg_program_set(p, "x", xv, sizeof xv);
    cr_assert_eq(jg_program_run(p), JG_OK);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(finite, a_finite_run_passes_the_check)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(30));
    jg_node *y = jg_tanh(jg_scale(x, 3));
    float xv[30] = { 0 };
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .check_finite = true });
    jg_program_set(p, "x", xv, sizeof xv);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    jg_program_free(p);
    jg_graph_free(g);
}
