/* Kernels for the opaque ops: one kernel per node over plain contiguous row-major buffers,
 * each op a function below, with the semantics of its reference kernel (argmax_eval in
 * ops/reduce.c; unslice, pad, concat, take, scatter_add, one_hot in ops/index.c;
 * cross_entropy_eval in ops/nn.c). Shapes are compile-time constants.
 *
 *     op            [0, outer) is split over          one unit of work
 *     argmax        rows (axis last) / column blocks   a scan along the axis
 *     unslice       output positions on axis 0         zero the slab, scatter what lands in it
 *     pad           output rows (all axes but last)    fill or fill + copy + fill
 *     concat        output rows before the axis        one copy per operand
 *     take          output rows (outer x index)        one copy of `inner` elements
 *     scatter_add   output blocks before the axis      zero, then add every indexed row
 *     one_hot       indices                            zero the row, store a 1
 *     cross_entropy 1 (a global sum in double)         every row
 *     max_pool2d(_grad) planes (emit_pool.c)           every window of the plane
 *
 * Index operands are checked in full at the start of every call (cheap next to the work), so
 * each call of a split run reports the same, first, bad position. NOTE loop-carried values
 * live in allocas of the entry block: the optimiser promotes them to registers. */
#include "jit/emit_opaque.h"
#include "jit/scalar_ir.h"

#include <math.h>

/* ---- IR helpers */

static LLVMTypeRef i64_type(emit_ctx *e) { return LLVMInt64TypeInContext(e->m->ctx); }

static LLVMValueRef add(emit_ctx *e, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAdd(e->b, a, b, "");
}

/* a * c for a constant c (no instruction when c is 1). */
static LLVMValueRef mulc(emit_ctx *e, LLVMValueRef a, int64_t c)
{
    return c == 1 ? a : LLVMBuildMul(e->b, a, emit_i64(e, c), "");
}

static LLVMValueRef addc(emit_ctx *e, LLVMValueRef a, int64_t c)
{
    return c == 0 ? a : add(e, a, emit_i64(e, c));
}

/* An i32 index as i64 (sign-extended: a negative index stays out of range). */
static LLVMValueRef load_index(emit_ctx *e, LLVMValueRef idx, LLVMValueRef at)
{
    return LLVMBuildSExt(e->b, load_at(e, idx, JG_I32, at), i64_type(e), "");
}


static LLVMBasicBlockRef block(emit_ctx *e, const char *name)
{
    return LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, name);
}

/* for (i = from; i < to; i++) with i64 bounds. */
static void for_range(emit_ctx *e, loop *l, LLVMValueRef from, LLVMValueRef to, const char *name)
{
    loop_begin(e, l, from, to, emit_i64(e, 1), name);
}

static LLVMValueRef arg_begin(emit_ctx *e) { return LLVMGetParam(e->fn, 1); }
static LLVMValueRef arg_end(emit_ctx *e) { return LLVMGetParam(e->fn, 2); }

static void ret(emit_ctx *e, LLVMValueRef v) { LLVMBuildRet(e->b, v); }

/* Sizes around `axis`: s = [outer..., s[axis], inner...]. */
static void split_at(jg_shape s, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < axis; k++)
        *outer *= s.dim[k];
    for (int k = axis + 1; k < s.ndim; k++)
        *inner *= s.dim[k];
}

/* ---- element runs: copy, zero, fill, add */

static void copy_elems(emit_ctx *e, LLVMValueRef dst, LLVMValueRef doff, LLVMValueRef src,
                       LLVMValueRef soff, jg_dtype t, LLVMValueRef count)
{
    unsigned size = (unsigned)jg_dtype_size(t);
    LLVMBuildMemCpy(e->b, elem_ptr(e, dst, t, doff), size, elem_ptr(e, src, t, soff), size,
                    mulc(e, count, size));
}

