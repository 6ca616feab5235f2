/* A GEMM's gathered B operand (gemm_operand in gemm.h: an im2col that is never stored),
 * staged batch block by batch block into the kernel's scratch: element gathers, or for a
 * constant index table that splits into runs of consecutive indices (index_runs.h, a
 * stride-1 convolution's) masked vector copies, straight-line for whole rows. */
#include "jit/gemm_ir.h"
#include "jit/loops.h"

#include <stdlib.h>

/* A gathered B whose indices may reach past its rows, into an elided pad (unknown indices
 * may). */
static bool padded(const gemm_operand *o)
{
    if (!o->ids_val)
        return true;
    for (int64_t i = 0; i < o->nidx; i++)
        if (o->ids_val[i] >= (double)o->row)
            return true;
    return false;
}

/* One row of a gathered B, element by element: gb[base + i] = from[ids[i]] (or the pad)
 * for i in [i0, i1). */
static void gather_row(gen *g, LLVMValueRef from, LLVMValueRef base, LLVMValueRef i0,
                       LLVMValueRef i1)
{
    emit_ctx *e = g->e;
    LLVMBuilderRef b = g->b;
    int w = g->p.w;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->m->ctx), vi32 = LLVMVectorType(i32, (unsigned)w);
    LLVMTypeRef vi64 = LLVMVectorType(g->i64, (unsigned)w);
    LLVMValueRef ids = emit_slot_ptr(e, g->d->b.ids_slot, JG_I32);
    loop li;
    loop_begin(e, &li, i0, i1, c64(g, w), "gi");
    LLVMValueRef left = LLVMBuildSub(b, i1, li.i, "");
    LLVMValueRef all = LLVMBuildICmp(b, LLVMIntSGE, left, c64(g, w), "");
    LLVMValueRef mask = LLVMBuildSelect(b, all, const_mask(g, w, w), emit_lane_mask(e, left), "");
    LLVMValueRef ip = LLVMBuildBitCast(b, LLVMBuildGEP2(b, i32, ids, &li.i, 1, ""),
                                       LLVMPointerType(vi32, 0), "");
    LLVMTypeRef ovl[2] = { vi32, LLVMPointerType(vi32, 0) };
    LLVMValueRef largs[4] = { ip, c32(g, 4), mask, LLVMConstNull(vi32) };
    LLVMValueRef idx = LLVMBuildSExt(b, emit_intrinsic(e, "llvm.masked.load", ovl, 2, largs, 4),
                                     vi64, "");
    LLVMValueRef ptrs = LLVMBuildGEP2(b, g->et, from, &idx, 1, "");
    LLVMTypeRef ovg[2] = { g->vt, LLVMTypeOf(ptrs) };
    LLVMValueRef read = mask, pad = LLVMConstNull(g->vt);
    if (padded(&g->d->b)) { /* indices into the elided pad read its value */
        LLVMValueRef v = emit_splat(e, c64(g, g->d->b.row));
        read = LLVMBuildAnd(b, mask, LLVMBuildICmp(b, LLVMIntSLT, idx, v, ""), "");
        pad = emit_splat_const(e, g->d->dtype, g->d->b.pad);
    }
    LLVMValueRef gargs[4] = { ptrs, c32(g, (int)g->esize), read, pad };
    LLVMValueRef v = emit_intrinsic(e, "llvm.masked.gather", ovg, 2, gargs, 4);
    LLVMTypeRef ovs[2] = { g->vt, LLVMPointerType(g->vt, 0) };
    LLVMValueRef sargs[4] = { v, as_vec_ptr(g, elem_ptr(g, g->gb, add(g, base, li.i)), g->vt),
                              c32(g, (int)g->esize), mask };
    emit_intrinsic(e, "llvm.masked.store", ovs, 2, sargs, 4);
    loop_end(e, &li);
}

/* The value of a row's fill positions (index_runs.h) as a vector: the elided pad's value,
 * or the row's element at the fill index. */
static LLVMValueRef row_fill(gen *g, LLVMValueRef from)
{
    if (g->fill >= g->d->b.row)
        return emit_splat_const(g->e, g->d->dtype, g->d->b.pad);
    if (g->fill < 0)
        return LLVMConstNull(g->vt);
    return emit_splat(g->e, LLVMBuildLoad2(g->b, g->et, elem_ptr(g, from, c64(g, g->fill)), ""));
}

