/* The GEMM kernel emitter (src/jit/gemm.c): JIT'd kernels called directly through the
 * uniform ABI, against a naive triple loop in double. Shapes around the tile sizes (1, 15,
 * 16, 17, 33, 1023), transposed and strided operands, broadcast batches, a bias + relu
 * epilogue, batch dimensions summed into C, vector widths 16, 8 and 1, f32 and f64, whole
 * and split outer ranges. */
#include "jit/gemm.h"
#include "jit/index_runs.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

TestSuite(gemm, .timeout = 60);

typedef struct gemm_case {
    int vector_bits;        /* jit_target.vector_bits: 0 = widest */
    jg_dtype t;
    int64_t m, n, k;
    bool ta, tb;            /* A / B stored transposed (column-major) */
    int64_t gap;            /* element spacing: 1 normally, 2 = strided views (gathers) */
    int batch_ndim;
    int64_t batch_dim[2];
    bool bcast_a, bcast_b;  /* A broadcast over batch dim 0, B over the last batch dim */
    bool epilogue;          /* C = relu(A x B + bias[j] + row[i] + 0.25 * b0) */
    uint32_t batch_sum;     /* batch dims summed into C (gemm_desc.batch_sum; no epilogue) */
} gemm_case;

/* Buffer slots, deliberately not in order. */
enum { SLOT_A = 0, SLOT_BIAS = 1, SLOT_C = 2, SLOT_ROW = 3, SLOT_B = 4, N_SLOTS = 5 };

typedef struct epi_ctx {
    jg_dtype t;
    int batch_ndim;
} epi_ctx;

/* The test epilogue, written with the emit helpers: a vector load (the column), a uniform
 * load (the row), an index converted to a value (the batch), relu. */
static LLVMValueRef bias_relu(void *ctx, emit_ctx *e, LLVMValueRef acc, const kidx *idx)
{
    const epi_ctx *c = ctx;
    const kidx *row = &idx[c->batch_ndim], *col = &idx[c->batch_ndim + 1];
    LLVMValueRef bias = emit_load(e, emit_slot_ptr(e, SLOT_BIAS, c->t), c->t, col->base, col->lane);
    LLVMValueRef rb = emit_load(e, emit_slot_ptr(e, SLOT_ROW, c->t), c->t, row->base, row->lane);
    LLVMValueRef x = LLVMBuildFAdd(e->b, LLVMBuildFAdd(e->b, acc, bias, ""), rb, "");
    if (c->batch_ndim > 0) {
        LLVMValueRef b0 = LLVMBuildSIToFP(e->b, idx[0].base, emit_scalar_type(e, c->t), "");
        LLVMValueRef quarter = emit_splat_const(e, c->t, 0.25);
        x = LLVMBuildFAdd(e->b, x, LLVMBuildFMul(e->b, emit_splat(e, b0), quarter, ""), "");
    }
    LLVMTypeRef vt = emit_vector_type(e, c->t);
    LLVMValueRef args[2] = { x, emit_splat_const(e, c->t, 0.0) };
    return emit_intrinsic(e, "llvm.maxnum", &vt, 1, args, 2);
}

/* Buffers end where an inaccessible page begins: a kernel reading past the end crashes. */
typedef struct guarded {
    void *base;
    size_t span;
} guarded;

static guarded guards[16];
static int n_guards;

static void *guarded_alloc(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = (bytes + page - 1) / page * page + page;
    void *base = NULL;
    cr_assert_eq(posix_memalign(&base, page, span), 0);
    cr_assert_eq(mprotect((char *)base + span - page, page, PROT_NONE), 0);
    guards[n_guards++] = (guarded){ base, span };
    return (char *)base + span - page - bytes;
}

static void guarded_free_all(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < n_guards; i++) {
        mprotect((char *)guards[i].base + guards[i].span - page, page, PROT_READ | PROT_WRITE);
        free(guards[i].base);
    }
    n_guards = 0;
}

static uint64_t rng_state;

