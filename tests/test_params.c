/* The parameter store and the initialisers: values by name, sharing between programs,
 * statistics of each initialiser, reproducibility from seeds. */
#include "support/support.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdlib.h>

TestSuite(params);

static void stats(jg_graph *g, const char *name, int n, double *mean, double *sd, double *lo,
                  double *hi)
{
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert_eq(jg_param_get(g, name, v, (size_t)n * sizeof *v), JG_OK, "%s", jg_errmsg(g));
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        s += v[i], s2 += (double)v[i] * v[i];
        *lo = fmin(*lo, v[i]), *hi = fmax(*hi, v[i]);
    }
    *mean = s / n;
    *sd = sqrt(s2 / n - *mean * *mean);
    free(v);
}

Test(params, initialisers_have_the_documented_statistics)
{
    jg_graph *g = jg_graph_new();
    jg_param(g, "he_n", jg_shape(784, 256), jg_he_normal());
    jg_param(g, "he_u", jg_shape(784, 256), jg_he_uniform());
    jg_param(g, "xa_n", jg_shape(784, 256), jg_xavier_normal());
    jg_param(g, "xa_u", jg_shape(784, 256), jg_xavier_uniform());
    jg_param(g, "norm", jg_shape(100, 100), jg_normal(2, 3));
    jg_param(g, "unif", jg_shape(100, 100), jg_uniform(-1, 5));
    jg_param(g, "conv", jg_shape(32, 16, 3, 3), jg_he_normal()); /* fan_in 16*9 */
    int n = 784 * 256;
    double m, sd, lo, hi;
    stats(g, "he_n", n, &m, &sd, &lo, &hi);
    cr_assert(fabs(m) < 0.002 && fabs(sd / sqrt(2.0 / 784) - 1) < 0.02, "he_normal %g %g", m, sd);
    stats(g, "he_u", n, &m, &sd, &lo, &hi);
    double l = sqrt(6.0 / 784);
    cr_assert(lo >= -l && hi <= l && hi > 0.99 * l && fabs(sd / (l / sqrt(3)) - 1) < 0.02);
    stats(g, "xa_n", n, &m, &sd, &lo, &hi);
    cr_assert(fabs(sd / sqrt(2.0 / (784 + 256)) - 1) < 0.02, "xavier_normal sd %g", sd);
    stats(g, "xa_u", n, &m, &sd, &lo, &hi);
    l = sqrt(6.0 / (784 + 256));
    cr_assert(lo >= -l && hi <= l && hi > 0.99 * l);
    stats(g, "norm", 10000, &m, &sd, &lo, &hi);
    cr_assert(fabs(m - 2) < 0.1 && fabs(sd - 3) < 0.1, "normal(2,3): %g %g", m, sd);
    stats(g, "unif", 10000, &m, &sd, &lo, &hi);
    cr_assert(lo >= -1 && hi < 5 && fabs(m - 2) < 0.1);
    stats(g, "conv", 32 * 16 * 9, &m, &sd, &lo, &hi);
    cr_assert(fabs(sd / sqrt(2.0 / (16 * 9)) - 1) < 0.05, "conv he sd %g", sd);
    jg_graph_free(g);
}

Test(params, zeros_and_constant)
{
    jg_graph *g = jg_graph_new();
    jg_param(g, "z", jg_shape(3), jg_zeros());
    jg_param(g, "c", jg_shape(3), jg_constant(0.25));
    float z[3], c[3];
    jg_param_get(g, "z", z, sizeof z);
    jg_param_get(g, "c", c, sizeof c);
    for (int i = 0; i < 3; i++)
        cr_assert(z[i] == 0 && c[i] == 0.25f);
    jg_graph_free(g);
}

