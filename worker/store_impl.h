/* store_impl.h: the two stores' common header (private to store*.c): an interface of
 * function pointers, so that the loop never asks which store it has. */
#ifndef PSTRAIN_WORKER_STORE_IMPL_H
#define PSTRAIN_WORKER_STORE_IMPL_H

#include "worker/guard.h"
#include "worker/store.h"

typedef struct wk_store_ops {
    void (*free)(wk_store *s);
    int (*step_begin)(wk_store *s, uint64_t step, wk_time_split *t, char *err, size_t errlen);
    void (*step_sparse)(wk_store *s, int p, const wk_sparse_rows *sp);
    int (*ready)(wk_store *s, int p, size_t lo, char *err, size_t errlen);
    int (*step_end)(wk_store *s, wk_time_split *t, char *err, size_t errlen);
    int (*settle)(wk_store *s, char *err, size_t errlen);
    int (*final)(wk_store *s, int64_t steps, int64_t run_steps, char *err, size_t errlen);
    int (*reduce)(wk_store *s, int op, double *v, int n, char *err, size_t errlen);
    int (*member_ids)(const wk_store *s, const int **ids);
    int (*stop_agreed)(wk_store *s, volatile sig_atomic_t *stop);
    int (*snapshot)(wk_store *s, uint64_t step, eng_ckpt *c, char *err, size_t errlen);
    uint64_t (*bytes_pushed)(const wk_store *s);
    const wk_server_stats *(*stats)(wk_store *s, char *err, size_t errlen);
    const wk_server_stats *(*last_stats)(const wk_store *s);
    int (*servers)(const wk_store *s);
    int (*shutdown)(wk_store *s, char *err, size_t errlen);
    void (*fail)(wk_store *s, const char *reason);
} wk_store_ops;

/* Every store starts with this. */
struct wk_store {
    const wk_store_ops *ops;
    const eng_model *model; /* borrowed: the parts */
    eng_net *nets[ENG_MAX_PARTS];
    int worker_id, num_workers; /* of the job at the start (0 of 1 local) */
    wk_guard guard; /* the step in progress and the last checkpoint, for the guard's line */
};

#endif
