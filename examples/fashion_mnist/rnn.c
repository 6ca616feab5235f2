/* Fashion-MNIST with a recurrent model, as the benchmark table's GRU rows (0.888, 0.897 with
 * dropout): an LSTM of 128 reads the image row by row (28 steps of 28 pixels), many-to-one,
 * its last state through dropout into the classifier; Adam with a cosine-decayed rate;
 * training images flipped left-right. 20 epochs by default. Options: fashion.h. */
#include "fashion.h"

enum { HIDDEN = 128 };

static jg_node *rnn(jg_graph *g, jg_node *images, int batch)
{
    jg_node *rows = jg_reshape(images, jg_shape(batch, 28, 28));
    jg_node *h = jg_dropout(jg_rnn(g, JG_LSTM, "lstm", rows, HIDDEN, NULL), 0.2);
    jg_node *w = jg_param_find(g, "fc.w"), *b = jg_param_find(g, "fc.bias");
    if (!w) {
        w = jg_param(g, "fc.w", jg_shape(HIDDEN, 10), jg_xavier_uniform());
        b = jg_param(g, "fc.bias", jg_shape(10), jg_zeros());
    }
    return jg_add(jg_matmul(h, w), b);
}

int main(int argc, char **argv)
{
    fm_spec spec = {
        .name = "rnn",
        .description = "LSTM 128 over the 28 rows, last state, dropout 0.2, Adam, cosine rate",
        .model = rnn,
        .optimizer = jg_adam(2e-3),
        .augment = { .hflip_prob = 0.5 },
        .epochs = 20,
        .batch = 128,
        .cosine_min_lr = 1e-5,
    };
    return fm_main(argc, argv, &spec);
}
