/* Emits the value of a fused group's expression at one point of its iteration space: leaves
 * are loads (contiguous, uniform or gathered, decided by the index's lane coefficients), view
 * ops remap the index, elementwise ops map to vector instructions. Each op's lowering is one
 * case below; the semantics match the reference kernels (src/ops/unary.c, binary.c). */
#include "jit/kernel.h"

#include <string.h>

/* A prefetch of the bytes `ahead` past element `at` of p (never faults). */
static void prefetch(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef at, int ahead)
{
    LLVMTypeRef i8 = LLVMInt8TypeInContext(e->m->ctx), i8p = LLVMPointerType(i8, 0);
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->m->ctx);
    LLVMValueRef off = LLVMBuildAdd(e->b, LLVMBuildMul(e->b, at, emit_i64(e, (int64_t)jg_dtype_size(t)), ""),
                                    emit_i64(e, ahead), "");
    LLVMValueRef ptr = LLVMBuildGEP2(e->b, i8, LLVMBuildBitCast(e->b, p, i8p, ""), &off, 1, "");
    LLVMValueRef args[4] = { ptr, LLVMConstInt(i32, 0, 0), LLVMConstInt(i32, 3, 0),
                             LLVMConstInt(i32, 1, 0) };
    emit_intrinsic(e, "llvm.prefetch", &i8p, 1, args, 4);
}

static LLVMValueRef load_buffer(emit_ctx *e, const jg_node *n, const kidx *idx)
{
    LLVMValueRef p = emit_slot_ptr(e, e->slot_of[n->id], n->dtype);
    LLVMValueRef base = emit_i64(e, 0);
    int64_t lane = 0;
    if (e->flat) { /* idx[0] is the linear index; one-element buffers are uniform */
        if (jg_shape_numel(n->shape) > 1)
            base = idx[0].base, lane = idx[0].lane;
    } else {
        int64_t strides[JG_MAX_DIMS];
        shape_strides(n->shape, strides);
        for (int d = 0; d < n->shape.ndim; d++) {
            if (n->shape.dim[d] == 1)
                continue;
            base = LLVMBuildAdd(e->b, base, LLVMBuildMul(e->b, idx[d].base,
                                                         emit_i64(e, strides[d]), ""), "");
            lane += idx[d].lane * strides[d];
        }
    }
    if (e->prefetch_only) {
        /* contiguous lanes of a buffer too large to stay in L1 (a bias vector does): one
         * line; a gather is not worth guessing */
        if (lane == 1 && jg_shape_numel(n->shape) * (int64_t)jg_dtype_size(n->dtype) > 65536)
            prefetch(e, p, n->dtype, base, 0);
        return LLVMGetUndef(emit_vector_type(e, n->dtype));
    }
    if (e->prefetch_bytes && lane == 1 &&
        jg_shape_numel(n->shape) * (int64_t)jg_dtype_size(n->dtype) > ((int64_t)16 << 20))
        prefetch(e, p, n->dtype, base, e->prefetch_bytes);
    return emit_load(e, p, n->dtype, base, lane);
}

/* The index of operand `in` of a broadcasting op whose result has shape `out`. */
static void broadcast_index(emit_ctx *e, jg_shape out, jg_shape in, const kidx *idx, kidx *r)
{
    if (e->flat) {
        r[0] = jg_shape_numel(in) == 1 ? (kidx){ emit_i64(e, 0), 0 } : idx[0];
        return;
    }
    int lead = out.ndim - in.ndim;
    for (int d = 0; d < in.ndim; d++)
        r[d] = in.dim[d] == 1 ? (kidx){ emit_i64(e, 0), 0 } : idx[d + lead];
}

static bool is_float(jg_dtype t) { return t != JG_I32; }

static LLVMValueRef intrinsic1(emit_ctx *e, const char *name, LLVMValueRef v)
{
    LLVMTypeRef t = LLVMTypeOf(v);
    return emit_intrinsic(e, name, &t, 1, &v, 1);
}

static LLVMValueRef intrinsic2(emit_ctx *e, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = { a, b };
    return emit_intrinsic(e, name, &t, 1, args, 2);
}

static LLVMValueRef k(emit_ctx *e, jg_dtype t, double v) { return emit_splat_const(e, t, v); }

/* 1 or 0 in dtype t from an i1 vector. */
static LLVMValueRef from_bool(emit_ctx *e, jg_dtype t, LLVMValueRef c)
{
    return is_float(t) ? LLVMBuildUIToFP(e->b, c, emit_vector_type(e, t), "")
                       : LLVMBuildZExt(e->b, c, emit_vector_type(e, t), "");
}

