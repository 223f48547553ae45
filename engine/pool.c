/* pool.c: fork-join threads on one mutex and two condition variables. A run costs two
 * wake-ups per helper thread, a few microseconds, against milliseconds of work per step. */
#include "engine/pool.h"

#include "engine/base.h"

#include <pthread.h>
#include <stdlib.h>

struct eng_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long generation; /* bumped by each run; helpers wait for a new one */
    int pending;              /* helpers still working on this generation */
    int stop;
    eng_pool_fn fn;
    void *arg;
};

typedef struct {
    eng_pool *pool;
    int t;
} helper_arg;

static void *helper_main(void *p) {
    helper_arg *ha = p;
    eng_pool *pool = ha->pool;
    const int t = ha->t;
    free(ha);
    unsigned long seen = 0;
    for (;;) {
        pthread_mutex_lock(&pool->mu);
        while (pool->generation == seen && !pool->stop)
            pthread_cond_wait(&pool->start, &pool->mu);
        if (pool->stop) {
            pthread_mutex_unlock(&pool->mu);
            return NULL;
        }
        seen = pool->generation;
        eng_pool_fn fn = pool->fn;
        void *arg = pool->arg;
        pthread_mutex_unlock(&pool->mu);
        fn(arg, t);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0)
            pthread_cond_signal(&pool->done);
        pthread_mutex_unlock(&pool->mu);
    }
}

eng_pool *eng_pool_new(int n) {
    ENG_ASSERT(n >= 1, "pool of %d threads", n);
    eng_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->n = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->threads = calloc((size_t)n, sizeof *p->threads);
    if (!p->threads)
        goto fail;
    for (int t = 1; t < n; t++) {
        helper_arg *ha = malloc(sizeof *ha);
        if (!ha)
            goto fail;
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
    p->stop = 1;
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
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        p->fn = fn;
        p->arg = arg;
        p->pending = p->n - 1;
        p->generation++;
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0);
    if (p->n > 1) {
        pthread_mutex_lock(&p->mu);
        while (p->pending > 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}
