/* What an op is: one op_def per op, holding its shape rule, gradient rule, reference kernel,
 * kinks and fusion kind together (in its family's file), plus the helpers family files share:
 * the checked builder, common shape rules, broadcast iteration for reference kernels. */
#ifndef JG_OPS_OP_H
#define JG_OPS_OP_H

#include "graph/graph.h"

#include <math.h>

/* Fusion kinds, as the compiler sees ops (after TVM's pattern kinds). */
typedef enum op_kind {
    KIND_LEAF,        /* inputs, parameters, constants */
    KIND_ELEMENTWISE, /* out[i] depends on in[i] only, same shapes */
    KIND_BROADCAST,   /* elementwise with broadcast operands */
    KIND_INJECTIVE,   /* views the fuser reads through (reshape, permute, broadcast, slice) */
    KIND_REDUCE,      /* reductions along axes, fused with what they read */
    KIND_CONTRACTION, /* matmul, convolution */
    KIND_OPAQUE,      /* a kernel of its own reading plain buffers (gathers, pads, argmax),
                         or a composite that lowering decomposes first */
} op_kind;

#define OP_ERR_SIZE 256

/* Shape rule: checks the operands and attributes (normalising them, e.g. negative axes),
 * and sets the result's shape and dtype. On failure writes the reason (without the op name)
 * into why and returns the status. */
typedef jg_status (*op_infer_fn)(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                                 jg_dtype *dtype, char *why);
/* Gradient rule: given node n and the gradient dy of the output (n's shape and dtype), sets
 * dx[i] to the gradient contribution for input i, of input i's shape, or leaves it NULL.
 * Built only from differentiable ops, so gradients can be differentiated again. */
typedef void (*op_grad_fn)(jg_node *n, jg_node *dy, jg_node **dx);
/* Reference kernel in double: in[i] holds numel(input i) values, out numel(n). Returns
 * JG_OK, or an error (e.g. JG_ERR_RANGE) with the reason in err (OP_ERR_SIZE bytes). */
typedef jg_status (*op_eval_fn)(const jg_node *n, const double *const *in, double *out,
                                char *err);
/* Kinks: the smallest distance, over all elements, of the operands from a point where the op
 * is not differentiable (relu at 0, a tie of maximum). Gradient checks move away from them. */
typedef double (*op_kink_fn)(const jg_node *n, const double *const *in, const double *out);
/* Decomposition for the compiler: builds n's value from simpler ops applied to in[] (n's
 * operands as they exist in the program's graph). Composite ops (mean, softmax, losses)
 * have one, so the JIT lowers only primitives. */
typedef jg_node *(*op_decompose_fn)(const jg_node *n, jg_node *const *in);

typedef struct op_def {
    int arity;          /* number of operands; -1 for variadic (concat) */
    op_kind kind;
    op_infer_fn infer;
    op_grad_fn grad;    /* NULL with no_grad: nothing flows back; NULL otherwise: missing */
    bool no_grad;       /* comparisons, argmax, one_hot, leaves */
    op_eval_fn eval;
    op_kink_fn kink;    /* NULL: smooth everywhere */
    op_decompose_fn decompose; /* NULL: a primitive the JIT lowers itself */
} op_def;

#define OP(E, name) extern const op_def op_##name;
#include "graph/ops.def"
#undef OP

HIDDEN const op_def *op_get(jg_op op);

/* Pointwise: out[i] reads its operands at i (through broadcasting), so fusion may compute
 * it inside whatever kernel consumes it. The one place that says which kinds are. */
static inline bool op_is_pointwise(const jg_node *n)
{
    op_kind k = op_get(n->op)->kind;
    return k == KIND_ELEMENTWISE || k == KIND_BROADCAST;
}

/* Checks the graph's invariants against the op rows (verify.c); on failure writes the reason
 * into why. Debug builds run it on every compile. */
HIDDEN jg_status graph_verify(const jg_graph *g, char *why, size_t size);

/* The checked builder every public op function goes through: rejects NULL, poisoned and
 * cross-graph operands, runs the shape rule, records the first error on the graph as
 * "file:line: jg_<op>: <why>" and returns the poison node on failure. */
HIDDEN jg_node *op_build(jg_loc at, jg_op op, jg_node *const *in, int n_in, const op_attr *attr);

/* For builders of composites (layers built from ops, which op_build cannot check as one):
 * the operands ns[0..n) (ns[i] may be NULL only where optional[i]; optional may be NULL)
 * exist, live in one graph and are not poisoned. Returns NULL when they are fine, else the
 * poison to return, with "jg_<fn>: <name> is NULL" (or "... belongs to another graph")
 * recorded unless an operand already carried an error. */
HIDDEN jg_node *composite_operands(jg_loc at, const char *fn, jg_node *const *ns,
                                   const char *const *names, const bool *optional, int n);

/* Train/eval and randomness (random.c): mode(train, eval) picks by program mode; a random
 * node's value at element i in run `step`. */
HIDDEN jg_node *jg_mode_(jg_loc at, jg_node *train, jg_node *eval);
HIDDEN double random_value(uint64_t key, uint64_t step, int64_t i);

/* Common shape rules. */
HIDDEN jg_status infer_same(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                            jg_dtype *dtype, char *why);       /* unary: like operand 0 */
HIDDEN jg_status infer_same_float(jg_node *const *in, int n_in, op_attr *attr,
                                  jg_shape *shape, jg_dtype *dtype, char *why);
HIDDEN jg_status infer_broadcast(jg_node *const *in, int n_in, op_attr *attr,
                                 jg_shape *shape, jg_dtype *dtype, char *why);

/* Gradient helper: reduces g (a broadcast result) back to shape s by summing the broadcast
 * dimensions, then reshaping. Returns g itself when shapes already match. */
HIDDEN jg_node *grad_sum_to(jg_node *g, jg_shape s);

/* Broadcast iteration for reference kernels: walks the output in row-major order and keeps,
 * for each operand, the offset of the element it reads. */
typedef struct bcast_iter {
    int ndim, n_in;
    int64_t dim[JG_MAX_DIMS];
    int64_t idx[JG_MAX_DIMS];
    int64_t stride[3][JG_MAX_DIMS];
    int64_t off[3];
} bcast_iter;
HIDDEN void bcast_init(bcast_iter *it, const jg_node *out);
HIDDEN void bcast_next(bcast_iter *it);

/* Rounds to the node's dtype (f32 results are rounded to float, i32 truncated) unless the
 * executor runs exact; reference kernels do not call it themselves. */
HIDDEN double round_to(jg_dtype t, double v);
/* Float to i32 truncating toward zero, saturating, NaN to 0 (no undefined behaviour). */
HIDDEN int32_t saturate_i32(double v);

#endif
