/* The host-side image transforms behind jg_augment (io/augment.c), one plane of h x w floats
 * at a time, in place; scratch holds h * w floats. Internal: the tests compare them with the
 * graph ops (ops/image.c), whose sampling rules they share. */
#ifndef JG_IO_AUGMENT_H
#define JG_IO_AUGMENT_H

#include "graph/graph.h"

HIDDEN void augment_hflip(float *p, int h, int w);
HIDDEN void augment_vflip(float *p, int h, int w);
/* out[y][x] = in[y - dy][x - dx], zero outside (as jg_translate). */
HIDDEN void augment_translate(float *p, int h, int w, int64_t dy, int64_t dx, float *scratch);
/* As jg_rotate: bilinear, counter-clockwise on screen, zero outside. */
HIDDEN void augment_rotate(float *p, int h, int w, double degrees, float *scratch);
/* As jg_gaussian_blur: separable, edges clamped; sigma in (0, 64]. */
HIDDEN void augment_blur(float *p, int h, int w, double sigma, float *scratch);

#endif
