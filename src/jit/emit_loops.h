/* Loop nests of elementwise, reduction and multi-output kernels (emit_elementwise.c,
 * emit_reduce.c, emit_multi.c). */
#ifndef JG_JIT_EMIT_LOOPS_H
#define JG_JIT_EMIT_LOOPS_H

#include "jit/kernel.h"

/* The dtype a reduction accumulates in: f32 sums in f64, so that long sums stay exact
 * where f32 would stop (each lane stops growing at 2^24 ones) and their error does not grow
 * with the length; the conversions cost nothing in kernels that stream memory. */
static inline jg_dtype loops_acc_dtype(jg_op op, jg_dtype t)
{
    return op == JG_OP_SUM && t == JG_F32 ? JG_F64 : t;
}

/* The kernel writing roots[i] (elementwise groups' roots, all of one shape) into slots[i]
 * (< 0: computed for the others only, not stored); n is 1, or the parts of a pointwise
 * multi-output kernel (at most 64). e->member and e->slot_of describe the group(s). Sets the
 * outer range and its split granularity. */
HIDDEN LLVMValueRef emit_elementwise(emit_ctx *e, jit_module *m, const jg_graph *g,
                                     const jg_node *const *roots, const int *slots, int n,
                                     int64_t *outer, int64_t *align);
/* The kernel of a reduction (sum, max, min) whose operand is computed inline; *scratch: the
 * per-thread scratch bytes it needs (f64 accumulators of an f32 sum along a kept innermost
 * dim). */
HIDDEN LLVMValueRef emit_reduce(emit_ctx *e, jit_module *m, const jg_node *root, int out_slot,
                                int64_t *outer, int64_t *align, size_t *scratch);

/* One pass computing several outputs over one iteration space (a GROUP_MULTI kernel): the
 * reductions among outs (over some but not all axes, all over the same ones: column sums,
 * channel statistics) accumulate, the others are stored (slots[i] < 0: computed for the
 * others only, not stored). e->member covers every part. Reductions accumulate per
 * block of rows into partial_slots[i] (multi_blocks(lead) rows of the output's shape, in
 * loops_acc_dtype); the runtime then calls the kernel once more with begin < 0 to combine
 * them. */
HIDDEN LLVMValueRef emit_multi(emit_ctx *e, jit_module *m, int n_nodes,
                               const jg_node *const *outs, const int *slots,
                               const int *partial_slots, int n_outs, int64_t *outer,
                               int64_t *align);
/* The number of row blocks (partial rows) of a multi kernel led by reduction lead. */
HIDDEN int64_t multi_blocks(const jg_node *lead);

#endif
