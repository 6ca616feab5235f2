/* Tests of the image ops: the graph builders (src/ops/image.c) and the host-side augmentation
 * (src/io/augment.c). Forward values by hand, identities (a quarter turn is a transpose and a
 * flip, two flips are none), blur invariants, seeding, f64 gradient checks, graph vs host,
 * JIT vs reference, and misuse. */
#include "support/support.h"

#include "io/augment.h"

#include <math.h>
#include <stdlib.h>

TestSuite(image);

/* ---- helpers */

/* n seeded values in [0, 1): a deterministic test image. */
static void fill_rand(float *v, int64_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        v[i] = (float)((double)(s >> 11) * 0x1.0p-53);
    }
}

static void to_double(const float *f, double *d, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        d[i] = f[i];
}

/* Compiles out with executor e, binds input "x" (f32, n values), runs, returns the output
 * converted to double (malloc'd). */
static double *run_exec(jg_graph *g, jg_node *out, jg_executor e, const float *x, int64_t n)
{
    cr_assert(jg_node_ok(out), "poisoned: %s", jg_errmsg(g));
    jg_program *p = jg_compile(g, &out, 1, &(jg_opts){ .executor = e });
    cr_assert(p, "compile: %s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "x", x, (size_t)n * sizeof *x), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    int64_t m = jg_shape_numel(jg_node_shape(out));
    float *f = malloc((size_t)m * sizeof *f);
    double *d = malloc((size_t)m * sizeof *d);
    cr_assert(f && d);
    cr_assert_eq(jg_program_get(p, 0, f, (size_t)m * sizeof *f), JG_OK, "%s", jg_errmsg(p));
    to_double(f, d, m);
    free(f);
    jg_program_free(p);
    return d;
}

/* Evaluates n in exact mode and compares with want. */
static void expect(jg_node *n, const double *want, double tol)
{
    cr_assert(jg_node_ok(n), "poisoned: %s", jg_errmsg(jg_node_graph(n)));
    double *got = t_eval(n);
    t_assert_close(got, want, jg_shape_numel(jg_node_shape(n)), tol);
    free(got);
}

/* a[y][x] = 10 y + x on an h x w grid. */
static jg_node *grid(jg_graph *g, int h, int w)
{
    double v[64];
    for (int i = 0; i < h * w; i++)
        v[i] = 10 * (i / w) + i % w;
    return t_const(g, jg_shape(h, w), v);
}

/* ---- flips and translation */

Test(image, flips_by_hand)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = grid(g, 2, 3); /* [[0 1 2] [10 11 12]] */
    expect(jg_hflip(x), (double[]){ 2, 1, 0, 12, 11, 10 }, 0);
    expect(jg_vflip(x), (double[]){ 10, 11, 12, 0, 1, 2 }, 0);
    jg_node *b = t_randn(g, jg_shape(2, 3, 4, 5), 7);
    double *v = t_eval(b);
    expect(jg_hflip(jg_hflip(b)), v, 0);
    expect(jg_vflip(jg_vflip(b)), v, 0);
    free(v);
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(image, translate_moves_a_pixel)
{
    jg_graph *g = jg_graph_new();
    double v[16] = { 0 };
    v[1 * 4 + 2] = 5; /* a pixel at row 1, column 2 */
    jg_node *x = t_const(g, jg_shape(1, 4, 4), v);
    double want[16] = { 0 };
    want[2 * 4 + 2] = 5; /* (1, 0): one row down */
    expect(jg_translate(x, 1, 0), want, 0);
    double left[16] = { 0 };
    left[1 * 4 + 0] = 5; /* (0, -2): two columns left */
    expect(jg_translate(x, 0, -2), left, 0);
    double none[16] = { 0 };
    expect(jg_translate(x, 0, 3), none, 0);  /* off the right edge */
    expect(jg_translate(x, -9, 0), none, 0); /* past the whole image */
    expect(jg_translate(x, 0, 0), v, 0);
    /* shape is kept, the vacated rows are zero */
    jg_node *t = jg_translate(grid(g, 3, 2), -1, 1);
    cr_assert_eq(jg_node_shape(t).dim[0], 3);
    expect(t, (double[]){ 0, 10, 0, 20, 0, 0 }, 0);

    /* the host version does the same */
    float f[16] = { 0 }, s[16];
    f[1 * 4 + 2] = 5;
    augment_translate(f, 4, 4, 1, 0, s);
    cr_assert_eq(f[2 * 4 + 2], 5.0f);
    cr_assert_eq(f[1 * 4 + 2], 0.0f);
    jg_graph_free(g);
}

/* ---- rotation */

/* rotate(x, 90) == vflip(transpose(x)) for square images, and 180 == both flips. */
Test(image, quarter_turn_is_transpose_and_flip)
{
    jg_graph *g = jg_graph_new();
    for (int n = 4; n <= 5; n++) {
        jg_node *x = t_randn(g, jg_shape(2, 3, n, n), (uint64_t)n);
        double *want = t_eval(jg_vflip(jg_transpose(x)));
        expect(jg_rotate(x, 90), want, 1e-12);
        expect(jg_rotate(x, -270), want, 1e-12);
        free(want);
        want = t_eval(jg_hflip(jg_vflip(x)));
        expect(jg_rotate(x, 180), want, 1e-12);
        free(want);
        double *same = t_eval(x);
        expect(jg_rotate(x, 360), same, 1e-12);
        expect(jg_rotate(jg_rotate(x, 90), -90), same, 1e-12);
        free(same);
    }
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    jg_graph_free(g);
}

Test(image, host_quarter_turn_is_transpose_and_flip)
{
    for (int n = 4; n <= 5; n++) {
        float a[25], r[25], s[25];
        fill_rand(a, n * n, 3);
        memcpy(r, a, sizeof a);
        augment_rotate(r, n, n, 90, s);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) /* vflip(transpose(a))[y][x] = a[x][n-1-y] */
                cr_assert_eq(r[y * n + x], a[x * n + (n - 1 - y)], "n %d at (%d, %d)", n, y, x);
        memcpy(r, a, sizeof a);
        augment_rotate(r, n, n, 180, s);
        for (int i = 0; i < n * n; i++)
            cr_assert_eq(r[i], a[n * n - 1 - i]);
    }
}

