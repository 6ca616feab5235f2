/* What the GEMM emitter's files share (private to gemm.c and gemm_gather.c): the tile plan,
 * the emitter's state and the small IR helpers. */
#ifndef JG_JIT_GEMM_IR_H
#define JG_JIT_GEMM_IR_H

#include "jit/gemm.h"
#include "jit/index_runs.h"

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
    bool pack_b;             /* B is packed; else the micro-kernel reads its rows in place */
    int64_t b_ps;            /* element stride of the micro-kernel's B along k */
    LLVMValueRef pb;         /* the current column panel of B (T*): packed, or in place */
    LLVMValueRef a_k;        /* element offset of A[b][0][k0] */
} gen;

static inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
static inline int64_t round_up(int64_t a, int64_t b) { return cdiv(a, b) * b; }

/* ---- small IR helpers ---------------------------------------------------------------- */

static inline LLVMValueRef c64(gen *g, int64_t v)
{
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}

static inline LLVMValueRef c32(gen *g, int v)
{
    return LLVMConstInt(LLVMInt32TypeInContext(g->e->m->ctx), (unsigned long long)v, 0);
}

static inline LLVMValueRef add(gen *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildAdd(g->b, a, b, "");
}

static inline LLVMValueRef mul(gen *g, LLVMValueRef a, int64_t c)
{
    return c == 1 ? a : LLVMBuildMul(g->b, a, c64(g, c), "");
}

/* a + i * c, for an i64 value i and a constant c. */
static inline LLVMValueRef madd(gen *g, LLVMValueRef a, LLVMValueRef i, int64_t c)
{
    return c == 0 ? a : add(g, a, mul(g, i, c));
}

/* Not inbounds: an index run's masked load may start before its row (index_runs.h). */
static inline LLVMValueRef elem_ptr(gen *g, LLVMValueRef p, LLVMValueRef at)
{
    return LLVMBuildGEP2(g->b, g->et, p, &at, 1, "");
}

static inline LLVMTypeRef lanes_type(gen *g, int n) { return LLVMVectorType(g->et, (unsigned)n); }

static inline LLVMValueRef as_vec_ptr(gen *g, LLVMValueRef p, LLVMTypeRef vt)
{
    return LLVMBuildBitCast(g->b, p, LLVMPointerType(vt, 0), "");
}

static inline LLVMValueRef load_vec(gen *g, LLVMTypeRef vt, LLVMValueRef p, LLVMValueRef at,
                             unsigned align)
{
    LLVMValueRef v = LLVMBuildLoad2(g->b, vt, as_vec_ptr(g, elem_ptr(g, p, at), vt), "");
    LLVMSetAlignment(v, align);
    return v;
}

static inline void store_vec(gen *g, LLVMValueRef v, LLVMValueRef p, LLVMValueRef at,
                             unsigned align)
{
    LLVMValueRef s = LLVMBuildStore(g->b, v, as_vec_ptr(g, elem_ptr(g, p, at), LLVMTypeOf(v)));
    LLVMSetAlignment(s, align);
}

/* <n x i1>: lane < valid. */
static inline LLVMValueRef const_mask(gen *g, int n, int valid)
{
    LLVMValueRef bits[MAX_LANES];
    LLVMTypeRef i1 = LLVMInt1TypeInContext(g->e->m->ctx);
    for (int i = 0; i < n; i++)
        bits[i] = LLVMConstInt(i1, i < valid, 0);
    return LLVMConstVector(bits, (unsigned)n);
}

/* if (cond) { ... }: returns the continuation block; the builder is left in the `then` block. */
static inline LLVMBasicBlockRef if_begin(gen *g, LLVMValueRef cond)
{
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(g->e->m->ctx, g->e->fn, "then");
    LLVMBasicBlockRef cont = LLVMAppendBasicBlockInContext(g->e->m->ctx, g->e->fn, "endif");
    LLVMBuildCondBr(g->b, cond, then, cont);
    LLVMPositionBuilderAtEnd(g->b, then);
    return cont;
}

static inline void if_end(gen *g, LLVMBasicBlockRef cont)
{
    LLVMBuildBr(g->b, cont);
    LLVMPositionBuilderAtEnd(g->b, cont);
}

/* A gathered B (gemm_gather.c): the run tables, made once before the tile loop (sets g->runs,
 * g->run_at, g->n_runs, g->fill and, when few, g->run_list, which gemm_emit frees). */
HIDDEN void gemm_runs_tables(gen *g);
/* Makes elements [lo, hi) of g->gb hold those of the gathered batch block at virtual offset
 * voff; whole_rows: [lo, hi) is the whole block, of whole rows of the index table. */
HIDDEN void gemm_gather_block(gen *g, LLVMValueRef voff, LLVMValueRef lo, LLVMValueRef hi,
                              bool whole_rows);

#endif
