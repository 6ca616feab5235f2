/* Scalar IR helpers the loop-nest emitters of opaque ops share (emit_opaque.c, emit_pool.c):
 * element pointers, aligned scalar loads and stores, and mutable scalars kept in allocas of
 * the entry block, which LLVM promotes to registers. */
#ifndef JG_JIT_SCALAR_IR_H
#define JG_JIT_SCALAR_IR_H

#include "jit/kernel.h"

static inline LLVMValueRef elem_ptr(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef off)
{
    return LLVMBuildGEP2(e->b, emit_scalar_type(e, t), p, &off, 1, "");
}

static inline LLVMValueRef load_at(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef off)
{
    LLVMValueRef v = LLVMBuildLoad2(e->b, emit_scalar_type(e, t), elem_ptr(e, p, t, off), "");
    LLVMSetAlignment(v, (unsigned)jg_dtype_size(t));
    return v;
}

static inline void store_at(emit_ctx *e, LLVMValueRef p, jg_dtype t, LLVMValueRef off, LLVMValueRef v)
{
    LLVMValueRef s = LLVMBuildStore(e->b, v, elem_ptr(e, p, t, off));
    LLVMSetAlignment(s, (unsigned)jg_dtype_size(t));
}

/* A mutable scalar: an alloca in the entry block, initialised here. */
static inline LLVMValueRef var_new(emit_ctx *e, LLVMValueRef init)
{
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(e->fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(e->m->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(b, first);
    else
        LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef v = LLVMBuildAlloca(b, LLVMTypeOf(init), "");
    LLVMDisposeBuilder(b);
    LLVMBuildStore(e->b, init, v);
    return v;
}

static inline LLVMValueRef var_get(emit_ctx *e, LLVMValueRef var, LLVMTypeRef t)
{
    return LLVMBuildLoad2(e->b, t, var, "");
}

static inline void var_set(emit_ctx *e, LLVMValueRef var, LLVMValueRef v) { LLVMBuildStore(e->b, v, var); }

#endif
