/* blas.c: which OpenBLAS the engine runs on (engine/blas.h). */
#include "engine/blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *eng_blas_kernel(void) {
    const char *name = openblas_get_corename();
    return name && *name ? name : "unknown";
}

const char *eng_blas_describe(char *buf, size_t len) {
    /* openblas_get_config: "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64" */
    const char *config = openblas_get_config();
    char version[32] = "";
    if (config && strncmp(config, "OpenBLAS ", 9) == 0)
        snprintf(version, sizeof version, " %.*s", (int)strcspn(config + 9, " "), config + 9);
    const char *forced = getenv("OPENBLAS_CORETYPE");
    char why[96];
    if (forced && *forced)
        snprintf(why, sizeof why, "OPENBLAS_CORETYPE=%.60s", forced);
    else
        snprintf(why, sizeof why, "chosen for this CPU");
    snprintf(buf, len, "OpenBLAS%s kernel %s (%s)", version, eng_blas_kernel(), why);
    return buf;
}
