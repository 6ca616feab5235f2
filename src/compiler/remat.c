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
 * expression into a new buffer.
 *
 * The same holds for a small pointwise expression (at most MAX_TREE ops, e.g. tanh(c), or
 * 2 s - 1 of a gate) over such buffers whose every consumer reads inline and which is no
 * output: each consumer computes it again rather than read it from a kernel of its own
 * (XLA's fusion duplicates cheap ops the same way). Its operands must not be copied
 * themselves, so copies never nest. Exact: the same operations on the same values. */
#include "compiler/pass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TREE = 2 };

typedef struct remat_state {
    const int *uses;   /* consumers of each old node */
    bool *inline_only; /* every consumer reads it inline, and it is no output */
    bool *copied;      /* a small expression each consumer computes again */
    jg_node **to;      /* old id -> its node in the new graph, as its consumers saw it */
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

enum { MAX_IN = 8 }; /* pointwise ops take at most 3, reductions 1 */

/* A leaf of a copied expression: a buffer that stays one. */
static bool stays_buffer(const remat_state *st, const jg_node *x)
{
    return buffer_anyway(st, x) && !st->copied[x->id];
}

/* An op worth computing again: a few instructions, no transcendental function (which
 * costs dozens) and no random stream. */
static bool cheap(const jg_node *x)
{
    switch (x->op) {
    case JG_OP_EXP: case JG_OP_LOG: case JG_OP_TANH: case JG_OP_SIGMOID: case JG_OP_SOFTPLUS:
    case JG_OP_ELU: case JG_OP_POW: case JG_OP_RANDOM:
        return false;
    default:
        return true;
    }
}

/* Ops of the inline expression of pointwise x down to buffers, or -1 when it is not one or
 * has more than `budget` ops (the walk stops there). */
static int tree_size(const remat_state *st, const jg_node *x, int budget)
{
    if (budget < 1 || !op_is_pointwise(x) || !cheap(x) || x->n_in > MAX_IN)
        return -1;
    int size = 1;
    for (int k = 0; k < x->n_in; k++) {
        const jg_node *y = x->in[k];
        if (stays_buffer(st, y) || shared_view(st, y) ||
            ((y->op == JG_OP_SLICE || y->op == JG_OP_BROADCAST) && stays_buffer(st, y->in[0])))
            continue; /* a buffer, or a view of one: no op */
        int sub = st->uses[y->id] == 1 ? tree_size(st, y, budget - size) : -1;
        if (sub < 0)
            return -1;
        size += sub;
    }
    return size;
}

/* A fresh copy in g of old node x: copied expressions rebuilt op by op, shared views
 * copied, anything else its image. */
static jg_node *fresh(const remat_state *st, jg_graph *g, const jg_node *x, bool top)
{
    jg_node *img = st->to[x->id];
    if (shared_view(st, x))
        return pass_copy(g, img, img->in);
    if (!top && stays_buffer(st, x))
        return img;
    jg_node *ins[MAX_IN];
    for (int k = 0; k < x->n_in; k++)
        ins[k] = fresh(st, g, x->in[k], false);
    return pass_copy(g, x, ins);
}

static jg_node *remat_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    const remat_state *st = state;
    for (int k = 0; k < n->n_in; k++)
        st->to[n->in[k]->id] = in[k];
    if (!reads_inline(n) || n->n_in > MAX_IN)
        return NULL;
    jg_node *own[MAX_IN];
    bool any = false;
    for (int k = 0; k < n->n_in; k++) {
        const jg_node *x = n->in[k];
        own[k] = in[k];
        if (shared_view(st, x) || st->copied[x->id]) {
            own[k] = fresh(st, g, x, true);
            any = true;
        }
    }
    return any ? pass_copy(g, n, own) : NULL;
}

bool pass_remat(pass_ctx *c)
{
    jg_graph *g = c->g;
    int n = g->n_nodes;
    int *uses = pass_use_counts(c);
    remat_state st = { .uses = uses, .inline_only = malloc((size_t)n + 1),
                       .copied = calloc((size_t)n + 1, 1),
                       .to = calloc((size_t)n + 1, sizeof *st.to) };
    bool changed = false;
    if (!uses || !st.inline_only || !st.copied || !st.to) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "remat: out of memory");
        goto done;
    }
    memset(st.inline_only, 1, (size_t)n + 1);
    for (int id = 0; id < n; id++)
        for (int k = 0; uses[id] > 0 && k < g->nodes[id]->n_in; k++)
            if (!reads_inline(g->nodes[id]))
                st.inline_only[g->nodes[id]->in[k]->id] = false;
    for (int i = 0; i < c->n_roots + c->n_keep; i++)
        st.inline_only[c->roots[i]->id] = false;
    bool any = false;
    for (int id = 0; id < n; id++) { /* operands first: a copy's leaves are never copies */
        const jg_node *x = g->nodes[id];
        st.copied[id] = uses[id] > 1 && st.inline_only[id] && tree_size(&st, x, MAX_TREE) > 0;
        any |= st.copied[id] || (uses[id] > 0 && shared_view(&st, x));
    }
    changed = any && pass_rewrite(c, remat_rule, &st);
done:
    free(uses);
    free(st.inline_only);
    free(st.copied);
    free(st.to);
    return changed;
}
