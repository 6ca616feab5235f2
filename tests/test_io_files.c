/* Tests for the file formats of src/io: .npy round trips and malformed files, safetensors
 * checkpoints (round trip of a trained Adam program's whole store, every corruption case
 * leaving the store untouched and the graph unpoisoned, failed saves keeping the old file),
 * PNG files decoded back with libpng, CSV logs appended across opens, the progress bar.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt and friends, for the terminal progress test */
#include "support/support.h"
#include "util/atomic.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/jg_files_XXXXXX");
    cr_assert(mkdtemp(dir), "mkdtemp failed");
}

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d) {
        unlink(path);
        return;
    }
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        rm_tree(p);
    }
    closedir(d);
    rmdir(path);
}

static void teardown(void) { rm_tree(dir); }

TestSuite(io_files, .init = setup, .fini = teardown);

static const char *at(const char *name)
{
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    cr_assert_eq(fread(b, 1, *n, f), *n);
    b[*n] = 0;
    fclose(f);
    return b;
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    cr_assert(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* ---------------------------------------------------------------- .npy */

/* A .npy v1.0 file from a header dict and raw data (the header is padded like NumPy's). */
static void write_npy(const char *path, const char *dict, const void *data, size_t n)
{
    char hdr[256];
    size_t k = strlen(dict), total = (10 + k + 1 + 63) / 64 * 64, hlen = total - 10;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hlen & 0xff);
    hdr[9] = (char)(hlen >> 8);
    memcpy(hdr + 10, dict, k);
    memset(hdr + 10 + k, ' ', hlen - k - 1);
    hdr[total - 1] = '\n';
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(hdr, 1, total, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

Test(io_files, npy_round_trip_of_each_dtype)
{
    float f[6] = { 1.5f, -2, 3, 4, 5e-8f, 6 };
    double d[1] = { 3.141592653589793 };
    int32_t i[3] = { -7, 0, 2147483647 };
    jg_array in[3] = {
        { JG_F32, jg_shape(2, 3), f }, { JG_F64, JG_SCALAR, d }, { JG_I32, jg_shape(3), i },
    };
    for (int k = 0; k < 3; k++) {
        char err[256] = "";
        cr_assert_eq(jg_npy_write(at("a.npy"), &in[k], err, sizeof err), JG_OK, "%s", err);
        size_t n;
        unsigned char *raw = read_bytes(at("a.npy"), &n);
        cr_assert_eq(memcmp(raw, "\x93NUMPY\x01\x00", 8), 0);
        cr_assert_eq((10 + raw[8] + 256 * raw[9]) % 64, 0, "header padded to 64 bytes");
        free(raw);
        jg_array out;
        cr_assert_eq(jg_npy_read(at("a.npy"), &out, err, sizeof err), JG_OK, "%s", err);
        cr_assert_eq(out.dtype, in[k].dtype);
        cr_assert_eq(out.shape.ndim, in[k].shape.ndim);
        for (int a = 0; a < out.shape.ndim; a++)
            cr_assert_eq(out.shape.dim[a], in[k].shape.dim[a]);
        size_t bytes = (size_t)jg_shape_numel(out.shape) * jg_dtype_size(out.dtype);
        cr_assert_eq(memcmp(out.data, in[k].data, bytes), 0, "values identical (dtype %d)", k);
        jg_array_free(&out);
    }
    cr_assert_eq(count_entries(dir), 1, "no temporary files left behind");
}

Test(io_files, npy_reads_what_numpy_writes)
{
    jg_array a;
    char err[256];
    /* u8 and i64 become i32; big-endian floats are swapped; key order and spacing vary. */
    write_npy(at("u8.npy"), "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }",
              (unsigned char[]){ 0, 1, 200, 255 }, 4);
    cr_assert_eq(jg_npy_read(at("u8.npy"), &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_I32);
    cr_assert_eq(((int32_t *)a.data)[2], 200);
    cr_assert_eq(((int32_t *)a.data)[3], 255);
    jg_array_free(&a);

    int64_t big[2] = { -5, 1 << 30 };
    write_npy(at("i8.npy"), "{'shape': (2,), 'fortran_order': False, 'descr': '<i8'}", big,
              sizeof big);
    cr_assert_eq(jg_npy_read(at("i8.npy"), &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_I32);
    cr_assert_eq(a.shape.ndim, 1);
    cr_assert_eq(((int32_t *)a.data)[0], -5);
    cr_assert_eq(((int32_t *)a.data)[1], 1 << 30);
    jg_array_free(&a);

    unsigned char be[4] = { 0x3f, 0x80, 0x00, 0x00 }; /* 1.0f big-endian */
    write_npy(at("be.npy"), "{\"descr\":\">f4\",\"fortran_order\":False,\"shape\":(1,1)}", be, 4);
    cr_assert_eq(jg_npy_read(at("be.npy"), &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.dtype, JG_F32);
    cr_assert_eq(a.shape.ndim, 2);
    cr_assert_eq(((float *)a.data)[0], 1.0f);
    jg_array_free(&a);

    /* Format 2.0: a 4-byte header length. */
    const char v2[] = "\x93NUMPY\x02\x00\x36\x00\x00\x00"
                      "{'descr': '<i4', 'fortran_order': False, 'shape': ()}\n";
    unsigned char file[sizeof v2 - 1 + 4];
    memcpy(file, v2, sizeof v2 - 1);
    memcpy(file + sizeof v2 - 1, (int32_t[]){ -9 }, 4);
    write_bytes(at("v2.npy"), file, sizeof file);
    cr_assert_eq(jg_npy_read(at("v2.npy"), &a, err, sizeof err), JG_OK, "%s", err);
    cr_assert_eq(a.shape.ndim, 0, "shape () is a scalar");
    cr_assert_eq(((int32_t *)a.data)[0], -9);
    jg_array_free(&a);

    int64_t huge[1] = { (int64_t)1 << 40 };
    write_npy(at("h.npy"), "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", huge, 8);
    cr_assert_eq(jg_npy_read(at("h.npy"), &a, err, sizeof err), JG_ERR_DTYPE);
    cr_assert(strstr(err, "does not fit in i32"), "%s", err);
    cr_assert_null(a.data);
}

static void npy_fails(const char *name, jg_status st, const char *part)
{
    jg_array a;
    char err[256] = "";
    cr_assert_eq(jg_npy_read(at(name), &a, err, sizeof err), st, "%s: %s", name, err);
    cr_assert(strstr(err, at(name)), "message names the file: %s", err);
    cr_assert(strstr(err, part), "message '%s' lacks '%s'", err, part);
    cr_assert_null(a.data);
    cr_assert_eq(a.shape.ndim, 0);
}

/* Readers never block on a FIFO (or read a directory): each refuses what is not a regular
 * file, naming it, before reading anything (a FIFO used to block the open forever). */
Test(io_files, readers_refuse_fifos_and_directories, .timeout = 20)
{
    cr_assert_eq(mkfifo(at("fifo"), 0600), 0);
    npy_fails("fifo", JG_ERR_IO, "not a regular file (a FIFO)");
    cr_assert_eq(mkdir(at("sub"), 0700), 0);
    npy_fails("sub", JG_ERR_IO, "not a regular file (a directory)");

    jg_graph *g = jg_graph_new();
    jg_param(g, "w", jg_shape(2), jg_zeros());
    cr_assert_eq(jg_checkpoint_load(g, at("fifo")), JG_ERR_IO);
    cr_assert(strstr(jg_graph_errmsg(g), "not a regular file (a FIFO)"), "%s",
              jg_graph_errmsg(g));
    jg_graph_free(g);

    char err[256] = "";
    const char *y[] = { "loss" };
    cr_assert_eq(jg_plot_csv(at("fifo"), at("plot.svg"), "step", y, 1, false, err, sizeof err),
                 JG_ERR_IO);
    cr_assert(strstr(err, "not a regular file (a FIFO)"), "%s", err);
}

Test(io_files, npy_malformed_files_are_errors)
{
    float v[4] = { 1, 2, 3, 4 };
    write_bytes(at("magic.npy"), "\x93NUMPX\x01\x00\x10\x00{}", 12);
    npy_fails("magic.npy", JG_ERR_IO, "bad magic");
    write_npy(at("dict.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2}", v, 16);
    npy_fails("dict.npy", JG_ERR_IO, "bad header dict");
    write_npy(at("nokey.npy"), "{'descr': '<f4', 'shape': (4,), }", v, 16);
    npy_fails("nokey.npy", JG_ERR_IO, "bad header dict");
    write_npy(at("f2.npy"), "{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", v, 8);
    npy_fails("f2.npy", JG_ERR_IO, "unsupported dtype '<f2'");
    write_npy(at("obj.npy"), "{'descr': '|O', 'fortran_order': False, 'shape': (4,), }", v, 8);
    npy_fails("obj.npy", JG_ERR_IO, "unsupported dtype");
    write_npy(at("fort.npy"), "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", v, 16);
    npy_fails("fort.npy", JG_ERR_IO, "fortran order not supported");
    write_npy(at("short.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v,
              16);
    npy_fails("short.npy", JG_ERR_IO, "truncated data");
    write_npy(at("empty.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", v, 0);
    npy_fails("empty.npy", JG_ERR_IO, "empty arrays are not supported");
    write_bytes(at("hdr.npy"), "\x93NUMPY\x01\x00\xff\x00{'descr'", 17);
    npy_fails("hdr.npy", JG_ERR_IO, "truncated");
    npy_fails("absent.npy", JG_ERR_IO, "cannot open");
    /* Writing into a missing directory fails cleanly too. */
    char err[256] = "";
    jg_array a = { JG_F32, jg_shape(4), v };
    cr_assert_eq(jg_npy_write(at("no/such/dir.npy"), &a, err, sizeof err), JG_ERR_IO);
    cr_assert(strstr(err, "no/such/dir.npy"), "%s", err);
    /* dimensions whose product overflows were written as INT64_MAX elements (reading far
     * past the data) */
    jg_array huge = { .dtype = JG_F32, .shape = jg_shape(1 << 30, 1 << 30, 1 << 30, 1 << 30),
                      .data = a.data };
    cr_assert_eq(jg_npy_write(at("huge.npy"), &huge, err, sizeof err), JG_ERR_SHAPE);
    cr_assert(strstr(err, "more than 2^40 elements"), "%s", err);
}

/* ---------------------------------------------------------------- checkpoints */

/* A small model with f32 and f64 parameters: loss = sum((x w + b)^2) + f32(sum(v^2)). */
static jg_node *build(jg_graph *g)
{
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(2, 3));
    jg_node *w = jg_param(g, "w", jg_shape(3, 4), jg_normal(0, 1));
    jg_node *b = jg_param(g, "b", jg_shape(4), jg_uniform(-1, 1));
    jg_node *v = jg_param_as(g, "v", JG_F64, jg_shape(2), jg_normal(0, 1));
    jg_node *l1 = jg_sum(jg_square(jg_add(jg_matmul(x, w), b)), JG_ALL_AXES, false);
    jg_node *l2 = jg_cast(jg_sum(jg_square(v), JG_ALL_AXES, false), JG_F32);
    return jg_add(l1, l2);
}

static jg_program *train_program(jg_graph *g)
{
    jg_program *p = jg_compile_train(g, build(g), &(jg_train_opts){
        .optimizer = jg_adam(0.05), .compile = { .executor = JG_EXEC_REFERENCE } });
    cr_assert(p, "%s", jg_errmsg(g));
    static const float x[6] = { 1, -2, 0.5f, 3, 0.25f, -1 };
    cr_assert_eq(jg_program_set(p, "x", x, sizeof x), JG_OK, "%s", jg_errmsg(p));
    return p;
}

static size_t param_bytes(jg_node *n)
{
    return (size_t)jg_shape_numel(jg_node_shape(n)) * jg_dtype_size(jg_node_dtype(n));
}

/* Every parameter's bytes, concatenated in store order (malloc'd). */
static unsigned char *snapshot(jg_graph *g, size_t *total)
{
    *total = 0;
    for (int i = 0; i < jg_param_count(g); i++)
        *total += param_bytes(jg_param_at(g, i));
    unsigned char *s = malloc(*total), *p = s;
    for (int i = 0; i < jg_param_count(g); i++) {
        jg_node *n = jg_param_at(g, i);
        cr_assert_eq(jg_param_get(g, jg_node_name(n), p, param_bytes(n)), JG_OK);
        p += param_bytes(n);
    }
    return s;
}

static void assert_same_store(jg_graph *a, jg_graph *b)
{
    cr_assert_eq(jg_param_count(a), jg_param_count(b));
    for (int i = 0; i < jg_param_count(a); i++)
        cr_assert_str_eq(jg_node_name(jg_param_at(a, i)), jg_node_name(jg_param_at(b, i)));
    size_t na, nb;
    unsigned char *sa = snapshot(a, &na), *sb = snapshot(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(sa, sb, na), 0, "stores hold identical bytes");
    free(sa);
    free(sb);
}

Test(io_files, checkpoint_round_trip_with_adam_state)
{
    jg_graph *g = jg_graph_new();
    jg_program *p = train_program(g);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert(jg_param_find(g, "opt.lr") && jg_param_find(g, "opt.w.m") &&
              jg_param_find(g, "opt.v.v"), "Adam state is in the store");
    cr_assert_eq(jg_checkpoint_save(g, at("ck.safetensors")), JG_OK, "%s", jg_errmsg(g));
    cr_assert_eq(count_entries(dir), 1, "no temporary files left behind");

    /* A fresh graph built the same way, but seeded differently so nothing matches by luck. */
    jg_graph *h = jg_graph_new();
    jg_graph_set_seed(h, 99);
    jg_program *q = train_program(h);
    float w0[12], w1[12];
    jg_param_get(g, "w", w0, sizeof w0);
    jg_param_get(h, "w", w1, sizeof w1);
    cr_assert_neq(memcmp(w0, w1, sizeof w0), 0);
    cr_assert_eq(jg_checkpoint_load(h, at("ck.safetensors")), JG_OK, "%s", jg_errmsg(h));
    assert_same_store(g, h);

    /* Training continues identically: the optimiser state came along. */
    cr_assert_eq(jg_program_run(p), JG_OK);
    cr_assert_eq(jg_program_run(q), JG_OK);
    assert_same_store(g, h);

    /* The header is plain safetensors: length, then JSON naming dtype and offsets. */
    size_t n;
    unsigned char *raw = read_bytes(at("ck.safetensors"), &n);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)raw[i] << (8 * i);
    cr_assert_eq((8 + hlen) % 8, 0);
    cr_assert_eq(raw[8], '{');
    cr_assert(strstr((char *)raw + 8,
                     "\"w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}"),
              "%.*s", (int)hlen, raw + 8);
    cr_assert(strstr((char *)raw + 8, "\"opt.lr\":{\"dtype\":\"F64\",\"shape\":[]"));
    free(raw);
    jg_program_free(p);
    jg_program_free(q);
    jg_graph_free(g);
    jg_graph_free(h);
}

/* A plain graph for the corruption cases: w f32 [2,3], v f64 [2]. */
static jg_graph *small_graph(void)
{
    jg_graph *g = jg_graph_new();
    jg_param(g, "w", jg_shape(2, 3), jg_constant(7));
    jg_param_as(g, "v", JG_F64, jg_shape(2), jg_constant(-3));
    cr_assert_eq(jg_graph_status(g), JG_OK, "%s", jg_errmsg(g));
    return g;
}

/* A safetensors file from a header and data bytes; hlen_override != 0 replaces the length. */
static void write_st(const char *path, const char *json, const void *data, size_t n,
                     uint64_t hlen_override)
{
    uint64_t hlen = hlen_override ? hlen_override : strlen(json);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(hlen >> (8 * i));
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(len8, 1, 8, f);
    fwrite(json, 1, strlen(json), f);
    fwrite(data, 1, n, f);
    fclose(f);
}

static const char good_json[] =
    "{\"__metadata__\": {\"format\": \"pt\"},\n"
    " \"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},\n"
    " \"v\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [24, 40]}}";

static unsigned char good_data[40];

static void fill_good_data(void)
{
    float w[6] = { 1, 2, 3, 4, 5, 6 };
    double v[2] = { 0.5, -0.25 };
    memcpy(good_data, w, 24);
    memcpy(good_data + 24, v, 16);
}

Test(io_files, checkpoint_loads_a_hand_written_file)
{
    fill_good_data();
    jg_graph *g = small_graph();
    write_st(at("ok.st"), good_json, good_data, sizeof good_data, 0);
    cr_assert_eq(jg_checkpoint_load(g, at("ok.st")), JG_OK, "%s", jg_errmsg(g));
    float w[6];
    double v[2];
    jg_param_get(g, "w", w, sizeof w);
    jg_param_get(g, "v", v, sizeof v);
    cr_assert_eq(w[5], 6.0f);
    cr_assert_eq(v[1], -0.25);
    jg_graph_free(g);
}

Test(io_files, checkpoint_names_with_json_escapes)
{
    jg_graph *g = jg_graph_new();
    jg_param(g, "\xc3\xa9t\xc3\xa9/\"q\"", jg_shape(1), jg_zeros());
    float one = 1;
    write_st(at("esc.st"), "{\"\\u00e9t\\u00E9\\/\\\"q\\\"\": {\"dtype\": \"F32\", \"shape\": [1], "
             "\"data_offsets\": [0, 4]}}", &one, 4, 0);
    cr_assert_eq(jg_checkpoint_load(g, at("esc.st")), JG_OK, "%s", jg_errmsg(g));
    float got = 0;
    jg_param_get(g, "\xc3\xa9t\xc3\xa9/\"q\"", &got, sizeof got);
    cr_assert_eq(got, 1.0f);
    jg_graph_free(g);
}

/* Loads `file` into a fresh small graph and checks: the status, the message (names the
 * function, the file and `part`), the store unchanged and the graph not poisoned. */
static void load_fails(const char *file, jg_status st, const char *part)
{
    jg_graph *g = small_graph();
    size_t n0, n1;
    unsigned char *before = snapshot(g, &n0);
    jg_status got = jg_checkpoint_load(g, at(file));
    const char *msg = jg_errmsg(g);
    cr_assert_eq(got, st, "%s: status %s, message: %s", file, jg_status_str(got), msg);
    cr_assert(strstr(msg, "jg_checkpoint_load"), "%s", msg);
    cr_assert(strstr(msg, at(file)), "message names the file: %s", msg);
    cr_assert(strstr(msg, part), "message '%s' lacks '%s'", msg, part);
    unsigned char *after = snapshot(g, &n1);
    cr_assert_eq(memcmp(before, after, n0), 0, "%s: the store is unchanged", file);
    cr_assert_eq(jg_graph_status(g), JG_OK, "a failed load does not poison the graph");
    /* The graph still builds and compiles. */
    jg_node *s = jg_sum(jg_param_find(g, "w"), JG_ALL_AXES, false);
    jg_program *p = jg_compile(g, &s, 1, &(jg_opts){ .executor = JG_EXEC_REFERENCE });
    cr_assert(p, "%s", jg_errmsg(g));
    jg_program_free(p);
    free(before);
    free(after);
    jg_graph_free(g);
}

#define W_ENTRY "\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}"
#define V_ENTRY "\"v\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [24, 40]}"

/* The header parser (jansson) is held to what a safetensors header may say. */
Test(io_files, checkpoint_header_strictness)
{
    fill_good_data();
    const unsigned char *d = good_data;
    write_st(at("key.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": "
             "[0, 24], \"extra\": 1}, " V_ENTRY "}", d, 40, 0);
    load_fails("key.st", JG_ERR_IO, "unknown key in tensor entry 'w'");
    write_st(at("meta.st"), "{\"__metadata__\": {\"format\": 1}, " W_ENTRY ", " V_ENTRY "}", d,
             40, 0);
    load_fails("meta.st", JG_ERR_IO, "__metadata__ 'format' is not a string");
    write_st(at("neg.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -3], "
             "\"data_offsets\": [0, 24]}, " V_ENTRY "}", d, 40, 0);
    load_fails("neg.st", JG_ERR_IO, "expected an integer");
    write_st(at("big.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
             "\"data_offsets\": [0, 9007199254740992]}, " V_ENTRY "}", d, 40, 0);
    load_fails("big.st", JG_ERR_IO, "data_offsets must hold two integers");
    write_st(at("utf8.st"), "{\"w\xff\": {\"dtype\": \"F32\", \"shape\": [1], "
             "\"data_offsets\": [0, 4]}, " W_ENTRY ", " V_ENTRY "}", d, 40, 0);
    load_fails("utf8.st", JG_ERR_IO, "bad JSON header");
    write_st(at("nul.st"), "{\"w\\u0000x\": {\"dtype\": \"F32\", \"shape\": [1], "
             "\"data_offsets\": [0, 4]}, " W_ENTRY ", " V_ENTRY "}", d, 40, 0);
    load_fails("nul.st", JG_ERR_IO, "bad JSON header");
    write_st(at("arr.st"), "[" W_ENTRY "]", d, 40, 0);
    load_fails("arr.st", JG_ERR_IO, "bad JSON header");
    /* what would make the JSON tree huge is refused before it is built */
    write_st(at("list.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1,2,3], "
             "\"data_offsets\": [0, 24]}, " V_ENTRY "}", d, 40, 0);
    load_fails("list.st", JG_ERR_IO, "a list longer than any shape");
    write_st(at("deep.st"), "{\"w\": {\"dtype\": [[[[1]]]]}}", d, 40, 0);
    load_fails("deep.st", JG_ERR_IO, "nested deeper than a safetensors header");
}

Test(io_files, checkpoint_corruption_cases_leave_the_store_untouched)
{
    fill_good_data();
    const unsigned char *d = good_data;
    write_st(at("hlen.st"), good_json, d, 40, (uint64_t)1 << 40);
    load_fails("hlen.st", JG_ERR_IO, "bad header length");
    write_st(at("hlen2.st"), good_json, d, 40, strlen(good_json) + 41);
    load_fails("hlen2.st", JG_ERR_IO, "bad header length");
    write_bytes(at("tiny.st"), "\x05\x00\x00", 3);
    load_fails("tiny.st", JG_ERR_IO, "truncated");
    write_st(at("json1.st"), "{" W_ENTRY ", " V_ENTRY, d, 40, 0);
    load_fails("json1.st", JG_ERR_IO, "bad JSON header");
    write_st(at("json2.st"), "{" W_ENTRY ", " V_ENTRY ",}", d, 40, 0);
    load_fails("json2.st", JG_ERR_IO, "bad JSON header");
    write_st(at("json3.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3]}, " V_ENTRY "}", d,
             40, 0);
    load_fails("json3.st", JG_ERR_IO, "lacks dtype, shape or data_offsets");
    write_st(at("json4.st"), "{" W_ENTRY ", " V_ENTRY "} x", d, 40, 0);
    load_fails("json4.st", JG_ERR_IO, "end of file expected");
    write_st(at("json5.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3.0], "
             "\"data_offsets\": [0, 24]}, " V_ENTRY "}", d, 40, 0);
    load_fails("json5.st", JG_ERR_IO, "expected an integer");
    write_st(at("dup.st"), "{" W_ENTRY ", " W_ENTRY ", " V_ENTRY "}", d, 40, 0);
    load_fails("dup.st", JG_ERR_IO, "duplicate object key");
    write_st(at("unknown.st"), "{" W_ENTRY ", " V_ENTRY ", \"u\": {\"dtype\": \"F32\", "
             "\"shape\": [1], \"data_offsets\": [40, 44]}}", (unsigned char[44]){ 0 }, 44, 0);
    load_fails("unknown.st", JG_ERR_ARG, "tensor 'u' is not a parameter of the graph");
    write_st(at("shape.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [3, 2], "
             "\"data_offsets\": [0, 24]}, " V_ENTRY "}", d, 40, 0);
    load_fails("shape.st", JG_ERR_SHAPE, "tensor 'w': shape [3,2] in the file, [2,3] in the graph");
    write_st(at("rank.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,2,3], "
             "\"data_offsets\": [0, 24]}, " V_ENTRY "}", d, 40, 0);
    load_fails("rank.st", JG_ERR_SHAPE, "more than 8 dimensions");
    write_st(at("dtype.st"), "{\"w\": {\"dtype\": \"F64\", \"shape\": [2, 3], "
             "\"data_offsets\": [0, 48]}, \"v\": {\"dtype\": \"F64\", \"shape\": [2], "
             "\"data_offsets\": [48, 64]}}", (unsigned char[64]){ 0 }, 64, 0);
    load_fails("dtype.st", JG_ERR_DTYPE, "tensor 'w': dtype F64 in the file, F32 in the graph");
    write_st(at("bf16.st"), "{\"w\": {\"dtype\": \"BF16\", \"shape\": [2, 3], "
             "\"data_offsets\": [0, 12]}, " V_ENTRY "}", d, 40, 0);
    load_fails("bf16.st", JG_ERR_DTYPE, "dtype BF16 in the file");
    write_st(at("trunc.st"), good_json, d, 30, 0);
    load_fails("trunc.st", JG_ERR_IO, "truncated: tensor 'v' ends at byte 40");
    write_st(at("missing.st"), "{" W_ENTRY "}", d, 24, 0);
    load_fails("missing.st", JG_ERR_ARG, "parameter 'v' of the graph is missing from the file");
    write_st(at("overlap.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
             "\"data_offsets\": [0, 24]}, \"v\": {\"dtype\": \"F64\", \"shape\": [2], "
             "\"data_offsets\": [16, 32]}}", d, 40, 0);
    load_fails("overlap.st", JG_ERR_IO, "overlap");
    write_st(at("span.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
             "\"data_offsets\": [0, 20]}, " V_ENTRY "}", d, 40, 0);
    load_fails("span.st", JG_ERR_IO, "span 20 bytes");
    write_st(at("rev.st"), "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
             "\"data_offsets\": [24, 0]}, " V_ENTRY "}", d, 40, 0);
    load_fails("rev.st", JG_ERR_IO, "reversed");
    load_fails("absent.st", JG_ERR_IO, "cannot open");
}

Test(io_files, checkpoint_truncated_real_file)
{
    jg_graph *g = small_graph();
    cr_assert_eq(jg_checkpoint_save(g, at("real.st")), JG_OK, "%s", jg_errmsg(g));
    size_t n;
    unsigned char *raw = read_bytes(at("real.st"), &n);
    write_bytes(at("cut.st"), raw, n - 3);
    free(raw);
    jg_graph_free(g);
    load_fails("cut.st", JG_ERR_IO, "truncated");
}

Test(io_files, checkpoint_load_keeps_a_sticky_error_and_does_not_add_one)
{
    /* A graph that already holds an error still saves; the failed load message stays behind
     * the sticky error (which jg_errmsg shows first). */
    jg_graph *g = small_graph();
    jg_matmul(jg_param_find(g, "w"), jg_param_find(g, "w"));
    cr_assert_eq(jg_graph_status(g), JG_ERR_SHAPE);
    cr_assert_eq(jg_checkpoint_load(g, at("none.st")), JG_ERR_IO);
    cr_assert_eq(jg_graph_status(g), JG_ERR_SHAPE);
    jg_graph_clear_error(g);
    cr_assert_eq(jg_checkpoint_load(g, NULL), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "path is NULL"));
    cr_assert_eq(jg_checkpoint_load(NULL, "x"), JG_ERR_ARG);
    cr_assert_eq(jg_checkpoint_save(NULL, "x"), JG_ERR_ARG);
    jg_graph_free(g);
}

Test(io_files, failed_saves_leave_the_existing_file_intact)
{
    jg_graph *g = small_graph();
    /* Into a missing directory: an error naming the path. */
    cr_assert_eq(jg_checkpoint_save(g, at("no/such/ck.st")), JG_ERR_IO);
    cr_assert(strstr(jg_errmsg(g), "no/such/ck.st"), "%s", jg_errmsg(g));
    cr_assert_eq(jg_graph_status(g), JG_OK);

    /* A write that fails halfway (file size limit) must not touch the saved file. */
    cr_assert_eq(jg_checkpoint_save(g, at("ck.st")), JG_OK, "%s", jg_errmsg(g));
    size_t n0;
    unsigned char *before = read_bytes(at("ck.st"), &n0);
    jg_graph *big = jg_graph_new();
    jg_param(big, "w", jg_shape(2, 3), jg_zeros());
    jg_param_as(big, "v", JG_F64, jg_shape(2), jg_zeros());
    jg_param(big, "huge", jg_shape(256, 1024), jg_zeros()); /* 1 MiB */
    signal(SIGXFSZ, SIG_IGN); /* Criterion runs each test in its own process */
    struct rlimit rl = { .rlim_cur = 64 * 1024, .rlim_max = RLIM_INFINITY };
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
    cr_assert_eq(jg_checkpoint_save(big, at("ck.st")), JG_ERR_IO);
    rl.rlim_cur = RLIM_INFINITY;
    setrlimit(RLIMIT_FSIZE, &rl);
    cr_assert(strstr(jg_errmsg(big), at("ck.st")), "%s", jg_errmsg(big));
    size_t n1;
    unsigned char *after = read_bytes(at("ck.st"), &n1);
    cr_assert_eq(n0, n1);
    cr_assert_eq(memcmp(before, after, n0), 0, "the old checkpoint is intact");
    cr_assert_eq(count_entries(dir), 1, "the temporary file was removed");
    cr_assert_eq(jg_checkpoint_load(g, at("ck.st")), JG_OK, "%s", jg_errmsg(g));

    /* A target that cannot be replaced (a directory): the rename fails, nothing is left. */
    mkdir(at("d"), 0755);
    write_bytes(at("d/keep"), "x", 1);
    cr_assert_eq(jg_checkpoint_save(g, at("d")), JG_ERR_IO);
    cr_assert_eq(count_entries(dir), 2);
    cr_assert_eq(count_entries(at("d")), 1);
    free(before);
    free(after);
    jg_graph_free(g);
    jg_graph_free(big);
}

/* A name the loader cannot read is refused by the saver (it used to save, then refuse to
 * load: "string too long"); 1023 bytes round-trip. */
Test(io_files, checkpoint_saver_and_loader_agree_on_name_lengths)
{
    char name[1100];
    memset(name, 'a', sizeof name);
    name[1023] = '\0';
    jg_graph *g = jg_graph_new();
    jg_param(g, name, jg_shape(2), jg_constant(1));
    cr_assert_eq(jg_checkpoint_save(g, at("long.st")), JG_OK, "%s", jg_errmsg(g));
    cr_assert_eq(jg_checkpoint_load(g, at("long.st")), JG_OK, "%s", jg_errmsg(g));
    name[1023] = 'a';
    name[1024] = '\0';
    jg_param(g, name, jg_shape(2), jg_constant(1));
    cr_assert_eq(jg_checkpoint_save(g, at("long.st")), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "a name of 1024 bytes") &&
                  strstr(jg_errmsg(g), "at most 1023"), "%s", jg_errmsg(g));
    /* and names that are not JSON text, or the format's own key */
    jg_graph *h = jg_graph_new();
    jg_param(h, "w\xff", jg_shape(2), jg_zeros());
    cr_assert_eq(jg_checkpoint_save(h, at("utf8.st")), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(h), "not valid UTF-8"), "%s", jg_errmsg(h));
    jg_graph_free(h);
    h = jg_graph_new();
    jg_param(h, "__metadata__", jg_shape(2), jg_zeros());
    cr_assert_eq(jg_checkpoint_save(h, at("meta.st")), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(h), "reserved"), "%s", jg_errmsg(h));
    jg_graph_free(h);
    jg_graph_free(g);
}

/* A file written two minutes ago. */
static void write_old(const char *path)
{
    write_bytes(path, "partial", 7);
    struct timespec t[2] = { { .tv_sec = time(NULL) - 120 }, { .tv_sec = time(NULL) - 120 } };
    cr_assert_eq(utimensat(AT_FDCWD, path, t, 0), 0);
}

/* The temporaries of a killed save ("<target>.jgtmp.<host>.<pid>.XXXXXX", each the target's
 * size) are removed by the next successful save of the same target when their process is
 * gone and nobody wrote them for a minute; a live process's, a fresh one, another host's and
 * other files are kept. */
Test(io_files, a_save_removes_temporaries_of_dead_writers)
{
    char host[ATOMIC_HOST_SIZE], stale[128], live[128], fresh[128], other_host[128];
    atomic_file_host_tag(host);
    /* 99999999 is above any pid_max: no process has it */
    snprintf(stale, sizeof stale, "ck.st.jgtmp.%s.99999999.Ab12Cd", host);
    snprintf(live, sizeof live, "ck.st.jgtmp.%s.1.Ef34Gh", host); /* pid 1 always exists */
    snprintf(fresh, sizeof fresh, "ck.st.jgtmp.%s.99999999.Ij56Kl", host);
    snprintf(other_host, sizeof other_host, "ck.st.jgtmp.%sx.99999999.Mn78Op", host);
    write_old(at(stale));
    write_old(at(live));
    write_bytes(at(fresh), "partial", 7);
    write_old(at(other_host));
    write_bytes(at("ck.st.notes"), "x", 1);
    jg_graph *g = small_graph();
    cr_assert_eq(jg_checkpoint_save(g, at("ck.st")), JG_OK, "%s", jg_errmsg(g));
    struct stat st;
    cr_assert_neq(stat(at(stale), &st), 0, "the dead writer's temporary is gone");
    cr_assert_eq(stat(at(live), &st), 0, "a live writer's is kept");
    cr_assert_eq(stat(at(fresh), &st), 0, "one written less than a minute ago is kept");
    cr_assert_eq(stat(at(other_host), &st), 0, "another host's is kept");
    cr_assert_eq(stat(at("ck.st.notes"), &st), 0);
    jg_graph_free(g);
}

/* ---------------------------------------------------------------- PNG */

/* Decodes a PNG with libpng's simplified API into 8-bit pixels of `format`. */
static unsigned char *decode(const char *path, png_uint_32 format, int *w, int *h)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&img, path), "%s: %s", path, img.message);
    img.format = format;
    unsigned char *buf = malloc(PNG_IMAGE_SIZE(img));
    cr_assert(png_image_finish_read(&img, NULL, buf, 0, NULL), "%s", img.message);
    *w = (int)img.width;
    *h = (int)img.height;
    return buf;
}

Test(io_files, png_gray_scales_and_clamps)
{
    float px[6] = { -1, 0, 0.5f, 1, 2, NAN }; /* 3 wide, 2 high */
    cr_assert_eq(jg_png_write_gray(at("g.png"), px, 3, 2, 0, 1), JG_OK);
    int w, h;
    unsigned char *b = decode(at("g.png"), PNG_FORMAT_GRAY, &w, &h);
    cr_assert_eq(w, 3);
    cr_assert_eq(h, 2);
    unsigned char want[6] = { 0, 0, 128, 255, 255, 0 };
    for (int i = 0; i < 6; i++)
        cr_assert_eq(b[i], want[i], "pixel %d: %d, want %d", i, b[i], want[i]);
    free(b);
    cr_assert_eq(count_entries(dir), 1);
    cr_assert_eq(jg_png_write_gray(at("g.png"), px, 0, 2, 0, 1), JG_ERR_ARG);
    cr_assert_eq(jg_png_write_gray(at("g.png"), px, 3, 2, 1, 1), JG_ERR_ARG);
    cr_assert_eq(jg_png_write_gray(at("g.png"), NULL, 3, 2, 0, 1), JG_ERR_ARG);
    cr_assert_eq(jg_png_write_gray(at("no/dir.png"), px, 3, 2, 0, 1), JG_ERR_IO);
}

Test(io_files, png_grid_normalises_each_image)
{
    /* Three 2x2 images in 2 columns with 1 pixel of padding: 7 x 7 pixels. */
    float imgs[12] = { 0, 1, 2, 3,  10, 10, 10, 10,  -4, 4, 0, 4 };
    cr_assert_eq(jg_png_write_grid(at("grid.png"), imgs, 3, 2, 2, 2, 1), JG_OK);
    int w, h;
    unsigned char *b = decode(at("grid.png"), PNG_FORMAT_GRAY, &w, &h);
    cr_assert_eq(w, 7);
    cr_assert_eq(h, 7);
    cr_assert_eq(b[0 * 7 + 0], 0, "padding is black");
    cr_assert_eq(b[1 * 7 + 1], 0, "image 0 min");
    cr_assert_eq(b[2 * 7 + 2], 255, "image 0 max");
    cr_assert_eq(b[1 * 7 + 2], 85);
    cr_assert_eq(b[1 * 7 + 4], 128, "a constant image is mid-grey");
    cr_assert_eq(b[4 * 7 + 1], 0, "image 2 min");
    cr_assert_eq(b[4 * 7 + 2], 255, "image 2 max");
    cr_assert_eq(b[5 * 7 + 1], 128);
    cr_assert_eq(b[4 * 7 + 4], 0, "empty grid cell is black");
    free(b);
    cr_assert_eq(jg_png_write_grid(at("grid.png"), imgs, 3, 2, 2, 0, 1), JG_ERR_ARG);
}

Test(io_files, png_heatmap_is_blue_white_red)
{
    float v[4] = { -2, 0, 2, 1 }; /* 2 wide, 2 high */
    cr_assert_eq(jg_png_write_heatmap(at("heat.png"), v, 2, 2), JG_OK);
    int w, h;
    unsigned char *b = decode(at("heat.png"), PNG_FORMAT_RGB, &w, &h);
    cr_assert_eq(w, 2);
    cr_assert_eq(h, 2);
    unsigned char want[4][3] = {
        { 0, 0, 255 }, { 255, 255, 255 }, { 255, 0, 0 }, { 255, 128, 128 },
    };
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++)
            cr_assert_eq(b[3 * i + c], want[i][c], "pixel %d channel %d: %d", i, c, b[3 * i + c]);
    free(b);
}

/* ---------------------------------------------------------------- CSV */

Test(io_files, csv_header_written_once_across_opens)
{
    const char *cols[3] = { "epoch", "loss", "acc,top1" };
    jg_csv *c = jg_csv_open(at("m.csv"), cols, 3);
    cr_assert(c);
    cr_assert_eq(jg_csv_row(c, (double[]){ 1, 0.5, 0.25 }), JG_OK);
    cr_assert_eq(jg_csv_close(c), JG_OK);
    c = jg_csv_open(at("m.csv"), cols, 3);
    cr_assert(c);
    cr_assert_eq(jg_csv_row(c, (double[]){ 2, 0.125, 1e-12 }), JG_OK);
    cr_assert_eq(jg_csv_close(c), JG_OK);
    size_t n;
    char *s = (char *)read_bytes(at("m.csv"), &n);
    cr_assert_str_eq(s, "epoch,loss,\"acc,top1\"\n1,0.5,0.25\n2,0.125,1e-12\n");
    free(s);
    cr_assert_eq(jg_csv_close(NULL), JG_OK);
    cr_assert_null(jg_csv_open(at("no/dir.csv"), cols, 3));
    cr_assert_null(jg_csv_open(at("x.csv"), cols, 0));
    cr_assert_eq(jg_csv_row(NULL, (double[]){ 1 }), JG_ERR_ARG);
}

/* ---------------------------------------------------------------- progress */

Test(io_files, progress_plain_lines_when_not_a_terminal)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(f);
    jg_progress *p = jg_progress_new("epoch 3", 250, f);
    cr_assert(p);
    for (int64_t i = 1; i <= 250; i++)
        jg_progress_update(p, i, "loss 0.32");
    jg_progress_done(p);
    jg_progress_done(NULL);
    fclose(f);
    cr_assert(strstr(buf, "epoch 3"), "%s", buf);
    cr_assert(strstr(buf, "/250"), "%s", buf);
    cr_assert(strstr(buf, "250/250 100.0%"), "%s", buf);
    cr_assert(strstr(buf, "loss 0.32"), "%s", buf);
    cr_assert_null(strchr(buf, '\r'), "no carriage returns in a log");
    int lines = 0;
    for (char *c = buf; *c; c++)
        lines += *c == '\n';
    cr_assert_eq(lines, 10, "one line per 10%%, got %d:\n%s", lines, buf);
    free(buf);

    /* Unknown total: only the final count. */
    f = open_memstream(&buf, &len);
    p = jg_progress_new("items", 0, f);
    for (int64_t i = 1; i <= 5; i++)
        jg_progress_update(p, i, NULL);
    jg_progress_done(p);
    fclose(f);
    cr_assert(strstr(buf, "items 5"), "%s", buf);
    free(buf);
}

Test(io_files, progress_redraws_one_line_on_a_terminal)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        cr_skip_test("no pseudo-terminal available");
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    cr_assert(slave >= 0);
    FILE *f = fdopen(slave, "w");
    cr_assert(f);
    jg_progress *p = jg_progress_new("train", 1000, f);
    for (int64_t i = 1; i <= 1000; i++)
        jg_progress_update(p, i, "loss 0.10");
    jg_progress_done(p);
    fclose(f);
    char buf[4096];
    ssize_t n = 0, r;
    fcntl(master, F_SETFL, O_NONBLOCK);
    while (n < (ssize_t)sizeof buf - 1 &&
           (r = read(master, buf + n, sizeof buf - 1 - (size_t)n)) > 0)
        n += r;
    close(master);
    buf[n > 0 ? n : 0] = '\0';
    cr_assert(strstr(buf, "\rtrain "), "%s", buf);
    cr_assert(strstr(buf, "1000/1000 100.0%"), "%s", buf);
    cr_assert(strstr(buf, "loss 0.10"), "%s", buf);
    int draws = 0;
    for (char *c = buf; (c = strstr(c, "train ")); c++)
        draws++;
    /* 1000 updates well within 0.1 s: the first draw and the final one (maybe one more). */
    cr_assert(draws >= 2 && draws <= 4, "%d draws:\n%s", draws, buf);
}
