/* writer.c: writing checkpoints on a thread while training goes on, and reading the one
 * --resume names. */
#include "worker/ckpt/writer.h"

#include "engine/base/base.h"
#include "engine/layout.h"
#include "worker/ckpt/record.h"
#include "worker/paths.h"
#include "worker/report/progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wk_ckpt_writer {
    const eng_model *model;
    char *dir;
    int lock; /* dir's lock (wk_dir_lock): one job per checkpoint directory */
    int keep;
    eng_ckpt ck; /* the state being filled or written */
    pthread_t thread;
    int running;
    /* the thread's result */
    int rc;
    char err[1024];
    char path[4096];
    double seconds;
};

wk_ckpt_writer *wk_ckpt_writer_new(const eng_model *m, const char *dir, int keep, const int *nslots,
                                   double ema_decay, char *err, size_t errlen) {
    /* A directory that cannot be made or written fails now, not after an epoch of training;
     * missing parents are made, as Keras's ModelCheckpoint makes them. */
    if (wk_mkdirs("checkpoint-dir", dir, err, errlen) != PST_OK)
        return NULL;
    /* Before anything is cleaned up or written: two jobs in one directory would overwrite
     * each other's checkpoints, and each save removes temporary files it takes for a killed
     * writer's. Here, not at start-up, so that a lead that takes over mid-job locks it too. */
    int lock;
    if (wk_dir_lock("checkpoint-dir", dir, &lock, err, errlen) != PST_OK)
        return NULL;
    wk_ckpt_writer *w = pst_calloc(1, sizeof *w);
    w->lock = lock;
    w->model = m;
    w->keep = keep;
    w->dir = pst_strdup(dir);
    eng_ckpt *c = &w->ck;
    eng_ckpt_init(c, m);
    c->weights = pst_alloc(sizeof(float) * c->total);
    for (int p = 0; p < c->nparts; p++) {
        eng_ckpt_part *part = &c->parts[p];
        part->nslots = nslots[p];
        for (int i = 0; i < nslots[p]; i++)
            part->slots[i] = pst_alloc(sizeof(float) * part->total);
    }
    if (c->nparts > 1 && ema_decay > 0.0) {
        c->parts[0].ema_decay = ema_decay;
        c->parts[0].ema = pst_alloc(sizeof(float) * c->parts[0].total);
    }
    return w;
}

void wk_ckpt_writer_free(wk_ckpt_writer **pw) {
    if (!pw || !*pw)
        return;
    wk_ckpt_writer *w = *pw;
    if (w->running)
        pthread_join(w->thread, NULL);
    eng_ckpt_free(&w->ck);
    wk_dir_unlock(&w->lock); /* after the last write */
    free(w->dir);
    free(w);
    *pw = NULL;
}

static void *write_main(void *arg) {
    wk_ckpt_writer *w = arg;
    const double t0 = pst_now();
    w->rc = eng_ckpt_save(w->dir, wk_record_of(&w->ck).step, &w->ck, w->model, w->keep, w->path,
                          sizeof w->path, w->err, sizeof w->err);
    w->seconds = pst_now() - t0;
    return NULL;
}

int wk_ckpt_writer_wait(wk_ckpt_writer *w, FILE *out, char *err, size_t errlen) {
    if (!w->running)
        return PST_OK;
    pthread_join(w->thread, NULL);
    w->running = 0;
    if (w->rc != PST_OK)
        return pst_err(err, errlen, w->rc, "checkpoint: %s", w->err);
    if (out) {
        fprintf(out, "checkpoint %s: step %lld, written in %.0f ms\n", w->path,
                (long long)wk_record_of(&w->ck).step, w->seconds * 1e3);
        fflush(out);
    }
    return PST_OK;
}

eng_ckpt *wk_ckpt_writer_next(wk_ckpt_writer *w) {
    PST_ASSERT(!w->running, "checkpoint state taken while a write is in progress");
    return &w->ck;
}

