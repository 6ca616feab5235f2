/* Advice (compiler/advice.c, train/advice_train.c): each rule warns about a graph that has its problem, naming the node and the
 * file:line where it was built, and stays quiet about sound models (an MLP and a small CNN
 * with batchnorm trained by AdamW with no_decay groups); warnings never fail a compile, and
 * jg_opts.print_warnings prints them to stderr. */
#include "support/support.h"

#include <criterion/redirect.h>
#include <stdio.h>

TestSuite(advice);

/* The advice is the same for both executors; the reference one compiles faster. */
static const jg_opts ref = { .executor = JG_EXEC_REFERENCE };

/* Asserts that one warning line names `what` (an op as "jg_relu", or "parameter 'w'")
 * together with this file and line, and contains `why`. */
static void expect(const jg_program *p, const char *what, int line, const char *why)
{
    const char *text = jg_program_warnings(p);
    char at[160];
    snprintf(at, sizeof at, "%s (test_advice.c:%d", what, line);
    for (const char *s = text; *s;) {
        const char *end = strchr(s, '\n');
        cr_assert(end, "a warning ends with a newline: %s", s);
        char row[1024];
        snprintf(row, sizeof row, "%.*s", (int)(end - s), s);
        if (strncmp(row, "warning: ", 9) == 0 && strstr(row, at) && strstr(row, why))
            return;
        s = end + 1;
    }
    cr_assert_fail("no warning names %s and says '%s' in:\n%s", at, why, text);
}

static void expect_none(const jg_program *p)
{
    cr_assert(p);
    cr_assert_str_eq(jg_program_warnings(p), "");
    jg_program_stats st;
    jg_program_stats_get(p, &st);
    cr_assert_eq(st.warnings, 0);
}

static int count(const jg_program *p)
{
    jg_program_stats st;
    cr_assert_eq(jg_program_stats_get(p, &st), JG_OK);
    return st.warnings;
}

/* ---- every program */

Test(advice, relu_then_sigmoid_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w", jg_shape(4, 1), jg_he_normal());
    jg_node *r = jg_relu(jg_matmul(x, w)); int line = __LINE__;
    jg_node *y = jg_sigmoid(r); int at = __LINE__;
    jg_program *p = jg_compile(g, &y, 1, NULL);
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "jg_sigmoid", at, "predicts one class");
    expect(p, "jg_relu", line, "predicts one class");
    cr_assert_eq(count(p), 1);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(advice, constant_initialised_weights_are_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w1", jg_shape(4, 16), jg_constant(0.1)); int line = __LINE__;
    jg_node *b = jg_param(g, "b1", jg_shape(16), jg_zeros()); /* a bias: fine */
    jg_node *y = jg_tanh(jg_add(jg_matmul(x, w), b));
    jg_program *p = jg_compile(g, &y, 1, &ref);
    expect(p, "parameter 'w1'", line, "symmetry is never broken");
    cr_assert(!strstr(jg_program_warnings(p), "'b1'"), "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(advice, a_loss_fed_what_it_applies_itself_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(8));
    jg_node *t = jg_input(g, "t", JG_F32, jg_shape(8, 3));
    jg_node *z = jg_matmul(x, jg_param(g, "w", jg_shape(4, 3), jg_he_normal()));
    jg_node *ls = jg_log_softmax(z, 1); int l1 = __LINE__;
    jg_node *ce1 = jg_cross_entropy(ls, y); int l2 = __LINE__;
    jg_node *sm = jg_softmax(z, 1); int l3 = __LINE__;
    jg_node *ce2 = jg_cross_entropy(sm, y); int l4 = __LINE__;
    jg_node *s = jg_sigmoid(z); int l5 = __LINE__;
    jg_node *bce = jg_bce_with_logits(s, t); int l6 = __LINE__;
    jg_node *fine = jg_cross_entropy(z, y);
    jg_program *p = jg_compile(g, (jg_node *[]){ ce1, ce2, bce, fine }, 4, &ref);
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "jg_cross_entropy", l2, "applied twice");
    expect(p, "jg_log_softmax", l1, "applied twice");
    expect(p, "jg_cross_entropy", l4, "reads probabilities");
    expect(p, "jg_softmax", l3, "reads probabilities");
    expect(p, "jg_bce_with_logits", l6, "applied twice");
    expect(p, "jg_sigmoid", l5, "(0.5, 0.73)");
    cr_assert_eq(count(p), 3, "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(advice, a_linear_or_conv_bias_before_batchnorm_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "fc.w", jg_shape(4, 6), jg_he_normal());
    jg_node *b = jg_param(g, "fc.b", jg_shape(6), jg_zeros()); int lb = __LINE__;
    jg_node *h = jg_batchnorm("bn1", jg_add(jg_matmul(x, w), b), 0.1, 1e-5); int lbn = __LINE__;
    jg_node *img = jg_input(g, "img", JG_F32, jg_shape(2, 3, 6, 6));
    jg_node *k = jg_param(g, "conv.w", jg_shape(5, 3, 3, 3), jg_he_normal());
    jg_node *kb = jg_param(g, "conv.bias", jg_shape(5), jg_zeros()); int lkb = __LINE__;
    jg_node *c = jg_batchnorm("bn2", jg_conv2d(img, k, kb, NULL), 0.1, 1e-5); int lc = __LINE__;
    jg_node *loss = jg_add(jg_mean(jg_square(h), JG_ALL_AXES, false),
                           jg_mean(jg_square(c), JG_ALL_AXES, false));
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0), .compile = ref });
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "parameter 'fc.b'", lb, "right before jg_batchnorm 'bn1'");
    char at[64];
    snprintf(at, sizeof at, "'bn1' (test_advice.c:%d)", lbn);
    cr_assert(strstr(jg_program_warnings(p), at), "%s", jg_program_warnings(p));
    expect(p, "parameter 'conv.bias'", lkb, "right before jg_batchnorm 'bn2'");
    snprintf(at, sizeof at, "'bn2' (test_advice.c:%d)", lc);
    cr_assert(strstr(jg_program_warnings(p), at), "%s", jg_program_warnings(p));
    cr_assert_eq(count(p), 2, "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

/* A gradient computed by an evaluation program differentiates what it computes (dropout
 * off, batchnorm on its running statistics): nothing to warn about, in either mode. (An
 * earlier rule warned here, when jg_grad differentiated the training path only.) */
Test(advice, a_gradient_through_dropout_or_batchnorm_in_an_eval_program_is_sound)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w", jg_shape(4, 6), jg_he_normal());
    jg_node *h = jg_dropout(jg_matmul(x, w), 0.5);
    jg_node *y = jg_batchnorm("bn", h, 0.1, 1e-5);
    jg_node *out = jg_sum(jg_square(y), JG_ALL_AXES, false);
    jg_node *dx;
    cr_assert_eq(jg_grad(g, out, &x, 1, &dx), JG_OK, "%s", jg_errmsg(g));
    jg_program *p = jg_compile(g, &dx, 1, &ref); /* saliency: d out / d x, evaluation */
    expect_none(p);
    jg_program_free(p);
    jg_opts train = ref;
    train.mode = JG_MODE_TRAIN;
    jg_program *t = jg_compile(g, &dx, 1, &train);
    expect_none(t);
    jg_program_free(t);
    jg_graph_free(g);
}

