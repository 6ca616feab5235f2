/* Datasets and batch loaders: rows of borrowed sample/label arrays, selected by an owned row
 * list, so subsets, splits and class filters cost no copies of the samples. Shuffles use the
 * counter-based generator keyed by (seed, epoch): a run is reproducible from its seed and
 * any epoch's order can be recomputed without replaying the earlier ones. */
#include "graph/graph.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jg_dataset {
    jg_array x;           /* borrowed data; the struct is a copy */
    int64_t sample_numel; /* elements per row of x */
    int64_t n;
    int64_t *rows;        /* n rows of x, owned */
    int32_t *labels;      /* n labels, owned (relabelling changes them, not y) */
    char errmsg[256];
};

struct jg_loader {
    jg_dataset *ds;       /* borrowed */
    int batch;
    jg_loader_opts opts;
    int64_t epoch;
    int64_t pos;          /* next position in order[] */
    int64_t *order;       /* this epoch's visiting order of ds's samples */
};

static void ds_error(jg_dataset *ds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ds_error(jg_dataset *ds, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ds->errmsg, sizeof ds->errmsg, fmt, ap);
    va_end(ap);
}

static void errbuf_put(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void errbuf_put(char *buf, size_t size, const char *fmt, ...)
{
    if (!buf || size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

/* A dataset of n rows sharing parent's array; rows and labels allocated, not filled. */
static jg_dataset *ds_alloc(const jg_dataset *like, int64_t n)
{
    jg_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->x = like->x;
    d->sample_numel = like->sample_numel;
    d->n = n;
    d->rows = malloc(((size_t)n + 1) * sizeof *d->rows);
    d->labels = malloc(((size_t)n + 1) * sizeof *d->labels);
    if (!d->rows || !d->labels) {
        jg_dataset_free(d);
        return NULL;
    }
    return d;
}

jg_status jg_dataset_new(const jg_array *x, const jg_array *y, jg_dataset **out, char *errbuf,
                         size_t errbuf_size)
{
    errbuf_put(errbuf, errbuf_size, "%s", "");
    if (!out) {
        errbuf_put(errbuf, errbuf_size, "jg_dataset_new: out is NULL");
        return JG_ERR_ARG;
    }
    *out = NULL;
    if (!x || !x->data) {
        errbuf_put(errbuf, errbuf_size, "jg_dataset_new: x is %s", x ? "empty (no data)" : "NULL");
        return JG_ERR_ARG;
    }
    if (x->dtype != JG_F32 && x->dtype != JG_F64) {
        errbuf_put(errbuf, errbuf_size, "jg_dataset_new: x is %s (must be f32 or f64)",
                   jg_dtype_str(x->dtype));
        return JG_ERR_DTYPE;
    }
    char xs[96], ys[96];
    if (x->shape.ndim < 1 || !shape_valid(x->shape)) {
        errbuf_put(errbuf, errbuf_size, "jg_dataset_new: x has shape %s (must be [n, ...])",
                   shape_str(x->shape, xs, sizeof xs));
        return JG_ERR_SHAPE;
    }
    int64_t n = x->shape.dim[0];
    if (y) {
        if (!y->data) {
            errbuf_put(errbuf, errbuf_size, "jg_dataset_new: y is empty (no data)");
            return JG_ERR_ARG;
        }
        if (y->dtype != JG_I32) {
            errbuf_put(errbuf, errbuf_size, "jg_dataset_new: y is %s (labels must be i32)",
                       jg_dtype_str(y->dtype));
            return JG_ERR_DTYPE;
        }
        bool col = y->shape.ndim == 1 || (y->shape.ndim == 2 && y->shape.dim[1] == 1);
        if (!col || !shape_valid(y->shape) || y->shape.dim[0] != n) {
            errbuf_put(errbuf, errbuf_size, "jg_dataset_new: x %s and y %s: y must be [n] or "
                       "[n, 1] with the same n as x's first dimension",
                       shape_str(x->shape, xs, sizeof xs), shape_str(y->shape, ys, sizeof ys));
            return JG_ERR_SHAPE;
        }
    }
    jg_dataset like = { .x = *x, .sample_numel = jg_shape_numel(x->shape) / n };
    jg_dataset *d = ds_alloc(&like, n);
    if (!d) {
        errbuf_put(errbuf, errbuf_size, "jg_dataset_new: out of memory");
        return JG_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        d->rows[i] = i;
        d->labels[i] = y ? ((const int32_t *)y->data)[i] : 0;
    }
    *out = d;
    return JG_OK;
}

void jg_dataset_free(jg_dataset *ds)
{
    if (!ds)
        return;
    free(ds->rows);
    free(ds->labels);
    free(ds);
}

const char *jg_dataset_errmsg(const jg_dataset *ds) { return ds ? ds->errmsg : "NULL dataset"; }

int64_t jg_dataset_size(const jg_dataset *ds) { return ds ? ds->n : 0; }

jg_shape jg_dataset_sample_shape(const jg_dataset *ds)
{
    jg_shape s = { 0 };
    if (!ds)
        return s;
    s.ndim = ds->x.shape.ndim - 1;
    for (int i = 0; i < s.ndim; i++)
        s.dim[i] = ds->x.shape.dim[i + 1];
    return s;
}

int64_t jg_dataset_sample_numel(const jg_dataset *ds) { return ds ? ds->sample_numel : 0; }

/* Copies row r of x as floats. */
static void copy_row(const jg_dataset *ds, int64_t r, float *out)
{
    int64_t k = ds->sample_numel;
    if (ds->x.dtype == JG_F32) {
        memcpy(out, (const float *)ds->x.data + r * k, (size_t)k * sizeof(float));
    } else {
        const double *src = (const double *)ds->x.data + r * k;
        for (int64_t j = 0; j < k; j++)
            out[j] = (float)src[j];
    }
}

jg_status jg_dataset_get(jg_dataset *ds, int64_t i, float *x_out, int32_t *y_out)
{
    if (!ds)
        return JG_ERR_ARG;
    if (i < 0 || i >= ds->n) {
        ds_error(ds, "jg_dataset_get: index %lld out of range [0, %lld)", (long long)i,
                 (long long)ds->n);
        return JG_ERR_RANGE;
    }
    if (x_out)
        copy_row(ds, ds->rows[i], x_out);
    if (y_out)
        *y_out = ds->labels[i];
    return JG_OK;
}

jg_dataset *jg_dataset_subset(jg_dataset *ds, const int64_t *indices, int64_t n)
{
    if (!ds)
        return NULL;
    if (n < 0 || (n > 0 && !indices)) {
        ds_error(ds, "jg_dataset_subset: bad index list (n %lld, indices %s)", (long long)n,
                 indices ? "set" : "NULL");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= ds->n) {
            ds_error(ds, "jg_dataset_subset: indices[%lld] = %lld out of range [0, %lld)",
                     (long long)i, (long long)indices[i], (long long)ds->n);
            return NULL;
        }
    jg_dataset *d = ds_alloc(ds, n);
    if (!d) {
        ds_error(ds, "jg_dataset_subset: out of memory");
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        d->rows[i] = ds->rows[indices[i]];
        d->labels[i] = ds->labels[indices[i]];
    }
    return d;
}

jg_dataset *jg_dataset_range(jg_dataset *ds, int64_t begin, int64_t end)
{
    if (!ds)
        return NULL;
    if (begin < 0 || begin > end || end > ds->n) {
        ds_error(ds, "jg_dataset_range: [%lld, %lld) is not within [0, %lld]",
                 (long long)begin, (long long)end, (long long)ds->n);
        return NULL;
    }
    jg_dataset *d = ds_alloc(ds, end - begin);
    if (!d) {
        ds_error(ds, "jg_dataset_range: out of memory");
        return NULL;
    }
    memcpy(d->rows, ds->rows + begin, (size_t)(end - begin) * sizeof *d->rows);
    memcpy(d->labels, ds->labels + begin, (size_t)(end - begin) * sizeof *d->labels);
    return d;
}

/* A Fisher-Yates permutation of 0..n-1 keyed by key: the same key, the same order. The
 * modulo's bias is below n / 2^64, far under anything a training run could notice. */
static void permutation(int64_t *order, int64_t n, uint64_t key)
{
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(rng_u64(key, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Keys of the two uses of a seed, so a split and a loader with one seed do not shuffle alike. */
static uint64_t split_key(uint64_t seed) { return rng_u64(seed, 0x5711757117ULL); }
static uint64_t epoch_key(uint64_t seed, int64_t epoch) { return rng_u64(seed, (uint64_t)epoch); }

jg_status jg_dataset_split(jg_dataset *ds, double fraction, uint64_t seed, jg_dataset **a,
                           jg_dataset **b)
{
    if (a)
        *a = NULL;
    if (b)
        *b = NULL;
    if (!ds)
        return JG_ERR_ARG;
    if (!a || !b) {
        ds_error(ds, "jg_dataset_split: output %s is NULL", !a ? "a" : "b");
        return JG_ERR_ARG;
    }
    if (!(fraction >= 0 && fraction <= 1)) {
        ds_error(ds, "jg_dataset_split: fraction %g (must be in [0, 1])", fraction);
        return JG_ERR_ARG;
    }
    int64_t na = (int64_t)llround(fraction * (double)ds->n);
    int64_t *order = malloc(((size_t)ds->n + 1) * sizeof *order);
    if (order) {
        permutation(order, ds->n, split_key(seed));
        *a = jg_dataset_subset(ds, order, na);
        *b = *a ? jg_dataset_subset(ds, order + na, ds->n - na) : NULL;
    }
    free(order);
    if (!*a || !*b) {
        jg_dataset_free(*a);
        *a = NULL;
        ds_error(ds, "jg_dataset_split: out of memory");
        return JG_ERR_NOMEM;
    }
    return JG_OK;
}

jg_dataset *jg_dataset_filter_classes(jg_dataset *ds, const int32_t *classes, int n,
                                      bool relabel)
{
    if (!ds)
        return NULL;
    if (n < 1 || !classes) {
        ds_error(ds, "jg_dataset_filter_classes: bad class list (n %d, classes %s)", n,
                 classes ? "set" : "NULL");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (classes[i] == classes[j]) {
                ds_error(ds, "jg_dataset_filter_classes: class %d is listed twice (at %d and "
                         "%d)", (int)classes[i], j, i);
                return NULL;
            }
    int64_t *keep = malloc(((size_t)ds->n + 1) * sizeof *keep);
    int32_t *label = malloc(((size_t)ds->n + 1) * sizeof *label);
    jg_dataset *d = NULL;
    if (keep && label) {
        int64_t m = 0;
        for (int64_t i = 0; i < ds->n; i++)
            for (int k = 0; k < n; k++)
                if (ds->labels[i] == classes[k]) {
                    keep[m] = i;
                    label[m++] = relabel ? k : classes[k];
                    break;
                }
        d = jg_dataset_subset(ds, keep, m);
        if (d)
            memcpy(d->labels, label, (size_t)m * sizeof *label);
    }
    free(keep);
    free(label);
    if (!d)
        ds_error(ds, "jg_dataset_filter_classes: out of memory");
    return d;
}

/* ---- loader */

/* Sets up epoch ld->epoch: its order and position. */
static void loader_start_epoch(jg_loader *ld)
{
    ld->pos = 0;
    if (ld->opts.shuffle)
        permutation(ld->order, ld->ds->n, epoch_key(ld->opts.seed, ld->epoch));
    else
        for (int64_t i = 0; i < ld->ds->n; i++)
            ld->order[i] = i;
}

jg_loader *jg_loader_new(jg_dataset *ds, int batch, const jg_loader_opts *opts)
{
    if (!ds)
        return NULL;
    jg_loader_opts o = opts ? *opts : (jg_loader_opts){ 0 };
    if (batch < 1) {
        ds_error(ds, "jg_loader_new: batch %d (must be >= 1)", batch);
        return NULL;
    }
    if (ds->n == 0) {
        ds_error(ds, "jg_loader_new: the dataset is empty");
        return NULL;
    }
    if (o.drop_last && batch > ds->n) {
        ds_error(ds, "jg_loader_new: batch %d > %lld samples with drop_last: an epoch would "
                 "have no batch", batch, (long long)ds->n);
        return NULL;
    }
    jg_loader *ld = calloc(1, sizeof *ld);
    if (ld)
        ld->order = malloc((size_t)ds->n * sizeof *ld->order);
    if (!ld || !ld->order) {
        jg_loader_free(ld);
        ds_error(ds, "jg_loader_new: out of memory");
        return NULL;
    }
    ld->ds = ds;
    ld->batch = batch;
    ld->opts = o;
    loader_start_epoch(ld);
    return ld;
}

void jg_loader_free(jg_loader *ld)
{
    if (!ld)
        return;
    free(ld->order);
    free(ld);
}

bool jg_loader_next(jg_loader *ld, float *x_out, int32_t *y_out, int *n_out)
{
    if (n_out)
        *n_out = 0;
    if (!ld)
        return false;
    const jg_dataset *ds = ld->ds;
    int64_t left = ds->n - ld->pos;
    if (left == 0 || (ld->opts.drop_last && left < ld->batch)) {
        ld->epoch++;
        loader_start_epoch(ld);
        return false;
    }
    int n = left < ld->batch ? (int)left : ld->batch;
    for (int i = 0; i < n; i++) {
        int64_t s = ld->order[ld->pos + i];
        if (x_out)
            copy_row(ds, ds->rows[s], x_out + (int64_t)i * ds->sample_numel);
        if (y_out)
            y_out[i] = ds->labels[s];
    }
    ld->pos += n;
    if (n_out)
        *n_out = n;
    return true;
}

int64_t jg_loader_epoch(const jg_loader *ld) { return ld ? ld->epoch : 0; }

int64_t jg_loader_batches(const jg_loader *ld)
{
    if (!ld)
        return 0;
    int64_t n = ld->ds->n, b = ld->batch;
    return ld->opts.drop_last ? n / b : (n + b - 1) / b;
}
