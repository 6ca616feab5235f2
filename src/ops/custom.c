/* Custom ops: user C functions with declared signatures, called through libffi. The builder
 * validates the user's jg_custom_def once and keeps a compact copy in the graph's arena; the
 * shape rule checks the operands; the gradient rule builds, per input with a backward, a
 * gradient op that is itself a custom node (without a gradient of its own: second order stops
 * there). The reference kernel converts operands to the native dtype and calls the function;
 * the JIT runtime calls it through jit/custom_call.c on its own buffers. */
#include "ops/custom.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[] = {
    "JG_CARG_INPUT", "JG_CARG_OUTPUT", "JG_CARG_VALUE", "JG_CARG_GRAD", "JG_CARG_NUMEL",
    "JG_CARG_INT", "JG_CARG_INT64", "JG_CARG_DOUBLE", "JG_CARG_POINTER",
};

/* ---- validation of the user's definition */

/* Checks one function of the definition; `what` names it ("forward", "backward[1]"). */
static jg_status check_fn(const jg_cfn *f, const char *what, int n_inputs, bool backward,
                          char *why)
{
    if (!f->fn) {
        snprintf(why, OP_ERR_SIZE, "%s.fn is NULL", what);
        return JG_ERR_ARG;
    }
    if (f->n_args < 0 || f->n_args > JG_CUSTOM_MAX_ARGS) {
        snprintf(why, OP_ERR_SIZE, "%s has %d arguments; at most %d are allowed", what,
                 f->n_args, JG_CUSTOM_MAX_ARGS);
        return JG_ERR_ARG;
    }
    bool output = false;
    for (int a = 0; a < f->n_args; a++) {
        const jg_carg *c = &f->args[a];
        if ((unsigned)c->kind > JG_CARG_POINTER) {
            snprintf(why, OP_ERR_SIZE, "%s argument %d: unknown kind %d", what, a, (int)c->kind);
            return JG_ERR_ARG;
        }
        const char *kind = kind_names[c->kind];
        switch (c->kind) {
        case JG_CARG_INPUT:
            if (c->index < 0 || c->index >= n_inputs) {
                snprintf(why, OP_ERR_SIZE, "%s argument %d: %s index %d is out of range "
                         "[0, %d)", what, a, kind, c->index, n_inputs);
                return JG_ERR_ARG;
            }
            break;
        case JG_CARG_NUMEL: {
            /* in a backward, index n_inputs is the forward output (VALUE and GRAD) */
            int top = backward ? n_inputs : n_inputs - 1;
            if (c->index < -1 || c->index > top) {
                snprintf(why, OP_ERR_SIZE, "%s argument %d: %s index %d is out of range "
                         "[-1, %d]", what, a, kind, c->index, top);
                return JG_ERR_ARG;
            }
            break;
        }
        case JG_CARG_VALUE:
        case JG_CARG_GRAD:
            if (!backward) {
                snprintf(why, OP_ERR_SIZE, "%s argument %d: %s is only for a backward", what,
                         a, kind);
                return JG_ERR_ARG;
            }
            break;
        case JG_CARG_INT:
            if (c->i < INT_MIN || c->i > INT_MAX) {
                snprintf(why, OP_ERR_SIZE, "%s argument %d: %s constant %lld does not fit "
                         "in an int", what, a, kind, (long long)c->i);
                return JG_ERR_ARG;
            }
            break;
        case JG_CARG_OUTPUT:
            output = true;
            break;
        case JG_CARG_INT64:
        case JG_CARG_DOUBLE:
        case JG_CARG_POINTER:
            break;
        }
    }
    if (!output) {
        snprintf(why, OP_ERR_SIZE, "%s has no JG_CARG_OUTPUT argument", what);
        return JG_ERR_ARG;
    }
    return JG_OK;
}

