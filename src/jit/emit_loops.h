/* Loop nests of elementwise and reduction kernels (emit_loops.c). */
#ifndef JG_JIT_EMIT_LOOPS_H
#define JG_JIT_EMIT_LOOPS_H

#include "jit/kernel.h"

/* The kernel writing root (an elementwise group's root) into out_slot; e->member and
 * e->slot_of describe the group. Sets the outer range and its split granularity. */
HIDDEN LLVMValueRef emit_elementwise(emit_ctx *e, jit_module *m, const jg_graph *g,
                                     const jg_node *root, int out_slot, int64_t *outer,
                                     int64_t *align);
/* The kernel of a reduction (sum, max, min) whose operand is computed inline. */
HIDDEN LLVMValueRef emit_reduce(emit_ctx *e, jit_module *m, const jg_node *root, int out_slot,
                                int64_t *outer, int64_t *align);

#endif
