/* Loop nests of reduction kernels: when the innermost input dimension is reduced, each output
 * element keeps a vector accumulator along it and sums its lanes at the end; when it is kept,
 * each chunk of W output elements keeps one and the reduced dimensions are walked outside.
 * Each output element is computed by one thread in a fixed order, so results do not depend on
 * threads. f32 sums accumulate in f64 (loops_acc_dtype): in registers, or for chunks in the
 * thread's scratch a block at a time, converted once when stored. */
#include "jit/emit_loops.h"
#include "jit/loops.h"

#include <math.h>
#include <stdlib.h>

double loops_identity(jg_op op, jg_dtype t)
{
    if (op == JG_OP_SUM)
        return 0;
    double big = t == JG_I32 ? 2147483647.0 : INFINITY;
    return op == JG_OP_MAX ? -big - (t == JG_I32) : big;
}

LLVMValueRef loops_combine(emit_ctx *e, jg_op op, jg_dtype t, LLVMValueRef a, LLVMValueRef b)
{
    LLVMTypeRef ty = LLVMTypeOf(a);
    LLVMValueRef args[2] = { a, b };
    if (op == JG_OP_SUM) /* i32 sums saturate at each step (the reference: at the end) */
        return t == JG_I32 ? emit_intrinsic(e, "llvm.sadd.sat", &ty, 1, args, 2)
                           : LLVMBuildFAdd(e->b, a, b, "");
    if (t == JG_I32)
        return emit_intrinsic(e, op == JG_OP_MAX ? "llvm.smax" : "llvm.smin", &ty, 1, args, 2);
    /* NaN-propagating, as the reference: x86 in LLVM 14 cannot select llvm.maximum on
     * vectors, so compare, then let a NaN in a win (a NaN in b wins through the compare) */
    LLVMValueRef pick = LLVMBuildFCmp(e->b, op == JG_OP_MAX ? LLVMRealOGT : LLVMRealOLT, a, b, "");
    LLVMValueRef r = LLVMBuildSelect(e->b, pick, a, b, "");
    return LLVMBuildSelect(e->b, LLVMBuildFCmp(e->b, LLVMRealUNO, a, a, ""), a, r, "");
}

/* Combines the lanes of v pairwise (a tree) down to one scalar. */
LLVMValueRef loops_horizontal(emit_ctx *e, jg_op op, jg_dtype t, LLVMValueRef v, int width)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->m->ctx);
    while (width > 1) {
        int half = width / 2;
        LLVMValueRef lo_i[32], hi_i[32];
        for (int i = 0; i < half; i++) {
            lo_i[i] = LLVMConstInt(i32, (unsigned)i, 0);
            hi_i[i] = LLVMConstInt(i32, (unsigned)(i + half), 0);
        }
        LLVMValueRef lo = LLVMBuildShuffleVector(e->b, v, v, LLVMConstVector(lo_i, (unsigned)half), "");
        LLVMValueRef hi = LLVMBuildShuffleVector(e->b, v, v, LLVMConstVector(hi_i, (unsigned)half), "");
        v = loops_combine(e, op, t, lo, hi);
        width = half;
    }
    return LLVMBuildExtractElement(e->b, v, LLVMConstInt(i32, 0, 0), "");
}


/* Accumulates x over the reduced dims red[from..n_red) into acc (an alloca), idx holding the
 * other components; the innermost input dim, if among them, goes W lanes at a time. */
