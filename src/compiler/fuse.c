/* Fusion: decides for every node whether it gets a buffer (a kernel writes it) or is computed
 * inline by the kernel that consumes it. Nodes are visited from the outputs down (reverse id
 * order), so a node's consumers are decided before it.
 *
 * Legality, in order:
 * - leaves (inputs, parameters, constants) are buffers; fills are inline constants;
 * - outputs, nodes with several consumers, and operands that a consumer needs as a buffer
 *   are materialised (a kernel of their own);
 * - reductions, argmax and the opaque ops (gather, scatter, pad, concat, unslice, one_hot,
 *   cross_entropy) always have a kernel of their own; opaque ops read their operands from
 *   buffers; a reduction reads an inline elementwise DAG (sum(x*y) is one pass);
 * - a reshape reads a buffer under another shape (an alias, no kernel); so does a slice that
 *   is one contiguous run of a buffer (an offset into it), when that buffer exists anyway:
 *   an RNN step's block of a projection computed for all steps at once (its GEMM reads the
 *   block in place, and every step's kernel is the same code);
 * - a matmul reads buffers, possibly through permute/broadcast views (strides), and its second
 *   operand may be a gathered one (with `gather`): a take (or a reshape of one) along its
 *   source's last axis by constant, in-range indices (im2col), which the GEMM gathers per
 *   batch into its scratch, so the gathered matrix never exists in memory (nor the source's
 *   padding by elements appended to its rows, when only the take reads it); it joins its
 *   single consumer's kernel as an epilogue when every node from it to that kernel's root is
 *   elementwise over the matmul's own shape, and at most one matmul per kernel; a matmul
 *   whose single consumer sums over batch dimensions only (a broadcast weight's gradient)
 *   joins that sum's kernel instead: the GEMM accumulates the batch into one C;
 * - with fusion off, every op other than a fill, a reshape or a leaf has a kernel of its own. */
#include "compiler/fuse.h"
#include "ops/op.h"

#include <stdlib.h>
#include <string.h>

static bool is_leaf(const jg_node *n)
{
    return n->op == JG_OP_INPUT || n->op == JG_OP_PARAM || n->op == JG_OP_CONST;
}

/* The graph is lowered: composites (mean, softmax, the losses) are gone, so what is left of
 * these kinds is sum/max/min and the ops with a kernel of their own (gathers, pads, argmax,
 * cross_entropy, custom). */
static bool is_reduction(const jg_node *n) { return op_get(n->op)->kind == KIND_REDUCE; }
static bool is_opaque(const jg_node *n) { return op_get(n->op)->kind == KIND_OPAQUE; }

typedef struct state {
    jg_graph *g;
    bool enabled, gather;
    bool *needed, *is_root, *need_buffer, *matmul_view, *has_matmul;
    bool *to_b;        /* a view chain ending in a matmul's second operand */
    int *uses;
    int *gather_uses;  /* uses that read the node as a gathered GEMM operand */
    jg_node **consumer; /* the only consumer when uses == 1 */
    jg_node **top;      /* the root of the kernel computing the node */
    fusion *f;
} state;

/* Whether matmul m can be the core of its single consumer's kernel. */
static bool joins_epilogue(state *s, jg_node *m)
{
    if (!s->enabled || s->is_root[m->id] || s->uses[m->id] != 1)
        return false;
    jg_node *c = s->consumer[m->id];
    jg_node *top = s->top[c->id];
    if (s->has_matmul[top->id])
        return false;
    for (jg_node *x = c;; x = s->consumer[x->id]) {
        if (!op_is_pointwise(x) || !shape_eq(x->shape, m->shape))
            return false;
        if (x == top)
            return true;
    }
}

/* Whether matmul m is summed over some of its batch dimensions (and nothing else) by its
 * single consumer, which then computes it: sum_b A[b] B[b] is one GEMM whose K runs over the
 * batch too, with no [batch, m, n] buffer. */
