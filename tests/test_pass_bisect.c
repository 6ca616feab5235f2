/* Pass bisection: on healthy graphs (values and gradients, evaluation and training) it blames
 * nobody; through its search, with a faulty pass of the test's own put into a real pipeline
 * (compiled programs, one value corrupted whenever that pass is on), it names that pass and
 * the element; it blames "codegen" when even every pass off disagrees, and a pass whose
 * configuration fails to compile or run; tolerances, NaN and infinities; bad arguments. */
#include "support/support.h"
#include "train/bisect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(pass_bisect);

enum { N = 4, D = 3, H = 5 };

static float xs[N * D];
static int32_t ys[N];

static void fill_data(void)
{
    for (int i = 0; i < N * D; i++)
        xs[i] = (float)sin(1.3 * i + 0.2);
    for (int i = 0; i < N; i++)
        ys[i] = i % 2;
}

/* A classifier's loss and its gradients: outputs[0] the loss, then d/dw1, d/db1, d/dw2. */
typedef struct model {
    jg_graph *g;
    jg_node *out[4];
    jg_binding in[2];
} model;

static model model_new(bool dropout)
{
    fill_data();
    model m = { .g = jg_graph_new() };
    jg_graph *g = m.g;
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(N, D));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(N));
    jg_node *w1 = jg_param(g, "w1", jg_shape(D, H), jg_seeded(jg_he_normal(), 1));
    jg_node *b1 = jg_param(g, "b1", jg_shape(H), jg_seeded(jg_uniform(-0.1, 0.1), 2));
    jg_node *w2 = jg_param(g, "w2", jg_shape(H, 2), jg_seeded(jg_he_normal(), 3));
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w1), b1));
    if (dropout)
        h = jg_dropout(h, 0.3);
    m.out[0] = jg_cross_entropy(jg_matmul(h, w2), y);
    cr_assert_eq(jg_grad(g, m.out[0], (jg_node *[]){ w1, b1, w2 }, 3, m.out + 1), JG_OK, "%s",
                 jg_errmsg(g));
    m.in[0] = (jg_binding){ "x", xs, sizeof xs };
    m.in[1] = (jg_binding){ "y", ys, sizeof ys };
    return m;
}

static int n_passes(void)
{
    int n = 0;
    while (jg_pass_name(n))
        n++;
    return n;
}

/* ---- healthy graphs: nobody to blame */

Test(pass_bisect, healthy_values_and_gradients_blame_nobody)
{
    model m = model_new(false);
    jg_bisect_report r;
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, NULL, m.in, 2, 0, 0, &r), JG_OK, "%s",
                 r.message);
    cr_assert_str_eq(r.culprit, "none", "%s", r.message);
    cr_assert_eq(r.configs, n_passes() + 1); /* every pass off, then one more at a time */
    cr_assert(strncmp(r.message, "none: ", 6) == 0, "%s", r.message);
    cr_assert(r.worst_output >= 0 && r.worst_output < 4);
    cr_assert(isnan(r.before));
    cr_assert_eq(jg_graph_status(m.g), JG_OK);
    jg_graph_free(m.g);
}

Test(pass_bisect, training_mode_with_dropout_blames_nobody)
{
    /* both executors draw the same masks for a program's first run */
    model m = model_new(true);
    jg_bisect_report r;
    jg_opts o = { .mode = JG_MODE_TRAIN };
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, &o, m.in, 2, 0, 0, &r), JG_OK, "%s",
                 r.message);
    cr_assert_str_eq(r.culprit, "none", "%s", r.message);
    jg_graph_free(m.g);
}

Test(pass_bisect, passes_the_caller_switched_off_stay_off)
{
    model m = model_new(false);
    jg_bisect_report r;
    jg_opts o = { .passes_off = "cse,inplace", .no_fusion = true };
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, &o, m.in, 2, 0, 0, &r), JG_OK, "%s",
                 r.message);
    cr_assert_str_eq(r.culprit, "none", "%s", r.message);
    cr_assert_eq(r.configs, n_passes() - 3 + 1); /* cse, inplace and fuse never switched on */
    jg_graph_free(m.g);
}

