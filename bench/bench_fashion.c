/* Training cost of the Fashion-MNIST models (examples/fashion_mnist/models.c): jitgrad's side
 * of the PyTorch comparison (bench/torch/run.sh runs it beside bench/torch/bench_torch.py,
 * which measures the same things the same way; the ratios are made there, none are here).
 *
 *   bench_fashion                  every model, each in a child process of its own
 *   bench_fashion --model M        one model in this process: mlp, cnn or rnn
 *   bench_fashion --export DIR     the CNN's weights, one batch, its loss and gradients as .npy
 *                                  (for bench/torch/check_cnn.py), in f64; --export-f32 1: in
 *                                  f32, the precision the benchmark trains in
 *   options: --steps N (30) --warmup N (5) --threads T (2) --vector-bits B (0: the widest)
 *            --passes-off LIST (jg_opts.passes_off: e.g. "epilogue,siblings")
 *            --profile 1 (each kernel's group and its time over the timed steps, slowest first, on
 *            stderr after each run; the clock reads slow the steps a little)
 *
 * Per model, one graph holds the model twice over shared parameters: at batch 128 and at
 * batch 1, each with its own training program (jg_compile_train, Adam at the examples' rate,
 * 2 threads). A step is jg_program_set of x and y, jg_program_run (forward, backward, Adam
 * update) and jg_program_get of the loss. Batch 128: `warmup` untimed steps, then `steps`
 * timed ones; the epoch time is the median step time times 60000 / 128 (a 60,000-image epoch,
 * not a timed one). Batch 1: 4x as many steps, median. Then the process's peak resident set
 * (getrusage ru_maxrss), which covers compiling and both runs. The data are 8 synthetic
 * batches (uniform pixels, labels i mod 10): the time does not depend on the values, and
 * neither side holds a 188 MB dataset that would swamp the memory figure. No augmentation and
 * no rate schedule (the examples' cosine rate and flips are not part of a step). Lines:
 *
 *   {"bench": "fashion_<m>_epoch", "value": s, "unit": "s", "impl": "jitgrad", ...,
 *    "useful_gflops": the step's useful arithmetic (see mlp_flops) per second,
 *    "peak_fraction": that over the FMA peak of the step's threads, measured in the run}
 *   {"bench": "fashion_<m>_step_b1", "value": ms, "unit": "ms", ...,
 *    "update_bound_ms": what Adam's memory traffic alone takes (28 bytes per trainable
 *    element: w, g, m, v read, w, m, v written) at the bandwidth of a JIT-compiled triad
 *    over arrays of the same size measured in the run, "of_update_bound": value over it}
 *   {"bench": "fashion_<m>_peak_rss", "value": MB, "unit": "MB", ...}
 *
 * --export DIR writes <param>.npy for every parameter (after initialisation), x.npy [128, 784]
 * and y.npy [128] (the first 128 test images when the data files are there, else synthetic),
 * loss.npy [1] and grad.<param>.npy for every trainable parameter, computed by the JIT on 2
 * threads in training mode (batchnorm on batch statistics) with the CNN's dropout at 0, and
 * after.<name>.npy for the batchnorm running statistics the run updated; all in f64 (the
 * model built from f64 images), or f32 with --export-f32 1. */
#define _POSIX_C_SOURCE 200809L
#include "jitgrad.h"
#include "models.h"

#include "bench_peak.h"
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { PIXELS = 784, CLASSES = 10, BATCH = 128, N_BATCHES = 8, EPOCH_IMAGES = 60000 };

/* Useful FLOPs of one training step at batch b: the products of the forward pass, and for
 * the backward the weight gradients and the input gradients of every layer whose input is an
 * activation (2*M*N*K each; elementwise work, batchnorm, the update and im2col not counted),
 * as models.c builds them. */
static double dense_flops(double b, double in, double out, bool input_grad)
{
    return 2.0 * b * in * out * (input_grad ? 3 : 2);
}

static double mlp_flops(int b)
{
    return dense_flops(b, 784, 256, false) + dense_flops(b, 256, 128, true) +
           dense_flops(b, 128, 100, true) + dense_flops(b, 100, 10, true);
}

static double cnn_flops(int b)
{
    double conv1 = 2.0 * b * 64 * 28 * 28 * 1 * 9, conv2 = 2.0 * b * 128 * 14 * 14 * 64 * 9;
    return 2 * conv1 + 3 * conv2 + dense_flops(b, 6272, 256, true) +
           dense_flops(b, 256, 10, true);
}

