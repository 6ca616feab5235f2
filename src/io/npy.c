/* NumPy .npy files (format versions 1.0, 2.0 and 3.0): jg_npy_read and jg_npy_write. Only
 * C-order arrays; f4/f8/i4 load as is, other integer and bool types load as i32 when every
 * value fits, f2 is refused. Every malformed file is an error naming the file and the
 * problem; nothing aborts. Writing goes through a temporary file and a rename.
 */
#include "graph/graph.h"
#include "util/atomic.h"
#include "util/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define NPY_MAGIC "\x93NUMPY"
/* Real headers are a few hundred bytes; this keeps a corrupt length from allocating much. */
#define NPY_MAX_HEADER ((size_t)1 << 20)

typedef struct npy_header {
    char kind;        /* 'f', 'i', 'u', 'b' */
    int size;         /* bytes per element */
    bool big_endian;
    bool fortran;
    jg_shape shape;
} npy_header;

static bool host_big_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

static void skip_ws(const char **p)
{
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

/* A quoted Python string ('...' or "...") without escapes into out. */
static bool parse_str(const char **p, char *out, size_t size)
{
    char q = **p;
    if (q != '\'' && q != '"')
        return false;
    const char *s = ++*p;
    while (**p && **p != q)
        (*p)++;
    if (**p != q || (size_t)(*p - s) >= size)
        return false;
    memcpy(out, s, (size_t)(*p - s));
    out[*p - s] = '\0';
    (*p)++;
    return true;
}

static bool parse_descr(const char *d, npy_header *h, char *why, size_t why_size)
{
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') {
        snprintf(why, why_size, "unsupported dtype '%s'", d);
        return false;
    }
    char kind = d[1];
    char *end;
    long size = d[1] ? strtol(d + 2, &end, 10) : 0;
    bool ok = d[1] && d[2] && *end == '\0' &&
              ((kind == 'f' && (size == 4 || size == 8)) ||
               ((kind == 'i' || kind == 'u') &&
                (size == 1 || size == 2 || size == 4 || size == 8)) ||
               (kind == 'b' && size == 1));
    if (!ok) {
        snprintf(why, why_size, "unsupported dtype '%s' (supported: f4, f8, i1-i8, u1-u8, b1)", d);
        return false;
    }
    h->kind = kind;
    h->size = (int)size;
    h->big_endian = order == '>' || (order == '=' && host_big_endian());
    return true;
}

/* The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * with the keys in any order. */
static bool parse_header(const char *s, npy_header *h, char *why, size_t why_size)
{
    bool seen_descr = false, seen_order = false, seen_shape = false;
    const char *p = s;
    skip_ws(&p);
    if (*p++ != '{')
        goto bad;
    for (;;) {
        skip_ws(&p);
        if (*p == '}')
            break;
        char key[32], val[32];
        if (!parse_str(&p, key, sizeof key))
            goto bad;
        skip_ws(&p);
        if (*p++ != ':')
            goto bad;
        skip_ws(&p);
        if (!strcmp(key, "descr") && !seen_descr) {
            if (!parse_str(&p, val, sizeof val))
                goto bad;
            if (!parse_descr(val, h, why, why_size))
                return false;
            seen_descr = true;
        } else if (!strcmp(key, "fortran_order") && !seen_order) {
            if (!strncmp(p, "True", 4))
                h->fortran = true, p += 4;
            else if (!strncmp(p, "False", 5))
                h->fortran = false, p += 5;
            else
                goto bad;
            seen_order = true;
        } else if (!strcmp(key, "shape") && !seen_shape) {
            if (*p++ != '(')
                goto bad;
            h->shape.ndim = 0;
            for (;;) {
                skip_ws(&p);
                if (*p == ')')
                    break;
                if (*p < '0' || *p > '9')
                    goto bad;
                errno = 0;
                char *end;
                long long d = strtoll(p, &end, 10);
                if (errno)
                    goto bad;
                p = end;
                if (h->shape.ndim == JG_MAX_DIMS) {
                    snprintf(why, why_size, "more than %d dimensions", JG_MAX_DIMS);
                    return false;
                }
                if (d < 1) {
                    snprintf(why, why_size, "dimension %d is %lld (empty arrays are not supported)",
                             h->shape.ndim, d);
                    return false;
                }
                h->shape.dim[h->shape.ndim++] = d;
                skip_ws(&p);
                if (*p == ',')
                    p++;
                else if (*p != ')')
                    goto bad;
            }
            p++;
            seen_shape = true;
        } else {
            goto bad;
        }
        skip_ws(&p);
        if (*p == ',')
            p++;
        else if (*p != '}')
            goto bad;
    }
    if (!seen_descr || !seen_order || !seen_shape)
        goto bad;
    return true;
bad:
    snprintf(why, why_size, "bad header dict near offset %d: %.60s", (int)(p - s), s);
    return false;
}

