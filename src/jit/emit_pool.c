/* Kernels of max_pool2d and max_pool2d_grad (ops/pool.c has their semantics and reference
 * kernels). [0, outer) counts the N*C planes; per output pixel the window is scanned for its
 * first maximum (a NaN wins, as argmax), with range checks only where padding or dilation
 * can put a tap outside the plane. The loops are plain scalar IR with constant trip counts:
 * LLVM unrolls the window and vectorises along the output row (strided loads become
 * interleaved ones).
 *
 * The gradient zeroes the plane and adds each window's share at its maxima, unless the
 * windows tile the plane exactly (stride = kernel, no padding or dilation: 2x2 pooling of an
 * even plane): then every element belongs to one window and is stored once, share or 0,
 * with no zeroing pass and no read of dx. */
#include "jit/emit_opaque.h"
#include "jit/scalar_ir.h"
#include "ops/pool.h"

typedef struct pool_gen {
    emit_ctx *e;
    LLVMTypeRef i64, t;     /* i64, the element type */
    jg_dtype dtype;
    pool_geom p;
    bool check_rows, check_cols; /* a tap can fall outside the plane */
} pool_gen;

static LLVMValueRef c64(pool_gen *g, int64_t v) { return emit_i64(g->e, v); }

static LLVMValueRef add(pool_gen *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAdd(g->e->b, a, b, "");
}

static LLVMValueRef mulc(pool_gen *g, LLVMValueRef a, int64_t c)
{
    return c == 1 ? a : LLVMBuildMul(g->e->b, a, c64(g, c), "");
}

/* lo <= v < hi for a constant range. */
static LLVMValueRef in_range(pool_gen *g, LLVMValueRef v, int64_t hi)
{
    /* unsigned v < hi also rejects negative v */
    return LLVMBuildICmp(g->e->b, LLVMIntULT, v, c64(g, hi), "");
}

/* One tap of a window: its in-plane index (0 when outside), whether it is inside, and its
 * value (x[0] of the plane when outside: never used then). */
typedef struct window_tap {
    LLVMValueRef at, inside, v;
} window_tap;

static window_tap tap_at(pool_gen *g, LLVMValueRef x, LLVMValueRef r, LLVMValueRef c)
{
    LLVMBuilderRef b = g->e->b;
    LLVMValueRef one = LLVMConstInt(LLVMInt1TypeInContext(g->e->m->ctx), 1, 0);
    window_tap t = { .inside = one };
    if (g->check_rows)
        t.inside = LLVMBuildAnd(b, t.inside, in_range(g, r, g->p.h), "");
    if (g->check_cols)
        t.inside = LLVMBuildAnd(b, t.inside, in_range(g, c, g->p.w), "");
    t.at = add(g, mulc(g, r, g->p.w), c);
    if (g->check_rows || g->check_cols)
        t.at = LLVMBuildSelect(b, t.inside, t.at, c64(g, 0), "");
    t.v = load_at(g->e, x, g->dtype, t.at);
    return t;
}

/* The taps of window (i, j): body(g, tap, ctx) for each, in row-major order. */
typedef void (*tap_fn)(pool_gen *g, const window_tap *t, void *ctx);

static void for_taps(pool_gen *g, LLVMValueRef x, LLVMValueRef i, LLVMValueRef j, tap_fn body,
                     void *ctx)
{
    emit_ctx *e = g->e;
    const pool_geom *p = &g->p;
    LLVMValueRef r0 = LLVMBuildSub(e->b, mulc(g, i, p->sh), c64(g, p->ph), "");
    LLVMValueRef c0 = LLVMBuildSub(e->b, mulc(g, j, p->sw), c64(g, p->pw), "");
    loop la, lb;
    loop_begin(e, &la, c64(g, 0), c64(g, p->kh), c64(g, 1), "a");
    LLVMValueRef r = add(g, r0, mulc(g, la.i, p->dh));
    loop_begin(e, &lb, c64(g, 0), c64(g, p->kw), c64(g, 1), "b");
    window_tap t = tap_at(g, x, r, add(g, c0, mulc(g, lb.i, p->dw)));
    body(g, &t, ctx);
    loop_end(e, &lb);
    loop_end(e, &la);
}

