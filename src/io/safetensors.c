/* Reading and validating safetensors files (the format: safetensors.h). Nothing read is
 * trusted: the header is parsed by jansson under limits on size and nesting, every offset is
 * checked against the file, and tensors may not overlap. */
#include "io/safetensors.h"
#include "util/file.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void st_free(st_file *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->e[i].name);
    free(f->e);
}

bool st_host_big_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 0;
}

void st_copy_le(void *dst, const void *src, size_t n, size_t es)
{
    if (!st_host_big_endian()) {
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

jg_status st_read(const char *path, unsigned char **buf, size_t *size, st_file *f,
                  uint64_t *data_start, char *why, size_t why_size)
{
    *buf = NULL;
    *f = (st_file){ 0 };
    jg_status st = read_file(path, buf, size, why, why_size);
    if (st == JG_OK)
        st = check_file(*buf, *size, f, data_start, why, why_size);
    if (st != JG_OK) {
        st_free(f);
        *f = (st_file){ 0 };
        free(*buf);
        *buf = NULL;
    }
    return st;
}
