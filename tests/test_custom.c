/* Tests of custom ops: forward values through libffi (f64 and f32, constants of every kind, a
 * 16-argument signature that spills to the stack, a non-elementwise output shape), gradients
 * (gradcheck composed with tanh, VALUE and GRAD in a backward, an input without backward,
 * second order stopping at the gradient op), every validation error, the copy of the
 * definition, and the JIT runtime's custom_call used directly on hand-made buffer slots. */
#include "support/support.h"

#include "ops/op.h"
#include "jit/custom_call.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the user's functions */

/* y = s x^2 */
static void scaled_square(const double *x, double *y, int64_t n, double s)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = s * x[i] * x[i];
}

/* dx = 2 s x dy */
static void scaled_square_grad(const double *x, const double *dy, double *dx, int64_t n,
                               double s)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = 2 * s * x[i] * dy[i];
}

static void scaled_square_f32(const float *x, float *y, int64_t n, double s)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (float)s * x[i] * x[i];
}

static void scaled_square_grad_f32(const float *x, const float *dy, float *dx, int64_t n,
                                   double s)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = 2 * (float)s * x[i] * dy[i];
}

/* y = a * b; the backward for a is b * dy (b gets none) */
static void mul2(const double *a, const double *b, double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = a[i] * b[i];
}

static void mul2_grad_a(const double *b, const double *dy, double *da, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        da[i] = b[i] * dy[i];
}

/* y = exp(x); dx = y dy reads the forward output (VALUE) */
static void my_exp(const double *x, double *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = exp(x[i]);
}

static void my_exp_grad(const double *y, const double *dy, double *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] * dy[i];
}

/* Row sums of an [rows, cols] matrix; the backward spreads dy[r] over row r. ny counts the
 * forward output (JG_CARG_NUMEL n_inputs in a backward). */
static void rowsum(const double *x, double *y, int64_t rows, int64_t cols)
{
    for (int64_t r = 0; r < rows; r++) {
        y[r] = 0;
        for (int64_t c = 0; c < cols; c++)
            y[r] += x[r * cols + c];
    }
}

static void rowsum_grad(const double *dy, double *dx, int64_t ny, int64_t nx)
{
    int64_t cols = nx / ny;
    for (int64_t i = 0; i < nx; i++)
        dx[i] = dy[i / cols];
}

/* y = k x + user->b: an int and a user pointer */
typedef struct offset {
    double b;
} offset;

static void affine(const double *x, double *y, int64_t n, int k, void *user)
{
    const offset *o = user;
    for (int64_t i = 0; i < n; i++)
        y[i] = k * x[i] + o->b;
}

/* 16 arguments: more doubles than xmm registers and more integers than integer registers, so
 * some travel on the stack. */
static void many(const double *x, double *y, int64_t n, double d0, double d1, double d2,
                 double d3, double d4, double d5, double d6, double d7, int64_t i0, int i1,
                 int64_t i2, double d8, int i3)
{
    double add = d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + (double)i0 + i1 + (double)i2 + i3;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] + add;
}

/* ---- definitions */

static jg_custom_def square_def(double s)
{
    return (jg_custom_def){
        .name = "scaled_square", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
        .forward = jg_cfn(scaled_square, jg_arg_input(0), jg_arg_output(), jg_arg_numel(-1),
                          jg_arg_double(s)),
        .backward[0] = jg_cfn(scaled_square_grad, jg_arg_input(0), jg_arg_grad(),
                              jg_arg_output(), jg_arg_numel(0), jg_arg_double(s)),
    };
}

static jg_custom_def square_def_f32(double s)
{
    return (jg_custom_def){
        .name = "scaled_square_f32", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
        .forward = jg_cfn(scaled_square_f32, jg_arg_input(0), jg_arg_output(),
                          jg_arg_numel(-1), jg_arg_double(s)),
        .backward[0] = jg_cfn(scaled_square_grad_f32, jg_arg_input(0), jg_arg_grad(),
                              jg_arg_output(), jg_arg_numel(-1), jg_arg_double(s)),
    };
}

