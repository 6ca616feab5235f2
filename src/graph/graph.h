/* The graph IR: nodes in an arena, the first-error record, the parameter store.
 * Internal to the library; the public view is include/jitgrad.h. A node's id is its position
 * in creation order, and every node is created after its inputs, so id order is a
 * topological order: passes and executors walk nodes by id. */
#ifndef JG_GRAPH_GRAPH_H
#define JG_GRAPH_GRAPH_H

#include "jitgrad.h"
#include "util/hidden.h"

#include <stdarg.h>

typedef enum jg_op {
#define OP(E, name) JG_OP_##E,
#include "graph/ops.def"
#undef OP
    JG_OP_COUNT
} jg_op;

/* The op's name as ops.def spells it ("relu"); every message and dump uses it. What an op
 * does is in its row (ops/op.h), above this layer. */
HIDDEN const char *graph_op_name(jg_op op);

/* Per-op attributes. One struct for all ops keeps nodes uniform; each op's file documents
 * which fields it uses. */
typedef struct op_attr {
    double scalar[2];          /* pow: p; leaky_relu: slope; elu: alpha; clamp: lo, hi;
                                  fill, pad: value */
    uint32_t axes;             /* reductions: bitmask of reduced axes (after the shape rule) */
    bool keepdims;             /* reductions */
    int ties;                  /* max, min: who takes a tied extreme's gradient (jg_ties) */
    int axis;                  /* softmax, log_softmax, concat, take, scatter_add, argmax */
    int64_t count;             /* one_hot: depth; reductions: -1 = all axes, else n in list;
                                  fill: FILL_NO_FLOW marks a gradient that does not flow */
    jg_dtype dtype;            /* cast, one_hot: target dtype */
    int64_t list[JG_MAX_DIMS]; /* permute: perm; slice, unslice: start; pad: before;
                                  reductions: the axes as given (normalised to `axes`) */
    int64_t step[JG_MAX_DIMS]; /* slice, unslice: step; pad: after */
    uint64_t key;              /* random: the stream (seed and node), fixed at build time */
    const double *data;        /* const: numel values (in the arena) */
    const void *custom;        /* custom: its definition, a custom_op in the arena
                                  (ops/custom.h) */
} op_attr;

/* A zero fill with attr.count FILL_NO_FLOW is the gradient of mode's operand that a program
 * does not pick (ops/random.c): its value is 0, and lowering drops what it feeds, which
 * gradients are linear in (compiler/lower.c). */
#define FILL_NO_FLOW 1

struct jg_node {
    jg_graph *graph;
    int id;
    jg_op op;
    jg_dtype dtype;
    jg_shape shape;
    int n_in;
    jg_node **in;      /* n_in inputs, in the arena */
    op_attr attr;
    const char *name;  /* inputs and parameters; arena copy */
    int param;         /* parameters: index in the store, else -1 */
    jg_loc at;         /* where the builder was called */
};

typedef struct graph_param {
    jg_node *node;
    void *data;        /* numel values of node->dtype, 64-byte aligned */
    size_t mapped;     /* bytes of an anonymous mapping data is (large zero tensors), or 0:
                          from the heap */
    bool frozen;
    jg_init_kind init; /* how it was initialised (the advice looks at it) */
} graph_param;

typedef struct arena_chunk arena_chunk;

/* A state update that training programs apply when they compute `anchor`. */
typedef struct graph_train_update {
    jg_node *anchor, *param, *value;
} graph_train_update;

struct jg_graph {
    int refs;                 /* the user's handle + one per live program */
    bool user_freed;
    arena_chunk *arena;
    jg_node **nodes;
    int n_nodes, cap_nodes;
    jg_node *poison;          /* returned by failed builders */
    jg_status status;         /* the first error */
    char errmsg[512];
    char last_msg[512];       /* the last failed non-sticky call (store accessors) */
    uint64_t seed;
    graph_train_update *train_updates; /* state every training program updates when it
                                          computes the anchor (batchnorm running stats) */
    int n_train_updates, cap_train_updates;
    graph_param *params;      /* the parameter store */
    int n_params, cap_params;
};

