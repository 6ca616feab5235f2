/* Crash-safe file replacement shared by every writer (src/io's checkpoints, .npy, PNG and
 * plots, the compiler's dumps, the JIT's kernel cache): write to a temporary file in the
 * target's directory, fsync it, rename it over the target and fsync the directory, so a
 * reader sees the old file or the new one, never half of one. */
#ifndef JG_UTIL_ATOMIC_H
#define JG_UTIL_ATOMIC_H

#include "util/hidden.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct atomic_file {
    char *path;  /* the target */
    char *tmp;   /* the temporary file next to it */
    FILE *f;     /* open for writing on the temporary */
    bool remove_stale; /* set after begin: the commit also removes the temporaries of the
                          same target that dead writers on this host left (checkpoints and
                          arrays: each the target's size; a directory scan per save) */
} atomic_file;

/* Creates the temporary file; false (message "<path>: <why>" in err) when it cannot. */
HIDDEN bool atomic_file_begin(atomic_file *a, const char *path, char *err, size_t err_size);
/* Flushes, fsyncs and closes the temporary, renames it over the target and fsyncs the
 * directory, then (with remove_stale) the temporaries of the same target that dead writers
 * left. On any failure removes the temporary, leaves the target alone and returns
 * false with the reason in err. Always releases a. */
HIDDEN bool atomic_file_commit(atomic_file *a, char *err, size_t err_size);
/* Gives up: closes and removes the temporary (safe after a failed begin or twice). */
HIDDEN void atomic_file_abort(atomic_file *a);

/* This host's name as it goes into temporaries' names ("<target>.jgtmp.<host>.<pid>.*"):
 * letters, digits and '-' only, at most 32 of them. */
enum { ATOMIC_HOST_SIZE = 33 };
HIDDEN void atomic_file_host_tag(char out[ATOMIC_HOST_SIZE]);

/* Writes "<path>: <formatted why>" into err (when err is not NULL). */
HIDDEN void file_fail(char *err, size_t err_size, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
