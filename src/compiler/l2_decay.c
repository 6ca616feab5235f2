/* L2 penalty -> weight decay. A loss C(w) + c |w|^2 under SGD steps to
 *     w <- w - lr (grad C + 2 c w) = (1 - 2 c lr) w - lr grad C,
 * so instead of differentiating the penalty (2 c w times its incoming gradient, added to the
 * gradient) the training program differentiates C alone and adds 2 c w inside the update
 * kernel, the way the optimiser's coupled `l2` does. With momentum 2 c w still enters the
 * momentum, exactly as the penalty's gradient would. The loss output keeps the penalty's
 * value: only its gradient is cut.
 *
 * NOTE what it saves is small: once simplify has folded the multiply by the incoming
 * gradient (a fill of 1), fusion puts the unrewritten 2 c w into the update kernel too, so
 * with both on the kernel counts are equal (tests/test_pass_l2_decay.c); with both off the
 * rewrite saves that multiply, one kernel per parameter that C also holds.
 *
 * Only SGD: under Adam or RMSprop a penalty is not weight decay (its gradient is rescaled per
 * element with the rest, where AdamW's decay is not), and which one the user meant is not
 * ours to choose: the graph stays as written and the advice says so. Not with gradient
 * clipping, which must see the penalty's gradient too. Only penalties added at the top of
 * the loss: under a scale or inside another op the coefficient is not c. */
#include "compiler/l2_decay.h"
#include "compiler/passes.h"
#include "ops/op.h"

/* Deeper chains of additions are left as written rather than risk the stack. */
enum { MAX_DEPTH = 256 };

/* x with every penalty among the leaves of its addition tree replaced by stop_gradient(P),
 * each penalty's 2 c added into l2[] for the wrt parameters it holds; *found counts them. */
static jg_node *cut(jg_node *x, jg_node *const *wrt, int n, double *l2, int *found, int depth)
{
    if (x->op == JG_OP_ADD && depth < MAX_DEPTH) {
        jg_node *a = cut(x->in[0], wrt, n, l2, found, depth + 1);
        jg_node *b = cut(x->in[1], wrt, n, l2, found, depth + 1);
        return a == x->in[0] && b == x->in[1] ? x : jg_add_(x->at, a, b);
    }
    if (x->op != JG_OP_L2_PENALTY)
        return x;
    for (int k = 0; k < x->n_in; k++) /* a parameter named twice is penalised twice */
        for (int i = 0; i < n; i++)
            if (wrt[i] == x->in[k])
                l2[i] += 2 * x->attr.scalar[0];
    (*found)++;
    return jg_stop_gradient_(x->at, x);
}

bool pass_l2_decay(jg_graph *g, const jg_train_opts *opts, jg_node *loss, jg_node *const *wrt,
                   int n, jg_node **grad_loss, double *l2)
{
    *grad_loss = loss;
    if (opts->optimizer.kind != JG_OPT_SGD || opts->clip_value > 0 || opts->clip_norm > 0 ||
        !pass_enabled(opts->compile.passes_off, "l2_decay"))
        return false;
    int found = 0;
    jg_node *cut_loss = cut(loss, wrt, n, l2, &found, 0);
    if (!found || g->status != JG_OK)
        return false;
    *grad_loss = cut_loss;
    return true;
}
