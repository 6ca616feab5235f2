/* Pass "epilogue" (src/compiler/epilogue.c) and what it buys: pointwise ops after a
 * reshaped matmul move ahead of the reshape, so conv2d's bias, batchnorm's affine (folded or
 * not) and activation run in the GEMM's store; the kernels each layer takes, in evaluation
 * and training programs; values and gradients equal with the pass off. */
#include "support/pass_check.h"
#include "support/support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(pass_epilogue);

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

static void check_rule(jg_node *before, jg_node *expected)
{
    t_program_graph got = t_lower(&before, 1, false), want = t_lower(&expected, 1, false);
    cr_assert(pass_epilogue(&got.c), "epilogue reported no change");
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

static void check_untouched(jg_node *y)
{
    t_program_graph got = t_lower(&y, 1, false), want = t_lower(&y, 1, false);
    cr_assert_not(pass_epilogue(&got.c), "epilogue changed a graph it must leave alone");
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

/* conv2d's shape of things: [1,8,12] x [4,1,12,25] -> [4,1,8,25], seen as [4,8,5,5] */
#define CONV_LIKE(gr)                                                                        \
    jg_matmul(jg_param(gr, "w", jg_shape(1, 8, 12), jg_zeros()),                             \
              jg_input(gr, "cols", JG_F32, jg_shape(4, 1, 12, 25)))
#define NCHW jg_shape(4, 8, 5, 5)

Test(pass_epilogue, an_activation_moves_ahead_of_the_reshape)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    check_rule(jg_relu(jg_reshape(CONV_LIKE(g), NCHW)), jg_reshape(jg_relu(CONV_LIKE(e)), NCHW));
    jg_graph_free(g);
    jg_graph_free(e);
}

Test(pass_epilogue, a_per_channel_chain_moves_with_its_operands_seen_through_the_reshape)
{
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *p = jg_param(g, "p", jg_shape(8), jg_zeros());
    jg_node *before = jg_relu(jg_mul(jg_add(jg_reshape(CONV_LIKE(g), NCHW),
                                            jg_reshape(p, jg_shape(1, 8, 1, 1))),
                                     jg_scalar(g, JG_F32, 3)));
    jg_node *ep = jg_param(e, "p", jg_shape(8), jg_zeros());
    jg_node *want = jg_reshape(jg_relu(jg_mul(jg_add(CONV_LIKE(e),
                                                     jg_reshape(ep, jg_shape(1, 1, 8, 1))),
                                              jg_scalar(e, JG_F32, 3))), NCHW);
    check_rule(before, want);
    jg_graph_free(g);
    jg_graph_free(e);
}

Test(pass_epilogue, leaves_what_the_gemm_could_not_take)
{
    jg_graph *g = jg_graph_new();
    jg_node *m = CONV_LIKE(g);
    /* varies along W but not H: no operand against the merged H*W */
    check_untouched(jg_add(jg_reshape(m, NCHW), jg_param(g, "c", jg_shape(1, 1, 1, 5), jg_zeros())));
    /* the matmul's result is needed elsewhere: it gets its own buffer anyway */
    jg_node *r = jg_reshape(m, NCHW);
    check_untouched(jg_add(jg_relu(r), jg_sum(m, JG_ALL_AXES, false)));
    /* no matmul behind the reshape */
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 200));
    check_untouched(jg_relu(jg_reshape(jg_exp(x), NCHW)));
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

/* ---- kernels per layer, from the program's own dump */

typedef struct kernels {
    int n;
    char *dump; /* jg_program_dump's text */
} kernels;

static kernels compile_kernels(jg_graph *g, jg_node *y, jg_mode mode, const char *off)
{
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .mode = mode, .passes_off = off });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_stats st;
    cr_assert_eq(jg_program_stats_get(p, &st), JG_OK);
    kernels k = { .n = st.kernels };
    size_t size;
    FILE *f = open_memstream(&k.dump, &size);
    cr_assert(f);
    jg_program_dump(p, f);
    fclose(f);
    jg_program_free(p);
    return k;
}

/* The dump line of the matmul kernel (exactly one expected). */
static const char *gemm_line(const kernels *k, char *line, size_t size)
{
    const char *at = strstr(k->dump, "(matmul)");
    cr_assert(at, "no matmul kernel in\n%s", k->dump);
    cr_assert_null(strstr(at + 1, "(matmul)"), "two matmul kernels in\n%s", k->dump);
    const char *start = at, *end = strchr(at, '\n');
    while (start > k->dump && start[-1] != '\n')
        start--;
    snprintf(line, size, "%.*s", (int)(end - start), start);
    return line;
}

/* conv2d 3x3 (+ bias) [+ batchnorm] + relu, 8 -> 16 channels on 16x16, batch 8. */
static jg_node *conv_layer(jg_graph *g, bool bn)
{
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 8, 16, 16));
    jg_node *w = jg_param(g, "w", jg_shape(16, 8, 3, 3), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(16), jg_normal(0, 1));
    jg_node *y = jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    return jg_relu(bn ? jg_batchnorm("bn", y, 0.1, 1e-5) : y);
}

Test(pass_epilogue, conv_bias_relu_is_one_gemm_in_evaluation)
{
    jg_graph *g = jg_graph_new();
    jg_node *y = conv_layer(g, false);
    kernels on = compile_kernels(g, y, JG_MODE_EVAL, NULL);
    kernels off = compile_kernels(g, y, JG_MODE_EVAL, "epilogue");
    char line[512];
    /* one GEMM gathering its im2col from the unpadded input, bias and relu in its store */
    cr_assert_eq(on.n, 1, "%s", on.dump);
    cr_assert(strstr(gemm_line(&on, line, sizeof line), "relu"), "%s", line);
    cr_assert_eq(off.n, on.n + 1, "the relu was a pass of its own:\n%s", off.dump);
    free(on.dump);
    free(off.dump);
    jg_graph_free(g);
}

