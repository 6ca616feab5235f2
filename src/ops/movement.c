/* STUB: replaced by the family's real implementation. */
#include "ops/op.h"
const op_def op_reshape = { .name = "reshape" };
const op_def op_permute = { .name = "permute" };
const op_def op_broadcast = { .name = "broadcast" };
jg_node *jg_reshape_(jg_loc at, jg_node *x, jg_shape s) { (void)at, (void)s; return x; }
