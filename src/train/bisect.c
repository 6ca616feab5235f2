/* Pass bisection: when a compiled program disagrees with the reference executor (a failing
 * gradient check, a wrong value), find the pass to blame. The reference executor computes
 * the truth; then JIT programs are compiled with every pass off (a disagreement there is the
 * code generator's, "codegen") and with the passes switched on one more at a time in
 * pipeline order; the first configuration that disagrees names its newest pass.
 *
 * Passes are switched on cumulatively, not one at a time alone, because later passes see
 * what earlier ones made (fuse sees what cse merged): each configuration is a prefix of the
 * real pipeline. The search is linear rather than binary: a few compiles more, but a pass
 * that breaks agreement and a later one that happens to hide it cannot mislead it. */
#include "train/bisect.h"
#include "compiler/pass.h"
#include "compiler/passes.h"
#include "program/program.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the search */

typedef struct verdict {
    bool agree;
    int output;        /* the worst element: output index, or -1 */
    int64_t index;
    double excess;     /* error / tolerance there (inf: a NaN or an exact mismatch) */
} verdict;

static verdict compare(const bisect_spec *s, double *const *v)
{
    verdict r = { .agree = true, .output = -1 };
    for (int i = 0; i < s->n_outputs; i++)
        for (int64_t e = 0; e < s->numel[i]; e++) {
            double got = v[i][e], want = s->truth[i][e];
            double tol = s->atol[i] + s->rtol[i] * fabs(want), excess;
            if (got == want || (isnan(got) && isnan(want)))
                excess = 0; /* equal infinities included */
            else if (!isfinite(got) || !isfinite(want))
                excess = INFINITY; /* no tolerance makes a NaN or an infinity close */
            else
                excess = tol > 0 ? fabs(got - want) / tol : INFINITY;
            r.agree &= excess <= 1;
            if (r.output < 0 || excess > r.excess)
                r = (verdict){ r.agree, i, e, excess };
        }
    return r;
}

/* keep_off, then the candidates from `from` on, comma-separated, into buf. */
static void off_list(const bisect_spec *s, const char *const *cand, int n_cand, int from,
                     char *buf, size_t size)
{
    snprintf(buf, size, "%s", s->keep_off ? s->keep_off : "");
    for (int k = from; k < n_cand; k++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", len ? "," : "", cand[k]);
    }
}

static const char *label(const bisect_spec *s, int i, char *buf, size_t size)
{
    if (s->labels && s->labels[i])
        snprintf(buf, size, "output %d (%s)", i, s->labels[i]);
    else
        snprintf(buf, size, "output %d", i);
    return buf;
}

static double **values_new(const bisect_spec *s)
{
    double **v = calloc((size_t)s->n_outputs + 1, sizeof *v);
    for (int i = 0; v && i < s->n_outputs; i++)
        if (!(v[i] = malloc(((size_t)s->numel[i] + 1) * sizeof **v))) {
            for (int k = 0; k < i; k++)
                free(v[k]);
            free(v);
            return NULL;
        }
    return v;
}

static void values_free(const bisect_spec *s, double **v)
{
    for (int i = 0; v && i < s->n_outputs; i++)
        free(v[i]);
    free(v);
}

