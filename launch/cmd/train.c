/* train.c: `pstrain train`: its dry run, one process, or a rank of a parameter-server job
 * (job.c) when --servers P asks for one. */
#include "worker/train.h"
#include "engine/base/base.h"
#include "launch/cmd/cmd.h"
#include "worker/ckpt/writer.h"
#include "worker/init_from.h"

#include <stdio.h>
#include <stdlib.h>

/* True when an MPI launcher started this process. */
static int under_mpi_launcher(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

int cmd_train(const cmd_config *c) {
    const wk_opts *o = &c->worker;
    if (c->args.dry_run) /* before --servers asks for mpirun: a launcher runs this first */
        return cmd_preflight(c);
    if (o->join[0])
        return cmd_join(c);
    if (o->servers > 0) {
        if (!under_mpi_launcher()) {
            fprintf(stderr, "pstrain: --servers %lld: start the job with mpirun -np N (N > %lld)\n",
                    (long long)o->servers, (long long)o->servers);
            return PST_EARG;
        }
        return cmd_job(c);
    }
    char err[1024] = "";
    eng_ckpt resume = {0};
    int fresh = 1;
    int rc = o->resume[0] ? wk_resume_load(o, &resume, &fresh, stdout, err, sizeof err) : PST_OK;
    if (rc != PST_OK)
        return cmd_said(rc, err);
    /* --init-from: a fresh start's weights (a resumed run's are the checkpoint's) */
    float *init = NULL;
    if (o->init_from[0] && (!o->resume[0] || fresh)) {
        eng_model m;
        PST_ASSERT(eng_model_build(&m, eng_model_find(o->model), err, sizeof err) == PST_OK, "%s",
                   err);
        if ((rc = wk_init_from_load(o, &m, &init, err, sizeof err)) != PST_OK) {
            eng_ckpt_free(&resume);
            return cmd_said(rc, err);
        }
    }
    volatile sig_atomic_t *stop = cmd_stop_signals(o);
    rc = wk_train(o, NULL, o->resume[0] && !fresh ? &resume : NULL, init, stop, err, sizeof err);
    pst_free(init);
    if (rc != PST_OK && rc != PST_ESTOPPED)
        fprintf(stderr, "pstrain: %s\n", err[0] ? err : "training failed");
    eng_ckpt_free(&resume);
    return rc;
}
