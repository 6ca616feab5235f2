/* Lesson 11: batch normalisation speeds up training and regularises. Normalising every
 * layer's pre-activations over the batch keeps their scale fixed whatever the weights before
 * them do, so a larger learning rate stays stable and each layer sees inputs of the same
 * scale all along; the batch statistics also add a little noise (a regulariser). The cost is
 * a dozen small ops per layer (statistics, normalisation, their backward) that the compiler
 * fuses into a few kernels; its "bn_relu" pass further takes relu(batchnorm(x))'s statistics
 * in one pass over the data and the backward's channel sums in one more.
 *
 * Experiment: an MLP 784-256-256-256-10 trained by plain SGD on Fashion-MNIST, with and
 * without batchnorm before each hidden ReLU (the batchnorm model has no bias before the
 * batchnorm: beta is the bias), at a usual learning rate and at a high one, from the same
 * seed; test accuracy after each epoch and the number of epochs to reach a target test
 * accuracy. Then the batchnorm model's training step compiled with every pass, with pass
 * "bn_relu" off, and with fusion off (jg_opts.passes_off): kernel counts
 * (jg_program_stats_get), mean step time, and the first step's loss.
 * Criterion: HOLDS when, at the high learning rate, the batchnorm model reaches the target in
 * fewer epochs than the plain one (never counts as more), at the usual rate it needs no more
 * epochs than the plain one, and fusion runs the batchnorm step in fewer kernels for the same
 * loss. The bn_relu pass is reported, not judged: it cuts passes over the data, not kernels
 * (on this 3-layer MLP it even adds a few: recomputing cheap pointwise values where used
 * splits some groups), and its step time is measured on a shared machine. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PIXELS = 784, HIDDEN = 256, LAYERS = 3, BATCH = 128 };

static jg_node *mlp(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch;
    bool bn = *(const bool *)arg;
    int in = PIXELS;
    char name[32];
    for (int l = 0; l < LAYERS; l++, in = HIDDEN) {
        snprintf(name, sizeof name, "h%d", l);
        if (bn) {
            char w_name[40];
            snprintf(w_name, sizeof w_name, "%s.w", name);
            jg_node *w = jg_param_find(g, w_name);
            if (!w)
                w = jg_param(g, w_name, jg_shape(in, HIDDEN), jg_he_normal());
            x = jg_relu(jg_batchnorm(name, jg_matmul(x, w), 0.1, 1e-5));
        } else {
            x = jg_relu(lesson_linear(g, name, x, in, HIDDEN, jg_he_normal()));
        }
    }
    return lesson_linear(g, "out", x, HIDDEN, 10, jg_xavier_uniform());
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The batchnorm model's training step with passes_off: kernels, ms per step, first loss. */
static int step_stats(const lesson_ctx *c, lesson_data *d, const char *passes_off,
                      int *kernels, double *ms, float *loss0)
{
    bool bn = true;
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 11);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *loss = jg_cross_entropy(mlp(g, x, BATCH, &bn), y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(0.05, 0), .compile = { .num_threads = c->threads,
                                                   .passes_off = passes_off } });
    jg_program_stats st;
    float *xb = malloc(sizeof(float) * BATCH * PIXELS);
    int32_t yb[BATCH];
    int status = !p || !xb || jg_program_stats_get(p, &st) != JG_OK;
    if (status) {
        free(xb);
        status = lesson_fail(c, "%s", p ? jg_errmsg(p) : jg_errmsg(g));
        jg_program_free(p);
        jg_graph_free(g);
        return status;
    }
    *kernels = st.kernels;
    for (int i = 0; i < BATCH; i++)
        jg_dataset_get(d->train, i, xb + (size_t)i * PIXELS, &yb[i]);
    jg_program_set(p, "x", xb, sizeof(float) * BATCH * PIXELS);
    jg_program_set(p, "y", yb, sizeof yb);
    status = jg_program_run(p) || jg_program_get(p, 0, loss0, sizeof *loss0);
    int runs = c->quick ? 20 : 200;
    double t0 = now_s();
    for (int i = 0; i < runs && !status; i++)
        status = jg_program_run(p);
    *ms = 1e3 * (now_s() - t0) / runs;
    if (status)
        status = lesson_fail(c, "%s", jg_errmsg(p));
    free(xb);
    jg_program_free(p);
    jg_graph_free(g);
    return status;
}

