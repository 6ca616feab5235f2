/* Runs of a constant index table (see index_runs.h). */
#include "jit/index_runs.h"

#include <stdlib.h>

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* The most frequent value of ids (sorted copy), or -1 when every value occurs once. */
static int64_t most_frequent(const double *ids, int64_t n)
{
    int32_t *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return -1;
    for (int64_t i = 0; i < n; i++)
        v[i] = (int32_t)ids[i];
    qsort(v, (size_t)n, sizeof *v, cmp_i32);
    int64_t best = -1, best_count = 1;
    for (int64_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && v[j] == v[i]; j++)
            ;
        if (j - i > best_count)
            best = v[i], best_count = j - i;
    }
    free(v);
    return best;
}

int64_t index_runs(const double *ids, int64_t n, int w, int min_len, index_run **out,
                   int64_t *fill)
{
    *out = NULL;
    *fill = -1;
    if (!ids || n <= 0 || n > INT32_MAX || w < 1 || w > 32 || min_len < 1)
        return 0;
    for (int64_t i = 0; i < n; i++)
        if (!(ids[i] >= 0 && ids[i] <= (double)INT32_MAX))
            return 0;
    int64_t f = most_frequent(ids, n);
    /* at most one run per min_len positions, or the table is not worth it */
    int64_t cap = n / min_len + 1;
    index_run *r = malloc((size_t)cap * sizeof *r);
    if (!r)
        return 0;
    int64_t count = 0;
    for (int64_t i = 0; i < n;) {
        if (count == cap) {
            free(r);
            return 0;
        }
        /* extend while each position reads base + lane, or the fill */
        int64_t base = INT64_MIN;
        uint32_t lanes = 0;
        int k = 0;
        for (; k < w && i + k < n; k++) {
            int64_t v = (int64_t)ids[i + k];
            if (v == f) /* first: the fill may lie past the source's rows (an elided pad) */
                continue;
            else if (base != INT64_MIN && v == base + k)
                lanes |= 1u << k;
            else if (base == INT64_MIN)
                base = v - k, lanes |= 1u << k;
            else
                break;
        }
        r[count++] = (index_run){ .dst = (int32_t)i, .src = base == INT64_MIN ? 0 : (int32_t)base,
                                  .lanes = lanes, .len = k };
        i += k;
    }
    *out = r;
    *fill = f;
    return count;
}
