/* writer.h: the writing side of a job's checkpoints. The lead worker (or the one
 * process) fills the next checkpoint's state, then a thread of the writer's own writes it
 * with eng_ckpt_save while training goes on: training pauses only to gather the state, not
 * for the file. One write at a time; the next checkpoint first waits for the last. */
#ifndef PSTRAIN_WORKER_CKPT_WRITER_H
#define PSTRAIN_WORKER_CKPT_WRITER_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "worker/opts.h"

#include <stddef.h>
#include <stdio.h>

typedef struct wk_ckpt_writer wk_ckpt_writer;

/* A writer of model m's checkpoints (m borrowed) into dir (made here with its parents
 * when missing), keeping the newest `keep` (0: all), with buffers allocated here for the
 * weights, each part's nslots[p] optimizer arrays (m->nparts entries) and, with ema_decay > 0
 * in a model of several parts, a moving average of the first part. The writer holds dir's
 * lock (wk_dir_lock) until wk_ckpt_writer_free, or the process's end. Returns NULL with err
 * naming --checkpoint-dir when the directory cannot be made or written, or when another job
 * holds it (err names the holder: host, pid, start time). */
wk_ckpt_writer *wk_ckpt_writer_new(const eng_model *m, const char *dir, int keep, const int *nslots,
                                   double ema_decay, char *err, size_t errlen);
/* Waits for a write in progress and frees the writer. */
void wk_ckpt_writer_free(wk_ckpt_writer **w);

/* Waits for the write in progress, if any, and prints where it went and how long it took to
 * out (NULL: quiet). Returns PST_OK, or the write's code (eng_ckpt_save's) with err. */
int wk_ckpt_writer_wait(wk_ckpt_writer *w, FILE *out, char *err, size_t errlen);

/* The checkpoint to fill next: the model's identity, the weights, each part's slots and ema
 * are allocated; the caller fills the rest (a part's runs may be replaced: the writer frees
 * them). Valid after
 * wk_ckpt_writer_wait, until wk_ckpt_writer_start. */
eng_ckpt *wk_ckpt_writer_next(wk_ckpt_writer *w);

/* Starts writing the filled checkpoint on the writer's thread. Returns PST_OK, or PST_EIO with err
 * when the thread cannot start. */
int wk_ckpt_writer_start(wk_ckpt_writer *w, char *err, size_t errlen);

/* Reads the checkpoint --resume names (FILE, DIR's latest, or auto: --checkpoint-dir's latest)
 * and checks that it is one of --model. --resume auto with no checkpoint there yet sets
 * *fresh instead and says so on out (NULL: quiet): a restart loop's first run. A checkpoint
 * that is there but refused (damaged, edited, another model's) is an error for auto too,
 * never a fresh start nor a silent fall back to an older file, which would lose or repeat
 * training unseen: the line says it is the newest and what to do. Returns PST_OK (c filled:
 * release with eng_ckpt_free) or a code with one line in err naming --resume. */
int wk_resume_load(const wk_opts *o, eng_ckpt *c, int *fresh, FILE *out, char *err, size_t errlen);

/* wk_resume_load that reads the file once into *bytes (release with free) and parses those
 * bytes, its path into name, for the other ranks of a job: they parse the same bytes with
 * wk_resume_parse, so every rank resumes from what rank 0 checked and no rank but the first
 * needs to see the file. */
int wk_resume_load_bytes(const wk_opts *o, eng_ckpt *c, int *fresh, void **bytes, size_t *len,
                         char *name, size_t namelen, FILE *out, char *err, size_t errlen);
int wk_resume_parse(const wk_opts *o, const void *bytes, size_t len, const char *name, eng_ckpt *c,
                    char *err, size_t errlen);

#endif