Test(params, seeds_make_values_reproducible_and_names_make_them_differ)
{
    float a[8], b[8], c[8], d[8];
    for (int run = 0; run < 2; run++) {
        jg_graph *g = jg_graph_new();
        jg_param(g, "a", jg_shape(8), jg_normal(0, 1));
        jg_param(g, "b", jg_shape(8), jg_normal(0, 1));
        jg_param(g, "c", jg_shape(8), jg_seeded(jg_normal(0, 1), 77));
        jg_param_get(g, "a", run ? c : a, sizeof a);
        jg_param_get(g, "b", run ? d : b, sizeof b);
        jg_graph_free(g);
    }
    cr_assert(memcmp(a, c, sizeof a) == 0, "same graph seed and name: same values");
    cr_assert(memcmp(a, b, sizeof a) != 0, "different names: different values");
    jg_graph *g1 = jg_graph_new(), *g2 = jg_graph_new();
    jg_graph_set_seed(g2, 99);
    jg_param(g1, "w", jg_shape(8), jg_normal(0, 1));
    jg_param(g2, "w", jg_shape(8), jg_normal(0, 1));
    jg_param_get(g1, "w", a, sizeof a);
    jg_param_get(g2, "w", b, sizeof b);
    cr_assert(memcmp(a, b, sizeof a) != 0, "different graph seeds: different values");
    jg_graph_free(g1);
    jg_graph_free(g2);
}

Test(params, store_is_shared_by_programs_and_outlives_them)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(2), jg_constant(1));
    jg_node *doubled = jg_scale(w, 2);
    jg_update up = { w, jg_shift(w, 1) };
    jg_program *inc = jg_compile(g, &w, 1, &(jg_opts){ .updates = &up, .n_updates = 1 });
    jg_program *read = jg_compile(g, &doubled, 1, NULL);
    cr_assert(inc && read, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(inc), JG_OK);
    cr_assert_eq(jg_program_run(inc), JG_OK);
    float out[2];
    jg_program_get(inc, 0, out, sizeof out);
    cr_assert(out[0] == 2.0f, "outputs are computed before the update is applied");
    jg_program_run(read);
    jg_program_get(read, 0, out, sizeof out);
    cr_assert(out[0] == 6.0f && out[1] == 6.0f, "the other program sees w = 3: %g", out[0]);
    jg_program_free(inc);
    jg_graph_free(g); /* the program keeps the graph alive */
    cr_assert_eq(jg_program_run(read), JG_OK);
    jg_program_free(read);
}

Test(params, enumerate_find_and_freeze)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param(g, "a", jg_shape(2), jg_zeros());
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(3, 2), jg_zeros());
    cr_assert_eq(jg_param_count(g), 2);
    cr_assert_eq(jg_param_at(g, 0), a);
    cr_assert_eq(jg_param_at(g, 1), b);
    cr_assert_null(jg_param_at(g, 2));
    cr_assert_eq(jg_param_find(g, "b"), b);
    cr_assert_null(jg_param_find(g, "nope"));
    cr_assert_eq(jg_node_dtype(b), JG_F64);
    cr_assert_str_eq(jg_node_name(b), "b");
    cr_assert_eq(jg_param_freeze(a, true), JG_OK);
    cr_assert_eq(jg_param_freeze(jg_scale(a, 2), true), JG_ERR_ARG);
    jg_graph_free(g);
}

/* A jg_param that fails leaves nothing behind: no node, no store entry, the name still free. */
Test(params, failed_param_leaves_no_node)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param(g, "a", jg_shape(2), jg_zeros());
    jg_node *q = jg_param(g, "q", jg_shape(2), ((jg_init){ .kind = (jg_init_kind)99 }));
    cr_assert(!jg_node_ok(q));
    t_assert_error(g, JG_ERR_ARG, "jg_param: 'q': unknown initialiser kind 99");
    cr_assert_eq(jg_graph_node_count(g), 1, "a node was left behind");
    cr_assert_eq(jg_param_count(g), 1);
    cr_assert_null(jg_param_find(g, "q"));
    jg_graph_clear_error(g);
    q = jg_param(g, "q", jg_shape(2), jg_constant(3));
    cr_assert(jg_node_ok(q), "the name is still free: %s", jg_errmsg(g));
    cr_assert_eq(jg_node_id(q), 1);
    cr_assert_eq(jg_param_count(g), 2);
    cr_assert_eq(jg_param_at(g, 0), a);
    cr_assert_eq(jg_param_at(g, 1), q);
    float v[2];
    cr_assert_eq(jg_param_get(g, "q", v, sizeof v), JG_OK);
    cr_assert(v[0] == 3.0f && v[1] == 3.0f);
    /* an i32 parameter is rejected before any node exists as well */
    cr_assert(!jg_node_ok(jg_param_as(g, "k", JG_I32, jg_shape(2), jg_zeros())));
    cr_assert_eq(jg_graph_node_count(g), 2);
    jg_graph_free(g);
}

