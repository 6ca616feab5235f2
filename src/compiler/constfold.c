/* Constant folding (pass "constfold"): a node whose operands are all constants is computed
 * at compile time by its reference kernel and becomes a constant. The result is rounded to
 * the node's dtype as the executors round every op, so the folded program computes the same
 * bits as the unfolded one.
 *
 *   pointwise op of fills      -> a fill (one element computed, whatever the size)
 *   any op of small constants  -> a constant (at most FOLD_MAX_ELEMENTS elements: a large
 *                                 table is better left to a kernel than copied into one)
 *
 * Not folded: leaves with identity (inputs, parameters, random streams, custom calls, mode
 * choices), ops without a reference kernel, and evaluations that fail (an index out of
 * range stays a run-time error with its message). */
#include "compiler/pass.h"

#include <stdlib.h>
#include <string.h>

enum { FOLD_MAX_ELEMENTS = 1 << 16 };

static bool is_constant(const jg_node *n) { return n->op == JG_OP_FILL || n->op == JG_OP_CONST; }

static bool foldable(const jg_node *n, jg_node *const *in)
{
    const op_def *def = op_get(n->op);
    if (def->kind == KIND_LEAF || !def->eval || n->op == JG_OP_RANDOM || n->op == JG_OP_CUSTOM ||
        n->op == JG_OP_MODE || n->n_in == 0)
        return false;
    for (int k = 0; k < n->n_in; k++)
        if (!is_constant(in[k]))
            return false;
    return true;
}

/* The values of constant c (a fill expanded), numel of them; NULL when out of memory. */
static double *values_of(const jg_node *c, int64_t numel)
{
    double *v = malloc((size_t)(numel ? numel : 1) * sizeof *v);
    for (int64_t i = 0; v && i < numel; i++)
        v[i] = c->op == JG_OP_FILL ? c->attr.scalar[0] : c->attr.data[i];
    return v;
}

static jg_node *fold_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    (void)state;
    if (!foldable(n, in))
        return NULL;
    bool all_fills = true;
    for (int k = 0; k < n->n_in; k++)
        all_fills &= in[k]->op == JG_OP_FILL;
    bool pointwise = op_is_pointwise(n);
    int64_t numel = all_fills && pointwise ? 1 : jg_shape_numel(n->shape);
    if (numel > FOLD_MAX_ELEMENTS)
        return NULL;
    for (int k = 0; k < n->n_in; k++)
        if (!(all_fills && pointwise) && jg_shape_numel(in[k]->shape) > FOLD_MAX_ELEMENTS)
            return NULL;
    /* a pointwise op of fills is evaluated on one element: every operand as a 0-d fill */
    jg_node scalar = *n;
    if (all_fills && pointwise)
        scalar.shape = JG_SCALAR;
    double *ins[8] = { 0 }, *out = malloc((size_t)numel * sizeof *out);
    bool ok = out && n->n_in <= 8;
    for (int k = 0; ok && k < n->n_in; k++)
        ok = (ins[k] = values_of(in[k], all_fills && pointwise ? 1 : jg_shape_numel(in[k]->shape)));
    char err[OP_ERR_SIZE];
    jg_node *m = NULL;
    if (ok && op_get(n->op)->eval(&scalar, (const double *const *)ins, out, err) == JG_OK) {
        for (int64_t i = 0; i < numel; i++)
            out[i] = round_to(n->dtype, out[i]);
        if (all_fills && pointwise) {
            m = jg_fill_(n->at, g, n->dtype, n->shape, out[0]);
        } else {
            double *data = graph_alloc(g, (size_t)numel * sizeof *data);
            if (data) {
                memcpy(data, out, (size_t)numel * sizeof *data);
                m = graph_node_new(g, n->at, JG_OP_CONST, n->dtype, n->shape, NULL, 0,
                                   &(op_attr){ .data = data });
            }
        }
    }
    for (int k = 0; k < n->n_in; k++)
        free(ins[k]);
    free(out);
    return m;
}

bool pass_constfold(pass_ctx *c) { return pass_rewrite(c, fold_rule, NULL); }
