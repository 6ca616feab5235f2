/* Indexing ops: slice and its adjoint unslice, pad, concat, take and its adjoint scatter_add,
 * one_hot. Each adjoint pair differentiates into the other, so gradients of gradients work.
 * Index values are checked when the program runs (JG_ERR_RANGE): a label bug should stop a
 * run, not silently read or write the wrong row. Calls that would change nothing (a slice
 * of a whole axis, zero padding) return their operand. */
#include "ops/op.h"

#include <string.h>

/* Attributes
 * slice:       axis, list[k] = start, step[k] = step on every axis k (untouched axes: 0, 1),
 *              count = the output's length on `axis` (other axes keep their length). NOTE
 *              op_attr has room for one output length, so a node slices one axis (the others
 *              may only be reversed); the shape rule derives the shape from these fields, as
 *              the verifier and CSE need.
 * unslice:     the same start/step/axis as the slice it reverses; count = the length of the
 *              original (output) axis. Output: zeros with the operand at the slice positions.
 * pad:         list = before, step = after, scalar[0] = value.
 * concat:      axis.
 * take:        axis.  scatter_add: axis, count = the output's length on axis.
 * one_hot:     count = depth, dtype. */

/* Visits the elements of a shape in row-major order, keeping the offset of each in a strided
 * view of another array: base + sum_k idx[k] * stride[k]. */
typedef struct view_iter {
    int ndim;
    int64_t dim[JG_MAX_DIMS], idx[JG_MAX_DIMS], stride[JG_MAX_DIMS];
    int64_t off;
} view_iter;

static void view_init(view_iter *it, jg_shape s, int64_t base, const int64_t *stride)
{
    memset(it, 0, sizeof *it);
    it->ndim = s.ndim;
    memcpy(it->dim, s.dim, sizeof it->dim);
    memcpy(it->stride, stride, (size_t)s.ndim * sizeof *stride);
    it->off = base;
}

static void view_next(view_iter *it)
{
    for (int k = it->ndim - 1; k >= 0; k--) {
        it->off += it->stride[k];
        if (++it->idx[k] < it->dim[k])
            return;
        it->off -= it->stride[k] * it->dim[k];
        it->idx[k] = 0;
    }
}

static bool usable(const jg_node *x) { return x && !node_poisoned(x); }

/* Prints a slice bound as given, open bounds (INT64_MIN / INT64_MAX) as nothing. */
static const char *bound_str(int64_t v, char *buf, size_t size)
{
    if (v == INT64_MIN || v == INT64_MAX)
        buf[0] = '\0';
    else
        snprintf(buf, size, "%lld", (long long)v);
    return buf;
}

/* ---- slice and unslice */

/* The view of `part` (the slice's shape) inside `full`: checks that every position
 * start[k] + i * step[k], i < part[k], lies in [0, full[k]). */
static jg_status check_view(jg_shape full, jg_shape part, const op_attr *a, char *why)
{
    char f[96];
    for (int k = 0; k < full.ndim; k++) {
        int64_t start = a->list[k], step = a->step[k], last_ok;
        if (step == 0 || start < 0 || start >= full.dim[k]) {
            snprintf(why, OP_ERR_SIZE, "axis %d of %s: start %lld, step %lld out of range", k,
                     FMT_SHAPE(f, full), (long long)start, (long long)step);
            return JG_ERR_ARG;
        }
        /* how many steps fit after start, computed without overflow */
        if (step > 0)
            last_ok = (full.dim[k] - 1 - start) / step;
        else
            last_ok = step == INT64_MIN ? 0 : start / -step;
        if (part.dim[k] - 1 > last_ok) {
            snprintf(why, OP_ERR_SIZE, "axis %d of %s: %lld elements from %lld by %lld do not fit",
                     k, FMT_SHAPE(f, full), (long long)part.dim[k], (long long)start,
                     (long long)step);
            return JG_ERR_ARG;
        }
    }
    return JG_OK;
}

