/* Kernels of their own for the ops that are not fused: argmax, unslice, pad, concat, take,
 * scatter_add, one_hot, cross_entropy, max_pool2d and its gradient. Each reads its operands' plain contiguous row-major
 * buffers and writes the node's, with the semantics of the op's reference kernel
 * (src/ops/reduce.c, index.c, nn.c). */
#ifndef JG_JIT_EMIT_OPAQUE_H
#define JG_JIT_EMIT_OPAQUE_H

#include "jit/kernel.h"

/* Emits the kernel computing node n (one of the opaque ops) from its operands' buffers
 * (in_slots[k] for operand k, contiguous row-major of the operand's shape and dtype) into
 * out_slot (contiguous, n's shape and dtype). Sets *outer and *align: the range [0, outer) the
 * thread pool splits and its granularity; outer is 1 for the ops that run serially
 * (cross_entropy, a global sum). The kernel returns 0, or 1 + the flat position in the index
 * operand (take: idx; scatter_add: idx; one_hot: idx; cross_entropy: labels) of the first
 * index out of range, after which the output is undefined. Every call of a split run checks
 * all the indices first, so each call that finds a bad index reports the same, first, one.
 * Returns the function (built with emit_kernel_begin / emit_kernel_end), or NULL for an op it
 * does not handle (then nothing is added to the module). e->width is set by the caller
 * (vector lanes, 1..64); e->member and e->slot_of are not used. */
HIDDEN LLVMValueRef opaque_emit(emit_ctx *e, jit_module *m, const jg_node *n, int out_slot,
                                const int *in_slots, int64_t *outer, int64_t *align);
/* max_pool2d (x) and max_pool2d_grad (x, dy) into out: emit_pool.c; outer = the planes. */
HIDDEN void pool_emit_max(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                          LLVMValueRef dy, int64_t *outer);

#endif
