/* GEMM kernels (see gemm.h). The loop nest, per call, over the tiles [begin, end) of C:
 *
 *     for tile (batch b, row block ib of MC rows, column block jb of NC columns):
 *       for summed batch index r (batch_sum only; C accumulates A[b,r] x B[b,r] over r):
 *       for K block pc (KC deep):
 *         pack A[b][ib rows][pc] into scratch as MR x KC micro-panels     (L2-resident;
 *                                        A with unit row stride is used in place instead)
 *         for column panel jr of NR = 2 vectors:
 *           pack B[b][pc][jr] into scratch as one KC x NR micro-panel     (L1-resident)
 *           for row panel ir of MR rows:
 *             micro-kernel: MR x 2 vector accumulators, k loop of broadcast-FMAs;
 *             not the first (r, pc): add C; the last: C = epilogue(acc), else C = acc
 *
 * Edge tiles (m % MR rows, n % NR columns) get their own micro-kernels with fewer rows and
 * masked stores; packing zero-pads them. Operand strides are constants handled by the packing
 * loops: contiguous lanes are vector loads, contiguous k is an in-register transpose, anything
 * else a gather. */
#include "jit/gemm_ir.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Splits `len` into about `blocks` blocks, each a multiple of `unit`; sets the block size
 * and the resulting number of blocks. */
static void split(int64_t len, int64_t blocks, int64_t unit, int64_t *size, int64_t *count)
{
    *size = round_up(cdiv(len, blocks), unit);
    *count = len ? cdiv(len, *size) : 0;
}

/* Rough cycles per element to pack a micro-panel whose lanes have element stride sl and whose
 * k has stride sp: a vector copy, an in-register transpose, or gathers. */
static double pack_cost(int64_t sp, int64_t sl)
{
    return sl == 1 ? 0.07 : sp == 1 ? 0.3 : 1.0;
}

/* The thread count tiles are sized for: the online CPUs, at most 8. */
static int split_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 8 ? 8 : (int)n;
}

static void make_plan(gemm_plan *p, const gemm_desc *d, int w)
{
    int64_t esize = (int64_t)jg_dtype_size(d->dtype);
    /* 32 registers with AVX-512, else 16: MR x 2 accumulators, 2 B vectors, 1 broadcast. */
    bool zmm = w * esize >= 64;
    p->w = w;
    p->nv = 2;
    p->nr = p->nv * w;
    p->mr = zmm ? 8 : 6;
    /* KC: the B micro-panel (KC x NR) fills about 32 KB of L1. */
    int64_t kc_max = 32768 / (p->nr * esize);
    kc_max = kc_max < 64 ? 64 : kc_max > 512 ? 512 : kc_max;
    p->n_kb = d->k > 0 ? cdiv(d->k, kc_max) : 1;
    p->kc = cdiv(d->k, p->n_kb);
    p->kc_last = d->k - (p->n_kb - 1) * p->kc;
    p->n_batch = p->n_red = 1;
    for (int i = 0; i < d->batch_ndim; i++)
        if (d->batch_sum >> i & 1)
            p->n_red *= d->batch_dim[i];
        else
            p->n_batch *= d->batch_dim[i];
    /* Tiles: the A block (MC x KC) stays in L2, so MC <= 256; otherwise the split that
     * finishes first on `threads` threads, counting the arithmetic and the packing (A is
     * packed once per column block, B once per row block). */
    int threads = split_threads();
    double fma = (double)d->m * (double)d->n * (double)d->k / (2.0 * w);
    double ca = d->a.rs == 1 ? 0 : pack_cost(d->a.cs, d->a.rs);
    double cb = pack_cost(d->b.rs, d->b.cs);
    double best = -1;
    int64_t ib0 = cdiv(d->m, 256), ib_max = cdiv(d->m, p->mr), jb_max = cdiv(d->n, p->nr);
    if (d->m == 0 || d->n == 0)
        ib_max = jb_max = 0;
    for (int64_t ib = ib0 > 1 ? ib0 : 1; ib <= ib_max && ib < ib0 + 64; ib++) {
        int64_t mc, n_ib, nc, n_jb;
        split(d->m, ib, p->mr, &mc, &n_ib);
        for (int64_t jb = 1; jb <= jb_max && jb <= 64; jb++) {
            split(d->n, jb, p->nr, &nc, &n_jb);
            int64_t units = p->n_batch * n_ib * n_jb;
            double work = (double)(p->n_batch * p->n_red) *
                              (fma + ca * (double)(d->m * d->k * n_jb) +
                               cb * (double)(d->k * d->n * n_ib)) +
                          2000.0 * (double)units;
            double chunks = units < threads ? units : threads;
            double span = work * (double)cdiv(units, (int64_t)chunks) / (double)units;
            if (best < 0 || span < best * 0.999) {
                best = span;
                p->mc = mc, p->n_ib = n_ib, p->nc = nc, p->n_jb = n_jb;
            }
        }
    }
    if (best < 0) /* m or n is 0 */
        p->mc = p->mr, p->nc = p->nr, p->n_ib = p->n_jb = 0;
}

