/* Tests of the recurrent layers (src/ops/recurrent.c): one step of each cell against values
 * worked out here from the textbook equations, shapes, weight sharing, length masking (incl.
 * the backward direction), f64 gradient checks through 3 steps, the JIT against the reference
 * executor, the embedding, and misuse. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>

static double sig(double v) { return 1 / (1 + exp(-v)); }


/* An f64 parameter holding the given values (so a builder reuses it as its weight). */
static jg_node *param_values(jg_graph *g, const char *name, jg_shape s, const double *v)
{
    jg_node *p = jg_param_as(g, name, JG_F64, s, jg_zeros());
    cr_assert_eq(jg_param_set(g, name, v, (size_t)jg_shape_numel(s) * sizeof(double)), JG_OK,
                 "%s", jg_errmsg(g));
    return p;
}

/* An i32 constant (a function, so compound literals need no extra parentheses). */
static jg_node *i32_const(jg_graph *g, jg_shape s, const int32_t *values)
{
    return jg_const(g, JG_I32, s, values);
}

static double scalar_of(jg_node *n)
{
    double *v = t_eval(n), r = v[0];
    free(v);
    return r;
}

TestSuite(recurrent);

/* ---- one step by hand: B = 1, I = 1, H = 1, so each gate is one number */

static const double X = 0.5, H0 = -0.3, C0 = 0.8;

Test(recurrent, rnn_cell_by_hand)
{
    jg_graph *g = jg_graph_new();
    param_values(g, "r.w_ih", jg_shape(1, 1), (double[]){ 0.7 });
    param_values(g, "r.w_hh", jg_shape(1, 1), (double[]){ -0.4 });
    param_values(g, "r.b", jg_shape(1), (double[]){ 0.1 });
    jg_node *h = jg_rnn_cell(g, "r", t_const(g, jg_shape(1, 1), (double[]){ X }),
                             t_const(g, jg_shape(1, 1), (double[]){ H0 }));
    t_assert_shape(h, jg_shape(1, 1));
    double want = tanh(0.7 * X - 0.4 * H0 + 0.1);
    t_assert_close((double[]){ scalar_of(h) }, &want, 1, 1e-12);
    jg_graph_free(g);
}

Test(recurrent, gru_cell_by_hand)
{
    jg_graph *g = jg_graph_new();
    const double wi[3] = { 0.1, 0.2, 0.3 }, wh[3] = { 0.5, -0.5, 0.25 }, b[3] = { 0.1, -0.2, 0.3 };
    param_values(g, "u.w_ih", jg_shape(1, 3), wi);
    param_values(g, "u.w_hh", jg_shape(1, 3), wh);
    param_values(g, "u.b", jg_shape(3), b);
    jg_node *h = jg_gru_cell(g, "u", t_const(g, jg_shape(1, 1), (double[]){ X }),
                             t_const(g, jg_shape(1, 1), (double[]){ H0 }));
    t_assert_shape(h, jg_shape(1, 1));
    double r = sig(X * wi[0] + b[0] + H0 * wh[0]);
    double z = sig(X * wi[1] + b[1] + H0 * wh[1]);
    double n = tanh(X * wi[2] + b[2] + r * (H0 * wh[2]));
    double want = (1 - z) * n + z * H0;
    t_assert_close((double[]){ scalar_of(h) }, &want, 1, 1e-12);
    jg_graph_free(g);
}

Test(recurrent, lstm_cell_by_hand)
{
    jg_graph *g = jg_graph_new();
    const double wi[4] = { 0.1, 0.2, 0.3, 0.4 }, wh[4] = { 0.5, -0.5, 0.25, -0.25 },
                 b[4] = { 0.1, 0.2, -0.3, 0.4 };
    param_values(g, "l.w_ih", jg_shape(1, 4), wi);
    param_values(g, "l.w_hh", jg_shape(1, 4), wh);
    param_values(g, "l.b", jg_shape(4), b);
    jg_node *h_out = NULL, *c_out = NULL;
    jg_node *ret = jg_lstm_cell(g, "l", t_const(g, jg_shape(1, 1), (double[]){ X }),
                                t_const(g, jg_shape(1, 1), (double[]){ H0 }),
                                t_const(g, jg_shape(1, 1), (double[]){ C0 }), &h_out, &c_out);
    cr_assert_eq(ret, h_out);
    t_assert_shape(h_out, jg_shape(1, 1));
    t_assert_shape(c_out, jg_shape(1, 1));
    double a[4];
    for (int k = 0; k < 4; k++)
        a[k] = X * wi[k] + H0 * wh[k] + b[k];
    double c = sig(a[1]) * C0 + sig(a[0]) * tanh(a[2]);
    double h = sig(a[3]) * tanh(c);
    t_assert_close((double[]){ scalar_of(h_out) }, &h, 1, 1e-12);
    t_assert_close((double[]){ scalar_of(c_out) }, &c, 1, 1e-12);
    jg_graph_free(g);
}

