/* Pass "linear_fold" (src/compiler/linear_fold.c): two linear layers with nothing
 * non-linear between them become one matmul when that costs fewer FLOPs, the evaluation
 * program computes the same within 1e-5 with the pass off, and nothing folds where the FLOPs
 * would rise, the hidden layer is needed elsewhere, something non-linear sits between, or the
 * program trains. */
#include "support/pass_check.h"
#include "support/support.h"

#include <stdlib.h>

TestSuite(pass_linear_fold);

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

/* A linear layer x @ w + b with "<name>.w" [i, o] and "<name>.b" [o]. */
static jg_node *linear(jg_node *x, const char *name, int64_t i, int64_t o)
{
    char wn[32], bn[32];
    snprintf(wn, sizeof wn, "%s.w", name);
    snprintf(bn, sizeof bn, "%s.b", name);
    jg_graph *g = x->graph;
    jg_node *w = jg_param(g, wn, jg_shape(i, o), jg_seeded(jg_he_normal(), (uint64_t)i * o));
    jg_node *b = jg_param(g, bn, jg_shape(o), jg_seeded(jg_normal(0, 1), (uint64_t)o));
    return jg_add(jg_matmul(x, w), b);
}

/* Runs linear_fold on y's evaluation program graph; asserts it changed it and returns it. */
static t_program_graph folded(jg_node *y)
{
    t_program_graph p = t_lower(&y, 1, false);
    cr_assert(pass_linear_fold(&p.c), "linear_fold reported no change");
    cr_assert_eq(p.c.status, JG_OK, "%s", p.c.errmsg);
    return p;
}

static void check_untouched(jg_node *y, bool train)
{
    t_program_graph got = t_lower(&y, 1, train), want = t_lower(&y, 1, train);
    cr_assert_not(pass_linear_fold(&got.c), "linear_fold changed a graph it must leave alone");
    cr_assert_eq(got.c.status, JG_OK, "%s", got.c.errmsg);
    t_assert_same_graph(&got, &want);
    t_program_graph_free(&got);
    t_program_graph_free(&want);
}

Test(pass_linear_fold, a_wide_linear_pair_becomes_one_matmul)
{
    /* R=256 rows, 8 -> 64 -> 8: 256*64*(8+8) = 262,144 multiply-adds against
     * 8*64*8 + 256*8*8 = 20,480 folded */
    jg_graph *g = jg_graph_new(), *e = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(256, 8));
    jg_node *y = linear(linear(x, "l1", 8, 64), "l2", 64, 8);

    jg_node *ex = jg_input(e, "x", JG_F32, jg_shape(256, 8));
    jg_node *a = jg_param(e, "l1.w", jg_shape(8, 64), jg_zeros());
    jg_node *av = jg_param(e, "l1.b", jg_shape(64), jg_zeros());
    jg_node *b = jg_param(e, "l2.w", jg_shape(64, 8), jg_zeros());
    jg_node *bv = jg_param(e, "l2.b", jg_shape(8), jg_zeros());
    jg_node *c = jg_add(jg_matmul(jg_reshape(av, jg_shape(1, 64)), b), bv);
    jg_node *want = jg_add(jg_matmul(ex, jg_matmul(a, b)), c);

    t_program_graph got = folded(y), exp = t_lower(&want, 1, false);
    t_assert_same_graph(&got, &exp);
    t_program_graph_free(&got);
    t_program_graph_free(&exp);

    float *xv = uniform_input(256 * 8, 1);
    jg_binding in = { "x", xv, 256 * 8 * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "linear_fold", &in, 1, 1e-5);
    free(xv);
    jg_graph_free(g);
    jg_graph_free(e);
}

