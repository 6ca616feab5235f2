/* Kernels: the uniform ABI every JIT'd kernel has, and the emission context shared by the
 * emitters (elementwise and reduction loops, opaque ops, GEMM).
 *
 *     fused group ─▶ loop nest over the group's iteration space ─▶ for each point (the
 *     innermost dimension W lanes at a time, masked tail): emit_value(root, index) recursively
 *     emits the group's expression; leaves load from buffers with index arithmetic
 *
 * Every kernel is   int64_t k(void **bufs, int64_t begin, int64_t end, char *scratch)
 * bufs: one base pointer per buffer slot of the program (inputs, parameters, arena slots);
 * [begin, end): the part of the kernel's outer range this call computes (the thread pool
 * splits it); scratch: per-thread scratch memory of the size the kernel asked for. Shapes
 * and strides are constants in the code. It returns 0, or 1 + the flat position, in its
 * index operand, of an index out of range (gather, scatter, one_hot, cross_entropy labels):
 * the runtime turns that into a JG_ERR_RANGE message. */
#ifndef JG_JIT_KERNEL_H
#define JG_JIT_KERNEL_H

#include "jit/session.h"
#include "ops/op.h"

typedef int64_t (*jit_kernel_fn)(void **bufs, int64_t begin, int64_t end, char *scratch);

/* A vector index component: lane l of the vector has the value base + l * lane (base an i64
 * scalar). Affine in the lane, so a leaf load knows whether it is contiguous (coefficient 1:
 * a vector load), uniform (0: one load, splat) or strided (a gather). */
typedef struct kidx {
    LLVMValueRef base;
    int64_t lane;
} kidx;

typedef struct emit_ctx emit_ctx;

/* Emits the value of a member node at a point. Hooks let a GEMM bind the matmul node to its
 * accumulator: when `bound` is non-NULL, emitting that node returns bound_value. */
struct emit_ctx {
    jit_module *m;
    LLVMBuilderRef b;
    LLVMValueRef fn;
    LLVMValueRef bufs;          /* the kernel's first argument, i8** */
    int width;                  /* lanes */
    LLVMValueRef mask;          /* <width x i1> of the lanes in range, or NULL: all */
    /* Which nodes are computed inline (members of the group) and which are read from a
     * buffer slot (slot_of >= 0). Leaf fills are always inline constants. */
    const bool *member;         /* by node id */
    bool flat;                  /* elementwise group over same-size buffers: idx is one
                                   linear index (see emit_elementwise.c) */
    const int *slot_of;         /* by node id: the buffer slot, or -1 */
    int step_slot;              /* the slot holding the run step (u64) random nodes read */
    const jg_node *bound;
    LLVMValueRef bound_value;
    const char *unsupported;    /* set when emit_value met an op it cannot lower */
    /* Values of nodes of shape memo_shape at the current point memo_idx, by node id, so a
     * multi-output kernel computes what its outputs share once (NULL: no memo). Only values
     * at the point itself are kept: a part's view (a permute) may read a node of that shape
     * elsewhere. */
    LLVMValueRef *memo;
    jg_shape memo_shape;
    const kidx *memo_idx;
    /* Stores of whole vectors at offsets that are multiples of the width into 64-byte aligned
     * buffers: emit them aligned, and non-temporal (bypassing the caches, no read for
     * ownership) when the output is too large to be read back from cache anyway. */
    bool aligned_stores, streaming_stores;
    /* Contiguous loads from buffers over 16 MiB also prefetch this many bytes ahead (0:
     * none): the hardware prefetchers stop at page boundaries. */
    int prefetch_bytes;
    /* Emitting an expression only fetches its operands ahead of need (a GEMM's epilogue,
     * while the tile's k loop runs): contiguous loads from buffers over 64 KiB become
     * prefetches of their first lane, and every value is undef (no arithmetic, no call). */
    bool prefetch_only;
    /* Values of one-element nodes by node id, computed once in the kernel's entry block
     * rather than per vector (NULL: off). A one-element node is the same at every point, but
     * LLVM cannot hoist it when its loads may alias the kernel's stores: a one-parameter
     * model's Adam update called exp twice and divided three times per vector. Off for GEMM
     * epilogues, whose one-element nodes may depend on the accumulator. */
    LLVMValueRef *hoisted;
    LLVMBasicBlockRef entry;    /* set by emit_kernel_begin */
};