Test(pass_epilogue, conv_bias_batchnorm_relu_in_evaluation)
{
    jg_graph *g = jg_graph_new();
    jg_node *y = conv_layer(g, true);
    char line[512];
    /* folded: small kernels over the channels and the weights, then the GEMM adding the
     * folded bias and applying the relu in its store */
    kernels folded = compile_kernels(g, y, JG_MODE_EVAL, NULL);
    cr_assert_eq(folded.n, 3, "%s", folded.dump);
    gemm_line(&folded, line, sizeof line);
    cr_assert(strstr(line, "add") && strstr(line, "relu") && !strstr(line, "rsqrt"), "%s", line);
    cr_assert_null(strstr(folded.dump, "f32[8,16,16,16]"), "no pass over the activations "
                   "outside the GEMM:\n%s", folded.dump);
    /* not folded: the whole affine runs in the store instead */
    kernels unfolded = compile_kernels(g, y, JG_MODE_EVAL, "bn_fold");
    cr_assert_eq(unfolded.n, 1, "%s", unfolded.dump);
    cr_assert(strstr(gemm_line(&unfolded, line, sizeof line), "rsqrt"), "%s", line);
    /* neither: the affine and relu are a pass of their own */
    kernels neither = compile_kernels(g, y, JG_MODE_EVAL, "bn_fold,epilogue");
    cr_assert_eq(neither.n, 2, "%s", neither.dump);
    free(folded.dump);
    free(unfolded.dump);
    free(neither.dump);
    jg_graph_free(g);
}

Test(pass_epilogue, conv_bias_in_training_and_linear_bias_relu)
{
    jg_graph *g = jg_graph_new();
    char line[512];
    /* training: the batch statistics need the conv's result, so only the bias joins the
     * GEMM; the normalisation and relu are the batchnorm passes' business */
    kernels train = compile_kernels(g, conv_layer(g, true), JG_MODE_TRAIN, NULL);
    cr_assert(strstr(gemm_line(&train, line, sizeof line), "add"), "%s", line);
    free(train.dump);
    /* a linear layer: matmul, bias and relu are one kernel, evaluating or training */
    jg_node *x = jg_input(g, "x2", JG_F32, jg_shape(64, 32));
    jg_node *w = jg_param(g, "w2", jg_shape(32, 16), jg_he_normal());
    jg_node *b = jg_param(g, "b2", jg_shape(16), jg_normal(0, 1));
    jg_node *y = jg_relu(jg_add(jg_matmul(x, w), b));
    for (int mode = JG_MODE_TRAIN; mode <= JG_MODE_EVAL; mode++) {
        kernels k = compile_kernels(g, y, (jg_mode)mode, NULL);
        cr_assert_eq(k.n, 1, "%s", k.dump);
        cr_assert(strstr(gemm_line(&k, line, sizeof line), "relu"), "%s", line);
        free(k.dump);
    }
    jg_graph_free(g);
}

Test(pass_epilogue, a_residual_addition_joins_the_store)
{
    /* relu(conv(x) + x): the residual is read through a reshape of its buffer */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 8, 10, 10));
    jg_node *w = jg_param(g, "w", jg_shape(8, 8, 3, 3), jg_he_normal());
    jg_node *y = jg_relu(jg_add(jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 }), x));
    kernels on = compile_kernels(g, y, JG_MODE_EVAL, NULL);
    kernels off = compile_kernels(g, y, JG_MODE_EVAL, "epilogue");
    char line[512];
    gemm_line(&on, line, sizeof line);
    cr_assert(strstr(line, "add") && strstr(line, "relu"), "%s", line);
    cr_assert_eq(off.n, on.n + 1, "%s\n%s", on.dump, off.dump);
    float *xv = uniform_input(4 * 8 * 100, 6);
    jg_binding in = { "x", xv, 4 * 8 * 100 * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "epilogue", &in, 1, 1e-6);
    free(xv);
    free(on.dump);
    free(off.dump);
    jg_graph_free(g);
}

Test(pass_epilogue, same_values_and_gradients_with_the_pass_off)
{
    jg_graph *g = jg_graph_new();
    jg_node *y = conv_layer(g, false);
    jg_node *wrt[] = { jg_param_find(g, "w"), jg_param_find(g, "b") }, *grads[2];
    jg_node *loss = jg_sum(jg_square(y), JG_ALL_AXES, false);
    cr_assert_eq(jg_grad(g, loss, wrt, 2, grads), JG_OK, "%s", jg_errmsg(g));
    float *xv = uniform_input(8 * 8 * 16 * 16, 4);
    jg_binding in = { "x", xv, 8 * 8 * 16 * 16 * sizeof *xv };
    jg_node *outs[] = { y, grads[0], grads[1] };
    t_assert_pass_neutral(g, outs, 3, "epilogue", &in, 1, 1e-5);
    jg_node *bn = conv_layer(jg_graph_new(), true); /* and the batchnorm layer's values */
    jg_graph *g2 = bn->graph;
    t_assert_pass_neutral(g2, &bn, 1, "epilogue", &in, 1, 1e-5);
    jg_graph_free(g2);
    free(xv);
    jg_graph_free(g);
}
