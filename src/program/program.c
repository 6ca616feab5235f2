/* The program API: a compiled set of outputs and parameter updates over a graph, with inputs
 * bound by name. Compilation picks the nodes the outputs need (in id order, a topological
 * order) into the plan (exec/exec.h), files the advice about them, and hands the plan to an
 * executor: the JIT (jit/executor.c) by default, the reference one (exec/reference.c) for
 * exact runs. Every buffer is allocated up front, so a run allocates nothing. */
#include "program/program.h"

#include "compiler/advice.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void program_error(jg_program *p, jg_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void program_error(jg_program *p, jg_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
    va_end(ap);
    p->status = st;
}

static bool node_arg_ok(jg_graph *g, const jg_node *n, const char *what, int i)
{
    if (!n || n->graph != g || node_poisoned(n)) {
        graph_error(g, (jg_loc){ 0 }, n && node_poisoned(n) ? JG_ERR_STATE : JG_ERR_ARG,
                    "jg_compile: %s %d is %s", what, i,
                    !n ? "NULL" : n->graph != g ? "from another graph"
                                                : "poisoned by an earlier error");
        return false;
    }
    return true;
}

/* A feature list as LLVM takes it: "+name" or "-name" items, comma-separated. */
static bool features_ok(const char *f)
{
    for (const char *s = f; *s;) {
        if (*s != '+' && *s != '-')
            return false;
        size_t n = strcspn(++s, ",");
        if (n == 0)
            return false;
        for (size_t i = 0; i < n; i++)
            if (!(s[i] == '_' || s[i] == '.' || s[i] == '-' || (s[i] >= '0' && s[i] <= '9') ||
                  (s[i] >= 'a' && s[i] <= 'z')))
                return false;
        s += n;
        s += *s == ',';
    }
    return true;
}

/* Every JIT setting in range; an unknown pass name is an error rather than silently no
 * switch at all. */
static bool settings_ok(jg_graph *g, const jg_opts *o)
{
    const char *bad = NULL;
    char why[160] = "";
    if (o->num_threads < 0 || o->num_threads > JIT_POOL_MAX_THREADS)
        bad = "num_threads", snprintf(why, sizeof why, "%d (must be 0 for the cores, or 1..%d)",
                                      o->num_threads, JIT_POOL_MAX_THREADS);
    else if (o->vector_bits != 0 && o->vector_bits != 32 && o->vector_bits != 128 &&
             o->vector_bits != 256 && o->vector_bits != 512)
        bad = "vector_bits", snprintf(why, sizeof why, "%d (must be 0, 32, 128, 256 or 512)",
                                      o->vector_bits);
    else if (o->opt_level < -1 || o->opt_level > 3)
        bad = "opt_level", snprintf(why, sizeof why,
                                    "%d (must be -1 for O0, 0 for the default, or 1..3)",
                                    o->opt_level);
    else if (o->cpu && (!*o->cpu || strspn(o->cpu, "abcdefghijklmnopqrstuvwxyz0123456789-_.") !=
                                        strlen(o->cpu)))
        bad = "cpu", snprintf(why, sizeof why, "'%.60s' is not a CPU name (e.g. \"haswell\")",
                              o->cpu);
    else if (o->cpu_features && !features_ok(o->cpu_features))
        bad = "cpu_features", snprintf(why, sizeof why, "'%.60s' is not a feature list "
                                       "(e.g. \"-avx512f,+fma\")", o->cpu_features);
    for (const char *s = o->passes_off; !bad && s && *s;) {
        size_t n = strcspn(s, ",");
        size_t lead = strspn(s, " ");
        const char *name = s + lead;
        size_t len = n - lead;
        while (len && name[len - 1] == ' ')
            len--;
        bool known = len == 0;
        for (int i = 0; !known && jg_pass_name(i); i++)
            known = strlen(jg_pass_name(i)) == len && strncmp(jg_pass_name(i), name, len) == 0;
        if (!known)
            bad = "passes_off", snprintf(why, sizeof why, "unknown pass '%.*s' (jg_pass_name "
                                         "lists them)", (int)(len < 40 ? len : 40), name);
        s += n;
        s += *s == ',';
    }
    if (bad)
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile: opts.%s %s", bad, why);
    return !bad;
}

