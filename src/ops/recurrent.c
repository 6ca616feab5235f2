/* Recurrent layers: tanh RNN, GRU and LSTM cells, sequences unrolled over time (masked by
 * lengths, optionally bidirectional) and the embedding lookup. Everything here is a COMPOSITE
 * of existing ops, so gradients, the JIT and the reference executor come for free; the only
 * state is the weights, kept in the graph's store under the caller's prefix and reused by
 * name, which is what makes unrolled steps share them. */
#include "ops/op.h"

#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN 256

/* Gate counts per kind: the weights hold all gates side by side along their last axis. */
static const int gates_of[3] = { 1, 3, 4 };
static const char *const cell_fn_of[3] = { "jg_rnn_cell", "jg_gru_cell", "jg_lstm_cell" };

/* A poisoned node when there is no graph to record on. */
static jg_node *orphan(jg_loc at) { return op_build(at, JG_OP_POISON, NULL, 0, NULL); }

/* A node argument is usable: present, of graph g, not poisoned (whose error is already
 * recorded, so nothing more is said). */
static bool node_ok(jg_loc at, jg_graph *g, const char *fn, jg_node *n, const char *what)
{
    if (!n) {
        graph_error(g, at, JG_ERR_ARG, "%s: %s is NULL", fn, what);
        return false;
    }
    if (n->graph != g) {
        graph_error(g, at, JG_ERR_ARG, "%s: %s belongs to another graph", fn, what);
        return false;
    }
    return !node_poisoned(n);
}

static bool is_float(jg_dtype t) { return t == JG_F32 || t == JG_F64; }

/* The parameter `name` of this shape: found in the store (shape and, unless any_dtype, dtype
 * must match) or created with init. *created tells which. NULL after recording an error. */
static jg_node *weight(jg_loc at, jg_graph *g, const char *fn, const char *name, jg_dtype t,
                       bool any_dtype, jg_shape s, jg_init init, bool *created)
{
    *created = false;
    jg_node *w = jg_param_find(g, name);
    if (w) {
        char have[8 * 24], want[8 * 24];
        if (!shape_eq(w->shape, s)) {
            graph_error(g, at, JG_ERR_SHAPE,
                        "%s: parameter '%s' exists with shape %s, this call needs %s", fn,
                        name, FMT_SHAPE(have, w->shape), FMT_SHAPE(want, s));
            return NULL;
        }
        if (!any_dtype && w->dtype != t) {
            graph_error(g, at, JG_ERR_DTYPE,
                        "%s: parameter '%s' exists as %s, this call needs %s", fn, name,
                        jg_dtype_str(w->dtype), jg_dtype_str(t));
            return NULL;
        }
        return w;
    }
    w = jg_param_(at, g, name, t, s, init);
    if (node_poisoned(w))
        return NULL;
    *created = true;
    return w;
}

typedef struct cell_weights {
    jg_node *w_ih, *w_hh, *b;
    jg_node *b_hn; /* GRU as PyTorch: the n gate's bias inside r * (h W_hn + b_hn), or NULL */
    jg_node *lstm_scale; /* LSTM: [4H] of 1, 1, 2, 1 per gate block (see cell_step) */
} cell_weights;

/* Finds or creates "<prefix>.w_ih", "<prefix>.w_hh", "<prefix>.b" for k gates (and
 * "<prefix>.b_hn" [H] when b_hn). */
