/* Random graphs through the JIT against the reference executor: 50 seeded DAGs of 5 to 25 ops
 * mixing elementwise ops (unary ones on safe domains: log, sqrt, rsqrt and pow of |x| + 1, exp
 * of tanh x), broadcasting binary ops, reductions over random axes (keepdims sometimes),
 * movement (reshape, permute, transpose, broadcast_to, slice with any step), now and then pad,
 * concat, take and matmul; most graphs also output the gradients of sum(last * r) with
 * respect to their first inputs. f32 graphs must agree to 1e-4 (|jit - ref| <= tol * max(1,
 * |ref|): f32 rounding accumulates along the chains), f64 graphs to 1e-10. Each graph also
 * draws JIT settings (threads, vector width, fusion off). A mismatch prints the seed, the
 * settings and the graph (jg_graph_dump); a crash (a signal, e.g. an LLVM fatal error) prints
 * the seed from a signal handler. To debug one seed, set ONLY_SEED below;
 * JG_RANDOM_VERBOSE=1 in the environment dumps every graph. */
#include "support/support.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(jit_random, .timeout = 120);

#define N_GRAPHS 50
#define ONLY_SEED 0 /* nonzero: run just this seed (debugging) */
#define MAX_POOL 64
#define MAX_INPUTS 16
#define MAX_NUMEL 6000
#define MAX_NDIM 4
#define MAX_OUTS 6

/* The seed being run, for the crash handler. */
static volatile sig_atomic_t current_seed = -1;

static void on_crash(int sig)
{
    char buf[64] = "\njit_random: crashed (signal) in seed ";
    size_t n = strlen(buf);
    char digits[24];
    int k = 0;
    long v = (long)current_seed;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && k < 20);
    while (k > 0 && n < sizeof buf - 2)
        buf[n++] = digits[--k];
    buf[n++] = '\n';
    ssize_t w = write(2, buf, n);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_crashes(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
}

typedef struct rgen {
    uint64_t s;
} rgen;

