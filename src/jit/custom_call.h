/* Custom ops in the JIT runtime: a custom node is a group of its own whose "kernel" is the
 * user's C function, called through a libffi interface prepared once at compile time. Each
 * argument is either a constant (fixed at prepare) or a buffer slot, read from bufs at call
 * time, so a call allocates nothing and follows the runtime's buffers wherever they are. */
#ifndef JG_JIT_CUSTOM_CALL_H
#define JG_JIT_CUSTOM_CALL_H

#include "graph/graph.h"

typedef struct custom_call custom_call;

/* Prepares the libffi call interface for custom node n (op JG_OP_CUSTOM) whose operands live
 * in buffer slots in_slots[0..n->n_in-1] and whose output goes to out_slot. The buffers must
 * be contiguous, row-major, in the node's dtype. On failure returns a status, writes the
 * reason into err and sets *out to NULL. */
HIDDEN jg_status custom_call_prepare(const jg_node *n, const int *in_slots, int out_slot,
                                     custom_call **out, char *err, size_t size);
/* Calls the function with the current buffer pointers: bufs[slot] for each slot argument.
 * Allocates nothing and writes nothing in c, so it is safe from any thread. */
HIDDEN void custom_call_run(const custom_call *c, void *const *bufs);
/* custom_call_free(NULL) does nothing. */
HIDDEN void custom_call_free(custom_call *c);

#endif
