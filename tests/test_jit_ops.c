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
#include "support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_ops, .timeout = 60);

/* ---------------------------------------------------------------- inputs and their data */

typedef enum data_kind {
    SIGNED,  /* floats uniform in [-2, 2); i32 in [-50, 50] (zeros included) */
    POS,     /* floats in [0.25, 3); i32 in [1, 50] */
    TIES,    /* floats on a grid of quarters in [-1, 1] (ties and zeros); i32 in [-3, 3] */
    UNIT,    /* floats in [0, 1) (bce targets) */
    LABELS,  /* i32 in [0, hi) */
} data_kind;

#define MAX_INPUTS 96

typedef struct t_input {
    char name[16];
    void *data;
    size_t bytes;
    jg_dtype t;
    int64_t n;
} t_input;

typedef struct tctx {
    jg_graph *g;
    t_input in[MAX_INPUTS];
    int n_in;
    uint64_t rng;
} tctx;

static void ctx_init(tctx *c, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    c->g = jg_graph_new();
    cr_assert(c->g);
    c->rng = seed * 0x9e3779b97f4a7c15ULL + 0x1234567ULL;
}

static void ctx_fini(tctx *c)
{
    for (int i = 0; i < c->n_in; i++)
        free(c->in[i].data);
    jg_graph_free(c->g);
    memset(c, 0, sizeof *c);
}

/* Uniform in [0, 1), from a 64-bit LCG (the top 53 bits). */
static double urand(tctx *c)
{
    c->rng = c->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(c->rng >> 11) * 0x1.0p-53;
}

static double draw(tctx *c, jg_dtype t, data_kind k, int hi)
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

static void put(void *p, jg_dtype t, int64_t i, double v)
{
    if (t == JG_F32)
        ((float *)p)[i] = (float)v;
    else if (t == JG_F64)
        ((double *)p)[i] = v;
    else
        ((int32_t *)p)[i] = (int32_t)v;
}

static double get(const void *p, jg_dtype t, int64_t i)
{
    return t == JG_F32 ? (double)((const float *)p)[i]
           : t == JG_F64 ? ((const double *)p)[i]
                         : (double)((const int32_t *)p)[i];
}

/* A new input of dtype t and shape s holding deterministic data of kind k (labels < hi). */
static jg_node *input_(tctx *c, jg_dtype t, jg_shape s, data_kind k, int hi)
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

static jg_node *input(tctx *c, jg_dtype t, jg_shape s, data_kind k)
{
    return input_(c, t, s, k, 0);
}

/* An input holding the given values (converted to t). */
static jg_node *input_values(tctx *c, jg_dtype t, jg_shape s, const double *v)
{
    jg_node *n = input(c, t, s, SIGNED);
    t_input *in = &c->in[c->n_in - 1];
    for (int64_t i = 0; i < in->n; i++)
        put(in->data, t, i, v[i]);
    return n;
}

static t_input *input_of(tctx *c, jg_node *n)
{
    for (int i = 0; i < c->n_in; i++)
        if (strcmp(c->in[i].name, jg_node_name(n)) == 0)
            return &c->in[i];
    cr_assert_fail("no data for input %s", jg_node_name(n));
    return NULL;
}

/* ---------------------------------------------------------------- running and comparing */

typedef struct tol {
    double f32, f64;
} tol;

static const tol TOL = { 1e-5, 1e-12 };
static const tol TOL_GRAD = { 1e-5, 1e-10 };

static const char *exec_desc(const jg_opts *o, char *buf, size_t size)
{
    if (o->executor == JG_EXEC_REFERENCE)
        return "reference";
    snprintf(buf, size, "jit threads=%d vector_bits=%d%s", o->num_threads, o->vector_bits,
             o->no_fusion ? " no_fusion" : "");
    return buf;
}

static void shape_str(jg_shape s, char *buf, size_t size)
{
    int k = snprintf(buf, size, "[");
    for (int d = 0; d < s.ndim && k < (int)size; d++)
        k += snprintf(buf + k, size - (size_t)k, d ? ",%lld" : "%lld", (long long)s.dim[d]);
    if (k < (int)size)
        snprintf(buf + k, size - (size_t)k, "]");
}

static void index_str(jg_shape s, int64_t flat, char *buf, size_t size)
{
    int64_t ix[JG_MAX_DIMS];
    for (int d = s.ndim - 1; d >= 0; d--) {
        ix[d] = flat % s.dim[d];
        flat /= s.dim[d];
    }
    jg_shape v = { .ndim = s.ndim };
    memcpy(v.dim, ix, sizeof ix);
    shape_str(v, buf, size);
}

/* Compiles outs with opts, binds every input of c, runs once and returns each output's bytes
 * (malloc'd; free with free_results). */
static void **run(tctx *c, jg_node *const *outs, int n, const jg_opts *o, const char *what)
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

static void free_results(void **r, int n)
{
    for (int i = 0; i < n; i++)
        free(r[i]);
    free(r);
}

static bool close_enough(double got, double want, double t)
{
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return got == want;
    return fabs(got - want) <= t * fmax(1.0, fabs(want));
}

/* Asserts got (from `gdesc`) matches want (from `wdesc`) on every output. */
static void compare(jg_node *const *outs, int n, void **got, void **want, tol tl,
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
            shape_str(s, sh, sizeof sh);
            index_str(s, e, ix, sizeof ix);
            cr_assert_fail("%s: output %d (%s %s %s) element %lld %s: %s %.17g, %s %.17g "
                           "(|diff| %.3g, tol %.3g)",
                           what, i, jg_node_op_name(outs[i]), jg_dtype_str(t), sh,
                           (long long)e, ix, gdesc, a, wdesc, b, fabs(a - b), limit);
        }
    }
}

/* The JIT with opts `jo` against the reference on outs[0..n). */
static void check_opts(tctx *c, jg_node *const *outs, int n, tol tl, jg_opts jo,
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

static void check(tctx *c, jg_node *const *outs, int n, tol tl, const char *what)
{
    check_opts(c, outs, n, tl, (jg_opts){ .executor = JG_EXEC_JIT }, what);
}

/* An output list under construction. */
typedef struct olist {
    jg_node *o[512];
    int n;
} olist;

static void push(olist *l, jg_node *n)
{
    cr_assert(l->n < (int)(sizeof l->o / sizeof *l->o), "output list full");
    l->o[l->n++] = n;
}

static const jg_dtype FLOATS[2] = { JG_F32, JG_F64 };

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
    shape_str(s, sh, sizeof sh);
    snprintf(buf, sizeof buf, "%s %s %s", full ? "elementwise" : "elementwise chains",
             jg_dtype_str(t), sh);
    check(&c, l.o, l.n, TOL, buf);
    ctx_fini(&c);
}

/* Each op alone: f32 on 1023 elements (full vectors and a 15-lane tail at 16 lanes), f64 on
 * 17 (two full vectors and a 1-lane tail at 8 lanes). */