/* The shape with dimension `axis` replaced by attr->count, after checking both. */
static jg_status axis_resized(jg_shape s, const op_attr *attr, jg_shape *out, char *why)
{
    char a[96];
    if (attr->axis < 0 || attr->axis >= s.ndim) {
        snprintf(why, OP_ERR_SIZE, "axis %d out of range for %s", attr->axis, FMT_SHAPE(a, s));
        return JG_ERR_ARG;
    }
    if (attr->count < 1 || attr->count > ((int64_t)1 << 40)) {
        snprintf(why, OP_ERR_SIZE, "length %lld on axis %d is not >= 1", (long long)attr->count,
                 attr->axis);
        return JG_ERR_SHAPE;
    }
    *out = s;
    out->dim[attr->axis] = attr->count;
    return shape_valid(*out) ? JG_OK : JG_ERR_SHAPE;
}

static jg_status infer_slice(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                             jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_status st = axis_resized(in[0]->shape, attr, shape, why);
    if (st == JG_OK)
        st = check_view(in[0]->shape, *shape, attr, why);
    *dtype = in[0]->dtype;
    return st;
}

static jg_status infer_unslice(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                               jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_status st = axis_resized(in[0]->shape, attr, shape, why);
    if (st == JG_OK)
        st = check_view(*shape, in[0]->shape, attr, why);
    *dtype = in[0]->dtype;
    return st;
}

/* The slice positions (of shape part) in full as a strided view: base offset and per-axis
 * strides. An axis of length 1 never advances, so its step (maybe huge) is not multiplied. */
static int64_t view_of(jg_shape full, jg_shape part, const op_attr *a,
                       int64_t stride[JG_MAX_DIMS])
{
    int64_t own[JG_MAX_DIMS], base = 0;
    shape_strides(full, own);
    for (int k = 0; k < full.ndim; k++) {
        base += a->list[k] * own[k];
        stride[k] = part.dim[k] > 1 ? a->step[k] * own[k] : 0;
    }
    return base;
}

static jg_status slice_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    int64_t stride[JG_MAX_DIMS], numel = jg_shape_numel(n->shape);
    view_iter it;
    view_init(&it, n->shape, view_of(n->in[0]->shape, n->shape, &n->attr, stride), stride);
    for (int64_t i = 0; i < numel; i++, view_next(&it))
        out[i] = in[0][it.off];
    return JG_OK;
}

static jg_status unslice_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    jg_shape part = n->in[0]->shape;
    int64_t stride[JG_MAX_DIMS], numel = jg_shape_numel(part);
    memset(out, 0, (size_t)jg_shape_numel(n->shape) * sizeof *out);
    view_iter it;
    view_init(&it, part, view_of(n->shape, part, &n->attr, stride), stride);
    for (int64_t i = 0; i < numel; i++, view_next(&it))
        out[it.off] = in[0][i];
    return JG_OK;
}

/* The attributes of x[start : start + count * step : step] on one axis, others whole. */
static op_attr slice_attr(int axis, int64_t start, int64_t step, int64_t count)
{
    op_attr a = { .axis = axis, .count = count };
    for (int k = 0; k < JG_MAX_DIMS; k++)
        a.step[k] = 1;
    a.list[axis] = start;
    a.step[axis] = step;
    return a;
}

/* A slice or unslice node with full attributes (the gradient rules' builder). */
static jg_node *build_view(jg_op op, jg_node *x, op_attr a)
{
    return op_build(JG_HERE, op, &x, 1, &a);
}

static void slice_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    op_attr a = n->attr;
    a.count = n->in[0]->shape.dim[a.axis];
    dx[0] = build_view(JG_OP_UNSLICE, dy, a);
}

static void unslice_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    op_attr a = n->attr;
    a.count = n->in[0]->shape.dim[a.axis];
    dx[0] = build_view(JG_OP_SLICE, dy, a);
}

const op_def op_slice = { .arity = 1, .kind = KIND_INJECTIVE,
                          .infer = infer_slice, .grad = slice_grad, .eval = slice_eval };
const op_def op_unslice = { .arity = 1, .kind = KIND_OPAQUE,
                            .infer = infer_unslice, .grad = unslice_grad, .eval = unslice_eval };

/* Python's slice.indices(): clamps start and stop into the axis and counts the elements.
 * The bounds stay within [-1, dim], so nothing overflows, whatever the caller passed. */
