/* The fusion pass: how many kernels known graphs compile to, with fusion on and off, and
 * what a program shows of its kernels (groups, DOT, IR, assembly, profile, statistics). */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(fuse);

static int kernels_off(jg_graph *g, jg_node **outs, int n, bool fusion, const char *off)
{
    return t_stats(g, outs, n, &(jg_opts){ .no_fusion = !fusion, .num_threads = 1,
                                           .passes_off = off }).kernels;
}

static int kernels_of(jg_graph *g, jg_node **outs, int n, bool fusion)
{
    return kernels_off(g, outs, n, fusion, NULL);
}

static char *dump_of(jg_program *p, void (*fn)(const jg_program *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    fn(p, f);
    fclose(f);
    return buf;
}

Test(fuse, an_elementwise_chain_is_one_kernel)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(64, 100));
    jg_node *a = jg_param(g, "a", jg_shape(100), jg_constant(2));
    jg_node *b = jg_param(g, "b", jg_shape(100), jg_constant(1));
    jg_node *y = jg_relu(jg_add(jg_mul(x, a), b));
    cr_assert_eq(kernels_of(g, &y, 1, true), 1);
    cr_assert_eq(kernels_of(g, &y, 1, false), 3, "mul, add and relu each alone");
    jg_graph_free(g);
}

Test(fuse, a_reduction_reads_its_elementwise_operand_inline)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(1000));
    jg_node *y = jg_input(g, "y", JG_F32, jg_shape(1000));
    jg_node *dot = jg_sum(jg_mul(x, y), JG_ALL_AXES, false);
    cr_assert_eq(kernels_of(g, &dot, 1, true), 1, "sum(x*y) is one pass over memory");
    jg_graph_free(g);
}

Test(fuse, a_matmul_takes_its_bias_and_activation_into_its_store)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(32, 64));
    jg_node *w = jg_param(g, "w", jg_shape(64, 48), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(48), jg_zeros());
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w), b));
    cr_assert_eq(kernels_of(g, &h, 1, true), 1);
    /* a transposed operand is read through strides: still one kernel */
    jg_node *wt = jg_param(g, "wt", jg_shape(48, 64), jg_he_normal());
    jg_node *h2 = jg_relu(jg_matmul(x, jg_transpose(wt)));
    cr_assert_eq(kernels_of(g, &h2, 1, true), 1);
    jg_graph_free(g);
}

/* How many read prefetches (rw 0, locality 3, data) kernel 0's IR holds. */
static int read_prefetches(jg_graph *g, jg_node *y)
{
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .keep_text = true, .num_threads = 1 });
    cr_assert(p, "%s", jg_errmsg(g));
    const char *ir = jg_program_kernel_ir(p, 0);
    cr_assert(ir);
    int n = 0;
    for (const char *q = ir; (q = strstr(q, "@llvm.prefetch")); q++)
        n += strncmp(strchr(q, ','), ", i32 0, i32 3, i32 1)", 22) == 0;
    jg_program_free(p);
    return n;
}

/* A large buffer the GEMM's epilogue adds (an LSTM's input projection) is fetched while the
 * tile's k loop runs, not when the tile is stored. */
Test(fuse, a_gemm_prefetches_what_its_epilogue_reads)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(128, 64));
    jg_node *w = jg_input(g, "w", JG_F32, jg_shape(64, 256));
    jg_node *d = jg_input(g, "d", JG_F32, jg_shape(128, 256)); /* 128 KiB: not L1's */
    jg_node *bias = jg_input(g, "bias", JG_F32, jg_shape(256));
    cr_assert_eq(read_prefetches(g, jg_add(jg_matmul(x, w), bias)), 0, "a bias stays cached");
    cr_assert_eq(read_prefetches(g, jg_matmul(x, w)), 0, "nothing to read ahead");
    cr_assert_gt(read_prefetches(g, jg_sigmoid(jg_add(d, jg_matmul(x, w)))), 0);
    jg_graph_free(g);
}

