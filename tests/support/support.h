/* Helpers shared by the Criterion tests: evaluate nodes, compare arrays, check gradients.
 * Every helper asserts (cr_assert) on failure, so a test reads as a list of expectations. */
#ifndef JG_TEST_SUPPORT_H
#define JG_TEST_SUPPORT_H

#include "jitgrad.h"

#include <criterion/criterion.h>
#include <string.h>

/* Evaluates node out (no inputs, or inputs bound by t_bind first) with the reference executor
 * in exact mode and returns its values converted to double (malloc'd; free it). */
double *t_eval(jg_node *out);
/* Same, binding inputs (name, data, bytes) first. */
double *t_eval_with(jg_node *out, const jg_binding *inputs, int n_inputs);

/* Asserts |got[i] - want[i]| <= tol * max(1, |want[i]|) for every i, naming the index. */
void t_assert_close(const double *got, const double *want, int64_t n, double tol);

/* An f64 constant / parameter filled with seeded N(0, 1) values (parameters: named). */
jg_node *t_randn(jg_graph *g, jg_shape s, uint64_t seed);
jg_node *t_param(jg_graph *g, const char *name, jg_shape s, uint64_t seed);
/* An f64 constant from literal values: t_const(g, jg_shape(2, 2), (double[]){1, 2, 3, 4}). */
jg_node *t_const(jg_graph *g, jg_shape s, const double *values);

/* Runs jg_gradcheck (element mode, default tolerances 1e-6) on output w.r.t. wrt and asserts
 * it passed, printing the report's message on failure. */
void t_gradcheck(jg_graph *g, jg_node *output, jg_node *const *wrt, int n);
/* The same with explicit options. */
void t_gradcheck_opts(jg_graph *g, jg_node *output, jg_node *const *wrt, int n,
                      const jg_gradcheck_opts *opts);

/* Asserts node n is not poisoned and has the given shape. */
void t_assert_shape(jg_node *n, jg_shape want);
/* Evaluates n (exact reference executor) and checks its shape and values to 1e-12. */
void t_expect(jg_node *n, jg_shape shape, const double *want);
/* An f64 constant holding 0, 1, 2, ... in row-major order. */
jg_node *t_iota(jg_graph *g, jg_shape s);

/* Compiles outs with opts (NULL: defaults), asserting it compiles, and returns the
 * program's statistics (kernels, in-place updates, arena bytes). */
jg_program_stats t_stats(jg_graph *g, jg_node *const *outs, int n, const jg_opts *opts);

/* Asserts the graph holds an error with this status whose message contains `part`. */
void t_assert_error(jg_graph *g, jg_status st, const char *part);

/* A small MLP training step over inputs "x" f32[16,20] and "y" i32[16] (kernels of every
 * kind: matmul, reductions, updates), compiled with opts (NULL: defaults) plus its updates;
 * t_mlp_feed binds fixed inputs. */
jg_program *t_mlp_step(jg_graph *g, const jg_opts *opts);
void t_mlp_feed(jg_program *p);

#endif
