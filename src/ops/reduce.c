/* Reductions: sum, mean, max, min, logsumexp over a set of axes, and argmax along one axis.
 * Attributes: the builder stores the axes as given in attr.list[0..count) (count -1: all);
 * the shape rule validates them and normalises them into the bitmask attr.axes; keepdims.
 * argmax uses attr.axis (normalised) and sets attr.axes to match. max and min give a tied
 * extreme's gradient to the first of them or split it (attr.ties), so their kinks are the
 * ties. */
#include "ops/op.h"

/* ---- shape rules */

/* A reduction's input shape with the reduced axes kept as 1: the shape gradients are
 * reshaped to before they broadcast back. */
static jg_shape keep_shape(jg_shape s, uint32_t axes)
{
    for (int d = 0; d < s.ndim; d++)
        if (axes & (1u << d))
            s.dim[d] = 1;
    return s;
}

static jg_shape reduced_shape(jg_shape s, uint32_t axes, bool keepdims)
{
    if (keepdims)
        return keep_shape(s, axes);
    jg_shape out = { .ndim = 0 };
    for (int d = 0; d < s.ndim; d++)
        if (!(axes & (1u << d)))
            out.dim[out.ndim++] = s.dim[d];
    return out;
}

static jg_status infer_reduce(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                              jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_shape s = in[0]->shape;
    char b[96];
    if (attr->count < -1 || attr->count > JG_MAX_DIMS) {
        snprintf(why, OP_ERR_SIZE, "%lld axes given, want -1 (all) or 0..%d",
                 (long long)attr->count, JG_MAX_DIMS);
        return JG_ERR_ARG;
    }
    uint32_t mask = 0;
    if (attr->count == -1)
        mask = (1u << s.ndim) - 1;
    for (int i = 0; i < attr->count; i++) {
        int64_t given = attr->list[i];
        int a;
        if (given < INT32_MIN || given > INT32_MAX || !axis_normalise((int)given, s.ndim, &a)) {
            snprintf(why, OP_ERR_SIZE, "axis %lld out of range for %s", (long long)given,
                     FMT_SHAPE(b, s));
            return JG_ERR_ARG;
        }
        if (mask & (1u << a)) {
            snprintf(why, OP_ERR_SIZE, "axis %d repeated (axes of %s)", a, FMT_SHAPE(b, s));
            return JG_ERR_ARG;
        }
        mask |= 1u << a;
    }
    if (attr->ties != JG_TIES_FIRST && attr->ties != JG_TIES_SPLIT) {
        snprintf(why, OP_ERR_SIZE, "ties is %d: JG_TIES_FIRST or JG_TIES_SPLIT", attr->ties);
        return JG_ERR_ARG;
    }
    attr->axes = mask;
    *shape = reduced_shape(s, mask, attr->keepdims);
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* mean and logsumexp: a mean or a log of integers would need a float result. */
static jg_status infer_reduce_float(jg_node *const *in, int n_in, op_attr *attr,
                                    jg_shape *shape, jg_dtype *dtype, char *why)
{
    if (in[0]->dtype == JG_I32) {
        snprintf(why, OP_ERR_SIZE, "needs a float operand, got i32 (use jg_cast)");
        return JG_ERR_DTYPE;
    }
    return infer_reduce(in, n_in, attr, shape, dtype, why);
}

static jg_status infer_argmax(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                              jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_shape s = in[0]->shape;
    int a;
    if (!axis_normalise(attr->axis, s.ndim, &a)) {
        char b[96];
        snprintf(why, OP_ERR_SIZE, "axis %d out of range for %s", attr->axis, FMT_SHAPE(b, s));
        return JG_ERR_ARG;
    }
    attr->axis = a;
    attr->axes = 1u << a;
    attr->keepdims = false;
    *shape = reduced_shape(s, attr->axes, false);
    *dtype = JG_I32;
    return JG_OK;
}

/* ---- reference kernels */

/* The input seen as groups: one group per output element (the kept axes, row-major, which is
 * the output's order with or without keepdims), each holding `size` elements (the reduced
 * axes, row-major). Offsets are recomputed from flat indices, so nothing is allocated. */
typedef struct groups {
    int nk, nr;
    int64_t kdim[JG_MAX_DIMS], kstride[JG_MAX_DIMS];
    int64_t rdim[JG_MAX_DIMS], rstride[JG_MAX_DIMS];
    int64_t count, size;
} groups;

static void groups_init(groups *gr, const jg_node *n)
{
    jg_shape s = n->in[0]->shape;
    int64_t stride[JG_MAX_DIMS];
    shape_strides(s, stride);
    gr->nk = gr->nr = 0;
    gr->count = gr->size = 1;
    for (int d = 0; d < s.ndim; d++) {
        if (n->attr.axes & (1u << d)) {
            gr->rdim[gr->nr] = s.dim[d];
            gr->rstride[gr->nr++] = stride[d];
            gr->size *= s.dim[d];
        } else {
            gr->kdim[gr->nk] = s.dim[d];
            gr->kstride[gr->nk++] = stride[d];
            gr->count *= s.dim[d];
        }
    }
}

static int64_t flat_offset(int64_t flat, int nd, const int64_t *dim, const int64_t *stride)
{
    int64_t off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        off += flat % dim[d] * stride[d];
        flat /= dim[d];
    }
    return off;
}

