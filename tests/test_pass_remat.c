/* Pass "remat" (src/compiler/remat.c): a slice or broadcast of a buffer, read by several
 * consumers, is recomputed inline by each pointwise or reducing one instead of getting a
 * kernel of its own; consumers that read buffers (matmul) share the original; a view of an
 * inline expression stays shared; the values never change. */
#include "support/pass_check.h"
#include "support/support.h"

#include <math.h>

TestSuite(pass_remat);

static int kernels(jg_graph *g, jg_node *const *outs, int n, const char *off)
{
    return t_stats(g, outs, n, &(jg_opts){ .passes_off = off }).kernels;
}

/* Inputs x [5, 12] and w [12, 8] of the tests below, and values to bind them to. */
static double xv[60], wv[96];
static const jg_binding xw[2] = { { "x", xv, sizeof xv }, { "w", wv, sizeof wv } };

static jg_node *matmul_of_inputs(jg_graph *g)
{
    for (int i = 0; i < 96; i++)
        wv[i] = cos(0.7 * i), xv[i % 60] = sin(0.3 * i);
    return jg_matmul(jg_input(g, "x", JG_F64, jg_shape(5, 12)),
                     jg_input(g, "w", JG_F64, jg_shape(12, 8)));
}

/* The gates of an LSTM step: slices of one GEMM result, each read by two cell ops. */
Test(pass_remat, shared_slices_of_a_buffer_are_read_inline)
{
    jg_graph *g = jg_graph_new();
    jg_node *v = jg_input(g, "v", JG_F64, jg_shape(4, 3));
    jg_node *m = matmul_of_inputs(g);
    jg_node *a = jg_slice(m, 1, 0, 4, 1), *b = jg_slice(m, 1, 4, 8, 1);
    jg_node *outs[4] = { jg_mul(jg_tanh(a), b), jg_add(a, jg_exp(b)), jg_matmul(a, v),
                         jg_sum(b, jg_axes(0), false) };
    t_program_graph p = t_lower(outs, 4, false);
    cr_assert_eq(t_count_op(&p, JG_OP_SLICE), 2);
    cr_assert(pass_remat(&p.c));
    /* a: its own copy in tanh and add, the original for the matmul; b: copies in mul, exp
     * and the sum, the original gone */
    cr_assert_eq(t_count_op(&p, JG_OP_SLICE), 6);
    t_program_graph_free(&p);
    /* sibling fusion off: it merges the readers into one kernel with or without remat */
    int with = kernels(g, outs, 4, "siblings"), without = kernels(g, outs, 4, "remat,siblings");
    cr_assert_lt(with, without, "kernels: %d with remat, %d without", with, without);
    double vv[12];
    for (int i = 0; i < 12; i++)
        vv[i] = 0.1 * i;
    jg_binding in[3] = { xw[0], xw[1], { "v", vv, sizeof vv } };
    t_assert_pass_neutral(g, outs, 4, "remat", in, 3, 0);
    jg_graph_free(g);
}

/* Copying a slice of exp(x) into each consumer would give exp(x) a buffer it did not need. */
Test(pass_remat, views_of_inline_values_stay_shared)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(6, 10));
    jg_node *s = jg_slice(jg_exp(x), 1, 2, 7, 1);
    jg_node *outs[2] = { jg_tanh(s), jg_square(s) };
    t_program_graph p = t_lower(outs, 2, false);
    cr_assert_not(pass_remat(&p.c));
    cr_assert_eq(t_count_op(&p, JG_OP_SLICE), 1);
    t_program_graph_free(&p);
    jg_graph_free(g);
}

/* A small arithmetic expression of buffers read only by pointwise ops (an LSTM's candidate
 * 2 s - 1) is computed again by each; a transcendental one (tanh) keeps its kernel; so does
 * one a matmul reads, or an output. */
Test(pass_remat, small_shared_expressions_are_computed_by_each_reader)
{
    jg_graph *g = jg_graph_new();
    jg_node *m = matmul_of_inputs(g);
    jg_node *cand = jg_shift(jg_scale(m, 2), -1), *t = jg_tanh(m);
    jg_node *outs[4] = { jg_mul(cand, m), jg_add(cand, jg_exp(m)), jg_mul(t, m), jg_neg(t) };
    t_program_graph p = t_lower(outs, 4, false);
    int muls = t_count_op(&p, JG_OP_MUL), tanhs = t_count_op(&p, JG_OP_TANH);
    cr_assert(pass_remat(&p.c));
    cr_assert_gt(t_count_op(&p, JG_OP_MUL), muls, "2 m computed by both readers");
    cr_assert_eq(t_count_op(&p, JG_OP_TANH), tanhs, "tanh is not copied");
    t_program_graph_free(&p);
    /* sibling fusion off: it merges the readers into one kernel with or without remat */
    int with = kernels(g, outs, 4, "siblings"), without = kernels(g, outs, 4, "remat,siblings");
    cr_assert_eq(with, without - 1, "kernels: %d with remat, %d without", with, without);
    t_assert_pass_neutral(g, outs, 4, "remat", xw, 2, 0);
    /* read by a matmul too: it keeps its buffer */
    jg_node *outs2[2] = { jg_mul(cand, m), jg_matmul(jg_transpose(cand), m) };
    t_program_graph q = t_lower(outs2, 2, false);
    cr_assert_not(pass_remat(&q.c));
    t_program_graph_free(&q);
    jg_graph_free(g);
}
