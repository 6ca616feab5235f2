/* Optimisers beyond test_train.c: RMSprop, Nesterov, AdamW, coupled L2 vs decoupled decay,
 * parameter groups, learning-rate schedules and gradient accumulation, each against its
 * formula computed here in double. */
#include "support/support.h"

#include <math.h>
#include <string.h>

TestSuite(optim);

static const double target[2] = { 3, -1 };

/* loss = sum((w - t)^2) / 2 has gradient w - t; w starts at 1. */
static jg_node *quadratic(jg_graph *g, const char *name)
{
    jg_node *w = jg_param_as(g, name, JG_F64, jg_shape(2), jg_constant(1));
    jg_node *t = t_const(g, jg_shape(2), target);
    return jg_scale(jg_sum(jg_square(jg_sub(w, t)), JG_ALL_AXES, false), 0.5);
}

/* Compiles a training program of the quadratic, runs it `steps` times, returns w. */
static void train_quadratic(const jg_train_opts *opts, int steps, double w_out[2])
{
    jg_graph *g = jg_graph_new();
    jg_program *p = jg_compile_train(g, quadratic(g, "w"), opts);
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    for (int i = 0; i < steps; i++)
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_param_get(g, "w", w_out, 2 * sizeof(double)), JG_OK);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(optim, rmsprop_follows_the_formula)
{
    for (int with_momentum = 0; with_momentum < 2; with_momentum++) {
        jg_optimizer o = jg_rmsprop(0.01);
        o.momentum = with_momentum ? 0.9 : 0;
        double got[2];
        train_quadratic(&(jg_train_opts){ .optimizer = o }, 3, got);
        double w[2] = { 1, 1 }, v[2] = { 0 }, b[2] = { 0 };
        for (int step = 0; step < 3; step++)
            for (int i = 0; i < 2; i++) {
                double gr = w[i] - target[i];
                v[i] = 0.99 * v[i] + 0.01 * gr * gr;
                double s = gr / (sqrt(v[i]) + 1e-8);
                b[i] = with_momentum ? 0.9 * b[i] + s : s;
                w[i] -= 0.01 * b[i];
            }
        t_assert_close(got, w, 2, 1e-12);
    }
}

Test(optim, rmsprop_alpha_and_eps_are_used)
{
    jg_optimizer o = jg_rmsprop(0.1);
    o.alpha = 0.5;
    o.eps = 0.25;
    double got[2];
    train_quadratic(&(jg_train_opts){ .optimizer = o }, 2, got);
    double w[2] = { 1, 1 }, v[2] = { 0 };
    for (int step = 0; step < 2; step++)
        for (int i = 0; i < 2; i++) {
            double gr = w[i] - target[i];
            v[i] = 0.5 * v[i] + 0.5 * gr * gr;
            w[i] -= 0.1 * gr / (sqrt(v[i]) + 0.25);
        }
    t_assert_close(got, w, 2, 1e-12);
}

Test(optim, nesterov_follows_the_formula)
{
    jg_optimizer o = jg_sgd(0.1, 0.9);
    o.nesterov = true;
    double got[2];
    train_quadratic(&(jg_train_opts){ .optimizer = o }, 2, got);
    double w[2] = { 1, 1 }, v[2] = { 0 };
    for (int step = 0; step < 2; step++)
        for (int i = 0; i < 2; i++) {
            double gr = w[i] - target[i];
            v[i] = 0.9 * v[i] + gr;
            w[i] -= 0.1 * (gr + 0.9 * v[i]);
        }
    t_assert_close(got, w, 2, 1e-12);
}

/* The Adam rule with a coupled l2 term in the gradient and a decoupled decay after it. */
static void adam_reference(double l2, double wd, int steps, double w[2])
{
    double m[2] = { 0 }, v[2] = { 0 };
    w[0] = w[1] = 1;
    for (int t = 1; t <= steps; t++)
        for (int i = 0; i < 2; i++) {
            double gr = w[i] - target[i] + l2 * w[i];
            m[i] = 0.9 * m[i] + 0.1 * gr;
            v[i] = 0.999 * v[i] + 0.001 * gr * gr;
            double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.999, t));
            w[i] = w[i] - 0.01 * mh / (sqrt(vh) + 1e-8) - 0.01 * wd * w[i];
        }
}

Test(optim, adamw_is_adam_with_decoupled_decay)
{
    double got[2], want[2];
    train_quadratic(&(jg_train_opts){ .optimizer = jg_adamw(0.01, 0.5) }, 3, got);
    adam_reference(0, 0.5, 3, want);
    t_assert_close(got, want, 2, 1e-12);
}

