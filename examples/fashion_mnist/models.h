/* The three Fashion-MNIST models, shared by the examples (mlp.c, cnn.c, rnn.c) and by the
 * PyTorch comparison (bench/bench_fashion.c; bench/torch/models.py is their PyTorch twin,
 * layer for layer: change both together). Each maps images [batch, 784] (pixels in [0, 1])
 * to logits [batch, 10] and finds its parameters by name (jg_param_find) when they exist, so
 * a training and an evaluation graph built from one jg_graph share them. */
#ifndef FASHION_MODELS_H
#define FASHION_MODELS_H

#include "jitgrad.h"

/* The Adam learning rates the examples train with (their default --lr). */
#define FM_MLP_LR 1e-3
#define FM_CNN_LR 1e-3
#define FM_RNN_LR 2e-3

/* 784-256-128-100-10, ReLU and dropout 0.2 after each hidden layer (He-normal weights). */
jg_node *fm_mlp(jg_graph *g, jg_node *images, int batch);

/* Two blocks of conv 3x3 (padding 1, no bias) -> batchnorm (momentum 0.1, eps 1e-5) -> ReLU
 * -> 2x2 max-pool, 64 and 128 channels; dense 6272 -> 256, ReLU, dropout 0.3; dense -> 10. */
jg_node *fm_cnn(jg_graph *g, jg_node *images, int batch);
/* The same with another dropout probability (0: none, for exact comparisons). */
jg_node *fm_cnn_dropout(jg_graph *g, jg_node *images, int batch, double dropout);

/* Two stacked LSTMs of 128 over the 28 rows (28 pixels each): the first's states feed the
 * second, whose last state goes through dropout 0.2 into the classifier (Xavier-uniform). */
jg_node *fm_rnn(jg_graph *g, jg_node *images, int batch);

#endif
