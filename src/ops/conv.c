/* Convolution and pooling over NCHW tensors: conv2d, conv_transpose2d, max/avg pooling and
 * global average pooling. All are COMPOSITES of existing ops (pad, take, reshape, permute,
 * slice, matmul, reductions), so their gradients, JIT kernels and reference values come from
 * those ops with no code here. conv2d is an explicit im2col done by ONE gather (jg_take with
 * a constant index table: padding reads an extra zero element) and one batched matmul, so
 * the backward pass is one scatter_add and two matmuls; conv_transpose2d is the same gather
 * over the zero-dilated input (the holes read the zero too) with the flipped, transposed
 * kernel; pooling reduces the gathered windows. */
#include "ops/op.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The options of a convolution, defaults filled in and validated. */
typedef struct conv_geom {
    int64_t sh, sw, ph, pw, dh, dw, groups;
    int64_t pb, pr; /* bottom and right padding: ph and pw unless pad_asymmetric */
} conv_geom;

/* Records "x must be 4-D ..." or a dtype error for operand `name` of fn; true when fine. */
static bool check_nchw(jg_loc at, const char *fn, const char *name, const char *layout,
                       jg_node *x)
{
    char s[96];
    if (x->dtype != JG_F32 && x->dtype != JG_F64) {
        graph_error(x->graph, at, JG_ERR_DTYPE, "jg_%s: %s must be f32 or f64, got %s", fn, name,
                    jg_dtype_str(x->dtype));
        return false;
    }
    if (x->shape.ndim != 4) {
        graph_error(x->graph, at, JG_ERR_SHAPE, "jg_%s: %s must be 4-D %s, got %s", fn, name,
                    layout, FMT_SHAPE(s, x->shape));
        return false;
    }
    return true;
}

/* An option field: 0 means `dflt`; below `min` is an error. */
static bool opt_value(jg_loc at, jg_graph *g, const char *fn, const char *field, int v,
                      int dflt, int min, int64_t *out)
{
    if (v == 0 && dflt != 0) {
        *out = dflt;
        return true;
    }
    if (v < min) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: %s is %d, must be >= %d%s", fn, field, v, min,
                    dflt ? " (0 means the default)" : "");
        return false;
    }
    *out = v;
    return true;
}

/* Output length of a window `k` dilated by d sliding by s over n + pads; < 1 when it does
 * not fit. */
static int64_t out_len(int64_t n, int64_t pads, int64_t k, int64_t d, int64_t s)
{
    int64_t span = n + pads - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

/* How output pixels see the input along one spatial axis: tap a of output i reads the
 * virtual position v = i*stride + a*dilation - pad of the input with (up - 1) zeros inserted
 * between its pixels (up > 1 only for conv_transpose2d); a position outside it or in a hole
 * reads the fill element. */
typedef struct win_axis {
    int64_t n, k, out, stride, dilation, pad, up;
} win_axis;

/* The source pixel of tap a of output i, or -1 for the fill element. */
static int64_t win_src(const win_axis *w, int64_t i, int64_t a)
{
    int64_t v = i * w->stride + a * w->dilation - w->pad;
    if (v < 0 || v > (w->n - 1) * w->up || v % w->up)
        return -1;
    return v / w->up;
}

/* The windows of x [N,C,H,W] gathered by one jg_take: [N, C, KH*KW, OH*OW], tap (a, b) at
 * index a*KW + b. x is flattened to [N, C, H*W] with one `fill` element appended when some
 * tap reads it (padding, holes). (Gathering [C, KH*KW, N*OH*OW] instead, for one GEMM with
 * the batch folded into n, measured no faster: it costs two permutes of the activations.) */
static jg_node *gather_windows(jg_loc at, const char *fn, jg_node *x, win_axis wh, win_axis ww,
                               double fill)
{
    jg_graph *g = x->graph;
    jg_shape s = x->shape;
    int64_t hw = s.dim[2] * s.dim[3], kk = wh.k * ww.k, p = wh.out * ww.out;
    if (hw >= INT32_MAX || p > INT32_MAX || kk > INT32_MAX || kk * p > INT32_MAX) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_%s: input or windows too large for i32 indices",
                    fn);
        return g->poison;
    }
    /* calloc: gcc cannot see that the loops write every element */
    int32_t *idx = calloc((size_t)(kk * p), sizeof *idx);
    if (!idx) {
        graph_error(g, at, JG_ERR_NOMEM, "jg_%s: out of memory", fn);
        return g->poison;
    }
    bool uses_fill = false;
    for (int64_t t = 0; t < kk; t++)
        for (int64_t i = 0; i < wh.out; i++)
            for (int64_t j = 0; j < ww.out; j++) {
                int64_t r = win_src(&wh, i, t / ww.k), c = win_src(&ww, j, t % ww.k);
                bool in = r >= 0 && c >= 0;
                uses_fill |= !in;
                idx[(t * wh.out + i) * ww.out + j] = (int32_t)(in ? r * s.dim[3] + c : hw);
            }
    jg_node *ids = jg_const_(at, g, JG_I32, jg_shape(kk, p), idx);
    free(idx);
    jg_node *xf = jg_reshape_(at, x, jg_shape(s.dim[0], s.dim[1], hw));
    if (uses_fill)
        xf = jg_pad_(at, xf, jg_shape(0, 0, 0), jg_shape(0, 0, 1), fill);
    return jg_take_(at, xf, ids, 2);
}

