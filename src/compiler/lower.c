/* Lowering a user's graph to the program graph the compiler works on: the nodes the roots
 * need, copied into a private graph, with composite ops (mean, softmax, losses, ...) replaced
 * by their decompositions and train/eval choices resolved for the program's mode. The graph
 * passes (src/compiler/pipeline.c) take it from there. The user's graph is never
 * modified by compiling. Parameters keep their store index, so kernels read and write the
 * user's store. */
#include "compiler/lower.h"
#include "compiler/pass.h"

#include <stdlib.h>

static bool no_flow(const jg_node *n)
{
    return n->op == JG_OP_FILL && n->attr.count == FILL_NO_FLOW;
}

static bool is_zero(const jg_node *n)
{
    return n->op == JG_OP_FILL && n->attr.scalar[0] == 0;
}

/* x (an operand of n) as n's shape. */
static jg_node *as_result(jg_node *x, const jg_node *n)
{
    return shape_eq(x->shape, n->shape) ? x : jg_broadcast_to(x, n->shape);
}

/* What a gradient that does not flow (the unpicked operand of a mode, see FILL_NO_FLOW)
 * feeds: gradients are linear in it, so a product, a view or a reduction of it does not flow
 * either, and a sum with it is the other term. NULL where n is computed as usual (the fill is
 * a real zero, so that stays right, only slower). */
static jg_node *drop_no_flow(jg_graph *g, const jg_node *n, jg_node *const *in)
{
    bool a = n->n_in > 0 && no_flow(in[0]), b = n->n_in > 1 && no_flow(in[1]);
    bool dead = false;
    switch (n->op) {
    case JG_OP_ADD:
        if (a != b)
            return as_result(a ? in[1] : in[0], n);
        dead = a;
        break;
    case JG_OP_SUB:
        if (a != b)
            return as_result(b ? in[0] : jg_neg(in[1]), n);
        dead = a;
        break;
    case JG_OP_MUL: case JG_OP_MATMUL:
        dead = a || b;
        break;
    case JG_OP_DIV: case JG_OP_NEG: case JG_OP_SUM: case JG_OP_MEAN: case JG_OP_RESHAPE:
    case JG_OP_PERMUTE: case JG_OP_BROADCAST: case JG_OP_SLICE: case JG_OP_UNSLICE:
    case JG_OP_CAST: case JG_OP_STOP_GRADIENT: case JG_OP_TAKE: case JG_OP_SCATTER_ADD:
        dead = a;
        break;
    case JG_OP_PAD:
        dead = a && n->attr.scalar[0] == 0;
        break;
    case JG_OP_WHERE: /* where's own gradient puts dy beside a plain zero */
        dead = (no_flow(in[1]) || is_zero(in[1])) && (no_flow(in[2]) || is_zero(in[2])) &&
               (no_flow(in[1]) || no_flow(in[2]));
        break;
    case JG_OP_MAX_POOL2D_GRAD:
        dead = b; /* (x, dy) */
        break;
    case JG_OP_CONCAT:
        dead = true;
        for (int k = 0; k < n->n_in; k++)
            dead &= no_flow(in[k]);
        break;
    default:
        break;
    }
    if (!dead)
        return NULL;
    jg_node *z = jg_fill(g, n->dtype, n->shape, 0);
    if (!node_poisoned(z))
        z->attr.count = FILL_NO_FLOW;
    return z;
}

/* Composite ops become their decompositions (which must be primitives); a mode node becomes
 * the operand the program's mode picks; what only a gradient that does not flow feeds is
 * dropped. */
static jg_node *lower_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    bool train = *(const bool *)state;
    if (n->op == JG_OP_MODE)
        return in[train ? 0 : 1];
    jg_node *dropped = drop_no_flow(g, n, in);
    if (dropped)
        return dropped;
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
