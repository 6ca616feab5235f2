/* The parameter store: each parameter's values, owned by the graph and shared by every
 * program compiled from it, and the initialisers that fill them. */
#define _DEFAULT_SOURCE /* mmap(MAP_ANONYMOUS) */
#include "graph/graph.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Zero tensors from this size on are anonymous mappings (see store_add). */
#define MAP_MIN_BYTES ((size_t)1 << 20)

graph_param *store_find(jg_graph *g, const char *name)
{
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i].node->name, name) == 0)
            return &g->params[i];
    return NULL;
}

jg_init jg_seeded(jg_init init, uint64_t seed)
{
    init.seed = seed;
    return init;
}

static void fans(jg_shape s, double *fan_in, double *fan_out)
{
    if (s.ndim == 0) {
        *fan_in = *fan_out = 1;
    } else if (s.ndim == 1) {
        *fan_in = *fan_out = (double)s.dim[0];
    } else if (s.ndim == 2) {
        *fan_in = (double)s.dim[0];
        *fan_out = (double)s.dim[1];
    } else {
        double receptive = 1;
        for (int i = 2; i < s.ndim; i++)
            receptive *= (double)s.dim[i];
        *fan_in = (double)s.dim[1] * receptive;
        *fan_out = (double)s.dim[0] * receptive;
    }
}

/* Draws value i of the initialiser for a tensor of the given fans; uniform and normal draws
 * use distinct counters. */
static double init_value(jg_init init, double fan_in, double fan_out, uint64_t key, uint64_t i)
{
    switch (init.kind) {
    case JG_INIT_ZEROS: return 0;
    case JG_INIT_CONSTANT: return init.a;
    case JG_INIT_UNIFORM: return init.a + (init.b - init.a) * rng_uniform(key, i);
    case JG_INIT_NORMAL: return init.a + init.b * rng_normal(key, i);
    case JG_INIT_XAVIER_UNIFORM: {
        double l = sqrt(6.0 / (fan_in + fan_out));
        return l * (2 * rng_uniform(key, i) - 1);
    }
    case JG_INIT_XAVIER_NORMAL: return sqrt(2.0 / (fan_in + fan_out)) * rng_normal(key, i);
    case JG_INIT_HE_UNIFORM: return sqrt(6.0 / fan_in) * (2 * rng_uniform(key, i) - 1);
    case JG_INIT_HE_NORMAL: return sqrt(2.0 / fan_in) * rng_normal(key, i);
    case JG_INIT_DATA: break; /* copied by store_add */
    }
    return 0;
}

jg_status store_add(jg_graph *g, jg_node *param, jg_init init)
{
    if ((unsigned)init.kind > JG_INIT_DATA) {
        graph_error(g, param->at, JG_ERR_ARG, "jg_param: '%s': unknown initialiser kind %d",
                    param->name, (int)init.kind);
        return JG_ERR_ARG;
    }
    if (g->n_params == g->cap_params) {
        int cap = g->cap_params ? 2 * g->cap_params : 16;
        graph_param *p = realloc(g->params, (size_t)cap * sizeof *p);
        if (!p)
            goto nomem;
        g->params = p;
        g->cap_params = cap;
    }
    int64_t numel = jg_shape_numel(param->shape);
    /* 64-byte aligned: fused updates write whole aligned vectors straight into it */
    size_t bytes = ((size_t)numel * jg_dtype_size(param->dtype) + 63) & ~(size_t)63;
    /* Large zero tensors (optimiser states: millions of elements per model) are anonymous
     * mappings, which the kernel zeroes page by page when first touched: compiling a second
     * training program does not fault in and clear its state up front. */
    bool zeros = init.kind == JG_INIT_ZEROS ||
                 (init.kind == JG_INIT_CONSTANT && init.a == 0 && !signbit(init.a));
    bool map = zeros && bytes >= MAP_MIN_BYTES;
    void *data = map ? mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                            -1, 0)
                     : aligned_alloc(64, bytes);
    if (map && data == MAP_FAILED)
        data = NULL;
    if (!data)
        goto nomem;
    uint64_t key = init.seed ? init.seed : rng_u64(g->seed, rng_hash_str(param->name));
    double fan_in, fan_out;
    fans(param->shape, &fan_in, &fan_out);
    if (zeros) {
        if (!map)
            memset(data, 0, (size_t)numel * jg_dtype_size(param->dtype));
    } else if (init.kind == JG_INIT_DATA) {
        memcpy(data, init.data, (size_t)numel * jg_dtype_size(param->dtype));
    } else {
        for (int64_t i = 0; i < numel; i++) {
            double v = init_value(init, fan_in, fan_out, key, (uint64_t)i);
            if (param->dtype == JG_F64)
                ((double *)data)[i] = v;
            else
                ((float *)data)[i] = (float)v;
        }
    }
    param->param = g->n_params;
    g->params[g->n_params++] = (graph_param){ .node = param, .data = data, .init = init.kind,
                                              .mapped = map ? bytes : 0 };
    return JG_OK;
