/* Elementwise ops of one operand. Each op's row: reference kernel (an expression of the input
 * v and the attributes a0, a1), gradient rule, kinks. NOTE the derivatives at kinks are
 * one-sided by choice: relu'(0) = 0, abs'(0) = 0, clamp' = 1 at the bounds. */
#include "ops/op.h"

/* A reference kernel from an expression of v = x[i] and the node's scalars a0, a1. */
#define UNARY_EVAL(name, expr)                                                              \
    static jg_status name##_eval(const jg_node *n, const double *const *in, double *out,    \
                                 char *err)                                                 \
    {                                                                                       \
        (void)err;                                                                          \
        const double a0 = n->attr.scalar[0], a1 = n->attr.scalar[1];                       \
        (void)a0, (void)a1;                                                                 \
        int64_t numel = jg_shape_numel(n->shape);                                           \
        for (int64_t i = 0; i < numel; i++) {                                               \
            double v = in[0][i];                                                            \
            out[i] = (expr);                                                                \
        }                                                                                   \
        return JG_OK;                                                                       \
    }

/* Distance of the operand from the kink points p0 (and p1). */
static double kink_dist(const jg_node *n, const double *x, double p0, double p1)
{
    double d = INFINITY;
    int64_t numel = jg_shape_numel(n->shape);
    for (int64_t i = 0; i < numel; i++) {
        d = fmin(d, fabs(x[i] - p0));
        d = fmin(d, fabs(x[i] - p1));
    }
    return d;
}

static double kink_at_zero(const jg_node *n, const double *const *in, const double *out)
{
    (void)out;
    return kink_dist(n, in[0], 0, 0);
}

static double kink_at_bounds(const jg_node *n, const double *const *in, const double *out)
{
    (void)out;
    return kink_dist(n, in[0], n->attr.scalar[0], n->attr.scalar[1]);
}

/* 1 where x > 0 else 0, in x's dtype. */
static jg_node *positive(jg_node *x) { return jg_gt(x, jg_scalar_like(x, 0)); }

UNARY_EVAL(neg, -v)
static void neg_grad(jg_node *n, jg_node *dy, jg_node **dx) { (void)n; dx[0] = jg_neg(dy); }

UNARY_EVAL(abs, fabs(v))
static void abs_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *x = n->in[0];
    jg_node *sign = jg_sub(positive(x), jg_lt(x, jg_scalar_like(x, 0)));
    dx[0] = jg_mul(dy, sign);
}

UNARY_EVAL(exp, exp(v))
static void exp_grad(jg_node *n, jg_node *dy, jg_node **dx) { dx[0] = jg_mul(dy, n); }

UNARY_EVAL(log, log(v))
static void log_grad(jg_node *n, jg_node *dy, jg_node **dx) { dx[0] = jg_div(dy, n->in[0]); }

UNARY_EVAL(sqrt, sqrt(v))
static void sqrt_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_div(jg_scale(dy, 0.5), n);
}

UNARY_EVAL(rsqrt, 1.0 / sqrt(v))
static void rsqrt_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    /* d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y / x */
    dx[0] = jg_mul(dy, jg_scale(jg_div(n, n->in[0]), -0.5));
}

UNARY_EVAL(square, v * v)
static void square_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_mul(dy, jg_scale(n->in[0], 2.0));
}

UNARY_EVAL(tanh, tanh(v))
static void tanh_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_mul(dy, jg_shift(jg_neg(jg_square(n)), 1.0));
}

/* Stable in both tails: exp of a non-positive number only. */
UNARY_EVAL(sigmoid, v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v)))
static void sigmoid_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_mul(dy, jg_mul(n, jg_shift(jg_neg(n), 1.0)));
}

UNARY_EVAL(relu, v > 0 ? v : 0)
static void relu_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_mul(dy, positive(n->in[0]));
}

/* log(1 + e^v) = max(v, 0) + log1p(e^-|v|) without overflow. */
UNARY_EVAL(softplus, fmax(v, 0) + log1p(exp(-fabs(v))))
static void softplus_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = jg_mul(dy, jg_sigmoid(n->in[0]));
}

