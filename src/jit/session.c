/* LLVM session: target machine, ORC LLJIT, compilation to object code, and the kernel cache
 * (in memory always, on disk when a directory is given). See session.h for the pipeline.
 * Every LLVMErrorRef is consumed; ownership of a buffer or module passes only where the LLVM-C
 * documentation says it does.
 *
 * The disk cache's trust model: a cached object is machine code that the process links and
 * calls, so the cache directory must be as trusted as the library itself (as with ccache or
 * JAX's cache). It is used only when it is a directory owned by the user and writable by
 * nobody else (created 0700), and an entry only when it is a regular file owned by the user.
 * Each entry carries the SHA-256 of its key material (the unoptimised IR, CPU, features, LLVM
 * version, optimisation level) and of its object bytes, both checked before linking, so a
 * damaged, truncated or foreign file is refused with a warning and the kernel recompiled
 * (and the entry replaced), never run. The digests detect accidents, not an attacker who can
 * write the directory: the ownership checks keep other users out. */
#include "jit/session.h"

#include "jit/cache_file.h"
#include "jit/object_cache.h"
#include "util/atomic.h"

#include <nettle/sha2.h>
#include <nettle/version.h>

#include <errno.h>
#include <fcntl.h>
#include <llvm-c/Analysis.h>
#include <llvm-c/BitWriter.h>
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
#include <unistd.h>

enum { KEY_SIZE = CACHE_KEY_SIZE, MAX_COMPILE_THREADS = 64 };

typedef struct cache_entry {
    uint8_t key[KEY_SIZE];
    void *addr;
} cache_entry;

/* The default optimisation passes. Kernels arrive vectorised, their loops written as they
 * should run, so LLVM's O3 spends most of its time (loop and SLP vectorisers, the inliner's
 * SCC walk) finding nothing: these passes clean up what emission leaves (allocas, repeated
 * address arithmetic, invariant loads, branches) and unroll short loops, in ~1/5 of O3's
 * time; compiles take ~25% less, steps the same (bench_fashion, all three models). */
#define KERNEL_PIPELINE                                                                   \
    "function(sroa,early-cse<memssa>,instcombine,simplifycfg,loop-mssa(licm),loop(indvars)," \
    "gvn,instcombine,loop-unroll<O3>,instcombine,simplifycfg,adce)"

struct jit_session {
    LLVMOrcLLJITRef jit;
    LLVMTargetMachineRef tm; /* ours: passes and object emission (LLJIT owns another) */
    char *cpu, *features;
    int opt_level, vector_bits; /* opt_level: the code generator's, 0..3 */
    char pipeline[192];         /* the optimisation passes (LLVMRunPasses' syntax) */
    char *cache_dir;      /* NULL: no disk cache (none given, or not trusted) */
    bool process_cache;   /* no disk cache: the process's object cache instead */
    pthread_mutex_t lock;
    cache_entry *cache;
    int n_cache, cap_cache;
    int renames;          /* kernels renamed after a cached object failed to link */
    char warnings[4096];  /* whole lines, for the program's warnings */
    int n_warnings;
};

static const char more_warnings[] = "warning: more kernel cache warnings than fit here\n";

static void session_warn(jit_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void session_warn(jit_session *s, const char *fmt, ...)
{
    s->n_warnings++;
    size_t len = strlen(s->warnings);
    if (len >= sizeof more_warnings - 1 &&
        strcmp(s->warnings + len - (sizeof more_warnings - 1), more_warnings) == 0)
        return; /* full already */
    /* room is kept for the line that says so */
    size_t room = sizeof s->warnings - len - (sizeof more_warnings - 1);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->warnings + len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room)
        memcpy(s->warnings + len, more_warnings, sizeof more_warnings);
}

const char *jit_session_warnings(const jit_session *s, int *count)
{
    *count = s->n_warnings;
    return s->warnings;
}

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

/* LLVM's target registry is process-wide and its initialisation is not thread-safe: two
 * threads compiling their first programs at once could spin in lookupTarget or register the
 * target twice. Once per process, then. */
static pthread_once_t llvm_initialised = PTHREAD_ONCE_INIT;

static void llvm_initialise(void)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
}

/* The cache directory, created 0700 when missing; NULL (with a warning) when it cannot be
 * created or is not trusted: not a directory, not the user's, or writable by others. */
