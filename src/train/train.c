/* Training programs: the loss, its gradients and the optimiser update compiled as one program.
 * jg_compile_train goes in stages: check the settings, pick the trainable parameters,
 * differentiate (with L2 penalties turned into decay), accumulate, clip, append each
 * parameter's optimiser step (optimizers.c), compile, advise. The update rules are ordinary
 * graph nodes and the optimiser state lives in the parameter store (frozen parameters), so the
 * step is inspectable and fusable like the rest; the program's updates write the new values
 * back after each run. */
#include "train/train.h"

#include "compiler/advice.h"
#include "compiler/l2_decay.h"
#include "program/program.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* Checks every setting; each test is written so that NaN fails it. */
static bool optimizer_ok(jg_graph *g, const jg_optimizer *o)
{
    const optim_row *row = optim_get(o->kind);
    if (!row) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: invalid optimiser: unknown kind %d", (int)o->kind);
        return false;
    }
    const struct {
        const char *name;
        double value;
        bool ok;
        const char *want;
    } field[] = {
        { "lr", o->lr, o->lr > 0 && o->lr <= DBL_MAX, "> 0 and finite" },
        { "momentum", o->momentum, o->momentum >= 0 && o->momentum <= DBL_MAX,
          ">= 0 and finite" },
        { "beta1", o->beta1, o->beta1 >= 0 && o->beta1 < 1, "in [0, 1)" },
        { "beta2", o->beta2, o->beta2 >= 0 && o->beta2 < 1, "in [0, 1)" },
        { "eps", o->eps, o->eps >= 0 && o->eps <= DBL_MAX, ">= 0 and finite" },
        { "weight_decay", o->weight_decay, o->weight_decay >= 0 && o->weight_decay <= DBL_MAX,
          ">= 0 and finite" },
        { "alpha", o->alpha, o->alpha >= 0 && o->alpha < 1, "in [0, 1)" },
        { "l2", o->l2, o->l2 >= 0 && o->l2 <= DBL_MAX, ">= 0 and finite" },
    };
    for (size_t i = 0; i < sizeof field / sizeof field[0]; i++)
        if (!field[i].ok) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                        "jg_compile_train: invalid optimiser: %s %g (must be %s)",
                        field[i].name, field[i].value, field[i].want);
            return false;
        }
    if (o->nesterov && !row->nesterov) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: invalid optimiser: nesterov is for SGD only, not %s",
                    row->name);
        return false;
    }
    if (o->nesterov && o->momentum == 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: invalid optimiser: nesterov needs momentum > 0");
        return false;
    }
    return true;
}

/* Checks the groups and accumulate; each test is written so that NaN fails it. */
static bool train_opts_ok(jg_graph *g, const jg_train_opts *opts)
{
    if (opts->n_groups < 0 || (opts->n_groups > 0 && !opts->groups)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: bad parameter groups "
                    "(n_groups %d, groups %s)", opts->n_groups, opts->groups ? "set" : "NULL");
        return false;
    }
    for (int i = 0; i < opts->n_groups; i++) {
        const jg_param_group *pg = &opts->groups[i];
        if (!pg->prefix) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: parameter group %d "
                        "has no prefix (\"\" matches every parameter)", i);
            return false;
        }
        if (!(pg->lr_scale >= 0 && pg->lr_scale <= DBL_MAX)) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: parameter group %d "
                        "('%s'): lr_scale %g (must be >= 0 and finite; freeze with .frozen)",
                        i, pg->prefix, pg->lr_scale);
            return false;
        }
    }
    if (!(opts->clip_value >= 0) || !(opts->clip_norm >= 0) || isinf(opts->clip_value) ||
        isinf(opts->clip_norm)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: clip_value %g and clip_norm %g must be finite and >= 0",
                    opts->clip_value, opts->clip_norm);
        return false;
    }
    if (opts->accumulate < 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: accumulate %d (must be >= 0)", opts->accumulate);
        return false;
    }
    return true;
}

