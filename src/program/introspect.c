/* What a JIT program shows of itself: compile statistics, the fused groups as text and as a
 * Graphviz graph, each kernel's IR and assembly, and a per-kernel time profile. */
#include "program/program.h"

#include <stdlib.h>
#include <string.h>

static int rewrites_of(const jit_program *j, const char *pass)
{
    for (int i = 0; i < j->n_passes; i++)
        if (strcmp(j->passes[i].name, pass) == 0)
            return j->passes[i].rewrites;
    return 0;
}

const char *jg_pass_name(int i) { return pass_name(i); }

int jg_program_pass_count(const jg_program *p) { return p && p->jit ? p->jit->n_passes : 0; }

jg_status jg_program_pass_report(const jg_program *p, int i, jg_pass_report *out)
{
    if (!p || !out || i < 0 || i >= jg_program_pass_count(p))
        return JG_ERR_ARG;
    const pass_record *r = &p->jit->passes[i];
    *out = (jg_pass_report){ .name = r->name, .ran = r->ran, .changed = r->changed,
                             .nodes_before = r->nodes_before, .nodes_after = r->nodes_after,
                             .rewrites = r->rewrites, .ms = r->ms };
    return JG_OK;
}

void jg_program_pass_dump(const jg_program *p, FILE *out)
{
    if (!out)
        return;
    fprintf(out, "%-12s %4s %8s %8s %8s %9s\n", "pass", "ran", "nodes", "after", "rewrites", "ms");
    for (int i = 0; i < jg_program_pass_count(p); i++) {
        const pass_record *r = &p->jit->passes[i];
        fprintf(out, "%-12s %4s %8d %8d %8d %9.3f\n", r->name, r->ran ? "yes" : "off",
                r->nodes_before, r->nodes_after, r->rewrites, r->ms);
    }
}

jg_status jg_program_stats_get(const jg_program *p, jg_program_stats *out)
{
    if (!p || !out)
        return JG_ERR_ARG;
    *out = (jg_program_stats){ .threads = 1, .warnings = p->n_warnings };
    const jit_program *j = p->jit;
    if (!j)
        return JG_OK;
    *out = (jg_program_stats){ .kernels = j->n_kernels, .cache_hits = j->timing.cache_hits,
                               .threads = j->n_threads,
                               .vector_bits = jit_vector_bits(j->session),
                               .arena_bytes = j->arena_bytes,
                               .in_place_updates = j->n_in_place,
                               .cse_merged = rewrites_of(j, "cse"),
                               .simplified = rewrites_of(j, "simplify") +
                                             rewrites_of(j, "constfold"),
                               .warnings = p->n_warnings,
                               .passes_ms = j->timing.passes_ms, .build_ms = j->timing.build_ms,
                               .optimise_ms = j->timing.optimise_ms,
                               .codegen_ms = j->timing.codegen_ms,
                               .total_ms = j->timing.total_ms };
    return JG_OK;
}

void jg_program_dump(const jg_program *p, FILE *out)
{
    if (!p || !out)
        return;
    if (!p->jit) {
        fprintf(out, "reference executor: %d nodes, no kernels\n", p->plan.n_sched);
        return;
    }
    fusion_dump(p->jit->low.g, &p->jit->fus, out);
}

void jg_program_dot(const jg_program *p, FILE *out)
{
    if (!p || !out || !p->jit)
        return;
    const jit_program *j = p->jit;
    const jg_graph *g = j->low.g;
    char buf[96];
    fprintf(out, "digraph jitgrad {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (int gi = 0; gi < j->fus.n_groups; gi++) {
        fprintf(out, "  subgraph cluster_%d {\n    label=\"kernel %d\"; style=rounded;\n", gi, gi);
        for (int id = 0; id < g->n_nodes; id++)
            if (j->fus.group_of[id] == gi)
                fprintf(out, "    n%d;\n", id);
        fprintf(out, "  }\n");
    }
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        if (j->fus.role[id] == ROLE_UNUSED)
            continue;
        fprintf(out, "  n%d [label=\"%%%d %s%s%s\\n%s%s\"%s];\n", id, id, graph_op_name(n->op),
                n->name ? " " : "", n->name ? n->name : "", jg_dtype_str(n->dtype),
                shape_str(n->shape, buf, sizeof buf),
                j->fus.role[id] == ROLE_LEAF ? ", shape=ellipse" : "");
        for (int k = 0; k < n->n_in; k++)
            fprintf(out, "  n%d -> n%d;\n", n->in[k]->id, id);
    }
    fprintf(out, "}\n");
}

static const jit_kernel *kernel_at(const jg_program *p, int i)
{
    return p && p->jit && i >= 0 && i < p->jit->n_kernels ? &p->jit->kernels[i] : NULL;
}

const char *jg_program_kernel_ir(const jg_program *p, int i)
{
    const jit_kernel *k = kernel_at(p, i);
    return k ? k->ir : NULL;
}

const char *jg_program_kernel_asm(const jg_program *p, int i)
{
    const jit_kernel *k = kernel_at(p, i);
    return k ? k->asm_text : NULL;
}

void jg_program_profile(jg_program *p, bool on)
{
    if (!p || !p->jit)
        return;
    if (on && !p->jit->profile) /* the times of the following runs only */
        for (int i = 0; i < p->jit->n_kernels; i++)
            p->jit->kernels[i].total_ms = 0, p->jit->kernels[i].runs = 0;
    p->jit->profile = on;
}

static int slower_first(const void *a, const void *b, void *ctx)
{
    const jit_kernel *k = ctx;
    double ta = k[*(const int *)a].total_ms, tb = k[*(const int *)b].total_ms;
    return (ta < tb) - (ta > tb);
}

void jg_program_profile_dump(const jg_program *p, FILE *out)
{
    if (!p || !out || !p->jit)
        return;
    const jit_program *j = p->jit;
    int *order = malloc(((size_t)j->n_kernels + 1) * sizeof *order);
    if (!order)
        return;
    double total = 0;
    for (int i = 0; i < j->n_kernels; i++) {
        order[i] = i;
        total += j->kernels[i].total_ms;
    }
    /* insertion sort: qsort has no context argument in C11 */
    for (int i = 1; i < j->n_kernels; i++)
        for (int k = i; k > 0 && slower_first(&order[k - 1], &order[k], j->kernels) > 0; k--) {
            int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    char buf[96];
    fprintf(out, "%-7s %-12s %-22s %10s %8s %6s\n", "kernel", "kind", "writes", "us/run", "runs",
            "share");
    static const char *const kinds[] = { "elementwise", "reduce", "matmul", "opaque", "multi" };
    for (int r = 0; r < j->n_kernels; r++) {
        const jit_kernel *k = &j->kernels[order[r]];
        const fuse_group *grp = &j->fus.groups[k->group];
        fprintf(out, "%-7d %-12s %-22s %10.2f %8lld %5.1f%%\n", order[r], kinds[grp->kind],
                shape_str(grp->root->shape, buf, sizeof buf),
                k->runs ? 1e3 * k->total_ms / (double)k->runs : 0.0, (long long)k->runs,
                total > 0 ? 100 * k->total_ms / total : 0.0);
    }
    free(order);
}
