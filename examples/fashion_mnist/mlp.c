/* Fashion-MNIST, the benchmark table's MLP row (256-128-100, 0.8833): 784-256-128-100-10 with
 * ReLU and dropout 0.2 after each hidden layer; Adam with a cosine-decayed rate; training
 * images flipped left-right. 40 epochs by default (about half a minute).
 * Options: fashion.h; the model: models.c. */
#include "fashion.h"
#include "models.h"

int main(int argc, char **argv)
{
    fm_spec spec = {
        .name = "mlp",
        .description = "MLP 784-256-128-100-10, ReLU, dropout 0.2, Adam, cosine rate",
        .model = fm_mlp,
        .optimizer = jg_adam(FM_MLP_LR),
        .augment = { .hflip_prob = 0.5 },
        .epochs = 40,
        .batch = 128,
        .cosine_min_lr = 1e-5,
    };
    return fm_main(argc, argv, &spec);
}
