/* A sum of products is one product (pass "matmul_sum"). A weight used at every step of an
 * unrolled RNN gets as its gradient the sum, over the steps, of one small GEMM each:
 * dW = sum_t h_t^T dg_t, 28 GEMMs of K = batch for a 28-step sequence, each too small to
 * use the machine, plus 27 adds. Stacking the operands along K makes it one GEMM of
 * K = batch * steps:
 *
 *   before                                  after
 *   A1 B1 + A2 B2 + ... + An Bn             concat(A1..An, axis 1) concat(B1..Bn, axis 0)
 *   permute(X1) B1 + ... (A a transpose)    permute(concat(X1..Xn, axis 0)) concat(B1..Bn)
 *
 * The left operands stay a transposed view when every one is a transpose or a fill (the GEMM
 * reads through it; the concat of separate transposes would copy each one first);
 * the concat copies cost a pass over the operands, which the larger GEMM repays from about
 * four terms on. Only adds of one shape whose inner adds have no other consumer, and 2-D
 * float matmuls with no other consumer; other terms of the sum are added after. The sum's
 * order changes, so values may differ in the last bits. */
#include "compiler/pass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MIN_TERMS = 4, MAX_TERMS = 1024 };

typedef struct msum_state {
    const int *uses;     /* consumers of each old node */
    jg_node **consumer;  /* the only consumer when uses == 1 */
    jg_node **to;        /* old id -> its node in the new graph, as its consumers saw it */
    const jg_node **t;   /* a sum's terms (MAX_TERMS, reused by every sum) */
    jg_node **a, **b;    /* the stacked GEMM's left and right operands (MAX_TERMS each) */
    const jg_node **order; /* a candidate order of the products (MAX_TERMS) */
    const jg_graph *old; /* the graph being rewritten */
} msum_state;

/* An add of two operands of its own shape (no broadcasting). */
static bool plain_add(const jg_node *n)
{
    return n->op == JG_OP_ADD && shape_eq(n->in[0]->shape, n->shape) &&
           shape_eq(n->in[1]->shape, n->shape);
}

/* An add inside a larger sum: it has one consumer, a plain add of its shape. */
static bool inner_add(const msum_state *st, const jg_node *n)
{
    const jg_node *c = st->consumer[n->id];
    return plain_add(n) && st->uses[n->id] == 1 && c && plain_add(c);
}

static bool product(const msum_state *st, const jg_node *n)
{
    return n->op == JG_OP_MATMUL && n->shape.ndim == 2 && n->in[0]->shape.ndim == 2 &&
           st->uses[n->id] == 1 && (n->dtype == JG_F32 || n->dtype == JG_F64);
}

/* A left operand that is a transpose: a permute, or a fill (an RNN's first state). */
static bool transposed(const jg_node *a)
{
    return (a->op == JG_OP_PERMUTE && a->attr.list[0] == 1) || a->op == JG_OP_FILL;
}

/* The new-graph node whose transpose is the old left operand a. */
static jg_node *untransposed(const msum_state *st, jg_graph *g, const jg_node *a)
{
    if (a->op == JG_OP_PERMUTE)
        return st->to[a->in[0]->id];
    return jg_fill_(a->at, g, a->dtype, jg_shape(a->shape.dim[1], a->shape.dim[0]),
                    a->attr.scalar[0]);
}

/* The products p[0..n) in the order of an axis-0 concat of the old graph whose pieces are
 * exactly their right operands (an RNN's gate gradients, stacked by unslice_sum for the
 * input weights' gradient): stacked alike, the two concats are one buffer (jit/concat_place.c).
 * Unchanged when there is none. */
