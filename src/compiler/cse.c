/* Common-subexpression elimination (pass "cse"): a node equal to one already copied (same
 * op, dtype, shape, attributes and operands) is that node.
 * Operands are compared by identity, so merging bottom-up finds every common subexpression.
 * Leaves with identity of their own (inputs, parameters, constants, random streams, custom
 * calls) never merge: their attributes or names differ. */
#include "compiler/pass.h"

#include <stdlib.h>
#include <string.h>

typedef struct cse_table {
    jg_node **slots; /* open addressing, a power of two in size */
    size_t cap, count;
    int seen; /* nodes of the new graph already offered to the table */
} cse_table;

static uint64_t mix(uint64_t h, uint64_t v) { return (h ^ v) * 0x100000001b3ULL; }

static uint64_t hash_of(jg_op op, jg_dtype t, jg_shape s, jg_node *const *in, int n_in,
                        const op_attr *a)
{
    uint64_t h = mix(mix(0xcbf29ce484222325ULL, (uint64_t)op), (uint64_t)t);
    for (int d = 0; d < s.ndim; d++)
        h = mix(h, (uint64_t)s.dim[d]);
    for (int k = 0; k < n_in; k++)
        h = mix(h, (uint64_t)in[k]->id);
    uint64_t bits;
    memcpy(&bits, &a->scalar[0], sizeof bits);
    h = mix(h, bits);
    return mix(mix(h, a->axes), (uint64_t)a->axis);
}

static bool same_attr(const op_attr *a, const op_attr *b)
{
    return a->scalar[0] == b->scalar[0] && a->scalar[1] == b->scalar[1] && a->axes == b->axes &&
           a->keepdims == b->keepdims && a->ties == b->ties && a->axis == b->axis && a->count == b->count &&
           a->dtype == b->dtype && !memcmp(a->list, b->list, sizeof a->list) &&
           !memcmp(a->step, b->step, sizeof a->step) && a->data == b->data &&
           a->key == b->key && a->custom == b->custom;
}

static bool mergeable(jg_op op)
{
    return op != JG_OP_INPUT && op != JG_OP_PARAM && op != JG_OP_CONST && op != JG_OP_RANDOM &&
           op != JG_OP_CUSTOM && op != JG_OP_POISON;
}

/* The node equal to the one described, if the table has one. */
static jg_node *cse_find(cse_table *t, jg_op op, jg_dtype dtype, jg_shape s, jg_node *const *in,
                         int n_in, const op_attr *a)
{
    if (!t->cap || !mergeable(op))
        return NULL;
    size_t i = hash_of(op, dtype, s, in, n_in, a) & (t->cap - 1);
    for (jg_node *n; (n = t->slots[i]); i = (i + 1) & (t->cap - 1)) {
        if (n->op != op || n->dtype != dtype || !shape_eq(n->shape, s) || n->n_in != n_in)
            continue;
        bool same = same_attr(&n->attr, a);
        for (int k = 0; k < n_in && same; k++)
            same = n->in[k] == in[k];
        if (same)
            return n;
    }
    return NULL;
}

static void cse_add(cse_table *t, jg_node *n)
{
    if (!mergeable(n->op))
        return;
    if (2 * (t->count + 1) > t->cap) { /* keep the table at most half full */
        size_t cap = t->cap ? 2 * t->cap : 256;
        jg_node **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return; /* an optimisation: merge less */
        for (size_t i = 0; i < t->cap; i++)
            if (t->slots[i]) {
                jg_node *m = t->slots[i];
                size_t j = hash_of(m->op, m->dtype, m->shape, m->in, m->n_in, &m->attr) & (cap - 1);
                while (slots[j])
                    j = (j + 1) & (cap - 1);
                slots[j] = m;
            }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
    }
    size_t i = hash_of(n->op, n->dtype, n->shape, n->in, n->n_in, &n->attr) & (t->cap - 1);
    while (t->slots[i])
        i = (i + 1) & (t->cap - 1);
    t->slots[i] = n;
    t->count++;
}

/* Called for each node in order: what the rewrite copied since the last call goes into the
 * table first, so every earlier node can be found. */
static jg_node *merge_rule(void *state, jg_graph *g, const jg_node *n, jg_node *const *in)
{
    cse_table *t = state;
    for (; t->seen < g->n_nodes; t->seen++)
        if (!node_poisoned(g->nodes[t->seen]))
            cse_add(t, g->nodes[t->seen]);
    return cse_find(t, n->op, n->dtype, n->shape, in, n->n_in, &n->attr);
}

bool pass_cse(pass_ctx *c)
{
    cse_table t = { 0 };
    bool changed = pass_rewrite(c, merge_rule, &t);
    free(t.slots);
    return changed;
}
