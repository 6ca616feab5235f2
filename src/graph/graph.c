/* Graph lifetime, the node arena, the error records and node queries.
 * A graph is reference counted so that programs compiled from it keep its nodes and
 * parameter store alive after the user frees the graph handle. */
#include "graph/graph.h"

#include <stdlib.h>
#include <string.h>

static const char *const op_names[] = {
#define OP(E, name) [JG_OP_##E] = #name,
#include "graph/ops.def"
#undef OP
};
_Static_assert(sizeof op_names / sizeof op_names[0] == JG_OP_COUNT, "ops.def out of step");

const char *graph_op_name(jg_op op)
{
    return (unsigned)op < JG_OP_COUNT ? op_names[op] : "(invalid op)";
}

struct arena_chunk {
    arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

enum { ARENA_CHUNK = 64 * 1024 };

void *graph_alloc(jg_graph *g, size_t bytes)
{
    bytes = (bytes + 15) & ~(size_t)15;
    arena_chunk *c = g->arena;
    if (!c || c->size - c->used < bytes) {
        size_t size = bytes > ARENA_CHUNK ? bytes : ARENA_CHUNK;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->next = g->arena;
        c->used = 0;
        c->size = size;
        g->arena = c;
    }
    void *p = c->data + c->used;
    c->used += bytes;
    memset(p, 0, bytes);
    return p;
}

char *graph_strdup(jg_graph *g, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = graph_alloc(g, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void graph_verror(jg_graph *g, jg_loc at, jg_status st, const char *fmt, va_list ap)
{
    if (g->status != JG_OK)
        return;
    g->status = st;
    int n = 0;
    if (at.file)
        n = snprintf(g->errmsg, sizeof g->errmsg, "%s:%d: ", base_name(at.file), at.line);
    vsnprintf(g->errmsg + n, sizeof g->errmsg - (size_t)n, fmt, ap);
}

void graph_error(jg_graph *g, jg_loc at, jg_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    graph_verror(g, at, st, fmt, ap);
    va_end(ap);
}

void graph_note(jg_graph *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->last_msg, sizeof g->last_msg, fmt, ap);
    va_end(ap);
}

jg_graph *jg_graph_new(void)
{
    jg_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->refs = 1;
    g->seed = 0x5eed;
    g->poison = graph_alloc(g, sizeof *g->poison);
    if (!g->poison) {
        free(g);
        return NULL;
    }
    *g->poison = (jg_node){ .graph = g, .id = -1, .op = JG_OP_POISON, .param = -1 };
    return g;
}

void graph_retain(jg_graph *g) { g->refs++; }

void graph_release(jg_graph *g)
{
    if (--g->refs > 0)
        return;
    store_free(g);
    free(g->train_updates);
    free(g->nodes);
    for (arena_chunk *c = g->arena, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(g);
}

void jg_graph_free(jg_graph *g)
{
    if (!g || g->user_freed)
        return;
    g->user_freed = true;
    graph_release(g);
}

jg_status jg_graph_status(const jg_graph *g) { return g ? g->status : JG_ERR_ARG; }

/* The sticky error wins: it is the one that makes compiles fail. */
const char *jg_graph_errmsg(const jg_graph *g)
{
    if (!g)
        return "jg_graph_errmsg: graph is NULL";
    return g->status != JG_OK ? g->errmsg : g->last_msg;
}

void jg_graph_clear_error(jg_graph *g)
{
    if (!g)
        return;
    g->status = JG_OK;
    g->errmsg[0] = '\0';
    g->last_msg[0] = '\0';
}

void jg_graph_set_seed(jg_graph *g, uint64_t seed)
{
    if (g)
        g->seed = seed;
}

int jg_graph_node_count(const jg_graph *g) { return g ? g->n_nodes : 0; }

jg_node *graph_node_new(jg_graph *g, jg_loc at, jg_op op, jg_dtype t, jg_shape s,
                        jg_node *const *in, int n_in, const op_attr *attr)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 256;
        jg_node **nodes = realloc(g->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            goto nomem;
        g->nodes = nodes;
        g->cap_nodes = cap;
    }
    jg_node *n = graph_alloc(g, sizeof *n);
    jg_node **ins = n_in ? graph_alloc(g, (size_t)n_in * sizeof *ins) : NULL;
    if (!n || (n_in && !ins))
        goto nomem;
    if (n_in)
        memcpy(ins, in, (size_t)n_in * sizeof *ins);
    *n = (jg_node){ .graph = g, .id = g->n_nodes, .op = op, .dtype = t, .shape = s,
                    .n_in = n_in, .in = ins, .param = -1, .at = at };
    if (attr)
        n->attr = *attr;
    g->nodes[g->n_nodes++] = n;
    return n;
nomem:
    graph_error(g, at, JG_ERR_NOMEM, "jg_%s: out of memory", graph_op_name(op));
    return g->poison;
}

/* ---- node queries: NULL-safe, since users call them on anything a builder returned */

jg_graph *jg_node_graph(const jg_node *n) { return n ? n->graph : NULL; }
jg_shape jg_node_shape(const jg_node *n) { return n ? n->shape : JG_SCALAR; }
jg_dtype jg_node_dtype(const jg_node *n) { return n ? n->dtype : JG_F32; }
bool jg_node_ok(const jg_node *n) { return n && !node_poisoned(n); }
int jg_node_id(const jg_node *n) { return n ? n->id : -1; }
const char *jg_node_name(const jg_node *n) { return n ? n->name : NULL; }

const char *jg_node_op_name(const jg_node *n)
{
    return n ? graph_op_name(n->op) : "(null)";
}

const char *jg_status_str(jg_status s)
{
    switch (s) {
    case JG_OK: return "ok";
    case JG_ERR_SHAPE: return "shape error";
    case JG_ERR_DTYPE: return "dtype error";
    case JG_ERR_ARG: return "invalid argument";
    case JG_ERR_IO: return "i/o error";
    case JG_ERR_NOMEM: return "out of memory";
    case JG_ERR_STATE: return "invalid state";
    case JG_ERR_RANGE: return "value out of range";
    case JG_ERR_GRAD: return "gradient error";
    case JG_ERR_NONFINITE: return "non-finite value";
    }
    return "unknown status";
}

void jg_graph_dump(const jg_graph *g, FILE *out)
{
    if (!g || !out)
        return;
    char buf[96];
    for (int i = 0; i < g->n_nodes; i++) {
        const jg_node *n = g->nodes[i];
        fprintf(out, "%%%d = %s", n->id, graph_op_name(n->op));
        if (n->name)
            fprintf(out, " \"%s\"", n->name);
        for (int k = 0; k < n->n_in; k++)
            fprintf(out, "%s%%%d", k ? ", " : " ", n->in[k]->id);
        fprintf(out, " : %s%s\n", jg_dtype_str(n->dtype), FMT_SHAPE(buf, n->shape));
    }
}

jg_status graph_add_train_update(jg_graph *g, jg_node *anchor, jg_node *param, jg_node *value)
{
    if (g->n_train_updates == g->cap_train_updates) {
        int cap = g->cap_train_updates ? 2 * g->cap_train_updates : 8;
        graph_train_update *u = realloc(g->train_updates, (size_t)cap * sizeof *u);
        if (!u)
            return JG_ERR_NOMEM;
        g->train_updates = u;
        g->cap_train_updates = cap;
    }
    g->train_updates[g->n_train_updates++] = (graph_train_update){ anchor, param, value };
    return JG_OK;
}
