/* Max pooling as an op of its own: max_pool2d(x [N,C,H,W]) -> [N,C,OH,OW] and its gradient
 * max_pool2d_grad(x, dy) -> dx, both one pass over memory (as a composite, the windows' max,
 * the tie mask, the tie count and the share were four). Attributes of both:
 *
 *     list  kh, kw, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w (validated)
 *     count the tie policy: JG_TIES_FIRST (the whole gradient to the first maximum of the
 *           window in row-major order, as PyTorch) or JG_TIES_SPLIT (shared equally)
 *
 * Padding reads -inf: it never wins. A NaN in a window is its maximum (the first NaN), as
 * argmax has it, and takes the whole gradient under either policy. */
#include "ops/pool.h"

#include <math.h>
#include <string.h>

/* Output length of a window `k` dilated by d sliding by s over n + pads; < 1 when it does
 * not fit. */
static int64_t out_len(int64_t n, int64_t pads, int64_t k, int64_t d, int64_t s)
{
    int64_t span = n + pads - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

static pool_geom geom_of(const op_attr *a, jg_shape x)
{
    const int64_t *l = a->list;
    pool_geom p = { .planes = x.dim[0] * x.dim[1], .h = x.dim[2], .w = x.dim[3],
                    .kh = l[0], .kw = l[1], .sh = l[2], .sw = l[3], .ph = l[4], .pw = l[5],
                    .dh = l[6], .dw = l[7], .ties = (jg_ties)a->count };
    p.oh = out_len(p.h, 2 * p.ph, p.kh, p.dh, p.sh);
    p.ow = out_len(p.w, 2 * p.pw, p.kw, p.dw, p.sw);
    return p;
}

pool_geom pool_geom_of(const jg_node *n) { return geom_of(&n->attr, n->in[0]->shape); }

/* x: 4-D float; the geometry: sizes >= 1, padding at most half the kernel, a window that
 * fits; sets the pooled shape. */
static jg_status check_pool(const jg_node *x, const op_attr *a, jg_shape *pooled, char *why)
{
    char s[96];
    const int64_t *l = a->list;
    if (x->dtype != JG_F32 && x->dtype != JG_F64) {
        snprintf(why, OP_ERR_SIZE, "x must be f32 or f64, got %s", jg_dtype_str(x->dtype));
        return JG_ERR_DTYPE;
    }
    if (x->shape.ndim != 4) {
        snprintf(why, OP_ERR_SIZE, "x must be 4-D [N,C,H,W], got %s", FMT_SHAPE(s, x->shape));
        return JG_ERR_SHAPE;
    }
    if (l[0] < 1 || l[1] < 1 || l[2] < 1 || l[3] < 1 || l[4] < 0 || l[5] < 0 || l[6] < 1 ||
        l[7] < 1) {
        snprintf(why, OP_ERR_SIZE, "kernel %lldx%lld, stride %lldx%lld and dilation %lldx%lld "
                 "must be >= 1, padding %lldx%lld >= 0", (long long)l[0], (long long)l[1],
                 (long long)l[2], (long long)l[3], (long long)l[6], (long long)l[7],
                 (long long)l[4], (long long)l[5]);
        return JG_ERR_ARG;
    }
    if (2 * l[4] > l[0] || 2 * l[5] > l[1]) {
        snprintf(why, OP_ERR_SIZE, "padding %lldx%lld is more than half the kernel %lldx%lld",
                 (long long)l[4], (long long)l[5], (long long)l[0], (long long)l[1]);
        return JG_ERR_ARG;
    }
    if (a->count != JG_TIES_FIRST && a->count != JG_TIES_SPLIT) {
        snprintf(why, OP_ERR_SIZE, "ties is %lld: JG_TIES_FIRST or JG_TIES_SPLIT",
                 (long long)a->count);
        return JG_ERR_ARG;
    }
    pool_geom p = geom_of(a, x->shape);
    if (p.oh < 1 || p.ow < 1) {
        snprintf(why, OP_ERR_SIZE, "kernel %lldx%lld (dilation %lldx%lld) is larger than the "
                 "padded input %lldx%lld (x %s, padding %lldx%lld)", (long long)p.kh,
                 (long long)p.kw, (long long)p.dh, (long long)p.dw,
                 (long long)(p.h + 2 * p.ph), (long long)(p.w + 2 * p.pw),
                 FMT_SHAPE(s, x->shape), (long long)p.ph, (long long)p.pw);
        return JG_ERR_SHAPE;
    }
    *pooled = jg_shape(x->shape.dim[0], x->shape.dim[1], p.oh, p.ow);
    return JG_OK;
}

static jg_status infer_max_pool2d(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                                  jg_dtype *dtype, char *why)
{
    (void)n_in;
    *dtype = in[0]->dtype;
    return check_pool(in[0], attr, shape, why);
}

static jg_status infer_max_pool2d_grad(jg_node *const *in, int n_in, op_attr *attr,
                                       jg_shape *shape, jg_dtype *dtype, char *why)
{
    (void)n_in;
    char a[96], b[96];
    jg_shape pooled;
    jg_status st = check_pool(in[0], attr, &pooled, why);
    if (st != JG_OK)
        return st;
    if (in[1]->dtype != in[0]->dtype) {
        snprintf(why, OP_ERR_SIZE, "dy is %s but x is %s", jg_dtype_str(in[1]->dtype),
                 jg_dtype_str(in[0]->dtype));
        return JG_ERR_DTYPE;
    }
    if (!shape_eq(in[1]->shape, pooled)) {
        snprintf(why, OP_ERR_SIZE, "dy must have the pooled shape %s, got %s",
                 FMT_SHAPE(a, pooled), FMT_SHAPE(b, in[1]->shape));
        return JG_ERR_SHAPE;
    }
    *dtype = in[0]->dtype;
    *shape = in[0]->shape;
    return JG_OK;
}

/* ---- the window scan the reference kernels share (the JIT's is emit_pool.c) */

typedef struct window_max {
    int64_t at;        /* in-plane index of the first maximum (or first NaN); -1: no tap */
    double value, runner_up;
} window_max;

static window_max scan_window(const pool_geom *p, const double *plane, int64_t i, int64_t j)
{
    window_max m = { .at = -1, .value = -INFINITY, .runner_up = -INFINITY };
    for (int64_t a = 0; a < p->kh; a++) {
        int64_t r = i * p->sh - p->ph + a * p->dh;
        for (int64_t b = 0; r >= 0 && r < p->h && b < p->kw; b++) {
            int64_t c = j * p->sw - p->pw + b * p->dw;
            if (c < 0 || c >= p->w)
                continue;
            double v = plane[r * p->w + c];
            bool better = m.at < 0 || v > m.value || (isnan(v) && !isnan(m.value));
            if (better) {
                m.runner_up = m.at < 0 ? -INFINITY : m.value;
                m.value = v;
                m.at = r * p->w + c;
            } else if (v > m.runner_up || v == m.value) {
                m.runner_up = v;
            }
        }
    }
    return m;
}

/* Whether tap (r, c) of a window is one of its tied maxima under the policy. */
static bool takes_share(const pool_geom *p, const window_max *m, double v, int64_t at)
{
    return at == m->at || (p->ties == JG_TIES_SPLIT && v == m->value);
}

static jg_status max_pool2d_eval(const jg_node *n, const double *const *in, double *out,
                                 char *err)
{
    (void)err;
    pool_geom p = geom_of(&n->attr, n->in[0]->shape);
    for (int64_t q = 0; q < p.planes; q++)
        for (int64_t i = 0; i < p.oh; i++)
            for (int64_t j = 0; j < p.ow; j++)
                out[(q * p.oh + i) * p.ow + j] = scan_window(&p, in[0] + q * p.h * p.w, i, j).value;
    return JG_OK;
}

static jg_status max_pool2d_grad_eval(const jg_node *n, const double *const *in, double *out,
                                      char *err)
{
    (void)err;
    pool_geom p = geom_of(&n->attr, n->in[0]->shape);
    memset(out, 0, (size_t)(p.planes * p.h * p.w) * sizeof *out);
    for (int64_t q = 0; q < p.planes; q++) {
        const double *x = in[0] + q * p.h * p.w;
        double *dx = out + q * p.h * p.w;
        for (int64_t i = 0; i < p.oh; i++)
            for (int64_t j = 0; j < p.ow; j++) {
                window_max m = scan_window(&p, x, i, j);
                double dy = in[1][(q * p.oh + i) * p.ow + j];
                if (m.at < 0)
                    continue;
                if (p.ties == JG_TIES_FIRST || isnan(m.value)) {
                    dx[m.at] += dy;
                    continue;
                }
                /* split: count the ties, then share; a tap is visited once per window */
                double ties = 0;
                for (int pass = 0; pass < 2; pass++)
                    for (int64_t a = 0; a < p.kh; a++) {
                        int64_t r = i * p.sh - p.ph + a * p.dh;
                        for (int64_t b = 0; r >= 0 && r < p.h && b < p.kw; b++) {
                            int64_t c = j * p.sw - p.pw + b * p.dw;
                            int64_t at = r * p.w + c;
                            if (c < 0 || c >= p.w || !takes_share(&p, &m, x[at], at))
                                continue;
                            if (pass == 0)
                                ties++;
                            else
                                dx[r * p.w + c] += dy / ties;
                        }
                    }
            }
    }
    return JG_OK;
}

/* The smallest gap between a window's maximum and its runner-up (0 at a tie): where the
 * gradient jumps from one element to another. */
static double max_pool2d_kink(const jg_node *n, const double *const *in, const double *out)
{
    (void)out;
    pool_geom p = geom_of(&n->attr, n->in[0]->shape);
    double gap = INFINITY;
    for (int64_t q = 0; q < p.planes; q++)
        for (int64_t i = 0; i < p.oh; i++)
            for (int64_t j = 0; j < p.ow; j++) {
                window_max m = scan_window(&p, in[0] + q * p.h * p.w, i, j);
                gap = fmin(gap, m.value == m.runner_up ? 0 : m.value - m.runner_up);
            }
    return gap;
}

static void max_pool2d_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *in[2] = { n->in[0], dy };
    dx[0] = op_build(n->at, JG_OP_MAX_POOL2D_GRAD, in, 2, &n->attr);
}

