/* Tests for the SVG training-curve plots of src/io/plot.c: the chart's text (title, labels,
 * one polyline per series with one coordinate pair per finite point, XML escaping), log_y,
 * the error cases (bad arguments, unwritable path, unknown CSV column, malformed CSV), and
 * plotting a CSV log written by jg_csv_open/jg_csv_row.
 */
#include "support/support.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/jg_plot_XXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp failed");
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(plot, .init = setup, .fini = teardown);

static char *in_dir(const char *name)
{
    static char buf[4][256];   /* a few paths alive at once */
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* Number of "x,y" pairs in the points attribute of the k-th polyline. */
static int polyline_points(const char *svg, int k)
{
    const char *p = svg;
    for (int i = 0; i <= k; i++) {
        p = strstr(p, "<polyline");
        cr_assert(p, "no polyline %d", k);
        p++;
    }
    p = strstr(p, "points=\"");
    cr_assert(p);
    p += strlen("points=\"");
    const char *end = strchr(p, '"');
    int n = 0;
    for (const char *q = p; q < end; q++)
        n += *q == ',';
    return n;
}

Test(plot, writes_svg_with_title_labels_and_series)
{
    double x[5] = { 0, 1, 2, 3, 4 };
    double a[5] = { 2.0, 1.5, 1.1, 0.9, 0.8 };
    double b[3] = { 2.2, 1.8, 1.3 };
    jg_series s[2] = { { "train", x, a, 5 }, { "valid", x, b, 3 } };
    char err[256] = "";
    const char *path = in_dir("curve.svg");
    cr_assert_eq(jg_plot_svg(path, "Loss curve", "epoch", "loss", s, 2, false, err, sizeof err),
                 JG_OK, "%s", err);
    const char *svg = slurp(path);
    cr_assert(strncmp(svg, "<svg", 4) == 0);
    cr_assert(strstr(svg, "</svg>"));
    cr_assert(strstr(svg, ">Loss curve<"));
    cr_assert(strstr(svg, ">epoch<"));
    cr_assert(strstr(svg, ">loss<"));
    cr_assert(strstr(svg, ">train<"));
    cr_assert(strstr(svg, ">valid<"));
    cr_assert_eq(count(svg, "<polyline"), 2);
    cr_assert_eq(polyline_points(svg, 0), 5);
    cr_assert_eq(polyline_points(svg, 1), 3);
    cr_assert(strstr(svg, "#1f77b4") && strstr(svg, "#ff7f0e"), "one colour per series");
    /* no temporary ("curve.svg.jgtmp.<pid>.XXXXXX") left behind */
    DIR *d = opendir(dir);
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d));)
        cr_assert_null(strstr(e->d_name, ".jgtmp"), "left over: %s", e->d_name);
    closedir(d);
}

Test(plot, nan_points_are_skipped)
{
    double x[5] = { 0, 1, 2, 3, 4 };
    double y[5] = { 1, NAN, 3, INFINITY, 5 };
    double x2[3] = { 0, NAN, 2 };
    double y2[3] = { 1, 2, 3 };
    jg_series s[2] = { { "a", x, y, 5 }, { "b", x2, y2, 3 } };
    char err[256] = "";
    const char *path = in_dir("nan.svg");
    cr_assert_eq(jg_plot_svg(path, "t", "x", "y", s, 2, false, err, sizeof err), JG_OK, "%s",
                 err);
    const char *svg = slurp(path);
    cr_assert_eq(polyline_points(svg, 0), 3);
    cr_assert_eq(polyline_points(svg, 1), 2);
    cr_assert_null(strstr(svg, "nan"));
    cr_assert_null(strstr(svg, "inf"));
}

Test(plot, escapes_xml)
{
    double x[2] = { 0, 1 }, y[2] = { 1, 2 };
    jg_series s = { "a<b & \"c\"", x, y, 2 };
    char err[256] = "";
    const char *path = in_dir("esc.svg");
    cr_assert_eq(jg_plot_svg(path, "<loss> & 'acc'", "x<", NULL, &s, 1, false, err, sizeof err),
                 JG_OK, "%s", err);
    const char *svg = slurp(path);
    cr_assert(strstr(svg, "&lt;loss&gt; &amp; &apos;acc&apos;"));
    cr_assert(strstr(svg, "a&lt;b &amp; &quot;c&quot;"));
    cr_assert(strstr(svg, ">x&lt;<"));
    cr_assert_null(strstr(svg, "<loss>"));
}