static jg_custom_def mul2_def(void)
{
    return (jg_custom_def){
        .name = "mul2", .n_inputs = 2, .out_shape = JG_SAME_SHAPE,
        .forward = jg_cfn(mul2, jg_arg_input(0), jg_arg_input(1), jg_arg_output(),
                          jg_arg_numel(-1)),
        .backward[0] = jg_cfn(mul2_grad_a, jg_arg_input(1), jg_arg_grad(), jg_arg_output(),
                              jg_arg_numel(-1)),
    };
}

static jg_custom_def exp_def(void)
{
    return (jg_custom_def){
        .name = "my_exp", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
        .forward = jg_cfn(my_exp, jg_arg_input(0), jg_arg_output(), jg_arg_numel(-1)),
        .backward[0] = jg_cfn(my_exp_grad, jg_arg_value(), jg_arg_grad(), jg_arg_output(),
                              jg_arg_numel(-1)),
    };
}

static jg_node *square_of(jg_node *x, double s)
{
    jg_custom_def d = square_def(s);
    return jg_custom(&d, &x, 1);
}

static double *values_of(jg_node *n) { return t_eval(n); }

TestSuite(custom);

/* ---- forward */

Test(custom, forward_values_f64)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2, 3), (double[]){ 1, -2, 3, 0.5, 0, -1.5 });
    jg_node *y = square_of(x, 3.0);
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    cr_assert_eq(jg_node_shape(y).ndim, 2);
    cr_assert_eq(jg_node_shape(y).dim[1], 3);
    cr_assert_eq(jg_node_dtype(y), JG_F64);
    cr_assert_str_eq(jg_node_op_name(y), "custom");
    cr_assert_str_eq(jg_node_name(y), "scaled_square");
    double *v = values_of(y);
    t_assert_close(v, (double[]){ 3, 12, 27, 0.75, 0, 6.75 }, 6, 0);
    free(v);
    jg_graph_free(g);
}

Test(custom, forward_with_bound_input_reference_executor)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(4));
    jg_node *y = jg_add(square_of(x, 0.5), x); /* composed with built-in ops */
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .executor = JG_EXEC_REFERENCE });
    cr_assert(p, "%s", jg_errmsg(g));
    for (int run = 0; run < 2; run++) {
        double xv[4] = { 1 + run, 2, -3, 4 }, out[4];
        cr_assert_eq(jg_program_set(p, "x", xv, sizeof xv), JG_OK);
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        cr_assert_eq(jg_program_get(p, 0, out, sizeof out), JG_OK);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(out[i], 0.5 * xv[i] * xv[i] + xv[i], "run %d, element %d", run, i);
    }
    jg_program_free(p);
    jg_graph_free(g);
}

Test(custom, forward_f32)
{
    jg_graph *g = jg_graph_new();
    float xv[5] = { 1.1f, -2.3f, 0.7f, 4.9f, -0.1f };
    jg_node *x = jg_const(g, JG_F32, jg_shape(5), xv);
    jg_custom_def d = square_def_f32(1.7);
    jg_node *y = jg_custom(&d, &x, 1);
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    cr_assert_eq(jg_node_dtype(y), JG_F32);
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .executor = JG_EXEC_REFERENCE });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    float out[5];
    cr_assert_eq(jg_program_get(p, 0, out, sizeof out), JG_OK);
    for (int i = 0; i < 5; i++) /* computed in float by the function itself: exact */
        cr_assert_eq(out[i], (float)1.7 * xv[i] * xv[i], "element %d", i);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(custom, constants_of_every_kind)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    offset o = { .b = 0.25 };
    jg_custom_def d = { .name = "affine", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
                        .forward = jg_cfn(affine, jg_arg_input(0), jg_arg_output(),
                                          jg_arg_numel(0), jg_arg_int(-4),
                                          jg_arg_pointer(&o)) };
    double *v = values_of(jg_custom(&d, &x, 1));
    t_assert_close(v, (double[]){ -3.75, -7.75, -11.75 }, 3, 0);
    free(v);

    jg_custom_def m = { .name = "many", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
                        .forward = jg_cfn(many, jg_arg_input(0), jg_arg_output(),
                                          jg_arg_numel(-1), jg_arg_double(1), jg_arg_double(2),
                                          jg_arg_double(3), jg_arg_double(4), jg_arg_double(5),
                                          jg_arg_double(6), jg_arg_double(7), jg_arg_double(8),
                                          jg_arg_int64(1000000000000), jg_arg_int(-7),
                                          jg_arg_int64(-3), jg_arg_double(0.5),
                                          jg_arg_int(100)) };
    cr_assert_eq(m.forward.n_args, JG_CUSTOM_MAX_ARGS);
    v = values_of(jg_custom(&m, &x, 1));
    double add = 36 + 1e12 - 7 - 3 + 0.5 + 100;
    t_assert_close(v, (double[]){ 1 + add, 2 + add, 3 + add }, 3, 0);
    free(v);
    jg_graph_free(g);
}