/* n lanes from p[at + l * stride], lanes >= valid zero. */
static LLVMValueRef load_lanes(gen *g, LLVMValueRef p, LLVMValueRef at, int64_t stride, int n,
                               int valid)
{
    LLVMTypeRef vt = lanes_type(g, n);
    unsigned align = (unsigned)g->esize;
    LLVMValueRef zero = LLVMConstNull(vt);
    if (stride == 1 && valid == n)
        return load_vec(g, vt, p, at, align);
    if (stride == 0) {
        LLVMValueRef s = LLVMBuildLoad2(g->b, g->et, elem_ptr(g, p, at), "");
        LLVMSetAlignment(s, align);
        LLVMValueRef v = LLVMBuildInsertElement(g->b, LLVMGetUndef(vt), s, c32(g, 0), "");
        LLVMTypeRef i32s = LLVMVectorType(LLVMInt32TypeInContext(g->e->m->ctx), (unsigned)n);
        v = LLVMBuildShuffleVector(g->b, v, LLVMGetUndef(vt), LLVMConstNull(i32s), "");
        return valid == n ? v : LLVMBuildSelect(g->b, const_mask(g, n, valid), v, zero, "");
    }
    LLVMValueRef args[4];
    LLVMTypeRef ov[2];
    if (stride == 1) {
        ov[0] = vt;
        ov[1] = LLVMPointerType(vt, 0);
        args[0] = as_vec_ptr(g, elem_ptr(g, p, at), vt);
        args[1] = c32(g, (int)align);
        args[2] = const_mask(g, n, valid);
        args[3] = zero;
        return emit_intrinsic(g->e, "llvm.masked.load", ov, 2, args, 4);
    }
    LLVMValueRef offs[MAX_LANES];
    for (int i = 0; i < n; i++)
        offs[i] = c64(g, i * stride);
    LLVMValueRef vo = LLVMConstVector(offs, (unsigned)n);
    LLVMValueRef ptrs = LLVMBuildGEP2(g->b, g->et, elem_ptr(g, p, at), &vo, 1, "");
    ov[0] = vt;
    ov[1] = LLVMTypeOf(ptrs);
    args[0] = ptrs;
    args[1] = c32(g, (int)align);
    args[2] = const_mask(g, n, valid);
    args[3] = zero;
    return emit_intrinsic(g->e, "llvm.masked.gather", ov, 2, args, 4);
}

/* ---- packing ------------------------------------------------------------------------- */

/* Transposes t vectors of t lanes in place: log2(t) stages, each swapping the off-diagonal
 * h x h blocks of every 2h x 2h block (bit h of the row index trades places with bit h of the
 * column index). */