/* Everything about the definition that does not depend on the operands. */
static jg_status check_def(const jg_custom_def *d, char *why)
{
    if (d->n_inputs < 1 || d->n_inputs > JG_CUSTOM_MAX_INPUTS) {
        snprintf(why, OP_ERR_SIZE, "n_inputs is %d; it must be 1..%d", d->n_inputs,
                 JG_CUSTOM_MAX_INPUTS);
        return JG_ERR_ARG;
    }
    if (d->out_shape.ndim < -1 || d->out_shape.ndim > JG_MAX_DIMS) {
        snprintf(why, OP_ERR_SIZE, "out_shape has ndim %d; it must be -1 (input 0's shape) "
                 "or 0..%d", d->out_shape.ndim, JG_MAX_DIMS);
        return JG_ERR_SHAPE;
    }
    if (d->out_shape.ndim >= 0 && !shape_valid(d->out_shape)) {
        char buf[8 * 24];
        snprintf(why, OP_ERR_SIZE, "out_shape %s is %s", FMT_SHAPE(buf, d->out_shape),
                 shape_dims_positive(d->out_shape) ? "too large (more than 2^40 elements)"
                                                   : "invalid");
        return JG_ERR_SHAPE;
    }
    jg_status st = check_fn(&d->forward, "forward", d->n_inputs, false, why);
    for (int k = 0; k < JG_CUSTOM_MAX_INPUTS && st == JG_OK; k++) {
        if (!d->backward[k].fn)
            continue;
        char what[32];
        snprintf(what, sizeof what, "backward[%d]", k);
        if (k >= d->n_inputs) {
            snprintf(why, OP_ERR_SIZE, "%s is set but the op has %d input%s", what,
                     d->n_inputs, d->n_inputs == 1 ? "" : "s");
            return JG_ERR_ARG;
        }
        st = check_fn(&d->backward[k], what, d->n_inputs, true, why);
    }
    return st;
}

/* ---- the arena copy */

/* Copies f's arguments into the arena, rewriting VALUE and GRAD as inputs n_inputs and
 * n_inputs + 1 (the operands a gradient op appends). False when out of memory. */
static bool copy_fn(jg_graph *g, custom_fn *dst, const custom_fn *src, int n_inputs)
{
    *dst = (custom_fn){ .fn = src->fn, .n_args = src->n_args };
    if (!src->fn || !src->n_args)
        return true;
    jg_carg *args = graph_alloc(g, (size_t)src->n_args * sizeof *args);
    if (!args)
        return false;
    for (int a = 0; a < src->n_args; a++) {
        args[a] = src->args[a];
        if (args[a].kind == JG_CARG_VALUE || args[a].kind == JG_CARG_GRAD) {
            args[a].index = n_inputs + (args[a].kind == JG_CARG_GRAD);
            args[a].kind = JG_CARG_INPUT;
        }
    }
    dst->args = args;
    return true;
}

static custom_op *copy_def(jg_graph *g, const jg_custom_def *d)
{
    custom_op *c = graph_alloc(g, sizeof *c);
    if (!c || !(c->name = graph_strdup(g, d->name)))
        return NULL;
    c->n_inputs = d->n_inputs;
    c->out_shape = d->out_shape;
    const custom_fn fwd = { d->forward.fn, d->forward.n_args, d->forward.args };
    if (!copy_fn(g, &c->forward, &fwd, 0))
        return NULL;
    for (int k = 0; k < d->n_inputs; k++) {
        const custom_fn b = { d->backward[k].fn, d->backward[k].n_args, d->backward[k].args };
        if (!copy_fn(g, &c->backward[k], &b, d->n_inputs))
            return NULL;
    }
    return c;
}

/* A custom node of op c over in[0..n-1]; named after c so dumps show which function. */
static jg_node *custom_node(jg_loc at, const custom_op *c, jg_node *const *in, int n)
{
    jg_node *r = op_build(at, JG_OP_CUSTOM, in, n, &(op_attr){ .custom = c });
    if (!node_poisoned(r))
        r->name = c->name;
    return r;
}

