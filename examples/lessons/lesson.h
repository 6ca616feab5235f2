/* What the lesson programs share (examples/lessons/NN_name.c, one per lesson of
 * ../shared/LESSONS.md, each built as lesson_NN_name): options, real data (Fashion-MNIST,
 * Debian word lists, English prose), a small classifier trainer, a table printer and the
 * verdict line. A lesson measures, then decides:
 *
 *     lesson_ctx c;
 *     if (lesson_init(&c, argc, argv, 14, "relu-then-sigmoid")) return 2;
 *     ... measure, lesson_row(...) ...
 *     return lesson_verdict(&c, accuracy < 0.2 && lint_fired, "accuracy %.3f ...", ...);
 *
 * Options every lesson takes: --quick (seconds, small subsets: what `make check` runs),
 * --out DIR (images and plots; default "lessons-out"), --data DIR (Fashion-MNIST),
 * --threads T. The verdict is the last line printed:
 *
 *     lesson 14 relu-then-sigmoid: HOLDS (accuracy 0.100 = majority class; lint fired: yes)
 */
#ifndef LESSON_H
#define LESSON_H

#include "jitgrad.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct lesson_ctx {
    int number;
    const char *name;
    bool quick;
    const char *out, *data;
    int threads;
    double t0;
} lesson_ctx;

/* Parses the options and creates the output directory; prints the lesson's title. Returns
 * 0, or 2 after printing what is wrong; --help prints the options and exits with 0. */
int lesson_init(lesson_ctx *c, int argc, char **argv, int number, const char *name);
/* Prints the verdict line (HOLDS when holds, else DOES NOT HOLD) with the formatted key
 * numbers, and returns the exit status: 0 either way (a lesson that does not hold is a
 * result, not a failure). */
int lesson_verdict(const lesson_ctx *c, bool holds, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fails the lesson: prints "lesson NN name: ERROR (...)" and returns 1. */
int lesson_fail(const lesson_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "<out>/<file>" into buf. */
const char *lesson_path(const lesson_ctx *c, const char *file, char *buf, size_t size);
/* Seconds since lesson_init. */
double lesson_seconds(const lesson_ctx *c);

/* ---------------------------------------------------------------- Fashion-MNIST */

typedef struct lesson_data {
    jg_array xtr, ytr, xte, yte;       /* images [n, 28, 28] in [0, 1], labels i32 */
    jg_dataset *train_all, *test_all;
    jg_dataset *train, *test;          /* the first n_train / n_test samples */
} lesson_data;

/* Loads Fashion-MNIST; n_train / n_test <= 0 mean all. Returns 0, or 1 after printing why. */
int lesson_fashion(const lesson_ctx *c, int64_t n_train, int64_t n_test, lesson_data *d);
void lesson_data_free(lesson_data *d);
/* Class names, 0..9. */
extern const char *const LESSON_CLASSES[10];

/* ---------------------------------------------------------------- training a classifier */

/* images [batch, 784] -> logits [batch, classes]; finds its parameters by name the second
 * time (for the evaluation graph). arg is the lesson's own. */
typedef jg_node *(*lesson_model)(jg_graph *g, jg_node *images, int batch, void *arg);

typedef struct lesson_fit {
    lesson_model model;
    void *arg;
    jg_optimizer optimizer;
    int batch, epochs;
    bool shuffle;                 /* default false: set it (most lessons want it) */
    uint64_t seed;                /* graph seed (initialisers, dropout); 0 means 1 */
    const jg_augment_opts *augment; /* NULL: none */
    double clip_norm;             /* 0: none */
    double clip_value;            /* 0: none (clips each gradient element to +-clip_value) */
    /* Filled in by lesson_train: */
    double loss[256];             /* mean training loss per epoch */
    double test_accuracy[256];    /* after each epoch */
    double train_accuracy;        /* after the last epoch (evaluation mode, training set) */
    double seconds;
    bool diverged;                /* a loss became NaN or inf (training stopped there) */
    int epochs_run;
} lesson_fit;

/* Trains a fresh model (its own graph) on train, evaluates on test after every epoch.
 * Returns 0, or 1 after printing why. If g_out is not NULL the graph is kept there (the
 * caller frees it) with the evaluation program in *eval_out. */
int lesson_train(const lesson_ctx *c, lesson_fit *f, jg_dataset *train, jg_dataset *test,
                 jg_graph **g_out, jg_program **eval_out);
/* Accuracy of an evaluation program (input "x_eval" [batch, 784], output 0 the logits)
 * over ds; the last batch is padded. */
double lesson_accuracy(jg_program *eval, jg_dataset *ds, int batch);

/* A dense layer x @ W + b named "<name>.w"/"<name>.b" (found by name when it exists). */
jg_node *lesson_linear(jg_graph *g, const char *name, jg_node *x, int in, int out, jg_init init);
/* conv 3x3 (padding 1) + bias "<name>.w"/"<name>.b" (He-normal, found by name when they
 * exist), ReLU, 2x2 max-pool: [N, in, H, W] -> [N, out, H/2, W/2]. */
jg_node *lesson_conv(jg_graph *g, const char *name, jg_node *x, int in, int out);

/* A copy of the whole parameter store, to start several runs from the same weights (and
 * optimiser state). take: 0, or 1 when out of memory or a read failed; restore: 0 or 1. */
typedef struct lesson_snapshot {
    int n;
    void **data;
    size_t *bytes;
} lesson_snapshot;
int lesson_snapshot_take(jg_graph *g, lesson_snapshot *s);
int lesson_snapshot_restore(jg_graph *g, const lesson_snapshot *s);
void lesson_snapshot_free(lesson_snapshot *s);

/* ---------------------------------------------------------------- tables */

/* Prints a header line of column names and a rule under it; rows then use lesson_row. */
void lesson_table(const char *const *columns, int n);
void lesson_row(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
