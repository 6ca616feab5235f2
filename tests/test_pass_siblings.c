/* Pass "siblings" (src/compiler/fuse_siblings.c), its pointwise half: elementwise groups of
 * one shape that read one another or stream the same input become one loop storing each
 * (emit_elementwise with several roots). Adam's three updates of a weight are one kernel and
 * still written in place; an LSTM cell's state and output, read through slices of the gate
 * block, are one kernel; a part read through a permute is not taken from the values of the
 * point; a GEMM reading one group keeps a later one apart. Values agree with the reference
 * executor and with the pass off. (Its reducing half is tested in test_fuse.c and
 * test_pass_bn_relu.c.) */
#include "support/jit_compare.h"
#include "support/pass_check.h"

TestSuite(pass_siblings);

static jg_program_stats stats_of(jg_graph *g, jg_node *const *outs, int n, const char *off,
                                 const jg_update *up, int n_up)
{
    return t_stats(g, outs, n, &(jg_opts){ .passes_off = off, .updates = up,
                                           .n_updates = n_up, .num_threads = 2 });
}

/* Adam on one weight: m, v and w updated from the gradient input, each update reading its
 * own state where it writes. */
enum { ROWS = 37, COLS = 19 };

static jg_node *adam(jg_graph *g, jg_update *up)
{
    jg_shape s = jg_shape(ROWS, COLS);
    jg_node *w = jg_param_as(g, "w", JG_F64, s, jg_normal(0, 1));
    jg_node *m = jg_param_as(g, "m", JG_F64, s, jg_normal(0, 0.1));
    jg_node *v = jg_param_as(g, "v", JG_F64, s, jg_uniform(0.01, 0.1));
    jg_node *grad = jg_input(g, "grad", JG_F64, s);
    jg_node *m2 = jg_add(jg_scale(m, 0.9), jg_scale(grad, 0.1));
    jg_node *v2 = jg_add(jg_scale(v, 0.999), jg_scale(jg_square(grad), 0.001));
    jg_node *w2 = jg_sub(w, jg_div(jg_scale(m2, 0.01), jg_shift(jg_sqrt(v2), 1e-8)));
    up[0] = (jg_update){ m, m2 };
    up[1] = (jg_update){ v, v2 };
    up[2] = (jg_update){ w, w2 };
    return jg_sum(grad, JG_ALL_AXES, false); /* an output that needs no old state */
}