/* Coupled L2 goes through Adam's scaling, decoupled decay does not: the same coefficient
 * gives different weights, each exactly its own formula. */
Test(optim, coupled_l2_and_decoupled_decay_differ)
{
    jg_optimizer coupled = jg_adam(0.01), decoupled = jg_adam(0.01);
    coupled.l2 = 0.5;
    decoupled.weight_decay = 0.5;
    double a[2], b[2], want_a[2], want_b[2];
    train_quadratic(&(jg_train_opts){ .optimizer = coupled }, 3, a);
    train_quadratic(&(jg_train_opts){ .optimizer = decoupled }, 3, b);
    adam_reference(0.5, 0, 3, want_a);
    adam_reference(0, 0.5, 3, want_b);
    t_assert_close(a, want_a, 2, 1e-12);
    t_assert_close(b, want_b, 2, 1e-12);
    cr_assert_gt(fabs(a[0] - b[0]), 1e-4, "coupled %.12g, decoupled %.12g", a[0], b[0]);

    /* SGD with momentum: l2 enters the velocity, decay does not. */
    jg_optimizer sc = jg_sgd(0.1, 0.9), sd = jg_sgd(0.1, 0.9);
    sc.l2 = 0.2;
    sd.weight_decay = 0.2;
    train_quadratic(&(jg_train_opts){ .optimizer = sc }, 2, a);
    train_quadratic(&(jg_train_opts){ .optimizer = sd }, 2, b);
    double wc[2] = { 1, 1 }, vc[2] = { 0 }, wdv[2] = { 1, 1 }, vd[2] = { 0 };
    for (int step = 0; step < 2; step++)
        for (int i = 0; i < 2; i++) {
            vc[i] = 0.9 * vc[i] + (wc[i] - target[i]) + 0.2 * wc[i];
            wc[i] -= 0.1 * vc[i];
            vd[i] = 0.9 * vd[i] + (wdv[i] - target[i]);
            wdv[i] = wdv[i] - 0.1 * vd[i] - 0.1 * 0.2 * wdv[i];
        }
    t_assert_close(a, wc, 2, 1e-12);
    t_assert_close(b, wdv, 2, 1e-12);
    cr_assert_gt(fabs(a[0] - b[0]), 1e-4);
}

/* Groups: the first match wins; frozen gets no gradient and no state, lr_scale scales the
 * rate, no_decay removes both decay and l2. */
Test(optim, parameter_groups)
{
    jg_graph *g = jg_graph_new();
    jg_node *loss = jg_add(jg_add(quadratic(g, "enc.b"), quadratic(g, "enc.w")),
                           jg_add(quadratic(g, "head.w"), quadratic(g, "other")));
    jg_optimizer o = jg_sgd(0.1, 0.5);
    o.weight_decay = 0.1;
    o.l2 = 0.2;
    jg_param_group groups[] = {
        { .prefix = "enc.b", .no_decay = true },
        { .prefix = "enc.", .lr_scale = 0.5 }, /* not enc.b: the first match wins */
        { .prefix = "head.", .frozen = true },
    };
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = o,
                                     .groups = groups, .n_groups = 3 });
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    cr_assert_null(jg_param_find(g, "opt.head.w.m"), "a frozen group has no state");
    cr_assert_not_null(jg_param_find(g, "opt.enc.w.m"));
    for (int i = 0; i < 2; i++)
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    const char *names[] = { "enc.b", "enc.w", "head.w", "other" };
    double scale[] = { 1, 0.5, 0, 1 };
    bool decay[] = { false, true, false, true };
    for (int k = 0; k < 4; k++) {
        double w[2] = { 1, 1 }, v[2] = { 0 }, got[2];
        for (int step = 0; step < 2 && scale[k] != 0; step++)
            for (int i = 0; i < 2; i++) {
                double lr = 0.1 * scale[k];
                v[i] = 0.5 * v[i] + (w[i] - target[i]) + (decay[k] ? 0.2 * w[i] : 0);
                w[i] = w[i] - lr * v[i] - (decay[k] ? lr * 0.1 * w[i] : 0);
            }
        jg_param_get(g, names[k], got, sizeof got);
        t_assert_close(got, w, 2, 1e-12);
    }
    jg_program_free(p);
    jg_graph_free(g);
}

Test(optim, groups_freezing_everything_leave_nothing_to_train)
{
    jg_graph *g = jg_graph_new();
    jg_node *loss = quadratic(g, "w");
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
        .groups = (jg_param_group[]){ { .prefix = "", .frozen = true } }, .n_groups = 1 }));
    t_assert_error(g, JG_ERR_ARG, "no trainable parameters");
    jg_graph_free(g);
}

