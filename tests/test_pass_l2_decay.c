/* The l2_decay pass: a jg_l2_penalty added to the loss, under SGD, is applied as weight decay
 * in the update instead of being differentiated. Before/expected: the loss the program
 * differentiates and the decay each parameter gets; numerically: the same weights and
 * losses after N steps with the pass on and off (plain SGD, momentum, Nesterov, groups,
 * accumulation; f32 and f64), a formula check, and no rewrite where it would change the
 * meaning (Adam, RMSprop, clipping, a scaled penalty). */
#include "support/support.h"
#include "compiler/l2_decay.h"
#include "ops/op.h"

#include <math.h>
#include <stdlib.h>

TestSuite(pass_l2_decay);

enum { BATCH = 8, IN = 5, HID = 6, OUT = 3, STEPS = 5 };

/* A small classifier: loss = cross_entropy(relu(x w1 + b1) w2, y) + penalty(c, {w1, w2}),
 * plus "z", a parameter only the penalty holds. b1 is outside the penalty. */
typedef struct net {
    jg_graph *g;
    jg_node *w1, *b1, *w2, *z, *c_loss, *penalty, *loss;
} net;

static net net_new(jg_dtype t, double c)
{
    net n = { .g = jg_graph_new() };
    jg_graph *g = n.g;
    jg_node *x = jg_input(g, "x", t, jg_shape(BATCH, IN));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(BATCH));
    n.w1 = jg_param_as(g, "w1", t, jg_shape(IN, HID), jg_seeded(jg_he_normal(), 1));
    n.b1 = jg_param_as(g, "b1", t, jg_shape(HID), jg_seeded(jg_uniform(-0.1, 0.1), 2));
    n.w2 = jg_param_as(g, "w2", t, jg_shape(HID, OUT), jg_seeded(jg_he_normal(), 3));
    n.z = jg_param_as(g, "z", t, jg_shape(4), jg_seeded(jg_normal(0, 1), 4));
    jg_node *h = jg_relu(jg_add(jg_matmul(x, n.w1), n.b1));
    n.c_loss = jg_cross_entropy(jg_matmul(h, n.w2), y);
    n.penalty = jg_l2_penalty(c, ((jg_node *[]){ n.w1, n.w2, n.z }), 3);
    n.loss = jg_add(n.c_loss, n.penalty);
    cr_assert(jg_node_ok(n.loss), "%s", jg_errmsg(g));
    return n;
}

static void bind_batch(jg_program *p, jg_dtype t, int step)
{
    double xd[BATCH * IN];
    float xf[BATCH * IN];
    int32_t y[BATCH];
    for (int i = 0; i < BATCH * IN; i++)
        xf[i] = (float)(xd[i] = sin(0.37 * i + step) * 1.5);
    for (int i = 0; i < BATCH; i++)
        y[i] = (i * 7 + step) % OUT;
    if (t == JG_F64)
        cr_assert_eq(jg_program_set(p, "x", xd, sizeof xd), JG_OK);
    else
        cr_assert_eq(jg_program_set(p, "x", xf, sizeof xf), JG_OK);
    cr_assert_eq(jg_program_set(p, "y", y, sizeof y), JG_OK);
}

/* Every trainable parameter, flattened to double, and the losses of each step. */
typedef struct outcome {
    double w[IN * HID + HID + HID * OUT + 4];
    double loss[STEPS];
    int kernels;
} outcome;

static void read_param(jg_graph *g, const char *name, jg_dtype t, double *out, int n)
{
    if (t == JG_F64) {
        cr_assert_eq(jg_param_get(g, name, out, (size_t)n * sizeof *out), JG_OK);
        return;
    }
    float f[64];
    cr_assert(n <= 64);
    cr_assert_eq(jg_param_get(g, name, f, (size_t)n * sizeof *f), JG_OK);
    for (int i = 0; i < n; i++)
        out[i] = f[i];
}

