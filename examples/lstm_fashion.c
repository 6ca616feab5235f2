/* A many-to-one LSTM on Fashion-MNIST (the Debian package dataset-fashion-mnist): each image is
 * read as a sequence of 28 rows of 28 pixels, an LSTM with 128 hidden units reads it row by
 * row, and a linear layer maps its last state to the 10 classes. Trained with Adam; prints the
 * loss per epoch and the test accuracy.
 *
 *   lstm_fashion [--epochs N] [--batch B] [--lr LR] [--limit N] [--data DIR] [--threads T]
 *
 * The recurrent layer is one call, jg_rnn: its weights ("lstm.w_ih", "lstm.w_hh", "lstm.b")
 * live in the graph's store, so the evaluation model built from the same prefix shares them
 * with the training model. The defaults train one epoch on 20000 images (about a minute,
 * most of it compiling the 28 unrolled steps); --limit 0 uses all 60000. */
#include "jitgrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROWS 28   /* time steps */
#define COLS 28   /* features per step */
#define HIDDEN 128
#define CLASSES 10

typedef struct config {
    int epochs, batch, limit, threads;
    double lr;
    const char *data;
} config;

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse_args(int argc, char **argv, config *c)
{
    *c = (config){ .epochs = 1, .batch = 128, .limit = 20000, .lr = 2e-3,
                   .data = "/usr/share/datasets/fashion-mnist" };
    for (int i = 1; i < argc; i += 2) {
        const char *key = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) {
            fprintf(stderr, "lstm_fashion: %s needs a value\n", key);
            return 1;
        }
        if (!strcmp(key, "--epochs")) c->epochs = atoi(val);
        else if (!strcmp(key, "--batch")) c->batch = atoi(val);
        else if (!strcmp(key, "--limit")) c->limit = atoi(val);
        else if (!strcmp(key, "--lr")) c->lr = atof(val);
        else if (!strcmp(key, "--data")) c->data = val;
        else if (!strcmp(key, "--threads")) c->threads = atoi(val);
        else {
            fprintf(stderr, "lstm_fashion: unknown option %s\n", key);
            return 1;
        }
    }
    if (c->epochs < 1 || c->batch < 1 || c->limit < 0 || !(c->lr > 0)) {
        fprintf(stderr, "lstm_fashion: epochs and batch must be >= 1, limit >= 0, lr > 0\n");
        return 1;
    }
    return 0;
}

static int read_idx(const char *dir, const char *file, jg_dtype as, jg_array *out)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (jg_idx_read(path, as, out, err, sizeof err) != JG_OK) {
        fprintf(stderr, "lstm_fashion: %s\n", err);
        return 1;
    }
    return 0;
}

/* images [B, 28, 28] -> logits [B, 10]. Called twice (training and evaluation batch sizes);
 * the second call finds every parameter by name, so both programs share them. */
static jg_node *model(jg_graph *g, jg_node *images)
{
    jg_node *h = jg_rnn(g, JG_LSTM, "lstm", images, HIDDEN, NULL);
    jg_node *w = jg_param_find(g, "fc.w"), *b = jg_param_find(g, "fc.b");
    if (!w) {
        w = jg_param(g, "fc.w", jg_shape(HIDDEN, CLASSES), jg_xavier_uniform());
        b = jg_param(g, "fc.b", jg_shape(CLASSES), jg_zeros());
    }
    return jg_add(jg_matmul(h, w), b);
}

