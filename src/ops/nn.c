/* Neural-network ops: softmax and log_softmax along one axis, and the losses (cross entropy
 * against integer labels, binary cross entropy with logits, mean squared error). Reference
 * kernels are numerically stable (the maximum is subtracted before exp); gradient rules are
 * built from public ops, so they are differentiable again. Losses are means (scalars). */
#include "ops/op.h"

/* ---- softmax, log_softmax */

static jg_status infer_axis_float(jg_node *const *in, int n_in, op_attr *attr,
                                  jg_shape *shape, jg_dtype *dtype, char *why)
{
    jg_status st = infer_same_float(in, n_in, attr, shape, dtype, why);
    if (st != JG_OK)
        return st;
    if (!axis_normalise(attr->axis, in[0]->shape.ndim, &attr->axis)) {
        char s[96];
        snprintf(why, OP_ERR_SIZE, "axis %d out of range for %s", attr->axis,
                 FMT_SHAPE(s, in[0]->shape));
        return JG_ERR_ARG;
    }
    return JG_OK;
}

/* Walks every line along attr.axis: `outer` blocks of len * inner values, lines inner apart. */
static void softmax_lines(const jg_node *n, const double *x, double *out, bool log_out)
{
    jg_shape s = n->shape;
    int ax = n->attr.axis;
    int64_t len = s.dim[ax], outer = 1, inner = 1;
    for (int i = 0; i < ax; i++)
        outer *= s.dim[i];
    for (int i = ax + 1; i < s.ndim; i++)
        inner *= s.dim[i];
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *xl = x + o * len * inner + i;
            double *yl = out + o * len * inner + i;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < len; j++)
                mx = fmax(mx, xl[j * inner]);
            for (int64_t j = 0; j < len; j++)
                sum += exp(xl[j * inner] - mx);
            double lse = log(sum);
            for (int64_t j = 0; j < len; j++)
                yl[j * inner] = log_out ? xl[j * inner] - mx - lse
                                        : exp(xl[j * inner] - mx) / sum;
        }
}

static jg_status softmax_eval(const jg_node *n, const double *const *in, double *out,
                              char *err)
{
    (void)err;
    softmax_lines(n, in[0], out, false);
    return JG_OK;
}

static jg_status log_softmax_eval(const jg_node *n, const double *const *in, double *out,
                                  char *err)
{
    (void)err;
    softmax_lines(n, in[0], out, true);
    return JG_OK;
}

/* dx = y * (dy - sum(dy * y)) along the axis */
static void softmax_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *dot = jg_sum(jg_mul(dy, n), jg_axes(n->attr.axis), true);
    dx[0] = jg_mul(n, jg_sub(dy, dot));
}

/* dx = dy - softmax(x) * sum(dy) along the axis, with softmax(x) = exp(y) */
static void log_softmax_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *total = jg_sum(dy, jg_axes(n->attr.axis), true);
    dx[0] = jg_sub(dy, jg_mul(jg_exp(n), total));
}

/* For the compiler: x - max(x) keeps exp in range, as in the reference kernels. */
static jg_node *shifted(const jg_node *n, jg_node *x)
{
    return jg_sub(x, jg_max(x, jg_axes(n->attr.axis), true));
}

static jg_node *softmax_decompose(const jg_node *n, jg_node *const *in)
{
    jg_node *e = jg_exp(shifted(n, in[0]));
    return jg_div(e, jg_sum(e, jg_axes(n->attr.axis), true));
}

static jg_node *log_softmax_decompose(const jg_node *n, jg_node *const *in)
{
    jg_node *s = shifted(n, in[0]);
    return jg_sub(s, jg_log(jg_sum(jg_exp(s), jg_axes(n->attr.axis), true)));
}

const op_def op_softmax = { .arity = 1, .kind = KIND_OPAQUE,
                            .infer = infer_axis_float, .grad = softmax_grad,
                            .eval = softmax_eval, .decompose = softmax_decompose };
const op_def op_log_softmax = { .arity = 1, .kind = KIND_OPAQUE,
                                .infer = infer_axis_float, .grad = log_softmax_grad,
                                .eval = log_softmax_eval, .decompose = log_softmax_decompose };

/* ---- cross entropy */

