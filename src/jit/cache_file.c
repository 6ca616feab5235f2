/* The disk kernel cache's entry format (cache_file.h). */
#include "jit/cache_file.h"

#include <nettle/sha2.h>
#include <nettle/version.h>

#include <string.h>

_Static_assert(CACHE_KEY_SIZE == SHA256_DIGEST_SIZE, "the key is a SHA-256");

void cache_digest(const void *data, size_t n, uint8_t out[CACHE_KEY_SIZE])
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, n, data);
    JG_SHA256_DIGEST(&c, out);
}

cache_file_header cache_file_header_for(const uint8_t key[CACHE_KEY_SIZE], const void *obj,
                                        size_t n)
{
    cache_file_header h = { .magic = "JGOBJ2", .size = n };
    memcpy(h.key, key, CACHE_KEY_SIZE);
    cache_digest(obj, n, h.digest);
    return h;
}

const char *cache_file_check(const unsigned char *bytes, size_t n,
                             const uint8_t key[CACHE_KEY_SIZE], const unsigned char **obj,
                             size_t *obj_size)
{
    cache_file_header h;
    if (n < sizeof h)
        return "truncated header";
    memcpy(&h, bytes, sizeof h);
    if (memcmp(h.magic, "JGOBJ2", 7) != 0)
        return "not a jitgrad kernel (bad magic)";
    if (memcmp(h.key, key, CACHE_KEY_SIZE) != 0)
        return "written for another kernel";
    if (h.size == 0 || h.size > CACHE_MAX_OBJECT || h.size != n - sizeof h)
        return "size does not match its header";
    uint8_t digest[CACHE_KEY_SIZE];
    cache_digest(bytes + sizeof h, (size_t)h.size, digest);
    if (memcmp(digest, h.digest, CACHE_KEY_SIZE) != 0)
        return "damaged (object digest mismatch)";
    *obj = bytes + sizeof h;
    *obj_size = (size_t)h.size;
    return NULL;
}
