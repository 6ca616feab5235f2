/* Image ops for augmentation as graph builders: flips, integer translation, Gaussian blur
 * and bilinear rotation on the last two axes. Each is a composite of differentiable primitives
 * (slice, pad, matmul, take, reductions, elementwise), so gradients, the JIT and the
 * reference executor need no code of their own. The sampling rules are shared with
 * io/augment.c (util/image_sampling.c). */
#include "ops/op.h"
#include "util/image_sampling.h"

#include <math.h>
#include <stdlib.h>

/* ---- argument checks */

/* NULL when x is fit for an image op; otherwise the poisoned node to return, with the error
 * recorded (a NULL x has no graph to record on: it gives the orphan poison). */
static jg_node *image_reject(jg_loc at, jg_node *x, const char *fn, bool need_float)
{
    if (!x)
        return op_build(at, JG_OP_SLICE, &x, 1, NULL);
    if (node_poisoned(x))
        return x->graph->poison;
    char s[96];
    if (x->shape.ndim < 2 || x->shape.ndim > 4) {
        graph_error(x->graph, at, JG_ERR_SHAPE,
                    "jg_%s: needs an image [H, W], [N, H, W] or [N, C, H, W], operand is %s", fn,
                    FMT_SHAPE(s, x->shape));
        return x->graph->poison;
    }
    if (need_float && x->dtype == JG_I32) {
        graph_error(x->graph, at, JG_ERR_DTYPE, "jg_%s: needs f32 or f64, operand is i32", fn);
        return x->graph->poison;
    }
    return NULL;
}

/* ---- flips and translation */

jg_node *jg_hflip_(jg_loc at, jg_node *x)
{
    jg_node *bad = image_reject(at, x, "hflip", false);
    return bad ? bad : jg_slice_(at, x, -1, -1, INT64_MIN, -1);
}

jg_node *jg_vflip_(jg_loc at, jg_node *x)
{
    jg_node *bad = image_reject(at, x, "vflip", false);
    return bad ? bad : jg_slice_(at, x, -2, -1, INT64_MIN, -1);
}

/* out[y][x] = x[y - dy][x - dx], zero outside: pad |dy| zeros above or below and |dx| left or
 * right (one pad), then keep the h x w window on the far side of the padding. Shifts past
 * the whole image are clamped to its size: the result is all zeros. */
jg_node *jg_translate_(jg_loc at, jg_node *x, int dy, int dx)
{
    jg_node *bad = image_reject(at, x, "translate", false);
    if (bad)
        return bad;
    int nd = x->shape.ndim;
    int64_t d[2] = { dy, dx }, start[2];
    jg_shape before = { .ndim = nd }, after = { .ndim = nd };
    for (int i = 0; i < 2; i++) {
        int64_t n = x->shape.dim[nd - 2 + i];
        d[i] = d[i] > n ? n : d[i] < -n ? -n : d[i];
        before.dim[nd - 2 + i] = d[i] > 0 ? d[i] : 0;
        after.dim[nd - 2 + i] = d[i] < 0 ? -d[i] : 0;
        start[i] = d[i] > 0 ? 0 : -d[i];
    }
    jg_node *p = jg_pad_(at, x, before, after, 0.0);
    for (int i = 0; i < 2; i++) /* a slice of the whole axis returns p itself */
        p = jg_slice_(at, p, nd - 2 + i, start[i], start[i] + x->shape.dim[nd - 2 + i], 1);
    return p;
}

/* ---- Gaussian blur */

/* The blur along one axis of length n as an n x n matrix: row i holds the kernel centred on
 * i, with the taps that fall off the edge added onto the edge element (clamped reads). Both
 * passes are then matmuls, so the forward is two GEMM kernels and the backward two more,
 * instead of 2r+1 slices (and as many unslices in the backward) per axis. transpose: write
 * the matrix transposed, for the pass that multiplies from the right. */
static jg_node *blur_matrix(jg_loc at, jg_node *x, int64_t n, const double *wk, int r,
                            bool transpose)
{
    jg_graph *g = x->graph;
    double *m = calloc((size_t)(n * n), sizeof *m);
    float *mf = x->dtype == JG_F32 ? malloc((size_t)(n * n) * sizeof *mf) : NULL;
    if (!m || (x->dtype == JG_F32 && !mf)) {
        free(m), free(mf);
        graph_error(g, at, JG_ERR_NOMEM, "jg_gaussian_blur: out of memory");
        return g->poison;
    }
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k <= 2 * r; k++) {
            int64_t j = i + k - r;
            j = j < 0 ? 0 : j >= n ? n - 1 : j;
            m[transpose ? j * n + i : i * n + j] += wk[k];
        }
    const void *data = m;
    if (mf) {
        for (int64_t i = 0; i < n * n; i++)
            mf[i] = (float)m[i];
        data = mf;
    }
    jg_node *c = jg_const_(at, g, x->dtype, jg_shape(n, n), data);
    free(m), free(mf);
    return c;
}

