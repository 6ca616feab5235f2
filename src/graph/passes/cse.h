/* Common-subexpression elimination by hash-consing (cse.c), used as lowering copies nodes. */
#ifndef JG_PASSES_CSE_H
#define JG_PASSES_CSE_H

#include "graph/graph.h"

typedef struct cse_table {
    jg_node **slots; /* open addressing, a power of two in size */
    size_t cap, count;
    int merged;      /* nodes found equal to an earlier one */
} cse_table;

/* The node equal to the one described, if the table has one. */
HIDDEN jg_node *cse_find(cse_table *t, jg_op op, jg_dtype dtype, jg_shape s,
                         jg_node *const *in, int n_in, const op_attr *a);
HIDDEN void cse_add(cse_table *t, jg_node *n);
HIDDEN void cse_free(cse_table *t);

#endif
