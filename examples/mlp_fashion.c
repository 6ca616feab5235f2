/* The main demo: an MLP 784-256-128-10 with ReLU, trained by mini-batch SGD with momentum on
 * Fashion-MNIST (the Debian package dataset-fashion-mnist). Prints the loss per epoch and the
 * test accuracy after each epoch.
 *
 *   mlp_fashion [--epochs N] [--batch B] [--lr LR] [--momentum M] [--limit N] [--data DIR]
 *               [--threads T] [--profile] [--reference]
 *
 * --profile prints the training program's kernels and a per-kernel time table at the end;
 * --reference runs on the reference executor (plain C in double: slow, for comparison).
 *
 * It shows the shape of every jitgrad program: build a graph once, compile a training program
 * (loss, gradients, update) and an evaluation program that share the parameters, then feed
 * batches by name. */
#include "jitgrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct options {
    int epochs, batch, limit, threads;
    double lr, momentum;
    const char *data;
    bool profile, reference;
} options;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse(int argc, char **argv, options *o)
{
    *o = (options){ .epochs = 3, .batch = 128, .lr = 0.05, .momentum = 0.9,
                    .data = "/usr/share/datasets/fashion-mnist" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--profile")) {
            o->profile = true;
            continue;
        }
        if (!strcmp(a, "--reference")) {
            o->reference = true;
            continue;
        }
        if (!v) {
            fprintf(stderr, "mlp_fashion: %s needs a value\n", a);
            return 1;
        }
        if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--limit")) o->limit = atoi(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--momentum")) o->momentum = atof(v);
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else {
            fprintf(stderr, "mlp_fashion: unknown option %s\n", a);
            return 1;
        }
        i++;
    }
    if (o->epochs < 1 || o->batch < 1 || !(o->lr > 0)) {
        fprintf(stderr, "mlp_fashion: epochs and batch must be >= 1, lr > 0\n");
        return 1;
    }
    return 0;
}

static int load(const char *dir, const char *name, jg_dtype as, jg_array *out)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (jg_idx_read(path, as, out, err, sizeof err) != JG_OK) {
        fprintf(stderr, "mlp_fashion: %s\n", err);
        return 1;
    }
    return 0;
}

/* The model, applied to any input node: parameters are found by name, so the training and
 * evaluation graphs built from it share them. */
static jg_node *mlp(jg_graph *g, jg_node *x)
{
    jg_node *w1 = jg_param_find(g, "w1"), *b1 = jg_param_find(g, "b1");
    jg_node *w2 = jg_param_find(g, "w2"), *b2 = jg_param_find(g, "b2");
    jg_node *w3 = jg_param_find(g, "w3"), *b3 = jg_param_find(g, "b3");
    if (!w1) {
        w1 = jg_param(g, "w1", jg_shape(784, 256), jg_he_normal());
        b1 = jg_param(g, "b1", jg_shape(256), jg_zeros());
        w2 = jg_param(g, "w2", jg_shape(256, 128), jg_he_normal());
        b2 = jg_param(g, "b2", jg_shape(128), jg_zeros());
        w3 = jg_param(g, "w3", jg_shape(128, 10), jg_xavier_uniform());
        b3 = jg_param(g, "b3", jg_shape(10), jg_zeros());
    }
    jg_node *h1 = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *h2 = jg_relu(jg_add(jg_matmul(h1, w2), b2));
    return jg_add(jg_matmul(h2, w3), b3);
}