/* Constant weights and several units: every unit of a [B, H] result gets the same sum. */
Test(recurrent, rnn_cell_constant_weights)
{
    jg_graph *g = jg_graph_new();
    jg_param_as(g, "c.w_ih", JG_F64, jg_shape(2, 3), jg_constant(0.1));
    jg_param_as(g, "c.w_hh", JG_F64, jg_shape(3, 3), jg_constant(0.2));
    jg_param_as(g, "c.b", JG_F64, jg_shape(3), jg_constant(0.3));
    jg_node *x = t_const(g, jg_shape(2, 2), (double[]){ 1, 2, -1, 0 });
    jg_node *h = t_const(g, jg_shape(2, 3), (double[]){ 0.5, -1, 0, 1, 1, 1 });
    jg_node *y = jg_rnn_cell(g, "c", x, h);
    t_assert_shape(y, jg_shape(2, 3));
    double r0 = tanh(0.1 * 3 + 0.2 * -0.5 + 0.3), r1 = tanh(0.1 * -1 + 0.2 * 3 + 0.3);
    double *got = t_eval(y);
    t_assert_close(got, (double[]){ r0, r0, r0, r1, r1, r1 }, 6, 1e-12);
    free(got);
    jg_graph_free(g);
}

Test(recurrent, default_init)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 5));
    jg_node *h = jg_fill(g, JG_F32, jg_shape(4, 3), 0);
    jg_node *ho, *co;
    jg_lstm_cell(g, "lstm", x, h, h, &ho, &co);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    float b[12], w[5 * 12];
    cr_assert_eq(jg_param_get(g, "lstm.b", b, sizeof b), JG_OK, "%s", jg_errmsg(g));
    for (int j = 0; j < 12; j++)
        cr_assert_eq(b[j], j >= 3 && j < 6 ? 1.0f : 0.0f, "b[%d] = %g", j, b[j]);
    cr_assert_eq(jg_param_get(g, "lstm.w_ih", w, sizeof w), JG_OK, "%s", jg_errmsg(g));
    double lim = sqrt(6.0 / (5 + 12)), sum = 0;
    for (int j = 0; j < 5 * 12; j++) {
        cr_assert(fabsf(w[j]) <= lim, "w[%d] = %g outside Xavier's +-%g", j, w[j], lim);
        sum += fabs(w[j]);
    }
    cr_assert(sum > 0, "weights are all zero");
    jg_graph_free(g);
}

/* ---- sequences */

Test(recurrent, sequence_shapes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 5, 3));
    const jg_rnn_kind kinds[3] = { JG_RNN_TANH, JG_GRU, JG_LSTM };
    const char *names[3] = { "rnn", "gru", "lstm" };
    for (int k = 0; k < 3; k++) {
        t_assert_shape(jg_rnn(g, kinds[k], names[k], x, 4, NULL), jg_shape(2, 4));
        t_assert_shape(jg_rnn(g, kinds[k], names[k], x, 4, &(jg_rnn_opts){ .return_sequences = true }),
                     jg_shape(2, 5, 4));
        char bi[16];
        snprintf(bi, sizeof bi, "bi%s", names[k]);
        t_assert_shape(jg_rnn(g, kinds[k], bi, x, 4, &(jg_rnn_opts){ .bidirectional = true }),
                     jg_shape(2, 8));
        t_assert_shape(jg_rnn(g, kinds[k], bi, x, 4,
                            &(jg_rnn_opts){ .bidirectional = true, .return_sequences = true }),
                     jg_shape(2, 5, 8));
    }
    cr_assert(jg_param_find(g, "bilstm.fwd.w_ih") && jg_param_find(g, "bilstm.bwd.w_hh"));
    t_assert_shape(jg_param_find(g, "gru.w_hh"), jg_shape(4, 12));
    t_assert_shape(jg_param_find(g, "lstm.w_ih"), jg_shape(3, 16));
    cr_assert_eq(jg_param_count(g), 3 * 3 + 3 * 6);
    jg_graph_free(g);
}

