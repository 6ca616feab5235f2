/* What both executors say about a node that failed a run: the non-finite check of
 * jg_opts.check_finite (where the first inf or NaN is, and the op that produced it) and, for
 * any failure, the op and where it was built. */
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

const char *exec_node_origin(const jg_node *n, char *buf, size_t size)
{
    const char *file = n->at.file ? strrchr(n->at.file, '/') : NULL;
    file = file ? file + 1 : n->at.file;
    if (file)
        snprintf(buf, size, "jg_%s (built at %s:%d)", graph_op_name(n->op), file, n->at.line);
    else
        snprintf(buf, size, "jg_%s", graph_op_name(n->op));
    return buf;
}

void nonfinite_message(const jg_node *n, int64_t at, double v, char *err, size_t size)
{
    const char *what = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
    char origin[EXEC_ORIGIN_SIZE];
    snprintf(err, size, "non-finite value (%s) first produced by %s, element %lld", what,
             exec_node_origin(n, origin, sizeof origin), (long long)at);
}