UNARY_EVAL(pow, pow(v, a0))
/* NOTE x^0 is constant, but p * x^(p-1) at x = 0 is 0 * inf = NaN: build an explicit zero. */
static void pow_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    double p = n->attr.scalar[0];
    if (p == 0) {
        dx[0] = jg_scale(dy, 0);
        return;
    }
    dx[0] = jg_mul(dy, jg_scale(jg_pow(n->in[0], p - 1), p));
}

UNARY_EVAL(leaky_relu, v > 0 ? v : a0 * v)
static void leaky_relu_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *x = n->in[0];
    jg_node *slope = jg_where(positive(x), jg_scalar_like(x, 1.0),
                              jg_scalar_like(x, n->attr.scalar[0]));
    dx[0] = jg_mul(dy, slope);
}

UNARY_EVAL(elu, v > 0 ? v : a0 * expm1(v))
static void elu_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *x = n->in[0];
    jg_node *slope = jg_where(positive(x), jg_scalar_like(x, 1.0),
                              jg_scale(jg_exp(x), n->attr.scalar[0]));
    dx[0] = jg_mul(dy, slope);
}

UNARY_EVAL(clamp, v < a0 ? a0 : v > a1 ? a1 : v)
static void clamp_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *x = n->in[0];
    jg_node *inside = jg_mul(jg_ge(x, jg_scalar_like(x, n->attr.scalar[0])),
                             jg_le(x, jg_scalar_like(x, n->attr.scalar[1])));
    dx[0] = jg_mul(dy, inside);
}

/* The executor rounds each result to the node's dtype, which is the whole of a cast. */
UNARY_EVAL(cast, n->attr.dtype == JG_I32 ? (double)saturate_i32(v) : v)
static void cast_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    if (n->in[0]->dtype != JG_I32 && n->dtype != JG_I32)
        dx[0] = jg_cast(dy, n->in[0]->dtype);
}

UNARY_EVAL(stop_gradient, v)

static jg_status infer_cast(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                            jg_dtype *dtype, char *why)
{
    (void)n_in;
    if ((unsigned)attr->dtype > JG_I32) {
        snprintf(why, OP_ERR_SIZE, "unknown dtype %d", (int)attr->dtype);
        return JG_ERR_DTYPE;
    }
    *shape = in[0]->shape;
    *dtype = attr->dtype;
    return JG_OK;
}

static jg_status infer_clamp(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                             jg_dtype *dtype, char *why)
{
    if (!(attr->scalar[0] <= attr->scalar[1])) {
        snprintf(why, OP_ERR_SIZE, "lower bound %g above upper bound %g", attr->scalar[0],
                 attr->scalar[1]);
        return JG_ERR_ARG;
    }
    return infer_same_float(in, n_in, attr, shape, dtype, why);
}

#define FLOAT_OP(nm, ...)                                                                   \
    const op_def op_##nm = { .arity = 1, .kind = KIND_ELEMENTWISE,                          \
                             .infer = infer_same_float, .grad = nm##_grad,                  \
                             .eval = nm##_eval, __VA_ARGS__ };

/* neg and abs also take i32 (no gradient flows into integers anyway). */
const op_def op_neg = { .arity = 1, .kind = KIND_ELEMENTWISE,
                        .infer = infer_same, .grad = neg_grad, .eval = neg_eval };
const op_def op_abs = { .arity = 1, .kind = KIND_ELEMENTWISE,
                        .infer = infer_same, .grad = abs_grad, .eval = abs_eval,
                        .kink = kink_at_zero };
FLOAT_OP(exp)
FLOAT_OP(log)
FLOAT_OP(sqrt)
FLOAT_OP(rsqrt)
FLOAT_OP(square)
FLOAT_OP(tanh)
FLOAT_OP(sigmoid)
FLOAT_OP(relu, .kink = kink_at_zero)
FLOAT_OP(softplus)
FLOAT_OP(pow)
FLOAT_OP(leaky_relu, .kink = kink_at_zero)
FLOAT_OP(elu, .kink = kink_at_zero)
const op_def op_clamp = { .arity = 1, .kind = KIND_ELEMENTWISE,
                          .infer = infer_clamp, .grad = clamp_grad, .eval = clamp_eval,
                          .kink = kink_at_bounds };
