/* Operands seen through a reshape, for passes that move pointwise work across one (bn_fold,
 * epilogue): a value v of shape t is reshape(u) with u of shape s; an operand p broadcast
 * against v becomes an operand broadcast against u. */
#ifndef JG_COMPILER_REFRAME_H
#define JG_COMPILER_REFRAME_H

#include "ops/op.h"

/* The shape (of s's rank) that operand shape p, broadcast against t, takes against s, when
 * one exists: the reshape splits and merges t's dimensions into groups, and p must either
 * span a group whole or be broadcast over all of it. Its numel is p's, so the operand is a
 * reshape of p. False when p mixes both within a group ([1,W] against [H,W] -> [H*W]). */
HIDDEN bool reframe_shape(jg_shape p, jg_shape t, jg_shape s, jg_shape *out /* OUT */);

/* x reshaped to q (same numel), the reshape pushed down through pointwise ops whose
 * operands all have x's shape (or one element) to the leaves, so that a per-channel
 * expression over parameters stays one expression instead of a buffer and an alias. */
HIDDEN jg_node *reframe_node(jg_loc at, jg_node *x, jg_shape q);

#endif
