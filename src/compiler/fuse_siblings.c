/* Sibling fusion: after pass_fuse, a reduction over some but not all axes (a column sum such
 * as a bias gradient, channel statistics of NCHW data) and the pointwise groups over its
 * input's shape that feed it, consume what feeds it, read the same input, or reduce the same
 * space, become one kernel: the input is streamed once, row by row, every elementwise result
 * stored as it passes. relu(x*a+b)'s forward and backward (y, dx, da, db) is one pass; so are
 * a channel's sum and sum of squares, and batchnorm's backward sums of dz and dz * x_hat.
 * Then pointwise groups of one shape linked the same way become one elementwise loop that
 * stores each: Adam's m, v and weight updates; an LSTM cell's state, tanh and output.
 *
 * Legality: a kernel with reductions has only members pointwise over the common shape S (or
 * one-element values), so each is evaluated at the point's own index; a pointwise kernel's
 * parts may hold views (gate slices, permutes), each evaluated where it reads, and values are
 * shared only at the point itself (emit_expr.c's memo). Reductions share the reduced axes.
 * No part reads a reduction's result (complete only after the last row) or another part's
 * buffer through an alias (not written yet: the kernel computes parts, it does not load
 * them). The merged kernel runs where its last part ran, so no group between the first and
 * the last part may read a part's result. A part's result that only other parts read, and
 * that is no output, is never stored. */
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

/* At most this many parts per kernel (emit_multi's and emit_elementwise's limit). */
enum { MAX_PARTS = 64 };

/* The buffers of its space's shape each group reads, at most SHARED_MAX (node ids, -1 past
 * the end), so that groups streaming the same input can be linked. */
enum { SHARED_MAX = 8 };

/* Pointwise groups merge only with groups at most this many places away in execution order:
 * what lies further apart is separated by a GEMM reading one of them (a recurrent step), and
 * the search stays linear in the program. */
enum { POINTWISE_WINDOW = 24 };

/* What the pass knows of each group, computed once. */
typedef struct siblings {
    const jg_graph *g;
    fusion *f;
    size_t n;         /* groups + 1: the length of the arrays below */
    jg_shape *space;  /* by group: its iteration space (a reduction's input shape) */
    bool *pure;       /* by group: every member pointwise over its space or one element (what
                         a reducing multi kernel needs) */
    int *reads_at;    /* by group: its start in reads_list; groups whose results it reads */
    int *reads_list;
    int *bufs;        /* by group: SHARED_MAX buffers of its space's shape it reads */
    bool *in_set;     /* by group: a part of the kernel being formed */
} siblings;

/* A reduction that keeps some axes and reduces others, over many terms per output. */
static bool is_partial_reduction(const jg_node *r)
{
    int nd = r->in[0]->shape.ndim;
    return (r->op == JG_OP_SUM || r->op == JG_OP_MAX || r->op == JG_OP_MIN) && nd > 1 &&
           r->attr.axes != 0 && r->attr.axes != (1u << nd) - 1 &&
           jg_shape_numel(r->in[0]->shape) >= MIN_TERMS * jg_shape_numel(r->shape);
}

/* Whether group gi fits a multi kernel over shape s reducing `axes`. With axes 0 (pointwise
 * parts only, one elementwise loop) any elementwise group of shape s does: its views (an
 * LSTM's gate slices) are evaluated at each point as in a kernel of its own. */
static bool fits(const siblings *c, int gi, jg_shape s, uint32_t axes)
{
    const fuse_group *grp = &c->f->groups[gi];
    if (grp->leader >= 0 || grp->kind == GROUP_MULTI || !shape_eq(c->space[gi], s))
        return false;
    if (!axes)
        return grp->kind == GROUP_ELEMENTWISE;
    if (!c->pure[gi])
        return false;
    if (grp->kind == GROUP_REDUCE)
        return is_partial_reduction(grp->root) && grp->root->attr.axes == axes;
    return grp->kind == GROUP_ELEMENTWISE;
}

