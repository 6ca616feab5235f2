/* Linear chains (pass "linear_fold", evaluation programs): two matmuls with nothing but a
 * bias between them are one matmul by the product of their weights, when that costs fewer
 * FLOPs:
 *
 *     (x @ A + a) @ B + b  ->  x @ (A @ B) + (a @ B + b)        (rows: a linear layer)
 *     B @ (A @ x + a) + b  ->  (B @ A) @ x + (B @ a + b)        (columns: 1x1 convolutions)
 *
 * With R rows of x (every dim but the contracted one), I inputs, H hidden and O outputs, the
 * chain costs R*I*H + R*H*O multiply-adds and the folded form I*H*O + R*I*O (plus H*O for
 * a @ B against R*H for the bias on the hidden layer): it pays when H is wide and R is large
 * against O, e.g. a low-rank factorisation or a linear bottleneck without an activation.
 * A @ B is computed on every run (the weights live in the store; no compile-time constants).
 *
 * Conditions: A and B are single matrices (batch dims all 1); the biases vary along the
 * output dim only (a vector, not a per-row term); the first matmul and its bias have that
 * one consumer, so nothing else needs the hidden layer. Chains of three or more fold pair
 * by pair: the pass repeats while it changes something. */
#include "compiler/pass.h"

#include <stdlib.h>

/* One chain: first = matmul(x, A) (or (A, x) when left), hidden = first or first + a,
 * second = matmul(hidden, B) (or (B, hidden)), end = second or second + b. */
typedef struct lchain {
    const jg_node *first, *hidden, *second, *end;
    const jg_node *a, *b; /* the biases, or NULL */
    bool left;
} lchain;

typedef struct lin_state {
    jg_node **to;   /* old id -> its node in the new graph, as its consumers saw it */
    int *chain_at;  /* old id of a chain's end -> its chain, else -1 */
    lchain *chains;
} lin_state;

/* A matrix with batch dims all 1: one weight for every batch. */
static bool single_matrix(jg_shape s)
{
    return s.ndim >= 2 && jg_shape_numel(s) == s.dim[s.ndim - 2] * s.dim[s.ndim - 1];
}

/* Whether v, added to a matmul result r, varies along r's output dim only (columns for a
 * right chain, rows for a left one), so that it passes through the next matmul as a vector. */
static bool output_vector(const jg_node *v, const jg_node *r, bool left)
{
    int lead = r->shape.ndim - v->shape.ndim, axis = r->shape.ndim - (left ? 2 : 1);
    if (lead < 0 || v->dtype != r->dtype)
        return false;
    for (int d = 0; d < v->shape.ndim; d++)
        if (v->shape.dim[d] != 1 && d + lead != axis)
            return false;
    return true;
}

/* The bias added to r by its single consumer, or NULL (then *through is r). */
static const jg_node *bias_of(const jg_node *r, const int *uses, jg_node *const *consumer,
                              bool left, const jg_node **through)
{
    *through = r;
    const jg_node *c = consumer[r->id];
    if (uses[r->id] != 1 || !c) /* an output with no consumer counts one use */
        return NULL;
    if (c->op != JG_OP_ADD || c->in[0] == c->in[1] || !shape_eq(c->shape, r->shape))
        return NULL;
    const jg_node *v = c->in[c->in[0] == r ? 1 : 0];
    if (!output_vector(v, r, left))
        return NULL;
    *through = c;
    return v;
}

static double flops_saved(const lchain *ch)
{
    int side = ch->left ? 0 : 1; /* the weights' operand in both matmuls */
    jg_shape a = ch->first->in[side]->shape, b = ch->second->in[side]->shape;
    int ra = a.ndim, rb = b.ndim;
    /* right: A [I, H], B [H, O]; left: A [H, I], B [O, H] */
    double i = (double)a.dim[ch->left ? ra - 1 : ra - 2];
    double h = (double)a.dim[ch->left ? ra - 2 : ra - 1];
    double o = (double)b.dim[ch->left ? rb - 2 : rb - 1];
    double r = (double)jg_shape_numel(ch->first->shape) / h;
    double chain = r * i * h + r * h * o + (ch->a ? r * h : 0);
    double folded = i * h * o + r * i * o + (ch->a ? h * o : 0);
    return chain - folded;
}