Test(fuse, shared_values_and_outputs_get_buffers)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(10, 20));
    jg_node *e = jg_exp(x);                    /* used twice: materialised */
    jg_node *outs[2] = { jg_add(e, jg_scalar_like(e, 1)), jg_mul(e, e) };
    cr_assert_eq(kernels_off(g, outs, 2, true, "siblings"), 3);
    /* sibling fusion then stores both outputs from one loop, exp in registers */
    cr_assert_eq(kernels_of(g, outs, 2, true), 1);
    jg_graph_free(g);
}

Test(fuse, the_program_shows_its_kernels)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 40));
    jg_node *y = jg_sum(jg_tanh(jg_scale(x, 0.5)), jg_axes(1), false);
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .keep_text = true, .num_threads = 1 });
    cr_assert(p, "%s", jg_errmsg(g));
    char *groups = dump_of(p, jg_program_dump), *dot = dump_of(p, jg_program_dot);
    cr_assert(strstr(groups, "kernel 0 (reduce)") && strstr(groups, "tanh"), "%s", groups);
    cr_assert(strstr(dot, "digraph") && strstr(dot, "cluster_0"), "%s", dot);
    free(groups);
    free(dot);
    const char *ir = jg_program_kernel_ir(p, 0), *as = jg_program_kernel_asm(p, 0);
    cr_assert(ir && strstr(ir, "define"), "IR kept");
    cr_assert(as && strlen(as) > 100, "assembly kept");
    cr_assert_null(jg_program_kernel_ir(p, 1));
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    cr_assert(st.kernels == 1 && st.total_ms > 0 && st.optimise_ms > 0 && st.codegen_ms > 0);

    float xv[320] = { 0 };
    jg_program_set(p, "x", xv, sizeof xv);
    jg_program_profile(p, true);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(jg_program_run(p), JG_OK);
    char *prof = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&prof, &len);
    jg_program_profile_dump(p, f);
    fclose(f);
    cr_assert(strstr(prof, "reduce") && strstr(prof, "       3 "), "%s", prof);
    free(prof);
    /* switched off and on again: the runs counted are the ones after */
    jg_program_profile(p, false);
    jg_program_profile(p, true);
    cr_assert_eq(jg_program_run(p), JG_OK);
    f = open_memstream(&prof, &len);
    jg_program_profile_dump(p, f);
    fclose(f);
    cr_assert(strstr(prof, "       1 ") && !strstr(prof, "       4 "), "%s", prof);
    free(prof);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(fuse, vector_width_follows_the_option)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(64));
    jg_node *y = jg_scale(x, 3);
    int widths[3] = { 256, 128, 32 };
    for (int i = 0; i < 3; i++) {
        jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .vector_bits = widths[i],
                                                         .keep_text = true });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_stats st;
        jg_program_stats_get(p, &st);
        cr_assert_eq(st.vector_bits, widths[i]);
        const char *ir = jg_program_kernel_ir(p, 0);
        if (widths[i] == 256)
            cr_assert(strstr(ir, "<8 x float>"), "%s", ir);
        jg_program_free(p);
    }
    jg_graph_free(g);
}

/* relu(x*a+b) forward and backward: y, dx, da, db in one pass over memory. */
Test(fuse, forward_and_backward_of_an_affine_relu_is_one_pass)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(300, 70));
    jg_node *dy = jg_input(g, "dy", JG_F32, jg_shape(300, 70));
    jg_node *a = jg_param(g, "a", jg_shape(70), jg_normal(1, 0.5));
    jg_node *b = jg_param(g, "b", jg_shape(70), jg_normal(0, 0.5));
    jg_node *y = jg_relu(jg_add(jg_mul(x, a), b));
    jg_node *wrt[3] = { x, a, b }, *d[3];
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), wrt, 3, d), JG_OK);
    jg_node *outs[4] = { y, d[0], d[1], d[2] };
    cr_assert_eq(kernels_of(g, outs, 4, true), 1);
    float xv[21000], dv[21000];
    for (int i = 0; i < 21000; i++) {
        xv[i] = (float)((int64_t)i * 7919 % 200 - 100) / 50.0f;
        dv[i] = (float)((int64_t)i * 104729 % 100 - 50) / 25.0f;
    }
    jg_binding in[2] = { { "x", xv, sizeof xv }, { "dy", dv, sizeof dv } };
    float got[2][70];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, outs, 4, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT, .num_threads = 2 });
        for (int i = 0; i < 2; i++)
            jg_program_set(p, in[i].name, in[i].data, in[i].bytes);
        cr_assert_eq(jg_program_run(p), JG_OK);
        jg_program_get(p, 2, got[e], sizeof got[e]); /* da: a column sum */
        jg_program_free(p);
    }
    for (int i = 0; i < 70; i++)
        cr_assert_float_eq(got[0][i], got[1][i], 1e-3 * (1 + fabsf(got[1][i])), "da[%d]", i);
    jg_graph_free(g);
}