static void zero_elems(emit_ctx *e, LLVMValueRef dst, LLVMValueRef doff, jg_dtype t,
                       LLVMValueRef count)
{
    unsigned size = (unsigned)jg_dtype_size(t);
    LLVMBuildMemSet(e->b, elem_ptr(e, dst, t, doff),
                    LLVMConstInt(LLVMInt8TypeInContext(e->m->ctx), 0, 0), mulc(e, count, size),
                    size);
}

/* Calls body(e, i, ctx) for i = 0, W, 2W, ... < count, the last one with e->mask set to the
 * lanes left when W does not divide count. */
typedef void (*lanes_fn)(emit_ctx *e, LLVMValueRef i, void *ctx);

static void over_lanes(emit_ctx *e, int64_t count, lanes_fn body, void *ctx)
{
    int64_t w = e->width, full = count / w * w;
    if (full > 0) {
        loop l;
        loop_begin(e, &l, emit_i64(e, 0), emit_i64(e, full), emit_i64(e, w), "lanes");
        body(e, l.i, ctx);
        loop_end(e, &l);
    }
    if (full < count) {
        e->mask = emit_lane_mask(e, emit_i64(e, count - full));
        body(e, emit_i64(e, full), ctx);
        e->mask = NULL;
    }
}

typedef struct run_args {
    LLVMValueRef dst, doff, src, soff, value, idx;
    jg_dtype t;
} run_args;

static void fill_body(emit_ctx *e, LLVMValueRef i, void *ctx)
{
    run_args *a = ctx;
    emit_store(e, a->dst, a->t, add(e, a->doff, i), a->value);
}

static void add_body(emit_ctx *e, LLVMValueRef i, void *ctx)
{
    run_args *a = ctx;
    LLVMValueRef at = add(e, a->doff, i);
    LLVMValueRef x = emit_load(e, a->src, a->t, add(e, a->soff, i), 1);
    LLVMValueRef y = emit_load(e, a->dst, a->t, at, 1);
    emit_store(e, a->dst, a->t, at,
               a->t == JG_I32 ? LLVMBuildAdd(e->b, y, x, "") : LLVMBuildFAdd(e->b, y, x, ""));
}

/* dst[doff + i] = value (rounded to t as constants are) for i < count. */
static void fill_elems(emit_ctx *e, LLVMValueRef dst, LLVMValueRef doff, jg_dtype t,
                       int64_t count, double value)
{
    if (count <= 0)
        return;
    bool zero_bits = t == JG_I32 ? saturate_i32(value) == 0 : value == 0 && !signbit(value);
    if (zero_bits) {
        zero_elems(e, dst, doff, t, emit_i64(e, count));
        return;
    }
    run_args a = { .dst = dst, .doff = doff, .t = t, .value = emit_splat_const(e, t, value) };
    over_lanes(e, count, fill_body, &a);
}

/* dst[doff + i] += src[soff + i] for i < count. */
static void add_elems(emit_ctx *e, LLVMValueRef dst, LLVMValueRef doff, LLVMValueRef src,
                      LLVMValueRef soff, jg_dtype t, int64_t count)
{
    run_args a = { .dst = dst, .doff = doff, .src = src, .soff = soff, .t = t };
    over_lanes(e, count, add_body, &a);
}

/* ---- index checks */

static LLVMValueRef out_of_range(emit_ctx *e, LLVMValueRef k, int64_t dim)
{
    return LLVMBuildICmp(e->b, LLVMIntUGE, k, emit_i64(e, dim), "bad");
}

/* Returns from the kernel with 1 + the position of the first of idx[0, n) outside [0, dim).
 * A branch-free pass (vectorisable) decides whether the search is needed at all. */
