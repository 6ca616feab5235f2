/* Batch statistics in training programs (pass "bn_relu"): the rewrites that, with sibling
 * fusion of channel reductions (fuse_siblings.c), make relu(batchnorm(x)) forward and
 * backward three passes over memory instead of eleven. It applies where the graph takes a
 * two-pass variance over all axes A of x but one (what batchnorm builds, in training):
 *
 *   v = sum_A(square(x - m)),  m = sum_A(x) / n          (n: the elements per channel)
 *
 *   1. one-pass statistics: with k = x at the first position of each channel, d = x - k,
 *        sum_A(x) = sum_A(d) + n * k,   v = sum_A(square(d)) - square(sum_A(d)) / n
 *      (a shift close to the data: without it, sum(x^2) - n m^2 cancels catastrophically
 *      when |m| >> the deviation). Both sums read only x, so they share one pass.
 *   2. linear channel sums: every sum over A of x's shape is taken apart by linearity:
 *        sum(a +- b) = sum(a) +- sum(b),   sum(-a) = -sum(a),
 *        sum(a * u) = u * sum(a)  for u constant along A (a per-channel value, a scalar),
 *        sum(u) = n * u,
 *      the remaining products in one canonical order, so equal ones merge (cse, run here).
 *      The backward's sums (of dbeta, dgamma, the variance's and the mean's gradients) all
 *      become per-channel multiples of sum(dz) and sum(dz * (x - m)) (dz = dy * [z > 0])
 *      and sum(x): no sum waits for another any more, so both take one pass.
 *   3. recomputation: a pointwise value of x's shape with several consumers, computed from
 *      one tensor of that shape (or two, for at most three consumers: x and dy) and
 *      per-channel values, is computed again in each consumer instead of being stored and
 *      read back (x - m, z, the ReLU mask, dz): reading its sources again moves no more
 *      bytes than storing it and reading it back. The mask is z > 0 on the same z, so the
 *      backward's mask is the forward's.
 *
 * NOTE the results are equal to the two-pass form's up to rounding, not bit for bit: the
 * sums are grouped differently. sum(x - m), which the mean's gradient needs, becomes
 * sum(x) - n * m: zero up to rounding either way. */
#include "compiler/pass.h"

#include <math.h>
#include <stdlib.h>

enum { MAX_REGIONS = 8, MAX_FACTORS = 16, MAX_SOURCES = 2, MAX_COST = 32 };

/* A matched variance: where the rewrites apply (x's shape, the reduced axes) and, once the
 * sum of x has been rewritten, the new graph's x, its shifted sums and its sum. */
typedef struct region {
    jg_shape s;
    uint32_t axes;
    jg_node *x, *s1, *s2, *sum_x;
} region;

typedef struct bn_state {
    region r[MAX_REGIONS];
    int n_regions;
    int *role; /* by old node id: 1 + i for region i's variance sum, -1 - i for its sum of x */
} bn_state;

static int64_t count_of(jg_shape s, uint32_t axes)
{
    int64_t n = 1;
    for (int d = 0; d < s.ndim; d++)
        if ((axes >> d) & 1u)
            n *= s.dim[d];
    return n;
}

static const jg_node *strip_broadcast(const jg_node *n)
{
    return n->op == JG_OP_BROADCAST ? n->in[0] : n;
}

/* A fill of v, as rounded to its dtype. */
static bool is_fill_of(const jg_node *n, double v)
{
    double tol = n->dtype == JG_F32 ? 1e-7 : 1e-15;
    return n->op == JG_OP_FILL && fabs(n->attr.scalar[0] - v) <= tol * fabs(v);
}

/* v = sum_A(square(x - m)) with m the mean of x over A, A all axes but one: returns the sum
 * of x under m, or NULL. */
static const jg_node *two_pass_variance(const jg_node *v)
{
    if (v->op != JG_OP_SUM || v->dtype == JG_I32 || v->in[0]->op != JG_OP_SQUARE)
        return NULL;
    const jg_node *d = v->in[0]->in[0];
    if (d->op != JG_OP_SUB)
        return NULL;
    const jg_node *x = d->in[0], *m = strip_broadcast(d->in[1]);
    int nd = x->shape.ndim;
    uint32_t axes = v->attr.axes;
    if (nd < 2 || __builtin_popcount(axes) != nd - 1 || !shape_eq(d->shape, x->shape) ||
        m->op != JG_OP_MUL)
        return NULL;
    double inv = 1.0 / (double)count_of(x->shape, axes);
    for (int k = 0; k < 2; k++) {
        const jg_node *s = m->in[k];
        if (s->op == JG_OP_SUM && s->in[0] == x && s->attr.axes == axes &&
            s->shape.ndim == nd && is_fill_of(m->in[1 - k], inv))
            return s;
    }
    return NULL;
}

