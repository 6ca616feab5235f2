/* Lesson 15: exploding gradients, and clipping them. In a deep network the gradient is a
 * product of one factor per layer; when those factors exceed 1 (large weights, a high
 * learning rate that makes them larger each step) the gradient grows geometrically with
 * depth, one step throws the weights far away, the next gradient is larger still, and within
 * a few steps the activations overflow to inf and the loss to NaN. Clipping bounds each step
 * (by the global gradient norm, or each element by a value) while keeping the direction
 * (norm) or the sign (value), and training proceeds at the same learning rate.
 *
 * Experiment: a 10-layer ReLU MLP (784-256x9-10, He init) trained by SGD with momentum 0.9 at
 * a learning rate of 0.5 on Fashion-MNIST, from the same seed and batch order: without
 * clipping; the same run compiled with jg_opts.check_finite (and no fusion, so the op named
 * is exact), which fails at the first kernel producing inf/NaN and names it; with clipping by
 * global norm 0.1; with clipping by value 0.001. (At a learning rate of 0.1 or 0.2 the
 * unclipped run diverges for some seeds and not for others, or dies with every ReLU off; at
 * 0.5 it reaches NaN within a few steps for every seed tried.)
 * Criterion: HOLDS when the unclipped run diverges (its loss becomes NaN or inf), the
 * check_finite run stops with JG_ERR_NONFINITE naming the op and the file:line where it was
 * built, and both clipped runs train without diverging to at least 65% test accuracy (chance
 * is 10%; the norm-clipped run gets well above that, the value-clipped one, which bends the
 * gradient's direction, less). */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 256, LAYERS = 9, BATCH = 128 };
static const double LR = 0.5, MOMENTUM = 0.9;

/* x @ W + b, built here so that check_finite's message points into this file. */
static jg_node *linear(jg_graph *g, const char *name, jg_node *x, int in, int out, jg_init init)
{
    char w_name[32], b_name[32];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.b", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param(g, w_name, jg_shape(in, out), init);
        b = jg_param(g, b_name, jg_shape(out), jg_zeros());
    }
    return jg_add(jg_matmul(x, w), b);
}

static jg_node *deep(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch, (void)arg;
    char name[16];
    for (int l = 0, in = PIXELS; l < LAYERS; l++, in = HIDDEN) {
        snprintf(name, sizeof name, "h%d", l);
        x = jg_relu(linear(g, name, x, in, HIDDEN, jg_he_normal()));
    }
    return linear(g, "out", x, HIDDEN, 10, jg_xavier_uniform());
}

/* The unclipped run again with check_finite: the step it stopped at (-1: none) and why. */
static int find_first_nonfinite(const lesson_ctx *c, jg_dataset *train, int max_epochs,
                                 uint64_t seed, int64_t *stopped, jg_status *st, char *msg,
                                 size_t size)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, seed);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *loss = jg_cross_entropy(deep(g, x, BATCH, NULL), y);
    jg_program *tr = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(LR, MOMENTUM),
        .compile = { .num_threads = c->threads, .check_finite = true, .no_fusion = true } });
    /* The batch order of lesson_train: the same loader seed. */
    jg_loader *ld = jg_loader_new(train, BATCH, &(jg_loader_opts){
        .shuffle = true, .drop_last = true, .seed = seed + 17 });
    float *xb = malloc(sizeof(float) * BATCH * PIXELS);
    int32_t yb[BATCH];
    int n, status = 0;
    *stopped = -1, *st = JG_OK, msg[0] = '\0';
    if (!tr || !ld || !xb) {
        status = lesson_fail(c, "%s", !tr ? jg_errmsg(g) : jg_dataset_errmsg(train));
        goto done;
    }
    int64_t step = 0;
    for (int e = 0; e < max_epochs && *stopped < 0; e++)
        while (jg_loader_next(ld, xb, yb, &n)) {
            jg_program_set(tr, "x", xb, sizeof(float) * BATCH * PIXELS);
            jg_program_set(tr, "y", yb, sizeof yb);
            jg_status s = jg_program_run(tr);
            if (s != JG_OK) {
                *stopped = step, *st = s;
                snprintf(msg, size, "%s", jg_errmsg(tr));
                break;
            }
            step++;
        }