/* The first element of group o, and element r of a group from its first element. */
static const double *group_base(const groups *gr, const double *x, int64_t o)
{
    return x + flat_offset(o, gr->nk, gr->kdim, gr->kstride);
}

static double group_at(const groups *gr, const double *base, int64_t r)
{
    return base[flat_offset(r, gr->nr, gr->rdim, gr->rstride)];
}

/* Maximum of a group; a NaN anywhere makes it NaN, as in NumPy. */
static double group_max(const groups *gr, const double *base)
{
    double m = group_at(gr, base, 0);
    for (int64_t r = 1; r < gr->size && m == m; r++) {
        double v = group_at(gr, base, r);
        if (v > m || v != v)
            m = v;
    }
    return m;
}

static double group_sum(const groups *gr, const double *base)
{
    double acc = 0;
    for (int64_t r = 0; r < gr->size; r++)
        acc += group_at(gr, base, r);
    return acc;
}

static jg_status sum_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    groups gr;
    groups_init(&gr, n);
    for (int64_t o = 0; o < gr.count; o++)
        out[o] = group_sum(&gr, group_base(&gr, in[0], o));
    return JG_OK;
}

static jg_status mean_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    groups gr;
    groups_init(&gr, n);
    for (int64_t o = 0; o < gr.count; o++)
        out[o] = group_sum(&gr, group_base(&gr, in[0], o)) / (double)gr.size;
    return JG_OK;
}

static jg_status max_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    groups gr;
    groups_init(&gr, n);
    for (int64_t o = 0; o < gr.count; o++)
        out[o] = group_max(&gr, group_base(&gr, in[0], o));
    return JG_OK;
}

static jg_status min_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    groups gr;
    groups_init(&gr, n);
    for (int64_t o = 0; o < gr.count; o++) {
        const double *base = group_base(&gr, in[0], o);
        double m = group_at(&gr, base, 0);
        for (int64_t r = 1; r < gr.size && m == m; r++) {
            double v = group_at(&gr, base, r);
            if (v < m || v != v)
                m = v;
        }
        out[o] = m;
    }
    return JG_OK;
}

/* Stable: m + log(sum exp(x - m)). An infinite (or NaN) maximum is the result itself, which
 * makes a group of all -inf give -inf instead of NaN from -inf - -inf. */
static jg_status logsumexp_eval(const jg_node *n, const double *const *in, double *out,
                                char *err)
{
    (void)err;
    groups gr;
    groups_init(&gr, n);
    for (int64_t o = 0; o < gr.count; o++) {
        const double *base = group_base(&gr, in[0], o);
        double m = group_max(&gr, base);
        if (!isfinite(m)) {
            out[o] = m;
            continue;
        }
        double acc = 0;
        for (int64_t r = 0; r < gr.size; r++)
            acc += exp(group_at(&gr, base, r) - m);
        out[o] = m + log(acc);
    }
    return JG_OK;
}

/* The index of the first maximum (of the first NaN, as in NumPy). */
static jg_status argmax_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    groups gr;
    groups_init(&gr, n);
    for (int64_t o = 0; o < gr.count; o++) {
        const double *base = group_base(&gr, in[0], o);
        double best = group_at(&gr, base, 0);
        int64_t at = 0;
        for (int64_t r = 1; r < gr.size && best == best; r++) {
            double v = group_at(&gr, base, r);
            if (v > best || v != v)
                best = v, at = r;
        }
        out[o] = (double)at;
    }
    return JG_OK;
}

/* ---- kinks */

/* The smallest gap, over the groups, between the extreme and the runner-up (0 at a tie):
 * where the gradient jumps from one element to another. sign -1 turns min into max. */
