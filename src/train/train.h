/* What the training layer's files share: optimiser state in the store, the optimiser rows
 * (optimizers.c) and the advice about a training program (advice_train.c). jg_compile_train
 * (train.c) puts them together. */
#ifndef JG_TRAIN_TRAIN_H
#define JG_TRAIN_TRAIN_H

#include "ops/op.h"

/* ---- optimiser state: frozen store entries "<prefix>.<suffix>" or
 * "<prefix>.<param>.<suffix>", where prefix is jg_train_opts.name (optimizers.c) */

enum { STATE_NAME_SIZE = 256 };

/* Writes the state name into buf; false (with the error recorded) when it does not fit:
 * a truncated name could alias another parameter's state. param NULL: a global entry. */
HIDDEN bool state_name(jg_graph *g, char buf[STATE_NAME_SIZE], const char *prefix,
                       const jg_node *param, const char *suffix);
/* Checks that the name is free: the user's own parameters and inputs are never silently
 * taken over as optimiser state. */
HIDDEN bool state_free(jg_graph *g, const char *prefix, const jg_node *param,
                       const char *suffix);
/* Creates the entry (frozen, of shape s filled with init, in param's dtype, f64 for a global
 * entry); its name was checked by state_free. */
HIDDEN jg_node *state_new(jg_graph *g, const char *prefix, jg_node *param, const char *suffix,
                          jg_shape s, double init);

/* The parameter group of a parameter: the first whose prefix its name starts with, or NULL
 * (train.c). */
HIDDEN const jg_param_group *param_group_of(const jg_train_opts *opts, const char *name);

/* ---- updates: what the training program writes back after each run */

typedef struct update_list {
    jg_update *u;
    int n;
} update_list;

HIDDEN void update_push(update_list *l, jg_node *param, jg_node *value);

/* ---- optimisers: one row each (optimizers.c) */

/* What a step function needs besides the parameter. */
typedef struct optim_ctx {
    jg_graph *g;
    const char *prefix;     /* where its state lives (state_new) */
    const jg_optimizer *o;
    jg_node *t;             /* the step count after this run (rows with counts_steps) */
    update_list *out;       /* where its updates go */
} optim_ctx;

enum { OPTIM_MAX_STATE = 4 };

typedef struct optim_row {
    jg_optimizer_kind kind;
    const char *name;       /* as messages spell it: "SGD", "Adam" */
    bool adaptive;          /* divides by a running second moment, so coupled L2 is weakened */
    bool counts_steps;      /* keeps the global step count "<prefix>.t" (bias corrections) */
    bool nesterov;          /* accepts o->nesterov */
    /* The suffixes of the per-parameter state the step creates under o's settings; returns
     * how many (at most OPTIM_MAX_STATE). */
    int (*state)(const jg_optimizer *o, const char *suffix[OPTIM_MAX_STATE]);
    /* Appends one parameter's updates: its state first, then w's. lr is in w's dtype, grad is
     * final (accumulated, clipped, with coupled L2); decay: weight_decay applies to w. */
    void (*step)(const optim_ctx *c, jg_node *w, jg_node *grad, jg_node *lr, bool decay);
} optim_row;

/* The row of kind, or NULL when there is none. */
HIDDEN const optim_row *optim_get(jg_optimizer_kind kind);

/* ---- advice (advice_train.c) */

/* Checks a training program's optimiser settings: wrt[i] are the n trainable parameters,
 * grads[i] their gradients (NULL: the loss does not reach them). Writes the warnings into out
 * (whole lines, at most size bytes) and returns how many there are. */
HIDDEN int advice_train(const jg_train_opts *opts, const jg_node *loss, jg_node *const *wrt,
                        jg_node *const *grads, int n, char *out, size_t size);

#endif