static void check_indices(emit_ctx *e, LLVMValueRef idx, int64_t n, int64_t dim)
{
    LLVMTypeRef i8 = LLVMInt8TypeInContext(e->m->ctx);
    LLVMValueRef any = var_new(e, LLVMConstInt(i8, 0, 0));
    loop l;
    for_range(e, &l, emit_i64(e, 0), emit_i64(e, n), "check");
    LLVMValueRef bad = LLVMBuildZExt(e->b, out_of_range(e, load_index(e, idx, l.i), dim), i8, "");
    var_set(e, any, LLVMBuildOr(e->b, var_get(e, any, i8), bad, ""));
    loop_end(e, &l);
    LLVMBasicBlockRef search = block(e, "search"), ok = block(e, "indices_ok");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntNE, var_get(e, any, i8),
                                        LLVMConstInt(i8, 0, 0), ""), search, ok);
    LLVMPositionBuilderAtEnd(e->b, search);
    loop s;
    for_range(e, &s, emit_i64(e, 0), emit_i64(e, n), "find");
    LLVMBasicBlockRef found = block(e, "found"), next = block(e, "next");
    LLVMBuildCondBr(e->b, out_of_range(e, load_index(e, idx, s.i), dim), found, next);
    LLVMPositionBuilderAtEnd(e->b, found);
    ret(e, addc(e, s.i, 1));
    LLVMPositionBuilderAtEnd(e->b, next);
    loop_end(e, &s);
    LLVMBuildBr(e->b, ok); /* not reached: the first pass saw a bad index */
    LLVMPositionBuilderAtEnd(e->b, ok);
}

/* ---- argmax: the first maximum, or the first NaN */

/* Whether v replaces best: v > best, or v is the first NaN (once best is NaN, nothing does). */
static LLVMValueRef argmax_better(emit_ctx *e, jg_dtype t, LLVMValueRef v, LLVMValueRef best)
{
    if (t == JG_I32)
        return LLVMBuildICmp(e->b, LLVMIntSGT, v, best, "");
    LLVMValueRef gt = LLVMBuildFCmp(e->b, LLVMRealOGT, v, best, "");
    LLVMValueRef nan = LLVMBuildAnd(e->b, LLVMBuildFCmp(e->b, LLVMRealUNO, v, v, ""),
                                    LLVMBuildFCmp(e->b, LLVMRealORD, best, best, ""), "");
    return LLVMBuildOr(e->b, gt, nan, "");
}

static void emit_argmax(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                        int64_t *outer)
{
    jg_dtype t = n->in[0]->dtype;
    int64_t pre, inner, dim = n->in[0]->shape.dim[n->attr.axis];
    split_at(n->in[0]->shape, n->attr.axis, &pre, &inner);
    LLVMTypeRef st = emit_scalar_type(e, t), i32 = LLVMInt32TypeInContext(e->m->ctx);
    loop o, r;
    if (inner == 1) {
        /* each output scans a contiguous row */
        *outer = pre;
        for_range(e, &o, arg_begin(e), arg_end(e), "row");
        LLVMValueRef base = mulc(e, o.i, dim);
        LLVMValueRef best = var_new(e, load_at(e, x, t, base)), at = var_new(e, emit_i64(e, 0));
        for_range(e, &r, emit_i64(e, 1), emit_i64(e, dim), "r");
        LLVMValueRef v = load_at(e, x, t, add(e, base, r.i)), b = var_get(e, best, st);
        LLVMValueRef up = argmax_better(e, t, v, b);
        var_set(e, best, LLVMBuildSelect(e->b, up, v, b, ""));
        var_set(e, at, LLVMBuildSelect(e->b, up, r.i, var_get(e, at, i64_type(e)), ""));
        loop_end(e, &r);
        store_at(e, out, JG_I32, o.i, LLVMBuildTrunc(e->b, var_get(e, at, i64_type(e)), i32, ""));
        loop_end(e, &o);
        return;
    }
    /* W adjacent outputs at once: the axis is strided by inner, the columns are contiguous */
    int64_t w = e->width, blocks = (inner + w - 1) / w;
    *outer = pre * blocks;
    LLVMTypeRef vt = emit_vector_type(e, t), vi = emit_vector_type(e, JG_I32);
    for_range(e, &o, arg_begin(e), arg_end(e), "block");
    LLVMValueRef oo = o.i, col = emit_i64(e, 0); /* unit o = (row oo, column block) */
    if (blocks > 1 && pre == 1) {
        oo = emit_i64(e, 0);
        col = mulc(e, o.i, w);
    } else if (blocks > 1) {
        oo = LLVMBuildUDiv(e->b, o.i, emit_i64(e, blocks), "");
        col = mulc(e, LLVMBuildURem(e->b, o.i, emit_i64(e, blocks), ""), w);
    }
    if (inner % w)
        e->mask = emit_lane_mask(e, LLVMBuildSub(e->b, emit_i64(e, inner), col, ""));
    LLVMValueRef base = add(e, mulc(e, oo, dim * inner), col);
    LLVMValueRef best = var_new(e, emit_load(e, x, t, base, 1));
    LLVMValueRef at = var_new(e, LLVMConstNull(vi));
    for_range(e, &r, emit_i64(e, 1), emit_i64(e, dim), "r");
    LLVMValueRef v = emit_load(e, x, t, add(e, base, mulc(e, r.i, inner)), 1);
    LLVMValueRef b = var_get(e, best, vt);
    LLVMValueRef up = argmax_better(e, t, v, b);
    var_set(e, best, LLVMBuildSelect(e->b, up, v, b, ""));
    LLVMValueRef rv = emit_splat(e, LLVMBuildTrunc(e->b, r.i, i32, ""));
    var_set(e, at, LLVMBuildSelect(e->b, up, rv, var_get(e, at, vi), ""));
    loop_end(e, &r);
    emit_store(e, out, JG_I32, add(e, mulc(e, oo, inner), col), var_get(e, at, vi));
    e->mask = NULL;
    loop_end(e, &o);
}

