/* STUB: replaced by the family's real implementation. */
#include "ops/op.h"
const op_def op_softmax = { .name = "softmax" };
const op_def op_log_softmax = { .name = "log_softmax" };
const op_def op_cross_entropy = { .name = "cross_entropy" };
const op_def op_bce_with_logits = { .name = "bce_with_logits" };
const op_def op_mse_loss = { .name = "mse_loss" };
