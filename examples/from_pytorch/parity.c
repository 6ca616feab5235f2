/* The parity check against PyTorch, jitgrad's side: every feature a port from PyTorch leans on
 * (tie policies, PyTorch's GRU, LSTM states, gather, loss options, pooling options,
 * asymmetric padding, layer norm over two dimensions) rebuilt from the inputs and weights
 * parity.py saved, run through the JIT in f64, and compared with PyTorch's outputs and
 * gradients: one JSON line per case with its worst relative error (max|ours - torch| /
 * max|torch| per tensor), PASS when every tensor is within 1e-10.
 *
 *     python3 examples/from_pytorch/parity.py OUT.safetensors
 *     build/from_pytorch_parity OUT.safetensors
 *
 * Exits 1 when a case fails. */
#include <jitgrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUT 32
#define TOLERANCE 1e-10

/* One case: its graph, the outputs to compare and the reference tensors they match. */
typedef struct pcase {
    const char *file, *name;
    jg_graph *g;
    jg_node *out[MAX_OUT];
    char ref[MAX_OUT][64];
    int n;
    bool broken; /* a file or graph error: reported, the case fails */
} pcase;

static jg_array read_ref(pcase *c, const char *tensor)
{
    char name[96], err[512];
    snprintf(name, sizeof name, "%s.%s", c->name, tensor);
    jg_array a = { 0 };
    if (jg_safetensors_read(c->file, name, JG_F64, &a, err, sizeof err) != JG_OK) {
        fprintf(stderr, "from_pytorch_parity: %s\n", err);
        c->broken = true;
    }
    return a;
}

/* A tensor of the file as an f64 parameter (so gradients can be taken w.r.t. it). */
static jg_node *tensor(pcase *c, const char *name)
{
    jg_array a = read_ref(c, name);
    if (!a.data)
        return jg_scalar(c->g, JG_F64, 0);
    char full[96];
    snprintf(full, sizeof full, "%s.%s", c->name, name);
    jg_node *p = jg_param_as(c->g, full, JG_F64, a.shape, jg_from_data(a.data));
    jg_array_free(&a);
    return p;
}

/* An integer tensor of the file (stored as F64) as an i32 constant. */
static jg_node *indices(pcase *c, const char *name)
{
    jg_array a = read_ref(c, name);
    if (!a.data)
        return jg_scalar(c->g, JG_I32, 0);
    int64_t n = jg_shape_numel(a.shape);
    int32_t *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (int32_t)((double *)a.data)[i];
    jg_node *k = jg_const(c->g, JG_I32, a.shape, v);
    free(v);
    jg_array_free(&a);
    return k;
}

/* sum(y * r) with the case's random r of that name: the loss every gradient comes from. */
static jg_node *weighted(pcase *c, jg_node *y, const char *r)
{
    return jg_sum(jg_mul(y, tensor(c, r)), JG_ALL_AXES, false);
}

static void expect(pcase *c, const char *ref, jg_node *n)
{
    if (c->n == MAX_OUT) {
        c->broken = true;
        return;
    }
    snprintf(c->ref[c->n], sizeof c->ref[c->n], "%s", ref);
    c->out[c->n++] = n;
}

/* The gradient of loss w.r.t. x, expected to equal reference ref. */
static void expect_grad(pcase *c, const char *ref, jg_node *loss, jg_node *x)
{
    jg_node *d = NULL;
    if (jg_grad(c->g, loss, &x, 1, &d) != JG_OK || !d) {
        c->broken = true;
        return;
    }
    expect(c, ref, d);
}

