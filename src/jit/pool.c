/* The kernel thread pool: workers spin on an atomic job word, then sleep on a condvar. The
 * caller publishes a run by bumping the word's generation, runs chunk 0, steals the chunks no
 * worker has claimed yet (so a worker that is not running, e.g. on a busy machine, does not
 * hold the run up), then waits on an atomic count of unfinished chunks, spinning first. */
#include "jit/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* How long a worker waiting for work, or a caller waiting for workers, spins before it
 * sleeps: longer than the gap between two kernels of a step, short enough that idle pools
 * (or two pools sharing two cores) give the CPU back quickly. */
#define POOL_SPIN_NS 100000
/* After this much spinning, also yield now and then: when threads outnumber cores, the
 * thread we wait for may be runnable but not running, and yielding hands it our core (two
 * 2-thread pools on 2 cores ran ~2x slower without it). */
#define POOL_YIELD_AFTER_NS 5000
#define POOL_LINE 64

/* The job word: generation << 16 | chunk count of the run. A worker must learn both from one
 * load: with two loads it could pair one run's generation with the next run's count. Count 0
 * means shut down. */
#define JOB_COUNT_BITS 16
#define JOB_WORD(gen, k) (((gen) << JOB_COUNT_BITS) | (uint64_t)(k))
#define JOB_GEN(w) ((w) >> JOB_COUNT_BITS)
#define JOB_COUNT(w) ((int)((w) & ((1u << JOB_COUNT_BITS) - 1)))

_Static_assert(JIT_POOL_MAX_THREADS < (1 << JOB_COUNT_BITS), "the chunk count fits the job word");

typedef struct pool_slot {
    /* The last generation in which this chunk was claimed. Claiming is a CAS from a value
     * below the run's generation, so the owning worker and thieves (the caller, other
     * workers) run each chunk exactly once, and a late claimer of a finished run fails. */
    _Alignas(POOL_LINE) _Atomic uint64_t claim;
    jit_pool *pool;
    pthread_t thread;
    int index;
} pool_slot;

struct jit_pool {
    /* Written by the caller each run, read by the workers it wakes: one cache line. The
     * plain fields are published by the release store of `job`, and not rewritten before
     * every chunk of the run is done (pending == 0), so claimers read them race-free. */
    _Alignas(POOL_LINE) _Atomic uint64_t job;
    jit_pool_fn fn;
    void *ctx;
    int64_t n, align;

    /* Chunks of the current run not yet finished; the caller spins on it. */
    _Alignas(POOL_LINE) _Atomic int pending;

    _Alignas(POOL_LINE) uint64_t gen; /* the caller's: the last published generation */
    int n_threads;
    int n_started;                    /* workers running (less than n_threads - 1 only while
                                         jit_pool_new fails halfway) */
    pool_slot *slots;                 /* n_threads; slot 0 is the caller's chunk, never claimed */
    /* Sleeping: workers wait on `wake` for a new generation, the caller on `done` for
     * pending == 0. The counters say whether a signal is needed, so hot runs never touch
     * the mutex. Both sides use seq_cst (store, then load the other side's variable), so
     * either the sleeper sees the change or the changer sees the sleeper. */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    _Atomic int sleepers;
    _Atomic int caller_sleeping;
};

/* A spin-wait hint: lets the sibling hyperthread run and saves power. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_ia32_pause)
#define cpu_pause() __builtin_ia32_pause()
#endif
#endif
#ifndef cpu_pause
#define cpu_pause() sched_yield()
#endif

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One step of a bounded spin started at *t0 (0: not yet timed). Returns false once the
 * budget is spent. The clock is read every 32 steps: a pause is ~10-150 cycles. */
static bool spin_step(int64_t *t0, unsigned *steps)
{
    cpu_pause();
    if (++*steps % 32)
        return true;
    int64_t t = now_ns();
    if (*t0 == 0)
        *t0 = t;
    if (t - *t0 > POOL_SPIN_NS)
        return false;
    if (t - *t0 > POOL_YIELD_AFTER_NS)
        sched_yield();
    return true;
}

/* ---- the split ------------------------------------------------------------------------ */

static int64_t units_of(int64_t n, int64_t align)
{
    return (n - 1) / align + 1; /* ceil without overflow; n >= 1 */
}

int64_t jit_pool_chunk_begin(int64_t n, int64_t align, int k, int c)
{
    if (align < 1)
        align = 1;
    if (n <= 0 || c <= 0)
        return 0;
    if (c >= k)
        return n;
    /* units align blocks (the last one partial), k chunks of base blocks, the first
     * `extra` one block more: the last chunk is the smallest. c * base + min(c, extra) <=
     * units - 1 here, so the product is below n and cannot overflow. */
    int64_t units = units_of(n, align), base = units / k, extra = units % k;
    return align * (c * base + (c < extra ? c : extra));
}

int jit_pool_split(int64_t n, int64_t align, int64_t min_chunk, int threads)
{
    if (n <= 0)
        return 0;
    if (align < 1)
        align = 1;
    int64_t units = units_of(n, align);
    int64_t k = threads < 1 ? 1 : threads;
    if (k > units)
        k = units;
    /* The last chunk is the smallest; drop chunks until it is worth a thread. */
    while (k > 1 && n - jit_pool_chunk_begin(n, align, (int)k, (int)k - 1) < min_chunk)
        k--;
    return (int)k;
}

/* ---- running chunks --------------------------------------------------------------------- */

static void run_chunk(jit_pool *p, int k, int c)
{
    p->fn(p->ctx, jit_pool_chunk_begin(p->n, p->align, k, c),
          jit_pool_chunk_begin(p->n, p->align, k, c + 1), c);
}

