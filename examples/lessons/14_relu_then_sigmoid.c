/* Lesson 14: a ReLU right before the output sigmoid makes a classifier that predicts one
 * class. relu(z) >= 0, so sigmoid(relu(z)) >= 0.5 for every input: thresholded at 0.5 the
 * model always says "1", and gradient descent cannot fix it (where relu is 0 no gradient
 * flows; where it is positive, pushing the probability below 0.5 needs z < 0).
 *
 * Experiment: the binary task "is this image NOT footwear" on Fashion-MNIST (70% of images:
 * the majority class is 1). The same network twice, 784-64-1, trained with binary cross
 * entropy on logits by Adam: once with a ReLU on the output logit, once without.
 * Criterion: HOLDS when the ReLU model's test accuracy equals the share of class 1 (every
 * prediction is 1: at most 0.2% of predictions differ), the plain model beats it by at
 * least 10 points, and the compiler's lint warned about the ReLU, naming this file. */
#include "lesson.h"

#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 64 };

typedef struct result {
    double accuracy, predicted_one, positive_share;
    bool lint_fired;
} result;

static int run(const lesson_ctx *c, lesson_data *d, bool relu_out, int epochs, result *r)
{
    int b = 128;
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(b, PIXELS));
    jg_node *t = jg_input(g, "t", JG_F32, jg_shape(b, 1));
    jg_node *h = jg_relu(lesson_linear(g, "l1", x, PIXELS, HIDDEN, jg_he_normal()));
    jg_node *z = lesson_linear(g, "l2", h, HIDDEN, 1, jg_xavier_uniform());
    if (relu_out)
        z = jg_relu(z);
    jg_node *loss = jg_bce_with_logits(z, t);
    jg_node *p = jg_sigmoid(z);
    jg_program *train = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(1e-3), .compile = { .num_threads = c->threads } });
    jg_program *eval = jg_compile(g, &p, 1, &(jg_opts){ .num_threads = c->threads });
    if (!train || !eval) {
        jg_graph_free(g);
        return lesson_fail(c, "%s", jg_errmsg(g));
    }
    r->lint_fired = strstr(jg_program_warnings(train), "relu") &&
                    strstr(jg_program_warnings(train), "14_relu_then_sigmoid.c");
    float *xb = malloc((size_t)b * PIXELS * sizeof *xb), tb[128], pb[128];
    int32_t yb[128];
    jg_loader *ld = jg_loader_new(d->train, b, &(jg_loader_opts){ .shuffle = true,
                                                                 .drop_last = true, .seed = 3 });
    int n, status = !xb || !ld;
    for (int e = 0; e < epochs && !status; e++)
        while (!status && jg_loader_next(ld, xb, yb, &n)) {
            for (int i = 0; i < b; i++)
                tb[i] = yb[i] != 5 && yb[i] != 7 && yb[i] != 9; /* not footwear */
            status = jg_program_set(train, "x", xb, (size_t)b * PIXELS * sizeof *xb) ||
                     jg_program_set(train, "t", tb, sizeof tb) || jg_program_run(train);
        }
    jg_loader_free(ld);
    int64_t seen = 0, correct = 0, ones = 0, positives = 0;
    ld = jg_loader_new(d->test, b, &(jg_loader_opts){ .drop_last = true });
    while (!status && jg_loader_next(ld, xb, yb, &n)) {
        status = jg_program_set(eval, "x", xb, (size_t)b * PIXELS * sizeof *xb) ||
                 jg_program_run(eval) || jg_program_get(eval, 0, pb, sizeof pb);
        for (int i = 0; i < n && !status; i++, seen++) {
            int truth = yb[i] != 5 && yb[i] != 7 && yb[i] != 9, said = pb[i] >= 0.5f;
            correct += said == truth;
            ones += said;
            positives += truth;
        }
    }
    if (status)
        status = lesson_fail(c, "%s", jg_errmsg(train));
    r->accuracy = seen ? (double)correct / (double)seen : 0;
    r->predicted_one = seen ? (double)ones / (double)seen : 0;
    r->positive_share = seen ? (double)positives / (double)seen : 0;
    jg_loader_free(ld);
    free(xb);
    jg_program_free(train);
    jg_program_free(eval);
    jg_graph_free(g);
    return status;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 14, "relu-then-sigmoid"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 4096 : 0, c.quick ? 1024 : 0, &d))
        return 1;
    int epochs = c.quick ? 1 : 5;
    result relu, plain;
    if (run(&c, &d, true, epochs, &relu) || run(&c, &d, false, epochs, &plain)) {
        lesson_data_free(&d);
        return 1;
    }
    const char *cols[] = { "output", "test acc", "said \"1\"", "share of 1", "lint fired" };
    lesson_table(cols, 5);
    lesson_row("%-14s %-14.4f %-14.4f %-14.4f %s", "relu->sigmoid", relu.accuracy,
               relu.predicted_one, relu.positive_share, relu.lint_fired ? "yes" : "no");
    lesson_row("%-14s %-14.4f %-14.4f %-14.4f %s", "sigmoid", plain.accuracy,
               plain.predicted_one, plain.positive_share, plain.lint_fired ? "yes" : "no");
    lesson_data_free(&d);
    bool one_class = relu.predicted_one >= 0.998;
    bool holds = one_class && plain.accuracy >= relu.accuracy + 0.10 && relu.lint_fired;
    return lesson_verdict(&c, holds, "relu->sigmoid accuracy %.3f = share of class 1 %.3f, "
                          "predicted 1 for %.1f%%; plain sigmoid %.3f; lint fired: %s",
                          relu.accuracy, relu.positive_share, 100 * relu.predicted_one,
                          plain.accuracy, relu.lint_fired ? "yes" : "no");
}
