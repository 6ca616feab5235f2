/* Gradient checking by central finite differences, in double. The checked function is
 * f = sum(output * R) for a fixed random R (just output when it is a scalar), so every
 * element of a non-scalar output matters and softmax-like ops cannot hide behind a zero sum.
 * Values of the wrt leaves are fed in double through program overrides, so an f32 graph is
 * checked in double too and the parameter store is never touched. Near a kink (an op's
 * non-differentiable point) finite differences are meaningless, so the point is moved. */
#include "program/program.h"

#include <stdlib.h>
#include <string.h>

typedef struct check {
    jg_graph *g;
    jg_gradcheck_opts o;
    jg_node *const *wrt;
    int n;
    jg_node *f;            /* the checked scalar */
    jg_node **grads;       /* analytic gradients (NULL where none flows: zero) */
    jg_program *full;      /* f and the gradients */
    jg_program *value;     /* f alone, for the finite differences */
    double **x;            /* the current point: one array per wrt */
    int64_t *numel;
    jg_gradcheck_report *r;
    double worst_ratio;    /* error / tolerance of the worst comparison */
    const char *kink_node; /* op near a kink that could not be left, or NULL */
} check;

static uint64_t check_seed(const check *c) { return c->o.seed ? c->o.seed : 1; }

static jg_status fail(check *c, jg_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static jg_status fail(check *c, jg_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    graph_verror(c->g, (jg_loc){ 0 }, st, fmt, ap);
    va_end(ap);
    return st;
}

static jg_status validate(check *c)
{
    jg_graph *g = c->g;
    if (c->n <= 0 || !c->wrt)
        return fail(c, JG_ERR_ARG, "jg_gradcheck: no wrt nodes (n = %d)", c->n);
    jg_node *out = c->f;
    if (!out || out->graph != g || node_poisoned(out))
        return fail(c, JG_ERR_ARG, "jg_gradcheck: output is %s", !out ? "NULL" :
                    out->graph != g ? "from another graph" : "poisoned by an earlier error");
    if (out->dtype == JG_I32)
        return fail(c, JG_ERR_DTYPE, "jg_gradcheck: output (node %%%d) is i32", out->id);
    for (int i = 0; i < c->n; i++) {
        jg_node *w = c->wrt[i];
        if (!w || w->graph != g || node_poisoned(w))
            return fail(c, JG_ERR_ARG,
                        "jg_gradcheck: wrt %d is NULL, poisoned or from another graph", i);
        if (w->op != JG_OP_INPUT && w->op != JG_OP_PARAM)
            return fail(c, JG_ERR_ARG,
                        "jg_gradcheck: wrt %d is a node of op %s; only inputs and parameters can be "
                        "perturbed", i, graph_op_name(w->op));
        if (w->dtype == JG_I32)
            return fail(c, JG_ERR_DTYPE, "jg_gradcheck: wrt %d ('%s') is i32", i, w->name);
        /* Perturbing one node twice would double-count it in every direction. */
        for (int j = 0; j < i; j++)
            if (c->wrt[j] == w)
                return fail(c, JG_ERR_ARG, "jg_gradcheck: wrt %d and %d are the same node "
                            "('%s')", j, i, w->name);
    }
    if (c->o.n_inputs < 0)
        return fail(c, JG_ERR_ARG, "jg_gradcheck: opts.n_inputs is %d (negative)",
                    c->o.n_inputs);
    if (c->o.n_inputs > 0 && !c->o.inputs)
        return fail(c, JG_ERR_ARG, "jg_gradcheck: opts.n_inputs is %d but opts.inputs is NULL",
                    c->o.n_inputs);
    /* A wrt input's binding is read directly as the starting point, so its size must be
     * exact here (other bindings are checked by jg_program_set). */
    for (int b = 0; b < c->o.n_inputs; b++) {
        const jg_binding *in = &c->o.inputs[b];
        for (int i = 0; in->name && i < c->n; i++) {
            jg_node *w = c->wrt[i];
            if (w->op != JG_OP_INPUT || strcmp(in->name, w->name) != 0)
                continue;
            size_t want = (size_t)jg_shape_numel(w->shape) * jg_dtype_size(w->dtype);
            if (in->bytes != want || !in->data)
                return fail(c, JG_ERR_ARG, "jg_gradcheck: opts.inputs[%d] for wrt input '%s' "
                            "holds %zu bytes%s, the input needs %zu", b, w->name, in->bytes,
                            in->data ? "" : " at NULL", want);
        }
    }
    return JG_OK;
}

/* Builds f, its gradients and the two programs. */
static jg_status build(check *c)
{
    jg_graph *g = c->g;
    jg_node *out = c->f;
    if (out->shape.ndim > 0) {
        int64_t numel = jg_shape_numel(out->shape);
        double *r = malloc((size_t)numel * sizeof *r);
        if (!r)
            return fail(c, JG_ERR_NOMEM, "jg_gradcheck: out of memory");
        for (int64_t i = 0; i < numel; i++)
            r[i] = rng_normal(check_seed(c) ^ 0x12345, (uint64_t)i);
        jg_node *proj = jg_const(g, JG_F64, out->shape, r);
        free(r);
        c->f = jg_sum(jg_mul(out, jg_cast(proj, out->dtype)), JG_ALL_AXES, false);
    }
    if (jg_grad(g, c->f, c->wrt, c->n, c->grads) != JG_OK)
        return g->status;
    jg_node **outs = malloc(((size_t)c->n + 1) * sizeof *outs);
    if (!outs)
        return fail(c, JG_ERR_NOMEM, "jg_gradcheck: out of memory");
    int k = 0;
    outs[k++] = c->f;
    for (int i = 0; i < c->n; i++)
        if (c->grads[i])
            outs[k++] = c->grads[i];
    jg_opts exact = { .exact = true, .executor = JG_EXEC_REFERENCE,
                      .mode = c->o.train ? JG_MODE_TRAIN : JG_MODE_EVAL };
    c->full = program_compile(g, outs, k, &exact, false);
    c->value = program_compile(g, &c->f, 1, &exact, false);
    free(outs);
    return c->full && c->value ? JG_OK : g->status;
}

/* The starting point: parameter values from the store, input values from opts or N(0, 1). */
static jg_status init_point(check *c)
{
    for (int i = 0; i < c->n; i++) {
        jg_node *w = c->wrt[i];
        c->numel[i] = jg_shape_numel(w->shape);
        if (!(c->x[i] = malloc((size_t)c->numel[i] * sizeof(double))))
            return fail(c, JG_ERR_NOMEM, "jg_gradcheck: out of memory");
        const void *src = NULL;
        if (w->op == JG_OP_PARAM)
            src = c->g->params[w->param].data;
        for (int b = 0; b < c->o.n_inputs && w->op == JG_OP_INPUT; b++)
            if (c->o.inputs[b].name && strcmp(c->o.inputs[b].name, w->name) == 0)
                src = c->o.inputs[b].data;
        for (int64_t e = 0; e < c->numel[i]; e++)
            c->x[i][e] = !src ? rng_normal(check_seed(c) ^ rng_hash_str(w->name), (uint64_t)e)
                         : w->dtype == JG_F64 ? ((const double *)src)[e]
                                              : (double)((const float *)src)[e];
        program_override(c->full, w, c->x[i]);
        program_override(c->value, w, c->x[i]);
    }
    /* Other inputs are bound as given; unbound float inputs get N(0, 1) values. */
    for (int b = 0; b < c->o.n_inputs; b++) {
        const jg_binding *in = &c->o.inputs[b];
        if (jg_program_set(c->full, in->name, in->data, in->bytes) != JG_OK ||
            jg_program_set(c->value, in->name, in->data, in->bytes) != JG_OK)
            return fail(c, JG_ERR_ARG, "jg_gradcheck: %s",
                        c->full->status ? c->full->errmsg : c->value->errmsg);
    }
    for (int k = 0; k < c->full->plan.n_inputs; k++) {
        program_input *in = &c->full->plan.inputs[k];
        if (in->set || (c->full->plan.override && c->full->plan.override[c->full->plan.slot[in->node->id]]))
            continue;
        if (in->node->dtype == JG_I32)
            return fail(c, JG_ERR_ARG,
                        "jg_gradcheck: input '%s' is i32 and needs a value in opts.inputs",
                        in->node->name);
        int64_t numel = jg_shape_numel(in->node->shape);
        for (int64_t e = 0; e < numel; e++) {
            double v = rng_normal(check_seed(c) ^ rng_hash_str(in->node->name), (uint64_t)e);
            if (in->node->dtype == JG_F64)
                ((double *)in->data)[e] = v;
            else
                ((float *)in->data)[e] = (float)v;
        }
        jg_program_set(c->full, in->node->name, in->data, in->bytes);
        jg_program_set(c->value, in->node->name, in->data, in->bytes);
    }
    return JG_OK;
}

static jg_status run(check *c, jg_program *p)
{
    if (jg_program_run(p) == JG_OK)
        return JG_OK;
    return fail(c, p->status, "jg_gradcheck: %s", p->errmsg);
}

static double value_of(const jg_program *p, const jg_node *n, int64_t i)
{
    return p->plan.values[p->plan.slot[n->id]][i];
}

/* The smallest kink distance over the ops f depends on; names the closest op. */
static double kink_distance(check *c, const char **op_name)
{
    const jg_program *p = c->full;
    double best = INFINITY;
    const double *stack_in[8];
    for (int s = 0; s < p->plan.n_sched; s++) {
        const jg_node *v = p->plan.sched[s];
        const op_def *def = op_get(v->op);
        if (!def->kink || v->id > c->f->id || v->n_in > 8)
            continue;
        for (int k = 0; k < v->n_in; k++)
            stack_in[k] = p->plan.values[p->plan.slot[v->in[k]->id]];
        double d = def->kink(v, stack_in, p->plan.values[s]);
        if (d < best) {
            best = d;
            *op_name = graph_op_name(v->op);
        }
    }
    return best;
}

/* Runs at the current point, moving it (a random nudge of every wrt value) while some op
 * sits within the margin of a kink. */
static jg_status settle(check *c)
{
    int max_moves = c->o.max_moves ? c->o.max_moves : 20;
    double margin = 100 * c->o.eps;
    for (int move = 0;; move++) {
        jg_status st = run(c, c->full);
        if (st != JG_OK)
            return st;
        const char *op = NULL;
        if (kink_distance(c, &op) >= margin)
            return JG_OK;
        if (move == max_moves) {
            c->kink_node = op;
            return JG_OK;
        }
        c->r->moves++;
        uint64_t key = rng_u64(check_seed(c), 1000 + (uint64_t)move);
        for (int i = 0; i < c->n; i++)
            for (int64_t e = 0; e < c->numel[i]; e++)
                c->x[i][e] += 1e-2 * (1 + fabs(c->x[i][e])) *
                              rng_normal(key ^ (uint64_t)i, (uint64_t)e);
    }
}

static void compare(check *c, double analytic, double numeric, int wrt, int64_t index)
{
    double err = fabs(analytic - numeric);
    double tol = c->o.atol + c->o.rtol * fmax(fabs(analytic), fabs(numeric));
    double ratio = err / tol;
    jg_gradcheck_report *r = c->r;
    r->n_checked++;
    if (!(ratio <= 1))
        r->n_failed++;
    r->max_abs_err = fmax(r->max_abs_err, err);
    r->max_rel_err = fmax(r->max_rel_err, err / fmax(fmax(fabs(analytic), fabs(numeric)), 1e-300));
    if (r->n_checked == 1 || ratio > c->worst_ratio || isnan(ratio)) {
        c->worst_ratio = isnan(ratio) ? INFINITY : ratio;
        r->worst_wrt = wrt;
        r->worst_index = index;
        r->analytic = analytic;
        r->numeric = numeric;
    }
}

static double analytic_at(const check *c, int i, int64_t e)
{
    return c->grads[i] ? value_of(c->full, c->grads[i], e) : 0.0;
}

static jg_status check_elements(check *c)
{
    double h = c->o.eps;
    for (int i = 0; i < c->n; i++)
        for (int64_t e = 0; e < c->numel[i]; e++) {
            double analytic = analytic_at(c, i, e), x0 = c->x[i][e], fp, fm;
            c->x[i][e] = x0 + h;
            jg_status st = run(c, c->value);
            fp = value_of(c->value, c->f, 0);
            c->x[i][e] = x0 - h;
            if (st == JG_OK)
                st = run(c, c->value);
            fm = value_of(c->value, c->f, 0);
            c->x[i][e] = x0;
            if (st != JG_OK)
                return st;
            compare(c, analytic, (fp - fm) / (2 * h), i, e);
        }
    return JG_OK;
}

static jg_status check_directions(check *c)
{
    int dirs = c->o.n_directions ? c->o.n_directions : 8;
    double h = c->o.eps;
    for (int d = 0; d < dirs; d++) {
        uint64_t key = rng_u64(check_seed(c) ^ 0xd1, (uint64_t)d);
        /* A unit direction through all wrt values at once. */
        double norm = 0, analytic = 0;
        for (int i = 0; i < c->n; i++)
            for (int64_t e = 0; e < c->numel[i]; e++) {
                double v = rng_normal(key ^ (uint64_t)i, (uint64_t)e);
                norm += v * v;
            }
        norm = sqrt(norm);
        double fpm[2];
        for (int side = 0; side < 2; side++) {
            double s = side == 0 ? h : -2 * h; /* to x + h v, then to x - h v */
            for (int i = 0; i < c->n; i++)
                for (int64_t e = 0; e < c->numel[i]; e++)
                    c->x[i][e] += s * rng_normal(key ^ (uint64_t)i, (uint64_t)e) / norm;
            jg_status st = run(c, c->value);
            if (st != JG_OK)
                return st;
            fpm[side] = value_of(c->value, c->f, 0);
        }
        for (int i = 0; i < c->n; i++)
            for (int64_t e = 0; e < c->numel[i]; e++) {
                double v = rng_normal(key ^ (uint64_t)i, (uint64_t)e) / norm;
                c->x[i][e] += h * v; /* back to x */
                analytic += analytic_at(c, i, e) * v;
            }
        compare(c, analytic, (fpm[0] - fpm[1]) / (2 * h), -1, d);
    }
    return JG_OK;
}

static void summarise(check *c, jg_node *output)
{
    jg_gradcheck_report *r = c->r;
    r->passed = r->n_failed == 0 && r->n_checked > 0;
    const char *unit = c->o.mode == JG_CHECK_DIRECTIONS ? "directions" : "elements";
    char where[160] = "";
    if (r->worst_wrt >= 0) {
        jg_node *w = c->wrt[r->worst_wrt];
        snprintf(where, sizeof where, " at wrt %d (%s '%s', node %%%d) element %lld",
                 r->worst_wrt, graph_op_name(w->op), w->name, w->id, (long long)r->worst_index);
    } else {
        snprintf(where, sizeof where, " in direction %lld", (long long)r->worst_index);
    }
    int n = snprintf(r->message, sizeof r->message,
                     "gradcheck %s: %d of %d %s failed; d(%s node %%%d)/d(wrt): worst%s: "
                     "analytic %.10g, numeric %.10g (abs err %.3g, rel err %.3g)",
                     r->passed ? "passed" : "FAILED", r->n_failed, r->n_checked, unit,
                     graph_op_name(output->op), output->id, where, r->analytic, r->numeric,
                     fabs(r->analytic - r->numeric),
                     fabs(r->analytic - r->numeric) /
                         fmax(fmax(fabs(r->analytic), fabs(r->numeric)), 1e-300));
    if (r->moves && n > 0 && (size_t)n < sizeof r->message)
        n += snprintf(r->message + n, sizeof r->message - (size_t)n,
                      "; point moved %d times away from kinks", r->moves);
    if (c->kink_node && n > 0 && (size_t)n < sizeof r->message)
        snprintf(r->message + n, sizeof r->message - (size_t)n,
                 "; still near a kink of %s (its derivative is one-sided there)", c->kink_node);
}

jg_status jg_gradcheck(jg_graph *g, jg_node *output, jg_node *const *wrt, int n,
                       const jg_gradcheck_opts *opts, jg_gradcheck_report *report)
{
    jg_gradcheck_report local;
    jg_gradcheck_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    r->worst_wrt = -1;
    if (!g) {
        snprintf(r->message, sizeof r->message, "jg_gradcheck: graph is NULL");
        return JG_ERR_ARG;
    }
    if (g->status != JG_OK) {
        snprintf(r->message, sizeof r->message, "%s", g->errmsg);
        return g->status;
    }
    check c = { .g = g, .wrt = wrt, .n = n, .f = output, .r = r };
    c.o = opts ? *opts : (jg_gradcheck_opts){ 0 };
    c.o.eps = c.o.eps > 0 ? c.o.eps : 1e-6;
    c.o.rtol = c.o.rtol > 0 ? c.o.rtol : 1e-6;
    c.o.atol = c.o.atol > 0 ? c.o.atol : 1e-8;
    jg_status st = validate(&c);
    if (st == JG_OK) {
        c.grads = calloc((size_t)n, sizeof *c.grads);
        c.x = calloc((size_t)n, sizeof *c.x);
        c.numel = calloc((size_t)n, sizeof *c.numel);
        st = c.grads && c.x && c.numel ? build(&c)
                                       : fail(&c, JG_ERR_NOMEM, "jg_gradcheck: out of memory");
    }
    if (st == JG_OK)
        st = init_point(&c);
    if (st == JG_OK)
        st = settle(&c);
    if (st == JG_OK)
        st = c.o.mode == JG_CHECK_DIRECTIONS ? check_directions(&c) : check_elements(&c);
    if (st == JG_OK) {
        summarise(&c, output);
        st = r->passed ? JG_OK : JG_ERR_GRAD;
    } else {
        snprintf(r->message, sizeof r->message, "%s", g->errmsg);
    }
    jg_program_free(c.full);
    jg_program_free(c.value);
    for (int i = 0; c.x && i < n; i++)
        free(c.x[i]);
    free(c.x);
    free(c.numel);
    free(c.grads);
    return st;
}