/* Element i of the i32 table t, as an i64. */
static LLVMValueRef table_at(gen *g, LLVMValueRef t, LLVMValueRef i)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->e->m->ctx);
    LLVMValueRef v = LLVMBuildLoad2(g->b, i32, LLVMBuildGEP2(g->b, i32, t, &i, 1, ""), "");
    return LLVMBuildSExt(g->b, v, g->i64, "");
}

/* One row of a gathered B by its index runs: each run that meets [i0, i1) is one masked load
 * of consecutive elements (its fill lanes take the row's fill element) and one masked store
 * of the positions in [i0, i1). */
static void copy_runs(gen *g, LLVMValueRef from, LLVMValueRef base, LLVMValueRef i0,
                      LLVMValueRef i1)
{
    emit_ctx *e = g->e;
    LLVMBuilderRef b = g->b;
    int w = g->p.w;
    LLVMContextRef cx = e->m->ctx;
    LLVMTypeRef i32 = LLVMInt32TypeInContext(cx);
    LLVMTypeRef iw = LLVMIntTypeInContext(cx, (unsigned)w);
    LLVMTypeRef vi1 = LLVMVectorType(LLVMInt1TypeInContext(cx), (unsigned)w);
    LLVMValueRef fill = row_fill(g, from);
    /* the runs from the one holding i0 to the one after the one holding the start of the
     * w positions after i1 - 1: a superset, the store masks drop what is outside */
    LLVMValueRef s0 = table_at(g, g->run_at, LLVMBuildUDiv(b, i0, c64(g, w), ""));
    LLVMValueRef last = LLVMBuildUDiv(b, LLVMBuildSub(b, i1, c64(g, 1), ""), c64(g, w), "");
    LLVMValueRef s1 = add(g, table_at(g, g->run_at, add(g, last, c64(g, 1))), c64(g, 1));
    LLVMValueRef lane_c[MAX_LANES];
    for (int l = 0; l < w; l++)
        lane_c[l] = LLVMConstInt(i32, (unsigned long long)l, 0);
    LLVMValueRef lane = LLVMConstVector(lane_c, (unsigned)w);
    LLVMValueRef lo = emit_splat(e, LLVMBuildTrunc(b, i0, i32, ""));
    LLVMValueRef hi = emit_splat(e, LLVMBuildTrunc(b, i1, i32, ""));
    loop ls;
    loop_begin(e, &ls, s0, s1, c64(g, 1), "run");
    LLVMValueRef at = mul(g, ls.i, 4);
    LLVMValueRef dst = table_at(g, g->runs, at);
    LLVMValueRef rsrc = table_at(g, g->runs, add(g, at, c64(g, 1)));
    LLVMValueRef bits = table_at(g, g->runs, add(g, at, c64(g, 2)));
    LLVMValueRef len = table_at(g, g->runs, add(g, at, c64(g, 3)));
    LLVMValueRef pos = LLVMBuildAdd(
        b, emit_splat(e, LLVMBuildTrunc(b, dst, i32, "")), lane, "");
    LLVMValueRef in_run = LLVMBuildICmp(
        b, LLVMIntSLT, lane, emit_splat(e, LLVMBuildTrunc(b, len, i32, "")), "");
    LLVMValueRef in_range = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntSGE, pos, lo, ""),
                                         LLVMBuildICmp(b, LLVMIntSLT, pos, hi, ""), "");
    LLVMValueRef store = LLVMBuildAnd(b, in_run, in_range, "");
    LLVMValueRef read = LLVMBuildAnd(
        b, store, LLVMBuildBitCast(b, LLVMBuildTrunc(b, bits, iw, ""), vi1, ""), "");
    LLVMTypeRef ov[2] = { g->vt, LLVMPointerType(g->vt, 0) };
    LLVMValueRef largs[4] = { as_vec_ptr(g, elem_ptr(g, from, rsrc), g->vt),
                              c32(g, (int)g->esize), read, fill };
    LLVMValueRef v = emit_intrinsic(e, "llvm.masked.load", ov, 2, largs, 4);
    LLVMValueRef sargs[4] = { v, as_vec_ptr(g, elem_ptr(g, g->gb, add(g, base, dst)), g->vt),
                              c32(g, (int)g->esize), store };
    emit_intrinsic(e, "llvm.masked.store", ov, 2, sargs, 4);
    loop_end(e, &ls);
}

