/* The safetensors format (huggingface/safetensors): u64 little-endian header length N, N bytes
 * of JSON (tensor name -> dtype, shape, data_offsets; optional "__metadata__"), then the raw
 * little-endian tensor data, offsets relative to its start. Reading and validating a file
 * whole, as checkpoints (checkpoint.c) and imports of other frameworks' weights (import.c)
 * both need, before anything in a graph changes. */
#ifndef JG_IO_SAFETENSORS_H
#define JG_IO_SAFETENSORS_H

#include "graph/graph.h"

/* The reference implementation refuses headers over 100 MB; so do we. */
#define ST_MAX_HEADER ((uint64_t)100 << 20)
#define ST_MAX_NAME 1024

typedef struct st_entry {
    char *name;
    char dtype[16];
    jg_shape shape;     /* ndim may be JG_MAX_DIMS + 1: "too many dimensions" */
    uint64_t begin, end;
} st_entry;

typedef struct st_file {
    st_entry *e;
    int n, cap;
} st_file;


HIDDEN void st_free(st_file *f);
HIDDEN bool st_host_big_endian(void);
/* Copies n elements of es bytes, reversing each element's bytes on big-endian hosts. */
HIDDEN void st_copy_le(void *dst, const void *src, size_t n, size_t es);
/* Reads the whole file at path into *buf (malloc'd, *size bytes) and checks its structure:
 * header length, JSON, every entry's fields (a short dtype string, its values not checked;
 * the shape; offsets inside the data, not overlapping). Fills f and *data_start (the data's offset in buf). On failure returns the
 * status with the reason in why; *buf is then NULL and f empty. */
HIDDEN jg_status st_read(const char *path, unsigned char **buf, size_t *size, st_file *f,
                         uint64_t *data_start, char *why, size_t why_size);

#endif
