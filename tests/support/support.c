/* Shared test helpers; see support.h. */
#include "support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double *t_eval_with(jg_node *out, const jg_binding *inputs, int n_inputs)
{
    jg_graph *g = jg_node_graph(out);
    cr_assert(g, "t_eval: node has no graph");
    jg_program *p = jg_compile(g, &out, 1, &(jg_opts){ .exact = true });
    cr_assert(p, "t_eval: compile failed: %s", jg_errmsg(g));
    for (int i = 0; i < n_inputs; i++)
        cr_assert_eq(jg_program_set(p, inputs[i].name, inputs[i].data, inputs[i].bytes), JG_OK,
                     "t_eval: %s", jg_errmsg(p));
    cr_assert_eq(jg_program_run(p), JG_OK, "t_eval: run failed: %s", jg_errmsg(p));
    jg_shape s = jg_node_shape(out);
    int64_t n = jg_shape_numel(s);
    double *v = malloc((size_t)n * sizeof *v);
    jg_dtype t = jg_node_dtype(out);
    void *raw = malloc((size_t)n * jg_dtype_size(t));
    cr_assert(v && raw);
    cr_assert_eq(jg_program_get(p, 0, raw, (size_t)n * jg_dtype_size(t)), JG_OK, "%s",
                 jg_errmsg(p));
    for (int64_t i = 0; i < n; i++)
        v[i] = t == JG_F64 ? ((double *)raw)[i]
               : t == JG_F32 ? (double)((float *)raw)[i]
                             : (double)((int32_t *)raw)[i];
    free(raw);
    jg_program_free(p);
    return v;
}

double *t_eval(jg_node *out) { return t_eval_with(out, NULL, 0); }

void t_assert_close(const double *got, const double *want, int64_t n, double tol)
{
    for (int64_t i = 0; i < n; i++) {
        double scale = fabs(want[i]) > 1 ? fabs(want[i]) : 1;
        bool ok = fabs(got[i] - want[i]) <= tol * scale ||
                  (isinf(want[i]) && got[i] == want[i]) || (isnan(want[i]) && isnan(got[i]));
        cr_assert(ok, "element %lld: got %.17g, want %.17g", (long long)i, got[i], want[i]);
    }
}

static double *randn_values(jg_shape s, uint64_t seed)
{
    int64_t n = jg_shape_numel(s);
    double *v = malloc((size_t)n * sizeof *v);
    cr_assert(v);
    uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (int64_t i = 0; i < n; i++) {
        /* Box-Muller over an xorshift stream: enough for test data */
        double u[2];
        for (int k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            u[k] = ((double)(x >> 11) + 0.5) * 0x1.0p-53;
        }
        v[i] = sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]);
    }
    return v;
}

jg_node *t_randn(jg_graph *g, jg_shape s, uint64_t seed)
{
    double *v = randn_values(s, seed);
    jg_node *n = jg_const(g, JG_F64, s, v);
    free(v);
    return n;
}

jg_node *t_param(jg_graph *g, const char *name, jg_shape s, uint64_t seed)
{
    return jg_param_as(g, name, JG_F64, s, jg_seeded(jg_normal(0, 1), seed));
}

jg_node *t_const(jg_graph *g, jg_shape s, const double *values)
{
    return jg_const(g, JG_F64, s, values);
}

void t_gradcheck_opts(jg_graph *g, jg_node *output, jg_node *const *wrt, int n,
                      const jg_gradcheck_opts *opts)
{
    jg_gradcheck_report r;
    jg_status st = jg_gradcheck(g, output, wrt, n, opts, &r);
    cr_assert_neq(st, JG_ERR_GRAD, "gradcheck failed: %s", r.message);
    cr_assert_eq(st, JG_OK, "gradcheck could not run: %s", jg_errmsg(g));
    cr_assert(r.passed && r.n_checked > 0, "gradcheck: %s", r.message);
}

void t_gradcheck(jg_graph *g, jg_node *output, jg_node *const *wrt, int n)
{
    t_gradcheck_opts(g, output, wrt, n, NULL);
}

void t_assert_error(jg_graph *g, jg_status st, const char *part)
{
    cr_assert_eq(jg_graph_status(g), st, "status %s (want %s), message: %s",
                 jg_status_str(jg_graph_status(g)), jg_status_str(st), jg_errmsg(g));
    cr_assert(strstr(jg_errmsg(g), part), "message '%s' lacks '%s'", jg_errmsg(g), part);
}

void t_assert_shape(jg_node *n, jg_shape want)
{
    jg_shape s = jg_node_shape(n);
    cr_assert(jg_node_ok(n), "node is poisoned: %s", jg_errmsg(jg_node_graph(n)));
    cr_assert_eq(s.ndim, want.ndim, "ndim %d, want %d", s.ndim, want.ndim);
    for (int d = 0; d < s.ndim; d++)
        cr_assert_eq(s.dim[d], want.dim[d], "dim %d is %lld, want %lld", d, (long long)s.dim[d],
                     (long long)want.dim[d]);
}

void t_expect(jg_node *n, jg_shape shape, const double *want)
{
    t_assert_shape(n, shape);
    double *got = t_eval(n);
    t_assert_close(got, want, jg_shape_numel(shape), 1e-12);
    free(got);
}

jg_node *t_iota(jg_graph *g, jg_shape s)
{
    int64_t n = jg_shape_numel(s);
    double *v = malloc((size_t)n * sizeof *v);
    cr_assert(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)i;
    jg_node *c = t_const(g, s, v);
    free(v);
    return c;
}

jg_program *t_mlp_step(jg_graph *g, const jg_opts *opts)
{
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(16, 20));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(16));
    jg_node *w1 = jg_param(g, "w1", jg_shape(20, 32), jg_he_normal());
    jg_node *b1 = jg_param(g, "b1", jg_shape(32), jg_zeros());
    jg_node *w2 = jg_param(g, "w2", jg_shape(32, 5), jg_xavier_uniform());
    jg_node *loss = jg_cross_entropy(jg_matmul(jg_relu(jg_add(jg_matmul(x, w1), b1)), w2), y);
    jg_node *wrt[3] = { w1, b1, w2 }, *d[3];
    cr_assert_eq(jg_grad(g, loss, wrt, 3, d), JG_OK);
    jg_update up[3];
    for (int i = 0; i < 3; i++)
        up[i] = (jg_update){ wrt[i], jg_sub(wrt[i], jg_scale(d[i], 0.1)) };
    jg_opts o = opts ? *opts : (jg_opts){ 0 };
    o.updates = up;
    o.n_updates = 3;
    return jg_compile(g, &loss, 1, &o);
}

void t_mlp_feed(jg_program *p)
{
    float xv[320];
    int32_t yv[16];
    for (int i = 0; i < 320; i++)
        xv[i] = (float)((i * 37 % 101) - 50) / 50.0f;
    for (int i = 0; i < 16; i++)
        yv[i] = i % 5;
    cr_assert_eq(jg_program_set(p, "x", xv, sizeof xv), JG_OK);
    cr_assert_eq(jg_program_set(p, "y", yv, sizeof yv), JG_OK);
}

jg_program_stats t_stats(jg_graph *g, jg_node *const *outs, int n, const jg_opts *opts)
{
    jg_program *p = jg_compile(g, outs, n, opts);
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_stats st;
    cr_assert_eq(jg_program_stats_get(p, &st), JG_OK);
    jg_program_free(p);
    return st;
}
