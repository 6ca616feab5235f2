/* The JIT executor's side of a program (jit_program.c). */
#ifndef JG_JIT_JIT_PROGRAM_H
#define JG_JIT_JIT_PROGRAM_H

#include "graph/passes/fuse.h"
#include "graph/passes/pass.h"
#include "jit/custom_call.h"
#include "jit/kernel.h"
#include "jit/lower.h"
#include "jit/pool.h"
#include "jit/program.h"

typedef struct jit_kernel {
    jit_kernel_fn fn;
    void **bufs;          /* the kernel's own slot table (see number_slots) */
    custom_call *call;    /* a custom op: a libffi call instead of fn, on the calling thread */
    int group;            /* its fused group */
    int64_t outer, align; /* the range the pool splits, and its granularity */
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
                             to directly (see plan_in_place_updates), or NULL */
    int n_in_place;
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

HIDDEN jg_status jit_program_compile(jg_program *p, const jg_opts *o, char *err, size_t size);
HIDDEN jg_status jit_program_run(jg_program *p, char *err, size_t size);
/* Copies user node n's value (an output) into out, in n's dtype. */
HIDDEN void jit_program_read(const jg_program *p, const jg_node *n, void *out);
HIDDEN void jit_program_free(jit_program *j);

#endif
