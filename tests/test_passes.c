/* The pass pipeline's switches: each pass can be turned off per program and the program
 * computes the same values either way; what each pass did shows in the program's stats. */
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>

TestSuite(passes);

static jg_program_stats compile_stats(jg_graph *g, jg_node **outs, int n, const char *off,
                                      double *values, int count)
{
    jg_program *p = jg_compile(g, outs, n, &(jg_opts){ .passes_off = off });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_get(p, 0, values, (size_t)count * sizeof *values), JG_OK);
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    jg_program_free(p);
    return st;
}

Test(passes, cse_merges_equal_subexpressions)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(6, 5), 1);
    /* written twice on purpose, as generated code or gradients often do */
    jg_node *a = jg_sum(jg_exp(jg_scale(x, 0.5)), jg_axes(1), false);
    jg_node *b = jg_sum(jg_exp(jg_scale(x, 0.5)), jg_axes(1), false);
    jg_node *out = jg_add(a, b);
    double on[6], off[6];
    /* siblings off in both: sibling fusion would merge the two copies into one pass too */
    jg_program_stats s_on = compile_stats(g, &out, 1, "siblings", on, 6);
    jg_program_stats s_off = compile_stats(g, &out, 1, "cse,siblings", off, 6);
    cr_assert_geq(s_on.cse_merged, 3, "scale, exp and sum merged: %d", s_on.cse_merged);
    cr_assert_eq(s_off.cse_merged, 0);
    cr_assert_lt(s_on.kernels, s_off.kernels, "%d vs %d kernels", s_on.kernels, s_off.kernels);
    t_assert_close(on, off, 6, 1e-12);
    jg_graph_free(g);
}

Test(passes, simplify_folds_the_gradient_seed_and_identities)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 1);
    jg_node *f = jg_sum(jg_square(jg_add(jg_scale(x, 1.0), jg_fill(g, JG_F64, jg_shape(4, 3), 0))),
                        JG_ALL_AXES, false);
    jg_node *dx;
    cr_assert_eq(jg_grad(g, f, &x, 1, &dx), JG_OK);
    double on[12], off[12];
    jg_program_stats s_on = compile_stats(g, &dx, 1, NULL, on, 12);
    jg_program_stats s_off = compile_stats(g, &dx, 1, "simplify,constfold,cse", off, 12);
    cr_assert_gt(s_on.simplified, 1);
    cr_assert_eq(s_off.simplified, 0);
    t_assert_close(on, off, 12, 1e-12);
    jg_graph_free(g);
}

Test(passes, siblings_and_inplace_can_be_switched_off)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(40, 24), 3);
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(24), jg_constant(0.5));
    jg_node *y = jg_relu(jg_mul(x, a));
    jg_node *da;
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, x), JG_ALL_AXES, false), &a, 1, &da), JG_OK);
    jg_node *outs[2] = { da, y };
    double on[24], off[24];
    jg_program_stats s_on = compile_stats(g, outs, 2, NULL, on, 24);
    jg_program_stats s_off = compile_stats(g, outs, 2, "siblings", off, 24);
    cr_assert_lt(s_on.kernels, s_off.kernels, "%d vs %d", s_on.kernels, s_off.kernels);
    t_assert_close(on, off, 24, 1e-12);

    jg_update up = { a, jg_sub(a, jg_scale(da, 0.1)) };
    for (int k = 0; k < 2; k++) {
        jg_program *p = jg_compile(g, &da, 1, &(jg_opts){ .updates = &up, .n_updates = 1,
                                                          .passes_off = k ? "inplace" : NULL });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_stats st;
        jg_program_stats_get(p, &st);
        cr_assert_eq(st.in_place_updates, k ? 0 : 1);
        jg_program_free(p);
    }
    jg_graph_free(g);
}

Test(passes, simplify_composes_permutes_and_cancels_negations)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3, 4), 1);
    jg_node *y = jg_permute(jg_permute(x, jg_axes(2, 0, 1)), jg_axes(1, 2, 0)); /* identity */
    jg_node *z = jg_permute(jg_permute(x, jg_axes(1, 0, 2)), jg_axes(0, 2, 1));
    jg_node *out = jg_add(jg_neg(jg_neg(y)), jg_reshape(jg_reshape(jg_permute(z, jg_axes(0, 2, 1)),
                                                                   jg_shape(6, 4)), jg_shape(2, 3, 4)));
    double on[24], off[24];
    jg_program_stats s_on = compile_stats(g, &out, 1, NULL, on, 24);
    jg_program_stats s_off = compile_stats(g, &out, 1, "simplify", off, 24);
    cr_assert_geq(s_on.simplified, 4, "%d folds", s_on.simplified);
    cr_assert_eq(s_off.simplified, 0);
    t_assert_close(on, off, 24, 1e-12);
    double *ref = t_eval(out);
    t_assert_close(on, ref, 24, 1e-12);
    free(ref);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- the pipeline */

