/* Opening a file to read data from it: only a regular file is read, and the check cannot
 * block (a FIFO with no writer, a device) or be raced (it is made on the open descriptor). */
#ifndef JG_UTIL_FILE_H
#define JG_UTIL_FILE_H

#include "util/hidden.h"

#include <stddef.h>
#include <stdint.h>

/* Opens path read-only if it is a regular file; returns the descriptor (blocking, close-on-
 * exec) and its size in *size, or -1 with the reason ("not a regular file (a FIFO)", or the
 * system's) in why. */
HIDDEN int file_open_regular(const char *path, int64_t *size, char *why, size_t why_size);

#endif