Test(recurrent, weights_shared_over_steps)
{
    jg_graph *g = jg_graph_new();
    jg_node *x3 = jg_input(g, "x3", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "m", x3, 8, NULL);
    int after3 = jg_param_count(g);
    cr_assert_eq(after3, 3);
    jg_node *x20 = jg_input(g, "x20", JG_F32, jg_shape(2, 20, 4));
    jg_rnn(g, JG_LSTM, "m", x20, 8, &(jg_rnn_opts){ .return_sequences = true });
    cr_assert_eq(jg_param_count(g), after3, "parameters grew with T: %d", jg_param_count(g));
    /* the cell with the same prefix uses the same weights too */
    jg_node *h = jg_fill(g, JG_F32, jg_shape(2, 8), 0);
    jg_lstm_cell(g, "m", jg_input(g, "x1", JG_F32, jg_shape(2, 4)), h, h, NULL, NULL);
    cr_assert_eq(jg_param_count(g), after3);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

/* The sequence layer equals the cell applied step by step with the same prefix. */
Test(recurrent, sequence_equals_unrolled_cells)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(2, 3, 2), 7);
    jg_node *seq = jg_rnn(g, JG_GRU, "gru", x, 3, &(jg_rnn_opts){ .return_sequences = true });
    jg_node *h = jg_fill(g, JG_F64, jg_shape(2, 3), 0);
    jg_node *steps[3];
    for (int t = 0; t < 3; t++) {
        jg_node *xt = jg_reshape(jg_slice(x, 1, t, t + 1, 1), jg_shape(2, 2));
        h = jg_gru_cell(g, "gru", xt, h);
        steps[t] = jg_reshape(h, jg_shape(2, 1, 3));
    }
    double *a = t_eval(seq), *b = t_eval(jg_concat(steps, 3, 1));
    t_assert_close(a, b, 18, 1e-12);
    free(a);
    free(b);
    /* backward direction = the forward one over the reversed sequence */
    jg_node *bi = jg_rnn(g, JG_LSTM, "bi", x, 3, &(jg_rnn_opts){ .bidirectional = true });
    jg_node *bwd_last = jg_slice(bi, 1, 3, 6, 1);
    jg_node *xr = jg_slice(x, 1, -1, INT64_MIN, -1);
    jg_node *fwd_on_rev = jg_rnn(g, JG_LSTM, "bi.bwd", xr, 3, NULL);
    a = t_eval(bwd_last);
    b = t_eval(fwd_on_rev);
    t_assert_close(a, b, 6, 1e-12);
    free(a);
    free(b);
    jg_graph_free(g);
}

/* Row 0 has length 2 of T = 4: the same as the sequence cut to 2 steps; row 1 has all 4. */
static void check_masking(jg_rnn_kind kind, bool bidirectional)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(2, 4, 2), 11);
    jg_node *len = jg_input(g, "len", JG_I32, jg_shape(2));
    int32_t lens[2] = { 2, 4 };
    jg_binding bind = { "len", lens, sizeof lens };
    jg_rnn_opts o = { .bidirectional = bidirectional, .lengths = len };
    int64_t w = bidirectional ? 6 : 3;
    jg_node *masked = jg_rnn(g, kind, "m", x, 3, &o);
    o.return_sequences = true;
    jg_node *masked_seq = jg_rnn(g, kind, "m", x, 3, &o);
    jg_rnn_opts plain = { .bidirectional = bidirectional };
    jg_node *cut = jg_rnn(g, kind, "m", jg_slice(x, 1, 0, 2, 1), 3, &plain);
    jg_node *full = jg_rnn(g, kind, "m", x, 3, &plain);
    plain.return_sequences = true;
    jg_node *cut_seq = jg_rnn(g, kind, "m", jg_slice(x, 1, 0, 2, 1), 3, &plain);
    jg_node *full_seq = jg_rnn(g, kind, "m", x, 3, &plain);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    double *m = t_eval_with(masked, &bind, 1), *c = t_eval(cut), *f = t_eval(full);
    t_assert_close(m, c, w, 1e-12);          /* row 0 */
    t_assert_close(m + w, f + w, w, 1e-12);  /* row 1 */
    double *ms = t_eval_with(masked_seq, &bind, 1), *cs = t_eval(cut_seq), *fs = t_eval(full_seq);
    /* row 0: steps 0, 1 as the cut sequence, steps 2, 3 zeros; row 1 as the full one */
    t_assert_close(ms, cs, 2 * w, 1e-12);
    double zeros[12] = { 0 };
    t_assert_close(ms + 2 * w, zeros, 2 * w, 0);
    t_assert_close(ms + 4 * w, fs + 4 * w, 4 * w, 1e-12);
    free(m), free(c), free(f), free(ms), free(cs), free(fs);
    jg_graph_free(g);
}

