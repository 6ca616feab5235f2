/* L2 penalty as weight decay (l2_decay.c): a pass over the user's graph that
 * jg_compile_train runs before it builds the gradients. */
#ifndef JG_COMPILER_L2_DECAY_H
#define JG_COMPILER_L2_DECAY_H

#include "graph/graph.h"

/* When opts' optimiser is SGD (without gradient clipping, which must see the whole gradient)
 * and "l2_decay" is not in opts->compile.passes_off, finds the jg_l2_penalty nodes P_k that
 * the loss adds through its top-level additions (loss = C + P_1 + ...), sets *grad_loss to
 * the loss with those terms' gradients cut and adds 2 * c_k into l2[i] for each wrt[i] that
 * P_k penalises: the caller differentiates *grad_loss and adds l2[i] * w to wrt[i]'s
 * gradient in the update, where it fuses: w <- (1 - l2 lr) w - lr grad C for plain SGD.
 * Otherwise *grad_loss = loss and l2[] is left as it is (the caller zeroes it). Returns
 * whether it rewrote. Nodes are built on g (a failure is recorded there). */
HIDDEN bool pass_l2_decay(jg_graph *g, const jg_train_opts *opts, jg_node *loss,
                          jg_node *const *wrt, int n, jg_node **grad_loss, double *l2);

#endif
