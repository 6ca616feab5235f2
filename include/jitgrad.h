/** @file
 * jitgrad: reverse-mode automatic differentiation with a graph compiler, in C11.
 *
 * A worked example: a one-hidden-layer classifier, one SGD-with-momentum step.
 *
 *     jg_graph *g = jg_graph_new();
 *     jg_node *x  = jg_input(g, "x", JG_F32, jg_shape(128, 784));
 *     jg_node *y  = jg_input(g, "y", JG_I32, jg_shape(128));
 *     jg_node *w1 = jg_param(g, "w1", jg_shape(784, 256), jg_he_normal());
 *     jg_node *b1 = jg_param(g, "b1", jg_shape(256), jg_zeros());
 *     jg_node *w2 = jg_param(g, "w2", jg_shape(256, 10), jg_xavier_uniform());
 *     jg_node *h      = jg_relu(jg_add(jg_matmul(x, w1), b1));  // a node knows its graph
 *     jg_node *logits = jg_matmul(h, w2);
 *     jg_node *loss   = jg_cross_entropy(logits, y);
 *
 *     jg_program *train = jg_compile_train(g, loss, &(jg_train_opts){
 *         .optimizer = jg_sgd(0.05, 0.9) });
 *     if (!train) { fprintf(stderr, "%s\n", jg_errmsg(g)); return 1; }
 *     jg_program_set(train, "x", images, 128 * 784 * sizeof(float));
 *     jg_program_set(train, "y", labels, 128 * sizeof(int32_t));
 *     if (jg_program_run(train) != JG_OK) fprintf(stderr, "%s\n", jg_errmsg(train));
 *     float l; jg_program_get(train, 0, &l, sizeof l);         // output 0 is the loss
 *     jg_program_free(train);
 *     jg_graph_free(g);
 *
 * Conventions
 * - Handles are opaque; every _new/_compile has a _free, and _free(NULL) does nothing.
 * - Builders never return NULL and never abort. A builder given bad arguments records the
 *   FIRST error on the graph ("model.c:42: jg_matmul: inner dimensions differ: [128,784] x
 *   [785,256]") and returns a poisoned node; any builder given a poisoned node returns one too,
 *   and compiling a graph that holds an error fails with that message.
 * - Functions that can fail return a jg_status; the message is on the handle (jg_errmsg).
 * - Ownership: a graph owns its nodes and its parameter store. A program keeps its graph
 *   alive, so programs and graphs may be freed in any order.
 * - dtypes: f32 (default for parameters), f64 (gradient checks), i32 (labels, indices).
 *   i32 arithmetic saturates instead of wrapping (a JIT sum saturates at each step, the
 *   reference executor at the end, so only sums whose partial sums overflow differ).
 *   Binary ops need equal dtypes; jg_cast converts. Broadcasting follows NumPy.
 * - Thread safety, object by object:
 *   - jg_graph and its nodes: one thread at a time (building, jg_grad, the parameter store,
 *     compiling, checkpoints, imports).
 *   - jg_program: one thread at a time, together with its graph and the graph's other
 *     programs (they share the parameter store and a reference count). A program's kernels
 *     run on its own thread pool (jg_opts.num_threads); the caller's thread waits.
 *   - Distinct graphs, each with its programs, may be used from distinct threads at once,
 *     compiling and running: the process-wide kernel cache, the disk cache and LLVM's
 *     initialisation are locked inside (tests/test_jit_concurrent.c compiles on 8 threads).
 *   - jg_dataset, jg_loader, jg_csv and jg_progress handles: one thread at a time each; a
 *     loader reads its dataset, so the two go together.
 *   - Functions without a handle (jg_shape helpers, jg_dtype_str, jg_idx_read, jg_npy_read
 *     and _write, jg_safetensors_read, the PNG writers) may be called from any thread.
 *   - A custom op's C function may be called from any of the program's threads, once per
 *     run and op, never concurrently for one program.
 * - Versions: jitgrad.h and libjitgrad.so.N go together; N changes whenever a release breaks
 *   the ABI (README, "Versions").
 */
#ifndef JITGRAD_H
#define JITGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(JG_BUILDING) && defined(__GNUC__)
#define JG_API __attribute__((visibility("default")))
#else
/** Marks the exported functions (visibility default when building the library). */
#define JG_API
#endif

/* ---------------------------------------------------------------- status codes */

/** What a call that can fail returns: JG_OK, or the kind of error (the message is on the
 * handle). */
typedef enum jg_status {
    JG_OK = 0,
    JG_ERR_SHAPE,   /**< shapes do not fit the op */
    JG_ERR_DTYPE,   /**< dtypes do not fit the op */
    JG_ERR_ARG,     /**< any other invalid argument: NULL handle, bad axis, unknown name */
    JG_ERR_IO,      /**< a file could not be read or written, or is malformed */
    JG_ERR_NOMEM,   /**< an allocation failed */
    JG_ERR_STATE,   /**< a call out of order: running with an unset input, using a failed graph */
    JG_ERR_RANGE,   /**< a value out of range at run time, e.g. a gather index */
    JG_ERR_GRAD,    /**< a gradient is undefined, or a gradient check failed */
    JG_ERR_NONFINITE, /**< a run produced inf or NaN (with jg_opts.check_finite) */
} jg_status;

/** A short name for a status ("shape error"); never NULL. */
JG_API const char *jg_status_str(jg_status s);

/* ---------------------------------------------------------------- shapes and dtypes */

/** The most dimensions a shape has. */
#define JG_MAX_DIMS 8

/** Element types: f32, f64 (gradient checks), i32 (labels, indices). */
typedef enum jg_dtype { JG_F32, JG_F64, JG_I32 } jg_dtype;

/** "f32", "f64" or "i32". */
JG_API const char *jg_dtype_str(jg_dtype t);
/** Bytes per element: 4, 8 or 4. */
JG_API size_t jg_dtype_size(jg_dtype t);

/** A shape: up to 8 dimensions, each >= 1, at most 2^40 elements in all; ndim 0 is a scalar.
 * Build one with jg_shape(2, 3). */
typedef struct jg_shape {
    int ndim; /**< number of dimensions, 0..JG_MAX_DIMS (0: a scalar) */
    int64_t dim[JG_MAX_DIMS]; /**< the sizes, dim[0..ndim) */
} jg_shape;

#define JG_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, N, ...) N
/** The number of its arguments (1..9), for jg_shape and jg_axes. */
#define JG_NARGS(...) JG_NARGS_(__VA_ARGS__, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
/**@{*/
/** jg_shape(d0, d1, ...): 1 to 8 dimensions. JG_SCALAR is the 0-d shape. */
#define jg_shape(...) ((jg_shape){ .ndim = JG_NARGS(__VA_ARGS__), .dim = { __VA_ARGS__ } })
#define JG_SCALAR ((jg_shape){ .ndim = 0 })
/**@}*/

/** The number of elements; INT64_MAX when the product overflows (never undefined behaviour). */
JG_API int64_t jg_shape_numel(jg_shape s);

/** A set of axes for reductions; negative axes count from the end.
 * jg_axes(a, ...) takes 1 to 8 axes. An empty jg_axes() does not compile (the preprocessor
 * cannot tell it from one empty argument, which would silently mean axis 0): write
 * JG_ALL_AXES to reduce every axis and JG_NO_AXES to reduce none (the identity). */
typedef struct jg_axes {
    int n; /**< -1: every axis */
    int axis[JG_MAX_DIMS]; /**< the axes, axis[0..n) */
} jg_axes;
/** jg_axes(a, b, ...): 1 to 8 axes. */
/* The sizeof term is 0 when it compiles; an empty list makes it an array of size -1 (or an
 * empty initialiser, which C11 rejects). */
#define jg_axes(...) ((jg_axes){ .n = JG_NARGS(__VA_ARGS__) + 0 * (int)sizeof(char[ \
    sizeof((int[]){ __VA_ARGS__ }) ? 1 : -1]), .axis = { __VA_ARGS__ } })
#define JG_ALL_AXES ((jg_axes){ .n = -1 }) /**< reduce every axis */
#define JG_NO_AXES ((jg_axes){ .n = 0 })   /**< reduce none (the identity) */

/* ---------------------------------------------------------------- graphs and nodes */

/** A computation graph: nodes, the first error, the parameter store (jg_graph_new / _free). */
typedef struct jg_graph jg_graph;
/** A node of a graph (owned by it; never freed alone). */
typedef struct jg_node jg_node;

/** Where a builder was called from; the builder macros pass it for error messages. */
typedef struct jg_loc {
    const char *file; /**< the source file of the call (__FILE__) */
    int line; /**< its line (__LINE__) */
} jg_loc;
/** The caller's file and line: what every builder macro passes, so errors name the line. */
#define JG_HERE ((jg_loc){ __FILE__, __LINE__ })

/** A new, empty graph with its own parameter store; NULL only when out of memory. */
JG_API jg_graph *jg_graph_new(void);
/** Releases the caller's reference; the graph lives on while programs compiled from it do. */
JG_API void jg_graph_free(jg_graph *g);
/** The first error recorded on the graph (JG_OK if none). Errors of builders, jg_grad, the
 * compile functions and jg_gradcheck are recorded and make later compiles fail; a failed
 * store accessor (jg_param_get with a wrong name) only returns its status. */
JG_API jg_status jg_graph_status(const jg_graph *g);
/** The first builder/compile error if any, else the message of the last failed call on the
 * graph (e.g. jg_param_set), else "". */
JG_API const char *jg_graph_errmsg(const jg_graph *g);
/** Forgets the recorded error and the last message, e.g. in a REPL after a typo. Poisoned
 * nodes stay poisoned. */
JG_API void jg_graph_clear_error(jg_graph *g);
/** Seed for parameter initialisers that do not carry their own (default 0x5eed). */
JG_API void jg_graph_set_seed(jg_graph *g, uint64_t seed);
/** Writes the graph as text, one node a line, in creation (= topological) order. */
JG_API void jg_graph_dump(const jg_graph *g, FILE *out);
/** Number of nodes in the graph (including those appended by jg_grad). */
JG_API int jg_graph_node_count(const jg_graph *g);

/**@{*/
/** Node queries. A poisoned node has ndim 0 and reports jg_node_ok() == false. */
JG_API jg_graph *jg_node_graph(const jg_node *n);
JG_API jg_shape jg_node_shape(const jg_node *n);
JG_API jg_dtype jg_node_dtype(const jg_node *n);
JG_API bool jg_node_ok(const jg_node *n);
JG_API int jg_node_id(const jg_node *n);
/**@}*/
/**@{*/
/** The op's name ("matmul", "input", ...) and the node's name (inputs, params, custom ops;
 * else NULL). */
JG_API const char *jg_node_op_name(const jg_node *n);
JG_API const char *jg_node_name(const jg_node *n);
/**@}*/

/* ---------------------------------------------------------------- leaves */

/** Parameter initialisers. Fans for Xavier and He: a 2-D weight [in, out] has fan_in = in,
 * fan_out = out; an N-D weight [out, in, k...] (convolution) has fan_in = in * prod(k),
 * fan_out = out * prod(k); a 1-D one has both equal to its length. seed 0 means: derive the
 * seed from the graph seed and the parameter's name, so each parameter differs. */
typedef enum jg_init_kind {
    JG_INIT_ZEROS,
    JG_INIT_CONSTANT,       /**< a */
    JG_INIT_UNIFORM,        /**< in [a, b) */
    JG_INIT_NORMAL,         /**< mean a, standard deviation b */
    JG_INIT_XAVIER_UNIFORM, /**< U(-l, l), l = sqrt(6 / (fan_in + fan_out)) */
    JG_INIT_XAVIER_NORMAL,  /**< N(0, 2 / (fan_in + fan_out)) */
    JG_INIT_HE_UNIFORM,     /**< U(-l, l), l = sqrt(6 / fan_in) */
    JG_INIT_HE_NORMAL,      /**< N(0, 2 / fan_in) */
    JG_INIT_DATA,           /**< copied from data: numel values of the parameter's dtype */
} jg_init_kind;

/** An initialiser of a parameter: a kind and its numbers (use the jg_zeros() ... macros). */
typedef struct jg_init {
    jg_init_kind kind; /**< what it draws */
    /**@{*/
    double a, b; /**< the numbers the kind reads (see jg_init_kind) */
    /**@}*/
    uint64_t seed; /**< 0: derived from the graph seed and the parameter's name */
    const void *data; /**< JG_INIT_DATA only; read once, when the parameter is created */
} jg_init;

#define jg_zeros() ((jg_init){ .kind = JG_INIT_ZEROS }) /**< all zeros */
#define jg_constant(v) ((jg_init){ .kind = JG_INIT_CONSTANT, .a = (v) }) /**< every element v */
/** Uniform in [lo, hi) */
#define jg_uniform(lo, hi) ((jg_init){ .kind = JG_INIT_UNIFORM, .a = (lo), .b = (hi) })
/** Normal with that mean and standard deviation */
#define jg_normal(mean, std) ((jg_init){ .kind = JG_INIT_NORMAL, .a = (mean), .b = (std) })
/** Xavier (Glorot) uniform */
#define jg_xavier_uniform() ((jg_init){ .kind = JG_INIT_XAVIER_UNIFORM })
/** Xavier (Glorot) normal */
#define jg_xavier_normal() ((jg_init){ .kind = JG_INIT_XAVIER_NORMAL })
#define jg_he_uniform() ((jg_init){ .kind = JG_INIT_HE_UNIFORM }) /**< He (Kaiming) uniform */
#define jg_he_normal() ((jg_init){ .kind = JG_INIT_HE_NORMAL }) /**< He (Kaiming) normal */
/** Values from memory (e.g. a weight trained elsewhere): numel values of the parameter's dtype
 * in row-major order, copied when the parameter is created; the caller keeps the buffer. The
 * lint does not call such a weight constant. NULL data is JG_ERR_ARG. To check the values'
 * dtype and shape too, create the parameter and use jg_param_set_array. */
