/* The lint: warnings about graphs that compute what they say but will not train as intended.
 * lint.c checks what a program computes (every program); lint_train.c checks a training
 * program against its optimiser settings. Warnings never make a compile fail. */
#ifndef JG_PASSES_LINT_H
#define JG_PASSES_LINT_H

#include "graph/graph.h"

/* Where warnings go: one "warning: ...\n" line each, whole lines only (a line that does not
 * fit is dropped, still counted). */
typedef struct lint_out {
    char *text;
    size_t size;
    int count;
} lint_out;

HIDDEN void lint_warn(lint_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The file name of a location without its directories ("?" when unknown). */
HIDDEN const char *lint_file(jg_loc at);
/* True when name ends with suffix. */
HIDDEN bool lint_ends_with(const char *name, const char *suffix);
/* Names n for a message: "parameter 'w1' (model.c:12)" or "jg_relu (model.c:14, node %7)". */
enum { LINT_NAME_SIZE = 192 };
HIDDEN const char *lint_node(const jg_node *n, char buf[LINT_NAME_SIZE]);

/* Checks what the roots compute in a program of the given mode; writes the warnings into
 * out (whole lines, up to size bytes: LINT_TEXT_SIZE holds a few hundred) and returns how
 * many there are. */
enum { LINT_TEXT_SIZE = 1 << 16 };
HIDDEN int pass_lint(const jg_graph *g, jg_node *const *roots, int n_roots, bool train,
                     char *out, size_t size);

/* Checks a training program against its optimiser settings (lint_train.c): wrt[i] are the
 * n trainable parameters, grads[i] their gradients (NULL: the loss does not reach them).
 * Files the warnings on p with program_warn. */
HIDDEN void lint_train(jg_program *p, const jg_train_opts *opts, const jg_node *loss,
                       jg_node *const *wrt, jg_node *const *grads, int n);

/* Files count warnings (text: whole lines) on p, where jg_program_warnings shows them, and
 * prints them to stderr when print (jg_opts.print_warnings). In program.c, which owns the
 * program's fields. */
HIDDEN void program_warn(jg_program *p, const char *text, int count, bool print);

#endif
