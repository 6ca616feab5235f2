/* Loop nests for elementwise and reduction kernels.
 *
 * Elementwise: a flat loop over all elements when every buffer the group reads has the root's
 * size (or one element); otherwise rows of the root's shape, the last dimension W lanes at a
 * time, or the last few as one run when every value read is whole or constant along them
 * (per-channel values of NCHW data: runs of H * W). Either way full vectors are unmasked and
 * only the tail is masked. The pool splits the outer range (elements, or rows).
 *
 * Reductions: when the innermost input dimension is reduced, each output element keeps a
 * vector accumulator along it and sums its lanes at the end; when it is kept, each chunk of W
 * output elements keeps one and the reduced dimensions are walked outside. Each output
 * element is computed by one thread in a fixed order, so results do not depend on threads.
 *
 * Multi-output kernels (sibling fusion) stream their space once in fixed blocks of rows, each
 * block's reductions into partial rows combined at the end: chunks of the kept innermost dim
 * (column sums), or a register accumulator per row of a reduced innermost run (channel
 * statistics). */
#include "jit/emit_loops.h"

#include <stdlib.h>

static LLVMValueRef i64c(emit_ctx *e, int64_t v) { return emit_i64(e, v); }

/* Outputs larger than this are stored non-temporally (see emit_ctx.streaming_stores). */
#define STREAM_BYTES ((int64_t)16 << 20)

static bool node_bytes_over(const jg_node *n, int64_t bytes)
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
static bool vectors_aligned(const emit_ctx *e, jg_dtype t, int64_t step)
{
    return step % e->width == 0 && (uint64_t)e->width * jg_dtype_size(t) % 64 == 0;
}