static char *trusted_cache_dir(jit_session *s, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0 && errno == ENOENT && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        session_warn(s, "warning: kernel cache directory %.300s cannot be created (%s): "
                     "kernels are not cached\n", dir, strerror(errno));
        return NULL;
    }
    const char *why = NULL;
    if (stat(dir, &st) != 0)
        why = strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a directory";
    else if (st.st_uid != geteuid())
        why = "owned by another user";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        why = "writable by group or others (chmod 700 it)";
    if (why) {
        session_warn(s, "warning: kernel cache directory %.300s is not trusted (%s): kernels "
                     "are not cached\n", dir, why);
        return NULL;
    }
    return dup_or_null(dir);
}

/* LLVM-C cannot say whether it knows a CPU or feature name: a target machine made for an
 * unknown one prints "'x' is not a recognized processor for this target (ignoring
 * processor)" to stderr and carries on. So names the user gave are tried on a throwaway
 * target machine with stderr (a process-wide file, hence the one lock) sent to a temporary
 * file; LLVM's complaint becomes the error, and anything else written meanwhile (another
 * thread's output) is passed on to stderr. */
static pthread_mutex_t stderr_capture = PTHREAD_MUTEX_INITIALIZER;

static bool names_known(const jit_session *s, char *err, size_t size)
{
    pthread_mutex_lock(&stderr_capture);
    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = tmp ? dup(2) : -1;
    bool captured = saved >= 0 && dup2(fileno(tmp), 2) >= 0;
    char ignored[256];
    LLVMTargetMachineRef tm = make_tm(s, ignored, sizeof ignored);
    if (tm)
        LLVMDisposeTargetMachine(tm);
    fflush(stderr);
    if (captured)
        dup2(saved, 2);
    if (saved >= 0)
        close(saved);
    bool known = true;
    if (captured && fseek(tmp, 0, SEEK_SET) == 0) {
        char line[512];
        while (fgets(line, sizeof line, tmp)) {
            bool cpu = strstr(line, "is not a recognized processor") != NULL;
            if (!cpu && !strstr(line, "is not a recognized feature")) {
                fputs(line, stderr);
                continue;
            }
            if (known) {
                line[strcspn(line, "(\n")] = '\0'; /* without "(ignoring ...)" */
                snprintf(err, size, "opts.%s: LLVM: %s", cpu ? "cpu" : "cpu_features", line);
            }
            known = false;
        }
    }
    if (tmp)
        fclose(tmp);
    pthread_mutex_unlock(&stderr_capture);
    return known;
}

jit_session *jit_session_new(const jit_target *t, char *err, size_t size)
{
    pthread_once(&llvm_initialised, llvm_initialise);
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
    if (level == 0)
        snprintf(s->pipeline, sizeof s->pipeline, "%s", KERNEL_PIPELINE);
    else
        snprintf(s->pipeline, sizeof s->pipeline, "default<O%d>", s->opt_level);
    if (!s->cpu || !s->features)
        goto nomem;
    if (t && (t->cpu || t->features) && !names_known(s, err, size))
        goto fail;
    if (t && t->cache_dir)
        s->cache_dir = trusted_cache_dir(s, t->cache_dir);
    s->process_cache = !s->cache_dir && !(t && t->fresh);
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

/* The cache key: SHA-256 of the unoptimised IR plus everything that changes the machine
 * code. */
/* The module is hashed as bitcode, not as printed IR: printing is ~10x slower (every float
 * constant is printed in decimal through APFloat and parsed back to check it round-trips),
 * and was ~20% of an LSTM program's compile when its kernels came from a cache. */
static void kernel_key(const jit_session *s, LLVMModuleRef mod, uint8_t key[KEY_SIZE])
{
    LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(mod);
    char version[256];
    snprintf(version, sizeof version, "llvm %s O%d %s", LLVM_VERSION_STRING, s->opt_level,
             s->pipeline);
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, LLVMGetBufferSize(bc), (const uint8_t *)LLVMGetBufferStart(bc));
    const char *parts[] = { s->cpu, s->features, version };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        sha256_update(&c, strlen(parts[i]) + 1, (const uint8_t *)parts[i]); /* with the NUL */
    JG_SHA256_DIGEST(&c, key);
    LLVMDisposeMemoryBuffer(bc);
}

static void *cache_find(const jit_session *s, const uint8_t key[KEY_SIZE])
{
    for (int i = 0; i < s->n_cache; i++)
        if (memcmp(s->cache[i].key, key, KEY_SIZE) == 0)
            return s->cache[i].addr;
    return NULL;
}

