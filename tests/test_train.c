/* Training programs: one step of each optimiser against the formula, the learning rate as a
 * store entry, frozen parameters, and a toy regression that converges. */
#include "support/support.h"

#include <math.h>
#include <string.h>

TestSuite(train);

/* loss = sum((w - t)^2) / 2 has gradient w - t. */
static jg_node *quadratic(jg_graph *g, jg_node **w)
{
    *w = jg_param_as(g, "w", JG_F64, jg_shape(2), jg_constant(1));
    jg_node *t = t_const(g, jg_shape(2), (double[]){ 3, -1 });
    return jg_scale(jg_sum(jg_square(jg_sub(*w, t)), JG_ALL_AXES, false), 0.5);
}

Test(train, sgd_with_momentum_follows_the_formula)
{
    jg_graph *g = jg_graph_new();
    jg_node *w;
    jg_node *loss = quadratic(g, &w);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.9) });
    cr_assert(p, "%s", jg_errmsg(g));
    double wv[2] = { 1, 1 }, v[2] = { 0, 0 }, t[2] = { 3, -1 }, got[2];
    for (int step = 0; step < 3; step++) {
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        for (int i = 0; i < 2; i++) {
            v[i] = 0.9 * v[i] + (wv[i] - t[i]);
            wv[i] -= 0.1 * v[i];
        }
    }
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    cr_assert_eq(st.in_place_updates, 2, "w and its momentum are updated in place");
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, wv, 2, 1e-12);
    cr_assert_eq(jg_param_get(g, "opt.w.m", got, sizeof got), JG_OK, "%s", jg_errmsg(g));
    t_assert_close(got, v, 2, 1e-12);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, adam_follows_the_formula)
{
    jg_graph *g = jg_graph_new();
    jg_node *w;
    jg_node *loss = quadratic(g, &w);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(0.01) });
    cr_assert(p, "%s", jg_errmsg(g));
    double wv[2] = { 1, 1 }, m[2] = { 0 }, v[2] = { 0 }, t[2] = { 3, -1 }, got[2];
    for (int step = 1; step <= 3; step++) {
        cr_assert_eq(jg_program_run(p), JG_OK);
        for (int i = 0; i < 2; i++) {
            double gr = wv[i] - t[i];
            m[i] = 0.9 * m[i] + 0.1 * gr;
            v[i] = 0.999 * v[i] + 0.001 * gr * gr;
            double mh = m[i] / (1 - pow(0.9, step)), vh = v[i] / (1 - pow(0.999, step));
            wv[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
        }
    }
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, wv, 2, 1e-12);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, learning_rate_changes_without_recompiling)
{
    jg_graph *g = jg_graph_new();
    jg_node *w;
    jg_program *p = jg_compile_train(g, quadratic(g, &w), &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0) });
    double lr = 0.5, got[2];
    cr_assert_eq(jg_param_set(g, "opt.lr", &lr, sizeof lr), JG_OK, "%s", jg_errmsg(g));
    jg_program_run(p);
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, (double[]){ 1 - 0.5 * (1 - 3), 1 - 0.5 * (1 + 1) }, 2, 1e-12);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, frozen_parameters_are_not_updated)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(2), jg_constant(1));
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(2), jg_constant(2));
    jg_param_freeze(b, true);
    jg_node *loss = jg_sum(jg_mul(a, b), JG_ALL_AXES, false);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0) });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_run(p);
    double av[2], bv[2];
    jg_param_get(g, "a", av, sizeof av);
    jg_param_get(g, "b", bv, sizeof bv);
    t_assert_close(av, (double[]){ 0.8, 0.8 }, 2, 1e-12);
    t_assert_close(bv, (double[]){ 2, 2 }, 2, 0);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(train, linear_regression_converges)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(32, 3), 5);
    jg_node *w_true = t_const(g, jg_shape(3, 1), (double[]){ 1.5, -2, 0.5 });
    jg_node *y = jg_matmul(x, w_true);
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(3, 1), jg_zeros());
    jg_node *loss = jg_mse_loss(jg_matmul(x, w), y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.5) });
    cr_assert(p, "%s", jg_errmsg(g));
    double l = 0;
    for (int i = 0; i < 200; i++) {
        jg_program_run(p);
        jg_program_get(p, 0, &l, sizeof l);
    }
    cr_assert_lt(l, 1e-10, "loss %g", l);
    double got[3];
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, (double[]){ 1.5, -2, 0.5 }, 3, 1e-5);
    jg_program_free(p);
    jg_graph_free(g);
}