static LLVMValueRef compare(emit_ctx *e, jg_dtype t, LLVMRealPredicate fp, LLVMIntPredicate ip,
                            LLVMValueRef a, LLVMValueRef b)
{
    return is_float(t) ? LLVMBuildFCmp(e->b, fp, a, b, "") : LLVMBuildICmp(e->b, ip, a, b, "");
}

static LLVMValueRef select_(emit_ctx *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(e->b, c, a, b, "");
}

/* Float to i32 as the reference does: toward zero, saturating, NaN to 0. By selects around
 * a plain conversion of an in-range value: x86 scalarises llvm.fptosi.sat lane by lane. */
static LLVMValueRef to_i32(emit_ctx *e, jg_dtype from, LLVMValueRef v)
{
    LLVMValueRef lo = emit_splat_const(e, from, -2147483648.0);
    LLVMValueRef hi = emit_splat_const(e, from, 2147483648.0); /* INT32_MAX + 1 */
    LLVMValueRef below = LLVMBuildFCmp(e->b, LLVMRealOLT, v, lo, "");
    LLVMValueRef above = LLVMBuildFCmp(e->b, LLVMRealOGE, v, hi, "");
    LLVMValueRef nan = LLVMBuildFCmp(e->b, LLVMRealUNO, v, v, "");
    LLVMValueRef out = LLVMBuildOr(e->b, LLVMBuildOr(e->b, below, above, ""), nan, "");
    LLVMValueRef safe = LLVMBuildSelect(e->b, out, emit_splat_const(e, from, 0), v, "");
    LLVMValueRef r = LLVMBuildFPToSI(e->b, safe, emit_vector_type(e, JG_I32), "");
    r = LLVMBuildSelect(e->b, below, emit_splat_const(e, JG_I32, INT32_MIN), r, "");
    return LLVMBuildSelect(e->b, above, emit_splat_const(e, JG_I32, INT32_MAX), r, "");
}

static LLVMValueRef cast(emit_ctx *e, jg_dtype from, jg_dtype to, LLVMValueRef v)
{
    if (from == to)
        return v;
    LLVMTypeRef vt = emit_vector_type(e, to);
    if (to == JG_I32)
        return to_i32(e, from, v);
    if (from == JG_I32)
        return LLVMBuildSIToFP(e->b, v, vt, "");
    return to == JG_F64 ? LLVMBuildFPExt(e->b, v, vt, "") : LLVMBuildFPTrunc(e->b, v, vt, "");
}

/* i32 arithmetic saturates, as the reference (which computes in double and saturates). */
static LLVMValueRef sat(emit_ctx *e, const char *name, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[2] = { a, b };
    return emit_intrinsic(e, name, &t, 1, args, 2);
}

static LLVMValueRef sat_mul(emit_ctx *e, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef w = LLVMVectorType(LLVMInt64TypeInContext(e->m->ctx), (unsigned)e->width);
    LLVMValueRef p = LLVMBuildMul(e->b, LLVMBuildSExt(e->b, a, w, ""), LLVMBuildSExt(e->b, b, w, ""), "");
    LLVMValueRef hi = emit_splat(e, LLVMConstInt(LLVMInt64TypeInContext(e->m->ctx), INT32_MAX, 1));
    LLVMValueRef lo = emit_splat(e, LLVMConstInt(LLVMInt64TypeInContext(e->m->ctx), (unsigned long long)(int64_t)INT32_MIN, 1));
    p = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, p, hi, ""), hi, p, "");
    p = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, p, lo, ""), lo, p, "");
    return LLVMBuildTrunc(e->b, p, LLVMTypeOf(a), "");
}

/* i32 division as the reference: truncating, x / 0 = 0, INT_MIN / -1 saturates. */
static LLVMValueRef int_div(emit_ctx *e, LLVMValueRef a, LLVMValueRef b)
{
    LLVMValueRef zero = k(e, JG_I32, 0), one = k(e, JG_I32, 1);
    LLVMValueRef bz = LLVMBuildICmp(e->b, LLVMIntEQ, b, zero, "");
    LLVMValueRef ovf = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntEQ, a, k(e, JG_I32, INT32_MIN), ""),
                                    LLVMBuildICmp(e->b, LLVMIntEQ, b, k(e, JG_I32, -1), ""), "");
    LLVMValueRef safe_b = select_(e, LLVMBuildOr(e->b, bz, ovf, ""), one, b);
    LLVMValueRef q = LLVMBuildSDiv(e->b, a, safe_b, "");
    q = select_(e, ovf, k(e, JG_I32, INT32_MAX), q);
    return select_(e, bz, zero, q);
}