/* Runs the case through the JIT and compares; prints its line; returns whether it passed. */
static bool finish(pcase *c)
{
    double worst = 0;
    const char *worst_at = "";
    jg_program *p = c->broken ? NULL : jg_compile(c->g, c->out, c->n, NULL);
    if (!p || jg_program_run(p) != JG_OK) {
        fprintf(stderr, "from_pytorch_parity: %s: %s\n", c->name,
                p ? jg_errmsg(p) : jg_errmsg(c->g));
        c->broken = true;
    }
    for (int i = 0; i < c->n && !c->broken; i++) {
        jg_array want = read_ref(c, c->ref[i]);
        int64_t n = want.data ? jg_shape_numel(want.shape) : -1;
        double *got = n > 0 ? malloc((size_t)n * sizeof *got) : NULL;
        if (!got || jg_shape_numel(jg_node_shape(c->out[i])) != n ||
            jg_program_get(p, i, got, (size_t)n * sizeof *got) != JG_OK) {
            fprintf(stderr, "from_pytorch_parity: %s.%s: sizes differ\n", c->name, c->ref[i]);
            c->broken = true;
        }
        double diff = 0, scale = 0;
        for (int64_t k = 0; got && !c->broken && k < n; k++) {
            diff = fmax(diff, fabs(got[k] - ((double *)want.data)[k]));
            scale = fmax(scale, fabs(((double *)want.data)[k]));
        }
        double e = scale > 0 ? diff / scale : diff;
        if (e > worst || isnan(e))
            worst = e, worst_at = c->ref[i];
        free(got);
        jg_array_free(&want);
    }
    bool pass = !c->broken && worst <= TOLERANCE;
    printf("{\"case\": \"%s\", \"tensors\": %d, \"worst_rel_error\": %.3g, \"worst_at\": \"%s\", "
           "\"tolerance\": %g, \"pass\": %s}\n", c->name, c->n, worst, worst_at, TOLERANCE,
           pass ? "true" : "false");
    jg_program_free(p);
    jg_graph_free(c->g);
    return pass;
}

static pcase begin(const char *file, const char *name)
{
    return (pcase){ .file = file, .name = name, .g = jg_graph_new() };
}

/* ---- the cases (parity.py builds the same in PyTorch) */

static bool pool_ties(const char *file)
{
    pcase c = begin(file, "pool");
    jg_node *x = tensor(&c, "x");
    jg_node *y1 = jg_max_pool2d_ex(x, 2, 2, NULL); /* JG_TIES_FIRST, PyTorch's */
    jg_node *y2 = jg_max_pool2d_ex(x, 3, 3, &(jg_pool_opts){ .stride_h = 2, .stride_w = 2,
                                                             .pad_h = 1, .pad_w = 1 });
    jg_node *y3 = jg_max_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .ties = JG_TIES_SPLIT });
    expect(&c, "y1", y1);
    expect(&c, "y2", y2);
    expect(&c, "y3", y3);
    expect_grad(&c, "gx_first", jg_add(weighted(&c, y1, "r1"), weighted(&c, y2, "r2")), x);
    expect_grad(&c, "gx_split", weighted(&c, y3, "r3"), x);
    return finish(&c);
}

static bool max_ties(const char *file)
{
    pcase c = begin(file, "max");
    jg_node *x = tensor(&c, "x");
    jg_node *first = jg_max_ex(x, jg_axes(1), false, JG_TIES_FIRST); /* torch.max(x, 1) */
    jg_node *split = jg_max(x, jg_axes(0), false);                   /* torch.amax(x, 0) */
    expect_grad(&c, "gx", jg_add(weighted(&c, first, "r1"), weighted(&c, split, "r2")), x);
    return finish(&c);
}

/* The gradients of loss w.r.t. the parameters named, or false. */
static bool grads(pcase *c, jg_node *loss, const char *const *params, int n, jg_node **d)
{
    jg_node *wrt[8];
    for (int i = 0; i < n; i++)
        if (!(wrt[i] = jg_param_find(c->g, params[i])))
            return c->broken = true, false;
    if (jg_grad(c->g, loss, wrt, n, d) != JG_OK)
        return c->broken = true, false;
    return true;
}

/* PyTorch's GRU into jg_rnn's: w_ih = weight_ih^T, w_hh = weight_hh^T, b = bias_ih + bias_hh
 * but for the n block, which is bias_ih's alone, bias_hh's n block being b_hn: more than a
 * copy, so the tensors are read as arrays and set. */
