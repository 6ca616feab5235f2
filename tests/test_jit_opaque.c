/* The opaque ops' JIT kernels (src/jit/emit_opaque.c) against the reference executor: each
 * node's kernel is emitted directly, compiled, and called over its whole range, over two
 * halves, and one unit at a time, at 16 lanes and at 1, for f32 and f64 (and i32 where the op
 * takes it); out-of-range indices return 1 + the first bad position. */
#include "graph/graph.h"
#include "jit/emit_opaque.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

TestSuite(jit_opaque, .timeout = 300);

static jit_session *session(void)
{
    static jit_session *s;
    if (!s) {
        char err[256] = "";
        s = jit_session_new(&(jit_target){ 0 }, err, sizeof err);
        cr_assert(s, "jit_session_new: %s", err);
    }
    return s;
}

/* ---- data */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static double next_unit(void) /* [0, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* An input's buffer in its dtype: values in [-2, 2), or small integers with ties. */
static void *random_data(jg_dtype t, jg_shape s, bool ties)
{
    int64_t n = jg_shape_numel(s);
    void *p = malloc((size_t)n * jg_dtype_size(t));
    for (int64_t i = 0; i < n; i++) {
        double v = ties ? floor(next_unit() * 5) - 2 : next_unit() * 4 - 2;
        if (t == JG_F32)
            ((float *)p)[i] = (float)v;
        else if (t == JG_F64)
            ((double *)p)[i] = v;
        else
            ((int32_t *)p)[i] = (int32_t)floor(next_unit() * 200) - 100;
    }
    return p;
}

/* i32 indices in [0, dim). */
static int32_t *random_indices(jg_shape s, int64_t dim)
{
    int64_t n = jg_shape_numel(s);
    int32_t *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++)
        p[i] = (int32_t)(next_unit() * (double)dim);
    return p;
}

static double value_at(const void *p, jg_dtype t, int64_t i)
{
    return t == JG_F32 ? ((const float *)p)[i]
           : t == JG_F64 ? ((const double *)p)[i]
                         : ((const int32_t *)p)[i];
}

/* ---- the check */

static int64_t node_bytes(const jg_node *n)
{
    return jg_shape_numel(n->shape) * (int64_t)jg_dtype_size(n->dtype);
}

/* The reference executor's value of n (operand k bound from data[k]); NULL when the run
 * failed, with its status in *st. */
static void *reference(jg_graph *g, jg_node *n, void *const *data, jg_status *st)
{
    jg_program *p = jg_compile(g, &n, 1, &(jg_opts){ .executor = JG_EXEC_REFERENCE });
    cr_assert(p, "jg_compile: %s", jg_errmsg(g));
    for (int k = 0; k < n->n_in; k++)
        cr_assert_eq(jg_program_set(p, jg_node_name(n->in[k]), data[k],
                                    (size_t)node_bytes(n->in[k])), JG_OK, "%s", jg_errmsg(p));
    void *out = NULL;
    *st = jg_program_run(p);
    if (*st == JG_OK) {
        out = malloc((size_t)node_bytes(n));
        cr_assert_eq(jg_program_get(p, 0, out, (size_t)node_bytes(n)), JG_OK);
    }
    jg_program_free(p);
    return out;
}

static jit_kernel_fn compile_kernel(const jg_node *n, int width, int64_t *outer, int64_t *align)
{
    jit_module m;
    cr_assert_eq(jit_module_new(session(), &m, "test_opaque"), JG_OK);
    emit_ctx e = { .width = width };
    int in_slots[JG_MAX_DIMS * 2];
    for (int k = 0; k < n->n_in; k++)
        in_slots[k] = k;
    *outer = *align = -7;
    LLVMValueRef fn = opaque_emit(&e, &m, n, n->n_in, in_slots, outer, align);
    cr_assert(fn, "opaque_emit gave NULL for %s", jg_node_op_name(n));
    cr_assert(*outer >= 1 && *align >= 1, "outer %lld, align %lld", (long long)*outer,
              (long long)*align);
    void *addr = NULL;
    jit_compile_info info;
    char err[1024] = "";
    cr_assert_eq(jit_compile(session(), &m, fn, false, &addr, &info, err, sizeof err), JG_OK,
                 "jit_compile: %s", err);
    cr_assert(addr);
    return (jit_kernel_fn)(uintptr_t)addr;
}