/* The gradient of a weight broadcast over a batch, sum_b dY[b] X[b]^T (a convolution's dW),
 * is one GEMM accumulating the batch: no [batch, m, n] buffer and no separate reduction. */
Test(fuse, a_matmul_summed_over_its_batch_is_one_gemm)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(6, 2, 20, 9));
    jg_node *dy = jg_input(g, "dy", JG_F64, jg_shape(6, 2, 7, 9));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(2, 7, 20), jg_normal(0, 1));
    jg_node *y = jg_matmul(w, x);
    jg_node *dw;
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), &w, 1, &dw), JG_OK);
    cr_assert_eq(kernels_of(g, &dw, 1, true), 1, "the sum over the batch joins the GEMM");
    cr_assert_gt(kernels_of(g, &dw, 1, false), 1, "without fusion: the GEMM, then the sum");
    double xv[6 * 2 * 20 * 9], dv[6 * 2 * 7 * 9];
    for (int i = 0; i < 6 * 2 * 20 * 9; i++)
        xv[i] = (double)((int64_t)i * 7919 % 200 - 100) / 50.0;
    for (int i = 0; i < 6 * 2 * 7 * 9; i++)
        dv[i] = (double)((int64_t)i * 104729 % 100 - 50) / 25.0;
    double got[2][2 * 7 * 20];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, &dw, 1, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT, .num_threads = 2 });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_set(p, "x", xv, sizeof xv);
        jg_program_set(p, "dy", dv, sizeof dv);
        cr_assert_eq(jg_program_run(p), JG_OK);
        jg_program_get(p, 0, got[e], sizeof got[e]);
        jg_program_free(p);
    }
    t_assert_close(got[0], got[1], 2 * 7 * 20, 1e-12);
    jg_graph_free(g);
}

/* A convolution's im2col (a take by a constant index table) feeds only GEMMs: the forward's
 * and the weight gradient's. Both gather it themselves, batch by batch, into their scratch,
 * so it has no kernel and no buffer (pass "gather"), nor has the input's padding by a fill
 * element, which only the im2col reads; the values are those of the
 * reference executor, for strides, dilation, groups, padding and odd sizes. */
Test(fuse, gemms_gather_an_im2col_operand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(3, 4, 9, 7));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(6, 2, 3, 3), jg_normal(0, 1));
    jg_node *y = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .groups = 2, .stride_h = 2, .pad_h = 1,
                                                         .pad_w = 2, .dilation_w = 2 });
    jg_node *dy = jg_input(g, "dy", JG_F64, jg_node_shape(y));
    jg_node *wrt[2] = { w, x }, *d[2];
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), wrt, 2, d), JG_OK);
    jg_node *outs[3] = { y, d[0], d[1] };
    int64_t n[3] = { jg_shape_numel(jg_node_shape(y)), 6 * 2 * 9, 3 * 4 * 9 * 7 };
    double xv[3 * 4 * 9 * 7], dv[1024];
    cr_assert(n[0] <= 1024);
    for (int i = 0; i < 3 * 4 * 9 * 7; i++)
        xv[i] = sin(0.37 * i);
    for (int64_t i = 0; i < n[0]; i++)
        dv[i] = cos(0.11 * (double)i);
    double *got[3][3];
    int kernels[3];
    const char *off[3] = { NULL, "gather", NULL };
    for (int e = 0; e < 3; e++) {
        jg_program *p = jg_compile(g, outs, 3, &(jg_opts){
            .executor = e == 2 ? JG_EXEC_REFERENCE : JG_EXEC_JIT, .passes_off = off[e],
            .num_threads = 2 });
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_stats st;
        jg_program_stats_get(p, &st);
        kernels[e] = st.kernels;
        jg_program_set(p, "x", xv, sizeof xv);
        jg_program_set(p, "dy", dv, (size_t)n[0] * sizeof(double));
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        for (int k = 0; k < 3; k++) {
            got[e][k] = malloc((size_t)n[k] * sizeof(double));
            jg_program_get(p, k, got[e][k], (size_t)n[k] * sizeof(double));
        }
        jg_program_free(p);
    }
    cr_assert_eq(kernels[0], kernels[1] - 2,
                 "the im2col's own kernel and its padding's are gone (%d vs %d)", kernels[0],
                 kernels[1]);
    for (int e = 0; e < 2; e++)
        for (int k = 0; k < 3; k++) {
            t_assert_close(got[e][k], got[2][k], n[k], 1e-12);
            free(got[e][k]);
        }
    for (int k = 0; k < 3; k++)
        free(got[2][k]);
    jg_graph_free(g);
}

