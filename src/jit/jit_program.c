/* The JIT executor: compiles a program's graph into kernels and runs them.
 *
 *     user graph ─lower─▶ program graph ─fuse─▶ groups ─plan─▶ buffer slots (arena offsets
 *     by liveness) ─emit─▶ one LLVM function per group ─compile─▶ kernels, run in order over
 *     the thread pool
 *
 * A run allocates nothing: every buffer is planned at compile time into one arena. Inputs,
 * parameters and constants are read where they live (the bound input copies, the parameter
 * store); updates are copied into the store after all kernels have run. */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include "jit/jit_program.h"
#include "jit/denormals.h"
#include "jit/emit_loops.h"
#include "jit/emit_opaque.h"
#include "graph/passes/passes.h"
#include "jit/gemm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- buffer plan */

static size_t node_bytes(const jg_node *n)
{
    return (size_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
}

/* The node whose buffer holds n's bytes (n itself, or what a reshape aliases). */
static const jg_node *storage_of(const jit_program *j, const jg_node *n)
{
    return j->fus.role[n->id] == ROLE_ALIAS ? j->fus.alias_of[n->id] : n;
}

/* The kernel that computes group gi: its own, or its multi-output leader's. */
static int exec_of(const jit_program *j, int gi)
{
    return j->fus.groups[gi].leader >= 0 ? j->fus.groups[gi].leader : gi;
}

/* A part of a multi-output kernel whose result only that kernel reads, and which is no
 * output, is never stored. */
static bool internal_part(const jit_program *j, int gi)
{
    const fuse_group *grp = &j->fus.groups[gi];
    int k = exec_of(j, gi);
    if (j->fus.groups[k].kind != GROUP_MULTI || j->fus.is_output[grp->root->id] ||
        grp->kind == GROUP_REDUCE)
        return false;
    const jg_graph *g = j->low.g;
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        int owner = j->fus.group_of[id];
        if (owner >= 0 && exec_of(j, owner) == k)
            continue;
        for (int i = 0; i < n->n_in; i++)
            if (storage_of(j, n->in[i]) == grp->root && j->fus.role[id] != ROLE_UNUSED)
                return false;
    }
    return true;
}

/* Arena offsets: each kernel's output lives from its kernel to the last kernel reading it
 * (to the end for outputs); two buffers share bytes only when their lives do not overlap. */
static jg_status plan_arena(jit_program *j, jg_node *const *keep, int n_keep)
{
    jg_graph *g = j->low.g;
    int n = g->n_nodes;
    int *first = malloc((size_t)n * sizeof *first), *last = malloc((size_t)n * sizeof *last);
    size_t *offset = calloc((size_t)n, sizeof *offset);
    if (!first || !last || !offset) {
        free(first), free(last), free(offset);
        return JG_ERR_NOMEM;
    }
    for (int id = 0; id < n; id++)
        first[id] = last[id] = -1;
    for (int gi = 0; gi < j->fus.n_groups; gi++)
        first[j->fus.groups[gi].root->id] = last[j->fus.groups[gi].root->id] = exec_of(j, gi);
    /* readers: any member of group gi reading a non-member buffer */
    for (int id = 0; id < n; id++) {
        const jg_node *v = g->nodes[id];
        int gi = j->fus.group_of[id];
        if (gi < 0)
            continue;
        gi = exec_of(j, gi);
        for (int k = 0; k < v->n_in; k++) {
            const jg_node *in = v->in[k];
            if (j->fus.group_of[in->id] >= 0 && exec_of(j, j->fus.group_of[in->id]) == gi &&
                j->fus.role[in->id] == ROLE_INLINE)
                continue;
            const jg_node *s = storage_of(j, in);
            if (last[s->id] < gi)
                last[s->id] = gi;
        }
    }
    for (int i = 0; i < n_keep; i++)
        last[storage_of(j, keep[i])->id] = j->fus.n_groups;
    /* first fit by definition order; O(roots^2) is fine for graphs of this size */
    size_t top = 0;
    for (int gi = 0; gi < j->fus.n_groups; gi++) {
        const jg_node *r = j->fus.groups[gi].root;
        bool none = j->in_place[r->id] || internal_part(j, gi);
        size_t bytes = none ? 0 : (node_bytes(r) + 63) & ~(size_t)63, at = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int gk = 0; gk < gi; gk++) {
                const jg_node *o = j->fus.groups[gk].root;
                bool o_none = j->in_place[o->id] || internal_part(j, gk);
                size_t ob = o_none ? 0 : (node_bytes(o) + 63) & ~(size_t)63;
                bool live_together = !(last[o->id] < first[r->id] || last[r->id] < first[o->id]);
                if (live_together && at < offset[o->id] + ob && offset[o->id] < at + bytes) {
                    at = offset[o->id] + ob;
                    moved = true;
                }
            }
        }
        offset[r->id] = at;
        if (at + bytes > top)
            top = at + bytes;
    }
    j->arena_bytes = top;
    jg_status st = JG_OK;
    if (top) {
        j->arena = aligned_alloc(64, top);
        if (!j->arena)
            st = JG_ERR_NOMEM;
        else if (top >= ((size_t)2 << 20))
            madvise(j->arena, top, MADV_HUGEPAGE); /* fewer page faults and TLB misses */
    }
    for (int gi = 0; st == JG_OK && gi < j->fus.n_groups; gi++) {
        const jg_node *r = j->fus.groups[gi].root;
        j->bufs[j->slot_of[r->id]] = j->in_place[r->id] ? j->in_place[r->id]
                                                         : j->arena + offset[r->id];
    }
    free(first), free(last), free(offset);
    return st;
}