Test(custom, output_shape_of_its_own)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(3, 4), 5);
    jg_custom_def d = { .name = "rowsum", .n_inputs = 1, .out_shape = jg_shape(3),
                        .forward = jg_cfn(rowsum, jg_arg_input(0), jg_arg_output(),
                                          jg_arg_int64(3), jg_arg_int64(4)),
                        .backward[0] = jg_cfn(rowsum_grad, jg_arg_grad(), jg_arg_output(),
                                              jg_arg_numel(1), jg_arg_numel(-1)) };
    jg_node *y = jg_custom(&d, &x, 1);
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    cr_assert_eq(jg_node_shape(y).ndim, 1);
    cr_assert_eq(jg_node_shape(y).dim[0], 3);
    double *got = values_of(y), *want = values_of(jg_sum(x, jg_axes(1), false));
    t_assert_close(got, want, 3, 1e-15);
    free(got), free(want);
    t_gradcheck(g, jg_tanh(y), &x, 1);
    jg_graph_free(g);
}

Test(custom, definition_is_copied)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(2), (double[]){ 2, 3 });
    char name[32] = "scaled_square";
    jg_custom_def d = square_def(2.0);
    d.name = name;
    jg_node *y = jg_custom(&d, &x, 1);
    /* the caller's struct and name change afterwards: the node keeps what it was given */
    strcpy(name, "clobbered");
    memset(&d, 0xff, sizeof d);
    cr_assert_str_eq(jg_node_name(y), "scaled_square");
    double *v = values_of(y);
    t_assert_close(v, (double[]){ 8, 18 }, 2, 0);
    free(v);
    jg_graph_free(g);
}

/* ---- gradients */

Test(custom, gradcheck_composed_with_tanh)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(3, 4), 11);
    jg_node *f = jg_tanh(square_of(jg_tanh(w), 1.5));
    t_gradcheck(g, f, &w, 1);
    t_gradcheck_opts(g, f, &w, 1, &(jg_gradcheck_opts){ .mode = JG_CHECK_DIRECTIONS });
    jg_graph_free(g);
}

Test(custom, gradient_values_and_names)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param_as(g, "x", JG_F64, jg_shape(3), jg_zeros());
    double xv[3] = { 1, -2, 0.5 };
    cr_assert_eq(jg_param_set(g, "x", xv, sizeof xv), JG_OK);
    jg_node *f = jg_sum(square_of(x, 3.0), JG_ALL_AXES, false);
    jg_node *dx = NULL;
    cr_assert_eq(jg_grad(g, f, &x, 1, &dx), JG_OK, "%s", jg_errmsg(g));
    cr_assert(dx);
    cr_assert_str_eq(jg_node_op_name(dx), "custom");
    cr_assert_str_eq(jg_node_name(dx), "scaled_square.grad0");
    double *v = values_of(dx);
    t_assert_close(v, (double[]){ 6, -12, 3 }, 3, 0);
    free(v);
    /* second order stops at the gradient op: it has no gradient of its own */
    jg_node *ddx = (jg_node *)1;
    cr_assert_eq(jg_grad(g, jg_sum(dx, JG_ALL_AXES, false), &x, 1, &ddx), JG_OK);
    cr_assert_null(ddx);
    jg_graph_free(g);
}