static double rnn_flops(int b)
{
    /* per step and layer: [x, h] times [W_ih; W_hh] into the four gates, 28 steps */
    double l1 = 28 * dense_flops(b, 28 + 128, 4 * 128, true);
    double l2 = 28 * dense_flops(b, 128 + 128, 4 * 128, true);
    return l1 + l2 + dense_flops(b, 128, 10, true);
}

typedef struct model {
    const char *name;
    jg_node *(*fn)(jg_graph *g, jg_node *images, int batch);
    double lr;
    double (*flops)(int batch);
    double target_peak_fraction; /* of the step's useful FLOP/s; 0: none */
} model;

static const model MODELS[] = {
    { "mlp", fm_mlp, FM_MLP_LR, mlp_flops, 0 },
    { "cnn", fm_cnn, FM_CNN_LR, cnn_flops, 0.60 },
    { "rnn", fm_rnn, FM_RNN_LR, rnn_flops, 0 },
};
enum { N_MODELS = sizeof MODELS / sizeof *MODELS };

typedef struct options {
    const char *model, *export_dir, *passes_off;
    bool export_f32;
    int steps, warmup, threads, vector_bits;
    bool profile;
} options;

/* ---------------------------------------------------------------- data */

/* n synthetic images (uniform in [0, 1)) and labels (i mod 10). */
static void synthetic(float *x, int32_t *y, int n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < (size_t)n * PIXELS; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)(s >> 40) / (float)(1 << 24);
    }
    for (int i = 0; i < n; i++)
        y[i] = i % CLASSES;
}

/* ---------------------------------------------------------------- timing */

typedef struct trainer {
    jg_program *p;
    const char *xname, *yname;
    int batch;
    const float *x;   /* N_BATCHES batches */
    const int32_t *y;
    int next;
    float loss;
} trainer;

static int step(trainer *t)
{
    int b = t->next++ % N_BATCHES;
    const float *x = t->x + (size_t)b * t->batch * PIXELS;
    const int32_t *y = t->y + (size_t)b * t->batch;
    if (jg_program_set(t->p, t->xname, x, (size_t)t->batch * PIXELS * sizeof *x) ||
        jg_program_set(t->p, t->yname, y, (size_t)t->batch * sizeof *y) || jg_program_run(t->p) ||
        jg_program_get(t->p, 0, &t->loss, sizeof t->loss)) {
        fprintf(stderr, "bench_fashion: %s\n", jg_errmsg(t->p));
        return 1;
    }
    return 0;
}

/* The median seconds of `steps` steps after `warmup` untimed ones, -1 on failure; with
 * profile, the kernels are timed over the timed steps only (the first run faults the arena's
 * pages in). */
static double median_step(trainer *t, int warmup, int steps, bool profile)
{
    double *s = malloc((size_t)steps * sizeof *s);
    int status = !s;
    for (int i = 0; i < warmup && !status; i++)
        status = step(t);
    jg_program_profile(t->p, profile);
    for (int i = 0; i < steps && !status; i++) {
        double t0 = bu_now();
        status = step(t);
        s[i] = bu_now() - t0;
    }
    double m = status ? -1 : bu_median(s, steps);
    free(s);
    return m;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* kB on Linux */
}

/* Trainable elements: half of Adam's state (m and v per element) under the optimiser's
 * name. */
static int64_t trainable_elements(const jg_graph *g, const char *opt)
{
    int64_t n = 0;
    size_t len = strlen(opt);
    for (int i = 0; i < jg_param_count(g); i++) {
        jg_node *p = jg_param_at(g, i);
        const char *name = jg_node_name(p);
        if (strncmp(name, opt, len) == 0 && name[len] == '.' && jg_node_shape(p).ndim > 0)
            n += jg_shape_numel(jg_node_shape(p));
    }
    return n / 2;
}

static void run_program(void *arg)
{
    jg_program *p = arg;
    if (jg_program_run(p) != JG_OK)
        fprintf(stderr, "bench_fashion: triad: %s\n", jg_errmsg(p));
}

/* The time Adam's traffic over n elements takes at the bandwidth of a triad a = b + 3 c over
 * n elements, JIT-compiled on the same threads (the plain C triad of bench_triad.h, SSE2,
 * cannot stream cache-resident arrays as fast as the update does): 12 bytes an element
 * there, 28 in the update. Seconds; -1 when it cannot be set up. */