/* Whether matmul `second` ends a foldable chain; fills ch. */
static bool find_chain(const jg_node *second, const int *uses, jg_node *const *consumer,
                       lchain *ch)
{
    for (int left = 0; left < 2; left++) {
        *ch = (lchain){ .second = second, .left = left };
        const jg_node *h = second->in[left ? 1 : 0], *w2 = second->in[left ? 0 : 1];
        const jg_node *first = h->op == JG_OP_ADD ? NULL : h;
        if (h->op == JG_OP_ADD && uses[h->id] == 1 && h->in[0] != h->in[1])
            for (int k = 0; k < 2 && !first; k++)
                if (h->in[k]->op == JG_OP_MATMUL && shape_eq(h->in[k]->shape, h->shape) &&
                    output_vector(h->in[1 - k], h->in[k], left)) {
                    first = h->in[k];
                    ch->a = h->in[1 - k];
                }
        if (!first || first->op != JG_OP_MATMUL || uses[first->id] != 1 || uses[h->id] != 1)
            continue;
        const jg_node *w1 = first->in[left ? 0 : 1];
        if (!single_matrix(w1->shape) || !single_matrix(w2->shape))
            continue;
        ch->first = first;
        ch->hidden = h;
        ch->b = bias_of(second, uses, consumer, left, &ch->end);
        if (flops_saved(ch) > 0)
            return true;
    }
    return false;
}

/* The vector v as a matrix along the output dim: [1, n] for a right chain, [n, 1] left. */
static jg_node *as_matrix(jg_loc at, jg_node *v, bool left)
{
    int64_t n = jg_shape_numel(v->shape);
    return jg_reshape_(at, v, left ? jg_shape(n, 1) : jg_shape(1, n));
}

static jg_node *fold(const lin_state *st, const lchain *ch)
{
    jg_loc at = ch->second->at;
    int side = ch->left ? 0 : 1;
    jg_node *x = st->to[ch->first->in[1 - side]->id];
    jg_node *w1 = st->to[ch->first->in[side]->id], *w2 = st->to[ch->second->in[side]->id];
    jg_node *w = ch->left ? jg_matmul_(at, w2, w1) : jg_matmul_(at, w1, w2);
    jg_node *y = ch->left ? jg_matmul_(at, w, x) : jg_matmul_(at, x, w);
    jg_node *c = NULL;
    if (ch->a) {
        jg_node *a = as_matrix(at, st->to[ch->a->id], ch->left);
        c = ch->left ? jg_matmul_(at, w2, a) : jg_matmul_(at, a, w2);
    }
    if (ch->b)
        c = c ? jg_add_(at, c, st->to[ch->b->id]) : st->to[ch->b->id];
    if (c)
        y = jg_add_(at, y, c);
    /* w1, w2 have batch dims of 1 only, so y has end's shape; should a broadcast of the
     * biases say otherwise, the chain stays as it was */
    return shape_eq(y->shape, ch->end->shape) ? y : NULL;
}

static jg_node *fold_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    (void)g;
    lin_state *st = state;
    for (int k = 0; k < n->n_in; k++)
        st->to[n->in[k]->id] = in[k];
    int ci = st->chain_at[n->id];
    return ci < 0 ? NULL : fold(st, &st->chains[ci]);
}

/* One rewrite folding the chains that do not overlap; whether it changed the graph. */
static bool fold_once(pass_ctx *c)
{
    const jg_graph *g = c->g;
    int n = g->n_nodes, n_chains = 0;
    int *uses = pass_use_counts(c);
    jg_node **consumer = uses ? pass_consumers(c, uses) : NULL;
    bool *taken = calloc((size_t)n + 1, sizeof *taken);
    lin_state st = { .to = calloc((size_t)n + 1, sizeof *st.to),
                     .chain_at = malloc(((size_t)n + 1) * sizeof *st.chain_at),
                     .chains = malloc(((size_t)n + 1) * sizeof *st.chains) };
    bool changed = false;
    if (!uses || !consumer || !taken || !st.to || !st.chain_at || !st.chains) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "linear_fold: out of memory");
        goto done;
    }
    for (int id = 0; id < n; id++)
        st.chain_at[id] = -1;
    for (int id = 0; id < n; id++) {
        lchain *ch = &st.chains[n_chains];
        if (uses[id] == 0 || g->nodes[id]->op != JG_OP_MATMUL ||
            !find_chain(g->nodes[id], uses, consumer, ch))
            continue;
        /* a chain whose hidden layer is another's result waits for the next round */
        const jg_node *own[] = { ch->first, ch->hidden, ch->second, ch->end };
        bool overlaps = false;
        for (int k = 0; k < 4; k++)
            overlaps |= taken[own[k]->id];
        if (overlaps)
            continue;
        for (int k = 0; k < 4; k++)
            taken[own[k]->id] = true;
        st.chain_at[ch->end->id] = n_chains++;
    }
    if (n_chains > 0)
        changed = pass_rewrite(c, fold_rule, &st);
done:
    free(uses);
    free(consumer);
    free(taken);
    free(st.to);
    free(st.chain_at);
    free(st.chains);
    return changed;
}

bool pass_linear_fold(pass_ctx *c)
{
    if (c->train) /* gradients need the hidden layer */
        return false;
    bool changed = false;
    for (int round = 0; round < 8 && c->status == JG_OK && fold_once(c); round++)
        changed = true;
    return changed;
}
