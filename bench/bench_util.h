/* Shared helpers of the benchmarks: a monotonic clock, the median of repeats, and the one JSON
 * object per line that every benchmark prints:
 *
 *     {"bench": "name", "value": v, "unit": "u"}
 *     {"bench": "name", "value": v, "unit": "u", "ref": "what", "ref_value": r, "ratio": q}
 *
 * with ratio > 1 meaning jitgrad is better, and optional extra fields after those. Usage:
 *
 *     bu_line l;
 *     bu_begin(&l, "elementwise_2t", gbs, "GB/s");
 *     bu_ref(&l, "stream_triad_2t", triad, gbs / triad);
 *     bu_num(&l, "load_avg_1m", bu_loadavg());
 *     bu_end(&l);                         // prints the line to stdout and flushes
 *
 * Header-only (static inline), so a bench includes it with #include "bench_util.h". */
#ifndef JG_BENCH_UTIL_H
#define JG_BENCH_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- time */

/* Seconds on the monotonic clock. */
static inline double bu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Nanoseconds on the monotonic clock. */
static inline int64_t bu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline int bu_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (sorts v in place); the mean of the middle two when n is even. */
static inline double bu_median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, bu_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The median over `repeats` of the seconds one call of fn(ctx) takes; `warmup` untimed calls
 * first (caches, page faults, thread pool start-up). repeats <= 64. */
static inline double bu_time_median(void (*fn)(void *), void *ctx, int warmup, int repeats)
{
    double t[64];
    if (repeats > 64)
        repeats = 64;
    for (int i = 0; i < warmup; i++)
        fn(ctx);
    for (int r = 0; r < repeats; r++) {
        double t0 = bu_now();
        fn(ctx);
        t[r] = bu_now() - t0;
    }
    return bu_median(t, repeats);
}

/* The 1-minute load average (from /proc/loadavg), or -1 when it cannot be read. */
static inline double bu_loadavg(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* ---------------------------------------------------------------- JSON lines */

typedef struct bu_line {
    char buf[2048];
    size_t len;
} bu_line;

static inline void bu_append(bu_line *l, const char *fmt, ...)
{
    if (l->len >= sizeof l->buf)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, sizeof l->buf - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len += (size_t)n;
    if (l->len >= sizeof l->buf)
        l->len = sizeof l->buf - 1;
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static inline void bu_append_str(bu_line *l, const char *s)
{
    bu_append(l, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            bu_append(l, "\\%c", c);
        else if (c < 0x20)
            bu_append(l, "\\u%04x", c);
        else
            bu_append(l, "%c", c);
    }
    bu_append(l, "\"");
}

/* A JSON number (JSON has no NaN or infinity: those become null). */
static inline void bu_append_num(bu_line *l, double v)
{
    if (isfinite(v))
        bu_append(l, "%.6g", v);
    else
        bu_append(l, "null");
}

/* Extra fields, in the order they are added. */
static inline void bu_num(bu_line *l, const char *key, double v)
{
    bu_append(l, ", ");
    bu_append_str(l, key);
    bu_append(l, ": ");
    bu_append_num(l, v);
}

static inline void bu_int(bu_line *l, const char *key, long long v)
{
    bu_append(l, ", ");
    bu_append_str(l, key);
    bu_append(l, ": %lld", v);
}

static inline void bu_str(bu_line *l, const char *key, const char *v)
{
    bu_append(l, ", ");
    bu_append_str(l, key);
    bu_append(l, ": ");
    bu_append_str(l, v);
}

static inline void bu_bool(bu_line *l, const char *key, bool v)
{
    bu_append(l, ", ");
    bu_append_str(l, key);
    bu_append(l, ": %s", v ? "true" : "false");
}

/* {"bench": name, "value": value, "unit": unit */
static inline void bu_begin(bu_line *l, const char *name, double value, const char *unit)
{
    l->len = 0;
    l->buf[0] = '\0';
    bu_append(l, "{\"bench\": ");
    bu_append_str(l, name);
    bu_append(l, ", \"value\": ");
    bu_append_num(l, value);
    bu_str(l, "unit", unit);
}

/* "ref", "ref_value", "ratio" (ratio > 1: jitgrad is better). */
static inline void bu_ref(bu_line *l, const char *ref, double ref_value, double ratio)
{
    bu_str(l, "ref", ref);
    bu_num(l, "ref_value", ref_value);
    bu_num(l, "ratio", ratio);
}

/* Closes the object and prints it as one line on stdout. */
static inline void bu_end(bu_line *l)
{
    bu_append(l, "}");
    printf("%s\n", l->buf);
    fflush(stdout);
}

/* The common case: a line with no reference. */
static inline void bu_emit(const char *name, double value, const char *unit)
{
    bu_line l;
    bu_begin(&l, name, value, unit);
    bu_end(&l);
}

/* A line with a reference measured in the same run. */
static inline void bu_emit_ref(const char *name, double value, const char *unit,
                               const char *ref, double ref_value, double ratio)
{
    bu_line l;
    bu_begin(&l, name, value, unit);
    bu_ref(&l, ref, ref_value, ratio);
    bu_end(&l);
}

#endif /* JG_BENCH_UTIL_H */