static double extreme_gap(const jg_node *n, const double *x, double sign)
{
    groups gr;
    groups_init(&gr, n);
    double gap = INFINITY;
    if (gr.size < 2)
        return gap; /* one element per group: the extreme is that element, smooth */
    for (int64_t o = 0; o < gr.count; o++) {
        const double *base = group_base(&gr, x, o);
        double m1 = -INFINITY, m2 = -INFINITY;
        for (int64_t r = 0; r < gr.size; r++) {
            double v = sign * group_at(&gr, base, r);
            if (v > m1)
                m2 = m1, m1 = v;
            else if (v > m2)
                m2 = v;
        }
        /* two equal infinities are a tie too (their difference is NaN) */
        gap = fmin(gap, m1 == m2 ? 0 : m1 - m2);
    }
    return gap;
}

static double max_kink(const jg_node *n, const double *const *in, const double *out)
{
    (void)out;
    return extreme_gap(n, in[0], 1);
}

static double min_kink(const jg_node *n, const double *const *in, const double *out)
{
    (void)out;
    return extreme_gap(n, in[0], -1);
}

/* ---- gradient rules */

/* v (of the reduction's output shape) reshaped to the input's rank, reduced axes as 1, so
 * that it broadcasts against the input. */
static jg_node *as_keepdims(jg_node *n, jg_node *v)
{
    jg_shape ks = keep_shape(n->in[0]->shape, n->attr.axes);
    return shape_eq(v->shape, ks) ? v : jg_reshape(v, ks);
}

/* v (of the reduction's output shape) broadcast back to the input's shape. */
static jg_node *spread(jg_node *n, jg_node *v)
{
    v = as_keepdims(n, v);
    return shape_eq(v->shape, n->in[0]->shape) ? v : jg_broadcast_to(v, n->in[0]->shape);
}

static jg_axes axes_of(uint32_t mask)
{
    jg_axes a = { .n = 0 };
    for (int d = 0; d < JG_MAX_DIMS; d++)
        if (mask & (1u << d))
            a.axis[a.n++] = d;
    return a;
}

static void sum_grad(jg_node *n, jg_node *dy, jg_node **dx) { dx[0] = spread(n, dy); }

static void mean_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    double size = (double)jg_shape_numel(n->in[0]->shape) / (double)jg_shape_numel(n->shape);
    dx[0] = spread(n, size == 1 ? dy : jg_scale(dy, 1.0 / size));
}

/* JG_TIES_FIRST: dy goes to the first extreme of each group in row-major order, which is
 * argmax along the group's elements: the reduced axes are moved last and flattened, and the
 * one-hot of the argmax (of -x for min: the first minimum; a NaN is found first either way)
 * carries dy back through the same reshape and permutation. */
static jg_node *first_extreme_grad(jg_node *n, jg_node *dy)
{
    jg_node *x = n->in[0];
    if (!n->attr.axes) /* nothing reduced: the identity (and no room for a group axis) */
        return dy;
    jg_shape s = x->shape, moved = { .ndim = s.ndim }, kept = { .ndim = 0 };
    jg_axes perm = { .n = s.ndim }, back = { .n = s.ndim };
    int64_t group = 1;
    for (int pass = 0, k = 0; pass < 2; pass++)
        for (int d = 0; d < s.ndim; d++) {
            bool reduced = (n->attr.axes >> d) & 1u;
            if (reduced != (pass == 1))
                continue;
            if (reduced)
                group *= s.dim[d];
            else
                kept.dim[kept.ndim++] = s.dim[d];
            back.axis[d] = k;
            moved.dim[k] = s.dim[d];
            perm.axis[k++] = d;
        }
    bool identity = true;
    for (int d = 0; d < s.ndim; d++)
        identity &= perm.axis[d] == d;
    jg_shape flat = kept;
    flat.dim[flat.ndim++] = group;
    jg_node *v = n->op == JG_OP_MIN ? jg_neg(x) : x;
    v = jg_reshape(identity ? v : jg_permute(v, perm), flat);
    jg_node *hot = jg_one_hot(jg_argmax(v, -1), (int)group, x->dtype);
    jg_shape dys = kept;
    dys.dim[dys.ndim++] = 1;
    jg_node *g = jg_reshape(jg_mul(hot, jg_reshape(dy, dys)), moved);
    return identity ? g : jg_permute(g, back);
}

/* max and min: dy to the first extreme, or the tied extremes share it equally. The mask
 * compares x with y reshaped to keepdims, and the products broadcast implicitly, so dx has
 * x's shape. */
