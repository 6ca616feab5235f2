/* The reference executor: evaluates each scheduled node with its op's reference kernel, every
 * value held in double. It is the test oracle for the JIT and a debugging fallback, so it
 * favours obviousness over speed. f32 results are rounded to float after each op (unless the
 * program is exact) so that it computes what an f32 engine computes. */
#include "exec/exec.h"

#include <stdlib.h>
#include <string.h>

jg_status reference_prepare(exec_plan *p)
{
    p->values = calloc((size_t)p->n_sched + 1, sizeof *p->values);
    if (!p->values)
        return JG_ERR_NOMEM;
    for (int i = 0; i < p->n_sched; i++) {
        int64_t numel = jg_shape_numel(p->sched[i]->shape);
        if (!(p->values[i] = malloc((size_t)numel * sizeof(double))))
            return JG_ERR_NOMEM;
    }
    return JG_OK;
}

void reference_release(exec_plan *p)
{
    for (int i = 0; p->values && i < p->n_sched; i++)
        free(p->values[i]);
    free(p->values);
}

static void load(double *dst, const void *src, jg_dtype t, int64_t numel)
{
    for (int64_t i = 0; i < numel; i++)
        dst[i] = t == JG_F32   ? (double)((const float *)src)[i]
                 : t == JG_F64 ? ((const double *)src)[i]
                               : (double)((const int32_t *)src)[i];
}

static void store(void *dst, const double *src, jg_dtype t, int64_t numel)
{
    for (int64_t i = 0; i < numel; i++) {
        if (t == JG_F32)
            ((float *)dst)[i] = (float)src[i];
        else if (t == JG_F64)
            ((double *)dst)[i] = src[i];
        else
            ((int32_t *)dst)[i] = saturate_i32(src[i]);
    }
}

static const program_input *find_input(const exec_plan *p, const jg_node *n)
{
    for (int i = 0; i < p->n_inputs; i++)
        if (p->inputs[i].node == n)
            return &p->inputs[i];
    return NULL;
}

jg_status reference_run(exec_plan *p, char *err)
{
    const double *stack_in[4], **in = stack_in;
    int max_in = 0;
    for (int i = 0; i < p->n_sched; i++)
        max_in = p->sched[i]->n_in > max_in ? p->sched[i]->n_in : max_in;
    if (max_in > 4 && !(in = malloc((size_t)max_in * sizeof *in))) {
        snprintf(err, OP_ERR_SIZE, "out of memory");
        return JG_ERR_NOMEM;
    }
    jg_status st = JG_OK;
    for (int i = 0; i < p->n_sched && st == JG_OK; i++) {
        const jg_node *n = p->sched[i];
        int64_t numel = jg_shape_numel(n->shape);
        double *out = p->values[i];
        if (p->override && p->override[i]) {
            memcpy(out, p->override[i], (size_t)numel * sizeof *out);
            continue;
        }
        if (n->op == JG_OP_INPUT) {
            load(out, find_input(p, n)->data, n->dtype, numel);
            continue;
        }
        if (n->op == JG_OP_PARAM) {
            load(out, p->graph->params[n->param].data, n->dtype, numel);
            continue;
        }
        if (n->op == JG_OP_MODE) {
            memcpy(out, p->values[p->slot[n->in[p->train ? 0 : 1]->id]],
                   (size_t)numel * sizeof *out);
            continue;
        }
        if (n->op == JG_OP_RANDOM) {
            for (int64_t k = 0; k < numel; k++)
                out[k] = round_to(n->dtype, random_value(n->attr.key, p->step, k));
            continue;
        }
        for (int k = 0; k < n->n_in; k++)
            in[k] = p->values[p->slot[n->in[k]->id]];
        char why[OP_ERR_SIZE] = "";
        st = op_get(n->op)->eval(n, in, out, why);
        if (st != JG_OK) {
            char origin[EXEC_ORIGIN_SIZE];
            snprintf(err, 2 * OP_ERR_SIZE, "%s: %s", exec_node_origin(n, origin, sizeof origin),
                     why);
            break;
        }
        if (n->dtype == JG_I32 || (n->dtype == JG_F32 && !p->exact))
            for (int64_t k = 0; k < numel; k++)
                out[k] = round_to(n->dtype, out[k]);
        int64_t bad = p->check_finite ? first_nonfinite(n, out, true) : -1;
        if (bad >= 0) {
            nonfinite_message(n, bad, out[bad], err, 2 * OP_ERR_SIZE);
            st = JG_ERR_NONFINITE;
            break;
        }
    }
    if (in != stack_in)
        free(in);
    if (st != JG_OK)
        return st;
    /* Updates are applied after every value is computed, so they all see the old state. */
    for (int i = 0; i < p->n_updates; i++) {
        const jg_update *u = &p->updates[i];
        store(p->graph->params[u->param->param].data, p->values[p->slot[u->value->id]],
              u->param->dtype, jg_shape_numel(u->param->shape));
    }
    return JG_OK;
}

void reference_read(const exec_plan *p, const jg_node *n, void *out)
{
    store(out, p->values[p->slot[n->id]], n->dtype, jg_shape_numel(n->shape));
}