#define jg_from_data(ptr) ((jg_init){ .kind = JG_INIT_DATA, .data = (ptr) })
/** Any initialiser with an explicit seed: jg_seeded(jg_he_normal(), 42). */
JG_API jg_init jg_seeded(jg_init init, uint64_t seed);

/** An input: named, bound before each run with jg_program_set. */
#define jg_input(g, name, dtype, shape) jg_input_(JG_HERE, g, name, dtype, shape)
/** A trainable f32 parameter, initialised now in the graph's parameter store. */
#define jg_param(g, name, shape, init) jg_param_(JG_HERE, g, name, JG_F32, shape, init)
/** A parameter of any float dtype (f64 for gradient checks). */
#define jg_param_as(g, name, dtype, shape, init) jg_param_(JG_HERE, g, name, dtype, shape, init)
/** A constant array, copied in (data holds numel values of dtype). */
#define jg_const(g, dtype, shape, data) jg_const_(JG_HERE, g, dtype, shape, data)
/**@{*/
/** A scalar constant of the given dtype; jg_scalar_like takes dtype and graph from x (and is
 * poisoned when x is NULL or poisoned). */
#define jg_scalar(g, dtype, value) jg_scalar_(JG_HERE, g, dtype, value)
#define jg_scalar_like(x, value) jg_scalar_like_(JG_HERE, x, value)
/**@}*/
/** A constant of the given dtype and shape, filled with one value. */
#define jg_fill(g, dtype, shape, value) jg_fill_(JG_HERE, g, dtype, shape, value)

JG_API jg_node *jg_input_(jg_loc at, jg_graph *g, const char *name, jg_dtype t, jg_shape s);
JG_API jg_node *jg_param_(jg_loc at, jg_graph *g, const char *name, jg_dtype t, jg_shape s,
                          jg_init init);
JG_API jg_node *jg_const_(jg_loc at, jg_graph *g, jg_dtype t, jg_shape s, const void *data);
JG_API jg_node *jg_scalar_(jg_loc at, jg_graph *g, jg_dtype t, double value);
JG_API jg_node *jg_scalar_like_(jg_loc at, jg_node *x, double value);
JG_API jg_node *jg_fill_(jg_loc at, jg_graph *g, jg_dtype t, jg_shape s, double value);

/* ---------------------------------------------------------------- parameter store */

/** An n-dimensional array of f32, f64 or i32 in row-major order: what the file readers return
 * (owning malloc'd data: free it with jg_array_free, which zeroes the struct;
 * jg_array_free(NULL) does nothing) and what jg_param_set_array copies from. */
typedef struct jg_array {
    jg_dtype dtype; /**< JG_F32, JG_F64 or JG_I32 */
    jg_shape shape; /**< its shape */
    void *data; /**< numel values of dtype, row-major */
} jg_array;

/**@{*/
/** Parameters live in the graph's store and outlive programs: a training program and an
 * evaluation program compiled from one graph see the same values. Reads and writes copy
 * exactly the parameter's bytes (numel * dtype size); a size mismatch or an unknown name is
 * JG_ERR_ARG, with the reason in jg_errmsg(g). Such a failure does not poison the graph.
 * jg_param_set sees bytes only, so a [2,3] weight given as [3,2] passes: to load weights made
 * elsewhere, prefer jg_param_set_array (dtype and shape checked) or jg_safetensors_import. */
JG_API jg_status jg_param_get(jg_graph *g, const char *name, void *out, size_t bytes);
JG_API jg_status jg_param_set(jg_graph *g, const char *name, const void *data, size_t bytes);
/**@}*/
/** Copies an array into a parameter after checking what jg_param_set cannot: a's dtype and
 * shape must equal the parameter's (JG_ERR_DTYPE, JG_ERR_SHAPE otherwise, the message giving
 * both; a NULL array or data, or an unknown name, is JG_ERR_ARG). No conversion is done. */
JG_API jg_status jg_param_set_array(jg_graph *g, const char *name, const jg_array *a);
/** The same for a 2-D parameter [in, out] (a jg_matmul weight, recurrent weights) given an
 * array laid out [out, in], as PyTorch stores nn.Linear.weight and an RNN's weight_ih and
 * weight_hh: the array must be 2-D with its shape reversed, and is transposed as it is
 * copied. */
JG_API jg_status jg_param_set_transposed(jg_graph *g, const char *name, const jg_array *a);
/** The parameter node of that name, or NULL. */
JG_API jg_node *jg_param_find(jg_graph *g, const char *name);
/** A frozen parameter receives no gradient (jg_grad gives NULL for it) and no update. It acts
 * on what is built or compiled afterwards: training programs compiled before keep updating
 * the parameter (recompile them). */
JG_API jg_status jg_param_freeze(jg_node *param, bool frozen);
/**@{*/
/** Number of parameters and the i-th one, in creation order (optimiser state included). */
JG_API int jg_param_count(const jg_graph *g);
JG_API jg_node *jg_param_at(const jg_graph *g, int i);
/**@}*/

/* ---------------------------------------------------------------- elementwise ops */

#define jg_add(a, b) jg_add_(JG_HERE, a, b) /**< a + b */
#define jg_sub(a, b) jg_sub_(JG_HERE, a, b) /**< a - b */
#define jg_mul(a, b) jg_mul_(JG_HERE, a, b) /**< a * b */
#define jg_div(a, b) jg_div_(JG_HERE, a, b) /**< a / b */
#define jg_maximum(a, b) jg_maximum_(JG_HERE, a, b) /**< gradient at a tie goes to a */
#define jg_minimum(a, b) jg_minimum_(JG_HERE, a, b) /**< gradient at a tie goes to a */
#define jg_neg(x) jg_neg_(JG_HERE, x) /**< -x */
#define jg_abs(x) jg_abs_(JG_HERE, x)               /**< derivative 0 at 0 */
#define jg_exp(x) jg_exp_(JG_HERE, x) /**< e^x */
#define jg_log(x) jg_log_(JG_HERE, x) /**< natural logarithm */
#define jg_sqrt(x) jg_sqrt_(JG_HERE, x) /**< square root */
#define jg_rsqrt(x) jg_rsqrt_(JG_HERE, x) /**< 1 / sqrt(x) */
#define jg_square(x) jg_square_(JG_HERE, x) /**< x * x */
#define jg_tanh(x) jg_tanh_(JG_HERE, x) /**< hyperbolic tangent */
#define jg_sigmoid(x) jg_sigmoid_(JG_HERE, x) /**< 1 / (1 + e^-x) */
#define jg_relu(x) jg_relu_(JG_HERE, x)             /**< derivative 0 at 0 */
#define jg_softplus(x) jg_softplus_(JG_HERE, x) /**< log(1 + e^x), computed stably */
#define jg_pow(x, p) jg_pow_(JG_HERE, x, p)         /**< scalar exponent */
#define jg_leaky_relu(x, slope) jg_leaky_relu_(JG_HERE, x, slope) /**< x, or slope * x below 0 */
#define jg_elu(x, alpha) jg_elu_(JG_HERE, x, alpha) /**< x, or alpha * (e^x - 1) below 0 */
#define jg_clamp(x, lo, hi) jg_clamp_(JG_HERE, x, lo, hi) /**< derivative 1 at the bounds */
/** where(cond, a, b): a where cond != 0, else b; cond of any dtype, all three broadcast. */
#define jg_where(c, a, b) jg_where_(JG_HERE, c, a, b)
/**@{*/
/** Comparisons give 1 or 0 in the operands' dtype and have no gradient. */
#define jg_lt(a, b) jg_lt_(JG_HERE, a, b)
#define jg_le(a, b) jg_le_(JG_HERE, a, b)
#define jg_gt(a, b) jg_gt_(JG_HERE, a, b)
#define jg_ge(a, b) jg_ge_(JG_HERE, a, b)
#define jg_eq(a, b) jg_eq_(JG_HERE, a, b)
#define jg_ne(a, b) jg_ne_(JG_HERE, a, b)
/**@}*/
/** cast: float to i32 truncates toward zero; gradients flow between float dtypes only. */
#define jg_cast(x, dtype) jg_cast_(JG_HERE, x, dtype)
/**@{*/
/** Conveniences: x * s and x + s with a scalar of x's dtype. */
#define jg_scale(x, s) jg_scale_(JG_HERE, x, s)
#define jg_shift(x, s) jg_shift_(JG_HERE, x, s)
/**@}*/
/** The identity whose gradient is zero: nothing flows back through it. */
#define jg_stop_gradient(x) jg_stop_gradient_(JG_HERE, x)

JG_API jg_node *jg_add_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_sub_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_mul_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_div_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_maximum_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_minimum_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_neg_(jg_loc at, jg_node *x);
JG_API jg_node *jg_abs_(jg_loc at, jg_node *x);
JG_API jg_node *jg_exp_(jg_loc at, jg_node *x);
JG_API jg_node *jg_log_(jg_loc at, jg_node *x);
JG_API jg_node *jg_sqrt_(jg_loc at, jg_node *x);
JG_API jg_node *jg_rsqrt_(jg_loc at, jg_node *x);
JG_API jg_node *jg_square_(jg_loc at, jg_node *x);
JG_API jg_node *jg_tanh_(jg_loc at, jg_node *x);
JG_API jg_node *jg_sigmoid_(jg_loc at, jg_node *x);
JG_API jg_node *jg_relu_(jg_loc at, jg_node *x);
JG_API jg_node *jg_softplus_(jg_loc at, jg_node *x);
JG_API jg_node *jg_pow_(jg_loc at, jg_node *x, double p);
JG_API jg_node *jg_leaky_relu_(jg_loc at, jg_node *x, double slope);
JG_API jg_node *jg_elu_(jg_loc at, jg_node *x, double alpha);
JG_API jg_node *jg_clamp_(jg_loc at, jg_node *x, double lo, double hi);
JG_API jg_node *jg_where_(jg_loc at, jg_node *cond, jg_node *a, jg_node *b);
JG_API jg_node *jg_lt_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_le_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_gt_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_ge_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_eq_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_ne_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_cast_(jg_loc at, jg_node *x, jg_dtype t);
JG_API jg_node *jg_scale_(jg_loc at, jg_node *x, double s);
JG_API jg_node *jg_shift_(jg_loc at, jg_node *x, double s);
JG_API jg_node *jg_stop_gradient_(jg_loc at, jg_node *x);

/* ---------------------------------------------------------------- reductions */

/** Who receives the gradient of a maximum (or minimum) when several elements tie for it (after
 * a ReLU, windows of zeros tie all the time): JG_TIES_FIRST, the first in row-major order of
 * its group or window; JG_TIES_SPLIT, all of them in equal shares. A NaN is the extreme and
 * takes all of it. PyTorch: max pooling and torch.max(x, dim) give it to one element (FIRST),
 * torch.amax / amin split it; jitgrad's defaults are the same: jg_max_pool2d FIRST, jg_max and
 * jg_min SPLIT. Either way gradient checks step away from ties (a tie is a kink). */
typedef enum jg_ties { JG_TIES_FIRST = 0, JG_TIES_SPLIT = 1 } jg_ties;

/**@{*/
/** Reduce over axes (negative count from the end; JG_ALL_AXES = all); keepdims keeps them as 1.
 * max/min propagate NaN and split the gradient equally among tied extremes (as torch.amax);
 * jg_max_ex / jg_min_ex choose (JG_TIES_FIRST: as torch.max(x, dim)). argmax gives i32
 * indices (the first maximum, or the first NaN) and has no gradient. logsumexp of an all -inf
 * group is -inf. */
#define jg_sum(x, axes, keepdims) jg_sum_(JG_HERE, x, axes, keepdims)
#define jg_mean(x, axes, keepdims) jg_mean_(JG_HERE, x, axes, keepdims)
#define jg_max(x, axes, keepdims) jg_max_(JG_HERE, x, axes, keepdims)
#define jg_min(x, axes, keepdims) jg_min_(JG_HERE, x, axes, keepdims)
#define jg_logsumexp(x, axes, keepdims) jg_logsumexp_(JG_HERE, x, axes, keepdims)
#define jg_argmax(x, axis) jg_argmax_(JG_HERE, x, axis)
#define jg_max_ex(x, axes, keepdims, ties) jg_max_ex_(JG_HERE, x, axes, keepdims, ties)
#define jg_min_ex(x, axes, keepdims, ties) jg_min_ex_(JG_HERE, x, axes, keepdims, ties)
/**@}*/

JG_API jg_node *jg_sum_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims);
JG_API jg_node *jg_mean_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims);
JG_API jg_node *jg_max_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims);
JG_API jg_node *jg_min_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims);
JG_API jg_node *jg_logsumexp_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims);
JG_API jg_node *jg_argmax_(jg_loc at, jg_node *x, int axis);
JG_API jg_node *jg_max_ex_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims, jg_ties ties);
JG_API jg_node *jg_min_ex_(jg_loc at, jg_node *x, jg_axes axes, bool keepdims, jg_ties ties);

/* ---------------------------------------------------------------- movement */

/** reshape: same element count; one dimension may be -1 (inferred). */
#define jg_reshape(x, shape) jg_reshape_(JG_HERE, x, shape)
/**@{*/
/** permute: perm is a permutation of 0..ndim-1 given as a jg_axes; transpose swaps the last two. */
#define jg_permute(x, perm) jg_permute_(JG_HERE, x, perm)
#define jg_transpose(x) jg_transpose_(JG_HERE, x)
/** broadcast_to: x repeated along its size-1 (or missing leading) axes to shape. */
#define jg_broadcast_to(x, shape) jg_broadcast_to_(JG_HERE, x, shape)
/**@}*/
/** slice one axis with Python semantics: negative indices count from the end, bounds are
 * clamped, step may be negative (step -1 with start -1, stop INT64_MIN reverses). */
