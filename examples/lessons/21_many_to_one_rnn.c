/* Lesson 21: a many-to-one RNN. A recurrent network reads a sequence one element at a time,
 * carrying a state, and one output is read from its last state: the shape of sentiment
 * analysis (a review in, one label out) and of any sequence classification.
 *
 * Experiment 1, the language of a word from its characters: words of the Debian word lists
 * (american-english, ngerman, french, spanish, italian), lower-cased, without words that
 * occur in more than one list, apostrophes, digits or acronyms; each a sequence of UTF-8
 * bytes (at most 16), padded, with its length. Model: jg_embedding (256 byte values -> 16)
 * and an LSTM of 64 (jg_rnn with per-word lengths: the last state is taken at each word's
 * own end) into a dense layer to 5 languages. For comparison, an order-free model on the
 * same data: the bag of bytes (mean of one-hot vectors over the padded word, so it knows the
 * length too) through a hidden layer of 64. Balanced classes: chance is 0.20.
 * Experiment 2, Fashion-MNIST read row by row: the 28 rows of 28 pixels are 28 steps of an
 * LSTM of 64, whose last state is classified into the 10 classes.
 * Criterion: HOLDS when the word RNN's test accuracy is at least 0.70 and above the bag of
 * bytes (the order of the characters carries information a bag loses), and the row-by-row
 * LSTM reaches at least 0.80 test accuracy on Fashion-MNIST. */
#define _POSIX_C_SOURCE 200809L
#include "lesson.h"

#include <stdlib.h>
#include <string.h>

enum { T = 16, EMB = 16, HIDDEN = 64, LANGS = 5, BATCH = 128, TABLE_BITS = 22 };

static const char *const LANG_FILES[LANGS] = { "american-english", "ngerman", "french",
                                               "spanish", "italian" };
static const char *const LANG_NAMES[LANGS] = { "english", "german", "french", "spanish",
                                               "italian" };

/* ---------------------------------------------------------------- the word lists */

/* An open-addressing set of words with the languages each occurs in (a bit mask). */
typedef struct word_set {
    char **key;
    unsigned *langs;
    size_t size;
} word_set;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int set_add(word_set *ws, const char *w, int lang)
{
    size_t mask = ws->size - 1;
    for (size_t i = hash_str(w) & mask;; i = (i + 1) & mask) {
        if (!ws->key[i]) {
            if (!(ws->key[i] = strdup(w)))
                return 1;
            ws->langs[i] = 1u << lang;
            return 0;
        }
        if (!strcmp(ws->key[i], w)) {
            ws->langs[i] |= 1u << lang;
            return 0;
        }
    }
}

/* Lower-cases ASCII and the Latin-1 capitals of UTF-8 (C3 80..C3 9E); false for words we
 * skip: apostrophes, digits, other punctuation, acronyms (a capital after the first
 * letter), fewer than 2 bytes. */
static bool normalise(char *w)
{
    size_t n = strlen(w);
    if (n < 2)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)w[i];
        bool upper = ch >= 'A' && ch <= 'Z';
        if (ch < 0x80 && !upper && !(ch >= 'a' && ch <= 'z'))
            return false;
        if (upper && i > 0)
            return false;
        if (upper)
            w[i] = (char)(ch + 32);
        if (ch == 0xC3 && i + 1 < n && (unsigned char)w[i + 1] >= 0x80 &&
            (unsigned char)w[i + 1] <= 0x9E && (unsigned char)w[i + 1] != 0x97) {
            if (i > 0)
                return false;
            w[i + 1] = (char)((unsigned char)w[i + 1] + 0x20);
        }
    }
    return true;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* Builds the word data: per language n_train + n_test words that occur in that list only,
 * as rows of T + 1 floats (byte values, zero padded, then the length). */
