/* Pass "bn_relu" (src/compiler/bn_relu.c) with sibling fusion of channel reductions:
 * batch statistics in one pass, the backward's channel sums in one more, dx in a third; the
 * same values and gradients as with the pass off and as the reference executor. */
#define _GNU_SOURCE /* open_memstream */
#include "support/pass_check.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>

TestSuite(pass_bn_relu);

/* ---------------------------------------------------------------- the program graph */

Test(pass_bn_relu, two_pass_variance_becomes_shifted_sums_of_one_pass)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(6, 4));
    jg_node *m = jg_mean(x, jg_axes(0), true);
    jg_node *before = jg_sum(jg_square(jg_sub(x, m)), jg_axes(0), true);

    /* k = x[0, :], the shift; sum((x - k)^2) - sum(x - k)^2 / 6, each x - k recomputed
     * where it is used */
    jg_node *ex = jg_input(e, "x", JG_F32, jg_shape(6, 4));
    jg_node *k = jg_slice(ex, 0, 0, 1, 1);
    jg_node *s1 = jg_sum(jg_sub(ex, k), jg_axes(0), true);
    jg_node *s2 = jg_sum(jg_square(jg_sub(ex, k)), jg_axes(0), true);
    jg_node *expected = jg_sub(s2, jg_mul(jg_square(s1), jg_scalar_like(s1, 1.0 / 6)));

    t_program_graph got = t_lower(&before, 1, true);
    cr_assert_eq(t_count_op(&got, JG_OP_SUM), 2, "mean's sum, then the variance's");
    cr_assert(pass_bn_relu(&got.c));
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_program_graph want = t_lower(&expected, 1, true);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got), t_program_graph_free(&want);
    jg_graph_free(g), jg_graph_free(e);
}

Test(pass_bn_relu, leaves_graphs_without_a_batch_variance_alone)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 3, 5));
    jg_node *m = jg_mean(x, jg_axes(0, 2), true);
    /* a sum of x * m, a variance over one axis of three, a mean of squares: no match */
    jg_node *outs[3] = { jg_sum(jg_mul(x, m), jg_axes(0, 2), true),
                         jg_sum(jg_square(jg_sub(x, jg_mean(x, jg_axes(0), true))), jg_axes(0), true),
                         jg_mean(jg_square(x), jg_axes(0, 2), true) };
    t_program_graph got = t_lower(outs, 3, true);
    char *before = t_graph_text(&got);
    cr_assert_not(pass_bn_relu(&got.c));
    char *after = t_graph_text(&got);
    cr_assert_str_eq(after, before);
    free(before), free(after);
    t_program_graph_free(&got);
    jg_graph_free(g);
}

/* y = relu(batchnorm(x)) on x of shape s, with dx, dgamma, dbeta of sum(y * dy). */
typedef struct bn_case {
    jg_graph *g;
    jg_node *outs[4];
} bn_case;

static bn_case bn_relu_case(jg_dtype t, jg_shape s)
{
    bn_case b = { .g = jg_graph_new() };
    jg_node *x = jg_input(b.g, "x", t, s), *dy = jg_input(b.g, "dy", t, s);
    jg_node *y = jg_relu(jg_batchnorm("bn", x, 0.1, 1e-5));
    jg_node *wrt[3] = { x, jg_param_find(b.g, "bn.gamma"), jg_param_find(b.g, "bn.beta") };
    b.outs[0] = y;
    cr_assert_eq(jg_grad(b.g, jg_mul(y, dy), wrt, 3, &b.outs[1]), JG_OK, "%s", jg_errmsg(b.g));
    return b;
}

Test(pass_bn_relu, backward_sums_become_sums_of_dz_and_dz_times_centred_x)
{
    bn_case b = bn_relu_case(JG_F32, jg_shape(4, 3, 5, 5));
    t_program_graph got = t_lower(b.outs, 4, true);
    /* sum(x), sum((x - m)^2); the sums of dbeta, dgamma, the variance's, the mean's */
    cr_assert_eq(t_count_op(&got, JG_OP_SUM), 6);
    cr_assert(pass_bn_relu(&got.c));
    /* sum(x - k), sum((x - k)^2), sum(dz), sum(dz * (x - m)) */
    cr_assert_eq(t_count_op(&got, JG_OP_SUM), 4);
    cr_assert_eq(t_count_op(&got, JG_OP_SLICE), 2 + 1, "the shift: x[0, :, 0, 0]");
    t_program_graph_free(&got);
    jg_graph_free(b.g);
}

/* ---------------------------------------------------------------- the compiled program */

/* How often " op%" occurs in a dump line (op names are followed by their node number). */
static int op_count(const char *line, const char *op)
{
    char key[64];
    snprintf(key, sizeof key, " %s%%", op);
    int n = 0;
    for (const char *q = line; (q = strstr(q, key)); q += strlen(key))
        n++;
    return n;
}

/* The kernels of a program that stream data of shape s (read or write it whole), from its
 * dump: reductions (here all of data of shape s), multi-output kernels that sum and
 * elementwise kernels writing s. *with: how many of them hold
 * at least n_sums sums and, when relu is set, a relu. */