/* STEPS runs of a training program over a fresh net; passes_off as given. */
static outcome train(jg_dtype t, jg_train_opts o, const char *passes_off)
{
    net n = net_new(t, 0.05);
    o.compile.passes_off = passes_off;
    jg_program *p = jg_compile_train(n.g, n.loss, &o);
    cr_assert(p, "%s", jg_errmsg(n.g));
    outcome r = { 0 };
    jg_program_stats st;
    cr_assert_eq(jg_program_stats_get(p, &st), JG_OK);
    r.kernels = st.kernels;
    for (int s = 0; s < STEPS; s++) {
        bind_batch(p, t, s);
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        if (t == JG_F64) {
            jg_program_get(p, 0, &r.loss[s], sizeof r.loss[s]);
        } else {
            float l;
            jg_program_get(p, 0, &l, sizeof l);
            r.loss[s] = l;
        }
    }
    double *w = r.w;
    read_param(n.g, "w1", t, w, IN * HID);
    read_param(n.g, "b1", t, w += IN * HID, HID);
    read_param(n.g, "w2", t, w += HID, HID * OUT);
    read_param(n.g, "z", t, w + HID * OUT, 4);
    jg_program_free(p);
    jg_graph_free(n.g);
    return r;
}

static void assert_same(const outcome *on, const outcome *off, double tol)
{
    int nw = (int)(sizeof on->w / sizeof on->w[0]);
    t_assert_close(on->w, off->w, nw, tol);
    t_assert_close(on->loss, off->loss, STEPS, tol);
}

/* ---- before / expected */

Test(pass_l2_decay, cuts_the_penalty_and_records_its_decay)
{
    net n = net_new(JG_F64, 0.05);
    jg_node *wrt[] = { n.w1, n.b1, n.w2, n.z };
    double l2[4] = { 0 };
    jg_node *grad_loss = NULL;
    jg_train_opts o = { .optimizer = jg_sgd(0.1, 0) };
    cr_assert(pass_l2_decay(n.g, &o, n.loss, wrt, 4, &grad_loss, l2));
    /* expected: add(cross_entropy, stop_gradient(l2_penalty)), the loss itself unchanged */
    cr_assert_neq(grad_loss, n.loss);
    cr_assert_str_eq(jg_node_op_name(grad_loss), "add");
    cr_assert_eq(grad_loss->in[0], n.c_loss);
    cr_assert_str_eq(jg_node_op_name(grad_loss->in[1]), "stop_gradient");
    cr_assert_eq(grad_loss->in[1]->in[0], n.penalty);
    cr_assert_eq(n.loss->in[1], n.penalty);
    t_assert_close(l2, (double[]){ 0.1, 0, 0.1, 0.1 }, 4, 1e-15);
    jg_graph_free(n.g);
}

Test(pass_l2_decay, finds_penalties_anywhere_in_the_top_level_sum)
{
    net n = net_new(JG_F64, 0.05);
    jg_node *extra = jg_l2_penalty(0.5, ((jg_node *[]){ n.b1, n.b1 }), 2);
    /* (P + C) + P2: both penalties, on either side of an addition */
    jg_node *loss = jg_add(jg_add(n.penalty, n.c_loss), extra);
    jg_node *wrt[] = { n.w1, n.b1, n.w2, n.z };
    double l2[4] = { 0 };
    jg_node *grad_loss;
    cr_assert(pass_l2_decay(n.g, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0.9) }, loss, wrt,
                            4, &grad_loss, l2));
    t_assert_close(l2, (double[]){ 0.1, 2, 0.1, 0.1 }, 4, 1e-15);
    cr_assert_str_eq(jg_node_op_name(grad_loss->in[0]->in[0]), "stop_gradient");
    cr_assert_eq(grad_loss->in[0]->in[1], n.c_loss);
    cr_assert_str_eq(jg_node_op_name(grad_loss->in[1]), "stop_gradient");
    jg_graph_free(n.g);
}

