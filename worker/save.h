/* save.h: a job's checkpoints from the loop's side: where a resumed run starts, and the
 * state of every part put together for the writer (worker/checkpoint.h) at a step every
 * worker reaches. Internal to worker/. */
#ifndef PSTRAIN_WORKER_SAVE_H
#define PSTRAIN_WORKER_SAVE_H

#include "engine/ckpt/ckpt.h"
#include "worker/ckpt/writer.h"
#include "worker/task.h"

#include <stdint.h>

/* Where a run is, for checkpoints. */
typedef struct wk_position {
    int64_t step;       /* steps done by every worker: the next step's index */
    int64_t epoch;      /* in progress, 1-based */
    int64_t epoch_step; /* steps of it done */
} wk_position;

/* Where a run starts: the checkpoint's step and epoch when resuming (NULL: step 0 of epoch
 * 1). Other counts of workers or another batch make other steps: the epoch goes on from the
 * same share of its samples. The lead says where. */
wk_position wk_resume_position(const eng_ckpt *resume, int world, int batch,
                               int64_t steps_per_epoch, int lead);

/* A checkpoint at pos: every worker calls it (they gather their positions on the lead
 * through r's store); the lead (the one with a writer) then waits for its last write, puts
 * every part's state, the run's record, the vocabulary and the moving averages t keeps
 * into the next checkpoint, and hands it to the writer's thread. Returns PST_OK or a code
 * with err. */
int wk_save(const wk_run *r, wk_task *t, wk_ckpt_writer *writer, wk_position pos, char *err,
            size_t errlen);

#endif
