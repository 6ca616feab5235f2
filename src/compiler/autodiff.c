/* Reverse-mode automatic differentiation. jg_grad walks the nodes from the output down in id
 * (= reverse topological) order and asks each op's gradient rule for its operands'
 * contributions, which are ordinary nodes appended to the graph: the backward pass is more
 * graph, compiled like the forward one, and can itself be differentiated. */
#include "ops/op.h"

#include <stdlib.h>

static bool frozen(const jg_node *n)
{
    return n->op == JG_OP_PARAM && n->graph->params[n->param].frozen;
}

/* Checks one node argument of jg_grad; records the error and returns false if bad. */
static bool arg_ok(jg_graph *g, const jg_node *n, const char *what, int i)
{
    if (!n) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_grad: %s %d is NULL", what, i);
        return false;
    }
    if (n->graph != g) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_grad: %s %d belongs to another graph",
                    what, i);
        return false;
    }
    if (node_poisoned(n)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_STATE,
                    "jg_grad: %s %d is poisoned by an earlier error", what, i);
        return false;
    }
    return true;
}

static jg_status backward(jg_graph *g, jg_node *output, const bool *needs, jg_node **adj)
{
    char a[96], b[96];
    adj[output->id] = jg_fill(g, output->dtype, output->shape, 1.0);
    for (int id = output->id; id >= 0; id--) {
        jg_node *v = g->nodes[id];
        if (!adj[id] || v->n_in == 0)
            continue;
        const op_def *def = op_get(v->op);
        if (def->no_grad)
            continue;
        if (!def->grad) {
            graph_error(g, v->at, JG_ERR_GRAD, "jg_grad: op %s has no gradient rule",
                        graph_op_name(v->op));
            return JG_ERR_GRAD;
        }
        bool any = false;
        for (int i = 0; i < v->n_in; i++)
            any |= needs[v->in[i]->id];
        if (!any)
            continue;
        jg_node *stack_dx[4] = { 0 }, **dx = stack_dx;
        if (v->n_in > 4 && !(dx = calloc((size_t)v->n_in, sizeof *dx))) {
            graph_error(g, v->at, JG_ERR_NOMEM, "jg_grad: out of memory");
            return JG_ERR_NOMEM;
        }
        def->grad(v, adj[id], dx);
        for (int i = 0; i < v->n_in; i++) {
            jg_node *in = v->in[i];
            if (!dx[i] || !needs[in->id])
                continue;
            if (node_poisoned(dx[i]))
                break; /* the error is on the graph */
            if (!shape_eq(dx[i]->shape, in->shape) || dx[i]->dtype != in->dtype) {
                graph_error(g, v->at, JG_ERR_GRAD,
                            "jg_grad: internal: %s's gradient for operand %d is %s%s, "
                            "operand is %s%s", graph_op_name(v->op), i, jg_dtype_str(dx[i]->dtype),
                            FMT_SHAPE(a, dx[i]->shape), jg_dtype_str(in->dtype),
                            FMT_SHAPE(b, in->shape));
                break;
            }
            adj[in->id] = adj[in->id] ? jg_add(adj[in->id], dx[i]) : dx[i];
        }
        if (dx != stack_dx)
            free(dx);
        if (g->status != JG_OK)
            return g->status;
    }
    return g->status;
}

jg_status jg_grad(jg_graph *g, jg_node *output, jg_node *const *wrt, int n,
                  jg_node **grads_out)
{
    if (!g)
        return JG_ERR_ARG;
    if (g->status != JG_OK)
        return g->status;
    if (n < 0 || (n > 0 && (!wrt || !grads_out))) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_grad: wrt or grads_out is NULL, or n < 0");
        return JG_ERR_ARG;
    }
    if (!arg_ok(g, output, "output", 0))
        return g->status;
    for (int i = 0; i < n; i++) {
        grads_out[i] = NULL;
        if (!arg_ok(g, wrt[i], "wrt", i))
            return g->status;
    }
    if (output->dtype == JG_I32) {
        graph_error(g, output->at, JG_ERR_DTYPE,
                    "jg_grad: output is i32; gradients need a float output");
        return JG_ERR_DTYPE;
    }
    /* needs[id]: the node depends on some wrt node, so a gradient must flow into it. */
    int count = output->id + 1;
    bool *needs = calloc((size_t)count, sizeof *needs);
    jg_node **adj = calloc((size_t)count, sizeof *adj);
    if (!needs || !adj) {
        free(needs);
        free(adj);
        graph_error(g, (jg_loc){ 0 }, JG_ERR_NOMEM, "jg_grad: out of memory");
        return JG_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++)
        if (wrt[i]->id < count && wrt[i]->dtype != JG_I32 && !frozen(wrt[i]))
            needs[wrt[i]->id] = true;
    for (int id = 0; id < count; id++) {
        jg_node *v = g->nodes[id];
        if (v->dtype == JG_I32 || op_get(v->op)->no_grad)
            continue;
        for (int k = 0; k < v->n_in && !needs[id]; k++)
            needs[id] = needs[v->in[k]->id];
    }
    jg_status st = needs[output->id] ? backward(g, output, needs, adj) : JG_OK;
    if (st == JG_OK)
        for (int i = 0; i < n; i++)
            if (wrt[i]->id < count && needs[wrt[i]->id])
                grads_out[i] = adj[wrt[i]->id];
    free(needs);
    free(adj);
    return st;
}
