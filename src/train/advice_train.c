/* Advice about a training program's optimiser settings (jg_compile_train asks for it once
 * the program is compiled, and files it on the program). The rules, per trainable parameter:
 *
 * - no_gradient: the loss does not reach it, or only through ops that pass no gradient
 *   (stop_gradient, comparisons, argmax): it never trains;
 * - decayed_bias_or_norm: weight_decay or l2 applies to a bias or a normalisation scale or
 *   shift (1-D, or named *.bias, *.gamma, *.beta) because no no_decay group holds it:
 *   pulling those toward 0 does not regularise, it only shifts or shrinks activations;
 *
 * and per program:
 *
 * - coupled_l2_adaptive: coupled L2 (optimizer.l2, or a jg_l2_penalty in the loss) with Adam
 *   or RMSprop: the penalty's gradient is divided by the optimiser's per-weight scale, so the
 *   weights with large gradients are barely regularised (Loshchilov and Hutter); decoupled
 *   weight_decay (AdamW) is what was meant;
 * - penalised_bias_or_norm: a bias or normalisation parameter inside a jg_l2_penalty. */
#include "train/train.h"

#include "compiler/advice.h"

#include <stdlib.h>
#include <string.h>

typedef struct train_advice {
    const jg_graph *g;
    const jg_train_opts *opts;
    const jg_node *loss;
    jg_node *const *wrt, *const *grads; /* the n trainable parameters, their gradients */
    int n;
    const bool *reached; /* by node id: the loss's operands, transitively */
    advice_out out;
} train_advice;

static bool bias_or_norm(const jg_node *w)
{
    return w->shape.ndim == 1 || advice_ends_with(w->name, ".bias") ||
           advice_ends_with(w->name, ".gamma") || advice_ends_with(w->name, ".beta");
}

/* Whether weight_decay and l2 apply to w: no parameter group of it says no_decay. */
static bool decayed(const jg_train_opts *opts, const jg_node *w)
{
    const jg_param_group *pg = param_group_of(opts, w->name);
    return !(pg && pg->no_decay);
}

/* ---- per parameter */

static void no_gradient(train_advice *t, const jg_node *w, const jg_node *grad)
{
    if (grad)
        return;
    char a[ADVICE_NAME_SIZE], b[ADVICE_NAME_SIZE], why[2 * ADVICE_NAME_SIZE];
    if (t->reached[w->id])
        snprintf(why, sizeof why, "the loss uses it only through ops that pass no gradient "
                 "(stop_gradient, comparisons, argmax)");
    else
        snprintf(why, sizeof why, "the loss %s does not use it", advice_node(t->loss, b));
    advice_warn(&t->out, "warning: %s is trainable but %s: it never trains; freeze it "
                "(jg_param_freeze, or a frozen parameter group) or connect it\n",
                advice_node(w, a), why);
}

static void decayed_bias_or_norm(train_advice *t, const jg_node *w, const jg_node *grad)
{
    const jg_optimizer *o = &t->opts->optimizer;
    if (!grad || !(o->weight_decay > 0 || o->l2 > 0) || !bias_or_norm(w) ||
        !decayed(t->opts, w))
        return;
    char a[ADVICE_NAME_SIZE];
    advice_warn(&t->out, "warning: %s is a bias or normalisation parameter and gets %s: pulling "
                "it toward 0 does not regularise; give it a parameter group with no_decay\n",
                advice_node(w, a),
                o->weight_decay > 0 && o->l2 > 0 ? "weight_decay and l2"
                : o->weight_decay > 0            ? "weight_decay"
                                               : "l2");
}

typedef void (*param_rule)(train_advice *t, const jg_node *w, const jg_node *grad);

static const param_rule param_rules[] = { no_gradient, decayed_bias_or_norm };

/* ---- per program */

static void coupled_l2_adaptive(train_advice *t)
{
    const jg_optimizer *o = &t->opts->optimizer;
    const optim_row *row = optim_get(o->kind);
    if (!row->adaptive)
        return;
    char a[ADVICE_NAME_SIZE];
    bool applies = false;
    for (int i = 0; i < t->n; i++)
        applies |= t->grads[i] && decayed(t->opts, t->wrt[i]);
    if (o->l2 > 0 && applies)
        advice_warn(&t->out, "warning: the training program of %s uses %s with coupled l2 %g: "
                    "the penalty's gradient is divided by %s's per-weight scale, so weights "
                    "with large gradients are barely regularised; use weight_decay (decoupled, "
                    "as AdamW) instead\n", advice_node(t->loss, a), row->name, o->l2,
                    row->name);
    for (int id = 0; id < t->g->n_nodes; id++) {
        const jg_node *p = t->g->nodes[id];
        if (t->reached[id] && p->op == JG_OP_L2_PENALTY)
            advice_warn(&t->out, "warning: %s is in a loss that %s minimises: coupled L2, whose "
                        "gradient %s divides by its per-weight scale, so weights with large "
                        "gradients are barely regularised; use optimizer.weight_decay "
                        "(decoupled, as AdamW) instead\n", advice_node(p, a), row->name,
                        row->name);
    }
}

static void penalised_bias_or_norm(train_advice *t)
{
    char a[ADVICE_NAME_SIZE], b[ADVICE_NAME_SIZE];
    for (int id = 0; id < t->g->n_nodes; id++) {
        const jg_node *p = t->g->nodes[id];
        for (int k = 0; t->reached[id] && p->op == JG_OP_L2_PENALTY && k < p->n_in; k++)
            if (bias_or_norm(p->in[k]))
                advice_warn(&t->out, "warning: %s is a bias or normalisation parameter inside "
                            "%s: pulling it toward 0 does not regularise; leave it out\n",
                            advice_node(p->in[k], a), advice_node(p, b));
    }
}

typedef void (*program_rule)(train_advice *t);

static const program_rule program_rules[] = { coupled_l2_adaptive, penalised_bias_or_norm };

int advice_train(const jg_train_opts *opts, const jg_node *loss, jg_node *const *wrt,
                 jg_node *const *grads, int n, char *out, size_t size)
{
    const jg_graph *g = loss->graph;
    out[0] = '\0';
    bool *reached = calloc((size_t)g->n_nodes + 1, sizeof *reached);
    if (!reached)
        return 0; /* advice is optional: skip it */
    reached[loss->id] = true;
    for (int id = loss->id; id >= 0; id--)
        for (int k = 0; reached[id] && k < g->nodes[id]->n_in; k++)
            reached[g->nodes[id]->in[k]->id] = true;
    train_advice t = { g, opts, loss, wrt, grads, n, reached, { out, size, 0 } };
    for (int i = 0; i < n; i++)
        for (size_t r = 0; r < sizeof param_rules / sizeof param_rules[0]; r++)
            param_rules[r](&t, wrt[i], grads[i]);
    for (size_t r = 0; r < sizeof program_rules / sizeof program_rules[0]; r++)
        program_rules[r](&t);
    free(reached);
    return t.out.count;
}
