/* Lesson 4: a CNN can be looked into. Two ways, both needing nothing but the network:
 * occlusion (cover a patch of the input and see how much the right class's probability
 * drops: the map of drops shows which parts of the image the decision rests on) and
 * activation maximisation (start from a blank image and climb the gradient of one class's
 * score with respect to the input pixels: the image the network finds most "trouser-like").
 *
 * Experiment: a small CNN (conv 3x3 1->16, relu, pool; conv 3x3 16->32, relu, pool; dense
 * 1568->10) trained by Adam on Fashion-MNIST. Occlusion: for the first test image of each
 * class, a 6x6 patch of zeros (the background's value) is moved over the image in steps of
 * 2; each pixel's heat is the mean drop of the true class's probability over the patches
 * covering it. 04_occlusion_images.png holds the 10 images, 04_occlusion_heatmaps.png their
 * maps side by side, each scaled to its own largest |value| (red: covering it lowers the
 * probability; blue: raises it).
 * Activation maximisation: 10 images, one per class, start at 0.2 plus a little noise; each
 * step moves the image along d(class logit)/d(image) (the gradient with respect to the
 * input, by jg_grad), scaled to an L2 length of 0.1 (0.0036 per pixel on average), and
 * clamps it to [0, 1]. 04_activation_max.png holds the results (no regulariser: they look
 * like noise with the class's outline, as unregularised maximisations do); the class logit
 * is recorded at every step. The step length is part of the claim: gradient ascent rises
 * monotonically for small enough steps. With the trained full-mode net, steps of L2 length
 * 0.3, or the common sign step of 0.01 per pixel (L2 0.28), overshoot: the logit falls at
 * some steps (110 and 235 falls in 200 steps x 10 classes) though it still ends 20-40
 * higher.
 * Criterion: HOLDS when (1) covering the object (pixels > 0.1) costs more probability, on
 * average, than covering the background, (2) every class's logit rises at every step
 * (never falls by more than 1e-5 of its magnitude), ending above where it started, and
 * (3) the network classifies at least 9 of the 10 optimised images as their class. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, PATCH = 6, STRIDE = 2, POS = (28 - PATCH) / STRIDE + 1, N_OCC = POS * POS,
       SCALE = 6 };
static const double STEP = 0.1; /* activation maximisation: L2 length of one step */

static jg_node *cnn(jg_graph *g, jg_node *images, int batch, void *arg)
{
    (void)arg;
    jg_node *x = jg_reshape(images, jg_shape(batch, 1, 28, 28));
    jg_node *h = lesson_conv(g, "conv1", x, 1, 16);
    h = lesson_conv(g, "conv2", h, 16, 32); /* [B, 32, 7, 7] */
    h = jg_reshape(h, jg_shape(batch, 32 * 7 * 7));
    return lesson_linear(g, "fc", h, 32 * 7 * 7, 10, jg_xavier_uniform());
}

/* Occlusion map of one image of class y into heat[784]: batch holds N_OCC occluded copies
 * and the original last. *p_orig gets the original's probability of y. */
static int occlusion(jg_program *p, const float *img, int y, float *batch, float *heat,
                     double *p_orig)
{
    float probs[(N_OCC + 1) * 10], count[PIXELS] = { 0 };
    for (int i = 0; i <= N_OCC; i++) {
        float *b = batch + (size_t)i * PIXELS;
        memcpy(b, img, PIXELS * sizeof *b);
        int oy = (i / POS) * STRIDE, ox = (i % POS) * STRIDE;
        for (int y0 = oy; y0 < oy + PATCH && i < N_OCC; y0++)
            for (int x0 = ox; x0 < ox + PATCH; x0++)
                b[y0 * 28 + x0] = 0;
    }
    if (jg_program_set(p, "x_occ", batch, sizeof(float) * (N_OCC + 1) * PIXELS) ||
        jg_program_run(p) || jg_program_get(p, 0, probs, sizeof probs))
        return 1;
    double ref = probs[N_OCC * 10 + y];
    memset(heat, 0, PIXELS * sizeof *heat);
    for (int i = 0; i < N_OCC; i++) {
        int oy = (i / POS) * STRIDE, ox = (i % POS) * STRIDE;
        for (int y0 = oy; y0 < oy + PATCH; y0++)
            for (int x0 = ox; x0 < ox + PATCH; x0++) {
                heat[y0 * 28 + x0] += (float)(ref - probs[i * 10 + y]);
                count[y0 * 28 + x0] += 1;
            }
    }
    for (int i = 0; i < PIXELS; i++)
        heat[i] = count[i] > 0 ? heat[i] / count[i] : 0;
    *p_orig = ref;
    return 0;
}