#define jg_slice(x, axis, start, stop, step) jg_slice_(JG_HERE, x, axis, start, stop, step)
/** pad with a constant: before[i] and after[i] elements on axis i (both >= 0). */
#define jg_pad(x, before, after, value) jg_pad_(JG_HERE, x, before, after, value)
/** concat n nodes along axis; all other dimensions equal. */
#define jg_concat(xs, n, axis) jg_concat_(JG_HERE, xs, n, axis)
/** take(x, idx, axis): out = x.shape[:axis] + idx.shape + x.shape[axis+1:]; idx is i32.
 * An index out of range makes jg_program_run fail with JG_ERR_RANGE. Embedding = take(w, ids, 0). */
#define jg_take(x, idx, axis) jg_take_(JG_HERE, x, idx, axis)
/** take_along_axis(x, idx, axis) (torch.gather(x, axis, idx)): out has idx's shape and
 * out[j] = x[j with coordinate `axis` replaced by idx[j]]; idx is i32 of x's rank, no longer
 * than x on the other axes. The gradient adds dy into x at the positions read (repeated
 * indices accumulate). An index outside [0, x.shape[axis]) fails the run with JG_ERR_RANGE
 * (reported by the jg_take it is built on). Errors: idx not i32, ranks differ, idx longer
 * than x on another axis, x of 2^31 elements or more. */
#define jg_take_along_axis(x, idx, axis) jg_take_along_axis_(JG_HERE, x, idx, axis)
/** one_hot(idx, depth, dtype): appends an axis of size depth; no gradient. */
#define jg_one_hot(idx, depth, dtype) jg_one_hot_(JG_HERE, idx, depth, dtype)

JG_API jg_node *jg_reshape_(jg_loc at, jg_node *x, jg_shape s);
JG_API jg_node *jg_permute_(jg_loc at, jg_node *x, jg_axes perm);
JG_API jg_node *jg_transpose_(jg_loc at, jg_node *x);
JG_API jg_node *jg_broadcast_to_(jg_loc at, jg_node *x, jg_shape s);
JG_API jg_node *jg_slice_(jg_loc at, jg_node *x, int axis, int64_t start, int64_t stop,
                          int64_t step);
JG_API jg_node *jg_pad_(jg_loc at, jg_node *x, jg_shape before, jg_shape after, double value);
JG_API jg_node *jg_concat_(jg_loc at, jg_node *const *xs, int n, int axis);
JG_API jg_node *jg_take_(jg_loc at, jg_node *x, jg_node *idx, int axis);
JG_API jg_node *jg_take_along_axis_(jg_loc at, jg_node *x, jg_node *idx, int axis);
JG_API jg_node *jg_one_hot_(jg_loc at, jg_node *idx, int depth, jg_dtype t);

/* ---------------------------------------------------------------- matmul */

/** [..., m, k] x [..., k, n] -> [..., m, n]; both at least 2-D; batch dimensions broadcast. */
#define jg_matmul(a, b) jg_matmul_(JG_HERE, a, b)
/**@{*/
/** linear(x [..., in], w [out, in], b [out] or NULL) -> [..., out] = x w^T + b: PyTorch's
 * nn.Linear with its weight layout, so a state_dict's weight loads without a transpose (the
 * GEMM reads w transposed in place). dtypes must agree; shapes are checked (JG_ERR_SHAPE). */
#define jg_linear(x, w, b) jg_linear_(JG_HERE, x, w, b)
JG_API jg_node *jg_matmul_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_linear_(jg_loc at, jg_node *x, jg_node *w, jg_node *b);
/**@}*/

/* ---------------------------------------------------------------- nn */

/**@{*/
/** softmax / log_softmax along one axis, numerically stable. */
#define jg_softmax(x, axis) jg_softmax_(JG_HERE, x, axis)
#define jg_log_softmax(x, axis) jg_log_softmax_(JG_HERE, x, axis)
/**@}*/
/** Mean cross entropy of logits [n, c] against i32 labels [n] in 0..c-1 (a scalar). A label out
 * of range makes the run fail with JG_ERR_RANGE. */
#define jg_cross_entropy(logits, labels) jg_cross_entropy_(JG_HERE, logits, labels)
/** Mean binary cross entropy of sigmoid(logits) against targets in [0, 1] (same shape). */
#define jg_bce_with_logits(logits, targets) jg_bce_with_logits_(JG_HERE, logits, targets)
/** Mean squared error (a scalar); shapes must be equal. */
#define jg_mse_loss(a, b) jg_mse_loss_(JG_HERE, a, b)

/** Options of the _ex losses (PyTorch's); zero-initialised fields take the defaults. */
typedef enum jg_reduction {
    JG_REDUCE_MEAN = 0, /**< the default; a weighted cross entropy divides by the weights' sum */
    JG_REDUCE_SUM = 1,
    JG_REDUCE_NONE = 2, /**< one loss per row (cross entropy) or element (bce, mse) */
} jg_reduction;
/** Options of the _ex losses; zero-initialised fields take the defaults. */
typedef struct jg_loss_opts {
    jg_reduction reduction; /**< JG_REDUCE_MEAN (default), _SUM or _NONE */
    /** cross entropy: rows whose label equals ignore_index add nothing and do not count in the
     * mean (PyTorch's ignore_index, -100 there: set .ignore = true, .ignore_index = -100) */
    bool ignore;
    int32_t ignore_index; /**< the label to ignore, when ignore is set */
    /** cross entropy: [C] per-class weights; bce: weights broadcasting against the logits */
    jg_node *weight;
    /** bce: the weight of positive targets, broadcasting against the logits (e.g. [C]) */
    jg_node *pos_weight;
} jg_loss_opts;
/**@{*/
/** cross_entropy_ex(logits [n, c], labels [n] i32, opts or NULL): jg_cross_entropy with
 * reduction, ignore_index and per-class weights; bce_with_logits_ex(logits, targets, opts):
 * with reduction, weight and pos_weight; mse_loss_ex(a, b, opts): reduction only. The same
 * errors as the plain losses, plus an option the loss does not take (JG_ERR_ARG) and weights of
 * another dtype or shape. Without options they are the plain (fused) losses. A label out of
 * range that is not ignore_index fails the run with JG_ERR_RANGE. */
#define jg_cross_entropy_ex(logits, labels, ...) \
    jg_cross_entropy_ex_(JG_HERE, logits, labels, __VA_ARGS__)
#define jg_bce_with_logits_ex(logits, targets, ...) \
    jg_bce_with_logits_ex_(JG_HERE, logits, targets, __VA_ARGS__)
#define jg_mse_loss_ex(a, b, ...) jg_mse_loss_ex_(JG_HERE, a, b, __VA_ARGS__)
/**@}*/
/** softplus_ex(x, beta, threshold) (torch's Softplus(beta, threshold); 1 and 20 there):
 * softplus(beta x) / beta, and x itself where beta x > threshold. jg_softplus is beta 1 with
 * no threshold (exact where PyTorch's default is within 2e-9 of it). beta must be positive and
 * finite; threshold INFINITY means none. */
#define jg_softplus_ex(x, beta, threshold) jg_softplus_ex_(JG_HERE, x, beta, threshold)

JG_API jg_node *jg_softmax_(jg_loc at, jg_node *x, int axis);
JG_API jg_node *jg_log_softmax_(jg_loc at, jg_node *x, int axis);
JG_API jg_node *jg_cross_entropy_(jg_loc at, jg_node *logits, jg_node *labels);
JG_API jg_node *jg_bce_with_logits_(jg_loc at, jg_node *logits, jg_node *targets);
JG_API jg_node *jg_mse_loss_(jg_loc at, jg_node *a, jg_node *b);
JG_API jg_node *jg_cross_entropy_ex_(jg_loc at, jg_node *logits, jg_node *labels,
                                     const jg_loss_opts *opts);
JG_API jg_node *jg_bce_with_logits_ex_(jg_loc at, jg_node *logits, jg_node *targets,
                                       const jg_loss_opts *opts);
JG_API jg_node *jg_mse_loss_ex_(jg_loc at, jg_node *a, jg_node *b, const jg_loss_opts *opts);
JG_API jg_node *jg_softplus_ex_(jg_loc at, jg_node *x, double beta, double threshold);

/**@{*/
/** The L2 penalty c * sum_i sum(params[i]^2) over n parameters of one float dtype (a scalar
 * of that dtype); add it to the loss: loss = jg_add(ce, jg_l2_penalty(1e-4, ws, 2)). Added
 * so (through top-level jg_add) under SGD without clipping, jg_compile_train applies it as
 * weight decay in the update instead of differentiating it (pass "l2_decay"; the same
 * weights); with Adam or RMSprop it stays coupled L2, which is not AdamW.
 * Errors: c negative or NaN or infinite, an operand that is not a parameter, mixed dtypes,
 * a NULL operand or one of another graph. With no operand at all (params NULL or n <= 0)
 * there is no graph to record on: the node is poisoned, nothing recorded. */
#define jg_l2_penalty(c, params, n) jg_l2_penalty_(JG_HERE, c, params, n)
JG_API jg_node *jg_l2_penalty_(jg_loc at, double c, jg_node *const *params, int n);
/**@}*/

/* ---------------------------------------------------------------- custom ops */

/** A custom op is a C function of your own, with a signature you declare, called through
 * libffi: it reads its inputs' data and writes the op's output, and may come with a C
 * backward per input. Example: y = s * x^2 and dx = 2 s x dy, on f64 data:
 *
 *     void sq(const double *x, double *y, int64_t n, double s);
 *     void sq_grad(const double *x, const double *dy, double *dx, int64_t n, double s);
 *
 *     jg_custom_def d = { .name = "scaled_square", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
 *         .forward = jg_cfn(sq, jg_arg_input(0), jg_arg_output(), jg_arg_numel(-1),
 *                           jg_arg_double(3.0)),
 *         .backward[0] = jg_cfn(sq_grad, jg_arg_input(0), jg_arg_grad(), jg_arg_output(),
 *                               jg_arg_numel(-1), jg_arg_double(3.0)) };
 *     jg_node *y = jg_custom(&d, &x, 1);
 *
 * - Data is contiguous, row-major, in the inputs' dtype: all inputs are f32 or all are f64,
 *   and the output has that dtype. The function returns void and must write every element
 *   of the output; it must not keep the pointers, and it must not write its inputs. It
 *   should be pure (the same inputs give the same output): the compiler may skip a call
 *   whose result nothing needs.
 * - out_shape left zeroed means a scalar output (ndim 0); JG_SAME_SHAPE means input 0's.
 * - Arguments are passed in the order of args[]. A function takes at most JG_CUSTOM_MAX_ARGS
 *   and has at least one JG_CARG_OUTPUT argument.
 * - Gradients: backward[k] computes the gradient of sum(output * dy) with respect to input k
 *   (its OUTPUT has input k's shape; JG_CARG_NUMEL -1 counts it; JG_CARG_NUMEL n_inputs
 *   counts the forward output, i.e. VALUE and GRAD). It may read the inputs, the forward
 *   output (VALUE) and the output's gradient (GRAD). backward[k].fn NULL: no gradient flows
 *   into input k (jg_grad gives NULL for it when nothing else carries one).
 * - The gradient is itself a custom op ("<name>.grad<k>") WITHOUT a gradient: first-order
 *   gradients work; second-order ones stop there (they see the backward as a constant), so
 *   Hessians, gradient penalties and double backward through a custom op are NOT computed.
 * - jg_gradcheck computes in double, except inside the function: an f32 custom op is checked
 *   at float precision (check the f64 version, or loosen the tolerances).
 * - The definition is copied into the graph (name included): the struct may be temporary.
 *   Function pointers and user pointers (JG_CARG_POINTER) must stay valid while programs
 *   compiled from the graph run. The function may be called from any thread, once per run
 *   and node, never concurrently for one program.
 * - Errors (recorded like any builder's: "file:line: jg_custom: '<name>': <reason>", and a
 *   poisoned node returned): n != n_inputs or n_inputs outside 1..JG_CUSTOM_MAX_INPUTS,
 *   i32 or mixed dtypes, an invalid out_shape, forward.fn NULL, n_args outside
 *   0..JG_CUSTOM_MAX_ARGS, an unknown kind, an index out of range, VALUE/GRAD in a forward,
 *   no OUTPUT argument, an INT constant outside int's range, backward[k] set for
 *   k >= n_inputs; def or def->name NULL, a NULL operand. With no operand at all (n <= 0 or
 *   inputs NULL) there is no graph to record on: the node is poisoned, nothing recorded. */
typedef enum jg_carg_kind {
    JG_CARG_INPUT,   /**< const T *: the data of input `index` */
    JG_CARG_OUTPUT,  /**< T *: the op's output (in a backward: the gradient being computed) */
    JG_CARG_VALUE,   /**< backward only: const T *: the forward output */
    JG_CARG_GRAD,    /**< backward only: const T *: the gradient of the forward output */
    JG_CARG_NUMEL,   /**< int64_t: the element count of input `index` (-1: of the output; in a
                        backward, n_inputs: of the forward output) */
    JG_CARG_INT,     /**< int: the constant i */
    JG_CARG_INT64,   /**< int64_t: the constant i */
    JG_CARG_DOUBLE,  /**< double: the constant f */
    JG_CARG_POINTER, /**< void *: the constant ptr (user data) */
} jg_carg_kind;

