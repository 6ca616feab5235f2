/* STUB: replaced by the family's real implementation. */
#include "ops/op.h"
const op_def op_matmul = { .name = "matmul" };
