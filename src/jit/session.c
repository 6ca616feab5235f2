/* LLVM session: target machine, ORC LLJIT, compilation to object code, and the kernel cache
 * (in memory always, on disk when a directory is given). See session.h for the pipeline.
 * Every LLVMErrorRef is consumed; ownership of a buffer or module passes only where the LLVM-C
 * documentation says it does. */
#include "jit/session.h"
#include "util/atomic.h"

#include <errno.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <llvm/Config/llvm-config.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct cache_entry {
    uint64_t key;
    void *addr;
} cache_entry;

struct jit_session {
    LLVMOrcLLJITRef jit;
    LLVMTargetMachineRef tm; /* ours: passes and object emission (LLJIT owns another) */
    char *cpu, *features;
    int opt_level, vector_bits;
    char *cache_dir;
    pthread_mutex_t lock;
    cache_entry *cache;
    int n_cache, cap_cache;
};

/* The disk cache file: this header, then the object file's bytes. */
typedef struct disk_header {
    char magic[8]; /* "JGOBJ1\0\0" */
    uint64_t key;
    uint64_t size;
} disk_header;

static double ms_since(struct timespec t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return 1e3 * (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_nsec - t0.tv_nsec);
}

static void take_error(LLVMErrorRef e, const char *what, char *err, size_t size)
{
    char *msg = LLVMGetErrorMessage(e);
    snprintf(err, size, "%s: %s", what, msg);
    LLVMDisposeErrorMessage(msg);
}

static char *dup_or_null(const char *s)
{
    if (!s)
        return NULL;
    char *d = malloc(strlen(s) + 1);
    if (d)
        strcpy(d, s);
    return d;
}

static int widest_vector(const char *features)
{
    if (strstr(features, "+avx512f"))
        return 512;
    if (strstr(features, "+avx2") || strstr(features, "+avx,"))
        return 256;
    return 128;
}

static LLVMTargetMachineRef make_tm(const jit_session *s, char *err, size_t size)
{
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetRef target;
    char *msg = NULL;
    LLVMTargetMachineRef tm = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
        snprintf(err, size, "LLVM target for %s: %s", triple, msg);
        LLVMDisposeMessage(msg);
    } else {
        LLVMCodeGenOptLevel level = s->opt_level >= 3   ? LLVMCodeGenLevelAggressive
                                    : s->opt_level == 2 ? LLVMCodeGenLevelDefault
                                    : s->opt_level == 1 ? LLVMCodeGenLevelLess
                                                        : LLVMCodeGenLevelNone;
        tm = LLVMCreateTargetMachine(target, triple, s->cpu, s->features, level,
                                     LLVMRelocDefault, LLVMCodeModelJITDefault);
        if (!tm)
            snprintf(err, size, "LLVM could not create a target machine for %s", s->cpu);
    }
    LLVMDisposeMessage(triple);
    return tm;
}

jit_session *jit_session_new(const jit_target *t, char *err, size_t size)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    jit_session *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    char *host_cpu = LLVMGetHostCPUName(), *host_features = LLVMGetHostCPUFeatures();
    s->cpu = dup_or_null(t && t->cpu ? t->cpu : host_cpu);
    /* An override of features adds to the host's ("-avx512f" turns AVX-512 off). */
    size_t n = strlen(host_features) + (t && t->features ? strlen(t->features) : 0) + 2;
    s->features = malloc(n);
    if (s->features)
        snprintf(s->features, n, "%s%s%s", host_features, t && t->features ? "," : "",
                 t && t->features ? t->features : "");
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    int level = t ? t->opt_level : 0;
    s->opt_level = level == 0 ? 3 : level < 0 ? 0 : level > 3 ? 3 : level;
    s->cache_dir = dup_or_null(t ? t->cache_dir : NULL);
    if (!s->cpu || !s->features)
        goto nomem;
    int widest = widest_vector(s->features);
    if (t && t->features && strstr(t->features, "-avx512f"))
        widest = strstr(s->features, "+avx2") ? 256 : 128;
    s->vector_bits = t && t->vector_bits ? (t->vector_bits < widest ? t->vector_bits : widest)
                                         : widest;
    if (!(s->tm = make_tm(s, err, size)))
        goto fail;
    /* The LLJIT gets its own target machine (it takes ownership of it). */
    LLVMTargetMachineRef jit_tm = make_tm(s, err, size);
    if (!jit_tm)
        goto fail;
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(
        builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jit_tm));
    LLVMErrorRef e = LLVMOrcCreateLLJIT(&s->jit, builder);
    if (e) {
        take_error(e, "LLVM LLJIT", err, size);
        s->jit = NULL;
        goto fail;
    }
    /* Kernels may call libm (expf, ...) when a vector intrinsic has no inline expansion. */
    LLVMOrcDefinitionGeneratorRef gen;
    e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
        &gen, LLVMOrcLLJITGetGlobalPrefix(s->jit), NULL, NULL);
    if (e) {
        take_error(e, "LLVM process symbols", err, size);
        goto fail;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(s->jit), gen);
    return s;
