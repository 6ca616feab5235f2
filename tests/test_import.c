/* jg_safetensors_import / jg_safetensors_read (src/io/import.c): safetensors files written
 * here byte by byte as PyTorch's would be (F32, F64, F16, BF16, an I64 counter), imported
 * through a name map with transposes and summed entries, or by their own names; every error
 * names the tensor or parameter and changes no parameter. */
#include "support/support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TestSuite(import);

typedef struct tensor {
    const char *name, *dtype;
    jg_shape shape;
    const void *data;
    size_t bytes;
} tensor;

/* Writes a safetensors file of the given tensors to a fresh temporary path. */
static void write_st(char *path, const tensor *t, int n)
{
    strcpy(path, "/tmp/jg_test_import_XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    char header[4096];
    int k = snprintf(header, sizeof header, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        k += snprintf(header + k, sizeof header - (size_t)k, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                      t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].shape.ndim; d++)
            k += snprintf(header + k, sizeof header - (size_t)k, "%s%lld", d ? "," : "",
                          (long long)t[i].shape.dim[d]);
        k += snprintf(header + k, sizeof header - (size_t)k, "],\"data_offsets\":[%zu,%zu]}", off,
                      off + t[i].bytes);
        off += t[i].bytes;
    }
    k += snprintf(header + k, sizeof header - (size_t)k, "}");
    FILE *f = fdopen(fd, "wb");
    uint64_t len = (uint64_t)k;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(len >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, (size_t)k, f);
    for (int i = 0; i < n; i++)
        fwrite(t[i].data, 1, t[i].bytes, f);
    fclose(f);
}

/* fc1.weight [3, 2] (nn.Linear(2, 3), F32), fc1.bias [3] (F64), a BF16 and an F16 vector,
 * an RNN's two biases, and a BatchNorm's I64 counter. */
static const float W[6] = { 1, 2, 3, 4, 5, 6 };
static const double B[3] = { 0.5, -0.25, 8 };
static const uint16_t BF[2] = { 0x3fc0, 0xc080 };  /* 1.5, -4 */
static const uint16_t HF[3] = { 0x3c00, 0x0001, 0xfc00 }; /* 1, 2^-24, -inf */
static const float BIH[2] = { 1, 2 }, BHH[2] = { 10, 20 };
static const int64_t COUNT[1] = { 7 };

static void write_model(char *path)
{
    tensor t[] = {
        { "fc1.weight", "F32", jg_shape(3, 2), W, sizeof W },
        { "fc1.bias", "F64", jg_shape(3), B, sizeof B },
        { "v.bf", "BF16", jg_shape(2), BF, sizeof BF },
        { "v.half", "F16", jg_shape(3), HF, sizeof HF },
        { "rnn.bias_ih_l0", "F32", jg_shape(2), BIH, sizeof BIH },
        { "rnn.bias_hh_l0", "F32", jg_shape(2), BHH, sizeof BHH },
        { "bn.num_batches_tracked", "I64", jg_shape(1), COUNT, sizeof COUNT },
    };
    write_st(path, t, 7);
}

Test(import, a_name_map_with_transposes_sums_and_conversions)
{
    char path[64];
    write_model(path);
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param(g, "w1", jg_shape(2, 3), jg_zeros()); /* [in, out] */
    jg_node *b = jg_param_as(g, "b1", JG_F64, jg_shape(3), jg_zeros());
    jg_node *bf = jg_param_as(g, "bf", JG_F64, jg_shape(2), jg_zeros());
    jg_node *hf = jg_param(g, "hf", jg_shape(3), jg_zeros());
    jg_node *rb = jg_param(g, "rnn.b", jg_shape(2), jg_zeros());
    jg_node *keep = jg_param(g, "untouched", jg_shape(1), jg_constant(3));
    jg_tensor_map map[] = {
        { "fc1.weight", "w1", true }, { "fc1.bias", "b1", false }, { "v.bf", "bf", false },
        { "v.half", "hf", false },    { "rnn.bias_ih_l0", "rnn.b", false },
        { "rnn.bias_hh_l0", "rnn.b", false },
    };
    cr_assert_eq(jg_safetensors_import(g, path, map, 6), JG_OK, "%s", jg_errmsg(g));
    t_expect(w, jg_shape(2, 3), (double[]){ 1, 3, 5, 2, 4, 6 });
    t_expect(b, jg_shape(3), B);
    t_expect(bf, jg_shape(2), (double[]){ 1.5, -4 });
    double *h = t_eval(hf);
    cr_assert(h[0] == 1 && h[1] == (double)(float)ldexp(1, -24) && h[2] == -INFINITY);
    free(h);
    t_expect(rb, jg_shape(2), (double[]){ 11, 22 });
    t_expect(keep, jg_shape(1), (double[]){ 3 });
    /* created with zeros, then imported: the lint no longer calls the weight constant */
    jg_node *in = jg_input(g, "in", JG_F32, jg_shape(5, 2));
    jg_node *out = jg_matmul(in, w);
    jg_program *p = jg_compile(g, &out, 1, &(jg_opts){ .executor = JG_EXEC_REFERENCE });
    cr_assert(p && !strstr(jg_program_warnings(p), "symmetry"), "%s",
              p ? jg_program_warnings(p) : jg_errmsg(g));
    jg_program_free(p);
    /* one tensor as an array */
    jg_array a;
    char err[256];
    cr_assert_eq(jg_safetensors_read(path, "fc1.weight", JG_F64, &a, err, sizeof err), JG_OK,
                 "%s", err);
    cr_assert_eq(a.dtype, JG_F64);
    cr_assert(a.shape.ndim == 2 && a.shape.dim[0] == 3 && a.shape.dim[1] == 2);
    cr_assert(((double *)a.data)[5] == 6);
    jg_array_free(&a);
    cr_assert_eq(jg_safetensors_read(path, "bn.num_batches_tracked", JG_F32, &a, err,
                                     sizeof err), JG_ERR_DTYPE);
    cr_assert(strstr(err, "not a float tensor") && !a.data, "%s", err);
    cr_assert_eq(jg_safetensors_read(path, "nope", JG_F32, &a, err, sizeof err), JG_ERR_ARG);
    cr_assert(strstr(err, "no tensor 'nope'"), "%s", err);
    jg_graph_free(g);
    unlink(path);
}

