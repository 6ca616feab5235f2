/* Matrix multiplication: [..., m, k] x [..., k, n] -> [..., m, n], batch dimensions
 * broadcasting as in NumPy. The reference kernel is the hot path of the reference executor
 * (an MLP trains through it forward and backward), so its inner loop is a contiguous axpy
 * over n with the batch offsets computed once per matrix, never per element. */
#include "ops/op.h"

/* The batch part of a shape: every dimension but the last two. */
static jg_shape batch_of(jg_shape s)
{
    jg_shape b = { .ndim = s.ndim - 2 };
    for (int i = 0; i < b.ndim; i++)
        b.dim[i] = s.dim[i];
    return b;
}

static jg_status matmul_infer(jg_node *const *in, int n_in, op_attr *attr, jg_shape *shape,
                              jg_dtype *dtype, char *why)
{
    (void)n_in, (void)attr;
    jg_shape a = in[0]->shape, b = in[1]->shape;
    char sa[96], sb[96];
    if (a.ndim < 2 || b.ndim < 2) {
        snprintf(why, OP_ERR_SIZE, "operands must be at least 2-D: %s x %s", FMT_SHAPE(sa, a),
                 FMT_SHAPE(sb, b));
        return JG_ERR_SHAPE;
    }
    if (in[0]->dtype != in[1]->dtype) {
        snprintf(why, OP_ERR_SIZE, "dtypes differ: %s and %s", jg_dtype_str(in[0]->dtype),
                 jg_dtype_str(in[1]->dtype));
        return JG_ERR_DTYPE;
    }
    if (a.dim[a.ndim - 1] != b.dim[b.ndim - 2]) {
        snprintf(why, OP_ERR_SIZE, "inner dimensions differ: %s x %s", FMT_SHAPE(sa, a),
                 FMT_SHAPE(sb, b));
        return JG_ERR_SHAPE;
    }
    jg_shape out;
    if (!shape_broadcast(batch_of(a), batch_of(b), &out)) {
        snprintf(why, OP_ERR_SIZE, "batch dimensions do not broadcast: %s x %s",
                 FMT_SHAPE(sa, a), FMT_SHAPE(sb, b));
        return JG_ERR_SHAPE;
    }
    /* out.ndim <= max(a.ndim, b.ndim) - 2, so two more dimensions always fit. */
    out.dim[out.ndim++] = a.dim[a.ndim - 2];
    out.dim[out.ndim++] = b.dim[b.ndim - 1];
    *shape = out;
    *dtype = in[0]->dtype;
    return JG_OK;
}

/* c[m, n] = a[m, k] b[k, n], i-k-j order: the inner loop streams rows of b into one row of
 * c, which compilers vectorise. Four rows of b per pass over the row of c cut its loads and
 * stores by four; the sum order per element stays p = 0, 1, 2, ... */