Test(image, rotate_by_hand)
{
    jg_graph *g = jg_graph_new();
    /* a 3x3 with a single pixel right of the centre: +90 (counter-clockwise on screen) moves
     * it above the centre */
    jg_node *x = t_const(g, jg_shape(3, 3), (double[]){ 0, 0, 0, 0, 0, 1, 0, 0, 0 });
    expect(jg_rotate(x, 90), (double[]){ 0, 1, 0, 0, 0, 0, 0, 0, 0 }, 1e-12);
    /* 45 degrees: the pixel lands between grid points; the centre pixel of a constant image
     * stays, corners read outside (zero) in part */
    jg_node *ones = jg_fill(g, JG_F64, jg_shape(3, 3), 1.0);
    double *r = t_eval(jg_rotate(ones, 45));
    cr_assert_float_eq(r[4], 1.0, 1e-12);
    cr_assert(r[0] < 1.0 && r[0] >= 0.0, "corner %g", r[0]);
    free(r);
    /* an inf spreads only to the pixels that read it, not through the zero-weight taps */
    double vi[25] = { 0 };
    vi[0] = INFINITY;
    r = t_eval(jg_rotate(t_const(g, jg_shape(5, 5), vi), 30));
    int bad = 0;
    for (int i = 0; i < 25; i++)
        bad += !isfinite(r[i]);
    cr_assert(bad >= 1 && bad <= 4, "%d non-finite outputs", bad);
    free(r);
    jg_graph_free(g);
}

/* ---- blur */

Test(image, blur_constant_stays_constant)
{
    jg_graph *g = jg_graph_new();
    jg_node *c = jg_fill(g, JG_F64, jg_shape(2, 6, 7), 3.5);
    double want[84];
    for (int i = 0; i < 84; i++)
        want[i] = 3.5;
    expect(jg_gaussian_blur(c, 1.0), want, 1e-12);
    expect(jg_gaussian_blur(c, 2.5), want, 1e-12); /* radius 8 > the image */
    float f[42], s[42];
    for (int i = 0; i < 42; i++)
        f[i] = 3.5f;
    augment_blur(f, 6, 7, 2.5, s);
    for (int i = 0; i < 42; i++)
        cr_assert_float_eq(f[i], 3.5f, 1e-6);
    jg_graph_free(g);
}

/* With clamped edges the sum is preserved when no mass reaches the border: the image is zero
 * within ceil(3 sigma) of its edges. */
