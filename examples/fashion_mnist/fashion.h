/* What the Fashion-MNIST examples (mlp.c, cnn.c, rnn.c) share: a model is a function from a
 * batch of images to logits, and fm_main does the rest for any of them: options, data,
 * training with a progress bar, test accuracy per epoch, a checkpoint, a metrics CSV and its
 * plot, a PNG of misclassified test images and a confusion matrix, --resume, and Ctrl-C
 * saving a checkpoint before it exits.
 *
 *   <example> [--epochs N] [--batch B] [--lr LR] [--threads T] [--limit N] [--augment 0|1]
 *             [--data DIR] [--out DIR] [--resume] [--quick] [--profile] [--help]
 *
 * --quick trains one epoch on 2,048 images and tests on 1,000 (seconds: what `make check`
 * runs); --limit N trains on the first N images; --profile prints the training step's
 * kernels, slowest first, after the first epoch. Files go to --out (default "."; created
 * when missing, its parent must exist), named
 * after the example: <name>.safetensors, <name>.csv, <name>.svg, <name>_misclassified.png,
 * <name>_confusion.csv. */
#ifndef FASHION_H
#define FASHION_H

#include "jitgrad.h"

/* images [batch, 784] (pixels in [0, 1]) -> logits [batch, 10]. Called once for the
 * training graph and once for the evaluation graph: it must find its parameters by name
 * (jg_param_find) the second time, so both programs share them. */
typedef jg_node *(*fm_model_fn)(jg_graph *g, jg_node *images, int batch);

typedef struct fm_spec {
    const char *name;        /* file names and messages: "cnn" */
    const char *description; /* printed first */
    fm_model_fn model;
    jg_optimizer optimizer;  /* its lr is the default --lr */
    jg_augment_opts augment; /* applied to training batches unless --augment 0 */
    int epochs, batch;       /* defaults */
    double cosine_min_lr;    /* > 0: cosine decay of the rate over the run down to this */
} fm_spec;

/* Parses the options and runs; returns the process exit status (0, 1 on errors, 2 on bad
 * options, 130 after Ctrl-C with the checkpoint saved). */
int fm_main(int argc, char **argv, const fm_spec *spec);

#endif
