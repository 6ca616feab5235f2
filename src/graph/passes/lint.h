/* The lint (lint.c): warnings about graphs that will not train as intended. */
#ifndef JG_PASSES_LINT_H
#define JG_PASSES_LINT_H

#include "graph/graph.h"

/* Checks what the roots compute; writes one line per warning into out (truncated to size)
 * and returns how many there are. */
HIDDEN int pass_lint(const jg_graph *g, jg_node *const *roots, int n_roots, char *out,
                     size_t size);

#endif
