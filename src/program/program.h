/* The program handle: what the program API (program.c, introspect.c) keeps about a compiled
 * program, around the executor-neutral plan (exec/exec.h) and the JIT executor's state. */
#ifndef JG_PROGRAM_PROGRAM_H
#define JG_PROGRAM_PROGRAM_H

#include "jit/executor.h"

struct jg_program {
    exec_plan plan;       /* what to compute; the executors read it */
    jit_program *jit;     /* the JIT executor's state, or NULL: the reference executor */
    char warnings[2048];  /* the advice about what the program computes */
    int n_warnings;
    jg_status status;
    char errmsg[1024];
};

/* jg_compile; state_updates false leaves out the training programs' state updates
 * (batchnorm running statistics), for gradient checks that must not change the store. */
HIDDEN jg_program *program_compile(jg_graph *g, jg_node *const *outputs, int n_outputs,
                                   const jg_opts *opts, bool state_updates);

/* Makes leaf n (an input or parameter the program reads) take its values from `values`
 * (numel doubles, owned by the caller, read at each run) instead of its binding or the store.
 * Lets the gradient checker perturb values in double even for f32 graphs. */
HIDDEN jg_status program_override(jg_program *p, const jg_node *n, const double *values);

/* Files count warnings (text: whole lines) on p, where jg_program_warnings shows them, and
 * prints them to stderr when print (jg_opts.print_warnings). */
HIDDEN void program_warn(jg_program *p, const char *text, int count, bool print);

#endif