/* The group a node's value comes from when it is a buffer (through reshape aliases). */
static int producer(const fusion *f, const jg_node *n)
{
    if (f->role[n->id] == ROLE_ALIAS)
        n = f->alias_of[n->id];
    return f->role[n->id] == ROLE_ROOT ? f->group_of[n->id] : -1;
}

/* Adds to list the groups whose results reading node n reads: its producer, or those of what
 * an inline node is computed from (a GEMM gathers an operand owned by another group).
 * Returns the new length, or -1 when the list is full. A read through an alias (a reshape
 * or a contiguous slice of the producer's buffer) is recorded as -1 - b: merged with its
 * producer, it would load the buffer the same kernel has not written yet. */
static int add_reads(const fusion *f, const jg_node *n, int *list, int len, int cap)
{
    int b = producer(f, n);
    if (b >= 0)
        return len < cap ? (list[len] = f->role[n->id] == ROLE_ALIAS ? -1 - b : b, len + 1)
                         : -1;
    for (int k = 0; f->role[n->id] == ROLE_INLINE && k < n->n_in && len >= 0; k++)
        len = add_reads(f, n->in[k], list, len, cap);
    return len;
}

/* The group an entry of the read graph names (see add_reads). */
static int read_group(int entry) { return entry < 0 ? -1 - entry : entry; }

/* Fills c->space, c->pure and the read graph; false when out of memory. */
static bool describe_groups(siblings *c)
{
    const jg_graph *g = c->g;
    fusion *f = c->f;
    for (int gi = 0; gi < f->n_groups; gi++) {
        const fuse_group *grp = &f->groups[gi];
        c->space[gi] = grp->kind == GROUP_REDUCE ? grp->root->in[0]->shape : grp->root->shape;
        c->pure[gi] = grp->kind == GROUP_REDUCE || grp->kind == GROUP_ELEMENTWISE;
    }
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        int gi = f->group_of[id];
        if (gi < 0 || (n == f->groups[gi].root && f->groups[gi].kind == GROUP_REDUCE))
            continue;
        if (!pointwise(n) || (!shape_eq(n->shape, c->space[gi]) && jg_shape_numel(n->shape) != 1))
            c->pure[gi] = false;
    }
    /* the read graph: by node order, each edge from the group of the reading node */
    int cap = g->n_nodes + 16, len = 0;
    int *from = NULL, *to = NULL;
    for (bool full = true; full;) {
        full = false;
        free(from), free(to);
        from = malloc((size_t)cap * sizeof *from), to = malloc((size_t)cap * sizeof *to);
        if (!from || !to) {
            free(from), free(to);
            return false;
        }
        len = 0;
        for (int id = 0; id < g->n_nodes && !full; id++) {
            const jg_node *n = g->nodes[id];
            int a = f->group_of[id];
            for (int k = 0; a >= 0 && k < n->n_in && !full; k++) {
                if (f->group_of[n->in[k]->id] == a)
                    continue;
                int end = add_reads(f, n->in[k], to, len, cap);
                full = end < 0;
                for (; !full && len < end; len++)
                    from[len] = a;
            }
        }
        cap *= 4;
    }
    for (int gi = 0; gi <= f->n_groups; gi++)
        c->reads_at[gi] = 0;
    for (int i = 0; i < len; i++)
        c->reads_at[from[i] + 1]++;
    for (int gi = 0; gi < f->n_groups; gi++)
        c->reads_at[gi + 1] += c->reads_at[gi];
    size_t edges = len > 0 ? (size_t)len : 0;
    c->reads_list = malloc((edges + 1) * sizeof *c->reads_list);
    if (!c->reads_list) {
        free(from), free(to);
        return false;
    }
    int *fill = calloc(c->n, sizeof *fill);
    for (int i = 0; fill && i < len; i++)
        c->reads_list[c->reads_at[from[i]] + fill[from[i]]++] = to[i];
    free(fill), free(from), free(to);
    return fill != NULL;
}