static uint64_t next(rgen *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int pick(rgen *r, int n) { return (int)(next(r) % (uint64_t)n); }
static double unif(rgen *r) { return (double)(next(r) >> 11) * 0x1.0p-53; }
static bool chance(rgen *r, double p) { return unif(r) < p; }

typedef struct rinput {
    char name[16];
    void *data;
    size_t bytes;
} rinput;

typedef struct world {
    rgen r;
    jg_graph *g;
    jg_dtype t;
    jg_node *pool[MAX_POOL];
    int n_pool;
    rinput in[MAX_INPUTS];
    int n_in;
    jg_node *floats[MAX_INPUTS]; /* the float inputs, in creation order */
    int n_float;
    int n_ops; /* ops built so far (builder calls, not counting inputs) */
} world;

static const int64_t DIMS[] = { 1, 2, 3, 4, 5, 7, 15, 16, 17, 33 };

/* An i32 input of indices in [0, hi). */
static jg_node *new_index_input(world *w, jg_shape s, int64_t hi)
{
    cr_assert(w->n_in < MAX_INPUTS);
    rinput *in = &w->in[w->n_in];
    snprintf(in->name, sizeof in->name, "i%d", w->n_in);
    int64_t n = jg_shape_numel(s);
    in->bytes = (size_t)n * sizeof(int32_t);
    in->data = malloc(in->bytes ? in->bytes : 1);
    cr_assert(in->data);
    for (int64_t i = 0; i < n; i++)
        ((int32_t *)in->data)[i] = (int32_t)(next(&w->r) % (uint64_t)hi);
    w->n_in++;
    return jg_input(w->g, in->name, JG_I32, s);
}

static jg_node *new_input(world *w, jg_shape s)
{
    cr_assert(w->n_in < MAX_INPUTS);
    rinput *in = &w->in[w->n_in];
    snprintf(in->name, sizeof in->name, "x%d", w->n_in);
    int64_t n = jg_shape_numel(s);
    in->bytes = (size_t)n * jg_dtype_size(w->t);
    in->data = malloc(in->bytes ? in->bytes : 1);
    cr_assert(in->data);
    for (int64_t i = 0; i < n; i++) {
        double v = 4 * unif(&w->r) - 2;
        if (w->t == JG_F32)
            ((float *)in->data)[i] = (float)v;
        else
            ((double *)in->data)[i] = v;
    }
    w->n_in++;
    jg_node *x = jg_input(w->g, in->name, w->t, s);
    w->floats[w->n_float++] = x;
    return x;
}

static void add_pool(world *w, jg_node *n)
{
    cr_assert(jg_node_ok(n), "seed %ld: builder failed: %s", (long)current_seed, jg_errmsg(w->g));
    if (w->n_pool < MAX_POOL)
        w->pool[w->n_pool++] = n;
    else
        w->pool[pick(&w->r, MAX_POOL)] = n;
}

/* A pool node, recent ones more likely (so chains get deep). */
static jg_node *from_pool(world *w)
{
    int n = w->n_pool;
    if (chance(&w->r, 0.6))
        return w->pool[n - 1 - pick(&w->r, n < 3 ? n : 3)];
    return w->pool[pick(&w->r, n)];
}

static jg_shape random_shape(world *w)
{
    for (;;) {
        jg_shape s = { .ndim = 1 + pick(&w->r, 3) };
        for (int d = 0; d < s.ndim; d++)
            s.dim[d] = DIMS[pick(&w->r, (int)(sizeof DIMS / sizeof *DIMS))];
        if (chance(&w->r, 0.5)) /* a long last dim: full vectors and a tail */
            s.dim[s.ndim - 1] = 33 + pick(&w->r, 200);
        if (jg_shape_numel(s) <= MAX_NUMEL / 2)
            return s;
    }
}

static bool broadcastable(jg_shape a, jg_shape b, jg_shape *out)
{
    int nd = a.ndim > b.ndim ? a.ndim : b.ndim;
    if (nd > MAX_NDIM)
        return false;
    jg_shape o = { .ndim = nd };
    for (int d = 0; d < nd; d++) {
        int ia = d - (nd - a.ndim), ib = d - (nd - b.ndim);
        int64_t da = ia >= 0 ? a.dim[ia] : 1, db = ib >= 0 ? b.dim[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return false;
        o.dim[d] = da > db ? da : db;
    }
    if (out)
        *out = o;
    return jg_shape_numel(o) <= MAX_NUMEL;
}

/* A shape that broadcasts with s: some dims set to 1, leading dims dropped or added. */
static jg_shape compatible_shape(world *w, jg_shape s)
{
    if (chance(&w->r, 0.1))
        return JG_SCALAR;
    jg_shape o = s;
    for (int d = 0; d < o.ndim; d++)
        if (chance(&w->r, 0.35))
            o.dim[d] = 1;
    if (o.ndim > 1 && chance(&w->r, 0.25)) { /* drop the leading dim */
        memmove(o.dim, o.dim + 1, (size_t)(o.ndim - 1) * sizeof *o.dim);
        o.ndim--;
    } else if (o.ndim < MAX_NDIM && chance(&w->r, 0.2) &&
               jg_shape_numel(s) * 3 <= MAX_NUMEL) { /* a new leading dim */
        memmove(o.dim + 1, o.dim, (size_t)o.ndim * sizeof *o.dim);
        o.dim[0] = 2 + pick(&w->r, 2);
        o.ndim++;
    }
    return o;
}

/* log, sqrt, rsqrt, pow get |x| + 1; exp gets tanh x. */
static jg_node *safe_pos(jg_node *x) { return jg_shift(jg_abs(x), 1); }

static jg_node *unary(world *w, jg_node *x)
{
    switch (pick(&w->r, 17)) {
    case 0: return jg_neg(x);
    case 1: return jg_abs(x);
    case 2: return jg_tanh(x);
    case 3: return jg_sigmoid(x);
    case 4: return jg_relu(x);
    case 5: return jg_softplus(x);
    case 6: return jg_exp(jg_tanh(x));
    case 7: return jg_log(safe_pos(x));
    case 8: return jg_sqrt(safe_pos(x));
    case 9: return jg_rsqrt(safe_pos(x));
    case 10: return jg_square(jg_tanh(x));
    case 11: return jg_leaky_relu(x, 0.2);
    case 12: return jg_elu(x, 0.7);
    case 13: return jg_clamp(x, -1.5, 1.5);
    case 14: return jg_scale(x, 0.5);
    case 15: return jg_shift(x, -0.3);
    default: return jg_pow(safe_pos(x), 1.5);
    }
}

static jg_node *binary(world *w, jg_node *a)
{
    jg_shape sa = jg_node_shape(a), so;
    jg_node *b = NULL;
    /* a pool node that broadcasts with a, else a fresh input that does */
    for (int tries = 0; tries < 4 && !b; tries++) {
        jg_node *c = from_pool(w);
        if (c != a && broadcastable(sa, jg_node_shape(c), &so))
            b = c;
    }
    if (!b || chance(&w->r, 0.3)) {
        if (w->n_in < MAX_INPUTS) {
            jg_shape sb = compatible_shape(w, sa);
            if (broadcastable(sa, sb, &so))
                b = new_input(w, sb);
        }
    }
    if (!b)
        b = a;
    if (chance(&w->r, 0.5)) {
        jg_node *t = a;
        a = b;
        b = t;
    }
    switch (pick(&w->r, 8)) {
    case 0: return jg_add(a, b);
    case 1: return jg_sub(a, b);
    case 2: return jg_mul(a, jg_tanh(b));
    case 3: return jg_div(a, safe_pos(b));
    case 4: return jg_maximum(a, b);
    case 5: return jg_minimum(a, b);
    case 6: return jg_where(jg_gt(a, b), a, b);
    default: return jg_add(jg_mul(a, jg_lt(a, b)), jg_scale(jg_ge(b, a), 0.5));
    }
}

static jg_node *reduction(world *w, jg_node *x)
{
    jg_shape s = jg_node_shape(x);
    bool keep = chance(&w->r, 0.4);
    jg_axes ax = JG_ALL_AXES;
    if (s.ndim > 0 && !chance(&w->r, 0.1)) {
        ax.n = 0;
        for (int d = 0; d < s.ndim; d++)
            if (chance(&w->r, 0.45))
                ax.axis[ax.n++] = chance(&w->r, 0.3) ? d - s.ndim : d; /* negative sometimes */
        if (ax.n == 0)
            ax.axis[ax.n++] = pick(&w->r, s.ndim);
        if (ax.n == s.ndim && s.ndim > 1 && chance(&w->r, 0.7))
            ax.n--; /* keep one dim mostly: later ops see more than one element */
    }
    switch (pick(&w->r, 5)) {
    case 0: return jg_sum(x, ax, keep);
    case 1: return jg_mean(x, ax, keep);
    case 2: return jg_max(x, ax, keep);
    case 3: return jg_min(x, ax, keep);
    default: return jg_logsumexp(x, ax, keep);
    }
}

static jg_node *reshape(world *w, jg_node *x)
{
    jg_shape s = jg_node_shape(x), o = s;
    int choice = pick(&w->r, 4);
    if (choice == 0 || s.ndim == 0) {
        o = jg_shape(-1);
    } else if (choice == 1 && s.ndim >= 2) { /* merge two adjacent dims */
        int d = pick(&w->r, s.ndim - 1);
        o.dim[d] = s.dim[d] * s.dim[d + 1];
        memmove(o.dim + d + 1, o.dim + d + 2, (size_t)(s.ndim - d - 2) * sizeof *o.dim);
        o.ndim--;
    } else if (choice == 2 && s.ndim < MAX_NDIM) { /* split a dim by a divisor */
        int d = pick(&w->r, s.ndim);
        int64_t n = s.dim[d], f = 0;
        for (int64_t k = 2; k < n; k++)
            if (n % k == 0) {
                f = k;
                if (chance(&w->r, 0.5))
                    break;
            }
        if (f == 0)
            return jg_reshape(x, jg_shape(-1));
        memmove(o.dim + d + 1, o.dim + d, (size_t)(s.ndim - d) * sizeof *o.dim);
        o.dim[d] = f;
        o.dim[d + 1] = n / f;
        o.ndim++;
        if (chance(&w->r, 0.3))
            o.dim[d] = -1; /* inferred */
    } else if (s.ndim < MAX_NDIM) { /* a size-1 dim */
        int d = pick(&w->r, s.ndim + 1);
        memmove(o.dim + d + 1, o.dim + d, (size_t)(s.ndim - d) * sizeof *o.dim);
        o.dim[d] = 1;
        o.ndim++;
    } else {
        o = jg_shape(-1);
    }
    return jg_reshape(x, o);
}

/* A random non-empty slice of one axis, any step, with negative or clamped bounds sometimes. */
static jg_node *slice(world *w, jg_node *x)
{
    jg_shape s = jg_node_shape(x);
    int d = pick(&w->r, s.ndim);
    int64_t n = s.dim[d];
    static const int64_t steps[] = { 1, 1, 2, 3, -1, -1, -2, -3 };
    int64_t step = steps[pick(&w->r, 8)];
    int64_t start = pick(&w->r, (int)n), stop;
    if (step > 0) {
        stop = start + 1 + pick(&w->r, (int)(n - start));   /* in (start, n] */
        if (stop == n && chance(&w->r, 0.5))
            stop = n + 100;                                  /* clamped */
        if (chance(&w->r, 0.3))
            start -= n;                                      /* negative */
    } else {
        stop = start - 1 - pick(&w->r, (int)(start + 1));   /* in [-1, start) */
        if (stop == -1)
            stop = chance(&w->r, 0.5) ? INT64_MIN : -n - 5;  /* to the front */
        else if (chance(&w->r, 0.3))
            stop -= n;
        if (chance(&w->r, 0.3))
            start -= n;
    }
    return jg_slice(x, chance(&w->r, 0.3) ? d - s.ndim : d, start, stop, step);
}

static jg_node *movement(world *w, jg_node *x)
{
    jg_shape s = jg_node_shape(x);
    int choice = pick(&w->r, 5);
    if (s.ndim == 0)
        choice = 0;
    switch (choice) {
    case 0: return reshape(w, x);
    case 1: {
        if (s.ndim < 2)
            return slice(w, x);
        jg_axes p = { .n = s.ndim };
        for (int d = 0; d < s.ndim; d++)
            p.axis[d] = d;
        for (int d = s.ndim - 1; d > 0; d--) {
            int k = pick(&w->r, d + 1), t = p.axis[d];
            p.axis[d] = p.axis[k];
            p.axis[k] = t;
        }
        return jg_permute(x, p);
    }
    case 2: return s.ndim >= 2 ? jg_transpose(x) : slice(w, x);
    case 3: {
        if (s.ndim >= MAX_NDIM || jg_shape_numel(s) * 3 > MAX_NUMEL)
            return slice(w, x);
        jg_shape o = { .ndim = s.ndim + 1 };
        o.dim[0] = 2 + pick(&w->r, 2);
        memcpy(o.dim + 1, s.dim, (size_t)s.ndim * sizeof *s.dim);
        return jg_broadcast_to(x, o);
    }
    default: return slice(w, x);
    }
}

/* The ops with kernels of their own (pad, concat, take) and matmul. */
static jg_node *other(world *w, jg_node *x)
{
    jg_shape s = jg_node_shape(x);
    if (s.ndim == 0)
        return jg_reshape(x, jg_shape(1));
    int64_t numel = jg_shape_numel(s);
    int d = pick(&w->r, s.ndim);
    switch (pick(&w->r, 4)) {
    case 0: { /* pad */
        jg_shape before = { .ndim = s.ndim }, after = { .ndim = s.ndim };
        int64_t grown = 1;
        for (int k = 0; k < s.ndim; k++) {
            before.dim[k] = chance(&w->r, 0.5) ? pick(&w->r, 3) : 0;
            after.dim[k] = chance(&w->r, 0.5) ? pick(&w->r, 3) : 0;
            grown *= s.dim[k] + before.dim[k] + after.dim[k];
        }
        if (grown > MAX_NUMEL)
            return jg_neg(x);
        return jg_pad(x, before, after, unif(&w->r) - 0.5);
    }
    case 1: { /* concat with a computed value of the same shape, and maybe x again */
        if (numel * 3 > MAX_NUMEL)
            return jg_abs(x);
        jg_node *parts[3] = { x, jg_tanh(x), x };
        return jg_concat(parts, 2 + chance(&w->r, 0.5), chance(&w->r, 0.3) ? d - s.ndim : d);
    }
    case 2: { /* take along axis d with fresh indices */
        if (w->n_in >= MAX_INPUTS)
            return jg_sigmoid(x);
        jg_shape is = chance(&w->r, 0.2) ? JG_SCALAR : jg_shape(1 + pick(&w->r, 6));
        if (chance(&w->r, 0.3) && s.ndim < MAX_NDIM)
            is = jg_shape(2, 1 + pick(&w->r, 3));
        jg_node *idx = new_index_input(w, is, s.dim[d]);
        if (numel / s.dim[d] * jg_shape_numel(is) > MAX_NUMEL)
            return jg_neg(x);
        return jg_take(x, idx, d);
    }
    default: { /* matmul by a fresh [k, m] or [m, rows] input */
        if (s.ndim < 2 || w->n_in >= MAX_INPUTS)
            return jg_elu(x, 1.0);
        int64_t k = s.dim[s.ndim - 1], m = 1 + pick(&w->r, 20);
        if (numel / k * m > MAX_NUMEL)
            return jg_relu(x);
        if (chance(&w->r, 0.5))
            return jg_matmul(x, jg_scale(new_input(w, jg_shape(k, m)), 0.3));
        jg_node *t = jg_transpose(x); /* [..., k, rows] */
        jg_shape ts = jg_node_shape(t);
        int64_t rows = ts.dim[ts.ndim - 1];
        if (numel / rows * m > MAX_NUMEL)
            return jg_relu(x);
        return jg_matmul(jg_scale(new_input(w, jg_shape(m, ts.dim[ts.ndim - 2])), 0.3), t);
    }
    }
}

/* Builds graph number `seed` and compares the executors; returns false (after printing) on
 * a mismatch or failure, so the caller can name the seed. */
static bool one_graph(uint64_t seed, char *why, size_t why_size)
{
    world w = { .r = { seed * 0x2545f4914f6cdd1dULL + 17 } };
    w.g = jg_graph_new();
    cr_assert(w.g);
    w.t = seed % 2 ? JG_F64 : JG_F32;
    jg_shape base = random_shape(&w);
    add_pool(&w, new_input(&w, base));
    add_pool(&w, new_input(&w, chance(&w.r, 0.5) ? base : compatible_shape(&w, base)));
    int target = 5 + pick(&w.r, 21);
    while (w.n_ops < target) {
        jg_node *x = from_pool(&w), *y;
        int kind = pick(&w.r, 22);
        if (kind < 7)
            y = unary(&w, x);
        else if (kind < 14)
            y = binary(&w, x);
        else if (kind < 17)
            y = reduction(&w, x);
        else if (kind < 20)
            y = movement(&w, x);
        else
            y = other(&w, x);
        w.n_ops++;
        add_pool(&w, y);
    }
    /* outputs: the last node and up to two others (inputs included: a copy is a kernel too) */
    jg_node *outs[MAX_OUTS] = { w.pool[w.n_pool - 1] };
    int n_out = 1;
    for (int k = 0; k < 2; k++) {
        jg_node *c = w.pool[pick(&w.r, w.n_pool)];
        bool dup = false;
        for (int i = 0; i < n_out; i++)
            dup |= outs[i] == c;
        if (!dup && chance(&w.r, 0.7))
            outs[n_out++] = c;
    }
    /* and mostly the gradients of sum(last * r), r random, w.r.t. the first float inputs */
    if (chance(&w.r, 0.7) && w.n_in < MAX_INPUTS) {
        jg_node *last = outs[0];
        jg_node *loss = jg_sum(jg_mul(last, new_input(&w, jg_node_shape(last))), JG_ALL_AXES, false);
        jg_node *g[3];
        int n_wrt = w.n_float < 3 ? w.n_float : 3;
        cr_assert_eq(jg_grad(w.g, loss, w.floats, n_wrt, g), JG_OK, "seed %llu: jg_grad: %s",
                     (unsigned long long)seed, jg_errmsg(w.g));
        for (int i = 0; i < n_wrt; i++)
            if (g[i])
                outs[n_out++] = g[i];
    }
    /* JIT settings: mostly the defaults */
    static const int bits[] = { 0, 0, 0, 256, 32 };
    jg_opts jo = { .executor = JG_EXEC_JIT, .num_threads = pick(&w.r, 3),
                   .vector_bits = bits[pick(&w.r, 5)], .no_fusion = chance(&w.r, 0.15) };
    char settings[96];
    snprintf(settings, sizeof settings, "jit threads=%d vector_bits=%d%s", jo.num_threads,
             jo.vector_bits, jo.no_fusion ? " no_fusion" : "");
    if (getenv("JG_RANDOM_VERBOSE")) {
        fprintf(stderr, "jit_random: seed %llu (%s, %s), outputs", (unsigned long long)seed,
                jg_dtype_str(w.t), settings);
        for (int i = 0; i < n_out; i++)
            fprintf(stderr, " %d", jg_node_id(outs[i]));
        fprintf(stderr, "\n");
        jg_graph_dump(w.g, stderr);
    }
    bool ok = true;
    void *res[2][MAX_OUTS] = { { 0 } };
    for (int e = 0; e < 2 && ok; e++) {
        jg_opts o = e == 0 ? (jg_opts){ .executor = JG_EXEC_REFERENCE } : jo;
        jg_program *p = jg_compile(w.g, outs, n_out, &o);
        if (!p) {
            snprintf(why, why_size, "%s compile failed: %s", e ? "jit" : "reference", jg_errmsg(w.g));
            ok = false;
            break;
        }
        for (int i = 0; i < w.n_in; i++)
            jg_program_set(p, w.in[i].name, w.in[i].data, w.in[i].bytes);
        jg_status st = jg_program_run(p);
        if (st != JG_OK) {
            snprintf(why, why_size, "%s run failed: %s", e ? "jit" : "reference", jg_errmsg(p));
            ok = false;
        }
        for (int i = 0; i < n_out && ok; i++) {
            size_t bytes = (size_t)jg_shape_numel(jg_node_shape(outs[i])) * jg_dtype_size(w.t);
            res[e][i] = malloc(bytes ? bytes : 1);
            cr_assert(res[e][i]);
            jg_program_get(p, i, res[e][i], bytes);
        }
        jg_program_free(p);
    }
    double tol = w.t == JG_F32 ? 1e-4 : 1e-10;
    for (int i = 0; i < n_out && ok; i++) {
        int64_t n = jg_shape_numel(jg_node_shape(outs[i]));
        for (int64_t k = 0; k < n && ok; k++) {
            double a = w.t == JG_F32 ? ((float *)res[1][i])[k] : ((double *)res[1][i])[k];
            double b = w.t == JG_F32 ? ((float *)res[0][i])[k] : ((double *)res[0][i])[k];
            bool same = isnan(a) || isnan(b) ? isnan(a) && isnan(b)
                        : isinf(a) || isinf(b) ? a == b
                                               : fabs(a - b) <= tol * fmax(1, fabs(b));
            if (!same) {
                snprintf(why, why_size,
                         "output %d (%s %s, node %d) element %lld: jit %.17g, reference %.17g",
                         i, jg_node_op_name(outs[i]), jg_dtype_str(w.t), jg_node_id(outs[i]),
                         (long long)k, a, b);
                ok = false;
            }
        }
    }
    if (!ok) {
        size_t len = strlen(why);
        snprintf(why + len, why_size - len, " [%s]", settings);
        fprintf(stderr, "jit_random: seed %llu failed: %s\ngraph:\n", (unsigned long long)seed, why);
        jg_graph_dump(w.g, stderr);
        fprintf(stderr, "outputs:");
        for (int i = 0; i < n_out; i++)
            fprintf(stderr, " %d", jg_node_id(outs[i]));
        fprintf(stderr, "\n");
    }
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < MAX_OUTS; i++)
            free(res[e][i]);
    for (int i = 0; i < w.n_in; i++)
        free(w.in[i].data);
    jg_graph_free(w.g);
    return ok;
}

/* All seeds run; the failures are listed together. */
static void run_seeds(uint64_t from, uint64_t to)
{
    char failed[1024] = "", why[1024] = "", first[1200] = "";
    int n_failed = 0;
    catch_crashes();
    for (uint64_t seed = from; seed < to; seed++) {
        if (ONLY_SEED && seed != ONLY_SEED)
            continue;
        current_seed = (sig_atomic_t)seed;
        if (one_graph(seed, why, sizeof why))
            continue;
        if (n_failed++ == 0)
            snprintf(first, sizeof first, "seed %llu: %s", (unsigned long long)seed, why);
        size_t len = strlen(failed);
        snprintf(failed + len, sizeof failed - len, " %llu", (unsigned long long)seed);
    }
    cr_assert_eq(n_failed, 0, "%d random graphs differ (seeds:%s); first: %s", n_failed, failed,
                 first);
}

/* Two halves, so the two run in parallel. */
Test(jit_random, graphs_1_to_25) { run_seeds(1, 1 + N_GRAPHS / 2); }
Test(jit_random, graphs_26_to_50) { run_seeds(1 + N_GRAPHS / 2, 1 + N_GRAPHS); }
