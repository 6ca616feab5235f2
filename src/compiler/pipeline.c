/* The pass pipeline: the list of passes a program goes through, in order, with the programs
 * each applies to. Graph passes rewrite the program graph; the JIT's passes (fuse, siblings,
 * inplace) decide kernels and buffers afterwards (src/jit/executor.c) and l2_decay rewrites
 * the training step as jg_compile_train builds it (src/train/train.c); they are listed here so
 * every switch and report has one home. Any pass named in jg_opts.passes_off is skipped. */
#include "compiler/pass.h"
#include "compiler/passes.h"
#include "util/atomic.h"

#include <time.h>

typedef enum pass_applies { FOR_ALL, FOR_TRAIN, FOR_EVAL } pass_applies;

typedef struct pass_def {
    const char *name;
    bool (*run)(pass_ctx *c); /* NULL: applied outside the graph pipeline */
    pass_applies applies;
} pass_def;

static const pass_def PIPELINE[] = {
    { "l2_decay",    NULL,             FOR_TRAIN }, /* train.c: penalty -> update term */
    { "simplify",    pass_simplify,    FOR_ALL },
    { "constfold",   pass_constfold,   FOR_ALL },
    { "cse",         pass_cse,         FOR_ALL },
    { "unslice_sum", pass_unslice_sum, FOR_ALL }, /* sliced reads' gradients: one concat */
    { "matmul_sum",  pass_matmul_sum,  FOR_ALL }, /* a sum of GEMMs: one GEMM */
    { "conv_dgrad",  pass_conv_dgrad,  FOR_ALL }, /* col2im read backwards: a gathering GEMM */
    { "bn_fold",     pass_bn_fold,     FOR_EVAL },
    { "linear_fold", pass_linear_fold, FOR_EVAL },
    { "bn_relu",     pass_bn_relu,     FOR_TRAIN }, /* one-pass batch statistics */
    { "epilogue",    pass_epilogue,    FOR_ALL },   /* pointwise ops into the GEMM store */
    { "remat",       pass_remat,       FOR_ALL },   /* shared views inline in each reader */
    { "dce",         pass_dce,         FOR_ALL },
    { "fuse",        NULL,             FOR_ALL }, /* jit/executor.c: kernels */
    { "gather",      NULL,             FOR_ALL }, /* GEMMs gather im2col operands */
    { "siblings",    NULL,             FOR_ALL }, /* multi-output kernels */
    { "inplace",     NULL,             FOR_ALL }, /* updates written into the store */
    { "concat",      NULL,             FOR_ALL }, /* pieces written into their concat */
};
enum { N_PASSES = sizeof PIPELINE / sizeof *PIPELINE };

const char *pass_name(int i) { return i >= 0 && i < N_PASSES ? PIPELINE[i].name : NULL; }

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

void pass_graph_dot(const jg_graph *g, FILE *out)
{
    char buf[96];
    fprintf(out, "digraph program {\n  node [shape=box, fontname=\"monospace\"];\n");
    for (int id = 0; id < g->n_nodes; id++) {
        const jg_node *n = g->nodes[id];
        fprintf(out, "  n%d [label=\"%%%d %s%s%s\\n%s%s\"];\n", id, id, graph_op_name(n->op),
                n->name ? " " : "", n->name ? n->name : "", jg_dtype_str(n->dtype),
                FMT_SHAPE(buf, n->shape));
        for (int k = 0; k < n->n_in; k++)
            fprintf(out, "  n%d -> n%d;\n", n->in[k]->id, id);
    }
    fprintf(out, "}\n");
}

/* Writes dir/NN-name.txt and .dot (crash-safe, like every file the library writes). */
static bool dump(pass_ctx *c, const char *dir, int index, const char *name)
{
    for (int dot = 0; dot < 2; dot++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%02d-%s.%s", dir, index, name, dot ? "dot" : "txt");
        atomic_file a;
        if (!atomic_file_begin(&a, path, c->errmsg, sizeof c->errmsg))
            goto failed;
        if (dot)
            pass_graph_dot(c->g, a.f);
        else
            jg_graph_dump(c->g, a.f);
        if (!atomic_file_commit(&a, c->errmsg, sizeof c->errmsg))
            goto failed;
    }
    return true;
failed:
    c->status = JG_ERR_IO;
    return false;
}

jg_status pass_pipeline_run(pass_ctx *c, const char *passes_off, const char *dump_dir,
                            pass_record *rec, int *n_rec)
{
    *n_rec = 0;
    if (dump_dir && !dump(c, dump_dir, 0, "lowered"))
        return c->status;
    for (int i = 0; i < N_PASSES; i++) {
        const pass_def *p = &PIPELINE[i];
        if (!p->run || (p->applies == FOR_TRAIN && !c->train) ||
            (p->applies == FOR_EVAL && c->train))
            continue;
        pass_record *r = &rec[(*n_rec)++];
        *r = (pass_record){ .name = p->name, .nodes_before = c->g->n_nodes };
        if (pass_enabled(passes_off, p->name)) {
            double t0 = now_ms();
            c->rewrites = 0;
            r->ran = true;
            r->changed = p->run(c);
            r->rewrites = c->rewrites;
            r->ms = now_ms() - t0;
            if (c->status != JG_OK)
                return c->status;
        }
        r->nodes_after = c->g->n_nodes;
        if (dump_dir && !dump(c, dump_dir, *n_rec, p->name))
            return c->status;
    }
    return JG_OK;
}
