/* IDX reader (the MNIST / Fashion-MNIST file format): big-endian header and data, read
 * through zlib so plain and gzip-compressed files both work. Every malformed input (bad
 * magic, unknown type, bad rank, zero or absurd dimensions, truncation, trailing bytes,
 * gzip corruption) becomes JG_ERR_IO with a message naming the file; nothing aborts. Only a
 * regular file is read (a FIFO never blocks), and the header's size is checked against the
 * file's before anything is allocated.
 */
#include "jitgrad.h"
#include "util/file.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Larger than any real data set; it keeps a corrupt header from asking for terabytes. */
#define IDX_MAX_ELEMS ((uint64_t)1 << 34)
/* Staging buffer: big enough that gzread's per-call cost vanishes; a multiple of 8 so a
 * chunk never splits an element. */
#define IDX_CHUNK ((size_t)1 << 20)

typedef struct idx_type {
    unsigned char code;
    const char *name;
    size_t size;
    bool is_float;
} idx_type;

static const idx_type idx_types[] = {
    { 0x08, "u8", 1, false },  { 0x09, "i8", 1, false },  { 0x0B, "i16", 2, false },
    { 0x0C, "i32", 4, false }, { 0x0D, "f32", 4, true },  { 0x0E, "f64", 8, true },
};

static const idx_type *idx_type_of(unsigned code)
{
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == code) return &idx_types[i];
    return NULL;
}

/* Writes "<path>: <problem>" into errbuf (when there is one) and returns st. */
static jg_status idx_fail(char *errbuf, size_t errbuf_size, const char *path, jg_status st,
                          const char *fmt, ...)
{
    if (!errbuf || errbuf_size == 0) return st;
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(errbuf, errbuf_size, "%s: %s", path ? path : "(null)", why);
    return st;
}

/* zlib's message for the stream's current error, without the "<path>: " prefix zlib adds
 * (our own message names the file already). */
static const char *idx_gz_msg(gzFile f, const char *path, int *errnum)
{
    const char *m = gzerror(f, errnum);
    size_t n = strlen(path);
    if (m && strncmp(m, path, n) == 0 && m[n] == ':' && m[n + 1] == ' ') m += n + 2;
    return m && *m ? m : "unknown zlib error";
}

/* Reads up to n bytes, looping over gzread's unsigned-int limit. Returns the count read,
 * or -1 on a zlib error (a short count just means end of file). */