static bool joins_batch_sum(state *s, jg_node *m)
{
    if (!s->enabled || s->is_root[m->id] || s->uses[m->id] != 1 || m->dtype == JG_I32 ||
        jg_shape_numel(m->shape) == 0)
        return false;
    jg_node *c = s->consumer[m->id];
    uint32_t batch_axes = (1u << (m->shape.ndim - 2)) - 1;
    return c->op == JG_OP_SUM && c->attr.axes && (c->attr.axes & ~batch_axes) == 0 &&
           s->f->role[c->id] == ROLE_ROOT && !s->has_matmul[c->id];
}

/* A permute that moves no axis between the batch and the matrix dimensions (it may
 * transpose the matrices): each batch's operand stays within one block of a gathered one. */
static bool keeps_matrices(const jg_node *v)
{
    if (v->op != JG_OP_PERMUTE)
        return false;
    int nd = v->shape.ndim;
    for (int i = 0; i < nd - 2; i++)
        if (v->attr.list[i] != i)
            return false;
    return true;
}

/* A take the GEMM can gather itself: along its source's last axis (one element per index),
 * by a constant index table whose every index is in range (checked here, once: the gather
 * has no check of its own), float data. */
static bool gatherable_take(const jg_node *t)
{
    if (t->op != JG_OP_TAKE || (t->dtype != JG_F32 && t->dtype != JG_F64))
        return false;
    const jg_node *src = t->in[0], *ids = t->in[1];
    if (t->attr.axis != src->shape.ndim - 1 || ids->op != JG_OP_CONST || !ids->attr.data)
        return false;
    int64_t n = jg_shape_numel(ids->shape), row = src->shape.dim[src->shape.ndim - 1];
    for (int64_t i = 0; i < n; i++)
        if (!(ids->attr.data[i] >= 0 && ids->attr.data[i] < (double)row))
            return false;
    return n > 0;
}

/* A pad that only appends elements to the last axis, read by nothing but a gathered take:
 * the GEMM reads the unpadded buffer, and the indices past its rows read the pad value, so
 * the padded copy is never made (a convolution's fill element). */
static bool elided_pad(const state *s, const jg_node *p)
{
    if (p->op != JG_OP_PAD || s->uses[p->id] != 1 || s->is_root[p->id] || s->need_buffer[p->id])
        return false;
    int last = p->shape.ndim - 1;
    for (int k = 0; k < p->shape.ndim; k++)
        if (p->attr.list[k] != 0 || (k != last && p->attr.step[k] != 0))
            return false;
    return true;
}

/* A gatherable take, or a reshape of one, whose matrices ([..., K, N]) each hold whole rows
 * of the take's output (K*N a multiple of the index count): a GEMM operand it can gather by
 * batch. (A convolution with one input channel per group has no reshape: simplify drops it.) */
static bool gather_operand(const state *s, const jg_node *r)
{
    const jg_node *t = r->op == JG_OP_RESHAPE ? r->in[0] : r;
    if (!s->gather || r->shape.ndim < 2 || !gatherable_take(t))
        return false;
    int64_t block = r->shape.dim[r->shape.ndim - 1] * r->shape.dim[r->shape.ndim - 2];
    return block > 0 && block % jg_shape_numel(t->in[1]->shape) == 0;
}

/* The element offset of slice n in its operand when the slice is one contiguous run of it
 * (the axes before the sliced one have extent 1, the sliced one has step 1, the ones after
 * are whole), else -1. */
static int64_t contiguous_offset(const jg_node *n)
{
    if (n->op != JG_OP_SLICE)
        return -1;
    jg_shape in = n->in[0]->shape;
    int a = n->attr.axis;
    int64_t inner = 1;
    for (int k = 0; k < in.ndim; k++) {
        if (k < a && in.dim[k] != 1)
            return -1;
        if (k > a) {
            if (n->shape.dim[k] != in.dim[k])
                return -1;
            inner *= in.dim[k];
        }
    }
    if (n->attr.step[a] != 1 && n->shape.dim[a] != 1)
        return -1;
    return n->attr.list[a] * inner;
}