Test(plot, log_y)
{
    double x[3] = { 1, 2, 3 }, y[3] = { 1, 0.1, 0.001 };
    jg_series s = { "loss", x, y, 3 };
    char err[256] = "";
    const char *path = in_dir("log.svg");
    cr_assert_eq(jg_plot_svg(path, "t", "step", "loss", &s, 1, true, err, sizeof err), JG_OK,
                 "%s", err);
    const char *svg = slurp(path);
    cr_assert_eq(polyline_points(svg, 0), 3);
    cr_assert(strstr(svg, ">0.001<") && strstr(svg, ">1<"), "decade tick labels");

    y[1] = 0;
    err[0] = '\0';
    cr_assert_eq(jg_plot_svg(in_dir("log2.svg"), "t", "step", "loss", &s, 1, true, err,
                             sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "log2.svg") && strstr(err, "<= 0"), "%s", err);
    cr_assert_eq(access(in_dir("log2.svg"), F_OK), -1);
    y[1] = -1;
    cr_assert_eq(jg_plot_svg(in_dir("log2.svg"), "t", NULL, NULL, &s, 1, true, err,
                             sizeof err), JG_ERR_ARG);
    /* a NaN is skipped, not an error, even with log_y */
    y[1] = NAN;
    cr_assert_eq(jg_plot_svg(in_dir("log3.svg"), "t", NULL, NULL, &s, 1, true, err,
                             sizeof err), JG_OK, "%s", err);
}

Test(plot, bad_arguments)
{
    double x[2] = { 0, 1 }, y[2] = { 1, 2 };
    jg_series s = { "a", x, y, 2 };
    char err[256];
    cr_assert_eq(jg_plot_svg(NULL, "t", "x", "y", &s, 1, false, err, sizeof err), JG_ERR_ARG);
    cr_assert_eq(jg_plot_svg(in_dir("a.svg"), "t", "x", "y", NULL, 1, false, err, sizeof err),
                 JG_ERR_ARG);
    cr_assert_eq(jg_plot_svg(in_dir("a.svg"), "t", "x", "y", &s, 0, false, err, sizeof err),
                 JG_ERR_ARG);
    jg_series bad = { "a", NULL, y, 2 };
    cr_assert_eq(jg_plot_svg(in_dir("a.svg"), "t", "x", "y", &bad, 1, false, err, sizeof err),
                 JG_ERR_ARG);
    cr_assert(strstr(err, "series 0"), "%s", err);
    bad = (jg_series){ "a", x, y, -1 };
    cr_assert_eq(jg_plot_svg(in_dir("a.svg"), "t", "x", "y", &bad, 1, false, NULL, 0),
                 JG_ERR_ARG);
    /* an empty series and a NULL label still give a valid chart */
    jg_series ok[2] = { { NULL, x, y, 2 }, { "empty", NULL, NULL, 0 } };
    cr_assert_eq(jg_plot_svg(in_dir("a.svg"), NULL, NULL, NULL, ok, 2, false, err, sizeof err),
                 JG_OK, "%s", err);
    const char *svg = slurp(in_dir("a.svg"));
    cr_assert(strstr(svg, ">series 0<"));
    cr_assert_eq(polyline_points(svg, 1), 0);
}

Test(plot, bad_path_is_io_error)
{
    double x[2] = { 0, 1 }, y[2] = { 1, 2 };
    jg_series s = { "a", x, y, 2 };
    char err[256] = "";
    const char *path = in_dir("no/such/dir/c.svg");
    cr_assert_eq(jg_plot_svg(path, "t", "x", "y", &s, 1, false, err, sizeof err), JG_ERR_IO);
    cr_assert(strstr(err, path), "%s", err);
}