/* Whether group gi reads node v's buffer (directly or through a reshape of it). */
static bool group_reads(const jit_program *j, int gi, const jg_node *v)
{
    const jg_graph *g = j->low.g;
    for (int id = 0; id < g->n_nodes; id++) {
        if (j->fus.group_of[id] != gi)
            continue;
        const jg_node *m = g->nodes[id];
        for (int k = 0; k < m->n_in; k++)
            if (storage_of(j, m->in[k]) == v && j->fus.group_of[m->in[k]->id] != gi)
                return true;
    }
    return false;
}

static bool member_of(const jit_program *j, int gi, const jg_node *n)
{
    return j->fus.group_of[n->id] == gi && j->fus.role[n->id] == ROLE_INLINE;
}

/* Whether the expression n of group gi reads param's buffer anywhere. */
static bool subtree_reads(const jit_program *j, int gi, const jg_node *n, const jg_node *param)
{
    if (storage_of(j, n) == param)
        return true;
    for (int k = 0; member_of(j, gi, n) && k < n->n_in; k++)
        if (subtree_reads(j, gi, n->in[k], param))
            return true;
    return false;
}

/* Whether every read of param under n (in group gi) is at n's own index: reached through
 * pointwise ops of n's shape only. */
static bool identity_reads(const jit_program *j, int gi, const jg_node *n, const jg_node *param)
{
    if (storage_of(j, n) == param)
        return true;
    if (!member_of(j, gi, n) && j->fus.groups[gi].root != n)
        return true;
    op_kind kind = op_get(n->op)->kind;
    bool pointwise = kind == KIND_ELEMENTWISE || kind == KIND_BROADCAST;
    for (int k = 0; k < n->n_in; k++) {
        const jg_node *in = n->in[k];
        bool ok = pointwise && shape_eq(in->shape, n->shape) ? identity_reads(j, gi, in, param)
                                                              : !subtree_reads(j, gi, in, param);
        if (!ok)
            return false;
    }
    return true;
}

/* Whether group q is an opaque kernel that can fail at run time (an index out of range). */
static bool can_fail(const jit_program *j, int q)
{
    jg_op op = j->fus.groups[q].root->op;
    return j->fus.groups[q].kind == GROUP_OPAQUE &&
           (op == JG_OP_TAKE || op == JG_OP_SCATTER_ADD || op == JG_OP_ONE_HOT ||
            op == JG_OP_CROSS_ENTROPY);
}

/* Fused updates in place: an update whose new value is the root of an elementwise kernel of
 * its own that reads the parameter only at the position it writes is written straight into
 * the parameter store (no arena bytes, no copy after the run) when no kernel running at or
 * after it, no output and no other update needs the old value, and no kernel after it can
 * fail (a failed run must leave the store as it was). Positions are execution positions:
 * sibling fusion runs merged groups where their last part was. */
static void plan_in_place_updates(jit_program *j, jg_program *p)
{
    for (int u = 0; u < p->n_updates; u++) {
        const jg_node *param = j->low.map[p->updates[u].param->id];
        const jg_node *v = j->low.map[p->updates[u].value->id];
        int gi = j->fus.group_of[v->id];
        if (!param || j->fus.role[v->id] != ROLE_ROOT || gi < 0 ||
            j->fus.groups[gi].kind != GROUP_ELEMENTWISE || j->fus.groups[gi].leader >= 0 ||
            !shape_eq(v->shape, param->shape))
            continue;
        bool ok = identity_reads(j, gi, v, param);
        for (int q = 0; q < j->fus.n_groups && ok; q++)
            if (q != gi && exec_of(j, q) >= gi)
                ok = !group_reads(j, q, param) && !can_fail(j, q);
        for (int o = 0; o < p->n_outputs && ok; o++)
            ok = storage_of(j, j->low.map[p->outputs[o]->id]) != param;
        for (int w = 0; w < p->n_updates && ok; w++)
            ok = w == u || storage_of(j, j->low.map[p->updates[w].value->id]) != param;
        if (ok) {
            j->in_place[v->id] = j->bufs[j->slot_of[param->id]];
            j->n_in_place++;
        }
    }
}

