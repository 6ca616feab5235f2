/* Lesson 12: multi-task learning, with hard or soft parameter sharing. Training one network
 * on several related tasks makes the shared part learn features that serve all of them: a
 * task with few labels borrows the supervision of a related task with more, and each loss
 * regularises the other. Hard sharing: one trunk, one head per task, the losses added. Soft
 * sharing: one network per task, with a penalty on the distance between their parameters,
 * so they may differ but are pulled together.
 *
 * Experiment: Fashion-MNIST, two tasks: the class (10) and a super-category (tops: T-shirt,
 * pullover, dress, coat, shirt; footwear: sandal, sneaker, boot; other: trouser, bag), each
 * labelled on a subset of the first 10,000 training images (the first n of them), in three
 * settings: both tasks on the same 1,000 images; class labels for 1,000 and super-category
 * labels for 10,000; class labels for 10,000 and super-category labels for only 200. MLPs
 * with a 784-256 ReLU trunk, trained by Adam for 600 steps, each step one batch of 50 of each
 * task, from 3 seeds each:
 *   single task   a trunk and head per task, each trained on its own loss;
 *   hard sharing  one trunk, two heads, loss = CE(class) + CE(super);
 *   soft sharing  two trunks, loss = CE(class) + CE(super) + lambda * |W_a - W_b|^2 over the
 *                 trunks' weights and biases (built from jg_square and jg_sum of the
 *                 differences), lambda = 1e-3.
 * Test accuracy on 10,000 test images for both tasks, mean over the seeds, and the distance
 * between the two trunks with and without the penalty.
 * Criterion: HOLDS when, in the setting where the super-category is the scarce task (200
 * labels), hard or soft sharing beats single-task learning on it by at least half a point
 * (mean of 3 seeds), and the soft penalty pulls the trunks together (at most half the
 * single-task distance).
 * What we found: the gain is real but small (about 0.8 points on the scarce task: 4.6% errors
 * down to 3.8%), and only where the scarce task is the coarse one. With both tasks labelled
 * on the same 1,000 images sharing gains nothing (the super-category is a function of the
 * class: its labels carry no information the class labels lack); with many super-category
 * labels the class task gains nothing either, as its errors are among tops (shirt, T-shirt,
 * pullover, coat), which the super-category lumps together. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 256, BATCH = 50, SEEDS = 3, N_CLASS = 1000, N_SUPER = 10000 };
static const double LAMBDA = 1e-3;

typedef enum variant { SINGLE, HARD, SOFT, VARIANTS } variant;
static const char *const VARIANT_NAMES[VARIANTS] = { "single task", "hard sharing",
                                                     "soft sharing" };

/* tops 0, footwear 1, other 2 */
static int32_t super_of(int32_t cls)
{
    static const int32_t map[10] = { 0, 2, 0, 0, 0, 1, 0, 1, 2, 1 };
    return map[cls];
}

static jg_node *trunk(jg_graph *g, const char *name, jg_node *x)
{
    return jg_relu(lesson_linear(g, name, x, PIXELS, HIDDEN, jg_he_normal()));
}

/* Class logits of xc and super-category logits of xs for the variant. */
static void heads(jg_graph *g, variant v, jg_node *xc, jg_node *xs, jg_node **lc, jg_node **ls)
{
    jg_node *ta = trunk(g, v == HARD ? "shared" : "trunk_a", xc);
    jg_node *tb = trunk(g, v == HARD ? "shared" : "trunk_b", xs);
    *lc = lesson_linear(g, "head_class", ta, HIDDEN, 10, jg_xavier_uniform());
    *ls = lesson_linear(g, "head_super", tb, HIDDEN, 3, jg_xavier_uniform());
}

/* sum of squared differences between the two trunks' parameters (a scalar node). */
static jg_node *trunk_distance(jg_graph *g)
{
    const char *suffix[2] = { ".w", ".b" };
    jg_node *sum = NULL;
    for (int i = 0; i < 2; i++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "trunk_a%s", suffix[i]);
        snprintf(b, sizeof b, "trunk_b%s", suffix[i]);
        jg_node *d = jg_sum(jg_square(jg_sub(jg_param_find(g, a), jg_param_find(g, b))),
                            JG_ALL_AXES, false);
        sum = sum ? jg_add(sum, d) : d;
    }
    return sum;
}

