/* The JIT's runtime features: compiling on two threads at once, a CPU target override, and
 * training steps equal for 1 and 2 threads (the disk kernel cache: test_jit_cache.c). */
#include "support/support.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

TestSuite(jit_runtime);

static void *compile_and_run(void *arg)
{
    float *loss = arg;
    jg_graph *g = jg_graph_new();
    jg_program *p = t_mlp_step(g, &(jg_opts){ .num_threads = 1 });
    if (p) {
        t_mlp_feed(p);
        jg_program_run(p);
        jg_program_get(p, 0, loss, sizeof *loss);
    }
    jg_program_free(p);
    jg_graph_free(g);
    return NULL;
}

Test(jit_runtime, programs_compile_and_run_on_two_threads_at_once)
{
    float loss[2] = { -1, -1 }, alone = -2;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, compile_and_run, &loss[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    compile_and_run(&alone);
    cr_assert(loss[0] == alone && loss[1] == alone, "%g %g %g", loss[0], loss[1], alone);
}

Test(jit_runtime, an_avx2_target_gives_ymm_code_and_the_same_results)
{
    float l[2];
    for (int i = 0; i < 2; i++) {
        jg_graph *g = jg_graph_new();
        jg_opts o = { .keep_text = true };
        if (i)
            o.cpu_features = "-avx512f";
        jg_program *p = t_mlp_step(g, &o);
        cr_assert(p, "%s", jg_errmsg(g));
        jg_program_stats st;
        jg_program_stats_get(p, &st);
        if (i) {
            cr_assert_leq(st.vector_bits, 256);
            for (int k = 0; k < st.kernels; k++)
                cr_assert_null(strstr(jg_program_kernel_asm(p, k), "zmm"), "kernel %d", k);
        }
        t_mlp_feed(p);
        jg_program_run(p);
        jg_program_get(p, 0, &l[i], sizeof l[i]);
        jg_program_free(p);
        jg_graph_free(g);
    }
    cr_assert_float_eq(l[0], l[1], 1e-5);
}

Test(jit_runtime, training_steps_are_identical_for_one_and_two_threads)
{
    float w[2][20 * 32];
    for (int i = 0; i < 2; i++) {
        jg_graph *g = jg_graph_new();
        jg_program *p = t_mlp_step(g, &(jg_opts){ .num_threads = i + 1 });
        cr_assert(p);
        t_mlp_feed(p);
        for (int s = 0; s < 5; s++)
            cr_assert_eq(jg_program_run(p), JG_OK);
        jg_param_get(g, "w1", w[i], sizeof w[i]);
        jg_program_free(p);
        jg_graph_free(g);
    }
    cr_assert(memcmp(w[0], w[1], sizeof w[0]) == 0);
}

Test(jit_runtime, a_range_error_at_run_time_names_the_op)
{
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(10, 3));
    jg_node *i = jg_input(g, "i", JG_I32, jg_shape(4));
    jg_node *y = jg_take(x, i, 0);
    jg_program *p = jg_compile(g, &y, 1, NULL);
    float xv[30] = { 0 };
    int32_t iv[4] = { 1, 2, 12, 3 };
    jg_program_set(p, "x", xv, sizeof xv);
    jg_program_set(p, "i", iv, sizeof iv);
    cr_assert_eq(jg_program_run(p), JG_ERR_RANGE);
    cr_assert(strstr(jg_errmsg(p), "jg_take") &&
                  strstr(jg_errmsg(p), "index 12 out of range [0, 10) on axis 0"),
              "%s", jg_errmsg(p));
    float out[12];
    cr_assert_eq(jg_program_get(p, 0, out, sizeof out), JG_ERR_STATE, "a failed run has no outputs");
    jg_program_free(p);
    jg_graph_free(g);
}

/* flush_denormals: subnormal results become zero on every thread that runs a kernel
 * (1e-20 * 1e-20 = 1e-40 is below f32's smallest normal), subnormal inputs count as zero,
 * and the caller's floating-point state is what it was before the run. */
Test(jit_runtime, flush_denormals_zeroes_subnormals_and_restores_the_caller)
{
    enum { N = 1 << 16 }; /* large enough for both threads to take chunks */
    float *x = malloc(sizeof(float) * N), *sub = malloc(sizeof(float) * N);
    float *y = malloc(sizeof(float) * N), *z = malloc(sizeof(float) * N);
    cr_assert(x && sub && y && z);
    for (int i = 0; i < N; i++)
        x[i] = 1e-20f, sub[i] = 1e-40f;
    for (int flush = 0; flush < 2; flush++) {
        jg_graph *g = jg_graph_new();
        jg_node *xn = jg_input(g, "x", JG_F32, jg_shape(N));
        jg_node *sn = jg_input(g, "s", JG_F32, jg_shape(N));
        jg_node *outs[2] = { jg_mul(xn, xn), jg_add(jg_scale(sn, 1e30), xn) };
        jg_program *p = jg_compile(g, outs, 2, &(jg_opts){ .num_threads = 2,
                                                            .flush_denormals = flush });
        cr_assert(p, "%s", jg_errmsg(g));
        cr_assert_eq(jg_program_set(p, "x", x, sizeof(float) * N), JG_OK);
        cr_assert_eq(jg_program_set(p, "s", sub, sizeof(float) * N), JG_OK);
        volatile float tiny = 1e-20f; /* tiny * tiny is subnormal */
        cr_assert_eq(jg_program_run(p), JG_OK);
        cr_assert_eq(jg_program_get(p, 0, y, sizeof(float) * N), JG_OK);
        cr_assert_eq(jg_program_get(p, 1, z, sizeof(float) * N), JG_OK);
        int flushed = 0, zeroed_inputs = 0;
        for (int i = 0; i < N; i++) {
            flushed += y[i] == 0.0f;
            zeroed_inputs += fabsf(z[i] - 1e-20f) < 1e-26f; /* 1e-40 * 1e30 counted as 0 */
        }
        cr_expect_eq(flushed, flush ? N : 0, "flush %d: %d of %d products are 0", flush,
                     flushed, N);
        cr_expect_eq(zeroed_inputs, flush ? N : 0, "flush %d: %d of %d inputs read as 0", flush,
                     zeroed_inputs, N);
        /* the caller still computes subnormals */
        cr_expect(tiny * tiny * 1e6f > 0.0f, "flush %d: the caller's FTZ was left set", flush);
        jg_program_free(p);
        jg_graph_free(g);
    }
    free(x), free(sub), free(y), free(z);
}