static LLVMValueRef unary(emit_ctx *e, const jg_node *n, LLVMValueRef v)
{
    jg_dtype t = n->dtype;
    LLVMBuilderRef b = e->b;
    double a0 = n->attr.scalar[0], a1 = n->attr.scalar[1];
    switch (n->op) {
    case JG_OP_NEG: return is_float(t) ? LLVMBuildFNeg(b, v, "") : sat(e, "llvm.ssub.sat", k(e, t, 0), v);
    case JG_OP_ABS:
        if (is_float(t))
            return intrinsic1(e, "llvm.fabs", v);
        return select_(e, LLVMBuildICmp(b, LLVMIntSLT, v, k(e, t, 0), ""),
                       sat(e, "llvm.ssub.sat", k(e, t, 0), v), v);
    case JG_OP_EXP: return emit_exp(e, t, v);
    case JG_OP_LOG: return emit_log(e, t, v);
    case JG_OP_SQRT: return intrinsic1(e, "llvm.sqrt", v);
    case JG_OP_RSQRT: return LLVMBuildFDiv(b, k(e, t, 1), intrinsic1(e, "llvm.sqrt", v), "");
    case JG_OP_SQUARE: return LLVMBuildFMul(b, v, v, "");
    case JG_OP_TANH: return emit_tanh(e, t, v);
    case JG_OP_SIGMOID: {
        /* 1 / (1 + e^-v): e^-v overflows to inf for very negative v, giving 0 as it should */
        LLVMValueRef ex = emit_exp(e, t, LLVMBuildFNeg(b, v, ""));
        return LLVMBuildFDiv(b, k(e, t, 1), LLVMBuildFAdd(b, k(e, t, 1), ex, ""), "");
    }
    case JG_OP_RELU:
        return select_(e, LLVMBuildFCmp(b, LLVMRealOGT, v, k(e, t, 0), ""), v, k(e, t, 0));
    case JG_OP_SOFTPLUS: {
        LLVMValueRef m = select_(e, LLVMBuildFCmp(b, LLVMRealOGT, v, k(e, t, 0), ""), v, k(e, t, 0));
        LLVMValueRef ex = emit_exp(e, t, LLVMBuildFNeg(b, intrinsic1(e, "llvm.fabs", v), ""));
        return LLVMBuildFAdd(b, m, emit_libm_per_lane(e, "log1pf", "log1p", t, ex), "");
    }
    case JG_OP_POW: return intrinsic2(e, "llvm.pow", v, k(e, t, a0));
    case JG_OP_LEAKY_RELU:
        return select_(e, LLVMBuildFCmp(b, LLVMRealOGT, v, k(e, t, 0), ""), v,
                       LLVMBuildFMul(b, v, k(e, t, a0), ""));
    case JG_OP_ELU:
        return select_(e, LLVMBuildFCmp(b, LLVMRealOGT, v, k(e, t, 0), ""), v,
                       LLVMBuildFMul(b, emit_libm_per_lane(e, "expm1f", "expm1", t, v),
                                     k(e, t, a0), ""));
    case JG_OP_CLAMP: {
        LLVMValueRef hi = select_(e, LLVMBuildFCmp(b, LLVMRealOGT, v, k(e, t, a1), ""), k(e, t, a1), v);
        return select_(e, LLVMBuildFCmp(b, LLVMRealOLT, v, k(e, t, a0), ""), k(e, t, a0), hi);
    }
    case JG_OP_CAST: return cast(e, n->in[0]->dtype, t, v);
    case JG_OP_STOP_GRADIENT: return v;
    default: return NULL;
    }
}

