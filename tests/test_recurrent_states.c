/* jg_rnn's initial and final states and PyTorch's GRU (src/ops/recurrent.c): h0/c0 against
 * unrolled cells started from them, h_n/c_n against the cells' last states (both directions,
 * with lengths), the b_hn GRU step worked out by hand, f64 gradient checks through the states
 * and b_hn, the JIT against the reference executor, and misuse. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdlib.h>

TestSuite(recurrent_states, .timeout = 60);

static double sig(double v) { return 1 / (1 + exp(-v)); }

static jg_node *param_values(jg_graph *g, const char *name, jg_shape s, const double *v)
{
    return jg_param_as(g, name, JG_F64, s, jg_from_data(v));
}

static void expect_same(jg_node *a, jg_node *b)
{
    t_assert_shape(a, jg_node_shape(b));
    double *x = t_eval(a), *y = t_eval(b);
    t_assert_close(x, y, jg_shape_numel(jg_node_shape(b)), 1e-12);
    free(x);
    free(y);
}

/* PyTorch's GRU step, B = I = H = 1: n = tanh(x w_in + b_in + r (h w_hn + b_hn)). */
Test(recurrent_states, gru_b_hn_step_by_hand)
{
    jg_graph *g = jg_graph_new();
    const double wi[3] = { 0.1, 0.2, 0.3 }, wh[3] = { 0.5, -0.5, 0.25 }, b[3] = { 0.1, -0.2, 0.3 };
    const double b_hn = -0.7, x = 0.5, h0 = -0.3;
    param_values(g, "u.w_ih", jg_shape(1, 3), wi);
    param_values(g, "u.w_hh", jg_shape(1, 3), wh);
    param_values(g, "u.b", jg_shape(3), b);
    param_values(g, "u.b_hn", jg_shape(1), &b_hn);
    jg_node *hn = NULL;
    jg_node *y = jg_rnn(g, JG_GRU, "u", t_const(g, jg_shape(1, 1, 1), &x), 1,
                        &(jg_rnn_opts){ .h0 = t_const(g, jg_shape(1, 1), &h0), .h_n = &hn,
                                        .gru_b_hn = true });
    double r = sig(x * wi[0] + b[0] + h0 * wh[0]), z = sig(x * wi[1] + b[1] + h0 * wh[1]);
    double n = tanh(x * wi[2] + b[2] + r * (h0 * wh[2] + b_hn));
    double want = (1 - z) * n + z * h0;
    t_expect(y, jg_shape(1, 1), &want);
    t_expect(hn, jg_shape(1, 1), &want);
    /* created when missing: zeros, so the step equals the plain GRU's */
    jg_node *x2 = t_randn(g, jg_shape(2, 3, 2), 5);
    jg_node *a = jg_rnn(g, JG_GRU, "v", x2, 3, &(jg_rnn_opts){ .gru_b_hn = true });
    t_assert_shape(jg_param_find(g, "v.b_hn"), jg_shape(3));
    expect_same(a, jg_rnn(g, JG_GRU, "v", x2, 3, NULL));
    jg_graph_free(g);
}

Test(recurrent_states, lstm_from_h0_c0_equals_unrolled_cells)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(2, 3, 2), 7);
    jg_node *h0 = t_randn(g, jg_shape(2, 4), 8), *c0 = t_randn(g, jg_shape(2, 4), 9);
    jg_node *hn = NULL, *cn = NULL;
    jg_node *last = jg_rnn(g, JG_LSTM, "l", x, 4,
                           &(jg_rnn_opts){ .h0 = h0, .c0 = c0, .h_n = &hn, .c_n = &cn });
    jg_node *h = h0, *c = c0;
    for (int t = 0; t < 3; t++)
        jg_lstm_cell(g, "l", jg_reshape(jg_slice(x, 1, t, t + 1, 1), jg_shape(2, 2)), h, c, &h,
                     &c);
    expect_same(last, h);
    expect_same(hn, h);
    expect_same(cn, c);
    jg_graph_free(g);
}

/* Bidirectional with lengths: the backward half of h_n and c_n is the forward LSTM over each
 * row's own reversed steps, started from the backward half of h0 and c0. */
Test(recurrent_states, bidirectional_states_with_lengths)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(1, 4, 2), 11);
    jg_node *h0 = t_randn(g, jg_shape(1, 6), 12), *c0 = t_randn(g, jg_shape(1, 6), 13);
    jg_node *len = jg_const(g, JG_I32, jg_shape(1), (int32_t[]){ 3 });
    jg_node *hn = NULL, *cn = NULL;
    jg_node *last = jg_rnn(g, JG_LSTM, "b", x, 3,
                           &(jg_rnn_opts){ .bidirectional = true, .lengths = len, .h0 = h0,
                                           .c0 = c0, .h_n = &hn, .c_n = &cn });
    expect_same(hn, last);
    jg_node *x3 = jg_slice(x, 1, 0, 3, 1);
    jg_node *fh = NULL, *fc = NULL, *bh = NULL, *bc = NULL;
    jg_rnn(g, JG_LSTM, "b.fwd", x3, 3,
           &(jg_rnn_opts){ .h0 = jg_slice(h0, 1, 0, 3, 1), .c0 = jg_slice(c0, 1, 0, 3, 1),
                           .h_n = &fh, .c_n = &fc });
    jg_rnn(g, JG_LSTM, "b.bwd", jg_slice(x3, 1, -1, INT64_MIN, -1), 3,
           &(jg_rnn_opts){ .h0 = jg_slice(h0, 1, 3, 6, 1), .c0 = jg_slice(c0, 1, 3, 6, 1),
                           .h_n = &bh, .c_n = &bc });
    expect_same(hn, jg_concat(((jg_node *[]){ fh, bh }), 2, 1));
    expect_same(cn, jg_concat(((jg_node *[]){ fc, bc }), 2, 1));
    jg_graph_free(g);
}