Test(image, blur_preserves_the_sum_away_from_borders)
{
    jg_graph *g = jg_graph_new();
    const int h = 14, w = 15, m = 3; /* sigma 1: radius 3 */
    double v[14 * 15] = { 0 }, total = 0;
    float f[14 * 15] = { 0 }, s[14 * 15];
    float r[14 * 15];
    fill_rand(r, h * w, 11);
    for (int y = m; y < h - m; y++)
        for (int x = m; x < w - m; x++) {
            v[y * w + x] = r[y * w + x];
            f[y * w + x] = r[y * w + x];
            total += r[y * w + x];
        }
    jg_node *x = t_const(g, jg_shape(h, w), v);
    jg_node *sum = jg_sum(jg_gaussian_blur(x, 1.0), JG_ALL_AXES, false);
    expect(sum, &total, 1e-12);
    augment_blur(f, h, w, 1.0, s);
    double host = 0;
    for (int i = 0; i < h * w; i++)
        host += f[i];
    cr_assert_float_eq(host, total, 1e-4);
    /* and it did blur: the centre of a delta spreads symmetrically */
    double d[49] = { 0 };
    d[24] = 1;
    double *b = t_eval(jg_gaussian_blur(t_const(g, jg_shape(7, 7), d), 0.8));
    cr_assert(b[24] < 1 && b[23] > 0);
    cr_assert_float_eq(b[23], b[25], 1e-15);
    cr_assert_float_eq(b[17], b[31], 1e-15);
    cr_assert_float_eq(b[23], b[17], 1e-15);
    free(b);
    /* sigma 0 is the identity */
    jg_node *t = jg_gaussian_blur(x, 0.0);
    cr_assert_eq(t, x);
    jg_graph_free(g);
}

/* ---- gradients (f64) */

Test(image, gradcheck)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = t_param(g, "x", jg_shape(2, 4, 5), 5);
    t_gradcheck(g, jg_hflip(x), &x, 1);
    t_gradcheck(g, jg_vflip(x), &x, 1);
    t_gradcheck(g, jg_translate(x, 1, -2), &x, 1);
    t_gradcheck(g, jg_gaussian_blur(x, 0.7), &x, 1);
    t_gradcheck(g, jg_rotate(x, 30), &x, 1);
    t_gradcheck(g, jg_rotate(x, 90), &x, 1);
    jg_node *y = t_param(g, "y", jg_shape(1, 2, 3, 3), 6);
    t_gradcheck(g, jg_rotate(jg_gaussian_blur(y, 0.5), -17), &y, 1);
    jg_node *z = t_param(g, "z", jg_shape(4, 3), 7); /* a single [H, W] image */
    t_gradcheck(g, jg_gaussian_blur(jg_translate(jg_vflip(z), -1, 1), 1.3), &z, 1);
    jg_graph_free(g);
}

/* ---- graph ops vs host transforms, through both executors */

Test(image, graph_matches_host)
{
    enum { N = 2, H = 7, W = 6, S = H * W };
    float img[N * S], host[N * S], scratch[S];
    fill_rand(img, N * S, 21);
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(N, H, W));
    struct {
        const char *name;
        jg_node *node;
    } cases[] = {
        { "hflip", jg_hflip(x) },
        { "vflip", jg_vflip(x) },
        { "translate", jg_translate(x, -2, 1) },
        { "blur", jg_gaussian_blur(x, 0.9) },
        { "rotate", jg_rotate(x, 37) },
        { "rotate90", jg_rotate(x, 90) },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        memcpy(host, img, sizeof img);
        for (int i = 0; i < N; i++) {
            float *p = host + i * S;
            switch (k) {
            case 0: augment_hflip(p, H, W); break;
            case 1: augment_vflip(p, H, W); break;
            case 2: augment_translate(p, H, W, -2, 1, scratch); break;
            case 3: augment_blur(p, H, W, 0.9, scratch); break;
            case 4: augment_rotate(p, H, W, 37, scratch); break;
            default: augment_rotate(p, H, W, 90, scratch); break;
            }
        }
        double want[N * S];
        to_double(host, want, N * S);
        double *ref = run_exec(g, cases[k].node, JG_EXEC_REFERENCE, img, N * S);
        double *jit = run_exec(g, cases[k].node, JG_EXEC_JIT, img, N * S);
        for (int i = 0; i < N * S; i++) {
            cr_assert(fabs(ref[i] - want[i]) <= 1e-6, "%s: reference[%d] = %.9g, host %.9g",
                      cases[k].name, i, ref[i], want[i]);
            cr_assert(fabs(jit[i] - ref[i]) <= 1e-6, "%s: jit[%d] = %.9g, reference %.9g",
                      cases[k].name, i, jit[i], ref[i]);
        }
        free(ref);
        free(jit);
    }
    jg_graph_free(g);
}