jg_node *jg_custom_(jg_loc at, const jg_custom_def *def, jg_node *const *inputs, int n)
{
    jg_graph *g = NULL;
    for (int i = 0; inputs && i < n && !g; i++)
        if (inputs[i])
            g = inputs[i]->graph;
    if (!g) /* nowhere to record the error: the shared poison */
        return op_build(at, JG_OP_CUSTOM, NULL, 0, NULL);
    if (!def || !def->name) {
        graph_error(g, at, JG_ERR_ARG, "jg_custom: %s is NULL", def ? "def->name" : "def");
        return g->poison;
    }
    char why[OP_ERR_SIZE] = "";
    jg_status st = check_def(def, why);
    if (st != JG_OK) {
        graph_error(g, at, st, "jg_custom: '%s': %s", def->name, why);
        return g->poison;
    }
    /* A bad operand: op_build reports it (or keeps the first error) before any shape rule
     * runs, so the definition need not be copied. */
    for (int i = 0; i < n; i++)
        if (!inputs[i] || inputs[i]->graph != g || node_poisoned(inputs[i]))
            return op_build(at, JG_OP_CUSTOM, inputs, n, NULL);
    custom_op *c = copy_def(g, def);
    if (!c) {
        graph_error(g, at, JG_ERR_NOMEM, "jg_custom: '%s': out of memory", def->name);
        return g->poison;
    }
    return custom_node(at, c, inputs, n);
}

/* ---- shape rule */

static jg_status custom_infer(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                              jg_dtype *dtype, char *why)
{
    const custom_op *c = attr->custom;
    if (!c) {
        snprintf(why, OP_ERR_SIZE, "no definition");
        return JG_ERR_ARG;
    }
    if (n_in != c->n_inputs) {
        snprintf(why, OP_ERR_SIZE, "'%s': takes %d input%s, got %d", c->name, c->n_inputs,
                 c->n_inputs == 1 ? "" : "s", n_in);
        return JG_ERR_ARG;
    }
    for (int i = 0; i < n_in; i++) {
        if (in[i]->dtype == JG_I32) {
            snprintf(why, OP_ERR_SIZE, "'%s': input %d is i32; custom ops take f32 or f64 "
                     "(use jg_cast)", c->name, i);
            return JG_ERR_DTYPE;
        }
        if (in[i]->dtype != in[0]->dtype) {
            snprintf(why, OP_ERR_SIZE, "'%s': dtypes differ: input 0 is %s, input %d is %s",
                     c->name, jg_dtype_str(in[0]->dtype), i, jg_dtype_str(in[i]->dtype));
            return JG_ERR_DTYPE;
        }
    }
    *shape = c->out_shape.ndim < 0 ? in[0]->shape : c->out_shape;
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* ---- gradient rule */

/* For each input k with a backward: a gradient op "<name>.grad<k>" over (inputs..., y, dy)
 * whose function is backward[k] and whose output has input k's shape. Its own backward is
 * empty, so differentiating it gives nothing: second order stops here. */
static void custom_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    const custom_op *c = custom_of(n);
    jg_graph *g = n->graph;
    jg_node *ops[CUSTOM_MAX_OPERANDS];
    for (int i = 0; i < n->n_in; i++)
        ops[i] = n->in[i];
    ops[n->n_in] = n;
    ops[n->n_in + 1] = dy;
    for (int k = 0; k < n->n_in; k++) {
        if (!c->backward[k].fn)
            continue;
        size_t len = strlen(c->name) + 16;
        custom_op *d = graph_alloc(g, sizeof *d);
        char *name = graph_alloc(g, len);
        if (!d || !name) {
            graph_error(g, n->at, JG_ERR_NOMEM, "jg_grad: '%s': out of memory", c->name);
            dx[k] = g->poison;
            return;
        }
        snprintf(name, len, "%s.grad%d", c->name, k);
        *d = (custom_op){ .name = name, .n_inputs = n->n_in + 2, .out_shape = n->in[k]->shape,
                          .forward = c->backward[k] };
        dx[k] = custom_node(n->at, d, ops, n->n_in + 2);
    }
}

/* ---- calls */

