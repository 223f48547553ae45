/* check.h: `pstrain check`: what a launcher runs on every host before it starts a job, so
 * that a host with another build, another model definition or missing data is refused by
 * name before any rank starts. It prints one line:
 *
 *   pstrain VERSION build BUILD model NAME layout 0xCHECKSUM data ok
 *   pstrain VERSION build BUILD model NAME layout 0xCHECKSUM data missing: REASON
 *
 * VERSION is the project's (CMake's PROJECT_VERSION), BUILD `git describe --always --dirty`
 * of the source tree when the build was configured ("unknown" without git), CHECKSUM the
 * model's eng_layout_checksum as 16 hex digits; REASON names the file. Hosts agree when
 * their lines are equal. A second line names the OpenBLAS kernel (engine/blas.h), which may
 * differ between hosts. */
#ifndef PSTRAIN_WORKER_CHECK_H
#define PSTRAIN_WORKER_CHECK_H

#include "engine/model.h"
#include "worker/cli.h"

#include <stddef.h>
#include <stdio.h>

/* `pstrain --version`: the version and build as the check line gives them, and the OpenBLAS
 * kernel this machine runs. */
void wk_version_print(FILE *out);

/* Checks --model's data under --data the way training opens it (MNIST and Fashion-MNIST:
 * loads the IDX train and test files; IMDB: opens reviews.json and reads its first bytes,
 * or the aclImdb/ folders) and prints the line to out. Returns 0 (data ok), 2 with the line
 * printed and err empty (data missing: the line says why) or 2 with nothing printed and one
 * line in err (an unknown model). */
int wk_check(const wk_opts *o, FILE *out, char *err, size_t errlen);

/* The part of wk_check that looks at the data: def's data set under --data, opened as
 * training opens it (see above). Returns PST_OK or a code with err naming the file. */
int wk_check_data(const wk_opts *o, const eng_model_def *def, char *err, size_t errlen);

#endif
