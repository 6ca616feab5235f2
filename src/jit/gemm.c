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
#include "jit/gemm.h"
#include "jit/index_runs.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_MR = 16, MAX_NV = 2, MAX_LANES = 64 };

/* Tile sizes, all in elements. */
typedef struct gemm_plan {
    int w, nv, nr, mr;          /* lanes, vectors per micro-tile row, NR = nv * w, MR */
    int64_t kc, kc_last, n_kb;  /* K blocks: n_kb - 1 of kc, the last of kc_last */
    int64_t mc, n_ib, nc, n_jb; /* row and column blocks of a tile */
    int64_t n_batch;            /* batch indices with a C of their own: tiles */
    int64_t n_red;              /* batch indices summed into each C (1 without batch_sum) */
} gemm_plan;

/* The emitter's state. */
typedef struct gen {
    emit_ctx *e;
    LLVMBuilderRef b;
    const gemm_desc *d;
    gemm_plan p;
    LLVMTypeRef i64, et, vt; /* i64, T, <w x T> */
    int64_t esize;
    LLVMValueRef A, B, C;    /* T* */
    LLVMValueRef sa, sb;     /* packed A block, packed B panel (T*, 64-byte aligned) */
    LLVMValueRef gb;         /* a gathered B's current batch block (T*), or NULL */
    LLVMValueRef gb_at, gb_lo; /* i64 allocas: the virtual offset and first element in gb */
    LLVMValueRef runs, run_at; /* a gathered B's index runs (index_runs.h; i32 dst, src,
                                  lanes, len per run) and, per w positions, the run holding
                                  the first; NULL: gathered element by element */
    int64_t n_runs, fill;      /* the runs, the table's fill index (-1: none) */
    index_run *run_list;       /* the runs themselves when few enough to unroll, or NULL */
    LLVMValueRef acc[MAX_MR][MAX_NV]; /* allocas of <w x T>, promoted to registers */
    LLVMValueRef bidx[JG_MAX_DIMS];   /* batch indices of the current tile */
    LLVMValueRef c_off;      /* element offset of C[b] */
    LLVMValueRef pc;         /* the current step (summed batch index, K block) */
    int64_t n_steps;         /* n_red * n_kb */
    bool pack_a;             /* A is packed; else the micro-kernel reads it in place */
    int64_t a_rs, a_ps;      /* element strides of the micro-kernel's A: row, k */
    LLVMValueRef a_k;        /* element offset of A[b][0][k0] */
} gen;

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t round_up(int64_t a, int64_t b) { return cdiv(a, b) * b; }

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

/* ---- small IR helpers ---------------------------------------------------------------- */

static LLVMValueRef c64(gen *g, int64_t v)
{
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}

static LLVMValueRef c32(gen *g, int v)
{
    return LLVMConstInt(LLVMInt32TypeInContext(g->e->m->ctx), (unsigned long long)v, 0);
}

static LLVMValueRef add(gen *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAdd(g->b, a, b, "");
}

static LLVMValueRef mul(gen *g, LLVMValueRef a, int64_t c)
{
    return c == 1 ? a : LLVMBuildMul(g->b, a, c64(g, c), "");
}

/* a + i * c, for an i64 value i and a constant c. */
static LLVMValueRef madd(gen *g, LLVMValueRef a, LLVMValueRef i, int64_t c)
{
    return c == 0 ? a : add(g, a, mul(g, i, c));
}

/* Not inbounds: an index run's masked load may start before its row (index_runs.h). */
static LLVMValueRef elem_ptr(gen *g, LLVMValueRef p, LLVMValueRef at)
{
    return LLVMBuildGEP2(g->b, g->et, p, &at, 1, "");
}

static LLVMTypeRef lanes_type(gen *g, int n) { return LLVMVectorType(g->et, (unsigned)n); }

static LLVMValueRef as_vec_ptr(gen *g, LLVMValueRef p, LLVMTypeRef vt)
{
    return LLVMBuildBitCast(g->b, p, LLVMPointerType(vt, 0), "");
}

static LLVMValueRef load_vec(gen *g, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef at,
                             unsigned align)
{
    LLVMValueRef v = LLVMBuildLoad2(g->b, vt, as_vec_ptr(g, elem_ptr(g, p, at), vt), "");
    LLVMSetAlignment(v, align);
    return v;
}

static void store_vec(gen *g, LLVMValueRef v, LLVMValueRef p, LLVMValueRef at, unsigned align)
{
    LLVMValueRef s = LLVMBuildStore(g->b, v, as_vec_ptr(g, elem_ptr(g, p, at), LLVMTypeOf(v)));
    LLVMSetAlignment(s, align);
}

/* <n x i1>: lane < valid. */
static LLVMValueRef const_mask(gen *g, int n, int valid)
{
    LLVMValueRef bits[MAX_LANES];
    LLVMTypeRef i1 = LLVMInt1TypeInContext(g->e->m->ctx);
    for (int i = 0; i < n; i++)
        bits[i] = LLVMConstInt(i1, i < valid, 0);
    return LLVMConstVector(bits, (unsigned)n);
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

/* if (cond) { ... }: returns the continuation block; the builder is left in the `then` block. */
static LLVMBasicBlockRef if_begin(gen *g, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(g->e->m->ctx, g->e->fn, "then");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(g->e->m->ctx, g->e->fn, "endif");
    LLVMBuildCondBr(g->b, cond, then, cont);
    LLVMPositionBuilderAtEnd(g->b, then);
    return cont;
}

static void if_end(gen *g, LLVMBasicBlockRef cont)
{
    LLVMBuildBr(g->b, cont);
    LLVMPositionBuilderAtEnd(g->b, cont);
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
    unsigned valign = (unsigned)(g->p.w * g->esize);
    LLVMValueRef bv[MAX_NV];
    LLVMValueRef bat = mul(g, p, g->p.nr), aat = mul(g, p, g->a_ps);
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
    kidx idx[JG_MAX_DIMS + 2];
    for (int k = 0; k < d->batch_ndim; k++)
        idx[k] = (kidx){ g->bidx[k], 0 };
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
    micro_tile(g, mr, nv, last, pa, g->sb, kc, madd(g, i0, lr.i, mr), j);
    loop_end(g->e, &lr);
    int rest = (int)(g->d->m % mr);
    if (rest) {
        LLVMBasicBlockRef cont = if_begin(g, tail_rows);
        LLVMValueRef pa_tail = a_panel(g, i0, full_rows);
        micro_tile(g, rest, nv, last, pa_tail, g->sb, kc, madd(g, i0, full_rows, mr), j);
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
static void gather_block(gen *g, LLVMValueRef voff, LLVMValueRef lo, LLVMValueRef hi,
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
static void runs_tables(gen *g)
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
        runs_tables(&g);
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
        gather_block(&g, step_b, lo, hi, d->b.cs <= d->b.rs && d->b.block % d->b.nidx == 0);
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
    pack_panel(&g, b_src, madd(&g, b_k, j, d->b.cs), d->b.rs, d->b.cs, p->nr, p->nr, kc, g.sb);
    row_panels(&g, p->nv, p->w, i0, full_rows, last_ib, kc, j);
    loop_end(e, &lc);
    if (rest_n) {
        LLVMBasicBlockRef cont = if_begin(&g, last_jb);
        LLVMValueRef jt = madd(&g, j0, full_cols, p->nr);
        pack_panel(&g, b_src, madd(&g, b_k, jt, d->b.cs), d->b.rs, d->b.cs, p->nr, rest_n, kc,
                   g.sb);
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