static void assert_same(const jg_node *n, const void *got, const void *want, double tol,
                        const char *how, int width)
{
    for (int64_t i = 0; i < jg_shape_numel(n->shape); i++) {
        double a = value_at(got, n->dtype, i), b = value_at(want, n->dtype, i);
        if (isnan(a) && isnan(b))
            continue;
        cr_assert(fabs(a - b) <= tol * fmax(1, fabs(b)),
                  "%s (%s, width %d, %s): element %lld is %.17g, reference %.17g",
                  jg_node_op_name(n), jg_dtype_str(n->dtype), width, how, (long long)i, a, b);
    }
}

/* Runs the kernel over [0, outer) in `parts` calls split on align. Every call returns 0 or
 * want (1 + the bad position), and some call returns want when it is not 0. */
static void run_split(jit_kernel_fn fn, void **bufs, int64_t outer, int64_t align, int64_t parts,
                      int64_t want, const char *how)
{
    int64_t units = (outer + align - 1) / align, at = 0;
    bool reported = false;
    for (int64_t c = 0; c < parts && at < outer; c++) {
        int64_t end = c == parts - 1 ? outer : (units * (c + 1) / parts) * align;
        end = end > outer ? outer : end;
        if (end <= at)
            continue;
        int64_t r = fn(bufs, at, end, NULL);
        cr_assert(r == 0 || r == want, "%s: call [%lld, %lld) returned %lld, want 0 or %lld",
                  how, (long long)at, (long long)end, (long long)r, (long long)want);
        reported |= r != 0;
        at = end;
    }
    cr_assert_eq(reported, want != 0, "%s: %s", how,
                 want ? "no call reported the bad index" : "a call reported a bad index");
}

/* Whether element i of a buffer still holds the fill byte. */
static bool untouched(const void *p, size_t size, int64_t i, unsigned char fill)
{
    const unsigned char *b = (const unsigned char *)p + (size_t)i * size;
    for (size_t k = 0; k < size; k++)
        if (b[k] != fill)
            return false;
    return true;
}

/* The two halves of a split run write disjoint parts of the output that cover it: otherwise
 * concurrent chunks would race. Each half runs on its own garbage-filled buffer. */
static void check_disjoint(const jg_node *n, jit_kernel_fn fn, void **bufs, int64_t outer,
                           int64_t align, int width)
{
    int64_t units = (outer + align - 1) / align, mid = units / 2 * align, numel;
    size_t size = jg_dtype_size(n->dtype), bytes = (size_t)node_bytes(n);
    if (mid <= 0 || mid >= outer)
        return;
    void *half[2] = { malloc(bytes), malloc(bytes) };
    const unsigned char fill[2] = { 0xA5, 0x5A };
    void *out = bufs[n->n_in];
    for (int h = 0; h < 2; h++) {
        memset(half[h], fill[h], bytes);
        bufs[n->n_in] = half[h];
        cr_assert_eq(fn(bufs, h ? mid : 0, h ? outer : mid, NULL), 0);
    }
    bufs[n->n_in] = out;
    numel = jg_shape_numel(n->shape);
    for (int64_t i = 0; i < numel; i++) {
        bool a = !untouched(half[0], size, i, fill[0]), b = !untouched(half[1], size, i, fill[1]);
        cr_assert(a != b, "%s (%s, width %d): element %lld written by %s of [0, %lld) split at "
                  "%lld", jg_node_op_name(n), jg_dtype_str(n->dtype), width, (long long)i,
                  a ? "both halves" : "neither half", (long long)outer, (long long)mid);
    }
    free(half[0]);
    free(half[1]);
}

/* Checks n's kernel against the reference at widths 16 and 1 (operand k is data[k]):
 * want_bad >= 0 is the position of the first bad index in the index operand. */