/* x will be a buffer whatever its consumers do (approximately: decided before x is). Not
 * a parameter (an update written in place would change what an alias of it reads), and not
 * a fill or random tensor, which are computed inline wherever they are read. */
static bool buffer_anyway(const state *s, const jg_node *x)
{
    op_kind k = op_get(x->op)->kind;
    if (x->op == JG_OP_PARAM || x->op == JG_OP_FILL || x->op == JG_OP_RANDOM)
        return false;
    return s->uses[x->id] > 1 || k == KIND_LEAF ||
           k == KIND_REDUCE || k == KIND_OPAQUE || x->op == JG_OP_MATMUL ||
           x->op == JG_OP_RESHAPE ||
           (x->op == JG_OP_SLICE && contiguous_offset(x) >= 0 && buffer_anyway(s, x->in[0]));
}

/* A concat of a few pieces that one pointwise op of its shape reads is computed inline
 * there, each lane loaded from its piece (emit_expr.c): an LSTM step's four gate gradients,
 * concatenated along the last axis for one [B, 4H] kernel, are not copied first. */
enum { INLINE_CONCAT_MAX = 8 };

static bool inline_concat(const state *s, const jg_node *n)
{
    const jg_node *c = s->consumer[n->id];
    return s->enabled && n->op == JG_OP_CONCAT && n->n_in <= INLINE_CONCAT_MAX &&
           !s->is_root[n->id] && s->uses[n->id] == 1 && !s->need_buffer[n->id] &&
           !s->gather_uses[n->id] && c && op_is_pointwise(c) && shape_eq(c->shape, n->shape);
}

static void decide(state *s, jg_node *n)
{
    node_role *role = s->f->role;
    int id = n->id;
    if (s->gather_uses[id] && s->gather_uses[id] == s->uses[id] && !s->is_root[id] &&
        !s->need_buffer[id] &&
        (n->op != JG_OP_RESHAPE || (s->uses[n->in[0]->id] == 1 && !s->is_root[n->in[0]->id]))) {
        /* (the take must be inline too: the GEMM reads the take's operands, not its buffer) */
        /* a gathered operand (the reshape), then its take and the take's elided pad:
         * computed inside the GEMMs */
        role[id] = ROLE_INLINE;
        s->top[id] = s->top[s->consumer[id]->id];
        if (n->op == JG_OP_RESHAPE) {
            s->gather_uses[n->in[0]->id] = s->uses[n->in[0]->id] == 1;
        } else if (n->op == JG_OP_PAD) {
            s->need_buffer[n->in[0]->id] = true;
        } else {
            s->need_buffer[n->in[1]->id] = true;
            if (elided_pad(s, n->in[0]))
                s->gather_uses[n->in[0]->id] = 1;
            else
                s->need_buffer[n->in[0]->id] = true;
        }
        return;
    }
    if (is_leaf(n)) {
        role[id] = ROLE_LEAF;
        s->top[id] = n;
        return;
    }
    if (n->op == JG_OP_FILL || n->op == JG_OP_RANDOM) { /* recomputed where used */
        role[id] = s->is_root[id] || s->need_buffer[id] ? ROLE_ROOT : ROLE_INLINE;
        s->top[id] = n;
        return;
    }
    if (n->op == JG_OP_RESHAPE ||
        (s->enabled && !s->gather_uses[id] && contiguous_offset(n) >= 0 &&
         buffer_anyway(s, n->in[0]))) {
        role[id] = ROLE_ALIAS;
        s->need_buffer[n->in[0]->id] = true;
        s->top[id] = n;
        return;
    }
    if (inline_concat(s, n)) {
        role[id] = ROLE_INLINE;
        s->top[id] = s->top[s->consumer[id]->id];
        for (int k = 0; k < n->n_in; k++) /* the lanes are loaded from the pieces */
            s->need_buffer[n->in[k]->id] = true;
        return;
    }
    bool own_kernel = is_reduction(n) || is_opaque(n) ||
                      (n->op == JG_OP_MATMUL && !joins_epilogue(s, n) &&
                       !joins_batch_sum(s, n));
    bool materialise = !s->enabled || own_kernel || s->is_root[id] || s->uses[id] > 1 ||
                       s->need_buffer[id];
    role[id] = materialise ? ROLE_ROOT : ROLE_INLINE;
    s->top[id] = materialise ? n : s->top[s->consumer[id]->id];
    if (n->op == JG_OP_MATMUL)
        s->has_matmul[s->top[id]->id] = true;

    /* What this node needs of its operands. */
    bool view_chain = s->matmul_view[id] && role[id] == ROLE_INLINE;
    for (int k = 0; k < n->n_in; k++) {
        jg_node *in = n->in[k];
        bool b_side = n->op == JG_OP_MATMUL ? k == 1 : s->to_b[id];
        if (is_opaque(n)) {
            s->need_buffer[in->id] = true;
        } else if (n->op == JG_OP_MATMUL || view_chain) {
            if (s->enabled && (in->op == JG_OP_PERMUTE || in->op == JG_OP_BROADCAST)) {
                s->matmul_view[in->id] = true; /* read through strides */
                s->to_b[in->id] = b_side && keeps_matrices(in);
            } else if (b_side && gather_operand(s, in)) {
                s->gather_uses[in->id]++;
            } else {
                s->need_buffer[in->id] = true;
            }
        }
    }
}