/* Whether group a reads the result of group b. */
static bool reads(const siblings *c, int a, int b)
{
    for (int i = c->reads_at[a]; i < c->reads_at[a + 1]; i++)
        if (read_group(c->reads_list[i]) == b && a != b)
            return true;
    return false;
}

/* c->bufs: for each group, the buffers of shape s it reads (s NULL: of its own space). */
static void shape_inputs(siblings *c, const jg_shape *s)
{
    const jg_graph *g = c->g;
    const fusion *f = c->f;
    for (int i = 0; i < f->n_groups * SHARED_MAX; i++)
        c->bufs[i] = -1;
    for (int id = 0; id < g->n_nodes; id++) {
        int gi = f->group_of[id];
        const jg_node *n = g->nodes[id];
        for (int k = 0; gi >= 0 && k < n->n_in; k++) {
            const jg_node *in = n->in[k];
            node_role r = f->role[in->id];
            if (f->group_of[in->id] == gi && r == ROLE_INLINE)
                continue;
            if ((r != ROLE_LEAF && r != ROLE_ROOT && r != ROLE_ALIAS) ||
                !shape_eq(in->shape, s ? *s : c->space[gi]))
                continue;
            if (r == ROLE_ALIAS && f->alias_offset[in->id] == 0 &&
                jg_shape_numel(in->shape) == jg_shape_numel(f->alias_of[in->id]->shape))
                in = f->alias_of[in->id]; /* a reshape (a conv's GEMM result): its base's bytes */
            int *b = &c->bufs[gi * SHARED_MAX];
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

/* Whether group gi is linked to a member of the set (within [lo, hi]): one reads the other,
 * or both stream the same input. */
static bool linked(const siblings *c, int lo, int hi, int gi)
{
    for (int p = lo; p <= hi; p++)
        if (c->in_set[p] && (reads(c, p, gi) || reads(c, gi, p) || share_input(c->bufs, p, gi)))
            return true;
    return false;
}

/* Whether a part reads what the kernel cannot give it at the point: a reduction's result
 * (complete only after the last row) or a part's buffer through an alias (not written yet). */
static bool reads_what_is_not_ready(const siblings *c, int lo, int hi)
{
    for (int a = lo; a <= hi; a++) {
        if (!c->in_set[a])
            continue;
        for (int i = c->reads_at[a]; i < c->reads_at[a + 1]; i++) {
            int b = read_group(c->reads_list[i]);
            if (b != a && b >= lo && b <= hi && c->in_set[b] &&
                (c->reads_list[i] < 0 || c->f->groups[b].kind == GROUP_REDUCE))
                return true;
        }
    }
    return false;
}

/* No group strictly between the set's first and last part may read a part. */
static bool order_ok(const siblings *c, int lo, int hi)
{
    for (int x = lo + 1; x < hi; x++) {
        if (c->in_set[x])
            continue;
        for (int i = c->reads_at[x]; i < c->reads_at[x + 1]; i++) {
            int p = read_group(c->reads_list[i]);
            if (p >= lo && p <= hi && c->in_set[p])
                return false;
        }
    }
    return true;
}

/* Merges into leader l's kernel the family of groups that fit the space s (reducing `axes`;
 * 0: pointwise groups only), lie within `window` places of it and are linked to it. Returns
 * whether it merged anything. */
static bool merge_family(siblings *c, int l, jg_shape s, uint32_t axes, int window)
{
    fusion *f = c->f;
    int from = l - window < 0 ? 0 : l - window;
    int to = l + window >= f->n_groups ? f->n_groups - 1 : l + window;
    for (int i = from; i <= to; i++)
        c->in_set[i] = false;
    c->in_set[l] = true;
    int lo = l, hi = l, count = 1;
    /* first the whole connected family, which is legal more often than any greedy prefix of
     * it (a consumer between two parts must join with them) */
    for (bool grew = true; grew;) {
        grew = false;
        for (int gi = from; gi <= to; gi++) {
            if (c->in_set[gi] || !fits(c, gi, s, axes) || !linked(c, lo, hi, gi))
                continue;
            c->in_set[gi] = grew = true;
            lo = gi < lo ? gi : lo, hi = gi > hi ? gi : hi, count++;
        }
    }
    if (count > MAX_PARTS || !order_ok(c, lo, hi) || reads_what_is_not_ready(c, lo, hi)) {
        /* then grow greedily, one legal group at a time */
        for (int i = from; i <= to; i++)
            c->in_set[i] = false;
        c->in_set[l] = true;
        lo = hi = l, count = 1;
    }
    for (bool grew = true; grew && count < MAX_PARTS;) {
        grew = false;
        for (int gi = from; gi <= to && count < MAX_PARTS; gi++) {
            if (c->in_set[gi] || !fits(c, gi, s, axes) || !linked(c, lo, hi, gi))
                continue;
            c->in_set[gi] = true;
            int nlo = gi < lo ? gi : lo, nhi = gi > hi ? gi : hi;
            if (!order_ok(c, nlo, nhi) || reads_what_is_not_ready(c, nlo, nhi)) {
                c->in_set[gi] = false;
                continue;
            }
            lo = nlo, hi = nhi, count++;
            grew = true;
        }
    }
    bool merged = count >= 2;
    for (int gi = lo; merged && gi <= hi; gi++)
        if (c->in_set[gi] && gi != hi)
            f->groups[gi].leader = hi;
    if (merged)
        f->groups[hi].kind = GROUP_MULTI;
    for (int i = from; i <= to; i++)
        c->in_set[i] = false;
    return merged;
}

bool pass_fuse_siblings(jg_graph *g, fusion *f)
{
    if (f->n_groups < 2)
        return false;
    size_t n = (size_t)f->n_groups + 1;
    siblings c = { .g = g, .f = f, .n = n, .space = malloc(n * sizeof *c.space),
                   .pure = malloc(n * sizeof *c.pure), .reads_at = malloc(n * sizeof(int)),
                   .bufs = malloc(n * SHARED_MAX * sizeof *c.bufs),
                   .in_set = calloc(n, sizeof *c.in_set) };
    bool changed = false;
    if (c.space && c.pure && c.reads_at && c.bufs && c.in_set && describe_groups(&c)) {
        /* first around partial reductions (one pass over the space feeds them all) */
        for (int l = 0; l < f->n_groups; l++) {
            const fuse_group *lead = &f->groups[l];
            if (lead->kind != GROUP_REDUCE || lead->leader >= 0 ||
                !is_partial_reduction(lead->root))
                continue;
            jg_shape s = lead->root->in[0]->shape;
            shape_inputs(&c, &s);
            changed |= merge_family(&c, l, s, lead->root->attr.axes, f->n_groups);
        }
        /* then pointwise groups of one shape: an optimiser's state and weight updates, a
         * recurrent cell's state and output, one kernel each instead of several */
        shape_inputs(&c, NULL);
        for (int l = 0; l < f->n_groups; l++)
            if (fits(&c, l, c.space[l], 0))
                changed |= merge_family(&c, l, c.space[l], 0, POINTWISE_WINDOW);
    } /* else out of memory: skip an optimisation */
    free(c.space), free(c.pure), free(c.reads_at), free(c.reads_list), free(c.bufs);
    free(c.in_set);
    return changed;
}

bool fuse_multi_reduces(const fusion *f, int k)
{
    for (int q = 0; q < f->n_groups; q++) {
        if (q != k && f->groups[q].leader != k)
            continue;
        jg_op op = f->groups[q].root->op;
        if (f->groups[q].kind == GROUP_REDUCE ||
            (q == k && (op == JG_OP_SUM || op == JG_OP_MAX || op == JG_OP_MIN)))
            return true;
    }
    return false;
}
