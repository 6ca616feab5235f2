/* Checkpoints as safetensors files: the whole parameter store (weights and optimiser state)
 * saved through a temporary file + fsync + rename, and loaded only after the entire file has
 * been validated against the store, so a bad file leaves every parameter as it was. Layout:
 * u64 little-endian header length N, N bytes of JSON (padded with spaces to a multiple of 8),
 * then the raw little-endian tensor data; offsets in the JSON are relative to the data.
 */
#include "graph/graph.h"
#include "util/atomic.h"
#include "util/file.h"

#include <errno.h>
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

/* ---- a strict JSON subset */

/* Exactly what a safetensors header holds: one object whose values are tensor objects
 * {"dtype": string, "shape": [uint...], "data_offsets": [uint, uint]} or, for the key
 * "__metadata__", an object of strings. Anything else is an error with its byte offset. */

typedef struct js {
    const char *s, *p, *end;
    char why[200];
} js;

static bool js_fail(js *j, const char *what)
{
    if (!j->why[0])
        snprintf(j->why, sizeof j->why, "bad JSON header at byte %d: %s", (int)(j->p - j->s), what);
    return false;
}

static void js_ws(js *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool js_lit(js *j, char c)
{
    js_ws(j);
    if (j->p < j->end && *j->p == c) {
        j->p++;
        return true;
    }
    return false;
}

static bool js_expect(js *j, char c)
{
    if (js_lit(j, c))
        return true;
    char what[32];
    snprintf(what, sizeof what, "expected '%c'", c);
    return js_fail(j, what);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A JSON string into out (UTF-8, NUL-terminated, at most size - 1 bytes). */
static bool js_string(js *j, char *out, size_t size)
{
    if (!js_lit(j, '"'))
        return js_fail(j, "expected a string");
    size_t n = 0;
    for (;;) {
        if (j->p >= j->end)
            return js_fail(j, "unterminated string");
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"')
            break;
        if (c < 0x20)
            return js_fail(j, "control character in a string");
        unsigned cp = c;
        if (c == '\\') {
            if (j->p >= j->end)
                return js_fail(j, "unterminated string");
            char e = *j->p++;
            switch (e) {
            case '"': case '\\': case '/': cp = (unsigned)e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                cp = 0;
                for (int i = 0; i < 4; i++) {
                    int h = j->p < j->end ? hexval(*j->p++) : -1;
                    if (h < 0)
                        return js_fail(j, "bad \\u escape");
                    cp = cp * 16 + (unsigned)h;
                }
                if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    return js_fail(j, "unsupported \\u escape (NUL or surrogate)");
                break;
            default: return js_fail(j, "bad escape");
            }
        }
        unsigned char u[3];
        int k;
        if (c == '\\' && cp >= 0x80) { /* encode the escaped code point as UTF-8 */
            if (cp < 0x800) {
                u[0] = (unsigned char)(0xC0 | (cp >> 6));
                u[1] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 2;
            } else {
                u[0] = (unsigned char)(0xE0 | (cp >> 12));
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 3;
            }
        } else {
            u[0] = (unsigned char)cp;
            k = 1;
        }
        if (n + (size_t)k >= size)
            return js_fail(j, "string too long");
        memcpy(out + n, u, (size_t)k);
        n += (size_t)k;
    }
    out[n] = '\0';
    return true;
}

/* A non-negative integer below 2^53 (what every JSON reader represents exactly). */
static bool js_uint(js *j, uint64_t *out)
{
    js_ws(j);
    if (j->p >= j->end || *j->p < '0' || *j->p > '9')
        return js_fail(j, "expected a non-negative integer");
    if (*j->p == '0' && j->p + 1 < j->end && j->p[1] >= '0' && j->p[1] <= '9')
        return js_fail(j, "leading zero in a number");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        v = v * 10 + (uint64_t)(*j->p++ - '0');
        if (v >= (UINT64_C(1) << 53))
            return js_fail(j, "integer too large");
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return js_fail(j, "expected an integer");
    *out = v;
    return true;
}

/* [uint, ...] with at most max items; *n gets the count (max + 1 when there are more). */
static bool js_uint_list(js *j, uint64_t *v, int max, int *n)
{
    *n = 0;
    if (!js_expect(j, '['))
        return false;
    if (js_lit(j, ']'))
        return true;
    do {
        uint64_t x;
        if (!js_uint(j, &x))
            return false;
        if (*n < max)
            v[*n] = x;
        if (*n <= max)
            (*n)++;
    } while (js_lit(j, ','));
    return js_expect(j, ']');
}

static bool js_metadata(js *j)
{
    char buf[ST_MAX_NAME];
    if (!js_expect(j, '{'))
        return false;
    if (js_lit(j, '}'))
        return true;
    do {
        if (!js_string(j, buf, sizeof buf) || !js_expect(j, ':') || !js_string(j, buf, sizeof buf))
            return false;
    } while (js_lit(j, ','));
    return js_expect(j, '}');
}

static bool js_tensor(js *j, st_entry *e)
{
    bool has_dtype = false, has_shape = false, has_offsets = false;
    if (!js_expect(j, '{'))
        return false;
    do {
        char key[32];
        if (!js_string(j, key, sizeof key) || !js_expect(j, ':'))
            return false;
        if (!strcmp(key, "dtype") && !has_dtype) {
            if (!js_string(j, e->dtype, sizeof e->dtype))
                return false;
            has_dtype = true;
        } else if (!strcmp(key, "shape") && !has_shape) {
            uint64_t d[JG_MAX_DIMS];
            int n;
            if (!js_uint_list(j, d, JG_MAX_DIMS, &n))
                return false;
            e->shape.ndim = n;
            for (int i = 0; i < n && i < JG_MAX_DIMS; i++)
                e->shape.dim[i] = (int64_t)d[i];
            has_shape = true;
        } else if (!strcmp(key, "data_offsets") && !has_offsets) {
            uint64_t d[2];
            int n;
            if (!js_uint_list(j, d, 2, &n))
                return false;
            if (n != 2)
                return js_fail(j, "data_offsets must hold two integers");
            e->begin = d[0];
            e->end = d[1];
            has_offsets = true;
        } else {
            return js_fail(j, "unknown or repeated key in a tensor entry");
        }
    } while (js_lit(j, ','));
    if (!js_expect(j, '}'))
        return false;
    if (!has_dtype || !has_shape || !has_offsets)
        return js_fail(j, "tensor entry lacks dtype, shape or data_offsets");
    return true;
}

static bool js_header(js *j, st_file *f)
{
    bool seen_meta = false;
    if (!js_expect(j, '{'))
        return false;
    if (!js_lit(j, '}')) {
        do {
            char name[ST_MAX_NAME];
            if (!js_string(j, name, sizeof name) || !js_expect(j, ':'))
                return false;
            if (!strcmp(name, "__metadata__")) {
                if (seen_meta)
                    return js_fail(j, "repeated __metadata__");
                seen_meta = true;
                if (!js_metadata(j))
                    return false;
                continue;
            }
            for (int i = 0; i < f->n; i++)
                if (!strcmp(f->e[i].name, name)) {
                    snprintf(j->why, sizeof j->why, "tensor '%.100s' appears twice", name);
                    return false;
                }
            if (f->n == f->cap) {
                int cap = f->cap ? 2 * f->cap : 16;
                st_entry *e = realloc(f->e, (size_t)cap * sizeof *e);
                if (!e)
                    return js_fail(j, "out of memory");
                f->e = e;
                f->cap = cap;
            }
            st_entry *e = &f->e[f->n];
            *e = (st_entry){ 0 };
            size_t len = strlen(name) + 1;
            if (!(e->name = malloc(len)))
                return js_fail(j, "out of memory");
            memcpy(e->name, name, len);
            f->n++;
            if (!js_tensor(j, e))
                return false;
        } while (js_lit(j, ','));
        if (!js_expect(j, '}'))
            return false;
    }
    js_ws(j);
    if (j->p != j->end)
        return js_fail(j, "trailing characters after the header object");
    return true;
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
        size_t len = strlen(g->params[i].node->name);
        if (len >= ST_MAX_NAME) {
            graph_note(g, "jg_checkpoint_save: %s: parameter '%.40s...' has a name of %zu "
                       "bytes; a checkpoint holds names of at most %d", path,
                       g->params[i].node->name, len, ST_MAX_NAME - 1);
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
    js j = { .s = (const char *)buf + 8, .p = (const char *)buf + 8,
             .end = (const char *)buf + 8 + hlen };
    if (!js_header(&j, f)) {
        snprintf(why, why_size, "%s", j.why);
        return JG_ERR_IO;
    }
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