/* ---- unslice: zeros with the operand at the slice positions */

/* Copies the operand's elements of axes k.. (at offset soff) to their positions (doff). */
static void unslice_rest(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x, int k,
                         LLVMValueRef doff, LLVMValueRef soff)
{
    jg_shape full = n->shape, part = n->in[0]->shape;
    int nd = full.ndim;
    jg_dtype t = n->dtype;
    if (k == nd) {
        store_at(e, out, t, doff, load_at(e, x, t, soff));
        return;
    }
    int64_t own[JG_MAX_DIMS], ps[JG_MAX_DIMS], start = n->attr.list[k], step = n->attr.step[k];
    shape_strides(full, own);
    shape_strides(part, ps);
    if (part.dim[k] == 1) { /* the step (maybe huge) is never used */
        unslice_rest(e, n, out, x, k + 1, addc(e, doff, start * own[k]), soff);
        return;
    }
    if (k == nd - 1 && step == 1) {
        copy_elems(e, out, addc(e, doff, start), x, soff, t, emit_i64(e, part.dim[k]));
        return;
    }
    loop l;
    for_range(e, &l, emit_i64(e, 0), emit_i64(e, part.dim[k]), "u");
    LLVMValueRef pos = addc(e, mulc(e, l.i, step), start);
    unslice_rest(e, n, out, x, k + 1, add(e, doff, mulc(e, pos, own[k])),
                 add(e, soff, mulc(e, l.i, ps[k])));
    loop_end(e, &l);
}