Test(recurrent, masking_rnn) { check_masking(JG_RNN_TANH, false); }
Test(recurrent, masking_gru) { check_masking(JG_GRU, false); }
Test(recurrent, masking_lstm) { check_masking(JG_LSTM, false); }
Test(recurrent, masking_bilstm) { check_masking(JG_LSTM, true); }
Test(recurrent, masking_bigru) { check_masking(JG_GRU, true); }

/* ---- gradients: B = 2, T = 3, I = 2, H = 3, all in f64 */

static void check_grad(jg_rnn_kind kind, bool bidirectional, bool lengths, bool seq)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3, 2), 3);
    jg_node *len = lengths ? i32_const(g, jg_shape(2), (int32_t[]){ 3, 2 }) : NULL;
    jg_node *y = jg_rnn(g, kind, "r", x, 3,
                        &(jg_rnn_opts){ .bidirectional = bidirectional, .return_sequences = seq,
                                        .lengths = len });
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    jg_node *wrt[7] = { x };
    int n = 1;
    const char *dirs[2] = { bidirectional ? "r.fwd" : "r", "r.bwd" };
    for (int d = 0; d < (bidirectional ? 2 : 1); d++) {
        const char *parts[3] = { "w_ih", "w_hh", "b" };
        for (int p = 0; p < 3; p++) {
            char name[32];
            snprintf(name, sizeof name, "%s.%s", dirs[d], parts[p]);
            wrt[n] = jg_param_find(g, name);
            cr_assert(wrt[n], "no parameter %s", name);
            cr_assert_eq(jg_node_dtype(wrt[n]), JG_F64);
            n++;
        }
    }
    t_gradcheck(g, y, wrt, n);
    jg_graph_free(g);
}

Test(recurrent, gradcheck_rnn) { check_grad(JG_RNN_TANH, false, false, true); }
Test(recurrent, gradcheck_gru) { check_grad(JG_GRU, false, false, true); }
Test(recurrent, gradcheck_lstm) { check_grad(JG_LSTM, false, false, true); }
Test(recurrent, gradcheck_lstm_last) { check_grad(JG_LSTM, false, false, false); }
Test(recurrent, gradcheck_bilstm) { check_grad(JG_LSTM, true, false, false); }
Test(recurrent, gradcheck_bilstm_lengths) { check_grad(JG_LSTM, true, true, true); }
Test(recurrent, gradcheck_gru_lengths) { check_grad(JG_GRU, false, true, false); }

Test(recurrent, gradcheck_lstm_cell_state)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 2), 1);
    jg_node *h = t_param(g, "h", jg_shape(2, 3), 2);
    jg_node *c = t_param(g, "c", jg_shape(2, 3), 3);
    jg_node *ho, *co;
    jg_lstm_cell(g, "l", x, h, c, &ho, &co);
    jg_node *h2, *c2;
    jg_lstm_cell(g, "l", x, ho, co, &h2, &c2); /* a second step: the weights twice */
    jg_node *wrt[6] = { x, h, c, jg_param_find(g, "l.w_ih"), jg_param_find(g, "l.w_hh"),
                        jg_param_find(g, "l.b") };
    t_gradcheck(g, jg_add(h2, jg_scale(c2, 0.5)), wrt, 6);
    jg_graph_free(g);
}

/* ---- JIT against the reference executor: values and gradients, f32 */

/* Small: every unrolled step is its own kernels (each reads other buffer slots, so the kernel
 * cache cannot share them), and compiling dominates; O0 keeps it short. */