static group_kind kind_of(const jg_node *root, bool has_matmul)
{
    if (has_matmul) /* also a sum over a matmul's batch */
        return GROUP_MATMUL;
    if (is_reduction(root))
        return GROUP_REDUCE;
    if (is_opaque(root))
        return GROUP_OPAQUE;
    if (root->op == JG_OP_MATMUL)
        return GROUP_MATMUL;
    return GROUP_ELEMENTWISE;
}

static jg_status build_groups(state *s)
{
    jg_graph *g = s->g;
    fusion *f = s->f;
    int *index = malloc((size_t)g->n_nodes * sizeof *index);
    f->groups = malloc(((size_t)g->n_nodes + 1) * sizeof *f->groups);
    if (!index || !f->groups) {
        free(index);
        return JG_ERR_NOMEM;
    }
    for (int id = 0; id < g->n_nodes; id++) {
        index[id] = -1;
        if (f->role[id] != ROLE_ROOT)
            continue;
        jg_node *n = g->nodes[id];
        index[id] = f->n_groups;
        f->groups[f->n_groups++] = (fuse_group){ .kind = kind_of(n, s->has_matmul[id]),
                                                 .root = n, .leader = -1 };
    }
    for (int id = 0; id < g->n_nodes; id++) {
        node_role r = f->role[id];
        jg_node *n = g->nodes[id];
        if (r == ROLE_ALIAS) {
            jg_node *b = n->in[0];
            bool chained = f->role[b->id] == ROLE_ALIAS;
            f->alias_of[id] = chained ? f->alias_of[b->id] : b;
            f->alias_offset[id] = (chained ? f->alias_offset[b->id] : 0) +
                                  (n->op == JG_OP_SLICE ? contiguous_offset(n) : 0);
        }
        bool constant = n->op == JG_OP_FILL || n->op == JG_OP_RANDOM;
        if ((r != ROLE_ROOT && r != ROLE_INLINE) || (constant && r != ROLE_ROOT))
            continue;
        int gi = index[s->top[id]->id];
        f->group_of[id] = gi;
        fuse_group *grp = &f->groups[gi];
        grp->n_members++;
        if (n->op == JG_OP_MATMUL || (grp->kind != GROUP_ELEMENTWISE && n == grp->root &&
                                      grp->kind != GROUP_MATMUL))
            grp->core = n;
    }
    free(index);
    return JG_OK;
}