/* conv2d of x by w [O, Cg, KH, KW] over the given windows: im2col, then the batched GEMM
 * [G, Og, Cg*KK] x [N, G, Cg*KK, OH*OW] (the kernel, the small operand, broadcast over the
 * batch), so the big column matrix is used in its natural layout with no permute. The bias
 * is added before the final reshape, where the JIT fuses it into the GEMM's store. */
static jg_node *conv_core(jg_loc at, const char *fn, jg_node *x, jg_node *w, jg_node *bias,
                          int64_t groups, win_axis wh, win_axis ww)
{
    jg_shape xs = x->shape, ws = w->shape;
    int64_t n = xs.dim[0], c = xs.dim[1], o = ws.dim[0], kk = ws.dim[2] * ws.dim[3];
    int64_t oh = wh.out, ow = ww.out, ck = c / groups * kk;
    bool identity = kk == 1 && wh.stride == 1 && ww.stride == 1 && wh.pad == 0 &&
                    ww.pad == 0 && wh.up == 1 && ww.up == 1 && oh == xs.dim[2] &&
                    ow == xs.dim[3];
    jg_node *cols = identity ? x : gather_windows(at, fn, x, wh, ww, 0.0);
    cols = jg_reshape_(at, cols, jg_shape(n, groups, ck, oh * ow));
    jg_node *wm = jg_reshape_(at, w, jg_shape(groups, o / groups, ck));
    jg_node *y = jg_matmul_(at, wm, cols); /* [N, G, Og, OH*OW] */
    if (bias)
        y = jg_add_(at, y, jg_reshape_(at, bias, jg_shape(groups, o / groups, 1)));
    return jg_reshape_(at, y, jg_shape(n, o, oh, ow));
}

/* Checks the bias: NULL, or [O] of x's dtype. */
static bool check_bias(jg_loc at, const char *fn, jg_node *x, jg_node *bias, int64_t o)
{
    char s[96];
    if (!bias)
        return true;
    if (bias->dtype != x->dtype) {
        graph_error(x->graph, at, JG_ERR_DTYPE, "jg_%s: bias is %s but x is %s", fn,
                    jg_dtype_str(bias->dtype), jg_dtype_str(x->dtype));
        return false;
    }
    if (bias->shape.ndim != 1 || bias->shape.dim[0] != o) {
        graph_error(x->graph, at, JG_ERR_SHAPE, "jg_%s: bias must be [%lld] (one per output "
                    "channel), got %s", fn, (long long)o, FMT_SHAPE(s, bias->shape));
        return false;
    }
    return true;
}