static int64_t idx_read(gzFile f, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        if (want > (size_t)INT_MAX / 2 + 1) want = (size_t)INT_MAX / 2 + 1;
        int r = gzread(f, (unsigned char *)buf + got, (unsigned)want);
        if (r < 0) return -1;
        if (r == 0) break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

static uint64_t be_read(const unsigned char *p, size_t size)
{
    uint64_t v = 0;
    for (size_t i = 0; i < size; i++) v = v << 8 | p[i];
    return v;
}

/* Converts n big-endian elements of type t at src into dst (of dtype as) at index at. */
static void idx_convert(const idx_type *t, const unsigned char *src, size_t n, jg_dtype as,
                        void *dst, size_t at)
{
    if (t->code == 0x08) { /* the common case (images, labels), kept branch-free */
        if (as == JG_I32)
            for (size_t i = 0; i < n; i++) ((int32_t *)dst)[at + i] = src[i];
        else if (as == JG_F32)
            for (size_t i = 0; i < n; i++) ((float *)dst)[at + i] = (float)src[i] / 255.0f;
        else
            for (size_t i = 0; i < n; i++) ((double *)dst)[at + i] = src[i] / 255.0;
        return;
    }
    for (size_t i = 0; i < n; i++, src += t->size) {
        uint64_t bits = be_read(src, t->size);
        double v;
        int32_t iv = 0;
        switch (t->code) {
        case 0x09: iv = (int8_t)(uint8_t)bits; break;
        case 0x0B: iv = (int16_t)(uint16_t)bits; break;
        case 0x0C: iv = (int32_t)(uint32_t)bits; break;
        default: break;
        }
        if (as == JG_I32) {
            ((int32_t *)dst)[at + i] = iv;
            continue;
        }
        if (t->code == 0x0D) {
            float fv;
            uint32_t b32 = (uint32_t)bits;
            memcpy(&fv, &b32, sizeof fv);
            v = fv;
        } else if (t->code == 0x0E) {
            memcpy(&v, &bits, sizeof v);
        } else {
            v = iv;
        }
        if (as == JG_F32) ((float *)dst)[at + i] = (float)v;
        else ((double *)dst)[at + i] = v;
    }
}

/* Reads the data section into out->data; returns JG_OK or an error with errbuf written. */
static jg_status idx_read_data(gzFile f, const char *path, const idx_type *t, uint64_t numel,
                               jg_dtype as, void *dst, char *errbuf, size_t errbuf_size)
{
    unsigned char *chunk = malloc(IDX_CHUNK + 1);
    if (!chunk) return idx_fail(errbuf, errbuf_size, path, JG_ERR_NOMEM, "out of memory");
    uint64_t want = numel * t->size, got = 0;
    size_t per_chunk = IDX_CHUNK / t->size;
    jg_status st = JG_OK;
    int errnum = Z_OK;
    const char *m;
    for (uint64_t done = 0; done < numel;) {
        size_t n = numel - done < per_chunk ? (size_t)(numel - done) : per_chunk;
        size_t bytes = n * t->size;
        /* The last read asks for one byte more than the data: that byte must not exist, and
         * asking for it in the same gzread call keeps inflate going past the data to the
         * gzip trailer (CRC, length). A separate later read would not: once zlib has
         * buffered the whole file it reports a cut-off trailer as a clean end of file. */
        bool last = done + n == numel;
        int64_t r = idx_read(f, chunk, bytes + last);
        if (r < 0) {
            m = idx_gz_msg(f, path, &errnum);
            st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "read error: %s", m);
            goto done;
        }
        got += (uint64_t)r < bytes ? (uint64_t)r : bytes;
        if ((size_t)r < bytes) {
            m = idx_gz_msg(f, path, &errnum);
            st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                          "truncated: expected %llu data bytes, got %llu%s%s%s",
                          (unsigned long long)want, (unsigned long long)got,
                          errnum != Z_OK ? " (" : "", errnum != Z_OK ? m : "",
                          errnum != Z_OK ? ")" : "");
            goto done;
        }
        if ((size_t)r > bytes) {
            st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "trailing bytes after the data");
            goto done;
        }
        idx_convert(t, chunk, n, as, dst, (size_t)done);
        done += n;
    }
    /* A gzip stream that ends early (Z_BUF_ERROR) still returns its data without failing. */
    m = idx_gz_msg(f, path, &errnum);
    if (errnum != Z_OK) st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "read error: %s", m);
done:
    free(chunk);
    return st;
}