/* A take of a padded tensor that only the take reads: the GEMM reads the unpadded buffer and
 * the indices past its rows read the pad value (here 2.5), both for indices that form runs
 * (copied by vector loads with 4 or more lanes) and scattered ones (gathered one by one). */
Test(fuse, a_gathered_operand_reads_the_pad_value_past_its_rows)
{
    int32_t runs[12] = { 6, 0, 1, 2, 3, 6, 1, 2, 3, 4, 5, 6 }, scattered[12];
    for (int i = 0; i < 12; i++)
        scattered[i] = (i * 5) % 7;
    const int32_t *tables[2] = { runs, scattered };
    for (int c = 0; c < 2; c++) {
        jg_graph *g = jg_graph_new();
        jg_node *x = jg_input(g, "x", JG_F64, jg_shape(2, 3, 6));
        jg_node *xp = jg_pad(x, jg_shape(0, 0, 0), jg_shape(0, 0, 1), 2.5); /* [2,3,7] */
        jg_node *ids = jg_const(g, JG_I32, jg_shape(2, 6), tables[c]);
        jg_node *r = jg_reshape(jg_take(xp, ids, 2), jg_shape(2, 6, 6));
        jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(5, 6), jg_normal(0, 1));
        jg_node *y = jg_matmul(a, r);
        double xv[36], *got[2];
        for (int i = 0; i < 36; i++)
            xv[i] = cos(0.7 * i);
        int kernels = 0;
        for (int e = 0; e < 2; e++) {
            jg_program *p = jg_compile(g, &y, 1, &(jg_opts){
                .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT });
            cr_assert(p, "%s", jg_errmsg(g));
            jg_program_stats st;
            jg_program_stats_get(p, &st);
            kernels = e ? kernels : st.kernels;
            jg_program_set(p, "x", xv, sizeof xv);
            cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
            got[e] = malloc(60 * sizeof(double));
            jg_program_get(p, 0, got[e], 60 * sizeof(double));
            jg_program_free(p);
        }
        cr_assert_eq(kernels, 1, "the GEMM alone: no pad, no take kernel (%d)", kernels);
        t_assert_close(got[0], got[1], 60, 1e-13);
        free(got[0]);
        free(got[1]);
        jg_graph_free(g);
    }
}

/* Where the gathered operand cannot be: a take that is also an output keeps its buffer and
 * the GEMM reads that; a permute moving a batch axis into the matrices reads a buffer too.
 * Either way the values are the reference executor's. */
