/* The JIT executor's kernels: each fused group emitted as one LLVM function by the emitter
 * of its kind (elementwise and reduction loop nests, multi-output passes, opaque ops, GEMM
 * with its epilogue), over a slot table of its own, then compiled by the session. */
#include "jit/executor.h"

#include "jit/emit_loops.h"
#include "jit/emit_opaque.h"
#include "jit/gemm.h"

#include <stdlib.h>
#include <string.h>

/* Lanes per vector: as many of the kernel's element type as a register holds (other dtypes
 * in the group, e.g. an f64 learning rate in an f32 update, use as many lanes). */
static int lanes_for(const jit_program *j, const fuse_group *grp)
{
    const jg_node *r = grp->root;
    jg_dtype t = grp->kind == GROUP_REDUCE ? r->in[0]->dtype : r->dtype;
    int k = (int)(grp - j->fus.groups);
    if (grp->kind == GROUP_MULTI && fuse_multi_reduces(&j->fus, k)) /* the space's dtype: any
                                                                    * part's input */
        for (int gi = 0; gi < j->fus.n_groups; gi++)
            if (jit_exec_of(j, gi) == k && j->fus.groups[gi].root->n_in)
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

/* A matmul operand: a buffer, possibly seen through permute and broadcast views, or a gathered
 * one. */
static void operand_of(jit_program *j, const jg_node *mm, int which, gemm_operand *op)
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
    int64_t bstrides[JG_MAX_DIMS];
    shape_strides(v->shape, bstrides);
    op->block = 0;
    if ((v->op == JG_OP_RESHAPE || v->op == JG_OP_TAKE) && j->fus.role[v->id] == ROLE_INLINE) {
        /* a gathered operand (fuse.c): v's contiguous strides address the take's output */
        const jg_node *take = v->op == JG_OP_TAKE ? v : v->in[0];
        const jg_node *from = take->in[0], *ids = take->in[1];
        op->pad = 0;
        if (from->op == JG_OP_PAD && j->fus.role[from->id] == ROLE_INLINE) { /* elided */
            op->pad = from->attr.scalar[0];
            from = from->in[0];
        }
        op->slot = local_slot(j, j->slot_of[from->id]);
        op->ids_slot = local_slot(j, j->slot_of[ids->id]);
        op->row = from->shape.dim[from->shape.ndim - 1];
        op->nidx = jg_shape_numel(ids->shape);
        op->ids_val = ids->attr.data;
        op->block = v->shape.dim[v->shape.ndim - 1] * v->shape.dim[v->shape.ndim - 2];
    } else {
        op->slot = j->kslot[v->id];
    }
    for (int d = 0; d < view.ndim; d++)
        stride[d] = src[d] < 0 || v->shape.dim[src[d]] == 1 ? 0 : bstrides[src[d]];
    op->rs = stride[view.ndim - 2];
    op->cs = stride[view.ndim - 1];
    /* batch dims of the operand align right with the output's batch dims */
    int lead = (nd - 2) - (view.ndim - 2);
    for (int d = 0; d < nd - 2; d++)
        op->bstride[d] = d < lead ? 0 : stride[d - lead];
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
        return emit_elementwise(e, m, j->low.g, &root, &out, 1, &k->outer, &k->align);
    case GROUP_REDUCE:
        return emit_reduce(e, m, root, out, &k->outer, &k->align, &k->scratch);
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
            if (jit_exec_of(j, p) != gi)
                continue;
            const jg_node *r = j->fus.groups[p].root;
            outs[n] = r;
            slots[n] = jit_internal_part(j, p) ? -1 : j->kslot[r->id];
            partial[n] = -1;
            if (j->fus.groups[p].kind == GROUP_REDUCE || (p == gi && r->op == JG_OP_SUM) ||
                r->op == JG_OP_MAX || r->op == JG_OP_MIN || r->op == JG_OP_SUM) {
                lead = lead ? lead : r;
                size_t bytes = (size_t)multi_blocks(r) * (size_t)jg_shape_numel(r->shape) *
                               jg_dtype_size(loops_acc_dtype(r->op, r->dtype));
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
        } else if (ok) { /* pointwise parts only: one elementwise loop storing each */
            fn = emit_elementwise(e, m, j->low.g, outs, slots, n, &k->outer, &k->align);
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
        if (root->op == JG_OP_SUM && root->in[0] == mm) /* see fuse.c: joins_batch_sum */
            d.batch_sum = root->attr.axes;
        else if (root != mm) {
            d.epilogue = matmul_epilogue;
            d.epilogue_ctx = ep;
        }
        return gemm_emit(e, m, &d, &k->outer, &k->align, &k->scratch);
    }
    }
    return NULL;
}

jg_status jit_compile_kernels(jit_program *j, bool keep_text, int threads, char *err,
                              size_t size)
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
    jit_batch *batch = jit_batch_new(j->session, threads);
    if (!batch) {
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
                in_slots[i] = j->slot_of[r->in[i]->id];
            st = custom_call_prepare(r, in_slots, j->slot_of[r->id], &k->call, err, size);
            k->outer = k->align = 1;
            if (st == JG_OK)
                j->n_kernels++;
            continue;
        }
        if (grp->leader >= 0 || j->placed_concat[gi])
            continue; /* computed by its multi-output kernel, or by its pieces' kernels */
        for (int id = 0; id < g->n_nodes; id++) {
            int owner = j->fus.group_of[id];
            member[id] = owner >= 0 && jit_exec_of(j, owner) == gi && j->fus.role[id] != ROLE_ALIAS;
        }
        member[grp->root->id] = grp->kind != GROUP_OPAQUE;
        k->ops = 1;
        for (int id = 0; id < g->n_nodes; id++)
            k->ops += member[id] && op_is_pointwise(g->nodes[id]);
        double t0 = jit_now_ms();
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
        j->timing.build_ms += jit_now_ms() - t0;
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
                         e.unsupported ? e.unsupported : graph_op_name(grp->root->op));
                st = JG_ERR_STATE;
            }
            break;
        }
        st = jit_batch_add(batch, &m, fn, keep_text, &k->ticket, err, size);
        if (st != JG_OK) {
            free(k->bufs);
            k->bufs = NULL;
            break;
        }
        j->n_kernels++;
        if (k->scratch > j->scratch_per_thread)
            j->scratch_per_thread = k->scratch;
    }
    /* Compile what the caches did not have, in parallel, then fetch every kernel's code. */
    if (st == JG_OK)
        st = jit_batch_run(batch, err, size);
    for (int i = 0; i < j->n_kernels && st == JG_OK; i++) {
        jit_kernel *k = &j->kernels[i];
        if (!k->bufs)
            continue; /* a custom op's call */
        jit_compile_info info;
        k->fn = (jit_kernel_fn)(uintptr_t)jit_batch_result(batch, k->ticket, &info);
        j->timing.optimise_ms += info.optimise_ms;
        j->timing.codegen_ms += info.codegen_ms;
        j->timing.cache_hits += info.cache_hit;
        k->ir = info.ir;
        k->asm_text = info.asm_text;
    }
    jit_batch_free(batch);
    free(member);
    free(hoisted);
    return st;
}
