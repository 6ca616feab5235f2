/* The fusion pass: which nodes get a buffer of their own, and which are computed inline in
 * the kernel of the node that consumes them. Legality is written down in fuse.c. */
#ifndef JG_COMPILER_FUSE_H
#define JG_COMPILER_FUSE_H

#include "graph/graph.h"

typedef enum group_kind {
    GROUP_ELEMENTWISE, /* a DAG of elementwise, broadcast and view ops over the root's shape */
    GROUP_REDUCE,      /* a reduction of an inline elementwise DAG */
    GROUP_MATMUL,      /* a matmul with an inline elementwise epilogue, or summed over batch */
    GROUP_OPAQUE,      /* one op with a kernel of its own (gather, scatter, pad, ...) */
    GROUP_MULTI,       /* sibling groups over one iteration space, one pass (fuse_siblings.c) */
} group_kind;

typedef struct fuse_group {
    group_kind kind;
    jg_node *root; /* the value the kernel writes */
    jg_node *core; /* the reduction / matmul / opaque node, or NULL */
    int n_members; /* nodes computed in the kernel, root included */
    int leader;    /* -1, or the GROUP_MULTI group whose kernel computes this one */
} fuse_group;

/* How each node of the graph is realised. */
typedef enum node_role {
    ROLE_UNUSED,   /* not needed by the roots */
    ROLE_LEAF,     /* a buffer that exists before the run: input, parameter, constant */
    ROLE_INLINE,   /* computed inside its consumer's kernel (also fills: constants) */
    ROLE_ROOT,     /* written by its group's kernel */
    ROLE_ALIAS,    /* a reshape of a buffer (the same bytes, another shape) or a slice that
                      is one contiguous run of it (bytes from an offset on) */
} node_role;

typedef struct fusion {
    node_role *role;  /* by node id */
    int *group_of;    /* by node id: the group computing it (ROOT, INLINE), else -1 */
    jg_node **alias_of; /* by node id, ROLE_ALIAS: the buffer node it reinterprets */
    int64_t *alias_offset; /* by node id, ROLE_ALIAS: where in it, in elements */
    bool *is_output;    /* by node id: one of the roots pass_fuse was given */
    fuse_group *groups; /* in execution order */
    int n_groups;
} fusion;

/* Groups the nodes the roots need. enabled = false gives every op a kernel of its own (the
 * "fusion off" experiment); gather: GEMMs gather an im2col operand themselves (fuse.c).
 * Returns JG_ERR_NOMEM or JG_OK. */
HIDDEN jg_status pass_fuse(jg_graph *g, jg_node *const *roots, int n_roots, bool enabled,
                           bool gather, fusion *out);
HIDDEN void fusion_free(fusion *f);
/* Sibling fusion (fuse_siblings.c): merges reductions over some but not all axes with the
 * elementwise groups and reductions of their input's shape that feed them, consume them or
 * share their inputs, so one pass over memory writes all of them; then pointwise groups of
 * one shape linked the same way. Returns whether it merged anything. */
HIDDEN bool pass_fuse_siblings(jg_graph *g, fusion *f);
/* Whether the GROUP_MULTI group k reduces (has partial rows to combine), or only stores
 * pointwise parts (one elementwise loop). */
HIDDEN bool fuse_multi_reduces(const fusion *f, int k);
/* Writes the groups as text: one line per kernel with its member ops. */
HIDDEN void fusion_dump(const jg_graph *g, const fusion *f, FILE *out);

#endif
