/* Parameter updates in the JIT: they take effect together, as in the reference executor,
 * in-place updates never clobber a value still needed, and a failed run changes nothing. */
#include "support/support.h"

TestSuite(jit_updates);

static void run_both(void (*build)(jg_graph *, jg_node **, jg_update *, int *), float *want,
                     float *got, int n)
{
    for (int e = 0; e < 2; e++) {
        jg_graph *g = jg_graph_new();
        jg_node *out;
        jg_update up[4];
        int n_up = 0;
        build(g, &out, up, &n_up);
        jg_program *p = jg_compile(g, &out, 1, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT, .updates = up, .n_updates = n_up });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_run(p);
        jg_param_get(g, "P", e ? want : got, (size_t)n * sizeof *got);
        jg_param_get(g, "Q", (e ? want : got) + n, (size_t)n * sizeof *got);
        jg_program_free(p);
        jg_graph_free(g);
    }
}

static void swap(jg_graph *g, jg_node **out, jg_update *up, int *n)
{
    jg_node *p = jg_param(g, "P", jg_shape(4), jg_constant(1));
    jg_node *q = jg_param(g, "Q", jg_shape(4), jg_constant(2));
    *out = jg_sum(p, JG_ALL_AXES, false);
    up[0] = (jg_update){ p, q };
    up[1] = (jg_update){ q, p };
    *n = 2;
}

static void chained(jg_graph *g, jg_node **out, jg_update *up, int *n)
{
    jg_node *p = jg_param(g, "P", jg_shape(4), jg_constant(1));
    jg_node *q = jg_param(g, "Q", jg_shape(4), jg_constant(2));
    *out = jg_sum(q, JG_ALL_AXES, false);
    up[0] = (jg_update){ p, jg_shift(p, 10) };
    up[1] = (jg_update){ q, p };
    *n = 2;
}

Test(jit_updates, take_effect_together)
{
    float want[8], got[8];
    run_both(swap, want, got, 4);
    cr_assert(got[0] == 2 && got[4] == 1, "swap: P %g Q %g", got[0], got[4]);
    run_both(chained, want, got, 4);
    cr_assert(got[0] == 11 && got[4] == 1, "Q gets the old P: P %g Q %g", got[0], got[4]);
    cr_assert(memcmp(want, got, sizeof want) == 0);
}

Test(jit_updates, a_failed_run_leaves_the_store_unchanged)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4));
    jg_node *i = jg_input(g, "i", JG_I32, jg_shape(2));
    jg_node *p = jg_param(g, "P", jg_shape(4), jg_zeros());
    jg_node *out = jg_take(x, i, 0);
    jg_update up = { p, jg_sub(p, x) };
    jg_program *prog = jg_compile(g, &out, 1, &(jg_opts){ .updates = &up, .n_updates = 1 });
    float xv[4] = { 1, 2, 3, 4 }, pv[4];
    int32_t iv[2] = { 0, 9 };
    jg_program_set(prog, "x", xv, sizeof xv);
    jg_program_set(prog, "i", iv, sizeof iv);
    cr_assert_eq(jg_program_run(prog), JG_ERR_RANGE);
    jg_param_get(g, "P", pv, sizeof pv);
    cr_assert(pv[0] == 0 && pv[3] == 0, "P %g %g", pv[0], pv[3]);
    jg_program_free(prog);
    jg_graph_free(g);
}

/* A merged column reduction that reads P runs after the kernel computing P's new value:
 * that update must not be written in place. */
Test(jit_updates, in_place_updates_respect_merged_kernels)
{
    float r[2][16];
    for (int e = 0; e < 2; e++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 16));
        jg_node *p = jg_param(g, "P", jg_shape(2, 16), jg_constant(1));
        jg_node *ones = jg_exp(jg_scale(x, 0));
        jg_node *outs[2] = { jg_sum(jg_mul(ones, p), jg_axes(0), false),
                             jg_sum(ones, jg_axes(0), false) };
        jg_update up = { p, jg_sub(p, x) };
        jg_program *prog = jg_compile(g, outs, 2, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT, .updates = &up, .n_updates = 1 });
        float xv[32];
        for (int k = 0; k < 32; k++)
            xv[k] = 5;
        jg_program_set(prog, "x", xv, sizeof xv);
        cr_assert_eq(jg_program_run(prog), JG_OK);
        jg_program_get(prog, 0, r[e], sizeof r[e]);
        jg_program_free(prog);
        jg_graph_free(g);
    }
    cr_assert(r[0][0] == 2 && r[1][0] == 2, "jit %g ref %g", r[0][0], r[1][0]);
}

Test(jit_updates, i32_arithmetic_saturates_like_the_reference)
{
    jg_graph *g = jg_graph_new();
    int32_t d[4] = { INT32_MAX, INT32_MIN, 2000000000, 5 };
    jg_node *c = jg_const(g, JG_I32, jg_shape(4), d);
    jg_node *outs[4] = { jg_shift(c, 1), jg_mul(c, c), jg_neg(c), jg_abs(c) };
    int32_t got[2][4][4];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, outs, 4, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT });
        cr_assert_eq(jg_program_run(p), JG_OK);
        for (int o = 0; o < 4; o++)
            jg_program_get(p, o, got[e][o], sizeof got[e][o]);
        jg_program_free(p);
    }
    cr_assert(memcmp(got[0], got[1], sizeof got[0]) == 0);
    cr_assert_eq(got[0][0][0], INT32_MAX);
    cr_assert_eq(got[0][2][1], INT32_MAX);
    jg_graph_free(g);
}
