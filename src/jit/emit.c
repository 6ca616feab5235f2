/* IR building blocks shared by every kernel emitter: types, constants, loops, masked vector
 * loads and stores, intrinsic calls, the kernel's signature. Typed and opaque pointers both
 * work (LLVM 14 to 19): every load, GEP and call names its types explicitly. */
#include "jit/kernel.h"

#include <string.h>

LLVMTypeRef emit_scalar_type(emit_ctx *e, jg_dtype t)
{
    switch (t) {
    case JG_F32: return LLVMFloatTypeInContext(e->m->ctx);
    case JG_F64: return LLVMDoubleTypeInContext(e->m->ctx);
    case JG_I32: return LLVMInt32TypeInContext(e->m->ctx);
    }
    return LLVMFloatTypeInContext(e->m->ctx);
}

LLVMTypeRef emit_vector_type(emit_ctx *e, jg_dtype t)
{
    return LLVMVectorType(emit_scalar_type(e, t), (unsigned)e->width);
}

LLVMValueRef emit_i64(emit_ctx *e, int64_t v)
{
    return LLVMConstInt(LLVMInt64TypeInContext(e->m->ctx), (unsigned long long)v, 1);
}

static LLVMValueRef scalar_const(emit_ctx *e, jg_dtype t, double v)
{
    if (t == JG_I32)
        return LLVMConstInt(emit_scalar_type(e, t), (unsigned long long)(int64_t)saturate_i32(v), 1);
    return LLVMConstReal(emit_scalar_type(e, t), v);
}

LLVMValueRef emit_splat_const(emit_ctx *e, jg_dtype t, double v)
{
    LLVMValueRef c = scalar_const(e, t, v);
    LLVMValueRef lanes[64];
    for (int i = 0; i < e->width; i++)
        lanes[i] = c;
    return LLVMConstVector(lanes, (unsigned)e->width);
}

LLVMValueRef emit_splat(emit_ctx *e, LLVMValueRef scalar)
{
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(scalar), (unsigned)e->width);
    LLVMValueRef v = LLVMBuildInsertElement(e->b, LLVMGetUndef(vt), scalar,
                                            LLVMConstInt(LLVMInt32TypeInContext(e->m->ctx), 0, 0),
                                            "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(e->m->ctx),
                                                      (unsigned)e->width));
    return LLVMBuildShuffleVector(e->b, v, LLVMGetUndef(vt), zeros, "splat");
}

/* <0, 1, ..., width-1> as i64 lanes. */
static LLVMValueRef lane_iota(emit_ctx *e)
{
    LLVMValueRef lanes[64];
    for (int i = 0; i < e->width; i++)
        lanes[i] = emit_i64(e, i);
    return LLVMConstVector(lanes, (unsigned)e->width);
}

LLVMValueRef emit_lane_iota(emit_ctx *e) { return lane_iota(e); }

LLVMValueRef emit_lane_mask(emit_ctx *e, LLVMValueRef n)
{
    return LLVMBuildICmp(e->b, LLVMIntSLT, lane_iota(e), emit_splat(e, n), "mask");
}

LLVMValueRef emit_intrinsic(emit_ctx *e, const char *name, LLVMTypeRef *overload,
                            int n_overload, LLVMValueRef *args, int n_args)
{
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(e->m->mod, id, overload, (size_t)n_overload);
    LLVMTypeRef ty = LLVMIntrinsicGetType(e->m->ctx, id, overload, (size_t)n_overload);
    return LLVMBuildCall2(e->b, ty, fn, args, (unsigned)n_args, "");
}

static LLVMTypeRef ptr_to(emit_ctx *e, jg_dtype t)
{
    return LLVMPointerType(emit_scalar_type(e, t), 0);
}

LLVMValueRef emit_slot_ptr(emit_ctx *e, int slot, jg_dtype t)
{
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(e->m->ctx), 0);
    LLVMValueRef idx = emit_i64(e, slot);
    LLVMValueRef at = LLVMBuildGEP2(e->b, i8p, e->bufs, &idx, 1, "");
    LLVMValueRef raw = LLVMBuildLoad2(e->b, i8p, at, "buf");
    /* Buffers never alias within a kernel's reads and its one write. */
    return LLVMBuildBitCast(e->b, raw, ptr_to(e, t), "");
}

static LLVMValueRef gep(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef at)
{
    return LLVMBuildGEP2(e->b, emit_scalar_type(e, t), p, &at, 1, "");
}

static LLVMValueRef vec_ptr(emit_ctx *e, LLVMValueRef p, jg_dtype t)
{
    return LLVMBuildBitCast(e->b, p, LLVMPointerType(emit_vector_type(e, t), 0), "");
}

static LLVMValueRef i32c(emit_ctx *e, unsigned v)
{
    return LLVMConstInt(LLVMInt32TypeInContext(e->m->ctx), v, 0);
}

