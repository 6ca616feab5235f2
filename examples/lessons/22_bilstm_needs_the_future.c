/* Lesson 22: a bidirectional LSTM assumes the whole sequence is there. Its second pass runs
 * from the end, so the output at step t depends on the steps after t. That is what a
 * tagging task wants when the right tag depends on what follows; for forecasting it is a
 * leak: during training the "future" the model must predict is among its inputs, the loss
 * collapses, and the model is useless where the future is really unknown (generation).
 *
 * Data: English prose from /usr/share/common-licenses, lower-cased letters only (every
 * other character is a word break); trained on GPL-3, GPL-2, LGPL-2.1, Apache-2.0,
 * MPL-2.0, GFDL-1.3 and BSD, tested on Artistic and CC0-1.0 (other documents). Windows of
 * T = 24 letters (12 in --quick), ids 1..26 (0: blank) through jg_embedding (27 -> 16) and an LSTM of 64
 * per direction (jg_rnn with return_sequences; bidirectional or not), a dense layer per step.
 * Task 1, tagging: the letters run together ("thisisthelicense"); tag each letter 1 when a
 * word ends after it. Whether a word ends at "the|" depends on what follows ("the|licence"
 * vs "the|re|..."), so look-ahead helps. Measured: F1 of the word ends on the test text.
 * Task 2, forecasting: predict each letter's successor (cross entropy over 27 symbols). The
 * BiLSTM's backward pass at step t has read letter t+1 itself. Measured: the training loss;
 * and the honest test, as in generation: the window up to the middle letter t = T/2 with
 * the letters after it blanked (unknown), the prediction at t scored against letter t+1
 * (for the one-directional LSTM blanking changes nothing). Both models then generate 60
 * letters greedily from the same prefix (printed).
 * Criterion: HOLDS when the BiLSTM's tagging F1 beats the LSTM's by at least 0.05; the
 * BiLSTM's forecasting training loss is under half the LSTM's (it peeks); and its honest
 * next-letter accuracy is below the LSTM's (it cannot forecast). */
#define _POSIX_C_SOURCE 200809L
#include "lesson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TMAX = 24, EMB = 16, HIDDEN = 64, BATCH = 64, SYMBOLS = 27, GEN = 60 };

/* The window length and the step scored in the honest test (--quick: shorter windows,
 * which compile faster). */
static int T = TMAX, MID = TMAX / 2;

static const char *const TRAIN_FILES[] = { "GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0",
                                           "MPL-2.0", "GFDL-1.3", "BSD" };
static const char *const TEST_FILES[] = { "Artistic", "CC0-1.0" };

/* A text as letters (ids 1..26) and, per letter, whether a word ends after it. */
typedef struct text {
    unsigned char *id, *end;
    int n;
} text;

static int read_text(const lesson_ctx *c, const char *const *files, int n_files, text *t)
{
    *t = (text){ 0 };
    size_t cap = 0;
    for (int i = 0; i < n_files; i++) {
        char path[256];
        snprintf(path, sizeof path, "/usr/share/common-licenses/%s", files[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            return lesson_fail(c, "cannot read %s", path);
        int ch;
        while ((ch = fgetc(f)) != EOF) {
            if (ch >= 'A' && ch <= 'Z')
                ch += 32;
            if (ch < 'a' || ch > 'z') {
                if (t->n > 0)
                    t->end[t->n - 1] = 1;
                continue;
            }
            if ((size_t)t->n + 1 > cap) {
                cap = cap ? 2 * cap : 65536;
                t->id = realloc(t->id, cap), t->end = realloc(t->end, cap);
                if (!t->id || !t->end)
                    return lesson_fail(c, "out of memory");
            }
            t->id[t->n] = (unsigned char)(ch - 'a' + 1);
            t->end[t->n++] = 0;
        }
        fclose(f);
        if (t->n > 0)
            t->end[t->n - 1] = 1;
    }
    return 0;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* A model: input "x" [BATCH, T] of ids as floats; output logits [BATCH * T, classes]. */
typedef struct model {
    jg_graph *g;
    jg_program *train, *eval;
    double loss;
} model;

static int build(const lesson_ctx *c, model *m, bool bidirectional, bool forecast)
{
    jg_graph *g = m->g = jg_graph_new();
    jg_graph_set_seed(g, 22);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, T));
    jg_node *e = jg_embedding(g, "emb", jg_cast(x, JG_I32), SYMBOLS, EMB);
    jg_node *h = jg_rnn(g, JG_LSTM, "lstm", e, HIDDEN,
                        &(jg_rnn_opts){ .bidirectional = bidirectional, .return_sequences = true });
    int width = bidirectional ? 2 * HIDDEN : HIDDEN, classes = forecast ? SYMBOLS : 1;
    h = jg_reshape(h, jg_shape(BATCH * T, width));
    jg_node *logits = lesson_linear(g, "out", h, width, classes, jg_xavier_uniform());
    jg_node *loss;
    if (forecast)
        loss = jg_cross_entropy(logits, jg_input(g, "y", JG_I32, jg_shape(BATCH * T)));
    else
        loss = jg_bce_with_logits(logits, jg_input(g, "t", JG_F32, jg_shape(BATCH * T, 1)));
    m->train = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(3e-3), .compile = { .num_threads = c->threads } });
    m->eval = jg_compile(g, &logits, 1, &(jg_opts){ .num_threads = c->threads });
    if (!m->train || !m->eval)
        return lesson_fail(c, "%s", jg_errmsg(g));
    return 0;
}