/* Validates x, w and the options shared by both convolutions; fills the geometry. */
static bool check_conv(jg_loc at, const char *fn, jg_node *x, jg_node *w,
                       const jg_conv_opts *opts, conv_geom *p)
{
    jg_conv_opts o = opts ? *opts : (jg_conv_opts){ 0 };
    jg_graph *g = x->graph;
    if (!check_nchw(at, fn, "x", "[N,C,H,W]", x) ||
        !check_nchw(at, fn, "w", strcmp(fn, "conv2d") ? "[C,O/groups,KH,KW]" : "[O,C/groups,KH,KW]", w))
        return false;
    if (w->dtype != x->dtype) {
        graph_error(g, at, JG_ERR_DTYPE, "jg_%s: w is %s but x is %s", fn,
                    jg_dtype_str(w->dtype), jg_dtype_str(x->dtype));
        return false;
    }
    if (!opt_value(at, g, fn, "stride_h", o.stride_h, 1, 1, &p->sh) ||
        !opt_value(at, g, fn, "stride_w", o.stride_w, 1, 1, &p->sw) ||
        !opt_value(at, g, fn, "pad_h", o.pad_h, 0, 0, &p->ph) ||
        !opt_value(at, g, fn, "pad_w", o.pad_w, 0, 0, &p->pw) ||
        !opt_value(at, g, fn, "dilation_h", o.dilation_h, 1, 1, &p->dh) ||
        !opt_value(at, g, fn, "dilation_w", o.dilation_w, 1, 1, &p->dw) ||
        !opt_value(at, g, fn, "groups", o.groups, 1, 1, &p->groups))
        return false;
    p->pb = p->ph, p->pr = p->pw;
    if (o.pad_asymmetric && strcmp(fn, "conv2d")) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: pad_asymmetric is for jg_conv2d only", fn);
        return false;
    }
    if (!o.pad_asymmetric && (o.pad_bottom || o.pad_right)) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: pad_bottom and pad_right need pad_asymmetric "
                    "(without it pad_h and pad_w pad both sides)", fn);
        return false;
    }
    if (o.pad_asymmetric && (!opt_value(at, g, fn, "pad_bottom", o.pad_bottom, 0, 0, &p->pb) ||
                             !opt_value(at, g, fn, "pad_right", o.pad_right, 0, 0, &p->pr)))
        return false;
    return true;
}

jg_node *jg_conv2d_(jg_loc at, jg_node *x, jg_node *w, jg_node *bias, const jg_conv_opts *opts)
{
    jg_node *bad = composite_operands(at, "conv2d", (jg_node *[]){ x, w, bias },
                                  (const char *[]){ "x", "w", "bias" },
                                  (const bool[]){ false, false, true }, 3);
    if (bad)
        return bad;
    jg_graph *g = x->graph;
    conv_geom p;
    if (!check_conv(at, "conv2d", x, w, opts, &p))
        return g->poison;
    if (opts && (opts->output_padding_h || opts->output_padding_w)) {
        graph_error(g, at, JG_ERR_ARG, "jg_conv2d: output_padding is for jg_conv_transpose2d "
                    "only");
        return g->poison;
    }
    char a[96], b[96];
    jg_shape xs = x->shape, ws = w->shape;
    int64_t c = xs.dim[1], o = ws.dim[0];
    if (c % p.groups || o % p.groups) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_conv2d: groups %lld must divide the input channels "
                    "(%lld) and the output channels (%lld)", (long long)p.groups, (long long)c,
                    (long long)o);
        return g->poison;
    }
    if (ws.dim[1] * p.groups != c) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_conv2d: channel mismatch: x %s has %lld channels, "
                    "w %s with groups %lld expects %lld", FMT_SHAPE(a, xs), (long long)c,
                    FMT_SHAPE(b, ws), (long long)p.groups, (long long)(ws.dim[1] * p.groups));
        return g->poison;
    }
    if (!check_bias(at, "conv2d", x, bias, o))
        return g->poison;
    int64_t oh = out_len(xs.dim[2], p.ph + p.pb, ws.dim[2], p.dh, p.sh);
    int64_t ow = out_len(xs.dim[3], p.pw + p.pr, ws.dim[3], p.dw, p.sw);
    if (oh < 1 || ow < 1) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_conv2d: kernel %lldx%lld (dilation %lldx%lld) is "
                    "larger than the padded input %lldx%lld (x %s, padding top %lld bottom %lld "
                    "left %lld right %lld)", (long long)ws.dim[2], (long long)ws.dim[3],
                    (long long)p.dh, (long long)p.dw, (long long)(xs.dim[2] + p.ph + p.pb),
                    (long long)(xs.dim[3] + p.pw + p.pr), FMT_SHAPE(a, xs), (long long)p.ph,
                    (long long)p.pb, (long long)p.pw, (long long)p.pr);
        return g->poison;
    }
    /* windows start pad_h before the first row; the bottom padding only adds windows */
    win_axis wh = { xs.dim[2], ws.dim[2], oh, p.sh, p.dh, p.ph, 1 };
    win_axis ww = { xs.dim[3], ws.dim[3], ow, p.sw, p.dw, p.pw, 1 };
    return conv_core(at, "conv2d", x, w, bias, p.groups, wh, ww);
}