/* Where the rewrite would change what the program computes, it leaves the loss alone. */
static void expect_no_rewrite(jg_train_opts o, bool scaled)
{
    net n = net_new(JG_F64, 0.05);
    jg_node *loss = scaled ? jg_add(n.c_loss, jg_scale(n.penalty, 0.5)) : n.loss;
    jg_node *wrt[] = { n.w1, n.b1, n.w2, n.z };
    double l2[4] = { 0 };
    jg_node *grad_loss = NULL;
    int before = jg_graph_node_count(n.g);
    cr_assert_not(pass_l2_decay(n.g, &o, loss, wrt, 4, &grad_loss, l2));
    cr_assert_eq(grad_loss, loss);
    cr_assert_eq(jg_graph_node_count(n.g), before, "nodes were added");
    t_assert_close(l2, (double[]){ 0, 0, 0, 0 }, 4, 0);
    jg_graph_free(n.g);
}

Test(pass_l2_decay, no_rewrite_where_it_would_change_the_meaning)
{
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_adam(0.01) }, false);
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_adamw(0.01, 0.1) }, false);
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_rmsprop(0.01) }, false);
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_sgd(0.1, 0), .clip_value = 1 }, false);
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_sgd(0.1, 0), .clip_norm = 1 }, false);
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
                                       .compile = { .passes_off = "cse, l2_decay" } }, false);
    expect_no_rewrite((jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }, true);
}

/* ---- same weights and losses with the pass on and off */

static void on_off(jg_dtype t, jg_train_opts o, double tol)
{
    outcome on = train(t, o, NULL), off = train(t, o, "l2_decay");
    assert_same(&on, &off, tol);
    /* the JIT already fuses the penalty's gradient into the update when the pass is off:
     * the rewrite must never cost a kernel */
    cr_assert_leq(on.kernels, off.kernels);
}

Test(pass_l2_decay, same_weights_plain_sgd)
{
    on_off(JG_F64, (jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }, 1e-12);
    on_off(JG_F32, (jg_train_opts){ .optimizer = jg_sgd(0.1, 0) }, 1e-6);
}

Test(pass_l2_decay, same_weights_momentum_and_nesterov)
{
    jg_optimizer nesterov = jg_sgd(0.05, 0.9);
    nesterov.nesterov = true;
    on_off(JG_F64, (jg_train_opts){ .optimizer = jg_sgd(0.05, 0.9) }, 1e-12);
    on_off(JG_F32, (jg_train_opts){ .optimizer = jg_sgd(0.05, 0.9) }, 1e-6);
    on_off(JG_F64, (jg_train_opts){ .optimizer = nesterov }, 1e-12);
}

Test(pass_l2_decay, same_weights_with_optimiser_l2_groups_and_accumulation)
{
    jg_optimizer both = jg_sgd(0.05, 0.5);
    both.l2 = 0.01; /* the optimiser's own coupled l2 adds to the penalty's */
    on_off(JG_F64, (jg_train_opts){ .optimizer = both }, 1e-12);
    /* a no_decay group drops the optimiser's l2 but not a penalty the loss holds */
    jg_param_group groups[] = { { .prefix = "w2", .no_decay = true, .lr_scale = 0.5 } };
    on_off(JG_F64, (jg_train_opts){ .optimizer = both, .groups = groups, .n_groups = 1 },
           1e-12);
    on_off(JG_F64, (jg_train_opts){ .optimizer = jg_sgd(0.05, 0.9), .accumulate = 2 }, 1e-12);
}

Test(pass_l2_decay, same_weights_on_the_reference_executor)
{
    jg_train_opts o = { .optimizer = jg_sgd(0.1, 0.9),
                        .compile = { .executor = JG_EXEC_REFERENCE } };
    on_off(JG_F64, o, 1e-12);
    on_off(JG_F32, o, 1e-6);
}