static uint64_t load_uint(const unsigned char *b, int size, bool big)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v |= (uint64_t)b[big ? size - 1 - i : i] << (8 * i);
    return v;
}

/* Converts n raw elements into out's dtype. false (why) when an integer does not fit i32. */
static bool convert(const unsigned char *raw, int64_t n, const npy_header *h, jg_array *out,
                    char *why, size_t why_size)
{
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits = load_uint(raw + i * h->size, h->size, h->big_endian);
        if (h->kind == 'f' && h->size == 4) {
            uint32_t b32 = (uint32_t)bits;
            memcpy((float *)out->data + i, &b32, 4);
        } else if (h->kind == 'f') {
            memcpy((double *)out->data + i, &bits, 8);
        } else {
            int64_t v;
            if (h->kind == 'i' && h->size < 8 && (bits >> (8 * h->size - 1)) & 1)
                v = (int64_t)(bits | ~((UINT64_C(1) << (8 * h->size)) - 1)); /* sign-extend */
            else if (h->kind == 'u' && h->size == 8 && bits > INT64_MAX)
                v = INT64_MAX;
            else
                v = (int64_t)bits;
            if (v < INT32_MIN || v > INT32_MAX) {
                snprintf(why, why_size, "element %lld = %lld does not fit in i32", (long long)i,
                         (long long)v);
                return false;
            }
            ((int32_t *)out->data)[i] = (int32_t)v;
        }
    }
    return true;
}

JG_API jg_status jg_npy_read(const char *path, jg_array *out, char *errbuf, size_t errbuf_size)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !out) {
        file_fail(errbuf, errbuf_size, path, "jg_npy_read: %s is NULL", path ? "out" : "path");
        return JG_ERR_ARG;
    }
    jg_status st = JG_ERR_IO;
    char why[300] = "";
    char *header = NULL;
    unsigned char *raw = NULL;
    int64_t file_size;
    int fd = file_open_regular(path, &file_size, why, sizeof why);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        file_fail(errbuf, errbuf_size, path, "%s", fd >= 0 ? "out of memory" : why);
        return fd >= 0 ? JG_ERR_NOMEM : JG_ERR_IO;
    }
    unsigned char pre[12];
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, NPY_MAGIC, 6) != 0) {
        snprintf(why, sizeof why, "bad magic (not a .npy file)");
        goto fail;
    }
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        if (fread(pre + 8, 1, 2, f) != 2)
            goto truncated;
        hlen = (size_t)load_uint(pre + 8, 2, false);
    } else if (major == 2 || major == 3) {
        if (fread(pre + 8, 1, 4, f) != 4)
            goto truncated;
        hlen = (size_t)load_uint(pre + 8, 4, false);
    } else {
        snprintf(why, sizeof why, "unsupported format version %d.%d", major, pre[7]);
        goto fail;
    }
    if (hlen == 0 || hlen > NPY_MAX_HEADER) {
        snprintf(why, sizeof why, "bad header length %zu", hlen);
        goto fail;
    }
    header = malloc(hlen + 1);
    if (!header) {
        st = JG_ERR_NOMEM;
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    if (fread(header, 1, hlen, f) != hlen)
        goto truncated;
    header[hlen] = '\0';
    if (strlen(header) != hlen) {
        snprintf(why, sizeof why, "bad header dict: NUL byte in the header");
        goto fail;
    }
    npy_header h = { 0 };
    if (!parse_header(header, &h, why, sizeof why))
        goto fail;
    if (h.fortran) {
        snprintf(why, sizeof why, "fortran order not supported");
        goto fail;
    }
    int64_t n = jg_shape_numel(h.shape);
    if (n > ((int64_t)1 << 40)) {
        snprintf(why, sizeof why, "array too large (%lld elements)", (long long)n);
        goto fail;
    }
    /* Compare with the file size before allocating, so a corrupt shape cannot ask for
     * terabytes. */
    struct stat sb;
    long pos = ftell(f);
    if (fstat(fileno(f), &sb) == 0 && pos >= 0 && S_ISREG(sb.st_mode) &&
        (uint64_t)(sb.st_size - pos) < (uint64_t)n * (uint64_t)h.size)
        goto truncated;
    raw = malloc((size_t)n * (size_t)h.size);
    out->dtype = h.kind == 'f' ? (h.size == 4 ? JG_F32 : JG_F64) : JG_I32;
    out->data = malloc((size_t)n * jg_dtype_size(out->dtype));
    if (!raw || !out->data) {
        st = JG_ERR_NOMEM;
        snprintf(why, sizeof why, "out of memory");
        goto fail;
    }
    if (fread(raw, (size_t)h.size, (size_t)n, f) != (size_t)n)
        goto truncated;
    if (!convert(raw, n, &h, out, why, sizeof why)) {
        st = JG_ERR_DTYPE;
        goto fail;
    }
    out->shape = h.shape;
    free(raw);
    free(header);
    fclose(f);
    return JG_OK;
truncated:
    snprintf(why, sizeof why, "truncated data%s", ferror(f) ? " (read error)" : "");
fail:
    file_fail(errbuf, errbuf_size, path, "%s", why);
    free(raw);
    free(header);
    fclose(f);
    jg_array_free(out);
    return st;
}