/* Arena allocation: zeroed, 16-byte aligned, freed with the graph. NULL when out of memory
 * (the caller records JG_ERR_NOMEM). */
HIDDEN void *graph_alloc(jg_graph *g, size_t bytes);
HIDDEN char *graph_strdup(jg_graph *g, const char *s);

/* Records the first error on the graph; later ones are ignored. `at` may have file NULL. */
HIDDEN void graph_error(jg_graph *g, jg_loc at, jg_status st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
HIDDEN void graph_verror(jg_graph *g, jg_loc at, jg_status st, const char *fmt, va_list ap);
/* Notes the message of a failed call that does not poison the graph (a store accessor given
 * a wrong name or size): jg_graph_errmsg shows it while no sticky error is recorded. */
HIDDEN void graph_note(jg_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends a node (inputs already checked). Returns the poison node when out of memory. */
HIDDEN jg_node *graph_node_new(jg_graph *g, jg_loc at, jg_op op, jg_dtype t, jg_shape s,
                               jg_node *const *in, int n_in, const op_attr *attr);

HIDDEN void graph_retain(jg_graph *g);
HIDDEN void graph_release(jg_graph *g);

static inline bool node_poisoned(const jg_node *n) { return n->op == JG_OP_POISON; }

/* Registers a state update for training programs (random.c / norm.c use it). */
HIDDEN jg_status graph_add_train_update(jg_graph *g, jg_node *anchor, jg_node *param,
                                        jg_node *value);

/* ---- shapes (shape.c) */

HIDDEN bool shape_eq(jg_shape a, jg_shape b);
/* NumPy broadcasting of a and b into out; false when they do not broadcast. */
HIDDEN bool shape_broadcast(jg_shape a, jg_shape b, jg_shape *out);
/* Writes "[2,3]" ("[]" for a scalar) into buf and returns buf. */
HIDDEN char *shape_str(jg_shape s, char *buf, size_t size);
#define FMT_SHAPE(buf, s) shape_str((s), (buf), sizeof(buf))
/* Row-major strides in elements. */
HIDDEN void shape_strides(jg_shape s, int64_t strides[JG_MAX_DIMS]);
/* Strides of `in` as seen from the broadcast shape `out`: 0 along broadcast dimensions. */
HIDDEN void shape_bcast_strides(jg_shape in, jg_shape out, int64_t strides[JG_MAX_DIMS]);
/* The most elements a shape may hold (2^40), so that byte counts and strides fit easily in
 * int64_t and size_t. */
#define SHAPE_MAX_NUMEL ((int64_t)1 << 40)
/* A shape is valid when 0 <= ndim <= 8, every dimension >= 1 and it holds at most
 * SHAPE_MAX_NUMEL elements (checked without overflow). */
HIDDEN bool shape_valid(jg_shape s);
/* 0 <= ndim <= 8 and every dimension >= 1: tells an invalid shape from a too large one. */
HIDDEN bool shape_dims_positive(jg_shape s);
/* Normalises axis (negative from the end) into 0..ndim-1; false when out of range. */
HIDDEN bool axis_normalise(int axis, int ndim, int *out);

/* ---- parameter store (store.c) */

HIDDEN graph_param *store_find(jg_graph *g, const char *name);
/* Creates the parameter's storage and initialises it; records errors on g. */
HIDDEN jg_status store_add(jg_graph *g, jg_node *param, jg_init init);
HIDDEN void store_free(jg_graph *g);

/* ---- random numbers (rng.c): counter-based, so any value is a pure function of its key */

HIDDEN uint64_t rng_u64(uint64_t key, uint64_t counter);
HIDDEN double rng_uniform(uint64_t key, uint64_t counter);  /* [0, 1) */
HIDDEN double rng_normal(uint64_t key, uint64_t counter);   /* N(0, 1) */
HIDDEN uint64_t rng_hash_str(const char *s);

#endif
