/* Lesson 25: L2 regularisation is weight decay. For a loss C(w) + c |w|^2, one SGD step is
 *     w <- w - lr (grad C(w) + 2 c w) = (1 - 2 c lr) w - lr grad C(w):
 * the penalty shrinks every weight by a constant factor before the ordinary step. So the
 * penalty never needs differentiating: a compiler can drop it from the gradient and multiply
 * the weights down in the update instead.
 *
 * What jitgrad's "l2_decay" pass really does (src/compiler/l2_decay.c): under SGD, a
 * jg_l2_penalty added at the top of the loss is cut from the gradient (the penalty's
 * gradient graph is never built) and 2 c w is added inside the update kernel, as the
 * optimiser's coupled l2 does. With fusion on, the unrewritten program's 2 c w fuses into
 * the same update kernel anyway, so both run the SAME number of kernels; the rewrite saves
 * a kernel per penalised parameter only when fusion and simplify are off (the multiply by
 * the penalty's incoming gradient). We report those counts as measured.
 *
 * Experiment: an MLP 784-128-10 on Fashion-MNIST batches, loss = cross entropy + c (|W1|^2
 * + |W2|^2), c = 5e-3, plain SGD lr 0.1, N = 100 steps (20 in --quick) from the same
 * initial weights on the same batches, compiled four ways: the pass off (the penalty
 * differentiated), the pass on (rewritten to decay), the cross entropy alone with the
 * optimiser's decoupled weight_decay = 2c (literally "weight decay"), and the cross entropy
 * alone (no regularisation, to show the differences are not trivially small). Also one step
 * checked against the formula, with grad C from jg_grad at the starting weights.
 * Criterion: HOLDS when the rewritten and the unrewritten programs (and weight_decay) end at
 * the same weights to float tolerance (max difference <= 1e-5 of the largest weight), the
 * unregularised run is at least 100 times farther away, one step matches (1 - 2 c lr) w -
 * lr grad C(w) to 1e-6, the rewritten program graph is smaller as lowered (the penalty's
 * gradient is never built), and the rewrite never costs a kernel: with fusion on it runs at
 * most as many kernels as the unrewritten program (equal is the expected count), with fusion
 * and simplify off strictly fewer. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 128, BATCH = 128, NW = PIXELS * HIDDEN + HIDDEN * 10 };

static const double C = 5e-3, LR = 0.1;

typedef enum way { PENALTY_OFF, PENALTY_ON, WEIGHT_DECAY, PLAIN, WAYS } way;
static const char *const WAY_NAMES[WAYS] = { "L2, pass off", "L2, pass on", "weight_decay",
                                             "no L2" };

typedef struct net {
    jg_graph *g;
    jg_node *x, *y, *w1, *w2, *ce, *loss;
} net;

static net net_new(bool penalty)
{
    net n = { .g = jg_graph_new() };
    jg_graph_set_seed(n.g, 25);
    n.x = jg_input(n.g, "x", JG_F32, jg_shape(BATCH, PIXELS));
    n.y = jg_input(n.g, "y", JG_I32, jg_shape(BATCH));
    n.w1 = jg_param(n.g, "w1", jg_shape(PIXELS, HIDDEN), jg_he_normal());
    jg_node *b1 = jg_param(n.g, "b1", jg_shape(HIDDEN), jg_zeros());
    n.w2 = jg_param(n.g, "w2", jg_shape(HIDDEN, 10), jg_xavier_uniform());
    jg_node *b2 = jg_param(n.g, "b2", jg_shape(10), jg_zeros());
    jg_node *h = jg_relu(jg_add(jg_matmul(n.x, n.w1), b1));
    n.ce = jg_cross_entropy(jg_add(jg_matmul(h, n.w2), b2), n.y);
    n.loss = penalty ? jg_add(n.ce, jg_l2_penalty(C, ((jg_node *[]){ n.w1, n.w2 }), 2)) : n.ce;
    return n;
}

static jg_train_opts opts_of(way w, const lesson_ctx *c, bool fusion)
{
    jg_train_opts o = { .optimizer = jg_sgd(LR, 0),
                        .compile = { .num_threads = c->threads, .no_fusion = !fusion } };
    static const jg_param_group biases = { .prefix = "b", .no_decay = true };
    if (w == WEIGHT_DECAY) { /* the penalty holds the weights only: no decay on b1, b2 */
        o.optimizer.weight_decay = 2 * C;
        o.groups = &biases;
        o.n_groups = 1;
    }
    if (w == PENALTY_OFF)
        o.compile.passes_off = fusion ? "l2_decay" : "l2_decay,simplify";
    else if (!fusion)
        o.compile.passes_off = "simplify";
    return o;
}

