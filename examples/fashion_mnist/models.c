/* The Fashion-MNIST models (see models.h). Parameters take the images' dtype: f32 for
 * training, f64 for the exact comparison with PyTorch (bench_fashion --export). */
#include "models.h"

#include <stdio.h>

/* x [B, in] @ w [in, out] + bias [out]; w and bias are "<name>.w" and "<name>.bias". */
static jg_node *linear(jg_graph *g, const char *name, jg_node *x, int in, int out,
                       jg_init init)
{
    char w_name[64], b_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.bias", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param_as(g, w_name, jg_node_dtype(x), jg_shape(in, out), init);
        b = jg_param_as(g, b_name, jg_node_dtype(x), jg_shape(out), jg_zeros());
    }
    return jg_add(jg_matmul(x, w), b);
}

jg_node *fm_mlp(jg_graph *g, jg_node *images, int batch)
{
    (void)batch;
    jg_node *h = jg_dropout(jg_relu(linear(g, "fc1", images, 784, 256, jg_he_normal())), 0.2);
    h = jg_dropout(jg_relu(linear(g, "fc2", h, 256, 128, jg_he_normal())), 0.2);
    h = jg_dropout(jg_relu(linear(g, "fc3", h, 128, 100, jg_he_normal())), 0.2);
    return linear(g, "fc4", h, 100, 10, jg_he_normal());
}

/* conv 3x3 (padding 1, no bias: batchnorm's beta is the bias) -> batchnorm -> relu -> pool */
static jg_node *block(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    char w_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    jg_node *w = jg_param_find(g, w_name);
    if (!w)
        w = jg_param_as(g, w_name, jg_node_dtype(x), jg_shape(out, in, 3, 3), jg_he_normal());
    jg_node *c = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    return jg_max_pool2d(jg_relu(jg_batchnorm(name, c, 0.1, 1e-5)), 2, 2, 2, 2, 0, 0);
}

jg_node *fm_cnn_dropout(jg_graph *g, jg_node *images, int batch, double dropout)
{
    jg_node *x = jg_reshape(images, jg_shape(batch, 1, 28, 28));
    jg_node *h = block(g, "conv1", x, 1, 64);   /* [B, 64, 14, 14] */
    h = block(g, "conv2", h, 64, 128);          /* [B, 128, 7, 7] */
    h = jg_reshape(h, jg_shape(batch, 128 * 7 * 7));
    h = jg_dropout(jg_relu(linear(g, "fc1", h, 128 * 7 * 7, 256, jg_he_normal())), dropout);
    return linear(g, "fc2", h, 256, 10, jg_he_normal());
}

jg_node *fm_cnn(jg_graph *g, jg_node *images, int batch)
{
    return fm_cnn_dropout(g, images, batch, 0.3);
}

enum { HIDDEN = 128 };

jg_node *fm_rnn(jg_graph *g, jg_node *images, int batch)
{
    jg_node *rows = jg_reshape(images, jg_shape(batch, 28, 28));
    jg_node *seq = jg_rnn(g, JG_LSTM, "lstm1", rows, HIDDEN,
                          &(jg_rnn_opts){ .return_sequences = true });
    jg_node *h = jg_dropout(jg_rnn(g, JG_LSTM, "lstm2", seq, HIDDEN, NULL), 0.2);
    return linear(g, "fc", h, HIDDEN, 10, jg_xavier_uniform());
}
