/* simulate.h: the scaling lab's stand-in for a step's arithmetic (--simulate-compute). It
 * times a few real steps to learn when each layer's gradient is final, as a share of the
 * step, then plays that timing back for a step of any length without computing: the worker
 * sends the same chunks at the same moments of its step, so 16 "hosts" on 2 cores each
 * behave as if they had a CPU of their own. Internal to worker/. */
#ifndef PSTRAIN_WORKER_SIMULATE_H
#define PSTRAIN_WORKER_SIMULATE_H

#include <stddef.h>

#define WK_SIM_EVENTS 64 /* gradients-ready calls of one step kept (a model's layers) */
#define WK_SIM_LEARN 3   /* real steps timed; the last one's timing is played back */

typedef struct wk_sim {
    double ms;   /* the step played back, milliseconds */
    int learned; /* real steps timed so far */
    int n;       /* events of the step being timed, or of the last one */
    size_t lo[WK_SIM_EVENTS];
    double share[WK_SIM_EVENTS]; /* when gradients from lo[i] on were final, / the step */
    double began;
} wk_sim;

void wk_sim_init(wk_sim *s, double ms);
/* Whether the steps from now on are played back (WK_SIM_LEARN real steps are timed). */
int wk_sim_playing(const wk_sim *s);
/* A real step starts, ends, and between them its gradients from lo on are final. */
void wk_sim_begin(wk_sim *s);
void wk_sim_note(wk_sim *s, size_t lo);
void wk_sim_end(wk_sim *s);
/* One played-back step: waits until each event's share of ms, calling ready(ctx, lo) then,
 * and returns at ms. */
void wk_sim_step(const wk_sim *s, void (*ready)(void *ctx, size_t lo), void *ctx);

#endif