static void write_log(const char *path)
{
    const char *cols[3] = { "step", "loss", "acc,%" };   /* a name CSV must quote */
    jg_csv *c = jg_csv_open(path, cols, 3);
    cr_assert(c);
    double rows[3][3] = { { 1, 2.5, 0.1 }, { 2, 1.25, NAN }, { 3, 0.5, 0.9 } };
    for (int i = 0; i < 3; i++)
        cr_assert_eq(jg_csv_row(c, rows[i]), JG_OK);
    cr_assert_eq(jg_csv_close(c), JG_OK);
}

Test(plot, csv_log)
{
    const char *csv = in_dir("log.csv"), *svg_path = in_dir("log.svg");
    write_log(csv);
    const char *ys[2] = { "loss", "acc,%" };
    char err[256] = "";
    cr_assert_eq(jg_plot_csv(csv, svg_path, "step", ys, 2, false, err, sizeof err), JG_OK,
                 "%s", err);
    const char *svg = slurp(svg_path);
    cr_assert(strncmp(svg, "<svg", 4) == 0);
    cr_assert(strstr(svg, ">log.csv<"), "titled with the file name");
    cr_assert(strstr(svg, ">step<"));
    cr_assert(strstr(svg, ">loss<"));
    cr_assert(strstr(svg, ">acc,%<"));
    cr_assert_eq(count(svg, "<polyline"), 2);
    cr_assert_eq(polyline_points(svg, 0), 3);
    cr_assert_eq(polyline_points(svg, 1), 2, "the nan row is skipped");

    const char *one[1] = { "loss" };
    cr_assert_eq(jg_plot_csv(csv, svg_path, "step", one, 1, true, err, sizeof err), JG_OK,
                 "%s", err);
    cr_assert_eq(polyline_points(slurp(svg_path), 0), 3);
}

Test(plot, csv_errors)
{
    const char *csv = in_dir("log.csv"), *svg_path = in_dir("e.svg");
    write_log(csv);
    char err[256] = "";
    const char *bad[1] = { "lr" };
    cr_assert_eq(jg_plot_csv(csv, svg_path, "step", bad, 1, false, err, sizeof err),
                 JG_ERR_ARG);
    cr_assert(strstr(err, "'lr'") && strstr(err, "log.csv"), "%s", err);
    const char *ys[1] = { "loss" };
    cr_assert_eq(jg_plot_csv(csv, svg_path, "epoch", ys, 1, false, err, sizeof err),
                 JG_ERR_ARG);
    cr_assert(strstr(err, "'epoch'"), "%s", err);
    cr_assert_eq(access(svg_path, F_OK), -1);

    cr_assert_eq(jg_plot_csv(in_dir("missing.csv"), svg_path, "step", ys, 1, false, err,
                             sizeof err), JG_ERR_IO);
    cr_assert(strstr(err, "missing.csv"), "%s", err);

    FILE *f = fopen(in_dir("bad.csv"), "w");
    fputs("step,loss\n1,2\n2,abc\n", f);
    fclose(f);
    cr_assert_eq(jg_plot_csv(in_dir("bad.csv"), svg_path, "step", ys, 1, false, err,
                             sizeof err), JG_ERR_IO);
    cr_assert(strstr(err, "line 3") && strstr(err, "abc"), "%s", err);

    f = fopen(in_dir("ragged.csv"), "w");
    fputs("step,loss\n1,2,3\n", f);
    fclose(f);
    cr_assert_eq(jg_plot_csv(in_dir("ragged.csv"), svg_path, "step", ys, 1, false, err,
                             sizeof err), JG_ERR_IO);
    cr_assert(strstr(err, "line 2"), "%s", err);

    f = fopen(in_dir("empty.csv"), "w");
    fclose(f);
    cr_assert_eq(jg_plot_csv(in_dir("empty.csv"), svg_path, "step", ys, 1, false, err,
                             sizeof err), JG_ERR_IO);
    cr_assert_eq(jg_plot_csv(csv, svg_path, "step", NULL, 1, false, err, sizeof err),
                 JG_ERR_ARG);
}
