/* PyTorch's pooling and layout options (ops/conv.c, ops/pool.c, ops/norm.c): avg_pool2d_ex
 * with ceil_mode and exclude_pad and max_pool2d_ex with ceil_mode against PyTorch's rules
 * written out here as loops; conv2d's asymmetric padding against an explicit jg_pad; layer
 * norm over the last two dimensions; f64 gradient checks; the JIT against the reference
 * executor; misuse. */
#include "support/jit_compare.h"

#include <math.h>
#include <stdlib.h>

TestSuite(pool_options, .timeout = 60);

typedef struct pcase {
    int h, w, k, s, p;
    bool ceil, exclude;
} pcase;

static const pcase CASES[] = {
    { 7, 7, 3, 2, 1, true, true },  { 7, 7, 3, 2, 1, true, false },
    { 5, 6, 2, 2, 0, true, false }, { 8, 8, 3, 2, 1, false, true },
    { 6, 5, 3, 3, 1, true, true },  { 4, 4, 4, 1, 2, false, true },
    { 2, 2, 3, 2, 0, true, false }, /* the floor rule has no window; ceil_mode has one */
};
#define N_CASES ((int)(sizeof CASES / sizeof *CASES))

/* PyTorch's output length (pooling_output_shape). */
static int out_of(int n, int k, int s, int p, bool ceil)
{
    int out = (n + 2 * p - k + (ceil ? s - 1 : 0)) / s + 1;
    return ceil && (out - 1) * s >= n + p ? out - 1 : out;
}

/* PyTorch's avg_pool2d or max_pool2d of one plane, by its loops. */
static void by_hand(const pcase *c, bool is_max, const double *x, double *y)
{
    int oh = out_of(c->h, c->k, c->s, c->p, c->ceil), ow = out_of(c->w, c->k, c->s, c->p, c->ceil);
    for (int i = 0; i < oh; i++)
        for (int j = 0; j < ow; j++) {
            int h0 = i * c->s - c->p, w0 = j * c->s - c->p;
            int h1 = h0 + c->k < c->h + c->p ? h0 + c->k : c->h + c->p;
            int w1 = w0 + c->k < c->w + c->p ? w0 + c->k : c->w + c->p;
            int size = (h1 - h0) * (w1 - w0);
            h0 = h0 > 0 ? h0 : 0, w0 = w0 > 0 ? w0 : 0;
            h1 = h1 < c->h ? h1 : c->h, w1 = w1 < c->w ? w1 : c->w;
            double acc = is_max ? -INFINITY : 0;
            for (int r = h0; r < h1; r++)
                for (int q = w0; q < w1; q++)
                    acc = is_max ? fmax(acc, x[r * c->w + q]) : acc + x[r * c->w + q];
            y[i * ow + j] = is_max ? acc : acc / (c->exclude ? (h1 - h0) * (w1 - w0) : size);
        }
}

static jg_node *pooled(const pcase *c, bool is_max, jg_node *x)
{
    jg_pool_opts o = { .stride_h = c->s, .stride_w = c->s, .pad_h = c->p, .pad_w = c->p,
                       .ceil_mode = c->ceil, .exclude_pad = !is_max && c->exclude };
    return is_max ? jg_max_pool2d_ex(x, c->k, c->k, &o) : jg_avg_pool2d_ex(x, c->k, c->k, &o);
}

Test(pool_options, values_follow_pytorch)
{
    for (int i = 0; i < N_CASES; i++)
        for (int is_max = 0; is_max < 2; is_max++) {
            const pcase *c = &CASES[i];
            if (is_max && 2 * c->p > c->k)
                continue;
            jg_graph *g = jg_graph_new();
            jg_node *x = t_randn(g, jg_shape(1, 1, c->h, c->w), 30 + (uint64_t)i);
            double *xv = t_eval(x);
            int oh = out_of(c->h, c->k, c->s, c->p, c->ceil);
            int ow = out_of(c->w, c->k, c->s, c->p, c->ceil);
            double want[64];
            by_hand(c, is_max, xv, want);
            jg_node *y = pooled(c, is_max, x);
            cr_assert(jg_node_ok(y), "case %d: %s", i, jg_errmsg(g));
            t_expect(y, jg_shape(1, 1, oh, ow), want);
            free(xv);
            jg_graph_free(g);
        }
}