/* ---- training programs */

Test(advice, parameters_the_loss_gradient_does_not_reach_are_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w", jg_shape(4, 2), jg_he_normal());
    jg_param(g, "unused", jg_shape(4, 2), jg_he_normal()); int lu = __LINE__;
    jg_node *cut = jg_param(g, "cut", jg_shape(4, 2), jg_he_normal()); int lc = __LINE__;
    jg_node *z = jg_add(jg_matmul(x, w), jg_matmul(x, jg_stop_gradient(cut)));
    jg_node *loss = jg_mean(jg_square(z), JG_ALL_AXES, false); int ll = __LINE__;
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_sgd(0.1, 0), .compile = ref });
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "parameter 'unused'", lu, "never trains");
    expect(p, "jg_mean", ll, "does not use it");
    expect(p, "parameter 'cut'", lc, "only through ops that pass no gradient");
    cr_assert(!strstr(jg_program_warnings(p), "'w'"), "%s", jg_program_warnings(p));
    cr_assert_eq(count(p), 2, "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

/* A linear layer with bias, then batchnorm without one: the parameters decay should spare. */
static jg_node *decay_model(jg_graph *g, int *line_b, int *line_bn)
{
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(8));
    jg_node *w1 = jg_param(g, "fc1.w", jg_shape(4, 6), jg_he_normal());
    jg_node *w2 = jg_param(g, "fc2.w", jg_shape(6, 3), jg_xavier_uniform());
    jg_node *b2 = jg_param(g, "fc2.bias", jg_shape(3), jg_zeros()); *line_b = __LINE__;
    jg_node *h = jg_relu(jg_batchnorm("bn1", jg_matmul(x, w1), 0.1, 1e-5)); *line_bn = __LINE__;
    return jg_cross_entropy(jg_add(jg_matmul(h, w2), b2), y);
}