static void check_node(jg_graph *g, jg_node *n, void *const *data, double tol, int64_t want_bad)
{
    cr_assert(jg_node_ok(n), "builder failed: %s", jg_errmsg(g));
    jg_status st;
    void *want = reference(g, n, data, &st);
    cr_assert_eq(st, want_bad >= 0 ? JG_ERR_RANGE : JG_OK, "reference run: %s",
                 jg_status_str(st));
    int64_t bytes = node_bytes(n);
    void *got = malloc((size_t)bytes);
    void *bufs[JG_MAX_DIMS * 2];
    for (int k = 0; k < n->n_in; k++)
        bufs[k] = data[k];
    bufs[n->n_in] = got;
    const int widths[] = { 16, 1, 8 };
    for (int wi = 0; wi < 3; wi++) {
        int64_t outer, align;
        jit_kernel_fn fn = compile_kernel(n, widths[wi], &outer, &align);
        int64_t parts[] = { 1, 2, outer <= 64 ? outer : 3 };
        const char *how[] = { "one call", "two calls", "a call per unit" };
        for (int p = 0; p < 3; p++) {
            memset(got, 0xA5, (size_t)bytes); /* garbage where the kernel writes nothing */
            run_split(fn, bufs, outer, align, parts[p], want_bad + 1, how[p]);
            if (want_bad < 0)
                assert_same(n, got, want, tol, how[p], widths[wi]);
        }
        if (want_bad < 0)
            check_disjoint(n, fn, bufs, outer, align, widths[wi]);
    }
    free(got);
    free(want);
}

static double tol_of(jg_dtype t) { return t == JG_F32 ? 1e-6 : t == JG_F64 ? 1e-13 : 0; }

static const jg_dtype float_types[] = { JG_F32, JG_F64 };

/* ---- argmax */

static void check_argmax(jg_dtype t, jg_shape s, int axis, bool ties)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", t, s);
    void *data[1] = { random_data(t, s, ties) };
    check_node(g, jg_argmax(x, axis), data, 0, -1);
    free(data[0]);
    jg_graph_free(g);
}

Test(jit_opaque, argmax)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        for (int ties = 0; ties < 2; ties++) {
            check_argmax(t, jg_shape(1), 0, ties);
            check_argmax(t, jg_shape(15), 0, ties);
            check_argmax(t, jg_shape(17), 0, ties);
            check_argmax(t, jg_shape(3, 17), 1, ties);  /* rows */
            check_argmax(t, jg_shape(17, 3), 0, ties);  /* columns, masked lanes */
            check_argmax(t, jg_shape(4, 5, 17), 1, ties); /* middle axis, 2 column blocks */
            check_argmax(t, jg_shape(2, 15, 33), -1, ties);
            check_argmax(t, jg_shape(1, 17), 0, ties);
            check_argmax(t, jg_shape(3, 1, 2), 1, ties);
        }
    }
}

/* The first maximum, and the first NaN wins; in rows and in columns. */
Test(jit_opaque, argmax_nan_and_ties)
{
    const double rows[4][5] = {
        { 1, 3, 3, 2, 0 },
        { 1, NAN, 5, NAN, 0 },
        { NAN, 5, 7, 7, 7 },
        { -INFINITY, -INFINITY, -INFINITY, 4, NAN },
    };
    for (int ti = 0; ti < 2; ti++) {
        jg_dtype t = float_types[ti];
        for (int axis = 0; axis < 2; axis++) {
            jg_graph *g = jg_graph_new();
            jg_shape s = axis == 1 ? jg_shape(4, 5) : jg_shape(5, 4);
            jg_node *x = jg_input(g, "x", t, s);
            void *data = malloc(20 * jg_dtype_size(t));
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 5; j++) {
                    int at = axis == 1 ? i * 5 + j : j * 4 + i;
                    if (t == JG_F32)
                        ((float *)data)[at] = (float)rows[i][j];
                    else
                        ((double *)data)[at] = rows[i][j];
                }
            jg_node *n = jg_argmax(x, axis);
            check_node(g, n, &data, 0, -1);
            /* and the expected values themselves */
            int64_t outer, align;
            int32_t out[4];
            void *bufs[2] = { data, out };
            cr_assert_eq(compile_kernel(n, 16, &outer, &align)(bufs, 0, outer, NULL), 0);
            const int32_t want[4] = { 1, 1, 0, 4 };
            for (int i = 0; i < 4; i++)
                cr_assert_eq(out[i], want[i], "axis %d, group %d: %d, want %d", axis, i, out[i],
                             want[i]);
            free(data);
            jg_graph_free(g);
        }
    }
}

/* ---- unslice (built directly: it has no public builder; slice's gradient makes it) */

static void check_unslice(jg_dtype t, jg_shape part, int axis, int64_t full_len,
                          const int64_t *start, const int64_t *step)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", t, part);
    op_attr a = { .axis = axis, .count = full_len };
    for (int k = 0; k < part.ndim; k++) {
        a.list[k] = start[k];
        a.step[k] = step[k];
    }
    jg_node *n = op_build(JG_HERE, JG_OP_UNSLICE, &x, 1, &a);
    void *data[1] = { random_data(t, part, false) };
    check_node(g, n, data, 0, -1);
    free(data[0]);
    jg_graph_free(g);
}