static void read_weights(jg_graph *g, float *w)
{
    jg_param_get(g, "w1", w, sizeof(float) * PIXELS * HIDDEN);
    jg_param_get(g, "w2", w + PIXELS * HIDDEN, sizeof(float) * HIDDEN * 10);
}

static double max_abs_diff(const float *a, const float *b)
{
    double m = 0;
    for (int i = 0; i < NW; i++)
        m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Kernels of the training program compiled with or without fusion (and simplify), and the
 * number of nodes of its program graph as lowered (before the graph passes). */
static int count(const lesson_ctx *c, way w, bool fusion, int *kernels, int *nodes)
{
    net n = net_new(w == PENALTY_OFF || w == PENALTY_ON);
    jg_train_opts o = opts_of(w, c, fusion);
    jg_program *p = jg_compile_train(n.g, n.loss, &o);
    jg_program_stats st;
    jg_pass_report r;
    if (!p || jg_program_stats_get(p, &st) || jg_program_pass_report(p, 0, &r)) {
        int s = lesson_fail(c, "%s", jg_errmsg(n.g));
        jg_graph_free(n.g);
        return s;
    }
    *kernels = st.kernels;
    *nodes = r.nodes_before;
    jg_program_free(p);
    jg_graph_free(n.g);
    return 0;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 25, "l2-is-weight-decay"))
        return 2;
    int steps = c.quick ? 20 : 100;
    lesson_data d;
    if (lesson_fashion(&c, (int64_t)steps * BATCH, 1024, &d))
        return 1;
    float *xs = malloc(sizeof(float) * (size_t)steps * BATCH * PIXELS);
    int32_t *ys = malloc(sizeof(int32_t) * (size_t)steps * BATCH);
    float *w[WAYS], *w0 = malloc(sizeof(float) * NW), *w1 = malloc(sizeof(float) * NW);
    for (int k = 0; k < WAYS; k++)
        w[k] = malloc(sizeof(float) * NW);
    jg_loader *ld = jg_loader_new(d.train, BATCH, &(jg_loader_opts){ .drop_last = true });
    int n;
    for (int s = 0; s < steps; s++)
        if (!ld || !jg_loader_next(ld, xs + (size_t)s * BATCH * PIXELS, ys + (size_t)s * BATCH, &n))
            return lesson_fail(&c, "cannot read the batches");
    jg_loader_free(ld);

    /* N steps each way, from the same initial weights (same graph seed and names) */
    double final_loss[WAYS];
    for (int k = 0; k < WAYS; k++) {
        net m = net_new(k == PENALTY_OFF || k == PENALTY_ON);
        jg_train_opts o = opts_of((way)k, &c, true);
        jg_program *p = jg_compile_train(m.g, m.loss, &o);
        if (!p)
            return lesson_fail(&c, "%s", jg_errmsg(m.g));
        if (k == PENALTY_ON)
            read_weights(m.g, w0);
        for (int s = 0; s < steps; s++) {
            float l;
            if (jg_program_set(p, "x", xs + (size_t)s * BATCH * PIXELS,
                               sizeof(float) * BATCH * PIXELS) ||
                jg_program_set(p, "y", ys + (size_t)s * BATCH, sizeof(int32_t) * BATCH) ||
                jg_program_run(p) || jg_program_get(p, 0, &l, sizeof l))
                return lesson_fail(&c, "%s", jg_errmsg(p));
            final_loss[k] = l;
            if (k == PENALTY_ON && s == 0)
                read_weights(m.g, w1);
        }
        read_weights(m.g, w[k]);
        jg_program_free(p);
        jg_graph_free(m.g);
    }

    /* one step by the formula: grad C at w0 from jg_grad, on the first batch */
    net m = net_new(false);
    jg_node *grads[2];
    jg_grad(m.g, m.ce, (jg_node *[]){ m.w1, m.w2 }, 2, grads);
    jg_program *gp = jg_compile(m.g, grads, 2, &(jg_opts){ .num_threads = c.threads });
    float *gc = malloc(sizeof(float) * NW);
    if (!gp || jg_program_set(gp, "x", xs, sizeof(float) * BATCH * PIXELS) ||
        jg_program_set(gp, "y", ys, sizeof(int32_t) * BATCH) || jg_program_run(gp) ||
        jg_program_get(gp, 0, gc, sizeof(float) * PIXELS * HIDDEN) ||
        jg_program_get(gp, 1, gc + PIXELS * HIDDEN, sizeof(float) * HIDDEN * 10))
        return lesson_fail(&c, "%s", gp ? jg_errmsg(gp) : jg_errmsg(m.g));
    double formula_err = 0;
    for (int i = 0; i < NW; i++) {
        double f = (1 - 2 * C * LR) * (double)w0[i] - LR * (double)gc[i];
        formula_err = fmax(formula_err, fabs(f - (double)w1[i]));
    }
    jg_program_free(gp);
    jg_graph_free(m.g);

    int kernels[2][2], nodes[2][2]; /* [pass off/on][fusion off/on] */
    for (int k = 0; k < 2; k++)
        for (int f = 0; f < 2; f++)
            if (count(&c, k ? PENALTY_ON : PENALTY_OFF, f, &kernels[k][f], &nodes[k][f]))
                return 1;

    double scale = 0;
    for (int i = 0; i < NW; i++)
        scale = fmax(scale, fabs((double)w[PENALTY_OFF][i]));
    printf("MLP %d-%d-10, SGD lr %g, L2 c = %g (decay factor per step %.4f), %d steps of "
           "%d images\n", PIXELS, HIDDEN, LR, C, 1 - 2 * C * LR, steps, BATCH);
    lesson_table((const char *[]){ "program", "last loss*", "max |w - w_off|", "relative" }, 4);
    double diff[WAYS];
    for (int k = 0; k < WAYS; k++) {
        diff[k] = max_abs_diff(w[k], w[PENALTY_OFF]);
        lesson_row("%-14s %-14.6f %-14.3e %.3e", WAY_NAMES[k], final_loss[k], diff[k],
                   diff[k] / scale);
    }
    printf("(* the loss output includes the penalty where the loss has one)\n");
    printf("\none step against (1 - 2 c lr) w - lr grad C(w): max difference %.3e\n",
           formula_err);
    printf("\nkernels (and program-graph nodes as lowered) of the training step\n");
    lesson_table((const char *[]){ "l2_decay pass", "fusion on", "fusion+simplify off" }, 3);
    for (int k = 0; k < 2; k++)
        lesson_row("%-14s %-3d (%4d nodes)   %-3d (%4d nodes)", k ? "on" : "off",
                   kernels[k][1], nodes[k][1], kernels[k][0], nodes[k][0]);
    printf("(with fusion on the unrewritten 2 c w fuses into the same update kernel: equal "
           "counts are what the pass delivers; its saving shows with fusion off)\n");

    for (int k = 0; k < WAYS; k++)
        free(w[k]);
    free(w0), free(w1), free(gc), free(xs), free(ys);
    lesson_data_free(&d);
    bool same = diff[PENALTY_ON] <= 1e-5 * scale && diff[WEIGHT_DECAY] <= 1e-5 * scale;
    bool nontrivial = diff[PLAIN] >= 100 * fmax(diff[PENALTY_ON], diff[WEIGHT_DECAY]);
    bool kernels_ok = kernels[1][1] <= kernels[0][1] && kernels[1][0] < kernels[0][0] &&
                      nodes[1][1] < nodes[0][1];
    return lesson_verdict(&c, same && nontrivial && formula_err <= 1e-6 && kernels_ok,
                          "after %d steps max |w_on - w_off| %.1e, weight_decay %.1e (no L2 "
                          "%.1e; largest weight %.2f); one step vs formula %.1e; pass on/off: "
                          "%d/%d program nodes, kernels %d/%d with fusion, %d/%d without", steps,
                          diff[PENALTY_ON], diff[WEIGHT_DECAY], diff[PLAIN], scale, formula_err,
                          nodes[1][1], nodes[0][1], kernels[1][1], kernels[0][1], kernels[1][0],
                          kernels[0][0]);
}