/** One argument; fields a kind does not use are ignored. */
typedef struct jg_carg {
    jg_carg_kind kind; /**< what the argument is */
    int index; /**< INPUT, NUMEL: which input (see jg_carg_kind) */
    int64_t i; /**< INT, INT64: the constant */
    double f; /**< DOUBLE: the constant */
    void *ptr; /**< POINTER: the constant */
} jg_carg;

#define JG_CUSTOM_MAX_ARGS 16 /**< the most arguments a custom function takes */
#define JG_CUSTOM_MAX_INPUTS 8 /**< the most inputs a custom op takes */

/** A C function returning void, and the arguments to call it with. */
typedef struct jg_cfn {
    void (*fn)(void); /**< the function, cast (jg_cfn does it) */
    int n_args; /**< how many of args are used */
    jg_carg args[JG_CUSTOM_MAX_ARGS]; /**< its arguments, in order */
} jg_cfn;

/** A custom op: its name, inputs, output shape, C forward and C backwards (see jg_custom). */
typedef struct jg_custom_def {
    const char *name;       /**< for messages and dumps (jg_node_name of the node) */
    int n_inputs;           /**< 1..JG_CUSTOM_MAX_INPUTS, all of one float dtype */
    jg_shape out_shape;     /**< ndim -1: the shape of input 0 */
    jg_cfn forward; /**< computes the output from the inputs */
    jg_cfn backward[JG_CUSTOM_MAX_INPUTS]; /**< backward[k].fn NULL: no gradient for input k */
} jg_custom_def;

/**@{*/
/** Shorthands: jg_cfn(fn, args...) names a function (of any pointer type) and its arguments,
 * counted for you; each argument is one of the jg_arg_ forms. */
#define jg_cfn(f, ...) ((jg_cfn){ .fn = (void (*)(void))(f), \
    .n_args = (int)(sizeof((jg_carg[]){ __VA_ARGS__ }) / sizeof(jg_carg)), .args = { __VA_ARGS__ } })
#define jg_arg_input(k) ((jg_carg){ .kind = JG_CARG_INPUT, .index = (k) })
#define jg_arg_output() ((jg_carg){ .kind = JG_CARG_OUTPUT })
#define jg_arg_value() ((jg_carg){ .kind = JG_CARG_VALUE })
#define jg_arg_grad() ((jg_carg){ .kind = JG_CARG_GRAD })
#define jg_arg_numel(k) ((jg_carg){ .kind = JG_CARG_NUMEL, .index = (k) })
#define jg_arg_int(v) ((jg_carg){ .kind = JG_CARG_INT, .i = (v) })
#define jg_arg_int64(v) ((jg_carg){ .kind = JG_CARG_INT64, .i = (v) })
#define jg_arg_double(v) ((jg_carg){ .kind = JG_CARG_DOUBLE, .f = (v) })
#define jg_arg_pointer(p) ((jg_carg){ .kind = JG_CARG_POINTER, .ptr = (p) })
/**@}*/
/** out_shape "like input 0". */
#define JG_SAME_SHAPE ((jg_shape){ .ndim = -1 })

/**@{*/
/** jg_custom(def, inputs, n): a node computing def's function of the n nodes inputs[0..n-1].
 * Variadic only so that a compound literal passes whole: jg_custom(&d, (jg_node *[]){ a, b }, 2). */
#define jg_custom(def, ...) jg_custom_(JG_HERE, def, __VA_ARGS__)
JG_API jg_node *jg_custom_(jg_loc at, const jg_custom_def *def, jg_node *const *inputs, int n);
/**@}*/

/* ---------------------------------------------------------------- autodiff */

/** Appends to the graph the gradient of sum(output) with respect to each wrt[i] (parameters
 * or inputs or any node) and stores it in grads_out[i]: a node of wrt[i]'s shape and dtype,
 * or NULL where no gradient flows (frozen parameters, integer nodes, nodes output does not
 * depend on). Gradients are ordinary nodes: differentiate them again for second order.
 * Errors are recorded on the graph as for builders, and returned. */
JG_API jg_status jg_grad(jg_graph *g, jg_node *output, jg_node *const *wrt, int n,
                         jg_node **grads_out /* OUT */);

/* ---------------------------------------------------------------- programs */

/** A compiled program: outputs, inputs bound by name, updates (jg_compile / _free). */
typedef struct jg_program jg_program;

/** Who runs a program. */
typedef enum jg_executor {
    JG_EXEC_DEFAULT = 0,  /**< the JIT */
    JG_EXEC_REFERENCE,    /**< plain C, computing in double: the test oracle */
    JG_EXEC_JIT,          /**< LLVM: fused, vectorised, multi-threaded kernels */
} jg_executor;

/** A parameter update applied after each run: param <- value (same shape and dtype). */
typedef struct jg_update {
    jg_node *param; /**< the parameter that receives value */
    jg_node *value; /**< its new value, of its shape and dtype */
} jg_update;

/** Training programs run dropout and use batch statistics in batchnorm (updating the running
 * statistics); evaluation programs skip dropout and use the running statistics. */
typedef enum jg_mode {
    JG_MODE_DEFAULT = 0, /**< evaluation for jg_compile, training for jg_compile_train */
    JG_MODE_TRAIN,
    JG_MODE_EVAL,
} jg_mode;

/** How to compile a program; zero-initialised fields take the defaults. */
typedef struct jg_opts {
    jg_executor executor; /**< JG_EXEC_JIT (default) or JG_EXEC_REFERENCE */
    jg_mode mode; /**< training or evaluation (JG_MODE_DEFAULT: by the compile function) */
    const jg_update *updates; /**< applied together after the outputs are computed */
    int n_updates; /**< how many */
    /** Keep every value in double instead of rounding f32 results to float after each op
     * (implies the reference executor). Gradient checks use it. */
    bool exact;
    /** JIT settings; zero values are the defaults. */
    int num_threads;          /**< 0: the number of cores; else 1..1024 */
    bool no_fusion;           /**< every op a kernel of its own (for experiments) */
    int vector_bits;          /**< 0: the widest the CPU has (512 with AVX-512, 256 with AVX2);
                                 256, 128, or 32 for scalar code */
    int opt_level;            /**< 0: jitgrad's passes (a short function pipeline: kernels come
                                 vectorised) and O3 code generation; 1..3: LLVM's default<On>
                                 and that code generation level; -1: O0 */
    const char *cpu;          /**< NULL: the host's; else an LLVM CPU name ("haswell"), used
                                 for scheduling: the features stay the host's unless
                                 cpu_features removes some; a name LLVM does not know
                                 fails the compile */
    const char *cpu_features; /**< NULL: the host's; else added to them ("-avx512f"); an
                                 unknown feature fails the compile */
    const char *cache_dir;    /**< kernel cache directory; NULL: $JITGRAD_CACHE_DIR if set,
                                 else none (an in-memory cache always dedups kernels). It
                                 holds machine code the process runs, so it must be as
                                 trusted as the library: it is created 0700 and used only
                                 while it is the user's and writable by nobody else; an entry
                                 that is not the user's regular file or fails its SHA-256
                                 checks is refused with a warning (printed to stderr and
                                 in jg_program_warnings) and recompiled */
    bool fresh_compile;       /**< compile every kernel, even one that another program of this
                                 process has compiled: without a disk cache, the process
                                 keeps compiled kernels (up to 64 MiB of object code) and a
                                 second program of a model links them instead. For
                                 cold-compile experiments */
    bool keep_text;           /**< keep each kernel's LLVM IR and assembly for inspection */
    /** JIT kernels treat subnormal inputs as zero and flush subnormal results to zero (x86
     * DAZ and FTZ, set around each kernel call on the thread running it, then restored; a
     * no-op elsewhere). Arithmetic on subnormals can cost ~100 cycles an operation: Adam's
     * moments decaying towards zero made its step 8x slower (bench_adam). Results then differ from
     * the reference executor's in values below 1.2e-38 (f32) or 2.2e-308 (f64). Custom
     * ops (jg_custom) run as they are. Default off, as in PyTorch. */
    bool flush_denormals;
    /** Passes to skip, comma-separated ("cse,siblings"); NULL: all on. jg_pass_name lists
     * them in order (an unknown name fails the compile); README's "Passes" section says
     * what each does. "fuse" off is the same
     * as no_fusion (and leaves siblings nothing to merge). */
    const char *passes_off;
    /** A directory (which must exist) where compiling writes the program graph after lowering
     * and after each graph pass, as NN-PASS.txt (jg_graph_dump's format) and NN-PASS.dot
     * (Graphviz). NULL: no dumps. */
    const char *dump_dir;
    /** After each kernel (each op on the reference executor), check its result for inf and
     * NaN and fail the run with JG_ERR_NONFINITE naming the first op that produced one and
     * where it was built. Costs a pass over every result: a debugging aid. The JIT checks
     * what kernels store: with fusion the op named is a kernel's last one (a value only the
     * other parts of a multi-output kernel read is never stored); add no_fusion to pin the
     * exact op. */
    bool check_finite;
    /** Print the warnings (jg_program_warnings) to stderr when compiling. */
    bool print_warnings;
} jg_opts;

/**@{*/
/** Compiles outputs (and updates) into a program; opts may be NULL. On failure returns NULL
 * and records the reason on the graph (jg_errmsg(g)). */
JG_API jg_program *jg_compile(jg_graph *g, jg_node *const *outputs, int n_outputs,
                              const jg_opts *opts);
/** Frees a program (NULL: nothing); its graph lives on while other programs or the caller hold it. */
JG_API void jg_program_free(jg_program *p);
/**@}*/
/** Binds an input by name; data holds exactly numel * dtype-size bytes (copied). The name of
 * a graph input that this program does not read is accepted and ignored; a name that is no
 * input of the graph is JG_ERR_ARG. */
JG_API jg_status jg_program_set(jg_program *p, const char *input, const void *data,
                                size_t bytes);
/** Runs once: computes the outputs, then applies the updates to the parameter store. */
JG_API jg_status jg_program_run(jg_program *p);
/** Copies output i (exactly numel * dtype-size bytes) after a run. */
JG_API jg_status jg_program_get(jg_program *p, int i, void *out, size_t bytes);
/**@{*/
/** Output i's shape and dtype; out-of-range i gives a 0-d shape / JG_F32. */
JG_API jg_shape jg_program_output_shape(const jg_program *p, int i);
JG_API jg_dtype jg_program_output_dtype(const jg_program *p, int i);
/** The number of outputs of p. */
JG_API int jg_program_output_count(const jg_program *p);
/** The program's last error message ("" if none); never NULL. */
JG_API const char *jg_program_errmsg(const jg_program *p);
/**@}*/
/** Warnings, one "warning: ..." line each ("" if none): the compiler's advice about a graph
 * that computes what it says but will not learn what its author wants, naming the node (op
 * or parameter) and the file:line where it was built; and the kernel cache's (a directory it
 * does not trust, an entry it refused). Warnings never make a compile fail;
 * jg_opts.print_warnings also prints them to stderr. Every program checks:
 * - a sigmoid, softmax or loss on logits fed straight from a ReLU (never negative: a
 *   classifier that predicts one class);
 * - a trainable weight matrix with a constant initialiser (symmetry never broken);
 * - jg_cross_entropy fed from a log_softmax or softmax, jg_bce_with_logits from a sigmoid
 *   (the loss applies it again);
 * - a per-channel bias added right before a jg_batchnorm (cancelled by the mean).
 * Training programs (jg_compile_train) also check:
 * - trainable parameters the loss's gradient does not reach (they never train);
 * - weight_decay or l2 on biases and normalisation parameters (1-D, or named *.bias,
 *   *.gamma, *.beta) that no no_decay group holds, or inside a jg_l2_penalty;
 * - coupled L2 (optimizer.l2, or a jg_l2_penalty in the loss) with Adam or RMSprop, whose
 *   scaling undoes it: use weight_decay (AdamW). */
JG_API const char *jg_program_warnings(const jg_program *p);

/* ---------------------------------------------------------------- inspecting programs */

/** What compiling cost and produced (JIT programs; zeros for the reference executor). */
typedef struct jg_program_stats {
    int kernels;            /**< one per fused group */
    int cache_hits;         /**< kernels found in the in-memory or disk cache */
    int threads; /**< threads the kernels run on */
    int vector_bits;        /**< 512, 256, 128 or 32 */
    size_t arena_bytes;     /**< every intermediate buffer, planned by liveness */
    int in_place_updates;   /**< parameter updates written straight into the store */
    int cse_merged;         /**< nodes found equal to an earlier one (pass "cse") */
    int simplified;         /**< nodes folded away (pass "simplify") */
    int warnings;           /**< lines of jg_program_warnings */
    /**@{*/
    double passes_ms, build_ms, optimise_ms, codegen_ms, total_ms; /**< compile time */
    /**@}*/
} jg_program_stats;

/** Fills *out with what compiling p cost and produced; JG_ERR_ARG for NULL arguments. */
JG_API jg_status jg_program_stats_get(const jg_program *p, jg_program_stats *out /* OUT */);
/** The passes a program went through, in order (JIT programs: the graph passes that apply
 * to its mode, then fuse, gather, siblings, inplace; none on the reference executor). */
typedef struct jg_pass_report {
    const char *name;     /**< as in jg_opts.passes_off */
    bool ran;             /**< false: switched off */
    bool changed;         /**< it rewrote something */
    /**@{*/
    int nodes_before, nodes_after; /**< program-graph nodes around it */
    /**@}*/
    int rewrites;         /**< nodes it replaced or merged (fuse: kernels formed; gather:
                             im2col operands gathered by GEMMs; siblings: whether groups
                             merged; inplace: updates written in place) */
    double ms;            /**< what it cost */
} jg_pass_report;