Test(jit_opaque, unslice)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        check_unslice(t, jg_shape(5), 0, 17, (int64_t[]){ 2 }, (int64_t[]){ 3 });
        check_unslice(t, jg_shape(1), 0, 15, (int64_t[]){ 14 }, (int64_t[]){ 1 });
        check_unslice(t, jg_shape(15), 0, 17, (int64_t[]){ 1 }, (int64_t[]){ 1 });
        /* the middle axis, by 3 */
        check_unslice(t, jg_shape(4, 5, 3), 1, 15, (int64_t[]){ 0, 1, 0 },
                      (int64_t[]){ 1, 3, 1 });
        /* backwards on the last axis */
        check_unslice(t, jg_shape(3, 6), 1, 17, (int64_t[]){ 0, 16 }, (int64_t[]){ 1, -3 });
        /* axis 0 sliced (the split axis), axis 1 reversed */
        check_unslice(t, jg_shape(6, 17), 0, 17, (int64_t[]){ 1, 16 }, (int64_t[]){ 3, -1 });
        /* contiguous rows in the middle, and a length-1 axis with a huge step */
        check_unslice(t, jg_shape(2, 4, 17), 1, 15, (int64_t[]){ 0, 11, 0 },
                      (int64_t[]){ 1, 1, 1 });
        check_unslice(t, jg_shape(1, 3), 0, 4, (int64_t[]){ 2, 0 },
                      (int64_t[]){ INT64_MAX, 1 });
    }
}

/* ---- pad */

static void check_pad(jg_dtype t, jg_shape s, jg_shape before, jg_shape after, double value)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", t, s);
    void *data[1] = { random_data(t, s, false) };
    jg_node *n = jg_pad(x, before, after, value);
    check_node(g, n, data, 0, -1);
    if (t != JG_I32 && value == 0 && signbit(value)) { /* -0.0 is not zero bytes */
        int64_t outer, align;
        void *out = malloc((size_t)node_bytes(n));
        void *bufs[2] = { data[0], out };
        jit_kernel_fn fn = compile_kernel(n, 16, &outer, &align);
        cr_assert_eq(fn(bufs, 0, outer, NULL), 0);
        cr_assert(signbit(value_at(out, t, 0)), "pad value -0.0 lost its sign");
        free(out);
    }
    free(data[0]);
    jg_graph_free(g);
}

Test(jit_opaque, pad)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        check_pad(t, jg_shape(1), jg_shape(0), jg_shape(3), 0.5);
        check_pad(t, jg_shape(15), jg_shape(2), jg_shape(1), 0);
        check_pad(t, jg_shape(17), jg_shape(17), jg_shape(16), 7.25);
        check_pad(t, jg_shape(3, 17), jg_shape(1, 0), jg_shape(2, 3), -1.5);
        check_pad(t, jg_shape(2, 5, 17), jg_shape(0, 1, 2), jg_shape(1, 0, 16), 0);
        check_pad(t, jg_shape(2, 3, 4), jg_shape(1, 2, 0), jg_shape(0, 1, 0), -0.0);
        check_pad(t, jg_shape(4, 1), jg_shape(0, 15), jg_shape(0, 0), 3);
    }
}

/* ---- concat */

static void check_concat(jg_dtype t, const jg_shape *shapes, int n_in, int axis)
{
    static const char *names[] = { "a", "b", "c", "d" };
    jg_graph *g = jg_graph_new();
    jg_node *xs[4];
    void *data[4];
    for (int i = 0; i < n_in; i++) {
        xs[i] = jg_input(g, names[i], t, shapes[i]);
        data[i] = random_data(t, shapes[i], false);
    }
    check_node(g, jg_concat(xs, n_in, axis), data, 0, -1);
    for (int i = 0; i < n_in; i++)
        free(data[i]);
    jg_graph_free(g);
}

