/* Training programs: the loss, its gradients and the optimiser update compiled as one program.
 * The update rules are ordinary graph nodes and the optimiser state lives in the parameter
 * store (frozen parameters), so the step is differentiable, inspectable and fusable like the
 * rest; the program's updates write the new values back after each run. */
#include "ops/op.h"

#include <stdlib.h>
#include <string.h>

/* The store entry "<param>.<suffix>" (created zero on first use), or poison on error. */
static jg_node *state(jg_graph *g, jg_node *param, const char *suffix, jg_shape s, double init)
{
    char name[256];
    snprintf(name, sizeof name, "%s.%s", param ? param->name : "opt", suffix);
    jg_node *n = jg_param_find(g, name);
    if (!n) {
        n = jg_param_as(g, name, param ? param->dtype : JG_F64, s, jg_constant(init));
        jg_param_freeze(n, true);
    }
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
static void sgd_step(jg_graph *g, const jg_optimizer *o, jg_node *w, jg_node *grad,
                     jg_node *lr, update_list *out)
{
    jg_node *step = grad;
    if (o->momentum != 0) {
        jg_node *v = state(g, w, "m", w->shape, 0);
        jg_node *v_new = jg_add(jg_scale(v, o->momentum), grad);
        push(out, v, v_new);
        step = o->nesterov ? jg_add(grad, jg_scale(v_new, o->momentum)) : v_new;
    }
    jg_node *w_new = jg_sub(w, jg_mul(lr, step));
    if (o->weight_decay != 0)
        w_new = jg_sub(w_new, jg_mul(lr, jg_scale(w, o->weight_decay)));
    push(out, w, w_new);
}

/* One parameter's Adam step with bias correction; t is the already incremented step. */
static void adam_step(jg_graph *g, const jg_optimizer *o, jg_node *w, jg_node *grad,
                      jg_node *lr, jg_node *t, update_list *out)
{
    double b1 = o->beta1 ? o->beta1 : 0.9, b2 = o->beta2 ? o->beta2 : 0.999;
    double eps = o->eps ? o->eps : 1e-8;
    jg_node *m = state(g, w, "m", w->shape, 0), *v = state(g, w, "v", w->shape, 0);
    jg_node *m_new = jg_add(jg_scale(m, b1), jg_scale(grad, 1 - b1));
    jg_node *v_new = jg_add(jg_scale(v, b2), jg_scale(jg_square(grad), 1 - b2));
    /* 1 - beta^t as exp(t log beta), since pow takes a constant exponent */
    jg_node *c1 = jg_cast(jg_shift(jg_neg(jg_exp(jg_scale(t, log(b1)))), 1), w->dtype);
    jg_node *c2 = jg_cast(jg_shift(jg_neg(jg_exp(jg_scale(t, log(b2)))), 1), w->dtype);
    jg_node *denom = jg_shift(jg_sqrt(jg_div(v_new, c2)), eps);
    jg_node *w_new = jg_sub(w, jg_mul(lr, jg_div(jg_div(m_new, c1), denom)));
    if (o->weight_decay != 0)
        w_new = jg_sub(w_new, jg_mul(lr, jg_scale(w, o->weight_decay)));
    push(out, m, m_new);
    push(out, v, v_new);
    push(out, w, w_new);
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
    if ((unsigned)o->kind > JG_OPT_ADAM || !(o->lr > 0) || o->momentum < 0 ||
        o->beta1 < 0 || o->beta1 >= 1 || o->beta2 < 0 || o->beta2 >= 1) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile_train: invalid optimiser (kind %d, lr %g, momentum %g, betas "
                    "%g %g)", (int)o->kind, o->lr, o->momentum, o->beta1, o->beta2);
        return NULL;
    }
    if (!loss || loss->graph != g || node_poisoned(loss) || loss->shape.ndim != 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: loss must be a scalar "
                    "node of this graph");
        return NULL;
    }
    if (opts->n_extra_outputs < 0 || (opts->n_extra_outputs > 0 && !opts->extra_outputs)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: bad extra outputs");
        return NULL;
    }
    /* Trainable: parameters that exist now and are not frozen (state added below is). */
    int n_params = g->n_params, n_train = 0;
    jg_node **wrt = malloc(((size_t)n_params + 1) * sizeof *wrt);
    jg_node **grads = malloc(((size_t)n_params + 1) * sizeof *grads);
    jg_node **outs = malloc(((size_t)opts->n_extra_outputs + 1) * sizeof *outs);
    update_list ups = { malloc(((size_t)n_params * 3 + 1) * sizeof *ups.u), 0 };
    jg_program *p = NULL;
    if (!wrt || !grads || !outs || !ups.u) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_NOMEM, "jg_compile_train: out of memory");
        goto done;
    }
    for (int i = 0; i < n_params; i++)
        if (!g->params[i].frozen)
            wrt[n_train++] = g->params[i].node;
    if (n_train == 0) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile_train: no trainable parameters");
        goto done;
    }
    if (jg_grad(g, loss, wrt, n_train, grads) != JG_OK)
        goto done;

    /* The learning rate is a store entry so it can change between runs without recompiling. */
    jg_node *lr = state(g, NULL, "lr", JG_SCALAR, o->lr);
    double lr_value = o->lr;
    jg_param_set(g, "opt.lr", &lr_value, sizeof lr_value);
    jg_node *t = NULL;
    if (o->kind == JG_OPT_ADAM) {
        jg_node *t_old = state(g, NULL, "t", JG_SCALAR, 0);
        t = jg_shift(t_old, 1);
        push(&ups, t_old, t);
    }
    for (int i = 0; i < n_train; i++) {
        if (!grads[i])
            continue; /* the loss does not depend on it */
        jg_node *w = wrt[i], *lr_w = jg_cast(lr, w->dtype);
        if (o->kind == JG_OPT_SGD)
            sgd_step(g, o, w, grads[i], lr_w, &ups);
        else
            adam_step(g, o, w, grads[i], lr_w, t, &ups);
    }
    outs[0] = loss;
    if (opts->n_extra_outputs)
        memcpy(outs + 1, opts->extra_outputs, (size_t)opts->n_extra_outputs * sizeof *outs);
    if (g->status == JG_OK)
        p = jg_compile(g, outs, 1 + opts->n_extra_outputs,
                       &(jg_opts){ .executor = opts->executor, .updates = ups.u,
                                   .n_updates = ups.n });
done:
    free(wrt);
    free(grads);
    free(outs);
    free(ups.u);
    return p;
}
