/* join.c: `pstrain train --join FILE`: one more worker for a running job (a replacement VM,
 * or more VMs when they become cheap), on any host that reaches the servers, without
 * mpirun (MPI is the job's start-up only). The job file (jobfile.h) gives the job's flags,
 * the servers and the token or keys; this worker's own flags (--data, --threads...) win. It
 * asks server 0 for a place, waits for the job's next epoch's end, where the workers admit
 * it, and trains with them from there (worker/train.c). */
#include "engine/base/base.h"
#include "engine/model.h"
#include "launch/cmd/cli.h"
#include "launch/cmd/cmd.h"
#include "launch/cmd/jobfile.h"
#include "proto/wire.h"
#include "worker/client.h"
#include "worker/heartbeat.h"
#include "worker/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The job's train flags, then this process's own but --join: into jc. */
static int join_flags(const cmd_jobfile *jf, cmd_config *jc, char *err, size_t errlen) {
    int argc;
    char **argv;
    cmd_argv(&argc, &argv);
    char **v = pst_calloc((size_t)(jf->nargs + argc + 2), sizeof *v);
    int n = 0;
    v[n++] = argv[0];
    v[n++] = "train";
    for (int i = 0; i < jf->nargs; i++)
        v[n++] = jf->args[i];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--join") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--join=", 7) != 0)
            v[n++] = argv[i];
    }
    const int rc = cmd_cli_parse(jc, n, v, err, errlen);
    free(v);
    jc->worker.resume[0] = '\0'; /* the weights come from the servers */
    jc->worker.join[0] = '\0';
    return rc;
}

int cmd_join(const cmd_config *c) {
    const char *path = c->worker.join;
    char err[1024] = "";
    cmd_jobfile jf;
    int rc = cmd_jobfile_read(path, &jf, err, sizeof err);
    if (rc != PST_OK)
        return cmd_said(rc, err);
    static cmd_config jc;
    static eng_model m; /* the worker borrows it until the end */
    wk_heartbeat *hb = NULL;
    const pb_keys *keys = jf.secure ? &jf.keys : NULL;
    const int P = jf.servers;
    char(*name)[48] = pst_calloc((size_t)P, sizeof *name);
    const char **names = pst_calloc((size_t)P, sizeof *names);
    int id = -1;
    if ((rc = join_flags(&jf, &jc, err, sizeof err)) != PST_OK) {
        fprintf(stderr, "pstrain: --join %s: the job's flags with this worker's: %s\n", path, err);
        goto out;
    }
    if ((rc = eng_model_build(&m, eng_model_find(jc.worker.model), err, sizeof err)) != PST_OK) {
        fprintf(stderr, "pstrain: --join %s: %s\n", path, err);
        goto out;
    }
    pb_set_job_token(jf.keys.token);
    if ((rc = wk_client_ask_place(jf.endpoints[0], &m, jf.max_workers, jc.worker.timeout, keys, &id,
                                  err, sizeof err)) != PST_OK) {
        fprintf(stderr, "pstrain: --join %s: no place in the job: %s\n", path, err);
        goto out;
    }
    for (int i = 0; i < P; i++) {
        snprintf(name[i], sizeof name[i], "server %d", i);
        names[i] = name[i];
    }
    if (!(hb = wk_heartbeat_new((const char *const *)jf.endpoints, names, P, id,
                                jc.worker.peer_timeout, keys, err, sizeof err))) {
        rc = cmd_said(PST_EPEER, err);
        goto out;
    }
    printf("worker %d: joins the job of %s (%d server(s), up to %d workers)\n", id, path, P,
           jf.max_workers);
    fflush(stdout);
    const wk_job job = {.worker_id = id,
                        .num_workers = jf.max_workers,
                        .world = jf.workers,
                        .join = 1,
                        .num_servers = P,
                        .endpoints = (const char *const *)jf.endpoints,
                        .backups = (const char *const *)jf.backups,
                        .heartbeat = hb,
                        .keys = keys};
    rc = wk_train(&jc.worker, &job, NULL, NULL, cmd_stop_signals(&jc.worker), err, sizeof err);
    if (rc != PST_OK && rc != PST_ESTOPPED)
        fprintf(stderr, "pstrain: worker %d: %s\n", id, err);
out:
    wk_heartbeat_free(&hb);
    free(names);
    free(name);
    cmd_jobfile_free(&jf);
    return rc;
}
