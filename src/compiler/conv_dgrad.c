/* A convolution's input gradient as one gathering GEMM (pass "conv_dgrad"). conv2d is a
 * gather (im2col, a take by a constant table T) and a GEMM, so autodiff makes its input
 * gradient a GEMM into a [N, C*KK, P] buffer (9x the input for 3x3) and a scatter_add of that
 * buffer back to pixels (col2im): memory traffic the size of the buffer twice, ~30% of the
 * input gradient on the CNN's 64->128 layer. For each tap, T maps output pixels to distinct
 * input pixels, so the scatter can be read the other way round: each input pixel q of tap kk
 * takes the one output pixel p with T[kk][p] = q, or nothing (a zero):
 *
 *   before                                   after
 *   slice(scatter_add(reshape(               reshape(matmul(A', reshape(take(pad(B, 1 zero),
 *       matmul(A, B)), T), [s, s+len))           T'), [N, G, Og*KK, len])), [N, C, len])
 *   A: [G, Cg*KK, Og], B: [N, G, Og, P]      A'[g][c][o*KK + kk] = A[g][c*KK + kk][o]
 *                                            T'[kk][j] = p with T[kk][p] = s + j, else P
 *
 * which is the full convolution of the output gradient by the flipped kernel, and its
 * gathered operand is never stored (pass "gather"), copied by index runs for stride 1. Only
 * where every input pixel the slice keeps has at most one source per tap, where the scatter,
 * its reshape and the GEMM have no other consumer, and where the gathered GEMM
 * does at most 5/4 of the arithmetic (stride 1: the same; stride 2 would do 4x). The sum's
 * order changes, so values may differ in the last bits. */
#include "compiler/pass.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct dgrad_state {
    const int *uses;          /* consumers of each old node */
    jg_node *const *consumer; /* the only consumer when uses == 1 */
} dgrad_state;

/* n (old graph) is a scatter_add over a reshaped GEMM that only it reads, or a slice that
 * keeps a contiguous run of such a scatter's last axis and is its only reader; sets the run
 * of the scatter's last axis that n keeps. */
static bool scatter_run(const dgrad_state *st, const jg_node *n, int64_t *start, int64_t *len)
{
    if ((n->dtype != JG_F32 && n->dtype != JG_F64) || n->shape.ndim != 3)
        return false;
    const jg_node *sc = n;
    int last = n->shape.ndim - 1;
    *start = 0;
    *len = n->shape.dim[last];
    if (n->op == JG_OP_SLICE) {
        sc = n->in[0];
        if (sc->op != JG_OP_SCATTER_ADD || n->attr.axis != last || n->attr.step[last] != 1 ||
            st->uses[sc->id] != 1)
            return false;
        for (int k = 0; k < last; k++)
            if (n->attr.list[k] != 0 || n->attr.step[k] != 1 ||
                n->shape.dim[k] != sc->shape.dim[k])
                return false;
        *start = n->attr.list[last];
    }
    if (sc->op != JG_OP_SCATTER_ADD || sc->attr.axis != last)
        return false;
    /* a scatter whose slice qualifies is rewritten there: the slice keeps fewer columns */
    int64_t s0, l0;
    if (n == sc && st->uses[n->id] == 1 && st->consumer[n->id] &&
        st->consumer[n->id]->op == JG_OP_SLICE && scatter_run(st, st->consumer[n->id], &s0, &l0))
        return false;
    const jg_node *r = sc->in[0], *ids = sc->in[1];
    if (r->op == JG_OP_RESHAPE && st->uses[r->id] == 1) /* none with one channel a group */
        r = r->in[0];
    return r->op == JG_OP_MATMUL && st->uses[r->id] == 1 && ids->op == JG_OP_CONST &&
           ids->attr.data && ids->shape.ndim == 2;
}

/* A permute that swaps the last two axes and keeps the others. */
static bool last_two_swapped(const jg_node *p)
{
    int nd = p->shape.ndim;
    for (int d = 0; d < nd - 2; d++)
        if (p->attr.list[d] != d)
            return false;
    return nd >= 2 && p->attr.list[nd - 2] == nd - 1 && p->attr.list[nd - 1] == nd - 2;
}

/* T' (see the top): for each tap, the source of each kept pixel, or `fill`; false when a
 * kept pixel has two sources in one tap. */
static bool invert(const double *t, int64_t kk, int64_t p, int64_t start, int64_t len,
                   int64_t fill, int32_t *inv)
{
    for (int64_t i = 0; i < kk * len; i++)
        inv[i] = (int32_t)fill;
    for (int64_t a = 0; a < kk; a++)
        for (int64_t j = 0; j < p; j++) {
            int64_t q = (int64_t)t[a * p + j] - start;
            if (q < 0 || q >= len)
                continue;
            if (inv[a * len + q] != fill)
                return false;
            inv[a * len + q] = (int32_t)j;
        }
    return true;
}

