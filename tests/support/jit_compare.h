/* Comparing the JIT with the reference executor (support for the tests/test_jit_*.c files):
 * deterministic pseudo-random inputs per dtype and domain, running the same outputs of one
 * graph on both executors (and under other JIT settings), and comparing element by element
 * with a message naming the op, shape, dtype, element and both values. */
#ifndef JG_TEST_JIT_COMPARE_H
#define JG_TEST_JIT_COMPARE_H

#include "support.h"

#define MAX_INPUTS 96

typedef enum data_kind {
    SIGNED,  /* floats uniform in [-2, 2); i32 in [-50, 50] (zeros included) */
    POS,     /* floats in [0.25, 3); i32 in [1, 50] */
    TIES,    /* floats on a grid of quarters in [-1, 1] (ties and zeros); i32 in [-3, 3] */
    UNIT,    /* floats in [0, 1) (bce targets) */
    LABELS,  /* i32 in [0, hi) */
} data_kind;
typedef struct t_input {
    char name[16];
    void *data;
    size_t bytes;
    jg_dtype t;
    int64_t n;
} t_input;
typedef struct tctx {
    jg_graph *g;
    t_input in[MAX_INPUTS];
    int n_in;
    uint64_t rng;
} tctx;
typedef struct tol {
    double f32, f64;
} tol;
/* An output list under construction. */
typedef struct olist {
    jg_node *o[512];
    int n;
} olist;

static const tol TOL = { 1e-5, 1e-12 };
static const tol TOL_GRAD = { 1e-5, 1e-10 };
static const jg_dtype FLOATS[2] = { JG_F32, JG_F64 };
static const jg_dtype ALL_DTYPES[3] = { JG_F32, JG_F64, JG_I32 };

void ctx_init(tctx *c, uint64_t seed);
void ctx_fini(tctx *c);
double urand(tctx *c);
double draw(tctx *c, jg_dtype t, data_kind k, int hi);
void put(void *p, jg_dtype t, int64_t i, double v);
double get(const void *p, jg_dtype t, int64_t i);
jg_node *input_(tctx *c, jg_dtype t, jg_shape s, data_kind k, int hi);
jg_node *input(tctx *c, jg_dtype t, jg_shape s, data_kind k);
jg_node *input_values(tctx *c, jg_dtype t, jg_shape s, const double *v);
t_input *input_of(tctx *c, jg_node *n);
const char *exec_desc(const jg_opts *o, char *buf, size_t size);
void t_shape_text(jg_shape s, char *buf, size_t size);
void t_index_text(jg_shape s, int64_t flat, char *buf, size_t size);
void **run(tctx *c, jg_node *const *outs, int n, const jg_opts *o, const char *what);
void free_results(void **r, int n);
bool close_enough(double got, double want, double t);
void compare(jg_node *const *outs, int n, void **got, void **want, tol tl,
             const char *what, const char *gdesc, const char *wdesc);
void check_opts(tctx *c, jg_node *const *outs, int n, tol tl, jg_opts jo,
                const char *what);
void check(tctx *c, jg_node *const *outs, int n, tol tl, const char *what);
void push(olist *l, jg_node *n);

#endif
