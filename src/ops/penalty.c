/* The L2 penalty c * sum_i |w_i|^2 over parameters, as one op so that the compiler can see
 * it: a training program with SGD applies it as weight decay in the update instead of
 * differentiating it (compiler/l2_decay.c), and the advice can tell coupled L2 under Adam
 * from AdamW's decoupled decay. Everywhere else it is the sum of squares it decomposes into. */
#include "ops/op.h"

#include <float.h>

/* attr.scalar[0] = c; operands: parameters of one float dtype; the result is a scalar. */
static jg_status l2_penalty_infer(jg_node *const *in, int n_in, op_attr *attr,
                                  jg_shape *shape, jg_dtype *dtype, char *why)
{
    double c = attr->scalar[0];
    if (!(c >= 0 && c <= DBL_MAX)) {
        snprintf(why, OP_ERR_SIZE, "coefficient %g must be >= 0 and finite", c);
        return JG_ERR_ARG;
    }
    for (int i = 0; i < n_in; i++) {
        if (in[i]->op != JG_OP_PARAM) {
            snprintf(why, OP_ERR_SIZE, "operand %d is not a parameter (op %s)", i,
                     graph_op_name(in[i]->op));
            return JG_ERR_ARG;
        }
        if (in[i]->dtype != in[0]->dtype) {
            snprintf(why, OP_ERR_SIZE, "dtypes differ: operand 0 is %s, operand %d is %s",
                     jg_dtype_str(in[0]->dtype), i, jg_dtype_str(in[i]->dtype));
            return JG_ERR_DTYPE;
        }
    }
    if (in[0]->dtype == JG_I32) { /* parameters are float today; the op relies on it */
        snprintf(why, OP_ERR_SIZE, "needs float parameters, got i32");
        return JG_ERR_DTYPE;
    }
    *shape = JG_SCALAR;
    *dtype = in[0]->dtype;
    return JG_OK;
}

static jg_status l2_penalty_eval(const jg_node *n, const double *const *in, double *out,
                                 char *err)
{
    (void)err;
    double total = 0;
    for (int i = 0; i < n->n_in; i++) {
        int64_t numel = jg_shape_numel(n->in[i]->shape);
        for (int64_t k = 0; k < numel; k++)
            total += in[i][k] * in[i][k];
    }
    out[0] = n->attr.scalar[0] * total;
    return JG_OK;
}

/* d/dw_i = 2 c w_i dy (a parameter given twice gets both contributions from autodiff) */
static void l2_penalty_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    for (int i = 0; i < n->n_in; i++)
        dx[i] = jg_mul(jg_scale(n->in[i], 2 * n->attr.scalar[0]), dy);
}

/* c * (sum(w_0^2) + sum(w_1^2) + ...): reductions the JIT already has. */
static jg_node *l2_penalty_decompose(const jg_node *n, jg_node *const *in)
{
    jg_node *total = NULL;
    for (int i = 0; i < n->n_in; i++) {
        jg_node *s = jg_sum(jg_square(in[i]), JG_ALL_AXES, false);
        total = total ? jg_add(total, s) : s;
    }
    return jg_scale(total, n->attr.scalar[0]);
}

const op_def op_l2_penalty = { .arity = -1, .kind = KIND_OPAQUE,
                               .infer = l2_penalty_infer, .grad = l2_penalty_grad,
                               .eval = l2_penalty_eval, .decompose = l2_penalty_decompose };

jg_node *jg_l2_penalty_(jg_loc at, double c, jg_node *const *params, int n)
{
    if (!params || n < 1) /* no operand, so no graph to record on: the orphan poison */
        return op_build(at, JG_OP_L2_PENALTY, NULL, 0, NULL);
    return op_build(at, JG_OP_L2_PENALTY, params, n, &(op_attr){ .scalar = { c } });
}
