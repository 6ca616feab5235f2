/* PNG writing with libpng: greyscale images, grids of images (filters, samples) and
 * blue-white-red heat maps. Each function renders into an 8-bit buffer first and then hands
 * it to one libpng writer, whose errors (longjmp) are caught and turned into JG_ERR_IO; the
 * file goes through a temporary name and a rename like every writer in src/io.
 */
#include "jitgrad.h"
#include "util/atomic.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/* Keeps w * h * 3 far from overflowing and from absurd allocations. */
#define PNG_MAX_SIDE 65536

static unsigned char to_byte(float v, float lo, float hi)
{
    float t = (v - lo) / (hi - lo) * 255.0f;
    if (!(t > 0)) /* also NaN */
        return 0;
    if (t >= 255)
        return 255;
    return (unsigned char)lrintf(t);
}

/* libpng reports errors by longjmp; locals it may clobber are not used after the jump. */
static bool encode(FILE *f, const unsigned char *pix, int w, int h, int channels)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (!png)
        return false;
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(pix + (size_t)y * (size_t)w * (size_t)channels));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return true;
}

/* Frees pix in every case. */
static jg_status write_png(const char *path, unsigned char *pix, int w, int h, int channels)
{
    if (!pix) {
        errno = ENOMEM;
        return JG_ERR_NOMEM;
    }
    atomic_file at;
    if (!atomic_file_begin(&at, path, NULL, 0)) {
        free(pix);
        return JG_ERR_IO;
    }
    bool ok = encode(at.f, pix, w, h, channels);
    free(pix);
    if (!ok) {
        atomic_file_abort(&at);
        errno = EIO;
        return JG_ERR_IO;
    }
    return atomic_file_commit(&at, NULL, 0) ? JG_OK : JG_ERR_IO;
}

static bool size_ok(int w, int h)
{
    return w >= 1 && h >= 1 && w <= PNG_MAX_SIDE && h <= PNG_MAX_SIDE;
}

JG_API jg_status jg_png_write_gray(const char *path, const float *pixels, int width, int height,
                                   float lo, float hi)
{
    if (!path || !pixels || !size_ok(width, height) || !(lo < hi) || !isfinite(hi - lo))
        return JG_ERR_ARG;
    size_t n = (size_t)width * (size_t)height;
    unsigned char *pix = malloc(n);
    for (size_t i = 0; pix && i < n; i++)
        pix[i] = to_byte(pixels[i], lo, hi);
    return write_png(path, pix, width, height, 1);
}

JG_API jg_status jg_png_write_grid(const char *path, const float *images, int n, int h, int w,
                                   int cols, int pad)
{
    if (!path || !images || n < 1 || !size_ok(w, h) || cols < 1 || pad < 0 || pad > 1024)
        return JG_ERR_ARG;
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols;
    int64_t W = (int64_t)cols * (w + pad) + pad, H = (int64_t)rows * (h + pad) + pad;
    if (W > PNG_MAX_SIDE || H > PNG_MAX_SIDE)
        return JG_ERR_ARG;
    unsigned char *pix = calloc((size_t)W * (size_t)H, 1);
    for (int k = 0; pix && k < n; k++) {
        const float *img = images + (size_t)k * (size_t)h * (size_t)w;
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < (size_t)h * (size_t)w; i++)
            if (isfinite(img[i])) {
                lo = fminf(lo, img[i]);
                hi = fmaxf(hi, img[i]);
            }
        bool flat = !(hi > lo);
        int64_t x0 = pad + (int64_t)(k % cols) * (w + pad);
        int64_t y0 = pad + (int64_t)(k / cols) * (h + pad);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = img[(size_t)y * (size_t)w + (size_t)x];
                pix[(y0 + y) * W + x0 + x] = flat ? 128 : to_byte(v, lo, hi);
            }
    }
    return write_png(path, pix, (int)W, (int)H, 1);
}

JG_API jg_status jg_png_write_heatmap(const char *path, const float *values, int w, int h)
{
    if (!path || !values || !size_ok(w, h))
        return JG_ERR_ARG;
    size_t n = (size_t)w * (size_t)h;
    float m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(values[i]))
            m = fmaxf(m, fabsf(values[i]));
    unsigned char *pix = malloc(n * 3);
    for (size_t i = 0; pix && i < n; i++) {
        float t = m > 0 && isfinite(values[i]) ? values[i] / m : 0; /* in [-1, 1] */
        /* White at 0, fading the other two channels toward pure blue (-1) or red (+1). */
        unsigned char fade = (unsigned char)lrintf(255.0f * (1.0f - fabsf(t)));
        pix[3 * i + 0] = t >= 0 ? 255 : fade;
        pix[3 * i + 1] = fade;
        pix[3 * i + 2] = t <= 0 ? 255 : fade;
    }
    return write_png(path, pix, w, h, 3);
}
