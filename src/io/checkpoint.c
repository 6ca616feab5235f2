/* Checkpoints as safetensors files: the whole parameter store (weights and optimiser state)
 * saved through a temporary file + fsync + rename, and loaded only after the entire file has
 * been validated against the store, so a bad file leaves every parameter as it was. Layout:
 * u64 little-endian header length N, N bytes of JSON (padded with spaces to a multiple of 8),
 * then the raw little-endian tensor data; offsets in the JSON are relative to the data.
 */
#include "graph/graph.h"
#include "util/atomic.h"
#include "util/file.h"

#include <jansson.h>

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* The reference implementation refuses headers over 100 MB; so do we. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
#define ST_MAX_NAME 1024

typedef struct st_entry {
    char *name;
    char dtype[16];
    jg_shape shape;     /* ndim may be JG_MAX_DIMS + 1: "too many dimensions" */
    uint64_t begin, end;
} st_entry;

typedef struct st_file {
    st_entry *e;
    int n, cap;
} st_file;

static void st_free(st_file *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->e[i].name);
    free(f->e);
}

static bool host_big_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

/* Copies n elements of es bytes, reversing each element's bytes on big-endian hosts. */
static void copy_le(void *dst, const void *src, size_t n, size_t es)
{
    if (!host_big_endian()) {
        memcpy(dst, src, n * es);
        return;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t b = 0; b < es; b++)
            ((unsigned char *)dst)[i * es + b] = ((const unsigned char *)src)[i * es + es - 1 - b];
}

/* ---- the header */

/* The header is JSON, parsed by jansson (duplicate keys and invalid UTF-8 refused), then held
 * to exactly what a safetensors header may say: one object whose values are tensor objects
 * {"dtype": string, "shape": [uint...], "data_offsets": [uint, uint]} and nothing else, or,
 * for the key "__metadata__", an object of strings. */

static bool header_fail(char *why, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool header_fail(char *why, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, size, fmt, ap);
    va_end(ap);
    return false;
}

/* A non-negative integer below 2^53 (what every JSON reader represents exactly). */
static bool header_uint(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) >= ((json_int_t)1 << 53))
        return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool header_tensor(const char *name, const json_t *t, st_entry *e, char *why,
                          size_t size)
{
    if (!json_is_object(t))
        return header_fail(why, size, "bad JSON header: tensor '%.100s' is not an object",
                           name);
    const json_t *dtype = json_object_get(t, "dtype"), *shape = json_object_get(t, "shape");
    const json_t *off = json_object_get(t, "data_offsets");
    if (!dtype || !shape || !off)
        return header_fail(why, size, "bad JSON header: tensor entry '%.100s' lacks dtype, "
                           "shape or data_offsets", name);
    if (json_object_size(t) != 3)
        return header_fail(why, size, "bad JSON header: unknown key in tensor entry '%.100s'",
                           name);
    if (!json_is_string(dtype) || json_string_length(dtype) >= sizeof e->dtype)
        return header_fail(why, size, "bad JSON header: tensor '%.100s': dtype is not a short "
                           "string", name);
    memcpy(e->dtype, json_string_value(dtype), json_string_length(dtype) + 1);
    if (!json_is_array(shape))
        return header_fail(why, size, "bad JSON header: tensor '%.100s': shape is not a list",
                           name);
    size_t n = json_array_size(shape);
    e->shape.ndim = n > JG_MAX_DIMS ? JG_MAX_DIMS + 1 : (int)n; /* + 1: "too many" */
    for (size_t i = 0; i < n; i++) {
        uint64_t d;
        if (!header_uint(json_array_get(shape, i), &d))
            return header_fail(why, size, "bad JSON header: tensor '%.100s': shape: expected "
                               "an integer in [0, 2^53)", name);
        if (i < JG_MAX_DIMS)
            e->shape.dim[i] = (int64_t)d;
    }
    if (!json_is_array(off) || json_array_size(off) != 2 ||
        !header_uint(json_array_get(off, 0), &e->begin) ||
        !header_uint(json_array_get(off, 1), &e->end))
        return header_fail(why, size, "bad JSON header: tensor '%.100s': data_offsets must "
                           "hold two integers", name);
    return true;
}

static bool header_metadata(const json_t *m, char *why, size_t size)
{
    const char *key;
    const json_t *v;
    if (!json_is_object(m))
        return header_fail(why, size, "bad JSON header: __metadata__ is not an object");
    json_object_foreach((json_t *)m, key, v)
        if (!json_is_string(v))
            return header_fail(why, size, "bad JSON header: __metadata__ '%.100s' is not a "
                               "string", key);
    return true;
}

/* What a safetensors header can hold bounds what the parser is given: no nesting deeper than
 * the format's three levels (header, tensor, shape) and no list longer than a shape, so a
 * crafted 100 MB header cannot make the JSON tree take gigabytes. Strings are skipped whole;
 * anything else malformed is left for the parser to report. */
