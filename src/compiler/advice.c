/* Advice about what a program computes: warnings about graphs that compute what they say
 * but will not learn what their author wants. Each rule is a function of one node, run over
 * the nodes the program computes (a mode node counts as the operand the program's mode
 * picks); the compiler keeps the warnings on the program (jg_program_warnings). The rules:
 *
 * - relu_then_squash: a sigmoid, softmax or a loss on logits fed straight from a ReLU: its
 *   input is never negative, so a sigmoid never goes below 0.5 and a classifier predicts one
 *   class;
 * - constant_weight: a trainable weight (2 or more dimensions) with a constant initialiser:
 *   every unit of the layer starts equal and receives equal gradients, so symmetry is never
 *   broken;
 * - squashed_twice: jg_cross_entropy fed from a log_softmax or softmax, jg_bce_with_logits
 *   from a sigmoid: the loss applies it again;
 * - bias_before_batchnorm: a per-channel bias added right before a batchnorm, which
 *   subtracts the channel mean and so cancels it;
 *
 * The rules about optimiser settings are in train/advice_train.c. */
#include "compiler/advice.h"
#include "ops/op.h"

#include <stdlib.h>
#include <string.h>

const char *advice_file(jg_loc at)
{
    const char *s = at.file ? strrchr(at.file, '/') : NULL;
    return s ? s + 1 : at.file ? at.file : "?";
}

bool advice_ends_with(const char *name, const char *suffix)
{
    size_t n = name ? strlen(name) : 0, k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

const char *advice_node(const jg_node *n, char buf[ADVICE_NAME_SIZE])
{
    if (n->op == JG_OP_PARAM)
        snprintf(buf, ADVICE_NAME_SIZE, "parameter '%s' (%s:%d)", n->name, advice_file(n->at),
                 n->at.line);
    else
        snprintf(buf, ADVICE_NAME_SIZE, "jg_%s (%s:%d, node %%%d)", graph_op_name(n->op),
                 advice_file(n->at), n->at.line, n->id);
    return buf;
}

void advice_warn(advice_out *o, const char *fmt, ...)
{
    o->count++;
    size_t len = strlen(o->text);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->text + len, o->size - len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - len)
        o->text[len] = '\0'; /* whole lines only */
}

typedef struct advice {
    const jg_graph *g;
    const bool *computed; /* by node id: what the program computes */
    bool *reported;       /* by node id: a ReLU already named */
    bool train;
    advice_out out;
} advice;

/* ---- the shape of a batchnorm */

/* jg_batchnorm (ops/norm.c) is a composite: its output is y = mode(train, eval) with
 * train = (x - mean) * rsqrt(var + eps) * gamma + beta, and it registers the update of
 * "<name>.running_mean" with y as the anchor. This reads that shape back; a node of another
 * shape is no batchnorm (each rule using it has a test that catches a change in norm.c). */
typedef struct batchnorm {
    const jg_node *x, *batch_mean;
    const char *name; /* "<name>.running_mean": print name_len characters */
    int name_len;
} batchnorm;

static const jg_node *operand(const jg_node *n, jg_op op, int k)
{
    return n && n->op == op && k < n->n_in ? n->in[k] : NULL;
}

static bool batchnorm_of(const jg_graph *g, const jg_node *y, batchnorm *bn)
{
    if (y->op != JG_OP_MODE)
        return false;
    const jg_node *rm = NULL;
    for (int i = 0; i < g->n_train_updates && !rm; i++)
        if (g->train_updates[i].anchor == y &&
            advice_ends_with(g->train_updates[i].param->name, ".running_mean"))
            rm = g->train_updates[i].param;
    const jg_node *centred = operand(operand(operand(operand(y, JG_OP_MODE, 0), JG_OP_ADD, 0),
                                             JG_OP_MUL, 0), JG_OP_MUL, 0);
    bn->x = operand(centred, JG_OP_SUB, 0);
    bn->batch_mean = operand(centred, JG_OP_SUB, 1);
    if (!rm || !bn->x || bn->batch_mean->op != JG_OP_MEAN)
        return false;
    bn->name = rm->name;
    bn->name_len = (int)(strlen(rm->name) - strlen(".running_mean"));
    return true;
}

/* ---- the rules */

static void relu_then_squash(advice *l, const jg_node *n)
{
    bool squashes = n->op == JG_OP_SIGMOID || n->op == JG_OP_SOFTMAX ||
                    n->op == JG_OP_LOG_SOFTMAX || n->op == JG_OP_CROSS_ENTROPY ||
                    n->op == JG_OP_BCE_WITH_LOGITS;
    /* once per ReLU: the first squashing consumer is the user's (softmax's and the losses'
     * gradients build a softmax of the same input later) */
    if (!squashes || n->in[0]->op != JG_OP_RELU || l->reported[n->in[0]->id])
        return;
    l->reported[n->in[0]->id] = true;
    char a[ADVICE_NAME_SIZE], b[ADVICE_NAME_SIZE];
    advice_warn(&l->out, "warning: %s takes the output of %s directly: its input is never "
                "negative%s\n", advice_node(n, a), advice_node(n->in[0], b),
                n->op == JG_OP_SIGMOID || n->op == JG_OP_BCE_WITH_LOGITS
                  ? ", so the sigmoid never goes below 0.5 and a classifier predicts one class"
                  : ", so no logit can go below 0; drop the ReLU before the output");
}

