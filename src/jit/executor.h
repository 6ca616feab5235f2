/* The JIT executor (executor.c): a program's plan (exec/exec.h) lowered, optimised by the
 * compiler's passes, fused, planned into one arena and compiled by LLVM into kernels that
 * run over the thread pool. */
#ifndef JG_JIT_EXECUTOR_H
#define JG_JIT_EXECUTOR_H

#include "compiler/fuse.h"
#include "compiler/lower.h"
#include "compiler/pass.h"
#include "exec/exec.h"
#include "jit/custom_call.h"
#include "jit/kernel.h"
#include "jit/pool.h"

#include <time.h>

typedef struct jit_program jit_program;

typedef struct jit_kernel {
    jit_kernel_fn fn;
    void **bufs;          /* the kernel's own slot table (see number_slots) */
    custom_call *call;    /* a custom op: a libffi call instead of fn, on the calling thread */
    int group;            /* its fused group */
    int ticket;           /* its result in the compile batch (kernels.c) */
    int64_t outer, align; /* the range the pool splits, and its granularity */
    int64_t ops;          /* loop kernels: arithmetic ops per element, at least 1 */
    int64_t min_chunk;    /* the fewest outer units worth a thread (min_chunk_of) */
    size_t scratch;       /* per-thread scratch bytes */
    bool finish;          /* call once more with begin < 0 after the parallel part */
    void **partials;      /* multi-output kernels: partial rows we own */
    int n_partials;
    char *ir, *asm_text;  /* kept when jg_opts.keep_text */
    double total_ms;      /* profile: time in this kernel over `runs` runs */
    int64_t runs;
} jit_kernel;

typedef struct jit_timing {
    double passes_ms, build_ms, optimise_ms, codegen_ms, total_ms;
    int cache_hits;
} jit_timing;

struct jit_program {
    lowered low;          /* the program graph */
    pass_record passes[PASS_MAX]; /* what each graph pass did */
    int n_passes;
    fusion fus;
    jit_session *session;
    int *slot_of;         /* program-graph node id -> buffer slot, or -1 */
    void **bufs;          /* slot -> base pointer */
    int n_slots;
    int *g2l, *kslot;     /* while compiling a kernel: global slot -> local, node -> local */
    void **local_bufs;
    int n_local;
    int step_slot;        /* holds `step`: random nodes read the run step from it */
    uint64_t step;
    void **consts;        /* by node id: converted constants we own */
    void **in_place;      /* by node id: the parameter's memory an update value is written
                             to directly (see jit_plan_in_place), or NULL */
    int n_in_place;
    bool *internal_part;  /* by group: see jit_internal_part (jit_assign_slots) */
    /* Concats written in place (concat_place.c): by node id, the concat a piece is written
     * into and where (elements), or NULL; by group, whether a concat has no kernel. */
    const jg_node **piece_of;
    int64_t *piece_offset;
    bool *placed_concat;
    char *arena;          /* every intermediate, planned by liveness */
    size_t arena_bytes;
    char *scratch;        /* n_threads * scratch_per_thread */
    size_t scratch_per_thread;
    jit_kernel *kernels;
    int n_kernels;
    jit_pool *pool;       /* NULL: one thread */
    int n_threads;
    int n_outputs;
    void **stage;         /* by update: a copy of a value that lives in a parameter, taken
                             before any update is written (updates take effect together) */
    int n_updates;
    void **snap;          /* by output: a copy taken before the updates, for outputs that
                             are parameters (which the updates overwrite), else NULL */
    bool profile;
    bool flush_denormals; /* jg_opts.flush_denormals: kernels run with FTZ and DAZ */
    jit_timing timing;
};

/* ---- between the executor's files */

static inline double jit_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

/* buffers.c: the bytes of n's value; the node whose buffer holds n's bytes (n itself, or what
 * a reshape aliases); the kernel that computes group gi (its own, or its multi-output
 * leader's); whether gi is a part of a multi-output kernel that only that kernel reads, and no
 * output, so never stored. */
HIDDEN size_t jit_node_bytes(const jg_node *n);
HIDDEN const jg_node *jit_storage_of(const jit_program *j, const jg_node *n);
HIDDEN int jit_exec_of(const jit_program *j, int gi);
HIDDEN bool jit_internal_part(const jit_program *j, int gi);
/* Slots: one per leaf and per group root; reshapes share their base's slot. */
HIDDEN jg_status jit_assign_slots(jit_program *j, exec_plan *p);
/* Updates written straight into the parameter store where nothing needs the old value. */
HIDDEN void jit_plan_in_place(jit_program *j, exec_plan *p);
/* concat_place.c: concats whose pieces their kernels write in place; returns how many. */
HIDDEN int jit_plan_concats(jit_program *j);
/* Arena offsets by liveness; keep[] live to the end. */
HIDDEN jg_status jit_plan_arena(jit_program *j, jg_node *const *keep, int n_keep);

/* kernels.c: every group's kernel emitted, then compiled on `threads` threads (IR and
 * assembly kept with keep_text). */
HIDDEN jg_status jit_compile_kernels(jit_program *j, bool keep_text, int threads, char *err,
                                     size_t size);

/* ---- the executor (executor.c) */

/* Compiles the plan; *out receives the executor's state, to free with jit_program_free even
 * when compiling fails. */
HIDDEN jg_status jit_program_compile(exec_plan *p, const jg_opts *o, jit_program **out,
                                     char *err, size_t size);
HIDDEN jg_status jit_program_run(exec_plan *p, jit_program *j, char *err, size_t size);
/* Copies user node n's value (an output) into out, in n's dtype. */
HIDDEN void jit_program_read(const exec_plan *p, const jit_program *j, const jg_node *n,
                             void *out);
HIDDEN void jit_program_free(jit_program *j);
/* What compiling had to warn about (the kernel cache): whole lines; their count in *count. */
HIDDEN const char *jit_program_warnings(const jit_program *j, int *count);

#endif