static bool header_shape_ok(const char *text, size_t len, char *why, size_t size)
{
    enum { MAX_DEPTH = 4, MAX_LIST = JG_MAX_DIMS + 1 };
    char open[MAX_DEPTH];
    int items[MAX_DEPTH], depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                i += text[i] == '\\';
        } else if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH)
                return header_fail(why, size, "bad JSON header at byte %zu: nested deeper "
                                   "than a safetensors header", i);
            open[depth] = c;
            items[depth++] = 1;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        } else if (c == ',' && depth > 0 && open[depth - 1] == '[' &&
                   ++items[depth - 1] > MAX_LIST) {
            return header_fail(why, size, "bad JSON header at byte %zu: a list longer than "
                               "any shape", i);
        }
    }
    return true;
}

static bool parse_header(const char *text, size_t len, st_file *f, char *why, size_t size)
{
    if (!header_shape_ok(text, len, why, size))
        return false;
    json_error_t err;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return header_fail(why, size, "bad JSON header at byte %d: %s", err.position, err.text);
    bool ok = json_is_object(root) ||
              header_fail(why, size, "bad JSON header: not an object");
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!ok)
            break;
        if (strlen(key) >= ST_MAX_NAME) {
            ok = header_fail(why, size, "bad JSON header: a name of %zu bytes (at most %d)",
                             strlen(key), ST_MAX_NAME - 1);
        } else if (!strcmp(key, "__metadata__")) {
            ok = header_metadata(v, why, size);
        } else {
            if (f->n == f->cap) {
                int cap = f->cap ? 2 * f->cap : 16;
                st_entry *grown = realloc(f->e, (size_t)cap * sizeof *grown);
                if (!grown) {
                    ok = header_fail(why, size, "out of memory");
                    continue;
                }
                f->e = grown;
                f->cap = cap;
            }
            st_entry *e = &f->e[f->n];
            *e = (st_entry){ .name = malloc(strlen(key) + 1) };
            if (!e->name)
                ok = header_fail(why, size, "out of memory");
            else {
                memcpy(e->name, key, strlen(key) + 1);
                f->n++;
                ok = header_tensor(key, v, e, why, size);
            }
        }
    }
    json_decref(root);
    return ok;
}

/* ---- saving */

static const char *st_dtype(jg_dtype t) { return t == JG_F64 ? "F64" : "F32"; }

/* Writes a JSON string literal (names are user text: escape quotes, backslashes, controls). */
static void put_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

