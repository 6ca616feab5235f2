/* Training step time of an LSTM: hidden 128, 28 steps of 28 features (Fashion-MNIST read row
 * by row, as one layer of examples/fashion_mnist/rnn.c), batch 128, a linear layer to 10 classes, cross
 * entropy and Adam: forward, backward and update in one program run. Random inputs (the data
 * files are not needed: the time does not depend on the values).
 *
 * Prints {"bench": "lstm_train_step", "value": <median ms>, "unit": "ms", ...} with the kernel
 * count, the thread count and the compile time as extra fields. No reference is measured
 * (PyTorch is not installable here). */
#include "jitgrad.h"

#include "bench_util.h"

#define BATCH 128
#define STEPS 28
#define FEATURES 28
#define HIDDEN 128
#define CLASSES 10
#define WARMUP 3
#define REPEATS 20

static void step(void *ctx)
{
    jg_program *p = ctx;
    if (jg_program_run(p) != JG_OK) {
        fprintf(stderr, "bench_lstm: %s\n", jg_errmsg(p));
        exit(1);
    }
}

int main(void)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 1);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, STEPS, FEATURES));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *h = jg_rnn(g, JG_LSTM, "lstm", x, HIDDEN, NULL);
    jg_node *w = jg_param(g, "fc.w", jg_shape(HIDDEN, CLASSES), jg_xavier_uniform());
    jg_node *b = jg_param(g, "fc.b", jg_shape(CLASSES), jg_zeros());
    jg_node *loss = jg_cross_entropy(jg_add(jg_matmul(h, w), b), y);
    double t0 = bu_now();
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(1e-3) });
    double compile_s = bu_now() - t0;
    if (!p) {
        fprintf(stderr, "bench_lstm: %s\n", jg_errmsg(g));
        jg_graph_free(g);
        return 1;
    }
    static float xs[BATCH * STEPS * FEATURES];
    static int32_t ys[BATCH];
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        xs[i] = (float)(s >> 40) / (float)(1 << 24);
    }
    for (int i = 0; i < BATCH; i++)
        ys[i] = i % CLASSES;
    if (jg_program_set(p, "x", xs, sizeof xs) || jg_program_set(p, "y", ys, sizeof ys)) {
        fprintf(stderr, "bench_lstm: %s\n", jg_errmsg(p));
        return 1;
    }
    double ms = 1e3 * bu_time_median(step, p, WARMUP, REPEATS);
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    bu_line l;
    bu_begin(&l, "lstm_train_step", ms, "ms");
    bu_int(&l, "batch", BATCH);
    bu_int(&l, "steps", STEPS);
    bu_int(&l, "hidden", HIDDEN);
    bu_int(&l, "kernels", st.kernels);
    bu_int(&l, "threads", st.threads);
    bu_num(&l, "compile_s", compile_s);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);
    jg_program_free(p);
    jg_graph_free(g);
    return 0;
}