Test(pass_l2_decay, adam_is_left_as_written)
{
    /* bit for bit: the pass does not touch an Adam program */
    outcome on = train(JG_F64, (jg_train_opts){ .optimizer = jg_adam(0.01) }, NULL);
    outcome off = train(JG_F64, (jg_train_opts){ .optimizer = jg_adam(0.01) }, "l2_decay");
    assert_same(&on, &off, 0);
    cr_assert_eq(on.kernels, off.kernels);
}

/* ---- the formula */

Test(pass_l2_decay, one_step_is_decay_then_gradient)
{
    /* C = sum(a * k): grad C = k, so a <- (1 - 2 c lr) a - lr k; z, only penalised, decays */
    jg_graph *g = jg_graph_new();
    jg_node *a = jg_param_as(g, "a", JG_F64, jg_shape(3), jg_zeros());
    jg_node *z = jg_param_as(g, "z", JG_F64, jg_shape(2), jg_zeros());
    jg_node *b = jg_param_as(g, "b", JG_F64, jg_shape(2), jg_zeros());
    double a0[] = { 1, -2, 0.5 }, z0[] = { 3, -1 }, b0[] = { 0.25, 4 };
    jg_param_set(g, "a", a0, sizeof a0);
    jg_param_set(g, "z", z0, sizeof z0);
    jg_param_set(g, "b", b0, sizeof b0);
    jg_node *k = t_const(g, jg_shape(3), (double[]){ 3, -4, 0.5 });
    jg_node *kb = t_const(g, jg_shape(2), (double[]){ 1, 2 });
    jg_node *c = jg_add(jg_sum(jg_mul(a, k), JG_ALL_AXES, false),
                        jg_sum(jg_mul(b, kb), JG_ALL_AXES, false));
    double cc = 0.2, lr = 0.1;
    jg_node *loss = jg_add(c, jg_l2_penalty(cc, ((jg_node *[]){ a, z }), 2));
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(lr, 0) });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    double l, a1[3], z1[2], b1[2];
    jg_program_get(p, 0, &l, sizeof l);
    /* the loss output still holds the penalty's value */
    double want_l = 3 * 1 + -4 * -2 + 0.5 * 0.5 + 0.25 + 8 + cc * (1 + 4 + 0.25 + 9 + 1);
    cr_assert_float_eq(l, want_l, 1e-12, "loss %.17g, want %.17g", l, want_l);
    jg_param_get(g, "a", a1, sizeof a1);
    jg_param_get(g, "z", z1, sizeof z1);
    jg_param_get(g, "b", b1, sizeof b1);
    double d = 1 - 2 * cc * lr;
    t_assert_close(a1, (double[]){ d * 1 - lr * 3, d * -2 + lr * 4, d * 0.5 - lr * 0.5 }, 3,
                   1e-14);
    t_assert_close(z1, (double[]){ d * 3, d * -1 }, 2, 1e-14);
    /* outside the penalty: the plain gradient step, no decay */
    t_assert_close(b1, (double[]){ 0.25 - lr * 1, 4 - lr * 2 }, 2, 1e-14);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(pass_l2_decay, kernels_saved_when_nothing_fuses_them_away)
{
    /* With fusion and simplify on, the penalty's gradient 2 c w * 1 folds and fuses into the
     * update either way, so the kernel counts are equal (checked above). Without them, the
     * rewrite saves the multiply by the penalty's incoming gradient (1 here): a kernel per
     * parameter that both C and the penalty hold (w1, w2; z, which only the penalty holds,
     * trades it for an addition to a zero gradient, which simplify would fold). */
    jg_train_opts o = { .optimizer = jg_sgd(0.1, 0), .compile = { .no_fusion = true } };
    outcome on = train(JG_F64, o, "simplify");
    outcome off = train(JG_F64, o, "simplify,l2_decay");
    assert_same(&on, &off, 1e-12);
    cr_assert_eq(on.kernels + 2, off.kernels, "on %d, off %d", on.kernels, off.kernels);
}
