/* Lesson 5: search learning rates on a log scale. A good learning rate can sit at any order
 * of magnitude (it depends on the optimiser, the model, the loss's scale), and what matters
 * is the ratio between candidates, not the difference: 0.1, 0.2, ..., 0.5 tries five values
 * within a factor of 5 of each other, while 1e-5 ... 1 in half decades spans five orders of
 * magnitude with eleven.
 *
 * Experiment: an MLP 784-128-10 (relu) on a Fashion-MNIST subset, with Adam and with plain
 * SGD. Each optimiser's training program is compiled ONCE; every learning rate re-runs it
 * after restoring the parameter store (weights and optimiser state) to the same initial
 * values and setting the rate with jg_program_set_lr, over the same batches. The measure is
 * the validation cross entropy (held-out test images) after the budget; a run whose loss is
 * not finite counts as diverged (infinitely bad). Sweeps: linear 0.1, 0.2, 0.3, 0.4, 0.5;
 * log 1e-5, 3e-5, ..., 0.3, 1. 05_lr_sweep.svg plots validation loss against log10(lr).
 * (lr 0.1 is in both sweeps: its two runs give the same loss, a check of the restoring.)
 * Criterion: HOLDS when for both optimisers the log sweep's best validation loss is no worse
 * than the linear sweep's best (within 5%), and for at least one it is clearly better (by
 * more than 10%). Adam's good rates (~3e-3) lie far below the linear grid, where every
 * rate is too large; SGD's lie inside it, and there the linear grid's finer steps may win a
 * little (full run: 0.468 at 0.4 against the log grid's 0.482 at 0.3), which the 5% allows:
 * the lesson is that the log sweep finds the right scale, not the last digit. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { PIXELS = 784, BATCH = 128, EVAL_BATCH = 1000, N_LIN = 5, N_LOG = 11 };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static jg_node *mlp(jg_graph *g, jg_node *x)
{
    jg_node *h = jg_relu(lesson_linear(g, "fc1", x, PIXELS, 128, jg_he_normal()));
    return lesson_linear(g, "fc2", h, 128, 10, jg_xavier_uniform());
}

typedef struct run_ctx {
    jg_graph *g;
    jg_program *train, *val;
    const char *opt;
    jg_dataset *train_ds, *val_ds;
    int epochs;
    float *xb, *xv;
    int32_t *yb, *yv;
} run_ctx;

/* Trains from the snapshot at rate lr; returns the validation loss (inf when it diverged). */
static int run(run_ctx *r, const lesson_snapshot *s, double lr, double *val_loss)
{
    if (lesson_snapshot_restore(r->g, s) || jg_program_set_lr(r->g, r->opt, lr))
        return 1;
    jg_loader *ld = jg_loader_new(r->train_ds, BATCH, &(jg_loader_opts){ .shuffle = true,
                                  .drop_last = true, .seed = 5 });
    int n, status = !ld;
    bool finite = true;
    for (int e = 0; e < r->epochs && !status && finite; e++)
        while (!status && jg_loader_next(ld, r->xb, r->yb, &n)) {
            float l;
            status = jg_program_set(r->train, "x", r->xb, sizeof(float) * BATCH * PIXELS) ||
                     jg_program_set(r->train, "y", r->yb, sizeof(int32_t) * BATCH) ||
                     jg_program_run(r->train) || jg_program_get(r->train, 0, &l, sizeof l);
            finite = finite && isfinite(l);
        }
    jg_loader_free(ld);
    double sum = 0;
    int batches = 0;
    ld = jg_loader_new(r->val_ds, EVAL_BATCH, &(jg_loader_opts){ .drop_last = true });
    while (!status && finite && ld && jg_loader_next(ld, r->xv, r->yv, &n)) {
        float l;
        status = jg_program_set(r->val, "xv", r->xv, sizeof(float) * EVAL_BATCH * PIXELS) ||
                 jg_program_set(r->val, "yv", r->yv, sizeof(int32_t) * EVAL_BATCH) ||
                 jg_program_run(r->val) || jg_program_get(r->val, 0, &l, sizeof l);
        sum += l;
        batches++;
    }
    jg_loader_free(ld);
    *val_loss = finite && batches && isfinite(sum) ? sum / batches : INFINITY;
    return status;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 5, "lr-log-search"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 20000, c.quick ? 1000 : 10000, &d))
        return 1;
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 1);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *loss = jg_cross_entropy(mlp(g, x), y);
    jg_node *xv = jg_input(g, "xv", JG_F32, jg_shape(EVAL_BATCH, PIXELS));
    jg_node *yv = jg_input(g, "yv", JG_I32, jg_shape(EVAL_BATCH));
    jg_node *vloss = jg_cross_entropy(mlp(g, xv), yv);
    const char *opt_names[2] = { "adam", "sgd" };
    jg_optimizer opts[2] = { jg_adam(1e-3), jg_sgd(0.1, 0) };
    jg_program *train[2];
    double t0 = now_s(), compile_s[2];
    for (int k = 0; k < 2; k++) {
        train[k] = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = opts[k],
                                    .name = opt_names[k], .compile = { .num_threads = c.threads } });
        compile_s[k] = now_s() - t0;
        t0 = now_s();
    }
    jg_program *val = jg_compile(g, &vloss, 1, &(jg_opts){ .num_threads = c.threads });
    lesson_snapshot s = { 0 };
    run_ctx r = { .g = g, .val = val, .train_ds = d.train, .val_ds = d.test,
                  .epochs = c.quick ? 1 : 3 };
    r.xb = malloc(sizeof(float) * BATCH * PIXELS);
    r.xv = malloc(sizeof(float) * EVAL_BATCH * PIXELS);
    r.yb = malloc(sizeof(int32_t) * BATCH);
    r.yv = malloc(sizeof(int32_t) * EVAL_BATCH);
    if (!train[0] || !train[1] || !val || lesson_snapshot_take(g, &s) || !r.xb || !r.xv || !r.yb || !r.yv)
        return lesson_fail(&c, "%s", jg_errmsg(g));

    double lin_lr[N_LIN], log_lr[N_LOG], lin_loss[2][N_LIN], log_loss[2][N_LOG], run_s = 0;
    int runs = 0;
    for (int i = 0; i < N_LIN; i++)
        lin_lr[i] = 0.1 * (i + 1);
    for (int i = 0; i < N_LOG; i++)
        log_lr[i] = pow(10, -5 + 0.5 * i);
    for (int k = 0; k < 2; k++) {
        r.train = train[k];
        r.opt = opt_names[k];
        for (int i = 0; i < N_LIN + N_LOG; i++) {
            double t = now_s();
            double lr = i < N_LIN ? lin_lr[i] : log_lr[i - N_LIN];
            double *out = i < N_LIN ? &lin_loss[k][i] : &log_loss[k][i - N_LIN];
            if (run(&r, &s, lr, out))
                return lesson_fail(&c, "%s %s", jg_errmsg(g), jg_errmsg(train[k]));
            run_s += now_s() - t;
            runs++;
        }
    }

    const char *cols[] = { "sweep", "lr", "adam val loss", "sgd val loss" };
    lesson_table(cols, 4);
    double best_lin[2] = { INFINITY, INFINITY }, best_log[2] = { INFINITY, INFINITY };
    double arg_lin[2] = { 0 }, arg_log[2] = { 0 };
    for (int i = 0; i < N_LIN + N_LOG; i++) {
        bool lin = i < N_LIN;
        int j = lin ? i : i - N_LIN;
        double lr = lin ? lin_lr[j] : log_lr[j], v[2];
        for (int k = 0; k < 2; k++) {
            v[k] = lin ? lin_loss[k][j] : log_loss[k][j];
            double *best = lin ? &best_lin[k] : &best_log[k];
            if (v[k] < *best) {
                *best = v[k];
                *(lin ? &arg_lin[k] : &arg_log[k]) = lr;
            }
        }
        lesson_row("%-14s %-14.0e %-14.4f %-14.4f", lin ? "linear" : "log", lr, v[0], v[1]);
    }
    printf("compiled once: adam %.2f s, sgd %.2f s; %d runs of the compiled programs, %.2f s "
           "each on average\n", compile_s[0], compile_s[1], runs, run_s / runs);
    printf("lr 0.1 is in both sweeps: adam %.6f / %.6f, sgd %.6f / %.6f (equal: each run starts "
           "from the same store)\n", lin_loss[0][0], log_loss[0][8], lin_loss[1][0],
           log_loss[1][8]);
    for (int k = 0; k < 2; k++)
        printf("%s: best linear %.4f at lr %.1f, best log %.4f at lr %.0e\n", opt_names[k],
               best_lin[k], arg_lin[k], best_log[k], arg_log[k]);

    /* The plot: validation loss against log10(lr); diverged runs are left out. */
    double lx[2][N_LIN], gx[2][N_LOG];
    for (int i = 0; i < N_LIN; i++)
        lx[0][i] = lx[1][i] = log10(lin_lr[i]);
    for (int i = 0; i < N_LOG; i++)
        gx[0][i] = gx[1][i] = log10(log_lr[i]);
    jg_series series[4] = { { "adam, log sweep", gx[0], log_loss[0], N_LOG },
                            { "adam, linear sweep", lx[0], lin_loss[0], N_LIN },
                            { "sgd, log sweep", gx[1], log_loss[1], N_LOG },
                            { "sgd, linear sweep", lx[1], lin_loss[1], N_LIN } };
    char path[1024], err[256];
    lesson_path(&c, "05_lr_sweep.svg", path, sizeof path);
    if (jg_plot_svg(path, "validation loss after the budget", "log10(learning rate)",
                    "cross entropy", series, 4, true, err, sizeof err) == JG_OK)
        printf("wrote %s\n", path);
    else
        printf("plot: %s\n", err);

    lesson_snapshot_free(&s);
    free(r.xb), free(r.xv), free(r.yb), free(r.yv);
    jg_program_free(train[0]);
    jg_program_free(train[1]);
    jg_program_free(val);
    jg_graph_free(g);
    lesson_data_free(&d);
    bool no_worse = best_log[0] <= 1.05 * best_lin[0] && best_log[1] <= 1.05 * best_lin[1];
    bool clearly = best_log[0] < 0.9 * best_lin[0] || best_log[1] < 0.9 * best_lin[1];
    return lesson_verdict(&c, no_worse && clearly, "best validation loss, log vs linear sweep: "
                          "adam %.3f (lr %.0e) vs %.3f (lr %.1f), sgd %.3f (lr %.0e) vs %.3f "
                          "(lr %.1f)", best_log[0], arg_log[0], best_lin[0], arg_lin[0],
                          best_log[1], arg_log[1], best_lin[1], arg_lin[1]);
}
