/* What the libFuzzer targets share: the readers take paths, so each input is written to a
 * per-process file in a memory file system first. */
#ifndef JG_FUZZ_INPUT_H
#define JG_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A file of this process's holding data (rewritten at each call); its path. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    static char path[256];
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/jg-fuzz-%ld%s", dir, (long)getpid(), suffix);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        abort(); /* the harness itself is broken: say so loudly */
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    return path;
}

#endif