static bool cell_weights_get(jg_loc at, jg_graph *g, const char *fn, const char *prefix,
                             jg_rnn_kind kind, bool b_hn, jg_dtype t, int64_t in,
                             int64_t hidden, cell_weights *w)
{
    if (!prefix || !*prefix) {
        graph_error(g, at, JG_ERR_ARG, "%s: prefix is NULL or empty", fn);
        return false;
    }
    if (strlen(prefix) > NAME_MAX_LEN - 8) {
        graph_error(g, at, JG_ERR_ARG, "%s: prefix is longer than %d characters", fn,
                    NAME_MAX_LEN - 8);
        return false;
    }
    int64_t k = gates_of[kind];
    char name[NAME_MAX_LEN];
    bool created;
    snprintf(name, sizeof name, "%s.w_ih", prefix);
    w->w_ih = weight(at, g, fn, name, t, false, jg_shape(in, k * hidden), jg_xavier_uniform(),
                     &created);
    if (!w->w_ih)
        return false;
    snprintf(name, sizeof name, "%s.w_hh", prefix);
    w->w_hh = weight(at, g, fn, name, t, false, jg_shape(hidden, k * hidden),
                     jg_xavier_uniform(), &created);
    if (!w->w_hh)
        return false;
    snprintf(name, sizeof name, "%s.b", prefix);
    w->b = weight(at, g, fn, name, t, false, jg_shape(k * hidden), jg_zeros(), &created);
    if (!w->b)
        return false;
    w->b_hn = NULL;
    if (b_hn) {
        bool made;
        char bname[NAME_MAX_LEN];
        snprintf(bname, sizeof bname, "%s.b_hn", prefix);
        w->b_hn = weight(at, g, fn, bname, t, false, jg_shape(hidden), jg_zeros(), &made);
        if (!w->b_hn)
            return false;
    }
    w->lstm_scale = NULL;
    if (kind == JG_LSTM) {
        size_t n = (size_t)(4 * hidden);
        double *v = malloc(n * sizeof *v);
        float *f = malloc(n * sizeof *f);
        if (!v || !f) {
            free(v);
            free(f);
            graph_error(g, at, JG_ERR_NOMEM, "%s: out of memory", fn);
            return false;
        }
        for (size_t j = 0; j < n; j++)
            f[j] = (float)(v[j] = j / (size_t)hidden == 2 ? 2 : 1);
        w->lstm_scale = jg_const_(at, g, t, jg_shape(4 * hidden), t == JG_F64 ? (void *)v : (void *)f);
        free(v);
        free(f);
    }
    if (created && kind == JG_LSTM) {
        /* A forget-gate bias of 1 keeps the cell state flowing early in training
         * (Jozefowicz et al. 2015); gate order i, f, g, o. */
        size_t n = (size_t)(4 * hidden), size = jg_dtype_size(t);
        unsigned char *buf = calloc(n, size);
        if (!buf) {
            graph_error(g, at, JG_ERR_NOMEM, "%s: out of memory", fn);
            return false;
        }
        for (int64_t j = hidden; j < 2 * hidden; j++) {
            if (t == JG_F64)
                ((double *)buf)[j] = 1.0;
            else
                ((float *)buf)[j] = 1.0f;
        }
        jg_status st = jg_param_set(g, name, buf, n * size);
        free(buf);
        if (st != JG_OK) {
            graph_error(g, at, st, "%s: %s", fn, jg_graph_errmsg(g));
            return false;
        }
    }
    return true;
}

/* Columns [k*H, (k+1)*H) of a [B, n*H] gate block. */
static jg_node *gate(jg_loc at, jg_node *a, int k, int64_t hidden)
{
    return jg_slice_(at, a, 1, k * hidden, (k + 1) * hidden, 1);
}

/* One step, given the input projection gi = x W_ih + b [B, k*H]. For the LSTM, *c is read and
 * replaced by c'. Returns h'. */