/* The transposed convolution is the adjoint of conv2d with respect to x: conv2d (stride 1,
 * same dilation) of x with stride-1 zeros inserted between pixels (an unslice), padded by
 * d*(k-1) - pad on each side (+ output_padding at the end; negative amounts crop), with the
 * kernel flipped spatially and its in/out channels swapped within each group. */
jg_node *jg_conv_transpose2d_(jg_loc at, jg_node *x, jg_node *w, jg_node *bias,
                              const jg_conv_opts *opts)
{
    jg_node *bad = composite_operands(at, "conv_transpose2d", (jg_node *[]){ x, w, bias },
                                  (const char *[]){ "x", "w", "bias" },
                                  (const bool[]){ false, false, true }, 3);
    if (bad)
        return bad;
    jg_graph *g = x->graph;
    conv_geom p;
    if (!check_conv(at, "conv_transpose2d", x, w, opts, &p))
        return g->poison;
    int64_t oph = 0, opw = 0;
    if (!opt_value(at, g, "conv_transpose2d", "output_padding_h",
                   opts ? opts->output_padding_h : 0, 0, 0, &oph) ||
        !opt_value(at, g, "conv_transpose2d", "output_padding_w",
                   opts ? opts->output_padding_w : 0, 0, 0, &opw))
        return g->poison;
    if ((oph >= p.sh && oph >= p.dh) || (opw >= p.sw && opw >= p.dw)) {
        graph_error(g, at, JG_ERR_ARG, "jg_conv_transpose2d: output_padding %lldx%lld must be "
                    "smaller than the stride (%lldx%lld) or the dilation (%lldx%lld)",
                    (long long)oph, (long long)opw, (long long)p.sh, (long long)p.sw,
                    (long long)p.dh, (long long)p.dw);
        return g->poison;
    }
    char a[96], b[96];
    jg_shape xs = x->shape, ws = w->shape;
    int64_t c = xs.dim[1], grp = p.groups, kh = ws.dim[2], kw = ws.dim[3];
    if (c % grp) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_conv_transpose2d: groups %lld must divide the input "
                    "channels (%lld)", (long long)grp, (long long)c);
        return g->poison;
    }
    if (ws.dim[0] != c) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_conv_transpose2d: channel mismatch: x %s has %lld "
                    "channels, w %s expects %lld", FMT_SHAPE(a, xs), (long long)c,
                    FMT_SHAPE(b, ws), (long long)ws.dim[0]);
        return g->poison;
    }
    int64_t og = ws.dim[1], o = og * grp;
    if (!check_bias(at, "conv_transpose2d", x, bias, o))
        return g->poison;
    int64_t oh = (xs.dim[2] - 1) * p.sh - 2 * p.ph + p.dh * (kh - 1) + oph + 1;
    int64_t ow = (xs.dim[3] - 1) * p.sw - 2 * p.pw + p.dw * (kw - 1) + opw + 1;
    if (oh < 1 || ow < 1) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_conv_transpose2d: padding %lldx%lld leaves no "
                    "output (%lldx%lld) for x %s and kernel %lldx%lld", (long long)p.ph,
                    (long long)p.pw, (long long)oh, (long long)ow, FMT_SHAPE(a, xs),
                    (long long)kh, (long long)kw);
        return g->poison;
    }
    /* [C, Og, KH, KW] = [G, Cg, Og, ...] -> [G, Og, Cg, ...] = [O, Cg, KH, KW], flipped */
    jg_node *wt = jg_reshape_(at, w, jg_shape(grp, c / grp, og, kh, kw));
    wt = jg_permute_(at, wt, jg_axes(0, 2, 1, 3, 4));
    wt = jg_reshape_(at, wt, jg_shape(o, c / grp, kh, kw));
    if (kh > 1)
        wt = jg_slice_(at, wt, 2, -1, INT64_MIN, -1);
    if (kw > 1)
        wt = jg_slice_(at, wt, 3, -1, INT64_MIN, -1);
    if (node_poisoned(wt))
        return g->poison;
    /* stride-1 conv of x dilated by the stride and padded by d*(k-1) - pad (output_padding
     * extends the far end, which the window count below covers) */
    win_axis wh = { xs.dim[2], kh, oh, 1, p.dh, p.dh * (kh - 1) - p.ph, p.sh };
    win_axis ww = { xs.dim[3], kw, ow, 1, p.dw, p.dw * (kw - 1) - p.pw, p.sw };
    return conv_core(at, "conv_transpose2d", x, wt, bias, grp, wh, ww);
}

