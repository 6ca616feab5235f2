/* Advice: warnings about graphs that compute what they say but will not train as intended.
 * Not a pass (it changes nothing): advice.c checks what a program computes (every program);
 * train/advice_train.c checks a training program against its optimiser settings with the
 * helpers below. Warnings never make a compile fail. */
#ifndef JG_COMPILER_ADVICE_H
#define JG_COMPILER_ADVICE_H

#include "graph/graph.h"

/* Where warnings go: one "warning: ...\n" line each, whole lines only (a line that does not
 * fit is dropped, still counted). */
typedef struct advice_out {
    char *text;
    size_t size;
    int count;
} advice_out;

HIDDEN void advice_warn(advice_out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The file name of a location without its directories ("?" when unknown). */
HIDDEN const char *advice_file(jg_loc at);
/* True when name ends with suffix. */
HIDDEN bool advice_ends_with(const char *name, const char *suffix);
/* Names n for a message: "parameter 'w1' (model.c:12)" or "jg_relu (model.c:14, node %7)". */
enum { ADVICE_NAME_SIZE = 192 };
HIDDEN const char *advice_node(const jg_node *n, char buf[ADVICE_NAME_SIZE]);

/* Checks what the roots compute in a program of the given mode; writes the warnings into
 * out (whole lines, up to size bytes: ADVICE_TEXT_SIZE holds a few hundred) and returns how
 * many there are. */
enum { ADVICE_TEXT_SIZE = 1 << 16 };
HIDDEN int advice_check(const jg_graph *g, jg_node *const *roots, int n_roots, bool train,
                        char *out, size_t size);

#endif
