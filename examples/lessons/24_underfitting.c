/* Lesson 24: high training error close to the validation error means under-fitting. If the
 * model cannot even fit the data it trains on, more data or more regularisation will not
 * help; the errors on the training and the validation set are both high and close together
 * (low variance, high bias). The cure is capacity: a bigger model, less regularisation,
 * longer training. Over-fitting is the opposite picture: low training error, a validation
 * error well above it.
 *
 * The fit report. Given training error E_t, validation error E_v and a target error E*
 * (what we aim for; 0.10 here, about what a good dense network reaches on Fashion-MNIST):
 * avoidable bias B = E_t - E*, variance V = E_v - E_t. It says "under-fitting" when
 * B > 0.02 and B >= V (the training error itself is the problem), "over-fitting" when
 * V > 0.02 and V > B, else "good fit".
 *
 * Experiment: Fashion-MNIST, 20000 training images (2000 in --quick) split 90/10 into
 * training and validation; SGD with momentum, same budget. Three models:
 *   small + heavy regularisation   784-16-10, coupled L2 0.05 (optimizer.l2), dropout 0.5
 *   small, no regularisation       784-16-10
 *   big, no regularisation         784-256-256-10
 * Criterion: HOLDS when the report calls the small regularised model "under-fitting" with
 * its train and validation errors within 2 points of each other, and the big model lowers
 * the training error by at least 5 points and the validation error too, with a report
 * that is not "under-fitting". Curves: 24_fit_curves.svg. */
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, MODELS = 3 };

static const double TARGET_ERROR = 0.10;

typedef struct spec {
    const char *name;
    int hidden, layers;
    double dropout, l2;
} spec;

static jg_node *mlp(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch;
    const spec *s = arg;
    jg_node *h = x;
    int in = PIXELS;
    for (int i = 0; i < s->layers; i++) {
        char name[16];
        snprintf(name, sizeof name, "fc%d", i + 1);
        h = jg_dropout(jg_relu(lesson_linear(g, name, h, in, s->hidden, jg_he_normal())),
                       s->dropout);
        in = s->hidden;
    }
    return lesson_linear(g, "out", h, in, 10, jg_xavier_uniform());
}

/* The fit report: a verdict word, and the avoidable bias and variance behind it. */
static const char *fit_report(double train_err, double val_err, double *bias, double *var)
{
    *bias = train_err - TARGET_ERROR;
    *var = val_err - train_err;
    if (*bias > 0.02 && *bias >= *var)
        return "under-fitting";
    if (*var > 0.02 && *var > *bias)
        return "over-fitting";
    return "good fit";
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 24, "underfitting"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2000 : 20000, 1024, &d))
        return 1;
    jg_dataset *train, *val;
    if (jg_dataset_split(d.train, 0.9, 24, &train, &val) != JG_OK)
        return lesson_fail(&c, "%s", jg_dataset_errmsg(d.train));
    spec specs[MODELS] = {
        { "small+heavy reg", 16, 1, 0.5, 0.05 },
        { "small", 16, 1, 0, 0 },
        { "big", 256, 2, 0, 0 },
    };
    lesson_fit fits[MODELS];
    double train_err[MODELS], val_err[MODELS], bias[MODELS], var[MODELS];
    const char *report[MODELS];
    int epochs = c.quick ? 2 : 10;
    for (int m = 0; m < MODELS; m++) {
        jg_optimizer o = jg_sgd(0.05, 0.9);
        o.l2 = specs[m].l2;
        fits[m] = (lesson_fit){ .model = mlp, .arg = &specs[m], .optimizer = o, .batch = 64,
                                .epochs = epochs, .shuffle = true, .seed = 24 };
        if (lesson_train(&c, &fits[m], train, val, NULL, NULL))
            return 1;
        train_err[m] = 1 - fits[m].train_accuracy;
        val_err[m] = 1 - fits[m].test_accuracy[fits[m].epochs_run - 1];
        report[m] = fit_report(train_err[m], val_err[m], &bias[m], &var[m]);
    }

    printf("%lld training / %lld validation images, %d epochs, SGD(0.05, momentum 0.9); "
           "target error %.2f\n", (long long)jg_dataset_size(train),
           (long long)jg_dataset_size(val), epochs, TARGET_ERROR);
    lesson_table((const char *[]){ "model", "train err", "val err", "bias", "variance",
                                   "report" }, 6);
    for (int m = 0; m < MODELS; m++)
        lesson_row("%-16s %-14.4f %-14.4f %-14.4f %-14.4f %s", specs[m].name, train_err[m],
                   val_err[m], bias[m], var[m], report[m]);

    double ep[256], curves[MODELS * 2][256];
    jg_series series[MODELS * 2];
    char labels[MODELS * 2][64];
    for (int e = 0; e < epochs; e++)
        ep[e] = e + 1;
    for (int m = 0; m < MODELS; m++) {
        for (int e = 0; e < epochs; e++) {
            curves[2 * m][e] = fits[m].loss[e];
            curves[2 * m + 1][e] = 1 - fits[m].test_accuracy[e];
        }
        snprintf(labels[2 * m], sizeof labels[0], "%s: training loss", specs[m].name);
        snprintf(labels[2 * m + 1], sizeof labels[0], "%s: validation error", specs[m].name);
        series[2 * m] = (jg_series){ labels[2 * m], ep, curves[2 * m], epochs };
        series[2 * m + 1] = (jg_series){ labels[2 * m + 1], ep, curves[2 * m + 1], epochs };
    }
    char path[1024], err[256];
    if (jg_plot_svg(lesson_path(&c, "24_fit_curves.svg", path, sizeof path),
                    "Under-fitting: training loss and validation error", "epoch", NULL, series,
                    MODELS * 2, false, err, sizeof err) != JG_OK)
        return lesson_fail(&c, "%s", err);
    printf("curves: %s\n", path);
    jg_dataset_free(train), jg_dataset_free(val);
    lesson_data_free(&d);

    bool under = !strcmp(report[0], "under-fitting") && fabs(var[0]) <= 0.02;
    bool fixed = train_err[2] <= train_err[0] - 0.05 && val_err[2] < val_err[0] &&
                 strcmp(report[2], "under-fitting");
    return lesson_verdict(&c, under && fixed,
                          "small+heavy reg: train err %.3f, val err %.3f -> %s; big: train err "
                          "%.3f, val err %.3f -> %s", train_err[0], val_err[0], report[0],
                          train_err[2], val_err[2], report[2]);
}