/* Slots: one per leaf and per group root; reshapes share their base's slot. */
static jg_status assign_slots(jit_program *j, jg_program *p)
{
    jg_graph *g = j->low.g;
    j->slot_of = malloc((size_t)g->n_nodes * sizeof *j->slot_of);
    /* leaves and roots, plus the partial buffers of multi-output kernels */
    j->bufs = calloc(2 * (size_t)g->n_nodes + 1, sizeof *j->bufs);
    j->consts = calloc((size_t)g->n_nodes + 1, sizeof *j->consts);
    if (!j->slot_of || !j->bufs || !j->consts)
        return JG_ERR_NOMEM;
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        node_role r = j->fus.role[id];
        j->slot_of[id] = -1;
        if (r == ROLE_ROOT)
            j->slot_of[id] = j->n_slots++;
        if (r != ROLE_LEAF)
            continue;
        int s = j->slot_of[id] = j->n_slots++;
        if (n->op == JG_OP_PARAM) {
            j->bufs[s] = p->graph->params[n->param].data;
        } else if (n->op == JG_OP_INPUT) {
            for (int i = 0; i < p->n_inputs; i++)
                if (strcmp(p->inputs[i].node->name, n->name) == 0)
                    j->bufs[s] = p->inputs[i].data;
        } else { /* a constant, converted to its dtype once */
            int64_t numel = jg_shape_numel(n->shape);
            void *c = j->consts[id] = aligned_alloc(64, ((size_t)numel * 8 + 63) & ~(size_t)63);
            if (!c)
                return JG_ERR_NOMEM;
            for (int64_t i = 0; i < numel; i++) {
                double v = n->attr.data[i];
                if (n->dtype == JG_F32) ((float *)c)[i] = (float)v;
                else if (n->dtype == JG_F64) ((double *)c)[i] = v;
                else ((int32_t *)c)[i] = saturate_i32(v);
            }
            j->bufs[s] = c;
        }
    }
    for (int id = 0; id < g->n_nodes; id++)
        if (j->fus.role[id] == ROLE_ALIAS)
            j->slot_of[id] = j->slot_of[j->fus.alias_of[id]->id];
    j->step_slot = j->n_slots++;
    j->bufs[j->step_slot] = &j->step;
    return JG_OK;
}

/* ---------------------------------------------------------------- kernels */

/* Lanes per vector: as many of the kernel's element type as a register holds (other dtypes
 * in the group, e.g. an f64 learning rate in an f32 update, use as many lanes). */
static int lanes_for(const jit_program *j, const fuse_group *grp)
{
    const jg_node *r = grp->root;
    jg_dtype t = grp->kind == GROUP_REDUCE ? r->in[0]->dtype : r->dtype;
    if (grp->kind == GROUP_MULTI) /* the iteration space's dtype: any part's input */
        for (int gi = 0; gi < j->fus.n_groups; gi++)
            if (exec_of(j, gi) == grp - j->fus.groups && j->fus.groups[gi].root->n_in)
                t = j->fus.groups[gi].root->in[0]->dtype;
    int w = jit_vector_bits(j->session) / (8 * (int)jg_dtype_size(t));
    return w < 1 ? 1 : w;
}

typedef struct epilogue_ctx {
    const jg_node *root, *core;
} epilogue_ctx;

/* The matmul's consumers, evaluated on its accumulator where the GEMM stores a tile. */
static LLVMValueRef matmul_epilogue(void *ctx, emit_ctx *e, LLVMValueRef acc, const kidx *idx)
{
    epilogue_ctx *c = ctx;
    e->bound = c->core;
    e->bound_value = acc;
    LLVMValueRef v = emit_value(e, c->root, idx);
    e->bound = NULL;
    return v;
}

/* A matmul operand: a buffer, possibly seen through permute and broadcast views. */
static void operand_of(const jit_program *j, const jg_node *mm, int which, gemm_operand *op)
{
    const jg_node *x = mm->in[which];
    int nd = mm->shape.ndim; /* operand dims map to output dims: batch..., then 2 */
    /* index map: dim d of x's view reads dim src[d] of the buffer (or nothing: -1) */
    int64_t stride[JG_MAX_DIMS];
    jg_shape view = x->shape;
    int src[JG_MAX_DIMS];
    for (int d = 0; d < view.ndim; d++)
        src[d] = d;
    const jg_node *v = x;
    while (j->fus.role[v->id] == ROLE_INLINE && (v->op == JG_OP_PERMUTE || v->op == JG_OP_BROADCAST)) {
        const jg_node *in = v->in[0];
        int nsrc[JG_MAX_DIMS];
        for (int d = 0; d < view.ndim; d++) {
            int s = src[d];
            if (s < 0) {
                nsrc[d] = -1;
            } else if (v->op == JG_OP_PERMUTE) {
                nsrc[d] = (int)v->attr.list[s];
            } else {
                int lead = v->shape.ndim - in->shape.ndim;
                nsrc[d] = s < lead || in->shape.dim[s - lead] == 1 ? -1 : s - lead;
            }
        }
        memcpy(src, nsrc, sizeof src);
        v = in;
    }
    const jg_node *buf = storage_of(j, v);
    int64_t bstrides[JG_MAX_DIMS];
    shape_strides(v->shape, bstrides);
    for (int d = 0; d < view.ndim; d++)
        stride[d] = src[d] < 0 || v->shape.dim[src[d]] == 1 ? 0 : bstrides[src[d]];
    op->slot = j->kslot[v->id];
    (void)buf;
    op->rs = stride[view.ndim - 2];
    op->cs = stride[view.ndim - 1];
    /* batch dims of the operand align right with the output's batch dims */
    int lead = (nd - 2) - (view.ndim - 2);
    for (int d = 0; d < nd - 2; d++)
        op->bstride[d] = d < lead ? 0 : stride[d - lead];
}