static void cache_add(jit_session *s, const uint8_t key[KEY_SIZE], void *addr)
{
    if (s->n_cache == s->cap_cache) {
        int cap = s->cap_cache ? 2 * s->cap_cache : 64;
        cache_entry *c = realloc(s->cache, (size_t)cap * sizeof *c);
        if (!c)
            return; /* the cache is an optimisation: forget the entry */
        s->cache = c;
        s->cap_cache = cap;
    }
    memcpy(s->cache[s->n_cache].key, key, KEY_SIZE);
    s->cache[s->n_cache++].addr = addr;
}

/* The entry's file: the first 16 bytes of the key in hex. */
static void disk_path(const jit_session *s, const uint8_t key[KEY_SIZE], char *path,
                      size_t size)
{
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    snprintf(path, size, "%s/%s.jgo", s->cache_dir, hex);
}

/* Reads exactly n bytes; false on an error or a short file. */
static bool read_all(int fd, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

/* Reads a cached object; NULL when there is none, or (with a warning) when the file is not a
 * regular file of ours or fails cache_file_check: it is then recompiled and replaced. */
static LLVMMemoryBufferRef disk_load(jit_session *s, const uint8_t key[KEY_SIZE])
{
    char path[1024];
    disk_path(s, key, path, sizeof path);
    /* O_NONBLOCK: a FIFO or device must not block the open; O_NOFOLLOW: no symlinks */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return NULL;
    const char *why = NULL;
    struct stat st;
    unsigned char *data = NULL;
    const unsigned char *obj;
    size_t obj_size;
    LLVMMemoryBufferRef buf = NULL;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_uid != geteuid())
        why = "owned by another user";
    else if (st.st_mode & (S_IWGRP | S_IWOTH))
        why = "writable by group or others";
    else if ((uint64_t)st.st_size < sizeof(cache_file_header))
        why = "truncated header";
    else if ((uint64_t)st.st_size > sizeof(cache_file_header) + CACHE_MAX_OBJECT)
        why = "larger than any kernel";
    else if (!(data = malloc((size_t)st.st_size)))
        why = "out of memory";
    else if (!read_all(fd, data, (size_t)st.st_size))
        why = "read error or truncated";
    else if (!(why = cache_file_check(data, (size_t)st.st_size, key, &obj, &obj_size)))
        buf = LLVMCreateMemoryBufferWithMemoryRangeCopy((const char *)obj, obj_size,
                                                        "jitgrad-kernel");
    if (why)
        session_warn(s, "warning: ignoring kernel cache file %.300s: %s; recompiled\n", path,
                     why);
    free(data);
    if (fd >= 0)
        close(fd);
    return buf;
}

/* Through atomic_file: a reader never sees half a file; a failure just skips the cache. An
 * entry that was refused is replaced (the rename removes a FIFO or symlink of that name). */
