/* Lesson 16: full-batch gradient descent does not need shuffling. The full-batch gradient is
 * the mean of the per-sample gradients over the whole training set, and a mean does not
 * depend on the order of its terms: shuffling the data changes only the order in which
 * floating-point sums are taken, so the gradients agree to rounding, and every step of
 * full-batch GD is the same. (Mini-batches are another matter: lesson 17.)
 *
 * Experiment: an MLP 784-128-10 at its initial weights; the gradient of the mean cross
 * entropy over the whole training set (60,000 Fashion-MNIST images in one batch) with
 * respect to every parameter, computed once with the data in file order, once with the same
 * data in a random order, and once more in file order (the engine's reductions are
 * deterministic: the same order gives the same bits). For contrast, the gradient of the
 * first mini-batch of 128 in each order. Then 5 steps of full-batch GD from the same start
 * in each order, and the distance between the final weights.
 * Criterion: HOLDS when the shuffled and unshuffled full-batch gradients agree to float
 * tolerance (|g_a - g_b| / |g_a| <= 1e-5 over all parameters), the rerun in file order gives
 * identical bits, and the two mini-batch gradients differ by more than 10% (so the agreement
 * is the mean's, not the model's insensitivity). */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 128, MINI = 128, GD_STEPS = 5 };

static const char *const PARAMS[4] = { "l1.w", "l1.b", "l2.w", "l2.b" };
static const int64_t SIZES[4] = { PIXELS * HIDDEN, HIDDEN, HIDDEN * 10, 10 };

typedef struct net {
    jg_graph *g;
    jg_program *grad, *step;
    int n;
} net;

/* The gradients of the mean loss over n samples (outputs 0..3), and one GD step. */
static int net_build(const lesson_ctx *c, net *m, int n)
{
    m->n = n;
    m->g = jg_graph_new();
    jg_graph_set_seed(m->g, 16);
    jg_node *x = jg_input(m->g, "x", JG_F32, jg_shape(n, PIXELS));
    jg_node *y = jg_input(m->g, "y", JG_I32, jg_shape(n));
    jg_node *h = jg_relu(lesson_linear(m->g, "l1", x, PIXELS, HIDDEN, jg_he_normal()));
    jg_node *loss = jg_cross_entropy(lesson_linear(m->g, "l2", h, HIDDEN, 10,
                                                   jg_xavier_uniform()), y);
    jg_node *p[4], *d[4];
    for (int i = 0; i < 4; i++)
        p[i] = jg_param_find(m->g, PARAMS[i]);
    jg_grad(m->g, loss, p, 4, d);
    m->grad = jg_compile(m->g, d, 4, &(jg_opts){ .num_threads = c->threads });
    m->step = jg_compile_train(m->g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0), .compile = { .num_threads = c->threads } });
    if (!m->grad || !m->step)
        return lesson_fail(c, "%s", jg_errmsg(m->g));
    return 0;
}

static void net_free(net *m)
{
    jg_program_free(m->grad);
    jg_program_free(m->step);
    jg_graph_free(m->g);
}

/* Gradients (all parameters concatenated, sum of SIZES floats) for the first n samples of
 * the order idx. */
static int gradient(const lesson_ctx *c, net *m, const lesson_data *d, const int64_t *idx,
                    float *out)
{
    float *x = malloc((size_t)m->n * PIXELS * sizeof *x);
    int32_t *y = malloc((size_t)m->n * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return lesson_fail(c, "out of memory");
    }
    const float *xs = d->xtr.data;
    const int32_t *ys = d->ytr.data;
    for (int i = 0; i < m->n; i++) {
        memcpy(x + (size_t)i * PIXELS, xs + (size_t)idx[i] * PIXELS, PIXELS * sizeof *x);
        y[i] = ys[idx[i]];
    }
    int bad = jg_program_set(m->grad, "x", x, (size_t)m->n * PIXELS * sizeof *x) ||
              jg_program_set(m->grad, "y", y, (size_t)m->n * sizeof *y) ||
              jg_program_run(m->grad);
    for (int i = 0; i < 4 && !bad; i++) {
        bad = jg_program_get(m->grad, i, out, (size_t)SIZES[i] * sizeof *out) != JG_OK;
        out += SIZES[i];
    }
    free(x), free(y);
    return bad ? lesson_fail(c, "%s", jg_errmsg(m->grad)) : 0;
}

/* GD_STEPS of full-batch gradient descent from the initial weights; the weights after. */
static int descend(const lesson_ctx *c, net *m, const lesson_data *d, const int64_t *idx,
                   const float *init, float *out, float *loss)
{
    const float *p = init;
    for (int i = 0; i < 4; i++) {
        jg_param_set(m->g, PARAMS[i], p, (size_t)SIZES[i] * sizeof *p);
        p += SIZES[i];
    }
    float *x = malloc((size_t)m->n * PIXELS * sizeof *x);
    int32_t *y = malloc((size_t)m->n * sizeof *y);
    if (!x || !y) {
        free(x), free(y);
        return lesson_fail(c, "out of memory");
    }
    for (int i = 0; i < m->n; i++) {
        memcpy(x + (size_t)i * PIXELS, (const float *)d->xtr.data + (size_t)idx[i] * PIXELS,
               PIXELS * sizeof *x);
        y[i] = ((const int32_t *)d->ytr.data)[idx[i]];
    }
    int bad = jg_program_set(m->step, "x", x, (size_t)m->n * PIXELS * sizeof *x) ||
              jg_program_set(m->step, "y", y, (size_t)m->n * sizeof *y);
    for (int s = 0; s < GD_STEPS && !bad; s++)
        bad = jg_program_run(m->step) || jg_program_get(m->step, 0, loss, sizeof *loss);
    for (int i = 0; i < 4 && !bad; i++) {
        bad = jg_param_get(m->g, PARAMS[i], out, (size_t)SIZES[i] * sizeof *out) != JG_OK;
        out += SIZES[i];
    }
    free(x), free(y);
    return bad ? lesson_fail(c, "%s", jg_errmsg(m->step)) : 0;
}