/* The gradients through the JIT agree with the reference executor. */
Test(image, jit_gradients_match_reference)
{
    enum { N = 2, C = 2, H = 5, W = 6, T = N * C * H * W };
    float img[T];
    fill_rand(img, T, 5);
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(N, C, H, W));
    jg_node *y = jg_rotate(jg_gaussian_blur(jg_translate(jg_hflip(x), 1, -1), 0.6), 25);
    jg_node *loss = jg_sum(jg_square(y), JG_ALL_AXES, false);
    jg_node *dx;
    cr_assert_eq(jg_grad(g, loss, &x, 1, &dx), JG_OK, "%s", jg_errmsg(g));
    double *ref = run_exec(g, dx, JG_EXEC_REFERENCE, img, T);
    double *jit = run_exec(g, dx, JG_EXEC_JIT, img, T);
    t_assert_close(jit, ref, T, 1e-5);
    free(ref);
    free(jit);
    jg_graph_free(g);
}

/* ---- host augmentation: seeding, crops */

static const jg_augment_opts ALL = { .hflip_prob = 0.5, .vflip_prob = 0.5,
                                     .max_rotate_deg = 20, .max_shift = 2, .crop_pad = 2,
                                     .blur_prob = 0.5, .blur_sigma = 0.8 };

Test(image, augment_is_seeded_per_sample)
{
    enum { N = 8, C = 2, H = 9, W = 8, T = N * C * H * W };
    static float src[T], a[T], b[T], c[T], part[T / 2];
    fill_rand(src, T, 1);
    cr_assert_eq(jg_augment_to(&ALL, src, a, N, C, H, W, 42, 3, NULL, 0), JG_OK);
    cr_assert_eq(jg_augment_to(&ALL, src, b, N, C, H, W, 42, 3, NULL, 0), JG_OK);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "same (seed, step) differs");
    /* in place gives the same as out of place */
    memcpy(c, src, sizeof c);
    cr_assert_eq(jg_augment(&ALL, c, N, C, H, W, 42, 3), JG_OK);
    cr_assert_eq(memcmp(a, c, sizeof a), 0);
    /* a smaller batch holding the first samples gets the same transforms */
    cr_assert_eq(jg_augment_to(&ALL, src, part, N / 2, C, H, W, 42, 3, NULL, 0), JG_OK);
    cr_assert_eq(memcmp(a, part, sizeof part), 0, "depends on batch composition");
    /* another step (or seed) changes the result, and samples differ from one another */
    cr_assert_eq(jg_augment_to(&ALL, src, b, N, C, H, W, 42, 4, NULL, 0), JG_OK);
    cr_assert_neq(memcmp(a, b, sizeof a), 0, "another step gives the same batch");
    cr_assert_eq(jg_augment_to(&ALL, src, b, N, C, H, W, 43, 3, NULL, 0), JG_OK);
    cr_assert_neq(memcmp(a, b, sizeof a), 0, "another seed gives the same batch");
    /* the zero options change nothing */
    cr_assert_eq(jg_augment_to(&(jg_augment_opts){ 0 }, src, b, N, C, H, W, 1, 1, NULL, 0),
                 JG_OK);
    cr_assert_eq(memcmp(src, b, sizeof b), 0);
}

/* A padded random crop keeps the shape and is a translation by at most crop_pad, the same
 * for every channel; over a batch several offsets occur. */
