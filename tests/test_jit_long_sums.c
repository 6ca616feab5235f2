/* Long f32 sums in the JIT stay exact where they can be and accurate where they cannot: every
 * reduction kernel's loop structure (all axes; the innermost kept, in chunks; windowed; the
 * multi-output kernels of sibling fusion, as batchnorm's statistics use them) sums 2^29 ones
 * to 2^29 (an f32 lane accumulator stops at 2^24), and sums of 2^24 to 10^8 random values are
 * within f32 rounding of the exact sums. The ones come from a one-element input broadcast
 * inside the kernel, so no 2 GiB buffer exists (multi-output kernels need a real buffer: they
 * get random values). */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(jit_long_sums, .timeout = 240);

static float *uniform(int64_t n, uint64_t seed);

/* Compiles and runs outs (over the input "one" = 1), JIT, 2 threads; returns the values and
 * the number of kernels. */
static int run(jg_graph *g, jg_node *const *outs, int n, float *const *vals,
               const size_t *bytes)
{
    jg_program *p = jg_compile(g, outs, n, &(jg_opts){ .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    float one = 1;
    cr_assert_eq(jg_program_set(p, "one", &one, sizeof one), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    for (int i = 0; i < n; i++)
        cr_assert_eq(jg_program_get(p, i, vals[i], bytes[i]), JG_OK, "%s", jg_errmsg(p));
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    jg_program_free(p);
    return st.kernels;
}

/* The input of ones, broadcast to shape s. */
static jg_node *ones(jg_graph *g, jg_shape s)
{
    jg_shape unit = { .ndim = s.ndim, .dim = { 1, 1, 1, 1 } };
    jg_node *one = jg_input(g, "one", JG_F32, jg_shape(1));
    return jg_broadcast_to(jg_reshape(one, unit), s);
}

Test(jit_long_sums, all_axes_of_2_pow_29_ones)
{
    jg_graph *g = jg_graph_new();
    jg_node *s = jg_sum(ones(g, jg_shape(1 << 14, 1 << 15)), JG_ALL_AXES, false);
    float v;
    run(g, &s, 1, (float *[]){ &v }, (size_t[]){ sizeof v });
    cr_assert_eq(v, (float)(1 << 29), "sum %.1f, want 2^29 = %d", v, 1 << 29);
    jg_graph_free(g);
}

Test(jit_long_sums, innermost_kept_in_chunks)
{
    /* column sums of [2^25, 16]: each column 2^25 ones, accumulated chunk by chunk */
    jg_graph *g = jg_graph_new();
    jg_node *s = jg_sum(ones(g, jg_shape(1 << 25, 16)), jg_axes(0), false);
    float v[16];
    run(g, &s, 1, (float *[]){ v }, (size_t[]){ sizeof v });
    for (int i = 0; i < 16; i++)
        cr_assert_eq(v[i], (float)(1 << 25), "column %d: %.1f, want 2^25", i, v[i]);
    jg_graph_free(g);
}

/* Column sums of [rows, cols] over axis 0 against the rounded exact sums. */
static void column_sums(int rows, int cols)
{
    jg_shape s = jg_shape(rows, cols);
    float *x = uniform(jg_shape_numel(s), 5);
    double *want = calloc((size_t)cols, sizeof *want);
    cr_assert(want);
    for (int64_t i = 0; i < jg_shape_numel(s); i++)
        want[i % cols] += x[i];
    jg_graph *g = jg_graph_new();
    jg_node *in = jg_input(g, "x", JG_F32, s);
    jg_node *y = jg_sum(in, jg_axes(0), false);
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "x", x, sizeof(float) * (size_t)jg_shape_numel(s)), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK);
    float *got = malloc(sizeof(float) * (size_t)cols);
    cr_assert_eq(jg_program_get(p, 0, got, sizeof(float) * (size_t)cols), JG_OK);
    int bad = 0;
    for (int i = 0; i < cols; i++)
        bad += got[i] != (float)want[i]; /* terms of 24 bits: exact in f64, then rounded */
    cr_assert_eq(bad, 0, "[%d, %d]: %d column sums differ from the rounded exact sums", rows,
                 cols, bad);
    jg_program_free(p);
    jg_graph_free(g);
    free(got);
    free(want);
    free(x);
}

Test(jit_long_sums, innermost_kept_in_blocks_of_chunks)
{
    /* 2^20 columns: their f64 accumulators (8 MiB) are taken a 1 MiB block of chunks at a
     * time, each thread from its own first chunk; 3 columns: a masked, partial chunk */
    column_sums(8, 1 << 20);
    column_sums(1 << 16, 3);
    column_sums(300, 1000);
}

Test(jit_long_sums, windowed)
{
    /* the reduced innermost run is 2 long (a window): lanes run along the kept dim */
    jg_graph *g = jg_graph_new();
    jg_node *s = jg_sum(ones(g, jg_shape(1 << 24, 16, 2)), jg_axes(0, 2), false);
    float v[16];
    run(g, &s, 1, (float *[]){ v }, (size_t[]){ sizeof v });
    for (int i = 0; i < 16; i++)
        cr_assert_eq(v[i], (float)(1 << 25), "element %d: %.1f, want 2^25", i, v[i]);
    jg_graph_free(g);
}

/* n uniform values in [0, 1), each k / 2^24 (so f64 sums of up to 2^29 of them are exact). */
static float *uniform(int64_t n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)n);
    cr_assert(x);
    uint64_t r = seed;
    for (int64_t i = 0; i < n; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)(r >> 40) / (float)(1 << 24);
    }
    return x;
}

