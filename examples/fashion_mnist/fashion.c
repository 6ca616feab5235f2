/* The training driver shared by the Fashion-MNIST examples (see fashion.h). */
#define _POSIX_C_SOURCE 200809L
#include "fashion.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { PIXELS = 784, CLASSES = 10 };

typedef struct options {
    int epochs, batch, threads, augment;
    int64_t limit, test_limit;
    double lr;
    bool resume, profile;
    const char *data, *out;
} options;

/* Set by the SIGINT handler, read between batches: the one piece of global state, as a
 * signal handler can reach nothing else. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void usage(const fm_spec *s, const options *o)
{
    printf("%s\n"
           "usage: %s [--epochs N] [--batch B] [--lr LR] [--threads T] [--limit N] [--augment 0|1]\n"
           "       [--data DIR] [--out DIR] [--resume] [--quick] [--profile]\n"
           "defaults: %d epochs, batch %d, lr %g, threads 0 (all cores), data %s, out %s\n"
           "--quick: one epoch on 2,048 images, tested on 1,000; --limit N: the first N training\n"
           "images; --resume: continue from <out>/%s.safetensors; --profile: the step's kernels,\n"
           "slowest first, after the first epoch. Ctrl-C saves a checkpoint and exits.\n",
           s->description, s->name, o->epochs, o->batch, o->lr, o->data, o->out, s->name);
}

static int parse(int argc, char **argv, const fm_spec *s, options *o)
{
    *o = (options){ .epochs = s->epochs, .batch = s->batch, .lr = s->optimizer.lr,
                    .augment = 1, .data = "/usr/share/datasets/fashion-mnist", .out = "." };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(s, o); return -1; }
        else if (!strcmp(a, "--quick")) o->epochs = 1, o->limit = 2048, o->test_limit = 1000, takes = false;
        else if (!strcmp(a, "--resume")) o->resume = true, takes = false;
        else if (!strcmp(a, "--profile")) o->profile = true, takes = false;
        else if (!v) { fprintf(stderr, "%s: %s needs a value\n", s->name, a); return 2; }
        else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--limit")) o->limit = atoll(v);
        else if (!strcmp(a, "--augment")) o->augment = atoi(v);
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else { fprintf(stderr, "%s: unknown option %s (try --help)\n", s->name, a); return 2; }
        i += takes;
    }
    if (o->epochs < 1 || o->batch < 1 || o->limit < 0 || !(o->lr > 0) || o->threads < 0) {
        fprintf(stderr, "%s: epochs and batch must be >= 1, limit and threads >= 0, lr > 0\n",
                s->name);
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------- data */

typedef struct data {
    jg_array xtr, ytr, xte, yte;
    jg_dataset *train_all, *test_all, *train, *test;
} data;

static void data_free(data *d)
{
    jg_dataset_free(d->train);
    jg_dataset_free(d->test);
    jg_dataset_free(d->train_all);
    jg_dataset_free(d->test_all);
    jg_array_free(&d->xtr), jg_array_free(&d->ytr);
    jg_array_free(&d->xte), jg_array_free(&d->yte);
}