static LLVMValueRef binary(emit_ctx *e, const jg_node *n, LLVMValueRef a, LLVMValueRef c)
{
    jg_dtype t = n->in[0]->dtype;
    LLVMBuilderRef b = e->b;
    bool f = is_float(t);
    switch (n->op) {
    case JG_OP_ADD: return f ? LLVMBuildFAdd(b, a, c, "") : sat(e, "llvm.sadd.sat", a, c);
    case JG_OP_SUB: return f ? LLVMBuildFSub(b, a, c, "") : sat(e, "llvm.ssub.sat", a, c);
    case JG_OP_MUL: return f ? LLVMBuildFMul(b, a, c, "") : sat_mul(e, a, c);
    case JG_OP_DIV: return f ? LLVMBuildFDiv(b, a, c, "") : int_div(e, a, c);
    case JG_OP_MAXIMUM: return select_(e, compare(e, t, LLVMRealOGE, LLVMIntSGE, a, c), a, c);
    case JG_OP_MINIMUM: return select_(e, compare(e, t, LLVMRealOLE, LLVMIntSLE, a, c), a, c);
    case JG_OP_LT: return from_bool(e, t, compare(e, t, LLVMRealOLT, LLVMIntSLT, a, c));
    case JG_OP_LE: return from_bool(e, t, compare(e, t, LLVMRealOLE, LLVMIntSLE, a, c));
    case JG_OP_GT: return from_bool(e, t, compare(e, t, LLVMRealOGT, LLVMIntSGT, a, c));
    case JG_OP_GE: return from_bool(e, t, compare(e, t, LLVMRealOGE, LLVMIntSGE, a, c));
    case JG_OP_EQ: return from_bool(e, t, compare(e, t, LLVMRealOEQ, LLVMIntEQ, a, c));
    case JG_OP_NE: return from_bool(e, t, compare(e, t, LLVMRealUNE, LLVMIntNE, a, c));
    default: return NULL;
    }
}

static LLVMValueRef emit_uncached(emit_ctx *e, const jg_node *n, const kidx *idx);

/* A one-element node's value, emitted once before the entry block's branch into the loops
 * (which it dominates) at index 0 with every lane in range, by a builder of its own, so the
 * kernel's builder keeps its place. Its operands have one element too: they are hoisted
 * the same way, each before the terminator, so ahead of what uses them. The memo (values at
 * the current point) is set aside meanwhile. */
static LLVMValueRef hoisted_value(emit_ctx *e, const jg_node *n)
{
    if (e->hoisted[n->id])
        return e->hoisted[n->id];
    LLVMBuilderRef kernel_builder = e->b;
    LLVMValueRef mask = e->mask, *memo = e->memo;
    e->b = LLVMCreateBuilderInContext(e->m->ctx);
    LLVMValueRef term = LLVMGetBasicBlockTerminator(e->entry);
    if (term)
        LLVMPositionBuilderBefore(e->b, term);
    else
        LLVMPositionBuilderAtEnd(e->b, e->entry);
    e->mask = NULL;
    e->memo = NULL;
    kidx zero[JG_MAX_DIMS];
    for (int d = 0; d < JG_MAX_DIMS; d++)
        zero[d] = (kidx){ emit_i64(e, 0), 0 };
    LLVMValueRef v = emit_uncached(e, n, zero);
    LLVMDisposeBuilder(e->b);
    e->b = kernel_builder;
    e->mask = mask;
    e->memo = memo;
    return e->hoisted[n->id] = v;
}

/* Whether idx is the memo's point (the same index values, dim by dim). */
static bool at_memo_point(const emit_ctx *e, const kidx *idx)
{
    int nd = e->flat ? 1 : e->memo_shape.ndim;
    for (int d = 0; d < nd; d++)
        if (idx[d].base != e->memo_idx[d].base || idx[d].lane != e->memo_idx[d].lane)
            return false;
    return true;
}

LLVMValueRef emit_value(emit_ctx *e, const jg_node *n, const kidx *idx)
{
    if (e->prefetch_only && jg_shape_numel(n->shape) == 1)
        return LLVMGetUndef(emit_vector_type(e, n->dtype)); /* never cache a prefetch's undef */
    if (e->hoisted && n != e->bound && n->op != JG_OP_RANDOM && jg_shape_numel(n->shape) == 1)
        return hoisted_value(e, n);
    bool memo = e->memo && shape_eq(n->shape, e->memo_shape) && at_memo_point(e, idx);
    if (memo && e->memo[n->id])
        return e->memo[n->id];
    LLVMValueRef v = emit_uncached(e, n, idx);
    if (memo)
        e->memo[n->id] = v;
    return v;
}