static jg_status cross_entropy_infer(jg_node *const *in, int n_in, op_attr *attr,
                                     jg_shape *shape, jg_dtype *dtype, char *why)
{
    (void)n_in, (void)attr;
    jg_shape ls = in[0]->shape, ys = in[1]->shape;
    char a[96], b[96];
    if (in[0]->dtype == JG_I32) {
        snprintf(why, OP_ERR_SIZE, "logits must be float, got i32 (use jg_cast)");
        return JG_ERR_DTYPE;
    }
    if (in[1]->dtype != JG_I32) {
        snprintf(why, OP_ERR_SIZE, "labels must be i32 class indices, got %s",
                 jg_dtype_str(in[1]->dtype));
        return JG_ERR_DTYPE;
    }
    if (ls.ndim != 2) {
        snprintf(why, OP_ERR_SIZE, "logits must be 2-D [n, c], got %s", FMT_SHAPE(a, ls));
        return JG_ERR_SHAPE;
    }
    if (ys.ndim != 1 || ys.dim[0] != ls.dim[0]) {
        snprintf(why, OP_ERR_SIZE, "labels must have shape [%lld] to match logits %s, got %s",
                 (long long)ls.dim[0], FMT_SHAPE(a, ls), FMT_SHAPE(b, ys));
        return JG_ERR_SHAPE;
    }
    if (ls.dim[1] > INT32_MAX) { /* the gradient's one_hot takes an int depth */
        snprintf(why, OP_ERR_SIZE, "too many classes: %lld", (long long)ls.dim[1]);
        return JG_ERR_SHAPE;
    }
    *shape = JG_SCALAR;
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* mean over rows of logsumexp(row) - row[label], the maximum subtracted first */
static jg_status cross_entropy_eval(const jg_node *n, const double *const *in, double *out,
                                    char *err)
{
    int64_t rows = n->in[0]->shape.dim[0], c = n->in[0]->shape.dim[1];
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *x = in[0] + r * c;
        double label = in[1][r];
        if (!(label >= 0 && label < (double)c)) {
            snprintf(err, OP_ERR_SIZE, "label %.0f out of range [0, %lld) at row %lld", label,
                     (long long)c, (long long)r);
            return JG_ERR_RANGE;
        }
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < c; j++)
            mx = fmax(mx, x[j]);
        for (int64_t j = 0; j < c; j++)
            sum += exp(x[j] - mx);
        total += mx + log(sum) - x[(int64_t)label];
    }
    out[0] = total / (double)rows;
    return JG_OK;
}

/* d/dlogits = (softmax(logits) - one_hot(labels)) * dy / n; labels get none. */
static void cross_entropy_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *logits = n->in[0], *labels = n->in[1];
    int64_t rows = logits->shape.dim[0], c = logits->shape.dim[1];
    jg_node *p = jg_sub(jg_softmax(logits, 1), jg_one_hot(labels, (int)c, logits->dtype));
    dx[0] = jg_scale(jg_mul(p, dy), 1.0 / (double)rows);
}

const op_def op_cross_entropy = { .arity = 2, .kind = KIND_OPAQUE,
                                  .infer = cross_entropy_infer, .grad = cross_entropy_grad,
                                  .eval = cross_entropy_eval };

/* ---- elementwise losses: bce_with_logits, mse_loss */

/* Two float operands of equal shape and dtype; the result is their (scalar) mean loss. */
static jg_status infer_pair_loss(jg_node *const *in, int n_in, op_attr *attr,
                                 jg_shape *shape, jg_dtype *dtype, char *why)
{
    (void)n_in, (void)attr;
    char a[96], b[96];
    if (in[0]->dtype != in[1]->dtype) {
        snprintf(why, OP_ERR_SIZE, "dtypes differ: %s and %s", jg_dtype_str(in[0]->dtype),
                 jg_dtype_str(in[1]->dtype));
        return JG_ERR_DTYPE;
    }
    if (in[0]->dtype == JG_I32) {
        snprintf(why, OP_ERR_SIZE, "needs float operands, got i32 (use jg_cast)");
        return JG_ERR_DTYPE;
    }
    if (!shape_eq(in[0]->shape, in[1]->shape)) {
        snprintf(why, OP_ERR_SIZE, "shapes differ: %s and %s", FMT_SHAPE(a, in[0]->shape),
                 FMT_SHAPE(b, in[1]->shape));
        return JG_ERR_SHAPE;
    }
    *shape = JG_SCALAR;
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* max(x, 0) - x t + log1p(exp(-|x|)) = -(t log s(x) + (1 - t) log(1 - s(x))) without
 * overflow for large |x| */
static jg_status bce_with_logits_eval(const jg_node *n, const double *const *in, double *out,
                                      char *err)
{
    (void)err;
    int64_t numel = jg_shape_numel(n->in[0]->shape);
    double total = 0;
    for (int64_t i = 0; i < numel; i++) {
        double x = in[0][i], t = in[1][i];
        total += fmax(x, 0) - x * t + log1p(exp(-fabs(x)));
    }
    out[0] = total / (double)numel;
    return JG_OK;
}

static void bce_with_logits_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *x = n->in[0], *t = n->in[1];
    double inv_n = 1.0 / (double)jg_shape_numel(x->shape);
    dx[0] = jg_scale(jg_mul(jg_sub(jg_sigmoid(x), t), dy), inv_n);
    dx[1] = jg_scale(jg_mul(x, dy), -inv_n);
}

