/* Lesson 17: mini-batch gradient descent needs shuffled data. A mini-batch gradient is an
 * estimate of the full gradient only when the batch is a fair sample of the data. Fed in a
 * fixed order sorted by class, each batch holds one class: the model is pushed to predict
 * that class, then the next, and at the end of every epoch it has just spent a tenth of the
 * epoch learning "everything is a boot". The per-batch training loss it logs (low within a
 * class, a spike at each change of class) hides how bad the model is on the data as a whole.
 *
 * Experiment: Fashion-MNIST's training set sorted by label (all T-shirts, then all trousers,
 * ...), the same MLP 784-128-10 trained by SGD with momentum from the same initial weights,
 * with the same batches per epoch: once in that sorted order, once with a fresh shuffle every
 * epoch. Per-step training losses go to a plot, and after each epoch the loss over the whole
 * training set and the test accuracy are measured.
 * Criterion: HOLDS when the shuffled run's final test accuracy beats the sorted run's by at
 * least 20 points, and the sorted run's last prediction is dominated by the last class seen
 * (it predicts class 9 for over half of the test set). */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 128, BATCH = 128, SMOOTH = 20 };

static jg_node *mlp(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch, (void)arg;
    jg_node *h = jg_relu(lesson_linear(g, "l1", x, PIXELS, HIDDEN, jg_he_normal()));
    return lesson_linear(g, "l2", h, HIDDEN, 10, jg_xavier_uniform());
}

typedef struct run {
    double *step_loss;          /* per step */
    int steps;
    double epoch_train_loss[16];/* loss over the whole (sorted) training set, after epoch e */
    double test_acc[16];
    double said_last;           /* share of test images predicted as class 9 at the end */
} run;

/* Mean loss over ds with the loss program (evaluation mode, input x_eval / y_eval). */
static double mean_loss(jg_program *p, jg_dataset *ds, float *x, int32_t *y)
{
    jg_loader *ld = jg_loader_new(ds, BATCH, &(jg_loader_opts){ .drop_last = true });
    double sum = 0;
    int n, batches = 0;
    while (jg_loader_next(ld, x, y, &n)) {
        float l = NAN;
        if (jg_program_set(p, "x_eval", x, sizeof(float) * BATCH * PIXELS) ||
            jg_program_set(p, "y_eval", y, sizeof(int32_t) * BATCH) || jg_program_run(p) ||
            jg_program_get(p, 1, &l, sizeof l))
            l = NAN;
        sum += l;
        batches++;
    }
    jg_loader_free(ld);
    return batches ? sum / batches : NAN;
}

static int train(const lesson_ctx *c, jg_dataset *train_ds, jg_dataset *test_ds, bool shuffle,
                 int epochs, run *r)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 17);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *loss = jg_cross_entropy(mlp(g, x, BATCH, NULL), y);
    jg_node *xe = jg_input(g, "x_eval", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *ye = jg_input(g, "y_eval", JG_I32, jg_shape(BATCH));
    jg_node *logits = mlp(g, xe, BATCH, NULL);
    jg_node *outs[2] = { logits, jg_cross_entropy(logits, ye) };
    jg_program *tr = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(0.02, 0.9), .compile = { .num_threads = c->threads } });
    jg_program *ev = jg_compile(g, outs, 2, &(jg_opts){ .num_threads = c->threads });
    jg_loader *ld = jg_loader_new(train_ds, BATCH, &(jg_loader_opts){
        .shuffle = shuffle, .drop_last = true, .seed = 5 });
    float *xb = malloc(sizeof(float) * BATCH * PIXELS), logit_b[BATCH * 10];
    int32_t yb[BATCH];
    int status = 0, n;
    if (!tr || !ev || !ld || !xb) {
        status = lesson_fail(c, "%s", !tr || !ev ? jg_errmsg(g) : jg_dataset_errmsg(train_ds));
        goto done;
    }
    r->steps = 0;
    for (int e = 0; e < epochs; e++) {
        while (jg_loader_next(ld, xb, yb, &n)) {
            float l;
            if (jg_program_set(tr, "x", xb, sizeof(float) * BATCH * PIXELS) ||
                jg_program_set(tr, "y", yb, sizeof yb) || jg_program_run(tr) ||
                jg_program_get(tr, 0, &l, sizeof l)) {
                status = lesson_fail(c, "%s", jg_errmsg(tr));
                goto done;
            }
            r->step_loss[r->steps++] = l;
        }
        r->epoch_train_loss[e] = mean_loss(ev, train_ds, xb, yb);
        r->test_acc[e] = lesson_accuracy(ev, test_ds, BATCH);
    }
    /* What the final model says on the test set. */
    jg_loader *tl = jg_loader_new(test_ds, BATCH, &(jg_loader_opts){ .drop_last = true });
    int64_t seen = 0, last = 0;
    while (jg_loader_next(tl, xb, yb, &n)) {
        if (jg_program_set(ev, "x_eval", xb, sizeof(float) * BATCH * PIXELS) ||
            jg_program_set(ev, "y_eval", yb, sizeof yb) || jg_program_run(ev) ||
            jg_program_get(ev, 0, logit_b, sizeof logit_b))
            break;
        for (int i = 0; i < n; i++, seen++) {
            int best = 0;
            for (int k = 1; k < 10; k++)
                best = logit_b[i * 10 + k] > logit_b[i * 10 + best] ? k : best;
            last += best == 9;
        }
    }
    jg_loader_free(tl);
    r->said_last = seen ? (double)last / (double)seen : 0;
