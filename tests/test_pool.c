/* The kernel thread pool: every index visited once, chunk boundaries on align, a split that
 * depends only on its arguments, inline runs, concurrent pools, lifetimes, many runs in a row
 * through both the spinning and the sleeping hand-offs, idle workers asleep. Criterion does
 * not start under TSan (Snaipe/Criterion#274): to check for races, build this file against a
 * stand-in <criterion/criterion.h> that defines Test, TestSuite and the cr_assert macros. */
#include "jit/pool.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

TestSuite(pool, .timeout = 120);

#define MAX_T 8

/* What a run did: per-index visit counts, and per chunk (indexed by `thread`, which is the
 * chunk index) its range and whether the caller ran it. */
typedef struct visit_log {
    _Atomic int *visits;
    int64_t n;
    pthread_t caller;
    _Atomic int calls;
    int64_t begin[MAX_T], end[MAX_T];
    int hits[MAX_T];
    bool on_caller[MAX_T];
    bool bad_thread;
} visit_log;

static void record(void *ctx, int64_t begin, int64_t end, int thread)
{
    visit_log *v = ctx;
    atomic_fetch_add(&v->calls, 1);
    if (thread < 0 || thread >= MAX_T) {
        v->bad_thread = true; /* only this call writes it; read after the run */
        return;
    }
    /* Each chunk index is used by one call per run, so these slots are not shared. */
    v->begin[thread] = begin;
    v->end[thread] = end;
    v->hits[thread]++;
    v->on_caller[thread] = pthread_equal(pthread_self(), v->caller);
    for (int64_t i = begin; i < end; i++)
        if (i >= 0 && i < v->n)
            atomic_fetch_add_explicit(&v->visits[i], 1, memory_order_relaxed);
}

static void log_reset(visit_log *v, int64_t n)
{
    free(v->visits);
    memset(v, 0, sizeof *v);
    v->n = n;
    v->visits = calloc(n > 0 ? (size_t)n : 1, sizeof *v->visits);
    cr_assert(v->visits);
    v->caller = pthread_self();
}

/* Runs once and checks everything the contract promises about that run. */
static void check_run(jit_pool *p, int64_t n, int64_t align, int64_t min_chunk, visit_log *v)
{
    log_reset(v, n);
    jit_pool_run(p, n, align, min_chunk, record, v);
    int threads = jit_pool_threads(p);
    int k = jit_pool_split(n, align, min_chunk, threads);
    int64_t a = align < 1 ? 1 : align;
    cr_assert(!v->bad_thread, "a thread index outside [0, %d)", MAX_T);
    cr_assert_eq(atomic_load(&v->calls), k,
                 "n=%lld align=%lld min=%lld t=%d: %d calls, split says %d", (long long)n,
                 (long long)align, (long long)min_chunk, threads, atomic_load(&v->calls), k);
    cr_assert(k <= threads && (n <= 0 ? k == 0 : k >= 1));
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(atomic_load(&v->visits[i]), 1,
                     "n=%lld align=%lld min=%lld t=%d: index %lld visited %d times",
                     (long long)n, (long long)align, (long long)min_chunk, threads,
                     (long long)i, atomic_load(&v->visits[i]));
    int64_t at = 0;
    for (int c = 0; c < k; c++) {
        cr_assert_eq(v->hits[c], 1, "chunk %d ran %d times", c, v->hits[c]);
        cr_assert_eq(v->begin[c], at, "chunks are contiguous and in index order");
        cr_assert_eq(v->begin[c], jit_pool_chunk_begin(n, align, k, c));
        cr_assert_eq(v->end[c], jit_pool_chunk_begin(n, align, k, c + 1));
        cr_assert(v->end[c] > v->begin[c], "chunk %d is empty", c);
        cr_assert_eq(v->begin[c] % a, 0, "chunk %d begins at %lld, align %lld", c,
                     (long long)v->begin[c], (long long)a);
        cr_assert(v->end[c] == n || v->end[c] % a == 0);
        if (k > 1)
            cr_assert_geq(v->end[c] - v->begin[c], min_chunk, "chunk %d below min_chunk", c);
        at = v->end[c];
    }
    cr_assert_eq(at, n > 0 ? n : 0);
    if (k > 0)
        cr_assert(v->on_caller[0], "chunk 0 runs on the calling thread");
}

