/* server_rank.h: a server rank of a parameter-server job (launch/cmd/server_rank.c): what job.c
 * starts on ranks 0..P-1 and runs until the workers are done. */
#ifndef PSTRAIN_CMD_SERVER_RANK_H
#define PSTRAIN_CMD_SERVER_RANK_H

#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "launch/cmd/config.h"
#include "proto/secure.h"
#include "ps/server.h"

#include <signal.h>

/* Where a rank stands in its job (job.c fills it after MPI's start-up). */
typedef struct cmd_rank_job {
    int rank, servers, workers; /* ranks 0..servers-1 serve; the workers follow */
    const eng_model *model;     /* the whole model; borrowed for the job's length */
    const pb_keys *keys;        /* --secure: the job's CURVE keys (NULL: plain TCP) */
    const float *init;          /* a fresh job's weights (--init-from); NULL: the seed's */
} cmd_rank_job;

typedef struct cmd_rank_server cmd_rank_server;

/* Starts the rank's server of job->model: its shard of every part initialised from --seed
 * (each part's stream: eng_model_part_seed) or job->init, or from resume
 * (NULL: a fresh start), bound and listening. stop: the flag the stop signals set (used with
 * --checkpoint-dir). NULL when it cannot start, its line printed. */
cmd_rank_server *cmd_rank_server_start(const cmd_config *c, const cmd_rank_job *job,
                                       const eng_ckpt *resume, volatile sig_atomic_t *stop);
void cmd_rank_server_free(cmd_rank_server **r);

/* Where r serves every part, "tcp://ADDR:PORT" (owned by r). */
const char *cmd_rank_server_endpoint(const cmd_rank_server *r);
/* --replicas: where r's backup (of the previous rank's shard) listens ("" without one). */
const char *cmd_rank_server_backup_endpoint(const cmd_rank_server *r);
/* --replicas: r's primary passes its updates to the backup at endpoint. PST_OK, or a code
 * with its line printed. */
int cmd_rank_server_set_backup(cmd_rank_server *r, const char *endpoint);

/* Serves until every worker has said Shutdown or is lost (and, with --replicas, until the
 * backup's primary is done too, or the backup that took over is), then (unless quiet) prints
 * the counters. Sets *peer_gone when a worker was lost. Returns PST_OK, PST_ESTOPPED when the job
 * checkpointed and stopped on request, or PST_EPEER (a server failed; its line printed). */
int cmd_rank_server_run(cmd_rank_server *r, int workers, int quiet, int *peer_gone);

#endif