static int64_t slice_length(int64_t dim, int64_t *start, int64_t stop, int64_t step)
{
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? dim : dim - 1;
    int64_t b[2] = { *start, stop };
    for (int i = 0; i < 2; i++) {
        if (b[i] < 0)
            b[i] = b[i] < -dim ? lo : b[i] + dim;
        else if (b[i] >= dim)
            b[i] = hi;
    }
    *start = b[0];
    int64_t span = step > 0 ? b[1] - b[0] : b[0] - b[1];
    if (span <= 0)
        return 0;
    uint64_t mag = step > 0 ? (uint64_t)step : (uint64_t)(-(step + 1)) + 1;
    return 1 + (int64_t)((uint64_t)(span - 1) / mag);
}

jg_node *jg_slice_(jg_loc at, jg_node *x, int axis, int64_t start, int64_t stop, int64_t step)
{
    if (!usable(x))
        return op_build(at, JG_OP_SLICE, &x, 1, NULL);
    char s[96], b0[24], b1[24];
    int ax;
    if (!axis_normalise(axis, x->shape.ndim, &ax)) {
        graph_error(x->graph, at, JG_ERR_ARG, "jg_slice: axis %d out of range for %s", axis,
                    FMT_SHAPE(s, x->shape));
        return x->graph->poison;
    }
    if (step == 0) {
        graph_error(x->graph, at, JG_ERR_ARG, "jg_slice: step is 0");
        return x->graph->poison;
    }
    int64_t first = start, dim = x->shape.dim[ax];
    int64_t count = slice_length(dim, &first, stop, step);
    if (count == 0) {
        graph_error(x->graph, at, JG_ERR_SHAPE, "jg_slice: slice of axis %d [%s:%s:%lld] is empty "
                    "(operand %s)", ax, bound_str(start, b0, sizeof b0),
                    bound_str(stop, b1, sizeof b1), (long long)step, FMT_SHAPE(s, x->shape));
        return x->graph->poison;
    }
    if (count == dim && step == 1)
        return x; /* the whole axis */
    op_attr a = slice_attr(ax, first, step, count);
    return op_build(at, JG_OP_SLICE, &x, 1, &a);
}

/* ---- pad */

static jg_status infer_pad(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                           jg_dtype *dtype, char *why)
{
    (void)n_in;
    char s[96];
    jg_shape xs = in[0]->shape;
    *shape = xs;
    for (int k = 0; k < xs.ndim; k++) {
        if (attr->list[k] < 0 || attr->step[k] < 0 || attr->list[k] > ((int64_t)1 << 40) ||
            attr->step[k] > ((int64_t)1 << 40)) {
            snprintf(why, OP_ERR_SIZE, "padding of axis %d is %lld before, %lld after: must be "
                     ">= 0", k, (long long)attr->list[k], (long long)attr->step[k]);
            return JG_ERR_ARG;
        }
        shape->dim[k] += attr->list[k] + attr->step[k];
    }
    if (!shape_valid(*shape)) {
        snprintf(why, OP_ERR_SIZE, "padded shape %s is too large", FMT_SHAPE(s, *shape));
        return JG_ERR_SHAPE;
    }
    *dtype = in[0]->dtype;
    return JG_OK;
}

static jg_status pad_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    int64_t numel = jg_shape_numel(n->shape), stride[JG_MAX_DIMS], base = 0;
    for (int64_t i = 0; i < numel; i++)
        out[i] = n->attr.scalar[0];
    shape_strides(n->shape, stride);
    for (int k = 0; k < n->shape.ndim; k++)
        base += n->attr.list[k] * stride[k];
    jg_shape xs = n->in[0]->shape;
    int64_t xnumel = jg_shape_numel(xs);
    view_iter it;
    view_init(&it, xs, base, stride);
    for (int64_t i = 0; i < xnumel; i++, view_next(&it))
        out[it.off] = in[0][i];
    return JG_OK;
}

/* The operand's window of dy, one slice per padded axis. */
static void pad_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *g = dy;
    for (int k = 0; k < n->shape.ndim; k++)
        if (n->attr.list[k] || n->attr.step[k])
            g = build_view(JG_OP_SLICE, g, slice_attr(k, n->attr.list[k], 1, n->in[0]->shape.dim[k]));
    dx[0] = g;
}