Test(advice, weight_decay_on_biases_and_batchnorm_is_named)
{
    jg_graph *g = jg_graph_new();
    int lb, lbn;
    jg_node *loss = decay_model(g, &lb, &lbn);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adamw(1e-3, 0.01), .compile = ref });
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "parameter 'fc2.bias'", lb, "gets weight_decay");
    expect(p, "parameter 'bn1.gamma'", lbn, "gets weight_decay");
    expect(p, "parameter 'bn1.beta'", lbn, "gets weight_decay");
    cr_assert_eq(count(p), 3, "%s", jg_program_warnings(p));
    jg_program_free(p);

    jg_optimizer sgd = jg_sgd(0.1, 0.9);
    sgd.l2 = 1e-4;
    p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = sgd, .compile = ref, .name = "sgd",
        .groups = (jg_param_group[]){ { .prefix = "bn1.", .no_decay = true } }, .n_groups = 1 });
    expect(p, "parameter 'fc2.bias'", lb, "gets l2");
    cr_assert_eq(count(p), 1, "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(advice, coupled_l2_with_adam_or_rmsprop_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(8));
    jg_node *w = jg_param(g, "w", jg_shape(4, 3), jg_he_normal());
    jg_node *ce = jg_cross_entropy(jg_matmul(x, w), y); int lce = __LINE__;
    jg_optimizer adam = jg_adam(1e-3);
    adam.l2 = 1e-4;
    jg_program *p = jg_compile_train(g, ce, &(jg_train_opts){ .optimizer = adam,
                                                              .compile = ref });
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "jg_cross_entropy", lce, "Adam with coupled l2");
    cr_assert_eq(count(p), 1, "%s", jg_program_warnings(p));
    jg_program_free(p);

    jg_node *loss = jg_add(ce, jg_l2_penalty(1e-4, &w, 1)); int lp = __LINE__;
    p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_adam(1e-3), .name = "a2",
                                                    .compile = ref });
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "jg_l2_penalty", lp, "coupled L2");
    cr_assert_eq(count(p), 1, "%s", jg_program_warnings(p));
    jg_program_free(p);

    jg_optimizer rms = jg_rmsprop(1e-3); /* the same scaling */
    rms.l2 = 1e-4;
    p = jg_compile_train(g, ce, &(jg_train_opts){ .optimizer = rms, .name = "r",
                                                  .compile = ref });
    expect(p, "jg_cross_entropy", lce, "RMSprop with coupled l2");
    cr_assert_eq(count(p), 1, "%s", jg_program_warnings(p));
    jg_program_free(p);

    jg_optimizer sgd = jg_sgd(0.1, 0.9); /* coupled L2 is what SGD means by weight decay */
    sgd.l2 = 1e-4;
    p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = sgd, .name = "s",
                                                    .compile = ref });
    expect_none(p);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(advice, a_bias_inside_an_l2_penalty_is_named)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *w = jg_param(g, "w", jg_shape(4, 3), jg_he_normal());
    jg_node *b = jg_param(g, "b", jg_shape(3), jg_zeros()); int lb = __LINE__;
    jg_node *loss = jg_add(jg_mean(jg_square(jg_add(jg_matmul(x, w), b)), JG_ALL_AXES, false),
                           jg_l2_penalty(1e-4, ((jg_node *[]){ w, b }), 2));
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = jg_sgd(0.1, 0),
                                                                .compile = ref });
    cr_assert(p, "%s", jg_errmsg(g));
    expect(p, "parameter 'b'", lb, "inside jg_l2_penalty");
    cr_assert_eq(count(p), 1, "%s", jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

/* ---- sound models, and how warnings reach the user */

static const jg_param_group no_decay[] = {
    { .prefix = "bn", .no_decay = true },
    { .prefix = "fc.bias", .no_decay = true },
};

Test(advice, a_sound_mlp_has_no_warnings)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(8, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(8));
    jg_node *w1 = jg_param(g, "w1", jg_shape(4, 16), jg_he_normal());
    jg_node *b1 = jg_param(g, "fc.bias1", jg_shape(16), jg_zeros());
    jg_node *w2 = jg_param(g, "w2", jg_shape(16, 3), jg_xavier_uniform());
    jg_node *logits = jg_matmul(jg_dropout(jg_relu(jg_add(jg_matmul(x, w1), b1)), 0.2), w2);
    jg_node *loss = jg_cross_entropy(logits, y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adamw(1e-3, 0.01), .groups = no_decay, .n_groups = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    expect_none(p);
    jg_program_free(p);
    jg_program *eval = jg_compile(g, &logits, 1, &ref);
    expect_none(eval);
    jg_program_free(eval);
    jg_graph_free(g);
}

Test(advice, a_sound_cnn_with_batchnorm_has_no_warnings)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(4, 3, 8, 8));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(4));
    jg_node *k1 = jg_param(g, "conv1.w", jg_shape(8, 3, 3, 3), jg_he_normal());
    jg_node *k2 = jg_param(g, "conv2.w", jg_shape(8, 8, 3, 3), jg_he_normal());
    jg_node *w = jg_param(g, "fc.w", jg_shape(8, 5), jg_xavier_uniform());
    jg_node *b = jg_param(g, "fc.bias", jg_shape(5), jg_zeros());
    const jg_conv_opts same = { .pad_h = 1, .pad_w = 1 };
    jg_node *h = jg_relu(jg_batchnorm("bn1", jg_conv2d(x, k1, NULL, &same), 0.1, 1e-5));
    h = jg_max_pool2d(h, 2, 2, 2, 2, 0, 0);
    h = jg_relu(jg_batchnorm("bn2", jg_conv2d(h, k2, NULL, &same), 0.1, 1e-5));
    jg_node *logits = jg_add(jg_matmul(jg_global_avg_pool(h), w), b);
    jg_node *loss = jg_cross_entropy(logits, y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adamw(1e-3, 0.01), .groups = no_decay, .n_groups = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    expect_none(p);
    jg_program_free(p);
    jg_program *eval = jg_compile(g, &logits, 1, &ref);
    expect_none(eval);
    jg_program_free(eval);
    jg_graph_free(g);
}

