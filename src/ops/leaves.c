/* Leaves of the graph: inputs (bound at run time), parameters (in the store), constants
 * and fills. Their values come from outside the op table, so their kernels copy them in. */
#include "ops/op.h"

#include <string.h>

static jg_status no_infer(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                          jg_dtype *dtype, char *why)
{
    (void)in, (void)n_in, (void)attr, (void)shape, (void)dtype;
    snprintf(why, OP_ERR_SIZE, "a leaf is not built from operands");
    return JG_ERR_ARG;
}

static jg_status const_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)in, (void)err;
    memcpy(out, n->attr.data, (size_t)jg_shape_numel(n->shape) * sizeof *out);
    return JG_OK;
}

static jg_status fill_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)in, (void)err;
    int64_t numel = jg_shape_numel(n->shape);
    for (int64_t i = 0; i < numel; i++)
        out[i] = n->attr.scalar[0];
    return JG_OK;
}

/* Inputs and parameters are filled by the executor; they have no kernel of their own. */
const op_def op_poison = { .kind = KIND_LEAF, .infer = no_infer, .no_grad = true };
const op_def op_input = { .kind = KIND_LEAF, .infer = no_infer, .no_grad = true };
const op_def op_param = { .kind = KIND_LEAF, .infer = no_infer, .no_grad = true };
const op_def op_const = { .kind = KIND_LEAF, .infer = no_infer, .no_grad = true,
                          .eval = const_eval };
const op_def op_fill = { .kind = KIND_LEAF, .infer = no_infer, .no_grad = true,
                         .eval = fill_eval };

/* Checks what every leaf builder takes; records the error and returns false if bad. */
static bool leaf_args_ok(jg_loc at, jg_graph *g, const char *fn, jg_dtype t, jg_shape s)
{
    char buf[8 * 24];
    if ((unsigned)t > JG_I32) {
        graph_error(g, at, JG_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)t);
        return false;
    }
    if (s.ndim < 0 || s.ndim > JG_MAX_DIMS) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: %d dimensions (at most %d)", fn, s.ndim,
                    JG_MAX_DIMS);
        return false;
    }
    if (!shape_dims_positive(s)) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: invalid shape %s (every dimension >= 1)", fn,
                    FMT_SHAPE(buf, s));
        return false;
    }
    if (!shape_valid(s)) {
        graph_error(g, at, JG_ERR_SHAPE, "%s: shape %s is too large (more than 2^40 elements)",
                    fn, FMT_SHAPE(buf, s));
        return false;
    }
    return true;
}

static bool name_ok(jg_loc at, jg_graph *g, const char *fn, const char *name)
{
    if (!name || !*name) {
        graph_error(g, at, JG_ERR_ARG, "%s: name is NULL or empty", fn);
        return false;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        jg_node *n = g->nodes[i];
        if ((n->op == JG_OP_INPUT || n->op == JG_OP_PARAM) && strcmp(n->name, name) == 0) {
            graph_error(g, at, JG_ERR_ARG, "%s: name '%s' is already used by %s", fn, name,
                        n->op == JG_OP_INPUT ? "an input" : "a parameter");
            return false;
        }
    }
    return true;
}

static jg_node *named_leaf(jg_loc at, jg_graph *g, const char *fn, jg_op op, const char *name,
                           jg_dtype t, jg_shape s)
{
    if (!g) /* nothing to record on: op_build gives the orphan poison node */
        return op_build(at, op, NULL, 0, NULL);
    if (!leaf_args_ok(at, g, fn, t, s) || !name_ok(at, g, fn, name))
        return g->poison;
    char *copy = graph_strdup(g, name);
    jg_node *n = copy ? graph_node_new(g, at, op, t, s, NULL, 0, NULL) : g->poison;
    if (node_poisoned(n)) {
        graph_error(g, at, JG_ERR_NOMEM, "%s: out of memory", fn);
        return g->poison;
    }
    n->name = copy;
    return n;
}

jg_node *jg_input_(jg_loc at, jg_graph *g, const char *name, jg_dtype t, jg_shape s)
{
    return named_leaf(at, g, "jg_input", JG_OP_INPUT, name, t, s);
}

jg_node *jg_param_(jg_loc at, jg_graph *g, const char *name, jg_dtype t, jg_shape s,
                   jg_init init)
{
    if (g && t == JG_I32) {
        graph_error(g, at, JG_ERR_DTYPE, "jg_param: '%s': parameters are f32 or f64, not i32",
                    name ? name : "(null)");
        return g->poison;
    }
    /* Everything that can be checked is checked before the node exists, so a failed call
     * leaves neither a node nor a taken name behind. */
    if (g && (unsigned)init.kind > JG_INIT_DATA) {
        graph_error(g, at, JG_ERR_ARG, "jg_param: '%s': unknown initialiser kind %d",
                    name ? name : "(null)", (int)init.kind);
        return g->poison;
    }
    if (g && init.kind == JG_INIT_DATA && !init.data) {
        graph_error(g, at, JG_ERR_ARG, "jg_param: '%s': jg_from_data given NULL",
                    name ? name : "(null)");
        return g->poison;
    }
    jg_node *n = named_leaf(at, g, "jg_param", JG_OP_PARAM, name, t, s);
    if (!node_poisoned(n) && store_add(g, n, init) != JG_OK) {
        /* Out of memory: n is still the last node, and no other node refers to it. */
        g->n_nodes--;
        return g->poison;
    }
    return n;
}

jg_node *jg_const_(jg_loc at, jg_graph *g, jg_dtype t, jg_shape s, const void *data)
{
    if (!g)
        return op_build(at, JG_OP_CONST, NULL, 0, NULL);
    if (!leaf_args_ok(at, g, "jg_const", t, s))
        return g->poison;
    if (!data) {
        graph_error(g, at, JG_ERR_ARG, "jg_const: data is NULL");
        return g->poison;
    }
    int64_t numel = jg_shape_numel(s);
    double *values = graph_alloc(g, (size_t)numel * sizeof *values);
    if (!values) {
        graph_error(g, at, JG_ERR_NOMEM, "jg_const: out of memory");
        return g->poison;
    }
    for (int64_t i = 0; i < numel; i++)
        values[i] = t == JG_F32   ? (double)((const float *)data)[i]
                    : t == JG_F64 ? ((const double *)data)[i]
                                  : (double)((const int32_t *)data)[i];
    return graph_node_new(g, at, JG_OP_CONST, t, s, NULL, 0, &(op_attr){ .data = values });
}

jg_node *jg_fill_(jg_loc at, jg_graph *g, jg_dtype t, jg_shape s, double value)
{
    if (!g)
        return op_build(at, JG_OP_FILL, NULL, 0, NULL);
    if (!leaf_args_ok(at, g, "jg_fill", t, s))
        return g->poison;
    return graph_node_new(g, at, JG_OP_FILL, t, s, NULL, 0,
                          &(op_attr){ .scalar = { round_to(t, value) } });
}

jg_node *jg_scalar_(jg_loc at, jg_graph *g, jg_dtype t, double value)
{
    return jg_fill_(at, g, t, JG_SCALAR, value);
}

/* A function rather than a macro over jg_node_graph/jg_node_dtype, so that a poisoned x
 * gives poison instead of a valid scalar on x's graph. */
jg_node *jg_scalar_like_(jg_loc at, jg_node *x, double value)
{
    if (!x || !x->graph)
        return op_build(at, JG_OP_FILL, NULL, 0, NULL); /* no graph: the orphan poison */
    if (node_poisoned(x))
        return x->graph->poison;
    return jg_fill_(at, x->graph, x->dtype, JG_SCALAR, value);
}
