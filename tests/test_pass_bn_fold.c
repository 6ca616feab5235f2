/* Pass "bn_fold" (src/compiler/bn_fold.c): batchnorm's evaluation affine after a linear
 * layer or a convolution folds into the weight and one bias, the evaluation program computes
 * the same values within 1e-5 with the pass off (also after the parameters change), and
 * nothing folds where it must not. Also the other inference rewrite that lowering does:
 * dropout is absent from evaluation programs. */
#include "support/pass_check.h"
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

TestSuite(pass_bn_fold);

/* Fills f32 parameter `name` (n values) with seeded values in [lo, hi). */
static void set_uniform(jg_graph *g, const char *name, int64_t n, float lo, float hi,
                        uint32_t seed)
{
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert(v);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = lo + (hi - lo) * (float)(seed >> 8) / (float)(1u << 24);
    }
    cr_assert_eq(jg_param_set(g, name, v, (size_t)n * sizeof *v), JG_OK, "%s",
                 jg_graph_errmsg(g));
    free(v);
}

/* Running statistics and an affine that make batchnorm far from the identity. */
static void randomise_bn(jg_graph *g, const char *name, int64_t c, uint32_t seed)
{
    char full[64];
    const char *part[] = { "gamma", "beta", "running_mean", "running_var" };
    const float lo[] = { 0.5f, -1, -2, 0.2f }, hi[] = { 2, 1, 2, 3 };
    for (int i = 0; i < 4; i++) {
        snprintf(full, sizeof full, "%s.%s", name, part[i]);
        set_uniform(g, full, c, lo[i], hi[i], seed + (uint32_t)i);
    }
}

static float *uniform_input(int64_t n, uint32_t seed)
{
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert(v);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        v[i] = (float)(seed >> 8) / (float)(1u << 23) - 1;
    }
    return v;
}

/* Nodes of op in the program graph whose result has numel elements (the activations). */
static int count_sized(const t_program_graph *p, jg_op op, int64_t numel)
{
    bool *seen = calloc((size_t)p->c.g->n_nodes + 1, sizeof *seen);
    cr_assert(seen);
    for (int i = 0; i < p->c.n_roots; i++)
        seen[p->c.roots[i]->id] = true;
    int count = 0;
    for (int id = p->c.g->n_nodes - 1; id >= 0; id--) {
        const jg_node *n = p->c.g->nodes[id];
        if (!seen[id])
            continue;
        count += n->op == op && jg_shape_numel(n->shape) == numel;
        for (int k = 0; k < n->n_in; k++)
            seen[n->in[k]->id] = true;
    }
    free(seen);
    return count;
}

Test(pass_bn_fold, a_linear_layer_takes_the_affine_into_its_weight_and_bias)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(32, 16));
    jg_node *w = jg_param(g, "w", jg_shape(16, 8), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(8), jg_zeros());
    jg_node *y = jg_batchnorm("bn", jg_add(jg_matmul(x, w), b), 0.1, 1e-5);

    /* expected: x @ (w * s) + t, s = rsqrt(rv + eps) * gamma over the weight's columns,
     * t = (b - rm) * rsqrt(rv + eps) * gamma + beta over the channels, reshaped once */
    jg_node *ex = jg_input(e, "x", JG_F32, jg_shape(32, 16));
    jg_node *ew = jg_param(e, "w", jg_shape(16, 8), jg_he_normal());
    jg_node *eb = jg_param(e, "b", jg_shape(8), jg_zeros());
    jg_node *gamma = jg_param(e, "bn.gamma", jg_shape(8), jg_zeros());
    jg_node *beta = jg_param(e, "bn.beta", jg_shape(8), jg_zeros());
    jg_node *rm = jg_param(e, "bn.running_mean", jg_shape(8), jg_zeros());
    jg_node *rv = jg_param(e, "bn.running_var", jg_shape(8), jg_zeros());
    jg_node *eps = jg_scalar(e, JG_F32, 1e-5);
    jg_node *t = jg_add(jg_mul(jg_mul(jg_sub(eb, rm), jg_rsqrt(jg_add(rv, eps))), gamma), beta);
    jg_node *s = jg_mul(jg_rsqrt(jg_add(jg_reshape(rv, jg_shape(1, 8)), eps)),
                        jg_reshape(gamma, jg_shape(1, 8)));
    jg_node *want = jg_add(jg_matmul(ex, jg_mul(ew, s)), jg_reshape(t, jg_shape(1, 8)));
    cr_assert_eq(jg_graph_status(e), JG_OK, "%s", jg_errmsg(e));

    t_program_graph got = t_lower(&y, 1, false), exp = t_lower(&want, 1, false);
    cr_assert_eq(count_sized(&got, JG_OP_MUL, 32 * 8), 2, "the affine's two products");
    cr_assert(pass_bn_fold(&got.c), "bn_fold reported no change");
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_assert_same_graph(&got, &exp);
    cr_assert_eq(count_sized(&got, JG_OP_MUL, 32 * 8), 0, "no product over the activations");
    t_program_graph_free(&got);
    t_program_graph_free(&exp);
    jg_graph_free(g);
    jg_graph_free(e);
}

