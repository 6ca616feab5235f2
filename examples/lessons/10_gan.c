/* Lesson 10: a GAN is a game between two networks. The generator G turns random noise into
 * images; the discriminator D tells real images from G's. D is trained to be right, G to make
 * D wrong, each by gradients that flow through the other network while it is held fixed. At
 * the start D wins easily (G's images are noise); as G learns the data's shapes D's task gets
 * harder and its accuracy falls back toward 0.5, where it could no longer tell them apart.
 *
 * Experiment: Fashion-MNIST, MLPs: G 64-256-784 (leaky ReLU, sigmoid output), D 784-256-1
 * (leaky ReLU, a logit). One graph holds both; two training programs are compiled from it
 * with parameter groups: D's step (loss: BCE of D on real images against 1 and on G(z)
 * against 0; G's parameters frozen in this program) and G's step (loss: BCE of D(G(z)) against
 * 1, the non-saturating loss; D's parameters frozen), each with its own Adam state
 * (lr 2e-4, beta1 0.5), alternating one step each. D's accuracy (real images called real, G's
 * called fake, at threshold 0.5) comes out of D's step; 64 samples from a fixed noise batch
 * go to 10_gan_epoch_NN.png after every epoch.
 * Criterion: HOLDS when D's accuracy, after rising early on (its peak over 50-step windows at
 * least 0.9), falls back toward 0.5: the last epoch's mean accuracy is at least 0.1 below the
 * peak, and the samples are neither blank nor one image (their mean intensity within 50% of
 * the real images', and the pixel-wise spread across the 64 samples at least a third of the
 * real images'). */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, Z = 64, HIDDEN = 256, BATCH = 64, SAMPLES = 64, WINDOW = 50 };

static jg_node *linear(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    char w_name[32], b_name[32];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.b", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param(g, w_name, jg_shape(in, out), jg_xavier_uniform());
        b = jg_param(g, b_name, jg_shape(out), jg_zeros());
    }
    return jg_add(jg_matmul(x, w), b);
}

static jg_node *generator(jg_graph *g, jg_node *z)
{
    jg_node *h = jg_leaky_relu(linear(g, "G.l1", z, Z, HIDDEN), 0.2);
    return jg_sigmoid(linear(g, "G.l2", h, HIDDEN, PIXELS));
}

static jg_node *discriminator(jg_graph *g, jg_node *x)
{
    jg_node *h = jg_leaky_relu(linear(g, "D.l1", x, PIXELS, HIDDEN), 0.2);
    return linear(g, "D.l2", h, HIDDEN, 1);
}

/* Box-Muller normals from a xorshift state. */
static void normals(uint64_t *s, float *out, int n)
{
    for (int i = 0; i < n; i += 2) {
        double u[2];
        for (int k = 0; k < 2; k++) {
            *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
            u[k] = ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
        }
        double r = sqrt(-2 * log(u[0]));
        out[i] = (float)(r * cos(6.283185307179586 * u[1]));
        if (i + 1 < n)
            out[i + 1] = (float)(r * sin(6.283185307179586 * u[1]));
    }
}

