/* Batchnorm folding (pass "bn_fold", evaluation programs): a per-channel affine map applied
 * to a matmul's result is folded into the matmul's weight and one bias:
 *
 *     ((x @ W + b) - m) * r * g + beta  ->  x @ (W * s) + t,   s = r * g,
 *                                                            t = (b - m) * r * g + beta
 *
 * That is batchnorm's evaluation branch (x - running_mean) * rsqrt(running_var + eps) *
 * gamma + beta after a conv or a linear layer, with its bias; any chain of additions,
 * subtractions, products and divisions by per-channel values folds the same way. The
 * channel is the output column when W is the right operand (a linear layer) and the output
 * row when it is the left one (conv's [O, C*KH*KW] kernel matrix); the chain may pass a
 * reshape (conv's [N,1,O,OH*OW] -> [N,O,OH,OW]), its operands seen through it (reframe.h).
 *
 * s and t are graph expressions over the parameters, computed on every run: an evaluation
 * program shares the store with training, so they are no compile-time constants. The affine
 * over every activation becomes a kernel over the weights, one over the channels, and one
 * addition in the GEMM's store.
 *
 * Conditions: W is computed from parameters and constants only and the other operand from
 * the data (so the per-channel operands, also data-free, cannot depend on the matmul); each
 * node from the matmul to the chain's last op has that one consumer; the chain scales (a
 * bias alone is already in the GEMM's store); and scaling W touches fewer elements than the
 * matmul's result (numel(W) < numel(x @ W)), else the affine in the store is cheaper. */
#include "compiler/pass.h"
#include "compiler/reframe.h"

#include <stdlib.h>

enum { MAX_STEPS = 16 };

/* One op of the chain: node = op(chain value, operand) with the chain value at pos. */
typedef struct step {
    const jg_node *node, *operand;
    int pos;
    jg_shape q; /* the operand's shape against the matmul's result */
} step;

typedef struct chain {
    const jg_node *mm;
    int side; /* the weight: mm->in[side] */
    jg_shape cs; /* the matmul's shape, 1 outside the channel dims */
    int n_steps;
    step steps[MAX_STEPS];
} chain;

typedef struct fold_state {
    jg_node **to;   /* old id -> its node in the new graph, as its consumers saw it */
    int *chain_at;  /* old id of a chain's last op -> its chain, else -1 */
    chain *chains;
} fold_state;

static bool is_float(jg_dtype t) { return t == JG_F32 || t == JG_F64; }

/* data[id]: node id depends on an input or a random draw. */
static bool *data_dependent(const jg_graph *g)
{
    bool *data = calloc((size_t)g->n_nodes + 1, sizeof *data);
    for (int id = 0; data && id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        data[id] = n->op == JG_OP_INPUT || n->op == JG_OP_RANDOM;
        for (int k = 0; k < n->n_in; k++)
            data[id] |= data[n->in[k]->id];
    }
    return data;
}

/* Whether the weight mm->in[side] can take a scale over the channel dims (bit d of dims:
 * dim d of the result varies): never along the contracted operand's dims (the result's row
 * for a right weight, its column for a left one), and along a batch dim only where the
 * weight has that dim whole. */
static bool weight_takes(const jg_node *mm, int side, uint32_t dims)
{
    jg_shape s = mm->shape, w = mm->in[side]->shape;
    int r = s.ndim;
    if (dims & (1u << (side == 1 ? r - 2 : r - 1)))
        return false;
    for (int d = 0; d < r - 2; d++) {
        int e = d - (r - w.ndim);
        if ((dims & (1u << d)) && (e < 0 || w.dim[e] != s.dim[d]))
            return false;
    }
    return true;
}

/* Follows the single consumers of matmul mm through per-channel ops and reshapes; fills ch
 * and returns whether the chain folds. */
static bool find_chain(const jg_node *mm, const int *uses, jg_node *const *consumer,
                       const bool *data, chain *ch)
{
    *ch = (chain){ .mm = mm };
    if (!is_float(mm->dtype))
        return false;
    const jg_node *cur = mm;
    bool scales = false;
    uint32_t dims = 0;
    /* one use and a consumer: no output (an output with no consumer counts one use) */
    while (ch->n_steps < MAX_STEPS && uses[cur->id] == 1 && consumer[cur->id]) {
        const jg_node *c = consumer[cur->id];
        if (c->op == JG_OP_RESHAPE) {
            cur = c;
            continue;
        }
        bool affine = c->op == JG_OP_ADD || c->op == JG_OP_SUB || c->op == JG_OP_MUL ||
                      c->op == JG_OP_DIV;
        if (!affine || c->in[0] == c->in[1] || !shape_eq(c->shape, cur->shape))
            break;
        int pos = c->in[0] == cur ? 0 : 1;
        const jg_node *p = c->in[1 - pos];
        step st = { c, p, pos, { 0 } };
        if ((c->op == JG_OP_DIV && pos == 1) || data[p->id] || p->dtype != c->dtype ||
            !reframe_shape(p->shape, cur->shape, mm->shape, &st.q))
            break;
        for (int d = 0; d < st.q.ndim; d++)
            dims |= st.q.dim[d] > 1 ? 1u << d : 0;
        scales |= c->op == JG_OP_MUL || c->op == JG_OP_DIV;
        ch->steps[ch->n_steps++] = st;
        cur = c;
    }
    /* trailing steps that only add stay where they are: nothing scales after them */
    if (!scales)
        return false;
    for (int side = 0; side < 2; side++) {
        const jg_node *w = mm->in[side];
        if (!data[w->id] && data[mm->in[1 - side]->id] && weight_takes(mm, side, dims) &&
            jg_shape_numel(w->shape) < jg_shape_numel(mm->shape)) {
            ch->side = side;
            ch->cs = mm->shape;
            for (int d = 0; d < ch->cs.ndim; d++)
                if (!(dims & (1u << d)))
                    ch->cs.dim[d] = 1;
            return true;
        }
    }
    return false;
}