JG_API jg_status jg_npy_write(const char *path, const jg_array *a, char *errbuf,
                              size_t errbuf_size)
{
    if (!path || !a || !a->data) {
        file_fail(errbuf, errbuf_size, path, "jg_npy_write: %s is NULL",
                !path ? "path" : !a ? "array" : "array data");
        return JG_ERR_ARG;
    }
    const char *descr = a->dtype == JG_F32 ? "<f4" : a->dtype == JG_F64 ? "<f8"
                        : a->dtype == JG_I32 ? "<i4" : NULL;
    if (!descr) {
        file_fail(errbuf, errbuf_size, path, "jg_npy_write: unknown dtype %d", (int)a->dtype);
        return JG_ERR_DTYPE;
    }
    if (a->shape.ndim < 0 || a->shape.ndim > JG_MAX_DIMS) {
        file_fail(errbuf, errbuf_size, path, "jg_npy_write: bad rank %d", a->shape.ndim);
        return JG_ERR_SHAPE;
    }
    char dict[400];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr);
    for (int i = 0; i < a->shape.ndim; i++) {
        if (a->shape.dim[i] < 1) {
            file_fail(errbuf, errbuf_size, path, "jg_npy_write: dimension %d is %lld", i,
                    (long long)a->shape.dim[i]);
            return JG_ERR_SHAPE;
        }
        k += snprintf(dict + k, sizeof dict - (size_t)k, "%lld%s", (long long)a->shape.dim[i],
                      a->shape.ndim == 1 ? "," : i + 1 < a->shape.ndim ? ", " : "");
    }
    k += snprintf(dict + k, sizeof dict - (size_t)k, "), }");
    if (!shape_valid(a->shape)) { /* every dimension is >= 1: their product is too large */
        file_fail(errbuf, errbuf_size, path, "jg_npy_write: the shape holds more than 2^40 "
                  "elements");
        return JG_ERR_SHAPE;
    }
    /* NumPy pads the header with spaces to a multiple of 64 bytes (then '\n') so the data
     * is aligned for memory mapping. */
    size_t total = 10 + (size_t)k + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    unsigned char pre[10] = { 0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                              (unsigned char)(hlen >> 8) };
    atomic_file at;
    if (!atomic_file_begin(&at, path, errbuf, errbuf_size))
        return JG_ERR_IO;
    at.remove_stale = true; /* what killed writes left: each the array's size */
    fwrite(pre, 1, sizeof pre, at.f);
    fwrite(dict, 1, (size_t)k, at.f);
    for (size_t i = (size_t)k; i + 1 < hlen; i++)
        fputc(' ', at.f);
    fputc('\n', at.f);
    int64_t n = jg_shape_numel(a->shape);
    size_t es = jg_dtype_size(a->dtype);
    if (!host_big_endian()) {
        fwrite(a->data, es, (size_t)n, at.f);
    } else {
        for (int64_t i = 0; i < n; i++) {
            const unsigned char *e = (const unsigned char *)a->data + (size_t)i * es;
            for (size_t b = es; b-- > 0;)
                fputc(e[b], at.f);
        }
    }
    return atomic_file_commit(&at, errbuf, errbuf_size) ? JG_OK : JG_ERR_IO;
}