Test(custom, backward_reads_value_and_grad)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(5), 3);
    jg_custom_def d = exp_def();
    jg_node *y = jg_custom(&d, &x, 1);
    double *got = values_of(y), *want = values_of(jg_exp(x));
    t_assert_close(got, want, 5, 1e-15);
    free(got), free(want);
    t_gradcheck(g, jg_tanh(jg_scale(y, 0.3)), &x, 1);
    jg_graph_free(g);
}

Test(custom, two_inputs_backward_for_one)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", jg_shape(2, 3), 1);
    jg_node *b = t_param(g, "b", jg_shape(2, 3), 2);
    jg_custom_def d = mul2_def();
    jg_node *y = jg_custom(&d, (jg_node *[]){ a, b }, 2);
    cr_assert(jg_node_ok(y), "%s", jg_errmsg(g));
    double *got = values_of(y), *want = values_of(jg_mul(a, b));
    t_assert_close(got, want, 6, 0);
    free(got), free(want);
    jg_node *f = jg_sum(jg_tanh(y), JG_ALL_AXES, false);
    jg_node *grads[2] = { (jg_node *)1, (jg_node *)1 };
    cr_assert_eq(jg_grad(g, f, (jg_node *[]){ a, b }, 2, grads), JG_OK, "%s", jg_errmsg(g));
    cr_assert(grads[0]);
    cr_assert_str_eq(jg_node_name(grads[0]), "mul2.grad0");
    cr_assert_null(grads[1], "input 1 has no backward: no gradient");
    t_gradcheck(g, jg_tanh(y), &a, 1);
    /* b's gradient through another path still flows; the custom op adds nothing to it */
    jg_node *f2 = jg_add(jg_sum(y, JG_ALL_AXES, false), jg_sum(b, JG_ALL_AXES, false));
    jg_node *db = NULL;
    cr_assert_eq(jg_grad(g, f2, &b, 1, &db), JG_OK);
    double *ones = values_of(db);
    t_assert_close(ones, (double[]){ 1, 1, 1, 1, 1, 1 }, 6, 0);
    free(ones);
    jg_graph_free(g);
}

Test(custom, f32_gradient)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_param(g, "x", jg_shape(4), jg_zeros());
    float xv[4] = { 0.5f, -1.25f, 2, 3 };
    cr_assert_eq(jg_param_set(g, "x", xv, sizeof xv), JG_OK);
    jg_custom_def d = square_def_f32(2.0);
    jg_node *f = jg_sum(jg_custom(&d, &x, 1), JG_ALL_AXES, false);
    jg_node *dx = NULL;
    cr_assert_eq(jg_grad(g, f, &x, 1, &dx), JG_OK, "%s", jg_errmsg(g));
    cr_assert_eq(jg_node_dtype(dx), JG_F32);
    double *v = values_of(dx);
    t_assert_close(v, (double[]){ 2, -5, 8, 12 }, 4, 0);
    free(v);
    /* float precision inside the function: a looser check */
    t_gradcheck_opts(g, jg_tanh(jg_scale(f, 0.05)), &x, 1,
                     &(jg_gradcheck_opts){ .eps = 1e-3, .rtol = 1e-3, .atol = 1e-4 });
    jg_graph_free(g);
}

/* ---- validation */

/* Builds def on x (1 input) or xs and asserts the call is poisoned with (st, part). */
static void expect_error(const jg_custom_def *d, jg_node *const *xs, int n, jg_status st,
                         const char *part)
{
    jg_graph *g = jg_node_graph(xs[0]);
    jg_graph_clear_error(g);
    jg_node *y = jg_custom(d, xs, n);
    cr_assert(!jg_node_ok(y), "expected an error containing '%s'", part);
    t_assert_error(g, st, part);
    cr_assert(strstr(jg_errmsg(g), "test_custom.c:"), "no location: %s", jg_errmsg(g));
    cr_assert(strstr(jg_errmsg(g), "jg_custom: "), "no op name: %s", jg_errmsg(g));
}

