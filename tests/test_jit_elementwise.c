/* The JIT executor (src/jit/) against the reference executor, op by op: every op of the public
 * API on last-dimension sizes 1, 15, 17 and 1023 (one element, below, above and far above a
 * vector), multi-dimensional and broadcasting operands ([17,1] with [1,15], scalars), f32 and
 * f64, and i32 where the op takes it. Both executors compile the same outputs of the same
 * graph and run on the same inputs; f32 must agree to 1e-5 (|jit - ref| <= tol * max(1,
 * |ref|), transcendental ops included), f64 to 1e-12, i32 exactly. Then gradients through the
 * JIT (f64, 1e-10), a finite-difference check of JIT gradients run by the JIT itself, and the
 * JIT's own settings: 1 vs 2 threads bit for bit, vector widths 512/256/32, fusion off.
 *
 * Compile time dominates (a kernel costs ~10 ms, a GEMM kernel ~100 ms), so each op runs on
 * its own in one shape per dtype (f32 [1023], f64 [17]) and as parts of fused chains on the
 * others; reductions run sum and max over every loop structure and the other reductions
 * over a representative few.
 *
 * A failure names the output's op, shape, dtype, the element (flat and multi-index) and both
 * values. A compile error "internal: no kernel for <op>" means that op's JIT kernel has not
 * been written yet. */
#include "support/jit_compare.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_elementwise, .timeout = 60);

/* ---------------------------------------------------------------- elementwise */

/* Every one-operand op on x (signed), p (positive), q (ties, exact zeros). */
static void unary_ops(olist *l, jg_node *x, jg_node *p, jg_node *q)
{
    jg_dtype t = jg_node_dtype(x);
    push(l, jg_neg(x));
    push(l, jg_abs(x));
    push(l, jg_abs(q));
    push(l, jg_exp(x));
    push(l, jg_exp(jg_scale(x, 40)));   /* overflow to inf and underflow to 0 */
    push(l, jg_log(p));
    push(l, jg_sqrt(p));
    push(l, jg_rsqrt(p));
    push(l, jg_square(x));
    push(l, jg_tanh(x));
    push(l, jg_tanh(jg_scale(x, 10)));
    push(l, jg_sigmoid(x));
    push(l, jg_sigmoid(jg_scale(x, 30))); /* both tails */
    push(l, jg_relu(x));
    push(l, jg_relu(q));
    push(l, jg_softplus(x));
    push(l, jg_softplus(jg_scale(x, 30)));
    push(l, jg_pow(p, 2.5));
    push(l, jg_pow(p, -1.5));
    push(l, jg_pow(p, 0.5));
    push(l, jg_pow(x, 2));
    push(l, jg_pow(x, 3));
    push(l, jg_pow(p, 0));
    push(l, jg_leaky_relu(x, 0.1));
    push(l, jg_leaky_relu(q, 0.25));
    push(l, jg_elu(x, 1.5));
    push(l, jg_elu(q, 0.5));
    push(l, jg_clamp(x, -0.5, 0.7));
    push(l, jg_clamp(q, -0.5, 0.5)); /* values exactly at the bounds */
    push(l, jg_cast(x, t == JG_F32 ? JG_F64 : JG_F32));
    push(l, jg_cast(jg_scale(x, 10), JG_I32)); /* truncation toward zero */
    push(l, jg_cast(jg_scale(x, 3e9), JG_I32)); /* saturation */
    push(l, jg_stop_gradient(x));
    push(l, jg_scale(x, -2.5));
    push(l, jg_shift(x, 0.75));
}

/* Every two-operand op on a, b (signed), d (positive divisor), u, v (ties); the shapes of
 * each pair broadcast. */
static void binary_ops(olist *l, jg_node *a, jg_node *b, jg_node *d, jg_node *u, jg_node *v)
{
    push(l, jg_add(a, b));
    push(l, jg_sub(a, b));
    push(l, jg_mul(a, b));
    push(l, jg_div(a, d));
    push(l, jg_div(a, b));
    push(l, jg_maximum(a, b));
    push(l, jg_minimum(a, b));
    push(l, jg_maximum(u, v));
    push(l, jg_minimum(u, v));
    push(l, jg_lt(u, v));
    push(l, jg_le(u, v));
    push(l, jg_gt(u, v));
    push(l, jg_ge(u, v));
    push(l, jg_eq(u, v));
    push(l, jg_ne(u, v));
    push(l, jg_where(u, a, b));            /* float condition with exact zeros */
    push(l, jg_where(jg_gt(a, b), a, b));
    push(l, jg_where(jg_le(u, v), v, u));
}

