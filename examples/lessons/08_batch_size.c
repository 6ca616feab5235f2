/* Lesson 8: batch, mini-batch and stochastic gradient descent. Full-batch gradient descent
 * computes the exact gradient over all the data and takes ONE step per epoch; stochastic
 * gradient descent (batch 1) takes one step per sample, each on a noisy gradient and each
 * using the machine badly (a tiny matrix product per step, and the fixed cost of a step paid
 * 60,000 times an epoch); mini-batches (here 128) take hundreds of steps per epoch on
 * gradients good enough, at a cost per sample close to the full batch's. Per epoch the
 * small batches win, per second the mini-batch wins.
 *
 * Experiment: an MLP 784-64-10 (relu) on Fashion-MNIST trained by plain SGD from the same
 * initial weights with batch 60,000 (the whole training set, as 60 micro-batches of 1,000
 * whose gradients jg_train_opts.accumulate averages into one update), batch 128 and batch 1.
 * The full batch gets its best rate of 0.1, 0.3, 1, 3 (by the loss after 5 epochs) and 30
 * epochs; batch 128 runs at 0.1, batch 1 at 0.01, 5 epochs each. The loss over the first
 * 10,000 training images is measured at checkpoints (not counted in the time), against
 * epochs (08_loss_vs_epochs.svg) and training seconds (08_loss_vs_seconds.svg). Also the
 * latency of one batch-1 step: jg_program_run alone, and with the loader and the copies in.
 * Criterion: HOLDS when (1) after 5 epochs batch 128 and batch 1 both have a lower loss than
 * the full batch after 5 epochs, (2) batch 1 takes at least 5x longer per epoch than batch
 * 128, and (3) at the time batch 128 took for its 5 epochs, its loss is the lowest of the
 * three (each measured at its last checkpoint by then).
 * Full run (2 cores shared with other jobs, load ~12): after 5 epochs full batch 1.630 (best
 * rate 0.3), batch 128 0.360, batch 1 0.318; per epoch 0.6 s, 0.6 s and 4.7 s (78 us per
 * batch-1 step); at batch 128's 3.0 s batch 1 stood at 0.417 and the full batch at 1.812.
 * Wall times on a loaded machine are noisy (one full run so far). */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PIXELS = 784, EVAL_BATCH = 1000, MAX_POINTS = 256 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static jg_node *mlp(jg_graph *g, jg_node *x)
{
    jg_node *h = jg_relu(lesson_linear(g, "fc1", x, PIXELS, 64, jg_he_normal()));
    return lesson_linear(g, "fc2", h, 64, 10, jg_xavier_uniform());
}

typedef struct curve {
    double epoch[MAX_POINTS], seconds[MAX_POINTS], loss[MAX_POINTS];
    int n;
} curve;

typedef struct setup {
    jg_graph *g;
    jg_program *eval;
    jg_dataset *eval_ds;
    float *xe;
    int32_t *ye;
} setup;

/* Mean cross entropy over eval_ds. */
static double eval_loss(const setup *st)
{
    jg_loader *ld = jg_loader_new(st->eval_ds, EVAL_BATCH, &(jg_loader_opts){ .drop_last = true });
    double sum = 0;
    int n, batches = 0;
    while (ld && jg_loader_next(ld, st->xe, st->ye, &n)) {
        float l = NAN;
        if (jg_program_set(st->eval, "xe", st->xe, sizeof(float) * EVAL_BATCH * PIXELS) ||
            jg_program_set(st->eval, "ye", st->ye, sizeof(int32_t) * EVAL_BATCH) ||
            jg_program_run(st->eval) || jg_program_get(st->eval, 0, &l, sizeof l))
            l = NAN;
        sum += l;
        batches++;
    }
    jg_loader_free(ld);
    return batches ? sum / batches : NAN;
}

/* Trains from the snapshot with program p (reading input `x`, `y` of `batch` rows) at rate
 * lr for `epochs`, measuring the loss every `every` runs and after every epoch. */
static int train(const setup *st, const lesson_snapshot *s, jg_program *p, const char *opt,
                 const char *x, const char *y, int batch, double lr, int epochs, int64_t every,
                 jg_dataset *ds, curve *cv)
{
    if (lesson_snapshot_restore(st->g, s) || jg_program_set_lr(st->g, opt, lr))
        return 1;
    jg_loader *ld = jg_loader_new(ds, batch, &(jg_loader_opts){ .shuffle = true,
                                  .drop_last = true, .seed = 11 });
    float *xb = malloc(sizeof(float) * (size_t)batch * PIXELS);
    int32_t *yb = malloc(sizeof(int32_t) * (size_t)batch);
    int64_t per_epoch = jg_loader_batches(ld), runs = 0;
    double seconds = 0;
    int n, status = !ld || !xb || !yb;
    cv->n = 0;
    cv->epoch[0] = cv->seconds[0] = 0;
    cv->loss[cv->n++] = eval_loss(st);
    for (int e = 0; e < epochs && !status; e++) {
        double t = now_s();
        while (!status && jg_loader_next(ld, xb, yb, &n)) {
            status = jg_program_set(p, x, xb, sizeof(float) * (size_t)batch * PIXELS) ||
                     jg_program_set(p, y, yb, sizeof(int32_t) * (size_t)batch) ||
                     jg_program_run(p);
            runs++;
            bool end = runs % per_epoch == 0;
            if ((runs % every == 0 || end) && cv->n < MAX_POINTS) {
                seconds += now_s() - t;
                cv->epoch[cv->n] = (double)runs / (double)per_epoch;
                cv->seconds[cv->n] = seconds;
                cv->loss[cv->n++] = eval_loss(st);
                t = now_s();
            }
        }
    }
    free(xb), free(yb);
    jg_loader_free(ld);
    return status;
}

