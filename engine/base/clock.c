/* clock.c: the monotonic clock. */
#include "engine/base/base.h"

#include <time.h>

double pst_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