static void jit_vs_reference(jg_rnn_kind kind, bool bidirectional, bool lengths)
{
    jg_graph *g = jg_graph_new();
    enum { B = 3, T = 3, I = 4, H = 5, N_OUT = 4 };
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(B, T, I));
    jg_node *len = jg_input(g, "len", JG_I32, jg_shape(B));
    jg_node *outs[N_OUT];
    outs[0] = jg_rnn(g, kind, "r", x, H,
                     &(jg_rnn_opts){ .bidirectional = bidirectional, .return_sequences = true,
                                     .lengths = lengths ? len : NULL });
    jg_node *loss = jg_sum(jg_square(outs[0]), JG_ALL_AXES, false);
    jg_node *wrt[3] = { x, jg_param_find(g, bidirectional ? "r.bwd.w_ih" : "r.w_ih"),
                        jg_param_find(g, bidirectional ? "r.fwd.w_hh" : "r.w_hh") };
    cr_assert_eq(jg_grad(g, loss, wrt, 3, outs + 1), JG_OK, "%s", jg_errmsg(g));
    float xs[B * T * I];
    for (int i = 0; i < B * T * I; i++)
        xs[i] = (float)sin(0.7 * i + 0.3);
    int32_t lens[B] = { 3, 1, 2 };
    double *res[2][N_OUT];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, outs, N_OUT, &(jg_opts){
            .executor = e ? JG_EXEC_JIT : JG_EXEC_REFERENCE, .opt_level = -1 });
        cr_assert(p, "%s", jg_errmsg(g));
        cr_assert_eq(jg_program_set(p, "x", xs, sizeof xs), JG_OK, "%s", jg_errmsg(p));
        cr_assert_eq(jg_program_set(p, "len", lens, sizeof lens), JG_OK, "%s", jg_errmsg(p));
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        for (int i = 0; i < N_OUT; i++) {
            int64_t n = jg_shape_numel(jg_node_shape(outs[i]));
            float *f = malloc((size_t)n * sizeof *f);
            res[e][i] = malloc((size_t)n * sizeof(double));
            cr_assert(f && res[e][i]);
            cr_assert_eq(jg_program_get(p, i, f, (size_t)n * sizeof *f), JG_OK, "%s",
                         jg_errmsg(p));
            for (int64_t j = 0; j < n; j++)
                res[e][i][j] = f[j];
            free(f);
        }
        jg_program_free(p);
    }
    for (int i = 0; i < N_OUT; i++) {
        t_assert_close(res[1][i], res[0][i], jg_shape_numel(jg_node_shape(outs[i])), 2e-5);
        free(res[0][i]);
        free(res[1][i]);
    }
    jg_graph_free(g);
}

Test(recurrent, jit_bilstm_lengths) { jit_vs_reference(JG_LSTM, true, true); }
Test(recurrent, jit_gru_lengths) { jit_vs_reference(JG_GRU, false, true); }
Test(recurrent, jit_rnn) { jit_vs_reference(JG_RNN_TANH, false, false); }

/* ---- embedding */

Test(recurrent, embedding_values_and_grad)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = param_values(g, "emb", jg_shape(4, 2), (double[]){ 0, 1, 10, 11, 20, 21, 30, 31 });
    jg_node *ids = i32_const(g, jg_shape(2, 3), (int32_t[]){ 3, 0, 1, 1, 1, 2 });
    jg_node *e = jg_embedding(g, "emb", ids, 4, 2);
    t_assert_shape(e, jg_shape(2, 3, 2));
    double *v = t_eval(e);
    t_assert_close(v, (double[]){ 30, 31, 0, 1, 10, 11, 10, 11, 10, 11, 20, 21 }, 12, 0);
    free(v);
    cr_assert_eq(jg_param_count(g), 1);
    t_gradcheck(g, jg_square(e), &w, 1);
    /* created on first use: f32, N(0, 1) */
    jg_node *e2 = jg_embedding(g, "emb2", i32_const(g, jg_shape(3), (int32_t[]){ 0, 1, 2 }),
                               100, 8);
    t_assert_shape(e2, jg_shape(3, 8));
    cr_assert_eq(jg_node_dtype(e2), JG_F32);
    t_assert_shape(jg_param_find(g, "emb2"), jg_shape(100, 8));
    /* in an f64 model: created f64, and a weight of another dtype is an error */
    jg_node *ids2 = i32_const(g, jg_shape(2), (int32_t[]){ 0, 1 });
    cr_assert_eq(jg_node_dtype(jg_embedding_as(g, "emb3", ids2, 5, 2, JG_F64)), JG_F64);
    cr_assert_eq(jg_node_dtype(jg_param_find(g, "emb3")), JG_F64);
    jg_embedding_as(g, "emb2", ids2, 100, 8, JG_F64);
    t_assert_error(g, JG_ERR_DTYPE, "jg_embedding_as: parameter 'emb2' exists as f32, this "
                   "call needs f64");
    jg_graph_free(g);
}

