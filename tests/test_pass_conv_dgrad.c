/* Pass "conv_dgrad" (src/compiler/conv_dgrad.c): a convolution's input gradient, a GEMM into
 * an im2col-shaped buffer scattered back to pixels, becomes one GEMM whose operand gathers
 * the output gradient by the inverted index table (the full convolution with the flipped
 * kernel). It applies to stride-1 convolutions with any padding, dilation and groups (not
 * depthwise: simplify has made that GEMM a product), not to strided ones (4x the
 * arithmetic) or valid ones on small images (more than 5/4 of it), nor where the GEMM's
 * result is read elsewhere; the values agree with the pass off and with the reference
 * executor. */
#include "support/pass_check.h"
#include "support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

TestSuite(pass_conv_dgrad);

typedef struct conv_case {
    int c, o, h, w, k, pad, dil, groups, stride;
} conv_case;

enum { N = 2 };

/* dx of sum(conv(x, w) * dy), and whether the pass must rewrite it; checks the graph before
 * and after the pass, then the values on the JIT with the pass on and off. */
static void check(conv_case cc, bool rewritten)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(N, cc.c, cc.h, cc.w));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(cc.o, cc.c / cc.groups, cc.k, cc.k),
                             jg_normal(0, 1));
    jg_node *y = jg_conv2d(x, w, NULL, &(jg_conv_opts){
        .pad_h = cc.pad, .pad_w = cc.pad, .dilation_h = cc.dil, .dilation_w = cc.dil,
        .groups = cc.groups, .stride_h = cc.stride, .stride_w = cc.stride });
    jg_node *dy = jg_input(g, "dy", JG_F64, jg_node_shape(y));
    jg_node *dx;
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), &x, 1, &dx), JG_OK,
                 "%s", jg_errmsg(g));
    t_program_graph p = t_lower(&dx, 1, false);
    pass_simplify(&p.c);
    pass_dce(&p.c);
    cr_assert_eq(t_count_op(&p, JG_OP_SCATTER_ADD), 1);
    cr_assert_eq(t_count_op(&p, JG_OP_TAKE), 0, "dx does not need the forward's im2col");
    int gemms = t_count_op(&p, JG_OP_MATMUL);
    cr_assert_eq(pass_conv_dgrad(&p.c), rewritten, "%d->%d %dx%d k%d pad %d dil %d groups %d",
                 cc.c, cc.o, cc.h, cc.w, cc.k, cc.pad, cc.dil, cc.groups);
    cr_assert_eq(p.c.status, JG_OK, "%s", p.c.errmsg);
    pass_dce(&p.c);
    cr_assert_eq(t_count_op(&p, JG_OP_SCATTER_ADD), !rewritten);
    cr_assert_eq(t_count_op(&p, JG_OP_TAKE), rewritten, "the gather of dy");
    cr_assert_eq(t_count_op(&p, JG_OP_MATMUL), gemms, "one GEMM for another");
    t_program_graph_free(&p);

    int64_t nx = jg_shape_numel(jg_node_shape(x)), ny = jg_shape_numel(jg_node_shape(y));
    double *xv = malloc((size_t)nx * sizeof *xv), *dyv = malloc((size_t)ny * sizeof *dyv);
    for (int64_t i = 0; i < nx; i++)
        xv[i] = sin(0.37 * (double)i);
    for (int64_t i = 0; i < ny; i++)
        dyv[i] = cos(0.11 * (double)i);
    jg_binding in[2] = { { "x", xv, (size_t)nx * sizeof *xv },
                         { "dy", dyv, (size_t)ny * sizeof *dyv } };
    t_assert_pass_neutral(g, &dx, 1, "conv_dgrad", in, 2, 1e-12);
    free(xv), free(dyv);
    jg_graph_free(g);
}

Test(pass_conv_dgrad, same_padding_is_one_gathering_gemm)
{
    check((conv_case){ 3, 5, 7, 7, 3, 1, 1, 1, 1 }, true);
    check((conv_case){ 17, 15, 28, 28, 3, 1, 1, 1, 1 }, true);
}

