/* JIT pass "concat" (src/jit/concat_place.c): a concat whose pieces are contiguous runs of
 * its result has no kernel; each piece's kernel writes into its run. Pieces not 64-byte
 * aligned, pieces that are outputs and concats along an inner axis keep the copy; a second
 * concat of the same pieces is the same buffer; a piece read long after the concat keeps its
 * bytes (the arena holds the concat from its first piece to its last reader). Values agree
 * with the reference executor and with the pass off. The concats here are read by
 * reductions: one read by a single pointwise op is computed inline instead (fuse.c). */
#include "support/jit_compare.h"
#include "support/pass_check.h"

TestSuite(pass_concat);

static jg_node *cat2(jg_node *a, jg_node *b, int axis)
{
    jg_node *xs[2] = { a, b };
    return jg_concat(xs, 2, axis);
}

static int kernels(jg_graph *g, jg_node *const *outs, int n, const char *off)
{
    return t_stats(g, outs, n, &(jg_opts){ .passes_off = off, .num_threads = 2 }).kernels;
}

/* Checks outs against the reference and with the pass off; returns kernels on minus off. */
static int saved_kernels(tctx *c, jg_node *const *outs, int n, const char *also_off)
{
    char off[64];
    snprintf(off, sizeof off, "concat%s%s", also_off ? "," : "", also_off ? also_off : "");
    int on = kernels(c->g, outs, n, also_off), without = kernels(c->g, outs, n, off);
    check_opts(c, outs, n, TOL, (jg_opts){ .executor = JG_EXEC_JIT, .passes_off = also_off },
               "concat pass on");
    check_opts(c, outs, n, TOL, (jg_opts){ .executor = JG_EXEC_JIT, .passes_off = off },
               "concat pass off");
    return without - on;
}

Test(pass_concat, pieces_along_the_first_axis_are_written_in_place)
{
    for (int ti = 0; ti < 2; ti++) {
        tctx c;
        ctx_init(&c, 3 + (uint64_t)ti);
        jg_dtype t = FLOATS[ti];
        jg_node *a = jg_exp(input(&c, t, jg_shape(4, 16), SIGNED));
        jg_node *b = jg_tanh(input(&c, t, jg_shape(2, 16), SIGNED));
        jg_node *out = jg_sum(cat2(a, b, 0), jg_axes(1), false);
        cr_assert_eq(saved_kernels(&c, &out, 1, NULL), 1, "the concat's kernel is gone");
        /* [1, n, 16] pieces along axis 1: the same runs */
        jg_node *a3 = jg_reshape(input(&c, t, jg_shape(4, 16), SIGNED), jg_shape(1, 4, 16));
        jg_node *b3 = jg_reshape(input(&c, t, jg_shape(4, 16), SIGNED), jg_shape(1, 4, 16));
        jg_node *out3 = jg_sum(cat2(jg_exp(a3), jg_exp(b3), 1), jg_axes(2), false);
        cr_assert_eq(saved_kernels(&c, &out3, 1, NULL), 1);
        ctx_fini(&c);
    }
}

Test(pass_concat, misaligned_inner_or_output_pieces_keep_the_copy)
{
    tctx c;
    ctx_init(&c, 7);
    /* 3 x 5 floats: the second run would start at byte 60 */
    jg_node *a = jg_exp(input(&c, JG_F32, jg_shape(3, 5), SIGNED));
    jg_node *b = jg_tanh(input(&c, JG_F32, jg_shape(3, 5), SIGNED));
    jg_node *out = jg_sum(cat2(a, b, 0), jg_axes(1), false);
    cr_assert_eq(saved_kernels(&c, &out, 1, NULL), 0, "misaligned");
    /* along the last axis: rows interleave */
    jg_node *p = jg_exp(input(&c, JG_F32, jg_shape(4, 16), SIGNED));
    jg_node *q = jg_tanh(input(&c, JG_F32, jg_shape(4, 16), SIGNED));
    jg_node *inner = jg_sum(cat2(p, q, 1), jg_axes(0), false);
    cr_assert_eq(saved_kernels(&c, &inner, 1, NULL), 0, "inner axis");
    /* a piece that is an output keeps a buffer of its own */
    jg_node *outs[2] = { jg_sum(cat2(p, q, 0), jg_axes(1), false), p };
    cr_assert_eq(saved_kernels(&c, outs, 2, NULL), 0, "an output piece");
    ctx_fini(&c);
}

/* Two concats of the same pieces (cse off keeps both): the second is the first's bytes. */
Test(pass_concat, a_second_concat_of_the_same_pieces_is_the_same_buffer)
{
    tctx c;
    ctx_init(&c, 9);
    jg_node *a = jg_exp(input(&c, JG_F64, jg_shape(2, 8), SIGNED));
    jg_node *b = jg_tanh(input(&c, JG_F64, jg_shape(2, 8), SIGNED));
    jg_node *outs[2] = { jg_sum(cat2(a, b, 0), jg_axes(1), false),
                         jg_sum(cat2(a, b, 0), jg_axes(0), false) };
    cr_assert_eq(saved_kernels(&c, outs, 2, "cse"), 2, "both concats' kernels are gone");
    ctx_fini(&c);
}

/* A piece read again after the concat's reader, with temporaries in between that the arena
 * would like to put in the concat's bytes. */
Test(pass_concat, a_piece_read_late_keeps_its_bytes)
{
    tctx c;
    ctx_init(&c, 13);
    jg_node *x = input(&c, JG_F32, jg_shape(8, 16), SIGNED);
    jg_node *a = jg_exp(x), *b = jg_tanh(x);
    jg_node *s = jg_sum(cat2(a, b, 0), JG_ALL_AXES, false);
    jg_node *t = jg_matmul(jg_transpose(x), x); /* temporaries after the concat's reader */
    for (int i = 0; i < 4; i++)
        t = jg_matmul(t, jg_scale(t, 0.01));
    jg_node *late = jg_add(jg_matmul(a, t), jg_scale(b, 3));
    jg_node *outs[2] = { s, late };
    cr_assert_eq(saved_kernels(&c, outs, 2, NULL), 1);
    ctx_fini(&c);
}