/* At most this many runs are copied by straight-line code: the whole block's rows, each run
 * a constant-offset masked load and store (a 3x3 conv on 14x14: 126 runs), not a loop that
 * reads the table and builds masks (~2x the instructions). More costs compile time: the
 * CNN's 28x28 layer (504 runs) unrolled made its cold compile 440 -> 650 ms. */
enum { UNROLL_RUNS = 192 };

/* One whole row of a gathered B by its runs, unrolled (see UNROLL_RUNS). */
static void copy_runs_unrolled(gen *g, LLVMValueRef from, LLVMValueRef base)
{
    emit_ctx *e = g->e;
    int w = g->p.w;
    LLVMValueRef fill = row_fill(g, from);
    LLVMTypeRef i1 = LLVMInt1TypeInContext(e->m->ctx);
    LLVMTypeRef ov[2] = { g->vt, LLVMPointerType(g->vt, 0) };
    for (int64_t i = 0; i < g->n_runs; i++) {
        const index_run *r = &g->run_list[i];
        LLVMValueRef store_bits[MAX_LANES], read_bits[MAX_LANES];
        for (int l = 0; l < w; l++) {
            store_bits[l] = LLVMConstInt(i1, l < r->len, 0);
            read_bits[l] = LLVMConstInt(i1, l < r->len && (r->lanes >> l & 1), 0);
        }
        LLVMValueRef dst = as_vec_ptr(g, elem_ptr(g, g->gb, add(g, base, c64(g, r->dst))), g->vt);
        LLVMValueRef v = fill;
        if (r->lanes) {
            LLVMValueRef largs[4] = { as_vec_ptr(g, elem_ptr(g, from, c64(g, r->src)), g->vt),
                                      c32(g, (int)g->esize),
                                      LLVMConstVector(read_bits, (unsigned)w), fill };
            v = emit_intrinsic(e, "llvm.masked.load", ov, 2, largs, 4);
        }
        LLVMValueRef sargs[4] = { v, dst, c32(g, (int)g->esize),
                                  LLVMConstVector(store_bits, (unsigned)w) };
        emit_intrinsic(e, "llvm.masked.store", ov, 2, sargs, 4);
    }
}

/* A gathered B (see gemm_operand): makes elements [lo, hi) of g->gb hold those of the batch
 * block at virtual offset voff, gathering them unless they are already there. A tile whose
 * columns are B's outer stride (a transposed view: a weight gradient's im2col) needs only its
 * own rows of the block, so each element is gathered once per row block; otherwise the whole
 * block, once per batch (its tiles come one after another; with summed batches, once per
 * tile and summed index). */
void gemm_gather_block(gen *g, LLVMValueRef voff, LLVMValueRef lo, LLVMValueRef hi,
                       bool whole_rows)
{
    emit_ctx *e = g->e;
    LLVMBuilderRef b = g->b;
    const gemm_operand *o = &g->d->b;
    LLVMValueRef same = LLVMBuildAnd(
        b, LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildLoad2(b, g->i64, g->gb_at, ""), voff, ""),
        LLVMBuildICmp(b, LLVMIntEQ, LLVMBuildLoad2(b, g->i64, g->gb_lo, ""), lo, ""), "");
    LLVMBasicBlockRef cont = if_begin(g, LLVMBuildNot(b, same, ""));
    LLVMBuildStore(b, voff, g->gb_at);
    LLVMBuildStore(b, lo, g->gb_lo);
    LLVMValueRef src = emit_slot_ptr(e, o->slot, g->d->dtype);
    LLVMValueRef r0 = LLVMBuildUDiv(b, voff, c64(g, o->nidx), "");
    LLVMValueRef nidx = c64(g, o->nidx);
    loop lr;
    LLVMValueRef r_end = LLVMBuildUDiv(b, add(g, hi, c64(g, o->nidx - 1)), nidx, "");
    loop_begin(e, &lr, LLVMBuildUDiv(b, lo, nidx, ""), r_end, c64(g, 1), "grow");
    LLVMValueRef base = mul(g, lr.i, o->nidx);
    /* this row's part of [lo, hi): [i0, i1) */
    LLVMValueRef i0 = LLVMBuildSub(b, lo, base, "");
    i0 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, i0, c64(g, 0), ""), c64(g, 0), i0, "");
    LLVMValueRef i1 = LLVMBuildSub(b, hi, base, "");
    i1 = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, i1, nidx, ""), nidx, i1, "");
    LLVMValueRef from = elem_ptr(g, src, mul(g, add(g, r0, lr.i), o->row));
    if (g->run_list && whole_rows) /* every row whole: [lo, hi) is the whole block */
        copy_runs_unrolled(g, from, base);
    else if (g->runs)
        copy_runs(g, from, base, i0, i1);
    else
        gather_row(g, from, base, i0, i1);
    loop_end(e, &lr);
    if_end(g, cont);
}