LLVMValueRef emit_load(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef base,
                       int64_t stride)
{
    LLVMTypeRef vt = emit_vector_type(e, t);
    LLVMValueRef at = gep(e, p, t, base);
    unsigned align = (unsigned)jg_dtype_size(t);
    if (stride == 0) {
        /* One element for every lane: a scalar load cannot fault where the vector would. */
        LLVMValueRef s = LLVMBuildLoad2(e->b, emit_scalar_type(e, t), at, "");
        LLVMSetAlignment(s, align);
        return emit_splat(e, s);
    }
    if (stride == 1 && !e->mask) {
        LLVMValueRef v = LLVMBuildLoad2(e->b, vt, vec_ptr(e, at, t), "");
        LLVMSetAlignment(v, align);
        return v;
    }
    LLVMValueRef passthru = LLVMConstNull(vt);
    LLVMValueRef mask = e->mask ? e->mask : LLVMConstAllOnes(LLVMVectorType(
                                                LLVMInt1TypeInContext(e->m->ctx), (unsigned)e->width));
    if (stride == 1) {
        LLVMTypeRef ov[2] = { vt, LLVMPointerType(vt, 0) };
        LLVMValueRef args[4] = { vec_ptr(e, at, t), i32c(e, align), mask, passthru };
        return emit_intrinsic(e, "llvm.masked.load", ov, 2, args, 4);
    }
    LLVMValueRef offs = LLVMBuildMul(e->b, lane_iota(e), emit_splat(e, emit_i64(e, stride)), "");
    LLVMValueRef ptrs = LLVMBuildGEP2(e->b, emit_scalar_type(e, t), at, &offs, 1, "");
    LLVMTypeRef ov[2] = { vt, LLVMTypeOf(ptrs) };
    LLVMValueRef args[4] = { ptrs, i32c(e, align), mask, passthru };
    return emit_intrinsic(e, "llvm.masked.gather", ov, 2, args, 4);
}

void emit_store(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef at, LLVMValueRef v)
{
    LLVMValueRef ptr = vec_ptr(e, gep(e, p, t, at), t);
    unsigned align = (unsigned)jg_dtype_size(t);
    if (!e->mask) {
        LLVMValueRef s = LLVMBuildStore(e->b, v, ptr);
        LLVMSetAlignment(s, e->aligned_stores ? align * (unsigned)e->width : align);
        if (e->aligned_stores && e->streaming_stores) {
            LLVMMetadataRef one = LLVMValueAsMetadata(
                LLVMConstInt(LLVMInt32TypeInContext(e->m->ctx), 1, 0));
            LLVMMetadataRef md = LLVMMDNodeInContext2(e->m->ctx, &one, 1);
            LLVMSetMetadata(s, LLVMGetMDKindIDInContext(e->m->ctx, "nontemporal", 11),
                            LLVMMetadataAsValue(e->m->ctx, md));
        }
        return;
    }
    LLVMTypeRef ov[2] = { LLVMTypeOf(v), LLVMTypeOf(ptr) };
    LLVMValueRef args[4] = { v, ptr, i32c(e, align), e->mask };
    emit_intrinsic(e, "llvm.masked.store", ov, 2, args, 4);
}

void loop_begin(emit_ctx *e, loop *l, LLVMValueRef from, LLVMValueRef to, LLVMValueRef step,
                const char *name)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(e->b);
    l->head = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, name);
    l->body = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(e->m->ctx, e->fn, "exit");
    l->to = to;
    l->step = step;
    LLVMBuildBr(e->b, l->head);
    LLVMPositionBuilderAtEnd(e->b, l->head);
    l->phi = LLVMBuildPhi(e->b, LLVMInt64TypeInContext(e->m->ctx), name);
    LLVMAddIncoming(l->phi, &from, &pre, 1);
    l->i = l->phi;
    LLVMValueRef more = LLVMBuildICmp(e->b, LLVMIntSLT, l->phi, to, "");
    LLVMBuildCondBr(e->b, more, l->body, l->exit);
    LLVMPositionBuilderAtEnd(e->b, l->body);
}

void loop_end(emit_ctx *e, loop *l)
{
    LLVMValueRef next = LLVMBuildAdd(e->b, l->phi, l->step, "next");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(e->b);
    LLVMAddIncoming(l->phi, &next, &latch, 1);
    LLVMBuildBr(e->b, l->head);
    LLVMPositionBuilderAtEnd(e->b, l->exit);
}

LLVMValueRef emit_kernel_begin(emit_ctx *e, jit_module *m)
{
    e->m = m;
    e->b = m->b;
    LLVMTypeRef i8p = LLVMPointerType(LLVMInt8TypeInContext(m->ctx), 0);
    LLVMTypeRef i64 = LLVMInt64TypeInContext(m->ctx);
    LLVMTypeRef params[4] = { LLVMPointerType(i8p, 0), i64, i64, i8p };
    LLVMTypeRef fty = LLVMFunctionType(i64, params, 4, 0);
    e->fn = LLVMAddFunction(m->mod, "kernel", fty);
    e->bufs = LLVMGetParam(e->fn, 0);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    LLVMAddAttributeAtIndex(e->fn, 1, LLVMCreateEnumAttribute(m->ctx, noalias, 0));
    LLVMAddAttributeAtIndex(e->fn, 4, LLVMCreateEnumAttribute(m->ctx, noalias, 0));
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(m->ctx, e->fn, "entry");
    LLVMPositionBuilderAtEnd(e->b, entry);
    e->entry = entry;
    return e->fn;
}

void emit_kernel_end(emit_ctx *e) { LLVMBuildRet(e->b, emit_i64(e, 0)); }
