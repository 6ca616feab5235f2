/* Compile-time benchmark: the training step of the demo MLP 784-256-128-10 (ReLU, cross
 * entropy, SGD with momentum 0.9 through jg_compile_train, batch 128, 2 threads): the
 * project's first demo model.
 *
 *   compile_mlp_train_cold        no disk cache: the median over REPEATS fresh graphs of the
 *                                 wall time of jg_compile_train (gradients, optimiser, lowering,
 *                                 fusion, LLVM), with that run's jg_program_stats breakdown
 *                                 (passes / build / optimise / codegen / total ms); the
 *                                 process's first compile (LLVM start-up) is a warm-up, shown
 *                                 as first_in_process_ms
 *   compile_mlp_train_disk_cache  cache_dir = a fresh mkdtemp directory: one compile fills it
 *                                 (fill_ms), then the median over REPEATS fresh graphs of
 *                                 compiles that read it; ref = the cold median of this run,
 *                                 ratio = cold / cached (the speed-up)
 *
 * The in-memory kernel cache belongs to a program's session, so a fresh graph and program
 * start cold; cache_hits on a cold compile are kernels deduplicated within the program.
 * $JITGRAD_CACHE_DIR is unset first so the cold figure never reads a disk cache. The
 * temporary directory is removed at the end. */
#define _XOPEN_SOURCE 700 /* nftw */

#include "jitgrad.h"

#include "bench_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define REPEATS 5
#define BATCH 128
#define THREADS 2

typedef struct sample {
    double wall_ms;
    jg_program_stats st;
} sample;

/* A fresh graph with the demo's training step; returns the wall time of jg_compile_train. */
static int compile_once(const char *cache_dir, sample *out)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 42);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, 784));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *w1 = jg_param(g, "w1", jg_shape(784, 256), jg_he_normal());
    jg_node *b1 = jg_param(g, "b1", jg_shape(256), jg_zeros());
    jg_node *w2 = jg_param(g, "w2", jg_shape(256, 128), jg_he_normal());
    jg_node *b2 = jg_param(g, "b2", jg_shape(128), jg_zeros());
    jg_node *w3 = jg_param(g, "w3", jg_shape(128, 10), jg_xavier_uniform());
    jg_node *b3 = jg_param(g, "b3", jg_shape(10), jg_zeros());
    jg_node *h1 = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *h2 = jg_relu(jg_add(jg_matmul(h1, w2), b2));
    jg_node *loss = jg_cross_entropy(jg_add(jg_matmul(h2, w3), b3), y);

    double t0 = bu_now();
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(0.05, 0.9),
        .compile = { .num_threads = THREADS, .cache_dir = cache_dir } });
    out->wall_ms = 1e3 * (bu_now() - t0);
    if (!p) {
        fprintf(stderr, "bench_compile: %s\n", jg_errmsg(g));
        jg_graph_free(g);
        return 1;
    }
    jg_program_stats_get(p, &out->st);
    jg_program_free(p);
    jg_graph_free(g);
    return 0;
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

int main(void)
{
    unsetenv("JITGRAD_CACHE_DIR");
    sample cold[REPEATS], warm[REPEATS], first, fill;
    if (compile_once(NULL, &first)) /* warm-up: LLVM's one-time initialisation */
        return 1;
    for (int r = 0; r < REPEATS; r++)
        if (compile_once(NULL, &cold[r]))
            return 1;
    const sample *c = median_sample(cold, REPEATS);
    bu_line l;
    bu_begin(&l, "compile_mlp_train_cold", c->wall_ms, "ms");
    breakdown(&l, &c->st);
    bu_num(&l, "first_in_process_ms", first.wall_ms);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);

    char dir[] = "/tmp/jg-bench-cache-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("bench_compile: mkdtemp");
        return 1;
    }
    int status = compile_once(dir, &fill);
    for (int r = 0; r < REPEATS && !status; r++)
        status = compile_once(dir, &warm[r]);
    if (!status) {
        const sample *w = median_sample(warm, REPEATS);
        bu_begin(&l, "compile_mlp_train_disk_cache", w->wall_ms, "ms");
        bu_ref(&l, "compile_mlp_train_cold", c->wall_ms, c->wall_ms / w->wall_ms);
        breakdown(&l, &w->st);
        bu_num(&l, "fill_ms", fill.wall_ms);
        bu_num(&l, "load_avg_1m", bu_loadavg());
        bu_end(&l);
    }
    nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    return status;
}
