/* Normalisation layers, built from existing ops: batchnorm (batch statistics in training
 * programs, running statistics in evaluation programs, the running statistics updated by
 * training programs) and layer norm. Parameters are found by name, so building a layer twice
 * under one name (a training and an evaluation graph) shares them. */
#include "ops/op.h"

#include <string.h>

/* The parameter "<name>.<part>" of shape s: reused when it exists with that shape. */
static jg_node *named_param(jg_loc at, jg_graph *g, const char *fn, const char *name,
                            const char *part, jg_dtype t, jg_shape s, jg_init init, bool frozen)
{
    char full[256];
    if (snprintf(full, sizeof full, "%s.%s", name, part) >= (int)sizeof full) {
        graph_error(g, at, JG_ERR_ARG, "%s: name '%s' is too long", fn, name);
        return g->poison;
    }
    jg_node *p = jg_param_find(g, full);
    if (p) {
        char a[96], b[96];
        if (!shape_eq(p->shape, s) || p->dtype != t) {
            graph_error(g, at, JG_ERR_SHAPE, "%s: parameter '%s' exists as %s%s, needed %s%s", fn,
                        full, jg_dtype_str(p->dtype), FMT_SHAPE(a, p->shape), jg_dtype_str(t),
                        FMT_SHAPE(b, s));
            return g->poison;
        }
        return p;
    }
    p = jg_param_(at, g, full, t, s, init);
    if (frozen && !node_poisoned(p))
        jg_param_freeze(p, true);
    return p;
}

/* x's operand checks shared by the layers; returns the graph or NULL (error recorded). */
static jg_graph *checked(jg_loc at, const char *fn, jg_node *x, const char *name, int min_ndim)
{
    if (!x || node_poisoned(x))
        return NULL;
    jg_graph *g = x->graph;
    char a[96];
    if (!name || !*name)
        graph_error(g, at, JG_ERR_ARG, "%s: name is NULL or empty", fn);
    else if (x->dtype == JG_I32)
        graph_error(g, at, JG_ERR_DTYPE, "%s: needs a float operand, got i32", fn);
    else if (x->shape.ndim < min_ndim)
        graph_error(g, at, JG_ERR_SHAPE, "%s: operand %s needs at least %d dimensions", fn,
                    FMT_SHAPE(a, x->shape), min_ndim);
    else
        return g;
    return NULL;
}

