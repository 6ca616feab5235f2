/* Fashion-MNIST, the benchmark table's "2 Conv + pooling + BatchNorm" row (0.934): two blocks
 * of 3x3 convolution, batchnorm, ReLU and 2x2 max-pooling (32 and 64 channels), then a hidden
 * layer of 256 with dropout and the classifier; Adam with a cosine-decayed rate; training
 * images flipped left-right and shifted by up to 2 pixels. This is `make demo`: three epochs
 * by default (a few minutes); the table's figure needs --epochs 30. Options: fashion.h. */
#include "fashion.h"

#include <stdio.h>

/* conv 3x3 (padding 1, no bias: batchnorm's beta is the bias) -> batchnorm -> relu -> pool */
static jg_node *block(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    char w_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    jg_node *w = jg_param_find(g, w_name);
    if (!w)
        w = jg_param(g, w_name, jg_shape(out, in, 3, 3), jg_he_normal());
    jg_node *c = jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 });
    return jg_max_pool2d(jg_relu(jg_batchnorm(name, c, 0.1, 1e-5)), 2, 2, 2, 2, 0, 0);
}

static jg_node *linear(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    char w_name[64], b_name[64];
    snprintf(w_name, sizeof w_name, "%s.w", name);
    snprintf(b_name, sizeof b_name, "%s.bias", name);
    jg_node *w = jg_param_find(g, w_name), *b = jg_param_find(g, b_name);
    if (!w) {
        w = jg_param(g, w_name, jg_shape(in, out), jg_he_normal());
        b = jg_param(g, b_name, jg_shape(out), jg_zeros());
    }
    return jg_add(jg_matmul(x, w), b);
}

static jg_node *cnn(jg_graph *g, jg_node *images, int batch)
{
    jg_node *x = jg_reshape(images, jg_shape(batch, 1, 28, 28));
    jg_node *h = block(g, "conv1", x, 1, 32);   /* [B, 32, 14, 14] */
    h = block(g, "conv2", h, 32, 64);           /* [B, 64, 7, 7] */
    h = jg_reshape(h, jg_shape(batch, 64 * 7 * 7));
    h = jg_dropout(jg_relu(linear(g, "fc1", h, 64 * 7 * 7, 256)), 0.4);
    return linear(g, "fc2", h, 256, 10);
}

int main(int argc, char **argv)
{
    fm_spec spec = {
        .name = "cnn",
        .description = "CNN: 2 x (conv 3x3 + batchnorm + ReLU + max-pool), 32 and 64 channels, "
                       "dense 256 + dropout 0.4, Adam, cosine rate",
        .model = cnn,
        .optimizer = jg_adam(1e-3),
        .augment = { .hflip_prob = 0.5, .crop_pad = 2 },
        .epochs = 3,
        .batch = 128,
        .cosine_min_lr = 1e-5,
    };
    return fm_main(argc, argv, &spec);
}
