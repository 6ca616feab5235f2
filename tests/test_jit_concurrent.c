/* First compiles on many threads at once: LLVM's process-wide initialisation runs once
 * (jit/session.c), so 8 threads released together, each compiling (half of them on two
 * compile threads) and running a graph of its own in a fresh process, all finish with the
 * right result. Each round is a child process
 * (the first compile of a process is what raced) with a timeout, since the failure was a hang.
 * JG_STRESS_ROUNDS sets the rounds (make check: 5; make stress: 50). */
#include "support/support.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

TestSuite(jit_concurrent, .timeout = 900);

enum { THREADS = 8, ROUND_SECONDS = 60 };

static pthread_barrier_t start;

/* Thread i: sum(x * (i + 1)) and max(x^2) over x = 0 .. 63 + 8i, compiled and run; 1 when
 * right. */
static void *compile_own_graph(void *arg)
{
    int i = (int)(intptr_t)arg, n = 64 + 8 * i;
    pthread_barrier_wait(&start);
    jg_graph *g = jg_graph_new();
    jg_node *x = jg_input(g, "x", JG_F32, jg_shape(n));
    jg_node *outs[2] = {
        jg_sum(jg_scale(jg_exp(jg_log(jg_shift(x, 1))), i + 1), JG_ALL_AXES, false),
        jg_max(jg_square(x), JG_ALL_AXES, false), /* a second kernel to compile */
    };
    /* odd threads compile on 2 threads (session.c's parallel batch: a worker thread with a
     * target machine of its own, made while the others start LLVM up) */
    jg_program *p = jg_compile(g, outs, 2, &(jg_opts){ .num_threads = 1 + i % 2 });
    float xv[128], got[2] = { -1, -1 };
    for (int k = 0; k < n; k++)
        xv[k] = (float)k;
    bool ok = p && jg_program_set(p, "x", xv, sizeof(float) * (size_t)n) == JG_OK &&
              jg_program_run(p) == JG_OK && jg_program_get(p, 0, &got[0], sizeof(float)) == JG_OK &&
              jg_program_get(p, 1, &got[1], sizeof(float)) == JG_OK;
    double want = (i + 1) * ((double)n * (n - 1) / 2 + n), top = (double)(n - 1) * (n - 1);
    if (!ok)
        fprintf(stderr, "thread %d: %s\n", i, p ? jg_errmsg(p) : jg_errmsg(g));
    ok = ok && fabs(got[0] - want) <= 1e-4 * want && got[1] == top;
    jg_program_free(p);
    jg_graph_free(g);
    return (void *)(intptr_t)ok;
}

/* One round in this (child) process: 0 when every thread got its result. */
static int round_in_child(void)
{
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, compile_own_graph, (void *)(intptr_t)i);
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        bad += !ok;
    }
    return bad;
}

Test(jit_concurrent, eight_first_compiles_at_once)
{
    const char *env = getenv("JG_STRESS_ROUNDS");
    int rounds = env ? atoi(env) : 5, passed = 0;
    for (int r = 0; r < rounds; r++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0, "fork");
        if (pid == 0)
            _exit(round_in_child());
        int status = 0;
        time_t deadline = time(NULL) + ROUND_SECONDS;
        pid_t done;
        while ((done = waitpid(pid, &status, WNOHANG)) == 0 && time(NULL) < deadline)
            nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        if (done == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            cr_assert_fail("round %d: hung for %d s (%d of %d rounds passed before)", r, ROUND_SECONDS,
                    passed, rounds);
        }
        cr_assert(WIFEXITED(status), "round %d: the child died (signal %d)", r,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        cr_assert_eq(WEXITSTATUS(status), 0, "round %d: %d of %d threads failed", r,
                     WEXITSTATUS(status), THREADS);
        passed++;
    }
    cr_log_info("%d of %d rounds passed", passed, rounds);
}
