/* The program handle shared by the program API (program.c) and its executors. */
#ifndef JG_JIT_PROGRAM_H
#define JG_JIT_PROGRAM_H

#include "ops/op.h"

typedef struct program_input {
    jg_node *node;
    void *data;   /* the bound bytes, in the input's dtype */
    size_t bytes;
    bool set;
} program_input;

typedef struct jit_program jit_program;

struct jg_program {
    jg_graph *graph;      /* retained: nodes and the store outlive the user's handle */
    bool exact;           /* reference executor: no rounding of f32 results */
    bool train;           /* training mode: dropout on, batch statistics */
    bool check_finite;    /* fail a run at the first inf/NaN result (jg_opts.check_finite) */
    uint64_t step;        /* runs so far: the random streams' counter */
    jg_node **outputs;
    int n_outputs;
    jg_update *updates;
    int n_updates;
    jg_node **sched;      /* the nodes to evaluate, in id (topological) order */
    int n_sched;
    int *slot;            /* node id -> index in sched, or -1; n_slots entries */
    int n_slots;
    program_input *inputs;
    int n_inputs;
    jit_program *jit;     /* the JIT executor's state, or NULL: the reference executor */
    double **values;      /* reference executor: one buffer per scheduled node */
    const double **override; /* per scheduled leaf: values (in double) replacing its input
                                or parameter, for gradient checks; NULL when unused */
    char warnings[2048];  /* the lint's warnings about what the program computes */
    int n_warnings;
    bool ran;
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

/* The first element of n's value (numel values of its dtype at data; doubles when
 * as_double) that is inf or NaN, or -1; and the message naming the op and where it was built. */
HIDDEN int64_t first_nonfinite(const jg_node *n, const void *data, bool as_double);
HIDDEN void nonfinite_message(const jg_node *n, int64_t at, double v, char *err, size_t size);

/* Reference executor (reference.c): every value in double, every op by its reference kernel. */
HIDDEN jg_status reference_prepare(jg_program *p);
HIDDEN jg_status reference_run(jg_program *p, char *err /* 2 * OP_ERR_SIZE */);
/* Copies node n's value (scheduled) into out in n's dtype. */
HIDDEN void reference_read(const jg_program *p, const jg_node *n, void *out);
HIDDEN void reference_release(jg_program *p);

#endif
