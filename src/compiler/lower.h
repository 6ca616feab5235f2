/* The program graph: the user's graph as the compiler sees it (lower.c). */
#ifndef JG_COMPILER_LOWER_H
#define JG_COMPILER_LOWER_H

#include "ops/op.h"

typedef struct lowered {
    jg_graph *g;   /* private; no parameter store of its own: PARAM nodes keep the user's
                      store index in node->param */
    jg_node **map; /* user node id -> program-graph node (NULL where not needed) */
    int n_src;
} lowered;

/* Copies what the roots need into a new graph, decomposing composite ops and resolving
 * train/eval choices for a training (train) or evaluation program. */
HIDDEN jg_status lower_graph(jg_graph *src, jg_node *const *roots, int n_roots, bool train,
                             lowered *out, char *err, size_t size);
HIDDEN void lowered_free(lowered *l);

#endif