/* Runs the multi-output program of `outs` over input "x" (shape s, values x) and checks it is
 * one kernel; the outputs into vals. */
static void run_multi(jg_graph *g, jg_node *const *outs, int n, const float *x, jg_shape s,
                      float *const *vals, const size_t *bytes)
{
    jg_program *p = jg_compile(g, outs, n, &(jg_opts){ .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    cr_assert_eq(st.kernels, 1, "the sums are one multi-output kernel, not %d", st.kernels);
    cr_assert_eq(jg_program_set(p, "x", x, sizeof(float) * (size_t)jg_shape_numel(s)), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    for (int i = 0; i < n; i++)
        cr_assert_eq(jg_program_get(p, i, vals[i], bytes[i]), JG_OK);
    jg_program_free(p);
}

/* |got - want| / want within f32's rounding of the exact value (half an ulp: 2^-24). */
static void expect_rounded(float got, double want, const char *what, int i)
{
    double rel = fabs(got - want) / want;
    cr_expect_leq(rel, 0x1p-24, "%s %d: %.9g, exact %.9g, relative error %.3g", what, i, got,
                  want, rel);
}

Test(jit_long_sums, multi_output_channel_statistics)
{
    /* sum and sum of squares of [N, C, HW] over N and HW, as batchnorm's statistics: one
     * multi-output kernel, a register accumulator per row and a partial element per block */
    jg_shape s = jg_shape(1 << 6, 4, 1 << 16);
    float *x = uniform(jg_shape_numel(s), 7);
    double sum[4] = { 0 }, sq[4] = { 0 };
    for (int64_t i = 0; i < jg_shape_numel(s); i++) {
        int c = (int)(i >> 16 & 3);
        sum[c] += x[i];
        sq[c] += (double)x[i] * x[i];
    }
    jg_graph *g = jg_graph_new();
    jg_node *in = jg_input(g, "x", JG_F32, s);
    jg_node *outs[2] = { jg_sum(in, jg_axes(0, 2), false),
                         jg_sum(jg_square(in), jg_axes(0, 2), false) };
    float a[4], b[4];
    run_multi(g, outs, 2, x, s, (float *[]){ a, b }, (size_t[]){ sizeof a, sizeof b });
    for (int c = 0; c < 4; c++) {
        expect_rounded(a[c], sum[c], "channel sum", c);
        /* the squares are rounded to f32 before they are summed: allow for that */
        cr_expect_leq(fabs(b[c] - sq[c]) / sq[c], 0x1p-23, "channel %d: sum of squares %.9g, "
                      "exact %.9g", c, b[c], sq[c]);
    }
    jg_graph_free(g);
    free(x);
}

Test(jit_long_sums, multi_output_column_sums)
{
    /* two column sums of [N, C] with the innermost dim kept: partial rows per block */
    jg_shape s = jg_shape(1 << 22, 4);
    float *x = uniform(jg_shape_numel(s), 11);
    double sum[4] = { 0 };
    for (int64_t i = 0; i < jg_shape_numel(s); i++)
        sum[i & 3] += x[i];
    jg_graph *g = jg_graph_new();
    jg_node *in = jg_input(g, "x", JG_F32, s);
    jg_node *outs[2] = { jg_sum(in, jg_axes(0), false), jg_sum(jg_scale(in, 2), jg_axes(0), false) };
    float a[4], b[4];
    run_multi(g, outs, 2, x, s, (float *[]){ a, b }, (size_t[]){ sizeof a, sizeof b });
    for (int c = 0; c < 4; c++) {
        expect_rounded(a[c], sum[c], "column", c);
        expect_rounded(b[c], 2 * sum[c], "doubled column", c);
    }
    jg_graph_free(g);
    free(x);
}

Test(jit_long_sums, ten_to_the_eight_random_values)
{
    enum { N = 100000000 };
    float *x = uniform(N, 0x9e3779b97f4a7c15ULL);
    double exact = 0; /* every term is k / 2^24 with k < 2^24: the f64 sum is exact */
    for (int i = 0; i < N; i++)
        exact += x[i];
    jg_graph *g = jg_graph_new();
    jg_node *in = jg_input(g, "x", JG_F32, jg_shape(N));
    jg_node *s = jg_sum(in, JG_ALL_AXES, false);
    jg_program *p = jg_compile(g, &s, 1, &(jg_opts){ .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "x", x, sizeof(float) * N), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK);
    float v;
    cr_assert_eq(jg_program_get(p, 0, &v, sizeof v), JG_OK);
    double rel = fabs(v - exact) / exact;
    /* the f32 result can be no closer than its rounding: half an ulp, 2^-24 relative */
    cr_assert_leq(rel, 0x1p-24, "sum %.9g, exact %.9g: relative error %.3g", v, exact, rel);
    jg_program_free(p);
    jg_graph_free(g);
    free(x);
}
