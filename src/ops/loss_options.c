/* Losses with PyTorch's options (reduction, ignore_index, per-class weights, pos_weight) and
 * softplus with beta and threshold. All COMPOSITES: the plain losses stay the fused ops of
 * nn.c, which these return whenever no option asks for more. Formulas as PyTorch documents
 * them:
 *   cross entropy: l_i = -w[y_i] log_softmax(x_i)[y_i], rows with y_i = ignore_index give 0;
 *                  mean = sum(l) / sum(w[y_i] over kept rows), sum = sum(l).
 *   bce:           l = w ((1 - t) x + (1 + (p - 1) t) softplus(-x)), p = pos_weight;
 *                  mean over all elements.
 *   softplus:      x where beta x > threshold, else softplus(beta x) / beta. */
#include "ops/op.h"

#include <math.h>

static bool reduction_ok(jg_loc at, jg_graph *g, const char *fn, jg_reduction r)
{
    if (r == JG_REDUCE_MEAN || r == JG_REDUCE_SUM || r == JG_REDUCE_NONE)
        return true;
    graph_error(g, at, JG_ERR_ARG, "jg_%s: reduction is %d: JG_REDUCE_MEAN, _SUM or _NONE", fn,
                (int)r);
    return false;
}

static jg_node *reduce_all(jg_node *l, jg_reduction r)
{
    return r == JG_REDUCE_NONE ? l
           : r == JG_REDUCE_SUM ? jg_sum(l, JG_ALL_AXES, false)
                                : jg_mean(l, JG_ALL_AXES, false);
}

/* A weight operand: float of x's dtype, and of `want` shape (cross entropy) or broadcasting
 * against x (bce). */
static bool weight_ok(jg_loc at, const char *fn, const char *what, jg_node *w, jg_node *x,
                      const jg_shape *want)
{
    char a[8 * 24], b[8 * 24];
    if (w->dtype != x->dtype) {
        graph_error(x->graph, at, JG_ERR_DTYPE, "jg_%s: %s is %s, the logits %s", fn, what,
                    jg_dtype_str(w->dtype), jg_dtype_str(x->dtype));
        return false;
    }
    bool fits = want ? shape_eq(w->shape, *want) : w->shape.ndim <= x->shape.ndim;
    for (int d = 0; !want && fits && d < w->shape.ndim; d++) {
        int64_t wd = w->shape.dim[w->shape.ndim - 1 - d];
        fits = wd == 1 || wd == x->shape.dim[x->shape.ndim - 1 - d];
    }
    if (!fits) {
        graph_error(x->graph, at, JG_ERR_SHAPE, "jg_%s: %s is %s, must %s %s", fn, what,
                    FMT_SHAPE(a, w->shape), want ? "be" : "broadcast against the logits",
                    FMT_SHAPE(b, want ? *want : x->shape));
        return false;
    }
    return true;
}

/* What every _ex loss checks first: the operands (the weights optional) and the reduction.
 * The graph, or NULL with *bad the node to return. */
static jg_graph *loss_operands(jg_loc at, const char *fn, jg_node *a, jg_node *b,
                               const char *a_name, const char *b_name, const jg_loss_opts *o,
                               jg_node **bad)
{
    *bad = composite_operands(at, fn, (jg_node *[]){ a, b, o->weight, o->pos_weight },
                              (const char *[]){ a_name, b_name, "weight", "pos_weight" },
                              (const bool[]){ false, false, true, true }, 4);
    if (*bad)
        return NULL;
    if (!reduction_ok(at, a->graph, fn, o->reduction)) {
        *bad = a->graph->poison;
        return NULL;
    }
    return a->graph;
}

jg_node *jg_cross_entropy_ex_(jg_loc at, jg_node *x, jg_node *y, const jg_loss_opts *opts)
{
    jg_loss_opts o = opts ? *opts : (jg_loss_opts){ 0 };
    const char *fn = "cross_entropy_ex";
    jg_node *bad;
    jg_graph *g = loss_operands(at, fn, x, y, "logits", "labels", &o, &bad);
    if (!g)
        return bad;
    if (o.pos_weight) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: pos_weight is for jg_bce_with_logits_ex", fn);
        return g->poison;
    }
    /* the plain op checks logits and labels and names itself; the options' own checks
     * come after it */
    jg_node *plain = jg_cross_entropy_(at, x, y);
    if (node_poisoned(plain))
        return plain;
    int64_t n = x->shape.dim[0], c = x->shape.dim[1];
    if (o.weight && !weight_ok(at, fn, "weight", o.weight, x, &(jg_shape){ 1, { c } }))
        return g->poison;
    if (!o.weight && !o.ignore && o.reduction != JG_REDUCE_NONE)
        return o.reduction == JG_REDUCE_MEAN ? plain : jg_scale_(at, plain, (double)n);
    jg_node *safe = y, *keep = NULL;
    if (o.ignore) {
        jg_node *ignored = jg_eq_(at, y, jg_scalar_(at, g, JG_I32, o.ignore_index));
        safe = jg_where_(at, ignored, jg_scalar_(at, g, JG_I32, 0), y);
        keep = jg_cast_(at, jg_eq_(at, ignored, jg_scalar_(at, g, JG_I32, 0)), x->dtype);
    }
    jg_node *logp = jg_log_softmax_(at, x, 1);
    jg_node *picked = jg_take_along_axis_(at, logp, jg_reshape_(at, safe, jg_shape(n, 1)), 1);
    jg_node *l = jg_neg_(at, jg_reshape_(at, picked, jg_shape(n)));
    jg_node *w = o.weight ? jg_take_(at, o.weight, safe, 0) : NULL;
    if (keep)
        w = w ? jg_mul_(at, w, keep) : keep;
    jg_node *lw = w ? jg_mul_(at, l, w) : l;
    if (o.reduction != JG_REDUCE_MEAN || !w)
        return reduce_all(lw, o.reduction);
    return jg_div_(at, jg_sum_(at, lw, JG_ALL_AXES, false), jg_sum_(at, w, JG_ALL_AXES, false));
}

