/* The shared part of the lesson programs (see lesson.h). */
#define _POSIX_C_SOURCE 200809L
#include "lesson.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { PIXELS = 784 };

const char *const LESSON_CLASSES[10] = { "T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                         "Sandal", "Shirt", "Sneaker", "Bag", "Boot" };

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

double lesson_seconds(const lesson_ctx *c) { return now_s() - c->t0; }

int lesson_init(lesson_ctx *c, int argc, char **argv, int number, const char *name)
{
    *c = (lesson_ctx){ .number = number, .name = name, .out = "lessons-out",
                       .data = "/usr/share/datasets/fashion-mnist", .t0 = now_s() };
    const char *usage = "options: --quick, --out DIR, --data DIR, --threads T (0: every core)";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quick")) {
            c->quick = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            printf("lesson %02d %s: %s\n", number, name, usage);
            exit(0);
        }
        bool known = !strcmp(a, "--out") || !strcmp(a, "--data") || !strcmp(a, "--threads");
        if (!known || !v) {
            fprintf(stderr, "lesson %02d: %s %s (%s)\n", number,
                    known ? "missing value for" : "unknown option", a, usage);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out")) {
            c->out = v;
        } else if (!strcmp(a, "--data")) {
            c->data = v;
        } else {
            char *end;
            long t = strtol(v, &end, 10);
            if (end == v || *end || t < 0 || t > 1024) {
                fprintf(stderr, "lesson %02d: --threads wants a count from 0 to 1024, not "
                        "'%s'\n", number, v);
                return 2;
            }
            c->threads = (int)t;
        }
    }
    if (mkdir(c->out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "lesson %02d: cannot create %s: %s\n", number, c->out, strerror(errno));
        return 2;
    }
    printf("lesson %02d %s%s\n", number, name, c->quick ? " (quick)" : "");
    return 0;
}

static int verdict_line(const lesson_ctx *c, const char *word, const char *fmt, va_list ap)
{
    char detail[512];
    vsnprintf(detail, sizeof detail, fmt, ap);
    printf("lesson %02d %s: %s (%s; %.1f s)\n", c->number, c->name, word, detail,
           lesson_seconds(c));
    fflush(stdout);
    return 0;
}

int lesson_verdict(const lesson_ctx *c, bool holds, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verdict_line(c, holds ? "HOLDS" : "DOES NOT HOLD", fmt, ap);
    va_end(ap);
    return 0;
}

int lesson_fail(const lesson_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verdict_line(c, "ERROR", fmt, ap);
    va_end(ap);
    return 1;
}

const char *lesson_path(const lesson_ctx *c, const char *file, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", c->out, file);
    return buf;
}

/* ---------------------------------------------------------------- data */

void lesson_data_free(lesson_data *d)
{
    jg_dataset_free(d->train);
    jg_dataset_free(d->test);
    jg_dataset_free(d->train_all);
    jg_dataset_free(d->test_all);
    jg_array_free(&d->xtr), jg_array_free(&d->ytr);
    jg_array_free(&d->xte), jg_array_free(&d->yte);
    *d = (lesson_data){ 0 };
}

int lesson_fashion(const lesson_ctx *c, int64_t n_train, int64_t n_test, lesson_data *d)
{
    *d = (lesson_data){ 0 };
    const char *files[4] = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz" };
    jg_array *arrays[4] = { &d->xtr, &d->ytr, &d->xte, &d->yte };
    char path[1024], err[512];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", c->data, files[i]);
        if (jg_idx_read(path, i % 2 ? JG_I32 : JG_F32, arrays[i], err, sizeof err) != JG_OK) {
            lesson_data_free(d);
            return lesson_fail(c, "%s", err);
        }
    }
    if (jg_dataset_new(&d->xtr, &d->ytr, &d->train_all, err, sizeof err) ||
        jg_dataset_new(&d->xte, &d->yte, &d->test_all, err, sizeof err)) {
        lesson_data_free(d);
        return lesson_fail(c, "%s", err);
    }
    int64_t ntr = jg_dataset_size(d->train_all), nte = jg_dataset_size(d->test_all);
    d->train = jg_dataset_range(d->train_all, 0, n_train > 0 && n_train < ntr ? n_train : ntr);
    d->test = jg_dataset_range(d->test_all, 0, n_test > 0 && n_test < nte ? n_test : nte);
    if (!d->train || !d->test) {
        lesson_data_free(d);
        return lesson_fail(c, "cannot take the subsets");
    }
    return 0;
}

/* ---------------------------------------------------------------- training */

jg_node *lesson_linear(jg_graph *g, const char *name, jg_node *x, int in, int out, jg_init init)
{
    char w_name[128], b_name[128];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.b", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param(g, w_name, jg_shape(in, out), init);
        b = jg_param(g, b_name, jg_shape(out), jg_zeros());
    }
    return jg_add(jg_matmul(x, w), b);
}

jg_node *lesson_conv(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    char w_name[64], b_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.b", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param(g, w_name, jg_shape(out, in, 3, 3), jg_he_normal());
        b = jg_param(g, b_name, jg_shape(out), jg_zeros());
    }
    jg_node *h = jg_relu(jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 }));
    return jg_max_pool2d(h, 2, 2, 2, 2, 0, 0);
}