static double uniform(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static double get(const void *p, jg_dtype t, int64_t i)
{
    return t == JG_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void put(void *p, jg_dtype t, int64_t i, double v)
{
    if (t == JG_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* An operand of logical shape [batch..., r, c]; per batch index it holds r x c values spaced
 * `gap` apart, row-major or (transposed) column-major. Broadcast batch dims have extent 1. */
typedef struct operand {
    void *data;
    gemm_operand op;
} operand;

static operand make_operand(const gemm_case *c, int slot, int64_t r, int64_t cols, bool trans,
                            int bcast_dim)
{
    operand o = { .op = { .slot = slot } };
    int64_t per = r * cols * c->gap, total = per;
    o.op.rs = trans ? c->gap : cols * c->gap;
    o.op.cs = trans ? r * c->gap : c->gap;
    for (int d = c->batch_ndim - 1; d >= 0; d--) {
        bool b = d == bcast_dim;
        o.op.bstride[d] = b ? 0 : total;
        total *= b ? 1 : c->batch_dim[d];
    }
    size_t es = jg_dtype_size(c->t);
    o.data = guarded_alloc((size_t)total * es);
    for (int64_t i = 0; i < total; i++)
        put(o.data, c->t, i, uniform());
    return o;
}

static void check(const gemm_case *c, const void *got, const double *want, const double *scale,
                  int64_t count, const char *how)
{
    double tol = c->t == JG_F32 ? 1e-5 : 1e-12;
    for (int64_t i = 0; i < count; i++) {
        double g = get(got, c->t, i);
        /* Relative to the sum of |terms| (the scale of a dot product's rounding error). */
        cr_assert(fabs(g - want[i]) <= tol * fmax(1.0, scale[i]),
                  "%s: C[%lld] = %.9g, want %.9g (m %lld n %lld k %lld ta %d tb %d bits %d)",
                  how, (long long)i, g, want[i], (long long)c->m, (long long)c->n,
                  (long long)c->k, c->ta, c->tb, c->vector_bits);
    }
}

static void run_case(const gemm_case *c)
{
    char err[512];
    jit_target target = { .vector_bits = c->vector_bits };
    jit_session *s = jit_session_new(&target, err, sizeof err);
    cr_assert(s, "%s", err);
    int esize = (int)jg_dtype_size(c->t);
    int width = jit_vector_bits(s) / (8 * esize);
    emit_ctx e = { .width = width < 1 ? 1 : width };
    jit_module m;
    cr_assert_eq(jit_module_new(s, &m, "gemm"), JG_OK);
    rng_state = (uint64_t)(c->m * 1000003 + c->n * 1009 + c->k + c->ta * 7 + c->tb * 11);

    int last = c->batch_ndim - 1;
    operand a = make_operand(c, SLOT_A, c->m, c->k, c->ta, c->bcast_a ? 0 : -1);
    operand b = make_operand(c, SLOT_B, c->k, c->n, c->tb, c->bcast_b ? last : -1);
    epi_ctx ectx = { c->t, c->batch_ndim };
    gemm_desc d = { .dtype = c->t, .batch_ndim = c->batch_ndim, .m = c->m, .n = c->n, .k = c->k,
                    .a = a.op, .b = b.op, .out_slot = SLOT_C, .batch_sum = c->batch_sum,
                    .epilogue = c->epilogue ? bias_relu : NULL, .epilogue_ctx = &ectx };
    int64_t nb = 1, n_out = 1; /* batch indices; those with a C of their own */
    for (int i = 0; i < c->batch_ndim; i++) {
        nb *= d.batch_dim[i] = c->batch_dim[i];
        n_out *= c->batch_sum >> i & 1 ? 1 : c->batch_dim[i];
    }

    int64_t outer = -1, align = -1;
    size_t scratch = 0;
    LLVMValueRef fn = gemm_emit(&e, &m, &d, &outer, &align, &scratch);
    cr_assert(fn);
    cr_assert(outer >= 1 && align >= 1 && scratch > 0);
    void *addr = NULL;
    jit_compile_info info;
    cr_assert_eq(jit_compile(s, &m, fn, false, &addr, &info, err, sizeof err), JG_OK, "%s", err);
    jit_kernel_fn k = (jit_kernel_fn)addr;

    int64_t count = n_out * c->m * c->n;
    void *bias = guarded_alloc((size_t)c->n * esize), *row = guarded_alloc((size_t)c->m * esize);
    for (int64_t j = 0; j < c->n; j++)
        put(bias, c->t, j, uniform());
    for (int64_t i = 0; i < c->m; i++)
        put(row, c->t, i, uniform());
    double *want = calloc((size_t)count, sizeof *want);
    double *scale = calloc((size_t)count, sizeof *scale);
    for (int64_t bi = 0; bi < nb; bi++) {
        int64_t ao = 0, bo = 0, rest = bi, b0 = bi, co = 0, place = 1;
        for (int dd = c->batch_ndim - 1; dd >= 0; dd--) {
            int64_t x = rest % c->batch_dim[dd];
            rest /= c->batch_dim[dd];
            ao += x * a.op.bstride[dd];
            bo += x * b.op.bstride[dd];
            b0 = x;
            if (!(c->batch_sum >> dd & 1)) {
                co += x * place;
                place *= c->batch_dim[dd];
            }
        }
        for (int64_t i = 0; i < c->m; i++)
            for (int64_t j = 0; j < c->n; j++) {
                double sum = 0, abs = 0;
                for (int64_t p = 0; p < c->k; p++) {
                    double t = get(a.data, c->t, ao + i * a.op.rs + p * a.op.cs) *
                               get(b.data, c->t, bo + p * b.op.rs + j * b.op.cs);
                    sum += t;
                    abs += fabs(t);
                }
                if (c->epilogue) {
                    sum += get(bias, c->t, j) + get(row, c->t, i) + (c->batch_ndim ? 0.25 * b0 : 0);
                    abs += 3 + 0.25 * b0;
                    sum = sum > 0 ? sum : 0;
                }
                want[(co * c->m + i) * c->n + j] += sum;
                scale[(co * c->m + i) * c->n + j] += abs;
            }
    }

    void *out = guarded_alloc((size_t)count * esize);
    /* Misaligned on purpose: the kernel aligns its panels itself. */
    char *sp = (char *)guarded_alloc(scratch + 4) + 4;
    void *bufs[N_SLOTS] = { [SLOT_A] = a.data, [SLOT_B] = b.data, [SLOT_C] = out,
                            [SLOT_BIAS] = bias, [SLOT_ROW] = row };
    for (int64_t i = 0; i < count; i++)
        put(out, c->t, i, NAN);
    cr_assert_eq(k(bufs, 0, outer, sp), 0);
    check(c, out, want, scale, count, "whole range");
    /* Three calls over parts of the range compose (some parts may be empty). */
    for (int64_t i = 0; i < count; i++)
        put(out, c->t, i, NAN);
    int64_t cut1 = outer / 3, cut2 = 2 * outer / 3;
    k(bufs, cut2, outer, sp);
    k(bufs, 0, cut1, sp);
    k(bufs, cut1, cut2, sp);
    check(c, out, want, scale, count, "split range");

    free(want);
    free(scale);
    guarded_free_all();
    jit_session_free(s);
}

/* m, n, k triples around the tile sizes, small enough for a naive reference. */
static const int64_t shapes[][3] = {
    { 1, 1, 1 },     { 16, 16, 16 },   { 15, 17, 33 }, { 17, 15, 1 },   { 33, 1, 17 },
    { 1, 33, 15 },   { 1023, 17, 33 }, { 17, 1023, 16 }, { 15, 33, 1023 }, { 1, 1023, 17 },
    { 1023, 1, 15 }, { 300, 200, 600 },
};

static void run_shapes(int bits, jg_dtype t, bool ta, bool tb, bool epilogue, int first, int count)
{
    for (int i = first; i < first + count; i++)
        run_case(&(gemm_case){ .vector_bits = bits, .t = t, .m = shapes[i][0], .n = shapes[i][1],
                               .k = shapes[i][2], .ta = ta, .tb = tb, .gap = 1,
                               .epilogue = epilogue });
}

#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

Test(gemm, f32_width16_shapes) { run_shapes(0, JG_F32, false, false, false, 0, N_SHAPES); }

Test(gemm, f32_width16_transposed_operands)
{
    run_shapes(0, JG_F32, true, false, false, 2, 4);
    run_shapes(0, JG_F32, false, true, false, 6, 4);
    run_shapes(0, JG_F32, true, true, false, 10, 2);
    run_shapes(0, JG_F32, true, true, false, 0, 1);
}

Test(gemm, f32_width16_bias_relu_epilogue_sees_the_full_sum)
{
    /* k = 1023 and 600 span several K blocks: the epilogue must run once, at the end. */
    run_shapes(0, JG_F32, false, false, true, 8, 4);
    run_shapes(0, JG_F32, false, true, true, 2, 2);
}

/* One row panel (M <= MR: a batch-1 layer) with whole column panels reads B's rows in place,
 * unpacked: K blocks accumulating into C, the epilogue, a transposed A, batch dims, and
 * vector widths 16, 8 and 1 (guarded buffers: a read past B's end faults). */
Test(gemm, a_single_row_panel_reads_b_in_place)
{
    run_case(&(gemm_case){ .t = JG_F32, .m = 1, .n = 64, .k = 33, .gap = 1 });
    run_case(&(gemm_case){ .t = JG_F32, .m = 8, .n = 96, .k = 600, .gap = 1, .epilogue = true });
    run_case(&(gemm_case){ .t = JG_F32, .m = 5, .n = 32, .k = 1, .gap = 1, .ta = true });
    run_case(&(gemm_case){ .t = JG_F32, .m = 3, .n = 64, .k = 15, .gap = 1, .batch_ndim = 1,
                           .batch_dim = { 3 }, .bcast_a = true });
    run_case(&(gemm_case){ .t = JG_F64, .m = 3, .n = 48, .k = 17, .gap = 1, .epilogue = true });
    run_case(&(gemm_case){ .vector_bits = 256, .t = JG_F32, .m = 2, .n = 48, .k = 40, .gap = 1 });
    run_case(&(gemm_case){ .vector_bits = 32, .t = JG_F64, .m = 1, .n = 6, .k = 5, .gap = 1 });
}

Test(gemm, strided_operands_use_gathers)
{
    gemm_case c = { .t = JG_F32, .m = 17, .n = 33, .k = 40, .gap = 2 };
    run_case(&c);
    c.ta = c.tb = true;
    run_case(&c);
    c.t = JG_F64;
    c.m = 33;
    c.k = 5;
    run_case(&c);
}

Test(gemm, batched_with_broadcast_batch_dims)
{
    gemm_case c = { .t = JG_F32, .m = 17, .n = 33, .k = 15, .gap = 1, .batch_ndim = 2,
                    .batch_dim = { 2, 3 }, .bcast_a = true, .epilogue = true };
    run_case(&c);
    c.bcast_a = false;
    c.bcast_b = true;
    c.tb = true;
    c.m = 1;
    run_case(&c);
    c = (gemm_case){ .t = JG_F64, .m = 15, .n = 16, .k = 300, .gap = 1, .batch_ndim = 1,
                     .batch_dim = { 5 }, .bcast_b = true, .epilogue = true };
    run_case(&c);
}

Test(gemm, batch_sums_accumulate_into_one_c)
{
    /* dW = sum_b dY[b] X[b]^T: every batch dim summed, with K blocks (k 600) and edge tiles */
    gemm_case c = { .t = JG_F32, .m = 17, .n = 33, .k = 600, .gap = 1, .batch_ndim = 1,
                    .batch_dim = { 5 }, .tb = true, .batch_sum = 1 };
    run_case(&c);
    /* the outer of two dims summed, the inner kept; A broadcast along the summed one */
    c = (gemm_case){ .t = JG_F64, .m = 15, .n = 16, .k = 7, .gap = 1, .batch_ndim = 2,
                     .batch_dim = { 3, 2 }, .bcast_a = true, .batch_sum = 1 };
    run_case(&c);
    /* the inner summed, the outer kept; one step per summed index (k < KC) */
    c = (gemm_case){ .t = JG_F32, .m = 1, .n = 40, .k = 3, .gap = 1, .batch_ndim = 2,
                     .batch_dim = { 2, 4 }, .ta = true, .batch_sum = 2 };
    run_case(&c);
    c.batch_sum = 3;
    c.vector_bits = 256;
    run_case(&c);
}

Test(gemm, f32_width8)
{
    run_shapes(256, JG_F32, false, false, false, 0, N_SHAPES);
    run_shapes(256, JG_F32, true, true, true, 2, 3);
}

Test(gemm, f32_width1)
{
    run_shapes(32, JG_F32, false, false, false, 0, 7);
    run_shapes(32, JG_F32, true, true, true, 2, 2);
}

Test(gemm, f64_widths_8_4_1)
{
    run_shapes(0, JG_F64, false, false, false, 0, N_SHAPES);
    run_shapes(0, JG_F64, true, true, true, 2, 3);
    run_shapes(256, JG_F64, false, false, true, 0, 7);
    run_shapes(256, JG_F64, true, false, false, 11, 1);
    run_shapes(32, JG_F64, false, true, true, 0, 6);
}

Test(gemm, i32_is_rejected)
{
    char err[256];
    jit_session *s = jit_session_new(&(jit_target){ 0 }, err, sizeof err);
    cr_assert(s, "%s", err);
    jit_module m;
    jit_module_new(s, &m, "gemm");
    emit_ctx e = { .width = 16 };
    gemm_desc d = { .dtype = JG_I32, .m = 4, .n = 4, .k = 4, .a = { .rs = 4, .cs = 1 },
                    .b = { .rs = 4, .cs = 1 } };
    int64_t outer, align;
    size_t scratch;
    cr_assert_null(gemm_emit(&e, &m, &d, &outer, &align, &scratch));
    jit_module_dispose(&m);
    jit_session_free(s);
}

Test(gemm, empty_sizes)
{
    /* k = 0: C = epilogue(0). */
    run_case(&(gemm_case){ .t = JG_F32, .m = 5, .n = 19, .k = 0, .gap = 1, .epilogue = true });
}

Test(gemm, empty_m)
{
    /* m = 0: nothing to split, and a call over the empty range is harmless. */
    char err[256];
    jit_session *s = jit_session_new(&(jit_target){ 0 }, err, sizeof err);
    cr_assert(s, "%s", err);
    jit_module m;
    jit_module_new(s, &m, "gemm");
    emit_ctx e = { .width = jit_vector_bits(s) / 32 };
    gemm_desc d = { .dtype = JG_F32, .m = 0, .n = 4, .k = 4, .a = { .slot = 0, .rs = 4, .cs = 1 },
                    .b = { .slot = 1, .rs = 4, .cs = 1 }, .out_slot = 2 };
    int64_t outer = -1, align = 0;
    size_t scratch = 0;
    LLVMValueRef fn = gemm_emit(&e, &m, &d, &outer, &align, &scratch);
    cr_assert(fn);
    cr_assert_eq(outer, 0);
    void *addr = NULL;
    jit_compile_info info;
    cr_assert_eq(jit_compile(s, &m, fn, false, &addr, &info, err, sizeof err), JG_OK, "%s", err);
    void *bufs[3] = { NULL, NULL, NULL };
    cr_assert_eq(((jit_kernel_fn)addr)(bufs, 0, 0, NULL), 0);
    jit_session_free(s);
}

/* The runs a gathered operand is copied by (index_runs.h): consecutive indices share a run
 * of at most w positions, positions reading the fill join any run, a break in the sequence
 * starts a new run, and a table of short runs is refused. */
Test(gemm, index_runs_split_a_padded_im2col_table)
{
    /* rows of 3 outputs with the fill (9) before and after: 9 0 1 | 2 3 9 | ... */
    double ids[12] = { 9, 0, 1, 9, 9, 5, 6, 7, 9, 2, 3, 4 };
    index_run *r;
    int64_t fill;
    int64_t n = index_runs(ids, 12, 4, 1, &r, &fill);
    cr_assert_eq(fill, 9);
    cr_assert_eq(n, 3, "%lld runs", (long long)n);
    /* 9 0 1 9 -> base -1, lanes 1 and 2; 9 5 6 7 -> base 4, lanes 1-3; 9 2 3 4 -> base 1 */
    index_run want[3] = { { 0, -1, 0x6, 4 }, { 4, 4, 0xe, 4 }, { 8, 1, 0xe, 4 } };
    for (int i = 0; i < 3; i++)
        cr_assert(r[i].dst == want[i].dst && r[i].src == want[i].src &&
                      r[i].lanes == want[i].lanes && r[i].len == want[i].len,
                  "run %d: %d %d %x %d", i, r[i].dst, r[i].src, r[i].lanes, r[i].len);
    free(r);
    /* 32 lanes: the last lane is bit 31 */
    double wide[40];
    for (int i = 0; i < 40; i++)
        wide[i] = 100 + i;
    cr_assert_eq(index_runs(wide, 40, 32, 4, &r, &fill), 2);
    cr_assert(r[0].len == 32 && r[0].lanes == 0xffffffffu && r[1].dst == 32 && r[1].len == 8);
    free(r);
    /* a stride-2 table: runs of one position, not worth copying by runs */
    double strided[16];
    for (int i = 0; i < 16; i++)
        strided[i] = 2 * i;
    cr_assert_eq(index_runs(strided, 16, 8, 4, &r, &fill), 0);
    cr_assert_null(r);
}