Test(pool, every_index_once_for_many_shapes)
{
    static const int64_t ns[] = { 0,  1,  2,  3,  4,   5,    7,    8,   9, 15,
                                  16, 17, 63, 64, 65, 100, 1000, 1001, 4099 };
    static const int64_t aligns[] = { 0, 1, 2, 3, 4, 7, 8, 16, 64, 1000, 5000 };
    static const int64_t mins[] = { 0, 1, 2, 3, 10, 100, 1000, 100000 };
    visit_log v = { 0 };
    for (int t = 1; t <= 5; t++) {
        jit_pool *p = jit_pool_new(t);
        cr_assert(p);
        cr_assert_eq(jit_pool_threads(p), t);
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
            for (size_t j = 0; j < sizeof aligns / sizeof *aligns; j++)
                for (size_t m = 0; m < sizeof mins / sizeof *mins; m++)
                    check_run(p, ns[i], aligns[j], mins[m], &v);
        jit_pool_free(p);
    }
    free(v.visits);
}

Test(pool, uses_every_thread_when_chunks_are_big_enough)
{
    cr_assert_eq(jit_pool_split(100, 1, 1, 4), 4);
    cr_assert_eq(jit_pool_split(3, 1, 1, 4), 3, "n < threads: one index per chunk");
    cr_assert_eq(jit_pool_split(10, 4, 1, 4), 3, "three align blocks, the last partial");
    cr_assert_eq(jit_pool_split(100, 1, 30, 4), 3, "chunks of 25 are below min_chunk 30");
    cr_assert_eq(jit_pool_split(100, 1, 51, 4), 1);
    cr_assert_eq(jit_pool_split(0, 1, 1, 4), 0);
    /* 10 in blocks of 4 over 2 threads: [0, 8) and [8, 10); the last chunk takes the rest. */
    cr_assert_eq(jit_pool_chunk_begin(10, 4, 2, 1), 8);
    cr_assert_eq(jit_pool_chunk_begin(10, 4, 3, 1), 4);
    cr_assert_eq(jit_pool_chunk_begin(10, 4, 3, 2), 8);
    cr_assert_eq(jit_pool_chunk_begin(10, 4, 3, 3), 10);
    /* Sizes differ by at most one block: 7 blocks over 3 chunks are 3, 2, 2. */
    cr_assert_eq(jit_pool_chunk_begin(7, 1, 3, 1), 3);
    cr_assert_eq(jit_pool_chunk_begin(7, 1, 3, 2), 5);
}

Test(pool, split_is_deterministic_across_runs_and_pools)
{
    jit_pool *a = jit_pool_new(3), *b = jit_pool_new(3);
    cr_assert(a && b);
    visit_log v = { 0 };
    static const int64_t cases[][3] = { { 1000, 8, 1 }, { 1001, 16, 50 }, { 7, 2, 1 },
                                        { 123457, 64, 4096 } };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int64_t want[MAX_T + 1] = { 0 };
        int k = 0;
        for (int rep = 0; rep < 200; rep++) {
            jit_pool *p = rep % 2 ? b : a;
            check_run(p, cases[i][0], cases[i][1], cases[i][2], &v);
            int got = atomic_load(&v.calls);
            if (rep == 0) {
                k = got;
                for (int c = 0; c < k; c++)
                    want[c] = v.begin[c];
                want[k] = cases[i][0];
            }
            cr_assert_eq(got, k);
            for (int c = 0; c < k; c++)
                cr_assert(v.begin[c] == want[c] && v.end[c] == want[c + 1],
                          "case %zu run %d: chunk %d moved", i, rep, c);
        }
    }
    free(v.visits);
    jit_pool_free(a);
    jit_pool_free(b);
}

Test(pool, one_thread_pool_runs_inline_on_the_caller)
{
    jit_pool *p = jit_pool_new(1);
    cr_assert(p);
    visit_log v = { 0 };
    check_run(p, 1000, 4, 1, &v);
    cr_assert_eq(atomic_load(&v.calls), 1);
    cr_assert(v.on_caller[0] && v.begin[0] == 0 && v.end[0] == 1000);
    jit_pool_free(p);

    /* So does a bigger pool when the chunks would be too small, and a NULL pool. */
    p = jit_pool_new(4);
    cr_assert(p);
    check_run(p, 1000, 1, 600, &v);
    cr_assert(atomic_load(&v.calls) == 1 && v.on_caller[0] && v.end[0] == 1000);
    jit_pool_free(p);
    cr_assert_eq(jit_pool_threads(NULL), 1);
    check_run(NULL, 50, 1, 1, &v);
    cr_assert(atomic_load(&v.calls) == 1 && v.on_caller[0] && v.end[0] == 50);
    free(v.visits);
}