static int data_load(const char *name, const options *o, data *d)
{
    *d = (data){ 0 };
    const char *files[4] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" };
    jg_array *arrays[4] = { &d->xtr, &d->ytr, &d->xte, &d->yte };
    char path[1024], err[512];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", o->data, files[i]);
        if (jg_idx_read(path, i % 2 ? JG_I32 : JG_F32, arrays[i], err, sizeof err) != JG_OK) {
            fprintf(stderr, "%s: %s (the data comes with Debian's dataset-fashion-mnist)\n",
                    name, err);
            return 1;
        }
    }
    if (jg_dataset_new(&d->xtr, &d->ytr, &d->train_all, err, sizeof err) ||
        jg_dataset_new(&d->xte, &d->yte, &d->test_all, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", name, err);
        return 1;
    }
    int64_t n_tr = jg_dataset_size(d->train_all), n_te = jg_dataset_size(d->test_all);
    d->train = jg_dataset_range(d->train_all, 0, o->limit && o->limit < n_tr ? o->limit : n_tr);
    d->test = jg_dataset_range(d->test_all, 0, o->test_limit && o->test_limit < n_te
                                                   ? o->test_limit : n_te);
    if (!d->train || !d->test) {
        fprintf(stderr, "%s: %s\n", name, jg_dataset_errmsg(d->train_all));
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- evaluation */

typedef struct eval_result {
    double accuracy;
    int64_t confusion[CLASSES][CLASSES]; /* [true][predicted] */
    int32_t *predicted;                  /* by test sample */
} eval_result;

/* Runs the evaluation program over the whole test set; the last batch is padded with zeros
 * and only its real samples are counted. */
static int argmax_row(const float *logits)
{
    int best = 0;
    for (int c = 1; c < CLASSES; c++)
        best = logits[c] > logits[best] ? c : best;
    return best;
}

/* Runs the evaluation program on x; logits out. */
static int eval_batch(const char *name, jg_program *eval, const float *x, float *logits, int batch)
{
    if (jg_program_set(eval, "x_eval", x, (size_t)batch * PIXELS * sizeof *x) ||
        jg_program_run(eval) ||
        jg_program_get(eval, 0, logits, (size_t)batch * CLASSES * sizeof *logits)) {
        fprintf(stderr, "%s: %s\n", name, jg_errmsg(eval));
        return 1;
    }
    return 0;
}

/* The test accuracy, the confusion matrix and the predictions. */
static int evaluate(const char *name, jg_program *eval, jg_dataset *test, int batch,
                    eval_result *r)
{
    memset(r->confusion, 0, sizeof r->confusion);
    jg_loader *ld = jg_loader_new(test, batch, NULL);
    float *x = calloc((size_t)batch * PIXELS, sizeof *x);
    float *logits = malloc((size_t)batch * CLASSES * sizeof *logits);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    int n, status = !ld || !x || !logits || !y;
    int64_t seen = 0, correct = 0;
    while (!status && jg_loader_next(ld, x, y, &n)) {
        if (n < batch)
            memset(x + (size_t)n * PIXELS, 0, (size_t)(batch - n) * PIXELS * sizeof *x);
        if ((status = eval_batch(name, eval, x, logits, batch)))
            break;
        for (int i = 0; i < n; i++, seen++) {
            int best = argmax_row(logits + i * CLASSES);
            correct += best == y[i];
            r->confusion[y[i]][best]++;
            r->predicted[seen] = best;
        }
    }
    r->accuracy = seen ? (double)correct / (double)seen : 0;
    jg_loader_free(ld);
    free(x), free(logits), free(y);
    return status;
}

static const char *const LABELS[CLASSES] = { "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Boot" };

static void print_confusion(const eval_result *r, FILE *out)
{
    fprintf(out, "confusion matrix (rows: true class, columns: predicted)\n%9s", "");
    for (int c = 0; c < CLASSES; c++)
        fprintf(out, " %5.5s", LABELS[c]);
    fprintf(out, "\n");
    for (int t = 0; t < CLASSES; t++) {
        fprintf(out, "%9s", LABELS[t]);
        for (int c = 0; c < CLASSES; c++)
            fprintf(out, " %5lld", (long long)r->confusion[t][c]);
        fprintf(out, "\n");
    }
}

/* The confusion matrix as CSV and the first misclassified test images as a PNG grid. */
static void write_reports(const char *name, const options *o, jg_dataset *test,
                          const eval_result *r)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s_confusion.csv", o->out, name);
    remove(path); /* jg_csv_open appends; this file is the final matrix only */
    const char *cols[CLASSES + 1] = { "true_class" };
    for (int c = 0; c < CLASSES; c++)
        cols[c + 1] = LABELS[c];
    jg_csv *csv = jg_csv_open(path, cols, CLASSES + 1);
    for (int t = 0; csv && t < CLASSES; t++) {
        double row[CLASSES + 1] = { t };
        for (int c = 0; c < CLASSES; c++)
            row[c + 1] = (double)r->confusion[t][c];
        jg_csv_row(csv, row);
    }
    if (!csv || jg_csv_close(csv) != JG_OK)
        fprintf(stderr, "%s: cannot write %s\n", name, path);

    enum { MAX_SHOWN = 64 };
    float *grid = malloc((size_t)MAX_SHOWN * PIXELS * sizeof *grid);
    int shown = 0;
    int32_t label;
    for (int64_t i = 0; grid && i < jg_dataset_size(test) && shown < MAX_SHOWN; i++) {
        if (jg_dataset_get(test, i, grid + (size_t)shown * PIXELS, &label) != JG_OK)
            break;
        shown += r->predicted[i] != label;
    }
    snprintf(path, sizeof path, "%s/%s_misclassified.png", o->out, name);
    if (shown && jg_png_write_grid(path, grid, shown, 28, 28, 8, 2) != JG_OK)
        fprintf(stderr, "%s: cannot write %s\n", name, path);
    free(grid);
}

/* ---------------------------------------------------------------- training */

typedef struct run {
    const fm_spec *spec;
    options o;
    data d;
    jg_graph *g;
    jg_program *train, *eval;
    jg_node *epoch_param; /* "fm.epoch": epochs done, saved with the checkpoint */
    char ckpt[1100], csv[1100], svg[1100];
} run;

static int save(run *r, double epochs_done)
{
    if (jg_param_set(r->g, "fm.epoch", &epochs_done, sizeof epochs_done) != JG_OK ||
        jg_checkpoint_save(r->g, r->ckpt) != JG_OK) {
        fprintf(stderr, "%s: %s\n", r->spec->name, jg_errmsg(r->g));
        return 1;
    }
    return 0;
}

static int build(run *r)
{
    const options *o = &r->o;
    r->g = jg_graph_new();
    jg_graph *g = r->g;
    jg_graph_set_seed(g, 7);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(o->batch, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(o->batch));
    jg_node *loss = jg_cross_entropy(r->spec->model(g, x, o->batch), y);
    jg_node *x_eval = jg_input(g, "x_eval", JG_F32, jg_shape(o->batch, PIXELS));
    jg_node *logits = r->spec->model(g, x_eval, o->batch);
    r->epoch_param = jg_param_as(g, "fm.epoch", JG_F64, jg_shape(1), jg_zeros());
    jg_param_freeze(r->epoch_param, true);
    jg_optimizer opt = r->spec->optimizer;
    opt.lr = o->lr;
    r->train = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = opt, .compile = { .num_threads = o->threads, .print_warnings = true } });
    r->eval = jg_compile(g, &logits, 1, &(jg_opts){ .num_threads = o->threads,
                                                      .mode = JG_MODE_EVAL });
    if (!r->train || !r->eval) {
        fprintf(stderr, "%s: %s\n", r->spec->name, jg_errmsg(g));
        return 1;
    }
    return 0;
}