static void model_free(model *m)
{
    jg_program_free(m->train);
    jg_program_free(m->eval);
    jg_graph_free(m->g);
}

/* A batch of random windows of t: x ids, and per step the word-end tag and the next id. */
static void batch_of(const text *t, uint64_t *s, float *x, float *tag, int32_t *next)
{
    for (int b = 0; b < BATCH; b++) {
        int at = (int)(rng_next(s) % (uint64_t)(t->n - T - 1));
        for (int k = 0; k < T; k++) {
            x[b * T + k] = t->id[at + k];
            tag[b * T + k] = t->end[at + k];
            next[b * T + k] = t->id[at + k + 1];
        }
    }
}

static int train(const lesson_ctx *c, model *m, const text *t, bool forecast, int steps)
{
    float x[BATCH * TMAX], tag[BATCH * TMAX];
    int32_t next[BATCH * TMAX];
    uint64_t s = 0x2545f4914f6cdd1dull;
    double sum = 0;
    int tail = steps / 5 > 0 ? steps / 5 : 1; /* the loss reported: mean of the last 20% */
    for (int i = 0; i < steps; i++) {
        batch_of(t, &s, x, tag, next);
        float l;
        size_t bytes = sizeof(float) * BATCH * (size_t)T;
        if (jg_program_set(m->train, "x", x, bytes) ||
            (forecast ? jg_program_set(m->train, "y", next, bytes)
                      : jg_program_set(m->train, "t", tag, bytes)) ||
            jg_program_run(m->train) || jg_program_get(m->train, 0, &l, sizeof l))
            return lesson_fail(c, "%s", jg_errmsg(m->train));
        if (i >= steps - tail)
            sum += l / tail;
    }
    m->loss = sum;
    return 0;
}

/* Tagging F1 of word ends over test windows (non-overlapping, every letter once). */
static int tag_f1(const lesson_ctx *c, model *m, const text *t, double *f1, double *acc)
{
    float x[BATCH * TMAX], out[BATCH * TMAX];
    size_t bytes = sizeof(float) * BATCH * (size_t)T;
    int64_t tp = 0, fp = 0, fn = 0, right = 0, seen = 0;
    for (int start = 0; start + BATCH * T <= t->n; start += BATCH * T) {
        for (int k = 0; k < BATCH * T; k++)
            x[k] = t->id[start + k];
        if (jg_program_set(m->eval, "x", x, bytes) || jg_program_run(m->eval) ||
            jg_program_get(m->eval, 0, out, bytes))
            return lesson_fail(c, "%s", jg_errmsg(m->eval));
        for (int k = 0; k < BATCH * T; k++, seen++) {
            bool said = out[k] > 0, truth = t->end[start + k];
            tp += said && truth, fp += said && !truth, fn += !said && truth;
            right += said == truth;
        }
    }
    *f1 = tp ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : 0;
    *acc = seen ? (double)right / (double)seen : 0;
    return 0;
}

static int argmax_at(const float *out, int row)
{
    int best = 1;
    for (int k = 2; k < SYMBOLS; k++) /* 0 (blank) is never a letter to predict */
        best = out[row * SYMBOLS + k] > out[row * SYMBOLS + best] ? k : best;
    return best;
}

/* Next-letter accuracy at step MID of test windows, with the letters after MID blanked
 * (honest) or present (peeking). */
static int next_acc(const lesson_ctx *c, model *m, const text *t, bool blank, double *acc)
{
    static float out[BATCH * TMAX * SYMBOLS];
    float x[BATCH * TMAX];
    size_t bytes = sizeof(float) * BATCH * (size_t)T;
    int64_t right = 0, seen = 0;
    for (int start = 0; start + BATCH * T + 1 <= t->n; start += BATCH * T) {
        for (int b = 0; b < BATCH; b++)
            for (int k = 0; k < T; k++)
                x[b * T + k] = blank && k > MID ? 0 : t->id[start + b * T + k];
        if (jg_program_set(m->eval, "x", x, bytes) || jg_program_run(m->eval) ||
            jg_program_get(m->eval, 0, out, bytes * SYMBOLS))
            return lesson_fail(c, "%s", jg_errmsg(m->eval));
        for (int b = 0; b < BATCH; b++, seen++)
            right += argmax_at(out, b * T + MID) == t->id[start + b * T + MID + 1];
    }
    *acc = seen ? (double)right / (double)seen : 0;
    return 0;
}

