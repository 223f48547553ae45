/* preflight.h: `pstrain train --dry-run`: everything a run would refuse, found before anything
 * runs, so that a launcher can check a job's flags on the machine it starts from and give
 * pstrain's own one-line error and status before mpirun starts a rank. */
#ifndef PSTRAIN_WORKER_PREFLIGHT_H
#define PSTRAIN_WORKER_PREFLIGHT_H

#include "worker/cli.h"

#include <stddef.h>
#include <stdio.h>

/* Checks, in the order a run meets them and without making or changing any file: the data
 * (as `pstrain check` opens it), the checkpoint --resume names, the folders --checkpoint-dir
 * and --samples (they, or their nearest existing parent, must be writable folders), the files
 * --metrics and --dump-weights, and the --judge checkpoint. Prints what the run would do to
 * out. Returns 0, or the status the run would end with (2) and one line in err. */
int wk_preflight(const wk_opts *o, FILE *out, char *err, size_t errlen);

#endif
