/* Lesson 19: no dropout at test time. Dropout trains a network to cope with random halves
 * of its units missing; at test time we want the prediction of the whole network (with
 * inverted dropout the kept units were already scaled by 1/(1-p) in training, so the
 * evaluation network is the plain one). A network left in training mode at test time
 * answers with a random sub-network: a noisier, usually worse prediction, and a different
 * one every time it is asked.
 *
 * Experiment: an MLP 784-256-256-10 with dropout p = 0.5 after each hidden layer is trained
 * on Fashion-MNIST by Adam. From the same graph, two programs compute the logits of the test
 * images: the evaluation program (jg_opts.mode EVAL, what jg_compile gives by default) and a
 * training-mode program without updates (jg_opts.mode TRAIN: dropout stays on). We read the
 * compiled program (jg_program_dot) for the "random" op that makes dropout's mask, run
 * each program twice on one batch and compare the outputs bit for bit, and measure test
 * accuracy: once in evaluation mode (twice, to show it repeats exactly) and in several
 * passes with dropout on.
 * Criterion: HOLDS when the evaluation program has no random node (the training-mode one
 * has), its two runs are bit-equal, the dropout-on runs differ from each other, and the
 * dropout-on test accuracy (mean over passes) is lower than the evaluation accuracy. */
#define _POSIX_C_SOURCE 200809L
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { PIXELS = 784, HIDDEN = 256, BATCH = 128, PASSES = 5 };

typedef struct model_arg {
    double p;
    jg_node *last; /* the logits of the last call: lesson_train's second call is x_eval's */
} model_arg;

static jg_node *mlp(jg_graph *g, jg_node *x, int batch, void *arg)
{
    (void)batch;
    model_arg *m = arg;
    jg_node *h = jg_dropout(jg_relu(lesson_linear(g, "fc1", x, PIXELS, HIDDEN, jg_he_normal())),
                            m->p);
    h = jg_dropout(jg_relu(lesson_linear(g, "fc2", h, HIDDEN, HIDDEN, jg_he_normal())), m->p);
    return m->last = lesson_linear(g, "fc3", h, HIDDEN, 10, jg_xavier_uniform());
}

/* How many "random" ops (dropout's mask) the compiled program computes: the nodes of its
 * Graphviz view (jg_program_dot labels each used node "%<id> <op>\n<type>"; the kernel
 * listing of jg_program_dump leaves out random draws, which are recomputed inline). */
static int random_nodes(const jg_program *p)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return -1;
    jg_program_dot(p, f);
    fclose(f);
    int n = 0;
    for (const char *s = text; (s = strstr(s, " random\\n")); s++)
        n++;
    free(text);
    return n;
}

/* Runs p on the first test batch, into out [BATCH * 10]. */
static int logits_of(jg_program *p, const float *x, float *out)
{
    return jg_program_set(p, "x_eval", x, sizeof(float) * BATCH * PIXELS) ||
           jg_program_run(p) || jg_program_get(p, 0, out, sizeof(float) * BATCH * 10);
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 19, "no-dropout-at-test"))
        return 2;
    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 4096 : 0, c.quick ? 1024 : 0, &d))
        return 1;
    model_arg m = { .p = 0.5 };
    lesson_fit f = { .model = mlp, .arg = &m, .optimizer = jg_adam(1e-3), .batch = BATCH,
                     .epochs = c.quick ? 1 : 5, .shuffle = true, .seed = 19 };
    jg_graph *g;
    jg_program *eval;
    if (lesson_train(&c, &f, d.train, d.test, &g, &eval))
        return 1;
    jg_program *noisy = jg_compile(g, &m.last, 1, &(jg_opts){ .num_threads = c.threads,
                                                                .mode = JG_MODE_TRAIN });
    if (!noisy)
        return lesson_fail(&c, "%s", jg_errmsg(g));
    int random_eval = random_nodes(eval), random_noisy = random_nodes(noisy);

    float *x = malloc(sizeof(float) * BATCH * PIXELS), a[BATCH * 10], b[BATCH * 10];
    int32_t y[BATCH];
    int n;
    jg_loader *ld = jg_loader_new(d.test, BATCH, NULL);
    if (!x || !ld || !jg_loader_next(ld, x, y, &n))
        return lesson_fail(&c, "cannot read a test batch");
    jg_loader_free(ld);
    if (logits_of(eval, x, a) || logits_of(eval, x, b))
        return lesson_fail(&c, "%s", jg_errmsg(eval));
    bool eval_equal = memcmp(a, b, sizeof a) == 0;
    if (logits_of(noisy, x, a) || logits_of(noisy, x, b))
        return lesson_fail(&c, "%s", jg_errmsg(noisy));
    bool noisy_equal = memcmp(a, b, sizeof a) == 0;
    double max_diff = 0;
    for (int i = 0; i < BATCH * 10; i++)
        max_diff = fmax(max_diff, fabs((double)a[i] - (double)b[i]));

    double eval_acc[2], noisy_acc[PASSES], mean = 0, lo = 1, hi = 0;
    for (int r = 0; r < 2; r++)
        eval_acc[r] = lesson_accuracy(eval, d.test, BATCH);
    for (int r = 0; r < PASSES; r++) {
        noisy_acc[r] = lesson_accuracy(noisy, d.test, BATCH);
        mean += noisy_acc[r] / PASSES;
        lo = fmin(lo, noisy_acc[r]);
        hi = fmax(hi, noisy_acc[r]);
    }

    printf("trained %d epochs on %lld images (dropout 0.5 after both hidden layers); "
           "test set %lld images\n", f.epochs_run, (long long)jg_dataset_size(d.train),
           (long long)jg_dataset_size(d.test));
    const char *cols[] = { "program", "random ops", "2 runs equal", "test acc", "min",
                           "max" };
    lesson_table(cols, 6);
    lesson_row("%-14s %-14d %-14s %-14.4f %-14.4f %.4f", "eval mode", random_eval,
               eval_equal ? "bit-equal" : "differ", eval_acc[0], fmin(eval_acc[0], eval_acc[1]),
               fmax(eval_acc[0], eval_acc[1]));
    lesson_row("%-14s %-14d %-14s %-14.4f %-14.4f %.4f", "dropout on", random_noisy,
               noisy_equal ? "bit-equal" : "differ", mean, lo, hi);
    printf("dropout-on passes:");
    for (int r = 0; r < PASSES; r++)
        printf(" %.4f", noisy_acc[r]);
    printf("; largest logit difference between two dropout-on runs of one batch: %.3f\n",
           max_diff);

    jg_program_free(noisy);
    jg_program_free(eval);
    jg_graph_free(g);
    free(x);
    lesson_data_free(&d);
    bool holds = random_eval == 0 && random_noisy > 0 && eval_equal && !noisy_equal &&
                 eval_acc[0] == eval_acc[1] && mean < eval_acc[0];
    return lesson_verdict(&c, holds, "eval: %d random ops, runs %s, accuracy %.4f twice%s; "
                          "dropout left on: %d random ops, runs %s, accuracy %.4f (%.4f-%.4f)",
                          random_eval, eval_equal ? "bit-equal" : "differ", eval_acc[0],
                          eval_acc[0] == eval_acc[1] ? "" : " (NOT repeated)", random_noisy,
                          noisy_equal ? "equal" : "differ", mean, lo, hi);
}