/* ---- pooling */

/* Windows of one axis under PyTorch's ceil_mode: the division rounds up (a partial window
 * counts), then one less if the last would start in the far padding. */
static int64_t ceil_len(int64_t n, int64_t p, int64_t k, int64_t s)
{
    int64_t num = n + 2 * p - k + s - 1; /* floor division, as PyTorch's div_rtn */
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    return out > 0 && (out - 1) * s >= n + p ? out - 1 : out;
}

/* Validates a pooling call; fills the output size (rounded up under ceil_mode). */
static bool check_pool(jg_loc at, const char *fn, jg_node *x, int kh, int kw, int sh, int sw,
                       int ph, int pw, bool ceil, int64_t *oh, int64_t *ow)
{
    char s[96];
    jg_graph *g = x->graph;
    if (!check_nchw(at, fn, "x", "[N,C,H,W]", x))
        return false;
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: kernel %dx%d and stride %dx%d must be >= 1, "
                    "padding %dx%d >= 0", fn, kh, kw, sh, sw, ph, pw);
        return false;
    }
    if (2 * ph > kh || 2 * pw > kw) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: padding %dx%d is more than half the kernel %dx%d",
                    fn, ph, pw, kh, kw);
        return false;
    }
    int64_t h = x->shape.dim[2], w = x->shape.dim[3];
    *oh = ceil ? ceil_len(h, ph, kh, sh) : out_len(h, 2 * ph, kh, 1, sh);
    *ow = ceil ? ceil_len(w, pw, kw, sw) : out_len(w, 2 * pw, kw, 1, sw);
    if (*oh < 1 || *ow < 1) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_%s: kernel %dx%d is larger than the padded input "
                    "%lldx%lld (x %s, padding %dx%d)", fn, kh, kw,
                    (long long)(x->shape.dim[2] + 2 * ph), (long long)(x->shape.dim[3] + 2 * pw),
                    FMT_SHAPE(s, x->shape), ph, pw);
        return false;
    }
    return true;
}

static jg_node *pool(jg_loc at, const char *fn, bool is_max, jg_node *x, int kh, int kw,
                     int sh, int sw, int ph, int pw)
{
    jg_node *bad = composite_operands(at, fn, &x, (const char *[]){ "x" }, (const bool[]){ false }, 1);
    if (bad)
        return bad;
    int64_t oh, ow;
    if (!check_pool(at, fn, x, kh, kw, sh, sw, ph, pw, false, &oh, &ow))
        return x->graph->poison;
    if (is_max)
        return jg_max_pool2d_ex_(at, x, kh, kw,
                                 &(jg_pool_opts){ .stride_h = sh, .stride_w = sw, .pad_h = ph,
                                                  .pad_w = pw });
    jg_shape s = x->shape;
    jg_node *r;
    if (sh == kh && sw == kw && ph == 0 && pw == 0) {
        /* non-overlapping windows: one reshape and one reduction, no copies of x */
        jg_node *t = jg_slice_(at, x, 2, 0, oh * kh, 1);
        t = jg_slice_(at, t, 3, 0, ow * kw, 1);
        t = jg_reshape_(at, t, jg_shape(s.dim[0], s.dim[1], oh, kh, ow, kw));
        r = is_max ? jg_max_(at, t, jg_axes(3, 5), false) : jg_mean_(at, t, jg_axes(3, 5), false);
    } else {
        win_axis wh = { s.dim[2], kh, oh, sh, 1, ph, 1 }, ww = { s.dim[3], kw, ow, sw, 1, pw, 1 };
        jg_node *st = gather_windows(at, fn, x, wh, ww, is_max ? -INFINITY : 0.0);
        r = is_max ? jg_max_(at, st, jg_axes(2), false) : jg_mean_(at, st, jg_axes(2), false);
        r = jg_reshape_(at, r, jg_shape(s.dim[0], s.dim[1], oh, ow));
    }
    return r;
}