/* A seeded Fisher-Yates shuffle (xorshift64*), so runs are reproducible. */
static void shuffle(int *idx, int n, uint64_t *state)
{
    for (int i = n - 1; i > 0; i--) {
        *state ^= *state >> 12, *state ^= *state << 25, *state ^= *state >> 27;
        int j = (int)((*state * 0x2545F4914F6CDD1DULL >> 33) % (uint64_t)(i + 1));
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static double accuracy(jg_program *eval, int eval_batch, const jg_array *x, const jg_array *y,
                       int n)
{
    float *logits = malloc((size_t)eval_batch * 10 * sizeof *logits);
    int correct = 0, seen = 0;
    for (int start = 0; logits && start + eval_batch <= n; start += eval_batch) {
        const float *xs = (const float *)x->data + (size_t)start * 784;
        if (jg_program_set(eval, "x_eval", xs, (size_t)eval_batch * 784 * sizeof(float)) ||
            jg_program_run(eval) ||
            jg_program_get(eval, 0, logits, (size_t)eval_batch * 10 * sizeof *logits)) {
            fprintf(stderr, "mlp_fashion: %s\n", jg_errmsg(eval));
            break;
        }
        for (int i = 0; i < eval_batch; i++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                if (logits[i * 10 + c] > logits[i * 10 + best])
                    best = c;
            correct += best == ((const int32_t *)y->data)[start + i];
        }
        seen += eval_batch;
    }
    free(logits);
    return seen ? (double)correct / seen : 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o))
        return 2;
    jg_array xtr = { 0 }, ytr = { 0 }, xte = { 0 }, yte = { 0 };
    if (load(o.data, "train-images-idx3-ubyte.gz", JG_F32, &xtr) ||
        load(o.data, "train-labels-idx1-ubyte.gz", JG_I32, &ytr) ||
        load(o.data, "t10k-images-idx3-ubyte.gz", JG_F32, &xte) ||
        load(o.data, "t10k-labels-idx1-ubyte.gz", JG_I32, &yte))
        return 1;
    int n_train = (int)xtr.shape.dim[0], n_test = (int)xte.shape.dim[0];
    if (o.limit > 0 && o.limit < n_train)
        n_train = o.limit;
    int eval_batch = n_test % 1000 == 0 ? 1000 : 1;
    if (o.batch > n_train)
        o.batch = n_train;

    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 42);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(o.batch, 784));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(o.batch));
    jg_node *loss = jg_cross_entropy(mlp(g, x), y);
    jg_node *x_eval = jg_input(g, "x_eval", JG_F32, jg_shape(eval_batch, 784));
    jg_node *logits_eval = mlp(g, x_eval);

    jg_executor exec = o.reference ? JG_EXEC_REFERENCE : JG_EXEC_DEFAULT;
    jg_program *train = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(o.lr, o.momentum),
        .compile = { .executor = exec, .num_threads = o.threads } });
    jg_program *eval = jg_compile(g, &logits_eval, 1,
                                  &(jg_opts){ .executor = exec, .num_threads = o.threads });
    if (!train || !eval) {
        fprintf(stderr, "mlp_fashion: %s\n", jg_errmsg(g));
        return 1;
    }
    jg_program_stats st;
    jg_program_stats_get(train, &st);
    printf("MLP 784-256-128-10, SGD lr %g momentum %g, batch %d, %d training images\n", o.lr,
           o.momentum, o.batch, n_train);
    if (!o.reference)
        printf("training step: %d kernels, %d threads, %d-bit vectors, compiled in %.0f ms\n",
               st.kernels, st.threads, st.vector_bits, st.total_ms);
    jg_program_profile(train, o.profile);

    int *order = malloc((size_t)n_train * sizeof *order);
    float *xb = malloc((size_t)o.batch * 784 * sizeof *xb);
    int32_t *yb = malloc((size_t)o.batch * sizeof *yb);
    if (!order || !xb || !yb)
        return 1;
    for (int i = 0; i < n_train; i++)
        order[i] = i;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    bool tty = isatty(fileno(stderr));
    int steps = n_train / o.batch;
    int status = 0;
    for (int epoch = 1; epoch <= o.epochs && !status; epoch++) {
        shuffle(order, n_train, &rng);
        double t0 = now(), sum_loss = 0;
        for (int s = 0; s < steps; s++) {
            for (int i = 0; i < o.batch; i++) {
                int k = order[s * o.batch + i];
                memcpy(xb + (size_t)i * 784, (const float *)xtr.data + (size_t)k * 784,
                       784 * sizeof *xb);
                yb[i] = ((const int32_t *)ytr.data)[k];
            }
            float l;
            if (jg_program_set(train, "x", xb, (size_t)o.batch * 784 * sizeof *xb) ||
                jg_program_set(train, "y", yb, (size_t)o.batch * sizeof *yb) ||
                jg_program_run(train) || jg_program_get(train, 0, &l, sizeof l)) {
                fprintf(stderr, "mlp_fashion: %s\n", jg_errmsg(train));
                status = 1;
                break;
            }
            sum_loss += l;
            if (tty && (s % 20 == 0 || s == steps - 1)) {
                double el = now() - t0, rate = (s + 1) * o.batch / el;
                fprintf(stderr, "\repoch %d  batch %d/%d  loss %.4f  %.0f samples/s  ETA %.0fs ",
                        epoch, s + 1, steps, sum_loss / (s + 1), rate,
                        (steps - s - 1) * o.batch / rate);
            }
        }
        if (tty)
            fprintf(stderr, "\r%*s\r", 78, "");
        if (status)
            break;
        double train_time = now() - t0;
        double acc = accuracy(eval, eval_batch, &xte, &yte, n_test);
        printf("epoch %d  loss %.4f  (%.1f s)\n", epoch, sum_loss / steps, train_time);
        printf("test accuracy %.4f\n", acc);
        fflush(stdout);
    }
    if (o.profile) {
        jg_program_dump(train, stdout);
        jg_program_profile_dump(train, stdout);
    }
    free(order);
    free(xb);
    free(yb);
    jg_program_free(train);
    jg_program_free(eval);
    jg_graph_free(g);
    jg_array_free(&xtr);
    jg_array_free(&ytr);
    jg_array_free(&xte);
    jg_array_free(&yte);
    return status;
}