const op_def op_pad = { .arity = 1, .kind = KIND_OPAQUE, .infer = infer_pad,
                        .grad = pad_grad, .eval = pad_eval };

jg_node *jg_pad_(jg_loc at, jg_node *x, jg_shape before, jg_shape after, double value)
{
    if (!usable(x))
        return op_build(at, JG_OP_PAD, &x, 1, NULL);
    char s[96];
    int nd = x->shape.ndim;
    if (before.ndim != nd || after.ndim != nd) {
        graph_error(x->graph, at, JG_ERR_ARG,
                    "jg_pad: before and after need %d entries (operand %s), got %d and %d", nd,
                    FMT_SHAPE(s, x->shape), before.ndim, after.ndim);
        return x->graph->poison;
    }
    op_attr a = { .scalar = { value } };
    bool none = true;
    for (int k = 0; k < nd; k++) {
        a.list[k] = before.dim[k];
        a.step[k] = after.dim[k];
        none &= before.dim[k] == 0 && after.dim[k] == 0;
    }
    if (none)
        return x;
    return op_build(at, JG_OP_PAD, &x, 1, &a);
}

/* ---- concat */

static jg_status infer_concat(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                              jg_dtype *dtype, char *why)
{
    char a[96], b[96];
    jg_shape s0 = in[0]->shape;
    if (!axis_normalise(attr->axis, s0.ndim, &attr->axis)) {
        snprintf(why, OP_ERR_SIZE, "axis %d out of range for %s", attr->axis, FMT_SHAPE(a, s0));
        return JG_ERR_ARG;
    }
    *shape = s0;
    for (int i = 1; i < n_in; i++) {
        jg_shape si = in[i]->shape;
        if (in[i]->dtype != in[0]->dtype) {
            snprintf(why, OP_ERR_SIZE, "dtypes differ: operand 0 is %s, operand %d is %s",
                     jg_dtype_str(in[0]->dtype), i, jg_dtype_str(in[i]->dtype));
            return JG_ERR_DTYPE;
        }
        bool fits = si.ndim == s0.ndim;
        for (int k = 0; fits && k < s0.ndim; k++)
            fits = k == attr->axis || si.dim[k] == s0.dim[k];
        if (!fits) {
            snprintf(why, OP_ERR_SIZE, "operand %d is %s, operand 0 is %s: only axis %d may "
                     "differ", i, FMT_SHAPE(a, si), FMT_SHAPE(b, s0), attr->axis);
            return JG_ERR_SHAPE;
        }
        shape->dim[attr->axis] += si.dim[attr->axis];
    }
    if (!shape_valid(*shape)) {
        snprintf(why, OP_ERR_SIZE, "result %s is too large", FMT_SHAPE(a, *shape));
        return JG_ERR_SHAPE;
    }
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* Rows of `inner` contiguous elements: out row o holds operand 0's block, operand 1's, ... */
static jg_status concat_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    int ax = n->attr.axis;
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < ax; k++)
        outer *= n->shape.dim[k];
    for (int k = ax + 1; k < n->shape.ndim; k++)
        inner *= n->shape.dim[k];
    for (int64_t o = 0; o < outer; o++)
        for (int i = 0; i < n->n_in; i++) {
            int64_t block = n->in[i]->shape.dim[ax] * inner;
            memcpy(out, in[i] + o * block, (size_t)block * sizeof *out);
            out += block;
        }
    return JG_OK;
}

static void concat_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    int64_t offset = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t len = n->in[i]->shape.dim[n->attr.axis];
        dx[i] = len == n->shape.dim[n->attr.axis]
                    ? dy
                    : build_view(JG_OP_SLICE, dy, slice_attr(n->attr.axis, offset, 1, len));
        offset += len;
    }
}

const op_def op_concat = { .arity = -1, .kind = KIND_OPAQUE,
                           .infer = infer_concat, .grad = concat_grad, .eval = concat_eval };

jg_node *jg_concat_(jg_loc at, jg_node *const *xs, int n, int axis)
{
    if (!xs || n < 1) /* no operand, so no graph to record on: the orphan poison */
        return op_build(at, JG_OP_CONCAT, NULL, 0, NULL);
    return op_build(at, JG_OP_CONCAT, xs, n, &(op_attr){ .axis = axis });
}

