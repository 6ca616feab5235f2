/* Lowering a user's graph to the program graph the compiler works on: the nodes the roots
 * need, copied into a private graph, with composite ops (mean, softmax, losses, ...) replaced
 * by their decompositions and train/eval choices resolved for the program's mode. The graph
 * passes (src/graph/passes/pipeline.c) take it from there. The user's graph is never
 * modified by compiling. Parameters keep their store index, so kernels read and write the
 * user's store. */
#include "jit/lower.h"
#include "graph/passes/pass.h"

#include <stdlib.h>

jg_status lower_graph(jg_graph *src, jg_node *const *roots, int n_roots, bool train,
                      lowered *out, char *err, size_t size)
{
    *out = (lowered){ 0 };
    bool *needed = calloc((size_t)src->n_nodes + 1, sizeof *needed);
    out->map = calloc((size_t)src->n_nodes + 1, sizeof *out->map);
    out->g = jg_graph_new();
    if (!needed || !out->map || !out->g) {
        free(needed);
        lowered_free(out);
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    out->n_src = src->n_nodes;
    for (int i = 0; i < n_roots; i++)
        needed[roots[i]->id] = true;
    for (int id = src->n_nodes - 1; id >= 0; id--)
        for (int k = 0; needed[id] && k < src->nodes[id]->n_in; k++)
            needed[src->nodes[id]->in[k]->id] = true;

    jg_graph *g = out->g;
    jg_node *stack_in[8];
    for (int id = 0; id < src->n_nodes && g->status == JG_OK; id++) {
        const jg_node *n = src->nodes[id];
        if (!needed[id])
            continue;
        jg_node **in = n->n_in <= 8 ? stack_in : malloc((size_t)n->n_in * sizeof *in);
        if (!in) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < n->n_in; k++)
            in[k] = out->map[n->in[k]->id];
        const op_def *def = op_get(n->op);
        int before = g->n_nodes;
        jg_node *m = n->op == JG_OP_MODE ? in[train ? 0 : 1] /* a program trains or not */
                     : def->decompose    ? def->decompose(n, in)
                                         : pass_copy(g, n, in);
        if (in != stack_in)
            free(in);
        if (!node_poisoned(m) && (!shape_eq(m->shape, n->shape) || m->dtype != n->dtype))
            graph_error(g, n->at, JG_ERR_STATE, "internal: %s decomposes to another shape",
                        def->name);
        for (int k = before; k < g->n_nodes && def->decompose; k++)
            if (op_get(g->nodes[k]->op)->decompose)
                graph_error(g, n->at, JG_ERR_STATE, "internal: %s decomposes into %s, itself "
                            "composite", def->name, op_get(g->nodes[k]->op)->name);
        if (node_poisoned(m) || g->status != JG_OK)
            break;
        out->map[id] = m;
    }
    free(needed);
    if (g->status != JG_OK) {
        snprintf(err, size, "lowering: %s", g->errmsg);
        jg_status st = g->status;
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
