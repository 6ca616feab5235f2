/* The rewrite every graph pass is built on: copy what the roots need into a fresh graph, in
 * id order (a topological order), letting a rule replace nodes on the way. Building a new
 * graph instead of editing in place keeps the arena append-only and ids topological, and
 * leaves nodes nobody needs behind: dead-code elimination is free. */
#include "compiler/pass.h"

#include <stdlib.h>
#include <string.h>

/* What a node points to in its graph's arena (a constant's values, a name) is copied into
 * g's: the graph it comes from is freed once the rewrite is done. */
jg_node *pass_copy(jg_graph *g, const jg_node *n, jg_node *const *in)
{
    op_attr a = n->attr;
    if (n->op == JG_OP_CONST) {
        size_t bytes = (size_t)jg_shape_numel(n->shape) * sizeof(double);
        double *data = graph_alloc(g, bytes ? bytes : 1);
        if (!data) {
            graph_error(g, n->at, JG_ERR_NOMEM, "out of memory");
            return g->poison;
        }
        memcpy(data, n->attr.data, bytes);
        a.data = data;
    }
    jg_node *m = graph_node_new(g, n->at, n->op, n->dtype, n->shape, in, n->n_in, &a);
    if (!node_poisoned(m)) {
        m->name = n->name ? graph_strdup(g, n->name) : NULL;
        m->param = n->param;
    }
    return m;
}

/* needed[id]: whether node id of c->g is reachable from a root or kept node. */
static bool *needed_nodes(const pass_ctx *c)
{
    const jg_graph *g = c->g;
    bool *needed = calloc((size_t)g->n_nodes + 1, sizeof *needed);
    if (!needed)
        return NULL;
    for (int i = 0; i < c->n_roots + c->n_keep; i++)
        needed[c->roots[i]->id] = true;
    for (int id = g->n_nodes - 1; id >= 0; id--) /* operands have smaller ids */
        for (int k = 0; needed[id] && k < g->nodes[id]->n_in; k++)
            needed[g->nodes[id]->in[k]->id] = true;
    return needed;
}

int *pass_use_counts(const pass_ctx *c)
{
    bool *needed = needed_nodes(c);
    int *uses = calloc((size_t)c->g->n_nodes + 1, sizeof *uses);
    if (!needed || !uses) {
        free(needed);
        free(uses);
        return NULL;
    }
    for (int id = 0; id < c->g->n_nodes; id++)
        for (int k = 0; needed[id] && k < c->g->nodes[id]->n_in; k++)
            uses[c->g->nodes[id]->in[k]->id]++;
    for (int i = 0; i < c->n_roots + c->n_keep; i++)
        uses[c->roots[i]->id]++;
    free(needed);
    return uses;
}

jg_node **pass_consumers(const pass_ctx *c, const int *uses)
{
    const jg_graph *g = c->g;
    jg_node **consumer = calloc((size_t)g->n_nodes + 1, sizeof *consumer);
    for (int id = 0; consumer && id < g->n_nodes; id++)
        for (int k = 0; uses[id] > 0 && k < g->nodes[id]->n_in; k++)
            consumer[g->nodes[id]->in[k]->id] = g->nodes[id];
    return consumer;
}

static bool fail(pass_ctx *c, jg_status st, const char *msg)
{
    c->status = st;
    snprintf(c->errmsg, sizeof c->errmsg, "%.200s", msg);
    return false;
}

jg_graph *pass_copy_graph(const jg_graph *old, const bool *needed, rewrite_rule rule,
                          void *state, jg_node **to, int *replaced)
{
    jg_graph *g = jg_graph_new();
    jg_node *stack_in[8];
    for (int id = 0; g && id < old->n_nodes && g->status == JG_OK; id++) {
        const jg_node *n = old->nodes[id];
        if (!needed[id])
            continue;
        jg_node **in = n->n_in <= 8 ? stack_in : malloc((size_t)n->n_in * sizeof *in);
        if (!in) {
            graph_error(g, n->at, JG_ERR_NOMEM, "out of memory");
            break;
        }
        for (int k = 0; k < n->n_in; k++)
            in[k] = to[n->in[k]->id];
        jg_node *m = rule ? rule(state, g, n, in) : NULL;
        *replaced += m != NULL;
        if (!m)
            m = pass_copy(g, n, in);
        if (in != stack_in)
            free(in);
        if (!node_poisoned(m) && (!shape_eq(m->shape, n->shape) || m->dtype != n->dtype))
            graph_error(g, n->at, JG_ERR_STATE, "internal: a rewrite of %s changed its shape "
                        "or dtype", graph_op_name(n->op));
        to[id] = m;
    }
    return g;
}

bool pass_rewrite(pass_ctx *c, rewrite_rule rule, void *state)
{
    jg_graph *old = c->g;
    bool *needed = needed_nodes(c);
    jg_node **to = calloc((size_t)old->n_nodes + 1, sizeof *to);
    int replaced = 0;
    jg_graph *g = needed && to ? pass_copy_graph(old, needed, rule, state, to, &replaced) : NULL;
    free(needed);
    if (!g) {
        free(to);
        return fail(c, JG_ERR_NOMEM, "out of memory");
    }
    if (g->status != JG_OK) {
        fail(c, g->status, g->errmsg);
        jg_graph_free(g);
        free(to);
        return false;
    }
    for (int i = 0; i < c->n_roots + c->n_keep; i++)
        c->roots[i] = to[c->roots[i]->id];
    for (int u = 0; u < c->n_map; u++)
        if (c->map[u])
            c->map[u] = to[c->map[u]->id]; /* NULL when no longer needed */
    bool changed = replaced > 0 || g->n_nodes < old->n_nodes;
    c->rewrites += replaced;
    c->g = g;
    jg_graph_free(old);
    free(to);
    return changed;
}