static bool updates_ok(jg_graph *g, const jg_opts *o)
{
    char a[96], b[96];
    if (o->n_updates < 0 || (o->n_updates > 0 && !o->updates)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile: updates is NULL or n_updates < 0");
        return false;
    }
    for (int i = 0; i < o->n_updates; i++) {
        const jg_update *u = &o->updates[i];
        if (!node_arg_ok(g, u->param, "update param", i) ||
            !node_arg_ok(g, u->value, "update value", i))
            return false;
        if (u->param->op != JG_OP_PARAM) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                        "jg_compile: update %d targets a node of op %s, not a parameter", i,
                        graph_op_name(u->param->op));
            return false;
        }
        for (int k = 0; k < i; k++)
            if (o->updates[k].param == u->param) {
                graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                            "jg_compile: updates %d and %d both target parameter '%s'", k, i,
                            u->param->name);
                return false;
            }
        if (!shape_eq(u->param->shape, u->value->shape) || u->param->dtype != u->value->dtype) {
            graph_error(g, (jg_loc){ 0 }, JG_ERR_SHAPE,
                        "jg_compile: update %d: parameter '%s' is %s%s, value is %s%s", i,
                        u->param->name, jg_dtype_str(u->param->dtype),
                        FMT_SHAPE(a, u->param->shape), jg_dtype_str(u->value->dtype),
                        FMT_SHAPE(b, u->value->shape));
            return false;
        }
    }
    return true;
}

/* Training programs also update the state of what they compute (batchnorm running stats). */
static jg_status add_train_updates(jg_program *p, jg_graph *g)
{
    if (!g->n_train_updates)
        return JG_OK;
    bool *needed = calloc((size_t)g->n_nodes + 1, sizeof *needed);
    jg_update *u = realloc(p->plan.updates, ((size_t)p->plan.n_updates + (size_t)g->n_train_updates + 1) *
                                           sizeof *u);
    if (!needed || !u) {
        free(needed);
        if (u)
            p->plan.updates = u;
        return JG_ERR_NOMEM;
    }
    p->plan.updates = u;
    for (int i = 0; i < p->plan.n_outputs; i++)
        needed[p->plan.outputs[i]->id] = true;
    for (int i = 0; i < p->plan.n_updates; i++)
        needed[p->plan.updates[i].value->id] = true;
    for (int id = g->n_nodes - 1; id >= 0; id--)
        for (int k = 0; needed[id] && k < g->nodes[id]->n_in; k++)
            needed[g->nodes[id]->in[k]->id] = true;
    for (int i = 0; i < g->n_train_updates; i++) {
        const graph_train_update *t = &g->train_updates[i];
        bool taken = false;
        for (int k = 0; k < p->plan.n_updates; k++)
            taken |= p->plan.updates[k].param == t->param;
        if (needed[t->anchor->id] && !taken)
            p->plan.updates[p->plan.n_updates++] = (jg_update){ t->param, t->value };
    }
    free(needed);
    return JG_OK;
}