Test(custom, validation_errors)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(3), (double[]){ 1, 2, 3 });
    jg_node *x32 = jg_fill(g, JG_F32, jg_shape(3), 1);
    jg_node *xi = jg_fill(g, JG_I32, jg_shape(3), 1);
    jg_custom_def d;

    expect_error(NULL, &x, 1, JG_ERR_ARG, "jg_custom: def is NULL");
    d = square_def(1), d.name = NULL;
    expect_error(&d, &x, 1, JG_ERR_ARG, "def->name is NULL");
    d = square_def(1);
    expect_error(&d, (jg_node *[]){ x, x }, 2, JG_ERR_ARG,
                 "jg_custom: 'scaled_square': takes 1 input, got 2");
    d = mul2_def();
    expect_error(&d, &x, 1, JG_ERR_ARG, "'mul2': takes 2 inputs, got 1");
    expect_error(&d, (jg_node *[]){ x, x32 }, 2, JG_ERR_DTYPE,
                 "'mul2': dtypes differ: input 0 is f64, input 1 is f32");
    d = square_def(1);
    expect_error(&d, &xi, 1, JG_ERR_DTYPE, "'scaled_square': input 0 is i32");
    d.n_inputs = 0;
    expect_error(&d, &x, 1, JG_ERR_ARG, "n_inputs is 0; it must be 1..8");
    d.n_inputs = JG_CUSTOM_MAX_INPUTS + 1;
    expect_error(&d, &x, 1, JG_ERR_ARG, "n_inputs is 9");
    d = square_def(1), d.out_shape = (jg_shape){ .ndim = 2, .dim = { 3, 0 } };
    expect_error(&d, &x, 1, JG_ERR_SHAPE, "out_shape [3,0] is invalid");
    d = square_def(1), d.out_shape = (jg_shape){ .ndim = -2 };
    expect_error(&d, &x, 1, JG_ERR_SHAPE, "out_shape has ndim -2; it must be -1");
    d = square_def(1), d.forward.fn = NULL;
    expect_error(&d, &x, 1, JG_ERR_ARG, "'scaled_square': forward.fn is NULL");
    d = square_def(1), d.forward.n_args = JG_CUSTOM_MAX_ARGS + 1;
    expect_error(&d, &x, 1, JG_ERR_ARG, "forward has 17 arguments; at most 16");
    d = square_def(1), d.forward.n_args = -1;
    expect_error(&d, &x, 1, JG_ERR_ARG, "forward has -1 arguments");
    d = square_def(1), d.forward.args[3].kind = (jg_carg_kind)42;
    expect_error(&d, &x, 1, JG_ERR_ARG, "forward argument 3: unknown kind 42");
    d = square_def(1), d.forward.args[0].index = 1;
    expect_error(&d, &x, 1, JG_ERR_ARG,
                 "forward argument 0: JG_CARG_INPUT index 1 is out of range [0, 1)");
    d = square_def(1), d.forward.args[0].index = -1;
    expect_error(&d, &x, 1, JG_ERR_ARG, "JG_CARG_INPUT index -1 is out of range");
    d = square_def(1), d.forward.args[2].index = 1;
    expect_error(&d, &x, 1, JG_ERR_ARG,
                 "forward argument 2: JG_CARG_NUMEL index 1 is out of range [-1, 0]");
    d = square_def(1), d.forward.args[0] = jg_arg_value();
    expect_error(&d, &x, 1, JG_ERR_ARG,
                 "forward argument 0: JG_CARG_VALUE is only for a backward");
    d = square_def(1), d.forward.args[0] = jg_arg_grad();
    expect_error(&d, &x, 1, JG_ERR_ARG, "JG_CARG_GRAD is only for a backward");
    d = square_def(1), d.forward.args[1] = jg_arg_input(0);
    expect_error(&d, &x, 1, JG_ERR_ARG, "forward has no JG_CARG_OUTPUT argument");
    d = square_def(1), d.forward.args[2] = jg_arg_int((int64_t)INT32_MAX + 1);
    expect_error(&d, &x, 1, JG_ERR_ARG, "JG_CARG_INT constant 2147483648 does not fit");
    d = square_def(1), d.backward[1] = d.backward[0];
    expect_error(&d, &x, 1, JG_ERR_ARG, "backward[1] is set but the op has 1 input");
    d = square_def(1), d.backward[0].args[0].index = 2;
    expect_error(&d, &x, 1, JG_ERR_ARG,
                 "backward[0] argument 0: JG_CARG_INPUT index 2 is out of range");
    d = square_def(1), d.backward[0].args[3].index = 2;
    expect_error(&d, &x, 1, JG_ERR_ARG,
                 "backward[0] argument 3: JG_CARG_NUMEL index 2 is out of range [-1, 1]");
    d = square_def(1), d.backward[0].n_args = 20;
    expect_error(&d, &x, 1, JG_ERR_ARG, "backward[0] has 20 arguments");
    d = square_def(1), d.backward[0].args[2] = jg_arg_grad();
    expect_error(&d, &x, 1, JG_ERR_ARG, "backward[0] has no JG_CARG_OUTPUT argument");
    d = square_def(1);
    expect_error(&d, (jg_node *[]){ x, NULL }, 2, JG_ERR_ARG, "jg_custom: operand 1 is NULL");

    /* the first error stands, later builders and compiles fail */
    jg_graph_clear_error(g);
    d = square_def(1), d.forward.fn = NULL;
    jg_node *bad = jg_custom(&d, &x, 1);
    jg_node *later = square_of(bad, 1);
    cr_assert(!jg_node_ok(later));
    t_assert_error(g, JG_ERR_ARG, "forward.fn is NULL");
    cr_assert_null(jg_compile(g, &x, 1, NULL));
    jg_graph_free(g);
}