static jg_node *cell_step(jg_loc at, jg_rnn_kind kind, const cell_weights *w, jg_node *gi,
                          jg_node *h, jg_node **c, int64_t hidden)
{
    jg_node *gh = jg_matmul_(at, h, w->w_hh);
    switch (kind) {
    case JG_RNN_TANH:
        return jg_tanh_(at, jg_add_(at, gi, gh));
    case JG_GRU: {
        jg_node *r = jg_sigmoid_(at, jg_add_(at, gate(at, gi, 0, hidden), gate(at, gh, 0, hidden)));
        jg_node *z = jg_sigmoid_(at, jg_add_(at, gate(at, gi, 1, hidden), gate(at, gh, 1, hidden)));
        jg_node *hn = gate(at, gh, 2, hidden);
        if (w->b_hn)
            hn = jg_add_(at, hn, w->b_hn);
        jg_node *n = jg_tanh_(at, jg_add_(at, gate(at, gi, 2, hidden), jg_mul_(at, r, hn)));
        /* (1 - z) n + z h, written with one multiply */
        return jg_add_(at, n, jg_mul_(at, z, jg_sub_(at, h, n)));
    }
    case JG_LSTM: {
        /* One sigmoid over all four gate blocks, with tanh(a) = 2 sigmoid(2a) - 1 for the
         * candidate g: the nonlinearity then fuses into the matmul's epilogue as one kernel
         * instead of four (a slice per gate splits the fusion groups). */
        jg_node *s = jg_sigmoid_(at, jg_mul_(at, jg_add_(at, gi, gh), w->lstm_scale));
        jg_node *i = gate(at, s, 0, hidden);
        jg_node *f = gate(at, s, 1, hidden);
        jg_node *gg = jg_shift_(at, jg_scale_(at, gate(at, s, 2, hidden), 2), -1);
        jg_node *o = gate(at, s, 3, hidden);
        *c = jg_add_(at, jg_mul_(at, f, *c), jg_mul_(at, i, gg));
        return jg_mul_(at, o, jg_tanh_(at, *c));
    }
    }
    return h;
}

/* The public cells: argument checks, weights, one step. */
static jg_node *cell(jg_loc at, jg_graph *g, jg_rnn_kind kind, const char *prefix, jg_node *x,
                     jg_node *h, jg_node **c)
{
    const char *fn = cell_fn_of[kind];
    if (!g)
        return orphan(at);
    if (!node_ok(at, g, fn, x, "x") || !node_ok(at, g, fn, h, "h") ||
        (kind == JG_LSTM && !node_ok(at, g, fn, *c, "c")))
        return g->poison;
    char xs[8 * 24], hs[8 * 24];
    if (x->shape.ndim != 2 || h->shape.ndim != 2) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: x and h must be 2-D [B, I] and [B, H], got %s and %s",
                    fn, FMT_SHAPE(xs, x->shape), FMT_SHAPE(hs, h->shape));
        return g->poison;
    }
    if (!is_float(x->dtype) || h->dtype != x->dtype) {
        graph_error(g, at, JG_ERR_DTYPE, "%s: x and h must have one float dtype, got %s and %s",
                    fn, jg_dtype_str(x->dtype), jg_dtype_str(h->dtype));
        return g->poison;
    }
    if (x->shape.dim[0] != h->shape.dim[0]) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: batch sizes differ: x %s, h %s", fn,
                    FMT_SHAPE(xs, x->shape), FMT_SHAPE(hs, h->shape));
        return g->poison;
    }
    if (kind == JG_LSTM && (!shape_eq((*c)->shape, h->shape) || (*c)->dtype != h->dtype)) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: c must have h's shape %s and dtype, got %s %s", fn,
                    FMT_SHAPE(hs, h->shape), FMT_SHAPE(xs, (*c)->shape),
                    jg_dtype_str((*c)->dtype));
        return g->poison;
    }
    int64_t hidden = h->shape.dim[1];
    cell_weights w;
    if (!cell_weights_get(at, g, fn, prefix, kind, false, x->dtype, x->shape.dim[1], hidden,
                          &w))
        return g->poison;
    jg_node *gi = jg_add_(at, jg_matmul_(at, x, w.w_ih), w.b);
    return cell_step(at, kind, &w, gi, h, c, hidden);
}

jg_node *jg_rnn_cell_(jg_loc at, jg_graph *g, const char *prefix, jg_node *x, jg_node *h)
{
    return cell(at, g, JG_RNN_TANH, prefix, x, h, NULL);
}

