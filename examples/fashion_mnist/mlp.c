/* Fashion-MNIST, the benchmark table's MLP row (256-128-100, 0.8833): 784-256-128-100-10 with
 * ReLU and dropout 0.2 after each hidden layer; Adam with a cosine-decayed rate; training
 * images flipped left-right. 40 epochs by default (about half a minute). Options: fashion.h. */
#include "fashion.h"

#include <stdio.h>

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

static jg_node *mlp(jg_graph *g, jg_node *images, int batch)
{
    (void)batch;
    jg_node *h = jg_dropout(jg_relu(linear(g, "fc1", images, 784, 256)), 0.2);
    h = jg_dropout(jg_relu(linear(g, "fc2", h, 256, 128)), 0.2);
    h = jg_dropout(jg_relu(linear(g, "fc3", h, 128, 100)), 0.2);
    return linear(g, "fc4", h, 100, 10);
}

int main(int argc, char **argv)
{
    fm_spec spec = {
        .name = "mlp",
        .description = "MLP 784-256-128-100-10, ReLU, dropout 0.2, Adam, cosine rate",
        .model = mlp,
        .optimizer = jg_adam(1e-3),
        .augment = { .hflip_prob = 0.5 },
        .epochs = 40,
        .batch = 128,
        .cosine_min_lr = 1e-5,
    };
    return fm_main(argc, argv, &spec);
}