Test(jit_opaque, concat)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        check_concat(t, (jg_shape[]){ jg_shape(15), jg_shape(17), jg_shape(1) }, 3, 0);
        check_concat(t, (jg_shape[]){ jg_shape(2, 3, 4), jg_shape(2, 5, 4) }, 2, 1);
        check_concat(t, (jg_shape[]){ jg_shape(3, 17), jg_shape(3, 1), jg_shape(3, 15) }, 3, -1);
        check_concat(t, (jg_shape[]){ jg_shape(1, 17), jg_shape(16, 17) }, 2, 0);
        check_concat(t, (jg_shape[]){ jg_shape(5, 2) }, 1, 1);
    }
}

/* ---- take */

static void check_take(jg_dtype t, jg_shape xs, jg_shape is, int axis, int64_t bad_at,
                       int32_t bad_value)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", t, xs);
    jg_node *idx = jg_input(g, "idx", JG_I32, is);
    jg_node *n = jg_take(x, idx, axis);
    cr_assert(jg_node_ok(n), "%s", jg_errmsg(g));
    int64_t dim = xs.dim[n->attr.axis];
    int32_t *ip = random_indices(is, dim);
    if (bad_at >= 0) {
        ip[bad_at] = bad_value;
        if (bad_at + 2 < jg_shape_numel(is))
            ip[bad_at + 2] = -1; /* a later bad index is not the one reported */
    }
    void *data[2] = { random_data(t, xs, false), ip };
    check_node(g, n, data, 0, bad_at);
    free(data[0]);
    free(ip);
    jg_graph_free(g);
}

Test(jit_opaque, take)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        check_take(t, jg_shape(17, 5), jg_shape(3), 0, -1, 0);      /* embedding rows */
        check_take(t, jg_shape(4, 17, 3), jg_shape(2, 5), 1, -1, 0); /* the middle axis */
        check_take(t, jg_shape(3, 15), jg_shape(17), 1, -1, 0);      /* single elements */
        check_take(t, jg_shape(1), jg_shape(1), 0, -1, 0);
        check_take(t, jg_shape(15, 40), JG_SCALAR, 0, -1, 0);
        check_take(t, jg_shape(2, 17, 33), jg_shape(16), 1, -1, 0);
        check_take(t, jg_shape(5, 40), jg_shape(3, 19), 1, -1, 0);  /* im2col: gathered rows */
    }
}

Test(jit_opaque, take_out_of_range)
{
    for (int ti = 0; ti < 2; ti++) {
        jg_dtype t = float_types[ti];
        check_take(t, jg_shape(17, 5), jg_shape(9), 0, 3, -1);
        check_take(t, jg_shape(17, 5), jg_shape(9), 0, 0, 17); /* = dim */
        check_take(t, jg_shape(4, 17, 3), jg_shape(2, 5), 1, 7, INT32_MIN);
        check_take(t, jg_shape(4, 17, 3), jg_shape(2, 5), 1, 9, INT32_MAX);
        check_take(t, jg_shape(3, 15), JG_SCALAR, 1, 0, 15);
        check_take(t, jg_shape(3, 15), jg_shape(20), 1, 18, 15); /* the gathered rows */
    }
}

/* ---- scatter_add (built directly, as take's gradient builds it) */

static void check_scatter_add(jg_dtype t, jg_shape ys, jg_shape is, int axis, int64_t count,
                              int64_t bad_at, int32_t bad_value)
{
    jg_graph *g = jg_graph_new();
    jg_node *in[2] = { jg_input(g, "y", t, ys), jg_input(g, "idx", JG_I32, is) };
    jg_node *n = op_build(JG_HERE, JG_OP_SCATTER_ADD, in, 2,
                          &(op_attr){ .axis = axis, .count = count });
    int32_t *ip = random_indices(is, count);
    if (bad_at >= 0)
        ip[bad_at] = bad_value;
    void *data[2] = { random_data(t, ys, false), ip };
    /* f32 sums of repeated rows: the reference adds in double, the kernel in float */
    check_node(g, n, data, t == JG_F32 ? 1e-5 : tol_of(t), bad_at);
    free(data[0]);
    free(ip);
    jg_graph_free(g);
}