done:
    jg_loader_free(ld);
    free(xb);
    jg_program_free(tr);
    jg_graph_free(g);
    return status;
}

/* First epoch whose mean loss is not finite (1-based), 0 if none. */
static int nan_epoch(const lesson_fit *f)
{
    for (int e = 0; e < f->epochs_run; e++)
        if (!isfinite(f->loss[e]))
            return e + 1;
    return 0;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 15, "exploding-gradients"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 6000 : 30000, c.quick ? 1000 : 0, &d))
        return 1;
    int epochs = c.quick ? 2 : 3;
    lesson_fit base = { .model = deep, .optimizer = jg_sgd(LR, MOMENTUM), .batch = BATCH,
                        .epochs = epochs, .shuffle = true, .seed = 15 };
    lesson_fit plain = base, by_norm = base, by_value = base;
    by_norm.clip_norm = 0.1;
    by_value.clip_value = 0.001;
    if (lesson_train(&c, &plain, d.train, d.test, NULL, NULL) ||
        lesson_train(&c, &by_norm, d.train, d.test, NULL, NULL) ||
        lesson_train(&c, &by_value, d.train, d.test, NULL, NULL)) {
        lesson_data_free(&d);
        return 1;
    }
    int64_t stopped;
    jg_status st;
    char msg[1024];
    if (find_first_nonfinite(&c, d.train, epochs, base.seed, &stopped, &st, msg, sizeof msg)) {
        lesson_data_free(&d);
        return 1;
    }
    lesson_data_free(&d);
    const char *cols[] = { "training", "loss per epoch" };
    lesson_table(cols, 2);
    const lesson_fit *runs[3] = { &plain, &by_norm, &by_value };
    const char *names[3] = { "no clipping", "clip norm 0.1", "clip val 0.001" };
    for (int r = 0; r < 3; r++) {
        char line[512];
        int len = snprintf(line, sizeof line, "%-14s", names[r]);
        for (int e = 0; e < runs[r]->epochs_run && len < (int)sizeof line - 16; e++)
            len += snprintf(line + len, sizeof line - (size_t)len, " %-10.4g", runs[r]->loss[e]);
        lesson_row("%s", line);
    }
    const char *cols2[] = { "training", "diverged", "NaN in epoch", "train acc", "test acc" };
    lesson_table(cols2, 5);
    for (int r = 0; r < 3; r++) {
        const lesson_fit *f = runs[r];
        lesson_row("%-14s %-14s %-14d %-14.4f %-14.4f", names[r], f->diverged ? "yes" : "no",
                   nan_epoch(f), f->train_accuracy, f->test_accuracy[f->epochs_run - 1]);
    }
    if (stopped >= 0)
        printf("with check_finite the unclipped run stopped at its step %lld (%s):\n  %s\n",
               (long long)stopped + 1, jg_status_str(st), msg);
    else
        printf("with check_finite the unclipped run did not stop\n");
    /* The message names an op and where it was built ("... at <file>:<line>"). */
    bool named = st == JG_ERR_NONFINITE && strstr(msg, "15_exploding_gradients.c:");
    double acc_n = by_norm.test_accuracy[by_norm.epochs_run - 1];
    double acc_v = by_value.test_accuracy[by_value.epochs_run - 1];
    bool holds = plain.diverged && named && !by_norm.diverged && !by_value.diverged &&
                 acc_n >= 0.65 && acc_v >= 0.65;
    return lesson_verdict(&c, holds, "no clipping: %s; check_finite stopped at step %lld "
                          "naming the op: %s; clipped by norm: test accuracy %.3f%s, by value: "
                          "%.3f%s", plain.diverged ? "diverged" : "did not diverge",
                          (long long)stopped + 1, named ? "yes" : "no", acc_n,
                          by_norm.diverged ? " (diverged)" : "", acc_v,
                          by_value.diverged ? " (diverged)" : "");
}