/* The same code paths in fewer kernels: each output a fused chain of several ops (lane-wise
 * intrinsics, libm calls per lane, selects, compares, casts), for the shapes where every op
 * on its own would cost too much compile time. */
static void chain_ops(olist *l, jg_node *x, jg_node *y, jg_node *p, jg_node *q, jg_node *r)
{
    jg_dtype t = jg_node_dtype(x);
    push(l, jg_add(jg_mul(x, y), jg_div(jg_sub(x, y), p)));
    push(l, jg_add(jg_tanh(jg_sub(x, y)), jg_exp(x)));
    push(l, jg_where(q, jg_maximum(x, y), jg_minimum(x, y)));
    push(l, jg_sub(jg_add(jg_mul(jg_sigmoid(x), jg_log(p)), jg_sqrt(p)), jg_rsqrt(p)));
    push(l, jg_add(jg_add(jg_softplus(x), jg_elu(x, 1.5)),
                   jg_add(jg_leaky_relu(x, 0.1), jg_clamp(jg_relu(q), -0.5, 0.5))));
    push(l, jg_add(jg_add(jg_lt(q, r), jg_scale(jg_eq(q, r), 2)),
                   jg_add(jg_scale(jg_ge(q, r), 4), jg_scale(jg_ne(q, r), 8))));
    push(l, jg_add(jg_add(jg_le(q, r), jg_scale(jg_gt(q, r), 2)), jg_pow(p, 2.5)));
    push(l, jg_cast(jg_scale(x, 10), JG_I32));
    push(l, jg_cast(jg_shift(jg_square(jg_abs(jg_neg(x))), 0.5), t == JG_F32 ? JG_F64 : JG_F32));
}

/* Every op on its own (full), or the chains (!full), on inputs of shape s. */
static void elementwise_on(jg_dtype t, jg_shape s, bool full)
{
    tctx c;
    ctx_init(&c, (uint64_t)jg_shape_numel(s) * 7 + (uint64_t)t);
    jg_node *x = input(&c, t, s, SIGNED), *y = input(&c, t, s, SIGNED);
    jg_node *p = input(&c, t, s, POS), *q = input(&c, t, s, TIES), *r = input(&c, t, s, TIES);
    olist l = { .n = 0 };
    if (full) {
        unary_ops(&l, x, p, q);
        binary_ops(&l, x, y, p, q, r);
    } else {
        chain_ops(&l, x, y, p, q, r);
    }
    char buf[128], sh[64];
    t_shape_text(s, sh, sizeof sh);
    snprintf(buf, sizeof buf, "%s %s %s", full ? "elementwise" : "elementwise chains",
             jg_dtype_str(t), sh);
    check(&c, l.o, l.n, TOL, buf);
    ctx_fini(&c);
}

/* Each op alone: f32 on 1023 elements (full vectors and a 15-lane tail at 16 lanes), f64 on
 * 17 (two full vectors and a 1-lane tail at 8 lanes). */
Test(jit_elementwise, elementwise_every_op_f32)
{
    elementwise_on(JG_F32, jg_shape(1023), true);
}

Test(jit_elementwise, elementwise_every_op_f64)
{
    elementwise_on(JG_F64, jg_shape(17), true);
}

/* Sizes 1, 15, 17, 1023 and multi-dimensional shapes, both float dtypes. */
Test(jit_elementwise, elementwise_shapes)
{
    jg_shape shapes[7] = { jg_shape(1), jg_shape(15), jg_shape(17), jg_shape(1023),
                           jg_shape(3, 17), jg_shape(2, 3, 15), JG_SCALAR };
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 7; i++)
            elementwise_on(FLOATS[k], shapes[i], false);
}

