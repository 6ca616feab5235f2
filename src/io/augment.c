/* Host-side data augmentation for input pipelines: per-sample random flips, rotation, shifts,
 * padded crops and blur on float batches, in plain C before the data reaches a program. The
 * choices for sample i are a pure function of (seed, step, i), so a batch is reproducible and
 * a sample's transform does not depend on what else is in its batch. The sampling rules are
 * the graph ops' (util/image_sampling.h), so both agree. */
#include "io/augment.h"

#include "util/image_sampling.h"
#include "util/size.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- one plane, in place */

void augment_hflip(float *p, int h, int w)
{
    for (int y = 0; y < h; y++)
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            float t = p[(int64_t)y * w + a];
            p[(int64_t)y * w + a] = p[(int64_t)y * w + b];
            p[(int64_t)y * w + b] = t;
        }
}

void augment_vflip(float *p, int h, int w)
{
    for (int a = 0, b = h - 1; a < b; a++, b--)
        for (int x = 0; x < w; x++) {
            float t = p[(int64_t)a * w + x];
            p[(int64_t)a * w + x] = p[(int64_t)b * w + x];
            p[(int64_t)b * w + x] = t;
        }
}

void augment_translate(float *p, int h, int w, int64_t dy, int64_t dx, float *scratch)
{
    if (dy == 0 && dx == 0)
        return;
    size_t n = (size_t)h * (size_t)w;
    memcpy(scratch, p, n * sizeof *p);
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            int64_t sy = y - dy, sx = x - dx;
            p[y * w + x] = sy >= 0 && sy < h && sx >= 0 && sx < w ? scratch[sy * w + sx] : 0.0f;
        }
}

void augment_rotate(float *p, int h, int w, double degrees, float *scratch)
{
    double cs, sn;
    image_rotation_cs(degrees, &cs, &sn);
    if (cs == 1)
        return;
    memcpy(scratch, p, (size_t)h * (size_t)w * sizeof *p);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int32_t idx[4];
            double wt[4], acc = 0;
            image_rotate_taps(h, w, cs, sn, y, x, idx, wt);
            for (int k = 0; k < 4; k++)
                if (wt[k] != 0) /* a tap off the image must not read an inf at index 0 */
                    acc += wt[k] * scratch[idx[k]];
            p[(int64_t)y * w + x] = (float)acc;
        }
}

static int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* Columns first (along H), then rows, in the graph op's order, so rounding agrees too. */
void augment_blur(float *p, int h, int w, double sigma, float *scratch)
{
    double wk[2 * IMAGE_MAX_RADIUS + 1];
    int r = image_gauss_kernel(sigma, wk);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double acc = 0;
            for (int k = 0; k <= 2 * r; k++)
                acc += wk[k] * p[(int64_t)clampi(y + k - r, h - 1) * w + x];
            scratch[(int64_t)y * w + x] = (float)acc;
        }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double acc = 0;
            for (int k = 0; k <= 2 * r; k++)
                acc += wk[k] * scratch[(int64_t)y * w + clampi(x + k - r, w - 1)];
            p[(int64_t)y * w + x] = (float)acc;
        }
}

/* ---- the batch */