Test(image, crop_with_padding_is_a_bounded_translation)
{
    enum { N = 16, C = 2, H = 6, W = 7, P = 2, S = H * W };
    static float src[N * C * S], out[N * C * S];
    fill_rand(src, N * C * S, 9);
    for (int i = 0; i < N * C * S; i++)
        src[i] += 1.0f; /* no zeros in the image, so a zero is fill */
    jg_augment_opts o = { .crop_pad = P };
    cr_assert_eq(jg_augment_to(&o, src, out, N, C, H, W, 7, 0, NULL, 0), JG_OK);
    int seen[2 * P + 1][2 * P + 1] = { { 0 } }, distinct = 0;
    for (int i = 0; i < N; i++) {
        int found = 0, fy = 0, fx = 0;
        for (int dy = -P; dy <= P && !found; dy++)
            for (int dx = -P; dx <= P && !found; dx++) {
                bool same = true;
                for (int ch = 0; ch < C; ch++) {
                    float t[S], s[S];
                    memcpy(t, src + (i * C + ch) * S, sizeof t);
                    augment_translate(t, H, W, dy, dx, s);
                    same &= memcmp(t, out + (i * C + ch) * S, sizeof t) == 0;
                }
                if (same)
                    found = 1, fy = dy, fx = dx;
            }
        cr_assert(found, "sample %d is no translation within +-%d", i, P);
        distinct += !seen[fy + P][fx + P]++;
    }
    cr_assert(distinct >= 3, "only %d distinct offsets in %d samples", distinct, N);
}

Test(image, augment_flips_with_probability_one)
{
    enum { H = 4, W = 5, S = H * W };
    float src[2 * S], out[2 * S], want[2 * S];
    fill_rand(src, 2 * S, 4);
    memcpy(want, src, sizeof want);
    for (int i = 0; i < 2; i++) {
        augment_hflip(want + i * S, H, W);
        augment_vflip(want + i * S, H, W);
    }
    jg_augment_opts o = { .hflip_prob = 1, .vflip_prob = 1 };
    cr_assert_eq(jg_augment_to(&o, src, out, 2, 1, H, W, 1, 2, NULL, 0), JG_OK);
    cr_assert_eq(memcmp(out, want, sizeof out), 0);
    /* hflip twice is the identity on the host too */
    augment_hflip(want, H, W);
    augment_hflip(want, H, W);
    augment_vflip(want, H, W);
    augment_hflip(want, H, W);
    cr_assert_eq(memcmp(want, src, S * sizeof *src), 0);
}

/* ---- misuse */

