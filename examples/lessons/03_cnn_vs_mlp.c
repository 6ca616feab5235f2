/* Lesson 3: on images a convolutional net beats a dense one. A convolution applies one small
 * filter at every position: far fewer parameters than a dense layer over all pixels, the same
 * feature detected wherever it appears (with pooling, small shifts of the input barely change
 * the output), filters that can be looked at, and layers that build larger patterns out of
 * smaller ones. A dense net learns each pixel position on its own: shift a picture by a
 * pixel or two and it sees different inputs.
 *
 * Experiment: on Fashion-MNIST, a CNN (conv 5x5 1->16, relu, max-pool 2; conv 3x3 16->32,
 * relu, max-pool 2; dense 1568->10) and an MLP (784-256-128-10, relu), trained alike (Adam
 * 1e-3, batch 128). Parameter counts; test accuracy on the test images as they are and
 * shifted by k = 1, 2, 3 pixels (each image in one of the 8 directions (dy, dx) in
 * {-k, 0, k}^2, chosen per image; zeros shifted in). The first layer's 16 filters go to
 * 03_cnn_filters.png (each scaled up 8x) and its 16 feature maps of one test image to
 * 03_cnn_feature_maps.png (the image first).
 * Criterion: HOLDS when the CNN has at most a fifth of the MLP's parameters, is at least as
 * accurate unshifted (within 1 point: "similar accuracy"), and loses less accuracy than the
 * MLP at every shift k = 1, 2, 3. */
#include "lesson.h"

#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, BATCH = 128, UP = 8 };

typedef struct net {
    bool cnn;
    jg_node *conv1; /* when capturing: the first layer's activations */
    bool capture;
} net;

static jg_node *conv(jg_graph *g, const char *name, jg_node *x, int in, int out, int k)
{
    char w_name[64], b_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.b", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param(g, w_name, jg_shape(out, in, k, k), jg_he_normal());
        b = jg_param(g, b_name, jg_shape(out), jg_zeros());
    }
    return jg_relu(jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = k / 2, .pad_w = k / 2 }));
}

static jg_node *model(jg_graph *g, jg_node *images, int batch, void *arg)
{
    net *n = arg;
    if (!n->cnn) {
        jg_node *h = jg_relu(lesson_linear(g, "fc1", images, PIXELS, 256, jg_he_normal()));
        h = jg_relu(lesson_linear(g, "fc2", h, 256, 128, jg_he_normal()));
        return lesson_linear(g, "fc3", h, 128, 10, jg_xavier_uniform());
    }
    jg_node *x = jg_reshape(images, jg_shape(batch, 1, 28, 28));
    jg_node *h = conv(g, "conv1", x, 1, 16, 5);
    if (n->capture)
        n->conv1 = h;
    h = jg_max_pool2d(h, 2, 2, 2, 2, 0, 0);                       /* [B, 16, 14, 14] */
    h = jg_max_pool2d(conv(g, "conv2", h, 16, 32, 3), 2, 2, 2, 2, 0, 0); /* [B, 32, 7, 7] */
    h = jg_reshape(h, jg_shape(batch, 32 * 7 * 7));
    return lesson_linear(g, "fc", h, 32 * 7 * 7, 10, jg_xavier_uniform());
}

static int64_t param_count(jg_graph *g)
{
    int64_t n = 0;
    for (int i = 0; i < jg_param_count(g); i++) {
        const char *name = jg_node_name(jg_param_at(g, i));
        if (strncmp(name, "opt.", 4)) /* optimiser state is not the model's */
            n += jg_shape_numel(jg_node_shape(jg_param_at(g, i)));
    }
    return n;
}

/* Each of n images moved by k pixels in one of 8 directions, chosen per image. */
static void shift_images(const float *src, float *dst, int64_t n, int k)
{
    static const int dirs[8][2] = { { -1, -1 }, { -1, 0 }, { -1, 1 }, { 0, -1 },
                                    { 0, 1 },   { 1, -1 }, { 1, 0 },  { 1, 1 } };
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = (uint64_t)i * 0x9e3779b97f4a7c15u + (uint64_t)k * 0xbf58476d1ce4e5b9u;
        h ^= h >> 31;
        int dy = dirs[h % 8][0] * k, dx = dirs[h % 8][1] * k;
        const float *s = src + i * PIXELS;
        float *d = dst + i * PIXELS;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int sy = y - dy, sx = x - dx;
                d[y * 28 + x] = sy >= 0 && sy < 28 && sx >= 0 && sx < 28 ? s[sy * 28 + sx] : 0;
            }
    }
}