static void extreme_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    if (n->attr.ties == JG_TIES_FIRST) {
        dx[0] = first_extreme_grad(n, dy);
        return;
    }
    jg_node *x = n->in[0];
    jg_node *mask = jg_eq(x, as_keepdims(n, n));
    jg_node *ties = jg_sum(mask, axes_of(n->attr.axes), true);
    dx[0] = jg_mul(mask, jg_div(as_keepdims(n, dy), ties));
}

/* d logsumexp / dx = exp(x - y), the softmax over the reduced axes. */
static void logsumexp_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *x = n->in[0];
    jg_node *p = jg_exp(jg_sub(x, as_keepdims(n, n)));
    dx[0] = jg_mul(p, as_keepdims(n, dy));
}

/* ---- decompositions for the compiler */

static jg_node *mean_decompose(const jg_node *n, jg_node *const *in)
{
    double size = (double)jg_shape_numel(in[0]->shape) / (double)jg_shape_numel(n->shape);
    return jg_scale(jg_sum(in[0], axes_of(n->attr.axes), n->attr.keepdims), 1.0 / size);
}

/* m + log(sum(exp(x - m))) with m the maximum; a group that is all -inf has m = -inf, so m is
 * replaced by 0 there to keep x - m from being NaN (the result is then log(0) = -inf). */
static jg_node *logsumexp_decompose(const jg_node *n, jg_node *const *in)
{
    jg_node *x = in[0];
    jg_axes axes = axes_of(n->attr.axes);
    jg_node *m = jg_max(x, axes, true);
    jg_node *finite = jg_where(jg_eq(m, jg_scalar_like(x, -INFINITY)), jg_scalar_like(x, 0), m);
    jg_node *y = jg_add(finite, jg_log(jg_sum(jg_exp(jg_sub(x, finite)), axes, true)));
    return n->attr.keepdims ? y : jg_reshape(y, n->shape);
}

#define REDUCE_OP(nm, infer_fn, grad_fn, ...)                                               \
    const op_def op_##nm = { .arity = 1, .kind = KIND_REDUCE,                               \
                             .infer = infer_fn, .grad = grad_fn, .eval = nm##_eval,         \
                             __VA_ARGS__ };

REDUCE_OP(sum, infer_reduce, sum_grad)
REDUCE_OP(mean, infer_reduce_float, mean_grad, .decompose = mean_decompose)
REDUCE_OP(max, infer_reduce, extreme_grad, .kink = max_kink)
REDUCE_OP(min, infer_reduce, extreme_grad, .kink = min_kink)
REDUCE_OP(logsumexp, infer_reduce_float, logsumexp_grad, .decompose = logsumexp_decompose)
const op_def op_argmax = { .arity = 1, .kind = KIND_OPAQUE,
                           .infer = infer_argmax, .no_grad = true, .eval = argmax_eval };

/* ---- builders */

/* ties matters to max and min only; the others pass 0. */
static jg_node *reduce(jg_loc at, jg_op op, jg_node *x, jg_axes axes, bool keepdims,
                       jg_ties ties)
{
    op_attr a = { .count = axes.n, .keepdims = keepdims, .ties = (int)ties };
    for (int i = 0; i < axes.n && i < JG_MAX_DIMS; i++)
        a.list[i] = axes.axis[i];
    return op_build(at, op, &x, 1, &a);
}

jg_node *jg_sum_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return reduce(at, JG_OP_SUM, x, axes, keepdims, 0);
}

jg_node *jg_mean_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return reduce(at, JG_OP_MEAN, x, axes, keepdims, 0);
}

jg_node *jg_max_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return reduce(at, JG_OP_MAX, x, axes, keepdims, JG_TIES_SPLIT);
}

jg_node *jg_min_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return reduce(at, JG_OP_MIN, x, axes, keepdims, JG_TIES_SPLIT);
}

jg_node *jg_logsumexp_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims)
{
    return reduce(at, JG_OP_LOGSUMEXP, x, axes, keepdims, 0);
}

jg_node *jg_max_ex_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims, jg_ties ties)
{
    return reduce(at, JG_OP_MAX, x, axes, keepdims, ties);
}

jg_node *jg_min_ex_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims, jg_ties ties)
{
    return reduce(at, JG_OP_MIN, x, axes, keepdims, ties);
}

jg_node *jg_argmax_(jg_loc at, jg_node *x, int axis)
{
    return op_build(at, JG_OP_ARGMAX, &x, 1, &(op_attr){ .axis = axis });
}