/* The running scan: the best value so far, its in-plane index, whether a tap was inside. */
typedef struct scan {
    LLVMValueRef best, at, have;
} scan;

/* v replaces the best: the first tap inside, a greater value, or the first NaN. */
static void scan_tap(pool_gen *g, const window_tap *t, void *ctx)
{
    scan *s = ctx;
    LLVMBuilderRef b = g->e->b;
    LLVMValueRef best = var_get(g->e, s->best, g->t);
    LLVMValueRef have = var_get(g->e, s->have, LLVMTypeOf(t->inside));
    LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, t->v, best, "");
    LLVMValueRef nan = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealUNO, t->v, t->v, ""),
                                    LLVMBuildFCmp(b, LLVMRealORD, best, best, ""), "");
    LLVMValueRef better = LLVMBuildOr(b, LLVMBuildNot(b, have, ""),
                                      LLVMBuildOr(b, gt, nan, ""), "");
    better = LLVMBuildAnd(b, t->inside, better, "");
    var_set(g->e, s->best, LLVMBuildSelect(b, better, t->v, best, ""));
    var_set(g->e, s->at, LLVMBuildSelect(b, better, t->at, var_get(g->e, s->at, g->i64), ""));
    var_set(g->e, s->have, LLVMBuildOr(b, have, t->inside, ""));
}

static scan scan_window(pool_gen *g, LLVMValueRef x, LLVMValueRef i, LLVMValueRef j)
{
    LLVMTypeRef i1 = LLVMInt1TypeInContext(g->e->m->ctx);
    scan s = { var_new(g->e, LLVMConstReal(g->t, -INFINITY)), var_new(g->e, c64(g, 0)),
               var_new(g->e, LLVMConstInt(i1, 0, 0)) };
    for_taps(g, x, i, j, scan_tap, &s);
    return s;
}

/* The gradient's pass over a window's taps, once its maximum is known. */
typedef struct share_pass {
    LLVMValueRef dx, best, at;    /* the plane; the window's maximum and its index */
    LLVMValueRef count;           /* split, counting pass: the number of ties (var) */
    LLVMValueRef share;           /* the value each tie receives (NULL: counting) */
    bool tiles, split;
} share_pass;

/* Whether a tap receives a share: the first maximum, or under split any tie (a NaN maximum
 * equals nothing, so only its own index matches). */
static LLVMValueRef takes_share(pool_gen *g, const share_pass *s, const window_tap *t)
{
    LLVMBuilderRef b = g->e->b;
    LLVMValueRef hit = LLVMBuildICmp(b, LLVMIntEQ, t->at, s->at, "");
    if (s->split)
        hit = LLVMBuildOr(b, hit, LLVMBuildFCmp(b, LLVMRealOEQ, t->v, s->best, ""), "");
    return LLVMBuildAnd(b, hit, t->inside, "");
}

static void share_tap(pool_gen *g, const window_tap *t, void *ctx)
{
    share_pass *s = ctx;
    LLVMBuilderRef b = g->e->b;
    LLVMValueRef hit = takes_share(g, s, t), zero = LLVMConstReal(g->t, 0);
    if (!s->share) {
        LLVMValueRef one = LLVMBuildUIToFP(b, hit, g->t, "");
        var_set(g->e, s->count, LLVMBuildFAdd(b, var_get(g->e, s->count, g->t), one, ""));
        return;
    }
    if (s->tiles) { /* each element is in one window only: store, share or 0 */
        store_at(g->e, s->dx, g->dtype, t->at, LLVMBuildSelect(b, hit, s->share, zero, ""));
        return;
    }
    LLVMValueRef old = load_at(g->e, s->dx, g->dtype, t->at);
    store_at(g->e, s->dx, g->dtype, t->at,
          LLVMBuildSelect(b, hit, LLVMBuildFAdd(b, old, s->share, ""), old, ""));
}