static void transpose(gen *g, LLVMValueRef *v, int t)
{
    for (int h = t / 2; h >= 1; h /= 2) {
        LLVMValueRef lo[MAX_LANES], hi[MAX_LANES];
        for (int j = 0; j < t; j++) {
            lo[j] = c32(g, (j & h) ? t + j - h : j);
            hi[j] = c32(g, (j & h) ? t + j : j + h);
        }
        LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)t), mhi = LLVMConstVector(hi, (unsigned)t);
        for (int i = 0; i < t; i++) {
            if (i & h)
                continue;
            LLVMValueRef a = v[i], b = v[i + h];
            v[i] = LLVMBuildShuffleVector(g->b, a, b, mlo, "");
            v[i + h] = LLVMBuildShuffleVector(g->b, a, b, mhi, "");
        }
    }
}

/* Packs a micro-panel: dst[p * L + l] = src[base + p * sp + l * sl] for p < kc, l < L, zero
 * for l >= valid. */
static void pack_panel(gen *g, LLVMValueRef src, LLVMValueRef base, int64_t sp, int64_t sl,
                       int L, int valid, LLVMValueRef kc, LLVMValueRef dst)
{
    emit_ctx *e = g->e;
    unsigned align = (unsigned)g->esize;
    /* The largest power of two <= w dividing L: the transpose block. */
    int t = 1;
    while (t * 2 <= g->p.w && L % (t * 2) == 0)
        t *= 2;
    LLVMValueRef from = c64(g, 0);
    if (sl != 1 && sp == 1 && t >= 4) {
        /* k contiguous: t x t blocks, each t loads of t lanes, transposed in registers. */
        LLVMValueRef kc_main = LLVMBuildAnd(g->b, kc, c64(g, -(int64_t)t), "");
        loop lp;
        loop_begin(e, &lp, c64(g, 0), kc_main, c64(g, t), "packt");
        LLVMValueRef at = add(g, base, lp.i);
        for (int gi = 0; gi < L / t; gi++) {
            LLVMValueRef v[MAX_LANES];
            for (int i = 0; i < t; i++) {
                int l = gi * t + i;
                v[i] = l < valid ? load_vec(g, lanes_type(g, t), src, add(g, at, c64(g, l * sl)),
                                            align)
                                 : LLVMConstNull(lanes_type(g, t));
            }
            transpose(g, v, t);
            for (int i = 0; i < t; i++)
                store_vec(g, v[i], dst, add(g, mul(g, add(g, lp.i, c64(g, i)), L), c64(g, gi * t)),
                          align);
        }
        loop_end(e, &lp);
        from = kc_main;
    }
    loop lp;
    loop_begin(e, &lp, from, kc, c64(g, 1), "pack");
    LLVMValueRef v = load_lanes(g, src, madd(g, base, lp.i, sp), sl, L, valid);
    store_vec(g, v, dst, mul(g, lp.i, L), align);
    loop_end(e, &lp);
}

/* ---- the micro-kernel ---------------------------------------------------------------- */

static LLVMValueRef get_acc(gen *g, int r, int v)
{
    return LLVMBuildLoad2(g->b, g->vt, g->acc[r][v], "");
}

static void set_acc(gen *g, int r, int v, LLVMValueRef x) { LLVMBuildStore(g->b, x, g->acc[r][v]); }

/* One k step: acc[r][v] += pa[p * a_ps + r * a_rs] * pb[p * NR + v * w .. + w). */
static void fma_step(gen *g, int mr, int nv, LLVMValueRef pa, LLVMValueRef pb, LLVMValueRef p)
{
    unsigned valign = (unsigned)(g->pack_b ? g->p.w * g->esize : g->esize);
    LLVMValueRef bv[MAX_NV];
    LLVMValueRef bat = mul(g, p, g->b_ps), aat = mul(g, p, g->a_ps);
    for (int v = 0; v < nv; v++)
        bv[v] = load_vec(g, g->vt, pb, add(g, bat, c64(g, v * g->p.w)), valign);
    for (int r = 0; r < mr; r++) {
        LLVMValueRef at = add(g, aat, c64(g, r * g->a_rs));
        LLVMValueRef s = LLVMBuildLoad2(g->b, g->et, elem_ptr(g, pa, at), "");
        LLVMSetAlignment(s, (unsigned)g->esize);
        LLVMValueRef a = emit_splat(g->e, s);
        for (int v = 0; v < nv; v++) {
            LLVMValueRef args[3] = { a, bv[v], get_acc(g, r, v) };
            set_acc(g, r, v, emit_intrinsic(g->e, "llvm.fma", &g->vt, 1, args, 3));
        }
    }
}

