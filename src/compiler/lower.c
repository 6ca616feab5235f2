/* Lowering a user's graph to the program graph the compiler works on: the nodes the roots
 * need, copied into a private graph, with composite ops (mean, softmax, losses, ...) replaced
 * by their decompositions and train/eval choices resolved for the program's mode. The graph
 * passes (src/compiler/pipeline.c) take it from there. The user's graph is never
 * modified by compiling. Parameters keep their store index, so kernels read and write the
 * user's store. */
#include "compiler/lower.h"
#include "compiler/pass.h"

#include <stdlib.h>

/* Composite ops become their decompositions (which must be primitives); a mode node becomes
 * the operand the program's mode picks. */
static jg_node *lower_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    bool train = *(const bool *)state;
    if (n->op == JG_OP_MODE)
        return in[train ? 0 : 1];
    const op_def *def = op_get(n->op);
    if (!def->decompose)
        return NULL;
    int before = g->n_nodes;
    jg_node *m = def->decompose(n, in);
    for (int k = before; k < g->n_nodes; k++)
        if (op_get(g->nodes[k]->op)->decompose)
            graph_error(g, n->at, JG_ERR_STATE, "internal: %s decomposes into %s, itself "
                        "composite", graph_op_name(n->op), graph_op_name(g->nodes[k]->op));
    return m;
}

jg_status lower_graph(jg_graph *src, jg_node *const *roots, int n_roots, bool train,
                      lowered *out, char *err, size_t size)
{
    *out = (lowered){ .n_src = src->n_nodes };
    bool *needed = calloc((size_t)src->n_nodes + 1, sizeof *needed);
    out->map = calloc((size_t)src->n_nodes + 1, sizeof *out->map);
    if (needed && out->map) {
        for (int i = 0; i < n_roots; i++)
            needed[roots[i]->id] = true;
        for (int id = src->n_nodes - 1; id >= 0; id--)
            for (int k = 0; needed[id] && k < src->nodes[id]->n_in; k++)
                needed[src->nodes[id]->in[k]->id] = true;
        int replaced = 0;
        out->g = pass_copy_graph(src, needed, lower_rule, &train, out->map, &replaced);
    }
    free(needed);
    if (!out->g) {
        lowered_free(out);
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    if (out->g->status != JG_OK) {
        snprintf(err, size, "lowering: %s", out->g->errmsg);
        jg_status st = out->g->status;
        lowered_free(out);
        return st;
    }
    return JG_OK;
}

void lowered_free(lowered *l)
{
    jg_graph_free(l->g);
    free(l->map);
    *l = (lowered){ 0 };
}