nomem:
    graph_error(g, param->at, JG_ERR_NOMEM, "jg_param: '%s': out of memory", param->name);
    return JG_ERR_NOMEM;
}

void store_free(jg_graph *g)
{
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].mapped)
            munmap(g->params[i].data, g->params[i].mapped);
        else
            free(g->params[i].data);
    free(g->params);
}

/* Misuse of the public accessors is reported by status and jg_errmsg(g) but does not poison
 * the graph: a typo in a parameter name must not make later compiles fail. */
static graph_param *lookup(jg_graph *g, const char *fn, const char *name, size_t bytes,
                           const void *buf)
{
    if (!name) {
        graph_note(g, "%s: name is NULL", fn);
        return NULL;
    }
    graph_param *p = store_find(g, name);
    if (!p) {
        graph_note(g, "%s: no parameter named '%s'", fn, name);
        return NULL;
    }
    size_t want = (size_t)jg_shape_numel(p->node->shape) * jg_dtype_size(p->node->dtype);
    if (bytes != want) {
        graph_note(g, "%s: parameter '%s' holds %zu bytes, given %zu", fn, name, want, bytes);
        return NULL;
    }
    if (!buf) {
        graph_note(g, "%s: buffer for parameter '%s' is NULL", fn, name);
        return NULL;
    }
    return p;
}

jg_status jg_param_get(jg_graph *g, const char *name, void *out, size_t bytes)
{
    if (!g)
        return JG_ERR_ARG;
    graph_param *p = lookup(g, "jg_param_get", name, bytes, out);
    if (!p)
        return JG_ERR_ARG;
    memcpy(out, p->data, bytes);
    return JG_OK;
}

jg_status jg_param_set(jg_graph *g, const char *name, const void *data, size_t bytes)
{
    if (!g)
        return JG_ERR_ARG;
    graph_param *p = lookup(g, "jg_param_set", name, bytes, data);
    if (!p)
        return JG_ERR_ARG;
    memcpy(p->data, data, bytes);
    p->init = JG_INIT_DATA; /* no longer what the initialiser made (the lint asks) */
    return JG_OK;
}

/* a's dtype and shape against the parameter's ([out, in] against [in, out] when transposed):
 * JG_OK with *out set, or the status after a note naming both. */