const jg_param_group *param_group_of(const jg_train_opts *opts, const char *name)
{
    for (int i = 0; i < opts->n_groups; i++)
        if (strncmp(name, opts->groups[i].prefix, strlen(opts->groups[i].prefix)) == 0)
            return &opts->groups[i];
    return NULL;
}

/* Checks every state name the step will create before creating any, so that a failure
 * leaves the store as it was. */
static bool state_names_free(jg_graph *g, const char *prefix, const jg_optimizer *o,
                             bool accumulating, jg_node *const *wrt, jg_node *const *grads,
                             int n)
{
    const optim_row *row = optim_get(o->kind);
    if (!state_free(g, prefix, NULL, "lr") ||
        (row->counts_steps && !state_free(g, prefix, NULL, "t")) ||
        (accumulating && !state_free(g, prefix, NULL, "count")))
        return false;
    const char *suffix[OPTIM_MAX_STATE];
    int n_state = row->state(o, suffix);
    for (int i = 0; i < n; i++) {
        if (!grads[i])
            continue;
        for (int k = 0; k < n_state; k++)
            if (!state_free(g, prefix, wrt[i], suffix[k]))
                return false;
        if (accumulating && !state_free(g, prefix, wrt[i], "acc"))
            return false;
    }
    return true;
}

/* Gradient clipping, inserted between the gradients and the update (where the JIT fuses it
 * into the update kernels): by value, each element clamped to [-M, M]; by norm, every
 * gradient scaled by min(1, N / norm), the norm global over all parameters or per
 * parameter. Clipping acts on the gradient the step uses (the mean, when accumulating). */
static void clip_gradients(const jg_train_opts *opts, jg_node **grads, int n)
{
    double m = opts->clip_value, limit = opts->clip_norm;
    for (int i = 0; i < n && m > 0; i++)
        if (grads[i])
            grads[i] = jg_clamp(grads[i], -m, m);
    if (!(limit > 0))
        return;
    jg_node *total = NULL;
    for (int i = 0; i < n; i++) {
        if (!grads[i])
            continue;
        jg_node *sq = jg_cast(jg_sum(jg_square(grads[i]), JG_ALL_AXES, false), JG_F64);
        if (opts->clip_per_param) {
            jg_node *scale = jg_minimum(jg_scalar_like(sq, 1),
                                        jg_div(jg_scalar_like(sq, limit),
                                               jg_shift(jg_sqrt(sq), 1e-12)));
            grads[i] = jg_mul(grads[i], jg_cast(scale, grads[i]->dtype));
        } else {
            total = total ? jg_add(total, sq) : sq;
        }
    }
    if (!total)
        return;
    jg_node *scale = jg_minimum(jg_scalar_like(total, 1),
                                jg_div(jg_scalar_like(total, limit),
                                       jg_shift(jg_sqrt(total), 1e-12)));
    for (int i = 0; i < n; i++)
        if (grads[i])
            grads[i] = jg_mul(grads[i], jg_cast(scale, grads[i]->dtype));
}

/* What the stages of jg_compile_train build up. */
typedef struct train_build {
    jg_graph *g;
    const jg_train_opts *opts;
    const char *prefix;     /* of the optimiser state: opts->name, or "opt" */
    jg_node *loss;
    jg_node **wrt, **grads; /* the n trainable parameters and their gradients (NULL: none) */
    double *l2;             /* per parameter: penalties applied as decay (l2_decay) */
    int n;
    int accumulate;         /* runs per step (1: none) */
    jg_node *last;          /* accumulating: true on the run that steps */
    update_list ups;
} train_build;