/* splitmix64's finaliser, as rng.c's mix64, on i64 scalars or vectors. */
static LLVMValueRef mix64(emit_ctx *e, LLVMValueRef z, bool vec)
{
    LLVMTypeRef i64 = LLVMInt64TypeInContext(e->m->ctx);
#define K(v) (vec ? emit_splat(e, LLVMConstInt(i64, (v), 0)) : LLVMConstInt(i64, (v), 0))
    z = LLVMBuildXor(e->b, z, LLVMBuildLShr(e->b, z, K(30), ""), "");
    z = LLVMBuildMul(e->b, z, K(0xbf58476d1ce4e5b9ULL), "");
    z = LLVMBuildXor(e->b, z, LLVMBuildLShr(e->b, z, K(27), ""), "");
    z = LLVMBuildMul(e->b, z, K(0x94d049bb133111ebULL), "");
    z = LLVMBuildXor(e->b, z, LLVMBuildLShr(e->b, z, K(31), ""), "");
    return z;
#undef K
}

/* rng_u64(key, counter) of rng.c, with a scalar key and scalar or vector counters. */
static LLVMValueRef rng_u64_ir(emit_ctx *e, LLVMValueRef key, LLVMValueRef counter, bool vec)
{
    LLVMTypeRef i64 = LLVMInt64TypeInContext(e->m->ctx);
    LLVMValueRef k = mix64(e, LLVMBuildAdd(e->b, key, LLVMConstInt(i64, 0x9e3779b97f4a7c15ULL, 0), ""),
                           false);
    LLVMValueRef mul = LLVMConstInt(i64, 0xd1b54a32d192ed03ULL, 0);
    if (vec) {
        k = emit_splat(e, k);
        mul = emit_splat(e, mul);
    }
    return mix64(e, LLVMBuildXor(e->b, k, LLVMBuildMul(e->b, counter, mul, ""), ""), vec);
}

/* random_value(key, step, i) of random.c at the lanes' element indices. */
static LLVMValueRef emit_random(emit_ctx *e, const jg_node *n, const kidx *idx)
{
    LLVMTypeRef i64 = LLVMInt64TypeInContext(e->m->ctx);
    LLVMValueRef base;
    int64_t lane;
    if (e->flat) {
        base = idx[0].base, lane = idx[0].lane;
    } else {
        int64_t strides[JG_MAX_DIMS];
        shape_strides(n->shape, strides);
        base = emit_i64(e, 0), lane = 0;
        for (int d = 0; d < n->shape.ndim; d++) {
            base = LLVMBuildAdd(e->b, base, LLVMBuildMul(e->b, idx[d].base, emit_i64(e, strides[d]), ""), "");
            lane += idx[d].lane * strides[d];
        }
    }
    LLVMValueRef lanes[64];
    for (int i = 0; i < e->width; i++)
        lanes[i] = LLVMConstInt(i64, (unsigned long long)(i * lane), 1);
    LLVMValueRef counter = LLVMBuildAdd(e->b, emit_splat(e, base),
                                        LLVMConstVector(lanes, (unsigned)e->width), "");
    LLVMValueRef step_ptr = emit_slot_ptr(e, e->step_slot, JG_I32);
    step_ptr = LLVMBuildBitCast(e->b, step_ptr, LLVMPointerType(i64, 0), "");
    LLVMValueRef step = LLVMBuildLoad2(e->b, i64, step_ptr, "step");
    LLVMValueRef key = rng_u64_ir(e, LLVMConstInt(i64, n->attr.key, 0), step, false);
    LLVMValueRef bits = rng_u64_ir(e, key, counter, true);
    LLVMValueRef top = LLVMBuildLShr(e->b, bits, emit_splat(e, LLVMConstInt(i64, 11, 0)), "");
    LLVMTypeRef vd = LLVMVectorType(LLVMDoubleTypeInContext(e->m->ctx), (unsigned)e->width);
    LLVMValueRef u = LLVMBuildFMul(e->b, LLVMBuildUIToFP(e->b, top, vd, ""),
                                   emit_splat(e, LLVMConstReal(LLVMDoubleTypeInContext(e->m->ctx),
                                                               0x1.0p-53)), "");
    return n->dtype == JG_F64 ? u : LLVMBuildFPTrunc(e->b, u, emit_vector_type(e, n->dtype), "");
}

/* An inline concat (fuse.c: one consumer, a few buffer pieces): each piece is loaded at the
 * point moved into it, under a mask of the lanes that fall in it, and the lanes merged. A
 * position uniform across lanes picks one piece; its index is clamped into every piece, so
 * the pieces it does not pick are read in bounds. */