/* The region whose sums a sum node is: over its axes, of a tensor of its shape. */
static const region *region_of(const bn_state *st, const jg_node *sum)
{
    for (int i = 0; i < st->n_regions; i++)
        if (sum->attr.axes == st->r[i].axes && shape_eq(sum->in[0]->shape, st->r[i].s))
            return &st->r[i];
    return NULL;
}

/* ---- 1. one-pass variance */

static jg_node *as_shape(jg_loc at, jg_node *v, jg_shape s)
{
    return shape_eq(v->shape, s) ? v : jg_reshape_(at, v, s);
}

/* The sum of x (node n, operand x): the shift k and both shifted sums are made here, next
 * to each other (so sibling fusion can take them in one pass before anything reads them);
 * sum(x) = sum(x - k) + n * k. */
static jg_node *shifted_sums(region *r, const jg_node *n, jg_node *x)
{
    jg_loc at = n->at;
    jg_node *k = x; /* x at index 0 along every reduced axis: [1, C, 1, 1] */
    jg_axes ax = { .n = 0 };
    for (int a = 0; a < x->shape.ndim; a++)
        if ((r->axes >> a) & 1u) {
            k = jg_slice_(at, k, a, 0, 1, 1);
            ax.axis[ax.n++] = a;
        }
    jg_node *d = jg_sub_(at, x, k);
    r->x = x;
    r->s1 = jg_sum_(at, d, ax, true);
    r->s2 = jg_sum_(at, jg_square_(at, d), ax, true);
    double count = (double)count_of(x->shape, r->axes);
    r->sum_x = jg_add_(at, r->s1, jg_mul_(at, k, jg_scalar_like_(at, x, count)));
    return as_shape(at, r->sum_x, n->shape);
}

/* The variance's sum of squares about the mean: sum((x - k)^2) - sum(x - k)^2 / n. */
static jg_node *one_pass_variance(const region *r, const jg_node *v)
{
    jg_loc at = v->at;
    double count = (double)count_of(r->s, r->axes);
    jg_node *sq = jg_mul_(at, jg_square_(at, r->s1), jg_scalar_like_(at, r->s1, 1.0 / count));
    return as_shape(at, jg_sub_(at, r->s2, sq), v->shape);
}

/* ---- 2. linear channel sums */

typedef struct lin {
    const bn_state *st;
    jg_loc at;
    jg_shape s, ks; /* x's shape, the keepdims shape of its sums */
    jg_axes axes;
    uint32_t mask;
    double n;
    bool changed;
} lin;

/* Whether e (broadcast against the shape s) is constant along every reduced axis. */
static bool constant_along(const lin *L, const jg_node *e)
{
    int lead = L->s.ndim - e->shape.ndim;
    for (int d = 0; d < L->s.ndim; d++)
        if (((L->mask >> d) & 1u) && d >= lead && e->shape.dim[d - lead] != 1)
            return e->op == JG_OP_BROADCAST && constant_along(L, e->in[0]);
    return true;
}

/* A constant e seen at the keepdims shape (explicit broadcasts removed). */
static jg_node *at_keepdims(const lin *L, jg_node *e)
{
    while (e->op == JG_OP_BROADCAST && constant_along(L, e->in[0]))
        e = e->in[0];
    return shape_eq(e->shape, L->ks) ? e : jg_broadcast_to_(L->at, e, L->ks);
}

static jg_node *plain_sum(const lin *L, jg_node *e)
{
    for (int i = 0; i < L->st->n_regions; i++) /* sum(x) is taken with the shifted sums */
        if (e == L->st->r[i].x && L->st->r[i].axes == L->mask)
            return L->st->r[i].sum_x;
    if (!shape_eq(e->shape, L->s))
        e = jg_broadcast_to_(L->at, e, L->s);
    return jg_sum_(L->at, e, L->axes, true);
}

/* The factors of a product tree, left to right. Returns false past MAX_FACTORS. */
static bool factors_of(jg_node *e, jg_node **f, int *n)
{
    if (e->op == JG_OP_MUL)
        return factors_of(e->in[0], f, n) && factors_of(e->in[1], f, n);
    if (*n == MAX_FACTORS)
        return false;
    f[(*n)++] = e;
    return true;
}

static int by_id(const void *a, const void *b)
{
    return (*(jg_node *const *)a)->id - (*(jg_node *const *)b)->id;
}

static jg_node *linear_sum(lin *L, jg_node *e);