nomem:
    snprintf(err, size, "out of memory");
fail:
    jit_session_free(s);
    return NULL;
}

void jit_session_free(jit_session *s)
{
    if (!s)
        return;
    if (s->jit) {
        LLVMErrorRef e = LLVMOrcDisposeLLJIT(s->jit);
        if (e)
            LLVMConsumeError(e);
    }
    if (s->tm)
        LLVMDisposeTargetMachine(s->tm);
    pthread_mutex_destroy(&s->lock);
    free(s->cpu);
    free(s->features);
    free(s->cache_dir);
    free(s->cache);
    free(s);
}

int jit_vector_bits(const jit_session *s) { return s->vector_bits; }
const char *jit_cpu_name(const jit_session *s) { return s->cpu; }

jg_status jit_module_new(jit_session *s, jit_module *m, const char *name)
{
    m->ctx = LLVMContextCreate();
    m->mod = LLVMModuleCreateWithNameInContext(name, m->ctx);
    m->b = LLVMCreateBuilderInContext(m->ctx);
    char *triple = LLVMGetTargetMachineTriple(s->tm);
    LLVMSetTarget(m->mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(s->tm);
    LLVMSetModuleDataLayout(m->mod, layout);
    LLVMDisposeTargetData(layout);
    return JG_OK;
}

void jit_module_dispose(jit_module *m)
{
    if (m->b)
        LLVMDisposeBuilder(m->b);
    if (m->mod)
        LLVMDisposeModule(m->mod);
    if (m->ctx)
        LLVMContextDispose(m->ctx);
    *m = (jit_module){ 0 };
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* The cache key: the unoptimised IR plus everything that changes the machine code. */
static uint64_t kernel_key(const jit_session *s, LLVMModuleRef mod)
{
    char *ir = LLVMPrintModuleToString(mod);
    char version[64];
    snprintf(version, sizeof version, "llvm %s O%d", LLVM_VERSION_STRING, s->opt_level);
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, ir);
    h = fnv1a(fnv1a(fnv1a(h, s->cpu), s->features), version);
    LLVMDisposeMessage(ir);
    return h;
}

static void *cache_find(const jit_session *s, uint64_t key)
{
    for (int i = 0; i < s->n_cache; i++)
        if (s->cache[i].key == key)
            return s->cache[i].addr;
    return NULL;
}

static void cache_add(jit_session *s, uint64_t key, void *addr)
{
    if (s->n_cache == s->cap_cache) {
        int cap = s->cap_cache ? 2 * s->cap_cache : 64;
        cache_entry *c = realloc(s->cache, (size_t)cap * sizeof *c);
        if (!c)
            return; /* the cache is an optimisation: forget the entry */
        s->cache = c;
        s->cap_cache = cap;
    }
    s->cache[s->n_cache++] = (cache_entry){ key, addr };
}

static void disk_path(const jit_session *s, uint64_t key, char *path, size_t size)
{
    snprintf(path, size, "%s/%016llx.jgo", s->cache_dir, (unsigned long long)key);
}

/* Reads a cached object; NULL (with a warning for a bad file) when absent or unusable. */
static LLVMMemoryBufferRef disk_load(const jit_session *s, uint64_t key)
{
    char path[1024];
    disk_path(s, key, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    disk_header h;
    LLVMMemoryBufferRef buf = NULL;
    char *data = NULL;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, "JGOBJ1", 7) != 0 || h.key != key ||
        h.size == 0 || h.size > ((uint64_t)1 << 30) || !(data = malloc(h.size)) ||
        fread(data, 1, h.size, f) != h.size || fgetc(f) != EOF) {
        fprintf(stderr, "jitgrad: warning: ignoring corrupt or foreign kernel cache file %s\n",
                path);
    } else {
        buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(data, h.size, "jitgrad-kernel");
    }
    free(data);
    fclose(f);
    return buf;
}

