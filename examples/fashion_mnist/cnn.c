/* Fashion-MNIST, the benchmark table's "2 Conv + pooling + BatchNorm" row (0.934): two blocks
 * of 3x3 convolution, batchnorm, ReLU and 2x2 max-pooling (32 and 64 channels), then a hidden
 * layer of 256 with dropout and the classifier; Adam with a cosine-decayed rate; training
 * images flipped left-right and shifted by up to 2 pixels. This is `make demo`: three epochs
 * by default (a few minutes); the table's figure needs --epochs 30.
 * Options: fashion.h; the model: models.c. */
#include "fashion.h"
#include "models.h"

int main(int argc, char **argv)
{
    fm_spec spec = {
        .name = "cnn",
        .description = "CNN: 2 x (conv 3x3 + batchnorm + ReLU + max-pool), 32 and 64 channels, "
                       "dense 256 + dropout 0.4, Adam, cosine rate",
        .model = fm_cnn,
        .optimizer = jg_adam(FM_CNN_LR),
        .augment = { .hflip_prob = 0.5, .crop_pad = 2 },
        .epochs = 3,
        .batch = 128,
        .cosine_min_lr = 1e-5,
    };
    return fm_main(argc, argv, &spec);
}
