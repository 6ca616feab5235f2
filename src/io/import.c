/* Weights made elsewhere, e.g. a PyTorch state_dict saved as safetensors: tensors copied into
 * parameters through a name map, transposed where the layouts differ ([out, in] against
 * [in, out]), summed where one parameter holds several tensors (an RNN's bias_ih + bias_hh),
 * converted from F16, BF16, F32 or F64 to the parameter's dtype. Everything is checked and
 * staged first, so a failed import changes no parameter. */
#include "io/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* IEEE binary16 to double: exact. */
static double from_f16(uint16_t h)
{
    int exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    double v = exp == 0    ? ldexp(frac, -24)
               : exp == 31 ? (frac ? NAN : INFINITY)
                           : ldexp(frac + 1024, exp - 25);
    return h & 0x8000 ? -v : v;
}

/* bfloat16 is the top half of a binary32. */
static double from_bf16(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Bytes per element of a float dtype string of the format, or 0 for any other. */
static size_t float_size(const char *dtype)
{
    return !strcmp(dtype, "F64") ? 8 : !strcmp(dtype, "F32") ? 4
           : !strcmp(dtype, "F16") || !strcmp(dtype, "BF16") ? 2 : 0;
}

/* Reads the elements of one float tensor (its dtype resolved once). */
typedef struct reader {
    const unsigned char *data;
    size_t es;
    bool bf16;
} reader;

static reader reader_of(const st_entry *e, const unsigned char *data)
{
    return (reader){ .data = data + e->begin, .es = float_size(e->dtype),
                     .bf16 = e->dtype[0] == 'B' };
}

/* Element i as a double. */
static double element(const reader *r, int64_t i)
{
    unsigned char b[8];
    st_copy_le(b, r->data + (size_t)i * r->es, 1, r->es);
    if (r->es == 8) {
        double d;
        memcpy(&d, b, 8);
        return d;
    }
    if (r->es == 4) {
        float f;
        memcpy(&f, b, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, b, 2);
    return r->bf16 ? from_bf16(h) : from_f16(h);
}

static const st_entry *entry_named(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->e[i].name, name))
            return &f->e[i];
    return NULL;
}

/* The file's shape as text (its dimensions are not checked as a jg_shape's are). */
static void file_shape(const st_entry *e, char *buf, size_t size)
{
    if (e->shape.ndim > JG_MAX_DIMS) {
        snprintf(buf, size, "(more than %d dimensions)", JG_MAX_DIMS);
        return;
    }
    int k = snprintf(buf, size, "[");
    for (int d = 0; d < e->shape.ndim && k < (int)size - 24; d++)
        k += snprintf(buf + k, size - (size_t)k, "%s%lld", d ? "," : "",
                      (long long)e->shape.dim[d]);
    snprintf(buf + k, size - (size_t)k, "]");
}