static bool claim(jit_pool *p, int c, uint64_t gen)
{
    uint64_t seen = atomic_load_explicit(&p->slots[c].claim, memory_order_relaxed);
    return seen < gen &&
           atomic_compare_exchange_strong_explicit(&p->slots[c].claim, &seen, gen,
                                                   memory_order_acquire, memory_order_relaxed);
}

/* Runs chunk c of run (gen, k) if nobody has claimed it; counts it done. */
static void try_chunk(jit_pool *p, int c, uint64_t gen, int k)
{
    if (!claim(p, c, gen))
        return;
    run_chunk(p, k, c);
    /* A release at least: the caller's acquire of pending == 0 must see the chunk's writes;
     * seq_cst for the handshake with a sleeping caller (see struct jit_pool). */
    if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_seq_cst) == 1 &&
        atomic_load_explicit(&p->caller_sleeping, memory_order_seq_cst)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

/* A worker's part of run `w`: its own chunk first (its data stays in its cache from one
 * kernel to the next), then any other chunk whose owner has not started. */
static void worker_run(jit_pool *p, int self, uint64_t w)
{
    uint64_t gen = JOB_GEN(w);
    int k = JOB_COUNT(w);
    if (self < k)
        try_chunk(p, self, gen, k);
    for (int c = 1; c < k; c++)
        if (c != self)
            try_chunk(p, c, gen, k);
}

/* Whether job word w is news to a worker that has seen generation *seen (a run, or the
 * shutdown); records it as seen. */
static bool job_is_news(uint64_t w, uint64_t *seen)
{
    if (JOB_GEN(w) == *seen)
        return false;
    *seen = JOB_GEN(w);
    return true;
}

static uint64_t worker_wait(jit_pool *p, uint64_t *seen)
{
    int64_t t0 = 0;
    unsigned steps = 0;
    do {
        uint64_t w = atomic_load_explicit(&p->job, memory_order_acquire);
        if (job_is_news(w, seen))
            return w;
    } while (spin_step(&t0, &steps));

    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
    uint64_t w;
    while (!job_is_news(w = atomic_load_explicit(&p->job, memory_order_seq_cst), seen))
        pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
    return w;
}

static void *worker_main(void *arg)
{
    pool_slot *slot = arg;
    jit_pool *p = slot->pool;
    uint64_t seen = 0;
    for (;;) {
        uint64_t w = worker_wait(p, &seen);
        if (JOB_COUNT(w) == 0)
            return NULL;
        worker_run(p, slot->index, w);
    }
}

/* Publishes job word w and wakes sleeping workers. */
static void publish(jit_pool *p, uint64_t w)
{
    atomic_store_explicit(&p->job, w, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
}

void jit_pool_run(jit_pool *p, int64_t n, int64_t align, int64_t min_chunk, jit_pool_fn fn,
                  void *ctx)
{
    if (align < 1)
        align = 1;
    int k = jit_pool_split(n, align, min_chunk, jit_pool_threads(p));
    if (k == 0)
        return;
    if (k == 1) {
        fn(ctx, 0, n, 0);
        return;
    }

    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->align = align;
    atomic_store_explicit(&p->pending, k - 1, memory_order_relaxed);
    uint64_t gen = ++p->gen;
    publish(p, JOB_WORD(gen, (uint64_t)k));

    run_chunk(p, k, 0);
    for (int c = 1; c < k; c++)
        try_chunk(p, c, gen, k);

    int64_t t0 = 0;
    unsigned steps = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        if (!spin_step(&t0, &steps))
            break;
    if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store_explicit(&p->caller_sleeping, 1, memory_order_seq_cst);
        while (atomic_load_explicit(&p->pending, memory_order_seq_cst) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_store_explicit(&p->caller_sleeping, 0, memory_order_relaxed);
        pthread_mutex_unlock(&p->mu);
    }
}

/* ---- lifetime ------------------------------------------------------------------------ */

int jit_pool_threads(const jit_pool *p)
{
    return p ? p->n_threads : 1;
}

int jit_pool_default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > JIT_POOL_MAX_THREADS ? JIT_POOL_MAX_THREADS : (int)n;
}

jit_pool *jit_pool_new(int n_threads)
{
    if (n_threads < 1 || n_threads > JIT_POOL_MAX_THREADS)
        return NULL;
    /* aligned_alloc: the per-line layout above only helps if the objects are aligned. */
    jit_pool *p = aligned_alloc(POOL_LINE, sizeof *p);
    pool_slot *slots = aligned_alloc(POOL_LINE, sizeof *slots * (size_t)n_threads);
    if (!p || !slots) {
        free(p);
        free(slots);
        return NULL;
    }
    p->fn = NULL;
    p->ctx = NULL;
    p->n = p->align = 0;
    p->gen = 0;
    p->n_threads = n_threads;
    p->n_started = 0;
    p->slots = slots;
    atomic_init(&p->job, JOB_WORD((uint64_t)0, 1u));
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->caller_sleeping, 0);
    for (int i = 0; i < n_threads; i++) {
        atomic_init(&slots[i].claim, 0);
        slots[i].pool = p;
        slots[i].index = i;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(slots);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(slots);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->done, NULL) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->mu);
        free(slots);
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        if (pthread_create(&slots[i].thread, NULL, worker_main, &slots[i]) != 0) {
            jit_pool_free(p); /* joins the ones started */
            return NULL;
        }
        p->n_started = i;
    }
    return p;
}

void jit_pool_free(jit_pool *p)
{
    if (!p)
        return;
    publish(p, JOB_WORD(p->gen + 1, 0u));
    for (int i = 1; i <= p->n_started; i++)
        pthread_join(p->slots[i].thread, NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p);
}
