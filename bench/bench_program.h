/* Helpers of the benchmarks that time one JIT program against a reference measured in the
 * same run (bench_elementwise, bench_bn_relu, bench_max_pool, bench_adam): running it
 * (exiting with its message on failure, as a triad_alternate callback), uniform test data,
 * timing it against a STREAM triad with its two JSON lines, and where the time went,
 * printed to stderr after the figures.
 *
 * Header-only (static), like bench_util.h. */
#ifndef JG_BENCH_PROGRAM_H
#define JG_BENCH_PROGRAM_H

#include "jitgrad.h"

#include "bench_triad.h"
#include "bench_util.h"

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

/* A reference quoted on a bench's time line besides the triad (a published figure). */
typedef struct bp_quoted {
    const char *name;
    double ms, target_ms;
} bp_quoted;

/* Times p against a STREAM triad over n floats copied from b and c, alternately (medians of
 * `repeats`), and prints two lines: "<name>" in ms (with the triad's bound for `moved`
 * bytes, the kernel count and, when q is not NULL, the quoted reference and target) and
 * "<name>_bandwidth" in GB/s against the triad's. Returns 0, or 1 if the triad cannot
 * start. */
static inline int bp_against_triad(jg_program *p, const char *name, double moved, size_t n,
                                   const float *b, const float *c, int repeats,
                                   const bp_quoted *q)
{
    triad t;
    if (triad_init(&t, n, b, c))
        return 1;
    double sj, st;
    triad_alternate(bp_run, p, &t, repeats, &sj, &st);
    triad_free(&t);
    double gbs = moved / sj * 1e-9, triad_gbs = 3.0 * (double)(n * sizeof(float)) / st * 1e-9;
    jg_program_stats stats;
    jg_program_stats_get(p, &stats);
    char bw_name[128];
    snprintf(bw_name, sizeof bw_name, "%s_bandwidth", name);
    bu_line l;
    bu_begin(&l, name, 1e3 * sj, "ms");
    if (q) {
        bu_ref(&l, q->name, q->ms, q->ms / (1e3 * sj));
        bu_num(&l, "target_ms", q->target_ms);
    }
    bu_num(&l, "bound_ms", 1e3 * moved / (triad_gbs * 1e9));
    bu_int(&l, "kernels", stats.kernels);
    bu_num(&l, "load_avg_1m", bu_loadavg());
    bu_end(&l);
    bu_begin(&l, bw_name, gbs, "GB/s");
    bu_ref(&l, "stream_triad_2t", triad_gbs, gbs / triad_gbs);
    bu_num(&l, "bytes", moved);
    bu_num(&l, "ref_ms", 1e3 * st);
    bu_end(&l);
    return 0;
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
