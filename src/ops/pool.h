/* The geometry of a max pooling node (ops/pool.c), for the kernels that compute it. */
#ifndef JG_OPS_POOL_H
#define JG_OPS_POOL_H

#include "ops/op.h"

typedef struct pool_geom {
    int64_t planes, h, w, oh, ow;          /* N*C planes of H x W, pooled to OH x OW */
    int64_t kh, kw, sh, sw, ph, pw, dh, dw; /* kernel, stride, padding, dilation */
    jg_ties ties;
} pool_geom;

/* The geometry of a max_pool2d or max_pool2d_grad node (operand 0 is x). */
HIDDEN pool_geom pool_geom_of(const jg_node *n);

#endif
