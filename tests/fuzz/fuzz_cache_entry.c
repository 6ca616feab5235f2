/* libFuzzer target: the check of a disk kernel-cache entry (jit/cache_file.c) on arbitrary
 * bytes. The key is taken from where the header keeps it, so inputs get past the key check
 * to the size and digest checks; an entry that passes must hold exactly its object. */
#include "jit/cache_file.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t key[CACHE_KEY_SIZE] = { 0 };
    if (size >= 8 + CACHE_KEY_SIZE)
        memcpy(key, data + 8, CACHE_KEY_SIZE);
    const unsigned char *obj;
    size_t n;
    if (!cache_file_check(data, size, key, &obj, &n)) {
        uint8_t digest[CACHE_KEY_SIZE];
        cache_digest(obj, n, digest);
        if (obj + n != data + size || memcmp(digest, data + 8 + CACHE_KEY_SIZE, CACHE_KEY_SIZE))
            abort();
    }
    return 0;
}