/* The binary ops in four kernels, for the less central broadcasting cases. */
static void binary_chain(olist *l, jg_node *a, jg_node *b, jg_node *d, jg_node *u, jg_node *v)
{
    push(l, jg_add(jg_mul(a, b), jg_sub(b, jg_div(a, d))));
    push(l, jg_where(u, jg_maximum(a, b), jg_minimum(b, a)));
    push(l, jg_add(jg_add(jg_add(jg_lt(u, v), jg_scale(jg_eq(u, v), 2)),
                          jg_add(jg_scale(jg_ge(u, v), 4), jg_scale(jg_ne(u, v), 8))),
                   jg_add(jg_scale(jg_le(v, u), 16), jg_scale(jg_gt(v, u), 32))));
    push(l, jg_div(a, b));
}

/* Operands of different shapes: [17,1] with [1,15], scalars, leading dims, size-1 middles. */
Test(jit_elementwise, elementwise_broadcasting)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 11 + (uint64_t)k);
        olist l = { .n = 0 };
        jg_node *col = input(&c, t, jg_shape(17, 1), SIGNED), *row = input(&c, t, jg_shape(1, 15), SIGNED);
        jg_node *colp = input(&c, t, jg_shape(17, 1), POS), *rowp = input(&c, t, jg_shape(1, 15), POS);
        jg_node *colq = input(&c, t, jg_shape(17, 1), TIES), *rowq = input(&c, t, jg_shape(1, 15), TIES);
        binary_ops(&l, col, row, rowp, colq, rowq);
        binary_chain(&l, row, col, colp, rowq, colq);
        jg_node *sc = input(&c, t, JG_SCALAR, SIGNED), *scp = input(&c, t, JG_SCALAR, POS);
        jg_node *scq = input(&c, t, JG_SCALAR, TIES);
        jg_node *m = input(&c, t, jg_shape(3, 17), SIGNED), *mp = input(&c, t, jg_shape(3, 17), POS);
        jg_node *mq = input(&c, t, jg_shape(3, 17), TIES);
        binary_chain(&l, m, sc, scp, mq, scq);
        binary_chain(&l, sc, m, mp, scq, mq);
        jg_node *v = input(&c, t, jg_shape(15), SIGNED), *vp = input(&c, t, jg_shape(15), POS);
        jg_node *vq = input(&c, t, jg_shape(15), TIES);
        jg_node *big = input(&c, t, jg_shape(2, 3, 15), SIGNED);
        jg_node *bigq = input(&c, t, jg_shape(2, 3, 15), TIES);
        binary_chain(&l, big, v, vp, bigq, vq);
        jg_node *mid = input(&c, t, jg_shape(2, 1, 1023), SIGNED);
        jg_node *midq = input(&c, t, jg_shape(2, 1, 1023), TIES);
        jg_node *c31 = input(&c, t, jg_shape(3, 1), SIGNED), *c31p = input(&c, t, jg_shape(3, 1), POS);
        jg_node *c31q = input(&c, t, jg_shape(3, 1), TIES);
        binary_chain(&l, mid, c31, c31p, midq, c31q);
        /* where with three different shapes, and chains mixing them */
        push(&l, jg_where(colq, row, sc));
        push(&l, jg_where(scq, col, row));
        push(&l, jg_add(jg_mul(col, row), jg_exp(jg_sub(sc, row))));
        push(&l, jg_div(jg_tanh(jg_add(big, v)), jg_shift(jg_abs(jg_sum(big, jg_axes(0), true)), 1)));
        char buf[64];
        snprintf(buf, sizeof buf, "broadcasting %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

/* Rows whose last dim is a few columns (pooling's backward: [N,C,OH,2,OW,2] against the
 * window's maximum broadcast over its columns): 2, 3 and 4 columns after 7, 20 and 33 (a
 * masked tail, a full vector plus tail), both float dtypes and i32. */
Test(jit_elementwise, few_columns)
{
    const jg_dtype types[3] = { JG_F32, JG_F64, JG_I32 };
    for (int k = 0; k < 3; k++) {
        jg_dtype t = types[k];
        tctx c;
        ctx_init(&c, 41 + (uint64_t)k);
        olist l = { .n = 0 };
        const int64_t rows[3] = { 7, 20, 33 };
        for (int64_t cols = 2; cols <= 4; cols++) {
            jg_shape s = jg_shape(3, rows[cols - 2], cols), one = jg_shape(3, rows[cols - 2], 1);
            jg_node *x = input(&c, t, s, t == JG_I32 ? SIGNED : TIES);
            jg_node *m = jg_max(x, jg_axes(2), true);
            push(&l, jg_mul(jg_eq(x, m), input(&c, t, one, SIGNED)));
            push(&l, jg_add(x, input(&c, t, jg_shape(cols), SIGNED)));
        }
        jg_node *w = input(&c, t, jg_shape(2, 3, 2, 7, 2), SIGNED);
        jg_node *y = jg_max(w, jg_axes(2, 4), true);
        push(&l, jg_mul(jg_eq(w, y), jg_sum(jg_eq(w, y), jg_axes(2, 4), true)));
        char buf[64];
        snprintf(buf, sizeof buf, "few columns %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

/* One-element subexpressions inside large kernels (Adam's bias corrections in a
 * one-parameter model): computed once, in the kernel's entry block, with the reference's
 * values in elementwise kernels with a masked tail, reductions and multi-output kernels,
 * every dtype. */
Test(jit_elementwise, one_element_subexpressions)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        bool f = t != JG_I32;
        tctx c;
        ctx_init(&c, 61 + (uint64_t)k);
        olist l = { .n = 0 };
        jg_node *sc = input(&c, t, JG_SCALAR, SIGNED), *scp = input(&c, t, JG_SCALAR, POS);
        jg_node *one = input(&c, t, jg_shape(1, 1), SIGNED);
        jg_node *m = input(&c, t, jg_shape(3, 1023), SIGNED);
        jg_node *big = input(&c, t, jg_shape(64, 33), SIGNED);
        /* a scalar expression of scalars, and one through a [1,1] operand */
        jg_node *s1 = f ? jg_div(jg_exp(sc), jg_shift(jg_sqrt(scp), 1)) : jg_add(jg_mul(sc, scp), scp);
        jg_node *s2 = jg_sub(jg_mul(one, sc), scp);
        push(&l, jg_add(jg_mul(m, s1), s2));
        push(&l, jg_sum(jg_mul(m, s1), jg_axes(1), false));
        /* a column sum and an elementwise result over one input: a multi-output kernel */
        jg_node *scaled = jg_mul(big, s2);
        push(&l, jg_sum(scaled, jg_axes(0), false));
        push(&l, jg_sub(scaled, s1));
        /* one element sliced out of a large operand; rows of 2 columns (interleaved) and a
         * 2x2 windowed reduction with one-element factors */
        jg_node *corner = jg_slice(m, 1, 5, 6, 1);
        push(&l, jg_mul(m, jg_slice(corner, 0, 2, 3, 1)));
        jg_node *cols = input(&c, t, jg_shape(3, 20, 2), SIGNED);
        push(&l, jg_add(jg_mul(cols, s1), s2));
        jg_node *win = input(&c, t, jg_shape(2, 3, 2, 7, 2), SIGNED);
        push(&l, jg_max(jg_mul(win, s2), jg_axes(2, 4), false));
        char buf[64];
        snprintf(buf, sizeof buf, "one-element subexpressions %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
    /* once per kernel call: the IR calls exp in one place (the entry block), not in the
     * vector loop and again in its masked tail (f64, whose exp is a call; f32's is inline) */
    jg_graph *g = jg_graph_new();
    jg_node *sc = jg_input(g, "s", JG_F64, JG_SCALAR);
    jg_node *m = jg_input(g, "m", JG_F64, jg_shape(3, 1023));
    jg_node *y = jg_mul(m, jg_exp(sc));
    jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .keep_text = true, .num_threads = 1 });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_stats st;
    cr_assert_eq(jg_program_stats_get(p, &st), JG_OK);
    cr_assert_eq(st.kernels, 1);
    const char *ir = jg_program_kernel_ir(p, 0);
    cr_assert(ir);
    int calls = 0; /* lines "%9 = tail call <8 x double> @llvm.exp.v8f64(...)" */
    for (const char *line = ir; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *end = strchr(line, '\n') ? strchr(line, '\n') : line + strlen(line);
        const char *call = strstr(line, "call "), *exp = strstr(line, "@llvm.exp.");
        calls += call && exp && call < end && exp < end && call < exp;
    }
    cr_expect_eq(calls, 1, "exp called in %d places in:\n%s", calls, ir);
    jg_program_free(p);
    jg_graph_free(g);
}

/* Distance from want to got in units in the last place of want (subnormal spacing below
 * FLT_MIN); 0 when both are the same NaN-ness or the same infinity. */
static double ulps(float got, double want)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got) ? 0 : INFINITY;
    float w = (float)want;
    if (isinf(w) || isinf(got))
        return w == got ? 0 : INFINITY;
    double spacing = fabs(w) < FLT_MIN ? ldexp(1, -149) : nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return fabs((double)got - want) / spacing;
}