static void disk_store(const jit_session *s, const uint8_t key[KEY_SIZE],
                       LLVMMemoryBufferRef obj)
{
    char path[1024];
    disk_path(s, key, path, sizeof path);
    atomic_file a;
    if (!atomic_file_begin(&a, path, NULL, 0))
        return;
    cache_file_header h = cache_file_header_for(key, LLVMGetBufferStart(obj),
                                                LLVMGetBufferSize(obj));
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

static char *emit_text(LLVMTargetMachineRef tm, LLVMModuleRef mod, LLVMCodeGenFileType kind)
{
    LLVMModuleRef copy = LLVMCloneModule(mod); /* emission modifies the module it is given */
    LLVMMemoryBufferRef buf = NULL;
    char *msg = NULL, *text = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, copy, kind, &msg, &buf)) {
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

/* ---- batches */

/* One added kernel. */
typedef struct batch_entry {
    uint8_t key[KEY_SIZE];
    char name[48];
    bool want_text, store;   /* store: write the object to the disk cache */
    int same_as;             /* an earlier entry compiling the same kernel, or -1 */
    bool pending;            /* to be compiled by the run */
    jit_module m;            /* pending: the module, until a worker consumes it */
    LLVMMemoryBufferRef obj; /* pending: the object code, until linked */
    void *addr;
    jit_compile_info info;
    jg_status st;
    char err[256];
} batch_entry;

struct jit_batch {
    jit_session *s;
    int threads;
    batch_entry *e;
    int n, cap;
    int next;                /* the next pending entry a worker takes (under lock) */
    pthread_mutex_t lock;
};

jit_batch *jit_batch_new(jit_session *s, int threads)
{
    jit_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->s = s;
    b->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

void jit_batch_free(jit_batch *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n; i++) {
        jit_module_dispose(&b->e[i].m);
        if (b->e[i].obj)
            LLVMDisposeMemoryBuffer(b->e[i].obj);
        free(b->e[i].info.ir);
        free(b->e[i].info.asm_text);
    }
    pthread_mutex_destroy(&b->lock);
    free(b->e);
    free(b);
}

/* The unoptimised IR as the text of a kernel found in a cache (nothing optimised to show). */
static void unoptimised_text(batch_entry *x, LLVMModuleRef mod)
{
    char *ir = LLVMPrintModuleToString(mod);
    x->info.ir = dup_or_null(ir);
    LLVMDisposeMessage(ir);
}

jg_status jit_batch_add(jit_batch *b, jit_module *m, LLVMValueRef fn, bool want_text,
                        int *ticket, char *err, size_t size)
{
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        batch_entry *e = realloc(b->e, (size_t)cap * sizeof *e);
        if (!e) {
            jit_module_dispose(m);
            snprintf(err, size, "out of memory");
            return JG_ERR_NOMEM;
        }
        b->e = e;
        b->cap = cap;
    }
    jit_session *s = b->s;
    batch_entry *x = &b->e[b->n];
    *x = (batch_entry){ .want_text = want_text, .store = true, .same_as = -1 };
    *ticket = b->n++;
    kernel_key(s, m->mod, x->key);
    snprintf(x->name, sizeof x->name, "jg_");
    for (int i = 0; i < 8; i++)
        snprintf(x->name + 3 + 2 * i, 3, "%02x", x->key[i]);
    LLVMSetValueName2(fn, x->name, strlen(x->name));
    for (int i = 0; i < b->n - 1; i++)
        if (b->e[i].same_as < 0 && b->e[i].pending && !memcmp(b->e[i].key, x->key, KEY_SIZE)) {
            x->same_as = i;
            x->info.cache_hit = true;
            break;
        }
    if (x->same_as < 0) {
        pthread_mutex_lock(&s->lock);
        if ((x->addr = cache_find(s, x->key))) {
            x->info.cache_hit = true;
        } else {
            /* the disk cache, or without one the process's (object_cache.h) */
            LLVMMemoryBufferRef obj = want_text          ? NULL
                                      : s->cache_dir     ? disk_load(s, x->key)
                                      : s->process_cache ? object_cache_find(x->key)
                                                         : NULL;
            char ignored[256];
            if (obj && add_object(s, obj, x->name, &x->addr, ignored, sizeof ignored) == JG_OK) {
                x->info.cache_hit = true;
                x->info.disk_hit = s->cache_dir != NULL;
                cache_add(s, x->key, x->addr);
            } else {
                if (obj) {
                    /* The object may be linked even though its lookup failed: compiling the
                     * same name again would define it twice, so this kernel gets a name of
                     * its own (and stays out of the caches, whose entries carry the usual
                     * name); its entry goes, and the next compile stores a good one. */
                    session_warn(s, "warning: cached kernel %s did not link (%.200s); "
                                 "recompiled and its entry removed\n", x->name, ignored);
                    if (s->cache_dir) {
                        char path[1024];
                        disk_path(s, x->key, path, sizeof path);
                        unlink(path);
                    } else {
                        object_cache_remove(x->key);
                    }
                    snprintf(x->name + strlen(x->name), sizeof x->name - strlen(x->name),
                             "_r%d", ++s->renames);
                    LLVMSetValueName2(fn, x->name, strlen(x->name));
                    x->store = false;
                }
                x->pending = true;
            }
        }
        pthread_mutex_unlock(&s->lock);
    }
    if (x->pending) {
        x->m = *m; /* the run consumes it */
        *m = (jit_module){ 0 };
        return JG_OK;
    }
    if (want_text)
        unoptimised_text(x, m->mod);
    jit_module_dispose(m);
    return JG_OK;
}

/* Optimises a pending entry's module and generates its object with target machine tm;
 * consumes the module. */
