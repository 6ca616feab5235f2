/* Tests for the IDX reader (src/io/idx.c): small plain and gzip files written into a temp
 * directory, every element type and conversion, each malformed-file case (status and a
 * message naming the file), and the real Fashion-MNIST test set when it is installed.
 */
#include "support/support.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/jg_idx_XXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp failed");
}

static void teardown(void)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[sizeof dir + 260];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (rmdir(p) != 0) unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

TestSuite(idx, .init = setup, .fini = teardown);

/* A growable byte buffer for building IDX images in memory. */
typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        cr_assert(b->p);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_be(buf *b, uint64_t v, int size)
{
    unsigned char x[8];
    for (int i = 0; i < size; i++) x[i] = (unsigned char)(v >> (8 * (size - 1 - i)));
    put(b, x, (size_t)size);
}

/* The header: 0, 0, type, ndim, then ndim big-endian u32 dimensions. */
static buf header(int type, int ndim, const uint32_t *dims)
{
    buf b = { 0 };
    unsigned char m[4] = { 0, 0, (unsigned char)type, (unsigned char)ndim };
    put(&b, m, 4);
    for (int i = 0; i < ndim; i++) put_be(&b, dims[i], 4);
    return b;
}

/* Writes bytes to dir/name (gzip-compressed when gz) and returns the path (static slot). */
static const char *write_file(const char *name, const void *p, size_t n, bool gz)
{
    static char path[4][256];
    static int slot;
    char *out = path[slot++ % 4];
    snprintf(out, 256, "%s/%s", dir, name);
    if (gz) {
        gzFile f = gzopen(out, "wb");
        cr_assert(f, "gzopen %s", out);
        if (n) cr_assert_eq(gzwrite(f, p, (unsigned)n), (int)n);
        cr_assert_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(out, "wb");
        cr_assert(f, "fopen %s", out);
        if (n) cr_assert_eq(fwrite(p, 1, n, f), n);
        cr_assert_eq(fclose(f), 0);
    }
    return out;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    cr_assert(p);
    cr_assert_eq(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void assert_shape(const jg_array *a, jg_shape want)
{
    cr_assert_eq(a->shape.ndim, want.ndim, "ndim %d, want %d", a->shape.ndim, want.ndim);
    for (int i = 0; i < want.ndim; i++)
        cr_assert_eq(a->shape.dim[i], want.dim[i], "dim %d: %lld, want %lld", i,
                     (long long)a->shape.dim[i], (long long)want.dim[i]);
}

static bool is_zeroed(const jg_array *a)
{
    static const jg_array zero;
    return memcmp(a, &zero, sizeof zero) == 0;
}

/* Reads path expecting failure with status st and a message holding the path and part;
 * also checks out was left zeroed. */
static void expect_fail(const char *path, jg_dtype as, jg_status st, const char *part)
{
    jg_array a;
    memset(&a, 0x5a, sizeof a); /* garbage the reader must clear */
    char err[512];
    jg_status got = jg_idx_read(path, as, &a, err, sizeof err);
    cr_assert_eq(got, st, "%s: status %s, want %s (message: %s)", path, jg_status_str(got),
                 jg_status_str(st), err);
    cr_assert(strstr(err, path), "message does not name the file: %s", err);
    cr_assert(strstr(err, part), "message lacks \"%s\": %s", part, err);
    cr_assert(is_zeroed(&a), "out not zeroed on failure");
}

static const unsigned char u8_vals[6] = { 0, 1, 127, 128, 254, 255 };

static void check_u8(const char *path)
{
    char err[256];
    jg_array a;
    cr_assert_eq(jg_idx_read(path, JG_F32, &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_F32);
    assert_shape(&a, jg_shape(2, 3));
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((float *)a.data)[i], (float)u8_vals[i] / 255.0f, "f32[%d] = %g", i,
                     ((float *)a.data)[i]);
    cr_assert_eq(((float *)a.data)[5], 1.0f);
    jg_array_free(&a);

    cr_assert_eq(jg_idx_read(path, JG_F64, &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_F64);
    assert_shape(&a, jg_shape(2, 3));
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((double *)a.data)[i], u8_vals[i] / 255.0, "f64[%d]", i);
    jg_array_free(&a);

    cr_assert_eq(jg_idx_read(path, JG_I32, &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_I32);
    assert_shape(&a, jg_shape(2, 3));
    for (int i = 0; i < 6; i++) cr_assert_eq(((int32_t *)a.data)[i], u8_vals[i], "i32[%d]", i);
    jg_array_free(&a);
    cr_assert(is_zeroed(&a), "jg_array_free must zero the struct");
}

static buf u8_file(void)
{
    buf b = header(0x08, 2, (uint32_t[]){ 2, 3 });
    put(&b, u8_vals, 6);
    return b;
}

Test(idx, u8_plain_scaled_and_integer)
{
    buf b = u8_file();
    check_u8(write_file("u8.idx", b.p, b.n, false));
    free(b.p);
}

Test(idx, u8_gzip_scaled_and_integer)
{
    buf b = u8_file();
    const char *p = write_file("u8.idx.gz", b.p, b.n, true);
    size_t n;
    unsigned char *raw = slurp(p, &n);
    cr_assert(n > 2 && raw[0] == 0x1f && raw[1] == 0x8b, "test file is not gzip");
    free(raw);
    check_u8(p);
    free(b.p);
}

Test(idx, i8_is_signed_and_unscaled)
{
    buf b = header(0x09, 1, (uint32_t[]){ 4 });
    put(&b, (unsigned char[]){ 0x80, 0xff, 0x00, 0x7f }, 4);
    const char *p = write_file("i8.idx", b.p, b.n, false);
    jg_array a;
    cr_assert_eq(jg_idx_read(p, JG_I32, &a, NULL, 0), JG_OK);
    int32_t wi[4] = { -128, -1, 0, 127 };
    for (int i = 0; i < 4; i++) cr_assert_eq(((int32_t *)a.data)[i], wi[i], "i32[%d]", i);
    jg_array_free(&a);
    cr_assert_eq(jg_idx_read(p, JG_F32, &a, NULL, 0), JG_OK);
    for (int i = 0; i < 4; i++) cr_assert_eq(((float *)a.data)[i], (float)wi[i], "f32[%d]", i);
    jg_array_free(&a);
    free(b.p);
}

Test(idx, i16_and_i32_big_endian)
{
    buf b = header(0x0B, 1, (uint32_t[]){ 3 });
    put_be(&b, (uint16_t)-300, 2);
    put_be(&b, 1000, 2);
    put_be(&b, 0x8000, 2);
    const char *p = write_file("i16.idx.gz", b.p, b.n, true);
    jg_array a;
    cr_assert_eq(jg_idx_read(p, JG_I32, &a, NULL, 0), JG_OK);
    assert_shape(&a, jg_shape(3));
    cr_assert_eq(((int32_t *)a.data)[0], -300);
    cr_assert_eq(((int32_t *)a.data)[1], 1000);
    cr_assert_eq(((int32_t *)a.data)[2], -32768);
    jg_array_free(&a);
    free(b.p);

    b = header(0x0C, 2, (uint32_t[]){ 1, 3 });
    put_be(&b, (uint32_t)-70000, 4);
    put_be(&b, 0x7fffffff, 4);
    put_be(&b, 0x01020304, 4);
    p = write_file("i32.idx", b.p, b.n, false);
    cr_assert_eq(jg_idx_read(p, JG_I32, &a, NULL, 0), JG_OK);
    assert_shape(&a, jg_shape(1, 3));
    cr_assert_eq(((int32_t *)a.data)[0], -70000);
    cr_assert_eq(((int32_t *)a.data)[1], INT32_MAX);
    cr_assert_eq(((int32_t *)a.data)[2], 0x01020304);
    jg_array_free(&a);
    cr_assert_eq(jg_idx_read(p, JG_F64, &a, NULL, 0), JG_OK);
    cr_assert_eq(((double *)a.data)[0], -70000.0, "i32 data is not scaled");
    cr_assert_eq(((double *)a.data)[1], 2147483647.0);
    jg_array_free(&a);
    free(b.p);
}

static uint64_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

Test(idx, f32_and_f64_data)
{
    buf b = header(0x0D, 1, (uint32_t[]){ 3 });
    put_be(&b, f32_bits(1.5f), 4);
    put_be(&b, f32_bits(-2.25f), 4);
    put_be(&b, f32_bits(300.0f), 4);
    const char *p = write_file("f32.idx", b.p, b.n, false);
    jg_array a;
    cr_assert_eq(jg_idx_read(p, JG_F32, &a, NULL, 0), JG_OK);
    float wf[3] = { 1.5f, -2.25f, 300.0f };
    for (int i = 0; i < 3; i++) cr_assert_eq(((float *)a.data)[i], wf[i], "f32[%d]", i);
    jg_array_free(&a);
    cr_assert_eq(jg_idx_read(p, JG_F64, &a, NULL, 0), JG_OK);
    for (int i = 0; i < 3; i++) cr_assert_eq(((double *)a.data)[i], wf[i], "f64[%d]", i);
    jg_array_free(&a);
    expect_fail(p, JG_I32, JG_ERR_DTYPE, "f32 float data cannot be read as i32");
    free(b.p);

    b = header(0x0E, 2, (uint32_t[]){ 2, 1 });
    put_be(&b, f64_bits(0.1), 8);
    put_be(&b, f64_bits(-1e300), 8);
    p = write_file("f64.idx.gz", b.p, b.n, true);
    cr_assert_eq(jg_idx_read(p, JG_F64, &a, NULL, 0), JG_OK);
    assert_shape(&a, jg_shape(2, 1));
    cr_assert_eq(((double *)a.data)[0], 0.1);
    cr_assert_eq(((double *)a.data)[1], -1e300);
    jg_array_free(&a);
    cr_assert_eq(jg_idx_read(p, JG_F32, &a, NULL, 0), JG_OK);
    cr_assert_eq(((float *)a.data)[0], 0.1f);
    jg_array_free(&a);
    expect_fail(p, JG_I32, JG_ERR_DTYPE, "f64 float data cannot be read as i32");
    free(b.p);
}

Test(idx, eight_dimensions)
{
    uint32_t dims[8] = { 1, 2, 1, 3, 1, 1, 2, 1 };
    buf b = header(0x08, 8, dims);
    for (int i = 0; i < 12; i++) put(&b, &(unsigned char){ (unsigned char)(i * 20) }, 1);
    const char *p = write_file("r8.idx", b.p, b.n, false);
    jg_array a;
    cr_assert_eq(jg_idx_read(p, JG_I32, &a, NULL, 0), JG_OK);
    assert_shape(&a, jg_shape(1, 2, 1, 3, 1, 1, 2, 1));
    for (int i = 0; i < 12; i++) cr_assert_eq(((int32_t *)a.data)[i], i * 20);
    jg_array_free(&a);
    free(b.p);
}

/* More than the reader's 1 MiB staging chunk, with 2-byte elements: chunks must not split
 * or drop elements, plain or gzip. */
Test(idx, larger_than_one_chunk)
{
    const uint32_t n = 700001;
    buf b = header(0x0B, 1, &n);
    for (uint32_t i = 0; i < n; i++) put_be(&b, (uint16_t)(i * 7919u), 2);
    for (int gz = 0; gz < 2; gz++) {
        const char *p = write_file(gz ? "big.idx.gz" : "big.idx", b.p, b.n, gz);
        jg_array a;
        char err[256];
        cr_assert_eq(jg_idx_read(p, JG_I32, &a, err, sizeof err), JG_OK, "%s", err);
        assert_shape(&a, jg_shape(n));
        for (uint32_t i = 0; i < n; i++)
            cr_assert_eq(((int32_t *)a.data)[i], (int16_t)(uint16_t)(i * 7919u), "[%u]", i);
        jg_array_free(&a);
    }
    free(b.p);
}

Test(idx, err_cannot_open)
{
    char p[256];
    snprintf(p, sizeof p, "%s/no-such-file.idx", dir);
    expect_fail(p, JG_F32, JG_ERR_IO, "cannot open");
    expect_fail(p, JG_F32, JG_ERR_IO, "No such file or directory");
    /* A directory is refused before it is read. */
    expect_fail(dir, JG_F32, JG_ERR_IO, "not a regular file (a directory)");
}

Test(idx, err_bad_magic)
{
    unsigned char m[12] = { 0x12, 0x34, 0x56, 0x78 };
    expect_fail(write_file("magic.idx", m, sizeof m, false), JG_F32, JG_ERR_IO,
                "bad magic 0x12345678: not an IDX file");
    expect_fail(write_file("magic.idx.gz", m, sizeof m, true), JG_F32, JG_ERR_IO,
                "bad magic 0x12345678");
    unsigned char m2[8] = { 0x00, 0x01, 0x08, 0x01, 0, 0, 0, 0 };
    expect_fail(write_file("magic2.idx", m2, sizeof m2, false), JG_F32, JG_ERR_IO,
                "bad magic 0x00010801");
}

Test(idx, err_unknown_type)
{
    buf b = header(0x0A, 1, (uint32_t[]){ 1 });
    put(&b, "x", 1);
    expect_fail(write_file("type.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "unknown data type 0x0a");
    free(b.p);
}

Test(idx, err_bad_ndim)
{
    unsigned char h0[8] = { 0, 0, 0x08, 0, 1, 2, 3, 4 };
    expect_fail(write_file("ndim0.idx", h0, sizeof h0, false), JG_F32, JG_ERR_IO,
                "bad number of dimensions 0");
    uint32_t dims[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
    buf b = header(0x08, 9, dims);
    put(&b, "x", 1);
    expect_fail(write_file("ndim9.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "bad number of dimensions 9");
    free(b.p);
}

Test(idx, err_zero_dimension)
{
    buf b = header(0x08, 3, (uint32_t[]){ 2, 0, 3 });
    expect_fail(write_file("zero.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "dimension 1 is zero");
    free(b.p);
}

Test(idx, err_too_large)
{
    /* 2^48 elements: must be refused before any allocation is attempted. */
    buf b = header(0x08, 3, (uint32_t[]){ 65536, 65536, 65536 });
    expect_fail(write_file("huge.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "too large: dimensions [65536,65536,65536] exceed 2^34 elements");
    free(b.p);
    /* Eight maximal dimensions would overflow a 64-bit product. */
    uint32_t dims[8];
    for (int i = 0; i < 8; i++) dims[i] = UINT32_MAX;
    b = header(0x0E, 8, dims);
    expect_fail(write_file("huge8.idx", b.p, b.n, true), JG_F64, JG_ERR_IO, "too large");
    free(b.p);
}

Test(idx, err_truncated_data)
{
    buf b = header(0x0C, 2, (uint32_t[]){ 5, 5 }); /* 100 data bytes */
    for (int i = 0; i < 10; i++) put(&b, "z", 1);
    expect_fail(write_file("trunc.idx", b.p, b.n, false), JG_I32, JG_ERR_IO,
                "truncated: expected 100 data bytes, got 10");
    expect_fail(write_file("trunc.idx.gz", b.p, b.n, true), JG_I32, JG_ERR_IO,
                "truncated: expected 100 data bytes, got 10");
    free(b.p);
    /* Header only: no data at all. */
    b = header(0x08, 3, (uint32_t[]){ 10000, 28, 28 });
    expect_fail(write_file("trunc0.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "truncated: expected 7840000 data bytes, got 0");
    free(b.p);
}

Test(idx, err_header_larger_than_the_file_allocates_nothing)
{
    /* 2^34 four-byte elements (64 GiB) promised by a header-only file: refused from the
     * file's size before any allocation (it was JG_ERR_NOMEM, or an allocation that
     * overcommit let through) */
    buf b = header(0x0C, 2, (uint32_t[]){ 1u << 17, 1u << 17 });
    expect_fail(write_file("promise.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "truncated: expected 68719476736 data bytes, got 0");
    expect_fail(write_file("promise.idx.gz", b.p, b.n, true), JG_F32, JG_ERR_IO,
                "more than a compressed file of");
    free(b.p);
}

Test(idx, err_a_fifo_is_refused_without_blocking, .timeout = 10)
{
    char path[128];
    snprintf(path, sizeof path, "%s/fifo.idx", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    expect_fail(path, JG_F32, JG_ERR_IO, "not a regular file (a FIFO)");
}

Test(idx, err_truncated_header)
{
    expect_fail(write_file("empty.idx", "", 0, false), JG_F32, JG_ERR_IO,
                "truncated: file ends inside the header");
    expect_fail(write_file("empty.idx.gz", "", 0, true), JG_F32, JG_ERR_IO,
                "truncated: file ends inside the header");
    unsigned char h[6] = { 0, 0, 0x08, 2, 0, 0 };
    expect_fail(write_file("head.idx", h, sizeof h, false), JG_F32, JG_ERR_IO,
                "truncated: file ends inside the header (2 of 8 dimension bytes)");
}

Test(idx, err_trailing_bytes)
{
    buf b = u8_file();
    put(&b, "!", 1);
    expect_fail(write_file("trail.idx", b.p, b.n, false), JG_F32, JG_ERR_IO,
                "trailing bytes after the data");
    expect_fail(write_file("trail.idx.gz", b.p, b.n, true), JG_F32, JG_ERR_IO,
                "trailing bytes after the data");
    free(b.p);
}

/* Writes a gzip file of a valid n-element u8 IDX file of incompressible bytes, then
 * rewrites it with `fix` applied to its compressed bytes. */
static const char *corrupt_gz(const char *name, uint32_t n,
                              void (*fix)(unsigned char *p, size_t *n))
{
    buf b = header(0x08, 1, &n);
    uint32_t x = 12345;
    for (uint32_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        put(&b, &(unsigned char){ (unsigned char)(x >> 24) }, 1);
    }
    const char *p = write_file(name, b.p, b.n, true);
    free(b.p);
    size_t len;
    unsigned char *raw = slurp(p, &len);
    fix(raw, &len);
    write_file(name, raw, len, false);
    free(raw);
    return p;
}

static void flip_crc(unsigned char *p, size_t *n) { p[*n - 8] ^= 0xff; }
static void flip_isize(unsigned char *p, size_t *n) { p[*n - 4] ^= 0x01; }
static void bad_block(unsigned char *p, size_t *n) { (void)n; p[10] = 0x07; } /* BTYPE 11 */
static void cut_half(unsigned char *p, size_t *n) { (void)p; *n /= 2; }
static void cut_trailer(unsigned char *p, size_t *n) { (void)p; *n -= 4; }

Test(idx, err_gzip_corrupt)
{
    /* Small files, which zlib inflates in one go, and files larger than the reader's chunk,
     * where the gzip trailer is only checked when the reader looks past the data. */
    uint32_t sizes[2] = { 1000, 1500000 };
    for (int i = 0; i < 2; i++) {
        uint32_t n = sizes[i];
        expect_fail(corrupt_gz("crc.idx.gz", n, flip_crc), JG_F32, JG_ERR_IO,
                    "incorrect data check");
        expect_fail(corrupt_gz("len.idx.gz", n, flip_isize), JG_F32, JG_ERR_IO,
                    "incorrect length check");
        expect_fail(corrupt_gz("block.idx.gz", n, bad_block), JG_F32, JG_ERR_IO,
                    "invalid block type");
        char want[64];
        snprintf(want, sizeof want, "truncated: expected %u data bytes", n);
        expect_fail(corrupt_gz("half.idx.gz", n, cut_half), JG_F32, JG_ERR_IO, want);
        /* All the data is there but the gzip trailer is cut: still an error. */
        expect_fail(corrupt_gz("tail.idx.gz", n, cut_trailer), JG_F32, JG_ERR_IO,
                    "unexpected end of file");
    }
}

Test(idx, null_arguments_and_free)
{
    char err[128];
    jg_array a;
    memset(&a, 0x5a, sizeof a);
    cr_assert_eq(jg_idx_read(NULL, JG_F32, &a, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "path is NULL"), "%s", err);
    cr_assert(is_zeroed(&a));
    cr_assert_eq(jg_idx_read("x.idx", JG_F32, NULL, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "x.idx: out is NULL"), "%s", err);
    cr_assert_eq(jg_idx_read("x.idx", (jg_dtype)42, &a, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "unknown dtype 42"), "%s", err);
    cr_assert_eq(jg_idx_read(NULL, JG_F32, NULL, NULL, 0), JG_ERR_ARG);
    jg_array_free(NULL);
    jg_array_free(&a); /* zeroed: frees NULL data */
    cr_assert(is_zeroed(&a));
}

Test(idx, errbuf_truncated_safely)
{
    char p[256];
    snprintf(p, sizeof p, "%s/missing.idx", dir);
    char err[9];
    memset(err, '#', sizeof err);
    jg_array a;
    cr_assert_eq(jg_idx_read(p, JG_F32, &a, err, 8), JG_ERR_IO);
    cr_assert_eq(strlen(err), 7);
    cr_assert(strncmp(err, p, 7) == 0);
    cr_assert_eq(err[8], '#', "wrote past errbuf_size");
    err[0] = 'q';
    cr_assert_eq(jg_idx_read(p, JG_F32, &a, err, 0), JG_ERR_IO);
    cr_assert_eq(err[0], 'q', "wrote into a zero-size errbuf");
    /* Success clears a stale message. */
    buf b = u8_file();
    const char *ok = write_file("ok.idx", b.p, b.n, false);
    char err2[64] = "stale";
    cr_assert_eq(jg_idx_read(ok, JG_F32, &a, err2, sizeof err2), JG_OK);
    cr_assert_str_eq(err2, "");
    jg_array_free(&a);
    free(b.p);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

Test(idx, fashion_mnist_t10k_labels)
{
    const char *p = FMNIST "t10k-labels-idx1-ubyte.gz";
    if (!exists(p)) cr_skip_test("%s not installed", p);
    jg_array a;
    char err[512];
    cr_assert_eq(jg_idx_read(p, JG_I32, &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_I32);
    assert_shape(&a, jg_shape(10000));
    int count[10] = { 0 };
    const int32_t *y = a.data;
    for (int i = 0; i < 10000; i++) {
        cr_assert(y[i] >= 0 && y[i] <= 9, "label[%d] = %d", i, y[i]);
        count[y[i]]++;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(count[c], 1000, "class %d: %d", c, count[c]);
    jg_array_free(&a);
}

Test(idx, fashion_mnist_t10k_images)
{
    const char *p = FMNIST "t10k-images-idx3-ubyte.gz";
    if (!exists(p)) cr_skip_test("%s not installed", p);
    jg_array a;
    char err[512];
    cr_assert_eq(jg_idx_read(p, JG_F32, &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_F32);
    assert_shape(&a, jg_shape(10000, 28, 28));
    const float *x = a.data;
    float lo = 1, hi = 0;
    double sum = 0;
    for (int64_t i = 0; i < 10000 * 784; i++) {
        cr_assert(x[i] >= 0.0f && x[i] <= 1.0f, "pixel %lld = %g", (long long)i, x[i]);
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sum += x[i];
    }
    /* Real images use the whole range and are mostly dark background. */
    cr_assert_eq(lo, 0.0f);
    cr_assert_eq(hi, 1.0f);
    double mean = sum / (10000.0 * 784);
    cr_assert(mean > 0.2 && mean < 0.4, "mean pixel %g", mean);
    jg_array_free(&a);
}