static jg_status fail(char *errbuf, size_t size, jg_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static jg_status fail(char *errbuf, size_t size, jg_status st, const char *fmt, ...)
{
    if (errbuf && size) {
        int k = snprintf(errbuf, size, "jg_augment: ");
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < size)
            vsnprintf(errbuf + k, size - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return st;
}

static bool is_prob(double p) { return p >= 0 && p <= 1; }

static jg_status check(const jg_augment_opts *o, const float *src, const float *dst, int n,
                       int c, int h, int w, char *errbuf, size_t size)
{
    if (!o || !src || !dst)
        return fail(errbuf, size, JG_ERR_ARG, "%s is NULL", !o ? "opts" : "the image data");
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return fail(errbuf, size, JG_ERR_SHAPE, "batch [n, c, h, w] = [%d, %d, %d, %d] has a "
                    "dimension < 1", n, c, h, w);
    int64_t plane, total;
    if (!size_product((int64_t[]){ h, w }, 2, INT32_MAX, &plane) ||
        !size_product((int64_t[]){ n, c, h, w }, 4, SHAPE_MAX_NUMEL, &total))
        return fail(errbuf, size, JG_ERR_SHAPE, "batch [%d, %d, %d, %d] is too large", n, c, h,
                    w);
    if (!is_prob(o->hflip_prob) || !is_prob(o->vflip_prob) || !is_prob(o->blur_prob))
        return fail(errbuf, size, JG_ERR_ARG, "probabilities must be in [0, 1] (hflip %g, "
                    "vflip %g, blur %g)", o->hflip_prob, o->vflip_prob, o->blur_prob);
    if (!(o->max_rotate_deg >= 0) || !isfinite(o->max_rotate_deg))
        return fail(errbuf, size, JG_ERR_ARG, "max_rotate_deg %g must be finite and >= 0",
                    o->max_rotate_deg);
    if (o->max_shift < 0 || o->crop_pad < 0)
        return fail(errbuf, size, JG_ERR_ARG, "max_shift %d and crop_pad %d must be >= 0",
                    o->max_shift, o->crop_pad);
    if (!(o->blur_sigma >= 0) || o->blur_sigma > IMAGE_MAX_SIGMA)
        return fail(errbuf, size, JG_ERR_ARG, "blur_sigma %g must be in [0, 64]", o->blur_sigma);
    return JG_OK;
}

/* An integer uniform in [-m, m] from u in [0, 1). */
static int64_t uniform_int(double u, int m)
{
    int64_t k = (int64_t)floor(u * (2.0 * m + 1));
    return (k > 2 * (int64_t)m ? 2 * (int64_t)m : k) - m;
}

/* The draws of one sample, each from its own counter so that switching one transform on or
 * off leaves the others' choices as they were. */
enum { D_HFLIP, D_VFLIP, D_ANGLE, D_SHIFT_Y, D_SHIFT_X, D_CROP_Y, D_CROP_X, D_BLUR };

static void augment_sample(const jg_augment_opts *o, float *img, int c, int h, int w,
                           uint64_t key, float *scratch)
{
    bool hflip = rng_uniform(key, D_HFLIP) < o->hflip_prob;
    bool vflip = rng_uniform(key, D_VFLIP) < o->vflip_prob;
    double angle = o->max_rotate_deg * (2 * rng_uniform(key, D_ANGLE) - 1);
    /* A random crop of the image padded by p is a translation by an amount uniform in
     * [-p, p]: crop offset o reads padded[y + o] = image[y + o - p]. */
    int64_t dy = uniform_int(rng_uniform(key, D_SHIFT_Y), o->max_shift) -
                 uniform_int(rng_uniform(key, D_CROP_Y), o->crop_pad);
    int64_t dx = uniform_int(rng_uniform(key, D_SHIFT_X), o->max_shift) -
                 uniform_int(rng_uniform(key, D_CROP_X), o->crop_pad);
    bool blur = o->blur_sigma > 0 && rng_uniform(key, D_BLUR) < o->blur_prob;
    for (int ch = 0; ch < c; ch++) {
        float *p = img + (int64_t)ch * h * w;
        if (hflip)
            augment_hflip(p, h, w);
        if (vflip)
            augment_vflip(p, h, w);
        if (o->max_rotate_deg > 0)
            augment_rotate(p, h, w, angle, scratch);
        augment_translate(p, h, w, dy, dx, scratch);
        if (blur)
            augment_blur(p, h, w, o->blur_sigma, scratch);
    }
}

jg_status jg_augment_to(const jg_augment_opts *o, const float *src, float *dst, int n, int c,
                        int h, int w, uint64_t seed, uint64_t step, char *errbuf,
                        size_t errbuf_size)
{
    jg_status st = check(o, src, dst, n, c, h, w, errbuf, errbuf_size);
    if (st != JG_OK)
        return st;
    size_t plane = (size_t)h * (size_t)w, per = (size_t)c * plane;
    float *scratch = malloc(plane * sizeof *scratch);
    if (!scratch)
        return fail(errbuf, errbuf_size, JG_ERR_NOMEM, "out of memory");
    if (src != dst)
        memmove(dst, src, (size_t)n * per * sizeof *dst);
    uint64_t batch_key = rng_u64(seed, step);
    for (int i = 0; i < n; i++)
        augment_sample(o, dst + (size_t)i * per, c, h, w, rng_u64(batch_key, (uint64_t)i),
                       scratch);
    free(scratch);
    if (errbuf && errbuf_size)
        errbuf[0] = '\0';
    return JG_OK;
}

jg_status jg_augment(const jg_augment_opts *o, float *images, int n, int c, int h, int w,
                     uint64_t seed, uint64_t step)
{
    return jg_augment_to(o, images, images, n, c, h, w, seed, step, NULL, 0);
}
