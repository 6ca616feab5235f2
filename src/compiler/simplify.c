/* Algebraic simplification (pass "simplify"): identities that gradient graphs produce in
 * numbers, each exact. The rules, in order:
 *
 *   rule                        before                      after
 *   moved constant              reshape/broadcast/permute   a constant of the new shape
 *                               of a constant fill
 *   multiplicative unit         x * 1, 1 * x                x
 *   additive unit               x + 0, 0 + x, x - 0         x
 *   zero product                x * 0 (x a constant fill)   0 (only for constant x: x * 0
 *                                                           is NaN for an infinite x)
 *   double negation             -(-x)                       x (floats: negation is exact)
 *   transpose of transpose      permute(permute(x))         one permute, or x
 *   reshape chain               reshape(reshape(x))         one reshape, or x
 *   trivial view                reshape/broadcast to the    x
 *                               same shape, identity permute
 *   outer product               matmul(a [.., M, 1],        a * b, broadcast (one product
 *                               b [.., 1, N])               per element: a batch-1 weight
 *                                                           gradient, which then joins the
 *                                                           optimiser's update kernels)
 *
 * Deliberately not folded: x - x (NaN for an infinite or NaN x, not 0), x / x, x * 0 for a
 * non-constant x. Each rule applies where it matches the dtype as well as the shape, so a
 * fold never changes what the program computes (the outer product's zeros aside: the GEMM
 * adds each product to +0, so a -0 product came out +0). */
#include "compiler/pass.h"

static bool is_fill(const jg_node *n, double v)
{
    return n->op == JG_OP_FILL && n->attr.scalar[0] == v;
}

static bool same_type(const jg_node *a, const jg_node *n)
{
    return shape_eq(a->shape, n->shape) && a->dtype == n->dtype;
}

static jg_node *fold_permute(const jg_node *n, jg_node *x)
{
    bool identity = true;
    for (int d = 0; d < n->shape.ndim; d++)
        identity &= n->attr.list[d] == d;
    if (identity)
        return x;
    if (x->op != JG_OP_PERMUTE)
        return NULL;
    /* out dim d reads dim list[d] of the inner permute, which reads its own list[...] */
    jg_axes both = { .n = n->shape.ndim };
    identity = true;
    for (int d = 0; d < both.n; d++) {
        both.axis[d] = (int)x->attr.list[n->attr.list[d]];
        identity &= both.axis[d] == d;
    }
    return identity ? x->in[0] : jg_permute_(n->at, x->in[0], both);
}

static jg_node *simplify_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    (void)state;
    if ((n->op == JG_OP_RESHAPE || n->op == JG_OP_BROADCAST || n->op == JG_OP_PERMUTE) &&
        in[0]->op == JG_OP_FILL)
        return jg_fill_(n->at, g, n->dtype, n->shape, in[0]->attr.scalar[0]);
    switch (n->op) {
    case JG_OP_NEG:
        return in[0]->op == JG_OP_NEG && n->dtype != JG_I32 ? in[0]->in[0] : NULL;
    case JG_OP_RESHAPE: case JG_OP_BROADCAST:
        if (same_type(in[0], n))
            return in[0];
        if (n->op == JG_OP_RESHAPE && in[0]->op == JG_OP_RESHAPE)
            return same_type(in[0]->in[0], n) ? in[0]->in[0]
                                              : jg_reshape_(n->at, in[0]->in[0], n->shape);
        return NULL;
    case JG_OP_PERMUTE:
        return fold_permute(n, in[0]);
    case JG_OP_MUL:
        for (int k = 0; k < 2; k++) {
            if (is_fill(in[k], 1) && same_type(in[1 - k], n))
                return in[1 - k];
            if (is_fill(in[k], 0) && in[1 - k]->op == JG_OP_FILL &&
                isfinite(in[1 - k]->attr.scalar[0]))
                return jg_fill_(n->at, g, n->dtype, n->shape, 0);
        }
        return NULL;
    case JG_OP_ADD:
        for (int k = 0; k < 2; k++)
            if (is_fill(in[k], 0) && same_type(in[1 - k], n))
                return in[1 - k];
        return NULL;
    case JG_OP_SUB:
        return is_fill(in[1], 0) && same_type(in[0], n) ? in[0] : NULL;
    case JG_OP_MATMUL: {
        /* floats: the JIT has no i32 GEMM, nor should it seem to; a 1-D b is a vector */
        const jg_node *a = in[0];
        if (a->shape.ndim < 2 || a->shape.dim[a->shape.ndim - 1] != 1 || n->dtype == JG_I32 ||
            in[1]->shape.ndim < 2)
            return NULL;
        jg_node *r = jg_mul_(n->at, in[0], in[1]);
        return same_type(r, n) ? r : NULL;
    }
    default:
        return NULL;
    }
}

bool pass_simplify(pass_ctx *c) { return pass_rewrite(c, simplify_rule, NULL); }