/* Mean intensity, and the mean over pixels of the spread (standard deviation) across n images. */
static void image_stats(const float *x, int n, double *mean, double *spread)
{
    double m = 0, s = 0;
    for (int p = 0; p < PIXELS; p++) {
        double a = 0, a2 = 0;
        for (int i = 0; i < n; i++)
            a += x[(size_t)i * PIXELS + p], a2 += (double)x[(size_t)i * PIXELS + p] * x[(size_t)i * PIXELS + p];
        a /= n, a2 /= n;
        m += a;
        s += sqrt(fmax(a2 - a * a, 0));
    }
    *mean = m / PIXELS, *spread = s / PIXELS;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 10, "gan"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 3200 : 0, 64, &d))
        return 1;
    int epochs = c.quick ? 2 : 8;

    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 10);
    jg_node *real = jg_input(g, "real", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *z = jg_input(g, "z", JG_F32, jg_shape(BATCH, Z));
    jg_node *z_eval = jg_input(g, "z_eval", JG_F32, jg_shape(SAMPLES, Z));
    jg_node *ones = jg_fill(g, JG_F32, jg_shape(BATCH, 1), 1.0);
    jg_node *zeros = jg_fill(g, JG_F32, jg_shape(BATCH, 1), 0.0);
    jg_node *d_real = discriminator(g, real);
    jg_node *d_fake = discriminator(g, generator(g, z));
    jg_node *loss_d = jg_add(jg_bce_with_logits(d_real, ones), jg_bce_with_logits(d_fake, zeros));
    jg_node *loss_g = jg_bce_with_logits(d_fake, ones);
    jg_node *zero = jg_scalar(g, JG_F32, 0.0);
    jg_node *acc[2] = { jg_mean(jg_gt(d_real, zero), JG_ALL_AXES, false),
                        jg_mean(jg_lt(d_fake, zero), JG_ALL_AXES, false) };
    jg_node *samples = generator(g, z_eval);
    jg_optimizer adam = { .kind = JG_OPT_ADAM, .lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999 };
    jg_program *step_d = jg_compile_train(g, loss_d, &(jg_train_opts){
        .optimizer = adam, .name = "optD", .groups = &(jg_param_group){ .prefix = "G.",
                                                                        .frozen = true },
        .n_groups = 1, .extra_outputs = acc, .n_extra_outputs = 2,
        .compile = { .num_threads = c.threads } });
    jg_program *step_g = jg_compile_train(g, loss_g, &(jg_train_opts){
        .optimizer = adam, .name = "optG", .groups = &(jg_param_group){ .prefix = "D.",
                                                                        .frozen = true },
        .n_groups = 1, .compile = { .num_threads = c.threads } });
    jg_program *sample = jg_compile(g, &samples, 1, &(jg_opts){ .num_threads = c.threads });
    jg_loader *ld = jg_loader_new(d.train, BATCH, &(jg_loader_opts){ .shuffle = true,
                                                                    .drop_last = true, .seed = 10 });
    int64_t per_epoch = jg_loader_batches(ld), total = per_epoch * epochs;
    float *xb = malloc(sizeof(float) * BATCH * PIXELS), zb[BATCH * Z], ze[SAMPLES * Z];
    float *img = malloc(sizeof(float) * SAMPLES * PIXELS);
    double *accs = malloc(sizeof(double) * (size_t)(total > 0 ? total : 1));
    double ep_acc[64] = { 0 }, ep_ld[64] = { 0 }, ep_lg[64] = { 0 };
    int32_t yb[BATCH];
    uint64_t rng = 0x243f6a8885a308d3ull;
    int status = 0, n;
    char path[1024];
    if (!step_d || !step_g || !sample || !ld || !xb || !img || !accs) {
        status = lesson_fail(&c, "%s", !step_d || !step_g || !sample ? jg_errmsg(g) : "setup");
        goto done;
    }
    normals(&rng, ze, SAMPLES * Z);
    jg_program_set(sample, "z_eval", ze, sizeof ze);
    int64_t step = 0;
    for (int e = 0; e < epochs; e++) {
        while (jg_loader_next(ld, xb, yb, &n)) {
            float ld_v, lg_v, ar, af;
            normals(&rng, zb, BATCH * Z);
            if (jg_program_set(step_d, "real", xb, sizeof(float) * BATCH * PIXELS) ||
                jg_program_set(step_d, "z", zb, sizeof zb) || jg_program_run(step_d) ||
                jg_program_get(step_d, 0, &ld_v, sizeof ld_v) ||
                jg_program_get(step_d, 1, &ar, sizeof ar) ||
                jg_program_get(step_d, 2, &af, sizeof af)) {
                status = lesson_fail(&c, "%s", jg_errmsg(step_d));
                goto done;
            }
            normals(&rng, zb, BATCH * Z);
            if (jg_program_set(step_g, "z", zb, sizeof zb) || jg_program_run(step_g) ||
                jg_program_get(step_g, 0, &lg_v, sizeof lg_v)) {
                status = lesson_fail(&c, "%s", jg_errmsg(step_g));
                goto done;
            }
            accs[step++] = 0.5 * ((double)ar + (double)af);
            ep_acc[e] += 0.5 * ((double)ar + (double)af) / (double)per_epoch;
            ep_ld[e] += ld_v / (double)per_epoch, ep_lg[e] += lg_v / (double)per_epoch;
        }
        char file[64];
        snprintf(file, sizeof file, "10_gan_epoch_%02d.png", e + 1);
        if (jg_program_run(sample) ||
            jg_program_get(sample, 0, img, sizeof(float) * SAMPLES * PIXELS)) {
            status = lesson_fail(&c, "%s", jg_errmsg(sample));
            goto done;
        }
        if (jg_png_write_grid(lesson_path(&c, file, path, sizeof path), img, SAMPLES, 28, 28, 8,
                              2) != JG_OK)
            printf("cannot write %s\n", path);
    }
    printf("wrote %s/10_gan_epoch_01.png ... 10_gan_epoch_%02d.png\n", c.out, epochs);
    /* D's accuracy over windows of WINDOW steps: its peak. */
    double peak = 0;
    int64_t peak_at = 0;
    for (int64_t w = 0; w + WINDOW <= step; w += WINDOW) {
        double a = 0;
        for (int64_t i = w; i < w + WINDOW; i++)
            a += accs[i] / WINDOW;
        if (a > peak)
            peak = a, peak_at = w + WINDOW;
    }
    double real_mean, real_spread, fake_mean, fake_spread;
    for (int i = 0; i < SAMPLES; i++)
        jg_dataset_get(d.train, i, img + (size_t)i * PIXELS, NULL);
    image_stats(img, SAMPLES, &real_mean, &real_spread);
    if (jg_program_run(sample) ||
        jg_program_get(sample, 0, img, sizeof(float) * SAMPLES * PIXELS)) {
        status = lesson_fail(&c, "%s", jg_errmsg(sample));
        goto done;
    }
    image_stats(img, SAMPLES, &fake_mean, &fake_spread);
    const char *cols[] = { "epoch", "D accuracy", "D loss", "G loss" };
    lesson_table(cols, 4);
    for (int e = 0; e < epochs; e++)
        lesson_row("%-14d %-14.4f %-14.4f %-14.4f", e + 1, ep_acc[e], ep_ld[e], ep_lg[e]);
    printf("D accuracy peaked at %.4f over steps %lld-%lld (of %lld)\n", peak,
           (long long)(peak_at - WINDOW + 1), (long long)peak_at, (long long)step);
    const char *cols2[] = { "images", "mean", "spread" };
    lesson_table(cols2, 3);
    lesson_row("%-14s %-14.4f %-14.4f", "real", real_mean, real_spread);
    lesson_row("%-14s %-14.4f %-14.4f", "generated", fake_mean, fake_spread);
    double last = ep_acc[epochs - 1];
    bool falls = peak >= 0.9 && last <= peak - 0.1;
    bool images = fabs(fake_mean - real_mean) <= 0.5 * real_mean &&
                  fake_spread >= real_spread / 3;
    status = lesson_verdict(&c, falls && images, "D accuracy peaked at %.3f (step %lld), last "
                            "epoch %.3f; samples: mean %.3f vs real %.3f, spread %.3f vs %.3f",
                            peak, (long long)peak_at, last, fake_mean, real_mean, fake_spread,
                            real_spread);
done:
    jg_loader_free(ld);
    free(xb), free(img), free(accs);
    jg_program_free(step_d), jg_program_free(step_g), jg_program_free(sample);
    jg_graph_free(g);
    lesson_data_free(&d);
    return status;
}
