/* preflight.c: `pstrain train --dry-run`: everything a run would refuse, found before
 * anything runs, so that a launcher can check a job's flags on the machine it starts from and
 * give pstrain's own one-line error and status before mpirun starts a rank.
 *
 * It checks, in the order a run meets them and without making or changing any file: the
 * data (as `pstrain check` opens it), the checkpoint --resume names, the --init-from files
 * (for a fresh start), the folders --checkpoint-dir and --samples (they, or their nearest
 * existing parent, must be writable folders), the files --metrics and --dump-weights, and the
 * --judge checkpoint; and prints what the run would do. */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/judge.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "launch/cmd/cmd.h"
#include "worker/ckpt/record.h"
#include "worker/ckpt/writer.h"
#include "worker/init_from.h"
#include "worker/paths.h"

#include <stdio.h>
#include <string.h>

int cmd_preflight(const cmd_config *cfg) {
    const wk_opts *o = &cfg->worker;
    FILE *out = stdout;
    char err[1024] = "";
    const eng_model_def *def = eng_model_find(o->model);
    PST_ASSERT(def, "--model %s: cmd_cli_parse lets only known models through", o->model);
    int rc = cmd_check_data(o, def, err, sizeof err);
    if (rc != PST_OK)
        return cmd_said(rc, err);
    fprintf(out, "dry run: %s, data in %s: ok\n", def->name, o->data);

    int fresh = 1;
    if (o->resume[0]) {
        eng_ckpt c = {0};
        if ((rc = wk_resume_load(o, &c, &fresh, NULL, err, sizeof err)) != PST_OK)
            return cmd_said(rc, err);
        if (fresh) {
            fprintf(out, "dry run: --resume auto: no checkpoint in %s yet; would start fresh\n",
                    o->checkpoint_dir);
        } else {
            char how[160];
            eng_optim_format(&c.parts[0].optim, how, sizeof how);
            fprintf(out,
                    "dry run: --resume: would go on from step %lld, optimizer %s (the "
                    "checkpoint's)\n",
                    (long long)wk_record_of(&c).step, how);
        }
        eng_ckpt_free(&c);
    }
    if (o->init_from[0] && fresh) { /* the weights a fresh run would start from */
        eng_model m;
        float *w = NULL;
        PST_ASSERT(eng_model_build(&m, def, err, sizeof err) == PST_OK, "%s", err);
        if ((rc = wk_init_from_load(o, &m, &w, err, sizeof err)) != PST_OK)
            return cmd_said(rc, err);
        pst_free(w);
        fprintf(out, "dry run: --init-from %s: its weights fit %s; would start from them\n",
                o->init_from, def->name);
    }
    const struct {
        const char *flag, *value;
        int folder;
    } paths[] = {{"checkpoint-dir", o->checkpoint_dir, 1},
                 {"samples", o->samples, 1},
                 {"metrics", o->metrics, 0},
                 {"dump-weights", o->dump_weights, 0}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (!paths[i].value[0])
            continue;
        rc = paths[i].folder ? wk_dir_usable(paths[i].flag, paths[i].value, err, sizeof err)
                             : wk_file_usable(paths[i].flag, paths[i].value, err, sizeof err);
        if (rc != PST_OK)
            return cmd_said(rc, err);
        fprintf(out, "dry run: --%s %s: writable\n", paths[i].flag, paths[i].value);
    }
    if (o->judge[0]) {
        char why[1024];
        eng_judge *j = eng_judge_new(o->judge, 1, 1, why, sizeof why);
        if (!j)
            return cmd_said(pst_err(err, sizeof err, PST_EFORMAT, "--judge: %s", why), err);
        eng_judge_free(&j);
        fprintf(out, "dry run: --judge %s: ok\n", o->judge);
    }
    fprintf(out, "dry run: %lld epoch(s), batch %lld, %s; nothing was run\n", (long long)o->epochs,
            (long long)o->batch,
            o->servers > 0 ? "a parameter-server job (mpirun)" : "one process");
    fflush(out);
    return PST_OK;
}