/* ---- the vector path: W adjacent outputs of a row at once */

/* <W x i64> lane * k. */
static LLVMValueRef lane_times(pool_gen *g, int64_t k)
{
    LLVMValueRef c[64];
    for (int l = 0; l < g->e->width; l++)
        c[l] = c64(g, l * k);
    return LLVMConstVector(c, (unsigned)g->e->width);
}

static LLVMValueRef splat64(pool_gen *g, LLVMValueRef v) { return emit_splat(g->e, v); }

/* <n x i32> shuffle mask: start, start + step, ... */
static LLVMValueRef shuffle_mask(pool_gen *g, int n, int start, int step)
{
    LLVMValueRef c[128];
    LLVMTypeRef i32 = LLVMInt32TypeInContext(g->e->m->ctx);
    for (int l = 0; l < n; l++)
        c[l] = LLVMConstInt(i32, (unsigned long long)(start + l * step), 0);
    return LLVMConstVector(c, (unsigned)n);
}

/* The pair layout (2-wide windows moved by 2, no column padding or dilation): the 2W
 * elements under W windows of row r are two contiguous loads, split into their even (tap 0)
 * and odd (tap 1) elements by shuffles, where gathers would cost several times more. */
static void load_pair(pool_gen *g, LLVMValueRef xp, LLVMValueRef base, LLVMValueRef valid,
                      LLVMValueRef *even, LLVMValueRef *odd)
{
    emit_ctx *e = g->e;
    int w = e->width;
    LLVMValueRef half[2];
    for (int h = 0; h < 2; h++) {
        /* lanes of this half that lie in the row: valid counts elements from base */
        e->mask = valid ? emit_lane_mask(e, LLVMBuildSub(e->b, valid, c64(g, h * w), "")) : NULL;
        half[h] = emit_load(e, xp, g->dtype, add(g, base, c64(g, h * w)), 1);
        e->mask = NULL;
    }
    *even = LLVMBuildShuffleVector(e->b, half[0], half[1], shuffle_mask(g, w, 0, 2), "");
    *odd = LLVMBuildShuffleVector(e->b, half[0], half[1], shuffle_mask(g, w, 1, 2), "");
}

static bool pair_layout(const pool_geom *p)
{
    return p->kw == 2 && p->sw == 2 && p->dw == 1 && p->pw == 0;
}

/* Scans the windows of outputs (i, j0 .. j0 + W) of plane xp (lanes past the row are off in
 * `tail`, NULL when none are; `valid` counts the row's elements from column 2*j0 in the pair
 * layout): the maxima, their in-plane indices (<W x i64>) and which tap (a*kw + b) won. */