/* Each training program owns its optimiser state: a second one with the same name fails
 * instead of silently sharing (and overwriting) the first one's learning rate. */
Test(train, programs_need_their_own_state_names)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(1), jg_constant(1));
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(1), jg_constant(1));
    jg_node *la = jg_sum(jg_square(a), JG_ALL_AXES, false);
    jg_node *lb = jg_sum(jg_square(b), JG_ALL_AXES, false);
    jg_program *pa = jg_compile_train(g, la, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
                                                               .name = "" });
    cr_assert_not_null(pa, "%s", jg_errmsg(g));
    int params = jg_param_count(g);
    cr_assert_null(jg_compile_train(g, lb, &(jg_train_opts){ .optimizer = jg_sgd(0.001, 0) }));
    t_assert_error(g, JG_ERR_ARG, "jg_compile_train: optimiser state 'opt' already exists: give "
                   "each training program its own opts.name");
    cr_assert_eq(jg_param_count(g), params, "the failed compile added state");
    jg_graph_clear_error(g);
    jg_program *pb = jg_compile_train(g, lb, &(jg_train_opts){ .optimizer = jg_adam(0.001),
                                                               .name = "fine" });
    cr_assert_not_null(pb, "%s", jg_errmsg(g));
    double lr_a, lr_b, t;
    cr_assert_eq(jg_param_get(g, "opt.lr", &lr_a, sizeof lr_a), JG_OK);
    cr_assert_eq(jg_param_get(g, "fine.lr", &lr_b, sizeof lr_b), JG_OK);
    cr_assert(lr_a == 0.1 && lr_b == 0.001, "lr %g %g", lr_a, lr_b);
    cr_assert_not_null(jg_param_find(g, "fine.b.m"));
    cr_assert_not_null(jg_param_find(g, "fine.b.v"));
    cr_assert_eq(jg_program_run(pa), JG_OK, "%s", jg_errmsg(pa));
    cr_assert_eq(jg_program_run(pb), JG_OK, "%s", jg_errmsg(pb));
    double av, bv;
    jg_param_get(g, "a", &av, sizeof av);
    jg_param_get(g, "b", &bv, sizeof bv);
    jg_param_get(g, "fine.t", &t, sizeof t);
    cr_assert_float_eq(av, 1 - 0.1 * 2, 1e-12);
    cr_assert_float_eq(bv, 1 - 0.001, 1e-9); /* Adam's first step is lr * sign(grad) */
    cr_assert_eq(t, 1.0);
    jg_program_free(pa);
    jg_program_free(pb);
    jg_graph_free(g);
}

/* State names are "<opts.name>.<param>.m": a user parameter called "w.m" is no longer taken
 * as w's momentum, and a name that is taken is an error naming it. */