/* A constant i32 array as a private global of the kernel's module (NULL: no memory). */
static LLVMValueRef const_table(gen *g, const int32_t *v, int64_t n, const char *name)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->e->m->ctx);
    LLVMValueRef *c = malloc((size_t)n * sizeof *c);
    if (!c)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        c[i] = LLVMConstInt(i32, (unsigned long long)(uint32_t)v[i], 0);
    LLVMValueRef t = LLVMAddGlobal(g->e->m->mod, LLVMArrayType(i32, (unsigned)n), name);
    LLVMSetInitializer(t, LLVMConstArray(i32, c, (unsigned)n));
    LLVMSetGlobalConstant(t, 1);
    LLVMSetLinkage(t, LLVMPrivateLinkage);
    LLVMSetUnnamedAddress(t, LLVMGlobalUnnamedAddr);
    free(c);
    return LLVMBuildBitCast(g->b, t, LLVMPointerType(i32, 0), "");
}

/* A gathered B whose index table splits into runs of 4 or more positions on average (2 for
 * vectors of 4 lanes or fewer; a stride-1 convolution's) is copied run by run (copy_runs):
 * the runs and, per w positions, the run holding the first, as constant tables of the kernel.
 * Else g->runs stays NULL. */
void gemm_runs_tables(gen *g)
{
    const gemm_operand *o = &g->d->b;
    index_run *r;
    int w = g->p.w;
    g->n_runs = index_runs(o->ids_val, o->nidx, w, w >= 8 ? 4 : 2, &r, &g->fill);
    if (g->n_runs == 0)
        return;
    for (int64_t i = 0; i < g->n_runs; i++) /* only the fill may index the elided pad */
        if (r[i].lanes && (int64_t)r[i].src + 31 - __builtin_clz(r[i].lanes) >= o->row) {
            free(r);
            return;
        }
    int64_t n_chunks = cdiv(o->nidx, w);
    int32_t *at = malloc((size_t)(n_chunks + 1) * sizeof *at);
    int32_t *flat = malloc((size_t)g->n_runs * 4 * sizeof *flat);
    if (at && flat) {
        for (int64_t i = 0, c = 0; i < g->n_runs; i++) {
            for (; c < n_chunks && c * w < (int64_t)r[i].dst + r[i].len; c++)
                at[c] = (int32_t)i;
            flat[4 * i] = r[i].dst;
            flat[4 * i + 1] = r[i].src;
            flat[4 * i + 2] = (int32_t)r[i].lanes;
            flat[4 * i + 3] = r[i].len;
        }
        at[n_chunks] = (int32_t)(g->n_runs - 1);
        g->runs = const_table(g, flat, 4 * g->n_runs, "im2col_runs");
        g->run_at = const_table(g, at, n_chunks + 1, "im2col_run_at");
    }
    if (!g->runs || !g->run_at)
        g->runs = NULL;
    free(at);
    free(flat);
    if (g->runs && g->n_runs <= UNROLL_RUNS)
        g->run_list = r; /* freed by gemm_emit */
    else
        free(r);
}