/* Runs one step of adam on the given executor and siblings setting; the three new states. */
static void adam_step(jg_executor executor, const char *off, double *state)
{
    jg_graph *g = jg_graph_new();
    jg_update up[3];
    jg_node *out = adam(g, up);
    double grad[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        grad[i] = sin(0.37 * i);
    jg_program *p = jg_compile(g, &out, 1, &(jg_opts){ .executor = executor, .passes_off = off,
                                                       .updates = up, .n_updates = 3 });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "grad", grad, sizeof grad), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    const char *names[3] = { "m", "v", "w" };
    for (int k = 0; k < 3; k++)
        cr_assert_eq(jg_param_get(g, names[k], state + k * ROWS * COLS,
                                  ROWS * COLS * sizeof *state), JG_OK);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(pass_siblings, adam_updates_of_a_weight_are_one_kernel_in_place)
{
    jg_graph *g = jg_graph_new();
    jg_update up[3];
    jg_node *out = adam(g, up);
    jg_program_stats on = stats_of(g, &out, 1, NULL, up, 3);
    jg_program_stats off = stats_of(g, &out, 1, "siblings", up, 3);
    cr_assert_eq(off.kernels, 4, "the sum, then m, v and w each: %d", off.kernels);
    cr_assert_eq(on.kernels, 2, "the sum, then one update kernel: %d", on.kernels);
    cr_assert_eq(on.in_place_updates, 3, "in place: %d", on.in_place_updates);
    cr_assert_leq(on.arena_bytes, 64, "nothing but the sum's scalar: %zu", on.arena_bytes);
    jg_graph_free(g);
    static double ref[3 * ROWS * COLS], with[3 * ROWS * COLS], without[3 * ROWS * COLS];
    adam_step(JG_EXEC_REFERENCE, NULL, ref);
    adam_step(JG_EXEC_JIT, NULL, with);
    adam_step(JG_EXEC_JIT, "siblings", without);
    for (int i = 0; i < 3 * ROWS * COLS; i++) {
        cr_assert(with[i] == without[i], "element %d: %.17g with, %.17g without", i, with[i],
                  without[i]);
        cr_assert(close_enough(with[i], ref[i], 1e-14), "element %d: %.17g, reference %.17g",
                  i, with[i], ref[i]);
    }
}

/* c' = f c + i g and h = o tanh(c'), the gates slices of one [B, 4H] block. */
Test(pass_siblings, an_lstm_cells_state_and_output_are_one_kernel)
{
    for (int ti = 0; ti < 2; ti++) {
        tctx c;
        ctx_init(&c, 11 + (uint64_t)ti);
        enum { B = 6, H = 17 };
        jg_node *z = input(&c, FLOATS[ti], jg_shape(B, 4 * H), SIGNED);
        jg_node *cell = input(&c, FLOATS[ti], jg_shape(B, H), SIGNED);
        jg_node *gate[4];
        for (int k = 0; k < 4; k++)
            gate[k] = jg_slice(z, 1, k * H, (k + 1) * H, 1);
        jg_node *c2 = jg_add(jg_mul(jg_sigmoid(gate[1]), cell),
                             jg_mul(jg_sigmoid(gate[0]), jg_tanh(gate[2])));
        jg_node *outs[2] = { c2, jg_mul(jg_sigmoid(gate[3]), jg_tanh(c2)) };
        int on = stats_of(c.g, outs, 2, NULL, NULL, 0).kernels;
        int off = stats_of(c.g, outs, 2, "siblings", NULL, 0).kernels;
        cr_assert_eq(off, 2, "c' and h: %d", off);
        cr_assert_eq(on, 1, "one loop stores both: %d", on);
        check(&c, outs, 2, TOL, "lstm cell");
        ctx_fini(&c);
    }
}

/* exp(x) is a part, read at the point by one part and through a transpose by another: the
 * transposed read must compute it at its own index, not reuse the point's value. */
Test(pass_siblings, a_part_read_through_a_permute_is_computed_at_its_index)
{
    tctx c;
    ctx_init(&c, 5);
    jg_node *x = input(&c, JG_F64, jg_shape(9, 9), SIGNED);
    jg_node *e = jg_exp(x);
    jg_node *outs[2] = { jg_shift(e, 1), jg_scale(jg_transpose(e), 2) };
    cr_assert_eq(stats_of(c.g, outs, 2, NULL, NULL, 0).kernels, 1);
    check(&c, outs, 2, TOL, "exp(x) + 1 and 2 exp(x)^T");
    ctx_fini(&c);
}

/* a and b both stream x, but a GEMM between them reads a: merged, a would run after it. */
Test(pass_siblings, a_gemm_reading_a_part_keeps_later_groups_apart)
{
    tctx c;
    ctx_init(&c, 9);
    jg_node *x = input(&c, JG_F64, jg_shape(8, 8), SIGNED);
    jg_node *w = input(&c, JG_F64, jg_shape(8, 8), SIGNED);
    jg_node *a = jg_exp(x);
    jg_node *outs[3] = { jg_matmul(a, w), jg_scale(jg_tanh(x), 3), a };
    int on = stats_of(c.g, outs, 3, NULL, NULL, 0).kernels;
    cr_assert_eq(on, 3, "exp, the GEMM, tanh: %d", on);
    check(&c, outs, 3, TOL, "exp(x) w and 3 tanh(x)");
    t_input *xi = input_of(&c, x), *wi = input_of(&c, w);
    jg_binding in[2] = { { xi->name, xi->data, xi->bytes }, { wi->name, wi->data, wi->bytes } };
    t_assert_pass_neutral(c.g, outs, 3, "siblings", in, 2, 0);
    ctx_fini(&c);
}

/* b = exp(x) is a part with a buffer (an output reads it); a reads b's first row through a
 * contiguous slice, an alias of b's buffer: merged, a would load b's row before the kernel
 * stored it. They must stay apart (or agree with the reference). */
Test(pass_siblings, a_part_read_through_an_alias_is_not_merged)
{
    tctx c;
    ctx_init(&c, 17);
    jg_node *x = input(&c, JG_F32, jg_shape(4, 16), SIGNED);
    jg_node *b = jg_exp(x);
    jg_node *row = jg_slice(b, 0, 0, 1, 1);
    jg_node *outs[2] = { jg_shift(b, 1), jg_mul(jg_tanh(x), row) };
    cr_assert_eq(stats_of(c.g, outs, 2, NULL, NULL, 0).kernels, 2);
    check(&c, outs, 2, TOL, "exp(x) + 1 and tanh(x) * exp(x)[0]");
    ctx_fini(&c);
}

/* v' = 0.9 v + g is written in place into v unless a part of its kernel reads v' elsewhere
 * than where it writes: o = 2 v'^T computes v' at the transposed index from v, which the
 * kernel may already have overwritten there. */
static void transposed_update(jg_executor ex, double *state, double *o)
{
    enum { N = 16 };
    jg_graph *g = jg_graph_new();
    jg_node *v = jg_param_as(g, "v", JG_F64, jg_shape(N, N), jg_normal(0, 1));
    jg_node *grad = jg_input(g, "grad", JG_F64, jg_shape(N, N));
    jg_node *v2 = jg_add(jg_scale(v, 0.9), grad);
    jg_node *out = jg_scale(jg_transpose(v2), 2);
    jg_update up = { v, v2 };
    double gv[N * N];
    for (int i = 0; i < N * N; i++)
        gv[i] = cos(0.3 * i);
    jg_program *p = jg_compile(g, &out, 1, &(jg_opts){ .executor = ex, .updates = &up,
                                                       .n_updates = 1, .num_threads = 2 });
    cr_assert(p, "%s", jg_errmsg(g));
    cr_assert_eq(jg_program_set(p, "grad", gv, sizeof gv), JG_OK);
    cr_assert_eq(jg_program_run(p), JG_OK, "%s", jg_errmsg(p));
    cr_assert_eq(jg_program_get(p, 0, o, N * N * sizeof *o), JG_OK);
    cr_assert_eq(jg_param_get(g, "v", state, N * N * sizeof *state), JG_OK);
    jg_program_free(p);
    jg_graph_free(g);
}

Test(pass_siblings, an_update_read_elsewhere_by_a_part_is_not_written_in_place)
{
    double ref_v[256], ref_o[256], v[256], o[256];
    transposed_update(JG_EXEC_REFERENCE, ref_v, ref_o);
    transposed_update(JG_EXEC_JIT, v, o);
    for (int i = 0; i < 256; i++) {
        cr_assert(close_enough(v[i], ref_v[i], 1e-14), "v[%d]: %g, reference %g", i, v[i],
                  ref_v[i]);
        cr_assert(close_enough(o[i], ref_o[i], 1e-14), "o[%d]: %g, reference %g", i, o[i],
                  ref_o[i]);
    }
}
