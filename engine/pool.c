/* pool.c: fork-join threads. A run publishes (fn, arg) and bumps a generation counter;
 * helpers spin on the counter briefly before sleeping on a condition variable, since a
 * training step hands them work every few milliseconds and a futex wake-up costs tens of
 * microseconds each way. The mutex guards the sleeping path only. */
#define _GNU_SOURCE /* sched_getaffinity */
#include "engine/pool.h"

#include "engine/base/base.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Busy-wait iterations before sleeping: ~50-100 us on current x86 cores. */
#define SPIN_LIMIT 20000

struct eng_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    atomic_ulong generation; /* bumped by each run; helpers wait for a new one */
    atomic_int pending;      /* helpers still working on this generation */
    atomic_int stop;
    eng_pool_fn fn;
    void *arg;
};

typedef struct {
    eng_pool *pool;
    int t;
} helper_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *helper_main(void *p) {
    helper_arg *ha = p;
    eng_pool *pool = ha->pool;
    const int t = ha->t;
    free(ha);
    unsigned long seen = 0;
    for (;;) {
        unsigned long g = 0;
        for (int spin = 0; spin < SPIN_LIMIT; spin++) {
            g = atomic_load_explicit(&pool->generation, memory_order_acquire);
            if (g != seen || atomic_load_explicit(&pool->stop, memory_order_relaxed))
                break;
            cpu_relax();
        }
        if (g == seen) {
            pthread_mutex_lock(&pool->mu);
            while ((g = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stop))
                pthread_cond_wait(&pool->start, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (atomic_load(&pool->stop))
            return NULL;
        seen = g;
        pool->fn(pool->arg, t);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

eng_pool *eng_pool_new(int n) {
    PST_ASSERT(n >= 1, "pool of %d threads", n);
    eng_pool *p = pst_calloc(1, sizeof *p);
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = pst_calloc((size_t)n, sizeof *p->threads);
    for (int t = 1; t < n; t++) {
        helper_arg *ha = pst_malloc(sizeof *ha);
        *ha = (helper_arg){p, t};
        if (pthread_create(&p->threads[t], NULL, helper_main, ha) != 0) {
            free(ha);
            goto fail;
        }
        p->n = t + 1;
    }
    return p;
fail:
    eng_pool_free(&p);
    return NULL;
}

void eng_pool_free(eng_pool **pp) {
    if (!pp || !*pp)
        return;
    eng_pool *p = *pp;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->n; t++)
        pthread_join(p->threads[t], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
    *pp = NULL;
}

int eng_pool_size(const eng_pool *p) { return p->n; }

void eng_pool_run(eng_pool *p, eng_pool_fn fn, void *arg) {
    if (p->n == 1) {
        fn(arg, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0);
    for (int spin = 0; spin < SPIN_LIMIT; spin++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int eng_pool_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
