/* What the loop-nest emitters (emit_elementwise.c, emit_reduce.c, emit_multi.c) share:
 * sizes that choose a loop's shape, index helpers, and the plan of a reduction that multi-output
 * kernels reuse. Internal to those three files. */
#ifndef JG_JIT_LOOPS_H
#define JG_JIT_LOOPS_H

#include "jit/kernel.h"

static inline LLVMValueRef i64c(emit_ctx *e, int64_t v) { return emit_i64(e, v); }

/* Outputs larger than this are stored non-temporally (see emit_ctx.streaming_stores). */
#define STREAM_BYTES ((int64_t)16 << 20)

static inline bool node_bytes_over(const jg_node *n, int64_t bytes)
{
    return jg_shape_numel(n->shape) * (int64_t)jg_dtype_size(n->dtype) > bytes;
}

/* Windows (pooling): reductions whose innermost reduced run is at most this many elements
 * after the last kept dim, and elementwise rows whose last dim is at most this long, with
 * at least a quarter vector along the dim before it (2x2 pooling: 2 after an output row). */
enum { WINDOW_MAX = 4 };

/* Streaming loops prefetch their large contiguous inputs this far ahead: a page, since the
 * hardware prefetchers stop at page boundaries and rows of H * W floats cross one every
 * few hundred elements (measured on bench_bn_relu: its three passes ~20% faster; neutral on
 * bench_elementwise's long rows). */
enum { PREFETCH_BYTES = 4096 };

/* Whether whole vectors stored at multiples of `step` elements from a 64-byte aligned base
 * are aligned to their size (the arena's and the store's buffers are 64-byte aligned). */
static inline bool vectors_aligned(const emit_ctx *e, jg_dtype t, int64_t step)
{
    return step % e->width == 0 && (uint64_t)e->width * jg_dtype_size(t) % 64 == 0;
}

/* Splits a linear index over dims[0..n) (row-major) into components. */
static inline void loops_delinearise(emit_ctx *e, LLVMValueRef lin, const int64_t *dims, int n,
                        LLVMValueRef *out)
{
    for (int d = n - 1; d >= 0; d--) {
        if (d == 0) {
            out[d] = lin;
            break;
        }
        out[d] = LLVMBuildSRem(e->b, lin, i64c(e, dims[d]), "");
        lin = LLVMBuildSDiv(e->b, lin, i64c(e, dims[d]), "");
    }
}

static inline LLVMValueRef begin_arg(emit_ctx *e) { return LLVMGetParam(e->fn, 1); }
static inline LLVMValueRef end_arg(emit_ctx *e) { return LLVMGetParam(e->fn, 2); }

/* v (a scalar or vector of dtype from) as dtype to: the accumulators' conversions. */
static inline LLVMValueRef loops_convert(emit_ctx *e, LLVMValueRef v, jg_dtype from, jg_dtype to)
{
    if (from == to)
        return v;
    bool vec = LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMVectorTypeKind;
    LLVMTypeRef ty = vec ? emit_vector_type(e, to) : emit_scalar_type(e, to);
    return jg_dtype_size(to) > jg_dtype_size(from) ? LLVMBuildFPExt(e->b, v, ty, "")
                                                   : LLVMBuildFPTrunc(e->b, v, ty, "");
}

/* ---- elementwise (emit_elementwise.c) */

/* The first dim of the longest trailing run of s that roots[0..n) can walk as one (at most
 * `from`: the run must lie within [from, nd)), or nd - 1. */
HIDDEN int loops_collapsed_from(const emit_ctx *e, int n_nodes, const jg_node *const *roots,
                                int n, jg_shape s, int from);

/* ---- reductions (emit_reduce.c) */

typedef struct reduce_plan {
    const jg_node *root, *x;
    jg_shape in;
    bool reduced[JG_MAX_DIMS];
    int kept[JG_MAX_DIMS], n_kept;   /* kept input dims, in order */
    int red[JG_MAX_DIMS], n_red;     /* reduced input dims, in order */
    bool lanes_kept;                 /* the lanes run along a kept dim: every reduced dim is
                                        walked one element at a time */
} reduce_plan;

/* Reductions whose innermost input dim is kept: the output, in chunks of W elements along
 * the input's dim `dim` (the innermost, or the last kept dim of a windowed reduction). */
typedef struct chunk_plan {
    const reduce_plan *p;
    LLVMValueRef out, identity;
    LLVMValueRef acc;          /* accumulators in another dtype (per-thread scratch, one vector
                                  per chunk from lo), or NULL: accumulate in out itself */
    LLVMValueRef lo, hi;       /* the chunks [lo, hi) accumulated together (a block of the
                                  thread's range) */
    int64_t chunks, dlast;
    const int64_t *kept_dims; /* the kept dims but `dim` */
    int dim;
} chunk_plan;

/* The identity of reduction op (sum, max, min) in dtype t; a combined with b by op (NaN wins
 * max and min); v's lanes combined pairwise down to one scalar. */
HIDDEN double loops_identity(jg_op op, jg_dtype t);
HIDDEN LLVMValueRef loops_combine(emit_ctx *e, jg_op op, jg_dtype t, LLVMValueRef a,
                                  LLVMValueRef b);
HIDDEN LLVMValueRef loops_horizontal(emit_ctx *e, jg_op op, jg_dtype t, LLVMValueRef v,
                                     int width);
/* For outer index o: fills idx's kept components, sets e->mask for a partial chunk, and
 * returns the chunk's offset in the output. */
HIDDEN LLVMValueRef loops_chunk_at(emit_ctx *e, const chunk_plan *c, LLVMValueRef o,
                                   kidx *idx);

#endif