static void scan_lanes(pool_gen *g, LLVMValueRef xp, LLVMValueRef i, LLVMValueRef j0,
                       LLVMValueRef tail, LLVMValueRef valid, LLVMValueRef *best_out,
                       LLVMValueRef *at_out, LLVMValueRef *tap_out)
{
    emit_ctx *e = g->e;
    LLVMBuilderRef b = e->b;
    const pool_geom *p = &g->p;
    LLVMTypeRef vi1 = LLVMVectorType(LLVMInt1TypeInContext(e->m->ctx), (unsigned)e->width);
    LLVMValueRef best = emit_splat_const(e, g->dtype, -INFINITY);
    LLVMValueRef at = LLVMConstNull(LLVMVectorType(g->i64, (unsigned)e->width));
    LLVMValueRef have = LLVMConstNull(vi1), all = LLVMConstAllOnes(vi1);
    LLVMValueRef tap = LLVMConstNull(LLVMVectorType(g->i64, (unsigned)e->width));
    LLVMValueRef cols = add(g, splat64(g, mulc(g, j0, p->sw)), lane_times(g, p->sw));
    bool pair = pair_layout(p);
    for (int64_t a = 0; a < p->kh; a++) {
        LLVMValueRef r = add(g, LLVMBuildSub(b, mulc(g, i, p->sh), c64(g, p->ph), ""),
                             c64(g, a * p->dh));
        LLVMValueRef row_in = g->check_rows ? in_range(g, r, p->h) : NULL;
        LLVMValueRef pv[2] = { NULL, NULL };
        if (pair) {
            LLVMValueRef rr = row_in ? LLVMBuildSelect(b, row_in, r, c64(g, 0), "") : r;
            LLVMValueRef n = valid;
            if (row_in) /* a row outside loads nothing */
                n = LLVMBuildSelect(b, row_in, valid ? valid : c64(g, 2 * e->width), c64(g, 0), "");
            load_pair(g, xp, add(g, mulc(g, rr, p->w), mulc(g, j0, 2)), n, &pv[0], &pv[1]);
        }
        for (int64_t k = 0; k < p->kw; k++) {
            int64_t dc = k * p->dw - p->pw;
            LLVMValueRef c = add(g, cols, splat64(g, c64(g, dc)));
            LLVMValueRef inside = tail ? tail : all;
            if (g->check_cols)
                inside = LLVMBuildAnd(b, inside, LLVMBuildICmp(b, LLVMIntULT, c,
                                      splat64(g, c64(g, p->w)), ""), "");
            if (row_in)
                inside = LLVMBuildAnd(b, inside, LLVMBuildSelect(b, row_in, all,
                                      LLVMConstNull(vi1), ""), "");
            /* a row outside reads row 0 under an all-off mask: never touches memory */
            LLVMValueRef rr = row_in ? LLVMBuildSelect(b, row_in, r, c64(g, 0), "") : r;
            LLVMValueRef base = add(g, mulc(g, rr, p->w), add(g, mulc(g, j0, p->sw), c64(g, dc)));
            LLVMValueRef v = pair ? pv[k] : NULL;
            if (!pair) {
                e->mask = g->check_cols || row_in || tail ? inside : NULL;
                v = emit_load(e, xp, g->dtype, base, p->sw);
                e->mask = NULL;
            }
            LLVMValueRef gt = LLVMBuildFCmp(b, LLVMRealOGT, v, best, "");
            LLVMValueRef nan = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""),
                                            LLVMBuildFCmp(b, LLVMRealORD, best, best, ""), "");
            LLVMValueRef better = LLVMBuildOr(b, LLVMBuildNot(b, have, ""),
                                              LLVMBuildOr(b, gt, nan, ""), "");
            better = LLVMBuildAnd(b, inside, better, "");
            best = LLVMBuildSelect(b, better, v, best, "");
            LLVMValueRef idx = add(g, splat64(g, mulc(g, rr, p->w)), c);
            at = LLVMBuildSelect(b, better, idx, at, "");
            tap = LLVMBuildSelect(b, better, splat64(g, c64(g, a * p->kw + k)), tap, "");
            have = LLVMBuildOr(b, have, inside, "");
        }
    }
    *best_out = best;
    *at_out = at;
    *tap_out = tap;
}

/* The gradient of dx rows i*kh .. in the pair layout with tiling windows: per row, the dy of
 * each window where its winning tap is in that row and column, interleaved back into the
 * row's order by shuffles, stored contiguously. */