static int load_words(const lesson_ctx *c, int n_train, int n_test, jg_array *xtr,
                      jg_array *ytr, jg_array *xte, jg_array *yte, int *available)
{
    word_set ws = { calloc((size_t)1 << TABLE_BITS, sizeof(char *)),
                    calloc((size_t)1 << TABLE_BITS, sizeof(unsigned)), (size_t)1 << TABLE_BITS };
    if (!ws.key || !ws.langs)
        return lesson_fail(c, "out of memory");
    char line[512], path[256];
    for (int l = 0; l < LANGS; l++) {
        snprintf(path, sizeof path, "/usr/share/dict/%s", LANG_FILES[l]);
        FILE *f = fopen(path, "r");
        if (!f)
            return lesson_fail(c, "cannot read %s (Debian package w%s)", path, LANG_FILES[l]);
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (normalise(line) && set_add(&ws, line, l))
                return lesson_fail(c, "out of memory");
        }
        fclose(f);
    }
    int per = n_train + n_test;
    *xtr = (jg_array){ JG_F32, jg_shape((int64_t)LANGS * n_train, T + 1),
                       calloc((size_t)LANGS * n_train * (T + 1), sizeof(float)) };
    *ytr = (jg_array){ JG_I32, jg_shape((int64_t)LANGS * n_train),
                       calloc((size_t)LANGS * n_train, sizeof(int32_t)) };
    *xte = (jg_array){ JG_F32, jg_shape((int64_t)LANGS * n_test, T + 1),
                       calloc((size_t)LANGS * n_test * (T + 1), sizeof(float)) };
    *yte = (jg_array){ JG_I32, jg_shape((int64_t)LANGS * n_test),
                       calloc((size_t)LANGS * n_test, sizeof(int32_t)) };
    char **pick = malloc(ws.size * sizeof *pick);
    int status = !xtr->data || !ytr->data || !xte->data || !yte->data || !pick;
    for (int l = 0; l < LANGS && !status; l++) {
        size_t n = 0;
        for (size_t i = 0; i < ws.size; i++)
            if (ws.key[i] && ws.langs[i] == 1u << l)
                pick[n++] = ws.key[i];
        available[l] = (int)n;
        if ((int)n < per) {
            status = lesson_fail(c, "%s: only %zu words of its own", LANG_NAMES[l], n);
            break;
        }
        uint64_t s = 0x9e3779b97f4a7c15ull + (uint64_t)l;
        for (int k = 0; k < per; k++) { /* a partial Fisher-Yates shuffle */
            size_t j = (size_t)k + (size_t)(rng_next(&s) % (n - (size_t)k));
            char *t = pick[k];
            pick[k] = pick[j], pick[j] = t;
        }
        for (int k = 0; k < per; k++) {
            bool test = k < n_test;
            int row = l * (test ? n_test : n_train) + (test ? k : k - n_test);
            float *x = (float *)(test ? xte->data : xtr->data) + (size_t)row * (T + 1);
            int len = (int)strlen(pick[k]);
            len = len > T ? T : len;
            for (int t = 0; t < len; t++)
                x[t] = (float)(unsigned char)pick[k][t];
            x[T] = (float)len;
            ((int32_t *)(test ? yte->data : ytr->data))[row] = l;
        }
    }
    for (size_t i = 0; i < ws.size; i++)
        free(ws.key[i]);
    free(ws.key), free(ws.langs), free(pick);
    return status;
}

/* ---------------------------------------------------------------- word models */

static jg_node *dense(jg_graph *g, const char *name, jg_node *x, int in, int out)
{
    return lesson_linear(g, name, x, in, out, jg_xavier_uniform());
}

/* x [B, T+1] (byte values, then the length) -> logits [B, LANGS] */
static jg_node *word_model(jg_graph *g, jg_node *x, bool rnn)
{
    jg_node *ids = jg_cast(jg_slice(x, 1, 0, T, 1), JG_I32);
    if (!rnn) { /* bag of bytes: the mean one-hot vector over the T (padded) positions */
        jg_node *bag = jg_mean(jg_one_hot(ids, 256, JG_F32), jg_axes(1), false);
        return dense(g, "out", jg_relu(dense(g, "hid", bag, 256, HIDDEN)), HIDDEN, LANGS);
    }
    jg_node *len = jg_cast(jg_reshape(jg_slice(x, 1, T, T + 1, 1), jg_shape(BATCH)), JG_I32);
    jg_node *e = jg_embedding(g, "emb", ids, 256, EMB);
    jg_node *h = jg_rnn(g, JG_LSTM, "lstm", e, HIDDEN, &(jg_rnn_opts){ .lengths = len });
    return dense(g, "out", h, HIDDEN, LANGS);
}

