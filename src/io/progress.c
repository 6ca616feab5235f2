/* A progress bar for training loops: label, done/total, percentage, items per second, ETA and
 * a caller's note ("loss 0.32"). On a terminal one line is redrawn in place, at most ~10 times
 * a second so printing never costs the loop much; into a file or pipe (logs, CI) it prints
 * plain lines at each 10% step so the log stays short.
 */
#include "jitgrad.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_INTERVAL 0.1 /* seconds between terminal redraws */

struct jg_progress {
    FILE *out;
    char label[64];
    int64_t total;
    bool tty;
    double start, last_draw;
    int64_t done;         /* the latest value given */
    int64_t shown;        /* the value last printed, -1 if none */
    int last_decile;      /* plain mode: the last 10% step printed */
    int width;            /* terminal mode: the longest line drawn, to blank leftovers */
    char extra[96];
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* "1h02m", "3m07s", "12s". */
static void fmt_time(char *buf, size_t size, double s)
{
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, size, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, size, "%lds", t);
}

static void draw(jg_progress *p, double t)
{
    char line[320], eta[32];
    double elapsed = t - p->start, rate = elapsed > 0 ? (double)p->done / elapsed : 0;
    int k;
    if (p->total > 0) {
        double frac = (double)p->done / (double)p->total;
        if (p->done >= p->total)
            snprintf(eta, sizeof eta, "took %.1fs", elapsed);
        else {
            char e[24];
            fmt_time(e, sizeof e, rate > 0 ? (double)(p->total - p->done) / rate : -1);
            snprintf(eta, sizeof eta, "ETA %s", e);
        }
        k = snprintf(line, sizeof line, "%s %lld/%lld %5.1f%% %.1f/s %s", p->label,
                     (long long)p->done, (long long)p->total, 100.0 * frac, rate, eta);
    } else {
        k = snprintf(line, sizeof line, "%s %lld %.1f/s", p->label, (long long)p->done, rate);
    }
    if (p->extra[0] && k >= 0 && (size_t)k < sizeof line)
        k += snprintf(line + k, sizeof line - (size_t)k, "  %s", p->extra);
    if (k < 0)
        return;
    if (k >= (int)sizeof line)
        k = (int)sizeof line - 1;
    if (p->tty) {
        /* Spaces blank what a longer previous line left behind. */
        fprintf(p->out, "\r%s%*s", line, p->width > k ? p->width - k : 0, "");
        if (k > p->width)
            p->width = k;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
    p->shown = p->done;
    p->last_draw = t;
}

JG_API jg_progress *jg_progress_new(const char *label, int64_t total, FILE *out)
{
    jg_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out = out ? out : stderr;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    int fd = fileno(p->out); /* -1 for memory streams */
    p->tty = fd >= 0 && isatty(fd);
    p->start = now();
    p->last_draw = -1;
    p->shown = -1;
    p->last_decile = 0;
    return p;
}

JG_API void jg_progress_update(jg_progress *p, int64_t done, const char *extra)
{
    if (!p)
        return;
    p->done = done;
    snprintf(p->extra, sizeof p->extra, "%s", extra ? extra : "");
    bool end = p->total > 0 && done >= p->total;
    if (p->tty) {
        double t = now();
        if (end || p->last_draw < 0 || t - p->last_draw >= PROGRESS_INTERVAL)
            draw(p, t);
        return;
    }
    if (p->total <= 0)
        return; /* no steps to report against; jg_progress_done prints the final count */
    int decile = done <= 0 ? 0 : done >= p->total ? 10 : (int)(10 * done / p->total);
    if (decile > p->last_decile) {
        p->last_decile = decile;
        draw(p, now());
    }
}

JG_API void jg_progress_done(jg_progress *p)
{
    if (!p)
        return;
    if (p->shown != p->done)
        draw(p, now());
    if (p->tty)
        fputc('\n', p->out);
    fflush(p->out);
    free(p);
}