ffi_type *custom_arg(const jg_node *n, int a, int *operand, custom_value *v)
{
    const jg_carg *c = &custom_of(n)->forward.args[a];
    *operand = CUSTOM_ARG_CONST;
    switch (c->kind) {
    case JG_CARG_INPUT:
        *operand = c->index;
        return &ffi_type_pointer;
    case JG_CARG_OUTPUT:
        *operand = CUSTOM_ARG_OUTPUT;
        return &ffi_type_pointer;
    case JG_CARG_NUMEL:
        v->l = jg_shape_numel(c->index < 0 ? n->shape : n->in[c->index]->shape);
        return &ffi_type_sint64;
    case JG_CARG_INT:
        v->i = (int)c->i;
        return &ffi_type_sint;
    case JG_CARG_INT64:
        v->l = c->i;
        return &ffi_type_sint64;
    case JG_CARG_DOUBLE:
        v->d = c->f;
        return &ffi_type_double;
    case JG_CARG_POINTER:
        v->p = c->ptr;
        return &ffi_type_pointer;
    case JG_CARG_VALUE:
    case JG_CARG_GRAD:
        break; /* rewritten as inputs by copy_fn */
    }
    v->p = NULL;
    return &ffi_type_pointer;
}

jg_status custom_prep_cif(const jg_node *n, ffi_cif *cif, ffi_type **types, char *err,
                          size_t size)
{
    const custom_op *c = custom_of(n);
    ffi_status fs = ffi_prep_cif(cif, FFI_DEFAULT_ABI, (unsigned)c->forward.n_args,
                                 &ffi_type_void, types);
    if (fs != FFI_OK) {
        snprintf(err, size, "'%s': ffi_prep_cif failed (status %d)", c->name, (int)fs);
        return JG_ERR_STATE;
    }
    return JG_OK;
}

/* ---- reference kernel */

/* f64 operands are passed in place; f32 ones go through float copies (the output too). */
static jg_status custom_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    const custom_op *c = custom_of(n);
    bool f32 = n->dtype == JG_F32;
    int64_t numel = jg_shape_numel(n->shape);
    float *tmp[CUSTOM_MAX_OPERANDS + 1] = { 0 }; /* operands, then the output */
    ffi_type *types[JG_CUSTOM_MAX_ARGS];
    custom_value vals[JG_CUSTOM_MAX_ARGS];
    void *values[JG_CUSTOM_MAX_ARGS];
    jg_status st = JG_OK;
    for (int a = 0; a < c->forward.n_args; a++) {
        int op;
        types[a] = custom_arg(n, a, &op, &vals[a]);
        values[a] = &vals[a];
        if (op == CUSTOM_ARG_CONST)
            continue;
        int t = op == CUSTOM_ARG_OUTPUT ? n->n_in : op;
        if (!f32) {
            vals[a].p = op == CUSTOM_ARG_OUTPUT ? (void *)out : (void *)in[op];
            continue;
        }
        if (!tmp[t]) {
            int64_t count = op == CUSTOM_ARG_OUTPUT ? numel : jg_shape_numel(n->in[op]->shape);
            if (!(tmp[t] = calloc((size_t)count, sizeof(float)))) {
                snprintf(err, OP_ERR_SIZE, "'%s': out of memory", c->name);
                st = JG_ERR_NOMEM;
                goto done;
            }
            for (int64_t i = 0; op != CUSTOM_ARG_OUTPUT && i < count; i++)
                tmp[t][i] = (float)in[op][i];
        }
        vals[a].p = tmp[t];
    }
    ffi_cif cif;
    if ((st = custom_prep_cif(n, &cif, types, err, OP_ERR_SIZE)) != JG_OK)
        goto done;
    ffi_arg ret;
    ffi_call(&cif, c->forward.fn, &ret, values);
    for (int64_t i = 0; f32 && tmp[n->n_in] && i < numel; i++)
        out[i] = (double)tmp[n->n_in][i];
done:
    for (int t = 0; t <= n->n_in; t++)
        free(tmp[t]);
    return st;
}

const op_def op_custom = { .arity = -1, .kind = KIND_OPAQUE,
                           .infer = custom_infer, .grad = custom_grad, .eval = custom_eval };