/* One epoch over the training set; the mean loss in *loss. Stops early (returning 0) when
 * Ctrl-C was pressed. */
static int train_epoch(run *r, int epoch, int total_epochs, double *loss)
{
    const options *o = &r->o;
    int b = o->batch;
    jg_loader *ld = jg_loader_new(r->d.train, b, &(jg_loader_opts){
        .shuffle = true, .drop_last = true, .seed = 1000 + (uint64_t)epoch });
    float *x = malloc((size_t)b * PIXELS * sizeof *x);
    int32_t *y = malloc((size_t)b * sizeof *y);
    if (!ld || !x || !y) {
        fprintf(stderr, "%s: %s\n", r->spec->name, ld ? "out of memory"
                                                       : jg_dataset_errmsg(r->d.train));
        jg_loader_free(ld), free(x), free(y);
        return 1;
    }
    int64_t batches = jg_loader_batches(ld), step = (int64_t)(epoch - 1) * batches;
    jg_schedule cosine = { .kind = JG_SCHED_COSINE, .lr = o->lr,
                           .t_max = (int64_t)total_epochs * batches,
                           .min_lr = r->spec->cosine_min_lr };
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", epoch, total_epochs);
    jg_progress *bar = jg_progress_new(label, batches, stderr);
    double sum = 0;
    int n, done = 0, status = 0;
    while (!interrupted && jg_loader_next(ld, x, y, &n)) {
        if (o->augment)
            jg_augment(&r->spec->augment, x, b, 1, 28, 28, 99, (uint64_t)step);
        float l;
        if ((r->spec->cosine_min_lr > 0 &&
             jg_program_set_lr(r->g, NULL, jg_lr_at(&cosine, step)) != JG_OK) ||
            jg_program_set(r->train, "x", x, (size_t)b * PIXELS * sizeof *x) ||
            jg_program_set(r->train, "y", y, (size_t)b * sizeof *y) ||
            jg_program_run(r->train) || jg_program_get(r->train, 0, &l, sizeof l)) {
            fprintf(stderr, "%s: %s\n", r->spec->name, jg_errmsg(r->train));
            status = 1;
            break;
        }
        sum += l;
        step++;
        char extra[32];
        snprintf(extra, sizeof extra, "loss %.4f", sum / ++done);
        jg_progress_update(bar, done, extra);
    }
    jg_progress_done(bar);
    *loss = done ? sum / done : 0;
    jg_loader_free(ld), free(x), free(y);
    return status;
}