Test(pass_conv_dgrad, padding_dilation_groups_and_depthwise)
{
    check((conv_case){ 4, 6, 28, 28, 3, 0, 1, 1, 1 }, true); /* valid: holes at every edge */
    check((conv_case){ 4, 6, 9, 11, 3, 0, 1, 1, 1 }, false); /* valid, small: 11/7 the work */
    check((conv_case){ 3, 4, 13, 13, 5, 2, 1, 1, 1 }, true);
    check((conv_case){ 4, 6, 9, 11, 3, 2, 2, 2, 1 }, true);  /* dilation 2, groups 2 */
    /* depthwise: one output channel a group makes dx's GEMM an outer product (K = 1),
     * which simplify makes a plain product before this pass sees it */
    check((conv_case){ 5, 5, 8, 8, 3, 1, 1, 5, 1 }, false);
    check((conv_case){ 1, 4, 7, 7, 3, 2, 1, 1, 1 }, true);   /* one channel, padding 2 */
}

/* A 1-D convolution as conv2d (one row, a 1x3 kernel, padding on W only): the scatter's fill
 * column would also qualify on its own; the rewrite happens at the slice that drops it. */
Test(pass_conv_dgrad, a_one_row_convolution_is_rewritten_at_its_slice)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(N, 3, 1, 8));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(4, 3, 1, 3), jg_normal(0, 1));
    jg_node *y = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_w = 1 });
    jg_node *dy = jg_input(g, "dy", JG_F64, jg_node_shape(y));
    jg_node *dx;
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, dy), JG_ALL_AXES, false), &x, 1, &dx), JG_OK);
    t_program_graph p = t_lower(&dx, 1, false);
    pass_simplify(&p.c);
    pass_dce(&p.c);
    cr_assert(pass_conv_dgrad(&p.c));
    pass_dce(&p.c);
    cr_assert_eq(t_count_op(&p, JG_OP_SCATTER_ADD), 0);
    cr_assert_eq(t_count_op(&p, JG_OP_SLICE), 0, "the gathering GEMM makes the 8 kept columns");
    t_program_graph_free(&p);
    double xv[N * 3 * 8], dyv[N * 4 * 8];
    for (int i = 0; i < N * 3 * 8; i++)
        xv[i] = sin(0.3 * i);
    for (int i = 0; i < N * 4 * 8; i++)
        dyv[i] = cos(0.2 * i);
    jg_binding in[2] = { { "x", xv, sizeof xv }, { "dy", dyv, sizeof dyv } };
    t_assert_pass_neutral(g, &dx, 1, "conv_dgrad", in, 2, 1e-12);
    jg_graph_free(g);
}

Test(pass_conv_dgrad, strided_convolutions_keep_the_scatter)
{
    check((conv_case){ 3, 4, 14, 14, 3, 1, 1, 1, 2 }, false);
}

/* The input-gradient GEMM's result read elsewhere too (here: its scattered form is an
 * output as well as the GEMM itself) is not rewritten. */
Test(pass_conv_dgrad, a_shared_gemm_stays)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(N, 2, 5, 5));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(3, 2, 3, 3), jg_normal(0, 1));
    jg_node *y = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    jg_node *dx;
    cr_assert_eq(jg_grad(g, jg_sum(jg_mul(y, y), JG_ALL_AXES, false), &x, 1, &dx), JG_OK);
    t_program_graph p = t_lower(&dx, 1, false);
    pass_simplify(&p.c);
    pass_dce(&p.c);
    /* find the GEMM under the scatter and make it a root too */
    jg_node *mm = NULL;
    for (int id = 0; id < p.c.g->n_nodes; id++)
        if (p.c.g->nodes[id]->op == JG_OP_SCATTER_ADD)
            mm = p.c.g->nodes[id]->in[0]->in[0];
    cr_assert(mm && mm->op == JG_OP_MATMUL);
    jg_node *roots[2] = { p.c.roots[0], mm };
    p.c.roots = roots;
    p.c.n_roots = 2;
    cr_assert_not(pass_conv_dgrad(&p.c));
    p.c.roots = p.roots;
    p.c.n_roots = 1;
    t_program_graph_free(&p);
    jg_graph_free(g);
}