/* The header JSON into a memory stream, so its length is known before writing it. */
static char *build_header(jg_graph *g, size_t *len)
{
    char *buf = NULL;
    FILE *m = open_memstream(&buf, len);
    if (!m)
        return NULL;
    fputs("{\"__metadata__\":{\"format\":\"pt\",\"writer\":\"jitgrad\"}", m);
    uint64_t off = 0;
    for (int i = 0; i < g->n_params; i++) {
        jg_node *n = g->params[i].node;
        uint64_t bytes = (uint64_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
        fputc(',', m);
        put_json_str(m, n->name);
        fprintf(m, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype(n->dtype));
        for (int d = 0; d < n->shape.ndim; d++)
            fprintf(m, "%s%lld", d ? "," : "", (long long)n->shape.dim[d]);
        fprintf(m, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + bytes));
        off += bytes;
    }
    fputc('}', m);
    /* Pad to a multiple of 8 so the data that follows is 8-byte aligned, as the
     * reference writer does. */
    long pos = ftell(m);
    while (pos >= 0 && (8 + pos) % 8 != 0) {
        fputc(' ', m);
        pos++;
    }
    if (fclose(m) != 0 || pos < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* Whether s is valid UTF-8 (what JSON text must be): no stray continuation bytes, overlong
 * forms, surrogates or code points past U+10FFFF. */
static bool utf8_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        unsigned c = *p, n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2
                                         : (c & 0xF8) == 0xF0 ? 3 : 4;
        if (n == 4 || (n == 1 && c < 0xC2) || (n == 3 && c > 0xF4))
            return false;
        unsigned cp = n ? c & (0x3F >> n) : c;
        for (unsigned k = 1; k <= n; k++) {
            if ((p[k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[k] & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}

JG_API jg_status jg_checkpoint_save(jg_graph *g, const char *path)
{
    if (!g)
        return JG_ERR_ARG;
    if (!path) {
        graph_note(g, "jg_checkpoint_save: path is NULL");
        return JG_ERR_ARG;
    }
    /* Nothing is written that jg_checkpoint_load would refuse */
    for (int i = 0; i < g->n_params; i++) {
        const char *name = g->params[i].node->name;
        size_t len = strlen(name);
        if (len >= ST_MAX_NAME) {
            graph_note(g, "jg_checkpoint_save: %s: parameter '%.40s...' has a name of %zu "
                       "bytes; a checkpoint holds names of at most %d", path, name, len,
                       ST_MAX_NAME - 1);
            return JG_ERR_ARG;
        }
        if (!utf8_valid(name) || !strcmp(name, "__metadata__")) {
            graph_note(g, "jg_checkpoint_save: %s: parameter name '%.40s' cannot be a "
                       "safetensors name (%s)", path, name,
                       utf8_valid(name) ? "it is reserved" : "not valid UTF-8");
            return JG_ERR_ARG;
        }
    }
    size_t hlen;
    char *header = build_header(g, &hlen);
    if (!header) {
        graph_note(g, "jg_checkpoint_save: %s: out of memory", path);
        return JG_ERR_NOMEM;
    }
    if (hlen > ST_MAX_HEADER) {
        free(header);
        graph_note(g, "jg_checkpoint_save: %s: the header would be %zu bytes, more than the "
                   "%llu a checkpoint may have", path, hlen, (unsigned long long)ST_MAX_HEADER);
        return JG_ERR_ARG;
    }
    char err[400];
    atomic_file at;
    if (!atomic_file_begin(&at, path, err, sizeof err)) {
        free(header);
        graph_note(g, "jg_checkpoint_save: %s", err);
        return JG_ERR_IO;
    }
    at.remove_stale = true; /* what killed saves left: each the checkpoint's size */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    fwrite(len8, 1, 8, at.f);
    fwrite(header, 1, hlen, at.f);
    free(header);
    for (int i = 0; i < g->n_params; i++) {
        jg_node *n = g->params[i].node;
        size_t numel = (size_t)jg_shape_numel(n->shape), es = jg_dtype_size(n->dtype);
        if (!host_big_endian()) {
            fwrite(g->params[i].data, es, numel, at.f);
        } else {
            unsigned char tmp[8];
            for (size_t k = 0; k < numel; k++) {
                copy_le(tmp, (const unsigned char *)g->params[i].data + k * es, 1, es);
                fwrite(tmp, 1, es, at.f);
            }
        }
    }
    if (!atomic_file_commit(&at, err, sizeof err)) {
        graph_note(g, "jg_checkpoint_save: %s", err);
        return JG_ERR_IO;
    }
    return JG_OK;
}

/* ---- loading */

/* Reads the whole file; the data is staged here and only copied into the store once every
 * check has passed. */
static jg_status read_file(const char *path, unsigned char **out, size_t *size, char *why,
                           size_t why_size)
{
    int64_t file_size;
    int fd = file_open_regular(path, &file_size, why, why_size);
    if (fd < 0)
        return JG_ERR_IO;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        snprintf(why, why_size, "out of memory");
        return JG_ERR_NOMEM;
    }
    *size = (size_t)file_size;
    *out = malloc(*size ? *size : 1);
    if (!*out) {
        fclose(f);
        snprintf(why, why_size, "out of memory (%zu bytes)", *size);
        return JG_ERR_NOMEM;
    }
    size_t got = fread(*out, 1, *size, f);
    bool err = ferror(f);
    fclose(f);
    if (got != *size) {
        snprintf(why, why_size, "read %s after %zu of %zu bytes", err ? "error" : "stopped",
                 got, *size);
        free(*out);
        *out = NULL;
        return JG_ERR_IO;
    }
    return JG_OK;
}

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Every structural check of the file itself: header, JSON, offsets, truncation. */
static jg_status check_file(const unsigned char *buf, size_t size, st_file *f,
                            uint64_t *data_start, char *why, size_t why_size)
{
    if (size < 8) {
        snprintf(why, why_size, "truncated: %zu bytes, less than the 8-byte header length", size);
        return JG_ERR_IO;
    }
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)buf[i] << (8 * i);
    if (hlen < 2 || hlen > ST_MAX_HEADER || hlen > size - 8) {
        snprintf(why, why_size, "bad header length %llu (file of %zu bytes)",
                 (unsigned long long)hlen, size);
        return JG_ERR_IO;
    }
    if (!parse_header((const char *)buf + 8, (size_t)hlen, f, why, why_size))
        return JG_ERR_IO;
    *data_start = 8 + hlen;
    uint64_t data_len = size - 8 - hlen;
    for (int i = 0; i < f->n; i++) {
        st_entry *e = &f->e[i];
        if (e->begin > e->end) {
            snprintf(why, why_size, "tensor '%s': data_offsets [%llu, %llu] are reversed", e->name,
                     (unsigned long long)e->begin, (unsigned long long)e->end);
            return JG_ERR_IO;
        }
        if (e->end > data_len) {
            snprintf(why, why_size, "truncated: tensor '%s' ends at byte %llu of the data, "
                     "which holds %llu bytes", e->name, (unsigned long long)e->end,
                     (unsigned long long)data_len);
            return JG_ERR_IO;
        }
    }
    if (f->n > 1) {
        const st_entry **by = malloc((size_t)f->n * sizeof *by);
        if (!by) {
            snprintf(why, why_size, "out of memory");
            return JG_ERR_NOMEM;
        }
        for (int i = 0; i < f->n; i++)
            by[i] = &f->e[i];
        qsort(by, (size_t)f->n, sizeof *by, cmp_begin);
        for (int i = 1; i < f->n; i++)
            if (by[i]->begin < by[i - 1]->end && by[i]->begin < by[i]->end) {
                snprintf(why, why_size, "tensors '%s' and '%s' overlap in the data",
                         by[i - 1]->name, by[i]->name);
                free(by);
                return JG_ERR_IO;
            }
        free(by);
    }
    return JG_OK;
}

/* The file against the store: names both ways, dtypes, shapes, byte counts. */
static jg_status check_against(jg_graph *g, const st_file *f, char *why, size_t why_size)
{
    char s1[160], s2[160];
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = &f->e[i];
        graph_param *p = store_find(g, e->name);
        if (!p) {
            snprintf(why, why_size, "tensor '%s' is not a parameter of the graph", e->name);
            return JG_ERR_ARG;
        }
        jg_node *n = p->node;
        if (strcmp(e->dtype, st_dtype(n->dtype)) != 0) {
            snprintf(why, why_size, "tensor '%s': dtype %s in the file, %s in the graph",
                     e->name, e->dtype, st_dtype(n->dtype));
            return JG_ERR_DTYPE;
        }
        if (e->shape.ndim > JG_MAX_DIMS) {
            snprintf(why, why_size, "tensor '%s': more than %d dimensions in the file, %s in "
                     "the graph", e->name, JG_MAX_DIMS, shape_str(n->shape, s2, sizeof s2));
            return JG_ERR_SHAPE;
        }
        bool same = e->shape.ndim == n->shape.ndim;
        for (int d = 0; same && d < e->shape.ndim; d++)
            same = e->shape.dim[d] == n->shape.dim[d];
        if (!same) {
            /* shape_str expects valid dimensions; print the file's by hand. */
            int k = snprintf(s1, sizeof s1, "[");
            for (int d = 0; d < e->shape.ndim && k < (int)sizeof s1 - 24; d++)
                k += snprintf(s1 + k, sizeof s1 - (size_t)k, "%s%lld", d ? "," : "",
                              (long long)e->shape.dim[d]);
            snprintf(s1 + k, sizeof s1 - (size_t)k, "]");
            snprintf(why, why_size, "tensor '%s': shape %s in the file, %s in the graph",
                     e->name, s1, shape_str(n->shape, s2, sizeof s2));
            return JG_ERR_SHAPE;
        }
        uint64_t want = (uint64_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
        if (e->end - e->begin != want) {
            snprintf(why, why_size, "tensor '%s': data_offsets [%llu, %llu] span %llu bytes, "
                     "its shape and dtype need %llu", e->name, (unsigned long long)e->begin,
                     (unsigned long long)e->end, (unsigned long long)(e->end - e->begin),
                     (unsigned long long)want);
            return JG_ERR_IO;
        }
    }
    for (int i = 0; i < g->n_params; i++) {
        const char *name = g->params[i].node->name;
        bool found = false;
        for (int k = 0; k < f->n && !found; k++)
            found = !strcmp(f->e[k].name, name);
        if (!found) {
            snprintf(why, why_size, "parameter '%s' of the graph is missing from the file", name);
            return JG_ERR_ARG;
        }
    }
    return JG_OK;
}

JG_API jg_status jg_checkpoint_load(jg_graph *g, const char *path)
{
    if (!g)
        return JG_ERR_ARG;
    if (!path) {
        graph_note(g, "jg_checkpoint_load: path is NULL");
        return JG_ERR_ARG;
    }
    char why[400] = "";
    unsigned char *buf = NULL;
    size_t size = 0;
    st_file f = { 0 };
    uint64_t data_start = 0;
    jg_status st = read_file(path, &buf, &size, why, sizeof why);
    if (st == JG_OK)
        st = check_file(buf, size, &f, &data_start, why, sizeof why);
    if (st == JG_OK)
        st = check_against(g, &f, why, sizeof why);
    if (st == JG_OK) {
        for (int i = 0; i < f.n; i++) {
            graph_param *p = store_find(g, f.e[i].name);
            copy_le(p->data, buf + data_start + f.e[i].begin,
                    (size_t)jg_shape_numel(p->node->shape), jg_dtype_size(p->node->dtype));
        }
    } else {
        graph_note(g, "jg_checkpoint_load: %s: %s", path, why);
    }
    st_free(&f);
    free(buf);
    return st;
}