/* A typo in a store accessor is reported but does not poison the graph: later builders and
 * compiles work, and jg_errmsg shows the failed call only while no sticky error exists. */
Test(params, store_misuse_does_not_poison_the_graph)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(3), jg_constant(1));
    float buf[3];
    cr_assert_eq(jg_param_get(g, "w", buf, 2 * sizeof(float)), JG_ERR_ARG);
    cr_assert_eq(jg_graph_status(g), JG_OK);
    cr_assert(strstr(jg_errmsg(g), "jg_param_get: parameter 'w' holds 12 bytes, given 8"),
              "%s", jg_errmsg(g));
    cr_assert_eq(jg_param_set(g, "nope", buf, sizeof buf), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "jg_param_set: no parameter named 'nope'"), "%s",
              jg_errmsg(g));
    cr_assert_eq(jg_param_freeze(jg_exp(w), true), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "jg_param_freeze: node %1 (op exp) is not a parameter"),
              "%s", jg_errmsg(g));
    jg_node *y = jg_sum(w, JG_ALL_AXES, false);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    float out;
    jg_program_get(p, 0, &out, sizeof out);
    cr_assert(out == 3.0f);
    jg_program_free(p);
    jg_graph_free(g);
}

/* Zero tensors of a megabyte and more (optimiser states) are anonymous mappings, zeroed by
 * the kernel when touched (store.c): they read as zeros, take values, and are unmapped with
 * the graph (ASan/LeakSanitizer would report a mismatched free). */
Test(params, large_zero_parameters_read_as_zeros_and_take_values)
{
    enum { N = 300 * 1024 }; /* 1.2 MB of f32 */
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param(g, "a", jg_shape(N), jg_zeros());
    jg_node *b = jg_param(g, "b", jg_shape(N), jg_constant(0));
    cr_assert(a && b, "%s", jg_errmsg(g));
    float *v = malloc(N * sizeof *v);
    cr_assert(v);
    const char *names[2] = { "a", "b" };
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < N; i++)
            v[i] = 1;
        cr_assert_eq(jg_param_get(g, names[k], v, N * sizeof *v), JG_OK);
        for (int i = 0; i < N; i += 4099)
            cr_assert(v[i] == 0, "%s[%d] = %g", names[k], i, v[i]);
        for (int i = 0; i < N; i++)
            v[i] = (float)i;
        cr_assert_eq(jg_param_set(g, names[k], v, N * sizeof *v), JG_OK);
        cr_assert_eq(jg_param_get(g, names[k], v, N * sizeof *v), JG_OK);
        cr_assert(v[N - 1] == (float)(N - 1));
    }
    free(v);
    jg_graph_free(g);
}

/* ---- values from elsewhere (a PyTorch state_dict, a file) */

Test(params, from_data_copies_the_values_and_is_not_a_constant_weight)
{
    jg_graph *g = jg_graph_new();
    double v[6] = { 1, 2, 3, 4, 5, 6 };
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(2, 3), jg_from_data(v));
    v[0] = 100; /* copied at creation: later writes to the buffer do not reach the store */
    t_expect(w, jg_shape(2, 3), (double[]){ 1, 2, 3, 4, 5, 6 });
    float f[3] = { 0.5f, -1, 2 };
    t_expect(jg_param(g, "b", jg_shape(3), jg_from_data(f)), jg_shape(3),
             (double[]){ 0.5, -1, 2 });
    /* the lint warns about constant weights only */
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(4, 2));
    jg_node *y = jg_matmul(x, w);
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .executor = JG_EXEC_REFERENCE });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert(!strstr(jg_program_warnings(p), "symmetry"), "%s", jg_program_warnings(p));
    jg_program_free(p);
    /* NULL data: an error naming the parameter, and no node left behind */
    int before = jg_graph_node_count(g);
    jg_param(g, "bad", jg_shape(2), jg_from_data(NULL));
    t_assert_error(g, JG_ERR_ARG, "jg_param: 'bad': jg_from_data given NULL");
    cr_assert_eq(jg_graph_node_count(g), before);
    cr_assert_null(jg_param_find(g, "bad"));
    jg_graph_free(g);
}