static jg_status schedule(jg_program *p, jg_graph *g)
{
    bool *needed = calloc((size_t)g->n_nodes, sizeof *needed);
    if (!needed)
        return JG_ERR_NOMEM;
    for (int i = 0; i < p->plan.n_outputs; i++)
        needed[p->plan.outputs[i]->id] = true;
    for (int i = 0; i < p->plan.n_updates; i++)
        needed[p->plan.updates[i].value->id] = true;
    for (int id = g->n_nodes - 1; id >= 0; id--) /* operands have smaller ids */
        for (int k = 0; needed[id] && k < g->nodes[id]->n_in; k++)
            needed[g->nodes[id]->in[k]->id] = true;
    p->plan.slot = malloc((size_t)g->n_nodes * sizeof *p->plan.slot);
    p->plan.sched = malloc((size_t)g->n_nodes * sizeof *p->plan.sched);
    if (!p->plan.slot || !p->plan.sched) {
        free(needed);
        return JG_ERR_NOMEM;
    }
    for (int id = 0; id < g->n_nodes; id++) {
        p->plan.slot[id] = -1;
        if (!needed[id])
            continue;
        jg_node *n = g->nodes[id];
        p->plan.slot[id] = p->plan.n_sched;
        p->plan.sched[p->plan.n_sched++] = n;
        if (n->op == JG_OP_INPUT)
            p->plan.n_inputs++;
    }
    free(needed);
    p->plan.n_slots = g->n_nodes;
    p->plan.inputs = calloc((size_t)p->plan.n_inputs + 1, sizeof *p->plan.inputs);
    if (!p->plan.inputs)
        return JG_ERR_NOMEM;
    int k = 0;
    for (int i = 0; i < p->plan.n_sched; i++) {
        jg_node *n = p->plan.sched[i];
        if (n->op != JG_OP_INPUT)
            continue;
        p->plan.inputs[k].node = n;
        p->plan.inputs[k].bytes = (size_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
        if (!(p->plan.inputs[k].data = malloc(p->plan.inputs[k].bytes)))
            return JG_ERR_NOMEM;
        k++;
    }
    return JG_OK;
}

jg_program *jg_compile(jg_graph *g, jg_node *const *outputs, int n_outputs, const jg_opts *opts)
{
    return program_compile(g, outputs, n_outputs, opts, true);
}

jg_program *program_compile(jg_graph *g, jg_node *const *outputs, int n_outputs,
                            const jg_opts *opts, bool state_updates)
{
    if (!g)
        return NULL;
    if (g->status != JG_OK)
        return NULL; /* the graph's first error stands as the reason */
    jg_opts o = opts ? *opts : (jg_opts){ 0 };
    if (n_outputs < 0 || (n_outputs > 0 && !outputs) || (n_outputs == 0 && o.n_updates == 0)) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG,
                    "jg_compile: no outputs (outputs NULL or n_outputs <= 0) and no updates");
        return NULL;
    }
    if ((unsigned)o.executor > JG_EXEC_JIT) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile: unknown executor %d",
                    (int)o.executor);
        return NULL;
    }
    for (int i = 0; i < n_outputs; i++)
        if (!node_arg_ok(g, outputs[i], "output", i))
            return NULL;
    if (!updates_ok(g, &o) || !settings_ok(g, &o))
        return NULL;
#ifndef NDEBUG
    char why[OP_ERR_SIZE];
    if (graph_verify(g, why, sizeof why) != JG_OK) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_STATE, "jg_compile: internal: %s", why);
        return NULL;
    }