/* Splits a linear index over dims[0..n) (row-major) into components. */
static void delinearise(emit_ctx *e, LLVMValueRef lin, const int64_t *dims, int n,
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

static LLVMValueRef begin_arg(emit_ctx *e) { return LLVMGetParam(e->fn, 1); }
static LLVMValueRef end_arg(emit_ctx *e) { return LLVMGetParam(e->fn, 2); }

/* ---------------------------------------------------------------- elementwise */

static bool buffer_fits_flat(const emit_ctx *e, const jg_node *n, int64_t numel)
{
    int64_t m = jg_shape_numel(n->shape);
    (void)e;
    return m == numel || m == 1;
}

/* Flat when members are pointwise ops only and every buffer read is full size or scalar. */
static bool can_flatten(const emit_ctx *e, const jg_graph *g, const jg_node *root)
{
    int64_t numel = jg_shape_numel(root->shape);
    for (int id = 0; id <= root->id; id++) {
        if (!e->member[id])
            continue;
        const jg_node *n = g->nodes[id];
        op_kind k = op_get(n->op)->kind;
        if (k != KIND_ELEMENTWISE && k != KIND_BROADCAST)
            return false;
        for (int i = 0; i < n->n_in; i++) {
            const jg_node *in = n->in[i];
            if (!e->member[in->id] && in->op != JG_OP_FILL && !buffer_fits_flat(e, in, numel))
                return false;
            if (e->member[in->id] && !shape_eq(in->shape, n->shape) &&
                jg_shape_numel(in->shape) != 1)
                return false;
        }
    }
    return true;
}

/* Whether node n (and the members under it) can walk dims [t, nd) of shape s as one run:
 * every value read along them is either whole there (the same dims as s) or constant (all
 * ones), and no view remaps indices. The run's index is then the last component with the
 * components of [t, nd - 1) zero: contiguous buffers address it right, per-channel values
 * ignore it. */
static bool run_collapses(const emit_ctx *e, const jg_node *n, jg_shape s, int t, bool *seen)
{
    if (seen[n->id])
        return true;
    seen[n->id] = true;
    int lead = s.ndim - n->shape.ndim;
    bool whole = true, ones = true;
    for (int d = t; d < s.ndim; d++) {
        int64_t dim = d >= lead ? n->shape.dim[d - lead] : 1;
        whole &= dim == s.dim[d];
        ones &= dim == 1;
    }
    /* a multi kernel's own reduction: what it reads must collapse, not its result */
    bool reduction = e->member[n->id] &&
                     (n->op == JG_OP_SUM || n->op == JG_OP_MAX || n->op == JG_OP_MIN);
    if (!whole && !ones && !reduction)
        return false;
    if (!e->member[n->id] || n->op == JG_OP_FILL || n->op == JG_OP_RANDOM)
        return true;
    op_kind k = op_get(n->op)->kind;
    if (!reduction && k != KIND_ELEMENTWISE && k != KIND_BROADCAST)
        return false;
    for (int i = 0; i < n->n_in; i++)
        if (!run_collapses(e, n->in[i], s, t, seen))
            return false;
    return true;
}

/* The first dim of the longest trailing run of s that roots[0..n) can walk as one (at most
 * `from`: the run must lie within [from, nd)), or nd - 1. */
static int collapsed_from(const emit_ctx *e, int n_nodes, const jg_node *const *roots, int n,
                          jg_shape s, int from)
{
    /* the run's index travels in the last component: a last dim of 1 would drop it */
    bool *seen = s.dim[s.ndim - 1] > 1 ? calloc((size_t)n_nodes + 1, sizeof *seen) : NULL;
    int t = s.ndim - 1;
    while (seen && t > from) {
        bool ok = true;
        for (int d = 0; d <= n_nodes; d++)
            seen[d] = false;
        for (int i = 0; i < n && ok; i++)
            ok = run_collapses(e, roots[i], s, t - 1, seen);
        if (!ok)
            break;
        t--;
    }
    free(seen);
    return t;
}

/* Stores the root's value for the lanes at linear output offset `at`. */
static void store_root(emit_ctx *e, const jg_node *root, int out_slot, LLVMValueRef at,
                       const kidx *idx)
{
    LLVMValueRef v = emit_value(e, root, idx);
    emit_store(e, emit_slot_ptr(e, out_slot, root->dtype), root->dtype, at, v);
}

static void flat_body(emit_ctx *e, const jg_node *root, int out_slot)
{
    int64_t w = e->width;
    /* full vectors: i from begin while i + W <= end */
    LLVMValueRef last_full = LLVMBuildSub(e->b, end_arg(e), i64c(e, w - 1), "");
    loop l;
    loop_begin(e, &l, begin_arg(e), last_full, i64c(e, w), "i");
    kidx idx = { l.i, 1 };
    e->prefetch_bytes = PREFETCH_BYTES;
    store_root(e, root, out_slot, l.i, &idx);
    e->prefetch_bytes = 0;
    loop_end(e, &l);
    /* the tail: fewer than W elements left, masked */
    LLVMValueRef rest = LLVMBuildSub(e->b, end_arg(e), l.phi, "");
    LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "tail");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "done");
    LLVMBuildCondBr(e->b, LLVMBuildICmp(e->b, LLVMIntSGT, rest, i64c(e, 0), ""), tail, done);
    LLVMPositionBuilderAtEnd(e->b, tail);
    e->mask = emit_lane_mask(e, rest);
    kidx tidx = { l.phi, 1 };
    store_root(e, root, out_slot, l.phi, &tidx);
    e->mask = NULL;
    LLVMBuildBr(e->b, done);
    LLVMPositionBuilderAtEnd(e->b, done);
}