Test(params, set_array_checks_dtype_and_shape)
{
    jg_graph *g = jg_graph_new();
    jg_param_as(g, "w", JG_F64, jg_shape(2, 3), jg_zeros());
    double v[6] = { 1, 2, 3, 4, 5, 6 };
    jg_array a = { .dtype = JG_F64, .shape = jg_shape(2, 3), .data = v };
    cr_assert_eq(jg_param_set_array(g, "w", &a), JG_OK, "%s", jg_errmsg(g));
    t_expect(jg_param_find(g, "w"), jg_shape(2, 3), v);
    /* the same bytes in the reversed shape: jg_param_set would take them */
    double z[6] = { 0 };
    jg_array r = { .dtype = JG_F64, .shape = jg_shape(3, 2), .data = z };
    cr_assert_eq(jg_param_set_array(g, "w", &r), JG_ERR_SHAPE);
    cr_assert(strstr(jg_errmsg(g), "jg_param_set_array: parameter 'w' is [2,3], given [3,2] "
                     "(PyTorch's [out, in]? use jg_param_set_transposed)"), "%s", jg_errmsg(g));
    float fz[6] = { 0 };
    jg_array f = { .dtype = JG_F32, .shape = jg_shape(2, 3), .data = fz };
    cr_assert_eq(jg_param_set_array(g, "w", &f), JG_ERR_DTYPE);
    cr_assert(strstr(jg_errmsg(g), "parameter 'w' is f64, given f32"), "%s", jg_errmsg(g));
    jg_array bad = { .dtype = JG_F64, .shape = { .ndim = 2, .dim = { 2, -3 } }, .data = z };
    cr_assert_eq(jg_param_set_array(g, "w", &bad), JG_ERR_SHAPE);
    cr_assert(strstr(jg_errmsg(g), "given an invalid shape"), "%s", jg_errmsg(g));
    bad.shape.ndim = 99;
    cr_assert_eq(jg_param_set_array(g, "w", &bad), JG_ERR_SHAPE);
    cr_assert_eq(jg_param_set_array(g, "nope", &a), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "no parameter named 'nope'"), "%s", jg_errmsg(g));
    cr_assert_eq(jg_param_set_array(g, "w", NULL), JG_ERR_ARG);
    a.data = NULL;
    cr_assert_eq(jg_param_set_array(g, "w", &a), JG_ERR_ARG);
    cr_assert_eq(jg_param_set_array(NULL, "w", &a), JG_ERR_ARG);
    /* failures changed nothing and did not poison the graph */
    t_expect(jg_param_find(g, "w"), jg_shape(2, 3), v);
    cr_assert_eq(jg_graph_status(g), JG_OK);
    jg_graph_free(g);
}

Test(params, set_transposed_takes_pytorch_out_in_layout)
{
    jg_graph *g = jg_graph_new();
    jg_param(g, "w", jg_shape(3, 2), jg_zeros()); /* [in, out] */
    /* nn.Linear(3, 2).weight is [2, 3] */
    float t[6] = { 1, 2, 3, 4, 5, 6 };
    jg_array a = { .dtype = JG_F32, .shape = jg_shape(2, 3), .data = t };
    cr_assert_eq(jg_param_set_transposed(g, "w", &a), JG_OK, "%s", jg_errmsg(g));
    t_expect(jg_param_find(g, "w"), jg_shape(3, 2), (double[]){ 1, 4, 2, 5, 3, 6 });
    a.shape = jg_shape(3, 2);
    cr_assert_eq(jg_param_set_transposed(g, "w", &a), JG_ERR_SHAPE);
    cr_assert(strstr(jg_errmsg(g), "jg_param_set_transposed: parameter 'w' is [3,2] (so "
                     "[out, in] is its reverse), given [3,2]"), "%s", jg_errmsg(g));
    jg_param(g, "b", jg_shape(2), jg_zeros());
    a.shape = jg_shape(2);
    cr_assert_eq(jg_param_set_transposed(g, "b", &a), JG_ERR_SHAPE);
    cr_assert(strstr(jg_errmsg(g), "parameter 'b' is [2], not 2-D"), "%s", jg_errmsg(g));
    jg_graph_free(g);
}