/* sum(product of f[0..n)): per-channel factors moved out, the rest in id order. */
static jg_node *product_sum(lin *L, jg_node *e, jg_node **f, int n)
{
    jg_node *outside = NULL, *inside[MAX_FACTORS];
    int n_in = 0;
    bool sorted = true;
    for (int i = 0; i < n; i++) {
        if (constant_along(L, f[i])) {
            jg_node *u = at_keepdims(L, f[i]);
            outside = outside ? jg_mul_(L->at, outside, u) : u;
            continue;
        }
        sorted &= n_in == 0 || inside[n_in - 1]->id < f[i]->id;
        inside[n_in++] = f[i];
    }
    jg_node *sum;
    if (n_in == 1) {
        sum = linear_sum(L, inside[0]);
    } else if (!outside && sorted) {
        sum = plain_sum(L, e); /* already canonical: nothing to rewrite */
    } else {
        qsort(inside, (size_t)n_in, sizeof *inside, by_id);
        jg_node *p = inside[0];
        for (int i = 1; i < n_in; i++)
            p = jg_mul_(L->at, p, inside[i]);
        sum = plain_sum(L, p);
        L->changed = true;
    }
    if (!outside)
        return sum;
    L->changed = true;
    return jg_mul_(L->at, sum, outside);
}

/* sum_A(e) as a node of the keepdims shape, taken apart by linearity. */
static jg_node *linear_sum(lin *L, jg_node *e)
{
    if (constant_along(L, e)) {
        L->changed = true;
        jg_node *u = at_keepdims(L, e);
        return jg_mul_(L->at, u, jg_scalar_like_(L->at, u, L->n));
    }
    switch (e->op) {
    case JG_OP_NEG:
        L->changed = true;
        return jg_neg_(L->at, linear_sum(L, e->in[0]));
    case JG_OP_ADD: case JG_OP_SUB: {
        L->changed = true;
        jg_node *a = linear_sum(L, e->in[0]), *b = linear_sum(L, e->in[1]);
        return e->op == JG_OP_ADD ? jg_add_(L->at, a, b) : jg_sub_(L->at, a, b);
    }
    case JG_OP_MUL: {
        jg_node *f[MAX_FACTORS];
        int n = 0;
        if (factors_of(e, f, &n))
            return product_sum(L, e, f, n);
        return plain_sum(L, e);
    }
    default:
        return plain_sum(L, e);
    }
}

static jg_node *algebra_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    (void)g;
    bn_state *st = state;
    int role = st->role[n->id];
    if (role < 0)
        return shifted_sums(&st->r[-1 - role], n, in[0]);
    if (role > 0)
        return st->r[role - 1].s2 ? one_pass_variance(&st->r[role - 1], n) : NULL;
    const region *r = n->op == JG_OP_SUM ? region_of(st, n) : NULL;
    if (!r)
        return NULL;
    lin L = { .st = st, .at = n->at, .s = r->s, .mask = r->axes,
              .n = (double)count_of(r->s, r->axes), .ks = r->s };
    for (int d = 0; d < r->s.ndim; d++)
        if ((r->axes >> d) & 1u)
            L.axes.axis[L.axes.n++] = d, L.ks.dim[d] = 1;
    jg_node *sum = linear_sum(&L, in[0]);
    if (!L.changed)
        return NULL;
    return shape_eq(sum->shape, n->shape) ? sum : jg_reshape_(n->at, sum, n->shape);
}

/* ---- 3. recomputation */

typedef struct remat {
    bool *ok;      /* by old id: may be recomputed (see to_recompute) */
    bool *again;   /* by old id: ok, and several consumers: recomputed in each */
    jg_node **to;  /* by old id: its copy in the new graph, once a consumer was seen */
} remat;

/* A fresh copy of old node u in g, with fresh copies of the recomputable nodes below it (a
 * node only u consumed would otherwise gain a consumer per copy, and be stored). */
static jg_node *clone(remat *r, jg_graph *g, const jg_node *u, bool fresh)
{
    if (!fresh || u->n_in > 3)
        return r->to[u->id];
    jg_node *in[3];
    for (int k = 0; k < u->n_in; k++)
        in[k] = clone(r, g, u->in[k], r->ok[u->in[k]->id]);
    return pass_copy(g, u, in);
}

static jg_node *remat_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    remat *r = state;
    bool any = false;
    for (int k = 0; k < n->n_in; k++) {
        r->to[n->in[k]->id] = in[k];
        any |= r->again[n->in[k]->id];
    }
    if (!any || n->n_in > 3)
        return NULL;
    jg_node *fresh[3];
    for (int k = 0; k < n->n_in; k++)
        fresh[k] = clone(r, g, n->in[k], r->again[n->in[k]->id]);
    return pass_copy(g, n, fresh);
}