/* Sums indices into per-chunk slots: chunk indices are distinct, so no atomics. */
typedef struct sum_job {
    int64_t part[MAX_T];
} sum_job;

static void sum_range(void *ctx, int64_t begin, int64_t end, int thread)
{
    sum_job *s = ctx;
    int64_t acc = 0;
    for (int64_t i = begin; i < end; i++)
        acc += i;
    s->part[thread] = acc;
}

static int64_t sum_run(jit_pool *p, int64_t n)
{
    sum_job s = { { 0 } };
    jit_pool_run(p, n, 4, 1, sum_range, &s);
    int64_t total = 0;
    for (int c = 0; c < MAX_T; c++)
        total += s.part[c];
    return total;
}

typedef struct user {
    int threads, runs;
    bool ok;
} user;

static void *use_own_pool(void *arg)
{
    user *u = arg;
    jit_pool *p = jit_pool_new(u->threads);
    u->ok = p != NULL;
    for (int r = 0; p && r < u->runs; r++) {
        int64_t n = 1 + r % 3000;
        if (sum_run(p, n) != n * (n - 1) / 2)
            u->ok = false;
    }
    jit_pool_free(p);
    return NULL;
}

Test(pool, two_pools_run_concurrently_from_two_threads)
{
    /* On two cores this is four spinning threads: spinning must stay bounded. */
    user u[2] = { { 2, 20000, false }, { 2, 20000, false } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, use_own_pool, &u[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert(u[0].ok && u[1].ok);

    /* And a pool used from a thread while another thread uses its own bigger one. */
    user w[2] = { { 3, 5000, false }, { 4, 5000, false } };
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, use_own_pool, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert(w[0].ok && w[1].ok);
}

Test(pool, freed_right_after_creation)
{
    for (int i = 0; i < 200; i++)
        jit_pool_free(jit_pool_new(1 + i % 6));
    jit_pool_free(NULL);
    cr_assert_null(jit_pool_new(0));
    cr_assert_null(jit_pool_new(-3));
    cr_assert_null(jit_pool_new(JIT_POOL_MAX_THREADS + 1));
    cr_assert_geq(jit_pool_default_threads(), 1);
}

Test(pool, ten_thousand_runs_in_a_row)
{
    for (int t = 2; t <= 4; t++) {
        jit_pool *p = jit_pool_new(t);
        cr_assert(p);
        for (int r = 0; r < 10000; r++) {
            int64_t n = 1 + r % 500;
            cr_assert_eq(sum_run(p, n), n * (n - 1) / 2, "run %d", r);
        }
        jit_pool_free(p);
    }
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    nanosleep(&ts, NULL);
}

Test(pool, runs_after_the_workers_fell_asleep)
{
    /* Gaps longer than the spin budget put the workers on the condvar between runs. */
    jit_pool *p = jit_pool_new(3);
    cr_assert(p);
    visit_log v = { 0 };
    for (int r = 0; r < 50; r++) {
        sleep_us(r % 2 ? 1000 : 150);
        check_run(p, 999, 8, 1, &v);
        cr_assert_eq(atomic_load(&v.calls), 3);
    }
    free(v.visits);
    jit_pool_free(p);
}

static void slow_workers(void *ctx, int64_t begin, int64_t end, int thread)
{
    /* Chunk 0 sleeps a little so the worker claims chunk 1 before the caller could steal it;
     * chunk 1 then outlasts the caller's spin budget, so the caller sleeps too. */
    sleep_us(thread == 0 ? 300 : 2000);
    sum_range(ctx, begin, end, thread);
}

Test(pool, caller_waits_for_slow_chunks)
{
    jit_pool *p = jit_pool_new(2);
    cr_assert(p);
    for (int r = 0; r < 20; r++) {
        sum_job s = { { 0 } };
        jit_pool_run(p, 1000, 1, 1, slow_workers, &s);
        cr_assert_eq(s.part[0] + s.part[1], 1000 * 999 / 2);
    }
    jit_pool_free(p);
}

static int64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

Test(pool, idle_workers_sleep_instead_of_spinning)
{
    jit_pool *p = jit_pool_new(3);
    cr_assert(p);
    cr_assert_eq(sum_run(p, 1000), 1000 * 999 / 2);
    sleep_us(20000); /* well past the spin budget */
    int64_t t0 = cpu_ns();
    sleep_us(300000);
    int64_t used = cpu_ns() - t0;
    /* Spinning workers would use ~600 ms of CPU here (two of them for 300 ms). */
    cr_assert(used < 30000000, "idle pool used %lld ns of CPU in 300 ms", (long long)used);
    jit_pool_free(p);
}