/* |a - b| / |a| and max |a - b| over n values. */
static double rel_diff(const float *a, const float *b, int64_t n, double *max_abs)
{
    double num = 0, den = 0;
    *max_abs = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = (double)a[i] - (double)b[i];
        num += e * e;
        den += (double)a[i] * a[i];
        *max_abs = fmax(*max_abs, fabs(e));
    }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1);
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 16, "full-batch-no-shuffle"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 4096 : 0, 16, &d))
        return 1;
    int n = (int)jg_dataset_size(d.train);
    int64_t total = 0;
    for (int i = 0; i < 4; i++)
        total += SIZES[i];
    int64_t *file = malloc((size_t)n * sizeof *file), *perm = malloc((size_t)n * sizeof *perm);
    float *ga = malloc((size_t)total * sizeof *ga), *gb = malloc((size_t)total * sizeof *gb);
    float *gc = malloc((size_t)total * sizeof *gc), *ma = malloc((size_t)total * sizeof *ma);
    float *mb = malloc((size_t)total * sizeof *mb), *init = malloc((size_t)total * sizeof *init);
    float *wa = malloc((size_t)total * sizeof *wa), *wb = malloc((size_t)total * sizeof *wb);
    net full = { 0 }, mini = { 0 };
    int status = !file || !perm || !ga || !gb || !gc || !ma || !mb || !init || !wa || !wb;
    if (status) {
        status = lesson_fail(&c, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++)
        file[i] = perm[i] = i;
    uint64_t r = 0x9e3779b97f4a7c15ull;
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates with xorshift */
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        int j = (int)(r % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    if ((status = net_build(&c, &full, n)) || (status = net_build(&c, &mini, MINI)))
        goto done;
    float *p = init;
    for (int i = 0; i < 4; i++) { /* both graphs start from these weights */
        jg_param_get(full.g, PARAMS[i], p, (size_t)SIZES[i] * sizeof *p);
        jg_param_set(mini.g, PARAMS[i], p, (size_t)SIZES[i] * sizeof *p);
        p += SIZES[i];
    }
    double t0 = lesson_seconds(&c);
    if ((status = gradient(&c, &full, &d, file, ga)) ||
        (status = gradient(&c, &full, &d, perm, gb)) ||
        (status = gradient(&c, &full, &d, file, gc)) ||
        (status = gradient(&c, &mini, &d, file, ma)) ||
        (status = gradient(&c, &mini, &d, perm, mb)))
        goto done;
    double t_grad = (lesson_seconds(&c) - t0) / 3;
    float loss_a, loss_b;
    if ((status = descend(&c, &full, &d, file, init, wa, &loss_a)) ||
        (status = descend(&c, &full, &d, perm, init, wb, &loss_b)))
        goto done;
    double abs_full, abs_rerun, abs_mini, abs_w;
    double rel_full = rel_diff(ga, gb, total, &abs_full);
    double rel_rerun = rel_diff(ga, gc, total, &abs_rerun);
    double rel_mini = rel_diff(ma, mb, total, &abs_mini);
    double rel_w = rel_diff(wa, wb, total, &abs_w);
    bool identical = memcmp(ga, gc, (size_t)total * sizeof *ga) == 0;

    printf("%d samples, %lld parameters, one full-batch gradient %.3f s\n", n,
           (long long)total, t_grad);
    const char *cols[] = { "compared                                ", "rel. diff",
                           "max |diff|" };
    lesson_table(cols, 3);
    lesson_row("%-40s %-14.3g %-14.3g", "full batch: file order vs shuffled", rel_full, abs_full);
    lesson_row("%-40s %-14.3g %-14.3g", "full batch: file order, run twice", rel_rerun,
               abs_rerun);
    lesson_row("%-40s %-14.3g %-14.3g", "mini-batch 128: first of each order", rel_mini,
               abs_mini);
    lesson_row("%-40s %-14.3g %-14.3g", "weights after 5 full-batch GD steps", rel_w, abs_w);
    printf("loss after %d full-batch steps: file order %.7f, shuffled %.7f\n", GD_STEPS,
           loss_a, loss_b);
    bool holds = rel_full <= 1e-5 && identical && rel_mini > 0.1;
    status = lesson_verdict(&c, holds, "full-batch gradient shuffled vs not: rel. diff %.2g "
                            "(max %.2g); rerun identical: %s; mini-batch gradients differ by "
                            "%.0f%%; weights after %d GD steps: rel. diff %.2g",
                            rel_full, abs_full, identical ? "yes" : "no", 100 * rel_mini,
                            GD_STEPS, rel_w);
done:
    net_free(&full);
    net_free(&mini);
    free(file), free(perm), free(ga), free(gb), free(gc), free(ma), free(mb), free(init);
    free(wa), free(wb);
    lesson_data_free(&d);
    return status;
}
