/* The JIT executor's buffer plan: a slot per leaf and per kernel result, intermediates placed
 * in one arena by liveness, and updates written in place into the parameter store where
 * nothing else needs the old value. */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include "jit/executor.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The bytes of n's value. */
size_t jit_node_bytes(const jg_node *n)
{
    return (size_t)jg_shape_numel(n->shape) * jg_dtype_size(n->dtype);
}

/* The node whose buffer holds n's bytes (n itself, or what a reshape or contiguous slice
 * aliases; the slice's own bytes start at its offset: read them through slot_of[n]). */
const jg_node *jit_storage_of(const jit_program *j, const jg_node *n)
{
    return j->fus.role[n->id] == ROLE_ALIAS ? j->fus.alias_of[n->id] : n;
}

/* The kernel that computes group gi: its own, or its multi-output leader's. */
int jit_exec_of(const jit_program *j, int gi)
{
    return j->fus.groups[gi].leader >= 0 ? j->fus.groups[gi].leader : gi;
}

/* A part of a multi-output kernel whose result only that kernel reads, and which is no
 * output, is never stored. */
bool jit_internal_part(const jit_program *j, int gi)
{
    return j->internal_part && j->internal_part[gi];
}

/* j->internal_part: every non-reducing, non-output part of a multi kernel, unless a node
 * computed by another kernel (or an alias) reads its buffer. */
static jg_status find_internal_parts(jit_program *j)
{
    const jg_graph *g = j->low.g;
    const fusion *f = &j->fus;
    bool *internal = j->internal_part = calloc((size_t)f->n_groups + 1, sizeof *internal);
    if (!internal)
        return JG_ERR_NOMEM;
    for (int gi = 0; gi < f->n_groups; gi++)
        internal[gi] = f->groups[jit_exec_of(j, gi)].kind == GROUP_MULTI &&
                       !f->is_output[f->groups[gi].root->id] &&
                       f->groups[gi].kind != GROUP_REDUCE;
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        int owner = f->group_of[id], k = owner >= 0 ? jit_exec_of(j, owner) : -1;
        if (f->role[id] == ROLE_UNUSED)
            continue;
        for (int i = 0; i < n->n_in; i++) {
            const jg_node *s = jit_storage_of(j, n->in[i]);
            int gs = f->role[s->id] == ROLE_ROOT ? f->group_of[s->id] : -1;
            if (gs >= 0 && jit_exec_of(j, gs) != k && f->groups[gs].root == s)
                internal[gs] = false;
        }
    }
    return JG_OK;
}

/* Kernel gi reads node `in`: its buffer, or the buffers an inline node is computed from. */
static void mark_read(const jit_program *j, const jg_node *in, int gi, int *last)
{
    if (j->fus.role[in->id] == ROLE_INLINE && in->op != JG_OP_FILL && in->op != JG_OP_RANDOM) {
        for (int k = 0; k < in->n_in; k++)
            mark_read(j, in->in[k], gi, last);
        return;
    }
    const jg_node *s = jit_storage_of(j, in);
    if (last[s->id] < gi)
        last[s->id] = gi;
}

/* Arena offsets: each kernel's output lives from its kernel to the last kernel reading it
 * (to the end for outputs); two buffers share bytes only when their lives do not overlap. */
