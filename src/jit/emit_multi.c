/* Multi-output kernels (sibling fusion) stream their space once in fixed blocks of rows, each
 * block's reductions into partial rows combined at the end: chunks of the kept innermost dim
 * (column sums), or a register accumulator per row of a reduced innermost run (channel
 * statistics). f32 sums accumulate in f64 (loops_acc_dtype), registers and partial rows. */
#include "jit/emit_loops.h"
#include "jit/loops.h"

#include <stdlib.h>

/* The offset of the point idx in a contiguous buffer of shape s (innermost lane 1). */
static LLVMValueRef offset_in(emit_ctx *e, jg_shape s, const kidx *idx)
{
    int64_t strides[JG_MAX_DIMS];
    shape_strides(s, strides);
    LLVMValueRef at = i64c(e, 0);
    for (int d = 0; d < s.ndim; d++)
        at = LLVMBuildAdd(e->b, at, LLVMBuildMul(e->b, idx[d].base, i64c(e, strides[d]), ""), "");
    return at;
}

/* Multi-output kernels split the reduced dims into MULTI_BLOCKS fixed blocks of rows: each
 * thread streams whole rows (what the prefetchers like), each block's reductions go to its own
 * partial row, and a final call (begin < 0) combines the partials in block order. The blocks
 * do not depend on the thread count, so neither do the results. */
enum { MULTI_BLOCKS = 16 };

int64_t multi_blocks(const jg_node *lead)
{
    int64_t rows = jg_shape_numel(lead->in[0]->shape) / jg_shape_numel(lead->shape);
    return rows < MULTI_BLOCKS ? rows : MULTI_BLOCKS;
}

/* The final call: out = combination of the partial rows, in block order. */
static void combine_partials(emit_ctx *e, const jg_node *const *outs, const bool *is_reduce,
                             LLVMValueRef const *ptr, LLVMValueRef const *part, int n_outs,
                             int64_t blocks, int64_t kept)
{
    int64_t w = e->width, full = kept - kept % w;
    for (int i = 0; i < n_outs; i++) {
        if (!is_reduce[i])
            continue;
        jg_dtype t = outs[i]->dtype, ta = loops_acc_dtype(outs[i]->op, t);
        for (int tail = 0; tail < 2; tail++) {
            if ((tail ? kept - full : full) == 0)
                continue;
            loop c;
            if (!tail)
                loop_begin(e, &c, i64c(e, 0), i64c(e, full), i64c(e, w), "c");
            LLVMValueRef at = tail ? i64c(e, full) : c.i;
            e->mask = tail ? emit_lane_mask(e, i64c(e, kept - full)) : NULL;
            LLVMValueRef acc = emit_load(e, part[i], ta, at, 1);
            for (int64_t b = 1; b < blocks; b++)
                acc = loops_combine(e, outs[i]->op, ta, acc,
                              emit_load(e, part[i], ta, LLVMBuildAdd(e->b, at, i64c(e, b * kept), ""), 1));
            emit_store(e, ptr[i], t, at, loops_convert(e, acc, ta, t));
            e->mask = NULL;
            if (!tail)
                loop_end(e, &c);
        }
    }
}

/* Multi-output kernels whose reductions reduce the innermost dims (channel statistics: sums
 * of NCHW data over N, H, W): the dims before that trailing reduced run are rows, split into
 * the same fixed blocks; a row walks its run with one vector accumulator per reduction (in
 * registers) and adds their lanes into its block's partial element once, at the row's end. */
typedef struct run_plan {
    const reduce_plan *p;
    const jg_node *const *outs;
    const bool *is_reduce;
    LLVMValueRef const *ptr, *acc; /* output pointers; accumulators (allocas) */
    int n_outs, n_nodes;
    int t; /* dims [t, nd) walk as one run (see loops_collapsed_from) */
} run_plan;

