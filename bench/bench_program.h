/* Helpers of the benchmarks that time one JIT program against a reference measured in the
 * same run (bench_elementwise, bench_bn_relu, bench_max_pool): running it (exiting with its
 * message on failure, as a triad_alternate callback), uniform test data, and where the time
 * went, printed to stderr after the figures.
 *
 * Header-only (static), like bench_util.h. */
#ifndef JG_BENCH_PROGRAM_H
#define JG_BENCH_PROGRAM_H

#include "jitgrad.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Runs the program `arg` once; a failed run ends the bench with the program's message. */
static void bp_run(void *arg)
{
    jg_program *p = arg;
    if (jg_program_run(p) != JG_OK) {
        fprintf(stderr, "bench: %s\n", jg_errmsg(p));
        exit(1);
    }
}

/* Uniform in [-1, 1) from a xorshift state (never 0). */
static float bp_uniform(uint64_t *s)
{
    *s ^= *s >> 12, *s ^= *s << 25, *s ^= *s >> 27;
    return (float)((*s * 0x2545F4914F6CDD1DULL) >> 40) / (float)(1 << 24) * 2.0f - 1.0f;
}

/* Where the time goes: a few profiled runs, then the fused groups and the per-kernel table. */
static void bp_profile(jg_program *p, const char *bench)
{
    jg_program_stats stats;
    jg_program_stats_get(p, &stats);
    jg_program_profile(p, true);
    for (int r = 0; r < 5; r++)
        bp_run(p);
    fprintf(stderr, "%s: %d kernels, %d threads, %d-bit vectors\n", bench, stats.kernels,
            stats.threads, stats.vector_bits);
    jg_program_dump(p, stderr);
    jg_program_profile_dump(p, stderr);
}

#endif
