/* record.h: the run record, the job's shape and position that a checkpoint keeps beside the
 * model's state so that a job can go on where it stopped: its step and epoch, the run's
 * configuration, and each worker's position in its data. The engine stores these as its
 * checkpoint's meta (attributes of /pstrain and the int64 array workers/steps) without
 * knowing them; this module names them, fills them and checks them.
 *
 * In the file (format_version 1), in this order after @total:
 *   @step, @epoch (1-based), @epoch_step int64; @mode string ("sync", "async", "ssp",
 *   "local"); @staleness, @batch int32; @seed int64; @servers, @workers int32;
 *   @val_split float64; @epochs int64; and the dataset workers/steps int64 (workers). */
#ifndef PSTRAIN_WORKER_CKPT_RECORD_H
#define PSTRAIN_WORKER_CKPT_RECORD_H

#include "engine/ckpt/ckpt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct wk_run_record {
    int64_t step;       /* global step: training steps completed by the job */
    int64_t epoch;      /* the epoch in progress, 1-based */
    int64_t epoch_step; /* steps of that epoch already done (0 = at its start) */
    char mode[8];       /* "sync", "async", "ssp", or "local" (one process) */
    int32_t staleness;
    int32_t batch; /* per worker */
    int64_t seed;
    int32_t servers, workers; /* counts of the job that wrote it */
    double val_split;
    int64_t epochs;        /* --epochs of that run */
    int64_t *worker_steps; /* (workers): positions (steps done); owned by c's meta or the caller */
} wk_run_record;

/* The record of checkpoint c into *r (r->worker_steps borrows c's meta), checked: every field
 * present with its type and in its range (counts up to ENG_CKPT_COUNT_MAX), workers/steps of
 * workers entries in [0, ENG_CKPT_COUNT_MAX]. Returns PST_OK, or PST_EFORMAT with one line
 * naming the file's field ("attribute step of /pstrain: missing", "attribute workers of
 * /pstrain is 0, expected 1 to 32768"); the caller adds the file's name. */
int wk_record_get(const eng_ckpt *c, wk_run_record *r, char *err, size_t errlen);

/* r's ranges as wk_record_get checks them: PST_OK or PST_EFORMAT with one line. */
int wk_record_check(const wk_run_record *r, char *err, size_t errlen);

/* Copies r into c's meta (replacing what it held), in the file's order. r must pass
 * wk_record_check (asserted: a record the program made). */
void wk_record_put(eng_ckpt *c, const wk_run_record *r);

/* The record of a checkpoint that wk_record_read or wk_record_get accepted (asserted). */
wk_run_record wk_record_of(const eng_ckpt *c);

/* eng_ckpt_read of path, then wk_record_get: c filled and its record in *r (NULL: not
 * wanted), c's meta put back in the record's order (the file's: written again, a file read
 * here has its bytes), or nothing (c zeroed) and one line in err naming path. Returns PST_OK or an
 * eng_ckpt_read code or PST_EFORMAT. */
int wk_record_read(const char *path, eng_ckpt *c, wk_run_record *r, char *err, size_t errlen);

/* The same from a checkpoint file's bytes in memory (eng_ckpt_read_image), name standing
 * for the file in messages. */
int wk_record_read_image(const void *bytes, size_t len, const char *name, eng_ckpt *c,
                         wk_run_record *r, char *err, size_t errlen);

/* For `pstrain inspect`: where the run was and how it ran ("progress:" and "run:" lines),
 * and each worker's position in its data ("worker steps:"). */
void wk_record_print_run(const wk_run_record *r, FILE *out);
void wk_record_print_steps(const wk_run_record *r, FILE *out);

#endif
