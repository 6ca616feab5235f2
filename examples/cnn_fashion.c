/* A small CNN on Fashion-MNIST with the model kit: two conv + batchnorm + ReLU + max-pool
 * blocks, dropout, a linear classifier; Adam; a seeded shuffling loader; a progress bar; the
 * weights checkpointed (safetensors) after each epoch and the metrics appended to a CSV file.
 *
 *   cnn_fashion [--epochs N] [--limit N] [--batch B] [--lr LR] [--threads T] [--out DIR]
 *
 * Training and evaluation programs come from one graph: dropout and batch statistics in the
 * first, running statistics and no dropout in the second; they share every parameter. */
#include "jitgrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct options {
    int epochs, limit, batch, threads;
    double lr;
    const char *data, *out;
} options;

static int parse(int argc, char **argv, options *o)
{
    *o = (options){ .epochs = 1, .limit = 12800, .batch = 128, .lr = 2e-3,
                    .data = "/usr/share/datasets/fashion-mnist", .out = "." };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(a, "--limit")) o->limit = atoi(v);
        else if (!strcmp(a, "--batch")) o->batch = atoi(v);
        else if (!strcmp(a, "--lr")) o->lr = atof(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else {
            fprintf(stderr, "cnn_fashion: unknown option %s\n", a);
            return 1;
        }
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "cnn_fashion: %s needs a value\n", argv[argc - 1]);
        return 1;
    }
    return o->epochs < 1 || o->batch < 1 || !(o->lr > 0);
}

/* conv 3x3 (padding 1) -> batchnorm -> relu -> max-pool 2 */
static jg_node *block(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    char w_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    jg_node *w = jg_param_find(g, w_name);
    if (!w)
        w = jg_param(g, w_name, jg_shape(out, in, 3, 3), jg_he_normal());
    jg_node *c = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    jg_node *h = jg_relu(jg_batchnorm(name, c, 0.1, 1e-5));
    return jg_max_pool2d(h, 2, 2, 2, 2, 0, 0);
}

static jg_node *cnn(jg_graph *g, jg_node *images /* [B, 784] */, int batch)
{
    jg_node *x = jg_reshape(images, jg_shape(batch, 1, 28, 28));
    jg_node *h = block(g, "b1", x, 1, 16);  /* [B,16,14,14] */
    h = block(g, "b2", h, 16, 32);          /* [B,32,7,7] */
    h = jg_dropout(jg_reshape(h, jg_shape(batch, 32 * 7 * 7)), 0.25);
    jg_node *w = jg_param_find(g, "fc.w"), *b = jg_param_find(g, "fc.b");
    if (!w) {
        w = jg_param(g, "fc.w", jg_shape(32 * 7 * 7, 10), jg_xavier_uniform());
        b = jg_param(g, "fc.b", jg_shape(10), jg_zeros());
    }
    return jg_add(jg_matmul(h, w), b);
}

static int load(const char *dir, const char *name, jg_dtype t, jg_array *a)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (jg_idx_read(path, t, a, err, sizeof err) != JG_OK) {
        fprintf(stderr, "cnn_fashion: %s\n", err);
        return 1;
    }
    return 0;
}