jg_node *jg_gru_cell_(jg_loc at, jg_graph *g, const char *prefix, jg_node *x, jg_node *h)
{
    return cell(at, g, JG_GRU, prefix, x, h, NULL);
}

jg_node *jg_lstm_cell_(jg_loc at, jg_graph *g, const char *prefix, jg_node *x, jg_node *h,
                       jg_node *c, jg_node **h_out, jg_node **c_out)
{
    jg_node *c_new = c;
    jg_node *h_new = cell(at, g, JG_LSTM, prefix, x, h, &c_new);
    if (node_poisoned(h_new) || node_poisoned(c_new))
        c_new = h_new = g ? g->poison : h_new;
    if (h_out)
        *h_out = h_new;
    if (c_out)
        *c_out = c_new;
    return h_new;
}

/* ---- sequences */

/* One direction over a sequence from states h0 and c0 [B, H] (NULL: zeros). xs [B, T, I] is
 * already in the order to process (the backward direction with lengths reverses each
 * sequence first). reverse_steps walks t from T-1 down (the backward direction without
 * lengths). Writes the state after each step into seq[t] (indexed by the time of the element
 * read, when reverse_steps) and returns the final state, which with lengths is the state at
 * each sequence's own length; the LSTM's final cell state goes to *c_last. */
static jg_node *direction(jg_loc at, jg_graph *g, jg_rnn_kind kind, const cell_weights *w,
                          jg_node *xs, int64_t hidden, jg_node *lengths, bool reverse_steps,
                          jg_node *h0, jg_node *c0, jg_node **seq, jg_node **c_last)
{
    int64_t B = xs->shape.dim[0], T = xs->shape.dim[1], I = xs->shape.dim[2];
    jg_dtype t = xs->dtype;
    jg_node *zeros = jg_fill_(at, g, t, jg_shape(B, hidden), 0);
    jg_node *h = h0 ? h0 : zeros;
    jg_node *c = c0 ? c0 : zeros;
    jg_node *zero = jg_scalar_(at, g, t, 0);
    jg_node *len = lengths ? jg_reshape_(at, lengths, jg_shape(B, 1)) : NULL;
    /* The input projection of all T steps is one GEMM over the time-major [T*B, I], so
     * that step t's part is a block of rows, which the step's GEMM reads in place (a
     * contiguous slice is an alias of its buffer, fuse.c). The gradients of the slices are
     * disjoint zero-padded pieces, which pass unslice_sum turns into one concat, so the
     * weight's gradient is one GEMM too. */
    jg_node *time_major = jg_reshape_(at, jg_permute_(at, xs, jg_axes(1, 0, 2)),
                                      jg_shape(T * B, I));
    jg_node *gi_all = jg_add_(at, jg_matmul_(at, time_major, w->w_ih), w->b);
    for (int64_t s = 0; s < T; s++) {
        int64_t step = reverse_steps ? T - 1 - s : s;
        jg_node *gi = jg_slice_(at, gi_all, 0, step * B, (step + 1) * B, 1);
        jg_node *c_new = c;
        jg_node *h_new = cell_step(at, kind, w, gi, h, &c_new, hidden);
        if (len) {
            /* Past its length a sequence keeps its state and outputs zeros. */
            jg_node *live = jg_lt_(at, jg_scalar_(at, g, JG_I32, (double)s), len);
            h = jg_where_(at, live, h_new, h);
            c = kind == JG_LSTM ? jg_where_(at, live, c_new, c) : c;
            seq[step] = jg_where_(at, live, h_new, zero);
        } else {
            h = h_new;
            c = c_new;
            seq[step] = h;
        }
    }
    *c_last = c;
    return h;
}

/* Flat row indices [B, T] (i32) that reverse each sequence within its own length:
 * row b*T + (L_b - 1 - s) for s < L_b, else b*T + s (padding stays in place). The map is its
 * own inverse, so it also puts the backward outputs back in time order. Lengths are clamped
 * to T so that every index stays in range. */