Test(pool_options, gradcheck)
{
    for (int i = 0; i < N_CASES; i++)
        for (int is_max = 0; is_max < 2; is_max++) {
            const pcase *c = &CASES[i];
            if (is_max && 2 * c->p > c->k)
                continue;
            jg_graph *g = jg_graph_new();
            jg_node *x = t_param(g, "x", jg_shape(2, 1, c->h, c->w), 40 + (uint64_t)i);
            t_gradcheck(g, pooled(c, is_max, x), &x, 1);
            jg_graph_free(g);
        }
}

/* conv2d with pad_asymmetric = conv2d of x padded explicitly, with no padding */
Test(pool_options, conv_asymmetric_padding)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3, 7, 6), 50);
    jg_node *w = t_param(g, "w", jg_shape(4, 3, 2, 3), 51);
    jg_node *b = t_param(g, "b", jg_shape(4), 52);
    jg_conv_opts o = { .pad_h = 0, .pad_w = 1, .pad_asymmetric = true, .pad_bottom = 1,
                       .pad_right = 2, .stride_w = 2 };
    jg_node *y = jg_conv2d(x, w, b, &o);
    jg_node *xp = jg_pad(x, jg_shape(0, 0, 0, 1), jg_shape(0, 0, 1, 2), 0);
    jg_node *want = jg_conv2d(xp, w, b, &(jg_conv_opts){ .stride_w = 2 });
    t_assert_shape(y, jg_shape(2, 4, 7, 4));
    double *a = t_eval(y), *e = t_eval(want);
    t_assert_close(a, e, 2 * 4 * 7 * 4, 1e-12);
    free(a);
    free(e);
    t_gradcheck(g, y, (jg_node *[]){ x, w, b }, 3);
    /* padding='same' with an even kernel: 2x2 on 5x5 keeps 5x5 (top 0, bottom 1) */
    jg_node *w2 = t_param(g, "w2", jg_shape(2, 3, 2, 2), 53);
    jg_node *s = jg_conv2d(jg_slice(x, 3, 0, 5, 1), w2, NULL,
                           &(jg_conv_opts){ .pad_asymmetric = true, .pad_bottom = 1,
                                            .pad_right = 1 });
    t_assert_shape(s, jg_shape(2, 2, 7, 5));
    jg_graph_free(g);
}

Test(pool_options, layernorm_over_two_dims)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 3, 4), 60);
    jg_node *y = jg_layernorm_ex("ln", x, 1e-5, 2);
    t_assert_shape(jg_param_find(g, "ln.gamma"), jg_shape(3, 4));
    double *xv = t_eval(x), *yv = t_eval(y);
    for (int n = 0; n < 2; n++) {
        double m = 0, v = 0;
        for (int i = 0; i < 12; i++)
            m += xv[n * 12 + i] / 12;
        for (int i = 0; i < 12; i++)
            v += (xv[n * 12 + i] - m) * (xv[n * 12 + i] - m) / 12;
        for (int i = 0; i < 12; i++)
            cr_assert_float_eq(yv[n * 12 + i], (xv[n * 12 + i] - m) / sqrt(v + 1e-5), 1e-12);
    }
    free(xv);
    free(yv);
    jg_param_set(g, "ln.gamma", (double[]){ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, 96);
    t_gradcheck(g, y, (jg_node *[]){ x, jg_param_find(g, "ln.gamma"), jg_param_find(g, "ln.beta") },
                3);
    jg_layernorm_ex("ln2", x, 1e-5, 4);
    t_assert_error(g, JG_ERR_SHAPE, "jg_layernorm_ex: operand [2,3,4] needs at least 4");
    jg_graph_free(g);
}