/* The operand p (of shape q against the matmul) as a vector over the channels [nc], or a
 * scalar, rebuilt over its leaves: s and t are computed over nc elements whatever the
 * layout. t is reshaped into the GEMM's frame once, so it gets a small kernel of its own
 * rather than being recomputed in the GEMM's store; s is rebuilt over the weight's frame
 * and computed inline by the kernel that scales the weight. */
static jg_node *per_channel(jg_loc at, jg_node *p, jg_shape q, jg_shape cs)
{
    int64_t nc = jg_shape_numel(cs);
    if (jg_shape_numel(q) == 1)
        return reframe_node(at, p, JG_SCALAR);
    if (!shape_eq(q, cs)) /* varies over some of the channel dims only */
        p = jg_broadcast_to_(at, reframe_node(at, p, q), cs);
    return reframe_node(at, p, jg_shape(nc));
}

/* The replacement of the chain's last op: x @ (W * s) + t, reshaped to its shape. */
static jg_node *fold(const fold_state *st, const chain *ch, const jg_node *end)
{
    const jg_node *mm = ch->mm;
    jg_loc at = end->at;
    jg_node *s = NULL, *t = NULL;
    for (int i = 0; i < ch->n_steps; i++) {
        const step *sp = &ch->steps[i];
        jg_node *p = per_channel(at, st->to[sp->operand->id], sp->q, ch->cs);
        switch (sp->node->op) {
        case JG_OP_ADD:
            t = t ? jg_add_(at, t, p) : p;
            break;
        case JG_OP_SUB:
            if (sp->pos == 0) {
                t = t ? jg_sub_(at, t, p) : jg_neg_(at, p);
            } else { /* p - (x s + t) = x (-s) + (p - t) */
                s = s ? jg_neg_(at, s) : jg_scalar_(at, p->graph, p->dtype, -1);
                t = t ? jg_sub_(at, p, t) : p;
            }
            break;
        case JG_OP_MUL:
            s = s ? jg_mul_(at, s, p) : p;
            t = t ? jg_mul_(at, t, p) : NULL;
            break;
        default: /* JG_OP_DIV, the chain value divided */
            s = s ? jg_div_(at, s, p) : jg_div_(at, jg_scalar_(at, p->graph, p->dtype, 1), p);
            t = t ? jg_div_(at, t, p) : NULL;
            break;
        }
    }
    jg_node *w = st->to[mm->in[ch->side]->id], *x = st->to[mm->in[1 - ch->side]->id];
    if (s->shape.ndim > 0) { /* s over the weight's dims: 1 along the contracted one */
        jg_shape sw = w->shape;
        for (int i = 0; i < sw.ndim; i++) {
            bool contracted = i == (ch->side ? sw.ndim - 2 : sw.ndim - 1);
            sw.dim[i] = contracted ? 1 : ch->cs.dim[i + mm->shape.ndim - sw.ndim];
        }
        s = reframe_node(at, s, sw); /* recomputed per weight: no kernel of its own */
    }
    w = jg_mul_(at, w, s);
    jg_node *y = ch->side ? jg_matmul_(mm->at, x, w) : jg_matmul_(mm->at, w, x);
    if (t)
        y = jg_add_(at, y, t->shape.ndim ? jg_reshape_(at, t, ch->cs) : t);
    return shape_eq(y->shape, end->shape) ? y : jg_reshape_(at, y, end->shape);
}

static jg_node *fold_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    (void)g;
    fold_state *st = state;
    for (int k = 0; k < n->n_in; k++)
        st->to[n->in[k]->id] = in[k];
    int ci = st->chain_at[n->id];
    return ci < 0 ? NULL : fold(st, &st->chains[ci], n);
}

bool pass_bn_fold(pass_ctx *c)
{
    if (c->train) /* batch statistics there, and gradients need the chain */
        return false;
    const jg_graph *g = c->g;
    int n = g->n_nodes, n_chains = 0;
    int *uses = pass_use_counts(c);
    bool *data = data_dependent(g);
    jg_node **consumer = uses ? pass_consumers(c, uses) : NULL;
    fold_state st = { .to = calloc((size_t)n + 1, sizeof *st.to),
                      .chain_at = malloc(((size_t)n + 1) * sizeof *st.chain_at) };
    int n_mm = 0;
    for (int id = 0; id < n; id++)
        n_mm += g->nodes[id]->op == JG_OP_MATMUL;
    st.chains = malloc(((size_t)n_mm + 1) * sizeof *st.chains);
    bool changed = false;
    if (!uses || !data || !consumer || !st.to || !st.chain_at || !st.chains) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "bn_fold: out of memory");
        goto done;
    }
    for (int id = 0; id < n; id++)
        st.chain_at[id] = -1;
    for (int id = 0; id < n; id++) {
        chain *ch = &st.chains[n_chains];
        if (uses[id] > 0 && g->nodes[id]->op == JG_OP_MATMUL &&
            find_chain(g->nodes[id], uses, consumer, data, ch))
            st.chain_at[ch->steps[ch->n_steps - 1].node->id] = n_chains++;
    }
    if (n_chains > 0)
        changed = pass_rewrite(c, fold_rule, &st);
done:
    free(uses);
    free(data);
    free(consumer);
    free(st.to);
    free(st.chain_at);
    free(st.chains);
    return changed;
}