/* Every output at the point idx: stored, or added into its accumulator. */
static void run_point(emit_ctx *e, const run_plan *r, const kidx *idx)
{
    const reduce_plan *p = r->p;
    LLVMValueRef at = offset_in(e, p->in, idx);
    LLVMValueRef *memo = calloc((size_t)r->n_nodes + 1, sizeof *memo);
    e->memo = memo; /* NULL when out of memory: shared values are computed again */
    e->memo_shape = p->in;
    e->memo_idx = idx;
    int64_t dlast = p->in.dim[p->in.ndim - 1];
    for (int i = 0; i < r->n_outs; i++) {
        const jg_node *out = r->outs[i];
        jg_dtype t = out->dtype;
        if (!r->is_reduce[i]) {
            LLVMValueRef v = emit_value(e, out, idx);
            e->aligned_stores = vectors_aligned(e, t, dlast);
            e->streaming_stores = node_bytes_over(out, STREAM_BYTES);
            if (r->ptr[i])
                emit_store(e, r->ptr[i], t, at, v);
            e->aligned_stores = e->streaming_stores = false;
            continue;
        }
        jg_dtype ta = loops_acc_dtype(out->op, t);
        LLVMValueRef v = emit_value(e, out->in[0], idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v, emit_splat_const(e, t, loops_identity(out->op, t)), "");
        LLVMValueRef old = LLVMBuildLoad2(e->b, emit_vector_type(e, ta), r->acc[i], "");
        LLVMBuildStore(e->b, loops_combine(e, out->op, ta, old, loops_convert(e, v, t, ta)),
                       r->acc[i]);
    }
    e->memo = NULL;
    free(memo);
}

/* The run from dim d on: outer dims one at a time, the innermost W lanes at a time; dims
 * [r->t, nd) as one when they collapse. */
static void run_walk(emit_ctx *e, const run_plan *r, kidx *idx, int d)
{
    int nd = r->p->in.ndim;
    int64_t n = r->p->in.dim[d];
    if (d == r->t)
        for (int q = d + 1; q < nd; q++)
            n *= r->p->in.dim[q], idx[q - 1] = (kidx){ i64c(e, 0), 0 };
    if (d < r->t) {
        loop l;
        loop_begin(e, &l, i64c(e, 0), i64c(e, n), i64c(e, 1), "t");
        idx[d] = (kidx){ l.i, 0 };
        run_walk(e, r, idx, d + 1);
        loop_end(e, &l);
        return;
    }
    int64_t w = e->width, full = n - n % w;
    if (full > 0) {
        loop l;
        loop_begin(e, &l, i64c(e, 0), i64c(e, full), i64c(e, w), "j");
        idx[nd - 1] = (kidx){ l.i, 1 };
        e->prefetch_bytes = PREFETCH_BYTES;
        run_point(e, r, idx);
        e->prefetch_bytes = 0;
        loop_end(e, &l);
    }
    if (full < n) {
        e->mask = emit_lane_mask(e, i64c(e, n - full));
        idx[nd - 1] = (kidx){ i64c(e, full), 1 };
        run_point(e, r, idx);
        e->mask = NULL;
    }
}

/* The work of blocks [begin, end) of a multi kernel whose innermost dim is reduced. */
static void multi_rows(emit_ctx *e, const reduce_plan *p, run_plan *r,
                       LLVMValueRef const *part, int64_t blocks)
{
    int nd = p->in.ndim, t0 = nd;
    while (t0 > 0 && p->reduced[t0 - 1])
        t0--; /* dims [t0, nd) are the trailing reduced run; some dim before it is kept */
    r->t = loops_collapsed_from(e, r->n_nodes, r->outs, r->n_outs, p->in, t0);
    int64_t rows = 1, kept = 1, kstride[JG_MAX_DIMS];
    for (int d = 0; d < t0; d++)
        rows *= p->in.dim[d];
    for (int d = nd - 1; d >= 0; d--)
        if (!p->reduced[d])
            kstride[d] = kept, kept *= p->in.dim[d];
    int64_t per_block = (rows + blocks - 1) / blocks;
    loop bl;
    loop_begin(e, &bl, begin_arg(e), end_arg(e), i64c(e, 1), "block");
    LLVMValueRef base = LLVMBuildMul(e->b, bl.i, i64c(e, kept), "");
    /* this block's partial elements start from the identities */
    loop o;
    loop_begin(e, &o, i64c(e, 0), i64c(e, kept), i64c(e, 1), "o");
    LLVMValueRef at = LLVMBuildAdd(e->b, base, o.i, "");
    for (int i = 0; i < r->n_outs; i++) {
        if (!r->is_reduce[i])
            continue;
        jg_dtype t = loops_acc_dtype(r->outs[i]->op, r->outs[i]->dtype);
        LLVMValueRef ptr = LLVMBuildGEP2(e->b, emit_scalar_type(e, t), part[i], &at, 1, "");
        LLVMValueRef id = emit_splat_const(e, t, loops_identity(r->outs[i]->op, t));
        LLVMBuildStore(e->b, LLVMBuildExtractElement(e->b, id, i64c(e, 0), ""), ptr);
    }
    loop_end(e, &o);
    LLVMValueRef r0 = LLVMBuildMul(e->b, bl.i, i64c(e, per_block), "");
    LLVMValueRef r1 = LLVMBuildAdd(e->b, r0, i64c(e, per_block), "");
    r1 = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, r1, i64c(e, rows), ""), r1,
                         i64c(e, rows), "");
    loop row;
    loop_begin(e, &row, r0, r1, i64c(e, 1), "row");
    LLVMValueRef comps[JG_MAX_DIMS];
    loops_delinearise(e, row.i, p->in.dim, t0, comps);
    kidx idx[JG_MAX_DIMS];
    LLVMValueRef ko = i64c(e, 0); /* the row's output element */
    for (int d = 0; d < t0; d++) {
        idx[d] = (kidx){ comps[d], 0 };
        if (!p->reduced[d])
            ko = LLVMBuildAdd(e->b, ko, LLVMBuildMul(e->b, comps[d], i64c(e, kstride[d]), ""), "");
    }
    for (int i = 0; i < r->n_outs; i++) {
        jg_dtype ta = loops_acc_dtype(r->outs[i]->op, r->outs[i]->dtype);
        if (r->is_reduce[i])
            LLVMBuildStore(e->b, emit_splat_const(e, ta, loops_identity(r->outs[i]->op, ta)),
                           r->acc[i]);
    }
    run_walk(e, r, idx, t0);
    LLVMValueRef pat = LLVMBuildAdd(e->b, base, ko, "");
    for (int i = 0; i < r->n_outs; i++) {
        if (!r->is_reduce[i])
            continue;
        const jg_node *out = r->outs[i];
        jg_dtype t = loops_acc_dtype(out->op, out->dtype);
        LLVMTypeRef st = emit_scalar_type(e, t);
        LLVMValueRef total = loops_horizontal(e, out->op, t,
                                        LLVMBuildLoad2(e->b, emit_vector_type(e, t), r->acc[i], ""),
                                        e->width);
        LLVMValueRef ptr = LLVMBuildGEP2(e->b, st, part[i], &pat, 1, "");
        LLVMBuildStore(e->b, loops_combine(e, out->op, t, LLVMBuildLoad2(e->b, st, ptr, ""), total), ptr);
    }
    loop_end(e, &row);
    loop_end(e, &bl);
}

