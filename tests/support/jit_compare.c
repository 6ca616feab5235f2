/* Comparing the JIT with the reference executor; see jit_compare.h. */
#include "jit_compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- inputs and their data */

void ctx_init(tctx *c, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->g = jg_graph_new();
    cr_assert(c->g);
    c->rng = seed * 0x9e3779b97f4a7c15ULL + 0x1234567ULL;
}

void ctx_fini(tctx *c)
{
    for (int i = 0; i < c->n_in; i++)
        free(c->in[i].data);
    jg_graph_free(c->g);
    memset(c, 0, sizeof *c);
}

/* Uniform in [0, 1), from a 64-bit LCG (the top 53 bits). */
double urand(tctx *c)
{
    c->rng = c->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(c->rng >> 11) * 0x1.0p-53;
}

double draw(tctx *c, jg_dtype t, data_kind k, int hi)
{
    double u = urand(c);
    if (t == JG_I32) {
        switch (k) {
        case POS: return 1 + floor(u * 50);
        case TIES: return floor(u * 7) - 3;
        case LABELS: return floor(u * hi);
        default: return floor(u * 101) - 50;
        }
    }
    switch (k) {
    case POS: return 0.25 + 2.75 * u;
    case TIES: return (floor(u * 9) - 4) / 4;
    case UNIT: return u;
    default: return 4 * u - 2;
    }
}

void put(void *p, jg_dtype t, int64_t i, double v)
{
    if (t == JG_F32)
        ((float *)p)[i] = (float)v;
    else if (t == JG_F64)
        ((double *)p)[i] = v;
    else
        ((int32_t *)p)[i] = (int32_t)v;
}

double get(const void *p, jg_dtype t, int64_t i)
{
    return t == JG_F32 ? (double)((const float *)p)[i]
           : t == JG_F64 ? ((const double *)p)[i]
                         : (double)((const int32_t *)p)[i];
}

/* A new input of dtype t and shape s holding deterministic data of kind k (labels < hi). */
jg_node *input_(tctx *c, jg_dtype t, jg_shape s, data_kind k, int hi)
{
    cr_assert(c->n_in < MAX_INPUTS, "too many inputs");
    t_input *in = &c->in[c->n_in];
    snprintf(in->name, sizeof in->name, "in%d", c->n_in);
    in->t = t;
    in->n = jg_shape_numel(s);
    in->bytes = (size_t)in->n * jg_dtype_size(t);
    in->data = malloc(in->bytes ? in->bytes : 1);
    cr_assert(in->data);
    for (int64_t i = 0; i < in->n; i++)
        put(in->data, t, i, draw(c, t, k, hi));
    c->n_in++;
    jg_node *n = jg_input(c->g, in->name, t, s);
    cr_assert(jg_node_ok(n), "jg_input: %s", jg_errmsg(c->g));
    return n;
}

jg_node *input(tctx *c, jg_dtype t, jg_shape s, data_kind k)
{
    return input_(c, t, s, k, 0);
}

/* An input holding the given values (converted to t). */
jg_node *input_values(tctx *c, jg_dtype t, jg_shape s, const double *v)
{
    jg_node *n = input(c, t, s, SIGNED);
    t_input *in = &c->in[c->n_in - 1];
    for (int64_t i = 0; i < in->n; i++)
        put(in->data, t, i, v[i]);
    return n;
}

t_input *input_of(tctx *c, jg_node *n)
{
    for (int i = 0; i < c->n_in; i++)
        if (strcmp(c->in[i].name, jg_node_name(n)) == 0)
            return &c->in[i];
    cr_assert_fail("no data for input %s", jg_node_name(n));
    return NULL;
}

/* ---------------------------------------------------------------- running and comparing */

const char *exec_desc(const jg_opts *o, char *buf, size_t size)
{
    if (o->executor == JG_EXEC_REFERENCE)
        return "reference";
    snprintf(buf, size, "jit threads=%d vector_bits=%d%s", o->num_threads, o->vector_bits,
             o->no_fusion ? " no_fusion" : "");
    return buf;
}

void t_shape_text(jg_shape s, char *buf, size_t size)
{
    int k = snprintf(buf, size, "[");
    for (int d = 0; d < s.ndim && k < (int)size; d++)
        k += snprintf(buf + k, size - (size_t)k, d ? ",%lld" : "%lld", (long long)s.dim[d]);
    if (k < (int)size)
        snprintf(buf + k, size - (size_t)k, "]");
}

void t_index_text(jg_shape s, int64_t flat, char *buf, size_t size)
{
    int64_t ix[JG_MAX_DIMS];
    for (int d = s.ndim - 1; d >= 0; d--) {
        ix[d] = flat % s.dim[d];
        flat /= s.dim[d];
    }
    jg_shape v = { .ndim = s.ndim };
    memcpy(v.dim, ix, sizeof ix);
    t_shape_text(v, buf, size);
}

/* Compiles outs with opts, binds every input of c, runs once and returns each output's bytes
 * (malloc'd; free with free_results). */
