/* The FMA peak of one core, measured in the same run as a benchmark: a JIT'd kernel of 24
 * independent vector FMA chains (acc = acc * x + y), timed on the thread's CPU clock, best
 * of 10 runs. Shared by the benchmarks that report a fraction of it. */
#ifndef JG_BENCH_PEAK_H
#define JG_BENCH_PEAK_H

#include "jit/kernel.h"

#include <stdio.h>
#include <time.h>


enum { CHAINS = 24, PEAK_ITERS = 1 << 20 };

static jit_kernel_fn peak_kernel(jit_session *s, int width)
{
    jit_module m;
    jit_module_new(s, &m, "fma_peak");
    emit_ctx e = { .width = width };
    LLVMValueRef fn = emit_kernel_begin(&e, &m);
    LLVMTypeRef vt = emit_vector_type(&e, JG_F32);
    LLVMValueRef in = emit_slot_ptr(&e, 0, JG_F32), out = emit_slot_ptr(&e, 1, JG_F32);
    LLVMValueRef x = emit_load(&e, in, JG_F32, emit_i64(&e, 0), 0);
    LLVMValueRef y = emit_load(&e, in, JG_F32, emit_i64(&e, 1), 0);
    LLVMValueRef acc[CHAINS];
    for (int c = 0; c < CHAINS; c++) {
        acc[c] = LLVMBuildAlloca(e.b, vt, "");
        LLVMBuildStore(e.b, emit_load(&e, in, JG_F32, emit_i64(&e, 2 + c), 0), acc[c]);
    }
    loop l;
    loop_begin(&e, &l, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), emit_i64(&e, 1), "i");
    for (int c = 0; c < CHAINS; c++) {
        LLVMValueRef args[3] = { LLVMBuildLoad2(e.b, vt, acc[c], ""), x, y };
        LLVMBuildStore(e.b, emit_intrinsic(&e, "llvm.fma", &vt, 1, args, 3), acc[c]);
    }
    loop_end(&e, &l);
    LLVMValueRef sum = LLVMBuildLoad2(e.b, vt, acc[0], "");
    for (int c = 1; c < CHAINS; c++)
        sum = LLVMBuildFAdd(e.b, sum, LLVMBuildLoad2(e.b, vt, acc[c], ""), "");
    emit_store(&e, out, JG_F32, emit_i64(&e, 0), sum);
    emit_kernel_end(&e);
    char err[512];
    void *addr = NULL;
    jit_compile_info info;
    if (!fn || jit_compile(s, &m, fn, false, &addr, &info, err, sizeof err) != JG_OK) {
        fprintf(stderr, "fma peak kernel: %s\n", fn ? err : "no kernel");
        return NULL;
    }
    return (jit_kernel_fn)addr;
}

/* 1-thread FMA peak in GFLOP/s (best of a few runs, thread CPU time); 0 when unavailable. */
static double fma_peak(void)
{
    char err[512];
    jit_session *s = jit_session_new(&(jit_target){ 0 }, err, sizeof err);
    if (!s)
        return 0;
    int width = jit_vector_bits(s) / 32;
    width = width < 1 ? 1 : width;
    jit_kernel_fn k = peak_kernel(s, width);
    double best = 1e30;
    float in[2 + CHAINS] = { 0.999999f, 1e-6f }, out[64];
    for (int c = 0; c < CHAINS; c++)
        in[2 + c] = 1.0f + (float)c;
    void *bufs[2] = { in, out };
    for (int r = 0; k && r < 10; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
        k(bufs, 0, PEAK_ITERS, NULL);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
        double t = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        best = t < best ? t : best;
    }
    jit_session_free(s);
    return k ? 2.0 * CHAINS * width * (double)PEAK_ITERS / best * 1e-9 : 0;
}

#endif