static double update_bound_s(int64_t n, int threads)
{
    jg_graph *g = jg_graph_new();
    jg_node *b = jg_input(g, "b", JG_F32, jg_shape(n)), *c = jg_input(g, "c", JG_F32, jg_shape(n));
    jg_node *a = jg_add(b, jg_scale(c, 3));
    jg_program *p = jg_compile(g, &a, 1, &(jg_opts){ .num_threads = threads });
    float *data = calloc((size_t)n, sizeof *data);
    double s = -1;
    if (p && data && jg_program_set(p, "b", data, (size_t)n * sizeof *data) == JG_OK &&
        jg_program_set(p, "c", data, (size_t)n * sizeof *data) == JG_OK)
        s = bu_time_median(run_program, p, 3, 31) * 28.0 / 12.0;
    free(data);
    jg_program_free(p);
    jg_graph_free(g);
    return s;
}

static void line_common(bu_line *l, const model *m, int batch, int threads)
{
    bu_str(l, "impl", "jitgrad");
    bu_str(l, "model", m->name);
    bu_int(l, "batch", batch);
    bu_int(l, "threads", threads);
}

/* ---------------------------------------------------------------- one model */

static int bench_model(const model *m, const options *o)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 7);
    jg_node *loss[2];
    const int batches[2] = { BATCH, 1 };
    const char *xnames[2] = { "x", "x1" }, *ynames[2] = { "y", "y1" };
    for (int k = 0; k < 2; k++) {
        jg_node *x = jg_input(g, xnames[k], JG_F32, jg_shape(batches[k], PIXELS));
        jg_node *y = jg_input(g, ynames[k], JG_I32, jg_shape(batches[k]));
        loss[k] = jg_cross_entropy(m->fn(g, x, batches[k]), y);
    }
    jg_program *p[2] = { NULL, NULL };
    double compile_s[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) {
        double t0 = bu_now();
        p[k] = jg_compile_train(g, loss[k], &(jg_train_opts){
            .optimizer = jg_adam(m->lr), .name = k ? "opt_b1" : "opt",
            .compile = { .num_threads = o->threads, .vector_bits = o->vector_bits,
                         .passes_off = o->passes_off } });
        compile_s[k] = bu_now() - t0;
    }
    float *x = malloc((size_t)N_BATCHES * BATCH * PIXELS * sizeof *x);
    int32_t *y = malloc((size_t)N_BATCHES * BATCH * sizeof *y);
    int status = !p[0] || !p[1] || !x || !y;
    if (!p[0] || !p[1])
        fprintf(stderr, "bench_fashion: %s: %s\n", m->name, jg_errmsg(g));
    if (!status) {
        synthetic(x, y, N_BATCHES * BATCH, 42);
        trainer t = { .p = p[0], .xname = "x", .yname = "y", .batch = BATCH, .x = x, .y = y };
        double s128 = median_step(&t, o->warmup, o->steps, o->profile);
        float loss128 = t.loss;
        trainer t1 = { .p = p[1], .xname = "x1", .yname = "y1", .batch = 1, .x = x, .y = y };
        double s1 = median_step(&t1, 4 * o->warmup, 4 * o->steps, o->profile);
        for (int k = 0; k < 2 && o->profile; k++) {
            fprintf(stderr, "bench_fashion: %s, batch %d: the kernels' groups, then their times, "
                    "slowest first\n", m->name, batches[k]);
            jg_program_dump(p[k], stderr);
            jg_program_profile_dump(p[k], stderr);
        }
        status = s128 < 0 || s1 < 0;
        if (!status) {
            jg_program_stats st;
            jg_program_stats_get(p[0], &st);
            char name[64];
            bu_line l;
            snprintf(name, sizeof name, "fashion_%s_epoch", m->name);
            bu_begin(&l, name, s128 * EPOCH_IMAGES / BATCH, "s");
            line_common(&l, m, BATCH, st.threads);
            bu_num(&l, "step_ms", 1e3 * s128);
            bu_int(&l, "timed_steps", o->steps);
            bu_str(&l, "epoch", "median step x 60000/128");
            bu_num(&l, "compile_s", compile_s[0]);
            bu_int(&l, "kernels", st.kernels);
            bu_int(&l, "vector_bits", st.vector_bits);
            bu_num(&l, "last_loss", loss128);
            /* the step's useful arithmetic against the FMA peak of its threads */
            double gf = m->flops(BATCH) / s128 * 1e-9, peak = fma_peak() * st.threads;
            bu_num(&l, "useful_gflops", gf);
            if (peak > 0) {
                bu_num(&l, "fma_peak_gflops", peak);
                bu_num(&l, "peak_fraction", gf / peak);
                if (m->target_peak_fraction > 0) {
                    bu_num(&l, "target_peak_fraction", m->target_peak_fraction);
                    bu_str(&l, "met", gf / peak >= m->target_peak_fraction ? "yes" : "no");
                }
            }
            bu_num(&l, "load_avg_1m", bu_loadavg());
            bu_end(&l);
            snprintf(name, sizeof name, "fashion_%s_step_b1", m->name);
            bu_begin(&l, name, 1e3 * s1, "ms");
            line_common(&l, m, 1, st.threads);
            bu_int(&l, "timed_steps", 4 * o->steps);
            bu_num(&l, "compile_s", compile_s[1]);
            double bound = update_bound_s(trainable_elements(g, "opt_b1"), st.threads);
            if (bound > 0) {
                bu_num(&l, "update_bound_ms", 1e3 * bound);
                bu_num(&l, "of_update_bound", s1 / bound);
            }
            bu_num(&l, "load_avg_1m", bu_loadavg());
            bu_end(&l);
            snprintf(name, sizeof name, "fashion_%s_peak_rss", m->name);
            bu_begin(&l, name, peak_rss_mb(), "MB");
            line_common(&l, m, BATCH, st.threads);
            bu_str(&l, "covers", "compile + batch-128 and batch-1 runs");
            bu_end(&l);
        }
    }
    free(x);
    free(y);
    jg_program_free(p[0]);
    jg_program_free(p[1]);
    jg_graph_free(g);
    return status;
}