/* Each failure names what is wrong and leaves every parameter as it was. */
Test(import, errors_change_nothing)
{
    char path[64];
    write_model(path);
    jg_graph *g = jg_graph_new();
    jg_param(g, "w1", jg_shape(2, 3), jg_constant(-1));
    jg_param_as(g, "b1", JG_F64, jg_shape(3), jg_constant(-1));
    struct { jg_tensor_map m[2]; jg_status st; const char *msg; } c[] = {
        { { { "fc1.bias", "b1", false }, { "fc1.weight", "w1", false } }, JG_ERR_SHAPE,
          "tensor 'fc1.weight' is [3,2], parameter 'w1' [2,3] (a PyTorch [out, in] weight? "
          "map it with transpose)" },
        { { { "fc1.bias", "b1", false }, { "fc9.weight", "w1", true } }, JG_ERR_ARG,
          "no tensor 'fc9.weight' in the file" },
        { { { "fc1.bias", "b1", false }, { "fc1.weight", "w9", true } }, JG_ERR_ARG,
          "tensor 'fc1.weight': no parameter 'w9' in the graph" },
        { { { "fc1.bias", "b1", false }, { "bn.num_batches_tracked", "b1", false } },
          JG_ERR_DTYPE, "tensor 'bn.num_batches_tracked' is I64" },
        { { { "fc1.bias", "b1", false }, { "fc1.bias", "b1", true } }, JG_ERR_SHAPE,
          "transpose asked, but parameter 'b1' is [3], not 2-D" },
    };
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(jg_safetensors_import(g, path, c[i].m, 2), c[i].st, "case %d: %s", i,
                     jg_errmsg(g));
        cr_assert(strstr(jg_errmsg(g), "jg_safetensors_import: /tmp/jg_test_import_") &&
                  strstr(jg_errmsg(g), c[i].msg), "case %d: %s", i, jg_errmsg(g));
        t_expect(jg_param_find(g, "b1"), jg_shape(3), (double[]){ -1, -1, -1 });
    }
    /* by own names: the I64 counter (and the others) have no parameter */
    cr_assert_eq(jg_safetensors_import(g, path, NULL, 0), JG_ERR_ARG);
    cr_assert(strstr(jg_errmsg(g), "(pass a name map)"), "%s", jg_errmsg(g));
    cr_assert_eq(jg_safetensors_import(g, "/nonexistent/x.safetensors", NULL, 0), JG_ERR_IO);
    cr_assert_eq(jg_safetensors_import(g, path, NULL, 3), JG_ERR_ARG);
    cr_assert_eq(jg_safetensors_import(g, NULL, NULL, 0), JG_ERR_ARG);
    cr_assert_eq(jg_graph_status(g), JG_OK, "no failure poisons the graph");
    t_expect(jg_param_find(g, "w1"), jg_shape(2, 3), (double[]){ -1, -1, -1, -1, -1, -1 });
    jg_graph_free(g);
    unlink(path);
}

Test(import, by_own_names)
{
    char path[64];
    tensor t[] = { { "fc1.w", "F32", jg_shape(3, 2), W, sizeof W },
                   { "fc1.b", "F64", jg_shape(3), B, sizeof B } };
    write_st(path, t, 2);
    jg_graph *g = jg_graph_new();
    jg_node *w = jg_param_as(g, "fc1.w", JG_F64, jg_shape(3, 2), jg_zeros());
    jg_node *b = jg_param(g, "fc1.b", jg_shape(3), jg_zeros());
    cr_assert_eq(jg_safetensors_import(g, path, NULL, 0), JG_OK, "%s", jg_errmsg(g));
    t_expect(w, jg_shape(3, 2), (double[]){ 1, 2, 3, 4, 5, 6 });
    t_expect(b, jg_shape(3), (double[]){ 0.5, -0.25, 8 });
    jg_graph_free(g);
    unlink(path);
}
