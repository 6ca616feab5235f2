/* Pass bisection (bisect.c): which compiler pass makes a program disagree with the reference
 * executor. The search takes the pass names and a callback that computes the outputs with a
 * given set of passes switched off, so a test can put a faulty pass of its own in the list
 * without any global state; jg_bisect_passes supplies the real pipeline and a callback that
 * compiles and runs JIT programs. */
#ifndef JG_TRAIN_BISECT_H
#define JG_TRAIN_BISECT_H

#include "graph/graph.h"

/* Computes the outputs with the passes named in passes_off (comma-separated) switched off,
 * into values[i] (numel[i] doubles each). On failure writes the reason into err. */
typedef jg_status (*bisect_run_fn)(void *ctx, const char *passes_off, double *const *values,
                                   char *err, size_t err_size);

typedef struct bisect_spec {
    const char *const *passes;  /* every pass name, in pipeline order */
    int n_passes;
    const char *keep_off;       /* switched off in every configuration (NULL: none) */
    int n_outputs;
    const int64_t *numel;       /* per output */
    const double *const *truth; /* per output: the values to agree with */
    const double *rtol, *atol;  /* per output: agree when |v - t| <= atol + rtol |t| */
    const char *const *labels;  /* per output, for the message; NULL: "output <i>" */
    bisect_run_fn run;
    void *ctx;
} bisect_spec;

/* Runs the configurations: every candidate (a pass that keep_off leaves on) off, then the
 * candidates switched on one more at a time in pipeline order, stopping at the first
 * configuration that disagrees with truth or fails. Fills *out (culprit "none", "codegen"
 * or a pass name). Returns JG_OK when it ran, JG_ERR_NOMEM when it could not. */
HIDDEN jg_status bisect_search(const bisect_spec *s, jg_bisect_report *out);

#endif
