/* The non-finite check both executors run with jg_opts.check_finite: where the first inf or
 * NaN is, and a message naming the op that produced it and where it was built. */
#include "exec/exec.h"

#include <math.h>
#include <string.h>

int64_t first_nonfinite(const jg_node *n, const void *data, bool as_double)
{
    if (n->dtype == JG_I32)
        return -1;
    int64_t numel = jg_shape_numel(n->shape);
    for (int64_t i = 0; i < numel; i++) {
        double v = as_double || n->dtype == JG_F64 ? ((const double *)data)[i]
                                                   : (double)((const float *)data)[i];
        if (!isfinite(v))
            return i;
    }
    return -1;
}

void nonfinite_message(const jg_node *n, int64_t at, double v, char *err, size_t size)
{
    const char *what = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
    const char *file = n->at.file ? strrchr(n->at.file, '/') : NULL;
    file = file ? file + 1 : n->at.file;
    if (file)
        snprintf(err, size, "non-finite value (%s) first produced by jg_%s (built at %s:%d), "
                 "element %lld", what, graph_op_name(n->op), file, n->at.line, (long long)at);
    else
        snprintf(err, size, "non-finite value (%s) first produced by jg_%s, element %lld", what,
                 graph_op_name(n->op), (long long)at);
}