/* f32 exp, log and tanh are inline polynomials (src/jit/emit_math.c): within 2 ulp of the
 * exact value (libm in double, rounded) over their whole domains, subnormal inputs and
 * results, overflow and the special values included, at every vector width. */
Test(jit_elementwise, transcendental_f32_within_2_ulp)
{
    enum { N = 20001 };
    static float xe[N], xl[N], xt[N], got[N];
    for (int i = 0; i < N - 8; i++) {
        double u = (double)i / (N - 9);
        xe[i] = (float)(-106 + 196 * u);                    /* past both ends of exp */
        xl[i] = (float)exp2(-152 + 282 * u);                /* subnormal to near FLT_MAX */
        xt[i] = (float)(u < 0.5 ? -12 + 24 * u : sinh(-2 + 4 * u) * 0.5); /* tails; near 0 */
    }
    static const float special[8] = { NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 1e-40f };
    for (int i = 0; i < 8; i++)
        xe[N - 8 + i] = xl[N - 8 + i] = xt[N - 8 + i] = special[i];
    static const int widths[3] = { 512, 256, 32 };
    for (int w = 0; w < 3; w++) {
        for (int f = 0; f < 3; f++) {
            jg_graph *g = jg_graph_new();
            jg_node *x = jg_input(g, "x", JG_F32, jg_shape(N));
            jg_node *y = f == 0 ? jg_exp(x) : f == 1 ? jg_log(x) : jg_tanh(x);
            const float *in = f == 0 ? xe : f == 1 ? xl : xt;
            jg_program *p = jg_compile(g, &y, 1, &(jg_opts){ .vector_bits = widths[w] });
            cr_assert(p, "%s", jg_errmsg(g));
            cr_assert_eq(jg_program_set(p, "x", in, sizeof xe), JG_OK);
            cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_program_errmsg(p));
            cr_assert_eq(jg_program_get(p, 0, got, sizeof got), JG_OK);
            double worst = 0;
            int at = 0;
            for (int i = 0; i < N; i++) {
                double want = f == 0 ? exp(in[i]) : f == 1 ? log(in[i]) : tanh(in[i]);
                double d = ulps(got[i], want);
                if (d > worst)
                    worst = d, at = i;
            }
            static const char *name[3] = { "exp", "log", "tanh" };
            cr_expect_leq(worst, 2.0, "%s at %d bits: %.2f ulp at x = %a (got %a, want %a)",
                          name[f], widths[w], worst, (double)in[at], (double)got[at],
                          f == 0 ? exp(in[at]) : f == 1 ? log(in[at]) : tanh(in[at]));
            jg_program_free(p);
            jg_graph_free(g);
        }
    }
}

