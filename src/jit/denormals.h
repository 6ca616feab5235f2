/* Flushing subnormal floats to zero around kernel calls (jg_opts.flush_denormals): on x86,
 * the MXCSR bits FTZ (results) and DAZ (inputs) of the calling thread, set for a call and
 * then put back, so neither the caller's code nor other programs sharing a thread see them.
 * Elsewhere a no-op. */
#ifndef JG_JIT_DENORMALS_H
#define JG_JIT_DENORMALS_H

#include <stdbool.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#define JG_MXCSR_FTZ_DAZ 0x8040u

/* Sets FTZ and DAZ when on; returns the state to hand to denormals_restore (0 when off:
 * nothing is read or changed). */
static inline unsigned denormals_flush(bool on)
{
    if (!on)
        return 0;
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | JG_MXCSR_FTZ_DAZ);
    return saved;
}

static inline void denormals_restore(bool on, unsigned saved)
{
    if (on)
        _mm_setcsr(saved);
}
#else
static inline unsigned denormals_flush(bool on) { (void)on; return 0; }
static inline void denormals_restore(bool on, unsigned saved) { (void)on, (void)saved; }
#endif

#endif
