/* Runs of a constant index table: the table of a gathered GEMM operand (an im2col) split into
 * segments of at most `w` positions, each reading consecutive source elements (one masked
 * vector load) except at positions that read the table's fill index (a convolution's padding
 * element). A stride-1 convolution's table is one segment per output row and tap, so the GEMM
 * copies its operand with vector loads instead of gathering it element by element. */
#ifndef JG_JIT_INDEX_RUNS_H
#define JG_JIT_INDEX_RUNS_H

#include "util/hidden.h"

#include <stdint.h>

typedef struct index_run {
    int32_t dst;   /* first position of the segment */
    int32_t src;   /* index read at lane l is src + l where bit l of `lanes` is set; may be
                      negative (down to 1 - w) when the run starts with fill positions: a
                      masked load from src reads only the set lanes */
    uint32_t lanes; /* bit l: position dst + l reads src + l, else it reads the fill index */
    int32_t len;   /* positions in the segment, 1 ... w */
} index_run;

/* Splits ids[0 .. n) (values in [0, 2^31)) into runs of at most w <= 32 positions; the fill
 * index is the most frequent value (-1: no position reads it). Returns the number of runs in a
 * malloc'd *out, or 0 (and *out = NULL) when the runs would average fewer than min_len
 * positions, or on a bad argument or no memory. */
HIDDEN int64_t index_runs(const double *ids, int64_t n, int w, int min_len, index_run **out,
                          int64_t *fill);

#endif