/* NaN, infinities and signed zeros through the ops that must treat them as the reference does. */
Test(jit_elementwise, special_values)
{
    static const double v[17] = { NAN, INFINITY, -INFINITY, 0.0, -0.0, 1.0, -1.0, 0.5,
                                   -0.5, 88.0, -88.0, 1e-30, -1e-30, 3.0, -3.0, 710.0, -710.0 };
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 5);
        jg_node *x = input_values(&c, t, jg_shape(17), v);
        jg_node *y = input(&c, t, jg_shape(17), TIES);
        olist l = { .n = 0 };
        push(&l, jg_neg(x));
        push(&l, jg_abs(x));
        push(&l, jg_exp(x));
        push(&l, jg_tanh(x));
        push(&l, jg_sigmoid(x));
        push(&l, jg_relu(x));
        push(&l, jg_softplus(x));
        push(&l, jg_leaky_relu(x, 0.1));
        push(&l, jg_elu(x, 1.0));
        push(&l, jg_clamp(x, -1, 1));
        push(&l, jg_square(x));
        push(&l, jg_cast(x, JG_I32));
        push(&l, jg_maximum(x, y));
        push(&l, jg_minimum(x, y));
        push(&l, jg_maximum(y, x));
        push(&l, jg_lt(x, y));
        push(&l, jg_eq(x, y));
        push(&l, jg_ne(x, y));
        push(&l, jg_ge(x, x));
        push(&l, jg_where(x, y, jg_neg(y)));
        push(&l, jg_sum(x, JG_ALL_AXES, false));
        push(&l, jg_max(x, JG_ALL_AXES, false));
        push(&l, jg_min(x, JG_ALL_AXES, false));
        push(&l, jg_max(jg_slice(x, 0, 1, 17, 1), JG_ALL_AXES, false)); /* inf, no NaN */
        push(&l, jg_min(jg_slice(x, 0, 1, 17, 1), JG_ALL_AXES, false));
        push(&l, jg_logsumexp(jg_slice(x, 0, 2, 3, 1), JG_ALL_AXES, false)); /* -inf group */
        push(&l, jg_logsumexp(jg_slice(x, 0, 3, 17, 1), JG_ALL_AXES, false));
        char buf[64];
        snprintf(buf, sizeof buf, "special values %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

/* i32: the ops that take integers, exactly; every op on 1023 elements, chains elsewhere. */
Test(jit_elementwise, elementwise_i32)
{
    jg_shape shapes[4] = { jg_shape(1023), jg_shape(1), jg_shape(17), jg_shape(3, 15) };
    for (int k = 0; k < 4; k++) {
        tctx c;
        ctx_init(&c, 21 + (uint64_t)k);
        jg_node *a = input(&c, JG_I32, shapes[k], SIGNED), *b = input(&c, JG_I32, shapes[k], SIGNED);
        jg_node *u = input(&c, JG_I32, shapes[k], TIES), *w = input(&c, JG_I32, shapes[k], TIES);
        jg_node *p = input(&c, JG_I32, shapes[k], POS);
        jg_node *f = input(&c, JG_F32, shapes[k], SIGNED), *d = input(&c, JG_F64, shapes[k], SIGNED);
        olist l = { .n = 0 };
        if (k == 0) {
            binary_ops(&l, a, b, p, u, w);
            push(&l, jg_div(a, u)); /* division by zero gives 0 */
            push(&l, jg_div(jg_neg(a), p));
            push(&l, jg_neg(a));
            push(&l, jg_abs(a));
            push(&l, jg_cast(a, JG_F32));
            push(&l, jg_cast(a, JG_F64));
            push(&l, jg_cast(jg_scale(f, 7), JG_I32));
            push(&l, jg_cast(jg_scale(d, 7), JG_I32));
            push(&l, jg_where(f, a, b)); /* a float condition choosing integers */
            push(&l, jg_where(u, f, jg_neg(f))); /* an integer condition choosing floats */
            push(&l, jg_stop_gradient(a));
            push(&l, jg_scale(a, 3));
            push(&l, jg_shift(a, -7));
            push(&l, jg_add(a, jg_scalar(c.g, JG_I32, 5)));
        } else {
            binary_chain(&l, a, b, p, u, w);
            push(&l, jg_add(jg_div(a, u), jg_abs(jg_neg(b))));
            push(&l, jg_cast(jg_add(jg_cast(a, JG_F32), f), JG_I32));
            push(&l, jg_where(d, jg_cast(a, JG_F64), d));
        }
        char sh[64], buf[96];
        t_shape_text(shapes[k], sh, sizeof sh);
        snprintf(buf, sizeof buf, "i32 elementwise %s", sh);
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
    /* [17,1] with [1,15] */
    tctx c;
    ctx_init(&c, 29);
    jg_node *a = input(&c, JG_I32, jg_shape(17, 1), SIGNED), *b = input(&c, JG_I32, jg_shape(1, 15), SIGNED);
    jg_node *u = input(&c, JG_I32, jg_shape(17, 1), TIES), *w = input(&c, JG_I32, jg_shape(1, 15), TIES);
    jg_node *p = input(&c, JG_I32, jg_shape(1, 15), POS);
    olist l = { .n = 0 };
    binary_chain(&l, a, b, p, u, w);
    check(&c, l.o, l.n, TOL, "i32 broadcasting [17,1] x [1,15]");
    ctx_fini(&c);
}