/* First epoch (1-based) whose test accuracy reaches target; 0 if none. */
static int epochs_to(const lesson_fit *f, double target)
{
    for (int e = 0; e < f->epochs_run; e++)
        if (f->test_accuracy[e] >= target)
            return e + 1;
    return 0;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 11, "batchnorm"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 4096 : 0, c.quick ? 1000 : 0, &d))
        return 1;
    int epochs = c.quick ? 2 : 8;
    double target = c.quick ? 0.70 : 0.86;
    const double lrs[2] = { 0.05, 1.0 };
    bool bn_flags[2] = { false, true };
    lesson_fit fits[2][2];
    for (int r = 0; r < 2; r++)
        for (int b = 0; b < 2; b++) {
            fits[r][b] = (lesson_fit){ .model = mlp, .arg = &bn_flags[b],
                                       .optimizer = jg_sgd(lrs[r], 0), .batch = BATCH,
                                       .epochs = epochs, .shuffle = true, .seed = 11 };
            if (lesson_train(&c, &fits[r][b], d.train, d.test, NULL, NULL)) {
                lesson_data_free(&d);
                return 1;
            }
        }
    printf("test accuracy after each epoch (target %.2f)\n", target);
    const char *cols[] = { "epoch", "lr .05 plain", "lr .05 BN", "lr 1 plain", "lr 1 BN" };
    lesson_table(cols, 5);
    for (int e = 0; e < epochs; e++) {
        char cell[4][32];
        for (int k = 0; k < 4; k++) {
            const lesson_fit *f = &fits[k / 2][k % 2];
            if (e < f->epochs_run && !(f->diverged && e == f->epochs_run - 1))
                snprintf(cell[k], sizeof cell[k], "%.4f", f->test_accuracy[e]);
            else
                snprintf(cell[k], sizeof cell[k], "%s", f->diverged ? "diverged" : "-");
        }
        lesson_row("%-14d %-14s %-14s %-14s %-14s", e + 1, cell[0], cell[1], cell[2], cell[3]);
    }
    int to[2][2];
    for (int r = 0; r < 2; r++)
        for (int b = 0; b < 2; b++)
            to[r][b] = epochs_to(&fits[r][b], target);
    const char *cols2[] = { "model", "lr", "epochs to tgt", "train acc", "final test" };
    lesson_table(cols2, 5);
    for (int r = 0; r < 2; r++)
        for (int b = 0; b < 2; b++) {
            const lesson_fit *f = &fits[r][b];
            char ep[16] = "never";
            if (to[r][b])
                snprintf(ep, sizeof ep, "%d", to[r][b]);
            lesson_row("%-14s %-14g %-14s %-14.4f %-14.4f", b ? "batchnorm" : "plain", lrs[r],
                       ep, f->train_accuracy,
                       f->diverged ? NAN : f->test_accuracy[f->epochs_run - 1]);
        }

    int k[3];
    double ms[3];
    float l[3];
    const char *off[3] = { NULL, "bn_relu", "fuse" };
    const char *label[3] = { "every pass", "bn_relu off", "fusion off" };
    printf("the batchnorm model's training step, batch %d\n", BATCH);
    const char *cols3[] = { "compiled with", "kernels", "ms per step", "first loss" };
    lesson_table(cols3, 4);
    for (int i = 0; i < 3; i++) {
        if (step_stats(&c, &d, off[i], &k[i], &ms[i], &l[i])) {
            lesson_data_free(&d);
            return 1;
        }
        lesson_row("%-14s %-14d %-14.3f %-14.6f", label[i], k[i], ms[i], l[i]);
    }
    lesson_data_free(&d);

    int max_e = epochs + 1; /* "never" counts as more than any */
    int hi_plain = to[1][0] ? to[1][0] : max_e, hi_bn = to[1][1] ? to[1][1] : max_e;
    int lo_plain = to[0][0] ? to[0][0] : max_e, lo_bn = to[0][1] ? to[0][1] : max_e;
    bool same_loss = true;
    for (int i = 1; i < 3; i++)
        same_loss = same_loss && fabsf(l[i] - l[0]) <= 1e-4f * fabsf(l[0]) + 1e-5f;
    bool holds = hi_bn < hi_plain && lo_bn <= lo_plain && k[0] < k[2] && same_loss;
    char s[2][2][16] = { { "never", "never" }, { "never", "never" } };
    for (int r = 0; r < 2; r++)
        for (int b = 0; b < 2; b++)
            if (to[r][b])
                snprintf(s[r][b], sizeof s[r][b], "%d", to[r][b]);
    return lesson_verdict(&c, holds, "epochs to test accuracy %.2f: lr 1: batchnorm %s, plain "
                          "%s%s; lr 0.05: batchnorm %s, plain %s; kernels of the batchnorm step: "
                          "%d fused, %d unfused, %d with bn_relu off (same loss: %s)", target,
                          s[1][1], s[1][0], fits[1][0].diverged ? " (diverged)" : "", s[0][1],
                          s[0][0], k[0], k[2], k[1], same_loss ? "yes" : "no");
}