#endif

    if ((unsigned)o.mode > JG_MODE_EVAL) {
        graph_error(g, (jg_loc){ 0 }, JG_ERR_ARG, "jg_compile: unknown mode %d", (int)o.mode);
        return NULL;
    }
    jg_program *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    p->plan.graph = g;
    graph_retain(g);
    p->plan.exact = o.exact;
    p->plan.train = o.mode == JG_MODE_TRAIN;
    p->plan.check_finite = o.check_finite;
    p->plan.n_outputs = n_outputs;
    p->plan.n_updates = o.n_updates;
    p->plan.outputs = malloc(((size_t)n_outputs + 1) * sizeof *p->plan.outputs);
    p->plan.updates = malloc(((size_t)o.n_updates + 1) * sizeof *p->plan.updates);
    if (!p->plan.outputs || !p->plan.updates)
        goto nomem;
    if (n_outputs)
        memcpy(p->plan.outputs, outputs, (size_t)n_outputs * sizeof *outputs);
    if (o.n_updates)
        memcpy(p->plan.updates, o.updates, (size_t)o.n_updates * sizeof *o.updates);
    if (p->plan.train && state_updates && add_train_updates(p, g) != JG_OK)
        goto nomem;
    {
        int n_roots = p->plan.n_outputs + p->plan.n_updates;
        jg_node **roots = malloc(((size_t)n_roots + 1) * sizeof *roots);
        if (!roots)
            goto nomem;
        for (int i = 0; i < p->plan.n_outputs; i++)
            roots[i] = p->plan.outputs[i];
        for (int i = 0; i < p->plan.n_updates; i++)
            roots[p->plan.n_outputs + i] = p->plan.updates[i].value;
        char *text = malloc(ADVICE_TEXT_SIZE); /* without it, no advice: it is not needed */
        if (text) {
            int n = advice_check(g, roots, n_roots, p->plan.train, text, ADVICE_TEXT_SIZE);
            program_warn(p, text, n, o.print_warnings);
        }
        free(text);
        free(roots);
    }
    if (schedule(p, g) != JG_OK)
        goto nomem;
    if (o.exact || o.executor == JG_EXEC_REFERENCE) {
        if (reference_prepare(&p->plan) != JG_OK)
            goto nomem;
    } else {
        char err[2 * OP_ERR_SIZE] = "";
        jg_status st = jit_program_compile(&p->plan, &o, &p->jit, err, sizeof err);
        if (st != JG_OK) {
            graph_error(g, (jg_loc){ 0 }, st, "jg_compile: %s", err);
            jg_program_free(p);
            return NULL;
        }
        int n;
        const char *text = jit_program_warnings(p->jit, &n);
        if (n) /* about the machine, not the model: always printed (as before) */
            program_warn(p, text, n, true);
    }
    return p;
nomem:
    graph_error(g, (jg_loc){ 0 }, JG_ERR_NOMEM, "jg_compile: out of memory");
    jg_program_free(p);
    return NULL;
}

void jg_program_free(jg_program *p)
{
    if (!p)
        return;
    jit_program_free(p->jit);
    reference_release(&p->plan);
    for (int i = 0; p->plan.inputs && i < p->plan.n_inputs; i++)
        free(p->plan.inputs[i].data);
    free(p->plan.inputs);
    free(p->plan.override);
    free(p->plan.sched);
    free(p->plan.slot);
    free(p->plan.outputs);
    free(p->plan.updates);
    if (p->plan.graph)
        graph_release(p->plan.graph);
    free(p);
}

jg_status jg_program_set(jg_program *p, const char *input, const void *data, size_t bytes)
{
    if (!p)
        return JG_ERR_ARG;
    if (!input || !data) {
        program_error(p, JG_ERR_ARG, "jg_program_set: %s is NULL", !input ? "name" : "data");
        return JG_ERR_ARG;
    }
    for (int i = 0; i < p->plan.n_inputs; i++) {
        program_input *in = &p->plan.inputs[i];
        if (strcmp(in->node->name, input) != 0)
            continue;
        if (bytes != in->bytes) {
            char s[96];
            program_error(p, JG_ERR_ARG,
                          "jg_program_set: input '%s' is %s%s = %zu bytes, given %zu", input,
                          jg_dtype_str(in->node->dtype), FMT_SHAPE(s, in->node->shape),
                          in->bytes, bytes);
            return JG_ERR_ARG;
        }
        memcpy(in->data, data, bytes);
        in->set = true;
        return JG_OK;
    }
    /* An input of the graph that this program does not read is accepted and ignored, so one
     * loop can feed a training and an evaluation program alike. */
    jg_graph *g = p->plan.graph;
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i]->op == JG_OP_INPUT && strcmp(g->nodes[i]->name, input) == 0)
            return JG_OK;
    program_error(p, JG_ERR_ARG, "jg_program_set: the graph has no input named '%s'", input);
    return JG_ERR_ARG;
}

