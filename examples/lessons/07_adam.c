/* Lesson 7: Adam is momentum plus a step size per parameter. Plain SGD moves every weight by
 * lr times its gradient; momentum averages the gradients over recent steps, so consistent
 * directions build up speed and noise cancels; RMSprop divides each weight's step by a
 * running root-mean-square of its own gradients, so weights with small gradients still move
 * and weights with large ones do not overshoot; Adam does both (with bias correction of the
 * averages).
 *
 * Experiment: an MLP 784-256-128-10 (relu) on Fashion-MNIST, trained from the same initial
 * weights over the same batches by SGD, SGD with momentum 0.9, RMSprop (per-parameter steps
 * without momentum) and Adam. A fair race needs each at its own learning rate: each
 * optimiser's program is compiled once and re-run from the restored store for every rate of
 * the grid 1e-4, 3e-4, ..., 1 on the whole budget; each keeps its best rate (lowest mean
 * training loss over the last tenth of the steps). 07_optimisers.svg plots the four best runs'
 * training loss (mean over windows of a 40th of the run) against the step.
 * Criterion: HOLDS when, at their best rates, Adam's final training loss is the lowest of
 * SGD, momentum and Adam, and momentum's is below SGD's. RMSprop is reported, not judged.
 * Full run (2 epochs of 30,000 images, 468 steps): sgd 0.445 at 0.3, momentum 0.413 at 0.03,
 * rmsprop 0.410 at 1e-3, adam 0.385 at 3e-3. The margins are modest on this small,
 * well-conditioned problem; the larger difference is how forgiving the rates are (Adam is
 * within 0.05 of its best over a factor of 10). */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, BATCH = 128, N_OPT = 4, N_LR = 9 };

static jg_node *mlp(jg_graph *g, jg_node *x)
{
    jg_node *h = jg_relu(lesson_linear(g, "fc1", x, PIXELS, 256, jg_he_normal()));
    h = jg_relu(lesson_linear(g, "fc2", h, 256, 128, jg_he_normal()));
    return lesson_linear(g, "fc3", h, 128, 10, jg_xavier_uniform());
}

/* One run at rate lr from the snapshot: the loss of every step into losses[steps]. */
static int run(jg_graph *g, jg_program *p, const char *opt, const lesson_snapshot *s, double lr,
               jg_dataset *train, int epochs, float *xb, int32_t *yb, double *losses,
               int *steps)
{
    if (lesson_snapshot_restore(g, s) || jg_program_set_lr(g, opt, lr))
        return 1;
    jg_loader *ld = jg_loader_new(train, BATCH, &(jg_loader_opts){ .shuffle = true,
                                  .drop_last = true, .seed = 7 });
    int n, status = !ld;
    *steps = 0;
    for (int e = 0; e < epochs && !status; e++)
        while (!status && jg_loader_next(ld, xb, yb, &n)) {
            float l;
            status = jg_program_set(p, "x", xb, sizeof(float) * BATCH * PIXELS) ||
                     jg_program_set(p, "y", yb, sizeof(int32_t) * BATCH) || jg_program_run(p) ||
                     jg_program_get(p, 0, &l, sizeof l);
            losses[(*steps)++] = l;
        }
    jg_loader_free(ld);
    return status;
}