/* ---------------------------------------------------------------- --export */

static int write_npy(const char *dir, const char *prefix, const char *name, jg_dtype t,
                     jg_shape s, void *data)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s%s.npy", dir, prefix, name);
    jg_array a = { .dtype = t, .shape = s, .data = data };
    if (jg_npy_write(path, &a, err, sizeof err) != JG_OK) {
        fprintf(stderr, "bench_fashion: %s\n", err);
        return 1;
    }
    return 0;
}

/* x and y: the first BATCH test images when the data files are there, else synthetic. */
static const char *export_batch(float *x, int32_t *y)
{
    const char *dir = getenv("JG_FASHION_MNIST");
    dir = dir && *dir ? dir : "/usr/share/datasets/fashion-mnist";
    char path[1024];
    jg_array xs = { 0 }, ys = { 0 };
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    bool ok = jg_idx_read(path, JG_F32, &xs, NULL, 0) == JG_OK;
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte.gz", dir);
    ok = ok && jg_idx_read(path, JG_I32, &ys, NULL, 0) == JG_OK && xs.shape.dim[0] >= BATCH;
    if (ok) {
        memcpy(x, xs.data, (size_t)BATCH * PIXELS * sizeof *x);
        memcpy(y, ys.data, (size_t)BATCH * sizeof *y);
    } else {
        synthetic(x, y, BATCH, 42);
    }
    jg_array_free(&xs);
    jg_array_free(&ys);
    return ok ? "fashion-mnist test images 0..127" : "synthetic";
}