double lesson_accuracy(jg_program *eval, jg_dataset *ds, int batch)
{
    jg_shape s = jg_program_output_shape(eval, 0);
    int classes = (int)s.dim[1];
    jg_loader *ld = jg_loader_new(ds, batch, NULL);
    float *x = calloc((size_t)batch * PIXELS, sizeof *x);
    float *logits = malloc((size_t)batch * (size_t)classes * sizeof *logits);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    int64_t seen = 0, correct = 0;
    int n;
    while (ld && x && logits && y && jg_loader_next(ld, x, y, &n)) {
        if (n < batch)
            memset(x + (size_t)n * PIXELS, 0, (size_t)(batch - n) * PIXELS * sizeof *x);
        if (jg_program_set(eval, "x_eval", x, (size_t)batch * PIXELS * sizeof *x) ||
            jg_program_run(eval) ||
            jg_program_get(eval, 0, logits, (size_t)batch * (size_t)classes * sizeof *logits))
            break;
        for (int i = 0; i < n; i++, seen++) {
            int best = 0;
            for (int k = 1; k < classes; k++)
                best = logits[i * classes + k] > logits[i * classes + best] ? k : best;
            correct += best == y[i];
        }
    }
    jg_loader_free(ld);
    free(x), free(logits), free(y);
    return seen ? (double)correct / (double)seen : 0;
}

int lesson_train(const lesson_ctx *c, lesson_fit *f, jg_dataset *train, jg_dataset *test,
                 jg_graph **g_out, jg_program **eval_out)
{
    int b = f->batch;
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, f->seed ? f->seed : 1);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(b, PIXELS));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(b));
    jg_node *loss = jg_cross_entropy(f->model(g, x, b, f->arg), y);
    jg_node *x_eval = jg_input(g, "x_eval", JG_F32, jg_shape(b, PIXELS));
    jg_node *logits = f->model(g, x_eval, b, f->arg);
    jg_program *tr = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = f->optimizer, .clip_norm = f->clip_norm, .clip_value = f->clip_value,
        .compile = { .num_threads = c->threads } });
    jg_program *ev = jg_compile(g, &logits, 1, &(jg_opts){ .num_threads = c->threads,
                                                             .mode = JG_MODE_EVAL });
    jg_loader *ld = jg_loader_new(train, b, &(jg_loader_opts){
        .shuffle = f->shuffle, .drop_last = true, .seed = f->seed + 17 });
    float *xb = malloc((size_t)b * PIXELS * sizeof *xb);
    int32_t *yb = malloc((size_t)b * sizeof *yb);
    int status = 0;
    if (!tr || !ev || !ld || !xb || !yb) {
        status = lesson_fail(c, "%s", !tr || !ev ? jg_errmsg(g) : jg_dataset_errmsg(train));
        goto done;
    }
    double t0 = now_s();
    int64_t step = 0;
    f->diverged = false;
    for (int e = 0; e < f->epochs && e < 256 && !f->diverged; e++) {
        double sum = 0;
        int n, steps = 0;
        while (jg_loader_next(ld, xb, yb, &n)) {
            if (f->augment)
                jg_augment(f->augment, xb, b, 1, 28, 28, f->seed + 5, (uint64_t)step);
            float l;
            if (jg_program_set(tr, "x", xb, (size_t)b * PIXELS * sizeof *xb) ||
                jg_program_set(tr, "y", yb, (size_t)b * sizeof *yb) || jg_program_run(tr) ||
                jg_program_get(tr, 0, &l, sizeof l)) {
                status = lesson_fail(c, "%s", jg_errmsg(tr));
                goto done;
            }
            step++;
            sum += l;
            steps++;
            if (!isfinite(l))
                f->diverged = true;
        }
        f->loss[e] = steps ? sum / steps : NAN;
        f->test_accuracy[e] = lesson_accuracy(ev, test, b);
        f->epochs_run = e + 1;
    }
    f->train_accuracy = lesson_accuracy(ev, train, b);
    f->seconds = now_s() - t0;
done:
    jg_loader_free(ld);
    free(xb), free(yb);
    jg_program_free(tr);
    if (g_out && !status) {
        *g_out = g;
        *eval_out = ev;
    } else {
        jg_program_free(ev);
        jg_graph_free(g);
    }
    return status;
}

/* ---------------------------------------------------------------- snapshots */

int lesson_snapshot_take(jg_graph *g, lesson_snapshot *s)
{
    s->n = jg_param_count(g);
    s->data = calloc((size_t)s->n + 1, sizeof *s->data);
    s->bytes = calloc((size_t)s->n + 1, sizeof *s->bytes);
    if (!s->data || !s->bytes)
        return 1;
    for (int i = 0; i < s->n; i++) {
        jg_node *p = jg_param_at(g, i);
        s->bytes[i] = (size_t)jg_shape_numel(jg_node_shape(p)) * jg_dtype_size(jg_node_dtype(p));
        s->data[i] = malloc(s->bytes[i]);
        if (!s->data[i] || jg_param_get(g, jg_node_name(p), s->data[i], s->bytes[i]))
            return 1;
    }
    return 0;
}

int lesson_snapshot_restore(jg_graph *g, const lesson_snapshot *s)
{
    for (int i = 0; i < s->n; i++)
        if (jg_param_set(g, jg_node_name(jg_param_at(g, i)), s->data[i], s->bytes[i]))
            return 1;
    return 0;
}

void lesson_snapshot_free(lesson_snapshot *s)
{
    for (int i = 0; i < s->n && s->data; i++)
        free(s->data[i]);
    free(s->data), free(s->bytes);
    *s = (lesson_snapshot){ 0 };
}

/* ---------------------------------------------------------------- tables */

void lesson_table(const char *const *columns, int n)
{
    int width = 0;
    for (int i = 0; i < n; i++)
        width += printf("%s%-14s", i ? " " : "", columns[i]);
    printf("\n");
    for (int i = 0; i < width; i++)
        putchar('-');
    printf("\n");
}

void lesson_row(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}
