/* The GEMM kernel emitter: one LLVM function (the uniform kernel ABI of kernel.h) per matmul
 * group, computing C[b] = epilogue(A[b] x B[b]) for every batch index b. BLIS-style: panels of
 * A and B packed into the per-thread scratch, a register-blocked micro-kernel of broadcast-FMAs
 * (MR rows x 2 vectors), K blocks accumulated in C, the epilogue fused into the last store. */
#ifndef JG_JIT_GEMM_H
#define JG_JIT_GEMM_H

#include "jit/kernel.h"

typedef struct gemm_operand {
    int slot;                      /* buffer slot (bufs[slot]) */
    int64_t rs, cs;                /* element strides of rows and columns (any: transposes are strides) */
    int64_t bstride[JG_MAX_DIMS];  /* element stride per batch dimension (0 where broadcast) */
    /* B only: a gathered operand (an im2col that is never stored). The strides above then
     * address a virtual buffer V whose row r (of `nidx` elements) is V[r][i] =
     * bufs[slot][r * row + bufs[ids_slot][i]] (i32 indices, non-negative; one at or past
     * `row` reads `pad` instead: a padding appended to the rows and never stored). Each
     * batch's operand is the `block` elements of V from its offset (block and the offset
     * multiples of nidx), gathered into the kernel's scratch before its first tile of that
     * batch. block 0: not gathered. ids_val: the indices' values, known when the kernel is
     * emitted (they are a constant), or NULL; runs of consecutive indices are then copied by
     * vector loads. */
    int ids_slot;
    int64_t row, nidx, block;
    double pad;
    const double *ids_val;
} gemm_operand;

typedef struct gemm_desc {
    jg_dtype dtype;                /* JG_F32 or JG_F64 (JG_I32 may be rejected with JG_ERR_DTYPE) */
    int batch_ndim;                /* the output's batch dimensions */
    int64_t batch_dim[JG_MAX_DIMS];
    uint32_t batch_sum;            /* bit i: batch dimension i is summed into C (C has size 1
                                      there); no epilogue then */
    int64_t m, n, k;
    gemm_operand a, b;             /* A[b] is m x k, B[b] is k x n */
    int out_slot;                  /* C: contiguous row-major [batch..., m, n] */
    /* Epilogue: returns the vector to store for C[b..., i, j0 .. j0+width) given the raw
     * accumulator `acc` (<width x T>); idx has batch_ndim + 2 kidx components (batch indices
     * with lane 0, row i with lane 0, column base j0 with lane 1); e->mask is set for a partial
     * tile. NULL epilogue: store acc. It may emit loads of other buffers. */
    LLVMValueRef (*epilogue)(void *ctx, emit_ctx *e, LLVMValueRef acc, const kidx *idx);
    void *epilogue_ctx;
} gemm_desc;

/* Emits the kernel into m (uses emit_kernel_begin; e->width is set by the caller from the
 * session's vector bits and the dtype) and returns its function. *outer: the size of the range
 * [begin, end) the thread pool splits (e.g. batch x row blocks, or column blocks), *align: the
 * granularity of that split, *scratch: bytes of per-thread scratch the kernel needs (packed
 * panels), passed as the 4th argument.
 * Here the outer range counts tiles of C (batch x row blocks x column blocks, column blocks
 * fastest; align 1: any split is valid, each tile is written by one call), sized so that the
 * online CPUs (at most 8) finish together, and the scratch needs no particular alignment. Returns NULL (emitting nothing) for JG_I32, a negative size
 * or more than JG_MAX_DIMS batch dimensions; m or n = 0 gives *outer = 0, k = 0 stores
 * epilogue(0). */
HIDDEN LLVMValueRef gemm_emit(emit_ctx *e, jit_module *m, const gemm_desc *d, int64_t *outer,
                              int64_t *align, size_t *scratch);

#endif