/* Types. */
HIDDEN LLVMTypeRef emit_scalar_type(emit_ctx *e, jg_dtype t);
HIDDEN LLVMTypeRef emit_vector_type(emit_ctx *e, jg_dtype t);
HIDDEN LLVMValueRef emit_i64(emit_ctx *e, int64_t v);

/* The value of node n at index idx (n->shape.ndim components), as <width x T>. */
HIDDEN LLVMValueRef emit_value(emit_ctx *e, const jg_node *n, const kidx *idx);
/* Buffer slot s as a T* pointer. */
HIDDEN LLVMValueRef emit_slot_ptr(emit_ctx *e, int slot, jg_dtype t);
/* Stores v (<width x T>) at element offset `at` (i64) of pointer p, honouring e->mask. */
HIDDEN void emit_store(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef at, LLVMValueRef v);
/* Loads <width x T> at offset base + lane * stride (element units) from p, honouring mask. */
HIDDEN LLVMValueRef emit_load(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef base,
                              int64_t stride);
/* <width x i1>: lane < n (n an i64 value). */
HIDDEN LLVMValueRef emit_lane_mask(emit_ctx *e, LLVMValueRef n);
/* <0, 1, ..., width-1> as i64 lanes. */
HIDDEN LLVMValueRef emit_lane_iota(emit_ctx *e);
/* A call to an overloaded intrinsic, e.g. ("llvm.maximum", &vec_type, 1, args, 2). */
HIDDEN LLVMValueRef emit_intrinsic(emit_ctx *e, const char *name, LLVMTypeRef *overload,
                                   int n_overload, LLVMValueRef *args, int n_args);
/* Splat of a scalar constant / value. */
HIDDEN LLVMValueRef emit_splat_const(emit_ctx *e, jg_dtype t, double v);
HIDDEN LLVMValueRef emit_splat(emit_ctx *e, LLVMValueRef scalar);

/* exp, log and tanh of <width x T> (emit_math.c): inline polynomials in f32, libm in f64. */
HIDDEN LLVMValueRef emit_exp(emit_ctx *e, jg_dtype t, LLVMValueRef v);
HIDDEN LLVMValueRef emit_log(emit_ctx *e, jg_dtype t, LLVMValueRef v);
HIDDEN LLVMValueRef emit_tanh(emit_ctx *e, jg_dtype t, LLVMValueRef v);
/* A libm function (f32_name or f64_name by t) applied lane by lane. */
HIDDEN LLVMValueRef emit_libm_per_lane(emit_ctx *e, const char *f32_name, const char *f64_name,
                                       jg_dtype t, LLVMValueRef v);

/* A counted loop: for (i = from; i < to; i += step) body. Usage:
 *     loop L; loop_begin(e, &L, from, to, step, "i"); ... use L.i ...; loop_end(e, &L); */
typedef struct loop {
    LLVMValueRef i, to, step;
    LLVMBasicBlockRef head, body, exit;
    LLVMValueRef phi;
} loop;
HIDDEN void loop_begin(emit_ctx *e, loop *l, LLVMValueRef from, LLVMValueRef to,
                       LLVMValueRef step, const char *name);
HIDDEN void loop_end(emit_ctx *e, loop *l);

/* Creates `i64 kernel(i8** bufs, i64 begin, i64 end, i8* scratch)` with an entry block and
 * positions the builder there; fills e->m, e->b, e->fn, e->bufs. emit_kernel_end returns 0
 * from the current block. */
HIDDEN LLVMValueRef emit_kernel_begin(emit_ctx *e, jit_module *m);
HIDDEN void emit_kernel_end(emit_ctx *e);

#endif