/* Seeded Fisher-Yates (splitmix64 steps), so every run sees the same order. */
static void permute(int *v, int n, uint64_t *s)
{
    for (int i = n - 1; i > 0; i--) {
        uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        int j = (int)(z % (uint64_t)(i + 1)), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Fraction of the test set classified correctly, in batches of eval_batch. */
static double test_accuracy(jg_program *eval, int eval_batch, const jg_array *x,
                            const jg_array *y)
{
    int n = (int)x->shape.dim[0], right = 0, seen = 0;
    size_t img = ROWS * COLS;
    float *logits = malloc((size_t)eval_batch * CLASSES * sizeof *logits);
    for (int at = 0; logits && at + eval_batch <= n; at += eval_batch) {
        if (jg_program_set(eval, "images_eval", (const float *)x->data + (size_t)at * img,
                           (size_t)eval_batch * img * sizeof(float)) ||
            jg_program_run(eval) ||
            jg_program_get(eval, 0, logits, (size_t)eval_batch * CLASSES * sizeof *logits)) {
            fprintf(stderr, "lstm_fashion: %s\n", jg_errmsg(eval));
            seen = 0;
            break;
        }
        for (int i = 0; i < eval_batch; i++) {
            const float *row = logits + (size_t)i * CLASSES;
            int best = 0;
            for (int k = 1; k < CLASSES; k++)
                best = row[k] > row[best] ? k : best;
            right += best == ((const int32_t *)y->data)[at + i];
        }
        seen += eval_batch;
    }
    free(logits);
    return seen ? (double)right / seen : 0;
}

int main(int argc, char **argv)
{
    config c;
    if (parse_args(argc, argv, &c))
        return 2;
    jg_array train_x = { 0 }, train_y = { 0 }, test_x = { 0 }, test_y = { 0 };
    if (read_idx(c.data, "train-images-idx3-ubyte.gz", JG_F32, &train_x) ||
        read_idx(c.data, "train-labels-idx1-ubyte.gz", JG_I32, &train_y) ||
        read_idx(c.data, "t10k-images-idx3-ubyte.gz", JG_F32, &test_x) ||
        read_idx(c.data, "t10k-labels-idx1-ubyte.gz", JG_I32, &test_y))
        return 1;
    int n = (int)train_x.shape.dim[0];
    if (c.limit > 0 && c.limit < n)
        n = c.limit;
    if (c.batch > n)
        c.batch = n;
    int eval_batch = test_x.shape.dim[0] % 500 == 0 ? 500 : 1;

    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 7);
    jg_node *images = jg_input(g, "images", JG_F32, jg_shape(c.batch, ROWS, COLS));
    jg_node *labels = jg_input(g, "labels", JG_I32, jg_shape(c.batch));
    jg_node *loss = jg_cross_entropy(model(g, images), labels);
    jg_node *images_eval = jg_input(g, "images_eval", JG_F32, jg_shape(eval_batch, ROWS, COLS));
    jg_node *logits_eval = model(g, images_eval);

    double t0 = seconds();
    jg_program *train = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(c.lr), .compile = { .num_threads = c.threads } });
    jg_program *eval = jg_compile(g, &logits_eval, 1, &(jg_opts){ .num_threads = c.threads });
    if (!train || !eval) {
        fprintf(stderr, "lstm_fashion: %s\n", jg_errmsg(g));
        jg_program_free(train);
        jg_graph_free(g);
        return 1;
    }
    jg_program_stats st;
    jg_program_stats_get(train, &st);
    printf("LSTM %d-%d over %d rows -> %d classes, Adam lr %g, batch %d, %d training images\n",
           COLS, HIDDEN, ROWS, CLASSES, c.lr, c.batch, n);
    printf("compiled in %.1f s (training step: %d kernels, %d threads)\n", seconds() - t0,
           st.kernels, st.threads);

    size_t img = ROWS * COLS;
    int *order = malloc((size_t)n * sizeof *order);
    float *xb = malloc((size_t)c.batch * img * sizeof *xb);
    int32_t *yb = malloc((size_t)c.batch * sizeof *yb);
    int status = !order || !xb || !yb;
    for (int i = 0; i < n && order; i++)
        order[i] = i;
    uint64_t rng = 2024;
    bool tty = isatty(fileno(stderr));
    int steps = n / c.batch;
    for (int epoch = 1; epoch <= c.epochs && !status; epoch++) {
        permute(order, n, &rng);
        double start = seconds(), total = 0;
        for (int s = 0; s < steps && !status; s++) {
            for (int i = 0; i < c.batch; i++) {
                int k = order[s * c.batch + i];
                memcpy(xb + i * img, (const float *)train_x.data + (size_t)k * img,
                       img * sizeof *xb);
                yb[i] = ((const int32_t *)train_y.data)[k];
            }
            float l = 0;
            if (jg_program_set(train, "images", xb, (size_t)c.batch * img * sizeof *xb) ||
                jg_program_set(train, "labels", yb, (size_t)c.batch * sizeof *yb) ||
                jg_program_run(train) || jg_program_get(train, 0, &l, sizeof l)) {
                fprintf(stderr, "lstm_fashion: %s\n", jg_errmsg(train));
                status = 1;
            }
            total += l;
            if (tty && (s % 10 == 0 || s == steps - 1))
                fprintf(stderr, "\repoch %d  step %d/%d  loss %.4f ", epoch, s + 1, steps,
                        total / (s + 1));
        }
        if (tty)
            fprintf(stderr, "\r%60s\r", "");
        if (status)
            break;
        double took = seconds() - start;
        printf("epoch %d  loss %.4f  (%.1f s, %.1f ms/step)\n", epoch, total / steps, took,
               1e3 * took / steps);
        printf("test accuracy %.4f\n", test_accuracy(eval, eval_batch, &test_x, &test_y));
        fflush(stdout);
    }
    free(order);
    free(xb);
    free(yb);
    jg_program_free(train);
    jg_program_free(eval);
    jg_graph_free(g);
    jg_array_free(&train_x);
    jg_array_free(&train_y);
    jg_array_free(&test_x);
    jg_array_free(&test_y);
    return status;
}