jg_status bisect_search(const bisect_spec *s, jg_bisect_report *out)
{
    *out = (jg_bisect_report){ .culprit = "none", .worst_output = -1, .before = NAN,
                               .value = NAN, .reference = NAN };
    const char **cand = calloc((size_t)s->n_passes + 1, sizeof *cand);
    size_t size = 1 + (s->keep_off ? strlen(s->keep_off) : 0);
    int n_cand = 0;
    for (int k = 0; cand && k < s->n_passes; k++) {
        size += strlen(s->passes[k]) + 1;
        if (pass_enabled(s->keep_off, s->passes[k]))
            cand[n_cand++] = s->passes[k];
    }
    char *off = malloc(size);
    double **cur = values_new(s), **prev = values_new(s);
    if (!cand || !off || !cur || !prev) {
        free(cand);
        free(off);
        values_free(s, cur);
        values_free(s, prev);
        snprintf(out->message, sizeof out->message, "jg_bisect_passes: out of memory");
        return JG_ERR_NOMEM;
    }
    char err[384] = "", where[160];
    /* configuration k: candidates 0..k-1 on; k = 0 is every candidate off */
    for (int k = 0; k <= n_cand; k++) {
        off_list(s, cand, n_cand, k, off, size);
        const char *blame = k == 0 ? "codegen" : cand[k - 1];
        out->configs++;
        err[0] = '\0';
        if (s->run(s->ctx, off, cur, err, sizeof err) != JG_OK) {
            out->culprit = blame;
            out->worst_output = -1;
            out->value = out->reference = NAN;
            snprintf(out->message, sizeof out->message, "%s: with %s, the program fails: %s",
                     blame, k == 0 ? "every pass off" : "it switched on", err);
            break;
        }
        verdict v = compare(s, cur);
        if (v.output >= 0) {
            out->worst_output = v.output;
            out->worst_index = v.index;
            out->value = cur[v.output][v.index];
            out->reference = s->truth[v.output][v.index];
        }
        if (!v.agree) {
            out->culprit = blame;
            label(s, v.output, where, sizeof where);
            if (k == 0) {
                snprintf(out->message, sizeof out->message,
                         "codegen: with every pass off, %s element %lld is %.9g, the "
                         "reference %.9g", where, (long long)v.index, out->value,
                         out->reference);
            } else {
                out->before = prev[v.output][v.index];
                snprintf(out->message, sizeof out->message,
                         "%s: switching it on breaks agreement with the reference: %s element "
                         "%lld is %.9g with it, %.9g without it, the reference %.9g", blame,
                         where, (long long)v.index, out->value, out->before, out->reference);
            }
            break;
        }
        double **t = prev;
        prev = cur;
        cur = t;
    }
    if (strcmp(out->culprit, "none") == 0) {
        snprintf(out->message, sizeof out->message,
                 "none: %d configurations, up to every pass on, agree with the reference",
                 out->configs);
        if (out->worst_output >= 0) {
            size_t len = strlen(out->message);
            snprintf(out->message + len, sizeof out->message - len,
                     " (largest difference: %s element %lld is %.9g, the reference %.9g)",
                     label(s, out->worst_output, where, sizeof where),
                     (long long)out->worst_index, out->value, out->reference);
        }
    }
    free(cand);
    free(off);
    values_free(s, cur);
    values_free(s, prev);
    return JG_OK;
}

/* ---- programs */

typedef struct programs {
    jg_graph *g;
    jg_node *const *outputs;
    int n;
    jg_opts o;
    const jg_binding *inputs;
    int n_inputs;
} programs;

static void to_double(const void *src, jg_dtype t, int64_t numel, double *dst)
{
    for (int64_t e = 0; e < numel; e++)
        dst[e] = t == JG_F32   ? (double)((const float *)src)[e]
                 : t == JG_F64 ? ((const double *)src)[e]
                               : (double)((const int32_t *)src)[e];
}

/* Compiles, binds, runs once and reads every output as doubles. A compile failure is
 * reported in err and taken off the graph: bisecting must not poison the user's graph. */
static jg_status compute(programs *c, const jg_opts *o, double *const *values, char *err,
                         size_t size)
{
    jg_program *p = program_compile(c->g, c->outputs, c->n, o, false);
    if (!p) {
        jg_status st = c->g->status != JG_OK ? c->g->status : JG_ERR_STATE;
        snprintf(err, size, "%s", c->g->errmsg);
        jg_graph_clear_error(c->g);
        return st;
    }
    jg_status st = JG_OK;
    for (int i = 0; i < c->n_inputs && st == JG_OK; i++)
        st = jg_program_set(p, c->inputs[i].name, c->inputs[i].data, c->inputs[i].bytes);
    if (st == JG_OK)
        st = jg_program_run(p);
    for (int i = 0; i < c->n && st == JG_OK; i++) {
        const jg_node *n = c->outputs[i];
        int64_t numel = jg_shape_numel(n->shape);
        size_t bytes = (size_t)numel * jg_dtype_size(n->dtype);
        void *raw = malloc(bytes + 1);
        st = raw ? jg_program_get(p, i, raw, bytes) : JG_ERR_NOMEM;
        if (st == JG_OK)
            to_double(raw, n->dtype, numel, values[i]);
        free(raw);
    }
    if (st != JG_OK)
        snprintf(err, size, "%s", st == JG_ERR_NOMEM ? "out of memory" : jg_errmsg(p));
    jg_program_free(p);
    return st;
}

static jg_status run_jit(void *ctx, const char *passes_off, double *const *values, char *err,
                         size_t size)
{
    programs *c = ctx;
    jg_opts o = c->o;
    o.executor = JG_EXEC_JIT;
    o.passes_off = passes_off;
    return compute(c, &o, values, err, size);
}

/* A run that could not bisect: the reason in the report and as the graph's last message
 * (which does not poison it). */
static jg_status cannot(jg_graph *g, jg_bisect_report *out, jg_status st, const char *why)
{
    if (out) {
        *out = (jg_bisect_report){ .culprit = "none", .worst_output = -1, .value = NAN,
                                   .reference = NAN, .before = NAN };
        snprintf(out->message, sizeof out->message, "jg_bisect_passes: %s", why);
    }
    if (g)
        graph_note(g, "jg_bisect_passes: %s", why);
    return st;
}

static jg_status bad_arg(jg_graph *g, jg_bisect_report *out, const char *why)
{
    return cannot(g, out, JG_ERR_ARG, why);
}

