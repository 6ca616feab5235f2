/* The lint: warnings about graphs that compute what they say but will not learn what their
 * author wants. Each rule is a function of one node; the compiler runs them over what a
 * program computes and keeps the warnings on the program (jg_program_warnings).
 *
 * - a squashing output (sigmoid, softmax, log_softmax, cross entropy, binary cross entropy)
 *   fed straight from a ReLU: its input is never negative, so a sigmoid never goes below 0.5
 *   and the classifier predicts one class;
 * - a trainable weight (2 or more dimensions) with a constant initialiser: every unit of the
 *   layer starts equal and receives equal gradients, so symmetry is never broken. */
#include "graph/passes/lint.h"
#include "ops/op.h"

#include <stdlib.h>
#include <string.h>

static const char *base(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path ? path : "?";
}

static bool squashes(jg_op op)
{
    return op == JG_OP_SIGMOID || op == JG_OP_SOFTMAX || op == JG_OP_LOG_SOFTMAX ||
           op == JG_OP_CROSS_ENTROPY || op == JG_OP_BCE_WITH_LOGITS;
}

static void add(char *out, size_t size, int *count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *out, size_t size, int *count, const char *fmt, ...)
{
    size_t len = strlen(out);
    if (len + 1 < size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(out + len, size - len, fmt, ap);
        va_end(ap);
    }
    (*count)++;
}

int pass_lint(const jg_graph *g, jg_node *const *roots, int n_roots, char *out, size_t size)
{
    if (size)
        out[0] = '\0';
    bool *needed = calloc((size_t)g->n_nodes + 1, sizeof *needed);
    if (!needed)
        return 0; /* a lint is advice: skip it */
    for (int i = 0; i < n_roots; i++)
        needed[roots[i]->id] = true;
    for (int id = g->n_nodes - 1; id >= 0; id--)
        for (int k = 0; needed[id] && k < g->nodes[id]->n_in; k++)
            needed[g->nodes[id]->in[k]->id] = true;
    int count = 0;
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        if (!needed[id])
            continue;
        if (squashes(n->op) && n->in[0]->op == JG_OP_RELU) {
            const jg_node *r = n->in[0];
            add(out, size, &count,
                "warning: jg_%s (%s:%d, node %%%d) takes the output of jg_relu (%s:%d, node %%%d) "
                "directly: its input is never negative%s\n", op_get(n->op)->name, base(n->at.file),
                n->at.line, n->id, base(r->at.file), r->at.line, r->id,
                n->op == JG_OP_SIGMOID || n->op == JG_OP_BCE_WITH_LOGITS
                    ? ", so the sigmoid never goes below 0.5 and a classifier predicts one class"
                    : ", so no logit can go below 0; drop the ReLU before the output");
        }
        if (n->op == JG_OP_PARAM && n->shape.ndim >= 2 && n->param >= 0 &&
            !g->params[n->param].frozen &&
            (g->params[n->param].init == JG_INIT_CONSTANT ||
             g->params[n->param].init == JG_INIT_ZEROS))
            add(out, size, &count,
                "warning: parameter '%s' (%s:%d) has a constant initialiser: every unit of its "
                "layer starts equal and gets equal gradients, so symmetry is never broken\n",
                n->name, base(n->at.file), n->at.line);
    }
    free(needed);
    return count;
}