static jg_node *dgrad_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    const dgrad_state *st = state;
    int64_t start, len;
    if (!scatter_run(st, n, &start, &len))
        return NULL;
    /* the scatter's operand in the new graph (its copy's, for a slice): the GEMM's reshape */
    if (n->op == JG_OP_SLICE && in[0]->op != JG_OP_SCATTER_ADD)
        return NULL;
    jg_node *r = n->op == JG_OP_SLICE ? in[0]->in[0] : in[0];
    jg_node *mm = r->op == JG_OP_MATMUL ? r : r->in[0], *a = mm->in[0], *b = mm->in[1];
    const jg_node *ids = n->op == JG_OP_SLICE ? n->in[0]->in[1] : n->in[1];
    int64_t nb = n->shape.dim[0], c = n->shape.dim[1];
    int64_t kk = ids->shape.dim[0], p = ids->shape.dim[1];
    /* mm: [N, G, Cg*KK, P] = A [.., Cg*KK, Og] x B [N, G, Og, P] */
    if (mm->shape.ndim != 4 || b->shape.ndim != 4 || mm->shape.dim[0] != nb ||
        mm->shape.dim[3] != p || b->shape.dim[0] != nb || b->shape.dim[3] != p ||
        b->shape.dim[1] != mm->shape.dim[1] ||
        mm->shape.dim[2] % kk != 0 || mm->shape.dim[1] * mm->shape.dim[2] != c * kk ||
        r->shape.ndim != 4 || r->shape.dim[2] != kk)
        return NULL;
    int64_t grp = mm->shape.dim[1], cg = mm->shape.dim[2] / kk, og = b->shape.dim[2];
    int64_t ga = jg_shape_numel(a->shape) / (cg * kk * og);
    for (int k = 0; k + 3 < a->shape.ndim; k++) /* A's batch: [.., G or 1] */
        if (a->shape.dim[k] != 1)
            return NULL;
    if ((ga != 1 && ga != grp) || 4 * len > 5 * p || kk * len > (int64_t)INT32_MAX)
        return NULL;
    int32_t *inv = malloc((size_t)(kk * len) * sizeof *inv);
    if (!inv || !invert(ids->attr.data, kk, p, start, len, p, inv)) {
        free(inv);
        return NULL;
    }
    bool holes = false;
    for (int64_t i = 0; i < kk * len; i++)
        holes |= inv[i] == p;
    jg_node *ti = jg_const_(n->at, g, JG_I32, jg_shape(kk, len), inv);
    free(inv);
    /* A' stored transposed, [(o, kk), c]: the GEMM reads a transposed A in place, where a
     * row-major one is packed again for every sample's tile. A is usually the transpose of
     * the forward's weights [.., Og, Cg*KK]: then one copy of those makes it. */
    jg_node *ap;
    if (a->op == JG_OP_PERMUTE && last_two_swapped(a)) {
        ap = jg_reshape_(n->at, a->in[0], jg_shape(ga, og, cg, kk));
        ap = jg_permute_(n->at, ap, jg_axes(0, 1, 3, 2));
    } else {
        ap = jg_reshape_(n->at, a, jg_shape(ga, cg, kk, og));
        ap = jg_permute_(n->at, ap, jg_axes(0, 3, 2, 1));
    }
    ap = jg_permute_(n->at, jg_reshape_(n->at, ap, jg_shape(ga, og * kk, cg)), jg_axes(0, 2, 1));
    jg_node *bp = holes ? jg_pad_(n->at, b, jg_shape(0, 0, 0, 0), jg_shape(0, 0, 0, 1), 0) : b;
    bp = jg_reshape_(n->at, jg_take_(n->at, bp, ti, 3), jg_shape(nb, grp, og * kk, len));
    return jg_reshape_(n->at, jg_matmul_(n->at, ap, bp), n->shape);
}

bool pass_conv_dgrad(pass_ctx *c)
{
    int *uses = pass_use_counts(c);
    if (!uses) {
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "conv_dgrad: out of memory");
        return false;
    }
    jg_node **consumer = pass_consumers(c, uses);
    if (!consumer) {
        free(uses);
        c->status = JG_ERR_NOMEM;
        snprintf(c->errmsg, sizeof c->errmsg, "conv_dgrad: out of memory");
        return false;
    }
    dgrad_state st = { .uses = uses, .consumer = consumer };
    bool any = false;
    for (int id = 0; id < c->g->n_nodes && !any; id++) {
        int64_t start, len;
        any = uses[id] > 0 && scatter_run(&st, c->g->nodes[id], &start, &len);
    }
    bool changed = any && pass_rewrite(c, dgrad_rule, &st);
    free(uses);
    free(consumer);
    return changed;
}