static void pair_grad_rows(pool_gen *g, LLVMValueRef op, LLVMValueRef dyp, LLVMValueRef i,
                           LLVMValueRef j0, LLVMValueRef tail, LLVMValueRef valid,
                           LLVMValueRef tap)
{
    emit_ctx *e = g->e;
    LLVMBuilderRef b = e->b;
    const pool_geom *p = &g->p;
    int w = e->width;
    LLVMTypeRef vt = emit_vector_type(e, g->dtype);
    e->mask = tail;
    LLVMValueRef dy = emit_load(e, dyp, g->dtype, add(g, mulc(g, i, p->ow), j0), 1);
    e->mask = NULL;
    for (int64_t a = 0; a < p->kh; a++) {
        LLVMValueRef v[2];
        for (int k = 0; k < 2; k++) {
            LLVMValueRef hit = LLVMBuildICmp(b, LLVMIntEQ, tap, splat64(g, c64(g, a * 2 + k)), "");
            v[k] = LLVMBuildSelect(b, hit, dy, LLVMConstNull(vt), "");
        }
        LLVMValueRef r = add(g, mulc(g, i, p->kh), c64(g, a));
        LLVMValueRef base = add(g, mulc(g, r, p->w), mulc(g, j0, 2));
        for (int h = 0; h < 2; h++) {
            /* lanes h*W/2 .. of both, interleaved: v0[l], v1[l], v0[l+1], ... */
            LLVMValueRef c[128];
            LLVMTypeRef i32 = LLVMInt32TypeInContext(e->m->ctx);
            for (int l = 0; l < w; l++)
                c[l] = LLVMConstInt(i32, (unsigned long long)(h * w / 2 + l / 2 + (l % 2) * w), 0);
            LLVMValueRef mixed = LLVMBuildShuffleVector(b, v[0], v[1],
                                                        LLVMConstVector(c, (unsigned)w), "");
            e->mask = valid ? emit_lane_mask(e, LLVMBuildSub(b, valid, c64(g, h * w), "")) : NULL;
            emit_store(e, op, g->dtype, add(g, base, c64(g, h * w)), mixed);
            e->mask = NULL;
        }
    }
}

/* <W x T> from base[idx[l]] for the lanes on in mask (T: element type et), others 0. */
static LLVMValueRef gather_at(pool_gen *g, LLVMTypeRef et, LLVMValueRef base, LLVMValueRef idx,
                              LLVMValueRef mask)
{
    emit_ctx *e = g->e;
    LLVMTypeRef vt = LLVMVectorType(et, (unsigned)e->width);
    LLVMValueRef ptrs = LLVMBuildGEP2(e->b, et, base, &idx, 1, "");
    LLVMTypeRef ov[2] = { vt, LLVMTypeOf(ptrs) };
    unsigned align = (unsigned)(LLVMGetTypeKind(et) == LLVMIntegerTypeKind
                                    ? LLVMGetIntTypeWidth(et) / 8
                                    : jg_dtype_size(g->dtype));
    LLVMValueRef args[4] = { ptrs, LLVMConstInt(LLVMInt32TypeInContext(e->m->ctx), align, 0),
                             mask, LLVMConstNull(vt) };
    return emit_intrinsic(e, "llvm.masked.gather", ov, 2, args, 4);
}

/* The vector path: the forward for any geometry; the gradient when the windows tile the
 * plane and the first maximum takes all (then each dx row is one pass of contiguous stores,
 * each lane reading its window's maximum index and dy from a row of them kept on the
 * stack). */