/* C[i .. i + mr, j .. j + cols) (+)= A panel pa x B panel pb over kc; cols = (nv - 1) * w +
 * last lanes. */
static void micro_tile(gen *g, int mr, int nv, int last, LLVMValueRef pa, LLVMValueRef pb,
                       LLVMValueRef kc, LLVMValueRef i, LLVMValueRef j)
{
    emit_ctx *e = g->e;
    const gemm_desc *d = g->d;
    int w = g->p.w;
    LLVMValueRef tile = add(g, g->c_off, add(g, mul(g, i, d->n), j));
    LLVMValueRef at[MAX_MR][MAX_NV];
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(e->m->ctx), 0);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            set_acc(g, r, v, LLVMConstNull(g->vt));
            at[r][v] = add(g, tile, c64(g, r * d->n + v * w));
            /* The C tile is needed after the k loop: fetch it (for writing) meanwhile. */
            LLVMValueRef ptr = LLVMBuildBitCast(g->b, elem_ptr(g, g->C, at[r][v]), i8p, "");
            LLVMValueRef args[4] = { ptr, c32(g, 1), c32(g, 3), c32(g, 1) };
            emit_intrinsic(e, "llvm.prefetch", &i8p, 1, args, 4);
        }
    kidx idx[JG_MAX_DIMS + 2];
    for (int k = 0; k < d->batch_ndim; k++)
        idx[k] = (kidx){ g->bidx[k], 0 };
    /* So are the buffers the epilogue reads at the tile (an LSTM's input projection): read
     * cold after the k loop, they stalled the store for longer than the loop took. */
    for (int r = 0; d->epilogue && r < mr; r++)
        for (int v = 0; v < nv; v++) {
            idx[d->batch_ndim] = (kidx){ add(g, i, c64(g, r)), 0 };
            idx[d->batch_ndim + 1] = (kidx){ add(g, j, c64(g, v * w)), 1 };
            e->prefetch_only = true;
            d->epilogue(d->epilogue_ctx, e, LLVMGetUndef(g->vt), idx);
            e->prefetch_only = false;
        }
    /* The k loop, unrolled by 4. */
    LLVMValueRef kc4 = LLVMBuildAnd(g->b, kc, c64(g, -4), "");
    loop lk;
    loop_begin(e, &lk, c64(g, 0), kc4, c64(g, 4), "k4");
    for (int u = 0; u < 4; u++)
        fma_step(g, mr, nv, pa, pb, add(g, lk.i, c64(g, u)));
    loop_end(e, &lk);
    loop_begin(e, &lk, kc4, kc, c64(g, 1), "k1");
    fma_step(g, mr, nv, pa, pb, lk.i);
    loop_end(e, &lk);

    LLVMValueRef saved_mask = e->mask;
