/* Lowering a user's graph to the program graph the compiler works on: the nodes the roots
 * need, copied into a private graph, with composite ops (mean, softmax, losses, ...) replaced
 * by their decompositions and moved constants folded. The user's graph is never modified by compiling. Parameters keep
 * their store index, so kernels read and write the user's store. */
#include "jit/lower.h"
#include "graph/passes/cse.h"
#include "graph/passes/passes.h"

#include <stdlib.h>

static bool is_fill(const jg_node *n, double v)
{
    return n->op == JG_OP_FILL && n->attr.scalar[0] == v;
}

/* Folds that gradient graphs need most, each exact (NOTE x - x is not folded: it is NaN for
 * an infinite x; -(-x) only for floats, where negation is exact):
 *   a constant moved around (reshape, broadcast, permute)  -> a constant of the new shape
 *   x * 1, x + 0                                           -> x
 *   -(-x)                                                  -> x
 *   permute(permute(x))                                    -> one permute, or x
 *   reshape(reshape(x))                                    -> one reshape, or x
 * Returns the node n becomes, or NULL to copy it as it is. */
static jg_node *fold(jg_graph *g, const jg_node *n, jg_node *const *in, bool train,
                     bool simplify)
{
    if (n->op == JG_OP_MODE) /* resolved here: a program is either training or evaluating */
        return in[train ? 0 : 1];
    if (!simplify)
        return NULL;
    if ((n->op == JG_OP_RESHAPE || n->op == JG_OP_BROADCAST || n->op == JG_OP_PERMUTE) &&
        in[0]->op == JG_OP_FILL)
        return jg_fill(g, n->dtype, n->shape, in[0]->attr.scalar[0]);
    switch (n->op) {
    case JG_OP_NEG:
        return in[0]->op == JG_OP_NEG && n->dtype != JG_I32 ? in[0]->in[0] : NULL;
    case JG_OP_RESHAPE:
        if (in[0]->op != JG_OP_RESHAPE)
            return NULL;
        return shape_eq(in[0]->in[0]->shape, n->shape) ? in[0]->in[0]
                                                       : jg_reshape(in[0]->in[0], n->shape);
    case JG_OP_PERMUTE: {
        if (in[0]->op != JG_OP_PERMUTE)
            return NULL;
        /* out dim d reads dim list[d] of the inner permute, which reads its own list[...] */
        jg_axes both = { .n = n->shape.ndim };
        bool identity = true;
        for (int d = 0; d < both.n; d++) {
            both.axis[d] = (int)in[0]->attr.list[n->attr.list[d]];
            identity &= both.axis[d] == d;
        }
        return identity ? in[0]->in[0] : jg_permute(in[0]->in[0], both);
    }
    case JG_OP_MUL: case JG_OP_ADD: {
        double unit = n->op == JG_OP_MUL ? 1 : 0;
        for (int k = 0; k < 2; k++)
            if (is_fill(in[k], unit) && shape_eq(in[1 - k]->shape, n->shape) &&
                in[1 - k]->dtype == n->dtype)
                return in[1 - k];
        return NULL;
    }
    default:
        return NULL;
    }
}

jg_status lower_graph(jg_graph *src, jg_node *const *roots, int n_roots, bool train,
                      const char *passes_off, lowered *out, char *err, size_t size)
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
    bool simplify = pass_enabled(passes_off, "simplify"), cse = pass_enabled(passes_off, "cse");
    cse_table table = { 0 };
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
        jg_node *folded = def->decompose ? NULL : fold(g, n, in, train, simplify);
        out->folded += folded != NULL && n->op != JG_OP_MODE;
        jg_node *same = def->decompose || folded || !cse ? NULL
                        : cse_find(&table, n->op, n->dtype, n->shape, in, n->n_in, &n->attr);
        jg_node *m = def->decompose ? def->decompose(n, in)
                     : folded     ? folded
                     : same       ? same
                                  : graph_node_new(g, n->at, n->op, n->dtype, n->shape, in,
                                                   n->n_in, &n->attr);
        if (cse && !def->decompose && !folded && !same && !node_poisoned(m))
            cse_add(&table, m);
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
        if (!def->decompose && !folded && !same) {
            m->name = n->name;
            m->param = n->param;
        }
        out->map[id] = m;
    }
    out->merged = table.merged;
    cse_free(&table);
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