/* conv2d (+ bias) + batchnorm + relu: after the pass the activations see one matmul, one
 * addition and the relu; the values match the unfolded program. */
static void check_conv(int groups, bool bias, int stride)
{
    jg_graph *g = jg_graph_new();
    int64_t n = 4, c = 4, o = 8, h = 9;
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(n, c, h, h));
    jg_node *w = jg_param(g, "w", jg_shape(o, c / groups, 3, 3), jg_he_normal());
    jg_node *b = bias ? jg_param(g, "b", jg_shape(o), jg_normal(0, 1)) : NULL;
    jg_node *conv = jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1,
                                                        .stride_h = stride, .stride_w = stride,
                                                        .groups = groups });
    jg_node *y = jg_relu(jg_batchnorm("bn", conv, 0.1, 1e-5));
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    randomise_bn(g, "bn", o, 7);
    int64_t act = jg_shape_numel(y->shape);

    t_program_graph p = t_lower(&y, 1, false);
    cr_assert_eq(count_sized(&p, JG_OP_MUL, act), 2);
    cr_assert(pass_bn_fold(&p.c));
    cr_assert_eq(p.c.status, JG_OK, "%s", p.c.errmsg);
    cr_assert_eq(count_sized(&p, JG_OP_MUL, act), 0, "the affine is gone");
    cr_assert_eq(count_sized(&p, JG_OP_SUB, act), 0);
    cr_assert_eq(count_sized(&p, JG_OP_ADD, act), 1, "one bias in the GEMM's store");
    cr_assert_eq(t_count_op(&p, JG_OP_MATMUL), 1);
    t_program_graph_free(&p);

    float *xv = uniform_input(n * c * h * h, 3);
    jg_binding in = { "x", xv, (size_t)(n * c * h * h) * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "bn_fold", &in, 1, 1e-5);
    free(xv);
    jg_graph_free(g);
}

Test(pass_bn_fold, a_convolution_takes_the_affine_into_its_kernel)
{
    check_conv(1, true, 1);
}

Test(pass_bn_fold, folds_without_a_bias_with_groups_and_strides)
{
    check_conv(1, false, 1);
    check_conv(2, true, 2);
    check_conv(4, false, 1); /* depthwise */
}

Test(pass_bn_fold, the_folded_program_follows_the_store_between_runs)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(64, 12));
    jg_node *w = jg_param(g, "w", jg_shape(12, 6), jg_he_normal());
    jg_node *y = jg_batchnorm("bn", jg_matmul(x, w), 0.1, 1e-3);
    float *xv = uniform_input(64 * 12, 5);
    jg_binding in = { "x", xv, 64 * 12 * sizeof *xv };
    jg_program *on = jg_compile(g, &y, 1, NULL);
    jg_program *off = jg_compile(g, &y, 1, &(jg_opts){ .passes_off = "bn_fold" });
    cr_assert(on && off, "%s", jg_errmsg(g));
    for (uint32_t round = 0; round < 3; round++) {
        randomise_bn(g, "bn", 6, 11 + 5 * round); /* no recompiling: s, t read the store */
        float a[64 * 6], b[64 * 6];
        cr_assert_eq(jg_program_set(on, "x", xv, in.bytes), JG_OK);
        cr_assert_eq(jg_program_set(off, "x", xv, in.bytes), JG_OK);
        cr_assert_eq(jg_program_run(on), JG_OK, "%s", jg_errmsg(on));
        cr_assert_eq(jg_program_run(off), JG_OK, "%s", jg_errmsg(off));
        cr_assert_eq(jg_program_get(on, 0, a, sizeof a), JG_OK);
        cr_assert_eq(jg_program_get(off, 0, b, sizeof b), JG_OK);
        for (int i = 0; i < 64 * 6; i++)
            cr_assert_float_eq(a[i], b[i], 1e-5 * fmax(1, fabs(b[i])), "round %u, %d: %g vs %g",
                               round, i, a[i], b[i]);
    }
    jg_program_free(on);
    jg_program_free(off);
    free(xv);
    jg_graph_free(g);
}

Test(pass_bn_fold, scales_and_shifts_of_any_order_fold_and_keep_their_values)
{
    /* p - h, h / p, h * 2: the chain's algebra beyond batchnorm's own */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(40, 10));
    jg_node *w = jg_param(g, "w", jg_shape(10, 5), jg_he_normal());
    jg_node *p = jg_param(g, "p", jg_shape(5), jg_uniform(1, 2));
    jg_node *q = jg_param(g, "q", jg_shape(1, 5), jg_uniform(-1, 1));
    jg_node *h = jg_matmul(x, w);
    jg_node *y = jg_scale(jg_div(jg_sub(q, h), p), 2);
    t_program_graph got = t_lower(&y, 1, false);
    cr_assert(pass_bn_fold(&got.c));
    cr_assert_eq(count_sized(&got, JG_OP_DIV, 40 * 5) + count_sized(&got, JG_OP_MUL, 40 * 5) +
                 count_sized(&got, JG_OP_SUB, 40 * 5), 0);
    t_program_graph_free(&got);
    float *xv = uniform_input(40 * 10, 9);
    jg_binding in = { "x", xv, 40 * 10 * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "bn_fold", &in, 1, 1e-5);
    free(xv);
    jg_graph_free(g);
}

