/* Movement ops that keep every element: reshape, permute (transpose is a permute builder) and
 * broadcast. Their gradients are movements back (reshape back, inverse permutation, sum to
 * the operand's shape). Attributes: reshape and broadcast carry the target shape in
 * attr.list / attr.count (ndim); permute carries the normalised permutation the same way.
 * A call that would not change its operand returns the operand itself, adding no node. */
#include "ops/op.h"

#include <string.h>

/* ---- reshape */

/* The target shape in s with a -1 resolved against x's element count. On failure writes the
 * reason into why. */
static jg_status resolve_reshape(jg_shape from, jg_shape s, jg_shape *out, char *why)
{
    char a[96], b[96];
    if (s.ndim < 0 || s.ndim > JG_MAX_DIMS) {
        snprintf(why, OP_ERR_SIZE, "target has %d dimensions (at most %d)", s.ndim, JG_MAX_DIMS);
        return JG_ERR_SHAPE;
    }
    int infer_at = -1;
    int64_t known = 1, limit = (int64_t)1 << 40;
    for (int i = 0; i < s.ndim; i++) {
        if (s.dim[i] == -1) {
            if (infer_at >= 0) {
                snprintf(why, OP_ERR_SIZE, "at most one dimension may be -1, target %s",
                         FMT_SHAPE(a, s));
                return JG_ERR_SHAPE;
            }
            infer_at = i;
        } else if (s.dim[i] < 1 || s.dim[i] > limit) {
            snprintf(why, OP_ERR_SIZE, "invalid target %s (dimensions >= 1, or one -1)",
                     FMT_SHAPE(a, s));
            return JG_ERR_SHAPE;
        } else if (s.dim[i] > limit / known) {
            known = limit + 1; /* too many elements for any operand; never overflows */
        } else {
            known *= s.dim[i];
        }
    }
    int64_t numel = jg_shape_numel(from);
    if (infer_at >= 0) {
        if (known > limit || numel % known != 0) {
            snprintf(why, OP_ERR_SIZE, "cannot reshape %s (%lld elements) to %s: not divisible",
                     FMT_SHAPE(a, from), (long long)numel, FMT_SHAPE(b, s));
            return JG_ERR_SHAPE;
        }
        s.dim[infer_at] = numel / known;
    } else if (known != numel) {
        snprintf(why, OP_ERR_SIZE, "cannot reshape %s (%lld elements) to %s (%lld elements)",
                 FMT_SHAPE(a, from), (long long)numel, FMT_SHAPE(b, s), (long long)known);
        return JG_ERR_SHAPE;
    }
    *out = s;
    return JG_OK;
}

static jg_shape attr_shape(const op_attr *attr)
{
    jg_shape s = { .ndim = (int)attr->count };
    if (s.ndim >= 0 && s.ndim <= JG_MAX_DIMS)
        memcpy(s.dim, attr->list, (size_t)s.ndim * sizeof s.dim[0]);
    return s;
}

/* An out-of-range ndim is kept in count for the shape rule to report. */
static op_attr shape_attr(jg_shape s)
{
    op_attr a = { .count = s.ndim };
    if (s.ndim >= 0 && s.ndim <= JG_MAX_DIMS)
        memcpy(a.list, s.dim, (size_t)s.ndim * sizeof s.dim[0]);
    return a;
}

static jg_status infer_reshape(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                               jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_status st = resolve_reshape(in[0]->shape, attr_shape(attr), shape, why);
    if (st == JG_OK)
        *attr = shape_attr(*shape); /* -1 resolved, so the node states its shape plainly */
    *dtype = in[0]->dtype;
    return st;
}

static jg_status copy_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    memcpy(out, in[0], (size_t)jg_shape_numel(n->shape) * sizeof *out);
    return JG_OK;
}

static void reshape_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_reshape(dy, n->in[0]->shape);
}

const op_def op_reshape = { .arity = 1, .kind = KIND_INJECTIVE,
                            .infer = infer_reshape, .grad = reshape_grad, .eval = copy_eval };

jg_node *jg_reshape_(jg_loc at, jg_node *x, jg_shape s)
{
    char why[OP_ERR_SIZE];
    jg_shape r;
    if (x && !node_poisoned(x) && resolve_reshape(x->shape, s, &r, why) == JG_OK &&
        shape_eq(r, x->shape))
        return x;
    op_attr a = shape_attr(s);
    return op_build(at, JG_OP_RESHAPE, &x, 1, &a);
}

/* ---- permute */

