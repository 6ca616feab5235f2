/* The process-wide kernel cache (object_cache.h). The one piece of mutable state programs
 * share, on purpose: each program owns its LLVM session, so without it a second program of a
 * model (an evaluation program next to a training one, a lesson's fresh model per run)
 * compiled every kernel again. Entries are immutable once stored and are returned as copies,
 * so nothing a program holds changes under it. Bounded: past MAX_BYTES the oldest entries go
 * first. The memory is reclaimed at exit (still reachable, so no leak report). */
#include "jit/object_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_BYTES = 64 << 20 };

typedef struct entry {
    uint8_t key[CACHE_KEY_SIZE];
    char *bytes;
    size_t size;
} entry;

static struct {
    pthread_mutex_t lock;
    entry *e;       /* oldest first */
    int n, cap;
    size_t bytes;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int find(const uint8_t key[CACHE_KEY_SIZE])
{
    for (int i = cache.n - 1; i >= 0; i--) /* newest first: a model's kernels come together */
        if (memcmp(cache.e[i].key, key, CACHE_KEY_SIZE) == 0)
            return i;
    return -1;
}

LLVMMemoryBufferRef object_cache_find(const uint8_t key[CACHE_KEY_SIZE])
{
    pthread_mutex_lock(&cache.lock);
    int i = find(key);
    LLVMMemoryBufferRef obj = i < 0 ? NULL
                                    : LLVMCreateMemoryBufferWithMemoryRangeCopy(
                                          cache.e[i].bytes, cache.e[i].size, "jg_kernel");
    pthread_mutex_unlock(&cache.lock);
    return obj;
}

void object_cache_put(const uint8_t key[CACHE_KEY_SIZE], LLVMMemoryBufferRef obj)
{
    size_t size = LLVMGetBufferSize(obj);
    if (size > MAX_BYTES / 4)
        return;
    char *bytes = malloc(size ? size : 1);
    if (!bytes)
        return;
    memcpy(bytes, LLVMGetBufferStart(obj), size);
    pthread_mutex_lock(&cache.lock);
    if (find(key) >= 0)
        goto drop;
    int evict = 0;
    while (evict < cache.n && cache.bytes + size > MAX_BYTES)
        cache.bytes -= cache.e[evict].size, free(cache.e[evict++].bytes);
    if (evict) {
        memmove(cache.e, cache.e + evict, (size_t)(cache.n - evict) * sizeof *cache.e);
        cache.n -= evict;
    }
    if (cache.n == cache.cap) {
        int cap = cache.cap ? 2 * cache.cap : 256;
        entry *e = realloc(cache.e, (size_t)cap * sizeof *e);
        if (!e)
            goto drop;
        cache.e = e;
        cache.cap = cap;
    }
    entry *x = &cache.e[cache.n++];
    memcpy(x->key, key, CACHE_KEY_SIZE);
    x->bytes = bytes;
    x->size = size;
    cache.bytes += size;
    pthread_mutex_unlock(&cache.lock);
    return;
drop:
    pthread_mutex_unlock(&cache.lock);
    free(bytes);
}

void object_cache_remove(const uint8_t key[CACHE_KEY_SIZE])
{
    pthread_mutex_lock(&cache.lock);
    int i = find(key);
    if (i >= 0) {
        cache.bytes -= cache.e[i].size;
        free(cache.e[i].bytes);
        memmove(cache.e + i, cache.e + i + 1, (size_t)(cache.n - i - 1) * sizeof *cache.e);
        cache.n--;
    }
    pthread_mutex_unlock(&cache.lock);
}
