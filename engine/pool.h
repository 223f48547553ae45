/* pool.h: a fixed team of threads that run one function together, fork-join style.
 *
 * eng_pool_run(p, fn, arg) calls fn(arg, t) for t = 0..n-1, t = 0 on the calling thread,
 * and returns when all calls have returned. Small and predictable, for the per-step
 * data-parallel work of a net: no queue, no allocation per run. */
#ifndef PSTRAIN_ENGINE_POOL_H
#define PSTRAIN_ENGINE_POOL_H

typedef struct eng_pool eng_pool;
typedef void (*eng_pool_fn)(void *arg, int t);

/* A team of n >= 1 threads (n - 1 started here). NULL when threads cannot be created. */
eng_pool *eng_pool_new(int n);
void eng_pool_free(eng_pool **p);
int eng_pool_size(const eng_pool *p);
void eng_pool_run(eng_pool *p, eng_pool_fn fn, void *arg);

/* CPUs this process may run on (its affinity mask: what mpirun or taskset left it). */
int eng_pool_cpus(void);

#endif