static void vector_rows(pool_gen *g, LLVMValueRef xp, LLVMValueRef op, LLVMValueRef dyp,
                        bool grad)
{
    emit_ctx *e = g->e;
    LLVMBuilderRef b = e->b;
    const pool_geom *p = &g->p;
    int64_t w = e->width, blocks = (p->ow + w - 1) / w;
    LLVMTypeRef vi64 = LLVMVectorType(g->i64, (unsigned)w);
    LLVMValueRef at_row = NULL;
    if (grad && !pair_layout(p)) {
        /* the row's maximum indices, whole vectors (in the entry block) */
        LLVMBuilderRef eb = LLVMCreateBuilderInContext(e->m->ctx);
        LLVMPositionBuilderBefore(eb, LLVMGetFirstInstruction(e->entry));
        at_row = LLVMBuildArrayAlloca(eb, g->i64, c64(g, blocks * w), "at_row");
        LLVMSetAlignment(at_row, 64);
        LLVMDisposeBuilder(eb);
    }
    loop li, lj;
    loop_begin(e, &li, c64(g, 0), c64(g, p->oh), c64(g, 1), "i");
    loop_begin(e, &lj, c64(g, 0), c64(g, blocks), c64(g, 1), "jb");
    LLVMValueRef j0 = mulc(g, lj.i, w);
    LLVMValueRef tail = NULL, valid = NULL;
    if (p->ow % w) {
        tail = emit_lane_mask(e, LLVMBuildSub(b, c64(g, p->ow), j0, ""));
        /* the pair layout's elements from column 2*j0 (the last block's only) */
        valid = LLVMBuildSub(b, c64(g, 2 * p->ow), mulc(g, j0, 2), "");
    }
    LLVMValueRef best, at, tap;
    scan_lanes(g, xp, li.i, j0, tail, valid, &best, &at, &tap);
    if (grad && pair_layout(p)) {
        pair_grad_rows(g, op, dyp, li.i, j0, tail, valid, tap);
    } else if (!grad) {
        e->mask = tail;
        emit_store(e, op, g->dtype, add(g, mulc(g, li.i, p->ow), j0), best);
        e->mask = NULL;
    } else { /* kept for the row's pass below */
        LLVMValueRef dst = LLVMBuildGEP2(b, g->i64, at_row, &j0, 1, "");
        LLVMValueRef st = LLVMBuildStore(
            b, at, LLVMBuildBitCast(b, dst, LLVMPointerType(vi64, 0), ""));
        LLVMSetAlignment(st, 8);
    }
    loop_end(e, &lj);
    if (grad && !pair_layout(p)) {
        /* dx rows i*kh .. i*kh + kh - 1: element u of a row is tap u % kw of window u / kw */
        int64_t row = p->w, ublocks = (row + w - 1) / w;
        LLVMValueRef dy_row = elem_ptr(g->e, dyp, g->dtype, mulc(g, li.i, p->ow));
        LLVMTypeRef vt = emit_vector_type(e, g->dtype);
        for (int64_t a = 0; a < p->kh; a++) {
            LLVMValueRef r = add(g, mulc(g, li.i, p->kh), c64(g, a));
            loop lu;
            loop_begin(e, &lu, c64(g, 0), c64(g, ublocks), c64(g, 1), "u");
            LLVMValueRef u0 = mulc(g, lu.i, w);
            LLVMValueRef u = add(g, splat64(g, u0), lane_times(g, 1));
            LLVMValueRef jw = LLVMBuildUDiv(b, u, splat64(g, c64(g, p->kw)), "");
            LLVMValueRef mask = row % w ? emit_lane_mask(e, LLVMBuildSub(b, c64(g, row), u0, ""))
                                        : LLVMConstAllOnes(LLVMVectorType(
                                              LLVMInt1TypeInContext(e->m->ctx), (unsigned)w));
            LLVMValueRef win_at = gather_at(g, g->i64, at_row, jw, mask);
            LLVMValueRef dyv = gather_at(g, g->t, dy_row, jw, mask);
            LLVMValueRef here = add(g, splat64(g, mulc(g, r, p->w)), u);
            LLVMValueRef hit = LLVMBuildICmp(b, LLVMIntEQ, here, win_at, "");
            LLVMValueRef v = LLVMBuildSelect(b, hit, dyv, LLVMConstNull(vt), "");
            e->mask = row % w ? mask : NULL;
            emit_store(e, op, g->dtype, add(g, mulc(g, r, p->w), u0), v);
            e->mask = NULL;
            loop_end(e, &lu);
        }
    }
    loop_end(e, &li);
}