jg_node *jg_gaussian_blur_(jg_loc at, jg_node *x, double sigma)
{
    jg_node *bad = image_reject(at, x, "gaussian_blur", true);
    if (bad)
        return bad;
    if (!(sigma >= 0) || sigma > IMAGE_MAX_SIGMA) {
        graph_error(x->graph, at, JG_ERR_ARG, "jg_gaussian_blur: sigma %g is %s", sigma,
                    sigma > IMAGE_MAX_SIGMA ? "too large (at most 64)"
                                            : "negative or NaN (must be >= 0)");
        return x->graph->poison;
    }
    if (sigma == 0)
        return x;
    int nd = x->shape.ndim;
    int64_t h = x->shape.dim[nd - 2], w = x->shape.dim[nd - 1];
    if (h > 4096 || w > 4096) { /* the pass matrices hold h^2 and w^2 values */
        char s[96];
        graph_error(x->graph, at, JG_ERR_SHAPE, "jg_gaussian_blur: image %s is too large "
                    "(at most 4096 x 4096)", FMT_SHAPE(s, x->shape));
        return x->graph->poison;
    }
    double wk[2 * IMAGE_MAX_RADIUS + 1];
    int r = image_gauss_kernel(sigma, wk);
    /* Rows first (along H: B_h @ x), then columns (x @ B_w^T), as the host version does. */
    jg_node *cols = jg_matmul_(at, blur_matrix(at, x, h, wk, r, false), x);
    return jg_matmul_(at, cols, blur_matrix(at, x, w, wk, r, true));
}

/* ---- rotation */

/* out[p] = sum over the bilinear corners k of w[p][k] * x[idx[p][k]]: one take of the K
 * corners of every pixel ([..., H*W*K]), a product with the weights [H*W, K] and a sum over
 * K. A fixed linear map of x, so its gradient is the transposed map (one scatter_add).
 * Corners whose weight is zero everywhere are left out: at quarter turns only one remains,
 * with weight 1, and the rotation is a single take. */
jg_node *jg_rotate_(jg_loc at, jg_node *x, double degrees)
{
    jg_node *bad = image_reject(at, x, "rotate", true);
    if (bad)
        return bad;
    jg_graph *g = x->graph;
    if (!isfinite(degrees)) {
        graph_error(g, at, JG_ERR_ARG, "jg_rotate: angle %g is not finite", degrees);
        return g->poison;
    }
    int nd = x->shape.ndim;
    int64_t h = x->shape.dim[nd - 2], w = x->shape.dim[nd - 1], hw = h * w;
    if (4 * hw > INT32_MAX) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_rotate: an image of %lld pixels is too large "
                    "(at most 2^29)", (long long)hw);
        return g->poison;
    }
    double cs, sn;
    image_rotation_cs(degrees, &cs, &sn);
    if (cs == 1)
        return x;
    int32_t *idx = malloc(4 * (size_t)hw * sizeof *idx);
    double *wt = malloc(4 * (size_t)hw * sizeof *wt);
    float *wf = malloc(4 * (size_t)hw * sizeof *wf);
    if (!idx || !wt || !wf) {
        free(idx), free(wt), free(wf);
        graph_error(g, at, JG_ERR_NOMEM, "jg_rotate: out of memory");
        return g->poison;
    }
    bool used[4] = { 0 }, ones = true;
    for (int64_t p = 0; p < hw; p++) {
        image_rotate_taps((int)h, (int)w, cs, sn, (int)(p / w), (int)(p % w), idx + 4 * p,
                          wt + 4 * p);
        for (int k = 0; k < 4; k++)
            used[k] |= wt[4 * p + k] != 0;
    }
    /* Keep the used corners, packed: K per pixel. */
    int kk = 0, keep[4];
    for (int k = 0; k < 4; k++)
        if (used[k])
            keep[kk++] = k;
    for (int64_t p = 0; p < hw; p++)
        for (int j = 0; j < kk; j++) {
            idx[kk * p + j] = idx[4 * p + keep[j]];
            wt[kk * p + j] = wt[4 * p + keep[j]];
            ones &= wt[kk * p + j] == 1;
        }
    jg_node *out;
    jg_shape flat = x->shape;
    flat.ndim = nd - 1;
    flat.dim[nd - 2] = hw;
    jg_node *xf = jg_reshape_(at, x, flat);
    if (kk == 0) { /* every sample falls outside the image: zeros, still a function of x */
        out = jg_scale_(at, x, 0.0);
    } else if (kk == 1 && ones) {
        out = jg_take_(at, xf, jg_const_(at, g, JG_I32, jg_shape(hw), idx), nd - 2);
    } else {
        jg_node *t = jg_take_(at, xf, jg_const_(at, g, JG_I32, jg_shape(hw * kk), idx), nd - 2);
        jg_shape corners = x->shape;
        corners.dim[nd - 2] = hw;
        corners.dim[nd - 1] = kk;
        const void *data = wt;
        if (x->dtype == JG_F32) {
            for (int64_t i = 0; i < hw * kk; i++)
                wf[i] = (float)wt[i];
            data = wf;
        }
        jg_node *wn = jg_const_(at, g, x->dtype, jg_shape(hw, kk), data);
        out = jg_sum_(at, jg_mul_(at, jg_reshape_(at, t, corners), wn), jg_axes(-1), false);
    }
    free(idx), free(wt), free(wf);
    return jg_reshape_(at, out, x->shape);
}