static bool gru(const char *file)
{
    enum { B = 2, T = 5, H = 4 };
    pcase c = begin(file, "gru");
    jg_node *x = tensor(&c, "x"), *h0t = tensor(&c, "h0"); /* h0 [1, B, H] */
    jg_node *hn = NULL;
    jg_node *seq = jg_rnn(c.g, JG_GRU, "layer", x, H,
                          &(jg_rnn_opts){ .h0 = jg_reshape(h0t, jg_shape(B, H)), .h_n = &hn,
                                          .return_sequences = true, .gru_b_hn = true });
    jg_array w_ih = read_ref(&c, "weight_ih_l0"), w_hh = read_ref(&c, "weight_hh_l0");
    jg_array b_ih = read_ref(&c, "bias_ih_l0"), b_hh = read_ref(&c, "bias_hh_l0");
    if (c.broken)
        return finish(&c);
    double b[3 * H], b_hn[H];
    for (int j = 0; j < 3 * H; j++) {
        double ih = ((double *)b_ih.data)[j], hh = ((double *)b_hh.data)[j];
        b[j] = j < 2 * H ? ih + hh : ih;
        if (j >= 2 * H)
            b_hn[j - 2 * H] = hh;
    }
    jg_status st = jg_param_set_transposed(c.g, "layer.w_ih", &w_ih);
    st = st ? st : jg_param_set_transposed(c.g, "layer.w_hh", &w_hh);
    st = st ? st : jg_param_set(c.g, "layer.b", b, sizeof b);
    st = st ? st : jg_param_set(c.g, "layer.b_hn", b_hn, sizeof b_hn);
    jg_array_free(&w_ih), jg_array_free(&w_hh), jg_array_free(&b_ih), jg_array_free(&b_hh);
    if (st != JG_OK) {
        fprintf(stderr, "from_pytorch_parity: gru: %s\n", jg_errmsg(c.g));
        c.broken = true;
        return finish(&c);
    }
    jg_node *hnt = jg_reshape(hn, jg_shape(1, B, H));
    expect(&c, "seq", seq);
    expect(&c, "hn", hnt);
    jg_node *loss = jg_add(weighted(&c, seq, "r1"), weighted(&c, hnt, "r2"));
    expect_grad(&c, "gx", loss, x);
    expect_grad(&c, "gh0", loss, h0t);
    const char *params[4] = { "layer.w_ih", "layer.w_hh", "layer.b", "layer.b_hn" };
    jg_node *d[4];
    if (grads(&c, loss, params, 4, d)) { /* back in PyTorch's layout */
        expect(&c, "g_weight_ih_l0", jg_transpose(d[0]));
        expect(&c, "g_weight_hh_l0", jg_transpose(d[1]));
        expect(&c, "g_bias_ih_l0", d[2]);
        expect(&c, "g_bias_hh_l0",
               jg_concat(((jg_node *[]){ jg_slice(d[2], 0, 0, 2 * H, 1), d[3] }), 2, 0));
    }
    return finish(&c);
}

/* A bidirectional PyTorch LSTM imported through a name map (transposes, the two biases
 * summed), started from PyTorch's (h0, c0) [D, B, H], which are [B, D*H] here. */
