/* Dropout and train/eval programs: masks from the counter-based generator, identical in the
 * JIT and the reference executor, different every run, absent from evaluation programs. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(dropout);

static void run_get(jg_program *p, void *out, size_t bytes)
{
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_get(p, 0, out, bytes), JG_OK);
}

Test(dropout, training_programs_drop_and_scale_evaluation_programs_do_not)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_fill(g, JG_F32, jg_shape(100, 100), 2.0);
    jg_node *y = jg_dropout(x, 0.25);
    static float tr[10000], ev[10000];
    jg_program *train = jg_compile(g, &y, 1, &(jg_opts){ .mode = JG_MODE_TRAIN });
    jg_program *eval = jg_compile(g, &y, 1, NULL);
    cr_assert(train && eval, "%s", jg_errmsg(g));
    run_get(train, tr, sizeof tr);
    run_get(eval, ev, sizeof ev);
    int zeros = 0;
    double mean = 0;
    for (int i = 0; i < 10000; i++) {
        cr_assert(tr[i] == 0.0f || fabsf(tr[i] - 2.0f / 0.75f) < 1e-6f, "%g", tr[i]);
        zeros += tr[i] == 0;
        mean += tr[i] / 10000;
        cr_assert_eq(ev[i], 2.0f);
    }
    cr_assert(zeros > 2200 && zeros < 2800, "%d of 10000 dropped", zeros);
    cr_assert(fabs(mean - 2.0) < 0.05, "inverted dropout keeps the mean: %g", mean);
    jg_program_stats st;
    jg_program_stats_get(eval, &st);
    char *dump = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&dump, &len);
    jg_program_dump(eval, f);
    fclose(f);
    cr_assert_null(strstr(dump, "random"), "no dropout in the evaluation program: %s", dump);
    free(dump);
    jg_program_free(train);
    jg_program_free(eval);
    jg_graph_free(g);
}

Test(dropout, masks_match_between_executors_and_change_every_run)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(7, 33));
    jg_node *y = jg_dropout(jg_tanh(x), 0.5);
    double xv[231], a[2][231], b[2][231];
    for (int i = 0; i < 231; i++)
        xv[i] = (i % 11) - 5;
    jg_program *jit = jg_compile(g, &y, 1, &(jg_opts){ .mode = JG_MODE_TRAIN });
    jg_program *ref = jg_compile(g, &y, 1, &(jg_opts){ .mode = JG_MODE_TRAIN,
                                                       .executor = JG_EXEC_REFERENCE });
    jg_program_set(jit, "x", xv, sizeof xv);
    jg_program_set(ref, "x", xv, sizeof xv);
    for (int r = 0; r < 2; r++) {
        run_get(jit, a[r], sizeof a[r]);
        run_get(ref, b[r], sizeof b[r]);
    }
    t_assert_close(a[0], b[0], 231, 1e-12);
    t_assert_close(a[1], b[1], 231, 1e-12);
    cr_assert(memcmp(a[0], a[1], sizeof a[0]) != 0, "a new mask every run");
    jg_program_free(jit);
    jg_program_free(ref);
    jg_graph_free(g);
}

Test(dropout, gradients_flow_through_the_kept_elements_only)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(4, 9), 1);
    jg_node *y = jg_dropout(w, 0.5);
    jg_node *dw;
    cr_assert_eq(jg_grad(g, jg_sum(y, JG_ALL_AXES, false), &w, 1, &dw), JG_OK);
    jg_node *outs[2] = { y, dw };
    jg_program *p = jg_compile(g, outs, 2, &(jg_opts){ .mode = JG_MODE_TRAIN });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK);
    double yv[36], gv[36];
    jg_program_get(p, 0, yv, sizeof yv);
    jg_program_get(p, 1, gv, sizeof gv);
    for (int i = 0; i < 36; i++)
        cr_assert(yv[i] == 0 ? gv[i] == 0 : gv[i] == 2.0, "element %d: y %g grad %g", i, yv[i], gv[i]);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(dropout, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3));
    cr_assert(!jg_node_ok(jg_dropout(x, 1.0)));
    t_assert_error(g, JG_ERR_ARG, "jg_dropout: probability 1 outside [0, 1)");
    jg_graph_clear_error(g);
    cr_assert_eq(jg_dropout(x, 0.0), x, "p = 0 is the identity");
    cr_assert(!jg_node_ok(jg_dropout(jg_input(g, "i", JG_I32, jg_shape(3)), 0.5)));
    t_assert_error(g, JG_ERR_DTYPE, "i32");
    cr_assert(!jg_node_ok(jg_dropout(NULL, 0.5)));
    jg_graph_free(g);
}
