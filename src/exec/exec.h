/* What a compiled program computes, as its executors see it: the schedule of nodes, the
 * outputs and updates, the bound inputs and the run counter. The program API
 * (program/program.c) fills it in and owns it; the executors (the reference one here, the JIT
 * in src/jit) read it and keep their own state beside it. */
#ifndef JG_EXEC_EXEC_H
#define JG_EXEC_EXEC_H

#include "ops/op.h"

typedef struct program_input {
    jg_node *node;
    void *data;   /* the bound bytes, in the input's dtype */
    size_t bytes;
    bool set;
} program_input;

typedef struct exec_plan {
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
    double **values;      /* reference executor: one buffer per scheduled node */
    const double **override; /* per scheduled leaf: values (in double) replacing its input
                                or parameter, for gradient checks; NULL when unused */
    bool ran;             /* the outputs hold a run's values */
} exec_plan;

/* The first element of n's value (numel values of its dtype at data; doubles when
 * as_double) that is inf or NaN, or -1; and the message naming the op and where it was built
 * (finite.c). */
HIDDEN int64_t first_nonfinite(const jg_node *n, const void *data, bool as_double);
HIDDEN void nonfinite_message(const jg_node *n, int64_t at, double v, char *err, size_t size);
/* "jg_<op> (built at file.c:42)" (the file's base name: the user's file for the nodes they
 * built, a library file for the nodes of a gradient or a composite; none where no location
 * was recorded) into buf, which it returns: how run errors name the node that failed. */
#define EXEC_ORIGIN_SIZE 160
HIDDEN const char *exec_node_origin(const jg_node *n, char *buf, size_t size);

/* Reference executor (reference.c): every value in double, every op by its reference kernel. */
HIDDEN jg_status reference_prepare(exec_plan *p);
HIDDEN jg_status reference_run(exec_plan *p, char *err /* 2 * OP_ERR_SIZE */);
/* Copies node n's value (scheduled) into out in n's dtype. */
HIDDEN void reference_read(const exec_plan *p, const jg_node *n, void *out);
HIDDEN void reference_release(exec_plan *p);

#endif