Test(custom, no_graph_to_record_on)
{
    jg_custom_def d = square_def(1);
    cr_assert(!jg_node_ok(jg_custom(&d, NULL, 1)));
    cr_assert(!jg_node_ok(jg_custom(&d, (jg_node *[]){ NULL }, 1)));
    jg_graph *g = jg_graph_new();
    jg_node *x = t_const(g, jg_shape(1), (double[]){ 1 });
    cr_assert(!jg_node_ok(jg_custom(&d, &x, 0)));
    cr_assert_eq(jg_graph_status(g), JG_OK); /* n = 0: no operand names the graph */
    jg_graph_free(g);
}

Test(custom, valid_definitions_pass_the_verifier)
{
    jg_graph *g = jg_graph_new();
    jg_node *a = t_param(g, "a", jg_shape(4), 1), *b = t_param(g, "b", jg_shape(4), 2);
    jg_custom_def d = mul2_def();
    jg_node *f = jg_sum(jg_custom(&d, (jg_node *[]){ a, b }, 2), JG_ALL_AXES, false);
    jg_node *da = NULL;
    cr_assert_eq(jg_grad(g, f, &a, 1, &da), JG_OK);
    char why[256] = "";
    cr_assert_eq(graph_verify(g, why, sizeof why), JG_OK, "%s", why);
    jg_graph_free(g);
}

/* ---- custom_call: the JIT runtime's calls, on hand-made buffer slots */

Test(custom, custom_call_direct)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(4));
    jg_node *y = square_of(x, 2.0);
    char err[256] = "";
    custom_call *c = NULL;
    /* slots: 0 the output, 1 unused, 2 the input */
    cr_assert_eq(custom_call_prepare(y, (int[]){ 2 }, 0, &c, err, sizeof err), JG_OK, "%s", err);
    double xa[4] = { 1, 2, 3, 4 }, xb[4] = { -1, 0.5, 0, 10 }, out[4] = { 0 };
    void *bufs[3] = { out, NULL, xa };
    custom_call_run(c, bufs);
    t_assert_close(out, (double[]){ 2, 8, 18, 32 }, 4, 0);
    bufs[2] = xb; /* the runtime may move buffers: pointers are read at each call */
    custom_call_run(c, bufs);
    t_assert_close(out, (double[]){ 2, 0.5, 0, 200 }, 4, 0);
    custom_call_free(c);

    /* the gradient op: operands (x, y, dy), VALUE/GRAD already mapped to slots */
    jg_node *f = jg_sum(y, JG_ALL_AXES, false), *dx = NULL;
    cr_assert_eq(jg_grad(g, f, &x, 1, &dx), JG_OK);
    cr_assert_str_eq(jg_node_op_name(dx), "custom");
    double dy[4] = { 1, 2, 3, 4 }, grad[4];
    void *gbufs[4] = { xb, out, dy, grad };
    cr_assert_eq(custom_call_prepare(dx, (int[]){ 0, 1, 2 }, 3, &c, err, sizeof err), JG_OK);
    custom_call_run(c, gbufs);
    t_assert_close(grad, (double[]){ -4, 4, 0, 160 }, 4, 0); /* 2 s x dy */
    custom_call_free(c);

    /* not a custom node */
    c = (custom_call *)1;
    cr_assert_eq(custom_call_prepare(x, (int[]){ 0 }, 1, &c, err, sizeof err), JG_ERR_ARG);
    cr_assert_null(c);
    cr_assert(strstr(err, "not a custom op"), "%s", err);
    custom_call_free(NULL);
    jg_graph_free(g);
}