/* Entry e of the file against parameter p (transposed: e is p's shape reversed, 2-D). */
static jg_status fits(const st_entry *e, const jg_node *p, bool transpose, char *why,
                      size_t size)
{
    char fs[160], ps[160];
    if (!float_size(e->dtype)) {
        snprintf(why, size, "tensor '%s' is %s; floats (F16, BF16, F32, F64) are imported",
                 e->name, e->dtype);
        return JG_ERR_DTYPE;
    }
    jg_shape want = p->shape;
    if (transpose && p->shape.ndim != 2) {
        snprintf(why, size, "tensor '%s': transpose asked, but parameter '%s' is %s, not 2-D",
                 e->name, p->name, shape_str(p->shape, ps, sizeof ps));
        return JG_ERR_SHAPE;
    }
    if (transpose)
        want = jg_shape(p->shape.dim[1], p->shape.dim[0]);
    bool same = e->shape.ndim == want.ndim;
    for (int d = 0; same && d < want.ndim; d++)
        same = e->shape.dim[d] == want.dim[d];
    if (!same) {
        file_shape(e, fs, sizeof fs);
        snprintf(why, size, "tensor '%s' is %s, parameter '%s' %s%s", e->name, fs, p->name,
                 shape_str(p->shape, ps, sizeof ps),
                 transpose ? " (transposed: its reverse)"
                 : p->shape.ndim == 2 && e->shape.ndim == 2 &&
                         e->shape.dim[0] == p->shape.dim[1] && e->shape.dim[1] == p->shape.dim[0]
                     ? " (a PyTorch [out, in] weight? map it with transpose)"
                     : "");
        return JG_ERR_SHAPE;
    }
    if (e->end - e->begin != (uint64_t)jg_shape_numel(want) * float_size(e->dtype)) {
        snprintf(why, size, "tensor '%s': data_offsets span %llu bytes, its shape and dtype "
                 "need %llu", e->name, (unsigned long long)(e->end - e->begin),
                 (unsigned long long)jg_shape_numel(want) * float_size(e->dtype));
        return JG_ERR_IO;
    }
    return JG_OK;
}

/* One parameter's staged values (summed over the entries that name it). */
typedef struct staged {
    graph_param *p;
    double *v;
} staged;

static jg_status stage(jg_graph *g, const st_file *f, const unsigned char *data,
                       const jg_tensor_map *map, int n, staged *out, int *n_out, char *why,
                       size_t size)
{
    for (int i = 0; i < n; i++) {
        const char *tname = map ? map[i].tensor : f->e[i].name;
        const char *pname = map ? map[i].param : f->e[i].name;
        bool transpose = map && map[i].transpose;
        if (!tname || !pname) {
            snprintf(why, size, "map entry %d: a name is NULL", i);
            return JG_ERR_ARG;
        }
        const st_entry *e = entry_named(f, tname);
        if (!e) {
            snprintf(why, size, "no tensor '%s' in the file", tname);
            return JG_ERR_ARG;
        }
        graph_param *p = store_find(g, pname);
        if (!p) {
            snprintf(why, size, "tensor '%s': no parameter '%s' in the graph%s", tname, pname,
                     map ? "" : " (pass a name map)");
            return JG_ERR_ARG;
        }
        jg_status st = fits(e, p->node, transpose, why, size);
        if (st != JG_OK)
            return st;
        int k = 0;
        while (k < *n_out && out[k].p != p)
            k++;
        int64_t numel = jg_shape_numel(p->node->shape);
        if (k == *n_out) {
            out[k] = (staged){ .p = p, .v = calloc((size_t)numel, sizeof(double)) };
            if (!out[k].v) {
                snprintf(why, size, "out of memory");
                return JG_ERR_NOMEM;
            }
            (*n_out)++;
        }
        reader rd = reader_of(e, data);
        int64_t rows = e->shape.ndim == 2 ? e->shape.dim[0] : 1;
        int64_t cols = numel / rows;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++)
                out[k].v[transpose ? c * rows + r : r * cols + c] += element(&rd, r * cols + c);
    }
    return JG_OK;
}

