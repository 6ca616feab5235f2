/* Sampling rules shared by the graph image ops (ops/image.c) and the host-side augmentation
 * (io/augment.c): the Gaussian kernel and the bilinear rotation map (image_sampling.h). */
#include "util/image_sampling.h"

#include <math.h>

int image_gauss_kernel(double sigma, double *w)
{
    int r = (int)ceil(3.0 * sigma);
    if (r < 1)
        r = 1;
    if (r > IMAGE_MAX_RADIUS)
        r = IMAGE_MAX_RADIUS;
    double total = 0;
    for (int k = -r; k <= r; k++)
        total += w[k + r] = exp(-(double)k * k / (2.0 * sigma * sigma));
    for (int k = 0; k <= 2 * r; k++)
        w[k] /= total;
    return r;
}

void image_rotation_cs(double degrees, double *cs, double *sn)
{
    /* Exact at quarter turns, so that rotating by 90 is exactly a transpose and a flip. */
    double d = fmod(degrees, 360.0);
    if (d < 0)
        d += 360.0;
    static const double qc[4] = { 1, 0, -1, 0 }, qs[4] = { 0, 1, 0, -1 };
    for (int q = 0; q < 4; q++)
        if (d == 90.0 * q) {
            *cs = qc[q];
            *sn = qs[q];
            return;
        }
    double a = d * (3.14159265358979323846 / 180.0);
    *cs = cos(a);
    *sn = sin(a);
}

/* Source coordinates within 1e-9 of an integer are taken as that integer: rounding in the
 * rotation would otherwise spread a pixel over two neighbours with a weight of ~1e-16. */
static double snap(double v)
{
    double r = nearbyint(v);
    return fabs(v - r) < 1e-9 ? r : v;
}

void image_rotate_taps(int h, int w, double cs, double sn, int y, int x, int32_t idx[4],
                       double wt[4])
{
    double cy = (h - 1) / 2.0, cx = (w - 1) / 2.0;
    double u = x - cx, v = y - cy;
    /* Inverse map: the output pixel at offset (u, v) reads the source at that offset turned
     * back by the angle (rows grow downwards, so this is counter-clockwise on screen). */
    double sx = snap(cx + cs * u - sn * v), sy = snap(cy + sn * u + cs * v);
    double x0 = floor(sx), y0 = floor(sy), fx = sx - x0, fy = sy - y0;
    const double cw[4] = { (1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx };
    for (int k = 0; k < 4; k++) {
        double yy = y0 + (k >> 1), xx = x0 + (k & 1);
        if (yy >= 0 && yy < h && xx >= 0 && xx < w && cw[k] != 0) {
            idx[k] = (int32_t)((int64_t)yy * w + (int64_t)xx);
            wt[k] = cw[k];
        } else {
            idx[k] = -1;
            wt[k] = 0;
        }
    }
    /* A zero-weight tap reads a pixel this output reads anyway, so that an inf elsewhere in
     * the image cannot turn into 0 * inf = NaN here (pixels with no tap read pixel 0). */
    int32_t any = 0;
    for (int k = 3; k >= 0; k--)
        any = idx[k] >= 0 ? idx[k] : any;
    for (int k = 0; k < 4; k++)
        idx[k] = idx[k] >= 0 ? idx[k] : any;
}