jg_node *jg_bce_with_logits_ex_(jg_loc at, jg_node *x, jg_node *t, const jg_loss_opts *opts)
{
    jg_loss_opts o = opts ? *opts : (jg_loss_opts){ 0 };
    const char *fn = "bce_with_logits_ex";
    jg_node *bad;
    jg_graph *g = loss_operands(at, fn, x, t, "logits", "targets", &o, &bad);
    if (!g)
        return bad;
    if (o.ignore) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: ignore_index is for jg_cross_entropy_ex", fn);
        return g->poison;
    }
    jg_node *plain = jg_bce_with_logits_(at, x, t);
    if (node_poisoned(plain))
        return plain;
    if ((o.weight && !weight_ok(at, fn, "weight", o.weight, x, NULL)) ||
        (o.pos_weight && !weight_ok(at, fn, "pos_weight", o.pos_weight, x, NULL)))
        return g->poison;
    if (!o.weight && !o.pos_weight && o.reduction != JG_REDUCE_NONE)
        return o.reduction == JG_REDUCE_MEAN
                   ? plain
                   : jg_scale_(at, plain, (double)jg_shape_numel(x->shape));
    jg_node *one = jg_scalar_like_(at, x, 1);
    jg_node *sp = jg_softplus_(at, jg_neg_(at, x));
    jg_node *coef = o.pos_weight
                        ? jg_add_(at, one, jg_mul_(at, jg_sub_(at, o.pos_weight, one), t))
                        : NULL;
    jg_node *l = jg_add_(at, jg_mul_(at, jg_sub_(at, one, t), x),
                         coef ? jg_mul_(at, coef, sp) : sp);
    if (o.weight) /* weight_ok let it broadcast only to x's shape, so l keeps that */
        l = jg_mul_(at, l, o.weight);
    return reduce_all(l, o.reduction);
}

jg_node *jg_mse_loss_ex_(jg_loc at, jg_node *a, jg_node *b, const jg_loss_opts *opts)
{
    jg_loss_opts o = opts ? *opts : (jg_loss_opts){ 0 };
    const char *fn = "mse_loss_ex";
    jg_node *bad;
    jg_graph *g = loss_operands(at, fn, a, b, "a", "b", &o, &bad);
    if (!g)
        return bad;
    if (o.weight || o.pos_weight || o.ignore) {
        graph_error(g, at, JG_ERR_ARG, "jg_%s: takes a reduction only (no weight, pos_weight "
                    "or ignore_index, as torch's MSELoss)", fn);
        return g->poison;
    }
    jg_node *plain = jg_mse_loss_(at, a, b);
    if (node_poisoned(plain) || o.reduction == JG_REDUCE_MEAN)
        return plain;
    if (o.reduction == JG_REDUCE_SUM)
        return jg_scale_(at, plain, (double)jg_shape_numel(a->shape));
    return jg_square_(at, jg_sub_(at, a, b));
}

jg_node *jg_softplus_ex_(jg_loc at, jg_node *x, double beta, double threshold)
{
    jg_node *bad = composite_operands(at, "softplus_ex", &x, (const char *[]){ "x" }, NULL, 1);
    if (bad)
        return bad;
    if (!(beta > 0) || !isfinite(beta) || isnan(threshold)) {
        graph_error(x->graph, at, JG_ERR_ARG, "jg_softplus_ex: beta %g must be positive and "
                    "finite, threshold %g not NaN", beta, threshold);
        return x->graph->poison;
    }
    jg_node *bx = beta == 1 ? x : jg_scale_(at, x, beta);
    jg_node *soft = jg_softplus_(at, bx);
    if (beta != 1)
        soft = jg_scale_(at, soft, 1 / beta);
    if (threshold == INFINITY)
        return soft;
    return jg_where_(at, jg_gt_(at, bx, jg_scalar_like_(at, x, threshold)), x, soft);
}
