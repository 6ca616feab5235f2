/* Reproducibility: the same seed gives bit-identical training runs (initialisation,
 * dropout masks, loader order, reductions split over threads), a different seed does not. */
#include "support/support.h"

#include <stdlib.h>

TestSuite(determinism);

/* A small CNN with batchnorm and dropout, trained for a few steps on shuffled batches. */
static void train(uint64_t seed, int threads, float *w_out, size_t bytes)
{
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, seed);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 1, 8, 8));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(8));
    jg_node *k = jg_param(g, "k", jg_shape(4, 1, 3, 3), jg_he_normal());
    jg_node *h = jg_conv2d(x, k, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    h = jg_max_pool2d(jg_relu(jg_batchnorm("bn", h, 0.1, 1e-5)), 2, 2, 2, 2, 0, 0);
    h = jg_dropout(jg_reshape(h, jg_shape(8, 64)), 0.3);
    jg_node *w = jg_param(g, "w", jg_shape(64, 3), jg_xavier_uniform());
    jg_node *loss = jg_cross_entropy(jg_matmul(h, w), y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(1e-2), .compile = { .num_threads = threads } });
    cr_assert(p, "%s", jg_errmsg(g));
    float data[32 * 64];
    int32_t labels[32];
    for (int i = 0; i < 32 * 64; i++)
        data[i] = (float)((i * 37) % 17) / 17.0f;
    for (int i = 0; i < 32; i++)
        labels[i] = i % 3;
    jg_array xa = { JG_F32, jg_shape(32, 1, 8, 8), data }, ya = { JG_I32, jg_shape(32), labels };
    jg_dataset *ds;
    char err[256];
    cr_assert_eq(jg_dataset_new(&xa, &ya, &ds, err, sizeof err), JG_OK, "%s", err);
    jg_loader *ld = jg_loader_new(ds, 8, &(jg_loader_opts){ .shuffle = true, .seed = seed });
    float xb[8 * 64];
    int32_t yb[8];
    int n;
    for (int epoch = 0; epoch < 2; epoch++)
        while (jg_loader_next(ld, xb, yb, &n)) {
            jg_program_set(p, "x", xb, sizeof xb);
            jg_program_set(p, "y", yb, sizeof yb);
            cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        }
    cr_assert_eq(jg_param_get(g, "w", w_out, bytes), JG_OK);
    jg_loader_free(ld);
    jg_dataset_free(ds);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(determinism, the_same_seed_gives_bit_identical_training_runs)
{
    float a[192], b[192], c[192], d[192];
    train(11, 2, a, sizeof a);
    train(11, 2, b, sizeof b);
    train(11, 1, c, sizeof c);
    train(12, 2, d, sizeof d);
    cr_assert(memcmp(a, b, sizeof a) == 0, "same seed, same run");
    cr_assert(memcmp(a, c, sizeof a) == 0, "1 or 2 threads: the same bits");
    cr_assert(memcmp(a, d, sizeof a) != 0, "another seed, another run");
}