Test(advice, warnings_never_fail_a_compile_or_a_run)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(2));
    jg_node *w = jg_param(g, "w", jg_shape(4, 3), jg_zeros());
    jg_param(g, "idle", jg_shape(3), jg_zeros());
    jg_node *loss = jg_cross_entropy(jg_log_softmax(jg_relu(jg_matmul(x, w)), 1), y);
    jg_optimizer adam = jg_adam(1e-2);
    adam.l2 = 1e-3;
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){ .optimizer = adam });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_geq(count(p), 4, "%s", jg_program_warnings(p));
    float xs[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int32_t ys[2] = { 0, 2 };
    cr_assert_eq(jg_program_set(p, "x", xs, sizeof xs), JG_OK);
    cr_assert_eq(jg_program_set(p, "y", ys, sizeof ys), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_program_errmsg(p));
    jg_program_free(p);
    jg_graph_free(g);
}

/* Past what jg_program_warnings keeps, a last line says so and the count stays exact. */
Test(advice, many_warnings_are_all_counted)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 4));
    jg_node *sum = NULL;
    enum { N = 60 };
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "w%d", i);
        jg_node *t = jg_sum(jg_matmul(x, jg_param(g, name, jg_shape(4, 2), jg_zeros())),
                            JG_ALL_AXES, false);
        sum = sum ? jg_add(sum, t) : t;
    }
    jg_program *p = jg_compile(g, &sum, 1, &ref);
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(count(p), N);
    const char *text = jg_program_warnings(p);
    cr_assert(strstr(text, "parameter 'w0'") && strstr(text, "more warnings than fit here"),
              "%s", text);
    cr_assert_eq(text[strlen(text) - 1], '\n');
    jg_program_free(p);
    jg_graph_free(g);
}

static jg_program *compile_with_a_warning(jg_graph *g, bool print)
{
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 4));
    jg_node *y = jg_input(g, "y", JG_I32, jg_shape(2));
    jg_node *w = jg_param(g, "w", jg_shape(4, 3), jg_he_normal());
    jg_node *b = jg_param(g, "fc.bias", jg_shape(3), jg_zeros());
    jg_node *loss = jg_cross_entropy(jg_relu(jg_add(jg_matmul(x, w), b)), y);
    jg_program *p = jg_compile_train(g, loss, &(jg_train_opts){
        .optimizer = jg_adamw(1e-3, 0.01), .compile = { .print_warnings = print } });
    cr_assert(p, "%s", jg_errmsg(g));
    return p;
}

/* Both kinds of warning are printed: the graph's (relu) and the optimiser's (decayed bias). */
Test(advice, print_warnings_writes_them_to_stderr, .init = cr_redirect_stderr)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = compile_with_a_warning(g, true);
    fflush(stderr);
    cr_assert_eq(count(p), 2, "%s", jg_program_warnings(p));
    cr_assert_stderr_eq_str(jg_program_warnings(p));
    jg_program_free(p);
    jg_graph_free(g);
}

Test(advice, warnings_are_not_printed_unless_asked, .init = cr_redirect_stderr)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = compile_with_a_warning(g, false);
    fflush(stderr);
    cr_assert_eq(count(p), 2, "%s", jg_program_warnings(p));
    cr_assert_stderr_eq_str("");
    jg_program_free(p);
    jg_graph_free(g);
}