typedef struct result {
    double acc_class, acc_super, distance;
} result;

/* Class labels from the first N_CLASS training images, super-category labels from the first
 * n_super; steps batches of each. */
static int train(const lesson_ctx *c, lesson_data *d, variant v, int64_t n_class,
                 int64_t n_super, uint64_t seed, int steps, result *r)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, seed);
    jg_node *xc = jg_input(g, "xc", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *xs = jg_input(g, "xs", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *yc = jg_input(g, "yc", JG_I32, jg_shape(BATCH));
    jg_node *ys = jg_input(g, "ys", JG_I32, jg_shape(BATCH));
    jg_node *lc, *ls;
    heads(g, v, xc, xs, &lc, &ls);
    /* Single task: the two networks share nothing, so adding their losses trains each on
     * its own (the gradient of CE(class) does not reach trunk_b, nor CE(super) trunk_a). */
    jg_node *loss = jg_add(jg_cross_entropy(lc, yc), jg_cross_entropy(ls, ys));
    jg_node *dist = v == HARD ? NULL : trunk_distance(g);
    if (v == SOFT)
        loss = jg_add(loss, jg_scale(dist, LAMBDA));
    jg_node *xe = jg_input(g, "x_eval", JG_F32, jg_shape(BATCH, PIXELS));
    jg_node *ec, *es;
    heads(g, v, xe, xe, &ec, &es);
    jg_node *outs[3] = { ec, es, dist };
    jg_program *tr = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(1e-3), .compile = { .num_threads = c->threads } });
    jg_program *ev = jg_compile(g, outs, dist ? 3 : 2, &(jg_opts){ .num_threads = c->threads });
    jg_dataset *dc = jg_dataset_range(d->train, 0, n_class);
    jg_dataset *ds = jg_dataset_range(d->train, 0, n_super);
    jg_loader *ld = dc ? jg_loader_new(dc, BATCH, &(jg_loader_opts){
        .shuffle = true, .drop_last = true, .seed = seed }) : NULL;
    jg_loader *ls_ld = ds ? jg_loader_new(ds, BATCH, &(jg_loader_opts){
        .shuffle = true, .drop_last = true, .seed = seed + 1 }) : NULL;
    float *xb = malloc(sizeof(float) * BATCH * PIXELS), pc[BATCH * 10], ps[BATCH * 3];
    float *xsb = malloc(sizeof(float) * BATCH * PIXELS);
    int32_t yb[BATCH], sb[BATCH];
    int n, status = 0;
    if (!tr || !ev || !ld || !ls_ld || !xb || !xsb) {
        status = lesson_fail(c, "%s", !tr || !ev ? jg_errmsg(g) : "cannot make the loaders");
        goto done;
    }
    for (int step = 0; step < steps; step++) {
        /* A loader returns false at the end of its epoch; the next call starts the next. */
        if (!jg_loader_next(ld, xb, yb, &n))
            jg_loader_next(ld, xb, yb, &n);
        if (!jg_loader_next(ls_ld, xsb, sb, &n))
            jg_loader_next(ls_ld, xsb, sb, &n);
        for (int i = 0; i < BATCH; i++)
            sb[i] = super_of(sb[i]);
        if (jg_program_set(tr, "xc", xb, sizeof(float) * BATCH * PIXELS) ||
            jg_program_set(tr, "xs", xsb, sizeof(float) * BATCH * PIXELS) ||
            jg_program_set(tr, "yc", yb, sizeof yb) ||
            jg_program_set(tr, "ys", sb, sizeof sb) || jg_program_run(tr)) {
            status = lesson_fail(c, "%s", jg_errmsg(tr));
            goto done;
        }
    }
    jg_loader_free(ld);
    ld = jg_loader_new(d->test, BATCH, &(jg_loader_opts){ .drop_last = true });
    int64_t seen = 0, ok_c = 0, ok_s = 0;
    float dv = 0;
    while (jg_loader_next(ld, xb, yb, &n)) {
        if (jg_program_set(ev, "x_eval", xb, sizeof(float) * BATCH * PIXELS) ||
            jg_program_run(ev) || jg_program_get(ev, 0, pc, sizeof pc) ||
            jg_program_get(ev, 1, ps, sizeof ps) || (dist && jg_program_get(ev, 2, &dv, sizeof dv))) {
            status = lesson_fail(c, "%s", jg_errmsg(ev));
            goto done;
        }
        for (int i = 0; i < n; i++, seen++) {
            int bc = 0, bs = 0;
            for (int k = 1; k < 10; k++)
                bc = pc[i * 10 + k] > pc[i * 10 + bc] ? k : bc;
            for (int k = 1; k < 3; k++)
                bs = ps[i * 3 + k] > ps[i * 3 + bs] ? k : bs;
            ok_c += bc == yb[i];
            ok_s += bs == super_of(yb[i]);
        }
    }
    r->acc_class = (double)ok_c / (double)seen;
    r->acc_super = (double)ok_s / (double)seen;
    r->distance = dist ? sqrt(dv) : 0;