Test(pass_bn_fold, a_batched_weight_takes_a_scale_per_batch_and_channel)
{
    /* x [3,20,6] @ w [3,6,4]: a scale [3,1,4] varies along the weight's own batch dim, a
     * shift [4] along the channels only (broadcast over the batch in the channel vector) */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3, 20, 6));
    jg_node *w = jg_param(g, "w", jg_shape(3, 6, 4), jg_he_normal());
    jg_node *p = jg_param(g, "p", jg_shape(3, 1, 4), jg_uniform(0.5, 2));
    jg_node *q = jg_param(g, "q", jg_shape(4), jg_uniform(-1, 1));
    jg_node *y = jg_add(jg_mul(jg_matmul(x, w), p), q);
    t_program_graph got = t_lower(&y, 1, false);
    cr_assert(pass_bn_fold(&got.c));
    cr_assert_eq(count_sized(&got, JG_OP_MUL, 3 * 20 * 4), 0);
    t_program_graph_free(&got);
    float *xv = uniform_input(3 * 20 * 6, 13);
    jg_binding in = { "x", xv, 3 * 20 * 6 * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "bn_fold", &in, 1, 1e-5);
    /* a scale along x's rows would need a per-row weight: left alone */
    jg_node *rows = jg_mul(jg_matmul(x, w), jg_param(g, "r", jg_shape(3, 20, 1), jg_uniform(1, 2)));
    t_program_graph kept = t_lower(&rows, 1, false);
    cr_assert_not(pass_bn_fold(&kept.c));
    t_program_graph_free(&kept);
    free(xv);
    jg_graph_free(g);
}

/* Runs bn_fold on y's evaluation (or training) program graph and asserts it is unchanged. */
static void check_untouched(jg_node *y, bool train)
{
    t_program_graph got = t_lower(&y, 1, train), want = t_lower(&y, 1, train);
    got.c.train = train;
    cr_assert_not(pass_bn_fold(&got.c), "bn_fold changed a graph it must leave alone");
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

Test(pass_bn_fold, leaves_what_must_not_fold)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(32, 16));
    jg_node *w = jg_param(g, "w", jg_shape(16, 8), jg_he_normal());
    jg_node *h = jg_matmul(x, w);
    /* training programs normalise with the batch statistics */
    check_untouched(jg_batchnorm("bn", h, 0.1, 1e-5), true);
    /* the matmul's result is needed elsewhere too */
    check_untouched(jg_add(jg_batchnorm("bn", h, 0.1, 1e-5), h), false);
    /* a bias alone: nothing to scale, it is already in the GEMM's store */
    check_untouched(jg_add(h, jg_param(g, "b", jg_shape(8), jg_zeros())), false);
    /* a per-row scale is no per-channel one */
    check_untouched(jg_mul(h, jg_param(g, "r", jg_shape(32, 1), jg_constant(1))), false);
    /* a scale that depends on the data */
    check_untouched(jg_mul(h, jg_input(g, "scale", JG_F32, jg_shape(1, 8))), false);
    /* one sample: scaling the 16x8 weight costs more than the 1x8 affine */
    jg_node *x1 = jg_input(g, "x1", JG_F32, jg_shape(1, 16));
    check_untouched(jg_batchnorm("bn", jg_matmul(x1, w), 0.1, 1e-5), false);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(pass_bn_fold, evaluation_programs_hold_no_dropout)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(16, 8));
    jg_node *w = jg_param(g, "w", jg_shape(8, 4), jg_he_normal());
    jg_node *y = jg_matmul(jg_dropout(jg_relu(x), 0.5), w);
    t_program_graph ev = t_lower(&y, 1, false), tr = t_lower(&y, 1, true);
    cr_assert_eq(t_count_op(&ev, JG_OP_RANDOM), 0, "no random draw in evaluation");
    cr_assert_gt(t_count_op(&tr, JG_OP_RANDOM), 0, "training draws the mask");
    t_program_graph_free(&ev);
    t_program_graph_free(&tr);
    /* and the evaluation program is the model without dropout */
    jg_graph *e = jg_graph_new();
    jg_node *ex = jg_input(e, "x", JG_F32, jg_shape(16, 8));
    jg_node *ew = jg_param(e, "w", jg_shape(8, 4), jg_he_normal());
    jg_node *want = jg_matmul(jg_relu(ex), ew);
    t_program_graph got = t_lower(&y, 1, false), exp = t_lower(&want, 1, false);
    t_assert_same_graph(&got, &exp);
    t_program_graph_free(&got);
    t_program_graph_free(&exp);
    jg_graph_free(g);
    jg_graph_free(e);
}