/* ---- the search, with a faulty pass of our own among real ones */

typedef struct rig {
    model *m;
    const char *faulty;   /* this pass corrupts a value when on ... */
    int out, index;       /* ... this one */
    bool always_wrong;    /* codegen is broken */
    const char *fails;    /* this pass makes the run fail when on */
    int calls;
    char seen[8][128];    /* the passes_off of each call */
} rig;

/* passes_off without our own names, which the real compiler does not know */
static void real_off(const char *off, char *buf, size_t size)
{
    buf[0] = '\0';
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s", off);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, "evil") != 0 && strcmp(t, "flaky") != 0)
            snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", *buf ? "," : "", t);
}

static jg_status compile_and_run(void *ctx, const char *passes_off, double *const *values,
                                 char *err, size_t size)
{
    rig *r = ctx;
    if (r->calls < 8)
        snprintf(r->seen[r->calls], sizeof r->seen[0], "%s", passes_off);
    r->calls++;
    if (r->fails && strstr(passes_off, r->fails) == NULL) {
        snprintf(err, size, "boom from %s", r->fails);
        return JG_ERR_STATE;
    }
    char off[256];
    real_off(passes_off, off, sizeof off);
    jg_program *p = jg_compile(r->m->g, r->m->out, 4, &(jg_opts){ .passes_off = off });
    cr_assert(p, "%s", jg_errmsg(r->m->g));
    for (int i = 0; i < 2; i++)
        jg_program_set(p, r->m->in[i].name, r->m->in[i].data, r->m->in[i].bytes);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    for (int i = 0; i < 4; i++) {
        int64_t n = jg_shape_numel(jg_program_output_shape(p, i));
        float f[64];
        cr_assert(n <= 64);
        jg_program_get(p, i, f, (size_t)n * sizeof *f);
        for (int64_t e = 0; e < n; e++)
            values[i][e] = f[e];
    }
    jg_program_free(p);
    bool faulty_on = r->faulty && strstr(passes_off, r->faulty) == NULL;
    if (faulty_on || r->always_wrong)
        values[r->out][r->index] += 0.5;
    return JG_OK;
}

/* A spec over the model: the truth from the reference executor. */
typedef struct search {
    bisect_spec s;
    int64_t numel[4];
    double *truth[4];
    double rtol[4], atol[4];
} search;

static void search_init(search *x, model *m, rig *r, const char *const *passes, int n)
{
    *x = (search){ .s = { .passes = passes, .n_passes = n, .n_outputs = 4,
                          .run = compile_and_run, .ctx = r } };
    for (int i = 0; i < 4; i++) {
        x->numel[i] = jg_shape_numel(jg_node_shape(m->out[i]));
        x->truth[i] = t_eval_with(m->out[i], m->in, 2);
        x->rtol[i] = 1e-4;
        x->atol[i] = 1e-5;
    }
    x->s.numel = x->numel;
    x->s.truth = (const double *const *)x->truth;
    x->s.rtol = x->rtol;
    x->s.atol = x->atol;
}

static void search_free(search *x)
{
    for (int i = 0; i < 4; i++)
        free(x->truth[i]);
}

static const char *const PIPE[] = { "simplify", "evil", "cse", "fuse", "flaky" };

