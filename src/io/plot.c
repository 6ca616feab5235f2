/* Training curves as SVG line charts, written as plain text (no plotting library): linear or
 * log10 y axis with "nice" ticks, one polyline and legend entry per series, and a reader for
 * the CSV logs of csv.c so a finished run can be plotted from its log. Written through
 * atomic_file so a reader never sees half a chart.
 */
#include "jitgrad.h"
#include "util/atomic.h"
#include "util/file.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { W = 800, H = 500, ML = 80, MR = 190, MT = 50, MB = 60 };

/* tab10: distinct, colour-blind-friendlier than pure hues; cycles after 10 series. */
static const char *const palette[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* An axis maps data values (log10 of them when log) to pixels. */
typedef struct axis {
    double lo, hi;     /* in (log10 when log) data units, lo < hi */
    double step;       /* tick spacing in the same units */
    bool log;
} axis;

/* 1, 2 or 5 times a power of ten, close to range / 5: the tick spacing people expect. */
static double nice_step(double range)
{
    double raw = range / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void axis_fit(axis *a, double lo, double hi, bool log)
{
    a->log = log;
    if (!(lo <= hi)) {   /* no finite point at all */
        lo = 0;
        hi = 1;
    }
    if (log) {
        /* whole decades, ticks at powers of ten (every k-th decade when there are many) */
        lo = floor(lo);
        hi = ceil(hi);
        if (hi <= lo)
            hi = lo + 1;
        a->step = ceil((hi - lo) / 8);
        a->lo = lo;
        a->hi = hi;
        return;
    }
    if (hi - lo < 1e-300 * (fabs(lo) + 1)) {   /* a constant series: open a unit window */
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    a->step = nice_step(hi - lo);
    a->lo = floor(lo / a->step) * a->step;
    a->hi = ceil(hi / a->step) * a->step;
    if (a->hi <= a->lo)
        a->hi = a->lo + a->step;
}

static double px(const axis *a, double v, double p0, double p1)
{
    return p0 + (v - a->lo) / (a->hi - a->lo) * (p1 - p0);
}

static bool point_ok(double x, double y)
{
    return isfinite(x) && isfinite(y);
}

static void write_svg(FILE *f, const char *title, const char *x_label, const char *y_label,
                      const jg_series *s, int n_series, const axis *ax, const axis *ay)
{
    const double x0 = ML, x1 = W - MR, y0 = H - MB, y1 = MT;   /* y grows downwards */
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", W, H);
    if (title) {
        fprintf(f, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\" font-size=\"16\">",
                (x0 + x1) / 2, MT / 2 + 5);
        put_escaped(f, title);
        fputs("</text>\n", f);
    }
    /* ticks with grid lines; the 1e-9 slack keeps the last tick despite rounding */
    for (int i = 0;; i++) {
        double v = ax->lo + i * ax->step;
        if (v > ax->hi + ax->step * 1e-9)
            break;
        double p = px(ax, v, x0, x1);
        fprintf(f, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#ddd\"/>\n",
                p, y1, p, y0);
        fprintf(f, "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">%g</text>\n", p, y0 + 16,
                fabs(v) < ax->step * 1e-9 ? 0.0 : v);
    }
    for (int i = 0;; i++) {
        double v = ay->lo + i * ay->step;
        if (v > ay->hi + ay->step * 1e-9)
            break;
        double p = px(ay, v, y0, y1);
        fprintf(f, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#ddd\"/>\n",
                x0, p, x1, p);
        fprintf(f, "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">%g</text>\n", x0 - 6, p + 4,
                ay->log ? pow(10, v) : fabs(v) < ay->step * 1e-9 ? 0.0 : v);
    }
    fprintf(f, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
               "stroke=\"black\"/>\n", x0, y1, x1 - x0, y0 - y1);
    if (x_label) {
        fprintf(f, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\">", (x0 + x1) / 2, H - 15);
        put_escaped(f, x_label);
        fputs("</text>\n", f);
    }
    if (y_label) {
        fprintf(f, "<text x=\"18\" y=\"%g\" text-anchor=\"middle\" "
                   "transform=\"rotate(-90 18 %g)\">", (y0 + y1) / 2, (y0 + y1) / 2);
        put_escaped(f, y_label);
        fputs("</text>\n", f);
    }
    for (int k = 0; k < n_series; k++) {
        const char *colour = palette[k % (int)(sizeof palette / sizeof *palette)];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"",
                colour);
        bool first = true;
        for (int i = 0; i < s[k].n; i++) {
            if (!point_ok(s[k].x[i], s[k].y[i]))
                continue;
            double yv = ay->log ? log10(s[k].y[i]) : s[k].y[i];
            fprintf(f, "%s%.2f,%.2f", first ? "" : " ", px(ax, s[k].x[i], x0, x1),
                    px(ay, yv, y0, y1));
            first = false;
        }
        fputs("\"/>\n", f);
        /* legend entry to the right of the plot area */
        double ly = y1 + 10 + 20 * k;
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"%s\" "
                   "stroke-width=\"3\"/>\n", x1 + 12, ly, x1 + 36, ly, colour);
        fprintf(f, "<text x=\"%g\" y=\"%g\">", x1 + 42, ly + 4);
        if (s[k].label)
            put_escaped(f, s[k].label);
        else
            fprintf(f, "series %d", k);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
}

JG_API jg_status jg_plot_svg(const char *path, const char *title, const char *x_label,
                             const char *y_label, const jg_series *series, int n_series,
                             bool log_y, char *errbuf, size_t errbuf_size)
{
    if (!path || !series || n_series < 1) {
        file_fail(errbuf, errbuf_size, path, "jg_plot_svg: %s", !path ? "path is NULL"
                : !series ? "series is NULL" : "n_series < 1");
        return JG_ERR_ARG;
    }
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < n_series; k++) {
        const jg_series *s = &series[k];
        if (s->n < 0 || (s->n > 0 && (!s->x || !s->y))) {
            file_fail(errbuf, errbuf_size, path, "jg_plot_svg: series %d: %s", k,
                    s->n < 0 ? "n < 0" : "x or y is NULL");
            return JG_ERR_ARG;
        }
        for (int i = 0; i < s->n; i++) {
            double x = s->x[i], y = s->y[i];
            if (!point_ok(x, y))
                continue;
            if (log_y) {
                if (y <= 0) {
                    file_fail(errbuf, errbuf_size, path,
                            "jg_plot_svg: log_y but series %d has y[%d] = %g <= 0", k, i, y);
                    return JG_ERR_ARG;
                }
                y = log10(y);
            }
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            ylo = fmin(ylo, y);
            yhi = fmax(yhi, y);
        }
    }
    axis ax, ay;
    axis_fit(&ax, xlo, xhi, false);
    axis_fit(&ay, ylo, yhi, log_y);

    atomic_file a;
    if (!atomic_file_begin(&a, path, errbuf, errbuf_size))
        return JG_ERR_IO;
    write_svg(a.f, title, x_label, y_label, series, n_series, &ax, &ay);
    if (!atomic_file_commit(&a, errbuf, errbuf_size))
        return JG_ERR_IO;
    return JG_OK;
}

/* ---- CSV input */

/* Reads the whole file (logs are small) NUL-terminated; NULL with the reason in why. */
static char *read_all(const char *path, size_t *len, char *why, size_t why_size)
{
    int64_t size;
    int fd = file_open_regular(path, &size, why, why_size);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
            snprintf(why, why_size, "out of memory");
        }
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    snprintf(why, why_size, "out of memory");
    while (buf) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        char *b = realloc(buf, cap *= 2);
        if (!b) {
            free(buf);
            buf = NULL;
        } else {
            buf = b;
        }
    }
    if (buf && ferror(f)) {
        snprintf(why, why_size, "read error: %s", strerror(errno));
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

/* Splits one RFC 4180 record at *p in place: fields are unquoted into the buffer itself
 * (an unquoted field never grows), their starts go to fields[0..max-1]. Advances *p past the
 * line break and returns the field count (which may exceed max: extra fields are not kept). */
static int split_record(char **p, char **fields, int max)
{
    char *r = *p, *w = *p;
    int n = 0;
    for (;;) {
        if (n < max)
            fields[n] = w;
        n++;
        if (*r == '"') {
            r++;
            for (; *r; r++) {
                if (*r == '"') {
                    if (r[1] != '"')
                        break;
                    r++;
                }
                *w++ = *r;
            }
            if (*r == '"')
                r++;
        }
        while (*r && *r != ',' && *r != '\n' && *r != '\r')
            *w++ = *r++;
        char c = *r;
        *w++ = '\0';   /* w <= r here, so this never clobbers unread input past c */
        if (c == ',') {
            r++;
            continue;
        }
        if (c == '\r' && r[1] == '\n')
            r++;
        if (c)
            r++;
        break;
    }
    *p = r;
    return n;
}

static bool parse_num(const char *s, double *out)
{
    while (*s == ' ')
        s++;
    if (!*s) {
        *out = NAN;   /* an empty field is a missing value */
        return true;
    }
    char *end;
    *out = strtod(s, &end);
    while (*end == ' ')
        end++;
    return end != s && !*end;
}

JG_API jg_status jg_plot_csv(const char *csv_path, const char *svg_path, const char *x_column,
                             const char *const *y_columns, int n_y, bool log_y, char *errbuf,
                             size_t errbuf_size)
{
    if (!csv_path || !svg_path || !x_column || !y_columns || n_y < 1) {
        file_fail(errbuf, errbuf_size, csv_path, "jg_plot_csv: %s",
                !csv_path ? "csv_path is NULL" : !svg_path ? "svg_path is NULL"
                : !x_column ? "x_column is NULL" : !y_columns ? "y_columns is NULL"
                : "n_y < 1");
        return JG_ERR_ARG;
    }
    for (int j = 0; j < n_y; j++)
        if (!y_columns[j]) {
            file_fail(errbuf, errbuf_size, csv_path, "jg_plot_csv: y_columns[%d] is NULL", j);
            return JG_ERR_ARG;
        }
    size_t len;
    char why[160];
    char *text = read_all(csv_path, &len, why, sizeof why);
    if (!text) {
        file_fail(errbuf, errbuf_size, csv_path, "%s", why);
        return JG_ERR_IO;
    }
    jg_status st = JG_OK;
    int n_rows = 0, cap = 0;
    /* wanted[0] is x, wanted[1..n_y] the y columns: their indices in the header */
    int *wanted = malloc((size_t)(n_y + 1) * sizeof *wanted);
    double **cols = calloc((size_t)n_y + 1, sizeof *cols);
    jg_series *series = malloc((size_t)n_y * sizeof *series);
    char **fields = NULL;
    int n_fields = 0;
    if (!wanted || !cols || !series) {
        file_fail(errbuf, errbuf_size, csv_path, "out of memory");
        st = JG_ERR_NOMEM;
        goto done;
    }
    char *p = text;
    if (!*p) {
        file_fail(errbuf, errbuf_size, csv_path, "jg_plot_csv: empty file, no header line");
        st = JG_ERR_IO;
        goto done;
    }
    /* Header: split_record leaves the fields back to back, each NUL-terminated, so only the
     * count is needed from it; the starts are then found by walking the NULs. */
    {
        char *save = p;
        char *first;
        n_fields = split_record(&p, &first, 1);
        fields = malloc((size_t)n_fields * sizeof *fields);
        if (!fields) {
            file_fail(errbuf, errbuf_size, csv_path, "out of memory");
            st = JG_ERR_NOMEM;
            goto done;
        }
        char *q = save;
        for (int i = 0; i < n_fields; i++) {
            fields[i] = q;
            q += strlen(q) + 1;
        }
    }
    for (int j = 0; j <= n_y; j++) {
        const char *name = j ? y_columns[j - 1] : x_column;
        wanted[j] = -1;
        for (int i = 0; i < n_fields; i++)
            if (strcmp(fields[i], name) == 0) {
                wanted[j] = i;
                break;
            }
        if (wanted[j] < 0) {
            file_fail(errbuf, errbuf_size, csv_path, "jg_plot_csv: no column '%s' in the header",
                    name);
            st = JG_ERR_ARG;
            goto done;
        }
    }
    /* Data rows: every field must be a number (or empty / nan). */
    char **row = malloc((size_t)n_fields * sizeof *row);
    if (!row) {
        file_fail(errbuf, errbuf_size, csv_path, "out of memory");
        st = JG_ERR_NOMEM;
        goto done;
    }
    for (int line = 2; *p; line++) {
        if (*p == '\n' || (*p == '\r' && p[1] == '\n')) {   /* blank line */
            p += *p == '\r' ? 2 : 1;
            continue;
        }
        int n = split_record(&p, row, n_fields);
        if (n != n_fields) {
            file_fail(errbuf, errbuf_size, csv_path, "line %d: %d fields, the header has %d",
                    line, n, n_fields);
            st = JG_ERR_IO;
            break;
        }
        if (n_rows == cap) {
            cap = cap ? 2 * cap : 64;
            for (int j = 0; j <= n_y && st == JG_OK; j++) {
                double *c = realloc(cols[j], (size_t)cap * sizeof *c);
                if (!c) {
                    file_fail(errbuf, errbuf_size, csv_path, "out of memory");
                    st = JG_ERR_NOMEM;
                } else {
                    cols[j] = c;
                }
            }
            if (st != JG_OK)
                break;
        }
        for (int j = 0; j <= n_y; j++)
            if (!parse_num(row[wanted[j]], &cols[j][n_rows])) {
                file_fail(errbuf, errbuf_size, csv_path, "line %d: column '%s': '%s' is not a "
                        "number", line, fields[wanted[j]], row[wanted[j]]);
                st = JG_ERR_IO;
                break;
            }
        if (st != JG_OK)
            break;
        n_rows++;
    }
    free(row);
    if (st != JG_OK)
        goto done;
    for (int j = 0; j < n_y; j++)
        series[j] = (jg_series){ y_columns[j], cols[0], cols[j + 1], n_rows };
    const char *base = strrchr(csv_path, '/');
    base = base ? base + 1 : csv_path;
    st = jg_plot_svg(svg_path, base, x_column, n_y == 1 ? y_columns[0] : NULL, series, n_y,
                     log_y, errbuf, errbuf_size);
done:
    if (cols)
        for (int j = 0; j <= n_y; j++)
            free(cols[j]);
    free(cols);
    free(wanted);
    free(series);
    free(fields);
    free(text);
    return st;
}