/**@{*/
/** Every switchable pass, in the order programs apply them; NULL past the end. */
JG_API const char *jg_pass_name(int i);
/** The number of passes p went through (see jg_program_pass_report). */
JG_API int jg_program_pass_count(const jg_program *p);
/**@}*/
/** Pass i's report; JG_ERR_ARG when i is out of range. */
JG_API jg_status jg_program_pass_report(const jg_program *p, int i, jg_pass_report *out);
/** The reports as a table, one pass a line. */
JG_API void jg_program_pass_dump(const jg_program *p, FILE *out);
/** The fused groups as text, one kernel a line with its member ops. */
JG_API void jg_program_dump(const jg_program *p, FILE *out);
/** Graphviz DOT of the program's graph with each fused kernel as a cluster. */
JG_API void jg_program_dot(const jg_program *p, FILE *out);
/**@{*/
/** Kernel i's optimised LLVM IR and assembly; NULL unless compiled with keep_text. */
JG_API const char *jg_program_kernel_ir(const jg_program *p, int i);
JG_API const char *jg_program_kernel_asm(const jg_program *p, int i);
/**@}*/
/**@{*/
/** Per-kernel timing over the following runs (off by default: it costs a clock read per
 * kernel; switching it on starts the times afresh, so untimed warm-up runs, whose first
 * faults the arena's pages in, can be left out); jg_program_profile_dump prints a table,
 * slowest first. */
JG_API void jg_program_profile(jg_program *p, bool on);
JG_API void jg_program_profile_dump(const jg_program *p, FILE *out);
/**@}*/

/* ---------------------------------------------------------------- training */

/** The optimisers. */
typedef enum jg_optimizer_kind { JG_OPT_SGD, JG_OPT_ADAM, JG_OPT_RMSPROP } jg_optimizer_kind;

/** Optimiser settings. The learning rate lives in the store as the frozen f64 scalar parameter
 * "<name>.lr" (name from jg_train_opts: "opt.lr" by default), so it can be changed between
 * runs with jg_param_set (or jg_program_set_lr) without recompiling. Invalid settings
 * (lr <= 0, negative or NaN momentum, eps, weight_decay or l2, betas or alpha outside [0, 1),
 * nesterov without momentum or with another kind than SGD) make jg_compile_train fail with
 * JG_ERR_ARG.
 *
 * The rules, for a parameter w with gradient g (averaged over accumulated runs, then with the
 * coupled L2 term added) and learning rate lr (times its group's lr_scale):
 *   SGD       v = momentum v + g;  d = nesterov ? g + momentum v : v  (no momentum: d = g)
 *             w = w - lr d
 *   Adam      m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  t = t + 1
 *             w = w - lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
 *   RMSprop   v = alpha v + (1 - alpha) g^2;  s = g / (sqrt(v) + eps)   (PyTorch's rule)
 *             with momentum: b = momentum b + s, w = w - lr b;  without: w = w - lr s
 * Two regularisers, kept distinct:
 *   l2 (coupled L2 penalty)  g = g + l2 w before the rule, as if l2/2 |w|^2 were added to the
 *                            loss: the term goes through momentum and Adam's scaling.
 *   weight_decay (decoupled) after the rule, w = w - lr weight_decay w_old (w_old: before
 *                            the step), outside momentum and Adam's scaling. Adam with
 *                            weight_decay is AdamW (Loshchilov and Hutter; PyTorch's AdamW).
 * For SGD without momentum the two give the same update; with momentum or Adam they differ. */
typedef struct jg_optimizer {
    jg_optimizer_kind kind; /**< SGD, Adam or RMSprop */
    double lr; /**< learning rate */
    double momentum;     /**< SGD, RMSprop: 0 for none */
    bool nesterov;       /**< SGD with momentum */
    /**@{*/
    double beta1, beta2; /**< Adam; 0 means the defaults 0.9, 0.999 */
    /**@}*/
    double eps;          /**< Adam, RMSprop; 0 means 1e-8 */
    double weight_decay; /**< decoupled (AdamW style) decay per step, scaled by lr */
    double alpha;        /**< RMSprop's smoothing of g^2; 0 means 0.99 */
    double l2;           /**< coupled L2 penalty: adds l2 * w to the gradient */
} jg_optimizer;

/** SGD with momentum (0: none) */
#define jg_sgd(lr_, momentum_) \
    ((jg_optimizer){ .kind = JG_OPT_SGD, .lr = (lr_), .momentum = (momentum_) })
#define jg_adam(lr_) ((jg_optimizer){ .kind = JG_OPT_ADAM, .lr = (lr_) }) /**< Adam */
/** Adam with decoupled weight decay (AdamW) */
#define jg_adamw(lr_, weight_decay_) ((jg_optimizer){ .kind = JG_OPT_ADAM, .lr = (lr_), \
    .weight_decay = (weight_decay_) })
#define jg_rmsprop(lr_) ((jg_optimizer){ .kind = JG_OPT_RMSPROP, .lr = (lr_) }) /**< RMSprop */

/** Settings for the parameters whose name starts with prefix ("" matches every name). A
 * frozen group is left out of training: no gradient, no optimiser state, no update (as
 * jg_param_freeze, but for this program only). */
typedef struct jg_param_group {
    const char *prefix; /**< the parameters whose names start with it */
    double lr_scale;     /**< the learning rate is multiplied by it; 0 means 1 */
    bool no_decay;       /**< neither weight_decay nor l2 (biases, batchnorm scales) */
    bool frozen; /**< no update and no gradient for the group */
} jg_param_group;

/** How to compile a training program (jg_compile_train). */
typedef struct jg_train_opts {
    jg_optimizer optimizer; /**< the update rule and its settings */
    /** How to compile (executor, threads, JIT settings); its updates must be empty. */
    jg_opts compile;
    /** Further outputs computed in the same run (after the loss, which is output 0). */
    jg_node *const *extra_outputs;
    int n_extra_outputs; /**< how many */
    /** Prefix of this program's optimiser state in the store; NULL or "" means "opt". Each
     * training program compiled from one graph needs its own. */
    const char *name;
    /** Parameter groups: a parameter takes the settings of the FIRST group whose prefix
     * its name starts with; parameters matching none train with the defaults. */
    const jg_param_group *groups;
    int n_groups; /**< how many */
    /** Gradient accumulation: each run adds its gradients to "<name>.<param>.acc" and every
     * accumulate-th run applies the update with their MEAN (so accumulating k batches of n
     * equals one batch of k n under a mean loss), then clears them. "<name>.count" counts
     * the runs since the last update. 0 or 1: update on every run. The loss output is still
     * the loss of each run's own batch. */
    int accumulate;
    /** Gradient clipping, inserted by the compiler between the gradients and the update and
     * fused into the update kernels (0: off). clip_value clamps each gradient element to
     * [-clip_value, clip_value]; clip_norm scales the gradients by min(1, clip_norm / norm),
     * where norm is the L2 norm over all parameters' gradients together, or each
     * parameter's own with clip_per_param. Value clipping applies first. */
    /**@{*/
    /** clip each gradient element to [-clip_value, clip_value]; clip the L2 norm to
     * clip_norm */
    double clip_value, clip_norm;
    /**@}*/
    bool clip_per_param; /**< clip_norm per parameter instead of over all */
} jg_train_opts;

/** Compiles one training step: loss (output 0, a scalar), its gradient with respect to every
 * trainable parameter, and the optimiser update, applied in place on each run. Optimiser
 * state is added to the store as frozen parameters, with name = opts->name ("opt" if unset):
 * the learning rate "<name>.lr", Adam's step count "<name>.t", the accumulation counter
 * "<name>.count", and per parameter its momentum or first moment "<name>.<param>.m", the
 * second moment of Adam and RMSprop "<name>.<param>.v" and the gradient sum
 * "<name>.<param>.acc". Invalid groups (NULL prefix, lr_scale negative or not finite) and
 * accumulate < 0 are JG_ERR_ARG.
 * NULL on failure (jg_errmsg(g)), in particular JG_ERR_ARG when "<name>.lr" already exists
 * (another training program uses that name), when a state name is already taken by a
 * parameter or input, or when a state name would be longer than 255 characters. */
JG_API jg_program *jg_compile_train(jg_graph *g, jg_node *loss, const jg_train_opts *opts);

/* ---------------------------------------------------------------- gradient checking */

/** How jg_gradcheck compares. */
typedef enum jg_gradcheck_mode {
    JG_CHECK_ELEMENTS = 0, /**< every element of every wrt node (central differences) */
    JG_CHECK_DIRECTIONS,   /**< n_directions random directions through all wrt at once */
} jg_gradcheck_mode;

/** Values for inputs during a gradient check. */
typedef struct jg_binding {
    const char *name; /**< the input's name */
    const void *data; /**< its data, numel values of its dtype */
    size_t bytes; /**< the size of data in bytes */
} jg_binding;

/** Options of jg_gradcheck; zero-initialised fields take the defaults. */
typedef struct jg_gradcheck_opts {
    jg_gradcheck_mode mode; /**< elements (default) or random directions */
    double eps;           /**< finite-difference step; 0 means 1e-6 */
    /**@{*/
    double rtol, atol;    /**< pass when |a - n| <= atol + rtol * max(|a|, |n|); 0: 1e-6, 1e-8 */
    /**@}*/
    int n_directions;     /**< JG_CHECK_DIRECTIONS; 0 means 8 */
    uint64_t seed;        /**< directions, projection, unbound inputs, kink moves; 0 means 1 */
    const jg_binding *inputs; /**< values of inputs; unbound float inputs get N(0, 1) values */
    int n_inputs; /**< how many */
    int max_moves;        /**< attempts to move the point away from kinks; 0 means 20 */
    bool train;           /**< check the training-mode function (batch statistics; dropout
                             masks stay fixed during a check); state is never updated */
} jg_gradcheck_opts;

/** What jg_gradcheck found. */
typedef struct jg_gradcheck_report {
    bool passed; /**< every comparison within tolerance */
    int n_checked;        /**< elements or directions compared */
    int n_failed; /**< comparisons out of tolerance */
    int moves;            /**< how often the point was moved away from a kink */
    /**@{*/
    double max_abs_err, max_rel_err; /**< the largest absolute and relative differences */
    /**@}*/
    /** The worst comparison: */
    int worst_wrt;        /**< index into wrt[] (-1 in direction mode) */
    int64_t worst_index;  /**< flat element index (direction number in direction mode) */
    /**@{*/
    /** the worst comparison's derivatives: from the gradient, and by finite differences */
    double analytic, numeric;
    /**@}*/
    char message[512];    /**< a readable summary naming the node and the worst element */
} jg_gradcheck_report;

/** Checks the gradient of output with respect to wrt[] by central finite differences in double
 * (the reference executor in exact mode, so f32 graphs are checked in double too). A
 * non-scalar output is projected on a fixed random tensor R: the checked function is
 * sum(output * R). Parameter values are restored afterwards. Appends nodes to the graph.
 * Returns JG_OK when it ran and passed, JG_ERR_GRAD when it ran and failed (see report),
 * another status when it could not run (message on the graph). opts may be NULL. */
JG_API jg_status jg_gradcheck(jg_graph *g, jg_node *output, jg_node *const *wrt, int n,
                              const jg_gradcheck_opts *opts, jg_gradcheck_report *report);

/** Pass bisection: when a compiled program computes wrong values (a failing gradient check, a
 * JIT result unlike the reference executor's), which compiler pass is to blame. The
 * reference executor computes the truth (per-op f32 rounding, as f32 kernels round; not
 * exact); then JIT programs are compiled and run once with every pass off, and with the
 * passes switched on one more at a time in pipeline order (jg_pass_name); the first
 * configuration that disagrees, or fails to compile or run, names its newest pass:
 *
 *     jg_node *d;
 *     jg_grad(g, loss, &w, 1, &d);          // gradients are outputs like any other
 *     jg_bisect_report r;
 *     if (jg_bisect_passes(g, &d, 1, &opts, inputs, n_inputs, 0, 0, &r) == JG_OK)
 *         puts(r.message);                   // "cse: switching it on breaks agreement ..."
 */
typedef struct jg_bisect_report {
    const char *culprit;  /**< "none": every configuration agrees; "codegen": even with every
                             pass off the JIT disagrees (or fails); else the first pass whose
                             switching on makes the program disagree or fail */
    int configs;          /**< JIT programs compiled and run */
    int worst_output;     /**< the deciding configuration's worst element ("none": the whole
                             pipeline's): output index, -1 if it failed to compile or run */
    int64_t worst_index;  /**< flat element index */
    /**@{*/
    double value, reference; /**< that element, and the reference's */
    /**@}*/
    double before;        /**< that element with the culprit still off (NaN unless a pass) */
    char message[512];    /**< the verdict, naming the pass, the element and the values */
} jg_bisect_report;

/** outputs: n nodes of g (values, or gradients from jg_grad). base (NULL: defaults): its mode
 * is kept (training mode: batch statistics, the first run's dropout masks; state is never
 * updated) and its passes_off stay off in every configuration (no_fusion as "fuse"); its
 * executor, exact, updates, check_finite and dump_dir are not used. inputs: a value for every
 * input the outputs read. Elements agree when |v - ref| <= atol + rtol |ref| (NaN with NaN
 * and equal infinities too); rtol = atol = 0 means 1e-4 and 1e-5 for f32 outputs, 1e-9 and
 * 1e-12 for f64, exact for i32. Returns JG_OK when it ran (the verdict in *out); JG_ERR_ARG
 * for bad arguments, or the status of the reference run when it fails (an unbound input),
 * with the reason in out->message and jg_errmsg(g). The graph is left as it was: a
 * configuration that fails to compile is reported, not recorded on the graph. */