static void gemm(const double *restrict a, const double *restrict b, double *restrict c,
                 int64_t m, int64_t k, int64_t n)
{
    for (int64_t i = 0; i < m; i++) {
        double *restrict crow = c + i * n;
        const double *arow = a + i * k;
        for (int64_t j = 0; j < n; j++)
            crow[j] = 0;
        int64_t p = 0;
        for (; p + 4 <= k; p += 4) {
            const double a0 = arow[p], a1 = arow[p + 1], a2 = arow[p + 2], a3 = arow[p + 3];
            const double *restrict b0 = b + p * n, *restrict b1 = b0 + n;
            const double *restrict b2 = b1 + n, *restrict b3 = b2 + n;
            for (int64_t j = 0; j < n; j++)
                crow[j] = (((crow[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j];
        }
        for (; p < k; p++) {
            const double aip = arow[p];
            const double *restrict brow = b + p * n;
            for (int64_t j = 0; j < n; j++)
                crow[j] += aip * brow[j];
        }
    }
}

static jg_status matmul_eval(const jg_node *n, const double *const *in, double *out, char *err)
{
    (void)err;
    jg_shape sa = n->in[0]->shape, sb = n->in[1]->shape, so = n->shape;
    int64_t m = sa.dim[sa.ndim - 2], k = sa.dim[sa.ndim - 1], nn = sb.dim[sb.ndim - 1];
    jg_shape batch = batch_of(so);
    int64_t n_batch = jg_shape_numel(batch);
    if (n_batch == 1) {
        gemm(in[0], in[1], out, m, k, nn);
        return JG_OK;
    }
    /* Strides in matrices of each operand's batch dimensions as seen from the output's
     * batch shape (0 where broadcast); an odometer walks the batch. */
    int64_t stride_a[JG_MAX_DIMS], stride_b[JG_MAX_DIMS], idx[JG_MAX_DIMS] = { 0 };
    shape_bcast_strides(batch_of(sa), batch, stride_a);
    shape_bcast_strides(batch_of(sb), batch, stride_b);
    int64_t off_a = 0, off_b = 0;
    for (int64_t t = 0; t < n_batch; t++) {
        gemm(in[0] + off_a * m * k, in[1] + off_b * k * nn, out + t * m * nn, m, k, nn);
        for (int d = batch.ndim - 1; d >= 0; d--) {
            off_a += stride_a[d], off_b += stride_b[d];
            if (++idx[d] < batch.dim[d])
                break;
            off_a -= stride_a[d] * batch.dim[d], off_b -= stride_b[d] * batch.dim[d];
            idx[d] = 0;
        }
    }
    return JG_OK;
}

/* d(a b) = da b + a db: dA = dY B^T, dB = A^T dY, each summed over the batch dimensions the
 * operand was broadcast along. */
static void matmul_grad(jg_node *n, jg_node *dy, jg_node **dx)
{
    jg_node *a = n->in[0], *b = n->in[1];
    dx[0] = grad_sum_to(jg_matmul(dy, jg_transpose(b)), a->shape);
    dx[1] = grad_sum_to(jg_matmul(jg_transpose(a), dy), b->shape);
}

const op_def op_matmul = { .arity = 2, .kind = KIND_CONTRACTION,
                           .infer = matmul_infer, .grad = matmul_grad, .eval = matmul_eval };

jg_node *jg_matmul_(jg_loc at, jg_node *a, jg_node *b)
{
    jg_node *in[2] = { a, b };
    return op_build(at, JG_OP_MATMUL, in, 2, NULL);
}

/* ---- linear: PyTorch's layout of dense weights */

jg_node *jg_linear_(jg_loc at, jg_node *x, jg_node *w, jg_node *b)
{
    jg_node *bad = composite_operands(at, "linear", (jg_node *[]){ x, w, b },
                                      (const char *[]){ "x", "w", "b" },
                                      (const bool[]){ false, false, true }, 3);
    if (bad)
        return bad;
    jg_graph *g = x->graph;
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype) || x->dtype == JG_I32) {
        graph_error(g, at, JG_ERR_DTYPE, "jg_linear: x, w and b must share one float dtype, "
                    "got %s, %s, %s", jg_dtype_str(x->dtype), jg_dtype_str(w->dtype),
                    b ? jg_dtype_str(b->dtype) : "(none)");
        return g->poison;
    }
    char sx[8 * 24], sw[8 * 24];
    int64_t in = x->shape.ndim ? x->shape.dim[x->shape.ndim - 1] : 0;
    if (w->shape.ndim != 2 || x->shape.ndim < 1 || w->shape.dim[1] != in) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_linear: x %s and w %s: w must be [out, in] with "
                    "in = x's last dimension", FMT_SHAPE(sx, x->shape), FMT_SHAPE(sw, w->shape));
        return g->poison;
    }
    if (b && (b->shape.ndim != 1 || b->shape.dim[0] != w->shape.dim[0])) {
        graph_error(g, at, JG_ERR_SHAPE, "jg_linear: b is %s, must be [%lld] (w's out)",
                    FMT_SHAPE(sx, b->shape), (long long)w->shape.dim[0]);
        return g->poison;
    }
    jg_node *y = x->shape.ndim == 1 ? jg_reshape_(at, x, jg_shape(1, in)) : x;
    y = jg_matmul_(at, y, jg_transpose_(at, w));
    if (x->shape.ndim == 1)
        y = jg_reshape_(at, y, jg_shape(w->shape.dim[0]));
    return b ? jg_add_(at, y, b) : y;
}