Test(pass_bisect, names_the_faulty_pass_and_the_element)
{
    model m = model_new(false);
    rig r = { .m = &m, .faulty = "evil", .out = 1, .index = 7 };
    search x;
    search_init(&x, &m, &r, PIPE, 5);
    jg_bisect_report rep;
    cr_assert_eq(bisect_search(&x.s, &rep), JG_OK);
    cr_assert_str_eq(rep.culprit, "evil", "%s", rep.message);
    cr_assert_eq(rep.configs, 3); /* all off; simplify on; simplify and evil on */
    cr_assert_str_eq(r.seen[0], "simplify,evil,cse,fuse,flaky");
    cr_assert_str_eq(r.seen[1], "evil,cse,fuse,flaky");
    cr_assert_str_eq(r.seen[2], "cse,fuse,flaky");
    cr_assert_eq(rep.worst_output, 1);
    cr_assert_eq(rep.worst_index, 7);
    double want = x.truth[1][7];
    cr_assert_float_eq(rep.reference, want, 0);
    cr_assert_float_eq(rep.before, want, 1e-4 + 1e-4 * fabs(want));
    cr_assert_float_eq(rep.value, rep.before + 0.5, 1e-6);
    cr_assert(strstr(rep.message, "evil: switching it on breaks agreement"), "%s", rep.message);
    cr_assert(strstr(rep.message, "output 1 element 7"), "%s", rep.message);
    search_free(&x);
    jg_graph_free(m.g);
}

Test(pass_bisect, a_later_faulty_pass_and_the_callers_switches)
{
    model m = model_new(false);
    rig r = { .m = &m, .faulty = "flaky", .out = 0, .index = 0 };
    search x;
    search_init(&x, &m, &r, PIPE, 5);
    x.s.keep_off = "cse"; /* never switched on: one configuration fewer */
    jg_bisect_report rep;
    cr_assert_eq(bisect_search(&x.s, &rep), JG_OK);
    cr_assert_str_eq(rep.culprit, "flaky", "%s", rep.message);
    cr_assert_eq(rep.configs, 5);
    cr_assert_str_eq(r.seen[0], "cse,simplify,evil,fuse,flaky");
    cr_assert_str_eq(r.seen[4], "cse");
    search_free(&x);
    jg_graph_free(m.g);
}

Test(pass_bisect, codegen_when_every_pass_off_disagrees)
{
    model m = model_new(false);
    rig r = { .m = &m, .always_wrong = true, .out = 3, .index = 2 };
    search x;
    search_init(&x, &m, &r, PIPE, 5);
    jg_bisect_report rep;
    cr_assert_eq(bisect_search(&x.s, &rep), JG_OK);
    cr_assert_str_eq(rep.culprit, "codegen", "%s", rep.message);
    cr_assert_eq(rep.configs, 1);
    cr_assert_eq(rep.worst_output, 3);
    cr_assert_eq(rep.worst_index, 2);
    cr_assert(isnan(rep.before));
    cr_assert(strstr(rep.message, "codegen: with every pass off, output 3 element 2"), "%s",
              rep.message);
    search_free(&x);
    jg_graph_free(m.g);
}

Test(pass_bisect, a_pass_that_makes_the_run_fail_is_the_culprit)
{
    model m = model_new(false);
    rig r = { .m = &m, .fails = "cse" };
    search x;
    search_init(&x, &m, &r, PIPE, 5);
    jg_bisect_report rep;
    cr_assert_eq(bisect_search(&x.s, &rep), JG_OK);
    cr_assert_str_eq(rep.culprit, "cse", "%s", rep.message);
    cr_assert_eq(rep.configs, 4);
    cr_assert(strstr(rep.message, "cse: with it switched on, the program fails: boom from cse"),
              "%s", rep.message);
    cr_assert_eq(rep.worst_output, -1);
    search_free(&x);
    jg_graph_free(m.g);
}

/* ---- agreement: tolerances, NaN, infinities, exact outputs */

typedef struct fixed {
    const double *v;
} fixed;

static jg_status give(void *ctx, const char *off, double *const *values, char *err, size_t size)
{
    (void)off, (void)err, (void)size;
    memcpy(values[0], ((fixed *)ctx)->v, 5 * sizeof(double));
    return JG_OK;
}