static jg_status mse_loss_eval(const jg_node *n, const double *const *in, double *out,
                               char *err)
{
    (void)err;
    int64_t numel = jg_shape_numel(n->in[0]->shape);
    double total = 0;
    for (int64_t i = 0; i < numel; i++) {
        double d = in[0][i] - in[1][i];
        total += d * d;
    }
    out[0] = total / (double)numel;
    return JG_OK;
}

static void mse_loss_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *a = n->in[0], *b = n->in[1];
    double two_n = 2.0 / (double)jg_shape_numel(a->shape);
    dx[0] = jg_scale(jg_mul(jg_sub(a, b), dy), two_n);
    dx[1] = jg_neg(dx[0]);
}

/* Decompositions build primitives only: the mean is a sum and a scale. */
static jg_node *mean_of_all(jg_node *x)
{
    return jg_scale(jg_sum(x, JG_ALL_AXES, false), 1.0 / (double)jg_shape_numel(x->shape));
}

/* mean(max(x, 0) - x t + log1p(exp(-|x|))), the reference kernel's stable form */
static jg_node *bce_with_logits_decompose(const jg_node *n, jg_node *const *in)
{
    (void)n;
    jg_node *x = in[0], *t = in[1];
    jg_node *each = jg_add(jg_sub(jg_relu(x), jg_mul(x, t)), jg_softplus(jg_neg(jg_abs(x))));
    return mean_of_all(each);
}

static jg_node *mse_loss_decompose(const jg_node *n, jg_node *const *in)
{
    (void)n;
    return mean_of_all(jg_square(jg_sub(in[0], in[1])));
}

const op_def op_bce_with_logits = { .arity = 2,
                                    .kind = KIND_OPAQUE, .infer = infer_pair_loss,
                                    .grad = bce_with_logits_grad,
                                    .eval = bce_with_logits_eval,
                                    .decompose = bce_with_logits_decompose };
const op_def op_mse_loss = { .arity = 2, .kind = KIND_OPAQUE,
                             .infer = infer_pair_loss, .grad = mse_loss_grad,
                             .eval = mse_loss_eval, .decompose = mse_loss_decompose };

/* ---- builders */

jg_node *jg_softmax_(jg_loc at, jg_node *x, int axis)
{
    return op_build(at, JG_OP_SOFTMAX, &x, 1, &(op_attr){ .axis = axis });
}

jg_node *jg_log_softmax_(jg_loc at, jg_node *x, int axis)
{
    return op_build(at, JG_OP_LOG_SOFTMAX, &x, 1, &(op_attr){ .axis = axis });
}

static jg_node *pair(jg_loc at, jg_op op, jg_node *a, jg_node *b)
{
    jg_node *in[2] = { a, b };
    return op_build(at, op, in, 2, NULL);
}

jg_node *jg_cross_entropy_(jg_loc at, jg_node *logits, jg_node *labels)
{
    return pair(at, JG_OP_CROSS_ENTROPY, logits, labels);
}

jg_node *jg_bce_with_logits_(jg_loc at, jg_node *logits, jg_node *targets)
{
    return pair(at, JG_OP_BCE_WITH_LOGITS, logits, targets);
}

jg_node *jg_mse_loss_(jg_loc at, jg_node *a, jg_node *b)
{
    return pair(at, JG_OP_MSE_LOSS, a, b);
}