Test(jit_ops, elementwise_every_op_f32)
{
    elementwise_on(JG_F32, jg_shape(1023), true);
}

Test(jit_ops, elementwise_every_op_f64)
{
    elementwise_on(JG_F64, jg_shape(17), true);
}

/* Sizes 1, 15, 17, 1023 and multi-dimensional shapes, both float dtypes. */
Test(jit_ops, elementwise_shapes)
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
Test(jit_ops, elementwise_broadcasting)
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

/* NaN, infinities and signed zeros through the ops that must treat them as the reference does. */
Test(jit_ops, special_values)
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
Test(jit_ops, elementwise_i32)
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
        shape_str(shapes[k], sh, sizeof sh);
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

/* ---------------------------------------------------------------- reductions */

static const jg_dtype ALL_DTYPES[3] = { JG_F32, JG_F64, JG_I32 };

/* One axis set of one shape. */
typedef struct red_case {
    jg_shape s;
    jg_axes ax;
} red_case;

/* The loop structures: innermost reduced or kept, outer dims reduced or kept, all, none of
 * the vector lanes full (1, 15) or some (17, 1023). sum and max on each (keepdims
 * alternating); the ops that decompose (mean, logsumexp) and min on a representative few. */
static const red_case LOOPS[] = {
    { jg_shape(1), JG_ALL_AXES },       { jg_shape(15), jg_axes(-1) },
    { jg_shape(17), jg_axes(0) },       { jg_shape(1023), JG_ALL_AXES },
    { jg_shape(17, 15), jg_axes(0) },   { jg_shape(17, 15), jg_axes(1) },
    { jg_shape(17, 15), JG_ALL_AXES },  { jg_shape(3, 1023), jg_axes(0) },
    { jg_shape(3, 1023), jg_axes(-1) }, { jg_shape(33, 1), jg_axes(0) },
    { jg_shape(33, 1), jg_axes(1) },    { jg_shape(4, 5, 17), jg_axes(0) },
    { jg_shape(4, 5, 17), jg_axes(1) }, { jg_shape(4, 5, 17), jg_axes(2) },
    { jg_shape(4, 5, 17), jg_axes(0, 1) }, { jg_shape(4, 5, 17), jg_axes(2, 0) },
    { jg_shape(4, 5, 17), jg_axes(1, 2) }, { jg_shape(4, 5, 17), JG_ALL_AXES },
    { jg_shape(2, 3, 1023), jg_axes(0) }, { jg_shape(2, 3, 1023), jg_axes(0, 1) },
    { jg_shape(2, 3, 1023), jg_axes(1) },
};
#define N_LOOPS ((int)(sizeof LOOPS / sizeof *LOOPS))
/* The cases (indices into LOOPS) that also run the other reductions. */
static const int FEW[] = { 3, 4, 5, 8, 15, 16, 17 };
#define N_FEW ((int)(sizeof FEW / sizeof *FEW))

static void reductions_of(jg_dtype t)
{
    tctx c;
    ctx_init(&c, 31 + (uint64_t)t);
    olist l = { .n = 0 };
    jg_node *x[N_LOOPS], *q[N_LOOPS];
    for (int i = 0; i < N_LOOPS; i++) {
        bool keep = i % 2;
        x[i] = input(&c, t, LOOPS[i].s, SIGNED);
        q[i] = input(&c, t, LOOPS[i].s, TIES);
        push(&l, jg_sum(x[i], LOOPS[i].ax, keep));
        push(&l, jg_max(x[i], LOOPS[i].ax, !keep));
    }
    for (int k = 0; k < N_FEW; k++) {
        int i = FEW[k];
        bool keep = k % 2;
        push(&l, jg_min(x[i], LOOPS[i].ax, keep));
        push(&l, jg_max(q[i], LOOPS[i].ax, keep)); /* ties */
        if (t != JG_I32) {
            push(&l, jg_mean(x[i], LOOPS[i].ax, keep));
            push(&l, jg_logsumexp(x[i], LOOPS[i].ax, !keep));
        }
    }
    char buf[64];
    snprintf(buf, sizeof buf, "reductions %s", jg_dtype_str(t));
    check(&c, l.o, l.n, TOL, buf);
    ctx_fini(&c);
}

Test(jit_ops, reductions_f32) { reductions_of(JG_F32); }
Test(jit_ops, reductions_f64) { reductions_of(JG_F64); }
Test(jit_ops, reductions_i32) { reductions_of(JG_I32); }