static int streaming_kernels(jg_program *p, jg_shape s, int n_sums, bool relu, int *with)
{
    char *text = NULL, shape[96];
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    cr_assert(f);
    jg_program_dump(p, f);
    fclose(f);
    int len = snprintf(shape, sizeof shape, "f32[");
    for (int d = 0; d < s.ndim; d++)
        len += snprintf(shape + len, sizeof shape - (size_t)len, "%s%lld", d ? "," : "",
                        (long long)s.dim[d]);
    snprintf(shape + len, sizeof shape - (size_t)len, "]:");
    int n = 0;
    *with = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        bool sums = strstr(line, "(multi)") && op_count(line, "sum") > 0;
        if (!sums && !strstr(line, "(reduce)") && !strstr(line, shape))
            continue; /* a pointwise multi kernel over per-channel values streams nothing */
        n++;
        *with += op_count(line, "sum") >= n_sums && (!relu || op_count(line, "relu") > 0);
    }
    free(text);
    return n;
}

static jg_program *compile_train(bn_case *b, const char *off)
{
    jg_program *p = jg_compile(b->g, b->outs, 4, &(jg_opts){ .mode = JG_MODE_TRAIN,
                                                             .num_threads = 2,
                                                             .passes_off = off });
    cr_assert(p, "%s", jg_errmsg(b->g));
    return p;
}

Test(pass_bn_relu, forward_and_backward_stream_the_data_three_times)
{
    jg_shape s = jg_shape(4, 3, 5, 5);
    bn_case b = bn_relu_case(JG_F32, s);
    jg_program *on = compile_train(&b, NULL), *off = compile_train(&b, "bn_relu");
    int with;
    /* statistics; y with the backward's two sums; dx */
    cr_assert_eq(streaming_kernels(on, s, 2, false, &with), 3);
    cr_assert_eq(with, 2, "sum(x - k) with sum((x - k)^2), sum(dz) with sum(dz * (x - m))");
    cr_assert_eq(streaming_kernels(on, s, 2, true, &with), 3);
    cr_assert_eq(with, 1, "y is stored by the kernel of the backward's sums");
    cr_assert_geq(streaming_kernels(off, s, 1, false, &with), 6, "the two-pass form");
    jg_program_free(on), jg_program_free(off);
    jg_graph_free(b.g);
}

/* After a convolution, batchnorm's input is the GEMM's result read through a reshape (an
 * alias): its statistics are still one pass, not one reduction kernel per sum. */
Test(pass_bn_relu, statistics_of_a_convolution_are_one_pass)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 3, 6, 6));
    jg_node *w = jg_param(g, "w", jg_shape(5, 3, 3, 3), jg_he_normal());
    jg_node *c = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    jg_node *y = jg_relu(jg_batchnorm("bn", c, 0.1, 1e-5));
    jg_node *dw;
    cr_assert_eq(jg_grad(g, jg_sum(jg_square(y), JG_ALL_AXES, false), &w, 1, &dw), JG_OK);
    jg_program *p = jg_compile(g, &dw, 1, &(jg_opts){ .mode = JG_MODE_TRAIN });
    cr_assert(p, "%s", jg_errmsg(g));
    int with;
    int n = streaming_kernels(p, jg_shape(4, 5, 6, 6), 2, false, &with);
    cr_assert_eq(with, 1, "sum(x - k) with sum((x - k)^2) (%d streaming kernels)", n);
    jg_program_free(p);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- values */

static void fill(void *data, jg_dtype t, int64_t n, uint64_t seed, double scale, double offset)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(seed >> 11) * 0x1.0p-53 * 2 - 1;
        if (t == JG_F32)
            ((float *)data)[i] = (float)(offset + scale * u);
        else
            ((double *)data)[i] = offset + scale * u;
    }
}

/* Runs p once, the running statistics reset first: the outputs, then the running
 * statistics after the run, as double (*total values). */
static double *run_all(jg_program *p, bn_case *b, const jg_binding *in, int64_t *total)
{
    jg_dtype t = b->outs[0]->dtype;
    size_t es = jg_dtype_size(t);
    int64_t c = b->outs[2]->shape.dim[0], n = 2 * c;
    for (int i = 0; i < 4; i++)
        n += jg_shape_numel(b->outs[i]->shape);
    double *v = malloc((size_t)n * sizeof *v), *raw = malloc((size_t)n * sizeof *raw);
    cr_assert(v && raw);
    for (int k = 0; k < 2; k++)
        cr_assert_eq(jg_program_set(p, in[k].name, in[k].data, in[k].bytes), JG_OK, "%s",
                     jg_errmsg(p));
    for (int k = 0; k < 2; k++) { /* running mean 0, running variance 1 */
        for (int64_t e = 0; e < c; e++)
            if (t == JG_F32)
                ((float *)raw)[e] = (float)k;
            else
                raw[e] = k;
        cr_assert_eq(jg_param_set(b->g, k ? "bn.running_var" : "bn.running_mean", raw,
                                  (size_t)c * es), JG_OK);
    }
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    int64_t at = 0;
    for (int i = 0; i < 4 + 2; i++) {
        int64_t m = i < 4 ? jg_shape_numel(b->outs[i]->shape) : c;
        if (i < 4)
            cr_assert_eq(jg_program_get(p, i, raw, (size_t)m * es), JG_OK, "%s", jg_errmsg(p));
        else
            cr_assert_eq(jg_param_get(b->g, i == 4 ? "bn.running_mean" : "bn.running_var", raw,
                                      (size_t)m * es), JG_OK);
        for (int64_t e = 0; e < m; e++)
            v[at + e] = t == JG_F32 ? ((float *)raw)[e] : raw[e];
        at += m;
    }
    free(raw);
    *total = at;
    return v;
}