/* Marks the pointwise nodes of a region's shape that may be recomputed (r->ok: no output,
 * at most MAX_SOURCES tensors of that shape read, at most MAX_COST ops) and those to
 * recompute in each consumer (r->again: ok, and several consumers). Returns false when out
 * of memory. */
static bool to_recompute(const pass_ctx *c, const bn_state *st, const int *uses, remat *r)
{
    const jg_graph *g = c->g;
    bool *again = r->again, *ok = r->ok;
    bool *root = calloc((size_t)g->n_nodes + 1, sizeof *root);
    int *src = malloc(((size_t)g->n_nodes + 1) * MAX_SOURCES * sizeof *src);
    int *cost = calloc((size_t)g->n_nodes + 1, sizeof *cost);
    bool done = root && src && cost;
    if (!done)
        goto done;
    for (int i = 0; i < c->n_roots + c->n_keep; i++)
        root[c->roots[i]->id] = true;
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        int *s = &src[id * MAX_SOURCES], ns = 0;
        bool in_region = false;
        for (int i = 0; i < st->n_regions; i++)
            in_region |= shape_eq(n->shape, st->r[i].s);
        if (!in_region || !op_is_pointwise(n) || root[id] || n->dtype == JG_I32)
            continue;
        ok[id] = true;
        cost[id] = 1;
        for (int k = 0; k < n->n_in && ok[id]; k++) {
            const jg_node *in = n->in[k];
            if (!shape_eq(in->shape, n->shape))
                continue; /* a per-channel value or a scalar, broadcast */
            int from[MAX_SOURCES], nf = 0;
            if (ok[in->id]) {
                cost[id] += cost[in->id];
                for (int j = 0; j < MAX_SOURCES; j++)
                    if (src[in->id * MAX_SOURCES + j] >= 0)
                        from[nf++] = src[in->id * MAX_SOURCES + j];
            } else if (shape_eq(in->shape, n->shape)) {
                from[nf++] = in->id;
            }
            for (int j = 0; j < nf && ok[id]; j++) {
                bool seen = false;
                for (int q = 0; q < ns; q++)
                    seen |= s[q] == from[j];
                if (!seen && ns == MAX_SOURCES)
                    ok[id] = false;
                else if (!seen)
                    s[ns++] = from[j];
            }
        }
        for (int j = ns; j < MAX_SOURCES; j++)
            s[j] = -1;
        ok[id] &= cost[id] <= MAX_COST;
        /* k consumers reading s sources move s * k arrays; storing moves 1 + k (+ s once):
         * never more for one source, and for two up to three consumers */
        again[id] = ok[id] && uses[id] > 1 && (ns <= 1 || uses[id] <= 3);
    }
done:
    free(root), free(src), free(cost);
    return done;
}

/* ---- the pass */

bool pass_bn_relu(pass_ctx *c)
{
    bn_state st = { .n_regions = 0, .role = calloc((size_t)c->g->n_nodes + 1, sizeof(int)) };
    if (!st.role)
        return false; /* an optimisation: skip it */
    for (int id = 0; id < c->g->n_nodes; id++) {
        const jg_node *v = c->g->nodes[id], *sum_x = two_pass_variance(v);
        if (!sum_x || st.role[sum_x->id] || st.n_regions == MAX_REGIONS)
            continue; /* (a second variance of the same mean keeps its two passes) */
        region *r = &st.r[st.n_regions];
        *r = (region){ .s = sum_x->in[0]->shape, .axes = v->attr.axes };
        st.role[sum_x->id] = -1 - st.n_regions;
        st.role[id] = 1 + st.n_regions++;
    }
    bool changed = false;
    if (st.n_regions) {
        changed = pass_rewrite(c, algebra_rule, &st);
        if (c->status == JG_OK)
            changed |= pass_cse(c); /* merge the sums and products made equal */
    }
    free(st.role);
    if (!st.n_regions || c->status != JG_OK)
        return changed;
    size_t n = (size_t)c->g->n_nodes + 1;
    int *uses = pass_use_counts(c);
    remat r = { .ok = calloc(n, sizeof *r.ok), .again = calloc(n, sizeof *r.again),
                .to = calloc(n, sizeof *r.to) };
    if (uses && r.ok && r.again && r.to && to_recompute(c, &st, uses, &r))
        changed |= pass_rewrite(c, remat_rule, &r);
    free(uses);
    free(r.ok);
    free(r.again);
    free(r.to);
    return changed;
}
