/* Lesson 6: equal initial weights never break the symmetry between the units of a layer. If
 * every unit of a hidden layer starts with the same incoming and outgoing weights, they
 * compute the same value, receive the same gradient and take the same step, forever: a
 * layer of 64 units behaves as one. A model without hidden units has no such symmetry to
 * break: logistic regression is convex, and from a constant start it reaches the same loss
 * as from a random one.
 *
 * Experiment: on Fashion-MNIST, a 784-64-64-10 ReLU net trained by SGD (momentum 0.9) from
 * all weights 0.01 (biases 0) and from He-normal weights; then logistic regression (784-10)
 * from all weights 0.01 and from Xavier-uniform weights, over the same batches. After
 * training, the constant-start net's weights are compared unit by unit: the columns of the
 * hidden layers' weight matrices (a unit's incoming weights) and the rows of the next
 * matrix (its outgoing weights). The compiler's lint is asked whether it warned.
 * Criterion: HOLDS when (1) after training, every hidden unit's incoming and outgoing
 * weights equal those of the first unit of its layer exactly (max difference 0), (2) the
 * constant-start net's test accuracy stays low: at least 20 points below the random-start
 * net's, (3) logistic regression's final training loss from the constant start is within 2%
 * of the random start's, and (4) the lint warned about the constant initialiser. The lint
 * warns about logistic regression's constant start too, where it is harmless (its "units"
 * are the classes, told apart by the labels): a warning, not an error. Full run: units
 * identical to the bit, test accuracy 0.358 against 0.862, losses 0.4198 vs 0.4200. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 64 };

typedef struct net {
    bool hidden; /* false: logistic regression */
    bool constant;
} net;

static jg_node *model(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch;
    const net *n = arg;
    if (!n->hidden)
        return lesson_linear(g, "fc", x, PIXELS, 10,
                             n->constant ? jg_constant(0.01) : jg_xavier_uniform());
    jg_init init = n->constant ? jg_constant(0.01) : jg_he_normal();
    jg_node *h = jg_relu(lesson_linear(g, "fc1", x, PIXELS, HIDDEN, init));
    h = jg_relu(lesson_linear(g, "fc2", h, HIDDEN, HIDDEN, init));
    return lesson_linear(g, "fc3", h, HIDDEN, 10, init);
}

/* The largest difference between any unit of a layer and its first unit: columns of
 * w [rows, cols] when by_column, else rows. */
static double max_unit_difference(const float *w, int rows, int cols, bool by_column)
{
    double m = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            float ref = by_column ? w[r * cols] : w[c];
            m = fmax(m, fabs((double)w[r * cols + c] - ref));
        }
    return m;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 6, "constant-init"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 0, c.quick ? 1000 : 0, &d))
        return 1;
    net nets[4] = { { true, true }, { true, false }, { false, true }, { false, false } };
    const char *names[4] = { "mlp constant", "mlp he", "logreg constant", "logreg xavier" };
    lesson_fit fits[4];
    jg_graph *g[4];
    jg_program *ev[4];
    bool lint[4];
    for (int i = 0; i < 4; i++) {
        fits[i] = (lesson_fit){ .model = model, .arg = &nets[i], .batch = 128,
                                .optimizer = jg_sgd(nets[i].hidden ? 0.01 : 0.05, 0.9),
                                .epochs = c.quick ? 2 : nets[i].hidden ? 5 : 10,
                                .shuffle = true, .seed = 1 };
        if (lesson_train(&c, &fits[i], d.train, d.test, &g[i], &ev[i]))
            return 1;
        lint[i] = strstr(jg_program_warnings(ev[i]), "constant initialiser") != NULL;
    }
    printf("lint on the constant-start programs:\n%s", jg_program_warnings(ev[0]));

    /* Unit by unit, the constant-start net's weights. */
    static float w1[PIXELS * HIDDEN], w2[HIDDEN * HIDDEN], w3[HIDDEN * 10];
    if (jg_param_get(g[0], "fc1.w", w1, sizeof w1) || jg_param_get(g[0], "fc2.w", w2, sizeof w2) ||
        jg_param_get(g[0], "fc3.w", w3, sizeof w3))
        return lesson_fail(&c, "%s", jg_errmsg(g[0]));
    double diff[4] = { max_unit_difference(w1, PIXELS, HIDDEN, true),
                       max_unit_difference(w2, HIDDEN, HIDDEN, false),
                       max_unit_difference(w2, HIDDEN, HIDDEN, true),
                       max_unit_difference(w3, HIDDEN, 10, false) };
    /* And the same for the random start, to show what differing units look like. */
    static float r1[PIXELS * HIDDEN];
    jg_param_get(g[1], "fc1.w", r1, sizeof r1);
    double spread_w1 = 0;
    for (int i = 0; i < PIXELS * HIDDEN; i++)
        spread_w1 = fmax(spread_w1, fabs(w1[i] - 0.01));

    const char *cols[] = { "model", "epochs", "loss (last)", "train acc", "test acc", "lint" };
    lesson_table(cols, 6);
    for (int i = 0; i < 4; i++)
        lesson_row("%-14s %-14d %-14.5f %-14.4f %-14.4f %s", names[i], fits[i].epochs_run,
                   fits[i].loss[fits[i].epochs_run - 1], fits[i].train_accuracy,
                   fits[i].test_accuracy[fits[i].epochs_run - 1], lint[i] ? "warned" : "-");
    printf("\nconstant-start mlp after training, max difference from the layer's first unit:\n");
    const char *cols2[] = { "layer 1 in", "layer 1 out", "layer 2 in", "layer 2 out" };
    lesson_table(cols2, 4);
    lesson_row("%-14g %-14g %-14g %-14g", diff[0], diff[1], diff[2], diff[3]);
    printf("(its weights did move: fc1.w is up to %.4g away from 0.01; the he-start net's fc1 "
           "units differ by up to %.4g)\n", spread_w1, max_unit_difference(r1, PIXELS, HIDDEN, true));

    double worst = fmax(fmax(diff[0], diff[1]), fmax(diff[2], diff[3]));
    double acc_const = fits[0].test_accuracy[fits[0].epochs_run - 1];
    double acc_rand = fits[1].test_accuracy[fits[1].epochs_run - 1];
    double l_const = fits[2].loss[fits[2].epochs_run - 1];
    double l_rand = fits[3].loss[fits[3].epochs_run - 1];
    double rel = fabs(l_const - l_rand) / l_rand;
    for (int i = 0; i < 4; i++) {
        jg_program_free(ev[i]);
        jg_graph_free(g[i]);
    }
    lesson_data_free(&d);
    bool holds = worst == 0 && acc_const <= acc_rand - 0.20 && rel <= 0.02 && lint[0] && lint[2];
    return lesson_verdict(&c, holds, "hidden units identical after training: max difference "
                          "%g; test acc constant %.3f vs he %.3f; logistic regression loss "
                          "constant %.4f vs random %.4f (%.2f%% apart); lint warned: %s",
                          worst, acc_const, acc_rand, l_const, l_rand, 100 * rel,
                          lint[0] && lint[2] ? "yes" : "no");
}
