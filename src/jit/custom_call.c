/* Calling custom ops from the JIT runtime: the cif, argument types and constant values are
 * built once by custom_call_prepare; custom_call_run only copies the buffer pointers of the
 * slot arguments into a stack array and calls ffi_call (~50 ns, see bench/bench_call.c). */
#include "jit/custom_call.h"
#include "ops/custom.h"

#include <stdlib.h>

struct custom_call {
    ffi_cif cif;
    void (*fn)(void);
    int n_args;
    ffi_type *types[JG_CUSTOM_MAX_ARGS];      /* read by the cif: lives as long as it */
    custom_value consts[JG_CUSTOM_MAX_ARGS];  /* values of the constant arguments */
    int slot[JG_CUSTOM_MAX_ARGS];             /* buffer slot of a pointer argument, or -1 */
};

jg_status custom_call_prepare(const jg_node *n, const int *in_slots, int out_slot,
                              custom_call **out, char *err, size_t size)
{
    *out = NULL;
    if (!n || n->op != JG_OP_CUSTOM || !custom_of(n)) {
        snprintf(err, size, "custom_call_prepare: node %d is not a custom op", n ? n->id : -1);
        return JG_ERR_ARG;
    }
    const custom_op *op = custom_of(n);
    custom_call *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, size, "'%s': out of memory", op->name);
        return JG_ERR_NOMEM;
    }
    c->fn = op->forward.fn;
    c->n_args = op->forward.n_args;
    for (int a = 0; a < c->n_args; a++) {
        int operand;
        c->types[a] = custom_arg(n, a, &operand, &c->consts[a]);
        c->slot[a] = operand == CUSTOM_ARG_CONST    ? -1
                     : operand == CUSTOM_ARG_OUTPUT ? out_slot
                                                    : in_slots[operand];
    }
    jg_status st = custom_prep_cif(n, &c->cif, c->types, err, size);
    if (st != JG_OK) {
        free(c);
        return st;
    }
    *out = c;
    return JG_OK;
}

void custom_call_run(const custom_call *c, void *const *bufs)
{
    custom_value v[JG_CUSTOM_MAX_ARGS];
    void *values[JG_CUSTOM_MAX_ARGS];
    for (int a = 0; a < c->n_args; a++) {
        v[a] = c->consts[a];
        if (c->slot[a] >= 0)
            v[a].p = bufs[c->slot[a]];
        values[a] = &v[a];
    }
    ffi_arg ret;
    /* ffi_call takes a non-const cif; it only reads it */
    ffi_call((ffi_cif *)&c->cif, c->fn, &ret, values);
}

void custom_call_free(custom_call *c) { free(c); }
