/* The LLVM side of the JIT: a session owns an ORC LLJIT, a target machine for the host (or a
 * chosen CPU), and a cache of compiled kernels keyed by a hash of their IR. Kernels are built
 * as LLVM IR in a jit_module, then compiled (the disk cache's trust model: session.c):
 *
 *     IR (jit_module) ─▶ verify ─▶ LLVMRunPasses(default<O3>) ─▶ object code (our target
 *     machine) ─▶ [disk cache] ─▶ LLJIT AddObjectFile ─▶ lookup ─▶ function pointers
 *
 * The caches and the JIT are used under the session's lock (lookups as kernels are added,
 * linking after a batch's parallel code generation), so sessions may be used from several
 * threads; each program has its own session, so two batches never race to link one kernel.
 * Compiled code is called from any thread. */
#ifndef JG_JIT_SESSION_H
#define JG_JIT_SESSION_H

#include "graph/graph.h"

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

typedef struct jit_target {
    const char *cpu;      /* NULL: the host's */
    const char *features; /* NULL: the host's; e.g. "-avx512f" to stay on AVX2 */
    int opt_level;        /* 1..3: default<Ox> and codegen level; 0: KERNEL_PIPELINE
                             (session.c) and O3 codegen; -1: O0 */
    int vector_bits;      /* 0: widest the features allow; 512, 256, 128, or 32 (scalar) */
    const char *cache_dir; /* NULL: no disk cache; used only when trusted (session.c) */
    bool fresh;           /* without a disk cache, do not use the process's (object_cache.h) */
} jit_target;

typedef struct jit_session jit_session;

/* Creates a session; NULL on failure with the reason in err, which starts "opts.cpu" or
 * "opts.cpu_features" when LLVM does not know a name given in t. */
HIDDEN jit_session *jit_session_new(const jit_target *t, char *err, size_t size);
HIDDEN void jit_session_free(jit_session *s);
/* Bits in the SIMD registers the kernels use (512 with AVX-512, 256 with AVX2, ...). */
HIDDEN int jit_vector_bits(const jit_session *s);
HIDDEN const char *jit_cpu_name(const jit_session *s);
/* What the session had to warn about (an untrusted cache directory, a refused cache entry):
 * whole "warning: ...\n" lines, and their count in *count. */
HIDDEN const char *jit_session_warnings(const jit_session *s, int *count);

/* One compilation unit under construction. */
typedef struct jit_module {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
} jit_module;

HIDDEN jg_status jit_module_new(jit_session *s, jit_module *m, const char *name);
HIDDEN void jit_module_dispose(jit_module *m);

/* What a compilation cost and produced (times in milliseconds). */
typedef struct jit_compile_info {
    double optimise_ms, codegen_ms;
    bool cache_hit;        /* in memory or on disk */
    bool disk_hit;
    char *ir, *asm_text;   /* malloc'd when requested, else NULL */
} jit_compile_info;

/* Compiles the module's function `fn` (it is renamed after the content hash so identical
 * kernels share code) and returns its address. Consumes the module. want_text: keep the
 * optimised IR and the assembly in info. A batch of one (below). */
HIDDEN jg_status jit_compile(jit_session *s, jit_module *m, LLVMValueRef fn, bool want_text,
                             void **addr, jit_compile_info *info, char *err, size_t size);

/* A program's kernels compiled together: jit_batch_add hashes each module and looks it up
 * (the session's memory cache, an identical kernel added before, the disk cache), freeing it
 * at once when found; jit_batch_run optimises and generates code for the rest on up to
 * `threads` threads, each with a target machine of its own (LLVM contexts are per module),
 * then links them into the session's JIT one at a time (ORC's lookups are not safe from two
 * threads). Results are read by ticket after the run. */
typedef struct jit_batch jit_batch;

HIDDEN jit_batch *jit_batch_new(jit_session *s, int threads);
/* Adds the module's function (consumes the module); *ticket names its result. Fails only
 * when out of memory (the module is freed then too). */
HIDDEN jg_status jit_batch_add(jit_batch *b, jit_module *m, LLVMValueRef fn, bool want_text,
                               int *ticket, char *err, size_t size);
/* Compiles and links what the lookups did not find. Returns the first failure in the order
 * of the adds, with its message. */
HIDDEN jg_status jit_batch_run(jit_batch *b, char *err, size_t size);
/* After a successful run: the kernel's address and what it cost (info's texts now belong to
 * the caller). */
HIDDEN void *jit_batch_result(jit_batch *b, int ticket, jit_compile_info *info);
HIDDEN void jit_batch_free(jit_batch *b);

#endif