static void compile_entry(jit_session *s, LLVMTargetMachineRef tm, batch_entry *x)
{
    char *msg = NULL;
    jit_module *m = &x->m;
    x->st = JG_ERR_STATE;
    if (LLVMVerifyModule(m->mod, LLVMReturnStatusAction, &msg)) {
        snprintf(x->err, sizeof x->err, "internal: invalid kernel IR: %s", msg);
        LLVMDisposeMessage(msg);
        jit_module_dispose(m);
        return;
    }
    LLVMDisposeMessage(msg);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMErrorRef e = LLVMRunPasses(m->mod, s->pipeline, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        take_error(e, "LLVM passes", x->err, sizeof x->err);
        jit_module_dispose(m);
        return;
    }
    x->info.optimise_ms = ms_since(t0);
    if (x->want_text) {
        char *ir = LLVMPrintModuleToString(m->mod);
        x->info.ir = dup_or_null(ir);
        LLVMDisposeMessage(ir);
        x->info.asm_text = emit_text(tm, m->mod, LLVMAssemblyFile);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, m->mod, LLVMObjectFile, &msg, &x->obj)) {
        snprintf(x->err, sizeof x->err, "LLVM code generation: %s", msg);
        LLVMDisposeMessage(msg);
        x->obj = NULL;
    } else {
        x->st = JG_OK;
    }
    x->info.codegen_ms = ms_since(t0);
    jit_module_dispose(m);
}

/* A worker: takes pending entries until none is left. The calling thread is one too. */
static void *batch_worker(void *arg)
{
    jit_batch *b = arg;
    char ignored[256];
    LLVMTargetMachineRef tm = make_tm(b->s, ignored, sizeof ignored);
    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (b->next < b->n && !b->e[b->next].pending)
            b->next++;
        int i = b->next < b->n ? b->next++ : -1;
        pthread_mutex_unlock(&b->lock);
        if (i < 0)
            break;
        if (tm) {
            compile_entry(b->s, tm, &b->e[i]);
        } else {
            snprintf(b->e[i].err, sizeof b->e[i].err, "%s", ignored);
            b->e[i].st = JG_ERR_STATE;
            jit_module_dispose(&b->e[i].m);
        }
    }
    if (tm)
        LLVMDisposeTargetMachine(tm);
    return NULL;
}

jg_status jit_batch_run(jit_batch *b, char *err, size_t size)
{
    jit_session *s = b->s;
    int pending = 0;
    for (int i = 0; i < b->n; i++)
        pending += b->e[i].pending;
    int extra = (pending < b->threads ? pending : b->threads) - 1; /* -1: nothing to do */
    pthread_t tid[MAX_COMPILE_THREADS];
    int started = 0;
    b->next = 0;
    for (; started < extra && started < MAX_COMPILE_THREADS; started++)
        if (pthread_create(&tid[started], NULL, batch_worker, b) != 0)
            break; /* fewer threads: the others take up the work */
    if (pending)
        batch_worker(b);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    /* Link in the order of the adds, so names and cache entries do not depend on timing. */
    for (int i = 0; i < b->n; i++) {
        batch_entry *x = &b->e[i];
        if (!x->pending || x->st != JG_OK)
            continue;
        pthread_mutex_lock(&s->lock);
        if (s->cache_dir && x->store)
            disk_store(s, x->key, x->obj);
        else if (s->process_cache && x->store)
            object_cache_put(x->key, x->obj);
        double t0 = x->info.codegen_ms;
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        x->st = add_object(s, x->obj, x->name, &x->addr, x->err, sizeof x->err);
        x->obj = NULL; /* the JIT owns it now, linked or not */
        x->info.codegen_ms = t0 + ms_since(t1);
        if (x->st == JG_OK)
            cache_add(s, x->key, x->addr);
        pthread_mutex_unlock(&s->lock);
    }
    for (int i = 0; i < b->n; i++) {
        batch_entry *x = &b->e[i];
        if (x->same_as >= 0) {
            x->st = b->e[x->same_as].st;
            x->addr = b->e[x->same_as].addr;
        }
        if (x->pending && x->st != JG_OK) {
            snprintf(err, size, "%s", x->err);
            return x->st;
        }
    }
    return JG_OK;
}

void *jit_batch_result(jit_batch *b, int ticket, jit_compile_info *info)
{
    batch_entry *x = &b->e[ticket];
    *info = x->info;
    x->info.ir = x->info.asm_text = NULL;
    return x->addr;
}

jg_status jit_compile(jit_session *s, jit_module *m, LLVMValueRef fn, bool want_text,
                      void **addr, jit_compile_info *info, char *err, size_t size)
{
    *info = (jit_compile_info){ 0 };
    *addr = NULL;
    jit_batch *b = jit_batch_new(s, 1);
    int ticket;
    jg_status st = b ? jit_batch_add(b, m, fn, want_text, &ticket, err, size) : JG_ERR_NOMEM;
    if (!b) {
        jit_module_dispose(m);
        snprintf(err, size, "out of memory");
    }
    if (st == JG_OK)
        st = jit_batch_run(b, err, size);
    if (st == JG_OK)
        *addr = jit_batch_result(b, ticket, info);
    jit_batch_free(b);
    return st;
}
