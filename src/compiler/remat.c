/* Views recomputed by each consumer (pass "remat", for rematerialise). The fuser gives a node
 * with several consumers a buffer of its own: right for a value that costs something to
 * compute, wasteful for a slice or a broadcast, which computes nothing. Inline, a view is
 * index arithmetic in its consumer's loop; as a buffer it is a kernel, a write and a read.
 * An LSTM step slices its four gates out of one [B, 4H] block and reads each gate in the
 * forward cell and again in the backward pass: one kernel per shared slice, ~5 a step.
 *
 *   before                              after
 *   v = slice(x)   (x a buffer anyway)  a(slice(x), ...), b(slice(x), ...), matmul(v, w)
 *   a(v, ...), b(v, ...), matmul(v, w)  (each pointwise or reducing consumer its own copy)
 *
 * Only consumers that read operands inline (pointwise ops, reductions) get a copy; the others
 * (matmul, opaque ops) read buffers and share the original, which disappears when none is
 * left. Only views of a value that has a buffer anyway (a leaf, a matmul, a reduction, an
 * opaque op, a reshape, or a node with other consumers): a copy must not turn an inline
 * expression into a new buffer. Exact: the same values are read. */
#include "compiler/pass.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct remat_state {
    const int *uses; /* consumers of each old node */
} remat_state;

static bool reads_inline(const jg_node *n)
{
    return op_is_pointwise(n) || op_get(n->op)->kind == KIND_REDUCE;
}

/* x (old graph) will be a buffer whatever its consumers do. */
static bool buffer_anyway(const remat_state *st, const jg_node *x)
{
    op_kind k = op_get(x->op)->kind;
    return st->uses[x->id] > 1 || k == KIND_LEAF || k == KIND_REDUCE || k == KIND_OPAQUE ||
           k == KIND_CONTRACTION || x->op == JG_OP_RESHAPE;
}

static bool shared_view(const remat_state *st, const jg_node *v)
{
    return (v->op == JG_OP_SLICE || v->op == JG_OP_BROADCAST) && st->uses[v->id] > 1 &&
           buffer_anyway(st, v->in[0]);
}

static jg_node *remat_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    const remat_state *st = state;
    enum { MAX_IN = 8 }; /* pointwise ops take at most 3, reductions 1 */
    if (!reads_inline(n) || n->n_in > MAX_IN)
        return NULL;
    jg_node *own[MAX_IN];
    bool any = false;
    for (int k = 0; k < n->n_in; k++) {
        own[k] = in[k];
        if (shared_view(st, n->in[k])) {
            own[k] = pass_copy(g, in[k], in[k]->in);
            any = true;
        }
    }
    return any ? pass_copy(g, n, own) : NULL;
}

bool pass_remat(pass_ctx *c)
{
    int *uses = pass_use_counts(c);
    if (!uses) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "remat: out of memory");
        return false;
    }
    remat_state st = { .uses = uses };
    bool any = false;
    for (int id = 0; id < c->g->n_nodes && !any; id++)
        any = uses[id] > 0 && shared_view(&st, c->g->nodes[id]);
    bool changed = any && pass_rewrite(c, remat_rule, &st);
    free(uses);
    return changed;
}