/* Greedy generation of GEN letters after a prefix of MID + 1 letters: each step puts the
 * last MID + 1 letters in positions 0..MID, blanks the rest and takes the prediction at MID. */
static int generate(const lesson_ctx *c, model *m, const unsigned char *prefix, char *out)
{
    static float logits[BATCH * TMAX * SYMBOLS];
    float x[BATCH * TMAX] = { 0 };
    size_t bytes = sizeof(float) * BATCH * (size_t)T;
    unsigned char seq[TMAX + 1 + GEN];
    memcpy(seq, prefix, (size_t)MID + 1);
    for (int i = 0; i < GEN; i++) {
        for (int k = 0; k <= MID; k++)
            x[k] = seq[i + k];
        if (jg_program_set(m->eval, "x", x, bytes) || jg_program_run(m->eval) ||
            jg_program_get(m->eval, 0, logits, bytes * SYMBOLS))
            return lesson_fail(c, "%s", jg_errmsg(m->eval));
        seq[MID + 1 + i] = (unsigned char)argmax_at(logits, MID);
    }
    for (int i = 0; i < MID + 1 + GEN; i++)
        out[i] = (char)('a' + seq[i] - 1);
    out[MID + 1 + GEN] = '\0';
    return 0;
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 22, "bilstm-needs-the-future"))
        return 2;
    text tr, te;
    if (read_text(&c, TRAIN_FILES, 7, &tr) || read_text(&c, TEST_FILES, 2, &te))
        return 1;
    int steps = c.quick ? 60 : 1500;
    if (c.quick)
        T = 12, MID = 6;
    printf("letters: %d for training, %d for testing; %d steps of %d windows of %d letters\n",
           tr.n, te.n, steps, BATCH, T);

    model tag[2] = { 0 }, fc[2] = { 0 };
    double f1[2], tacc[2], honest[2], peek[2];
    char gen[2][TMAX + 2 + GEN];
    const char *names[2] = { "LSTM", "BiLSTM" };
    for (int bi = 0; bi < 2; bi++) {
        if (build(&c, &tag[bi], bi, false) || train(&c, &tag[bi], &tr, false, steps) ||
            tag_f1(&c, &tag[bi], &te, &f1[bi], &tacc[bi]))
            return 1;
        model_free(&tag[bi]);
        if (build(&c, &fc[bi], bi, true) || train(&c, &fc[bi], &tr, true, steps) ||
            next_acc(&c, &fc[bi], &te, true, &honest[bi]) ||
            next_acc(&c, &fc[bi], &te, false, &peek[bi]) ||
            generate(&c, &fc[bi], te.id, gen[bi]))
            return 1;
        model_free(&fc[bi]);
    }
    double base_rate = 0;
    for (int i = 0; i < te.n; i++)
        base_rate += te.end[i];
    base_rate /= te.n;

    printf("\ntask 1, word ends in run-together text (test: %.3f of letters end a word)\n",
           base_rate);
    lesson_table((const char *[]){ "model", "train loss", "test F1", "test acc" }, 4);
    for (int bi = 0; bi < 2; bi++)
        lesson_row("%-14s %-14.4f %-14.4f %.4f", names[bi], tag[bi].loss, f1[bi], tacc[bi]);
    printf("\ntask 2, next letter (test accuracy at step %d: future blanked = honest, "
           "future shown = peeking)\n", MID);
    lesson_table((const char *[]){ "model", "train loss", "honest acc", "peeking acc" }, 4);
    for (int bi = 0; bi < 2; bi++)
        lesson_row("%-14s %-14.4f %-14.4f %.4f", names[bi], fc[bi].loss, honest[bi], peek[bi]);
    printf("\ngenerated from the prefix \"%.*s\":\n", MID + 1, gen[0]);
    for (int bi = 0; bi < 2; bi++)
        printf("  %-7s %s\n", names[bi], gen[bi] + MID + 1);
    free(tr.id), free(tr.end), free(te.id), free(te.end);

    bool tagging = f1[1] >= f1[0] + 0.05;
    bool peeks = fc[1].loss < 0.5 * fc[0].loss, cannot = honest[1] < honest[0];
    return lesson_verdict(&c, tagging && peeks && cannot,
                          "word ends F1: BiLSTM %.3f vs LSTM %.3f; next letter: training loss "
                          "BiLSTM %.3f vs LSTM %.3f, honest accuracy BiLSTM %.3f vs LSTM %.3f "
                          "(BiLSTM peeking %.3f)", f1[1], f1[0], fc[1].loss, fc[0].loss,
                          honest[1], honest[0], peek[1]);
}