/* ---- take and scatter_add */

/* Sizes around `axis` of x: out = [outer] + idx + [inner], x = [outer, dim, inner]. */
static void split_at(jg_shape s, int axis, int span, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int k = 0; k < axis; k++)
        *outer *= s.dim[k];
    for (int k = axis + span; k < s.ndim; k++)
        *inner *= s.dim[k];
}

static jg_status need_i32(const jg_node *idx, char *why)
{
    if (idx->dtype == JG_I32)
        return JG_OK;
    snprintf(why, OP_ERR_SIZE, "indices must be i32, got %s", jg_dtype_str(idx->dtype));
    return JG_ERR_DTYPE;
}

/* x.shape[:axis] + mid + x.shape[axis+skip:] */
static jg_status splice_shape(jg_shape x, int axis, int skip, jg_shape mid, jg_shape *out,
                              char *why)
{
    char a[96], b[96];
    int nd = x.ndim - skip + mid.ndim;
    if (nd > JG_MAX_DIMS) {
        snprintf(why, OP_ERR_SIZE, "result of %s with indices %s has %d dimensions (at most %d)",
                 FMT_SHAPE(a, x), FMT_SHAPE(b, mid), nd, JG_MAX_DIMS);
        return JG_ERR_SHAPE;
    }
    jg_shape r = { .ndim = nd };
    int j = 0;
    for (int k = 0; k < axis; k++)
        r.dim[j++] = x.dim[k];
    for (int k = 0; k < mid.ndim; k++)
        r.dim[j++] = mid.dim[k];
    for (int k = axis + skip; k < x.ndim; k++)
        r.dim[j++] = x.dim[k];
    *out = r;
    return JG_OK;
}

static jg_status infer_take(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                            jg_dtype *dtype, char *why)
{
    (void)n_in;
    char a[96];
    jg_status st = need_i32(in[1], why);
    if (st != JG_OK)
        return st;
    if (!axis_normalise(attr->axis, in[0]->shape.ndim, &attr->axis)) {
        snprintf(why, OP_ERR_SIZE, "axis %d out of range for %s", attr->axis,
                 FMT_SHAPE(a, in[0]->shape));
        return JG_ERR_ARG;
    }
    *dtype = in[0]->dtype;
    return splice_shape(in[0]->shape, attr->axis, 1, in[1]->shape, shape, why);
}

static jg_status infer_scatter_add(jg_node *const *in, int n_in, op_attr *attr,
                                   jg_shape *shape, jg_dtype *dtype, char *why)
{
    (void)n_in;
    char a[96], b[96];
    jg_status st = need_i32(in[1], why);
    if (st != JG_OK)
        return st;
    jg_shape ys = in[0]->shape, is = in[1]->shape;
    bool fits = attr->axis >= 0 && attr->axis + is.ndim <= ys.ndim;
    for (int k = 0; fits && k < is.ndim; k++)
        fits = ys.dim[attr->axis + k] == is.dim[k];
    if (!fits || attr->count < 1 || attr->count > ((int64_t)1 << 40)) {
        snprintf(why, OP_ERR_SIZE, "gradient %s does not hold indices %s at axis %d, or length "
                 "%lld < 1", FMT_SHAPE(a, ys), FMT_SHAPE(b, is), attr->axis,
                 (long long)attr->count);
        return JG_ERR_SHAPE;
    }
    *dtype = in[0]->dtype;
    return splice_shape(ys, attr->axis, is.ndim, (jg_shape){ .ndim = 1, .dim = { attr->count } },
                        shape, why);
}

/* Every index in [0, dim), else JG_ERR_RANGE naming the first bad one. */
static jg_status check_indices(const double *idx, int64_t n, int64_t dim, int axis, char *err)
{
    for (int64_t i = 0; i < n; i++)
        if (!(idx[i] >= 0 && idx[i] < (double)dim)) {
            snprintf(err, OP_ERR_SIZE, "index %.0f out of range [0, %lld) on axis %d", idx[i],
                     (long long)dim, axis);
            return JG_ERR_RANGE;
        }
    return JG_OK;
}

