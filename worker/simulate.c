/* simulate.c: a step's timing learnt from real steps and played back (worker/simulate.h). */
#include "worker/simulate.h"

#include "engine/base/base.h"

#include <errno.h>
#include <time.h>

void wk_sim_init(wk_sim *s, double ms) { *s = (wk_sim){.ms = ms}; }

int wk_sim_playing(const wk_sim *s) { return s->learned >= WK_SIM_LEARN; }

void wk_sim_begin(wk_sim *s) {
    s->n = 0;
    s->began = pst_now();
}

void wk_sim_note(wk_sim *s, size_t lo) {
    PST_ASSERT(s->n < WK_SIM_EVENTS, "a step with more than %d gradients-ready calls",
               WK_SIM_EVENTS);
    s->lo[s->n] = lo;
    s->share[s->n++] = pst_now() - s->began;
}

void wk_sim_end(wk_sim *s) {
    const double took = pst_now() - s->began;
    for (int i = 0; i < s->n; i++)
        s->share[i] = took > 0 ? s->share[i] / took : 0.0;
    s->learned++;
}

/* Sleeps until pst_now() reads t (the same monotonic clock). */
static void sleep_until(double t) {
    struct timespec ts = {.tv_sec = (time_t)t};
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void wk_sim_step(const wk_sim *s, void (*ready)(void *ctx, size_t lo), void *ctx) {
    const double t0 = pst_now(), len = s->ms / 1000.0;
    for (int i = 0; i < s->n; i++) {
        sleep_until(t0 + s->share[i] * len);
        ready(ctx, s->lo[i]);
    }
    sleep_until(t0 + len);
}