static jg_node *reverse_index(jg_loc at, jg_graph *g, jg_node *lengths, int64_t B, int64_t T)
{
    int32_t *iota = malloc((size_t)T * sizeof *iota), *base = malloc((size_t)B * sizeof *base);
    if (!iota || !base) {
        free(iota);
        free(base);
        graph_error(g, at, JG_ERR_NOMEM, "jg_rnn: out of memory");
        return g->poison;
    }
    for (int64_t s = 0; s < T; s++)
        iota[s] = (int32_t)s;
    for (int64_t b = 0; b < B; b++)
        base[b] = (int32_t)(b * T);
    jg_node *sn = jg_const_(at, g, JG_I32, jg_shape(1, T), iota);
    jg_node *bn = jg_const_(at, g, JG_I32, jg_shape(B, 1), base);
    free(iota);
    free(base);
    jg_node *len = jg_minimum_(at, jg_reshape_(at, lengths, jg_shape(B, 1)),
                               jg_scalar_(at, g, JG_I32, (double)T));
    jg_node *last = jg_sub_(at, jg_sub_(at, len, jg_scalar_(at, g, JG_I32, 1)), sn);
    return jg_add_(at, jg_where_(at, jg_lt_(at, sn, len), last, sn), bn);
}

/* Reorders the rows of a [B, T, D] tensor with flat indices idx [B, T]. */
static jg_node *gather_rows(jg_loc at, jg_node *v, jg_node *idx)
{
    int64_t B = v->shape.dim[0], T = v->shape.dim[1], D = v->shape.dim[2];
    return jg_take_(at, jg_reshape_(at, v, jg_shape(B * T, D)), idx, 0);
}

/* [B, H] x T -> [B, T, H] */
static jg_node *stack(jg_loc at, jg_graph *g, jg_node **seq, int64_t T)
{
    jg_node **cols = malloc((size_t)T * sizeof *cols);
    if (!cols) {
        graph_error(g, at, JG_ERR_NOMEM, "jg_rnn: out of memory");
        return g->poison;
    }
    for (int64_t s = 0; s < T; s++) {
        jg_shape sh = seq[s]->shape;
        cols[s] = jg_reshape_(at, seq[s], jg_shape(sh.dim[0], 1, sh.dim[1]));
    }
    jg_node *out = jg_concat_(at, cols, (int)T, 1);
    free(cols);
    return out;
}

/* Checks an initial state opts->h0 or c0: [B, D*H] of x's dtype. */
static bool state_ok(jg_loc at, jg_graph *g, const char *what, jg_node *s, jg_node *x,
                     int64_t width)
{
    char a[8 * 24];
    if (!node_ok(at, g, "jg_rnn", s, what))
        return false;
    if (s->dtype != x->dtype || !shape_eq(s->shape, jg_shape(x->shape.dim[0], width))) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_rnn: %s must be %s [%lld,%lld] (x's dtype, [B, "
                    "directions * hidden]), got %s %s", what, jg_dtype_str(x->dtype),
                    (long long)x->shape.dim[0], (long long)width, jg_dtype_str(s->dtype),
                    FMT_SHAPE(a, s->shape));
        return false;
    }
    return true;
}