void pool_emit_max(emit_ctx *e, const jg_node *n, LLVMValueRef out, LLVMValueRef x,
                   LLVMValueRef dy, int64_t *outer)
{
    pool_gen g = { .e = e, .i64 = LLVMInt64TypeInContext(e->m->ctx), .dtype = n->dtype,
                   .p = pool_geom_of(n) };
    g.t = emit_scalar_type(e, n->dtype);
    const pool_geom *p = &g.p;
    /* taps fall outside only through padding, or past the far edge by the window count */
    g.check_rows = p->ph > 0 || (p->oh - 1) * p->sh + (p->kh - 1) * p->dh >= p->h;
    g.check_cols = p->pw > 0 || (p->ow - 1) * p->sw + (p->kw - 1) * p->dw >= p->w;
    bool grad = n->op == JG_OP_MAX_POOL2D_GRAD;
    bool tiles = p->sh == p->kh && p->sw == p->kw && p->dh == 1 && p->dw == 1 && p->ph == 0 &&
                 p->pw == 0 && p->oh * p->kh == p->h && p->ow * p->kw == p->w;
    *outer = p->planes;
    loop lq, li, lj;
    loop_begin(e, &lq, LLVMGetParam(e->fn, 1), LLVMGetParam(e->fn, 2), c64(&g, 1), "plane");
    LLVMValueRef xp = elem_ptr(g.e, x, g.dtype, mulc(&g, lq.i, p->h * p->w));
    int64_t out_plane = grad ? p->h * p->w : p->oh * p->ow;
    LLVMValueRef op = elem_ptr(g.e, out, g.dtype, mulc(&g, lq.i, out_plane));
    LLVMValueRef dyp = grad ? elem_ptr(g.e, dy, g.dtype, mulc(&g, lq.i, p->oh * p->ow)) : NULL;
    bool vector = e->width >= 2 && p->ow <= 4096 && p->kh * p->kw <= 64 &&
                  (!grad || (tiles && p->ties == JG_TIES_FIRST));
    if (vector) {
        vector_rows(&g, xp, op, dyp, grad);
        loop_end(e, &lq);
        return;
    }
    if (grad && !tiles) {
        unsigned size = (unsigned)jg_dtype_size(n->dtype);
        LLVMBuildMemSet(e->b, op, LLVMConstInt(LLVMInt8TypeInContext(e->m->ctx), 0, 0),
                        c64(&g, p->h * p->w * (int64_t)size), size);
    }
    loop_begin(e, &li, c64(&g, 0), c64(&g, p->oh), c64(&g, 1), "i");
    loop_begin(e, &lj, c64(&g, 0), c64(&g, p->ow), c64(&g, 1), "j");
    scan s = scan_window(&g, xp, li.i, lj.i);
    LLVMValueRef best = var_get(g.e, s.best, g.t), at = var_get(g.e, s.at, g.i64);
    LLVMValueRef o = add(&g, mulc(&g, li.i, p->ow), lj.i);
    if (!grad) {
        store_at(g.e, op, g.dtype, o, best);
    } else {
        LLVMValueRef d = load_at(g.e, dyp, g.dtype, o);
        share_pass sp = { .dx = op, .best = best, .at = at, .tiles = tiles,
                          .split = p->ties == JG_TIES_SPLIT };
        if (sp.split) {
            sp.count = var_new(g.e, LLVMConstReal(g.t, 0));
            for_taps(&g, xp, li.i, lj.i, share_tap, &sp);
            d = LLVMBuildFDiv(e->b, d, var_get(g.e, sp.count, g.t), "");
        }
        sp.share = d;
        if (!sp.split && !tiles) { /* (a window all in the padding gives nothing) */
            LLVMValueRef have = var_get(g.e, s.have, LLVMInt1TypeInContext(e->m->ctx));
            d = LLVMBuildSelect(e->b, have, d, LLVMConstReal(g.t, 0), "");
            LLVMValueRef old = load_at(g.e, op, g.dtype, at);
            store_at(g.e, op, g.dtype, at, LLVMBuildFAdd(e->b, old, d, ""));
        }
        else
            for_taps(&g, xp, li.i, lj.i, share_tap, &sp);
    }
    loop_end(e, &lj);
    loop_end(e, &li);
    loop_end(e, &lq);
}
