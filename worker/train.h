/* train.h: training in one process: the data set, the net, the optimizer over the whole
 * flat vector, the epoch loop, evaluation and reports. */
#ifndef PSTRAIN_WORKER_TRAIN_H
#define PSTRAIN_WORKER_TRAIN_H

#include "worker/cli.h"

#include <stddef.h>

/* Runs `pstrain train` as o describes. Returns 0 on success, 2 on bad input (the message
 * in err names the file or flag), 1 on other failures. */
int wk_train_local(const wk_opts *o, char *err, size_t errlen);

#endif
