/* Operands seen through a reshape (reframe.h). */
#include "compiler/reframe.h"

bool reframe_shape(jg_shape p, jg_shape t, jg_shape s, jg_shape *out)
{
    if (p.ndim > t.ndim || jg_shape_numel(t) != jg_shape_numel(s))
        return false;
    int64_t pd[JG_MAX_DIMS]; /* p aligned to t's rank */
    for (int d = 0; d < t.ndim; d++)
        pd[d] = d < t.ndim - p.ndim ? 1 : p.dim[d - (t.ndim - p.ndim)];
    *out = (jg_shape){ .ndim = s.ndim };
    int i = 0, j = 0;
    while (i < t.ndim || j < s.ndim) {
        /* the smallest run of t's dims [i0, i) and s's [j0, j) with equal products */
        int i0 = i, j0 = j;
        int64_t pt = i < t.ndim ? t.dim[i++] : 1, ps = j < s.ndim ? s.dim[j++] : 1;
        while (pt != ps) {
            if (pt < ps && i < t.ndim)
                pt *= t.dim[i++];
            else if (ps < pt && j < s.ndim)
                ps *= s.dim[j++];
            else
                return false;
        }
        bool whole = true, none = true;
        for (int d = i0; d < i; d++) {
            whole &= pd[d] == t.dim[d];
            none &= pd[d] == 1;
        }
        if (!whole && !none)
            return false;
        for (int e = j0; e < j; e++)
            out->dim[e] = none ? 1 : s.dim[e];
    }
    return true;
}

static jg_node *reframe_at(jg_loc at, jg_node *x, jg_shape q, int depth)
{
    if (shape_eq(x->shape, q))
        return x;
    if (x->op == JG_OP_FILL)
        return jg_fill_(at, x->graph, x->dtype, q, x->attr.scalar[0]);
    if (x->op == JG_OP_RESHAPE)
        return reframe_at(at, x->in[0], q, depth);
    bool sinks = depth < 16 && op_is_pointwise(x) && x->n_in <= 3;
    for (int k = 0; sinks && k < x->n_in; k++)
        sinks = shape_eq(x->in[k]->shape, x->shape) || jg_shape_numel(x->in[k]->shape) == 1;
    if (!sinks)
        return jg_reshape_(at, x, q);
    jg_node *in[3];
    for (int k = 0; k < x->n_in; k++)
        in[k] = reframe_at(at, x->in[k],
                           shape_eq(x->in[k]->shape, x->shape) ? q : (jg_shape){ .ndim = 0 },
                           depth + 1);
    return op_build(at, x->op, in, x->n_in, &x->attr);
}

jg_node *reframe_node(jg_loc at, jg_node *x, jg_shape q) { return reframe_at(at, x, q, 0); }
