/* exp, log and tanh on whole vectors. LLVM has no inline expansion of llvm.exp / llvm.log on
 * vectors: without a vector math library it calls expf once per lane, extracting and
 * inserting each element, and tanh has no intrinsic at all. That made an LSTM's gate
 * nonlinearities most of its step. In f32 these are Cephes' polynomials (the ones Eigen,
 * ggml and oneDNN use), a few ulp from the correctly rounded value, with IEEE special cases
 * (NaN, infinities, zeros, subnormal inputs and results) as libm gives them. f64 keeps libm,
 * lane by lane: it is the checking dtype, where the last digits matter more than speed. */
#include "jit/kernel.h"

#include <math.h>

static LLVMValueRef kf(emit_ctx *e, double v) { return emit_splat_const(e, JG_F32, v); }
static LLVMValueRef ki(emit_ctx *e, int v) { return emit_splat_const(e, JG_I32, v); }

/* a * b + c, fused where the target has FMA (the same choice for every lane and width, so
 * results do not depend on the thread count). */
static LLVMValueRef fmuladd(emit_ctx *e, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c)
{
    LLVMTypeRef t = LLVMTypeOf(a);
    LLVMValueRef args[3] = { a, b, c };
    return emit_intrinsic(e, "llvm.fmuladd", &t, 1, args, 3);
}

/* c[0] * x^(n-1) + ... + c[n-1], by Horner's rule. */
static LLVMValueRef horner(emit_ctx *e, LLVMValueRef x, const double *c, int n)
{
    LLVMValueRef y = kf(e, c[0]);
    for (int i = 1; i < n; i++)
        y = fmuladd(e, y, x, kf(e, c[i]));
    return y;
}

static LLVMValueRef fcmp(emit_ctx *e, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(e->b, p, a, b, "");
}

static LLVMValueRef sel(emit_ctx *e, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(e->b, c, a, b, "");
}

/* 2^k as a float, for integer vectors k in [-126, 127]. */
static LLVMValueRef pow2(emit_ctx *e, LLVMValueRef k)
{
    LLVMValueRef bits = LLVMBuildShl(e->b, LLVMBuildAdd(e->b, k, ki(e, 127), ""), ki(e, 23), "");
    return LLVMBuildBitCast(e->b, bits, emit_vector_type(e, JG_F32), "");
}

/* e^x = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 (ln 2 in two parts, so r is exact),
 * and e^r a degree-7 polynomial on |r| <= ln 2 / 2. x is clamped to [-104, 89] first, where
 * the result is already 0 or inf; NaN passes the clamps (ordered compares are false) and
 * stays NaN. 2^n is applied as two factors so subnormal results and overflow round once. */
static LLVMValueRef exp_f32(emit_ctx *e, LLVMValueRef x)
{
    static const double poly[] = { 1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                   4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1 };
    LLVMBuilderRef b = e->b;
    x = sel(e, fcmp(e, LLVMRealOGT, x, kf(e, 89.0)), kf(e, 89.0), x);
    x = sel(e, fcmp(e, LLVMRealOLT, x, kf(e, -104.0)), kf(e, -104.0), x);
    /* round to nearest by adding and subtracting 1.5 * 2^23 (no SSE4.1 round needed) */
    LLVMValueRef magic = kf(e, 12582912.0);
    LLVMValueRef scaled = LLVMBuildFMul(b, x, kf(e, 1.44269504088896341), ""); /* x / ln 2 */
    LLVMValueRef n = LLVMBuildFSub(b, LLVMBuildFAdd(b, scaled, magic, ""), magic, "");
    LLVMValueRef r = fmuladd(e, n, kf(e, -0.693359375), x);
    r = fmuladd(e, n, kf(e, 2.12194440e-4), r);
    LLVMValueRef p = fmuladd(e, horner(e, r, poly, 6), LLVMBuildFMul(b, r, r, ""), r);
    p = LLVMBuildFAdd(b, p, kf(e, 1.0), "");
    /* n is an integer in [-150, 128] or NaN, made 0 for the conversion (a plain fptosi of
     * NaN is poison; llvm.fptosi.sat would do, but x86 scalarises it lane by lane) */
    n = sel(e, fcmp(e, LLVMRealUNO, n, n), kf(e, 0.0), n);
    LLVMValueRef ni = LLVMBuildFPToSI(b, n, emit_vector_type(e, JG_I32), "");
    LLVMValueRef half = LLVMBuildAShr(b, ni, ki(e, 1), "");
    p = LLVMBuildFMul(b, p, pow2(e, half), "");
    return LLVMBuildFMul(b, p, pow2(e, LLVMBuildSub(b, ni, half, "")), "");
}

/* log x = log m + k ln 2 with x = m 2^k, m in [sqrt(1/2), sqrt(2)); log(1 + f) for
 * f = m - 1 is f - f^2/2 + f^3 P(f). Subnormal x is scaled by 2^23 first. */
