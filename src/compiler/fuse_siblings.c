/* Sibling fusion: after pass_fuse, a reduction over some but not all axes (a column sum such
 * as a bias gradient, channel statistics of NCHW data) and the pointwise groups over its
 * input's shape that feed it, consume what feeds it, read the same input, or reduce the same
 * space, become one kernel: the input is streamed once, row by row, every elementwise result
 * stored as it passes. relu(x*a+b)'s forward and backward (y, dx, da, db) is one pass; so are
 * a channel's sum and sum of squares, and batchnorm's backward sums of dz and dz * x_hat.
 *
 * Legality: every member of a merged group is pointwise over the common shape S (or a
 * one-element value), so each is evaluated at the point's own index and shared values are
 * computed once; reductions share the reduced axes, and no part reads a reduction's result
 * (complete only after the last row); the merged kernel runs where its last
 * part ran, so no group between the first and the last part may read a part's result. A
 * part's result that only other parts read, and that is no output, is never stored. */
#include "compiler/fuse.h"
#include "ops/op.h"

#include <stdlib.h>

/* Pointwise, counting fills (computed inline wherever they are read). */
static bool pointwise(const jg_node *n)
{
    return op_is_pointwise(n) || n->op == JG_OP_FILL;
}

/* A multi kernel keeps a partial output per block of 16 rows (emit_multi): worth it only when
 * each output element sums at least that many inputs. Pooling windows (2x2: 4) are not. */
enum { MIN_TERMS = 16 };

/* A reduction that keeps some axes and reduces others, over many terms per output. */
static bool is_partial_reduction(const jg_node *r)
{
    int nd = r->in[0]->shape.ndim;
    return (r->op == JG_OP_SUM || r->op == JG_OP_MAX || r->op == JG_OP_MIN) && nd > 1 &&
           r->attr.axes != 0 && r->attr.axes != (1u << nd) - 1 &&
           jg_shape_numel(r->in[0]->shape) >= MIN_TERMS * jg_shape_numel(r->shape);
}

/* Whether group gi fits a multi kernel over shape s reducing `axes`. */
static bool fits(const jg_graph *g, const fusion *f, int gi, jg_shape s, uint32_t axes)
{
    const fuse_group *grp = &f->groups[gi];
    if (grp->leader >= 0 || grp->kind == GROUP_MULTI)
        return false;
    if (grp->kind == GROUP_REDUCE) {
        if (!is_partial_reduction(grp->root) || grp->root->attr.axes != axes ||
            !shape_eq(grp->root->in[0]->shape, s))
            return false;
    } else if (grp->kind != GROUP_ELEMENTWISE || !shape_eq(grp->root->shape, s)) {
        return false;
    }
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        if (f->group_of[id] != gi || (n == grp->root && grp->kind == GROUP_REDUCE))
            continue;
        if (!pointwise(n) || (!shape_eq(n->shape, s) && jg_shape_numel(n->shape) != 1))
            return false;
    }
    return true;
}

/* The group a node's value comes from when it is a buffer (through reshape aliases). */
static int producer(const fusion *f, const jg_node *n)
{
    if (f->role[n->id] == ROLE_ALIAS)
        n = f->alias_of[n->id];
    return f->role[n->id] == ROLE_ROOT ? f->group_of[n->id] : -1;
}

/* Whether reading node n reads group b's result: n is it, or n is computed inline from
 * something that is (a GEMM gathers an operand owned by another group's kernel). */
static bool reads_result(const fusion *f, const jg_node *n, int b)
{
    if (producer(f, n) == b)
        return true;
    if (f->role[n->id] != ROLE_INLINE)
        return false;
    for (int k = 0; k < n->n_in; k++)
        if (reads_result(f, n->in[k], b))
            return true;
    return false;
}

/* Whether group a reads the result of group b. */
static bool reads(const jg_graph *g, const fusion *f, int a, int b)
{
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        if (f->group_of[id] != a)
            continue;
        for (int k = 0; k < n->n_in; k++)
            if (f->group_of[n->in[k]->id] != a && reads_result(f, n->in[k], b))
                return true;
    }
    return false;
}

/* At most this many parts per kernel (emit_multi's limit). */
enum { MAX_PARTS = 64 };

/* The buffers of shape s each group reads (at most SHARED_MAX each, node ids), so that
 * groups streaming the same input can be linked: bufs[gi * SHARED_MAX + k], -1 past the end. */
enum { SHARED_MAX = 8 };

static void shape_inputs(const jg_graph *g, const fusion *f, jg_shape s, int *bufs)
{
    for (int i = 0; i < f->n_groups * SHARED_MAX; i++)
        bufs[i] = -1;
    for (int id = 0; id < g->n_nodes; id++) {
        int gi = f->group_of[id];
        const jg_node *n = g->nodes[id];
        for (int k = 0; gi >= 0 && k < n->n_in; k++) {
            const jg_node *in = n->in[k];
            node_role r = f->role[in->id];
            if (f->group_of[in->id] == gi && r == ROLE_INLINE)
                continue;
            if ((r != ROLE_LEAF && r != ROLE_ROOT && r != ROLE_ALIAS) || !shape_eq(in->shape, s))
                continue;
            if (r == ROLE_ALIAS && f->alias_offset[in->id] == 0 &&
                jg_shape_numel(in->shape) == jg_shape_numel(f->alias_of[in->id]->shape))
                in = f->alias_of[in->id]; /* a reshape (a conv's GEMM result): its base's bytes */
            int *b = &bufs[gi * SHARED_MAX];
            for (int j = 0; j < SHARED_MAX; j++)
                if (b[j] == in->id || b[j] < 0) {
                    b[j] = in->id;
                    break;
                }
        }
    }
}