/* The pass on, off, and the reference executor (exact) agree on y, dx, dgamma, dbeta and
 * the running statistics, to tol relative to max(1, |v|). */
static void check_equal(jg_dtype t, jg_shape s, double tol)
{
    bn_case b = bn_relu_case(t, s);
    int64_t numel = jg_shape_numel(s), c = s.dim[1];
    size_t bytes = (size_t)numel * jg_dtype_size(t);
    void *x = malloc(bytes), *dy = malloc(bytes), *gb = malloc((size_t)c * 8);
    cr_assert(x && dy && gb);
    fill(x, t, numel, 7, 1.0, 2.5); /* off-centre channels */
    fill(dy, t, numel, 11, 1.0, 0);
    fill(gb, t, c, 13, 0.5, 1.0);
    cr_assert_eq(jg_param_set(b.g, "bn.gamma", gb, (size_t)c * jg_dtype_size(t)), JG_OK);
    fill(gb, t, c, 17, 0.5, 0);
    cr_assert_eq(jg_param_set(b.g, "bn.beta", gb, (size_t)c * jg_dtype_size(t)), JG_OK);
    jg_binding in[2] = { { "x", x, bytes }, { "dy", dy, bytes } };

    jg_program *p[3] = { compile_train(&b, NULL), compile_train(&b, "bn_relu"),
                         jg_compile(b.g, b.outs, 4, &(jg_opts){ .mode = JG_MODE_TRAIN,
                                                                .exact = true }) };
    cr_assert(p[2], "%s", jg_errmsg(b.g));
    int64_t n[3];
    double *v[3];
    for (int i = 0; i < 3; i++)
        v[i] = run_all(p[i], &b, in, &n[i]);
    t_assert_close(v[0], v[1], n[0], tol);
    t_assert_close(v[0], v[2], n[0], tol);
    for (int i = 0; i < 3; i++)
        free(v[i]), jg_program_free(p[i]);
    free(x), free(dy), free(gb);
    jg_graph_free(b.g);
}

Test(pass_bn_relu, same_values_and_gradients_with_the_pass_off_f32)
{
    check_equal(JG_F32, jg_shape(3, 5, 7, 9), 1e-4); /* odd sizes: masked tails */
    check_equal(JG_F32, jg_shape(8, 16, 6, 6), 1e-4);
    check_equal(JG_F32, jg_shape(37, 6), 1e-4);      /* batchnorm of [N, C] */
    check_equal(JG_F32, jg_shape(5, 4, 3), 1e-4);    /* [N, C, L] */
}

Test(pass_bn_relu, same_values_and_gradients_with_the_pass_off_f64)
{
    check_equal(JG_F64, jg_shape(3, 5, 7, 9), 1e-10);
    check_equal(JG_F64, jg_shape(37, 6), 1e-10);
}

Test(pass_bn_relu, gradcheck_of_relu_batchnorm_in_training)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(4, 3, 2, 3), 3);
    jg_node *y = jg_relu(jg_batchnorm("bn", x, 0.1, 1e-5));
    jg_node *wrt[3] = { x, jg_param_find(g, "bn.gamma"), jg_param_find(g, "bn.beta") };
    double beta[3] = { 0.3, -0.2, 0.1 };
    cr_assert_eq(jg_param_set(g, "bn.beta", beta, sizeof beta), JG_OK);
    t_gradcheck_opts(g, y, wrt, 3, &(jg_gradcheck_opts){ .train = true });
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- sibling fusion */

Test(pass_bn_relu, sums_streaming_one_input_share_kernels_of_at_most_64_parts)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(6, 40), 5);
    jg_node *outs[70];
    for (int k = 0; k < 70; k++) /* row sums: the innermost dim reduced */
        outs[k] = jg_sum(jg_scale(x, 1.0 + k), jg_axes(1), false);
    jg_program *p = jg_compile(g, outs, 70, &(jg_opts){ .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    cr_assert_eq(st.kernels, 2, "64 parts, then 6: %d kernels", st.kernels);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    double *want = t_eval(outs[69]), got[6];
    cr_assert_eq(jg_program_get(p, 69, got, sizeof got), JG_OK);
    t_assert_close(got, want, 6, 1e-12);
    free(want);
    jg_program_free(p);
    jg_graph_free(g);
}
