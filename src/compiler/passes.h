/* The switch of every pass: jg_opts.passes_off names the ones to skip, comma-separated
 * ("cse,siblings"); "fuse" off is jg_opts.no_fusion and turns siblings off too. The passes
 * themselves, in order, are the list in pipeline.c. */
#ifndef JG_COMPILER_PASSES_H
#define JG_COMPILER_PASSES_H

#include <stdbool.h>
#include <string.h>

static inline bool pass_enabled(const char *passes_off, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = passes_off; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && *p == ' ')
            p++, len--;
        if (len == n && strncmp(p, name, n) == 0)
            return false;
        p = end ? end + 1 : p + len;
    }
    return true;
}

#endif