jg_status jg_program_run(jg_program *p)
{
    if (!p)
        return JG_ERR_ARG;
    for (int i = 0; i < p->plan.n_inputs; i++)
        if (!p->plan.inputs[i].set && !(p->plan.override && p->plan.override[p->plan.slot[p->plan.inputs[i].node->id]])) {
            program_error(p, JG_ERR_STATE, "jg_program_run: input '%s' is not set",
                          p->plan.inputs[i].node->name);
            return JG_ERR_STATE;
        }
    char err[2 * OP_ERR_SIZE] = "";
    p->plan.ran = false; /* outputs of a failed run are not to be read */
    jg_status st = p->jit ? jit_program_run(&p->plan, p->jit, err, sizeof err)
                          : reference_run(&p->plan, err);
    if (st != JG_OK) {
        program_error(p, st, "jg_program_run: %s", err);
        return st;
    }
    p->plan.ran = true;
    p->plan.step++;
    p->status = JG_OK;
    p->errmsg[0] = '\0';
    return JG_OK;
}

static bool output_index_ok(jg_program *p, int i, const char *fn)
{
    if (i < 0 || i >= p->plan.n_outputs) {
        program_error(p, JG_ERR_ARG, "%s: output %d out of range (the program has %d)", fn, i,
                      p->plan.n_outputs);
        return false;
    }
    if (!p->plan.ran) {
        program_error(p, JG_ERR_STATE, "%s: the program has not run yet", fn);
        return false;
    }
    return true;
}

jg_status jg_program_get(jg_program *p, int i, void *out, size_t bytes)
{
    if (!p)
        return JG_ERR_ARG;
    if (!output_index_ok(p, i, "jg_program_get"))
        return p->status;
    jg_node *n = p->plan.outputs[i];
    size_t want = (size_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
    if (!out || bytes != want) {
        char s[96];
        program_error(p, JG_ERR_ARG, "jg_program_get: output %d is %s%s = %zu bytes, given %zu%s",
                      i, jg_dtype_str(n->dtype), FMT_SHAPE(s, n->shape), want, bytes,
                      out ? "" : " and a NULL buffer");
        return JG_ERR_ARG;
    }
    if (p->jit)
        jit_program_read(&p->plan, p->jit, n, out);
    else
        reference_read(&p->plan, n, out);
    return JG_OK;
}

jg_shape jg_program_output_shape(const jg_program *p, int i)
{
    return p && i >= 0 && i < p->plan.n_outputs ? p->plan.outputs[i]->shape : JG_SCALAR;
}

jg_dtype jg_program_output_dtype(const jg_program *p, int i)
{
    return p && i >= 0 && i < p->plan.n_outputs ? p->plan.outputs[i]->dtype : JG_F32;
}

int jg_program_output_count(const jg_program *p) { return p ? p->plan.n_outputs : 0; }

const char *jg_program_errmsg(const jg_program *p)
{
    return p ? p->errmsg : "jg_program_errmsg: program is NULL";
}

jg_status program_override(jg_program *p, const jg_node *n, const double *values)
{
    if (n->id >= p->plan.n_slots || p->plan.slot[n->id] < 0)
        return JG_ERR_ARG;
    if (!p->plan.override && !(p->plan.override = calloc((size_t)p->plan.n_sched, sizeof *p->plan.override)))
        return JG_ERR_NOMEM;
    p->plan.override[p->plan.slot[n->id]] = values;
    return JG_OK;
}

/* p->warnings is fixed-size: past it, a last line says so, and the count stays exact. */
void program_warn(jg_program *p, const char *text, int count, bool print)
{
    static const char more[] = "warning: more warnings than fit here (jg_program_stats counts "
                               "them; jg_opts.print_warnings prints them)\n";
    if (print)
        fputs(text, stderr);
    p->n_warnings += count;
    size_t len = strlen(p->warnings);
    if (len >= sizeof more - 1 && strcmp(p->warnings + len - (sizeof more - 1), more) == 0)
        return; /* already full */
    for (const char *s = text; *s;) {
        const char *end = strchr(s, '\n');
        size_t n = end ? (size_t)(end - s) + 1 : strlen(s);
        if (len + n + sizeof more > sizeof p->warnings) {
            memcpy(p->warnings + len, more, sizeof more);
            return;
        }
        memcpy(p->warnings + len, s, n);
        p->warnings[len += n] = '\0';
        s += n;
    }
}

const char *jg_program_warnings(const jg_program *p) { return p ? p->warnings : ""; }