/* Everything jg_rnn checks before building: records the error and returns false. */
static bool rnn_args_ok(jg_loc at, jg_graph *g, jg_rnn_kind kind, const char *prefix,
                        jg_node *x, int64_t hidden, const jg_rnn_opts *o)
{
    const char *fn = "jg_rnn";
    if (!node_ok(at, g, fn, x, "x") || (o->lengths && !node_ok(at, g, fn, o->lengths, "lengths")))
        return false;
    char buf[8 * 24];
    if ((unsigned)kind > JG_LSTM) {
        graph_error(g, at, JG_ERR_ARG, "%s: unknown kind %d", fn, (int)kind);
        return false;
    }
    if (x->shape.ndim != 3) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: x must be 3-D [B, T, I], got %s", fn,
                    FMT_SHAPE(buf, x->shape));
        return false;
    }
    if (!is_float(x->dtype)) {
        graph_error(g, at, JG_ERR_DTYPE, "%s: x must be f32 or f64, got %s", fn,
                    jg_dtype_str(x->dtype));
        return false;
    }
    if (hidden < 1 || hidden > (int64_t)1 << 30) {
        graph_error(g, at, JG_ERR_ARG, "%s: hidden size %lld is not in 1..2^30", fn,
                    (long long)hidden);
        return false;
    }
    int64_t B = x->shape.dim[0], T = x->shape.dim[1];
    if (T > INT32_MAX || B * T > INT32_MAX) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: B*T must fit in i32 indices, got %s", fn,
                    FMT_SHAPE(buf, x->shape));
        return false;
    }
    if (o->lengths && (o->lengths->dtype != JG_I32 || o->lengths->shape.ndim != 1 ||
                       o->lengths->shape.dim[0] != B)) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: lengths must be i32 [%lld], got %s %s", fn,
                    (long long)B, jg_dtype_str(o->lengths->dtype),
                    FMT_SHAPE(buf, o->lengths->shape));
        return false;
    }
    if (!prefix || !*prefix || strlen(prefix) > NAME_MAX_LEN - 16) {
        graph_error(g, at, JG_ERR_ARG, "%s: prefix is NULL, empty or longer than %d characters",
                    fn, NAME_MAX_LEN - 16);
        return false;
    }
    if (kind != JG_LSTM && (o->c0 || o->c_n)) {
        graph_error(g, at, JG_ERR_ARG, "%s: c0 and c_n are the LSTM's cell state; this is a %s",
                    fn, kind == JG_GRU ? "GRU" : "tanh RNN");
        return false;
    }
    if (kind != JG_GRU && o->gru_b_hn) {
        graph_error(g, at, JG_ERR_ARG, "%s: gru_b_hn is for JG_GRU", fn);
        return false;
    }
    int64_t width = (o->bidirectional ? 2 : 1) * hidden;
    return (!o->h0 || state_ok(at, g, "h0", o->h0, x, width)) &&
           (!o->c0 || state_ok(at, g, "c0", o->c0, x, width));
}

/* Direction d's part [B, H] of a state [B, D*H] (NULL stays NULL). */
static jg_node *state_part(jg_loc at, jg_node *s, int d, int64_t hidden, bool both)
{
    return s && both ? jg_slice_(at, s, 1, d * hidden, (d + 1) * hidden, 1) : s;
}

static jg_node *rnn(jg_loc at, jg_graph *g, jg_rnn_kind kind, const char *prefix, jg_node *x,
                    int64_t hidden, const jg_rnn_opts *opts)
{
    const char *fn = "jg_rnn";
    jg_rnn_opts o = *opts;
    int64_t B = x->shape.dim[0], T = x->shape.dim[1], I = x->shape.dim[2];
    int n_dirs = o.bidirectional ? 2 : 1;
    jg_node **seq = calloc((size_t)(n_dirs * T), sizeof *seq);
    if (!seq) {
        graph_error(g, at, JG_ERR_NOMEM, "%s: out of memory", fn);
        return g->poison;
    }
    jg_node *last[2] = { NULL, NULL }, *outs[2] = { NULL, NULL }, *c_last[2] = { NULL, NULL };
    bool failed = false;
    for (int d = 0; d < n_dirs && !failed; d++) {
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof name, "%s%s", prefix, !o.bidirectional ? "" : d ? ".bwd" : ".fwd");
        cell_weights w;
        if (!cell_weights_get(at, g, fn, name, kind, o.gru_b_hn, x->dtype, I, hidden, &w)) {
            failed = true;
            break;
        }
        jg_node **sd = seq + d * T;
        jg_node *h0 = state_part(at, o.h0, d, hidden, n_dirs == 2);
        jg_node *c0 = state_part(at, o.c0, d, hidden, n_dirs == 2);
        if (d == 1 && o.lengths) {
            jg_node *idx = reverse_index(at, g, o.lengths, B, T);
            jg_node *xr = gather_rows(at, x, idx);
            last[d] = direction(at, g, kind, &w, xr, hidden, o.lengths, false, h0, c0, sd,
                                &c_last[d]);
            if (o.return_sequences)
                outs[d] = gather_rows(at, stack(at, g, sd, T), idx);
        } else {
            last[d] = direction(at, g, kind, &w, x, hidden, o.lengths, d == 1, h0, c0, sd,
                                &c_last[d]);
            if (o.return_sequences)
                outs[d] = stack(at, g, sd, T);
        }
    }
    free(seq);
    if (failed)
        return g->poison;
    jg_node *h_n = n_dirs == 1 ? last[0] : jg_concat_(at, last, 2, 1);
    if (opts->h_n)
        *opts->h_n = h_n;
    if (opts->c_n)
        *opts->c_n = n_dirs == 1 ? c_last[0] : jg_concat_(at, c_last, 2, 1);
    if (!o.return_sequences)
        return h_n;
    return n_dirs == 1 ? outs[0] : jg_concat_(at, outs, 2, 2);
}

