/* batch.c: the batcher thread (launch/serve/batch.h). Jobs live on their callers' stacks and
 * wait on their own condition variable; the queue is a singly linked FIFO under one lock. */
#include "launch/serve/batch.h"

#include "engine/base/base.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    wk_infer *m;
    const float *x; /* (n, in_floats) */
    float *y;       /* (n, out_floats) */
    int n;
    int done;
    pthread_cond_t answered;
    struct job *next;
} job;

struct sv_batcher {
    int max_batch;
    size_t in_floats, out_floats;
    long timeout_us;
    sv_metrics *metrics;
    float *x, *y; /* (max_batch, in_floats), (max_batch, out_floats) */
    pthread_mutex_t lock;
    pthread_cond_t queued; /* a job was queued, an arriving request gave up, or stop */
    job *head, **tail;
    int arriving; /* requests on their way to the queue */
    int stop;
    pthread_t thread;
};

static struct timespec after_us(long us) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += us / 1000000;
    t.tv_nsec += (us % 1000000) * 1000;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* Samples queued for model m, as far as they fit in one batch. */
static int queued_for(const sv_batcher *b, const wk_infer *m) {
    int n = 0;
    for (const job *j = b->head; j; j = j->next)
        if (j->m == m && n + j->n <= b->max_batch)
            n += j->n;
    return n;
}

static void *batcher_main(void *arg) {
    sv_batcher *b = arg;
    pthread_mutex_lock(&b->lock);
    for (;;) {
        while (!b->head && !b->stop)
            pthread_cond_wait(&b->queued, &b->lock);
        if (!b->head)
            break; /* stopped with nothing queued */
        wk_infer *m = b->head->m;
        /* Wait for more while requests are on their way, up to the timeout. */
        const struct timespec until = after_us(b->timeout_us);
        while (!b->stop && b->arriving > 0 && queued_for(b, m) < b->max_batch)
            if (pthread_cond_timedwait(&b->queued, &b->lock, &until) != 0)
                break;
        /* Take m's jobs, in order, as far as they fit. */
        job *taken = NULL, **taken_tail = &taken;
        int B = 0;
        for (job **p = &b->head; *p;) {
            job *j = *p;
            if (j->m == m && B + j->n <= b->max_batch) {
                *p = j->next;
                j->next = NULL;
                *taken_tail = j;
                taken_tail = &j->next;
                B += j->n;
            } else {
                p = &j->next;
            }
        }
        b->tail = &b->head;
        while (*b->tail)
            b->tail = &(*b->tail)->next;
        pthread_mutex_unlock(&b->lock);
        size_t at = 0;
        for (const job *j = taken; j; j = j->next) {
            memcpy(b->x + at * b->in_floats, j->x, (size_t)j->n * b->in_floats * sizeof(float));
            at += (size_t)j->n;
        }
        wk_infer_run(m, b->x, B, b->y);
        sv_metrics_batch(b->metrics, B);
        pthread_mutex_lock(&b->lock);
        at = 0;
        for (job *j = taken, *next; j; j = next) {
            next = j->next; /* j may be gone once answered */
            memcpy(j->y, b->y + at * b->out_floats, (size_t)j->n * b->out_floats * sizeof(float));
            at += (size_t)j->n;
            j->done = 1;
            pthread_cond_signal(&j->answered);
        }
    }
    pthread_mutex_unlock(&b->lock);
    return NULL;
}

sv_batcher *sv_batcher_new(int max_batch, size_t in_floats, size_t out_floats, long timeout_us,
                           sv_metrics *metrics, char *err, size_t errlen) {
    PST_ASSERT(max_batch >= 1 && in_floats >= 1 && out_floats >= 1 && timeout_us >= 0,
               "max_batch %d, in_floats %zu, out_floats %zu, timeout_us %ld", max_batch, in_floats,
               out_floats, timeout_us);
    sv_batcher *b = pst_calloc(1, sizeof *b);
    b->max_batch = max_batch;
    b->in_floats = in_floats;
    b->out_floats = out_floats;
    b->timeout_us = timeout_us;
    b->metrics = metrics;
    b->x = pst_alloc((size_t)max_batch * in_floats * sizeof(float));
    b->y = pst_alloc((size_t)max_batch * out_floats * sizeof(float));
    b->tail = &b->head;
    pthread_mutex_init(&b->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->queued, &ca);
    pthread_condattr_destroy(&ca);
    const int e = pthread_create(&b->thread, NULL, batcher_main, b);
    if (e != 0) {
        pst_err(err, errlen, PST_EIO, "cannot start the batcher thread: %s", strerror(e));
        pthread_cond_destroy(&b->queued);
        pthread_mutex_destroy(&b->lock);
        pst_free(b->x);
        pst_free(b->y);
        free(b);
        return NULL;
    }
    return b;
}

void sv_batcher_free(sv_batcher **bp) {
    if (!bp || !*bp)
        return;
    sv_batcher *b = *bp;
    pthread_mutex_lock(&b->lock);
    b->stop = 1;
    pthread_cond_signal(&b->queued);
    pthread_mutex_unlock(&b->lock);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->queued);
    pthread_mutex_destroy(&b->lock);
    pst_free(b->x);
    pst_free(b->y);
    free(b);
    *bp = NULL;
}

void sv_batcher_arriving(sv_batcher *b, int delta) {
    pthread_mutex_lock(&b->lock);
    b->arriving += delta;
    if (delta < 0)
        pthread_cond_signal(&b->queued);
    pthread_mutex_unlock(&b->lock);
}

void sv_batcher_run(sv_batcher *b, wk_infer *m, const float *x, int n, float *y, int arrived) {
    PST_ASSERT(n >= 1 && n <= b->max_batch, "n %d, max_batch %d", n, b->max_batch);
    job j = {.m = m, .x = x, .y = y, .n = n};
    pthread_cond_init(&j.answered, NULL);
    pthread_mutex_lock(&b->lock);
    *b->tail = &j;
    b->tail = &j.next;
    b->arriving -= arrived != 0;
    pthread_cond_signal(&b->queued);
    while (!j.done)
        pthread_cond_wait(&j.answered, &b->lock);
    pthread_mutex_unlock(&b->lock);
    pthread_cond_destroy(&j.answered);
}