/* The loss at the last checkpoint at or before t seconds. */
static double loss_at(const curve *cv, double t)
{
    double l = cv->loss[0];
    for (int i = 0; i < cv->n && cv->seconds[i] <= t; i++)
        l = cv->loss[i];
    return l;
}

/* The checkpoint at epoch e (the first at or after it). */
static int at_epoch(const curve *cv, double e)
{
    for (int i = 0; i < cv->n; i++)
        if (cv->epoch[i] >= e - 1e-9)
            return i;
    return cv->n - 1;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 8, "batch-size"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 0, 1, &d))
        return 1;
    int64_t n_train = jg_dataset_size(d.train);
    int micro = c.quick ? 256 : 1000, accumulate = (int)(n_train / micro);
    int epochs = c.quick ? 2 : 5, full_epochs = c.quick ? 4 : 30;
    jg_dataset *eval_ds = jg_dataset_range(d.train, 0, c.quick ? 1000 : 10000);

    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 1);
    jg_node *xf = jg_input(g, "x_full", JG_F32, jg_shape(micro, PIXELS));
    jg_node *yf = jg_input(g, "y_full", JG_I32, jg_shape(micro));
    jg_node *xm = jg_input(g, "x128", JG_F32, jg_shape(128, PIXELS));
    jg_node *ym = jg_input(g, "y128", JG_I32, jg_shape(128));
    jg_node *x1 = jg_input(g, "x1", JG_F32, jg_shape(1, PIXELS));
    jg_node *y1 = jg_input(g, "y1", JG_I32, jg_shape(1));
    jg_node *xe = jg_input(g, "xe", JG_F32, jg_shape(EVAL_BATCH, PIXELS));
    jg_node *ye = jg_input(g, "ye", JG_I32, jg_shape(EVAL_BATCH));
    jg_opts co = { .num_threads = c.threads };
    jg_program *pf = jg_compile_train(g, jg_cross_entropy(mlp(g, xf), yf), &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0), .name = "full", .accumulate = accumulate, .compile = co });
    jg_program *pm = jg_compile_train(g, jg_cross_entropy(mlp(g, xm), ym), &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0), .name = "mb", .compile = co });
    jg_program *p1 = jg_compile_train(g, jg_cross_entropy(mlp(g, x1), y1), &(jg_train_opts){
        .optimizer = jg_sgd(0.01, 0), .name = "sgd1", .compile = co });
    jg_node *le = jg_cross_entropy(mlp(g, xe), ye);
    setup st = { .g = g, .eval = jg_compile(g, &le, 1, &co), .eval_ds = eval_ds,
                 .xe = malloc(sizeof(float) * EVAL_BATCH * PIXELS),
                 .ye = malloc(sizeof(int32_t) * EVAL_BATCH) };
    lesson_snapshot s = { 0 };
    if (!pf || !pm || !p1 || !st.eval || !eval_ds || !st.xe || !st.ye || lesson_snapshot_take(g, &s))
        return lesson_fail(&c, "%s", jg_errmsg(g));

    /* The full batch's rate: the best after `epochs` updates. */
    static curve cf, cm, c1;
    double full_lrs[4] = { 0.1, 0.3, 1, 3 }, full_best = INFINITY, full_lr = 0.1;
    printf("full batch (accumulating %d micro-batches of %d): loss after %d epochs by rate:",
           accumulate, micro, epochs);
    for (int i = 0; i < 4; i++) {
        if (train(&st, &s, pf, "full", "x_full", "y_full", micro, full_lrs[i], epochs,
                  INT64_MAX, d.train, &cf))
            return lesson_fail(&c, "%s", jg_errmsg(pf));
        double l = cf.loss[cf.n - 1];
        printf(" %g: %.4f", full_lrs[i], l);
        if (l < full_best) {
            full_best = l;
            full_lr = full_lrs[i];
        }
    }
    printf("\n");
    if (train(&st, &s, pf, "full", "x_full", "y_full", micro, full_lr, full_epochs, INT64_MAX,
              d.train, &cf) ||
        train(&st, &s, pm, "mb", "x128", "y128", 128, 0.1, epochs,
              n_train / 128 / 5, d.train, &cm) ||
        train(&st, &s, p1, "sgd1", "x1", "y1", 1, 0.01, epochs, n_train / 10, d.train, &c1))
        return lesson_fail(&c, "%s", jg_errmsg(g));

    /* Batch-1 latency: the run alone, on one bound sample. */
    float sample[PIXELS];
    int32_t label;
    jg_dataset_get(d.train, 0, sample, &label);
    jg_program_set(p1, "x1", sample, sizeof sample);
    jg_program_set(p1, "y1", &label, sizeof label);
    int reps = c.quick ? 2000 : 20000;
    double t = now_s();
    for (int i = 0; i < reps; i++)
        jg_program_run(p1);
    double run_us = 1e6 * (now_s() - t) / reps;

    int im = at_epoch(&cm, epochs), i1 = at_epoch(&c1, epochs), ifu = at_epoch(&cf, epochs);
    double sec_epoch[3] = { cf.seconds[cf.n - 1] / full_epochs, cm.seconds[im] / epochs,
                            c1.seconds[i1] / epochs };
    double steps_epoch[3] = { 1, (double)(n_train / 128), (double)n_train };
    char full_name[32];
    snprintf(full_name, sizeof full_name, "batch %lld", (long long)n_train);
    const char *names[3] = { full_name, "batch 128", "batch 1" };
    char last_col[32];
    snprintf(last_col, sizeof last_col, "loss ep. %d", epochs);
    const char *cols[] = { "batch", "lr", "s / epoch", "us / step", "loss ep. 1", last_col };
    double lrs[3] = { full_lr, 0.1, 0.01 };
    const curve *cvs[3] = { &cf, &cm, &c1 };
    lesson_table(cols, 6);
    for (int k = 0; k < 3; k++)
        lesson_row("%-14s %-14g %-14.3f %-14.1f %-14.4f %-14.4f", names[k], lrs[k],
                   sec_epoch[k], 1e6 * sec_epoch[k] / steps_epoch[k],
                   cvs[k]->loss[at_epoch(cvs[k], 1)], cvs[k]->loss[at_epoch(cvs[k], epochs)]);
    printf("(the full batch went on to %d epochs: loss %.4f after %.2f s)\n", full_epochs, cf.loss[cf.n - 1], cf.seconds[cf.n - 1]);
    printf("batch-1 step: %.1f us per jg_program_run alone; %.1f us with the loader and "
           "copies\n", run_us, 1e6 * sec_epoch[2] / steps_epoch[2]);
    double t128 = cm.seconds[im];
    double l_at[3] = { loss_at(&cf, t128), cm.loss[im], loss_at(&c1, t128) };
    printf("at %.2f s (batch 128's %d epochs): loss full %.4f, 128 %.4f, 1 %.4f\n", t128, epochs,
           l_at[0], l_at[1], l_at[2]);

    /* Plots. */
    char path[1024], err[256];
    jg_series by_epoch[3], by_time[3];
    for (int k = 0; k < 3; k++) {
        by_epoch[k] = (jg_series){ names[k], cvs[k]->epoch, cvs[k]->loss, cvs[k]->n };
        by_time[k] = (jg_series){ names[k], cvs[k]->seconds, cvs[k]->loss, cvs[k]->n };
    }
    lesson_path(&c, "08_loss_vs_epochs.svg", path, sizeof path);
    if (jg_plot_svg(path, "loss vs epochs", "epoch", "cross entropy (10,000 training images)",
                    by_epoch, 3, true, err, sizeof err) == JG_OK)
        printf("wrote %s\n", path);
    lesson_path(&c, "08_loss_vs_seconds.svg", path, sizeof path);
    if (jg_plot_svg(path, "loss vs training time", "seconds",
                    "cross entropy (10,000 training images)", by_time, 3, true, err,
                    sizeof err) == JG_OK)
        printf("wrote %s\n", path);

    double lf5 = cf.loss[ifu], lm5 = cm.loss[im], l15 = c1.loss[i1];
    double ratio = sec_epoch[2] / sec_epoch[1];
    lesson_snapshot_free(&s);
    free(st.xe), free(st.ye);
    jg_program_free(pf), jg_program_free(pm), jg_program_free(p1), jg_program_free(st.eval);
    jg_graph_free(g);
    jg_dataset_free(eval_ds);
    lesson_data_free(&d);
    bool holds = lm5 < lf5 && l15 < lf5 && ratio >= 5 && l_at[1] <= l_at[0] && l_at[1] <= l_at[2];
    return lesson_verdict(&c, holds, "loss after %d epochs: full %.3f, 128 %.3f, 1 %.3f; batch 1 "
                          "is %.0fx slower per epoch (%.1f us per step); at batch 128's %.1f s: "
                          "full %.3f, 128 %.3f, 1 %.3f", epochs, lf5, lm5, l15, ratio,
                          1e6 * sec_epoch[2] / steps_epoch[2], t128, l_at[0], l_at[1], l_at[2]);
}