/* ---- misuse */

Test(recurrent, misuse_ranks)
{
    jg_graph *g = jg_graph_new();
    jg_rnn(g, JG_LSTM, "m", jg_input(g, "x", JG_F32, jg_shape(2, 3)), 4, NULL);
    t_assert_error(g, JG_ERR_SHAPE, "jg_rnn: x must be 3-D");
    cr_assert(strstr(jg_errmsg(g), "test_recurrent.c:"), "%s", jg_errmsg(g));
    jg_graph_free(g);

    g = jg_graph_new();
    jg_node *x3 = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_node *h = jg_fill(g, JG_F32, jg_shape(2, 5), 0);
    jg_node *y = jg_rnn_cell(g, "c", x3, h);
    cr_assert(!jg_node_ok(y));
    t_assert_error(g, JG_ERR_SHAPE, "jg_rnn_cell: x and h must be 2-D");
    jg_graph_free(g);
}

Test(recurrent, misuse_hidden_sizes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 4));
    jg_node *h = jg_fill(g, JG_F32, jg_shape(2, 3), 0);
    jg_node *c = jg_fill(g, JG_F32, jg_shape(2, 5), 0);
    jg_node *ho = NULL, *co = NULL;
    jg_lstm_cell(g, "l", x, h, c, &ho, &co);
    cr_assert(!jg_node_ok(ho) && !jg_node_ok(co));
    t_assert_error(g, JG_ERR_SHAPE, "jg_lstm_cell: c must have h's shape");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_gru_cell(g, "u", jg_input(g, "x", JG_F32, jg_shape(2, 4)),
                jg_fill(g, JG_F32, jg_shape(3, 3), 0));
    t_assert_error(g, JG_ERR_SHAPE, "jg_gru_cell: batch sizes differ");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_rnn(g, JG_GRU, "u", jg_input(g, "x", JG_F32, jg_shape(2, 3, 4)), 0, NULL);
    t_assert_error(g, JG_ERR_ARG, "jg_rnn: hidden size 0");
    jg_graph_free(g);
}

Test(recurrent, misuse_prefix_reused_with_other_sizes)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    cr_assert(jg_node_ok(jg_rnn(g, JG_LSTM, "m", x, 8, NULL)));
    jg_node *y = jg_rnn(g, JG_LSTM, "m", x, 16, NULL);
    cr_assert(!jg_node_ok(y));
    t_assert_error(g, JG_ERR_SHAPE, "parameter 'm.w_ih' exists with shape [4,32]");
    jg_graph_free(g);

    g = jg_graph_new(); /* same sizes, other kind: the gate count differs */
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "m", x, 8, NULL);
    jg_rnn(g, JG_GRU, "m", x, 8, NULL);
    t_assert_error(g, JG_ERR_SHAPE, "'m.w_ih' exists with shape [4,32], this call needs [4,24]");
    jg_graph_free(g);

    g = jg_graph_new(); /* same sizes, other dtype */
    jg_rnn(g, JG_RNN_TANH, "m", jg_input(g, "x", JG_F32, jg_shape(2, 3, 4)), 8, NULL);
    jg_rnn(g, JG_RNN_TANH, "m", jg_input(g, "x64", JG_F64, jg_shape(2, 3, 4)), 8, NULL);
    t_assert_error(g, JG_ERR_DTYPE, "'m.w_ih' exists as f32, this call needs f64");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_param(g, "emb", jg_shape(10, 4), jg_zeros());
    jg_embedding(g, "emb", i32_const(g, jg_shape(1), (int32_t[]){ 0 }), 10, 5);
    t_assert_error(g, JG_ERR_SHAPE, "jg_embedding: parameter 'emb' exists with shape [10,4]");
    jg_graph_free(g);
}