const op_def op_max_pool2d = { .arity = 1, .kind = KIND_OPAQUE, .infer = infer_max_pool2d,
                               .grad = max_pool2d_grad, .eval = max_pool2d_eval,
                               .kink = max_pool2d_kink };
/* Its own gradient is not defined (grad NULL: differentiating it twice is an error). */
const op_def op_max_pool2d_grad = { .arity = 2, .kind = KIND_OPAQUE,
                                    .infer = infer_max_pool2d_grad,
                                    .eval = max_pool2d_grad_eval };

/* ceil_mode: how many -inf rows (or columns) at the far end make the floor rule give
 * PyTorch's ceil count: one more window where a partial one remains, unless it would start
 * in the far padding. */
static int64_t ceil_extra(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t span = d * (k - 1) + 1, floor_out = out_len(n, 2 * p, k, d, s);
    int64_t num = n + 2 * p - span + s - 1; /* floor division, as PyTorch's div_rtn */
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (out > 0 && (out - 1) * s >= n + p)
        out--;
    /* out < 1: no window, which the op reports */
    return out > floor_out ? (out - 1) * s + span - (n + 2 * p) : 0;
}

jg_node *jg_max_pool2d_ex_(jg_loc at, jg_node *x, int kh, int kw, const jg_pool_opts *opts)
{
    jg_pool_opts o = opts ? *opts : (jg_pool_opts){ 0 };
    op_attr a = { .count = o.ties };
    int64_t v[8] = { kh, kw, o.stride_h ? o.stride_h : kh, o.stride_w ? o.stride_w : kw,
                     o.pad_h, o.pad_w, o.dilation_h ? o.dilation_h : 1,
                     o.dilation_w ? o.dilation_w : 1 };
    memcpy(a.list, v, sizeof v);
    if (o.exclude_pad && x && x->graph && !node_poisoned(x)) {
        graph_error(x->graph, at, JG_ERR_ARG, "jg_max_pool2d_ex: exclude_pad is for average "
                    "pooling");
        return x->graph->poison;
    }
    /* ceil_mode: the windows past the end read -inf (they never win), padded on first; the
     * sizes are checked by the op itself, so only plausible ones are used here */
    if (o.ceil_mode && x && !node_poisoned(x) && x->shape.ndim == 4 && v[0] > 0 && v[1] > 0 &&
        v[2] > 0 && v[3] > 0 && v[4] >= 0 && v[5] >= 0 && v[6] > 0 && v[7] > 0) {
        int64_t eh = ceil_extra(x->shape.dim[2], v[0], v[2], v[4], v[6]);
        int64_t ew = ceil_extra(x->shape.dim[3], v[1], v[3], v[5], v[7]);
        if (eh || ew)
            x = jg_pad_(at, x, jg_shape(0, 0, 0, 0), jg_shape(0, 0, eh, ew), -INFINITY);
    }
    return op_build(at, JG_OP_MAX_POOL2D, &x, 1, &a);
}