static void accumulate(emit_ctx *e, const reduce_plan *p, LLVMValueRef acc, kidx *idx, int from)
{
    jg_dtype t = p->x->dtype, ta = loops_acc_dtype(p->root->op, t);
    LLVMTypeRef vt = emit_vector_type(e, ta);
    int nd = p->in.ndim;
    if (from == p->n_red) {
        LLVMValueRef v = emit_value(e, p->x, idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v, emit_splat_const(e, t, loops_identity(p->root->op, t)), "");
        LLVMValueRef old = LLVMBuildLoad2(e->b, vt, acc, "");
        LLVMBuildStore(e->b, loops_combine(e, p->root->op, ta, old, loops_convert(e, v, t, ta)), acc);
        return;
    }
    int d = p->red[from];
    int64_t n = p->in.dim[d];
    if (d == nd - 1 && !p->lanes_kept) { /* the innermost: vectorised, masked tail */
        int64_t w = e->width, full = n - n % w;
        LLVMValueRef saved = e->mask;
        if (full > 0) {
            loop l;
            loop_begin(e, &l, i64c(e, 0), i64c(e, full), i64c(e, w), "rj");
            idx[d] = (kidx){ l.i, 1 };
            accumulate(e, p, acc, idx, from + 1);
            loop_end(e, &l);
        }
        if (full < n) {
            e->mask = emit_lane_mask(e, i64c(e, n - full));
            idx[d] = (kidx){ i64c(e, full), 1 };
            accumulate(e, p, acc, idx, from + 1);
            e->mask = saved;
        }
        return;
    }
    loop l;
    loop_begin(e, &l, i64c(e, 0), i64c(e, n), i64c(e, 1), "r");
    idx[d] = (kidx){ l.i, 0 };
    accumulate(e, p, acc, idx, from + 1);
    loop_end(e, &l);
}


/* For outer index o: fills idx's kept components, sets e->mask for a partial chunk, and
 * returns the chunk's offset in the output. */
LLVMValueRef loops_chunk_at(emit_ctx *e, const chunk_plan *c, LLVMValueRef o, kidx *idx)
{
    const reduce_plan *p = c->p;
    LLVMValueRef chunk = LLVMBuildSRem(e->b, o, i64c(e, c->chunks), "");
    LLVMValueRef row = LLVMBuildSDiv(e->b, o, i64c(e, c->chunks), "");
    LLVMValueRef comps[JG_MAX_DIMS];
    loops_delinearise(e, row, c->kept_dims, p->n_kept - 1, comps);
    for (int i = 0; i < p->n_kept - 1; i++)
        idx[p->kept[i]] = (kidx){ comps[i], 0 };
    LLVMValueRef j = LLVMBuildMul(e->b, chunk, i64c(e, e->width), "");
    idx[c->dim] = (kidx){ j, 1 };
    e->mask = c->dlast % e->width ? emit_lane_mask(e, LLVMBuildSub(e->b, i64c(e, c->dlast), j, ""))
                                  : NULL;
    return LLVMBuildAdd(e->b, LLVMBuildMul(e->b, row, i64c(e, c->dlast), ""), j, "");
}

/* Where chunk o accumulates: its place in the output, or its vector in c->acc. */
static LLVMValueRef acc_at(emit_ctx *e, const chunk_plan *c, LLVMValueRef o, LLVMValueRef at)
{
    if (!c->acc)
        return at;
    return LLVMBuildMul(e->b, LLVMBuildSub(e->b, o, c->lo, ""), i64c(e, e->width), "");
}

/* Loops over the reduced dims red[from..), then over this thread's chunks. */
static void accumulate_chunks(emit_ctx *e, const chunk_plan *c, kidx *idx, int from)
{
    const reduce_plan *p = c->p;
    if (from == p->n_red) {
        jg_dtype t = p->x->dtype, ta = c->acc ? loops_acc_dtype(p->root->op, t) : t;
        LLVMValueRef dst = c->acc ? c->acc : c->out;
        loop o;
        loop_begin(e, &o, c->lo, c->hi, i64c(e, 1), "o");
        LLVMValueRef at = acc_at(e, c, o.i, loops_chunk_at(e, c, o.i, idx));
        LLVMValueRef v = emit_value(e, p->x, idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v, c->identity, "");
        LLVMValueRef old = emit_load(e, dst, ta, at, 1);
        emit_store(e, dst, ta, at, loops_combine(e, p->root->op, ta, old, loops_convert(e, v, t, ta)));
        e->mask = NULL;
        loop_end(e, &o);
        return;
    }
    int d = p->red[from];
    loop l;
    loop_begin(e, &l, i64c(e, 0), i64c(e, p->in.dim[d]), i64c(e, 1), "r");
    idx[d] = (kidx){ l.i, 0 };
    accumulate_chunks(e, c, idx, from + 1);
    loop_end(e, &l);
}