jg_node *jg_batchnorm_(jg_loc at, const char *name, jg_node *x, double momentum, double eps)
{
    jg_graph *g = checked(at, "jg_batchnorm", x, name, 2);
    if (!g)
        return x && x->graph ? x->graph->poison : op_build(at, JG_OP_NEG, &x, 1, NULL);
    if (!(momentum >= 0 && momentum <= 1) || !(eps > 0)) {
        graph_error(g, at, JG_ERR_ARG, "jg_batchnorm: momentum %g outside [0, 1] or eps %g <= 0",
                    momentum, eps);
        return g->poison;
    }
    int64_t c = x->shape.dim[1];
    jg_shape cs = jg_shape(c), bs = { .ndim = x->shape.ndim }; /* [1, C, 1, ...] */
    for (int d = 0; d < bs.ndim; d++)
        bs.dim[d] = d == 1 ? c : 1;
    jg_axes axes = { .n = 0 };
    for (int d = 0; d < x->shape.ndim; d++)
        if (d != 1)
            axes.axis[axes.n++] = d;
    jg_dtype t = x->dtype;
    const char *fn = "jg_batchnorm";
    jg_node *gamma = named_param(at, g, fn, name, "gamma", t, cs, jg_constant(1), false);
    jg_node *beta = named_param(at, g, fn, name, "beta", t, cs, jg_zeros(), false);
    jg_node *rm = named_param(at, g, fn, name, "running_mean", t, cs, jg_zeros(), true);
    jg_node *rv = named_param(at, g, fn, name, "running_var", t, cs, jg_constant(1), true);
    if (g->status != JG_OK)
        return g->poison;
    double n = (double)(jg_shape_numel(x->shape) / c);
    jg_node *mean = jg_mean_(at, x, axes, true);
    jg_node *centred = jg_sub_(at, x, mean);
    jg_node *var = jg_mean_(at, jg_square_(at, centred), axes, true);
    jg_node *g_b = jg_reshape_(at, gamma, bs), *b_b = jg_reshape_(at, beta, bs);
    jg_node *train = jg_add_(at, jg_mul_(at, jg_mul_(at, centred, jg_rsqrt_(at, jg_shift_(at, var, eps))), g_b), b_b);
    jg_node *eval_hat = jg_mul_(at, jg_sub_(at, x, jg_reshape_(at, rm, bs)),
                                jg_rsqrt_(at, jg_shift_(at, jg_reshape_(at, rv, bs), eps)));
    jg_node *eval = jg_add_(at, jg_mul_(at, eval_hat, g_b), b_b);
    jg_node *y = jg_mode_(at, train, eval);
    /* running statistics, updated by the training programs that compute y; the running
     * variance is the unbiased one, as in PyTorch */
    jg_node *batch_mean = jg_stop_gradient_(at, jg_reshape_(at, mean, cs));
    jg_node *batch_var = jg_stop_gradient_(at, jg_reshape_(at, jg_scale_(at, var, n > 1 ? n / (n - 1) : 1), cs));
    jg_node *rm_new = jg_add_(at, jg_scale_(at, rm, 1 - momentum), jg_scale_(at, batch_mean, momentum));
    jg_node *rv_new = jg_add_(at, jg_scale_(at, rv, 1 - momentum), jg_scale_(at, batch_var, momentum));
    if (g->status != JG_OK)
        return g->poison;
    if (graph_add_train_update(g, y, rm, rm_new) != JG_OK ||
        graph_add_train_update(g, y, rv, rv_new) != JG_OK) {
        graph_error(g, at, JG_ERR_NOMEM, "jg_batchnorm: out of memory");
        return g->poison;
    }
    return y;
}

/* Normalised over the last `dims` dimensions, gamma and beta of their shape. */
static jg_node *layernorm(jg_loc at, const char *fn, const char *name, jg_node *x, double eps,
                          int dims)
{
    jg_graph *g = checked(at, fn, x, name, dims > 1 ? dims : 1);
    if (!g)
        return x && x->graph ? x->graph->poison : op_build(at, JG_OP_NEG, &x, 1, NULL);
    if (!(eps > 0)) {
        graph_error(g, at, JG_ERR_ARG, "%s: eps %g <= 0", fn, eps);
        return g->poison;
    }
    if (dims < 1) {
        graph_error(g, at, JG_ERR_ARG, "%s: dims %d < 1", fn, dims);
        return g->poison;
    }
    jg_shape ps = { .ndim = dims };
    jg_axes axes = { .n = dims };
    for (int i = 0; i < dims; i++) {
        ps.dim[i] = x->shape.dim[x->shape.ndim - dims + i];
        axes.axis[i] = -1 - i;
    }
    jg_node *gamma = named_param(at, g, fn, name, "gamma", x->dtype, ps, jg_constant(1), false);
    jg_node *beta = named_param(at, g, fn, name, "beta", x->dtype, ps, jg_zeros(), false);
    if (g->status != JG_OK)
        return g->poison;
    jg_node *centred = jg_sub_(at, x, jg_mean_(at, x, axes, true));
    jg_node *var = jg_mean_(at, jg_square_(at, centred), axes, true);
    jg_node *hat = jg_mul_(at, centred, jg_rsqrt_(at, jg_shift_(at, var, eps)));
    return jg_add_(at, jg_mul_(at, hat, gamma), beta);
}

jg_node *jg_layernorm_(jg_loc at, const char *name, jg_node *x, double eps)
{
    return layernorm(at, "jg_layernorm", name, x, eps, 1);
}

jg_node *jg_layernorm_ex_(jg_loc at, const char *name, jg_node *x, double eps, int dims)
{
    return layernorm(at, "jg_layernorm_ex", name, x, eps, dims);
}
