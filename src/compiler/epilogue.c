/* Epilogues through a reshape (pass "epilogue"): a pointwise op applied to a reshaped matmul
 * result is moved ahead of the reshape, its other operands seen through it (reframe.h), so
 * the fuser can put it into the GEMM's store:
 *
 *     relu(reshape(x @ W + b, [N,O,OH,OW]))  ->  reshape(relu(x @ W + b), [N,O,OH,OW])
 *
 * conv2d is a matmul to [N,1,O,OH*OW] and a reshape to NCHW (the same memory), so whatever
 * follows a convolution (its activation, batchnorm's affine in evaluation programs, the
 * bias of a folded batchnorm) was a pass over the activations of its own; moved here, it
 * costs the GEMM nothing but the arithmetic in its store.
 *
 * Only what the fuser can then take: a reshape with one consumer, of a matmul with one
 * consumer (or of a chain of such pointwise ops over one, of the matmul's shape), applied
 * to an op of the reshape's shape whose other operands span or skip each group of
 * dimensions the reshape merges (a per-channel [1,C,1,1] does; a per-column [1,W] against
 * [N,C,H,W] merged to H*W does not). Applies to every program. */
#include "compiler/pass.h"
#include "compiler/reframe.h"

#include <stdlib.h>

typedef struct epi_state {
    const int *uses;  /* consumers of each old node */
    jg_node **to;     /* old id -> its node in the new graph, as its consumers saw it */
    jg_node **sunk;   /* old id -> the op it became ahead of the reshape, else NULL */
} epi_state;

/* Whether old node r is a matmul, or a pointwise op over one of its own shape, each with
 * one consumer: the root of a kernel the fuser would give a GEMM. */
static bool ends_matmul(const epi_state *st, const jg_node *r, int depth)
{
    if (r->op == JG_OP_MATMUL)
        return true;
    if (depth > 16 || !op_is_pointwise(r))
        return false;
    for (int k = 0; k < r->n_in; k++) {
        const jg_node *x = r->in[k];
        if (st->uses[x->id] == 1 && shape_eq(x->shape, r->shape) &&
            (st->sunk[x->id] || ends_matmul(st, x, depth + 1)))
            return true;
    }
    return false;
}

/* Operand k of old node n as a matmul chain ahead of a reshape: its new node, or NULL. */
static jg_node *behind_reshape(const epi_state *st, const jg_node *n, int k)
{
    const jg_node *o = n->in[k];
    if (st->uses[o->id] != 1 || !shape_eq(o->shape, n->shape))
        return NULL;
    if (st->sunk[o->id])
        return st->sunk[o->id];
    if (o->op == JG_OP_RESHAPE && st->uses[o->in[0]->id] == 1 && ends_matmul(st, o->in[0], 0))
        return st->to[o->in[0]->id];
    return NULL;
}

/* Whether operand shape p broadcasts against the new frame as q says already (q is p with
 * leading ones): a scalar or a trailing vector stays as it is. */
static bool already(jg_shape p, jg_shape q)
{
    int lead = q.ndim - p.ndim;
    for (int d = 0; d < q.ndim; d++)
        if (lead < 0 || q.dim[d] != (d < lead ? 1 : p.dim[d - lead]))
            return false;
    return true;
}

static jg_node *epilogue_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    (void)g;
    epi_state *st = state;
    for (int k = 0; k < n->n_in; k++)
        st->to[n->in[k]->id] = in[k];
    if (!op_is_pointwise(n) || n->n_in > 3)
        return NULL;
    int k0 = -1;
    jg_node *u = NULL;
    for (int k = 0; k < n->n_in && !u; k++)
        if ((u = behind_reshape(st, n, k)))
            k0 = k;
    if (!u)
        return NULL;
    jg_node *ops[3];
    for (int k = 0; k < n->n_in; k++) {
        jg_shape q;
        if (k == k0)
            ops[k] = u;
        else if (!reframe_shape(n->in[k]->shape, n->shape, u->shape, &q))
            return NULL;
        else if (already(in[k]->shape, q))
            ops[k] = in[k];
        else
            /* a small operand is rebuilt over its leaves (it stays an inline expression);
             * a full one is read through a reshape of its buffer, never computed twice */
            ops[k] = jg_shape_numel(q) < jg_shape_numel(u->shape) ? reframe_node(n->at, in[k], q)
                                                                  : jg_reshape_(n->at, in[k], q);
    }
    jg_node *m = op_build(n->at, n->op, ops, n->n_in, &n->attr);
    if (node_poisoned(m) || !shape_eq(m->shape, u->shape))
        return NULL;
    st->sunk[n->id] = m;
    return jg_reshape_(n->at, m, n->shape);
}

bool pass_epilogue(pass_ctx *c)
{
    int n = c->g->n_nodes;
    int *uses = pass_use_counts(c);
    epi_state st = { .uses = uses, .to = calloc((size_t)n + 1, sizeof *st.to),
                     .sunk = calloc((size_t)n + 1, sizeof *st.sunk) };
    bool changed = false, any = false;
    if (!uses || !st.to || !st.sunk) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "epilogue: out of memory");
        goto done;
    }
    for (int id = 0; id < n && !any; id++) { /* a reshaped GEMM result, else no rewrite */
        const jg_node *r = c->g->nodes[id];
        any = r->op == JG_OP_RESHAPE && uses[id] == 1 && uses[r->in[0]->id] == 1 &&
              ends_matmul(&st, r->in[0], 0);
    }
    if (any)
        changed = pass_rewrite(c, epilogue_rule, &st);
done:
    free(uses);
    free(st.to);
    free(st.sunk);
    return changed;
}
