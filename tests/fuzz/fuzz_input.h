/* What the libFuzzer targets share: the readers take paths, so each input is written to a
 * per-process file in a memory file system first. */
#ifndef JG_FUZZ_INPUT_H
#define JG_FUZZ_INPUT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char fuzz_path[256];

static void fuzz_remove(void)
{
    char svg[300];
    unlink(fuzz_path);
    snprintf(svg, sizeof svg, "%s.svg", fuzz_path); /* fuzz_csv's output */
    unlink(svg);
}

/* A file of this process's holding data (rewritten at each call, removed at exit); its
 * path. */
static inline const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix)
{
    char *path = fuzz_path;
    if (!path[0]) {
        const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof fuzz_path, "%s/jg-fuzz-%ld%s", dir, (long)getpid(), suffix);
        atexit(fuzz_remove);
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