jg_status jg_safetensors_import(jg_graph *g, const char *path, const jg_tensor_map *map, int n)
{
    if (!g)
        return JG_ERR_ARG;
    if (!path || (map && n < 0) || (!map && n != 0)) {
        graph_note(g, "jg_safetensors_import: %s", !path ? "path is NULL"
                                                        : "n must be >= 0 (0 with no map)");
        return JG_ERR_ARG;
    }
    char why[400] = "";
    unsigned char *buf;
    size_t size;
    st_file f;
    uint64_t data_start;
    jg_status st = st_read(path, &buf, &size, &f, &data_start, why, sizeof why);
    int entries = map ? n : f.n, n_staged = 0;
    staged *sv = st == JG_OK ? calloc((size_t)entries + 1, sizeof *sv) : NULL;
    if (st == JG_OK && !sv) {
        snprintf(why, sizeof why, "out of memory");
        st = JG_ERR_NOMEM;
    }
    if (st == JG_OK)
        st = stage(g, &f, buf + data_start, map, entries, sv, &n_staged, why, sizeof why);
    for (int k = 0; k < n_staged; k++) {
        int64_t numel = jg_shape_numel(sv[k].p->node->shape);
        for (int64_t i = 0; st == JG_OK && i < numel; i++) {
            if (sv[k].p->node->dtype == JG_F64)
                ((double *)sv[k].p->data)[i] = sv[k].v[i];
            else
                ((float *)sv[k].p->data)[i] = (float)sv[k].v[i];
        }
        if (st == JG_OK)
            sv[k].p->init = JG_INIT_DATA; /* the lint asks how a weight got its values */
        free(sv[k].v);
    }
    if (st != JG_OK)
        graph_note(g, "jg_safetensors_import: %s: %s", path, why);
    free(sv);
    st_free(&f);
    free(buf);
    return st;
}

jg_status jg_safetensors_read(const char *path, const char *tensor, jg_dtype as,
                              jg_array *out, char *errbuf, size_t errbuf_size)
{
    char why[400] = "";
    unsigned char *buf = NULL;
    size_t size;
    st_file f = { 0 };
    uint64_t data_start;
    jg_status st = JG_OK;
    if (out)
        *out = (jg_array){ 0 };
    if (!path || !tensor || !out || (as != JG_F32 && as != JG_F64)) {
        snprintf(why, sizeof why, "%s", !path || !tensor || !out ? "an argument is NULL"
                                                                 : "as must be JG_F32 or JG_F64");
        st = JG_ERR_ARG;
    }
    if (st == JG_OK)
        st = st_read(path, &buf, &size, &f, &data_start, why, sizeof why);
    const st_entry *e = st == JG_OK ? entry_named(&f, tensor) : NULL;
    if (st == JG_OK && !e) {
        snprintf(why, sizeof why, "no tensor '%s' in the file", tensor);
        st = JG_ERR_ARG;
    }
    jg_shape s = { 0 };
    if (st == JG_OK) {
        s = e->shape;
        bool valid = s.ndim <= JG_MAX_DIMS;
        for (int d = 0; valid && d < s.ndim; d++)
            valid = s.dim[d] >= 1;
        if (!valid || !float_size(e->dtype)) {
            snprintf(why, sizeof why, "tensor '%s': %s", tensor,
                     valid ? "not a float tensor (F16, BF16, F32, F64)"
                           : "an empty tensor or more than 8 dimensions");
            st = valid ? JG_ERR_DTYPE : JG_ERR_SHAPE;
        } else if (e->end - e->begin != (uint64_t)jg_shape_numel(s) * float_size(e->dtype)) {
            snprintf(why, sizeof why, "tensor '%s': data_offsets disagree with its shape",
                     tensor);
            st = JG_ERR_IO;
        }
    }
    void *data = NULL;
    if (st == JG_OK) {
        int64_t numel = jg_shape_numel(s);
        data = malloc((size_t)numel * jg_dtype_size(as));
        if (!data) {
            snprintf(why, sizeof why, "out of memory");
            st = JG_ERR_NOMEM;
        }
        reader rd = reader_of(e, buf + data_start);
        for (int64_t i = 0; data && i < numel; i++) {
            double v = element(&rd, i);
            if (as == JG_F64)
                ((double *)data)[i] = v;
            else
                ((float *)data)[i] = (float)v;
        }
    }
    if (st == JG_OK)
        *out = (jg_array){ .dtype = as, .shape = s, .data = data };
    else if (errbuf && errbuf_size)
        snprintf(errbuf, errbuf_size, "jg_safetensors_read: %s: %s", path ? path : "(null)",
                 why);
    st_free(&f);
    free(buf);
    return st;
}