/* Filters [16, 1, 5, 5] scaled up UP times (nearest) into out [16, 5 UP, 5 UP]. */
static void upscale(const float *w, int n, int k, float *out)
{
    int s = k * UP;
    for (int f = 0; f < n; f++)
        for (int y = 0; y < s; y++)
            for (int x = 0; x < s; x++)
                out[(size_t)f * s * s + y * s + x] = w[f * k * k + (y / UP) * k + x / UP];
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 3, "cnn-vs-mlp"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 30000, c.quick ? 1000 : 10000, &d))
        return 1;
    int epochs = c.quick ? 1 : 4;
    net nets[2] = { { .cnn = true }, { .cnn = false } };
    lesson_fit fits[2];
    jg_graph *g[2];
    jg_program *ev[2];
    for (int i = 0; i < 2; i++) {
        fits[i] = (lesson_fit){ .model = model, .arg = &nets[i], .optimizer = jg_adam(1e-3),
                                .batch = BATCH, .epochs = epochs, .shuffle = true, .seed = 1 };
        if (lesson_train(&c, &fits[i], d.train, d.test, &g[i], &ev[i]))
            return 1;
    }

    /* Accuracy on shifted test images. */
    int64_t n_test = jg_dataset_size(d.test);
    jg_array shifted = { .dtype = JG_F32, .shape = jg_shape(n_test, 28, 28) };
    jg_array labels = { .dtype = JG_I32, .shape = jg_shape(n_test), .data = d.yte.data };
    shifted.data = malloc((size_t)n_test * PIXELS * sizeof(float));
    if (!shifted.data)
        return lesson_fail(&c, "out of memory");
    double acc[2][4];
    char err[256];
    for (int k = 0; k <= 3; k++) {
        shift_images(d.xte.data, shifted.data, n_test, k);
        jg_dataset *ds;
        if (jg_dataset_new(&shifted, &labels, &ds, err, sizeof err))
            return lesson_fail(&c, "%s", err);
        for (int i = 0; i < 2; i++)
            acc[i][k] = lesson_accuracy(ev[i], ds, BATCH);
        jg_dataset_free(ds);
    }
    free(shifted.data);

    /* The first layer's filters, and its feature maps of the first test image. */
    char path[1024];
    float w1[16 * 25], big[16 * 40 * 40], fm[17 * PIXELS];
    if (jg_param_get(g[0], "conv1.w", w1, sizeof w1) == JG_OK) {
        upscale(w1, 16, 5, big);
        lesson_path(&c, "03_cnn_filters.png", path, sizeof path);
        if (jg_png_write_grid(path, big, 16, 40, 40, 8, 2) == JG_OK)
            printf("wrote %s\n", path);
    }
    nets[0].capture = true;
    jg_node *x1 = jg_input(g[0], "x_one", JG_F32, jg_shape(1, PIXELS));
    model(g[0], x1, 1, &nets[0]);
    jg_program *fp = jg_compile(g[0], &nets[0].conv1, 1, &(jg_opts){ .num_threads = c.threads });
    jg_dataset_get(d.test, 0, fm, NULL);
    if (fp && jg_program_set(fp, "x_one", fm, PIXELS * sizeof(float)) == JG_OK &&
        jg_program_run(fp) == JG_OK && jg_program_get(fp, 0, fm + PIXELS, 16 * PIXELS * 4) == JG_OK) {
        lesson_path(&c, "03_cnn_feature_maps.png", path, sizeof path);
        if (jg_png_write_grid(path, fm, 17, 28, 28, 17, 2) == JG_OK)
            printf("wrote %s\n", path);
    }
    jg_program_free(fp);

    int64_t params[2] = { param_count(g[0]), param_count(g[1]) };
    const char *cols[] = { "model", "params", "train acc", "test acc", "shift 1", "shift 2",
                           "shift 3" };
    lesson_table(cols, 7);
    for (int i = 0; i < 2; i++)
        lesson_row("%-14s %-14lld %-14.4f %-14.4f %-14.4f %-14.4f %-14.4f", i ? "mlp" : "cnn",
                   (long long)params[i], fits[i].train_accuracy, acc[i][0], acc[i][1], acc[i][2],
                   acc[i][3]);
    printf("training seconds: cnn %.1f, mlp %.1f\n", fits[0].seconds, fits[1].seconds);
    bool less_drop = true;
    for (int k = 1; k <= 3; k++)
        less_drop = less_drop && acc[0][0] - acc[0][k] < acc[1][0] - acc[1][k];
    bool holds = params[0] * 5 <= params[1] && acc[0][0] >= acc[1][0] - 0.01 && less_drop;
    for (int i = 0; i < 2; i++) {
        jg_program_free(ev[i]);
        jg_graph_free(g[i]);
    }
    lesson_data_free(&d);
    return lesson_verdict(&c, holds, "params cnn %lld vs mlp %lld; test acc %.3f vs %.3f; "
                          "drop at shift 1/2/3: cnn %.3f/%.3f/%.3f, mlp %.3f/%.3f/%.3f",
                          (long long)params[0], (long long)params[1], acc[0][0], acc[1][0],
                          acc[0][0] - acc[0][1], acc[0][0] - acc[0][2], acc[0][0] - acc[0][3],
                          acc[1][0] - acc[1][1], acc[1][0] - acc[1][2], acc[1][0] - acc[1][3]);
}