#define MASK_FOR(v) (e->mask = (v) == nv - 1 && last < w ? emit_lane_mask(e, c64(g, last)) : NULL)
    if (g->n_steps > 1) {
        /* Later steps add what the earlier ones stored. */
        LLVMBasicBlockRef cont = if_begin(g, LLVMBuildICmp(g->b, LLVMIntNE, g->pc, c64(g, 0), ""));
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < nv; v++) {
                MASK_FOR(v);
                LLVMValueRef c = emit_load(e, g->C, d->dtype, at[r][v], 1);
                set_acc(g, r, v, LLVMBuildFAdd(g->b, get_acc(g, r, v), c, ""));
            }
        if_end(g, cont);
    }
    LLVMBasicBlockRef raw = NULL, done = NULL;
    if (g->n_steps > 1) {
        LLVMBasicBlockRef fin = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "final");
        raw = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "partial");
        done = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "stored");
        LLVMValueRef is_last = LLVMBuildICmp(g->b, LLVMIntEQ, g->pc, c64(g, g->n_steps - 1), "");
        LLVMBuildCondBr(g->b, is_last, fin, raw);
        LLVMPositionBuilderAtEnd(g->b, fin);
    }
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            MASK_FOR(v);
            LLVMValueRef x = get_acc(g, r, v);
            if (d->epilogue) {
                idx[d->batch_ndim] = (kidx){ add(g, i, c64(g, r)), 0 };
                idx[d->batch_ndim + 1] = (kidx){ add(g, j, c64(g, v * w)), 1 };
                x = d->epilogue(d->epilogue_ctx, e, x, idx);
            }
            emit_store(e, g->C, d->dtype, at[r][v], x);
        }
    if (g->n_steps > 1) {
        LLVMBuildBr(g->b, done);
        LLVMPositionBuilderAtEnd(g->b, raw);
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < nv; v++) {
                MASK_FOR(v);
                emit_store(e, g->C, d->dtype, at[r][v], get_acc(g, r, v));
            }
        LLVMBuildBr(g->b, done);
        LLVMPositionBuilderAtEnd(g->b, done);
    }
#undef MASK_FOR
    e->mask = saved_mask;
}

/* Row panel t of the A block starting at row i0: packed, or in place. */
static LLVMValueRef a_panel(gen *g, LLVMValueRef i0, LLVMValueRef t)
{
    int mr = g->p.mr;
    if (g->pack_a)
        return elem_ptr(g, g->sa, mul(g, t, mr * g->p.kc));
    return elem_ptr(g, g->A, madd(g, g->a_k, madd(g, i0, t, mr), g->d->a.rs));
}

/* All row panels of the tile's A block against the packed B panel at column j. */
static void row_panels(gen *g, int nv, int last, LLVMValueRef i0, LLVMValueRef full_rows,
                       LLVMValueRef tail_rows, LLVMValueRef kc, LLVMValueRef j)
{
    int mr = g->p.mr;
    loop lr;
    loop_begin(g->e, &lr, c64(g, 0), full_rows, c64(g, 1), "ir");
    LLVMValueRef pa = a_panel(g, i0, lr.i);
    micro_tile(g, mr, nv, last, pa, g->pb, kc, madd(g, i0, lr.i, mr), j);
    loop_end(g->e, &lr);
    int rest = (int)(g->d->m % mr);
    if (rest) {
        LLVMBasicBlockRef cont = if_begin(g, tail_rows);
        LLVMValueRef pa_tail = a_panel(g, i0, full_rows);
        micro_tile(g, rest, nv, last, pa_tail, g->pb, kc, madd(g, i0, full_rows, mr), j);
        if_end(g, cont);
    }
}

/* Packs the A block of rows [i0, i0 + MC) at K block a_k: full_rows micro-panels of MR rows,
 * then in the last row block the m % MR rows left (zero-padded to MR). */
static void pack_a_block(gen *g, LLVMValueRef i0, LLVMValueRef full_rows, LLVMValueRef last_ib,
                         LLVMValueRef kc)
{
    const gemm_desc *d = g->d;
    int mr = g->p.mr, rest = (int)(d->m % mr);
    loop lr;
    loop_begin(g->e, &lr, c64(g, 0), full_rows, c64(g, 1), "packa");
    pack_panel(g, g->A, madd(g, g->a_k, madd(g, i0, lr.i, mr), d->a.rs), d->a.cs, d->a.rs, mr,
               mr, kc, a_panel(g, i0, lr.i));
    loop_end(g->e, &lr);
    if (rest) {
        LLVMBasicBlockRef cont = if_begin(g, last_ib);
        pack_panel(g, g->A, madd(g, g->a_k, madd(g, i0, full_rows, mr), d->a.rs), d->a.cs,
                   d->a.rs, mr, rest, kc, a_panel(g, i0, full_rows));
        if_end(g, cont);
    }
}