static bool lstm(const char *file)
{
    enum { B = 2, H = 4 };
    pcase c = begin(file, "lstm");
    jg_node *x = tensor(&c, "x"), *h0t = tensor(&c, "h0"), *c0t = tensor(&c, "c0");
    jg_node *hn = NULL, *cn = NULL;
    jg_node *h0 = jg_reshape(jg_permute(h0t, jg_axes(1, 0, 2)), jg_shape(B, 2 * H));
    jg_node *c0 = jg_reshape(jg_permute(c0t, jg_axes(1, 0, 2)), jg_shape(B, 2 * H));
    jg_node *seq = jg_rnn(c.g, JG_LSTM, "layer", x, H,
                          &(jg_rnn_opts){ .bidirectional = true, .return_sequences = true,
                                          .h0 = h0, .c0 = c0, .h_n = &hn, .c_n = &cn });
    static const jg_tensor_map map[] = {
        { "lstm.weight_ih_l0", "layer.fwd.w_ih", true },
        { "lstm.weight_hh_l0", "layer.fwd.w_hh", true },
        { "lstm.bias_ih_l0", "layer.fwd.b", false },
        { "lstm.bias_hh_l0", "layer.fwd.b", false },
        { "lstm.weight_ih_l0_reverse", "layer.bwd.w_ih", true },
        { "lstm.weight_hh_l0_reverse", "layer.bwd.w_hh", true },
        { "lstm.bias_ih_l0_reverse", "layer.bwd.b", false },
        { "lstm.bias_hh_l0_reverse", "layer.bwd.b", false },
    };
    if (jg_safetensors_import(c.g, file, map, 8) != JG_OK) {
        fprintf(stderr, "from_pytorch_parity: lstm: %s\n", jg_errmsg(c.g));
        c.broken = true;
        return finish(&c);
    }
    jg_node *hnt = jg_permute(jg_reshape(hn, jg_shape(B, 2, H)), jg_axes(1, 0, 2));
    jg_node *cnt = jg_permute(jg_reshape(cn, jg_shape(B, 2, H)), jg_axes(1, 0, 2));
    expect(&c, "seq", seq);
    expect(&c, "hn", hnt);
    expect(&c, "cn", cnt);
    jg_node *loss = jg_add(jg_add(weighted(&c, seq, "r1"), weighted(&c, hnt, "r2")),
                           weighted(&c, cnt, "r3"));
    expect_grad(&c, "gx", loss, x);
    expect_grad(&c, "gh0", loss, h0t);
    expect_grad(&c, "gc0", loss, c0t);
    const char *params[6] = { "layer.fwd.w_ih", "layer.fwd.w_hh", "layer.fwd.b",
                              "layer.bwd.w_ih", "layer.bwd.w_hh", "layer.bwd.b" };
    jg_node *d[6];
    if (grads(&c, loss, params, 6, d))
        for (int dir = 0; dir < 2; dir++) {
            const char *sfx = dir ? "_reverse" : "";
            char ref[64];
            snprintf(ref, sizeof ref, "g_weight_ih_l0%s", sfx);
            expect(&c, ref, jg_transpose(d[3 * dir]));
            snprintf(ref, sizeof ref, "g_weight_hh_l0%s", sfx);
            expect(&c, ref, jg_transpose(d[3 * dir + 1]));
            snprintf(ref, sizeof ref, "g_bias_ih_l0%s", sfx);
            expect(&c, ref, d[3 * dir + 2]);
            snprintf(ref, sizeof ref, "g_bias_hh_l0%s", sfx);
            expect(&c, ref, d[3 * dir + 2]);
        }
    return finish(&c);
}

static bool gather(const char *file)
{
    pcase c = begin(file, "gather");
    jg_node *x = tensor(&c, "x");
    jg_node *y = jg_take_along_axis(x, indices(&c, "idx"), 1);
    expect(&c, "y", y);
    expect_grad(&c, "gx", weighted(&c, y, "r"), x);
    return finish(&c);
}

static bool cross_entropy(const char *file)
{
    pcase c = begin(file, "ce");
    jg_node *x = tensor(&c, "x"), *y = indices(&c, "labels"), *w = tensor(&c, "weight");
    jg_loss_opts o = { .weight = w, .ignore = true, .ignore_index = -100 };
    jg_node *mean = jg_cross_entropy_ex(x, y, &o);
    o.reduction = JG_REDUCE_SUM;
    jg_node *sum = jg_cross_entropy_ex(x, y, &o);
    o.reduction = JG_REDUCE_NONE;
    jg_node *none = jg_cross_entropy_ex(x, y, &o);
    expect(&c, "mean", jg_reshape(mean, jg_shape(1)));
    expect(&c, "sum", jg_reshape(sum, jg_shape(1)));
    expect(&c, "none", none);
    expect_grad(&c, "gx", jg_add(jg_add(mean, jg_scale(sum, 0.3)), weighted(&c, none, "r")), x);
    return finish(&c);
}

static bool bce(const char *file)
{
    pcase c = begin(file, "bce");
    jg_node *x = tensor(&c, "x"), *t = tensor(&c, "t");
    jg_loss_opts o = { .weight = tensor(&c, "weight"), .pos_weight = tensor(&c, "pos_weight") };
    jg_node *mean = jg_bce_with_logits_ex(x, t, &o);
    o.reduction = JG_REDUCE_SUM;
    jg_node *sum = jg_bce_with_logits_ex(x, t, &o);
    o.reduction = JG_REDUCE_NONE;
    jg_node *none = jg_bce_with_logits_ex(x, t, &o);
    expect(&c, "mean", jg_reshape(mean, jg_shape(1)));
    expect(&c, "sum", jg_reshape(sum, jg_shape(1)));
    expect(&c, "none", none);
    expect_grad(&c, "gx", jg_add(jg_add(mean, jg_scale(sum, 0.3)), weighted(&c, none, "r")), x);
    return finish(&c);
}

