/* How to check the gradients of your own model with jitgrad's finite-difference checker.
 *
 * Build the model in f64 or f32 (the checker computes in double either way), pick the
 * parameters and inputs to check, and read the report. Here: a small two-layer network with a
 * hand-written, deliberately "custom" loss (a smooth hinge), checked element by element and
 * then along random directions, as a large model would be. */
#include "jitgrad.h"

#include <stdio.h>

int main(void)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(8, 5));
    jg_node *t = jg_input(g, "t", JG_F64, jg_shape(8, 1));
    jg_node *w1 = jg_param_as(g, "w1", JG_F64, jg_shape(5, 4), jg_xavier_normal());
    jg_node *b1 = jg_param_as(g, "b1", JG_F64, jg_shape(4), jg_normal(0, 0.1));
    jg_node *w2 = jg_param_as(g, "w2", JG_F64, jg_shape(4, 1), jg_xavier_normal());
    jg_node *h = jg_tanh(jg_add(jg_matmul(x, w1), b1));
    jg_node *score = jg_matmul(h, w2);
    /* smooth hinge: softplus(1 - t * score), averaged */
    jg_node *loss = jg_mean(jg_softplus(jg_shift(jg_neg(jg_mul(t, score)), 1.0)), JG_ALL_AXES,
                            false);

    double targets[8] = { 1, -1, 1, 1, -1, -1, 1, -1 };
    jg_binding bind = { "t", targets, sizeof targets }; /* x gets random N(0, 1) values */
    jg_node *wrt[3] = { w1, b1, w2 };
    jg_gradcheck_report r;

    jg_status st = jg_gradcheck(g, loss, wrt, 3, &(jg_gradcheck_opts){
        .inputs = &bind, .n_inputs = 1 }, &r);
    printf("%s\n", st == JG_OK || st == JG_ERR_GRAD ? r.message : jg_errmsg(g));
    if (st != JG_OK)
        return 1;

    st = jg_gradcheck(g, loss, wrt, 3, &(jg_gradcheck_opts){
        .mode = JG_CHECK_DIRECTIONS, .n_directions = 16, .inputs = &bind, .n_inputs = 1 }, &r);
    printf("%s\n", st == JG_OK || st == JG_ERR_GRAD ? r.message : jg_errmsg(g));

    /* The checker runs the reference executor. When the compiled program's gradients look
     * wrong, bisect the compiler's passes: the JIT against the reference with every pass
     * off, then one more switched on at a time; the report names the first that disagrees. */
    double xs[8 * 5];
    for (int i = 0; i < 8 * 5; i++)
        xs[i] = (i % 7 - 3) / 3.0;
    jg_binding both[2] = { bind, { "x", xs, sizeof xs } };
    jg_node *grads[3];
    jg_bisect_report b;
    if (jg_grad(g, loss, wrt, 3, grads) == JG_OK &&
        jg_bisect_passes(g, grads, 3, NULL, both, 2, 0, 0, &b) == JG_OK)
        printf("pass bisection: %s\n", b.message); /* "none: ..." when all is well */
    jg_graph_free(g);
    return st == JG_OK ? 0 : 1;
}