/* Whether groups a and b read a common buffer of the space's shape. */
static bool share_input(const int *bufs, int a, int b)
{
    for (int i = 0; i < SHARED_MAX && bufs[a * SHARED_MAX + i] >= 0; i++)
        for (int j = 0; j < SHARED_MAX && bufs[b * SHARED_MAX + j] >= 0; j++)
            if (bufs[a * SHARED_MAX + i] == bufs[b * SHARED_MAX + j])
                return true;
    return false;
}

/* Whether group gi is linked to a member of the set: one reads the other, or both stream the
 * same input. */
static bool linked(const jg_graph *g, const fusion *f, const bool *in_set, const int *bufs,
                   int gi)
{
    for (int p = 0; p < f->n_groups; p++)
        if (in_set[p] && (reads(g, f, p, gi) || reads(g, f, gi, p) || share_input(bufs, p, gi)))
            return true;
    return false;
}

/* A reduction's result is complete only after the last row: no part may read one. */
static bool reads_a_reduction(const jg_graph *g, const fusion *f, const bool *in_set)
{
    for (int b = 0; b < f->n_groups; b++) {
        if (!in_set[b] || f->groups[b].kind != GROUP_REDUCE)
            continue;
        for (int a = 0; a < f->n_groups; a++)
            if (in_set[a] && a != b && reads(g, f, a, b))
                return true;
    }
    return false;
}

/* No group strictly between the set's first and last part may read a part. */
static bool order_ok(const jg_graph *g, const fusion *f, const bool *in_set, int lo, int hi)
{
    for (int x = lo + 1; x < hi; x++) {
        if (in_set[x])
            continue;
        for (int p = lo; p <= hi; p++)
            if (in_set[p] && reads(g, f, x, p))
                return false;
    }
    return true;
}

bool pass_fuse_siblings(jg_graph *g, fusion *f)
{
    bool changed = false;
    bool *in_set = calloc((size_t)f->n_groups + 1, sizeof *in_set);
    int *bufs = malloc(((size_t)f->n_groups + 1) * SHARED_MAX * sizeof *bufs);
    if (!in_set || !bufs) {
        free(in_set);
        free(bufs);
        return false; /* an optimisation: skip it */
    }
    for (int l = 0; l < f->n_groups; l++) {
        fuse_group *lead = &f->groups[l];
        if (lead->kind != GROUP_REDUCE || lead->leader >= 0 || !is_partial_reduction(lead->root))
            continue;
        jg_shape s = lead->root->in[0]->shape;
        uint32_t axes = lead->root->attr.axes;
        shape_inputs(g, f, s, bufs);
        for (int i = 0; i < f->n_groups; i++)
            in_set[i] = false;
        in_set[l] = true;
        int lo = l, hi = l, count = 1;
        /* first the whole connected family, which is legal more often than any greedy
         * prefix of it (a consumer between two parts must join with them) */
        for (bool grew = true; grew;) {
            grew = false;
            for (int gi = 0; gi < f->n_groups; gi++) {
                if (in_set[gi] || !fits(g, f, gi, s, axes) || !linked(g, f, in_set, bufs, gi))
                    continue;
                in_set[gi] = grew = true;
                lo = gi < lo ? gi : lo, hi = gi > hi ? gi : hi, count++;
            }
        }
        if (count > MAX_PARTS || !order_ok(g, f, in_set, lo, hi) ||
            reads_a_reduction(g, f, in_set)) {
            /* then grow greedily, one legal group at a time */
            for (int i = 0; i < f->n_groups; i++)
                in_set[i] = false;
            in_set[l] = true;
            lo = hi = l, count = 1;
        }
        for (bool grew = true; grew && count < MAX_PARTS;) {
            grew = false;
            for (int gi = 0; gi < f->n_groups && count < MAX_PARTS; gi++) {
                if (in_set[gi] || !fits(g, f, gi, s, axes) || !linked(g, f, in_set, bufs, gi))
                    continue;
                in_set[gi] = true;
                int nlo = gi < lo ? gi : lo, nhi = gi > hi ? gi : hi;
                if (!order_ok(g, f, in_set, nlo, nhi) || reads_a_reduction(g, f, in_set)) {
                    in_set[gi] = false;
                    continue;
                }
                lo = nlo, hi = nhi, count++;
                grew = true;
            }
        }
        if (count < 2)
            continue;
        for (int gi = lo; gi <= hi; gi++)
            if (in_set[gi] && gi != hi)
                f->groups[gi].leader = hi;
        f->groups[hi].kind = GROUP_MULTI;
        changed = true;
    }
    free(in_set);
    free(bufs);
    return changed;
}