/* Everything checkable before a node is built: a failure leaves the graph as it was. */
static bool train_args_ok(jg_graph *g, jg_node *loss, const jg_train_opts *opts)
{
    if (!opts) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: opts is NULL");
        return false;
    }
    if (!optimizer_ok(g, &opts->optimizer) || !train_opts_ok(g, opts))
        return false;
    if (!loss || loss->graph != g || node_poisoned(loss) || loss->shape.ndim != 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: loss must be a scalar "
                    "node of this graph");
        return false;
    }
    if (opts->compile.n_updates || opts->compile.updates) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: opts.compile.updates must be empty (the optimiser "
                    "makes the updates)");
        return false;
    }
    if (opts->n_extra_outputs < 0 || (opts->n_extra_outputs > 0 && !opts->extra_outputs)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: bad extra outputs");
        return false;
    }
    /* Two programs sharing one optimiser state would overwrite each other's learning rate
     * and moments: each needs its own prefix. */
    const char *prefix = opts->name && *opts->name ? opts->name : "opt";
    char lr_name[STATE_NAME_SIZE];
    if (!state_name(g, lr_name, prefix, NULL, "lr"))
        return false;
    if (store_find(g, lr_name)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: optimiser state '%s' "
                    "already exists: give each training program its own opts.name", prefix);
        return false;
    }
    return true;
}

/* Trainable: parameters that exist now and are not frozen (state added later is). */
static bool pick_trainable(train_build *b)
{
    jg_graph *g = b->g;
    for (int i = 0; i < g->n_params; i++) {
        const jg_param_group *pg = param_group_of(b->opts, g->params[i].node->name);
        if (!g->params[i].frozen && !(pg && pg->frozen))
            b->wrt[b->n++] = g->params[i].node;
    }
    if (b->n == 0)
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: no trainable parameters");
    return b->n > 0;
}

/* The gradients, with the L2 penalties that l2_decay turns into decay left out of them. */
static bool differentiate(train_build *b)
{
    jg_node *grad_loss;
    pass_l2_decay(b->g, b->opts, b->loss, b->wrt, b->n, &grad_loss, b->l2);
    if (jg_grad(b->g, grad_loss, b->wrt, b->n, b->grads) != JG_OK)
        return false;
    for (int i = 0; i < b->n; i++) /* penalised, but C does not depend on it */
        if (b->l2[i] != 0 && !b->grads[i])
            b->grads[i] = jg_fill(b->g, b->wrt[i]->dtype, b->wrt[i]->shape, 0);
    return true;
}

/* Accumulation: each run adds its gradient into "<p>.acc"; on the last run of a cycle
 * (count == accumulate - 1) the step uses their mean and every update goes through, on the
 * others where() keeps the old values (gate_updates). */
static void accumulate_gradients(train_build *b)
{
    if (b->accumulate == 1)
        return;
    jg_node *count = state_new(b->g, b->prefix, NULL, "count", JG_SCALAR, 0);
    b->last = jg_eq(count, jg_scalar_like(count, b->accumulate - 1));
    for (int i = 0; i < b->n; i++) {
        if (!b->grads[i])
            continue;
        jg_node *acc = state_new(b->g, b->prefix, b->wrt[i], "acc", b->wrt[i]->shape, 0);
        jg_node *sum = jg_add(acc, b->grads[i]);
        update_push(&b->ups, acc, jg_where(b->last, jg_scalar_like(sum, 0), sum));
        b->grads[i] = jg_scale(sum, 1.0 / b->accumulate);
    }
    update_push(&b->ups, count,
                jg_where(b->last, jg_scalar_like(count, 0), jg_shift(count, 1)));
}

/* Each parameter's step by its optimiser's row, with its group's learning-rate scale and
 * decay setting and any coupled L2. */
static void optimiser_updates(train_build *b, jg_node *lr)
{
    const jg_optimizer *o = &b->opts->optimizer;
    const optim_row *row = optim_get(o->kind);
    optim_ctx c = { b->g, b->prefix, o, NULL, &b->ups };
    if (row->counts_steps) {
        jg_node *t_old = state_new(b->g, b->prefix, NULL, "t", JG_SCALAR, 0);
        c.t = jg_shift(t_old, 1);
        update_push(&b->ups, t_old, c.t);
    }
    for (int i = 0; i < b->n; i++) {
        if (!b->grads[i])
            continue; /* the loss does not depend on it */
        jg_node *w = b->wrt[i], *lr_w = jg_cast(lr, w->dtype), *grad = b->grads[i];
        const jg_param_group *pg = param_group_of(b->opts, w->name);
        bool decay = !(pg && pg->no_decay);
        if (pg && pg->lr_scale != 0 && pg->lr_scale != 1)
            lr_w = jg_scale(lr_w, pg->lr_scale);
        double l2_w = (decay ? o->l2 : 0) + b->l2[i]; /* a penalty applies in every group */
        if (l2_w != 0)
            grad = jg_add(grad, jg_scale(w, l2_w)); /* coupled: the gradient of l2/2 |w|^2 */
        row->step(&c, w, grad, lr_w, decay);
    }
}