static void emit_unslice(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                         int64_t *outer)
{
    jg_shape full = n->shape, part = n->in[0]->shape;
    int64_t own[JG_MAX_DIMS], ps[JG_MAX_DIMS], start = n->attr.list[0], step = n->attr.step[0];
    shape_strides(full, own);
    shape_strides(part, ps);
    /* this call owns output positions [begin, end) on axis 0: zero them, then scatter the
     * operand's slabs that land there */
    *outer = full.dim[0];
    LLVMValueRef begin = arg_begin(e), end = arg_end(e);
    zero_elems(e, out, mulc(e, begin, own[0]), n->dtype,
               mulc(e, LLVMBuildSub(e->b, end, begin, ""), own[0]));
    loop l;
    for_range(e, &l, emit_i64(e, 0), emit_i64(e, part.dim[0]), "slab");
    LLVMValueRef pos = part.dim[0] == 1 ? emit_i64(e, start) : addc(e, mulc(e, l.i, step), start);
    LLVMValueRef mine = LLVMBuildAnd(e->b, LLVMBuildICmp(e->b, LLVMIntSGE, pos, begin, ""),
                                     LLVMBuildICmp(e->b, LLVMIntSLT, pos, end, ""), "");
    LLVMBasicBlockRef scatter = block(e, "scatter"), next = block(e, "next");
    LLVMBuildCondBr(e->b, mine, scatter, next);
    LLVMPositionBuilderAtEnd(e->b, scatter);
    unslice_rest(e, n, out, x, 1, mulc(e, pos, own[0]), mulc(e, l.i, ps[0]));
    LLVMBuildBr(e->b, next);
    LLVMPositionBuilderAtEnd(e->b, next);
    loop_end(e, &l);
}

/* ---- pad: a row of the output is all value, or value, an operand row, value */

static void emit_pad(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                     int64_t *outer)
{
    jg_shape os = n->shape, xs = n->in[0]->shape;
    int nd = os.ndim;
    jg_dtype t = n->dtype;
    double value = n->attr.scalar[0];
    int64_t len = os.dim[nd - 1], before = n->attr.list[nd - 1], xlen = xs.dim[nd - 1];
    int64_t xst[JG_MAX_DIMS];
    shape_strides(xs, xst);
    *outer = jg_shape_numel(os) / len;
    loop r;
    for_range(e, &r, arg_begin(e), arg_end(e), "row");
    /* the row's position on axes 0..nd-2, and the operand row it shows, if any */
    LLVMValueRef inside = LLVMConstInt(LLVMInt1TypeInContext(e->m->ctx), 1, 0);
    LLVMValueRef src = emit_i64(e, 0);
    int64_t row_stride = 1;
    for (int k = nd - 2; k >= 0; k--) {
        LLVMValueRef p = row_stride == 1 ? r.i
                                         : LLVMBuildUDiv(e->b, r.i, emit_i64(e, row_stride), "");
        if (k > 0)
            p = LLVMBuildURem(e->b, p, emit_i64(e, os.dim[k]), "");
        row_stride *= os.dim[k];
        LLVMValueRef q = addc(e, p, -n->attr.list[k]);
        inside = LLVMBuildAnd(e->b, inside, LLVMBuildICmp(e->b, LLVMIntULT, q,
                                                          emit_i64(e, xs.dim[k]), ""), "");
        src = add(e, src, mulc(e, q, xst[k]));
    }
    LLVMValueRef dst = mulc(e, r.i, len);
    LLVMBasicBlockRef copy = block(e, "copy"), fill = block(e, "fill"), join = block(e, "join");
    LLVMBuildCondBr(e->b, inside, copy, fill);
    LLVMPositionBuilderAtEnd(e->b, copy);
    fill_elems(e, out, dst, t, before, value);
    copy_elems(e, out, addc(e, dst, before), x, src, t, emit_i64(e, xlen));
    fill_elems(e, out, addc(e, dst, before + xlen), t, len - before - xlen, value);
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, fill);
    fill_elems(e, out, dst, t, len, value);
    LLVMBuildBr(e->b, join);
    LLVMPositionBuilderAtEnd(e->b, join);
    loop_end(e, &r);
}

/* ---- concat: output row o = operand 0's block o, operand 1's block o, ... */

static void emit_concat(emit_ctx *e, const jg_node *n, LLVMValueRef out, const int *in_slots,
                        int64_t *outer)
{
    int ax = n->attr.axis;
    int64_t pre, inner;
    split_at(n->shape, ax, &pre, &inner);
    int64_t total = n->shape.dim[ax] * inner, off = 0;
    *outer = pre;
    for (int i = 0; i < n->n_in; i++) {
        int64_t blk = n->in[i]->shape.dim[ax] * inner;
        LLVMValueRef src = emit_slot_ptr(e, in_slots[i], n->dtype);
        loop o;
        for_range(e, &o, arg_begin(e), arg_end(e), "row");
        copy_elems(e, out, addc(e, mulc(e, o.i, total), off), src, mulc(e, o.i, blk), n->dtype,
                   emit_i64(e, blk));
        loop_end(e, &o);
        off += blk;
    }
}