Test(fuse, a_take_that_must_exist_is_not_gathered)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(2, 3, 10));
    int32_t idv[8] = { 9, 0, 3, 3, 7, 1, 2, 8 };
    jg_node *ids = jg_const(g, JG_I32, jg_shape(2, 4), idv);
    jg_node *t = jg_take(x, ids, 2);                       /* [2,3,2,4] */
    jg_node *r = jg_reshape(t, jg_shape(2, 6, 4));
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(5, 6), jg_normal(0, 1));
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(5, 2), jg_normal(0, 1));
    jg_node *y1 = jg_matmul(a, r);                          /* gathered */
    jg_node *y2 = jg_matmul(b, jg_permute(r, jg_axes(1, 0, 2))); /* [6,5,4]: not gathered */
    double xv[60];
    for (int i = 0; i < 60; i++)
        xv[i] = cos(0.7 * i);
    jg_node *sets[3][2] = { { y1, NULL }, { y1, t }, { y2, NULL } };
    int n_outs[3] = { 1, 2, 1 };
    for (int c = 0; c < 3; c++) {
        double *got[2];
        int64_t n = jg_shape_numel(jg_node_shape(sets[c][0]));
        for (int e = 0; e < 2; e++) {
            jg_program *p = jg_compile(g, sets[c], n_outs[c], &(jg_opts){
                .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT });
            cr_assert(p, "%s", jg_errmsg(g));
            jg_program_set(p, "x", xv, sizeof xv);
            cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
            got[e] = malloc((size_t)n * sizeof(double));
            jg_program_get(p, 0, got[e], (size_t)n * sizeof(double));
            jg_program_free(p);
        }
        t_assert_close(got[0], got[1], n, 1e-12);
        free(got[0]);
        free(got[1]);
    }
    jg_graph_free(g);
}

/* A slice that is one contiguous run of a buffer (a block of rows; a row of a [1, ...]
 * block) is an alias at an offset: no kernel, read in place by pointwise ops, GEMMs and
 * the program's outputs, also through reshapes and slices of it. */
Test(fuse, a_contiguous_slice_is_read_in_place)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(6, 4, 5));
    jg_node *w = jg_input(g, "w", JG_F64, jg_shape(5, 3));
    jg_node *v = jg_input(g, "v", JG_F64, jg_shape(3, 2));
    static double xv[120], wv[15], vv[6];
    for (int i = 0; i < 120; i++)
        xv[i] = sin(0.37 * i), wv[i % 15] = cos(0.21 * i), vv[i % 6] = 0.5 - 0.1 * i;
    jg_binding in[3] = { { "x", xv, sizeof xv }, { "w", wv, sizeof wv }, { "v", vv, sizeof vv } };
    jg_node *m = jg_matmul(jg_reshape(x, jg_shape(24, 5)), w);
    jg_node *outs[5] = {
        jg_slice(m, 0, 8, 16, 1),                                       /* an output */
        jg_add(jg_tanh(jg_slice(m, 0, 8, 16, 1)), jg_slice(m, 0, 0, 8, 1)),
        jg_matmul(jg_slice(m, 0, 16, 24, 1), v),
        jg_reshape(jg_slice(m, 0, 4, 12, 1), jg_shape(2, 12)),
        jg_slice(jg_slice(x, 0, 2, 3, 1), 1, 1, 3, 1),                  /* offsets add up */
    };
    jg_node *strided = jg_slice(m, 1, 1, 2, 1); /* a column: not contiguous, a kernel */
    jg_node *all[6] = { outs[0], outs[1], outs[2], outs[3], outs[4], jg_neg(strided) };
    jg_program *q = jg_compile(g, all, 5, NULL);
    char *groups = dump_of(q, jg_program_dump);
    jg_program_free(q);
    cr_assert_eq(kernels_of(g, all, 5, true), 3, "the GEMM, tanh + add, the second GEMM; got\n%s",
                 groups);
    free(groups);
    cr_assert_eq(kernels_of(g, all, 6, true), 4);
    jg_program *p = jg_compile(g, all, 6, &(jg_opts){ .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(jg_program_set(p, in[i].name, in[i].data, in[i].bytes), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_program_errmsg(p));
    for (int i = 0; i < 6; i++) {
        double *want = t_eval_with(all[i], in, 3);
        int64_t n = jg_shape_numel(jg_program_output_shape(p, i));
        double *got = malloc((size_t)n * sizeof *got);
        cr_assert_eq(jg_program_get(p, i, got, (size_t)n * sizeof *got), JG_OK);
        t_assert_close(got, want, n, 1e-12);
        free(got);
        free(want);
    }
    jg_program_free(p);
    jg_graph_free(g);
}