Test(train, state_names_never_take_over_user_nodes)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w", jg_shape(1), jg_constant(1));
    jg_node *wm = jg_param(g, "w.m", jg_shape(1), jg_constant(5));
    jg_node *loss = jg_sum(jg_add(jg_square(w), jg_square(wm)), JG_ALL_AXES, false);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.9) });
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    float wv, wmv;
    jg_param_get(g, "w", &wv, sizeof wv);
    jg_param_get(g, "w.m", &wmv, sizeof wmv);
    cr_assert_float_eq(wv, 0.8f, 1e-6);
    cr_assert_float_eq(wmv, 4.0f, 1e-6);
    jg_program_free(p);
    jg_graph_free(g);

    g = jg_graph_new();
    w = jg_param(g, "w", jg_shape(1), jg_constant(1));
    jg_node *taken = jg_param(g, "opt.w.m", jg_shape(1), jg_constant(0));
    loss = jg_sum(jg_add(jg_square(w), taken), JG_ALL_AXES, false);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.9) }));
    t_assert_error(g, JG_ERR_ARG,
                   "jg_compile_train: optimiser state name 'opt.w.m' is already used by a "
                   "parameter");
    cr_assert_eq(jg_param_count(g), 2, "state was created before the check");
    jg_graph_clear_error(g);
    jg_input(g, "adam.t", JG_F64, JG_SCALAR);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(0.1),
                                                               .name = "adam" }));
    t_assert_error(g, JG_ERR_ARG, "optimiser state name 'adam.t' is already used by an input");
    jg_graph_free(g);
}

/* Names that do not fit are an error, not a truncation (which made "<long>.m" and "<long>.v"
 * the same entry). */
Test(train, too_long_state_names_are_an_error)
{
    jg_graph *g = jg_graph_new();
    char name[300];
    memset(name, 'a', 260);
    name[260] = '\0';
    jg_node *w = jg_param(g, name, jg_shape(1), jg_constant(1));
    jg_node *loss = jg_sum(jg_square(w), JG_ALL_AXES, false);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(0.1) }));
    t_assert_error(g, JG_ERR_ARG, "jg_compile_train: optimiser state name 'opt.aaaa");
    t_assert_error(g, JG_ERR_ARG, "has 266 characters, at most 255 fit");
    cr_assert_eq(jg_param_count(g), 1);
    jg_graph_clear_error(g);
    memset(name, 'o', 260);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
                                                               .name = name }));
    t_assert_error(g, JG_ERR_ARG, "has 263 characters");
    jg_graph_free(g);
}

/* Every setting is validated, NaN included. */
Test(train, invalid_optimiser_settings)
{
    jg_optimizer sgd = jg_sgd(0.1, 0.9), adam = jg_adam(0.1);
    struct {
        jg_optimizer o;
        const char *part;
    } cases[] = {
        { jg_sgd(NAN, 0), "invalid optimiser: lr nan (must be > 0 and finite)" },
        { jg_sgd(INFINITY, 0), "invalid optimiser: lr inf" },
        { jg_sgd(0.1, NAN), "invalid optimiser: momentum nan (must be >= 0 and finite)" },
        { jg_sgd(0.1, -0.5), "invalid optimiser: momentum -0.5" },
        { sgd, "invalid optimiser: beta1 1 (must be in [0, 1))" },
        { adam, "invalid optimiser: beta2 nan (must be in [0, 1))" },
        { adam, "invalid optimiser: eps -1 (must be >= 0 and finite)" },
        { adam, "invalid optimiser: eps nan" },
        { sgd, "invalid optimiser: weight_decay -0.1 (must be >= 0 and finite)" },
        { adam, "invalid optimiser: weight_decay nan" },
        { jg_sgd(0.1, 0), "invalid optimiser: nesterov needs momentum > 0" },
        { { .kind = (jg_optimizer_kind)7, .lr = 0.1 }, "invalid optimiser: unknown kind 7" },
    };
    cases[4].o.beta1 = 1;
    cases[5].o.beta2 = NAN;
    cases[6].o.eps = -1;
    cases[7].o.eps = NAN;
    cases[8].o.weight_decay = -0.1;
    cases[9].o.weight_decay = NAN;
    cases[10].o.nesterov = true;
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        jg_graph *g = jg_graph_new();
        jg_node *w;
        jg_node *loss = quadratic(g, &w);
        cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = cases[i].o }),
                       "case %d compiled", i);
        t_assert_error(g, JG_ERR_ARG, cases[i].part);
        cr_assert_eq(jg_param_count(g), 1, "case %d created state", i);
        jg_graph_free(g);
    }
}
