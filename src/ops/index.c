/* STUB: replaced by the family's real implementation. */
#include "ops/op.h"
const op_def op_slice = { .name = "slice" };
const op_def op_unslice = { .name = "unslice" };
const op_def op_pad = { .name = "pad" };
const op_def op_concat = { .name = "concat" };
const op_def op_take = { .name = "take" };
const op_def op_scatter_add = { .name = "scatter_add" };
const op_def op_one_hot = { .name = "one_hot" };