jg_node *jg_rnn_(jg_loc at, jg_graph *g, jg_rnn_kind kind, const char *prefix, jg_node *x,
                 int64_t hidden, const jg_rnn_opts *opts)
{
    jg_rnn_opts o = opts ? *opts : (jg_rnn_opts){ 0 };
    jg_node *out = !g ? orphan(at)
                   : rnn_args_ok(at, g, kind, prefix, x, hidden, &o)
                       ? rnn(at, g, kind, prefix, x, hidden, &o)
                       : g->poison;
    /* on failure the final states are poisoned too, so no caller reads a stale pointer */
    if (node_poisoned(out) && o.h_n)
        *o.h_n = out;
    if (node_poisoned(out) && o.c_n)
        *o.c_n = out;
    return out;
}

/* ---- embedding */

/* any_dtype: an existing weight is reused whatever its float dtype (jg_embedding). */
static jg_node *embedding(jg_loc at, jg_graph *g, const char *fn, const char *name,
                          jg_node *ids, int64_t vocab, int64_t dim, jg_dtype t, bool any_dtype)
{
    if (!g)
        return orphan(at);
    if (!node_ok(at, g, fn, ids, "ids"))
        return g->poison;
    if (ids->dtype != JG_I32) {
        graph_error(g, at, JG_ERR_DTYPE, "%s: ids must be i32, got %s", fn,
                    jg_dtype_str(ids->dtype));
        return g->poison;
    }
    if (vocab < 1 || dim < 1) {
        graph_error(g, at, JG_ERR_ARG, "%s: vocab (%lld) and dim (%lld) must be >= 1", fn,
                    (long long)vocab, (long long)dim);
        return g->poison;
    }
    if (!name || !*name) {
        graph_error(g, at, JG_ERR_ARG, "%s: name is NULL or empty", fn);
        return g->poison;
    }
    bool created;
    if (!is_float(t)) {
        graph_error(g, at, JG_ERR_DTYPE, "%s: the weight's dtype must be f32 or f64, not %s",
                    fn, jg_dtype_str(t));
        return g->poison;
    }
    jg_node *w = weight(at, g, fn, name, t, any_dtype, jg_shape(vocab, dim), jg_normal(0, 1),
                        &created);
    if (!w)
        return g->poison;
    return jg_take_(at, w, ids, 0);
}

jg_node *jg_embedding_(jg_loc at, jg_graph *g, const char *name, jg_node *ids, int64_t vocab,
                       int64_t dim)
{
    return embedding(at, g, "jg_embedding", name, ids, vocab, dim, JG_F32, true);
}

jg_node *jg_embedding_as_(jg_loc at, jg_graph *g, const char *name, jg_node *ids,
                          int64_t vocab, int64_t dim, jg_dtype t)
{
    return embedding(at, g, "jg_embedding_as", name, ids, vocab, dim, t, false);
}
