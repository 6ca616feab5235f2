/* Sums of unslices become one concat (pass "unslice_sum"). A tensor read in slices along one
 * axis (an unrolled RNN reads its input sequence one step at a time) gets as its gradient the
 * sum of one unslice per slice: each a zero tensor of the whole shape with the slice's
 * gradient in its place. T steps write T whole tensors and add them, O(T^2) memory traffic
 * for what is one [B, T, I] tensor. When the slices are disjoint, that sum is the slices'
 * gradients and zeros laid side by side: one concat.
 *
 *   before                                    after
 *   add(unslice(a, axis, s..s+n), unslice(b,   concat(zeros, a, zeros, b, zeros) along axis
 *       axis, t..t+m)), disjoint
 *   add(concat of such pieces, unslice(...))  the concat with the piece put in its gap
 *
 * Only unslices that place a contiguous run (step 1) along one axis and keep every other axis
 * whole, only adds of equal shapes whose operands have no other consumer, and only where no
 * two pieces overlap. Exact: x + 0 = x (but for the sign of a zero). */
#include "compiler/pass.h"

#include <stdio.h>
#include <stdlib.h>

enum { MAX_PIECES = 256 };

/* A tensor of shape s as pieces along `axis`: [start, start + len) holds node (NULL: zeros). */
typedef struct pieces {
    int axis, n;
    int64_t start[MAX_PIECES], len[MAX_PIECES];
    jg_node *node[MAX_PIECES];
} pieces;

static void push(pieces *p, int64_t start, int64_t len, jg_node *node)
{
    if (len <= 0)
        return;
    if (!node && p->n && !p->node[p->n - 1]) { /* merge adjacent zeros */
        p->len[p->n - 1] += len;
        return;
    }
    p->start[p->n] = start;
    p->len[p->n] = len;
    p->node[p->n++] = node;
}

/* n (a node of the new graph) as pieces, if it is an unslice of one contiguous run along one
 * axis or a concat; false otherwise. */
static bool as_pieces(jg_node *n, pieces *p)
{
    jg_shape s = n->shape;
    p->n = 0;
    if (n->op == JG_OP_UNSLICE) {
        jg_shape part = n->in[0]->shape;
        int axis = -1;
        for (int k = 0; k < s.ndim; k++) {
            bool whole = n->attr.list[k] == 0 && part.dim[k] == s.dim[k];
            if (whole && (n->attr.step[k] == 1 || part.dim[k] == 1))
                continue;
            if (axis >= 0 || (n->attr.step[k] != 1 && part.dim[k] > 1) || n->attr.list[k] < 0)
                return false;
            axis = k;
        }
        if (axis < 0)
            return false;
        p->axis = axis;
        int64_t at = n->attr.list[axis], len = part.dim[axis];
        push(p, 0, at, NULL);
        push(p, at, len, n->in[0]);
        push(p, at + len, s.dim[axis] - at - len, NULL);
        return true;
    }
    if (n->op == JG_OP_CONCAT && n->n_in <= MAX_PIECES) {
        p->axis = n->attr.axis;
        int64_t at = 0;
        for (int i = 0; i < n->n_in; i++) {
            jg_node *x = n->in[i];
            int64_t len = x->shape.dim[p->axis];
            bool zeros = x->op == JG_OP_FILL && x->attr.scalar[0] == 0;
            push(p, at, len, zeros ? NULL : x);
            at += len;
        }
        return true;
    }
    return false;
}

/* Lays b's non-zero pieces into a's gaps; false when one overlaps a non-zero piece of a. */
static bool merge(pieces *a, const pieces *b, pieces *out)
{
    out->axis = a->axis;
    out->n = 0;
    /* every boundary of either, walked in order: at most one side is non-zero in each run */
    int i = 0, j = 0;
    int64_t at = 0, end = a->start[a->n - 1] + a->len[a->n - 1];
    while (at < end) {
        while (i < a->n && a->start[i] + a->len[i] <= at)
            i++;
        while (j < b->n && b->start[j] + b->len[j] <= at)
            j++;
        if (i >= a->n || j >= b->n)
            return false;
        int64_t stop_a = a->start[i] + a->len[i], stop_b = b->start[j] + b->len[j];
        int64_t stop = stop_a < stop_b ? stop_a : stop_b;
        jg_node *na = a->node[i], *nb = b->node[j];
        if (na && nb)
            return false; /* overlap: a real sum */
        jg_node *x = na ? na : nb;
        if (x) {
            /* a whole piece only: part of an operand would need a slice */
            if (at != (na ? a->start[i] : b->start[j]) || stop != (na ? stop_a : stop_b))
                return false;
        }
        if (out->n == MAX_PIECES)
            return false;
        push(out, at, stop - at, x);
        at = stop;
    }
    return true;
}

typedef struct state {
    const int *uses; /* by old node id */
} state;

static jg_node *unslice_sum_rule(void *st, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    const state *s = st;
    if (n->op != JG_OP_ADD || !shape_eq(in[0]->shape, n->shape) ||
        !shape_eq(in[1]->shape, n->shape) || in[0]->dtype != in[1]->dtype ||
        s->uses[n->in[0]->id] != 1 || s->uses[n->in[1]->id] != 1)
        return NULL;
    pieces a, b, out;
    if (!as_pieces(in[0], &a) || !as_pieces(in[1], &b) || a.axis != b.axis || a.n == 0 ||
        b.n == 0 || !merge(&a, &b, &out))
        return NULL;
    jg_node *parts[MAX_PIECES];
    for (int i = 0; i < out.n; i++) {
        if (out.node[i]) {
            parts[i] = out.node[i];
            continue;
        }
        jg_shape zs = n->shape;
        zs.dim[out.axis] = out.len[i];
        parts[i] = jg_fill_(n->at, g, n->dtype, zs, 0);
    }
    return out.n == 1 ? parts[0] : jg_concat_(n->at, parts, out.n, out.axis);
}

bool pass_unslice_sum(pass_ctx *c)
{
    int *uses = pass_use_counts(c);
    if (!uses) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "out of memory");
        return false;
    }
    state s = { uses };
    bool changed = pass_rewrite(c, unslice_sum_rule, &s);
    free(uses);
    return changed;
}