jg_status jit_plan_arena(jit_program *j, jg_node *const *keep, int n_keep)
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
        first[j->fus.groups[gi].root->id] = last[j->fus.groups[gi].root->id] = jit_exec_of(j, gi);
    /* readers: any member of group gi reading a non-member buffer, also through an inline
     * node of another group that gi computes again (a gathered GEMM operand) */
    for (int id = 0; id < n; id++) {
        const jg_node *v = g->nodes[id];
        int gi = j->fus.group_of[id];
        if (gi < 0)
            continue;
        gi = jit_exec_of(j, gi);
        for (int k = 0; k < v->n_in; k++) {
            const jg_node *in = v->in[k];
            if (j->fus.group_of[in->id] >= 0 && jit_exec_of(j, j->fus.group_of[in->id]) == gi &&
                j->fus.role[in->id] == ROLE_INLINE)
                continue;
            mark_read(j, in, gi, last);
        }
    }
    for (int i = 0; i < n_keep; i++)
        last[jit_storage_of(j, keep[i])->id] = j->fus.n_groups;
    /* a concat written in place lives from its first piece's kernel to the last reader of
     * it or of any piece (concat_place.c) */
    for (int id = 0; id < n; id++) {
        const jg_node *c = j->piece_of[id];
        if (!c)
            continue;
        first[c->id] = first[id] < first[c->id] ? first[id] : first[c->id];
        last[c->id] = last[id] > last[c->id] ? last[id] : last[c->id];
    }
    /* first fit by definition order; O(roots^2) is fine for graphs of this size */
    size_t top = 0;
    for (int gi = 0; gi < j->fus.n_groups; gi++) {
        const jg_node *r = j->fus.groups[gi].root;
        bool none = j->in_place[r->id] || jit_internal_part(j, gi) || j->piece_of[r->id];
        size_t bytes = none ? 0 : (jit_node_bytes(r) + 63) & ~(size_t)63, at = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int gk = 0; gk < gi; gk++) {
                const jg_node *o = j->fus.groups[gk].root;
                bool o_none = j->in_place[o->id] || jit_internal_part(j, gk) ||
                              j->piece_of[o->id];
                size_t ob = o_none ? 0 : (jit_node_bytes(o) + 63) & ~(size_t)63;
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
    for (int id = 0; st == JG_OK && id < n; id++) { /* pieces: after every concat's place */
        const jg_node *c = j->piece_of[id];
        if (c)
            j->bufs[j->slot_of[id]] = j->arena + offset[c->id] +
                                      j->piece_offset[id] * (int64_t)jg_dtype_size(c->dtype);
    }
    for (int id = 0; st == JG_OK && id < n; id++) {
        if (j->fus.role[id] != ROLE_ALIAS || !j->fus.alias_offset[id])
            continue;
        const jg_node *base = j->fus.alias_of[id];
        j->bufs[j->slot_of[id]] = (char *)j->bufs[j->slot_of[base->id]] +
                                  j->fus.alias_offset[id] * (int64_t)jg_dtype_size(base->dtype);
    }
    free(first), free(last), free(offset);
    return st;
}

/* Whether reading node n reads v's buffer: n is it (or an alias of it), or n is computed
 * inline from something that does (a gathered GEMM operand of another group). */
static bool reads_buffer(const jit_program *j, const jg_node *n, const jg_node *v)
{
    if (jit_storage_of(j, n) == v)
        return true;
    if (j->fus.role[n->id] != ROLE_INLINE)
        return false;
    for (int k = 0; k < n->n_in; k++)
        if (reads_buffer(j, n->in[k], v))
            return true;
    return false;
}

/* Whether group gi reads node v's buffer (directly, through a reshape of it, or through
 * another group's inline nodes it computes again). */
static bool group_reads(const jit_program *j, int gi, const jg_node *v)
{
    const jg_graph *g = j->low.g;
    for (int id = 0; id < g->n_nodes; id++) {
        if (j->fus.group_of[id] != gi)
            continue;
        const jg_node *m = g->nodes[id];
        for (int k = 0; k < m->n_in; k++)
            if (j->fus.group_of[m->in[k]->id] != gi && reads_buffer(j, m->in[k], v))
                return true;
    }
    return false;
}

/* Whether kernel k computes node n (not loads it): an inline node or root of one of its
 * groups. In a multi kernel a part's root is computed again where another part reads it. */
static bool computed_in(const jit_program *j, int k, const jg_node *n)
{
    int q = j->fus.group_of[n->id];
    node_role r = j->fus.role[n->id];
    return q >= 0 && jit_exec_of(j, q) == k && (r == ROLE_INLINE || r == ROLE_ROOT);
}

/* Whether the expression n, as kernel k computes it, reads param's buffer anywhere. */
static bool subtree_reads(const jit_program *j, int k, const jg_node *n, const jg_node *param)
{
    if (jit_storage_of(j, n) == param)
        return true;
    for (int i = 0; computed_in(j, k, n) && i < n->n_in; i++)
        if (subtree_reads(j, k, n->in[i], param))
            return true;
    return false;
}

