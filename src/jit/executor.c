/* The JIT executor: compiles a program's plan into kernels and runs them.
 *
 *     user graph ─lower─▶ program graph ─passes, fuse─▶ groups ─plan─▶ buffer slots (arena
 *     offsets by liveness, buffers.c) ─emit─▶ one LLVM function per group (kernels.c)
 *     ─compile─▶ kernels, run in order over the thread pool
 *
 * A run allocates nothing: every buffer is planned at compile time into one arena. Inputs,
 * parameters and constants are read where they live (the bound input copies, the parameter
 * store); updates are copied into the store after all kernels have run. */
#include "jit/executor.h"

#include "compiler/passes.h"
#include "jit/denormals.h"

#include <stdlib.h>
#include <string.h>

/* The JIT's own passes are recorded like the graph passes: started here, ended below. */
static pass_record *jit_record(jit_program *j, const char *name, bool on)
{
    pass_record *r = &j->passes[j->n_passes < PASS_MAX ? j->n_passes++ : PASS_MAX - 1];
    *r = (pass_record){ .name = name, .ran = on, .nodes_before = j->low.g ? j->low.g->n_nodes : 0,
                        .ms = jit_now_ms() };
    return r;
}

static void jit_record_end(pass_record *r, int rewrites)
{
    r->ms = r->ran ? jit_now_ms() - r->ms : 0;
    r->nodes_after = r->nodes_before;
    r->rewrites = r->ran ? rewrites : 0;
    r->changed |= r->ran && rewrites > 0;
}

/* The graph passes over the lowered graph (src/compiler/pipeline.c). roots[] (user nodes:
 * outputs, then update values) become nodes of the final program graph; update targets are
 * kept alive so the in-place planner can find them. */
