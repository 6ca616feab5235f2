/* Shows what host-side augmentation does to Fashion-MNIST: loads the first 16 test images,
 * augments them at three steps, and writes a grid as a PGM file (plain C, no image library):
 * the top row holds the originals, each row below one augmented batch.
 *
 *   augment_grid [OUT.pgm] [DATA_DIR]     (defaults: augment_grid.pgm,
 *                                          /usr/share/datasets/fashion-mnist)
 */
#include "jitgrad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 16, STEPS = 3, GAP = 2 };

/* Writes a binary graymap (P5); pixels in [0, 1]. */
static int write_pgm(const char *path, const float *pix, int w, int h)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fprintf(f, "P5\n%d %d\n255\n", w, h);
    for (int i = 0; i < w * h; i++) {
        float v = pix[i] < 0 ? 0 : pix[i] > 1 ? 1 : pix[i];
        fputc((int)(v * 255.0f + 0.5f), f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Copies n images of s x s into row r of the grid. */
static void place_row(float *grid, int gw, int r, const float *imgs, int n, int s)
{
    for (int i = 0; i < n; i++)
        for (int y = 0; y < s; y++)
            memcpy(grid + (size_t)(GAP + r * (s + GAP) + y) * gw + GAP + i * (s + GAP),
                   imgs + ((size_t)i * s + y) * s, (size_t)s * sizeof *grid);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "augment_grid.pgm";
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte.gz", dir);
    jg_array a;
    if (jg_idx_read(path, JG_F32, &a, err, sizeof err) != JG_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (a.shape.ndim != 3 || a.shape.dim[0] < N || a.shape.dim[1] != a.shape.dim[2]) {
        fprintf(stderr, "%s: expected at least %d square images\n", path, N);
        jg_array_free(&a);
        return 1;
    }
    int s = (int)a.shape.dim[1];
    int gw = GAP + N * (s + GAP), gh = GAP + (1 + STEPS) * (s + GAP);
    float *grid = calloc((size_t)gw * gh, sizeof *grid);
    float *batch = malloc((size_t)N * s * s * sizeof *batch);
    int rc = 1;
    if (!grid || !batch) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    for (int i = 0; i < gw * gh; i++)
        grid[i] = 0.25f; /* a dark gray frame between the images */
    place_row(grid, gw, 0, a.data, N, s);

    jg_augment_opts o = { .hflip_prob = 0.5, .max_rotate_deg = 15, .max_shift = 2,
                          .crop_pad = 2, .blur_prob = 0.3, .blur_sigma = 0.8 };
    for (int step = 0; step < STEPS; step++) {
        if (jg_augment_to(&o, a.data, batch, N, 1, s, s, 42, (uint64_t)step, err,
                          sizeof err) != JG_OK) {
            fprintf(stderr, "%s\n", err);
            goto done;
        }
        place_row(grid, gw, 1 + step, batch, N, s);
    }
    if (write_pgm(out, grid, gw, gh) != 0) {
        perror(out);
        goto done;
    }
    printf("%s\n", out);
    rc = 0;
done:
    free(grid);
    free(batch);
    jg_array_free(&a);
    return rc != 0;
}