Test(pool_options, jit_matches_reference)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 600 + (uint64_t)k);
        jg_node *x = jg_param_as(c.g, "x", t, jg_shape(2, 3, 9, 8), jg_normal(0, 1));
        jg_node *w = jg_param_as(c.g, "w", t, jg_shape(5, 3, 3, 2), jg_normal(0, 1));
        olist l = { .n = 0 };
        for (int i = 0; i < N_CASES; i++) {
            push(&l, pooled(&CASES[i], false, x));
            if (2 * CASES[i].p <= CASES[i].k)
                push(&l, pooled(&CASES[i], true, x));
        }
        push(&l, jg_conv2d(x, w, NULL, &(jg_conv_opts){ .pad_h = 1, .pad_asymmetric = true,
                                                        .pad_bottom = 2, .pad_right = 1 }));
        push(&l, jg_layernorm_ex("ln", x, 1e-5, 3));
        jg_node *loss = NULL;
        for (int i = 0; i < l.n; i++) {
            jg_node *s = jg_sum(jg_square(l.o[i]), JG_ALL_AXES, false);
            loss = loss ? jg_add(loss, s) : s;
        }
        jg_node *d[2];
        cr_assert_eq(jg_grad(c.g, loss, (jg_node *[]){ x, w }, 2, d), JG_OK, "%s",
                     jg_errmsg(c.g));
        push(&l, d[0]);
        push(&l, d[1]);
        check(&c, l.o, l.n, (tol){ 2e-5, 1e-11 }, t == JG_F32 ? "pool options f32"
                                                                : "pool options f64");
        ctx_fini(&c);
    }
}

Test(pool_options, misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 6, 6));
    jg_avg_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .dilation_h = 2 });
    t_assert_error(g, JG_ERR_ARG, "jg_avg_pool2d_ex: average pooling has no dilation");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 6, 6));
    jg_max_pool2d_ex(x, 2, 2, &(jg_pool_opts){ .exclude_pad = true });
    t_assert_error(g, JG_ERR_ARG, "jg_max_pool2d_ex: exclude_pad is for average pooling");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 6, 6));
    jg_conv_transpose2d(x, jg_input(g, "w", JG_F32, jg_shape(1, 1, 2, 2)), NULL,
                        &(jg_conv_opts){ .pad_asymmetric = true });
    t_assert_error(g, JG_ERR_ARG, "jg_conv_transpose2d: pad_asymmetric is for jg_conv2d only");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 6, 6));
    jg_conv2d(x, jg_input(g, "w", JG_F32, jg_shape(1, 1, 2, 2)), NULL,
              &(jg_conv_opts){ .pad_asymmetric = true, .pad_bottom = -1 });
    t_assert_error(g, JG_ERR_ARG, "jg_conv2d: pad_bottom is -1, must be >= 0");
    jg_graph_free(g);
    g = jg_graph_new();
    x = jg_input(g, "x", JG_F32, jg_shape(1, 1, 6, 6));
    jg_conv2d(x, jg_input(g, "w", JG_F32, jg_shape(1, 1, 2, 2)), NULL,
              &(jg_conv_opts){ .pad_bottom = 1 });
    t_assert_error(g, JG_ERR_ARG, "jg_conv2d: pad_bottom and pad_right need pad_asymmetric");
    jg_graph_free(g);
    g = jg_graph_new(); /* no window even rounding up: 1 row, kernel 3 */
    jg_avg_pool2d_ex(jg_input(g, "x", JG_F32, jg_shape(1, 1, 1, 4)), 3, 3,
                     &(jg_pool_opts){ .stride_h = 2, .ceil_mode = true });
    t_assert_error(g, JG_ERR_SHAPE, "jg_avg_pool2d_ex: kernel 3x3 is larger");
    jg_graph_free(g);
}