typedef struct word_result {
    double test_acc, train_loss, seconds;
    int confusion[LANGS][LANGS];
} word_result;

static int train_words(const lesson_ctx *c, bool rnn, jg_dataset *train, jg_dataset *test,
                       int epochs, word_result *r)
{
    *r = (word_result){ 0 };
    jg_graph *g = jg_graph_new();
    jg_graph_set_seed(g, 21);
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(BATCH, T + 1));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    jg_node *logits = word_model(g, x, rnn);
    jg_node *loss = jg_cross_entropy(logits, y);
    jg_program *tr = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adam(rnn ? 5e-3 : 2e-3), .compile = { .num_threads = c->threads } });
    jg_program *ev = jg_compile(g, &logits, 1, &(jg_opts){ .num_threads = c->threads });
    if (!tr || !ev) {
        jg_graph_free(g);
        return lesson_fail(c, "%s", jg_errmsg(g));
    }
    float xb[BATCH * (T + 1)], out[BATCH * LANGS];
    int32_t yb[BATCH];
    int n, status = 0;
    double t0 = lesson_seconds(c);
    jg_loader *ld = jg_loader_new(train, BATCH, &(jg_loader_opts){ .shuffle = true,
                                                                  .drop_last = true, .seed = 5 });
    for (int e = 0; e < epochs && !status; e++) {
        double sum = 0;
        int steps = 0;
        while (!status && jg_loader_next(ld, xb, yb, &n)) {
            float l;
            status = jg_program_set(tr, "x", xb, sizeof xb) ||
                     jg_program_set(tr, "y", yb, sizeof yb) || jg_program_run(tr) ||
                     jg_program_get(tr, 0, &l, sizeof l);
            sum += l, steps++;
        }
        r->train_loss = sum / (steps ? steps : 1);
    }
    jg_loader_free(ld);
    int64_t seen = 0, correct = 0;
    ld = jg_loader_new(test, BATCH, NULL);
    while (!status && jg_loader_next(ld, xb, yb, &n)) {
        for (int i = n; i < BATCH; i++) { /* pad with a harmless word of length 1 */
            memset(xb + i * (T + 1), 0, sizeof(float) * (T + 1));
            xb[i * (T + 1) + T] = 1;
        }
        status = jg_program_set(ev, "x", xb, sizeof xb) || jg_program_run(ev) ||
                 jg_program_get(ev, 0, out, sizeof out);
        for (int i = 0; i < n && !status; i++, seen++) {
            int best = 0;
            for (int k = 1; k < LANGS; k++)
                best = out[i * LANGS + k] > out[i * LANGS + best] ? k : best;
            correct += best == yb[i];
            r->confusion[yb[i]][best]++;
        }
    }
    if (status)
        status = lesson_fail(c, "%s", jg_errmsg(tr)[0] ? jg_errmsg(tr) : jg_errmsg(ev));
    jg_loader_free(ld);
    r->test_acc = seen ? (double)correct / (double)seen : 0;
    r->seconds = lesson_seconds(c) - t0;
    jg_program_free(tr);
    jg_program_free(ev);
    jg_graph_free(g);
    return status;
}

/* ---------------------------------------------------------------- Fashion-MNIST by rows */

static jg_node *row_lstm(jg_graph *g, jg_node *images, int batch, void *arg)
{
    (void)arg;
    jg_node *rows = jg_reshape(images, jg_shape(batch, 28, 28));
    jg_node *h = jg_rnn(g, JG_LSTM, "rows", rows, HIDDEN, NULL);
    return lesson_linear(g, "cls", h, HIDDEN, 10, jg_xavier_uniform());
}

