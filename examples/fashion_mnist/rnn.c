/* Fashion-MNIST with a recurrent model, as the benchmark table's GRU rows (0.888, 0.897 with
 * dropout): two stacked LSTMs of 128 read the image row by row (28 steps of 28 pixels),
 * many-to-one, the second's last state through dropout into the classifier (one LSTM of 128
 * reached 0.8986 after 20 epochs); Adam with a cosine-decayed rate;
 * training images flipped left-right. 20 epochs by default.
 * Options: fashion.h; the model: models.c. */
#include "fashion.h"
#include "models.h"

int main(int argc, char **argv)
{
    fm_spec spec = {
        .name = "rnn",
        .description = "2 stacked LSTMs of 128 over the 28 rows, last state, dropout 0.2, Adam, cosine rate",
        .model = fm_rnn,
        .optimizer = jg_adam(FM_RNN_LR),
        .augment = { .hflip_prob = 0.5 },
        .epochs = 20,
        .batch = 128,
        .cosine_min_lr = 1e-5,
    };
    return fm_main(argc, argv, &spec);
}
