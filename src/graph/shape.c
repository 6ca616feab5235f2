/* Shapes: equality, NumPy broadcasting, strides and printing. */
#include "graph/graph.h"

#include <string.h>

/* Saturates instead of overflowing: users may ask about any shape, valid or not. */
int64_t jg_shape_numel(jg_shape s)
{
    int ndim = s.ndim < 0 ? 0 : s.ndim > JG_MAX_DIMS ? JG_MAX_DIMS : s.ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(n, s.dim[i], &n))
            return INT64_MAX;
    return n;
}

const char *jg_dtype_str(jg_dtype t)
{
    switch (t) {
    case JG_F32: return "f32";
    case JG_F64: return "f64";
    case JG_I32: return "i32";
    }
    return "?";
}

size_t jg_dtype_size(jg_dtype t) { return t == JG_F64 ? 8 : 4; }

/* Each dimension is checked against what is left of the limit before multiplying, so the
 * running product never overflows. */
bool shape_valid(jg_shape s)
{
    if (s.ndim < 0 || s.ndim > JG_MAX_DIMS)
        return false;
    int64_t numel = 1;
    for (int i = 0; i < s.ndim; i++) {
        if (s.dim[i] < 1 || s.dim[i] > SHAPE_MAX_NUMEL / numel)
            return false;
        numel *= s.dim[i];
    }
    return true;
}

bool shape_dims_positive(jg_shape s)
{
    if (s.ndim < 0 || s.ndim > JG_MAX_DIMS)
        return false;
    for (int i = 0; i < s.ndim; i++)
        if (s.dim[i] < 1)
            return false;
    return true;
}

bool shape_eq(jg_shape a, jg_shape b)
{
    if (a.ndim != b.ndim)
        return false;
    for (int i = 0; i < a.ndim; i++)
        if (a.dim[i] != b.dim[i])
            return false;
    return true;
}

bool shape_broadcast(jg_shape a, jg_shape b, jg_shape *out)
{
    jg_shape r = { .ndim = a.ndim > b.ndim ? a.ndim : b.ndim };
    for (int i = 0; i < r.ndim; i++) {
        int ia = i - (r.ndim - a.ndim), ib = i - (r.ndim - b.ndim);
        int64_t da = ia >= 0 ? a.dim[ia] : 1, db = ib >= 0 ? b.dim[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return false;
        r.dim[i] = da == 1 ? db : da;
    }
    *out = r;
    return true;
}

char *shape_str(jg_shape s, char *buf, size_t size)
{
    if (s.ndim < 0 || s.ndim > JG_MAX_DIMS) { /* never read past dim[] */
        snprintf(buf, size, "[%d dimensions]", s.ndim);
        return buf;
    }
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s.ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", (long long)s.dim[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

void shape_strides(jg_shape s, int64_t strides[JG_MAX_DIMS])
{
    int64_t st = 1;
    for (int i = s.ndim - 1; i >= 0; i--) {
        strides[i] = st;
        st *= s.dim[i];
    }
}

void shape_bcast_strides(jg_shape in, jg_shape out, int64_t strides[JG_MAX_DIMS])
{
    int64_t own[JG_MAX_DIMS];
    shape_strides(in, own);
    int lead = out.ndim - in.ndim;
    for (int i = 0; i < out.ndim; i++) {
        int k = i - lead;
        strides[i] = (k < 0 || in.dim[k] == 1) ? 0 : own[k];
    }
}

bool axis_normalise(int axis, int ndim, int *out)
{
    if (axis < -ndim || axis >= ndim)
        return false;
    *out = axis < 0 ? axis + ndim : axis;
    return true;
}
