/* Lesson 20: dropout regularises. Zeroing random units at every step keeps units from
 * relying on particular partners (less co-adaptation), injects noise, and trains an
 * ensemble of exponentially many sub-networks that share weights; the evaluation network
 * (all units; inverted dropout already scaled the kept ones in training) is a cheap
 * approximation of that ensemble's average. On small data, where a big network memorises
 * the training set, dropout narrows the gap between training and test.
 *
 * Experiment: 1000 Fashion-MNIST training images (500 in --quick), an MLP 784-512-512-10
 * trained by Adam for the same number of steps without dropout and with the usual recipe
 * of Srivastava et al.: dropout 0.2 on the input pixels and 0.5 after each hidden layer.
 * Measured: training and test accuracy (10k test images) and their gap, and the cross
 * entropy of the evaluation network on both sets. Then the model-averaging view: for the
 * dropout network, the softmax of K random sub-networks (a training-mode program without
 * updates, a fresh mask each run) averaged over K = 1, 4, 16, 64 (16 in --quick), against
 * the evaluation program's softmax on 2000 test images (500): accuracy, and the mean
 * absolute difference of the probabilities.
 * Criterion: HOLDS when dropout's train-test accuracy gap is smaller than the plain
 * network's and its test accuracy at least as high; and the average of the most masks is
 * within 1 point of the evaluation-mode accuracy, more accurate than a single mask, and
 * closer to the evaluation probabilities the more masks are averaged (the difference falls
 * with every K). It does not fall to zero: the masks' average converges to the ensemble's
 * mean, which the weight-scaled network only approximates (here about 0.014 apart).
 * A first run with dropout 0.5 after the hidden layers only (no input dropout) did not
 * regularise measurably: gap 0.192 vs 0.193, test accuracy 0.801 vs 0.807.
 * Curves (test accuracy on a 500-image probe and training loss per epoch):
 * 20_dropout_curves.svg. */
#define _POSIX_C_SOURCE 200809L
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 512, BATCH = 50, KS = 4 };

typedef struct model_arg {
    double p_in, p; /* dropout on the input pixels and after each hidden layer */
    jg_node *last; /* logits of the last call (lesson_train's second: the x_eval graph) */
} model_arg;

static jg_node *mlp(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch;
    model_arg *m = arg;
    jg_node *h = jg_dropout(x, m->p_in);
    h = jg_dropout(jg_relu(lesson_linear(g, "fc1", h, PIXELS, HIDDEN, jg_he_normal())), m->p);
    h = jg_dropout(jg_relu(lesson_linear(g, "fc2", h, HIDDEN, HIDDEN, jg_he_normal())), m->p);
    return m->last = lesson_linear(g, "fc3", h, HIDDEN, 10, jg_xavier_uniform());
}

/* Softmax of every sample of ds (n samples) through p, into probs [n, 10]. */
static int probs_of(jg_program *p, jg_dataset *ds, float *probs)
{
    jg_loader *ld = jg_loader_new(ds, BATCH, NULL);
    float x[BATCH * PIXELS];
    int n, status = !ld;
    int64_t at = 0;
    while (!status && jg_loader_next(ld, x, NULL, &n)) {
        if (n < BATCH)
            memset(x + n * PIXELS, 0, sizeof(float) * (size_t)(BATCH - n) * PIXELS);
        float out[BATCH * 10];
        status = jg_program_set(p, "x_eval", x, sizeof x) || jg_program_run(p) ||
                 jg_program_get(p, 0, out, sizeof out);
        memcpy(probs + at * 10, out, sizeof(float) * (size_t)n * 10);
        at += n;
    }
    jg_loader_free(ld);
    return status;
}

/* Mean cross entropy of the evaluation program's logits over ds. */
static double cross_entropy_of(jg_program *p, jg_dataset *ds)
{
    jg_loader *ld = jg_loader_new(ds, BATCH, NULL);
    float x[BATCH * PIXELS], z[BATCH * 10];
    int32_t y[BATCH];
    int n;
    double sum = 0;
    int64_t seen = 0;
    while (ld && jg_loader_next(ld, x, y, &n)) {
        if (n < BATCH)
            memset(x + n * PIXELS, 0, sizeof(float) * (size_t)(BATCH - n) * PIXELS);
        if (jg_program_set(p, "x_eval", x, sizeof x) || jg_program_run(p) ||
            jg_program_get(p, 0, z, sizeof z))
            break;
        for (int i = 0; i < n; i++, seen++) {
            double m = z[i * 10];
            for (int k = 1; k < 10; k++)
                m = fmax(m, z[i * 10 + k]);
            double e = 0;
            for (int k = 0; k < 10; k++)
                e += exp(z[i * 10 + k] - m);
            sum += m + log(e) - z[i * 10 + y[i]];
        }
    }
    jg_loader_free(ld);
    return seen ? sum / (double)seen : NAN;
}