/* ---- take: out = [pre, nidx, inner], each row a copy of x's row idx[j] */

/* dst[doff + i] = src[soff + idx[i]] for the lanes of i: one vector gather. */
static void gather_body(emit_ctx *e, LLVMValueRef i, void *ctx)
{
    run_args *a = ctx;
    LLVMTypeRef i64v = LLVMVectorType(i64_type(e), (unsigned)e->width);
    LLVMValueRef k = LLVMBuildSExt(e->b, emit_load(e, a->idx, JG_I32, i, 1), i64v, "");
    LLVMValueRef ptrs = LLVMBuildGEP2(e->b, emit_scalar_type(e, a->t),
                                      elem_ptr(e, a->src, a->t, a->soff), &k, 1, "");
    LLVMTypeRef vt = emit_vector_type(e, a->t);
    LLVMValueRef mask = e->mask ? e->mask
                                : LLVMConstAllOnes(LLVMVectorType(LLVMInt1TypeInContext(e->m->ctx),
                                                                  (unsigned)e->width));
    LLVMTypeRef ov[2] = { vt, LLVMTypeOf(ptrs) };
    LLVMValueRef args[4] = { ptrs, LLVMConstInt(LLVMInt32TypeInContext(e->m->ctx),
                                                jg_dtype_size(a->t), 0),
                             mask, LLVMConstNull(vt) };
    emit_store(e, a->dst, a->t, add(e, a->doff, i),
               emit_intrinsic(e, "llvm.masked.gather", ov, 2, args, 4));
}

static void emit_take(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                      LLVMValueRef idx, int64_t *outer)
{
    const jg_node *xn = n->in[0];
    int ax = n->attr.axis;
    int64_t pre, inner, dim = xn->shape.dim[ax], nidx = jg_shape_numel(n->in[1]->shape);
    split_at(xn->shape, ax, &pre, &inner);
    *outer = pre * nidx;
    check_indices(e, idx, nidx, dim);
    if (inner == 1 && nidx * 2 >= e->width) {
        /* single elements (im2col's windows): each row of x gathers W indices at a time */
        *outer = pre;
        loop r;
        for_range(e, &r, arg_begin(e), arg_end(e), "row");
        run_args a = { .dst = out, .doff = mulc(e, r.i, nidx), .src = x,
                       .soff = mulc(e, r.i, dim), .idx = idx, .t = n->dtype };
        over_lanes(e, nidx, gather_body, &a);
        loop_end(e, &r);
        return;
    }
    loop r;
    for_range(e, &r, arg_begin(e), arg_end(e), "row");
    LLVMValueRef o = pre == 1 ? emit_i64(e, 0)
                     : nidx == 1 ? r.i
                                 : LLVMBuildUDiv(e->b, r.i, emit_i64(e, nidx), "");
    LLVMValueRef j = pre == 1 ? r.i
                     : nidx == 1 ? emit_i64(e, 0)
                                 : LLVMBuildURem(e->b, r.i, emit_i64(e, nidx), "");
    LLVMValueRef src = mulc(e, add(e, mulc(e, o, dim), load_index(e, idx, j)), inner);
    copy_elems(e, out, mulc(e, r.i, inner), x, src, n->dtype, emit_i64(e, inner));
    loop_end(e, &r);
}

/* ---- scatter_add: out = [pre, count, inner] zeros, row idx[j] of block o += y's row (o, j) */