JG_API jg_status jg_bisect_passes(jg_graph *g, jg_node *const *outputs, int n,
                                  const jg_opts *base, const jg_binding *inputs, int n_inputs,
                                  double rtol, double atol, jg_bisect_report *out /* OUT */);

/* ---------------------------------------------------------------- data files */

/**@{*/
/** Reads an IDX file (as in MNIST / Fashion-MNIST), gzip-compressed or not. u8 data becomes
 * f32 or f64 scaled to [0, 1] when as is JG_F32 or JG_F64, or i32 when as == JG_I32 (float
 * data cannot be read as i32: JG_ERR_DTYPE). A malformed file is JG_ERR_IO. On failure returns
 * a status, leaves *out zeroed, and writes a message naming the file and the problem into
 * errbuf (if not NULL). */
JG_API jg_status jg_idx_read(const char *path, jg_dtype as, jg_array *out /* OUT */,
                             char *errbuf, size_t errbuf_size);
/** Frees an array's data and zeroes the struct (NULL: nothing). */
JG_API void jg_array_free(jg_array *a);
/**@}*/

/* ---------------------------------------------------------------- model kit: regularisation */

/**@{*/
/** Inverted dropout: in training programs each element is zeroed with probability p and the
 * rest scaled by 1 / (1 - p); in evaluation programs the identity. The mask comes from a
 * counter-based generator keyed by (graph seed, node, run step): reproducible, different
 * every run, recomputed in the backward pass rather than stored. */
#define jg_dropout(x, p) jg_dropout_(JG_HERE, x, p)
JG_API jg_node *jg_dropout_(jg_loc at, jg_node *x, double p);
/**@}*/

/**@{*/
/** Batch normalisation over dim 1 of x ([N, C] or [N, C, H, W, ...]): parameters
 * "<name>.gamma", "<name>.beta" (trainable) and "<name>.running_mean", "<name>.running_var"
 * (frozen state; reused when the name exists). Training programs normalise with the batch
 * statistics (biased variance) and update the running ones with
 * r <- (1 - momentum) r + momentum * batch (unbiased variance); evaluation programs use the
 * running statistics. Typical: momentum 0.1, eps 1e-5. */
#define jg_batchnorm(name, x, momentum, eps) jg_batchnorm_(JG_HERE, name, x, momentum, eps)
JG_API jg_node *jg_batchnorm_(jg_loc at, const char *name, jg_node *x, double momentum,
                              double eps);
/**@}*/
/**@{*/
/** Layer normalisation over the last dimension, with "<name>.gamma" and "<name>.beta". */
#define jg_layernorm(name, x, eps) jg_layernorm_(JG_HERE, name, x, eps)
JG_API jg_node *jg_layernorm_(jg_loc at, const char *name, jg_node *x, double eps);
/**@}*/
/**@{*/
/** The same over the last `dims` dimensions (PyTorch's LayerNorm(normalized_shape) with
 * normalized_shape those dimensions), gamma and beta of their shape. */
#define jg_layernorm_ex(name, x, eps, dims) jg_layernorm_ex_(JG_HERE, name, x, eps, dims)
JG_API jg_node *jg_layernorm_ex_(jg_loc at, const char *name, jg_node *x, double eps, int dims);
/**@}*/

/* ---------------------------------------------------------------- model kit: layers */
/* (convolution, pooling: ops/conv.c) */

/** 2-D convolution and pooling over NCHW tensors (f32 or f64). They are composites of the ops
 * above (an im2col gather by jg_take with a constant index table, pad, reshape, matmul,
 * reductions): gradients, the JIT and the reference executor handle them with no special
 * code, and jg_graph_dump shows those ops.
 *
 * Options of jg_conv2d / jg_conv_transpose2d; a zero field takes its default (stride 1,
 * padding 0, dilation 1, groups 1, output padding 0), a negative one is JG_ERR_ARG; opts may
 * be NULL. Padding adds pad_h zero rows at the top AND the bottom (pad_w columns each side).
 * groups splits the channels into that many independent convolutions (groups == C: depthwise).
 * output_padding (transposed convolution only) adds rows/columns at the bottom/right of the
 * output to pick among the input sizes that a strided conv2d maps to one size; it must be
 * smaller than the stride or the dilation. */
typedef struct jg_conv_opts {
    /**@{*/
    int stride_h, stride_w; /**< 0: 1 */
    /**@}*/
    /**@{*/
    int pad_h, pad_w; /**< 0: no padding */
    /**@}*/
    /**@{*/
    int dilation_h, dilation_w; /**< spacing of the kernel's taps; 0: 1 */
    /**@}*/
    int groups; /**< 0: 1; groups == C: depthwise */
    /**@{*/
    int output_padding_h, output_padding_w; /**< conv_transpose2d only; 0: none */
    /**@}*/
    /** conv2d only: bottom and right padding other than pad_h / pad_w, which are then the top
     * and left (PyTorch: F.pad before the convolution, or padding='same' with an even kernel:
     * top d(k-1)/2 rounded down, the rest at the bottom). Used when pad_asymmetric is set. */
    bool pad_asymmetric;
    /**@{*/
    int pad_bottom, pad_right; /**< with pad_asymmetric: the bottom and right padding */
    /**@}*/
} jg_conv_opts;

/* conv2d(x [N,C,H,W], w [O,C/groups,KH,KW], bias [O] or NULL) -> [N,O,OH,OW] with
 * OH = (H + 2*pad_h - dilation_h*(KH-1) - 1) / stride_h + 1 (rounded down; OW likewise).
 * A cross-correlation, as in PyTorch: out[n,o,i,j] = bias[o] + sum over c in o's group, kh,
 * kw of x_padded[n,c, i*stride_h + kh*dilation_h, j*stride_w + kw*dilation_w] * w[o,c',kh,kw].
 * Errors: x or w not 4-D, i32 or differing dtypes, C != groups * w's second dimension,
 * groups not dividing C and O, a bias not [O], a kernel larger than the padded input,
 * negative options, output_padding set. Example, 3x3 "same" convolution:
 *     jg_node *h = jg_conv2d(x, w, b, &(jg_conv_opts){ .pad_h = 1, .pad_w = 1 }); */
/* (variadic only so that a compound literal of options passes whole) */
/** 2-D convolution (see the comment above jg_conv_opts); opts may be NULL. */
#define jg_conv2d(x, w, bias, ...) jg_conv2d_(JG_HERE, x, w, bias, __VA_ARGS__)
/** conv_transpose2d(x [N,C,H,W], w [C,O/groups,KH,KW], bias [O] or NULL) -> [N,O,OH,OW] with
 * OH = (H-1)*stride_h - 2*pad_h + dilation_h*(KH-1) + output_padding_h + 1: the adjoint of
 * conv2d with respect to its input (w has conv2d's layout for the reverse direction C <- O),
 * as PyTorch's ConvTranspose2d; for generators (upsampling). Same errors as jg_conv2d, with
 * w's FIRST dimension matched against C, plus padding that leaves no output. */
#define jg_conv_transpose2d(x, w, bias, ...) \
    jg_conv_transpose2d_(JG_HERE, x, w, bias, __VA_ARGS__)
/**@{*/
/** Pooling over kh x kw windows of x [N,C,H,W] moved by stride_h/stride_w (>= 1, no default),
 * padding pad_h/pad_w (each at most half the kernel, as in PyTorch) on both sides ->
 * [N,C,OH,OW], OH = (H + 2*pad_h - kh) / stride_h + 1 (rounded down). max_pool2d pads with
 * -inf (padding never wins) and gives each window's gradient to its first maximum in
 * row-major order (JG_TIES_FIRST, as PyTorch; jg_max_pool2d_ex chooses). avg_pool2d counts
 * the padding as zeros and always divides by kh*kw (PyTorch's count_include_pad=True), so
 * windows at a padded border average in zeros. */
#define jg_max_pool2d(x, kh, kw, stride_h, stride_w, pad_h, pad_w) \
    jg_max_pool2d_(JG_HERE, x, kh, kw, stride_h, stride_w, pad_h, pad_w)
#define jg_avg_pool2d(x, kh, kw, stride_h, stride_w, pad_h, pad_w) \
    jg_avg_pool2d_(JG_HERE, x, kh, kw, stride_h, stride_w, pad_h, pad_w)
/**@}*/

/** Options of jg_max_pool2d_ex and jg_avg_pool2d_ex; zero-initialised fields take the
 * defaults, which are PyTorch's. */
typedef struct jg_pool_opts {
    /**@{*/
    int stride_h, stride_w;     /**< 0: the kernel size (PyTorch's default) */
    /**@}*/
    /**@{*/
    int pad_h, pad_w;           /**< on both sides (max: -inf, average: 0), at most half the
                                   kernel; default 0 */
    /**@}*/
    /**@{*/
    int dilation_h, dilation_w; /**< max only: spacing of a window's taps; 0: 1 */
    /**@}*/
    jg_ties ties;               /**< max only; default JG_TIES_FIRST */
    /** ceil_mode: the output length rounds up, OH = ceil((H + 2 pad_h - dilation_h (kh - 1) -
     * 1) / stride_h) + 1, less one if the last window would start in the bottom padding; the
     * windows past the end are clipped (max: read -inf; average: not counted) */
    bool ceil_mode;
    /** average only: divide by the window's elements inside the input, not counting padding
     * (PyTorch's count_include_pad = False) */
    bool exclude_pad;
} jg_pool_opts;

/** max_pool2d_ex(x [N,C,H,W], kh, kw, opts or NULL) -> [N,C,OH,OW] with OH = (H + 2*pad_h -
 * dilation_h*(kh-1) - 1) / stride_h + 1: jg_max_pool2d with PyTorch's MaxPool2d options and
 * a tie policy. Errors: x not 4-D or not float, sizes < 1, padding over half the kernel, a
 * window larger than the padded input, an unknown tie policy. */
#define jg_max_pool2d_ex(x, kh, kw, ...) jg_max_pool2d_ex_(JG_HERE, x, kh, kw, __VA_ARGS__)
/** avg_pool2d_ex(x [N,C,H,W], kh, kw, opts or NULL) -> [N,C,OH,OW]: jg_avg_pool2d with
 * PyTorch's AvgPool2d options (stride, padding, ceil_mode, count_include_pad as exclude_pad).
 * Each window's sum is divided as PyTorch does: by its size within the padded input, or with
 * exclude_pad within the input. Errors as jg_max_pool2d_ex's, and dilation set. */
#define jg_avg_pool2d_ex(x, kh, kw, ...) jg_avg_pool2d_ex_(JG_HERE, x, kh, kw, __VA_ARGS__)
/** global_avg_pool(x [N,C,H,W]) -> [N,C]: the mean over H and W. */
#define jg_global_avg_pool(x) jg_global_avg_pool_(JG_HERE, x)

JG_API jg_node *jg_conv2d_(jg_loc at, jg_node *x, jg_node *w, jg_node *bias,
                           const jg_conv_opts *opts);
JG_API jg_node *jg_conv_transpose2d_(jg_loc at, jg_node *x, jg_node *w, jg_node *bias,
                                     const jg_conv_opts *opts);
JG_API jg_node *jg_max_pool2d_(jg_loc at, jg_node *x, int kh, int kw, int stride_h,
                               int stride_w, int pad_h, int pad_w);
JG_API jg_node *jg_avg_pool2d_ex_(jg_loc at, jg_node *x, int kh, int kw,
                                  const jg_pool_opts *opts);
JG_API jg_node *jg_max_pool2d_ex_(jg_loc at, jg_node *x, int kh, int kw,
                                  const jg_pool_opts *opts);
JG_API jg_node *jg_avg_pool2d_(jg_loc at, jg_node *x, int kh, int kw, int stride_h,
                               int stride_w, int pad_h, int pad_w);
JG_API jg_node *jg_global_avg_pool_(jg_loc at, jg_node *x);

/* ---------------------------------------------------------------- model kit: recurrent */
/* (RNN, GRU, LSTM cells and sequences: ops/recurrent.c) */

/**@{*/
/** Recurrent layers, built from existing ops (matmul, sigmoid, tanh, slice, take, where), so
 * gradients, the JIT and the reference executor need nothing of their own. Weights live in
 * the store under a caller-given prefix: "<prefix>.w_ih" [I, k*H], "<prefix>.w_hh" [H, k*H],
 * "<prefix>.b" [k*H] with k = 1 (tanh RNN), 3 (GRU: gates r, z, n) or 4 (LSTM: gates i, f,
 * g, o). They are created on first use in x's dtype (Xavier uniform, biases zero, the LSTM
 * forget-gate bias 1) and REUSED when the prefix comes again, so unrolled steps share them;
 * an existing weight of another shape or dtype is an error (JG_ERR_SHAPE / JG_ERR_DTYPE).
 * Cells take x [B, I] and h (and c) [B, H] of one float dtype:
 *   rnn:  h' = tanh(x W_ih + h W_hh + b)
 *   gru:  r = sigmoid(x W_ir + h W_hr + b_r), z = sigmoid(x W_iz + h W_hz + b_z),
 *         n = tanh(x W_in + b_n + r * (h W_hn)), h' = (1 - z) * n + z * h
 *         (one bias, on the input side: b_hr/b_hz fold into b; PyTorch's b_hn inside the
 *         product cannot, see jg_rnn_opts.gru_b_hn)
 *   lstm: c' = f * c + i * g, h' = o * tanh(c')  (i, f, o sigmoid; g tanh)
 * jg_lstm_cell returns h' and also stores h' and c' in *h_out and *c_out (either may be
 * NULL); on error all are the poisoned node. */