static jg_status infer_permute(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                               jg_dtype *dtype, char *why)
{
    (void)n_in;
    char a[96];
    jg_shape xs = in[0]->shape;
    if (attr->count != xs.ndim) {
        snprintf(why, OP_ERR_SIZE, "permutation has %lld axes, operand %s has %d",
                 (long long)attr->count, FMT_SHAPE(a, xs), xs.ndim);
        return JG_ERR_ARG;
    }
    bool seen[JG_MAX_DIMS] = { false };
    for (int i = 0; i < xs.ndim; i++) {
        int axis;
        if (attr->list[i] < -xs.ndim || attr->list[i] >= xs.ndim ||
            !axis_normalise((int)attr->list[i], xs.ndim, &axis) || seen[axis]) {
            snprintf(why, OP_ERR_SIZE, "not a permutation of the axes of %s: axis %lld %s",
                     FMT_SHAPE(a, xs), (long long)attr->list[i],
                     attr->list[i] < -xs.ndim || attr->list[i] >= xs.ndim ? "is out of range"
                                                                           : "repeats");
            return JG_ERR_ARG;
        }
        seen[axis] = true;
        attr->list[i] = axis;
    }
    shape->ndim = xs.ndim;
    for (int i = 0; i < xs.ndim; i++)
        shape->dim[i] = xs.dim[attr->list[i]];
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* out[j] = x[i] where output axis k walks input axis perm[k]. */
static jg_status permute_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    int nd = n->shape.ndim;
    int64_t xstride[JG_MAX_DIMS], stride[JG_MAX_DIMS], idx[JG_MAX_DIMS] = { 0 };
    shape_strides(n->in[0]->shape, xstride);
    for (int k = 0; k < nd; k++)
        stride[k] = xstride[n->attr.list[k]];
    int64_t numel = jg_shape_numel(n->shape), off = 0;
    for (int64_t i = 0; i < numel; i++) {
        out[i] = in[0][off];
        for (int k = nd - 1; k >= 0; k--) {
            off += stride[k];
            if (++idx[k] < n->shape.dim[k])
                break;
            off -= stride[k] * n->shape.dim[k];
            idx[k] = 0;
        }
    }
    return JG_OK;
}

static void permute_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_axes inv = { .n = n->shape.ndim };
    for (int k = 0; k < n->shape.ndim; k++)
        inv.axis[n->attr.list[k]] = k;
    dx[0] = jg_permute(dy, inv);
}

const op_def op_permute = { .arity = 1, .kind = KIND_INJECTIVE,
                            .infer = infer_permute, .grad = permute_grad, .eval = permute_eval };

jg_node *jg_permute_(jg_loc at, jg_node *x, jg_axes perm)
{
    op_attr a = { .count = perm.n };
    if (perm.n >= 0 && perm.n <= JG_MAX_DIMS) {
        bool identity = x && !node_poisoned(x) && perm.n == x->shape.ndim;
        for (int i = 0; i < perm.n; i++) {
            a.list[i] = perm.axis[i];
            identity &= perm.axis[i] == i || perm.axis[i] == i - perm.n;
        }
        if (identity)
            return x;
    }
    return op_build(at, JG_OP_PERMUTE, &x, 1, &a);
}

jg_node *jg_transpose_(jg_loc at, jg_node *x)
{
    if (x && !node_poisoned(x) && x->shape.ndim < 2) {
        char a[96];
        graph_error(x->graph, at, JG_ERR_SHAPE,
                    "jg_transpose: needs at least 2 dimensions, operand is %s",
                    FMT_SHAPE(a, x->shape));
        return x->graph->poison;
    }
    jg_axes perm = { .n = x && !node_poisoned(x) ? x->shape.ndim : 0 };
    for (int i = 0; i < perm.n; i++)
        perm.axis[i] = i;
    if (perm.n >= 2) {
        perm.axis[perm.n - 2] = perm.n - 1;
        perm.axis[perm.n - 1] = perm.n - 2;
    }
    return jg_permute_(at, x, perm);
}

/* ---- broadcast */

static jg_status infer_broadcast_to(jg_node *const *in, int n_in, op_attr *attr,
                                    jg_shape *shape, jg_dtype *dtype, char *why)
{
    (void)n_in;
    char a[96], b[96];
    jg_shape s = attr_shape(attr), r;
    if (attr->count < 0 || attr->count > JG_MAX_DIMS || !shape_valid(s)) {
        snprintf(why, OP_ERR_SIZE, "invalid target shape %s (at most %d dimensions, each >= 1)",
                 attr->count < 0 || attr->count > JG_MAX_DIMS ? "(bad ndim)" : FMT_SHAPE(a, s),
                 JG_MAX_DIMS);
        return JG_ERR_SHAPE;
    }
    if (!shape_broadcast(in[0]->shape, s, &r) || !shape_eq(r, s)) {
        snprintf(why, OP_ERR_SIZE, "cannot broadcast %s to %s", FMT_SHAPE(a, in[0]->shape),
                 FMT_SHAPE(b, s));
        return JG_ERR_SHAPE;
    }
    *shape = s;
    *dtype = in[0]->dtype;
    return JG_OK;
}

static jg_status broadcast_eval(const jg_node *n, const double *const *in, double *out,
                                char *err)
{
    (void)err;
    int64_t numel = jg_shape_numel(n->shape);
    bcast_iter it;
    bcast_init(&it, n);
    for (int64_t i = 0; i < numel; i++, bcast_next(&it))
        out[i] = in[0][it.off[0]];
    return JG_OK;
}

static void broadcast_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = grad_sum_to(dy, n->in[0]->shape);
}

const op_def op_broadcast = { .arity = 1, .kind = KIND_INJECTIVE,
                              .infer = infer_broadcast_to, .grad = broadcast_grad,
                              .eval = broadcast_eval };

jg_node *jg_broadcast_to_(jg_loc at, jg_node *x, jg_shape s)
{
    op_attr a = shape_attr(s);
    if (x && !node_poisoned(x)) {
        if (shape_eq(x->shape, s))
            return x;
        /* checked here so that the message names the public function, not the op */
        char why[OP_ERR_SIZE] = "";
        jg_shape r;
        jg_dtype t;
        op_attr tmp = a;
        jg_status st = infer_broadcast_to(&x, 1, &tmp, &r, &t, why);
        if (st != JG_OK) {
            graph_error(x->graph, at, st, "jg_broadcast_to: %s", why);
            return x->graph->poison;
        }
    }
    return op_build(at, JG_OP_BROADCAST, &x, 1, &a);
}