static void emit_scatter_add(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef y,
                             LLVMValueRef idx, int64_t *outer)
{
    int ax = n->attr.axis;
    int64_t pre, inner, count = n->attr.count, nidx = jg_shape_numel(n->in[1]->shape);
    split_at(n->shape, ax, &pre, &inner);
    *outer = pre; /* blocks are disjoint; each adds its rows in index order */
    check_indices(e, idx, nidx, count);
    loop o, j;
    for_range(e, &o, arg_begin(e), arg_end(e), "block");
    zero_elems(e, out, mulc(e, o.i, count * inner), n->dtype, emit_i64(e, count * inner));
    for_range(e, &j, emit_i64(e, 0), emit_i64(e, nidx), "j");
    LLVMValueRef dst = mulc(e, add(e, mulc(e, o.i, count), load_index(e, idx, j.i)), inner);
    LLVMValueRef src = mulc(e, add(e, mulc(e, o.i, nidx), j.i), inner);
    add_elems(e, out, dst, y, src, n->dtype, inner);
    loop_end(e, &j);
    loop_end(e, &o);
}

/* ---- one_hot: out = [nidx, depth] */

static void emit_one_hot(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef idx,
                         int64_t *outer)
{
    int64_t depth = n->attr.count, nidx = jg_shape_numel(n->in[0]->shape);
    *outer = nidx;
    check_indices(e, idx, nidx, depth);
    LLVMValueRef begin = arg_begin(e), end = arg_end(e);
    zero_elems(e, out, mulc(e, begin, depth), n->dtype,
               mulc(e, LLVMBuildSub(e->b, end, begin, ""), depth));
    LLVMValueRef one = n->dtype == JG_I32 ? LLVMConstInt(emit_scalar_type(e, JG_I32), 1, 0)
                                          : LLVMConstReal(emit_scalar_type(e, n->dtype), 1);
    loop r;
    for_range(e, &r, begin, end, "row");
    store_at(e, out, n->dtype, add(e, mulc(e, r.i, depth), load_index(e, idx, r.i)), one);
    loop_end(e, &r);
}

/* ---- cross_entropy: mean over rows of max + log(sum exp(x - max)) - x[label], in double */

static LLVMValueRef intrinsic_f64(emit_ctx *e, const char *name, LLVMValueRef *args, int n)
{
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->m->ctx);
    return emit_intrinsic(e, name, &d, 1, args, n);
}

/* x[at] (f32 or f64) as a double. */
static LLVMValueRef load_f64(emit_ctx *e, LLVMValueRef x, jg_dtype t, LLVMValueRef at)
{
    LLVMValueRef v = load_at(e, x, t, at);
    return t == JG_F64 ? v : LLVMBuildFPExt(e->b, v, LLVMDoubleTypeInContext(e->m->ctx), "");
}

