/* Training programs: the loss, its gradients and the optimiser update compiled as one program.
 * The update rules (SGD, Adam, RMSprop; coupled L2, decoupled decay; parameter groups;
 * gradient accumulation) are ordinary graph nodes and the optimiser state lives in the
 * parameter store (frozen parameters), so the step is inspectable and fusable like the rest;
 * the program's updates write the new values back after each run. */
#include "graph/passes/l2_decay.h"
#include "graph/passes/lint.h"
#include "ops/op.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* Store names of optimiser state are "<prefix>.<suffix>" or "<prefix>.<param>.<suffix>". */
enum { STATE_NAME_SIZE = 256 };

/* Writes the state name into buf; false (with the error recorded) when it does not fit:
 * a truncated name could alias another parameter's state. */
static bool state_name(jg_graph *g, char buf[STATE_NAME_SIZE], const char *prefix,
                       const jg_node *param, const char *suffix)
{
    int n = param ? snprintf(buf, STATE_NAME_SIZE, "%s.%s.%s", prefix, param->name, suffix)
                  : snprintf(buf, STATE_NAME_SIZE, "%s.%s", prefix, suffix);
    if (n < 0 || n >= STATE_NAME_SIZE) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: optimiser state name '%.48s...' has %d characters, at "
                    "most %d fit: shorten opts.name or the parameter's name", buf, n,
                    STATE_NAME_SIZE - 1);
        return false;
    }
    return true;
}

/* Checks that the state name is free: the user's own parameters and inputs are never
 * silently taken over as optimiser state. */
static bool state_free(jg_graph *g, const char *prefix, const jg_node *param,
                       const char *suffix)
{
    char name[STATE_NAME_SIZE];
    if (!state_name(g, name, prefix, param, suffix))
        return false;
    for (int i = 0; i < g->n_nodes; i++) {
        jg_node *n = g->nodes[i];
        if ((n->op == JG_OP_PARAM || n->op == JG_OP_INPUT) && strcmp(n->name, name) == 0) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: optimiser state "
                        "name '%s' is already used by %s", name,
                        n->op == JG_OP_INPUT ? "an input" : "a parameter");
            return false;
        }
    }
    return true;
}

/* Creates the store entry (frozen, filled with init); its name was checked by state_free. */
static jg_node *state(jg_graph *g, const char *prefix, jg_node *param, const char *suffix,
                      jg_shape s, double init)
{
    char name[STATE_NAME_SIZE];
    if (!state_name(g, name, prefix, param, suffix))
        return g->poison;
    jg_node *n = jg_param_as(g, name, param ? param->dtype : JG_F64, s, jg_constant(init));
    jg_param_freeze(n, true);
    return n;
}

typedef struct update_list {
    jg_update *u;
    int n;
} update_list;

static void push(update_list *l, jg_node *param, jg_node *value)
{
    l->u[l->n++] = (jg_update){ param, value };
}

/* One parameter's SGD / momentum / Nesterov step (PyTorch's convention: v = mu v + g). */
static void sgd_step(jg_graph *g, const char *prefix, const jg_optimizer *o, jg_node *w,
                     jg_node *grad, jg_node *lr, bool decay, update_list *out)
{
    jg_node *step = grad;
    if (o->momentum != 0) {
        jg_node *v = state(g, prefix, w, "m", w->shape, 0);
        jg_node *v_new = jg_add(jg_scale(v, o->momentum), grad);
        push(out, v, v_new);
        step = o->nesterov ? jg_add(grad, jg_scale(v_new, o->momentum)) : v_new;
    }
    jg_node *w_new = jg_sub(w, jg_mul(lr, step));
    if (decay && o->weight_decay != 0)
        w_new = jg_sub(w_new, jg_mul(lr, jg_scale(w, o->weight_decay)));
    push(out, w, w_new);
}

/* One parameter's Adam step with bias correction; t is the already incremented step. */
static void adam_step(jg_graph *g, const char *prefix, const jg_optimizer *o, jg_node *w,
                      jg_node *grad, jg_node *lr, jg_node *t, bool decay, update_list *out)
{
    double b1 = o->beta1 ? o->beta1 : 0.9, b2 = o->beta2 ? o->beta2 : 0.999;
    double eps = o->eps ? o->eps : 1e-8;
    jg_node *m = state(g, prefix, w, "m", w->shape, 0);
    jg_node *v = state(g, prefix, w, "v", w->shape, 0);
    jg_node *m_new = jg_add(jg_scale(m, b1), jg_scale(grad, 1 - b1));
    jg_node *v_new = jg_add(jg_scale(v, b2), jg_scale(jg_square(grad), 1 - b2));
    /* 1 - beta^t as exp(t log beta), since pow takes a constant exponent */
    jg_node *c1 = jg_cast(jg_shift(jg_neg(jg_exp(jg_scale(t, log(b1)))), 1), w->dtype);
    jg_node *c2 = jg_cast(jg_shift(jg_neg(jg_exp(jg_scale(t, log(b2)))), 1), w->dtype);
    /* PyTorch's arrangement: the corrections fold into two scalars (1/sqrt(c2), lr/c1), so
     * each element costs one square root and one division rather than three divisions */
    jg_node *denom = jg_shift(jg_mul(jg_sqrt(v_new), jg_rsqrt(c2)), eps);
    jg_node *w_new = jg_sub(w, jg_mul(jg_div(lr, c1), jg_div(m_new, denom)));
    if (decay && o->weight_decay != 0)
        w_new = jg_sub(w_new, jg_mul(lr, jg_scale(w, o->weight_decay)));
    push(out, m, m_new);
    push(out, v, v_new);
    push(out, w, w_new);
}