static jg_status take_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    int ax = n->attr.axis;
    int64_t dim = n->in[0]->shape.dim[ax], nidx = jg_shape_numel(n->in[1]->shape), outer, inner;
    jg_status st = check_indices(in[1], nidx, dim, ax, err);
    if (st != JG_OK)
        return st;
    split_at(n->in[0]->shape, ax, 1, &outer, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nidx; j++) {
            const double *src = in[0] + (o * dim + (int64_t)in[1][j]) * inner;
            memcpy(out, src, (size_t)inner * sizeof *out);
            out += inner;
        }
    return JG_OK;
}

static jg_status scatter_add_eval(const jg_node *n, const double *const *in, double *out,
                                  char *err)
{
    int ax = n->attr.axis;
    int64_t dim = n->attr.count, nidx = jg_shape_numel(n->in[1]->shape), outer, inner;
    jg_status st = check_indices(in[1], nidx, dim, ax, err);
    if (st != JG_OK)
        return st;
    memset(out, 0, (size_t)jg_shape_numel(n->shape) * sizeof *out);
    split_at(n->shape, ax, 1, &outer, &inner);
    const double *src = in[0];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < nidx; j++) {
            double *dst = out + (o * dim + (int64_t)in[1][j]) * inner;
            for (int64_t i = 0; i < inner; i++)
                dst[i] += src[i];
            src += inner;
        }
    return JG_OK;
}

static jg_node *scatter_add(jg_node *g, jg_node *idx, int axis, int64_t dim)
{
    jg_node *in[2] = { g, idx };
    return op_build(JG_HERE, JG_OP_SCATTER_ADD, in, 2,
                    &(op_attr){ .axis = axis, .count = dim });
}

static void take_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = scatter_add(dy, n->in[1], n->attr.axis, n->in[0]->shape.dim[n->attr.axis]);
}

static void scatter_add_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_take(dy, n->in[1], n->attr.axis);
}

const op_def op_take = { .arity = 2, .kind = KIND_OPAQUE,
                         .infer = infer_take, .grad = take_grad, .eval = take_eval };
const op_def op_scatter_add = { .arity = 2, .kind = KIND_OPAQUE,
                                .infer = infer_scatter_add, .grad = scatter_add_grad,
                                .eval = scatter_add_eval };

jg_node *jg_take_(jg_loc at, jg_node *x, jg_node *idx, int axis)
{
    jg_node *in[2] = { x, idx };
    return op_build(at, JG_OP_TAKE, in, 2, &(op_attr){ .axis = axis });
}

/* ---- one_hot */

static jg_status infer_one_hot(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                               jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_status st = need_i32(in[0], why);
    if (st != JG_OK)
        return st;
    if (attr->count < 1) {
        snprintf(why, OP_ERR_SIZE, "depth %lld is not >= 1", (long long)attr->count);
        return JG_ERR_ARG;
    }
    if ((unsigned)attr->dtype > JG_I32) {
        snprintf(why, OP_ERR_SIZE, "unknown dtype %d", (int)attr->dtype);
        return JG_ERR_DTYPE;
    }
    *dtype = attr->dtype;
    jg_shape s = in[0]->shape;
    return splice_shape(s, s.ndim, 0, (jg_shape){ .ndim = 1, .dim = { attr->count } }, shape,
                        why);
}

static jg_status one_hot_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    int64_t depth = n->attr.count, nidx = jg_shape_numel(n->in[0]->shape);
    jg_status st = check_indices(in[0], nidx, depth, n->shape.ndim - 1, err);
    if (st != JG_OK)
        return st;
    memset(out, 0, (size_t)(nidx * depth) * sizeof *out);
    for (int64_t i = 0; i < nidx; i++)
        out[i * depth + (int64_t)in[0][i]] = 1;
    return JG_OK;
}

const op_def op_one_hot = { .arity = 1, .kind = KIND_OPAQUE,
                            .infer = infer_one_hot, .no_grad = true, .eval = one_hot_eval };

jg_node *jg_one_hot_(jg_loc at, jg_node *idx, int depth, jg_dtype t)
{
    return op_build(at, JG_OP_ONE_HOT, &idx, 1, &(op_attr){ .count = depth, .dtype = t });
}
