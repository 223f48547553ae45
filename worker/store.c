/* store.c: the store's interface over its two implementations (store_local.c,
 * store_remote.c), and what both share. */
#include "worker/store_impl.h"

#include "engine/base/base.h"

#include <string.h>

void wk_store_free(wk_store **s) {
    if (*s)
        (*s)->ops->free(*s);
    *s = NULL;
}

int wk_store_step_begin(wk_store *s, uint64_t step, wk_time_split *t, char *err, size_t errlen) {
    return s->ops->step_begin(s, step, t, err, errlen);
}

void wk_store_step_sparse(wk_store *s, int p, const wk_sparse_rows *sp) {
    s->ops->step_sparse(s, p, sp);
}

int wk_store_ready(wk_store *s, int p, size_t lo, char *err, size_t errlen) {
    return s->ops->ready(s, p, lo, err, errlen);
}

int wk_store_step_end(wk_store *s, wk_time_split *t, char *err, size_t errlen) {
    return s->ops->step_end(s, t, err, errlen);
}

int wk_store_settle(wk_store *s, char *err, size_t errlen) {
    return s->ops->settle(s, err, errlen);
}

int wk_store_final(wk_store *s, int64_t steps, int64_t run_steps, char *err, size_t errlen) {
    return s->ops->final(s, steps, run_steps, err, errlen);
}

int wk_store_reduce(wk_store *s, int op, double *v, int n, char *err, size_t errlen) {
    return s->ops->reduce(s, op, v, n, err, errlen);
}

int wk_store_member_ids(const wk_store *s, const int **ids) { return s->ops->member_ids(s, ids); }

int wk_store_stop_agreed(wk_store *s, volatile sig_atomic_t *stop) {
    return s->ops->stop_agreed(s, stop);
}

int wk_store_snapshot(wk_store *s, uint64_t step, eng_ckpt *c, char *err, size_t errlen) {
    return s->ops->snapshot(s, step, c, err, errlen);
}

uint64_t wk_store_bytes_pushed(const wk_store *s) { return s->ops->bytes_pushed(s); }

const wk_server_stats *wk_store_stats(wk_store *s, char *err, size_t errlen) {
    return s->ops->stats(s, err, errlen);
}

const wk_server_stats *wk_store_last_stats(const wk_store *s) { return s->ops->last_stats(s); }

int wk_store_servers(const wk_store *s) { return s->ops->servers(s); }

int wk_store_shutdown(wk_store *s, char *err, size_t errlen) {
    return s->ops->shutdown(s, err, errlen);
}

void wk_store_fail(wk_store *s, const char *reason) {
    if (s)
        s->ops->fail(s, reason);
}

int wk_store_remote(const wk_store *s) { return s->ops->servers(s) > 0; }

uint64_t wk_needed_version(const wk_opts *o, uint64_t next) {
    if (strcmp(o->mode, "async") == 0)
        return 0;
    const uint64_t S = strcmp(o->mode, "ssp") == 0 ? (uint64_t)o->staleness : 0;
    return next > S ? next - S : 0;
}
