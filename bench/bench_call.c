/* Call-overhead micro-benchmark: what one call costs directly through a function pointer and
 * through a prepared libffi interface (ffi_call), for a custom op's signature (4 arguments,
 * one a double), through custom_call_run (the JIT runtime's path for custom ops), and for a
 * JIT'd kernel of the uniform ABI (an empty kernel returning 0). One JSON line per figure:
 * the median of REPEATS repeats of CALLS calls, in ns per call. It is the reason the runtime
 * calls its own kernels directly and keeps libffi for user functions of arbitrary signatures. */
#include "jit/custom_call.h"
#include "jit/kernel.h"

#include <ffi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEATS 7
#define CALLS 10000000L

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void report(const char *name, double value, const char *unit)
{
    printf("{\"bench\": \"%s\", \"value\": %.2f, \"unit\": \"%s\"}\n", name, value, unit);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A custom op's function that does (almost) nothing: the asm keeps it from being elided. */
__attribute__((noinline)) static void op_noop(const double *x, double *y, int64_t n, double s)
{
    (void)s;
    __asm__ volatile("" : : "r"(x), "r"(y), "r"(n) : "memory");
}

typedef void (*op_fn)(const double *, double *, int64_t, double);

/* The ways of calling, each timed over CALLS calls. */
typedef enum way { DIRECT, FFI, CUSTOM_CALL, KERNEL_DIRECT, KERNEL_FFI } way;

typedef struct subject {
    op_fn volatile fn;            /* volatile: loaded at each call, never inlined */
    ffi_cif cif;
    void *values[4];
    const double *x;
    double *y;
    int64_t n;
    double s;
    custom_call *cc;
    void *bufs[2];
    jit_kernel_fn volatile kernel;
    ffi_cif kcif;
    void *kvalues[4];
    void **kbufs;
    int64_t begin, end;
    char *scratch;
} subject;

static double time_way(subject *t, way w)
{
    double per_call[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        int64_t t0 = now_ns();
        ffi_arg ret;
        switch (w) {
        case DIRECT:
            for (long i = 0; i < CALLS; i++)
                t->fn(t->x, t->y, t->n, t->s);
            break;
        case FFI:
            for (long i = 0; i < CALLS; i++)
                ffi_call(&t->cif, (void (*)(void))t->fn, &ret, t->values);
            break;
        case CUSTOM_CALL:
            for (long i = 0; i < CALLS; i++)
                custom_call_run(t->cc, t->bufs);
            break;
        case KERNEL_DIRECT:
            for (long i = 0; i < CALLS; i++)
                if (t->kernel(t->kbufs, t->begin, t->end, t->scratch))
                    abort();
            break;
        case KERNEL_FFI:
            for (long i = 0; i < CALLS; i++) {
                ffi_call(&t->kcif, (void (*)(void))t->kernel, &ret, t->kvalues);
                if ((int64_t)ret)
                    abort();
            }
            break;
        }
        per_call[r] = (double)(now_ns() - t0) / CALLS;
    }
    qsort(per_call, REPEATS, sizeof per_call[0], cmp_double);
    return per_call[REPEATS / 2];
}

int main(void)
{
    static double x[4], y[4];
    subject t = { .fn = op_noop, .x = x, .y = y, .n = 4, .s = 2.0 };

    /* the custom op's signature through a prepared cif */
    static ffi_type *types[4] = { &ffi_type_pointer, &ffi_type_pointer, &ffi_type_sint64,
                                  &ffi_type_double };
    if (ffi_prep_cif(&t.cif, FFI_DEFAULT_ABI, 4, &ffi_type_void, types) != FFI_OK) {
        fprintf(stderr, "bench_call: ffi_prep_cif failed\n");
        return 1;
    }
    t.values[0] = &t.x, t.values[1] = &t.y, t.values[2] = &t.n, t.values[3] = &t.s;

    /* custom_call_run on a graph node calling the same function */
    jg_graph *g = jg_graph_new();
    jg_node *xn = jg_input(g, "x", JG_F64, jg_shape(4));
    jg_custom_def d = { .name = "noop", .n_inputs = 1, .out_shape = JG_SAME_SHAPE,
                        .forward = jg_cfn(op_noop, jg_arg_input(0), jg_arg_output(),
                                          jg_arg_numel(-1), jg_arg_double(2.0)) };
    jg_node *yn = jg_custom(&d, &xn, 1);
    char err[512] = "";
    if (!jg_node_ok(yn) ||
        custom_call_prepare(yn, (int[]){ 1 }, 0, &t.cc, err, sizeof err) != JG_OK) {
        fprintf(stderr, "bench_call: %s%s\n", jg_errmsg(g), err);
        return 1;
    }
    t.bufs[0] = y, t.bufs[1] = x;

    /* an empty JIT kernel of the uniform ABI */
    jit_session *s = jit_session_new(&(jit_target){ 0 }, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_call: %s\n", err);
        return 1;
    }
    jit_module m;
    void *addr = NULL;
    jit_compile_info info;
    emit_ctx e = { .width = 1 };
    if (jit_module_new(s, &m, "bench_call") != JG_OK) {
        fprintf(stderr, "bench_call: jit_module_new failed\n");
        return 1;
    }
    LLVMValueRef fn = emit_kernel_begin(&e, &m);
    emit_kernel_end(&e);
    if (jit_compile(s, &m, fn, false, &addr, &info, err, sizeof err) != JG_OK) {
        fprintf(stderr, "bench_call: %s\n", err);
        return 1;
    }
    t.kernel = (jit_kernel_fn)(uintptr_t)addr;
    t.kbufs = t.bufs, t.begin = 0, t.end = 1, t.scratch = NULL;
    static ffi_type *ktypes[4] = { &ffi_type_pointer, &ffi_type_sint64, &ffi_type_sint64,
                                   &ffi_type_pointer };
    if (ffi_prep_cif(&t.kcif, FFI_DEFAULT_ABI, 4, &ffi_type_sint64, ktypes) != FFI_OK) {
        fprintf(stderr, "bench_call: ffi_prep_cif failed\n");
        return 1;
    }
    t.kvalues[0] = &t.kbufs, t.kvalues[1] = &t.begin, t.kvalues[2] = &t.end;
    t.kvalues[3] = &t.scratch;

    /* ffi_prep_cif itself, once per compile in the runtime */
    double prep[REPEATS];
    for (int r = 0; r < REPEATS; r++) {
        ffi_cif cif;
        int64_t t0 = now_ns();
        for (long i = 0; i < CALLS / 10; i++) {
            ffi_prep_cif(&cif, FFI_DEFAULT_ABI, 4, &ffi_type_void, types);
            __asm__ volatile("" : : "r"(&cif) : "memory");
        }
        prep[r] = (double)(now_ns() - t0) / (CALLS / 10);
    }
    qsort(prep, REPEATS, sizeof prep[0], cmp_double);

    report("call_direct", time_way(&t, DIRECT), "ns");
    report("call_ffi", time_way(&t, FFI), "ns");
    report("call_custom_call_run", time_way(&t, CUSTOM_CALL), "ns");
    report("call_ffi_prep_cif", prep[REPEATS / 2], "ns");
    report("call_kernel_direct", time_way(&t, KERNEL_DIRECT), "ns");
    report("call_kernel_ffi", time_way(&t, KERNEL_FFI), "ns");

    custom_call_free(t.cc);
    jit_session_free(s);
    jg_graph_free(g);
    return 0;
}
