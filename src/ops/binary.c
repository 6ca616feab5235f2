/* Elementwise ops of two (where: three) operands with NumPy broadcasting. Gradients of
 * broadcast operands are summed back to their shapes (grad_sum_to). NOTE maximum and minimum
 * give the gradient at a tie to the first operand; comparisons have no gradient. */
#include "ops/op.h"

/* A broadcasting reference kernel from an expression of a = x[i], b = y[i]. */
#define BINARY_EVAL(name, expr)                                                             \
    static jg_status name##_eval(const jg_node *n, const double *const *in, double *out,    \
                                 char *err)                                                 \
    {                                                                                       \
        (void)err;                                                                          \
        int64_t numel = jg_shape_numel(n->shape);                                           \
        if (shape_eq(n->in[0]->shape, n->shape) && shape_eq(n->in[1]->shape, n->shape)) {   \
            for (int64_t i = 0; i < numel; i++) {                                           \
                double a = in[0][i], b = in[1][i];                                          \
                out[i] = (expr);                                                            \
            }                                                                               \
            return JG_OK;                                                                   \
        }                                                                                   \
        bcast_iter it;                                                                      \
        bcast_init(&it, n);                                                                 \
        for (int64_t i = 0; i < numel; i++, bcast_next(&it)) {                              \
            double a = in[0][it.off[0]], b = in[1][it.off[1]];                              \
            out[i] = (expr);                                                                \
        }                                                                                   \
        return JG_OK;                                                                       \
    }

/* Smallest |a - b| over the broadcast elements: where maximum and minimum switch sides. */
static double kink_tie(const jg_node *n, const double *const *in, const double *out)
{
    (void)out;
    double d = INFINITY;
    int64_t numel = jg_shape_numel(n->shape);
    bcast_iter it;
    bcast_init(&it, n);
    for (int64_t i = 0; i < numel; i++, bcast_next(&it))
        d = fmin(d, fabs(in[0][it.off[0]] - in[1][it.off[1]]));
    return d;
}

/* Operand i's gradient from g, a gradient of the broadcast result shape. */
static jg_node *to_operand(jg_node *n, int i, jg_node *g)
{
    return grad_sum_to(g, n->in[i]->shape);
}

BINARY_EVAL(add, a + b)
static void add_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = to_operand(n, 0, dy);
    dx[1] = to_operand(n, 1, dy);
}

BINARY_EVAL(sub, a - b)
static void sub_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = to_operand(n, 0, dy);
    dx[1] = to_operand(n, 1, jg_neg(dy));
}

BINARY_EVAL(mul, a * b)
static void mul_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = to_operand(n, 0, jg_mul(dy, n->in[1]));
    dx[1] = to_operand(n, 1, jg_mul(dy, n->in[0]));
}

/* Integer division truncates toward zero as in C; division by zero gives 0 for i32. */
BINARY_EVAL(div, n->dtype == JG_I32 ? (b != 0 ? (double)saturate_i32(a / b) : 0) : a / b)
static void div_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    dx[0] = to_operand(n, 0, jg_div(dy, n->in[1]));
    /* d(a/b)/db = -a/b^2 = -y/b */
    dx[1] = to_operand(n, 1, jg_neg(jg_div(jg_mul(dy, n), n->in[1])));
}

BINARY_EVAL(maximum, a >= b ? a : b)
static void maximum_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *a = n->in[0], *b = n->in[1];
    dx[0] = to_operand(n, 0, jg_mul(dy, jg_ge(a, b)));
    dx[1] = to_operand(n, 1, jg_mul(dy, jg_lt(a, b)));
}

BINARY_EVAL(minimum, a <= b ? a : b)
static void minimum_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *a = n->in[0], *b = n->in[1];
    dx[0] = to_operand(n, 0, jg_mul(dy, jg_le(a, b)));
    dx[1] = to_operand(n, 1, jg_mul(dy, jg_gt(a, b)));
}

