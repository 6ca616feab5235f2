/* A CNN trained in PyTorch (train_cnn.py), loaded into jitgrad from its safetensors
 * state_dict, reproduces PyTorch's logits, loss and gradients in f64.
 *
 *     python3 examples/from_pytorch/train_cnn.py OUT      (trains, writes the two files)
 *     build/from_pytorch_cnn OUT/model.safetensors OUT/reference.safetensors
 *
 * The port, layer by layer: nn.Conv2d keeps its [out, in, kh, kw] weight and jg_conv2d takes
 * the same; nn.BatchNorm2d's weight, bias and running statistics are jg_batchnorm's gamma,
 * beta, running_mean and running_var; nn.Linear's [out, in] weight goes to jg_linear as it is;
 * F.avg_pool2d's ceil_mode and count_include_pad=False are jg_pool_opts' ceil_mode and
 * exclude_pad. The float32 weights convert exactly to the f64 parameters, so the two
 * frameworks compute the same function: every output is checked to 1e-10 relative to its
 * largest value. Exits 1 when one is not. */
#include <jitgrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                         \
    do {                                                                                    \
        jg_status st_ = (call);                                                             \
        if (st_ != JG_OK) {                                                                 \
            fprintf(stderr, "from_pytorch_cnn: %s\n", jg_errmsg(g));                        \
            return 1;                                                                       \
        }                                                                                   \
    } while (0)

static jg_node *param(jg_graph *g, const char *name, jg_shape s)
{
    return jg_param_as(g, name, JG_F64, s, jg_zeros()); /* filled by the import */
}

/* The PyTorch model (train_cnn.py's Net) in jitgrad, f64, evaluation mode. */
static jg_node *net(jg_graph *g, jg_node *x)
{
    jg_conv_opts same = { .pad_h = 1, .pad_w = 1 };
    jg_node *h = jg_conv2d(x, param(g, "conv1.weight", jg_shape(8, 1, 3, 3)),
                           param(g, "conv1.bias", jg_shape(8)), &same);
    h = jg_max_pool2d(jg_relu(jg_batchnorm("bn1", h, 0.1, 1e-5)), 2, 2, 2, 2, 0, 0);
    h = jg_relu(jg_conv2d(h, param(g, "conv2.weight", jg_shape(16, 8, 3, 3)),
                          param(g, "conv2.bias", jg_shape(16)), &same));
    h = jg_avg_pool2d_ex(h, 3, 3, &(jg_pool_opts){ .stride_h = 2, .stride_w = 2, .pad_h = 1,
                                                   .pad_w = 1, .ceil_mode = true,
                                                   .exclude_pad = true });
    h = jg_reshape(h, jg_shape(jg_node_shape(x).dim[0], 16 * 8 * 8));
    return jg_linear(h, param(g, "fc.weight", jg_shape(10, 16 * 8 * 8)),
                     param(g, "fc.bias", jg_shape(10)));
}

/* PyTorch's state_dict names -> jitgrad's (only batchnorm's differ). */
static const jg_tensor_map MAP[] = {
    { "conv1.weight", "conv1.weight", false }, { "conv1.bias", "conv1.bias", false },
    { "bn1.weight", "bn1.gamma", false },       { "bn1.bias", "bn1.beta", false },
    { "bn1.running_mean", "bn1.running_mean", false },
    { "bn1.running_var", "bn1.running_var", false },
    { "conv2.weight", "conv2.weight", false }, { "conv2.bias", "conv2.bias", false },
    { "fc.weight", "fc.weight", false },       { "fc.bias", "fc.bias", false },
};
#define N_MAP ((int)(sizeof MAP / sizeof *MAP))