/* Kernels address their buffers through a table of their own, numbered in the order the
 * group's nodes first use them, so structurally equal kernels (the steps of an unrolled RNN)
 * have equal IR and are compiled once. */
static int local_slot(jit_program *j, int global)
{
    if (global < 0)
        return -1;
    if (j->g2l[global] < 0) {
        j->g2l[global] = j->n_local;
        j->local_bufs[j->n_local++] = j->bufs[global];
    }
    return j->g2l[global];
}

/* Numbers the slots group gi uses (node slots in id order, the step first) into j->kslot. */
static void number_slots(jit_program *j, const bool *member, const jg_node *root)
{
    const jg_graph *g = j->low.g;
    for (int s = 0; s < 2 * g->n_nodes + 1; s++)
        j->g2l[s] = -1;
    j->n_local = 0;
    local_slot(j, j->step_slot);
    for (int id = 0; id < g->n_nodes; id++)
        j->kslot[id] = -1;
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        if (!member[id] && n != root)
            continue;
        j->kslot[id] = local_slot(j, j->slot_of[id]);
        for (int k = 0; k < n->n_in; k++)
            j->kslot[n->in[k]->id] = local_slot(j, j->slot_of[n->in[k]->id]);
    }
}

static LLVMValueRef emit_group(jit_program *j, int gi, emit_ctx *e, jit_module *m,
                               jit_kernel *k, epilogue_ctx *ep)
{
    const fuse_group *grp = &j->fus.groups[gi];
    const jg_node *root = grp->root;
    int out = j->kslot[root->id];
    switch (grp->kind) {
    case GROUP_ELEMENTWISE:
        return emit_elementwise(e, m, j->low.g, root, out, &k->outer, &k->align);
    case GROUP_REDUCE:
        return emit_reduce(e, m, root, out, &k->outer, &k->align);
    case GROUP_OPAQUE: {
        int *in_slots = malloc(((size_t)root->n_in + 1) * sizeof *in_slots);
        if (!in_slots)
            return NULL;
        for (int i = 0; i < root->n_in; i++)
            in_slots[i] = j->kslot[root->in[i]->id];
        LLVMValueRef fn = opaque_emit(e, m, root, out, in_slots, &k->outer, &k->align);
        free(in_slots);
        return fn;
    }
    case GROUP_MULTI: {
        int n = 0;
        size_t cap = (size_t)j->fus.n_groups + 1;
        const jg_node **outs = malloc(cap * sizeof *outs);
        int *slots = malloc(cap * sizeof *slots), *partial = malloc(cap * sizeof *partial);
        k->partials = calloc(cap, sizeof *k->partials);
        LLVMValueRef fn = NULL;
        bool ok = outs && slots && partial && k->partials;
        const jg_node *lead = NULL;
        for (int p = 0; ok && p < j->fus.n_groups; p++) {
            if (exec_of(j, p) != gi)
                continue;
            const jg_node *r = j->fus.groups[p].root;
            outs[n] = r;
            slots[n] = internal_part(j, p) ? -1 : j->kslot[r->id];
            partial[n] = -1;
            if (j->fus.groups[p].kind == GROUP_REDUCE || (p == gi && r->op == JG_OP_SUM) ||
                r->op == JG_OP_MAX || r->op == JG_OP_MIN || r->op == JG_OP_SUM) {
                lead = lead ? lead : r;
                size_t bytes = (size_t)multi_blocks(r) * node_bytes(r);
                void *buf = k->partials[k->n_partials++] = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
                ok = buf != NULL;
                j->bufs[j->n_slots] = buf;
                partial[n] = local_slot(j, j->n_slots++);
            }
            n++;
        }
        if (ok && lead) {
            fn = emit_multi(e, m, j->low.g->n_nodes, outs, slots, partial, n, &k->outer,
                            &k->align);
            k->finish = true;
        }
        free(outs);
        free(slots);
        free(partial);
        return fn;
    }
    case GROUP_MATMUL: {
        const jg_node *mm = grp->core;
        gemm_desc d = { .dtype = mm->dtype, .batch_ndim = mm->shape.ndim - 2,
                        .m = mm->shape.dim[mm->shape.ndim - 2],
                        .n = mm->shape.dim[mm->shape.ndim - 1],
                        .k = mm->in[0]->shape.dim[mm->in[0]->shape.ndim - 1],
                        .out_slot = out };
        for (int i = 0; i < d.batch_ndim; i++)
            d.batch_dim[i] = mm->shape.dim[i];
        operand_of(j, mm, 0, &d.a);
        operand_of(j, mm, 1, &d.b);
        *ep = (epilogue_ctx){ root, mm };
        if (root != mm) {
            d.epilogue = matmul_epilogue;
            d.epilogue_ctx = ep;
        }
        return gemm_emit(e, m, &d, &k->outer, &k->align, &k->scratch);
    }
    }
    return NULL;
}