Test(recurrent, misuse_arguments)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "m", x, 4, &(jg_rnn_opts){ .lengths = jg_input(g, "l", JG_F32, jg_shape(2)) });
    t_assert_error(g, JG_ERR_SHAPE, "jg_rnn: lengths must be i32 [2]");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "m", x, 4, &(jg_rnn_opts){ .lengths = jg_input(g, "l", JG_I32, jg_shape(3)) });
    t_assert_error(g, JG_ERR_SHAPE, "jg_rnn: lengths must be i32 [2]");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_rnn(g, (jg_rnn_kind)7, "m", jg_input(g, "x", JG_F32, jg_shape(2, 3, 4)), 4, NULL);
    t_assert_error(g, JG_ERR_ARG, "jg_rnn: unknown kind 7");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_rnn(g, JG_GRU, "", jg_input(g, "x", JG_F32, jg_shape(2, 3, 4)), 4, NULL);
    t_assert_error(g, JG_ERR_ARG, "jg_rnn: prefix is NULL, empty");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_rnn_cell(g, NULL, jg_input(g, "x", JG_F32, jg_shape(2, 4)), jg_fill(g, JG_F32, jg_shape(2, 3), 0));
    t_assert_error(g, JG_ERR_ARG, "jg_rnn_cell: prefix is NULL or empty");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_rnn(g, JG_LSTM, "m", jg_input(g, "x", JG_I32, jg_shape(2, 3, 4)), 4, NULL);
    t_assert_error(g, JG_ERR_DTYPE, "jg_rnn: x must be f32 or f64, got i32");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_rnn_cell(g, "c", jg_input(g, "x", JG_F32, jg_shape(2, 4)), jg_fill(g, JG_F64, jg_shape(2, 3), 0));
    t_assert_error(g, JG_ERR_DTYPE, "jg_rnn_cell: x and h must have one float dtype");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_node *y = jg_gru_cell(g, "c", NULL, jg_fill(g, JG_F32, jg_shape(2, 3), 0));
    cr_assert(!jg_node_ok(y));
    t_assert_error(g, JG_ERR_ARG, "jg_gru_cell: x is NULL");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_graph *g2 = jg_graph_new();
    jg_rnn_cell(g, "c", jg_input(g2, "x", JG_F32, jg_shape(2, 4)), jg_fill(g, JG_F32, jg_shape(2, 3), 0));
    t_assert_error(g, JG_ERR_ARG, "jg_rnn_cell: x belongs to another graph");
    jg_graph_free(g2);
    jg_graph_free(g);

    g = jg_graph_new();
    jg_embedding(g, "e", jg_input(g, "ids", JG_F32, jg_shape(2)), 10, 4);
    t_assert_error(g, JG_ERR_DTYPE, "jg_embedding: ids must be i32, got f32");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_embedding(g, "e", jg_input(g, "ids", JG_I32, jg_shape(2)), 0, 4);
    t_assert_error(g, JG_ERR_ARG, "jg_embedding: vocab (0) and dim (4) must be >= 1");
    jg_graph_free(g);

    /* no graph to record on: a poisoned node, no crash */
    cr_assert(!jg_node_ok(jg_rnn(NULL, JG_LSTM, "m", NULL, 4, NULL)));
    cr_assert(!jg_node_ok(jg_embedding(NULL, "e", NULL, 4, 4)));
    jg_node *ho = NULL;
    cr_assert(!jg_node_ok(jg_lstm_cell(NULL, "l", NULL, NULL, NULL, &ho, NULL)));
    cr_assert(!jg_node_ok(ho));
}

/* A poisoned operand gives a poisoned result and keeps the first error. */
Test(recurrent, poison_propagates)
{
    jg_graph *g = jg_graph_new();
    jg_node *bad = jg_matmul(jg_input(g, "a", JG_F32, jg_shape(2, 3)),
                             jg_input(g, "b", JG_F32, jg_shape(4, 3)));
    jg_node *y = jg_rnn(g, JG_LSTM, "m", bad, 4, NULL);
    cr_assert(!jg_node_ok(y));
    t_assert_error(g, JG_ERR_SHAPE, "jg_matmul");
    cr_assert_eq(jg_param_count(g), 0);
    jg_graph_free(g);
}