/* Whether every read of param under n, as kernel k computes it, is at n's own index: reached
 * through pointwise ops of n's shape only (also through another part of a multi kernel,
 * which is computed inline where it is read). */
static bool identity_reads(const jit_program *j, int k, const jg_node *n, const jg_node *param)
{
    if (jit_storage_of(j, n) == param)
        return true;
    if (!computed_in(j, k, n))
        return true;
    bool pointwise = op_is_pointwise(n);
    for (int i = 0; i < n->n_in; i++) {
        const jg_node *in = n->in[i];
        bool ok = pointwise && shape_eq(in->shape, n->shape) ? identity_reads(j, k, in, param)
                                                              : !subtree_reads(j, k, in, param);
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

/* Fused updates in place: an update whose new value is the root of an elementwise kernel (of
 * its own, or a part of a pointwise multi kernel) that reads the parameter only at the
 * position it writes, as do the kernel's other parts, is written straight into the parameter
 * store (no arena bytes, no copy after the run) when no kernel running after it, no output
 * and no other update needs the old value, and no kernel after it can fail (a failed run
 * must leave the store as it was). Positions are execution positions: sibling fusion runs
 * merged groups where their last part was. */
void jit_plan_in_place(jit_program *j, exec_plan *p)
{
    for (int u = 0; u < p->n_updates; u++) {
        const jg_node *param = j->low.map[p->updates[u].param->id];
        const jg_node *v = j->low.map[p->updates[u].value->id];
        int gi = j->fus.group_of[v->id];
        if (!param || j->fus.role[v->id] != ROLE_ROOT || gi < 0 ||
            !shape_eq(v->shape, param->shape))
            continue;
        int k = jit_exec_of(j, gi); /* where it runs */
        bool pointwise_multi = j->fus.groups[k].kind == GROUP_MULTI &&
                               !fuse_multi_reduces(&j->fus, k);
        if (j->fus.groups[k].kind != GROUP_ELEMENTWISE && !pointwise_multi)
            continue;
        bool ok = identity_reads(j, k, v, param);
        /* the other parts of its kernel may read param where they write (each point's values
         * are computed before its stores, emit_elementwise.c) */
        for (int q = 0; q < j->fus.n_groups && ok; q++)
            if (q != gi && jit_exec_of(j, q) == k)
                ok = identity_reads(j, k, j->fus.groups[q].root, param);
        for (int q = 0; q < j->fus.n_groups && ok; q++)
            if (q != gi && jit_exec_of(j, q) > k)
                ok = !group_reads(j, q, param) && !can_fail(j, q);
        for (int o = 0; o < p->n_outputs && ok; o++)
            ok = jit_storage_of(j, j->low.map[p->outputs[o]->id]) != param;
        for (int w = 0; w < p->n_updates && ok; w++)
            ok = w == u || jit_storage_of(j, j->low.map[p->updates[w].value->id]) != param;
        if (ok) {
            j->in_place[v->id] = j->bufs[j->slot_of[param->id]];
            j->n_in_place++;
        }
    }
}

/* Slots: one per leaf and per group root; reshapes share their base's slot. */
jg_status jit_assign_slots(jit_program *j, exec_plan *p)
{
    jg_graph *g = j->low.g;
    j->slot_of = malloc((size_t)g->n_nodes * sizeof *j->slot_of);
    /* leaves and roots, plus the partial buffers of multi-output kernels */
    j->bufs = calloc(2 * (size_t)g->n_nodes + 1, sizeof *j->bufs);
    j->consts = calloc((size_t)g->n_nodes + 1, sizeof *j->consts);
    if (!j->slot_of || !j->bufs || !j->consts || find_internal_parts(j) != JG_OK)
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
    /* a reshape shares its base's slot; a slice at an offset has one of its own, pointed
     * into the base's bytes once the arena is placed (jit_plan_arena) */
    for (int id = 0; id < g->n_nodes; id++)
        if (j->fus.role[id] == ROLE_ALIAS)
            j->slot_of[id] = j->fus.alias_offset[id] ? j->n_slots++
                                                      : j->slot_of[j->fus.alias_of[id]->id];
    j->step_slot = j->n_slots++;
    j->bufs[j->step_slot] = &j->step;
    return JG_OK;
}