/* The most per-thread scratch an f32 sum's f64 chunk accumulators take: a thread's range
 * is accumulated in blocks of chunks that fit (L2-sized, so they stay in cache). */
#define SCRATCH_CAP ((int64_t)1 << 20)

static bool windowed(const reduce_plan *p, int width)
{
    int nd = p->in.ndim;
    if (p->n_kept == 0 || !p->reduced[nd - 1])
        return false;
    int kd = p->kept[p->n_kept - 1];
    int64_t run = 1;
    for (int d = kd + 1; d < nd; d++)
        run *= p->in.dim[d];
    return run <= WINDOW_MAX && p->in.dim[kd] * 4 >= width;
}

LLVMValueRef emit_reduce(emit_ctx *e, jit_module *m, const jg_node *root, int out_slot,
                         int64_t *outer, int64_t *align, size_t *scratch)
{
    reduce_plan p = { .root = root, .x = root->in[0], .in = root->in[0]->shape };
    for (int d = 0; d < p.in.ndim; d++) {
        p.reduced[d] = (root->attr.axes >> d) & 1u;
        if (p.reduced[d])
            p.red[p.n_red++] = d;
        else
            p.kept[p.n_kept++] = d;
    }
    jg_dtype t = p.x->dtype, ta = loops_acc_dtype(root->op, t);
    emit_kernel_begin(e, m);
    LLVMTypeRef vt = emit_vector_type(e, ta);
    LLVMValueRef acc = LLVMBuildAlloca(e->b, vt, "acc");
    LLVMValueRef out = emit_slot_ptr(e, out_slot, root->dtype);
    LLVMValueRef identity = emit_splat_const(e, t, loops_identity(root->op, t));
    LLVMValueRef acc_identity = emit_splat_const(e, ta, loops_identity(root->op, ta));
    int nd = p.in.ndim;
    kidx idx[JG_MAX_DIMS];
    int64_t kept_dims[JG_MAX_DIMS];
    bool inner_kept = nd > 0 && !p.reduced[nd - 1];
    *align = 1;
    if (nd == 0) /* a scalar: one lane, the others keep the identity */
        e->mask = emit_lane_mask(e, i64c(e, 1));
    if (windowed(&p, e->width)) {
        /* Windows (pooling): the innermost reduced run is too short for vectors, so chunks of
         * W output elements run along the last kept dim, each lane gathering its own terms
         * (a lane stride), every reduced dim walked inside with the accumulator in registers. */
        int kd = p.kept[p.n_kept - 1];
        int64_t dlast = p.in.dim[kd], w = e->width, chunks = (dlast + w - 1) / w;
        for (int i = 0; i < p.n_kept - 1; i++)
            kept_dims[i] = p.in.dim[p.kept[i]];
        *outer = jg_shape_numel(root->shape) / dlast * chunks;
        p.lanes_kept = true;
        chunk_plan c = { .p = &p, .out = out, .chunks = chunks, .dlast = dlast,
                         .kept_dims = kept_dims, .identity = identity, .dim = kd };
        loop o;
        loop_begin(e, &o, begin_arg(e), end_arg(e), i64c(e, 1), "o");
        LLVMValueRef at = loops_chunk_at(e, &c, o.i, idx);
        LLVMBuildStore(e->b, acc_identity, acc);
        accumulate(e, &p, acc, idx, 0);
        emit_store(e, out, root->dtype, at, loops_convert(e, LLVMBuildLoad2(e->b, vt, acc, ""), ta, t));
        e->mask = NULL;
        loop_end(e, &o);
    } else if (!inner_kept) {
        /* one output element per outer iteration */
        for (int i = 0; i < p.n_kept; i++)
            kept_dims[i] = p.in.dim[p.kept[i]];
        *outer = jg_shape_numel(root->shape);
        loop o;
        loop_begin(e, &o, begin_arg(e), end_arg(e), i64c(e, 1), "o");
        LLVMValueRef comps[JG_MAX_DIMS];
        loops_delinearise(e, o.i, kept_dims, p.n_kept, comps);
        for (int i = 0; i < p.n_kept; i++)
            idx[p.kept[i]] = (kidx){ comps[i], 0 };
        LLVMBuildStore(e->b, acc_identity, acc);
        accumulate(e, &p, acc, idx, 0);
        LLVMValueRef total = loops_horizontal(e, root->op, ta, LLVMBuildLoad2(e->b, vt, acc, ""), e->width);
        total = loops_convert(e, total, ta, t);
        LLVMValueRef at = LLVMBuildGEP2(e->b, emit_scalar_type(e, t), out, &o.i, 1, "");
        LLVMBuildStore(e->b, total, at);
        loop_end(e, &o);
        e->mask = NULL;
    } else {
        /* Chunks of W output elements along the kept innermost dim. The reduced dims run
         * outside the chunks, so the input streams row by row while the thread's output
         * chunks, which stay in cache, accumulate in place; each element still adds its
         * terms in the same order, whatever the split. */
        int64_t dlast = p.in.dim[nd - 1], w = e->width, chunks = (dlast + w - 1) / w;
        for (int i = 0; i < p.n_kept - 1; i++)
            kept_dims[i] = p.in.dim[p.kept[i]];
        *outer = jg_shape_numel(root->shape) / dlast * chunks;
        chunk_plan c = { .p = &p, .out = out, .chunks = chunks, .dlast = dlast,
                         .kept_dims = kept_dims, .identity = identity, .dim = nd - 1,
                         .lo = begin_arg(e), .hi = end_arg(e) };
        loop blk;
        if (ta != t) {
            /* a vector of accumulators per chunk in scratch, stored at the end of each block
             * of chunks; every row is still read once per block, contiguously */
            int64_t per = SCRATCH_CAP / (w * (int64_t)jg_dtype_size(ta));
            per = per < 1 ? 1 : per > *outer ? *outer : per;
            *scratch = (size_t)(per * w) * jg_dtype_size(ta);
            c.acc = LLVMBuildBitCast(e->b, LLVMGetParam(e->fn, 3),
                                    LLVMPointerType(emit_scalar_type(e, ta), 0), "");
            loop_begin(e, &blk, begin_arg(e), end_arg(e), i64c(e, per), "block");
            LLVMValueRef hi = LLVMBuildAdd(e->b, blk.i, i64c(e, per), "");
            c.lo = blk.i;
            c.hi = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, hi, end_arg(e), ""), hi,
                                   end_arg(e), "");
        }
        loop o;
        loop_begin(e, &o, c.lo, c.hi, i64c(e, 1), "o");
        LLVMValueRef at = loops_chunk_at(e, &c, o.i, idx);
        if (c.acc) {
            e->mask = NULL;
            emit_store(e, c.acc, ta, acc_at(e, &c, o.i, at), acc_identity);
        } else {
            emit_store(e, out, root->dtype, at, identity);
        }
        e->mask = NULL;
        loop_end(e, &o);
        accumulate_chunks(e, &c, idx, 0);
        if (c.acc) {
            loop_begin(e, &o, c.lo, c.hi, i64c(e, 1), "o");
            at = loops_chunk_at(e, &c, o.i, idx);
            LLVMValueRef sum = emit_load(e, c.acc, ta, acc_at(e, &c, o.i, at), 1);
            emit_store(e, out, root->dtype, at, loops_convert(e, sum, ta, t));
            e->mask = NULL;
            loop_end(e, &o);
            loop_end(e, &blk);
        }
    }
    emit_kernel_end(e);
    return e->fn;
}