static jg_status compile_kernels(jit_program *j, bool keep_text, char *err, size_t size)
{
    jg_graph *g = j->low.g;
    bool *member = calloc((size_t)g->n_nodes + 1, sizeof *member);
    LLVMValueRef *hoisted = malloc(((size_t)g->n_nodes + 1) * sizeof *hoisted);
    j->kernels = calloc((size_t)j->fus.n_groups + 1, sizeof *j->kernels);
    size_t n_slots_max = 2 * (size_t)g->n_nodes + 1;
    j->g2l = malloc(n_slots_max * sizeof *j->g2l);
    j->local_bufs = malloc(n_slots_max * sizeof *j->local_bufs);
    j->kslot = malloc(((size_t)g->n_nodes + 1) * sizeof *j->kslot);
    if (!member || !hoisted || !j->kernels || !j->g2l || !j->local_bufs || !j->kslot) {
        free(member);
        free(hoisted);
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    jg_status st = JG_OK;
    for (int gi = 0; gi < j->fus.n_groups && st == JG_OK; gi++) {
        const fuse_group *grp = &j->fus.groups[gi];
        jit_kernel *k = &j->kernels[j->n_kernels];
        k->group = gi;
        if (grp->root->op == JG_OP_CUSTOM) {
            const jg_node *r = grp->root;
            int in_slots[JG_CUSTOM_MAX_INPUTS + 2]; /* a gradient op has n_inputs + 2 */
            for (int i = 0; i < r->n_in && i < JG_CUSTOM_MAX_INPUTS + 2; i++)
                in_slots[i] = j->slot_of[storage_of(j, r->in[i])->id];
            st = custom_call_prepare(r, in_slots, j->slot_of[r->id], &k->call, err, size);
            k->outer = k->align = 1;
            if (st == JG_OK)
                j->n_kernels++;
            continue;
        }
        if (grp->leader >= 0)
            continue; /* computed by its multi-output kernel */
        for (int id = 0; id < g->n_nodes; id++) {
            int owner = j->fus.group_of[id];
            member[id] = owner >= 0 && exec_of(j, owner) == gi && j->fus.role[id] != ROLE_ALIAS;
        }
        member[grp->root->id] = grp->kind != GROUP_OPAQUE;
        double t0 = now_ms();
        number_slots(j, member, grp->root);
        jit_module m;
        jit_module_new(j->session, &m, "jitgrad");
        emit_ctx e = { .width = lanes_for(j, grp), .member = member, .slot_of = j->kslot,
                       .step_slot = 0 };
        if (grp->kind == GROUP_ELEMENTWISE || grp->kind == GROUP_REDUCE ||
            grp->kind == GROUP_MULTI) { /* see emit_ctx.hoisted */
            memset(hoisted, 0, ((size_t)g->n_nodes + 1) * sizeof *hoisted);
            e.hoisted = hoisted;
        }
        epilogue_ctx ep;
        LLVMValueRef fn = emit_group(j, gi, &e, &m, k, &ep);
        j->timing.build_ms += now_ms() - t0;
        if (fn && !(k->bufs = malloc(((size_t)j->n_local + 1) * sizeof *k->bufs)))
            fn = NULL;
        if (k->bufs)
            memcpy(k->bufs, j->local_bufs, (size_t)j->n_local * sizeof *k->bufs);
        if (!fn || e.unsupported) {
            jit_module_dispose(&m);
            free(k->bufs);
            k->bufs = NULL;
            if (grp->kind == GROUP_MATMUL && grp->core->dtype == JG_I32) {
                snprintf(err, size, "jg_matmul: the JIT has no i32 matmul (cast the operands "
                         "to f32 or f64, or compile with JG_EXEC_REFERENCE)");
                st = JG_ERR_DTYPE;
            } else {
                snprintf(err, size, "internal: no kernel for %s",
                         e.unsupported ? e.unsupported : op_get(grp->root->op)->name);
                st = JG_ERR_STATE;
            }
            break;
        }
        jit_compile_info info;
        void *addr = NULL;
        st = jit_compile(j->session, &m, fn, keep_text, &addr, &info, err, size);
        if (st != JG_OK) {
            free(k->bufs);
            k->bufs = NULL;
        }
        j->timing.optimise_ms += info.optimise_ms;
        j->timing.codegen_ms += info.codegen_ms;
        j->timing.cache_hits += info.cache_hit;
        k->fn = (jit_kernel_fn)(uintptr_t)addr;
        k->ir = info.ir;
        k->asm_text = info.asm_text;
        if (st == JG_OK)
            j->n_kernels++;
        if (k->scratch > j->scratch_per_thread)
            j->scratch_per_thread = k->scratch;
    }
    free(member);
    free(hoisted);
    return st;
}

/* ---------------------------------------------------------------- compile and run */

/* The JIT's own passes are recorded like the graph passes: started here, ended below. */
static pass_record *jit_record(jit_program *j, const char *name, bool on)
{
    pass_record *r = &j->passes[j->n_passes < PASS_MAX ? j->n_passes++ : PASS_MAX - 1];
    *r = (pass_record){ .name = name, .ran = on, .nodes_before = j->low.g ? j->low.g->n_nodes : 0,
                        .ms = now_ms() };
    return r;
}

static void jit_record_end(pass_record *r, int rewrites)
{
    r->ms = r->ran ? now_ms() - r->ms : 0;
    r->nodes_after = r->nodes_before;
    r->rewrites = r->ran ? rewrites : 0;
    r->changed |= r->ran && rewrites > 0;
}

/* The graph passes over the lowered graph (src/graph/passes/pipeline.c). roots[] (user nodes:
 * outputs, then update values) become nodes of the final program graph; update targets are
 * kept alive so the in-place planner can find them. */
static jg_status run_graph_passes(jit_program *j, const jg_program *p, const jg_opts *o,
                                  jg_node **roots, char *err, size_t size)
{
    int n_roots = p->n_outputs + p->n_updates;
    jg_node **all = malloc(((size_t)n_roots + (size_t)p->n_updates + 1) * sizeof *all);
    if (!all) {
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    int n_keep = 0;
    for (int i = 0; i < n_roots; i++)
        all[i] = j->low.map[roots[i]->id];
    for (int u = 0; u < p->n_updates; u++) /* a target the values do not read is not needed */
        if (j->low.map[p->updates[u].param->id])
            all[n_roots + n_keep++] = j->low.map[p->updates[u].param->id];
    pass_ctx c = { .g = j->low.g, .roots = all, .n_roots = n_roots, .n_keep = n_keep,
                   .map = j->low.map, .n_map = j->low.n_src, .train = p->train };
    jg_status st = pass_pipeline_run(&c, o->passes_off, o->dump_dir, j->passes, &j->n_passes);
    j->low.g = c.g; /* the pipeline replaced it (and freed the old one) */
    if (st != JG_OK)
        snprintf(err, size, "graph passes: %s", c.errmsg);
    for (int i = 0; st == JG_OK && i < n_roots; i++)
        roots[i] = all[i];
    free(all);
    return st;
}

jg_status jit_program_compile(jg_program *p, const jg_opts *o, char *err, size_t size)
{
    jit_program *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    p->jit = j;
    double t0 = now_ms();
    int n_roots = p->n_outputs + p->n_updates;
    jg_node **roots = malloc(((size_t)n_roots + 1) * sizeof *roots);
    if (!roots) {
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    for (int i = 0; i < p->n_outputs; i++)
        roots[i] = p->outputs[i];
    for (int i = 0; i < p->n_updates; i++)
        roots[p->n_outputs + i] = p->updates[i].value;
    jg_status st = lower_graph(p->graph, roots, n_roots, p->train, &j->low, err, size);
    if (st == JG_OK)
        st = run_graph_passes(j, p, o, roots, err, size);
    bool fuse = !o->no_fusion && pass_enabled(o->passes_off, "fuse");
    pass_record *r = jit_record(j, "fuse", fuse);
    if (st == JG_OK && pass_fuse(j->low.g, roots, n_roots, fuse, &j->fus) != JG_OK) {
        snprintf(err, size, "out of memory");
        st = JG_ERR_NOMEM;
    }
    jit_record_end(r, j->fus.n_groups);
    r = jit_record(j, "siblings", fuse && pass_enabled(o->passes_off, "siblings"));
    if (st == JG_OK && r->ran)
        r->changed = pass_fuse_siblings(j->low.g, &j->fus);
    jit_record_end(r, 0);
    j->timing.passes_ms = now_ms() - t0;
    if (st == JG_OK)
        st = assign_slots(j, p);
    if (st == JG_OK && !(j->in_place = calloc((size_t)j->low.g->n_nodes + 1, sizeof *j->in_place)))
        st = JG_ERR_NOMEM;
    r = jit_record(j, "inplace", pass_enabled(o->passes_off, "inplace"));
    if (st == JG_OK && r->ran)
        plan_in_place_updates(j, p);
    jit_record_end(r, j->n_in_place);
    if (st == JG_OK)
        st = plan_arena(j, roots, n_roots);
    free(roots);
    if (st == JG_ERR_NOMEM)
        snprintf(err, size, "out of memory");
    if (st != JG_OK)
        return st;

    const char *cache = o->cache_dir ? o->cache_dir : getenv("JITGRAD_CACHE_DIR");
    jit_target t = { .cpu = o->cpu, .features = o->cpu_features, .opt_level = o->opt_level,
                     .vector_bits = o->vector_bits, .cache_dir = cache && *cache ? cache : NULL };
    if (!(j->session = jit_session_new(&t, err, size)))
        return JG_ERR_STATE;
    st = compile_kernels(j, o->keep_text, err, size);
    if (st != JG_OK)
        return st;
    j->flush_denormals = o->flush_denormals;
    int threads = o->num_threads > 0 ? o->num_threads : jit_pool_default_threads();
    j->pool = threads > 1 ? jit_pool_new(threads) : NULL;
    j->n_threads = j->pool ? threads : 1;
    if (j->scratch_per_thread) {
        j->scratch_per_thread = (j->scratch_per_thread + 63) & ~(size_t)63;
        j->scratch = aligned_alloc(64, j->scratch_per_thread * (size_t)j->n_threads);
        if (!j->scratch) {
            snprintf(err, size, "out of memory");
            return JG_ERR_NOMEM;
        }
    }
    j->n_updates = p->n_updates;
    j->stage = calloc((size_t)p->n_updates + 1, sizeof *j->stage);
    for (int u = 0; j->stage && u < p->n_updates; u++) {
        const jg_node *v = storage_of(j, j->low.map[p->updates[u].value->id]);
        if (v->op == JG_OP_PARAM && v->param != p->updates[u].param->param &&
            !(j->stage[u] = malloc(node_bytes(v))))
            break;
    }
    j->n_outputs = p->n_outputs;
    j->snap = calloc((size_t)p->n_outputs + 1, sizeof *j->snap);
    if (!j->snap) {
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    for (int i = 0; i < p->n_outputs && p->n_updates; i++) {
        const jg_node *v = storage_of(j, j->low.map[p->outputs[i]->id]);
        if (v->op == JG_OP_PARAM && !(j->snap[i] = malloc(node_bytes(v)))) {
            snprintf(err, size, "out of memory");
            return JG_ERR_NOMEM;
        }
    }
    j->timing.total_ms = now_ms() - t0;
    return JG_OK;
}

void jit_program_free(jit_program *j)
{
    if (!j)
        return;
    for (int i = 0; j->kernels && i <= j->n_kernels && i <= j->fus.n_groups; i++) {
        for (int p = 0; p < j->kernels[i].n_partials; p++)
            free(j->kernels[i].partials[p]);
        free(j->kernels[i].partials);
    }
    for (int i = 0; i < j->n_kernels; i++) {
        free(j->kernels[i].bufs);
        custom_call_free(j->kernels[i].call);
        free(j->kernels[i].ir);
        free(j->kernels[i].asm_text);
    }
    free(j->kernels);
    for (int i = 0; j->snap && i < j->n_outputs; i++)
        free(j->snap[i]);
    for (int i = 0; j->stage && i < j->n_updates; i++)
        free(j->stage[i]);
    free(j->stage);
    free(j->snap);
    jit_pool_free(j->pool);
    jit_session_free(j->session);
    for (int id = 0; j->consts && id < j->low.g->n_nodes; id++)
        free(j->consts[id]);
    free(j->consts);
    free(j->arena);
    free(j->scratch);
    free(j->bufs);
    free(j->g2l);
    free(j->local_bufs);
    free(j->kslot);
    free(j->in_place);
    free(j->slot_of);
    fusion_free(&j->fus);
    lowered_free(&j->low);
    free(j);
}

typedef struct run_ctx {
    jit_program *j;
    jit_kernel *k;
    int64_t failed[JIT_POOL_MAX_THREADS > 64 ? 64 : JIT_POOL_MAX_THREADS];
} run_ctx;

static void run_chunk(void *ctx, int64_t begin, int64_t end, int thread)
{
    run_ctx *c = ctx;
    char *scratch = c->j->scratch ? c->j->scratch + (size_t)thread * c->j->scratch_per_thread
                                  : NULL;
    unsigned fp = denormals_flush(c->j->flush_denormals); /* on whichever thread runs it */
    int64_t r = c->k->fn(c->k->bufs, begin, end, scratch);
    denormals_restore(c->j->flush_denormals, fp);
    if (r && thread < 64)
        c->failed[thread] = r;
}

/* check_finite: every result kernel k stored (its root, or each stored part of a
 * multi-output kernel). */
static jg_status check_kernel(const jit_program *j, const jit_kernel *k, char *err, size_t size)
{
    for (int q = 0; q < j->fus.n_groups; q++) {
        if (exec_of(j, q) != k->group || internal_part(j, q))
            continue;
        const jg_node *r = j->fus.groups[q].root;
        const void *data = j->bufs[j->slot_of[r->id]];
        int64_t at = first_nonfinite(r, data, false);
        if (at >= 0) {
            double v = r->dtype == JG_F64 ? ((const double *)data)[at]
                                          : (double)((const float *)data)[at];
            nonfinite_message(r, at, v, err, size);
            return JG_ERR_NONFINITE;
        }
    }
    return JG_OK;
}

/* Where update u's new value is after the kernels have run. */
static const void *update_source(const jit_program *j, const jg_program *p, int u)
{
    const jg_node *v = storage_of(j, j->low.map[p->updates[u].value->id]);
    return j->bufs[j->slot_of[v->id]];
}

/* The message of a kernel that found an index out of range at flat position pos. */
static void range_message(const jit_program *j, const jg_node *n, int64_t pos, char *err,
                          size_t size)
{
    int which = n->op == JG_OP_ONE_HOT ? 0 : 1;
    const int32_t *idx = j->bufs[j->slot_of[storage_of(j, n->in[which])->id]];
    long long v = idx[pos];
    if (n->op == JG_OP_CROSS_ENTROPY)
        snprintf(err, size, "jg_cross_entropy: label %lld out of range [0, %lld) at row %lld", v,
                 (long long)n->in[0]->shape.dim[1], (long long)pos);
    else if (n->op == JG_OP_ONE_HOT)
        snprintf(err, size, "jg_one_hot: index %lld out of range [0, %lld) on axis %d", v,
                 (long long)n->attr.count, n->shape.ndim - 1);
    else
        snprintf(err, size, "jg_%s: index %lld out of range [0, %lld) on axis %d",
                 op_get(n->op)->name, v,
                 (long long)(n->op == JG_OP_TAKE ? n->in[0]->shape.dim[n->attr.axis]
                                                 : n->attr.count), n->attr.axis);
}

jg_status jit_program_run(jg_program *p, char *err, size_t size)
{
    jit_program *j = p->jit;
    j->step = p->step;
    for (int i = 0; i < j->n_kernels; i++) {
        jit_kernel *k = &j->kernels[i];
        const jg_node *root = j->fus.groups[k->group].root;
        if (k->call) {
            double t0 = j->profile ? now_ms() : 0;
            custom_call_run(k->call, j->bufs);
            if (j->profile) {
                k->total_ms += now_ms() - t0;
                k->runs++;
            }
            continue;
        }
        run_ctx c = { .j = j, .k = k };
        /* a chunk should carry ~16k elements of work to be worth a thread */
        group_kind kind = j->fus.groups[k->group].kind;
        int64_t work = kind == GROUP_REDUCE || (kind == GROUP_MULTI && root->n_in == 1)
                           ? jg_shape_numel(root->in[0]->shape) : jg_shape_numel(root->shape);
        if (kind == GROUP_MULTI)
            for (int q = 0; q < j->fus.n_groups; q++)
                if (exec_of(j, q) == k->group && j->fus.groups[q].root->n_in)
                    work = jg_shape_numel(j->fus.groups[q].root->in[0]->shape);
        int64_t per_unit = k->outer ? work / k->outer : 1;
        if (j->fus.groups[k->group].kind == GROUP_MATMUL)
            per_unit = 1 << 14;
        int64_t min_chunk = per_unit >= (1 << 14) ? 1 : (1 << 14) / (per_unit ? per_unit : 1);
        double t0 = j->profile ? now_ms() : 0;
        jit_pool_run(j->pool, k->outer, k->align, min_chunk, run_chunk, &c);
        if (k->finish) { /* a multi-output kernel combines its partial rows */
            unsigned fp = denormals_flush(j->flush_denormals);
            k->fn(k->bufs, -1, -1, j->scratch);
            denormals_restore(j->flush_denormals, fp);
        }
        if (j->profile) {
            k->total_ms += now_ms() - t0;
            k->runs++;
        }
        for (int t = 0; t < 64; t++)
            if (c.failed[t]) {
                range_message(j, root, c.failed[t] - 1, err, size);
                return JG_ERR_RANGE;
            }
        if (p->check_finite && check_kernel(j, k, err, size) != JG_OK)
            return JG_ERR_NONFINITE;
    }
    for (int i = 0; i < p->n_outputs; i++)
        if (j->snap[i])
            jit_program_read(p, p->outputs[i], j->snap[i]);
    /* Updates take effect together, as in the reference: values that live in a parameter
     * (P <- Q while Q <- P) are staged first, then every value goes into the store. */
    for (int u = 0; u < p->n_updates; u++)
        if (j->stage[u])
            memcpy(j->stage[u], update_source(j, p, u), node_bytes(p->updates[u].param));
    for (int u = 0; u < p->n_updates; u++) {
        void *dst = p->graph->params[p->updates[u].param->param].data;
        const void *src = j->stage[u] ? j->stage[u] : update_source(j, p, u);
        if (dst != src)
            memcpy(dst, src, node_bytes(p->updates[u].param));
    }
    return JG_OK;
}

void jit_program_read(const jg_program *p, const jg_node *n, void *out)
{
    const jit_program *j = p->jit;
    const jg_node *v = storage_of(j, j->low.map[n->id]);
    const void *src = j->bufs[j->slot_of[v->id]];
    for (int i = 0; i < p->n_outputs && p->ran; i++)
        if (p->outputs[i] == n && j->snap[i])
            src = j->snap[i];
    memcpy(out, src, node_bytes(n));
}
