/* An out-of-tree program using an installed jitgrad: a 2-layer MLP trained on Fashion-MNIST
 * (Debian's dataset-fashion-mnist) with Adam, then its test accuracy. Built by its own
 * Makefile (pkg-config) or CMakeLists.txt (find_package), against the installed files only.
 *
 *     consumer_mlp [--steps N] [--data DIR]      (defaults: 400 steps, /usr/share/datasets/
 *                                                 fashion-mnist) */
#include <jitgrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 128, IN = 784, HIDDEN = 128, CLASSES = 10 };

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "consumer_mlp: %s: %s\n", what, msg);
    return 1;
}

int main(int argc, char **argv)
{
    int steps = 400;
    const char *data = "/usr/share/datasets/fashion-mnist";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--data"))
            data = argv[i + 1];
        else
            return fail("usage", "consumer_mlp [--steps N] [--data DIR]");
    }
    char path[4][512], err[512];
    const char *files[4] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" };
    jg_array a[4];
    for (int i = 0; i < 4; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", data, files[i]);
        if (jg_idx_read(path[i], i % 2 ? JG_I32 : JG_F32, &a[i], err, sizeof err) != JG_OK)
            return fail("data", err);
    }

    /* the model: 784 -> 128 (ReLU) -> 10, cross entropy */
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, IN));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *w1 = jg_param(g, "w1", jg_shape(IN, HIDDEN), jg_he_normal());
    jg_node *b1 = jg_param(g, "b1", jg_shape(HIDDEN), jg_zeros());
    jg_node *w2 = jg_param(g, "w2", jg_shape(HIDDEN, CLASSES), jg_xavier_uniform());
    jg_node *b2 = jg_param(g, "b2", jg_shape(CLASSES), jg_zeros());
    jg_node *logits = jg_add(jg_matmul(jg_relu(jg_add(jg_matmul(x, w1), b1)), w2), b2);
    jg_node *loss = jg_cross_entropy(logits, y);
    jg_node *pred = jg_argmax(logits, 1);
    jg_program *train = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(1e-3) });
    jg_program *eval = train ? jg_compile(g, &pred, 1, NULL) : NULL;
    if (!eval)
        return fail("compile", jg_errmsg(g));

    /* training: batches drawn in order from a shuffled start, wrapping around */
    const float *xs = a[0].data;
    const int32_t *ys = a[1].data;
    int64_t n_train = a[0].shape.dim[0];
    float loss_value = 0;
    for (int s = 0; s < steps; s++) {
        int64_t start = (int64_t)s * BATCH % (n_train - BATCH);
        jg_program_set(train, "x", xs + start * IN, BATCH * IN * sizeof(float));
        jg_program_set(train, "y", ys + start, BATCH * sizeof(int32_t));
        if (jg_program_run(train) != JG_OK)
            return fail("train", jg_errmsg(train));
        jg_program_get(train, 0, &loss_value, sizeof loss_value);
    }

    /* test accuracy over whole batches of the test set */
    const float *xt = a[2].data;
    const int32_t *yt = a[3].data;
    int64_t n_test = a[2].shape.dim[0] / BATCH * BATCH, right = 0;
    int32_t p[BATCH];
    int32_t none[BATCH] = { 0 };
    for (int64_t start = 0; start < n_test; start += BATCH) {
        jg_program_set(eval, "x", xt + start * IN, BATCH * IN * sizeof(float));
        jg_program_set(eval, "y", none, sizeof none);
        if (jg_program_run(eval) != JG_OK || jg_program_get(eval, 0, p, sizeof p) != JG_OK)
            return fail("evaluate", jg_errmsg(eval));
        for (int i = 0; i < BATCH; i++)
            right += p[i] == yt[start + i];
    }
    printf("consumer_mlp: %d steps, last loss %.4f, test accuracy %.4f\n", steps, loss_value,
           (double)right / (double)n_test);
    jg_program_free(eval);
    jg_program_free(train);
    jg_graph_free(g);
    for (int i = 0; i < 4; i++)
        jg_array_free(&a[i]);
    return 0;
}
