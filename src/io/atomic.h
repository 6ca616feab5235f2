/* Crash-safe file replacement shared by the writers in src/io (checkpoints, .npy, PNG): write
 * to a temporary file in the target's directory, fsync it, rename it over the target and fsync
 * the directory, so a reader sees the old file or the new one, never half of one.
 */
#ifndef JG_IO_ATOMIC_H
#define JG_IO_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define HIDDEN __attribute__((visibility("hidden")))

typedef struct io_atomic {
    char *path;  /* the target */
    char *tmp;   /* the temporary file next to it */
    FILE *f;     /* open for writing on the temporary */
} io_atomic;

/* Creates the temporary file; false (message "<path>: <why>" in err) when it cannot. */
HIDDEN bool io_atomic_begin(io_atomic *a, const char *path, char *err, size_t err_size);
/* Flushes, fsyncs and closes the temporary, renames it over the target and fsyncs the
 * directory. On any failure removes the temporary, leaves the target alone and returns
 * false with the reason in err. Always releases a. */
HIDDEN bool io_atomic_commit(io_atomic *a, char *err, size_t err_size);
/* Gives up: closes and removes the temporary (safe after a failed begin or twice). */
HIDDEN void io_atomic_abort(io_atomic *a);

/* Writes "<path>: <formatted why>" into err (when err is not NULL). */
HIDDEN void io_fail(char *err, size_t err_size, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