jg_status jg_bisect_passes(jg_graph *g, jg_node *const *outputs, int n, const jg_opts *base,
                           const jg_binding *inputs, int n_inputs, double rtol, double atol,
                           jg_bisect_report *out)
{
    if (!g)
        return bad_arg(NULL, out, "graph is NULL");
    if (!out)
        return bad_arg(g, NULL, "out is NULL");
    if (g->status != JG_OK) {
        *out = (jg_bisect_report){ .culprit = "none", .worst_output = -1, .value = NAN,
                                   .reference = NAN, .before = NAN };
        snprintf(out->message, sizeof out->message, "%s", g->errmsg);
        return g->status;
    }
    if (n <= 0 || !outputs)
        return bad_arg(g, out, "no outputs (outputs NULL or n <= 0)");
    for (int i = 0; i < n; i++)
        if (!outputs[i] || outputs[i]->graph != g || node_poisoned(outputs[i]))
            return bad_arg(g, out, !outputs[i] ? "an output is NULL"
                                   : outputs[i]->graph != g ? "an output belongs to another graph"
                                                            : "an output is poisoned");
    if (n_inputs < 0 || (n_inputs > 0 && !inputs))
        return bad_arg(g, out, "inputs is NULL or n_inputs < 0");
    if (!(rtol >= 0) || !(atol >= 0))
        return bad_arg(g, out, "rtol and atol must be >= 0 (0 and 0: the defaults)");

    jg_opts o = base ? *base : (jg_opts){ 0 };
    o.updates = NULL;
    o.n_updates = 0;
    o.exact = false; /* the truth rounds f32 per op, as f32 kernels do */
    o.check_finite = false; /* a NaN is a value to compare, not a reason to stop */
    o.dump_dir = NULL;
    o.keep_text = false;
    size_t off_len = (o.passes_off ? strlen(o.passes_off) : 0) + sizeof ",fuse";
    char *keep_off = malloc(off_len);
    if (keep_off)
        snprintf(keep_off, off_len, "%s%s%s", o.passes_off ? o.passes_off : "",
                 o.no_fusion && o.passes_off && *o.passes_off ? "," : "",
                 o.no_fusion ? "fuse" : "");
    o.no_fusion = false; /* "fuse" in passes_off says it */
    programs c = { g, outputs, n, o, inputs, n_inputs };

    int n_passes = 0;
    while (pass_name(n_passes))
        n_passes++;
    const char **names = calloc((size_t)n_passes + 1, sizeof *names);
    int64_t *numel = calloc((size_t)n, sizeof *numel);
    double *tol = calloc(2 * (size_t)n, sizeof *tol);
    char (*labels)[48] = calloc((size_t)n, sizeof *labels);
    const char **label_ptr = calloc((size_t)n, sizeof *label_ptr);
    bisect_spec s = { .passes = names, .n_passes = n_passes, .keep_off = keep_off,
                      .n_outputs = n, .numel = numel, .rtol = tol, .atol = tol + n,
                      .labels = label_ptr, .run = run_jit, .ctx = &c };
    double **truth = NULL;
    jg_status st = JG_OK;
    if (!keep_off || !names || !numel || !tol || !labels || !label_ptr) {
        st = cannot(g, out, JG_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int k = 0; k < n_passes; k++)
        names[k] = pass_name(k);
    for (int i = 0; i < n; i++) {
        const jg_node *x = outputs[i];
        bool both0 = rtol == 0 && atol == 0;
        numel[i] = jg_shape_numel(x->shape);
        tol[i] = !both0 ? rtol : x->dtype == JG_F32 ? 1e-4 : x->dtype == JG_F64 ? 1e-9 : 0;
        tol[n + i] = !both0 ? atol : x->dtype == JG_F32 ? 1e-5 : x->dtype == JG_F64 ? 1e-12 : 0;
        snprintf(labels[i], sizeof labels[i], "%s node %%%d", graph_op_name(x->op), x->id);
        label_ptr[i] = labels[i];
    }
    if (!(truth = values_new(&s))) {
        st = cannot(g, out, JG_ERR_NOMEM, "out of memory");
        goto done;
    }
    s.truth = (const double *const *)truth;
    jg_opts ref = o;
    ref.executor = JG_EXEC_REFERENCE;
    char err[400], why[448];
    st = compute(&c, &ref, truth, err, sizeof err);
    if (st != JG_OK) {
        snprintf(why, sizeof why, "the reference executor could not run: %s", err);
        cannot(g, out, st, why);
        goto done;
    }
    st = bisect_search(&s, out);
    if (st != JG_OK)
        graph_note(g, "%s", out->message);
done:
    values_free(&s, truth);
    free(keep_off);
    free(names);
    free(numel);
    free(tol);
    free(labels);
    free(label_ptr);
    return st;
}