/* n maps of 28x28 side by side, each scaled up SCALE times, one zero column between. */
static void side_by_side(const float *maps, int n, float *out, int *w, int *h)
{
    *h = 28 * SCALE;
    *w = n * (28 * SCALE + 1) - 1;
    for (int y = 0; y < *h; y++)
        for (int x = 0; x < *w; x++) {
            int k = x / (28 * SCALE + 1), xx = x % (28 * SCALE + 1);
            out[y * *w + x] = xx == 28 * SCALE ? 0
                              : maps[k * PIXELS + (y / SCALE) * 28 + xx / SCALE];
        }
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 4, "visualise-cnn"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 20000, c.quick ? 1000 : 10000, &d))
        return 1;
    lesson_fit fit = { .model = cnn, .optimizer = jg_adam(1e-3), .batch = 128,
                       .epochs = c.quick ? 1 : 3, .shuffle = true, .seed = 1 };
    jg_graph *g;
    jg_program *ev;
    if (lesson_train(&c, &fit, d.train, d.test, &g, &ev))
        return 1;
    jg_program_free(ev);

    /* The occlusion program and the activation-maximisation program, on the trained graph. */
    jg_node *x_occ = jg_input(g, "x_occ", JG_F32, jg_shape(N_OCC + 1, PIXELS));
    jg_node *probs = jg_softmax(cnn(g, x_occ, N_OCC + 1, NULL), 1);
    jg_node *x_am = jg_input(g, "x_am", JG_F32, jg_shape(10, PIXELS));
    jg_node *logits = cnn(g, x_am, 10, NULL);
    float eye[100] = { 0 };
    for (int k = 0; k < 10; k++)
        eye[k * 11] = 1;
    /* Image k's logit of class k, summed: image k's gradient is that of its own class. */
    jg_node *score = jg_sum(jg_mul(logits, jg_const(g, JG_F32, jg_shape(10, 10), eye)),
                            JG_ALL_AXES, false);
    jg_node *dx;
    jg_grad(g, score, &x_am, 1, &dx);
    jg_program *occ = jg_compile(g, &probs, 1, &(jg_opts){ .num_threads = c.threads });
    jg_program *am = jg_compile(g, (jg_node *[]){ logits, dx }, 2,
                                &(jg_opts){ .num_threads = c.threads });
    float *batch = malloc(sizeof(float) * (N_OCC + 1) * PIXELS);
    float *wide = malloc(sizeof(float) * 10 * (28 * SCALE + 1) * 28 * SCALE);
    if (!occ || !am || !batch || !wide)
        return lesson_fail(&c, "%s", jg_errmsg(g));

    /* Occlusion: the first test image of each class. */
    float images[10 * PIXELS], heat[10 * PIXELS];
    double p_orig[10], on_object = 0, on_background = 0;
    int64_t n_object = 0, n_background = 0;
    int found = 0;
    for (int64_t i = 0; i < jg_dataset_size(d.test) && found != 0x3ff; i++) {
        float img[PIXELS];
        int32_t y;
        jg_dataset_get(d.test, i, img, &y);
        if (found >> y & 1)
            continue;
        found |= 1 << y;
        memcpy(images + (size_t)y * PIXELS, img, sizeof img);
        if (occlusion(occ, img, y, batch, heat + (size_t)y * PIXELS, &p_orig[y]))
            return lesson_fail(&c, "%s", jg_errmsg(occ));
        for (int k = 0; k < PIXELS; k++) {
            if (img[k] > 0.1f) {
                on_object += heat[y * PIXELS + k];
                n_object++;
            } else {
                on_background += heat[y * PIXELS + k];
                n_background++;
            }
        }
    }
    if (found != 0x3ff)
        return lesson_fail(&c, "the test subset lacks a class");
    on_object /= (double)(n_object ? n_object : 1);
    on_background /= (double)(n_background ? n_background : 1);
    char path[1024];
    int w, h;
    lesson_path(&c, "04_occlusion_images.png", path, sizeof path);
    side_by_side(images, 10, wide, &w, &h);
    if (jg_png_write_gray(path, wide, w, h, 0, 1) == JG_OK)
        printf("wrote %s\n", path);
    lesson_path(&c, "04_occlusion_heatmaps.png", path, sizeof path);
    float normed[10 * PIXELS];
    for (int k = 0; k < 10; k++) {
        float mx = 1e-12f;
        for (int i = 0; i < PIXELS; i++)
            mx = fmaxf(mx, fabsf(heat[k * PIXELS + i]));
        for (int i = 0; i < PIXELS; i++)
            normed[k * PIXELS + i] = heat[k * PIXELS + i] / mx;
    }
    side_by_side(normed, 10, wide, &w, &h);
    if (jg_png_write_heatmap(path, wide, w, h) == JG_OK)
        printf("wrote %s\n", path);

    /* Activation maximisation: gradient ascent on each class's logit, clamped. */
    int steps = c.quick ? 30 : 200;
    float x[10 * PIXELS], out[100], grad[10 * PIXELS];
    double first[10] = { 0 }, prev[10] = { 0 }, last[10] = { 0 };
    int falls[10] = { 0 };
    uint64_t r = 12345;
    for (int i = 0; i < 10 * PIXELS; i++) {
        r = r * 6364136223846793005u + 1442695040888963407u;
        x[i] = 0.2f + 0.05f * (float)((double)(r >> 11) / 9007199254740992.0 - 0.5);
    }
    for (int s = 0; s <= steps; s++) {
        if (jg_program_set(am, "x_am", x, sizeof x) || jg_program_run(am) ||
            jg_program_get(am, 0, out, sizeof out) || jg_program_get(am, 1, grad, sizeof grad))
            return lesson_fail(&c, "%s", jg_errmsg(am));
        for (int k = 0; k < 10; k++) {
            double v = out[k * 11];
            if (s == 0)
                first[k] = v;
            else if (v < prev[k] - 1e-5 * fmax(1, fabs(prev[k])))
                falls[k]++;
            prev[k] = last[k] = v;
        }
        for (int k = 0; k < 10 && s < steps; k++) {
            double norm = 0;
            for (int i = k * PIXELS; i < (k + 1) * PIXELS; i++)
                norm += (double)grad[i] * grad[i];
            float scale = (float)(STEP / (sqrt(norm) + 1e-12));
            for (int i = k * PIXELS; i < (k + 1) * PIXELS; i++)
                x[i] = fminf(1, fmaxf(0, x[i] + scale * grad[i]));
        }
    }
    int recognised = 0, total_falls = 0;
    bool all_rose = true;
    for (int k = 0; k < 10; k++) {
        int best = 0;
        for (int j = 1; j < 10; j++)
            best = out[k * 10 + j] > out[k * 10 + best] ? j : best;
        recognised += best == k;
        total_falls += falls[k];
        all_rose = all_rose && last[k] > first[k];
    }
    lesson_path(&c, "04_activation_max.png", path, sizeof path);
    side_by_side(x, 10, wide, &w, &h);
    if (jg_png_write_gray(path, wide, w, h, 0, 1) == JG_OK)
        printf("wrote %s\n", path);

    printf("CNN test accuracy %.4f after %d epochs\n", fit.test_accuracy[fit.epochs_run - 1],
           fit.epochs_run);
    const char *cols[] = { "class", "p(true)", "occl. max", "logit start", "logit end",
                           "falls", "argmax" };
    lesson_table(cols, 7);
    for (int k = 0; k < 10; k++) {
        float mx = 0;
        for (int i = 0; i < PIXELS; i++)
            mx = fmaxf(mx, heat[k * PIXELS + i]);
        int best = 0;
        for (int j = 1; j < 10; j++)
            best = out[k * 10 + j] > out[k * 10 + best] ? j : best;
        lesson_row("%-14s %-14.4f %-14.4f %-14.3f %-14.3f %-14d %s", LESSON_CLASSES[k],
                   p_orig[k], mx, first[k], last[k], falls[k], LESSON_CLASSES[best]);
    }
    printf("mean probability drop when covering: object %.4f, background %.4f\n", on_object,
           on_background);
    free(batch), free(wide);
    jg_program_free(occ);
    jg_program_free(am);
    jg_graph_free(g);
    lesson_data_free(&d);
    bool holds = on_object > on_background && total_falls == 0 && all_rose && recognised >= 9;
    return lesson_verdict(&c, holds, "occlusion drop object %.4f vs background %.4f; class "
                          "logits over %d ascent steps: %d falls, all rose: %s, %d/10 images "
                          "classified as their class", on_object, on_background, steps,
                          total_falls, all_rose ? "yes" : "no", recognised);
}