#define jg_rnn_cell(g, prefix, x, h) jg_rnn_cell_(JG_HERE, g, prefix, x, h)
#define jg_gru_cell(g, prefix, x, h) jg_gru_cell_(JG_HERE, g, prefix, x, h)
#define jg_lstm_cell(g, prefix, x, h, c, h_out, c_out) \
    jg_lstm_cell_(JG_HERE, g, prefix, x, h, c, h_out, c_out)
/**@}*/

/** The recurrent cells: tanh RNN, GRU, LSTM. */
typedef enum jg_rnn_kind { JG_RNN_TANH, JG_GRU, JG_LSTM } jg_rnn_kind;

/** Options of jg_rnn; zero-initialised fields take the defaults. */
typedef struct jg_rnn_opts {
    /** A second pass runs from the end; its weights have the prefix "<prefix>.bwd" and the
     * forward pass's "<prefix>.fwd" (unidirectional: "<prefix>"). Outputs concatenate
     * [forward, backward] along the last axis. */
    bool bidirectional;
    /** false: the last state [B, H] (bidirectional: forward's last and backward's first,
     * [B, 2H]); true: every step's state [B, T, H] (or [B, T, 2H]). */
    bool return_sequences;
    /** NULL: every sequence has T steps. Else an i32 node [B] of lengths in 1..T: steps
     * t >= length keep the previous state, so "last" is the state at each sequence's own
     * length, and those steps output zeros in return_sequences. The backward pass reads each
     * sequence from its own last element (x[b, len-1], ..., x[b, 0]), as PyTorch's packed
     * sequences do. Lengths are not checked at run time: one <= 0 keeps the initial
     * state, one > T acts as T. */
    jg_node *lengths;
    /** Initial states [B, D*H] (D = 2 when bidirectional: the forward's H columns, then the
     * backward's) of x's dtype; NULL: zeros. c0 is the LSTM's cell state. PyTorch's h0
     * [D, B, H] becomes ours by permute(1, 0, 2) and a reshape to [B, D*H]. */
    /**@{*/
    jg_node *h0, *c0;
    /**@}*/
    /** If not NULL, receive the final states [B, D*H]: the last hidden state of each direction
     * (PyTorch's h_n, permuted as h0) and, for the LSTM, the last cell state (c_n). */
    /**@{*/
    jg_node **h_n, **c_n;
    /**@}*/
    /** GRU only: PyTorch's formulation n = tanh(x W_in + b_in + r * (h W_hn + b_hn)), with the
     * extra parameter "<prefix>.b_hn" [H] (zeros when created). Without it b_hn is 0. */
    bool gru_b_hn;
} jg_rnn_opts;

/** jg_rnn(g, kind, prefix, x [B, T, I], hidden, opts): the sequence unrolled over T steps
 * from opts->h0 (zeros by default) with shared weights; opts may be NULL (unidirectional, last
 * state). With T = 1 and h0 it is one step of a cell (nn.GRUCell with b_hn included).
 * PyTorch's weights load as: w_ih = weight_ih_l0 transposed (jg_param_set_transposed),
 * w_hh = weight_hh_l0 transposed, b = bias_ih_l0 + bias_hh_l0, except a GRU's n block of b,
 * which is bias_ih_l0's alone, with bias_hh_l0's n block as b_hn (gru_b_hn); gate orders agree
 * (i, f, g, o and r, z, n).
 * Unrolling puts every step in the graph: a training program holds about 25 kernels per LSTM
 * step and direction, so compile time grows with T (seconds for T = 28).
 * Variadic only so that a compound literal passes whole:
 * jg_rnn(g, JG_LSTM, "enc", x, 128, &(jg_rnn_opts){ .bidirectional = true, .lengths = len }). */
#define jg_rnn(g, kind, prefix, x, hidden, ...) \
    jg_rnn_(JG_HERE, g, kind, prefix, x, hidden, __VA_ARGS__)
/** jg_embedding(g, name, ids, vocab, dim): take(W, ids, 0) of a parameter W = "<name>"
 * [vocab, dim] (N(0, 1) init, f32; reused when it exists), for i32 ids of any shape
 * (e.g. [B, T] -> [B, T, dim]). An id outside 0..vocab-1 fails the run with JG_ERR_RANGE. */
#define jg_embedding(g, name, ids, vocab, dim) jg_embedding_(JG_HERE, g, name, ids, vocab, dim)
/** The same with the weight created in dtype t (f32 or f64: an f64 model for gradient checks);
 * an existing weight of another dtype is JG_ERR_DTYPE. */
#define jg_embedding_as(g, name, ids, vocab, dim, t) \
    jg_embedding_as_(JG_HERE, g, name, ids, vocab, dim, t)

JG_API jg_node *jg_rnn_cell_(jg_loc at, jg_graph *g, const char *prefix, jg_node *x, jg_node *h);
JG_API jg_node *jg_gru_cell_(jg_loc at, jg_graph *g, const char *prefix, jg_node *x, jg_node *h);
JG_API jg_node *jg_lstm_cell_(jg_loc at, jg_graph *g, const char *prefix, jg_node *x,
                              jg_node *h, jg_node *c, jg_node **h_out /* OUT */,
                              jg_node **c_out /* OUT */);
JG_API jg_node *jg_rnn_(jg_loc at, jg_graph *g, jg_rnn_kind kind, const char *prefix,
                        jg_node *x, int64_t hidden, const jg_rnn_opts *opts);
JG_API jg_node *jg_embedding_(jg_loc at, jg_graph *g, const char *name, jg_node *ids,
                              int64_t vocab, int64_t dim);
JG_API jg_node *jg_embedding_as_(jg_loc at, jg_graph *g, const char *name, jg_node *ids,
                                 int64_t vocab, int64_t dim, jg_dtype t);

/* ---------------------------------------------------------------- model kit: images */
/* (augmentation: ops/image.c) */

/**@{*/
/** Graph image ops on the last two axes of x: [H, W], [N, H, W] or [N, C, H, W] (other ranks
 * are JG_ERR_SHAPE). Every image of the batch gets the same transform. Each op is a composite
 * of differentiable ops (slice, pad, concat, take, elementwise): gradients, the JIT and the
 * reference executor need nothing more. For per-sample random transforms of training data
 * use jg_augment below, on the host.
 * - hflip / vflip: mirror left-right / top-bottom. Any dtype.
 * - translate(x, dy, dx): out[y][x] = x[y - dy][x - dx], zero outside, so (1, 0) moves the
 *   content one row down. Any dtype.
 * - gaussian_blur(x, sigma): separable, 2 * ceil(3 sigma) + 1 taps, normalised; the edges are
 *   clamped (replicated), so a constant image stays constant, and the sum of an image is
 *   kept when it is zero within ceil(3 sigma) of its borders. sigma 0 is the identity;
 *   negative, NaN or above 64 is JG_ERR_ARG. f32/f64 only.
 * - rotate(x, degrees): bilinear about the centre ((H-1)/2, (W-1)/2), counter-clockwise as
 *   displayed (rows grow downwards), zero outside: rotate(x, 90) == vflip(transpose(x)) for a
 *   square image. Differentiable in x (a fixed linear map). f32/f64 only. */
#define jg_hflip(x) jg_hflip_(JG_HERE, x)
#define jg_vflip(x) jg_vflip_(JG_HERE, x)
#define jg_translate(x, dy, dx) jg_translate_(JG_HERE, x, dy, dx)
#define jg_gaussian_blur(x, sigma) jg_gaussian_blur_(JG_HERE, x, sigma)
#define jg_rotate(x, degrees) jg_rotate_(JG_HERE, x, degrees)
/**@}*/

JG_API jg_node *jg_hflip_(jg_loc at, jg_node *x);
JG_API jg_node *jg_vflip_(jg_loc at, jg_node *x);
JG_API jg_node *jg_translate_(jg_loc at, jg_node *x, int dy, int dx);
JG_API jg_node *jg_gaussian_blur_(jg_loc at, jg_node *x, double sigma);
JG_API jg_node *jg_rotate_(jg_loc at, jg_node *x, double degrees);

/** Host-side augmentation of a float batch [n, c, h, w] (c = 1 for [n, h, w]), for data
 * pipelines. Per sample, in this order, the same for all its channels: mirror left-right
 * with probability hflip_prob, top-bottom with vflip_prob; rotate by an angle uniform in
 * [-max_rotate_deg, max_rotate_deg] (as jg_rotate); translate by integers uniform in
 * [-max_shift, max_shift] (as jg_translate); random crop with padding: pad by crop_pad zeros
 * and crop back to h x w at a uniform offset (a translation uniform in [-crop_pad, crop_pad]);
 * with probability blur_prob, blur with blur_sigma (as jg_gaussian_blur). The zero struct
 * changes nothing. The choices for sample i are a pure function of (seed, step, i):
 * reproducible, and a new step (e.g. epoch * batches + batch) gives new ones. */
typedef struct jg_augment_opts {
    /**@{*/
    double hflip_prob, vflip_prob;  /**< in [0, 1] */
    /**@}*/
    double max_rotate_deg;          /**< >= 0 */
    int max_shift;                  /**< pixels, >= 0 */
    int crop_pad;                   /**< pixels, >= 0 */
    double blur_prob;               /**< in [0, 1] */
    double blur_sigma;              /**< in [0, 64] */
} jg_augment_opts;

/** Augments images in place. JG_ERR_ARG for NULL opts or data or an option out of range,
 * JG_ERR_SHAPE for a dimension < 1 or h * w >= 2^31; the batch is left untouched then. For the
 * reason, call jg_augment_to with an errbuf. */
JG_API jg_status jg_augment(const jg_augment_opts *o, float *images, int n, int c, int h,
                            int w, uint64_t seed, uint64_t step);
/** The same from src into dst (src == dst is in place). On failure writes a message
 * ("jg_augment: <reason>") into errbuf if not NULL. */
JG_API jg_status jg_augment_to(const jg_augment_opts *o, const float *src, float *dst, int n,
                               int c, int h, int w, uint64_t seed, uint64_t step,
                               char *errbuf, size_t errbuf_size);

/* ---------------------------------------------------------------- model kit: training */
/* (optimisers, schedules, gradient accumulation: train/train.c, train/optimizers.c) */

/** Learning-rate schedules, computed on the host between runs (train/schedule.c):
 *
 *     jg_schedule s = { .kind = JG_SCHED_COSINE, .lr = 0.1, .t_max = 1000, .warmup = 100 };
 *     for (int64_t step = 0; step < 1100; step++) {
 *         jg_program_set_lr(g, NULL, jg_lr_at(&s, step));
 *         jg_program_run(train);
 *     }
 *
 * With warmup W > 0 the rate rises linearly, lr * step / W for step < W, and the schedule
 * then runs from its own step 0 at step W. With u = step - W:
 *   CONSTANT     lr
 *   STEP         lr * gamma^floor(u / step_size)
 *   EXPONENTIAL  lr * gamma^u
 *   COSINE       min_lr + (lr - min_lr) (1 + cos(pi min(u, t_max) / t_max)) / 2
 *                (reaches min_lr at u = t_max and stays there) */
typedef enum jg_schedule_kind {
    JG_SCHED_CONSTANT,
    JG_SCHED_STEP,
    JG_SCHED_EXPONENTIAL,
    JG_SCHED_COSINE,
} jg_schedule_kind;

/** A learning-rate schedule, evaluated by jg_lr_at and applied with jg_program_set_lr. */
typedef struct jg_schedule {
    jg_schedule_kind kind; /**< the shape of the schedule */
    double lr;          /**< the base (peak) rate, > 0 */
    double gamma;       /**< STEP, EXPONENTIAL: factor in (0, 1] (0 is an error) */
    int64_t step_size;  /**< STEP: decay every step_size steps, >= 1 */
    int64_t t_max;      /**< COSINE: steps from lr down to min_lr, >= 1 */
    double min_lr;      /**< COSINE: the final rate, in [0, lr] */
    int64_t warmup;     /**< steps of linear warm-up from 0 (0: none) */
} jg_schedule;

/** The learning rate at step (0-based). NaN when s is NULL, step < 0 or a field is invalid
 * (jg_program_set_lr rejects NaN, so a bad schedule surfaces there). */
JG_API double jg_lr_at(const jg_schedule *s, int64_t step);
/** Writes lr into the store entry "<opt_name>.lr" of a training program compiled from g
 * (opt_name NULL or "" means "opt"); the next run uses it, no recompiling. JG_ERR_ARG
 * (message in jg_errmsg(g), the graph not poisoned) when lr is negative or not finite, or
 * no such entry exists. */
JG_API jg_status jg_program_set_lr(jg_graph *g, const char *opt_name, double lr);

/* ---------------------------------------------------------------- model kit: data */
/* (datasets, batching, shuffling: io/dataset.c) */

/** A dataset: samples x[i] (rows of an f32 or f64 array [n, ...]) with i32 labels y[i] (an
 * i32 array [n] or [n, 1]), e.g. from jg_idx_read or a .npy reader. Subsets, splits and
 * class filters are views: they select rows of the same arrays.
 *
 *     jg_dataset *all, *train, *val;
 *     if (jg_dataset_new(&images, &labels, &all, err, sizeof err) != JG_OK) ...
 *     if (jg_dataset_split(all, 0.9, 42, &train, &val) != JG_OK) ... jg_dataset_errmsg(all)
 *     jg_loader *ld = jg_loader_new(train, 128, &(jg_loader_opts){ .shuffle = true,
 *                                                                 .drop_last = true, .seed = 1 });
 *     for (int epoch = 0; epoch < 10; epoch++)
 *         while (jg_loader_next(ld, xb, yb, &n)) { set inputs, run }
 *
 * Lifetime: a dataset BORROWS the arrays' data (the jg_array structs themselves are copied
 * and may be temporary): free the arrays only after every dataset and loader made from them.
 * A derived dataset does not need its parent (free them in any order); a loader needs its
 * dataset. Each dataset owns its row list and its labels (so relabelling does not touch y).
 * Errors: jg_dataset_new writes its message into errbuf; functions taking a dataset return
 * NULL (or a status) and leave the reason in jg_dataset_errmsg(ds). */
