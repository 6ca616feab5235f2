/* take_along_axis (NumPy's name; torch.gather): out[j] = x[j with its `axis` coordinate
 * replaced by idx[j]]. A COMPOSITE over take: every element's flat offset in x is computed
 * as idx * stride(axis) + the offset of its other coordinates (a constant), and x is read
 * flat through one take, whose gradient (scatter_add) adds dy back at the same offsets, so
 * the JIT and the reference executor need nothing new. An index outside [0, dim) is mapped
 * to -1 and so fails the run with JG_ERR_RANGE (from that take, at the caller's file:line). */
#include "ops/op.h"

#include <stdlib.h>

/* The operands fit (and *axis is normalised); records the error and returns false
 * otherwise. */
static bool args_ok(jg_loc at, jg_graph *g, jg_node *x, jg_node *idx, int *axis)
{
    char a[8 * 24], b[8 * 24];
    if (idx->dtype != JG_I32) {
        graph_error(g, at, JG_ERR_DTYPE, "jg_take_along_axis: idx must be i32, got %s",
                    jg_dtype_str(idx->dtype));
        return false;
    }
    if (!axis_normalise(*axis, x->shape.ndim, axis)) {
        graph_error(g, at, JG_ERR_ARG, "jg_take_along_axis: axis %d out of range for %s", *axis,
                    FMT_SHAPE(a, x->shape));
        return false;
    }
    bool fits = idx->shape.ndim == x->shape.ndim;
    for (int d = 0; fits && d < x->shape.ndim; d++)
        fits = d == *axis || idx->shape.dim[d] <= x->shape.dim[d];
    if (!fits) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_take_along_axis: idx %s against x %s: same rank, "
                    "and no longer than x on every axis but %d", FMT_SHAPE(b, idx->shape),
                    FMT_SHAPE(a, x->shape), *axis);
        return false;
    }
    if (jg_shape_numel(x->shape) > INT32_MAX) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_take_along_axis: x %s has more than 2^31 - 1 "
                    "elements (offsets are i32)", FMT_SHAPE(a, x->shape));
        return false;
    }
    return true;
}

jg_node *jg_take_along_axis_(jg_loc at, jg_node *x, jg_node *idx, int axis)
{
    jg_node *bad = composite_operands(at, "take_along_axis", (jg_node *[]){ x, idx },
                                      (const char *[]){ "x", "idx" }, NULL, 2);
    if (bad)
        return bad;
    jg_graph *g = x->graph;
    if (!args_ok(at, g, x, idx, &axis))
        return g->poison;
    int64_t xstride[JG_MAX_DIMS], n = jg_shape_numel(idx->shape);
    shape_strides(x->shape, xstride);
    int32_t *base = malloc((size_t)n * sizeof *base);
    if (!base) {
        graph_error(g, at, JG_ERR_NOMEM, "jg_take_along_axis: out of memory");
        return g->poison;
    }
    /* row-major walk of idx's shape: base = sum over the other axes of coordinate * stride */
    int64_t coord[JG_MAX_DIMS] = { 0 }, off = 0;
    for (int64_t i = 0; i < n; i++) {
        base[i] = (int32_t)off;
        for (int d = idx->shape.ndim - 1; d >= 0; d--) {
            int64_t step = d == axis ? 0 : xstride[d];
            off += step;
            if (++coord[d] < idx->shape.dim[d])
                break;
            off -= step * idx->shape.dim[d];
            coord[d] = 0;
        }
    }
    jg_node *offsets = jg_const_(at, g, JG_I32, idx->shape, base);
    free(base);
    int64_t dim = x->shape.dim[axis];
    jg_node *inside = jg_mul_(at, jg_ge_(at, idx, jg_scalar_(at, g, JG_I32, 0)),
                              jg_lt_(at, idx, jg_scalar_(at, g, JG_I32, (double)dim)));
    jg_node *flat = jg_add_(at, jg_mul_(at, idx, jg_scalar_(at, g, JG_I32,
                                                             (double)xstride[axis])), offsets);
    flat = jg_where_(at, inside, flat, jg_scalar_(at, g, JG_I32, -1));
    jg_node *all = jg_reshape_(at, x, jg_shape(jg_shape_numel(x->shape)));
    return jg_take_(at, all, flat, 0);
}