static LLVMValueRef log_f32(emit_ctx *e, LLVMValueRef x)
{
    static const double poly[] = { 7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
                                   -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                                   2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1 };
    LLVMBuilderRef b = e->b;
    LLVMTypeRef i32 = emit_vector_type(e, JG_I32), f32 = emit_vector_type(e, JG_F32);
    LLVMValueRef tiny = fcmp(e, LLVMRealOLT, x, kf(e, 1.17549435e-38));
    LLVMValueRef xs = sel(e, tiny, LLVMBuildFMul(b, x, kf(e, 8388608.0), ""), x);
    LLVMValueRef bits = LLVMBuildBitCast(b, xs, i32, "");
    LLVMValueRef biased = LLVMBuildAnd(b, LLVMBuildLShr(b, bits, ki(e, 23), ""), ki(e, 255), "");
    LLVMValueRef k = LLVMBuildSub(b, biased, ki(e, 126), "");
    k = LLVMBuildSub(b, k, sel(e, tiny, ki(e, 23), ki(e, 0)), "");
    LLVMValueRef mantissa = LLVMBuildAnd(b, bits, ki(e, 0x007fffff), "");
    LLVMValueRef m = LLVMBuildBitCast(b, LLVMBuildOr(b, mantissa, ki(e, 0x3f000000), ""), f32, "");
    LLVMValueRef low = fcmp(e, LLVMRealOLT, m, kf(e, 0.707106781186547524));
    k = LLVMBuildSub(b, k, sel(e, low, ki(e, 1), ki(e, 0)), "");
    LLVMValueRef f = LLVMBuildFSub(b, sel(e, low, LLVMBuildFAdd(b, m, m, ""), m), kf(e, 1.0), "");
    LLVMValueRef kfl = LLVMBuildSIToFP(b, k, f32, "");
    LLVMValueRef z = LLVMBuildFMul(b, f, f, "");
    LLVMValueRef y = LLVMBuildFMul(b, LLVMBuildFMul(b, horner(e, f, poly, 9), f, ""), z, "");
    y = fmuladd(e, kfl, kf(e, -2.12194440e-4), y);
    y = fmuladd(e, z, kf(e, -0.5), y);
    LLVMValueRef r = fmuladd(e, kfl, kf(e, 0.693359375), LLVMBuildFAdd(b, f, y, ""));
    LLVMValueRef inf = kf(e, INFINITY);
    r = sel(e, fcmp(e, LLVMRealOEQ, x, inf), inf, r);
    r = sel(e, fcmp(e, LLVMRealOEQ, x, kf(e, 0.0)), kf(e, -INFINITY), r);
    return sel(e, fcmp(e, LLVMRealULT, x, kf(e, 0.0)), kf(e, NAN), r); /* x < 0 or NaN */
}

/* tanh x: an odd polynomial for |x| < 0.625, where 1 - 2 / (e^2|x| + 1) would cancel;
 * beyond it that formula, with x's sign. */
static LLVMValueRef tanh_f32(emit_ctx *e, LLVMValueRef x)
{
    static const double poly[] = { -5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                                   1.33314422036e-1, -3.33332819422e-1 };
    LLVMBuilderRef b = e->b;
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef ax = emit_intrinsic(e, "llvm.fabs", &t, 1, &x, 1);
    LLVMValueRef s = LLVMBuildFMul(b, x, x, "");
    LLVMValueRef small = fmuladd(e, LLVMBuildFMul(b, horner(e, s, poly, 5), s, ""), x, x);
    LLVMValueRef ex = exp_f32(e, LLVMBuildFAdd(b, ax, ax, ""));
    LLVMValueRef share = LLVMBuildFDiv(b, kf(e, 2.0), LLVMBuildFAdd(b, ex, kf(e, 1.0), ""), "");
    LLVMValueRef big = LLVMBuildFSub(b, kf(e, 1.0), share, "");
    LLVMValueRef args[2] = { big, x };
    big = emit_intrinsic(e, "llvm.copysign", &t, 1, args, 2);
    return sel(e, fcmp(e, LLVMRealOGE, ax, kf(e, 0.625)), big, small);
}

LLVMValueRef emit_libm_per_lane(emit_ctx *e, const char *f32_name, const char *f64_name,
                                jg_dtype t, LLVMValueRef v)
{
    LLVMTypeRef st = emit_scalar_type(e, t);
    const char *name = t == JG_F64 ? f64_name : f32_name;
    LLVMTypeRef fty = LLVMFunctionType(st, &st, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(e->m->mod, name);
    if (!fn)
        fn = LLVMAddFunction(e->m->mod, name, fty);
    LLVMValueRef r = LLVMGetUndef(LLVMTypeOf(v));
    for (int i = 0; i < e->width; i++) {
        LLVMValueRef at = LLVMConstInt(LLVMInt32TypeInContext(e->m->ctx), (unsigned)i, 0);
        LLVMValueRef x = LLVMBuildExtractElement(e->b, v, at, "");
        LLVMValueRef y = LLVMBuildCall2(e->b, fty, fn, &x, 1, "");
        r = LLVMBuildInsertElement(e->b, r, y, at, "");
    }
    return r;
}

LLVMValueRef emit_exp(emit_ctx *e, jg_dtype t, LLVMValueRef v)
{
    if (t == JG_F32)
        return exp_f32(e, v);
    LLVMTypeRef vt = LLVMTypeOf(v);
    return emit_intrinsic(e, "llvm.exp", &vt, 1, &v, 1);
}

LLVMValueRef emit_log(emit_ctx *e, jg_dtype t, LLVMValueRef v)
{
    if (t == JG_F32)
        return log_f32(e, v);
    LLVMTypeRef vt = LLVMTypeOf(v);
    return emit_intrinsic(e, "llvm.log", &vt, 1, &v, 1);
}

LLVMValueRef emit_tanh(emit_ctx *e, jg_dtype t, LLVMValueRef v)
{
    return t == JG_F32 ? tanh_f32(e, v) : emit_libm_per_lane(e, "tanhf", "tanh", t, v);
}