Test(jit_opaque, scatter_add)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        check_scatter_add(t, jg_shape(3, 4), jg_shape(3), 0, 5, -1, 0);
        check_scatter_add(t, jg_shape(15), jg_shape(15), 0, 17, -1, 0);
        check_scatter_add(t, jg_shape(40, 17), jg_shape(40), 0, 3, -1, 0); /* many repeats */
        check_scatter_add(t, jg_shape(2, 2, 3, 17), jg_shape(2, 3), 1, 4, -1, 0);
        check_scatter_add(t, jg_shape(3, 15), jg_shape(15), 1, 17, -1, 0);
        check_scatter_add(t, jg_shape(1), jg_shape(1), 0, 1, -1, 0);
        check_scatter_add(t, jg_shape(5, 33), JG_SCALAR, 0, 2, -1, 0); /* 0-d index */
    }
    check_scatter_add(JG_F32, jg_shape(2, 2, 3, 17), jg_shape(2, 3), 1, 4, 4, 4);
    check_scatter_add(JG_F64, jg_shape(15), jg_shape(15), 0, 17, 14, -3);
}

/* ---- one_hot */

static void check_one_hot(jg_dtype t, jg_shape is, int depth, int64_t bad_at, int32_t bad_value)
{
    jg_graph *g = jg_graph_new();
    jg_node *idx = jg_input(g, "idx", JG_I32, is);
    int32_t *ip = random_indices(is, depth);
    if (bad_at >= 0)
        ip[bad_at] = bad_value;
    void *data[1] = { ip };
    check_node(g, jg_one_hot(idx, depth, t), data, 0, bad_at);
    free(ip);
    jg_graph_free(g);
}

Test(jit_opaque, one_hot)
{
    const jg_dtype types[] = { JG_F32, JG_F64, JG_I32 };
    for (int ti = 0; ti < 3; ti++) {
        jg_dtype t = types[ti];
        check_one_hot(t, jg_shape(15), 17, -1, 0);
        check_one_hot(t, jg_shape(3, 4), 5, -1, 0);
        check_one_hot(t, jg_shape(1), 1, -1, 0);
        check_one_hot(t, JG_SCALAR, 15, -1, 0);
        check_one_hot(t, jg_shape(17), 33, -1, 0);
        check_one_hot(t, jg_shape(17), 33, 16, 33);
        check_one_hot(t, jg_shape(3, 4), 5, 5, -1);
    }
}

/* ---- cross_entropy */

static void check_cross_entropy(jg_dtype t, int64_t rows, int64_t c, int64_t bad_at,
                                int32_t bad_value, double scale)
{
    jg_graph *g = jg_graph_new();
    jg_node *logits = jg_input(g, "logits", t, jg_shape(rows, c));
    jg_node *labels = jg_input(g, "labels", JG_I32, jg_shape(rows));
    void *x = random_data(t, jg_shape(rows, c), false);
    for (int64_t i = 0; i < rows * c; i++) /* large logits test the max subtraction */
        if (t == JG_F32)
            ((float *)x)[i] *= (float)scale;
        else
            ((double *)x)[i] *= scale;
    int32_t *lp = random_indices(jg_shape(rows), c);
    if (bad_at >= 0)
        lp[bad_at] = bad_value;
    void *data[2] = { x, lp };
    check_node(g, jg_cross_entropy(logits, labels), data, tol_of(t), bad_at);
    free(x);
    free(lp);
    jg_graph_free(g);
}

Test(jit_opaque, cross_entropy)
{
    for (int ti = 0; ti < 2; ti++) {
        jg_dtype t = float_types[ti];
        check_cross_entropy(t, 1, 1, -1, 0, 1);
        check_cross_entropy(t, 15, 17, -1, 0, 1);
        check_cross_entropy(t, 17, 15, -1, 0, 1);
        check_cross_entropy(t, 3, 16, -1, 0, 1);
        check_cross_entropy(t, 64, 10, -1, 0, 300); /* exp would overflow without the max */
        check_cross_entropy(t, 15, 17, 0, -1, 1);
        check_cross_entropy(t, 15, 17, 9, 17, 1);
    }
}

/* Ops that are not opaque get no kernel here, and nothing is added to the module. */
Test(jit_opaque, other_ops)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(3, 4));
    jit_module m;
    cr_assert_eq(jit_module_new(session(), &m, "none"), JG_OK);
    emit_ctx e = { .width = 16 };
    int slots[2] = { 0, 1 };
    int64_t outer = -7, align = -7;
    cr_assert_null(opaque_emit(&e, &m, jg_exp(x), 1, slots, &outer, &align));
    cr_assert_null(opaque_emit(&e, &m, jg_sum(x, JG_ALL_AXES, false), 1, slots, &outer, &align));
    cr_assert_null(LLVMGetFirstFunction(m.mod));
    jit_module_dispose(&m);
    jg_graph_free(g);
}