jg_node *jg_max_pool2d_(jg_loc at, jg_node *x, int kh, int kw, int stride_h, int stride_w,
                        int pad_h, int pad_w)
{
    return pool(at, "max_pool2d", true, x, kh, kw, stride_h, stride_w, pad_h, pad_w);
}

jg_node *jg_avg_pool2d_(jg_loc at, jg_node *x, int kh, int kw, int stride_h, int stride_w,
                        int pad_h, int pad_w)
{
    return pool(at, "avg_pool2d", false, x, kh, kw, stride_h, stride_w, pad_h, pad_w);
}

/* How many elements window i of one axis divides by, as PyTorch's avg_pool2d: the window
 * clipped to the padded input, then (exclude_pad) to the input itself. */
static int64_t avg_count(int64_t n, int64_t p, int64_t k, int64_t s, int64_t i,
                         bool exclude_pad)
{
    int64_t lo = i * s - p, hi = lo + k < n + p ? lo + k : n + p;
    if (!exclude_pad)
        return hi - lo;
    return (hi < n ? hi : n) - (lo > 0 ? lo : 0);
}

jg_node *jg_avg_pool2d_ex_(jg_loc at, jg_node *x, int kh, int kw, const jg_pool_opts *opts)
{
    const char *fn = "avg_pool2d_ex";
    jg_pool_opts o = opts ? *opts : (jg_pool_opts){ 0 };
    jg_node *bad = composite_operands(at, fn, &x, (const char *[]){ "x" }, NULL, 1);
    if (bad)
        return bad;
    jg_graph *g = x->graph;
    int sh = o.stride_h ? o.stride_h : kh, sw = o.stride_w ? o.stride_w : kw;
    if ((o.dilation_h && o.dilation_h != 1) || (o.dilation_w && o.dilation_w != 1)) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: average pooling has no dilation (as PyTorch)",
                    fn);
        return g->poison;
    }
    int64_t oh, ow;
    if (!check_pool(at, fn, x, kh, kw, sh, sw, o.pad_h, o.pad_w, o.ceil_mode, &oh, &ow))
        return g->poison;
    if (!o.ceil_mode && !o.exclude_pad)
        return pool(at, fn, false, x, kh, kw, sh, sw, o.pad_h, o.pad_w);
    jg_shape s = x->shape;
    double *vals = malloc((size_t)(oh * ow) * sizeof *vals);
    float *valsf = malloc((size_t)(oh * ow) * sizeof *valsf);
    if (!vals || !valsf) {
        free(vals);
        free(valsf);
        graph_error(g, at, JG_ERR_NOMEM, "jg_%s: out of memory", fn);
        return g->poison;
    }
    for (int64_t i = 0; i < oh; i++)
        for (int64_t j = 0; j < ow; j++) {
            double c = (double)(avg_count(s.dim[2], o.pad_h, kh, sh, i, o.exclude_pad) *
                                avg_count(s.dim[3], o.pad_w, kw, sw, j, o.exclude_pad));
            valsf[i * ow + j] = (float)(vals[i * ow + j] = 1 / c);
        }
    jg_node *scale = jg_const_(at, g, x->dtype, jg_shape(oh, ow),
                               x->dtype == JG_F64 ? (void *)vals : (void *)valsf);
    free(vals);
    free(valsf);
    win_axis wh = { s.dim[2], kh, oh, sh, 1, o.pad_h, 1 };
    win_axis ww = { s.dim[3], kw, ow, sw, 1, o.pad_w, 1 };
    jg_node *sum = jg_sum_(at, gather_windows(at, fn, x, wh, ww, 0.0), jg_axes(2), false);
    return jg_mul_(at, jg_reshape_(at, sum, jg_shape(s.dim[0], s.dim[1], oh, ow)), scale);
}

jg_node *jg_global_avg_pool_(jg_loc at, jg_node *x)
{
    jg_node *bad = composite_operands(at, "global_avg_pool", &x, (const char *[]){ "x" },
                                  (const bool[]){ false }, 1);
    if (bad)
        return bad;
    if (!check_nchw(at, "global_avg_pool", "x", "[N,C,H,W]", x))
        return x->graph->poison;
    return jg_mean_(at, x, jg_axes(2, 3), false);
}
