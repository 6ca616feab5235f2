/* The graph verifier: checks the invariants every pass and executor relies on (ids in order,
 * operands earlier in the same graph, arity, shapes and dtypes as the shape rules say).
 * Debug builds run it on every compile; a failure is a bug in jitgrad, not in user code. */
#include "ops/op.h"

#include <string.h>

jg_status graph_verify(const jg_graph *g, char *why, size_t size)
{
    char a[96], b[96];
    for (int i = 0; i < g->n_nodes; i++) {
        const jg_node *n = g->nodes[i];
        const op_def *def = op_get(n->op);
        if (n->id != i || n->graph != g) {
            snprintf(why, size, "node %d: id %d or graph mismatch", i, n->id);
            return JG_ERR_STATE;
        }
        if (n->op == JG_OP_POISON || !shape_valid(n->shape)) {
            snprintf(why, size, "node %%%d (%s): poisoned or invalid shape %s", i, graph_op_name(n->op),
                     FMT_SHAPE(a, n->shape));
            return JG_ERR_STATE;
        }
        if (def->kind == KIND_LEAF)
            continue;
        if (def->arity >= 0 && n->n_in != def->arity) {
            snprintf(why, size, "node %%%d (%s): %d operands, arity %d", i, graph_op_name(n->op), n->n_in,
                     def->arity);
            return JG_ERR_STATE;
        }
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k]->graph != g || n->in[k]->id >= n->id || node_poisoned(n->in[k])) {
                snprintf(why, size, "node %%%d (%s): operand %d is not an earlier node", i,
                         graph_op_name(n->op), k);
                return JG_ERR_STATE;
            }
        op_attr attr = n->attr;
        jg_shape shape = { 0 };
        jg_dtype dtype = n->in[0]->dtype;
        char reason[OP_ERR_SIZE] = "";
        if (def->infer(n->in, n->n_in, &attr, &shape, &dtype, reason) != JG_OK) {
            snprintf(why, size, "node %%%d (%s): shape rule rejects it now: %s", i, graph_op_name(n->op),
                     reason);
            return JG_ERR_STATE;
        }
        if (!shape_eq(shape, n->shape) || dtype != n->dtype) {
            snprintf(why, size, "node %%%d (%s): is %s%s, shape rule says %s%s", i, graph_op_name(n->op),
                     jg_dtype_str(n->dtype), FMT_SHAPE(a, n->shape), jg_dtype_str(dtype),
                     FMT_SHAPE(b, shape));
            return JG_ERR_STATE;
        }
    }
    return JG_OK;
}