/* One parameter's RMSprop step, PyTorch's rule: eps outside the square root, momentum on the
 * scaled step. */
static void rmsprop_step(jg_graph *g, const char *prefix, const jg_optimizer *o, jg_node *w,
                         jg_node *grad, jg_node *lr, bool decay, update_list *out)
{
    double alpha = o->alpha ? o->alpha : 0.99, eps = o->eps ? o->eps : 1e-8;
    jg_node *v = state(g, prefix, w, "v", w->shape, 0);
    jg_node *v_new = jg_add(jg_scale(v, alpha), jg_scale(jg_square(grad), 1 - alpha));
    jg_node *step = jg_div(grad, jg_shift(jg_sqrt(v_new), eps));
    push(out, v, v_new);
    if (o->momentum != 0) {
        jg_node *b = state(g, prefix, w, "m", w->shape, 0);
        step = jg_add(jg_scale(b, o->momentum), step);
        push(out, b, step);
    }
    jg_node *w_new = jg_sub(w, jg_mul(lr, step));
    if (decay && o->weight_decay != 0)
        w_new = jg_sub(w_new, jg_mul(lr, jg_scale(w, o->weight_decay)));
    push(out, w, w_new);
}

/* Checks every setting; each test is written so that NaN fails it. */
static bool optimizer_ok(jg_graph *g, const jg_optimizer *o)
{
    if ((unsigned)o->kind > JG_OPT_RMSPROP) {
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
    if (o->nesterov && o->kind != JG_OPT_SGD) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: invalid optimiser: nesterov is for SGD only");
        return false;
    }
    if (o->kind == JG_OPT_SGD && o->nesterov && o->momentum == 0) {
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

/* The first group whose prefix the name starts with, or NULL. */
static const jg_param_group *group_of(const jg_train_opts *opts, const char *name)
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
    bool adam = o->kind == JG_OPT_ADAM, rms = o->kind == JG_OPT_RMSPROP;
    if (!state_free(g, prefix, NULL, "lr") || (adam && !state_free(g, prefix, NULL, "t")) ||
        (accumulating && !state_free(g, prefix, NULL, "count")))
        return false;
    for (int i = 0; i < n; i++) {
        if (!grads[i])
            continue;
        if ((adam || o->momentum != 0) && !state_free(g, prefix, wrt[i], "m"))
            return false;
        if ((adam || rms) && !state_free(g, prefix, wrt[i], "v"))
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

jg_program *jg_compile_train(jg_graph *g, jg_node *loss, const jg_train_opts *opts)
{
    if (!g)
        return NULL;
    if (g->status != JG_OK)
        return NULL;
    if (!opts) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: opts is NULL");
        return NULL;
    }
    const jg_optimizer *o = &opts->optimizer;
    if (!optimizer_ok(g, o) || !train_opts_ok(g, opts))
        return NULL;
    int accumulate = opts->accumulate > 1 ? opts->accumulate : 1;
    if (!loss || loss->graph != g || node_poisoned(loss) || loss->shape.ndim != 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: loss must be a scalar "
                    "node of this graph");
        return NULL;
    }
    if (opts->compile.n_updates || opts->compile.updates) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: opts.compile.updates must be empty (the optimiser "
                    "makes the updates)");
        return NULL;
    }
    if (opts->n_extra_outputs < 0 || (opts->n_extra_outputs > 0 && !opts->extra_outputs)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: bad extra outputs");
        return NULL;
    }
    /* Two programs sharing one optimiser state would overwrite each other's learning rate
     * and moments: each needs its own prefix. */
    const char *prefix = opts->name && *opts->name ? opts->name : "opt";
    char lr_name[STATE_NAME_SIZE];
    if (!state_name(g, lr_name, prefix, NULL, "lr"))
        return NULL;
    if (store_find(g, lr_name)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: optimiser state '%s' "
                    "already exists: give each training program its own opts.name", prefix);
        return NULL;
    }
    /* Trainable: parameters that exist now and are not frozen (state added below is). */
    int n_params = g->n_params, n_train = 0;
    jg_node **wrt = malloc(((size_t)n_params + 1) * sizeof *wrt);
    jg_node **grads = malloc(((size_t)n_params + 1) * sizeof *grads);
    double *l2 = calloc((size_t)n_params + 1, sizeof *l2); /* penalties applied as decay */
    jg_node **outs = malloc(((size_t)opts->n_extra_outputs + 1) * sizeof *outs);
    update_list ups = { malloc(((size_t)n_params * 4 + 2) * sizeof *ups.u), 0 };
    jg_program *p = NULL;
    if (!wrt || !grads || !l2 || !outs || !ups.u) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_NOMEM, "jg_compile_train: out of memory");
        goto done;
    }
    for (int i = 0; i < n_params; i++) {
        const jg_param_group *pg = group_of(opts, g->params[i].node->name);
        if (!g->params[i].frozen && !(pg && pg->frozen))
            wrt[n_train++] = g->params[i].node;
    }
    if (n_train == 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: no trainable parameters");
        goto done;
    }
    jg_node *grad_loss;
    pass_l2_decay(g, opts, loss, wrt, n_train, &grad_loss, l2);
    if (jg_grad(g, grad_loss, wrt, n_train, grads) != JG_OK)
        goto done;
    for (int i = 0; i < n_train; i++) /* penalised, but C does not depend on it */
        if (l2[i] != 0 && !grads[i])
            grads[i] = jg_fill(g, wrt[i]->dtype, wrt[i]->shape, 0);
    if (!state_names_free(g, prefix, o, accumulate > 1, wrt, grads, n_train))
        goto done;

    /* The learning rate is a store entry so it can change between runs without recompiling. */
    jg_node *lr = state(g, prefix, NULL, "lr", JG_SCALAR, o->lr);
    /* Accumulation: each run adds its gradient into "<p>.acc"; on the last run of a cycle
     * (count == accumulate - 1) the step uses their mean and every update goes through,
     * on the others where() keeps the old values. */
    jg_node *count = NULL, *last = NULL;
    if (accumulate > 1) {
        count = state(g, prefix, NULL, "count", JG_SCALAR, 0);
        last = jg_eq(count, jg_scalar_like(count, accumulate - 1));
        for (int i = 0; i < n_train; i++) {
            if (!grads[i])
                continue;
            jg_node *acc = state(g, prefix, wrt[i], "acc", wrt[i]->shape, 0);
            grads[i] = jg_add(acc, grads[i]);
            push(&ups, acc, jg_where(last, jg_scalar_like(grads[i], 0), grads[i]));
            grads[i] = jg_scale(grads[i], 1.0 / accumulate);
        }
        push(&ups, count, jg_where(last, jg_scalar_like(count, 0), jg_shift(count, 1)));
    }
    clip_gradients(opts, grads, n_train);
    int first_gated = ups.n;
    jg_node *t = NULL;
    if (o->kind == JG_OPT_ADAM) {
        jg_node *t_old = state(g, prefix, NULL, "t", JG_SCALAR, 0);
        t = jg_shift(t_old, 1);
        push(&ups, t_old, t);
    }
    for (int i = 0; i < n_train; i++) {
        if (!grads[i])
            continue; /* the loss does not depend on it */
        jg_node *w = wrt[i], *lr_w = jg_cast(lr, w->dtype), *grad = grads[i];
        const jg_param_group *pg = group_of(opts, w->name);
        bool decay = !(pg && pg->no_decay);
        if (pg && pg->lr_scale != 0 && pg->lr_scale != 1)
            lr_w = jg_scale(lr_w, pg->lr_scale);
        double l2_w = (decay ? o->l2 : 0) + l2[i]; /* a penalty applies in every group */
        if (l2_w != 0)
            grad = jg_add(grad, jg_scale(w, l2_w)); /* coupled: the gradient of l2/2 |w|^2 */
        if (o->kind == JG_OPT_SGD)
            sgd_step(g, prefix, o, w, grad, lr_w, decay, &ups);
        else if (o->kind == JG_OPT_ADAM)
            adam_step(g, prefix, o, w, grad, lr_w, t, decay, &ups);
        else
            rmsprop_step(g, prefix, o, w, grad, lr_w, decay, &ups);
    }
    if (last)
        for (int i = first_gated; i < ups.n; i++)
            ups.u[i].value = jg_where(last, ups.u[i].value, ups.u[i].param);
    outs[0] = loss;
    if (opts->n_extra_outputs)
        memcpy(outs + 1, opts->extra_outputs, (size_t)opts->n_extra_outputs * sizeof *outs);
    if (g->status == JG_OK) {
        jg_opts co = opts->compile;
        if (co.mode == JG_MODE_DEFAULT)
            co.mode = JG_MODE_TRAIN;
        co.updates = ups.u;
        co.n_updates = ups.n;
        p = jg_compile(g, outs, 1 + opts->n_extra_outputs, &co);
        if (p)
            lint_train(p, opts, loss, wrt, grads, n_train);
    }
done:
    free(wrt);
    free(grads);
    free(l2);
    free(outs);
    free(ups.u);
    return p;
}