/* Accumulating: updates from `first` on take effect only on the run that steps. */
static void gate_updates(train_build *b, int first)
{
    for (int i = first; b->last && i < b->ups.n; i++)
        b->ups.u[i].value = jg_where(b->last, b->ups.u[i].value, b->ups.u[i].param);
}

/* The program: the loss and the extra outputs, the updates, training mode; then the advice
 * about the optimiser settings. */
static jg_program *compile_step(train_build *b)
{
    const jg_train_opts *opts = b->opts;
    jg_node **outs = malloc(((size_t)opts->n_extra_outputs + 1) * sizeof *outs);
    if (!outs) {
        graph_error(b->g, (jg_loc){ 0 }, JG_ERR_NOMEM, "jg_compile_train: out of memory");
        return NULL;
    }
    outs[0] = b->loss;
    if (opts->n_extra_outputs)
        memcpy(outs + 1, opts->extra_outputs, (size_t)opts->n_extra_outputs * sizeof *outs);
    jg_opts co = opts->compile;
    if (co.mode == JG_MODE_DEFAULT)
        co.mode = JG_MODE_TRAIN;
    co.updates = b->ups.u;
    co.n_updates = b->ups.n;
    jg_program *p = jg_compile(b->g, outs, 1 + opts->n_extra_outputs, &co);
    free(outs);
    char *text = p ? malloc(ADVICE_TEXT_SIZE) : NULL; /* without it, no advice */
    if (text) {
        int n = advice_train(opts, b->loss, b->wrt, b->grads, b->n, text, ADVICE_TEXT_SIZE);
        program_warn(p, text, n, co.print_warnings);
    }
    free(text);
    return p;
}

jg_program *jg_compile_train(jg_graph *g, jg_node *loss, const jg_train_opts *opts)
{
    if (!g || g->status != JG_OK || !train_args_ok(g, loss, opts))
        return NULL;
    int n_params = g->n_params;
    train_build b = {
        .g = g, .opts = opts, .loss = loss,
        .prefix = opts->name && *opts->name ? opts->name : "opt",
        .accumulate = opts->accumulate > 1 ? opts->accumulate : 1,
        .wrt = malloc(((size_t)n_params + 1) * sizeof *b.wrt),
        .grads = malloc(((size_t)n_params + 1) * sizeof *b.grads),
        .l2 = calloc((size_t)n_params + 1, sizeof *b.l2),
        /* at most: per parameter its state, the accumulator and itself; t and count */
        .ups = { malloc(((size_t)n_params * (OPTIM_MAX_STATE + 2) + 3) * sizeof *b.ups.u), 0 },
    };
    jg_program *p = NULL;
    if (!b.wrt || !b.grads || !b.l2 || !b.ups.u) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_NOMEM, "jg_compile_train: out of memory");
        goto done;
    }
    if (!pick_trainable(&b) || !differentiate(&b) ||
        !state_names_free(g, b.prefix, &opts->optimizer, b.accumulate > 1, b.wrt, b.grads,
                          b.n))
        goto done;
    /* The learning rate is a store entry so it can change between runs without recompiling. */
    jg_node *lr = state_new(g, b.prefix, NULL, "lr", JG_SCALAR, opts->optimizer.lr);
    accumulate_gradients(&b);
    clip_gradients(opts, b.grads, b.n);
    int first_gated = b.ups.n;
    optimiser_updates(&b, lr);
    gate_updates(&b, first_gated);
    if (g->status == JG_OK)
        p = compile_step(&b);
done:
    free(b.wrt);
    free(b.grads);
    free(b.l2);
    free(b.ups.u);
    return p;
}