/* Reductions of fused expressions, of broadcasts, of all-negative data, and chains. */
Test(jit_ops, reductions_of_expressions)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 41 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *y = input(&c, t, jg_shape(17, 15), SIGNED);
        jg_node *col = input(&c, t, jg_shape(17, 1), SIGNED), *row = input(&c, t, jg_shape(1, 15), SIGNED);
        jg_node *z = input(&c, t, jg_shape(4, 5, 17), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_sum(jg_mul(jg_exp(x), y), jg_axes(1), false));
        push(&l, jg_sum(jg_mul(jg_exp(x), y), jg_axes(0), true));
        push(&l, jg_sum(jg_add(col, row), jg_axes(0), false));
        push(&l, jg_max(jg_mul(col, row), jg_axes(1), true));
        push(&l, jg_sum(jg_broadcast_to(row, jg_shape(17, 15)), JG_ALL_AXES, false));
        push(&l, jg_max(jg_neg(jg_abs(x)), jg_axes(1), false)); /* all negative */
        push(&l, jg_min(jg_shift(jg_abs(x), 1), jg_axes(0), false)); /* all positive */
        push(&l, jg_mean(jg_sub(x, jg_mean(x, jg_axes(1), true)), jg_axes(1), false));
        push(&l, jg_sum(jg_square(jg_sub(z, jg_mean(z, jg_axes(0, 2), true))), jg_axes(0, 2), false));
        push(&l, jg_logsumexp(jg_scale(z, 30), jg_axes(1), false));
        push(&l, jg_sum(jg_permute(z, jg_axes(2, 0, 1)), jg_axes(0), false));
        push(&l, jg_sum(jg_slice(x, 1, -1, INT64_MIN, -2), jg_axes(1), false));
        push(&l, jg_max(jg_sum(z, jg_axes(1), false), jg_axes(-1), false));
        push(&l, jg_sum(jg_sum(jg_sum(z, jg_axes(2), false), jg_axes(1), false), JG_ALL_AXES, false));
        char buf[64];
        snprintf(buf, sizeof buf, "reductions of expressions %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, argmax)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 51 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *q = input(&c, t, jg_shape(17, 15), TIES);
        jg_node *v = input(&c, t, jg_shape(1023), SIGNED), *one = input(&c, t, jg_shape(1), SIGNED);
        jg_node *z = input(&c, t, jg_shape(4, 5, 17), TIES);
        olist l = { .n = 0 };
        push(&l, jg_argmax(x, 0));
        push(&l, jg_argmax(x, 1));
        push(&l, jg_argmax(x, -1));
        push(&l, jg_argmax(q, 0)); /* ties: the first maximum */
        push(&l, jg_argmax(q, 1));
        push(&l, jg_argmax(v, 0));
        push(&l, jg_argmax(one, 0));
        push(&l, jg_argmax(z, 0));
        push(&l, jg_argmax(z, 1));
        push(&l, jg_argmax(z, 2));
        if (t != JG_I32)
            push(&l, jg_argmax(jg_exp(x), 1)); /* of a computed value */
        char buf[64];
        snprintf(buf, sizeof buf, "argmax %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
    /* NaN: the first NaN wins */
    tctx c;
    ctx_init(&c, 59);
    jg_node *x = input_values(&c, JG_F32, jg_shape(2, 4), (double[]){ 1, NAN, 3, NAN, 5, 2, 5, -1 });
    jg_node *o[2] = { jg_argmax(x, 1), jg_argmax(x, 0) };
    check(&c, o, 2, TOL, "argmax with NaN");
    ctx_fini(&c);
}

/* ---------------------------------------------------------------- movement */

static void views_on(tctx *c, olist *l, jg_dtype t)
{
    jg_node *x = input(c, t, jg_shape(3, 17), SIGNED);
    jg_node *z = input(c, t, jg_shape(2, 3, 15), SIGNED);
    jg_node *w = input(c, t, jg_shape(4, 1023), SIGNED);
    jg_node *row = input(c, t, jg_shape(1, 15), SIGNED), *col = input(c, t, jg_shape(17, 1), SIGNED);
    jg_node *s = input(c, t, JG_SCALAR, SIGNED);
    /* reshape */
    push(l, jg_reshape(x, jg_shape(17, 3)));
    push(l, jg_reshape(x, jg_shape(-1)));
    push(l, jg_reshape(z, jg_shape(6, -1)));
    push(l, jg_reshape(z, jg_shape(2, 45, 1)));
    push(l, jg_reshape(s, jg_shape(1, 1)));
    push(l, jg_neg(jg_reshape(w, jg_shape(2, 2, 1023)))); /* reshape feeding a kernel */
    push(l, jg_reshape(jg_neg(z), jg_shape(3, 30)));     /* of a computed value */
    /* permute, transpose */
    push(l, jg_permute(z, jg_axes(2, 0, 1)));
    push(l, jg_permute(z, jg_axes(1, 0, 2)));
    push(l, jg_permute(z, jg_axes(0, 2, 1)));
    push(l, jg_permute(z, jg_axes(0, 1, 2)));
    push(l, jg_transpose(x));
    push(l, jg_transpose(w));
    push(l, jg_transpose(z));
    push(l, jg_add(jg_transpose(jg_transpose(x)), x));
    /* broadcast_to */
    push(l, jg_broadcast_to(row, jg_shape(17, 15)));
    push(l, jg_broadcast_to(col, jg_shape(17, 15)));
    push(l, jg_broadcast_to(col, jg_shape(2, 17, 1023)));
    push(l, jg_broadcast_to(s, jg_shape(3, 4)));
    push(l, jg_broadcast_to(x, jg_shape(2, 3, 17)));
    /* slice, positive and negative steps, clamped bounds */
    push(l, jg_slice(x, 1, 2, 15, 1));
    push(l, jg_slice(x, 1, 0, 17, 2));
    push(l, jg_slice(x, -1, -1, INT64_MIN, -1)); /* reversed */
    push(l, jg_slice(x, 1, 15, 2, -3));
    push(l, jg_slice(x, 0, -1, INT64_MIN, -1));
    push(l, jg_slice(x, 0, 1, 2, 1));
    push(l, jg_slice(x, 1, -100, 100, 4));       /* clamped */
    push(l, jg_slice(w, 1, 1000, 3, -7));
    push(l, jg_slice(z, 2, 3, -3, 2));
    push(l, jg_slice(jg_slice(z, 0, 1, 2, 1), 2, -2, 0, -2));
    push(l, jg_slice(jg_transpose(x), 0, 16, 0, -5));
    push(l, jg_mul(jg_slice(x, 1, 0, 17, 2), jg_slice(x, 1, 16, INT64_MIN, -2)));
}

Test(jit_ops, views)
{
    for (int k = 0; k < 3; k++) {
        tctx c;
        ctx_init(&c, 61 + (uint64_t)k);
        olist l = { .n = 0 };
        views_on(&c, &l, ALL_DTYPES[k]);
        char buf[64];
        snprintf(buf, sizeof buf, "views %s", jg_dtype_str(ALL_DTYPES[k]));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, pad)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 71 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(3, 17), SIGNED), *v = input(&c, t, jg_shape(1023), SIGNED);
        jg_node *z = input(&c, t, jg_shape(2, 3, 15), SIGNED), *one = input(&c, t, jg_shape(1), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_pad(x, jg_shape(1, 2), jg_shape(0, 3), 0.5));
        push(&l, jg_pad(x, jg_shape(0, 0), jg_shape(0, 0), 0));
        push(&l, jg_pad(x, jg_shape(2, 0), jg_shape(1, 0), -1));
        push(&l, jg_pad(v, jg_shape(1), jg_shape(16), 2));
        push(&l, jg_pad(one, jg_shape(14), jg_shape(0), 0));
        push(&l, jg_pad(z, jg_shape(1, 0, 1), jg_shape(0, 2, 1), 3));
        push(&l, jg_pad(jg_neg(x), jg_shape(0, 1), jg_shape(0, 1), 0)); /* of a computed value */
        push(&l, jg_add(jg_pad(x, jg_shape(0, 1), jg_shape(0, 0), 0),
                        jg_pad(x, jg_shape(0, 0), jg_shape(0, 1), 0))); /* feeding a kernel */
        char buf[64];
        snprintf(buf, sizeof buf, "pad %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, concat)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 81 + (uint64_t)k);
        jg_node *a = input(&c, t, jg_shape(3, 17), SIGNED), *b = input(&c, t, jg_shape(3, 15), SIGNED);
        jg_node *d = input(&c, t, jg_shape(1, 17), SIGNED), *e = input(&c, t, jg_shape(3, 1), SIGNED);
        jg_node *v = input(&c, t, jg_shape(1023), SIGNED), *w = input(&c, t, jg_shape(1), SIGNED);
        jg_node *z = input(&c, t, jg_shape(2, 3, 15), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_concat(((jg_node *[]){ a, b, e }), 3, 1));
        push(&l, jg_concat(((jg_node *[]){ a, b, e }), 3, -1));
        push(&l, jg_concat(((jg_node *[]){ a, d, a }), 3, 0));
        push(&l, jg_concat(((jg_node *[]){ v, w, v }), 3, 0));
        push(&l, jg_concat(((jg_node *[]){ a }), 1, 0));
        push(&l, jg_concat(((jg_node *[]){ z, z }), 2, 1));
        push(&l, jg_concat(((jg_node *[]){ z, jg_neg(z) }), 2, 0));
        push(&l, jg_concat(((jg_node *[]){ jg_transpose(z), jg_transpose(z) }), 2, 2));
        push(&l, jg_neg(jg_concat(((jg_node *[]){ a, b }), 2, 1)));
        char buf[64];
        snprintf(buf, sizeof buf, "concat %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, take)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 91 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *z = input(&c, t, jg_shape(2, 3, 1023), SIGNED);
        jg_node *v = input(&c, t, jg_shape(1023), SIGNED);
        jg_node *i17 = input_(&c, JG_I32, jg_shape(4), LABELS, 17);
        jg_node *i15 = input_(&c, JG_I32, jg_shape(2, 3), LABELS, 15);
        jg_node *i3 = input_(&c, JG_I32, jg_shape(5), LABELS, 3);
        jg_node *i1023 = input_(&c, JG_I32, jg_shape(33), LABELS, 1023);
        jg_node *i2 = input_(&c, JG_I32, JG_SCALAR, LABELS, 2);
        olist l = { .n = 0 };
        push(&l, jg_take(x, i17, 0));
        push(&l, jg_take(x, i15, 1));
        push(&l, jg_take(x, i15, -1));
        push(&l, jg_take(z, i3, 1));
        push(&l, jg_take(z, i1023, 2));
        push(&l, jg_take(z, i2, 0));
        push(&l, jg_take(v, i1023, 0));
        push(&l, jg_take(jg_neg(x), i17, 0));            /* of a computed value */
        push(&l, jg_neg(jg_take(x, i15, 0)));            /* feeding a kernel */
        char buf[64];
        snprintf(buf, sizeof buf, "take %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, take_out_of_range)
{
    tctx c;
    ctx_init(&c, 97);
    jg_node *x = input(&c, JG_F32, jg_shape(5, 3), SIGNED);
    jg_node *idx = input_values(&c, JG_I32, jg_shape(3), (double[]){ 1, 5, 0 });
    jg_node *o = jg_take(x, idx, 0);
    jg_program *p = jg_compile(c.g, &o, 1, &(jg_opts){ .executor = JG_EXEC_JIT });
    cr_assert(p, "%s", jg_errmsg(c.g));
    t_input *xi = input_of(&c, x), *ii = input_of(&c, idx);
    jg_program_set(p, xi->name, xi->data, xi->bytes);
    jg_program_set(p, ii->name, ii->data, ii->bytes);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE, "jit take with index 5 of 5: %s", jg_errmsg(p));
    jg_program_free(p);
    ctx_fini(&c);
}

Test(jit_ops, one_hot)
{
    for (int k = 0; k < 3; k++) {
        jg_dtype t = ALL_DTYPES[k];
        tctx c;
        ctx_init(&c, 101 + (uint64_t)k);
        jg_node *a = input_(&c, JG_I32, jg_shape(17), LABELS, 15);
        jg_node *b = input_(&c, JG_I32, jg_shape(3, 5), LABELS, 1023);
        jg_node *s = input_(&c, JG_I32, JG_SCALAR, LABELS, 17);
        jg_node *one = input_(&c, JG_I32, jg_shape(1), LABELS, 1);
        olist l = { .n = 0 };
        push(&l, jg_one_hot(a, 15, t));
        push(&l, jg_one_hot(a, 17, t));
        push(&l, jg_one_hot(b, 1023, t));
        push(&l, jg_one_hot(s, 17, t));
        push(&l, jg_one_hot(one, 1, t));
        push(&l, jg_sum(jg_one_hot(b, 1023, t), jg_axes(0), false));
        char buf[64];
        snprintf(buf, sizeof buf, "one_hot %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

/* ---------------------------------------------------------------- matmul */

/* The matmul cases: all of them (full), or a few (GEMM kernels are slow to compile). */
static void matmul_cases(tctx *c, olist *l, jg_dtype t, bool full)
{
    jg_node *a = input(c, t, jg_shape(17, 15), SIGNED), *b = input(c, t, jg_shape(15, 17), SIGNED);
    jg_node *b2 = input(c, t, jg_shape(15, 1023), SIGNED);
    jg_node *one = input(c, t, jg_shape(1, 1), SIGNED), *one2 = input(c, t, jg_shape(1, 1), SIGNED);
    jg_node *r = input(c, t, jg_shape(1, 15), SIGNED), *cl = input(c, t, jg_shape(15, 1), SIGNED);
    jg_node *big_a = input(c, t, jg_shape(33, 130), SIGNED), *big_b = input(c, t, jg_shape(130, 65), SIGNED);
    jg_node *ba = input(c, t, jg_shape(2, 3, 17, 15), SIGNED);
    jg_node *bb = input(c, t, jg_shape(2, 3, 15, 17), SIGNED);
    jg_node *x3 = input(c, t, jg_shape(3, 17, 15), SIGNED);
    jg_node *p1 = input(c, t, jg_shape(1, 17, 15), SIGNED), *p4 = input(c, t, jg_shape(4, 15, 3), SIGNED);
    jg_node *q = input(c, t, jg_shape(2, 1, 5, 6), SIGNED), *q3 = input(c, t, jg_shape(3, 6, 4), SIGNED);
    jg_node *at = input(c, t, jg_shape(15, 17), SIGNED), *bt = input(c, t, jg_shape(17, 15), SIGNED);
    jg_node *bias = input(c, t, jg_shape(17), SIGNED);
    /* 2-D */
    push(l, jg_matmul(a, b));
    push(l, jg_matmul(big_a, big_b));
    if (full) {
        push(l, jg_matmul(a, b2));
        push(l, jg_matmul(one, one2));
        push(l, jg_matmul(cl, r));
    }
    /* batched, and broadcast batches */
    push(l, jg_matmul(ba, bb));
    push(l, jg_matmul(q, q3));
    if (full) {
        push(l, jg_matmul(x3, b));
        push(l, jg_matmul(p1, p4));
    }
    /* transposed operands (permute views read through strides) */
    push(l, jg_matmul(jg_transpose(at), jg_transpose(bt)));
    if (full) {
        push(l, jg_matmul(a, jg_transpose(x3)));
        push(l, jg_matmul(jg_transpose(bb), jg_transpose(ba)));
    }
    /* operands that are broadcast, permuted across batch dims, sliced, reshaped */
    if (full) {
        jg_node *b3 = input(c, t, jg_shape(3, 15, 17), SIGNED), *y = input(c, t, jg_shape(17, 3, 15), SIGNED);
        push(l, jg_matmul(jg_broadcast_to(a, jg_shape(3, 17, 15)), b3));
        push(l, jg_matmul(jg_permute(y, jg_axes(1, 0, 2)), b));
        push(l, jg_matmul(jg_slice(big_a, 1, 0, 130, 2), jg_slice(big_b, 0, 129, INT64_MIN, -2)));
        push(l, jg_matmul(jg_reshape(ba, jg_shape(102, 15)), b));
    }
    /* epilogues and computed operands */
    push(l, jg_relu(jg_add(jg_matmul(a, b), bias)));
    if (full) {
        jg_node *colbias = input(c, t, jg_shape(17, 1), SIGNED);
        push(l, jg_maximum(jg_add(jg_matmul(a, b), colbias), jg_scale(jg_matmul(a, b), 0.5)));
        push(l, jg_tanh(jg_matmul(jg_exp(jg_scale(a, 0.5)), jg_neg(b))));
        push(l, jg_matmul(jg_matmul(a, b), bt));
    }
}

Test(jit_ops, matmul_f32)
{
    tctx c;
    ctx_init(&c, 111);
    olist l = { .n = 0 };
    matmul_cases(&c, &l, JG_F32, true);
    check(&c, l.o, l.n, TOL, "matmul f32");
    ctx_fini(&c);
}

Test(jit_ops, matmul_f64)
{
    tctx c;
    ctx_init(&c, 112);
    olist l = { .n = 0 };
    matmul_cases(&c, &l, JG_F64, false);
    check(&c, l.o, l.n, TOL, "matmul f64");
    ctx_fini(&c);
}

/* f32 products over k = 1023: the JIT sums in f32, the reference in double */
Test(jit_ops, matmul_long_inner)
{
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, 121 + (uint64_t)k);
        jg_node *a = input(&c, FLOATS[k], jg_shape(4, 1023), UNIT);
        jg_node *b = input(&c, FLOATS[k], jg_shape(1023, 17), UNIT);
        jg_node *o[2] = { jg_matmul(a, b), jg_matmul(jg_transpose(b), jg_transpose(a)) };
        check(&c, o, 2, TOL, FLOATS[k] == JG_F32 ? "matmul k=1023 f32" : "matmul k=1023 f64");
        ctx_fini(&c);
    }
}

/* ---------------------------------------------------------------- nn */

Test(jit_ops, softmax_family)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 131 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *w = input(&c, t, jg_shape(4, 1023), SIGNED);
        jg_node *z = input(&c, t, jg_shape(2, 3, 17), SIGNED), *one = input(&c, t, jg_shape(3, 1), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_softmax(x, -1));
        push(&l, jg_softmax(x, 0));
        push(&l, jg_softmax(w, 1));
        push(&l, jg_softmax(z, 1));
        push(&l, jg_softmax(one, 1));
        push(&l, jg_softmax(jg_scale(x, 50), 1)); /* large logits */
        push(&l, jg_log_softmax(x, -1));
        push(&l, jg_log_softmax(x, 0));
        push(&l, jg_log_softmax(w, -1));
        push(&l, jg_log_softmax(z, 0));
        push(&l, jg_log_softmax(jg_scale(w, 50), -1));
        char buf[64];
        snprintf(buf, sizeof buf, "softmax family %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, bce_and_mse_losses)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 137 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *v = input(&c, t, jg_shape(1023), SIGNED);
        jg_node *u = input(&c, t, jg_shape(3, 17), UNIT), *lg = input(&c, t, jg_shape(3, 17), SIGNED);
        jg_node *uv = input(&c, t, jg_shape(1023), UNIT), *one = input(&c, t, jg_shape(1), SIGNED);
        jg_node *m = input(&c, t, jg_shape(2, 3, 15), SIGNED), *m2 = input(&c, t, jg_shape(2, 3, 15), SIGNED);
        olist l = { .n = 0 };
        push(&l, jg_bce_with_logits(lg, u));
        push(&l, jg_bce_with_logits(v, uv));
        push(&l, jg_bce_with_logits(jg_scale(lg, 30), u)); /* large logits */
        push(&l, jg_bce_with_logits(one, jg_sigmoid(one)));
        push(&l, jg_mse_loss(m, m2));
        push(&l, jg_mse_loss(v, uv));
        push(&l, jg_mse_loss(x, jg_softmax(x, 1)));
        char buf[64];
        snprintf(buf, sizeof buf, "bce/mse losses %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, cross_entropy)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 141 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(17, 15), SIGNED), *y = input_(&c, JG_I32, jg_shape(17), LABELS, 15);
        jg_node *w = input(&c, t, jg_shape(4, 1023), SIGNED), *yw = input_(&c, JG_I32, jg_shape(4), LABELS, 1023);
        jg_node *o = input(&c, t, jg_shape(1, 1), SIGNED), *yo = input_(&c, JG_I32, jg_shape(1), LABELS, 1);
        olist l = { .n = 0 };
        push(&l, jg_cross_entropy(x, y));
        push(&l, jg_cross_entropy(w, yw));
        push(&l, jg_cross_entropy(o, yo));
        push(&l, jg_cross_entropy(jg_scale(x, 40), y)); /* large logits */
        push(&l, jg_cross_entropy(jg_transpose(jg_exp(jg_transpose(x))), y));
        char buf[64];
        snprintf(buf, sizeof buf, "cross_entropy %s", jg_dtype_str(t));
        check(&c, l.o, l.n, TOL, buf);
        ctx_fini(&c);
    }
}

Test(jit_ops, cross_entropy_label_out_of_range)
{
    tctx c;
    ctx_init(&c, 149);
    jg_node *x = input(&c, JG_F32, jg_shape(3, 4), SIGNED);
    jg_node *y = input_values(&c, JG_I32, jg_shape(3), (double[]){ 0, 3, 4 });
    jg_node *o = jg_cross_entropy(x, y);
    jg_program *p = jg_compile(c.g, &o, 1, &(jg_opts){ .executor = JG_EXEC_JIT });
    cr_assert(p, "%s", jg_errmsg(c.g));
    for (int i = 0; i < c.n_in; i++)
        jg_program_set(p, c.in[i].name, c.in[i].data, c.in[i].bytes);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE, "label 4 of 4 classes: %s", jg_errmsg(p));
    cr_assert(strstr(jg_errmsg(p), "row 2"), "message: %s", jg_errmsg(p));
    jg_program_free(p);
    ctx_fini(&c);
}

/* ---------------------------------------------------------------- gradients through the JIT */

/* The gradients of `loss` w.r.t. wrt[0..n), plus the loss itself, JIT against reference. */
static void check_grads(tctx *c, jg_node *loss, jg_node *const *wrt, int n, const char *what)
{
    jg_node *g[16];
    cr_assert(n < 16);
    cr_assert_eq(jg_grad(c->g, loss, wrt, n, g), JG_OK, "%s: jg_grad: %s", what, jg_errmsg(c->g));
    jg_node *outs[17] = { loss };
    int k = 1;
    for (int i = 0; i < n; i++) {
        cr_assert(g[i], "%s: no gradient for wrt %d", what, i);
        outs[k++] = g[i];
    }
    check(c, outs, k, TOL_GRAD, what);
}

Test(jit_ops, grad_mlp_cross_entropy)
{
    tctx c;
    ctx_init(&c, 151);
    jg_node *x = input(&c, JG_F64, jg_shape(17, 15), SIGNED);
    jg_node *y = input_(&c, JG_I32, jg_shape(17), LABELS, 10);
    jg_node *w1 = t_param(c.g, "w1", jg_shape(15, 33), 1), *b1 = t_param(c.g, "b1", jg_shape(33), 2);
    jg_node *w2 = t_param(c.g, "w2", jg_shape(33, 10), 3), *b2 = t_param(c.g, "b2", jg_shape(10), 4);
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *loss = jg_cross_entropy(jg_add(jg_matmul(h, w2), b2), y);
    check_grads(&c, loss, (jg_node *[]){ w1, b1, w2, b2, x }, 5, "grad: mlp + cross_entropy");
    ctx_fini(&c);
}

Test(jit_ops, grad_softmax_log)
{
    tctx c;
    ctx_init(&c, 152);
    jg_node *x = input(&c, JG_F64, jg_shape(17, 15), SIGNED);
    jg_node *r = input(&c, JG_F64, jg_shape(17, 15), SIGNED);
    jg_node *z = input(&c, JG_F64, jg_shape(3, 1023), SIGNED);
    jg_node *loss = jg_add(jg_sum(jg_mul(jg_log(jg_softmax(x, -1)), r), JG_ALL_AXES, false),
                           jg_mean(jg_mul(jg_log_softmax(z, 0), jg_softmax(z, 1)), JG_ALL_AXES, false));
    check_grads(&c, loss, (jg_node *[]){ x, z }, 2, "grad: softmax + log");
    ctx_fini(&c);
}

Test(jit_ops, grad_reduction_chain)
{
    tctx c;
    ctx_init(&c, 153);
    jg_node *x = input(&c, JG_F64, jg_shape(4, 5, 17), SIGNED);
    jg_node *v = input(&c, JG_F64, jg_shape(17), SIGNED);
    jg_node *a = jg_logsumexp(jg_mul(x, v), jg_axes(1), true);           /* [4,1,17] */
    jg_node *b = jg_sub(x, jg_mean(x, jg_axes(0, 2), true));              /* [4,5,17] */
    jg_node *m = jg_max(jg_add(b, a), jg_axes(-1), false);               /* [4,5] */
    jg_node *s = jg_min(jg_tanh(jg_sum(jg_square(b), jg_axes(2), false)), jg_axes(0), false);
    jg_node *loss = jg_add(jg_sum(jg_mul(m, m), JG_ALL_AXES, false),
                           jg_mean(jg_sqrt(jg_shift(s, 2)), JG_ALL_AXES, false));
    check_grads(&c, loss, (jg_node *[]){ x, v }, 2, "grad: reduction chain");
    ctx_fini(&c);
}

/* Gradients of the movement ops: slice (unslice), pad, concat, take (scatter_add),
 * permute, broadcast. */
Test(jit_ops, grad_movement)
{
    tctx c;
    ctx_init(&c, 154);
    jg_node *x = input(&c, JG_F64, jg_shape(3, 17), SIGNED);
    jg_node *e = input(&c, JG_F64, jg_shape(10, 15), SIGNED);
    jg_node *ids = input_(&c, JG_I32, jg_shape(2, 6), LABELS, 10);
    jg_node *row = input(&c, JG_F64, jg_shape(1, 17), SIGNED);
    jg_node *s1 = jg_slice(x, 1, 16, 0, -3);
    jg_node *s2 = jg_slice(x, 0, 0, 3, 2);
    jg_node *p = jg_pad(x, jg_shape(1, 0), jg_shape(0, 2), 0.5);
    jg_node *cc = jg_concat(((jg_node *[]){ x, jg_square(x), row }), 3, 0);
    jg_node *tk = jg_take(e, ids, 0);                                     /* [2,6,15] */
    jg_node *loss = jg_add(jg_sum(jg_square(s1), JG_ALL_AXES, false),
                           jg_sum(jg_mul(s2, s2), JG_ALL_AXES, false));
    loss = jg_add(loss, jg_sum(jg_tanh(p), JG_ALL_AXES, false));
    loss = jg_add(loss, jg_sum(jg_mul(cc, jg_permute(jg_broadcast_to(row, jg_shape(7, 17)), jg_axes(0, 1))),
                               JG_ALL_AXES, false));
    loss = jg_add(loss, jg_sum(jg_square(tk), JG_ALL_AXES, false));
    check_grads(&c, loss, (jg_node *[]){ x, e, row }, 3, "grad: movement ops");
    ctx_fini(&c);
}

/* JIT gradients against central differences of the JIT's own forward program, f64. */
Test(jit_ops, jit_gradient_finite_differences)
{
    tctx c;
    ctx_init(&c, 161);
    jg_node *x = input(&c, JG_F64, jg_shape(6, 5), SIGNED);
    jg_node *w1 = input(&c, JG_F64, jg_shape(5, 7), SIGNED), *b1 = input(&c, JG_F64, jg_shape(7), SIGNED);
    jg_node *w2 = input(&c, JG_F64, jg_shape(7, 3), SIGNED);
    jg_node *tgt = input(&c, JG_F64, jg_shape(6, 3), UNIT);
    jg_node *h = jg_tanh(jg_add(jg_matmul(x, w1), b1));
    jg_node *logits = jg_matmul(h, w2);
    /* soft-target cross entropy plus a little mse: smooth everywhere */
    jg_node *loss = jg_add(jg_neg(jg_mean(jg_sum(jg_mul(jg_log_softmax(logits, -1), tgt), jg_axes(1), false),
                                          JG_ALL_AXES, false)),
                           jg_mean(jg_square(jg_sub(jg_softmax(logits, -1), tgt)), JG_ALL_AXES, false));
    jg_node *wrt[4] = { w1, b1, w2, x }, *g[4];
    cr_assert_eq(jg_grad(c.g, loss, wrt, 4, g), JG_OK, "%s", jg_errmsg(c.g));
    jg_node *outs[5] = { loss, g[0], g[1], g[2], g[3] };
    void **an = run(&c, outs, 5, &(jg_opts){ .executor = JG_EXEC_JIT }, "jit gradients");

    jg_program *fwd = jg_compile(c.g, &loss, 1, &(jg_opts){ .executor = JG_EXEC_JIT });
    cr_assert(fwd, "%s", jg_errmsg(c.g));
    for (int i = 0; i < c.n_in; i++)
        cr_assert_eq(jg_program_set(fwd, c.in[i].name, c.in[i].data, c.in[i].bytes), JG_OK);
    const double eps = 1e-6;
    int checked = 0;
    for (int w = 0; w < 4; w++) {
        t_input *in = input_of(&c, wrt[w]);
        double *d = in->data;
        for (int64_t i = 0; i < in->n; i++) {
            double keep = d[i], lp, lm;
            d[i] = keep + eps;
            jg_program_set(fwd, in->name, in->data, in->bytes);
            cr_assert_eq(jg_program_run(fwd), JG_OK, "%s", jg_errmsg(fwd));
            jg_program_get(fwd, 0, &lp, sizeof lp);
            d[i] = keep - eps;
            jg_program_set(fwd, in->name, in->data, in->bytes);
            cr_assert_eq(jg_program_run(fwd), JG_OK, "%s", jg_errmsg(fwd));
            jg_program_get(fwd, 0, &lm, sizeof lm);
            d[i] = keep;
            jg_program_set(fwd, in->name, in->data, in->bytes);
            double num = (lp - lm) / (2 * eps), a = ((double *)an[1 + w])[i];
            cr_assert(fabs(a - num) <= 1e-6 * fmax(fabs(a), fabs(num)) + 1e-9,
                      "d loss / d %s[%lld]: jit gradient %.12g, finite difference %.12g",
                      jg_node_name(wrt[w]), (long long)i, a, num);
            checked++;
        }
    }
    cr_assert_eq(checked, 30 + 35 + 7 + 21);
    jg_program_free(fwd);
    free_results(an, 5);
    ctx_fini(&c);
}

/* ---------------------------------------------------------------- JIT settings */

/* A reduction-heavy graph with outputs large enough for the pool to split. */
static int reduction_heavy(tctx *c, jg_node **o)
{
    jg_node *x = input(c, JG_F32, jg_shape(8, 32, 1023), SIGNED);
    jg_node *y = input(c, JG_F32, jg_shape(8, 32, 1023), SIGNED);
    jg_node *e = jg_mul(jg_exp(jg_scale(x, 0.5)), y);
    int n = 0;
    o[n++] = jg_sum(e, jg_axes(0), false);
    o[n++] = jg_sum(e, jg_axes(1), true);
    o[n++] = jg_sum(e, jg_axes(2), false);
    o[n++] = jg_mean(e, jg_axes(0, 2), false);
    o[n++] = jg_max(x, jg_axes(0), false);
    o[n++] = jg_logsumexp(x, jg_axes(-1), false);
    o[n++] = jg_sum(x, JG_ALL_AXES, false);
    o[n++] = jg_sub(x, jg_mean(x, jg_axes(0), true));
    return n;
}

/* A f32 MLP forward and backward with a log_softmax loss against one-hot float targets. */
static int mlp_fwd_bwd(tctx *c, jg_node **o)
{
    jg_node *x = input(c, JG_F32, jg_shape(64, 100), SIGNED);
    jg_node *tgt = input(c, JG_F32, jg_shape(64, 10), UNIT);
    jg_node *w1 = jg_param(c->g, "w1", jg_shape(100, 130), jg_seeded(jg_he_normal(), 1));
    jg_node *b1 = jg_param(c->g, "b1", jg_shape(130), jg_seeded(jg_uniform(-0.1, 0.1), 2));
    jg_node *w2 = jg_param(c->g, "w2", jg_shape(130, 10), jg_seeded(jg_xavier_uniform(), 3));
    jg_node *h = jg_relu(jg_add(jg_matmul(x, w1), b1));
    jg_node *logits = jg_matmul(h, w2);
    jg_node *loss = jg_neg(jg_mean(jg_mul(jg_log_softmax(logits, -1), tgt), JG_ALL_AXES, false));
    jg_node *wrt[3] = { w1, b1, w2 }, *g[3];
    cr_assert_eq(jg_grad(c->g, loss, wrt, 3, g), JG_OK, "%s", jg_errmsg(c->g));
    int n = 0;
    o[n++] = loss;
    o[n++] = logits;
    for (int i = 0; i < 3; i++)
        o[n++] = g[i];
    return n;
}

/* Asserts results ra and rb of outs are the same bytes. */
static void same_bits(jg_node *const *o, int n, void **ra, void **rb, const char *what)
{
    for (int i = 0; i < n; i++) {
        size_t es = jg_dtype_size(jg_node_dtype(o[i]));
        int64_t numel = jg_shape_numel(jg_node_shape(o[i])), e = 0;
        if (memcmp(ra[i], rb[i], (size_t)numel * es) == 0)
            continue;
        while (e < numel && memcmp((char *)ra[i] + e * es, (char *)rb[i] + e * es, es) == 0)
            e++;
        cr_assert_fail("%s: output %d (%s) differs at element %lld: %.17g vs %.17g", what, i,
                       jg_node_op_name(o[i]), (long long)e, get(ra[i], jg_node_dtype(o[i]), e),
                       get(rb[i], jg_node_dtype(o[i]), e));
    }
}

/* The reference once, the JIT with 1 and with 2 threads: the two JIT runs bit for bit, the
 * 2-thread one against the reference at tl. */
static void threads_check(tctx *c, jg_node *const *o, int n, tol tl, const char *what)
{
    void **ref = run(c, o, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, what);
    void **one = run(c, o, n, &(jg_opts){ .executor = JG_EXEC_JIT, .num_threads = 1 }, what);
    void **two = run(c, o, n, &(jg_opts){ .executor = JG_EXEC_JIT, .num_threads = 2 }, what);
    char buf[160];
    snprintf(buf, sizeof buf, "%s, 1 vs 2 threads", what);
    same_bits(o, n, one, two, buf);
    snprintf(buf, sizeof buf, "%s, 2 threads vs reference", what);
    compare(o, n, two, ref, tl, buf, "jit threads=2", "reference");
    free_results(ref, n);
    free_results(one, n);
    free_results(two, n);
}

Test(jit_ops, threads_bit_identical)
{
    tctx c;
    ctx_init(&c, 171);
    jg_node *o[16];
    int n = reduction_heavy(&c, o);
    /* sums of 1023 f32 terms up to ~5 in size: f32 accumulation differs from the reference's
     * double by ~1e-5 absolute, hence 1e-4 here */
    threads_check(&c, o, n, (tol){ 1e-4, 1e-12 }, "reductions");
    ctx_fini(&c);

    ctx_init(&c, 172);
    n = mlp_fwd_bwd(&c, o);
    threads_check(&c, o, n, TOL, "mlp forward+backward");
    ctx_fini(&c);
}

/* The opaque kernels on outputs large enough for the pool to split them, and the gradient
 * of take (scatter_add) and of slice (unslice). */
Test(jit_ops, threads_opaque_ops)
{
    tctx c;
    ctx_init(&c, 175);
    jg_node *emb = input(&c, JG_F32, jg_shape(1000, 64), SIGNED);
    jg_node *ids = input_(&c, JG_I32, jg_shape(16, 40), LABELS, 1000);
    jg_node *x = input(&c, JG_F32, jg_shape(300, 100), SIGNED);
    jg_node *lab = input_(&c, JG_I32, jg_shape(300), LABELS, 100);
    jg_node *big = input_(&c, JG_I32, jg_shape(200), LABELS, 100);
    jg_node *tk = jg_take(emb, ids, 0);
    jg_node *sl = jg_slice(x, 1, 99, INT64_MIN, -3);
    jg_node *loss = jg_add(jg_sum(jg_square(tk), JG_ALL_AXES, false),
                           jg_sum(jg_tanh(sl), JG_ALL_AXES, false));
    jg_node *wrt[2] = { emb, x }, *g[2];
    cr_assert_eq(jg_grad(c.g, loss, wrt, 2, g), JG_OK, "%s", jg_errmsg(c.g));
    jg_node *o[] = { tk,
                     jg_pad(x, jg_shape(3, 1), jg_shape(2, 30), 0.25),
                     jg_concat(((jg_node *[]){ x, jg_neg(x), x }), 3, 1),
                     jg_concat(((jg_node *[]){ x, x }), 2, 0),
                     jg_one_hot(big, 100, JG_F32),
                     jg_argmax(x, 1),
                     jg_argmax(x, 0),
                     jg_cross_entropy(x, lab),
                     g[0],
                     g[1] };
    threads_check(&c, o, (int)(sizeof o / sizeof *o), TOL, "opaque ops");
    ctx_fini(&c);
}

/* Outputs that alias: the same node twice, an input, reshapes of an input and of a result;
 * and leaves as outputs and operands: constants, fills, scalars, parameters. */
Test(jit_ops, aliased_outputs_and_leaves)
{
    for (int k = 0; k < 2; k++) {
        jg_dtype t = FLOATS[k];
        tctx c;
        ctx_init(&c, 177 + (uint64_t)k);
        jg_node *x = input(&c, t, jg_shape(3, 17), SIGNED);
        jg_node *y = jg_exp(x);
        double cv[51];
        for (int i = 0; i < 51; i++)
            cv[i] = 0.1 * i - 2.5;
        jg_node *cst = jg_const(c.g, t, jg_shape(3, 17), cv);
        jg_node *fill = jg_fill(c.g, t, jg_shape(3, 17), 2.5);
        jg_node *w = jg_param_as(c.g, "w", t, jg_shape(17), jg_seeded(jg_normal(0, 1), 3));
        jg_node *o[] = { y, y, x, jg_reshape(x, jg_shape(17, 3)), jg_reshape(y, jg_shape(-1)),
                         jg_stop_gradient(x), jg_add(y, jg_reshape(jg_reshape(y, jg_shape(51)), jg_shape(3, 17))),
                         cst, fill, w, jg_scalar(c.g, t, -1.25),
                         jg_add(jg_mul(x, cst), jg_sub(fill, w)),
                         jg_sum(jg_mul(cst, jg_scalar(c.g, t, 3)), jg_axes(0), false) };
        check(&c, o, (int)(sizeof o / sizeof *o), TOL, k ? "aliased outputs, leaves f64" : "aliased outputs, leaves f32");
        ctx_fini(&c);
    }
}

/* A mixed graph for the settings below: all loop shapes, a GEMM, a softmax. */
static int mixed(tctx *c, jg_node **o, jg_dtype t)
{
    jg_node *v = input(c, t, jg_shape(1023), SIGNED), *w = input(c, t, jg_shape(17), POS);
    jg_node *col = input(c, t, jg_shape(17, 1), SIGNED), *row = input(c, t, jg_shape(1, 15), SIGNED);
    jg_node *z = input(c, t, jg_shape(4, 5, 17), SIGNED);
    jg_node *a = input(c, t, jg_shape(17, 15), SIGNED), *b = input(c, t, jg_shape(15, 33), SIGNED);
    int n = 0;
    o[n++] = jg_tanh(jg_mul(v, jg_exp(jg_neg(jg_abs(v)))));
    o[n++] = jg_log(jg_add(w, jg_sqrt(w)));
    o[n++] = jg_where(jg_gt(col, row), jg_sub(col, row), jg_sigmoid(jg_mul(col, row)));
    o[n++] = jg_sum(z, jg_axes(2), false);
    o[n++] = jg_sum(z, jg_axes(0), true);
    o[n++] = jg_max(z, jg_axes(0, 1), false);
    o[n++] = jg_logsumexp(z, JG_ALL_AXES, false);
    o[n++] = jg_sum(v, JG_ALL_AXES, false);
    o[n++] = jg_relu(jg_matmul(a, b));
    o[n++] = jg_softmax(jg_slice(jg_permute(z, jg_axes(2, 1, 0)), 0, -1, INT64_MIN, -2), 1);
    o[n++] = jg_mean(jg_square(jg_sub(z, jg_mean(z, jg_axes(-1), true))), jg_axes(-1), false);
    return n;
}

Test(jit_ops, vector_widths)
{
    static const int bits[3] = { 512, 256, 32 };
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, 181 + (uint64_t)k);
        jg_node *o[16];
        int n = mixed(&c, o, FLOATS[k]);
        void **ref = run(&c, o, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, "vector_bits");
        for (int b = 0; b < 3; b++) {
            char buf[64], desc[32];
            snprintf(buf, sizeof buf, "vector_bits %d %s", bits[b], jg_dtype_str(FLOATS[k]));
            snprintf(desc, sizeof desc, "jit vector_bits=%d", bits[b]);
            void **jit = run(&c, o, n, &(jg_opts){ .executor = JG_EXEC_JIT, .vector_bits = bits[b] }, buf);
            compare(o, n, jit, ref, TOL, buf, desc, "reference");
            free_results(jit, n);
        }
        free_results(ref, n);
        ctx_fini(&c);
    }
}

Test(jit_ops, no_fusion)
{
    const jg_opts fused = { .executor = JG_EXEC_JIT }, unfused = { .executor = JG_EXEC_JIT, .no_fusion = true };
    for (int k = 0; k < 2; k++) {
        tctx c;
        ctx_init(&c, 191 + (uint64_t)k);
        jg_node *o[24];
        int n = k == 0 ? mixed(&c, o, JG_F32) : mlp_fwd_bwd(&c, o);
        const char *what = k == 0 ? "no_fusion, mixed f32" : "no_fusion, mlp forward+backward";
        void **ref = run(&c, o, n, &(jg_opts){ .executor = JG_EXEC_REFERENCE }, what);
        void **f = run(&c, o, n, &fused, what), **u = run(&c, o, n, &unfused, what);
        compare(o, n, u, ref, TOL, what, "unfused", "reference");
        compare(o, n, f, ref, TOL, what, "fused", "reference");
        /* against each other, tighter than against the reference */
        compare(o, n, u, f, (tol){ 1e-6, 1e-13 }, what, "unfused", "fused");
        free_results(ref, n);
        free_results(f, n);
        free_results(u, n);
        ctx_fini(&c);
    }
}
