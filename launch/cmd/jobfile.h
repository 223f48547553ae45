/* jobfile.h: the job file (--max-workers): what a worker needs to join a running job, written
 * by rank 0 at the start and read by `pstrain train --join FILE`. It holds the job's train
 * flags, every server's endpoint (and, with --replicas, each shard's copy's), the job's token
 * and, with --secure, the keys a worker connects with: whoever reads it is in the job, so it
 * is written with mode 0600, whole (a temporary file renamed), where the operator says. */
#ifndef PSTRAIN_CMD_JOBFILE_H
#define PSTRAIN_CMD_JOBFILE_H

#include "proto/secure.h"

#include <stddef.h>

typedef struct cmd_jobfile {
    int nargs;
    char **args;      /* the job's train flags (after `pstrain train`) */
    int servers;      /* P */
    char **endpoints; /* (P) */
    char **backups;   /* (P) --replicas, or NULL */
    int secure;       /* keys holds the job's keys (a worker's: no server secret) */
    pb_keys keys;     /* the token always */
    int workers, max_workers;
} cmd_jobfile;

/* Writes j to path (mode 0600, whole). Returns PST_OK, or a code with err naming the file. */
int cmd_jobfile_write(const char *path, const cmd_jobfile *j, char *err, size_t errlen);

/* Reads path into j (release with cmd_jobfile_free). Returns PST_OK, or PST_EARG/PST_EFORMAT
 * with err naming the file and the field. */
int cmd_jobfile_read(const char *path, cmd_jobfile *j, char *err, size_t errlen);
void cmd_jobfile_free(cmd_jobfile *j);

#endif