Test(custom, custom_call_f32_and_many_arguments)
{
    jg_graph *g = jg_graph_new();
    jg_node *x32 = jg_input(g, "x32", JG_F32, jg_shape(3));
    jg_custom_def d = square_def_f32(0.5);
    jg_node *y32 = jg_custom(&d, &x32, 1);
    char err[256] = "";
    custom_call *c = NULL;
    cr_assert_eq(custom_call_prepare(y32, (int[]){ 1 }, 0, &c, err, sizeof err), JG_OK, "%s", err);
    float xf[3] = { 2, -4, 6 }, of[3];
    custom_call_run(c, (void *[]){ of, xf });
    cr_assert(of[0] == 2 && of[1] == 8 && of[2] == 18);
    custom_call_free(c);

    jg_node *x = jg_input(g, "x", JG_F64, jg_shape(2));
    jg_custom_def m = { .name = "many", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
                        .forward = jg_cfn(many, jg_arg_input(0), jg_arg_output(),
                                          jg_arg_numel(0), jg_arg_double(1), jg_arg_double(2),
                                          jg_arg_double(3), jg_arg_double(4), jg_arg_double(5),
                                          jg_arg_double(6), jg_arg_double(7), jg_arg_double(8),
                                          jg_arg_int64(-5), jg_arg_int(6), jg_arg_int64(7),
                                          jg_arg_double(0.25), jg_arg_int(-8)) };
    jg_node *y = jg_custom(&m, &x, 1);
    cr_assert_eq(custom_call_prepare(y, (int[]){ 0 }, 1, &c, err, sizeof err), JG_OK, "%s", err);
    double xv[2] = { 1, 2 }, out[2];
    custom_call_run(c, (void *[]){ xv, out });
    double add = 36 - 5 + 6 + 7 + 0.25 - 8;
    t_assert_close(out, (double[]){ 1 + add, 2 + add }, 2, 0);
    custom_call_free(c);
    jg_graph_free(g);
}

/* Through the JIT: the custom call sits between fused kernels, forward and backward, and
 * gives what the reference executor gives. */
Test(custom, runs_inside_jit_programs)
{
    jg_graph *g = jg_graph_new();
    jg_node *w = t_param(g, "w", jg_shape(5, 7), 3);
    jg_custom_def d = square_def(0.75);
    jg_node *y = jg_tanh(jg_custom(&d, &(jg_node *){ jg_tanh(w) }, 1));
    jg_node *loss = jg_sum(jg_mul(y, y), JG_ALL_AXES, false), *dw;
    cr_assert_eq(jg_grad(g, loss, &w, 1, &dw), JG_OK, "%s", jg_errmsg(g));
    jg_node *outs[2] = { loss, dw };
    double got[2][36];
    for (int e = 0; e < 2; e++) {
        jg_program *p = jg_compile(g, outs, 2, &(jg_opts){
            .executor = e ? JG_EXEC_REFERENCE : JG_EXEC_JIT });
        cr_assert(p, "%s", jg_errmsg(g));
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
        jg_program_get(p, 0, got[e], sizeof(double));
        jg_program_get(p, 1, got[e] + 1, 35 * sizeof(double));
        if (!e) {
            jg_program_stats st;
            jg_program_stats_get(p, &st);
            cr_assert_gt(st.kernels, 2, "custom calls between JIT kernels");
        }
        jg_program_free(p);
    }
    t_assert_close(got[0], got[1], 36, 1e-12);
    jg_graph_free(g);
}
