/* Loop nests of elementwise kernels: a flat loop over all elements when every buffer the
 * group reads has the root's size (or one element); otherwise rows of the root's shape, the
 * last dimension W lanes at a time, or the last few as one run when every value read is whole
 * or constant along them (per-channel values of NCHW data: runs of H * W). Either way full
 * vectors are unmasked and only the tail is masked. The pool splits the outer range
 * (elements, or rows). A pointwise multi-output kernel (sibling groups of one shape) is the
 * same loop nest storing several roots at each point. */
#include "jit/emit_loops.h"
#include "jit/loops.h"

#include <stdlib.h>

static bool buffer_fits_flat(const emit_ctx *e, const jg_node *n, int64_t numel)
{
    int64_t m = jg_shape_numel(n->shape);
    (void)e;
    return m == numel || m == 1;
}

/* Flat when members are pointwise ops only and every buffer read is full size or scalar;
 * members come before the last root. */
static bool can_flatten(const emit_ctx *e, const jg_graph *g, const jg_node *root, int last)
{
    int64_t numel = jg_shape_numel(root->shape);
    for (int id = 0; id <= last; id++) {
        if (!e->member[id])
            continue;
        const jg_node *n = g->nodes[id];
        if (!op_is_pointwise(n))
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
    if (!reduction && !op_is_pointwise(n))
        return false;
    for (int i = 0; i < n->n_in; i++)
        if (!run_collapses(e, n->in[i], s, t, seen))
            return false;
    return true;
}

/* The first dim of the longest trailing run of s that roots[0..n) can walk as one (at most
 * `from`: the run must lie within [from, nd)), or nd - 1. */
int loops_collapsed_from(const emit_ctx *e, int n_nodes, const jg_node *const *roots, int n,
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

/* The roots a kernel stores: one, or the parts of a pointwise multi-output kernel (slot < 0:
 * a part only the others read). */
typedef struct roots {
    const jg_node *const *node;
    const int *slot;
    int n, n_nodes;
} roots;

/* Stores the roots' values for the lanes at linear output offset `at`. All values are
 * computed before the first store, so a root written in place over a buffer another root
 * reads at the same point (an optimiser's state) is read first; the memo computes what the
 * roots share once. */
static void store_roots(emit_ctx *e, const roots *r, LLVMValueRef at, const kidx *idx)
{
    LLVMValueRef v[64], *memo = NULL;
    if (r->n > 1) {
        memo = calloc((size_t)r->n_nodes + 1, sizeof *memo);
        e->memo = memo; /* NULL when out of memory: shared values are computed again */
        e->memo_shape = r->node[0]->shape;
        e->memo_idx = idx;
    }
    for (int i = 0; i < r->n; i++)
        v[i] = emit_value(e, r->node[i], idx);
    e->memo = NULL;
    free(memo);
    bool aligned = e->aligned_stores;
    for (int i = 0; i < r->n; i++) {
        if (r->slot[i] < 0)
            continue;
        e->streaming_stores = node_bytes_over(r->node[i], STREAM_BYTES);
        e->aligned_stores = aligned && (r->n == 1 || r->node[i]->dtype == r->node[0]->dtype);
        jg_dtype t = r->node[i]->dtype;
        emit_store(e, emit_slot_ptr(e, r->slot[i], t), t, at, v[i]);
    }
    e->aligned_stores = aligned;
}

static void flat_body(emit_ctx *e, const roots *r)
{
    int64_t w = e->width;
    /* full vectors: i from begin while i + W <= end */
    LLVMValueRef last_full = LLVMBuildSub(e->b, end_arg(e), i64c(e, w - 1), "");
    loop l;
    loop_begin(e, &l, begin_arg(e), last_full, i64c(e, w), "i");
    kidx idx = { l.i, 1 };
    e->prefetch_bytes = PREFETCH_BYTES;
    store_roots(e, r, l.i, &idx);
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
    store_roots(e, r, l.phi, &tidx);
    e->mask = NULL;
    LLVMBuildBr(e->b, done);
    LLVMPositionBuilderAtEnd(e->b, done);
}

/* One row of the last dimension: full vectors, then a masked tail known at compile time. */
static void row_body(emit_ctx *e, const roots *r, kidx *idx, LLVMValueRef row_offset,
                     int64_t d)
{
    int nd = r->node[0]->shape.ndim;
    int64_t w = e->width, full = d - d % w;
    if (full > 0) {
        loop l;
        loop_begin(e, &l, i64c(e, 0), i64c(e, full), i64c(e, w), "j");
        idx[nd - 1] = (kidx){ l.i, 1 };
        e->prefetch_bytes = PREFETCH_BYTES;
        store_roots(e, r, LLVMBuildAdd(e->b, row_offset, l.i, ""), idx);
        e->prefetch_bytes = 0;
        loop_end(e, &l);
    }
    if (full < d) {
        e->mask = emit_lane_mask(e, i64c(e, d - full));
        idx[nd - 1] = (kidx){ i64c(e, full), 1 };
        store_roots(e, r, LLVMBuildAdd(e->b, row_offset, i64c(e, full), ""), idx);
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
                              const jg_node *const *node, const int *slot, int n,
                              int64_t *outer, int64_t *align)
{
    if (n < 1 || n > 64)
        return NULL;
    roots r = { node, slot, n, g->n_nodes };
    const jg_node *root = node[0]; /* every root has its shape */
    emit_kernel_begin(e, m);
    jg_shape s = root->shape;
    if (s.ndim == 0)
        s = (jg_shape){ .ndim = 1, .dim = { 1 } };
    int last = 0;
    for (int i = 0; i < n; i++)
        last = node[i]->id > last ? node[i]->id : last;
    e->flat = root->shape.ndim <= 1 || can_flatten(e, g, root, last);
    if (e->flat) {
        *outer = jg_shape_numel(s);
        *align = e->width; /* each thread's part starts at a multiple of the width */
        e->aligned_stores = vectors_aligned(e, root->dtype, e->width);
        flat_body(e, &r);
    } else {
        /* rows of the trailing dims that can be walked as one (per-channel operands of
         * NCHW data: rows of H * W rather than W) */
        int nd = s.ndim, t = loops_collapsed_from(e, g->n_nodes, node, n, s, 1);
        int64_t len = 1;
        for (int d = t; d < nd; d++)
            len *= s.dim[d];
        /* a few columns after a longer dim: rows of both, interleaved (see interleaved_row) */
        bool columns = n == 1 && t == nd - 1 && nd >= 2 && s.dim[nd - 1] <= WINDOW_MAX &&
                       s.dim[nd - 2] * 4 >= e->width;
        if (columns)
            t = nd - 2, len *= s.dim[nd - 2];
        *outer = jg_shape_numel(s) / len;
        *align = 1;
        e->aligned_stores = vectors_aligned(e, root->dtype, len);
        loop l;
        loop_begin(e, &l, begin_arg(e), end_arg(e), i64c(e, 1), "row");
        LLVMValueRef comps[JG_MAX_DIMS];
        loops_delinearise(e, l.i, s.dim, t, comps);
        kidx idx[JG_MAX_DIMS];
        for (int d = 0; d < nd - 1; d++)
            idx[d] = (kidx){ d < t ? comps[d] : i64c(e, 0), 0 };
        LLVMValueRef row_offset = LLVMBuildMul(e->b, l.i, i64c(e, len), "");
        if (columns) {
            e->streaming_stores = node_bytes_over(root, STREAM_BYTES);
            interleaved_row(e, root, slot[0], idx, row_offset, s.dim[nd - 2], s.dim[nd - 1]);
        } else {
            row_body(e, &r, idx, row_offset, len);
        }
        loop_end(e, &l);
    }
    e->flat = e->aligned_stores = e->streaming_stores = false;
    emit_kernel_end(e);
    return e->fn;
}