static void emit_cross_entropy(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                               LLVMValueRef labels, int64_t *outer)
{
    jg_dtype t = n->in[0]->dtype;
    int64_t rows = n->in[0]->shape.dim[0], c = n->in[0]->shape.dim[1];
    LLVMTypeRef d = LLVMDoubleTypeInContext(e->m->ctx);
    *outer = 1;
    LLVMBasicBlockRef work = block(e, "work"), none = block(e, "none");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, arg_begin(e), arg_end(e), ""), work,
                    none);
    LLVMPositionBuilderAtEnd(e->b, none);
    ret(e, emit_i64(e, 0));
    LLVMPositionBuilderAtEnd(e->b, work);
    LLVMValueRef total = var_new(e, LLVMConstReal(d, 0));
    loop r, j;
    for_range(e, &r, emit_i64(e, 0), emit_i64(e, rows), "row");
    LLVMValueRef label = load_index(e, labels, r.i);
    LLVMBasicBlockRef bad = block(e, "bad_label"), ok = block(e, "label_ok");
    LLVMBuildCondBr(e->b, out_of_range(e, label, c), bad, ok);
    LLVMPositionBuilderAtEnd(e->b, bad);
    ret(e, addc(e, r.i, 1));
    LLVMPositionBuilderAtEnd(e->b, ok);
    LLVMValueRef base = mulc(e, r.i, c);
    LLVMValueRef mx = var_new(e, LLVMConstReal(d, -INFINITY));
    for_range(e, &j, emit_i64(e, 0), emit_i64(e, c), "max");
    LLVMValueRef args[2] = { var_get(e, mx, d), load_f64(e, x, t, add(e, base, j.i)) };
    var_set(e, mx, intrinsic_f64(e, "llvm.maxnum", args, 2)); /* fmax: NaN ignored */
    loop_end(e, &j);
    LLVMValueRef m = var_get(e, mx, d);
    LLVMValueRef sum = var_new(e, LLVMConstReal(d, 0));
    for_range(e, &j, emit_i64(e, 0), emit_i64(e, c), "sum");
    LLVMValueRef z = LLVMBuildFSub(e->b, load_f64(e, x, t, add(e, base, j.i)), m, "");
    LLVMValueRef ez = intrinsic_f64(e, "llvm.exp", &z, 1);
    var_set(e, sum, LLVMBuildFAdd(e->b, var_get(e, sum, d), ez, ""));
    loop_end(e, &j);
    LLVMValueRef s = var_get(e, sum, d);
    LLVMValueRef lse = LLVMBuildFAdd(e->b, m, intrinsic_f64(e, "llvm.log", &s, 1), "");
    LLVMValueRef row = LLVMBuildFSub(e->b, lse, load_f64(e, x, t, add(e, base, label)), "");
    var_set(e, total, LLVMBuildFAdd(e->b, var_get(e, total, d), row, ""));
    loop_end(e, &r);
    LLVMValueRef mean = LLVMBuildFDiv(e->b, var_get(e, total, d),
                                      LLVMConstReal(d, (double)rows), "");
    if (t == JG_F32)
        mean = LLVMBuildFPTrunc(e->b, mean, emit_scalar_type(e, t), "");
    store_at(e, out, t, emit_i64(e, 0), mean);
}

/* ---- entry point */

LLVMValueRef opaque_emit(emit_ctx *e, jit_module *m, const jg_node *n, int out_slot,
                         const int *in_slots, int64_t *outer, int64_t *align)
{
    /* The op row's kind says which ops come here (custom ops are libffi calls instead) */
    if (op_get(n->op)->kind != KIND_OPAQUE || n->op == JG_OP_CUSTOM)
        return NULL;
    LLVMValueRef fn = emit_kernel_begin(e, m);
    e->mask = NULL;
    *align = 1;
    LLVMValueRef out = emit_slot_ptr(e, out_slot, n->dtype);
    LLVMValueRef in0 = emit_slot_ptr(e, in_slots[0], n->in[0]->dtype);
    LLVMValueRef in1 = n->n_in > 1 ? emit_slot_ptr(e, in_slots[1], n->in[1]->dtype) : NULL;
    switch (n->op) {
    case JG_OP_ARGMAX: emit_argmax(e, n, out, in0, outer); break;
    case JG_OP_UNSLICE: emit_unslice(e, n, out, in0, outer); break;
    case JG_OP_PAD: emit_pad(e, n, out, in0, outer); break;
    case JG_OP_CONCAT: emit_concat(e, n, out, in_slots, outer); break;
    case JG_OP_TAKE: emit_take(e, n, out, in0, in1, outer); break;
    case JG_OP_SCATTER_ADD: emit_scatter_add(e, n, out, in0, in1, outer); break;
    case JG_OP_ONE_HOT: emit_one_hot(e, n, out, in0, outer); break;
    case JG_OP_CROSS_ENTROPY: emit_cross_entropy(e, n, out, in0, in1, outer); break;
    case JG_OP_MAX_POOL2D:
    case JG_OP_MAX_POOL2D_GRAD: pool_emit_max(e, n, out, in0, in1, outer); break;
    default: e->unsupported = graph_op_name(n->op); break; /* a composite left unlowered */
    }
    emit_kernel_end(e);
    return fn;
}
