/* The optimisers, one row each: name, what they keep per parameter, and the step that builds
 * one parameter's update as ordinary graph nodes (so it fuses into the update kernels like
 * the rest of the step). Adding an optimiser: its kind in jitgrad.h's jg_optimizer_kind, and
 * here its state and step functions and a row. Their state lives in the store as frozen parameters. */
#include "train/train.h"

#include <math.h>
#include <string.h>

/* ---- optimiser state in the store */

bool state_name(jg_graph *g, char buf[STATE_NAME_SIZE], const char *prefix,
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

bool state_free(jg_graph *g, const char *prefix, const jg_node *param, const char *suffix)
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

jg_node *state_new(jg_graph *g, const char *prefix, jg_node *param, const char *suffix,
                   jg_shape s, double init)
{
    char name[STATE_NAME_SIZE];
    if (!state_name(g, name, prefix, param, suffix))
        return g->poison;
    jg_node *n = jg_param_as(g, name, param ? param->dtype : JG_F64, s, jg_constant(init));
    jg_param_freeze(n, true);
    return n;
}

void update_push(update_list *l, jg_node *param, jg_node *value)
{
    l->u[l->n++] = (jg_update){ param, value };
}

/* ---- the steps */

/* Decoupled weight decay (AdamW's): w_new - lr * wd * w, after the rule. */
static jg_node *decoupled_decay(const optim_ctx *c, jg_node *w, jg_node *w_new, jg_node *lr,
                                bool decay)
{
    if (!decay || c->o->weight_decay == 0)
        return w_new;
    return jg_sub(w_new, jg_mul(lr, jg_scale(w, c->o->weight_decay)));
}

/* SGD / momentum / Nesterov (PyTorch's convention: v = mu v + g). */
static int sgd_state(const jg_optimizer *o, const char *suffix[OPTIM_MAX_STATE])
{
    int n = 0;
    if (o->momentum != 0)
        suffix[n++] = "m";
    return n;
}

static void sgd_step(const optim_ctx *c, jg_node *w, jg_node *grad, jg_node *lr, bool decay)
{
    const jg_optimizer *o = c->o;
    jg_node *step = grad;
    if (o->momentum != 0) {
        jg_node *v = state_new(c->g, c->prefix, w, "m", w->shape, 0);
        jg_node *v_new = jg_add(jg_scale(v, o->momentum), grad);
        update_push(c->out, v, v_new);
        step = o->nesterov ? jg_add(grad, jg_scale(v_new, o->momentum)) : v_new;
    }
    update_push(c->out, w, decoupled_decay(c, w, jg_sub(w, jg_mul(lr, step)), lr, decay));
}

/* Adam with bias correction; c->t is the already incremented step. */
static int adam_state(const jg_optimizer *o, const char *suffix[OPTIM_MAX_STATE])
{
    (void)o;
    suffix[0] = "m";
    suffix[1] = "v";
    return 2;
}

static void adam_step(const optim_ctx *c, jg_node *w, jg_node *grad, jg_node *lr, bool decay)
{
    const jg_optimizer *o = c->o;
    double b1 = o->beta1 ? o->beta1 : 0.9, b2 = o->beta2 ? o->beta2 : 0.999;
    double eps = o->eps ? o->eps : 1e-8;
    jg_node *m = state_new(c->g, c->prefix, w, "m", w->shape, 0);
    jg_node *v = state_new(c->g, c->prefix, w, "v", w->shape, 0);
    jg_node *m_new = jg_add(jg_scale(m, b1), jg_scale(grad, 1 - b1));
    jg_node *v_new = jg_add(jg_scale(v, b2), jg_scale(jg_square(grad), 1 - b2));
    /* 1 - beta^t as exp(t log beta), since pow takes a constant exponent */
    jg_node *c1 = jg_cast(jg_shift(jg_neg(jg_exp(jg_scale(c->t, log(b1)))), 1), w->dtype);
    jg_node *c2 = jg_cast(jg_shift(jg_neg(jg_exp(jg_scale(c->t, log(b2)))), 1), w->dtype);
    /* PyTorch's arrangement: the corrections fold into two scalars (1/sqrt(c2), lr/c1), so
     * each element costs one square root and one division rather than three divisions */
    jg_node *denom = jg_shift(jg_mul(jg_sqrt(v_new), jg_rsqrt(c2)), eps);
    jg_node *w_new = jg_sub(w, jg_mul(jg_div(lr, c1), jg_div(m_new, denom)));
    update_push(c->out, m, m_new);
    update_push(c->out, v, v_new);
    update_push(c->out, w, decoupled_decay(c, w, w_new, lr, decay));
}

/* RMSprop, PyTorch's rule: eps outside the square root, momentum on the scaled step. */
static int rmsprop_state(const jg_optimizer *o, const char *suffix[OPTIM_MAX_STATE])
{
    int n = 0;
    suffix[n++] = "v";
    if (o->momentum != 0)
        suffix[n++] = "m";
    return n;
}

static void rmsprop_step(const optim_ctx *c, jg_node *w, jg_node *grad, jg_node *lr,
                         bool decay)
{
    const jg_optimizer *o = c->o;
    double alpha = o->alpha ? o->alpha : 0.99, eps = o->eps ? o->eps : 1e-8;
    jg_node *v = state_new(c->g, c->prefix, w, "v", w->shape, 0);
    jg_node *v_new = jg_add(jg_scale(v, alpha), jg_scale(jg_square(grad), 1 - alpha));
    jg_node *step = jg_div(grad, jg_shift(jg_sqrt(v_new), eps));
    update_push(c->out, v, v_new);
    if (o->momentum != 0) {
        jg_node *b = state_new(c->g, c->prefix, w, "m", w->shape, 0);
        step = jg_add(jg_scale(b, o->momentum), step);
        update_push(c->out, b, step);
    }
    update_push(c->out, w, decoupled_decay(c, w, jg_sub(w, jg_mul(lr, step)), lr, decay));
}

/* ---- the rows */

static const optim_row rows[] = {
    { .kind = JG_OPT_SGD, .name = "SGD", .nesterov = true,
      .state = sgd_state, .step = sgd_step },
    { .kind = JG_OPT_ADAM, .name = "Adam", .adaptive = true, .counts_steps = true,
      .state = adam_state, .step = adam_step },
    { .kind = JG_OPT_RMSPROP, .name = "RMSprop", .adaptive = true,
      .state = rmsprop_state, .step = rmsprop_step },
};

const optim_row *optim_get(jg_optimizer_kind kind)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].kind == kind)
            return &rows[i];
    return NULL;
}