const op_def op_cast = { .arity = 1, .kind = KIND_ELEMENTWISE,
                         .infer = infer_cast, .grad = cast_grad, .eval = cast_eval };
/* The compiler needs no node for it: the value is the operand's. */
static jg_node *stop_gradient_decompose(const jg_node *n, jg_node *const *in)
{
    (void)n;
    return in[0];
}

const op_def op_stop_gradient = { .arity = 1,
                                  .kind = KIND_ELEMENTWISE, .infer = infer_same,
                                  .no_grad = true, .eval = stop_gradient_eval,
                                  .decompose = stop_gradient_decompose };

/* ---- builders */

static jg_node *unary(jg_loc at, jg_op op, jg_node *x, double a0, double a1)
{
    return op_build(at, op, &x, 1, &(op_attr){ .scalar = { a0, a1 } });
}

jg_node *jg_neg_(jg_loc at, jg_node *x) { return unary(at, JG_OP_NEG, x, 0, 0); }
jg_node *jg_abs_(jg_loc at, jg_node *x) { return unary(at, JG_OP_ABS, x, 0, 0); }
jg_node *jg_exp_(jg_loc at, jg_node *x) { return unary(at, JG_OP_EXP, x, 0, 0); }
jg_node *jg_log_(jg_loc at, jg_node *x) { return unary(at, JG_OP_LOG, x, 0, 0); }
jg_node *jg_sqrt_(jg_loc at, jg_node *x) { return unary(at, JG_OP_SQRT, x, 0, 0); }
jg_node *jg_rsqrt_(jg_loc at, jg_node *x) { return unary(at, JG_OP_RSQRT, x, 0, 0); }
jg_node *jg_square_(jg_loc at, jg_node *x) { return unary(at, JG_OP_SQUARE, x, 0, 0); }
jg_node *jg_tanh_(jg_loc at, jg_node *x) { return unary(at, JG_OP_TANH, x, 0, 0); }
jg_node *jg_sigmoid_(jg_loc at, jg_node *x) { return unary(at, JG_OP_SIGMOID, x, 0, 0); }
jg_node *jg_relu_(jg_loc at, jg_node *x) { return unary(at, JG_OP_RELU, x, 0, 0); }
jg_node *jg_softplus_(jg_loc at, jg_node *x) { return unary(at, JG_OP_SOFTPLUS, x, 0, 0); }
jg_node *jg_pow_(jg_loc at, jg_node *x, double p) { return unary(at, JG_OP_POW, x, p, 0); }
jg_node *jg_leaky_relu_(jg_loc at, jg_node *x, double slope)
{
    return unary(at, JG_OP_LEAKY_RELU, x, slope, 0);
}
jg_node *jg_elu_(jg_loc at, jg_node *x, double alpha) { return unary(at, JG_OP_ELU, x, alpha, 0); }
jg_node *jg_clamp_(jg_loc at, jg_node *x, double lo, double hi)
{
    return unary(at, JG_OP_CLAMP, x, lo, hi);
}
jg_node *jg_stop_gradient_(jg_loc at, jg_node *x)
{
    return unary(at, JG_OP_STOP_GRADIENT, x, 0, 0);
}

jg_node *jg_cast_(jg_loc at, jg_node *x, jg_dtype t)
{
    if (x && !node_poisoned(x) && x->dtype == t)
        return x;
    return op_build(at, JG_OP_CAST, &x, 1, &(op_attr){ .dtype = t });
}

/* Conveniences built from mul/add, so error messages name those ops. */
jg_node *jg_scale_(jg_loc at, jg_node *x, double s)
{
    if (!x)
        return op_build(at, JG_OP_MUL, &x, 1, NULL);
    return jg_mul_(at, x, jg_scalar_(at, x->graph, x->dtype, s));
}

jg_node *jg_shift_(jg_loc at, jg_node *x, double s)
{
    if (!x)
        return op_build(at, JG_OP_ADD, &x, 1, NULL);
    return jg_add_(at, x, jg_scalar_(at, x->graph, x->dtype, s));
}