typedef struct jg_dataset jg_dataset;
/** Batches over a dataset (jg_loader_new / _free). */
typedef struct jg_loader jg_loader;

/**@{*/
/** x: f32 or f64, ndim >= 1; y: i32 [n] or [n, 1] with n = x's first dimension, or NULL for
 * an unlabelled dataset (labels then read as 0). JG_ERR_ARG / JG_ERR_DTYPE / JG_ERR_SHAPE on
 * bad input, *out NULL. */
JG_API jg_status jg_dataset_new(const jg_array *x, const jg_array *y,
                                jg_dataset **out /* OUT */, char *errbuf, size_t errbuf_size);
/** Frees a dataset (NULL: nothing); the arrays it borrows are the caller's. */
JG_API void jg_dataset_free(jg_dataset *ds);
/**@}*/
/** The last error of a call on ds ("" if none); never NULL. */
JG_API const char *jg_dataset_errmsg(const jg_dataset *ds);
/**@{*/
/** Number of samples (0 for NULL), and the shape of one sample (x's shape without its first
 * dimension) and its element count. */
JG_API int64_t jg_dataset_size(const jg_dataset *ds);
JG_API jg_shape jg_dataset_sample_shape(const jg_dataset *ds);
JG_API int64_t jg_dataset_sample_numel(const jg_dataset *ds);
/**@}*/
/** Sample i as floats (sample_numel values) and its label; either output may be NULL. */
JG_API jg_status jg_dataset_get(jg_dataset *ds, int64_t i, float *x_out, int32_t *y_out);

/** Samples indices[0..n-1] of ds, in that order (repeats allowed), each in [0, size). */
JG_API jg_dataset *jg_dataset_subset(jg_dataset *ds, const int64_t *indices, int64_t n);
/** Samples begin..end-1 of ds; 0 <= begin <= end <= size. */
JG_API jg_dataset *jg_dataset_range(jg_dataset *ds, int64_t begin, int64_t end);
/** Shuffles ds with seed and cuts it: *a gets round(fraction * size) samples, *b the rest
 * (fraction in [0, 1]). Both keep their shuffled order. On failure both are NULL. */
JG_API jg_status jg_dataset_split(jg_dataset *ds, double fraction, uint64_t seed,
                                  jg_dataset **a /* OUT */, jg_dataset **b /* OUT */);
/** The samples whose label is one of classes[0..n-1] (distinct), in ds's order; with relabel,
 * label classes[k] becomes k (e.g. classes 5..9 -> 0..4 for transfer learning). */
JG_API jg_dataset *jg_dataset_filter_classes(jg_dataset *ds, const int32_t *classes, int n,
                                             bool relabel);

/** Batching. shuffle: each epoch visits the samples in a fresh random order that depends only
 * on (seed, epoch), so runs are reproducible and epochs differ; else in dataset order.
 * drop_last: skip the final batch when it would be short. */
typedef struct jg_loader_opts {
    bool shuffle; /**< a fresh random order every epoch */
    bool drop_last; /**< skip a short last batch */
    uint64_t seed; /**< of the shuffle */
} jg_loader_opts;

/**@{*/
/** A loader of batches of `batch` samples (>= 1) over ds (not empty; with drop_last, at least
 * one full batch); opts NULL: no shuffling, keep the last batch. NULL on failure (reason in
 * jg_dataset_errmsg(ds)). */
JG_API jg_loader *jg_loader_new(jg_dataset *ds, int batch, const jg_loader_opts *opts);
/** Frees a loader (NULL: nothing). */
JG_API void jg_loader_free(jg_loader *ld);
/**@}*/
/** Copies the next batch: n samples (n <= batch; smaller only for a last batch without
 * drop_last) into x_out (n * sample_numel floats, row-major) and y_out (n labels); either
 * may be NULL. Returns false (with *n_out 0) at the end of an epoch; the next call then
 * starts the next epoch. Also false for a NULL loader. */
JG_API bool jg_loader_next(jg_loader *ld, float *x_out, int32_t *y_out, int *n_out /* OUT */);
/** The current epoch, from 0 (the number of epochs finished). */
JG_API int64_t jg_loader_epoch(const jg_loader *ld);
/** Batches per epoch. */
JG_API int64_t jg_loader_batches(const jg_loader *ld);

/* ---------------------------------------------------------------- model kit: files */
/* (.npy, safetensors checkpoints, PNG, CSV logs, progress: src/io) */

/** .npy arrays (NumPy format 1.0-3.0, C order only). f4, f8 and i4 load as f32, f64 and i32;
 * other integer and bool types load as i32 when every value fits (else JG_ERR_DTYPE); f2 and
 * anything else is JG_ERR_IO, as are a bad magic, a bad header dict, fortran_order True,
 * empty arrays and truncated data. On failure *out is zeroed and errbuf (if not NULL) gets a
 * message naming the file and the problem. Free the array with jg_array_free. */
JG_API jg_status jg_npy_read(const char *path, jg_array *out /* OUT */, char *errbuf,
                             size_t errbuf_size);
/** Writes a (little-endian, format 1.0) through a temporary file and a rename. */
JG_API jg_status jg_npy_write(const char *path, const jg_array *a, char *errbuf,
                              size_t errbuf_size);

/**@{*/
/** Checkpoints: the WHOLE parameter store (weights, running statistics, optimiser state such
 * as "opt.lr" and "opt.w.m") as a safetensors file (dtypes "F32"/"F64"), written to a
 * temporary name, fsync'd and renamed over path: an interrupted or failed save leaves any
 * existing file intact. Load validates the whole file first: header length, JSON, offsets
 * (inside the file, not overlapping), every tensor's name, dtype and shape against the store,
 * and that every parameter of the graph is present; only then are values copied, so a failed
 * load leaves the store untouched. Errors: JG_ERR_IO (unreadable, malformed, truncated),
 * JG_ERR_DTYPE, JG_ERR_SHAPE, JG_ERR_ARG (a tensor the graph lacks, or a parameter the file
 * lacks); the message ("jg_checkpoint_load: <path>: tensor 'w': ...") is in jg_errmsg(g) and,
 * like a store accessor's, does not poison the graph. */
JG_API jg_status jg_checkpoint_save(jg_graph *g, const char *path);
JG_API jg_status jg_checkpoint_load(jg_graph *g, const char *path);
/**@}*/

/** Weights trained elsewhere: a safetensors file (e.g. a PyTorch state_dict written by
 * safetensors.torch.save_file, or by examples/from_pytorch/safetensors_np.py) imported into
 * existing parameters. Entry i of the map copies tensor map[i].tensor into parameter
 * map[i].param, transposed when map[i].transpose (PyTorch's [out, in] Linear and RNN weights
 * into [in, out] ones); entries naming one parameter are summed (an RNN's bias_ih + bias_hh
 * into "<prefix>.b"). With map NULL (and n 0) every tensor of the file goes to the parameter
 * of its own name. Tensors the map does not name are ignored, and parameters it does not name
 * keep their values. F16, BF16, F32 and F64 tensors convert to the parameter's dtype (F64 into
 * f32 rounds). The whole file and every entry are checked before any value is written, so a
 * failure changes nothing: JG_ERR_IO (unreadable or malformed file), JG_ERR_ARG (a tensor or
 * parameter that does not exist), JG_ERR_SHAPE (shapes differ; the message says when a
 * transpose would fit), JG_ERR_DTYPE (an integer or unknown dtype), JG_ERR_NOMEM; the
 * message is in jg_errmsg(g) and does not poison the graph. */
typedef struct jg_tensor_map {
    const char *tensor; /**< the name in the file, e.g. "fc1.weight" */
    const char *param;  /**< the parameter it fills, e.g. "fc1.w" */
    bool transpose;     /**< a 2-D tensor whose shape is the parameter's reversed */
} jg_tensor_map;
/** Imports the tensors of the safetensors file at path into g's parameters through map[0..n)
 * (map NULL and n 0: by their own names), as described above. */
JG_API jg_status jg_safetensors_import(jg_graph *g, const char *path, const jg_tensor_map *map,
                                       int n);
/** One tensor of a safetensors file as an array of dtype as (JG_F32 or JG_F64), converted from
 * F16, BF16, F32 or F64: for weights that need more than a copy (a GRU's bias_hh split
 * between "<prefix>.b" and "<prefix>.b_hn"). Free with jg_array_free. Errors as
 * jg_safetensors_import's, the message in errbuf (if not NULL). */
JG_API jg_status jg_safetensors_read(const char *path, const char *tensor, jg_dtype as,
                                     jg_array *out /* OUT */, char *errbuf, size_t errbuf_size);

/**@{*/
/** PNG images (8-bit), written through a temporary file and a rename. They return JG_ERR_ARG
 * for bad arguments (NULL, sizes < 1, lo >= hi) and JG_ERR_IO when the file cannot be written
 * (errno tells why). gray: row-major width x height values mapped from [lo, hi] to 0..255,
 * clamped (NaN gives 0). grid: n row-major h x w images, each min-max normalised on its own
 * (a constant image is mid-grey), in a grid of `cols` columns with `pad` black pixels between
 * and around them. heatmap: h rows of w values as RGB on a blue-white-red scale symmetric
 * about 0 (-max|v| blue, 0 white, +max|v| red). */
JG_API jg_status jg_png_write_gray(const char *path, const float *pixels, int width, int height,
                                   float lo, float hi);
JG_API jg_status jg_png_write_grid(const char *path, const float *images, int n, int h, int w,
                                   int cols, int pad);
JG_API jg_status jg_png_write_heatmap(const char *path, const float *values, int w, int h);
/**@}*/

/** CSV metrics logs. jg_csv_open appends to path, writing the header line (the n column names)
 * only when the file is new or empty; NULL on failure (errno tells why). jg_csv_row appends
 * one line of n values (%.10g) and flushes it. jg_csv_close flushes, fsyncs and frees; it
 * does nothing given NULL and returns JG_ERR_IO when a write failed. */
typedef struct jg_csv jg_csv;
/** Opens (appends to) a CSV log with n columns; NULL on failure. */
JG_API jg_csv *jg_csv_open(const char *path, const char *const *columns, int n);
/** Appends one row of the log's n values. */
JG_API jg_status jg_csv_row(jg_csv *c, const double *values);
/** Flushes, fsyncs and frees the log. */
JG_API jg_status jg_csv_close(jg_csv *c);

/** A progress bar: "label  done/total  pct%  rate/s  ETA  extra". On a terminal one line is
 * redrawn (a carriage return) at most ~10 times a second; otherwise a plain line is printed at most
 * every 10% and at the end. total <= 0 means unknown (no percentage or ETA). out NULL means
 * stderr. jg_progress_done prints the final state if not yet shown, ends the line and frees
 * (NULL: nothing). */
typedef struct jg_progress jg_progress;
/** A progress bar counting to total (<= 0: unknown) on out (NULL: stderr). */
JG_API jg_progress *jg_progress_new(const char *label, int64_t total, FILE *out);
/** done steps so far, and an extra text to show (may be NULL). */
JG_API void jg_progress_update(jg_progress *p, int64_t done, const char *extra);
/** Prints the final state, ends the line and frees the bar. */
JG_API void jg_progress_done(jg_progress *p);

/** Training curves as an SVG line chart (plain text). One series is n (x, y) points drawn as
 * one polyline with its label in the legend, one colour per series; points where x or y is
 * NaN or infinite are skipped. log_y draws y on a log10 scale and needs every finite y > 0
 * (else JG_ERR_ARG). Titles, labels may be NULL (omitted; a NULL series label shows as
 * "series <i>") and are XML-escaped. Written through a temporary file and a rename. Returns
 * JG_OK, JG_ERR_ARG (bad arguments) or JG_ERR_IO; errbuf (if not NULL) gets "<path>: <why>". */
typedef struct jg_series {
    const char *label; /**< in the legend (NULL: "series <i>") */
    const double *x;   /**< n x values */
    const double *y;   /**< n y values */
    int n;             /**< the number of points */
} jg_series;
/** Writes the chart of series[0..n_series) to path, as described above. */
JG_API jg_status jg_plot_svg(const char *path, const char *title, const char *x_label,
                             const char *y_label, const jg_series *series, int n_series,
                             bool log_y, char *errbuf, size_t errbuf_size);
/** Plots columns y_columns[0..n_y-1] of a CSV log (as written by jg_csv_open/jg_csv_row: a
 * header line, then numeric rows; empty or "nan" fields are NaN) against x_column, titled
 * with the CSV's file name. An unknown column is JG_ERR_ARG; an unreadable or malformed CSV
 * (ragged row, non-numeric field) is JG_ERR_IO with the line number. */
JG_API jg_status jg_plot_csv(const char *csv_path, const char *svg_path, const char *x_column,
                             const char *const *y_columns, int n_y, bool log_y, char *errbuf,
                             size_t errbuf_size);

/* ---------------------------------------------------------------- errors */

/** jg_errmsg(handle): for a graph, the first builder/compile error if any, else the message of
 * the last failed call (jg_graph_errmsg); for a program, its last error ("" if none). */
#define jg_errmsg(h) _Generic((h), \
    jg_graph *: jg_graph_errmsg, const jg_graph *: jg_graph_errmsg, \
    jg_program *: jg_program_errmsg, const jg_program *: jg_program_errmsg, \
    jg_dataset *: jg_dataset_errmsg, const jg_dataset *: jg_dataset_errmsg)(h)

#ifdef __cplusplus
}
#endif
#endif /* JITGRAD_H */