Test(recurrent_states, gradcheck_through_states_and_b_hn)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3, 2), 21);
    jg_node *h0 = t_param(g, "h0", jg_shape(2, 6), 22), *c0 = t_param(g, "c0", jg_shape(2, 6), 23);
    jg_node *cn = NULL;
    jg_node *y = jg_rnn(g, JG_LSTM, "l", x, 3,
                        &(jg_rnn_opts){ .bidirectional = true, .h0 = h0, .c0 = c0, .c_n = &cn,
                                        .return_sequences = true });
    jg_node *loss = jg_add(jg_sum(jg_square(y), JG_ALL_AXES, false),
                           jg_sum(jg_tanh(cn), JG_ALL_AXES, false));
    t_gradcheck(g, loss, (jg_node *[]){ x, h0, c0 }, 3);
    jg_node *gh0 = t_param(g, "gh0", jg_shape(2, 3), 24);
    jg_node *gy = jg_rnn(g, JG_GRU, "gru", x, 3, &(jg_rnn_opts){ .h0 = gh0, .gru_b_hn = true });
    jg_node *b_hn = jg_param_find(g, "gru.b_hn");
    cr_assert_eq(jg_param_set(g, "gru.b_hn", (double[]){ 0.3, -0.2, 0.5 }, 24), JG_OK);
    t_gradcheck(g, gy, (jg_node *[]){ x, gh0, b_hn, jg_param_find(g, "gru.w_hh") }, 4);
    jg_graph_free(g);
}

Test(recurrent_states, jit_matches_reference)
{
    tctx c;
    ctx_init(&c, 500);
    jg_node *x = input(&c, JG_F32, jg_shape(3, 3, 4), SIGNED);
    jg_node *h0 = input(&c, JG_F32, jg_shape(3, 10), SIGNED);
    jg_node *c0 = input(&c, JG_F32, jg_shape(3, 10), SIGNED);
    jg_node *len = input_(&c, JG_I32, jg_shape(3), POS, 3);
    jg_node *hn = NULL, *cn = NULL, *gn = NULL;
    jg_node *y = jg_rnn(c.g, JG_LSTM, "l", x, 5,
                        &(jg_rnn_opts){ .bidirectional = true, .lengths = len, .h0 = h0,
                                        .c0 = c0, .h_n = &hn, .c_n = &cn,
                                        .return_sequences = true });
    jg_node *gy = jg_rnn(c.g, JG_GRU, "g", x, 5,
                         &(jg_rnn_opts){ .h0 = jg_slice(h0, 1, 0, 5, 1), .gru_b_hn = true,
                                         .h_n = &gn });
    jg_param_set(c.g, "g.b_hn", (float[]){ 0.5f, -1, 0.25f, 2, -0.5f }, 20);
    jg_node *loss = jg_add(jg_sum(jg_square(y), JG_ALL_AXES, false),
                           jg_add(jg_sum(cn, JG_ALL_AXES, false), jg_sum(gy, JG_ALL_AXES, false)));
    jg_node *wrt[3] = { h0, c0, jg_param_find(c.g, "g.b_hn") }, *d[3];
    cr_assert_eq(jg_grad(c.g, loss, wrt, 3, d), JG_OK, "%s", jg_errmsg(c.g));
    jg_node *outs[7] = { y, hn, cn, gn, d[0], d[1], d[2] };
    check_opts(&c, outs, 7, (tol){ 2e-5, 1e-12 }, (jg_opts){ .opt_level = -1 },
               "recurrent states");
    ctx_fini(&c);
}

Test(recurrent_states, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_node *hn = x;
    jg_rnn(g, JG_GRU, "r", x, 5, &(jg_rnn_opts){ .c0 = jg_fill(g, JG_F32, jg_shape(2, 5), 0),
                                                  .h_n = &hn });
    t_assert_error(g, JG_ERR_ARG, "jg_rnn: c0 and c_n are the LSTM's cell state; this is a GRU");
    cr_assert(!jg_node_ok(hn), "h_n is poisoned on failure");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "r", x, 5, &(jg_rnn_opts){ .gru_b_hn = true });
    t_assert_error(g, JG_ERR_ARG, "jg_rnn: gru_b_hn is for JG_GRU");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "r", x, 5, &(jg_rnn_opts){ .bidirectional = true,
                                                   .h0 = jg_fill(g, JG_F32, jg_shape(2, 5), 0) });
    t_assert_error(g, JG_ERR_SHAPE, "jg_rnn: h0 must be f32 [2,10]");
    jg_graph_free(g);

    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(2, 3, 4));
    jg_rnn(g, JG_LSTM, "r", x, 5, &(jg_rnn_opts){ .c0 = jg_fill(g, JG_F64, jg_shape(2, 5), 0) });
    t_assert_error(g, JG_ERR_SHAPE, "jg_rnn: c0 must be f32 [2,5]");
    jg_graph_free(g);
}