/* One row of the last dimension: full vectors, then a masked tail known at compile time. */
static void row_body(emit_ctx *e, const jg_node *root, int out_slot, kidx *idx,
                     LLVMValueRef row_offset, int64_t d)
{
    int nd = root->shape.ndim;
    int64_t w = e->width, full = d - d % w;
    if (full > 0) {
        loop l;
        loop_begin(e, &l, i64c(e, 0), i64c(e, full), i64c(e, w), "j");
        idx[nd - 1] = (kidx){ l.i, 1 };
        e->prefetch_bytes = PREFETCH_BYTES;
        store_root(e, root, out_slot, LLVMBuildAdd(e->b, row_offset, l.i, ""), idx);
        e->prefetch_bytes = 0;
        loop_end(e, &l);
    }
    if (full < d) {
        e->mask = emit_lane_mask(e, i64c(e, d - full));
        idx[nd - 1] = (kidx){ i64c(e, full), 1 };
        store_root(e, root, out_slot, LLVMBuildAdd(e->b, row_offset, i64c(e, full), ""), idx);
        e->mask = NULL;
    }
}

/* Interleaves the lanes of v[0..n) (n <= 4 vectors of W lanes): out[q] lane i is lane
 * (q*W + i) / n of v[(q*W + i) % n], so out[0..n) are n*W consecutive elements. */
static void interleave(emit_ctx *e, LLVMValueRef *v, int n, LLVMValueRef *out)
{
    LLVMTypeRef i32 = LLVMInt32TypeInContext(e->m->ctx);
    int w = e->width;
    LLVMValueRef sel[4 * 64];
    LLVMValueRef pair[2];
    for (int h = 0; h < 2; h++) { /* v[2h] ++ v[2h+1], missing vectors undefined */
        LLVMValueRef a = 2 * h < n ? v[2 * h] : LLVMGetUndef(LLVMTypeOf(v[0]));
        LLVMValueRef b = 2 * h + 1 < n ? v[2 * h + 1] : LLVMGetUndef(LLVMTypeOf(v[0]));
        for (int i = 0; i < 2 * w; i++)
            sel[i] = LLVMConstInt(i32, (unsigned)i, 0);
        pair[h] = LLVMBuildShuffleVector(e->b, a, b, LLVMConstVector(sel, (unsigned)(2 * w)), "");
    }
    LLVMValueRef all = n <= 2 ? pair[0] : NULL;
    if (!all) {
        for (int i = 0; i < 4 * w; i++)
            sel[i] = LLVMConstInt(i32, (unsigned)i, 0);
        all = LLVMBuildShuffleVector(e->b, pair[0], pair[1], LLVMConstVector(sel, (unsigned)(4 * w)), "");
    }
    for (int q = 0; q < n; q++) {
        for (int i = 0; i < w; i++) {
            int m = q * w + i;
            sel[i] = LLVMConstInt(i32, (unsigned)((m % n) * w + m / n), 0);
        }
        out[q] = LLVMBuildShuffleVector(e->b, all, LLVMGetUndef(LLVMTypeOf(all)),
                                        LLVMConstVector(sel, (unsigned)w), "");
    }
}

/* Rows whose last dim L is a few elements (<= WINDOW_MAX: pooling's window columns): the lanes
 * run along the dim before it, the L columns computed one by one and interleaved, so each
 * step stores L whole vectors instead of one L-lane sliver. */
static void interleaved_row(emit_ctx *e, const jg_node *root, int out_slot, kidx *idx,
                            LLVMValueRef row_offset, int64_t p, int64_t l)
{
    int nd = root->shape.ndim;
    int64_t w = e->width;
    LLVMValueRef ptr = emit_slot_ptr(e, out_slot, root->dtype);
    loop j;
    loop_begin(e, &j, i64c(e, 0), i64c(e, p), i64c(e, w), "j");
    LLVMValueRef left = LLVMBuildSub(e->b, i64c(e, p), j.i, "");
    e->mask = p % w ? emit_lane_mask(e, left) : NULL;
    LLVMValueRef v[WINDOW_MAX], out[WINDOW_MAX];
    idx[nd - 2] = (kidx){ j.i, 1 };
    for (int64_t c = 0; c < l; c++) {
        idx[nd - 1] = (kidx){ i64c(e, c), 0 };
        v[c] = emit_value(e, root, idx);
    }
    interleave(e, v, (int)l, out);
    LLVMValueRef at = LLVMBuildAdd(e->b, row_offset, LLVMBuildMul(e->b, j.i, i64c(e, l), ""), "");
    LLVMValueRef valid = LLVMBuildMul(e->b, left, i64c(e, l), ""); /* elements left in the row */
    for (int64_t q = 0; q < l; q++) {
        LLVMValueRef rest = LLVMBuildSub(e->b, valid, i64c(e, q * w), "");
        e->mask = p % w ? emit_lane_mask(e, rest) : NULL;
        emit_store(e, ptr, root->dtype, LLVMBuildAdd(e->b, at, i64c(e, q * w), ""), out[q]);
    }
    e->mask = NULL;
    loop_end(e, &j);
}

