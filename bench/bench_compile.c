/* Compile-time benchmark: the training steps of the Fashion-MNIST models of the examples
 * (examples/fashion_mnist/models.c: the MLP, the CNN of `make demo`, the two-layer LSTM;
 * Adam through jg_compile_train, batch 128, 2 threads). Per model:
 *
 *   compile_<m>_train_cold        no disk cache nor the process's (fresh_compile): the median
 *                                 over REPEATS fresh graphs of the
 *                                 wall time of jg_compile_train (gradients, optimiser, lowering,
 *                                 fusion, LLVM), with that run's jg_program_stats breakdown
 *                                 (passes / build / optimise / codegen / total ms; optimise and
 *                                 codegen summed over kernels, so above the wall time when
 *                                 kernels compile in parallel); the process's first compile
 *                                 (LLVM start-up) is a warm-up, shown as first_in_process_ms
 *   compile_<m>_train_disk_cache  cache_dir = a fresh mkdtemp directory: one compile fills it
 *                                 (fill_ms), then the median over REPEATS fresh graphs of
 *                                 compiles that read it; ref = the cold median of this run,
 *                                 ratio = cold / cached (the speed-up)
 *   compile_<m>_train_second      a second program of the same graph while the first lives,
 *                                 no disk cache (what an evaluation or batch-1 program of a
 *                                 model costs after its training program): its kernels come
 *                                 from the process's cache; the ones of the first too, when an
 *                                 earlier line compiled the same model
 *
 * Lines carry the targets of the convolution/recurrent issue (target_ms: cold CNN 400, LSTM
 * 1000; cached and second 50) and whether they are met. `bench_compile mlp` (or cnn, rnn)
 * runs one model. $JITGRAD_CACHE_DIR is unset first so the cold figure never reads a disk
 * cache. The temporary directory is removed at the end. */
#define _XOPEN_SOURCE 700 /* nftw */

#include "jitgrad.h"

#include "bench_util.h"
#include "models.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPEATS 5
#define BATCH 128
#define THREADS 2

typedef struct sample {
    double wall_ms;
    jg_program_stats st;
} sample;

typedef struct model {
    const char *name;
    jg_node *(*fn)(jg_graph *g, jg_node *images, int batch);
    double lr, cold_target_ms; /* cold_target_ms 0: none */
} model;

static const model models[] = {
    { "mlp", fm_mlp, FM_MLP_LR, 0 },
    { "cnn", fm_cnn, FM_CNN_LR, 400 },
    { "rnn", fm_rnn, FM_RNN_LR, 1000 },
};

static jg_graph *model_graph(const model *m, jg_node **loss)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 42);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, 784));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    *loss = jg_cross_entropy(m->fn(g, x, BATCH), y);
    return g;
}

static jg_program *compile_timed(const model *m, jg_graph *g, jg_node *loss, const char *name,
                                 const char *cache_dir, bool fresh, sample *out)
{
    double t0 = bu_now();
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(m->lr), .name = name,
        .compile = { .num_threads = THREADS, .cache_dir = cache_dir, .fresh_compile = fresh } });
    out->wall_ms = 1e3 * (bu_now() - t0);
    if (!p)
        fprintf(stderr, "bench_compile: %s: %s\n", m->name, jg_errmsg(g));
    else
        jg_program_stats_get(p, &out->st);
    return p;
}

/* A fresh graph with the model's training step; times jg_compile_train. */
static int compile_once(const model *m, const char *cache_dir, bool fresh, sample *out)
{
    jg_node *loss;
    jg_graph *g = model_graph(m, &loss);
    jg_program *p = compile_timed(m, g, loss, "opt", cache_dir, fresh, out);
    jg_program_free(p);
    jg_graph_free(g);
    return p ? 0 : 1;
}

/* A second training program of the same graph (its own optimiser state) while the first
 * lives. */