Test(pass_linear_fold, three_layers_fold_pair_by_pair_into_one)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(512, 8));
    jg_node *h = jg_matmul(linear(x, "l1", 8, 64), jg_param(g, "w2", jg_shape(64, 48),
                                                             jg_he_normal()));
    jg_node *y = linear(h, "l3", 48, 6);
    t_program_graph p = folded(y);
    pass_dce(&p.c);
    /* x @ (A @ B @ C), the biases pushed through the weights: one matmul over the rows */
    int over_rows = 0;
    for (int id = 0; id < p.c.g->n_nodes; id++)
        over_rows += p.c.g->nodes[id]->op == JG_OP_MATMUL && p.c.g->nodes[id]->shape.dim[0] == 512;
    cr_assert_eq(over_rows, 1, "%d matmuls over the 512 rows", over_rows);
    t_program_graph_free(&p);
    float *xv = uniform_input(512 * 8, 2);
    jg_binding in = { "x", xv, 512 * 8 * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "linear_fold", &in, 1, 1e-5);
    free(xv);
    jg_graph_free(g);
}

Test(pass_linear_fold, two_pointwise_convolutions_fold_as_columns)
{
    /* 1x1 convolutions are left matmuls [1,O,C] @ [N,1,C,H*W]: B @ (A @ x + a) */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 6, 12, 12));
    jg_node *w1 = jg_param(g, "w1", jg_shape(64, 6, 1, 1), jg_he_normal());
    jg_node *b1 = jg_param(g, "b1", jg_shape(64), jg_normal(0, 1));
    jg_node *w2 = jg_param(g, "w2", jg_shape(6, 64, 1, 1), jg_he_normal());
    jg_node *b2 = jg_param(g, "b2", jg_shape(6), jg_normal(0, 1));
    jg_node *y = jg_conv2d(jg_conv2d(x, w1, b1, NULL), w2, b2, NULL);
    t_program_graph p = t_lower(&y, 1, false);
    pass_simplify(&p.c); /* conv's NCHW reshape and the next conv's reshape back cancel */
    cr_assert(pass_linear_fold(&p.c));
    cr_assert_eq(p.c.status, JG_OK, "%s", p.c.errmsg);
    pass_dce(&p.c);
    int over_pixels = 0;
    for (int id = 0; id < p.c.g->n_nodes; id++)
        over_pixels += p.c.g->nodes[id]->op == JG_OP_MATMUL &&
                       jg_shape_numel(p.c.g->nodes[id]->shape) >= 4 * 6 * 144;
    cr_assert_eq(over_pixels, 1);
    t_program_graph_free(&p);
    float *xv = uniform_input(4 * 6 * 144, 3);
    jg_binding in = { "x", xv, 4 * 6 * 144 * sizeof *xv };
    t_assert_pass_neutral(g, &y, 1, "linear_fold", &in, 1, 1e-5);
    free(xv);
    jg_graph_free(g);
}

Test(pass_linear_fold, leaves_what_must_not_fold)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(256, 8));
    /* a bottleneck 32 -> 4 -> 32: 256*4*64 = 65,536 against 32*4*32 + 256*32*32 folded */
    jg_node *xb = jg_input(g, "xb", JG_F32, jg_shape(256, 32));
    check_untouched(linear(linear(xb, "n1", 32, 4), "n2", 4, 32), false);
    /* something non-linear between */
    check_untouched(linear(jg_relu(linear(x, "r1", 8, 64)), "r2", 64, 8), false);
    /* the hidden layer is needed elsewhere too */
    jg_node *h = linear(x, "u1", 8, 64);
    jg_node *both = jg_add(jg_sum(h, JG_ALL_AXES, false),
                           jg_sum(linear(h, "u2", 64, 8), JG_ALL_AXES, false));
    check_untouched(both, false);
    /* a per-row term between the layers does not pass through the second as a vector */
    jg_node *rows = jg_add(jg_matmul(x, jg_param_find(g, "u1.w")),
                           jg_param(g, "r", jg_shape(256, 1), jg_zeros()));
    check_untouched(jg_matmul(rows, jg_param_find(g, "u2.w")), false);
    /* training programs keep their layers (gradients need the hidden one) */
    jg_node *pair = linear(linear(x, "t1", 8, 64), "t2", 64, 8);
    t_program_graph tr = t_lower(&pair, 1, true);
    cr_assert_not(pass_linear_fold(&tr.c));
    t_program_graph_free(&tr);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}