static double evaluate(jg_program *eval, jg_dataset *test, int batch)
{
    jg_loader *ld = jg_loader_new(test, batch, &(jg_loader_opts){ .drop_last = true });
    float *x = malloc((size_t)batch * 784 * sizeof *x), logits[1280];
    int32_t *y = malloc((size_t)batch * sizeof *y);
    int n, correct = 0, seen = 0;
    while (ld && x && y && batch <= 128 && jg_loader_next(ld, x, y, &n)) {
        if (jg_program_set(eval, "x_eval", x, (size_t)batch * 784 * sizeof *x) ||
            jg_program_run(eval) || jg_program_get(eval, 0, logits, (size_t)batch * 10 * 4)) {
            fprintf(stderr, "cnn_fashion: %s\n", jg_errmsg(eval));
            break;
        }
        for (int i = 0; i < n; i++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                best = logits[i * 10 + c] > logits[i * 10 + best] ? c : best;
            correct += best == y[i];
        }
        seen += n;
    }
    jg_loader_free(ld);
    free(x);
    free(y);
    return seen ? (double)correct / seen : 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse(argc, argv, &o))
        return 2;
    jg_array xtr, ytr, xte, yte;
    if (load(o.data, "train-images-idx3-ubyte.gz", JG_F32, &xtr) ||
        load(o.data, "train-labels-idx1-ubyte.gz", JG_I32, &ytr) ||
        load(o.data, "t10k-images-idx3-ubyte.gz", JG_F32, &xte) ||
        load(o.data, "t10k-labels-idx1-ubyte.gz", JG_I32, &yte))
        return 1;
    char err[512];
    jg_dataset *all, *train_set, *test_set;
    if (jg_dataset_new(&xtr, &ytr, &all, err, sizeof err) ||
        jg_dataset_new(&xte, &yte, &test_set, err, sizeof err)) {
        fprintf(stderr, "cnn_fashion: %s\n", err);
        return 1;
    }
    int64_t n_train = o.limit > 0 && o.limit < jg_dataset_size(all) ? o.limit
                                                                    : jg_dataset_size(all);
    train_set = jg_dataset_range(all, 0, n_train);

    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 7);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(o.batch, 784));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(o.batch));
    jg_node *loss = jg_cross_entropy(cnn(g, x, o.batch), y);
    jg_node *x_eval = jg_input(g, "x_eval", JG_F32, jg_shape(o.batch, 784));
    jg_node *logits = cnn(g, x_eval, o.batch);
    jg_program *train = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(o.lr), .compile = { .num_threads = o.threads } });
    jg_program *eval = jg_compile(g, &logits, 1, &(jg_opts){ .num_threads = o.threads });
    if (!train || !eval || !train_set) {
        fprintf(stderr, "cnn_fashion: %s\n", jg_errmsg(g));
        return 1;
    }
    jg_program_stats st;
    jg_program_stats_get(train, &st);
    printf("CNN (2 conv+bn+pool blocks, dropout), Adam lr %g, batch %d, %lld training images; "
           "training step: %d kernels, compiled in %.0f ms\n", o.lr, o.batch,
           (long long)n_train, st.kernels, st.total_ms);

    char csv_path[1024], ckpt_path[1024];
    snprintf(csv_path, sizeof csv_path, "%s/cnn_fashion.csv", o.out);
    snprintf(ckpt_path, sizeof ckpt_path, "%s/cnn_fashion.safetensors", o.out);
    const char *cols[3] = { "epoch", "loss", "test_accuracy" };
    jg_csv *csv = jg_csv_open(csv_path, cols, 3);
    jg_loader *ld = jg_loader_new(train_set, o.batch, &(jg_loader_opts){
        .shuffle = true, .drop_last = true, .seed = 1 });
    float *xb = malloc((size_t)o.batch * 784 * sizeof *xb);
    int32_t *yb = malloc((size_t)o.batch * sizeof *yb);
    int status = !ld || !xb || !yb;
    for (int epoch = 1; epoch <= o.epochs && !status; epoch++) {
        jg_progress *bar = jg_progress_new("epoch", n_train / o.batch, stderr);
        double sum = 0;
        int n, steps = 0;
        while (jg_loader_next(ld, xb, yb, &n)) {
            float l;
            if (jg_program_set(train, "x", xb, (size_t)o.batch * 784 * sizeof *xb) ||
                jg_program_set(train, "y", yb, (size_t)o.batch * sizeof *yb) ||
                jg_program_run(train) || jg_program_get(train, 0, &l, sizeof l)) {
                fprintf(stderr, "cnn_fashion: %s\n", jg_errmsg(train));
                status = 1;
                break;
            }
            sum += l;
            char extra[32];
            snprintf(extra, sizeof extra, "loss %.4f", sum / ++steps);
            jg_progress_update(bar, steps, extra);
        }
        jg_progress_done(bar);
        if (status)
            break;
        double acc = evaluate(eval, test_set, o.batch);
        printf("epoch %d  loss %.4f\ntest accuracy %.4f\n", epoch, sum / steps, acc);
        double row[3] = { epoch, sum / steps, acc };
        if (csv)
            jg_csv_row(csv, row);
        if (jg_checkpoint_save(g, ckpt_path) != JG_OK)
            fprintf(stderr, "cnn_fashion: %s\n", jg_errmsg(g));
    }
    printf("metrics: %s, weights: %s\n", csv_path, ckpt_path);
    jg_csv_close(csv);
    jg_loader_free(ld);
    free(xb);
    free(yb);
    jg_program_free(train);
    jg_program_free(eval);
    jg_graph_free(g);
    jg_dataset_free(train_set);
    jg_dataset_free(test_set);
    jg_dataset_free(all);
    jg_array_free(&xtr);
    jg_array_free(&ytr);
    jg_array_free(&xte);
    jg_array_free(&yte);
    return status;
}
