/* Pass "matmul_sum" (src/compiler/matmul_sum.c): a sum of four or more 2-D matmuls (an
 * unrolled RNN's weight gradient, sum_t h_t^T dg_t) is one matmul over operands stacked
 * along K, transposed views kept; other terms are added after; short sums, matmuls with
 * other consumers and broadcasting adds stay; the values agree to rounding. */
#include "support/pass_check.h"
#include "support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(pass_matmul_sum);

enum { STEPS = 6, B = 3, H = 4, G = 5 };

/* sum_t h_t^T d_t (+ extra), h_t [B, H], d_t [B, G] slices of inputs x [STEPS*B, H] and
 * y [STEPS*B, G]; transposed: h_t^T as a permute, else as a separate input. */
static jg_node *weight_gradient(jg_graph *g, int steps, bool transposed, jg_node *extra)
{
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(STEPS * B, H));
    jg_node *xt = jg_input(g, "xt", JG_F64, jg_shape(H, STEPS * B));
    jg_node *y = jg_input(g, "y", JG_F64, jg_shape(STEPS * B, G));
    jg_node *sum = extra;
    for (int t = 0; t < steps; t++) {
        jg_node *a = transposed ? jg_transpose(jg_tanh(jg_slice(x, 0, t * B, (t + 1) * B, 1)))
                                : jg_slice(xt, 1, t * B, (t + 1) * B, 1);
        jg_node *term = jg_matmul(a, jg_exp(jg_slice(y, 0, t * B, (t + 1) * B, 1)));
        sum = sum ? jg_add(sum, term) : term;
    }
    return sum;
}

static void check(int steps, bool transposed, bool with_extra, bool rewritten)
{
    jg_graph *g = jg_graph_new();
    jg_node *extra = with_extra ? jg_input(g, "e", JG_F64, jg_shape(H, G)) : NULL;
    jg_node *dw = weight_gradient(g, steps, transposed, extra);
    t_program_graph p = t_lower(&dw, 1, false);
    cr_assert_eq(t_count_op(&p, JG_OP_MATMUL), steps);
    cr_assert_eq(pass_matmul_sum(&p.c), rewritten);
    cr_assert_eq(t_count_op(&p, JG_OP_MATMUL), rewritten ? 1 : steps);
    if (rewritten) {
        cr_assert_eq(t_count_op(&p, JG_OP_CONCAT), 2);
        cr_assert_eq(t_count_op(&p, JG_OP_ADD), with_extra);
        cr_assert_eq(t_count_op(&p, JG_OP_PERMUTE), transposed, "one transposed view");
    }
    t_program_graph_free(&p);
    static double xv[STEPS * B * H], xtv[STEPS * B * H], yv[STEPS * B * G], ev[H * G];
    for (int i = 0; i < STEPS * B * H; i++)
        xv[i] = sin(0.3 * i), xtv[i] = cos(0.2 * i);
    for (int i = 0; i < STEPS * B * G; i++)
        yv[i] = 0.1 * cos(0.7 * i);
    for (int i = 0; i < H * G; i++)
        ev[i] = i;
    jg_binding in[4] = { { "x", xv, sizeof xv }, { "xt", xtv, sizeof xtv },
                         { "y", yv, sizeof yv }, { "e", ev, sizeof ev } };
    t_assert_pass_neutral(g, &dw, 1, "matmul_sum", in, with_extra ? 4 : 3, 1e-14);
    jg_graph_free(g);
}

Test(pass_matmul_sum, a_sum_of_transposed_products_is_one_gemm)
{
    check(STEPS, true, false, true);
}

Test(pass_matmul_sum, plain_products_and_other_terms)
{
    check(STEPS, false, true, true);
    check(4, true, true, true);
}

Test(pass_matmul_sum, short_sums_stay)
{
    check(3, true, false, false);
}

/* A product read elsewhere too is not folded into the stacked GEMM. */
Test(pass_matmul_sum, shared_products_stay)
{
    jg_graph *g = jg_graph_new();
    jg_node *dw = weight_gradient(g, STEPS, true, NULL);
    jg_node *m = dw->in[1]; /* the last term */
    jg_node *outs[2] = { dw, jg_relu(m) };
    t_program_graph p = t_lower(outs, 2, false);
    cr_assert(pass_matmul_sum(&p.c));
    cr_assert_eq(t_count_op(&p, JG_OP_MATMUL), 2, "the stacked GEMM and the shared term");
    t_program_graph_free(&p);
    jg_graph_free(g);
}