/* Adds to *a_off and *b_off the operands' offsets of batch index `flat` over the summed
 * batch dimensions (summed) or the others (!summed), row-major; records the others' indices
 * in g->bidx (the summed ones are 0 there: C has size 1 along them). */
static void batch_offsets(gen *g, LLVMValueRef flat, bool summed, LLVMValueRef *a_off,
                          LLVMValueRef *b_off)
{
    const gemm_desc *d = g->d;
    int last = -1;
    for (int k = 0; k < d->batch_ndim; k++)
        if ((d->batch_sum >> k & 1) == summed)
            last = last < 0 ? k : last; /* the outermost: it takes the quotient */
    for (int k = d->batch_ndim - 1; k >= 0; k--) {
        if ((d->batch_sum >> k & 1) != summed) {
            if (!summed)
                g->bidx[k] = c64(g, 0);
            continue;
        }
        LLVMValueRef dim = c64(g, d->batch_dim[k]);
        LLVMValueRef i = k != last ? LLVMBuildURem(g->b, flat, dim, "") : flat;
        if (k != last)
            flat = LLVMBuildUDiv(g->b, flat, dim, "");
        if (!summed)
            g->bidx[k] = i;
        *a_off = madd(g, *a_off, i, d->a.bstride[k]);
        *b_off = madd(g, *b_off, i, d->b.bstride[k]);
    }
}

/* The scratch layout: the B panel (KC x NR), then the packed A block (MC rounded to MR, x KC)
 * if A is packed, then a gathered B's batch block; 64 bytes of slack to align them. */
static int64_t a_block_elems(const gemm_plan *p, bool pack_a)
{
    int64_t kc = p->kc > 0 ? p->kc : 1;
    return pack_a ? round_up(round_up(p->mc, p->mr) * kc, 16) : 0;
}

static size_t scratch_bytes(const gemm_plan *p, const gemm_desc *d, int64_t esize, bool pack_a)
{
    int64_t kc = p->kc > 0 ? p->kc : 1;
    int64_t b = round_up(kc * p->nr * esize, 64);
    return (size_t)(64 + b + a_block_elems(p, pack_a) * esize + round_up(d->b.block * esize, 64));
}