Test(optim, schedules)
{
    jg_schedule st = { .kind = JG_SCHED_STEP, .lr = 0.1, .gamma = 0.5, .step_size = 10 };
    cr_assert_float_eq(jg_lr_at(&st, 0), 0.1, 1e-15);
    cr_assert_float_eq(jg_lr_at(&st, 9), 0.1, 1e-15);
    cr_assert_float_eq(jg_lr_at(&st, 10), 0.05, 1e-15);
    cr_assert_float_eq(jg_lr_at(&st, 35), 0.0125, 1e-15);

    jg_schedule ex = { .kind = JG_SCHED_EXPONENTIAL, .lr = 2, .gamma = 0.9 };
    cr_assert_float_eq(jg_lr_at(&ex, 0), 2, 1e-15);
    cr_assert_float_eq(jg_lr_at(&ex, 3), 2 * 0.729, 1e-14);

    jg_schedule co = { .kind = JG_SCHED_COSINE, .lr = 1, .min_lr = 0.1, .t_max = 100 };
    cr_assert_float_eq(jg_lr_at(&co, 0), 1, 1e-15);
    cr_assert_float_eq(jg_lr_at(&co, 50), 0.55, 1e-14);
    cr_assert_float_eq(jg_lr_at(&co, 25), 0.1 + 0.9 * (1 + cos(0.78539816339744830962)) / 2, 1e-14);
    cr_assert_float_eq(jg_lr_at(&co, 100), 0.1, 1e-15);
    cr_assert_float_eq(jg_lr_at(&co, 1000), 0.1, 1e-15);

    jg_schedule c = { .kind = JG_SCHED_CONSTANT, .lr = 0.3 };
    cr_assert_float_eq(jg_lr_at(&c, 12345), 0.3, 1e-15);

    /* Warm-up, then the schedule from its own step 0. */
    jg_schedule wu = co;
    wu.warmup = 10;
    cr_assert_float_eq(jg_lr_at(&wu, 0), 0, 1e-15);
    cr_assert_float_eq(jg_lr_at(&wu, 5), 0.5, 1e-15);
    cr_assert_float_eq(jg_lr_at(&wu, 10), 1, 1e-15);
    cr_assert_float_eq(jg_lr_at(&wu, 60), 0.55, 1e-14);
    jg_schedule ws = st;
    ws.warmup = 4;
    cr_assert_float_eq(jg_lr_at(&ws, 1), 0.025, 1e-15);
    cr_assert_float_eq(jg_lr_at(&ws, 14), 0.05, 1e-15);

    /* Invalid schedules and steps give NaN. */
    cr_assert(isnan(jg_lr_at(NULL, 0)));
    cr_assert(isnan(jg_lr_at(&st, -1)));
    jg_schedule bad[] = {
        { .kind = JG_SCHED_STEP, .lr = 0.1, .gamma = 0.5 },             /* step_size 0 */
        { .kind = JG_SCHED_EXPONENTIAL, .lr = 0.1 },                    /* gamma 0 */
        { .kind = JG_SCHED_COSINE, .lr = 0.1, .t_max = 0 },
        { .kind = JG_SCHED_COSINE, .lr = 0.1, .t_max = 5, .min_lr = 1 },
        { .kind = JG_SCHED_CONSTANT, .lr = NAN },
        { .kind = JG_SCHED_CONSTANT, .lr = 0.1, .warmup = -1 },
        { .kind = (jg_schedule_kind)9, .lr = 0.1 },
    };
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++)
        cr_assert(isnan(jg_lr_at(&bad[i], 3)), "bad schedule %d gave a number", i);
}

Test(optim, set_lr_changes_the_next_run)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = jg_compile_train(g, quadratic(g, "w"), &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0), .name = "sched" });
    cr_assert_not_null(p, "%s", jg_errmsg(g));
    jg_schedule s = { .kind = JG_SCHED_EXPONENTIAL, .lr = 0.5, .gamma = 0.5 };
    double w[2] = { 1, 1 }, got[2];
    for (int step = 0; step < 3; step++) {
        cr_assert_eq(jg_program_set_lr(g, "sched", jg_lr_at(&s, step)), JG_OK, "%s",
                     jg_errmsg(g));
        cr_assert_eq(jg_program_run(p), JG_OK);
        for (int i = 0; i < 2; i++)
            w[i] -= jg_lr_at(&s, step) * (w[i] - target[i]);
    }
    jg_param_get(g, "w", got, sizeof got);
    t_assert_close(got, w, 2, 1e-12);

    cr_assert_eq(jg_program_set_lr(g, "sched", NAN), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "jg_program_set_lr: lr nan for 'sched'"), "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set_lr(g, "sched", -1), JG_ERR_ARG);
    cr_assert_eq(jg_program_set_lr(g, NULL, 0.1), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "no learning rate 'opt.lr'"), "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set_lr(NULL, "sched", 0.1), JG_ERR_ARG);
    cr_assert_eq(jg_graph_status(g), JG_OK, "a failed set_lr poisoned the graph");
    jg_program_free(p);
    jg_graph_free(g);
}