static bool mse_and_softplus(const char *file)
{
    pcase c = begin(file, "mse");
    jg_node *a = tensor(&c, "a"), *b = tensor(&c, "b");
    jg_node *sum = jg_mse_loss_ex(a, b, &(jg_loss_opts){ .reduction = JG_REDUCE_SUM });
    jg_node *none = jg_mse_loss_ex(a, b, &(jg_loss_opts){ .reduction = JG_REDUCE_NONE });
    expect(&c, "sum", jg_reshape(sum, jg_shape(1)));
    expect(&c, "none", none);
    expect_grad(&c, "ga", jg_add(sum, weighted(&c, none, "r")), a);
    bool pass = finish(&c);
    c = begin(file, "softplus");
    jg_node *x = tensor(&c, "x");
    jg_node *y = jg_softplus_ex(x, 2, 10);
    expect(&c, "y", y);
    expect_grad(&c, "gx", weighted(&c, y, "r"), x);
    return finish(&c) && pass;
}

static bool pooling(const char *file)
{
    pcase c = begin(file, "pool2");
    jg_node *x = tensor(&c, "x");
    jg_node *ya = jg_avg_pool2d_ex(x, 3, 3, &(jg_pool_opts){ .stride_h = 2, .stride_w = 2,
                                                             .pad_h = 1, .pad_w = 1,
                                                             .ceil_mode = true,
                                                             .exclude_pad = true });
    jg_node *yb = jg_avg_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .ceil_mode = true });
    jg_node *ym = jg_max_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .ceil_mode = true });
    expect(&c, "ya", ya);
    expect(&c, "yb", yb);
    expect(&c, "ym", ym);
    jg_node *loss = jg_add(jg_add(weighted(&c, ya, "r1"), weighted(&c, yb, "r2")),
                           weighted(&c, ym, "r3"));
    expect_grad(&c, "gx", loss, x);
    return finish(&c);
}

static bool conv_and_layernorm(const char *file)
{
    pcase c = begin(file, "conv");
    jg_node *x = tensor(&c, "x"), *w = tensor(&c, "w"), *b = tensor(&c, "b");
    /* F.pad(x, (1, 0, 0, 1)): left 1, right 0, top 0, bottom 1 */
    jg_node *y = jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_w = 1, .pad_asymmetric = true,
                                                     .pad_bottom = 1, .pad_right = 0 });
    expect(&c, "y", y);
    jg_node *loss = weighted(&c, y, "r");
    expect_grad(&c, "gx", loss, x);
    expect_grad(&c, "gw", loss, w);
    expect_grad(&c, "gb", loss, b);
    bool pass = finish(&c);
    c = begin(file, "ln");
    jg_node *z = tensor(&c, "x");
    jg_node *l = jg_layernorm_ex("layer", z, 1e-5, 2);
    jg_array g = read_ref(&c, "gamma"), be = read_ref(&c, "beta");
    if (!c.broken && (jg_param_set_array(c.g, "layer.gamma", &g) != JG_OK ||
                      jg_param_set_array(c.g, "layer.beta", &be) != JG_OK))
        c.broken = true;
    jg_array_free(&g), jg_array_free(&be);
    expect(&c, "y", l);
    jg_node *ll = weighted(&c, l, "r");
    expect_grad(&c, "gx", ll, z);
    expect_grad(&c, "ggamma", ll, jg_param_find(c.g, "layer.gamma"));
    expect_grad(&c, "gbeta", ll, jg_param_find(c.g, "layer.beta"));
    return finish(&c) && pass;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PARITY.safetensors (written by parity.py)\n", argv[0]);
        return 2;
    }
    bool (*cases[])(const char *) = { pool_ties, max_ties, gru, lstm, gather, cross_entropy,
                                      bce, mse_and_softplus, pooling, conv_and_layernorm };
    int failed = 0, n = (int)(sizeof cases / sizeof *cases);
    for (int i = 0; i < n; i++)
        failed += !cases[i](argv[1]);
    printf("from_pytorch_parity: %s (%d case groups, %d failed; tolerance %g)\n",
           failed ? "FAIL" : "PASS", n, failed, TOLERANCE);
    return failed ? 1 : 0;
}