Test(passes, every_pass_has_a_name_in_pipeline_order)
{
    const char *want[] = { "l2_decay", "simplify", "constfold", "cse", "dce", "fuse",
                           "siblings", "inplace", "concat" };
    enum { N_WANT = sizeof want / sizeof *want };
    int n = 0, at[N_WANT];
    for (int k = 0; k < N_WANT; k++)
        at[k] = -1;
    for (const char *name; (name = jg_pass_name(n)); n++)
        for (int k = 0; k < N_WANT; k++)
            if (strcmp(name, want[k]) == 0)
                at[k] = n;
    for (int k = 0; k < N_WANT; k++) {
        cr_assert_geq(at[k], 0, "pass %s is not listed", want[k]);
        cr_assert(k == 0 || at[k] > at[k - 1], "%s comes before %s", want[k - 1], want[k]);
    }
    cr_assert_null(jg_pass_name(-1));
    cr_assert_null(jg_pass_name(n));
}

Test(passes, each_pass_reports_what_it_did_and_what_it_cost)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 1);
    jg_node *y = jg_add(jg_exp(jg_scale(x, 1.0)), jg_exp(jg_scale(x, 1.0)));
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .passes_off = "cse" });
    cr_assert(p, "%s", jg_errmsg(g));
    int n = jg_program_pass_count(p);
    cr_assert_geq(n, 7, "simplify, constfold, cse, dce, fuse, siblings, inplace: %d", n);
    bool saw_cse = false, saw_simplify = false;
    for (int i = 0; i < n; i++) {
        jg_pass_report r;
        cr_assert_eq(jg_program_pass_report(p, i, &r), JG_OK);
        cr_assert_geq(r.ms, 0);
        cr_assert(r.ran || r.rewrites == 0);
        if (strcmp(r.name, "cse") == 0) {
            saw_cse = true;
            cr_assert_not(r.ran, "cse was switched off");
        }
        if (strcmp(r.name, "simplify") == 0) {
            saw_simplify = true;
            cr_assert(r.ran && r.changed && r.rewrites >= 2, "x * 1 twice: %d", r.rewrites);
            cr_assert_lt(r.nodes_after, r.nodes_before);
        }
    }
    cr_assert(saw_cse && saw_simplify);
    jg_pass_report r;
    cr_assert_eq(jg_program_pass_report(p, n, &r), JG_ERR_ARG);
    cr_assert_eq(jg_program_pass_report(NULL, 0, &r), JG_ERR_ARG);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    jg_program_pass_dump(p, f);
    fclose(f);
    cr_assert(strstr(text, "simplify") && strstr(text, "inplace"), "%s", text);
    free(text);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(passes, dump_dir_holds_the_graph_after_each_pass)
{
    char dir[] = "/tmp/jg_dumpXXXXXX";
    cr_assert(mkdtemp(dir));
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3), 1);
    jg_node *y = jg_exp(jg_scale(x, 1.0));
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .dump_dir = dir });
    cr_assert(p, "%s", jg_errmsg(g));
    int dce = -1;
    for (int i = 0; i < jg_program_pass_count(p); i++) {
        jg_pass_report r;
        jg_program_pass_report(p, i, &r);
        if (strcmp(r.name, "dce") == 0)
            dce = i + 1; /* dump 00 is the lowered graph */
    }
    cr_assert_gt(dce, 0);
    char files[4][64] = { "00-lowered.txt", "00-lowered.dot", "", "" };
    snprintf(files[2], sizeof files[2], "%02d-dce.txt", dce);
    snprintf(files[3], sizeof files[3], "%02d-dce.dot", dce);
    for (int i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        FILE *f = fopen(path, "r");
        cr_assert(f, "%s was not written", path);
        char buf[4096] = "";
        size_t got = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        cr_assert_gt(got, 0);
        if (i == 0)
            cr_assert(strstr(buf, "fill"), "lowered graph still has x * 1:\n%s", buf);
        if (i == 2)
            cr_assert_null(strstr(buf, "fill"), "simplify and dce removed the 1:\n%s", buf);
        if (i % 2)
            cr_assert(strstr(buf, "digraph"), "%s", buf);
    }
    jg_program_free(p);
    /* a directory that does not exist: compile fails and says where */
    jg_program *q = jg_compile(g, &y, 1, &(jg_opts){ .dump_dir = "/nonexistent/jg" });
    cr_assert_null(q);
    cr_assert(strstr(jg_errmsg(g), "/nonexistent/jg"), "%s", jg_errmsg(g));
    jg_graph_free(g);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