static void constant_weight(advice *l, const jg_node *n)
{
    if (n->op != JG_OP_PARAM || n->shape.ndim < 2 || n->param < 0)
        return;
    const graph_param *p = &l->g->params[n->param];
    if (p->frozen || (p->init != JG_INIT_CONSTANT && p->init != JG_INIT_ZEROS))
        return;
    char a[ADVICE_NAME_SIZE];
    advice_warn(&l->out, "warning: %s has a constant initialiser: every unit of its layer starts "
                "equal and gets equal gradients, so symmetry is never broken\n", advice_node(n, a));
}

static void squashed_twice(advice *l, const jg_node *n)
{
    const jg_node *in = n->n_in ? n->in[0] : NULL;
    const char *why = NULL;
    if (n->op == JG_OP_CROSS_ENTROPY && in->op == JG_OP_LOG_SOFTMAX)
        why = "the loss applies log_softmax to its logits itself, so it is applied twice (the "
              "same value, log_softmax being idempotent, computed for nothing)";
    else if (n->op == JG_OP_CROSS_ENTROPY && in->op == JG_OP_SOFTMAX)
        why = "the loss applies log_softmax to its logits itself, so it reads probabilities "
              "in [0, 1] as logits: its predictions flatten and its gradients shrink";
    else if (n->op == JG_OP_BCE_WITH_LOGITS && in->op == JG_OP_SIGMOID)
        why = "the loss applies the sigmoid itself, so it is applied twice: predictions stay "
              "within (0.5, 0.73) and gradients shrink";
    if (!why)
        return;
    char a[ADVICE_NAME_SIZE], b[ADVICE_NAME_SIZE];
    advice_warn(&l->out, "warning: %s takes the output of %s: %s; pass the logits\n",
                advice_node(n, a), advice_node(in, b), why);
}

/* Skips the movement ops that carry a per-channel value to its place (a conv bias is
 * reshaped; the conv's sum is reshaped back to [N, C, H, W]). */
static const jg_node *through_movement(const jg_node *n)
{
    while (n->op == JG_OP_RESHAPE || n->op == JG_OP_BROADCAST)
        n = n->in[0];
    return n;
}

static void bias_before_batchnorm(advice *l, const jg_node *n)
{
    batchnorm bn;
    if (!batchnorm_of(l->g, n, &bn))
        return;
    const jg_node *sum = through_movement(bn.x);
    if (sum->op != JG_OP_ADD)
        return;
    for (int k = 0; k < 2; k++) {
        const jg_node *b = through_movement(sum->in[k]);
        if (b->op != JG_OP_PARAM || b->shape.ndim != 1 || b->shape.dim[0] != bn.x->shape.dim[1] ||
            l->g->params[b->param].frozen)
            continue;
        char a[ADVICE_NAME_SIZE];
        advice_warn(&l->out, "warning: %s is added right before jg_batchnorm '%.*s' (%s:%d), "
                    "which subtracts each channel's mean: the bias cancels out and gets no "
                    "gradient; drop it (batchnorm's beta is the bias)\n", advice_node(b, a),
                    bn.name_len, bn.name, advice_file(n->at), n->at.line);
    }
}

typedef void (*advice_rule)(advice *l, const jg_node *n);

static const advice_rule rules[] = {
    relu_then_squash, constant_weight, squashed_twice, bias_before_batchnorm,
};

int advice_check(const jg_graph *g, jg_node *const *roots, int n_roots, bool train, char *out,
                 size_t size)
{
    if (size)
        out[0] = '\0';
    bool *computed = calloc((size_t)g->n_nodes + 1, sizeof *computed);
    bool *reported = calloc((size_t)g->n_nodes + 1, sizeof *reported);
    if (!computed || !reported || !size) {
        free(computed);
        free(reported);
        return 0; /* advice is optional: skip it */
    }
    for (int i = 0; i < n_roots; i++)
        computed[roots[i]->id] = true;
    for (int id = g->n_nodes - 1; id >= 0; id--) { /* operands have smaller ids */
        const jg_node *n = g->nodes[id];
        for (int k = 0; computed[id] && k < n->n_in; k++)
            if (n->op != JG_OP_MODE || k == (train ? 0 : 1))
                computed[n->in[k]->id] = true;
    }
    advice l = { .g = g, .computed = computed, .reported = reported, .train = train,
               .out = { out, size, 0 } };
    for (int id = 0; id < g->n_nodes; id++)
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
            if (computed[id])
                rules[r](&l, g->nodes[id]);
    free(computed);
    free(reported);
    return l.out.count;
}
