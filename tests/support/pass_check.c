#include "pass_check.h"
#include "support.h"

#include <stdlib.h>

t_program_graph t_lower(jg_node *const *outs, int n, bool train)
{
    t_program_graph p = { 0 };
    char err[256];
    cr_assert_eq(lower_graph(outs[0]->graph, outs, n, train, &p.low, err, sizeof err), JG_OK,
                 "%s", err);
    p.roots = malloc((size_t)n * sizeof *p.roots);
    cr_assert(p.roots);
    for (int i = 0; i < n; i++)
        p.roots[i] = p.low.map[outs[i]->id];
    p.c = (pass_ctx){ .g = p.low.g, .roots = p.roots, .n_roots = n, .map = p.low.map,
                      .n_map = p.low.n_src, .train = train };
    pass_dce(&p.c);
    cr_assert_eq(p.c.status, JG_OK, "%s", p.c.errmsg);
    p.low.g = p.c.g;
    return p;
}

void t_program_graph_free(t_program_graph *p)
{
    p->low.g = p->c.g;
    lowered_free(&p->low);
    free(p->roots);
}

typedef struct text {
    char *s;
    size_t len, cap;
    int *number; /* by node id: canonical number + 1, 0 while unvisited */
    int next;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)k + 1 > t->cap) {
        t->cap = 2 * (t->len + (size_t)k + 1);
        t->s = realloc(t->s, t->cap);
        cr_assert(t->s);
    }
    memcpy(t->s + t->len, line, (size_t)k + 1);
    t->len += (size_t)k;
}

static int visit(text *t, const jg_node *n)
{
    if (t->number[n->id])
        return t->number[n->id] - 1;
    int args[64];
    cr_assert_leq(n->n_in, 64);
    for (int k = 0; k < n->n_in; k++)
        args[k] = visit(t, n->in[k]);
    int me = t->next++;
    t->number[n->id] = me + 1;
    char shape[96];
    put(t, "%%%d = %s", me, graph_op_name(n->op));
    if (n->name)
        put(t, " \"%s\"", n->name);
    if (n->op == JG_OP_FILL || n->op == JG_OP_POW || n->op == JG_OP_CLAMP)
        put(t, " [%g, %g]", n->attr.scalar[0], n->attr.scalar[1]);
    if (op_get(n->op)->kind == KIND_REDUCE)
        put(t, " [axes %#x%s]", n->attr.axes, n->attr.keepdims ? " keep" : "");
    if (n->op == JG_OP_PERMUTE) {
        put(t, " [");
        for (int d = 0; d < n->shape.ndim; d++)
            put(t, "%s%lld", d ? " " : "", (long long)n->attr.list[d]);
        put(t, "]");
    }
    if (n->op == JG_OP_CONST) {
        int64_t numel = jg_shape_numel(n->shape);
        put(t, " [");
        for (int64_t i = 0; i < numel && i < 8; i++)
            put(t, "%s%g", i ? " " : "", n->attr.data[i]);
        put(t, "%s]", numel > 8 ? " ..." : "");
    }
    for (int k = 0; k < n->n_in; k++)
        put(t, "%s%%%d", k ? ", " : " ", args[k]);
    put(t, " : %s%s\n", jg_dtype_str(n->dtype), shape_str(n->shape, shape, sizeof shape));
    return me;
}

char *t_graph_text(const t_program_graph *p)
{
    text t = { .number = calloc((size_t)p->c.g->n_nodes + 1, sizeof(int)) };
    cr_assert(t.number);
    for (int i = 0; i < p->c.n_roots; i++)
        put(&t, "root %d: %%%d\n", i, visit(&t, p->c.roots[i]));
    free(t.number);
    return t.s;
}

void t_assert_same_graph(const t_program_graph *got, const t_program_graph *want)
{
    char *a = t_graph_text(got), *b = t_graph_text(want);
    cr_assert_str_eq(a, b, "graph after the pass:\n%s\nexpected:\n%s", a, b);
    free(a);
    free(b);
}

int t_count_op(const t_program_graph *p, jg_op op)
{
    bool *seen = calloc((size_t)p->c.g->n_nodes + 1, sizeof *seen);
    cr_assert(seen);
    for (int i = 0; i < p->c.n_roots; i++)
        seen[p->c.roots[i]->id] = true;
    int count = 0;
    for (int id = p->c.g->n_nodes - 1; id >= 0; id--) {
        const jg_node *n = p->c.g->nodes[id];
        if (!seen[id])
            continue;
        count += n->op == op;
        for (int k = 0; k < n->n_in; k++)
            seen[n->in[k]->id] = true;
    }
    free(seen);
    return count;
}

/* Every output of a fresh run of outs compiled with passes_off = off, as doubles. */
static double **run(jg_graph *g, jg_node *const *outs, int n, const char *off,
                    const jg_binding *inputs, int n_inputs)
{
    jg_program *p = jg_compile(g, outs, n, &(jg_opts){ .passes_off = off, .num_threads = 1 });
    cr_assert(p, "%s", jg_errmsg(g));
    for (int k = 0; k < n_inputs; k++)
        cr_assert_eq(jg_program_set(p, inputs[k].name, inputs[k].data, inputs[k].bytes), JG_OK,
                     "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    double **v = calloc((size_t)n, sizeof *v);
    cr_assert(v);
    for (int i = 0; i < n; i++) {
        int64_t numel = jg_shape_numel(outs[i]->shape);
        size_t size = jg_dtype_size(outs[i]->dtype);
        void *raw = malloc((size_t)numel * size);
        v[i] = malloc((size_t)numel * sizeof *v[i]);
        cr_assert(v[i] && raw);
        cr_assert_eq(jg_program_get(p, i, raw, (size_t)numel * size), JG_OK, "%s",
                     jg_errmsg(p));
        for (int64_t e = 0; e < numel; e++)
            v[i][e] = outs[i]->dtype == JG_F32 ? ((float *)raw)[e]
                    : outs[i]->dtype == JG_F64 ? ((double *)raw)[e]
                                               : ((int32_t *)raw)[e];
        free(raw);
    }
    jg_program_free(p);
    return v;
}

void t_assert_pass_neutral(jg_graph *g, jg_node *const *outs, int n, const char *off,
                           const jg_binding *inputs, int n_inputs, double tol)
{
    double **on = run(g, outs, n, NULL, inputs, n_inputs);
    double **without = run(g, outs, n, off, inputs, n_inputs);
    for (int i = 0; i < n; i++) {
        t_assert_close(on[i], without[i], jg_shape_numel(outs[i]->shape), tol);
        free(on[i]);
        free(without[i]);
    }
    free(on);
    free(without);
}