void **run(tctx *c, jg_node *const *outs, int n, const jg_opts *o, const char *what)
{
    char desc[96];
    jg_program *p = jg_compile(c->g, outs, n, o);
    cr_assert(p, "%s: jg_compile (%s) failed: %s", what, exec_desc(o, desc, sizeof desc),
              jg_errmsg(c->g));
    if (o->executor == JG_EXEC_JIT) { /* really the JIT, with the settings asked for */
        jg_program_stats stats;
        cr_assert_eq(jg_program_stats_get(p, &stats), JG_OK, "%s: %s", what, jg_errmsg(p));
        cr_assert(stats.kernels > 0, "%s: the JIT program has no kernels", what);
        /* a width above the CPU's is clamped to it; 32 (scalar code) always holds */
        if (o->vector_bits)
            cr_assert(stats.vector_bits <= o->vector_bits &&
                          (o->vector_bits != 32 || stats.vector_bits == 32),
                      "%s: vector_bits %d, asked for %d", what, stats.vector_bits, o->vector_bits);
        if (o->num_threads)
            cr_assert_eq(stats.threads, o->num_threads, "%s: %d threads, asked for %d", what,
                         stats.threads, o->num_threads);
    }
    for (int i = 0; i < c->n_in; i++)
        cr_assert_eq(jg_program_set(p, c->in[i].name, c->in[i].data, c->in[i].bytes), JG_OK,
                     "%s: set %s: %s", what, c->in[i].name, jg_errmsg(p));
    jg_status st = jg_program_run(p);
    cr_assert_eq(st, JG_OK, "%s: run (%s) failed: %s: %s", what,
                 exec_desc(o, desc, sizeof desc), jg_status_str(st), jg_errmsg(p));
    void **r = calloc((size_t)n + 1, sizeof *r);
    cr_assert(r);
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)jg_shape_numel(jg_node_shape(outs[i])) *
                       jg_dtype_size(jg_node_dtype(outs[i]));
        r[i] = malloc(bytes ? bytes : 1);
        cr_assert(r[i]);
        cr_assert_eq(jg_program_get(p, i, r[i], bytes), JG_OK, "%s: get %d: %s", what, i,
                     jg_errmsg(p));
    }
    jg_program_free(p);
    return r;
}

void free_results(void **r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i]);
    free(r);
}

bool close_enough(double got, double want, double t)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return got == want;
    return fabs(got - want) <= t * fmax(1.0, fabs(want));
}

/* Asserts got (from `gdesc`) matches want (from `wdesc`) on every output. */
void compare(jg_node *const *outs, int n, void **got, void **want, tol tl,
                    const char *what, const char *gdesc, const char *wdesc)
{
    for (int i = 0; i < n; i++) {
        jg_dtype t = jg_node_dtype(outs[i]);
        jg_shape s = jg_node_shape(outs[i]);
        int64_t numel = jg_shape_numel(s);
        double limit = t == JG_F32 ? tl.f32 : t == JG_F64 ? tl.f64 : 0;
        for (int64_t e = 0; e < numel; e++) {
            double a = get(got[i], t, e), b = get(want[i], t, e);
            if (close_enough(a, b, limit))
                continue;
            char sh[96], ix[96];
            t_shape_text(s, sh, sizeof sh);
            t_index_text(s, e, ix, sizeof ix);
            cr_assert_fail("%s: output %d (%s %s %s) element %lld %s: %s %.17g, %s %.17g "
                           "(|diff| %.3g, tol %.3g)",
                           what, i, jg_node_op_name(outs[i]), jg_dtype_str(t), sh,
                           (long long)e, ix, gdesc, a, wdesc, b, fabs(a - b), limit);
        }
    }
}

/* The JIT with opts `jo` against the reference on outs[0..n). */
void check_opts(tctx *c, jg_node *const *outs, int n, tol tl, jg_opts jo,
                       const char *what)
{
    for (int i = 0; i < n; i++)
        cr_assert(jg_node_ok(outs[i]), "%s: output %d is poisoned: %s", what, i,
                  jg_errmsg(c->g));
    cr_assert_eq(jg_graph_status(c->g), JG_OK, "%s: %s", what, jg_errmsg(c->g));
    jo.executor = JG_EXEC_JIT;
    char desc[96];
    exec_desc(&jo, desc, sizeof desc);
    void **ref = run(c, outs, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, what);
    void **jit = run(c, outs, n, &jo, what);
    compare(outs, n, jit, ref, tl, what, desc, "reference");
    free_results(ref, n);
    free_results(jit, n);
}

void check(tctx *c, jg_node *const *outs, int n, tol tl, const char *what)
{
    check_opts(c, outs, n, tl, (jg_opts){ .executor = JG_EXEC_JIT }, what);
}

void push(olist *l, jg_node *n)
{
    cr_assert(l->n < (int)(sizeof l->o / sizeof *l->o), "output list full");
    l->o[l->n++] = n;
}

