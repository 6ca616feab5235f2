/* The disk kernel cache's entry format: a header (magic, the SHA-256 of the kernel's key
 * material, the SHA-256 of the object bytes, the object's size), then the object file. Kept
 * apart from the session so the check of an entry's bytes is one pure function (the fuzzer
 * tests/fuzz/fuzz_cache_entry.c calls it). */
#ifndef JG_JIT_CACHE_FILE_H
#define JG_JIT_CACHE_FILE_H

#include "util/hidden.h"

#include <stddef.h>
#include <stdint.h>

enum { CACHE_KEY_SIZE = 32 }; /* SHA-256 */

/* nettle 4 dropped the length argument of the digest functions. */
#if defined(NETTLE_VERSION_MAJOR) && NETTLE_VERSION_MAJOR >= 4
#define JG_SHA256_DIGEST(ctx, out) sha256_digest((ctx), (out))
#else
#define JG_SHA256_DIGEST(ctx, out) sha256_digest((ctx), CACHE_KEY_SIZE, (out))
#endif

/* The largest object an entry may hold (kernels are a few KiB). */
#define CACHE_MAX_OBJECT ((uint64_t)1 << 28)

typedef struct cache_file_header {
    char magic[8];                     /* "JGOBJ2\0\0" */
    uint8_t key[CACHE_KEY_SIZE];       /* SHA-256 of the key material */
    uint8_t digest[CACHE_KEY_SIZE];    /* SHA-256 of the object bytes */
    uint64_t size;                     /* of the object */
} cache_file_header;

/* SHA-256 of n bytes. */
HIDDEN void cache_digest(const void *data, size_t n, uint8_t out[CACHE_KEY_SIZE]);

/* The header of an entry holding obj (n bytes) for key. */
HIDDEN cache_file_header cache_file_header_for(const uint8_t key[CACHE_KEY_SIZE],
                                               const void *obj, size_t n);

/* Checks an entry's bytes (all n of them) as written for key; NULL when it is sound, with
 * the object in *obj, *obj_size; else the reason ("damaged (object digest mismatch)"). */
HIDDEN const char *cache_file_check(const unsigned char *bytes, size_t n,
                                    const uint8_t key[CACHE_KEY_SIZE],
                                    const unsigned char **obj, size_t *obj_size);

#endif