LLVMValueRef emit_elementwise(emit_ctx *e, jit_module *m, const jg_graph *g,
                              const jg_node *root, int out_slot, int64_t *outer,
                              int64_t *align)
{
    emit_kernel_begin(e, m);
    jg_shape s = root->shape;
    if (s.ndim == 0)
        s = (jg_shape){ .ndim = 1, .dim = { 1 } };
    e->flat = root->shape.ndim <= 1 || can_flatten(e, g, root);
    e->streaming_stores = node_bytes_over(root, STREAM_BYTES);
    if (e->flat) {
        *outer = jg_shape_numel(s);
        *align = e->width; /* each thread's part starts at a multiple of the width */
        e->aligned_stores = vectors_aligned(e, root->dtype, e->width);
        flat_body(e, root, out_slot);
    } else {
        /* rows of the trailing dims that can be walked as one (per-channel operands of
         * NCHW data: rows of H * W rather than W) */
        int nd = s.ndim, t = collapsed_from(e, g->n_nodes, &root, 1, s, 1);
        int64_t len = 1;
        for (int d = t; d < nd; d++)
            len *= s.dim[d];
        /* a few columns after a longer dim: rows of both, interleaved (see interleaved_row) */
        bool columns = t == nd - 1 && nd >= 2 && s.dim[nd - 1] <= WINDOW_MAX &&
                       s.dim[nd - 2] * 4 >= e->width;
        if (columns)
            t = nd - 2, len *= s.dim[nd - 2];
        *outer = jg_shape_numel(s) / len;
        *align = 1;
        e->aligned_stores = vectors_aligned(e, root->dtype, len);
        loop r;
        loop_begin(e, &r, begin_arg(e), end_arg(e), i64c(e, 1), "row");
        LLVMValueRef comps[JG_MAX_DIMS];
        delinearise(e, r.i, s.dim, t, comps);
        kidx idx[JG_MAX_DIMS];
        for (int d = 0; d < nd - 1; d++)
            idx[d] = (kidx){ d < t ? comps[d] : i64c(e, 0), 0 };
        LLVMValueRef row_offset = LLVMBuildMul(e->b, r.i, i64c(e, len), "");
        if (columns)
            interleaved_row(e, root, out_slot, idx, row_offset, s.dim[nd - 2], s.dim[nd - 1]);
        else
            row_body(e, root, out_slot, idx, row_offset, len);
        loop_end(e, &r);
    }
    e->flat = e->aligned_stores = e->streaming_stores = false;
    emit_kernel_end(e);
    return e->fn;
}

/* ---------------------------------------------------------------- reductions */

static double identity_of(jg_op op, jg_dtype t)
{
    if (op == JG_OP_SUM)
        return 0;
    double big = t == JG_I32 ? 2147483647.0 : INFINITY;
    return op == JG_OP_MAX ? -big - (t == JG_I32) : big;
}

static LLVMValueRef combine(emit_ctx *e, jg_op op, jg_dtype t, LLVMValueRef a, LLVMValueRef b)
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
static LLVMValueRef horizontal(emit_ctx *e, jg_op op, jg_dtype t, LLVMValueRef v, int width)
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
        v = combine(e, op, t, lo, hi);
        width = half;
    }
    return LLVMBuildExtractElement(e->b, v, LLVMConstInt(i32, 0, 0), "");
}

