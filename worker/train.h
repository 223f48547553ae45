/* train.h: the training loop, in one process or as one worker of a parameter-server job.
 *
 * One process: the optimizer runs here over the whole flat vector. As a worker: the rank's
 * share of the data, gradients pushed to the servers and weights pulled back each step,
 * evaluation results reduced over the workers' communicator and reported once by worker 0.
 * The per-worker batch is --batch; the global batch is workers x batch (see README). */
#ifndef PSTRAIN_WORKER_TRAIN_H
#define PSTRAIN_WORKER_TRAIN_H

#include "worker/cli.h"

#include <mpi.h>
#include <stddef.h>

/* The job around a worker. */
typedef struct wk_job {
    int worker_id, num_workers;
    int num_servers;
    const char *const *endpoints; /* server s at endpoints[s] */
    MPI_Comm workers;             /* the workers' communicator */
} wk_job;

/* Runs `pstrain train` as o describes; job is NULL for one process. Returns 0 on success,
 * 2 on bad input (the message in err names the file or flag), 1 on other failures. */
int wk_train(const wk_opts *o, const wk_job *job, char *err, size_t errlen);

#endif