static LLVMValueRef concat_value(emit_ctx *e, const jg_node *n, const kidx *idx)
{
    int a = n->attr.axis;
    kidx at[JG_MAX_DIMS];
    for (int d = 0; d < n->shape.ndim; d++)
        at[d] = idx[d];
    LLVMValueRef mask = e->mask, base = idx[a].base, r = NULL, pos = NULL;
    int64_t coef = idx[a].lane, start = 0;
    if (coef)
        pos = LLVMBuildAdd(e->b, emit_splat(e, base),
                           LLVMBuildMul(e->b, emit_lane_iota(e), emit_splat(e, emit_i64(e, coef)),
                                        ""), "");
    for (int k = 0; k < n->n_in; k++) {
        const jg_node *x = n->in[k];
        int64_t len = x->shape.dim[a];
        LLVMValueRef lo = emit_i64(e, start), hi = emit_i64(e, start + len), in;
        LLVMValueRef local = LLVMBuildSub(e->b, base, lo, "");
        if (!coef) {
            in = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, base, lo, ""),
                              LLVMBuildICmp(e->b, LLVMIntSLT, base, hi, ""), "");
            LLVMValueRef below = LLVMBuildICmp(e->b, LLVMIntSLT, local, emit_i64(e, 0), "");
            local = LLVMBuildSelect(e->b, below, emit_i64(e, 0), local, "");
            LLVMValueRef past = LLVMBuildICmp(e->b, LLVMIntSGE, local, emit_i64(e, len), "");
            local = LLVMBuildSelect(e->b, past, emit_i64(e, len - 1), local, "");
        } else {
            in = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, pos, emit_splat(e, lo), ""),
                              LLVMBuildICmp(e->b, LLVMIntSLT, pos, emit_splat(e, hi), ""), "");
            e->mask = mask ? LLVMBuildAnd(e->b, mask, in, "") : in;
        }
        at[a] = (kidx){ local, coef };
        LLVMValueRef v = emit_value(e, x, at);
        e->mask = mask;
        r = r ? LLVMBuildSelect(e->b, in, v, r, "") : v;
        start += len;
    }
    return r;
}

static LLVMValueRef emit_uncached(emit_ctx *e, const jg_node *n, const kidx *idx)
{
    if (n == e->bound)
        return e->bound_value;
    if (n->op == JG_OP_FILL)
        return emit_splat_const(e, n->dtype, n->attr.scalar[0]);
    if (n->op == JG_OP_RANDOM)
        return e->prefetch_only ? LLVMGetUndef(emit_vector_type(e, n->dtype))
                                : emit_random(e, n, idx);
    if (!e->member[n->id])
        return load_buffer(e, n, idx);

    kidx in_idx[3][JG_MAX_DIMS];
    switch (n->op) {
    case JG_OP_PERMUTE:
        for (int d = 0; d < n->shape.ndim; d++)
            in_idx[0][n->attr.list[d]] = idx[d];
        return emit_value(e, n->in[0], in_idx[0]);
    case JG_OP_BROADCAST:
        broadcast_index(e, n->shape, n->in[0]->shape, idx, in_idx[0]);
        return emit_value(e, n->in[0], in_idx[0]);
    case JG_OP_CONCAT:
        return concat_value(e, n, idx);
    case JG_OP_SLICE:
        for (int d = 0; d < n->shape.ndim; d++) {
            int64_t start = n->attr.list[d], step = n->attr.step[d];
            in_idx[0][d] = (kidx){ LLVMBuildAdd(e->b, emit_i64(e, start),
                                                LLVMBuildMul(e->b, idx[d].base, emit_i64(e, step), ""), ""),
                                   idx[d].lane * step };
        }
        return emit_value(e, n->in[0], in_idx[0]);
    default:
        break;
    }
    LLVMValueRef v[3];
    for (int i = 0; i < n->n_in && i < 3; i++) {
        broadcast_index(e, n->shape, n->in[i]->shape, idx, in_idx[i]);
        v[i] = emit_value(e, n->in[i], in_idx[i]);
    }
    if (e->prefetch_only) /* only the loads matter: no arithmetic, no libm calls */
        return LLVMGetUndef(emit_vector_type(e, n->dtype));
    if (n->op == JG_OP_WHERE) {
        jg_dtype ct = n->in[0]->dtype;
        LLVMValueRef c = compare(e, ct, LLVMRealUNE, LLVMIntNE, v[0], k(e, ct, 0));
        return select_(e, c, v[1], v[2]);
    }
    LLVMValueRef r = n->n_in == 1 ? unary(e, n, v[0]) : binary(e, n, v[0], v[1]);
    if (!r) { /* the kernel is discarded: compiling fails with this op's name */
        e->unsupported = graph_op_name(n->op);
        r = LLVMGetUndef(emit_vector_type(e, n->dtype));
    }
    return r;
}