/* Mean of the last tenth of the steps; inf when any loss is not finite. */
static double final_loss(const double *losses, int steps)
{
    double sum = 0;
    int from = steps - steps / 10;
    for (int i = 0; i < steps; i++)
        if (!isfinite(losses[i]))
            return INFINITY;
    for (int i = from; i < steps; i++)
        sum += losses[i];
    return sum / (steps - from);
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 7, "adam"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 30000, 1, &d))
        return 1;
    int epochs = c.quick ? 1 : 2;
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 1);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *loss = jg_cross_entropy(mlp(g, x), y);
    const char *names[N_OPT] = { "sgd", "momentum", "rmsprop", "adam" };
    jg_optimizer opts[N_OPT] = { jg_sgd(0.01, 0), jg_sgd(0.01, 0.9), jg_rmsprop(1e-3),
                                 jg_adam(1e-3) };
    jg_program *p[N_OPT];
    for (int k = 0; k < N_OPT; k++) {
        p[k] = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = opts[k],
                                .name = names[k], .compile = { .num_threads = c.threads } });
        if (!p[k])
            return lesson_fail(&c, "%s", jg_errmsg(g));
    }
    lesson_snapshot s = { 0 };
    int max_steps = epochs * (int)(jg_dataset_size(d.train) / BATCH);
    float *xb = malloc(sizeof(float) * BATCH * PIXELS);
    int32_t yb[BATCH];
    double *losses = malloc(sizeof(double) * (size_t)max_steps);
    double *best_curve = malloc(sizeof(double) * (size_t)max_steps * N_OPT);
    if (lesson_snapshot_take(g, &s) || !xb || !losses || !best_curve)
        return lesson_fail(&c, "%s", jg_errmsg(g));

    double lrs[N_LR], final[N_OPT][N_LR], best[N_OPT], best_lr[N_OPT];
    int steps = 0;
    for (int i = 0; i < N_LR; i++)
        lrs[i] = pow(10, -4 + 0.5 * i);
    for (int k = 0; k < N_OPT; k++) {
        best[k] = INFINITY;
        best_lr[k] = NAN;
        for (int i = 0; i < N_LR; i++) {
            if (run(g, p[k], names[k], &s, lrs[i], d.train, epochs, xb, yb, losses, &steps))
                return lesson_fail(&c, "%s %s", jg_errmsg(g), jg_errmsg(p[k]));
            final[k][i] = final_loss(losses, steps);
            if (final[k][i] < best[k]) {
                best[k] = final[k][i];
                best_lr[k] = lrs[i];
                memcpy(best_curve + (size_t)k * max_steps, losses, sizeof(double) * steps);
            }
        }
    }

    printf("final training loss (mean of the last %d of %d steps) per learning rate\n",
           steps / 10, steps);
    const char *cols[] = { "lr", names[0], names[1], names[2], names[3] };
    lesson_table(cols, 5);
    for (int i = 0; i < N_LR; i++)
        lesson_row("%-14.0e %-14.4f %-14.4f %-14.4f %-14.4f", lrs[i], final[0][i], final[1][i],
                   final[2][i], final[3][i]);
    lesson_row("%-14s %-14.0e %-14.0e %-14.0e %-14.0e", "best lr", best_lr[0], best_lr[1],
               best_lr[2], best_lr[3]);
    lesson_row("%-14s %-14.4f %-14.4f %-14.4f %-14.4f", "best loss", best[0], best[1], best[2],
               best[3]);

    /* The curves of the best runs, smoothed over windows of about a 40th of the run. */
    int window = steps >= 80 ? steps / 40 : 1, points = steps / window;
    double *xs = malloc(sizeof(double) * (size_t)(points > 0 ? points : 1));
    double *ys = malloc(sizeof(double) * (size_t)(points > 0 ? points : 1) * N_OPT);
    jg_series series[N_OPT];
    char labels[N_OPT][64], path[1024], err[256];
    for (int k = 0; k < N_OPT && xs && ys; k++) {
        for (int j = 0; j < points; j++) {
            double sum = 0;
            for (int i = j * window; i < (j + 1) * window; i++)
                sum += best_curve[(size_t)k * max_steps + i];
            xs[j] = (j + 1) * window;
            ys[(size_t)k * points + j] = sum / window;
        }
        snprintf(labels[k], sizeof labels[k], "%s (lr %.0e)", names[k], best_lr[k]);
        series[k] = (jg_series){ labels[k], xs, ys + (size_t)k * points, points };
    }
    lesson_path(&c, "07_optimisers.svg", path, sizeof path);
    if (xs && ys && points > 1 &&
        jg_plot_svg(path, "training loss at each optimiser's best rate", "step",
                    "cross entropy (mean over a window of steps)", series, N_OPT, true, err,
                    sizeof err) == JG_OK)
        printf("wrote %s\n", path);
    free(xs), free(ys);

    lesson_snapshot_free(&s);
    free(xb), free(losses), free(best_curve);
    for (int k = 0; k < N_OPT; k++)
        jg_program_free(p[k]);
    jg_graph_free(g);
    lesson_data_free(&d);
    bool holds = best[3] < best[0] && best[3] < best[1] && best[1] < best[0];
    return lesson_verdict(&c, holds, "final training loss at the best rate: sgd %.4f (lr %.0e), "
                          "momentum %.4f (lr %.0e), adam %.4f (lr %.0e); rmsprop %.4f (lr %.0e)",
                          best[0], best_lr[0], best[1], best_lr[1], best[3], best_lr[3], best[2],
                          best_lr[2]);
}