static jg_status array_target(jg_graph *g, const char *fn, const char *name, const jg_array *a,
                              bool transposed, graph_param **out)
{
    if (!name || !a || !a->data) {
        graph_note(g, "%s: %s is NULL", fn, !name ? "name" : !a ? "the array" : "its data");
        return JG_ERR_ARG;
    }
    graph_param *p = store_find(g, name);
    if (!p) {
        graph_note(g, "%s: no parameter named '%s'", fn, name);
        return JG_ERR_ARG;
    }
    const jg_node *n = p->node;
    char have[8 * 24], given[8 * 24] = "an invalid shape";
    bool valid = a->shape.ndim >= 0 && a->shape.ndim <= JG_MAX_DIMS;
    for (int d = 0; valid && d < a->shape.ndim; d++)
        valid = a->shape.dim[d] >= 1;
    if (valid)
        FMT_SHAPE(given, a->shape);
    if (transposed && n->shape.ndim != 2) {
        graph_note(g, "%s: parameter '%s' is %s, not 2-D", fn, name, FMT_SHAPE(have, n->shape));
        return JG_ERR_SHAPE;
    }
    jg_shape want = n->shape;
    if (transposed)
        want = jg_shape(n->shape.dim[1], n->shape.dim[0]);
    if (!valid || !shape_eq(a->shape, want)) {
        bool reversed = !transposed && valid && n->shape.ndim == 2 &&
                        shape_eq(a->shape, jg_shape(n->shape.dim[1], n->shape.dim[0]));
        graph_note(g, "%s: parameter '%s' is %s%s, given %s%s", fn, name,
                   FMT_SHAPE(have, n->shape), transposed ? " (so [out, in] is its reverse)" : "",
                   given, reversed ? " (PyTorch's [out, in]? use jg_param_set_transposed)" : "");
        return JG_ERR_SHAPE;
    }
    if (a->dtype != n->dtype) {
        graph_note(g, "%s: parameter '%s' is %s, given %s (no conversion is done)", fn, name,
                   jg_dtype_str(n->dtype), jg_dtype_str(a->dtype));
        return JG_ERR_DTYPE;
    }
    *out = p;
    return JG_OK;
}

jg_status jg_param_set_array(jg_graph *g, const char *name, const jg_array *a)
{
    if (!g)
        return JG_ERR_ARG;
    graph_param *p;
    jg_status st = array_target(g, "jg_param_set_array", name, a, false, &p);
    if (st == JG_OK) {
        memcpy(p->data, a->data, (size_t)jg_shape_numel(a->shape) * jg_dtype_size(a->dtype));
        p->init = JG_INIT_DATA;
    }
    return st;
}

jg_status jg_param_set_transposed(jg_graph *g, const char *name, const jg_array *a)
{
    if (!g)
        return JG_ERR_ARG;
    graph_param *p;
    jg_status st = array_target(g, "jg_param_set_transposed", name, a, true, &p);
    if (st != JG_OK)
        return st;
    int64_t rows = a->shape.dim[0], cols = a->shape.dim[1]; /* [out, in] */
    size_t es = jg_dtype_size(a->dtype);
    const unsigned char *src = a->data;
    unsigned char *dst = p->data;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            memcpy(dst + (size_t)(c * rows + r) * es, src + (size_t)(r * cols + c) * es, es);
    p->init = JG_INIT_DATA;
    return JG_OK;
}

jg_node *jg_param_find(jg_graph *g, const char *name)
{
    graph_param *p = g && name ? store_find(g, name) : NULL;
    return p ? p->node : NULL;
}

jg_status jg_param_freeze(jg_node *param, bool frozen)
{
    if (!param)
        return JG_ERR_ARG;
    if (param->param < 0) {
        /* A poisoned node's error is already on its graph (the orphan one has none). */
        if (!node_poisoned(param))
            graph_note(param->graph, "jg_param_freeze: node %%%d (op %s) is not a parameter",
                       param->id, jg_node_op_name(param));
        return JG_ERR_ARG;
    }
    param->graph->params[param->param].frozen = frozen;
    return JG_OK;
}

int jg_param_count(const jg_graph *g) { return g ? g->n_params : 0; }

jg_node *jg_param_at(const jg_graph *g, int i)
{
    return g && i >= 0 && i < g->n_params ? g->params[i].node : NULL;
}
