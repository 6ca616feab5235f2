/* The process's cache of compiled kernels (object code), shared by every program of the
 * process that has no disk cache: a second program of the same model links its kernels
 * instead of compiling them again. Keyed like the disk cache (session.c: the kernel's IR,
 * CPU, features, LLVM version, optimisation level). Safe from any thread. */
#ifndef JG_JIT_OBJECT_CACHE_H
#define JG_JIT_OBJECT_CACHE_H

#include "jit/cache_file.h"

#include <llvm-c/Core.h>

/* A copy of the object stored under key, or NULL. */
HIDDEN LLVMMemoryBufferRef object_cache_find(const uint8_t key[CACHE_KEY_SIZE]);
/* Stores a copy of obj's bytes under key (nothing when out of memory or already there). */
HIDDEN void object_cache_put(const uint8_t key[CACHE_KEY_SIZE], LLVMMemoryBufferRef obj);
/* Forgets the entry under key, if any (one that failed to link). */
HIDDEN void object_cache_remove(const uint8_t key[CACHE_KEY_SIZE]);

#endif