JG_API jg_status jg_idx_read(const char *path, jg_dtype as, jg_array *out, char *errbuf,
                             size_t errbuf_size)
{
    if (out) memset(out, 0, sizeof *out);
    if (errbuf && errbuf_size > 0) errbuf[0] = '\0';
    if (!path) return idx_fail(errbuf, errbuf_size, "jg_idx_read", JG_ERR_ARG, "path is NULL");
    if (!out) return idx_fail(errbuf, errbuf_size, path, JG_ERR_ARG, "out is NULL");
    if (as != JG_F32 && as != JG_F64 && as != JG_I32)
        return idx_fail(errbuf, errbuf_size, path, JG_ERR_ARG, "unknown dtype %d", (int)as);

    char why[128];
    int64_t file_size;
    int fd = file_open_regular(path, &file_size, why, sizeof why);
    if (fd < 0)
        return idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "%s", why);
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return idx_fail(errbuf, errbuf_size, path, JG_ERR_NOMEM, "out of memory");
    }
    gzbuffer(f, 1 << 17); /* fewer, larger read() calls; before the first read */

    jg_status st = JG_OK;
    void *data = NULL;
    int errnum = Z_OK;
    unsigned char head[4 + 4 * JG_MAX_DIMS];
    int64_t r = idx_read(f, head, 4);
    if (r < 0) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "read error: %s",
                      idx_gz_msg(f, path, &errnum));
        goto fail;
    }
    if (r < 4) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "truncated: file ends inside the header (%d of 4 magic bytes)", (int)r);
        goto fail;
    }
    unsigned magic = (unsigned)be_read(head, 4);
    if (head[0] != 0 || head[1] != 0) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "bad magic 0x%08x: not an IDX file",
                      magic);
        goto fail;
    }
    const idx_type *t = idx_type_of(head[2]);
    if (!t) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "unknown data type 0x%02x in magic 0x%08x", head[2], magic);
        goto fail;
    }
    int ndim = head[3];
    if (ndim < 1 || ndim > JG_MAX_DIMS) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "bad number of dimensions %d (must be 1..%d)", ndim, JG_MAX_DIMS);
        goto fail;
    }
    if (t->is_float && as == JG_I32) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_DTYPE,
                      "%s float data cannot be read as i32", t->name);
        goto fail;
    }
    r = idx_read(f, head + 4, 4 * (size_t)ndim);
    if (r < 0) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "read error: %s",
                      idx_gz_msg(f, path, &errnum));
        goto fail;
    }
    if (r < 4 * ndim) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "truncated: file ends inside the header (%d of %d dimension bytes)",
                      (int)r, 4 * ndim);
        goto fail;
    }
    jg_shape shape = { .ndim = ndim };
    uint64_t numel = 1;
    bool too_big = false;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = be_read(head + 4 + 4 * i, 4);
        if (d == 0) {
            st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO, "dimension %d is zero", i);
            goto fail;
        }
        shape.dim[i] = (int64_t)d;
        /* Checked before multiplying, so eight u32 dimensions cannot overflow. */
        if (too_big || numel > IDX_MAX_ELEMS / d) too_big = true;
        else numel *= d;
    }
    if (too_big) {
        char dims[8 * 12 + 4] = "";
        size_t len = 0;
        for (int i = 0; i < ndim; i++)
            len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%lld", i ? "," : "",
                                    (long long)shape.dim[i]);
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "too large: dimensions [%s] exceed 2^34 elements", dims);
        goto fail;
    }
    /* The data the header promises must fit in the file: exactly, when it is stored as it
     * is; within deflate's largest expansion (1032:1), when it is compressed. */
    uint64_t data_bytes = numel * (uint64_t)t->size, header_bytes = 4 + 4 * (uint64_t)ndim;
    bool raw = gzdirect(f);
    if (raw && data_bytes > (uint64_t)file_size - header_bytes) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "truncated: expected %llu data bytes, got %llu",
                      (unsigned long long)data_bytes,
                      (unsigned long long)((uint64_t)file_size - header_bytes));
        goto fail;
    }
    if (!raw && data_bytes > (uint64_t)file_size * 1032) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_IO,
                      "truncated: expected %llu data bytes, more than a compressed file of "
                      "%lld bytes can hold", (unsigned long long)data_bytes,
                      (long long)file_size);
        goto fail;
    }
    size_t out_size = jg_dtype_size(as);
    if (numel > SIZE_MAX / out_size || !(data = malloc((size_t)numel * out_size))) {
        st = idx_fail(errbuf, errbuf_size, path, JG_ERR_NOMEM,
                      "out of memory for %llu elements", (unsigned long long)numel);
        goto fail;
    }
    st = idx_read_data(f, path, t, numel, as, data, errbuf, errbuf_size);
    if (st != JG_OK) goto fail;
    gzclose(f);
    out->dtype = as;
    out->shape = shape;
    out->data = data;
    return JG_OK;

fail:
    free(data);
    gzclose(f);
    return st;
}

JG_API void jg_array_free(jg_array *a)
{
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}