done:
    jg_loader_free(ld);
    jg_loader_free(ls_ld);
    jg_dataset_free(dc), jg_dataset_free(ds);
    free(xb), free(xsb);
    jg_program_free(tr);
    jg_program_free(ev);
    jg_graph_free(g);
    return status;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 12, "multi-task"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, 10000, c.quick ? 1000 : 0, &d))
        return 1;
    int steps = (c.quick ? 3 : 30) * (1000 / BATCH), seeds = c.quick ? 1 : SEEDS;
    enum { SETTINGS = 3, SCARCE = 2 };
    const int64_t n_class[SETTINGS] = { 1000, 1000, 10000 };
    const int64_t n_super[SETTINGS] = { 1000, 10000, 200 };
    result mean[SETTINGS][VARIANTS] = { { { 0 } } };
    const char *cols[] = { "class labels", "super labels", "variant", "seed", "class acc",
                           "super acc", "|W_a - W_b|" };
    lesson_table(cols, 7);
    for (int k = c.quick ? SCARCE : 0; k < SETTINGS; k++)
        for (int v = 0; v < VARIANTS; v++)
            for (int s = 0; s < seeds; s++) {
                result r = { 0 };
                if (train(&c, &d, (variant)v, n_class[k], n_super[k], 100 + (uint64_t)s, steps,
                          &r)) {
                    lesson_data_free(&d);
                    return 1;
                }
                lesson_row("%-14lld %-14lld %-14s %-14d %-14.4f %-14.4f %-14.3f",
                           (long long)n_class[k], (long long)n_super[k], VARIANT_NAMES[v], s,
                           r.acc_class, r.acc_super, r.distance);
                mean[k][v].acc_class += r.acc_class / seeds;
                mean[k][v].acc_super += r.acc_super / seeds;
                mean[k][v].distance += r.distance / seeds;
            }
    lesson_data_free(&d);
    printf("mean over %d seed%s\n", seeds, seeds > 1 ? "s" : "");
    lesson_table(cols, 7);
    for (int k = c.quick ? SCARCE : 0; k < SETTINGS; k++)
        for (int v = 0; v < VARIANTS; v++)
            lesson_row("%-14lld %-14lld %-14s %-14s %-14.4f %-14.4f %-14.3f",
                       (long long)n_class[k], (long long)n_super[k], VARIANT_NAMES[v], "mean",
                       mean[k][v].acc_class, mean[k][v].acc_super, mean[k][v].distance);
    const result *m = mean[SCARCE];
    double best = fmax(m[HARD].acc_super, m[SOFT].acc_super);
    bool pulled = m[SOFT].distance <= 0.5 * m[SINGLE].distance;
    bool holds = best >= m[SINGLE].acc_super + 0.005 && pulled;
    return lesson_verdict(&c, holds, "super-category accuracy from 200 labels (class labels for "
                          "10000): single task %.4f, hard sharing %.4f, soft sharing %.4f; trunk "
                          "distance %.2f with the penalty vs %.2f without",
                          m[SINGLE].acc_super, m[HARD].acc_super, m[SOFT].acc_super,
                          m[SOFT].distance, m[SINGLE].distance);
}
