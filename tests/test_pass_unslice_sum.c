/* Pass "unslice_sum" (src/compiler/unslice_sum.c): the gradient of a tensor read in disjoint
 * slices along one axis is one concat, not a sum of whole-size unslices; overlapping or
 * strided slices stay sums; the values never change. */
#include "support/pass_check.h"
#include "support/support.h"

#include <math.h>

TestSuite(pass_unslice_sum);

/* y = sum over the steps of tanh(x[:, t]) * w_t, x [3, 6, 4] read step by step (as an
 * unrolled RNN reads its input); dx by autodiff. */
static jg_node *steps_gradient(jg_graph *g, jg_node *x, const int64_t (*ranges)[3], int n)
{
    jg_node *y = NULL;
    for (int t = 0; t < n; t++) {
        jg_node *s = jg_slice(x, 1, ranges[t][0], ranges[t][1], ranges[t][2]);
        jg_node *term = jg_sum(jg_scale(jg_tanh(s), t + 1), JG_ALL_AXES, false);
        y = y ? jg_add(y, term) : term;
    }
    jg_node *dx;
    cr_assert_eq(jg_grad(g, y, &x, 1, &dx), JG_OK, "%s", jg_errmsg(g));
    return dx;
}

static void check(const int64_t (*ranges)[3], int n, bool rewritten)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(3, 6, 4));
    jg_node *dx = steps_gradient(g, x, ranges, n);
    t_program_graph p = t_lower(&dx, 1, false);
    int unslices = t_count_op(&p, JG_OP_UNSLICE);
    bool changed = pass_unslice_sum(&p.c);
    cr_assert_eq(changed, rewritten);
    if (rewritten) {
        cr_assert_eq(t_count_op(&p, JG_OP_UNSLICE), 0, "every unslice became a piece");
        cr_assert_eq(t_count_op(&p, JG_OP_CONCAT), 1);
    } else {
        cr_assert_eq(t_count_op(&p, JG_OP_UNSLICE), unslices);
    }
    t_program_graph_free(&p);
    double xv[72];
    for (int i = 0; i < 72; i++)
        xv[i] = sin(0.3 * i);
    jg_binding in = { "x", xv, sizeof xv };
    t_assert_pass_neutral(g, &dx, 1, "unslice_sum", &in, 1, 1e-15);
    double *want = t_eval_with(dx, &in, 1);
    jg_program *jit = jg_compile(g, &dx, 1, NULL);
    cr_assert(jit, "%s", jg_errmsg(g));
    double got[72];
    jg_program_set(jit, "x", xv, sizeof xv);
    cr_assert_eq(jg_program_run(jit), JG_OK);
    jg_program_get(jit, 0, got, sizeof got);
    t_assert_close(got, want, 72, 1e-15);
    free(want);
    jg_program_free(jit);
    jg_graph_free(g);
}

Test(pass_unslice_sum, every_step_of_a_sequence_is_one_concat)
{
    int64_t steps[6][3];
    for (int t = 0; t < 6; t++)
        steps[t][0] = t, steps[t][1] = t + 1, steps[t][2] = 1;
    check(steps, 6, true);
}

Test(pass_unslice_sum, gaps_are_zeros_and_runs_may_be_longer)
{
    const int64_t ranges[3][3] = { { 4, 6, 1 }, { 0, 1, 1 }, { 2, 3, 1 } }; /* 1 and 3 unread */
    check(ranges, 3, true);
}

Test(pass_unslice_sum, overlapping_or_strided_slices_stay_sums)
{
    const int64_t overlap[2][3] = { { 0, 3, 1 }, { 2, 5, 1 } };
    check(overlap, 2, false);
    const int64_t strided[2][3] = { { 0, 6, 2 }, { 1, 6, 2 } };
    check(strided, 2, false);
}