static int compile_second(const model *m, sample *out)
{
    jg_node *loss;
    jg_graph *g = model_graph(m, &loss);
    sample first;
    jg_program *p1 = compile_timed(m, g, loss, "opt", NULL, false, &first);
    jg_program *p2 = p1 ? compile_timed(m, g, loss, "opt2", NULL, false, out) : NULL;
    jg_program_free(p2);
    jg_program_free(p1);
    jg_graph_free(g);
    return p2 ? 0 : 1;
}

/* The sample with the median wall time (its breakdown is then a consistent set). */
static const sample *median_sample(sample *s, int n)
{
    double w[REPEATS];
    for (int i = 0; i < n; i++)
        w[i] = s[i].wall_ms;
    double m = bu_median(w, n); /* n odd: one of the samples */
    for (int i = 0; i < n; i++)
        if (s[i].wall_ms == m)
            return &s[i];
    return &s[0];
}

static void breakdown(bu_line *l, const jg_program_stats *st)
{
    bu_num(l, "stats_total_ms", st->total_ms);
    bu_num(l, "passes_ms", st->passes_ms);
    bu_num(l, "build_ms", st->build_ms);
    bu_num(l, "optimise_ms", st->optimise_ms);
    bu_num(l, "codegen_ms", st->codegen_ms);
    bu_int(l, "kernels", st->kernels);
    bu_int(l, "cache_hits", st->cache_hits);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    if (remove(path) != 0)
        perror(path);
    return 0;
}

static void target(bu_line *l, double value, double target_ms)
{
    if (target_ms <= 0)
        return;
    bu_num(l, "target_ms", target_ms);
    bu_str(l, "met", value <= target_ms ? "yes" : "no");
}

static int bench_model(const model *m)
{
    sample cold[REPEATS], warm[REPEATS], first, fill, second;
    if (compile_once(m, NULL, true, &first)) /* warm-up: LLVM's one-time initialisation */
        return 1;
    for (int r = 0; r < REPEATS; r++)
        if (compile_once(m, NULL, true, &cold[r]))
            return 1;
    const sample *c = median_sample(cold, REPEATS);
    char name[64];
    bu_line l;
    snprintf(name, sizeof name, "compile_%s_train_cold", m->name);
    bu_begin(&l, name, c->wall_ms, "ms");
    breakdown(&l, &c->st);
    bu_num(&l, "first_in_process_ms", first.wall_ms);
    target(&l, c->wall_ms, m->cold_target_ms);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);

    char dir[] = "/tmp/jg-bench-cache-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_compile: mkdtemp");
        return 1;
    }
    int status = compile_once(m, dir, false, &fill);
    for (int r = 0; r < REPEATS && !status; r++)
        status = compile_once(m, dir, false, &warm[r]);
    if (!status) {
        const sample *w = median_sample(warm, REPEATS);
        snprintf(name, sizeof name, "compile_%s_train_disk_cache", m->name);
        bu_begin(&l, name, w->wall_ms, "ms");
        snprintf(name, sizeof name, "compile_%s_train_cold", m->name);
        bu_ref(&l, name, c->wall_ms, c->wall_ms / w->wall_ms);
        breakdown(&l, &w->st);
        bu_num(&l, "fill_ms", fill.wall_ms);
        target(&l, w->wall_ms, m->cold_target_ms ? 50 : 0);
        bu_num(&l, "load_avg_1m", bu_loadavg());
        bu_end(&l);
    }
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (!status && !(status = compile_second(m, &second))) {
        snprintf(name, sizeof name, "compile_%s_train_second", m->name);
        bu_begin(&l, name, second.wall_ms, "ms");
        breakdown(&l, &second.st);
        target(&l, second.wall_ms, m->cold_target_ms ? 50 : 0);
        bu_num(&l, "load_avg_1m", bu_loadavg());
        bu_end(&l);
    }
    return status;
}

int main(int argc, char **argv)
{
    unsetenv("JITGRAD_CACHE_DIR");
    int status = 0, ran = 0;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (argc < 2 || strcmp(argv[1], models[i].name) == 0) {
            status |= bench_model(&models[i]);
            ran++;
        }
    if (!ran) {
        fprintf(stderr, "usage: bench_compile [mlp|cnn|rnn]\n");
        return 2;
    }
    return status;
}