int main(int argc, char **argv)
{
    lesson_ctx c;
    if (lesson_init(&c, argc, argv, 21, "many-to-one-rnn"))
        return 2;
    int n_train = c.quick ? 600 : 6000, n_test = c.quick ? 200 : 1000;
    int epochs = c.quick ? 2 : 12, available[LANGS];
    jg_array xtr, ytr, xte, yte;
    if (load_words(&c, n_train, n_test, &xtr, &ytr, &xte, &yte, available))
        return 1;
    jg_dataset *wtrain, *wtest;
    char err[256];
    if (jg_dataset_new(&xtr, &ytr, &wtrain, err, sizeof err) ||
        jg_dataset_new(&xte, &yte, &wtest, err, sizeof err))
        return lesson_fail(&c, "%s", err);
    word_result rnn, bag;
    if (train_words(&c, true, wtrain, wtest, epochs, &rnn) ||
        train_words(&c, false, wtrain, wtest, epochs, &bag))
        return 1;
    printf("words: %d a language for training, %d for testing (words of one list only; "
           "available:", n_train, n_test);
    for (int l = 0; l < LANGS; l++)
        printf(" %s %d", LANG_NAMES[l], available[l]);
    printf("), %d epochs\n", epochs);
    const char *cols[] = { "model", "test acc", "train loss", "seconds" };
    lesson_table(cols, 4);
    lesson_row("%-14s %-14.4f %-14.4f %.1f", "LSTM on bytes", rnn.test_acc, rnn.train_loss,
               rnn.seconds);
    lesson_row("%-14s %-14.4f %-14.4f %.1f", "bag of bytes", bag.test_acc, bag.train_loss,
               bag.seconds);
    lesson_row("%-14s %-14.4f", "chance", 1.0 / LANGS);
    printf("\nLSTM confusion (rows: true language, columns: predicted)\n%-10s", "");
    for (int k = 0; k < LANGS; k++)
        printf(" %8.8s", LANG_NAMES[k]);
    printf("\n");
    for (int l = 0; l < LANGS; l++) {
        printf("%-10s", LANG_NAMES[l]);
        for (int k = 0; k < LANGS; k++)
            printf(" %8d", rnn.confusion[l][k]);
        printf("\n");
    }
    jg_dataset_free(wtrain), jg_dataset_free(wtest);
    jg_array_free(&xtr), jg_array_free(&ytr), jg_array_free(&xte), jg_array_free(&yte);

    lesson_data d;
    if (lesson_fashion(&c, c.quick ? 2048 : 20000, c.quick ? 1024 : 0, &d))
        return 1;
    lesson_fit f = { .model = row_lstm, .optimizer = jg_adam(2e-3), .batch = BATCH,
                     .epochs = c.quick ? 1 : 3, .shuffle = true, .seed = 21 };
    if (lesson_train(&c, &f, d.train, d.test, NULL, NULL))
        return 1;
    double fm_acc = f.test_accuracy[f.epochs_run - 1];
    printf("\nFashion-MNIST row by row (28 steps of 28 pixels, LSTM %d): %lld training images, "
           "%d epochs, %.1f s\n", HIDDEN, (long long)jg_dataset_size(d.train), f.epochs_run,
           f.seconds);
    lesson_table((const char *[]){ "epoch", "train loss", "test acc" }, 3);
    for (int e = 0; e < f.epochs_run; e++)
        lesson_row("%-14d %-14.4f %.4f", e + 1, f.loss[e], f.test_accuracy[e]);
    lesson_data_free(&d);
    bool holds = rnn.test_acc >= 0.70 && rnn.test_acc > bag.test_acc && fm_acc >= 0.80;
    return lesson_verdict(&c, holds, "word language: LSTM %.3f vs bag of bytes %.3f (chance "
                          "%.2f); Fashion-MNIST row by row: %.3f", rnn.test_acc, bag.test_acc,
                          1.0 / LANGS, fm_acc);
}