jg_status pass_fuse(jg_graph *g, jg_node *const *roots, int n_roots, bool enabled,
                    bool gather, fusion *out)
{
    int n = g->n_nodes;
    *out = (fusion){ 0 };
    state s = { .g = g, .enabled = enabled, .gather = enabled && gather, .f = out };
    s.needed = calloc((size_t)n + 1, sizeof *s.needed);
    s.is_root = calloc((size_t)n + 1, sizeof *s.is_root);
    s.need_buffer = calloc((size_t)n + 1, sizeof *s.need_buffer);
    s.matmul_view = calloc((size_t)n + 1, sizeof *s.matmul_view);
    s.has_matmul = calloc((size_t)n + 1, sizeof *s.has_matmul);
    s.uses = calloc((size_t)n + 1, sizeof *s.uses);
    s.gather_uses = calloc((size_t)n + 1, sizeof *s.gather_uses);
    s.to_b = calloc((size_t)n + 1, sizeof *s.to_b);
    s.consumer = calloc((size_t)n + 1, sizeof *s.consumer);
    s.top = calloc((size_t)n + 1, sizeof *s.top);
    out->role = calloc((size_t)n + 1, sizeof *out->role);
    out->group_of = malloc(((size_t)n + 1) * sizeof *out->group_of);
    out->alias_of = calloc((size_t)n + 1, sizeof *out->alias_of);
    out->alias_offset = calloc((size_t)n + 1, sizeof *out->alias_offset);
    out->is_output = calloc((size_t)n + 1, sizeof *out->is_output);
    jg_status st = JG_ERR_NOMEM;
    if (!s.needed || !s.is_root || !s.need_buffer || !s.matmul_view || !s.has_matmul ||
        !s.uses || !s.gather_uses || !s.to_b || !s.consumer || !s.top || !out->role ||
        !out->group_of || !out->alias_of || !out->alias_offset ||
        !out->is_output)
        goto done;
    for (int i = 0; i < n; i++)
        out->group_of[i] = -1;
    for (int i = 0; i < n_roots; i++)
        s.needed[roots[i]->id] = s.is_root[roots[i]->id] = out->is_output[roots[i]->id] = true;
    for (int id = n - 1; id >= 0; id--) {
        jg_node *v = g->nodes[id];
        if (!s.needed[id])
            continue;
        for (int k = 0; k < v->n_in; k++) {
            s.needed[v->in[k]->id] = true;
            s.uses[v->in[k]->id]++;
            s.consumer[v->in[k]->id] = v;
        }
    }
    for (int id = n - 1; id >= 0; id--)
        if (s.needed[id])
            decide(&s, g->nodes[id]);
    st = build_groups(&s);
done:
    free(s.needed);
    free(s.is_root);
    free(s.need_buffer);
    free(s.matmul_view);
    free(s.has_matmul);
    free(s.uses);
    free(s.gather_uses);
    free(s.to_b);
    free(s.consumer);
    free(s.top);
    if (st != JG_OK)
        fusion_free(out);
    return st;
}

void fusion_free(fusion *f)
{
    free(f->role);
    free(f->group_of);
    free(f->alias_of);
    free(f->alias_offset);
    free(f->is_output);
    free(f->groups);
    *f = (fusion){ 0 };
}

void fusion_dump(const jg_graph *g, const fusion *f, FILE *out)
{
    static const char *const kinds[] = { "elementwise", "reduce", "matmul", "opaque",
                                         "multi" };
    char buf[96];
    for (int gi = 0; gi < f->n_groups; gi++) {
        const fuse_group *grp = &f->groups[gi];
        if (grp->leader >= 0)
            continue; /* listed with its kernel */
        fprintf(out, "kernel %d (%s) -> %%%d %s%s:", gi, kinds[grp->kind], grp->root->id,
                jg_dtype_str(grp->root->dtype), shape_str(grp->root->shape, buf, sizeof buf));
        for (int id = 0; id < g->n_nodes; id++) {
            int owner = f->group_of[id];
            if (owner == gi || (owner >= 0 && f->groups[owner].leader == gi))
                fprintf(out, " %s%%%d", graph_op_name(g->nodes[id]->op), id);
        }
        fputc('\n', out);
    }
}