/* Through atomic_file: a reader never sees half a file; a failure just skips the cache. */
static void disk_store(const jit_session *s, uint64_t key, LLVMMemoryBufferRef obj)
{
    char path[1024];
    disk_path(s, key, path, sizeof path);
    mkdir(s->cache_dir, 0777); /* may exist already */
    atomic_file a;
    if (!atomic_file_begin(&a, path, NULL, 0))
        return;
    disk_header h = { .magic = "JGOBJ1", .key = key, .size = LLVMGetBufferSize(obj) };
    if (fwrite(&h, sizeof h, 1, a.f) != 1 ||
        fwrite(LLVMGetBufferStart(obj), 1, h.size, a.f) != h.size) {
        atomic_file_abort(&a);
        return;
    }
    atomic_file_commit(&a, NULL, 0);
}

static jg_status add_object(jit_session *s, LLVMMemoryBufferRef obj, const char *name,
                            void **addr, char *err, size_t size)
{
    LLVMErrorRef e = LLVMOrcLLJITAddObjectFile(s->jit, LLVMOrcLLJITGetMainJITDylib(s->jit), obj);
    if (e) {
        take_error(e, "LLVM add object", err, size);
        return JG_ERR_STATE;
    }
    LLVMOrcExecutorAddress a = 0;
    e = LLVMOrcLLJITLookup(s->jit, &a, name);
    if (e) {
        take_error(e, "LLVM lookup", err, size);
        return JG_ERR_STATE;
    }
    *addr = (void *)(uintptr_t)a;
    return JG_OK;
}

static char *emit_text(jit_session *s, LLVMModuleRef mod, LLVMCodeGenFileType kind)
{
    LLVMModuleRef copy = LLVMCloneModule(mod); /* emission modifies the module it is given */
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL, *text = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(s->tm, copy, kind, &msg, &buf)) {
        size_t n = LLVMGetBufferSize(buf);
        if ((text = malloc(n + 1))) {
            memcpy(text, LLVMGetBufferStart(buf), n);
            text[n] = '\0';
        }
        LLVMDisposeMemoryBuffer(buf);
    } else {
        LLVMDisposeMessage(msg);
    }
    LLVMDisposeModule(copy);
    return text;
}

static jg_status compile_locked(jit_session *s, jit_module *m, const char *name, uint64_t key,
                                bool want_text, void **addr, jit_compile_info *info,
                                char *err, size_t size)
{
    char *msg = NULL;
    if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
        snprintf(err, size, "internal: invalid kernel IR: %s", msg);
        LLVMDisposeMessage(msg);
        return JG_ERR_STATE;
    }
    LLVMDisposeMessage(msg);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", s->opt_level);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m->mod, pipeline, s->tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        take_error(e, "LLVM passes", err, size);
        return JG_ERR_STATE;
    }
    info->optimise_ms = ms_since(t0);
    if (want_text) {
        char *ir = LLVMPrintModuleToString(m->mod);
        info->ir = dup_or_null(ir);
        LLVMDisposeMessage(ir);
        info->asm_text = emit_text(s, m->mod, LLVMAssemblyFile);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LLVMMemoryBufferRef obj = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(s->tm, m->mod, LLVMObjectFile, &msg, &obj)) {
        snprintf(err, size, "LLVM code generation: %s", msg);
        LLVMDisposeMessage(msg);
        return JG_ERR_STATE;
    }
    if (s->cache_dir)
        disk_store(s, key, obj);
    jg_status st = add_object(s, obj, name, addr, err, size);
    info->codegen_ms = ms_since(t0);
    return st;
}

jg_status jit_compile(jit_session *s, jit_module *m, LLVMValueRef fn, bool want_text,
                      void **addr, jit_compile_info *info, char *err, size_t size)
{
    *info = (jit_compile_info){ 0 };
    uint64_t key = kernel_key(s, m->mod);
    char name[32];
    snprintf(name, sizeof name, "jg_%016llx", (unsigned long long)key);
    LLVMSetValueName2(fn, name, strlen(name));
    pthread_mutex_lock(&s->lock);
    jg_status st = JG_OK;
    if ((*addr = cache_find(s, key))) {
        info->cache_hit = true;
    } else {
        LLVMMemoryBufferRef obj = s->cache_dir && !want_text ? disk_load(s, key) : NULL;
        if (obj && add_object(s, obj, name, addr, err, size) == JG_OK) {
            info->cache_hit = info->disk_hit = true;
        } else {
            st = compile_locked(s, m, name, key, want_text, addr, info, err, size);
        }
        if (st == JG_OK)
            cache_add(s, key, *addr);
    }
    if (want_text && info->cache_hit && !info->ir) {
        /* A hit has no optimised text to show: show the unoptimised IR instead. */
        char *ir = LLVMPrintModuleToString(m->mod);
        info->ir = dup_or_null(ir);
        LLVMDisposeMessage(ir);
    }
    pthread_mutex_unlock(&s->lock);
    jit_module_dispose(m);
    return st;
}