Test(image, graph_misuse)
{
    jg_graph *g = jg_graph_new();
    jg_node *v = t_randn(g, jg_shape(5), 1);
    cr_assert(!jg_node_ok(jg_rotate(v, 10)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_rotate: needs an image");
    jg_graph_free(g);

    g = jg_graph_new();
    jg_node *r5 = t_randn(g, jg_shape(1, 1, 1, 2, 2), 1);
    cr_assert(!jg_node_ok(jg_hflip(r5)));
    t_assert_error(g, JG_ERR_SHAPE, "jg_hflip: needs an image");
    cr_assert(strstr(jg_errmsg(g), "test_image.c:"), "%s", jg_errmsg(g));
    jg_graph_free(g);

    g = jg_graph_new();
    jg_node *x = t_randn(g, jg_shape(4, 4), 1);
    cr_assert(!jg_node_ok(jg_gaussian_blur(x, -1.0)));
    t_assert_error(g, JG_ERR_ARG, "jg_gaussian_blur: sigma -1 is negative");
    jg_graph_free(g);

    g = jg_graph_new();
    x = t_randn(g, jg_shape(4, 4), 1);
    cr_assert(!jg_node_ok(jg_gaussian_blur(x, NAN)));
    t_assert_error(g, JG_ERR_ARG, "sigma");
    jg_graph_free(g);

    g = jg_graph_new();
    x = t_randn(g, jg_shape(4, 4), 1);
    cr_assert(!jg_node_ok(jg_gaussian_blur(x, 100.0)));
    t_assert_error(g, JG_ERR_ARG, "too large");
    jg_graph_free(g);

    g = jg_graph_new();
    x = t_randn(g, jg_shape(4, 4), 1);
    cr_assert(!jg_node_ok(jg_rotate(x, INFINITY)));
    t_assert_error(g, JG_ERR_ARG, "jg_rotate: angle inf is not finite");
    jg_graph_free(g);

    g = jg_graph_new();
    int32_t iv[4] = { 1, 2, 3, 4 };
    jg_node *ix = jg_const(g, JG_I32, jg_shape(2, 2), iv);
    cr_assert(jg_node_ok(jg_hflip(ix)), "flips take any dtype: %s", jg_errmsg(g));
    cr_assert(jg_node_ok(jg_translate(ix, 1, 1)), "%s", jg_errmsg(g));
    cr_assert(!jg_node_ok(jg_rotate(ix, 30)));
    t_assert_error(g, JG_ERR_DTYPE, "jg_rotate: needs f32 or f64");
    /* a poisoned operand stays poisoned, the first error stays */
    cr_assert(!jg_node_ok(jg_gaussian_blur(jg_rotate(ix, 1), 1)));
    t_assert_error(g, JG_ERR_DTYPE, "jg_rotate");
    jg_graph_free(g);

    /* NULL: no graph to record on, a poisoned node all the same */
    cr_assert(!jg_node_ok(jg_hflip(NULL)));
    cr_assert(!jg_node_ok(jg_rotate(NULL, 90)));
    cr_assert(!jg_node_ok(jg_gaussian_blur(NULL, 1)));
    cr_assert(!jg_node_ok(jg_translate(NULL, 1, 1)));
}

Test(image, host_misuse)
{
    float img[16] = { 0 }, out[16];
    char err[256];
    jg_augment_opts ok = { .hflip_prob = 0.5 };
    cr_assert_eq(jg_augment_to(NULL, img, out, 1, 1, 4, 4, 0, 0, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "jg_augment: opts is NULL"), "%s", err);
    cr_assert_eq(jg_augment_to(&ok, NULL, out, 1, 1, 4, 4, 0, 0, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "image data is NULL"), "%s", err);
    cr_assert_eq(jg_augment(&ok, NULL, 1, 1, 4, 4, 0, 0), JG_ERR_ARG);
    cr_assert_eq(jg_augment_to(&ok, img, out, 0, 1, 4, 4, 0, 0, err, sizeof err), JG_ERR_SHAPE);
    cr_assert(strstr(err, "[0, 1, 4, 4] has a dimension < 1"), "%s", err);
    cr_assert_eq(jg_augment(&ok, img, 1, 1, -4, 4, 0, 0), JG_ERR_SHAPE);
    /* n * c * h * w overflowed int64_t and passed the size check (then wrote out of
     * bounds); each product is now checked before it is formed */
    cr_assert_eq(jg_augment_to(&ok, img, out, 1 << 17, 1 << 17, 1 << 15, 1 << 15, 0, 0, err,
                               sizeof err), JG_ERR_SHAPE); /* 2^64 wrapped to 0 */
    cr_assert(strstr(err, "is too large"), "%s", err);
    cr_assert_eq(jg_augment_to(&ok, img, out, 1 << 30, 1 << 30, 1, 1, 0, 0, err, sizeof err),
                 JG_ERR_SHAPE);
    cr_assert_eq(jg_augment_to(&(jg_augment_opts){ .blur_prob = 1, .blur_sigma = -1 }, img,
                               out, 1, 1, 4, 4, 0, 0, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "blur_sigma -1"), "%s", err);
    cr_assert_eq(jg_augment_to(&(jg_augment_opts){ .hflip_prob = 1.5 }, img, out, 1, 1, 4, 4,
                               0, 0, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "probabilities"), "%s", err);
    cr_assert_eq(jg_augment_to(&(jg_augment_opts){ .vflip_prob = NAN }, img, out, 1, 1, 4, 4,
                               0, 0, err, sizeof err), JG_ERR_ARG);
    cr_assert_eq(jg_augment_to(&(jg_augment_opts){ .max_rotate_deg = -5 }, img, out, 1, 1, 4,
                               4, 0, 0, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "max_rotate_deg"), "%s", err);
    cr_assert_eq(jg_augment_to(&(jg_augment_opts){ .crop_pad = -1 }, img, out, 1, 1, 4, 4, 0,
                               0, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "crop_pad -1"), "%s", err);
    /* a tiny errbuf is cut, never overrun */
    char tiny[8];
    cr_assert_eq(jg_augment_to(NULL, img, out, 1, 1, 4, 4, 0, 0, tiny, sizeof tiny),
                 JG_ERR_ARG);
    cr_assert_eq(strlen(tiny), 7u);
    /* success clears the buffer */
    cr_assert_eq(jg_augment_to(&ok, img, out, 1, 1, 4, 4, 0, 0, err, sizeof err), JG_OK);
    cr_assert_str_empty(err);
}