int fm_main(int argc, char **argv, const fm_spec *spec)
{
    run r = { .spec = spec };
    int status = parse(argc, argv, spec, &r.o);
    if (status)
        return status < 0 ? 0 : status; /* -1: --help printed */
    /* the output directory, created when missing: found out now, not at the first save */
    if (mkdir(r.o.out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot create the output directory %s: %s\n", spec->name, r.o.out,
                strerror(errno));
        return 1;
    }
    snprintf(r.ckpt, sizeof r.ckpt, "%s/%s.safetensors", r.o.out, spec->name);
    snprintf(r.csv, sizeof r.csv, "%s/%s.csv", r.o.out, spec->name);
    snprintf(r.svg, sizeof r.svg, "%s/%s.svg", r.o.out, spec->name);
    eval_result res = { 0 };
    if (data_load(spec->name, &r.o, &r.d) || build(&r) ||
        !(res.predicted = malloc((size_t)jg_dataset_size(r.d.test) * sizeof *res.predicted))) {
        status = 1;
        goto done;
    }
    int first = 1;
    if (r.o.resume) {
        double epochs_done = 0;
        if (jg_checkpoint_load(r.g, r.ckpt) != JG_OK ||
            jg_param_get(r.g, "fm.epoch", &epochs_done, sizeof epochs_done) != JG_OK) {
            fprintf(stderr, "%s: --resume: %s\n", spec->name, jg_errmsg(r.g));
            status = 1;
            goto done;
        }
        first = (int)epochs_done + 1;
        printf("resuming from %s after epoch %d\n", r.ckpt, first - 1);
    } else {
        remove(r.csv); /* a fresh run starts a fresh log */
    }
    jg_program_stats st;
    jg_program_stats_get(r.train, &st);
    printf("%s\n%s: batch %d, lr %g, %lld training / %lld test images, %d threads; training "
           "step: %d kernels, compiled in %.0f ms\n", spec->description, spec->name,
           r.o.batch, r.o.lr, (long long)jg_dataset_size(r.d.train),
           (long long)jg_dataset_size(r.d.test), st.threads, st.kernels, st.total_ms);
    jg_program_profile(r.train, r.o.profile);
    struct sigaction sa = { .sa_handler = on_sigint };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    const char *cols[4] = { "epoch", "loss", "test_accuracy", "seconds" };
    jg_csv *csv = jg_csv_open(r.csv, cols, 4);
    double t0 = now_s(), train_s = 0;
    int epoch = first;
    for (; epoch <= r.o.epochs && !status; epoch++) {
        double t = now_s(), loss;
        status = train_epoch(&r, epoch, r.o.epochs, &loss);
        train_s += now_s() - t;
        if (status || interrupted)
            break;
        if (r.o.profile && epoch == first) /* the training step's kernels, slowest first */
            jg_program_profile_dump(r.train, stderr);
        status = evaluate(spec->name, r.eval, r.d.test, r.o.batch, &res);
        if (status)
            break;
        printf("epoch %d  loss %.4f  test accuracy %.4f  (%.1f s)\n", epoch, loss,
               res.accuracy, now_s() - t);
        fflush(stdout);
        double row[4] = { epoch, loss, res.accuracy, now_s() - t };
        if (csv)
            jg_csv_row(csv, row);
        status = save(&r, epoch);
    }
    jg_csv_close(csv);
    if (interrupted) {
        /* the weights of the partial epoch are kept; --resume repeats that epoch */
        status = save(&r, epoch - 1) ? 1 : 130;
        printf("\ninterrupted: saved %s after %d full epochs; continue with --resume\n", r.ckpt,
               epoch - 1);
        goto done;
    }
    if (status)
        goto done;
    if (epoch == first) { /* nothing left to train (--resume): evaluate the checkpoint */
        if ((status = evaluate(spec->name, r.eval, r.d.test, r.o.batch, &res)))
            goto done;
        printf("%s: test accuracy %.4f after %d epochs (checkpoint %s)\n", spec->name,
               res.accuracy, epoch - 1, r.ckpt);
        goto done;
    }
    const char *ys[2] = { "loss", "test_accuracy" };
    char err[512];
    if (jg_plot_csv(r.csv, r.svg, "epoch", ys, 2, false, err, sizeof err) != JG_OK)
        fprintf(stderr, "%s: %s\n", spec->name, err);
    print_confusion(&res, stdout);
    write_reports(spec->name, &r.o, r.d.test, &res);
    printf("files: %s, %s, %s, %s/%s_misclassified.png, %s/%s_confusion.csv\n", r.ckpt, r.csv,
           r.svg, r.o.out, spec->name, r.o.out, spec->name);
    printf("%s: test accuracy %.4f after %d epochs, %.1f s training, %.1f s in all\n",
           spec->name, res.accuracy, epoch - 1, train_s, now_s() - t0);
done:
    free(res.predicted);
    jg_program_free(r.train);
    jg_program_free(r.eval);
    jg_graph_free(r.g);
    data_free(&r.d);
    return status;
}