static double accuracy_of(const double *probs, const int32_t *y, int64_t n)
{
    int64_t correct = 0;
    for (int64_t i = 0; i < n; i++) {
        int best = 0;
        for (int k = 1; k < 10; k++)
            best = probs[i * 10 + k] > probs[i * 10 + best] ? k : best;
        correct += best == y[i];
    }
    return (double)correct / (double)n;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 20, "dropout-regularises"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 500 : 1000, c.quick ? 1024 : 0, &d))
        return 1;
    jg_dataset *probe = jg_dataset_range(d.test, 0, 500);
    int64_t n_mc = c.quick ? 500 : 2000;
    jg_dataset *mc_set = jg_dataset_range(d.test, 0, n_mc);
    if (!probe || !mc_set)
        return lesson_fail(&c, "cannot take the test subsets");
    int epochs = c.quick ? 20 : 100;

    model_arg plain = { 0 }, drop = { .p_in = 0.2, .p = 0.5 };
    lesson_fit fits[2] = {
        { .model = mlp, .arg = &plain, .optimizer = jg_adam(1e-3), .batch = BATCH,
          .epochs = epochs, .shuffle = true, .seed = 20 },
        { .model = mlp, .arg = &drop, .optimizer = jg_adam(1e-3), .batch = BATCH,
          .epochs = epochs, .shuffle = true, .seed = 20 },
    };
    jg_graph *g[2];
    jg_program *eval[2];
    double test_acc[2], gap[2], train_ce[2], test_ce[2];
    for (int v = 0; v < 2; v++) {
        if (lesson_train(&c, &fits[v], d.train, probe, &g[v], &eval[v]))
            return 1;
        test_acc[v] = lesson_accuracy(eval[v], d.test, BATCH);
        gap[v] = fits[v].train_accuracy - test_acc[v];
        train_ce[v] = cross_entropy_of(eval[v], d.train);
        test_ce[v] = cross_entropy_of(eval[v], d.test);
    }

    /* model averaging: K dropout masks vs the evaluation network, on n_mc test images */
    jg_node *sm = jg_softmax(drop.last, 1);
    jg_program *p_eval = jg_compile(g[1], &sm, 1, &(jg_opts){ .num_threads = c.threads,
                                                               .mode = JG_MODE_EVAL });
    jg_program *p_mask = jg_compile(g[1], &sm, 1, &(jg_opts){ .num_threads = c.threads,
                                                               .mode = JG_MODE_TRAIN });
    if (!p_eval || !p_mask)
        return lesson_fail(&c, "%s", jg_errmsg(g[1]));
    float *pe = malloc(sizeof(float) * (size_t)n_mc * 10);
    float *pm = malloc(sizeof(float) * (size_t)n_mc * 10);
    double *sum = calloc((size_t)n_mc * 10, sizeof *sum), *avg = malloc(sizeof *avg * n_mc * 10);
    int32_t *y = malloc(sizeof *y * (size_t)n_mc);
    if (!pe || !pm || !sum || !avg || !y)
        return lesson_fail(&c, "out of memory");
    for (int64_t i = 0; i < n_mc; i++)
        jg_dataset_get(mc_set, i, NULL, &y[i]);
    if (probs_of(p_eval, mc_set, pe))
        return lesson_fail(&c, "%s", jg_errmsg(p_eval));
    for (int64_t i = 0; i < n_mc * 10; i++)
        avg[i] = pe[i];
    double eval_mc_acc = accuracy_of(avg, y, n_mc);
    const int ks[KS] = { 1, 4, 16, 64 };
    int k_max = c.quick ? 16 : 64, runs = 0;
    double k_acc[KS], k_diff[KS];
    int n_k = 0;
    for (int ki = 0; ki < KS && ks[ki] <= k_max; ki++, n_k++) {
        while (runs < ks[ki]) {
            if (probs_of(p_mask, mc_set, pm))
                return lesson_fail(&c, "%s", jg_errmsg(p_mask));
            for (int64_t i = 0; i < n_mc * 10; i++)
                sum[i] += pm[i];
            runs++;
        }
        double diff = 0;
        for (int64_t i = 0; i < n_mc * 10; i++) {
            avg[i] = sum[i] / runs;
            diff += fabs(avg[i] - pe[i]);
        }
        k_acc[ki] = accuracy_of(avg, y, n_mc);
        k_diff[ki] = diff / (double)(n_mc * 10);
    }

    printf("%lld training images, %d epochs of %lld steps (batch %d), Adam 1e-3; test set %lld "
           "images\n", (long long)jg_dataset_size(d.train), epochs,
           (long long)(jg_dataset_size(d.train) / BATCH), BATCH,
           (long long)jg_dataset_size(d.test));
    const char *cols[] = { "network", "train acc", "test acc", "gap", "train CE", "test CE" };
    lesson_table(cols, 6);
    const char *names[2] = { "no dropout", "dropout" };
    for (int v = 0; v < 2; v++)
        lesson_row("%-14s %-14.4f %-14.4f %-14.4f %-14.4f %.4f", names[v],
                   fits[v].train_accuracy, test_acc[v], gap[v], train_ce[v], test_ce[v]);
    printf("(dropout: 0.2 on the input pixels, 0.5 after each hidden layer; cross entropy "
           "(CE) of the evaluation network)\n");
    printf("\nmodel averaging on %lld test images: evaluation-mode accuracy %.4f\n",
           (long long)n_mc, eval_mc_acc);
    const char *cols2[] = { "masks K", "accuracy", "mean |p - p_eval|" };
    lesson_table(cols2, 3);
    for (int ki = 0; ki < n_k; ki++)
        lesson_row("%-14d %-14.4f %.5f", ks[ki], k_acc[ki], k_diff[ki]);

    /* curves */
    double ep[256], acc_curve[2][256], loss_curve[2][256];
    for (int e = 0; e < epochs; e++) {
        ep[e] = e + 1;
        for (int v = 0; v < 2; v++) {
            acc_curve[v][e] = fits[v].test_accuracy[e];
            loss_curve[v][e] = fits[v].loss[e];
        }
    }
    jg_series series[4] = {
        { "no dropout: test acc (probe)", ep, acc_curve[0], epochs },
        { "dropout: test acc (probe)", ep, acc_curve[1], epochs },
        { "no dropout: training loss", ep, loss_curve[0], epochs },
        { "dropout: training loss", ep, loss_curve[1], epochs },
    };
    char path[1024], err[256];
    if (jg_plot_svg(lesson_path(&c, "20_dropout_curves.svg", path, sizeof path),
                    "Dropout on 1000 images", "epoch", "accuracy / loss", series, 4, false, err,
                    sizeof err) != JG_OK)
        return lesson_fail(&c, "%s", err);
    printf("curves: %s\n", path);

    bool regularises = gap[1] < gap[0] && test_acc[1] >= test_acc[0];
    bool averages = fabs(k_acc[n_k - 1] - eval_mc_acc) <= 0.01 && k_acc[n_k - 1] > k_acc[0];
    for (int ki = 1; ki < n_k; ki++)
        averages = averages && k_diff[ki] < k_diff[ki - 1];
    for (int v = 0; v < 2; v++) {
        jg_program_free(eval[v]);
        jg_graph_free(g[v]);
    }
    jg_program_free(p_eval);
    jg_program_free(p_mask);
    free(pe), free(pm), free(sum), free(avg), free(y);
    jg_dataset_free(probe);
    jg_dataset_free(mc_set);
    lesson_data_free(&d);
    return lesson_verdict(&c, regularises && averages,
                          "gap train-test %.3f without dropout, %.3f with; test acc %.4f vs "
                          "%.4f, test CE %.3f vs %.3f; %d-mask average %.4f vs eval mode %.4f (1 mask %.4f), "
                          "|p - p_eval| %.4f -> %.4f",
                          gap[0], gap[1], test_acc[0], test_acc[1], test_ce[0], test_ce[1],
                          ks[n_k - 1],
                          k_acc[n_k - 1], eval_mc_acc, k_acc[0], k_diff[0], k_diff[n_k - 1]);
}