BINARY_EVAL(lt, a < b)
BINARY_EVAL(le, a <= b)
BINARY_EVAL(gt, a > b)
BINARY_EVAL(ge, a >= b)
BINARY_EVAL(eq, a == b)
BINARY_EVAL(ne, a != b)

static jg_status where_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    int64_t numel = jg_shape_numel(n->shape);
    bcast_iter it;
    bcast_init(&it, n);
    for (int64_t i = 0; i < numel; i++, bcast_next(&it))
        out[i] = in[0][it.off[0]] != 0 ? in[1][it.off[1]] : in[2][it.off[2]];
    return JG_OK;
}

static void where_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *zero = jg_scalar_like(dy, 0);
    dx[1] = to_operand(n, 1, jg_where(n->in[0], dy, zero));
    dx[2] = to_operand(n, 2, jg_where(n->in[0], zero, dy));
}

/* where: the condition may have any dtype; a and b decide the result's dtype. */
static jg_status infer_where(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                             jg_dtype *dtype, char *why)
{
    (void)n_in;
    jg_status st = infer_broadcast(in + 1, 2, attr, shape, dtype, why);
    if (st != JG_OK)
        return st;
    jg_shape ab = *shape;
    if (!shape_broadcast(in[0]->shape, ab, shape)) {
        char c[96], s[96];
        snprintf(why, OP_ERR_SIZE, "condition %s does not broadcast with operands %s",
                 FMT_SHAPE(c, in[0]->shape), FMT_SHAPE(s, ab));
        return JG_ERR_SHAPE;
    }
    return JG_OK;
}

#define ARITH_OP(nm, ...)                                                                   \
    const op_def op_##nm = { .arity = 2, .kind = KIND_BROADCAST,                            \
                             .infer = infer_broadcast, .grad = nm##_grad,                   \
                             .eval = nm##_eval, __VA_ARGS__ };
#define COMPARE_OP(nm)                                                                      \
    const op_def op_##nm = { .arity = 2, .kind = KIND_BROADCAST,                            \
                             .infer = infer_broadcast, .no_grad = true, .eval = nm##_eval };

ARITH_OP(add)
ARITH_OP(sub)
ARITH_OP(mul)
ARITH_OP(div)
ARITH_OP(maximum, .kink = kink_tie)
ARITH_OP(minimum, .kink = kink_tie)
COMPARE_OP(lt)
COMPARE_OP(le)
COMPARE_OP(gt)
COMPARE_OP(ge)
COMPARE_OP(eq)
COMPARE_OP(ne)
const op_def op_where = { .arity = 3, .kind = KIND_BROADCAST,
                          .infer = infer_where, .grad = where_grad, .eval = where_eval };

/* ---- builders */

static jg_node *binary(jg_loc at, jg_op op, jg_node *a, jg_node *b)
{
    jg_node *in[2] = { a, b };
    return op_build(at, op, in, 2, NULL);
}

jg_node *jg_add_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_ADD, a, b); }
jg_node *jg_sub_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_SUB, a, b); }
jg_node *jg_mul_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_MUL, a, b); }
jg_node *jg_div_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_DIV, a, b); }
jg_node *jg_maximum_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_MAXIMUM, a, b); }
jg_node *jg_minimum_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_MINIMUM, a, b); }
jg_node *jg_lt_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_LT, a, b); }
jg_node *jg_le_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_LE, a, b); }
jg_node *jg_gt_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_GT, a, b); }
jg_node *jg_ge_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_GE, a, b); }
jg_node *jg_eq_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_EQ, a, b); }
jg_node *jg_ne_(jg_loc at, jg_node *a, jg_node *b) { return binary(at, JG_OP_NE, a, b); }

jg_node *jg_where_(jg_loc at, jg_node *cond, jg_node *a, jg_node *b)
{
    jg_node *in[3] = { cond, a, b };
    return op_build(at, JG_OP_WHERE, in, 3, NULL);
}