LLVMValueRef gemm_emit(emit_ctx *e, jit_module *m, const gemm_desc *d, int64_t *outer,
                       int64_t *align, size_t *scratch)
{
    if (d->dtype == JG_I32 || d->m < 0 || d->n < 0 || d->k < 0 || d->batch_ndim < 0 ||
        d->batch_ndim > JG_MAX_DIMS || e->width < 1 || e->width > 32)
        return NULL;
    gen g = { .e = e, .d = d };
    make_plan(&g.p, d, e->width);
    if (g.p.mr > MAX_MR || 2 * g.p.nr > MAX_LANES)
        return NULL;
    LLVMValueRef fn = emit_kernel_begin(e, m);
    g.b = e->b;
    g.i64 = LLVMInt64TypeInContext(m->ctx);
    g.et = emit_scalar_type(e, d->dtype);
    g.vt = emit_vector_type(e, d->dtype);
    g.esize = (int64_t)jg_dtype_size(d->dtype);
    const gemm_plan *p = &g.p;
    *outer = p->n_batch * p->n_ib * p->n_jb;
    g.n_steps = p->n_red * p->n_kb;
    *align = 1;
    /* A with unit row stride (a transposed operand) is read in place: each k step of a
     * micro-panel is MR contiguous elements already, as packing would make them. */
    g.pack_a = d->a.rs != 1;
    g.a_rs = g.pack_a ? 1 : d->a.rs;
    g.a_ps = g.pack_a ? p->mr : d->a.cs;
    /* With one row panel (a batch-1 layer: M <= MR) each packed B panel would be read
     * once: B with contiguous rows and whole column panels is read in place, one pass over
     * the weights instead of three. */
    g.pack_b = !(d->m <= p->mr && d->b.cs == 1 && d->b.block == 0 && d->n % p->nr == 0);
    g.b_ps = g.pack_b ? p->nr : d->b.rs;
    *scratch = scratch_bytes(p, d, g.esize, g.pack_a);
    if (*outer == 0) {
        emit_kernel_end(e);
        return fn;
    }

    /* Accumulators live in allocas of the entry block; SROA turns them into registers. */
    for (int r = 0; r < p->mr; r++)
        for (int v = 0; v < p->nv; v++)
            g.acc[r][v] = LLVMBuildAlloca(g.b, g.vt, "acc");
    g.A = emit_slot_ptr(e, d->a.slot, d->dtype);
    g.B = emit_slot_ptr(e, d->b.slot, d->dtype);
    g.C = emit_slot_ptr(e, d->out_slot, d->dtype);
    LLVMValueRef begin = LLVMGetParam(fn, 1), end = LLVMGetParam(fn, 2);
    LLVMTypeRef i8 = LLVMInt8TypeInContext(m->ctx);
    LLVMValueRef raw = LLVMGetParam(fn, 3);
    LLVMValueRef mis = LLVMBuildAnd(g.b, LLVMBuildPtrToInt(g.b, raw, g.i64, ""), c64(&g, 63), "");
    LLVMValueRef pad = LLVMBuildAnd(g.b, LLVMBuildSub(g.b, c64(&g, 64), mis, ""), c64(&g, 63), "");
    LLVMValueRef base = LLVMBuildGEP2(g.b, i8, raw, &pad, 1, "");
    g.sb = LLVMBuildBitCast(g.b, base, LLVMPointerType(g.et, 0), "");
    int64_t b_panel = round_up((p->kc > 0 ? p->kc : 1) * p->nr * g.esize, 64) / g.esize;
    g.sa = elem_ptr(&g, g.sb, c64(&g, b_panel));
    if (d->b.block > 0) {
        g.gb = elem_ptr(&g, g.sa, c64(&g, a_block_elems(p, g.pack_a)));
        g.gb_at = LLVMBuildAlloca(g.b, g.i64, "gb_at");
        g.gb_lo = LLVMBuildAlloca(g.b, g.i64, "gb_lo");
        LLVMBuildStore(g.b, c64(&g, -1), g.gb_at);
        LLVMBuildStore(g.b, c64(&g, -1), g.gb_lo);
        gemm_runs_tables(&g);
    }

    loop lu;
    loop_begin(e, &lu, begin, end, c64(&g, 1), "tile");
    LLVMValueRef u = lu.i;
    LLVMValueRef jb = LLVMBuildURem(g.b, u, c64(&g, p->n_jb), "jb");
    LLVMValueRef t = LLVMBuildUDiv(g.b, u, c64(&g, p->n_jb), "");
    LLVMValueRef ib = LLVMBuildURem(g.b, t, c64(&g, p->n_ib), "ib");
    LLVMValueRef bi = LLVMBuildUDiv(g.b, t, c64(&g, p->n_ib), "b");
    g.c_off = mul(&g, bi, d->m * d->n);
    LLVMValueRef a_off = c64(&g, 0), b_off = c64(&g, 0);
    batch_offsets(&g, bi, false, &a_off, &b_off);
    LLVMValueRef i0 = mul(&g, ib, p->mc), j0 = mul(&g, jb, p->nc);
    LLVMValueRef last_ib = LLVMBuildICmp(g.b, LLVMIntEQ, ib, c64(&g, p->n_ib - 1), "");
    LLVMValueRef last_jb = LLVMBuildICmp(g.b, LLVMIntEQ, jb, c64(&g, p->n_jb - 1), "");
    /* Full MR row panels and NR column panels of the tile; the remainders exist only in the
     * last block, with m % MR rows and n % NR columns. */
    int64_t m_last = d->m - (p->n_ib - 1) * p->mc, n_last = d->n - (p->n_jb - 1) * p->nc;
    LLVMValueRef full_rows = LLVMBuildSelect(g.b, last_ib, c64(&g, m_last / p->mr),
                                             c64(&g, p->mc / p->mr), "");
    LLVMValueRef full_cols = LLVMBuildSelect(g.b, last_jb, c64(&g, n_last / p->nr),
                                             c64(&g, p->nc / p->nr), "");
    int rest_n = (int)(d->n % p->nr);

    loop lk;
    loop_begin(e, &lk, c64(&g, 0), c64(&g, g.n_steps), c64(&g, 1), "step");
    g.pc = lk.i;
    LLVMValueRef kb = p->n_red > 1 ? LLVMBuildURem(g.b, lk.i, c64(&g, p->n_kb), "kb") : lk.i;
    LLVMValueRef step_a = a_off, step_b = b_off;
    if (p->n_red > 1)
        batch_offsets(&g, LLVMBuildUDiv(g.b, lk.i, c64(&g, p->n_kb), ""), true, &step_a,
                      &step_b);
    LLVMValueRef k0 = mul(&g, kb, p->kc);
    LLVMValueRef kc = LLVMBuildSelect(
        g.b, LLVMBuildICmp(g.b, LLVMIntEQ, kb, c64(&g, p->n_kb - 1), ""), c64(&g, p->kc_last),
        c64(&g, p->kc), "kc");
    g.a_k = madd(&g, step_a, k0, d->a.cs);
    LLVMValueRef b_src = g.B;
    if (g.gb) { /* the batch's block (or the tile's rows of it); offsets within it */
        LLVMValueRef lo = c64(&g, 0), hi = c64(&g, d->b.block);
        if (d->b.cs > d->b.rs) {
            /* columns [j0, j0 + cols) over all K: [j0 cs, (j0 + cols - 1) cs + (K-1) rs] */
            LLVMValueRef cols = LLVMBuildSelect(g.b, last_jb, c64(&g, n_last), c64(&g, p->nc), "");
            lo = mul(&g, j0, d->b.cs);
            hi = add(&g, mul(&g, add(&g, j0, LLVMBuildSub(g.b, cols, c64(&g, 1), "")), d->b.cs),
                     c64(&g, (d->k - 1) * d->b.rs + 1));
        }
        gemm_gather_block(&g, step_b, lo, hi, d->b.cs <= d->b.rs && d->b.block % d->b.nidx == 0);
        b_src = g.gb;
        step_b = c64(&g, 0);
    }
    if (g.pack_a)
        pack_a_block(&g, i0, full_rows, last_ib, kc);
    /* Column panels: pack B's, then run the row panels against it. */
    LLVMValueRef b_k = madd(&g, step_b, k0, d->b.rs);
    loop lc;
    loop_begin(e, &lc, c64(&g, 0), full_cols, c64(&g, 1), "jr");
    LLVMValueRef j = madd(&g, j0, lc.i, p->nr);
    g.pb = g.pack_b ? g.sb : elem_ptr(&g, b_src, madd(&g, b_k, j, d->b.cs));
    if (g.pack_b)
        pack_panel(&g, b_src, madd(&g, b_k, j, d->b.cs), d->b.rs, d->b.cs, p->nr, p->nr, kc,
                   g.sb);
    row_panels(&g, p->nv, p->w, i0, full_rows, last_ib, kc, j);
    loop_end(e, &lc);
    if (rest_n) {
        LLVMBasicBlockRef cont = if_begin(&g, last_jb);
        LLVMValueRef jt = madd(&g, j0, full_cols, p->nr);
        pack_panel(&g, b_src, madd(&g, b_k, jt, d->b.cs), d->b.rs, d->b.cs, p->nr, rest_n, kc,
                   g.sb); /* never in place: n % NR != 0 */
        g.pb = g.sb;
        int nv = (rest_n + p->w - 1) / p->w, last = rest_n - (nv - 1) * p->w;
        row_panels(&g, nv, last, i0, full_rows, last_ib, kc, jt);
        if_end(&g, cont);
    }
    loop_end(e, &lk);
    loop_end(e, &lu);
    emit_kernel_end(e);
    free(g.run_list);
    return fn;
}