/* A linear model y = x w under a mean loss, with batches of `rows` rows. */
static jg_program *linear_model(jg_graph *g, int rows, const jg_train_opts *opts)
{
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(rows, 3));
    jg_node *y = jg_input(g, "y", JG_F64, jg_shape(rows, 1));
    jg_node *w = jg_param_as(g, "w", JG_F64, jg_shape(3, 1), jg_constant(0.25));
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(1), jg_constant(-0.5));
    jg_node *loss = jg_mse_loss(jg_add(jg_matmul(x, w), b), y);
    return jg_compile_train(g, loss, opts);
}

static void run_batch(jg_program *p, const double *x, const double *y, int rows, double *loss)
{
    cr_assert_eq(jg_program_set(p, "x", x, (size_t)rows * 3 * sizeof *x), JG_OK);
    cr_assert_eq(jg_program_set(p, "y", y, (size_t)rows * sizeof *y), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    if (loss)
        jg_program_get(p, 0, loss, sizeof *loss);
}

/* Three accumulated runs on batches of 2 equal one run on their concatenation (6 rows):
 * the effective gradient is the mean. Two cycles check that counter and sums reset. */
static void check_accumulation(jg_optimizer o, jg_executor ex)
{
    double x[2][18], y[2][6];
    for (int c = 0; c < 2; c++) {
        for (int i = 0; i < 18; i++)
            x[c][i] = sin(1.3 * i + 7 * c);
        for (int i = 0; i < 6; i++)
            y[c][i] = cos(0.7 * i + 3 * c);
    }
    jg_graph *ga = jg_graph_new(), *gb = jg_graph_new();
    jg_program *pa = linear_model(ga, 2, &(jg_train_opts){ .optimizer = o,
        .accumulate = 3, .compile = { .executor = ex } });
    /* the oracle: one step on the concatenated batch, by the reference executor */
    jg_program *pb = linear_model(gb, 6, &(jg_train_opts){ .optimizer = o,
        .compile = { .executor = JG_EXEC_REFERENCE } });
    cr_assert_not_null(pa, "%s", jg_errmsg(ga));
    cr_assert_not_null(pb, "%s", jg_errmsg(gb));
    for (int c = 0; c < 2; c++) {
        double before[3], wa[3], wb[3], ba, bb, count;
        jg_param_get(ga, "w", before, sizeof before);
        for (int r = 0; r < 3; r++) {
            double loss, single;
            run_batch(pa, x[c] + 6 * r, y[c] + 2 * r, 2, &loss);
            /* the loss output is the loss of this run's batch */
            single = 0;
            for (int i = 0; i < 2; i++) {
                const double *row = x[c] + 6 * r + 3 * i;
                double pred = (row[0] + row[1] + row[2]) * 0.25 - 0.5;
                double d = pred - y[c][2 * r + i];
                single += d * d / 2; /* the mean over 2 rows */
            }
            if (c == 0)
                cr_assert_float_eq(loss, single, 1e-12, "run %d", r);
            if (r < 2) {
                jg_param_get(ga, "w", wa, sizeof wa);
                t_assert_close(wa, before, 3, 0);
                jg_param_get(ga, "opt.count", &count, sizeof count);
                cr_assert_eq(count, r + 1);
            }
        }
        run_batch(pb, x[c], y[c], 6, NULL);
        jg_param_get(ga, "w", wa, sizeof wa);
        jg_param_get(gb, "w", wb, sizeof wb);
        jg_param_get(ga, "b", &ba, sizeof ba);
        jg_param_get(gb, "b", &bb, sizeof bb);
        t_assert_close(wa, wb, 3, 1e-10);
        cr_assert_float_eq(ba, bb, 1e-10, "cycle %d", c);
        cr_assert_gt(fabs(wa[0] - before[0]), 1e-6, "no update happened");
        jg_param_get(ga, "opt.count", &count, sizeof count);
        cr_assert_eq(count, 0);
        double acc[3];
        jg_param_get(ga, "opt.w.acc", acc, sizeof acc);
        t_assert_close(acc, (double[]){ 0, 0, 0 }, 3, 0);
    }
    if (o.kind == JG_OPT_ADAM) {
        double ta, tb;
        jg_param_get(ga, "opt.t", &ta, sizeof ta);
        jg_param_get(gb, "opt.t", &tb, sizeof tb);
        cr_assert(ta == 2 && tb == 2, "Adam's t counts updates: %g %g", ta, tb);
    }
    jg_program_free(pa);
    jg_program_free(pb);
    jg_graph_free(ga);
    jg_graph_free(gb);
}

/* The accumulating program by each executor for Adam, by one for the others. */
Test(optim, accumulation_equals_the_concatenated_batch_adamw_jit)
{
    check_accumulation(jg_adamw(0.05, 0.1), JG_EXEC_JIT);
}

Test(optim, accumulation_equals_the_concatenated_batch_adamw_reference)
{
    check_accumulation(jg_adamw(0.05, 0.1), JG_EXEC_REFERENCE);
}

Test(optim, accumulation_equals_the_concatenated_batch_momentum_l2)
{
    jg_optimizer o = jg_sgd(0.1, 0.9);
    o.l2 = 0.3;
    check_accumulation(o, JG_EXEC_REFERENCE);
}

Test(optim, accumulation_equals_the_concatenated_batch_rmsprop)
{
    check_accumulation(jg_rmsprop(0.01), JG_EXEC_JIT);
}

Test(optim, accumulate_one_is_the_plain_step)
{
    double a[2], b[2];
    train_quadratic(&(jg_train_opts){ .optimizer = jg_adam(0.01), .accumulate = 1 }, 2, a);
    train_quadratic(&(jg_train_opts){ .optimizer = jg_adam(0.01) }, 2, b);
    t_assert_close(a, b, 2, 0);
}

/* Misuse: every new setting is validated before any state is created. */
Test(optim, invalid_settings)
{
    jg_optimizer alpha = jg_rmsprop(0.1), l2 = jg_sgd(0.1, 0), nest = jg_adam(0.1);
    alpha.alpha = 1;
    l2.l2 = NAN;
    nest.nesterov = true;
    struct {
        jg_train_opts o;
        const char *part;
    } cases[] = {
        { { .optimizer = alpha }, "invalid optimiser: alpha 1 (must be in [0, 1))" },
        { { .optimizer = l2 }, "invalid optimiser: l2 nan (must be >= 0 and finite)" },
        { { .optimizer = nest }, "invalid optimiser: nesterov is for SGD only" },
        { { .optimizer = jg_sgd(0.1, 0), .n_groups = 1 },
          "bad parameter groups (n_groups 1, groups NULL)" },
        { { .optimizer = jg_sgd(0.1, 0), .n_groups = 1,
            .groups = (jg_param_group[]){ { .lr_scale = 1 } } },
          "parameter group 0 has no prefix" },
        { { .optimizer = jg_sgd(0.1, 0), .n_groups = 2,
            .groups = (jg_param_group[]){ { .prefix = "a" }, { .prefix = "w", .lr_scale = -1 } } },
          "parameter group 1 ('w'): lr_scale -1 (must be >= 0 and finite" },
        { { .optimizer = jg_sgd(0.1, 0), .n_groups = 1,
            .groups = (jg_param_group[]){ { .prefix = "w", .lr_scale = INFINITY } } },
          "lr_scale inf" },
        { { .optimizer = jg_sgd(0.1, 0), .accumulate = -2 }, "accumulate -2 (must be >= 0)" },
    };
    for (int i = 0; i < (int)(sizeof cases / sizeof cases[0]); i++) {
        jg_graph *g = jg_graph_new();
        jg_node *loss = quadratic(g, "w");
        cr_assert_null(jg_compile_train(g, loss, &cases[i].o), "case %d compiled", i);
        t_assert_error(g, JG_ERR_ARG, cases[i].part);
        cr_assert_eq(jg_param_count(g), 1, "case %d created state", i);
        jg_graph_free(g);
    }
    /* The accumulation state's names are checked like the others. */
    jg_graph *g = jg_graph_new();
    jg_node *loss = jg_add(quadratic(g, "w"), jg_sum(jg_param_as(g, "opt.w.acc", JG_F64,
                           jg_shape(1), jg_zeros()), JG_ALL_AXES, false));
    jg_param_freeze(jg_param_find(g, "opt.w.acc"), true);
    cr_assert_null(jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
                                                               .accumulate = 2 }));
    t_assert_error(g, JG_ERR_ARG, "optimiser state name 'opt.w.acc' is already used by a "
                   "parameter");
    cr_assert_eq(jg_param_count(g), 2);
    jg_graph_free(g);
}