static jg_status run_graph_passes(jit_program *j, const exec_plan *p, const jg_opts *o,
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

/* The fewest outer units a chunk of kernel k must carry to be worth a thread: ~16k elements
 * of work, an element of a kernel of many ops (an LSTM cell's backward) worth several.
 * Fixed at compile time. */
static int64_t min_chunk_of(const jit_program *j, const jit_kernel *k)
{
    const fuse_group *grp = &j->fus.groups[k->group];
    const jg_node *root = grp->root;
    int64_t work = grp->kind == GROUP_REDUCE ? jg_shape_numel(root->in[0]->shape)
                                             : jg_shape_numel(root->shape);
    if (grp->kind == GROUP_MULTI && k->finish) /* a reducing multi kernel's space */
        for (int q = 0; q < j->fus.n_groups; q++)
            if (jit_exec_of(j, q) == k->group && j->fus.groups[q].root->n_in)
                work = jg_shape_numel(j->fus.groups[q].root->in[0]->shape);
    work *= k->ops > 4 ? k->ops / 4 : 1;
    int64_t per_unit = k->outer ? work / k->outer : 1;
    if (grp->kind == GROUP_MATMUL)
        per_unit = 1 << 14;
    return per_unit >= (1 << 14) ? 1 : (1 << 14) / (per_unit ? per_unit : 1);
}

jg_status jit_program_compile(exec_plan *p, const jg_opts *o, jit_program **out, char *err,
                              size_t size)
{
    jit_program *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    *out = j; /* the caller frees it, also after a failure */
    double t0 = jit_now_ms();
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
    bool gather = pass_enabled(o->passes_off, "gather");
    if (st == JG_OK && pass_fuse(j->low.g, roots, n_roots, fuse, gather, &j->fus) != JG_OK) {
        snprintf(err, size, "out of memory");
        st = JG_ERR_NOMEM;
    }
    jit_record_end(r, j->fus.n_groups);
    r = jit_record(j, "gather", fuse && gather);
    int gathered = 0;
    for (int id = 0; st == JG_OK && r->ran && id < j->low.g->n_nodes; id++)
        gathered += j->low.g->nodes[id]->op == JG_OP_TAKE && j->fus.role[id] == ROLE_INLINE;
    jit_record_end(r, gathered);
    r = jit_record(j, "siblings", fuse && pass_enabled(o->passes_off, "siblings"));
    if (st == JG_OK && r->ran)
        r->changed = pass_fuse_siblings(j->low.g, &j->fus);
    jit_record_end(r, 0);
    j->timing.passes_ms = jit_now_ms() - t0;
    if (st == JG_OK)
        st = jit_assign_slots(j, p);
    if (st == JG_OK && !(j->in_place = calloc((size_t)j->low.g->n_nodes + 1, sizeof *j->in_place)))
        st = JG_ERR_NOMEM;
    r = jit_record(j, "inplace", pass_enabled(o->passes_off, "inplace"));
    if (st == JG_OK && r->ran)
        jit_plan_in_place(j, p);
    jit_record_end(r, j->n_in_place);
    size_t n_nodes = (size_t)j->low.g->n_nodes + 1;
    if (st == JG_OK && (!(j->piece_of = calloc(n_nodes, sizeof *j->piece_of)) ||
                        !(j->piece_offset = calloc(n_nodes, sizeof *j->piece_offset)) ||
                        !(j->placed_concat = calloc((size_t)j->fus.n_groups + 1,
                                                    sizeof *j->placed_concat))))
        st = JG_ERR_NOMEM;
    r = jit_record(j, "concat", pass_enabled(o->passes_off, "concat"));
    int placed = st == JG_OK && r->ran ? jit_plan_concats(j) : 0;
    r->changed = placed > 0;
    jit_record_end(r, placed);
    if (st == JG_OK)
        st = jit_plan_arena(j, roots, n_roots);
    free(roots);
    if (st == JG_ERR_NOMEM)
        snprintf(err, size, "out of memory");
    if (st != JG_OK)
        return st;

    const char *cache = o->cache_dir ? o->cache_dir : getenv("JITGRAD_CACHE_DIR");
    jit_target t = { .cpu = o->cpu, .features = o->cpu_features, .opt_level = o->opt_level,
                     .vector_bits = o->vector_bits, .cache_dir = cache && *cache ? cache : NULL,
                     .fresh = o->fresh_compile };
    if (!(j->session = jit_session_new(&t, err, size)))
        return strncmp(err, "opts.", 5) == 0 ? JG_ERR_ARG : JG_ERR_STATE; /* a name LLVM
                                                                                lacks */
    int threads = o->num_threads > 0 ? o->num_threads : jit_pool_default_threads();
    st = jit_compile_kernels(j, o->keep_text, threads, err, size); /* on as many threads */
    if (st != JG_OK)
        return st;
    for (int i = 0; i < j->n_kernels; i++)
        j->kernels[i].min_chunk = min_chunk_of(j, &j->kernels[i]);
    j->flush_denormals = o->flush_denormals;
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
        const jg_node *v = jit_storage_of(j, j->low.map[p->updates[u].value->id]);
        if (v->op == JG_OP_PARAM && v->param != p->updates[u].param->param &&
            !(j->stage[u] = malloc(jit_node_bytes(v))))
            break;
    }
    j->n_outputs = p->n_outputs;
    j->snap = calloc((size_t)p->n_outputs + 1, sizeof *j->snap);
    if (!j->snap) {
        snprintf(err, size, "out of memory");
        return JG_ERR_NOMEM;
    }
    for (int i = 0; i < p->n_outputs && p->n_updates; i++) {
        const jg_node *v = jit_storage_of(j, j->low.map[p->outputs[i]->id]);
        if (v->op == JG_OP_PARAM && !(j->snap[i] = malloc(jit_node_bytes(v)))) {
            snprintf(err, size, "out of memory");
            return JG_ERR_NOMEM;
        }
    }
    j->timing.total_ms = jit_now_ms() - t0;
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
    free(j->internal_part);
    free(j->piece_of);
    free(j->piece_offset);
    free(j->placed_concat);
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
        if (jit_exec_of(j, q) != k->group || jit_internal_part(j, q))
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
static const void *update_source(const jit_program *j, const exec_plan *p, int u)
{
    return j->bufs[j->slot_of[j->low.map[p->updates[u].value->id]->id]];
}

/* The message of a kernel that found an index out of range at flat position pos. */
static void range_message(const jit_program *j, const jg_node *n, int64_t pos, char *err,
                          size_t size)
{
    int which = n->op == JG_OP_ONE_HOT ? 0 : 1;
    const int32_t *idx = j->bufs[j->slot_of[n->in[which]->id]];
    long long v = idx[pos];
    char origin[EXEC_ORIGIN_SIZE];
    exec_node_origin(n, origin, sizeof origin);
    if (n->op == JG_OP_CROSS_ENTROPY)
        snprintf(err, size, "%s: label %lld out of range [0, %lld) at row %lld", origin, v,
                 (long long)n->in[0]->shape.dim[1], (long long)pos);
    else if (n->op == JG_OP_ONE_HOT)
        snprintf(err, size, "%s: index %lld out of range [0, %lld) on axis %d", origin, v,
                 (long long)n->attr.count, n->shape.ndim - 1);
    else
        snprintf(err, size, "%s: index %lld out of range [0, %lld) on axis %d", origin, v,
                 (long long)(n->op == JG_OP_TAKE ? n->in[0]->shape.dim[n->attr.axis]
                                                 : n->attr.count), n->attr.axis);
}

jg_status jit_program_run(exec_plan *p, jit_program *j, char *err, size_t size)
{
    j->step = p->step;
    for (int i = 0; i < j->n_kernels; i++) {
        jit_kernel *k = &j->kernels[i];
        const jg_node *root = j->fus.groups[k->group].root;
        if (k->call) {
            double t0 = j->profile ? jit_now_ms() : 0;
            custom_call_run(k->call, j->bufs);
            if (j->profile) {
                k->total_ms += jit_now_ms() - t0;
                k->runs++;
            }
            continue;
        }
        run_ctx c = { .j = j, .k = k };
        double t0 = j->profile ? jit_now_ms() : 0;
        jit_pool_run(j->pool, k->outer, k->align, k->min_chunk, run_chunk, &c);
        if (k->finish) { /* a multi-output kernel combines its partial rows */
            unsigned fp = denormals_flush(j->flush_denormals);
            k->fn(k->bufs, -1, -1, j->scratch);
            denormals_restore(j->flush_denormals, fp);
        }
        if (j->profile) {
            k->total_ms += jit_now_ms() - t0;
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
            jit_program_read(p, j, p->outputs[i], j->snap[i]);
    /* Updates take effect together, as in the reference: values that live in a parameter
     * (P <- Q while Q <- P) are staged first, then every value goes into the store. */
    for (int u = 0; u < p->n_updates; u++)
        if (j->stage[u])
            memcpy(j->stage[u], update_source(j, p, u), jit_node_bytes(p->updates[u].param));
    for (int u = 0; u < p->n_updates; u++) {
        void *dst = p->graph->params[p->updates[u].param->param].data;
        const void *src = j->stage[u] ? j->stage[u] : update_source(j, p, u);
        if (dst != src)
            memcpy(dst, src, jit_node_bytes(p->updates[u].param));
    }
    return JG_OK;
}

void jit_program_read(const exec_plan *p, const jit_program *j, const jg_node *n, void *out)
{
    const void *src = j->bufs[j->slot_of[j->low.map[n->id]->id]];
    for (int i = 0; i < p->n_outputs && p->ran; i++)
        if (p->outputs[i] == n && j->snap[i])
            src = j->snap[i];
    memcpy(out, src, jit_node_bytes(n));
}

const char *jit_program_warnings(const jit_program *j, int *count)
{
    *count = 0;
    return j && j->session ? jit_session_warnings(j->session, count) : "";
}
