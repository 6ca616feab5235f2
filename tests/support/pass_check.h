/* Helpers for the pass tests: the program graph a pass receives, run through one pass, and
 * compared with the graph expected after it; and the on/off numerical comparison.
 *
 *     t_program_graph got = t_lower(outs, n, false);   // lowered, dead nodes dropped
 *     cr_assert(pass_simplify(&got.c));                // the pass under test
 *     t_program_graph want = t_lower(expected, n, false);
 *     t_assert_same_graph(&got, &want);
 *     t_program_graph_free(&got), t_program_graph_free(&want);
 *
 * Graphs compare by their canonical text: each node reachable from the roots, numbered in
 * depth-first order of first visit, printed as "%k = op[attrs] operands : dtype[shape]" with
 * parameters and inputs by name, so two graphs built separately compare equal when they
 * compute the same expression the same way. */
#ifndef JG_TEST_PASS_CHECK_H
#define JG_TEST_PASS_CHECK_H

#include "compiler/pass.h"
#include "compiler/lower.h"

typedef struct t_program_graph {
    lowered low;
    pass_ctx c;
    jg_node **roots;
} t_program_graph;

/* Lowers the graph of outs[0] for outs (training or evaluation program), then runs dce. */
t_program_graph t_lower(jg_node *const *outs, int n, bool train);
void t_program_graph_free(t_program_graph *p);
/* The canonical text of the graph (malloc'd). */
char *t_graph_text(const t_program_graph *p);
/* Asserts equal canonical texts, printing both when they differ. */
void t_assert_same_graph(const t_program_graph *got, const t_program_graph *want);
/* How many nodes of op the program graph holds (reachable from the roots). */
int t_count_op(const t_program_graph *p, jg_op op);

/* Compiles outs twice on the JIT, with passes_off = off and with everything on, runs both
 * (inputs bound first) and asserts every output agrees to tol (relative to max(1, |v|)). */
void t_assert_pass_neutral(jg_graph *g, jg_node *const *outs, int n, const char *off,
                           const jg_binding *inputs, int n_inputs, double tol);

#endif