typedef struct reduce_plan {
    const jg_node *root, *x;
    jg_shape in;
    bool reduced[JG_MAX_DIMS];
    int kept[JG_MAX_DIMS], n_kept;   /* kept input dims, in order */
    int red[JG_MAX_DIMS], n_red;     /* reduced input dims, in order */
    bool lanes_kept;                 /* the lanes run along a kept dim: every reduced dim is
                                        walked one element at a time */
} reduce_plan;

/* Accumulates x over the reduced dims red[from..n_red) into acc (an alloca), idx holding the
 * other components; the innermost input dim, if among them, goes W lanes at a time. */
static void accumulate(emit_ctx *e, const reduce_plan *p, LLVMValueRef acc, kidx *idx, int from)
{
    jg_dtype t = p->x->dtype;
    LLVMTypeRef vt = emit_vector_type(e, t);
    int nd = p->in.ndim;
    if (from == p->n_red) {
        LLVMValueRef v = emit_value(e, p->x, idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v, emit_splat_const(e, t, identity_of(p->root->op, t)), "");
        LLVMValueRef old = LLVMBuildLoad2(e->b, vt, acc, "");
        LLVMBuildStore(e->b, combine(e, p->root->op, t, old, v), acc);
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

/* Reductions whose innermost input dim is kept: the output, in chunks of W elements along
 * the input's dim `dim` (the innermost, or the last kept dim of a windowed reduction). */
typedef struct chunk_plan {
    const reduce_plan *p;
    LLVMValueRef out, identity;
    int64_t chunks, dlast;
    const int64_t *kept_dims; /* the kept dims but `dim` */
    int dim;
} chunk_plan;

/* For outer index o: fills idx's kept components, sets e->mask for a partial chunk, and
 * returns the chunk's offset in the output. */
static LLVMValueRef chunk_at(emit_ctx *e, const chunk_plan *c, LLVMValueRef o, kidx *idx)
{
    const reduce_plan *p = c->p;
    LLVMValueRef chunk = LLVMBuildSRem(e->b, o, i64c(e, c->chunks), "");
    LLVMValueRef row = LLVMBuildSDiv(e->b, o, i64c(e, c->chunks), "");
    LLVMValueRef comps[JG_MAX_DIMS];
    delinearise(e, row, c->kept_dims, p->n_kept - 1, comps);
    for (int i = 0; i < p->n_kept - 1; i++)
        idx[p->kept[i]] = (kidx){ comps[i], 0 };
    LLVMValueRef j = LLVMBuildMul(e->b, chunk, i64c(e, e->width), "");
    idx[c->dim] = (kidx){ j, 1 };
    e->mask = c->dlast % e->width ? emit_lane_mask(e, LLVMBuildSub(e->b, i64c(e, c->dlast), j, ""))
                                  : NULL;
    return LLVMBuildAdd(e->b, LLVMBuildMul(e->b, row, i64c(e, c->dlast), ""), j, "");
}

/* Loops over the reduced dims red[from..), then over this thread's chunks. */
static void accumulate_chunks(emit_ctx *e, const chunk_plan *c, kidx *idx, int from)
{
    const reduce_plan *p = c->p;
    if (from == p->n_red) {
        jg_dtype t = p->x->dtype;
        loop o;
        loop_begin(e, &o, begin_arg(e), end_arg(e), i64c(e, 1), "o");
        LLVMValueRef at = chunk_at(e, c, o.i, idx);
        LLVMValueRef v = emit_value(e, p->x, idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v, c->identity, "");
        LLVMValueRef old = emit_load(e, c->out, t, at, 1);
        emit_store(e, c->out, p->root->dtype, at, combine(e, p->root->op, t, old, v));
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
                         int64_t *outer, int64_t *align)
{
    reduce_plan p = { .root = root, .x = root->in[0], .in = root->in[0]->shape };
    for (int d = 0; d < p.in.ndim; d++) {
        p.reduced[d] = (root->attr.axes >> d) & 1u;
        if (p.reduced[d])
            p.red[p.n_red++] = d;
        else
            p.kept[p.n_kept++] = d;
    }
    jg_dtype t = p.x->dtype;
    emit_kernel_begin(e, m);
    LLVMTypeRef vt = emit_vector_type(e, t);
    LLVMBasicBlockRef entry = LLVMGetInsertBlock(e->b);
    LLVMValueRef acc = LLVMBuildAlloca(e->b, vt, "acc");
    (void)entry;
    LLVMValueRef out = emit_slot_ptr(e, out_slot, root->dtype);
    LLVMValueRef identity = emit_splat_const(e, t, identity_of(root->op, t));
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
        LLVMValueRef at = chunk_at(e, &c, o.i, idx);
        LLVMBuildStore(e->b, identity, acc);
        accumulate(e, &p, acc, idx, 0);
        emit_store(e, out, root->dtype, at, LLVMBuildLoad2(e->b, vt, acc, ""));
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
        delinearise(e, o.i, kept_dims, p.n_kept, comps);
        for (int i = 0; i < p.n_kept; i++)
            idx[p.kept[i]] = (kidx){ comps[i], 0 };
        LLVMBuildStore(e->b, identity, acc);
        accumulate(e, &p, acc, idx, 0);
        LLVMValueRef total = horizontal(e, root->op, t, LLVMBuildLoad2(e->b, vt, acc, ""), e->width);
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
                         .kept_dims = kept_dims, .identity = identity, .dim = nd - 1 };
        loop o;
        loop_begin(e, &o, begin_arg(e), end_arg(e), i64c(e, 1), "o");
        emit_store(e, out, root->dtype, chunk_at(e, &c, o.i, idx), identity);
        e->mask = NULL;
        loop_end(e, &o);
        accumulate_chunks(e, &c, idx, 0);
    }
    emit_kernel_end(e);
    return e->fn;
}

/* ---------------------------------------------------------------- multi-output kernels */

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
        jg_dtype t = outs[i]->dtype;
        for (int tail = 0; tail < 2; tail++) {
            if ((tail ? kept - full : full) == 0)
                continue;
            loop c;
            if (!tail)
                loop_begin(e, &c, i64c(e, 0), i64c(e, full), i64c(e, w), "c");
            LLVMValueRef at = tail ? i64c(e, full) : c.i;
            e->mask = tail ? emit_lane_mask(e, i64c(e, kept - full)) : NULL;
            LLVMValueRef acc = emit_load(e, part[i], t, at, 1);
            for (int64_t b = 1; b < blocks; b++)
                acc = combine(e, outs[i]->op, t, acc,
                              emit_load(e, part[i], t, LLVMBuildAdd(e->b, at, i64c(e, b * kept), ""), 1));
            emit_store(e, ptr[i], t, at, acc);
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
    int t; /* dims [t, nd) walk as one run (see collapsed_from) */
} run_plan;

/* Every output at the point idx: stored, or added into its accumulator. */
static void run_point(emit_ctx *e, const run_plan *r, const kidx *idx)
{
    const reduce_plan *p = r->p;
    LLVMValueRef at = offset_in(e, p->in, idx);
    LLVMValueRef *memo = calloc((size_t)r->n_nodes + 1, sizeof *memo);
    e->memo = memo; /* NULL when out of memory: shared values are computed again */
    e->memo_shape = p->in;
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
        LLVMValueRef v = emit_value(e, out->in[0], idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v, emit_splat_const(e, t, identity_of(out->op, t)), "");
        LLVMValueRef old = LLVMBuildLoad2(e->b, emit_vector_type(e, t), r->acc[i], "");
        LLVMBuildStore(e->b, combine(e, out->op, t, old, v), r->acc[i]);
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
    r->t = collapsed_from(e, r->n_nodes, r->outs, r->n_outs, p->in, t0);
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
        jg_dtype t = r->outs[i]->dtype;
        LLVMValueRef ptr = LLVMBuildGEP2(e->b, emit_scalar_type(e, t), part[i], &at, 1, "");
        LLVMValueRef id = emit_splat_const(e, t, identity_of(r->outs[i]->op, t));
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
    delinearise(e, row.i, p->in.dim, t0, comps);
    kidx idx[JG_MAX_DIMS];
    LLVMValueRef ko = i64c(e, 0); /* the row's output element */
    for (int d = 0; d < t0; d++) {
        idx[d] = (kidx){ comps[d], 0 };
        if (!p->reduced[d])
            ko = LLVMBuildAdd(e->b, ko, LLVMBuildMul(e->b, comps[d], i64c(e, kstride[d]), ""), "");
    }
    for (int i = 0; i < r->n_outs; i++)
        if (r->is_reduce[i])
            LLVMBuildStore(e->b, emit_splat_const(e, r->outs[i]->dtype,
                                                  identity_of(r->outs[i]->op, r->outs[i]->dtype)),
                           r->acc[i]);
    run_walk(e, r, idx, t0);
    LLVMValueRef pat = LLVMBuildAdd(e->b, base, ko, "");
    for (int i = 0; i < r->n_outs; i++) {
        if (!r->is_reduce[i])
            continue;
        const jg_node *out = r->outs[i];
        jg_dtype t = out->dtype;
        LLVMTypeRef st = emit_scalar_type(e, t);
        LLVMValueRef total = horizontal(e, out->op, t,
                                        LLVMBuildLoad2(e->b, emit_vector_type(e, t), r->acc[i], ""),
                                        e->width);
        LLVMValueRef ptr = LLVMBuildGEP2(e->b, st, part[i], &pat, 1, "");
        LLVMBuildStore(e->b, combine(e, out->op, t, LLVMBuildLoad2(e->b, st, ptr, ""), total), ptr);
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
        acc[i] = LLVMBuildAlloca(e->b, emit_vector_type(e, outs[i]->dtype), "acc");
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
        part[i] = is_reduce[i] ? emit_slot_ptr(e, partial_slots[i], outs[i]->dtype) : NULL;
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
    LLVMValueRef at = LLVMBuildAdd(e->b, base, chunk_at(e, &c, o.i, idx), "");
    for (int i = 0; i < n_outs; i++)
        if (is_reduce[i])
            emit_store(e, part[i], outs[i]->dtype, at,
                       emit_splat_const(e, outs[i]->dtype, identity_of(outs[i]->op, outs[i]->dtype)));
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
    delinearise(e, r.i, red_dims, p.n_red, comps);
    for (int k = 0; k < p.n_red; k++)
        idx[p.red[k]] = (kidx){ comps[k], 0 };
    loop_begin(e, &o, i64c(e, 0), i64c(e, kept / dlast * chunks), i64c(e, 1), "o");
    LLVMValueRef out_at = chunk_at(e, &c, o.i, idx);
    LLVMValueRef part_at = LLVMBuildAdd(e->b, base, out_at, "");
    LLVMValueRef full_at = offset_in(e, p.in, idx);
    LLVMValueRef *memo = calloc((size_t)n_nodes + 1, sizeof *memo);
    e->memo = memo;
    e->memo_shape = p.in;
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
        jg_dtype t = out->dtype;
        LLVMValueRef v = emit_value(e, out->in[0], idx);
        if (e->mask)
            v = LLVMBuildSelect(e->b, e->mask, v,
                                emit_splat_const(e, t, identity_of(out->op, t)), "");
        LLVMValueRef old = emit_load(e, part[i], t, part_at, 1);
        emit_store(e, part[i], t, part_at, combine(e, out->op, t, old, v));
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