done:
    jg_loader_free(ld);
    free(xb);
    jg_program_free(tr);
    jg_program_free(ev);
    jg_graph_free(g);
    return status;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 17, "minibatch-needs-shuffle"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 6000 : 0, c.quick ? 2000 : 0, &d))
        return 1;
    int epochs = c.quick ? 2 : 5;
    int64_t n = jg_dataset_size(d.train);
    /* The training set sorted by label (stable: file order within a class). */
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    int64_t k = 0;
    for (int32_t cls = 0; cls < 10 && idx; cls++)
        for (int64_t i = 0; i < n; i++) {
            int32_t y;
            jg_dataset_get(d.train, i, NULL, &y);
            if (y == cls)
                idx[k++] = i;
        }
    jg_dataset *sorted = idx ? jg_dataset_subset(d.train, idx, n) : NULL;
    int64_t max_steps = (int64_t)epochs * (n / BATCH);
    run rs = { .step_loss = calloc((size_t)max_steps, sizeof(double)) };
    run rh = { .step_loss = calloc((size_t)max_steps, sizeof(double)) };
    int status = 0;
    if (!sorted || !rs.step_loss || !rh.step_loss)
        status = lesson_fail(&c, "cannot sort the training set");
    if (!status)
        status = train(&c, sorted, d.test, false, epochs, &rs);
    if (!status)
        status = train(&c, sorted, d.test, true, epochs, &rh);
    if (status)
        goto done;

    const char *cols[] = { "epoch", "sorted: loss", "sorted: test", "shuffled: loss",
                           "shuffled: test" };
    printf("loss: over the whole training set after the epoch; test: test accuracy\n");
    lesson_table(cols, 5);
    for (int e = 0; e < epochs; e++)
        lesson_row("%-14d %-14.4f %-14.4f %-14.4f %-14.4f", e + 1, rs.epoch_train_loss[e],
                   rs.test_acc[e], rh.epoch_train_loss[e], rh.test_acc[e]);
    /* Mean per-batch loss of the last epoch: what the training log shows. */
    int per_epoch = (int)(n / BATCH);
    double log_s = 0, log_h = 0;
    for (int i = rs.steps - per_epoch; i < rs.steps; i++)
        log_s += rs.step_loss[i], log_h += rh.step_loss[i];
    log_s /= per_epoch, log_h /= per_epoch;
    printf("mean per-batch training loss of the last epoch: sorted %.4f, shuffled %.4f\n",
           log_s, log_h);
    printf("sorted run predicts class 9 (%s) for %.1f%% of the test set\n", LESSON_CLASSES[9],
           100 * rs.said_last);

    /* Per-step losses, averaged over SMOOTH steps. */
    int pts = rs.steps / SMOOTH;
    double *xs = malloc((size_t)pts * sizeof *xs), *ys = malloc((size_t)pts * sizeof *ys);
    double *yh = malloc((size_t)pts * sizeof *yh);
    char path[1024], err[256];
    if (xs && ys && yh && pts > 1) {
        for (int p = 0; p < pts; p++) {
            double a = 0, b = 0;
            for (int i = p * SMOOTH; i < (p + 1) * SMOOTH; i++)
                a += rs.step_loss[i], b += rh.step_loss[i];
            xs[p] = (double)(p * SMOOTH + SMOOTH / 2) / per_epoch;
            ys[p] = a / SMOOTH, yh[p] = b / SMOOTH;
        }
        jg_series s[2] = { { "sorted by class, not shuffled", xs, ys, pts },
                           { "shuffled every epoch", xs, yh, pts } };
        if (jg_plot_svg(lesson_path(&c, "17_loss_curves.svg", path, sizeof path),
                        "Mini-batch SGD: per-batch training loss", "epoch", "loss", s, 2, false,
                        err, sizeof err) == JG_OK)
            printf("wrote %s\n", path);
        else
            printf("plot: %s\n", err);
    }
    free(xs), free(ys), free(yh);
    double acc_s = rs.test_acc[epochs - 1], acc_h = rh.test_acc[epochs - 1];
    bool holds = acc_h >= acc_s + 0.20 && rs.said_last > 0.5;
    status = lesson_verdict(&c, holds, "test accuracy sorted %.3f vs shuffled %.3f; sorted "
                            "predicts class 9 for %.0f%% of the test set; whole-set training "
                            "loss %.3f vs %.3f (per-batch log %.3f vs %.3f)",
                            acc_s, acc_h, 100 * rs.said_last, rs.epoch_train_loss[epochs - 1],
                            rh.epoch_train_loss[epochs - 1], log_s, log_h);
done:
    free(rs.step_loss), free(rh.step_loss);
    jg_dataset_free(sorted);
    free(idx);
    lesson_data_free(&d);
    return status;
}
