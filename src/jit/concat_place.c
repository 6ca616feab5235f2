/* Concatenations written in place (JIT pass "concat"): when each piece of a concat is one
 * contiguous run of its result (the concat axis is the first dim that is not 1), the pieces'
 * kernels write straight into their runs of the concat's buffer and the concat has no kernel.
 * An LSTM's backward concatenates the 28 steps' gate gradients [B, 4H] into [T*B, 4H] for
 * the weight-gradient GEMMs: 7 MB copied per layer and step of training, now never.
 *
 * A concat with the same pieces as one placed before is that one's buffer. A piece
 * qualifies when it is a kernel's result of its own (a group root, not an alias,
 * a leaf or a parameter update written in place), no output of the program (outputs keep
 * buffers of their own), a piece of this concat only once and of no other, and its run
 * starts 64-byte aligned (kernels store aligned vectors). Its buffer then
 * lives inside the concat's, which the arena keeps from the first piece's kernel to the last
 * reader of the concat or of any piece (buffers.c). */
#include "jit/executor.h"

#include <stdlib.h>

/* Whether the pieces of concat n are contiguous runs of its result. */
static bool pieces_contiguous(const jg_node *n)
{
    for (int d = 0; d < n->attr.axis; d++)
        if (n->shape.dim[d] != 1)
            return false;
    return true;
}

/* Whether node x can be written into a run of concat c. */
static bool piece_ok(const jit_program *j, const jg_node *c, const jg_node *x)
{
    const fusion *f = &j->fus;
    if (f->role[x->id] != ROLE_ROOT || f->is_output[x->id] || j->in_place[x->id] ||
        j->piece_of[x->id] || x->dtype != c->dtype || j->placed_concat[f->group_of[x->id]])
        return false; /* a placed concat has no buffer of its own to be placed */
    int uses = 0;
    for (int k = 0; k < c->n_in; k++)
        uses += c->in[k] == x;
    return uses == 1;
}

/* A placed concat of group < gi with c's axis and pieces, in order, or NULL. */
static const jg_node *placed_twin(const jit_program *j, const jg_node *c, int gi)
{
    for (int q = 0; q < gi; q++) {
        const jg_node *d = j->fus.groups[q].root;
        if (!j->placed_concat[q] || d->attr.axis != c->attr.axis || d->n_in != c->n_in ||
            !shape_eq(d->shape, c->shape))
            continue;
        bool same = true;
        for (int k = 0; k < c->n_in && same; k++)
            same = d->in[k] == c->in[k];
        if (same)
            return d;
    }
    return NULL;
}

int jit_plan_concats(jit_program *j)
{
    const fusion *f = &j->fus;
    int placed = 0;
    for (int gi = 0; gi < f->n_groups; gi++) {
        const jg_node *c = f->groups[gi].root;
        if (f->groups[gi].kind != GROUP_OPAQUE || c->op != JG_OP_CONCAT ||
            !pieces_contiguous(c))
            continue;
        /* the same pieces in the same order (an RNN's gate gradients, stacked for both
         * weights' gradients): the same bytes */
        const jg_node *twin = f->is_output[c->id] ? NULL : placed_twin(j, c, gi);
        if (twin) {
            j->piece_of[c->id] = twin;
            j->piece_offset[c->id] = 0;
            j->placed_concat[gi] = true;
            placed++;
            continue;
        }
        /* kernels store whole vectors aligned to 64 bytes: so must each run start */
        bool ok = true;
        int64_t at = 0;
        for (int k = 0; k < c->n_in && ok; k++) {
            ok = piece_ok(j, c, c->in[k]) && at * (int64_t)jg_dtype_size(c->dtype) % 64 == 0;
            at += jg_shape_numel(c->in[k]->shape);
        }
        if (!ok)
            continue;
        at = 0;
        for (int k = 0; k < c->n_in; k++) {
            const jg_node *x = c->in[k];
            j->piece_of[x->id] = c;
            j->piece_offset[x->id] = at;
            at += jg_shape_numel(x->shape);
        }
        j->placed_concat[gi] = true;
        placed++;
    }
    return placed;
}
