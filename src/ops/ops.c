/* The op table and what every op family shares: the checked builder, common shape rules,
 * gradient reduction for broadcast operands, and broadcast iteration for reference kernels. */
#include "ops/op.h"

#include <string.h>

static const op_def *const op_table[] = {
#define OP(E, name) [JG_OP_##E] = &op_##name,
#include "graph/ops.def"
#undef OP
};
_Static_assert(sizeof op_table / sizeof op_table[0] == JG_OP_COUNT,
               "op table out of step with ops.def");

const op_def *op_get(jg_op op) { return op_table[op]; }

/* Returned when a builder has no graph to record on (every operand NULL). Never written. */
static jg_node orphan_poison = { .op = JG_OP_POISON, .id = -1, .param = -1 };

jg_node *op_build(jg_loc at, jg_op op, jg_node *const *in, int n_in, const op_attr *attr)
{
    const op_def *def = op_get(op);
    jg_graph *g = NULL;
    for (int i = 0; i < n_in && !g; i++)
        if (in[i])
            g = in[i]->graph;
    if (!g)
        return &orphan_poison;
    for (int i = 0; i < n_in; i++) {
        if (!in[i]) {
            graph_error(g, at, JG_ERR_ARG, "jg_%s: operand %d is NULL", graph_op_name(op), i);
            return g->poison;
        }
        if (in[i]->graph != g) {
            graph_error(g, at, JG_ERR_ARG, "jg_%s: operand %d belongs to another graph",
                        graph_op_name(op), i);
            return g->poison;
        }
        if (node_poisoned(in[i]))
            return g->poison; /* the first error is already on the graph */
    }
    op_attr a = attr ? *attr : (op_attr){ 0 };
    jg_shape shape = { 0 };
    jg_dtype dtype = in[0]->dtype;
    char why[OP_ERR_SIZE] = "";
    jg_status st = def->infer(in, n_in, &a, &shape, &dtype, why);
    if (st != JG_OK) {
        graph_error(g, at, st, "jg_%s: %s", graph_op_name(op), why);
        return g->poison;
    }
    /* Checked here once for every shape rule: broadcasting, one_hot, matmul... can all build
     * a result far larger than any operand. */
    if (!shape_valid(shape)) {
        char buf[8 * 24];
        graph_error(g, at, JG_ERR_SHAPE, "jg_%s: result shape %s is %s", graph_op_name(op),
                    FMT_SHAPE(buf, shape),
                    shape_dims_positive(shape) ? "too large (more than 2^40 elements)"
                                               : "invalid");
        return g->poison;
    }
    return graph_node_new(g, at, op, dtype, shape, in, n_in, &a);
}

jg_status infer_same(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                     jg_dtype *dtype, char *why)
{
    (void)n_in, (void)attr, (void)why;
    *shape = in[0]->shape;
    *dtype = in[0]->dtype;
    return JG_OK;
}

jg_status infer_same_float(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                           jg_dtype *dtype, char *why)
{
    if (in[0]->dtype == JG_I32) {
        snprintf(why, OP_ERR_SIZE, "needs a float operand, got i32 (use jg_cast)");
        return JG_ERR_DTYPE;
    }
    return infer_same(in, n_in, attr, shape, dtype, why);
}

jg_status infer_broadcast(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                          jg_dtype *dtype, char *why)
{
    (void)attr;
    for (int i = 1; i < n_in; i++)
        if (in[i]->dtype != in[0]->dtype) {
            snprintf(why, OP_ERR_SIZE, "dtypes differ: %s and %s", jg_dtype_str(in[0]->dtype),
                     jg_dtype_str(in[i]->dtype));
            return JG_ERR_DTYPE;
        }
    jg_shape s = in[0]->shape;
    for (int i = 1; i < n_in; i++) {
        if (!shape_broadcast(s, in[i]->shape, &s)) {
            char a[96], b[96];
            snprintf(why, OP_ERR_SIZE, "shapes do not broadcast: %s and %s",
                     FMT_SHAPE(a, in[0]->shape), FMT_SHAPE(b, in[i]->shape));
            return JG_ERR_SHAPE;
        }
    }
    *shape = s;
    *dtype = in[0]->dtype;
    return JG_OK;
}

jg_node *grad_sum_to(jg_node *g, jg_shape s)
{
    if (shape_eq(g->shape, s))
        return g;
    jg_axes axes = { .n = 0 };
    int lead = g->shape.ndim - s.ndim;
    for (int i = 0; i < g->shape.ndim; i++)
        if (i < lead || (s.dim[i - lead] == 1 && g->shape.dim[i] != 1))
            axes.axis[axes.n++] = i;
    jg_node *r = axes.n ? jg_sum(g, axes, true) : g;
    return jg_reshape(r, s);
}

void bcast_init(bcast_iter *it, const jg_node *out)
{
    memset(it, 0, sizeof *it);
    it->ndim = out->shape.ndim;
    it->n_in = out->n_in < 3 ? out->n_in : 3;
    memcpy(it->dim, out->shape.dim, sizeof it->dim);
    for (int k = 0; k < it->n_in; k++)
        shape_bcast_strides(out->in[k]->shape, out->shape, it->stride[k]);
}

void bcast_next(bcast_iter *it)
{
    for (int d = it->ndim - 1; d >= 0; d--) {
        for (int k = 0; k < it->n_in; k++)
            it->off[k] += it->stride[k][d];
        if (++it->idx[d] < it->dim[d])
            return;
        for (int k = 0; k < it->n_in; k++)
            it->off[k] -= it->stride[k][d] * it->dim[d];
        it->idx[d] = 0;
    }
}

int32_t saturate_i32(double v)
{
    if (!(v == v))
        return 0;
    if (v >= 2147483647.0)
        return INT32_MAX;
    if (v <= -2147483648.0)
        return INT32_MIN;
    return (int32_t)v;
}

double round_to(jg_dtype t, double v)
{
    switch (t) {
    case JG_F32: return (double)(float)v;
    case JG_I32: return (double)saturate_i32(v);
    case JG_F64: return v;
    }
    return v;
}

/* The graph of the first non-NULL operand, or NULL. */
static jg_graph *graph_of(jg_node *const *ns, int n)
{
    for (int i = 0; i < n; i++)
        if (ns[i])
            return ns[i]->graph;
    return NULL;
}

jg_node *composite_operands(jg_loc at, const char *fn, jg_node *const *ns,
                            const char *const *names, const bool *optional, int n)
{
    jg_graph *g = graph_of(ns, n);
    if (!g) /* no graph to record on: the orphan poison */
        return op_build(at, JG_OP_POISON, NULL, 0, NULL);
    for (int i = 0; i < n; i++) {
        if (!ns[i]) {
            if (optional && optional[i])
                continue;
            graph_error(g, at, JG_ERR_ARG, "jg_%s: %s is NULL", fn, names[i]);
            return g->poison;
        }
        if (ns[i]->graph != g) {
            graph_error(g, at, JG_ERR_ARG, "jg_%s: %s belongs to another graph", fn, names[i]);
            return g->poison;
        }
        if (node_poisoned(ns[i]))
            return g->poison; /* the first error is already on the graph */
    }
    return NULL;
}