static void order_like_a_concat(const msum_state *st, const jg_node **p, int n)
{
    const jg_node **q = st->order;
    for (int id = 0; id < st->old->n_nodes; id++) {
        const jg_node *c = st->old->nodes[id];
        if (c->op != JG_OP_CONCAT || c->attr.axis != 0 || c->n_in != n || st->uses[id] == 0)
            continue;
        memcpy(q, p, (size_t)n * sizeof *q);
        bool match = true;
        for (int k = 0; k < n && match; k++) { /* move the product of piece k to place k */
            int i = k;
            while (i < n && q[i]->in[1] != c->in[k])
                i++;
            match = i < n;
            if (match) {
                const jg_node *x = q[k];
                q[k] = q[i], q[i] = x;
            }
        }
        if (match) {
            memcpy(p, q, (size_t)n * sizeof *p);
            return;
        }
    }
}

/* The terms of the sum rooted at n (old nodes), in order. false past MAX_TERMS. */
static bool terms_of(const msum_state *st, const jg_node *n, const jg_node **t, int *n_t)
{
    for (int k = 0; k < 2; k++) {
        const jg_node *x = n->in[k];
        if (inner_add(st, x)) {
            if (!terms_of(st, x, t, n_t))
                return false;
        } else if (*n_t < MAX_TERMS) {
            t[(*n_t)++] = x;
        } else {
            return false;
        }
    }
    return true;
}

static jg_node *msum_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    msum_state *st = state;
    for (int k = 0; k < n->n_in; k++)
        st->to[n->in[k]->id] = in[k];
    if (!plain_add(n) || inner_add(st, n))
        return NULL;
    const jg_node **t = st->t;
    jg_node **a = st->a, **b = st->b;
    int n_t = 0, n_p = 0;
    bool all_transposed = true;
    if (!terms_of(st, n, t, &n_t))
        return NULL;
    for (int i = 0; i < n_t; i++) {
        if (product(st, t[i])) {
            all_transposed &= transposed(t[i]->in[0]);
            n_p++;
        }
    }
    if (n_p < MIN_TERMS)
        return NULL;
    /* the products first (the other terms are added after), in a concat's order if any */
    int j = 0;
    for (int i = 0; i < n_t; i++)
        if (product(st, t[i])) {
            const jg_node *x = t[j];
            t[j++] = t[i], t[i] = x;
        }
    order_like_a_concat(st, t, n_p);
    for (j = 0; j < n_p; j++) {
        const jg_node *ai = t[j]->in[0];
        a[j] = all_transposed ? untransposed(st, g, ai) : st->to[ai->id];
        b[j] = st->to[t[j]->in[1]->id];
    }
    jg_node *left = jg_concat_(n->at, a, n_p, all_transposed ? 0 : 1);
    if (all_transposed)
        left = jg_permute_(n->at, left, jg_axes(1, 0));
    jg_node *r = jg_matmul_(n->at, left, jg_concat_(n->at, b, n_p, 0));
    for (int i = n_p; i < n_t; i++)
        r = jg_add_(n->at, r, st->to[t[i]->id]);
    return r;
}

bool pass_matmul_sum(pass_ctx *c)
{
    int n = c->g->n_nodes;
    int *uses = pass_use_counts(c);
    jg_node **consumer = uses ? pass_consumers(c, uses) : NULL;
    msum_state st = { .uses = uses, .consumer = consumer, .old = c->g,
                      .to = calloc((size_t)n + 1, sizeof *st.to),
                      .t = malloc(MAX_TERMS * sizeof *st.t),
                      .a = malloc(MAX_TERMS * sizeof *st.a),
                      .b = malloc(MAX_TERMS * sizeof *st.b),
                      .order = malloc(MAX_TERMS * sizeof *st.order) };
    bool changed = false;
    if (!uses || !consumer || !st.to || !st.t || !st.a || !st.b || !st.order) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "matmul_sum: out of memory");
        goto done;
    }
    bool any = false; /* a product inside a sum, else no rewrite */
    for (int id = 0; id < n && !any; id++) {
        const jg_node *x = c->g->nodes[id];
        any = uses[id] > 0 && product(&st, x) && consumer[id] && plain_add(consumer[id]);
    }
    if (any)
        changed = pass_rewrite(c, msum_rule, &st);
done:
    free(uses);
    free(consumer);
    free(st.to);
    free(st.t);
    free(st.a);
    free(st.b);
    free(st.order);
    return changed;
}
