/* Sampling rules shared by the graph image ops (ops/image.c) and the host-side augmentation
 * (io/augment.c): the Gaussian kernel and the bilinear rotation map. Keeping one definition
 * makes a graph op and its host counterpart agree to rounding. */
#ifndef JG_UTIL_IMAGE_SAMPLING_H
#define JG_UTIL_IMAGE_SAMPLING_H

#include "util/hidden.h"

#include <stdint.h>

/* The largest blur sigma accepted: the kernel has 2 * ceil(3 sigma) + 1 taps, and the graph
 * op builds one slice per tap. */
#define IMAGE_MAX_SIGMA 64.0
#define IMAGE_MAX_RADIUS 192

/* Writes the normalised 1-D Gaussian kernel w[0 .. 2r] (w[r] is the centre) for sigma > 0
 * (<= IMAGE_MAX_SIGMA) and returns r = ceil(3 sigma). w holds 2 * IMAGE_MAX_RADIUS + 1. */
HIDDEN int image_gauss_kernel(double sigma, double *w);

/* Bilinear rotation about the image centre ((h-1)/2, (w-1)/2), counter-clockwise on screen
 * (rows grow downwards) for positive angles, zero outside the source. For output pixel (y, x)
 * writes the 4 source pixels as flat indices y*w + x and their weights; a corner outside the
 * image gets weight 0 and the index of another corner (0 when none is inside). cs, sn: cos and sin of the angle (image_rotation_cs). */
HIDDEN void image_rotate_taps(int h, int w, double cs, double sn, int y, int x,
                              int32_t idx[4], double wt[4]);
/* cos and sin of `degrees`, exact at multiples of 90 degrees. */
HIDDEN void image_rotation_cs(double degrees, double *cs, double *sn);

#endif