LLVMValueRef emit_multi(emit_ctx *e, jit_module *m, int n_nodes, const jg_node *const *outs,
                        const int *slots, const int *partial_slots, int n_outs, int64_t *outer,
                        int64_t *align)
{
    const jg_node *lead = NULL;
    for (int i = 0; i < n_outs && !lead; i++)
        if (outs[i]->op == JG_OP_SUM || outs[i]->op == JG_OP_MAX || outs[i]->op == JG_OP_MIN)
            lead = outs[i];
    if (!lead || n_outs > 64)
        return NULL;
    reduce_plan p = { .root = lead, .x = lead->in[0], .in = lead->in[0]->shape };
    int64_t red_dims[JG_MAX_DIMS], kept_dims[JG_MAX_DIMS];
    for (int d = 0; d < p.in.ndim; d++) {
        p.reduced[d] = (lead->attr.axes >> d) & 1u;
        if (p.reduced[d])
            red_dims[p.n_red] = p.in.dim[d], p.red[p.n_red++] = d;
        else
            p.kept[p.n_kept++] = d;
    }
    emit_kernel_begin(e, m);
    LLVMValueRef acc[64]; /* the accumulators of a reduced innermost dim, in the entry block */
    for (int i = 0; i < n_outs; i++)
        acc[i] = LLVMBuildAlloca(e->b, emit_vector_type(e, loops_acc_dtype(outs[i]->op,
                                                                             outs[i]->dtype)),
                                 "acc");
    int nd = p.in.ndim;
    int64_t kept = jg_shape_numel(lead->shape), rows = jg_shape_numel(p.in) / kept;
    int64_t blocks = multi_blocks(lead), dlast = p.in.dim[nd - 1];
    int64_t chunks = (dlast + e->width - 1) / e->width;
    for (int i = 0; i < p.n_kept - 1; i++)
        kept_dims[i] = p.in.dim[p.kept[i]];
    *outer = blocks;
    *align = 1;
    chunk_plan c = { .p = &p, .chunks = chunks, .dlast = dlast, .kept_dims = kept_dims,
                     .dim = nd - 1 };
    kidx idx[JG_MAX_DIMS];
    LLVMValueRef ptr[64], part[64];
    bool is_reduce[64];
    for (int i = 0; i < n_outs; i++) {
        is_reduce[i] = outs[i]->op == JG_OP_SUM || outs[i]->op == JG_OP_MAX ||
                       outs[i]->op == JG_OP_MIN;
        ptr[i] = slots[i] >= 0 ? emit_slot_ptr(e, slots[i], outs[i]->dtype) : NULL;
        part[i] = is_reduce[i] ? emit_slot_ptr(e, partial_slots[i],
                                               loops_acc_dtype(outs[i]->op, outs[i]->dtype))
                               : NULL;
    }
    /* begin < 0: the final call */
    LLVMBasicBlockRef work = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "work");
    LLVMBasicBlockRef fin = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "combine");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, begin_arg(e), i64c(e, 0), ""), fin, work);
    LLVMPositionBuilderAtEnd(e->b, fin);
    combine_partials(e, outs, is_reduce, ptr, part, n_outs, blocks, kept);
    emit_kernel_end(e);
    LLVMPositionBuilderAtEnd(e->b, work);
    if (p.reduced[nd - 1]) {
        run_plan rp = { .p = &p, .outs = outs, .is_reduce = is_reduce, .ptr = ptr, .acc = acc,
                        .n_outs = n_outs, .n_nodes = n_nodes };
        multi_rows(e, &p, &rp, part, blocks);
        emit_kernel_end(e);
        return e->fn;
    }

    int64_t per_block = (rows + blocks - 1) / blocks;
    loop bl;
    loop_begin(e, &bl, begin_arg(e), end_arg(e), i64c(e, 1), "block");
    LLVMValueRef base = LLVMBuildMul(e->b, bl.i, i64c(e, kept), "");
    /* this block's partial rows start from the identities */
    loop o;
    loop_begin(e, &o, i64c(e, 0), i64c(e, kept / dlast * chunks), i64c(e, 1), "o");
    LLVMValueRef at = LLVMBuildAdd(e->b, base, loops_chunk_at(e, &c, o.i, idx), "");
    for (int i = 0; i < n_outs; i++) {
        jg_dtype ta = loops_acc_dtype(outs[i]->op, outs[i]->dtype);
        if (is_reduce[i])
            emit_store(e, part[i], ta, at, emit_splat_const(e, ta, loops_identity(outs[i]->op, ta)));
    }
    e->mask = NULL;
    loop_end(e, &o);
    /* its rows, each streamed whole */
    LLVMValueRef r0 = LLVMBuildMul(e->b, bl.i, i64c(e, per_block), "");
    LLVMValueRef r1 = LLVMBuildAdd(e->b, r0, i64c(e, per_block), "");
    r1 = LLVMBuildSelect(e->b, LLVMBuildICmp(e->b, LLVMIntSLT, r1, i64c(e, rows), ""), r1,
                         i64c(e, rows), "");
    loop r;
    loop_begin(e, &r, r0, r1, i64c(e, 1), "row");
    LLVMValueRef comps[JG_MAX_DIMS];
    loops_delinearise(e, r.i, red_dims, p.n_red, comps);
    for (int k = 0; k < p.n_red; k++)
        idx[p.red[k]] = (kidx){ comps[k], 0 };
    loop_begin(e, &o, i64c(e, 0), i64c(e, kept / dlast * chunks), i64c(e, 1), "o");
    LLVMValueRef out_at = loops_chunk_at(e, &c, o.i, idx);
    LLVMValueRef part_at = LLVMBuildAdd(e->b, base, out_at, "");
    LLVMValueRef full_at = offset_in(e, p.in, idx);
    LLVMValueRef *memo = calloc((size_t)n_nodes + 1, sizeof *memo);
    e->memo = memo;
    e->memo_shape = p.in;
    e->memo_idx = idx;
    e->prefetch_bytes = PREFETCH_BYTES;
    for (int i = 0; i < n_outs; i++) {
        const jg_node *out = outs[i];
        if (!is_reduce[i]) {
            LLVMValueRef v = emit_value(e, out, idx);
            e->aligned_stores = vectors_aligned(e, out->dtype, dlast);
            e->streaming_stores = node_bytes_over(out, STREAM_BYTES);
            if (ptr[i])
                emit_store(e, ptr[i], out->dtype, full_at, v);
            e->aligned_stores = e->streaming_stores = false;
            continue;
        }
        jg_dtype t = out->dtype, ta = loops_acc_dtype(out->op, t);
        LLVMValueRef v = emit_value(e, out->in[0], idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v,
                                emit_splat_const(e, t, loops_identity(out->op, t)), "");
        LLVMValueRef old = emit_load(e, part[i], ta, part_at, 1);
        emit_store(e, part[i], ta, part_at,
                   loops_combine(e, out->op, ta, old, loops_convert(e, v, t, ta)));
    }
    e->memo = NULL;
    free(memo);
    e->mask = NULL;
    e->prefetch_bytes = 0;
    loop_end(e, &o);
    loop_end(e, &r);
    loop_end(e, &bl);
    emit_kernel_end(e);
    return e->fn;
}