static int export_cnn(const char *dir, const options *o)
{
    jg_dtype t = o->export_f32 ? JG_F32 : JG_F64;
    size_t esize = jg_dtype_size(t);
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 7);
    jg_node *xn = jg_input(g, "x", t, jg_shape(BATCH, PIXELS));
    jg_node *yn = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *loss = jg_cross_entropy(fm_cnn_dropout(g, xn, BATCH, 0), yn);
    int n = jg_param_count(g);
    jg_node **params = calloc((size_t)n, sizeof *params);
    jg_node **grads = calloc((size_t)n, sizeof *grads);
    jg_node **outs = calloc((size_t)n + 1, sizeof *outs);
    float *x = malloc((size_t)BATCH * PIXELS * sizeof *x);
    void *buf = NULL, *xt = malloc((size_t)BATCH * PIXELS * esize); /* x in dtype t */
    int32_t *y = malloc((size_t)BATCH * sizeof *y);
    int status = !params || !grads || !outs || !x || !xt || !y, n_outs = 0;
    for (int i = 0; i < n && !status; i++)
        params[i] = jg_param_at(g, i);
    jg_program *p = NULL;
    if (!status && jg_grad(g, loss, params, n, grads) == JG_OK) {
        outs[n_outs++] = loss;
        for (int i = 0; i < n; i++)
            if (grads[i])
                outs[n_outs++] = grads[i];
        p = jg_compile(g, outs, n_outs, &(jg_opts){ .mode = JG_MODE_TRAIN,
                                                    .num_threads = o->threads,
                                                    .vector_bits = o->vector_bits,
                                                    .passes_off = o->passes_off });
    }
    if (!status && !p) {
        fprintf(stderr, "bench_fashion: --export: %s\n", jg_errmsg(g));
        status = 1;
    }
    const char *source = status ? "" : export_batch(x, y);
    for (int i = 0; i < BATCH * PIXELS && !status; i++)
        if (t == JG_F64)
            ((double *)xt)[i] = x[i];
        else
            ((float *)xt)[i] = x[i];
    /* the parameters as initialised, before the run updates the running statistics */
    for (int i = 0; i < n && !status; i++) {
        jg_shape s = jg_node_shape(params[i]);
        size_t bytes = (size_t)jg_shape_numel(s) * esize;
        free(buf);
        status = !(buf = malloc(bytes)) ||
                 jg_param_get(g, jg_node_name(params[i]), buf, bytes) != JG_OK ||
                 write_npy(dir, "", jg_node_name(params[i]), t, s, buf);
    }
    status = status || write_npy(dir, "", "x", t, jg_shape(BATCH, PIXELS), xt) ||
             write_npy(dir, "", "y", JG_I32, jg_shape(BATCH), y);
    if (!status && (jg_program_set(p, "x", xt, (size_t)BATCH * PIXELS * esize) ||
                    jg_program_set(p, "y", y, (size_t)BATCH * sizeof *y) || jg_program_run(p))) {
        fprintf(stderr, "bench_fashion: --export: %s\n", jg_errmsg(p));
        status = 1;
    }
    union { float f; double d; } l = { 0 };
    status = status || jg_program_get(p, 0, &l, esize) ||
             write_npy(dir, "", "loss", t, jg_shape(1), &l);
    for (int i = 0, k = 1; i < n && !status; i++) {
        jg_shape s = jg_node_shape(params[i]);
        size_t bytes = (size_t)jg_shape_numel(s) * esize;
        free(buf);
        status = !(buf = malloc(bytes));
        if (!status && grads[i])
            status = jg_program_get(p, k++, buf, bytes) ||
                     write_npy(dir, "grad.", jg_node_name(params[i]), t, s, buf);
        else if (!status) /* state the run may have updated: the running statistics */
            status = jg_param_get(g, jg_node_name(params[i]), buf, bytes) ||
                     write_npy(dir, "after.", jg_node_name(params[i]), t, s, buf);
    }
    if (!status)
        printf("bench_fashion: --export (%s): %d parameters, %d gradients, loss %.6f, batch of "
               "%d (%s) -> %s\n", jg_dtype_str(t), n, n_outs - 1, t == JG_F64 ? l.d : l.f,
               BATCH, source, dir);
    else if (p)
        fprintf(stderr, "bench_fashion: --export: %s\n", jg_errmsg(p));
    free(buf), free(x), free(xt), free(y), free(params), free(grads), free(outs);
    jg_program_free(p);
    jg_graph_free(g);
    return status;
}

/* ---------------------------------------------------------------- main */

static int parse(int argc, char **argv, options *o)
{
    *o = (options){ .steps = 30, .warmup = 5, .threads = 2 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_fashion: %s: unknown option or missing value\n", a);
            return 2;
        }
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--export")) o->export_dir = v;
        else if (!strcmp(a, "--export-f32")) o->export_f32 = atoi(v) != 0;
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--warmup")) o->warmup = atoi(v);
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--profile")) o->profile = atoi(v) != 0;
        else if (!strcmp(a, "--vector-bits")) o->vector_bits = atoi(v);
        else if (!strcmp(a, "--passes-off")) o->passes_off = v;
        else {
            fprintf(stderr, "bench_fashion: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (o->steps < 1 || o->warmup < 0 || o->threads < 1) {
        fprintf(stderr, "bench_fashion: steps and threads must be >= 1, warmup >= 0\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    options o;
    int status = parse(argc, argv, &o);
    if (status)
        return status;
    if (o.export_dir)
        return export_cnn(o.export_dir, &o);
    for (int i = 0; i < N_MODELS; i++) {
        const model *m = &MODELS[i];
        if (o.model) {
            if (!strcmp(o.model, m->name))
                return bench_model(m, &o);
            continue;
        }
        /* each model in a child of its own, so that the peak resident sets do not mix */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            _exit(bench_model(m, &o));
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "bench_fashion: the %s run failed\n", m->name);
            status = 1;
        }
    }
    if (o.model) {
        fprintf(stderr, "bench_fashion: unknown model %s (mlp, cnn or rnn)\n", o.model);
        return 2;
    }
    return status;
}
