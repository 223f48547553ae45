/* models.c: the served model and its hot reload (launch/serve/models.h). */
#include "launch/serve/models.h"

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define WATCH_NS 200000000L /* how often `latest` is looked at */

/* What identifies one state of `latest`: a new file renamed over it changes the inode. */
typedef struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int exists;
} stamp;

static stamp stamp_of(const char *path) {
    struct stat st;
    stamp t;
    memset(&t, 0, sizeof t);
    if (stat(path, &st) == 0) {
        t.exists = 1;
        t.dev = st.st_dev;
        t.ino = st.st_ino;
        t.size = st.st_size;
        t.mtime = st.st_mtim;
    }
    return t;
}

static int stamp_same(const stamp *a, const stamp *b) {
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

struct sv_models {
    pthread_mutex_t lock; /* current and every model's refs */
    sv_model *current;    /* holds one reference of its own */
    char dir[4096];       /* the checkpoint directory; "" when a file was given */
    int max_batch, threads, live;
    sv_metrics *metrics;
    pthread_t watcher;
    int watching; /* the watcher was started */
    pthread_cond_t wake;
    int stop;   /* guarded by lock */
    stamp seen; /* latest as it was when looked at last (the watcher's after start-up) */
};

/* The model of the file at path, NULL with err. */
static sv_model *load(const sv_models *s, const char *path, int *rc, char *err, size_t errlen) {
    wk_infer *inf = wk_infer_load(path, s->max_batch, s->threads, s->live, rc, err, errlen);
    if (!inf)
        return NULL;
    sv_model *m = pst_calloc(1, sizeof *m);
    m->infer = inf;
    m->version = wk_infer_signature(inf)->version;
    snprintf(m->path, sizeof m->path, "%s", path);
    m->refs = 1;
    return m;
}

static void model_free(sv_model *m) {
    if (!m)
        return;
    wk_infer_free(&m->infer);
    free(m);
}

sv_model *sv_models_acquire(sv_models *s) {
    pthread_mutex_lock(&s->lock);
    sv_model *m = s->current;
    m->refs++;
    pthread_mutex_unlock(&s->lock);
    return m;
}

void sv_models_release(sv_models *s, sv_model **m) {
    if (!m || !*m)
        return;
    pthread_mutex_lock(&s->lock);
    const int last = --(*m)->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last) /* an old version whose last request has finished */
        model_free(*m);
    *m = NULL;
}

/* One look at latest: a new file loaded and swapped in, or refused in one line. */
static void reload(sv_models *s, const char *file, int64_t served) {
    char err[4096 + 256] = "";
    int rc = PST_OK;
    sv_model *m = load(s, file, &rc, err, sizeof err);
    const wk_infer_sig *now = wk_infer_signature(s->current->infer); /* only we swap it */
    if (m) {
        const wk_infer_sig *sig = wk_infer_signature(m->infer);
        if (strcmp(sig->model, now->model) != 0 || sig->in_floats != now->in_floats ||
            sig->out_floats != now->out_floats) {
            snprintf(err, sizeof err, "%s: a checkpoint of %s, not %s", file, sig->model,
                     now->model);
            model_free(m);
            m = NULL;
        }
    }
    if (!m) {
        fprintf(stderr, "pstrain serve: %s; still serving version %lld\n", err, (long long)served);
        sv_metrics_reload(s->metrics, 0);
        return;
    }
    pthread_mutex_lock(&s->lock);
    sv_model *old = s->current;
    s->current = m;
    const int last = --old->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last)
        model_free(old);
    sv_metrics_version(s->metrics, m->version);
    sv_metrics_reload(s->metrics, 1);
    /* the new model's name: old (and `now` with it) may be freed above */
    fprintf(stderr, "pstrain serve: now serving %s version %lld (%s)\n",
            wk_infer_signature(m->infer)->model, (long long)m->version, file);
}

static void *watch(void *arg) {
    sv_models *s = arg;
    char latest[4200], file[4096], err[1024];
    snprintf(latest, sizeof latest, "%s/latest", s->dir);
    stamp seen = s->seen;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += WATCH_NS;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->wake, &s->lock, &until);
        if (s->stop)
            break;
        pthread_mutex_unlock(&s->lock);
        const stamp t = stamp_of(latest);
        if (!stamp_same(&t, &seen)) {
            seen = t;
            const char *served_path = s->current->path; /* only this thread swaps current */
            const int64_t served = s->current->version;
            if (!t.exists) {
                /* latest removed: keep serving; a new one is looked at when it comes */
            } else if (eng_ckpt_resolve(s->dir, file, sizeof file, err, sizeof err) != PST_OK) {
                fprintf(stderr, "pstrain serve: %s; still serving version %lld\n", err,
                        (long long)served);
                sv_metrics_reload(s->metrics, 0);
            } else if (strcmp(file, served_path) != 0) {
                reload(s, file, served);
            }
        }
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

sv_models *sv_models_new(const char *path, int max_batch, int threads, int live,
                         sv_metrics *metrics, int *rc, char *err, size_t errlen) {
    sv_models *s = pst_calloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->max_batch = max_batch;
    s->threads = threads;
    s->live = live;
    s->metrics = metrics;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(s->dir, sizeof s->dir, "%s", path);
        /* before latest is read: a change between here and the watcher's start is seen */
        char latest[4200];
        snprintf(latest, sizeof latest, "%s/latest", s->dir);
        s->seen = stamp_of(latest);
    }
    char file[4096];
    *rc = eng_ckpt_resolve(path, file, sizeof file, err, errlen);
    if (*rc == PST_OK)
        s->current = load(s, file, rc, err, errlen);
    if (!s->current)
        goto fail;
    sv_metrics_version(metrics, s->current->version);
    if (s->dir[0]) {
        const int e = pthread_create(&s->watcher, NULL, watch, s);
        if (e != 0) {
            *rc = pst_err(err, errlen, PST_EIO, "%s: cannot start the reload watcher: %s", path,
                          strerror(e));
            goto fail;
        }
        s->watching = 1;
    }
    return s;
fail:
    sv_models_free(&s);
    return NULL;
}

void sv_models_free(sv_models **sp) {
    if (!sp || !*sp)
        return;
    sv_models *s = *sp;
    if (s->watching) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->watcher, NULL);
    }
    if (s->current) {
        PST_ASSERT(s->current->refs == 1, "the served model still has %d references",
                   s->current->refs - 1);
        model_free(s->current);
    }
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *sp = NULL;
}