/* max|got - want| / max|want| */
static double rel_error(const double *got, const double *want, int64_t n)
{
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs(got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.safetensors REFERENCE.safetensors\n", argv[0]);
        return 2;
    }
    const char *model = argv[1], *reference = argv[2];
    char err[512];
    jg_array x = { 0 }, y = { 0 };
    if (jg_safetensors_read(reference, "x", JG_F64, &x, err, sizeof err) != JG_OK ||
        jg_safetensors_read(reference, "y", JG_F64, &y, err, sizeof err) != JG_OK) {
        fprintf(stderr, "from_pytorch_cnn: %s\n", err);
        return 1;
    }
    int64_t batch = x.shape.dim[0];
    jg_graph *g = jg_graph_new();
    jg_node *xin = jg_input(g, "x", JG_F64, x.shape);
    jg_node *yin = jg_input(g, "y", JG_I32, jg_shape(batch));
    jg_node *logits = net(g, xin);
    jg_node *loss = jg_cross_entropy(logits, yin);
    CHECK(jg_safetensors_import(g, model, MAP, N_MAP));
    /* what PyTorch's named_parameters() gave gradients for, in its order */
    const char *torch_names[] = { "conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias",
                                  "conv2.weight", "conv2.bias", "fc.weight", "fc.bias" };
    const char *ours[] = { "conv1.weight", "conv1.bias", "bn1.gamma", "bn1.beta",
                           "conv2.weight", "conv2.bias", "fc.weight", "fc.bias" };
    enum { N_PARAMS = 8, N_OUT = 3 + N_PARAMS };
    jg_node *wrt[1 + N_PARAMS] = { xin }, *outs[N_OUT] = { logits, loss };
    for (int i = 0; i < N_PARAMS; i++)
        wrt[1 + i] = jg_param_find(g, ours[i]);
    CHECK(jg_grad(g, loss, wrt, 1 + N_PARAMS, outs + 2));
    jg_program *p = jg_compile(g, outs, N_OUT, &(jg_opts){ .mode = JG_MODE_EVAL });
    if (!p) {
        fprintf(stderr, "from_pytorch_cnn: %s\n", jg_errmsg(g));
        return 1;
    }
    int32_t *labels = malloc((size_t)batch * sizeof *labels);
    for (int64_t i = 0; i < batch; i++)
        labels[i] = (int32_t)((double *)y.data)[i];
    jg_program_set(p, "x", x.data, (size_t)jg_shape_numel(x.shape) * sizeof(double));
    jg_program_set(p, "y", labels, (size_t)batch * sizeof *labels);
    if (jg_program_run(p) != JG_OK) {
        fprintf(stderr, "from_pytorch_cnn: %s\n", jg_errmsg(p));
        return 1;
    }
    const char *ref_names[N_OUT] = { "logits", "loss", "grad.x" };
    char buf[N_PARAMS][64];
    for (int i = 0; i < N_PARAMS; i++) {
        snprintf(buf[i], sizeof buf[i], "grad.%s", torch_names[i]);
        ref_names[3 + i] = buf[i];
    }
    double worst = 0;
    for (int i = 0; i < N_OUT; i++) {
        jg_array want;
        if (jg_safetensors_read(reference, ref_names[i], JG_F64, &want, err, sizeof err)) {
            fprintf(stderr, "from_pytorch_cnn: %s\n", err);
            return 1;
        }
        int64_t n = jg_shape_numel(want.shape);
        double *got = malloc((size_t)n * sizeof *got);
        if (jg_shape_numel(jg_node_shape(outs[i])) != n ||
            jg_program_get(p, i, got, (size_t)n * sizeof *got) != JG_OK) {
            fprintf(stderr, "from_pytorch_cnn: %s: sizes differ\n", ref_names[i]);
            return 1;
        }
        double e = rel_error(got, want.data, n);
        worst = fmax(worst, e);
        printf("%-20s %8lld values, relative error %.2e\n", ref_names[i], (long long)n, e);
        free(got);
        jg_array_free(&want);
    }
    bool pass = worst <= 1e-10;
    printf("from_pytorch_cnn: %s (worst %.2e, tolerance 1e-10)\n", pass ? "PASS" : "FAIL", worst);
    free(labels);
    jg_array_free(&x);
    jg_array_free(&y);
    jg_program_free(p);
    jg_graph_free(g);
    return pass ? 0 : 1;
}