int wk_ckpt_writer_start(wk_ckpt_writer *w, char *err, size_t errlen) {
    PST_ASSERT(!w->running, "two checkpoint writes at once");
    if (pthread_create(&w->thread, NULL, write_main, w) != 0)
        return pst_err(err, errlen, PST_EIO, "checkpoint: cannot start the writer thread");
    w->running = 1;
    return PST_OK;
}

/* The checkpoint file --resume names into path, or *fresh for --resume auto with none yet. */
static int resume_path(const wk_opts *o, char *path, size_t len, int *fresh, FILE *out, char *why,
                       size_t whylen) {
    const char *from = o->resume;
    *fresh = 0;
    if (strcmp(o->resume, "auto") == 0) {
        char latest[WK_PATH_MAX + 16];
        snprintf(latest, sizeof latest, "%s/latest", o->checkpoint_dir);
        if (access(latest, F_OK) != 0) {
            if (out)
                fprintf(out, "--resume auto: no checkpoint in %s yet: starting fresh\n",
                        o->checkpoint_dir);
            *fresh = 1;
            return PST_OK;
        }
        from = o->checkpoint_dir;
    }
    return eng_ckpt_resolve(from, path, len, why, whylen);
}

/* c read (rc) from `name`: one of --model, or nothing and the line naming --resume. */
static int of_model(const wk_opts *o, int rc, const char *name, eng_ckpt *c, char *why, char *err,
                    size_t errlen) {
    if (rc == PST_OK && strcmp(c->model, o->model) != 0) {
        rc = pst_err(why, 1024, PST_EFORMAT, "%s: a checkpoint of %s, not --model %s", name,
                     c->model, o->model);
        eng_ckpt_free(c);
    }
    if (rc != PST_OK && strcmp(o->resume, "auto") == 0 && name[0] &&
        strncmp(why, name, strlen(name)) == 0)
        /* a file was found and refused: say it was the newest, and that nothing falls back */
        snprintf(err, errlen,
                 "--resume auto: the newest checkpoint in %.400s is refused (nothing trained; "
                 "point its latest at an older checkpoint, or move the directory aside to start "
                 "fresh): %.1000s",
                 o->checkpoint_dir, why);
    else if (rc != PST_OK) /* the reasons name the file; the line names the flag too */
        snprintf(err, errlen, "--resume: %.1000s", why);
    return rc;
}

int wk_resume_load(const wk_opts *o, eng_ckpt *c, int *fresh, FILE *out, char *err, size_t errlen) {
    return wk_resume_load_bytes(o, c, fresh, NULL, NULL, NULL, 0, out, err, errlen);
}

int wk_resume_load_bytes(const wk_opts *o, eng_ckpt *c, int *fresh, void **bytes, size_t *len,
                         char *name, size_t namelen, FILE *out, char *err, size_t errlen) {
    char path[WK_PATH_MAX] = "", why[1024] = "";
    int rc = resume_path(o, path, sizeof path, fresh, out, why, sizeof why);
    if (rc == PST_OK && *fresh)
        return PST_OK;
    if (rc == PST_OK && !bytes)
        rc = wk_record_read(path, c, NULL, why, sizeof why);
    else if (rc == PST_OK &&
             (rc = eng_ckpt_load_bytes(path, bytes, len, why, sizeof why)) == PST_OK) {
        /* the bytes the other ranks get are the ones checked here, read once */
        snprintf(name, namelen, "%s", path);
        rc = wk_record_read_image(*bytes, *len, path, c, NULL, why, sizeof why);
    }
    if ((rc = of_model(o, rc, path, c, why, err, errlen)) != PST_OK && bytes) {
        free(*bytes);
        *bytes = NULL;
    }
    return rc;
}

int wk_resume_parse(const wk_opts *o, const void *bytes, size_t len, const char *name, eng_ckpt *c,
                    char *err, size_t errlen) {
    char why[1024] = "";
    const int rc = wk_record_read_image(bytes, len, name, c, NULL, why, sizeof why);
    return of_model(o, rc, name, c, why, err, errlen);
}
