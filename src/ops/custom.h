/* Custom ops inside the library: the form a jg_custom_def takes in the graph (a compact arena
 * copy that attr.custom points to) and the argument marshalling shared by the reference
 * kernel (ops/custom.c) and the JIT runtime (jit/custom_call.c). A gradient op "<name>.grad<k>"
 * is a custom op too: its function is the user's backward[k], with JG_CARG_VALUE and
 * JG_CARG_GRAD rewritten as JG_CARG_INPUT n and n + 1 (the forward output and dy are its last
 * two operands), so nothing past the builder knows about backward-only kinds. */
#ifndef JG_OPS_CUSTOM_H
#define JG_OPS_CUSTOM_H

#include "ops/op.h"

#include <ffi.h>

/* The most operands a custom node has: a gradient op's inputs + forward output + dy. */
#define CUSTOM_MAX_OPERANDS (JG_CUSTOM_MAX_INPUTS + 2)

typedef struct custom_fn {
    void (*fn)(void);     /* NULL: none (a backward: no gradient for that input) */
    int n_args;
    const jg_carg *args;  /* n_args entries, in the arena; never VALUE or GRAD */
} custom_fn;

typedef struct custom_op {
    const char *name;
    int n_inputs;         /* operands of the node */
    jg_shape out_shape;   /* ndim -1: operand 0's shape */
    custom_fn forward;
    custom_fn backward[JG_CUSTOM_MAX_INPUTS]; /* all empty in a gradient op */
} custom_op;

static inline const custom_op *custom_of(const jg_node *n) { return n->attr.custom; }

/* What argument a of custom node n passes. */
enum { CUSTOM_ARG_OUTPUT = -1, CUSTOM_ARG_CONST = -2 };
typedef union custom_value {
    void *p;
    int i;
    int64_t l;
    double d;
} custom_value;

/* Argument a of n's function: returns its libffi type and sets *operand to the operand whose
 * data it passes (0..n_in-1), CUSTOM_ARG_OUTPUT for the output buffer, or CUSTOM_ARG_CONST
 * with the value in *v (constants, element counts). */
HIDDEN ffi_type *custom_arg(const jg_node *n, int a, int *operand, custom_value *v);

/* ffi_prep_cif for a void function of n_args arguments of the given types (which must outlive
 * the cif). On failure writes "'<name>': ..." into err and returns JG_ERR_STATE. */
HIDDEN jg_status custom_prep_cif(const jg_node *n, ffi_cif *cif, ffi_type **types, char *err,
                                 size_t size);

#endif
