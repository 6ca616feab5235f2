/* Overflow-checked size arithmetic for counts that come from a caller or a file: the one
 * helper every entry point that multiplies dimensions uses (shapes have jg_shape_numel, which
 * saturates, and shape_valid). */
#ifndef JG_UTIL_SIZE_H
#define JG_UTIL_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/* The product of n factors into *out; false when one is negative or the product exceeds
 * max (use INT64_MAX for "no limit but int64_t"). Checked before each multiplication, so it
 * never overflows. */
static inline bool size_product(const int64_t *factors, int n, int64_t max, int64_t *out)
{
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        if (factors[i] < 0 || (factors[i] != 0 && p > max / factors[i]))
            return false;
        p *= factors[i];
    }
    *out = p;
    return true;
}

#endif
