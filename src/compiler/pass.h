/* Graph passes over the program graph (the lowered copy of the user's graph that a JIT
 * program compiles), and the pipeline that runs them in order (pipeline.c).
 *
 * A pass is one file with one entry point `bool pass_<name>(pass_ctx *c)` that returns
 * whether it changed the graph. Most passes are rewrites: pass_rewrite copies the nodes the
 * roots need into a fresh graph, asking a rule for each node whether to replace it; what the
 * roots no longer need is not copied (dead-code elimination comes with every rewrite). */
#ifndef JG_COMPILER_PASS_H
#define JG_COMPILER_PASS_H

#include "ops/op.h"

typedef struct pass_ctx {
    jg_graph *g;      /* the program graph, owned; a rewrite replaces it */
    jg_node **roots;  /* outputs and update values (n_roots), then nodes only kept alive
                         (n_keep: update targets): nodes of g */
    int n_roots, n_keep;
    jg_node **map;    /* user node id -> node of g (NULL: not needed), kept up to date */
    int n_map;
    bool train;       /* a training program; else evaluation */
    int rewrites;     /* what the running pass replaced or merged (for its report) */
    jg_status status; /* a pass that fails sets these and returns false */
    char errmsg[OP_ERR_SIZE];
} pass_ctx;

/* A rewrite rule: n is a node of the old graph, in[] its operands as already copied into the
 * new graph g. Returns the node of g that takes n's place (same shape and dtype; built with
 * the builders, graph_node_new or pass_copy), or NULL to copy n unchanged. */
typedef jg_node *(*rewrite_rule)(void *state, jg_graph *g, const jg_node *n,
                                 jg_node *const *in);

/* Rebuilds c->g through rule (NULL: copy everything needed). Replacements the rule returns
 * are counted in c->rewrites. Returns whether the graph changed (a replacement, or fewer
 * nodes). On failure (a replacement of another shape or dtype, out of memory) sets
 * c->status and c->errmsg, leaves c->g as it was and returns false. */
HIDDEN bool pass_rewrite(pass_ctx *c, rewrite_rule rule, void *state);
/* What pass_rewrite and lowering share: copies the nodes of old marked in needed into a new
 * graph in id order, each through rule (NULL, or a rule returning NULL: copied as it is);
 * to[id] receives each one's image and *replaced counts the rule's replacements. Returns the
 * new graph (check its status: the first error, e.g. a replacement of another shape or
 * dtype, stops the copy), or NULL when out of memory. */
HIDDEN jg_graph *pass_copy_graph(const jg_graph *old, const bool *needed, rewrite_rule rule,
                                 void *state, jg_node **to, int *replaced);
/* A copy of n into g over the operands in[] (name, parameter index and location kept). */
HIDDEN jg_node *pass_copy(jg_graph *g, const jg_node *n, jg_node *const *in);
/* How many consumers each node of c->g has among the nodes the roots need, by id (roots
 * and kept nodes count once more). The caller frees it; NULL when out of memory. */
HIDDEN int *pass_use_counts(const pass_ctx *c);
/* For each node of c->g, by id, a consumer among the nodes the roots need (the only one
 * when uses[id] == 1), or NULL. The caller frees it; NULL when out of memory. */
HIDDEN jg_node **pass_consumers(const pass_ctx *c, const int *uses);

/* The passes over the program graph, in pipeline order (each file says what it does). */
HIDDEN bool pass_simplify(pass_ctx *c);
HIDDEN bool pass_constfold(pass_ctx *c);
HIDDEN bool pass_cse(pass_ctx *c);
HIDDEN bool pass_unslice_sum(pass_ctx *c);
HIDDEN bool pass_matmul_sum(pass_ctx *c);
HIDDEN bool pass_conv_dgrad(pass_ctx *c);
HIDDEN bool pass_bn_fold(pass_ctx *c);
HIDDEN bool pass_linear_fold(pass_ctx *c);
HIDDEN bool pass_bn_relu(pass_ctx *c);
HIDDEN bool pass_epilogue(pass_ctx *c);
HIDDEN bool pass_remat(pass_ctx *c);
HIDDEN bool pass_dce(pass_ctx *c);

/* One pass's record in a program: what it did and what it cost. */
typedef struct pass_record {
    const char *name;
    bool ran, changed;
    int nodes_before, nodes_after, rewrites;
    double ms;
} pass_record;

/* Runs the graph passes that passes_off leaves on and that apply to the program's mode,
 * recording each in rec[] (at most PASS_MAX; *n_rec says how many). When dump_dir is set,
 * writes the graph after lowering and after each pass there as NN-<pass>.txt and .dot. A
 * failing pass or dump sets c->status and c->errmsg and stops the pipeline. */
#define PASS_MAX 24
HIDDEN jg_status pass_pipeline_run(pass_ctx *c, const char *passes_off, const char *dump_dir,
                                   pass_record *rec, int *n_rec);
/* The names of every switchable pass, in the order a program applies them (graph passes,
 * then the JIT's: fuse, siblings, inplace); NULL past the end. */
HIDDEN const char *pass_name(int i);
/* Writes g as Graphviz DOT (one node per op, edges from operands). */
HIDDEN void pass_graph_dot(const jg_graph *g, FILE *out);

#endif