static const char *verdict(const double *truth, const double *got, double rtol, double atol)
{
    fixed f = { got };
    const char *const one[] = { "p" };
    int64_t numel = 5;
    bisect_spec s = { .passes = one, .n_passes = 1, .n_outputs = 1, .numel = &numel,
                      .truth = (const double *const[]){ truth }, .rtol = &rtol, .atol = &atol,
                      .run = give, .ctx = &f };
    static jg_bisect_report rep;
    cr_assert_eq(bisect_search(&s, &rep), JG_OK);
    return rep.culprit;
}

Test(pass_bisect, agreement_rules)
{
    double t[5] = { 1, -2, NAN, INFINITY, 0 };
    cr_assert_str_eq(verdict(t, (double[]){ 1, -2, NAN, INFINITY, 0 }, 0, 0), "none");
    cr_assert_str_eq(verdict(t, (double[]){ 1.01, -2, NAN, INFINITY, 0 }, 0.02, 0), "none");
    cr_assert_str_eq(verdict(t, (double[]){ 1.03, -2, NAN, INFINITY, 0 }, 0.02, 0), "codegen");
    cr_assert_str_eq(verdict(t, (double[]){ 1, -2, NAN, INFINITY, 1e-9 }, 0, 1e-8), "none");
    cr_assert_str_eq(verdict(t, (double[]){ 1, -2, NAN, INFINITY, 1e-9 }, 0, 0), "codegen");
    cr_assert_str_eq(verdict(t, (double[]){ 1, -2, 0, INFINITY, 0 }, 1, 1), "codegen");
    cr_assert_str_eq(verdict(t, (double[]){ 1, NAN, NAN, INFINITY, 0 }, 1, 1), "codegen");
    cr_assert_str_eq(verdict(t, (double[]){ 1, -2, NAN, -INFINITY, 0 }, 1, 1), "codegen");
}

/* ---- misuse: reported, never recorded on the graph */

Test(pass_bisect, bad_arguments)
{
    model m = model_new(false);
    jg_graph *other = jg_graph_new();
    jg_node *foreign = jg_param(other, "f", jg_shape(2), jg_zeros());
    jg_bisect_report r;
    cr_assert_eq(jg_bisect_passes(NULL, m.out, 4, NULL, m.in, 2, 0, 0, &r), JG_ERR_ARG);
    cr_assert(strstr(r.message, "graph is NULL"), "%s", r.message);
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, NULL, m.in, 2, 0, 0, NULL), JG_ERR_ARG);
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 0, NULL, m.in, 2, 0, 0, &r), JG_ERR_ARG);
    cr_assert(strstr(r.message, "jg_bisect_passes: no outputs"), "%s", r.message);
    cr_assert_eq(jg_bisect_passes(m.g, &foreign, 1, NULL, m.in, 2, 0, 0, &r), JG_ERR_ARG);
    cr_assert(strstr(r.message, "another graph"), "%s", r.message);
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, NULL, NULL, 2, 0, 0, &r), JG_ERR_ARG);
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, NULL, m.in, 2, -1, 0, &r), JG_ERR_ARG);
    cr_assert_eq(jg_bisect_passes(m.g, m.out, 4, NULL, m.in, 2, 0, NAN, &r), JG_ERR_ARG);
    cr_assert(strstr(r.message, "rtol and atol must be >= 0"), "%s", r.message);
    cr_assert(strstr(jg_errmsg(m.g), "rtol and atol"), "%s", jg_errmsg(m.g));
    cr_assert_eq(jg_graph_status(m.g), JG_OK);
    jg_graph_free(other);
    jg_graph_free(m.g);
}

Test(pass_bisect, an_unbound_input_stops_at_the_reference)
{
    model m = model_new(false);
    jg_bisect_report r;
    jg_status st = jg_bisect_passes(m.g, m.out, 4, NULL, m.in, 1, 0, 0, &r); /* no "y" */
    cr_assert_neq(st, JG_OK);
    cr_assert(strstr(r.message, "the reference executor could not run"), "%s", r.message);
    cr_assert_eq(r.configs, 0);
    cr_assert_eq(jg_graph_status(m.g), JG_OK);
    jg_graph_free(m.g);
}
